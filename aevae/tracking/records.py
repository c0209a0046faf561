"""What the tracking store holds, as plain records: the bench, the tuner and the report
handle these, never MLflow's entity types. Light: no MLflow import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: `start_time` in ms since the epoch; metrics are the latest values."""

    run_id: str
    name: str
    status: str  # RUNNING, SCHEDULED, FINISHED, FAILED or KILLED
    start_time: int
    experiment_id: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, run) -> "RunRecord":
        """From an `mlflow.entities.Run`."""
        info, data = run.info, run.data
        return cls(info.run_id, info.run_name or "", info.status, info.start_time or 0,
                   info.experiment_id, dict(data.tags), dict(data.metrics), dict(data.params))


@dataclass(frozen=True)
class ExperimentRecord:
    name: str
    experiment_id: str
    tags: dict[str, str]


@dataclass(frozen=True)
class InputDataset:
    """One split a run reads, for MLflow's dataset inputs: the dataset's `name` (e.g. mnist),
    its `context` (names.TRAIN_CONTEXT, ...), the `digest` of its decoded images and labels,
    the `source` folder of its files, and the arrays themselves (uint8 images `[N,C,H,W]`,
    int64 labels `[N]`, NumPy), of which only the shapes and dtypes are logged."""

    name: str
    context: str
    digest: str
    source: str
    images: Any
    labels: Any
