"""An idle service exports no traces of its polls: a database read outside any trace (a poller's ``connect`` and
``SELECT`` every 200 ms) is not sampled, where an idle svc_campaign wrote 33 root spans a second (~3 GB a day to
a span file). A call's statements are still its children, and writes outside a call still start a trace."""

from __future__ import annotations

import json
import time
from pathlib import Path

from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

from svc_common.process import ServerProcess
from svc_common.telemetry import RootSampler


def test_an_idle_campaign_service_exports_no_poll_spans(tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    env = {"QIMING_CAMPAIGN_TELEMETRY_EXPORTER": "file", "QIMING_CAMPAIGN_TELEMETRY_FILE_PATH": str(spans)}
    with ServerProcess("campaign", work_dir=tmp_path, env=env):
        time.sleep(3)  # ~15 timer polls, plus the outbox, pending-event and schedule pollers
    names = [json.loads(line)["name"] for line in spans.read_text().splitlines()] if spans.exists() else []
    assert [n for n in names if n.split(" ", 1)[0] in ("connect", "SELECT", "BEGIN", "COMMIT")] == []


def test_the_root_sampler_drops_only_database_reads() -> None:
    sampler = RootSampler(1.0)

    def decision(name: str, kind: SpanKind) -> Decision:
        return sampler.should_sample(None, 0x1234, name, kind).decision

    assert decision("SELECT campaign", SpanKind.CLIENT) == Decision.DROP
    assert decision("connect", SpanKind.CLIENT) == Decision.DROP
    assert decision("INSERT campaign", SpanKind.CLIENT) == Decision.RECORD_AND_SAMPLE
    assert decision("COPY collect", SpanKind.CLIENT) == Decision.RECORD_AND_SAMPLE
    assert decision("/qiming.collect.v1.CollectService/Ingest", SpanKind.CLIENT) == Decision.RECORD_AND_SAMPLE
    assert decision("/qiming.profile.v1.ProfileService/GetProfile", SpanKind.SERVER) == Decision.RECORD_AND_SAMPLE
    assert RootSampler(0.0).should_sample(None, 0x1234, "INSERT x", SpanKind.CLIENT).decision == Decision.DROP
