"""The one door to Ray: jobs as Ray tasks on a cluster, joined or started for one command.
Nothing else in aevae imports Ray.

A job's task calls `fn(payload, env)`, as the local executor does. Each task asks for
`--cpus-per-cell` CPUs and `--gpus-per-cell` GPUs (Ray sets CUDA_VISIBLE_DEVICES, so
`device=auto` trains on the task's own GPU), and Ray retries a task whose worker or node
died; `env.task` is the same on every retry, so the caller can tell the retry's work from
its dead attempt's (aevae.bench.claims closes the dead attempt's run).

Each dataset is decoded once per command, not once per task: one small task decodes it on
the driver's machine, and its result is an argument of every task that needs it. Ray copies
the decoded arrays to a node once, into that node's shared-memory object store, and every
task there maps them without a copy before cutting its own splits. The arguments are ready
before a task starts, so no task blocks on Ray inside (a task blocked in `ray.get` lends its
CPU to the next task, and the node would run more jobs at once than it has CPUs).
"""

from __future__ import annotations

import logging
import os
import socket

import ray
import torch
from ray.exceptions import NodeDiedError, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from aevae import data
from aevae.config import TrainConfig
from aevae.errors import AevaeError, ConfigError
from aevae.executors.jobs import WORKER_DIED, Job, JobFunction, Lost, NotRun, OnResult, Stopped, WorkerEnv
from aevae.executors.options import LOCAL_CLUSTER, ExecutorOptions, cluster_address, host_port, starts_local_cluster

MAX_RETRIES = 3  # attempts Ray makes again after a task's worker or node died (Ray's default)
CONNECT_TIMEOUT_S = 5  # a cluster that does not answer this fast is not there
CANCEL_WAIT_S = 60  # after Ctrl-C, how long cancelled tasks get to end their runs KILLED
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


class ClusterError(AevaeError):
    """A Ray cluster that cannot be reached or cannot run the jobs as asked."""


@ray.remote(num_cpus=0)
def _decode(name: str, root: str, mapped: tuple) -> tuple | AevaeError:
    """A dataset's spec, source and decoded files (a plug-in's spec too: another node may
    lack its file), or the error that says why they cannot be had (returned, not raised, so
    that each job fails with that sentence in its own way)."""
    try:
        spec = data.dataset_spec(name, mapped)
        return spec, spec.source(root), data.read(name, root, mapped)
    except AevaeError as exc:
        return exc


class DecodedDatasets:
    """What a job asks for data (`get(cfg, data_dir)`), inside a task: the splits cut from
    the decoded arrays Ray handed the task."""

    def __init__(self, decoded: tuple | AevaeError | None):
        self.decoded = decoded

    def get(self, cfg: TrainConfig, data_dir: str | None) -> data.Splits:
        if isinstance(self.decoded, AevaeError):
            raise type(self.decoded)(*self.decoded.args)
        spec, source, arrays = self.decoded
        return data.cut(spec, arrays, cfg.val_size, cfg.subset, source)


@ray.remote
def _task(fn: JobFunction, payload, decoded: tuple | AevaeError | None, threads: int):
    torch.set_num_threads(threads)
    # the same id on every retry of this task: its work can tell a dead attempt's apart
    env = WorkerEnv(DecodedDatasets(decoded), task=f"ray:{ray.get_runtime_context().get_task_id()}")
    try:
        return fn(payload, env)
    except KeyboardInterrupt:  # ray.cancel (Ctrl-C in the driver): the job's runs have ended
        return Stopped("interrupted (the driver cancelled the task)")


