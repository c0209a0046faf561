"""The one training configuration: a frozen dataclass whose fields document themselves.

Defaults live here and nowhere else. Variants come from `dataclasses.replace` (through
`with_overrides`, which checks the keys), so nothing assigns to a config after it is built.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from aevae.errors import ConfigError
from aevae.registry import ARCH_TITLES, DATASET_INFO, MODEL_TITLES


def _doc(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def _one_of(names) -> str:
    """`'a', 'b' or 'c'`, for a help text that lists a registry's names."""
    quoted = [f"'{name}'" for name in names]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's numbers (paths and stores are not here)."""

    model: str = _doc("vae", f"Model: {_one_of(MODEL_TITLES)} ('ae' is the plain autoencoder), an installed "
                             f"plug-in's name, or a plug-in's reference, module:Class or path/file.py:Class.")
    arch: str = _doc("mlp", f"Encoder/decoder architecture: {_one_of(ARCH_TITLES)}, an installed plug-in's name, "
                            f"or a reference, module:Class or path/file.py:Class.")
    dataset: str = _doc("mnist", f"Dataset: {_one_of(DATASET_INFO)}, an installed plug-in's name, or a file of "
                                 f"your own: images.npz (Keras's names), or a folder with train/ and test/ "
                                 f"class folders.")
    latent_dim: int | None = _doc(
        None, "Latent size; None takes the dataset's default (20 for 28x28, 128 for 32x32)."
    )
    hidden_dim: int = _doc(512, "Width of the MLP's hidden layers.")
    conv_channels: tuple[int, ...] = _doc(
        (32, 64), "Channels of the conv encoder's stride-2 layers (the decoder mirrors them)."
    )
    recon_loss: str | None = _doc(
        None,
        "Reconstruction term, summed over pixels: 'bce' (Bernoulli, nats per image) or 'mse' "
        "(sum of squared errors); None takes the dataset's default.",
    )
    beta: float = _doc(1.0, "Weight of the KL term (0 gives the VAE without KL); unused by the AE.")
    lr: float = _doc(1e-3, "Adam learning rate.")
    weight_decay: float = _doc(0.0, "Adam weight decay (L2).")
    batch_size: int = _doc(128, "Training batch size, in images.")
    epochs: int = _doc(10, "Passes over the training split.")
    seed: int = _doc(0, "Seed of the weights, the batch order and the sampling noise.")
    val_size: int = _doc(
        5000, "Images carved from the training set for validation (fixed split, same for all seeds)."
    )
    subset: int = _doc(0, "Use at most this many images of each split (0 = all); for smoke runs.")
    binarize: bool = _doc(
        False, "Dynamic binarization (MNIST family): pixels drawn as Bernoulli(intensity) per batch."
    )
    pixel_tol: float = _doc(
        0.1, "A pixel channel counts as reconstructed when within this distance, on [0,1]."
    )
    precision: str = _doc(
        "auto", "'auto' (bf16 autocast on a CPU with bf16 instructions; fp32 on CUDA, where these "
        "small models train faster in fp32), 'bf16' or 'fp32'."
    )
    memory_format: str = _doc(
        "auto", "'auto' (measured on this machine at first use, for conv nets: "
        "aevae.training.measured), 'channels_last' or 'contiguous'. How a step computes, not what."
    )
    transposed_conv: str = _doc(
        "auto", "A transposed convolution to an image's channels as oneDNN's kernel ('native') or as a "
        "matrix product and a fold ('fold': aevae.models.fold); 'auto' measures which is faster on this "
        "machine. How a step computes, not what."
    )
    compile: str = _doc(
        "auto", "The training loss through torch.compile ('on') or eager ('off'); 'auto' measures it for "
        "runs long enough to pay its compile time. How a step computes, not what."
    )
    device: str = _doc("auto", "'auto' (CUDA when present, else CPU), 'cpu' or 'cuda'.")
    image_every: int | None = _doc(
        None, "Log frames (reconstructions of fixed test images, decodes of fixed prior draws, "
        "and the latent map of a 2-d latent) as per-epoch images for MLflow's image slider "
        "at epoch 1, every this many epochs after it and at the last; None takes "
        "max(1, round(epochs / 10)), every epoch up to 14 epochs and about ten frames beyond; "
        "0 logs none (Optuna trials' default).",
    )
    # The end-of-run analysis (aevae/analysis): each part has its own switch or size.
    analysis: bool = _doc(
        True, "Run the end-of-run analysis (latent figures, probe, sample quality, likelihood)."
    )
    analysis_figures: bool = _doc(
        True, "Interpolation, manifold, fitted-Gaussian sample and per-dimension figures."
    )
    tsne_points: int = _doc(
        500, "Test codes (the first ones) in the t-SNE latent map; 0 skips t-SNE."
    )
    probe: bool = _doc(
        True, "Linear probe: logistic regression on training codes, accuracy on test codes."
    )
    frechet_samples: int = _doc(
        5000, "Generated images per Frechet distance in reference-classifier features (at most "
        "the test split's size); 0 skips sample quality.",
    )
    nll_samples: int = _doc(
        100, "Importance samples per image of the VAE's test NLL estimate (IWAE); 0 skips it."
    )
    nll_images: int = _doc(500, "Test images (the first ones) the NLL is estimated on.")
    # Plug-ins (README: Bring your own model, Bring your own data).
    model_params: tuple[tuple[str, Any], ...] = _doc(
        (), "The model's own hyperparameters, name=value,... (e.g. samples=5); its class declares them "
            "with their defaults and docs, and each is logged as the param model_params.<name>."
    )
    arch_params: tuple[tuple[str, Any], ...] = _doc(
        (), "The architecture's own hyperparameters, name=value,...; its class declares them."
    )
    plugins: tuple[tuple[str, str, str], ...] = _doc(
        (), "The plug-ins the model, arch and dataset name, as (kind, name, reference): filled from a grid "
            "or study file's [models], [archs] and [datasets] tables, or from a reference given as the model, "
            "arch or dataset; not set by hand."
    )


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)
# Config fields of a plug-in's own hyperparameters, by the kind of plug-in that declares them.
PLUGIN_PARAMS = {"model_params": "model", "arch_params": "arch"}
PLUGINS = "plugins"
# Fields younger than the config hash that only say how a step computes (memory_format, as
# old as the hash, stays in it): at 'auto' they leave a config's hash as it was.
MEASURED = ("transposed_conv", "compile")
NAMED = ("model", "arch", "dataset")  # fields that name a plug-in (or a built-in)
# Fields the command line does not offer: the plug-ins come from references and files.
NOT_OPTIONS = (PLUGINS,)


