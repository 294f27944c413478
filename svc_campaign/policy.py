"""The one policy gate every send passes, in order: consent → suitability → content compliance → frequency cap
(with priority: a higher-priority journey takes the slot of a lower-priority message not sent yet) →
cross-channel de-duplication → quiet hours (defer, never drop).

Service notices (``is_marketing = false``) skip consent, caps, de-duplication and quiet hours, but never
suitability or content rules. The gate reads the outbox in the caller's transaction, so messages created
earlier in the same batch count.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import zlib
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from sqlalchemy import Table
from sqlalchemy.engine import Connection

from svc_campaign.checks import bad
from svc_campaign.clock import earlier, window_start
from svc_campaign.content import (
    RenderRefused,
    check_template,
    discloses_risk,
    prohibited_claim,
    render,
    risk_rating,
    template_facts,
)
from svc_campaign.outbox import UNSENT
from svc_campaign.profiles import PROFILE_UNAVAILABLE
from svc_campaign.store._bulk import ARRAY_DIALECTS
from svc_campaign.store._policy import GateStore, PolicyStore
from svc_campaign.store._policy import Sent as _Sent
from svc_campaign.store._policy import recent_lateral as recent_lateral
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2

COUNTED = ("QUEUED", "DEFERRED", "SENT", "DELIVERED", "CLICKED")
ALL_CHANNELS = 0
ALL_PURPOSES = "*"


def default_policy() -> pb.ContactPolicy:
    """At most 2 marketing touches a day and 5 a week, 1 per channel a day; same content once a day; no SMS or
    advisor calls 21:00-08:00 (Asia/Shanghai)."""
    night = pb.QuietHours(
        channels=[pb.CHANNEL_TYPE_SMS, pb.CHANNEL_TYPE_ADVISOR_CALL],
        start=pb.TimeOfDay(hour=21, minute=0, timezone="Asia/Shanghai"),
        end=pb.TimeOfDay(hour=8, minute=0, timezone="Asia/Shanghai"),
    )
    return pb.ContactPolicy(
        max_marketing_per_day=2,
        max_marketing_per_week=5,
        max_per_channel_per_day=1,
        dedupe_window_seconds=86_400,
        quiet_hours=[night],
        version=DEFAULT_POLICY_VERSION,
    )


DEFAULT_POLICY_VERSION = 1
"""The defaults' version (proto: "1 for the defaults, +1 per update"): the first update stores 2, so an
``expected_version`` read from the defaults guards the first edit too (0 means "whatever is there")."""


def policy_from_json(document: dict) -> pb.ContactPolicy:
    return json_format.ParseDict(document, pb.ContactPolicy())


class PolicyCache:
    """The stored contact policy (the default until one is stored), read again at most every ``refresh_seconds``:
    the gate's sends and the dispatcher's claims judge by the same policy."""

    def __init__(self, table: Table, refresh_seconds: float) -> None:
        self._store = PolicyStore({"policy": table})
        self._refresh_seconds = refresh_seconds
        self._held: tuple[float, pb.ContactPolicy] | None = None

    def get(self, conn: Connection) -> pb.ContactPolicy:
        if self._held is not None and self._held[0] > time.monotonic():
            return self._held[1]
        row = self._store.policy(conn)
        policy = policy_from_json(row.document) if row is not None else default_policy()
        if row is not None:
            policy.version = row.version_no
        self._held = (time.monotonic() + self._refresh_seconds, policy)
        return policy

    def forget(self) -> None:
        self._held = None


@dataclass(slots=True)
class Touch:
    user_id: str
    channel: int
    template: pb.Template
    purpose: str
    is_marketing: bool
    priority: int
    profile: profile_pb2.Profile | None
    event: dict = field(default_factory=dict)
    pending: list[dict] = field(default_factory=list)
    """Messages of the customer written earlier in the same transaction, not yet in the table."""
    consents: list | None = None
    """The customer's consent rows when already read (None: read them)."""
    recent: list | None = None
    """The customer's counted messages of the last week when already read (None: read them)."""


