"""The report's tables as DataFrames of display text: every metric per cell, the runs that
did not finish (grouped by reason), finished runs with missing metrics, the list of every
run; and the same per-cell numbers as plain values for the CSV beside RESULTS.md."""

from __future__ import annotations

import pandas as pd

from aevae.report.applicable import NA, by_cell, run_reasons
from aevae.report.display import (
    COSTS, METRICS, MISSING, REQUIRED, Column, in_cell_order, markdown_text, mean_std, ordered_cells, run_link,
)
from aevae.report.runs import GridRuns
from aevae.report.titles import GAUSSIAN, Titles
from aevae.tracking import names

SHOWN_REASON_CHARS = 300  # of a failure reason, in the report's table (the store keeps more)
LINKS_PER_ROW = 5
# Slot columns read from the run tags of these names (report/runs.py PROVENANCE_TAGS): what
# `precision=auto` and `device=auto` resolved to on the machine that ran the run.
RUNTIME = ("precision", "device")


def present(columns, finished: pd.DataFrame) -> list:
    """The columns some finished run logged (analysis metrics appear once issue 6 logs them)."""
    return [c for c in columns if c.key in finished and pd.to_numeric(finished[c.key], errors="coerce").notna().any()]


def cell_names(row, extra_axes: list[str], titles: Titles) -> dict[str, str]:
    """A table row's first columns: the cell's model, arch and dataset by their titles, and
    its value of each extra axis."""
    shown = {"model": titles.model(row["model"]), "arch": titles.arch(row["arch"]),
             "dataset": titles.dataset(row["dataset"])}
    shown.update({axis: str(row.get(axis, "")) if pd.notna(row.get(axis)) else "" for axis in extra_axes})
    return shown


def full_columns(grid: GridRuns) -> list[Column]:
    """The metrics and costs of the full table and the CSV: those some finished run logged."""
    return present((*METRICS, *COSTS), grid.finished)


def cell_value(done: pd.DataFrame, column: Column, not_applicable: dict[str, str]) -> str:
    """A cell's mean ± std of `column` over its finished runs, or n/a."""
    if column.key in not_applicable:
        return NA
    if column.key not in done:
        return MISSING
    return mean_std(pd.to_numeric(done[column.key], errors="coerce") * column.scale, len(done))


def reason_numbers(grid: GridRuns) -> dict[tuple[str, str], int]:
    """(state, reason) -> its number in "Not in the tables", in cell order: a reason that
    many runs share is written out once, and the tables refer to it by number."""
    missing = in_cell_order(grid.slots[grid.slots["status"] != "FINISHED"], grid.slots, grid.extra_axes)
    keys = dict.fromkeys(zip(missing["status"], missing["reason"].astype(str)))
    return {key: i for i, key in enumerate(keys, start=1)}


def slot_summary(slots: pd.DataFrame, numbers: dict[tuple[str, str], int]) -> str:
    """What kept some seeds of a cell out: counts per state, each with its reason's number."""
    missing = slots[slots["status"] != "FINISHED"]
    counts = missing.groupby(["status", "reason"], sort=False).size()
    return ", ".join(f"{n} {state} (reason {numbers[(state, str(reason))]})"
                     for (state, reason), n in counts.items())


def mixed_runtime(done: pd.DataFrame) -> str:
    """A note when a cell's finished runs ran at different resolved precisions or on
    different devices: `auto` resolves per machine and the config hash cannot tell, so the
    cell's spread over seeds then holds that difference too. Empty when they all agree."""
    differing = [tag for tag in RUNTIME if tag in done and done[tag].fillna("unknown").nunique() > 1]
    if not differing:
        return ""
    combos = done[differing].fillna("unknown").astype(str).value_counts()
    ordered = sorted(combos.items(), key=lambda item: (-item[1], item[0]))  # most runs first
    shown = ", ".join(f"{n} {' on '.join(values)}" for values, n in ordered)
    return f"runs differ in {' and '.join(differing)}: {shown}"


