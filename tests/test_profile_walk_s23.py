"""Findings of the svc_profile identity walk of 2026-12-07 (session 23): a placeholder phone or fund-account id ("null",
"0", a blank) reached svc_profile as the pseudonym svc_collect made of it, which no placeholder check recognised, so
every event carrying one was linked to one person and merged people who share nothing; full-width placeholders and
"(null)" passed as ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from profile_helpers import (
    ANONYMOUS,
    CUSTOMER,
    collector,
    event,
    profile_app,
    profile_settings,
    publish,
    read_batches,
    ref,
)

from svc_common.conditions import to_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.model import decode

PHONE = types_pb2.ID_TYPE_PHONE_PSEUDONYM
FUND_ACCOUNT = types_pb2.ID_TYPE_FUND_ACCOUNT


def _with_ids(e, *ids: tuple[int, str]):
    for id_type, value in ids:
        e.identities.add(type=id_type, value=value)
    return e


def test_placeholder_phones_and_fund_accounts_stored_as_pseudonyms_link_nobody(tmp_path: Path) -> None:
    events = [
        _with_ids(
            event("login", user_id="C100", anonymous_id="dev-1"),
            (PHONE, "null"),
            (FUND_ACCOUNT, "0"),
            (PHONE, "ＮＵＬＬ"),
        ),
        # Another prospect's alias with the same placeholders, spelled otherwise: merged into C100 before.
        _with_ids(event("$alias", anonymous_id="dev-2"), (PHONE, "NULL"), (FUND_ACCOUNT, " 0 ")),
        _with_ids(event("page_view", anonymous_id="dev-3"), (PHONE, "+86 0"), (FUND_ACCOUNT, " ")),
        _with_ids(event("$alias", anonymous_id="dev-5"), (PHONE, "ＮＵＬＬ"), (FUND_ACCOUNT, "０")),
        _with_ids(event("page_view", anonymous_id="dev-4"), (PHONE, "13912345678")),  # a real one: linked
    ]
    with collector(tmp_path) as collect:
        publish(collect.address, events)
        (batch,) = read_batches(collect.address, batch_size=10)
        assert all(i.value.startswith("ps1:") for e in batch[0] for i in e.identities)  # as svc_collect stores them
        with profile_app(profile_settings(tmp_path)) as app:
            app.consumer.handle(*batch)
            profiles = app.profiles
            customer = profiles.get(ref("C100"), [], frozenset())
            devices = ("dev-2", "dev-3", "dev-5")
            owners = {d: profiles.get(ref(d, ANONYMOUS), [], frozenset()).profile_id for d in devices}
            assert customer.profile_id not in owners.values() and len(set(owners.values())) == 3
            held = {i.identity.type for i in customer.identities}
            assert PHONE not in held and FUND_ACCOUNT not in held
            real = profiles.get(ref("dev-4", ANONYMOUS), [], frozenset())
            assert profiles.get(ref("13912345678", PHONE), [], frozenset()).profile_id == real.profile_id
            for value in ("null", "Null", "+86 0", "０"):
                with pytest.raises(InvalidArgument, match="placeholder"):
                    profiles.get(ref(value, PHONE), [], frozenset())


@pytest.mark.parametrize("value", ["ＮＵＬＬ", "(null)", "<NULL>", " Guest "])
def test_placeholder_spellings_are_not_ids(tmp_path: Path, value: str) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        policy = app.consumer.resolver.policy
        assert policy.key(ANONYMOUS, value) is None
        with pytest.raises(InvalidArgument, match="placeholder"):
            app.profiles.get(ref(value, ANONYMOUS), [], frozenset())


@pytest.mark.parametrize("how", ["login", "link"])
def test_a_merge_keeps_the_absorbed_profiles_static_lists(tmp_path: Path, how: str) -> None:
    """A merge ends the absorbed profile's memberships and re-evaluates the survivor, which no condition brings back
    into a static list: a prospect's device on an uplift list left it at signup, and the customer was not on it."""
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_segment(pb.Segment(segment_id="uplift", static_list=pb.StaticSegment(source="svc_modeling")))
        reads = C.Condition(in_segment=C.SegmentMembership(segment_id="uplift"))
        defs.create_segment(pb.Segment(segment_id="uplift_readers", condition=reads))
        app.consumer.handle([event("page_view", anonymous_id="dev-1")], "c0")
        app.segments.set_static("uplift", [(ANONYMOUS, "dev-1")], True)
        assert app.segments.check("uplift", (ANONYMOUS, "dev-1"))[0]
        app.consumer.handle([event("page_view", user_id="C100")], "c1")  # C100 in the consumer's cache
        if how == "login":
            app.consumer.handle([event("login", user_id="C100", anonymous_id="dev-1")], "c2")
        else:
            app.profiles.link(ref("C100"), types_pb2.Identity(type=ANONYMOUS, value="dev-1"), "", frozenset())
        assert app.segments.check("uplift", (CUSTOMER, "C100"))[0]
        assert app.segments.check("uplift_readers", (CUSTOMER, "C100"))[0]
        assert app.segments.check("uplift", (ANONYMOUS, "dev-1"))[0]  # the same person now


