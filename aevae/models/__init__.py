"""Model and architecture registries, and `build`, the one way to make a model."""

from __future__ import annotations

from torch import nn

from aevae.config import TrainConfig
from aevae.errors import unknown_name
from aevae.models.archs import ARCHS
from aevae.models.autoencoders import MODELS, Autoencoder, LossParts, VAE


def build(cfg: TrainConfig, shape: tuple[int, int, int]) -> nn.Module:
    """The model `cfg` names, sized for images of `shape` (cfg must be resolved)."""
    if cfg.model not in MODELS:
        raise unknown_name("model", cfg.model, MODELS)
    if cfg.arch not in ARCHS:
        raise unknown_name("arch", cfg.arch, ARCHS)
    return MODELS[cfg.model](cfg, shape)


__all__ = ["ARCHS", "MODELS", "Autoencoder", "VAE", "LossParts", "build"]
