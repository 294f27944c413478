"""svc_collect's gRPC layer: request → domain call → proto. Nothing else lives here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from grpc import aio

from svc_collect.config import CollectSettings
from svc_collect.health import dependency_probes
from svc_collect.ingest_streams import OpenStreams, stopping_error
from svc_collect.output_only import clear_output_only_in
from svc_collect.quarantine_args import quarantine_position, reason_names
from svc_collect.reading import customers_of
from svc_collect.service import (
    ACCEPTED,
    DUPLICATE,
    PAYLOAD_MISMATCH_MESSAGE,
    RELEASED_MESSAGE,
    CollectService,
    EventLog,
    EventOutcome,
    IngestOutcomes,
)
from svc_collect.store import SqlCatalog, SqlEventLog, tables
from svc_collect.validation import reason_value, refuse_bad_filter
from svc_collect.wire import varint
from svc_common.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted, refuse_reversed_range
from svc_common.paging import decode_token, encode_token, invalid_page_token, page_size
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.runtime import ServiceRuntime
from svc_common.server import Encoded, ServiceSpec, current_call, note_audit_detail, note_customers
from svc_common.timestamps import range_micros

_REPLAY_DEFAULT, _REPLAY_MAX = 100, 1000
_REPLAY_TOKEN = "quarantine_replay"  # a replay's page token: not interchangeable with a listing's


def _roles() -> frozenset[str]:
    call = current_call()
    return call.principal.roles if call is not None else frozenset()


def _fill_results(response: object, outcomes: Sequence[EventOutcome]) -> tuple[int, int, int]:
    add = response.results.add  # type: ignore[attr-defined]
    if isinstance(outcomes, IngestOutcomes):
        return _fill_compact(add, outcomes)
    counts = [0, 0, 0, 0]
    for o in outcomes:
        counts[o.status] += 1
        _add_outcome(add, o)
    return counts[1], counts[2], counts[3]


def _add_outcome(add: Callable[..., object], o: EventOutcome) -> None:
    # Unset fields (reason 0, empty strings) are not written: an accepted event's result stays index, id, cursor.
    add(
        index=o.index,
        event_id=o.event_id,
        status=o.status,
        reason=o.reason,
        field=o.field,
        message=o.message,
        cursor=o.cursor,
        quarantine_id=o.quarantine_id,
    )


def _fill_compact(add: Callable[..., object], outcomes: IngestOutcomes) -> tuple[int, int, int]:
    """The hot path: one ``add`` per event, no intermediate object (see IngestOutcomes)."""
    rows = outcomes.rows
    appended = outcomes.appended
    tag = outcomes.log_tag + "."
    accepted = duplicate = rejected = 0
    for index, item in enumerate(outcomes.items):
        if item.__class__ is int:
            result = appended[item]
            if not result.duplicate:
                accepted += 1
                add(index=index, event_id=rows[item].event_id, status=ACCEPTED, cursor=f"{tag}{result.seq:x}")
                continue
            duplicate += 1
            if result.payload_mismatch:
                add(
                    index=index,
                    event_id=rows[item].event_id,
                    status=DUPLICATE,
                    reason=errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH,
                    message=PAYLOAD_MISMATCH_MESSAGE,
                    cursor=f"{tag}{result.seq:x}",
                )
            else:
                add(index=index, event_id=rows[item].event_id, status=DUPLICATE, cursor=f"{tag}{result.seq:x}")
            continue
        if item.status == DUPLICATE:  # type: ignore[union-attr]  # a rejected event the log held already
            duplicate += 1
        else:
            rejected += 1
        _add_outcome(add, item)  # type: ignore[arg-type]
    return accepted, duplicate, rejected


# The wire form of IngestResponse / IngestStreamResponse without an EventResult object per event. Each result is
# written as text and the whole encoded once as Latin-1, which maps code points 0-255 to the same bytes: event ids
# (validated UUIDs) and cursors are ASCII, and every length and index byte is below 256 (docs/collect.md).
_INGEST_RESULTS = "\x0a"  # IngestResponse.results = 1
_STREAM_RESULTS = "\x12"  # IngestStreamResponse.results = 2
_ACCEPTED_CURSOR = f"\x18{chr(ACCEPTED)}\x3a"  # EventResult.status = 3, then the tag of .cursor = 7
_DUPLICATE_CURSOR = f"\x18{chr(DUPLICATE)}\x3a"
_index_fields: list[str] = [""]  # "EventResult.index = 1" for 0, 1, 2, ... (0 is not written)


def _index_field(index: int) -> str:
    while len(_index_fields) <= index:
        _index_fields.append("\x08" + varint(len(_index_fields)).decode("latin-1"))
    return _index_fields[index]


def _encode_results(tag: str, outcomes: IngestOutcomes) -> tuple[bytes, int, int, int]:
    """``outcomes`` as the repeated EventResult field ``tag``, byte for byte as ``_fill_results`` and
    ``SerializeToString`` encode them; with the accepted, duplicate and rejected counts."""
    _index_field(len(outcomes.items))
    index_fields = _index_fields
    rows = outcomes.rows
    appended = outcomes.appended
    prefix = outcomes.log_tag + "."
    parts: list[str] = []
    append = parts.append

    def add(**fields: object) -> None:  # results with a reason, and anything unusual: through the message
        data = collect_pb2.EventResult(**fields).SerializeToString()
        append((tag.encode() + varint(len(data)) + data).decode("latin-1"))

    accepted = duplicate = rejected = 0
    for index, item in enumerate(outcomes.items):
        if item.__class__ is not int:  # rejected, or a rejected event the log held already (a duplicate)
            if item.status == DUPLICATE:  # type: ignore[union-attr]
                duplicate += 1
            else:
                rejected += 1
            _add_outcome(add, item)  # type: ignore[arg-type]
            continue
        result = appended[item]
        cursor = f"{prefix}{result.seq:x}"
        event_id = rows[item][0]  # LogRow.event_id
        if result.duplicate:
            duplicate += 1
            status_cursor = _DUPLICATE_CURSOR
        else:
            accepted += 1
            status_cursor = _ACCEPTED_CURSOR
        index_field = index_fields[index]
        size = len(index_field) + len(event_id) + len(cursor) + 6
        if result.payload_mismatch or size > 127 or not event_id.isascii():  # size > 127 covers a long id
            status = DUPLICATE if result.duplicate else ACCEPTED
            reason = errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH if result.payload_mismatch else 0
            message = PAYLOAD_MISMATCH_MESSAGE if result.payload_mismatch else ""
            add(index=index, event_id=event_id, status=status, reason=reason, message=message, cursor=cursor)
            continue
        append(
            f"{tag}{chr(size)}{index_field}\x12{chr(len(event_id))}{event_id}{status_cursor}{chr(len(cursor))}{cursor}"
        )
    return "".join(parts).encode("latin-1"), accepted, duplicate, rejected


def _uint_field(tag: int, value: int) -> bytes:
    return bytes((tag,)) + varint(value) if value else b""


def encode_ingest_response(outcomes: Sequence[EventOutcome]) -> bytes:
    """The encoding of the IngestResponse of ``outcomes``."""
    if not isinstance(outcomes, IngestOutcomes):
        response = collect_pb2.IngestResponse()
        response.accepted_count, response.duplicate_count, response.rejected_count = _fill_results(response, outcomes)
        return response.SerializeToString()
    results, accepted, duplicate, rejected = _encode_results(_INGEST_RESULTS, outcomes)
    return results + _uint_field(0x10, accepted) + _uint_field(0x18, duplicate) + _uint_field(0x20, rejected)


def encode_ingest_stream_response(batch_id: int, outcomes: Sequence[EventOutcome]) -> bytes:
    """The encoding of the IngestStreamResponse of ``outcomes``."""
    if not isinstance(outcomes, IngestOutcomes):
        response = collect_pb2.IngestStreamResponse(batch_id=batch_id)
        response.accepted_count, response.duplicate_count, response.rejected_count = _fill_results(response, outcomes)
        return response.SerializeToString()
    results, accepted, duplicate, rejected = _encode_results(_STREAM_RESULTS, outcomes)
    return b"".join(
        (
            _uint_field(0x08, batch_id),
            results,
            _uint_field(0x18, accepted),
            _uint_field(0x20, duplicate),
            _uint_field(0x28, rejected),
        )
    )


class CollectServicer(collect_pb2_grpc.CollectServiceServicer):
    def __init__(self, service: CollectService, max_message_bytes: int = 2**31 - 1) -> None:
        self._service = service
        self._max_bytes = max_message_bytes
        self.streams = OpenStreams()

    async def Ingest(self, request: collect_pb2.IngestRequest, context: aio.ServicerContext) -> Encoded:
        _refuse_too_large(request, self._max_bytes)
        # The deserializer (_sized) cleared the events' output-only fields.
        return Encoded(encode_ingest_response(await self._service.ingest(request.events, output_only_cleared=True)))

    async def IngestStream(
        self, request_iterator: AsyncIterator[collect_pb2.IngestStreamRequest], context: aio.ServicerContext
    ) -> AsyncIterator[Encoded]:
        task, stream = self.streams.open()
        requests = aiter(request_iterator)
        try:
            while True:
                stream.waiting = True  # a graceful stop may end the stream here (ingest_streams.py)
                try:
                    request = await anext(requests)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not stream.ended:
                        raise
                    task.uncancel()
                    raise stopping_error() from None
                stream.waiting = False
                try:
                    _refuse_too_large(request, self._max_bytes)
                    outcomes = await self._service.ingest(request.events, output_only_cleared=True)
                except ResourceExhausted as exc:
                    if exc.reason != "BATCH_TOO_LARGE":  # e.g. LOG_FULL: part of the batch may be stored
                        raise
                    # Refused before anything was stored: it ends the stream, so say which batch, and what now.
                    raise _stream_ended_at(exc, getattr(request, "batch_id", None)) from None
                yield Encoded(encode_ingest_stream_response(request.batch_id, outcomes))
                if self.streams.stopping:  # acknowledged; the next batches go to another collector
                    raise stopping_error()
        finally:
            self.streams.close(task)

    async def ReadEvents(
        self, request: collect_pb2.ReadEventsRequest, context: aio.ServicerContext
    ) -> AsyncIterator[Encoded]:
        note_audit_detail(**read_filters(request))  # a read of the whole log names nobody: its filters say what
        async for data in self._service.read_encoded(request, _roles()):
            yield Encoded(data)

    async def GetIngestStats(
        self, request: collect_pb2.GetIngestStatsRequest, context: aio.ServicerContext
    ) -> collect_pb2.GetIngestStatsResponse:
        stats = await self._service.stats(*range_micros(request.time_range), request.event_types)
        response = collect_pb2.GetIngestStatsResponse(
            ingest_lag_millis=stats.ingest_lag_millis,
            delivery_delay_p50_millis=stats.delay_p50_millis,
            delivery_delay_p99_millis=stats.delay_p99_millis,
        )
        for event_type, accepted, duplicate, rejected in stats.by_type:
            response.by_type.add(event_type=event_type, accepted=accepted, duplicate=duplicate, rejected=rejected)
        for minute_us, accepted, duplicate, rejected in stats.by_minute:
            bucket = response.by_minute.add(accepted=accepted, duplicate=duplicate, rejected=rejected)
            bucket.minute.FromMicroseconds(minute_us)
        return response


def read_filters(request: collect_pb2.ReadEventsRequest) -> dict[str, object]:
    """What a ``ReadEvents`` asked for, for its audit record: the event types (empty: all), where it starts (a cursor or
    a receive time), the kind of id of its ``user`` filter (a customer number is named in the record's customers
    already; an anonymous id is not named), ``max_events``, ``follow`` and ``unmask``. Never a value of an event."""
    filters: dict[str, object] = {"event_types": list(request.event_types)}
    start = request.WhichOneof("start")
    if start == "after_cursor":
        filters["after_cursor"] = request.after_cursor
    elif start == "from_received_at":
        try:
            filters["from_received_at"] = request.from_received_at.ToJsonString()
        except ValueError:  # out of range: the call is refused (TIMESTAMP_OUT_OF_RANGE), the record says what it was
            filters["from_received_at"] = f"seconds={request.from_received_at.seconds}"
    if request.HasField("user"):
        kind = request.user.type
        filters["user_id_type"] = types_pb2.IdType.Name(kind) if kind in types_pb2.IdType.values() else str(kind)
    if request.max_events:
        filters["max_events"] = request.max_events
    filters["follow"] = request.follow
    filters["unmask"] = request.unmask
    return filters


class EventSchemaServicer(collect_pb2_grpc.EventSchemaServiceServicer):
    def __init__(self, service: CollectService) -> None:
        self._schemas = service.schemas

    async def RegisterEventSchema(
        self, request: collect_pb2.RegisterEventSchemaRequest, context: aio.ServicerContext
    ) -> collect_pb2.RegisterEventSchemaResponse:
        call = current_call()
        by = call.principal.subject if call is not None else ""
        schema = await self._schemas.register(request.schema, request.expected_version, by)
        return collect_pb2.RegisterEventSchemaResponse(schema=schema)

    async def GetEventSchema(
        self, request: collect_pb2.GetEventSchemaRequest, context: aio.ServicerContext
    ) -> collect_pb2.GetEventSchemaResponse:
        return collect_pb2.GetEventSchemaResponse(schema=await self._schemas.get(request.event_type, request.version))

    async def ListEventSchemas(
        self, request: collect_pb2.ListEventSchemasRequest, context: aio.ServicerContext
    ) -> collect_pb2.ListEventSchemasResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "event_schemas") or {}
        after = position.get("after", "")
        if not isinstance(after, str) or "\x00" in after:
            raise invalid_page_token()
        schemas = await self._schemas.list(after, size + 1)
        response = collect_pb2.ListEventSchemasResponse(schemas=schemas[:size])
        if len(schemas) > size:
            response.next_page_token = encode_token("event_schemas", {"after": schemas[size - 1].event_type})
        return response


class QuarantineServicer(collect_pb2_grpc.QuarantineServiceServicer):
    def __init__(self, service: CollectService, catalog: SqlCatalog) -> None:
        self._service = service
        self._catalog = catalog

    async def ListQuarantinedEvents(
        self, request: collect_pb2.ListQuarantinedEventsRequest, context: aio.ServicerContext
    ) -> collect_pb2.ListQuarantinedEventsResponse:
        if request.unmask:
            self._service.check_unmask(_roles())
        refuse_bad_filter("event_types", request.event_types)
        size = page_size(request.page.page_size)
        after = quarantine_position(decode_token(request.page.page_token, "quarantine"))
        start_us, end_us = range_micros(request.time_range)
        refuse_reversed_range(start_us, end_us)  # an empty page would look like an empty quarantine
        reasons = reason_names(request.reasons)
        records = await asyncio.to_thread(
            lambda: self._catalog.list_quarantine(
                event_types=list(request.event_types),
                reasons=reasons,
                start_us=start_us,
                end_us=end_us,
                include_released=request.include_released,
                after=after,
                limit=size + 1,
            )
        )
        response = collect_pb2.ListQuarantinedEventsResponse()
        opened = [self._service.try_open_quarantined(record) for record in records[:size]]
        note_customers(*customers_of([event for event, _ in opened]))  # the audit record names whose events it shows
        for record, (event, unopenable) in zip(records, opened, strict=False):
            item = response.events.add(
                quarantine_id=record.quarantine_id,
                event=event if request.unmask else self._service.masked(event),
                reason=reason_value(record.reason),
                field=record.field_path,
                message=f"{record.message} ({unopenable})" if unopenable else record.message,
                replay_count=record.replay_count,
                released_cursor=self._service.cursor(record.released_seq) if record.released_seq else "",
            )
            item.quarantined_at.FromMicroseconds(record.quarantined_at_us)
        if len(records) > size:
            last = records[size - 1]
            response.next_page_token = encode_token(
                "quarantine", {"at": last.quarantined_at_us, "id": last.quarantine_id}
            )
        return response

    async def ReplayQuarantinedEvents(
        self, request: collect_pb2.ReplayQuarantinedEventsRequest, context: aio.ServicerContext
    ) -> collect_pb2.ReplayQuarantinedEventsResponse:
        limit = request.limit or _REPLAY_DEFAULT
        if limit > _REPLAY_MAX:
            raise InvalidArgument(
                f"replay at most {_REPLAY_MAX} events per call",
                violations=[FieldViolation("limit", f"<= {_REPLAY_MAX}")],
            )
        next_token = ""
        if request.quarantine_ids:
            if len(request.quarantine_ids) > _REPLAY_MAX:
                raise InvalidArgument(
                    f"replay at most {_REPLAY_MAX} quarantine_ids per call (got {len(request.quarantine_ids)})",
                    violations=[FieldViolation("quarantine_ids", f"at most {_REPLAY_MAX} ids")],
                )
            if request.page_token:
                raise InvalidArgument(
                    "page_token pages a replay by filter; it does not go with quarantine_ids",
                    violations=[FieldViolation("page_token", "only without quarantine_ids")],
                )
            ids = list(dict.fromkeys(request.quarantine_ids))
            refuse_bad_filter("quarantine_ids", ids)
            records = await asyncio.to_thread(self._catalog.get_quarantined, ids)
            missing = sorted(set(ids) - {r.quarantine_id for r in records})
            if missing:
                raise NotFound(
                    f"no quarantined event {missing[0]!r}",
                    reason="NOT_FOUND",
                    metadata={"missing": ",".join(missing[:20])},
                )
        else:
            refuse_bad_filter("event_types", request.event_types)
            reasons = reason_names(request.reasons)
            after = quarantine_position(decode_token(request.page_token, _REPLAY_TOKEN, "page_token"), "page_token")
            # One more than the page: whether a next page exists. Those still rejected keep their place (oldest
            # first), so the token, not the quarantine's state, carries the next call past them.
            records = await asyncio.to_thread(
                lambda: self._catalog.list_quarantine(
                    event_types=list(request.event_types), reasons=reasons, after=after, limit=limit + 1
                )
            )
            if len(records) > limit:
                records = records[:limit]
                last = records[-1]
                next_token = encode_token(_REPLAY_TOKEN, {"at": last.quarantined_at_us, "id": last.quarantine_id})
        outcomes = await self._service.replay(records)
        response = collect_pb2.ReplayQuarantinedEventsResponse()
        accepted, duplicate, rejected = _fill_results(response, outcomes)
        # Released before (named again, or by a replay of the same record beside this one): DUPLICATE, not counted.
        released_before = sum(1 for o in outcomes if o.message == RELEASED_MESSAGE)
        # DUPLICATE with PAYLOAD_MISMATCH: another event holds the id, this one was not stored and stays quarantined.
        mismatched = sum(1 for o in outcomes if o.reason == errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH)
        response.accepted_count = accepted + duplicate - released_before - mismatched
        response.still_rejected_count = rejected + mismatched
        response.next_page_token = next_token
        return response


def build_service(runtime: ServiceRuntime) -> tuple[CollectService, SqlCatalog]:
    settings = runtime.settings
    assert isinstance(settings, CollectSettings)
    catalog = SqlCatalog(runtime.database, tables)
    sql_log = SqlEventLog(runtime.database, tables)
    log: EventLog = sql_log
    if settings.log_backend == "jetstream":
        # Imported here: nats-py is the optional `nats` extra, needed only by this backend.
        from svc_collect.store.jetstream import JetStreamConfig, JetStreamEventLog

        log = JetStreamEventLog(JetStreamConfig.from_settings(settings), sql_log)
    return CollectService(settings, log, catalog, runtime.keys), catalog


class _TooLarge:
    """An ingest request above the message limit, in place of the request (its size is all that is looked at)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