@dataclass(slots=True)
class Decision:
    allowed: bool
    reason: str = ""
    deferred_until: dt.datetime | None = None
    preempt: list[str] = field(default_factory=list)
    """Unsent lower-priority messages to suppress (reason ``preempted_by_priority``) to make room."""
    preempt_reason: str = ""
    """The cap that needs the room: this touch's reason if a message to preempt turns out to be at the gateway."""
    rendered: tuple[str, str, str] = ("", "", "")


def consent_allows(rows: Iterable[tuple[int, str, bool]], channel: int, purpose: str, requires_opt_in: bool) -> bool:
    """The most specific record wins: (channel, purpose) > (channel, *) > (all, purpose) > (all, *)."""
    found = {(c, p): granted for c, p, granted in rows}
    for key in ((channel, purpose), (channel, ALL_PURPOSES), (ALL_CHANNELS, purpose), (ALL_CHANNELS, ALL_PURPOSES)):
        if key in found:
            return found[key]
    return not requires_opt_in


def cap_windows(policy: pb.ContactPolicy, now: dt.datetime, default_zone: str) -> tuple[dt.datetime, dt.datetime]:
    """Since when "per day" and "per week" caps count: the start of today and of this week (Monday) in the cap
    zone (calendar, the default, as brokers count), or the last 24 hours and 7 days (``CAP_WINDOW_ROLLING``)."""
    return _cap_windows(policy.cap_window, policy.cap_timezone, now, default_zone)


