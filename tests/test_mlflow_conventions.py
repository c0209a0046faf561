"""MLflow's own conventions, on a real store: each split a run reads is a dataset input with
its context and the digest of its decoded data, runs carry MLflow's source tags, logged
models have a signature and an input example, and system metrics are logged when asked."""

from __future__ import annotations

import hashlib
import time

import mlflow
import numpy as np
import pytest
from mlflow.models import get_model_info

from aevae import data
from aevae.cli import main
from aevae.config import TrainConfig
from aevae.tracking import names
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training.loop import RunOptions, train

CELL_GRID = """
seeds = [0]
[base]
subset = 200
val_size = 100
batch_size = 50
hidden_dim = 32
latent_dim = 4
epochs = 1
analysis = false
[axes]
model = ["ae", "vae"]
arch = ["mlp"]
dataset = ["mnist"]
"""


def inputs_by_context(run) -> dict[str, mlflow.entities.Dataset]:
    found = {}
    for given in run.inputs.dataset_inputs:
        (context,) = [t.value for t in given.tags if t.key == names.INPUT_CONTEXT]
        found[context] = given.dataset
    return found


def sha256_prefix(images: np.ndarray, labels: np.ndarray) -> str:
    """The digest as the test reads it: both arrays' bytes, in the order the run reads them."""
    return hashlib.sha256(images.tobytes() + labels.astype(np.int64).tobytes()).hexdigest()[:10]


@pytest.fixture
def bench_runs(data_root, tracking_uri, tmp_path, monkeypatch):
    """Two cells of a tiny grid, trained by `aevae bench` with its defaults (artifacts and
    system metrics on), the monitor sampling every 0.2 s so a second-long cell logs some."""
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    grid = tmp_path / "conventions.toml"
    grid.write_text(CELL_GRID)
    assert main(["bench", str(grid)]) == 0
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("bench/conventions")
    return client, experiment.experiment_id, client.search_runs([experiment.experiment_id])


def test_each_split_is_a_dataset_input_with_its_context_digest_and_source(bench_runs, data_root):
    client, experiment_id, runs = bench_runs
    splits = data.load("mnist", str(data_root), val_size=100, subset=200)
    expected = {names.TRAIN_CONTEXT: splits.train, names.VALIDATION_CONTEXT: splits.val,
                names.TEST_CONTEXT: splits.test}
    assert len(runs) == 2
    for run in runs:
        found = inputs_by_context(run)
        assert set(found) == set(expected)
        for context, dataset in found.items():
            part = expected[context]
            assert dataset.name == "mnist" and dataset.source_type == "local"
            assert dataset.digest == sha256_prefix(part.images.numpy(), part.labels.numpy())
            assert str(data_root / "MNIST" / "raw") in dataset.source
            assert f"[{len(part)}, 1, 28, 28]" in dataset.profile
    assert len({d.digest for d in inputs_by_context(runs[0]).values()}) == 3  # three different splits
    # what the UI's dataset filter asks the store
    found = client.search_runs([experiment_id], "dataset.name = 'mnist' AND dataset.context = 'test'")
    assert {r.info.run_id for r in found} == {r.info.run_id for r in runs}
    assert not client.search_runs([experiment_id], "dataset.name = 'cifar10'")


def test_a_different_subset_has_a_different_digest(data_root):
    small, larger = (data.load("mnist", str(data_root), val_size=100, subset=n) for n in (100, 200))
    assert small.train.digest != larger.train.digest
    assert small.train.digest == data.load("mnist", str(data_root), val_size=100, subset=100).train.digest


def test_bench_runs_carry_mlflows_source_tags(bench_runs):
    _, _, runs = bench_runs
    for run in runs:
        tags = run.data.tags
        assert tags[names.MLFLOW_SOURCE_NAME] == names.ENTRY_BENCH
        assert tags[names.MLFLOW_SOURCE_TYPE] == "LOCAL"
        assert tags[names.MLFLOW_GIT_COMMIT] == tags[names.GIT_COMMIT] != ""
        assert tags[names.MLFLOW_USER]


