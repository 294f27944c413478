"""How the other services use svc_collect's event log: publish their own events, follow the log from a cursor.

``CollectClient.publish`` sends events (``$segment_entered``, ``$message_sent``, ``$score_written`` ...)
with retries: publishers give their events deterministic ids, so a retry after a lost answer is absorbed
by the log's de-duplication. ``LogFollower`` reads the log from the cursor the consumer stored last and
hands each batch to a handler that must store its effects **and** the batch's cursor in one transaction:
after any crash or reconnect the follower resumes from that stored cursor, so every event takes effect
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from svc_common.config import DEFAULT_KEEPALIVE_TIME_SECONDS, DEFAULT_KEEPALIVE_TIMEOUT_SECONDS
from svc_common.errors import ResourceExhausted, Unavailable
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.server import insecure_channel, keepalive_options

log = logging.getLogger("qiming.logclient")

# Codes worth retrying: the collector is restarting, overloaded, or the answer was lost.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


# Codes a retry of the same read cannot fix: the follower says so at ERROR (it still retries, slowly).
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
#: A follower whose collector does not connect logs a warning this often.
UNREACHABLE_WARNING_SECONDS = 15.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts."""

    attempts: int = 6
    """Tries of one publish before it fails with UNAVAILABLE (0: retry forever, for followers)."""
    initial_backoff_millis: int = 100
    """First wait; doubles after each failed try."""
    max_backoff_millis: int = 5_000
    """Longest wait between two tries."""

    def delay_seconds(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_millis, self.initial_backoff_millis * 2**attempt) / 1000
        return ceiling / 2 + random.random() * ceiling / 2


