"""What a run records about itself (git commit, library versions, machine, numerics) so
its numbers can be traced and reproduced."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

from aevae.machine import cpu
from aevae.numerics import Numerics
from aevae.tracking import names


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


def environment_tags(numerics: Numerics) -> dict[str, str]:
    """Tags that say what code and libraries produced a run, on what machine and device, and
    how it computed."""
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
        names.DEVICE: (torch.cuda.get_device_name(numerics.device) if numerics.device.type == "cuda"
                       else f"cpu ({cpu().model})"),
        names.CPU_FLAGS: " ".join(cpu().named_flags),
        names.CPU_CAPABILITY: torch.backends.cpu.get_cpu_capability(),
        names.PRECISION: numerics.precision_name,
        names.MEMORY_FORMAT: numerics.memory_format_name,
        names.TRANSPOSED_CONV: numerics.transposed_conv_name,
        names.COMPILE: "on" if numerics.compile else "off",
    }
