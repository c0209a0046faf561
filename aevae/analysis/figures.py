"""Figures of the latent space: the t-SNE map, the decoded manifold of a 2-d latent,
interpolations, sample grids and the per-dimension bars (KL and variance of the code)."""

from __future__ import annotations

import numpy as np
import torch

from aevae.analysis.codes import Gaussian, decode
from aevae.metrics import ACTIVE_UNIT_THRESHOLD
from aevae.numerics import Numerics
from aevae.plotting import grid_figure, latent_scatter, plt

MANIFOLD_SIDE = 15
# The manifold grid spans these quantiles of each marginal, as in Kingma & Welling's figure.
MANIFOLD_QUANTILES = (0.05, 0.95)
TSNE_PERPLEXITY = 30.0
# Half of scikit-learn's default iterations: a map of a few hundred codes has settled by
# then, and it halves the cost of the most expensive figure.
TSNE_ITERATIONS = 500


def tsne_figure(means: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], seed: int) -> plt.Figure:
    """t-SNE of code means coloured by class; seeded, so a run's map is reproducible."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    # Perplexity must stay below the point count; tiny smoke runs have few points.
    perplexity = min(TSNE_PERPLEXITY, (len(means) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=TSNE_ITERATIONS,
                random_state=seed)
    # One thread: as fast as two for a few hundred points on an idle CPU, and on a shared one
    # the OpenMP threads waiting for each other cost over ten times the work (measured).
    with threadpool_limits(limits=1):
        points = tsne.fit_transform(means.double().numpy())
    return latent_scatter(points, labels.numpy(), classes, ("t-SNE 1", "t-SNE 2"),
                          f"t-SNE of the latent means of {len(means)} test images")


def manifold_figure(model, source: Gaussian, numerics: Numerics, side: int = MANIFOLD_SIDE) -> plt.Figure:
    """For a 2-d latent: a side x side grid of codes at evenly spaced quantiles of `source`
    (the distribution samples come from), decoded; z[0] grows rightwards, z[1] upwards."""
    levels = torch.linspace(*MANIFOLD_QUANTILES, side)
    z0, z1 = source.quantiles(levels, 0), source.quantiles(levels, 1).flip(0)
    rows, cols = torch.meshgrid(z1, z0, indexing="ij")
    z = torch.stack([cols.reshape(-1), rows.reshape(-1)], 1)
    images = decode(model, z, numerics)
    return grid_figure(images, side, "decoded latent grid (z[0] rightwards, z[1] upwards)")


def interpolation_figure(images: torch.Tensor, steps: int) -> plt.Figure:
    """One row per pair of test codes: decoded images along the line between them."""
    return grid_figure(images, steps, "decoded straight-line interpolations between test codes")


def latent_dims_figure(variance: np.ndarray, kl: np.ndarray | None) -> plt.Figure:
    """Per latent dimension, sorted: the variance of the code mean over the test set (a unit
    is active above the threshold line) and, for the VAE, the mean KL in nats."""
    panels = [("variance of the code mean", variance)] + ([("KL per image (nats)", kl)] if kl is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels):
        order = np.argsort(values)[::-1]
        # A dead unit's variance can be exactly 0, which a log axis cannot draw.
        ax.bar(np.arange(len(values)), np.maximum(values[order], 1e-8), color="tab:blue")
        ax.set_xticks(np.arange(len(values)), [str(i) for i in order], fontsize=6)
        ax.set_xlabel("latent dimension (sorted)")
        ax.set_title(title, fontsize=9)
    variance_ax = axes[0][0]
    variance_ax.set_yscale("log")
    variance_ax.axhline(ACTIVE_UNIT_THRESHOLD, color="tab:red", linestyle="--", linewidth=1,
                        label=f"active above {ACTIVE_UNIT_THRESHOLD}")
    variance_ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
