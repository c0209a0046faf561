"""The one door to Ray: grid cells and tuning workers as Ray tasks on a cluster, joined or
started for one command. Nothing else in aevae imports Ray.

A cell's task calls `run_cell` and a tuning worker's task calls the `optimize` it is given,
as the local executor does. Each task asks for `--cpus-per-cell` CPUs and `--gpus-per-cell`
GPUs (Ray sets CUDA_VISIBLE_DEVICES, so `device=auto` trains on the task's own GPU), and Ray
retries a task whose worker or node died; the MLflow claims (aevae.bench.claims) keep that
from training a cell twice, and the retried task's claim closes its dead attempt's run.

Each dataset is decoded once per command, not once per task: one small task decodes it on
the driver's machine, and its result is an argument of every task that needs it. Ray copies
the decoded arrays to a node once, into that node's shared-memory object store, and every
task there maps them without a copy before cutting its own splits. The arguments are ready
before a task starts, so no task blocks on Ray inside (a task blocked in `ray.get` lends its
CPU to the next task, and the node would train more cells at once than it has CPUs).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any, Callable

import ray
import torch
from ray.exceptions import NodeDiedError, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from aevae import data
from aevae.bench import claims
from aevae.bench.grid import Cell
from aevae.bench.outcomes import Outcome
from aevae.bench.runner import BenchContext, run_cell
from aevae.config import TrainConfig
from aevae.errors import AevaeError, ConfigError
from aevae.executors.options import LOCAL_CLUSTER, ExecutorOptions, cluster_address, host_port, starts_local_cluster
from aevae.tracking.runs import RunStore

MAX_RETRIES = 3  # attempts Ray makes again after a task's worker or node died (Ray's default)
CONNECT_TIMEOUT_S = 5  # a cluster that does not answer this fast is not there
CANCEL_WAIT_S = 60  # after Ctrl-C, how long cancelled tasks get to end their runs KILLED
WORKER_DIED = ("WorkerDied: the Ray worker running this cell died (killed, out of memory, or its "
               "node was lost) and Ray's retries ran out; run the grid again to resume it.")


class ClusterError(AevaeError):
    """A Ray cluster that cannot be reached or cannot run the cells as asked."""


@ray.remote(num_cpus=0)
def _decode(name: str, root: str) -> data.Arrays | AevaeError:
    """A dataset's decoded files, or the error that says why they cannot be had (returned,
    not raised, so that each cell fails into its own run with that sentence)."""
    try:
        return data.read(name, root)
    except AevaeError as exc:
        return exc


class DecodedDatasets:
    """What `run_cell` and `optimize` ask for data (`get(cfg, data_dir)`), inside a task: the
    splits cut from the decoded arrays Ray handed the task."""

    def __init__(self, arrays: data.Arrays | AevaeError):
        self.arrays = arrays

    def get(self, cfg: TrainConfig, data_dir: str | None) -> data.Splits:
        if isinstance(self.arrays, AevaeError):
            raise type(self.arrays)(*self.arrays.args)
        return data.split(cfg.dataset, self.arrays, cfg.val_size, cfg.subset, data_dir)


def _missing_store(tracking_uri: str) -> str | None:
    """A SQLite store the task's machine cannot see (a node of another host): say so instead
    of creating an empty database there."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        return (f"ConfigError: this node cannot see the MLflow store {tracking_uri}, a file of the "
                f"driver's machine; set MLFLOW_TRACKING_URI to a tracking server (make services).")
    return None


@ray.remote
def _cell_task(cell: Cell, ctx: BenchContext, arrays: data.Arrays | AevaeError, threads: int) -> Outcome:
    torch.set_num_threads(threads)
    missing = _missing_store(ctx.tracking_uri)
    if missing:
        return Outcome(cell, "failed", reason=missing)
    # the same id on every retry of this task: its claim tells a dead attempt's run apart
    task = f"ray:{ray.get_runtime_context().get_task_id()}"
    try:
        return run_cell(cell, ctx, DecodedDatasets(arrays), task=task)
    except KeyboardInterrupt:  # ray.cancel (Ctrl-C in the driver): the run has ended KILLED
        return Outcome(cell, "interrupted")


