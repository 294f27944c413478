"""Population stability index (PSI) between a reference sample and a current one.

Numbers: ten bins at the reference's deciles (fewer when values repeat), missing values their own bin. Text:
one bin per category. PSI = Σ (c − r) · ln(c / r) over the bins' shares r (reference) and c (current), each
share floored at 0.0001. Reading: < 0.1 stable, 0.1–0.25 a moderate shift, > 0.25 a large shift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLOOR = 1e-4


def _psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    r = np.maximum(reference_counts / max(reference_counts.sum(), 1), FLOOR)
    c = np.maximum(current_counts / max(current_counts.sum(), 1), FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    ref = reference[~np.isnan(reference)]
    if ref.size == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))

    def counts(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        placed = np.searchsorted(edges, values[~missing], side="right")
        return np.append(np.bincount(placed, minlength=edges.size + 1), missing.sum())

    return _psi(counts(reference), counts(current))


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    ref = reference.astype(object).fillna("<missing>").value_counts()
    cur = current.astype(object).fillna("<missing>").value_counts()
    categories = sorted(set(ref.index) | set(cur.index), key=str)
    return _psi(ref.reindex(categories, fill_value=0).to_numpy(), cur.reindex(categories, fill_value=0).to_numpy())
