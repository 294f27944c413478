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

class ColumnRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLUMN_ROLE_UNSPECIFIED: _ClassVar[ColumnRole]
    COLUMN_ROLE_FEATURE: _ClassVar[ColumnRole]
    COLUMN_ROLE_ID: _ClassVar[ColumnRole]
    COLUMN_ROLE_LABEL: _ClassVar[ColumnRole]
    COLUMN_ROLE_TREATMENT: _ClassVar[ColumnRole]
    COLUMN_ROLE_WEIGHT: _ClassVar[ColumnRole]
    COLUMN_ROLE_IGNORED: _ClassVar[ColumnRole]
    COLUMN_ROLE_SURVEY: _ClassVar[ColumnRole]

class FileFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_FORMAT_UNSPECIFIED: _ClassVar[FileFormat]
    FILE_FORMAT_CSV: _ClassVar[FileFormat]
    FILE_FORMAT_ARROW_IPC: _ClassVar[FileFormat]
    FILE_FORMAT_PARQUET: _ClassVar[FileFormat]

class ModelTask(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_TASK_UNSPECIFIED: _ClassVar[ModelTask]
    MODEL_TASK_PROPENSITY: _ClassVar[ModelTask]
    MODEL_TASK_REGRESSION: _ClassVar[ModelTask]
    MODEL_TASK_UPLIFT: _ClassVar[ModelTask]

class ModelStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STAGE_UNSPECIFIED: _ClassVar[ModelStage]
    MODEL_STAGE_CANDIDATE: _ClassVar[ModelStage]
    MODEL_STAGE_PRODUCTION: _ClassVar[ModelStage]
    MODEL_STAGE_ARCHIVED: _ClassVar[ModelStage]

class AiplStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AIPL_STAGE_UNSPECIFIED: _ClassVar[AiplStage]
    AIPL_STAGE_AWARENESS: _ClassVar[AiplStage]
    AIPL_STAGE_INTEREST: _ClassVar[AiplStage]
    AIPL_STAGE_PURCHASE: _ClassVar[AiplStage]
    AIPL_STAGE_LOYALTY: _ClassVar[AiplStage]
COLUMN_ROLE_UNSPECIFIED: ColumnRole
COLUMN_ROLE_FEATURE: ColumnRole
COLUMN_ROLE_ID: ColumnRole
COLUMN_ROLE_LABEL: ColumnRole
COLUMN_ROLE_TREATMENT: ColumnRole
COLUMN_ROLE_WEIGHT: ColumnRole
COLUMN_ROLE_IGNORED: ColumnRole
COLUMN_ROLE_SURVEY: ColumnRole
FILE_FORMAT_UNSPECIFIED: FileFormat
FILE_FORMAT_CSV: FileFormat
FILE_FORMAT_ARROW_IPC: FileFormat
FILE_FORMAT_PARQUET: FileFormat
MODEL_TASK_UNSPECIFIED: ModelTask
MODEL_TASK_PROPENSITY: ModelTask
MODEL_TASK_REGRESSION: ModelTask
MODEL_TASK_UPLIFT: ModelTask
MODEL_STAGE_UNSPECIFIED: ModelStage
MODEL_STAGE_CANDIDATE: ModelStage
MODEL_STAGE_PRODUCTION: ModelStage
MODEL_STAGE_ARCHIVED: ModelStage
AIPL_STAGE_UNSPECIFIED: AiplStage
AIPL_STAGE_AWARENESS: AiplStage
AIPL_STAGE_INTEREST: AiplStage
AIPL_STAGE_PURCHASE: AiplStage
AIPL_STAGE_LOYALTY: AiplStage

class Dataset(_message.Message):
    __slots__ = ("dataset_id", "name", "description", "columns", "row_count", "origin", "lineage", "customer_id_column", "created_at", "content_digest")
    class LineageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    name: str
    description: str
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    row_count: int
    origin: str
    lineage: _containers.ScalarMap[str, str]
    customer_id_column: str
    created_at: _timestamp_pb2.Timestamp
    content_digest: str
    def __init__(self, dataset_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., row_count: _Optional[int] = ..., origin: _Optional[str] = ..., lineage: _Optional[_Mapping[str, str]] = ..., customer_id_column: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_digest: _Optional[str] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "type", "role", "sensitivity", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: _types_pb2.ValueType
    role: ColumnRole
    sensitivity: _types_pb2.SensitivityLevel
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[_types_pb2.ValueType, str]] = ..., role: _Optional[_Union[ColumnRole, str]] = ..., sensitivity: _Optional[_Union[_types_pb2.SensitivityLevel, str]] = ..., description: _Optional[str] = ...) -> None: ...

