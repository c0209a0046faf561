"""Where studies live, and what becomes of trials whose process died.

The default is Optuna's journal file `studies/optuna.log`: an append-only log guarded by a
file lock, which several local processes can share without the "database is locked" errors
SQLite gives under concurrent writers, and which needs no server. Any Optuna database URL
works too (PostgreSQL for workers on several machines); those get Optuna's heartbeat: each
trial beats every `grace / 6` s, and a trial silent for the grace period (`--heartbeat-grace`,
180 s by default; the database's clock judges, so hosts' clocks do not matter) is failed by
the next worker to start a trial.

A trial whose process died would otherwise stay RUNNING forever (and so would its MLflow run),
and its point of the space would be lost. Whoever finds it dead -- Optuna's heartbeat, a
resumed study (`recover_trials`: a process of this host that is gone), or the driver of Ray
workers that have all ended -- fails it, ends its MLflow run KILLED with the reason, and
queues its parameters again through Optuna's own `RetryHeartbeatStaleTrialCallback`.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from aevae.errors import AevaeError
from aevae.extras import require
from aevae.folders import check_writable
from aevae.interrupts import deferred
from aevae.redact import redact
from aevae.tracking import names
from aevae.tracking.workers import BEATS_PER_GRACE, DEFAULT_GRACE_S, process_gone, this_process_started
from aevae.tune.defaults import DEFAULT_STORAGE

if TYPE_CHECKING:
    from aevae.tracking.runs import RunStore

TRIAL_RETRIES = 3  # times one point of the space is queued again after its workers died
CONNECT_TIMEOUT_S = 5  # a PostgreSQL server that does not answer, in seconds
ABANDONED = "abandoned"  # user attribute of a trial whose process died or was interrupted
# User attributes naming who runs a trial, and its MLflow runs
HOST_ATTR, PID_ATTR, STARTED_ATTR = "host", "pid", "process_started"
RUN_ATTR, PARENT_RUN_ATTR = "mlflow_run_id", "mlflow_parent_run_id"
CARRIED_ATTRS = ("default_config",)  # user attributes a retried trial keeps
PSYCOPG2 = "postgresql+psycopg2://"


class StorageError(AevaeError):
    """An Optuna storage that cannot be opened."""


def is_url(storage: str) -> bool:
    return "://" in storage


def describe_storage(storage: str | None) -> str:
    """The storage as it can be shown and logged: a URL without its password."""
    return redact(storage or DEFAULT_STORAGE)


def engine_kwargs(url: str) -> dict:
    """A PostgreSQL server that does not answer fails in CONNECT_TIMEOUT_S rather than the
    operating system's TCP timeout (minutes)."""
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def with_driver(url: str) -> str:
    """A bare postgresql:// URL names the driver of aevae's cluster extra (psycopg2):
    SQLAlchemy 2.1 would otherwise look for psycopg 3 and fail to import it."""
    bare = "postgresql://"
    return PSYCOPG2 + url.removeprefix(bare) if url.startswith(bare) else url


class WholeWrites(JournalFileBackend):
    """Optuna's journal file, whose appends a Ctrl-C cannot cut: one arriving during a write
    (under the journal's lock file) is raised after it, so no half line and no stale lock is
    left for the next process to trip over."""

    def append_logs(self, logs) -> None:
        with deferred():
            super().append_logs(logs)


def check_storage(storage: str | None = None) -> None:
    """The storage checked before anything is created: a journal path that is no folder and
    whose folder can be written (the file, and its folder, are made when a study is opened);
    a database URL is opened, which only creates Optuna's tables in the database named."""
    target = storage if storage is not None else DEFAULT_STORAGE
    if not target.strip():
        raise StorageError(f"--storage is empty; give a journal file path (default {DEFAULT_STORAGE}) "
                           f"or a database URL.")
    if is_url(target):
        open_storage(target)
        return
    if Path(target).is_dir():
        raise StorageError(f"the Optuna storage {target} is a folder; name a journal file in it, "
                           f"e.g. --storage {Path(target) / 'optuna.log'}.")
    check_writable(Path(target).parent, "the folder of the Optuna journal", "--storage")


