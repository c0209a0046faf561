"""`aevae compare [A [B]]`: two versions of a grid, cell by cell, each change tested against
the noise between seeds; `aevae compare [A] --models M,N`: two models of one version, cell by
cell; `--fail-on-regression` makes either a CI gate."""

from __future__ import annotations

import argparse

from aevae.bench.defaults import DEFAULT_GRID, RESULTS_DIR
from aevae.compare.defaults import ALPHA, EFFECT, HEADLINE
from aevae.tracking import DEFAULT_TRACKING_URI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("first", nargs="?", default=None, metavar="A",
                        help="the version before: GRID@LABEL (a label given to aevae bench, or a git "
                             "commit its runs ran) or GRID for its newest version (GRID: a grid or any "
                             "experiment); GRID alone, without B, is the version before the newest "
                             f"(default: {DEFAULT_GRID})")
    parser.add_argument("second", nargs="?", default=None, metavar="B",
                        help="the version after, written as A is (default: the newest version of A's grid)")
    parser.add_argument("--models", default=None, metavar="M,N",
                        help="compare two models of one version instead of two versions: model M's cells "
                             "against model N's of the same arch, dataset and other axes (e.g. vae,iwae); "
                             "A is then that version (GRID alone: its newest), and B is not given")
    parser.add_argument("--alpha", type=float, default=ALPHA,
                        help=f"significance level of each Welch t-test (default: {ALPHA})")
    parser.add_argument("--min-effect", type=float, default=0.0, metavar="PCT",
                        help="a change beyond noise counts as better or worse only if it moves the mean "
                             "by at least PCT percent of A's (default: 0)")
    parser.add_argument("--holm", action="store_true",
                        help="adjust the p-values for testing every cell and metric at once (Holm), so "
                             "the chance of any false call stays at alpha")
    parser.add_argument("--metrics", default=None, metavar="KEY,...",
                        help=f"the metrics to compare (default: {','.join(HEADLINE)})")
    parser.add_argument("--effect", type=float, default=100 * EFFECT, metavar="PCT",
                        help="the change, in percent of A's mean, whose seeds per side the table gives: "
                             f"how many would find it with 80%% power (default: {100 * EFFECT:g})")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit with status 1 when a cell's metric is worse beyond noise (by --alpha, "
                             "--min-effect and --holm): a gate for CI")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help=f"folder for COMPARE.md and changes.png (default: {RESULTS_DIR}/compare/A_vs_B/)")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})")


def parse_models(text: str | None, second: str | None) -> tuple[str, str] | None:
    """`--models vae,iwae` as ('vae', 'iwae'); None without it."""
    from aevae.errors import ConfigError

    if text is None:
        return None
    models = tuple(name.strip() for name in text.split(","))
    if len(models) != 2 or not all(models) or models[0] == models[1]:
        raise ConfigError(f"--models takes two different model names, e.g. --models vae,iwae (got '{text}').")
    if second is not None:
        raise ConfigError(f"--models compares two models of one version, so it takes one side "
                          f"(aevae compare GRID[@LABEL] --models {text}), not a second one ('{second}').")
    return models


def run(args: argparse.Namespace) -> int:
    from aevae.errors import ConfigError
    from aevae.folders import check_writable
    from aevae.tracking.checks import check_store

    if not 0 < args.alpha < 1:
        raise ConfigError("--alpha must lie strictly between 0 and 1, e.g. 0.05.")
    if not args.min_effect >= 0:  # nan too
        raise ConfigError("--min-effect must be 0 or a positive percentage, e.g. 1 for 1%.")
    if not 0 < args.effect < float("inf"):  # nan too
        raise ConfigError("--effect must be a positive percentage, e.g. 1 for 1%.")
    models = parse_models(args.models, args.second)
    # the folder and the store before SciPy and pandas load
    if args.out is not None:
        check_writable(args.out, "the comparison's folder", "--out")
    check_store(args.tracking_uri, write=False)

    from aevae.compare.comparison import compare
    from aevae.compare.markdown import regression_lines
    from aevae.compare.run import write
    from aevae.compare.stats import Criterion

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else HEADLINE
    rule = Criterion(args.alpha, args.min_effect / 100, args.holm)
    comparison = compare(args.first, args.second, args.tracking_uri, rule, metrics, args.effect / 100, models)
    text, path = write(comparison, args.out)
    print(text)
    print(f"wrote {path}")
    if not args.fail_on_regression:
        return 0
    for line in regression_lines(comparison):
        print(line)
    return 1 if comparison.regressions else 0
