"""Whether a run fits in memory, said before it trains, and in one sentence when it does not.

A config far beyond the machine (a latent of a billion units, a batch of a million images)
would otherwise fail deep inside torch's allocator with a message about bytes, or be killed
by the system. Before the model is built, `check_fits` sizes the run on torch's meta device
(which allocates nothing): its weights, their gradients and Adam's two moments (4 bytes
each), and the activations of one training batch, kept for the backward pass. A run whose
size exceeds the memory free on its device stops with the size, what is free, and the
setting whose default value would shrink it most. An allocation that fails anyway (the
estimate leaves out what torch keeps for itself) is turned into the same sentence by
`out_of_memory`.
"""

from __future__ import annotations

import dataclasses

import psutil
import torch

from aevae.config import FIELDS, TrainConfig
from aevae.errors import AevaeError

FLOAT_BYTES = 4
STATE_COPIES = 4  # weights, gradients, Adam's first and second moments
ACTIVATION_COPIES = 2  # each output kept for the backward pass, and its gradient there
# The settings a run's size grows with, the first to name when it is too big.
SIZE_SETTINGS = ("latent_dim", "hidden_dim", "conv_channels", "batch_size")


class ResourceError(AevaeError):
    """A run that does not fit in the memory of its device."""


@dataclasses.dataclass(frozen=True)
class Size:
    """Bytes a training step of a run holds."""

    state: int  # weights, gradients and optimiser moments
    activations: int  # one training batch's outputs of every layer, and their gradients

    @property
    def total(self) -> int:
        return self.state + self.activations


def shown(size: float) -> str:
    """1536 -> '1.5 KB'; bytes in powers of 1000, as `free -h` does not but disks do."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"


def size_of(cfg: TrainConfig, shape: tuple[int, int, int]) -> Size | None:
    """The size of a training step of the resolved `cfg`, measured on the meta device; None
    when the model cannot run there (then nothing is said before training)."""
    from aevae.models import build

    outputs = []

    def count(module, inputs, output) -> None:
        tensors = output if isinstance(output, (tuple, list)) else (output,)
        outputs.append(sum(t.numel() for t in tensors if isinstance(t, torch.Tensor)))

    try:
        with torch.device("meta"):
            model = build(cfg, shape)
            hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
            model.loss(torch.empty(cfg.batch_size, *shape))
        for hook in hooks:
            hook.remove()
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None
    parameters = sum(p.numel() for p in model.parameters())
    return Size(STATE_COPIES * FLOAT_BYTES * parameters, ACTIVATION_COPIES * FLOAT_BYTES * sum(outputs))


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def setting_to_lower(cfg: TrainConfig, shape: tuple[int, int, int], size: Size) -> str:
    """The setting whose default shrinks the run most, with its value now: 'latent_dim (now
    1000000000, default 20)'; the batch size when no default would shrink it."""
    from aevae.resolve import resolve

    def at_default(name: str) -> TrainConfig:
        return resolve(dataclasses.replace(cfg, **{name: FIELDS[name].default}))

    best, saved = "batch_size", 0
    for name in SIZE_SETTINGS:
        other = at_default(name)
        if getattr(other, name) == getattr(cfg, name):
            continue
        smaller = size_of(other, shape)
        if smaller is not None and size.total - smaller.total > saved:
            best, saved = name, size.total - smaller.total
    return f"{best} (now {_text(getattr(cfg, best))}, default {_text(getattr(at_default(best), best))})"


def _text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def check_fits(cfg: TrainConfig, shape: tuple[int, int, int], device: torch.device) -> None:
    """Raise ResourceError when a training step of the resolved `cfg` cannot fit in the
    memory free on `device`."""
    size = size_of(cfg, shape)
    if size is None:
        return
    free = free_bytes(device)
    if size.total > free:
        raise ResourceError(
            f"this run needs about {shown(size.total)} ({shown(size.state)} of weights, gradients and "
            f"Adam's moments, {shown(size.activations)} of activations for a batch of {cfg.batch_size}), "
            f"more than the {shown(free)} of memory free on {device.type}: lower "
            f"{setting_to_lower(cfg, shape, size)}.")


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed: Python's, CUDA's, or torch's CPU allocator's."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def out_of_memory(cfg: TrainConfig, shape: tuple[int, int, int], device: torch.device) -> ResourceError:
    """The sentence for an allocation that failed while the run trained."""
    size = size_of(cfg, shape)
    needs = f"this run needs about {shown(size.total)}" if size is not None else "this run"
    lower = setting_to_lower(cfg, shape, size) if size is not None else "batch_size"
    return ResourceError(f"{needs} and ran out of memory on {device.type} (about {shown(free_bytes(device))} "
                         f"free now): lower {lower}.")


__all__ = ["ResourceError", "Size", "check_fits", "is_out_of_memory", "out_of_memory", "size_of"]
