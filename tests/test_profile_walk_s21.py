"""What the acceptance walk of svc_profile on 2026-12-07 found (session 21): each test fails on the code before its
fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_helpers import ANONYMOUS, CUSTOMER, event, profile_app, profile_settings, ref

from svc_common.conditions import from_proto
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb


def _carrying(event_type: str, device: str, customer: str) -> object:
    carrier = event(event_type, anonymous_id=device, session_id="s1")
    carrier.identities.add(type=CUSTOMER, value=customer)
    return carrier


# Finding 1 (major): a person who gains a customer number from the log is evaluated in full, as one linked by
# LinkIdentities is: a stage and the dormant score depend on having a customer, which no event type's rules name.
@pytest.mark.parametrize("event_type", ["$alias", "page_view"])
def test_a_device_profile_that_gains_a_customer_number_from_the_log_is_evaluated_in_full(
    tmp_path: Path, database_url: str, event_type: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("page_view", anonymous_id="dev-9", session_id="s0")], "c1")
        before = app.profiles.get(ref("dev-9", ANONYMOUS), ["tags"], frozenset())
        assert before.lifecycle_stage == pb.LIFECYCLE_STAGE_PROSPECT
        assert "fin_dormant_activation" not in {t.name for t in before.tags}
        app.consumer.handle([_carrying(event_type, "dev-9", "C9200")], "c2")
        after = app.profiles.get(ref("C9200"), ["tags"], frozenset())
        assert after.profile_id == before.profile_id
        tags = {t.name: from_proto(t.value) for t in after.tags}
        assert after.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        assert tags["lifecycle_stage"] == "new" and tags["fin_dormant_activation"] == 0
        # What a full evaluation of everyone gives: the same.
        app.consumer.handle([event("page_view", user_id="C9200", session_id="s2")], "c3")
        again = app.profiles.get(ref("C9200"), ["tags"], frozenset())
        assert again.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
