"""Ids holding control or format characters are refused (review walk-sec 2026-12-06 F13: ``c3001\\u202e``,
``c3\\u200b001`` and ``a\\nb`` became customers of their own that print like ``c3001`` in audit lines), and a phone
number spelled with a zero-width space gets the pseudonym of the number."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from campaign_helpers import campaign_settings
from grpc import aio
from profile_helpers import profile_settings
from server_helpers import served, violations

from svc_campaign.store import SCHEMA as CAMPAIGN_SCHEMA
from svc_common.errors import InvalidArgument
from svc_common.ids import first_invisible_character, refuse_invisible_characters
from svc_common.pb.qiming.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc
from svc_common.protection import normalize_pseudonym_input
from svc_common.runtime import ServiceRuntime
from svc_common.server._ids import refuse_invisible_ids
from svc_profile.store import SCHEMA as PROFILE_SCHEMA

CUSTOMER = types_pb2.ID_TYPE_CUSTOMER
BAD_IDS = ["c3001\u202e", "c3\u200b001", "a\nb\r\n{}", "\ufeffc3001", "c3001\u00ad", "c\t3001", "c3001\u2066"]


@pytest.mark.parametrize("value", BAD_IDS)
def test_control_and_format_characters_are_refused_naming_the_field_not_the_value(value: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        refuse_invisible_characters(value, "user.value")
    error = raised.value
    assert error.status_code == "INVALID_ARGUMENT" and error.reason == "VALUE_NOT_ALLOWED"
    assert [v.field for v in error.violations] == ["user.value"]
    assert "U+" in error.message and value not in error.message


@pytest.mark.parametrize("value", ["c3001", "客户 3001", "c3001\u3000", "ps1:" + "0" * 32, "ａｂ", "с3001"])
def test_printable_ids_pass(value: str) -> None:
    """Other spaces and full-width or look-alike letters are printable: not this check's business (look-alikes need
    a per-deployment pattern for customer numbers)."""
    assert first_invisible_character(value) is None
    refuse_invisible_characters(value, "user.value")


def test_every_userref_and_identity_of_a_request_is_checked() -> None:
    request = profile_pb2.SetStaticMembersRequest(
        users=[types_pb2.UserRef(type=CUSTOMER, value=v) for v in ("c1", "c\u200b2", "c3", "c4\u202e")]
    )
    with pytest.raises(InvalidArgument) as raised:
        refuse_invisible_ids(request)
    assert [v.field for v in raised.value.violations] == ["users[1].value", "users[3].value"]
    assert "U+200B at position 1" in raised.value.violations[0].description
    link = profile_pb2.LinkIdentitiesRequest(
        user=types_pb2.UserRef(type=CUSTOMER, value="c1"),
        identity=types_pb2.Identity(type=types_pb2.ID_TYPE_WECOM, value="wm\u2028x"),
    )
    with pytest.raises(InvalidArgument) as raised:
        refuse_invisible_ids(link)
    assert [v.field for v in raised.value.violations] == ["identity.value"]
    refuse_invisible_ids(profile_pb2.SetStaticMembersRequest(users=[types_pb2.UserRef(type=CUSTOMER, value="c1")]))


def test_a_phone_with_format_characters_gets_the_pseudonym_of_the_number() -> None:
    for spelling in (
        "139\u200b12345678",
        "\u2066139 1234 5678\u2069",
        "\ufeff+86 139-1234-5678",
        "１３９１２３４５６７８",
    ):
        assert normalize_pseudonym_input("phone", spelling) == "13912345678"
    # A value that is not a phone number keeps its form, so that distinct malformed values stay distinct.
    assert normalize_pseudonym_input("phone", "139\u200bxx") == "139\u200bxx"


@contextlib.asynccontextmanager
async def _serving(schema: Any, settings: Any, build_spec: Any) -> AsyncIterator[aio.Channel]:
    """A real service's servicers on a server from ``build_server`` (no background consumers)."""
    runtime = await asyncio.to_thread(ServiceRuntime.open, schema, settings)
    try:
        async with served(build_spec(runtime), settings) as channel:
            yield channel
    finally:
        runtime.database.dispose()


@pytest.fixture
def ports() -> Iterator[dict[str, Any]]:
    yield {"grpc_host": "127.0.0.1", "grpc_port": 0}


def test_profile_upsert_attributes_refuses_an_invisible_customer_number(tmp_path: Path, ports: dict) -> None:
    from svc_profile.server import build_spec

    async def scenario() -> None:
        async with _serving(PROFILE_SCHEMA, profile_settings(tmp_path, **ports), build_spec) as channel:
            stub = profile_pb2_grpc.ProfileServiceStub(channel)
            for value in ("c3001\u202e", "c3\u200b001", "a\nb"):
                request = profile_pb2.UpsertAttributesRequest(user=types_pb2.UserRef(type=CUSTOMER, value=value))
                request.attributes["nickname"].string_value = "x"
                with pytest.raises(aio.AioRpcError) as raised:
                    await stub.UpsertAttributes(request, timeout=10)
                assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert violations(raised.value) == [("user.value", "VALUE_NOT_ALLOWED")]
            request = profile_pb2.UpsertAttributesRequest(user=types_pb2.UserRef(type=CUSTOMER, value="c3001"))
            request.attributes["nickname"].string_value = "x"
            await stub.UpsertAttributes(request, timeout=10)

    asyncio.run(scenario())


def test_campaign_set_consent_refuses_an_invisible_customer_number(tmp_path: Path, ports: dict) -> None:
    from svc_campaign.server import build_spec

    async def scenario() -> None:
        async with _serving(CAMPAIGN_SCHEMA, campaign_settings(tmp_path, **ports), build_spec) as channel:
            stub = campaign_pb2_grpc.PolicyServiceStub(channel)
            consent = campaign_pb2.Consent(
                user=types_pb2.UserRef(type=CUSTOMER, value="c3\u200b001"),
                channel=campaign_pb2.CHANNEL_TYPE_SMS,
                purpose="marketing",
                granted=True,
                source="app_settings",
            )
            with pytest.raises(aio.AioRpcError) as raised:
                await stub.SetConsent(campaign_pb2.SetConsentRequest(consent=consent), timeout=10)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert violations(raised.value) == [("consent.user.value", "VALUE_NOT_ALLOWED")]
            assert "U+200B" in raised.value.details()
            consent.user.value = "c3001"
            await stub.SetConsent(campaign_pb2.SetConsentRequest(consent=consent), timeout=10)

    asyncio.run(scenario())
