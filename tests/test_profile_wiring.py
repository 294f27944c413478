"""svc_profile's use of svc_common: the log client's keepalive settings, and id normalisation before pseudonyms."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from collect_helpers import KEYRING
from profile_helpers import profile_app, profile_settings

from svc_common.logclient import CollectClient
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.protection import JsonKeyProvider, Pseudonymizer
from svc_profile import app as app_module
from svc_profile.identity import IdPolicy


def test_collect_client_gets_the_configured_keepalive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class RecordingClient(CollectClient):  # the real client, its arguments noted
        def __init__(self, address: str, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(address, **kwargs)

    monkeypatch.setattr(app_module, "CollectClient", RecordingClient)
    settings = profile_settings(
        tmp_path,
        collect_address="127.0.0.1:9",
        grpc_keepalive_time_seconds=4.5,
        grpc_keepalive_timeout_seconds=2.5,
        sweep_interval_seconds=3600,
    )

    async def scenario(app: app_module.ProfileApp) -> None:
        await app.start()
        await app.stop()

    with profile_app(settings) as app:
        asyncio.run(scenario(app))
    assert made == [{"keepalive_time_seconds": 4.5, "keepalive_timeout_seconds": 2.5}]


@pytest.mark.parametrize("id_type", [types_pb2.ID_TYPE_PHONE_PSEUDONYM, types_pb2.ID_TYPE_FUND_ACCOUNT])
def test_pseudonymized_ids_are_stripped_before_the_256_character_cut(id_type: int) -> None:
    # Pseudonymizer strips too, but only after IdPolicy's cut: without IdPolicy's own strip, leading blanks would
    # count towards the 256 characters and the same id would get another pseudonym. So the strip stays.
    from svc_common.config import load_settings
    from svc_profile.config import ProfileSettings

    keys = JsonKeyProvider(KEYRING)
    policy = IdPolicy(load_settings(ProfileSettings, keyring_json=KEYRING), keys)
    namespace = "phone" if id_type == types_pb2.ID_TYPE_PHONE_PSEUDONYM else "fund_account"
    long_id = "7" * 300
    expected = Pseudonymizer(keys).pseudonymize(namespace, long_id[:256])
    assert policy.key(id_type, long_id) == (id_type, expected)
    assert policy.key(id_type, "   " + long_id + " ") == (id_type, expected)
    unstripped_cut = Pseudonymizer(keys).pseudonymize(namespace, ("   " + long_id)[:256])
    assert unstripped_cut != expected
    # Short ids: the same pseudonym with or without blanks, and a stored pseudonym is kept as it is.
    assert policy.key(id_type, " 13800138000\t") == policy.key(id_type, "13800138000")
    assert policy.key(id_type, f" {expected} ") == (id_type, expected)


def test_other_ids_are_stripped_and_cut() -> None:
    from svc_common.config import load_settings
    from svc_profile.config import ProfileSettings

    policy = IdPolicy(load_settings(ProfileSettings, keyring_json=KEYRING), JsonKeyProvider(KEYRING))
    assert policy.key(types_pb2.ID_TYPE_CUSTOMER, "  c-1 ") == (types_pb2.ID_TYPE_CUSTOMER, "c-1")
    assert policy.key(types_pb2.ID_TYPE_CUSTOMER, " " + "x" * 300) == (types_pb2.ID_TYPE_CUSTOMER, "x" * 256)
