"""Where grid cells and Optuna trials run. One interface (aevae.executors.jobs: `Executor.map(fn,
jobs, on_result)`), two implementations, interchangeable:

- `local` (the default): this process, or worker processes of this machine
  (aevae.executors.local);
- `ray`: tasks on a Ray cluster (aevae.executors.ray_cluster, the one module that imports Ray).

A job is a plain function of its payload; the executor only decides where it runs. The
executors import neither the bench nor the tuner: they run whatever function they are given.

Light: imports no Ray, so the CLI's options and `--help` cost nothing.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from aevae.executors.jobs import Executor, Job, Lost, NotRun, Stopped, WorkerEnv
from aevae.executors.options import ExecutorOptions, cluster_address, on_loopback
from aevae.extras import require

__all__ = ["Executor", "ExecutorOptions", "Job", "Lost", "NotRun", "Stopped", "WorkerEnv", "open_executor"]


@contextlib.contextmanager
def open_executor(options: ExecutorOptions, datasets=None, code: tuple[str, ...] = ()) -> Iterator[Executor]:
    """The executor `options` name, for the block: the local one (reading data through
    `datasets`, a `DataCache`, when it runs jobs in this process), or a Ray cluster, joined
    or started for the block and left or stopped after it, whose workers get `code` (the
    files and folders of the jobs' plug-ins, aevae.plugins.plugin_files) on their path."""
    if options.executor == "local":
        from aevae.executors.local import LocalExecutor
        from aevae.machine import auto_workers

        workers = auto_workers() if options.workers == "auto" else (options.workers or 1)
        yield LocalExecutor(workers, datasets)
        return
    executor = _ray_door(options.ray_address).RayExecutor(options, options.workers, tuple(code))
    try:
        yield executor
    finally:
        executor.shutdown()


def _ray_door(address: str | None):
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
