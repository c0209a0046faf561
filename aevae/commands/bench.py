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
    parser.add_argument("--tuned", action="store_true",
                        help="use the best parameters of each cell's Optuna study (aevae tune)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL of the studies for --tuned (default: aevae tune's)")
    parser.add_argument("--no-artifacts", action="store_true",
                        help="log no figures and no models (faster); every metric, the analysis's included, "
                             "is still measured and logged")
    parser.add_argument("--no-system-metrics", action="store_true",
                        help="log no system/* metrics (CPU, memory, disk, network) while cells train")
    parser.add_argument("--remeasure", action="store_true",
                        help="time this machine's execution settings (memory format, transposed convolution, "
                             "compile, workers) again instead of reading what it measured before")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the summary table goes, as <dir>/<grid>/summary.csv "
                             f"(default: {RESULTS_DIR})")
    add_store_options(parser)
    add_executor_options(parser, "cell", default_workers=None,
                         default_text="1 locally, as many as the cluster holds on Ray; make bench passes auto")


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

    if not args.results_dir.strip():
        raise ConfigError(f"--results-dir is empty; give a folder, or leave the option out for {RESULTS_DIR}.")
    executor, grace_s = executor_from_args(args)
    check_data_dir(args)
    grid = load_grid(args.grid)
    cells = expand(grid)  # every cell checked, and that the grid means something (tuned values come later)
    check_writable(Path(args.results_dir) / grid.name, "the results folder", "--results-dir")
    tracking_uri = check_store(args.tracking_uri)

    from aevae.bench.run import BenchRequest, check_plugins, run_grid

    check_plugins(cells)  # a plug-in that breaks its protocol is one sentence before anything trains

    tuned = None
    if args.tuned:
        from aevae.tune.study import tuned_lookup  # Optuna is loaded only when --tuned asks for it

        tuned = tuned_lookup(args.storage)
    request = BenchRequest(grid, only=tuple(args.only), seeds=args.seeds, label=args.label, force=args.force,
                           tuned=tuned, data_dir=args.data_dir, tracking_uri=tracking_uri,
                           results_dir=args.results_dir, log_artifacts=not args.no_artifacts,
                           system_metrics=not args.no_system_metrics, grace_s=grace_s,
                           remeasure=args.remeasure)
    return run_grid(request, executor).exit_status
