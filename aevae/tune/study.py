"""Optuna studies whose objective wraps the one `train` function.

A trial trains the config its parameters describe and is judged on the validation split only
(`train(cfg, splits.without_test(), ...)`: no test split to read): the negative ELBO for the
VAE, the reconstruction loss for the AE, reported each epoch so the study's pruner can stop
curves that are worse than their peers. Each invocation is one MLflow parent run and each
trial a child run; the trial keeps its run's id as the user attribute `mlflow_run_id` and the
run carries the trial's number and end state as tags, so each side finds the other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import TrialState

from aevae.config import parse_value
from aevae.data import Splits, data_root
from aevae.data.cache import DataCache
from aevae.errors import TrainingFailed, debugging, unknown_name
from aevae.executors import Executor, ExecutorOptions, Job, WorkerEnv, open_executor
from aevae.plugins import plugin_files
from aevae.tune.space import PRUNERS, StudySpec, suggest, to_raw
from aevae.tune.storage import (
    ABANDONED, DEFAULT_STORAGE, RUN_ATTR, describe_storage, fail_orphans, is_url, open_storage, owner_attrs,
    recover_trials, retried_trials, storage_exists,
)
from aevae.tracking import Tracker, absolute_uri, default_tracking_uri, names
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.tracking.runs import RunStore
from aevae.tracking.workers import DEFAULT_GRACE_S, this_worker
from aevae.training.loop import RunOptions, train
from aevae.machine import pick_device
from aevae.tune.summary import StudySummary, summarize

BENCH_STUDY_SET = "lab"  # the set whose studies `aevae bench --tuned` reads
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Objective:
    """What a study minimises: `sign * metric` of an epoch's validation metrics."""

    metric: str
    sign: float
    text: str

    def value(self, row: dict[str, float]) -> float:
        return self.sign * row[self.metric]

    @property
    def label(self) -> str:
        return f"{'-' if self.sign < 0 else ''}{self.metric}"


# By what the model's code is (aevae.models.protocol.CODES). A Gaussian code's val/loss weighs
# the KL by beta, so it would move with a searched beta; the negative ELBO does not, which
# keeps its trials comparable. A model without one is judged by its own validation loss.
OBJECTIVES = {
    "gaussian": Objective(names.VAL_ELBO, -1.0, "negative ELBO of the validation split "
                          "(reconstruction + KL, one posterior sample; independent of beta)"),
    "point": Objective(names.VAL_LOSS, 1.0, "reconstruction loss of the validation split (the AE's loss)"),
    "discrete": Objective(names.VAL_LOSS, 1.0, "the model's own loss of the validation split"),
}


def objective_of(spec: StudySpec) -> Objective:
    """The study's objective, by what its model's code is (the built-ins' by their name when
    the study was not checked)."""
    return OBJECTIVES[spec.code or ("gaussian" if spec.base.model == "vae" else "point")]


def objective_units(spec: StudySpec) -> str:
    if spec.config({}).recon_loss == "bce":
        return "nats per image"
    kl = objective_of(spec) is OBJECTIVES["gaussian"]
    return "squared error summed over pixels, per image" + (", plus KL nats" if kl else "")


class Pruned(optuna.TrialPruned):
    """A trial the pruner stopped; its MLflow run ends KILLED (see aevae.tracking)."""

    run_status = "KILLED"


class TrialTracker:
    """The tracker of one trial's child run: it gives the trial its run's id, and tags the run
    with the trial's number and Optuna end state before the run ends."""

    def __init__(self, inner: Tracker, trial: optuna.Trial):
        self.inner, self.trial = inner, trial

    @contextlib.contextmanager
    def run(self, name, params, tags) -> Iterator[str]:
        numbered = {**tags, names.OPTUNA_TRIAL_NUMBER: str(self.trial.number)}
        with self.inner.run(name, params, numbered) as run_id:
            self.trial.set_user_attr(RUN_ATTR, run_id)
            try:
                yield run_id
            except optuna.TrialPruned:
                self.inner.set_tags({names.OPTUNA_STATE: "PRUNED"})
                raise
            except BaseException:
                self.inner.set_tags({names.OPTUNA_STATE: "FAIL"})
                raise
            self.inner.set_tags({names.OPTUNA_STATE: "COMPLETE"})

    def __getattr__(self, name):
        # everything else (metrics, tags, figures, dicts, the model) goes to the child run as is
        return getattr(self.inner, name)


