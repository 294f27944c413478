"""The shortcuts of the ingest hot path give the same answers as the long way: cached names, the
small-event skip of string-length checks, one encoding per event, and results written compactly."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from collect_helpers import collect_settings, make_event, resent_changed_and_bad, running_service

from svc_collect import server
from svc_collect.service import ACCEPTED, DUPLICATE, REJECTED, IngestOutcomes
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2

R = errors_pb2.ErrorReason


def test_cached_names_do_not_let_bad_ones_through(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            events = []
            for _ in range(3):
                events.append(make_event("page_view", screen="home"))
                events.append(make_event("9lives", screen="home"))
                bad_name = make_event("page_view")
                bad_name.properties["no spaces"].string_value = "x"
                events.append(bad_name)
            outcomes = await service.ingest(events)
            assert [o.status for o in outcomes] == [ACCEPTED, REJECTED, REJECTED] * 3
            assert {o.reason for o in outcomes if o.status == REJECTED} == {R.ERROR_REASON_INVALID_NAME}

    asyncio.run(scenario())


def test_string_limits_hold_on_both_sides_of_the_small_event_shortcut(tmp_path: Path) -> None:
    """Events of at most max_string_chars bytes skip per-string length checks (no string can be longer);
    bigger ones, multi-byte text included, are checked character by character as before."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            limit = service.settings.max_string_chars
            cases = [
                (make_event(s="x" * limit), ACCEPTED),
                (make_event(s="x" * (limit + 1)), REJECTED),
                (make_event(s="启" * limit), ACCEPTED),  # 3 bytes a character: a big event, within the limit
                (make_event(s="启" * (limit + 1)), REJECTED),
                (make_event(s="启" * 100), ACCEPTED),
            ]
            too_many = make_event()  # a small event whose list is too long: still refused
            too_many.properties["tags"].string_list_value.values.extend([""] * 1001)
            cases.append((too_many, REJECTED))
            nan = make_event(d=float("nan"))
            cases.append((nan, REJECTED))
            long_context = make_event()
            long_context.context.screen = "启" * (limit + 1)
            cases.append((long_context, REJECTED))
            outcomes = await service.ingest([event for event, _ in cases])
            assert [o.status for o in outcomes] == [status for _, status in cases]
            assert [o.reason for o in outcomes if o.status == REJECTED] == [
                R.ERROR_REASON_STRING_TOO_LONG,
                R.ERROR_REASON_STRING_TOO_LONG,
                R.ERROR_REASON_STRING_TOO_LONG,
                R.ERROR_REASON_VALUE_NOT_ALLOWED,
                R.ERROR_REASON_STRING_TOO_LONG,
            ]

    asyncio.run(scenario())


def test_upper_case_ids_are_stored_and_fingerprinted_as_lower_case(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            event_id = str(uuid.uuid4())
            upper = make_event(event_id=event_id.upper(), note="same")
            lower = event_pb2.Event()
            lower.CopyFrom(upper)
            lower.event_id = event_id
            first, second = await service.ingest([upper, lower])
            assert (first.status, second.status, second.reason) == (ACCEPTED, DUPLICATE, 0)
            assert first.event_id == event_id

    asyncio.run(scenario())


def test_compact_results_equal_the_outcomes_one_by_one(tmp_path: Path) -> None:
    """The servicer writes results from IngestOutcomes without EventOutcome objects; the response must be
    the one the outcomes describe: accepted, duplicate, duplicate with another payload, rejected."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            same, other, bad = await resent_changed_and_bad(service)
            outcomes = await service.ingest([make_event(), same, other, bad, make_event(amount_fen=5)])
            assert isinstance(outcomes, IngestOutcomes)
            compact = collect_pb2.IngestResponse()
            counts = server._fill_results(compact, outcomes)
            one_by_one = collect_pb2.IngestResponse()
            assert server._fill_results(one_by_one, list(outcomes)) == counts == (2, 2, 1)
            assert compact == one_by_one
            statuses = [(r.index, r.status, r.reason) for r in compact.results]
            assert statuses == [
                (0, ACCEPTED, 0),
                (1, DUPLICATE, 0),
                (2, DUPLICATE, R.ERROR_REASON_PAYLOAD_MISMATCH),
                (3, REJECTED, R.ERROR_REASON_MISSING_FIELD),
                (4, ACCEPTED, 0),
            ]
            assert compact.results[2].message and compact.results[3].quarantine_id
            assert compact.results[1].cursor == compact.results[2].cursor == outcomes[1].cursor
            assert all(r.event_id for r in compact.results)

    asyncio.run(scenario())


def test_positions_by_receive_time_without_an_index(database_url: str, tmp_path: Path) -> None:
    """seq_before_time and the delivery delays search the primary key (receive times rise with it): the
    answers equal a scan's, at every boundary, including equal times and times before or after the log."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url)) as (service, _):
            log = service._log
            assert log.seq_before_time(123) == 0
            base = 1_700_000_000_000_000
            times = [base, base + 10, base + 10, base + 10, base + 25, base + 40, base + 41, base + 90]
            stamped: list[tuple[int, int]] = []  # (seq, received_at_us)
            for step, at in enumerate(times):
                batch, _ = service._prepare([make_event(occurred_at_us=at - 7) for _ in range(step % 3 + 1)], at)
                (appended,) = await asyncio.to_thread(log.append, [batch], at)
                stamped.extend((a.seq, at) for a in appended)
            last = stamped[-1][0]
            for probe in sorted({t + d for t in times for d in (-1, 0, 1)} | {0, base + 10_000}):
                expected = next((seq - 1 for seq, at in stamped if at >= probe), last)
                assert log.seq_before_time(probe) == expected, probe
            delays = log.delivery_delays_us(base + 10, base + 41, 100)
            assert delays == [7] * sum(1 for _, at in stamped if base + 10 <= at < base + 41)
            assert log.delivery_delays_us(base + 10, base + 41, 2) == [7, 7]
            assert log.delivery_delays_us(base + 91, base + 99, 10) == []

    asyncio.run(scenario())
