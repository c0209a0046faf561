"""How long `aevae report` takes over a store of 1,000+ runs.

Writes a realistic MLflow store (SQLite, in a temporary folder unless --keep) through
aevae.tracking's RunStore: made-up finished runs (nothing trains) of the 36 cells of a beta
grid (benchmarks/script_grids/report_speed.toml), with enough seeds for --runs runs, each
with every config field as a param, the run tags of `train` and `bench`, per-epoch
train/val metrics, the test metrics and the four figure artifacts; then times the real
command (`python -m aevae report`) over it, Python's start-up included, as a user would see
it: the median of --repeat runs.

    .venv/bin/python benchmarks/report_speed.py                # 1,008 runs, 10 epochs each
    .venv/bin/python benchmarks/report_speed.py --runs 3000 --keep /tmp/big-store
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aevae.bench.grid import load_grid
from aevae.config import TrainConfig, to_dict
from aevae.tracking.runs import RunStore
from cells import grid_cells, script_grid
from timing import Stopwatch, Timings

GRID = "report_speed"  # benchmarks/script_grids/report_speed.toml; its runs go to bench/report_speed
SIZE = {"mnist": (1, 28), "fashion_mnist": (1, 28), "cifar10": (3, 32)}
BASE_MSE = {"mnist": 0.004, "fashion_mnist": 0.008, "cifar10": 0.006}
BASE_KL = {"mnist": 26.0, "fashion_mnist": 16.0, "cifar10": 60.0}
MAX_EXPERIMENT_TAG = 20000  # MLflow's limit on an experiment tag's value

MetricValue = tuple[str, float, int, int]  # key, value, timestamp (ms), step


def final_metrics(cfg: TrainConfig, rng) -> dict[str, float]:
    """Plausible test metrics of one seed: the VAE reconstructs worse and pays KL."""
    model, arch, dataset, beta = cfg.model, cfg.arch, cfg.dataset, cfg.beta
    noise = lambda: 1 + 0.03 * rng.standard_normal()  # noqa: E731
    channels, side = SIZE[dataset]
    latent = 20 if side == 28 else 128
    mse = BASE_MSE[dataset] * (1.0 if arch == "conv" else 1.3) * (1 if model == "ae" else 2 + 2 * beta) * noise()
    kl = 0.0 if model == "ae" else BASE_KL[dataset] / math.sqrt(beta) * noise()
    bce = (60.0 if side == 28 else 1750.0) + 2000 * mse * channels
    metrics = {"loss": bce + beta * kl, "recon_mse": mse, "recon_bce": bce, "kl": kl,
               "pixel_acc": max(0.0, 1 - 8 * mse), "recon_acc_1mse": 100 * (1 - mse),
               "active_units": float(latent if model == "ae" else round(latent * 0.6 / beta ** 0.3))}
    if model == "vae":
        metrics["elbo"] = -(bce + kl)
    return metrics


def run_metrics(final: dict[str, float], epochs: int, rng, timestamp: int) -> list[MetricValue]:
    """Per-epoch train/val metrics that decay towards the final values, then test ones."""
    rows = []
    for epoch in range(1, epochs + 1):
        factor = 1 + 2 * math.exp(-epoch / 3)
        row = {"train/loss": final["loss"] * factor, "train/recon": final["recon_bce"] * factor,
               "train/kl": final["kl"] * (2 - factor / 3), "epoch_seconds": 4 + rng.random(),
               "images_per_sec": 12000 + 500 * rng.random()}
        row.update({f"val/{k}": v * (factor if k in ("loss", "recon_mse", "recon_bce") else 1)
                    for k, v in final.items()})
        rows += [(k, float(v), timestamp + epoch, epoch) for k, v in row.items()]
    rows += [(f"test/{k}", float(v), timestamp + epochs + 1, 0) for k, v in final.items()]
    rows.append(("train_seconds", float(epochs * 4.5), timestamp + epochs + 1, 0))
    return rows


def figure_folder(root: Path) -> Path:
    """The four figure files every run logs, small but real PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = root / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in ("reconstructions", "prior_samples", "latent", "curves"):
        fig, ax = plt.subplots(figsize=(3, 3))
        if name == "latent":
            points = rng.standard_normal((300, 2))
            ax.scatter(points[:, 0], points[:, 1], c=rng.integers(0, 10, 300), s=4, cmap="tab10")
        else:
            ax.imshow(rng.random((56, 56)), cmap="gray")
        fig.savefig(folder / f"{name}.png", dpi=60)
        plt.close(fig)
    return folder


