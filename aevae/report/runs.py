"""Reading a grid from MLflow: which experiment, which version of it (aevae.bench.versions),
which cells that version expects, and the one run that stands for each (cell, seed) slot.

Everything is read through aevae.tracking's `StoreReader` (experiment tags, one paged
search), so the report works on a tracking server and on runs logged by older aevae
versions; nothing here imports the training code (or torch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from aevae.bench import versions
from aevae.errors import AevaeError
from aevae.redact import redact
from aevae.report.titles import Titles
from aevae.tracking import names
from aevae.tracking.reader import StoreReader

KEY_AXES = (names.MODEL, names.ARCH, names.DATASET)
# Ordering of the states when one (cell, seed) has several runs: a finished run stands for
# the slot even if a later attempt failed or is still going.
STATUS_RANK = {"FINISHED": 0, "RUNNING": 1, "SCHEDULED": 2, "FAILED": 3, "KILLED": 4}
NOT_RUN = "NOT RUN"
PROVENANCE_TAGS = (names.GIT_COMMIT, names.GIT_DIRTY, names.DEVICE, names.PRECISION, names.TORCH_VERSION)
# What the run's model, arch and dataset are, as a reader names them (aevae.report.titles),
# and the metrics that do not apply to its model (aevae.report.applicable).
IDENTITY_TAGS = (names.MODEL_TITLE, names.ARCH_TITLE, names.DATASET_TITLE, names.MODEL_CODE, names.NOT_APPLICABLE)
RUN_COLUMNS = ["run_id", "status", "start_time", *KEY_AXES, "cell", "seed", "config_hash",
               "tuned_from", "reason", *PROVENANCE_TAGS, *IDENTITY_TAGS]
NOT_RUN_REASON = ("expected by the grid but no run was logged (the grid run stopped before this "
                  "cell, or has not reached it yet)")


class ReportError(AevaeError):
    """A report that cannot be made: no such store or experiment, or nothing in it."""


@dataclass(frozen=True)
class Experiment:
    name: str
    id: str
    tracking_uri: str
    tags: dict[str, str]

    @property
    def grid(self) -> str:
        """The grid's name (`lab` for `bench/lab`), else the experiment's name."""
        return self.name.removeprefix(names.BENCH_PREFIX)


@dataclass
class GridRuns:
    """One row per (cell, seed) slot in `slots`: the run that stands for it, or NOT RUN.

    Columns: cell, seed, model, arch, dataset, one per extra axis (e.g. beta), status,
    reason, run_id, config_hash, tuned_from, start_time, the provenance and identity tags
    by their names, the metrics without their `metrics.` prefix (`test/recon_mse`,
    `train_seconds`, ...) and `params.*`.
    """

    experiment: Experiment
    slots: pd.DataFrame
    extra_axes: list[str]
    axes: dict[str, list]
    notes: list[str] = field(default_factory=list)
    version: str = ""  # the label of the version shown ('' the unlabelled one)

    @property
    def finished(self) -> pd.DataFrame:
        return self.slots[self.slots["status"] == "FINISHED"]

    @cached_property
    def titles(self) -> Titles:
        return Titles.of(self.slots)


def parse_cell(key: str) -> dict[str, str]:
    """`vae/mlp/mnist/beta=0.5` -> {model: vae, arch: mlp, dataset: mnist, beta: '0.5'}."""
    parts = key.split("/")
    fields = dict(zip(KEY_AXES, parts[:3]))
    for part in parts[3:]:
        name, _, value = part.partition("=")
        fields[name] = value
    return fields


def seed_text(value) -> str:
    """Seeds compare as text ('0'), whether they come from a JSON int or a tag."""
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)


def find_experiment(reader: StoreReader, target: str) -> Experiment:
    """The experiment `bench/<target>` (a grid's name) or `<target>` (any experiment)."""
    grid = target.removeprefix(names.BENCH_PREFIX)
    for name in [target] if grid != target else [names.bench_experiment(grid), target]:
        found = reader.experiment(name)
        if found is not None:
            # shown in RESULTS.md: the store as it can be shown, without a password
            return Experiment(found.name, found.experiment_id, redact(reader.tracking_uri), found.tags)
    existing = reader.experiment_names()
    raise ReportError(
        f"no experiment '{target}' (nor grid '{names.bench_experiment(grid)}') in "
        f"{redact(reader.tracking_uri)}; experiments there: {', '.join(existing) or 'none'} "
        f"(run `aevae bench {grid}` first, or pass --tracking-uri)."
    )


def expected_slots(experiment: Experiment, version: str, notes: list[str]) -> pd.DataFrame | None:
    """The version's `grid_cells` experiment tag as (cell, seed, config_hash) rows, or None."""
    text = experiment.tags.get(names.versioned(names.GRID_CELLS, version))
    if not text:
        return None
    try:
        rows = [{"cell": str(c["cell"]), "seed": seed_text(c["seed"]),
                 "expected_hash": str(c.get("config_hash") or "")} for c in json.loads(text)]
    except (ValueError, TypeError, KeyError):
        notes.append("The experiment's `grid_cells` tag is not a JSON list of cells; the cells "
                     "below are the ones that have runs.")
        return None
    return pd.DataFrame(rows, columns=["cell", "seed", "expected_hash"]).drop_duplicates(["cell", "seed"])


def grid_axes(experiment: Experiment, version: str) -> dict[str, list]:
    try:
        axes = json.loads(experiment.tags.get(names.versioned(names.GRID_AXES, version)) or "{}")
    except ValueError:
        return {}
    return axes if isinstance(axes, dict) else {}


def text_column(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first of `names` present, as text (NaN where missing); later names fill gaps."""
    result = pd.Series(pd.NA, index=frame.index, dtype="object")
    for name in names:
        if name in frame:
            result = result.fillna(frame[name])
    return result


def search(reader: StoreReader, experiment: Experiment) -> pd.DataFrame:
    """Every active run of the experiment with its latest metric values, params and tags, in
    the columns `mlflow.search_runs` uses (`metrics.x`, `params.x`, `tags.x`)."""
    rows = []
    for run in reader.runs(experiment.id):
        row = {"run_id": run.run_id, "status": run.status, "start_time": run.start_time}
        row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.params.items()})
        row.update({f"tags.{k}": v for k, v in run.tags.items()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["run_id", "status", "start_time"] if not rows else None)
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="ms", utc=True)
    return frame


def training_runs(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The runs that trained a cell, with their cell key, seed and reason columns."""
    runs = pd.DataFrame(index=raw.index)
    runs["run_id"] = raw["run_id"]
    runs["status"] = raw["status"]
    runs["start_time"] = raw["start_time"]
    for axis in KEY_AXES:
        runs[axis] = text_column(raw, f"tags.{axis}", f"params.{axis}")
    runs["cell"] = text_column(raw, f"tags.{names.CELL}")
    runs["seed"] = text_column(raw, f"tags.{names.SEED}", "params.seed").map(seed_text, na_action="ignore")
    runs["config_hash"] = text_column(raw, f"tags.{names.CONFIG_HASH}").fillna("")
    runs["tuned_from"] = text_column(raw, f"tags.{names.TUNED_FROM}").fillna("")
    runs["reason"] = text_column(raw, f"tags.{names.FAILURE_REASON}").fillna("")
    for tag in (*PROVENANCE_TAGS, *IDENTITY_TAGS):
        runs[tag] = text_column(raw, f"tags.{tag}")
    keep = runs["cell"].notna() | runs[list(KEY_AXES)].notna().all(axis=1)
    if (~keep).any():
        notes.append(f"{(~keep).sum()} run(s) without model/arch/dataset tags (for example a grid's "
                     f"parent run) are not cells and were left out.")
    params = raw[[c for c in raw if c.startswith("params.")]]
    metrics = raw[[c for c in raw if c.startswith("metrics.")]].rename(columns=lambda c: c[len("metrics."):])
    runs = pd.concat([runs, params, metrics], axis=1)[keep]
    missing = runs["cell"].isna()
    runs.loc[missing, "cell"] = derived_cells(runs[missing])
    runs["seed"] = runs["seed"].fillna("?")
    return runs


def derived_cells(runs: pd.DataFrame) -> pd.Series:
    """Cell keys for runs logged without a `cell` tag (plain `aevae train` runs): the config
    fields that vary between them, other than the seed, join the key, so runs of different
    configs are never averaged together."""
    params = [c for c in runs if c.startswith("params.")
              and c.removeprefix("params.") not in (*KEY_AXES, "seed")]
    varying = sorted(c for c in params if runs[c].dropna().nunique() > 1)

    def key(row) -> str:
        extras = [f"{c.removeprefix('params.')}={row[c]}" for c in varying if pd.notna(row[c])]
        return "/".join([row["model"], row["arch"], row["dataset"], *extras])

    return runs.apply(key, axis=1) if len(runs) else pd.Series(dtype="object")


def choose_runs(runs: pd.DataFrame, expected: pd.DataFrame | None, notes: list[str]) -> pd.DataFrame:
    """One run per (cell, seed): the latest finished one, else the latest attempt. With a grid
    definition, runs of other cells or of an older config of a cell (another config hash)
    are left out, and expected slots without a run become NOT RUN rows."""
    if expected is not None:
        runs = runs.merge(expected, on=["cell", "seed"], how="left", indicator=True)
        outside = runs["_merge"] == "left_only"
        stale = ~outside & (runs["config_hash"] != "") & (runs["config_hash"] != runs["expected_hash"])
        if outside.any():
            notes.append(f"{outside.sum()} run(s) of cells or seeds outside the grid's current "
                         f"definition were left out.")
        if stale.any():
            notes.append(f"{stale.sum()} run(s) of an earlier config of their cell (config hash "
                         f"differs from the grid's) were left out.")
        runs = runs[~outside & ~stale].drop(columns=["_merge", "expected_hash"])
    rank = runs["status"].map(STATUS_RANK).fillna(len(STATUS_RANK))
    ordered = runs.assign(_rank=rank).sort_values(["_rank", "start_time"], ascending=[True, False])
    chosen = ordered.drop_duplicates(["cell", "seed"], keep="first").drop(columns="_rank")
    if len(chosen) < len(runs):
        notes.append(f"{len(runs) - len(chosen)} repeated run(s) of a (cell, seed) were superseded "
                     f"by a finished or later run of the same slot.")
    if expected is not None:
        absent = expected.merge(chosen[["cell", "seed"]], on=["cell", "seed"], how="left", indicator=True)
        absent = absent[absent["_merge"] == "left_only"]
        filler = pd.DataFrame({"cell": absent["cell"], "seed": absent["seed"], "status": NOT_RUN,
                               "reason": NOT_RUN_REASON, "run_id": "",
                               "config_hash": absent["expected_hash"], "tuned_from": ""})
        chosen = pd.concat([chosen, filler], ignore_index=True) if len(filler) else chosen
    return chosen.reset_index(drop=True)


def describe_states(slots: pd.DataFrame) -> pd.Series:
    """A reason for every slot that did not finish, from its tags or its state."""
    reasons = slots["reason"].fillna("").astype(str)
    started = pd.to_datetime(slots["start_time"], utc=True, errors="coerce")
    defaults = {
        "FAILED": "failed without a failure_reason tag (the process died, or an older version logged it)",
        "KILLED": "killed (interrupted) without a failure_reason tag",
        "SCHEDULED": "scheduled but not started",
    }
    for i in slots.index:
        state = slots.at[i, "status"]
        if state == "RUNNING":
            when = started[i].strftime("%Y-%m-%d %H:%M UTC") if pd.notna(started[i]) else "an unknown time"
            reasons[i] = (f"still running (started {when}); a run whose process died stays "
                          f"RUNNING, so check the host if that is long ago")
        elif not reasons[i] and state in defaults:
            reasons[i] = defaults[state]
    return reasons.where(slots["status"] != "FINISHED", "")


def extra_axes_of(slots: pd.DataFrame) -> list[str]:
    """Axes other than model/arch/dataset/seed that the cell keys carry (e.g. beta)."""
    return sorted({k for cell in slots["cell"] for k in parse_cell(cell)} - set(KEY_AXES))


def run_labels(raw: pd.DataFrame) -> pd.Series:
    """Each run's version label ('' for runs without one)."""
    return text_column(raw, f"tags.{names.VERSION_LABEL}").fillna("").astype(str)


def versions_in(raw: pd.DataFrame) -> list[versions.Version]:
    """The versions the experiment's runs belong to, oldest first."""
    if raw.empty:
        return []
    starts = [int(t.timestamp() * 1000) for t in raw["start_time"]]
    commits = text_column(raw, f"tags.{names.GIT_COMMIT}").fillna("").astype(str)
    return versions.versions_of(zip(run_labels(raw), starts, commits))


def choose_version(raw: pd.DataFrame, wanted: str | None, experiment: Experiment,
                   notes: list[str]) -> str:
    """The label of version `wanted` (None: the newest) among the experiment's runs; a note
    names the others."""
    if raw.empty and wanted is None:
        return ""
    found = versions_in(raw)
    chosen = versions.pick(found, wanted, f"experiment '{experiment.name}'")
    if len(found) > 1:
        others = [v for v in found if v.label != chosen.label]
        notes.append(f"This report shows version {chosen.label or '(unlabelled)'}; the experiment also "
                     f"holds, oldest first: {versions.listing(others)}. `aevae report "
                     f"{experiment.grid} --label LABEL` shows another, `aevae compare` two side by side.")
    return chosen.label


def read_experiment(reader: StoreReader, target: str) -> tuple[Experiment, pd.DataFrame]:
    """Experiment `target` (a grid's name or an experiment's) and all its runs, in one search."""
    experiment = find_experiment(reader, target)
    return experiment, search(reader, experiment)


def load_grid_runs(reader: StoreReader, target: str, version: str | None = None) -> GridRuns:
    """Everything the report shows of version `version` (None: the newest), read from MLflow
    in one search."""
    return grid_runs(*read_experiment(reader, target), version)


def grid_runs(experiment: Experiment, raw: pd.DataFrame, version: str | None = None) -> GridRuns:
    """The slots of version `version` (None: the newest) from the experiment's runs."""
    notes: list[str] = []
    label = choose_version(raw, version, experiment, notes)
    raw = raw[run_labels(raw) == label] if not raw.empty else raw
    expected = expected_slots(experiment, label, notes)
    if raw.empty and (expected is None or expected.empty):
        raise ReportError(f"experiment '{experiment.name}' has no runs yet: run "
                          f"`aevae bench {experiment.grid}` (or `aevae train --experiment "
                          f"{experiment.name}`) first.")
    runs = training_runs(raw, notes) if not raw.empty else pd.DataFrame(columns=RUN_COLUMNS)
    slots = choose_runs(runs, expected, notes)
    if slots.empty:
        raise ReportError(f"experiment '{experiment.name}' has no runs of any cell: run "
                          f"`aevae bench {experiment.grid}` first.")
    parsed = pd.DataFrame([parse_cell(c) for c in slots["cell"]], index=slots.index)
    for column in parsed:
        slots[column] = parsed[column]
    slots["reason"] = describe_states(slots)
    axes = grid_axes(experiment, label)
    return GridRuns(experiment, slots, extra_axes_of(slots), axes, notes, label)
