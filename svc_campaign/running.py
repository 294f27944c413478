"""What the engine keeps of a running journey, and what one batch did."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class RunningJourney:
    journey_id: str
    state: str
    version: int
    priority: int
    purpose: str
    entry_rules: pb.EntryRules
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    since: dt.datetime = EPOCH
    """When the journey last changed (started, resumed, published): a recurring schedule counts from here."""


@dataclass
class BatchStats:
    events: int = 0
    entered: int = 0
    messages: int = 0
    timers_fired: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


__all__ = ["EPOCH", "BatchStats", "RunningJourney"]
