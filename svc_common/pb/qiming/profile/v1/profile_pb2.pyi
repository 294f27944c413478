import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from svc_common.pb.qiming.common.v1 import condition_pb2 as _condition_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2 as _errors_pb2
from svc_common.pb.qiming.common.v1 import job_pb2 as _job_pb2
from svc_common.pb.qiming.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LifecycleStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_STAGE_UNSPECIFIED: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_PROSPECT: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_NEW: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_ACTIVE: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_AT_RISK: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_CHURNED: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_REACTIVATED: _ClassVar[LifecycleStage]
LIFECYCLE_STAGE_UNSPECIFIED: LifecycleStage
LIFECYCLE_STAGE_PROSPECT: LifecycleStage
LIFECYCLE_STAGE_NEW: LifecycleStage
LIFECYCLE_STAGE_ACTIVE: LifecycleStage
LIFECYCLE_STAGE_AT_RISK: LifecycleStage
LIFECYCLE_STAGE_CHURNED: LifecycleStage
LIFECYCLE_STAGE_REACTIVATED: LifecycleStage

class Profile(_message.Message):
    __slots__ = ("profile_id", "identities", "attributes", "features", "tags", "lifecycle_stage", "first_seen_at", "last_seen_at", "created_at", "updated_at", "segment_ids", "masked_fields")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STAGE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    identities: _containers.RepeatedCompositeFieldContainer[LinkedIdentity]
    attributes: _containers.MessageMap[str, _types_pb2.Value]
    features: _containers.MessageMap[str, _types_pb2.Value]
    tags: _containers.RepeatedCompositeFieldContainer[TagValue]
    lifecycle_stage: LifecycleStage
    first_seen_at: _timestamp_pb2.Timestamp
    last_seen_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    masked_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, profile_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[LinkedIdentity, _Mapping]]] = ..., attributes: _Optional[_Mapping[str, _types_pb2.Value]] = ..., features: _Optional[_Mapping[str, _types_pb2.Value]] = ..., tags: _Optional[_Iterable[_Union[TagValue, _Mapping]]] = ..., lifecycle_stage: _Optional[_Union[LifecycleStage, str]] = ..., first_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., segment_ids: _Optional[_Iterable[str]] = ..., masked_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class LinkedIdentity(_message.Message):
    __slots__ = ("identity", "linked_by", "linked_at", "source_ref")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LINKED_BY_FIELD_NUMBER: _ClassVar[int]
    LINKED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REF_FIELD_NUMBER: _ClassVar[int]
    identity: _types_pb2.Identity
    linked_by: str
    linked_at: _timestamp_pb2.Timestamp
    source_ref: str
    def __init__(self, identity: _Optional[_Union[_types_pb2.Identity, _Mapping]] = ..., linked_by: _Optional[str] = ..., linked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_ref: _Optional[str] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("user", "parts")
    USER_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    parts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., parts: _Optional[_Iterable[str]] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class BatchGetProfilesRequest(_message.Message):
    __slots__ = ("users", "parts")
    USERS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[_types_pb2.UserRef]
    parts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, users: _Optional[_Iterable[_Union[_types_pb2.UserRef, _Mapping]]] = ..., parts: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetProfilesResponse(_message.Message):
    __slots__ = ("profiles", "not_found")
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    not_found: _containers.RepeatedCompositeFieldContainer[_types_pb2.UserRef]
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ..., not_found: _Optional[_Iterable[_Union[_types_pb2.UserRef, _Mapping]]] = ...) -> None: ...

class UpsertAttributesRequest(_message.Message):
    __slots__ = ("user", "attributes", "remove", "source_system")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    USER_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    attributes: _containers.MessageMap[str, _types_pb2.Value]
    remove: _containers.RepeatedScalarFieldContainer[str]
    source_system: str
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., attributes: _Optional[_Mapping[str, _types_pb2.Value]] = ..., remove: _Optional[_Iterable[str]] = ..., source_system: _Optional[str] = ...) -> None: ...

class UpsertAttributesResponse(_message.Message):
    __slots__ = ("profile", "created")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    created: bool
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ImportAttributesRequest(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UpsertAttributesRequest]
    def __init__(self, rows: _Optional[_Iterable[_Union[UpsertAttributesRequest, _Mapping]]] = ...) -> None: ...

