"""Figures every run logs: reconstructions, prior samples, the latent map and loss curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from aevae.analysis.codes import Codes  # noqa: E402
from aevae.config import TrainConfig  # noqa: E402
from aevae.data import ImageSet, Splits  # noqa: E402
from aevae.training.evaluate import eval_batches  # noqa: E402

SAMPLE_SEED = 0
LATENT_POINTS = 2000  # test codes in the latent map


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """Tile `[N,C,H,W]` images on [0,1] into one `[rows*H, columns*W, C]` array."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    padded = torch.ones(rows * columns, c, h, w)
    padded[:n] = images.detach().float().cpu()
    tiles = padded.reshape(rows, columns, c, h, w).permute(0, 3, 1, 4, 2)
    return tiles.reshape(rows * h, columns * w, c).numpy()


def grid_figure(images: torch.Tensor, columns: int, title: str) -> plt.Figure:
    """Images `[N,C,H,W]` on [0,1] tiled `columns` wide, with a title."""
    grid = image_grid(images, columns)
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(width / 40 + 0.5, height / 40 + 0.8))
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


@torch.no_grad()
def reconstruction_figure(model, images: ImageSet, binarize: bool, autocast, columns: int = 8) -> plt.Figure:
    """Rows of test images, each followed by its reconstruction."""
    model.eval()
    x, _ = next(eval_batches(images, binarize, batch_size=4 * columns))
    columns = min(columns, len(x))
    x = x[: len(x) // columns * columns]
    with autocast:
        recon = model(x)
    pairs = torch.stack([x.reshape(-1, columns, *x.shape[1:]), recon.reshape(-1, columns, *x.shape[1:])], 1)
    return grid_figure(pairs.reshape(-1, *x.shape[1:]), columns, "test images (odd rows) and reconstructions")


@torch.no_grad()
def prior_samples_figure(model, device: torch.device, autocast, count: int = 64) -> plt.Figure:
    """Decoded draws from N(0, I) in the latent space (what the VAE's prior generates)."""
    model.eval()
    z = torch.randn(count, model.latent_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    with autocast:
        samples = torch.sigmoid(model.decode(z.to(device)).float())
    return grid_figure(samples, 8, "decoded samples from N(0, I)")


def latent_figure(means: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> plt.Figure:
    """Scatter of the code means coloured by class: the two dimensions themselves when the
    latent is 2-d, else the first two principal components."""
    from sklearn.decomposition import PCA

    if means.shape[1] == 2:
        points, axes = means, ("z[0]", "z[1]")
    else:
        pca = PCA(n_components=2).fit(means)
        points = pca.transform(means)
        share = pca.explained_variance_ratio_
        axes = (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})")
    frame = pd.DataFrame({axes[0]: points[:, 0], axes[1]: points[:, 1],
                          "class": [classes[i] for i in labels]})
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sns.scatterplot(frame, x=axes[0], y=axes[1], hue="class", hue_order=list(classes),
                    palette="tab10", s=8, linewidth=0, ax=ax)
    ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_title("latent means of test images", fontsize=9)
    fig.tight_layout()
    return fig


def curves_figure(history: list[dict[str, float]]) -> plt.Figure:
    """Per-epoch train and validation curves of the loss, the KL and the validation MSE."""
    rows = []
    for epoch, row in enumerate(history, start=1):
        for panel, split, key in (("loss", "train", "train/loss"), ("loss", "val", "val/loss"),
                                  ("kl", "train", "train/kl"), ("kl", "val", "val/kl"),
                                  ("recon_mse", "val", "val/recon_mse")):
            rows.append({"epoch": epoch, "metric": panel, "split": split, "value": row[key]})
    grid = sns.relplot(pd.DataFrame(rows), x="epoch", y="value", hue="split", col="metric",
                       kind="line", marker="o", height=3, aspect=1.1,
                       facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    return grid.figure


def log_run_artifacts(model, splits: Splits, history, tracker, cfg: TrainConfig, autocast,
                      test_codes: Codes) -> None:
    """Make and log every figure of a finished run, closing each after it is logged;
    `test_codes` are the test split's codes, encoded once for this and the analysis."""
    device = splits.test.images.device
    means, labels = test_codes.means[:LATENT_POINTS].numpy(), test_codes.labels[:LATENT_POINTS].numpy()
    figures = {
        "figures/reconstructions.png": reconstruction_figure(model, splits.test, cfg.binarize, autocast),
        "figures/prior_samples.png": prior_samples_figure(model, device, autocast),
        "figures/latent.png": latent_figure(means, labels, splits.spec.classes),
        "figures/curves.png": curves_figure(history),
    }
    for path, figure in figures.items():
        tracker.log_figure(figure, path)
        plt.close(figure)


def log_trial_artifacts(model, images: ImageSet, history, tracker, cfg: TrainConfig, autocast) -> None:
    """The small figures of a run without a test split (an Optuna trial): its curves and
    reconstructions of validation images."""
    figures = {
        "figures/curves.png": curves_figure(history),
        "figures/reconstructions.png": reconstruction_figure(model, images, cfg.binarize, autocast),
    }
    for path, figure in figures.items():
        tracker.log_figure(figure, path)
        plt.close(figure)
