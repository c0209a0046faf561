"""A small residual convolutional architecture as an aevae architecture plug-in: each stage a
residual block (two 3x3 convolutions with batch norm, added to its input) and a stride-2
convolution halving the image; the decoder mirrors it with stride-2 transposed convolutions.
Any model (the built-in AE and VAE, or a plug-in model) builds its encoder and decoder from
it. It imports only what aevae's protocol exposes (aevae.models.protocol).

    aevae train --model vae --arch examples/archs/resnet.py:ResNet --arch-params channels=16
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aevae.models.protocol import ArchInputs, param


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class ResNet:
    TITLE = "residual conv"

    @dataclass(frozen=True)
    class Params:
        channels: int = param(32, "Channels of the first stage; each later stage doubles them.")
        stages: int = param(2, "Stride-2 stages, each halving the image (its sides must divide by 2**stages).")

    def __init__(self, inputs: ArchInputs):
        self.shape, params = inputs.shape, inputs.params
        self.widths = [params.channels * 2**i for i in range(params.stages)]
        _, height, width = self.shape
        if height % 2**params.stages or width % 2**params.stages:
            raise ValueError(f"{params.stages} stride-2 stages need image sides divisible by "
                             f"{2**params.stages}, and {height}x{width} is not: use fewer stages")
        self.bottleneck = (self.widths[-1], height // 2**params.stages, width // 2**params.stages)

    def encoder(self, out_features: int) -> nn.Module:
        layers, channels = [nn.Conv2d(self.shape[0], self.widths[0], 3, padding=1)], self.widths[0]
        for width in self.widths:
            layers += [Residual(channels), nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.ReLU()]
            channels = width
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(math.prod(self.bottleneck), out_features))

    def decoder(self, latent_dim: int) -> nn.Module:
        layers = [nn.Linear(latent_dim, math.prod(self.bottleneck)), nn.Unflatten(1, self.bottleneck)]
        widths = list(reversed(self.widths))
        for width, narrower in zip(widths, widths[1:] + [widths[-1]]):
            layers += [Residual(width), nn.ConvTranspose2d(width, narrower, 4, stride=2, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.Conv2d(widths[-1], self.shape[0], 3, padding=1))
