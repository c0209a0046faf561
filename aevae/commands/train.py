"""`aevae train`: one configuration, trained and tracked."""

from __future__ import annotations

import argparse

from aevae.commands.options import add_config_options, add_store_options, check_data_dir, config_from_args
from aevae.errors import ConfigError
from aevae.redact import redact


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser)
    parser.add_argument("--experiment", default="aevae", help="MLflow experiment name (default: aevae)")
    parser.add_argument("--no-artifacts", action="store_true",
                        help="log no figures, no frames and no model (faster); every metric, the analysis's included, "
                             "is still measured and logged")
    parser.add_argument("--no-system-metrics", action="store_true",
                        help="log no system/* metrics (CPU, memory, disk, network) while the run trains")
    parser.add_argument("--remeasure", action="store_true",
                        help="time this machine's execution settings (memory format, transposed convolution, "
                             "compile) again instead of reading what it measured before")
    add_config_options(parser)


def run(args: argparse.Namespace) -> int:
    from aevae.resolve import resolve
    from aevae.tracking.checks import check_store

    if not args.experiment.strip():
        raise ConfigError("--experiment is empty; name the MLflow experiment, e.g. --experiment aevae.")
    check_data_dir(args)
    cfg = resolve(config_from_args(args))  # a plug-in's hyperparameters too (loading it, where one is named)
    tracking_uri = check_store(args.tracking_uri)  # before the data: nothing trains into a dead store

    from aevae import data
    from aevae.machine import pick_device

    device = pick_device(cfg.device)  # a device this machine lacks fails before anything is created
    splits = data.load(cfg.dataset, args.data_dir, cfg.val_size, cfg.subset, cfg.plugins)
    # training and MLflow load only once the data is at hand: seconds saved on a failure
    from aevae.models import check
    from aevae.tracking import names
    from aevae.tracking.mlflow_tracker import MlflowTracker
    from aevae.training.loop import RunOptions, train
    from aevae.training.memory import check_fits

    check_fits(cfg, splits.spec.shape, device)  # before the store is touched
    check(cfg, splits.spec.shape)  # a plug-in that breaks its protocol: one sentence, nothing logged
    if args.remeasure:
        from aevae.numerics import Numerics
        from aevae.training.measured import remeasure

        remeasure(Numerics.of(cfg))
    tracker = MlflowTracker(tracking_uri, args.experiment, entry_point=names.ENTRY_TRAIN,
                            system_metrics=not args.no_system_metrics)
    result = train(cfg, splits, tracker, options=RunOptions(artifacts=not args.no_artifacts))
    per_epoch = sum(row[names.EPOCH_SECONDS] for row in result.history) / len(result.history)
    print(f"run {result.run_id} in experiment '{args.experiment}' ({redact(tracker.tracking_uri)}), "
          f"{result.seconds:.1f} s, {per_epoch:.1f} s/epoch of training")
    print("test: " + ", ".join(f"{k}={v:.4g}" for k, v in result.test.items()))
    print(f"settings: {result.settings}")
    return 0