def cap_bounds(
    policy: pb.ContactPolicy, send_at: dt.datetime, default_zone: str
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """The day and week (from, to) whose caps a message sent at ``send_at`` counts against: its calendar day and week
    in the cap zone, or (``CAP_WINDOW_ROLLING``) the 24 hours and 7 days either side of it (a message held for
    later still counts near it)."""
    return _cap_bounds(policy.cap_window, policy.cap_timezone, send_at, default_zone)


@functools.lru_cache(maxsize=64)
def _cap_bounds(
    window: int, zone: str, send_at: dt.datetime, default_zone: str
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    # Cached as _cap_windows is: a batch's sends ask with the same ``now`` (or the same end of quiet hours).
    day_from, week_from = _cap_windows(window, zone, send_at, default_zone)
    if window == pb.CAP_WINDOW_ROLLING:
        return day_from, send_at + dt.timedelta(days=1), week_from, send_at + dt.timedelta(days=7)
    # Through the local date: a day or week that spans a daylight-saving change is not a fixed number of hours.
    tz = _zone(zone, default_zone)
    day, monday = day_from.astimezone(tz).date(), week_from.astimezone(tz).date()
    day_to = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    week_to = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return day_from, day_to, week_from, week_to


@functools.lru_cache(maxsize=64)
def _cap_windows(window: int, zone: str, now: dt.datetime, default_zone: str) -> tuple[dt.datetime, dt.datetime]:
    # Cached: every send of a batch of timers or events asks with the same ``now``.
    if window == pb.CAP_WINDOW_ROLLING:
        return now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    local = now.astimezone(_zone(zone, default_zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    monday = midnight - dt.timedelta(days=midnight.weekday())
    # Through the local date and back: a day that starts at a daylight-saving change keeps its own offset.
    return _start(midnight), _start(monday)


def _start(local: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(local.date(), dt.time(), tzinfo=local.tzinfo).astimezone(dt.UTC)


def _zone(name: str, default: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name or default)


def check_quiet_hours(policy: pb.ContactPolicy) -> None:
    """``INVALID_ARGUMENT`` naming the first quiet-hours rule that starts when it ends: such a span is empty (the
    gate would skip it), and an operator who wrote it most likely meant all day."""
    for n, rule in enumerate(policy.quiet_hours):
        if (rule.start.hour, rule.start.minute) == (rule.end.hour, rule.end.minute):
            raise bad(
                f"policy.quiet_hours[{n}]",
                f"starts when it ends ({rule.start.hour:02d}:{rule.start.minute:02d}): a quiet-hours rule is one span "
                "of local time from start to end; for all day use 00:00-23:59",
            )


def quiet_until(policy: pb.ContactPolicy, channel: int, now: dt.datetime, default_zone: str) -> dt.datetime | None:
    """When the quiet hours covering ``channel`` at ``now`` end (None: not quiet now)."""
    latest: dt.datetime | None = None
    for rule in policy.quiet_hours:
        if rule.channels and channel not in rule.channels:
            continue
        zone = _zone(rule.start.timezone, default_zone)
        local = now.astimezone(zone)
        minute = local.hour * 60 + local.minute
        start = rule.start.hour * 60 + rule.start.minute
        end = rule.end.hour * 60 + rule.end.minute
        inside = start <= minute < end if start <= end else (minute >= start or minute < end)
        if not inside or start == end:
            continue
        end_day = local.date() if minute < end else local.date() + dt.timedelta(days=1)
        until = dt.datetime.combine(end_day, dt.time(rule.end.hour, rule.end.minute), tzinfo=zone)
        until = until.astimezone(dt.UTC)
        latest = until if latest is None or until > latest else latest
    return latest


# Messages are read back this much further than the caps' windows: one created before a window and held for quiet
# hours into it counts in it (quiet hours last under a day).
_HELD_SLACK = dt.timedelta(days=1)


ADVISORY_LOCK_DIALECTS = ["postgresql"]
"""Where the gate's per-customer lock (see :meth:`PolicyGate.lock_customers`) is a transaction advisory lock per
customer (``pg_advisory_xact_lock``): no rows written, measured fast."""
ROW_LOCK_DIALECTS = ["opengauss", "dm"]
"""Where it locks the rows of the customers' buckets in ``campaign_gate_lock`` instead (``SELECT ... FOR UPDATE``):
Dameng has no advisory locks; openGauss has them, but the statement above has run on no openGauss server, while
the row lock is plain SQL from its PostgreSQL base, tested on PostgreSQL (docs/campaign.md). SQLite, in neither
list, has one writer at a time. Tests put PostgreSQL here (and empty the list above) to run this path."""
GATE_LOCK_BUCKETS = 65_536
"""The rows of ``campaign_gate_lock`` (written by campaign_0004): a customer's bucket is its lock key mod this."""
_ROW_LOCK_CHUNK = 500  # buckets per statement (an IN list of binds); chunks in ascending order, as within each


class PolicyGate:
    def __init__(self, tables: dict[str, Table], *, default_zone: str, requires_opt_in: bool, sensitive: list[str]):
        self.store = GateStore(tables)
        self.default_zone = default_zone
        self.requires_opt_in = requires_opt_in
        self.sensitive = sensitive
        self._checked: dict[tuple, bool] = {}
        self._last_checked: tuple[pb.Template, pb.ContactPolicy, bool] | None = None
        self._quiet: dict[tuple[int, int, dt.datetime], tuple[pb.ContactPolicy, dt.datetime | None]] = {}

    def lock_customers(self, conn: Connection, users: Iterable[str]) -> None:
        """Serialise the gate per customer until this transaction ends: the event follower, a scheduled run, the
        timer loops and other processes each gate in their own transaction, and without it two of them could read
        the same recent messages and both pass a cap of one. One statement, the keys in ascending order (two
        transactions locking overlapping customers this way wait instead of deadlocking); the keys travel as one
        JSON array, as the batch's other customer lists do.

        Where there are no advisory locks (:data:`ROW_LOCK_DIALECTS`) the customers' bucket rows are locked instead,
        ``SELECT ... FOR UPDATE`` in ascending bucket order (chunks of 500, ascending too); customers sharing a bucket
        only wait for each other. A bucket row missing would leave its customers unserialised: that is an error."""
        dialect = conn.dialect.name
        if dialect in ADVISORY_LOCK_DIALECTS:
            keys = list({_lock_key(user) for user in users})
            if keys:
                self.store.lock_keys(conn, keys)
        elif dialect in ROW_LOCK_DIALECTS:
            buckets = sorted({gate_bucket(user) for user in users})
            for start in range(0, len(buckets), _ROW_LOCK_CHUNK):
                chunk = buckets[start : start + _ROW_LOCK_CHUNK]
                locked = self.store.lock_buckets(conn, chunk)
                if len(locked) != len(chunk):
                    missing = sorted(set(chunk) - locked)
                    raise RuntimeError(
                        f"campaign_gate_lock lacks the buckets {missing[:10]} (of {GATE_LOCK_BUCKETS}): the policy "
                        "gate cannot serialise those customers; its rows are written by the migration campaign_0004"
                    )

    def consents_for(self, conn: Connection, users: list[str]) -> Iterable[Any]:
        """The consent rows (user_id, channel, purpose, granted) of several customers at once."""
        return self.store.consents_of(conn, users, array=conn.dialect.name in ARRAY_DIALECTS)

    def recent_for(self, conn: Connection, users: list[str], since: dt.datetime) -> dict[str, list[_Sent]]:
        """Counted messages since ``since`` of several customers at once."""
        since = window_start(since, _HELD_SLACK)
        rows = self.store.recent_of(conn, users, since, array=conn.dialect.name in ARRAY_DIALECTS)
        found: dict[str, list[_Sent]] = {}
        for row in rows:
            found.setdefault(row.user_id, []).append(_Sent(*row[1:]))
        return found

    def _compliant(self, template: pb.Template, policy: pb.ContactPolicy) -> bool:
        last = self._last_checked
        if last is not None and last[0] is template and last[1] is policy:
            return last[2]  # the same cached template and policy as the send before (a batch's sends: one check)
        known = self._check(template, policy)
        self._last_checked = (template, policy, known)
        return known

    def _check(self, template: pb.Template, policy: pb.ContactPolicy) -> bool:
        key = (template.template_id, template.version, policy.version, tuple(policy.extra_prohibited_phrases))
        known = self._checked.get(key)
        if known is None:
            if len(self._checked) > 10_000:
                self._checked.clear()
            known = self._checked[key] = not check_template(template, policy.extra_prohibited_phrases, self.sensitive)
        return known

    def check(self, conn: Connection, policy: pb.ContactPolicy, touch: Touch, now: dt.datetime) -> Decision:
        if touch.is_marketing and touch.recent is None:  # not read ahead (and locked) with its batch
            self.lock_customers(conn, [touch.user_id])
        if touch.is_marketing:
            rows = touch.consents if touch.consents is not None else self.store.consents(conn, touch.user_id)
            if not consent_allows(rows, touch.channel, touch.purpose or "marketing", self.requires_opt_in):
                return Decision(False, "no_consent")
        facts = template_facts(touch.template)
        if facts.product_id and facts.risk_level:
            rating = risk_rating(touch.profile)
            if rating is None:
                unreachable = touch.profile is PROFILE_UNAVAILABLE
                return Decision(False, "profile_unavailable" if unreachable else "risk_rating_unknown")
            if rating < facts.risk_level:
                return Decision(False, "risk_rating_mismatch")
        if not self._compliant(touch.template, policy):
            return Decision(False, "content_noncompliant")
        try:
            rendered = render(touch.template, touch.profile, touch.event, self.sensitive)
        except RenderRefused:
            return Decision(False, "sensitive_placeholder")
        if rendered != facts.texts and (
            any(prohibited_claim(text, policy.extra_prohibited_phrases) for text in rendered)
            or (facts.product_id and not discloses_risk(touch.template, rendered[1]))
        ):
            # Profile or event values can carry a claim the template's own text does not (a nickname "保本"); and
            # a product's promotion never goes out without its risk disclosure, whatever was saved.
            return Decision(False, "content_noncompliant")
        if not touch.is_marketing:
            return Decision(True, rendered=rendered)
        # Quiet hours first: a message counts against the caps of the day (and week) it goes out in, so a touch
        # that quiet hours push to tomorrow is judged by tomorrow's caps (docs/campaign.md, policy gate step 4).
        until = self._quiet_until(policy, touch.channel, now)
        decision = self._caps(conn, policy, touch, now, until or now)
        if not decision.allowed:
            return decision
        decision.rendered = rendered
        if until is not None:
            decision.reason, decision.deferred_until = "quiet_hours_deferred", until
        return decision

    def _quiet_until(self, policy: pb.ContactPolicy, channel: int, now: dt.datetime) -> dt.datetime | None:
        """:func:`quiet_until`, remembered for the last few (policy, channel, now): every send of a batch asks with
        the same ones. By the policy object itself (the cache hands out one per version; a new one misses)."""
        if now.tzinfo is not dt.UTC:  # equal times at a fold of another zone are different instants
            return quiet_until(policy, channel, now, self.default_zone)
        key = (id(policy), channel, now)
        found = self._quiet.get(key)
        if found is None or found[0] is not policy:
            if len(self._quiet) >= 64:
                self._quiet.clear()
            found = self._quiet[key] = (policy, quiet_until(policy, channel, now, self.default_zone))
        return found[1]

    def _caps(
        self, conn: Connection, policy: pb.ContactPolicy, touch: Touch, now: dt.datetime, send_at: dt.datetime
    ) -> Decision:
        """Caps as of ``send_at`` (``now``, or the end of quiet hours): messages count in the day and week their
        own send time (``scheduled_at`` when held) falls in, bounded on both sides."""
        if touch.recent is not None and not touch.recent and not touch.pending:
            return Decision(True)  # read ahead, nothing sent lately, nothing earlier in this batch: every cap has room
        horizon = max(7 * 86_400, policy.dedupe_window_seconds)
        since = earlier(now, horizon)
        if touch.recent is not None:
            rows = [r for r in touch.recent if r.status not in ("SUPPRESSED", "FAILED")]
        else:
            rows = self.store.recent(conn, touch.user_id, window_start(since, _HELD_SLACK))
        counted = (p for p in touch.pending if p["status"] not in ("SUPPRESSED", "FAILED"))
        rows += [_Sent(**{k: p[k] for k in _Sent._fields}) for p in counted]
        rows = [r for r in rows if r.at >= since]
        if not rows:
            return Decision(True)  # nothing counted: no duplicate, every cap has room
        dedupe_from = earlier(now, policy.dedupe_window_seconds)
        template_id = template_facts(touch.template).template_id
        if policy.dedupe_window_seconds and any(r.template_id == template_id and r.at >= dedupe_from for r in rows):
            return Decision(False, "duplicate_content")
        day_from, day_to, week_from, week_to = cap_bounds(policy, send_at, self.default_zone)
        marketing = [r for r in rows if r.is_marketing]
        in_day = [r for r in marketing if day_from <= r.at < day_to]
        preempt: list[str] = []
        preempt_reason = ""
        checks = (
            (
                "channel_cap",
                policy.max_per_channel_per_day,
                [r for r in in_day if r.channel == touch.channel],
            ),
            ("frequency_cap_day", policy.max_marketing_per_day, in_day),
            (
                "frequency_cap_week",
                policy.max_marketing_per_week,
                [r for r in marketing if week_from <= r.at < week_to],
            ),
        )
        for reason, limit, counted in checks:
            counted = [r for r in counted if r.message_id not in preempt]
            if not limit or len(counted) < limit:
                continue
            # Priority: the lowest-priority message not sent yet gives up its slot to a higher-priority one.
            # A message a delivery round holds (at the gateway) is not given up: the gateway may be sending it.
            held = [r for r in counted if r.lease_until is not None and r.lease_until > now]
            victims = sorted(
                (r for r in counted if r.status in UNSENT and r.priority < touch.priority and r not in held),
                key=lambda r: r.priority,
            )
            if len(counted) - len(victims) >= limit:
                return Decision(False, reason)
            need = len(counted) - limit + 1
            preempt += [v.message_id for v in victims[:need]]
            preempt_reason = preempt_reason or reason
        return Decision(True, preempt=preempt, preempt_reason=preempt_reason)


def gate_bucket(user_id: str) -> int:
    """A customer's row of ``campaign_gate_lock``: its lock key (CRC-32) mod :data:`GATE_LOCK_BUCKETS`."""
    return zlib.crc32(user_id.encode()) % GATE_LOCK_BUCKETS


def _lock_key(user_id: str) -> int:
    """A customer's advisory lock key: CRC-32 of the id as a signed 32-bit integer (the same in every process;
    two customers sharing a key only wait for each other)."""
    key = zlib.crc32(user_id.encode())
    return key - (1 << 32) if key >= 1 << 31 else key
