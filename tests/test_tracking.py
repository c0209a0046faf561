"""aevae.tracking, the one door to MLflow: nothing else imports mlflow, trackers hold no
process-wide state, a logged model loads back whole, and runs of dead processes are told
apart from live ones."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import torch

from aevae.config import TrainConfig
from aevae.resolve import resolve
from aevae.models import build
from aevae.tracking import names
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.tracking.runs import RunStore
from aevae.tracking.workers import process_gone, this_worker, worker_gone, worker_tags

PACKAGE = Path(__file__).resolve().parent.parent / "aevae"
DOOR = PACKAGE / "tracking"


def mlflow_imports(source: str) -> list[str]:
    """Every module under `mlflow` that `source` imports, at any depth (function-level
    imports and `__import__`/`importlib.import_module` calls with a literal name too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("__import__", "importlib.import_module", "import_module")):
            found.append(node.args[0].value)
    return [name for name in found if name == "mlflow" or name.startswith("mlflow.")]


def test_the_import_check_sees_every_spelling():
    source = ("import os\nfrom mlflow import MlflowClient\ndef f():\n    import mlflow.pytorch\n"
              "    return importlib.import_module('mlflow.entities')\nimport mlflow_like\n")
    assert mlflow_imports(source) == ["mlflow", "mlflow.pytorch", "mlflow.entities"]


def test_no_module_outside_tracking_imports_mlflow():
    sources = [p for p in PACKAGE.rglob("*.py") if DOOR not in p.parents]
    assert len(sources) > 30, "the check must read the package's sources"
    offenders = {str(p.relative_to(PACKAGE)): mlflow_imports(p.read_text()) for p in sources}
    assert {p: m for p, m in offenders.items() if m} == {}
    assert any(mlflow_imports(p.read_text()) for p in DOOR.glob("*.py"))


