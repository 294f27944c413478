"""Average treatment effects of each arm against control (experiment analysis).

``difference_in_means``: for a randomised experiment, arm mean minus control mean with the Neyman
(unequal-variance) standard error. ``aipw``: augmented inverse-propensity weighting with cross-fitted
LightGBM nuisance models (propensity of the arm vs control, outcome per group), for when assignment
depended on covariates; the standard error comes from the influence function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from svc_modeling.methods.stats import Est, classifier, folds, regressor

PROPENSITY_CLIP = 0.01


@dataclass(frozen=True)
class ArmEffect:
    arm: str
    outcome: str
    arm_rows: int
    control_rows: int
    arm_mean: float
    control_mean: float
    effect: Est


def difference_in_means(y: np.ndarray, treated: np.ndarray, control: np.ndarray, confidence: float) -> Est:
    y1, y0 = y[treated], y[control]
    se = np.sqrt(y1.var(ddof=1) / y1.size + y0.var(ddof=1) / y0.size)
    return Est.normal(float(y1.mean() - y0.mean()), float(se), confidence)


def aipw_scores(y: np.ndarray, t: np.ndarray, x: np.ndarray, seed: int, k: int = 3) -> np.ndarray:
    """Per-row doubly robust scores ψ; their mean is the ATE (t is 0/1)."""
    psi = np.empty(y.size)
    for i, test in enumerate(folds(y.size, k, seed)):
        train = np.setdiff1d(np.arange(y.size), test, assume_unique=True)
        e = classifier(seed + i, n_estimators=50).fit(x[train], t[train]).predict_proba(x[test])[:, 1]
        e = np.clip(e, PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)
        tr1, tr0 = train[t[train] == 1], train[t[train] == 0]
        mu1 = regressor(seed + i, n_estimators=50).fit(x[tr1], y[tr1]).predict(x[test])
        mu0 = regressor(seed + i, n_estimators=50).fit(x[tr0], y[tr0]).predict(x[test])
        tt, yt = t[test], y[test]
        psi[test] = mu1 - mu0 + tt * (yt - mu1) / e - (1 - tt) * (yt - mu0) / (1 - e)
    return psi


def average_effects(
    treatment: np.ndarray,
    control_value: str,
    arms: list[str],
    outcomes: dict[str, np.ndarray],
    *,
    method: str,
    x: np.ndarray | None,
    confidence: float,
    seed: int,
    progress: Callable[[float, str], None] = lambda p, m: None,
) -> list[ArmEffect]:
    control = treatment == control_value
    results = []
    steps = max(1, len(arms) * len(outcomes))
    for a, arm in enumerate(arms):
        treated = treatment == arm
        for o, (name, y) in enumerate(outcomes.items()):
            progress(100 * (a * len(outcomes) + o) / steps, f"{arm} on {name}")
            if method == "aipw":
                assert x is not None
                rows = treated | control
                psi = aipw_scores(y[rows], treated[rows].astype(float), x[rows], seed)
                effect = Est.normal(float(psi.mean()), float(psi.std(ddof=1) / np.sqrt(psi.size)), confidence)
            else:
                effect = difference_in_means(y, treated, control, confidence)
            results.append(
                ArmEffect(
                    arm=arm,
                    outcome=name,
                    arm_rows=int(treated.sum()),
                    control_rows=int(control.sum()),
                    arm_mean=float(y[treated].mean()),
                    control_mean=float(y[control].mean()),
                    effect=effect,
                )
            )
    return results
