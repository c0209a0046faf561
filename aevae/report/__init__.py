"""`aevae report`: RESULTS.md and figures for a grid, read from MLflow only.

The report never imports the training code (aevae.training.loop, aevae.models, aevae.data, torch):
it reads what was tracked, so it runs against a tracking server and over runs that older
versions logged. One `search_runs` brings every run's final metrics; per-run requests (metric
histories, figure artifacts) are made only for the few runs a figure shows.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aevae.bench.defaults import DEFAULT_GRID, RESULTS_DIR
from aevae.folders import FolderError, check_writable
from aevae.report import ae_vae, applicable, compact, downloads, markdown, panels, plots, references, tables
from aevae.report.display import in_cell_order, ordered_cells
from aevae.report.runs import GridRuns, ReportError, load_grid_runs
from aevae.tracking import default_tracking_uri
from aevae.tracking.links import ui_base
from aevae.tracking.reader import StoreReader

RESULTS_FILE = "RESULTS.md"
CSV_FILE = "results.csv"  # every metric per cell as plain numbers, beside RESULTS.md
CURVE_SEEDS = 3
# Histories are one request per run and metric, so on big grids the curves show fewer seeds
# per cell (down to one) to keep the requests under about 5 x this many.
CURVE_RUNS = 60
# Files an earlier report wrote into the folder; removed so a figure of a cell that left the
# grid does not linger beside the new RESULTS.md.
OWN_FIGURES = ("metrics-*.png", "curves-*.png", "panels-*.png", "frames-*.png", "beta-*.png",
               "rate-distortion.png")


@dataclass
class Report:
    path: Path
    grid: GridRuns
    figures: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        slots = self.grid.slots
        finished = int((slots["status"] == "FINISHED").sum())
        phases = ", ".join(f"{name} {s:.2f}" for name, s in self.seconds.items())
        version = f"version {self.grid.version}, " if self.grid.version else ""
        return (f"wrote {self.path} ({version}{slots['cell'].nunique()} cells, {finished} of {len(slots)} runs "
                f"finished, {len(self.figures)} figures) in {sum(self.seconds.values()):.2f} s ({phases})")


def draw_figures(reader: StoreReader, grid: GridRuns, folder: Path, curve_seeds: int, seconds: dict) -> tuple[dict, list[str], int]:
    """Every figure by kind, notes on missing figure artifacts, and the seeds per curve."""
    started = time.perf_counter()
    finished = in_cell_order(grid.finished, grid.slots, grid.extra_axes)
    curve_seeds = max(1, min(curve_seeds, CURVE_RUNS // max(1, finished["cell"].nunique())))
    curve_runs = downloads.representatives(finished, curve_seeds)
    history = downloads.histories(reader, list(curve_runs["run_id"]))
    shown = downloads.representatives(finished, 1)
    representative = dict(zip(shown["cell"], shown["run_id"]))
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = downloads.download_figures(reader, list(representative.values()), Path(scratch))
        frames = downloads.download_frames(reader, list(representative.values()), Path(scratch))
        seconds["fetch"] = time.perf_counter() - started
        started = time.perf_counter()
        pairs = ae_vae.pairs(grid)
        sources = panels.Sources(representative, downloaded, frames, grid.titles)
        drawn = {
            "metrics": plots.metric_bars(finished, grid.extra_axes, grid.titles, folder),
            "rate_distortion": [p for p in [plots.rate_distortion(finished, grid.titles, folder)] if p],
            "curves": plots.curves(history, curve_runs, grid.extra_axes, grid.titles, folder),
            "panels": panels.ae_vae_panels(pairs, sources, grid.extra_axes, folder),
            "beta": panels.beta_panels(grid.slots, sources, folder),
        }
    seconds["figures"] = time.perf_counter() - started
    return drawn, missing_figures(representative, downloaded), curve_seeds


def missing_figures(representative: dict[str, str], downloaded: dict[str, dict]) -> list[str]:
    """A note for each shown run that lacks a figure artifact (its tile is left blank)."""
    notes = []
    for cell, run_id in representative.items():
        lacking = [f"figures/{name}.png" for name in downloads.FIGURES if name not in downloaded.get(run_id, {})]
        if lacking:
            notes.append(f"Run `{run_id}` ({cell}) has no {', '.join(lacking)}; its tiles are blank.")
    return notes


def read_references(path: str | Path | None) -> tuple[list[references.Reference], str]:
    """The references and the file as the report names it (no file: none, and the section
    is left out). Read before MLflow, so a bad file fails at once."""
    path = Path(path) if path else references.default_path()
    if path is None:
        return [], ""
    cwd = Path.cwd()
    shown = path.resolve().relative_to(cwd) if path.resolve().is_relative_to(cwd) else path
    return references.load_references(path), shown.as_posix()


def default_folder(grid: GridRuns, version: str | None) -> Path:
    """benchmarks/results/<grid>/ for the newest version; <grid>@<label>/ for one asked for
    by name, so it does not overwrite the newest version's report."""
    name = plots.slug(grid.experiment.grid)
    return Path(RESULTS_DIR) / (name if version is None else f"{name}@{grid.version or 'unlabelled'}")


