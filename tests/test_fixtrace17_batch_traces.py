"""Session 17, walk "walke" m4: svc_campaign's log-driven work exported one single-span trace per SQL statement, and
its ``BatchGetProfiles`` to svc_profile ran outside any span, so svc_profile's audit line of that call had a trace id
found nowhere in svc_campaign. Now each consumed log batch and each batch of due timers runs in one span: its
statements, its calls to svc_profile (``traceparent``) and its log lines (``customer erased``) share that trace. A
timer poll that finds nothing starts no trace. svc_profile's log consumer had the same gap (a trace per statement,
its commit on another thread): one span per batch there too, its commit's statements in it."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from campaign_helpers import PUSH, add_template, campaign_service, event, run_journey, wait_then_send
from profile_helpers import event as profile_event
from profile_helpers import profile_app, profile_settings

from svc_campaign.erasure import ERASED
from svc_campaign.profiles import GrpcProfileDirectory
from svc_common.logs import TraceContextFilter
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc

LOG_BATCH_SPAN = "campaign log batch"  # svc_campaign.engine.LOG_BATCH_SPAN
TIMER_BATCH_SPAN = "campaign timer batch"  # svc_campaign.timers.TIMER_BATCH_SPAN
PROFILE_BATCH_SPAN = "profile log batch"  # svc_profile.consumer.LOG_BATCH_SPAN


class _Profiles(profile_pb2_grpc.ProfileServiceServicer, profile_pb2_grpc.TagServiceServicer):
    """svc_profile as svc_campaign sees it: the trace id each call came with, by method."""

    def __init__(self) -> None:
        self.traces: list[tuple[str, str]] = []

    def _seen(self, method: str, context: grpc.ServicerContext) -> None:
        parent = dict(context.invocation_metadata()).get("traceparent", "")
        self.traces.append((method, parent.split("-")[1] if parent else ""))

    def GetProfile(self, request, context):  # type: ignore[no-untyped-def]
        self._seen("GetProfile", context)
        return profile_pb2.GetProfileResponse(profile=profile_pb2.Profile(profile_id="p-" + request.user.value))

    def BatchGetProfiles(self, request, context):  # type: ignore[no-untyped-def]
        self._seen("BatchGetProfiles", context)
        profiles = [profile_pb2.Profile(profile_id="p-" + u.value) for u in request.users]
        return profile_pb2.BatchGetProfilesResponse(profiles=profiles)

    def ListTagDefinitions(self, request, context):  # type: ignore[no-untyped-def]
        return profile_pb2.ListTagDefinitionsResponse()


@contextlib.contextmanager
def fake_profiles() -> Iterator[tuple[GrpcProfileDirectory, _Profiles]]:
    servicer = _Profiles()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)
    profile_pb2_grpc.add_TagServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    directory = GrpcProfileDirectory(f"127.0.0.1:{port}", cache_seconds=0)
    try:
        yield directory, servicer
    finally:
        directory.close()
        server.stop(None)


def _hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def _one_trace(spans, name: str) -> str:
    """The trace id of the one span ``name`` among ``spans``, checking that every span is in its trace."""
    [batch] = [s for s in spans if s.name == name]
    trace_id = batch.context.trace_id
    assert batch.parent is None
    strays = [s.name for s in spans if s.context.trace_id != trace_id]
    assert strays == [], f"spans outside the batch's trace: {strays}"
    # Its database statements are not traced (svc_common.telemetry.batch_span: hundreds a batch, ~30 µs each).
    statements = [s.name for s in spans if s.name != name and not s.name.startswith("/")]
    assert statements == [], f"statement spans in a batch: {statements}"
    return _hex(trace_id)


def test_a_log_batch_and_a_timer_batch_each_run_in_one_trace_with_their_profile_calls(
    tmp_path, span_exporter, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_profiles() as (directory, servicer), campaign_service(tmp_path, profiles=directory) as service:
        add_template(service, "t1", channel=PUSH)
        run_journey(service, wait_then_send(60))

        span_exporter.clear()
        servicer.traces.clear()
        service.engine.handle([event("signup", "c1"), event("signup", "c2")], "")
        spans = span_exporter.get_finished_spans()
        log_trace = _one_trace(spans, LOG_BATCH_SPAN)
        assert servicer.traces == [("BatchGetProfiles", log_trace)]  # the call svc_profile audits, in this trace

        span_exporter.clear()
        service.clock.advance(seconds=61)
        servicer.traces.clear()
        assert service.engine.fire_due_timers().timers_fired == 2
        spans = span_exporter.get_finished_spans()
        timer_trace = _one_trace(spans, TIMER_BATCH_SPAN)
        assert timer_trace != log_trace
        assert {method for method, _ in servicer.traces} >= {"BatchGetProfiles"}
        assert {trace_id for _, trace_id in servicer.traces} == {timer_trace}
        [batch] = [s for s in spans if s.name == TIMER_BATCH_SPAN]
        assert batch.attributes["qiming.timers"] == 2

        # A poll that finds no due timer starts no trace (a span every 200 ms would bury the calls').
        span_exporter.clear()
        assert service.engine.fire_due_timers().timers_fired == 0
        assert [s.name for s in span_exporter.get_finished_spans()] == []

        # The erasure's log line carries the batch's trace id.
        erased = event(ERASED, "c1", service.clock.now() + dt.timedelta(seconds=1))
        erased.properties["profile_id"].string_value = "p-c1"
        span_exporter.clear()
        caplog.handler.addFilter(TraceContextFilter())
        with caplog.at_level(logging.INFO, logger="qiming.campaign"):
            service.engine.handle([erased], "")
        erasure_trace = _one_trace(span_exporter.get_finished_spans(), LOG_BATCH_SPAN)
        [line] = [r for r in caplog.records if r.getMessage() == "customer erased"]
        assert line.trace_id == erasure_trace  # type: ignore[attr-defined]


def test_a_profile_log_batch_and_its_commit_run_in_one_trace(tmp_path, span_exporter) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        app.consumer.handle([profile_event("page_view", "c1"), profile_event("page_view", "c2")], "1")  # warm up
        span_exporter.clear()
        app.consumer.handle([profile_event("page_view", "c1"), profile_event("fund_view", "c3")], "2")
        spans = span_exporter.get_finished_spans()
        _one_trace(spans, PROFILE_BATCH_SPAN)
        # The commit, on the pipeline's thread, runs in the batch's context: its writes (the cursor among them) start
        # no trace of their own, as they would outside it.
        assert [s.name for s in spans] == [PROFILE_BATCH_SPAN]
