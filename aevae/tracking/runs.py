"""The runs of a tracking store, as the bench and the tuner handle them: find, create, tag,
end and delete runs by id, through one `MlflowClient` bound to one tracking URI (never the
process-wide one, so two stores can be used side by side in one process).

Runs come back as plain `RunRecord`s, so no caller handles MLflow's entity types. Every tag
and param value written goes through `aevae.redact`, so no URL's password is stored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from aevae.redact import redact
from aevae.tracking import names
from aevae.tracking.checks import identity, lost, open_client
from aevae.tracking.records import RunRecord
from aevae.tracking.tracker import default_tracking_uri

SEARCH_PAGE = 10000  # runs per request; MLflow's stores accept up to 50,000
FAILURE_REASON_CHARS = 5000  # a failure reason is cut here (MLflow allows 8000 characters per run tag)
EXPERIMENT_TAG_CHARS = 20000  # MLflow's limit for an experiment tag's value


def artifact_root(tracking_uri: str) -> str | None:
    """For a SQLite store, an `artifacts` folder beside the database (created here); for a
    tracking server, None: the server decides where artifacts go."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    folder = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


def safe(values: dict[str, Any]) -> dict[str, str]:
    """Tag or param values as stored: strings, with every URL's password masked."""
    return {key: redact(str(value)) for key, value in values.items()}


def search(client: MlflowClient, experiment_id: str, filter_string: str = "") -> list[RunRecord]:
    """Every active run of the experiment matching the filter, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=SEARCH_PAGE, page_token=token)
        runs.extend(RunRecord.of(run) for run in page)
        token = page.token
        if not token:
            return runs


def where(status: str | None = None, tags: dict[str, str] | None = None,
          tag_prefixes: dict[str, str] | None = None) -> str:
    """An MLflow filter string: the run's state, tags equal to values, tags starting with
    prefixes. Values are aevae's own names and hashes, which hold no quotes."""
    terms = [f"tags.{key} = '{value}'" for key, value in (tags or {}).items()]
    terms += [f"tags.{key} LIKE '{prefix}%'" for key, prefix in (tag_prefixes or {}).items()]
    if status is not None:
        terms.append(f"attributes.status = '{status}'")
    return " and ".join(terms)


class RunStore:
    """Runs by id in the tracking store at `tracking_uri` (default: `default_tracking_uri()`)."""

    def __init__(self, tracking_uri: str | None = None):
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.client = open_client(self.tracking_uri)
        self._opened = identity(self.tracking_uri)

    def lost(self) -> str | None:
        """Why the store went away since it was opened here (see tracking.checks.lost), or None."""
        return lost(self.tracking_uri, self._opened)

    def experiment(self, name: str) -> str:
        """The id of experiment `name`, created if missing (safe when processes race to
        create it), restored if deleted; marked as model training for MLflow's UI."""
        kind = {names.EXPERIMENT_KIND: names.MODEL_TRAINING_KIND}
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(name, artifact_location=artifact_root(self.tracking_uri),
                                                     tags=kind)
            except MlflowException:
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        if found.tags.get(names.EXPERIMENT_KIND) is None:  # made by an older aevae, or by hand
            self.set_experiment_tags(found.experiment_id, kind)
        return found.experiment_id

    def set_experiment_tags(self, experiment_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_experiment_tag(experiment_id, key, redact(value))

    def find(self, experiment_id: str, *, status: str | None = None, tags: dict[str, str] | None = None,
             tag_prefixes: dict[str, str] | None = None) -> list[RunRecord]:
        """The experiment's active (not deleted) runs in `status` whose tags match."""
        return search(self.client, experiment_id, where(status, tags, tag_prefixes))

    def get(self, run_id: str) -> RunRecord | None:
        """The run, deleted or not; None when the store has no such run."""
        try:
            return RunRecord.of(self.client.get_run(run_id))
        except MlflowException:
            return None

    def create(self, experiment_id: str, name: str, tags: dict[str, str]) -> RunRecord:
        """A new RUNNING run."""
        return RunRecord.of(self.client.create_run(experiment_id, run_name=name, tags=safe(tags)))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in safe(tags).items()])

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in safe(params).items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> list[Metric]:
        """Log the values at `step` (0 when None, as MLflow's own API does); returns what was
        logged."""
        now = int(time.time() * 1000)
        logged = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=logged)
        return logged

    def end(self, run_id: str, status: str, reason: str | None = None, *, if_running: bool = False) -> bool:
        """End the run in `status` (FINISHED, FAILED, KILLED), with `reason` as its
        `failure_reason` tag. With `if_running`, a run that has already ended, or that the
        store does not hold, is left alone; returns whether the run was ended here."""
        if if_running:
            found = self.get(run_id)
            if found is None or found.status != "RUNNING":
                return False
        if reason:
            self.client.set_tag(run_id, names.FAILURE_REASON, redact(reason)[:FAILURE_REASON_CHARS])
        self.client.set_terminated(run_id, status=status)
        return True

    def delete(self, run_id: str) -> None:
        """Move the run to MLflow's deleted state (recoverable; searches no longer see it)."""
        self.client.delete_run(run_id)
