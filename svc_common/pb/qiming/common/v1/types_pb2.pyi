import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ID_TYPE_UNSPECIFIED: _ClassVar[IdType]
    ID_TYPE_ANONYMOUS: _ClassVar[IdType]
    ID_TYPE_CUSTOMER: _ClassVar[IdType]
    ID_TYPE_FUND_ACCOUNT: _ClassVar[IdType]
    ID_TYPE_PHONE_PSEUDONYM: _ClassVar[IdType]
    ID_TYPE_WECOM: _ClassVar[IdType]
    ID_TYPE_WECHAT_UNION: _ClassVar[IdType]
    ID_TYPE_DEVICE: _ClassVar[IdType]
    ID_TYPE_CANONICAL: _ClassVar[IdType]

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    VALUE_TYPE_STRING: _ClassVar[ValueType]
    VALUE_TYPE_INT: _ClassVar[ValueType]
    VALUE_TYPE_DOUBLE: _ClassVar[ValueType]
    VALUE_TYPE_BOOL: _ClassVar[ValueType]
    VALUE_TYPE_TIMESTAMP: _ClassVar[ValueType]
    VALUE_TYPE_STRING_LIST: _ClassVar[ValueType]
    VALUE_TYPE_MONEY_FEN: _ClassVar[ValueType]

class SensitivityLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SENSITIVITY_LEVEL_UNSPECIFIED: _ClassVar[SensitivityLevel]
    SENSITIVITY_LEVEL_1: _ClassVar[SensitivityLevel]
    SENSITIVITY_LEVEL_2: _ClassVar[SensitivityLevel]
    SENSITIVITY_LEVEL_3: _ClassVar[SensitivityLevel]
    SENSITIVITY_LEVEL_4: _ClassVar[SensitivityLevel]

class ProtectionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTECTION_MODE_UNSPECIFIED: _ClassVar[ProtectionMode]
    PROTECTION_MODE_NONE: _ClassVar[ProtectionMode]
    PROTECTION_MODE_ENCRYPT: _ClassVar[ProtectionMode]
    PROTECTION_MODE_PSEUDONYMIZE: _ClassVar[ProtectionMode]
    PROTECTION_MODE_DROP: _ClassVar[ProtectionMode]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_APP: _ClassVar[Channel]
    CHANNEL_WEB: _ClassVar[Channel]
    CHANNEL_H5: _ClassVar[Channel]
    CHANNEL_WECHAT_MINI_PROGRAM: _ClassVar[Channel]
    CHANNEL_WECHAT_OFFICIAL_ACCOUNT: _ClassVar[Channel]
    CHANNEL_WECOM: _ClassVar[Channel]
    CHANNEL_COUNTER: _ClassVar[Channel]
    CHANNEL_CALL_CENTER: _ClassVar[Channel]
    CHANNEL_TRADING_SYSTEM: _ClassVar[Channel]
    CHANNEL_CRM: _ClassVar[Channel]
    CHANNEL_SERVER: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
ID_TYPE_UNSPECIFIED: IdType
ID_TYPE_ANONYMOUS: IdType
ID_TYPE_CUSTOMER: IdType
ID_TYPE_FUND_ACCOUNT: IdType
ID_TYPE_PHONE_PSEUDONYM: IdType
ID_TYPE_WECOM: IdType
ID_TYPE_WECHAT_UNION: IdType
ID_TYPE_DEVICE: IdType
ID_TYPE_CANONICAL: IdType
VALUE_TYPE_UNSPECIFIED: ValueType
VALUE_TYPE_STRING: ValueType
VALUE_TYPE_INT: ValueType
VALUE_TYPE_DOUBLE: ValueType
VALUE_TYPE_BOOL: ValueType
VALUE_TYPE_TIMESTAMP: ValueType
VALUE_TYPE_STRING_LIST: ValueType
VALUE_TYPE_MONEY_FEN: ValueType
SENSITIVITY_LEVEL_UNSPECIFIED: SensitivityLevel
SENSITIVITY_LEVEL_1: SensitivityLevel
SENSITIVITY_LEVEL_2: SensitivityLevel
SENSITIVITY_LEVEL_3: SensitivityLevel
SENSITIVITY_LEVEL_4: SensitivityLevel
PROTECTION_MODE_UNSPECIFIED: ProtectionMode
PROTECTION_MODE_NONE: ProtectionMode
PROTECTION_MODE_ENCRYPT: ProtectionMode
PROTECTION_MODE_PSEUDONYMIZE: ProtectionMode
PROTECTION_MODE_DROP: ProtectionMode
CHANNEL_UNSPECIFIED: Channel
CHANNEL_APP: Channel
CHANNEL_WEB: Channel
CHANNEL_H5: Channel
CHANNEL_WECHAT_MINI_PROGRAM: Channel
CHANNEL_WECHAT_OFFICIAL_ACCOUNT: Channel
CHANNEL_WECOM: Channel
CHANNEL_COUNTER: Channel
CHANNEL_CALL_CENTER: Channel
CHANNEL_TRADING_SYSTEM: Channel
CHANNEL_CRM: Channel
CHANNEL_SERVER: Channel
CHANNEL_SMS: Channel
CHANNEL_EMAIL: Channel

class Identity(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: IdType
    value: str
    def __init__(self, type: _Optional[_Union[IdType, str]] = ..., value: _Optional[str] = ...) -> None: ...

class UserRef(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: IdType
    value: str
    def __init__(self, type: _Optional[_Union[IdType, str]] = ..., value: _Optional[str] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("string_value", "int_value", "double_value", "bool_value", "timestamp_value", "string_list_value", "money_fen_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    MONEY_FEN_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    timestamp_value: _timestamp_pb2.Timestamp
    string_list_value: StringList
    money_fen_value: int
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., timestamp_value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., string_list_value: _Optional[_Union[StringList, _Mapping]] = ..., money_fen_value: _Optional[int] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class PageRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("source", "writer", "writer_version", "written_at", "trace_id")
    class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SOURCE_UNSPECIFIED: _ClassVar[Provenance.Source]
        SOURCE_RULE: _ClassVar[Provenance.Source]
        SOURCE_MODEL: _ClassVar[Provenance.Source]
        SOURCE_IMPORT: _ClassVar[Provenance.Source]
        SOURCE_MANUAL: _ClassVar[Provenance.Source]
    SOURCE_UNSPECIFIED: Provenance.Source
    SOURCE_RULE: Provenance.Source
    SOURCE_MODEL: Provenance.Source
    SOURCE_IMPORT: Provenance.Source
    SOURCE_MANUAL: Provenance.Source
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    WRITER_VERSION_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_AT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    source: Provenance.Source
    writer: str
    writer_version: str
    written_at: _timestamp_pb2.Timestamp
    trace_id: str
    def __init__(self, source: _Optional[_Union[Provenance.Source, str]] = ..., writer: _Optional[str] = ..., writer_version: _Optional[str] = ..., written_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_id: _Optional[str] = ...) -> None: ...