def _sized(parse: Callable[[bytes], object], limit: int) -> Callable[[bytes], object]:
    # The size check, and the output-only fields cleared from the bytes at once (output_only.py), not per event.
    def deserialize(data: bytes) -> object:
        if len(data) > limit:
            return _TooLarge(len(data))
        request = parse(data)
        clear_output_only_in(data, request.events)  # type: ignore[attr-defined]
        return request

    return deserialize


def _refuse_too_large(request: object, limit: int) -> None:
    if request.__class__ is _TooLarge:
        raise ResourceExhausted(
            f"the batch is {request.size} bytes; the message limit is {limit} (split it, or raise"  # type: ignore[attr-defined]
            " grpc_max_message_bytes)",
            reason="BATCH_TOO_LARGE",
            metadata={"max_message_bytes": str(limit)},
        )


def _stream_ended_at(refused: ResourceExhausted, batch_id: int | None) -> ResourceExhausted:
    """``refused`` for an IngestStream: the status ends the stream, so the batches sent after this one were not read."""
    which = f"batch_id {batch_id}" if batch_id is not None else "a batch too large to read its batch_id"
    return ResourceExhausted(
        f"{refused.message}. The stream ends at {which}: nothing of it, nor of any batch sent after it, was stored;"
        " send them again on a new stream",
        reason=refused.reason,
        violations=refused.violations,
        metadata={**refused.metadata, **({"batch_id": str(batch_id)} if batch_id is not None else {})},
    )


