"""Settings of svc_modeling: environment ``QIMING_MODELING_*`` or TOML table ``[modeling]``."""

from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from svc_common.config import ServiceSettings
from svc_common.protection import DEFAULT_SENSITIVE_ATTRIBUTES, DEFAULT_SENSITIVE_PROPERTIES
from svc_profile.config import check_amount_units

# What svc_collect protects as event properties and svc_profile as attributes: a dataset column so named is level 3.
DEFAULT_SENSITIVE_COLUMNS = tuple(dict.fromkeys((*DEFAULT_SENSITIVE_PROPERTIES, *DEFAULT_SENSITIVE_ATTRIBUTES)))


class ModelingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_MODELING_")
    section: ClassVar[str] = "modeling"
    service_name: ClassVar[str] = "modeling"
    default_grpc_port: ClassVar[int] = 50054

    job_workers: int = Field(default=1, ge=1, le=64)
    """Long jobs (training, scoring, analyses) run at once; further ones wait as PENDING."""
    job_progress_interval_millis: int = Field(default=250, ge=0)
    """A running job writes its progress to the database at most this often."""
    watch_poll_interval_millis: int = Field(default=200, ge=10)
    """WatchJob: how often the job's state is re-read; also how often a process looks for cancels of its running
    jobs asked through another replica."""
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """A process renews the heartbeat of the jobs it runs this often (several replicas share the job table)."""
    job_orphan_seconds: float = Field(default=60.0, gt=0)
    """A pending or running job whose heartbeat is older than this belongs to a process that died: it is failed
    (ABORTED, "start it again"). Keep it several heartbeats long, and the replicas' clocks in sync (NTP)."""
    max_dataset_rows: int = Field(default=5_000_000, ge=1)
    """Rows in one dataset; a larger import fails with RESOURCE_EXHAUSTED."""
    max_dataset_columns: int = Field(default=1_000, ge=1)
    """Columns in one dataset."""
    max_upload_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    """Size of one uploaded file (all chunks together)."""
    max_decoded_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024)
    """Memory one upload or import may take decoded: an Arrow/Parquet file's columns as read (checked against the
    file's metadata first, then batch by batch), and the dataset as stored, where each text column takes rows x its
    longest value x 4 bytes. More: RESOURCE_EXHAUSTED naming this setting, before the memory is taken. A compressed
    file is bounded by this, not by ``max_upload_bytes``. The process needs about 3 times the stored size at peak
    (2.3 GB for a file of 2 million 100-character values, 0.8 GB stored): lower it on a small server."""
    sensitive_columns: tuple[str, ...] = DEFAULT_SENSITIVE_COLUMNS
    """Column names (case-insensitive) that are level 3 (JR/T 0158) in an import or upload that does not declare the
    column's ``sensitivity``: sealed at rest, withheld on read, never echoed. svc_collect's default
    ``sensitive_properties`` and svc_profile's ``sensitive_attributes``; declare a lower level to store one in clear."""
    blob_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Stored datasets and model artifacts are split into database rows of at most this size."""
    unmask_roles: tuple[str, ...] = ("unmask", "admin")
    """Roles whose callers read dataset columns of sensitivity level 3 or 4 in clear (PreviewDataset, ReadRows);
    for other callers those columns' values are withheld (``masked_columns``). As svc_profile's and svc_collect's."""
    dataset_cache_entries: int = Field(default=8, ge=0)
    """Decoded datasets kept in memory (they never change once stored)."""
    min_rows_per_arm: int = Field(default=30, ge=2)
    """Causal and uplift fits refuse a treatment arm (or the control group) with fewer rows than this."""
    leakage_auc_threshold: float = Field(default=0.99, gt=0.5, le=1.0)
    """A feature that alone separates the label with at least this AUC (or |correlation|) is refused as leaky."""
    default_bootstrap_rounds: int = Field(default=200, ge=10, le=10_000)
    """Bootstrap resamples for Qini/AUUC intervals when the request does not say."""
    score_batch_rows: int = Field(default=200_000, ge=1_000)
    """Batch scoring predicts this many rows at a time (bounds memory, drives progress)."""
    fit_threads: int = Field(default=1, ge=0, le=256)
    """Threads per LightGBM fit; 0 means every core. One is fastest on small or shared machines (OpenMP threads
    spin waiting for each other); raise it on a dedicated many-core server for large datasets."""
    what_if_max_rows: int = Field(default=20_000, ge=100)
    """What-if for everyone predicts on a fixed random sample of at most this many rows (the sampling error is
    part of the interval); bounds the answer's latency on large datasets."""
    review_check_interval_seconds: float = Field(default=60.0, gt=0)
    """How often the review scheduler looks for schedules whose time has come."""
    profile_address: str = ""
    """``host:port`` of svc_profile: batch scoring writes each score there as a tag (provenance: model and
    version). Empty: this process when it serves svc_profile too (``qiming serve all``); else scores are kept as
    a score table only, and its lineage says the write-back did not happen. Also where segments are read
    (populations), plans exported as static segments and declared attributes taken for profile snapshots."""
    collect_address: str = ""
    """``host:port`` of svc_collect: the event log that point-in-time snapshots (``BuildFromProfiles``, scoring a
    segment or everyone, the AIPL funnel over profiles) are computed from. Empty: this process when it serves
    svc_collect too (``qiming serve all``); else those requests answer UNAVAILABLE."""
    follow_erasures: bool = True
    """Follow svc_collect's log (at ``collect_address``, or this process) for svc_profile's signed
    ``$profile_erased`` events and remove the erased customers' rows from every stored dataset that names its
    customer id column (docs/modeling.md, "Erasure"). Off: they stay until an operator removes them."""
    erasure_batch_events: int = Field(default=1000, ge=1, le=10_000)
    """Erasure events read from the log per batch (one pass over the keyed datasets per batch)."""
    remote_timeout_seconds: float = Field(default=600.0, gt=0)
    """Longest call to svc_profile or svc_collect (a whole read of the log, a segment export)."""
    day_offset_hours: int = Field(default=8, ge=-12, le=14)
    """Snapshot features: day buckets start at midnight of this UTC offset. Keep it equal to svc_profile's
    ``day_offset_hours`` so that ``count.<type>.<N>d`` means the same in a snapshot and in a live profile."""
    trade_event_types: tuple[str, ...] = ("trade_filled",)
    """Snapshot features: events that are trades (as svc_profile's ``trade_event_types``)."""
    amount_properties: tuple[str, ...] = ("turnover_fen", "amount_fen", "amount")
    """Snapshot features: a trade's amount properties in fen, read before ``yuan_amount_properties`` (as
    svc_profile's)."""
    yuan_amount_properties: tuple[str, ...] = ("amount_yuan",)
    """Snapshot features: a trade's amount properties in yuan (as svc_profile's; keep the two services' equal)."""
    view_event_types: tuple[str, ...] = ("product_view", "fund_view", "quote_view", "page_view")
    """Snapshot features: events that count as product views (as svc_profile's ``view_event_types``)."""

    @model_validator(mode="after")
    def _amount_units_apart(self) -> "ModelingSettings":
        check_amount_units(self.amount_properties, self.yuan_amount_properties)
        return self

    @model_validator(mode="after")
    def _orphans_after_heartbeats(self) -> "ModelingSettings":
        if self.job_orphan_seconds < 3 * self.job_heartbeat_seconds:
            raise ValueError(
                "job_orphan_seconds must be at least 3 x job_heartbeat_seconds, or a live replica's jobs may be "
                "failed as orphans"
            )
        return self
