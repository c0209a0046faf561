"""A config made whole, so that what is logged and hashed is the config that actually ran: the
defaults that follow other fields filled in (the latent size and the reconstruction loss
from the dataset, the frame interval from the epochs), and a plug-in's own hyperparameters
checked against what its class declares and completed with their defaults.

Light for the built-ins: a plug-in's class (and torch) or a dataset file is read only when
the config names one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aevae.config import PLUGIN_PARAMS, TrainConfig, auto_image_every, coerce_value, validate
from aevae.errors import ConfigError
from aevae.registry import ARCH_TITLES, DATASET_INFO, MODEL_TITLES, DatasetInfo

BUILTIN = {"model": MODEL_TITLES, "arch": ARCH_TITLES}


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Validate `cfg` and fill in what depends on other fields (see the module docstring)."""
    info = dataset_info(validate(cfg))
    if cfg.binarize and not info.binary_ok:
        raise ConfigError(f"binarize applies to near-binary grey images (the MNIST family), not to "
                          f"'{cfg.dataset}'.")
    # the count is known for a dataset of the user's (read by now), not for a built-in (0)
    if info.train_images and cfg.val_size >= info.train_images:
        raise ConfigError(f"val_size {cfg.val_size} leaves no training images out of the {info.train_images} of "
                          f"'{cfg.dataset}': set val_size below that, e.g. val_size = {max(1, info.train_images // 10)}.")
    return dataclasses.replace(
        cfg,
        latent_dim=cfg.latent_dim or info.default_latent,
        recon_loss=cfg.recon_loss or info.default_recon_loss,
        image_every=auto_image_every(cfg.epochs) if cfg.image_every is None else cfg.image_every,
        **{field: declared(cfg, kind) for field, kind in PLUGIN_PARAMS.items()},
    )


def dataset_info(cfg: TrainConfig) -> DatasetInfo:
    """What is known of the config's dataset: the registry's entry for a built-in; a
    plug-in's shape, classes and defaults, read from its data."""
    if cfg.dataset in DATASET_INFO:
        return DATASET_INFO[cfg.dataset]
    from aevae.data import dataset_spec  # a file of the user's, read once per process

    return dataset_spec(cfg.dataset, cfg.plugins)


def declared(cfg: TrainConfig, kind: str) -> tuple[tuple[str, Any], ...]:
    """The config's hyperparameters of its `kind` plug-in, checked against the dataclass its
    class declares as `Params` (unknown names list the valid ones; values take the field's
    type) and completed with the declared defaults; () for a plug-in that declares none."""
    name, given = getattr(cfg, kind), dict(getattr(cfg, f"{kind}_params"))
    if name in BUILTIN[kind] and not given:
        return ()
    from aevae.models import plugin_class  # the plug-in's module, and torch

    declaration = getattr(plugin_class(kind, name, cfg.plugins), "Params", None)
    if declaration is None or not dataclasses.is_dataclass(declaration):
        if given:
            raise ConfigError(f"the {kind} '{name}' declares no hyperparameters, so {kind}_params "
                              f"{', '.join(given)} cannot be set: remove them, or declare them in a Params "
                              f"dataclass of its class (README: Bring your own model).")
        return ()
    fields = {f.name: f for f in dataclasses.fields(declaration)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {kind}_params '{unknown[0]}' of the {kind} '{name}'; valid: "
                          f"{', '.join(fields) or 'none'}.")
    values = {key: coerce(kind, name, fields[key], value) for key, value in given.items()}
    try:
        filled = declaration(**values)
    except (TypeError, ValueError) as exc:  # the plug-in's own checks (__post_init__), or a field without default
        raise ConfigError(f"the {kind} '{name}' refuses its {kind}_params: {exc}") from None
    return tuple(sorted((key, _hashable(getattr(filled, key))) for key in fields))


def coerce(kind: str, name: str, declared_field: dataclasses.Field, value: Any) -> Any:
    """A hyperparameter's value as its declared type (int, float, bool, str, or a tuple of
    one of them), as TrainConfig's own fields are coerced."""
    hint = declared_field.type if isinstance(declared_field.type, type) else None
    text = str(declared_field.type)
    scalar = hint or next((t for t in (bool, int, float, str) if t.__name__ in text), str)
    try:
        if isinstance(value, tuple) or text.startswith("tuple"):
            items = value.strip("[]() ").split(",") if isinstance(value, str) else value
            return tuple(coerce_value(scalar, v) for v in items)
        return coerce_value(scalar, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{kind}_params '{declared_field.name}' of the {kind} '{name}' expects "
                          f"{scalar.__name__}, got {value!r}.") from None


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


__all__ = ["dataset_info", "declared", "resolve"]
