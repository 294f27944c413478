"""Input checks shared by every fit: each refusal names the column and says what to do.

Covered: unknown, all-missing or constant columns; labels that are not binary or have missing values; a
treatment with a single value, a missing control value or too few rows per arm; and leaky features (a
feature that alone predicts the label almost perfectly is the outcome in disguise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_modeling.frame import Frame

HIDDEN = "a level 3+ value, not shown"


def is_sensitive(frame: Frame, name: str) -> bool:
    """A column declared level 3 or 4: its values never appear in a message."""
    spec = frame.spec(name)
    return spec is not None and spec.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3


def plain(value: object) -> str:
    """A data value for a message as a caller wrote it: 0, 1.5, 'Mens E-Mail' (not np.float64(0.0))."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def shown(frame: Frame, name: str, value: object) -> str:
    """``value`` of column ``name`` for a message, or a placeholder when the column is level 3+."""
    return HIDDEN if is_sensitive(frame, name) else plain(value)


def _bad(field_path: str, message: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(field_path, message, reason)])


def require_column(frame: Frame, name: str, field_path: str) -> None:
    if not name:
        raise _bad(field_path, f"{field_path} is required", "MISSING_FIELD")
    if frame.spec(name) is None:
        known = ", ".join(c.name for c in frame.columns[:30])
        raise _bad(field_path, f"column {name!r} is not in the dataset (its columns: {known})")


def numeric_column(frame: Frame, name: str, field_path: str) -> np.ndarray:
    """A numeric column without missing values (labels, outcomes)."""
    require_column(frame, name, field_path)
    if frame.is_string(name):
        raise _bad(field_path, f"column {name!r} holds text: an outcome must be numeric (0/1 or a number)")
    values = frame.data[name].to_numpy(dtype=np.float64)
    missing = int(np.isnan(values).sum())
    if missing:
        raise _bad(field_path, f"column {name!r} has {missing} missing values: an outcome must be known for every row")
    if np.unique(values).size < 2:
        raise _bad(
            field_path, f"column {name!r} is constant ({shown(frame, name, values[0])} in every row): nothing to learn"
        )
    return values


def binary_label(frame: Frame, name: str, field_path: str) -> np.ndarray:
    values = numeric_column(frame, name, field_path)
    if not np.isin(values, (0.0, 1.0)).all():
        raise _bad(field_path, f"column {name!r} is not binary (0/1): a propensity label must be 0 or 1")
    return values


def feature_columns(frame: Frame, requested: Sequence[str], exclude: Sequence[str], field_path: str) -> list[str]:
    """The requested features (or the default ones but ``exclude``: FEATURE columns and numeric SURVEY answers),
    each present, not all missing, not constant, and not free text. A requested column that is none of these is
    refused; a default one is left out (a profile snapshot has windows that are all zero at its moment), and only
    when none is left is the request refused."""
    names = list(requested) or [n for n in frame.default_features() if n not in exclude]
    if not names:
        raise _bad(field_path, "no feature columns: name them, or mark columns with role FEATURE", "MISSING_FIELD")
    usable, left_out = [], []
    for i, name in enumerate(names):
        where = f"{field_path}[{i}]" if requested else field_path
        require_column(frame, name, where)
        if name in exclude:
            raise _bad(where, f"column {name!r} is the outcome, the treatment or an id: it cannot also be a feature")
        problem = feature_problem(frame, name)
        if problem and requested:
            raise _bad(where, problem)
        (left_out if problem else usable).append(name)
    if not usable:
        raise _bad(
            field_path,
            f"none of the {len(left_out)} FEATURE columns can be used (each is empty, constant or free text, e.g. "
            f"{feature_problem(frame, left_out[0])}): name the features",
            "MISSING_FIELD",
        )
    return usable


