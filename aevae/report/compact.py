"""The reader's table at the top of RESULTS.md, in the shape of a lab README's: one row per
cell and a handful of columns that fit a page (the cell's names, three reconstruction and
KL numbers, one likelihood number, the seed count). Every other metric is in the full table
further down and in the CSV beside RESULTS.md."""

from __future__ import annotations

import pandas as pd

from aevae.report.applicable import by_cell, run_reasons
from aevae.report.display import Column, number, ordered_cells
from aevae.report.runs import GridRuns
from aevae.report.tables import cell_names, cell_value
from aevae.tracking import names

SHOWN = (
    Column("recon MSE", names.TEST_RECON_MSE),
    Column("recon acc (%)", names.TEST_RECON_ACC),
    Column("KL (nats)", names.TEST_KL),
)
ELBO = Column("ELBO (nats)", names.TEST_ELBO)
NLL_KEY = names.TEST_NLL


def logged(frame: pd.DataFrame, key: str) -> pd.Series:
    """Which rows logged metric `key` (False everywhere when no run did)."""
    if key not in frame:
        return pd.Series(False, index=frame.index)
    return pd.to_numeric(frame[key], errors="coerce").notna()


def applies(frame: pd.DataFrame, key: str) -> pd.Series:
    """Which rows' models have metric `key` at all (their `not_applicable` tag omits it)."""
    if names.NOT_APPLICABLE not in frame:
        return pd.Series(True, index=frame.index)
    return frame[names.NOT_APPLICABLE].map(lambda tag: key not in run_reasons(tag)).astype(bool)


def binarized(frame: pd.DataFrame) -> pd.Series:
    if "params.binarize" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["params.binarize"].astype(str).str.lower().isin(("true", "1"))


def likelihood_column(finished: pd.DataFrame) -> Column:
    """The NLL where every run with an ELBO whose model has an NLL also logged one and every
    run with an NLL saw binarized images (on grey levels the Bernoulli "NLL" is a
    cross-entropy, not a likelihood), with its k when all runs share it; else the ELBO. One
    column, so no row mixes the two. A run whose model has neither (a discrete code) or no
    NLL shows n/a there and decides nothing: it lacks nothing."""
    nll, elbo = logged(finished, NLL_KEY), logged(finished, ELBO.key)
    lacking = elbo & ~nll & applies(finished, NLL_KEY)
    if not nll.any() or lacking.any() or not binarized(finished[nll]).all():
        return ELBO
    samples = finished.loc[nll, "params.nll_samples"].dropna().unique() if "params.nll_samples" in finished else []
    k = f", k={number(float(samples[0]))}" if len(samples) == 1 else ""
    return Column(f"NLL (nats{k})", NLL_KEY)


def columns(grid: GridRuns) -> list[Column]:
    """The metrics the compact table shows, the likelihood column chosen for the grid."""
    return [*SHOWN, likelihood_column(grid.finished)]


def compact(grid: GridRuns) -> pd.DataFrame:
    """Model, arch, dataset (and any extra axis), recon MSE, recon accuracy, KL, ELBO or
    NLL, and seeds finished of expected: mean ± std over the finished seeds, n/a where the
    metric does not apply to the cell's model."""
    finished = grid.finished
    shown = columns(grid)
    not_applicable = by_cell(grid.slots)
    rows = []
    for cell in ordered_cells(grid.slots, grid.extra_axes):
        slots = grid.slots[grid.slots["cell"] == cell]
        done = finished[finished["cell"] == cell]
        row = cell_names(slots.iloc[0], grid.extra_axes, grid.titles)
        for column in shown:
            row[column.header] = cell_value(done, column, not_applicable.get(cell, {}))
        row["seeds"] = f"{len(done)}/{len(slots)}"
        rows.append(row)
    return pd.DataFrame(rows)
