"""Review 2 of svc_modeling, bad input: unknown enum numbers and out-of-range Timestamps are INVALID_ARGUMENT naming
the field and what is allowed (never INTERNAL, never stored), on every RPC; the upload honours
``max_dataset_columns``; an out-of-range TIMESTAMP value of an import is a row problem."""

from __future__ import annotations

import asyncio
import datetime as dt

import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling import server
from svc_modeling.guard import check_message
from tests.modeling_helpers import modeling_settings, running_service, upload_frame

TS = types_pb2.VALUE_TYPE_TIMESTAMP


@pytest.fixture
def service(tmp_path, database_url):
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        yield service


def _refused(call, *fields: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call()
    got = [v.field for v in caught.value.violations]
    assert list(fields) == got[: len(fields)], got
    return str(caught.value)


def _upload(service, definition: pb.Dataset, content: bytes = b"a,b\n1,2\n3,4\n") -> pb.UploadFileResponse:
    async def messages():
        yield pb.UploadFileRequest(dataset=definition, format=pb.FILE_FORMAT_CSV)
        yield pb.UploadFileRequest(chunk=content)

    return asyncio.run(server.DatasetServicer(service).UploadFile(messages(), None))


def test_unknown_enum_numbers_in_a_dataset_definition_are_refused_not_stored(service) -> None:
    message = _refused(lambda: _upload(service, pb.Dataset(name="t", columns=[pb.Column(name="a", type=99)])),
                       "dataset.columns[0].type")  # fmt: skip
    assert "99 is not a ValueType" in message and "VALUE_TYPE_TIMESTAMP" in message
    message = _refused(lambda: _upload(service, pb.Dataset(name="r", columns=[pb.Column(name="a", role=99)])),
                       "dataset.columns[0].role")  # fmt: skip
    assert "COLUMN_ROLE_FEATURE" in message
    _refused(lambda: _upload(service, pb.Dataset(name="s", columns=[pb.Column(name="a", sensitivity=9)])),
             "dataset.columns[0].sensitivity")  # fmt: skip
    # The domain check too (ImportRows reaches it; the type number has no name: formatted, not raised).
    bad = pb.Dataset(name="i", columns=[pb.Column(name="a", type=99, role=42)])
    message = _refused(
        lambda: service.import_rows(iter([pb.ImportRowsRequest(dataset=bad)])), "dataset.columns[0].type"
    )
    assert "99" in message
    assert not service.catalog.list(None, 10)


def test_unknown_enums_and_bad_timestamps_on_unary_rpcs_name_the_field(service) -> None:
    jobs = server.JobServicer(service)
    message = _refused(lambda: asyncio.run(jobs.ListJobs(pb.ListJobsRequest(states=[1, 99]), None)), "states[1]")
    assert "JOB_STATE_SUCCEEDED" in message
    models = server.ModelServicer(service)
    _refused(lambda: asyncio.run(models.SetModelStage(pb.SetModelStageRequest(model_name="m", stage=99), None)),
             "stage")  # fmt: skip
    funnel = server.FunnelServicer(service)
    for stamp, field in (
        (Timestamp(seconds=10**13), "time_range.start"),
        (Timestamp(seconds=1, nanos=-5), "time_range.start"),
    ):
        request = pb.ComputeAiplFunnelRequest(time_range=types_pb2.TimeRange(start=stamp))
        message = _refused(lambda r=request: asyncio.run(funnel.ComputeAiplFunnel(r, None)), field)
        assert "time_range.start" in message
    _refused(lambda: check_message(pb.ComputeAiplFunnelRequest(rules=[pb.AiplStageRule(stage=99)])), "rules[0].stage")
    causal = server.CausalServicer(service)
    what_if = pb.WhatIfRequest(population=pb.Population(user=types_pb2.UserRef(type=99, value="c5")))
    _refused(lambda: asyncio.run(causal.WhatIf(what_if, None)), "population.user.type")


def test_moments_beyond_what_the_service_computes_with_are_refused(service) -> None:
    year_5000 = Timestamp(seconds=95_617_584_000)
    build = service.snapshots.build_from_profiles
    _refused(lambda: build(pb.BuildFromProfilesRequest(name="x", snapshot_at=year_5000)), "snapshot_at")
    _refused(
        lambda: build(pb.BuildFromProfilesRequest(name="x", snapshot_at=Timestamp(seconds=1, nanos=-5))), "snapshot_at"
    )
    past = Timestamp()
    past.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=50))
    huge = pb.LabelRule(event_type="trade_filled", horizon_seconds=2**62)
    message = _refused(
        lambda: service.snapshots.build_from_profiles(
            pb.BuildFromProfilesRequest(name="x", snapshot_at=past, label=huge)
        ),
        "label.horizon_seconds",
    )
    assert "315360000" in message
    from svc_modeling.funnel import compute_funnel

    for request, field in (
        (
            pb.ComputeAiplFunnelRequest(time_range=types_pb2.TimeRange(start=Timestamp(seconds=-(10**10)))),
            "time_range.start",
        ),
        (pb.ComputeAiplFunnelRequest(time_range=types_pb2.TimeRange(end=year_5000)), "time_range.end"),
        (pb.ComputeAiplFunnelRequest(driver_cutoff=year_5000), "driver_cutoff"),
    ):
        _refused(lambda r=request: compute_funnel(r, service.catalog, 0, service.snapshots), field)


def test_the_upload_honours_max_dataset_columns(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path, max_dataset_columns=5)) as service:
        wide = pd.DataFrame({f"c{i}": [1, 2] for i in range(6)})
        message = _refused(lambda: upload_frame(service, "wide", wide), "chunk")
        assert "at most 5" in message and "max_dataset_columns" in message
        assert upload_frame(service, "ok", wide.iloc[:, :5]).row_count == 2


def test_an_out_of_range_timestamp_in_an_import_is_a_row_problem(service) -> None:
    definition = pb.Dataset(name="ts", columns=[pb.Column(name="ts", type=TS), pb.Column(name="v", type=TS)])

    def row(seconds: int, nanos: int = 0) -> pb.Row:
        return pb.Row(values=[types_pb2.Value(timestamp_value=Timestamp(seconds=seconds, nanos=nanos))] * 2)

    rows = [row(10**13), row(1), row(5, -1), row(1_700_000_000)]
    response = service.import_rows(iter([pb.ImportRowsRequest(dataset=definition, rows=rows)]))
    assert response.dataset.row_count == 2
    assert [(p.row_index, p.column) for p in response.problems] == [(0, "ts"), (2, "ts")]
    assert "not a valid moment" in response.problems[0].message
    assert errors_pb2.ErrorReason.Name(response.problems[0].reason) == "ERROR_REASON_VALUE_NOT_ALLOWED"


def test_a_bad_timestamp_in_predict_rows_names_the_row() -> None:
    from svc_modeling.models import rows_to_frame

    rows = [
        pb.Row(values=[types_pb2.Value(timestamp_value=Timestamp(seconds=1_700_000_000))]),
        pb.Row(values=[types_pb2.Value(timestamp_value=Timestamp(seconds=10**13))]),
    ]
    message = _refused(lambda: rows_to_frame(["t"], rows), "rows[1]")
    assert "column 't'" in message and "not a valid moment" in message
    assert rows_to_frame(["t"], rows[:1])["t"].iloc[0] == 1_700_000_000 * 1_000_000