@ray.remote
def _worker_task(work: Callable[[Any, Any], list], job: Any, arrays: data.Arrays | AevaeError,
                 threads: int) -> list:
    torch.set_num_threads(threads)
    return work(job, DecodedDatasets(arrays))


class RayCluster:
    """A Ray cluster for one command: the running one (`address`, RAY_ADDRESS, or the one
    `ray start` recorded on this machine), else a cluster of this machine started for the
    command and stopped after it, listening on 127.0.0.1. The driver prints nothing of Ray's:
    the workers' output stays in Ray's session logs (/tmp/ray/session_latest/logs)."""

    def __init__(self, options: ExecutorOptions):
        self.options = options
        self.owned = not ray.is_initialized()  # a caller's own connection is left open
        self.started = self.owned and starts_local_cluster(options.ray_address)
        if self.owned:
            self._connect()
        self.nodes = [n for n in ray.nodes() if n["Alive"]]
        self.hosts = sorted({n["NodeManagerAddress"] for n in self.nodes})
        totals = ray.cluster_resources()
        self.cpus, self.gpus = totals.get("CPU", 0), totals.get("GPU", 0)
        gpus = options.gpus_per_cell
        self.gpus_per_cell = gpus if gpus is not None else (1.0 if self.gpus else 0.0)
        self.cpus_per_cell = options.cpus_per_cell
        self._check_fits()
        self.decoded: dict[tuple[str, str], ray.ObjectRef] = {}

    def _connect(self) -> None:
        address = cluster_address(self.options.ray_address) or LOCAL_CLUSTER
        reachable = host_port(address)
        hint = ("start one with `ray start --head` (make services), or pass --ray-address local for a "
                "cluster of this machine only")
        if reachable is not None:  # Ray itself would retry for minutes
            try:
                socket.create_connection(reachable, timeout=CONNECT_TIMEOUT_S).close()
            except OSError as exc:
                raise ClusterError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); {hint}.") from None
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                     include_dashboard=False if self.started else None)
        except ConnectionError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"no Ray cluster answers at '{address}' ({reason}); {hint}.") from None

    def _cell_nodes(self) -> list[dict]:
        return [n for n in self.nodes if n["Resources"].get("CPU", 0) >= self.cpus_per_cell
                and n["Resources"].get("GPU", 0) >= self.gpus_per_cell]

    def _check_fits(self) -> None:
        """A task no node can hold would wait forever: refuse it now."""
        if not self._cell_nodes():
            most_cpus = max((n["Resources"].get("CPU", 0) for n in self.nodes), default=0)
            most_gpus = max((n["Resources"].get("GPU", 0) for n in self.nodes), default=0)
            self.shutdown()
            raise ClusterError(f"each cell asks for {self.cpus_per_cell:g} CPUs and {self.gpus_per_cell:g} "
                               f"GPUs, but no node of the Ray cluster has more than {most_cpus:g} CPUs and "
                               f"{most_gpus:g} GPUs: lower --cpus-per-cell or --gpus-per-cell.")

    def require_shared(self, what: str, location: str) -> None:
        """Refuse a store that is a file of this machine when the cluster spans several."""
        local = location.startswith("sqlite:") or "://" not in location
        if local and len(self.hosts) > 1:
            raise ConfigError(
                f"the {what} '{location}' is a file on this machine, and the Ray cluster's workers "
                f"run on {len(self.hosts)} hosts that cannot share it: pass a server "
                + ("(--storage postgresql://user:password@host:5432/optuna)" if what.startswith("Optuna")
                   else "(MLFLOW_TRACKING_URI=http://host:5000)")
                + "; make services starts both.")

    def describe(self) -> str:
        how = "started for this command" if self.started else "joined"
        return (f"Ray cluster {ray.get_runtime_context().gcs_address} ({how}): {len(self.nodes)} node(s) on "
                f"{len(self.hosts)} host(s), {self.cpus:g} CPUs, {self.gpus:g} GPUs; each task asks for "
                f"{self.cpus_per_cell:g} CPU(s) and {self.gpus_per_cell:g} GPU(s)")

    def arrays(self, dataset: str, data_dir: str | None) -> "ray.ObjectRef":
        """The dataset decoded once for the whole command, on the driver's machine (the one
        sure to have the files) unless it cannot take the task; Ray then copies the arrays
        to each node that runs a task needing them, once per node, and each task there maps
        them from shared memory without a copy. The decoding is not done per task."""
        key = (dataset, data.data_root(data_dir))
        if key not in self.decoded:
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            self.decoded[key] = _decode.options(scheduling_strategy=here).remote(*key)
        return self.decoded[key]

    def _task_options(self) -> dict:
        return {"num_cpus": self.cpus_per_cell, "num_gpus": self.gpus_per_cell, "max_retries": MAX_RETRIES}

    @property
    def threads(self) -> int:
        """Torch threads per task: its share of CPUs."""
        return max(1, int(self.cpus_per_cell))

    def run_cells(self, cells: list[Cell], ctx: BenchContext, report: Callable[[Outcome], None]) -> None:
        """Every cell as a task; report each outcome as it comes. Ctrl-C cancels the tasks
        (a running cell's run ends KILLED) and is raised again once they have stopped."""
        task = _cell_task.options(**self._task_options())
        refs = {task.remote(cell, ctx, self.arrays(cell.config.dataset, ctx.data_dir), self.threads): cell
                for cell in cells}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                report(_outcome(done[0], refs[done[0]]))
        except KeyboardInterrupt:
            for ref in _cancel(pending):
                report(_outcome(ref, refs[ref]))
            raise
        finally:
            # a task whose every attempt died left its last run RUNNING
            claims.close_task_runs(RunStore(ctx.tracking_uri), ctx.experiment_id,
                                   {f"ray:{ref.task_id().hex()}" for ref in refs})

    def run_workers(self, work: Callable[[Any, Any], list], jobs: list, dataset: str,
                    data_dir: str | None) -> list:
        """`work(job, datasets)` as one task per job (tuning workers on one study: `work` is
        aevae.tune.study.optimize), on `dataset`; returns what they returned, joined."""
        task = _worker_task.options(**self._task_options())
        arrays = self.arrays(dataset, data_dir)
        pending = [task.remote(work, job, arrays, self.threads) for job in jobs]
        ran: list = []
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    ran.extend(ray.get(done[0]))
                except (WorkerCrashedError, NodeDiedError):
                    pass  # every attempt died: the caller settles what they left (fail_orphans)
        except KeyboardInterrupt:
            _cancel(pending)
            raise
        except RayTaskError as exc:  # the work itself raised: the others would likely too
            _cancel(pending)
            raise exc.cause if isinstance(exc.cause, AevaeError) else exc from None
        return ran

    def shutdown(self) -> None:
        if self.owned and ray.is_initialized():
            ray.shutdown()


def _cancel(refs: list) -> list:
    """Cancel the tasks (Ray raises KeyboardInterrupt in running ones) and wait a while for
    them to stop; returns those that did."""
    for ref in refs:
        ray.cancel(ref)
    ended, _ = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S) if refs else ([], [])
    return ended


def _outcome(ref, cell: Cell) -> Outcome:
    try:
        return ray.get(ref)
    except TaskCancelledError:
        return Outcome(cell, "not run")
    except RayError as exc:
        if isinstance(exc, (WorkerCrashedError, NodeDiedError)):
            return Outcome(cell, "failed", reason=WORKER_DIED)
        text = str(exc).strip().splitlines()
        return Outcome(cell, "failed", reason=f"{type(exc).__name__}: {text[0] if text else ''}")