class _Handlers:
    """Catches the method handlers the generated ``add_..._to_server`` registers."""

    handlers: dict[str, grpc.RpcMethodHandler]

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass

    def add_registered_method_handlers(self, name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.handlers = handlers


def add_collect_service(servicer: CollectServicer, server: aio.Server, limit: int) -> None:
    """CollectService with the ingest requests' size checked in the handler (``_TooLarge``): a batch above
    ``limit`` bytes gets RESOURCE_EXHAUSTED with reason BATCH_TOO_LARGE and the limit, as a batch of too many events
    does; the server receives up to twice the limit for that (above it, gRPC's own refusal without a reason)."""
    caught = _Handlers()
    collect_pb2_grpc.add_CollectServiceServicer_to_server(servicer, caught)
    handlers = dict(caught.handlers)
    for name, message in (("Ingest", collect_pb2.IngestRequest), ("IngestStream", collect_pb2.IngestStreamRequest)):
        handlers[name] = handlers[name]._replace(request_deserializer=_sized(message.FromString, limit))  # type: ignore[attr-defined]
    name = collect_pb2.DESCRIPTOR.services_by_name["CollectService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


def receive_limit(limit: int) -> int:
    return min(2 * limit, 2**31 - 1)


def build_spec(runtime: ServiceRuntime) -> ServiceSpec:
    service, catalog = build_service(runtime)
    limit = runtime.settings.grpc_max_message_bytes

    collect = CollectServicer(service, limit)

    def register(server: aio.Server) -> None:
        add_collect_service(collect, server, limit)
        collect_pb2_grpc.add_EventSchemaServiceServicer_to_server(EventSchemaServicer(service), server)
        collect_pb2_grpc.add_QuarantineServiceServicer_to_server(QuarantineServicer(service, catalog), server)

    names = [s.full_name for s in collect_pb2.DESCRIPTOR.services_by_name.values()]
    ingest = [
        f"/{collect_pb2.DESCRIPTOR.services_by_name['CollectService'].full_name}/{m}"
        for m in ("Ingest", "IngestStream")
    ]
    spec = runtime.spec(
        names,
        register,
        on_start=[service.start],
        on_stop=[service.stop],
        self_checked_methods=ingest,
        dependency_probes=dependency_probes(runtime, service),
    )
    # Following ReadEvents and open IngestStreams end at once, not at the grace deadline.
    spec.on_shutdown = [service.end_follows, collect.streams.end]
    spec.max_receive_message_bytes = receive_limit(limit)
    return spec
