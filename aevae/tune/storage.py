"""Where studies live, and what becomes of trials whose process died.

The default is Optuna's journal file `studies/optuna.log`: an append-only log guarded by a
file lock, which several local processes can share without the "database is locked" errors
SQLite gives under concurrent writers, and which needs no server. Any Optuna database URL
works too (PostgreSQL for workers on several machines); those get Optuna's heartbeat, so a
trial whose worker stops beating is failed by the next worker to start a trial.

A trial left RUNNING by a killed local process does not block the study, but it would stay
RUNNING forever (and so would its MLflow run), and its point of the space would be lost: on
start, `recover_trials` fails such trials, ends their MLflow runs as KILLED, and enqueues
their parameters again.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from aevae.errors import AevaeError
from aevae.tracking.workers import process_gone, this_process_started
from aevae.tune.defaults import DEFAULT_STORAGE

if TYPE_CHECKING:
    from aevae.tracking.runs import RunStore

HEARTBEAT_SECONDS = 60  # a beat a minute; a worker silent for three is taken for dead
GRACE_SECONDS = 180
ABANDONED = "abandoned"  # user attribute of a trial whose process died or was interrupted
# User attributes naming who runs a trial, and its MLflow runs
HOST_ATTR, PID_ATTR, STARTED_ATTR = "host", "pid", "process_started"
RUN_ATTR, PARENT_RUN_ATTR = "mlflow_run_id", "mlflow_parent_run_id"


class StorageError(AevaeError):
    """An Optuna storage that cannot be opened."""


def is_url(storage: str) -> bool:
    return "://" in storage


def describe_storage(storage: str | None) -> str:
    """The storage as it can be shown and logged: a URL without its password."""
    target = storage or DEFAULT_STORAGE
    if not is_url(target):
        return target
    try:
        return make_url(target).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # unparsable: show no part that could hold a secret
        return target.split("://", 1)[0] + "://..."


def with_driver(url: str) -> str:
    """A bare postgresql:// URL names the driver aevae installs (psycopg2): SQLAlchemy 2.1
    would otherwise look for psycopg 3 and fail to import it."""
    bare = "postgresql://"
    return "postgresql+psycopg2://" + url.removeprefix(bare) if url.startswith(bare) else url


def open_storage(storage: str | None = None) -> BaseStorage:
    """A journal file for a path (default `studies/optuna.log`), an RDB storage for a URL;
    a storage that cannot be opened is one clear sentence."""
    target = storage or DEFAULT_STORAGE
    shown = describe_storage(target)
    hint = (f"pass a journal file path (default {DEFAULT_STORAGE}) or a reachable database URL "
            "such as postgresql://user:password@host:5432/optuna")
    try:
        if not is_url(target):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(target))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(with_driver(target), heartbeat_interval=HEARTBEAT_SECONDS,
                              grace_period=GRACE_SECONDS)
    except (SQLAlchemyError, OSError, ImportError, ValueError) as exc:
        # SQLAlchemy wraps the driver's error; its first line names the cause.
        text = str(getattr(exc, "orig", None) or exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise StorageError(f"cannot open the Optuna storage '{shown}' ({reason}); {hint}.") from None


def owner_attrs(parent_run_id: str) -> dict[str, object]:
    """The user attributes that say which process runs a trial, under which MLflow parent run.
    (Trials of older versions lack the start time; their pid alone says whether they died.)"""
    return {HOST_ATTR: socket.gethostname(), PID_ATTR: os.getpid(),
            STARTED_ATTR: this_process_started(), PARENT_RUN_ATTR: parent_run_id}


def recover_trials(study: optuna.Study, storage: BaseStorage, runs: RunStore) -> list[int]:
    """Fail the RUNNING trials this host started in processes that no longer exist (ending
    their MLflow runs, and their invocation's parent run, as KILLED), then enqueue again the
    parameters of every trial that a dead or interrupted process left unfinished, once, so a
    kill loses no point of the study (the default config's included). Returns the numbers of
    the trials retried."""
    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if PID_ATTR not in attrs:
            continue
        if not process_gone(attrs.get(HOST_ATTR), attrs[PID_ATTR], attrs.get(STARTED_ATTR)):
            continue  # alive, or another host's (Optuna's heartbeat judges those on a database)
        reason = f"process {attrs[PID_ATTR]} on {host} died during trial {trial.number}"
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, ABANDONED, reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        for key in (RUN_ATTR, PARENT_RUN_ATTR):
            if key in attrs:
                runs.end(attrs[key], "KILLED", f"{reason}; found when the study resumed", if_running=True)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    again = [t for t in trials if t.state == TrialState.FAIL and ABANDONED in t.user_attrs
             and t.number not in retried]
    for trial in again:
        carried = {k: v for k, v in trial.user_attrs.items() if k == "default_config"}
        study.enqueue_trial(trial.params, user_attrs={**carried, "retry_of": trial.number})
    return [t.number for t in again]
