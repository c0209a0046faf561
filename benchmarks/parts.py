"""Where a grid's run time goes: the seconds of each part of each run, read from MLflow.

Every run logs `seconds/<part>` (aevae.training.loop: setup, measure, inputs, train,
validation, logging, frames, test, encode, figures, analysis, model, and other: what the
parts leave), which add up to the run's wall time inside its worker, and
`analysis_seconds/<part>` for the analysis's own parts. This prints, per finished run of
one version of a grid, each part's seconds and the training steps' share of the run, then
the analysis's parts.

    .venv/bin/python benchmarks/parts.py --grid lab --label <version> --tracking-uri sqlite:///mlruns/mlflow.db
"""

from __future__ import annotations

import argparse

import pandas as pd

from aevae.tracking import names
from aevae.tracking.reader import StoreReader
from aevae.tracking import default_tracking_uri


def tables(reader: StoreReader, grid: str, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    experiment = reader.experiment(names.bench_experiment(grid))
    if experiment is None:
        raise SystemExit(f"no experiment {names.bench_experiment(grid)} in this store.")
    runs = [r for r in reader.runs(experiment.experiment_id)
            if r.status == "FINISHED" and r.tags.get(names.VERSION_LABEL) == label]
    if not runs:
        raise SystemExit(f"no finished run of version {label} of grid {grid}.")
    parts, analysis = [], []
    prefix, analysis_prefix = names.PART_SECONDS + "/", names.ANALYSIS_SECONDS + "/"
    for run in sorted(runs, key=lambda r: r.name):
        seconds = {k[len(prefix):]: v for k, v in run.metrics.items() if k.startswith(prefix)}
        total = sum(seconds.values())
        parts.append({"run": run.name, "settings": run.tags.get(names.SETTINGS, ""), "wall s": total, **seconds,
                      "train %": 100 * seconds.get(names.PART_TRAIN, 0.0) / total if total else 0.0})
        analysis.append({"run": run.name, **{k[len(analysis_prefix):]: v for k, v in run.metrics.items()
                                             if k.startswith(analysis_prefix)}})
    return pd.DataFrame(parts).fillna(0.0), pd.DataFrame(analysis).fillna(0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="lab", help="grid name (default: lab)")
    parser.add_argument("--label", required=True, help="the version whose runs to read")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: aevae's)")
    args = parser.parse_args()
    parts, analysis = tables(StoreReader(args.tracking_uri or default_tracking_uri()), args.grid, args.label)
    print(parts.to_markdown(index=False, floatfmt=".1f"))
    print()
    print(analysis.to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()
