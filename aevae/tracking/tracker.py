"""The one narrow tracking interface that training logs to, and a tracker in memory for tests.
Light: it imports no MLflow (aevae.tracking.mlflow_tracker holds the MLflow one).

A run lives inside `with tracker.run(...)`: it ends FINISHED when the block ends, KILLED on
Ctrl-C, and FAILED (with the reason as the `failure_reason` tag) on any other exception.
An exception may carry a `run_status` attribute to choose another end state (Optuna's pruned
trials end KILLED that way).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Protocol

from aevae.redact import redact
from aevae.tracking.names import FAILURE_REASON
from aevae.tracking.records import InputDataset

DEFAULT_STORE_DIR = "mlruns"
DEFAULT_TRACKING_URI = f"sqlite:///{DEFAULT_STORE_DIR}/mlflow.db"  # the embedded store


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store under `mlruns/`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def absolute_uri(tracking_uri: str) -> str:
    """The URI with a relative SQLite path made absolute (for processes in other folders)."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not tracking_uri.startswith(prefix + "/"):
        return prefix + os.path.abspath(tracking_uri.removeprefix(prefix))
    return tracking_uri


def failure_reason(exc: BaseException) -> str:
    """One line for the run's `failure_reason` tag, with any URL's password masked."""
    if isinstance(exc, KeyboardInterrupt):
        return str(exc) if str(exc).startswith("interrupted") else "interrupted (KeyboardInterrupt)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def end_status(exc: BaseException | None) -> str:
    """The state a run ends in: FINISHED, KILLED on Ctrl-C, else the exception's `run_status`
    or FAILED."""
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

    def log_image(self, image: Any, key: str, step: int) -> None:
        """A `[H,W]` or `[H,W,3]` uint8 array as the image `key` at `step`: a frame of MLflow's
        image slider, not a file artifact."""
        ...

    def log_dict(self, data: dict, path: str) -> None: ...

    def log_inputs(self, datasets: list[InputDataset]) -> None: ...

    def log_model(self, model: Any, input_example: Any = None, code_paths: list[str] = ()) -> None: ...


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
                  "artifacts": {}, "images": {}, "inputs": [], "status": "RUNNING"}
        self.runs.append(record)
        try:
            yield f"memory-{len(self.runs)}"
        except BaseException as exc:
            record["status"] = end_status(exc)
            record["tags"][FAILURE_REASON] = failure_reason(exc)
            raise
        record["status"] = "FINISHED"

    def log_metrics(self, metrics, step=None):
        for key, value in metrics.items():
            self.current["metrics"].setdefault(key, []).append((step, float(value)))

    def set_tags(self, tags):
        self.current["tags"].update(tags)

    def log_figure(self, figure, path):
        self.current["artifacts"][path] = figure

    def log_image(self, image, key, step):
        self.current["images"].setdefault(key, []).append((step, image))

    def log_dict(self, data, path):
        self.current["artifacts"][path] = data

    def log_inputs(self, datasets):
        self.current["inputs"].extend(datasets)

    def log_model(self, model, input_example=None, code_paths=()):
        self.current["artifacts"]["model"] = model
        self.current["artifacts"]["input_example"] = input_example
        self.current["artifacts"]["code_paths"] = list(code_paths)
