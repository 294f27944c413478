"""Defects a review of svc_campaign found (2026-12-05), each pinned by a test that fails without its fix: a goal event
with a malformed amount, auto-promotion on a value metric without evidence, a client's idempotency key answering for
another customer, prohibited claims assembled around a placeholder, placeholders without a source, and product
templates without a risk level."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from campaign_helpers import (
    PUSH,
    SMS,
    T0,
    add_template,
    campaign_service,
    event,
    on_event,
    profile,
    run_journey,
    simple_graph,
    statuses,
)

from svc_campaign import stats
from svc_campaign.clock import ManualClock
from svc_campaign.profiles import InMemoryProfiles
from svc_common.errors import AlreadyExists, InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2


def _experiment(**rule) -> pb.Experiment:  # type: ignore[no-untyped-def]
    return pb.Experiment(
        experiment_id="e1",
        name="e1",
        goal_event_type="fund_subscribe",
        attribution_window_seconds=86400,
        variants=[pb.Variant(key="A", weight_bps=5000, is_control=True), pb.Variant(key="B", weight_bps=5000)],
        auto_promotion=pb.AutoPromotion(**rule) if rule else None,
    )


def test_a_goal_event_with_a_malformed_amount_converts_and_the_batch_goes_through(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        with service.db.connection(write=True) as conn:
            experiment = service.experiments.create(conn, _experiment(), T0)
            for user in ("c1", "c2", "c3"):
                service.experiments.assign(conn, experiment, user, T0, expose=True)
        batch = [
            event("fund_subscribe", "c1", amount_fen="12.50"),  # text: was ValueError, the batch retried forever
            event("fund_subscribe", "c2", amount_fen=1250),
            event("fund_subscribe", "c3", value_fen=99.6),
        ]
        service.engine.handle(batch, "cursor-1")
        assert service.engine.load_cursor() == "cursor-1"
        with service.db.connection() as conn:
            a = service.t["assignment"].c
            rows = conn.execute(service.t["assignment"].select().order_by(a.user_id)).mappings().all()
        assert [(r["user_id"], r["converted_at"] is not None, r["value_fen"]) for r in rows] == [
            ("c1", True, 0),
            ("c2", True, 1250),
            ("c3", True, 100),
        ]


def test_a_value_metric_does_not_promote_without_evidence(tmp_path) -> None:
    rule = {
        "enabled": True,
        "min_probability_best": 0.95,
        "max_expected_loss": 0.001,
        "min_sample_per_variant": 50,
        "metric": pb.METRIC_VALUE,
    }
    with campaign_service(tmp_path) as service, service.db.connection(write=True) as conn:
        experiment = service.experiments.create(conn, _experiment(**rule), T0)
        for n in range(400):  # exposures, and nobody bought anything
            service.experiments.assign(conn, experiment, f"u{n}", T0, expose=True)
        _, result = service.experiments.results(conn, "e1", 0)
        assert [round(v.probability_best, 2) for v in result.variants] == [0.5, 0.5]  # a tie is split, not 1 each
        assert service.experiments.maybe_promote(conn, "e1", T0) is None


def test_the_value_posterior_finds_a_clear_winner_and_not_a_noisy_one() -> None:
    # 1,000 exposures each; B's mean value 120 against A's 100 with a standard deviation of 50: clear.
    def sums(n: int, mean: float, sd: float) -> tuple[float, float]:
        return n * mean, n * (sd * sd + mean * mean) - sd * sd  # sum and sum of squares with sample variance sd²

    (sa, qa), (sb, qb) = sums(1000, 100, 50), sums(1000, 120, 50)
    p_best, loss = stats.bayesian_means([1000, 1000], [sa, sb], [qa, qb])
    assert p_best[1] > 0.999 and loss[1] < 0.01 < loss[0]
    (sa, qa), (sb, qb) = sums(20, 100, 50), sums(20, 101, 50)  # one fen apart, twenty each: noise
    p_best, _ = stats.bayesian_means([20, 20], [sa, sb], [qa, qb])
    assert 0.3 < p_best[1] < 0.7
    assert stats.bayesian_means([1, 5], [3.0, 10.0], [9.0, 30.0]) == ([0.5, 0.5], [0.0, 0.0])  # no variance yet


def _send(service, user: str, key: str, template: str = "t1", channel: int = PUSH) -> pb.Message:  # type: ignore[no-untyped-def]
    return service.send_message(
        pb.SendMessageRequest(
            user=types_pb2.UserRef(value=user),
            channel=channel,
            template_id=template,
            is_marketing=True,
            idempotency_key=key,
        )
    )


def test_an_idempotency_key_belongs_to_its_customer(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service, "t1", body="您好 {{attribute.nickname|客户}}")
        add_template(service, "t2", body="新基金开售")
        first = _send(service, "c1", "order-42")
        second = _send(service, "c2", "order-42")
        assert second.user.value == "c2" and second.message_id != first.message_id  # was c1's message
        assert _send(service, "c1", "order-42").message_id == first.message_id  # a retry: the same message
        assert len(statuses(service, "c1")) == len(statuses(service, "c2")) == 1
        with pytest.raises(AlreadyExists):
            _send(service, "c1", "order-42", template="t2")  # the key reused for another message


def test_the_same_key_sent_twice_at_once_gives_one_message(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1", body="新基金开售")
        start, answers, errors = threading.Barrier(2), [], []

        def call() -> None:
            start.wait()
            try:
                answers.append(_send(service, "c1", "same").message_id)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(set(answers)) == 1 and len(statuses(service, "c1")) == 1


@pytest.mark.parametrize(
    "body",
    ["本产品保{{attribute.nickname|}}本，快来买", "稳{{attribute.x}}赚不赔", "本产品{{attribute.word|保本}}"],
)
def test_a_prohibited_claim_cannot_be_assembled_around_a_placeholder(tmp_path, body: str) -> None:
    with campaign_service(tmp_path) as service, pytest.raises(InvalidArgument, match="prohibited"):
        add_template(service, "t1", body=body)


@pytest.mark.parametrize("body", ["您好 {{nickname}}，新基金开售", "您好 {{ attribute.nickname ", "{{}} 新基金"])
def test_a_placeholder_without_a_source_is_refused(tmp_path, body: str) -> None:
    with campaign_service(tmp_path) as service, pytest.raises(InvalidArgument, match="placeholder"):
        add_template(service, "t1", body=body)


def test_a_template_that_promotes_a_product_needs_its_risk_level(tmp_path) -> None:
    product = pb.ProductRef(product_id="F001", product_type="fund")
    with campaign_service(tmp_path) as service:
        with pytest.raises(InvalidArgument, match="risk level"):
            add_template(service, "t1", body="新基金开售 市场有风险，投资需谨慎", product=product)
        product.risk_level = 3
        assert add_template(service, "t1", body="新基金开售 市场有风险，投资需谨慎", product=product).version == 1
        assert add_template(service, "t2", channel=SMS, body="您好 {{attribute.nickname|客户}}").version == 1


def test_a_claim_carried_by_a_profile_value_is_not_sent(tmp_path) -> None:
    profiles = InMemoryProfiles({"c1": profile("c1", nickname="保本"), "c2": profile("c2", nickname="王先生")})
    with campaign_service(tmp_path, profiles=profiles) as service:
        add_template(service, "t1", body="{{attribute.nickname|客户}}，新基金开售")
        assert (_send(service, "c1", "k1").status, _send(service, "c2", "k2").status) == (
            pb.MESSAGE_STATUS_SUPPRESSED,
            pb.MESSAGE_STATUS_QUEUED,
        )
        assert statuses(service, "c1") == [("SUPPRESSED", "content_noncompliant")]


def test_a_message_held_for_quiet_hours_counts_on_the_day_it_goes_out(tmp_path) -> None:
    # Default policy: at most 2 marketing touches a day; SMS quiet 21:00-08:00 Shanghai.
    clock = ManualClock(dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC))  # Monday 22:00 in Shanghai
    with campaign_service(tmp_path, clock=clock) as service:
        for template in ("t1", "t2", "t3"):
            add_template(service, template, body=f"内容 {template}")
        assert _send(service, "c1", "k1", "t1", SMS).status == pb.MESSAGE_STATUS_DEFERRED  # out Tuesday 08:00
        clock.set(dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC))  # Tuesday 09:00
        assert _send(service, "c1", "k2", "t2", PUSH).status == pb.MESSAGE_STATUS_QUEUED
        third = _send(service, "c1", "k3", "t3", pb.CHANNEL_TYPE_EMAIL)  # a third touch on Tuesday: was QUEUED
        assert (third.status, third.suppression_reason) == (pb.MESSAGE_STATUS_SUPPRESSED, "frequency_cap_day")


class _Members:
    """A segment's members as svc_profile exports them: (profile id, customer id) pages."""

    def __init__(self, members: list[tuple[str, str]]) -> None:
        self.members = members

    def export(self, segment_id: str, after: str = ""):  # type: ignore[no-untyped-def]
        yield [(p, u) for p, u in self.members if p > after]


