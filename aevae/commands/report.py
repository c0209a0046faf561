"""`aevae report`: RESULTS.md and figures for a grid, from the runs tracked in MLflow."""

from __future__ import annotations

import argparse

from aevae.bench.defaults import DEFAULT_GRID, RESULTS_DIR
from aevae.tracking import DEFAULT_TRACKING_URI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", default=DEFAULT_GRID, metavar="GRID_OR_EXPERIMENT",
                        help="a grid name (lab reads experiment bench/lab) or any experiment name "
                             f"(default: {DEFAULT_GRID})")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help=f"folder for RESULTS.md and the figures (default: {RESULTS_DIR}/<grid>/)")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})")
    parser.add_argument("--label", default=None, metavar="LABEL",
                        help="the version of the grid to report: its label, or a git commit its runs "
                             "ran (default: the newest version; aevae bench --label names them)")
    parser.add_argument("--ui-url", default=None, metavar="URL",
                        help="an MLflow UI that serves this store, for run links "
                             "(default: the tracking URI when it is http(s))")
    parser.add_argument("--references", default=None, metavar="FILE",
                        help="published results to show beside ours (default: benchmarks/references.toml)")


def run(args: argparse.Namespace) -> int:
    # the folder first, before the report's libraries take seconds to load; build_report
    # then reads the references file and checks the store (within seconds), in that order
    from aevae.folders import check_writable

    if args.out is not None:
        check_writable(args.out, "the report folder", "--out")

    from aevae.report import build_report

    report = build_report(args.target, args.out, args.tracking_uri, args.ui_url,
                          references_file=args.references, version=args.label)
    print(report.summary())
    return 0
