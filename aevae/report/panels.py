"""Image panels composed from the runs' own figure artifacts: reconstructions, prior samples
and latent maps, the AE next to the VAE (the "without KL / with KL" picture) and every other
model of its dataset and arch, and, on a beta grid, the VAE's latent maps side by side per
beta. Each panel shows the run of the lowest finished seed; a missing figure leaves a
labelled blank instead of breaking. Under each AE|VAE panel, the same runs' strip through
training (aevae.report.strips), where they have one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aevae.plotting import plt
from aevae.report.display import sortable
from aevae.report.plots import save, slug
from aevae.report.strips import Frames, through_training
from aevae.report.titles import AE, DISCRETE, GAUSSIAN, POINT, Titles

ROW_TITLES = {"reconstructions": "test images and reconstructions", "prior_samples": "samples from N(0, I)",
              "latent": "latent means"}
# What a model's code means for the picture, beside its title in a panel's heading.
CODE_HEADINGS = {POINT: "no KL", GAUSSIAN: "with KL", DISCRETE: "discrete code"}
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


@dataclass(frozen=True)
class Sources:
    """What the panels draw from: the run shown per cell, its figure artifacts and frames
    (aevae.report.downloads), and the titles to head them with."""

    representative: dict[str, str]  # cell -> run id of its lowest finished seed
    figures: dict[str, dict[str, Path]]  # run id -> {figure name: local PNG}
    frames: Frames
    titles: Titles

    def heading(self, model: str) -> str:
        """`VAE (with KL)`, `VQ-VAE (discrete code)`: the model's title, and its code where known."""
        code = CODE_HEADINGS.get(self.titles.code(model))
        return f"{self.titles.model(model)} ({code})" if code else self.titles.model(model)


def distance_to_one(cell: pd.Series) -> float:
    """How far a cell's beta is from 1 (no beta: infinitely far)."""
    value = sortable(cell.get("beta"))
    return abs(value[1] - 1.0) if value[0] == 0 else float("inf")


def panel_groups(pairs, extra_axes: list[str]) -> list[tuple[pd.Series, list[pd.Series]]]:
    """(AE cell, the other models' cells) per panel: the models paired with one AE cell at
    the same values of the other axes, in cell order; on a beta grid, of each model the
    beta nearest 1 (the per-beta figure shows the rest)."""
    grouped: dict[tuple, tuple[pd.Series, dict[str, list[pd.Series]]]] = {}
    for ae, other in pairs:
        key = (ae["cell"], *(str(other.get(a)) for a in extra_axes if a != "beta"))
        grouped.setdefault(key, (ae, {}))[1].setdefault(other["model"], []).append(other)
    return [(ae, [min(cells, key=distance_to_one) for cells in by_model.values()])
            for ae, by_model in grouped.values()]


def ae_vae_panels(pairs, sources: Sources, extra_axes: list[str], folder: Path) -> list[Path]:
    """Per dataset × arch (× other axes): reconstructions, prior samples and latent map, the
    AE left and each other model beside it, followed by their strip through training when
    the runs logged frames."""
    paths = []
    for ae, others in panel_groups(pairs, extra_axes):
        if not any(cell["cell"] in sources.representative for cell in (ae, *others)):
            continue  # no side finished: nothing to show
        columns = [(sources.heading(cell["model"]), sources.representative.get(cell["cell"])) for cell in (ae, *others)]
        first = others[0]
        name = "-".join([first["dataset"], first["arch"],
                         *(f"{a}={first[a]}" for a in extra_axes if pd.notna(first.get(a)))])
        label = sources.titles.group(first, extra_axes)
        paths.append(grid_of_tiles(columns, list(ROW_TITLES), sources.figures, label,
                                   folder / f"panels-{slug(name)}.png"))
        strip = through_training(columns, sources.frames, label, folder / f"frames-{slug(name)}.png")
        paths += [strip] if strip else []
    return paths


def beta_panels(slots: pd.DataFrame, sources: Sources, folder: Path) -> list[Path]:
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
        aes = group[group["model"] == AE]
        columns = [(sources.heading(AE), sources.representative.get(aes["cell"].iloc[0]))] if len(aes) else []
        columns += [(f"{sources.titles.model('vae')} β={beta}", sources.representative.get(cell))
                    for cell, beta in zip(vaes["cell"], vaes["beta"])]
        label = sources.titles.group(group.iloc[0], []) + ": latent maps per beta"
        paths.append(grid_of_tiles(columns, ["latent"], sources.figures, label,
                                   folder / f"beta-{slug(dataset)}-{slug(arch)}.png"))
    return paths
