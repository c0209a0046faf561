"""The tracker that logs to MLflow, through a client bound to one tracking URI and explicit
run ids: no process-wide tracking URI and no active run, so trackers of two stores, or a
study's parent run and its trials' child runs, live side by side in one process.

A run is either created here (a child run when `parent_run_id` is given, with MLflow's
`mlflow.parentRunId` tag) or, with `run_id`, an existing RUNNING run that this tracker
trains into: the run a bench claim created for its cell. Either way it gets the tags MLflow's
`start_run` adds (user, source), the source's name being the tracker's `entry_point`, so
the UI's Source column names the command. With `system_metrics`, MLflow's own monitor logs
`system/*` metrics (CPU, memory, disk, network; GPU where pynvml is installed) every
MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL seconds (10 by default) while the run is open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

import mlflow.data
import mlflow.pytorch
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, Metric
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from mlflow.tracking.context.registry import resolve_tags

from aevae.tracking import names
from aevae.tracking.records import InputDataset
from aevae.tracking.runs import RunStore, safe
from aevae.tracking.tracker import end_status, failure_reason


class MlflowTracker:
    """Logs to MLflow: the embedded SQLite store by default, any tracking URI otherwise.

    With a SQLite store (the embedded default is `mlruns/mlflow.db`), artifacts go to an
    `artifacts` folder beside the database; a tracking server decides its own.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = names.DEFAULT_EXPERIMENT, *,
                 parent_run_id: str | None = None, run_id: str | None = None,
                 entry_point: str | None = None, system_metrics: bool = False):
        self.entry_point = entry_point  # None: the script's path, as MLflow's start_run records
        self.system_metrics = system_metrics
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
        monitor = self._start_monitor(run_id)
        try:
            self.store.log_params(run_id, params)
            yield run_id
        except BaseException as exc:
            stop_monitor(monitor)
            try:
                self.store.end(run_id, end_status(exc), failure_reason(exc))
            except Exception:  # noqa: BLE001 - a store that fails too must not hide why the run stopped
                pass
            raise
        finally:
            self.run_id = None
        stop_monitor(monitor)
        self.store.end(run_id, "FINISHED")

    def _open(self, name: str, tags: dict[str, str]) -> str:
        """The run to log into: the existing one or a new one, with the tags MLflow's own
        `start_run` adds (user, source type, git commit) and the entry point as its source."""
        source = {names.MLFLOW_SOURCE_NAME: self.entry_point} if self.entry_point else {}
        parent = {names.PARENT_RUN_ID: self.parent_run_id} if self.parent_run_id else {}
        context = safe(resolve_tags({**source, **tags, **parent}))
        if self.existing_run_id is not None:
            self.store.set_tags(self.existing_run_id, context)
            return self.existing_run_id
        return self.client.create_run(self.experiment_id, run_name=name, tags=context).info.run_id

    def _start_monitor(self, run_id: str) -> SystemMetricsMonitor | None:
        if not self.system_metrics:
            return None
        with quiet("mlflow.system_metrics"):  # it says at INFO that it starts, and that no GPU is there
            monitor = SystemMetricsMonitor(run_id, tracking_uri=self.tracking_uri)
            monitor.start()
        return monitor

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

    def log_inputs(self, datasets: list[InputDataset]) -> None:
        """Each split as an MLflow dataset input of the run, in its context: the UI's Dataset
        column and dataset filter read these. The digest is the split's own (MLflow's would
        hash only its first 10,000 values); the arrays give the schema and profile (shapes)."""
        inputs = []
        for found in datasets:
            source = get_dataset_source_from_json(json.dumps({"uri": found.source}), "local")
            dataset = mlflow.data.from_numpy(found.images, source=source, targets=found.labels,
                                             name=found.name, digest=found.digest)
            inputs.append(DatasetInput(Dataset(**dataset.to_dict()),
                                       [InputTag(names.INPUT_CONTEXT, found.context)]))
        try:
            self.client.log_inputs(self._current(), datasets=inputs)
        except MlflowException:
            # MLflow's store looks for the dataset, then inserts it: a cell training in parallel
            # on the same split can insert it in between. Again, it is found and only linked.
            self.client.log_inputs(self._current(), datasets=inputs)

    def log_model(self, model: Any, input_example: Any = None, code_paths: list[str] = ()) -> None:
        """The model as an MLflow logged model of the run, in the layout `mlflow.pytorch.log_model`
        gives (the run's `model_uri` tag is `models:/<id>`), written through this tracker's client.
        With `input_example` (a NumPy batch the model takes), the model is saved with it and
        with the signature MLflow infers by running the model on it; with `code_paths` (a
        plug-in's module file or package folder), with that code, which MLflow puts on the
        path when it loads the model, so a plug-in's model loads back where it is not installed."""
        run_id = self._current()
        logged = self.client.create_logged_model(self.experiment_id, name="model", source_run_id=run_id,
                                                 params=safe(self._params), tags=safe(resolve_tags()))
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        if self._final:  # as log_model does: the run's final metrics are the model's too
            self.client.log_batch(run_id, metrics=[Metric(m.key, m.value, m.timestamp, m.step,
                                                          model_id=logged.model_id) for m in self._final])
        try:
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch) / "model"
                save_pytorch(model, folder, Model(artifact_path=logged.artifact_location, run_id=run_id,
                                                  model_uuid=logged.model_id, model_id=logged.model_id),
                             input_example, code_paths)
                self.client.log_model_artifacts(logged.model_id, str(folder))
        except Exception:
            self.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        self.client.finalize_logged_model(logged.model_id, "READY")
        self.store.set_tags(run_id, {names.MODEL_URI: logged.model_uri})


def save_pytorch(model: Any, folder: Path, meta: Model, input_example: Any = None, code_paths: list[str] = ()) -> None:
    """Pickle, not pt2: the loaded model keeps encode/decode/loss, not only forward; MLflow
    warns about that choice on every call, so its logger is quieted for this one call.
    Naming the one requirement skips MLflow's slow requirement inference."""
    with quiet("mlflow.pytorch"):
        mlflow.pytorch.save_model(model, str(folder), mlflow_model=meta, serialization_format="pickle",
                                  pip_requirements=[f"torch=={version('torch').split('+')[0]}"],
                                  input_example=input_example, code_paths=list(code_paths) or None)


def stop_monitor(monitor: SystemMetricsMonitor | None) -> None:
    """Stop the monitor and log what it holds, before the run ends."""
    if monitor is not None:
        with quiet("mlflow.system_metrics"):
            monitor.finish()


@contextlib.contextmanager
def quiet(logger_name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise one MLflow logger's level for the block: the lines it would print at INFO or
    WARNING on every run would bury the command's own output."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)
