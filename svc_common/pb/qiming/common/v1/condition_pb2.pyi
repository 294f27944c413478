from svc_common.pb.qiming.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATOR_UNSPECIFIED: _ClassVar[Operator]
    OPERATOR_EQ: _ClassVar[Operator]
    OPERATOR_NE: _ClassVar[Operator]
    OPERATOR_GT: _ClassVar[Operator]
    OPERATOR_GTE: _ClassVar[Operator]
    OPERATOR_LT: _ClassVar[Operator]
    OPERATOR_LTE: _ClassVar[Operator]
    OPERATOR_IN: _ClassVar[Operator]
    OPERATOR_NOT_IN: _ClassVar[Operator]
    OPERATOR_CONTAINS: _ClassVar[Operator]
    OPERATOR_STARTS_WITH: _ClassVar[Operator]
    OPERATOR_EXISTS: _ClassVar[Operator]
    OPERATOR_NOT_EXISTS: _ClassVar[Operator]
    OPERATOR_BETWEEN: _ClassVar[Operator]
OPERATOR_UNSPECIFIED: Operator
OPERATOR_EQ: Operator
OPERATOR_NE: Operator
OPERATOR_GT: Operator
OPERATOR_GTE: Operator
OPERATOR_LT: Operator
OPERATOR_LTE: Operator
OPERATOR_IN: Operator
OPERATOR_NOT_IN: Operator
OPERATOR_CONTAINS: Operator
OPERATOR_STARTS_WITH: Operator
OPERATOR_EXISTS: Operator
OPERATOR_NOT_EXISTS: Operator
OPERATOR_BETWEEN: Operator

class Condition(_message.Message):
    __slots__ = ("node_id", "all_of", "any_of", "comparison", "event_count", "event_absence", "in_segment", "has_tag")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_OF_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ABSENCE_FIELD_NUMBER: _ClassVar[int]
    IN_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    HAS_TAG_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    all_of: ConditionList
    any_of: ConditionList
    comparison: Comparison
    event_count: EventCount
    event_absence: EventAbsence
    in_segment: SegmentMembership
    has_tag: TagPresence
    def __init__(self, node_id: _Optional[str] = ..., all_of: _Optional[_Union[ConditionList, _Mapping]] = ..., any_of: _Optional[_Union[ConditionList, _Mapping]] = ..., comparison: _Optional[_Union[Comparison, _Mapping]] = ..., event_count: _Optional[_Union[EventCount, _Mapping]] = ..., event_absence: _Optional[_Union[EventAbsence, _Mapping]] = ..., in_segment: _Optional[_Union[SegmentMembership, _Mapping]] = ..., has_tag: _Optional[_Union[TagPresence, _Mapping]] = ..., **kwargs) -> None: ...

class ConditionList(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    def __init__(self, conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ...) -> None: ...

class FieldRef(_message.Message):
    __slots__ = ("source", "name")
    class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SOURCE_UNSPECIFIED: _ClassVar[FieldRef.Source]
        SOURCE_ATTRIBUTE: _ClassVar[FieldRef.Source]
        SOURCE_FEATURE: _ClassVar[FieldRef.Source]
        SOURCE_TAG: _ClassVar[FieldRef.Source]
        SOURCE_EVENT_PROPERTY: _ClassVar[FieldRef.Source]
        SOURCE_SCORE: _ClassVar[FieldRef.Source]
        SOURCE_CONTEXT: _ClassVar[FieldRef.Source]
        SOURCE_EVENT: _ClassVar[FieldRef.Source]
    SOURCE_UNSPECIFIED: FieldRef.Source
    SOURCE_ATTRIBUTE: FieldRef.Source
    SOURCE_FEATURE: FieldRef.Source
    SOURCE_TAG: FieldRef.Source
    SOURCE_EVENT_PROPERTY: FieldRef.Source
    SOURCE_SCORE: FieldRef.Source
    SOURCE_CONTEXT: FieldRef.Source
    SOURCE_EVENT: FieldRef.Source
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    source: FieldRef.Source
    name: str
    def __init__(self, source: _Optional[_Union[FieldRef.Source, str]] = ..., name: _Optional[str] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("field", "operator", "value", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: FieldRef
    operator: Operator
    value: _types_pb2.Value
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    def __init__(self, field: _Optional[_Union[FieldRef, _Mapping]] = ..., operator: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ...) -> None: ...

class EventCount(_message.Message):
    __slots__ = ("event_type", "filter", "min_count", "max_count", "window_seconds")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    filter: Condition
    min_count: int
    max_count: int
    window_seconds: int
    def __init__(self, event_type: _Optional[str] = ..., filter: _Optional[_Union[Condition, _Mapping]] = ..., min_count: _Optional[int] = ..., max_count: _Optional[int] = ..., window_seconds: _Optional[int] = ...) -> None: ...

class EventAbsence(_message.Message):
    __slots__ = ("event_type", "filter", "window_seconds")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    filter: Condition
    window_seconds: int
    def __init__(self, event_type: _Optional[str] = ..., filter: _Optional[_Union[Condition, _Mapping]] = ..., window_seconds: _Optional[int] = ...) -> None: ...

class SegmentMembership(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class TagPresence(_message.Message):
    __slots__ = ("tag_name", "operator", "value")
    TAG_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    tag_name: str
    operator: Operator
    value: _types_pb2.Value
    def __init__(self, tag_name: _Optional[str] = ..., operator: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
