"""svc_modeling over real svc_collect and svc_profile processes (SQLite, real gRPC): point-in-time datasets from the
event log (no event after the snapshot counts), labels from the horizon after it, a journey's messages as the
treatment, segment populations for scoring, what-if and plans, plans exported as static segments, the AIPL
funnel over profiles, and a precise status when a dependency is missing."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
from collect_helpers import KEYRING, make_event
from conftest import free_port
from modeling_helpers import finished, modeling_settings, running_service
from profile_helpers import collect_and_profile, wait_for

from svc_common.conditions import to_proto
from svc_common.errors import FailedPrecondition, NotFound, Unavailable
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from svc_common.protection import JsonKeyProvider, SystemEventSigner
from svc_modeling.frame import Frame
from svc_modeling.service import ModelingService

DAY_US = 86_400_000_000
NOW_US = time.time_ns() // 1000
SNAPSHOT_US = NOW_US - 40 * DAY_US
HORIZON_DAYS = 10
CUSTOMERS = 80
VIP = [f"c{i:03d}" for i in range(0, CUSTOMERS, 4)]
SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))


def customer(i: int) -> str:
    return f"c{i:03d}"


def logins_before(i: int) -> int:
    return 1 + i % 6


def buys(i: int) -> bool:
    """Bought a fund within the horizon after the snapshot: more logins before it, more likely (not always)."""
    return (logins_before(i) >= 4) != (i % 7 == 0)


def sent(user: str, at_us: int, journey: str):
    """svc_campaign's $message_sent, signed as it publishes them (svc_collect refuses an unsigned one)."""
    return SIGNER.sign(make_event("$message_sent", user, occurred_at_us=at_us, journey_id=journey))


def the_log() -> list:
    events = []
    for i in range(CUSTOMERS):
        c = customer(i)
        for k in range(logins_before(i)):  # 2, 3, ... days before the snapshot: inside its 7/30/90-day windows
            events.append(make_event("login", c, occurred_at_us=SNAPSHOT_US - (2 + 3 * k) * DAY_US))
        events.append(make_event("fund_view", c, occurred_at_us=SNAPSHOT_US - 3 * DAY_US, product_category="fund"))
        for k in range(3):  # after the snapshot: never in its features
            events.append(make_event("login", c, occurred_at_us=SNAPSHOT_US + (1 + k) * DAY_US))
        if buys(i):
            events.append(make_event("trade_filled", c, occurred_at_us=SNAPSHOT_US + 2 * DAY_US, product_type="fund"))
        elif i % 6 == 2:  # a stock trade inside the horizon: the label's filter says fund
            events.append(make_event("trade_filled", c, occurred_at_us=SNAPSHOT_US + 2 * DAY_US, product_type="stock"))
        elif i % 6 == 1:  # a fund trade after the horizon
            events.append(
                make_event(
                    "trade_filled", c, occurred_at_us=SNAPSHOT_US + (HORIZON_DAYS + 3) * DAY_US, product_type="fund"
                )
            )
        journey = "j1" if i % 2 == 0 else "j2"
        events.append(sent(c, SNAPSHOT_US - DAY_US, journey))
    # j1 reaches an odd customer only after the snapshot: not treated at the snapshot
    events.append(sent(customer(1), SNAPSHOT_US + DAY_US, "j1"))
    # a customer first seen after the snapshot is not in its population
    events.append(make_event("login", "late", occurred_at_us=SNAPSHOT_US + DAY_US))
    return events


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    work = tmp_path_factory.mktemp("modeling_profiles")
    events = the_log()
    with collect_and_profile(work, events) as (collect, profile):
        with grpc.insecure_channel(profile.address) as channel:
            profiles = pgrpc.ProfileServiceStub(channel)
            rows = [
                ppb.UpsertAttributesRequest(
                    user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer(i)),
                    attributes={"branch": to_proto("SH01" if i % 3 else "BJ01"), "age": to_proto(20 + i % 40)},
                    source_system="crm",
                )
                for i in range(CUSTOMERS)
            ]
            profiles.ImportAttributes(iter([ppb.ImportAttributesRequest(rows=rows)]), timeout=60)
            last = customer(CUSTOMERS - 1)

            def caught_up() -> bool:
                ref = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=last)
                found = profiles.GetProfile(ppb.GetProfileRequest(user=ref, parts=["features"]), timeout=10)
                return found.profile.features["events_total"].int_value == len(
                    [e for e in events if e.user_id == last and not e.event_type.startswith("$message_")]
                )

            wait_for(caught_up, timeout=60, interval=0.2)
            segments = pgrpc.SegmentServiceStub(channel)
            segments.CreateSegment(
                ppb.CreateSegmentRequest(
                    segment=ppb.Segment(segment_id="vip", static_list=ppb.StaticSegment(source="test"))
                ),
                timeout=10,
            )
            refs = [types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=c) for c in VIP]
            segments.SetStaticMembers(
                iter([ppb.SetStaticMembersRequest(segment_id="vip", users=refs, replace=True)]), timeout=30
            )
        yield collect, profile


