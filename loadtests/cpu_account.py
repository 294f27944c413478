"""Where a benchmark's CPU goes: CPU seconds of processes read from /proc (Linux), per role.

On a machine of a few cores the client, the service and its database share the CPUs, so the events/s a run
reaches is bounded by ``cores / (CPU µs per event of all of them)``. Reporting each role's µs per event
says which one to work on and how far the machine can go. Database servers are found by process name
(``postgres``, ``nats-server``): measure on a quiet machine, or other work on those servers counts too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime, stime (fields 14, 15 of stat)


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (a service's workers)."""
    out = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return out


def pids_named(names: Iterable[str]) -> list[int]:
    wanted = set(names)
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in wanted:
                    out.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return out


class CpuMeter:
    """CPU seconds used by each role between ``start()`` and ``stop()``: the service (its pid and workers), the database
    servers (by name; processes that start meanwhile count from zero) and the client (this process)."""

    def __init__(self, service_pid: int, server_names: Iterable[str]) -> None:
        self._service_pid = service_pid
        self._server_names = tuple(server_names)
        self._before: dict[str, float] = {}
        self._server_before: dict[int, float] = {}
        self._service_pids: list[int] = []

    def _servers(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in pids_named(self._server_names)} if self._server_names else {}

    def start(self) -> None:
        self._server_before = self._servers()
        self._service_pids = with_children(self._service_pid)
        self._before = {"service": self._service_seconds(), "client": cpu_seconds(os.getpid())}

    def _service_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._service_pids)

    def stop(self) -> dict[str, float]:
        servers = sum(now - self._server_before.get(pid, 0.0) for pid, now in self._servers().items())
        return {
            "service": self._service_seconds() - self._before["service"],
            "database": max(servers, 0.0),
            "client": cpu_seconds(os.getpid()) - self._before["client"],
        }


@contextlib.contextmanager
def py_spy_samples(pid: int, out: Path | None) -> Iterator[None]:
    """Sample ``pid`` and its child processes with py-spy (beside this Python) into ``out`` as collapsed stacks
    (for flamegraph.pl or speedscope) while the block runs; nothing when ``out`` is None. Only the thread holding
    the GIL is sampled (``--gil``): the collector is bound by it, and threads waiting (the event loop in ``select``,
    idle workers) otherwise fill half the samples."""
    if out is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--subprocesses", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil"]
    recorder = subprocess.Popen([*command, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        print(f"      py-spy samples (collapsed stacks): {out}", flush=True)
