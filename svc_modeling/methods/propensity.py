"""Propensity (binary) and regression models: gradient boosting, calibrated, with held-out metrics.

Fit: a stratified split into train and test (``test_fraction``); the train part is split again, 80% to fit
the booster and 20% to fit the calibration map (isotonic by default, or Platt's sigmoid, or none). Metrics
on the test part: AUC, log loss, Brier score, expected calibration error over 10 score bins, calibration
bins, lift of the positive rate per score decile over the base rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

from svc_common.errors import FieldViolation, InvalidArgument
from svc_modeling.methods import stats
from svc_modeling.methods.checks import FeatureEncoder

ALGORITHMS = ("lightgbm", "sklearn_hist_gbm")
CALIBRATIONS = ("isotonic", "sigmoid", "none")
# Hyperparameters a request may set, with their type and allowed range.
HYPERPARAMETERS: dict[str, tuple[type, float, float]] = {
    "n_estimators": (int, 1, 5000),
    "learning_rate": (float, 1e-4, 1.0),
    "num_leaves": (int, 2, 4096),
    "max_depth": (int, -1, 64),
    "min_child_samples": (int, 1, 100_000),
    "n_jobs": (int, -1, 256),
}
DEFAULTS: dict[str, Any] = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "max_depth": -1}


def parse_hyperparameters(raw: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """Typed hyperparameters and the calibration method; INVALID_ARGUMENT names a bad key."""
    params = dict(DEFAULTS)
    calibration = "isotonic"
    for key, text in raw.items():
        where = f"hyperparameters[{key}]"
        if key == "calibration":
            if text not in CALIBRATIONS:
                raise InvalidArgument(
                    f"{where}: {text!r} is not a calibration: one of {', '.join(CALIBRATIONS)}",
                    violations=[FieldViolation(where, f"one of {', '.join(CALIBRATIONS)}")],
                )
            calibration = text
            continue
        if key not in HYPERPARAMETERS:
            known = ", ".join([*HYPERPARAMETERS, "calibration"])
            raise InvalidArgument(
                f"unknown hyperparameter {key!r}", violations=[FieldViolation(where, f"one of {known}")]
            )
        kind, low, high = HYPERPARAMETERS[key]
        try:
            value = kind(text)
        except ValueError:
            raise InvalidArgument(
                f"{where} is not a{'n integer' if kind is int else ' number'}: {text!r}",
                violations=[FieldViolation(where, f"a number between {low:g} and {high:g}")],
            ) from None
        if not low <= value <= high:
            raise InvalidArgument(
                f"{where}={text} is out of range: between {low:g} and {high:g}",
                violations=[FieldViolation(where, f"between {low:g} and {high:g}")],
            )
        params[key] = value
    return params, calibration


def make_estimator(algorithm: str, params: Mapping[str, Any], seed: int, classify: bool) -> Any:
    if algorithm == "sklearn_hist_gbm":
        kwargs = {
            "max_iter": params["n_estimators"],
            "learning_rate": params["learning_rate"],
            "max_leaf_nodes": params["num_leaves"],
            "max_depth": None if params["max_depth"] in (-1, 0) else params["max_depth"],
            "random_state": seed,
            "early_stopping": False,
        }
        return HistGradientBoostingClassifier(**kwargs) if classify else HistGradientBoostingRegressor(**kwargs)
    kwargs = {
        "n_jobs": stats.FIT_THREADS,
        **{k: v for k, v in params.items() if k in HYPERPARAMETERS},
        "random_state": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    return lgb.LGBMClassifier(**kwargs) if classify else lgb.LGBMRegressor(**kwargs)


@dataclass
class Calibrator:
    method: str
    isotonic: IsotonicRegression | None = None
    logistic: LogisticRegression | None = None

    @classmethod
    def fit(cls, method: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if method == "isotonic":
            # Bounded away from 0 and 1 by half an observation: a block of calibration rows without a positive does
            # not prove a probability of 0 (walk 2026-12-06: 1,264 Hillstrom customers scored exactly 0.0, 1-2 % of
            # them visited; the 0 went into svc_profile's tags and a segment on score > 0 dropped them).
            bound = 0.5 / max(len(y), 1)
            isotonic = IsotonicRegression(out_of_bounds="clip", y_min=bound, y_max=1 - bound)
            return cls(method, isotonic=isotonic.fit(raw, y))
        if method == "sigmoid":
            return cls(method, logistic=LogisticRegression().fit(_logit(raw)[:, None], y))
        return cls("none")

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.isotonic is not None:
            return self.isotonic.predict(raw)
        if self.logistic is not None:
            return self.logistic.predict_proba(_logit(raw)[:, None])[:, 1]
        return raw


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class FittedModel:
    """What is stored as a model version's artifact."""

    encoder: FeatureEncoder
    estimator: Any
    calibrator: Calibrator | None
    classify: bool

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        if self.classify:
            raw = self.estimator.predict_proba(x)[:, 1]
            return self.calibrator(raw) if self.calibrator is not None else raw
        return self.estimator.predict(x)

    def importance(self) -> list[tuple[str, float]]:
        values = getattr(self.estimator, "feature_importances_", None)
        if values is None:
            return []
        if isinstance(self.estimator, lgb.LGBMModel):
            values = self.estimator.booster_.feature_importance(importance_type="gain")
        total = float(np.sum(values)) or 1.0
        pairs = [(name, float(v) / total) for name, v in zip(self.encoder.features, values, strict=True)]
        return sorted(pairs, key=lambda p: -p[1])


