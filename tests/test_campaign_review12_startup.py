"""Review 12, F14: svc_campaign run as its own process without collect_address or profile_address logs one WARNING
per missing peer at start, naming the setting and what does not work without it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from campaign_helpers import T0, campaign_settings

from svc_campaign.clock import ManualClock
from svc_campaign.service import CampaignService
from svc_campaign.store import SCHEMA, tables
from svc_common.runtime import ServiceRuntime


def _warnings_at_start(tmp_path, caplog: pytest.LogCaptureFixture, **settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    runtime = ServiceRuntime.open(SCHEMA, campaign_settings(tmp_path, **settings))
    service = CampaignService(runtime.settings, runtime.database, tables, clock=ManualClock(T0))

    async def start_and_stop() -> None:
        await service.start()
        await service.stop()

    try:
        with caplog.at_level(logging.WARNING, logger="qiming.campaign"):
            asyncio.run(start_and_stop())
    finally:
        runtime.database.dispose()
    found = [r for r in caplog.records if r.name == "qiming.campaign" and r.levelno == logging.WARNING]
    return {r.setting: r.getMessage() for r in found if hasattr(r, "setting")}


def test_a_campaign_process_without_peers_says_so_once_per_setting(tmp_path, caplog) -> None:
    warned = _warnings_at_start(tmp_path, caplog)
    assert sorted(warned) == ["collect_address", "profile_address"]
    assert "no trigger fires" in warned["collect_address"]
    assert "every customer is unknown" in warned["profile_address"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING and hasattr(r, "setting")]) == 2


def test_a_configured_profile_address_is_not_warned_about(tmp_path, caplog) -> None:
    assert sorted(_warnings_at_start(tmp_path, caplog, profile_address="127.0.0.1:1")) == ["collect_address"]
