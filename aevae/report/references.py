"""Published and lab results beside our numbers: `benchmarks/references.toml`, read and
checked against the config's fields, each reference matched to the grid's cell of its
model, arch and dataset.

A reference's `measured` fields decide what its number measures (the data, binarization,
decoder likelihood, estimator); where a run's params differ, the two numbers measure
different things and the report says "setting differs: ..." instead of a difference. Its
`trained` fields (latent size, epochs, ...) are named beside the difference: how far a
different budget lands from the reference is the comparison a reader wants. The file's
format is explained at its top.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aevae.bench.defaults import REFERENCES_FILE
from aevae.bench.grid import grid_folders
from aevae.config import parse_value
from aevae.errors import AevaeError, ConfigError
from aevae.report.display import MISSING, BY_KEY, markdown_text, mean_std, number, ordered_cells
from aevae.report.runs import GridRuns

TEXT_KEYS = ("id", "cite", "source", "checked", "model", "arch", "dataset")  # required
OPTIONAL_KEYS = ("url", "network", "notes", "verified", "also_differs", "measured", "trained")
MIXED = "mixed"


class ReferencesError(AevaeError):
    """A references file that cannot be read: not TOML, an unknown key, a bad value."""


@dataclass(frozen=True)
class Reference:
    id: str
    cite: str
    source: str
    checked: str
    model: str
    arch: str
    dataset: str
    values: dict[str, float]  # metric key as aevae logs it -> the reported value
    measured: dict[str, Any]  # config field -> value; a difference makes values incomparable
    trained: dict[str, Any]  # config field -> value; a difference is named beside the values
    also_differs: tuple[str, ...] = ()  # differences no config field expresses (incomparable)
    url: str = ""
    network: str = ""
    notes: str = ""
    verified: bool = True


def default_path() -> Path | None:
    """benchmarks/references.toml in the working directory, else in the checkout."""
    for folder in grid_folders():
        if (folder / REFERENCES_FILE).is_file():
            return folder / REFERENCES_FILE
    return None


def setting(table: Any, where: str) -> dict[str, Any]:
    """A `measured` or `trained` table with each value parsed as its config field's type."""
    if not isinstance(table, dict):
        raise ReferencesError(f"{where} must be a table of config fields.")
    try:
        return {name: parse_value(name, value) for name, value in table.items()}
    except ConfigError as error:
        raise ReferencesError(f"{where}: {error}") from None


def parse_reference(entry: dict, where: str) -> Reference:
    unknown = sorted(set(entry) - {*TEXT_KEYS, *OPTIONAL_KEYS, "values"})
    if unknown:
        raise ReferencesError(f"{where} has unknown key(s) {', '.join(unknown)}; valid keys: "
                              f"{', '.join((*TEXT_KEYS, 'values', *OPTIONAL_KEYS))}.")
    missing = [k for k in (*TEXT_KEYS, "values") if k not in entry]
    if missing:
        raise ReferencesError(f"{where} lacks {', '.join(missing)}: every reference needs them.")
    values = entry["values"]
    if not isinstance(values, dict) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        raise ReferencesError(f"{where}: `values` must map metric keys (e.g. \"test/nll\") to numbers.")
    unknown = sorted(set(values) - set(BY_KEY))
    if unknown:
        raise ReferencesError(f"{where} has values of unknown metric '{unknown[0]}'; known metrics: "
                              f"{', '.join(k for k in BY_KEY if not k.startswith('params.'))}.")
    also = entry.get("also_differs", [])
    if not isinstance(also, list) or not all(isinstance(a, str) for a in also):
        raise ReferencesError(f"{where}: `also_differs` must be a list of sentences.")
    return Reference(
        **{k: str(entry[k]) for k in TEXT_KEYS}, values={k: float(v) for k, v in values.items()},
        measured=setting(entry.get("measured", {}), f"{where} [measured]"),
        trained=setting(entry.get("trained", {}), f"{where} [trained]"),
        also_differs=tuple(also), url=str(entry.get("url", "")), network=str(entry.get("network", "")),
        notes=str(entry.get("notes", "")), verified=bool(entry.get("verified", True)),
    )


