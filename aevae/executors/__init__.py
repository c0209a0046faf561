"""Where grid cells and tuning workers run. Two executors, interchangeable:

- `local` (the default): processes of this machine, as `aevae bench --workers N` always did;
- `ray`: tasks on a Ray cluster, through aevae.executors.ray_cluster, the one module that
  imports Ray. A cell is still `aevae.bench.runner.run_cell(cell, ctx, datasets)` and a tuning
  worker `aevae.tune.study.optimize(job, datasets)`; the executor only decides where they run.

Light: imports no Ray, so the CLI's options and `--help` cost nothing.
"""

from __future__ import annotations

import os

from aevae.executors.options import ExecutorOptions, cluster_address, on_loopback
from aevae.extras import require

__all__ = ["ExecutorOptions", "ray_door"]


def ray_door(address: str | None):
    """aevae.executors.ray_cluster, imported now. A cluster on loopback (the one a command
    starts for itself, or a head `make services` started on 127.0.0.1) is reached on
    127.0.0.1 only if Ray takes multi-machine clusters for disabled: it otherwise resolves
    127.0.0.1 to the machine's network address. The variable that says so must be set before
    Ray is imported, and only then: a driver that joins a cluster of several machines must
    listen where their workers can reach it."""
    if on_loopback(cluster_address(address)):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    require("ray", "the Ray executor")
    from aevae.executors import ray_cluster

    return ray_cluster