def test_the_light_tracking_modules_import_no_mlflow():
    code = ("import sys, aevae.tracking, aevae.tracking.names, aevae.tracking.records, aevae.tracking.workers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'torch')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def second_store(tmp_path: Path, migrated_store: Path) -> str:
    path = tmp_path / "other" / "mlflow.db"
    path.parent.mkdir()
    shutil.copyfile(migrated_store, path)
    return f"sqlite:///{path}"


def test_two_trackers_on_two_stores_each_log_to_their_own(tracking_uri, tmp_path, migrated_store):
    other_uri = second_store(tmp_path, migrated_store)
    first, second = MlflowTracker(tracking_uri, "one"), MlflowTracker(other_uri, "two")
    # interleaved: the second tracker is made and used while the first run is open
    with first.run("first", {"lr": 1}, {"side": "first"}) as first_id:
        first.log_metrics({"m": 1.0}, step=1)
        with second.run("second", {"lr": 2}, {"side": "second"}) as second_id:
            first.log_metrics({"m": 2.0}, step=2)
            second.log_metrics({"m": 9.0}, step=1)
            second.set_tags({"late": "second"})
        first.set_tags({"late": "first"})
    for uri, run_id, side, values in ((tracking_uri, first_id, "first", [1.0, 2.0]),
                                      (other_uri, second_id, "second", [9.0])):
        client = mlflow.MlflowClient(uri)
        (experiment,) = [e for e in client.search_experiments() if e.name in ("one", "two")]
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.info.run_id == run_id and run.info.status == "FINISHED"
        assert run.data.tags["side"] == run.data.tags["late"] == side
        assert [m.value for m in client.get_metric_history(run_id, "m")] == values
    assert mlflow.get_tracking_uri() != other_uri  # the process-wide URI was never set


def test_logged_model_loads_back_with_encode_decode_and_loss(tracking_uri):
    cfg = resolve(TrainConfig(model="vae", arch="conv", dataset="mnist", conv_channels=(4, 8), latent_dim=3))
    model = build(cfg, (1, 28, 28)).eval()
    tracker = MlflowTracker(tracking_uri, "models")
    with tracker.run("model", {"latent_dim": 3}, {}) as run_id:
        tracker.log_metrics({"test/loss": 1.5})
        tracker.log_model(model)
    run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    loaded = mlflow.pytorch.load_model(run.data.tags[names.MODEL_URI])  # MLFLOW_TRACKING_URI resolves it
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        (mean, logvar), (mean_again, logvar_again) = model.encode(x), loaded.encode(x)
        assert torch.equal(mean, mean_again) and torch.equal(logvar, logvar_again)
        assert torch.equal(model.decode(mean), loaded.decode(mean))
        torch.manual_seed(0)
        expected = model.loss(x)
        torch.manual_seed(0)
        got = loaded.loss(x)
    assert all(torch.equal(a, b) for a, b in zip(expected, got)) and torch.isfinite(got.total)
    logged = mlflow.MlflowClient(tracking_uri).get_logged_model(run.data.tags[names.MODEL_URI].split("/")[-1])
    assert logged.source_run_id == run_id and logged.params["latent_dim"] == "3"
    assert [m.key for m in logged.metrics] == ["test/loss"]


def test_a_tracker_trains_into_an_existing_run_without_making_another(tracking_uri):
    store = RunStore(tracking_uri)
    experiment_id = store.experiment("bench/into")
    claimed = store.create(experiment_id, "cell/s0", {names.CLAIM: names.CLAIM_WON})
    tracker = MlflowTracker(tracking_uri, "bench/into", run_id=claimed.run_id)
    with pytest.raises(ValueError):
        with tracker.run("cell/s0", {"lr": 0.1}, {names.SEED: "0"}) as run_id:
            assert run_id == claimed.run_id
            tracker.log_metrics({"val/loss": 3.0}, step=1)
            raise ValueError("diverged")
    (run,) = store.find(experiment_id)
    assert (run.run_id, run.status, run.params["lr"]) == (claimed.run_id, "FAILED", "0.1")
    assert run.tags[names.SEED] == "0" and run.tags[names.CLAIM] == names.CLAIM_WON
    assert run.tags[names.FAILURE_REASON] == "ValueError: diverged"


def test_ending_a_run_if_running_leaves_ended_and_unknown_runs_alone(tracking_uri):
    store = RunStore(tracking_uri)
    experiment_id = store.experiment("ends")
    run_id = store.create(experiment_id, "r", {}).run_id
    assert store.end(run_id, "KILLED", "x" * 9000, if_running=True)
    assert not store.end(run_id, "FAILED", "again", if_running=True)
    assert not store.end("0" * 32, "KILLED", "none such", if_running=True)
    ended = store.get(run_id)
    assert ended.status == "KILLED" and ended.tags[names.FAILURE_REASON] == "x" * 5000


def test_a_dead_or_reused_pid_is_gone_a_live_process_or_another_host_is_not():
    here = this_worker().rsplit(":", 1)[0]
    me = psutil.Process()
    assert worker_tags()[names.WORKER] == this_worker()
    assert not worker_gone(worker_tags())
    assert not process_gone(here, me.pid, me.create_time())
    assert not process_gone(here, me.pid)  # no start time recorded: the pid alone decides
    assert process_gone(here, me.pid, me.create_time() - 3600)  # the pid now names another process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert process_gone(here, dead.pid, time.time())
    assert worker_gone({names.WORKER: f"{here}:{dead.pid}"})
    assert not process_gone("another-host.example", dead.pid)
    assert not worker_gone({names.WORKER: "garbage"}) and not process_gone(here, "x")


def test_cells_in_parallel_log_the_same_dataset_inputs(tracking_uri):
    """MLflow's store looks a dataset up and then inserts it; runs starting together on one
    split collide there (a UNIQUE constraint), which the tracker rides out."""
    import threading

    import numpy as np

    from aevae.tracking.records import InputDataset

    splits = [InputDataset("mnist", context, f"digest-{context}", "/data", np.zeros((4, 1, 28, 28), np.uint8),
                           np.zeros(4, np.int64)) for context in ("train", "validation", "test")]
    start, errors, run_ids = threading.Barrier(6), [], []

    def cell():
        tracker = MlflowTracker(tracking_uri, "parallel")
        with tracker.run("cell", {}, {}) as run_id:
            run_ids.append(run_id)
            start.wait()
            try:
                tracker.log_inputs(splits)
            except Exception as exc:  # noqa: BLE001 - the test reports every failure
                errors.append(repr(exc))

    threads = [threading.Thread(target=cell) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    client = mlflow.MlflowClient(tracking_uri)
    assert all(len(client.get_run(run_id).inputs.dataset_inputs) == 3 for run_id in run_ids)
