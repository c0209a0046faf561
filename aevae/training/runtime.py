"""Where and how a run executes (device, precision), and what it records about itself
(git commit, library versions) so its numbers can be traced and reproduced."""

from __future__ import annotations

import contextlib
import functools
import platform
import subprocess
from pathlib import Path

import torch

from aevae.errors import ConfigError
from aevae.tracking import names


def pick_device(name: str) -> torch.device:
    """'auto' takes CUDA when present; asking for CUDA where there is none is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA device is available: use --device cpu.")
    return torch.device(name)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether a run autocasts to bf16. 'auto' does on a bf16-capable CPU, where
    benchmarks/throughput.py measured every architecture faster in bf16 than in fp32, and not
    on CUDA: these models are too small for bf16 to pay there, and on an H100
    benchmarks/device_check.py measured every MNIST cell 1.2-1.35x slower per epoch in bf16
    autocast than in fp32 (the casts cost more launches than the smaller matmuls save)."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return False
    return cpu_has_bf16()


def uses_channels_last(memory_format: str, arch: str, device: torch.device) -> bool:
    """Whether a run keeps its conv weights and activations channels-last. 'auto' does for
    conv nets on CPU, where benchmarks/time_to_quality.py measured the MNIST conv cells
    reaching their targets 1.16-1.22x sooner (oneDNN's stride-2 and 1-channel convolutions
    are faster in NHWC); CIFAR-10's conv cells are unmeasured (no copy here), and an MLP has
    nothing it would change. Not on CUDA: on an H100, benchmarks/device_check.py measured the
    conv AE 1.09-1.12x slower per epoch channels-last and the conv VAE no faster."""
    if memory_format != "auto":
        return memory_format == "channels_last"
    return arch == "conv" and device.type == "cpu"


def autocast(device: torch.device, bf16: bool):
    """The autocast context for a forward pass; weights and optimiser state stay fp32."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@functools.cache
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the checkout aevae runs from; ('unknown', False) outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, check=True, timeout=10).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def environment_tags(device: torch.device, bf16: bool, channels_last: bool) -> dict[str, str]:
    """Tags that say what code and libraries produced a run, and on what."""
    from importlib.metadata import PackageNotFoundError, version

    from aevae import __version__

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:  # training into a MemoryTracker needs no MLflow
            return "not installed"

    commit, dirty = git_state()
    return {
        names.GIT_COMMIT: commit,
        names.GIT_DIRTY: str(dirty).lower(),
        names.MLFLOW_GIT_COMMIT: commit,
        names.AEVAE_VERSION: __version__,
        names.TORCH_VERSION: torch.__version__,
        names.MLFLOW_VERSION: installed("mlflow"),
        names.NUMPY_VERSION: installed("numpy"),
        names.PYTHON_VERSION: platform.python_version(),
        names.DEVICE: torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        names.PRECISION: "bf16-autocast" if bf16 else "fp32",
        names.MEMORY_FORMAT: "channels_last" if channels_last else "contiguous",
    }
