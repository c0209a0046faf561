"""Benchmark grids: TOML files that list seeds, shared fields, axes and per-part budgets,
expanded into cells, one resolved TrainConfig per cell and seed.

The file format is documented at the top of `benchmarks/lab.toml`. A grid's name is its
file's stem; `aevae bench NAME` finds `benchmarks/NAME.toml`, and a path works too.
Every key and value is checked against the config's fields when the file is read, so a
typo fails before any cell trains, with the valid names in the message.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aevae.bench.defaults import REFERENCES_FILE
from aevae.config import FIELDS, PLUGIN_PARAMS, TrainConfig, config_hash, field_value, parse_value, with_overrides
from aevae.errors import ConfigError, DataError
from aevae.plugins import DatasetLabels, named, plugin_tables
from aevae.resolve import dataset_info, resolve

GRID_KEYS = ("description", "seeds", "base", "axes", "rule", "models", "archs", "datasets")
RULE_KEYS = ("when", "set")
IDENTITY = ("model", "arch", "dataset")  # always in the cell key, in this order
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # grid names go into MLflow filter strings

# (model, arch, dataset) -> (config overrides, study name), or None: tuned parameters
TunedLookup = Callable[[str, str, str], "tuple[dict[str, Any], str] | None"]


@dataclass(frozen=True)
class Rule:
    """A `[[rule]]` table: cells whose fields take one of `when`'s values get `set`'s."""

    match: dict[str, tuple[Any, ...]]
    values: dict[str, Any]

    def applies(self, fields: dict[str, Any]) -> bool:
        return all(fields.get(name, FIELDS[name].default if name in FIELDS else None) in accepted
                   for name, accepted in self.match.items())


@dataclass(frozen=True)
class Grid:
    name: str
    path: Path
    description: str
    seeds: tuple[int, ...]
    base: dict[str, Any]
    axes: dict[str, tuple[Any, ...]]
    rules: tuple[Rule, ...]
    # (kind, name) -> reference, from [models], [archs] and [datasets] and from references
    # given as values; a cell's config lists the ones it names (TrainConfig.plugins)
    plugins: dict[tuple[str, str], str] = field(default_factory=dict)
    labels: dict[str, DatasetLabels] = field(default_factory=dict)  # a dataset's title and class names

    def axes_json(self) -> dict[str, list]:
        """The axes as plain JSON values, seeds included (the `grid_axes` experiment tag)."""
        plain = {name: [list(v) if isinstance(v, tuple) else v for v in values]
                 for name, values in self.axes.items()}
        return {**plain, "seed": list(self.seeds)}


@dataclass(frozen=True)
class Cell:
    """One config of a grid at one seed: what a single benchmark run trains."""

    grid: str
    key: str  # "<model>/<arch>/<dataset>" plus "/<field>=<value>" per other varying axis
    config: TrainConfig  # resolved, so its hash is the one `train` logs
    tuned_from: str | None = None
    labels: DatasetLabels | None = None  # the grid's title and class names of its dataset, if it gives them

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def run_name(self) -> str:
        return f"{self.key}/s{self.seed}"


def grid_folders() -> list[Path]:
    """Where grid names are looked up: ./benchmarks, then the checkout's benchmarks/."""
    here = Path("benchmarks").resolve()
    shipped = Path(__file__).resolve().parents[2] / "benchmarks"
    return [here] if here == shipped else [here, shipped]


def find_grid(ref: str) -> Path:
    """The file of grid `ref`: a path to a .toml file, or a name in a grid folder."""
    if ref.endswith(".toml") or "/" in ref:
        path = Path(ref)
        if not path.is_file():
            raise ConfigError(f"grid file {ref} does not exist: give an existing .toml file or a grid name.")
        return path
    for folder in grid_folders():
        if (folder / f"{ref}.toml").is_file() and f"{ref}.toml" != REFERENCES_FILE:
            return folder / f"{ref}.toml"
    known = sorted({p.stem for folder in grid_folders() for p in folder.glob("*.toml") if p.name != REFERENCES_FILE})
    raise ConfigError(f"unknown grid '{ref}'; valid grids: {', '.join(known) or 'none found'} "
                      f"(files in benchmarks/), or give the path of a .toml grid file.")


def load_grid(ref: str) -> Grid:
    """Read and check grid `ref` (a name or a path)."""
    path = find_grid(ref)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix the line it names.") from None
    return parse_grid(path, data)


