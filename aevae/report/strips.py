"""The "through training" strip under an AE|VAE panel: the first, middle and last frame the
shown runs logged while they trained (aevae.training.frames, MLflow's per-step images), one
row per kind of frame, the AE's three beside the VAE's three. Each frame carries its epoch in
its own caption. A pair whose runs logged no frames (older runs, `image_every = 0`) gets no
strip; one side without frames gets a note in its place."""

from __future__ import annotations

from pathlib import Path


from aevae.plotting import plt
from aevae.report.plots import save
from aevae.tracking.names import FRAME_KEYS, FRAME_LATENT, FRAME_PRIOR, FRAME_RECONSTRUCTIONS

ROW_TITLES = {FRAME_RECONSTRUCTIONS: "reconstructions", FRAME_PRIOR: "N(0, I) decoded",
              FRAME_LATENT: "latent means"}
SLOTS = 3  # first, middle, last
FRAME_INCHES = 2.0  # about a frame's own pixels at the report's dpi
GAP = 0.12  # width of the gap between the AE's frames and the VAE's, in frames
LEFT_INCHES, TOP_INCHES = 0.35, 0.7

# run_id -> {frame key: [(epoch, local PNG)]}, as aevae.report.downloads.download_frames gives
Frames = dict[str, dict[str, list[tuple[int, Path]]]]


def through_training(columns: list[tuple[str, str | None]], frames: Frames, title: str, path: Path) -> Path | None:
    """`columns` are the panel's (heading, run id or None); the strip is written to `path`,
    or None is returned when none of the runs logged frames."""
    shown = {run_id: frames.get(run_id, {}) for _, run_id in columns if run_id}
    keys = [key for key in FRAME_KEYS if any(key in logged for logged in shown.values())]
    if not keys:
        return None
    images = {(run_id, key): [plt.imread(p) for _, p in logged.get(key, [])]
              for run_id, logged in shown.items() for key in keys}
    heights = [max((a.shape[0] / a.shape[1] for (_, k), arrays in images.items() if k == key for a in arrays),
                   default=0.6) for key in keys]
    ratios = (([1.0] * SLOTS + [GAP]) * len(columns))[:-1]  # each run's frames, a gap between runs
    width = FRAME_INCHES * sum(ratios) + LEFT_INCHES + 0.1
    height = FRAME_INCHES * sum(heights) * 1.08 + TOP_INCHES + 0.1
    figure, axes = plt.subplots(len(keys), len(ratios), squeeze=False, figsize=(width, height),
                                gridspec_kw={"width_ratios": ratios, "height_ratios": heights,
                                             "left": LEFT_INCHES / width,
                                             "right": 1 - 0.1 / width, "top": 1 - TOP_INCHES / height,
                                             "bottom": 0.1 / height, "wspace": 0.05, "hspace": 0.08})
    for ax in axes.flat:
        ax.axis("off")
    for group, (heading, run_id) in enumerate(columns):
        first = group * (SLOTS + 1)
        axes[0][first + SLOTS // 2].set_title(heading, fontsize=11)
        for row, key in enumerate(keys):
            arrays = images.get((run_id, key), [])
            for slot, array in enumerate(arrays[:SLOTS]):
                axes[row][first + slot].imshow(array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if not arrays:
                note = (f"no finished {heading.split()[0]} run" if run_id is None
                        else f"run {run_id[:8]} logged no\n{key} frames")
                axes[row][first + SLOTS // 2].text(0.5, 0.5, note, ha="center", va="center", fontsize=9,
                                                   color="0.4", transform=axes[row][first + SLOTS // 2].transAxes)
    for row, key in enumerate(keys):
        axes[row][0].text(-0.04, 0.5, ROW_TITLES[key], rotation=90, ha="right", va="center", fontsize=9,
                          transform=axes[row][0].transAxes)
    figure.suptitle(f"{title}: through training (first, middle and last logged epoch)", fontsize=12,
                    y=1 - 0.1 / height, va="top")
    return save(figure, path)