def storage_exists(storage: str | None = None) -> bool:
    """Whether opening the storage finds anything: a database always may; a journal file only
    if it is there."""
    target = storage or DEFAULT_STORAGE
    return is_url(target) or Path(target).is_file()


def open_storage(storage: str | None = None, *, grace_s: float = DEFAULT_GRACE_S,
                 tracking_uri: str | None = None) -> BaseStorage:
    """A journal file for a path (default `studies/optuna.log`), an RDB storage for a URL,
    whose heartbeat fails trials silent for `grace_s` seconds (and, given the MLflow store's
    `tracking_uri`, ends their runs KILLED) and queues them again; a storage that cannot be
    opened is one clear sentence."""
    target = storage or DEFAULT_STORAGE
    shown = describe_storage(target)
    hint = (f"pass a journal file path (default {DEFAULT_STORAGE}) or a reachable database URL "
            "such as postgresql://user:password@host:5432/optuna")
    try:
        if not is_url(target):
            check_journal(Path(target), shown)
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(WholeWrites(target))
        if with_driver(target).startswith(PSYCOPG2):
            require("psycopg2", "a PostgreSQL Optuna storage")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            reason = (f"its worker stopped beating for more than {grace_s:.0f} s (killed, or its "
                      f"machine died); failed by Optuna's heartbeat")
            return RDBStorage(with_driver(target), engine_kwargs=engine_kwargs(target),
                              heartbeat_interval=max(1, round(grace_s / BEATS_PER_GRACE)),
                              grace_period=max(1, round(grace_s)),
                              heartbeat_stale_trial_callback=DeadTrials(tracking_uri, reason))
    except (SQLAlchemyError, OSError, ImportError, ValueError) as exc:
        # SQLAlchemy wraps the driver's error; its first line names the cause. A journal that
        # is not Optuna's (a JSON decode error) lands here too, as a ValueError.
        text = str(getattr(exc, "orig", None) or exc).strip()
        reason = redact(text.splitlines()[0]) if text else type(exc).__name__
        raise StorageError(f"cannot open the Optuna storage '{shown}' ({reason}); {hint}.") from None


def check_journal(path: Path, shown: str) -> None:
    """Refuse a file that is not an Optuna journal before Optuna appends to it: Optuna skips
    a last line it cannot parse (a write cut short), so a one-line file of anything else would
    be taken for an empty journal and written into. A journal's every line is a JSON object
    with an `op_code`; the first one is read."""
    if not path.is_file():
        return
    with path.open("rb") as file:
        first = file.readline(1 << 20)
    if not first.strip():
        return
    try:
        entry = json.loads(first)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or "op_code" not in entry:
        raise StorageError(f"the Optuna storage '{shown}' is not an Optuna journal (its first line is not a "
                           f"journal entry), so it was left untouched; pass another file with --storage "
                           f"(default {DEFAULT_STORAGE}).")


class DeadTrials:
    """What becomes of a FAIL trial whose worker died (Optuna's heartbeat calls this with
    each trial it failed): its MLflow run, and its invocation's parent run when that was the
    worker's own process, end KILLED with `reason`; then its parameters are queued again."""

    def __init__(self, tracking_uri: str | None, reason: str):
        self.tracking_uri, self.reason = tracking_uri, reason

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.tracking_uri is not None:
            from aevae.tracking.runs import RunStore  # MLflow only once a trial has died

            end_runs(RunStore(self.tracking_uri), trial, f"{self.reason} (trial {trial.number})")
        retry(study, trial)


