"""The vector-quantized VAE (van den Oord, Vinyals and Kavukcuoglu, NeurIPS 2017) as an aevae
model plug-in: the encoder's output is replaced by its nearest vector of a learned codebook,
so the code is discrete and there is no KL term (a test that aevae's model protocol is not a
VAE in disguise). It imports only what the protocol exposes (aevae.models.protocol).

    aevae train --model examples/models/vqvae.py:VQVAE --model-params codes=32

Loss (their eq. 3): recon + ||sg[z_e] - e||^2 + commitment * ||z_e - sg[e]||^2, the
reconstruction's gradient passed straight through the quantization to the encoder. The
codebook and commitment terms are its third loss part; aevae reports no KL, ELBO or NLL for
it and says why (its CODE is "discrete").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aevae.models.protocol import LossParts, ModelInputs, param, recon_per_image


class VQVAE(nn.Module):
    TITLE = "VQ-VAE"
    CODE = "discrete"

    @dataclass(frozen=True)
    class Params:
        codes: int = param(64, "Vectors in the codebook: the values a code can take.")
        commitment: float = param(0.25, "Weight of the commitment term (0.25 in the paper).")

        def __post_init__(self):
            if self.codes < 2 or self.commitment < 0:
                raise ValueError(f"codes must be at least 2 and commitment 0 or more, got {self.codes}, "
                                 f"{self.commitment}")

    def __init__(self, inputs: ModelInputs):
        super().__init__()
        self.latent_dim, self.recon_loss = inputs.latent_dim, inputs.recon_loss
        self.commitment = inputs.params.commitment
        self.encoder = inputs.arch.encoder(inputs.latent_dim)
        self.decoder = inputs.arch.decoder(inputs.latent_dim)
        self.codebook = nn.Embedding(inputs.params.codes, inputs.latent_dim)
        nn.init.uniform_(self.codebook.weight, -1 / inputs.params.codes, 1 / inputs.params.codes)

    def quantize(self, z_e: torch.Tensor) -> torch.Tensor:
        """Each row's nearest codebook vector."""
        nearest = torch.cdist(z_e.float(), self.codebook.weight.float()).argmin(1)
        return self.codebook(nearest)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.quantize(self.encoder(x)), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.encode(x)[0]).float())

    def loss(self, x: torch.Tensor) -> LossParts:
        z_e = self.encoder(x).float()
        z_q = self.quantize(z_e)
        codebook = (z_q - z_e.detach()).square().sum(1).mean()
        commit = (z_e - z_q.detach()).square().sum(1).mean()
        straight_through = z_e + (z_q - z_e).detach()
        recon = recon_per_image(self.decode(straight_through), x, self.recon_loss).mean()
        regulariser = codebook + self.commitment * commit
        return LossParts(recon + regulariser, recon, regulariser)
