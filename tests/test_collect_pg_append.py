"""PostgreSQL appends COPY a group without looking its ids up first, and fall back to the lookup when the unique
index finds a re-sent id: the answers and positions are the same either way."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.service import ACCEPTED, DUPLICATE
from svc_collect.store import _log, _pg_append
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2


def _seq(cursor: str) -> int:
    return int(cursor.rsplit(".", 1)[1], 16)


def test_a_resent_id_falls_back_to_the_lookup_and_positions_stay_gapless(
    database_url_postgresql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[int] = []
    original = _pg_append.PgAppender._existing

    def counting(self: _pg_append.PgAppender, conn, ids):  # type: ignore[no-untyped-def]
        lookups.append(len(ids))
        return original(self, conn, ids)

    monkeypatch.setattr(_pg_append.PgAppender, "_existing", counting)
    monkeypatch.setattr(_log, "_LOOKUPS_AFTER_MISS", 2)

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            first = [make_event("page_view", f"c{i}", screen="home") for i in range(10)]
            accepted = list(await service.ingest(first))
            assert [o.status for o in accepted] == [ACCEPTED] * 10
            assert [_seq(o.cursor) for o in accepted] == list(range(1, 11))
            assert lookups == []  # nothing re-sent: written without a lookup

            changed = make_event("page_view", "c4", event_id=first[4].event_id, screen="other")
            new_id = str(uuid.uuid4())
            second = [
                first[0],
                first[1],
                changed,
                *(make_event("fund_view", f"d{i}") for i in range(5)),
                make_event("page_view", "e", event_id=new_id),
                make_event("page_view", "e", event_id=new_id),
            ]
            outcomes = list(await service.ingest(second))
            assert lookups == [9]  # the COPY met a re-sent id; the group was looked up and written again
            assert [o.status for o in outcomes] == [DUPLICATE] * 3 + [ACCEPTED] * 6 + [DUPLICATE]
            assert [_seq(o.cursor) for o in outcomes[:3]] == [1, 2, 5]
            assert outcomes[2].reason == errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH
            assert [_seq(o.cursor) for o in outcomes[3:9]] == list(range(11, 17))  # no gap left by the failed COPY
            assert _seq(outcomes[9].cursor) == 16

            for _ in range(2):  # the groups after a miss look up first ...
                await service.ingest([make_event("page_view", "f")])
            assert len(lookups) == 3
            last = list(await service.ingest([make_event("page_view", "g")]))  # ... then COPY straight again
            assert len(lookups) == 3 and _seq(last[0].cursor) == 19

            page = await asyncio.to_thread(service._log.read, 0, 100)
            assert [e.seq for e in page.events] == list(range(1, 20))
            assert len({event_pb2.Event.FromString(e.payload).event_id for e in page.events}) == 19

    asyncio.run(scenario())
