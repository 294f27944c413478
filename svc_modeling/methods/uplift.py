"""Per-customer uplift: meta-learners per intervention against control, and their held-out quality.

Learners (each fitted per intervention on that arm's rows and the control rows, outcome models are LightGBM
regressors, so a 0/1 outcome gives probability differences):

- ``t_learner``: one outcome model per group; effect = μ_arm(x) − μ_control(x).
- ``s_learner``: one outcome model with the treatment as a feature; effect = μ(x, 1) − μ(x, 0).
- ``x_learner``: T-learner first, then models of the imputed effects in each group, blended by the
  propensity (Künzel et al. 2019).
- ``dr_learner``: cross-fitted doubly robust (AIPW) pseudo-outcomes regressed on x (Kennedy 2020).
- ``causal_forest``: EconML's ``CausalForestDML`` (Athey, Tibshirani & Wager 2019, on double-ML residuals):
  an honest forest splitting on effect heterogeneity; outcome and propensity nuisances are LightGBM.

Quality on the held-out split, for a ranking by the predicted effect (``curves``): with customers sorted by
score, N the held-out size, and for the top k: Y_t, N_t, Y_c, N_c the outcome sums and counts per group,

- Qini curve  q(k) = (Y_t − Y_c · N_t / N_c) / N; Qini coefficient = mean over k of q(k) − (k/N) q(N)
  (the area between the curve and the random-targeting line; 0 for a random ranking);
- uplift curve u(k) = (Y_t/N_t − Y_c/N_c) · k / N; AUUC = mean over k of u(k) (random: about ATE/2).

Intervals: percentile bootstrap over held-out rows (predictions fixed). The random ranking's interval comes
from a fresh random order in each resample.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from svc_modeling.methods.effects import aipw_scores, difference_in_means
from svc_modeling.methods.stats import Est, classifier, regressor

LEARNERS = ("t_learner", "s_learner", "x_learner", "dr_learner", "causal_forest")
FOREST_TREES = 200  # a multiple of EconML's subforest size (4)


@dataclass
class ArmModel:
    """The fitted effect model of one intervention."""

    learner: str
    models: dict[str, Any]

    def effect(self, x: np.ndarray) -> np.ndarray:
        m = self.models
        if self.learner == "t_learner":
            return m["treated"].predict(x) - m["control"].predict(x)
        if self.learner == "s_learner":
            ones, zeros = np.column_stack([x, np.ones(len(x))]), np.column_stack([x, np.zeros(len(x))])
            return m["outcome"].predict(ones) - m["outcome"].predict(zeros)
        if self.learner == "x_learner":
            g = m["propensity"].predict_proba(x)[:, 1]
            return g * m["tau_control"].predict(x) + (1 - g) * m["tau_treated"].predict(x)
        if self.learner == "causal_forest":
            return m["forest"].effect(x)
        return m["tau"].predict(x)


def _fit_causal_forest(x: np.ndarray, t: np.ndarray, y: np.ndarray, seed: int, n_estimators: int) -> ArmModel:
    # Imported here: EconML pulls in numba and shap, seconds of import that other learners need not pay.
    from econml.dml import CausalForestDML

    forest = CausalForestDML(
        model_y=regressor(seed, n_estimators=n_estimators),
        model_t=classifier(seed, n_estimators=50),
        discrete_treatment=True,
        n_estimators=FOREST_TREES,
        min_samples_leaf=20,
        cv=3,
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        # EconML warns about its own defaults (e.g. a future change of a parameter); not actionable here.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        forest.fit(y, t.astype(int), X=x)
    return ArmModel("causal_forest", {"forest": forest})


def fit_arm(learner: str, x: np.ndarray, t: np.ndarray, y: np.ndarray, seed: int, n_estimators: int = 100) -> ArmModel:
    """Fit one intervention's effect model; ``t`` is 1 for the arm, 0 for control."""
    treated, control = t == 1, t == 0
    if learner == "t_learner":
        return ArmModel(
            learner,
            {
                "treated": regressor(seed, n_estimators=n_estimators).fit(x[treated], y[treated]),
                "control": regressor(seed, n_estimators=n_estimators).fit(x[control], y[control]),
            },
        )
    if learner == "s_learner":
        xt = np.column_stack([x, t])
        return ArmModel(learner, {"outcome": regressor(seed, n_estimators=n_estimators).fit(xt, y)})
    if learner == "x_learner":
        mu1 = regressor(seed, n_estimators=n_estimators).fit(x[treated], y[treated])
        mu0 = regressor(seed, n_estimators=n_estimators).fit(x[control], y[control])
        d1 = y[treated] - mu0.predict(x[treated])
        d0 = mu1.predict(x[control]) - y[control]
        return ArmModel(
            learner,
            {
                "tau_treated": regressor(seed, n_estimators=n_estimators).fit(x[treated], d1),
                "tau_control": regressor(seed, n_estimators=n_estimators).fit(x[control], d0),
                "propensity": classifier(seed, n_estimators=50).fit(x, t),
            },
        )
    if learner == "causal_forest":
        return _fit_causal_forest(x, t, y, seed, n_estimators)
    psi = aipw_scores(y, t.astype(float), x, seed)
    final = regressor(seed, n_estimators=n_estimators, min_child_samples=100, learning_rate=0.05)
    return ArmModel(learner, {"tau": final.fit(x, psi)})