def feature_problem(frame: Frame, name: str) -> str:
    """Why the column cannot be a feature (empty, constant, free text), or ""."""
    values = frame.data[name]
    if values.isna().all():
        return f"column {name!r} has no values (every row is missing): drop it"
    distinct = values.nunique(dropna=True)
    if distinct < 2:
        return f"column {name!r} is constant ({shown(frame, name, values.dropna().iloc[0])} in every row): drop it"
    if frame.is_string(name) and distinct > FREE_TEXT_DISTINCT and distinct > 0.5 * values.notna().sum():
        return (
            f"column {name!r} looks like free text or an id ({distinct} distinct values): it cannot be a "
            "feature; give it role IGNORED, or derive categories from it first"
        )
    return ""


FREE_TEXT_DISTINCT = 100
"""A text column with more distinct values than this, and than half its rows, is free text, not a category."""


@dataclass
class FeatureEncoder:
    """Features as a float matrix: text columns as category codes (unknown or missing: NaN)."""

    features: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: Frame, features: Sequence[str]) -> FeatureEncoder:
        categories = {
            name: sorted(str(v) for v in frame.data[name].dropna().unique())
            for name in features
            if frame.is_string(name)
        }
        return cls(list(features), categories)

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, name in enumerate(self.features) if name in self.categories]

    def transform(self, data: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(data), len(self.features)), dtype=np.float64)
        for i, name in enumerate(self.features):
            if name not in data.columns:
                raise _bad("columns", f"column {name!r} is missing: the model needs {', '.join(self.features)}")
            values = data[name]
            if name in self.categories:
                codes = pd.Categorical(values.astype(object), categories=self.categories[name]).codes
                out[:, i] = np.where(codes < 0, np.nan, codes)
            else:
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
                not_number = values.notna().to_numpy() & np.isnan(numbers)
                if not_number.any():  # only an unset value is missing: text is an error, not a NaN
                    row = int(np.argmax(not_number))
                    raise _bad(
                        "rows",
                        f"column {name!r} is numeric but row {row} holds {values.iloc[row]!r}: send a number "
                        "or leave it unset",
                    )
                if np.isinf(numbers).any():
                    raise _bad(
                        "rows", f"column {name!r} holds an infinite value: send finite numbers or leave it unset"
                    )
                out[:, i] = numbers
        return out


def effect_covariates(
    frame: Frame, requested: Sequence[str], exclude: Sequence[str], outcomes: dict[str, np.ndarray], threshold: float
) -> np.ndarray:
    """The covariates AIPW adjusts for, encoded. They must be named: only the analyst knows which columns were
    measured before assignment, and adjusting for a post-treatment column (another outcome of the experiment,
    e.g. spend when asking for conversion) drives the effect to a confident zero. A named covariate that alone
    predicts an outcome is refused as leaky."""
    if not requested:
        raise _bad(
            "covariates",
            "method aipw needs its covariates named: columns measured before the treatment was assigned "
            "(never another outcome of the experiment)",
            "MISSING_FIELD",
        )
    names = feature_columns(frame, requested, exclude, "covariates")
    x = FeatureEncoder.fit(frame, names).transform(frame.data)
    for y in outcomes.values():
        check_leakage(x, names, y, threshold, "covariates")
    return x


def check_leakage(
    x: np.ndarray, names: Sequence[str], y: np.ndarray, threshold: float, field_path: str = "feature_columns"
) -> None:
    """Refuse a feature that alone predicts the outcome almost perfectly (AUC, or |Spearman ρ| for numbers)."""
    binary = np.isin(y, (0.0, 1.0)).all()
    for i, name in enumerate(names):
        column = x[:, i]
        filled = np.where(np.isnan(column), np.nanmedian(column) if not np.isnan(column).all() else 0.0, column)
        if np.unique(filled).size < 2:
            continue
        if binary:
            score = _auc(y, filled)
            strength = max(score, 1 - score)
            what = f"alone it separates the outcome with AUC {strength:.3f}"
        else:
            rho = pd.Series(filled).rank().corr(pd.Series(y).rank())
            strength = abs(float(rho)) if np.isfinite(rho) else 0.0
            what = f"its rank correlation with the outcome is {strength:.3f}"
        if strength >= threshold:
            message = (
                f"feature {name!r} looks like the outcome in disguise (leaky): {what}. "
                "Drop it, or use only values known before the outcome"
            )
            raise InvalidArgument(message, reason="VALUE_NOT_ALLOWED", violations=[FieldViolation(field_path, message)])


