import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2 as _errors_pb2
from svc_common.pb.qiming.common.v1 import event_pb2 as _event_pb2
from svc_common.pb.qiming.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_STATUS_UNSPECIFIED: _ClassVar[EventStatus]
    EVENT_STATUS_ACCEPTED: _ClassVar[EventStatus]
    EVENT_STATUS_DUPLICATE: _ClassVar[EventStatus]
    EVENT_STATUS_REJECTED: _ClassVar[EventStatus]

class UnknownTypePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNKNOWN_TYPE_POLICY_UNSPECIFIED: _ClassVar[UnknownTypePolicy]
    UNKNOWN_TYPE_POLICY_ACCEPT: _ClassVar[UnknownTypePolicy]
    UNKNOWN_TYPE_POLICY_QUARANTINE: _ClassVar[UnknownTypePolicy]
EVENT_STATUS_UNSPECIFIED: EventStatus
EVENT_STATUS_ACCEPTED: EventStatus
EVENT_STATUS_DUPLICATE: EventStatus
EVENT_STATUS_REJECTED: EventStatus
UNKNOWN_TYPE_POLICY_UNSPECIFIED: UnknownTypePolicy
UNKNOWN_TYPE_POLICY_ACCEPT: UnknownTypePolicy
UNKNOWN_TYPE_POLICY_QUARANTINE: UnknownTypePolicy

class IngestRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("results", "accepted_count", "duplicate_count", "rejected_count")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    accepted_count: int
    duplicate_count: int
    rejected_count: int
    def __init__(self, results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ..., accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ...) -> None: ...

class IngestStreamRequest(_message.Message):
    __slots__ = ("events", "batch_id")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    batch_id: int
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., batch_id: _Optional[int] = ...) -> None: ...

