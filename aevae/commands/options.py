"""Command-line options shared by several subcommands, built from the config's fields."""

from __future__ import annotations

import argparse

from aevae.config import FIELDS, NOT_OPTIONS, PLUGIN_PARAMS, TrainConfig, field_type, validate, with_overrides
from aevae.errors import ConfigError
from aevae.tracking import DEFAULT_TRACKING_URI


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One `--field-name` option per TrainConfig field, its help from the field's doc."""
    group = parser.add_argument_group("training config (defaults in aevae/config.py)")
    for name, spec in FIELDS.items():
        if name in NOT_OPTIONS:
            continue
        scalar, _, is_tuple = field_type(name)
        default = spec.default
        shown = ",".join(map(str, default)) if is_tuple else default
        metavar = "NAME=VALUE,..." if name in PLUGIN_PARAMS else f"{scalar.__name__.upper()}{',...' if is_tuple else ''}"
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg_{name}", default=None,
                           metavar=metavar, help=f"{spec.metadata['help']} (default: {shown})")


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The config the options describe, checked field by field and against the registries."""
    overrides = {name: getattr(args, f"cfg_{name}") for name in FIELDS
                 if getattr(args, f"cfg_{name}", None) is not None}
    return validate(with_overrides(base or TrainConfig(), overrides))


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="dataset root in torchvision's layout (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})")


def add_executor_options(parser: argparse.ArgumentParser, unit: str, default_workers: int | None,
                         default_text: str) -> None:
    """Where the work runs (`unit`: what one task runs, e.g. 'cell'), how many at once, and
    how long a silent worker on another host is given before it is taken for dead."""
    from aevae.executors.options import EXECUTORS
    from aevae.tracking.workers import BEATS_PER_GRACE, DEFAULT_GRACE_S

    group = parser.add_argument_group("executor (README: Many machines)")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: this process, or worker processes of this machine (default); ray: tasks "
                            "on a Ray cluster")
    group.add_argument("--workers", type=worker_count, default=default_workers, metavar="N",
                       help=f"train N {unit}s at once, at most, on either executor: N processes sharing this "
                            f"machine's cores (1: in this process), or N Ray tasks; 'auto': one 1-thread "
                            f"process per core (at most 8; 1 where CUDA is present), or as many as the Ray "
                            f"cluster holds (default: {default_text})")
    group.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="Ray cluster to use, e.g. 10.0.0.5:6379 or auto; 'local' starts one on this "
                            "machine for the command (default: $RAY_ADDRESS, else the cluster `ray start` "
                            "runs here, else 'local')")
    group.add_argument("--cpus-per-cell", type=float, default=1.0, metavar="N",
                       help=f"CPUs each {unit}'s Ray task asks for, and its torch threads (default: 1)")
    group.add_argument("--gpus-per-cell", type=float, default=None, metavar="N",
                       help=f"GPUs each {unit}'s Ray task asks for (default: 1 where the cluster has GPUs, "
                            f"else 0)")
    group.add_argument("--heartbeat-grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                       help=f"a worker on another host whose heartbeat is older than S seconds is taken for "
                            f"dead, its run ended KILLED and its work done again; workers beat every "
                            f"S/{BEATS_PER_GRACE} s; give every worker the same S (default: {DEFAULT_GRACE_S})")


def worker_count(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a whole number nor 'auto'") from None


def executor_from_args(args: argparse.Namespace):
    """The checked ExecutorOptions and the heartbeat grace the options describe."""
    from aevae.executors.options import ExecutorOptions
    from aevae.tracking.workers import BEATS_PER_GRACE

    if args.heartbeat_grace < BEATS_PER_GRACE:
        raise ConfigError(f"--heartbeat-grace must be at least {BEATS_PER_GRACE} seconds (one beat a second).")
    options = ExecutorOptions(args.executor, args.workers, args.ray_address, args.cpus_per_cell, args.gpus_per_cell)
    return options.check(), args.heartbeat_grace


def check_data_dir(args: argparse.Namespace) -> None:
    """An empty --data-dir would silently mean the default."""
    if args.data_dir is not None and not args.data_dir.strip():
        raise ConfigError("--data-dir is empty; give the folder that holds the datasets, or leave "
                          "the option out for $AEVAE_DATA_DIR, else ./data.")
