"""The one door through which a user's code enters aevae: a model, an architecture or a
dataset named by reference, or by the name an installed package registers.

A plug-in is found, in this order, as
- a built-in (the registries `aevae.models.MODELS`, `ARCHS` and `aevae.data.DATASETS`
  enter through `find` too, so there is one path);
- a name the config maps to a reference (`TrainConfig.plugins`, filled from a grid or study
  file's `[models]`, `[archs]` and `[datasets]` tables, or from a reference given as a name);
- a Python entry point of an installed package, in the group `aevae.models`, `aevae.archs`
  or `aevae.datasets` (as pytest and MLflow find their plug-ins).

A code reference is `package.module:Attribute` (imported as usual) or
`path/to/file.py:Attribute` (the file loaded as the module named by its stem, so a model
pickled with it loads back where that module is importable: MLflow's logged model carries
the file, and Ray ships it to its workers). A dataset reference may also be a file or a
folder (aevae.data reads those). Light: nothing is imported until a plug-in is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable, Iterable

from aevae.errors import ConfigError

KINDS = ("model", "arch", "dataset")
GROUPS = {kind: f"aevae.{kind}s" for kind in KINDS}  # entry-point groups
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class PluginError(ConfigError):
    """A plug-in that cannot be found, loaded, or does not follow its protocol."""


TABLES = {"models": "model", "archs": "arch", "datasets": "dataset"}  # a grid's or study's tables of plug-ins
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # names go into cell keys, tags and MLflow filter strings


@dataclass(frozen=True)
class DatasetLabels:
    """What a grid or study file calls a dataset of the user's: its title and its class
    names (empty: the data's own, or the label numbers)."""

    title: str = ""
    classes: tuple[str, ...] = ()


def named(fields: dict[str, Any], plugins: dict[tuple[str, str], str], base: Path | None = None) -> dict[str, Any]:
    """`fields` with a model, arch or dataset given as a reference replaced by its name
    (`name_of`); `plugins` learns the reference (a relative path taken from `base`)."""
    found = dict(fields)
    for kind in KINDS:
        value = found.get(kind)
        if isinstance(value, str) and is_reference(value):
            found[kind] = name_of(value)
            plugins.setdefault((kind, found[kind]), anchored(value, base))
    return found


def anchored(reference: str, base: Path | None) -> str:
    """A reference whose path is relative, taken from the folder `base` (a grid or study
    file's own), so the file works from any working folder; module references as they are."""
    where, sep, attribute = reference.rpartition(":")
    path = where if sep and where.endswith(".py") else (reference if not sep else "")
    if base is None or not path or Path(path).is_absolute() or not ("/" in path or path.endswith((".py", ".npz"))
                                                                        or os.sep in path):
        return reference
    resolved = str((base / path).resolve())
    return f"{resolved}:{attribute}" if sep and where.endswith(".py") else resolved


def is_reference(text: str) -> bool:
    """Whether `text` names a plug-in by where it is (module:Attribute, a path) rather than
    by a name."""
    return ":" in text or "/" in text or os.sep in text or text.endswith((".py", ".npz"))


def name_of(reference: str) -> str:
    """The name a referenced plug-in goes by: its attribute, lower-cased
    (`mylab.models:TCVAE` -> `tcvae`), or a file's or folder's stem (`data/digits.npz` ->
    `digits`). Names go into cell keys, tags and MLflow filter strings."""
    if ":" in reference and not Path(reference).exists():
        found = reference.rsplit(":", 1)[1]
    else:
        found = Path(reference.rstrip("/" + os.sep)).stem
    return re.sub(r"[^a-z0-9_.-]+", "_", found.lower()).strip("_") or "plugin"


def plugin_tables(path, data: dict[str, Any], base: Path | None = None
                  ) -> tuple[dict[tuple[str, str], str], dict[str, DatasetLabels]]:
    """A grid or study file's [models], [archs] and [datasets]: short names for references (a
    relative path is taken from the file's folder `base`; a dataset's entry may be a table of
    its path, title and class names). A built-in's name is refused: the built-in would be
    found first (see `find`). Errors name the file."""
    from aevae.registry import ARCH_TITLES, DATASET_INFO, MODEL_TITLES

    builtins = {"model": MODEL_TITLES, "arch": ARCH_TITLES, "dataset": DATASET_INFO}
    plugins, labels = {}, {}
    for table, kind in TABLES.items():
        entries = data.get(table, {})
        if not isinstance(entries, dict):
            raise PluginError(f'{path}: [{table}] must be a table of names, e.g. [{table}] then a line name = "...".')
        for name, entry in entries.items():
            if not _NAME.match(name):
                raise PluginError(f"{path}: [{table}] name '{name}' may hold only letters, digits, '_', '.' and '-'.")
            if name in builtins.get(kind, ()):
                raise PluginError(f"{path}: [{table}] {name} is the name of a built-in {kind}; call yours "
                                  f"something else, e.g. {name}_own.")
            if kind == "dataset" and isinstance(entry, dict):
                labels[name] = _dataset_labels(path, name, entry)
                entry = entry["path"]
            if not isinstance(entry, str) or not entry.strip():
                example = "data/images.npz" if kind == "dataset" else "mylab.models:MyModel"
                raise PluginError(f'{path}: [{table}] {name} must be a reference, e.g. {name} = "{example}".')
            plugins[(kind, name)] = anchored(entry, base)
    return plugins, labels


def _dataset_labels(path, name: str, entry: dict[str, Any]) -> DatasetLabels:
    unknown = sorted(set(entry) - {"path", "title", "classes"})
    if unknown or "path" not in entry:
        raise PluginError(f"{path}: [datasets] {name} is a reference, or a table of path (needed), "
                          f"title and classes; got {', '.join(unknown) or 'no path'}.")
    classes = entry.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise PluginError(f"{path}: [datasets] {name} classes must be a list of names.")
    return DatasetLabels(str(entry.get("title", "")), tuple(classes))


@functools.cache
def entry_point_names(kind: str) -> tuple[str, ...]:
    return tuple(sorted(ep.name for ep in entry_points(group=GROUPS[kind])))


def _entry_point(kind: str, name: str) -> EntryPoint | None:
    found = [ep for ep in entry_points(group=GROUPS[kind]) if ep.name == name]
    return found[0] if found else None


def find(kind: str, name: str, mapped: Iterable[tuple[str, str, str]], builtins: dict[str, Any],
         opener: Callable[[str, str], Any] | None = None) -> Any:
    """The `kind` plug-in called `name`: a built-in, a name `mapped` ((kind, name,
    reference) triples) gives a reference (opened by `opener(reference, kind)`, by default
    `load`: a dataset's opener also reads files and folders), or an installed package's
    entry point; an unknown name is one sentence listing the valid ones."""
    if name in builtins:
        return builtins[name]
    for entry_kind, entry_name, reference in mapped:
        if (entry_kind, entry_name) == (kind, name):
            return (opener or load)(reference, kind)
    entry = _entry_point(kind, name)
    if entry is not None:
        try:
            return entry.load()
        except Exception as exc:  # noqa: BLE001 - the user's package: say which and why, in one line
            raise PluginError(f"the {kind} '{name}' that package entry point {entry.value} registers does not "
                              f"load ({_first_line(exc)}): fix or reinstall that package.") from None
    raise unknown(kind, name, builtins)


def unknown(kind: str, name: str, builtins: dict[str, Any]) -> PluginError:
    known = sorted({*builtins, *entry_point_names(kind)})
    form = "a file path (.npz) or a folder" if kind == "dataset" else "a reference module:Class or path/file.py:Class"
    return PluginError(f"unknown {kind} '{name}'; valid {kind}s: {', '.join(known)}, or {form}.")


def split_reference(reference: str) -> tuple[str, str]:
    """('package.module' or 'path/file.py', 'Attribute') of a code reference."""
    where, sep, attribute = reference.rpartition(":")
    if not sep or not where or not _ATTRIBUTE.match(attribute):
        raise PluginError(f"'{reference}' is no code reference: write module.path:Class, or path/to/file.py:Class.")
    return where, attribute


@functools.cache
def load(reference: str, kind: str = "plug-in") -> Any:
    """The object a code reference names, its module imported (or its file loaded) once."""
    where, attribute = split_reference(reference)
    module = _load_file(where, kind) if where.endswith(".py") else _import(where, kind, reference)
    found = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise PluginError(f"the {kind} {reference} does not exist: {where} has no '{attribute}'.")
        found = getattr(found, part)
    return found


def _import(module: str, kind: str, reference: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise PluginError(f"the {kind} {reference} does not import: there is no module '{exc.name}' "
                              f"(install its package, or run from the folder that holds it).") from None
        raise PluginError(f"the {kind} {reference} does not import: it needs '{exc.name}', which is "
                          f"not installed.") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while it ran: one line, which and why
        raise PluginError(f"the {kind} {reference} does not import: {type(exc).__name__}: "
                          f"{_first_line(exc)}.") from None


def _load_file(path: str, kind: str):
    """A plug-in file, loaded as the module named by its stem; where the file is not there
    (a Ray worker on another machine), the module shipped under that name."""
    name = Path(path).stem
    if not Path(path).is_file():
        if importlib.util.find_spec(name) is not None:
            return importlib.import_module(name)
        raise PluginError(f"the {kind} file {path} does not exist: give the path of a .py file.")
    resolved = Path(path).resolve()
    known = sys.modules.get(name)
    if known is not None:
        if getattr(known, "__file__", None) and Path(known.__file__).resolve() == resolved:
            return known
        raise PluginError(f"the {kind} file {path} is named like the module '{name}' that is already "
                          f"loaded from elsewhere: rename the file.")
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file failed while it ran: one line, which and why
        del sys.modules[name]
        raise PluginError(f"the {kind} file {path} does not load: {type(exc).__name__}: {_first_line(exc)}.") from None
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def code_paths(reference: str) -> list[str]:
    """What carries a code reference's code elsewhere (MLflow's logged model, Ray's
    workers): the file of a file reference, else the folder of the module's top-level
    package (or the module's file when it is not in a package)."""
    where, _ = split_reference(reference)
    if where.endswith(".py"):
        return [str(Path(where).resolve())]
    top = where.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return []
    if spec.submodule_search_locations:
        return [str(Path(next(iter(spec.submodule_search_locations))).resolve())]
    return [str(Path(spec.origin).resolve())]


def plugin_files(plugins) -> list[str]:
    """The files and folders that carry the code of a config's plug-ins (its `plugins`, or
    several configs' together), each once: what a logged model and Ray's workers need."""
    return sorted({path for kind, _, ref in plugins if kind in ("model", "arch") and ":" in ref
                   for path in code_paths(ref)})


@functools.cache
def code_digest(reference: str) -> str:
    """A digest of the source files that carry a code reference (12 hex digits), so a run of
    changed plug-in code is a run of another config (aevae.config.config_hash)."""
    digest = hashlib.sha256()
    for root in code_paths(reference):
        files = [Path(root)] if Path(root).is_file() else sorted(Path(root).rglob("*.py"))
        for path in files:
            digest.update(str(path.relative_to(Path(root).parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
