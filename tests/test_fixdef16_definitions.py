"""Walk 2026-12-06 findings 2 and 3: definitions are checked against the others inside the writer lock (two
concurrent updates cannot store a cycle; a definition cannot read one archived meanwhile), a tag that active tags or
segments read is not archived (TAG_IN_USE), an archived tag is not silently brought back by an update, and a create
under an archived tag's name says that it is archived. Real SQLite."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

ATTRIBUTE = C.FieldRef.SOURCE_ATTRIBUTE


def branch_is(value: str) -> C.Condition:
    field = C.FieldRef(source=ATTRIBUTE, name="branch")
    return C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto(value)))


def has_tag(name: str) -> C.Condition:
    return C.Condition(has_tag=C.TagPresence(tag_name=name))


def in_segment(segment_id: str) -> C.Condition:
    return C.Condition(in_segment=C.SegmentMembership(segment_id=segment_id))


def either(*conditions: C.Condition) -> C.Condition:
    return C.Condition(any_of=C.ConditionList(conditions=list(conditions)))


class _SignallingLock:
    """The writer lock, telling when ``watched`` asks for it (before it blocks)."""

    def __init__(self, inner: Any, asked: threading.Event) -> None:
        self.inner, self.asked, self.watched = inner, asked, None

    def __enter__(self) -> Any:
        if threading.current_thread() is self.watched:
            self.asked.set()
        return self.inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.inner.__exit__(*exc)


@contextlib.contextmanager
def _paused_first_writer(core: Any) -> Iterator[tuple[_SignallingLock, list]]:
    """The first thread to open a write transaction keeps it open (holding the lock) until the second thread has
    asked for the lock: whatever the second one checked before asking cannot include the first one's write."""
    asked = threading.Event()
    lock = _SignallingLock(core.write_lock, asked)
    real = core.writing
    first: list = []

    @contextlib.contextmanager
    def writing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as conn:
            if first and threading.current_thread() is first[0]:
                first.clear()
                assert asked.wait(30), "the second call never asked for the writer lock"
            yield conn

    core.write_lock, core.writing = lock, writing
    try:
        yield lock, first
    finally:
        core.write_lock, core.writing = lock.inner, real


