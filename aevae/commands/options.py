"""Command-line options shared by several subcommands, built from the config's fields."""

from __future__ import annotations

import argparse

from aevae.config import FIELDS, TrainConfig, field_type, validate, with_overrides
from aevae.tracking import DEFAULT_TRACKING_URI


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One `--field-name` option per TrainConfig field, its help from the field's doc."""
    group = parser.add_argument_group("training config (defaults in aevae/config.py)")
    for name, spec in FIELDS.items():
        scalar, _, is_tuple = field_type(name)
        default = spec.default
        shown = ",".join(map(str, default)) if is_tuple else default
        metavar = f"{scalar.__name__.upper()}{',...' if is_tuple else ''}"
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
