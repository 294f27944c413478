import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from svc_common.pb.qiming.common.v1 import condition_pb2 as _condition_pb2
from svc_common.pb.qiming.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JourneyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOURNEY_STATE_UNSPECIFIED: _ClassVar[JourneyState]
    JOURNEY_STATE_DRAFT: _ClassVar[JourneyState]
    JOURNEY_STATE_PUBLISHED: _ClassVar[JourneyState]
    JOURNEY_STATE_RUNNING: _ClassVar[JourneyState]
    JOURNEY_STATE_PAUSED: _ClassVar[JourneyState]
    JOURNEY_STATE_STOPPED: _ClassVar[JourneyState]

class ChannelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_TYPE_UNSPECIFIED: _ClassVar[ChannelType]
    CHANNEL_TYPE_APP_PUSH: _ClassVar[ChannelType]
    CHANNEL_TYPE_IN_APP: _ClassVar[ChannelType]
    CHANNEL_TYPE_SMS: _ClassVar[ChannelType]
    CHANNEL_TYPE_WECOM: _ClassVar[ChannelType]
    CHANNEL_TYPE_EMAIL: _ClassVar[ChannelType]
    CHANNEL_TYPE_ADVISOR_CALL: _ClassVar[ChannelType]

class CapWindow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAP_WINDOW_UNSPECIFIED: _ClassVar[CapWindow]
    CAP_WINDOW_CALENDAR: _ClassVar[CapWindow]
    CAP_WINDOW_ROLLING: _ClassVar[CapWindow]

class MessageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATUS_UNSPECIFIED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_QUEUED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_DEFERRED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_SENT: _ClassVar[MessageStatus]
    MESSAGE_STATUS_DELIVERED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_FAILED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_SUPPRESSED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_CLICKED: _ClassVar[MessageStatus]

class AllocationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALLOCATION_MODE_UNSPECIFIED: _ClassVar[AllocationMode]
    ALLOCATION_MODE_FIXED: _ClassVar[AllocationMode]
    ALLOCATION_MODE_THOMPSON_SAMPLING: _ClassVar[AllocationMode]

class ExperimentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATE_UNSPECIFIED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_RUNNING: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_CONCLUDED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_STOPPED: _ClassVar[ExperimentState]

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_CTR: _ClassVar[Metric]
    METRIC_CONVERSION: _ClassVar[Metric]
    METRIC_VALUE: _ClassVar[Metric]
JOURNEY_STATE_UNSPECIFIED: JourneyState
JOURNEY_STATE_DRAFT: JourneyState
JOURNEY_STATE_PUBLISHED: JourneyState
JOURNEY_STATE_RUNNING: JourneyState
JOURNEY_STATE_PAUSED: JourneyState
JOURNEY_STATE_STOPPED: JourneyState
CHANNEL_TYPE_UNSPECIFIED: ChannelType
CHANNEL_TYPE_APP_PUSH: ChannelType
CHANNEL_TYPE_IN_APP: ChannelType
CHANNEL_TYPE_SMS: ChannelType
CHANNEL_TYPE_WECOM: ChannelType
CHANNEL_TYPE_EMAIL: ChannelType
CHANNEL_TYPE_ADVISOR_CALL: ChannelType
CAP_WINDOW_UNSPECIFIED: CapWindow
CAP_WINDOW_CALENDAR: CapWindow
CAP_WINDOW_ROLLING: CapWindow
MESSAGE_STATUS_UNSPECIFIED: MessageStatus
MESSAGE_STATUS_QUEUED: MessageStatus
MESSAGE_STATUS_DEFERRED: MessageStatus
MESSAGE_STATUS_SENT: MessageStatus
MESSAGE_STATUS_DELIVERED: MessageStatus
MESSAGE_STATUS_FAILED: MessageStatus
MESSAGE_STATUS_SUPPRESSED: MessageStatus
MESSAGE_STATUS_CLICKED: MessageStatus
ALLOCATION_MODE_UNSPECIFIED: AllocationMode
ALLOCATION_MODE_FIXED: AllocationMode
ALLOCATION_MODE_THOMPSON_SAMPLING: AllocationMode
EXPERIMENT_STATE_UNSPECIFIED: ExperimentState
EXPERIMENT_STATE_RUNNING: ExperimentState
EXPERIMENT_STATE_CONCLUDED: ExperimentState
EXPERIMENT_STATE_STOPPED: ExperimentState
METRIC_UNSPECIFIED: Metric
METRIC_CTR: Metric
METRIC_CONVERSION: Metric
METRIC_VALUE: Metric

