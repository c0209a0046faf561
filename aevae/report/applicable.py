"""Metrics that do not apply to a cell's model, and why.

A run whose model has no KL term, no ELBO or no likelihood (a VQ-VAE's discrete code) does
not log those metrics and says why in its `names.NOT_APPLICABLE` tag, a JSON object
`{metric key: sentence}`. The tables show such a metric as `n/a`, a note under each table
gives each reason once with the cells it applies to, and the list of runs with missing
metrics leaves it out: a metric that cannot exist is not missing.
"""

from __future__ import annotations

import json

import pandas as pd

from aevae.report.display import Column
from aevae.tracking import names

NA = "n/a"


def run_reasons(tag) -> dict[str, str]:
    """One run's tag as {metric key: reason}; no tag, or one that is not such an object
    (written by hand, cut short), says nothing applies less."""
    if not isinstance(tag, str) or not tag.strip():
        return {}
    try:
        found = json.loads(tag)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(key): " ".join(str(reason).split()) for key, reason in found.items()}


def reasons(runs: pd.DataFrame) -> dict[str, str]:
    """{metric key: reason} over the runs of one cell (every run of a cell trained the same
    model, so they agree; a run without the tag adds nothing)."""
    if names.NOT_APPLICABLE not in runs:
        return {}
    found: dict[str, str] = {}
    for tag in runs[names.NOT_APPLICABLE]:
        for key, reason in run_reasons(tag).items():
            found.setdefault(key, reason)
    return found


def by_cell(slots: pd.DataFrame) -> dict[str, dict[str, str]]:
    """{cell: {metric key: reason}} for every cell with a metric that does not apply. The
    runs that stand for its slots say so, finished or not: it is a fact of the model."""
    if names.NOT_APPLICABLE not in slots:
        return {}
    found = {cell: reasons(runs) for cell, runs in slots.groupby("cell", sort=False)}
    return {cell: keys for cell, keys in found.items() if keys}


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def note(cells: dict[str, dict[str, str]], columns: list[Column], order: list[str]) -> list[str]:
    """A sentence per distinct reason among `columns` (the table's): the metrics, the cells
    (in `order`) it applies to, and the reason."""
    grouped: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for cell in (c for c in order if c in cells):
        for column in columns:
            reason = cells[cell].get(column.key)
            if reason is not None:
                headers, where = grouped.setdefault(reason, ({}, {}))
                headers[column.header] = None
                where[cell] = None
    return [f"{and_list(list(headers))} {'is' if len(headers) == 1 else 'are'} {NA} for {', '.join(where)}: "
            f"{reason.rstrip('.')}." for reason, (headers, where) in grouped.items()]
