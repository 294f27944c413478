"""svc_collect's ingest refuses person ids holding control or format characters, as every other method of every
service does through the server kit (review walk-sec 2026-12-06 F13: ``c3001\\u202e`` became a person of its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event
from collect_helpers import serving_collect as serving

from svc_collect.validation import EventValidator, Rejection
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.protection import JsonKeyProvider, SystemEventSigner, generate_keyring

R = errors_pb2.ErrorReason


def _check(tmp_path: Path, event: object) -> object:
    signer = SystemEventSigner(JsonKeyProvider(generate_keyring().to_json()))
    validator = EventValidator(collect_settings(tmp_path), lambda event_type: None, signer)
    return validator.check(event, event.occurred_at.ToMicroseconds())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_id", "c3001\u202e"), ("user_id", "c3\u200b001"), ("user_id", "a\nb"), ("anonymous_id", "\ufeffdev-1")],
)
def test_user_and_anonymous_ids_with_invisible_characters_are_rejected(tmp_path: Path, field: str, value: str) -> None:
    event = make_event(user_id="")
    setattr(event, field, value)
    rejection = _check(tmp_path, event)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.field) == (R.ERROR_REASON_VALUE_NOT_ALLOWED, field)
    assert "U+" in rejection.message and value not in rejection.message


def test_identity_values_with_invisible_characters_are_rejected(tmp_path: Path) -> None:
    event = make_event(user_id="c3001")
    event.identities.add(type=types_pb2.ID_TYPE_PHONE_PSEUDONYM, value="139\u200b12345678")
    rejection = _check(tmp_path, event)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.field) == (R.ERROR_REASON_VALUE_NOT_ALLOWED, "identities[0].value")


@pytest.mark.parametrize("value", ["c3001", "客户 3001", "c3001\u3000", "ａｂ"])
def test_printable_ids_are_accepted(tmp_path: Path, value: str) -> None:
    assert not isinstance(_check(tmp_path, make_event(user_id=value)), Rejection)


def test_ingest_answers_each_such_event_rejected_and_keeps_the_others(tmp_path: Path) -> None:
    async def scenario() -> list[collect_pb2.EventResult]:
        async with serving(tmp_path) as served:
            stub = collect_pb2_grpc.CollectServiceStub(served.channel)
            events = [make_event(user_id="c3001\u202e"), make_event(user_id="c3001")]
            response = await stub.Ingest(collect_pb2.IngestRequest(events=events), timeout=10)
            return list(response.results)

    bad, good = asyncio.run(scenario())
    assert bad.status != collect_pb2.EVENT_STATUS_ACCEPTED
    assert (bad.reason, bad.field) == (R.ERROR_REASON_VALUE_NOT_ALLOWED, "user_id")
    assert good.status == collect_pb2.EVENT_STATUS_ACCEPTED
