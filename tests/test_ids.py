"""UUIDv7 event ids: version and variant bits right, the millisecond in the top 48 bits, increasing within a
process (also many in one millisecond), and accepted by the collector's id check."""

from __future__ import annotations

import random
import time
import uuid

from svc_collect.validation import UUID_RE
from svc_common.ids import new_event_id, uuid5_text, uuid7
from svc_profile.erasure import ERASED_EVENT_NAMESPACE
from svc_profile.segevents import SEGMENT_EVENT_NAMESPACE


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


def test_uuid5_text_is_the_text_of_uuid5_for_any_name() -> None:
    """System events' ids are uuid5 of their content, made again when they are re-published: the fast form must
    give the very text ``uuid.uuid5`` gives, or a re-publish across the upgrade would be stored twice."""
    rng = random.Random(5)
    alphabet = "abc/-_019 XYZé中文\u00a0\U0001f600"
    names = ["", "p-1/seg/7", "x" * 5000] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80))) for _ in range(3000)
    ]
    for namespace in (SEGMENT_EVENT_NAMESPACE, ERASED_EVENT_NAMESPACE, uuid.NAMESPACE_URL, uuid.uuid4()):
        for name in names:
            assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))