@pytest.fixture(scope="module")
def modeling(suite, tmp_path_factory):
    collect, profile = suite
    settings = modeling_settings(
        tmp_path_factory.mktemp("modeling"), profile_address=profile.address, collect_address=collect.address
    )
    with running_service(settings) as service:
        yield service


def label_rule() -> pb.LabelRule:
    fund = C.Condition(
        comparison=C.Comparison(
            field=C.FieldRef(source=C.FieldRef.SOURCE_EVENT_PROPERTY, name="product_type"),
            operator=C.OPERATOR_EQ,
            value=to_proto("fund"),
        )
    )
    return pb.LabelRule(
        name="bought_fund", event_type="trade_filled", filter=fund, horizon_seconds=HORIZON_DAYS * 86_400
    )


def build(service: ModelingService, **fields) -> tuple[pb.Dataset, Frame]:
    request = pb.BuildFromProfilesRequest(name=fields.pop("name", "snapshot"), **fields)
    job = finished(service, service.snapshots.build_from_profiles(request))
    return service.catalog.load(job.result_name)


def at(us: int):
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def test_a_snapshot_sees_only_the_past_and_labels_the_horizon_after_it(modeling: ModelingService) -> None:
    dataset, frame = build(modeling, snapshot_at=at(SNAPSHOT_US), label=label_rule(), treatment_source="journey:j1")
    data = frame.data.set_index("customer_id")
    assert list(data.index) == sorted(customer(i) for i in range(CUSTOMERS))  # "late" came after the snapshot
    for i in (0, 1, 5, 77):
        row = data.loc[customer(i)]
        # logins before the snapshot only (three more after it are not counted), named as svc_profile names them
        assert row["count.login.90d"] == logins_before(i)
        assert row["count.login.7d"] == sum(1 for k in range(logins_before(i)) if 2 + 3 * k <= 6)
        assert row["count.fund_view.30d"] == 1 and row["views.fund"] == 1
        assert row["events_total"] == logins_before(i) + 1  # logins, the fund view (a $message_sent is not counted)
        assert row["bought_fund"] == (1 if buys(i) else 0)  # the stock trade and the late fund trade do not count
        assert row["treatment"] == ("j1" if i % 2 == 0 else "control")
        assert row["branch"] == ("SH01" if i % 3 else "BJ01") and row["age"] == 20 + i % 40
    assert "count.trade_filled.30d" not in data.columns  # every trade came after the snapshot
    roles = {c.name: c.role for c in frame.columns}
    assert roles["bought_fund"] == pb.COLUMN_ROLE_LABEL and roles["treatment"] == pb.COLUMN_ROLE_TREATMENT
    assert roles["last_seen_at"] == pb.COLUMN_ROLE_IGNORED and roles["count.login.30d"] == pb.COLUMN_ROLE_FEATURE
    assert dataset.origin == "profile_snapshot" and dataset.customer_id_column == "customer_id"
    lineage = dataset.lineage
    assert "everyone seen in the event log" in lineage["population"] and '"trade_filled"' in lineage["label_rule"]
    assert lineage["snapshot_at"].startswith(pd.Timestamp(SNAPSHOT_US, unit="us").strftime("%Y-%m-%d"))
    assert lineage["treated"] == str(CUSTOMERS // 2) and "as of" in lineage["attributes_from"]


def test_an_absent_label_inverts_and_features_restrict_the_columns(modeling: ModelingService) -> None:
    rule = label_rule()
    rule.absent, rule.name = True, "no_fund"
    _, frame = build(
        modeling,
        snapshot_at=at(SNAPSHOT_US),
        label=rule,
        segment_id="vip",
        features=["count.login.30d", "count.login.14d", "branch"],
    )
    assert [c.name for c in frame.columns] == ["customer_id", "count.login.30d", "count.login.14d", "branch", "no_fund"]
    data = frame.data.set_index("customer_id")
    assert sorted(data.index) == sorted(VIP)
    for c in VIP:
        i = int(c[1:])
        assert data.loc[c, "no_fund"] == (0 if buys(i) else 1)
        assert data.loc[c, "count.login.14d"] == sum(1 for k in range(logins_before(i)) if 2 + 3 * k <= 13)


def test_a_snapshot_now_has_the_live_profile_features(modeling: ModelingService, suite) -> None:
    _, profile = suite
    _, frame = build(modeling, name="now")
    data = frame.data.set_index("customer_id")
    with grpc.insecure_channel(profile.address) as channel:
        profiles = pgrpc.ProfileServiceStub(channel)
        for i in (3, 4):
            ref = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer(i))
            live = profiles.GetProfile(ppb.GetProfileRequest(user=ref, parts=["features"]), timeout=10).profile
            counts = {k: v.int_value for k, v in live.features.items() if k.startswith(("count.", "events_total"))}
            assert counts, "svc_profile shows no counts"
            for name, value in counts.items():
                assert data.loc[customer(i), name] == value, name
            assert (
                data.loc[customer(i), "last_seen_at"] == live.features["last_seen_at"].timestamp_value.ToMicroseconds()
            )


