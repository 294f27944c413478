"""Several processes serving one service on one port: ``workers`` in the service's settings.

Python runs a process's work on one CPU at a time, so a collector process tops out near one core
(~45,000 events/s here). With ``workers = N`` the parent process applies the migrations once, then starts N
``qiming serve`` workers that listen on the same port (Linux ``SO_REUSEPORT``): the kernel hands each new
connection to one of them. It spreads connections, not calls, so the load spreads when producers open
several connections (or a load balancer does). The parent writes the port file once every worker serves,
passes SIGTERM/SIGINT on, and stops them all when one of them dies (the supervisor then restarts the
unit). A worker dies with its parent (``PR_SET_PDEATHSIG``), so a killed parent leaves no orphans.

Workers of the collector share the log the way separate collectors do (the head row lock, or JetStream's
expected-sequence checks); a follower woken by its own worker's appends sees the others' after
``follow_poll_interval_millis``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from svc_common.config import ServiceSettings, env_name
from svc_common.errors import StartupError
from svc_common.server._app import _write_port_file

log = logging.getLogger("qiming.workers")
PARENT_ENV = "QIMING_WORKER_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def die_with_parent() -> None:
    """In a worker: receive SIGTERM when the parent exits; refuse to start if it is already gone."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):
        raise StartupError("the parent of this worker has exited")


class _Workers:
    def __init__(self, service: str, config_file: Path | None, settings: ServiceSettings, count: int) -> None:
        self.service = service
        self.config_file = config_file
        self.settings = settings
        self.count = count
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def port(self, stack: contextlib.ExitStack) -> int:
        """The port every worker binds. When 0 is asked, a free one, held by a socket of this process (with
        SO_REUSEPORT too, so the workers can join it) until they serve."""
        port = self.settings.resolved_port()
        if port != 0:
            return port
        host = self.settings.grpc_host.strip("[]")
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
            reserve = stack.enter_context(socket.socket(family, kind, proto))
            reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            reserve.bind(address)
        except OSError as exc:
            raise StartupError(f"cannot listen on {self.settings.grpc_host}: {exc}") from None
        return reserve.getsockname()[1]

    def spawn(self, port: int, port_dir: Path) -> None:
        command = [sys.executable, "-m", "svc_common.cli", "serve", self.service]
        if self.config_file is not None:
            command += ["--config", str(self.config_file)]
        for index in range(self.count):
            env = dict(os.environ)
            env.update(
                {
                    env_name(type(self.settings), "grpc_port"): str(port),
                    env_name(type(self.settings), "grpc_reuse_port"): "true",
                    env_name(type(self.settings), "grpc_port_file"): str(port_dir / f"worker-{index}"),
                    env_name(type(self.settings), "workers"): "1",
                    env_name(type(self.settings), "migrate_on_start"): "false",
                    PARENT_ENV: str(os.getpid()),
                    "QIMING_WORKER_INDEX": str(index),  # names the worker's own audit file
                }
            )
            self.children.append(subprocess.Popen(command, env=env))

    def wait_serving(self, port_dir: Path) -> None:
        """Until every worker has written its port file. No deadline of its own, as for a single process: a
        worker that cannot start exits (database retries, a bad setting), and a JetStream worker may take
        minutes to rebuild its de-duplication index; the supervisor's start timeout applies."""
        while len([p for p in port_dir.iterdir() if p.suffix != ".tmp"]) < self.count:
            if self.stopping:
                return
            failed = self.exited()
            if failed is not None:
                raise StartupError(f"worker pid {failed.pid} exited with {failed.returncode} while starting")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def exited(self) -> subprocess.Popen[bytes] | None:
        return next((c for c in self.children if c.poll() is not None), None)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(sig)
        deadline = time.monotonic() + self.settings.shutdown_drain_seconds + self.settings.shutdown_grace_seconds + 10
        for child in self.children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _exit_code(returncode: int | None, stopping: bool = False) -> int:
    """A child's exit status as a shell reports it (128 + the signal for one killed by a signal). When a stop was
    asked for, a worker that the stop signal ended before it had its handlers (still starting) stopped cleanly."""
    if returncode is None:
        return 1
    if stopping and -returncode in _STOP_SIGNALS:
        return 0
    return 128 - returncode if returncode < 0 else returncode


def run_workers(service: str, config_file: Path | None, settings: ServiceSettings, count: int) -> int:
    """Serve ``service`` with ``count`` worker processes until SIGTERM/SIGINT; the exit code."""
    workers = _Workers(service, config_file, settings, count)

    def on_signal(signum: int, _frame: object) -> None:
        workers.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port_file = settings.grpc_port_file
    if getattr(settings, "log_backend", "sql") == "sql" and settings.resolved_database_url().startswith("sqlite"):
        log.warning("workers share one SQLite log: they take turns at its write lock (docs/collect.md)")
    with tempfile.TemporaryDirectory(prefix="qiming-workers-") as tmp, contextlib.ExitStack() as reserved:
        try:
            port = workers.port(reserved)
            workers.spawn(port, Path(tmp))
            workers.wait_serving(Path(tmp))
            reserved.close()
            if not workers.stopping:
                if port_file is not None:
                    _write_port_file(settings, port)
                log.info("serving", extra={"workers": count, "port": port, "worker_pids": workers.pids()})
            while not workers.stopping:
                failed = workers.exited()
                if failed is not None:
                    log.error("a worker exited; stopping the others", extra={"worker_pid": failed.pid})
                    workers.stop()
                    return _exit_code(failed.returncode) or 1
                time.sleep(0.2)
            workers.stop()
            return max((_exit_code(c.returncode, stopping=True) for c in workers.children), default=0)
        finally:
            workers.stop()
            if port_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    port_file.unlink()
