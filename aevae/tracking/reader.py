"""Reading a tracking store, for the report: experiments, every run of one in a paged search,
metric histories and artifact downloads. It writes nothing, and opening it never creates an
empty SQLite store where a path was mistyped.

Only MLflow's public client API is used, so the same reads work on a tracking server and on
runs that older aevae versions logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from aevae.redact import redact
from aevae.tracking.checks import StoreError, check_store
from aevae.tracking.records import ExperimentRecord, RunRecord
from aevae.tracking.runs import search
from aevae.tracking.step_images import IMAGES_FOLDER, StepImage, by_key


class StoreReader:
    """Read-only access to the tracking store at `tracking_uri`, checked on opening."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        check_store(tracking_uri, write=False)  # there, and a server answers within seconds
        try:
            self.client = MlflowClient(tracking_uri)
            self.client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - every backend raises its own kind
            # a file that is no MLflow store, a missing database driver: a store the user
            # named wrongly, so one line, not a traceback
            reason = redact((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300])
            raise StoreError(f"cannot read the MLflow store at {redact(tracking_uri)} ({reason}); check "
                             f"--tracking-uri or MLFLOW_TRACKING_URI.") from None

    def experiment(self, name: str) -> ExperimentRecord | None:
        """The active (not deleted) experiment `name`, or None."""
        found = self.client.get_experiment_by_name(name)
        if found is None or found.lifecycle_stage != "active":
            return None
        return ExperimentRecord(found.name, found.experiment_id, dict(found.tags))

    def experiment_names(self) -> list[str]:
        return sorted(e.name for e in self.client.search_experiments())

    def runs(self, experiment_id: str) -> list[RunRecord]:
        """Every active run of the experiment, with its latest metric values, params and tags."""
        return search(self.client, experiment_id)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every value of `key` the run logged; empty if it logged none."""
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def step_images(self, run_id: str) -> dict[str, list[StepImage]]:
        """The images the run logged with a key and a step (MLflow's image slider), by key,
        sorted by step; empty for a run that logged none or cannot be listed."""
        try:
            listed = self.client.list_artifacts(run_id, IMAGES_FOLDER)
        except (MlflowException, OSError):
            return {}
        return by_key([entry.path for entry in listed if not entry.is_dir])

    def download(self, run_id: str, artifact_path: str, folder: Path) -> Path | None:
        """The run's artifact file or folder, downloaded into `folder`; None if the run has
        none at that path or it cannot be fetched."""
        # The download's progress bars would bury the command's own output.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            return Path(self.client.download_artifacts(run_id, artifact_path, str(folder)))
        except (MlflowException, OSError):
            return None
