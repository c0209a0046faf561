"""The changes per cell as one figure: a panel per metric, a bar per cell with B's change in
percent of A's mean, its confidence interval, and the verdict as the bar's colour."""

from __future__ import annotations

from pathlib import Path

import matplotlib.patches
import numpy as np
import pandas as pd

from aevae.plotting import plt, sns
from aevae.compare.stats import BETTER, HIGHER, LOWER, NOISE, ONE_SEED, WORSE, Change, Criterion
from aevae.report.plots import save

FILE = "changes.png"


def palette(rule: Criterion) -> dict[str, tuple]:
    """Better and worse in the colour-blind palette's green and vermilion; a change that is
    not a call in greys."""
    colours = sns.color_palette("colorblind")
    return {BETTER: colours[2], WORSE: colours[3], HIGHER: colours[0], LOWER: colours[0],
            NOISE: (0.7, 0.7, 0.7), rule.negligible: (0.55, 0.55, 0.55), ONE_SEED: (0.88, 0.88, 0.88)}


def frame(changes: list[Change]) -> pd.DataFrame:
    """One row per change with a percent (A's mean is not 0), its interval in percent."""
    rows = []
    for change in changes:
        if change.relative is None:
            continue
        base = abs(float(np.mean(change.a)))
        low, high = change.ci if change.ci else (change.delta, change.delta)
        direction = f"\n({change.metric.better} is better)" if change.metric.better else "\n(no better direction)"
        rows.append({"cell": change.cell, "metric": change.metric.header + direction, "verdict": change.verdict,
                     "change": 100 * change.relative, "low": 100 * low / base, "high": 100 * high / base})
    return pd.DataFrame(rows, columns=["cell", "metric", "verdict", "change", "low", "high"])


def changes(changes: list[Change], a: str, b: str, rule: Criterion, folder: Path) -> Path | None:
    """`changes.png` in `folder`, or None when no change has a percent to draw."""
    data = frame(changes)
    if data.empty:
        return None
    metrics = list(dict.fromkeys(data["metric"]))
    cells = list(dict.fromkeys(data["cell"]))
    colours = palette(rule)
    with sns.axes_style("whitegrid"):
        figure, axes = plt.subplots(1, len(metrics), squeeze=False, sharey=True,
                                    figsize=(3.4 * len(metrics) + 1.6, 0.32 * len(cells) + 1.9))
    for ax, metric in zip(axes[0], metrics):
        rows = data[data["metric"] == metric]
        sns.barplot(rows, x="change", y="cell", hue="verdict", order=cells, palette=colours,
                    dodge=False, legend=False, ax=ax)
        positions = [cells.index(c) for c in rows["cell"]]  # categorical y: 0, 1, ... in `cells` order
        # a change without an interval (one seed) has low = change = high, up to the rounding
        # of two orders of the same division: never below 0
        below, above = (rows["change"] - rows["low"]).clip(lower=0), (rows["high"] - rows["change"]).clip(lower=0)
        ax.errorbar(rows["change"], positions, xerr=[below, above],
                    fmt="none", ecolor="0.25", capsize=2, linewidth=0.8)
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.set(title=metric, xlabel="change (% of A's mean)", ylabel="")
        ax.tick_params(axis="y", labelsize=8)
    shown = [v for v in colours if v in set(data["verdict"])]
    handles = [matplotlib.patches.Patch(color=colours[v], label=v) for v in shown]
    figure.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=8)
    figure.suptitle(f"{b} against {a}", x=0.01, ha="left")
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / figure.get_figheight()))
    return save(figure, folder / FILE)
