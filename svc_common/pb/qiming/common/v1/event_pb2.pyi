import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from svc_common.pb.qiming.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "event_type", "occurred_at", "received_at", "anonymous_id", "user_id", "identities", "session_id", "channel", "properties", "context", "cursor", "fingerprint", "masked_fields", "flags")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    occurred_at: _timestamp_pb2.Timestamp
    received_at: _timestamp_pb2.Timestamp
    anonymous_id: str
    user_id: str
    identities: _containers.RepeatedCompositeFieldContainer[_types_pb2.Identity]
    session_id: str
    channel: _types_pb2.Channel
    properties: _containers.MessageMap[str, _types_pb2.Value]
    context: EventContext
    cursor: str
    fingerprint: str
    masked_fields: _containers.RepeatedScalarFieldContainer[str]
    flags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., anonymous_id: _Optional[str] = ..., user_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_types_pb2.Identity, _Mapping]]] = ..., session_id: _Optional[str] = ..., channel: _Optional[_Union[_types_pb2.Channel, str]] = ..., properties: _Optional[_Mapping[str, _types_pb2.Value]] = ..., context: _Optional[_Union[EventContext, _Mapping]] = ..., cursor: _Optional[str] = ..., fingerprint: _Optional[str] = ..., masked_fields: _Optional[_Iterable[str]] = ..., flags: _Optional[_Iterable[str]] = ...) -> None: ...

class EventContext(_message.Message):
    __slots__ = ("app_version", "os", "os_version", "device_model", "device_manufacturer", "screen", "page_url", "referrer", "ip", "locale", "timezone", "network_carrier", "network_type", "library_name", "library_version", "campaign_source", "campaign_message_id")
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    OS_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_MODEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_URL_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_CARRIER_FIELD_NUMBER: _ClassVar[int]
    NETWORK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_NAME_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    app_version: str
    os: str
    os_version: str
    device_model: str
    device_manufacturer: str
    screen: str
    page_url: str
    referrer: str
    ip: str
    locale: str
    timezone: str
    network_carrier: str
    network_type: str
    library_name: str
    library_version: str
    campaign_source: str
    campaign_message_id: str
    def __init__(self, app_version: _Optional[str] = ..., os: _Optional[str] = ..., os_version: _Optional[str] = ..., device_model: _Optional[str] = ..., device_manufacturer: _Optional[str] = ..., screen: _Optional[str] = ..., page_url: _Optional[str] = ..., referrer: _Optional[str] = ..., ip: _Optional[str] = ..., locale: _Optional[str] = ..., timezone: _Optional[str] = ..., network_carrier: _Optional[str] = ..., network_type: _Optional[str] = ..., library_name: _Optional[str] = ..., library_version: _Optional[str] = ..., campaign_source: _Optional[str] = ..., campaign_message_id: _Optional[str] = ...) -> None: ...
