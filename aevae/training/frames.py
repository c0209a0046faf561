"""Frames: small images a run logs while it trains, one per kind at each frame epoch
(`config.frame_epochs`), on MLflow's image slider, so a reader watches reconstructions
sharpen, samples turn into digits and a 2-d latent space organise itself.

Every frame is made of fixed inputs: the first test images of the split (validation images
for a run without a test split, a trial), draws of N(0, I) from a fixed seed, and the first
test images again for the latent map. So the frames of one run compare epoch to epoch, and
the runs of one dataset (and latent size) compare side by side. The AE's prior draws are
decoded exactly as the VAE's, which is the comparison; their caption says the AE was never
trained to make anything of them.

Frames are uint8 arrays drawn with numpy and a line of Pillow text, not matplotlib, which
would cost more than the rest of a frame (benchmarks/frames_cost.py times the frames inside
lab-budget runs: about 25 ms a frame epoch). Nothing here runs between frame epochs, so the training loop
keeps its one host sync per epoch; a frame epoch adds one copy per image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from aevae.analysis.codes import prior_codes
from aevae.config import TrainConfig
from aevae.data import Splits, eval_batches
from aevae.models import Traits
from aevae.numerics import Numerics
from aevae.plotting import tile
from aevae.tracking import Tracker, names
from aevae.training.run_figures import SAMPLE_SEED

COLUMNS = 8
RECON_IMAGES = 16  # two rows of 8, each over its reconstruction
PRIOR_DRAWS = 32  # four rows of 8; the first rows of the final figures/prior_samples.png
FRAME_LATENT_POINTS = 1000  # test images whose 2-d codes a latent frame maps
SCATTER_PIXELS = 160
CAPTION_PIXELS = 13
CAPTION_SIZES = (10, 9, 8)  # font sizes tried in turn until the caption fits the frame's width
# matplotlib's tab10, so frame colours match the latent maps of the final figures.
CLASS_COLOURS = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                          (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
                         dtype=np.uint8)


@dataclass(frozen=True)
class FrameInputs:
    """The fixed inputs of every frame of a run, on the training device."""

    images: torch.Tensor  # [R,C,H,W] on [0,1]: the images to reconstruct, R a multiple of columns
    columns: int  # images per row of the reconstruction frame
    prior: torch.Tensor  # [P,D]: the N(0, I) draws to decode
    latent_images: torch.Tensor | None  # [L,C,H,W]: the images whose 2-d codes are mapped
    latent_labels: np.ndarray | None  # [L] class indices
    source: str  # which split the images come from, for the captions
    prior_caption: str


def prior_caption(traits: Traits) -> str:
    """A model with an N(0, I) prior samples from it; any other's decodes of the same draws
    say that it was never trained to make anything of them."""
    if traits.code == "gaussian":
        return f"{traits.title} samples (N(0, I) draws decoded)"
    return f"{traits.title} decodes of N(0, I) draws (no prior)"


def frame_inputs(cfg: TrainConfig, splits: Splits, device: torch.device, traits: Traits) -> FrameInputs:
    """The run's fixed inputs; `splits` must already be on `device`. Binarized runs see the
    same fixed draw of their images as the metrics do."""
    source, split = (splits.test, "test") if splits.test is not None else (splits.val, "validation")
    images, _ = next(eval_batches(source, cfg.binarize, batch_size=RECON_IMAGES))
    columns = min(COLUMNS, len(images))  # a smoke run's split may hold fewer images
    images = images[: len(images) // columns * columns]
    # A generator of its own: the draws are the same for every run, and the training RNG is untouched.
    prior = prior_codes(PRIOR_DRAWS, cfg.latent_dim, SAMPLE_SEED)
    latent_images = latent_labels = None
    if cfg.latent_dim == 2:
        latent_images, labels = next(eval_batches(source, cfg.binarize, batch_size=FRAME_LATENT_POINTS))
        latent_labels = labels.cpu().numpy()
    return FrameInputs(images, columns, prior.to(device), latent_images, latent_labels, split, prior_caption(traits))


@torch.no_grad()
def log_frames(model, inputs: FrameInputs, tracker: Tracker, epoch: int, numerics: Numerics) -> None:
    """Make this epoch's frames and log each as its key's image at step `epoch`."""
    model.eval()
    with numerics.autocast():
        recon = model(inputs.images)
        decoded = torch.sigmoid(model.decode(inputs.prior).float())
        means = None if inputs.latent_images is None else model.encode(inputs.latent_images)[0]
    rows = (-1, inputs.columns, *inputs.images.shape[1:])
    pairs = torch.stack([inputs.images.reshape(rows), recon.reshape(rows)], 1).flatten(0, 2)
    frames = {
        names.FRAME_RECONSTRUCTIONS: captioned(tile(pairs, inputs.columns),
                                               f"epoch {epoch}: {inputs.source} images over reconstructions"),
        names.FRAME_PRIOR: captioned(tile(decoded, COLUMNS), f"epoch {epoch}: {inputs.prior_caption}"),
    }
    if means is not None:
        canvas, bound = scatter(means.float().cpu().numpy(), inputs.latent_labels)
        frames[names.FRAME_LATENT] = captioned(canvas, f"epoch {epoch}: latent means, axes at ±{bound:.3g}")
    for key, frame in frames.items():
        tracker.log_image(frame, key, epoch)


def scatter(means: np.ndarray, labels: np.ndarray, pixels: int = SCATTER_PIXELS) -> tuple[np.ndarray, float]:
    """2-d code means as 3x3 dots coloured by class on a white square centred on 0, with grey
    axes through 0 and a grey border. The square spans ±bound, the 99th percentile of |z|,
    which is returned: frames rescale as the codes spread, and the caption says by how much."""
    finite = np.isfinite(means).all(axis=1)
    means, labels = means[finite], labels[finite]
    bound = float(np.quantile(np.abs(means), 0.99)) if len(means) else 1.0
    bound = bound if bound > 0 and np.isfinite(bound) else 1.0
    canvas = np.full((pixels, pixels, 3), 255, dtype=np.uint8)
    inner = pixels - 5  # dots stay inside the border
    zero = 2 + inner // 2  # where z = 0 lands, on both axes
    canvas[zero, :] = canvas[:, zero] = 210
    canvas[[0, -1], :] = canvas[:, [0, -1]] = 160
    columns = 2 + np.clip((means[:, 0] / bound + 1) / 2 * inner, 0, inner - 1).astype(int)
    rows = 2 + np.clip((1 - means[:, 1] / bound) / 2 * inner, 0, inner - 1).astype(int)
    colours = CLASS_COLOURS[labels % len(CLASS_COLOURS)]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            canvas[rows + dy, columns + dx] = colours
    return canvas, bound


def captioned(frame: np.ndarray, text: str) -> np.ndarray:
    """`frame` under a white band with `text`, in the largest font size that fits its width."""
    from PIL import Image, ImageDraw

    band = Image.new("L", (frame.shape[1], CAPTION_PIXELS), 255)
    draw = ImageDraw.Draw(band)
    fitting = [size for size in CAPTION_SIZES if draw.textlength(text, font=font(size)) <= frame.shape[1] - 2]
    draw.text((1, 0), text, fill=0, font=font(fitting[0] if fitting else CAPTION_SIZES[-1]))
    band = np.asarray(band)
    if frame.ndim == 3:
        band = np.repeat(band[..., None], frame.shape[2], axis=2)
    return np.concatenate([band, frame], axis=0)


@functools.cache
def font(size: int):
    """Pillow's bundled font (no font file to install), loaded once per size."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)
