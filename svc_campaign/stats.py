"""The statistics of experiments, in plain Python (a base install has no numpy/scipy; the tests compare these
functions with scipy where the ``modeling`` extra is installed).

- Bayesian: Beta(1 + conversions, 1 + misses) posteriors per variant; P(best) and expected loss by Monte
  Carlo with a fixed seed (reproducible answers); Thompson sampling draws one sample per variant. For a value
  metric, Normal(mean, variance / n) posteriors of each variant's mean, by Monte Carlo the same way.
- Frequentist: two-proportion z-test against control (unpooled 95% interval, pooled-variance p-value),
  Welch's t-test for value metrics (spend), and a chi-square goodness-of-fit test of the observed split
  against the planned weights (sample ratio mismatch).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _gamma_series(a: float, x: float) -> float:
    total = term = 1.0 / a
    n = a
    for _ in range(10_000):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square(dof): the regularised upper incomplete gamma Q(dof/2, x/2)."""
    if statistic <= 0:
        return 1.0
    a, x = dof / 2.0, statistic / 2.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _gamma_series(a, x))
    return min(1.0, _gamma_fraction(a, x))


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (tiny if abs(d) < tiny else d)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (tiny if abs(d) < tiny else d)
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (tiny if abs(d) < tiny else d)
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_sf_two_sided(t: float, dof: float) -> float:
    """Two-sided p-value of Student's t with ``dof`` degrees of freedom."""
    if math.isinf(dof) or dof > 1e7:
        return 2.0 * (1.0 - normal_cdf(abs(t)))
    return betainc(dof / 2.0, 0.5, dof / (dof + t * t))


@dataclass(frozen=True)
class Comparison:
    lift: float
    low: float
    high: float
    p_value: float


def two_proportion(x_t: int, n_t: int, x_c: int, n_c: int) -> Comparison:
    """Treatment minus control rate, its 95% interval (unpooled) and two-sided p-value (pooled z-test)."""
    if n_t == 0 or n_c == 0:
        return Comparison(0.0, 0.0, 0.0, 1.0)
    p_t, p_c = x_t / n_t, x_c / n_c
    diff = p_t - p_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    pooled = (x_t + x_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = 1.0 if se0 == 0 else 2.0 * (1.0 - normal_cdf(abs(diff) / se0))
    return Comparison(diff, diff - Z95 * se, diff + Z95 * se, min(1.0, p_value))


def welch(
    n_t: int, sum_t: float, sumsq_t: float, n_c: int, sum_c: float, sumsq_c: float
) -> tuple[float, float, Comparison]:
    """Welch's t-test on means given counts, sums and sums of squares: (mean_t, mean_c, comparison)."""
    if n_t < 2 or n_c < 2:
        mean_t = sum_t / n_t if n_t else 0.0
        mean_c = sum_c / n_c if n_c else 0.0
        return mean_t, mean_c, Comparison(mean_t - mean_c, 0.0, 0.0, 1.0)
    mean_t, mean_c = sum_t / n_t, sum_c / n_c
    var_t = max(0.0, (sumsq_t - n_t * mean_t * mean_t) / (n_t - 1))
    var_c = max(0.0, (sumsq_c - n_c * mean_c * mean_c) / (n_c - 1))
    se2 = var_t / n_t + var_c / n_c
    diff = mean_t - mean_c
    if se2 == 0:
        return mean_t, mean_c, Comparison(diff, diff, diff, 1.0 if diff == 0 else 0.0)
    dof = se2 * se2 / ((var_t / n_t) ** 2 / (n_t - 1) + (var_c / n_c) ** 2 / (n_c - 1))
    t = diff / math.sqrt(se2)
    # 95% interval: t quantile by bisection on the two-sided tail.
    low_q, high_q = 0.0, 50.0
    for _ in range(80):
        mid = (low_q + high_q) / 2
        if t_sf_two_sided(mid, dof) > 0.05:
            low_q = mid
        else:
            high_q = mid
    half = high_q * math.sqrt(se2)
    return mean_t, mean_c, Comparison(diff, diff - half, diff + half, t_sf_two_sided(t, dof))


def srm_p_value(observed: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-square goodness of fit of the observed counts to the planned weights (1.0 when nothing to test)."""
    total = sum(observed)
    weight_sum = sum(weights)
    if total == 0 or weight_sum <= 0 or len(observed) < 2:
        return 1.0
    statistic = 0.0
    for count, weight in zip(observed, weights, strict=True):
        expected = total * weight / weight_sum
        if expected > 0:
            statistic += (count - expected) ** 2 / expected
    return chi2_sf(statistic, len(observed) - 1)


def bayesian(
    successes: Sequence[int], trials: Sequence[int], *, draws: int = 20_000, seed: int = 7
) -> tuple[list[float], list[float]]:
    """P(best) and expected loss (the rate given up by choosing it, on average) per variant."""
    k = len(successes)
    if k == 0:
        return [], []
    rng = random.Random(seed)
    wins = [0] * k
    loss = [0.0] * k
    params = [(1 + s, 1 + max(0, n - s)) for s, n in zip(successes, trials, strict=True)]
    for _ in range(draws):
        sample = [rng.betavariate(a, b) for a, b in params]
        best = max(sample)
        wins[sample.index(best)] += 1
        for i in range(k):
            loss[i] += best - sample[i]
    return [w / draws for w in wins], [v / draws for v in loss]


def bayesian_means(
    counts: Sequence[int],
    sums: Sequence[float],
    sums_sq: Sequence[float],
    *,
    draws: int = 20_000,
    seed: int = 7,
) -> tuple[list[float], list[float]]:
    """P(best) and expected loss per variant for a mean (value per exposure), from each mean's large-sample posterior
    Normal(mean, variance / n) — the Welch approximation, as the frequentist comparison uses.

    With fewer than two exposures in a variant its mean has no variance estimate: there is no evidence, so every
    variant gets an equal share and no loss (nothing can be promoted). Tied draws share the win, so variants with
    identical data (no value recorded at all, say) split P(best) instead of each getting 1."""
    k = len(counts)
    if k == 0:
        return [], []
    if min(counts) < 2:
        return [1.0 / k] * k, [0.0] * k
    params = []
    for n, total, total_sq in zip(counts, sums, sums_sq, strict=True):
        mean = total / n
        variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
        params.append((mean, math.sqrt(variance / n)))
    rng = random.Random(seed)
    wins = [0.0] * k
    loss = [0.0] * k
    for _ in range(draws):
        sample = [rng.gauss(mean, sd) if sd else mean for mean, sd in params]
        best = max(sample)
        leaders = [i for i in range(k) if sample[i] == best]
        for i in leaders:
            wins[i] += 1 / len(leaders)
        for i in range(k):
            loss[i] += best - sample[i]
    return [w / draws for w in wins], [v / draws for v in loss]


def thompson_pick(successes: Sequence[int], trials: Sequence[int], rng: random.Random) -> int:
    """The variant index with the highest draw from its posterior."""
    draws = [rng.betavariate(1 + s, 1 + max(0, n - s)) for s, n in zip(successes, trials, strict=True)]
    return draws.index(max(draws))


def thompson_shares(
    successes: Sequence[int], trials: Sequence[int], *, draws: int = 2_000, seed: int = 11
) -> list[float]:
    """The share each variant would get under Thompson sampling now (P(best) with fewer draws)."""
    rng = random.Random(seed)
    counts = [0] * len(successes)
    for _ in range(draws):
        counts[thompson_pick(successes, trials, rng)] += 1
    return [c / draws for c in counts]
