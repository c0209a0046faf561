"""How close each cell's training step runs to this machine's own matrix-multiply rate.

For every {AE, VAE} x {MLP, conv} cell it counts the floating-point operations of one
training step (forward, backward; torch.utils.flop_counter), times that step on real
images, and divides the rate it reached by the rate of one large fp32 matrix product at the
same thread count (the fastest of 20 products). A cell near 1.0 is compute-bound: only fewer operations (a smaller model,
fewer epochs) or cheaper ones (bf16 where the CPU has it) can make it much faster, not
another memory format, compiler or scheduler. A second table does the same for each
convolution of the conv cells alone (forward and backward at the shapes a training batch
gives it), which says where a conv step's time goes.

    .venv/bin/python benchmarks/roofline.py --data-dir ../shared/data --threads 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aevae import data
from aevae.config import TrainConfig, resolve
from aevae.errors import AevaeError
from aevae.training.loop import setup


def matmul_rate(size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of an fp32 [size x size] @ [size x size] product, the fastest of `repeats`: a
    ceiling, which a neighbour's load on a shared host should not lower."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


def timed(fn, steps: int) -> float:
    """Seconds per call of `fn`, after three warm-up calls."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def step_rate(cfg: TrainConfig, images: torch.Tensor, steps: int) -> tuple[float, float]:
    """(FLOP per step, steps per second) of `cfg`'s training step on the batch `images`."""
    run = setup(cfg, tuple(images.shape[1:]))
    x = images.to(run.device)

    def step() -> None:
        with run.precision:
            loss = run.model.loss(x).total
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops(), 1 / timed(step, steps)


def layer_rates(cfg: TrainConfig, images: torch.Tensor, steps: int) -> list[dict]:
    """GFLOP/s of forward plus backward of each convolution of `cfg`'s model, alone, at the
    input shape a batch of `images` gives it (the first layer's input needs no gradient)."""
    run = setup(cfg, tuple(images.shape[1:]))
    shapes = {}

    def record(module, inputs, output) -> None:
        shapes[module] = inputs[0].shape

    hooks = [m.register_forward_hook(record) for m in run.model.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        run.model.loss(images.to(run.device))
    for hook in hooks:
        hook.remove()
    rows = []
    for module, shape in shapes.items():
        x = torch.randn(shape, device=run.device)
        if run.channels_last:
            x = x.to(memory_format=torch.channels_last)
        x.requires_grad_(shape[1] != images.shape[1])

        def step() -> None:
            module(x).sum().backward()

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        rows.append({"layer": f"{type(module).__name__} {module.in_channels}->{module.out_channels} "
                              f"at {shape[2]}x{shape[3]}",
                     "GFLOP/s": counter.get_total_flops() / timed(step, steps) / 1e9})
    return rows


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $AEVAE_DATA_DIR, else ./data)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--threads", type=positive, nargs="+", default=[torch.get_num_threads()],
                        help="torch thread counts to measure at (default: torch's own)")
    parser.add_argument("--steps", type=positive, default=60, help="timed steps per cell (default: 60)")
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32 (default: auto)")
    args = parser.parse_args()

    try:
        base = resolve(TrainConfig(dataset=args.dataset, device="cpu", precision=args.precision))
        splits = data.load(base.dataset, args.data_dir, base.val_size, base.subset)
    except AevaeError as exc:
        parser.error(str(exc))
    images = splits.train.floats(slice(0, base.batch_size))
    rows, layers = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = matmul_rate()
        for row in layer_rates(resolve(dataclasses.replace(base, model="ae", arch="conv")), images, args.steps):
            layers.append({"threads": threads, **row, "of matmul": row["GFLOP/s"] * 1e9 / peak})
        for model in ("ae", "vae"):
            for arch in ("mlp", "conv"):
                cfg = resolve(dataclasses.replace(base, model=model, arch=arch))
                flops, per_second = step_rate(cfg, images, args.steps)
                rows.append({"threads": threads, "cell": f"{model}/{arch}/{cfg.dataset}",
                             "MFLOP/image": flops / len(images) / 1e6,
                             "images/s": per_second * len(images),
                             "GFLOP/s": flops * per_second / 1e9,
                             "matmul GFLOP/s": peak / 1e9,
                             "of matmul": flops * per_second / peak})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))
    print()
    print(pd.DataFrame(layers).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
