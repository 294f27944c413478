"""Findings of the ingest walk of session 27: the look for undeclared personal data took an event's ids out of its whole
encoding before searching, so a phone number sent both as an identity and in a comment, or an id card number holding
the user id, was stored in clear; and a cursor's position was read by ``int(…, 16)``, which took "0x1", "+1", " 1 ",
"0_1" and other digits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import types_pb2

PHONE = "13812345678"
ID_CARD = "110101199001011237"


def _events() -> list:
    beside_identity = make_event(comment=f"call me at {PHONE}")
    beside_identity.identities.add(type=types_pb2.ID_TYPE_PHONE_PSEUDONYM, value=PHONE)
    holding_user_id = make_event(comment=f"id {ID_CARD} here", user_id=ID_CARD[:14])
    equal_to_identity = make_event(phone_copy=PHONE)
    equal_to_identity.identities.add(type=types_pb2.ID_TYPE_PHONE_PSEUDONYM, value=PHONE)
    equal_to_identity.anonymous_id = PHONE  # the same value in two id fields and a property
    return [beside_identity, holding_user_id, equal_to_identity]


@pytest.mark.parametrize("native", [True, False])
def test_personal_data_beside_the_same_value_as_an_id_is_sealed(tmp_path: Path, native: bool) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, native_checks=native)) as (service, _):
            outcomes = await service.ingest(_events())
            assert [o.status for o in outcomes] == [collect_pb2.EVENT_STATUS_ACCEPTED] * 3
            stored = service.event_log.read(0, 10, None).events
            assert len(stored) == 3
            for row in stored:
                assert ID_CARD.encode() not in row.payload
                assert f"call me at {PHONE}".encode() not in row.payload
            masked = [
                list(e.masked_fields)
                async for events, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset())
                for e in events
            ]
            assert masked == [["comment"], ["comment"], ["phone_copy"]]

    asyncio.run(scenario())


def test_personal_data_beside_an_id_is_refused_under_reject(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, undeclared_pii="reject")) as (service, _):
            outcomes = await service.ingest(_events()[:2])
            assert [o.status for o in outcomes] == [collect_pb2.EVENT_STATUS_REJECTED] * 2

    asyncio.run(scenario())


@pytest.mark.parametrize("position", ["0x1", "+1", " 1 ", "0_1", "\u0661", "-0", "1A", ""])
def test_a_cursor_position_is_lower_case_hex_digits_alone(tmp_path: Path, position: str) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            await service.ingest([make_event(), make_event()])
            tag = service.cursor(1).partition(".")[0]
            assert service.parse_cursor(f"{tag}.1") == 1 and service.parse_cursor(f"{tag}.a") == 10
            with pytest.raises(InvalidArgument, match="is not a cursor of this log"):
                service.parse_cursor(f"{tag}.{position}")

    asyncio.run(scenario())
