"""Evaluation metrics of a model on one split.

Units:
- `recon_mse`: mean squared error per pixel channel, on the [0,1] scale, of the
  reconstruction decoded from the code's mean;
- `recon_bce`: Bernoulli negative log-likelihood of that reconstruction, nats per image;
- `pixel_acc`: share of pixel channels reconstructed within `pixel_tol` (on [0,1]);
- `recon_acc_1mse`: 100 * (1 - recon_mse), the "reconstruction accuracy" of the CIFAR-10
  lab write-up our tables compare with;
- `kl`: KL(q(z|x) || N(0, I)), nats per image (0 for the AE);
- `loss`: the training objective (recon + beta * KL, one posterior sample), per image;
- `elbo` (VAE only): -(recon + KL) with one posterior sample, nats per image for 'bce';
- `active_units`: latent dimensions whose mean varies over the split by more than 0.01
  (Burda et al., 2016).
"""

from __future__ import annotations

import torch

from aevae.data import ImageSet, eval_batches
from aevae.models.protocol import kl_per_dim, recon_per_image
from aevae.numerics import Numerics
from aevae.tracking import names

ACTIVE_UNIT_THRESHOLD = 0.01


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: ImageSet, numerics: Numerics, *, binarize: bool,
             pixel_tol: float, code: str = "gaussian") -> dict[str, float]:
    """Every metric above, averaged over `images` (sums stay on the device until the end)."""
    was_training = model.training
    model.eval()
    device = images.images.device
    sums = torch.zeros(6, dtype=torch.float64, device=device)
    mean_sum = mean_sq_sum = None
    variational = False
    for x, _ in eval_batches(images, binarize):
        with numerics.autocast():
            mean, logvar = model.encode(x)
            logits = model.decode(mean)
            # one encode per batch, not two, where the model takes its code back (the built-ins do)
            parts = model.loss_of_code(x, mean, logvar, logits) if hasattr(model, "loss_of_code") else model.loss(x)
            logits = logits.float()
        variational = logvar is not None
        probs = torch.sigmoid(logits)
        error = (probs - x).abs()
        kl = kl_per_dim(mean, logvar).sum(1) if variational else torch.zeros(len(x), device=device)
        sums += torch.stack([
            error.square().flatten(1).mean(1).sum(),
            recon_per_image(logits, x, "bce").sum(),
            (error < pixel_tol).float().flatten(1).mean(1).sum(),
            kl.sum(),
            parts.total * len(x),
            (parts.recon + parts.kl) * len(x),
        ]).double()
        mean64 = mean.double()
        mean_sum = mean64.sum(0) if mean_sum is None else mean_sum + mean64.sum(0)
        mean_sq_sum = mean64.square().sum(0) if mean_sq_sum is None else mean_sq_sum + mean64.square().sum(0)
    if was_training:
        model.train()
    n = len(images)
    recon_mse, recon_bce, pixel_acc, kl, loss, neg_elbo = (sums / n).tolist()
    variance = mean_sq_sum / n - (mean_sum / n).square()
    metrics = {
        names.LOSS: loss,
        names.RECON_MSE: recon_mse,
        names.RECON_BCE: recon_bce,
        names.KL: kl,
        names.PIXEL_ACC: pixel_acc,
        names.RECON_ACC: 100.0 * (1.0 - recon_mse),
        names.ACTIVE_UNITS: float((variance > ACTIVE_UNIT_THRESHOLD).sum().item()),
    }
    if variational:
        metrics[names.ELBO] = -neg_elbo
    if code == "discrete":  # no Gaussian posterior: no KL to measure (not_applicable says why)
        del metrics[names.KL]
    return metrics


def not_applicable(code: str, title: str, recon_loss: str) -> dict[str, str]:
    """The test metrics that do not apply to a model whose code is `code` (aevae.models.
    protocol.CODES), each with the sentence that says why: what a run tags as
    `not_applicable`, so tables show n/a with the reason instead of a blank."""
    reasons = {}
    if code == "discrete":
        why = f"the {title}'s code is discrete, not a Gaussian posterior"
        reasons = {key: why for key in (names.TEST_KL, names.TEST_ELBO, names.TEST_NLL, names.TEST_BPD)}
    elif code == "point":
        why = f"the {title}'s code is deterministic: it has no posterior for an ELBO or a likelihood bound"
        reasons = {key: why for key in (names.TEST_ELBO, names.TEST_NLL, names.TEST_BPD)}
    elif recon_loss != "bce":
        why = "a squared-error decoder is no distribution over the images, so it has no likelihood"
        reasons = {key: why for key in (names.TEST_NLL, names.TEST_BPD)}
    return reasons
