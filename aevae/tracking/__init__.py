"""Tracking: the one door to MLflow. Training, the grid, the tuner and the report reach
MLflow only through this package."""

from aevae.tracking.tracker import (
    FAILURE_TAG, MemoryTracker, MlflowTracker, Tracker, artifact_root, default_tracking_uri,
    end_abandoned_run, end_status, ensure_experiment, failure_reason,
)

__all__ = ["FAILURE_TAG", "MemoryTracker", "MlflowTracker", "Tracker", "artifact_root",
           "default_tracking_uri", "end_abandoned_run", "end_status", "ensure_experiment",
           "failure_reason"]
