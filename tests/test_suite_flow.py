"""The loop across services in one `qiming serve all` process: svc_modeling scores customers, the scores land
in svc_profile as tags with the model's provenance, and a segment defined on the score selects them."""

from __future__ import annotations

import grpc
import pytest

from svc_common.conditions import to_proto
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
