"""How the report orders cells and prints numbers, shared by tables and figures (how it names
them: aevae.report.titles)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from aevae.registry import ARCH_TITLES, DATASET_INFO, MODEL_TITLES
from aevae.tracking import names
from aevae.tracking.links import run_url

MISSING = "—"


@dataclass(frozen=True)
class Column:
    """A number the report shows: its header (with units), where it is logged, a display
    scale, and which direction is better ('lower', 'higher' or '' when neither)."""

    header: str
    key: str
    scale: float = 1.0
    better: str = ""


# Test-split metrics, then the analysis metrics of issue 6 (shown only when logged), then cost.
METRICS = (
    Column("recon MSE", names.TEST_RECON_MSE, better="lower"),
    Column("recon BCE (nats)", names.TEST_RECON_BCE, better="lower"),
    Column("recon acc (%)", names.TEST_RECON_ACC, better="higher"),
    Column("pixel acc (%)", names.TEST_PIXEL_ACC, 100.0, better="higher"),
    Column("KL (nats)", names.TEST_KL),
    Column("ELBO (nats)", names.TEST_ELBO, better="higher"),
    Column("active units", names.TEST_ACTIVE_UNITS),
    Column("probe acc", names.TEST_PROBE_ACC, better="higher"),
    Column("Fréchet", names.TEST_FRECHET, better="lower"),
    Column("confident share", names.TEST_CONFIDENT_SHARE, better="higher"),
    Column("NLL (nats)", names.TEST_NLL, better="lower"),
    Column("bits/dim", names.TEST_BPD, better="lower"),
)
COSTS = (
    Column("epochs", "params.epochs"),
    Column("wall (s)", names.TRAIN_SECONDS),
    Column("images/s", names.IMAGES_PER_SEC),
)
BY_KEY = {c.key: c for c in (*METRICS, *COSTS)}
# What every finished run of this version logs; a run without one of these is listed as a gap.
REQUIRED = (names.TEST_LOSS, names.TEST_RECON_MSE, names.TEST_RECON_BCE, names.TEST_KL, names.TEST_PIXEL_ACC,
            names.TEST_RECON_ACC, names.TEST_ACTIVE_UNITS, names.TRAIN_SECONDS)


def sortable(value) -> tuple:
    """Missing first, then numbers as numbers ('0.5' before '2'), then text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (-1, 0.0, "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def rank(name, known) -> tuple:
    """Where `name` sorts among an axis's names: those of `known` (a registry) in its order
    (the AE first, the VAE next), then the others (a plug-in's) by name."""
    known = list(known)
    return (known.index(name) if name in known else len(known), str(name))


def ordered_cells(slots: pd.DataFrame, extra_axes: list[str]) -> list[str]:
    """Cells by dataset and arch, extra axes, then model, each axis in `rank` order."""
    first = slots.drop_duplicates("cell")

    def key(row) -> tuple:
        return (rank(row["dataset"], DATASET_INFO), rank(row["arch"], ARCH_TITLES),
                tuple(sortable(row.get(a)) for a in extra_axes), rank(row["model"], MODEL_TITLES))

    return [row["cell"] for _, row in sorted(first.iterrows(), key=lambda item: key(item[1]))]


def in_cell_order(frame: pd.DataFrame, slots: pd.DataFrame, extra_axes: list[str]) -> pd.DataFrame:
    """`frame`'s rows sorted by `ordered_cells`, then by seed (numerically where it can)."""
    order = {cell: i for i, cell in enumerate(ordered_cells(slots, extra_axes))}
    ranked = frame.assign(_cell=frame["cell"].map(order), _seed=pd.to_numeric(frame["seed"], errors="coerce"))
    return ranked.sort_values(["_cell", "_seed", "seed"], kind="stable").drop(columns=["_cell", "_seed"])


def decimals(x: float, significant: int) -> int:
    if x == 0 or not math.isfinite(x):
        return 0
    return min(6, max(0, significant - 1 - math.floor(math.log10(abs(x)))))


def number(x: float) -> str:
    """Four significant digits, no exponent; whole numbers print without decimals."""
    if not math.isfinite(x):
        return str(x)
    if abs(x) < 1e9 and math.isclose(x, round(x), rel_tol=1e-12, abs_tol=1e-12):
        return str(int(round(x)))
    return f"{x:.{decimals(x, 4)}f}"


def mean_std(values: pd.Series, runs: int) -> str:
    """`mean ± std` over seeds (sample std, ddof=1), the mean printed to the std's second
    significant digit; a lone value or an exact tie prints alone; `(n=k)` when only k of
    the `runs` finished runs logged the metric."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return MISSING
    mean, std = float(values.mean()), float(values.std()) if len(values) > 1 else 0.0
    # Equal values can still give a std of 1e-16 (pandas' float sum): that is a tie.
    if std <= 1e-9 * abs(mean) or not math.isfinite(std):
        text = number(mean)
    else:
        places = decimals(float(f"{std:.6g}"), 2)  # 0.000999...98 (float sums) is 0.0010
        text = f"{mean:.{places}f} ± {std:.{places}f}"
    return text + (f" (n={len(values)})" if len(values) < runs else "")


def markdown_text(value) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def run_link(ui_url: str | None, experiment_id: str, run_id: str, short: bool = True) -> str:
    """A run id (the first 8 characters when `short`), linked to the MLflow UI when known."""
    if not run_id:
        return MISSING
    shown = run_id[:8] if short else run_id
    return f"[`{shown}`]({run_url(ui_url, experiment_id, run_id)})" if ui_url else f"`{shown}`"
