"""Claiming grid cells in MLflow, so that bench workers (the processes of one
`aevae bench --workers N`, or several `aevae bench` commands at once) never train the same
cell twice, and so that the runs of a killed worker are found and closed.

Why MLflow is the claim store rather than an Optuna study per grid: the skip rule (a
FINISHED run of the grid with the cell's config hash exists) reads MLflow anyway, so
claiming there keeps one source of truth instead of two stores that can disagree after a
kill -9; the run that claims a cell is the run that trains it, so a claim cannot outlive
its run; a dead local worker is recognised at once (its process is gone) instead of after a
heartbeat grace period; and the calls used (create, search, tag, delete runs) are the same
against an MLflow tracking server, so workers on several machines can share one later.
Optuna's `study.ask()` pops an enqueued trial atomically, but enqueueing the cells is itself
racy between two bench commands, and the trials would mirror the runs in a second store.

A cell is (grid, config hash, version label): the runs of another version of the grid
(aevae.bench.versions) neither finish a cell nor hold it, and are never retired here.

The protocol for one cell (the grid's runs with the cell's config hash and the version's
label, deleted ones aside):
1. Look. A FINISHED run: the cell is done. A RUNNING run tagged `claim=won`: another
   worker has it. A RUNNING `claim=pending` run is a claim in flight: look again shortly.
2. Create our run, RUNNING, tagged `claim=pending` and `worker=<host>:<pid>`.
3. Look again. If another RUNNING or FINISHED run is there, withdraw (end and delete ours)
   and back off a random moment before step 1; else tag ours `claim=won` and train into it.
Of two claims, the one created later sees the earlier in step 3 unless that one was already
withdrawn, so at most one wins; both may withdraw, and the random back-off lets one of them
win the next round. This trusts no clock, only a store where a write is seen by every read
that starts after it (SQLite, or a tracking server on a database).

A RUNNING run whose worker died is closed KILLED with its reason, at the start and end of
every bench and whenever a claim runs into it, and its cell trains again. Dead is decided:
- for a worker of this host, by its process (kill -9, a crash, a restart): at once;
- for the run of an executor task that is being retried (Ray retries a task only when the
  worker or node running it died): the retry's claim closes its earlier attempt's run, at once;
- for a worker on another host, by its heartbeat: the worker beats (the run's `heartbeat`
  tag, its clock in seconds, set every `grace / 6` s by aevae.tracking.heartbeat while the
  cell trains), and a beat older than the grace period (`--heartbeat-grace`, 180 s by
  default) means the worker or its machine died. Runs without a beat (older versions) are
  judged by their process only.
The heartbeat assumes that the clocks of the hosts sharing a store agree to well within the
grace period (NTP keeps them within milliseconds): a beat is written with the worker's clock
and aged with the judge's, so a judge whose clock runs S seconds ahead closes a silent worker
S seconds early. With the default grace of 180 s and beats every 30 s, clocks up to a minute
apart never close a live worker. Workers sharing a store should use the same grace.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from aevae.tracking import names
from aevae.tracking.records import RunRecord
from aevae.tracking.runs import RunStore
from aevae.tracking.workers import (
    DEFAULT_GRACE_S, beat_age, beat_tags, on_this_host, this_worker, worker_gone, worker_tags,
)

LOOKS = 40  # rounds of step 1 before a cell whose claims never settle is reported busy
BACKOFF_S = (0.05, 0.5)


@dataclass(frozen=True)
class Claim:
    """`status` is 'won' (run: ours, to train into), 'finished' (run: the finished one) or
    'busy' (run: the other worker's claim, or None if claims kept colliding)."""

    status: str
    run: RunRecord | None


def dead_reason(run: RunRecord, grace_s: float = DEFAULT_GRACE_S, task: str | None = None) -> str | None:
    """Why the RUNNING run's worker is dead, by the rules in the module docstring; None
    while it may live. `task`: the executor's id of the asking cell's task."""
    worker = run.tags.get(names.WORKER, "?")
    if task is not None and run.tags.get(names.WORKER_TASK) == task:
        return (f"WorkerDied: worker {worker} died during this cell (its node or process was lost) "
                f"and its task was retried.")
    if on_this_host(run.tags):
        if worker_gone(run.tags):
            return f"WorkerDied: worker {worker} ended without closing this run (killed, or the machine restarted)."
        return None
    age = beat_age(run.tags)
    if age is not None and age > grace_s:
        return (f"WorkerDied: worker {worker} has not beaten for {age:.0f} s (grace {grace_s:.0f} s): "
                f"it was killed, or its machine died or lost the network.")
    return None


def close_dead(store: RunStore, run: RunRecord, reason: str) -> None:
    store.end(run.run_id, "KILLED", reason, if_running=True)


def reap(store: RunStore, experiment_id: str, grace_s: float = DEFAULT_GRACE_S) -> list[RunRecord]:
    """Close every RUNNING run of the experiment whose worker is dead; return them."""
    dead = []
    for run in store.find(experiment_id, status="RUNNING"):
        reason = dead_reason(run, grace_s)
        if reason is not None:
            close_dead(store, run, reason)
            dead.append(run)
    return dead


def close_mine(store: RunStore, experiment_id: str, reason: str) -> list[RunRecord]:
    """Close as KILLED, with `reason`, every RUNNING run this process claimed (a stop that
    came between claiming a cell and training it); return them."""
    mine = store.find(experiment_id, status="RUNNING", tags={names.WORKER: this_worker()})
    for run in mine:
        store.end(run.run_id, "KILLED", reason)
    return mine


def close_task_runs(store: RunStore, experiment_id: str, tasks: set[str]) -> list[RunRecord]:
    """Close the runs still RUNNING of executor tasks that have all ended (a task whose every
    attempt died leaves its last run so); return them."""
    left = [run for run in store.find(experiment_id, status="RUNNING")
            if run.tags.get(names.WORKER_TASK) in tasks]
    for run in left:
        close_dead(store, run, f"WorkerDied: worker {run.tags.get(names.WORKER, '?')} died during this "
                               f"cell and the executor gave up retrying it; run the grid again to resume it.")
    return left


def version_runs(store: RunStore, experiment_id: str, grid: str, version: str, *,
                 status: str | None = None, config_hash: str | None = None) -> list[RunRecord]:
    """The grid's runs of version `version` ('' is the unlabelled one: runs without the tag,
    which a filter string cannot ask for, so the label is also checked here)."""
    tags = {names.GRID: grid, **({names.VERSION_LABEL: version} if version else {}),
            **({names.CONFIG_HASH: config_hash} if config_hash else {})}
    return [run for run in store.find(experiment_id, status=status, tags=tags)
            if run.tags.get(names.VERSION_LABEL, "") == version]


def finished_runs(store: RunStore, experiment_id: str, grid: str, version: str,
                  since_ms: int = 0) -> dict[str, RunRecord]:
    """The version's FINISHED runs started at or after `since_ms`, by config hash."""
    runs = version_runs(store, experiment_id, grid, version, status="FINISHED")
    return {run.tags[names.CONFIG_HASH]: run for run in runs
            if run.start_time >= since_ms and names.CONFIG_HASH in run.tags}


def live_runs(store: RunStore, experiment_id: str, grid: str, config_hash: str, version: str,
              since_ms: int = 0, grace_s: float = DEFAULT_GRACE_S, task: str | None = None) -> list[RunRecord]:
    """The cell's runs that count: RUNNING ones of live workers (dead ones are closed on
    the way) and FINISHED ones started at or after `since_ms`."""
    runs = version_runs(store, experiment_id, grid, version, config_hash=config_hash)
    live = []
    for run in runs:
        reason = dead_reason(run, grace_s, task) if run.status == "RUNNING" else None
        if reason is not None:
            close_dead(store, run, reason)
        elif run.status == "RUNNING":
            live.append(run)
        elif run.status == "FINISHED" and run.start_time >= since_ms:
            live.append(run)
    return live


def claim(store: RunStore, experiment_id: str, grid: str, config_hash: str, run_name: str,
          tags: dict[str, str], since_ms: int = 0, *, grace_s: float = DEFAULT_GRACE_S,
          task: str | None = None) -> Claim:
    """Claim one cell by the protocol in the module docstring; the cell's version is the
    label in `tags` (none: the unlabelled version). `task`: the executor's id of this cell's
    task, the same on every retry; a claim tagged with it died with an earlier attempt."""
    version = tags.get(names.VERSION_LABEL, "")
    others: list[RunRecord] = []
    ours = {**tags, **worker_tags(), **({names.WORKER_TASK: task} if task else {})}
    for _ in range(LOOKS):
        others = live_runs(store, experiment_id, grid, config_hash, version, since_ms, grace_s, task)
        settled = _settled(others)
        if settled is not None:
            return settled
        if not others:
            mine = store.create(experiment_id, run_name, {**ours, **beat_tags(), names.CLAIM: names.CLAIM_PENDING})
            # without `task`: our own run carries it, and is no earlier attempt
            rivals = [r for r in live_runs(store, experiment_id, grid, config_hash, version, since_ms, grace_s)
                      if r.run_id != mine.run_id]
            if not rivals:
                store.set_tags(mine.run_id, {names.CLAIM: names.CLAIM_WON})
                return Claim("won", store.get(mine.run_id))
            store.end(mine.run_id, "KILLED")
            store.delete(mine.run_id)
        time.sleep(random.uniform(*BACKOFF_S))
    return Claim("busy", others[0] if others else None)


def _settled(others: list[RunRecord]) -> Claim | None:
    """What the runs already there decide about the cell, if anything: finished beats won;
    pending claims decide nothing yet."""
    finished = [r for r in others if r.status == "FINISHED"]
    won = [r for r in others if r.status == "RUNNING" and r.tags.get(names.CLAIM) == names.CLAIM_WON]
    if finished:
        return Claim("finished", finished[0])
    if won:
        return Claim("busy", won[0])
    return None


def retire_older(store: RunStore, experiment_id: str, grid: str, keep: RunRecord) -> list[str]:
    """Delete (recoverably: MLflow's deleted state) the cell's FINISHED runs older than
    `keep` in `keep`'s version, so a forced re-run leaves exactly one finished run per cell
    and seed in it; other versions keep theirs."""
    runs = version_runs(store, experiment_id, grid, keep.tags.get(names.VERSION_LABEL, ""),
                        status="FINISHED", config_hash=keep.tags[names.CONFIG_HASH])
    retired = [r.run_id for r in runs if r.run_id != keep.run_id and r.start_time <= keep.start_time]
    for run_id in retired:
        store.set_tags(run_id, {names.SUPERSEDED_BY: keep.run_id})
        store.delete(run_id)
    return retired
