"""`aevae tune STUDY`: run (or resume) an Optuna study defined in studies/."""

from __future__ import annotations

import argparse
import math

from aevae.commands.options import add_executor_options, add_store_options, check_data_dir, executor_from_args
from aevae.errors import ConfigError
from aevae.redact import redact
from aevae.tune.defaults import DEFAULT_STORAGE, DEFAULT_STUDIES_DIR, PRUNER_NAMES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY",
                        help="study name, e.g. lab/vae/mlp/mnist, or a set holding one study, e.g. quick")
    parser.add_argument("--trials", type=int, default=None,
                        help="finished (complete or pruned) trials the study should hold; a re-run "
                             "continues up to this count (default: the study file's)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="stop starting trials after S seconds")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help=f"Optuna storage: a journal file path or a database URL such as "
                             f"postgresql://user:password@host/db (default: {DEFAULT_STORAGE})")
    parser.add_argument("--pruner", choices=sorted(PRUNER_NAMES), default=None,
                        help="another pruner than the study file's, run as the separate study "
                             "STUDY/pruner=NAME (to compare pruners on one cell)")
    parser.add_argument("--seed", type=int, default=None,
                        help="sampler seed (default: the study's seed plus its trial count; give "
                             "each of several parallel workers its own)")
    parser.add_argument("--studies-dir", default=DEFAULT_STUDIES_DIR,
                        help=f"folder of study files (default: {DEFAULT_STUDIES_DIR})")
    add_store_options(parser)
    add_executor_options(parser, "trial", default_workers=1,
                         default_text="1; each worker optimizes the study with its own sampler seed")


def check_values(args: argparse.Namespace) -> None:
    """Values no study can run with, rejected before anything is read or created."""
    if args.trials is not None and args.trials < 1:
        raise ConfigError("--trials must be at least 1.")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout}; leave it "
                          f"out to run until the study holds its trials.")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed must lie between 0 and 2**32 - 1, got {args.seed}.")
    if not args.studies_dir.strip():
        raise ConfigError("--studies-dir is empty; give the folder of the study files (default studies).")


def run(args: argparse.Namespace) -> int:
    from aevae.tracking.checks import check_store

    check_values(args)
    executor, grace_s = executor_from_args(args)
    check_data_dir(args)
    tracking_uri = check_store(args.tracking_uri)

    from aevae.tune.space import find_study

    spec = find_study(args.study, args.studies_dir)

    from aevae.tune.storage import check_storage, describe_storage

    check_storage(args.storage)

    from aevae.tune.study import StudyRequest, run_study  # torch, training and MLflow

    request = StudyRequest(spec, storage=args.storage, tracking_uri=tracking_uri, data_dir=args.data_dir,
                           trials=args.trials, timeout=args.timeout, pruner=args.pruner, seed=args.seed,
                           grace_s=grace_s)
    summary = run_study(request, executor)
    print("\n".join(summary.lines()))
    print(f"Optuna storage: {describe_storage(args.storage)} (make dashboard)")
    if summary.parent_run_id:
        print(f"MLflow: run {summary.parent_run_id} in experiment 'tune/{spec.study_set}' "
              f"({redact(tracking_uri)})")
    return 0
