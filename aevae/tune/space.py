"""Study definitions: which cells are tuned, what is fixed, and the search space over
TrainConfig fields. The files live in `studies/` as TOML, apart from model code; this module
reads and checks them, and turns a space into Optuna suggestions.

A study set file (`studies/<set>.toml`) looks like:

    description = "..."
    trials = 30                 # finished trials the study aims for
    pruner = "median"           # PRUNERS below
    seed = 0                    # sampler seed

    [cells]                     # one study per combination
    model = ["ae", "vae"]
    arch = ["mlp"]
    dataset = ["mnist"]

    [fixed]                     # TrainConfig fields every study sets
    epochs = 10
    image_every = 2             # trials log frames only when asked (TRIAL_DEFAULTS)

    [space]                     # TrainConfig fields every study searches
    lr = { low = 1e-4, high = 3e-3, log = true }
    batch_size = { choices = [64, 128, 256] }

    [[rule]]                    # more fixed fields and space for the matching cells:
    when = { model = "vae" }    # model, arch or dataset = a value or [values]
    fixed.epochs = 15
    space.beta = { low = 0.5, high = 2.0, log = true }

Rules apply in order, a later one overriding an earlier one's field. Grid files
(benchmarks/*.toml) say the same: `[[rule]]` with `when = {...}`, and `set = {...}` for the
fields they give. Each study is named `<set>/<model>/<arch>/<dataset>`.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from aevae.config import FIELDS, TrainConfig, field_type, parse_value, validate, with_overrides
from aevae.resolve import dataset_info, resolve
from aevae.errors import ConfigError, unknown_name
from aevae.plugins import plugin_tables
from aevae.registry import DATASET_INFO
from aevae.tune.defaults import DEFAULT_STUDIES_DIR

CELL_AXES = ("model", "arch", "dataset")


def _median(trials: int, epochs: int | None):
    # Steps are epochs, from 1, so a trial may be pruned after its first epoch; a third of the
    # study's trials (at most five) complete before the median judges anyone.
    return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, trials // 3)), n_warmup_steps=1)


def _hyperband(trials: int, epochs: int | None):
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs or "auto",
                                          reduction_factor=3)


def _no_pruning(trials: int, epochs: int | None):
    return optuna.pruners.NopPruner()


# name -> factory(trials the study aims for, epochs budget or None when epochs is searched);
# the names are also in defaults.PRUNER_NAMES, for the command line.
PRUNERS = {"median": _median, "hyperband": _hyperband, "none": _no_pruning}

# Fields that would change what the objective measures (the split, its units, the seed
# that a lucky draw would be chosen for), or only where it runs or what it logs.
NOT_SEARCHED = ("seed", "val_size", "subset", "recon_loss", "pixel_tol", "binarize", "precision", "memory_format", "device",
                "image_every")
# What a trial's config takes where a single run's would take the config default, unless the
# set file fixes it: no frames (per-epoch images of the validation split), since a study's
# dozens of short trials are read as numbers, not watched.
TRIAL_DEFAULTS = {"image_every": 0}
SET_KEYS = {"description", "trials", "pruner", "seed", "cells", "fixed", "space", "rule", "datasets"}


@dataclass(frozen=True)
class Param:
    """One searched field: a float or int range (optionally log-scaled) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def suggest(self, trial) -> Any:
        """The trial's raw value (what Optuna records; tuples travel as "32,64" strings)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if field_type(self.name)[0] is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def contains(self, raw: Any) -> bool:
        if self.choices is not None:
            return raw in self.choices
        return self.low <= raw <= self.high


@dataclass(frozen=True)
class StudySpec:
    """One study: its cell, the fixed fields, the space, and how many trials it aims for."""

    name: str
    study_set: str
    cell: str
    base: TrainConfig
    fixed: dict[str, Any]
    space: tuple[Param, ...]
    trials: int
    pruner: str
    seed: int
    description: str = ""

    @property
    def searched(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.space)

    def config(self, raw_params: dict[str, Any]) -> TrainConfig:
        """The resolved config a trial with these raw Optuna params trains."""
        return resolve(with_overrides(self.base, raw_params))

    def default_params(self) -> dict[str, Any] | None:
        """The default config's values of the searched fields, as raw Optuna params, or None
        when one of them lies outside the space (then it cannot be a trial of this study)."""
        resolved = resolve(self.base)
        raw = {p.name: to_raw(getattr(resolved, p.name)) for p in self.space}
        return raw if all(p.contains(raw[p.name]) for p in self.space) else None


def to_raw(value: Any) -> Any:
    """A config value as Optuna can store it: tuples become "a,b" strings."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value


