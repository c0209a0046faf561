"""How long `aevae report` takes over a store of 1,000+ runs.

Writes a realistic MLflow store (SQLite, in a temporary folder unless --keep): a beta grid
of 36 cells with enough seeds for --runs finished runs, each with every config field as a
param, the run tags of `train` and `bench`, per-epoch train/val metrics, the test metrics
and the four figure artifacts; then times the real command (`python -m aevae report`) over
it, Python's start-up included, as a user would see it.

    .venv/bin/python benchmarks/report_speed.py                # 1,008 runs, 10 epochs each
    .venv/bin/python benchmarks/report_speed.py --runs 3000 --keep /tmp/big-store
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GRID = "speed"
AXES = {"model": ["ae", "vae"], "arch": ["mlp", "conv"],
        "dataset": ["mnist", "fashion_mnist", "cifar10"], "beta": [0.5, 1.0, 2.0]}
SIZE = {"mnist": (1, 28), "fashion_mnist": (1, 28), "cifar10": (3, 32)}
BASE_MSE = {"mnist": 0.004, "fashion_mnist": 0.008, "cifar10": 0.006}
BASE_KL = {"mnist": 26.0, "fashion_mnist": 16.0, "cifar10": 60.0}
MAX_EXPERIMENT_TAG = 20000  # MLflow's limit on an experiment tag's value


def final_metrics(model, arch, dataset, beta, rng) -> dict[str, float]:
    """Plausible test metrics of one seed: the VAE reconstructs worse and pays KL."""
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


def run_metrics(final: dict[str, float], epochs: int, rng, timestamp: int):
    """Per-epoch train/val metrics that decay towards the final values, then test ones."""
    from mlflow.entities import Metric

    rows = []
    for epoch in range(1, epochs + 1):
        factor = 1 + 2 * math.exp(-epoch / 3)
        row = {"train/loss": final["loss"] * factor, "train/recon": final["recon_bce"] * factor,
               "train/kl": final["kl"] * (2 - factor / 3), "epoch_seconds": 4 + rng.random(),
               "images_per_sec": 12000 + 500 * rng.random()}
        row.update({f"val/{k}": v * (factor if k in ("loss", "recon_mse", "recon_bce") else 1)
                    for k, v in final.items()})
        rows += [Metric(k, float(v), timestamp + epoch, epoch) for k, v in row.items()]
    rows += [Metric(f"test/{k}", float(v), timestamp + epochs + 1, 0) for k, v in final.items()]
    rows.append(Metric("train_seconds", float(epochs * 4.5), timestamp + epochs + 1, 0))
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


def write_store(uri: str, runs: int, epochs: int, artifacts: Path) -> int:
    """A grid experiment `bench/speed` with `runs` finished runs (rounded up to whole seeds)."""
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    from aevae.config import TrainConfig, config_hash, to_dict, with_overrides

    client = MlflowClient(uri)
    artifact_root = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    experiment = client.create_experiment(f"bench/{GRID}", artifact_location=artifact_root)
    cells = list(itertools.product(*AXES.values()))
    seeds = -(-runs // len(cells))
    rng = np.random.default_rng(0)
    expected, now = [], int(time.time() * 1000)
    for seed, (model, arch, dataset, beta) in itertools.product(range(seeds), cells):
        cfg = with_overrides(TrainConfig(), {"model": model, "arch": arch, "dataset": dataset,
                                             "beta": beta, "seed": seed, "epochs": epochs})
        cell = f"{model}/{arch}/{dataset}/beta={beta}"
        tags = {"model": model, "arch": arch, "dataset": dataset, "seed": str(seed),
                "config_hash": config_hash(cfg), "grid": GRID, "cell": cell,
                "git_commit": "0" * 40, "git_dirty": "false", "torch_version": "2.13.0",
                "device": "cpu (x86_64)", "precision": "fp32",
                "mlflow.runName": f"{model}-{arch}-{dataset}-s{seed}"}
        expected.append({"cell": cell, "seed": seed, "config_hash": tags["config_hash"]})
        run_id = client.create_run(experiment, start_time=now, tags=tags).info.run_id
        params = [Param(k, str(v)) for k, v in to_dict(cfg).items()]  # as mlflow.log_params writes them
        client.log_batch(run_id, metrics=run_metrics(final_metrics(model, arch, dataset, beta, rng),
                                                     epochs, rng, now), params=params,
                         tags=[RunTag("model_uri", f"runs:/{run_id}/model")])
        client.log_artifacts(run_id, str(artifacts), "figures")
        client.set_terminated(run_id, "FINISHED", end_time=now + 1000 * epochs)
    client.set_experiment_tag(experiment, "grid_axes", json.dumps(AXES))
    cells_json = json.dumps(expected)
    if len(cells_json) <= MAX_EXPERIMENT_TAG:
        client.set_experiment_tag(experiment, "grid_cells", cells_json)
    else:
        print(f"note: grid_cells would be {len(cells_json)} characters, over MLflow's limit of "
              f"{MAX_EXPERIMENT_TAG} on an experiment tag; the store is written without it.")
    return len(cells) * seeds


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
        started = time.perf_counter()
        count = write_store(uri, args.runs, args.epochs, figure_folder(root / "source"))
        print(f"wrote {count} finished runs with {args.epochs} epochs each to {uri} "
              f"in {time.perf_counter() - started:.1f} s")
        command = [sys.executable, "-m", "aevae", "report", GRID, "--tracking-uri", uri,
                   "--out", str(root / "results")]
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return done.returncode
        print(done.stdout.strip())
        print(f"aevae report over {count} runs: {' '.join(f'{t:.2f}' for t in times)} s "
              f"(median {sorted(times)[len(times) // 2]:.2f} s, wall clock, Python start included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
