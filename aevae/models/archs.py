"""Encoder/decoder bodies, one class per architecture; sizes follow the input shape.

An encoder maps `[B,C,H,W]` floats to `[B,out_features]`; a decoder maps `[B,latent]` to
`[B,C,H,W]` logits (the sigmoid is applied by the model where probabilities are needed).
"""

from __future__ import annotations

import math

from torch import nn

from aevae.config import TrainConfig
from aevae.errors import ConfigError

Shape = tuple[int, int, int]


class MLP:
    """Fully connected: flatten, one hidden layer of `hidden_dim` units with ReLU each way."""

    @staticmethod
    def encoder(cfg: TrainConfig, shape: Shape, out_features: int) -> nn.Module:
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(shape), cfg.hidden_dim),
            nn.ReLU(),
            nn.Linear(cfg.hidden_dim, out_features),
        )

    @staticmethod
    def decoder(cfg: TrainConfig, shape: Shape, latent_dim: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(latent_dim, cfg.hidden_dim),
            nn.ReLU(),
            nn.Linear(cfg.hidden_dim, math.prod(shape)),
            nn.Unflatten(1, shape),
        )


class Conv:
    """Stride-2 4x4 convolutions with batch norm and ReLU, halving the image per layer;
    the decoder mirrors them with transposed convolutions."""

    @staticmethod
    def _bottleneck(cfg: TrainConfig, shape: Shape) -> tuple[int, int, int]:
        layers = len(cfg.conv_channels)
        channels, height, width = shape
        if height % 2**layers or width % 2**layers:
            raise ConfigError(
                f"conv_channels has {layers} stride-2 layers, which needs image sides divisible "
                f"by {2**layers}, and {height}x{width} is not: use fewer layers."
            )
        return cfg.conv_channels[-1], height // 2**layers, width // 2**layers

    @staticmethod
    def encoder(cfg: TrainConfig, shape: Shape, out_features: int) -> nn.Module:
        layers, in_channels = [], shape[0]
        for channels in cfg.conv_channels:
            layers += [
                nn.Conv2d(in_channels, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            ]
            in_channels = channels
        layers += [nn.Flatten(), nn.Linear(math.prod(Conv._bottleneck(cfg, shape)), out_features)]
        return nn.Sequential(*layers)

    @staticmethod
    def decoder(cfg: TrainConfig, shape: Shape, latent_dim: int) -> nn.Module:
        bottleneck = Conv._bottleneck(cfg, shape)
        layers = [nn.Linear(latent_dim, math.prod(bottleneck)), nn.Unflatten(1, bottleneck)]
        channels = list(reversed(cfg.conv_channels))
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        layers.append(nn.ConvTranspose2d(channels[-1], shape[0], 4, stride=2, padding=1))
        return nn.Sequential(*layers)


ARCHS = {"mlp": MLP, "conv": Conv}
