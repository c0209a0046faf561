"""Tracking: the one door to MLflow. Training, the grid, the tuner and the report reach MLflow
only through this package, and nothing outside it imports mlflow (tests/test_tracking.py
checks the sources).

- `tracker`: the `Tracker` interface training logs to, and `MemoryTracker` for tests (light).
- `names`: every tag, experiment and metric name written on one side and read on another
  (light).
- `workers`: which process runs a run, and whether it still lives (light).
- `step_images`: the images a run logged per step (the frames), parsed from MLflow's artifact
  names (light).
- `heartbeat`: `Heartbeat`, a worker's beat for its run from a background thread.
- `records`: `RunRecord` and `ExperimentRecord`, what the store holds as plain data (light).
- `runs`: `RunStore`, runs by id through a client bound to one tracking URI: paged search,
  create, tag, end with a reason, delete; runs come back as plain `RunRecord`s.
- `mlflow_tracker`: `MlflowTracker`, the `Tracker` that logs to MLflow.
- `reader`: `StoreReader`, the report's read-only access.

This module imports no MLflow, so `from aevae.tracking import names` costs nothing.
"""

from aevae.tracking.tracker import (
    DEFAULT_TRACKING_URI, MemoryTracker, Tracker, absolute_uri, default_tracking_uri, end_status,
    failure_reason,
)

__all__ = ["DEFAULT_TRACKING_URI", "MemoryTracker", "Tracker", "absolute_uri", "default_tracking_uri",
           "end_status", "failure_reason"]
