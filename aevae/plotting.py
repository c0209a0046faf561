"""Figures as files. The one place that sets matplotlib's backend (Agg: figures are written,
never shown in a window); every module that draws imports `plt` from here. Also the two
drawings that runs, the analysis and the frames share: a tile of images, and a scatter of
latent codes coloured by class.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

plt.switch_backend("agg")  # before any figure exists; a window would need a display

__all__ = ["plt", "sns", "grid_figure", "latent_scatter", "log_figure", "tile"]


def log_figure(tracker, path: str, figure: plt.Figure) -> None:
    """Log `figure` to the tracker's run at `path`, and free it."""
    tracker.log_figure(figure, path)
    plt.close(figure)


def tile(images, columns: int) -> np.ndarray:
    """`[N,C,H,W]` images on [0,1] as one uint8 grid, `columns` wide and as many rows as
    needed (a short last row is padded white): `[rows*H, columns*W]` for one channel,
    `[rows*H, columns*W, C]` otherwise. Converted where the images are, so one small uint8
    copy crosses to the host (the frames tile images on the training device)."""
    import torch  # here: the report draws with this module and never loads torch

    n, c, h, w = images.shape
    rows = -(-n // columns)
    pixels = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    if rows * columns > n:
        pixels = torch.cat([pixels, pixels.new_full((rows * columns - n, c, h, w), 255)])
    grid = pixels.reshape(rows, columns, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, columns * w, c)
    grid = grid.cpu().numpy()
    return grid[..., 0] if c == 1 else grid


def grid_figure(images, columns: int, title: str) -> plt.Figure:
    """Images `[N,C,H,W]` on [0,1] tiled `columns` wide, with a title."""
    grid = tile(images, columns)
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(width / 40 + 0.5, height / 40 + 0.8))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def latent_scatter(points: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], axes: tuple[str, str],
                   title: str) -> plt.Figure:
    """Points `[N,2]` (codes, their principal components or a t-SNE map) coloured by class,
    in matplotlib's tab10 palette, as the frames' latent maps are."""
    frame = pd.DataFrame({axes[0]: points[:, 0], axes[1]: points[:, 1],
                          "class": [classes[i] for i in np.asarray(labels).tolist()]})
    fig, ax = plt.subplots(figsize=(6.5, 5))
    palette = "tab10" if len(classes) <= 10 else "husl"  # tab10 has ten colours; more classes need more
    sns.scatterplot(frame, x=axes[0], y=axes[1], hue="class", hue_order=list(classes),
                    palette=palette, s=8, linewidth=0, ax=ax)
    ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
