"""svc_campaign's part of ``qiming demo``: a compliant template (and a refused one), a journey refused at
publish naming its bad node, then published and started; sends through the policy gate (opt-out, cap, quiet
hours), and an experiment's results with its decision."""

from __future__ import annotations

import random
from collections.abc import Callable

import grpc

from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2

PUSH, SMS = pb.CHANNEL_TYPE_APP_PUSH, pb.CHANNEL_TYPE_SMS


def _customer(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def _status(message: pb.Message) -> str:
    status = pb.MessageStatus.Name(message.status).removeprefix("MESSAGE_STATUS_")
    return f"{status} {message.suppression_reason}".strip()


def run(channel: grpc.Channel, step: Callable[[str], None]) -> None:
    templates = pb_grpc.TemplateServiceStub(channel)
    journeys = pb_grpc.JourneyServiceStub(channel)
    policy = pb_grpc.PolicyServiceStub(channel)
    delivery = pb_grpc.DeliveryServiceStub(channel)
    experiments = pb_grpc.ExperimentServiceStub(channel)

    step("svc_campaign: a template promising returns is refused; a compliant one with its risk disclosure is saved")
    try:
        templates.CreateTemplate(
            pb.CreateTemplateRequest(template=pb.Template(name="bad", channel=PUSH, body="稳赚不赔，保本保收益")),
            timeout=10,
        )
    except grpc.RpcError as exc:
        print(f"  {exc.code().name}: {exc.details()}")
    fund = pb.Template(
        template_id="fund-launch",
        name="新基金首发",
        body="{{attribute.nickname|您好}}，新基金今日首发。市场有风险，投资需谨慎",
        product=pb.ProductRef(product_id="F001", product_type="fund", risk_level=3),
    )
    saved = templates.CreateTemplate(pb.CreateTemplateRequest(template=fund), timeout=10).template
    print(f"  saved {saved.template_id} v{saved.version}")

    step("JourneyService: a journey with a send to an unknown template is refused at publish, naming the node")
    trigger = pb.Trigger(event=pb.SingleEventTrigger(event_type="fund_view"))
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            pb.JourneyNode(node_id="start", trigger=pb.TriggerNode(trigger=trigger, next_node_id="push")),
            pb.JourneyNode(
                node_id="push",
                send=pb.SendNode(channel=PUSH, template_id="nope", next_node_id="end", is_marketing=True),
            ),
            pb.JourneyNode(node_id="end", exit=pb.ExitNode()),
        ],
    )
    journeys.CreateJourney(
        pb.CreateJourneyRequest(journey=pb.Journey(journey_id="demo", name="demo", draft=graph)), timeout=10
    )
    try:
        journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="demo"), timeout=10)
    except grpc.RpcError as exc:
        print(f"  {exc.code().name}: {exc.details()}")
    graph.nodes[1].send.template_id = "fund-launch"
    journeys.UpdateJourneyDraft(pb.UpdateJourneyDraftRequest(journey_id="demo", draft=graph), timeout=10)
    journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="demo"), timeout=10)
    started = journeys.StartJourney(pb.StartJourneyRequest(journey_id="demo"), timeout=10).journey
    print(f"  journey demo v{started.published_version}: {pb.JourneyState.Name(started.state)}")

    step("DeliveryService/SendMessage through the policy gate: opt-out, suitability, channel cap, same content")
    policy.SetConsent(
        pb.SetConsentRequest(
            consent=pb.Consent(user=_customer("c1"), channel=SMS, purpose="*", granted=False, source="sms_reply_TD")
        ),
        timeout=10,
    )
    general = pb.Template(template_id="care", name="关怀", body="{{attribute.nickname|您好}}，本周市场回顾已更新")
    templates.CreateTemplate(pb.CreateTemplateRequest(template=general), timeout=10)
    weekly = pb.Template(template_id="weekly", name="周报", body="本周持仓周报已生成，点击查看")
    templates.CreateTemplate(pb.CreateTemplateRequest(template=weekly), timeout=10)
    for label, customer, channel_type, template in (
        ("c1 by SMS (opted out)", "c1", SMS, "care"),
        ("c2 fund promotion, no risk rating known", "c2", PUSH, "fund-launch"),
        ("c2 by app push", "c2", PUSH, "care"),
        ("c2 another push (1 per channel a day)", "c2", PUSH, "weekly"),
        ("c2 the same content by e-mail", "c2", pb.CHANNEL_TYPE_EMAIL, "care"),
    ):
        sent = delivery.SendMessage(
            pb.SendMessageRequest(
                user=_customer(customer), channel=channel_type, template_id=template, is_marketing=True
            ),
            timeout=10,
        ).message
        print(f"  {label:45} {_status(sent)}")
    rules = policy.GetContactPolicy(pb.GetContactPolicyRequest(), timeout=10).policy
    print(
        f"  policy: {rules.max_marketing_per_day}/day, {rules.max_marketing_per_week}/week, "
        f"{rules.max_per_channel_per_day} per channel a day; quiet hours for SMS and advisor calls 21:00-08:00"
    )

    step("ExperimentService: two push variants, 2,400 customers; results, SRM and the decision")
    experiment = experiments.CreateExperiment(
        pb.CreateExperimentRequest(
            experiment=pb.Experiment(
                name="push copy",
                variants=[pb.Variant(key="A", weight_bps=5000, is_control=True), pb.Variant(key="B", weight_bps=5000)],
                goal_event_type="fund_purchase",
                attribution_window_seconds=7 * 86400,
                auto_promotion=pb.AutoPromotion(
                    enabled=True, min_probability_best=0.95, min_sample_per_variant=1000, metric=pb.METRIC_CONVERSION
                ),
            )
        ),
        timeout=10,
    ).experiment
    rng = random.Random(1)
    rates = {"A": 0.04, "B": 0.08}
    kind = pb.RecordOutcomeRequest
    after_end = 0
    for n in range(2400):
        customer = _customer(f"x{n}")
        variant = experiments.AssignVariant(
            pb.AssignVariantRequest(experiment_id=experiment.experiment_id, user=customer, record_exposure=True),
            timeout=10,
        ).variant
        if rng.random() < rates[variant]:
            try:
                experiments.RecordOutcome(
                    kind(experiment_id=experiment.experiment_id, user=customer, kind=kind.KIND_CONVERSION), timeout=10
                )
            except grpc.RpcError as refused:  # once auto-promotion has concluded it, newcomers only get the winner
                if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                after_end += 1
    results = experiments.GetExperimentResults(
        pb.GetExperimentResultsRequest(experiment_id=experiment.experiment_id, metric=pb.METRIC_CONVERSION), timeout=30
    )
    for v in results.variants:
        print(
            f"  {v.variant}: {v.conversions}/{v.exposures} = {v.rate:.4f}  P(best) {v.probability_best:.3f}  "
            f"lift {v.lift:+.4f} [{v.lift_ci_low:+.4f}, {v.lift_ci_high:+.4f}]"
        )
    print(f"  SRM p = {results.srm_p_value:.3f}; decision: {results.decision}")
    if after_end:
        print(f"  {after_end} conversions of customers who came after the winner was promoted were not counted")