def _cumulative(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.argsort(-score, kind="stable")
    ts, ys = t[order], y[order]
    n_t = np.cumsum(ts)
    n_c = np.cumsum(1 - ts)
    y_t = np.cumsum(ys * ts)
    y_c = np.cumsum(ys * (1 - ts))
    return n_t, n_c, y_t, y_c


def qini_auuc(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Qini coefficient, AUUC) of ranking by ``score``; see the module docstring."""
    n = y.size
    n_t, n_c, y_t, y_c = _cumulative(score, t, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c > 0, y_t - y_c * n_t / n_c, 0.0) / n
        u = np.where((n_t > 0) & (n_c > 0), y_t / n_t - y_c / n_c, 0.0) * np.arange(1, n + 1) / n
    k = np.arange(1, n + 1) / n
    return float(np.mean(q - k * q[-1])), float(np.mean(u))


@dataclass
class ArmQuality:
    qini: Est
    auuc: Est
    qini_random: Est
    qini_baseline: Est
    average_effect: Est


def bootstrap_quality(
    score: np.ndarray,
    baseline: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    rounds: int,
    seed: int,
    confidence: float = 0.95,
    tick: Callable[[int], None] | None = None,
) -> ArmQuality:
    """``tick(round)`` is called every 10 rounds (progress; a cancelled job stops there)."""
    rng = np.random.default_rng(seed)
    n = y.size
    samples = np.empty((rounds, 4))
    for b in range(rounds):
        if tick is not None and b % 10 == 0:
            tick(b)
        idx = rng.integers(0, n, n)
        qi, au = qini_auuc(score[idx], t[idx], y[idx])
        qr, _ = qini_auuc(rng.random(n), t[idx], y[idx])
        qb, _ = qini_auuc(baseline[idx], t[idx], y[idx])
        samples[b] = qi, au, qr, qb
    qini, auuc = qini_auuc(score, t, y)
    qini_base, _ = qini_auuc(baseline, t, y)
    return ArmQuality(
        qini=Est.from_samples(qini, samples[:, 0], confidence),
        auuc=Est.from_samples(auuc, samples[:, 1], confidence),
        qini_random=Est.from_samples(float(np.mean(samples[:, 2])), samples[:, 2], confidence),
        qini_baseline=Est.from_samples(qini_base, samples[:, 3], confidence),
        average_effect=difference_in_means(y, t == 1, t == 0, confidence),
    )


@dataclass
class UpliftModel:
    """The stored artifact of an uplift model version."""

    encoder: Any
    control: str
    interventions: list[tuple[str, int]]
    learner: str
    arms: dict[str, ArmModel] = field(default_factory=dict)

    def effects(self, x: np.ndarray) -> np.ndarray:
        """n × interventions matrix of predicted effects."""
        return np.column_stack([self.arms[name].effect(x) for name, _cost in self.interventions])


def train_uplift(
    x: np.ndarray,
    treatment: np.ndarray,
    y: np.ndarray,
    *,
    control: str,
    interventions: Sequence[tuple[str, int]],
    learner: str,
    baseline_learner: str,
    test_mask: np.ndarray,
    rounds: int,
    seed: int,
    encoder: Any,
    progress: Callable[[float, str], None] = lambda p, m: None,
) -> tuple[UpliftModel, dict[str, ArmQuality]]:
    model = UpliftModel(encoder, control, list(interventions), learner)
    quality: dict[str, ArmQuality] = {}
    steps = len(interventions)
    for i, (name, _cost) in enumerate(interventions):
        base = 100 * i / steps
        rows = (treatment == name) | (treatment == control)
        train, test = rows & ~test_mask, rows & test_mask
        t_train = (treatment[train] == name).astype(float)
        t_test = (treatment[test] == name).astype(float)
        progress(base + 5 / steps, f"{name}: fitting {learner}")
        model.arms[name] = fit_arm(learner, x[train], t_train, y[train], seed)
        progress(base + 40 / steps, f"{name}: fitting baseline {baseline_learner}")
        baseline = fit_arm(baseline_learner, x[train], t_train, y[train], seed)
        progress(base + 70 / steps, f"{name}: {rounds} bootstrap rounds on {int(test.sum())} held-out rows")
        quality[name] = bootstrap_quality(
            model.arms[name].effect(x[test]),
            baseline.effect(x[test]),
            t_test,
            y[test],
            rounds,
            seed + i,
            tick=lambda b, base=base, name=name: progress(base + (70 + 30 * b / rounds) / steps, f"{name}: round {b}"),
        )
    return model, quality


@dataclass(frozen=True)
class Plan:
    choice: np.ndarray  # index of the chosen intervention per customer, -1 for none
    expected_effect: np.ndarray
    cost_fen: np.ndarray
    spent_fen: int


def plan_under_budget(effects: np.ndarray, costs: Sequence[int], budget_fen: int) -> Plan:
    """Best intervention per customer under a total budget (0: no budget, every positive effect).

    A multiple-choice knapsack solved greedily on each customer's convex hull of (cost, effect) options:
    upgrades are taken in order of effect gained per fen while the budget allows. Options with no positive
    effect are never chosen; a free option with a positive effect costs nothing.
    """
    n = effects.shape[0]
    cost = np.asarray(costs, dtype=np.float64)
    choice = np.full(n, -1)
    if budget_fen <= 0:
        best = np.argmax(effects, axis=1)
        positive = effects[np.arange(n), best] > 0
        choice[positive] = best[positive]
    else:
        steps: list[tuple[float, int, int, int]] = []  # (-efficiency, customer, from option, to option)
        order = np.argsort(cost, kind="stable")
        for c in range(n):
            hull: list[int] = []
            current_cost, current_gain = 0.0, 0.0
            candidates = [j for j in order if effects[c, j] > 0]
            while candidates:
                best_j, best_eff = -1, -np.inf
                for j in candidates:
                    d_cost, d_gain = cost[j] - current_cost, effects[c, j] - current_gain
                    if d_gain <= 0:
                        continue
                    eff = np.inf if d_cost <= 0 else d_gain / d_cost
                    if eff > best_eff:
                        best_j, best_eff = j, eff
                if best_j < 0:
                    break
                steps.append((-best_eff, c, hull[-1] if hull else -1, best_j))
                hull.append(best_j)
                current_cost, current_gain = cost[best_j], effects[c, best_j]
                candidates = [
                    j
                    for j in candidates
                    if cost[j] > current_cost
                    or (cost[j] == current_cost and j != best_j and effects[c, j] > current_gain)
                ]
        steps.sort()
        spent = 0.0
        for _neg, c, previous, to in steps:
            if choice[c] != previous:
                continue  # an earlier upgrade of this customer was skipped: later ones would break the chain
            extra = cost[to] - (cost[previous] if previous >= 0 else 0.0)
            if spent + extra <= budget_fen:
                choice[c] = to
                spent += extra
    chosen = choice >= 0
    expected = np.where(chosen, effects[np.arange(n), np.maximum(choice, 0)], 0.0)
    paid = np.where(chosen, cost[np.maximum(choice, 0)], 0.0)
    return Plan(choice, expected, paid.astype(np.int64), int(paid.sum()))
