"""Time to quality: the wall seconds each MNIST-family cell of the lab grid trains until its
validation metric reaches a fixed target, in fp32 and in each faster variant, and the test
metrics each variant ends with at the lab budget.

A variant is only faster if it reaches the same quality sooner, so the clock stops at the
target, not at an epoch count. Each run trains the lab budget (AE 10 epochs, VAE 15) through
the real `train` function (no tracking store, no artifacts, no end-of-run analysis); the
clock starts before the model is built, so a compile would count, and includes the
validation pass of every epoch. Each target (TARGETS below) is what fp32 reached at the lab
budget, loosened by 1%: the final validation value of the fp32 seed-0 run of `make bench`
times 1.01 (a larger MSE, a more negative ELBO), since one epoch's value moves by 1-5% from
the next and a target at the very last value would time noise. fp32 reaches each at or
near its last epoch.

    make ttq                                    # the MNIST cells, seeds 0-2
    .venv/bin/python benchmarks/time_to_quality.py --only dataset=fashion_mnist --seeds 0
    .venv/bin/python benchmarks/time_to_quality.py --from-json runs.json   # the table again

Variants: fp32 (contiguous tensors, the conv path before channels-last), channels-last (fp32,
conv nets only: an MLP has no tensor it would change) and bf16 autocast (only on a CPU with
bf16 instructions, or with --bf16 anyway). `precision=auto, memory_format=auto` picks from
what this table shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import pandas as pd

from aevae import data
from aevae.errors import AevaeError, ConfigError
from aevae.machine import cpu
from aevae.tracking import MemoryTracker
from aevae.training.loop import RunOptions, train
from cells import grid_cells
from timing import Stopwatch

# "<model>/<arch>/<dataset>" -> validation target: VAE val/elbo at least, AE val/recon_mse at
# most. From `make bench` at 5bfe4fd on a 2-core CPU without bf16 (so fp32): the seed-0 run's
# last validation value x 1.01, rounded.
TARGETS = {
    "ae/mlp/mnist": 0.00840,             # fp32 ended at 0.0083156
    "ae/conv/mnist": 0.00730,            # 0.0072303
    "vae/mlp/mnist": -106.30,            # -105.2477
    "vae/conv/mnist": -104.75,           # -103.7088
    "ae/mlp/fashion_mnist": 0.01010,     # 0.0100047
    "ae/conv/fashion_mnist": 0.00992,    # 0.0098210
    "vae/mlp/fashion_mnist": -242.88,    # -240.4767
    "vae/conv/fashion_mnist": -243.17,   # -240.7573
}
VARIANTS = {
    "fp32": {"precision": "fp32", "memory_format": "contiguous"},
    "channels-last": {"precision": "fp32", "memory_format": "channels_last"},
    "bf16": {"precision": "bf16", "memory_format": "auto"},
}


def metric_of(key: str) -> tuple[str, int]:
    """The validation metric a cell is judged on, and its direction (+1: higher is better)."""
    return ("val/elbo", 1) if key.startswith("vae/") else ("val/recon_mse", -1)


def seconds_to_target(key: str, curve: list[list[float]]) -> float:
    """The first time on a (seconds, value) curve at which the cell's target is met; NaN if never."""
    target, (_, sign) = TARGETS.get(key, float("nan")), metric_of(key)
    return next((s for s, value in curve if sign * value >= sign * target), float("nan"))


def timed_run(cell, variant: str, splits) -> dict:
    """Train the cell's lab config in `variant` and return its validation curve, as seconds
    since before the model was built and the metric after each epoch, and its test metrics."""
    metric, _ = metric_of(cell.key)
    cfg = dataclasses.replace(cell.config, analysis=False, **VARIANTS[variant])
    curve = []
    with Stopwatch() as clock:
        result = train(cfg, splits, MemoryTracker(), lambda epoch, row: curve.append(
            [clock.seconds, row[metric]]), options=RunOptions(artifacts=False))
    return {"cell": cell.key, "seed": cell.seed, "variant": variant, "curve": curve,
            "total_s": clock.seconds, "test": result.test}


RECORD_KEYS = {"cell", "seed", "variant", "curve", "total_s", "test"}  # what timed_run returns


