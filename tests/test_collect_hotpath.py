"""Session 11's shortcuts of the ingest hot path give the same answers as the long way: responses written as bytes,
the validator's facts reused by protection, and the sealed vault encoded by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collect_helpers import collect_settings, make_event, running_service

from svc_collect import server
from svc_collect.service import IngestOutcomes
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import event_pb2


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
            first = make_event(label="one")
            await service.ingest([first])
            same = event_pb2.Event()
            same.CopyFrom(first)
            other = event_pb2.Event()
            other.CopyFrom(first)
            other.properties["label"].string_value = "two"
            bad = make_event()
            bad.ClearField("occurred_at")
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
