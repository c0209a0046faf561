"""One grid cell, wherever an executor runs it: claim it in MLflow, train it into the claimed
run, and say what happened.

A cell never raises for failing: its run ends FAILED with the reason, and the outcome
carries the reason (and a traceback when the failure looks like a bug) to the grid.
"""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass

import torch

from aevae.bench import claims
from aevae.bench.grid import Cell
from aevae.bench.outcomes import Outcome
from aevae.config import params
from aevae.data import relabelled
from aevae.errors import AevaeError, ConfigError, debugging
from aevae.executors import WorkerEnv
from aevae.redact import redact
from aevae.tracking import end_status, failure_reason, names
from aevae.tracking.checks import sqlite_path
from aevae.tracking.heartbeat import Heartbeat
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.tracking.runs import RunStore
from aevae.tracking.workers import DEFAULT_GRACE_S, beat_interval
from aevae.training.loop import RunOptions, run_tags, train
from aevae.training.runtime import git_state

EXPECTED_FAILURES = (AevaeError, MemoryError, torch.OutOfMemoryError)  # one line, no traceback


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


@dataclass(frozen=True)
class CellJob:
    """What an executor hands a worker for one cell."""

    cell: Cell
    ctx: BenchContext


def run_job(job: CellJob, env: WorkerEnv) -> Outcome:
    """A cell as an executor's job: its data from the worker's datasets, its claim tagged
    with the executor's task."""
    return run_cell(job.cell, job.ctx, env.datasets, task=env.task)


def run_cell(cell: Cell, ctx: BenchContext, datasets, task: str | None = None) -> Outcome:
    """Claim one cell and train it into the claimed run, beating for the run meanwhile;
    never raises for a failed cell (a store that fails mid-cell included: the grid decides
    whether it was lost). `datasets.get(cfg, data_dir)` gives the splits; `task`: the
    executor's id of this cell's task, the same on every retry (see aevae.bench.claims)."""
    run_id = ""
    store = None
    try:
        missing = sqlite_path(ctx.tracking_uri)
        if missing is not None and not missing.exists():
            # a worker on another machine than the bench's: opening would make an empty store here
            raise ConfigError(f"this worker cannot see the MLflow store {ctx.tracking_uri}, a file of the "
                              f"bench's machine; set MLFLOW_TRACKING_URI to a tracking server (make services).")
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
            store.log_params(run_id, params(cell.config))
            splits = datasets.get(cell.config, ctx.data_dir)
            if cell.labels is not None:  # the grid's title and class names of a dataset of the user's
                splits = relabelled(splits, cell.labels.title, cell.labels.classes)
            tracker = MlflowTracker(ctx.tracking_uri, ctx.experiment, run_id=run_id,  # the claimed run
                                    entry_point=names.ENTRY_BENCH, system_metrics=ctx.system_metrics)
            train(cell.config, splits, tracker, options=RunOptions(cell.run_name, bench_tags(cell, ctx.version),
                                                                   ctx.log_artifacts))
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