def parse_grid(path: Path, data: dict[str, Any]) -> Grid:
    """Check every key and value of a grid file's contents; errors name the file and place."""
    if not _NAME.match(path.stem):
        raise ConfigError(f"{path}: a grid's file name may hold only letters, digits, '_', '.' and '-'.")
    _refuse_old_rules(path, data)
    unknown = sorted(set(data) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}'; valid keys: {', '.join(GRID_KEYS)}.")
    seeds = _seeds(path, data.get("seeds", [0]))
    plugins, labels = plugin_tables(str(path), data, path.parent)
    base = named(_fields(path, "[base]", _table(path, "[base]", data.get("base", {}))), plugins, path.parent)
    axes = {name: tuple(named({name: v}, plugins, path.parent)[name] for v in values)
            for name, values in _axes(path, _table(path, "[axes]", data.get("axes", {}))).items()}
    for name in base.keys() & axes.keys():
        raise ConfigError(f"{path}: '{name}' is both in [base] and in [axes]; keep one.")
    if not isinstance(data.get("rule", []), list):
        raise ConfigError(f"{path}: write each rule as a [[rule]] table, with double brackets.")
    rules = tuple(_rule(path, i, table, axes, plugins) for i, table in enumerate(data.get("rule", []), 1))
    return Grid(path.stem, path, str(data.get("description", "")), seeds, base, axes, rules, plugins, labels)


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table of config fields.")
    return value


def _seeds(path: Path, value: Any) -> tuple[int, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
        raise ConfigError(f"{path}: seeds must be a non-empty list of integers, e.g. seeds = [0, 1, 2].")
    if len(set(value)) != len(value):
        raise ConfigError(f"{path}: seeds lists a seed twice.")
    return tuple(value)


def _fields(path: Path, where: str, table: dict[str, Any]) -> dict[str, Any]:
    """Parse a table of config fields; the seed comes from `seeds` only."""
    parsed = {}
    for name, value in table.items():
        if name == "seed":
            raise ConfigError(f"{path}: {where} sets 'seed'; list the seeds in seeds = [...] instead.")
        try:
            parsed[name] = parse_value(name, value)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where}: {exc}") from None
    return parsed


def _axes(path: Path, table: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    axes = {}
    for name, values in _dotted(table).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: [axes] {name} must be a non-empty list of values.")
        parsed = tuple(_fields(path, "[axes]", {name: v})[name] for v in values)
        if len(set(parsed)) != len(parsed):
            raise ConfigError(f"{path}: [axes] {name} lists a value twice.")
        axes[name] = parsed
    return axes


def _dotted(table: dict[str, Any]) -> dict[str, Any]:
    """`model_params = { samples = [1, 5] }` (or TOML's dotted `model_params.samples = [1, 5]`)
    as the axis `model_params.samples`: each hyperparameter of a plug-in is an axis of its own."""
    flat = {}
    for name, value in table.items():
        if name in PLUGIN_PARAMS and isinstance(value, dict):
            flat.update({f"{name}.{key}": inner for key, inner in value.items()})
        else:
            flat[name] = value
    return flat


def _refuse_old_rules(path: Path, data: dict[str, Any]) -> None:
    """Grid files written before `[[rule]]` said `[[when]]`, with the fields to match beside
    `set`; they are no longer read, and the error says how to rewrite them."""
    if "when" in data:
        raise ConfigError(f"{path}: [[when]] tables are no longer read; write each as [[rule]] with the "
                          f"fields to match in when = {{...}} and the fields to give in set = {{...}}, e.g. "
                          f"when = {{ model = \"ae\" }} and set = {{ epochs = 10 }}.")


def _rule(path: Path, index: int, table: Any, axes: dict[str, tuple], plugins: dict) -> Rule:
    where = f"[[rule]] number {index}"
    if (not isinstance(table, dict) or set(table) != set(RULE_KEYS) or not isinstance(table["when"], dict)
            or not table["when"] or not isinstance(table["set"], dict)):
        raise ConfigError(f"{path}: {where} needs when = {{...}} with at least one field to match and "
                          f"set = {{...}}, and nothing else, e.g. when = {{ model = \"ae\" }} and "
                          f"set = {{ epochs = 10 }}.")
    values = named(_fields(path, f"{where} set", table["set"]), plugins, path.parent)
    for name in values.keys() & axes.keys():
        raise ConfigError(f"{path}: {where} sets '{name}', which is an axis; an axis value defines its cells.")
    match = {}
    for name, accepted in table["when"].items():
        listed = accepted if isinstance(accepted, list) else [accepted]
        match[name] = tuple(named(_fields(path, f"{where} when", {name: v}), plugins, path.parent)[name]
                            for v in listed)
    return Rule(match, values)


def expand(grid: Grid, tuned: TunedLookup | None = None) -> list[Cell]:
    """Every cell of the grid, seed by seed (a whole seed first, so early results span the grid).

    A cell's config is the defaults, then [base], then each matching [[rule]], then tuned
    parameters if asked for (never on an axis), then the cell's axis values and seed."""
    cells = []
    combos = [dict(zip(grid.axes, values)) for values in itertools.product(*grid.axes.values())]
    for seed in grid.seeds:
        for combo in combos:
            fields = {**grid.base, **combo}
            for rule in grid.rules:
                if rule.applies(fields):
                    fields = {**fields, **rule.values}
            fields, study = _with_tuned(fields, combo, tuned)
            cells.append(_cell(grid, {**fields, **combo, "seed": seed}, study))
    return _distinct(grid, cells)


def _distinct(grid: Grid, cells: list[Cell]) -> list[Cell]:
    """The cells, if the grid names something to compare and no two cells train the same
    config (an axis value that only restates a default: latent_dim = [None, 20] on MNIST)."""
    if not grid.axes:
        raise ConfigError(f"{grid.path}: the grid has no [axes], so it names no cells; list at least one "
                          f"axis, e.g. [axes] model = [\"vae\"] (one value runs one config at every seed).")
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.config_hash, cell)
        if other is not cell:
            raise ConfigError(f"{grid.path}: two cells train the same config ({cell.key}, seed {cell.seed}) "
                              f"once defaults are filled in; drop the axis value that restates another.")
    return cells