def run_links(ui_url: str | None, experiment_id: str, run_ids: list[str]) -> str:
    """The first few runs of a cell (lowest seeds); the rest are in the list of every run."""
    shown = " ".join(run_link(ui_url, experiment_id, r) for r in run_ids[:LINKS_PER_ROW])
    more = len(run_ids) - LINKS_PER_ROW
    return (shown + (f" +{more} more" if more > 0 else "")) or MISSING


def every_metric(grid: GridRuns, ui_url: str | None) -> pd.DataFrame:
    """One row per cell, every metric some run logged: mean ± std over the seeds that
    finished, the seed count, links and notes."""
    columns = full_columns(grid)
    numbers = reason_numbers(grid)
    not_applicable = by_cell(grid.slots)
    rows = []
    for cell in ordered_cells(grid.slots, grid.extra_axes):
        slots = grid.slots[grid.slots["cell"] == cell]
        done = slots[slots["status"] == "FINISHED"]
        row = cell_names(slots.iloc[0], grid.extra_axes, grid.titles)
        row["seeds"] = f"{len(done)}/{len(slots)}"
        for column in columns:
            row[column.header] = cell_value(done, column, not_applicable.get(cell, {}))
        row["runs"] = run_links(ui_url, grid.experiment.id, list(in_cell_order(done, slots, [])["run_id"]))
        tuned = sorted(set(done["tuned_from"]) - {""})
        notes = [slot_summary(slots, numbers), mixed_runtime(done)] + ([f"tuned ({', '.join(tuned)})"] if tuned else [])
        row["notes"] = markdown_text("; ".join(n for n in notes if n))
        rows.append(row)
    return pd.DataFrame(rows)


def metric_values(grid: GridRuns) -> pd.DataFrame:
    """The numbers of `every_metric` as plain values for a CSV: per cell, the seeds
    finished and expected, and each metric's mean, sample std (ddof = 1) and count; all
    three empty where the metric does not apply to the cell's model."""
    finished = grid.finished
    not_applicable = by_cell(grid.slots)
    rows = []
    for cell in ordered_cells(grid.slots, grid.extra_axes):
        slots = grid.slots[grid.slots["cell"] == cell]
        done = finished[finished["cell"] == cell]
        first = slots.iloc[0]
        row = {"cell": cell, "model": first["model"], "arch": first["arch"], "dataset": first["dataset"]}
        row.update({axis: first.get(axis) for axis in grid.extra_axes})
        row.update({"seeds_finished": len(done), "seeds_expected": len(slots)})
        for column in full_columns(grid):
            if column.key in not_applicable.get(cell, {}):
                row.update({f"{column.key} {what}": None for what in ("mean", "std", "n")})
                continue
            values = pd.to_numeric(done[column.key], errors="coerce").dropna()
            row.update({f"{column.key} mean": values.mean() if len(values) else None,
                        f"{column.key} std": values.std() if len(values) > 1 else None,
                        f"{column.key} n": len(values)})
        rows.append(row)
    return pd.DataFrame(rows)


def seed_list(seeds) -> str:
    return ", ".join(sorted(map(str, seeds), key=lambda s: (len(s), s)))


def unfinished(grid: GridRuns) -> pd.DataFrame:
    """The (cell, seed) slots without a finished run, grouped by state and reason: each
    reason once, with the cells (and their seeds) it kept out."""
    missing = in_cell_order(grid.slots[grid.slots["status"] != "FINISHED"], grid.slots, grid.extra_axes)
    rows = []
    for (state, reason), number in reason_numbers(grid).items():
        group = missing[(missing["status"] == state) & (missing["reason"].astype(str) == reason)]
        seeds = group.groupby("cell", sort=False)["seed"].agg(seed_list)
        # cells that miss the same seeds are listed together: "a, b (seeds 0, 1, 2)"
        by_seeds: dict[str, list[str]] = {}
        for cell, listed in seeds.items():
            by_seeds.setdefault(listed, []).append(cell)
        where = "; ".join(f"{', '.join(cells)} (seed{'s' if ',' in listed else ''} {listed})"
                          for listed, cells in by_seeds.items())
        rows.append({"#": str(number), "state": state, "runs": str(len(group)), "cells": where,
                     "reason": markdown_text(reason[:SHOWN_REASON_CHARS])})
    return pd.DataFrame(rows, columns=["#", "state", "runs", "cells", "reason"])


