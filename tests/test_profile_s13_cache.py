"""The log consumer's hot cache holding features decoded (session 13): the batch folds into the cache's own dicts, so
what the cache holds after any sequence of batches, crashes and replays must be exactly what is stored; and the
one-time C encoder writes the same text as ``json.JSONEncoder``."""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import time
from pathlib import Path

import pytest
from profile_helpers import profile_app, profile_settings
from sqlalchemy import select
from test_profile_pipeline import _batches

from svc_profile.hot import encode_doc
from svc_profile.model import compact_json, document_json

STANDARD = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@pytest.mark.parametrize(
    "value",
    [
        {"a": ["i", 1], "b": ("t", 1_796_460_428_695_232), "_s": "s1-2", "v.基金": ("i", 3)},
        {"k": ["s", 'quote " \\ \n \u2028 值'], "d": ["d", 0.1], "n": None, "b": True, "m": ("m", -(10**20))},
        {"x": ["d", math.inf], "y": ["d", -math.inf], "z": ["d", math.nan], "e": [], "o": {}},
        "值",
        1.5,
        ["l", ["a", "b"]],
        {},
    ],
)
def test_compact_json_is_the_standard_encoders_text(value: object) -> None:
    assert compact_json(value) == STANDARD(value)
    assert encode_doc(value) == STANDARD(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": ("i", 1), "b": ("t", 1_796_460_428_695_232), "_s": "s1-2", "v.基金": ("i", 3), "m": ("m", -5)},
        {"k": ("s", 'quote " \\ \n \t \x00 \x1f \x7f \u2028 值 😀'), "d": ("d", 0.1), "b": True, "e": [], "o": {}},
        {"n": None, "note": "null"},  # orjson could write these; the check for null hands them over all the same
        {"x": ("d", math.inf), "y": ("d", -math.inf), "z": ("d", math.nan)},  # orjson: null
        {"big": ("i", 2**64)},  # orjson: refused
        {"s": "\ud800"},  # a lone surrogate; orjson: refused
        {1: ("i", 2)},  # a key that is not a string; orjson: refused
    ],
)
def test_document_json_writes_the_standard_encoders_text(value: object) -> None:
    assert document_json(value) == STANDARD(value)


def test_document_json_floats_parse_back_equal() -> None:
    """Its one difference from the standard text: an exponent without its zero (``1e-7``, not ``1e-07``)."""
    value = {"d": ["d", 1e-7], "e": ["d", 1e16], "f": ["d", 123456789.123], "g": ["d", -0.0]}
    assert json.loads(document_json(value)) == value
    assert document_json(value) == STANDARD(value).replace("e-07", "e-7")


def test_document_json_refuses_what_json_refuses() -> None:
    for value in ({"a": object()}, {1.5j: 1}, {"at": dt.datetime(2026, 12, 7, tzinfo=dt.UTC)}):
        with pytest.raises(TypeError):
            document_json(value)  # orjson would write the datetime: the standard library refuses it


def test_compact_json_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        compact_json({"a": object()})
    with pytest.raises(TypeError):
        compact_json({1.5j: 1})


def test_cached_features_are_the_stored_ones_after_crashes_and_replays(tmp_path: Path, database_url: str) -> None:
    """A varied stream (new persons, merges, trades, views) through ``submit``, one batch crashing after its
    features were folded and written, then replayed: every person the cache holds has exactly the stored features,
    and the cached documents hold no list (the fold replaces items by tuples: the collector stops tracking them)."""
    batches = _batches(6, persons=50, n=700)
    with profile_app(profile_settings(tmp_path, database_url, hot_persons=100_000)) as app:
        for i, batch in enumerate(batches):
            if i in (len(batches) // 3, 2 * len(batches) // 3):
                app.consumer.fail_after_features = True
                with pytest.raises(RuntimeError):
                    app.consumer.submit(batch, f"c{i}")
                app.consumer.fail_after_features = False
                assert not app.core.hot.rows  # the folded documents are gone with the batch
            app.consumer.submit(batch, f"c{i}")
        app.consumer.drain()
        hot = app.core.hot
        assert hot.hits > 0 and hot.rows
        person = app.core.store.t["person"]
        with app.core.database.connection() as conn:
            stored = {r.profile_id: r.features for r in conn.execute(select(person.c.profile_id, person.c.features))}
        gc.collect()
        for pid, row in hot.rows.items():
            features = row[4]
            assert json.loads(encode_doc(features)) == stored[pid]
            assert all(type(item) is not list for item in features.values())
            assert not gc.is_tracked(features)


def test_the_lifecycle_tag_takes_the_stage_just_evaluated_and_kept(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch evaluates a person's stage once: the ``lifecycle_stage`` tag (same formula, same parameters) takes
    the stage when it stayed, and evaluates again when it changed (REACTIVATED after CHURNED, NEW to ACTIVE ...)."""
    from profile_helpers import DAY, event

    from svc_profile import finance

    calls: list[str] = []
    original = finance.lifecycle

    def counted(person, p, ctx):  # type: ignore[no-untyped-def]
        calls.append(person.profile_id)
        return original(person, p, ctx)

    monkeypatch.setattr(finance, "lifecycle", counted)
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("login", user_id=f"A{i}", at_us=now - DAY) for i in range(5)], "c1")
        app.consumer.handle([event("login", user_id="R1", at_us=now - 100 * DAY)], "c2")
        calls.clear()
        app.consumer.handle([event("login", user_id=f"A{i}") for i in range(5)], "c3")  # all stay where they are
        assert len(calls) == 5
        calls.clear()
        app.consumer.handle([event("login", user_id="R1")], "c4")  # CHURNED -> REACTIVATED: the tag asks again
        assert len(calls) == 2
        t, person = app.core.store.t["tag"], app.core.store.t["person"]
        with app.core.database.connection() as conn:
            stages = {r.profile_id: r.lifecycle_stage for r in conn.execute(select(person))}
            tags = {r.profile_id: r.tag_value for r in conn.execute(select(t).where(t.c.name == "lifecycle_stage"))}
        assert "REACTIVATED" in stages.values() and len(tags) == len(stages) == 6
        assert {pid: json.loads(v) if isinstance(v, str) else v for pid, v in tags.items()} == {
            pid: ["s", stage.lower()] for pid, stage in stages.items()
        }
