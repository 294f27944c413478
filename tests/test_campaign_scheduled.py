"""Trigger ``scheduled``: everyone in a svc_profile segment enters at a time, once or by cron in a time zone. The
members come from the real svc_profile over gRPC (in this process, a free port, SQLite); a run is persisted
with its cursor, so a crash or a restart in the middle of a run resumes it and enters nobody twice; between
two batches event triggers go on; entry rules and the policy gate apply as for any trigger."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from campaign_helpers import (
    PUSH,
    T0,
    add_template,
    campaign_service,
    event,
    messages,
    node,
    on_event,
    profile_server,
    run_journey,
    simple_graph,
)

from svc_campaign.clock import ManualClock
from svc_common.conditions import to_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc

HOUR = dt.timedelta(hours=1)
CUSTOMERS = 90  # K000..K089; the even ones are in branch SH01


def populate(address: str) -> int:
    """Profiles with a branch, and the segment "sh01" of those in SH01; returns its size."""
    with grpc.insecure_channel(address) as channel:
        rows = [
            ppb.UpsertAttributesRequest(
                user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=f"K{i:03d}"),
                attributes={"branch": to_proto("SH01" if i % 2 == 0 else "SH02")},
                source_system="crm",
            )
            for i in range(CUSTOMERS)
        ]
        pgrpc.ProfileServiceStub(channel).ImportAttributes(iter([ppb.ImportAttributesRequest(rows=rows)]), timeout=60)
        segments = pgrpc.SegmentServiceStub(channel)
        in_sh01 = C.Condition(
            comparison=C.Comparison(
                field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch"),
                operator=C.OPERATOR_EQ,
                value=to_proto("SH01"),
            )
        )
        segments.CreateSegment(
            ppb.CreateSegmentRequest(segment=ppb.Segment(segment_id="sh01", condition=in_sh01)), timeout=10
        )
        segments.RecomputeSegment(ppb.RecomputeSegmentRequest(segment_id="sh01"), timeout=60)
        return segments.GetSegmentSize(ppb.GetSegmentSizeRequest(segment_id="sh01"), timeout=10).size


def scheduled(segment_id: str = "sh01", *, run_at: dt.datetime | None = None, cron: str = "", zone: str = ""):
    spec = pb.ScheduledTrigger(segment_id=segment_id, cron=cron, timezone=zone)
    if run_at is not None:
        spec.run_at.FromDatetime(run_at)
    return pb.Trigger(scheduled=spec)


def runs(service, journey_id: str = "j1") -> list[pb.ScheduledRun]:
    with service.db.connection() as conn:
        return service.scheduler.list_runs(conn, journey_id, 50)


def drain(service, limit: int = 1000) -> int:
    steps = 0
    while service.scheduler.run_once() and steps < limit:
        steps += 1
    return steps


def participants(service, journey_id: str = "j1") -> list[str]:
    from sqlalchemy import select

    i = service.t["instance"].c
    with service.db.connection() as conn:
        return list(conn.execute(select(i.user_id).where(i.journey_id == journey_id)).scalars())


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    with profile_server(tmp_path_factory.mktemp("svc_profile")) as address:
        assert populate(address) == CUSTOMERS // 2
        yield address


def test_a_run_resumes_after_a_crash_and_a_restart_and_enters_everyone_once(
    tmp_path, database_url, profiles, monkeypatch
) -> None:
    settings = {"profile_address": profiles, "schedule_batch_size": 10}
    clock = ManualClock(T0)
    with campaign_service(tmp_path, database_url, clock=clock, settings=settings) as service:
        add_template(service)
        run_journey(service, simple_graph(scheduled(run_at=T0 + HOUR)))
        run_journey(service, simple_graph(on_event("login")), "on_login")
        assert service.scheduler.run_once() == 0 and runs(service) == []  # not due yet
        clock.advance(hours=1)
        assert service.scheduler.run_once() > 0  # the run is created and the members exported
        [run] = runs(service)
        assert run.state == pb.ScheduledRun.STATE_ENTERING and run.members == CUSTOMERS // 2
        assert run.scheduled_for.ToDatetime(tzinfo=dt.UTC) == T0 + HOUR
        assert service.scheduler.run_once() == 10  # one batch
        # Between two batches the log goes on: an event trigger enters at once.
        assert service.engine.handle([event("login", "K001", T0 + HOUR)]).entered == 1

        # A crash in the middle of the next batch: nothing of it stays, the cursor does not move.
        calls = {"n": 0}
        enter = service.walker.enter

        def crash_on_the_fifth(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 5:
                raise RuntimeError("killed")
            return enter(*args, **kwargs)

        monkeypatch.setattr(service.walker, "enter", crash_on_the_fifth)
        with pytest.raises(RuntimeError):
            service.scheduler.run_once()
        [run] = runs(service)
        assert run.processed == 10 and len(participants(service)) == 10
    # Restart: a new process on the same database picks the run up where its last batch committed.
    with campaign_service(tmp_path, database_url, clock=clock, settings=settings) as service:
        assert drain(service) == 5  # four batches and the finish
        [run] = runs(service)
        assert run.state == pb.ScheduledRun.STATE_DONE and run.finished_at.ToDatetime(tzinfo=dt.UTC) == T0 + HOUR
        assert run.processed == run.entered == CUSTOMERS // 2
        entered = participants(service)
        assert sorted(entered) == [f"K{i:03d}" for i in range(0, CUSTOMERS, 2)]
        sent = [m.user.value for m in messages(service) if m.journey_id == "j1"]
        assert sorted(sent) == sorted(entered)  # one message each, through the gate
        assert participants(service, "on_login") == ["K001"]
        clock.advance(hours=24)
        assert service.scheduler.run_once() == 0 and len(runs(service)) == 1  # once means once
        from sqlalchemy import func, select

        with service.db.connection() as conn:
            left = conn.execute(select(func.count()).select_from(service.t["scheduled_member"])).scalar_one()
        assert left == 0  # a finished run's member list is dropped


def test_cron_runs_at_each_local_time_applies_entry_rules_and_skips_stale_times(tmp_path, profiles) -> None:
    clock = ManualClock(T0)  # Monday 10:00 in Shanghai
    settings = {"profile_address": profiles, "schedule_batch_size": 100}
    with campaign_service(tmp_path, clock=clock, settings=settings) as service:
        add_template(service)
        rules = pb.EntryRules(allow_reentry=True, reentry_cooldown_seconds=36 * 3600)
        run_journey(service, simple_graph(scheduled(cron="0 9 * * 1-5")), rules=rules)
        assert service.scheduler.run_once() == 0  # Monday 09:00 was before the journey started
        tuesday_9 = dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC)
        clock.set(tuesday_9 - dt.timedelta(seconds=1))
        assert service.scheduler.run_once() == 0
        clock.set(tuesday_9)
        drain(service)
        [tuesday] = runs(service)
        assert tuesday.scheduled_for.ToDatetime(tzinfo=dt.UTC) == tuesday_9
        assert tuesday.entered == CUSTOMERS // 2
        # Wednesday: within the 36 h re-entry cooldown: the entry rules refuse everyone (processed, not entered).
        clock.set(tuesday_9 + 24 * HOUR + dt.timedelta(minutes=3))
        drain(service)
        wednesday = runs(service)[0]
        assert (wednesday.processed, wednesday.entered) == (CUSTOMERS // 2, 0)
        # Thursday 09:00 missed while the service was down for more than the catch-up hour: skipped; Friday runs.
        clock.set(tuesday_9 + 48 * HOUR + 2 * HOUR)
        assert service.scheduler.run_once() == 0 and len(runs(service)) == 2
        clock.set(tuesday_9 + 72 * HOUR + dt.timedelta(minutes=30))
        drain(service)
        friday = runs(service)[0]
        assert friday.scheduled_for.ToDatetime(tzinfo=dt.UTC) == tuesday_9 + 72 * HOUR
        assert friday.entered == CUSTOMERS // 2
        # Saturday and Sunday are not in 1-5.
        clock.set(tuesday_9 + 5 * 24 * HOUR)
        assert service.scheduler.run_once() == 0 and len(runs(service)) == 3
        assert len(participants(service)) == CUSTOMERS  # twice each: Tuesday and Friday


def test_paused_runs_wait_stopped_runs_are_cancelled_and_export_failures_are_retried(tmp_path, profiles) -> None:
    clock = ManualClock(T0)
    settings = {"profile_address": profiles, "schedule_batch_size": 10}
    with campaign_service(tmp_path, clock=clock, settings=settings) as service:
        add_template(service)
        run_journey(service, simple_graph(scheduled("no_such_segment")), "missing")
        service.scheduler.run_once()
        [failed] = runs(service, "missing")
        assert failed.state == pb.ScheduledRun.STATE_EXPORTING and "no_such_segment" in failed.last_error
        run_journey(service, simple_graph(scheduled()), "j1")  # no time: once, as soon as it runs
        drain_steps = [service.scheduler.run_once() for _ in range(2)]  # export, one batch
        assert all(drain_steps)
        assert runs(service)[0].processed == 10
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "pause", clock.now())
            service.journeys.transition(conn, "missing", "stop", clock.now())
        assert service.scheduler.run_once() == 0 and runs(service)[0].processed == 10  # paused: waits
        assert runs(service, "missing")[0].state == pb.ScheduledRun.STATE_CANCELLED
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "start", clock.now())
        drain(service)
        assert runs(service)[0].state == pb.ScheduledRun.STATE_DONE
        assert len(participants(service)) == CUSTOMERS // 2
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "stop", clock.now())
        assert runs(service)[0].state == pb.ScheduledRun.STATE_DONE  # a finished run stays done


def test_publishing_checks_the_schedule(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service)
        run_journey(service, simple_graph(scheduled(cron="*/30 8-17 * * mon-fri", zone="Asia/Shanghai")))
        bad = {
            "cron": (scheduled(cron="0 9 * *"), "five fields"),
            "zone": (scheduled(cron="0 9 * * *", zone="Mars/Base"), "Mars/Base"),
            "zone_directory": (scheduled(cron="0 9 * * *", zone="Asia"), "unknown time zone 'Asia'"),
            "both": (scheduled(run_at=T0, cron="0 9 * * *"), "not both"),
            "segment": (scheduled(""), "segment_id"),
            "hour": (scheduled(cron="0 24 * * *"), "hour '24'"),
            "never": (scheduled(cron="0 9 31 2 *"), "names no time"),
        }
        for journey_id, (trigger, why) in bad.items():
            with service.db.connection(write=True) as conn:
                service.journeys.create(
                    conn, pb.Journey(journey_id=journey_id, name=journey_id, draft=simple_graph(trigger)), T0
                )
                with pytest.raises(InvalidArgument, match=why):
                    service.journeys.publish(conn, journey_id, 0, T0)


def test_the_scheduled_graph_can_wait_and_branch_like_any_other(tmp_path, profiles) -> None:
    """The entry context names the run and the segment; a wait after a scheduled entry is an ordinary timer."""
    clock = ManualClock(T0)
    with campaign_service(tmp_path, clock=clock, settings={"profile_address": profiles}) as service:
        add_template(service, body="{{event.segment_id}} 本周基金市场回顾")
        graph = pb.JourneyGraph(
            entry_node_id="start",
            nodes=[
                node("start", trigger=pb.TriggerNode(trigger=scheduled(), next_node_id="wait")),
                node("wait", wait=pb.WaitNode(duration_seconds=3600, next_node_id="send")),
                node("send", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="end", is_marketing=True)),
                node("end", exit=pb.ExitNode(reason="done")),
            ],
        )
        run_journey(service, graph)
        drain(service)
        assert messages(service) == [] and service.engine.pending_timers() == CUSTOMERS // 2
        clock.advance(hours=1)
        while service.engine.fire_due_timers().timers_fired:
            pass
        sent = messages(service)
        assert len(sent) == CUSTOMERS // 2 and sent[0].body == "sh01 本周基金市场回顾"


def test_over_grpc_a_scheduled_journey_publishes_runs_and_reports_its_runs(tmp_path, profiles) -> None:
    """The service as a real process, svc_profile at its address: publishing succeeds (it used to answer
    INVALID_ARGUMENT), the run enters the segment's members, and ListScheduledRuns shows it."""
    from campaign_helpers import Gateway
    from profile_helpers import wait_for

    from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as cgrpc
    from svc_common.process import ServerProcess

    gateway = Gateway()
    env = {
        "QIMING_CAMPAIGN_PROFILE_ADDRESS": profiles,
        "QIMING_CAMPAIGN_GATEWAY_URL": gateway.url,
        "QIMING_CAMPAIGN_SCHEDULE_POLL_MILLIS": "50",
        "QIMING_CAMPAIGN_SCHEDULE_BATCH_SIZE": "7",
    }
    try:
        with (
            ServerProcess("campaign", work_dir=tmp_path, env=env) as campaign,
            grpc.insecure_channel(campaign.address) as channel,
        ):
            templates, journeys = cgrpc.TemplateServiceStub(channel), cgrpc.JourneyServiceStub(channel)
            templates.CreateTemplate(
                pb.CreateTemplateRequest(template=pb.Template(template_id="t1", name="t1", body="本周市场回顾")),
                timeout=10,
            )
            graph = simple_graph(scheduled())  # once, as soon as it runs
            journey = pb.Journey(journey_id="weekly", name="weekly", draft=graph)
            journeys.CreateJourney(pb.CreateJourneyRequest(journey=journey), timeout=10)
            published = journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="weekly"), timeout=10)
            assert published.journey.published_version == 1
            journeys.StartJourney(pb.StartJourneyRequest(journey_id="weekly"), timeout=10)

            def done() -> list[pb.ScheduledRun]:
                listed = journeys.ListScheduledRuns(pb.ListScheduledRunsRequest(journey_id="weekly"), timeout=10)
                return [r for r in listed.runs if r.state == pb.ScheduledRun.STATE_DONE]

            [run] = wait_for(done, timeout=60)
            assert (run.segment_id, run.members, run.entered) == ("sh01", CUSTOMERS // 2, CUSTOMERS // 2)
            wait_for(lambda: len(gateway.requests) == CUSTOMERS // 2)
            customers = sorted(body["customer_id"] for _, body in gateway.requests)
            assert customers == [f"K{i:03d}" for i in range(0, CUSTOMERS, 2)]
    finally:
        gateway.close()


class BrokenOnce:
    """svc_profile's export, cut after two pages the first time (a broken stream, a crash while exporting), with a
    member that has no customer id."""

    def __init__(self, address: str) -> None:
        from svc_campaign.profiles import GrpcSegmentMembers

        self.real = GrpcSegmentMembers(address, page_size=10)
        self.calls = 0
        self.afters: list[str] = []
        self.delivered: list[str] = []

    def export(self, segment_id: str, after: str = ""):
        from svc_campaign.profiles import ExportFailed

        self.calls += 1
        self.afters.append(after)
        if not after:
            yield [("0-anonymous", "")]
        for n, page in enumerate(self.real.export(segment_id, after)):
            if self.calls == 1 and n == 2:
                raise ExportFailed("stream broken")
            self.delivered.extend(pid for pid, _ in page)
            yield page


def test_an_interrupted_export_resumes_without_doubling_members(tmp_path, database_url, profiles) -> None:
    clock = ManualClock(T0)
    members = BrokenOnce(profiles)
    with campaign_service(tmp_path, database_url, clock=clock, members=members) as service:
        add_template(service)
        run_journey(service, simple_graph(scheduled()))
        assert service.scheduler.run_once() == 1  # the run was created; its export broke after two pages
        [run] = runs(service)
        assert (run.state, run.members, run.last_error) == (pb.ScheduledRun.STATE_EXPORTING, 20, "stream broken")
        assert service.scheduler.run_once() == 0  # not retried at once
        clock.advance(seconds=11)
        drain(service)
        [run] = runs(service)
        assert (run.state, run.members, run.without_customer_id) == (pb.ScheduledRun.STATE_DONE, CUSTOMERS // 2, 1)
        assert run.entered == CUSTOMERS // 2 and members.calls == 2
        # The second export resumed after the last member the first one stored: nobody was streamed twice.
        assert members.afters[0] == "" and members.afters[1] == members.delivered[19]
        assert len(members.delivered) == len(set(members.delivered)) == CUSTOMERS // 2
        assert sorted(participants(service)) == [f"K{i:03d}" for i in range(0, CUSTOMERS, 2)]


def test_known_zone_refuses_names_that_are_no_zone() -> None:
    from svc_campaign.cron import known_zone

    assert str(known_zone("Asia/Shanghai")) == "Asia/Shanghai"
    for name in ("Asia", "Mars/Base", "../etc/passwd", ""):  # a directory, unknown, a path, empty
        assert known_zone(name) is None, name


def test_each_step_of_a_run_is_one_trace_with_its_calls_to_svc_profile(
    tmp_path, profiles, span_exporter, monkeypatch
) -> None:
    """Session 17 (after walk walke m4): a scheduled run's export and entries called svc_profile outside any span, so
    svc_profile's audit lines of ExportMembers / BatchGetProfiles had trace ids found nowhere in svc_campaign (the
    gRPC client sends the current span's context: tests/test_fixtrace17_batch_traces.py)."""
    from opentelemetry import trace

    settings = {"profile_address": profiles, "schedule_batch_size": 50}
    clock = ManualClock(T0)
    with campaign_service(tmp_path, None, clock=clock, settings=settings) as service:
        add_template(service)
        run_journey(service, simple_graph(scheduled(run_at=T0)))
        calls: list[tuple[str, int]] = []

        def traced(name, method):
            def call(*args, **kwargs):
                calls.append((name, trace.get_current_span().get_span_context().trace_id))
                return method(*args, **kwargs)

            return call

        monkeypatch.setattr(service.scheduler.members, "export", traced("export", service.scheduler.members.export))
        # The entries' read-ahead, where svc_profile's directory makes its BatchGetProfiles.
        monkeypatch.setattr(service.walker, "prefetch", traced("prefetch", service.walker.prefetch))
        span_exporter.clear()
        assert service.scheduler.run_once() > 0  # the export
        assert service.scheduler.run_once() > 0  # a batch of entries
        steps = [s for s in span_exporter.get_finished_spans() if s.name == "campaign scheduled run step"]
        assert [s.attributes["qiming.step"] for s in steps] == ["exporting", "entering"]
        exporting, entering = (s.context.trace_id for s in steps)
        assert calls and {trace_id for name, trace_id in calls if name == "export"} == {exporting}
        assert {trace_id for name, trace_id in calls if name == "prefetch"} == {entering}
