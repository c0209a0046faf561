"""Importance-weighted estimate of the VAE's test negative log-likelihood (Burda et al., 2016).

    log p(x) >= log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x)

The bound tightens as k grows, so the estimate is an upper bound on the true NLL and is
quoted with its k. Units: `nll` in nats per image, `bpd` = nll / (pixel channels * ln 2).

It is a likelihood only where the decoder's Bernoulli is a distribution over the data:
binarized images (`binarize=true`, MNIST family) with `recon_loss='bce'`. That setting,
with k = 5000 on all 10,000 test images, is how published binarized-MNIST NLLs (for example
the IWAE paper's ~85 nats) are measured; smaller k and fewer images give a looser, noisier
bound. On grey-level images the same number is a cross-entropy, not a likelihood, and the
run's `nll_comparable` tag says "false". A squared-error decoder has no likelihood at all, so
no estimate is made for `recon_loss='mse'`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aevae.data import ImageSet, eval_batches

DECODES_PER_CHUNK = 10_000  # images decoded at once: bounds memory at samples x batch


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mean).square() / logvar.exp()).sum(-1)


@torch.no_grad()
def iwae_nll(model, images: ImageSet, *, samples: int, binarize: bool, seed: int,
             limit: int = 0) -> torch.Tensor:
    """-log p(x) per image `[N]` (nats) for the first `limit` images (0 = all), with k =
    `samples` importance samples each; fp32 throughout, since the weights span many nats."""
    model.eval()
    device = images.images.device
    generator = torch.Generator(device).manual_seed(seed)
    batch = max(1, DECODES_PER_CHUNK // samples)
    # One tensor for every estimate, allocated up front: a small tensor kept from each chunk
    # would sit between the chunks' large blocks in the C heap and keep it from being reused,
    # by about a megabyte per image (the literature grid's 10,000-image estimate peaked at 21 GB).
    total = min(limit, len(images)) if limit else len(images)
    estimates, seen = torch.empty(total, device=device), 0
    for x, _ in eval_batches(images, binarize, batch_size=batch):
        if limit:
            x = x[: limit - seen]
        mean, logvar = (t.float() for t in model.encode(x))
        noise = torch.randn((samples, *mean.shape), generator=generator, device=device)
        z = mean + noise * (0.5 * logvar).exp()  # [k, B, D]
        logits = model.decode(z.flatten(0, 1)).float().unflatten(0, (samples, len(x)))
        log_px_z = -F.binary_cross_entropy_with_logits(
            logits, x.expand(samples, *x.shape), reduction="none").flatten(2).sum(-1)
        log_weights = log_px_z + log_normal(z, torch.zeros_like(z), torch.zeros_like(z)) \
            - log_normal(z, mean, logvar)
        estimates[seen:seen + len(x)] = math.log(samples) - torch.logsumexp(log_weights, 0)
        seen += len(x)
        if seen >= total:
            break
    return estimates.cpu()


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """Nats per image to bits per pixel channel."""
    return nll_nats / (dims * math.log(2))
