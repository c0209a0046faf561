"""Running grid cells: claim each in MLflow, train it into the claimed run, and say what
happened, one cell at a time in this process or in worker processes.

A cell never raises for failing: its run ends FAILED with the reason, and the outcome
carries the reason (and a traceback when the failure looks like a bug) to the grid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable

import torch

from aevae.bench import claims
from aevae.config import to_dict
from aevae.data.cache import DataCache
from aevae.errors import AevaeError, debugging
from aevae.interrupts import Interrupted
from aevae.machine import usable_cores
from aevae.redact import redact
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
STOP_WAIT_S = 60  # seconds stopped workers get to close their cells' runs before they are killed
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
    invocation: str = ""  # this bench command, tagged on every run it claims (names.BENCH_INVOCATION)


def bench_tags(cell: Cell, version: str = "") -> dict[str, str]:
    """What identifies the cell's run; the unlabelled version writes no label, as runs did
    before versions existed."""
    tags = {names.GRID: cell.grid, names.CELL: cell.key, names.CONFIG_HASH: cell.config_hash}
    if version:
        tags[names.VERSION_LABEL] = version
    return {**tags, names.TUNED_FROM: cell.tuned_from} if cell.tuned_from else tags


def run_cell(cell: Cell, ctx: BenchContext, cache: DataCache, task: str | None = None) -> Outcome:
    """Claim one cell and train it into the claimed run, beating for the run meanwhile;
    never raises for a failed cell (a store that fails mid-cell included: the grid decides
    whether it was lost). `task`: the executor's id of this cell's task, the same on every
    retry (see aevae.bench.claims)."""
    run_id = ""
    store = None
    try:
        store = RunStore(ctx.tracking_uri)
        commit, dirty = git_state()
        # torch_threads: timings of cells run by N workers read differently from serial ones
        tags = {**run_tags(cell.config), **bench_tags(cell, ctx.version), names.GIT_COMMIT: commit,
                names.GIT_DIRTY: str(dirty).lower(), names.TORCH_THREADS: str(torch.get_num_threads())}
        if ctx.invocation:
            tags[names.BENCH_INVOCATION] = ctx.invocation
        got = claims.claim(store, ctx.experiment_id, cell.grid, cell.config_hash, cell.run_name, tags,
                           ctx.since_ms, grace_s=ctx.grace_s, task=task)
        if got.status != "won":
            return claimed_elsewhere(cell, got)
        run_id = got.run.run_id
        with Heartbeat(ctx.tracking_uri, run_id, beat_interval(ctx.grace_s)):
            # params first, so a cell that fails before training still shows its whole config
            store.log_params(run_id, to_dict(cell.config))
            splits = cache.get(cell.config, ctx.data_dir)
            tracker = MlflowTracker(ctx.tracking_uri, ctx.experiment, run_id=run_id,  # the claimed run
                                    entry_point=names.ENTRY_BENCH, system_metrics=ctx.system_metrics)
            train(cell.config, splits, tracker, tags=bench_tags(cell, ctx.version), run_name=cell.run_name,
                  log_artifacts=ctx.log_artifacts)
        finished = store.get(run_id)  # with every test metric, the per-run analysis' too
        claims.retire_older(store, ctx.experiment_id, cell.grid, finished)
    except BaseException as exc:
        # training ends its run itself; a failure before it started leaves the run to end here
        if run_id:
            with contextlib.suppress(Exception):  # a store that fails too: the grid checks it
                store.end(run_id, end_status(exc), failure_reason(exc), if_running=True)
        if not isinstance(exc, Exception):
            raise
        return Outcome(cell, "failed", run_id=run_id, reason=failure_reason(exc), detail=bug_detail(exc))
    return Outcome.from_run(cell, "done", finished)


def claimed_elsewhere(cell: Cell, got: claims.Claim) -> Outcome:
    """The outcome of a cell another worker finished or holds."""
    if got.status == "finished":
        return Outcome.from_run(cell, "skipped", got.run)
    if got.run is None:
        return Outcome(cell, "busy", reason="other workers' claims on it kept colliding; run the grid again")
    worker = got.run.tags.get(names.WORKER, "?")
    return Outcome(cell, "busy", reason=f"claimed by worker {worker}, which is still running it")


def bug_detail(exc: Exception) -> str:
    """The traceback of a failure that looks like a bug, shown with --debug (AEVAE_DEBUG=1);
    otherwise a pointer to it. Expected failures (a diverging loss, missing data, no memory)
    have no detail: their reason says it all."""
    if isinstance(exc, EXPECTED_FAILURES):
        return ""
    if debugging():
        return redact(traceback.format_exc())
    return "  (an unexpected error: rerun with --debug or AEVAE_DEBUG=1 for its traceback)"


_worker_cache: DataCache | None = None
_worker_signals: tuple[int, ...] = ()  # what stops a worker: SIGTERM, and SIGINT unless ignored
_worker_stopping = False  # set by the first stop signal: no other cell starts in this worker


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
    global _worker_cache, _worker_signals
    # A worker takes the terminal's Ctrl-C and the SIGTERM the bench sends when it stops,
    # unless the bench was started ignoring Ctrl-C (nohup, a background job). Idle, a stop
    # signal is only noted (dying there would break the pool); in a cell, see _run_in_worker.
    _worker_signals = tuple(s for s in (signal.SIGINT, signal.SIGTERM)
                            if signal.getsignal(s) is not signal.SIG_IGN)
    _on_stop_signals(_note_stop)
    torch.set_num_threads(threads)
    sys.stderr = _NotATerminal(sys.stderr)
    _worker_cache = DataCache()


def _on_stop_signals(handler) -> None:
    for signum in _worker_signals:
        signal.signal(signum, handler)


def _note_stop(signum, frame) -> None:
    global _worker_stopping
    _worker_stopping = True


def _stop_cell(signum, frame) -> None:
    """The first stop signal in a cell raises there; later ones are only noted, so they
    cannot break the closing of the cell's run."""
    _note_stop(signum, frame)
    _on_stop_signals(_note_stop)
    raise Interrupted(signum)


