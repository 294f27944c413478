"""Settings of svc_campaign: environment ``QIMING_CAMPAIGN_*`` or TOML table ``[campaign]``."""

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from svc_campaign.cron import known_zone
from svc_common.config import ServiceSettings
from svc_common.protection import DEFAULT_SENSITIVE_ATTRIBUTES, DEFAULT_SENSITIVE_PROPERTIES

# svc_campaign's own names on top of svc_profile's attributes and svc_collect's properties (so that the three stay in
# line: a placeholder that names a field the other services protect is refused when the template is saved).
DEFAULT_SENSITIVE_FIELDS = tuple(
    dict.fromkeys(
        (
            *DEFAULT_SENSITIVE_ATTRIBUTES,
            *DEFAULT_SENSITIVE_PROPERTIES,
            "name",
            "account_number",
            "position",
            "order",
        )
    )
)


class CampaignSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_CAMPAIGN_")
    section: ClassVar[str] = "campaign"
    service_name: ClassVar[str] = "campaign"
    default_grpc_port: ClassVar[int] = 50053

    collect_address: str = ""
    """svc_collect (``host:port``): its log is followed for triggers, and $message_* events are published to it.
    Empty: this process when it serves svc_collect too (``qiming serve all``); else no log is followed (journeys
    only advance on timers; the API still works)."""
    profile_address: str = ""
    """svc_profile (``host:port``) for branches, audience segments, personalisation and suitability. Empty: this
    process when it serves svc_profile too; else every customer has an empty profile (branches take their
    default, product messages are suppressed)."""
    profile_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a fetched profile is reused before it is asked for again."""
    profile_timeout_seconds: float = Field(default=2.0, gt=0)
    """One GetProfile call; past it the customer is treated as unknown (and the call is retried next time)."""
    consumer_name: str = "campaign"
    """Name of this service's place in the log (its stored cursor)."""
    log_batch_size: int = Field(default=500, ge=1, le=10_000)
    """Events handed to the engine per transaction."""
    timer_poll_millis: int = Field(default=200, ge=10)
    """How often due timers are looked for."""
    timer_batch_size: int = Field(default=200, ge=1)
    """Timers fired per transaction."""
    timers_wait_for_log_seconds: float = Field(default=300.0, ge=0)
    """How long due timers wait for the log follower to read the log to its end (after a start, or while svc_collect
    cannot be read) before they fire anyway: a timer fired before the events that arrived meanwhile are read answers
    an absence, a sequence's "then not B" or a wait's timeout although the customer's event is in the log. 0: never
    wait."""
    timer_workers: int = Field(default=2, ge=1, le=16)
    """Timer loops firing at once on PostgreSQL, each for its own share of the customers (by a hash of the user
    id: one customer's timers are only ever fired by one of them, so two timer loops never gate one customer at
    once); while one waits on the database another runs. SQLite and the other databases run one."""
    journey_refresh_seconds: float = Field(default=2.0, gt=0)
    """Running journeys are re-read this often (a change made through this process applies at once)."""
    paused_recheck_seconds: int = Field(default=60, ge=1)
    """A timer of a paused journey comes due again after this long (waiting customers keep waiting)."""
    schedule_poll_millis: int = Field(default=1000, ge=10)
    """How often scheduled journeys are checked for a run that came due (a run in progress goes on at once)."""
    schedule_batch_size: int = Field(default=500, ge=1, le=10_000)
    """Members of a scheduled run entered per transaction (between two, event triggers and timers go on)."""
    schedule_catch_up_seconds: int = Field(default=3600, ge=0)
    """A recurring schedule's time missed while the service was down still runs if it is at most this old."""
    export_page_size: int = Field(default=1000, ge=1, le=10_000)
    """Members per page of svc_profile's ExportMembers stream."""
    export_timeout_seconds: float = Field(default=600.0, gt=0)
    """Deadline of one ExportMembers stream; past it the run keeps what it read and streams the rest again."""
    timezone: str = "Asia/Shanghai"
    """Zone of quiet hours and daily caps when a rule does not name one."""
    marketing_requires_opt_in: bool = False
    """True: marketing goes only to customers with a granted consent record (opt-in); False: to everyone who has
    not opted out of the channel or purpose."""
    sensitive_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE_FIELDS))
    """Profile and event fields of level 3 or above (JR/T 0158): a template or branch naming one is refused, and a
    field the profile service masks is never rendered either. The default holds svc_profile's and svc_collect's
    defaults (``sensitive_attributes``, ``sensitive_properties``) and a few more; add what you add there."""
    gateway_url: str = ""
    """HTTP webhook of the channel gateway: each message is POSTed as JSON with an ``Idempotency-Key`` header.
    Empty: messages stay QUEUED in the outbox until a gateway is configured."""
    gateway_timeout_seconds: float = Field(default=5.0, gt=0)
    """One delivery attempt (the HTTP timeout, or the deadline of one gRPC ``Deliver``)."""
    gateway_grpc_address: str = ""
    """The broker's ``qiming.campaign.gateway.v1.ChannelGatewayService`` (``host:port``) for the channels in
    ``grpc_channels``."""
    grpc_channels: list[str] = Field(default_factory=list)
    """Channels delivered over gRPC (``sms``, ``app_push``, ``in_app``, ``wecom``, ``email``, ``advisor_call``;
    ``*``: all); the others go to ``gateway_url``. Empty with a ``gateway_grpc_address`` and no ``gateway_url``:
    all channels over gRPC."""
    gateway_grpc_attempts: int = Field(default=3, ge=1, le=20)
    """Tries of one gRPC delivery in one round (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) before the
    message goes back to the outbox for ``delivery_initial_backoff_millis``."""
    gateway_grpc_initial_backoff_millis: int = Field(default=100, ge=1)
    """Wait before the second gRPC try of a round; doubles after each (with jitter)."""
    gateway_grpc_max_backoff_millis: int = Field(default=2000, ge=1)
    """Longest wait between two gRPC tries of a round."""
    delivery_max_attempts: int = Field(default=20, ge=1)
    """Tries of one message before it is FAILED when the gateway keeps failing retryably (no answer, 408, 429,
    5xx). With the backoff defaults the 19 waits add up to 27-54 minutes, so a gateway's maintenance window or
    failover of up to ~27 minutes loses no message (6, the earlier default, gave up after 8-17 seconds)."""
    delivery_initial_backoff_millis: int = Field(default=500, ge=1)
    """Wait before the second try; doubles after each failure."""
    delivery_max_backoff_millis: int = Field(default=300_000, ge=1)
    """Longest wait between two tries."""
    publish_rejected_retry_seconds: float = Field(default=60.0, ge=1.0, le=3_600.0)
    """A ``$message_*`` event svc_collect rejected (quarantined) stays in ``campaign_pending_event`` and is sent again
    after this many seconds, the wait doubling with each rejection in a row up to one hour."""
    publish_rejected_hold_seconds: float = Field(default=86_400.0, ge=0.0)
    """A rejected ``$message_*`` event holds back its customer's later events (so that they reach the log in order)
    for at most this many seconds from its first rejection; then they go without it (0: never held back)."""
    delivery_concurrency: int = Field(default=16, ge=1, le=512)
    """Deliveries in flight at once."""
    delivery_batch_size: int = Field(default=200, ge=1)
    """Messages claimed from the outbox at a time."""
    delivery_poll_millis: int = Field(default=200, ge=10)
    """How often the outbox is looked at when it was empty."""
    delivery_lease_seconds: int = Field(default=60, ge=1)
    """A claimed message is not claimed again for this long (a crashed dispatcher's claims expire)."""

    @field_validator("timezone", mode="after")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # Checked at start: an unknown zone used to fail every capped marketing send with INTERNAL.
        if known_zone(value) is None:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'")
        return value

    @field_validator("grpc_channels", mode="after")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        from svc_campaign.gateway_grpc import channel_number

        for name in value:
            if name != "*":
                channel_number(name)
        return value