def test_the_logged_model_has_a_signature_and_an_input_example(bench_runs):
    _, _, runs = bench_runs
    for run in runs:
        info = get_model_info(run.data.tags[names.MODEL_URI])
        (inputs,), (outputs,) = info.signature.inputs.inputs, info.signature.outputs.inputs
        assert (inputs.type, inputs.shape) == (np.dtype("float32"), (-1, 1, 28, 28))
        assert (outputs.type, outputs.shape) == (np.dtype("float32"), (-1, 1, 28, 28))
        example = mlflow.models.Model.load(info.model_uri).load_input_example(
            mlflow.artifacts.download_artifacts(info.model_uri))
        assert example.shape == (2, 1, 28, 28) and 0 <= example.min() and example.max() <= 1


def test_grid_cells_log_system_metrics_by_default(bench_runs):
    _, _, runs = bench_runs
    for run in runs:
        assert "system/cpu_utilization_percentage" in run.data.metrics
        assert "system/system_memory_usage_megabytes" in run.data.metrics


@pytest.mark.parametrize("system_metrics", [True, False])
def test_the_tracker_logs_system_metrics_only_when_asked(tracking_uri, monkeypatch, system_metrics):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.1")
    tracker = MlflowTracker(tracking_uri, "system", system_metrics=system_metrics)
    with tracker.run("sleeps", {}, {}) as run_id:
        time.sleep(0.6)
    logged = mlflow.MlflowClient(tracking_uri).get_run(run_id).data.metrics
    assert any(key.startswith("system/") for key in logged) == system_metrics


def test_a_trial_logs_train_and_validation_inputs_only(data_root, tracking_uri):
    cfg = TrainConfig(epochs=1, val_size=100, subset=200, hidden_dim=16, latent_dim=2, analysis=False)
    splits = data.load("mnist", val_size=100, subset=200)
    tracker = MlflowTracker(tracking_uri, "trials", entry_point=names.ENTRY_TUNE)
    result = train(cfg, splits.without_test(), tracker, options=RunOptions(artifacts=False))
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert set(inputs_by_context(run)) == {names.TRAIN_CONTEXT, names.VALIDATION_CONTEXT}
    assert run.data.tags[names.MLFLOW_SOURCE_NAME] == names.ENTRY_TUNE


def test_a_run_without_an_entry_point_names_its_script_as_mlflow_does(tracking_uri):
    with MlflowTracker(tracking_uri, "plain").run("plain", {}, {}) as run_id:
        pass
    tags = mlflow.MlflowClient(tracking_uri).get_run(run_id).data.tags
    assert tags[names.MLFLOW_SOURCE_TYPE] == "LOCAL" and tags[names.MLFLOW_SOURCE_NAME]



def test_every_experiment_aevae_makes_is_marked_as_model_training(bench_runs, tracking_uri):
    """MLflow 3's UI reads `mlflow.experimentKind` to decide what an experiment's page offers;
    an experiment of an older aevae (or made by hand) gets the tag when aevae next opens it."""
    client, experiment_id, _ = bench_runs
    assert client.get_experiment(experiment_id).tags[names.EXPERIMENT_KIND] == names.MODEL_TRAINING_KIND
    with MlflowTracker(tracking_uri, "trained", entry_point=names.ENTRY_TRAIN).run("r", {}, {}):
        pass
    older = client.create_experiment("tune/older")
    MlflowTracker(tracking_uri, "tune/older", entry_point=names.ENTRY_TUNE)
    for name in ("trained", "tune/older"):
        assert client.get_experiment_by_name(name).tags[names.EXPERIMENT_KIND] == names.MODEL_TRAINING_KIND
    assert client.get_experiment(older).tags[names.EXPERIMENT_KIND] == names.MODEL_TRAINING_KIND