def test_a_customer_erased_during_a_scheduled_run_does_not_enter_it(tmp_path, database_url) -> None:
    members = _Members([("p1", "c1"), ("p2", "c2")])
    with campaign_service(tmp_path, database_url, members=members) as service:
        add_template(service, "t1", body="新基金开售")
        run_journey(service, simple_graph(pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="s1"))))
        service.scheduler.run_once()  # planned and exported: both members stored, none entered yet
        service.engine.handle([event("$profile_erased", "c1")])  # the PIPL erasure of c1 arrives meanwhile
        for _ in range(3):
            service.scheduler.run_once()
        assert statuses(service, "c1") == [] and statuses(service, "c2") == [("QUEUED", "")]
        with service.db.connection() as conn:
            member_ids = conn.execute(sa.select(service.t["scheduled_member"].c.user_id)).scalars().all()
            erased = conn.execute(sa.select(service.t["erased"])).all()
        assert "c1" not in member_ids
        assert [(row.user_id, row.erased_at) for row in erased] == [("c1", T0)]  # the suppression list


def test_an_event_from_before_an_erasure_brings_nobody_back(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1", body="新基金开售")
        run_journey(service, simple_graph(on_event("app_open")))
        # In one batch: the erasure, then an event of c1 from before it (an app uploading its backlog).
        service.engine.handle([event("$profile_erased", "c1"), event("app_open", "c1"), event("app_open", "c2")])
        service.clock.advance(hours=1)
        service.engine.handle([event("app_open", "c1", T0 - dt.timedelta(minutes=5))])  # a later batch, as late
        assert statuses(service, "c1") == [] and statuses(service, "c2") == [("QUEUED", "")]
        service.engine.handle([event("app_open", "c1", T0 + dt.timedelta(hours=1))])  # after it: a new start
        assert statuses(service, "c1") == [("QUEUED", "")]


def test_a_scheduled_run_enters_nobody_once_another_process_stopped_its_journey(tmp_path) -> None:
    members = _Members([("p1", "c1"), ("p2", "c2")])
    with campaign_service(tmp_path, members=members) as service:
        add_template(service, "t1", body="新基金开售")
        run_journey(service, simple_graph(pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="s1"))), "j1")
        service.scheduler.run_once()  # planned and exported
        with service.db.connection(write=True) as conn:  # stopped by another process: this one's cache says RUNNING
            j = service.t["journey"]
            conn.execute(sa.update(j).where(j.c.journey_id == "j1").values(journey_state="STOPPED"))
        assert service.engine.journey("j1").state == "RUNNING"
        service.scheduler.run_once()
        assert statuses(service) == []
