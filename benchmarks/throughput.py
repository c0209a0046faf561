"""Training throughput per architecture in fp32 and bf16 autocast, measured in one run.

This is the measurement behind precision 'auto' (aevae/training/runtime.py: bf16 autocast on a
bf16-capable CPU). It trains through the real `train` function (no tracking, no
artifacts, no analysis) and reports the median seconds per epoch after a warm-up epoch.

    .venv/bin/python benchmarks/throughput.py --dataset mnist --epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import pandas as pd

from aevae import data
from aevae.config import TrainConfig
from aevae.tracking import MemoryTracker
from aevae.training.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is warm-up")
    parser.add_argument("--subset", type=int, default=0, help="cap on images per split (0 = all)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    base = TrainConfig(dataset=args.dataset, epochs=args.epochs, subset=args.subset, analysis=False)
    splits = data.load(base.dataset, args.data_dir, base.val_size, base.subset)
    rows = []
    for model in ("ae", "vae"):
        for arch in ("mlp", "conv"):
            seconds = {}
            for precision in ("fp32", "bf16"):
                cfg = dataclasses.replace(base, model=model, arch=arch, precision=precision)
                result = train(cfg, splits, MemoryTracker(), log_artifacts=False)
                seconds[precision] = statistics.median(r["epoch_seconds"] for r in result.history[1:] or result.history)
            rows.append({"model": model, "arch": arch, "fp32 s/epoch": seconds["fp32"],
                         "bf16 s/epoch": seconds["bf16"], "fp32/bf16": seconds["fp32"] / seconds["bf16"]})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
