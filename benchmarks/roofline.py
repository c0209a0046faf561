"""How close each cell's training step runs to this machine's own matrix-multiply rate.

For each MNIST cell of the lab grid (benchmarks/lab.toml: {AE, VAE} x {MLP, conv}; `--only`
picks others) it counts the floating-point operations of one training step (forward,
backward; torch.utils.flop_counter), times that step on real images (the median of --steps
steps after three untimed ones), and divides the rate it reached by the rate of one large
matrix product at the same thread count and at the precision the step runs in: an fp32
product for an fp32 step, a bf16 one under the same autocast for a bf16 step (`precision`
auto picks bf16 on a CPU with bf16 instructions, and a bf16 product's rate there is not an
fp32 one's), each the fastest of 20 products. A bf16 step also gets its fraction of the fp32
product's rate. A cell near 1.0 is compute-bound: only fewer operations (a
smaller model, fewer epochs) or cheaper ones (bf16 where the CPU has it) can make it much
faster, not another memory format, compiler or scheduler. A second table does the same for
each convolution of the conv cells alone (forward under the step's autocast and backward, at
the shapes a training batch gives it), which says where a conv step's time goes; the
encoder's first convolution and the decoder's last transposed convolution (its output
layer) are named as such.

    .venv/bin/python benchmarks/roofline.py --data-dir ../shared/data --threads 1 2
    .venv/bin/python benchmarks/roofline.py --data-dir ../shared/data --precision bf16 --only arch=conv
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aevae.config import TrainConfig
from aevae.errors import AevaeError
from aevae.machine import uses_bf16
from aevae.training.loop import setup
from aevae.numerics import Numerics
from cells import grid_cells, splits_of
from timing import repeat

CPU = torch.device("cpu")


def matmul_rate(bf16: bool, size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of a [size x size] @ [size x size] product, the fastest of `repeats`: a ceiling,
    which a neighbour's load on a shared host should not lower. With `bf16` the operands are
    bf16 and the product runs under the autocast a bf16 step's forward runs under, so no
    cast is timed; otherwise both are fp32."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)

    numerics = Numerics(CPU, bf16=bf16)

    def product() -> None:
        with numerics.autocast():
            a @ b

    return 2 * size**3 / repeat(product, repeats, warmup=1).fastest


def step_rate(cfg: TrainConfig, images: torch.Tensor, steps: int) -> tuple[float, float, str]:
    """(FLOP per step, steps per second, settings) of `cfg`'s training step on the batch
    `images`, at the settings a run of it takes on this machine (aevae.training.measured:
    what was measured before, else the reference)."""
    run = setup(cfg, tuple(images.shape[1:]))
    x = images.to(run.numerics.device)

    def step() -> None:
        with run.numerics.autocast():
            loss = run.loss(x).total
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops(), 1 / repeat(step, steps, warmup=3).median, run.settings.settings.name


def conv_name(name: str, module: nn.Module, shape: torch.Size, index: int, count: int) -> str:
    """A convolution's row: where it sits, its channels, its input's size, its role at the ends."""
    role = ""
    if index == 0:
        role = " (the encoder's first conv)"
    elif index == count - 1 and isinstance(module, nn.ConvTranspose2d):
        role = " (the decoder's last transposed conv)"
    channels = f"{module.in_channels}->{module.out_channels}"
    return f"{name} {type(module).__name__} {channels} at {shape[2]}x{shape[3]}{role}"


def layer_rates(cfg: TrainConfig, images: torch.Tensor, steps: int) -> list[dict]:
    """GFLOP/s of forward (under the step's autocast) plus backward of each convolution of
    `cfg`'s model alone, in the order a forward pass calls them, at the input shape and dtype
    a batch of `images` gives it (the first layer's input needs no gradient, as in a step)."""
    run = setup(cfg, tuple(images.shape[1:]))
    names = {module: name for name, module in run.model.named_modules()}
    inputs_of = {}

    def record(module, inputs, output) -> None:
        inputs_of[module] = (inputs[0].shape, inputs[0].dtype)

    hooks = [m.register_forward_hook(record) for m in run.model.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad(), run.numerics.autocast():
        run.model.loss(images.to(run.numerics.device))
    for hook in hooks:
        hook.remove()
    rows = []
    for index, (module, (shape, dtype)) in enumerate(inputs_of.items()):
        x = torch.randn(shape, device=run.numerics.device, dtype=dtype)
        if run.numerics.channels_last:
            x = x.to(memory_format=torch.channels_last)
        x.requires_grad_(index > 0)

        def step() -> None:
            with run.numerics.autocast():
                y = module(x)
            y.sum().backward()

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        rows.append({"layer": conv_name(names[module], module, shape, index, len(inputs_of)),
                     "GFLOP/s": counter.get_total_flops() / repeat(step, steps, warmup=3).median / 1e9})
    return rows


def against(flop_per_s: float, peaks: dict[bool, float], bf16: bool) -> dict[str, float]:
    """A rate's columns: the ceiling at its precision and its fraction of it, and for a bf16
    rate its fraction of the fp32 ceiling too (`peaks`: bf16 -> FLOP/s of the product)."""
    fp32 = {"of fp32 matmul": flop_per_s / peaks[False]} if bf16 else {}
    return {"matmul GFLOP/s": peaks[bf16] / 1e9, "of matmul": flop_per_s / peaks[bf16], **fp32}


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
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="lab cells to measure, as `aevae bench --only` takes them (default: dataset=mnist)")
    parser.add_argument("--threads", type=positive, nargs="+", default=[torch.get_num_threads()],
                        help="torch thread counts to measure at (default: torch's own)")
    parser.add_argument("--steps", type=positive, default=60, help="timed steps per cell (default: 60)")
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32 (default: auto)")
    args = parser.parse_args()

    try:
        cells = grid_cells("lab", args.only or ["dataset=mnist"],
                           fields={"device": "cpu", "precision": args.precision})
        loaded = splits_of(cells, args.data_dir)
    except AevaeError as exc:
        parser.error(str(exc))
    rows, layers = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        # each precision's ceiling at this thread count; fp32's always, for a bf16 step's second column
        peaks = {bf16: matmul_rate(bf16) for bf16 in {False, *(uses_bf16(c.config.precision, CPU) for c in cells)}}
        for cell in cells:
            cfg = cell.config
            images = loaded[cfg.dataset].train.floats(slice(0, cfg.batch_size))
            bf16 = uses_bf16(cfg.precision, CPU)
            where = {"threads": threads, "cell": cell.key, "precision": "bf16" if bf16 else "fp32"}
            flops, per_second, settings = step_rate(cfg, images, args.steps)
            rows.append({**where, "settings": settings, "MFLOP/image": flops / len(images) / 1e6, "images/s": per_second * len(images),
                         "GFLOP/s": flops * per_second / 1e9, **against(flops * per_second, peaks, bf16)})
            if cfg.arch == "conv":
                for row in layer_rates(cfg, images, args.steps):
                    layers.append({**where, **row, **against(row["GFLOP/s"] * 1e9, peaks, bf16)})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))
    if layers:
        print()
        print(pd.DataFrame(layers).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
