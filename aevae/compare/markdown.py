"""COMPARE.md: the two versions, one row per cell and metric with both sides' numbers, the
change, its p-value and verdict, then what differs in the configs and which cells only one
side has. The same text is printed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aevae.compare.comparison import Comparison
from aevae.compare.stats import BETTER, HIGHER, LOWER, NOISE, ONE_SEED, WORSE, Change, Criterion
from aevae.report.display import decimals, mean_std
from aevae.report.tables import to_markdown

VERDICT_ORDER = (BETTER, WORSE, NOISE, HIGHER, LOWER, ONE_SEED)


def side_text(seeds: tuple[float, ...]) -> str:
    return mean_std(pd.Series(seeds, dtype=float), len(seeds)) + f" (n={len(seeds)})"


def delta_text(change: Change) -> str:
    """B - A, to the second significant digit of the larger spread (or of the change)."""
    spread = max(np.std(change.a, ddof=1) if len(change.a) > 1 else 0.0,
                 np.std(change.b, ddof=1) if len(change.b) > 1 else 0.0)
    places = decimals(float(f"{spread or abs(change.delta):.6g}"), 2)  # as report.display.mean_std
    return f"{change.delta:+.{places}f}"


def share_text(change: Change) -> str:
    relative = change.relative
    return "—" if relative is None else f"{relative:+.1%}"


def p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def verdict_text(verdict: str) -> str:
    return f"**{verdict}**" if verdict in (BETTER, WORSE) else verdict


def rule_text(rule: Criterion) -> str:
    text = f"alpha = {rule.alpha:g}"
    if rule.holm:
        text += ", p-values Holm-adjusted over every test in the table"
    if rule.min_effect:
        text += f", and a change of at least {rule.min_effect:.2%} of A's mean"
    return text


def counts_line(comparison: Comparison) -> str:
    verdicts = pd.Series([c.verdict for c in comparison.changes], dtype="object").value_counts()
    order = [v for v in VERDICT_ORDER if v in verdicts] + [v for v in verdicts.index if v not in VERDICT_ORDER]
    shown = ", ".join(f"{verdicts[v]} {v}" for v in order) or "nothing to compare"
    return f"**{len(comparison.changes)} cell metrics compared: {shown}.**"


def chance_line(comparison: Comparison) -> str:
    """How many calls chance alone would make, so a lone 'better' in a big table is read
    for what it may be."""
    tested = sum(c.tested for c in comparison.changes)
    rule = comparison.rule
    if not tested or rule.holm:
        return ""
    return (f"{tested} tests at alpha {rule.alpha:g}: were nothing different, about "
            f"{tested * rule.alpha:.1f} of them would still read as a change by chance (`--holm` "
            f"adjusts the p-values for that).\n\n")


def table(changes: list[Change], holm: bool) -> pd.DataFrame:
    return pd.DataFrame({
        "cell": [c.cell for c in changes],
        "metric": [c.metric.header for c in changes],
        "A": [side_text(c.a) for c in changes],
        "B": [side_text(c.b) for c in changes],
        "change": [delta_text(c) for c in changes],
        "change %": [share_text(c) for c in changes],
        "p (Holm)" if holm else "p": [p_text(c.p) for c in changes],
        "verdict": [verdict_text(c.verdict) for c in changes],
    })


def config_lines(comparison: Comparison) -> list[str]:
    if not comparison.config:
        return ["The two sides ran the same config in every cell both finished: what differs is "
                "the code (or the libraries and machine; see the runs' tags).\n"]
    lines = []
    for name, before, after, cells in comparison.config:
        shown = ", ".join(cells[:6]) + (f" and {len(cells) - 6} more" if len(cells) > 6 else "")
        lines.append(f"- `{name}`: {before} → {after} ({shown})\n")
    return lines


def one_side_lines(comparison: Comparison) -> list[str]:
    lines = []
    if comparison.only_a:
        lines.append(f"- Only in A ({comparison.a.name}), no finished run in B: {', '.join(comparison.only_a)}\n")
    if comparison.only_b:
        lines.append(f"- Only in B ({comparison.b.name}), no finished run in A: {', '.join(comparison.only_b)}\n")
    if comparison.one_sided:
        lines.append(f"- Metrics one side logged and the other did not: {', '.join(comparison.one_sided)}\n")
    return lines or ["Every cell with a finished run on one side has one on the other.\n"]


def render(comparison: Comparison, figure_name: str | None) -> str:
    a, b, rule = comparison.a, comparison.b, comparison.rule
    parts = [
        f"# Compare: `{a.name}` → `{b.name}`\n\n",
        f"- **A**: {a.describe()}\n- **B**: {b.describe()}\n\n",
        "B against A in every cell both finished: mean ± sample sd over the seeds (n of them); "
        "**change** is B − A, and as a share of A's mean; **p** is Welch's two-sided t-test over "
        f"seeds (unequal variances); the **verdict** uses {rule_text(rule)} and each metric's "
        "direction: lower recon MSE and NLL, higher ELBO and pixel accuracy are better; KL has no "
        "better direction, so a change of it is called higher or lower. A cell with one seed on "
        "a side cannot be tested.\n\n",
        counts_line(comparison), "\n\n", chance_line(comparison),
        "## Changes per cell\n\n", to_markdown(table(comparison.changes, rule.holm)), "\n\n",
        "## Config fields that differ\n\n", *config_lines(comparison), "\n",
        "## Cells in one version only\n\n", *one_side_lines(comparison), "\n",
    ]
    if figure_name:
        level = f"{1 - rule.alpha:.0%}".rstrip("%")
        parts += ["## Figure\n\n",
                  f"Each cell's change in percent of A's mean, with its {level}% confidence interval "
                  f"(Welch; unadjusted), coloured by verdict.\n\n", f"![changes per cell]({figure_name})\n"]
    return "".join(parts)


def regression_lines(comparison: Comparison) -> list[str]:
    """What the CI gate prints: each cell metric that got worse, and what it could not test."""
    lines = [f"worse beyond noise: {c.cell} {c.metric.header}: {side_text(c.a)} → {side_text(c.b)} "
             f"(p = {p_text(c.p)})" for c in comparison.regressions]
    if comparison.untested:
        lines.append(f"not tested (one seed on a side): {len(comparison.untested)} cell metrics; run "
                     f"the grids with --seeds 0,1,2 for the gate to judge them")
    return lines