class CollectClient:
    """A client of ``CollectService`` at ``address`` (``host:port``).

    ``keepalive_time_seconds`` / ``keepalive_timeout_seconds``: a connection whose calls are quiet is pinged that
    often and closed when a ping is not answered in time (see ``grpc_keepalive_*`` in docs/configuration.md); the
    collector must accept pings that often (its ``grpc_min_client_ping_interval_seconds``)."""

    def __init__(
        self,
        address: str,
        *,
        timeout_seconds: float = 10.0,
        retry: RetryPolicy | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
        keepalive_time_seconds: float = DEFAULT_KEEPALIVE_TIME_SECONDS,
        keepalive_timeout_seconds: float = DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
    ) -> None:
        self.address = address
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._channel = insecure_channel(
            address,
            max_receive_message_length=max_message_bytes,
            max_send_message_length=max_message_bytes,
            # Reconnect promptly after a collector restart (gRPC's default backoff grows to 2 minutes).
            initial_reconnect_backoff_ms=200,
            min_reconnect_backoff_ms=200,
            max_reconnect_backoff_ms=self.retry.max_backoff_millis,
            # A follow stream is silent while the log is idle: without pings a silently dead connection (no
            # FIN/RST) would be waited on forever. Pass the service's grpc_keepalive_* settings here.
            **keepalive_options(keepalive_time_seconds, keepalive_timeout_seconds),
        )
        self._stub = collect_pb2_grpc.CollectServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def wait_reachable(self, timeout_seconds: float) -> bool:
        """Whether the collector's channel is connected within ``timeout_seconds`` (it starts connecting)."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can turn a cancellation that meets its own timeout into
        # TimeoutError; the follower then took it for "not reachable yet", and a stop waited for it for ever.
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._channel.channel_ready()
        except TimeoutError:
            return False
        return True

    async def publish(self, events: Sequence[event_pb2.Event]) -> collect_pb2.IngestResponse:
        """Ingest ``events`` (ids must be deterministic for retries to be safe); per-event results as sent.

        Raises ``Unavailable`` when the collector did not answer within the retry policy. A batch above the
        collector's limits (``BATCH_TOO_LARGE``: more events than its ``max_batch_events``, or more bytes than its
        message limit) is split — into batches of the limit the collector named, else in halves — and sent again;
        the results come back as one answer, indexed as in ``events``. ``ResourceExhausted`` only when a single
        event is too large. A rejected event is not an exception: look at the results (the log keeps it in
        quarantine).
        """
        try:
            return await self._publish_once(events)
        except ResourceExhausted as exc:
            if len(events) < 2:
                raise
            limit = int(exc.metadata.get("max_batch_events", "0") or 0)
            size = limit if 0 < limit < len(events) else (len(events) + 1) // 2
            answer = collect_pb2.IngestResponse()
            for start in range(0, len(events), size):
                part = await self.publish(events[start : start + size])
                for result in part.results:
                    answer.results.add().CopyFrom(result)
                    answer.results[-1].index = start + result.index
                answer.accepted_count += part.accepted_count
                answer.duplicate_count += part.duplicate_count
                answer.rejected_count += part.rejected_count
            return answer

    async def _publish_once(self, events: Sequence[event_pb2.Event]) -> collect_pb2.IngestResponse:
        request = collect_pb2.IngestRequest(events=events)
        attempt = 0
        while True:
            try:
                # wait_for_ready: a collector that is restarting gets the whole timeout to come back.
                return await self._stub.Ingest(request, timeout=self.timeout_seconds, wait_for_ready=True)
            except aio.AioRpcError as exc:
                attempt += 1
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    _refuse_too_large(exc, len(events), self.address)
                if exc.code() not in _RETRYABLE or (self.retry.attempts and attempt >= self.retry.attempts):
                    raise Unavailable(
                        f"svc_collect at {self.address} did not take {len(events)} events: "
                        f"{exc.code().name}: {exc.details()}"
                    ) from exc
                await asyncio.sleep(self.retry.delay_seconds(attempt))

    async def read(
        self,
        after_cursor: str = "",
        *,
        event_types: Sequence[str] = (),
        follow: bool = False,
        batch_size: int = 0,
        max_events: int = 0,
    ) -> AsyncIterator[tuple[list[event_pb2.Event], str]]:
        """Batches of the log after ``after_cursor`` (empty: from the start), each with its last cursor; a batch
        without events (a filtered read) carries the position past what the filter skipped. A follow stream ends
        (without error) when the collector stops: read again from the last cursor."""
        request = collect_pb2.ReadEventsRequest(
            event_types=event_types, follow=follow, batch_size=batch_size, max_events=max_events
        )
        if after_cursor:
            request.after_cursor = after_cursor
        call = self._stub.ReadEvents(request, wait_for_ready=True)
        try:
            async for response in call:
                yield list(response.events), response.cursor
        finally:
            call.cancel()  # a consumer that stops early (or fails) must not leave the stream open


def _error_info(exc: aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ``google.rpc.ErrorInfo`` a Qiming server put in the status, if any."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:  # details that do not match the status: not a Qiming server's
        return None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def _refuse_too_large(exc: aio.AioRpcError, count: int, address: str) -> None:
    """RESOURCE_EXHAUSTED is retried when the collector is busy, but a batch above its limits stays above them:
    raise at once (with the limit the collector named) instead of sending the same batch again."""
    info = _error_info(exc)
    too_many = info is not None and info.reason == "BATCH_TOO_LARGE"
    if too_many or "larger than max" in (exc.details() or ""):  # gRPC's own message size limit
        raise ResourceExhausted(
            f"svc_collect at {address} refused {count} events as too large: {exc.details()}",
            reason="BATCH_TOO_LARGE",
            metadata=dict(info.metadata) if too_many and info is not None else {},
        ) from exc


Handler = Callable[[list[event_pb2.Event], str], Awaitable[None]]


class LogFollower:
    """Follows the log for one consumer; reconnects and resumes from the consumer's stored cursor.

    ``load_cursor`` returns the cursor stored with the consumer's last committed batch ("" for none);
    ``handle(events, cursor)`` applies a batch and stores ``cursor`` in the same transaction (``events`` may be
    empty: with ``event_types``, the collector sends the position past events that did not match). A handler
    error is logged and the batch retried from the stored cursor after a backoff: nothing is skipped.
    """

    def __init__(
        self,
        client: CollectClient,
        *,
        name: str,
        load_cursor: Callable[[], Awaitable[str]],
        handle: Handler,
        event_types: Sequence[str] = (),
        batch_size: int = 1000,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self._load_cursor = load_cursor
        self._handle = handle
        self._event_types = tuple(event_types)
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy(attempts=0)
        self._task: asyncio.Task[None] | None = None
        self.cursor = ""
        """Cursor of the last batch handled."""
        self.events_handled = 0
        """Events handed to the handler since start (for lag metrics and tests)."""
        self.caught_up = asyncio.Event()
        """Set whenever the follower has handled everything the log held when it last connected."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"log-follower-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        stopping = False  # the collector ended the follow stream: it is stopping (a restart, a deployment)
        stopped_at, said_stopping = 0.0, False
        while True:
            handled_before = self.events_handled
            try:
                await self._reachable()
                self.cursor = await self._load_cursor()
                # First drain what is there (so caught_up means something), then follow.
                await self._consume(follow=False)
                self.caught_up.set()
                await self._consume(follow=True)
                failures = 0
                stopping, stopped_at, said_stopping = True, time.monotonic(), False
            except asyncio.CancelledError:
                raise
            except aio.AioRpcError as exc:
                failures = _failures_after(failures, progressed=self.events_handled > handled_before)
                if exc.code() == grpc.StatusCode.CANCELLED and not stopping:
                    # A read this follower did not cancel: the collector's server cancelled it as it stops (a read
                    # that reached it after its follow streams were ended), as a clean end of the stream says.
                    stopping, stopped_at, said_stopping = True, time.monotonic(), False
                # Its connection closing after the stream ended, or the collector starting again (a read can start
                # on the closing connection before the channel sees it closed, or reach the stopping server, which
                # cancels it): expected, said once. Past UNREACHABLE_WARNING_SECONDS it is a lost collector; one that
                # is down, _reachable warns about.
                still_stopping = (
                    stopping
                    and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
                    and time.monotonic() - stopped_at < UNREACHABLE_WARNING_SECONDS
                )
                if still_stopping:
                    if not said_stopping:
                        said_stopping = True
                        log.info(
                            "log follower %s: svc_collect at %s is stopping; waiting for it",
                            self.name,
                            self.client.address,
                            extra={"consumer": self.name},
                        )
                elif exc.code() in _REFUSALS:
                    # A retry cannot fix it (a cursor of a restored log, a refused principal): say so loudly, and
                    # retry at the slowest pace so that it resumes by itself once an operator has fixed it.
                    failures = 16
                    log.error(
                        "log follower %s: svc_collect at %s refuses to read the log from cursor %r (%s: %s); a "
                        'retry cannot fix this, see docs/operations.md "A log consumer refused by svc_collect"',
                        self.name,
                        self.client.address,
                        self.cursor,
                        exc.code().name,
                        exc.details(),
                        extra={"consumer": self.name},
                    )
                else:
                    log.warning(
                        "log follower %s lost svc_collect (%s: %s); retrying",
                        self.name,
                        exc.code().name,
                        exc.details(),
                        extra={"consumer": self.name},
                    )
                stopping = still_stopping
            except Exception:
                failures = _failures_after(failures, progressed=self.events_handled > handled_before)
                log.exception("log follower %s: handling a batch failed; retrying it", self.name)
                stopping = False
            self.caught_up.clear()
            await asyncio.sleep(self._retry.delay_seconds(min(failures, 16)))

    async def _reachable(self) -> None:
        """Wait until the collector's channel connects, warning every ``UNREACHABLE_WARNING_SECONDS``: a stream
        waits for a channel that never connects (a wrong ``collect_address``, a collector not started) without a
        word, and the service would serve profiles that never change."""
        waited = 0.0
        while not await self.client.wait_reachable(UNREACHABLE_WARNING_SECONDS):
            waited += UNREACHABLE_WARNING_SECONDS
            log.warning(
                "log follower %s cannot reach svc_collect at %s (waited %.0f s); check collect_address and that "
                "svc_collect is running",
                self.name,
                self.client.address,
                waited,
                extra={"consumer": self.name},
            )
        if waited:
            log.info("log follower %s reached svc_collect at %s", self.name, self.client.address)

    async def _consume(self, *, follow: bool) -> None:
        """Hand the log to the handler. A task reads answers ahead while the handler works, and what has
        arrived meanwhile is handed over as one batch (up to ``batch_size`` events): the collector answers a
        follower every poll (~10 ms, a few dozen events), and one transaction per answer falls behind where a
        transaction costs more than a poll interval (PostgreSQL, openGauss). Merged answers are consecutive in
        the log, so the last one's cursor stands for them all."""
        stream = self.client.read(
            self.cursor, event_types=self._event_types, follow=follow, batch_size=self._batch_size
        )
        # Bounded in events as well as answers: a follower far behind gets answers of up to batch_size events.
        ahead: asyncio.Queue[_Read] = asyncio.Queue(maxsize=max(2, min(64, _READ_AHEAD_EVENTS // self._batch_size)))
        reader = asyncio.create_task(_read_into(stream, ahead), name=f"log-reader-{self.name}")
        try:
            carried: _Read | None = None
            while True:
                item = carried if carried is not None else await ahead.get()
                carried = None
                if not isinstance(item, tuple):
                    if item is _END:
                        return
                    raise item  # the stream's error, after everything read before it was handled
                events, cursor = item
                merged: list[event_pb2.Event] | None = None
                while not ahead.empty():
                    more = ahead.get_nowait()
                    if not isinstance(more, tuple) or len(merged or events) + len(more[0]) > self._batch_size:
                        carried = more
                        break
                    merged = merged if merged is not None else list(events)
                    merged.extend(more[0])
                    cursor = more[1]
                batch = merged if merged is not None else events
                await self._handle(batch, cursor)
                self.cursor = cursor
                self.events_handled += len(batch)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _failures_after(failures: int, *, progressed: bool) -> int:
    """Failures in a row: a stream that handed over events before it broke starts the backoff over (a follow
    stream practically never ends without an error, so only counting clean ends would ratchet it up for good)."""
    return 1 if progressed else failures + 1


class _EndOfStream(Exception):
    """Put after a finished stream's last answer (never raised)."""


_END = _EndOfStream()
_Read = tuple[list[event_pb2.Event], str] | BaseException
_READ_AHEAD_EVENTS = 20_000


async def _read_into(stream: AsyncIterator[tuple[list[event_pb2.Event], str]], ahead: asyncio.Queue[_Read]) -> None:
    """The answers of ``stream`` into ``ahead``, then ``_END``, or the error that ended the stream. An answer
    without events carries the position a filtered read reached: handed over too, so that it is stored."""
    try:
        async for events, cursor in stream:
            if events or cursor:
                await ahead.put((events, cursor))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await ahead.put(exc)
    else:
        await ahead.put(_END)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
