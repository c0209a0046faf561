"""What MLflow's system metrics cost a run: the same short MNIST run (the lab grid's VAE
cell, benchmarks/lab.toml, seed 0, on a shorter budget) with the monitor on and off,
interleaved, as ratios of wall time and of this process's CPU time; and the monitor's own
CPU time per sample, measured on runs that only sleep.

Each pair trains one config twice into a temporary MLflow store, once with `system_metrics`
and once without, alternating which goes first so that a machine getting busier or quieter
weighs on both sides alike. It prints each pair's ratios (on / off), their medians and
ranges, and how many samples the monitor logged per run, so a ratio near 1 is not a monitor
that never ran. On a shared machine the wall-time ratio carries the other processes' noise;
the CPU-time ratio and the per-sample cost carry much less of it.

    .venv/bin/python benchmarks/system_metrics_cost.py --data-dir ../shared/data
    .venv/bin/python benchmarks/system_metrics_cost.py --data-dir ../shared/data --interval 1

`--interval` is MLflow's sampling interval in seconds (MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL;
10 unless set, which is what the grid runs with). The runs log metrics only, no figures or
model: those would add seconds of noise around a cost measured in milliseconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

from tabulate import tabulate

from aevae.config import TrainConfig
from aevae.errors import AevaeError
from aevae.registry import ARCH_TITLES
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.tracking.reader import StoreReader
from aevae.training.loop import RunOptions, train
from cells import grid_cells, splits_of
from timing import Stopwatch


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--pairs", type=int, default=4, help="on/off pairs (default: 4)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (default: 2)")
    parser.add_argument("--subset", type=int, default=10000,
                        help="images per split of each run (default: 10000; seconds an epoch on 2 idle cores)")
    parser.add_argument("--idle-seconds", type=float, default=20.0,
                        help="length of each sleeping run that times the monitor alone (default: 20)")
    parser.add_argument("--arch", default="mlp", choices=sorted(ARCH_TITLES), help="the VAE's arch (default: mlp)")
    parser.add_argument("--interval", type=float, default=None,
                        help="sampling interval in seconds (default: MLflow's, 10)")
    return parser


def samples(store: str, run_id: str) -> int:
    return len(StoreReader(store).metric_history(run_id, "system/cpu_utilization_percentage"))


def timed_run(cfg: TrainConfig, splits, store: str, system_metrics: bool) -> tuple[float, float, int]:
    """Wall and CPU seconds of `train` (the monitor's start and final flush included; CPU
    seconds by the Stopwatch's process clock, which counts the monitor's thread to the
    microsecond, where os.times counts 10 ms ticks, as coarse as one sample's cost) and how
    many samples the monitor logged."""
    tracker = MlflowTracker(store, "system-metrics-cost", system_metrics=system_metrics)
    with Stopwatch() as clock:
        result = train(cfg, splits, tracker, options=RunOptions(f"system_metrics={system_metrics}", artifacts=False))
    return clock.seconds, clock.cpu_seconds, samples(store, result.run_id)


def idle_cost_ms(store: str, seconds: float) -> tuple[float, int]:
    """CPU milliseconds per monitor sample: a run that sleeps with the monitor on, less one
    that sleeps with it off, per sample logged."""
    used = {}
    for system_metrics in (True, False):
        tracker = MlflowTracker(store, "system-metrics-idle", system_metrics=system_metrics)
        with Stopwatch() as clock, tracker.run(f"idle system_metrics={system_metrics}", {}, {}) as run_id:
            time.sleep(seconds)
        used[system_metrics] = clock.cpu_seconds
        if system_metrics:
            logged = samples(store, run_id)
    return 1000 * (used[True] - used[False]) / max(logged, 1), logged


def main() -> None:
    options = argument_parser()
    args = options.parse_args()
    try:
        (cell,) = grid_cells("lab", ["model=vae", f"arch={args.arch}", "dataset=mnist"],
                             fields={"epochs": args.epochs, "subset": args.subset, "analysis": False})
        splits = splits_of([cell], args.data_dir)["mnist"]
    except AevaeError as exc:
        options.error(str(exc))
    if args.interval is not None:
        os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = str(args.interval)
    store = f"sqlite:///{tempfile.mkdtemp(prefix='aevae-sysmetrics-')}/mlflow.db"
    cfg = cell.config
    timed_run(dataclasses.replace(cfg, epochs=1), splits, store, True)  # warm-up: imports, the store's tables

    rows, wall_ratios, cpu_ratios = [], [], []
    for pair in range(args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        measured = {system_metrics: timed_run(cfg, splits, store, system_metrics) for system_metrics in order}
        (wall_on, cpu_on, samples_on), (wall_off, cpu_off, samples_off) = measured[True], measured[False]
        wall_ratios.append(wall_on / wall_off)
        cpu_ratios.append(cpu_on / cpu_off)
        rows.append([pair + 1, "on first" if order[0] else "off first", f"{wall_on:.1f}", f"{wall_off:.1f}",
                     f"{wall_ratios[-1]:.3f}", f"{cpu_on:.1f}", f"{cpu_off:.1f}", f"{cpu_ratios[-1]:.3f}",
                     samples_on, samples_off])
    per_sample_ms, idle_samples = idle_cost_ms(store, args.idle_seconds)
    interval = float(os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", 10))
    print(f"{args.arch} VAE on {args.subset} MNIST images per split, {args.epochs} epochs per run; "
          f"sampling interval {interval:g} s; {os.cpu_count()} CPUs; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(tabulate(rows, headers=["pair", "order", "wall on s", "wall off s", "on/off", "cpu on s",
                                  "cpu off s", "on/off", "samples on", "samples off"]))
    for what, ratios in (("wall", wall_ratios), ("cpu", cpu_ratios)):
        print(f"{what} time on/off: median {statistics.median(ratios):.3f} (range {min(ratios):.3f} to "
              f"{max(ratios):.3f}) over {len(ratios)} pairs")
    print(f"the monitor alone: {per_sample_ms:.1f} ms of CPU per sample ({idle_samples} samples in "
          f"{args.idle_seconds:g} s asleep), {per_sample_ms / (10 * interval):.3f}% of one core "
          f"at one sample every {interval:g} s")


if __name__ == "__main__":
    main()
