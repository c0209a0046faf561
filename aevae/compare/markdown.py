"""COMPARE.md: the two sides (versions, or models of one version), one row per cell and metric
with both sides' numbers, the change, its p-value and verdict, and what the seeds could
detect; then the metrics that do not apply to a side's model, what differs in the configs
and which cells only one side has. The same text is printed."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd

from aevae.compare.comparison import Comparison
from aevae.compare.power import MAX_SEEDS, POWER
from aevae.compare.stats import BETTER, HIGHER, LOWER, NOISE, ONE_SEED, WORSE, Change, Criterion
from aevae.report.applicable import and_list
from aevae.report.display import MISSING, decimals, mean_std
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


def percent_text(share: float) -> str:
    """A share as a percentage to two significant digits: 12%, 4.2%, 0.52%."""
    value = 100 * share
    return f"{value:.{decimals(value, 2)}f}%"


def detectable_text(change: Change) -> str:
    found = change.sensitivity
    if found is None:
        return MISSING
    if found.agree:
        return "seeds agree"
    return MISSING if found.detectable is None else percent_text(found.detectable)


def seeds_text(change: Change) -> str:
    found = change.sensitivity
    if found is None or found.agree or found.detectable is None:
        return MISSING
    return f"over {MAX_SEEDS}" if found.seeds is None else str(found.seeds)


def effect_header(effect: float) -> str:
    return f"seeds for {100 * effect:g}%"


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


def sensitivity_line(comparison: Comparison) -> str:
    """One sentence under the table: the median change the seeds at hand could detect, and
    the median seeds per side the asked effect would need."""
    found = [c for c in comparison.changes if c.sensitivity]
    agree = sum(c.sensitivity.agree for c in found)
    measured = [c for c in found if not c.sensitivity.agree and c.sensitivity.detectable is not None]
    left_out = (f" {agree} cell metric(s) whose seeds all agree on both sides are left out: any change "
                f"of them shows." if agree else "")
    if not measured:
        return ("**What these seeds can detect**: " +
                ("every tested cell metric's seeds agree on both sides, so any change of them shows." if agree
                 else "nothing: no cell metric has two or more seeds on both sides to test.") + "\n\n")
    sizes = [len(side) for c in measured for side in (c.a, c.b)]
    at_hand = f"{min(sizes)} per side" if min(sizes) == max(sizes) else f"{min(sizes)} to {max(sizes)} per side"
    detectable = statistics.median(c.sensitivity.detectable for c in measured)
    seeds = statistics.median_high(c.sensitivity.seeds or float("inf") for c in measured)
    needed = f"over {MAX_SEEDS}" if seeds == float("inf") else f"{seeds}"
    which, median = (("the one tested cell metric", "") if len(measured) == 1 else
                     (f"the median of the {len(measured)} tested cell metrics", "a median of "))
    return (f"**What these seeds can detect**: with the seeds at hand ({at_hand}), {which} would have to "
            f"change by {percent_text(detectable)} of A's mean for Welch's test to call it at alpha "
            f"{comparison.rule.alpha:g}, and finding a {100 * comparison.effect:g}% change with {POWER:.0%} "
            f"power would take {median}{needed} seeds per side.{left_out}\n\n")


def table(changes: list[Change], holm: bool, effect: float) -> pd.DataFrame:
    return pd.DataFrame({
        "cell": [c.cell for c in changes],
        "metric": [c.metric.header for c in changes],
        "A": [side_text(c.a) for c in changes],
        "B": [side_text(c.b) for c in changes],
        "change": [delta_text(c) for c in changes],
        "change %": [share_text(c) for c in changes],
        "p (Holm)" if holm else "p": [p_text(c.p) for c in changes],
        "verdict": [verdict_text(c.verdict) for c in changes],
        "detectable": [detectable_text(c) for c in changes],
        effect_header(effect): [seeds_text(c) for c in changes],
    })


def not_applicable_lines(comparison: Comparison) -> list[str]:
    """Each reason once, with the metrics and cells it keeps out of the comparison."""
    grouped: dict[tuple[str, str], tuple[dict, dict]] = {}
    for entry in comparison.not_applicable:
        headers, cells = grouped.setdefault((entry.where, entry.reason), ({}, {}))
        headers[entry.metric.header] = None
        cells[entry.cell] = None
    sides = {"A": f"A ({comparison.a.name})", "B": f"B ({comparison.b.name})", "both": "both sides"}
    return [f"- {and_list(list(headers))} of {', '.join(cells)}: n/a in {sides[where]}, not compared: "
            f"{reason.rstrip('.')}.\n" for (where, reason), (headers, cells) in grouped.items()]


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


def intro(comparison: Comparison) -> str:
    """What the table's columns are and how the verdict is reached."""
    rule = comparison.rule
    cells = ("every cell both finished" if comparison.between == "version" else
             "every cell (arch, dataset and other axes) both models finished")
    return (f"B against A in {cells}: mean ± sample sd over the seeds (n of them); "
            "**change** is B − A, and as a share of A's mean; **p** is Welch's two-sided t-test over "
            f"seeds (unequal variances); the **verdict** uses {rule_text(rule)} and each metric's "
            "direction: lower recon MSE and NLL, higher ELBO and pixel accuracy are better; KL has no "
            "better direction, so a change of it is called higher or lower. A cell with one seed on "
            "a side cannot be tested. **detectable** is the smallest change, in % of A's mean, that "
            "this test would call with the cell's seeds and their spread; "
            f"**{effect_header(comparison.effect)}** the seeds per side that would find a change of "
            f"{100 * comparison.effect:g}% of A's mean with {POWER:.0%} power (`--effect` sets it).\n\n")


def render(comparison: Comparison, figure_name: str | None) -> str:
    a, b, rule = comparison.a, comparison.b, comparison.rule
    parts = [
        f"# Compare: `{a.name}` → `{b.name}`\n\n",
        f"- **A**: {a.describe()}\n- **B**: {b.describe()}\n\n",
        intro(comparison),
        counts_line(comparison), "\n\n", chance_line(comparison),
        "## Changes per cell\n\n", to_markdown(table(comparison.changes, rule.holm, comparison.effect)), "\n\n",
        sensitivity_line(comparison) if comparison.changes else "",
    ]
    if comparison.not_applicable:
        parts += ["## Metrics that do not apply\n\n", *not_applicable_lines(comparison), "\n"]
    parts += [
        "## Config fields that differ\n\n", *config_lines(comparison), "\n",
        f"## Cells in one {comparison.between} only\n\n", *one_side_lines(comparison), "\n",
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

