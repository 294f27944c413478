"""The threads of svc_campaign's own loops: the log follower, the timer loops, scheduled runs, the outbox
dispatcher, the event publisher and auto-promotion.

``asyncio.to_thread`` runs on the event loop's default pool, which also serves every RPC (``server.py``) and has
``min(32, CPUs + 4)`` threads: six on a two-core machine. With several timer loops draining a wave (up to 16 on
PostgreSQL) and the other loops busy, the loops alone could hold every thread of that pool, and RPCs would queue
behind a drain. The loops get a pool of their own with one thread per loop: a loop never waits for a thread, and
never takes one from an RPC.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class LoopThreads:
    """A thread pool for ``loops`` background loops, each running one blocking call at a time.

    The pool is made on first use and again after :meth:`close`, so a service can be stopped and started."""

    def __init__(self, loops: int, name: str) -> None:
        self.size = loops
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[..., T], /, *args: object) -> T:
        """``function(*args)`` on one of the loops' threads, with the caller's context (as ``to_thread``)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix=self._name)
        call = functools.partial(contextvars.copy_context().run, function, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def close(self) -> None:
        """Wait for the calls in flight (a timer batch finishes its transaction) and let the threads go."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True)