class IngestStreamResponse(_message.Message):
    __slots__ = ("batch_id", "results", "accepted_count", "duplicate_count", "rejected_count")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    accepted_count: int
    duplicate_count: int
    rejected_count: int
    def __init__(self, batch_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ..., accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("index", "event_id", "status", "reason", "field", "message", "cursor", "quarantine_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    event_id: str
    status: EventStatus
    reason: _errors_pb2.ErrorReason
    field: str
    message: str
    cursor: str
    quarantine_id: str
    def __init__(self, index: _Optional[int] = ..., event_id: _Optional[str] = ..., status: _Optional[_Union[EventStatus, str]] = ..., reason: _Optional[_Union[_errors_pb2.ErrorReason, str]] = ..., field: _Optional[str] = ..., message: _Optional[str] = ..., cursor: _Optional[str] = ..., quarantine_id: _Optional[str] = ...) -> None: ...

class ReadEventsRequest(_message.Message):
    __slots__ = ("after_cursor", "from_received_at", "event_types", "user", "follow", "max_events", "batch_size", "unmask")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    FROM_RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    UNMASK_FIELD_NUMBER: _ClassVar[int]
    after_cursor: str
    from_received_at: _timestamp_pb2.Timestamp
    event_types: _containers.RepeatedScalarFieldContainer[str]
    user: _types_pb2.UserRef
    follow: bool
    max_events: int
    batch_size: int
    unmask: bool
    def __init__(self, after_cursor: _Optional[str] = ..., from_received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_types: _Optional[_Iterable[str]] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., follow: _Optional[bool] = ..., max_events: _Optional[int] = ..., batch_size: _Optional[int] = ..., unmask: _Optional[bool] = ...) -> None: ...

class ReadEventsResponse(_message.Message):
    __slots__ = ("events", "cursor")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    cursor: str
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class GetIngestStatsRequest(_message.Message):
    __slots__ = ("time_range", "event_types")
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    time_range: _types_pb2.TimeRange
    event_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., event_types: _Optional[_Iterable[str]] = ...) -> None: ...

class GetIngestStatsResponse(_message.Message):
    __slots__ = ("by_type", "by_minute", "ingest_lag_millis", "delivery_delay_p50_millis", "delivery_delay_p99_millis")
    BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    BY_MINUTE_FIELD_NUMBER: _ClassVar[int]
    INGEST_LAG_MILLIS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_DELAY_P50_MILLIS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_DELAY_P99_MILLIS_FIELD_NUMBER: _ClassVar[int]
    by_type: _containers.RepeatedCompositeFieldContainer[EventTypeStats]
    by_minute: _containers.RepeatedCompositeFieldContainer[MinuteStats]
    ingest_lag_millis: int
    delivery_delay_p50_millis: int
    delivery_delay_p99_millis: int
    def __init__(self, by_type: _Optional[_Iterable[_Union[EventTypeStats, _Mapping]]] = ..., by_minute: _Optional[_Iterable[_Union[MinuteStats, _Mapping]]] = ..., ingest_lag_millis: _Optional[int] = ..., delivery_delay_p50_millis: _Optional[int] = ..., delivery_delay_p99_millis: _Optional[int] = ...) -> None: ...

class EventTypeStats(_message.Message):
    __slots__ = ("event_type", "accepted", "duplicate", "rejected")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    accepted: int
    duplicate: int
    rejected: int
    def __init__(self, event_type: _Optional[str] = ..., accepted: _Optional[int] = ..., duplicate: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class MinuteStats(_message.Message):
    __slots__ = ("minute", "accepted", "duplicate", "rejected")
    MINUTE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    minute: _timestamp_pb2.Timestamp
    accepted: int
    duplicate: int
    rejected: int
    def __init__(self, minute: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., accepted: _Optional[int] = ..., duplicate: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class EventSchema(_message.Message):
    __slots__ = ("event_type", "version", "description", "properties", "reject_unknown_properties", "created_at")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    REJECT_UNKNOWN_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    version: int
    description: str
    properties: _containers.RepeatedCompositeFieldContainer[PropertySpec]
    reject_unknown_properties: bool
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, event_type: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., properties: _Optional[_Iterable[_Union[PropertySpec, _Mapping]]] = ..., reject_unknown_properties: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PropertySpec(_message.Message):
    __slots__ = ("name", "type", "required", "allowed_values", "max_length", "sensitivity", "protection", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: _types_pb2.ValueType
    required: bool
    allowed_values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    max_length: int
    sensitivity: _types_pb2.SensitivityLevel
    protection: _types_pb2.ProtectionMode
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[_types_pb2.ValueType, str]] = ..., required: _Optional[bool] = ..., allowed_values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ..., max_length: _Optional[int] = ..., sensitivity: _Optional[_Union[_types_pb2.SensitivityLevel, str]] = ..., protection: _Optional[_Union[_types_pb2.ProtectionMode, str]] = ..., description: _Optional[str] = ...) -> None: ...

class RegisterEventSchemaRequest(_message.Message):
    __slots__ = ("schema", "expected_version")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    schema: EventSchema
    expected_version: int
    def __init__(self, schema: _Optional[_Union[EventSchema, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class RegisterEventSchemaResponse(_message.Message):
    __slots__ = ("schema",)
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    schema: EventSchema
    def __init__(self, schema: _Optional[_Union[EventSchema, _Mapping]] = ...) -> None: ...

class GetEventSchemaRequest(_message.Message):
    __slots__ = ("event_type", "version")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    version: int
    def __init__(self, event_type: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetEventSchemaResponse(_message.Message):
    __slots__ = ("schema",)
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    schema: EventSchema
    def __init__(self, schema: _Optional[_Union[EventSchema, _Mapping]] = ...) -> None: ...

class ListEventSchemasRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _types_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListEventSchemasResponse(_message.Message):
    __slots__ = ("schemas", "next_page_token")
    SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schemas: _containers.RepeatedCompositeFieldContainer[EventSchema]
    next_page_token: str
    def __init__(self, schemas: _Optional[_Iterable[_Union[EventSchema, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QuarantinedEvent(_message.Message):
    __slots__ = ("quarantine_id", "event", "reason", "field", "message", "quarantined_at", "replay_count", "released_cursor")
    QUARANTINE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_COUNT_FIELD_NUMBER: _ClassVar[int]
    RELEASED_CURSOR_FIELD_NUMBER: _ClassVar[int]
    quarantine_id: str
    event: _event_pb2.Event
    reason: _errors_pb2.ErrorReason
    field: str
    message: str
    quarantined_at: _timestamp_pb2.Timestamp
    replay_count: int
    released_cursor: str
    def __init__(self, quarantine_id: _Optional[str] = ..., event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., reason: _Optional[_Union[_errors_pb2.ErrorReason, str]] = ..., field: _Optional[str] = ..., message: _Optional[str] = ..., quarantined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replay_count: _Optional[int] = ..., released_cursor: _Optional[str] = ...) -> None: ...

class ListQuarantinedEventsRequest(_message.Message):
    __slots__ = ("event_types", "reasons", "time_range", "page", "unmask", "include_released")
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    UNMASK_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RELEASED_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[_errors_pb2.ErrorReason]
    time_range: _types_pb2.TimeRange
    page: _types_pb2.PageRequest
    unmask: bool
    include_released: bool
    def __init__(self, event_types: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[_Union[_errors_pb2.ErrorReason, str]]] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ..., unmask: _Optional[bool] = ..., include_released: _Optional[bool] = ...) -> None: ...

class ListQuarantinedEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[QuarantinedEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[QuarantinedEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReplayQuarantinedEventsRequest(_message.Message):
    __slots__ = ("quarantine_ids", "event_types", "reasons", "limit", "page_token")
    QUARANTINE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    quarantine_ids: _containers.RepeatedScalarFieldContainer[str]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[_errors_pb2.ErrorReason]
    limit: int
    page_token: str
    def __init__(self, quarantine_ids: _Optional[_Iterable[str]] = ..., event_types: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[_Union[_errors_pb2.ErrorReason, str]]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ReplayQuarantinedEventsResponse(_message.Message):
    __slots__ = ("results", "accepted_count", "still_rejected_count", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    STILL_REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    accepted_count: int
    still_rejected_count: int
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ..., accepted_count: _Optional[int] = ..., still_rejected_count: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...
