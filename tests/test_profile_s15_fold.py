"""The fold shares the items of small counters (``features._INTS``): no new tuple per counter per event, the same
values and the same stored JSON."""

from __future__ import annotations

from pathlib import Path

from profile_helpers import event, profile_settings

from svc_profile import features
from svc_profile.features import FeatureUpdater
from svc_profile.hot import encode_doc


def test_small_counters_are_shared_items_and_large_ones_new(tmp_path: Path) -> None:
    updater = FeatureUpdater(profile_settings(tmp_path))
    docs = {"p": {"events_total": ("i", 4094), "sessions": ("i", 2)}}
    events = [event("page_view", user_id="U1", session_id=f"s{i}", product_category="fund") for i in range(3)]
    updater.apply(docs, ["p"] * 3, events)
    doc = docs["p"]
    assert doc["sessions"] is features._INTS[5] and doc["views.fund"] is features._INTS[3]
    assert doc["events_total"] == ("i", 4097) and doc["events_total"] is not features._INTS[-1]
    text = encode_doc(doc)
    assert '"events_total":["i",4097]' in text and '"sessions":["i",5]' in text and '"views.fund":["i",3]' in text
