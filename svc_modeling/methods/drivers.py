"""Causal drivers: per factor, its effect on the outcome by double machine learning, with refutations; and an
outcome model (a small bootstrap ensemble) for what-if questions and response curves.

Effect (``dml``, the partially linear model of Chernozhukov et al. 2018, fitted by EconML's ``LinearDML``):
with W the factor's adjustment set, cross-fitted (3 folds) LightGBM models give residuals ũ = Y − E[Y|W] and
ṽ = T − E[T|W]; the effect of one unit of T is the regression of ũ on ṽ, θ = Σ ṽũ / Σ ṽ², with a
heteroskedasticity-robust standard error. ``linear_dml``: the same with ridge nuisance models (fast; right
when W acts linearly; text confounders enter one-hot). ``dr``: for a 0/1 factor, the AIPW average
effect (cross-fitted propensity and outcome models).

Importance: |θ| · sd(T), shared out so the factors sum to 1 (how much of the outcome's movement each factor
accounts for across its observed spread).

Refutations (as in DoWhy): placebo treatment (T permuted: the effect must vanish, i.e. its interval covers
0); random common cause (an independent random column added to W: the effect must stay within two standard
errors); data subset (a random 80%: the same).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats
from sklearn.linear_model import Ridge

from svc_modeling.methods.effects import aipw_scores
from svc_modeling.methods.stats import Est, folds, regressor

METHODS = ("dml", "linear_dml", "dr")


def _nuisance(method: str, seed: int):
    if method == "linear_dml":
        return Ridge(alpha=1.0)
    return regressor(seed, n_estimators=100, min_child_samples=50)


def _fill(w: np.ndarray) -> np.ndarray:
    """Ridge cannot take missing values: fill with column medians (LightGBM handles them itself)."""
    if not np.isnan(w).any():
        return w
    medians = np.nanmedian(np.where(np.isnan(w).all(axis=0), 0.0, w), axis=0)
    return np.where(np.isnan(w), medians, w)


def adjustment(x: np.ndarray, columns: Sequence[int], categorical: Sequence[int], method: str) -> np.ndarray:
    """W, the adjustment set's columns of x. For ``linear_dml`` a text confounder's category codes are one-hot
    (with a missing indicator): a ridge on the codes would treat their alphabetical order as a dose and leave
    any non-monotone category unadjusted. The tree nuisances of the other methods split the codes."""
    parts: list[np.ndarray] = []
    for c in columns:
        column = x[:, c]
        if method == "linear_dml" and c in categorical:
            missing = np.isnan(column)
            parts.extend((column == code).astype(float) for code in np.unique(column[~missing]))
            if missing.any():
                parts.append(missing.astype(float))
        else:
            parts.append(column)
    return np.column_stack(parts) if parts else np.zeros((x.shape[0], 0))


def dml_effect(y: np.ndarray, t: np.ndarray, w: np.ndarray, method: str, seed: int, k: int = 3) -> Est:
    if method == "dr":
        psi = aipw_scores(y, t, w, seed, k)
        return Est.normal(float(psi.mean()), float(psi.std(ddof=1) / np.sqrt(psi.size)))
    if w.shape[1] == 0:
        w = np.zeros((y.size, 1))
    if method == "linear_dml":
        w = _fill(w)
    if float(np.var(t)) <= 1e-12:
        return Est.normal(0.0, float("inf"))  # a factor that never varies has no estimable effect
    # Imported here: EconML pulls in numba and shap, seconds of import that other methods need not pay.
    from econml.dml import LinearDML

    estimator = LinearDML(
        model_y=_nuisance(method, seed),
        model_t=_nuisance(method, seed),
        cv=list(_fold_pairs(y.size, k, seed)),
        random_state=seed,
    )
    with warnings.catch_warnings():
        # EconML warns about its own defaults (e.g. a coming change of a parameter); not actionable here.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        estimator.fit(y, t, X=None, W=w)
        inference = estimator.ate_inference()
    return Est.normal(float(inference.mean_point), float(inference.stderr_mean))


def _fold_pairs(n: int, k: int, seed: int):
    """The (train, test) index pairs of our k folds, so that EconML cross-fits on the same split."""
    for test in folds(n, k, seed):
        yield np.setdiff1d(np.arange(n), test, assume_unique=True), test


@dataclass(frozen=True)
class RefutationResult:
    method: str
    original: float
    refuted: float
    p_value: float
    passed: bool


def refute(
    y: np.ndarray, t: np.ndarray, w: np.ndarray, method: str, original: Est, seed: int
) -> list[RefutationResult]:
    rng = np.random.default_rng(seed + 1000)
    out = []
    placebo = dml_effect(y, rng.permutation(t), w, method, seed)
    out.append(
        RefutationResult("placebo_treatment", original.value, placebo.value, placebo.p_value, placebo.covers(0.0))
    )
    noisy = dml_effect(y, t, np.column_stack([w, rng.normal(size=y.size)]), method, seed)
    out.append(_stability("random_common_cause", original, noisy))
    subset = rng.random(y.size) < 0.8
    part = dml_effect(y[subset], t[subset], w[subset], method, seed)
    out.append(_stability("data_subset", original, part))
    return out


def _stability(name: str, original: Est, refuted: Est) -> RefutationResult:
    spread = max(original.std_error, refuted.std_error, 1e-12)
    z = abs(refuted.value - original.value) / spread
    return RefutationResult(name, original.value, refuted.value, float(2 * scipy_stats.norm.sf(z)), bool(z < 2))


@dataclass
class OutcomeModel:
    """A bootstrap ensemble of outcome models over factors and confounders (what-if, response curves)."""

    encoder: object
    models: list = field(default_factory=list)
    factor_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    outcome_std: float = 0.0
    seed: int = 0  # the analysis's random_seed: a review re-estimates with it (older pickles: 0)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        encoder: object,
        factors: Sequence[str],
        names: Sequence[str],
        seed: int,
        members: int = 5,
    ) -> OutcomeModel:
        rng = np.random.default_rng(seed)
        model = cls(encoder, outcome_std=float(np.std(y)), seed=seed)
        for b in range(members):
            idx = rng.integers(0, y.size, y.size)
            model.models.append(regressor(seed + b, n_estimators=120, min_child_samples=50).fit(x[idx], y[idx]))
        for name in factors:
            column = x[:, list(names).index(name)]
            model.factor_ranges[name] = (float(np.nanmin(column)), float(np.nanmax(column)))
        return model

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """members × rows."""
        return np.vstack([m.predict(x) for m in self.models])


def change_estimate(
    model: OutcomeModel, before: np.ndarray, after: np.ndarray, current: np.ndarray | None = None, population: int = 0
) -> tuple[Est, float, float]:
    """Mean predicted change (after − before) over the rows, with the spread across ensemble members.

    ``current``: the members' predictions for ``before`` when already known (members × rows). When the rows
    are a random sample of a larger ``population``, the sampling error of the mean is added to the interval.
    """
    current = model.predict_members(before) if current is None else current
    new = model.predict_members(after)
    per_row = new - current  # members × rows
    changes = per_row.mean(axis=1)
    model_var = float(changes.var(ddof=1)) if changes.size > 1 else 0.0
    rows = per_row.shape[1]
    sampling_var = (
        float(per_row.mean(axis=0).var(ddof=1)) / rows * (1 - rows / population) if population > rows > 1 else 0.0
    )
    se = float(np.sqrt(model_var + sampling_var))
    t_crit = float(scipy_stats.t.ppf(0.975, changes.size - 1))
    value = float(changes.mean())
    p = float(2 * scipy_stats.t.sf(abs(value) / se, changes.size - 1)) if se > 0 else (0.0 if value else 1.0)
    est = Est(value, se, value - t_crit * se, value + t_crit * se, 0.95, p)
    return est, float(current.mean()), float(new.mean())


@dataclass(frozen=True)
class Curve:
    values: np.ndarray
    means: np.ndarray
    ses: np.ndarray
    threshold: float | None
    nonlinear: bool


def factor_grid(values: np.ndarray, points: int) -> np.ndarray:
    """Where a response curve evaluates a factor: ``points`` values evenly across its observed range; a factor
    with at most two distinct values (0/1) at those values only, as it takes no other (its curve is linear by
    definition: no threshold, not nonlinear)."""
    distinct = np.unique(values[np.isfinite(values)])
    if 1 <= distinct.size <= 2:
        return distinct.astype(np.float64)
    return np.linspace(float(np.nanmin(values)), float(np.nanmax(values)), points)


def response_curve(model: OutcomeModel, x: np.ndarray, column: int, grid: np.ndarray) -> Curve:
    # One prediction per member over every grid point at once (per-call overhead dominates small batches).
    stacked = np.tile(x, (grid.size, 1))
    stacked[:, column] = np.repeat(grid, len(x))
    predictions = model.predict_members(stacked).reshape(len(model.models), grid.size, len(x))
    table = predictions.mean(axis=2).T  # points × members
    means, ses = table.mean(axis=1), table.std(axis=1, ddof=1)
    threshold, nonlinear = shape_of(grid, means, ses, model.outcome_std)
    return Curve(grid, means, ses, threshold, nonlinear)


def shape_of(grid: np.ndarray, means: np.ndarray, ses: np.ndarray, outcome_std: float) -> tuple[float | None, bool]:
    """A threshold: one step explains the curve (≥ 90% of its variation, far better than a line, and the jump
    is large against the ensemble's spread). Non-linear: a line leaves more than 10% of the variation and four
    times the ensemble's variance unexplained. Either only when the curve moves materially: by more than 10% of
    the outcome's standard deviation. Fewer than 4 points (a 0/1 factor's two): linear by definition."""
    if grid.size < 4 or np.ptp(means) <= 0.1 * outcome_std:
        return None, False
    total = float(np.sum((means - means.mean()) ** 2))
    if total <= 1e-18:
        return None, False
    slope, intercept = np.polyfit(grid, means, 1)
    linear_sse = float(np.sum((means - (slope * grid + intercept)) ** 2))
    best_sse, best_split = np.inf, -1
    for split in range(1, grid.size - 1):
        left, right = means[:split], means[split:]
        sse = float(np.sum((left - left.mean()) ** 2) + np.sum((right - right.mean()) ** 2))
        if sse < best_sse:
            best_sse, best_split = sse, split
    jump = abs(means[best_split:].mean() - means[:best_split].mean())
    noise = float(np.mean(ses)) if ses.size else 0.0
    has_step = best_sse <= 0.1 * total and best_sse < 0.25 * linear_sse and jump > 4 * noise
    threshold = float((grid[best_split - 1] + grid[best_split]) / 2) if has_step else None
    # Departures from a line must be large against the ensemble's own spread at each point, not wiggles.
    nonlinear = linear_sse > 0.1 * total and linear_sse > 4 * float(np.sum(ses**2))
    return threshold, bool(nonlinear or has_step)


def graph_adjustment(
    factor: str, outcome: str, candidates: Sequence[str], edges: Sequence[tuple[str, str]]
) -> list[str]:
    """The adjustment set for ``factor`` under a given graph: its parents, plus the outcome's other parents that
    are not descendants of the factor (they sharpen the estimate without opening a path)."""
    children: dict[str, set[str]] = {}
    for cause, effect in edges:
        children.setdefault(cause, set()).add(effect)
    descendants: set[str] = set()
    frontier = [factor]
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in descendants:
                descendants.add(child)
                frontier.append(child)
    parents = {c for c, e in edges if e == factor}
    precision = {c for c, e in edges if e == outcome and c != factor and c not in descendants}
    return [c for c in candidates if c in parents | precision and c != factor]


def default_graph(factors: Sequence[str], confounders: Sequence[str], outcome: str) -> list[tuple[str, str]]:
    edges = [(c, f) for f in factors for c in confounders if c != f]
    edges += [(f, outcome) for f in factors]
    edges += [(c, outcome) for c in confounders if c not in factors]
    return edges


def importance(effects: dict[str, Est], spreads: dict[str, float]) -> dict[str, float]:
    raw = {name: abs(e.value) * spreads[name] for name, e in effects.items()}
    total = sum(raw.values()) or 1.0
    return {name: value / total for name, value in raw.items()}


ProgressFn = Callable[[float, str], None]
