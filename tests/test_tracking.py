"""aevae.tracking, the one door to MLflow: runs end once with their reason, and runs of dead
processes are told apart from live ones."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from aevae.tracking import names
from aevae.tracking.runs import RunStore
from aevae.tracking.workers import process_gone, this_worker, worker_gone, worker_tags


def test_ending_a_run_if_running_leaves_ended_and_unknown_runs_alone(tracking_uri):
    store = RunStore(tracking_uri)
    experiment_id = store.experiment("ends")
    run_id = store.create(experiment_id, "r", {}).run_id
    assert store.end(run_id, "KILLED", "x" * 9000, if_running=True)
    assert not store.end(run_id, "FAILED", "again", if_running=True)
    assert not store.end("0" * 32, "KILLED", "none such", if_running=True)
    ended = store.get(run_id)
    assert ended.status == "KILLED" and ended.tags[names.FAILURE_REASON] == "x" * 5000


def test_a_dead_or_reused_pid_is_gone_a_live_process_or_another_host_is_not():
    here = this_worker().rsplit(":", 1)[0]
    me = psutil.Process()
    assert worker_tags()[names.WORKER] == this_worker()
    assert not worker_gone(worker_tags())
    assert not process_gone(here, me.pid, me.create_time())
    assert not process_gone(here, me.pid)  # no start time recorded: the pid alone decides
    assert process_gone(here, me.pid, me.create_time() - 3600)  # the pid now names another process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert process_gone(here, dead.pid, time.time())
    assert worker_gone({names.WORKER: f"{here}:{dead.pid}"})
    assert not process_gone("another-host.example", dead.pid)
    assert not worker_gone({names.WORKER: "garbage"}) and not process_gone(here, "x")
