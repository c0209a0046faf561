"""`aevae bench`: run a benchmark grid, skipping the cells that already finished."""

from __future__ import annotations

import argparse

from aevae.bench.defaults import DEFAULT_GRID, RESULTS_DIR
from aevae.commands.options import add_store_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", nargs="?", default=DEFAULT_GRID,
                        help="grid name (a file in benchmarks/, e.g. lab, smoke, beta) or the path "
                             f"of a .toml grid file (default: {DEFAULT_GRID})")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                        help="run only the cells whose config field KEY is VALUE; repeat a KEY to "
                             "allow several values (--only dataset=mnist --only dataset=fashion_mnist)")
    parser.add_argument("--force", action="store_true",
                        help="re-run cells that already finished (their older runs are then deleted, "
                             "recoverably, so each cell keeps one finished run)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="train N cells at once in N processes sharing the cores (default: 1)")
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


def run(args: argparse.Namespace) -> int:
    from aevae.bench.run import run_grid

    summary = run_grid(args.grid, only=args.only, force=args.force, workers=args.workers,
                       tuned=args.tuned, storage=args.storage, data_dir=args.data_dir,
                       tracking_uri=args.tracking_uri, log_artifacts=not args.no_artifacts,
                       results_dir=args.results_dir, system_metrics=not args.no_system_metrics)
    return summary.exit_status
