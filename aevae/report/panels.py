"""Image panels composed from the runs' own figure artifacts: reconstructions, prior samples
and latent maps, AE next to VAE (the "without KL / with KL" picture), and, on a beta grid,
the VAE's latent maps side by side per beta. Each panel shows the run of the
lowest finished seed; a missing figure leaves a labelled blank instead of breaking. Under each
AE|VAE panel, the same runs' strip through training (aevae.report.strips), where they have one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aevae.plotting import plt
from aevae.report.display import group_label, sortable
from aevae.report.plots import save, slug
from aevae.report.strips import Frames, through_training

ROW_TITLES = {"reconstructions": "test images and reconstructions", "prior_samples": "samples from N(0, I)",
              "latent": "latent means"}
TILE_INCHES = 3.4
LEFT_INCHES, TOP_INCHES = 0.35, 0.75  # room for the row titles, and the suptitle and headings


def draw(ax, figures: dict[str, Path] | None, name: str, run_id: str | None, what: str) -> None:
    """One tile: the run's PNG, or a note of what is missing."""
    ax.axis("off")
    path = (figures or {}).get(name)
    if path is not None:
        ax.imshow(plt.imread(path))
        return
    note = f"no finished {what} run" if run_id is None else f"run {run_id[:8]} has no\nfigures/{name}.png"
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=9, color="0.4", transform=ax.transAxes)


def grid_of_tiles(columns: list[tuple[str, str | None]], rows: list[str],
                  figures: dict[str, dict[str, Path]], title: str, path: Path) -> Path:
    """`columns` are (heading, run id or None); `rows` are figure names. The margins are
    fixed inches (no tight_layout): a layout pass costs as much as drawing the figure."""
    width = TILE_INCHES * len(columns) + LEFT_INCHES + 0.1
    height = TILE_INCHES * len(rows) + TOP_INCHES + 0.1
    figure, axes = plt.subplots(len(rows), len(columns), squeeze=False, figsize=(width, height),
                                gridspec_kw={"left": LEFT_INCHES / width, "right": 1 - 0.1 / width,
                                             "top": 1 - TOP_INCHES / height, "bottom": 0.1 / height,
                                             "wspace": 0.04, "hspace": 0.1})
    for j, (heading, run_id) in enumerate(columns):
        for i, name in enumerate(rows):
            draw(axes[i][j], figures.get(run_id) if run_id else None, name, run_id, heading.split()[0])
            if i == 0:
                axes[i][j].set_title(heading, fontsize=11)
    for i, name in enumerate(rows):
        axes[i][0].text(-0.04, 0.5, ROW_TITLES[name], rotation=90, ha="right", va="center",
                        fontsize=9, transform=axes[i][0].transAxes)
    figure.suptitle(title, fontsize=12, y=1 - 0.1 / height, va="top")
    return save(figure, path)


def panel_pairs(pairs, extra_axes: list[str]) -> list:
    """One AE-VAE pair per dataset × arch for the panels: on a beta grid the VAE nearest
    beta = 1 (the per-beta figure shows the rest); with other axes, every pair."""
    chosen: dict[tuple, list] = {}
    for ae, vae in pairs:
        chosen.setdefault((vae["dataset"], vae["arch"]), []).append((ae, vae))
    result = []
    for group in chosen.values():
        if "beta" in extra_axes and len(group) > 1:
            def distance(pair):
                value = sortable(pair[1]["beta"])
                return abs(value[1] - 1.0) if value[0] == 0 else float("inf")
            group = [min(group, key=distance)]
        result += group
    return result


def ae_vae_panels(pairs, representative: dict[str, str], figures, extra_axes: list[str],
                  folder: Path, frames: Frames | None = None) -> list[Path]:
    """Per dataset × arch: reconstructions, prior samples and latent map, AE left, VAE right,
    each followed by its strip through training when the runs logged `frames`."""
    paths = []
    for ae, vae in panel_pairs(pairs, extra_axes):
        if ae["cell"] not in representative and vae["cell"] not in representative:
            continue  # neither side finished: nothing to show
        columns = [("AE (no KL)", representative.get(ae["cell"])), ("VAE (with KL)", representative.get(vae["cell"]))]
        name = "-".join([vae["dataset"], vae["arch"], *(f"{a}={vae[a]}" for a in extra_axes if pd.notna(vae.get(a)))])
        paths.append(grid_of_tiles(columns, list(ROW_TITLES), figures, group_label(vae, extra_axes),
                                   folder / f"panels-{slug(name)}.png"))
        strip = through_training(columns, frames or {}, group_label(vae, extra_axes),
                                 folder / f"frames-{slug(name)}.png")
        paths += [strip] if strip else []
    return paths


def beta_panels(slots: pd.DataFrame, representative: dict[str, str], figures, folder: Path) -> list[Path]:
    """Beta grids, per dataset × arch: the latent maps, the AE's then each beta's."""
    if "beta" not in slots:
        return []
    cells = slots.drop_duplicates("cell")
    paths = []
    for (dataset, arch), group in cells.groupby(["dataset", "arch"], sort=False):
        vaes = group[group["model"] == "vae"]
        if vaes["beta"].nunique() < 2:
            continue
        vaes = vaes.iloc[sorted(range(len(vaes)), key=lambda i: sortable(vaes["beta"].iloc[i]))]
        aes = group[group["model"] == "ae"]
        columns = [("AE (no KL)", representative.get(aes["cell"].iloc[0]))] if len(aes) else []
        columns += [(f"VAE β={beta}", representative.get(cell)) for cell, beta in zip(vaes["cell"], vaes["beta"])]
        label = group_label(group.iloc[0], []) + ": latent maps per beta"
        paths.append(grid_of_tiles(columns, ["latent"], figures, label,
                                   folder / f"beta-{slug(dataset)}-{slug(arch)}.png"))
    return paths