def gaps(grid: GridRuns, ui_url: str | None) -> pd.DataFrame:
    """Finished runs that lack a metric this version logs (older or interrupted logging); a
    metric that does not apply to the run's model is not missing."""
    rows = []
    for _, run in in_cell_order(grid.finished, grid.slots, grid.extra_axes).iterrows():
        required = [*REQUIRED, *([names.TEST_ELBO] if grid.titles.code(run["model"]) == GAUSSIAN else [])]
        not_applicable = run_reasons(run.get(names.NOT_APPLICABLE))
        lacking = [k for k in required if k not in not_applicable
                   and (k not in run or pd.isna(pd.to_numeric(run[k], errors="coerce")))]
        if lacking:
            rows.append({"cell": run["cell"], "seed": run["seed"], "missing": ", ".join(lacking),
                         "run": run_link(ui_url, grid.experiment.id, run["run_id"])})
    return pd.DataFrame(rows, columns=["cell", "seed", "missing", "run"])


def all_runs(grid: GridRuns, ui_url: str | None) -> pd.DataFrame:
    """Every slot with its full run id, so any number can be traced to its run."""
    slots = in_cell_order(grid.slots, grid.slots, grid.extra_axes)
    return pd.DataFrame({
        "cell": slots["cell"],
        "seed": slots["seed"],
        "state": slots["status"],
        "run": [run_link(ui_url, grid.experiment.id, r, short=False) for r in slots["run_id"].fillna("")],
        "config hash": slots["config_hash"].fillna(""),
        "tuned from": slots["tuned_from"].fillna(""),
    })


def shared_settings(grid: GridRuns) -> dict[str, str]:
    """Config fields with one value over every finished run (the rest vary by cell)."""
    finished = grid.finished
    skip = {"model", "arch", "dataset", "seed", *grid.extra_axes}
    shared = {}
    for column in sorted(c for c in finished if c.startswith("params.")):
        name = column.removeprefix("params.")
        values = finished[column].dropna().unique()
        if name not in skip and len(values) == 1 and finished[column].notna().all():
            shared[name] = str(values[0])
    return shared


def provenance(grid: GridRuns) -> list[str]:
    """Which code, libraries and hardware produced the finished runs."""
    finished = grid.finished
    lines = []
    for tag, label in ((names.GIT_COMMIT, "git commit"), (names.TORCH_VERSION, "torch"),
                       (names.DEVICE, "device"), (names.PRECISION, "precision")):
        if tag not in finished:
            continue
        counts = finished[tag].fillna("unknown").value_counts()
        shown = [f"`{v[:12] if tag == names.GIT_COMMIT else v}` ({n} runs)" if len(counts) > 1
                 else f"`{v[:12] if tag == names.GIT_COMMIT else v}`" for v, n in counts.items()]
        lines.append(f"{label}: {', '.join(shown)}")
    mixed = [cell for cell, done in finished.groupby("cell") if mixed_runtime(done)]
    if mixed:
        lines.append(f"{len(mixed)} cell(s) mix runs of different precision or device, so their "
                     f"spread includes that difference (see their notes): {', '.join(mixed)}")
    if names.GIT_DIRTY in finished and (finished[names.GIT_DIRTY] == "true").any():
        lines.append(f"{(finished[names.GIT_DIRTY] == 'true').sum()} run(s) came from a checkout "
                     f"with uncommitted changes")
    return lines


def to_markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True) if len(frame) else "(none)"