def log_history_and_figures(store: RunStore, run_id: str, metrics: list[MetricValue], figures: Path) -> None:
    """A run's whole metric history, in one request, and its figure files.

    aevae.tracking has a call for neither: RunStore.log_metrics logs one step at the current
    time (a history would take a request per epoch, 11,000 for the default store), and
    nothing there uploads files a run did not draw itself. So this one function calls the
    store's MLflow client directly; nothing else in this script does."""
    from mlflow.entities import Metric  # see the docstring: the one door has no such call

    store.client.log_batch(run_id, metrics=[Metric(*metric) for metric in metrics])
    store.client.log_artifacts(run_id, str(figures), "figures")


def write_store(uri: str, runs: int, epochs: int, figures: Path) -> int:
    """A grid experiment `bench/report_speed` with `runs` finished runs (rounded up to whole seeds)."""
    path, budget = script_grid(GRID), {"epochs": epochs}
    seeds = range(-(-runs // len(grid_cells(path, fields=budget))))
    cells = grid_cells(path, seeds=seeds, fields=budget)
    store = RunStore(uri)
    experiment = store.experiment(f"bench/{GRID}")  # artifacts beside the database, as bench's
    rng = np.random.default_rng(0)
    now = int(time.time() * 1000)
    for cell in cells:
        cfg = cell.config
        tags = {"model": cfg.model, "arch": cfg.arch, "dataset": cfg.dataset, "seed": str(cell.seed),
                "config_hash": cell.config_hash, "grid": GRID, "cell": cell.key,
                "git_commit": "0" * 40, "git_dirty": "false", "torch_version": "2.13.0",
                "device": "cpu (x86_64)", "precision": "fp32"}
        run_id = store.create(experiment, cell.run_name, tags).run_id
        store.log_params(run_id, to_dict(cfg))
        store.set_tags(run_id, {"model_uri": f"runs:/{run_id}/model"})
        log_history_and_figures(store, run_id, run_metrics(final_metrics(cfg, rng), epochs, rng, now), figures)
        store.end(run_id, "FINISHED")
    axes = json.dumps({**load_grid(path).axes_json(), "seed": list(seeds)})
    store.set_experiment_tags(experiment, {"grid_axes": axes})
    expected = json.dumps([{"cell": c.key, "seed": c.seed, "config_hash": c.config_hash} for c in cells])
    if len(expected) <= MAX_EXPERIMENT_TAG:
        store.set_experiment_tags(experiment, {"grid_cells": expected})
    else:
        print(f"note: grid_cells would be {len(expected)} characters, over MLflow's limit of "
              f"{MAX_EXPERIMENT_TAG} on an experiment tag; the store is written without it.")
    return len(cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="finished runs to write, at least (default 1000)")
    parser.add_argument("--epochs", type=int, default=10, help="logged epochs per run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="time the report this many times (default 3)")
    parser.add_argument("--keep", type=Path, default=None, help="write the store here and keep it")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as scratch:
        root = (args.keep or Path(scratch)).resolve()
        (root / "mlruns").mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        with Stopwatch() as writing:
            count = write_store(uri, args.runs, args.epochs, figure_folder(root / "source"))
        print(f"wrote {count} finished runs with {args.epochs} epochs each to {uri} in {writing.seconds:.1f} s")
        command = [sys.executable, "-m", "aevae", "report", GRID, "--tracking-uri", uri,
                   "--out", str(root / "results")]
        seconds = []
        for _ in range(args.repeat):
            with Stopwatch() as clock:
                done = subprocess.run(command, capture_output=True, text=True)
            seconds.append(clock.seconds)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return done.returncode
        print(done.stdout.strip())
        print(f"aevae report over {count} runs: {' '.join(f'{t:.2f}' for t in seconds)} s "
              f"(median {Timings(tuple(seconds)).median:.2f} s, wall clock, Python start included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
