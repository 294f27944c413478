import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as _campaign_pb2
from svc_common.pb.qiming.common.v1 import types_pb2 as _types_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliverRequest(_message.Message):
    __slots__ = ("message_id", "idempotency_key", "channel", "recipient", "title", "body", "link", "template_id", "journey_id", "experiment_id", "variant", "is_marketing", "attempt", "created_at")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    IS_MARKETING_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    idempotency_key: str
    channel: _campaign_pb2.ChannelType
    recipient: _types_pb2.UserRef
    title: str
    body: str
    link: str
    template_id: str
    journey_id: str
    experiment_id: str
    variant: str
    is_marketing: bool
    attempt: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, message_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., channel: _Optional[_Union[_campaign_pb2.ChannelType, str]] = ..., recipient: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., link: _Optional[str] = ..., template_id: _Optional[str] = ..., journey_id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., variant: _Optional[str] = ..., is_marketing: _Optional[bool] = ..., attempt: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ("accepted", "provider_message_id", "reason")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    provider_message_id: str
    reason: str
    def __init__(self, accepted: _Optional[bool] = ..., provider_message_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
