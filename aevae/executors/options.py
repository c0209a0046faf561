"""The executor options of `aevae bench` and `aevae tune`, and whether a command starts a
Ray cluster of its own. Light: imports no Ray."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from aevae.errors import ConfigError, unknown_name

EXECUTORS = ("local", "ray")
LOCAL_CLUSTER = "local"  # --ray-address local: a cluster of this machine, for this command only


@dataclass(frozen=True)
class ExecutorOptions:
    """The executor, how many jobs (cells, trials) it runs at once, and how the Ray executor
    places each."""

    executor: str = "local"
    # Jobs at once, at most: a count, 'auto' (one 1-thread process per core locally; as many
    # as the cluster holds on Ray), or None: 1 locally, as many as the cluster holds on Ray.
    workers: int | str | None = None
    ray_address: str | None = None  # None: the running cluster, else a local one for the command
    cpus_per_cell: float = 1.0  # CPUs a cell's (or tuning worker's) task asks Ray for
    gpus_per_cell: float | None = None  # None: 1 where the cluster has GPUs, else 0

    def check(self) -> "ExecutorOptions":
        if self.executor not in EXECUTORS:
            raise unknown_name("executor", self.executor, EXECUTORS)
        if self.workers is not None and self.workers != "auto" and (
                not isinstance(self.workers, int) or self.workers < 1):
            raise ConfigError("--workers must be at least 1.")
        if self.cpus_per_cell <= 0:
            raise ConfigError("--cpus-per-cell must be more than 0.")
        if self.gpus_per_cell is not None and self.gpus_per_cell < 0:
            raise ConfigError("--gpus-per-cell must be 0 or more.")
        if self.executor == "local" and (self.ray_address or self.gpus_per_cell is not None
                                         or self.cpus_per_cell != 1.0):
            raise ConfigError("--ray-address, --cpus-per-cell and --gpus-per-cell place Ray tasks: "
                              "pass --executor ray with them.")
        return self


def cluster_address(address: str | None) -> str | None:
    """The address of the Ray cluster a command joins, or None when it starts its own: the
    given address ('local': none), else RAY_ADDRESS, else the cluster `ray start` recorded on
    this machine (in Ray's temporary folder, where `ray.init(address='auto')` looks too)."""
    if address == LOCAL_CLUSTER:
        return None
    if address not in (None, "auto"):
        return address
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    recorded = Path(temp) / "ray" / "ray_current_cluster"
    if recorded.exists():
        return recorded.read_text().strip() or "auto"
    return "auto" if address == "auto" else None


def starts_local_cluster(address: str | None) -> bool:
    return cluster_address(address) is None


def host_port(address: str) -> tuple[str, int] | None:
    """('10.0.0.5', 6379) of '10.0.0.5:6379'; None for what is not host:port (auto, ray://)."""
    host, _, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if host and "/" not in address and port.isdigit() else None


def on_loopback(address: str | None) -> bool:
    """Whether the cluster listens on this machine's loopback (or is started here)."""
    if address is None:
        return True
    found = host_port(address)
    if found is None:
        return False
    try:
        return ipaddress.ip_address(socket.gethostbyname(found[0])).is_loopback
    except (OSError, ValueError):
        return False
