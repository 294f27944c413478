"""On a port that serves svc_collect the server receives up to twice ``grpc_max_message_bytes`` so that ingest can
answer its own BATCH_TOO_LARGE; every other method keeps the setting's limit (RESOURCE_EXHAUSTED,
MESSAGE_TOO_LARGE). A 2 MB request to another method under a 1 MiB setting was taken (the operator review's Ping
echoed it and failed the send with an ERROR in the server's log)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from collect_helpers import make_event
from collect_helpers import serving_collect as serving
from test_collect_review12_audit import _error_info

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc

TIMEOUT = 10
LIMIT = 1024 * 1024


def test_only_ingest_receives_above_grpc_max_message_bytes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, grpc_max_message_bytes=LIMIT) as s:
            schemas = collect_pb2_grpc.EventSchemaServiceStub(s.channel)
            with pytest.raises(grpc.RpcError) as refused:
                await schemas.GetEventSchema(
                    collect_pb2.GetEventSchemaRequest(event_type="x" * 1_500_000), timeout=TIMEOUT
                )
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refused.value.details() == (
                f"request of 1500004 bytes is larger than this server accepts ({LIMIT} bytes, grpc_max_message_bytes)"
            )
            info = _error_info(refused.value)
            assert info.reason == "MESSAGE_TOO_LARGE" and info.metadata["limit_bytes"] == str(LIMIT)
            with pytest.raises(grpc.RpcError) as small:
                await schemas.GetEventSchema(collect_pb2.GetEventSchemaRequest(event_type="x" * 1000), timeout=TIMEOUT)
            assert small.value.code() == grpc.StatusCode.NOT_FOUND  # under the limit: answered as usual

            big = [make_event(user_id=f"c{i}", blob="x" * 4000) for i in range(400)]  # ~1.7 MB: ingest's own answer
            with pytest.raises(grpc.RpcError) as batch:
                await s.collect.Ingest(collect_pb2.IngestRequest(events=big), timeout=TIMEOUT)
            assert _error_info(batch.value).reason == "BATCH_TOO_LARGE"

    asyncio.run(scenario())
