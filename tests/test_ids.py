"""UUIDv7 event ids: version and variant bits right, the millisecond in the top 48 bits, increasing within a
process (also many in one millisecond), and accepted by the collector's id check."""

from __future__ import annotations

import time
import uuid

from svc_collect.validation import UUID_RE
from svc_common.ids import new_event_id, uuid7


def test_layout_and_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after + 1


def test_ids_increase_within_a_process_and_are_unique() -> None:
    ids = [new_event_id() for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 36 and UUID_RE.fullmatch(i) for i in ids[:100])
