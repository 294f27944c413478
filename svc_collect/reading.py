"""ReadEvents' loop, the read path of ``CollectService``: pages of the log in order, the position past what matched
nothing, following, and the end of follow streams at shutdown.

Tracing: a following reader polls every ``follow_poll_interval_millis``. Its polls run with OpenTelemetry's
instrumentation suppressed (no ``connect`` / ``BEGIN`` / statement span per idle poll, all in one trace that lasts
as long as the stream); each page it sends gets one ``collect.read_page`` span instead. A read that does not follow
is bounded and keeps its SQL spans."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation

from svc_collect.store import LogRow, StoredEvent
from svc_collect.validation import MAX_ID_CHARS, refuse_bad_filter, refuse_nul, refuse_type_names
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.server import current_call, note_customers
from svc_common.timestamps import timestamp_micros

if TYPE_CHECKING:
    from svc_collect.service import CollectService

POSITION_EVERY_SECONDS = 5.0
"""A filtered follow whose filter matches nothing sends its position (a page without events) at most this often,
while the log moves on."""

MAX_AUDIT_CUSTOMERS = 100_000
"""An ``IngestStream`` may last for days: its audit line (written when it ends) names the customers of its batches
until it holds this many; the events themselves, in the log, are the full record."""

_tracer = trace.get_tracer("qiming.collect")


class Follows:
    """Wakes following readers: after each append of this process (the poll stays for what other collectors append
    to a shared log), and once more at shutdown, when every follow stream sends its position and ends."""

    def __init__(self) -> None:
        self.waiter = asyncio.Event()
        """Set (and replaced) after every append: take it before reading, so an append after the read still wakes."""
        self.ending = False

    def appended(self) -> None:
        woken, self.waiter = self.waiter, asyncio.Event()
        woken.set()

    def end(self) -> None:
        """End every follow stream now (and any that starts from now on): the server is stopping."""
        self.ending = True
        self.waiter.set()

    def reopen(self) -> None:
        self.ending = False
        self.waiter = asyncio.Event()


async def pages(
    service: CollectService, request: collect_pb2.ReadEventsRequest, roles: frozenset[str]
) -> AsyncIterator[tuple[list[StoredEvent], str]]:
    """Batches of events in log order, each with the cursor of its last event; a batch without events carries the
    position past what the filter skipped (at the end of a read that does not follow, and while following at most
    every ``POSITION_EVERY_SECONDS``): a reader that resumes from it does not scan that part of the log again."""
    if request.unmask:
        service.check_unmask(roles)
    user_id = anonymous_id = None
    if request.HasField("user"):
        user_id, anonymous_id = log_user(request.user)
        if user_id is not None:
            note_customers(user_id)  # the audit record names the customer whose events were read
    log = service.event_log
    start = request.WhichOneof("start")
    # From a receive time: events received before it are skipped until the first one at or after it. The start
    # position may be before such events: the head, when the time is still to come (a follower must not get what
    # arrives until then), or a JetStream search that leaves room for stamps out of order.
    not_before_us: int | None = None
    if start == "after_cursor":
        after = service.parse_cursor(request.after_cursor)
        await service.refuse_cursor_ahead(after, request.after_cursor)
    elif start == "from_received_at":
        not_before_us = timestamp_micros(request.from_received_at, "from_received_at")
        after = await asyncio.to_thread(log.seq_before_time, not_before_us)
    else:
        after = 0
    batch_size = min(request.batch_size or service.settings.read_batch_events, 10_000)
    remaining = request.max_events or None
    poll_seconds = service.settings.follow_poll_interval_millis / 1000
    types = tuple(request.event_types)
    refuse_bad_filter("event_types", types)
    refuse_type_names(types)
    follow = request.follow
    follows = service.follows
    filtered = bool(types) or user_id is not None or anonymous_id is not None or not_before_us is not None
    sent = after  # the position the reader knows
    checked_at = time.monotonic()
    while remaining is None or remaining > 0:
        if follow and follows.ending:
            break
        limit = batch_size if remaining is None else min(batch_size, remaining)
        waiter = follows.waiter  # taken before reading: an append after the read still wakes us
        position_due = not follow or time.monotonic() - checked_at >= POSITION_EVERY_SECONDS
        if position_due:
            checked_at = time.monotonic()
        polled_at = time.time_ns()
        with suppress_instrumentation() if follow else contextlib.nullcontext():
            # Everything at or below the head read first is committed: a short page examined the log up to it.
            head = (await asyncio.to_thread(log.head)).last_seq if filtered and position_due else 0
            page = await asyncio.to_thread(log.read, after, limit, types, user_id, anonymous_id)
        stored = page.events
        after = max(after, page.scanned_to, head if len(stored) < limit else 0)
        if stored and not_before_us is not None:
            first = next((i for i, e in enumerate(stored) if e.received_at_us >= not_before_us), None)
            stored = stored[first:] if first is not None else []
            if first is not None:
                not_before_us = None
        if stored:
            if remaining is not None:
                remaining -= len(stored)
            if follow:
                _page_span(polled_at, len(stored))
            sent = stored[-1].seq
            yield stored, service.cursor(sent)
            continue
        if page.events:
            continue  # all received before the start; ``after`` has moved past them
        if not follow:
            break
        if after > sent and position_due:
            sent = after
            yield [], service.cursor(after)
        with contextlib.suppress(TimeoutError):  # asyncio.timeout: a cancellation is never taken for it
            async with asyncio.timeout(poll_seconds):
                await waiter.wait()
    if after > sent:
        yield [], service.cursor(after)


def _page_span(started_ns: int, events: int) -> None:
    span = _tracer.start_span("collect.read_page", start_time=started_ns, attributes={"collect.events": events})
    span.end()


def log_user(user: types_pb2.UserRef) -> tuple[str | None, str | None]:
    if not user.value:
        raise InvalidArgument("user.value is required", violations=[FieldViolation("user.value", "required")])
    refuse_nul("user.value", user.value)
    if user.type == types_pb2.ID_TYPE_CUSTOMER:
        return user.value, None
    if user.type == types_pb2.ID_TYPE_ANONYMOUS:
        return None, user.value
    raise InvalidArgument(
        "the log is indexed by customer number (ID_TYPE_CUSTOMER) and anonymous id (ID_TYPE_ANONYMOUS); "
        "resolve other ids with svc_profile first",
        violations=[FieldViolation("user.type", "use ID_TYPE_CUSTOMER or ID_TYPE_ANONYMOUS")],
    )


def note_batch_customers(rows: Sequence[LogRow], pending: Sequence[object], events: Sequence[event_pb2.Event]) -> None:
    """The audit record of an ingest names the distinct customer numbers of its events (validated ones from the
    rows; a rejected event's only when it is a plausible id: it went to the quarantine under that number).

    The hot path: one set comprehension over the rows, handed to the call as it is (an ``Ingest``'s set is empty
    until here) — about 0.03 µs per event, against ~24 µs of the collector's CPU per event."""
    call = current_call()
    if call is None or len(call.customers) >= MAX_AUDIT_CUSTOMERS:
        return
    customers = {row[2] for row in rows}  # LogRow.user_id (a tuple's item: quicker than its name)
    customers.discard(None)
    if len(rows) < len(pending):
        customers.update(customers_of(events[o.index] for o in pending if o.__class__ is not int))  # type: ignore[attr-defined]
    if call.customers:
        call.customers |= customers  # type: ignore[arg-type]
    else:
        call.customers = customers  # type: ignore[assignment]


def customers_of(events: Iterable[event_pb2.Event]) -> set[str]:
    """The customer numbers of ``events`` that can be one (not empty, not over-long, no NUL)."""
    return {e.user_id for e in events if 0 < len(e.user_id) <= MAX_ID_CHARS and "\x00" not in e.user_id}
