"""What svc_collect answered for each event a service published (its outbox: svc_profile's segment changes and
erasures, svc_campaign's ``$message_*`` events). An event counts as published only when the log ACCEPTED it or
already had it (DUPLICATE; one whose payload differs is logged at ERROR: a different event holds its id); a rejected
(quarantined) one stays in its outbox and is sent again after a wait that doubles with each rejection in a row, up to
:data:`RETRY_MAX_SECONDS`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2

log = logging.getLogger("qiming.published")
RETRY_MAX_SECONDS = 3_600.0
"""The longest wait before a rejected event is sent again."""
_TAKEN = frozenset({collect_pb2.EVENT_STATUS_ACCEPTED, collect_pb2.EVENT_STATUS_DUPLICATE})


@dataclass(frozen=True)
class Refusal:
    """Why svc_collect did not take one event (reason without ``ERROR_REASON_``; ``NO_RESULT``: no answer for it)."""

    reason: str
    message: str
    quarantine_id: str


def answers(reply: Any, count: int) -> Iterator[Refusal | None]:
    """For each of the ``count`` events published, in order: None when the log has it, else its refusal. Matched by
    index only (the answer is in request order; the log may spell an id differently)."""
    results = {r.index: r for r in getattr(reply, "results", ())}
    for i in range(count):
        result = results.get(i)
        if result is None:
            yield Refusal("NO_RESULT", "svc_collect's answer has no result for it", "")
        elif result.status in _TAKEN:
            if result.reason == errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH:
                # Sending it again cannot help (the id is taken); only an operator can tell what holds it. Counted as
                # published, so that the outbox moves on, but never silently (walk 2026-12-07).
                log.error(
                    "published event %s was answered DUPLICATE with another payload: the log holds a different event "
                    "under its id, and this one is not stored (%s)",
                    result.event_id,
                    result.message,
                )
            yield None
        else:
            yield Refusal(_reason_name(result.reason), result.message, result.quarantine_id)


def rejections_in_a_row(previous_reason: str | None, previous_count: int | None, refusal: Refusal) -> int:
    """This rejection's number in its episode: one more than before for the same reason, else 1 (a new episode,
    logged at ERROR by the publishers)."""
    return (previous_count or 0) + 1 if previous_reason == refusal.reason else 1


def retry_wait_seconds(first_seconds: float, rejections: int) -> float:
    """The wait before the next try after ``rejections`` in a row: ``first_seconds`` doubling, at most an hour."""
    return min(RETRY_MAX_SECONDS, first_seconds * 2 ** min(rejections - 1, 20))


def _reason_name(value: int) -> str:
    try:
        name = errors_pb2.ErrorReason.Name(value) if value else "UNSPECIFIED"
    except ValueError:  # a reason newer than this release
        return str(value)
    return name.removeprefix("ERROR_REASON_")


__all__ = ["RETRY_MAX_SECONDS", "Refusal", "answers", "rejections_in_a_row", "retry_wait_seconds"]
