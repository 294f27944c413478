"""A service finds its peers: the configured address, else its own process when it serves them, else none."""

from __future__ import annotations

import asyncio

from svc_common.config import ServerSettings, load_settings
from svc_common.server import ServiceSpec, peer_address, serve


def test_peer_address_prefers_this_process_then_configuration(caplog) -> None:
    seen: dict[str, str] = {}

    async def on_start() -> None:
        seen["collect"] = peer_address("collect")
        seen["profile"] = peer_address("profile")
        seen["configured"] = peer_address("collect", "db7:6000")
        stop.set()

    spec = ServiceSpec(name="collect", grpc_services=(), register=lambda server: None, on_start=[on_start])
    settings = load_settings(ServerSettings, grpc_port=0)
    stop = asyncio.Event()

    async def main() -> None:
        await serve([spec], settings, stop=stop)

    asyncio.run(main())
    assert seen["collect"].startswith("127.0.0.1:") and seen["collect"] != "127.0.0.1:0"
    assert seen["profile"] == ""  # not served here, not configured: not connected
    # serve all with the split deployment's config file: the suite calls itself, and says so once.
    assert seen["configured"] == seen["collect"]
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "qiming.peers"]
    assert warning.startswith("the configured address db7:6000 of svc_collect is not used: this process serves")
    assert peer_address("profile", "db7:6001") == "db7:6001"  # not served here: the configured address
    assert peer_address("collect") == ""  # forgotten once the server stopped
