"""Figures every run logs: reconstructions, prior samples, the latent map and loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from aevae.analysis.codes import Codes, prior_codes
from aevae.config import TrainConfig
from aevae.data import ImageSet, Splits, eval_batches
from aevae.models import Traits
from aevae.numerics import Numerics
from aevae.plotting import grid_figure, latent_scatter, log_figure, plt, sns
from aevae.tracking import names

SAMPLE_SEED = 0
LATENT_MAP_POINTS = 2000  # test codes in figures/latent.png


@torch.no_grad()
def reconstruction_figure(model, images: ImageSet, binarize: bool, numerics: Numerics, columns: int = 8) -> plt.Figure:
    """Rows of test images, each followed by its reconstruction."""
    model.eval()
    x, _ = next(eval_batches(images, binarize, batch_size=4 * columns))
    columns = min(columns, len(x))
    x = x[: len(x) // columns * columns]
    with numerics.autocast():
        recon = model(x)
    pairs = torch.stack([x.reshape(-1, columns, *x.shape[1:]), recon.reshape(-1, columns, *x.shape[1:])], 1)
    return grid_figure(pairs.reshape(-1, *x.shape[1:]), columns, "test images (odd rows) and reconstructions")


@torch.no_grad()
def prior_samples_figure(model, numerics: Numerics, latent_dim: int, has_prior: bool, count: int = 64) -> plt.Figure:
    """Decoded draws from N(0, I) in the latent space (what a VAE's prior generates)."""
    model.eval()
    z = prior_codes(count, latent_dim, SAMPLE_SEED)
    with numerics.autocast():
        samples = torch.sigmoid(model.decode(z.to(numerics.device)).float())
    title = "decoded samples from N(0, I)" if has_prior else "decodes of N(0, I) draws (the model has no such prior)"
    return grid_figure(samples, 8, title)


def latent_figure(means: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> plt.Figure:
    """Scatter of the code means coloured by class: the two dimensions themselves when the
    latent is 2-d, else the first two principal components."""
    from sklearn.decomposition import PCA

    if means.shape[1] == 2:
        return latent_scatter(means, labels, classes, ("z[0]", "z[1]"), "latent means of test images")
    pca = PCA(n_components=2).fit(means)
    share = pca.explained_variance_ratio_
    return latent_scatter(pca.transform(means), labels, classes,
                          (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})"),
                          "latent means of test images")


def curves_figure(history: list[dict[str, float]]) -> plt.Figure:
    """Per-epoch train and validation curves of the loss, the KL and the validation MSE."""
    rows = []
    for epoch, row in enumerate(history, start=1):
        for panel, split, key in (("loss", "train", names.TRAIN_LOSS), ("loss", "val", names.VAL_LOSS),
                                  ("kl", "train", names.TRAIN_KL), ("kl", "val", names.VAL_KL),
                                  ("recon_mse", "val", names.VAL_RECON_MSE)):
            if key in row:  # a discrete code has no KL
                rows.append({"epoch": epoch, "metric": panel, "split": split, "value": row[key]})
    grid = sns.relplot(pd.DataFrame(rows), x="epoch", y="value", hue="split", col="metric",
                       kind="line", marker="o", height=3, aspect=1.1,
                       facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    return grid.figure


def log_run_artifacts(model, splits: Splits, history, tracker, cfg: TrainConfig, numerics: Numerics,
                      test_codes: Codes, traits: Traits) -> None:
    """Make and log every figure of a finished run, closing each after it is logged;
    `test_codes` are the test split's codes, encoded once for this and the analysis."""
    means = test_codes.means[:LATENT_MAP_POINTS].numpy()
    labels = test_codes.labels[:LATENT_MAP_POINTS].numpy()
    log_figure(tracker, "figures/reconstructions.png", reconstruction_figure(model, splits.test, cfg.binarize, numerics))
    log_figure(tracker, "figures/prior_samples.png",
               prior_samples_figure(model, numerics, cfg.latent_dim, traits.code == "gaussian"))
    log_figure(tracker, "figures/latent.png", latent_figure(means, labels, splits.spec.classes))
    log_figure(tracker, "figures/curves.png", curves_figure(history))


def log_trial_artifacts(model, images: ImageSet, history, tracker, cfg: TrainConfig, numerics: Numerics) -> None:
    """The small figures of a run without a test split (an Optuna trial): its curves and
    reconstructions of validation images."""
    log_figure(tracker, "figures/curves.png", curves_figure(history))
    log_figure(tracker, "figures/reconstructions.png", reconstruction_figure(model, images, cfg.binarize, numerics))
