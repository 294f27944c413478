"""Archiving a segment ends its memberships through the outbox; a recompute over a large population runs as
a background job whose progress and result are polled (in-process and over gRPC)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest
from profile_helpers import event, profile_app, profile_process, profile_settings, ref, wait_for

from svc_common.conditions import to_proto
from svc_common.errors import FailedPrecondition, NotFound
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_profile.segments import OutboxPublisher


class Recorder:
    def __init__(self) -> None:
        self.sent: list = []

    async def publish(self, events) -> collect_pb2.IngestResponse:
        self.sent.extend(events)
        return collect_pb2.IngestResponse(
            results=[
                collect_pb2.EventResult(index=i, event_id=e.event_id, status=collect_pb2.EVENT_STATUS_ACCEPTED)
                for i, e in enumerate(events)
            ]
        )


def drain_all(publisher: OutboxPublisher) -> None:
    """Publish until the outbox is empty (a person's rows go one per publish, in order)."""
    while asyncio.run(publisher.drain()):
        pass


def logins(n: int, days: int = 7) -> C.Condition:
    return C.Condition(event_count=C.EventCount(event_type="login", min_count=n, window_seconds=days * 86_400))


def rating_at_least(value: str) -> C.Condition:
    field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="risk_rating")
    return C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_GTE, value=to_proto(value)))


def test_archiving_a_segment_exits_its_members_through_the_outbox(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="loggers", condition=logins(1)))
        app.definitions.create_segment(
            pb.Segment(segment_id="reader", condition=C.Condition(in_segment=C.SegmentMembership(segment_id="loggers")))
        )
        batch = [event("login", user_id=u) for u in ("A1", "A2")] + [event("page_view", user_id="A3")]
        app.consumer.handle(batch, "c1")
        assert app.definitions.get_segment("loggers").size == 2

        with pytest.raises(FailedPrecondition, match="'reader'"):  # a segment still reads it
            app.definitions.archive_segment("loggers")
        app.definitions.archive_segment("reader")
        recorder = Recorder()
        publisher = OutboxPublisher(app.core, recorder)
        drain_all(publisher)
        recorder.sent.clear()

        archived = app.definitions.archive_segment("loggers")
        assert archived.archived and archived.size == 0
        assert not app.segments.check("loggers", (2, "A1"))[0]
        drain_all(publisher)
        exits = [e for e in recorder.sent if e.properties["segment_id"].string_value == "loggers"]
        assert sorted(e.user_id for e in exits) == ["A1", "A2"]
        assert {e.event_type for e in exits} == {"$segment_exited"}
        assert {e.properties["cause"].string_value for e in exits} == {"archived"}
        # New events no longer evaluate it; archiving again sends nothing more.
        app.consumer.handle([event("login", user_id="A3")], "c2")
        assert not app.segments.check("loggers", (2, "A3"))[0]
        app.definitions.archive_segment("loggers")
        recorder.sent.clear()
        assert asyncio.run(publisher.drain()) == 0


def test_a_large_recompute_runs_in_the_background_and_reports_its_end(tmp_path: Path) -> None:
    settings = profile_settings(tmp_path, finance_pack=False, recompute_background_profiles=3)
    with profile_app(settings) as app:
        for user, rating in (("B1", "C4"), ("B2", "C1"), ("B3", "C3")):
            app.profiles.upsert_attributes(ref(user), {"risk_rating": to_proto(rating)}, [], "crm", frozenset())
        segment = pb.Segment(segment_id="risky", condition=rating_at_least("C3"))
        app.definitions.create_segment(segment)

        # 3 profiles reach the threshold: the job runs in a thread. Holding the writer keeps it running.
        with app.core.write_lock:
            job = app.segments.start_recompute(app.jobs, "risky", "tester")
            assert job.state == job_pb2.JOB_STATE_RUNNING and job.kind == "recompute_segment"
            assert job.result_name == "risky" and job.created_by == "tester"
            waiting = "waiting for the writer"
            polled = wait_for(lambda: (j := app.jobs.get(job.job_id)).progress_message == waiting and j)
            assert polled.state == job_pb2.JOB_STATE_RUNNING and not polled.HasField("finished_at")
        done = wait_for(lambda: (j := app.jobs.get(job.job_id)).state != job_pb2.JOB_STATE_RUNNING and j)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED and done.progress_percent == 100.0
        assert done.progress_message == "entered 2, exited 0 of 3 profiles"
        assert app.definitions.get_segment("risky").size == 2

        # A failure ends the job FAILED with the reason; an unknown job is NOT_FOUND.
        gate = threading.Event()

        def archived_meanwhile(progress) -> str:
            gate.wait(10)
            return app.segments.start_recompute(app.jobs, "risky").progress_message

        failing = app.jobs.submit("recompute_segment", "risky", archived_meanwhile, background=True)
        app.definitions.archive_segment("risky")
        gate.set()
        failed = wait_for(lambda: (j := app.jobs.get(failing.job_id)).state != job_pb2.JOB_STATE_RUNNING and j)
        assert failed.state == job_pb2.JOB_STATE_FAILED and "archived" in failed.error_message
        with pytest.raises(NotFound):
            app.jobs.get("recompute_segment-unknown")

        # Below the threshold the job runs within the call.
        app.definitions.create_segment(pb.Segment(segment_id="calm", condition=rating_at_least("C5")))
        settings.recompute_background_profiles = 10
        inline = app.segments.start_recompute(app.jobs, "calm")
        assert inline.state == job_pb2.JOB_STATE_SUCCEEDED and app.jobs.get(inline.job_id) == inline


def test_recompute_job_over_grpc(tmp_path: Path) -> None:
    env = {"QIMING_PROFILE_RECOMPUTE_BACKGROUND_PROFILES": "0", "QIMING_PROFILE_FINANCE_PACK": "false"}
    with profile_process(tmp_path, **env) as profile:
        channel = grpc.insecure_channel(profile.address)
        profiles = pb_grpc.ProfileServiceStub(channel)
        segments = pb_grpc.SegmentServiceStub(channel)
        jobs = pb_grpc.JobServiceStub(channel)
        for user, rating in (("G1", "C5"), ("G2", "C2")):
            request = pb.UpsertAttributesRequest(user=ref(user), attributes={"risk_rating": to_proto(rating)})
            profiles.UpsertAttributes(request, timeout=30)
        segment = pb.Segment(segment_id="bold", condition=rating_at_least("C4"))
        created = segments.CreateSegment(pb.CreateSegmentRequest(segment=segment), timeout=30)
        assert created.job.state == job_pb2.JOB_STATE_RUNNING

        def ended():
            job = jobs.GetJob(pb.GetJobRequest(job_id=created.job.job_id), timeout=10).job
            return job.state != job_pb2.JOB_STATE_RUNNING and job

        assert wait_for(ended).state == job_pb2.JOB_STATE_SUCCEEDED
        assert segments.GetSegment(pb.GetSegmentRequest(segment_id="bold"), timeout=10).segment.size == 1
        again = segments.RecomputeSegment(pb.RecomputeSegmentRequest(segment_id="bold"), timeout=30).job
        assert again.state == job_pb2.JOB_STATE_RUNNING and again.job_id != created.job.job_id
        with pytest.raises(grpc.RpcError) as raised:
            jobs.GetJob(pb.GetJobRequest(job_id="nope"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        channel.close()
