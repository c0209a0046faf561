"""The AE and the VAE. Each model owns its loss, so the trainer never asks which it has.

Loss units: the reconstruction term is summed over pixel channels and the KL over latent
dimensions, both averaged over the batch, so every term is in nats (or squared error) per
image; total = recon + beta * KL.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from aevae.config import TrainConfig
from aevae.models.archs import ARCHS


class LossParts(NamedTuple):
    """Batch means per image: the optimised total, the reconstruction term and the KL."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def recon_per_image(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Reconstruction term per image, `[B]`: Bernoulli NLL in nats ('bce') or the sum of
    squared errors on the [0,1] scale ('mse')."""
    logits = logits.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - target).square()
    return per_pixel.flatten(1).sum(1)


def kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per image and latent dimension, `[B,D]`, nats."""
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)


class Autoencoder(nn.Module):
    """Deterministic autoencoder: x -> z -> x_hat, trained on the reconstruction term alone."""

    def __init__(self, cfg: TrainConfig, shape: tuple[int, int, int]):
        super().__init__()
        arch = ARCHS[cfg.arch]
        self.input_shape = tuple(shape)
        self.latent_dim = cfg.latent_dim
        self.recon_loss = cfg.recon_loss
        self.beta = cfg.beta
        self.encoder = arch.encoder(cfg, shape, self._encoder_outputs())
        self.decoder = arch.decoder(cfg, shape, cfg.latent_dim)

    def _encoder_outputs(self) -> int:
        return self.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The code's mean and log-variance (None for a deterministic code)."""
        return self.encoder(x), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the reconstruction, `[B,C,H,W]`."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction probabilities on [0,1] from the code's mean (no sampling)."""
        return torch.sigmoid(self.decode(self.encode(x)[0]).float())

    def loss(self, x: torch.Tensor) -> LossParts:
        return self.loss_of_code(x, *self.encode(x))

    def loss_of_code(self, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | None,
                     mean_logits: torch.Tensor | None = None) -> LossParts:
        """The loss of `x` given its encoding; `mean_logits`, the decode of `mean` when the
        caller has it (evaluation), saves the AE its decode."""
        logits = self.decode(mean) if mean_logits is None else mean_logits
        recon = recon_per_image(logits, x, self.recon_loss).mean()
        return LossParts(recon, recon, torch.zeros((), device=x.device))


class VAE(Autoencoder):
    """Gaussian-posterior VAE with a N(0, I) prior, trained on recon + beta * KL."""

    def _encoder_outputs(self) -> int:
        return 2 * self.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar

    def loss_of_code(self, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                     mean_logits: torch.Tensor | None = None) -> LossParts:
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        recon = recon_per_image(self.decode(z), x, self.recon_loss).mean()
        kl = kl_per_dim(mean, logvar).sum(1).mean()
        return LossParts(recon + self.beta * kl, recon, kl)


MODELS = {"ae": Autoencoder, "vae": VAE}