class Row(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    def __init__(self, values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ...) -> None: ...

class ImportRowsRequest(_message.Message):
    __slots__ = ("dataset", "rows")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ...) -> None: ...

class ImportRowsResponse(_message.Message):
    __slots__ = ("dataset", "problems")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    problems: _containers.RepeatedCompositeFieldContainer[RowProblem]
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., problems: _Optional[_Iterable[_Union[RowProblem, _Mapping]]] = ...) -> None: ...

class RowProblem(_message.Message):
    __slots__ = ("row_index", "column", "reason", "message")
    ROW_INDEX_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    row_index: int
    column: str
    reason: _errors_pb2.ErrorReason
    message: str
    def __init__(self, row_index: _Optional[int] = ..., column: _Optional[str] = ..., reason: _Optional[_Union[_errors_pb2.ErrorReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class UploadFileRequest(_message.Message):
    __slots__ = ("dataset", "format", "chunk")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    format: FileFormat
    chunk: bytes
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., format: _Optional[_Union[FileFormat, str]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadFileResponse(_message.Message):
    __slots__ = ("dataset", "problems")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    problems: _containers.RepeatedCompositeFieldContainer[RowProblem]
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., problems: _Optional[_Iterable[_Union[RowProblem, _Mapping]]] = ...) -> None: ...

class LabelRule(_message.Message):
    __slots__ = ("name", "event_type", "filter", "horizon_seconds", "absent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    HORIZON_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ABSENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    event_type: str
    filter: _condition_pb2.Condition
    horizon_seconds: int
    absent: bool
    def __init__(self, name: _Optional[str] = ..., event_type: _Optional[str] = ..., filter: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., horizon_seconds: _Optional[int] = ..., absent: _Optional[bool] = ...) -> None: ...

class BuildFromProfilesRequest(_message.Message):
    __slots__ = ("name", "snapshot_at", "features", "label", "segment_id", "treatment_source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_AT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    snapshot_at: _timestamp_pb2.Timestamp
    features: _containers.RepeatedScalarFieldContainer[str]
    label: LabelRule
    segment_id: str
    treatment_source: str
    def __init__(self, name: _Optional[str] = ..., snapshot_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., features: _Optional[_Iterable[str]] = ..., label: _Optional[_Union[LabelRule, _Mapping]] = ..., segment_id: _Optional[str] = ..., treatment_source: _Optional[str] = ...) -> None: ...

class BuildFromProfilesResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class FuseSurveyRequest(_message.Message):
    __slots__ = ("name", "survey_dataset_id", "operations_dataset_id", "join")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SURVEY_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    JOIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    survey_dataset_id: str
    operations_dataset_id: str
    join: str
    def __init__(self, name: _Optional[str] = ..., survey_dataset_id: _Optional[str] = ..., operations_dataset_id: _Optional[str] = ..., join: _Optional[str] = ...) -> None: ...

class FuseSurveyResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _types_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PreviewDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "row_limit")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ROW_LIMIT_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    row_limit: int
    def __init__(self, dataset_id: _Optional[str] = ..., row_limit: _Optional[int] = ...) -> None: ...

class PreviewDatasetResponse(_message.Message):
    __slots__ = ("rows", "summaries", "masked_columns")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    MASKED_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    summaries: _containers.RepeatedCompositeFieldContainer[ColumnSummary]
    masked_columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., summaries: _Optional[_Iterable[_Union[ColumnSummary, _Mapping]]] = ..., masked_columns: _Optional[_Iterable[str]] = ...) -> None: ...

class ColumnSummary(_message.Message):
    __slots__ = ("column", "missing", "distinct", "mean", "stddev", "min", "max", "top_values")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    TOP_VALUES_FIELD_NUMBER: _ClassVar[int]
    column: str
    missing: int
    distinct: int
    mean: float
    stddev: float
    min: float
    max: float
    top_values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, column: _Optional[str] = ..., missing: _Optional[int] = ..., distinct: _Optional[int] = ..., mean: _Optional[float] = ..., stddev: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., top_values: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadRowsRequest(_message.Message):
    __slots__ = ("dataset_id", "batch_rows", "offset", "limit")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    batch_rows: int
    offset: int
    limit: int
    def __init__(self, dataset_id: _Optional[str] = ..., batch_rows: _Optional[int] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadRowsResponse(_message.Message):
    __slots__ = ("columns", "rows", "masked_columns")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    MASKED_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    masked_columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., masked_columns: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("model_name", "version", "task", "stage", "dataset_id", "label_column", "feature_columns", "algorithm", "hyperparameters", "metrics", "lineage", "created_at", "created_by", "feature_importance")
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LineageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    FEATURE_IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    task: ModelTask
    stage: ModelStage
    dataset_id: str
    label_column: str
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    algorithm: str
    hyperparameters: _containers.ScalarMap[str, str]
    metrics: ModelMetrics
    lineage: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    feature_importance: _containers.RepeatedCompositeFieldContainer[FeatureImportance]
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., task: _Optional[_Union[ModelTask, str]] = ..., stage: _Optional[_Union[ModelStage, str]] = ..., dataset_id: _Optional[str] = ..., label_column: _Optional[str] = ..., feature_columns: _Optional[_Iterable[str]] = ..., algorithm: _Optional[str] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Union[ModelMetrics, _Mapping]] = ..., lineage: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., feature_importance: _Optional[_Iterable[_Union[FeatureImportance, _Mapping]]] = ...) -> None: ...

class ModelMetrics(_message.Message):
    __slots__ = ("auc", "log_loss", "brier_score", "calibration_error", "lift_by_decile", "calibration", "train_rows", "test_rows", "base_rate", "qini", "auuc", "qini_random", "qini_baseline", "rmse", "r2")
    AUC_FIELD_NUMBER: _ClassVar[int]
    LOG_LOSS_FIELD_NUMBER: _ClassVar[int]
    BRIER_SCORE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    LIFT_BY_DECILE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    TEST_ROWS_FIELD_NUMBER: _ClassVar[int]
    BASE_RATE_FIELD_NUMBER: _ClassVar[int]
    QINI_FIELD_NUMBER: _ClassVar[int]
    AUUC_FIELD_NUMBER: _ClassVar[int]
    QINI_RANDOM_FIELD_NUMBER: _ClassVar[int]
    QINI_BASELINE_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    auc: float
    log_loss: float
    brier_score: float
    calibration_error: float
    lift_by_decile: _containers.RepeatedScalarFieldContainer[float]
    calibration: _containers.RepeatedCompositeFieldContainer[CalibrationBin]
    train_rows: int
    test_rows: int
    base_rate: float
    qini: Estimate
    auuc: Estimate
    qini_random: Estimate
    qini_baseline: Estimate
    rmse: float
    r2: float
    def __init__(self, auc: _Optional[float] = ..., log_loss: _Optional[float] = ..., brier_score: _Optional[float] = ..., calibration_error: _Optional[float] = ..., lift_by_decile: _Optional[_Iterable[float]] = ..., calibration: _Optional[_Iterable[_Union[CalibrationBin, _Mapping]]] = ..., train_rows: _Optional[int] = ..., test_rows: _Optional[int] = ..., base_rate: _Optional[float] = ..., qini: _Optional[_Union[Estimate, _Mapping]] = ..., auuc: _Optional[_Union[Estimate, _Mapping]] = ..., qini_random: _Optional[_Union[Estimate, _Mapping]] = ..., qini_baseline: _Optional[_Union[Estimate, _Mapping]] = ..., rmse: _Optional[float] = ..., r2: _Optional[float] = ...) -> None: ...

class CalibrationBin(_message.Message):
    __slots__ = ("predicted_mean", "observed_rate", "count")
    PREDICTED_MEAN_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_RATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    predicted_mean: float
    observed_rate: float
    count: int
    def __init__(self, predicted_mean: _Optional[float] = ..., observed_rate: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("value", "ci_low", "ci_high", "confidence", "std_error", "p_value")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    STD_ERROR_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    value: float
    ci_low: float
    ci_high: float
    confidence: float
    std_error: float
    p_value: float
    def __init__(self, value: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., confidence: _Optional[float] = ..., std_error: _Optional[float] = ..., p_value: _Optional[float] = ...) -> None: ...

class FeatureImportance(_message.Message):
    __slots__ = ("feature", "importance")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    importance: float
    def __init__(self, feature: _Optional[str] = ..., importance: _Optional[float] = ...) -> None: ...

class TrainModelRequest(_message.Message):
    __slots__ = ("model_name", "dataset_id", "label_column", "feature_columns", "task", "algorithm", "hyperparameters", "test_fraction", "random_seed")
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    dataset_id: str
    label_column: str
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    task: ModelTask
    algorithm: str
    hyperparameters: _containers.ScalarMap[str, str]
    test_fraction: float
    random_seed: int
    def __init__(self, model_name: _Optional[str] = ..., dataset_id: _Optional[str] = ..., label_column: _Optional[str] = ..., feature_columns: _Optional[_Iterable[str]] = ..., task: _Optional[_Union[ModelTask, str]] = ..., algorithm: _Optional[str] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., test_fraction: _Optional[float] = ..., random_seed: _Optional[int] = ...) -> None: ...

class TrainModelResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_name", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelVersion
    def __init__(self, model: _Optional[_Union[ModelVersion, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("model_name", "page")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    page: _types_pb2.PageRequest
    def __init__(self, model_name: _Optional[str] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetModelStageRequest(_message.Message):
    __slots__ = ("model_name", "version", "stage")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    stage: ModelStage
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., stage: _Optional[_Union[ModelStage, str]] = ...) -> None: ...

class SetModelStageResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelVersion
    def __init__(self, model: _Optional[_Union[ModelVersion, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_name", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, versions: _Optional[_Iterable[int]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "version", "columns", "rows")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("scores", "model_version")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    model_version: int
    def __init__(self, scores: _Optional[_Iterable[float]] = ..., model_version: _Optional[int] = ...) -> None: ...

class ScoreCustomersRequest(_message.Message):
    __slots__ = ("model_name", "version", "dataset_id", "segment_id", "tag_name")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    dataset_id: str
    segment_id: str
    tag_name: str
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., dataset_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., tag_name: _Optional[str] = ...) -> None: ...

class ScoreCustomersResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class EstimateDriversRequest(_message.Message):
    __slots__ = ("dataset_id", "outcome_column", "factors", "confounders", "method", "refute", "graph", "random_seed")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    CONFOUNDERS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REFUTE_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    outcome_column: str
    factors: _containers.RepeatedScalarFieldContainer[str]
    confounders: _containers.RepeatedScalarFieldContainer[str]
    method: str
    refute: bool
    graph: _containers.RepeatedCompositeFieldContainer[GraphEdge]
    random_seed: int
    def __init__(self, dataset_id: _Optional[str] = ..., outcome_column: _Optional[str] = ..., factors: _Optional[_Iterable[str]] = ..., confounders: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., refute: _Optional[bool] = ..., graph: _Optional[_Iterable[_Union[GraphEdge, _Mapping]]] = ..., random_seed: _Optional[int] = ...) -> None: ...

class EstimateDriversResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetDriverAnalysisRequest(_message.Message):
    __slots__ = ("analysis_id",)
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    def __init__(self, analysis_id: _Optional[str] = ...) -> None: ...

class GetDriverAnalysisResponse(_message.Message):
    __slots__ = ("analysis",)
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    analysis: DriverAnalysis
    def __init__(self, analysis: _Optional[_Union[DriverAnalysis, _Mapping]] = ...) -> None: ...

class DeleteDriverAnalysisRequest(_message.Message):
    __slots__ = ("analysis_id",)
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    def __init__(self, analysis_id: _Optional[str] = ...) -> None: ...

class DeleteDriverAnalysisResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DriverAnalysis(_message.Message):
    __slots__ = ("analysis_id", "dataset_id", "outcome_column", "method", "drivers", "graph", "created_at", "left_out")
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    dataset_id: str
    outcome_column: str
    method: str
    drivers: _containers.RepeatedCompositeFieldContainer[Driver]
    graph: _containers.RepeatedCompositeFieldContainer[GraphEdge]
    created_at: _timestamp_pb2.Timestamp
    left_out: _containers.RepeatedCompositeFieldContainer[LeftOutColumn]
    def __init__(self, analysis_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., outcome_column: _Optional[str] = ..., method: _Optional[str] = ..., drivers: _Optional[_Iterable[_Union[Driver, _Mapping]]] = ..., graph: _Optional[_Iterable[_Union[GraphEdge, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., left_out: _Optional[_Iterable[_Union[LeftOutColumn, _Mapping]]] = ...) -> None: ...

class LeftOutColumn(_message.Message):
    __slots__ = ("column", "reason")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    column: str
    reason: str
    def __init__(self, column: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Driver(_message.Message):
    __slots__ = ("factor", "effect", "importance", "refutations", "nonlinear")
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    REFUTATIONS_FIELD_NUMBER: _ClassVar[int]
    NONLINEAR_FIELD_NUMBER: _ClassVar[int]
    factor: str
    effect: Estimate
    importance: float
    refutations: _containers.RepeatedCompositeFieldContainer[Refutation]
    nonlinear: bool
    def __init__(self, factor: _Optional[str] = ..., effect: _Optional[_Union[Estimate, _Mapping]] = ..., importance: _Optional[float] = ..., refutations: _Optional[_Iterable[_Union[Refutation, _Mapping]]] = ..., nonlinear: _Optional[bool] = ...) -> None: ...

class Refutation(_message.Message):
    __slots__ = ("method", "original_effect", "refuted_effect", "p_value", "passed")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_EFFECT_FIELD_NUMBER: _ClassVar[int]
    REFUTED_EFFECT_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    method: str
    original_effect: float
    refuted_effect: float
    p_value: float
    passed: bool
    def __init__(self, method: _Optional[str] = ..., original_effect: _Optional[float] = ..., refuted_effect: _Optional[float] = ..., p_value: _Optional[float] = ..., passed: _Optional[bool] = ...) -> None: ...

class GraphEdge(_message.Message):
    __slots__ = ("cause", "effect")
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    cause: str
    effect: str
    def __init__(self, cause: _Optional[str] = ..., effect: _Optional[str] = ...) -> None: ...

class Population(_message.Message):
    __slots__ = ("everyone", "segment_id", "user")
    EVERYONE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    everyone: bool
    segment_id: str
    user: _types_pb2.UserRef
    def __init__(self, everyone: _Optional[bool] = ..., segment_id: _Optional[str] = ..., user: _Optional[_Union[_types_pb2.UserRef, _Mapping]] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("analysis_id", "factor", "set_to", "shift_by", "scale_by", "population")
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    SET_TO_FIELD_NUMBER: _ClassVar[int]
    SHIFT_BY_FIELD_NUMBER: _ClassVar[int]
    SCALE_BY_FIELD_NUMBER: _ClassVar[int]
    POPULATION_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    factor: str
    set_to: float
    shift_by: float
    scale_by: float
    population: Population
    def __init__(self, analysis_id: _Optional[str] = ..., factor: _Optional[str] = ..., set_to: _Optional[float] = ..., shift_by: _Optional[float] = ..., scale_by: _Optional[float] = ..., population: _Optional[_Union[Population, _Mapping]] = ...) -> None: ...

class WhatIfResponse(_message.Message):
    __slots__ = ("outcome_change", "current_outcome", "predicted_outcome", "population_size")
    OUTCOME_CHANGE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    outcome_change: Estimate
    current_outcome: float
    predicted_outcome: float
    population_size: int
    def __init__(self, outcome_change: _Optional[_Union[Estimate, _Mapping]] = ..., current_outcome: _Optional[float] = ..., predicted_outcome: _Optional[float] = ..., population_size: _Optional[int] = ...) -> None: ...

class ResponseCurveRequest(_message.Message):
    __slots__ = ("analysis_id", "factor", "points")
    ANALYSIS_ID_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    analysis_id: str
    factor: str
    points: int
    def __init__(self, analysis_id: _Optional[str] = ..., factor: _Optional[str] = ..., points: _Optional[int] = ...) -> None: ...

class ResponseCurveResponse(_message.Message):
    __slots__ = ("points", "threshold", "has_threshold")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HAS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    threshold: float
    has_threshold: bool
    def __init__(self, points: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., threshold: _Optional[float] = ..., has_threshold: _Optional[bool] = ...) -> None: ...

class EstimateAverageEffectsRequest(_message.Message):
    __slots__ = ("dataset_id", "treatment_column", "control_value", "outcome_columns", "method", "covariates", "confidence", "random_seed")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_COLUMN_FIELD_NUMBER: _ClassVar[int]
    CONTROL_VALUE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    COVARIATES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    treatment_column: str
    control_value: str
    outcome_columns: _containers.RepeatedScalarFieldContainer[str]
    method: str
    covariates: _containers.RepeatedScalarFieldContainer[str]
    confidence: float
    random_seed: int
    def __init__(self, dataset_id: _Optional[str] = ..., treatment_column: _Optional[str] = ..., control_value: _Optional[str] = ..., outcome_columns: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., covariates: _Optional[_Iterable[str]] = ..., confidence: _Optional[float] = ..., random_seed: _Optional[int] = ...) -> None: ...

class EstimateAverageEffectsResponse(_message.Message):
    __slots__ = ("effects", "method")
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    effects: _containers.RepeatedCompositeFieldContainer[ArmEffect]
    method: str
    def __init__(self, effects: _Optional[_Iterable[_Union[ArmEffect, _Mapping]]] = ..., method: _Optional[str] = ...) -> None: ...

class ArmEffect(_message.Message):
    __slots__ = ("arm", "outcome", "arm_rows", "control_rows", "arm_mean", "control_mean", "effect")
    ARM_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ARM_ROWS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_ROWS_FIELD_NUMBER: _ClassVar[int]
    ARM_MEAN_FIELD_NUMBER: _ClassVar[int]
    CONTROL_MEAN_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    arm: str
    outcome: str
    arm_rows: int
    control_rows: int
    arm_mean: float
    control_mean: float
    effect: Estimate
    def __init__(self, arm: _Optional[str] = ..., outcome: _Optional[str] = ..., arm_rows: _Optional[int] = ..., control_rows: _Optional[int] = ..., arm_mean: _Optional[float] = ..., control_mean: _Optional[float] = ..., effect: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("factor_value", "outcome")
    FACTOR_VALUE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    factor_value: float
    outcome: Estimate
    def __init__(self, factor_value: _Optional[float] = ..., outcome: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...

class Intervention(_message.Message):
    __slots__ = ("name", "cost_fen")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COST_FEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    cost_fen: int
    def __init__(self, name: _Optional[str] = ..., cost_fen: _Optional[int] = ...) -> None: ...

class TrainUpliftRequest(_message.Message):
    __slots__ = ("model_name", "dataset_id", "outcome_column", "treatment_column", "control_value", "interventions", "feature_columns", "learner", "test_fraction", "random_seed", "bootstrap_rounds")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_COLUMN_FIELD_NUMBER: _ClassVar[int]
    CONTROL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INTERVENTIONS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LEARNER_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    dataset_id: str
    outcome_column: str
    treatment_column: str
    control_value: str
    interventions: _containers.RepeatedCompositeFieldContainer[Intervention]
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    learner: str
    test_fraction: float
    random_seed: int
    bootstrap_rounds: int
    def __init__(self, model_name: _Optional[str] = ..., dataset_id: _Optional[str] = ..., outcome_column: _Optional[str] = ..., treatment_column: _Optional[str] = ..., control_value: _Optional[str] = ..., interventions: _Optional[_Iterable[_Union[Intervention, _Mapping]]] = ..., feature_columns: _Optional[_Iterable[str]] = ..., learner: _Optional[str] = ..., test_fraction: _Optional[float] = ..., random_seed: _Optional[int] = ..., bootstrap_rounds: _Optional[int] = ...) -> None: ...

class TrainUpliftResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetUpliftModelRequest(_message.Message):
    __slots__ = ("model_name", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetUpliftModelResponse(_message.Message):
    __slots__ = ("model", "interventions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INTERVENTIONS_FIELD_NUMBER: _ClassVar[int]
    model: ModelVersion
    interventions: _containers.RepeatedCompositeFieldContainer[InterventionSummary]
    def __init__(self, model: _Optional[_Union[ModelVersion, _Mapping]] = ..., interventions: _Optional[_Iterable[_Union[InterventionSummary, _Mapping]]] = ...) -> None: ...

class InterventionSummary(_message.Message):
    __slots__ = ("intervention", "average_effect", "qini", "auuc", "qini_random", "qini_baseline", "baseline_learner", "cost_fen")
    INTERVENTION_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_EFFECT_FIELD_NUMBER: _ClassVar[int]
    QINI_FIELD_NUMBER: _ClassVar[int]
    AUUC_FIELD_NUMBER: _ClassVar[int]
    QINI_RANDOM_FIELD_NUMBER: _ClassVar[int]
    QINI_BASELINE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_LEARNER_FIELD_NUMBER: _ClassVar[int]
    COST_FEN_FIELD_NUMBER: _ClassVar[int]
    intervention: str
    average_effect: Estimate
    qini: Estimate
    auuc: Estimate
    qini_random: Estimate
    qini_baseline: Estimate
    baseline_learner: str
    cost_fen: int
    def __init__(self, intervention: _Optional[str] = ..., average_effect: _Optional[_Union[Estimate, _Mapping]] = ..., qini: _Optional[_Union[Estimate, _Mapping]] = ..., auuc: _Optional[_Union[Estimate, _Mapping]] = ..., qini_random: _Optional[_Union[Estimate, _Mapping]] = ..., qini_baseline: _Optional[_Union[Estimate, _Mapping]] = ..., baseline_learner: _Optional[str] = ..., cost_fen: _Optional[int] = ...) -> None: ...

class PredictUpliftRequest(_message.Message):
    __slots__ = ("model_name", "version", "columns", "rows")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ...) -> None: ...

class PredictUpliftResponse(_message.Message):
    __slots__ = ("uplifts",)
    UPLIFTS_FIELD_NUMBER: _ClassVar[int]
    uplifts: _containers.RepeatedCompositeFieldContainer[CustomerUplift]
    def __init__(self, uplifts: _Optional[_Iterable[_Union[CustomerUplift, _Mapping]]] = ...) -> None: ...

class CustomerUplift(_message.Message):
    __slots__ = ("key", "effects", "best_intervention")
    class EffectsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    BEST_INTERVENTION_FIELD_NUMBER: _ClassVar[int]
    key: str
    effects: _containers.ScalarMap[str, float]
    best_intervention: str
    def __init__(self, key: _Optional[str] = ..., effects: _Optional[_Mapping[str, float]] = ..., best_intervention: _Optional[str] = ...) -> None: ...

class PlanInterventionsRequest(_message.Message):
    __slots__ = ("model_name", "version", "dataset_id", "segment_id", "budget_fen", "export_segment_prefix")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FEN_FIELD_NUMBER: _ClassVar[int]
    EXPORT_SEGMENT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    dataset_id: str
    segment_id: str
    budget_fen: int
    export_segment_prefix: str
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., dataset_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., budget_fen: _Optional[int] = ..., export_segment_prefix: _Optional[str] = ...) -> None: ...

class PlanInterventionsResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class AiplStageRule(_message.Message):
    __slots__ = ("stage", "condition")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    stage: AiplStage
    condition: _condition_pb2.Condition
    def __init__(self, stage: _Optional[_Union[AiplStage, str]] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ...) -> None: ...

class ComputeAiplFunnelRequest(_message.Message):
    __slots__ = ("rules", "time_range", "segment_id", "driver_dataset_id", "driver_cutoff")
    RULES_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[AiplStageRule]
    time_range: _types_pb2.TimeRange
    segment_id: str
    driver_dataset_id: str
    driver_cutoff: _timestamp_pb2.Timestamp
    def __init__(self, rules: _Optional[_Iterable[_Union[AiplStageRule, _Mapping]]] = ..., time_range: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ..., segment_id: _Optional[str] = ..., driver_dataset_id: _Optional[str] = ..., driver_cutoff: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ComputeAiplFunnelResponse(_message.Message):
    __slots__ = ("stages", "transitions", "break_point_from", "driver_cutoff")
    STAGES_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    BREAK_POINT_FROM_FIELD_NUMBER: _ClassVar[int]
    DRIVER_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedCompositeFieldContainer[AiplStageCount]
    transitions: _containers.RepeatedCompositeFieldContainer[AiplTransition]
    break_point_from: AiplStage
    driver_cutoff: _timestamp_pb2.Timestamp
    def __init__(self, stages: _Optional[_Iterable[_Union[AiplStageCount, _Mapping]]] = ..., transitions: _Optional[_Iterable[_Union[AiplTransition, _Mapping]]] = ..., break_point_from: _Optional[_Union[AiplStage, str]] = ..., driver_cutoff: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AiplStageCount(_message.Message):
    __slots__ = ("stage", "customers")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    stage: AiplStage
    customers: int
    def __init__(self, stage: _Optional[_Union[AiplStage, str]] = ..., customers: _Optional[int] = ...) -> None: ...

class AiplTransition(_message.Message):
    __slots__ = ("from_stage", "to_stage", "conversion", "drivers", "at_cutoff", "converted_after_cutoff", "drivers_note")
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    AT_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_AFTER_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_NOTE_FIELD_NUMBER: _ClassVar[int]
    from_stage: AiplStage
    to_stage: AiplStage
    conversion: float
    drivers: _containers.RepeatedCompositeFieldContainer[Driver]
    at_cutoff: int
    converted_after_cutoff: int
    drivers_note: str
    def __init__(self, from_stage: _Optional[_Union[AiplStage, str]] = ..., to_stage: _Optional[_Union[AiplStage, str]] = ..., conversion: _Optional[float] = ..., drivers: _Optional[_Iterable[_Union[Driver, _Mapping]]] = ..., at_cutoff: _Optional[int] = ..., converted_after_cutoff: _Optional[int] = ..., drivers_note: _Optional[str] = ...) -> None: ...

class ReviewSchedule(_message.Message):
    __slots__ = ("schedule_id", "model_names", "analysis_ids", "cron", "timezone", "retrain_psi_threshold", "refresh_dataset_ids", "next_run_at")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_IDS_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    RETRAIN_PSI_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REFRESH_DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    model_names: _containers.RepeatedScalarFieldContainer[str]
    analysis_ids: _containers.RepeatedScalarFieldContainer[str]
    cron: str
    timezone: str
    retrain_psi_threshold: float
    refresh_dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    next_run_at: _timestamp_pb2.Timestamp
    def __init__(self, schedule_id: _Optional[str] = ..., model_names: _Optional[_Iterable[str]] = ..., analysis_ids: _Optional[_Iterable[str]] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., retrain_psi_threshold: _Optional[float] = ..., refresh_dataset_ids: _Optional[_Iterable[str]] = ..., next_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateReviewScheduleRequest(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: ReviewSchedule
    def __init__(self, schedule: _Optional[_Union[ReviewSchedule, _Mapping]] = ...) -> None: ...

class CreateReviewScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: ReviewSchedule
    def __init__(self, schedule: _Optional[_Union[ReviewSchedule, _Mapping]] = ...) -> None: ...

class ListReviewSchedulesRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _types_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListReviewSchedulesResponse(_message.Message):
    __slots__ = ("schedules", "next_page_token")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[ReviewSchedule]
    next_page_token: str
    def __init__(self, schedules: _Optional[_Iterable[_Union[ReviewSchedule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteReviewScheduleRequest(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    def __init__(self, schedule_id: _Optional[str] = ...) -> None: ...

class DeleteReviewScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunReviewRequest(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    def __init__(self, schedule_id: _Optional[str] = ...) -> None: ...

class RunReviewResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetReviewReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class GetReviewReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: ReviewReport
    def __init__(self, report: _Optional[_Union[ReviewReport, _Mapping]] = ...) -> None: ...

class ListReviewReportsRequest(_message.Message):
    __slots__ = ("schedule_id", "page")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    page: _types_pb2.PageRequest
    def __init__(self, schedule_id: _Optional[str] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListReviewReportsResponse(_message.Message):
    __slots__ = ("reports", "next_page_token")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[ReviewReport]
    next_page_token: str
    def __init__(self, reports: _Optional[_Iterable[_Union[ReviewReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReviewReport(_message.Message):
    __slots__ = ("report_id", "schedule_id", "created_at", "stability", "model_changes", "driver_changes", "summary")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_CHANGES_FIELD_NUMBER: _ClassVar[int]
    DRIVER_CHANGES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    schedule_id: str
    created_at: _timestamp_pb2.Timestamp
    stability: _containers.RepeatedCompositeFieldContainer[StabilityResult]
    model_changes: _containers.RepeatedCompositeFieldContainer[ModelChange]
    driver_changes: _containers.RepeatedCompositeFieldContainer[DriverChange]
    summary: str
    def __init__(self, report_id: _Optional[str] = ..., schedule_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stability: _Optional[_Iterable[_Union[StabilityResult, _Mapping]]] = ..., model_changes: _Optional[_Iterable[_Union[ModelChange, _Mapping]]] = ..., driver_changes: _Optional[_Iterable[_Union[DriverChange, _Mapping]]] = ..., summary: _Optional[str] = ...) -> None: ...

class StabilityResult(_message.Message):
    __slots__ = ("name", "psi", "shifted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    SHIFTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    psi: float
    shifted: bool
    def __init__(self, name: _Optional[str] = ..., psi: _Optional[float] = ..., shifted: _Optional[bool] = ...) -> None: ...

class ModelChange(_message.Message):
    __slots__ = ("model_name", "old_version", "new_version", "old_auc", "new_auc")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    OLD_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    OLD_AUC_FIELD_NUMBER: _ClassVar[int]
    NEW_AUC_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    old_version: int
    new_version: int
    old_auc: float
    new_auc: float
    def __init__(self, model_name: _Optional[str] = ..., old_version: _Optional[int] = ..., new_version: _Optional[int] = ..., old_auc: _Optional[float] = ..., new_auc: _Optional[float] = ...) -> None: ...

class DriverChange(_message.Message):
    __slots__ = ("factor", "old_effect", "new_effect")
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    OLD_EFFECT_FIELD_NUMBER: _ClassVar[int]
    NEW_EFFECT_FIELD_NUMBER: _ClassVar[int]
    factor: str
    old_effect: Estimate
    new_effect: Estimate
    def __init__(self, factor: _Optional[str] = ..., old_effect: _Optional[_Union[Estimate, _Mapping]] = ..., new_effect: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...

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

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "kind", "page")
    STATES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_job_pb2.JobState]
    kind: str
    page: _types_pb2.PageRequest
    def __init__(self, states: _Optional[_Iterable[_Union[_job_pb2.JobState, str]]] = ..., kind: _Optional[str] = ..., page: _Optional[_Union[_types_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...
