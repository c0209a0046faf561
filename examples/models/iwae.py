"""The importance-weighted autoencoder (Burda, Grosse and Salakhutdinov, ICLR 2016) as an aevae
model plug-in: the VAE's encoder and decoder, trained on the k-sample importance-weighted
bound

    log p(x) >= E[ log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x) ],   z_i ~ q(z | x),

which is the VAE's ELBO for k = 1 and tightens as k grows. It imports only what aevae's model
protocol exposes (aevae.models.protocol), as a model of your own would.

    aevae train --model examples/models/iwae.py:IWAE --model-params samples=5

Its code is a Gaussian posterior, so aevae measures its KL, its ELBO (one sample, as for
the VAE) and, on binarized images, its importance-weighted NLL, which Burda et al. report
(benchmarks/references.toml). With recon_loss 'mse', -recon stands for log p(x | z), a
Gaussian decoder's log-likelihood up to a constant that cancels in the bound's weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aevae.models.protocol import LossParts, ModelInputs, kl_per_dim, param, recon_per_image


class IWAE(nn.Module):
    TITLE = "IWAE"
    CODE = "gaussian"

    @dataclass(frozen=True)
    class Params:
        samples: int = param(5, "Importance samples per image in the training bound (k); 1 trains the VAE's ELBO.")

        def __post_init__(self):
            if self.samples < 1:
                raise ValueError(f"samples must be at least 1, got {self.samples}")

    def __init__(self, inputs: ModelInputs):
        super().__init__()
        self.samples = inputs.params.samples
        self.latent_dim, self.recon_loss = inputs.latent_dim, inputs.recon_loss
        self.encoder = inputs.arch.encoder(2 * inputs.latent_dim)  # a mean and a log-variance per unit
        self.decoder = inputs.arch.decoder(inputs.latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction probabilities from the posterior mean (the input MLflow's model takes)."""
        return torch.sigmoid(self.decode(self.encode(x)[0]).float())

    def loss(self, x: torch.Tensor) -> LossParts:
        """total: minus the k-sample bound; recon and kl: the first sample's terms (the ELBO's)."""
        mean, logvar = self.encode(x)
        mean, logvar = mean.float(), logvar.float()
        k, batch = self.samples, len(x)
        z = mean + torch.randn((k, *mean.shape), device=mean.device) * (0.5 * logvar).exp()  # [k, B, D]
        logits = self.decode(z.flatten(0, 1)).float()
        recon = recon_per_image(logits, x.repeat(k, *([1] * (x.dim() - 1))), self.recon_loss).view(k, batch)
        # log p(z) - log q(z | x): the Gaussians' normalising constants cancel
        log_prior_over_posterior = (-0.5 * z.square() + 0.5 * ((z - mean) / (0.5 * logvar).exp()).square()
                                    + 0.5 * logvar).sum(-1)
        log_weights = -recon + log_prior_over_posterior
        bound = torch.logsumexp(log_weights, 0) - math.log(k)
        return LossParts(-bound.mean(), recon[0].mean(), kl_per_dim(mean, logvar).sum(1).mean())