def _with_tuned(fields: dict[str, Any], combo: dict[str, Any], tuned: TunedLookup | None):
    if tuned is None:
        return fields, None
    model, arch, dataset = (fields.get(name, FIELDS[name].default) for name in IDENTITY)
    found = tuned(model, arch, dataset)
    if found is None:
        return fields, None
    overrides, study = found
    kept = {name: value for name, value in overrides.items() if name not in combo and name != "seed"}
    return {**fields, **kept}, study


def _cell(grid: Grid, fields: dict[str, Any], tuned_from: str | None) -> Cell:
    names = {kind: fields.get(kind, FIELDS[kind].default) for kind in IDENTITY}
    mapped = [(kind, name, grid.plugins[(kind, name)]) for kind, name in names.items() if (kind, name) in grid.plugins]
    try:
        cfg = resolve(with_overrides(TrainConfig(), {**fields, "plugins": mapped}))
    except ConfigError as exc:
        raise ConfigError(f"{grid.path}: {exc}") from None
    varying = [name for name, values in grid.axes.items() if len(values) > 1 and name not in IDENTITY]
    key = "/".join([cfg.model, cfg.arch, cfg.dataset]
                   + [f"{name}={format_value(field_value(cfg, name))}" for name in varying])
    labels = grid.labels.get(cfg.dataset)
    if labels is not None and labels.classes:
        _check_classes(grid, cfg, labels)
    return Cell(grid.name, key, cfg, tuned_from, labels)


def _check_classes(grid: Grid, cfg: TrainConfig, labels: DatasetLabels) -> None:
    """Class names that are not one per label fail with the grid, not in every cell."""
    from aevae.data.files import relabel  # the dataset is read already (resolve)

    try:
        relabel(dataset_info(cfg), labels.title, labels.classes)
    except DataError as exc:
        raise DataError(f"{grid.path}: {exc}") from None



def format_value(value: Any) -> str:
    """A field's value as it reads in a cell key: 0.5, 1, 32,64."""
    if isinstance(value, tuple):
        return ",".join(map(format_value, value))
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def select(cells: list[Cell], only: list[str]) -> list[Cell]:
    """The cells whose config matches every `--only KEY=VALUE` (one of the values given for
    a repeated KEY: `--only dataset=mnist --only dataset=fashion_mnist` takes both)."""
    wanted: dict[str, set] = {}
    for item in only:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--only expects KEY=VALUE, e.g. --only dataset=mnist; got '{item}'.")
        name = name.strip().replace("-", "_")
        wanted.setdefault(name, set()).add(parse_value(name, value.strip()))
    for name, values in wanted.items():
        present = {field_value(c.config, name) for c in cells}
        if not values & present:
            shown = ", ".join(sorted(map(format_value, present)))
            raise ConfigError(f"--only {name}={'/'.join(sorted(map(format_value, values)))} matches "
                              f"no cell of the grid; its values of {name}: {shown}.")
    return [c for c in cells if all(field_value(c.config, n) in v for n, v in wanted.items())]
