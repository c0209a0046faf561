"""`aevae bench`: run a benchmark grid, skipping the cells that already finished."""

from __future__ import annotations

import argparse
from pathlib import Path

from aevae.bench.defaults import DEFAULT_GRID, RESULTS_DIR
from aevae.commands.options import add_executor_options, add_store_options, check_data_dir, executor_from_args
from aevae.errors import ConfigError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", nargs="?", default=DEFAULT_GRID,
                        help="grid name (a file in benchmarks/, e.g. lab, smoke, beta) or the path "
                             f"of a .toml grid file (default: {DEFAULT_GRID})")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                        help="run only the cells whose config field KEY is VALUE; repeat a KEY to "
                             "allow several values (--only dataset=mnist --only dataset=fashion_mnist)")
    parser.add_argument("--label", default=None, metavar="LABEL",
                        help="the version of the grid these runs belong to: a cell counts as finished "
                             "only with a finished run of the same label, so a new label runs the grid "
                             "again beside the old runs (default: the git commit, plus -dirty-<digest> "
                             "while aevae/ has uncommitted changes)")
    parser.add_argument("--force", action="store_true",
                        help="re-run cells of this version that already finished (its older runs are "
                             "then deleted, recoverably, so each cell keeps one finished run; other "
                             "versions' runs stay)")
    parser.add_argument("--seeds", type=seed_list, default=None, metavar="S,S,...",
                        help="run these seeds instead of the grid file's (e.g. 0,1,2: a comparison "
                             "needs two or more seeds per cell)")
    parser.add_argument("--workers", type=worker_count, default=1, metavar="N",
                        help="train N cells at once in N processes sharing the cores, or 'auto': one "
                             "1-thread process per core (at most 8), and 1 where CUDA is present "
                             "(default: 1; make bench passes auto, which trained the lab grid's MNIST "
                             "cells fastest on a 2-core CPU; with --executor ray the cluster's free CPUs "
                             "and GPUs decide)")
    parser.add_argument("--tuned", action="store_true",
                        help="use the best parameters of each cell's Optuna study (aevae tune)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL of the studies for --tuned (default: aevae tune's)")
    parser.add_argument("--no-artifacts", action="store_true",
                        help="log no figures and no models (faster); every metric, the analysis's included, "
                             "is still measured and logged")
    parser.add_argument("--no-system-metrics", action="store_true",
                        help="log no system/* metrics (CPU, memory, disk, network) while cells train")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the summary table goes, as <dir>/<grid>/summary.csv "
                             f"(default: {RESULTS_DIR})")
    add_store_options(parser)
    add_executor_options(parser, "cell")


def worker_count(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a whole number nor 'auto'") from None


def seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None


def run(args: argparse.Namespace) -> int:
    # What can be checked is checked before torch and MLflow load, and before the store is
    # touched: the values, the grid file, the results folder, the store.
    from aevae.bench.grid import expand, load_grid
    from aevae.folders import check_writable
    from aevae.tracking.checks import check_store

    if args.workers != "auto" and args.workers < 1:
        raise ConfigError("--workers must be at least 1.")
    if not args.results_dir.strip():
        raise ConfigError(f"--results-dir is empty; give a folder, or leave the option out for {RESULTS_DIR}.")
    executor, grace_s = executor_from_args(args)
    check_data_dir(args)
    grid = load_grid(args.grid)
    expand(grid)  # every cell checked, and that the grid means something (tuned values come later)
    check_writable(Path(args.results_dir) / grid.name, "the results folder", "--results-dir")
    tracking_uri = check_store(args.tracking_uri)

    from aevae.bench.run import run_grid
    from aevae.machine import auto_workers

    if args.workers == "auto":
        args.workers = 1 if executor.executor == "ray" else auto_workers()
    summary = run_grid(grid, only=args.only, force=args.force, workers=args.workers,
                       tuned=args.tuned, storage=args.storage, data_dir=args.data_dir,
                       tracking_uri=tracking_uri, log_artifacts=not args.no_artifacts,
                       results_dir=args.results_dir, label=args.label, seeds=args.seeds,
                       executor=executor, grace_s=grace_s, system_metrics=not args.no_system_metrics)
    return summary.exit_status
