"""The built-in AE and VAE, following the protocol of aevae.models.protocol. Each model owns
its loss, so the trainer never asks which it has.

Loss units: the reconstruction term is summed over pixel channels and the KL over latent
dimensions, both averaged over the batch, so every term is in nats (or squared error) per
image; total = recon + beta * KL.
"""

from __future__ import annotations

import torch
from torch import nn

from aevae.models.protocol import LossParts, ModelInputs, kl_per_dim, recon_per_image


class Autoencoder(nn.Module):
    """Deterministic autoencoder: x -> z -> x_hat, trained on the reconstruction term alone."""

    TITLE = "AE"
    CODE = "point"

    def __init__(self, inputs: ModelInputs):
        super().__init__()
        self.input_shape = tuple(inputs.shape)
        self.latent_dim = inputs.latent_dim
        self.recon_loss = inputs.recon_loss
        self.beta = inputs.beta
        self.encoder = inputs.arch.encoder(self._encoder_outputs())
        self.decoder = inputs.arch.decoder(inputs.latent_dim)

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

    TITLE = "VAE"
    CODE = "gaussian"

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