def test_a_merge_carries_a_written_tag_over_an_expired_one(tmp_path: Path) -> None:
    """The winner's value of a written tag won even when it had expired: the person read as having none, though the
    absorbed profile held a live one."""
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_tag(pb.TagDefinition(name="vip", external=pb.ExternalTag(writer="svc_modeling")))
        app.consumer.handle([event("page_view", anonymous_id="dev-1"), event("page_view", user_id="C100")], "c0")
        now = time.time_ns() // 1000
        soon = Timestamp()
        soon.FromMicroseconds(now + 3_600_000_000)
        provenance = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="svc_modeling")
        writes = [
            pb.TagWrite(user=ref("dev-1", ANONYMOUS), tag_name="vip", value=to_proto("gold")),
            pb.TagWrite(user=ref("C100"), tag_name="vip", value=to_proto("silver"), expires_at=soon),
        ]
        assert app.tags.write(writes, provenance, "")[0] == 2
        refs = {"d": ref("dev-1", ANONYMOUS), "c": ref("C100")}
        pids = {name: app.profiles.get(r, [], frozenset()).profile_id for name, r in refs.items()}
        with app.core.writing() as conn:  # two hours on: the winner's silver has expired
            app.core.merge(conn, pids["d"], pids["c"], now + 7_200_000_000)
        with app.core.database.connection() as conn:
            (row,) = app.core.store.load_tags(conn, [pids["c"]])[pids["c"]].values()
        assert (decode(row.tag_value), row.expires_us) == ("gold", None)


def _window(kind: str, seconds: int, filtered: bool) -> C.Condition:
    spec = {"event_type": "fund_buy", "window_seconds": seconds}
    if filtered:
        spec["filter"] = C.Condition(
            comparison=C.Comparison(
                field=C.FieldRef(source=C.FieldRef.SOURCE_EVENT, name="channel"),
                operator=C.OPERATOR_EQ,
                value=to_proto("app"),
            )
        )
    if kind == "event_count":
        return C.Condition(event_count=C.EventCount(min_count=1, **spec))
    return C.Condition(event_absence=C.EventAbsence(**spec))


@pytest.mark.parametrize("kind", ["event_count", "event_absence"])
def test_a_window_counted_from_retained_events_may_not_reach_past_their_retention(tmp_path: Path, kind: str) -> None:
    """A filtered window (or one not of whole days) is counted from the retained events: one longer than they are kept
    was accepted and missed the older events without a word (an absence held for someone who did it)."""
    day = 86_400
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=90)) as app:
        defs = app.definitions
        with pytest.raises(InvalidArgument, match="kept 90 days") as refused:
            defs.create_segment(pb.Segment(segment_id="long", condition=_window(kind, 180 * day, True)))
        assert refused.value.violations[0].field == f"segment.condition.{kind}.window_seconds"
        with pytest.raises(InvalidArgument, match="not a whole number of days"):
            defs.create_tag(pb.TagDefinition(name="odd", condition=_window(kind, 100 * day + 1, False)))
        defs.create_segment(pb.Segment(segment_id="in_reach", condition=_window(kind, 90 * day, True)))
        defs.create_segment(pb.Segment(segment_id="from_buckets", condition=_window(kind, 180 * day, False)))


def test_a_finance_pack_tag_keeps_its_formula_through_updates(tmp_path: Path) -> None:
    """create_tag reserves fin_ names for the pack, but an update could replace a pack tag's formula by a rule of the
    caller's own. Its parameters stay configurable."""
    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        current = defs.get_tag("fin_high_net_worth")
        rule = C.Condition(has_tag=C.TagPresence(tag_name="fin_dormant_activation"))
        with pytest.raises(InvalidArgument, match="keeps its formula") as refused:
            defs.update_tag(pb.TagDefinition(name="fin_high_net_worth", condition=rule), current.version)
        assert refused.value.violations[0].field == "definition.rule"
        changed = pb.TagDefinition()
        changed.CopyFrom(current)
        changed.builtin.parameters["assets_fen"].CopyFrom(to_proto(500_000_000))
        assert defs.update_tag(changed, current.version).version == current.version + 1
