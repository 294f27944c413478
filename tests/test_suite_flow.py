"""The loop across services in one `qiming serve all` process: an event moves a customer into a segment and a
journey sends them a message through the gateway; svc_modeling scores customers, the scores land in svc_profile
as tags with the model's provenance, and a segment defined on the score selects them."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from campaign_helpers import Gateway
from collect_helpers import make_event

from svc_common.conditions import to_proto
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as cpb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as cgrpc
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as mpb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as mgrpc
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from svc_common.process import ServerProcess

CUSTOMERS = 400


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with ServerProcess("all", work_dir=tmp_path_factory.mktemp("suite")) as process:
        yield process


def _watch(channel: grpc.Channel, job: job_pb2.Job) -> job_pb2.Job:
    jobs = mgrpc.JobServiceStub(channel)
    return [r.job for r in jobs.WatchJob(mpb.WatchJobRequest(job_id=job.job_id), timeout=300)][-1]


def _customers_csv() -> bytes:
    lines = ["customer_id,logins_30d,fund_views_30d,renewed"]
    for i in range(CUSTOMERS):
        logins, views = i % 20, (i * 7) % 11
        renewed = int(logins + views > 14)  # a clear rule the model can learn
        lines.append(f"K{i:04d},{logins},{views},{renewed}")
    return ("\n".join(lines) + "\n").encode()


def test_scores_flow_into_profile_tags_and_segments(suite: ServerProcess) -> None:
    with grpc.insecure_channel(suite.address) as channel:
        datasets, models = mgrpc.DatasetServiceStub(channel), mgrpc.ModelServiceStub(channel)
        content = _customers_csv()

        def upload():
            yield mpb.UploadFileRequest(
                dataset=mpb.Dataset(name="renewal", customer_id_column="customer_id"), format=mpb.FILE_FORMAT_CSV
            )
            yield mpb.UploadFileRequest(chunk=content)

        dataset = datasets.UploadFile(upload(), timeout=60).dataset
        trained = models.TrainModel(
            mpb.TrainModelRequest(
                model_name="renewal",
                dataset_id=dataset.dataset_id,
                label_column="renewed",
                feature_columns=["logins_30d", "fund_views_30d"],
                hyperparameters={"n_estimators": "30"},
            ),
            timeout=30,
        ).job
        assert _watch(channel, trained).state == job_pb2.JOB_STATE_SUCCEEDED
        scored = models.ScoreCustomers(
            mpb.ScoreCustomersRequest(model_name="renewal", dataset_id=dataset.dataset_id, tag_name="renewal_score"),
            timeout=30,
        ).job
        end = _watch(channel, scored)
        assert end.state == job_pb2.JOB_STATE_SUCCEEDED, end.error_message
        table = datasets.GetDataset(mpb.GetDatasetRequest(dataset_id=end.result_name), timeout=10).dataset

        # A score for a customer svc_profile does not know is refused per row (PROFILE_NOT_FOUND), never invented.
        assert table.lineage["profile_writeback"] == "written 0"
        profiles = pgrpc.ProfileServiceStub(channel)
        rows = [
            ppb.UpsertAttributesRequest(
                user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=f"K{i:04d}"),
                attributes={"branch": to_proto("SH01")},
                source_system="crm",
            )
            for i in range(CUSTOMERS)
        ]
        imported = profiles.ImportAttributes(iter([ppb.ImportAttributesRequest(rows=rows)]), timeout=60)
        assert imported.profiles_created == CUSTOMERS
        scored = models.ScoreCustomers(
            mpb.ScoreCustomersRequest(model_name="renewal", dataset_id=dataset.dataset_id, tag_name="renewal_score"),
            timeout=30,
        ).job
        end = _watch(channel, scored)
        table = datasets.GetDataset(mpb.GetDatasetRequest(dataset_id=end.result_name), timeout=10).dataset
        assert table.lineage["profile_writeback"] == f"written {CUSTOMERS}"

        tags = pgrpc.TagServiceStub(channel)
        definition = tags.GetTagDefinition(ppb.GetTagDefinitionRequest(name="renewal_score"), timeout=10).definition
        assert definition.WhichOneof("rule") == "external" and definition.external.writer == "svc_modeling"
        likely = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="K0019")  # 19 logins: renews
        unlikely = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="K0000")
        held = {t.name: t for t in tags.ListUserTags(ppb.ListUserTagsRequest(user=likely), timeout=10).tags}
        score = held["renewal_score"]
        assert score.value.double_value > 0.5
        assert score.provenance.source == types_pb2.Provenance.SOURCE_MODEL
        assert (score.provenance.writer, score.provenance.writer_version) == ("model:renewal", "1")

        segments = pgrpc.SegmentServiceStub(channel)
        likely_to_renew = C.Condition(
            comparison=C.Comparison(
                field=C.FieldRef(source=C.FieldRef.SOURCE_TAG, name="renewal_score"),
                operator=C.OPERATOR_GT,
                value=to_proto(0.5),
            )
        )
        segments.CreateSegment(
            ppb.CreateSegmentRequest(segment=ppb.Segment(segment_id="likely_renewers", condition=likely_to_renew)),
            timeout=10,
        )
        segments.RecomputeSegment(ppb.RecomputeSegmentRequest(segment_id="likely_renewers"), timeout=120)
        check = segments.CheckMembership
        assert check(ppb.CheckMembershipRequest(segment_id="likely_renewers", user=likely), timeout=10).member
        assert not check(ppb.CheckMembershipRequest(segment_id="likely_renewers", user=unlikely), timeout=10).member
        size = segments.GetSegmentSize(ppb.GetSegmentSizeRequest(segment_id="likely_renewers"), timeout=10).size
        expected = sum(1 for i in range(CUSTOMERS) if i % 20 + (i * 7) % 11 > 14)
        assert abs(size - expected) <= CUSTOMERS * 0.05  # the model learned the rule, up to a few borderline rows


def test_the_suite_serves_every_service_for_real(suite: ServerProcess) -> None:
    with grpc.insecure_channel(suite.address) as channel:
        profiles = pgrpc.ProfileServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            profiles.GetProfile(
                ppb.GetProfileRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="nobody")),
                timeout=10,
            )
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_event_moves_a_customer_into_a_segment_and_a_journey_sends_the_message(tmp_path_factory) -> None:
    """collect → profile (segment entered, published to the log) → campaign (segment trigger, branch on the
    profile, policy gate) → the HTTP gateway gets the message, and the delivery comes back into the log."""
    gateway = Gateway()
    env = {"QIMING_CAMPAIGN_GATEWAY_URL": gateway.url, "QIMING_COLLECT_FOLLOW_POLL_INTERVAL_MILLIS": "20"}
    work = tmp_path_factory.mktemp("journey")
    try:
        with ServerProcess("all", work_dir=work, env=env) as suite, grpc.insecure_channel(suite.address) as channel:
            templates, journeys = cgrpc.TemplateServiceStub(channel), cgrpc.JourneyServiceStub(channel)
            templates.CreateTemplate(
                cpb.CreateTemplateRequest(
                    template=cpb.Template(
                        template_id="welcome_funds",
                        name="基金关怀",
                        channel=cpb.CHANNEL_TYPE_APP_PUSH,
                        body="{{attribute.nickname|您好}}，为您整理了本周基金市场回顾",
                    )
                ),
                timeout=10,
            )
            entered = cpb.Trigger(
                segment=cpb.SegmentTrigger(segment_id="fund_lookers", change=cpb.SegmentTrigger.CHANGE_ENTERED)
            )
            c3_or_above = C.Condition(
                node_id="risk_c3_plus",
                comparison=C.Comparison(
                    field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="risk_rating"),
                    operator=C.OPERATOR_GTE,
                    value=to_proto("C3"),
                ),
            )
            graph = cpb.JourneyGraph(
                entry_node_id="start",
                nodes=[
                    cpb.JourneyNode(node_id="start", trigger=cpb.TriggerNode(trigger=entered, next_node_id="risk")),
                    cpb.JourneyNode(
                        node_id="risk",
                        branch=cpb.BranchNode(
                            arms=[cpb.BranchArm(condition=c3_or_above, next_node_id="push")], default_node_id="end"
                        ),
                    ),
                    cpb.JourneyNode(
                        node_id="push",
                        send=cpb.SendNode(
                            channel=cpb.CHANNEL_TYPE_APP_PUSH,
                            template_id="welcome_funds",
                            next_node_id="end",
                            is_marketing=True,
                        ),
                    ),
                    cpb.JourneyNode(node_id="end", exit=cpb.ExitNode()),
                ],
            )
            journeys.CreateJourney(
                cpb.CreateJourneyRequest(journey=cpb.Journey(journey_id="fund_care", name="fund care", draft=graph)),
                timeout=10,
            )
            journeys.PublishJourney(cpb.PublishJourneyRequest(journey_id="fund_care"), timeout=10)
            journeys.StartJourney(cpb.StartJourneyRequest(journey_id="fund_care"), timeout=10)

            profiles, segments = pgrpc.ProfileServiceStub(channel), pgrpc.SegmentServiceStub(channel)
            for customer, rating in (("C100", "C4"), ("C200", "C1")):
                profiles.UpsertAttributes(
                    ppb.UpsertAttributesRequest(
                        user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer),
                        attributes={"risk_rating": to_proto(rating), "nickname": to_proto("王先生")},
                        source_system="crm",
                    ),
                    timeout=10,
                )
            viewed_a_fund = C.Condition(
                event_count=C.EventCount(event_type="fund_view", min_count=1, window_seconds=7 * 86_400)
            )
            segments.CreateSegment(
                ppb.CreateSegmentRequest(segment=ppb.Segment(segment_id="fund_lookers", condition=viewed_a_fund)),
                timeout=10,
            )
            collect = collect_pb2_grpc.CollectServiceStub(channel)
            views = [make_event("fund_view", user_id=c, fund_type="equity") for c in ("C100", "C200")]
            assert collect.Ingest(collect_pb2.IngestRequest(events=views), timeout=10).accepted_count == 2

            deadline = time.monotonic() + 30
            while not gateway.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(gateway.requests) == 1, "the C4 customer gets the push"
            key, body = gateway.requests[0]
            assert key and "王先生" in json.dumps(body, ensure_ascii=False) and "C100" in json.dumps(body)

            def entered_users() -> set[str]:
                request = collect_pb2.ReadEventsRequest(event_types=["$segment_entered"])
                return {e.user_id for r in collect.ReadEvents(request, timeout=10) for e in r.events}

            assert entered_users() == {"C100", "C200"}  # both entered; the branch kept C1 from the push
            history = cgrpc.DeliveryServiceStub(channel).ListContactHistory(
                cpb.ListContactHistoryRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="C100")),
                timeout=10,
            )
            assert [m.template_id for m in history.messages] == ["welcome_funds"]
            while time.monotonic() < deadline:
                sent = collect_pb2.ReadEventsRequest(event_types=["$message_sent"])
                if any(r.events for r in collect.ReadEvents(sent, timeout=10)):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("no $message_sent event reached the log")
    finally:
        gateway.close()


def test_a_customer_erased_in_profile_leaves_the_journey_they_wait_in(tmp_path_factory) -> None:
    """DeleteProfile (PIPL) → ``$profile_erased`` in the log → svc_campaign takes the customer out of the journey
    they are waiting in: the path ends with ``exited:customer_erased`` and no next step is left."""
    env = {"QIMING_COLLECT_FOLLOW_POLL_INTERVAL_MILLIS": "20"}
    work = tmp_path_factory.mktemp("erasure")
    with ServerProcess("all", work_dir=work, env=env) as suite, grpc.insecure_channel(suite.address) as channel:
        cgrpc.TemplateServiceStub(channel).CreateTemplate(
            cpb.CreateTemplateRequest(
                template=cpb.Template(template_id="day2", name="day 2", body="欢迎开户，看看本周市场回顾")
            ),
            timeout=10,
        )
        graph = cpb.JourneyGraph(
            entry_node_id="start",
            nodes=[
                cpb.JourneyNode(
                    node_id="start",
                    trigger=cpb.TriggerNode(
                        trigger=cpb.Trigger(event=cpb.SingleEventTrigger(event_type="signup")), next_node_id="wait"
                    ),
                ),
                cpb.JourneyNode(node_id="wait", wait=cpb.WaitNode(duration_seconds=86_400, next_node_id="push")),
                cpb.JourneyNode(
                    node_id="push",
                    send=cpb.SendNode(
                        channel=cpb.CHANNEL_TYPE_APP_PUSH, template_id="day2", next_node_id="end", is_marketing=True
                    ),
                ),
                cpb.JourneyNode(node_id="end", exit=cpb.ExitNode()),
            ],
        )
        journeys = cgrpc.JourneyServiceStub(channel)
        journeys.CreateJourney(
            cpb.CreateJourneyRequest(journey=cpb.Journey(journey_id="onboarding", name="onboarding", draft=graph)),
            timeout=10,
        )
        journeys.PublishJourney(cpb.PublishJourneyRequest(journey_id="onboarding"), timeout=10)
        journeys.StartJourney(cpb.StartJourneyRequest(journey_id="onboarding"), timeout=10)
        collect = collect_pb2_grpc.CollectServiceStub(channel)
        signups = [make_event("signup", user_id=c) for c in ("C500", "C600")]
        assert collect.Ingest(collect_pb2.IngestRequest(events=signups), timeout=10).accepted_count == 2

        def progress(customer: str) -> cpb.GetJourneyProgressResponse:
            user = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer)
            return journeys.GetJourneyProgress(
                cpb.GetJourneyProgressRequest(journey_id="onboarding", user=user), timeout=10
            )

        profiles = pgrpc.ProfileServiceStub(channel)
        c500 = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="C500")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                waiting = all(progress(c).current_node_id == "wait" for c in ("C500", "C600"))
                profiles.GetProfile(ppb.GetProfileRequest(user=c500), timeout=10)
            except grpc.RpcError:
                waiting = False
            if waiting:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the signups did not reach svc_profile and the journey's wait node")

        profiles.DeleteProfile(ppb.DeleteProfileRequest(user=c500, reason="PIPL-2026-500"), timeout=10)
        while time.monotonic() < deadline and progress("C500").current_node_id:
            time.sleep(0.1)
        left = progress("C500")
        assert left.current_node_id == "" and not left.HasField("next_action_at")
        assert left.path[-1].outcome == "exited:customer_erased"
        assert progress("C600").current_node_id == "wait"  # the other customer waits on
        erased = collect_pb2.ReadEventsRequest(event_types=["$profile_erased"])
        assert [e.user_id for r in collect.ReadEvents(erased, timeout=10) for e in r.events] == ["C500"]
