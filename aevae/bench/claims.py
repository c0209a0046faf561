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

The protocol for one cell (the grid's runs with the cell's config hash, deleted ones aside):
1. Look. A FINISHED run: the cell is done. A RUNNING run tagged `claim=won`: another
   worker has it. A RUNNING `claim=pending` run is a claim in flight: look again shortly.
2. Create our run, RUNNING, tagged `claim=pending` and `worker=<host>:<pid>`.
3. Look again. If another RUNNING or FINISHED run is there, withdraw (end and delete ours)
   and back off a random moment before step 1; else tag ours `claim=won` and train into it.
Of two claims, the one created later sees the earlier in step 3 unless that one was already
withdrawn, so at most one wins; both may withdraw, and the random back-off lets one of them
win the next round. This trusts no clock, only a store where a write is seen by every read
that starts after it (SQLite, or a tracking server on a database).

A RUNNING run whose worker is a process of this host that no longer exists (kill -9, a
crash, a restart) is closed KILLED with its reason, at the start and end of every bench and
whenever a claim runs into it. Runs of workers on other hosts are left to those hosts;
several machines will need a heartbeat here (the run's latest metric timestamp would do).
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from aevae.tracking import FAILURE_TAG

if TYPE_CHECKING:
    from mlflow.entities import Run

CLAIM_TAG = "claim"
WORKER_TAG = "worker"
WORKER_STARTED_TAG = "worker_started"  # process start time: tells a reused pid apart
LOOKS = 40  # rounds of step 1 before a cell whose claims never settle is reported busy
BACKOFF_S = (0.05, 0.5)


@dataclass(frozen=True)
class Claim:
    """`status` is 'won' (run: ours, to train into), 'finished' (run: the finished one) or
    'busy' (run: the other worker's claim, or None if claims kept colliding)."""

    status: str
    run: Run | None


def worker_tags() -> dict[str, str]:
    """Who is claiming: this host and process, and when the process started."""
    me = psutil.Process()
    return {WORKER_TAG: f"{socket.gethostname()}:{me.pid}", WORKER_STARTED_TAG: f"{me.create_time():.3f}"}


def is_dead(run) -> bool:
    """Whether a RUNNING run's worker was a process of this host that no longer exists."""
    host, _, pid = run.data.tags.get(WORKER_TAG, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        process = psutil.Process(int(pid))
        started = float(run.data.tags.get(WORKER_STARTED_TAG, "nan"))
        return process.status() == psutil.STATUS_ZOMBIE or abs(process.create_time() - started) > 1.0
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, ValueError):
        return False


def close_dead(client, run) -> None:
    worker = run.data.tags.get(WORKER_TAG)
    client.set_tag(run.info.run_id, FAILURE_TAG,
                   f"WorkerDied: worker {worker} ended without closing this run "
                   f"(killed, or the machine restarted).")
    client.set_terminated(run.info.run_id, status="KILLED")


def search_all(client, experiment_id: str, filter_string: str) -> list:
    """Every active run of the experiment matching the filter, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def reap(client, experiment_id: str) -> list:
    """Close every RUNNING run of this host's dead workers; return them."""
    host = socket.gethostname()
    running = search_all(client, experiment_id,
                         f"attributes.status = 'RUNNING' and tags.{WORKER_TAG} LIKE '{host}:%'")
    dead = [run for run in running if is_dead(run)]
    for run in dead:
        close_dead(client, run)
    return dead


def finished_runs(client, experiment_id: str, grid: str, since_ms: int = 0) -> dict[str, object]:
    """The grid's FINISHED runs started at or after `since_ms`, by config hash."""
    runs = search_all(client, experiment_id, f"tags.grid = '{grid}' and attributes.status = 'FINISHED'")
    return {run.data.tags["config_hash"]: run for run in runs
            if run.info.start_time >= since_ms and "config_hash" in run.data.tags}


def live_runs(client, experiment_id: str, grid: str, config_hash: str, since_ms: int = 0) -> list:
    """The cell's runs that count: RUNNING ones of live workers (dead ones are closed on
    the way) and FINISHED ones started at or after `since_ms`."""
    runs = search_all(client, experiment_id, f"tags.grid = '{grid}' and tags.config_hash = '{config_hash}'")
    live = []
    for run in runs:
        if run.info.status == "RUNNING" and is_dead(run):
            close_dead(client, run)
        elif run.info.status == "RUNNING":
            live.append(run)
        elif run.info.status == "FINISHED" and run.info.start_time >= since_ms:
            live.append(run)
    return live


def claim(client, experiment_id: str, grid: str, config_hash: str, run_name: str,
          tags: dict[str, str], since_ms: int = 0) -> Claim:
    """Claim one cell by the protocol in the module docstring."""
    others: list = []
    for _ in range(LOOKS):
        others = live_runs(client, experiment_id, grid, config_hash, since_ms)
        settled = _settled(others)
        if settled is not None:
            return settled
        if not others:
            mine = client.create_run(experiment_id, run_name=run_name,
                                     tags={**tags, **worker_tags(), CLAIM_TAG: "pending"})
            run_id = mine.info.run_id
            rivals = [r for r in live_runs(client, experiment_id, grid, config_hash, since_ms)
                      if r.info.run_id != run_id]
            if not rivals:
                client.set_tag(run_id, CLAIM_TAG, "won")
                return Claim("won", client.get_run(run_id))
            client.set_terminated(run_id, status="KILLED")
            client.delete_run(run_id)
        time.sleep(random.uniform(*BACKOFF_S))
    return Claim("busy", others[0] if others else None)


def _settled(others: list) -> Claim | None:
    """What the runs already there decide about the cell, if anything: finished beats won;
    pending claims decide nothing yet."""
    finished = [r for r in others if r.info.status == "FINISHED"]
    won = [r for r in others if r.info.status == "RUNNING" and r.data.tags.get(CLAIM_TAG) == "won"]
    if finished:
        return Claim("finished", finished[0])
    if won:
        return Claim("busy", won[0])
    return None


def retire_older(client, experiment_id: str, grid: str, keep) -> list[str]:
    """Delete (recoverably: MLflow's deleted state) the cell's FINISHED runs older than
    `keep`, so a forced re-run leaves exactly one finished run per cell and seed."""
    tags = keep.data.tags
    runs = search_all(client, experiment_id,
                      f"tags.grid = '{grid}' and tags.config_hash = '{tags['config_hash']}' "
                      f"and attributes.status = 'FINISHED'")
    retired = [r.info.run_id for r in runs
               if r.info.run_id != keep.info.run_id and r.info.start_time <= keep.info.start_time]
    for run_id in retired:
        client.set_tag(run_id, "superseded_by", keep.info.run_id)
        client.delete_run(run_id)
    return retired
