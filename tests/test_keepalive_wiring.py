"""The consumers of svc_collect's log open their CollectClient with the service's grpc_keepalive_* settings, so a
silently dead connection to the collector is noticed as the operator configured it (svc_common/logclient.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest

from svc_common import logclient
from tests.campaign_helpers import campaign_service


class RecordingClient(logclient.CollectClient):
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, address: str, **kw: Any) -> None:
        RecordingClient.made.append({"address": address, **kw})
        super().__init__(address, **kw)


def test_campaign_follows_the_log_with_its_keepalive_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logclient, "CollectClient", RecordingClient)
    RecordingClient.made.clear()
    settings = {
        "collect_address": "127.0.0.1:9",  # nothing listens: the follower keeps retrying until stopped
        "grpc_keepalive_time_seconds": 7.5,
        "grpc_keepalive_timeout_seconds": 2.5,
    }
    with campaign_service(tmp_path, settings=settings) as service:

        async def start_and_stop() -> None:
            await service.start()
            await service.stop()
            await service.collect.close()

        asyncio.run(start_and_stop())
    assert RecordingClient.made == [
        {"address": "127.0.0.1:9", "keepalive_time_seconds": 7.5, "keepalive_timeout_seconds": 2.5}
    ]
