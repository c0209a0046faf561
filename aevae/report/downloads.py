"""The per-run reads the report needs beyond the one search: metric histories for the curves,
figure artifacts for the image panels and three frames per kind for their strips. Both are one request per run (per metric), so
the report asks only for what it plots, and in parallel (a tracking server answers them
concurrently; on SQLite they cost about a millisecond each)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from aevae.tracking.names import FRAME_KEYS, TRAIN_KL, TRAIN_LOSS, VAL_KL, VAL_LOSS, VAL_RECON_MSE
from aevae.tracking.reader import StoreReader

WORKERS = 8
CURVE_KEYS = (TRAIN_LOSS, VAL_LOSS, TRAIN_KL, VAL_KL, VAL_RECON_MSE)
FIGURES = ("reconstructions", "prior_samples", "latent")


def representatives(finished: pd.DataFrame, per_cell: int) -> pd.DataFrame:
    """The `per_cell` lowest seeds of each cell (seed 0 first), in `finished`'s row order."""
    ranked = finished.assign(_seed=pd.to_numeric(finished["seed"], errors="coerce"))
    ranked = ranked.sort_values(["_seed", "seed"], kind="stable")
    picked = ranked.groupby("cell", sort=False).head(per_cell).index
    return finished[finished.index.isin(picked)]


def histories(reader: StoreReader, run_ids: list[str], keys=CURVE_KEYS) -> pd.DataFrame:
    """Per-step values of `keys` for each run: columns run_id, key, epoch, value. A metric a
    run never logged is simply absent."""

    def one(job):
        run_id, key = job
        return [(run_id, key, step, value) for step, value in reader.metric_history(run_id, key)]

    jobs = [(r, k) for r in run_ids for k in keys]
    with ThreadPoolExecutor(WORKERS) as pool:
        rows = [row for chunk in pool.map(one, jobs) for row in chunk]
    return pd.DataFrame(rows, columns=["run_id", "key", "epoch", "value"])


def download_figures(reader: StoreReader, run_ids: list[str], folder: Path) -> dict[str, dict[str, Path]]:
    """`run_id -> {figure name: local PNG}` for the figures each run has; a run without them
    (an older version, `--no-artifacts`, a run that failed early) maps to what it has."""

    def one(run_id: str) -> tuple[str, dict[str, Path]]:
        target = folder / run_id
        target.mkdir(parents=True, exist_ok=True)
        local = reader.download(run_id, "figures", target)
        if local is None:
            return run_id, {}
        return run_id, {name: local / f"{name}.png" for name in FIGURES if (local / f"{name}.png").is_file()}

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(one, run_ids))


def strip_steps(steps: list[int]) -> list[int]:
    """The first, middle and last of a run's sorted frame steps (fewer when it has fewer)."""
    return list(dict.fromkeys([steps[0], steps[len(steps) // 2], steps[-1]])) if steps else []


def download_frames(reader: StoreReader, run_ids: list[str], folder: Path) -> dict[str, dict[str, list[tuple[int, Path]]]]:
    """`run_id -> {frame key: [(epoch, local PNG)]}`: the first, middle and last frame of each
    kind the run logged on MLflow's image slider; a run without frames maps to {}."""

    def one(run_id: str) -> tuple[str, dict[str, list[tuple[int, Path]]]]:
        logged = reader.step_images(run_id)
        target = folder / run_id / "frames"
        got: dict[str, list[tuple[int, Path]]] = {}
        for key in FRAME_KEYS:
            by_step = {image.step: image for image in logged.get(key, [])}
            local = [(step, reader.download(run_id, by_step[step].path, target))
                     for step in strip_steps(sorted(by_step))]
            if local and all(path is not None for _, path in local):
                got[key] = local
        return run_id, got

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(one, run_ids))
