"""svc_profile's erasures reach svc_modeling's stored datasets (svc_modeling/erasure.py): the rows of an erased
customer leave every dataset that names its customer id column, stored again in place (same id, new digest, level
3+ columns sealed again); only svc_profile's signed `$profile_erased` acts; the follower's cursor is stored; over
real svc_collect and svc_modeling processes an erasure published to the log empties the rows by itself."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pandas as pd
from collect_helpers import KEYRING, make_event
from conftest import free_port
from modeling_helpers import modeling_settings, running_service, upload_frame
from profile_helpers import publish, wait_for

from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.process import ServerProcess
from svc_common.protection import JsonKeyProvider, SystemEventSigner, generate_keyring
from svc_modeling.erasure import CONSUMER_NAME
from svc_profile.erasure import erasure_events

SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))
OTHER_KEYRING = SystemEventSigner(JsonKeyProvider(generate_keyring().to_json()))
NOW_US = time.time_ns() // 1000
CUSTOMERS = [f"c{i}" for i in range(6)]


def erased(customer: str, signer: SystemEventSigner = SIGNER) -> event_pb2.Event:
    (out,) = erasure_events(f"p-{customer}", [customer], NOW_US, signer)
    return out


def unsigned(customer: str) -> event_pb2.Event:
    return make_event("$profile_erased", customer)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": CUSTOMERS,
            "phone": [f"1380000000{i}" for i in range(len(CUSTOMERS))],
            "score": [float(i) for i in range(len(CUSTOMERS))],
        }
    )


def rows_of(service, dataset_id: str) -> pd.DataFrame:
    return service.catalog.load(dataset_id)[1].data


def test_an_erasure_removes_the_customer_from_every_keyed_dataset_and_only_signed_ones_act(tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, keyring_json=KEYRING)) as service:
        phone = pb.Column(name="phone", type=types_pb2.VALUE_TYPE_STRING, sensitivity=types_pb2.SENSITIVITY_LEVEL_3)
        keyed = upload_frame(service, "keyed", frame(), customer_id_column="customer_id", columns=[phone])
        other = upload_frame(service, "not keyed", frame())  # names no customer id column: left as it is
        assert len(rows_of(service, keyed.dataset_id)) == 6  # decoded and cached before the erasure
        eraser = service.erasures.eraser
        events = [erased("c1"), erased("c3"), unsigned("c2"), erased("c4", OTHER_KEYRING), make_event("login", "c5")]

        assert eraser.handle(events, "cursor-1") == 2
        assert eraser.skipped == 2  # the unsigned one and the one signed with another keyring
        after = service.catalog.get(keyed.dataset_id)
        assert after.row_count == 4 and after.content_digest != keyed.content_digest
        data = rows_of(service, keyed.dataset_id)  # not the cached rows of before
        assert list(data["customer_id"]) == ["c0", "c2", "c4", "c5"]
        assert list(data["phone"]) == ["13800000000", "13800000002", "13800000004", "13800000005"]  # sealed again
        assert len(rows_of(service, other.dataset_id)) == 6
        assert service.catalog.get(other.dataset_id).content_digest == other.content_digest
        assert eraser.load_cursor() == "cursor-1"
        assert service.store.load_log_cursor(CONSUMER_NAME) == "cursor-1"

        assert eraser.handle([erased("c1")], "cursor-2") == 0  # a replayed batch: nothing left to remove
        assert service.catalog.get(keyed.dataset_id).content_digest == after.content_digest
        assert eraser.load_cursor() == "cursor-2"


def test_a_number_customer_id_column_loses_the_erased_customer_too(tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, keyring_json=KEYRING)) as service:
        data = pd.DataFrame({"customer_no": [1001, 1002, 1003], "y": [0.1, 0.2, 0.3]})
        number = pb.Column(name="customer_no", type=types_pb2.VALUE_TYPE_INT)
        keyed = upload_frame(service, "numbers", data, customer_id_column="customer_no", columns=[number])
        assert service.erasures.eraser.handle([erased("1002"), erased("c9")], "c") == 1
        assert list(rows_of(service, keyed.dataset_id)["customer_no"]) == [1001.0, 1003.0]


def test_a_served_modeling_follows_the_log_and_erases_by_itself(tmp_path: Path) -> None:
    collect_env = {"QIMING_COLLECT_KEYRING_JSON": KEYRING, "QIMING_COLLECT_GRPC_PORT": str(free_port())}
    with ServerProcess("collect", work_dir=tmp_path / "collect", env=collect_env) as collect:
        modeling_env = {
            "QIMING_MODELING_KEYRING_JSON": KEYRING,
            "QIMING_MODELING_COLLECT_ADDRESS": collect.address,
        }
        with (
            ServerProcess("modeling", work_dir=tmp_path / "modeling", env=modeling_env) as modeling,
            grpc.insecure_channel(modeling.address) as channel,
        ):
            datasets = pb_grpc.DatasetServiceStub(channel)
            content = frame().to_csv(index=False).encode()
            definition = pb.Dataset(name="scores", customer_id_column="customer_id")
            requests = [
                pb.UploadFileRequest(dataset=definition, format=pb.FILE_FORMAT_CSV),
                pb.UploadFileRequest(chunk=content),
            ]
            dataset = datasets.UploadFile(iter(requests), timeout=60).dataset
            publish(collect.address, [make_event("login", "c2"), erased("c2")])

            def erased_from_dataset() -> bool:
                got = datasets.GetDataset(pb.GetDatasetRequest(dataset_id=dataset.dataset_id), timeout=10)
                return got.dataset.row_count == 5

            wait_for(erased_from_dataset, timeout=60, interval=0.2)
            read = pb.ReadRowsRequest(dataset_id=dataset.dataset_id)
            ids = [r.values[0].string_value for page in datasets.ReadRows(read, timeout=30) for r in page.rows]
            assert ids == ["c0", "c1", "c3", "c4", "c5"]
