"""Experiments: deterministic hash assignment (or Thompson-sampling allocation), exposures, clicks and
conversions within the attribution window, Bayesian and frequentist results, the sample ratio check, and
auto-promotion of the winner once the configured probability, expected loss and sample are reached.

An assignment is sticky: the first answer for a customer is stored and every later answer repeats it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from sqlalchemy import Table
from sqlalchemy.engine import Connection

from svc_campaign import stats
from svc_campaign.checks import known
from svc_campaign.clock import later, span
from svc_campaign.store._experiments import ExperimentStore
from svc_campaign.triggers import event_time
from svc_common.amounts import number_as_fen
from svc_common.conditions import EVENT_FILTER_SCOPE, compile_condition, matches_event
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2

DEFAULT_MIN_SAMPLE = 100
"""Exposures per variant auto-promotion waits for when ``min_sample_per_variant`` is 0 (unset)."""
TIE_MARGIN = 0.01
"""P(best) closer than this to another variant's is a tie: the decision says "no leader"."""
STATE_NAMES = {pb.EXPERIMENT_STATE_RUNNING: "RUNNING", pb.EXPERIMENT_STATE_CONCLUDED: "CONCLUDED"}


def bucket(salt: str, user_id: str) -> int:
    """0..9999, uniform and stable for (salt, customer)."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def pick_fixed(experiment: pb.Experiment, user_id: str) -> str:
    point, edge = bucket(experiment.salt, user_id), 0
    for variant in experiment.variants:
        edge += variant.weight_bps
        if point < edge:
            return variant.key
    return experiment.variants[-1].key


def _bad(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {message}", violations=[FieldViolation(field, message)])


def validate_experiment(experiment: pb.Experiment) -> None:
    if not experiment.name:
        raise _bad("experiment.name", "name the experiment")
    keys = [v.key for v in experiment.variants]
    if len(keys) < 2:
        raise _bad("experiment.variants", "an experiment needs at least two variants")
    if "" in keys or len(set(keys)) != len(keys):
        raise _bad("experiment.variants", "each variant needs its own non-empty key")
    if sum(v.weight_bps for v in experiment.variants) != 10_000:
        raise _bad("experiment.variants", "weight_bps must sum to 10000")
    if sum(v.is_control for v in experiment.variants) > 1:
        raise _bad("experiment.variants", "at most one control variant")
    if experiment.attribution_window_seconds < 0:
        raise _bad("experiment.attribution_window_seconds", "must not be negative")
    if experiment.goal_event_type and experiment.attribution_window_seconds == 0:
        raise _bad("experiment.attribution_window_seconds", "set the window in which a goal event counts")
    if experiment.HasField("goal_filter") and experiment.goal_filter.WhichOneof("node"):
        compile_condition(experiment.goal_filter, EVENT_FILTER_SCOPE, field="experiment.goal_filter")
    known([experiment.allocation], pb.AllocationMode, "experiment.allocation")
    rule = experiment.auto_promotion
    known([rule.metric], pb.Metric, "experiment.auto_promotion.metric")
    if rule.enabled:
        if not 0.5 < rule.min_probability_best < 1:
            # 0.5 with two variants promotes whichever the noise favours.
            raise _bad("experiment.auto_promotion.min_probability_best", "above 0.5 and below 1")
        if rule.metric == pb.METRIC_UNSPECIFIED:
            raise _bad("experiment.auto_promotion.metric", "choose CTR, CONVERSION or VALUE")


class Experiments:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.store = ExperimentStore(tables)
        self._by_goal: dict[str, list[pb.Experiment]] = {}
        self._cache: dict[str, pb.Experiment] = {}
        self._rng = random.Random()
        self._lock = threading.Lock()

    # -- definitions ----------------------------------------------------------------------------------

    def create(self, conn: Connection, experiment: pb.Experiment, now: dt.datetime) -> pb.Experiment:
        validate_experiment(experiment)
        created = pb.Experiment()
        created.CopyFrom(experiment)
        created.experiment_id = experiment.experiment_id or str(uuid.uuid4())
        created.salt = experiment.salt or uuid.uuid4().hex
        created.state = pb.EXPERIMENT_STATE_RUNNING
        created.allocation = experiment.allocation or pb.ALLOCATION_MODE_FIXED
        created.winner_variant = ""
        created.created_at.FromDatetime(now)
        created.ClearField("concluded_at")
        if self.get(conn, created.experiment_id, missing_ok=True) is not None:
            from svc_common.errors import AlreadyExists

            raise AlreadyExists(f"experiment {created.experiment_id!r} already exists")
        self.store.add(
            conn,
            {
                "experiment_id": created.experiment_id,
                "document": json_format.MessageToDict(created),
                "experiment_state": "RUNNING",
                "goal_event_type": created.goal_event_type,
                "winner_variant": "",
                "created_at": now,
                "concluded_at": None,
            },
        )
        self._by_goal.clear()
        return created

    def get(self, conn: Connection, experiment_id: str, *, missing_ok: bool = False) -> pb.Experiment | None:
        document = self.store.document(conn, experiment_id)
        if document is None:
            if missing_ok:
                return None
            raise NotFound(f"no experiment {experiment_id!r}", metadata={"experiment_id": experiment_id})
        return json_format.ParseDict(document, pb.Experiment())

    def list(self, conn: Connection, after: str, limit: int) -> list[pb.Experiment]:
        return [json_format.ParseDict(d, pb.Experiment()) for d in self.store.documents(conn, after, limit)]

    def _save(self, conn: Connection, experiment: pb.Experiment) -> None:
        self.store.save(
            conn,
            experiment.experiment_id,
            {
                "document": json_format.MessageToDict(experiment),
                "experiment_state": pb.ExperimentState.Name(experiment.state).removeprefix("EXPERIMENT_STATE_"),
                "winner_variant": experiment.winner_variant,
                "concluded_at": experiment.concluded_at.ToDatetime(tzinfo=dt.UTC)
                if experiment.HasField("concluded_at")
                else None,
            },
        )
        self._by_goal.clear()

    def conclude(self, conn: Connection, experiment_id: str, winner: str, now: dt.datetime) -> pb.Experiment:
        experiment = self.get(conn, experiment_id)
        assert experiment is not None
        if experiment.state != pb.EXPERIMENT_STATE_RUNNING:
            raise FailedPrecondition(
                f"experiment {experiment_id!r} is already {pb.ExperimentState.Name(experiment.state)}"
            )
        if winner not in [v.key for v in experiment.variants]:
            raise _bad("winner_variant", f"{winner!r} is not a variant of {experiment_id!r}")
        experiment.state = pb.EXPERIMENT_STATE_CONCLUDED
        experiment.winner_variant = winner
        experiment.concluded_at.FromDatetime(now)
        self._save(conn, experiment)
        return experiment

    # -- assignment and outcomes ----------------------------------------------------------------------

    def assign(
        self, conn: Connection, experiment: pb.Experiment, user_id: str, now: dt.datetime, *, expose: bool
    ) -> str:
        """The customer's variant (the winner once concluded); stored on first use."""
        row = self.store.assignment(conn, experiment.experiment_id, user_id)
        if row is not None:
            if expose and row.exposed_at is None:
                self.store.expose(conn, experiment.experiment_id, user_id, now)
            return experiment.winner_variant or row.variant
        if experiment.state != pb.EXPERIMENT_STATE_RUNNING:
            return experiment.winner_variant or pick_fixed(experiment, user_id)
        if experiment.allocation == pb.ALLOCATION_MODE_THOMPSON_SAMPLING:
            counts = self.counts(conn, experiment, pb.METRIC_CONVERSION)
            keys = [v.key for v in experiment.variants]
            with self._lock:
                index = stats.thompson_pick([counts[k][1] for k in keys], [counts[k][0] for k in keys], self._rng)
            variant = keys[index]
        else:
            variant = pick_fixed(experiment, user_id)
        self.store.assign(
            conn,
            {
                "experiment_id": experiment.experiment_id,
                "user_id": user_id,
                "variant": variant,
                "assigned_at": now,
                "exposed_at": now if expose else None,
                "clicked_at": None,
                "converted_at": None,
                "value_fen": 0,
            },
        )
        return variant

    def record(
        self, conn: Connection, experiment_id: str, user_id: str, kind: str, at: dt.datetime, value_fen: int = 0
    ) -> None:
        """Record an outcome. A conversion follows the rule of goal events (``on_event``): it counts for an exposure
        at or before ``at``, within ``attribution_window_seconds`` after it (0: any time after it); otherwise
        FAILED_PRECONDITION says why, so a caller feeding offline conversions knows one was not counted."""
        window = None
        if kind == "conversion":
            experiment = self.get(conn, experiment_id)
            assert experiment is not None
            found = self.store.assignment(conn, experiment_id, user_id)
            if found is None and experiment.state != pb.EXPERIMENT_STATE_RUNNING:
                # Customers who came after the end get the winner (or a fixed pick) without taking part.
                state = pb.ExperimentState.Name(experiment.state).removeprefix("EXPERIMENT_STATE_").lower()
                raise FailedPrecondition(
                    f"customer {user_id!r} did not take part in experiment {experiment_id!r}: it is {state} and"
                    " customers who came after its end are not counted",
                    reason="EXPERIMENT_NOT_RUNNING",
                    metadata={"experiment_id": experiment_id},
                )
            if found is None or found.exposed_at is None:
                raise FailedPrecondition(
                    f"customer {user_id!r} was never exposed in experiment {experiment_id!r}: a conversion counts"
                    " only after an exposure (a split node, AssignVariant with record_exposure, RecordOutcome"
                    " KIND_EXPOSURE)",
                    reason="NOT_EXPOSED",
                    metadata={"experiment_id": experiment_id},
                )
            exposed = _aware(found.exposed_at)
            seconds = experiment.attribution_window_seconds
            window = span(seconds) if seconds else None
            if at < exposed or (seconds and at > later(exposed, seconds)):
                limit = f"within {seconds} s after it" if seconds else "after it"
                raise FailedPrecondition(
                    f"conversion of {user_id!r} at {at.isoformat()} is outside the attribution window of experiment"
                    f" {experiment_id!r}: exposed at {exposed.isoformat()}, a conversion counts {limit}",
                    reason="OUTSIDE_ATTRIBUTION_WINDOW",
                    metadata={"experiment_id": experiment_id},
                )
        self.store.record(conn, experiment_id, user_id, kind, at, value_fen, window)

    def goal_experiments(self, conn: Connection, event_type: str) -> list[pb.Experiment]:
        if not self._by_goal:
            index: dict[str, list[pb.Experiment]] = {"": []}
            for document in self.store.running(conn):
                experiment = json_format.ParseDict(document, pb.Experiment())
                index.setdefault(experiment.goal_event_type, []).append(experiment)
            self._by_goal = index
        return self._by_goal.get(event_type, [])

    def on_event(self, conn: Connection, event: event_pb2.Event) -> None:
        """A goal event converts the customer's exposure when it falls within the attribution window."""
        for experiment in self.goal_experiments(conn, event.event_type):
            if experiment.HasField("goal_filter") and experiment.goal_filter.WhichOneof("node"):
                node = compile_condition(experiment.goal_filter, EVENT_FILTER_SCOPE, field="goal_filter")
                if not matches_event(node, event):
                    continue
            at = event_time(event)
            fen = goal_value_fen(event)
            window = span(experiment.attribution_window_seconds)
            self.store.convert(conn, experiment.experiment_id, event.user_id, at, window, fen)

    def bulk_record(self, conn: Connection, experiment_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert finished assignments at once (replays of past experiments, simulations)."""
        batch = [{"experiment_id": experiment_id, **r} for r in rows]
        if batch:
            self.store.assign_many(conn, batch)
        return len(batch)

    # -- results --------------------------------------------------------------------------------------

    def counts(
        self, conn: Connection, experiment: pb.Experiment, metric: int
    ) -> dict[str, tuple[int, int, float, float]]:
        """variant → (trials, successes, value sum, value sum of squares) for ``metric``."""
        rows = self.store.counts(conn, experiment.experiment_id, metric == pb.METRIC_CTR)
        found = {r[0]: (int(r[1]), int(r[2] or 0), float(r[3] or 0), float(r[4] or 0)) for r in rows}
        return {v.key: found.get(v.key, (0, 0, 0.0, 0.0)) for v in experiment.variants}

    def results(
        self, conn: Connection, experiment_id: str, metric: int
    ) -> tuple[pb.Experiment, pb.GetExperimentResultsResponse]:
        experiment = self.get(conn, experiment_id)
        assert experiment is not None
        metric = metric or experiment.auto_promotion.metric or pb.METRIC_CONVERSION
        counts = self.counts(conn, experiment, metric)
        result = analyse(experiment, counts, metric)
        clicks = self.store.clicks(conn, experiment_id)
        for item in result.variants:
            item.clicks = int(clicks.get(item.variant, 0))
        return experiment, result

    def maybe_promote(self, conn: Connection, experiment_id: str, now: dt.datetime) -> pb.Experiment | None:
        """Conclude with the leader when the auto-promotion rule is met; the concluded experiment, else None."""
        experiment, result = self.results(conn, experiment_id, 0)
        if experiment.state != pb.EXPERIMENT_STATE_RUNNING or not experiment.auto_promotion.enabled:
            return None
        if not result.leading_variant or result.sample_ratio_mismatch:
            return None
        return self.conclude(conn, experiment_id, result.leading_variant, now)


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC times back


def analyse(
    experiment: pb.Experiment, counts: dict[str, tuple[int, int, float, float]], metric: int
) -> pb.GetExperimentResultsResponse:
    keys = [v.key for v in experiment.variants]
    control = next((v.key for v in experiment.variants if v.is_control), keys[0])
    trials = [counts[k][0] for k in keys]
    successes = [counts[k][1] for k in keys]
    response = pb.GetExperimentResultsResponse()
    n_c, x_c, s_c, ss_c = counts[control]
    if metric == pb.METRIC_VALUE:
        p_best, loss = stats.bayesian_means(trials, [counts[k][2] for k in keys], [counts[k][3] for k in keys])
    else:
        p_best, loss = stats.bayesian(successes, trials)
    shares = (
        stats.thompson_shares(successes, trials)
        if experiment.allocation == pb.ALLOCATION_MODE_THOMPSON_SAMPLING
        else None
    )
    for i, key in enumerate(keys):
        n, x, s, ss = counts[key]
        item = response.variants.add(
            variant=key, exposures=n, conversions=x, probability_best=p_best[i], expected_loss=loss[i]
        )
        if metric == pb.METRIC_VALUE:
            mean, _, comparison = stats.welch(n, s, ss, n_c, s_c, ss_c)
            item.rate = mean
            item.mean_value = mean
        else:
            item.rate = x / n if n else 0.0
            comparison = stats.two_proportion(x, n, x_c, n_c)
        if key != control:
            item.lift, item.lift_ci_low, item.lift_ci_high = comparison.lift, comparison.low, comparison.high
            item.p_value = comparison.p_value
        else:
            item.p_value = 1.0
        weight = experiment.variants[i].weight_bps
        item.allocation_bps = round(shares[i] * 10_000) if shares is not None else weight
    planned = [v.weight_bps for v in experiment.variants]
    if experiment.allocation != pb.ALLOCATION_MODE_THOMPSON_SAMPLING:
        response.srm_p_value = stats.srm_p_value(trials, planned)
        response.sample_ratio_mismatch = response.srm_p_value < 0.001
    else:
        response.srm_p_value = 1.0  # a bandit changes the split on purpose: no planned ratio to test
    rule = experiment.auto_promotion
    min_sample = rule.min_sample_per_variant or DEFAULT_MIN_SAMPLE
    best = max(range(len(keys)), key=lambda i: p_best[i])
    # Identical data differs in P(best) by Monte-Carlo noise (about 0.004 at 20,000 draws): not a lead.
    tied = sum(p_best[best] - p < TIE_MARGIN for p in p_best) > 1
    empty = [k for k, n in zip(keys, trials, strict=True) if n == 0]
    evidence = sum(counts[k][2] for k in keys) if metric == pb.METRIC_VALUE else sum(successes)
    off = "; auto-promotion is off" if not rule.enabled else ""
    if experiment.state == pb.EXPERIMENT_STATE_CONCLUDED:
        response.leading_variant = experiment.winner_variant
        response.decision = f"concluded: {experiment.winner_variant} won"
    elif response.sample_ratio_mismatch:
        response.decision = (
            f"sample ratio mismatch (p={response.srm_p_value:.2g}): check the assignment before deciding"
        )
    elif len(empty) == len(keys):
        response.decision = f"no data yet: no exposures{off}"
    elif empty:
        response.decision = f"no data yet for {', '.join(empty)}: no exposures{off}"
    elif not evidence:
        what = "value" if metric == pb.METRIC_VALUE else "clicks" if metric == pb.METRIC_CTR else "conversions"
        response.decision = f"no leader: no {what} yet in any variant{off}"
    elif tied:
        response.decision = f"no leader: P(best) {p_best[best]:.3f} is within {TIE_MARGIN} of another variant's{off}"
    elif not rule.enabled:
        response.decision = f"{keys[best]} leads with P(best)={p_best[best]:.3f}; auto-promotion is off"
    elif min(trials) < min_sample:
        response.decision = f"waiting for {min_sample} exposures per variant (smallest has {min(trials)})"
    elif p_best[best] < rule.min_probability_best:
        response.decision = f"{keys[best]} leads with P(best)={p_best[best]:.3f} < {rule.min_probability_best}"
    elif rule.max_expected_loss and loss[best] > rule.max_expected_loss:
        response.decision = f"{keys[best]}: expected loss {loss[best]:.5f} above {rule.max_expected_loss}"
    else:
        response.leading_variant = keys[best]
        response.decision = f"promote {keys[best]}: P(best)={p_best[best]:.3f}, expected loss {loss[best]:.5f}"
    return response


_NUMBER_KINDS = frozenset({"int_value", "money_fen_value", "double_value"})


def goal_value_fen(event: event_pb2.Event) -> int:
    """The value a goal event carries, in fen: its ``value_fen`` or else ``amount_fen`` property when that is a
    number (an int, an amount in fen, or a double rounded to the fen). Anything else counts 0: a goal event from an
    app is untrusted input, and one malformed value must convert its customer, not fail the batch it arrived in
    (the log follower would retry that batch forever and every journey would stop). Bounded as svc_profile bounds a
    trade's amount (``svc_common.amounts``): a double of 1e300 overflowed the column, failing the batch (before
    0.2.9)."""
    for name in ("value_fen", "amount_fen"):
        value = event.properties.get(name)
        if value is None:
            continue
        kind = value.WhichOneof("kind")
        if kind not in _NUMBER_KINDS:
            return 0
        return number_as_fen(getattr(value, kind)) or 0
    return 0