def parse_param(name: str, spec: Any, where: str) -> Param:
    """A `{low, high, log}` or `{choices}` table, checked against the field's type."""
    if name not in FIELDS or name in CELL_AXES:
        valid = [f for f in FIELDS if f not in CELL_AXES + NOT_SEARCHED]
        raise ConfigError(f"{where}: '{name}' is not a field to search; valid fields: {', '.join(valid)}.")
    if name in NOT_SEARCHED:
        raise ConfigError(f"{where}: '{name}' cannot be searched, since it changes what the objective "
                          f"measures, or only where it runs or what it logs; set it under [fixed].")
    if not isinstance(spec, dict) or set(spec) - {"low", "high", "log", "choices"}:
        raise ConfigError(f"{where}: space.{name} must be a table {{low, high, log}} or {{choices}}.")
    if "choices" in spec:
        choices = tuple(to_raw(v) for v in spec["choices"])
        for value in choices:
            parse_value(name, value)
        if not choices or set(spec) != {"choices"}:
            raise ConfigError(f"{where}: space.{name} needs a non-empty choices list and nothing else.")
        return Param(name, choices=choices)
    scalar = field_type(name)[0]
    if scalar not in (int, float) or "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: space.{name} needs low and high (or choices, for a {scalar.__name__} field).")
    low, high = parse_value(name, spec["low"]), parse_value(name, spec["high"])
    log = bool(spec.get("log", False))
    if not low < high or (log and low <= 0):
        raise ConfigError(f"{where}: space.{name} needs low < high{' and low > 0 for log' if log else ''}.")
    return Param(name, low=low, high=high, log=log)


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(sorted(allowed))}.")


def _cells(table: dict, where: str) -> list[dict[str, str]]:
    _check_keys(table, set(CELL_AXES), f"{where} [cells]")
    axes = []
    for axis in CELL_AXES:
        values = table.get(axis)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: [cells] needs a non-empty list for '{axis}'.")
        if len(set(map(str, values))) != len(values):  # two studies of one name would be one
            raise ConfigError(f"{where}: [cells] lists a value of '{axis}' twice.")
        axes.append(values)
    return [dict(zip(CELL_AXES, combo)) for combo in itertools.product(*axes)]


def _matches(rule: Any, cell: dict[str, str], where: str) -> bool:
    """Whether a `[[rule]]` applies to `cell`: each field of its `when` holds one of the
    values given (a value or a list, as in a grid file's rules)."""
    if not isinstance(rule, dict) or not isinstance(rule.get("when"), dict) or not rule["when"]:
        raise ConfigError(f"{where} needs when = {{...}} with at least one cell field to match, "
                          f"e.g. when = {{ model = \"vae\" }}.")
    _check_keys(rule, {"when", "fixed", "space"}, where)
    _check_keys(rule["when"], set(CELL_AXES), f"{where} when")
    return all(cell[name] in (accepted if isinstance(accepted, list) else [accepted])
               for name, accepted in rule["when"].items())


