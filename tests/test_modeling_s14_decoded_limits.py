"""Session 14 (walk-sec F8b): an upload is refused over ``max_dataset_rows``, ``max_dataset_columns`` and
``max_decoded_bytes`` before it is decoded whole: a Parquet file by its metadata, an Arrow/Parquet file batch by batch,
and any file by the size its text columns take stored (each as wide as its longest value)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from svc_common.errors import ResourceExhausted
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from tests.modeling_helpers import modeling_settings, running_service

MiB = 1024 * 1024


@pytest.fixture
def service(tmp_path):
    with running_service(modeling_settings(tmp_path, max_dataset_rows=1000, max_decoded_bytes=MiB)) as service:
        yield service


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def _upload(service, file_format: int, content: bytes) -> pb.UploadFileResponse:
    return service.upload_file(pb.Dataset(name="f", customer_id_column="cid"), file_format, content)


def test_a_parquet_file_over_max_dataset_rows_is_refused_by_its_metadata(service, monkeypatch) -> None:
    content = _parquet(pa.table({"cid": [f"c{i}" for i in range(2000)], "x": list(range(2000))}))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before the row limit was checked")

    monkeypatch.setattr(pq, "read_table", no_decoding)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_decoding)
    with pytest.raises(ResourceExhausted, match=r"more than 1000 rows \(max_dataset_rows\)"):
        _upload(service, pb.FILE_FORMAT_PARQUET, content)


def test_a_small_parquet_file_that_decodes_large_is_refused(tmp_path) -> None:
    rows = 100_000  # 100-character values: 10 MB decoded from a file of a few KB
    values = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["x" * 100]))
    content = _parquet(pa.table({"cid": pa.array(["c1"] * rows).dictionary_encode(), "s": values}))
    assert len(content) < 64 * 1024
    settings = modeling_settings(tmp_path, max_dataset_rows=1_000_000, max_decoded_bytes=MiB)
    refused = pytest.raises(
        ResourceExhausted, match=r"the file decoded takes more than 1048576 bytes \(max_decoded_bytes\)"
    )
    with running_service(settings) as service, refused:
        _upload(service, pb.FILE_FORMAT_PARQUET, content)


def test_an_arrow_stream_over_max_dataset_rows_is_refused_batch_by_batch(service) -> None:
    out = io.BytesIO()
    batch = pa.record_batch({"cid": [f"c{i}" for i in range(400)]})
    with pyarrow.ipc.new_stream(out, batch.schema) as writer:
        for _ in range(3):
            writer.write_batch(batch)
    # After the third batch, garbage instead of the end of the stream: only a reader that decodes everything first
    # gets there (and would answer "not a readable file").
    content = out.getvalue()[:-8] + b"\xff\xff\xff\xff\x10\x00\x00\x00" + b"garbage!" * 4
    with pytest.raises(ResourceExhausted, match="max_dataset_rows"):
        _upload(service, pb.FILE_FORMAT_ARROW_IPC, content)


def test_one_long_text_cell_that_would_make_the_stored_dataset_huge_is_refused(service) -> None:
    lines = ["cid,note"] + [f"c{i},short" for i in range(999)] + ["c999," + "y" * 5000]
    with pytest.raises(ResourceExhausted, match=r"max_decoded_bytes.*'note' has a value of 5000 characters"):
        _upload(service, pb.FILE_FORMAT_CSV, "\n".join(lines).encode())
    assert _upload(service, pb.FILE_FORMAT_CSV, "\n".join(lines[:-1]).encode()).dataset.row_count == 999