def run_trial(trial: optuna.Trial, spec: StudySpec, splits: Splits, tracker: Tracker, parent_id: str) -> float:
    """The objective: train the trial's config, report the validation objective each epoch,
    prune when the pruner says so; returns the last epoch's objective."""
    # Who runs the trial, first: a resumed study fails the trials of processes that died.
    for key, value in owner_attrs(parent_id).items():
        trial.set_user_attr(key, value)
    objective = objective_of(spec)
    cfg = spec.config(suggest(trial, spec))
    trial.set_user_attr("epochs_budget", cfg.epochs)
    started = time.perf_counter()

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        value = objective.value(row)
        trial.report(value, epoch)
        trial.set_user_attr("epochs_trained", epoch)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        if trial.should_prune():
            raise Pruned(f"pruned after epoch {epoch} of {cfg.epochs}: {objective.label} = {value:.4g}")

    tags = {names.OPTUNA_STUDY: spec.name, names.STUDY_SET: spec.study_set, names.CELL: spec.cell}
    try:
        result = train(cfg, splits.without_test(), TrialTracker(tracker, trial), on_epoch,
                       RunOptions(f"trial {trial.number}", tags))
    except KeyboardInterrupt:
        trial.set_user_attr(ABANDONED, "interrupted (Ctrl-C or kill)")
        raise
    trial.set_user_attr("seconds", time.perf_counter() - started)
    return objective.value(result.history[-1])


def with_pruner(spec: StudySpec, pruner: str) -> StudySpec:
    """The same study under another pruner, as a study of its own, so pruners can be compared
    on one cell without mixing their trials."""
    if pruner == spec.pruner:
        return spec
    if pruner not in PRUNERS:
        raise unknown_name("pruner", pruner, PRUNERS)
    return dataclasses.replace(spec, name=f"{spec.name}/pruner={pruner}", pruner=pruner)


def open_study(spec: StudySpec, storage) -> optuna.Study:
    """Create the study, or load it when it exists, so re-running resumes it (what
    `load_if_exists` does, except that only the creator describes the study in user attributes
    and enqueues the default config as its first trial)."""
    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, direction="minimize")
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=spec.name, storage=storage)
    objective = objective_of(spec)
    attrs = {
        "objective": objective.text, "objective_metric": objective.label,
        "objective_units": objective_units(spec), "direction": "minimize",
        "cell": spec.cell, "study_set": spec.study_set, "pruner": spec.pruner,
        "fixed": {k: to_raw(v) for k, v in spec.fixed.items()},
        "space": {p.name: {"choices": list(p.choices)} if p.choices else
                  {"low": p.low, "high": p.high, "log": p.log} for p in spec.space},
        "description": spec.description,
    }
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([f"{objective.label} ({objective_units(spec)})"])
    default = spec.default_params()
    if default is not None:
        study.enqueue_trial(default, user_attrs={"default_config": True})
    return study


def make_sampler(spec: StudySpec, study: optuna.Study, seed: int | None) -> optuna.samplers.BaseSampler:
    """TPE seeded by the study's seed plus the trials it already holds: a fresh study is
    reproducible, and a resumed one does not replay the random draws it began with."""
    if seed is None:
        seed = spec.seed + len(study.get_trials(deepcopy=False))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, spec.trials // 3)))


def parent_params(spec: StudySpec, target: int) -> dict[str, Any]:
    params = {f"fixed.{k}": to_raw(v) for k, v in spec.fixed.items()}
    params.update({f"space.{p.name}": list(p.choices) if p.choices else
                   f"{'log ' if p.log else ''}[{p.low}, {p.high}]" for p in spec.space})
    return {**params, "trials": target, "pruner": spec.pruner, "seed": spec.seed}


