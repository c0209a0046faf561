"""`aevae tune STUDY`: run (or resume) an Optuna study defined in studies/."""

from __future__ import annotations

import argparse
import signal

from aevae.commands.options import add_executor_options, add_store_options, executor_from_args
from aevae.errors import ConfigError
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
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="with --executor ray, N Ray tasks optimize the study side by side, each with "
                             "its own sampler seed (default: 1)")
    add_store_options(parser)
    add_executor_options(parser, "worker")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from aevae.tune.space import find_study
    from aevae.tune.storage import describe_storage
    from aevae.tracking import default_tracking_uri
    from aevae.tune.study import run_study

    if args.trials is not None and args.trials < 1:
        raise ConfigError("--trials must be at least 1.")
    executor, grace_s = executor_from_args(args)
    spec = find_study(args.study, args.studies_dir)
    # `kill` ends the process the way Ctrl-C does: the running trial is failed and its MLflow
    # run ends KILLED, instead of both staying RUNNING.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = run_study(spec, storage=args.storage, tracking_uri=args.tracking_uri,
                            data_dir=args.data_dir, trials=args.trials, timeout=args.timeout,
                            pruner=args.pruner, seed=args.seed, workers=args.workers, executor=executor,
                            grace_s=grace_s)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\n".join(summary.lines()))
    print(f"Optuna storage: {describe_storage(args.storage)} (make dashboard)")
    if summary.parent_run_id:
        print(f"MLflow: run {summary.parent_run_id} in experiment 'tune/{spec.study_set}' "
              f"({args.tracking_uri or default_tracking_uri()})")
    return 0
