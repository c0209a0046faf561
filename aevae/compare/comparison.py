"""Two sides read from MLflow (two versions of a grid, or two models of one version) and every
change between them judged, with what the seeds could detect beside it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from aevae.compare.defaults import EFFECT, HEADLINE
from aevae.compare.power import sensitivity
from aevae.compare.sides import Side, config_changes, model_sides, pick_sides
from aevae.compare.stats import WORSE, Change, Criterion, judge, metric_columns
from aevae.errors import ConfigError
from aevae.report.applicable import by_cell, reasons
from aevae.report.display import Column, ordered_cells
from aevae.tracking import default_tracking_uri, names
from aevae.tracking.reader import StoreReader


@dataclass(frozen=True)
class NotApplicable:
    """A metric of a cell that does not apply to the model of side `where` ('A', 'B' or
    'both'), so it is not compared, and why (the runs' `not_applicable` tag)."""

    cell: str
    metric: Column
    where: str
    reason: str


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
    not_applicable: list[NotApplicable] = field(default_factory=list)
    effect: float = EFFECT  # the change, a share of A's mean, whose seeds the table gives

    @property
    def between(self) -> str:
        """What the sides are: two versions, or two models of one version."""
        return "model" if self.a.model else "version"

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


def inapplicable(cell: str, metric: Column, reasons_a: dict, reasons_b: dict) -> list[NotApplicable]:
    """The metric's n/a on either side: one entry for both when they give the same reason."""
    a, b = reasons_a.get(metric.key), reasons_b.get(metric.key)
    if a is not None and a == b:
        return [NotApplicable(cell, metric, "both", a)]
    return [NotApplicable(cell, metric, where, reason) for where, reason in (("A", a), ("B", b)) if reason]


def collect(a: Side, b: Side, cells: list[str], keys) -> tuple[list[Change], list[str], list[NotApplicable]]:
    """A change for each cell both sides finished and each metric both sides logged, but
    for a metric that is 0 in every run of both (an AE's KL: nothing to compare); the
    metrics of those cells that one side logged and the other did not; and those that do
    not apply to a side's model."""
    changes, one_sided, not_applicable = [], [], []
    for cell in cells:
        runs_a = a.finished[a.finished["cell"] == cell]
        runs_b = b.finished[b.finished["cell"] == cell]
        reasons_a, reasons_b = reasons(runs_a), reasons(runs_b)
        for metric in metric_columns(keys):
            if metric.key in reasons_a or metric.key in reasons_b:
                not_applicable += inapplicable(cell, metric, reasons_a, reasons_b)
                continue
            seeds_a, seeds_b = values(runs_a, metric.key, metric.scale), values(runs_b, metric.key, metric.scale)
            if not any(seeds_a + seeds_b):
                continue
            if seeds_a and seeds_b:
                changes.append(Change(cell, metric, seeds_a, seeds_b))
            elif seeds_a or seeds_b:
                one_sided.append(f"{metric.header} of {cell} ({'A' if seeds_a else 'B'} only)")
    return changes, one_sided, not_applicable


def check_metrics(a: Side, b: Side, keys) -> None:
    """A metric no run of either side logged, and none says does not apply to its model, is
    a typo, not a comparison of nothing."""
    not_applicable = {key for side in (a, b) for found in by_cell(side.grid.slots).values()
                      for key in found}
    unknown = [key for key in keys if key not in a.finished and key not in b.finished and key not in not_applicable]
    if unknown:
        logged = sorted({c for side in (a, b) for c in side.finished if c.startswith(names.TEST_PREFIX)})
        raise ConfigError(f"no finished run of either side logged {', '.join(unknown)}; metrics they "
                          f"logged: {', '.join(logged) or 'none'}.")


def compare(first: str | None = None, second: str | None = None, tracking_uri: str | None = None,
            rule: Criterion = Criterion(), metrics=HEADLINE, effect: float = EFFECT,
            models: tuple[str, str] | None = None) -> Comparison:
    """Read the two sides from MLflow and judge every change (of `metrics`, metric keys):
    versions `first` and `second`, or, given `models`, those two models of version `first`.
    `effect` (a share of A's mean) is the change whose seeds per side the table gives."""
    reader = StoreReader(tracking_uri or default_tracking_uri())
    a, b = model_sides(reader, first, models) if models else pick_sides(reader, first, second)
    if metrics != HEADLINE:  # the headline's NLL is logged only when asked for: not a typo
        check_metrics(a, b, metrics)
    order = cell_order(a, b)
    in_a, in_b = set(a.cells()), set(b.cells())
    both = [c for c in order if c in in_a and c in in_b]
    changes, one_sided, not_applicable = collect(a, b, both, metrics)
    for change in judge(changes, rule):
        if change.tested:
            change.sensitivity = sensitivity(change.a, change.b, rule.alpha, effect)
    return Comparison(a, b, rule, changes, [c for c in order if c in in_a - in_b],
                      [c for c in order if c in in_b - in_a], config_changes(a, b, both), one_sided,
                      not_applicable, effect)
