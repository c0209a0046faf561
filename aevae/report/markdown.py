"""RESULTS.md: the tables, the figures embedded beside them, and everything a reader needs
to trust the numbers without opening the MLflow UI (what was run, what is missing, why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from aevae.report.runs import GridRuns
from aevae.report.tables import to_markdown

UNITS = (
    "Units: **recon MSE** is the mean squared error per pixel channel on [0, 1]; **recon BCE** the "
    "Bernoulli negative log-likelihood in nats per image; **recon acc** is 100 × (1 − MSE), the "
    "\"reconstruction accuracy\" of the lab write-up; **pixel acc** the share of pixel channels "
    "within the run's `pixel_tol`; **KL** is KL(q(z|x) ‖ N(0, I)) in nats per image (0 for the AE); "
    "**ELBO** nats per image (VAE only); **active units** the latent dimensions whose mean varies "
    "over the test split by more than 0.01; **wall** the run's training and evaluation seconds; "
    "**images/s** the training throughput of the last epoch."
)


@dataclass
class Sections:
    """What the orchestrator hands over: display tables and figure paths by kind."""

    headline: pd.DataFrame
    comparison: pd.DataFrame
    problems: pd.DataFrame
    gaps: pd.DataFrame
    runs: pd.DataFrame
    settings: dict[str, str]
    provenance: list[str]
    figures: dict[str, list[Path]] = field(default_factory=dict)
    figure_notes: list[str] = field(default_factory=list)
    curve_seeds: int = 3


def counts_line(grid: GridRuns) -> str:
    states = grid.slots["status"].value_counts()
    finished = int(states.get("FINISHED", 0))
    others = ", ".join(f"{n} {s.lower()}" for s, n in states.items() if s != "FINISHED")
    line = (f"**{grid.slots['cell'].nunique()} cells, {len(grid.slots)} (cell, seed) slots: "
            f"{finished} finished**")
    return line + (f"; {others} (see [Not in the tables](#not-in-the-tables))." if others else ".")


def axes_line(grid: GridRuns) -> str:
    if not grid.axes:
        return ""
    shown = "; ".join(f"{k} = {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in grid.axes.items())
    return f"Grid axes: {shown}.\n\n"


def figure_block(title: str, paths: list[Path], caption: str, folder: Path) -> str:
    if not paths:
        return ""
    images = "\n\n".join(f"![{p.stem}]({p.relative_to(folder).as_posix()})" for p in paths)
    return f"### {title}\n\n{caption}\n\n{images}\n\n"


def render(grid: GridRuns, sections: Sections, folder: Path) -> str:
    experiment = grid.experiment
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figures = sections.figures
    version = f", version `{grid.version}`" if grid.version else ""
    parts = [
        f"# Results: `{experiment.name}`{version}\n\n",
        f"Read by `aevae report` from MLflow experiment `{experiment.name}` (id {experiment.id}) "
        f"at `{experiment.tracking_uri}` on {when}.\n{counts_line(grid)}\n\n",
        axes_line(grid),
        "Every number is a test-split mean ± sample standard deviation (ddof = 1) over the seeds "
        "that finished; `seeds` says how many of the cell's seeds that is, `(n=k)` marks a metric "
        "only k of them logged, and `—` one that none logged.\n\n",
        "## Headline\n\n", to_markdown(sections.headline), "\n\n", UNITS, "\n\n",
        "## What the KL term does: AE vs VAE\n\n",
        "Each VAE cell beside the AE of the same dataset and arch (means over seeds; "
        "\"equally well\" when the difference is within the two seed spreads).\n\n",
        to_markdown(sections.comparison) if len(sections.comparison) else
        "This grid has no AE and VAE cells of the same dataset and arch to compare.", "\n\n",
        "## Figures\n\n" if any(figures.values()) else "",
        figure_block("Test metrics per cell", figures.get("metrics", []),
                     "Bars are means over seeds; error bars one standard deviation.", folder),
        figure_block("Rate and distortion per beta", figures.get("rate_distortion", []),
                     "One point per beta (mean over seeds, error bars one sd each way).", folder),
        figure_block("Training and validation curves", figures.get("curves", []),
                     f"Per epoch, up to {sections.curve_seeds} seeds per cell (the lowest): lines are "
                     f"means, bands one sd; train solid, validation dashed.", folder),
        figure_block("Reconstructions, samples and latent maps: AE next to VAE", figures.get("panels", []),
                     "The run of each cell's lowest finished seed, from its own figure artifacts.", folder),
        figure_block("Latent maps per beta", figures.get("beta", []),
                     "The lowest finished seed of each beta; the AE first, for the picture without KL.", folder),
        "".join(f"- {note}\n" for note in sections.figure_notes) + ("\n" if sections.figure_notes else ""),
        "## Not in the tables\n\n",
        "Every (cell, seed) slot of the grid without a finished run, with its reason.\n\n",
        to_markdown(sections.problems), "\n\n",
    ]
    if len(sections.gaps):
        parts += ["### Finished runs with missing metrics\n\n", to_markdown(sections.gaps), "\n\n"]
    parts += ["## Settings and provenance\n\n"]
    if sections.settings:
        shown = ", ".join(f"`{k}={v}`" for k, v in sections.settings.items())
        parts += [f"Config fields shared by every finished run: {shown}.\n\n"]
    parts += [f"- {line}\n" for line in sections.provenance + grid.notes]
    parts += [f"\n## Every run\n\n<details><summary>{len(sections.runs)} runs</summary>\n\n",
              to_markdown(sections.runs), "\n\n</details>\n"]
    return "".join(parts)