class ImportAttributesResponse(_message.Message):
    __slots__ = ("rows_received", "profiles_created", "profiles_updated", "errors")
    ROWS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PROFILES_CREATED_FIELD_NUMBER: _ClassVar[int]
    PROFILES_UPDATED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    rows_received: int
    profiles_created: int
    profiles_updated: int
    errors: _containers.RepeatedCompositeFieldContainer[RowError]
    def __init__(self, rows_received: _Optional[int] = ..., profiles_created: _Optional[int] = ..., profiles_updated: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("row_index", "reason", "field", "message")
    ROW_INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    row_index: int
    reason: _errors_pb2.ErrorReason
    field: str
    message: str
    def __init__(self, row_index: _Optional[int] = ..., reason: _Optional[_Union[_errors_pb2.ErrorReason, str]] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class LinkIdentitiesRequest(_message.Message):
    __slots__ = ("user", "identity", "linked_by")
    USER_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LINKED_BY_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    identity: _types_pb2.Identity
    linked_by: str
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., identity: _Optional[_Union[_types_pb2.Identity, _Mapping]] = ..., linked_by: _Optional[str] = ...) -> None: ...

class LinkIdentitiesResponse(_message.Message):
    __slots__ = ("profile", "merged_profile_id")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MERGED_PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    merged_profile_id: str
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., merged_profile_id: _Optional[str] = ...) -> None: ...

class UnlinkIdentityRequest(_message.Message):
    __slots__ = ("identity",)
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    identity: _types_pb2.Identity
    def __init__(self, identity: _Optional[_Union[_types_pb2.Identity, _Mapping]] = ...) -> None: ...

class UnlinkIdentityResponse(_message.Message):
    __slots__ = ("profile_id",)
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    def __init__(self, profile_id: _Optional[str] = ...) -> None: ...

class ListIdentitiesRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ...) -> None: ...

class ListIdentitiesResponse(_message.Message):
    __slots__ = ("profile_id", "identities")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    identities: _containers.RepeatedCompositeFieldContainer[LinkedIdentity]
    def __init__(self, profile_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[LinkedIdentity, _Mapping]]] = ...) -> None: ...

class LifecycleTransition(_message.Message):
    __slots__ = ("from_stage", "to_stage", "transitioned_at", "rule")
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONED_AT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    from_stage: LifecycleStage
    to_stage: LifecycleStage
    transitioned_at: _timestamp_pb2.Timestamp
    rule: str
    def __init__(self, from_stage: _Optional[_Union[LifecycleStage, str]] = ..., to_stage: _Optional[_Union[LifecycleStage, str]] = ..., transitioned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rule: _Optional[str] = ...) -> None: ...

