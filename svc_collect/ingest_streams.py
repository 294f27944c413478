"""IngestStream calls at a graceful stop: each one ends at once instead of holding the stop for the grace period.

A stream that waits for its client's next batch is ended there (the batch is not read); one whose batch is being
ingested finishes it, sends its acknowledgement (durable, as always) and ends. Either way the client gets UNAVAILABLE
with reason ``STOPPING``: every batch acknowledged on the stream is stored, and it resends the others to another
collector (or to this one after its restart); event ids make that resend exactly-once.
"""

from __future__ import annotations

import asyncio

from svc_common.errors import Unavailable


def stopping_error() -> Unavailable:
    return Unavailable(
        "svc_collect is stopping: every batch acknowledged on this stream is stored; resend the batches not "
        "acknowledged to another collector (event ids make the resend exactly-once)",
        reason="STOPPING",
    )


class _Stream:
    __slots__ = ("ended", "waiting")

    def __init__(self) -> None:
        self.waiting = False  # awaiting the client's next batch: ending it there loses nothing
        self.ended = False  # cancelled by end(), not by the client or by gRPC


class OpenStreams:
    """The IngestStream calls in progress (their tasks), and whether the server is stopping."""

    def __init__(self) -> None:
        self.stopping = False
        self._open: dict[asyncio.Task[object], _Stream] = {}

    def end(self) -> None:
        """The server is stopping (``ServiceSpec.on_shutdown``): streams waiting for a batch end now, the others after
        the batch they are ingesting, and new ones at once."""
        self.stopping = True
        for task, stream in self._open.items():
            if stream.waiting:
                stream.ended = True
                task.cancel()

    def open(self) -> tuple[asyncio.Task[object], _Stream]:
        if self.stopping:
            raise stopping_error()
        task = asyncio.current_task()
        assert task is not None
        stream = self._open[task] = _Stream()
        return task, stream

    def close(self, task: asyncio.Task[object]) -> None:
        self._open.pop(task, None)
