from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogPack(_message.Message):
    __slots__ = ("received_at_us", "records", "event_ids", "event_types", "user_ids", "anonymous_ids", "occurred_at_us", "fingerprints", "flags", "payloads", "sealed_values")
    RECEIVED_AT_US_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_IDS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_US_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINTS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    SEALED_VALUES_FIELD_NUMBER: _ClassVar[int]
    received_at_us: int
    records: _containers.RepeatedCompositeFieldContainer[LogRecord]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    anonymous_ids: _containers.RepeatedScalarFieldContainer[str]
    occurred_at_us: _containers.RepeatedScalarFieldContainer[int]
    fingerprints: _containers.RepeatedScalarFieldContainer[str]
    flags: _containers.RepeatedScalarFieldContainer[int]
    payloads: _containers.RepeatedScalarFieldContainer[bytes]
    sealed_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, received_at_us: _Optional[int] = ..., records: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ..., event_ids: _Optional[_Iterable[str]] = ..., event_types: _Optional[_Iterable[str]] = ..., user_ids: _Optional[_Iterable[str]] = ..., anonymous_ids: _Optional[_Iterable[str]] = ..., occurred_at_us: _Optional[_Iterable[int]] = ..., fingerprints: _Optional[_Iterable[str]] = ..., flags: _Optional[_Iterable[int]] = ..., payloads: _Optional[_Iterable[bytes]] = ..., sealed_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("event_id", "event_type", "user_id", "anonymous_id", "occurred_at_us", "fingerprint", "flags", "payload", "sealed_values")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_US_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SEALED_VALUES_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    user_id: str
    anonymous_id: str
    occurred_at_us: int
    fingerprint: str
    flags: int
    payload: bytes
    sealed_values: bytes
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., user_id: _Optional[str] = ..., anonymous_id: _Optional[str] = ..., occurred_at_us: _Optional[int] = ..., fingerprint: _Optional[str] = ..., flags: _Optional[int] = ..., payload: _Optional[bytes] = ..., sealed_values: _Optional[bytes] = ...) -> None: ...
