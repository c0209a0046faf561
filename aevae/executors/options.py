"""The executor options of `aevae bench` and `aevae tune`, and whether a command starts a
Ray cluster of its own. Light: imports no Ray."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aevae.errors import ConfigError, unknown_name

EXECUTORS = ("local", "ray")
LOCAL_CLUSTER = "local"  # --ray-address local: a cluster of this machine, for this command only


@dataclass(frozen=True)
class ExecutorOptions:
    """The executor, and how the Ray executor places each cell or worker."""

    executor: str = "local"
    ray_address: str | None = None  # None: the running cluster, else a local one for the command
    cpus_per_cell: float = 1.0  # CPUs a cell's (or tuning worker's) task asks Ray for
    gpus_per_cell: float | None = None  # None: 1 where the cluster has GPUs, else 0

    def check(self) -> "ExecutorOptions":
        if self.executor not in EXECUTORS:
            raise unknown_name("executor", self.executor, EXECUTORS)
        if self.cpus_per_cell <= 0:
            raise ConfigError("--cpus-per-cell must be more than 0.")
        if self.gpus_per_cell is not None and self.gpus_per_cell < 0:
            raise ConfigError("--gpus-per-cell must be 0 or more.")
        if self.executor == "local" and (self.ray_address or self.gpus_per_cell is not None
                                         or self.cpus_per_cell != 1.0):
            raise ConfigError("--ray-address, --cpus-per-cell and --gpus-per-cell place Ray tasks: "
                              "pass --executor ray with them.")
        return self


def starts_local_cluster(address: str | None) -> bool:
    """Whether Ray will start a cluster for this command rather than join one: no address is
    given, RAY_ADDRESS is unset, and `ray start` has recorded no cluster on this machine (in
    Ray's temporary folder, where `ray.init(address='auto')` looks too)."""
    if address is not None:
        return address == LOCAL_CLUSTER
    if os.environ.get("RAY_ADDRESS"):
        return False
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return not (Path(temp) / "ray" / "ray_current_cluster").exists()