def end_runs(runs: RunStore, trial: optuna.trial.FrozenTrial, reason: str) -> None:
    """End the dead trial's MLflow run KILLED, and its invocation's parent run too when the
    trial's worker was the invocation's own process (not one of its Ray workers)."""
    attrs = trial.user_attrs
    if RUN_ATTR in attrs:
        runs.end(attrs[RUN_ATTR], "KILLED", reason, if_running=True)
    parent = runs.get(attrs[PARENT_RUN_ATTR]) if PARENT_RUN_ATTR in attrs else None
    if parent is not None and parent.tags.get(names.WORKER) == f"{attrs.get(HOST_ATTR)}:{attrs.get(PID_ATTR)}":
        runs.end(parent.run_id, "KILLED", reason, if_running=True)


def retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue the failed trial's parameters again, up to TRIAL_RETRIES times per point, by
    Optuna's own callback. The retry carries what says which point it is (`default_config`),
    not what its dead worker recorded (owner, runs, epochs)."""
    again = copy.copy(trial)
    again.user_attrs = {k: v for k, v in trial.user_attrs.items() if k in CARRIED_ATTRS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=TRIAL_RETRIES)(study, again)


def retried_trials(study: optuna.Study) -> set[int]:
    """Numbers of the trials some later trial of the study retries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return {number for trial in study.get_trials(deepcopy=False)
                for number in RetryHeartbeatStaleTrialCallback.retry_history(trial)}


def fail_dead(study: optuna.Study, storage: BaseStorage, trial: optuna.trial.FrozenTrial, note: str,
              runs: RunStore, reason: str) -> None:
    """Fail a RUNNING trial whose worker is known dead, with `note` as its abandonment note,
    and end its MLflow runs KILLED with `reason`."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    storage.set_trial_user_attr(trial_id, ABANDONED, note)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    end_runs(runs, trial, reason)


def owner_attrs(parent_run_id: str) -> dict[str, object]:
    """The user attributes that say which process runs a trial, under which MLflow parent run.
    (Trials of older versions lack the start time; their pid alone says whether they died.)"""
    return {HOST_ATTR: socket.gethostname(), PID_ATTR: os.getpid(),
            STARTED_ATTR: this_process_started(), PARENT_RUN_ATTR: parent_run_id}


def recover_trials(study: optuna.Study, storage: BaseStorage, runs: RunStore) -> list[int]:
    """Fail the RUNNING trials this host started in processes that no longer exist (ending
    their MLflow runs, and their invocation's parent run, as KILLED), then queue again the
    parameters of every trial that a dead or interrupted process left unfinished and nothing
    retries yet, so a kill loses no point of the study (the default config's included).
    Returns the numbers of the trials retried."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if PID_ATTR not in attrs:
            continue
        if not process_gone(attrs.get(HOST_ATTR), attrs[PID_ATTR], attrs.get(STARTED_ATTR)):
            continue  # alive, or another host's (Optuna's heartbeat judges those on a database)
        reason = f"process {attrs[PID_ATTR]} on {host} died during trial {trial.number}"
        fail_dead(study, storage, trial, reason, runs, f"{reason}; found when the study resumed")
    return retry_abandoned(study)


def fail_orphans(study: optuna.Study, storage: BaseStorage, parent_run_id: str, runs: RunStore) -> list[int]:
    """Once every worker of one invocation has ended, its trials still RUNNING have no worker
    left (each died, and Ray's retry of its task went on with new trials): fail them, end
    their runs KILLED, and queue them again. Returns their numbers."""
    orphans = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.user_attrs.get(PARENT_RUN_ATTR) == parent_run_id]
    for trial in orphans:
        fail_dead(study, storage, trial, f"the worker running trial {trial.number} died", runs,
                  "its worker died (killed, or its node was lost)")
    retry_abandoned(study)
    return [t.number for t in orphans]


def retry_abandoned(study: optuna.Study) -> list[int]:
    """Queue again each trial left FAIL by a dead or interrupted process that nothing
    retries yet; returns their numbers."""
    done = retried_trials(study)
    again = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
             if ABANDONED in t.user_attrs and t.number not in done]
    for trial in again:
        retry(study, trial)
    return [t.number for t in again]
