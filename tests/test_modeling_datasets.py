"""svc_modeling's datasets and jobs on SQLite and PostgreSQL: typed imports with per-row problems, CSV
upload, Hillstrom shipped, X+O fusion, and jobs that report progress, cancel and survive restarts honestly."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import finished, modeling_settings, running_service, upload_frame

from svc_common.errors import FailedPrecondition, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import errors_pb2, job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.datasets import HILLSTROM_GROUP_MEANS, hillstrom_bytes, load_hillstrom

VT = types_pb2.ValueType
R = errors_pb2.ErrorReason


def _value(**kind) -> types_pb2.Value:
    return types_pb2.Value(**kind)


def _import_request_stream():
    columns = [
        pb.Column(name="customer_id", type=VT.VALUE_TYPE_STRING),
        pb.Column(name="nps", type=VT.VALUE_TYPE_INT, role=pb.COLUMN_ROLE_SURVEY),
        pb.Column(name="score", type=VT.VALUE_TYPE_DOUBLE),
        pb.Column(name="vip", type=VT.VALUE_TYPE_BOOL),
    ]
    yield pb.ImportRowsRequest(dataset=pb.Dataset(name="survey", columns=columns, customer_id_column="customer_id"))
    rows = []
    for i in range(5):
        rows.append(
            pb.Row(
                values=[
                    _value(string_value=f"c{i}"),
                    _value(int_value=i),
                    _value(double_value=i / 2),
                    _value(bool_value=i % 2 == 0),
                ]
            )
        )
    rows.append(
        pb.Row(
            values=[
                _value(string_value="c5"),
                _value(int_value=1),
                _value(double_value=float("nan")),
                _value(bool_value=True),
            ]
        )
    )
    rows.append(pb.Row(values=[_value(string_value="c6"), _value(string_value="nine"), _value(), _value()]))
    rows.append(pb.Row(values=[_value(string_value="c7")]))
    rows.append(pb.Row(values=[_value(string_value="c8"), _value(), _value(), _value()]))  # missing values are fine
    yield pb.ImportRowsRequest(rows=rows[:4])
    yield pb.ImportRowsRequest(rows=rows[4:])


def test_import_rows_keeps_good_rows_and_names_each_bad_one(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        response = service.import_rows(_import_request_stream(), "tester")
        dataset = response.dataset
        assert dataset.row_count == 6 and dataset.origin == "import"
        assert [(p.row_index, p.column, p.reason) for p in response.problems] == [
            (5, "score", R.ERROR_REASON_VALUE_NOT_ALLOWED),
            (6, "nps", R.ERROR_REASON_PROPERTY_TYPE_MISMATCH),
            (7, "", R.ERROR_REASON_MALFORMED_REQUEST),
        ]
        roles = {c.name: c.role for c in dataset.columns}
        assert roles == {
            "customer_id": pb.COLUMN_ROLE_ID,
            "nps": pb.COLUMN_ROLE_SURVEY,
            "score": pb.COLUMN_ROLE_FEATURE,
            "vip": pb.COLUMN_ROLE_FEATURE,
        }
        assert len(dataset.content_digest) == 64
        assert service.catalog.get(dataset.dataset_id) == dataset

        preview = service.catalog.preview(dataset.dataset_id, 3)
        assert len(preview.rows) == 3
        assert preview.rows[1].values[1].int_value == 1 and preview.rows[1].values[3].bool_value is False
        nps = next(s for s in preview.summaries if s.column == "nps")
        assert (nps.missing, nps.min, nps.max) == (1, 0.0, 4.0)

        pages = list(service.catalog.read(dataset.dataset_id, offset=1, limit=0, batch_rows=2))
        assert [len(p.rows) for p in pages] == [2, 2, 1] and len(pages[0].columns) == 4
        last = pages[-1].rows[-1]
        assert last.values[0].string_value == "c8" and not last.values[1].HasField("int_value")

        listed = service.catalog.list(None, 10)
        assert [d.dataset_id for d in listed] == [dataset.dataset_id]
        service.catalog.delete(dataset.dataset_id)
        with pytest.raises(NotFound):
            service.catalog.get(dataset.dataset_id)


def test_bad_dataset_definitions_fail_whole_with_the_field_named(tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path)) as service:
        cases = [
            (pb.Dataset(name="", columns=[pb.Column(name="a", type=VT.VALUE_TYPE_INT)]), "dataset.name"),
            (pb.Dataset(name="x"), "dataset.columns"),
            (pb.Dataset(name="x", columns=[pb.Column(name="a b", type=VT.VALUE_TYPE_INT)]), "dataset.columns[0].name"),
            (
                pb.Dataset(name="x", columns=[pb.Column(name="a", type=VT.VALUE_TYPE_INT)] * 2),
                "dataset.columns[1].name",
            ),
            (
                pb.Dataset(name="x", columns=[pb.Column(name="a", type=VT.VALUE_TYPE_STRING_LIST)]),
                "dataset.columns[0].type",
            ),
            (
                pb.Dataset(name="x", columns=[pb.Column(name="a", type=VT.VALUE_TYPE_INT)], customer_id_column="id"),
                "dataset.customer_id_column",
            ),
        ]
        for definition, field in cases:
            with pytest.raises(InvalidArgument) as raised:
                service.import_rows(iter([pb.ImportRowsRequest(dataset=definition)]))
            assert raised.value.violations[0].field == field, raised.value.message
        with pytest.raises(InvalidArgument, match="no valid rows"):
            definition = pb.Dataset(name="x", columns=[pb.Column(name="a", type=VT.VALUE_TYPE_INT)])
            service.import_rows(iter([pb.ImportRowsRequest(dataset=definition)]))
        with pytest.raises(InvalidArgument, match="not a readable CSV"):
            service.upload_file(pb.Dataset(name="x"), pb.FILE_FORMAT_CSV, b"\xff\xfe\x00garbage")
        with pytest.raises(InvalidArgument, match="not a readable PARQUET file"):
            service.upload_file(pb.Dataset(name="x"), pb.FILE_FORMAT_PARQUET, b"PAR1")
        with pytest.raises(InvalidArgument, match="not a readable ARROW_IPC file"):
            service.upload_file(pb.Dataset(name="x"), pb.FILE_FORMAT_ARROW_IPC, b"a,b\n1,2\n")
        with pytest.raises(InvalidArgument, match="'nope' is not in the file"):
            service.upload_file(pb.Dataset(name="x", columns=[pb.Column(name="nope")]), pb.FILE_FORMAT_CSV, b"a\n1\n")


def test_hillstrom_is_shipped_and_uploads_as_csv_unchanged(tmp_path: Path) -> None:
    frame = load_hillstrom()
    assert len(frame) == 64_000
    means = frame.groupby("segment")[["visit", "conversion", "spend"]].mean()
    for segment, (rows, visit, conversion, spend) in HILLSTROM_GROUP_MEANS.items():
        assert (frame["segment"] == segment).sum() == rows
        assert means.loc[segment].tolist() == pytest.approx([visit, conversion, spend], abs=6e-5)
    with running_service(modeling_settings(tmp_path)) as service:
        response = service.upload_file(pb.Dataset(name="hillstrom"), pb.FILE_FORMAT_CSV, hillstrom_bytes())
        dataset = response.dataset
        assert dataset.row_count == 64_000 and not response.problems
        types = {c.name: c.type for c in dataset.columns}
        assert types["segment"] == VT.VALUE_TYPE_STRING and types["spend"] == VT.VALUE_TYPE_DOUBLE
        assert types["visit"] == VT.VALUE_TYPE_INT
        _, stored = service.catalog.load(dataset.dataset_id)
        assert stored.data["spend"].sum() == pytest.approx(frame["spend"].sum())
        assert (stored.data["zip_code"] == frame["zip_code"]).all()


def test_csv_upload_rejects_non_finite_rows_and_keeps_declared_roles(tmp_path: Path) -> None:
    content = b"id,a,b,note\n1,1.5,x,hello\n2,inf,y,\n3,2.5,,bye\n4,-inf,z,n\n"
    definition = pb.Dataset(
        name="t",
        customer_id_column="id",
        columns=[pb.Column(name="note", role=pb.COLUMN_ROLE_IGNORED), pb.Column(name="id", type=VT.VALUE_TYPE_STRING)],
    )
    with running_service(modeling_settings(tmp_path)) as service:
        response = service.upload_file(definition, pb.FILE_FORMAT_CSV, content)
        assert response.dataset.row_count == 2
        assert [(p.row_index, p.column) for p in response.problems] == [(1, "a"), (3, "a")]
        roles = {c.name: c.role for c in response.dataset.columns}
        assert roles == {
            "id": pb.COLUMN_ROLE_ID,
            "a": pb.COLUMN_ROLE_FEATURE,
            "b": pb.COLUMN_ROLE_FEATURE,
            "note": pb.COLUMN_ROLE_IGNORED,
        }
        _, frame = service.catalog.load(response.dataset.dataset_id)
        assert frame.data["id"].tolist() == ["1", "3"] and frame.data["b"].tolist() == ["x", None]


def test_survey_fusion_joins_x_and_o_data_by_customer_id(database_url: str, tmp_path: Path) -> None:
    survey = pd.DataFrame({"customer_id": ["a", "b", "c", "zz"], "nps": [9, 3, 7, 10], "tenure": [1, 2, 3, 4]})
    operations = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "assets": [10.0, 20.0, 30.0, 40.0], "tenure": [5, 6, 7, 8]}
    )
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        x = upload_frame(
            service,
            "x",
            survey,
            customer_id_column="customer_id",
            columns=[pb.Column(name="nps", role=pb.COLUMN_ROLE_SURVEY)],
        )
        o = upload_frame(service, "o", operations, customer_id_column="customer_id")
        for join, expected in (("inner", ["a", "b", "c"]), ("left", ["a", "b", "c", "zz"])):
            job = service.fuse_survey(
                pb.FuseSurveyRequest(
                    name=f"xo_{join}", survey_dataset_id=x.dataset_id, operations_dataset_id=o.dataset_id, join=join
                )
            )
            assert job.kind == "fuse_survey"
            done = finished(service, job)
            fused, frame = service.catalog.load(done.result_name)
            assert fused.origin == "survey_fusion" and fused.lineage["operations_dataset_id"] == o.dataset_id
            assert frame.data["customer_id"].tolist() == expected
            assert [c.name for c in fused.columns] == ["customer_id", "nps", "tenure", "assets", "tenure_ops"]
            assert next(c for c in fused.columns if c.name == "nps").role == pb.COLUMN_ROLE_SURVEY
            assert frame.data["assets"].tolist()[:3] == [10.0, 20.0, 30.0]
        assert np.isnan(frame.data["assets"].iloc[3])
        with pytest.raises(InvalidArgument):
            service.fuse_survey(
                pb.FuseSurveyRequest(
                    name="n", survey_dataset_id=x.dataset_id, operations_dataset_id=o.dataset_id, join="outer"
                )
            )
        with pytest.raises(NotFound):
            service.fuse_survey(
                pb.FuseSurveyRequest(name="n", survey_dataset_id="nope", operations_dataset_id=o.dataset_id)
            )


def test_jobs_report_progress_cancel_and_fail_with_a_reason(database_url: str, tmp_path: Path) -> None:
    release = threading.Event()
    with running_service(modeling_settings(tmp_path, database_url, job_workers=1)) as service:

        def slow(ctx) -> str:
            for step in range(1000):
                ctx.progress(step / 10, f"step {step}")
                if step == 5:
                    release.set()
                time.sleep(0.01)
            return "never"

        def failing(ctx) -> str:
            raise FailedPrecondition("the data moved", reason="WRONG_STATE")

        running = service.jobs.submit("slow", slow, "tester")
        queued = service.jobs.submit("slow", slow, "tester")
        assert running.state == job_pb2.JOB_STATE_PENDING
        assert release.wait(30)
        now = service.jobs.get(running.job_id)
        assert now.state == job_pb2.JOB_STATE_RUNNING and now.progress_percent > 0 and now.progress_message
        # A pending job is cancelled at once; a running one at its next step.
        assert service.jobs.cancel(queued.job_id).state == job_pb2.JOB_STATE_CANCELLED
        service.jobs.cancel(running.job_id)
        assert service.jobs.wait(running.job_id, 30).state == job_pb2.JOB_STATE_CANCELLED
        failed = service.jobs.wait(service.jobs.submit("fails", failing).job_id, 30)
        assert failed.state == job_pb2.JOB_STATE_FAILED
        assert (failed.error_reason, failed.error_message) == ("WRONG_STATE", "the data moved")
        assert [j.kind for j in service.jobs.list(["FAILED"], "", None, 10)] == ["fails"]
        assert len(service.jobs.list([], "slow", None, 10)) == 2
        with pytest.raises(NotFound):
            service.jobs.get("no-such-job")
        # Left running at shutdown: the next start says it can never finish, instead of RUNNING forever.
        release.clear()
        left = service.jobs.submit("slow", slow)
        assert release.wait(30)
        service.store.update_job(left.job_id, job_state="RUNNING")
        service.jobs._cancel_flag  # noqa: B018 (the job stops with the service below)
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        after = service.jobs.get(left.job_id)
        assert after.state in (job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED)
        assert service.jobs.get(running.job_id).state == job_pb2.JOB_STATE_CANCELLED


def _arrow_table():
    import pyarrow as pa

    return pa.table(
        {
            "customer_id": pa.array(["c1", "c2", "c3"]),
            "visits": pa.array([3, None, 5], pa.int32()),
            "spend": pa.array([1.5, 2.25, float("inf")]),
            "vip": pa.array([True, False, None]),
            "opened_at": pa.array(
                [dt.datetime(2026, 1, 2, tzinfo=dt.UTC), None, dt.datetime(2026, 3, 4, tzinfo=dt.UTC)]
            ),
            "fund_type": pa.array(["bond", "qdii", "bond"]).dictionary_encode(),
        }
    )


@pytest.mark.parametrize("file_format", [pb.FILE_FORMAT_ARROW_IPC, pb.FILE_FORMAT_PARQUET])
def test_arrow_and_parquet_uploads_keep_types_and_reject_bad_rows(tmp_path: Path, file_format: int) -> None:
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    table = _arrow_table()
    sink = pa.BufferOutputStream()
    if file_format == pb.FILE_FORMAT_PARQUET:
        pq.write_table(table, sink)
    else:
        with pyarrow.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    definition = pb.Dataset(name="arrow", customer_id_column="customer_id")
    with running_service(modeling_settings(tmp_path)) as service:
        response = service.upload_file(definition, file_format, sink.getvalue().to_pybytes())
        assert response.dataset.row_count == 2  # the row with an infinite spend is named and left out
        assert [(p.row_index, p.column) for p in response.problems] == [(2, "spend")]
        types = {c.name: c.type for c in response.dataset.columns}
        assert types == {
            "customer_id": VT.VALUE_TYPE_STRING,
            "visits": VT.VALUE_TYPE_INT,
            "spend": VT.VALUE_TYPE_DOUBLE,
            "vip": VT.VALUE_TYPE_BOOL,
            "opened_at": VT.VALUE_TYPE_TIMESTAMP,
            "fund_type": VT.VALUE_TYPE_STRING,
        }
        _, stored = service.catalog.load(response.dataset.dataset_id)
        assert stored.data["visits"].tolist()[0] == 3 and np.isnan(stored.data["visits"].tolist()[1])
        assert stored.data["opened_at"].tolist()[0] == dt.datetime(2026, 1, 2, tzinfo=dt.UTC).timestamp() * 1e6
        assert stored.data["fund_type"].tolist() == ["bond", "qdii"]
        assert stored.data["vip"].tolist()[:2] == [1.0, 0.0]
        nested = pa.table({"tags": pa.array([["a"], ["b"]])})
        sink = pa.BufferOutputStream()
        pq.write_table(nested, sink)
        with pytest.raises(InvalidArgument, match=r"column 'tags' is list<.*only numbers"):
            service.upload_file(pb.Dataset(name="n"), pb.FILE_FORMAT_PARQUET, sink.getvalue().to_pybytes())