def field_type(name: str) -> tuple[type, bool, bool]:
    """The scalar type of a field, whether None is allowed, and whether it is a tuple."""
    hint = _HINTS[name]
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    if typing.get_origin(hint) is tuple:
        inner = typing.get_args(hint)[0]
        return (inner if isinstance(inner, type) else tuple), optional, True
    return hint, optional, False


def parse_value(name: str, value: Any) -> Any:
    """Coerce a value from a command line, a grid file or Optuna into the field's type. A
    plug-in's hyperparameter is `model_params.<name>` (or `arch_params.<name>`); its value is
    kept as given here and checked against the plug-in's declaration by `aevae.resolve`."""
    head, dot, _ = name.partition(".")
    if dot and head in PLUGIN_PARAMS:
        return _plain(name, value)
    if name not in FIELDS:
        raise ConfigError(f"unknown config field '{name}'; valid fields: {', '.join(FIELDS)}.")
    if name in PLUGIN_PARAMS:
        return _pairs(name, value)
    if name == PLUGINS:
        return _triples(value)
    scalar, optional, is_tuple = field_type(name)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"config field '{name}' cannot be empty.")
    try:
        if is_tuple:
            items = value.strip("[]() ").split(",") if isinstance(value, str) else list(value)
            return tuple(coerce_value(scalar, v) for v in items)
        return coerce_value(scalar, value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"config field '{name}' expects {scalar.__name__}{'s' if is_tuple else ''}, "
            f"got {value!r}."
        ) from None