def test_bad_builds_say_what_to_do(modeling: ModelingService, tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        modeling.snapshots.build_from_profiles(
            pb.BuildFromProfilesRequest(name="x", snapshot_at=at(NOW_US - 2 * DAY_US), label=label_rule())
        )
    assert "not known yet" in raised.value.message and "build this snapshot after" in raised.value.message
    assert raised.value.reason == "LABEL_HORIZON_NOT_OVER"
    with pytest.raises(FailedPrecondition):
        modeling.snapshots.build_from_profiles(pb.BuildFromProfilesRequest(name="x", snapshot_at=at(NOW_US + DAY_US)))
    with pytest.raises(NotFound) as missing:
        modeling.snapshots.build_from_profiles(pb.BuildFromProfilesRequest(name="x", segment_id="nobody_here"))
    assert "nobody_here" in missing.value.message
    dead = f"127.0.0.1:{free_port()}"
    settings = modeling_settings(tmp_path, profile_address=modeling.settings.profile_address, collect_address=dead)
    with running_service(settings) as cut_off:
        with pytest.raises(Unavailable) as down:
            cut_off.snapshots.build_from_profiles(pb.BuildFromProfilesRequest(name="x"))
        assert dead in down.value.message and "svc_collect" in down.value.message
    with running_service(modeling_settings(tmp_path / "alone")) as alone:
        with pytest.raises(Unavailable) as unset:
            alone.snapshots.build_from_profiles(pb.BuildFromProfilesRequest(name="x"))
        assert "profile_address" in unset.value.message


def train(service: ModelingService, dataset: pb.Dataset) -> None:
    job = service.models.train(
        pb.TrainModelRequest(
            model_name="fund_buyer",
            dataset_id=dataset.dataset_id,
            label_column="bought_fund",
            feature_columns=["count.login.90d", "age"],
            hyperparameters={"n_estimators": "20", "min_child_samples": "5", "calibration": "none"},
        )
    )
    finished(service, job)


def test_scoring_a_segment_from_a_fresh_snapshot_writes_tags(modeling: ModelingService, suite) -> None:
    dataset, _ = build(modeling, name="train", snapshot_at=at(SNAPSHOT_US), label=label_rule())
    train(modeling, dataset)
    job = finished(
        modeling, modeling.models.score_customers(pb.ScoreCustomersRequest(model_name="fund_buyer", segment_id="vip"))
    )
    table, scores = modeling.catalog.load(job.result_name)
    assert sorted(scores.data["customer_id"]) == sorted(VIP)
    assert table.lineage["profile_writeback"] == f"written {len(VIP)}"
    assert "segment:vip" in table.lineage["source_population"]
    everyone = finished(modeling, modeling.models.score_customers(pb.ScoreCustomersRequest(model_name="fund_buyer")))
    all_scores = modeling.catalog.load(everyone.result_name)[1].data
    assert len(all_scores) == CUSTOMERS + 1  # "late" is seen in the log now
    # a dataset restricted to a segment
    restricted = finished(
        modeling,
        modeling.models.score_customers(
            pb.ScoreCustomersRequest(model_name="fund_buyer", dataset_id=dataset.dataset_id, segment_id="vip")
        ),
    )
    assert sorted(modeling.catalog.load(restricted.result_name)[1].data["customer_id"]) == sorted(VIP)
    _, profile = suite
    with grpc.insecure_channel(profile.address) as channel:
        tags = pgrpc.TagServiceStub(channel)
        ref = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=VIP[1])
        held = {t.name: t for t in tags.ListUserTags(ppb.ListUserTagsRequest(user=ref), timeout=10).tags}
        assert held["score_fund_buyer"].provenance.writer == "model:fund_buyer"
    with pytest.raises(NotFound):
        modeling.models.score_customers(pb.ScoreCustomersRequest(model_name="fund_buyer", segment_id="nobody_here"))


