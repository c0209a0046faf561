"""What the through-training frames cost a grid cell at the lab budget.

Trains the MNIST cells of the lab grid (benchmarks/lab.toml, seed 0: AE 10 epochs, VAE 15,
`image_every` left automatic, so about ten frame epochs each) into a temporary MLflow SQLite
store, artifacts on, exactly as `aevae bench lab` trains them, and times every call of
`frames.frame_inputs` (once per run) and `frames.log_frames` (once per frame epoch: the
forward passes, the drawing, the PNG encoding and MLflow's `log_image` into the store).
It prints, per cell, the frames logged, their seconds and their share of the run's wall
time (`train`, from the run's start to its end: training, evaluation, analysis, figures,
model).

    .venv/bin/python benchmarks/frames_cost.py --data-dir ../shared/data
    .venv/bin/python benchmarks/frames_cost.py --data-dir ../shared/data --only model=vae --only arch=conv

Timing the frames inside one run, rather than a run with frames against one without, keeps
other processes' noise out of a figure of a few tenths of a second against a minute.
"""

from __future__ import annotations

import argparse
import tempfile

from tabulate import tabulate

from aevae.errors import AevaeError
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training import frames
from aevae.training.loop import RunOptions, train
from cells import grid_cells, splits_of
from timing import Stopwatch, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--grid", default="lab", help="grid whose cells are timed (default: lab)")
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="cells to time, as `aevae bench --only` takes them (default: dataset=mnist)")
    args = parser.parse_args()

    try:
        cells = grid_cells(args.grid, args.only or ["dataset=mnist"])
        loaded = splits_of(cells, args.data_dir)
    except AevaeError as exc:
        parser.error(str(exc))
    store = f"sqlite:///{tempfile.mkdtemp(prefix='aevae-frames-cost-')}/mlflow.db"
    original = frames.frame_inputs, frames.log_frames
    rows, total_frames, total_run = [], 0.0, 0.0
    for cell in cells:
        spent: dict[str, list[float]] = {"inputs": [], "frames": []}
        frames.frame_inputs = recorded(original[0], spent["inputs"])
        frames.log_frames = recorded(original[1], spent["frames"])
        try:
            tracker = MlflowTracker(store, "frames-cost")
            with Stopwatch() as clock:
                train(cell.config, loaded[cell.config.dataset], tracker, options=RunOptions(cell.run_name))
            run_seconds = clock.seconds
        finally:
            frames.frame_inputs, frames.log_frames = original
        frame_seconds = sum(spent["inputs"]) + sum(spent["frames"])
        total_frames += frame_seconds
        total_run += run_seconds
        per_frame_ms = 1000 * sum(spent["frames"]) / max(len(spent["frames"]), 1)
        rows.append([cell.key, cell.config.epochs, len(spent["frames"]), f"{per_frame_ms:.0f}",
                     f"{frame_seconds:.2f}", f"{run_seconds:.1f}", f"{100 * frame_seconds / run_seconds:.2f}"])
    print(tabulate(rows, headers=["cell", "epochs", "frame epochs", "ms per frame epoch", "frames s",
                                  "run s", "frames % of run"]))
    print(f"all cells: frames {total_frames:.2f} s of {total_run:.1f} s, "
          f"{100 * total_frames / total_run:.2f}% of the runs' wall time")


if __name__ == "__main__":
    main()
