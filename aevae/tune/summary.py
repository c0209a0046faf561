"""What a study has found so far, and what pruning saved: printed by `aevae tune` and logged
on the invocation's MLflow parent run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState


@dataclass(frozen=True)
class StudySummary:
    """Counts and values over every trial of the study (not only this invocation's)."""

    study_name: str
    objective: str
    units: str
    pruner: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    default_number: int | None = None
    default_value: float | None = None
    epochs_trained: int = 0
    epochs_saved: int = 0
    seconds_saved: float = 0.0
    new_trials: int = 0
    seconds: float = 0.0
    trial_seconds: float = 0.0
    retried: list[int] = field(default_factory=list)
    parent_run_id: str | None = None

    def metrics(self) -> dict[str, float]:
        """Numbers for the parent run (units: the objective's; epochs; seconds)."""
        values = {
            "trials_complete": self.complete, "trials_pruned": self.pruned, "trials_failed": self.failed,
            "epochs_trained": self.epochs_trained, "epochs_saved_by_pruning": self.epochs_saved,
            "seconds_saved_by_pruning": self.seconds_saved, "tune_seconds": self.seconds,
            "trial_seconds": self.trial_seconds,
        }
        if self.best_value is not None:
            values["best_value"] = self.best_value
        if self.default_value is not None:
            values["default_value"] = self.default_value
        return values

    def tags(self) -> dict[str, str]:
        tags = {"objective": self.objective, "objective_units": self.units}
        if self.best_number is not None:
            tags.update(best_trial=str(self.best_number), best_params=json.dumps(self.best_params))
        return tags

    def lines(self) -> list[str]:
        """The summary as a user reads it."""
        counts = f"{self.complete} complete, {self.pruned} pruned, {self.failed} failed" + (
            f", {self.running} running" if self.running else "")
        lines = [
            f"study {self.study_name}: {counts}; its trials took {self.trial_seconds:.0f} s in all",
            f"this run: {self.new_trials} new trial(s) in {self.seconds:.0f} s" if self.new_trials else
            "this run: nothing to do, the study holds its trials (--trials N asks for more)",
            f"objective: {self.objective}, {self.units}, lower is better",
        ]
        if self.retried:
            lines.append(f"trial(s) {', '.join(map(str, self.retried))} did not finish (process killed); "
                         "their parameters were queued again")
        if self.default_value is not None:
            lines.append(f"default config (trial {self.default_number}): {self.default_value:.4f}")
        if self.best_value is not None:
            change = ""
            if self.default_value:
                gain = (self.default_value - self.best_value) / abs(self.default_value)
                change = f" ({abs(gain):.1%} {'below' if gain >= 0 else 'above'} the default's)"
            params = " ".join(f"{k}={_short(v)}" for k, v in self.best_params.items())
            lines.append(f"best (trial {self.best_number}): {self.best_value:.4f}{change}  {params}")
        planned = self.epochs_trained + self.epochs_saved
        share = f" ({self.epochs_saved / planned:.0%})" if planned else ""
        lines.append(f"pruning ({self.pruner}): {self.pruned} trial(s) pruned, {self.epochs_saved} of "
                     f"{planned} epochs not trained{share}, about {self.seconds_saved:.0f} s saved")
        return lines


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _epochs(trial: FrozenTrial) -> tuple[int, int]:
    """(epochs trained, epochs budgeted) of a trial, from its user attributes."""
    budget = int(trial.user_attrs.get("epochs_budget", 0))
    return int(trial.user_attrs.get("epochs_trained", 0)), budget


def summarize(study: optuna.Study, spec, *, new_trials: int, seconds: float,
              retried: list[int], parent_run_id: str | None = None) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    by_state = {state: [t for t in trials if t.state == state] for state in TrialState}
    best = study.best_trial if by_state[TrialState.COMPLETE] else None
    default = [t for t in by_state[TrialState.COMPLETE] if t.user_attrs.get("default_config")]
    epochs_saved, seconds_saved = 0, 0.0
    for trial in by_state[TrialState.PRUNED]:
        trained, budget = _epochs(trial)
        if trained:
            saved = max(budget - trained, 0)
            epochs_saved += saved
            # A pruned trial's own pace (seconds per epoch trained) prices its missing epochs.
            seconds_saved += saved * float(trial.user_attrs.get("seconds", 0.0)) / trained
    return StudySummary(
        study_name=study.study_name,
        objective=f"{study.user_attrs.get('objective_metric', '?')}: {study.user_attrs.get('objective', '')}",
        units=study.user_attrs.get("objective_units", ""), pruner=spec.pruner,
        complete=len(by_state[TrialState.COMPLETE]), pruned=len(by_state[TrialState.PRUNED]),
        failed=len(by_state[TrialState.FAIL]), running=len(by_state[TrialState.RUNNING]),
        best_number=best.number if best else None, best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        default_number=default[0].number if default else None, default_value=default[0].value if default else None,
        epochs_trained=sum(_epochs(t)[0] for t in trials), epochs_saved=epochs_saved, seconds_saved=seconds_saved,
        new_trials=new_trials, seconds=seconds,
        trial_seconds=sum(t.duration.total_seconds() for t in trials if t.duration is not None),
        retried=retried, parent_run_id=parent_run_id,
    )
