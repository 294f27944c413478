"""Group commit: concurrent requests share one durable write.

Each Ingest call submits its prepared batch and waits. One writer task takes everything that queued up
while the previous write was in flight (up to ``max_events``), makes it durable in one transaction in a
worker thread, and answers every caller. Under load the cost of a commit (an fsync) is spread over many
requests; when idle a lone batch goes straight through.

A failed write of several batches is written again one batch at a time, so a batch that cannot be stored (a
value the database refuses) fails alone instead of failing every client's batch of its group. Not when the
store is unavailable (``Unavailable``): every batch would fail again, one timeout after the other (nor the rest
of such a write once one batch of it finds the store unavailable).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from svc_common.errors import ResourceExhausted, Unavailable

log = logging.getLogger("qiming.collect.committer")
STORE_DOWN = frozenset({"DEPENDENCY_UNAVAILABLE", "LOG_UNAVAILABLE"})
"""``Unavailable`` reasons of a store that is down (not a write that lost a race with another collector,
``LOG_CONTENDED``: the next write goes through)."""

B = TypeVar("B", bound="Sized")
R = TypeVar("R")


class Sized(Protocol):
    def size(self) -> int: ...


class GroupCommitter(Generic[B, R]):
    def __init__(self, write: Callable[[Sequence[B]], list[R]], max_events: int) -> None:
        self._write = write
        self._max_events = max_events
        self._queue: list[tuple[B, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-committer")

    async def submit(self, batch: B) -> R:
        if self._closing:
            raise RuntimeError("the log writer is stopping")
        if self._task is None:
            self.start()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._queue.append((batch, future))
        self._wake.set()
        # Shielded: a caller that goes away must not cancel a write that others share.
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            group = self._take()
            try:
                results = await asyncio.to_thread(self._write, [batch for batch, _ in group])
            except BaseException as exc:
                if (
                    len(group) > 1
                    and isinstance(exc, Exception)
                    and not isinstance(exc, (Unavailable, ResourceExhausted))
                ):
                    # The class only: a database's message may quote a value of the batch.
                    log.warning(
                        "a group commit of %d batches failed (%s); writing them one by one",
                        len(group),
                        type(exc).__name__,
                    )
                    await self._write_one_by_one(group)
                    continue
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            if len(results) != len(group):  # a writer's bug: its callers fail, and the writer goes on (it stopped)
                error = RuntimeError(f"the log writer answered {len(results)} batches of {len(group)}")
                log.error("%s", error)
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write_one_by_one(self, group: list[tuple[B, asyncio.Future[R]]]) -> None:
        for i, (batch, future) in enumerate(group):
            try:
                (result,) = await asyncio.to_thread(self._write, [batch])
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                if isinstance(exc, ResourceExhausted) or (isinstance(exc, Unavailable) and exc.reason in STORE_DOWN):
                    # The rest would wait out the same failure, one after the other.
                    for _, rest in group[i + 1 :]:
                        if not rest.done():
                            rest.set_exception(exc)
                    return
                continue
            if not future.done():
                future.set_result(result)

    def _take(self) -> list[tuple[B, asyncio.Future[R]]]:
        taken = 0
        count = 0
        for batch, _ in self._queue:
            size = batch.size()
            if count and taken + size > self._max_events:
                break
            taken += size
            count += 1
        group, self._queue = self._queue[:count], self._queue[count:]
        return group


def _retrieve(future: asyncio.Future[object]) -> None:
    # A caller that went away leaves its outcome unread; reading it here keeps asyncio from warning.
    if not future.cancelled():
        future.exception()
