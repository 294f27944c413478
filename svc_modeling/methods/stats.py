"""Estimates with intervals, and the small models every method fits (LightGBM, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Est:
    """A point estimate with a normal-approximation (or bootstrap) interval."""

    value: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95
    p_value: float = float("nan")

    @classmethod
    def normal(cls, value: float, std_error: float, confidence: float = 0.95) -> Est:
        z = stats.norm.ppf(0.5 + confidence / 2)
        p = float(2 * stats.norm.sf(abs(value) / std_error)) if std_error > 0 else (0.0 if value else 1.0)
        return cls(
            float(value), float(std_error), float(value - z * std_error), float(value + z * std_error), confidence, p
        )

    @classmethod
    def from_samples(cls, value: float, samples: np.ndarray, confidence: float = 0.95) -> Est:
        """Percentile interval of bootstrap samples."""
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(samples, [tail, 100 - tail])
        return cls(float(value), float(np.std(samples, ddof=1)), float(low), float(high), confidence)

    def covers(self, value: float) -> bool:
        return self.ci_low <= value <= self.ci_high

    def as_dict(self) -> dict[str, float]:
        out = {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "std_error": self.std_error,
        }
        if np.isfinite(self.p_value):
            out["p_value"] = self.p_value
        return out


FIT_THREADS = 1
"""Threads per LightGBM fit (set from ``ModelingSettings.fit_threads`` at start). On a small shared machine
one thread is much faster than OpenMP's default of every core (threads spin waiting for each other)."""


def configure(fit_threads: int) -> None:
    global FIT_THREADS
    FIT_THREADS = fit_threads if fit_threads > 0 else -1


def lgb_params(seed: int, **overrides: object) -> dict[str, object]:
    """Small, quick, deterministic LightGBM settings for nuisance and uplift models."""
    params: dict[str, object] = {
        "n_estimators": 100,
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_child_samples": 20,
        "subsample": 1.0,
        "random_state": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        "n_jobs": FIT_THREADS,
    }
    params.update(overrides)
    return params


def regressor(seed: int, **overrides: object) -> lgb.LGBMRegressor:
    return lgb.LGBMRegressor(**lgb_params(seed, **overrides))


def classifier(seed: int, **overrides: object) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(**lgb_params(seed, **overrides))


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """Index sets of a random k-fold split."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]
