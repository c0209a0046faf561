"""How a run computes: on which device, in which precision and in which memory layout. One
object, made once per run from its config and the machine, and handed to everything that
runs the model (training, evaluation, frames, figures, the analysis), so the choice is made
in one place and named one way.

`precision`, `memory_format` and `device` are config fields ('auto' lets the machine
decide: aevae.machine); the resolved choice is recorded on every run as tags.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from aevae.config import TrainConfig
from aevae.machine import pick_device, uses_bf16, uses_channels_last


@dataclass(frozen=True)
class Numerics:
    """The device, whether the forward pass autocasts to bf16 (weights and optimiser state
    stay fp32), and whether conv weights and activations are kept channels-last."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    @classmethod
    def of(cls, cfg: TrainConfig) -> "Numerics":
        """What `cfg` asks for, its `auto`s resolved on this machine."""
        device = pick_device(cfg.device)
        return cls(device, uses_bf16(cfg.precision, device), uses_channels_last(cfg.memory_format, cfg.arch, device))

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of a forward pass: bf16 autocast, or nothing."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, in the memory layout (inputs follow the weights' format
        inside each convolution, so only the model is converted)."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    @property
    def precision_name(self) -> str:
        """As the run's `precision` tag says it."""
        return "bf16-autocast" if self.bf16 else "fp32"

    @property
    def memory_format_name(self) -> str:
        """As the run's `memory_format` tag says it."""
        return "channels_last" if self.channels_last else "contiguous"


