"""svc_collect's part of ``qiming demo``: a schema, a batch with a bad event and a retry, the log read back."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2


def _event(event_type: str, user_id: str, **properties: object) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()), event_type=event_type, user_id=user_id, channel=types_pb2.CHANNEL_APP
    )
    event.occurred_at.GetCurrentTime()
    for name, value in properties.items():
        if isinstance(value, int):
            event.properties[name].money_fen_value = value
        else:
            event.properties[name].string_value = str(value)
    return event


def run(channel: grpc.Channel, step: Callable[[str], None]) -> None:
    collect = collect_pb2_grpc.CollectServiceStub(channel)
    schemas = collect_pb2_grpc.EventSchemaServiceStub(channel)
    quarantine = collect_pb2_grpc.QuarantineServiceStub(channel)

    step("svc_collect: register the schema of 'fund_subscribe' (amount_fen is level 3: encrypted at rest)")
    schema = collect_pb2.EventSchema(
        event_type="fund_subscribe",
        description="a customer subscribes to a fund",
        properties=[
            {"name": "fund_code", "type": types_pb2.VALUE_TYPE_STRING, "required": True},
            {"name": "amount_fen", "type": types_pb2.VALUE_TYPE_MONEY_FEN, "sensitivity": 3},
        ],
    )
    registered = schemas.RegisterEventSchema(collect_pb2.RegisterEventSchemaRequest(schema=schema), timeout=10)
    print(f"  fund_subscribe is at version {registered.schema.version}")

    step("svc_collect: ingest a batch of 4 events; one lacks a required property; each gets its own result")
    events = [
        _event("app_open", "c1001"),
        _event("fund_view", "c1001", fund_code="000001"),
        _event("fund_subscribe", "c1001", fund_code="000001", amount_fen=5_000_000),
        _event("fund_subscribe", "c1002", amount_fen=100),
    ]
    reply = collect.Ingest(collect_pb2.IngestRequest(events=events), timeout=10)
    for result in reply.results:
        status = collect_pb2.EventStatus.Name(result.status).removeprefix("EVENT_STATUS_")
        extra = f"  {result.field}: {result.message}" if result.message else f"  cursor {result.cursor}"
        print(f"  [{result.index}] {events[result.index].event_type:15} {status:9}{extra}")

    step("svc_collect: the client retries the same batch (it never saw the answer): nothing is stored twice")
    again = collect.Ingest(collect_pb2.IngestRequest(events=events), timeout=10)
    print(f"  accepted {again.accepted_count}, duplicate {again.duplicate_count}, rejected {again.rejected_count}")

    step("svc_collect: read the log from the start (level 3 values withheld from this reader)")
    for response in collect.ReadEvents(collect_pb2.ReadEventsRequest(), timeout=10):
        for event in response.events:
            props = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in event.properties.items()}
            masked = f"  masked: {', '.join(event.masked_fields)}" if event.masked_fields else ""
            print(f"  {event.cursor}  {event.event_type:15} {event.user_id}  {props}{masked}")

    step("svc_collect: the rejected event waits in quarantine with its reason")
    for item in quarantine.ListQuarantinedEvents(collect_pb2.ListQuarantinedEventsRequest(), timeout=10).events:
        print(f"  {item.quarantine_id}  {item.event.event_type}: {item.field}: {item.message}")

    stats = collect.GetIngestStats(collect_pb2.GetIngestStatsRequest(), timeout=10)
    step("svc_collect: ingest statistics (per type)")
    for row in stats.by_type:
        print(f"  {row.event_type:15} accepted {row.accepted}  duplicate {row.duplicate}  rejected {row.rejected}")
