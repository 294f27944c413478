"""Run ``qiming serve`` as a child process and wait until it serves: for the demo, the tests and the load tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class ServerProcess:
    """``qiming serve <service>`` on a free port; ``address`` is known once :meth:`start` returns."""

    def __init__(
        self,
        service: str,
        *,
        env: dict[str, str] | None = None,
        work_dir: Path | None = None,
        startup_timeout_seconds: float = 60.0,
    ) -> None:
        self.service = service
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix=f"qiming-{service}-"))
        self.port_file = self.work_dir / "port"
        self.log_path = self.work_dir / "server.log"
        self.startup_timeout_seconds = startup_timeout_seconds
        prefix = "QIMING_SUITE_" if service == "all" else f"QIMING_{service.upper()}_"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("QIMING_")},
            f"{prefix}GRPC_PORT": "0",
            f"{prefix}GRPC_PORT_FILE": str(self.port_file),
            f"{prefix}LOG_FORMAT": "json",
        }
        for name in ("collect", "profile", "campaign", "modeling") if service == "all" else (service,):
            self.env[f"QIMING_{name.upper()}_DATA_DIR"] = str(self.work_dir / "data")
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "svc_common.cli", "serve", self.service],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.work_dir,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"qiming serve {self.service} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.port_file.exists() and self.port_file.read_text().strip():
                self.port = int(self.port_file.read_text())
                self._wait_serving(deadline)
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"qiming serve {self.service} did not start in time:\n{self.log_tail()}")

    def _wait_serving(self, deadline: float) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"qiming serve {self.service} never reported SERVING:\n{self.log_tail()}")

    def terminate(self, timeout_seconds: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path. Returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_seconds)

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.kill()
