"""What the end-of-run analysis costs, and what it finds, on real MNIST.

Trains each MNIST cell of the lab grid (benchmarks/lab.toml, seed 0: AE and VAE, MLP and
conv, at the lab budget; `--only` picks others) twice, with `analysis=false` and
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
import dataclasses
import os
import tempfile

from tabulate import tabulate

from aevae.analysis import classifier
from aevae.config import TrainConfig, parse_value
from aevae.errors import AevaeError, ConfigError
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training.loop import RunOptions, train
from cells import grid_cells, splits_of
from timing import Stopwatch

PARTS = ("codes", "figures", "tsne", "probe", "sample_quality", "nll")
FINDINGS = ("active_units", "probe_acc", "frechet", "frechet_fitted", "frechet_recon",
            "confident_share", "confident_share_fitted", "nll", "bpd", "recon_bce", "kl")


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="lab cells to time, as `aevae bench --only` takes them (default: dataset=mnist)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config field for every run, after the lab grid's own, e.g. binarize=true "
                             "or epochs=2 (repeatable)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: a temporary one)")
    parser.add_argument("--experiment", default="analysis-overhead")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="use an empty classifier cache, to time the reference classifier's training")
    return parser


def overrides(pairs: list[str]) -> dict[str, object]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set expects FIELD=VALUE, e.g. --set binarize=true; got '{pair}'.")
        values[name.strip()] = parse_value(name.strip(), value.strip())
    return values


def timed_run(cfg: TrainConfig, splits, tracker: MlflowTracker) -> tuple[float, dict[str, float]]:
    """Wall seconds of `train` and the run's final metrics, as the store holds them."""
    with Stopwatch() as clock:
        result = train(cfg, splits, tracker, options=RunOptions(f"{cfg.model}-{cfg.arch}-analysis={cfg.analysis}"))
    return clock.seconds, tracker.store.get(result.run_id).metrics


def main() -> None:
    options = argument_parser()
    args = options.parse_args()
    try:
        cells = grid_cells("lab", args.only or ["dataset=mnist"], fields=overrides(args.set))
        loaded = splits_of(cells, args.data_dir)
    except AevaeError as exc:
        options.error(str(exc))
    if args.fresh_cache:
        os.environ["AEVAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="aevae-cache-")
    store = args.tracking_uri or f"sqlite:///{tempfile.mkdtemp(prefix='aevae-overhead-')}/mlflow.db"
    tracker = MlflowTracker(store, args.experiment)

    for dataset, splits in loaded.items():
        with Stopwatch() as clock:
            ref = classifier.reference(splits)
        print(f"reference classifier {ref.key}: test accuracy {ref.test_accuracy:.4f}, "
              f"{'from cache' if ref.from_cache else 'trained now'} in {clock.seconds:.1f} s "
              f"(its training took {ref.train_seconds:.1f} s), cache {classifier.cache_dir()}")

    # One short run first, so imports and MLflow's first-use costs land in neither column.
    first = cells[0].config
    train(dataclasses.replace(first, epochs=1), loaded[first.dataset], tracker, options=RunOptions("warm-up"))

    timing_rows, finding_rows = [], []
    for cell in cells:
        cfg, splits = cell.config, loaded[cell.config.dataset]
        wall_off, _ = timed_run(dataclasses.replace(cfg, analysis=False), splits, tracker)
        wall_on, found = timed_run(dataclasses.replace(cfg, analysis=True), splits, tracker)
        timing_rows.append([cell.key, cfg.epochs, wall_off, wall_on, wall_on / wall_off,
                            found["analysis_seconds"] / wall_off,
                            *(found.get(f"analysis_seconds/{p}") for p in PARTS)])
        finding_rows.append([cell.key, *(found.get(f"test/{k}") for k in FINDINGS)])
        print(tabulate(timing_rows[-1:], floatfmt=".2f"), flush=True)

    print("\nwall seconds per run, without and with the analysis (analysis/off: its own seconds over the run without it)")
    print(tabulate(timing_rows, headers=["cell", "epochs", "off", "on", "on/off", "analysis/off", *PARTS],
                   floatfmt=".2f"))
    print("\nwhat the analysis measured (test split; units in aevae/analysis/__init__.py)")
    print(tabulate(finding_rows, headers=["cell", *FINDINGS], floatfmt=".4g"))
    print(f"\nruns in experiment '{args.experiment}' at {store}")


if __name__ == "__main__":
    main()
