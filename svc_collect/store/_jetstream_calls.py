"""The JetStream log's calls into nats-py, on the connection's own event loop: every one ends in a status the caller
can act on, and none waits out the publish timeout while the connection is known to be down (nats-py reconnects by
itself; a call then fails UNAVAILABLE at once, and one already waiting ends as soon as the connection drops)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from nats.js.errors import NotFoundError

from svc_collect.store._jetstream_errors import NATS_ERRORS, NO_ANSWER, connection_lost, serving_error
from svc_collect.store._jetstream_parts import JetStreamConfig, LoopThread
from svc_common.errors import QimingError, Unavailable

log = logging.getLogger("qiming.collect.jetstream")
T = TypeVar("T")


class NatsCalls:
    """The calling half of JetStreamEventLog (the attributes below are set by its constructor and ``open``)."""

    _config: JetStreamConfig
    _loop: LoopThread | None
    _nc: Any
    _js: Any
    _timeout: float
    _closing: bool

    def __init__(self) -> None:
        # Calls running on the NATS loop (``_run``), and those of them a lost connection ended (see _unless_lost).
        self._calls: set[asyncio.Task[Any]] = set()
        self._lost_calls: set[asyncio.Task[Any]] = set()

    async def _on_disconnected(self) -> None:
        # Every call waiting on NATS ends now (UNAVAILABLE, see _unless_lost) instead of at the publish timeout.
        for task in self._calls:
            self._lost_calls.add(task)
            task.cancel()
        if not self._closing:
            log.warning("disconnected from NATS; calls are answered UNAVAILABLE until the client reconnects")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise Unavailable("the JetStream log is not open", reason="LOG_UNAVAILABLE")
        nc = self._nc
        if nc is None or not nc.is_connected:  # known down: at once, not after the publish timeout (nothing was sent)
            coro.close()
            raise connection_lost()
        try:
            return self._loop.run(self._unless_lost(coro))
        except NATS_ERRORS as exc:
            # Every call into nats-py ends here: a status the caller can act on (UNAVAILABLE while NATS is down or
            # reconnecting, which clients retry), never an internal error.
            raise self._loop.run(self._serving_error(exc)) from exc

    async def _unless_lost(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``, ended with UNAVAILABLE when the connection to NATS is lost meanwhile (``_on_disconnected`` cancels
        it) instead of waiting out the publish timeout. Safe for a write: a pack whose ack did not come is either
        not stored, or stored (it left before the loss, or nats-py sends it after the reconnect) with ids the log
        does not know yet. The client's retry then finds the shard moved (every publish names the shard's last
        sequence), reads that pack and answers its ids DUPLICATE: stored once, as after a publish timeout."""
        task = asyncio.current_task()
        assert task is not None
        if self._nc is None or not self._nc.is_connected:  # lost since _run looked: _on_disconnected has run
            coro.close()
            raise connection_lost()
        self._calls.add(task)
        try:
            return await coro
        except asyncio.CancelledError:
            if task not in self._lost_calls:
                raise
            task.uncancel()
            raise connection_lost() from None
        finally:
            self._calls.discard(task)
            self._lost_calls.discard(task)

    async def probe(self) -> None:
        """Health's probe (svc_common.server.DependencyProbe): returns when JetStream answers for the stream, raises
        Unavailable when it does not (not connected: at once)."""
        loop = self._loop
        if loop is None or self._nc is None or not self._nc.is_connected:
            raise connection_lost()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._probe(), loop.loop))

    async def _probe(self) -> None:
        try:
            await asyncio.wait_for(self._js.stream_info(self._config.stream), min(self._timeout, 5.0))
        except NATS_ERRORS as exc:
            raise await self._serving_error(exc) from exc

    async def _serving_error(self, exc: BaseException) -> QimingError:
        exists = None
        if isinstance(exc, (*NO_ANSWER, TimeoutError)) and self._nc is not None and self._nc.is_connected:
            # Nothing served the stream's subjects or direct gets (nats-server 2.9 lets a direct get of a deleted
            # stream time out): JetStream is off, or the stream is gone. Asked briefly: the server may be hung.
            try:
                await asyncio.wait_for(self._js.stream_info(self._config.stream), min(1.0, self._timeout))
                exists = True
            except NotFoundError:
                exists = False
            except NATS_ERRORS:
                pass
        return serving_error(exc, self._config.stream, exists)
