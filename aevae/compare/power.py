"""What the seeds of a comparison can detect, beside every verdict: "within noise" with three
seeds may mean "no change" or "too few seeds to tell", and these two numbers say which.

For a cell metric with seeds a (n_a of them, mean m_a, sample variance s_a²) and b:

- **detectable**: the smallest difference of means that Welch's test would call at level
  alpha, given the cell's own seed spread, in % of |m_a|:

      se = sqrt(s_a²/n_a + s_b²/n_b)                                (standard error of m_b − m_a)
      df = se⁴ / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1))    (Welch–Satterthwaite)
      detectable = t_{1−alpha/2, df} · se / |m_a|

  A difference this size gives |t| equal to the critical value, so the test calls it about
  half the time; with many seeds t_{1−alpha/2, df} tends to z_{1−alpha/2} (1.96 at 0.05).
  It uses the unadjusted alpha: with `--holm` the bar is higher still.

- **seeds for PCT%**: the fewest seeds per side with which the two-sample t-test (pooled
  variance, the textbook power calculation) finds a change of PCT% of |m_a| with 80% power:

      s_p² = ((n_a − 1) s_a² + (n_b − 1) s_b²) / (n_a + n_b − 2)    (pooled spread)
      d = PCT/100 · |m_a| / s_p                                     (standardized effect)
      power(n) = P(|T| > t_{1−alpha/2, 2n−2}),  T ~ noncentral t(2n − 2, d · sqrt(n/2))
               = sf(t_crit; 2n − 2, d · sqrt(n/2)) + sf(t_crit; 2n − 2, −d · sqrt(n/2))

  searched over n = 2 ... 1000 (power grows with n); beyond that, "over 1000".

Metrics whose seeds all agree on both sides (deterministic on one machine) have no spread to
judge by: any change of them shows, and neither number applies. Both come from
scipy.stats's t and noncentral t distributions, not from tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aevae.compare.defaults import EFFECT

POWER = 0.8  # the chance of finding a real change that a study is planned for, by convention
MAX_SEEDS = 1000  # per side: beyond this a change is out of a benchmark's reach


@dataclass(frozen=True)
class Sensitivity:
    """What one cell metric's seeds can detect. `agree`: every seed of both sides gave the
    same value, so neither number applies; otherwise `detectable` is a share of |A's mean|
    (None when A's mean is 0) and `seeds` the seeds per side for the asked effect (None:
    over MAX_SEEDS, or A's mean is 0)."""

    agree: bool
    detectable: float | None = None
    seeds: int | None = None


def welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch–Satterthwaite degrees of freedom of the difference of two means."""
    wa, wb = var_a / n_a, var_b / n_b
    return (wa + wb) ** 2 / (wa ** 2 / (n_a - 1) + wb ** 2 / (n_b - 1))


def detectable_difference(a, b, alpha: float) -> float:
    """The difference of means Welch's two-sided test calls at level `alpha` with these
    seeds' spreads: the critical t times the standard error (same units as the values)."""
    var_a, var_b = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    se = math.sqrt(var_a / len(a) + var_b / len(b))
    return float(stats.t.ppf(1 - alpha / 2, welch_df(var_a, len(a), var_b, len(b)))) * se


def pooled_sd(a, b) -> float:
    """The two sides' common spread, as the pooled two-sample t-test estimates it."""
    ss = float(np.var(a, ddof=1)) * (len(a) - 1) + float(np.var(b, ddof=1)) * (len(b) - 1)
    return math.sqrt(ss / (len(a) + len(b) - 2))


def power(n: int, d: float, alpha: float) -> float:
    """The chance that a two-sided two-sample t-test at level `alpha`, with `n` seeds per
    side, calls a true difference of `d` pooled standard deviations."""
    df = 2 * n - 2
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = d * math.sqrt(n / 2)
    # The lower tail as the upper tail of the mirrored distribution: scipy's nct.cdf far in
    # the left tail returns nan where this returns its value (0 to double precision).
    return float(stats.nct.sf(critical, df, shift) + stats.nct.sf(critical, df, -shift))


def seeds_needed(d: float, alpha: float, wanted: float = POWER, cap: int = MAX_SEEDS) -> int | None:
    """The fewest seeds per side (2 or more) with `power` at least `wanted`; None when even
    `cap` are too few. Bisection, since power grows with n."""
    if power(cap, d, alpha) < wanted:
        return None
    low, high = 1, cap  # power(low) < wanted <= power(high), taking power(1) as 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power(middle, d, alpha) >= wanted else (middle, high)
    return high


def sensitivity(a, b, alpha: float, effect: float = EFFECT) -> Sensitivity:
    """Both numbers for one cell metric's seeds `a` and `b` (two or more on each side)."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return Sensitivity(agree=True)
    base = abs(float(np.mean(a)))
    if base == 0:
        return Sensitivity(agree=False)
    return Sensitivity(False, detectable_difference(a, b, alpha) / base,
                       seeds_needed(effect * base / pooled_sd(a, b), alpha))
