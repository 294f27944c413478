"""ReplayQuarantinedEvents (acceptance walk, findings 5 and 6): by filter it always replayed the oldest ``limit``
records, so events that keep failing starved the fixable ones behind them; it now pages with a token. And more than
1000 ``quarantine_ids`` blamed the field ``limit``."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from collect_helpers import KEYRING, make_event
from server_helpers import violations

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.process import ServerProcess

ENV = {"QIMING_COLLECT_KEYRING_JSON": KEYRING}
TYPE = "order_note"


def _schema(*names: str) -> collect_pb2.EventSchema:
    properties = [{"name": "a", "type": types_pb2.VALUE_TYPE_INT, "required": True}]
    properties += [{"name": n, "type": types_pb2.VALUE_TYPE_INT} for n in names]
    return collect_pb2.EventSchema(event_type=TYPE, properties=properties, reject_unknown_properties=True)


def test_replay_by_filter_pages_past_the_events_that_keep_failing(tmp_path: Path) -> None:
    with ServerProcess("collect", work_dir=tmp_path, env=ENV) as server, grpc.insecure_channel(server.address) as ch:
        collect = collect_pb2_grpc.CollectServiceStub(ch)
        schemas = collect_pb2_grpc.EventSchemaServiceStub(ch)
        quarantine = collect_pb2_grpc.QuarantineServiceStub(ch)
        schemas.RegisterEventSchema(collect_pb2.RegisterEventSchemaRequest(schema=_schema()), timeout=10)
        hopeless = [make_event(TYPE, a="x") for _ in range(5)]  # a is not an int: never passes
        fixable = [make_event(TYPE, a=1, b=2) for _ in range(3)]  # b unknown until v2
        for batch in (hopeless, fixable):  # two calls: the hopeless ones are quarantined first (older)
            assert collect.Ingest(collect_pb2.IngestRequest(events=batch), timeout=10).rejected_count == len(batch)
        request = collect_pb2.RegisterEventSchemaRequest(schema=_schema("b"), expected_version=1)
        schemas.RegisterEventSchema(request, timeout=10)

        def replay(token: str = "") -> collect_pb2.ReplayQuarantinedEventsResponse:
            request = collect_pb2.ReplayQuarantinedEventsRequest(event_types=[TYPE], limit=5, page_token=token)
            return quarantine.ReplayQuarantinedEvents(request, timeout=10)

        first = replay()
        assert (first.accepted_count, first.still_rejected_count) == (0, 5) and first.next_page_token
        assert {r.event_id for r in first.results} == {e.event_id for e in hopeless}
        second = replay(first.next_page_token)
        assert (second.accepted_count, second.still_rejected_count) == (3, 0)
        assert second.next_page_token == ""  # the last page
        # from the start again: only the hopeless ones are left, and they fit one page
        again = replay()
        assert (again.accepted_count, again.still_rejected_count, again.next_page_token) == (0, 5, "")

        with pytest.raises(grpc.RpcError) as mixed:
            quarantine.ReplayQuarantinedEvents(
                collect_pb2.ReplayQuarantinedEventsRequest(
                    quarantine_ids=[str(uuid.uuid4())], page_token=first.next_page_token
                ),
                timeout=10,
            )
        assert mixed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in violations(mixed.value)] == ["page_token"]
        listing_token = quarantine.ListQuarantinedEvents(
            collect_pb2.ListQuarantinedEventsRequest(page={"page_size": 1}), timeout=10
        ).next_page_token
        with pytest.raises(grpc.RpcError) as foreign:  # a listing's token is not a replay's
            replay(listing_token)
        assert foreign.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in violations(foreign.value)] == ["page_token"]
        from svc_collect.server import _REPLAY_TOKEN
        from svc_common.paging import encode_token

        with pytest.raises(grpc.RpcError) as forged:  # a replay token whose position was not made here
            replay(encode_token(_REPLAY_TOKEN, {"at": "yesterday", "id": 7}))
        assert [f for f, _ in violations(forged.value)] == ["page_token"]  # it named page.page_token

        with pytest.raises(grpc.RpcError) as too_many:
            ids = [str(uuid.uuid4()) for _ in range(1001)]
            quarantine.ReplayQuarantinedEvents(
                collect_pb2.ReplayQuarantinedEventsRequest(quarantine_ids=ids), timeout=10
            )
        assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in violations(too_many.value)] == ["quarantine_ids"]
        with pytest.raises(grpc.RpcError) as big_limit:
            quarantine.ReplayQuarantinedEvents(collect_pb2.ReplayQuarantinedEventsRequest(limit=1001), timeout=10)
        assert [f for f, _ in violations(big_limit.value)] == ["limit"]
