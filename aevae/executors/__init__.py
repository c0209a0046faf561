"""Where grid cells and tuning workers run. Two executors, interchangeable:

- `local` (the default): processes of this machine, as `aevae bench --workers N` always did;
- `ray`: tasks on a Ray cluster, through aevae.executors.ray_cluster, the one module that
  imports Ray. A cell is still `aevae.bench.runner.run_cell(cell, ctx, datasets)` and a tuning
  worker `aevae.tune.study.optimize(job, datasets)`; the executor only decides where they run.

Light: imports no Ray, so the CLI's options and `--help` cost nothing.
"""

from __future__ import annotations

import os

from aevae.executors.options import ExecutorOptions, starts_local_cluster

__all__ = ["ExecutorOptions", "ray_door"]


def ray_door(address: str | None):
    """aevae.executors.ray_cluster, imported now. A cluster started for one command listens on
    127.0.0.1 only: Ray resolves 127.0.0.1 to the machine's address unless it takes clusters
    for disabled, which this variable says, and only for this process's own cluster (it must
    be set before Ray is imported; a driver that joins a cluster must not set it, or the
    cluster's other machines could not reach it)."""
    if starts_local_cluster(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from aevae.executors import ray_cluster

    return ray_cluster
