"""Whether a cell's metric changed beyond seed noise: Welch's t-test over the seeds of two
versions, and a verdict that knows which direction of each metric is better.

Welch's test (unequal variances) because a change of code can change a metric's spread as
well as its mean. It is unpaired: seed 0 of one version and seed 0 of another share a
number, not a random stream, once the code differs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aevae.compare.defaults import ALPHA
from aevae.compare.power import Sensitivity
from aevae.report.display import BY_KEY, Column

BETTER, WORSE, NOISE = "better", "worse", "within noise"
HIGHER, LOWER = "higher", "lower"  # beyond noise, for a metric without a better direction
ONE_SEED = "no test possible (one seed)"


@dataclass(frozen=True)
class Criterion:
    """When a change counts: p below `alpha` (Holm-adjusted over every test of the
    comparison when `holm`), and the means at least `min_effect` apart relative to A's."""

    alpha: float = ALPHA
    min_effect: float = 0.0
    holm: bool = False

    @property
    def negligible(self) -> str:
        return f"below {self.min_effect:.2%} (beyond noise)"


@dataclass
class Change:
    """One metric of one cell in sides A and B: the seeds' values (display scale), the
    test's p-value, the confidence interval of mean(B) - mean(A) at 1 - alpha, the verdict,
    and what the seeds could detect (aevae.compare.power; tested changes only)."""

    cell: str
    metric: Column
    a: tuple[float, ...]
    b: tuple[float, ...]
    p: float | None = None
    ci: tuple[float, float] | None = None
    verdict: str = ""
    sensitivity: Sensitivity | None = None

    @property
    def delta(self) -> float:
        return float(np.mean(self.b) - np.mean(self.a))

    @property
    def relative(self) -> float | None:
        """The change as a share of A's mean; None when A's mean is 0."""
        base = float(np.mean(self.a))
        return self.delta / abs(base) if base != 0 else None

    @property
    def tested(self) -> bool:
        return self.p is not None


def metric_columns(keys) -> list[Column]:
    """The report's columns (header, scale, better direction) of metric keys; a key the
    report does not know is shown as it is, without a direction."""
    return [BY_KEY.get(key, Column(key, key)) for key in keys]


def welch(a: tuple[float, ...], b: tuple[float, ...], alpha: float) -> tuple[float | None, tuple | None]:
    """(p, confidence interval of mean(b) - mean(a)) of Welch's two-sided t-test; (None,
    None) when a side has one value. Seeds that all agree on both sides (a deterministic
    metric that did not move) give p = 1 rather than the test's 0/0."""
    if len(a) < 2 or len(b) < 2:
        return None, None
    if np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]:
        return 1.0, (0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly equal values: scipy warns, still answers
        result = stats.ttest_ind(b, a, equal_var=False)
        interval = result.confidence_interval(1 - alpha)
    p = float(result.pvalue)
    return (p, (float(interval.low), float(interval.high))) if math.isfinite(p) else (None, None)


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment: the family-wise error rate of all the tests stays at
    alpha (a table of 40 tests at 0.05 would otherwise call about 2 changes by chance)."""
    order = sorted(range(len(ps)), key=ps.__getitem__)
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def verdict(change: Change, p: float | None, rule: Criterion) -> str:
    if p is None:
        return ONE_SEED
    if p >= rule.alpha:
        return NOISE
    relative = change.relative
    if relative is not None and abs(relative) < rule.min_effect:
        return rule.negligible
    up = change.delta > 0
    if not change.metric.better:
        return HIGHER if up else LOWER
    return BETTER if up == (change.metric.better == "higher") else WORSE


def judge(changes: list[Change], rule: Criterion) -> list[Change]:
    """Test every change and give it its verdict (Holm-adjusted p-values when the rule says)."""
    for change in changes:
        change.p, change.ci = welch(change.a, change.b, rule.alpha)
    tested = [c for c in changes if c.tested]
    if rule.holm and tested:
        for change, adjusted in zip(tested, holm([c.p for c in tested])):
            change.p = adjusted
    for change in changes:
        change.verdict = verdict(change, change.p, rule)
    return changes
