"""What a model or an architecture of aevae is: the protocol the built-in AE, VAE, MLP and
conv nets follow, and a plug-in of yours too (README: Bring your own model).

A model is an `nn.Module` class built as `Model(inputs: ModelInputs)`, with
- `encode(x)`: `x` `[B,C,H,W]` on [0,1] -> `(code [B,D], logvar [B,D] or None)`: the code
  (a Gaussian posterior's mean, with its log-variance; a deterministic or discrete code,
  with None);
- `decode(z)`: `[B,D]` -> logits `[B,C,H,W]` (the sigmoid is applied where probabilities
  are needed);
- `loss(x)` -> `LossParts(total, recon, kl)`: batch means per image, `total` the objective
  the optimiser minimises (use `recon_per_image` for `recon`, so its units are aevae's);
and, optionally, the class attributes
- `TITLE`: what tables call it (default: the class's name);
- `CODE`: "gaussian" (encode's code is a diagonal Gaussian posterior and the prior is N(0,
  I): KL, ELBO and the importance-weighted NLL are measured), "point" (a deterministic code:
  no KL term, KL reported as 0, as the AE's) or "discrete" (a codebook: KL, ELBO and NLL do
  not apply, and the report says so); default: "gaussian" when encode returns a
  log-variance, else "point";
- `Params`: a dataclass of the model's own hyperparameters, each a field with a default and
  a one-line doc (`param(default, "what it is")`); grids, studies and `aevae train` set them
  as `model_params.<name>`, and the instance reaches the model as `inputs.params`.

An architecture is a class built as `Arch(inputs: ArchInputs)` with `encoder(out_features)`
(an `nn.Module` from `[B,C,H,W]` to `[B,out_features]`) and `decoder(latent_dim)` (from
`[B,latent_dim]` to logits `[B,C,H,W]`), and optionally `TITLE` and `Params` (set as
`arch_params.<name>`). A model builds its bodies from `inputs.arch`, so any model runs on
any architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from aevae.config import TrainConfig

CODES = ("gaussian", "point", "discrete")


class LossParts(NamedTuple):
    """Batch means per image: the optimised total, the reconstruction term and the KL (or the
    model's other regulariser; a zero tensor where it has none)."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def param(default: Any, help: str) -> Any:
    """A hyperparameter of a plug-in's `Params`: its default and its one-line doc."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ArchInputs:
    """What an architecture is built from: the image shape `[C,H,W]`, the run's config (the
    built-ins read `hidden_dim` and `conv_channels` there) and its own `Params`."""

    shape: tuple[int, int, int]
    config: TrainConfig
    params: Any = None


@dataclass(frozen=True)
class ModelInputs:
    """What a model is built from: the image shape, the run's config, its own `Params`, and
    its architecture, whose `encoder(out_features)` and `decoder(latent_dim)` make bodies."""

    shape: tuple[int, int, int]
    config: TrainConfig
    arch: Any
    params: Any = None

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def recon_loss(self) -> str:
        """'bce' (Bernoulli, nats per image) or 'mse' (squared error summed over pixels)."""
        return self.config.recon_loss

    @property
    def beta(self) -> float:
        return self.config.beta


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


__all__ = ["CODES", "ArchInputs", "LossParts", "ModelInputs", "kl_per_dim", "param", "recon_per_image"]
