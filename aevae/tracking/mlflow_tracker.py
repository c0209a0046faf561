"""The tracker that logs to MLflow, through a client bound to one tracking URI and explicit
run ids: no process-wide tracking URI and no active run, so trackers of two stores, or a
study's parent run and its trials' child runs, live side by side in one process.

A run is either created here (a child run when `parent_run_id` is given, with MLflow's
`mlflow.parentRunId` tag) or, with `run_id`, an existing RUNNING run that this tracker
trains into: the run a bench claim created for its cell.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

import mlflow.pytorch
from mlflow.entities import LoggedModelOutput, Metric
from mlflow.models import Model
from mlflow.tracking.context.registry import resolve_tags

from aevae.tracking import names
from aevae.tracking.runs import RunStore
from aevae.tracking.tracker import end_status, failure_reason


class MlflowTracker:
    """Logs to MLflow: the embedded SQLite store by default, any tracking URI otherwise.

    With a SQLite store (the embedded default is `mlruns/mlflow.db`), artifacts go to an
    `artifacts` folder beside the database; a tracking server decides its own.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = names.DEFAULT_EXPERIMENT, *,
                 parent_run_id: str | None = None, run_id: str | None = None):
        self.store = RunStore(tracking_uri)
        self.client = self.store.client
        self.tracking_uri = self.store.tracking_uri
        self.experiment_id = self.store.experiment(experiment)
        self.parent_run_id = parent_run_id
        self.existing_run_id = run_id
        self.run_id: str | None = None  # the run open in `run`, which every log call writes to
        self._params: dict[str, str] = {}
        self._final: list[Metric] = []  # metrics logged without a step: the model's metrics too

    @contextlib.contextmanager
    def run(self, name, params, tags) -> Iterator[str]:
        run_id = self._open(name, tags)
        self.run_id, self._params, self._final = run_id, {k: str(v) for k, v in params.items()}, []
        try:
            self.store.log_params(run_id, params)
            yield run_id
        except BaseException as exc:
            self.store.end(run_id, end_status(exc), failure_reason(exc))
            raise
        finally:
            self.run_id = None
        self.store.end(run_id, "FINISHED")

    def _open(self, name: str, tags: dict[str, str]) -> str:
        """The run to log into: the existing one, tagged, or a new one with the tags MLflow's
        own `start_run` adds (user, source) so runs look as they always did."""
        if self.existing_run_id is not None:
            self.store.set_tags(self.existing_run_id, tags)
            return self.existing_run_id
        parent = {names.PARENT_RUN_ID: self.parent_run_id} if self.parent_run_id else {}
        created = self.client.create_run(self.experiment_id, run_name=name,
                                         tags=resolve_tags({**tags, **parent}))
        return created.info.run_id

    def _current(self) -> str:
        if self.run_id is None:
            raise RuntimeError("log calls belong inside `with tracker.run(...)`")
        return self.run_id

    def log_metrics(self, metrics, step=None):
        logged = self.store.log_metrics(self._current(), metrics, step)
        if step is None:
            self._final.extend(logged)

    def set_tags(self, tags):
        self.store.set_tags(self._current(), tags)

    def log_figure(self, figure, path):
        self.client.log_figure(self._current(), figure, path)

    def log_image(self, image, key, step):
        self.client.log_image(self._current(), image, key=key, step=step)

    def log_dict(self, data, path):
        self.client.log_dict(self._current(), data, path)

    def log_model(self, model: Any) -> None:
        """The model as an MLflow logged model of the run, in the layout `mlflow.pytorch.log_model`
        gives (the run's `model_uri` tag is `models:/<id>`), written through this tracker's client."""
        run_id = self._current()
        logged = self.client.create_logged_model(self.experiment_id, name="model", source_run_id=run_id,
                                                 params=self._params, tags=resolve_tags())
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        if self._final:  # as log_model does: the run's final metrics are the model's too
            self.client.log_batch(run_id, metrics=[Metric(m.key, m.value, m.timestamp, m.step,
                                                          model_id=logged.model_id) for m in self._final])
        try:
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch) / "model"
                save_pytorch(model, folder, Model(artifact_path=logged.artifact_location, run_id=run_id,
                                                  model_uuid=logged.model_id, model_id=logged.model_id))
                self.client.log_model_artifacts(logged.model_id, str(folder))
        except Exception:
            self.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        self.client.finalize_logged_model(logged.model_id, "READY")
        self.store.set_tags(run_id, {names.MODEL_URI: logged.model_uri})


def save_pytorch(model: Any, folder: Path, meta: Model) -> None:
    """Pickle, not pt2: the loaded model keeps encode/decode/loss, not only forward; MLflow
    warns about that choice on every call, so its logger is quieted for this one call.
    Naming the one requirement skips MLflow's slow requirement inference."""
    logger = logging.getLogger("mlflow.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        mlflow.pytorch.save_model(model, str(folder), mlflow_model=meta, serialization_format="pickle",
                                  pip_requirements=[f"torch=={version('torch').split('+')[0]}"])
    finally:
        logger.setLevel(level)
