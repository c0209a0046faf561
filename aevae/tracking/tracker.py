"""The one narrow tracking interface. MLflow is imported here and nowhere else in training.

A run lives inside `with tracker.run(...)`: it ends FINISHED when the block ends, KILLED on
Ctrl-C, and FAILED (with the reason as the `failure_reason` tag) on any other exception.
An exception may carry a `run_status` attribute to choose another end state (Optuna's pruned
trials end KILLED that way).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Protocol

DEFAULT_STORE_DIR = "mlruns"
FAILURE_TAG = "failure_reason"


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store under `mlruns/`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE_DIR}/mlflow.db"


def artifact_root(tracking_uri: str) -> str | None:
    """For a SQLite store, an `artifacts` folder beside the database (created here); for a
    tracking server, None: the server decides where artifacts go."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    folder = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


def failure_reason(exc: BaseException) -> str:
    """One line for the run's `failure_reason` tag."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def end_status(exc: BaseException | None) -> str:
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED"
    return getattr(exc, "run_status", "FAILED")


class Tracker(Protocol):
    """What training needs of a tracker: one run at a time, metrics in batches, artifacts."""

    def run(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> contextlib.AbstractContextManager[str]: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_figure(self, figure: Any, path: str) -> None: ...

    def log_dict(self, data: dict, path: str) -> None: ...

    def log_model(self, model: Any) -> None: ...


class MemoryTracker:
    """Keeps everything in lists and dicts: for tests and for callers that log nothing."""

    def __init__(self):
        self.runs: list[dict[str, Any]] = []

    @property
    def current(self) -> dict[str, Any]:
        return self.runs[-1]

    @contextlib.contextmanager
    def run(self, name, params, tags) -> Iterator[str]:
        record = {"name": name, "params": dict(params), "tags": dict(tags), "metrics": {},
                  "artifacts": {}, "status": "RUNNING"}
        self.runs.append(record)
        try:
            yield f"memory-{len(self.runs)}"
        except BaseException as exc:
            record["status"] = end_status(exc)
            record["tags"][FAILURE_TAG] = failure_reason(exc)
            raise
        record["status"] = "FINISHED"

    def log_metrics(self, metrics, step=None):
        for key, value in metrics.items():
            self.current["metrics"].setdefault(key, []).append((step, float(value)))

    def set_tags(self, tags):
        self.current["tags"].update(tags)

    def log_figure(self, figure, path):
        self.current["artifacts"][path] = figure

    def log_dict(self, data, path):
        self.current["artifacts"][path] = data

    def log_model(self, model):
        self.current["artifacts"]["model"] = model


class MlflowTracker:
    """Logs to MLflow: the embedded SQLite store by default, any tracking URI otherwise.

    With a SQLite store (the embedded default is `mlruns/mlflow.db`), artifacts go to an
    `artifacts` folder beside the database; a tracking server decides its own.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "aevae",
                 parent_run_id: str | None = None):
        import mlflow

        self._mlflow = mlflow
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.parent_run_id = parent_run_id
        mlflow.set_tracking_uri(self.tracking_uri)
        self.experiment_id = ensure_experiment(
            mlflow.MlflowClient(self.tracking_uri), experiment, artifact_root(self.tracking_uri)
        )

    @contextlib.contextmanager
    def run(self, name, params, tags) -> Iterator[str]:
        mlflow = self._mlflow
        # nested: the parent may be the active run of this process (an Optuna study's run).
        active = mlflow.start_run(experiment_id=self.experiment_id, run_name=name, tags=tags,
                                  parent_run_id=self.parent_run_id, nested=self.parent_run_id is not None)
        try:
            mlflow.log_params(params)
            yield active.info.run_id
        except BaseException as exc:
            mlflow.set_tag(FAILURE_TAG, failure_reason(exc)[:5000])
            mlflow.end_run(status=end_status(exc))
            raise
        mlflow.end_run(status="FINISHED")

    def log_metrics(self, metrics, step=None):
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def set_tags(self, tags):
        self._mlflow.set_tags(tags)

    def log_figure(self, figure, path):
        self._mlflow.log_figure(figure, path)

    def log_dict(self, data, path):
        self._mlflow.log_dict(data, path)

    def log_model(self, model):
        import torch

        # Pickle, not pt2: the loaded model keeps encode/decode/loss, not only forward; MLflow
        # warns about that choice on every call, so its logger is quieted for this one call.
        # Naming the one requirement skips MLflow's slow requirement inference.
        logger = logging.getLogger("mlflow.pytorch")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            info = self._mlflow.pytorch.log_model(
                model, name="model", serialization_format="pickle",
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )
        finally:
            logger.setLevel(level)
        self._mlflow.set_tag("model_uri", info.model_uri)


def ensure_experiment(client, name: str, artifact_location: str | None) -> str:
    """The id of experiment `name`, created if missing (safe when processes race to create it)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def end_abandoned_run(tracking_uri: str, run_id: str, reason: str) -> bool:
    """End a run that a dead process left RUNNING as KILLED, with `reason` as its
    `failure_reason`; False when the store has no such run or it has already ended."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri)
    try:
        if client.get_run(run_id).info.status != "RUNNING":
            return False
    except MlflowException:
        return False
    client.set_tag(run_id, FAILURE_TAG, reason[:5000])
    client.set_terminated(run_id, status="KILLED")
    return True
