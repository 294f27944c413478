"""A scheduled run survives SIGKILL (issue 6): ``qiming serve campaign`` is killed while it enters a segment's
members batch by batch; after the restart the run resumes from its stored cursor and finishes, and every member
entered exactly once (one participation and one message each, none twice, none lost). svc_profile is the real
service over gRPC (in this process); the campaign service is a real process on SQLite or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from campaign_helpers import profile_server, simple_graph

from svc_common.conditions import to_proto
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as cgrpc
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from svc_common.process import ServerProcess

MEMBERS = 600


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> Iterator[str]:
    """svc_profile with MEMBERS customers, all in segment "wave"."""
    with profile_server(tmp_path_factory.mktemp("svc_profile")) as address:
        with grpc.insecure_channel(address) as channel:
            rows = [
                ppb.UpsertAttributesRequest(
                    user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=f"M{i:04d}"),
                    attributes={"tier": to_proto("gold")},
                    source_system="crm",
                )
                for i in range(MEMBERS)
            ]
            pgrpc.ProfileServiceStub(channel).ImportAttributes(
                iter([ppb.ImportAttributesRequest(rows=rows)]), timeout=60
            )
            segments = pgrpc.SegmentServiceStub(channel)
            gold = C.Condition(
                comparison=C.Comparison(
                    field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="tier"),
                    operator=C.OPERATOR_EQ,
                    value=to_proto("gold"),
                )
            )
            segments.CreateSegment(ppb.CreateSegmentRequest(segment=ppb.Segment(segment_id="wave", condition=gold)))
            segments.RecomputeSegment(ppb.RecomputeSegmentRequest(segment_id="wave"), timeout=60)
            size = segments.GetSegmentSize(ppb.GetSegmentSizeRequest(segment_id="wave"), timeout=10).size
            assert size == MEMBERS
        yield address


def _run_state(url: str) -> tuple[str, int, int, int, int]:
    """(run state, members, processed, participations, distinct participants), read on a connection of its own."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            run = conn.execute(sa.text("select run_state, members, processed from campaign_scheduled_run")).first()
            entered = conn.execute(sa.text("select count(*), count(distinct user_id) from campaign_participant")).one()
    finally:
        engine.dispose()
    if run is None:
        return "", 0, 0, entered[0], entered[1]
    return run[0], run[1], run[2], entered[0], entered[1]


def _messages(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text("select count(*), count(distinct user_id) from campaign_message")).one())
    finally:
        engine.dispose()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_in_the_middle_of_a_scheduled_run_resumes_and_enters_everyone_once(
    tmp_path: Path, backend: str, profiles: str, request: pytest.FixtureRequest
) -> None:
    work = tmp_path / "campaign"
    env = {
        "QIMING_CAMPAIGN_PROFILE_ADDRESS": profiles,
        "QIMING_CAMPAIGN_SCHEDULE_POLL_MILLIS": "50",
        "QIMING_CAMPAIGN_SCHEDULE_BATCH_SIZE": "5",
    }
    if backend == "postgresql":
        url = env["QIMING_CAMPAIGN_DATABASE_URL"] = request.getfixturevalue("database_url_postgresql")
    campaign = ServerProcess("campaign", work_dir=work, env=env).start()
    if backend == "sqlite":
        url = f"sqlite:///{next((work / 'data').glob('*.db'))}"
    try:
        with grpc.insecure_channel(campaign.address) as channel:
            templates, journeys = cgrpc.TemplateServiceStub(channel), cgrpc.JourneyServiceStub(channel)
            templates.CreateTemplate(
                pb.CreateTemplateRequest(template=pb.Template(template_id="t1", name="t1", body="本周市场回顾")),
                timeout=10,
            )
            scheduled = pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="wave"))  # once, as soon as it runs
            journey = pb.Journey(journey_id="weekly", name="weekly", draft=simple_graph(scheduled))
            journeys.CreateJourney(pb.CreateJourneyRequest(journey=journey), timeout=10)
            journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="weekly"), timeout=10)
            journeys.StartJourney(pb.StartJourneyRequest(journey_id="weekly"), timeout=10)
        # Kill once the run is entering and some (not all) of its batches are committed.
        _wait(lambda: _run_state(url)[2] > 0, 60, "the first batch of the run")
        campaign.kill()
        state, members, processed, participations, participants = _run_state(url)
        assert state == "entering" and members == MEMBERS
        assert 0 < processed < MEMBERS and participations == participants == processed  # whole batches only
        campaign.start()
        _wait(lambda: _run_state(url)[0] == "done", 120, "the run to finish after the restart")
        assert _run_state(url) == ("done", MEMBERS, MEMBERS, MEMBERS, MEMBERS)
        assert _messages(url) == (MEMBERS, MEMBERS)  # one message each, through the gate
    finally:
        campaign.kill()