class ListLifecycleHistoryRequest(_message.Message):
    __slots__ = ("user", "page")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    page: _types_pb2.PageRequest
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListLifecycleHistoryResponse(_message.Message):
    __slots__ = ("transitions", "next_page_token")
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    transitions: _containers.RepeatedCompositeFieldContainer[LifecycleTransition]
    next_page_token: str
    def __init__(self, transitions: _Optional[_Iterable[_Union[LifecycleTransition, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteProfileRequest(_message.Message):
    __slots__ = ("user", "reason")
    USER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    reason: str
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteProfileResponse(_message.Message):
    __slots__ = ("profile_id",)
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    def __init__(self, profile_id: _Optional[str] = ...) -> None: ...

class TagDefinition(_message.Message):
    __slots__ = ("name", "display_name", "description", "version", "value_type", "condition", "bands", "external", "builtin", "archived", "created_at", "updated_at", "sensitivity")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    version: int
    value_type: _types_pb2.ValueType
    condition: _condition_pb2.Condition
    bands: TagBands
    external: ExternalTag
    builtin: BuiltinTag
    archived: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    sensitivity: _types_pb2.SensitivityLevel
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., version: _Optional[int] = ..., value_type: _Optional[_Union[_types_pb2.ValueType, str]] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., bands: _Optional[_Union[TagBands, _Mapping]] = ..., external: _Optional[_Union[ExternalTag, _Mapping]] = ..., builtin: _Optional[_Union[BuiltinTag, _Mapping]] = ..., archived: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sensitivity: _Optional[_Union[_types_pb2.SensitivityLevel, str]] = ...) -> None: ...

class TagBands(_message.Message):
    __slots__ = ("bands", "default_value")
    BANDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    bands: _containers.RepeatedCompositeFieldContainer[TagBand]
    default_value: _types_pb2.Value
    def __init__(self, bands: _Optional[_Iterable[_Union[TagBand, _Mapping]]] = ..., default_value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...

class TagBand(_message.Message):
    __slots__ = ("value", "condition")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    value: _types_pb2.Value
    condition: _condition_pb2.Condition
    def __init__(self, value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ...) -> None: ...

class ExternalTag(_message.Message):
    __slots__ = ("writer",)
    WRITER_FIELD_NUMBER: _ClassVar[int]
    writer: str
    def __init__(self, writer: _Optional[str] = ...) -> None: ...

class BuiltinTag(_message.Message):
    __slots__ = ("formula", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    formula: str
    parameters: _containers.MessageMap[str, _types_pb2.Value]
    def __init__(self, formula: _Optional[str] = ..., parameters: _Optional[_Mapping[str, _types_pb2.Value]] = ...) -> None: ...

class TagValue(_message.Message):
    __slots__ = ("name", "value", "provenance", "expires_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: _types_pb2.Value
    provenance: _types_pb2.Provenance
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., provenance: _Optional[_Union[_types_pb2.Provenance, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTagDefinitionRequest(_message.Message):
    __slots__ = ("definition",)
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    definition: TagDefinition
    def __init__(self, definition: _Optional[_Union[TagDefinition, _Mapping]] = ...) -> None: ...

class CreateTagDefinitionResponse(_message.Message):
    __slots__ = ("definition", "job")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    definition: TagDefinition
    job: _job_pb2.Job
    def __init__(self, definition: _Optional[_Union[TagDefinition, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class UpdateTagDefinitionRequest(_message.Message):
    __slots__ = ("definition", "expected_version")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    definition: TagDefinition
    expected_version: int
    def __init__(self, definition: _Optional[_Union[TagDefinition, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateTagDefinitionResponse(_message.Message):
    __slots__ = ("definition", "job")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    definition: TagDefinition
    job: _job_pb2.Job
    def __init__(self, definition: _Optional[_Union[TagDefinition, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetTagDefinitionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetTagDefinitionResponse(_message.Message):
    __slots__ = ("definition",)
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    definition: TagDefinition
    def __init__(self, definition: _Optional[_Union[TagDefinition, _Mapping]] = ...) -> None: ...

class ListTagDefinitionsRequest(_message.Message):
    __slots__ = ("page", "include_archived")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    page: _types_pb2.PageRequest
    include_archived: bool
    def __init__(self, page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ..., include_archived: _Optional[bool] = ...) -> None: ...

class ListTagDefinitionsResponse(_message.Message):
    __slots__ = ("definitions", "next_page_token")
    DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    definitions: _containers.RepeatedCompositeFieldContainer[TagDefinition]
    next_page_token: str
    def __init__(self, definitions: _Optional[_Iterable[_Union[TagDefinition, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ArchiveTagDefinitionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ArchiveTagDefinitionResponse(_message.Message):
    __slots__ = ("definition",)
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    definition: TagDefinition
    def __init__(self, definition: _Optional[_Union[TagDefinition, _Mapping]] = ...) -> None: ...

class TagWrite(_message.Message):
    __slots__ = ("user", "tag_name", "value", "expires_at")
    USER_FIELD_NUMBER: _ClassVar[int]
    TAG_NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    tag_name: str
    value: _types_pb2.Value
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., tag_name: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WriteTagsRequest(_message.Message):
    __slots__ = ("writes", "provenance")
    WRITES_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    writes: _containers.RepeatedCompositeFieldContainer[TagWrite]
    provenance: _types_pb2.Provenance
    def __init__(self, writes: _Optional[_Iterable[_Union[TagWrite, _Mapping]]] = ..., provenance: _Optional[_Union[_types_pb2.Provenance, _Mapping]] = ...) -> None: ...

class WriteTagsResponse(_message.Message):
    __slots__ = ("written_count", "errors")
    WRITTEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    written_count: int
    errors: _containers.RepeatedCompositeFieldContainer[RowError]
    def __init__(self, written_count: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ...) -> None: ...

class WriteTagsStreamRequest(_message.Message):
    __slots__ = ("writes", "provenance")
    WRITES_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    writes: _containers.RepeatedCompositeFieldContainer[TagWrite]
    provenance: _types_pb2.Provenance
    def __init__(self, writes: _Optional[_Iterable[_Union[TagWrite, _Mapping]]] = ..., provenance: _Optional[_Union[_types_pb2.Provenance, _Mapping]] = ...) -> None: ...

class WriteTagsStreamResponse(_message.Message):
    __slots__ = ("written_count", "errors")
    WRITTEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    written_count: int
    errors: _containers.RepeatedCompositeFieldContainer[RowError]
    def __init__(self, written_count: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ...) -> None: ...

class ListUserTagsRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ...) -> None: ...

class ListUserTagsResponse(_message.Message):
    __slots__ = ("tags",)
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedCompositeFieldContainer[TagValue]
    def __init__(self, tags: _Optional[_Iterable[_Union[TagValue, _Mapping]]] = ...) -> None: ...

class RecomputeTagRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RecomputeTagResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("segment_id", "display_name", "description", "version", "condition", "static_list", "size", "size_computed_at", "archived", "created_at", "updated_at")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    STATIC_LIST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    display_name: str
    description: str
    version: int
    condition: _condition_pb2.Condition
    static_list: StaticSegment
    size: int
    size_computed_at: _timestamp_pb2.Timestamp
    archived: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, segment_id: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., version: _Optional[int] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., static_list: _Optional[_Union[StaticSegment, _Mapping]] = ..., size: _Optional[int] = ..., size_computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archived: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StaticSegment(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: str
    def __init__(self, source: _Optional[str] = ...) -> None: ...

class CreateSegmentRequest(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class CreateSegmentResponse(_message.Message):
    __slots__ = ("segment", "job")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    job: _job_pb2.Job
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class UpdateSegmentRequest(_message.Message):
    __slots__ = ("segment", "expected_version")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    expected_version: int
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateSegmentResponse(_message.Message):
    __slots__ = ("segment", "job")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    job: _job_pb2.Job
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("page", "include_archived")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    page: _types_pb2.PageRequest
    include_archived: bool
    def __init__(self, page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ..., include_archived: _Optional[bool] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ArchiveSegmentRequest(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class ArchiveSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class SetStaticMembersRequest(_message.Message):
    __slots__ = ("segment_id", "users", "replace")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    users: _containers.RepeatedCompositeFieldContainer[_types_pb2.UserRef]
    replace: bool
    def __init__(self, segment_id: _Optional[str] = ..., users: _Optional[_Iterable[_Union[_types_pb2.UserRef, _Mapping]]] = ..., replace: _Optional[bool] = ...) -> None: ...

class SetStaticMembersResponse(_message.Message):
    __slots__ = ("member_count", "not_found")
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    member_count: int
    not_found: _containers.RepeatedCompositeFieldContainer[_types_pb2.UserRef]
    def __init__(self, member_count: _Optional[int] = ..., not_found: _Optional[_Iterable[_Union[_types_pb2.UserRef, _Mapping]]] = ...) -> None: ...

class RecomputeSegmentRequest(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class RecomputeSegmentResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class CheckMembershipRequest(_message.Message):
    __slots__ = ("segment_id", "user")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    user: _types_pb2.UserRef
    def __init__(self, segment_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ...) -> None: ...

class CheckMembershipResponse(_message.Message):
    __slots__ = ("member", "entered_at")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    member: bool
    entered_at: _timestamp_pb2.Timestamp
    def __init__(self, member: _Optional[bool] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSegmentSizeRequest(_message.Message):
    __slots__ = ("segment_id", "sample_size")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    sample_size: int
    def __init__(self, segment_id: _Optional[str] = ..., sample_size: _Optional[int] = ...) -> None: ...

class GetSegmentSizeResponse(_message.Message):
    __slots__ = ("size", "sample_profile_ids", "computed_at")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_PROFILE_IDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    size: int
    sample_profile_ids: _containers.RepeatedScalarFieldContainer[str]
    computed_at: _timestamp_pb2.Timestamp
    def __init__(self, size: _Optional[int] = ..., sample_profile_ids: _Optional[_Iterable[str]] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportMembersRequest(_message.Message):
    __slots__ = ("segment_id", "batch_size", "id_types", "after_profile_id")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    ID_TYPES_FIELD_NUMBER: _ClassVar[int]
    AFTER_PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    batch_size: int
    id_types: _containers.RepeatedScalarFieldContainer[_types_pb2.IdType]
    after_profile_id: str
    def __init__(self, segment_id: _Optional[str] = ..., batch_size: _Optional[int] = ..., id_types: _Optional[_Iterable[_Union[_types_pb2.IdType, str]]] = ..., after_profile_id: _Optional[str] = ...) -> None: ...

class ExportMembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[SegmentMember]
    def __init__(self, members: _Optional[_Iterable[_Union[SegmentMember, _Mapping]]] = ...) -> None: ...

class SegmentMember(_message.Message):
    __slots__ = ("profile_id", "identities", "entered_at")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    identities: _containers.RepeatedCompositeFieldContainer[_types_pb2.Identity]
    entered_at: _timestamp_pb2.Timestamp
    def __init__(self, profile_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_types_pb2.Identity, _Mapping]]] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FunnelStep(_message.Message):
    __slots__ = ("name", "event_type", "filter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    event_type: str
    filter: _condition_pb2.Condition
    def __init__(self, name: _Optional[str] = ..., event_type: _Optional[str] = ..., filter: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ...) -> None: ...

class ComputeFunnelRequest(_message.Message):
    __slots__ = ("steps", "conversion_window_seconds", "time_range", "split_by_tag", "split_by_segments", "segment_id")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    SPLIT_BY_TAG_FIELD_NUMBER: _ClassVar[int]
    SPLIT_BY_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    conversion_window_seconds: int
    time_range: _types_pb2.TimeRange
    split_by_tag: str
    split_by_segments: SegmentList
    segment_id: str
    def __init__(self, steps: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ..., conversion_window_seconds: _Optional[int] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., split_by_tag: _Optional[str] = ..., split_by_segments: _Optional[_Union[SegmentList, _Mapping]] = ..., segment_id: _Optional[str] = ...) -> None: ...

class SegmentList(_message.Message):
    __slots__ = ("segment_ids",)
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segment_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ComputeFunnelResponse(_message.Message):
    __slots__ = ("results", "retained_since", "range_truncated")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    RETAINED_SINCE_FIELD_NUMBER: _ClassVar[int]
    RANGE_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[FunnelResult]
    retained_since: _timestamp_pb2.Timestamp
    range_truncated: bool
    def __init__(self, results: _Optional[_Iterable[_Union[FunnelResult, _Mapping]]] = ..., retained_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., range_truncated: _Optional[bool] = ...) -> None: ...

class FunnelResult(_message.Message):
    __slots__ = ("split_value", "steps", "break_point_step", "group")
    class Group(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        GROUP_UNSPECIFIED: _ClassVar[FunnelResult.Group]
        GROUP_OVERALL: _ClassVar[FunnelResult.Group]
        GROUP_TAG_VALUE: _ClassVar[FunnelResult.Group]
        GROUP_NO_TAG_VALUE: _ClassVar[FunnelResult.Group]
        GROUP_SEGMENT: _ClassVar[FunnelResult.Group]
    GROUP_UNSPECIFIED: FunnelResult.Group
    GROUP_OVERALL: FunnelResult.Group
    GROUP_TAG_VALUE: FunnelResult.Group
    GROUP_NO_TAG_VALUE: FunnelResult.Group
    GROUP_SEGMENT: FunnelResult.Group
    SPLIT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BREAK_POINT_STEP_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    split_value: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStepResult]
    break_point_step: int
    group: FunnelResult.Group
    def __init__(self, split_value: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStepResult, _Mapping]]] = ..., break_point_step: _Optional[int] = ..., group: _Optional[_Union[FunnelResult.Group, str]] = ...) -> None: ...

class FunnelStepResult(_message.Message):
    __slots__ = ("name", "count", "conversion_from_start", "conversion_from_previous", "median_seconds_from_previous", "dropped_from_previous")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_START_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_SECONDS_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    conversion_from_start: float
    conversion_from_previous: float
    median_seconds_from_previous: float
    dropped_from_previous: int
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ..., conversion_from_start: _Optional[float] = ..., conversion_from_previous: _Optional[float] = ..., median_seconds_from_previous: _Optional[float] = ..., dropped_from_previous: _Optional[int] = ...) -> None: ...

class ComputePathsRequest(_message.Message):
    __slots__ = ("screen", "depth", "direction", "time_range", "top_n")
    class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DIRECTION_UNSPECIFIED: _ClassVar[ComputePathsRequest.Direction]
        DIRECTION_NEXT: _ClassVar[ComputePathsRequest.Direction]
        DIRECTION_PREVIOUS: _ClassVar[ComputePathsRequest.Direction]
    DIRECTION_UNSPECIFIED: ComputePathsRequest.Direction
    DIRECTION_NEXT: ComputePathsRequest.Direction
    DIRECTION_PREVIOUS: ComputePathsRequest.Direction
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    TOP_N_FIELD_NUMBER: _ClassVar[int]
    screen: str
    depth: int
    direction: ComputePathsRequest.Direction
    time_range: _types_pb2.TimeRange
    top_n: int
    def __init__(self, screen: _Optional[str] = ..., depth: _Optional[int] = ..., direction: _Optional[_Union[ComputePathsRequest.Direction, str]] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., top_n: _Optional[int] = ...) -> None: ...

class ComputePathsResponse(_message.Message):
    __slots__ = ("paths", "total_sessions", "retained_since", "range_truncated")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    RETAINED_SINCE_FIELD_NUMBER: _ClassVar[int]
    RANGE_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedCompositeFieldContainer[PathCount]
    total_sessions: int
    retained_since: _timestamp_pb2.Timestamp
    range_truncated: bool
    def __init__(self, paths: _Optional[_Iterable[_Union[PathCount, _Mapping]]] = ..., total_sessions: _Optional[int] = ..., retained_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., range_truncated: _Optional[bool] = ...) -> None: ...

class PathCount(_message.Message):
    __slots__ = ("screens", "sessions", "share")
    SCREENS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    screens: _containers.RepeatedScalarFieldContainer[str]
    sessions: int
    share: float
    def __init__(self, screens: _Optional[_Iterable[str]] = ..., sessions: _Optional[int] = ..., share: _Optional[float] = ...) -> None: ...

class ComputeLifecycleDistributionRequest(_message.Message):
    __slots__ = ("time_range", "segment_id")
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    time_range: _types_pb2.TimeRange
    segment_id: str
    def __init__(self, time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., segment_id: _Optional[str] = ...) -> None: ...

class ComputeLifecycleDistributionResponse(_message.Message):
    __slots__ = ("stages", "flows")
    STAGES_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedCompositeFieldContainer[StageCount]
    flows: _containers.RepeatedCompositeFieldContainer[StageFlow]
    def __init__(self, stages: _Optional[_Iterable[_Union[StageCount, _Mapping]]] = ..., flows: _Optional[_Iterable[_Union[StageFlow, _Mapping]]] = ...) -> None: ...

class StageCount(_message.Message):
    __slots__ = ("stage", "count")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    stage: LifecycleStage
    count: int
    def __init__(self, stage: _Optional[_Union[LifecycleStage, str]] = ..., count: _Optional[int] = ...) -> None: ...

class StageFlow(_message.Message):
    __slots__ = ("from_stage", "to_stage", "count")
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    from_stage: LifecycleStage
    to_stage: LifecycleStage
    count: int
    def __init__(self, from_stage: _Optional[_Union[LifecycleStage, str]] = ..., to_stage: _Optional[_Union[LifecycleStage, str]] = ..., count: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...
