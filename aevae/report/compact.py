"""The reader's table at the top of RESULTS.md, in the shape of a lab README's: one row per
cell and a handful of columns that fit a page (the cell's names, three reconstruction and
KL numbers, one likelihood number, the seed count). Every other metric is in the full table
further down and in the CSV beside RESULTS.md."""

from __future__ import annotations

import pandas as pd

from aevae.report.display import Column, mean_std, number, ordered_cells
from aevae.report.runs import GridRuns
from aevae.report.tables import cell_names
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


def binarized(frame: pd.DataFrame) -> pd.Series:
    if "params.binarize" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["params.binarize"].astype(str).str.lower().isin(("true", "1"))


def likelihood_column(finished: pd.DataFrame) -> Column:
    """The NLL where every run with an ELBO also has one and every such run saw binarized
    images (on grey levels the Bernoulli "NLL" is a cross-entropy, not a likelihood), with
    its k when all runs share it; else the ELBO. One column, so no row mixes the two."""
    nll, elbo = logged(finished, NLL_KEY), logged(finished, ELBO.key)
    if not nll.any() or (elbo & ~nll).any() or not binarized(finished[nll]).all():
        return ELBO
    samples = finished.loc[nll, "params.nll_samples"].dropna().unique() if "params.nll_samples" in finished else []
    k = f", k={number(float(samples[0]))}" if len(samples) == 1 else ""
    return Column(f"NLL (nats{k})", NLL_KEY)


def compact(grid: GridRuns) -> pd.DataFrame:
    """Model, arch, dataset (and any extra axis), recon MSE, recon accuracy, KL, ELBO or
    NLL, and seeds finished of expected: mean ± std over the finished seeds."""
    finished = grid.finished
    columns = [*SHOWN, likelihood_column(finished)]
    rows = []
    for cell in ordered_cells(grid.slots, grid.extra_axes):
        slots = grid.slots[grid.slots["cell"] == cell]
        done = finished[finished["cell"] == cell]
        row = cell_names(slots.iloc[0], grid.extra_axes)
        for column in columns:
            values = pd.to_numeric(done[column.key], errors="coerce") if column.key in done else pd.Series(dtype=float)
            row[column.header] = mean_std(values, len(done))
        row["seeds"] = f"{len(done)}/{len(slots)}"
        rows.append(row)
    return pd.DataFrame(rows)
