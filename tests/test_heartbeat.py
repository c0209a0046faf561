"""Claims across hosts: a worker beats while it trains, and any bench closes another host's
claim whose beat is older than the grace period (real SQLite stores, real grids). Also the
executor options and the Ray door, which need no cluster to be checked."""

import ast
import socket
import time
from pathlib import Path

import mlflow
import pytest

from aevae.bench import claims, versions
from aevae.cli import main
from aevae.executors.options import ExecutorOptions, starts_local_cluster
from aevae.tracking import absolute_uri, names
from aevae.tracking.heartbeat import Heartbeat
from aevae.tracking.runs import RunStore

from test_bench import QUICK, runs, write_grid

ONE_CELL = """
[axes]
model = ["ae"]

[base]
epochs = 1
val_size = 100
subset = 200
hidden_dim = 32
analysis = false
"""
PACKAGE = Path(__file__).resolve().parent.parent / "aevae"


def claim_of_another_host(tracking_uri: str, grid: str, beat_age_s: float) -> str:
    """The cell's claim as a worker of another machine leaves it: RUNNING, won, its beat
    `beat_age_s` seconds old by this clock. Returns its run id."""
    from aevae.bench.grid import expand, load_grid

    (cell,) = expand(load_grid(grid))
    store = RunStore(tracking_uri)
    experiment_id = store.experiment(names.bench_experiment(cell.grid))
    tags = {names.GRID: cell.grid, names.CELL: cell.key, names.CONFIG_HASH: cell.config_hash,
            names.SEED: str(cell.seed), names.CLAIM: names.CLAIM_WON, names.WORKER: "elsewhere-7:4242",
            names.WORKER_STARTED: "1.0", names.HEARTBEAT: f"{time.time() - beat_age_s:.3f}"}
    if versions.default_label():  # the version the bench runs, so that the claim is on its cell
        tags[names.VERSION_LABEL] = versions.default_label()
    return store.create(experiment_id, cell.run_name, tags).run_id


def test_a_stale_claim_of_another_host_is_closed_and_its_cell_trained(data_root, tracking_uri, tmp_path, capsys):
    grid = write_grid(tmp_path, "stale", ONE_CELL)
    stale = claim_of_another_host(tracking_uri, grid, beat_age_s=600)
    assert main(["bench", grid, *QUICK]) == 0
    assert "closed 1 run(s) left RUNNING by dead workers" in capsys.readouterr().out
    closed = mlflow.MlflowClient(tracking_uri).get_run(stale)
    assert closed.info.status == "KILLED"
    reason = closed.data.tags["failure_reason"]
    assert reason.startswith("WorkerDied: worker elsewhere-7:4242 has not beaten for 6") and "grace 180 s" in reason
    (done,) = runs(tracking_uri, "stale", "FINISHED")
    assert done.data.tags["worker"].startswith(f"{socket.gethostname()}:")
    assert time.time() - float(done.data.tags["heartbeat"]) < 120  # it beat while it trained


def test_a_fresh_claim_of_another_host_is_left_alone(data_root, tracking_uri, tmp_path, capsys):
    grid = write_grid(tmp_path, "fresh", ONE_CELL)
    fresh = claim_of_another_host(tracking_uri, grid, beat_age_s=5)
    assert main(["bench", grid, *QUICK]) == 0  # busy is another worker's, not a failure
    assert "busy: 1 cell (ae/mlp/mnist/s0): claimed by worker elsewhere-7:4242" in capsys.readouterr().out
    assert mlflow.MlflowClient(tracking_uri).get_run(fresh).info.status == "RUNNING"
    assert not runs(tracking_uri, "fresh", "FINISHED")
    # the same claim judged with a grace shorter than its silence: dead
    beat = float(mlflow.MlflowClient(tracking_uri).get_run(fresh).data.tags["heartbeat"])
    time.sleep(max(0.0, beat + 7 - time.time()))
    assert main(["bench", grid, *QUICK, "--heartbeat-grace", "6"]) == 0
    assert mlflow.MlflowClient(tracking_uri).get_run(fresh).info.status == "KILLED"
    assert len(runs(tracking_uri, "fresh", "FINISHED")) == 1


def test_a_claim_of_an_earlier_attempt_of_the_same_task_is_dead_at_once(tracking_uri):
    store = RunStore(tracking_uri)
    experiment_id = store.experiment("bench/retry")
    tags = {names.GRID: "retry", names.CONFIG_HASH: "abc"}
    first = claims.claim(store, experiment_id, "retry", "abc", "cell/s0", tags, task="ray:t1")
    other = claims.claim(store, experiment_id, "retry", "abc", "cell/s0", tags, task="ray:t2")
    assert (first.status, other.status) == ("won", "busy")  # another task's live claim
    again = claims.claim(store, experiment_id, "retry", "abc", "cell/s0", tags, task="ray:t1")
    assert again.status == "won" and again.run.run_id != first.run.run_id
    dead = store.get(first.run.run_id)
    assert dead.status == "KILLED" and "its task was retried" in dead.tags[names.FAILURE_REASON]


def test_the_heartbeat_thread_beats_until_the_block_ends(tracking_uri):
    store = RunStore(tracking_uri)
    run_id = store.create(store.experiment("beats"), "r", {}).run_id
    with Heartbeat(tracking_uri, run_id, interval_s=0.05) as beat:
        time.sleep(0.6)
    beats = beat.beats
    first = float(store.get(run_id).tags[names.HEARTBEAT])
    assert beats >= 3 and time.time() - first < 5
    time.sleep(0.3)
    assert beat.beats == beats  # stopped


def test_executor_options_are_checked_in_one_sentence(capsys):
    with pytest.raises(Exception, match="pass --executor ray with them"):
        ExecutorOptions("local", gpus_per_cell=1).check()
    with pytest.raises(Exception, match="--workers must be at least 1."):
        ExecutorOptions("ray", workers=0).check()
    assert main(["bench", "smoke", "--heartbeat-grace", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "aevae bench: error: --heartbeat-grace must be at least 6 seconds (one beat a second).")
    with pytest.raises(SystemExit) as stopped:  # argparse's own way: usage, then the sentence, exit 2
        main(["tune", "quick", "--workers", "many", "--studies-dir", str(PACKAGE.parent / "studies")])
    assert stopped.value.code == 2 and "'many' is neither a whole number nor 'auto'" in capsys.readouterr().err


def test_a_command_starts_its_own_cluster_only_when_none_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert starts_local_cluster(None) and starts_local_cluster("local")
    assert not starts_local_cluster("10.0.0.5:6379") and not starts_local_cluster("auto")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:6379")  # what `ray start` leaves
    assert not starts_local_cluster(None)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "none"))
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert not starts_local_cluster(None)


def test_relative_sqlite_stores_are_made_absolute_for_other_processes():
    assert absolute_uri("sqlite:///mlruns/mlflow.db") == f"sqlite:///{Path.cwd() / 'mlruns/mlflow.db'}"
    assert absolute_uri("sqlite:////abs/mlflow.db") == "sqlite:////abs/mlflow.db"
    assert absolute_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_only_the_executor_door_imports_ray():
    def imports_ray(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            names_ = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "ray" or n.startswith("ray.") for n in names_):
                return True
        return False

    importers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if imports_ray(p))
    assert importers == ["executors/ray_cluster.py"]