def spread(values, fmt: str) -> str:
    series = pd.Series(list(values), dtype=float)
    if series.isna().any():
        return "not reached" if series.isna().all() else f"{series.notna().sum()}/{len(series)} reached"
    return f"{series.mean():{fmt}} ± {series.std():{fmt}}" if len(series) > 1 else f"{series.mean():{fmt}}"


def table(records: list[dict]) -> pd.DataFrame:
    """One row per cell and variant: seconds to target, the ratio to fp32, the budget's
    seconds, the final validation value and the test metrics, each as mean ± std over seeds."""
    frame = pd.DataFrame(records)
    frame["reached_s"] = [seconds_to_target(key, curve) for key, curve in zip(frame.cell, frame.curve)]
    rows = []
    for key, cell in frame.groupby("cell", sort=False):
        metric, sign = metric_of(key)
        fp32 = cell[cell.variant == "fp32"].reached_s.mean()
        for variant, runs in cell.groupby("variant", sort=False):
            test = pd.DataFrame(list(runs.test))
            rows.append({
                "cell": key, "target": f"{metric} {'≥' if sign > 0 else '≤'} {TARGETS.get(key, float('nan')):.5g}",
                "variant": variant, "seconds to target": spread(runs.reached_s, ".1f"),
                "fp32 / variant": f"{fp32 / runs.reached_s.mean():.2f}",
                "budget seconds": spread(runs.total_s, ".1f"),
                "final val": spread((c[-1][1] for c in runs.curve), ".5g"),
                "test recon_mse": spread(test.recon_mse, ".5f"),
                "test elbo": spread(test.elbo, ".2f") if "elbo" in test else "",
            })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="lab cells to time, as `aevae bench --only` takes them (default: dataset=mnist)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds to run instead of the lab grid's (0, 1, 2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--bf16", action="store_true", help="time bf16 even on a CPU without bf16 instructions")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--json", default=None, help="also write every run's curve and test metrics here")
    parser.add_argument("--from-json", default=None, help="print the table of runs a --json file holds, training nothing")
    args = parser.parse_args()

    if args.from_json:
        try:
            with open(args.from_json) as saved:
                records = json.load(saved)
        except (OSError, ValueError) as exc:
            parser.error(f"cannot read the runs of {args.from_json}: {exc}")
        if not (isinstance(records, list) and records
                and all(isinstance(r, dict) and RECORD_KEYS <= r.keys() for r in records)):
            parser.error(f"{args.from_json} is not a --json file of this benchmark: it needs a "
                         f"non-empty list of runs, each with {', '.join(sorted(RECORD_KEYS))}.")
        print(table(records).to_markdown(index=False))
        return
    variants = [v for v in args.variants if v != "bf16" or cpu().has_bf16 or args.bf16]
    if len(variants) < len(args.variants):
        print("bf16 left out: this CPU has no bf16 instructions (it ran ~15x slower than fp32 on one); --bf16 times it anyway")
    try:
        cells = [c for c in grid_cells("lab", args.only or ["dataset=mnist"], seeds=args.seeds)
                 if c.config.dataset != "cifar10"]
    except ConfigError as exc:
        parser.error(str(exc))
    if not cells:
        parser.error("--only leaves no MNIST-family cell of the lab grid, and only those have targets.")
    records, loaded = [], {}
    for cell in cells:
        dataset = cell.config.dataset
        if dataset not in loaded:
            try:
                loaded = {dataset: data.load(dataset, args.data_dir, cell.config.val_size, cell.config.subset)}
            except AevaeError as exc:
                parser.error(str(exc))
        for variant in variants:
            if variant == "channels-last" and cell.config.arch != "conv":
                continue  # an MLP holds no 4-d tensor: channels-last would time fp32 again
            records.append(timed_run(cell, variant, loaded[dataset]))
            run = records[-1]
            print(f"{cell.key} seed {cell.seed} {variant}: {len(run['curve'])} epochs in {run['total_s']:.1f} s, "
                  f"target at {seconds_to_target(cell.key, run['curve']):.1f} s", flush=True)
            if args.json:  # after every run, so a stopped benchmark keeps what it measured
                with open(args.json, "w") as out:
                    json.dump(records, out, indent=1)
    print(table(records).to_markdown(index=False))


if __name__ == "__main__":
    main()
