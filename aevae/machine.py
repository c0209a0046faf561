"""The machine aevae runs on: its CPU (model and the instruction sets that decide which
kernels run), its cores, torch's build, and what each `auto` setting resolves to here.

The CPU differs between machines in ways that change both speed and numbers: bf16 autocast
is `precision=auto`'s choice only on a CPU with bf16 instructions, and oneDNN picks other
kernels with and without AVX-512. So the pytest header and `aevae bench` say which machine
they ran on, and a failure report names the path that failed.

Light at import: torch is imported inside the functions that need it.
"""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

# Instruction sets worth naming: they decide bf16 autocast's speed and oneDNN's kernels.
NAMED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
AUTO_MAX_WORKERS = 8  # each worker process holds its own copy of the datasets


@dataclass(frozen=True)
class Cpu:
    """The CPU as /proc/cpuinfo names it (platform's words elsewhere)."""

    model: str
    flags: frozenset[str]

    @property
    def named_flags(self) -> list[str]:
        return [flag for flag in NAMED_FLAGS if flag in self.flags]

    @property
    def has_bf16(self) -> bool:
        """Native bf16 instructions (AVX512-BF16 or AMX): bf16 autocast pays only there."""
        return any(flag in self.flags for flag in BF16_FLAGS)


@functools.cache
def cpu() -> Cpu:
    """This machine's CPU."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return parse_cpuinfo("")


def parse_cpuinfo(text: str) -> Cpu:
    """The first processor's model name and flags in /proc/cpuinfo's text."""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    return Cpu(model.group(1).strip() if model else (platform.processor() or platform.machine()),
               frozenset(flags.group(1).split()) if flags else frozenset())


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pick_device(name: str):
    """The torch device `name` asks for: 'auto' takes CUDA when present; asking for CUDA
    where there is none is an error."""
    import torch

    from aevae.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if name == "cuda" and not cuda_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA device is available: use --device cpu.")
    return torch.device(name)


def uses_bf16(precision: str, device) -> bool:
    """Whether a run autocasts to bf16. 'auto' does on a CPU with bf16 instructions, where
    benchmarks/throughput.py measured every architecture faster in bf16 than in fp32, and not
    on CUDA: these models are too small for bf16 to pay there, and on an H100
    benchmarks/device_check.py measured every MNIST cell 1.2-1.35x slower per epoch in bf16
    autocast than in fp32 (the casts cost more launches than the smaller matmuls save)."""
    if precision != "auto":
        return precision == "bf16"
    return device.type != "cuda" and cpu().has_bf16


def auto_workers() -> int:
    """`--workers auto` where nothing is measured (aevae tune; aevae bench measures it,
    aevae.bench.pool): one single-thread worker per core on CPU, since these small models
    use a second thread poorly (benchmarks/README.md has what it did to the lab grid on a
    2-core CPU); one worker where CUDA is present, which the cells would share."""
    if cuda_available():
        return 1
    return max(1, min(usable_cores(), AUTO_MAX_WORKERS))


def onednn_version() -> str:
    """oneDNN's version as torch's build reports it ('' when it does not say)."""
    import torch

    found = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([\d.]+)", torch.__config__.show())
    return found.group(1) if found else ""


def header_lines() -> list[str]:
    """What a test report (and a bench) says of the machine: the CPU with the flags that
    decide its kernels, torch's build and threads, and what each `auto` resolves to here."""
    import torch

    found = cpu()
    device = pick_device("auto")
    flags = " ".join(found.named_flags) or "none of " + ", ".join(NAMED_FLAGS)
    workers = auto_workers()
    return [
        f"machine: {found.model}, {usable_cores()} usable cores; flags: {flags}",
        f"torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}), "
        f"oneDNN {onednn_version() or 'unknown'}, {torch.get_num_threads()} threads",
        f"auto resolves to: device {device.type}, precision {'bf16' if uses_bf16('auto', device) else 'fp32'}, "
        f"workers {workers} ({max(1, usable_cores() // workers)} thread(s) each; aevae bench measures its own); "
        f"memory_format, transposed_conv and compile are measured per model at first use",
    ]