def _run_in_worker(cell: Cell, ctx: BenchContext) -> Outcome:
    """A stop signal (the terminal's Ctrl-C, or the SIGTERM the bench sends) stops the cell
    in progress, whose run ends KILLED, and no later cell starts in this worker. The handler
    is set before the flag is read, so a stop can never fall unseen between the two."""
    started = False
    try:
        _on_stop_signals(_stop_cell)
        if _worker_stopping:
            return Outcome(cell, "not run")
        started = True
        return run_cell(cell, ctx, _worker_cache)
    except KeyboardInterrupt as exc:
        return Outcome(cell, "interrupted" if started else "not run", reason=failure_reason(exc))
    finally:
        _on_stop_signals(_note_stop)


def threads_per_worker(workers: int) -> int:
    """Each worker's share of the cores this process may use (at least one thread)."""
    return max(1, usable_cores() // workers)


def run_serial(cells: list[Cell], ctx: BenchContext, report: OnOutcome) -> None:
    cache = DataCache()
    for cell in cells:
        try:
            outcome = run_cell(cell, ctx, cache)
        except KeyboardInterrupt as exc:
            report(Outcome(cell, "interrupted", reason=failure_reason(exc)))
            raise
        report(outcome)


def run_pool(cells: list[Cell], ctx: BenchContext, workers: int, report: OnOutcome) -> None:
    """Cells in `workers` spawned processes, each with its share of the cores (torch
    otherwise starts one thread per core in every process, and N workers oversubscribe).
    `report` may raise to stop the grid (a lost store); so may a signal: then every worker
    is stopped as `stop_pool` says before the exception goes on."""
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(threads_per_worker(workers),))
    futures = {pool.submit(_run_in_worker, cell, ctx): cell for cell in cells}
    waiting = set(futures)
    try:
        for future in as_completed(futures):
            waiting.discard(future)
            report(_result(future, futures[future]))
    except BaseException:
        stop_pool(pool, {f: futures[f] for f in waiting}, report)
        raise
    # Every cell has reported; a worker's interpreter takes seconds to tear torch and MLflow
    # down, which need not hold up the summary (the pool still joins them before exit).
    pool.shutdown(wait=False)


def stop_pool(pool: ProcessPoolExecutor, waiting: dict, report: OnOutcome) -> None:
    """Stop the grid's workers: queued cells are cancelled, each worker gets SIGTERM (its
    cell in progress ends its run KILLED, and it starts no other), and what the workers say
    within STOP_WAIT_S is reported. Workers that have not answered by then are killed; the
    bench closes their runs as a dead worker's (claims.reap)."""
    for future in waiting:
        future.cancel()
    processes = list(getattr(pool, "_processes", {}).values())  # the pool's own workers
    for process in processes:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
    done, not_done = wait(waiting, timeout=STOP_WAIT_S)
    for future in done:
        if not future.cancelled():
            with contextlib.suppress(Exception):  # the grid is stopping already
                report(_result(future, waiting[future]))
    if not_done:
        for process in processes:
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _result(future, cell: Cell) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool:
        return Outcome(cell, "failed", reason="WorkerDied: a worker process died (killed, or out of "
                                              "memory); run the grid again to resume it.")