def uplift_dataset(modeling: ModelingService) -> pb.Dataset:
    rng = np.random.default_rng(3)
    n = 600
    x = rng.normal(size=n)
    arm = rng.choice(["control", "coupon"], size=n)
    y = 0.3 * x + np.where(arm == "coupon", np.maximum(x, 0), 0) + rng.normal(scale=0.3, size=n)
    ids = [customer(i) if i < CUSTOMERS else f"x{i}" for i in range(n)]
    data = pd.DataFrame({"customer_id": ids, "x": x, "arm": arm, "y": y})
    definition = pb.Dataset(name="uplift", customer_id_column="customer_id")
    return modeling.upload_file(definition, pb.FILE_FORMAT_CSV, data.to_csv(index=False).encode()).dataset


def test_a_plan_for_a_segment_is_exported_as_static_segments(modeling: ModelingService, suite) -> None:
    dataset = uplift_dataset(modeling)
    finished(
        modeling,
        modeling.uplift.train(
            pb.TrainUpliftRequest(
                model_name="coupon",
                dataset_id=dataset.dataset_id,
                outcome_column="y",
                treatment_column="arm",
                control_value="control",
                interventions=[pb.Intervention(name="coupon", cost_fen=100)],
                feature_columns=["x"],
                bootstrap_rounds=20,
            )
        ),
    )
    request = pb.PlanInterventionsRequest(
        model_name="coupon", dataset_id=dataset.dataset_id, segment_id="vip", export_segment_prefix="spring"
    )
    job = finished(modeling, modeling.uplift.plan(request))
    plan, rows = modeling.catalog.load(job.result_name)
    assert sorted(rows.data["customer_id"]) == sorted(VIP)
    planned = sorted(rows.data.loc[rows.data["intervention"] == "coupon", "customer_id"])
    assert 0 < len(planned) < len(VIP)
    assert plan.lineage["segments"] == "spring_coupon" and plan.lineage["segment_id"] == "vip"
    _, profile = suite
    with grpc.insecure_channel(profile.address) as channel:
        segments = pgrpc.SegmentServiceStub(channel)

        def members() -> list[str]:
            pages = segments.ExportMembers(
                ppb.ExportMembersRequest(segment_id="spring_coupon", id_types=[types_pb2.ID_TYPE_CUSTOMER]), timeout=30
            )
            return sorted(i.value for p in pages for m in p.members for i in m.identities)

        assert members() == planned
        # re-planning with a budget for two coupons replaces the members
        request.budget_fen = 200
        finished(modeling, modeling.uplift.plan(request))
        again = members()
        assert len(again) == 2 and set(again) <= set(planned)


def test_what_if_for_a_segment(modeling: ModelingService) -> None:
    dataset = uplift_dataset(modeling)
    job = finished(
        modeling,
        modeling.drivers.estimate(
            pb.EstimateDriversRequest(dataset_id=dataset.dataset_id, outcome_column="y", factors=["x"])
        ),
    )
    answer = modeling.drivers.what_if(
        pb.WhatIfRequest(
            analysis_id=job.result_name, factor="x", shift_by=1.0, population=pb.Population(segment_id="vip")
        )
    )
    assert answer.population_size == len(VIP)
    assert answer.outcome_change.value > 0


def stages(funnel: pb.ComputeAiplFunnelResponse) -> list[int]:
    return [s.customers for s in funnel.stages]


