"""The codes a trained model gives a split, the Gaussians its samples are drawn from, and
decoding codes back into images.

Everything here returns CPU tensors: the analysis hands them to scikit-learn, scipy and
matplotlib, and the sets are small (at most a few tens of thousands of codes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aevae.data import ImageSet, eval_batches
from aevae.numerics import Numerics

DECODE_BATCH = 1000
# Keeps the Cholesky factor of a fitted covariance defined when a code dimension is dead.
COVARIANCE_JITTER = 1e-6


@dataclass(frozen=True)
class Codes:
    """Code means `[N,D]` (float32), log-variances `[N,D]` (None for the AE) and labels `[N]`."""

    means: torch.Tensor
    logvars: torch.Tensor | None
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.means.shape[0]


@torch.no_grad()
def encode(model, images: ImageSet, binarize: bool, numerics: Numerics, limit: int = 0) -> Codes:
    """The codes of the first `limit` images of `images` (0 = all), in order; binarized
    evaluation images use the same fixed draw as the metrics."""
    model.eval()
    means, logvars, labels, seen = [], [], [], 0
    for x, y in eval_batches(images, binarize):
        with numerics.autocast():
            mean, logvar = model.encode(x)
        means.append(mean.float().cpu())
        if logvar is not None:
            logvars.append(logvar.float().cpu())
        labels.append(y.cpu())
        seen += len(x)
        if limit and seen >= limit:
            break
    cap = slice(None, limit or None)
    return Codes(torch.cat(means)[cap], torch.cat(logvars)[cap] if logvars else None,
                 torch.cat(labels)[cap])


def prior_codes(count: int, dim: int, seed: int) -> torch.Tensor:
    """`count` draws from the prior N(0, I), `[count, dim]`."""
    return torch.randn(count, dim, generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class Gaussian:
    """A full-covariance Gaussian fitted to codes (float64)."""

    mean: torch.Tensor
    covariance: torch.Tensor

    @classmethod
    def standard(cls, dim: int) -> "Gaussian":
        """The prior N(0, I)."""
        return cls(torch.zeros(dim, dtype=torch.float64), torch.eye(dim, dtype=torch.float64))

    @classmethod
    def fit(cls, means: torch.Tensor) -> "Gaussian":
        data = means.double()
        dim = data.shape[1]
        return cls(data.mean(0), torch.cov(data.T).reshape(dim, dim))

    def sample(self, count: int, seed: int) -> torch.Tensor:
        """`count` draws, `[count, D]` float32, from a seeded generator."""
        dim = self.mean.shape[0]
        scale = torch.linalg.cholesky(self.covariance + COVARIANCE_JITTER * torch.eye(dim, dtype=torch.float64))
        noise = torch.randn(count, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        return (self.mean + noise @ scale.T).float()

    def quantiles(self, probabilities: torch.Tensor, dim: int) -> torch.Tensor:
        """Inverse CDF of the marginal of dimension `dim` at `probabilities`."""
        std = self.covariance[dim, dim].clamp_min(COVARIANCE_JITTER).sqrt()
        return (self.mean[dim] + std * torch.special.ndtri(probabilities.double())).float()


@torch.no_grad()
def decode(model, z: torch.Tensor, numerics: Numerics) -> torch.Tensor:
    """Decoded images on [0,1] (the decoder's means), `[N,C,H,W]` float32 on the CPU."""
    model.eval()
    images = []
    for start in range(0, len(z), DECODE_BATCH):
        with numerics.autocast():
            logits = model.decode(z[start:start + DECODE_BATCH].to(numerics.device))
        images.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(images)


def interpolation_codes(codes: Codes, pairs: int, steps: int) -> torch.Tensor:
    """Codes on straight lines between `pairs` pairs of test codes (the first 2*pairs codes,
    paired in order), `[pairs*steps, D]`, each row from one endpoint to the other."""
    pairs = min(pairs, len(codes) // 2)
    start, end = codes.means[0:2 * pairs:2], codes.means[1:2 * pairs:2]
    weights = torch.linspace(0, 1, steps)[None, :, None]
    return (start[:, None] * (1 - weights) + end[:, None] * weights).reshape(-1, codes.means.shape[1])