@dataclass(frozen=True)
class TuneJob:
    """What each worker of one `aevae tune` needs; sent as is to worker processes and tasks."""

    spec: StudySpec
    storage: str | None
    tracking_uri: str
    data_dir: str | None
    target: int  # finished trials the study should hold
    timeout: float | None
    seed: int  # the worker's sampler seed
    parent_run_id: str
    grace_s: float = DEFAULT_GRACE_S


def optimize(job: TuneJob, env: WorkerEnv) -> list[int]:
    """One worker, wherever an executor runs it: trials of the study until it holds
    `job.target` finished ones (other workers may add to them) or `job.timeout` passes;
    returns the numbers of its trials. `env.datasets.get(cfg, data_dir)` gives the splits."""
    spec = job.spec
    study = optuna.load_study(study_name=spec.name, storage=open_storage(
        job.storage, grace_s=job.grace_s, tracking_uri=job.tracking_uri))
    remaining = job.target - len(study.get_trials(deepcopy=False, states=FINISHED))
    if remaining <= 0:
        return []
    study.sampler = make_sampler(spec, study, job.seed)
    study.pruner = PRUNERS[spec.pruner](job.target, None if "epochs" in spec.searched else spec.base.epochs)
    splits = env.datasets.get(spec.base, job.data_dir)
    # no system metrics: trials last seconds to minutes, shorter than a few samples
    child = MlflowTracker(job.tracking_uri, names.tune_experiment(spec.study_set), parent_run_id=job.parent_run_id,
                          entry_point=names.ENTRY_TUNE)
    ran: list[int] = []
    study.optimize(
        lambda trial: run_trial(trial, spec, splits, child, job.parent_run_id),
        n_trials=remaining, timeout=job.timeout, catch=(TrainingFailed,),
        callbacks=[optuna.study.MaxTrialsCallback(job.target, states=FINISHED),
                   lambda study, trial: ran.append(trial.number)],
    )
    return ran


def study_exists(spec: StudySpec, storage: str | None) -> bool:
    """Whether the storage holds the study already (a journal file that is not there holds
    nothing, and is not created to find that out)."""
    if not storage_exists(storage):
        return False
    try:
        optuna.load_study(study_name=spec.name, storage=open_storage(storage))
    except KeyError:
        return False
    return True


def _without_traceback(record: logging.LogRecord) -> bool:
    """Optuna logs a failed trial with its traceback; the trial's reason (a diverged run, an
    interrupt) is in the message already, so the traceback is shown with --debug only."""
    if not debugging():
        record.exc_info, record.exc_text = None, None
    return True


logging.getLogger("optuna.study._optimize").addFilter(_without_traceback)


@dataclass(frozen=True)
class StudyRequest:
    """What `aevae tune` asks of a study: how many finished trials it should hold, for how
    long at most, under which pruner (another than the study's own runs the study
    `<name>/pruner=<pruner>` instead) and sampler seed, where the study, the runs and the
    data are. The caller checks the storage and the store first."""

    spec: StudySpec
    storage: str | None = None
    tracking_uri: str | None = None
    data_dir: str | None = None
    trials: int | None = None
    timeout: float | None = None
    pruner: str | None = None
    seed: int | None = None
    grace_s: float = DEFAULT_GRACE_S


def run_study(request: StudyRequest, executor: ExecutorOptions = ExecutorOptions(workers=1)) -> StudySummary:
    """Run the study until it holds the trials asked for, or the timeout passes; returns
    the whole study's summary. The executor's workers optimize the study side by side, each
    with its own sampler seed (the study's seed plus its index)."""
    spec = with_pruner(request.spec, request.pruner or request.spec.pruner)
    tracking_uri = absolute_uri(request.tracking_uri or default_tracking_uri())
    target_storage = request.storage or DEFAULT_STORAGE
    # every worker reads the same absolute paths, whatever its working folder
    storage = absolute_uri(target_storage) if is_url(target_storage) else os.path.abspath(target_storage)
    datasets = DataCache()
    with open_executor(executor, datasets, code=plugin_files(spec.base.plugins)) as running:
        running.require_shared("Optuna storage", target_storage)
        running.require_shared("MLflow store", tracking_uri)
        described = running.describe()
        if described:
            print(described)
        plan = dataclasses.replace(request, spec=spec, storage=storage, tracking_uri=tracking_uri,
                                   data_dir=os.path.abspath(data_root(request.data_dir)))
        return _drive(plan, running, datasets)


