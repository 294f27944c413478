"""Due timers decide on the journey's state as it is now, not on the engine's cache: a journey stopped or paused
by another process (another Engine on the same database, whose change this engine's cache has not seen) enters
nobody from a due trigger timer (dwell, absence), and its waits and trigger timers are re-armed while it is paused.
On PostgreSQL a stop still in progress in another transaction holds the journey row: the timers wait for it.
The scheduler, too, decides on the state it reads, not on its cache."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from campaign_helpers import add_template, campaign_service, event, messages, run_journey, simple_graph, wait_then_send
from test_campaign_review_fixes import _Members

from svc_campaign.service import CampaignService
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

STALE = {"journey_refresh_seconds": 3600}
"""The first engine's cache is not refreshed during a test: it still says RUNNING."""
DWELL = pb.Trigger(dwell=pb.DwellTrigger(screen="fund_detail", timeout_seconds=60))


@contextmanager
def two_services(tmp_path, database_url, **kw) -> Iterator[tuple[CampaignService, CampaignService]]:  # type: ignore[no-untyped-def]
    (tmp_path / "b").mkdir()
    with (
        campaign_service(tmp_path, database_url, settings=STALE, **kw) as one,
        campaign_service(tmp_path / "b", database_url, clock=one.clock, **kw) as other,
    ):
        yield one, other


def _participants(service: CampaignService) -> list[tuple[str, str]]:
    i = service.t["instance"].c
    with service.db.connection() as conn:
        return [tuple(r) for r in conn.execute(sa.select(i.user_id, i.status).order_by(i.user_id))]


def _timers(service: CampaignService) -> list[tuple[str, dt.datetime]]:
    t = service.t["timer"].c
    with service.db.connection() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t.kind, t.due_at))]


def _mark_stopped(conn: sa.Connection, other: CampaignService) -> None:
    """The first half of ``Journeys.transition(stop)`` in the other process: the row locked and STOPPED."""
    j = other.t["journey"]
    conn.execute(sa.select(j.c.journey_id).where(j.c.journey_id == "j1").with_for_update())
    conn.execute(sa.update(j).where(j.c.journey_id == "j1").values(journey_state="STOPPED"))


def test_a_due_trigger_timer_enters_nobody_once_another_process_stopped_its_journey(tmp_path, database_url) -> None:
    with two_services(tmp_path, database_url) as (one, other):
        add_template(one)
        run_journey(one, simple_graph(DWELL))
        one.engine.handle([event("page_view", "c1", screen="fund_detail"), event("page_view", "c2", screen="x")])
        one.clock.advance(seconds=61)
        now = one.clock.now()
        if database_url.startswith("postgresql"):
            # The stop is under way in the other process (row locked, not committed, timers not yet deleted):
            # the due timer waits for it instead of entering c1 into a journey about to stop.
            with other.db.connection(write=True) as conn:
                _mark_stopped(conn, other)
                fired = one.engine.fire_due_timers()
                assert (fired.timers_fired, fired.entered) == (0, 0)
                other.engine.stop_journey(conn, "j1", "stopped", now)
        else:  # one writer: the other process's stop committed its state before this engine fires
            with other.db.connection(write=True) as conn:
                _mark_stopped(conn, other)
            assert one.engine.journey("j1").state == "RUNNING"  # the cache has not seen it
            fired = one.engine.fire_due_timers()
            assert fired.entered == 0
            with other.db.connection(write=True) as conn:
                other.engine.stop_journey(conn, "j1", "stopped", now)
        assert _participants(one) == [] and messages(one) == [] and one.engine.pending_timers() == 0


def test_due_timers_of_a_journey_another_process_paused_wait_until_it_runs_again(tmp_path, database_url) -> None:
    with two_services(tmp_path, database_url) as (one, other):
        add_template(one)
        run_journey(one, simple_graph(DWELL), "j1")
        run_journey(one, wait_then_send(60, entry_event="signup"), "j2")
        one.engine.handle([event("page_view", "c1", screen="fund_detail"), event("signup", "c2")])
        one.clock.advance(seconds=61)
        with other.db.connection(write=True) as conn:
            for journey_id in ("j1", "j2"):
                other.journeys.transition(conn, journey_id, "pause", one.clock.now())
        assert one.engine.journey("j1").state == "RUNNING"  # the cache has not seen it
        fired = one.engine.fire_due_timers()
        assert fired.entered == 0 and messages(one) == []
        recheck = one.clock.now() + dt.timedelta(seconds=one.settings.paused_recheck_seconds)
        assert sorted(_timers(one)) == [("trigger", recheck), ("wait", recheck)]  # re-armed, nobody dropped
        assert _participants(one) == [("c2", "waiting")]
        with other.db.connection(write=True) as conn:
            for journey_id in ("j1", "j2"):
                other.journeys.transition(conn, journey_id, "start", one.clock.now())
        one.clock.advance(seconds=one.settings.paused_recheck_seconds)
        fired = one.engine.fire_due_timers()
        assert fired.entered == 1
        assert sorted((m.journey_id, m.user.value) for m in messages(one)) == [("j1", "c1"), ("j2", "c2")]


def test_a_due_trigger_timer_fires_once_another_process_resumed_its_journey(tmp_path, database_url) -> None:
    with two_services(tmp_path, database_url) as (one, other):
        add_template(one)
        run_journey(one, simple_graph(DWELL))
        one.engine.handle([event("page_view", "c1", screen="fund_detail")])
        with one.db.connection(write=True) as conn:
            one.journeys.transition(conn, "j1", "pause", one.clock.now())
            one.engine.refresh(conn)
        with other.db.connection(write=True) as conn:
            other.journeys.transition(conn, "j1", "start", one.clock.now())
        assert one.engine.journey("j1").state == "PAUSED"  # the cache has not seen the resume
        one.clock.advance(seconds=61)
        assert one.engine.fire_due_timers().entered == 1
        assert [m.user.value for m in messages(one)] == ["c1"]


def test_a_scheduled_run_planned_by_another_process_is_not_cancelled_by_a_stale_cache(tmp_path, database_url) -> None:
    members = _Members([("p1", "c1"), ("p2", "c2")])
    with two_services(tmp_path, database_url, members=members) as (one, other):
        add_template(one, "t1", body="新基金开售")
        one.scheduler.run_once()  # its cache is loaded: no journey runs yet
        run_journey(other, simple_graph(pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="s1"))))
        other.scheduler.run_once()  # planned and exported by the other process
        assert one.engine.journey("j1") is None  # this cache has not seen the start
        one.scheduler.run_once()  # was: cancelled, as if the journey had stopped
        for _ in range(2):
            other.scheduler.run_once()
        assert sorted(m.user.value for m in messages(one)) == ["c1", "c2"]
