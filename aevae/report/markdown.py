"""RESULTS.md: the tables, the figures embedded beside them, and everything a reader needs
to trust the numbers without opening the MLflow UI (what was run, what is missing, why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from aevae.report.runs import GridRuns
from aevae.report.tables import to_markdown

SHORT_UNITS = (
    "Each number is a test-split mean ± sample standard deviation (ddof = 1) over the seeds that "
    "finished (`seeds`: finished of expected; `(n=k)`: only k logged it; `—`: none did; `n/a`: the "
    "metric does not apply to the model, for the reason noted under the table). **recon MSE** "
    "per pixel channel on [0, 1]; **recon acc** = 100 × (1 − MSE), the lab write-ups' \"accuracy\"; "
    "**KL**, **ELBO** and **NLL** in nats per image (the NLL an importance-weighted bound with k samples)."
)
UNITS = (
    "Units: **recon MSE** is the mean squared error per pixel channel on [0, 1]; **recon BCE** the "
    "Bernoulli negative log-likelihood in nats per image; **recon acc** is 100 × (1 − MSE), the "
    "\"reconstruction accuracy\" of the lab write-up; **pixel acc** the share of pixel channels "
    "within the run's `pixel_tol`; **KL** is KL(q(z|x) ‖ N(0, I)) in nats per image (0 for the AE); "
    "**ELBO** nats per image (models with a Gaussian code only); `n/a` a metric that does not apply to "
    "the cell's model, for the reason noted under the table; **active units** the latent dimensions whose mean varies "
    "over the test split by more than 0.01; **wall** the run's training and evaluation seconds; "
    "**images/s** the training throughput of the last epoch."
)


@dataclass
class Sections:
    """What the orchestrator hands over: display tables, sentences and figure paths by kind."""

    compact: pd.DataFrame
    references: pd.DataFrame
    reference_sources: list[str]
    readings: list[str]
    unfinished: pd.DataFrame
    gaps: pd.DataFrame
    full: pd.DataFrame
    runs: pd.DataFrame
    settings: dict[str, str]
    provenance: list[str]
    csv_name: str
    references_file: str = ""
    compared: list[str] = field(default_factory=list)  # titles of the models read against the AE
    compact_notes: list[str] = field(default_factory=list)  # under the compact table: n/a and why
    full_notes: list[str] = field(default_factory=list)  # under the full table
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


def references_block(sections: Sections) -> str:
    if not sections.references_file:
        return ""
    head = "## Beside published results\n\n"
    if not len(sections.references):
        return head + f"No reference in `{sections.references_file}` is of a cell of this grid.\n\n"
    shown = sections.references.drop(columns="_id")
    intro = (f"Published and lab results from `{sections.references_file}`, each beside the cell of its "
             "model, arch and dataset. The difference is ours minus theirs; where the setting that decides "
             "what a number measures differs (data, binarization, decoder, estimator), the row says so "
             "instead of comparing. In the setting column, `x vs y` is ours vs the reference's.")
    sources = "".join(f"- {line}\n" for line in sections.reference_sources)
    return f"{head}{intro}\n\n{to_markdown(shown)}\n\n{sources}\n"


def title_list(titles: list[str]) -> str:
    return titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]}"


def readings_block(readings: list[str], compared: list[str]) -> str:
    """The AE beside each other model: the VAE on a grid of the two, every model of the grid."""
    models = compared or ["VAE"]
    head = (f"## What the KL term does: AE vs {', '.join(models)}\n\n"
            f"Each {title_list(models)} cell beside the AE of the same dataset and arch (means over seeds).\n\n")
    if not readings:
        return head + "This grid has no AE and VAE cells of the same dataset and arch to compare.\n\n"
    return head + "".join(f"- {line}\n" for line in readings) + "\n"


def notes_block(notes: list[str]) -> str:
    return "".join(f"- {note}\n" for note in notes) + ("\n" if notes else "")


def figures_block(sections: Sections, folder: Path) -> str:
    figures = sections.figures
    others = title_list(sections.compared or ["VAE"])
    blocks = [
        figure_block("Test metrics per cell", figures.get("metrics", []),
                     "Bars are means over seeds; error bars one standard deviation.", folder),
        figure_block("Rate and distortion per beta", figures.get("rate_distortion", []),
                     "One point per beta (mean over seeds, error bars one sd each way).", folder),
        figure_block("Training and validation curves", figures.get("curves", []),
                     f"Per epoch, up to {sections.curve_seeds} seeds per cell (the lowest): lines are "
                     f"means, bands one sd; train solid, validation dashed.", folder),
        figure_block(f"Reconstructions, samples and latent maps: AE next to {others}", figures.get("panels", []),
                     "The run of each cell's lowest finished seed, from its own figure artifacts.", folder),
        figure_block("Latent maps per beta", figures.get("beta", []),
                     "The lowest finished seed of each beta; the AE first, for the picture without KL.", folder),
    ]
    notes = "".join(f"- {note}\n" for note in sections.figure_notes) + ("\n" if sections.figure_notes else "")
    return ("## Figures\n\n" if any(figures.values()) else "") + "".join(blocks) + notes


def render(grid: GridRuns, sections: Sections, folder: Path) -> str:
    experiment = grid.experiment
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    version = f", version `{grid.version}`" if grid.version else ""
    parts = [
        f"# Results: `{experiment.name}`{version}\n\n",
        f"Read by `aevae report` from MLflow experiment `{experiment.name}` (id {experiment.id}) "
        f"at `{experiment.tracking_uri}` on {when}.\n{counts_line(grid)}\n\n",
        axes_line(grid),
        "## Results\n\n", to_markdown(sections.compact), "\n\n", notes_block(sections.compact_notes), SHORT_UNITS,
        f" Every metric is in [the full table](#every-metric) and in [{sections.csv_name}]({sections.csv_name}).\n\n",
        references_block(sections),
        readings_block(sections.readings, sections.compared),
        figures_block(sections, folder),
        "## Not in the tables\n\n",
        "Every (cell, seed) slot of the grid without a finished run, grouped by its reason; the "
        "full table's notes refer to the numbers.\n\n",
        to_markdown(sections.unfinished), "\n\n",
    ]
    if len(sections.gaps):
        parts += ["### Finished runs with missing metrics\n\n", to_markdown(sections.gaps), "\n\n"]
    parts += ["## Every metric\n\n", to_markdown(sections.full), "\n\n", notes_block(sections.full_notes),
              UNITS, "\n\n"]
    parts += ["## Settings and provenance\n\n"]
    if sections.settings:
        shown = ", ".join(f"`{k}={v}`" for k, v in sections.settings.items())
        parts += [f"Config fields shared by every finished run: {shown}.\n\n"]
    parts += [f"- {line}\n" for line in sections.provenance + grid.notes]
    parts += [f"\n## Every run\n\n<details><summary>{len(sections.runs)} runs</summary>\n\n",
              to_markdown(sections.runs), "\n\n</details>\n"]
    return "".join(parts)
