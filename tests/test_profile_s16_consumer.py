"""Session 16: the consumer thread's work per event (docs/benchmarks.md, "Session 16 (cons)") without changing what
a batch writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from profile_helpers import event, profile_app, profile_settings

from svc_profile.store._tagsql import TAG_WRITE_COLUMNS


def test_a_batch_leaves_no_per_person_sets_behind(tmp_path: Path) -> None:
    """The fold's per-person event types (and view marks, and triggers) are dropped once the batch has evaluated its
    persons: kept until the next batch, they were the most numerous objects the collection after the batch walked.
    The batch's evaluation still used them (a segment of a viewed type is entered)."""
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C
    from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

    with profile_app(profile_settings(tmp_path, None)) as app:
        viewers = C.Condition(event_count=C.EventCount(event_type="fund_view", min_count=1, window_seconds=86_400))
        app.definitions.create_segment(pb.Segment(segment_id="viewers", condition=viewers))
        batch = [event("fund_view", user_id=f"U{i}", product_category="fund", fund_type="bond") for i in range(5)]
        app.consumer.handle(batch, "c0")
        updater = app.consumer.updater
        assert updater.types == {} and updater.triggers == {} and not updater.changed
        pid = app.core.hot.owner[next(iter(app.core.hot.owner))]
        assert "viewers" in {s for s, m in app.core.hot.members[pid].items() if m.is_member}


def _tag_table(app: Any) -> list[tuple[Any, ...]]:
    with app.core.database.connection() as conn:
        rows = conn.execute(sa.text("SELECT * FROM profile_tag ORDER BY profile_id, name")).all()
    return [tuple(bytes(v) if isinstance(v, bytes | memoryview) else v for v in r) for r in rows]


@pytest.mark.parametrize("sensitive", [False, True])
def test_tag_writes_as_tuples_write_what_dicts_write(tmp_path: Path, database_url: str, sensitive: bool) -> None:
    """``upsert_tags(…, columns=…)`` (the consumer's rows as tuples, no dict a row) writes the table as the same
    rows as dicts do, in clear or sealed here (``sensitive``: the tuples become dicts to be sealed)."""
    rows = [
        (f"p{i:03d}", name, f'["i",{i}]', None, "RULE", f"tag:{name}", "2", 7, None, "")
        for i in range(30)
        for name in ("a", "b")
    ]
    tables = []
    for shape in ("dicts", "tuples"):
        with profile_app(profile_settings(tmp_path / shape, database_url, finance_pack=False)) as app:
            store = app.core.store
            seal = {"a"} if sensitive else set()
            with app.core.writing() as conn:
                if shape == "dicts":
                    store.upsert_tags(conn, [dict(zip(TAG_WRITE_COLUMNS, r, strict=True)) for r in rows], True, seal)
                else:
                    store.upsert_tags(conn, rows, True, seal, columns=TAG_WRITE_COLUMNS)
            table = _tag_table(app)
            with app.core.database.connection() as conn:
                read = store.tag_rows(conn, sorted({r[0] for r in rows}))
            tables.append(([r for r in table if r[1] != "a" or not sensitive], read))
    assert tables[0] == tables[1]
    assert tables[1][1]["p007"]["a"].tag_value == ["i", 7] and len(tables[1][0]) == (30 if sensitive else 60)


def test_count_types_is_the_sum_of_count_days_with_or_without_database_sums() -> None:
    """``Person.count_types`` finds its window's first day once (the dormant score's four login types): the same
    total as ``count_days`` per type, from the day buckets or from a recompute's window sums."""
    from svc_profile.model import Days, Person

    clock, now = Days(8), 1_796_576_773_315_049
    today = clock.of(now)
    days = {"login": {today: (2, 0), today - 6: (1, 0), today - 7: (5, 0)}, "app_start": {today - 29: (3, 0)}}
    types = ("login", "$login", "app_start")
    for sums in (None, {("login", clock.first_of_window(now, 7 * 86_400), 0): 11}):
        person = Person("p", days=days, clock=clock, now=now, sums=sums)
        for window in (1, 7, 8, 30, 90):
            expected = sum(person.count_days(t, window * 86_400) for t in types)
            assert person.count_types(types, window) == expected
    assert Person("p", days=days, clock=clock, now=now).count_types(types, 7) == 3
    assert Person("p", days=days, clock=clock, now=now, sums=sums).count_types(types, 7) == 11


def test_the_last_active_day_skips_buckets_without_events() -> None:
    """``finance.lifecycle``'s last active day (a loop now, not ``max`` over a generator): the latest day of any
    active type with a count above zero; none at all leaves the customer without activity."""
    from svc_profile import finance
    from svc_profile.model import Days, Person

    clock, now = Days(8), 1_796_576_773_315_049
    today = clock.of(now)

    class Ctx:
        active_types = ("login", "app_start")

        def created_us(self, person: Person) -> int:
            return now - 400 * 86_400_000_000

    params = dict(finance.DEFAULTS["lifecycle_stage"])

    def stage(days: dict[str, dict[int, tuple[int, int]]]) -> tuple[str, str]:
        return finance.lifecycle(Person("p", days=days, clock=clock, now=now, has_customer=True), params, Ctx())

    zero_today = {"login": {today: (0, 0), today - 40: (1, 0)}, "quote_view": {today: (5, 0)}}
    assert stage(zero_today) == stage({"login": {today - 40: (1, 0)}}) != stage({"login": {today: (1, 0)}})
    assert stage({"app_start": {today - 2: (1, 0)}, "login": {today - 50: (2, 0)}}) == stage(
        {"app_start": {today - 2: (1, 0)}}
    )
    assert stage({"login": {today - 9: (0, 0)}}) == stage({})


def test_fund_preference_takes_the_first_of_equal_shares() -> None:
    """``fund_preference`` (a loop now, not ``max`` with a key per type): the type of the highest share, among equal
    shares the first in ``FUND_TYPES``; holdings count with views, booleans and text are no holdings."""
    from svc_profile import finance
    from svc_profile.model import Person

    params = {"attention_weight": 0.5, "holding_weight": 0.5}

    def preferred(views: dict[str, int], held: dict[str, object] | None = None) -> object:
        features = {f"views.fund.{t}": n for t, n in views.items()}
        attributes = {f"fund_holding_{t}_fen": v for t, v in (held or {}).items()}
        return finance.fund_preference(Person("p", attributes=attributes, features=features), params, None)

    assert preferred({"qdii": 2, "bond": 2, "index": 1}) == "bond"
    assert preferred({"hybrid": 3, "index": 3}) == "index"
    assert preferred({"bond": 1, "qdii": 1}, {"qdii": 500, "equity": True, "bond": "x"}) == "qdii"
    assert preferred({}) is None
