"""Review 2 of svc_modeling, F18: free text a caller stores with a dataset is bounded, the caller's lineage entries
never pass for the service's own, and a ListDatasets page stays far below a default client's 4 MiB limit."""

from __future__ import annotations

import pandas as pd
import pytest

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling import server
from svc_modeling.ingest import MAX_COLUMN_DESCRIPTION_CHARS, MAX_DESCRIPTION_CHARS
from tests.modeling_helpers import modeling_settings, running_service, upload_frame

SMALL = pd.DataFrame({"a": [1, 2], "b": [3, 4]})


@pytest.fixture
def service(tmp_path, database_url):
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        yield service


def _refused(call, field: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.violations[0].field == field, caught.value.violations
    return str(caught.value)


def test_descriptions_names_and_lineage_are_bounded(service) -> None:
    message = _refused(lambda: upload_frame(service, "d", SMALL, description="z" * 3_000_000), "dataset.description")
    assert f"at most {MAX_DESCRIPTION_CHARS}" in message
    long_column = pb.Column(name="a", description="y" * (MAX_COLUMN_DESCRIPTION_CHARS + 1))
    _refused(lambda: upload_frame(service, "d", SMALL, columns=[long_column]), "dataset.columns[0].description")
    message = _refused(lambda: upload_frame(service, "n" * 10_000, SMALL), "dataset.name")
    assert "dataset.name" in message and "at most 256" in message
    _refused(lambda: upload_frame(service, "d", SMALL, lineage={"k": "v" * 5000}), "dataset.lineage[k]")
    _refused(lambda: upload_frame(service, "d", SMALL, lineage={f"k{i}": "v" for i in range(40)}), "dataset.lineage")
    _refused(lambda: service.snapshots.build_from_profiles(pb.BuildFromProfilesRequest(name="x" * 300)), "name")
    _refused(lambda: service.fuse_survey(pb.FuseSurveyRequest(name="a\nb")), "name")
    assert not service.catalog.list(None, 10)
    fine = upload_frame(service, "d", SMALL, description="z" * MAX_DESCRIPTION_CHARS)
    assert len(fine.description) == MAX_DESCRIPTION_CHARS


def test_a_callers_lineage_is_kept_apart_from_the_services(service) -> None:
    dataset = upload_frame(service, "d", SMALL, lineage={"model_name": "churn", "rejected_rows": "0"})
    assert dataset.lineage["caller.model_name"] == "churn"
    assert "model_name" not in dataset.lineage
    assert dataset.lineage["caller.rejected_rows"] == "0" and dataset.lineage["rejected_rows"] == "0"


def test_a_list_page_is_bounded_by_bytes(service, monkeypatch) -> None:
    import asyncio

    monkeypatch.setattr(server, "LIST_PAGE_BYTES", 10_000)
    for i in range(6):
        upload_frame(service, f"d{i}", SMALL, description=str(i) * MAX_DESCRIPTION_CHARS)
    servicer = server.DatasetServicer(service)
    seen, token, pages = [], "", 0
    while True:
        page = pb.ListDatasetsRequest()
        page.page.page_token = token
        response = asyncio.run(servicer.ListDatasets(page, None))
        assert 1 <= len(response.datasets) <= 3 and response.ByteSize() <= 10_000 + MAX_DESCRIPTION_CHARS
        seen += [d.name for d in response.datasets]
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert sorted(seen) == [f"d{i}" for i in range(6)] and pages >= 2
