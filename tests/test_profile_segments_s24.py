"""Findings of the segments walk of 2026-12-07 (session 24): a recompute waiting for the writer evaluated the rule it
read before, so an archived segment got members again; the time sweep evaluated every chunk at its start, undoing a
log batch's later answer; retained events a long rolling window counts were purged; conditions on events the
consumer skips were accepted; CheckMembership counted the segment and GetSegmentSize read every member id; an empty
segment_id was NOT_FOUND."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from profile_helpers import CUSTOMER, DAY, event, profile_app, profile_settings

import svc_profile.consumer as consumer_module
from svc_common.errors import FailedPrecondition, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import segments as segments_module
from svc_profile.server import SegmentServicer

S = 1_000_000


def _count(event_type: str, least: int, seconds: int) -> C.Condition:
    return C.Condition(event_count=C.EventCount(event_type=event_type, min_count=least, window_seconds=seconds))


def _absence(event_type: str, seconds: int) -> C.Condition:
    return C.Condition(event_absence=C.EventAbsence(event_type=event_type, window_seconds=seconds))


def _outbox(app) -> list[tuple[str, str]]:
    t = app.core.store.t["outbox"]
    with app.core.database.connection() as conn:
        bodies = conn.execute(sa.select(t.c.body).order_by(t.c.outbox_id)).scalars().all()
    events = [event_pb2.Event.FromString(body) for body in bodies]
    return [(e.event_type, e.properties["cause"].string_value) for e in events]


def _member(app, segment_id: str, user: str) -> bool:
    return app.segments.check(segment_id, app.core.policy.ref(CUSTOMER, user, "user"))[0]


def test_a_recompute_that_waited_for_the_writer_does_not_fill_a_segment_archived_meanwhile(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="seg", condition=_count("login", 1, 7 * 86_400)))
        app.consumer.handle([event("login", user_id=f"U{i}") for i in range(3)], "c1")
        outcome: dict = {}

        def recompute() -> None:
            try:
                outcome["counts"] = app.segments.recompute("seg")
            except FailedPrecondition as exc:
                outcome["refused"] = exc

        app.core.write_lock.acquire()  # a log batch holds the writer
        waiting = threading.Thread(target=recompute)
        waiting.start()
        time.sleep(0.3)  # the job has read the rule and waits for the writer
        app.definitions.archive_segment("seg")  # the same thread holds the (re-entrant) lock
        app.core.write_lock.release()
        waiting.join()
        assert outcome["refused"].reason == "SEGMENT_ARCHIVED"
        assert _outbox(app) == [("$segment_entered", "event")] * 3 + [("$segment_exited", "archived")] * 3
        assert app.definitions.get_segment("seg").size == 0


def test_a_sweep_chunk_does_not_undo_a_later_answer_of_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = time.time_ns() // 1000 - 2 * 3600 * S
    clock = {"t": t0}
    monkeypatch.setattr(consumer_module, "now_us", lambda: clock["t"])
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="busy", condition=_count("login", 2, 3600)))
        clock["t"] = t0 + 10 * S
        app.consumer.handle([event("login", "P", at_us=t0), event("login", "P", at_us=t0 + 10 * S)], "1")
        assert _member(app, "busy", "P")
        # A sweep starting at t0+3605 s selects P; before its chunk holds the writer, a batch at t0+3620 s evaluates
        # P later (one login in the hour now: out).
        clock["t"] = t0 + 3620 * S
        app.consumer.handle([event("login", "P", at_us=t0 + 3620 * S)], "2")
        assert not _member(app, "busy", "P")
        app.segments.sweep(t0 + 3550 * S, t0 + 3605 * S)
        assert not _member(app, "busy", "P")  # the chunk ran at its own time, not the sweep's start
        assert _outbox(app) == [("$segment_entered", "event"), ("$segment_exited", "event")]


def test_events_a_long_rolling_window_counts_outlive_the_retention(tmp_path: Path) -> None:
    """event_retention_days 30 and "no trade in 60 days": the window's first, partial day is counted from the
    retained trades, so they are kept until it has left the window (the others go after 30 days)."""
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=30)) as app:
        clock = app.core.engine.clock
        edge_end = clock.start_of(clock.first_of_window(now, 60 * 86_400))
        at = (now - 60 * DAY + edge_end) // 2  # on the window's first day, inside the 60 days
        app.definitions.create_segment(
            pb.Segment(segment_id="no_trade", condition=_absence("stock_trade", 60 * 86_400))
        )
        app.consumer.handle(
            [event("stock_trade", "U1", at_us=at), event("page_view", "U1", at_us=at), event("login", "U2")], "1"
        )
        app.segments.recompute("no_trade")
        assert not _member(app, "no_trade", "U1") and _member(app, "no_trade", "U2")
        app.segments.purge_retained(now)
        app.segments.recompute("no_trade")
        assert not _member(app, "no_trade", "U1")  # its trade is still counted
        t = app.core.store.t["event"]
        with app.core.database.connection() as conn:
            kept = conn.execute(sa.select(t.c.event_type).where(t.c.occurred_us == at)).scalars().all()
        assert kept == ["stock_trade"]  # the page view, which no long window reads, went after 30 days


@pytest.mark.parametrize("event_type", ["$segment_entered", "$message_clicked", "$profile_erased"])
def test_conditions_on_events_the_consumer_skips_are_refused(tmp_path: Path, event_type: str) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        for condition, where in (
            (_count(event_type, 1, 86_400), "segment.condition.event_count.event_type"),
            (_absence(event_type, 86_400), "segment.condition.event_absence.event_type"),
        ):
            with pytest.raises(InvalidArgument, match="not kept by svc_profile") as caught:
                app.definitions.create_segment(pb.Segment(segment_id="s", condition=condition))
            assert [v.field for v in caught.value.violations] == [where]
        with pytest.raises(InvalidArgument, match="not kept") as caught:
            app.definitions.create_tag(pb.TagDefinition(name="t", condition=_count(event_type, 1, 86_400)))
        with pytest.raises(InvalidArgument) as caught:
            app.analytics.funnel(
                [pb.FunnelStep(event_type="login"), pb.FunnelStep(event_type=event_type)], 60, None, None
            )
        assert [v.field for v in caught.value.violations] == ["steps[1].event_type"]


def test_a_large_segment_is_sampled_by_look_ups_and_checked_without_a_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments_module, "EXACT_SAMPLE_MEMBERS", 10)
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="seg", condition=_count("login", 1, 86_400)))
        app.consumer.handle([event("login", user_id=f"U{i}") for i in range(40)], "1")
        app.consumer.handle([event("page_view", user_id=f"V{i}") for i in range(10)], "2")
        m = app.core.store.t["member"]
        with app.core.database.connection() as conn:
            members = set(conn.execute(sa.select(m.c.profile_id).where(m.c.is_member.is_(True))).scalars())
        size, sample, _ = app.segments.size_and_sample("seg", 5)
        assert size == 40 and len(sample) == len(set(sample)) == 5 and set(sample) <= members
        size, sample, _ = app.segments.size_and_sample("seg", 1000)
        assert len(set(sample)) == len(sample) and set(sample) <= members and len(sample) > 20
        counted = []
        monkeypatch.setattr(app.definitions, "size", lambda conn, sid: counted.append(sid) or 0)
        assert _member(app, "seg", "U1") and not _member(app, "seg", "V1")
        assert counted == []  # CheckMembership no longer counts the members
        with pytest.raises(NotFound, match="no segment 'nope'"):
            _member(app, "nope", "U1")


def test_an_empty_segment_id_is_invalid_not_missing(tmp_path: Path) -> None:
    class Call:
        def cancelled(self) -> bool:
            return False

        def done(self) -> bool:
            return False

    async def nothing():
        return
        yield

    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        servicer = SegmentServicer(app)
        with pytest.raises(InvalidArgument, match="received no message") as caught:
            asyncio.run(servicer.SetStaticMembers(nothing(), Call()))
        assert [v.field for v in caught.value.violations] == ["segment_id"]
        for call in (
            lambda: app.segments.size_and_sample("", 5),
            lambda: app.segments.check("", app.core.policy.ref(CUSTOMER, "U1", "user")),
            lambda: app.definitions.get_segment(""),
        ):
            with pytest.raises(InvalidArgument, match="segment_id is required") as caught:
                call()
            assert [v.field for v in caught.value.violations] == ["segment_id"]


def test_a_published_event_answered_duplicate_with_another_payload_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Counted as published (sending it again cannot help: its id is taken), but an ERROR names it: a different event
    holds its id in the log, and this one is not stored."""
    from svc_common.pb.qiming.collect.v1 import collect_pb2
    from svc_common.pb.qiming.common.v1 import errors_pb2
    from svc_common.published import answers

    reply = collect_pb2.IngestResponse(
        results=[
            collect_pb2.EventResult(index=0, event_id="a", status=collect_pb2.EVENT_STATUS_DUPLICATE),
            collect_pb2.EventResult(
                index=1,
                event_id="b",
                status=collect_pb2.EVENT_STATUS_DUPLICATE,
                reason=errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH,
                message="the payload differs",
            ),
        ]
    )
    with caplog.at_level("ERROR", logger="qiming.published"):
        assert list(answers(reply, 2)) == [None, None]
    (record,) = [r for r in caplog.records if r.name == "qiming.published"]
    assert "published event b was answered DUPLICATE with another payload" in record.getMessage()
