"""Training throughput per cell in fp32 and bf16 autocast, measured in one run.

This is the measurement behind precision 'auto' (aevae/machine.py: bf16 autocast on a
bf16-capable CPU). It trains each MNIST cell of the lab grid (benchmarks/lab.toml, seed 0;
`--only` picks others) for --epochs epochs through the real `train` function (no tracking,
no artifacts, no analysis) and reports the median seconds per epoch after a warm-up epoch.

    .venv/bin/python benchmarks/throughput.py --data-dir ../shared/data --epochs 3
    .venv/bin/python benchmarks/throughput.py --data-dir ../shared/data --only arch=mlp --only dataset=mnist
"""

from __future__ import annotations

import argparse
import dataclasses

import pandas as pd

from aevae.errors import AevaeError
from aevae.tracking import MemoryTracker
from aevae.training.loop import RunOptions, train
from cells import grid_cells, splits_of
from timing import Timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="lab cells to time, as `aevae bench --only` takes them (default: dataset=mnist)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is warm-up (default: 3)")
    parser.add_argument("--subset", type=int, default=0, help="cap on images per split (default: 0, all)")
    args = parser.parse_args()

    try:
        cells = grid_cells("lab", args.only or ["dataset=mnist"],
                           fields={"epochs": args.epochs, "subset": args.subset, "analysis": False})
        loaded = splits_of(cells, args.data_dir)
    except AevaeError as exc:
        parser.error(str(exc))
    rows = []
    for cell in cells:
        seconds = {}
        for precision in ("fp32", "bf16"):
            cfg = dataclasses.replace(cell.config, precision=precision)
            result = train(cfg, loaded[cfg.dataset], MemoryTracker(), options=RunOptions(artifacts=False))
            seconds[precision] = Timings.after_warmup(r["epoch_seconds"] for r in result.history).median
        rows.append({"cell": cell.key, "fp32 s/epoch": seconds["fp32"], "bf16 s/epoch": seconds["bf16"],
                     "fp32/bf16": seconds["fp32"] / seconds["bf16"]})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
