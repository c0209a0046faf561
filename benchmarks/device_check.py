"""One device's training path end to end: every MNIST cell of the lab grid (benchmarks/lab.toml,
seed 0: {AE, VAE} x {MLP, conv}; `--only` picks others), --epochs epochs each, through the
real `train` with everything a grid cell does at its end (test metrics, the analysis, the
figures, the frames, the model), into a MemoryTracker so that no store is needed. Prints
per cell the device, the precision, the median seconds per training epoch after the first,
the whole run's seconds and the test metrics; fails if a metric is not finite or a figure,
frame or model is missing. On CUDA it also counts the host syncs of one training epoch
(torch.cuda.set_sync_debug_mode): a few per epoch, whatever the number of batches, means
none in the step (the epoch's loss is read once, at its end); a count that grows with the
batches means a sync in the step.

Written for the CUDA path on a lent GPU machine, where neither MLflow nor a store is set
up; run it with --device cpu here for the same table on this machine:

    .venv/bin/python benchmarks/device_check.py --data-dir ../shared/data --device cuda
    .venv/bin/python benchmarks/device_check.py --data-dir ../shared/data --device cpu --epochs 2
"""

from __future__ import annotations

import argparse
import math
import warnings

import torch
from tabulate import tabulate

from aevae import data
from aevae.config import TrainConfig
from aevae.resolve import resolve
from aevae.errors import AevaeError
from aevae.machine import pick_device, uses_bf16
from aevae.tracking import MemoryTracker
from aevae.training.loop import setup, train, train_epoch
from cells import grid_cells, splits_of
from timing import Timings


def syncs_per_epoch(cfg: TrainConfig, splits: data.Splits) -> int:
    """How many times one training epoch of `cfg` made the host wait for the GPU."""
    cfg = resolve(cfg)
    run = setup(cfg, splits.spec.shape)
    on_device = splits.to(run.numerics.device)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_epoch(run.loss, run.model, run.optimizer, on_device, cfg, generator, run.numerics, 1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="lab cells to run, as `aevae bench --only` takes them (default: dataset=mnist)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default: 3)")
    parser.add_argument("--subset", type=int, default=0, help="cap on images per split (default: 0, all)")
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32 (default: auto)")
    parser.add_argument("--memory-format", default="auto", help="auto, channels_last or contiguous (default: auto)")
    args = parser.parse_args()

    try:
        cells = grid_cells("lab", args.only or ["dataset=mnist"],
                           fields={"epochs": args.epochs, "subset": args.subset, "device": args.device,
                                   "precision": args.precision, "memory_format": args.memory_format})
        device = pick_device(args.device)
        loaded = splits_of(cells, args.data_dir)
    except AevaeError as exc:
        parser.error(str(exc))
    rows, problems = [], []
    for cell in cells:
        cfg, splits, tracker = cell.config, loaded[cell.config.dataset], MemoryTracker()
        result = train(cfg, splits, tracker)
        record = tracker.current
        epoch_seconds = Timings.after_warmup(r["epoch_seconds"] for r in result.history).median
        bad = [k for k, v in result.test.items() if not math.isfinite(v)]
        figures = [p for p in record["artifacts"] if p.endswith(".png")]
        if bad or not figures or not record["images"] or "model" not in record["artifacts"]:
            problems.append(f"{cell.key}: non-finite {bad}, {len(figures)} figures, "
                            f"{len(record['images'])} frame keys, model {'model' in record['artifacts']}")
        layout = result.settings  # the measured settings, and how they were chosen
        syncs = syncs_per_epoch(cfg, splits) if device.type == "cuda" else "-"
        rows.append([cell.key, str(device), "bf16" if uses_bf16(cfg.precision, device) else "fp32", layout,
                     syncs, f"{epoch_seconds:.2f}", f"{result.seconds:.1f}", f"{result.test['recon_mse']:.5f}",
                     f"{result.test.get('elbo', float('nan')):.2f}", len(figures),
                     sum(len(v) for v in record["images"].values())])
    print(tabulate(rows, headers=["cell", "device", "precision", "settings", "syncs/epoch", "s/epoch", "run s", "test recon_mse",
                                  "test elbo", "figures", "frames"]))
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