def _plain(name: str, value: Any) -> Any:
    """A plug-in hyperparameter's value as a file or the command line gives it: a number, a
    string, a boolean, or a list of them (kept as a tuple, so a config stays hashable)."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(name, v) for v in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigError(f"{name} must be a number, a string, true/false or a list of them, got {value!r}.")


def _literal(text: str) -> Any:
    """A table or list written as JSON or as Python writes it (a logged param read back)."""
    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text


def _pairs(name: str, value: Any) -> tuple[tuple[str, Any], ...]:
    """`{a = 1, b = 2}`, "a=1,b=2" or ((a, 1), (b, 2)), as sorted (name, value) pairs."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "[", "("):
        value = _literal(value.strip())
    if isinstance(value, str):
        items = [item for item in value.split(",") if item.strip()]
        if not all("=" in item for item in items):
            raise ConfigError(f"{name} expects name=value pairs separated by commas, e.g. samples=5,k=2; "
                              f"got {value!r}.")
        value = dict(item.split("=", 1) for item in items)
    try:
        pairs = dict(value) if not isinstance(value, dict) else value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} expects a table of name = value, got {value!r}.") from None
    return tuple(sorted((str(k).strip(), _plain(f"{name}.{k}", v)) for k, v in pairs.items()))


def _triples(value: Any) -> tuple[tuple[str, str, str], ...]:
    if isinstance(value, str):
        value = _literal(value.strip())
    try:
        return tuple(sorted((str(kind), str(name), str(ref)) for kind, name, ref in value))
    except (TypeError, ValueError):
        raise ConfigError(f"{PLUGINS} expects [[kind, name, reference], ...], got {value!r}.") from None


def coerce_value(scalar: type, value: Any) -> Any:
    """`value` as `scalar` (bool, int, float or str), from text or a number; ValueError if it is none."""
    if scalar is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if scalar is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    if scalar is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    return str(value)


def with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of `cfg` with the given fields replaced, each checked and coerced. A model,
    arch or dataset given as a reference (module:Class, path/file.py:Class, a file, a folder)
    goes by its name, with the reference added to `plugins`; `model_params.<name>` sets one
    of the model's own hyperparameters."""
    from aevae.plugins import is_reference, name_of

    fields, dotted = {}, {}
    for name, value in overrides.items():
        parsed = parse_value(name, value)
        (dotted if "." in name else fields)[name] = parsed
    mapped = {(kind, name): ref for kind, name, ref in fields.get(PLUGINS, cfg.plugins)}
    for kind in NAMED:
        if kind in fields and is_reference(fields[kind]):
            reference = fields[kind]
            fields[kind] = name_of(reference)
            mapped[(kind, fields[kind])] = reference
    for name, value in dotted.items():
        head, _, key = name.partition(".")
        current = dict(fields.get(head, getattr(cfg, head)))
        fields[head] = tuple(sorted({**current, key: value}.items()))
    fields[PLUGINS] = tuple(sorted((kind, name, ref) for (kind, name), ref in mapped.items()))
    return dataclasses.replace(cfg, **fields)


def field_value(cfg: TrainConfig, name: str) -> Any:
    """A config field's value, or a plug-in hyperparameter's (`model_params.samples`)."""
    head, dot, key = name.partition(".")
    return dict(getattr(cfg, head)).get(key) if dot else getattr(cfg, name)


def _json_ready(value: Any) -> Any:
    return [_json_ready(v) for v in value] if isinstance(value, (tuple, list)) else value


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain JSON-ready values (tuples become lists; a plug-in's hyperparameters a table)."""
    values = {k: _json_ready(v) for k, v in dataclasses.asdict(cfg).items()}
    for name in PLUGIN_PARAMS:
        values[name] = {key: _json_ready(value) for key, value in getattr(cfg, name)}
    return values


def params(cfg: TrainConfig) -> dict[str, Any]:
    """The config as flat run params: each plug-in hyperparameter is one param,
    `model_params.<name>`, so MLflow's UI shows and filters it like any other field."""
    values = {k: v for k, v in to_dict(cfg).items() if k not in PLUGIN_PARAMS}
    for name in PLUGIN_PARAMS:
        values.update({f"{name}.{key}": _json_ready(value) for key, value in getattr(cfg, name)})
    values[PLUGINS] = json.dumps(values[PLUGINS])
    return values


def config_hash(cfg: TrainConfig) -> str:
    """A short stable digest of every field, used to recognise a finished run of a config;
    with the digest of each code plug-in's source files, so changed plug-in code is another
    config. Fields at their empty default (no plug-in) leave the digest as it always was."""
    values = to_dict(cfg)
    # where a plug-in sits is no part of what trains: its name, and its code's digest below
    values[PLUGINS] = [[kind, name] for kind, name, _ in cfg.plugins]
    for name in (*PLUGIN_PARAMS, PLUGINS):
        if not values[name]:
            del values[name]
    for name in MEASURED:
        if values[name] == "auto":
            del values[name]
    code = plugin_code(cfg)
    if code:
        values["plugin_code"] = code
    text = json.dumps(values, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plugin_code(cfg: TrainConfig) -> str:
    """The digest of the code plug-ins' source files the config trains ('' for none)."""
    from aevae.plugins import code_digest

    found = [code_digest(ref) for kind, _, ref in cfg.plugins if kind in PLUGIN_PARAMS.values() and ":" in ref]
    return hashlib.sha256("/".join(found).encode()).hexdigest()[:12] if found else ""


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """A config from logged params or a JSON file (every key must be a field, or a plug-in
    hyperparameter `model_params.<name>`)."""
    return with_overrides(TrainConfig(), values)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check names against the registries (without loading a plug-in) and numbers against
    their ranges; return `cfg`. What a plug-in itself accepts is checked by aevae.resolve."""
    from aevae.plugins import entry_point_names, unknown

    mapped = {(kind, name) for kind, name, _ in cfg.plugins}
    for kind, name, registry in (
        ("model", cfg.model, MODEL_TITLES),
        ("arch", cfg.arch, ARCH_TITLES),
        ("dataset", cfg.dataset, DATASET_INFO),
    ):
        if name not in registry and (kind, name) not in mapped and name not in entry_point_names(kind):
            raise unknown(kind, name, registry)
    infinite = [f.name for f in dataclasses.fields(cfg)
                if isinstance(getattr(cfg, f.name), float) and not math.isfinite(getattr(cfg, f.name))]
    if infinite:
        raise ConfigError(f"{infinite[0]} must be a finite number, got {getattr(cfg, infinite[0])}.")
    checks = [
        (0 <= cfg.seed < 2**32, "seed must lie between 0 and 2**32 - 1"),
        (cfg.latent_dim is None or cfg.latent_dim >= 1, "latent_dim must be at least 1"),
        (cfg.hidden_dim >= 1, "hidden_dim must be at least 1"),
        (len(cfg.conv_channels) >= 1 and min(cfg.conv_channels) >= 1,
         "conv_channels must list at least one positive channel count"),
        (cfg.recon_loss in (None, "bce", "mse"), "recon_loss must be 'bce' or 'mse'"),
        (cfg.beta >= 0, "beta must be 0 or more"),
        (cfg.lr > 0, "lr must be positive"),
        (cfg.weight_decay >= 0, "weight_decay must be 0 or more"),
        (cfg.batch_size >= 1, "batch_size must be at least 1"),
        (cfg.epochs >= 1, "epochs must be at least 1"),
        (cfg.val_size >= 1, "val_size must be at least 1"),
        (cfg.subset >= 0, "subset must be 0 (all) or a positive count"),
        (0 < cfg.pixel_tol < 1, "pixel_tol must lie strictly between 0 and 1"),
        (cfg.precision in ("auto", "bf16", "fp32"), "precision must be 'auto', 'bf16' or 'fp32'"),
        (cfg.memory_format in ("auto", "channels_last", "contiguous"),
         "memory_format must be 'auto', 'channels_last' or 'contiguous'"),
        (cfg.device in ("auto", "cpu", "cuda"), "device must be 'auto', 'cpu' or 'cuda'"),
        (cfg.transposed_conv in ("auto", "native", "fold"), "transposed_conv must be 'auto', 'native' or 'fold'"),
        (cfg.compile in ("auto", "on", "off"), "compile must be 'auto', 'on' or 'off'"),
        (cfg.image_every is None or cfg.image_every >= 0,
         "image_every must be 0 (no frames), a positive count of epochs, or none (automatic)"),
        (cfg.tsne_points == 0 or cfg.tsne_points >= 10, "tsne_points must be 0 (off) or at least 10"),
        (cfg.frechet_samples == 0 or cfg.frechet_samples >= 2,
         "frechet_samples must be 0 (off) or at least 2"),
        (cfg.nll_samples >= 0, "nll_samples must be 0 (off) or a positive count"),
        (cfg.nll_images >= 1, "nll_images must be at least 1"),
        # a plug-in dataset's images are checked once they are read (aevae.resolve)
        (not cfg.binarize or cfg.dataset not in DATASET_INFO or DATASET_INFO[cfg.dataset].binary_ok,
         f"binarize applies to near-binary grey images (the MNIST family), not to '{cfg.dataset}'"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{message}.")
    return cfg


def auto_image_every(epochs: int) -> int:
    """The frame interval `image_every=None` takes: every epoch of a short run, about ten
    frames of a long one (epoch 1, every k-th after it, and the last)."""
    return max(1, round(epochs / 10))


def frame_epochs(epochs: int, image_every: int) -> list[int]:
    """The epochs that log frames: 1, 1 + k, 1 + 2k, ... and the last; none when k is 0.
    Starting at epoch 1 keeps the first, blurriest picture in every run's history."""
    if image_every <= 0:
        return []
    return sorted(set(range(1, epochs + 1, image_every)) | {epochs})
