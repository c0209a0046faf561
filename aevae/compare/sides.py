"""The two versions `aevae compare` puts side by side, read from MLflow like the report.

A side is written `GRID[@LABEL]`: a grid's name (its experiment `bench/<grid>`) or any
experiment's, and a version's label or a git commit its runs ran (aevae.bench.versions);
without `@LABEL` the newest version. `lab@` is the unlabelled version (runs logged before
versions existed). Given one side only, the other is the newest version of its grid, and
a first side without a label is the version before the newest: `aevae compare lab` asks
"what did the last change do?".

With `--models A,B` the two sides are two models of one version instead ("is my model
better?"): each side holds one model's cells, named without the model (`conv/mnist`), so
that a cell of one pairs with the cell of the other at the same arch, dataset and other axes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from aevae.bench import versions
from aevae.bench.defaults import DEFAULT_GRID
from aevae.errors import AevaeError
from aevae.registry import MODEL_TITLES
from aevae.report.display import rank
from aevae.report.runs import Experiment, GridRuns, grid_runs, read_experiment, versions_in
from aevae.tracking import names
from aevae.tracking.reader import StoreReader

IGNORED_PARAMS = ("seed",)  # differs between a cell's runs by design


class CompareError(AevaeError):
    """Two sides that cannot be compared: the same version twice, too few versions, or a
    model the version has no finished run of."""


@dataclass(frozen=True)
class Side:
    """One version of one experiment, or one model's cells of it: `name` as the tables show
    it (`lab@abc1234`, `lab@abc1234: iwae`)."""

    name: str
    grid: GridRuns
    model: str = ""  # the model whose cells the side holds; '' for every cell of the version

    @property
    def finished(self) -> pd.DataFrame:
        return self.grid.finished

    def cells(self) -> list[str]:
        """Cells with at least one finished run."""
        return list(dict.fromkeys(self.finished["cell"]))

    def describe(self) -> str:
        """Experiment, version, counts and the commits that ran it."""
        slots, finished = self.grid.slots, self.finished
        commits = finished[names.GIT_COMMIT].dropna().astype(str).str[:7].unique() \
            if names.GIT_COMMIT in finished else []
        dirty = int((finished[names.GIT_DIRTY] == "true").sum()) if names.GIT_DIRTY in finished else 0
        version = f"version `{self.grid.version}`" if self.grid.version else "the unlabelled version"
        version += f", model `{self.model}`" if self.model else ""
        text = (f"experiment `{self.grid.experiment.name}`, {version}: "
                f"{len(finished)} of {len(slots)} runs finished in {slots['cell'].nunique()} cells")
        if len(commits):
            text += f"; git commit {', '.join(f'`{c}`' for c in commits)}"
        if dirty:
            text += f" ({dirty} runs from a checkout with uncommitted changes, code or not)"
        return text


def parse_target(text: str) -> tuple[str, str | None]:
    """`lab@abc1234` -> ('lab', 'abc1234'); `lab` -> ('lab', None); `lab@` -> ('lab', '')."""
    if "@" not in text:
        return text, None
    target, _, label = text.rpartition("@")
    return target, label


def side_name(grid: GridRuns) -> str:
    return f"{grid.experiment.grid}@{grid.version}" if grid.version else f"{grid.experiment.grid} (unlabelled)"


def pick_sides(reader: StoreReader, first: str | None, second: str | None) -> tuple[Side, Side]:
    """The sides A and B that the command's targets name (see the module docstring)."""
    read: dict[str, tuple[Experiment, pd.DataFrame]] = {}

    def runs_of(target: str) -> tuple[Experiment, pd.DataFrame]:
        if target not in read:
            read[target] = read_experiment(reader, target)
        return read[target]

    target_a, label_a = parse_target(first or DEFAULT_GRID)
    target_b, label_b = parse_target(second) if second else (target_a, None)
    if second is None and label_a is None:
        experiment, raw = runs_of(target_a)
        found = versions_in(raw)
        if len(found) < 2:
            raise CompareError(
                f"experiment '{experiment.name}' has {len(found)} version(s) ({versions.listing(found)}): "
                f"run the grid again after a change (a new commit, or --label) to have two to "
                f"compare, or name both sides: aevae compare {target_a}@LABEL {target_a}@LABEL.")
        label_a = found[-2].label
    a = grid_runs(*runs_of(target_a), label_a)
    b = grid_runs(*runs_of(target_b), label_b)
    if a.experiment.id == b.experiment.id and a.version == b.version:
        raise CompareError(f"both sides are {side_name(a)}: name two different versions, "
                           f"e.g. aevae compare {a.experiment.grid}@OLD {a.experiment.grid}@NEW.")
    return Side(side_name(a), a), Side(side_name(b), b)


def without_model(cell: str) -> str:
    """`iwae/conv/mnist/beta=0.5` -> `conv/mnist/beta=0.5`."""
    return cell.split("/", 1)[1] if "/" in cell else cell


def of_model(grid: GridRuns, model: str) -> GridRuns:
    """The slots of `model` only, each cell named without its model."""
    slots = grid.slots[grid.slots["model"] == model].copy()
    slots["cell"] = slots["cell"].map(without_model)
    return dataclasses.replace(grid, slots=slots.reset_index(drop=True))


def model_sides(reader: StoreReader, target: str | None, models: tuple[str, str]) -> tuple[Side, Side]:
    """Sides A and B: models[0]'s and models[1]'s cells of one version (`GRID[@LABEL]`,
    without a label the newest)."""
    grid_target, label = parse_target(target or DEFAULT_GRID)
    grid = grid_runs(*read_experiment(reader, grid_target), label)
    finished = sorted(set(grid.finished["model"]), key=lambda model: rank(model, MODEL_TITLES))
    for model in models:
        if model not in finished:
            raise CompareError(f"{side_name(grid)} has no finished run of model '{model}'; models with "
                               f"finished runs there: {', '.join(finished) or 'none'}.")
    a, b = (Side(f"{side_name(grid)}: {model}", of_model(grid, model), model) for model in models)
    return a, b


def param_values(runs: pd.DataFrame, column: str) -> str:
    if column not in runs:
        return "—"
    values = sorted(runs[column].dropna().astype(str).unique())
    return ", ".join(values) if values else "—"


def config_changes(a: Side, b: Side, cells: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(field, A's values, B's values, cells) for every config field whose logged values
    differ between the sides in cells both have: what the change changed."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    columns = sorted({c for side in (a, b) for c in side.finished if c.startswith("params.")})
    for cell in cells:
        runs_a = a.finished[a.finished["cell"] == cell]
        runs_b = b.finished[b.finished["cell"] == cell]
        for column in columns:
            field = column.removeprefix("params.")
            before, after = param_values(runs_a, column), param_values(runs_b, column)
            if field not in IGNORED_PARAMS and before != after:
                grouped.setdefault((field, before, after), []).append(cell)
    return [(field, before, after, cells) for (field, before, after), cells in grouped.items()]
