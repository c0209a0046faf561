"""What the end-of-run analysis costs, and what it finds, on real MNIST.

Trains each default MNIST cell (AE and VAE, MLP and conv) twice, with `analysis=false` and
`analysis=true` and nothing else changed, and prints the wall time of both, their ratio,
the analysis' own seconds per part, and the numbers the analysis logs. The reference
classifier is fetched first and timed on its own: its one-off training is not a per-run
cost (a fresh cache trains it; `--fresh-cache` forces that to measure it).

    .venv/bin/python benchmarks/analysis_overhead.py --data-dir ../shared/data

Runs go to a temporary MLflow store unless `--tracking-uri` names one (then the report can
show them). Measure on a quiet machine: the ratio is only as good as the timings.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from tabulate import tabulate

from aevae import data
from aevae.analysis import classifier
from aevae.config import TrainConfig, parse_value, with_overrides
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training.loop import train

PARTS = ("codes", "figures", "tsne", "probe", "sample_quality", "nll")
FINDINGS = ("active_units", "probe_acc", "frechet", "frechet_fitted", "frechet_recon",
            "confident_share", "confident_share_fitted", "nll", "bpd", "recon_bce", "kl")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--archs", default="mlp,conv", help="comma-separated archs (default: mlp,conv)")
    parser.add_argument("--models", default="ae,vae", help="comma-separated models (default: ae,vae)")
    parser.add_argument("--epochs-ae", type=int, default=10, help="the AE cell's budget (default: 10)")
    parser.add_argument("--epochs-vae", type=int, default=15, help="the VAE cell's budget (default: 15)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any other config field for every run, e.g. binarize=true (repeatable)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: a temporary one)")
    parser.add_argument("--experiment", default="analysis-overhead")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="use an empty classifier cache, to time the reference classifier's training")
    return parser.parse_args()


def overrides(pairs: list[str]) -> dict[str, object]:
    values = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        values[name] = parse_value(name.strip(), value.strip())
    return values


def timed_run(cfg: TrainConfig, splits, tracker) -> tuple[float, dict[str, float]]:
    """Wall seconds of `train` and the run's final metrics."""
    started = time.perf_counter()
    result = train(cfg, splits, tracker, run_name=f"{cfg.model}-{cfg.arch}-analysis={cfg.analysis}")
    wall = time.perf_counter() - started
    from mlflow import MlflowClient

    metrics = MlflowClient(tracker.tracking_uri).get_run(result.run_id).data.metrics
    return wall, metrics


def main() -> None:
    args = parse_args()
    if args.fresh_cache:
        os.environ["AEVAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="aevae-cache-")
    store = args.tracking_uri or f"sqlite:///{tempfile.mkdtemp(prefix='aevae-overhead-')}/mlflow.db"
    tracker = MlflowTracker(store, args.experiment)
    base = with_overrides(TrainConfig(dataset="mnist"), overrides(args.set))
    splits = data.load("mnist", args.data_dir, base.val_size, base.subset)

    started = time.perf_counter()
    ref = classifier.reference(splits)
    print(f"reference classifier {ref.key}: test accuracy {ref.test_accuracy:.4f}, "
          f"{'from cache' if ref.from_cache else 'trained now'} in {time.perf_counter() - started:.1f} s "
          f"(its training took {ref.train_seconds:.1f} s), cache {classifier.cache_dir()}")

    # One short run first, so imports and MLflow's first-use costs land in neither column.
    train(with_overrides(base, {"epochs": 1}), splits, tracker, run_name="warm-up")

    timing_rows, finding_rows = [], []
    for arch in args.archs.split(","):
        for model in args.models.split(","):
            epochs = args.epochs_vae if model == "vae" else args.epochs_ae
            cfg = with_overrides(base, {"model": model, "arch": arch, "epochs": epochs})
            wall_off, _ = timed_run(with_overrides(cfg, {"analysis": False}), splits, tracker)
            wall_on, found = timed_run(cfg, splits, tracker)
            timing_rows.append([f"{model}/{arch}", epochs, wall_off, wall_on, wall_on / wall_off,
                                found["analysis_seconds"] / wall_off,
                                *(found.get(f"analysis_seconds/{p}") for p in PARTS)])
            finding_rows.append([f"{model}/{arch}", *(found.get(f"test/{k}") for k in FINDINGS)])
            print(tabulate(timing_rows[-1:], floatfmt=".2f"), flush=True)

    print("\nwall seconds per run, without and with the analysis (analysis/off: its own seconds over the run without it)")
    print(tabulate(timing_rows, headers=["cell", "epochs", "off", "on", "on/off", "analysis/off", *PARTS],
                   floatfmt=".2f"))
    print("\nwhat the analysis measured (test split; units in aevae/analysis/__init__.py)")
    print(tabulate(finding_rows, headers=["cell", *FINDINGS], floatfmt=".4g"))
    print(f"\nruns in experiment '{args.experiment}' at {store}")


if __name__ == "__main__":
    main()
