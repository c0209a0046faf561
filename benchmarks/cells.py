"""The grid cells a benchmark script measures, read from a grid file as `aevae bench` reads it.

A script names its grid (benchmarks/lab.toml, or a grid file of its own in
benchmarks/script_grids/ where it needs other budgets), narrows it with `--only KEY=VALUE`
as `aevae bench --only` does, runs the seeds it asks for instead of the file's (as
`aevae bench --seeds` does), and may set fields of its own (a shorter budget, a precision).
Those fields come after the grid file's rules, as a last rule that matches every cell would,
so they win over the grid's budgets and each cell is resolved from them (`image_every`
follows `epochs`, for one), as a grid file that set them would give it. `splits_of` reads
each dataset the cells train on once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from aevae import data
from aevae.bench.grid import Cell, Rule, expand, load_grid, select
from aevae.config import TrainConfig, validate, with_overrides

# The scripts' own grids live here rather than in benchmarks/, so that `aevae bench`'s list
# of grids (the files in benchmarks/) stays the user's: lab, smoke, beta, literature.
SCRIPT_GRIDS = Path(__file__).resolve().parent / "script_grids"


def script_grid(name: str) -> str:
    """The path of the script grid `name` (benchmarks/script_grids/<name>.toml)."""
    return str(SCRIPT_GRIDS / f"{name}.toml")


def grid_cells(grid: str, only: Iterable[str] = (), *, seeds: Iterable[int] | None = (0,),
               fields: dict[str, Any] | None = None) -> list[Cell]:
    """The cells of `grid` (a name in benchmarks/ or a path) that match every `only` item,
    at `seeds` (None: the grid file's), with `fields` set after the grid's rules. Raises
    ConfigError, in one sentence, for an unknown grid, a bad `only` item or a bad field."""
    loaded = load_grid(grid)
    if seeds is not None:
        loaded = dataclasses.replace(loaded, seeds=tuple(seeds))
    if fields:
        # Checked on their own first, so a bad value reads as the script's, not the grid file's.
        validate(with_overrides(TrainConfig(), fields))
        loaded = dataclasses.replace(loaded, rules=(*loaded.rules, Rule({}, dict(fields))))
    return select(expand(loaded), list(only))


def splits_of(cells: Iterable[Cell], data_dir: str | None) -> dict[str, data.Splits]:
    """Each dataset the cells train on, read once, split as its first cell splits it. Raises
    an AevaeError, in one sentence, for files that are missing and cannot be downloaded."""
    loaded: dict[str, data.Splits] = {}
    for cell in cells:
        cfg = cell.config
        if cfg.dataset not in loaded:
            loaded[cfg.dataset] = data.load(cfg.dataset, data_dir, cfg.val_size, cfg.subset)
    return loaded
