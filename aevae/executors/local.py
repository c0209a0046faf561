"""The local executor: jobs in this process (one at a time), or in N spawned worker
processes of this machine that share its cores, each with its share of torch threads (torch
otherwise starts one thread per core in every process, and N workers oversubscribe).

Stopping: the first SIGINT or SIGTERM stops every worker's job in progress (its runs end
KILLED through their `with` blocks) and no worker starts another; jobs still queued are
reported not run. Workers that do not answer within STOP_WAIT_S are killed, and the caller
closes what they left (aevae.bench.claims, aevae.tune.storage). A worker process that dies
(kill -9, out of memory) loses its job: it is reported `Lost`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import torch

from aevae.data.cache import DataCache
from aevae.executors.jobs import WORKER_DIED, Job, JobFunction, Lost, NotRun, OnResult, Stopped, WorkerEnv
from aevae.interrupts import Interrupted
from aevae.machine import usable_cores
from aevae.tracking.tracker import failure_reason

STOP_WAIT_S = 60  # seconds stopped workers get to close their jobs' runs before they are killed


def threads_per_worker(workers: int) -> int:
    """Each worker's share of the cores this process may use (at least one thread)."""
    return max(1, usable_cores() // workers)


class LocalExecutor:
    """`workers` jobs at once: 1 runs them here, one after another, reading data through
    `datasets` (a caller's cache, so what it read already is not read again)."""

    def __init__(self, workers: int = 1, datasets: DataCache | None = None):
        self.workers = workers
        self.datasets = datasets or DataCache()

    def describe(self) -> str | None:
        if self.workers == 1:
            return None
        return f"{self.workers} worker processes, {threads_per_worker(self.workers)} torch threads each"

    def require_shared(self, what: str, location: str) -> None:
        """Every worker is a process of this machine: any store will do."""

    def map(self, fn: JobFunction, jobs: list[Job], on_result: OnResult) -> None:
        if self.workers == 1 or len(jobs) <= 1:
            self._inline(fn, jobs, on_result)
        else:
            self._pool(fn, jobs, on_result)

    def _inline(self, fn: JobFunction, jobs: list[Job], on_result: OnResult) -> None:
        env = WorkerEnv(self.datasets)
        for job in jobs:
            try:
                result = fn(job.payload, env)
            except KeyboardInterrupt as exc:
                on_result(job, Stopped(failure_reason(exc)))
                raise
            on_result(job, result)

    def _pool(self, fn: JobFunction, jobs: list[Job], on_result: OnResult) -> None:
        workers = min(self.workers, len(jobs))
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                   initargs=(threads_per_worker(workers),))
        futures = {pool.submit(_run_in_worker, fn, job.payload): job for job in jobs}
        waiting = set(futures)
        try:
            for future in as_completed(futures):
                waiting.discard(future)
                on_result(futures[future], _result(future))
        except BaseException:
            stop_pool(pool, {f: futures[f] for f in waiting}, on_result)
            raise
        # Every job has reported; a worker's interpreter takes seconds to tear torch and MLflow
        # down, which need not hold up the caller (the pool still joins them before exit).
        pool.shutdown(wait=False)


def stop_pool(pool: ProcessPoolExecutor, waiting: dict, on_result: OnResult) -> None:
    """Stop the workers: queued jobs are cancelled, each worker gets SIGTERM (its job in
    progress ends, and it starts no other), and what the workers return within STOP_WAIT_S
    is reported. Workers that have not answered by then are killed."""
    for future in waiting:
        future.cancel()
    processes = list(getattr(pool, "_processes", {}).values())  # the pool's own workers
    for process in processes:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
    done, not_done = wait(waiting, timeout=STOP_WAIT_S)
    for future in done:
        with contextlib.suppress(Exception):  # the work is stopping already
            on_result(waiting[future], NotRun() if future.cancelled() else _result(future))
    if not_done:
        for process in processes:
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _result(future):
    try:
        return future.result()
    except BrokenProcessPool:
        return Lost(WORKER_DIED)


# --- Inside a worker process ------------------------------------------------------------
_worker_datasets: DataCache | None = None
_worker_signals: tuple[int, ...] = ()  # what stops a worker: SIGTERM, and SIGINT unless ignored
_worker_stopping = False  # set by the first stop signal: no other job starts in this worker


class _NotATerminal:
    """Workers share the parent's terminal; tqdm draws bars only on a terminal, so this keeps
    N workers' per-epoch bars from overwriting the parent's own bar."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _init_worker(threads: int) -> None:
    global _worker_datasets, _worker_signals
    # A worker takes the terminal's Ctrl-C and the SIGTERM the parent sends when it stops,
    # unless the parent was started ignoring Ctrl-C (nohup, a background job). Idle, a stop
    # signal is only noted (dying there would break the pool); in a job, see _run_in_worker.
    _worker_signals = tuple(s for s in (signal.SIGINT, signal.SIGTERM)
                            if signal.getsignal(s) is not signal.SIG_IGN)
    _on_stop_signals(_note_stop)
    torch.set_num_threads(threads)
    sys.stderr = _NotATerminal(sys.stderr)
    _worker_datasets = DataCache()


def _on_stop_signals(handler) -> None:
    for signum in _worker_signals:
        signal.signal(signum, handler)


def _note_stop(signum, frame) -> None:
    global _worker_stopping
    _worker_stopping = True


def _stop_job(signum, frame) -> None:
    """The first stop signal in a job raises there; later ones are only noted, so they
    cannot break the closing of the job's runs."""
    _note_stop(signum, frame)
    _on_stop_signals(_note_stop)
    raise Interrupted(signum)


def _run_in_worker(fn: JobFunction, payload):
    """A stop signal stops the job in progress and no later job starts in this worker. The
    handler is set before the flag is read, so a stop can never fall unseen between the two."""
    started = False
    try:
        _on_stop_signals(_stop_job)
        if _worker_stopping:
            return NotRun()
        started = True
        return fn(payload, WorkerEnv(_worker_datasets))
    except KeyboardInterrupt as exc:
        return Stopped(failure_reason(exc)) if started else NotRun()
    finally:
        _on_stop_signals(_note_stop)