def _check_named_level_3_arms(
    values: np.ndarray, column: str, control: str, arms: Sequence[str], min_rows: int
) -> None:
    """The caller's control value and interventions in a level 3+ column: one refusal, naming no value, whether a
    value is absent or has too few rows (else the refusal would confirm that a phone number is in the dataset)."""
    for field_path, value in [
        ("control_value", control),
        *((f"interventions[{i}].name", a) for i, a in enumerate(arms)),
    ]:
        if int((values == value).sum()) < min_rows:
            raise FailedPrecondition(
                f"{field_path} is not usable: column {column!r} is level 3+, so whether a value is in it and how many "
                f"rows it has are not shown; an arm needs a value of the column with at least {min_rows} rows",
                reason="FAILED_PRECONDITION",
                metadata={"arm": HIDDEN},
            )


def treatment_arms(
    frame: Frame, column: str, control: str, field_path: str, min_rows: int, arms: Sequence[str] = ()
) -> tuple[np.ndarray, list[str]]:
    """The treatment column as text, and the arms (values other than control) that have enough rows."""
    arms = list(arms)
    require_column(frame, column, field_path)
    raw = frame.data[column]
    if raw.isna().any():
        raise _bad(field_path, f"treatment column {column!r} has {int(raw.isna().sum())} missing values")
    if frame.is_string(column):
        values = raw.to_numpy(dtype=object)
    else:  # numbers as text, once per distinct value
        distinct_numbers, codes = np.unique(raw.to_numpy(dtype=np.float64), return_inverse=True)
        values = np.array([_text(float(v)) for v in distinct_numbers], dtype=object)[codes]
    distinct = sorted(set(values))
    secret = is_sensitive(frame, column)
    if len(distinct) < 2:
        single = HIDDEN if secret else repr(distinct[0])
        raise _bad(field_path, f"treatment column {column!r} has a single value ({single}): no comparison")
    if not control:
        raise _bad("control_value", "name the treatment value meaning 'no intervention'", "MISSING_FIELD")
    if control not in distinct and not secret:
        raise _bad("control_value", f"control value {control!r} is not in column {column!r} (values: {distinct[:20]})")
    chosen = list(arms) or [v for v in distinct if v != control]
    for i, arm in enumerate(arms):
        said = "this intervention" if secret else repr(arm)  # never a level 3+ value, even the caller's own
        if arm == control:
            raise _bad(f"interventions[{i}].name", f"{said} is the control value: it is not an intervention")
        if arm in arms[:i]:
            raise _bad(f"interventions[{i}].name", f"intervention {said} is named twice")
    if secret:
        _check_named_level_3_arms(values, column, control, arms, min_rows)
    for arm in [control, *chosen]:
        if arm not in distinct:
            raise _bad("interventions", f"intervention {arm!r} is not a value of column {column!r}")
        count = int((values == arm).sum())
        if count < min_rows:
            named = HIDDEN if secret else arm
            raise FailedPrecondition(
                f"too few rows in arm {named!r} of {column!r}: {count}, at least {min_rows} needed",
                reason="FAILED_PRECONDITION",
                metadata={"arm": named, "rows": str(count)},
            )
    return values, chosen


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged: one sort per feature."""
    ranks = rankdata(score)
    positives = float(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return 0.5
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def safe_name(text: str) -> str:
    """A value (e.g. "Mens E-Mail") as a column-name part ("mens_e_mail")."""
    out = "".join(ch.lower() if ch.isalnum() else "_" for ch in text).strip("_")
    return out or "value"
