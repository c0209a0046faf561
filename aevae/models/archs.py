"""The built-in encoder/decoder bodies, one class per architecture, following the protocol
of aevae.models.protocol; sizes follow the input shape.

An encoder maps `[B,C,H,W]` floats to `[B,out_features]`; a decoder maps `[B,latent]` to
`[B,C,H,W]` logits (the sigmoid is applied by the model where probabilities are needed).
"""

from __future__ import annotations

import math

from torch import nn

from aevae.errors import ConfigError
from aevae.models.protocol import ArchInputs


class MLP:
    """Fully connected: flatten, one hidden layer of `hidden_dim` units with ReLU each way."""

    TITLE = "MLP"

    def __init__(self, inputs: ArchInputs):
        self.shape, self.hidden = inputs.shape, inputs.config.hidden_dim

    def encoder(self, out_features: int) -> nn.Module:
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.shape), self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, out_features),
        )

    def decoder(self, latent_dim: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(latent_dim, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, math.prod(self.shape)),
            nn.Unflatten(1, self.shape),
        )


class Conv:
    """Stride-2 4x4 convolutions with batch norm and ReLU, halving the image per layer;
    the decoder mirrors them with transposed convolutions."""

    TITLE = "conv"

    def __init__(self, inputs: ArchInputs):
        self.shape, self.channels = inputs.shape, inputs.config.conv_channels
        layers = len(self.channels)
        _, height, width = self.shape
        if height % 2**layers or width % 2**layers:
            raise ConfigError(
                f"conv_channels has {layers} stride-2 layers, which needs image sides divisible "
                f"by {2**layers}, and {height}x{width} is not: use fewer layers."
            )
        self.bottleneck = (self.channels[-1], height // 2**layers, width // 2**layers)

    def encoder(self, out_features: int) -> nn.Module:
        layers, in_channels = [], self.shape[0]
        for channels in self.channels:
            layers += [
                nn.Conv2d(in_channels, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            ]
            in_channels = channels
        layers += [nn.Flatten(), nn.Linear(math.prod(self.bottleneck), out_features)]
        return nn.Sequential(*layers)

    def decoder(self, latent_dim: int) -> nn.Module:
        layers = [nn.Linear(latent_dim, math.prod(self.bottleneck)), nn.Unflatten(1, self.bottleneck)]
        channels = list(reversed(self.channels))
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        layers.append(nn.ConvTranspose2d(channels[-1], self.shape[0], 4, stride=2, padding=1))
        return nn.Sequential(*layers)


ARCHS = {"mlp": MLP, "conv": Conv}