def _study(set_name: str, doc: dict, cell: dict[str, str], where: str,
           plugins: dict[tuple[str, str], str]) -> StudySpec:
    """Merge the set's fixed fields and space with the rules matching `cell`, and check them."""
    fixed, raw_space = dict(doc.get("fixed", {})), dict(doc.get("space", {}))
    for index, rule in enumerate(doc.get("rule", []), 1):
        if _matches(rule, cell, f"{where} [[rule]] number {index}"):
            fixed.update(rule.get("fixed", {}))
            raw_space.update(rule.get("space", {}))
    for name in fixed:
        if name in CELL_AXES:
            raise ConfigError(f"{where}: '{name}' comes from [cells], not from fixed.")
        if name in raw_space:
            raise ConfigError(f"{where}: '{name}' is both fixed and searched; keep one.")
    space = tuple(parse_param(name, spec, where) for name, spec in raw_space.items())
    mapped = [(kind, name, plugins[(kind, name)]) for kind, name in cell.items() if (kind, name) in plugins]
    base = validate(with_overrides(TrainConfig(), {**TRIAL_DEFAULTS, **cell, **fixed, "plugins": mapped}))
    key = "/".join(cell[a] for a in CELL_AXES)
    pruner = doc.get("pruner", "median")
    if pruner not in PRUNERS:
        raise unknown_name("pruner", pruner, PRUNERS)
    spec = StudySpec(name=f"{set_name}/{key}", study_set=set_name, cell=key, base=base,
                     fixed={k: parse_value(k, v) for k, v in fixed.items()}, space=space,
                     trials=int(doc.get("trials", 20)), pruner=pruner, seed=int(doc.get("seed", 0)),
                     description=str(doc.get("description", "")))
    if spec.trials < 1:
        raise ConfigError(f"{where}: trials must be at least 1.")
    if not space:
        raise ConfigError(f"{where}: the study of {key} searches no field, so every trial would "
                          f"train the same config; give it a [space].")
    for param in space:  # every corner of the space must make a valid config
        for value in (param.choices or (param.low, param.high)):
            spec.config({param.name: value})
    return spec


def check_buildable(spec: StudySpec) -> None:
    """Build the model at every corner of the space, so a bad space (say, conv layers that do
    not divide the image) fails before the first trial rather than as a failed trial."""
    from aevae.models import build  # torch, loaded only once a study is run

    shape = dataset_info(spec.base).shape
    for param in spec.space:
        for value in (param.choices or (param.low, param.high)):
            build(spec.config({param.name: value}), shape)


def load_set(path: Path) -> list[StudySpec]:
    """Every study of one set file, checked; every error names the file."""
    where = str(path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML ({exc}); fix the file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read ({exc}).") from None
    try:
        _check_keys(doc, SET_KEYS, where)
        plugins, _ = plugin_tables(where, doc, {"dataset": DATASET_INFO})  # as a grid's (bench/grid.py)
        return [_study(path.stem, doc, cell, where, plugins) for cell in _cells(doc.get("cells", {}), where)]
    except ConfigError as exc:
        if where in str(exc):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def set_files(studies_dir: str | Path = DEFAULT_STUDIES_DIR) -> dict[str, Path]:
    """The study set files of the folder, by set name (the file's stem)."""
    folder = Path(studies_dir)
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not files:
        raise ConfigError(f"no study files (*.toml) in '{folder}'; run from the project root or pass --studies-dir.")
    return {path.stem: path for path in files}


def all_studies(studies_dir: str | Path = DEFAULT_STUDIES_DIR) -> dict[str, StudySpec]:
    """Every study defined in the folder, by name."""
    return {spec.name: spec for path in set_files(studies_dir).values() for spec in load_set(path)}


def find_study(name: str, studies_dir: str | Path = DEFAULT_STUDIES_DIR) -> StudySpec:
    """A study by its name, or by its set's name when the set holds exactly one study;
    checked down to building its models. Only the study's own set file is read, so a broken
    file of another set cannot stop it."""
    files = set_files(studies_dir)
    set_name = name.split("/", 1)[0]
    if set_name not in files:
        raise _unknown_study(name, files)
    studies = {spec.name: spec for spec in load_set(files[set_name])}
    if name in studies or (name == set_name and len(studies) == 1):
        spec = studies.get(name) or next(iter(studies.values()))
        check_buildable(spec)
        return spec
    if name == set_name:
        raise ConfigError(f"study set '{name}' holds {len(studies)} studies; name one: "
                          f"{', '.join(studies)}.")
    raise unknown_name("study name", name, studies)


def _unknown_study(name: str, files: dict[str, Path]) -> ConfigError:
    """The error for a study of no set: the names of every study that can be read, and the
    files that cannot."""
    known, broken = [], []
    for path in files.values():
        try:
            known += [spec.name for spec in load_set(path)]
        except ConfigError:
            broken.append(str(path))
    if not broken:
        return unknown_name("study name", name, known)
    return ConfigError(f"unknown study name '{name}'; valid study names: {', '.join(sorted(known)) or 'none'} "
                       f"(and {', '.join(broken)} holds errors: run a study of it to see them).")


def suggest(trial, spec: StudySpec) -> dict[str, Any]:
    """Ask the trial for every searched field; returns the raw values by field."""
    return {param.name: param.suggest(trial) for param in spec.space}