def _drive(request: StudyRequest, executor: Executor, datasets: DataCache) -> StudySummary:
    """The invocation: resume the study, open its MLflow parent run, run the workers, settle
    the trials of workers that died, and summarise."""
    spec, target = request.spec, request.trials or request.spec.trials
    if not study_exists(spec, request.storage):
        # a new study is created only once its data is at hand (and its device is there),
        # so a failure before leaves no study behind
        pick_device(spec.base.device)
        datasets.get(spec.base, request.data_dir)
    optuna_storage = open_storage(request.storage, grace_s=request.grace_s, tracking_uri=request.tracking_uri)
    study = open_study(spec, optuna_storage)
    runs = RunStore(request.tracking_uri)
    retried_before = retried_trials(study)
    recover_trials(study, optuna_storage, runs)
    if len(study.get_trials(deepcopy=False, states=FINISHED)) >= target:
        return summarize(study, spec, new_trials=0, seconds=0.0,
                         retried=sorted(retried_trials(study) - retried_before))
    base_seed = request.seed if request.seed is not None else spec.seed + len(study.get_trials(deepcopy=False))
    experiment = names.tune_experiment(spec.study_set)
    tags = {names.OPTUNA_STUDY: spec.name, names.STUDY_SET: spec.study_set, names.CELL: spec.cell,
            names.OPTUNA_STORAGE: describe_storage(request.storage), names.WORKER: this_worker()}
    started = time.perf_counter()
    parent = MlflowTracker(runs.tracking_uri, experiment, entry_point=names.ENTRY_TUNE)
    with parent.run(spec.name.removeprefix(f"{spec.study_set}/"), parent_params(spec, target), tags) as parent_id:
        job = TuneJob(spec, request.storage, runs.tracking_uri, request.data_dir, target, request.timeout,
                      base_seed, parent_id, request.grace_s)
        jobs = [Job(dataclasses.replace(job, seed=base_seed + i), spec.base.dataset, request.data_dir, spec.base.plugins)
                for i in range(executor.workers or 1)]
        ran: list[int] = []
        executor.map(optimize, jobs, lambda _, result: ran.extend(result if isinstance(result, list) else []))
        fail_orphans(study, optuna_storage, parent_id, runs)  # the trials of workers that died
        summary = summarize(study, spec, new_trials=len(ran), seconds=time.perf_counter() - started,
                            retried=sorted(retried_trials(study) - retried_before), parent_run_id=parent_id)
        parent.log_metrics(summary.metrics())
        parent.set_tags(summary.tags())
    return summary


def tuned_lookup(storage: str | None):
    """`tuned_overrides` of studies in `storage`, asked once per (model, arch, dataset): what
    `aevae bench --tuned` expands a grid with."""

    @functools.cache
    def lookup(model: str, arch: str, dataset: str):
        return tuned_overrides(model, arch, dataset, storage)

    return lookup


def tuned_overrides(model: str, arch: str, dataset: str, storage: str | None = None, *,
                    study_set: str = BENCH_STUDY_SET) -> tuple[dict[str, object], str] | None:
    """The best trial's searched fields (typed config values) of the cell's study in
    `study_set`, and the study's name; None when there is no such study or no completed
    trial. Only searched fields are returned: the study's fixed budget (epochs, subset) is
    how it was tuned, not part of the answer."""
    target = storage or DEFAULT_STORAGE
    if not is_url(target) and not Path(target).exists():
        return None  # never create a journal file just to find it empty
    name = f"{study_set}/{model}/{arch}/{dataset}"
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        return None
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return None
    best = study.best_trial
    return {key: parse_value(key, value) for key, value in best.params.items()}, name