def race(core: Any, first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``first`` and ``second`` on two threads, ``second`` starting while ``first`` holds its write
    transaction open; each outcome is its result or the exception it raised."""
    outcomes: dict[int, Any] = {}

    def call(i: int, fn: Callable[[], Any]) -> None:
        try:
            outcomes[i] = fn()
        except Exception as exc:  # the test asserts on it
            outcomes[i] = exc

    with _paused_first_writer(core) as (lock, first_thread):
        one = threading.Thread(target=call, args=(1, first))
        two = threading.Thread(target=call, args=(2, second))
        first_thread.append(one)
        lock.watched = two
        one.start()
        two.start()
        one.join(60)
        two.join(60)
    assert not one.is_alive() and not two.is_alive()
    return outcomes[1], outcomes[2]


def test_two_concurrent_tag_updates_cannot_store_a_cycle(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="cyc_a", condition=branch_is("x")))
        defs.create_tag(pb.TagDefinition(name="cyc_b", condition=branch_is("x")))
        a = pb.TagDefinition(name="cyc_a", condition=either(branch_is("x"), has_tag("cyc_b")))
        b = pb.TagDefinition(name="cyc_b", condition=either(branch_is("x"), has_tag("cyc_a")))
        done, refused = race(app.core, lambda: defs.update_tag(a, 0), lambda: defs.update_tag(b, 0))
        assert done.version == 2
        assert isinstance(refused, InvalidArgument), refused
        assert "'cyc_b' depends on itself through 'cyc_a' (a cycle)" in refused.message
        assert refused.violations[0].field == "definition.condition.any_of.conditions[1].has_tag.tag_name"
        assert defs.get_tag("cyc_b").version == 1
        # the stored definitions are acyclic: a person whose branch moves on loses both tags
        app.profiles.upsert_attributes(ref("cyc_user"), {"branch": to_proto("x")}, [], "crm", frozenset())
        app.profiles.upsert_attributes(ref("cyc_user"), {"branch": to_proto("y")}, [], "crm", frozenset())
        tags = app.profiles.get(ref("cyc_user"), ["tags"], frozenset()).tags
        assert [t.name for t in tags] == []


def test_two_concurrent_segment_updates_cannot_store_an_in_segment_cycle(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_segment(pb.Segment(segment_id="seg_a", condition=branch_is("x")))
        defs.create_segment(pb.Segment(segment_id="seg_b", condition=branch_is("x")))
        a = pb.Segment(segment_id="seg_a", condition=either(branch_is("x"), in_segment("seg_b")))
        b = pb.Segment(segment_id="seg_b", condition=either(branch_is("x"), in_segment("seg_a")))
        done, refused = race(app.core, lambda: defs.update_segment(a, 0), lambda: defs.update_segment(b, 0))
        assert done.version == 2
        assert isinstance(refused, InvalidArgument), refused
        assert "in_segment 'seg_a' makes a cycle back to 'seg_b'" in refused.message
        assert refused.violations[0].field == "segment.condition.any_of.conditions[1].in_segment.segment_id"
        assert defs.get_segment("seg_b").version == 1


def test_a_segment_cannot_be_created_reading_one_archived_meanwhile(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_segment(pb.Segment(segment_id="old", condition=branch_is("x")))
        reader = pb.Segment(segment_id="reader", condition=in_segment("old"))
        archived, refused = race(app.core, lambda: defs.archive_segment("old"), lambda: defs.create_segment(reader))
        assert archived.archived
        assert isinstance(refused, InvalidArgument) and "unknown segment 'old'" in refused.message, refused


def test_a_tag_cannot_be_created_reading_one_archived_meanwhile(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="old", condition=branch_is("x")))
        reader = pb.TagDefinition(name="reader", condition=has_tag("old"))
        archived, refused = race(app.core, lambda: defs.archive_tag("old"), lambda: defs.create_tag(reader))
        assert archived.archived
        assert isinstance(refused, InvalidArgument) and "unknown tag 'old'" in refused.message, refused


def test_a_tag_read_by_active_tags_or_segments_is_not_archived(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="is_c3", condition=branch_is("c3")))
        defs.create_segment(pb.Segment(segment_id="c3_people", condition=has_tag("is_c3")))
        score = C.Condition(
            comparison=C.Comparison(
                field=C.FieldRef(source=C.FieldRef.SOURCE_SCORE, name="is_c3"), operator=C.OPERATOR_EXISTS
            )
        )
        defs.create_tag(pb.TagDefinition(name="c3_scored", condition=score))
        with pytest.raises(FailedPrecondition) as refused:
            defs.archive_tag("is_c3")
        assert refused.value.reason == "TAG_IN_USE"
        assert "tag 'c3_scored'" in refused.value.message and "segment 'c3_people'" in refused.value.message
        assert not defs.get_tag("is_c3").archived
        # once its readers are gone it archives, and the readers' membership no longer rests on it
        defs.archive_segment("c3_people")
        defs.archive_tag("c3_scored")
        assert defs.archive_tag("is_c3").archived


def test_an_archived_tag_is_not_updated_back_to_life_and_its_name_says_archived(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        definition = pb.TagDefinition(name="gone", condition=branch_is("x"))
        defs.create_tag(definition)
        defs.archive_tag("gone")
        with pytest.raises(FailedPrecondition) as refused:
            defs.update_tag(definition, 0)
        assert refused.value.reason == "TAG_ARCHIVED" and "create a tag under a new name" in refused.value.message
        assert defs.get_tag("gone").archived and defs.get_tag("gone").version == 1
        assert "gone" not in app.core.engine.tags
        with pytest.raises(AlreadyExists, match="archived") as taken:
            defs.create_tag(definition)
        assert taken.value.reason == "TAG_NAME_TAKEN"


def test_loading_warns_of_active_readers_of_a_tag_archived_before_the_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="is_c3", condition=branch_is("c3")))
        defs.create_segment(pb.Segment(segment_id="c3_people", condition=has_tag("is_c3")))
        t = defs.t["tag_definition"]
        with app.core.writing() as conn:  # as a release without the TAG_IN_USE check left it
            conn.execute(t.update().where(t.c.name == "is_c3").values(archived=True))
        with caplog.at_level("WARNING", logger="qiming.profile"):
            defs.load()
        assert "archived tag 'is_c3' is read by active segment 'c3_people'" in caplog.text


def test_a_stored_segment_cycle_still_loads(tmp_path: Path) -> None:
    """Two segments reading each other (stored by the race before the writer-lock fix): ordering them recursed without
    end (RecursionError at start); now both are ordered and kept."""
    from svc_common.conditions import References
    from svc_profile.rules import SegmentRule

    def reads(other: str) -> References:
        return References(fields=frozenset(), event_windows={}, segments=frozenset({other}), tags=frozenset())

    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        engine = app.core.engine
        engine.set_segments([SegmentRule("a", 1, None, reads("b")), SegmentRule("b", 1, None, reads("a"))])
        assert sorted(engine.segments) == ["a", "b"]
