"""Health that follows a service's dependencies: each :class:`DependencyProbe` (its database, its NATS …) is asked
every ``interval_millis``; while one does not answer, the service's gRPC health names and the server's ``""`` are
NOT_SERVING, and SERVING again once every probe of the service answers.

A probe is cheap (``SELECT 1``, a JetStream stream info) and never runs twice at once: a check still running when the
next is due (a database that accepts connections and never answers) counts as failed, and no second thread or
request piles up behind it. A service that meets its dependency's outage itself (an ingest answered UNAVAILABLE)
calls :meth:`DependencyProbe.failed`: health turns at once instead of at the next probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

log = logging.getLogger("qiming.server")

DEFAULT_PROBE_INTERVAL_MILLIS = 2000
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DependencyProbe:
    """One dependency of a service. ``check`` returns when it answers and raises (or takes longer than the
    interval) when it does not; ``interval_millis`` 0 turns the probe off (health then ignores it)."""

    def __init__(
        self, name: str, check: Callable[[], Awaitable[object]], interval_millis: int = DEFAULT_PROBE_INTERVAL_MILLIS
    ) -> None:
        self.name = name
        self.check = check
        self.interval = interval_millis / 1000
        self.up = True
        self.next_at = 0.0
        self._running: asyncio.Future[object] | None = None
        self._watch: DependencyWatch | None = None

    def failed(self, why: str = "") -> None:
        """The service met the dependency's outage (call it on the server's event loop): NOT_SERVING now; the next
        probe, one interval later, decides when it is back."""
        if not self.interval:
            return
        self._mark(False, why or "a call found it unavailable")
        self.next_at = time.monotonic() + self.interval
        if self._watch is not None:
            self._watch.changed()

    async def probe(self) -> None:
        """Ask once (at most ``interval`` seconds) and record the answer."""
        if self._running is not None and not self._running.done():
            self._mark(False, f"its last check has not answered for over {self.interval:g} s")
            return
        try:
            self._running = running = asyncio.ensure_future(self.check())
        except Exception as exc:  # a check that fails before it awaits anything
            self._mark(False, str(exc) or type(exc).__name__)
            return
        done, _ = await asyncio.wait((running,), timeout=self.interval)
        if not done:
            self._mark(False, f"no answer within {self.interval:g} s")
        elif (error := running.exception()) is not None:
            self._mark(False, str(error) or type(error).__name__)
        else:
            self._mark(True, "")

    def _mark(self, up: bool, why: str) -> None:
        if up and not self.up:
            log.info("dependency %s answers again", self.name, extra={"dependency": self.name})
        elif not up and self.up:
            log.warning(
                "dependency %s unavailable: %s; health is NOT_SERVING until it answers",
                self.name,
                why,
                extra={"dependency": self.name},
            )
        self.up = up


class DependencyWatch:
    """Probes every service's dependencies and sets health: a service's names follow its own probes, ``""`` all."""

    def __init__(self, health: HealthServicer, services: Sequence[tuple[Sequence[str], Sequence[DependencyProbe]]]):
        self._health = health
        self._services = [(tuple(names), [p for p in probes if p.interval]) for names, probes in services]
        self._probes = [p for _, probes in self._services for p in probes]
        self._shown: dict[str, int] = {}
        self._wake = asyncio.Event()
        for probe in self._probes:
            probe._watch = self

    def __bool__(self) -> bool:
        return bool(self._probes)

    def changed(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """The server stops: checks still running are not waited for."""
        for probe in self._probes:
            if probe._running is not None:
                probe._running.cancel()

    async def run(self) -> None:
        """Until cancelled (when the server stops: health is then NOT_SERVING for good)."""
        while True:
            now = time.monotonic()
            due = [p for p in self._probes if p.next_at <= now]
            for failure in await asyncio.gather(*(p.probe() for p in due), return_exceptions=True):
                if isinstance(failure, Exception):  # a bug of the watch itself: logged, and the watch goes on
                    log.error("a dependency probe failed to run", exc_info=failure)
            for probe in due:
                probe.next_at = time.monotonic() + probe.interval
            await self.apply()
            self._wake.clear()
            wait = min(p.next_at for p in self._probes) - time.monotonic()
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: a stop's cancellation is never taken for it
                async with asyncio.timeout(max(wait, 0)):
                    await self._wake.wait()

    async def apply(self) -> None:
        """Health as the probes last answered (only the names whose status changes are set: each set notifies every
        client watching that name)."""
        everything = _SERVING
        for names, probes in self._services:
            status = _SERVING if all(p.up for p in probes) else _NOT_SERVING
            if status != _SERVING:
                everything = _NOT_SERVING
            for name in names:
                await self._show(name, status)
        await self._show("", everything)

    async def _show(self, name: str, status: int) -> None:
        if self._shown.get(name, _SERVING) != status:
            self._shown[name] = status
            await self._health.set(name, status)


__all__ = ["DEFAULT_PROBE_INTERVAL_MILLIS", "DependencyProbe", "DependencyWatch"]