class Journey(_message.Message):
    __slots__ = ("journey_id", "name", "description", "state", "draft", "draft_revision", "published_version", "published", "entry_rules", "priority", "purpose", "created_at", "updated_at", "start_at", "end_at")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    DRAFT_REVISION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    ENTRY_RULES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    END_AT_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    name: str
    description: str
    state: JourneyState
    draft: JourneyGraph
    draft_revision: int
    published_version: int
    published: JourneyGraph
    entry_rules: EntryRules
    priority: int
    purpose: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    start_at: _timestamp_pb2.Timestamp
    end_at: _timestamp_pb2.Timestamp
    def __init__(self, journey_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., state: _Optional[_Union[JourneyState, str]] = ..., draft: _Optional[_Union[JourneyGraph, _Mapping]] = ..., draft_revision: _Optional[int] = ..., published_version: _Optional[int] = ..., published: _Optional[_Union[JourneyGraph, _Mapping]] = ..., entry_rules: _Optional[_Union[EntryRules, _Mapping]] = ..., priority: _Optional[int] = ..., purpose: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EntryRules(_message.Message):
    __slots__ = ("allow_reentry", "reentry_cooldown_seconds", "max_entries", "max_entries_per_day", "audience_segment_id")
    ALLOW_REENTRY_FIELD_NUMBER: _ClassVar[int]
    REENTRY_COOLDOWN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    allow_reentry: bool
    reentry_cooldown_seconds: int
    max_entries: int
    max_entries_per_day: int
    audience_segment_id: str
    def __init__(self, allow_reentry: _Optional[bool] = ..., reentry_cooldown_seconds: _Optional[int] = ..., max_entries: _Optional[int] = ..., max_entries_per_day: _Optional[int] = ..., audience_segment_id: _Optional[str] = ...) -> None: ...

class JourneyGraph(_message.Message):
    __slots__ = ("nodes", "entry_node_id")
    NODES_FIELD_NUMBER: _ClassVar[int]
    ENTRY_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[JourneyNode]
    entry_node_id: str
    def __init__(self, nodes: _Optional[_Iterable[_Union[JourneyNode, _Mapping]]] = ..., entry_node_id: _Optional[str] = ...) -> None: ...

class JourneyNode(_message.Message):
    __slots__ = ("node_id", "label", "trigger", "wait", "branch", "split", "send", "goal", "exit")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SEND_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    label: str
    trigger: TriggerNode
    wait: WaitNode
    branch: BranchNode
    split: SplitNode
    send: SendNode
    goal: GoalNode
    exit: ExitNode
    def __init__(self, node_id: _Optional[str] = ..., label: _Optional[str] = ..., trigger: _Optional[_Union[TriggerNode, _Mapping]] = ..., wait: _Optional[_Union[WaitNode, _Mapping]] = ..., branch: _Optional[_Union[BranchNode, _Mapping]] = ..., split: _Optional[_Union[SplitNode, _Mapping]] = ..., send: _Optional[_Union[SendNode, _Mapping]] = ..., goal: _Optional[_Union[GoalNode, _Mapping]] = ..., exit: _Optional[_Union[ExitNode, _Mapping]] = ...) -> None: ...

class TriggerNode(_message.Message):
    __slots__ = ("trigger", "next_node_id")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    NEXT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    trigger: Trigger
    next_node_id: str
    def __init__(self, trigger: _Optional[_Union[Trigger, _Mapping]] = ..., next_node_id: _Optional[str] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("event", "repeated_event", "sequence", "absence", "dwell", "segment", "scheduled")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REPEATED_EVENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ABSENCE_FIELD_NUMBER: _ClassVar[int]
    DWELL_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    event: SingleEventTrigger
    repeated_event: RepeatedEventTrigger
    sequence: SequenceTrigger
    absence: AbsenceTrigger
    dwell: DwellTrigger
    segment: SegmentTrigger
    scheduled: ScheduledTrigger
    def __init__(self, event: _Optional[_Union[SingleEventTrigger, _Mapping]] = ..., repeated_event: _Optional[_Union[RepeatedEventTrigger, _Mapping]] = ..., sequence: _Optional[_Union[SequenceTrigger, _Mapping]] = ..., absence: _Optional[_Union[AbsenceTrigger, _Mapping]] = ..., dwell: _Optional[_Union[DwellTrigger, _Mapping]] = ..., segment: _Optional[_Union[SegmentTrigger, _Mapping]] = ..., scheduled: _Optional[_Union[ScheduledTrigger, _Mapping]] = ...) -> None: ...

class SingleEventTrigger(_message.Message):
    __slots__ = ("event_type", "filter")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    filter: _condition_pb2.Condition
    def __init__(self, event_type: _Optional[str] = ..., filter: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ...) -> None: ...

class RepeatedEventTrigger(_message.Message):
    __slots__ = ("event_type", "filter", "count", "window_seconds", "same_property")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SAME_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    filter: _condition_pb2.Condition
    count: int
    window_seconds: int
    same_property: str
    def __init__(self, event_type: _Optional[str] = ..., filter: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., count: _Optional[int] = ..., window_seconds: _Optional[int] = ..., same_property: _Optional[str] = ...) -> None: ...

class SequenceTrigger(_message.Message):
    __slots__ = ("steps", "within_seconds", "last_step_absent")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    WITHIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LAST_STEP_ABSENT_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[SingleEventTrigger]
    within_seconds: int
    last_step_absent: bool
    def __init__(self, steps: _Optional[_Iterable[_Union[SingleEventTrigger, _Mapping]]] = ..., within_seconds: _Optional[int] = ..., last_step_absent: _Optional[bool] = ...) -> None: ...

class AbsenceTrigger(_message.Message):
    __slots__ = ("start", "expected", "timeout_seconds", "correlate_property")
    START_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CORRELATE_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    start: SingleEventTrigger
    expected: SingleEventTrigger
    timeout_seconds: int
    correlate_property: str
    def __init__(self, start: _Optional[_Union[SingleEventTrigger, _Mapping]] = ..., expected: _Optional[_Union[SingleEventTrigger, _Mapping]] = ..., timeout_seconds: _Optional[int] = ..., correlate_property: _Optional[str] = ...) -> None: ...

class DwellTrigger(_message.Message):
    __slots__ = ("screen", "timeout_seconds", "dwell_event_type", "dwell_property", "dwell_threshold_millis")
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DWELL_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DWELL_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    DWELL_THRESHOLD_MILLIS_FIELD_NUMBER: _ClassVar[int]
    screen: str
    timeout_seconds: int
    dwell_event_type: str
    dwell_property: str
    dwell_threshold_millis: int
    def __init__(self, screen: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., dwell_event_type: _Optional[str] = ..., dwell_property: _Optional[str] = ..., dwell_threshold_millis: _Optional[int] = ...) -> None: ...

class SegmentTrigger(_message.Message):
    __slots__ = ("segment_id", "change")
    class Change(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHANGE_UNSPECIFIED: _ClassVar[SegmentTrigger.Change]
        CHANGE_ENTERED: _ClassVar[SegmentTrigger.Change]
        CHANGE_EXITED: _ClassVar[SegmentTrigger.Change]
    CHANGE_UNSPECIFIED: SegmentTrigger.Change
    CHANGE_ENTERED: SegmentTrigger.Change
    CHANGE_EXITED: SegmentTrigger.Change
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    change: SegmentTrigger.Change
    def __init__(self, segment_id: _Optional[str] = ..., change: _Optional[_Union[SegmentTrigger.Change, str]] = ...) -> None: ...

class ScheduledTrigger(_message.Message):
    __slots__ = ("segment_id", "run_at", "cron", "timezone")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    run_at: _timestamp_pb2.Timestamp
    cron: str
    timezone: str
    def __init__(self, segment_id: _Optional[str] = ..., run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class WaitNode(_message.Message):
    __slots__ = ("duration_seconds", "until_time_of_day", "until_event", "next_node_id", "timeout_node_id")
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIME_OF_DAY_FIELD_NUMBER: _ClassVar[int]
    UNTIL_EVENT_FIELD_NUMBER: _ClassVar[int]
    NEXT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    duration_seconds: int
    until_time_of_day: TimeOfDay
    until_event: WaitForEvent
    next_node_id: str
    timeout_node_id: str
    def __init__(self, duration_seconds: _Optional[int] = ..., until_time_of_day: _Optional[_Union[TimeOfDay, _Mapping]] = ..., until_event: _Optional[_Union[WaitForEvent, _Mapping]] = ..., next_node_id: _Optional[str] = ..., timeout_node_id: _Optional[str] = ...) -> None: ...

class TimeOfDay(_message.Message):
    __slots__ = ("hour", "minute", "timezone")
    HOUR_FIELD_NUMBER: _ClassVar[int]
    MINUTE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    hour: int
    minute: int
    timezone: str
    def __init__(self, hour: _Optional[int] = ..., minute: _Optional[int] = ..., timezone: _Optional[str] = ...) -> None: ...

class WaitForEvent(_message.Message):
    __slots__ = ("event", "timeout_seconds")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    event: SingleEventTrigger
    timeout_seconds: int
    def __init__(self, event: _Optional[_Union[SingleEventTrigger, _Mapping]] = ..., timeout_seconds: _Optional[int] = ...) -> None: ...

class BranchNode(_message.Message):
    __slots__ = ("arms", "default_node_id")
    ARMS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[BranchArm]
    default_node_id: str
    def __init__(self, arms: _Optional[_Iterable[_Union[BranchArm, _Mapping]]] = ..., default_node_id: _Optional[str] = ...) -> None: ...

class BranchArm(_message.Message):
    __slots__ = ("condition", "next_node_id")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    NEXT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    condition: _condition_pb2.Condition
    next_node_id: str
    def __init__(self, condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., next_node_id: _Optional[str] = ...) -> None: ...

class SplitNode(_message.Message):
    __slots__ = ("arms", "experiment_id")
    ARMS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[SplitArm]
    experiment_id: str
    def __init__(self, arms: _Optional[_Iterable[_Union[SplitArm, _Mapping]]] = ..., experiment_id: _Optional[str] = ...) -> None: ...

class SplitArm(_message.Message):
    __slots__ = ("variant", "weight_bps", "next_node_id")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    variant: str
    weight_bps: int
    next_node_id: str
    def __init__(self, variant: _Optional[str] = ..., weight_bps: _Optional[int] = ..., next_node_id: _Optional[str] = ...) -> None: ...

class SendNode(_message.Message):
    __slots__ = ("channel", "template_id", "fallback_channels", "next_node_id", "suppressed_node_id", "is_marketing")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    IS_MARKETING_FIELD_NUMBER: _ClassVar[int]
    channel: ChannelType
    template_id: str
    fallback_channels: _containers.RepeatedScalarFieldContainer[ChannelType]
    next_node_id: str
    suppressed_node_id: str
    is_marketing: bool
    def __init__(self, channel: _Optional[_Union[ChannelType, str]] = ..., template_id: _Optional[str] = ..., fallback_channels: _Optional[_Iterable[_Union[ChannelType, str]]] = ..., next_node_id: _Optional[str] = ..., suppressed_node_id: _Optional[str] = ..., is_marketing: _Optional[bool] = ...) -> None: ...

class GoalNode(_message.Message):
    __slots__ = ("event", "attribution_window_seconds")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    event: SingleEventTrigger
    attribution_window_seconds: int
    def __init__(self, event: _Optional[_Union[SingleEventTrigger, _Mapping]] = ..., attribution_window_seconds: _Optional[int] = ...) -> None: ...

class ExitNode(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class JourneyProblem(_message.Message):
    __slots__ = ("node_id", "code", "message")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    code: str
    message: str
    def __init__(self, node_id: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CreateJourneyRequest(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class CreateJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class UpdateJourneyDraftRequest(_message.Message):
    __slots__ = ("journey_id", "draft", "entry_rules", "expected_draft_revision")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_RULES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DRAFT_REVISION_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    draft: JourneyGraph
    entry_rules: EntryRules
    expected_draft_revision: int
    def __init__(self, journey_id: _Optional[str] = ..., draft: _Optional[_Union[JourneyGraph, _Mapping]] = ..., entry_rules: _Optional[_Union[EntryRules, _Mapping]] = ..., expected_draft_revision: _Optional[int] = ...) -> None: ...

class UpdateJourneyDraftResponse(_message.Message):
    __slots__ = ("journey", "problems")
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    problems: _containers.RepeatedCompositeFieldContainer[JourneyProblem]
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ..., problems: _Optional[_Iterable[_Union[JourneyProblem, _Mapping]]] = ...) -> None: ...

class ValidateJourneyRequest(_message.Message):
    __slots__ = ("graph", "purpose")
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    graph: JourneyGraph
    purpose: str
    def __init__(self, graph: _Optional[_Union[JourneyGraph, _Mapping]] = ..., purpose: _Optional[str] = ...) -> None: ...

class ValidateJourneyResponse(_message.Message):
    __slots__ = ("problems",)
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    problems: _containers.RepeatedCompositeFieldContainer[JourneyProblem]
    def __init__(self, problems: _Optional[_Iterable[_Union[JourneyProblem, _Mapping]]] = ...) -> None: ...

class PublishJourneyRequest(_message.Message):
    __slots__ = ("journey_id", "expected_draft_revision")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DRAFT_REVISION_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    expected_draft_revision: int
    def __init__(self, journey_id: _Optional[str] = ..., expected_draft_revision: _Optional[int] = ...) -> None: ...

class PublishJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class GetJourneyRequest(_message.Message):
    __slots__ = ("journey_id", "version")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    version: int
    def __init__(self, journey_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class ListJourneysRequest(_message.Message):
    __slots__ = ("states", "page")
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JourneyState]
    page: _types_pb2.PageRequest
    def __init__(self, states: _Optional[_Iterable[_Union[JourneyState, str]]] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListJourneysResponse(_message.Message):
    __slots__ = ("journeys", "next_page_token")
    JOURNEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    journeys: _containers.RepeatedCompositeFieldContainer[Journey]
    next_page_token: str
    def __init__(self, journeys: _Optional[_Iterable[_Union[Journey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StartJourneyRequest(_message.Message):
    __slots__ = ("journey_id",)
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    def __init__(self, journey_id: _Optional[str] = ...) -> None: ...

class StartJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class PauseJourneyRequest(_message.Message):
    __slots__ = ("journey_id",)
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    def __init__(self, journey_id: _Optional[str] = ...) -> None: ...

class PauseJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class StopJourneyRequest(_message.Message):
    __slots__ = ("journey_id", "reason")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    reason: str
    def __init__(self, journey_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StopJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: Journey
    def __init__(self, journey: _Optional[_Union[Journey, _Mapping]] = ...) -> None: ...

class GetJourneyReportRequest(_message.Message):
    __slots__ = ("journey_id", "time_range")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    time_range: _types_pb2.TimeRange
    def __init__(self, journey_id: _Optional[str] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class GetJourneyReportResponse(_message.Message):
    __slots__ = ("nodes", "entered", "converted", "in_progress")
    NODES_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeReport]
    entered: int
    converted: int
    in_progress: int
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeReport, _Mapping]]] = ..., entered: _Optional[int] = ..., converted: _Optional[int] = ..., in_progress: _Optional[int] = ...) -> None: ...

class NodeReport(_message.Message):
    __slots__ = ("node_id", "entered", "waiting", "sent", "delivered", "clicked", "converted", "exited", "suppressed_by_reason")
    class SuppressedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    entered: int
    waiting: int
    sent: int
    delivered: int
    clicked: int
    converted: int
    exited: int
    suppressed_by_reason: _containers.ScalarMap[str, int]
    def __init__(self, node_id: _Optional[str] = ..., entered: _Optional[int] = ..., waiting: _Optional[int] = ..., sent: _Optional[int] = ..., delivered: _Optional[int] = ..., clicked: _Optional[int] = ..., converted: _Optional[int] = ..., exited: _Optional[int] = ..., suppressed_by_reason: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetJourneyProgressRequest(_message.Message):
    __slots__ = ("journey_id", "user")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    user: _types_pb2.UserRef
    def __init__(self, journey_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ...) -> None: ...

class GetJourneyProgressResponse(_message.Message):
    __slots__ = ("current_node_id", "path", "next_action_at")
    CURRENT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    NEXT_ACTION_AT_FIELD_NUMBER: _ClassVar[int]
    current_node_id: str
    path: _containers.RepeatedCompositeFieldContainer[NodeVisit]
    next_action_at: _timestamp_pb2.Timestamp
    def __init__(self, current_node_id: _Optional[str] = ..., path: _Optional[_Iterable[_Union[NodeVisit, _Mapping]]] = ..., next_action_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListScheduledRunsRequest(_message.Message):
    __slots__ = ("journey_id", "limit")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    limit: int
    def __init__(self, journey_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListScheduledRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[ScheduledRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[ScheduledRun, _Mapping]]] = ...) -> None: ...

class ScheduledRun(_message.Message):
    __slots__ = ("run_id", "journey_id", "segment_id", "scheduled_for", "state", "members", "processed", "entered", "without_customer_id", "started_at", "finished_at", "last_error")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ScheduledRun.State]
        STATE_EXPORTING: _ClassVar[ScheduledRun.State]
        STATE_ENTERING: _ClassVar[ScheduledRun.State]
        STATE_DONE: _ClassVar[ScheduledRun.State]
        STATE_CANCELLED: _ClassVar[ScheduledRun.State]
    STATE_UNSPECIFIED: ScheduledRun.State
    STATE_EXPORTING: ScheduledRun.State
    STATE_ENTERING: ScheduledRun.State
    STATE_DONE: ScheduledRun.State
    STATE_CANCELLED: ScheduledRun.State
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    journey_id: str
    segment_id: str
    scheduled_for: _timestamp_pb2.Timestamp
    state: ScheduledRun.State
    members: int
    processed: int
    entered: int
    without_customer_id: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, run_id: _Optional[str] = ..., journey_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[ScheduledRun.State, str]] = ..., members: _Optional[int] = ..., processed: _Optional[int] = ..., entered: _Optional[int] = ..., without_customer_id: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class NodeVisit(_message.Message):
    __slots__ = ("node_id", "entered_at", "outcome")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    entered_at: _timestamp_pb2.Timestamp
    outcome: str
    def __init__(self, node_id: _Optional[str] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("template_id", "name", "channel", "title", "body", "link", "product", "risk_disclosure", "version", "created_at", "updated_at")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    RISK_DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    name: str
    channel: ChannelType
    title: str
    body: str
    link: str
    product: ProductRef
    risk_disclosure: str
    version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, template_id: _Optional[str] = ..., name: _Optional[str] = ..., channel: _Optional[_Union[ChannelType, str]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., link: _Optional[str] = ..., product: _Optional[_Union[ProductRef, _Mapping]] = ..., risk_disclosure: _Optional[str] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProductRef(_message.Message):
    __slots__ = ("product_id", "product_type", "risk_level")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_TYPE_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    product_type: str
    risk_level: int
    def __init__(self, product_id: _Optional[str] = ..., product_type: _Optional[str] = ..., risk_level: _Optional[int] = ...) -> None: ...

class ContentFinding(_message.Message):
    __slots__ = ("code", "field", "excerpt", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    field: str
    excerpt: str
    message: str
    def __init__(self, code: _Optional[str] = ..., field: _Optional[str] = ..., excerpt: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CreateTemplateRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class CreateTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class UpdateTemplateRequest(_message.Message):
    __slots__ = ("template", "expected_version")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    template: Template
    expected_version: int
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("template_id",)
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    def __init__(self, template_id: _Optional[str] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("channel", "page")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    channel: ChannelType
    page: _types_pb2.PageRequest
    def __init__(self, channel: _Optional[_Union[ChannelType, str]] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CheckContentRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class CheckContentResponse(_message.Message):
    __slots__ = ("compliant", "findings")
    COMPLIANT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    compliant: bool
    findings: _containers.RepeatedCompositeFieldContainer[ContentFinding]
    def __init__(self, compliant: _Optional[bool] = ..., findings: _Optional[_Iterable[_Union[ContentFinding, _Mapping]]] = ...) -> None: ...

class RenderTemplateRequest(_message.Message):
    __slots__ = ("template_id", "user", "event_properties")
    class EventPropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EVENT_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    user: _types_pb2.UserRef
    event_properties: _containers.MessageMap[str, _types_pb2.Value]
    def __init__(self, template_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., event_properties: _Optional[_Mapping[str, _types_pb2.Value]] = ...) -> None: ...

class RenderTemplateResponse(_message.Message):
    __slots__ = ("title", "body", "link")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    title: str
    body: str
    link: str
    def __init__(self, title: _Optional[str] = ..., body: _Optional[str] = ..., link: _Optional[str] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("user", "channel", "purpose", "granted", "source", "updated_at")
    USER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    channel: ChannelType
    purpose: str
    granted: bool
    source: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., channel: _Optional[_Union[ChannelType, str]] = ..., purpose: _Optional[str] = ..., granted: _Optional[bool] = ..., source: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetConsentRequest(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: Consent
    def __init__(self, consent: _Optional[_Union[Consent, _Mapping]] = ...) -> None: ...

class SetConsentResponse(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: Consent
    def __init__(self, consent: _Optional[_Union[Consent, _Mapping]] = ...) -> None: ...

class GetConsentRequest(_message.Message):
    __slots__ = ("user", "include_history")
    USER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    include_history: bool
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., include_history: _Optional[bool] = ...) -> None: ...

class GetConsentResponse(_message.Message):
    __slots__ = ("consents",)
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    consents: _containers.RepeatedCompositeFieldContainer[Consent]
    def __init__(self, consents: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ...) -> None: ...

class ContactPolicy(_message.Message):
    __slots__ = ("max_marketing_per_day", "max_marketing_per_week", "max_per_channel_per_day", "dedupe_window_seconds", "quiet_hours", "extra_prohibited_phrases", "version", "cap_window", "cap_timezone")
    MAX_MARKETING_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_MARKETING_PER_WEEK_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CHANNEL_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    DEDUPE_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PROHIBITED_PHRASES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CAP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CAP_TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    max_marketing_per_day: int
    max_marketing_per_week: int
    max_per_channel_per_day: int
    dedupe_window_seconds: int
    quiet_hours: _containers.RepeatedCompositeFieldContainer[QuietHours]
    extra_prohibited_phrases: _containers.RepeatedScalarFieldContainer[str]
    version: int
    cap_window: CapWindow
    cap_timezone: str
    def __init__(self, max_marketing_per_day: _Optional[int] = ..., max_marketing_per_week: _Optional[int] = ..., max_per_channel_per_day: _Optional[int] = ..., dedupe_window_seconds: _Optional[int] = ..., quiet_hours: _Optional[_Iterable[_Union[QuietHours, _Mapping]]] = ..., extra_prohibited_phrases: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., cap_window: _Optional[_Union[CapWindow, str]] = ..., cap_timezone: _Optional[str] = ...) -> None: ...

class QuietHours(_message.Message):
    __slots__ = ("channels", "start", "end")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[ChannelType]
    start: TimeOfDay
    end: TimeOfDay
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelType, str]]] = ..., start: _Optional[_Union[TimeOfDay, _Mapping]] = ..., end: _Optional[_Union[TimeOfDay, _Mapping]] = ...) -> None: ...

class GetContactPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetContactPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: ContactPolicy
    def __init__(self, policy: _Optional[_Union[ContactPolicy, _Mapping]] = ...) -> None: ...

class UpdateContactPolicyRequest(_message.Message):
    __slots__ = ("policy", "expected_version")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    policy: ContactPolicy
    expected_version: int
    def __init__(self, policy: _Optional[_Union[ContactPolicy, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateContactPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: ContactPolicy
    def __init__(self, policy: _Optional[_Union[ContactPolicy, _Mapping]] = ...) -> None: ...

class CheckContactRequest(_message.Message):
    __slots__ = ("user", "channel", "purpose", "template_id", "is_marketing")
    USER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    IS_MARKETING_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    channel: ChannelType
    purpose: str
    template_id: str
    is_marketing: bool
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., channel: _Optional[_Union[ChannelType, str]] = ..., purpose: _Optional[str] = ..., template_id: _Optional[str] = ..., is_marketing: _Optional[bool] = ...) -> None: ...

class CheckContactResponse(_message.Message):
    __slots__ = ("allowed", "suppression_reason", "allowed_at")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSION_REASON_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_AT_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    suppression_reason: str
    allowed_at: _timestamp_pb2.Timestamp
    def __init__(self, allowed: _Optional[bool] = ..., suppression_reason: _Optional[str] = ..., allowed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("message_id", "user", "channel", "template_id", "template_version", "journey_id", "node_id", "experiment_id", "variant", "status", "title", "body", "created_at", "scheduled_at", "sent_at", "delivered_at", "clicked_at", "attempts", "failure_reason", "suppression_reason", "idempotency_key", "is_marketing")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    CLICKED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSION_REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    IS_MARKETING_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    user: _types_pb2.UserRef
    channel: ChannelType
    template_id: str
    template_version: int
    journey_id: str
    node_id: str
    experiment_id: str
    variant: str
    status: MessageStatus
    title: str
    body: str
    created_at: _timestamp_pb2.Timestamp
    scheduled_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    delivered_at: _timestamp_pb2.Timestamp
    clicked_at: _timestamp_pb2.Timestamp
    attempts: int
    failure_reason: str
    suppression_reason: str
    idempotency_key: str
    is_marketing: bool
    def __init__(self, message_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., channel: _Optional[_Union[ChannelType, str]] = ..., template_id: _Optional[str] = ..., template_version: _Optional[int] = ..., journey_id: _Optional[str] = ..., node_id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., variant: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clicked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., failure_reason: _Optional[str] = ..., suppression_reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., is_marketing: _Optional[bool] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("user", "channel", "template_id", "event_properties", "purpose", "is_marketing", "idempotency_key")
    class EventPropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    USER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    IS_MARKETING_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    channel: ChannelType
    template_id: str
    event_properties: _containers.MessageMap[str, _types_pb2.Value]
    purpose: str
    is_marketing: bool
    idempotency_key: str
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., channel: _Optional[_Union[ChannelType, str]] = ..., template_id: _Optional[str] = ..., event_properties: _Optional[_Mapping[str, _types_pb2.Value]] = ..., purpose: _Optional[str] = ..., is_marketing: _Optional[bool] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: Message
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class GetMessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class GetMessageResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: Message
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class ReportDeliveryReceiptRequest(_message.Message):
    __slots__ = ("message_id", "status", "at", "failure_reason", "gateway_message_id")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    at: _timestamp_pb2.Timestamp
    failure_reason: str
    gateway_message_id: str
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., gateway_message_id: _Optional[str] = ...) -> None: ...

class ReportDeliveryReceiptResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: Message
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class ListContactHistoryRequest(_message.Message):
    __slots__ = ("user", "time_range", "channels", "journey_id", "page")
    USER_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    time_range: _types_pb2.TimeRange
    channels: _containers.RepeatedScalarFieldContainer[ChannelType]
    journey_id: str
    page: _types_pb2.PageRequest
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., channels: _Optional[_Iterable[_Union[ChannelType, str]]] = ..., journey_id: _Optional[str] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListContactHistoryResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListSuppressionsRequest(_message.Message):
    __slots__ = ("user", "journey_id", "time_range", "reasons", "page")
    USER_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    user: _types_pb2.UserRef
    journey_id: str
    time_range: _types_pb2.TimeRange
    reasons: _containers.RepeatedScalarFieldContainer[str]
    page: _types_pb2.PageRequest
    def __init__(self, user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., journey_id: _Optional[str] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., reasons: _Optional[_Iterable[str]] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListSuppressionsResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("experiment_id", "name", "variants", "goal_event_type", "goal_filter", "attribution_window_seconds", "allocation", "auto_promotion", "state", "winner_variant", "created_at", "concluded_at", "salt")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    GOAL_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    GOAL_FILTER_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WINNER_VARIANT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONCLUDED_AT_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    name: str
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    goal_event_type: str
    goal_filter: _condition_pb2.Condition
    attribution_window_seconds: int
    allocation: AllocationMode
    auto_promotion: AutoPromotion
    state: ExperimentState
    winner_variant: str
    created_at: _timestamp_pb2.Timestamp
    concluded_at: _timestamp_pb2.Timestamp
    salt: str
    def __init__(self, experiment_id: _Optional[str] = ..., name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., goal_event_type: _Optional[str] = ..., goal_filter: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., attribution_window_seconds: _Optional[int] = ..., allocation: _Optional[_Union[AllocationMode, str]] = ..., auto_promotion: _Optional[_Union[AutoPromotion, _Mapping]] = ..., state: _Optional[_Union[ExperimentState, str]] = ..., winner_variant: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., concluded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., salt: _Optional[str] = ...) -> None: ...

class Variant(_message.Message):
    __slots__ = ("key", "weight_bps", "is_control")
    KEY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BPS_FIELD_NUMBER: _ClassVar[int]
    IS_CONTROL_FIELD_NUMBER: _ClassVar[int]
    key: str
    weight_bps: int
    is_control: bool
    def __init__(self, key: _Optional[str] = ..., weight_bps: _Optional[int] = ..., is_control: _Optional[bool] = ...) -> None: ...

class AutoPromotion(_message.Message):
    __slots__ = ("enabled", "min_probability_best", "max_expected_loss", "min_sample_per_variant", "metric")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MIN_PROBABILITY_BEST_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPECTED_LOSS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_PER_VARIANT_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    min_probability_best: float
    max_expected_loss: float
    min_sample_per_variant: int
    metric: Metric
    def __init__(self, enabled: _Optional[bool] = ..., min_probability_best: _Optional[float] = ..., max_expected_loss: _Optional[float] = ..., min_sample_per_variant: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class CreateExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class GetExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _types_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments", "next_page_token")
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    next_page_token: str
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AssignVariantRequest(_message.Message):
    __slots__ = ("experiment_id", "user", "record_exposure")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    RECORD_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    user: _types_pb2.UserRef
    record_exposure: bool
    def __init__(self, experiment_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., record_exposure: _Optional[bool] = ...) -> None: ...

class AssignVariantResponse(_message.Message):
    __slots__ = ("variant",)
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    variant: str
    def __init__(self, variant: _Optional[str] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("experiment_id", "user", "kind", "at", "value_fen")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[RecordOutcomeRequest.Kind]
        KIND_EXPOSURE: _ClassVar[RecordOutcomeRequest.Kind]
        KIND_CLICK: _ClassVar[RecordOutcomeRequest.Kind]
        KIND_CONVERSION: _ClassVar[RecordOutcomeRequest.Kind]
    KIND_UNSPECIFIED: RecordOutcomeRequest.Kind
    KIND_EXPOSURE: RecordOutcomeRequest.Kind
    KIND_CLICK: RecordOutcomeRequest.Kind
    KIND_CONVERSION: RecordOutcomeRequest.Kind
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    user: _types_pb2.UserRef
    kind: RecordOutcomeRequest.Kind
    at: _timestamp_pb2.Timestamp
    value_fen: int
    def __init__(self, experiment_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ..., kind: _Optional[_Union[RecordOutcomeRequest.Kind, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value_fen: _Optional[int] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetExperimentResultsRequest(_message.Message):
    __slots__ = ("experiment_id", "metric")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    metric: Metric
    def __init__(self, experiment_id: _Optional[str] = ..., metric: _Optional[_Union[Metric, str]] = ...) -> None: ...

class GetExperimentResultsResponse(_message.Message):
    __slots__ = ("variants", "srm_p_value", "sample_ratio_mismatch", "leading_variant", "decision")
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SRM_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATIO_MISMATCH_FIELD_NUMBER: _ClassVar[int]
    LEADING_VARIANT_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    variants: _containers.RepeatedCompositeFieldContainer[VariantResult]
    srm_p_value: float
    sample_ratio_mismatch: bool
    leading_variant: str
    decision: str
    def __init__(self, variants: _Optional[_Iterable[_Union[VariantResult, _Mapping]]] = ..., srm_p_value: _Optional[float] = ..., sample_ratio_mismatch: _Optional[bool] = ..., leading_variant: _Optional[str] = ..., decision: _Optional[str] = ...) -> None: ...

class VariantResult(_message.Message):
    __slots__ = ("variant", "exposures", "conversions", "rate", "probability_best", "expected_loss", "lift", "lift_ci_low", "lift_ci_high", "p_value", "allocation_bps", "mean_value", "clicks")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_BEST_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LOSS_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    LIFT_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    LIFT_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_BPS_FIELD_NUMBER: _ClassVar[int]
    MEAN_VALUE_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    variant: str
    exposures: int
    conversions: int
    rate: float
    probability_best: float
    expected_loss: float
    lift: float
    lift_ci_low: float
    lift_ci_high: float
    p_value: float
    allocation_bps: int
    mean_value: float
    clicks: int
    def __init__(self, variant: _Optional[str] = ..., exposures: _Optional[int] = ..., conversions: _Optional[int] = ..., rate: _Optional[float] = ..., probability_best: _Optional[float] = ..., expected_loss: _Optional[float] = ..., lift: _Optional[float] = ..., lift_ci_low: _Optional[float] = ..., lift_ci_high: _Optional[float] = ..., p_value: _Optional[float] = ..., allocation_bps: _Optional[int] = ..., mean_value: _Optional[float] = ..., clicks: _Optional[int] = ...) -> None: ...

class ConcludeExperimentRequest(_message.Message):
    __slots__ = ("experiment_id", "winner_variant", "reason")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    WINNER_VARIANT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    winner_variant: str
    reason: str
    def __init__(self, experiment_id: _Optional[str] = ..., winner_variant: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConcludeExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ...) -> None: ...
