"""How a run computes: on which device, in which precision, in which memory layout, with
which formulation of its transposed convolutions and whether its loss is compiled. One
object, made once per run from its config and the machine, and handed to everything that
runs the model (training, evaluation, frames, figures, the analysis), so the choice is made
in one place and named one way.

`precision`, `memory_format`, `transposed_conv`, `compile` and `device` are config fields.
'auto' precision and device are decided by the machine's flags (aevae.machine); the other
three change how a step computes but not what, and 'auto' has them measured on the machine
(aevae.training.measured), which `Numerics.of` leaves at their reference values. The
resolved choice is recorded on every run as tags.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import tempfile
from dataclasses import dataclass

import torch

from aevae.config import TrainConfig
from aevae.machine import pick_device, uses_bf16
from aevae.models.fold import fold_transposed_convolutions


@dataclass(frozen=True)
class Numerics:
    """The device, whether the forward pass autocasts to bf16 (weights and optimiser state
    stay fp32), whether conv weights and activations are kept channels-last, whether
    transposed convolutions to an image's channels are a matrix product and a fold, whether
    the training loss is compiled, and how those three were chosen."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False
    fold: bool = False
    compile: bool = False
    settings_source: str = "config"  # aevae.training.measured.Choice.source

    @classmethod
    def of(cls, cfg: TrainConfig) -> "Numerics":
        """What `cfg` asks for: its device and precision resolved on this machine, the
        measured settings at their fixed value, or at the reference one where 'auto'."""
        device = pick_device(cfg.device)
        return cls(device, uses_bf16(cfg.precision, device), cfg.memory_format == "channels_last",
                   cfg.transposed_conv == "fold", cfg.compile == "on")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of a forward pass: bf16 autocast, or nothing."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, in the memory layout (inputs follow the weights' format
        inside each convolution, so only the model is converted)."""
        model = model.to(self.device)
        if self.fold:
            fold_transposed_convolutions(model)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def loss_of(self, model: torch.nn.Module):
        """The function a training step calls for the loss parts of a batch: the model's
        `loss`, compiled when the run compiles. Inductor draws random numbers with torch's
        own generator (`fallback_random`), so a VAE's noise is the eager run's draw."""
        if not self.compile:
            return model.loss
        import torch._inductor.config

        torch._inductor.config.fallback_random = True
        keep_inductor_cache_apart()
        return torch.compile(model.loss)

    @property
    def precision_name(self) -> str:
        """As the run's `precision` tag says it."""
        return "bf16-autocast" if self.bf16 else "fp32"

    @property
    def memory_format_name(self) -> str:
        """As the run's `memory_format` tag says it."""
        return "channels_last" if self.channels_last else "contiguous"

    @property
    def transposed_conv_name(self) -> str:
        """As the run's `transposed_conv` tag says it."""
        return "fold" if self.fold else "native"


def keep_inductor_cache_apart() -> None:
    """Inductor's on-disk cache of compiled kernels, one per ATen kernel path and thread
    count, unless the user set TORCHINDUCTOR_CACHE_DIR: its key leaves the kernel path out,
    and kernels compiled under ATEN_CPU_CAPABILITY=avx512 crashed (SIGSEGV) a process running
    ATEN_CPU_CAPABILITY=avx2 that found them there (torch 2.13 on a CPU with both)."""
    if _USERS_INDUCTOR_CACHE:
        return
    try:
        user = re.sub(r"[^A-Za-z0-9_-]", "_", getpass.getuser())
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = str(os.getuid())
    path = f"torchinductor_{user}_{torch.backends.cpu.get_cpu_capability().lower()}_t{torch.get_num_threads()}"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), path)


_USERS_INDUCTOR_CACHE = "TORCHINDUCTOR_CACHE_DIR" in os.environ  # as the process started: the user's choice
