"""What svc_campaign remembers within a batch (formatted times, message ids, quiet hours) gives what working it out
afresh gives: the memos only skip repeated work."""

from __future__ import annotations

import datetime as dt
import hashlib

from svc_campaign import policy
from svc_campaign.clock import utc_iso
from svc_campaign.outbox import ordered_id
from svc_campaign.store import tables
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

AT = dt.datetime(2026, 12, 5, 13, 30, 0, 123456, tzinfo=dt.UTC)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _ordered_afresh(at: dt.datetime, *parts: object) -> str:
    millis = (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    text = "\x1f".join(str(p) for p in (*parts, at.astimezone(dt.UTC).isoformat()))
    return f"{millis & 0xFFFFFFFFFFFF:012x}" + hashlib.sha256(text.encode()).hexdigest()[:20]


def test_ordered_id_remembered_or_not_is_the_same_id() -> None:
    for _ in range(2):  # the second time from the memo
        assert ordered_id(AT, "i1", "send", "timer:x") == _ordered_afresh(AT, "i1", "send", "timer:x")
    # The same instant in another zone: the same id (as before the memo), and it does not poison the memo.
    local = AT.astimezone(SHANGHAI)
    assert ordered_id(local, "i1", "send", "timer:x") == ordered_id(AT, "i1", "send", "timer:x")
    assert ordered_id(AT, "i2", "send", "") == _ordered_afresh(AT, "i2", "send", "")


def test_utc_iso_prints_each_zone_as_isoformat_does() -> None:
    assert utc_iso(AT) == AT.isoformat() == "2026-12-05T13:30:00.123456+00:00"
    assert utc_iso(AT) == AT.isoformat()  # remembered
    local = AT.astimezone(SHANGHAI)  # equal to AT, printed with its own offset
    assert local == AT
    assert utc_iso(local) == "2026-12-05T21:30:00.123456+08:00"


def _quiet(start: int, end: int) -> pb.ContactPolicy:
    return pb.ContactPolicy(
        quiet_hours=[
            pb.QuietHours(
                start=pb.TimeOfDay(hour=start, timezone="Asia/Shanghai"),
                end=pb.TimeOfDay(hour=end, timezone="Asia/Shanghai"),
            )
        ]
    )


def test_quiet_hours_memo_follows_the_policy_object() -> None:
    gate = policy.PolicyGate(tables, default_zone="Asia/Shanghai", requires_opt_in=False, sensitive=[])
    now = dt.datetime(2026, 12, 5, 14, 0, tzinfo=dt.UTC)  # 22:00 in Shanghai
    night = _quiet(21, 8)
    expected = dt.datetime(2026, 12, 6, 0, 0, tzinfo=dt.UTC)  # 08:00 the next morning in Shanghai
    assert gate._quiet_until(night, pb.CHANNEL_TYPE_APP_PUSH, now) == expected
    assert gate._quiet_until(night, pb.CHANNEL_TYPE_APP_PUSH, now) == expected  # remembered
    # A new policy (a refresh reads one per version) at the same now: worked out for it, not taken from the memo.
    evening = _quiet(23, 7)
    assert gate._quiet_until(evening, pb.CHANNEL_TYPE_APP_PUSH, now) is None
    for policy_, channel in ((night, pb.CHANNEL_TYPE_SMS), (evening, pb.CHANNEL_TYPE_SMS)):
        afresh = policy.quiet_until(policy_, channel, now, "Asia/Shanghai")
        assert gate._quiet_until(policy_, channel, now) == afresh
    # A time in another zone is not remembered (its key would equal the UTC one's), and gives the same answer.
    assert gate._quiet_until(night, pb.CHANNEL_TYPE_APP_PUSH, now.astimezone(dt.timezone(dt.timedelta(hours=8)))) == (
        expected
    )
