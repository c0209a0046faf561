"""What an executor runs and what it tells back. Light: no torch, no Ray.

A job is a plain function of its payload: `fn(payload, env)`, where `env.datasets.get(cfg,
data_dir)` gives the splits a config asks for (read once per worker process, or decoded once
per machine on Ray) and `env.task` names the executor's task (the same on every retry of it;
None where nothing retries). The executor only decides where `fn` runs; `fn` is a module-level
function, so it reaches a worker process or a Ray task by name. What `fn` returns is handed to
the caller's `on_result(job, result)` as it comes; so is one of the endings below when `fn`
could not return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol


@dataclass(frozen=True)
class Job:
    """One unit of work, and the dataset it reads (decoded once per machine on Ray)."""

    payload: Any
    dataset: str | None = None
    data_dir: str | None = None
    plugins: tuple = ()  # the config's plug-ins, which may name the dataset


class Datasets(Protocol):
    def get(self, cfg, data_dir: str | None): ...


@dataclass(frozen=True)
class WorkerEnv:
    """What a job gets from where it runs."""

    datasets: Datasets
    task: str | None = None


@dataclass(frozen=True)
class Lost:
    """The worker running the job died (killed, out of memory, its machine lost) and no
    retry is left; `task` names the executor's task, whose runs the caller may close."""

    reason: str
    task: str | None = None


@dataclass(frozen=True)
class NotRun:
    """The job never started: it was still queued when the work stopped."""


@dataclass(frozen=True)
class Stopped:
    """The job was running when the work stopped (Ctrl-C, SIGTERM); its own `with` blocks
    ended what it had open."""

    reason: str


Ended = Lost | NotRun | Stopped
JobFunction = Callable[[Any, WorkerEnv], Any]
OnResult = Callable[[Job, Any], None]  # (the job, what fn returned or how it ended)
WORKER_DIED = ("WorkerDied: the worker running this job died (killed, out of memory, or its machine was "
               "lost) and no retry was left; run the command again to resume it.")


class Executor(Protocol):
    """Runs jobs: in this process, in worker processes of this machine, or as Ray tasks."""

    workers: int | None  # jobs at once, at most (None: as many as the cluster holds)

    def describe(self) -> str | None:
        """One line on where the jobs run, or None when they run in this process."""

    def require_shared(self, what: str, location: str) -> None:
        """Refuse a store that is a file of this machine when workers run on others."""

    def map(self, fn: JobFunction, jobs: list[Job], on_result: OnResult) -> None:
        """Run `fn(job.payload, env)` for every job, at most `workers` at once, and call
        `on_result(job, result)` in this process as each ends. A job that raises stops
        the others and its exception is raised here; so does `on_result` raising, and a
        stop signal (after the jobs running end and are reported)."""