def load_references(path: str | Path) -> list[Reference]:
    """Every [[reference]] of the file, checked; one clear error for a bad file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReferencesError(f"cannot read the references file {path} ({error.strerror}): "
                              f"pass an existing file.") from None
    except tomllib.TOMLDecodeError as error:
        raise ReferencesError(f"{path} is not valid TOML ({error}): fix the file.") from None
    entries = data.get("reference", [])
    if set(data) - {"reference"} or not isinstance(entries, list):
        raise ReferencesError(f"{path} holds something other than [[reference]] tables: "
                              f"see the format at the top of benchmarks/{REFERENCES_FILE}.")
    references = [parse_reference(e, f"reference {i + 1} of {path}") for i, e in enumerate(entries)]
    ids = [r.id for r in references]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ReferencesError(f"{path} uses the id(s) {', '.join(repeated)} more than once: make each id unique.")
    return references


def run_value(done: pd.DataFrame, field: str) -> Any:
    """The value of config field `field` over a cell's finished runs, parsed as the field's
    type; None when no run logged it, MIXED when the runs disagree."""
    column = f"params.{field}"
    if column not in done:
        return None
    logged = done[column].dropna().unique()
    try:
        values = {parse_value(field, v) for v in logged}
    except ConfigError:
        return MIXED
    if not values:
        return None
    return values.pop() if len(values) == 1 else MIXED


def shown(value: Any) -> str:
    if value is None:
        return "not logged"
    if isinstance(value, bool):
        return str(value).lower()
    return number(value) if isinstance(value, float) else str(value)


def differences(done: pd.DataFrame, wanted: dict[str, Any]) -> list[str]:
    """`field X vs Y` (ours, then the reference's) for each field whose runs' value is not
    the reference's."""
    found = []
    for field, theirs in wanted.items():
        ours = run_value(done, field)
        if not same(ours, theirs):
            found.append(f"{field} {shown(ours)} vs {shown(theirs)}")
    return found


def same(ours: Any, theirs: Any) -> bool:
    """Equal values; a plug-in's hyperparameter (`model_params.samples`) is read back from
    its param as text, its type being the plug-in's, so it equals a number it spells."""
    if isinstance(ours, str) and isinstance(theirs, (int, float)) and not isinstance(theirs, bool):
        try:
            return float(ours) == float(theirs)
        except ValueError:
            return False
    return ours == theirs


def difference_text(ours: float, theirs: float) -> str:
    relative = f" ({(ours - theirs) / abs(theirs):+.1%})" if theirs else ""
    return f"{'+' if ours >= theirs else '-'}{number(abs(ours - theirs))}{relative}"


def beside(grid: GridRuns, references: list[Reference]) -> pd.DataFrame:
    """One row per (cell, reference, metric) whose model, arch and dataset match: our mean
    ± std over seeds, the reference's value, their difference, and the setting's verdict."""
    first = grid.slots.drop_duplicates("cell").set_index("cell")
    rows = []
    for cell in ordered_cells(grid.slots, grid.extra_axes):
        identity = first.loc[cell]
        done = grid.finished[grid.finished["cell"] == cell]
        for ref in references:
            if (ref.model, ref.arch, ref.dataset) != (identity["model"], identity["arch"], identity["dataset"]):
                continue
            incomparable = differences(done, ref.measured) + list(ref.also_differs)
            trained = differences(done, ref.trained)
            if done.empty:
                verdict = "no finished run"
            elif incomparable:
                verdict = "setting differs: " + "; ".join(incomparable)
            else:
                verdict = "same measurement" + ("; trained differently: " + "; ".join(trained) if trained else "")
            for key, theirs in ref.values.items():
                values = pd.to_numeric(done[key], errors="coerce").dropna() if key in done else pd.Series(dtype=float)
                if values.empty or incomparable:
                    difference = MISSING if values.empty else "not comparable"
                else:
                    difference = difference_text(float(values.mean()), theirs)
                rows.append({
                    "cell": cell, "metric": BY_KEY[key].header if key in BY_KEY else key,
                    "ours": mean_std(values, len(done)) if len(done) else MISSING,
                    "reference": f"{theirs:g} ({ref.cite}{'' if ref.verified else ', unverified'})",
                    "difference": difference, "setting": markdown_text(verdict), "_id": ref.id,
                })
    return pd.DataFrame(rows, columns=["cell", "metric", "ours", "reference", "difference", "setting", "_id"])


def source_lines(references: list[Reference], used: set[str]) -> list[str]:
    """One line per reference shown: its source, link, network and notes, and how it was
    checked when its value could not be read in the source."""
    lines = []
    for ref in (r for r in references if r.id in used):
        parts = [f"**{ref.cite}** (`{ref.id}`): {ref.source}" + (f", <{ref.url}>" if ref.url else "") + "."]
        parts += [f"Network: {ref.network}." if ref.network else "", f"{ref.notes}" if ref.notes else ""]
        if not ref.verified:
            parts.append(f"Unverified: {ref.checked}")
        lines.append(markdown_text(" ".join(p for p in parts if p)))
    return lines
