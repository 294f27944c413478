"""Settings of svc_profile: environment ``QIMING_PROFILE_*`` or TOML table ``[profile]``."""

from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from svc_common.config import ServiceSettings
from svc_common.protection._levels import DEFAULT_SENSITIVE_ATTRIBUTES

# Ids that apps send when they have none: never an identity, never a reason to merge two people.
DEFAULT_PLACEHOLDER_IDS = (
    "null",
    "(null)",
    "<null>",
    "none",
    "nil",
    "undefined",
    "0",
    "-1",
    "guest",
    "anonymous",
    "unknown",
    "n/a",
    "na",
    "test",
    "00000000-0000-0000-0000-000000000000",
    "{00000000-0000-0000-0000-000000000000}",
    "nan",
    "[object object]",
)


def check_amount_units(fen: tuple[str, ...], yuan: tuple[str, ...]) -> None:
    """A property is an amount in one unit: named in both lists, which one would it be read in?"""
    both = sorted(set(fen) & set(yuan))
    if both:
        raise ValueError(
            f"{', '.join(both)} named in both amount_properties (fen) and yuan_amount_properties: keep each in one"
        )


# Declared attributes at level 3 (JR/T 0158) besides every name ending in "_fen" (amounts): SM4-sealed at
# rest, masked on read unless the caller's role allows.


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_PROFILE_")
    section: ClassVar[str] = "profile"
    service_name: ClassVar[str] = "profile"
    default_grpc_port: ClassVar[int] = 50052

    collect_address: str = ""
    """svc_collect's gRPC address (``host:port``): the log this service follows and publishes segment changes
    to. Empty: this process when it serves svc_collect too (``qiming serve all``); else no consumer runs
    (profiles, tags and segments still answer; nothing updates from events)."""
    consumer_name: str = Field(default="svc_profile", min_length=1, max_length=64)
    """Name under which the log cursor is stored (one per consumer group)."""
    consumer_batch_events: int = Field(default=10_000, ge=1, le=10_000)
    """Events per batch read from the log (at most: a batch holds what the log has, one event when it is idle):
    each batch is one transaction of bulk writes, whose fixed costs (the commit and its checkpoint, the reads of
    the batch's persons) larger batches share out (docs/benchmarks.md, svc_profile)."""
    identify_event_types: tuple[str, ...] = ("$identify", "login", "$login", "signup", "$signup")
    """Events that link their ``anonymous_id`` (and further ids) to their ``user_id``: login and signup."""
    alias_event_types: tuple[str, ...] = ("$alias",)
    """Events that link every id they carry into one person (an explicit alias)."""
    placeholder_ids: tuple[str, ...] = Field(default=DEFAULT_PLACEHOLDER_IDS, max_length=100)
    """Id values (compared case-insensitively, full-width forms too) that are never identities: no profile, no link,
    no merge. At most 100: the pseudonyms of each one's spellings are made at start (a fund account or phone arrives
    from svc_collect as one)."""
    trade_event_types: tuple[str, ...] = ("trade_filled",)
    """Events that are trades: trade count, last trade, turnover."""
    amount_properties: tuple[str, ...] = ("turnover_fen", "amount_fen", "amount")
    """Properties read as a trade's amount in fen (an int; a double is rounded to whole fen, half away from zero). The
    first of these, then of ``yuan_amount_properties``, present wins. Level 3 by default in svc_collect: classify it
    level 2 in the trade event's schema for turnover features (see docs/profile.md)."""
    yuan_amount_properties: tuple[str, ...] = ("amount_yuan",)
    """Properties read as a trade's amount in yuan (元), as many trading systems report it: an int or a double is made
    whole fen (12345.67 → 1,234,567). A ``money_fen_value`` is fen under any name. A system that sends ``amount`` in
    yuan: move ``amount`` here from ``amount_properties`` (the events kept so far keep the turnover they counted;
    svc_modeling's snapshots read the whole log again in the unit configured there). 0.2.9."""
    view_event_types: tuple[str, ...] = ("product_view", "fund_view", "quote_view", "page_view")
    """Events that count as views of a product, by its ``product_category`` / ``fund_type`` properties."""
    login_event_types: tuple[str, ...] = ("login", "$login", "$identify", "app_start")
    """Events that count as logins (lifecycle activity, dormant-account score)."""
    active_event_types: tuple[str, ...] = ("login", "$login", "$identify", "app_start", "trade_filled")
    """Events that make a customer active for the lifecycle rules."""
    unmask_roles: tuple[str, ...] = ("unmask", "admin")
    """Roles whose callers read level 3+ attributes and amounts in clear on GetProfile."""
    sensitive_attributes: tuple[str, ...] = DEFAULT_SENSITIVE_ATTRIBUTES
    """Attribute names at level 3 besides every ``*_fen`` amount: sealed at rest, masked on read."""
    event_retention_days: int = Field(default=90, ge=0, le=400)
    """Days of the compact per-person event table (funnels, paths, filtered event conditions); 0 keeps none."""
    day_offset_hours: int = Field(default=8, ge=-12, le=14)
    """Day buckets of event counts start at midnight of this UTC offset (8: China Standard Time)."""
    sweep_interval_seconds: float = Field(default=60.0, ge=1.0)
    """Time-driven changes (windows expiring, lifecycle ageing) are applied this often."""
    outbox_batch: int = Field(default=500, ge=1, le=10_000)
    """Segment-change events published per Ingest call."""
    outbox_rejected_retry_seconds: float = Field(default=60.0, ge=1.0, le=3_600.0)
    """An outbox event svc_collect rejected (quarantined) stays unsent and is sent again after this many seconds,
    the wait doubling with each rejection in a row up to one hour: a fixed cause (the keyring, a schema) heals
    without a hot loop filling the quarantine."""
    outbox_rejected_hold_seconds: float = Field(default=86_400.0, ge=0.0)
    """A rejected outbox event holds back its person's later events (so that they reach the log in order) for at most
    this many seconds from its first rejection; then they go without it (0: never held back)."""
    outbox_sent_retention_seconds: float = Field(default=86_400.0, ge=60.0)
    """Sent outbox rows are deleted this many seconds after they were sent (a ``$profile_erased`` row holds the
    erased customer's number)."""
    max_import_rows: int = Field(default=1_000_000, ge=1)
    """Rows one ImportAttributes call may send; the row past it ends the call with RESOURCE_EXHAUSTED (the chunks
    before it stay applied). Bounds how long one call holds the writer, not memory (see ``import_chunk_rows``)."""
    import_chunk_rows: int = Field(default=1_000, ge=1, le=10_000)
    """ImportAttributes applies its rows in chunks of this many as they arrive, each chunk one transaction with one
    refresh of the persons it touched: the memory an import holds, and how long it holds the writer at a time."""
    max_static_members: int = Field(default=1_000_000, ge=1)
    """Users one SetStaticMembers call may send (kept in memory until the stream ends, about 200 bytes each); more is
    RESOURCE_EXHAUSTED and nothing changes."""
    max_export_streams: int = Field(default=4, ge=1, le=64)
    """ExportMembers streams a process serves at once; more is RESOURCE_EXHAUSTED. Each holds a pooled database
    connection and one read snapshot until its stream ends (docs/profile.md): a client that stops reading keeps
    them, so keep this well below ``database_pool_size`` + ``database_max_overflow`` (SQLite: 15)."""
    max_segment_definitions: int = Field(default=1_000, ge=1)
    """Active segments; more is RESOURCE_EXHAUSTED (each is evaluated on every batch that touches it)."""
    max_tag_definitions: int = Field(default=1_000, ge=1)
    """Active rule tags."""
    recompute_background_profiles: int = Field(default=20_000, ge=0)
    """A recompute (RecomputeSegment, RecomputeTag, a created or updated segment) over at least this many profiles
    runs in the background: the call returns the job RUNNING and JobService.GetJob reports its progress and end.
    Below it the job runs within the call and comes back SUCCEEDED. 0: always in the background."""
    job_heartbeat_seconds: float = Field(default=5.0, ge=0.5, le=300.0)
    """A process running recompute jobs records that it still does this often (``profile_job.heartbeat_at``), and
    looks this often for jobs whose process is gone."""
    job_orphan_seconds: float = Field(default=60.0, ge=2.0)
    """A RUNNING job whose heartbeat is older than this is orphaned: its process is taken for gone and the first
    other process to look runs it again (docs/profile.md, "Recompute jobs"). At least twice
    ``job_heartbeat_seconds``; on SQLite above the longest recompute transaction too (the heartbeat waits for
    the write lock)."""

    @model_validator(mode="after")
    def _amount_units_apart(self) -> "ProfileSettings":
        check_amount_units(self.amount_properties, self.yuan_amount_properties)
        return self

    @model_validator(mode="after")
    def _orphan_after_several_heartbeats(self) -> "ProfileSettings":
        if self.job_orphan_seconds < 2 * self.job_heartbeat_seconds:
            raise ValueError(
                f"job_orphan_seconds ({self.job_orphan_seconds:g}) must be at least twice job_heartbeat_seconds "
                f"({self.job_heartbeat_seconds:g}): else a live process's jobs are taken for orphans"
            )
        return self

    job_retention_days: int = Field(default=30, ge=1)
    """Ended recompute jobs are kept this long in ``profile_job`` (GetJob answers for them), then deleted."""
    hot_persons: int = Field(default=100_000, ge=0)
    """Persons the log consumer keeps in memory between batches (id holders, customer id, person row): a batch
    reads only the others. Any write other than a log batch empties it. 0: none kept."""
    hot_day_buckets: int = Field(default=1_000_000, ge=0)
    """Day buckets (one person's events of one type on one day) the log consumer keeps in memory for the hot
    persons it evaluated, about 100 bytes each: a batch reads buckets only for the others. Past this many, no more
    persons' buckets are kept until the cache is emptied (any write other than a log batch, a full cache of
    ``hot_persons``, a day boundary). 0: none kept."""
    consumer_stage_writes: bool = True
    """SQLite: the log consumer's bulk writes are staged in memory at a batch's end and run, one statement each, with
    its commit on the consumer's pipeline thread (docs/profile.md, "SQLite writes, staged"): ~15–25 % less CPU on the
    consumer's own thread, up to ~13 % more for the process. False: they run on the consumer's thread as ``executemany``
    (the better choice where the process has no core to spare for a second busy thread). Other databases: no
    effect."""
    consumer_switch_interval_micros: int = Field(default=1000, ge=0, le=100_000)
    """Python's GIL switch interval (``sys.setswitchinterval``) as the log consumer first hands a batch to its commit
    thread, if shorter than the process's (0: left as it is; Python's default is 5,000). The consumer's commit thread
    needs the GIL back after each of its statements and its commit (~15 a batch) while the consumer's thread computes
    the next batch, which holds it for up to one interval each time: at 5 ms the commit job of a 10,000-event batch
    waited ~60–100 ms for it (docs/benchmarks.md, "Session 21"). Process-wide: under ``qiming serve all`` every
    service's threads."""
    finance_pack: bool = True
    """Install the built-in finance tag pack (``fin_*``) at start when missing."""