def test_the_aipl_funnel_over_profiles(modeling: ModelingService) -> None:
    from svc_modeling.funnel import compute_funnel

    def funnel(**fields) -> pb.ComputeAiplFunnelResponse:
        return compute_funnel(pb.ComputeAiplFunnelRequest(**fields), modeling.catalog, 0, modeling.snapshots)

    traded = [i for i in range(CUSTOMERS) if buys(i) or i % 6 in (1, 2)]
    # defaults: any event, a view, a trade, a repeat trade ("late" only logged in: aware, not interested)
    assert stages(funnel()) == [CUSTOMERS + 1, CUSTOMERS, len(traded), 0]
    # a time range up to the snapshot: the trades came after it
    window = types_pb2.TimeRange(start=at(SNAPSHOT_US - 30 * DAY_US), end=at(SNAPSHOT_US))
    everything_before = funnel(time_range=window)
    assert stages(everything_before) == [CUSTOMERS, CUSTOMERS, 0, 0]
    assert everything_before.break_point_from == pb.AIPL_STAGE_INTEREST
    fund = label_rule().filter
    rules = [
        pb.AiplStageRule(
            stage=pb.AIPL_STAGE_AWARENESS, condition=C.Condition(in_segment=C.SegmentMembership(segment_id="vip"))
        ),
        pb.AiplStageRule(
            stage=pb.AIPL_STAGE_INTEREST,
            condition=C.Condition(
                comparison=C.Comparison(
                    field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch"),
                    operator=C.OPERATOR_EQ,
                    value=to_proto("SH01"),
                )
            ),
        ),
        pb.AiplStageRule(
            stage=pb.AIPL_STAGE_PURCHASE,
            condition=C.Condition(
                event_count=C.EventCount(
                    event_type="trade_filled", filter=fund, min_count=1, window_seconds=400 * 86_400
                )
            ),
        ),
        pb.AiplStageRule(
            stage=pb.AIPL_STAGE_LOYALTY,
            condition=C.Condition(event_absence=C.EventAbsence(event_type="logout", window_seconds=86_400)),
        ),
    ]
    vip = [int(c[1:]) for c in VIP]
    sh01 = [i for i in vip if i % 3]
    fund_buyers = [i for i in sh01 if buys(i) or i % 6 == 1]  # the fund trade after the label's horizon counts now
    assert stages(funnel(rules=rules)) == [len(VIP), len(sh01), len(fund_buyers), len(fund_buyers)]
    in_segment = funnel(segment_id="vip")
    assert stages(in_segment)[0] == len(VIP)
    with pytest.raises(NotFound):
        funnel(segment_id="nobody_here")


def test_a_review_rebuilds_a_profile_snapshot_before_comparing(modeling: ModelingService) -> None:
    """Fresh O-data for a review: a profile-snapshot dataset named in the schedule is rebuilt with the same rule at
    the freshest snapshot whose label is known (now minus the horizon), and the model is compared with that."""
    dataset, _ = build(modeling, name="review_base", snapshot_at=at(SNAPSHOT_US), label=label_rule())
    train(modeling, dataset)
    schedule = modeling.review.create_schedule(
        pb.ReviewSchedule(model_names=["fund_buyer"], cron="0 3 * * *", refresh_dataset_ids=[dataset.dataset_id])
    )
    before = time.time_ns() // 1000
    report = modeling.review.get_report(finished(modeling, modeling.review.run(schedule.schedule_id)).result_name)
    rebuilt = [d for d in modeling.catalog.list(None, 1000) if d.lineage.get("refreshed_from") == dataset.dataset_id]
    assert len(rebuilt) == 1, "one rebuild of the snapshot"
    fresh = rebuilt[0]
    snapshot_us = pd.Timestamp(fresh.lineage["snapshot_at"]).value // 1000
    assert before - HORIZON_DAYS * DAY_US - 60_000_000 <= snapshot_us <= before - HORIZON_DAYS * DAY_US + 60_000_000
    assert fresh.origin == "profile_snapshot" and fresh.row_count == CUSTOMERS + 1  # "late" is in the past now
    assert fresh.lineage["label_rule"] == dataset.lineage["label_rule"]
    assert f"rebuilt at {fresh.lineage['snapshot_at']} as {fresh.dataset_id}" in report.summary
    assert {s.name for s in report.stability} >= {"count.login.90d", "age"}
    # logins moved (PSI), but nobody bought in the fresh horizon: the model cannot be retrained there, and the
    # review says so instead of failing
    assert f"not retrained: the fresh data {fresh.dataset_id} cannot train it" in report.summary
    assert not report.model_changes
    _, frame = modeling.catalog.load(fresh.dataset_id)
    data = frame.data.set_index("customer_id")
    i = int(VIP[1][1:])  # every login now lies before the snapshot: the three after the old one count too
    assert data.loc[VIP[1], "count.login.90d"] == logins_before(i) + 3