class RayExecutor:
    """A Ray cluster for one command: the running one (`address`, RAY_ADDRESS, or the one
    `ray start` recorded on this machine), else a cluster of this machine started for the
    command and stopped by `shutdown`, listening on 127.0.0.1. The driver prints nothing of
    Ray's: the workers' output stays in Ray's session logs (/tmp/ray/session_latest/logs).

    `code`: the files and folders of the plug-ins the jobs name. Ray uploads them once, in
    the runtime environment of the command's Ray job (the only level at which it uploads
    local code), and puts them on every worker's path (a file as the module of its stem, a
    package folder as its package), so no one copies a plug-in by hand. A caller that made
    its own connection passes them to its own `ray.init(runtime_env={"py_modules": ...})`."""

    def __init__(self, options: ExecutorOptions, workers: int | str | None, code: tuple[str, ...] = ()):
        self.options = options
        self.owned = not ray.is_initialized()  # a caller's own connection is left open
        # the driver's login to an MLflow server that asks for one reaches every task, wherever it runs
        self.credentials = {name: os.environ[name] for name in CREDENTIALS if os.environ.get(name)}
        self.started = self.owned and starts_local_cluster(options.ray_address)
        if self.owned:
            self._connect(list(code))
        self.nodes = [n for n in ray.nodes() if n["Alive"]]
        self.hosts = sorted({n["NodeManagerAddress"] for n in self.nodes})
        totals = ray.cluster_resources()
        self.cpus, self.gpus = totals.get("CPU", 0), totals.get("GPU", 0)
        gpus = options.gpus_per_cell
        self.gpus_per_cell = gpus if gpus is not None else (1.0 if self.gpus else 0.0)
        self.cpus_per_cell = options.cpus_per_cell
        self._check_fits()
        self.workers = self.capacity() if workers == "auto" else workers
        self.decoded: dict[tuple[str, str], ray.ObjectRef] = {}

    def _connect(self, code: list[str]) -> None:
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
                     include_dashboard=False if self.started else None,
                     runtime_env={**({"env_vars": self.credentials} if self.credentials else {}),
                                  **({"py_modules": code} if code else {})} or None)
        except ConnectionError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"no Ray cluster answers at '{address}' ({reason}); {hint}.") from None

    def _job_nodes(self) -> list[dict]:
        return [n for n in self.nodes if n["Resources"].get("CPU", 0) >= self.cpus_per_cell
                and n["Resources"].get("GPU", 0) >= self.gpus_per_cell]

    def capacity(self) -> int:
        """How many jobs the cluster's nodes hold at once."""
        per_node = [int(n["Resources"].get("CPU", 0) // self.cpus_per_cell) if not self.gpus_per_cell else
                    int(min(n["Resources"].get("CPU", 0) // self.cpus_per_cell,
                            n["Resources"].get("GPU", 0) // self.gpus_per_cell)) for n in self._job_nodes()]
        return max(1, sum(per_node))

    def _check_fits(self) -> None:
        """A task no node can hold would wait forever: refuse it now."""
        if not self._job_nodes():
            most_cpus = max((n["Resources"].get("CPU", 0) for n in self.nodes), default=0)
            most_gpus = max((n["Resources"].get("GPU", 0) for n in self.nodes), default=0)
            self.shutdown()
            raise ClusterError(f"each task asks for {self.cpus_per_cell:g} CPUs and {self.gpus_per_cell:g} "
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
        at_once = f"at most {self.workers} at once" if self.workers else "as many at once as it holds"
        return (f"Ray cluster {ray.get_runtime_context().gcs_address} ({how}): {len(self.nodes)} node(s) on "
                f"{len(self.hosts)} host(s), {self.cpus:g} CPUs, {self.gpus:g} GPUs; each task asks for "
                f"{self.cpus_per_cell:g} CPU(s) and {self.gpus_per_cell:g} GPU(s), {at_once}")

    def _arrays(self, job: Job):
        """The job's dataset decoded once for the whole command, on the driver's machine (the
        one sure to have the files) unless it cannot take the task; Ray then copies the arrays
        to each node that runs a task needing them, once per node."""
        if job.dataset is None:
            return None
        key = (job.dataset, data.data_root(job.data_dir), job.plugins)
        if key not in self.decoded:
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            self.decoded[key] = _decode.options(scheduling_strategy=here).remote(*key)
        return self.decoded[key]

    def _task(self):
        """The task for a job: the resources it asks for."""
        return _task.options(num_cpus=self.cpus_per_cell, num_gpus=self.gpus_per_cell, max_retries=MAX_RETRIES)

    @property
    def threads(self) -> int:
        """Torch threads per task: its share of CPUs."""
        return max(1, int(self.cpus_per_cell))

    def map(self, fn: JobFunction, jobs: list[Job], on_result: OnResult) -> None:
        """Every job as a task, at most `workers` in flight; Ctrl-C cancels the tasks (a
        running job's runs end KILLED) and is raised again once they have stopped."""
        queue = list(jobs)
        running: dict = {}
        try:
            while queue or running:
                while queue and (not self.workers or len(running) < self.workers):
                    job = queue.pop(0)
                    running[self._task().remote(fn, job.payload, self._arrays(job), self.threads)] = job
                done, _ = ray.wait(list(running), num_returns=1)
                job = running.pop(done[0])
                on_result(job, _result(done[0]))
        except BaseException:
            for ref in _cancel(list(running)):
                on_result(running[ref], _result(ref))
            for job in queue:
                on_result(job, NotRun())
            raise

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


def _result(ref):
    """What the task returned, or how it ended; a job that raised raises here (its own
    exception where it is aevae's: one sentence)."""
    try:
        return ray.get(ref)
    except TaskCancelledError:
        return NotRun()
    except (WorkerCrashedError, NodeDiedError):
        return Lost(WORKER_DIED, task=f"ray:{ref.task_id().hex()}")
    except RayTaskError as exc:
        raise exc.cause if isinstance(exc.cause, AevaeError) else exc from None
    except RayError as exc:
        text = str(exc).strip().splitlines()
        return Lost(f"{type(exc).__name__}: {text[0] if text else ''}", task=f"ray:{ref.task_id().hex()}")
