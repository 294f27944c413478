"""Session 11's shortcuts of the ingest hot path give the same answers as the long way: responses written as bytes,
the validator's facts reused by protection, and the sealed vault encoded by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collect_helpers import collect_settings, make_event, resent_changed_and_bad, running_service

from svc_collect import server, validation
from svc_collect.service import ACCEPTED, REJECTED, IngestOutcomes
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2


def _old_response(outcomes: IngestOutcomes, stream_batch: int | None = None) -> bytes:
    """The response as the servicer built it before: EventResult messages, then SerializeToString."""
    if stream_batch is None:
        response = collect_pb2.IngestResponse()
    else:
        response = collect_pb2.IngestStreamResponse(batch_id=stream_batch)
    response.accepted_count, response.duplicate_count, response.rejected_count = server._fill_results(
        response, outcomes
    )
    return response.SerializeToString()


def test_ingest_responses_written_as_bytes_equal_the_messages(tmp_path: Path) -> None:
    """Accepted, duplicate, duplicate with another payload and rejected events, indexes past 127 (two-byte varints)
    and a batch of rejections only: the bytes are exactly those of the message built result by result."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            same, other, bad = await resent_changed_and_bad(service)
            batch = [make_event() for _ in range(150)] + [same, other, bad, make_event(amount_fen=5)]
            for events in (batch, [bad], [same], []):
                outcomes = await service.ingest(events)
                assert isinstance(outcomes, IngestOutcomes)
                data = server.encode_ingest_response(outcomes)
                assert data == _old_response(outcomes)
                assert server.encode_ingest_stream_response(0, outcomes) == _old_response(outcomes, 0)
                assert server.encode_ingest_stream_response(2**40, outcomes) == _old_response(outcomes, 2**40)
                # Outcomes as a plain list (a replay's) take the message path and agree too.
                assert server.encode_ingest_response(list(outcomes)) == data
            reply = collect_pb2.IngestResponse.FromString(server.encode_ingest_response(await service.ingest(batch)))
            assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (0, 153, 1)
            assert [r.index for r in reply.results] == list(range(154))

    asyncio.run(scenario())


def test_tag_bytes_are_those_of_the_fields() -> None:
    """The validator and the protector skip reading identities and the context's ip when their tag byte is nowhere
    in the event's encoding: the constants must be the tags (field number << 3 | length-delimited) of these fields."""
    identities = event_pb2.Event.DESCRIPTOR.fields_by_name["identities"]
    ip = event_pb2.EventContext.DESCRIPTOR.fields_by_name["ip"]
    assert identities.number << 3 | 2 == validation.IDENTITIES_TAG
    assert ip.number << 3 | 2 == validation.CONTEXT_IP_TAG
    event = make_event()
    event.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="8")
    event.context.ip = "1"
    data = event.SerializeToString(deterministic=True)
    assert validation.IDENTITIES_TAG in data and validation.CONTEXT_IP_TAG in data


def test_ids_and_ips_are_protected_whether_or_not_their_tag_bytes_occur_elsewhere(tmp_path: Path) -> None:
    """An event without identities or ip whose other fields happen to hold the tag bytes (":" and "J") takes the
    long way and is stored as sent; events with them are pseudonymized and sealed as ever; a bad identity is
    still refused."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            plain = make_event(note="a:J", user_id="J:1")
            plain.context.os = "J:"
            expected = plain.SerializeToString(deterministic=True)
            with_both = make_event(user_id="c9")
            with_both.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="880012345678")
            with_both.context.ip = "10.1.2.3"
            only_ip = make_event()
            only_ip.context.ip = "10.9.9.9"
            bad = make_event()
            bad.identities.add(type=types_pb2.ID_TYPE_CANONICAL, value="p1")
            outcomes = await service.ingest([plain, with_both, only_ip, bad])
            assert [o.status for o in outcomes] == [ACCEPTED, ACCEPTED, ACCEPTED, REJECTED]
            assert outcomes[3].field == "identities[0].type"
            rows = outcomes.rows
            assert rows[0].payload == expected and rows[0].sealed is None
            stored = event_pb2.Event.FromString(rows[1].payload)
            assert stored.identities[0].value.startswith("ps1:") and not stored.context.ip
            assert list(stored.masked_fields) == ["context.ip"] and rows[1].sealed is not None
            stored = event_pb2.Event.FromString(rows[2].payload)
            assert not stored.context.ip and list(stored.masked_fields) == ["context.ip"]
            assert service._protector.sealer.open(rows[2].sealed, stored.event_id.encode())

    asyncio.run(scenario())
