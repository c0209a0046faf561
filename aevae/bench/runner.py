"""Running grid cells: claim each in MLflow, train it into the claimed run, and say what
happened, one cell at a time in this process or in worker processes.

A cell never raises for failing: its run ends FAILED with the reason, and the outcome
carries the reason (and a traceback when the failure looks like a bug) to the grid.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable

import torch

from aevae.bench import claims
from aevae.config import to_dict
from aevae.data.cache import DataCache
from aevae.errors import AevaeError
from aevae.bench.grid import Cell
from aevae.bench.outcomes import Outcome
from aevae.training.runtime import git_state
from aevae.tracking import end_status, failure_reason, names
from aevae.tracking.heartbeat import Heartbeat
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.tracking.runs import RunStore
from aevae.tracking.workers import DEFAULT_GRACE_S, beat_interval
from aevae.training.loop import run_tags, train

EXPECTED_FAILURES = (AevaeError, MemoryError, torch.OutOfMemoryError)  # one line, no traceback
OnOutcome = Callable[[Outcome], None]


@dataclass(frozen=True)
class BenchContext:
    """What every cell of one bench shares; sent to worker processes."""

    experiment: str
    experiment_id: str
    tracking_uri: str
    data_dir: str | None
    log_artifacts: bool
    since_ms: int  # FINISHED runs started before this do not count as done (--force)
    version: str = ""  # the label of the grid's version these runs belong to (bench/versions.py)
    grace_s: float = DEFAULT_GRACE_S  # a claim whose worker has not beaten for this long is dead
    system_metrics: bool = True  # MLflow's system/* metrics while each cell trains


def bench_tags(cell: Cell, version: str = "") -> dict[str, str]:
    """What identifies the cell's run; the unlabelled version writes no label, as runs did
    before versions existed."""
    tags = {names.GRID: cell.grid, names.CELL: cell.key, names.CONFIG_HASH: cell.config_hash}
    if version:
        tags[names.VERSION_LABEL] = version
    return {**tags, names.TUNED_FROM: cell.tuned_from} if cell.tuned_from else tags


def run_cell(cell: Cell, ctx: BenchContext, cache: DataCache, task: str | None = None) -> Outcome:
    """Claim one cell and train it into the claimed run, beating for the run meanwhile;
    never raises for a failed cell. `task`: the executor's id of this cell's task, the same
    on every retry (see aevae.bench.claims)."""
    store = RunStore(ctx.tracking_uri)
    commit, dirty = git_state()
    # torch_threads: timings of cells run by N workers read differently from serial ones
    tags = {**run_tags(cell.config), **bench_tags(cell, ctx.version), names.GIT_COMMIT: commit,
            names.GIT_DIRTY: str(dirty).lower(), names.TORCH_THREADS: str(torch.get_num_threads())}
    got = claims.claim(store, ctx.experiment_id, cell.grid, cell.config_hash, cell.run_name, tags,
                       ctx.since_ms, grace_s=ctx.grace_s, task=task)
    if got.status == "finished":
        return Outcome.from_run(cell, "skipped", got.run)
    if got.status == "busy" and got.run is None:
        return Outcome(cell, "busy", reason="other workers' claims on it kept colliding; run the grid again")
    if got.status == "busy":
        worker = got.run.tags.get(names.WORKER, "?")
        return Outcome(cell, "busy", reason=f"claimed by worker {worker}, which is still running it")
    run_id = got.run.run_id
    try:
        with Heartbeat(ctx.tracking_uri, run_id, beat_interval(ctx.grace_s)):
            # params first, so a cell that fails before training still shows its whole config
            store.log_params(run_id, to_dict(cell.config))
            splits = cache.get(cell.config, ctx.data_dir)
            tracker = MlflowTracker(ctx.tracking_uri, ctx.experiment, run_id=run_id,  # the claimed run
                                    entry_point=names.ENTRY_BENCH, system_metrics=ctx.system_metrics)
            train(cell.config, splits, tracker, tags=bench_tags(cell, ctx.version), run_name=cell.run_name,
                  log_artifacts=ctx.log_artifacts)
    except BaseException as exc:
        # training ends its run itself; a failure before it started leaves the run to end here
        store.end(run_id, end_status(exc), failure_reason(exc), if_running=True)
        if not isinstance(exc, Exception):
            raise
        detail = "" if isinstance(exc, EXPECTED_FAILURES) else traceback.format_exc()
        return Outcome(cell, "failed", run_id=run_id, reason=failure_reason(exc), detail=detail)
    finished = store.get(run_id)  # with every test metric, the per-run analysis' too
    claims.retire_older(store, ctx.experiment_id, cell.grid, finished)
    return Outcome.from_run(cell, "done", finished)


_worker_cache: DataCache | None = None
_worker_sigint = signal.default_int_handler  # what Ctrl-C does during a cell
_worker_stopping = False


class _NotATerminal:
    """Workers share the parent's terminal; tqdm draws bars only on a terminal, so this keeps
    N workers' per-epoch bars from overwriting the parent's grid bar."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _init_worker(threads: int) -> None:
    global _worker_cache, _worker_sigint
    # An idle worker ignores Ctrl-C (dying there would break the pool); a worker in the
    # middle of a cell takes it, in _run_in_worker, and ends the cell's run KILLED, unless
    # the bench itself was started ignoring it (a background job, nohup).
    _worker_sigint = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    sys.stderr = _NotATerminal(sys.stderr)
    _worker_cache = DataCache()


def _run_in_worker(cell: Cell, ctx: BenchContext) -> Outcome:
    """Ctrl-C stops the cell in progress (its run ends KILLED), and the cells this worker
    had already queued are not started."""
    global _worker_stopping
    if _worker_stopping:
        return Outcome(cell, "not run")
    signal.signal(signal.SIGINT, _worker_sigint)
    try:
        return run_cell(cell, ctx, _worker_cache)
    except KeyboardInterrupt:
        _worker_stopping = True
        return Outcome(cell, "interrupted")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def threads_per_worker(workers: int) -> int:
    """Each worker's share of the cores this process may use (at least one thread)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def run_serial(cells: list[Cell], ctx: BenchContext, report: OnOutcome) -> None:
    cache = DataCache()
    for cell in cells:
        try:
            outcome = run_cell(cell, ctx, cache)
        except KeyboardInterrupt:
            report(Outcome(cell, "interrupted"))
            raise
        report(outcome)


def run_pool(cells: list[Cell], ctx: BenchContext, workers: int, report: OnOutcome) -> None:
    """Cells in `workers` spawned processes, each with its share of the cores (torch
    otherwise starts one thread per core in every process, and N workers oversubscribe)."""
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(threads_per_worker(workers),))
    futures = {pool.submit(_run_in_worker, cell, ctx): cell for cell in cells}
    try:
        for future in as_completed(futures):
            report(_result(future, futures[future]))
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # cells in progress end KILLED first
        for future, cell in futures.items():
            if future.done() and not future.cancelled():
                report(_result(future, cell))
        raise
    # Every cell has reported; a worker's interpreter takes seconds to tear torch and MLflow
    # down, which need not hold up the summary (the pool still joins them before exit).
    pool.shutdown(wait=False)


def _result(future, cell: Cell) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool:
        return Outcome(cell, "failed", reason="WorkerDied: a worker process died (killed, or out of "
                                              "memory); run the grid again to resume it.")