HIST_GBM_MAX_CATEGORIES = 255


def check_categories(algorithm: str, encoder: FeatureEncoder, field_path: str) -> None:
    """scikit-learn's histogram GBM takes at most 255 categories per text feature; LightGBM has no such limit."""
    if algorithm != "sklearn_hist_gbm":
        return
    for name, categories in encoder.categories.items():
        if len(categories) > HIST_GBM_MAX_CATEGORIES:
            raise InvalidArgument(
                f"text feature {name!r} has {len(categories)} categories: sklearn_hist_gbm takes at most "
                f"{HIST_GBM_MAX_CATEGORIES}; use algorithm lightgbm or group the categories",
                violations=[FieldViolation(field_path, f"{name!r}: at most {HIST_GBM_MAX_CATEGORIES} categories")],
            )


def fit_estimator(
    estimator: Any, x: np.ndarray, y: np.ndarray, categorical: list[int], tick: Callable[[int, int], None] | None = None
) -> Any:
    """Fit; LightGBM calls ``tick(iteration, total)`` after each boosting round (progress, and cancel by raising)."""
    if isinstance(estimator, lgb.LGBMModel):
        callbacks = [lambda env: tick(env.iteration + 1, env.end_iteration - env.begin_iteration)] if tick else None
        return estimator.fit(x, y, categorical_feature=categorical or "auto", callbacks=callbacks)
    if categorical:
        mask = np.zeros(x.shape[1], dtype=bool)
        mask[categorical] = True
        estimator.set_params(categorical_features=mask)
    return estimator.fit(x, y)


def train(
    x: np.ndarray,
    y: np.ndarray,
    encoder: FeatureEncoder,
    *,
    algorithm: str,
    params: Mapping[str, Any],
    calibration: str,
    classify: bool,
    test_fraction: float,
    seed: int,
    progress: Callable[[float, str], None] = lambda p, m: None,
) -> tuple[FittedModel, dict[str, Any]]:
    stratify = y if classify else None
    train_idx, test_idx = train_test_split(
        np.arange(y.size), test_size=test_fraction, random_state=seed, stratify=stratify
    )
    fit_idx, cal_idx = train_idx, np.array([], dtype=int)
    if classify and calibration != "none":
        fit_idx, cal_idx = train_test_split(train_idx, test_size=0.2, random_state=seed + 1, stratify=y[train_idx])
    progress(10, f"fitting {algorithm} on {fit_idx.size} rows")
    estimator = fit_estimator(
        make_estimator(algorithm, params, seed, classify),
        x[fit_idx],
        y[fit_idx],
        encoder.categorical_indices,
        tick=lambda i, n: progress(10 + 60 * i / max(n, 1), f"boosting round {i} of {n}"),
    )
    calibrator = None
    if classify:
        progress(70, f"calibrating ({calibration})")
        calibrator = (
            Calibrator.fit(calibration, estimator.predict_proba(x[cal_idx])[:, 1], y[cal_idx])
            if cal_idx.size
            else Calibrator("none")
        )
    model = FittedModel(encoder, estimator, calibrator, classify)
    progress(85, f"evaluating on {test_idx.size} held-out rows")
    predicted = model.predict_matrix(x[test_idx])
    metrics = classification_metrics(y[test_idx], predicted) if classify else regression_metrics(y[test_idx], predicted)
    metrics.update(train_rows=int(train_idx.size), test_rows=int(test_idx.size))
    return model, metrics


def classification_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    base = float(y.mean())
    order = np.argsort(-p, kind="stable")
    deciles = np.array_split(order, 10)
    lift = [float(y[d].mean() / base) if base > 0 and d.size else 0.0 for d in deciles]
    calibration = []
    ece = 0.0
    for part in np.array_split(np.argsort(p, kind="stable"), bins):
        if not part.size:
            continue
        predicted, observed = float(p[part].mean()), float(y[part].mean())
        calibration.append({"predicted_mean": predicted, "observed_rate": observed, "count": int(part.size)})
        ece += part.size / y.size * abs(predicted - observed)
    return {
        "auc": float(roc_auc_score(y, p)) if 0 < base < 1 else 0.5,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier_score": float(brier_score_loss(y, p)),
        "calibration_error": float(ece),
        "lift_by_decile": lift,
        "calibration": calibration,
        "base_rate": base,
    }


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    return {
        "rmse": float(np.sqrt(np.mean((y - predicted) ** 2))),
        "r2": float(r2_score(y, predicted)),
        "base_rate": float(y.mean()),
    }