def build_report(target: str = DEFAULT_GRID, out_dir: str | Path | None = None, tracking_uri: str | None = None,
                 ui_url: str | None = None, curve_seeds: int = CURVE_SEEDS,
                 references_file: str | Path | None = None, version: str | None = None) -> Report:
    """Read version `version` (default: the newest) of grid (or experiment) `target` from
    MLflow; write RESULTS.md, results.csv and PNGs into `out_dir` (default: see
    `default_folder`). References come from `references_file`, else benchmarks/references.toml."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if out_dir is not None:  # before reading: a folder it cannot write is known at once
        check_writable(out_dir, "the report folder", "--out")
    known, references_name = read_references(references_file)
    tracking_uri = default_tracking_uri() if tracking_uri is None else tracking_uri  # "" is an error, not the default
    reader = StoreReader(tracking_uri)
    grid = load_grid_runs(reader, target, version)
    beside = references.beside(grid, known)
    seconds["read"] = time.perf_counter() - started
    folder = Path(out_dir) if out_dir else default_folder(grid, version)
    check_writable(folder, "the report folder", "--out")
    try:
        return write_report(reader, grid, folder, tracking_uri, ui_url, curve_seeds, seconds, known, beside,
                            references_name)
    except OSError as exc:  # the disk filled, or the folder went away while writing
        raise FolderError(f"cannot write the report into {folder} ({exc.strerror or type(exc).__name__}); "
                          f"free space there or give another folder with --out.") from None


def write_report(reader: StoreReader, grid: GridRuns, folder: Path, tracking_uri: str, ui_url: str | None,
                 curve_seeds: int, seconds: dict[str, float], known: list[references.Reference], beside,
                 references_name: str) -> Report:
    """RESULTS.md, its figures and its CSV, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in OWN_FIGURES:
        for old in folder.glob(pattern):
            old.unlink()
    drawn, notes, curve_seeds = draw_figures(reader, grid, folder, curve_seeds, seconds)
    started = time.perf_counter()
    links = ui_base(tracking_uri, ui_url)
    not_applicable, order = applicable.by_cell(grid.slots), ordered_cells(grid.slots, grid.extra_axes)
    sections = markdown.Sections(
        compact=compact.compact(grid), references=beside,
        reference_sources=references.source_lines(known, set(beside["_id"])), readings=ae_vae.readings(grid),
        unfinished=tables.unfinished(grid), gaps=tables.gaps(grid, links), full=tables.every_metric(grid, links),
        runs=tables.all_runs(grid, links), settings=tables.shared_settings(grid),
        provenance=tables.provenance(grid), csv_name=CSV_FILE, references_file=references_name,
        compared=ae_vae.compared(grid),
        compact_notes=applicable.note(not_applicable, compact.columns(grid), order),
        full_notes=applicable.note(not_applicable, tables.full_columns(grid), order),
        figures=drawn, figure_notes=notes, curve_seeds=curve_seeds,
    )
    tables.metric_values(grid).to_csv(folder / CSV_FILE, index=False)
    path = folder / RESULTS_FILE
    path.write_text(markdown.render(grid, sections, folder), encoding="utf-8")
    seconds["write"] = time.perf_counter() - started
    return Report(path, grid, [p for paths in drawn.values() for p in paths], seconds)


__all__ = ["Report", "ReportError", "build_report"]
