"""Two versions of a grid read from MLflow and every change between them judged."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from aevae.compare.defaults import HEADLINE
from aevae.compare.sides import Side, config_changes, pick_sides
from aevae.compare.stats import WORSE, Change, Criterion, judge, metric_columns
from aevae.errors import ConfigError
from aevae.report.display import ordered_cells
from aevae.tracking import default_tracking_uri, names
from aevae.tracking.reader import StoreReader


@dataclass
class Comparison:
    a: Side
    b: Side
    rule: Criterion
    changes: list[Change]
    only_a: list[str]  # cells with finished runs in A only
    only_b: list[str]
    config: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    one_sided: list[str] = field(default_factory=list)  # "<metric> of <cell> (A only)"

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == WORSE]

    @property
    def untested(self) -> list[Change]:
        return [c for c in self.changes if not c.tested]


def cell_order(a: Side, b: Side) -> list[str]:
    """Every cell of either side, in the report's order (dataset, arch, extra axes, model)."""
    slots = pd.concat([a.grid.slots, b.grid.slots], ignore_index=True)
    extra = sorted(set(a.grid.extra_axes) | set(b.grid.extra_axes))
    return ordered_cells(slots, extra)


def values(runs: pd.DataFrame, key: str, scale: float) -> tuple[float, ...]:
    if key not in runs:
        return ()
    return tuple(float(v) * scale for v in pd.to_numeric(runs[key], errors="coerce").dropna())


def collect(a: Side, b: Side, cells: list[str], keys) -> tuple[list[Change], list[str]]:
    """A change for each cell both sides finished and each metric both sides logged, but
    for a metric that is 0 in every run of both (an AE's KL: nothing to compare); and the
    metrics of those cells that one side logged and the other did not."""
    changes, one_sided = [], []
    for cell in cells:
        runs_a = a.finished[a.finished["cell"] == cell]
        runs_b = b.finished[b.finished["cell"] == cell]
        for metric in metric_columns(keys):
            seeds_a, seeds_b = values(runs_a, metric.key, metric.scale), values(runs_b, metric.key, metric.scale)
            if not any(seeds_a + seeds_b):
                continue
            if seeds_a and seeds_b:
                changes.append(Change(cell, metric, seeds_a, seeds_b))
            elif seeds_a or seeds_b:
                one_sided.append(f"{metric.header} of {cell} ({'A' if seeds_a else 'B'} only)")
    return changes, one_sided


def check_metrics(a: Side, b: Side, keys) -> None:
    """A metric no run of either side logged is a typo, not a comparison of nothing."""
    unknown = [key for key in keys if key not in a.finished and key not in b.finished]
    if unknown:
        logged = sorted({c for side in (a, b) for c in side.finished if c.startswith(names.TEST_PREFIX)})
        raise ConfigError(f"no finished run of either side logged {', '.join(unknown)}; metrics they "
                          f"logged: {', '.join(logged) or 'none'}.")


def compare(first: str | None = None, second: str | None = None, tracking_uri: str | None = None,
            rule: Criterion = Criterion(), metrics=HEADLINE) -> Comparison:
    """Read the two sides from MLflow and judge every change (of `metrics`, metric keys)."""
    reader = StoreReader(tracking_uri or default_tracking_uri())
    a, b = pick_sides(reader, first, second)
    if metrics != HEADLINE:  # the headline's NLL is logged only when asked for: not a typo
        check_metrics(a, b, metrics)
    order = cell_order(a, b)
    in_a, in_b = set(a.cells()), set(b.cells())
    both = [c for c in order if c in in_a and c in in_b]
    changes, one_sided = collect(a, b, both, metrics)
    return Comparison(a, b, rule, judge(changes, rule), [c for c in order if c in in_a - in_b],
                      [c for c in order if c in in_b - in_a], config_changes(a, b, both), one_sided)


