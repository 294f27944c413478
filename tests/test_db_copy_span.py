"""A COPY run on the driver (svc_collect's appends, svc_campaign's batch inserts on PostgreSQL) shows in a trace as a
client span like the ones SQLAlchemy's instrumentation makes for its own statements, failed when the COPY fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

from campaign_helpers import add_template, campaign_service, event, run_journey, wait_then_send
from collect_helpers import collect_settings, make_event, running_service
from opentelemetry.trace import SpanKind, StatusCode


def _copies(span_exporter, table: str) -> list:
    return [
        s
        for s in span_exporter.get_finished_spans()
        if s.name.startswith("COPY") and str(s.attributes.get("db.statement", "")).startswith(f"COPY {table} ")
    ]


def test_the_collectors_copy_is_traced_and_a_refused_one_is_marked(
    database_url_postgresql: str, tmp_path: Path, span_exporter
) -> None:
    span_exporter.clear()

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            first = [make_event("page_view", f"c{i}") for i in range(5)]
            await service.ingest(first)
            await service.ingest([first[0], make_event("page_view", "c9")])  # the COPY meets a re-sent id

    asyncio.run(scenario())
    copies = _copies(span_exporter, "collect_event")
    assert all(s.kind == SpanKind.CLIENT and s.attributes["db.system"] == "postgresql" for s in copies)
    # The first group; the second refused by the unique index (a re-sent id), then looked up and its new row written.
    assert [s.attributes["db.qiming.rows"] for s in copies] == [5, 2, 1]
    assert [s.status.status_code == StatusCode.ERROR for s in copies] == [False, True, False]


def test_the_campaigns_batch_copy_is_traced(database_url_postgresql: str, tmp_path: Path, span_exporter) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service, "t1")
        run_journey(service, wait_then_send(3600, "t1"), "j1")
        span_exporter.clear()
        service.engine.handle([event("signup", f"c{n}") for n in range(3)])
        service.clock.advance(hours=1)
        assert service.engine.fire_due_timers().timers_fired == 3
    (messages,) = _copies(span_exporter, "campaign_message")
    assert messages.attributes["db.qiming.rows"] == 3
    assert messages.attributes["db.name"] == database_url_postgresql.rsplit("/", 1)[1].split("?")[0]
