"""The model and architecture registries, and the one way to make a model: `build`. A plug-in
enters the same registries through `plugin_class` (aevae.plugins.find), the built-ins too,
and `inspect` holds every model to its protocol (aevae.models.protocol) on one batch of the
real shape before it trains, so a plug-in that does not follow it is one sentence, not a
traceback in the middle of a grid.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from aevae.config import TrainConfig
from aevae.models.archs import ARCHS
from aevae.models.autoencoders import MODELS, Autoencoder, VAE
from aevae.models.protocol import CODES, ArchInputs, LossParts, ModelInputs
from aevae.plugins import PluginError, find

REGISTRIES = {"model": MODELS, "arch": ARCHS}
PROTOCOL = {"model": ("encode", "decode", "loss"), "arch": ("encoder", "decoder")}
README = "README: Bring your own model"


def plugin_class(kind: str, name: str, mapped) -> type:
    """The class of the model or architecture `name` (a built-in, a name `mapped` gives a
    reference, or an installed package's entry point), held to its protocol's methods."""
    found = find(kind, name, mapped, REGISTRIES[kind])
    if not isinstance(found, type):
        raise PluginError(f"the {kind} '{name}' is a {type(found).__name__}, not a class: name the class itself "
                          f"({README}).")
    missing = [method for method in PROTOCOL[kind] if not callable(getattr(found, method, None))]
    if missing:
        raise PluginError(f"the {kind} '{name}' ({found.__name__}) lacks {', '.join(missing)}, which every "
                          f"{kind} has: add {'it' if len(missing) == 1 else 'them'} ({README}).")
    code = getattr(found, "CODE", None)
    if kind == "model" and code is not None and code not in CODES:
        raise PluginError(f"the model '{name}' says CODE = {code!r}; a model's code is one of "
                          f"{', '.join(map(repr, CODES))} ({README}).")
    return found


def _params(cls: type, pairs) -> object:
    declaration = getattr(cls, "Params", None)
    return declaration(**dict(pairs)) if dataclasses.is_dataclass(declaration) else None


def build(cfg: TrainConfig, shape: tuple[int, int, int]) -> nn.Module:
    """The model `cfg` names, on its architecture, sized for images of `shape` (cfg must be
    resolved: aevae.resolve)."""
    arch_class = plugin_class("arch", cfg.arch, cfg.plugins)
    model_class = plugin_class("model", cfg.model, cfg.plugins)
    arch = arch_class(ArchInputs(tuple(shape), cfg, _params(arch_class, cfg.arch_params)))
    return model_class(ModelInputs(tuple(shape), cfg, arch, _params(model_class, cfg.model_params)))


@dataclass(frozen=True)
class Traits:
    """What a run records of its model and architecture: their titles and what the model's
    code is (aevae.models.protocol.CODES)."""

    title: str
    arch_title: str
    code: str


def check(cfg: TrainConfig, shape: tuple[int, int, int]) -> Traits:
    """Build the model the resolved `cfg` names on the CPU and hold it to the protocol
    (`inspect_model`): what a command does for each plug-in model before anything trains."""
    return inspect_model(build(cfg, shape), cfg, shape, torch.device("cpu"))


@torch.no_grad()
def inspect_model(model: nn.Module, cfg: TrainConfig, shape: tuple[int, int, int], device: torch.device) -> Traits:
    """Hold `model` (built from the resolved `cfg`) to the protocol on two random images of
    `shape` on `device`: the code is `[2, latent_dim]` with a log-variance of its shape or
    None, the decode is an image batch, and the loss three finite per-image means. Each
    failure is one sentence naming what to fix; returns the model's traits. The random
    numbers drawn here (the images, a VAE's sampling noise) leave the run's own untouched."""
    name = cfg.model
    arch_class = plugin_class("arch", cfg.arch, cfg.plugins)
    declared = getattr(type(model), "CODE", None)
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        x = torch.rand(2, *shape, device=device)
        logvar = _check_calls(model, name, cfg, x)
    model.train(was_training)
    code_kind = declared or ("gaussian" if logvar is not None else "point")
    if code_kind == "gaussian" and logvar is None:
        raise _broken(name, "encode", "returns no log-variance, yet the model says CODE = 'gaussian'")
    return Traits(getattr(type(model), "TITLE", type(model).__name__),
                  getattr(arch_class, "TITLE", arch_class.__name__), code_kind)


def _check_calls(model: nn.Module, name: str, cfg: TrainConfig, x: torch.Tensor) -> torch.Tensor | None:
    """encode, decode and loss on `x`, each held to the protocol; returns the log-variance."""
    encoded = _call(name, "encode", model.encode, x)
    if not (isinstance(encoded, tuple) and len(encoded) == 2 and isinstance(encoded[0], torch.Tensor)):
        raise _broken(name, "encode", f"returns {_what(encoded)}, not (code, log-variance or None)")
    code, logvar = encoded
    if tuple(code.shape) != (2, cfg.latent_dim):
        raise _broken(name, "encode", f"gives a code of shape {list(code.shape)} for 2 images; it must be "
                                      f"[2, latent_dim] = [2, {cfg.latent_dim}]")
    if logvar is not None and (not isinstance(logvar, torch.Tensor) or logvar.shape != code.shape):
        raise _broken(name, "encode", "gives a log-variance of another shape than its code")
    decoded = _call(name, "decode", model.decode, code)
    if not isinstance(decoded, torch.Tensor) or tuple(decoded.shape) != tuple(x.shape):
        raise _broken(name, "decode", f"turns the codes of 2 images into {_what(decoded)}, not logits of "
                                      f"shape {list(x.shape)}")
    parts = _call(name, "loss", model.loss, x)
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(
            isinstance(p, torch.Tensor) and p.numel() == 1 for p in parts)):
        raise _broken(name, "loss", f"returns {_what(parts)}, not LossParts(total, recon, kl) of three "
                                    f"per-image means (scalar tensors)")
    if not all(math.isfinite(float(p)) for p in parts):
        raise _broken(name, "loss", f"gives {[round(float(p), 4) for p in parts]} on random images, not "
                                    f"three finite numbers")
    return logvar


def _call(name: str, method: str, function, *args):
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - the plug-in's own code: which method, and why, in one line
        text = (str(exc).strip().splitlines() or [""])[0][:200]
        raise _broken(name, method, f"raises {type(exc).__name__}{': ' + text if text else ''}") from None


def _broken(name: str, method: str, what: str) -> PluginError:
    return PluginError(f"the model '{name}' does not follow the protocol: its {method} {what} ({README}).")


def _what(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"a {type(value).__name__}"


__all__ = ["ARCHS", "MODELS", "Autoencoder", "VAE", "LossParts", "Traits", "build", "check", "inspect_model",
           "plugin_class"]
