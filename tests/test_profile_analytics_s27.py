"""Findings of the analytics walk of session 27: paths could not find a screen longer than its column or holding a
NUL, as it was sent; a funnel split by a list tag made a group per order of its elements, labelled by Python's text
(a time too), and one split by a score had no bound on its results; which 16 of an event's properties were retained
followed the protobuf map's order, which changes from one process to the next."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.analytics import MAX_SPLIT_VALUES
from svc_profile.features import MAX_STORED_PROPERTIES, _scalar_properties

S = 1_000_000
CRM = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_IMPORT, writer="crm")
LONG = "fund/detail?code=000001&" + "x" * 300
NUL = "home\x00v2"


def test_paths_find_a_long_or_nul_screen_as_it_was_sent(tmp_path: Path) -> None:
    t0 = time.time_ns() // 1000 - DAY
    events = [
        event("page_view", "u1", at_us=t0, session_id="s1", screen=LONG),
        event("page_view", "u1", at_us=t0 + S, session_id="s1", screen="buy"),
        event("page_view", "u2", at_us=t0, session_id="s2", screen=NUL),
        event("page_view", "u2", at_us=t0 + S, session_id="s2", screen="sell"),
    ]
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.consumer.handle(events, "1")
        for screen, after in ((LONG, "buy"), (NUL, "sell")):
            paths, sessions = app.analytics.paths(screen, 1, True, None, None, 10)
            assert (paths, sessions) == ([((after,), 1)], 1), screen
        # The stored form names them backwards: the first 256 characters, the NUL written out.
        paths, _ = app.analytics.paths("buy", 1, False, None, None, 10)
        assert paths == [((LONG[:256],), 1)]
        paths, _ = app.analytics.paths("sell", 1, False, None, None, 10)
        assert paths == [(("home\\x00v2",), 1)]


def _view_and_buy(users, t0: int) -> list:
    return [e for u in users for e in (event("view", u, at_us=t0), event("buy", u, at_us=t0 + S))]


def _write(app, user: str, tag: str, value: types_pb2.Value) -> None:
    app.tags.write([pb.TagWrite(user=ref(user), tag_name=tag, value=value)], CRM, "")


def test_a_funnel_split_by_a_list_or_time_tag_labels_one_group_per_value(tmp_path: Path) -> None:
    t0 = time.time_ns() // 1000 - DAY
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.consumer.handle(_view_and_buy("abcd", t0), "1")
        for name, kind in (("held", types_pb2.VALUE_TYPE_STRING_LIST), ("opened", types_pb2.VALUE_TYPE_TIMESTAMP)):
            definition = pb.TagDefinition(name=name, external=pb.ExternalTag(writer="crm"), value_type=kind)
            app.definitions.create_tag(definition)
        for user, values in (("a", ["bond", "stock"]), ("b", ["stock", "bond", "stock"]), ("c", ["bond"])):
            _write(app, user, "held", types_pb2.Value(string_list_value=types_pb2.StringList(values=values)))
        opened = types_pb2.Value()
        opened.timestamp_value.FromMicroseconds(1_700_000_000_000_000)
        _write(app, "a", "opened", opened)
        steps = [pb.FunnelStep(event_type="view"), pb.FunnelStep(event_type="buy")]
        held = app.analytics.funnel(steps, 60, t0 - S, t0 + DAY, split_tag="held")
        assert [(r.split_value, r.steps[0].count) for r in held[1:]] == [
            ("(none)", 1),
            ('["bond", "stock"]', 2),  # a's and b's: one group whatever the order or repeats
            ('["bond"]', 1),
        ]
        times = app.analytics.funnel(steps, 60, t0 - S, t0 + DAY, split_tag="opened")
        assert [r.split_value for r in times[1:]] == ["(none)", "2023-11-14T22:13:20Z"]


def test_a_funnel_split_by_a_tag_of_too_many_values_is_refused(tmp_path: Path) -> None:
    t0 = time.time_ns() // 1000 - DAY
    users = [f"u{i}" for i in range(MAX_SPLIT_VALUES + 1)]
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.consumer.handle(_view_and_buy(users, t0), "1")
        definition = pb.TagDefinition(
            name="score", external=pb.ExternalTag(writer="crm"), value_type=types_pb2.VALUE_TYPE_DOUBLE
        )
        app.definitions.create_tag(definition)
        for i, user in enumerate(users):
            _write(app, user, "score", types_pb2.Value(double_value=i / 100))
        steps = [pb.FunnelStep(event_type="view"), pb.FunnelStep(event_type="buy")]
        with pytest.raises(InvalidArgument, match=f"has {MAX_SPLIT_VALUES + 1} values.*at most {MAX_SPLIT_VALUES}"):
            app.analytics.funnel(steps, 60, t0 - S, t0 + DAY, split_tag="score")
        _write(app, users[-1], "score", types_pb2.Value(double_value=0.0))  # as many values as allowed: answered
        results = app.analytics.funnel(steps, 60, t0 - S, t0 + DAY, split_tag="score")
        assert len(results) == 1 + MAX_SPLIT_VALUES


def test_the_properties_a_retained_event_keeps_do_not_depend_on_the_maps_order() -> None:
    properties = {f"p{i:02d}": types_pb2.Value(string_value=f"v{i}") for i in range(20)}
    names = sorted(properties)
    for seed in range(5):
        shuffled = list(properties.items())
        random.Random(seed).shuffle(shuffled)
        kept = _scalar_properties(dict(shuffled))
        assert sorted(kept) == names[:MAX_STORED_PROPERTIES]
    few = dict(list(properties.items())[:MAX_STORED_PROPERTIES])
    assert sorted(_scalar_properties(few)) == sorted(few)  # all kept, whatever the order
