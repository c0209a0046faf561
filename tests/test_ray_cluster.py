"""A grid and a study on a real Ray cluster of several nodes (Ray's cluster_utils, every port
on 127.0.0.1), with the stack of `make services` (a real PostgreSQL and an MLflow server on
it, started by deploy/services.py in a temporary folder) and the real MNIST files. Nodes and
workers are killed for real, mid-training. Slow: about three minutes on two cores."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import optuna
import psutil
import pytest
from optuna.trial import TrialState

from aevae.tune.storage import open_storage
from conftest import REAL_DATA, deploy_services

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REAL_DATA is None or not os.path.isdir(os.path.join(REAL_DATA, "MNIST")),
                       reason="needs AEVAE_DATA_DIR with the real MNIST files"),
]
ROOT = Path(__file__).resolve().parent.parent
services = deploy_services()
NODE = {"num_cpus": 1, "object_store_memory": 150 * 2**20}  # the machine has two cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack():
    """PostgreSQL and an MLflow server that proxies artifacts, as `make services` starts them."""
    folder = Path(tempfile.mkdtemp(prefix="aevae-services-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user when the tests run as root
    found = services.Stack(folder, "127.0.0.1", free_port(), free_port(), free_port())
    try:
        services.postgres_up(found)
        services.mlflow_up(found)
        yield found
    finally:
        services.down(found)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head with no CPU of its own, on loopback, with token authentication; tests add
    and remove the worker nodes they need. The driver (`aevae` in a subprocess) joins it."""
    token = tmp_path_factory.mktemp("ray") / "token"
    token.write_text(secrets.token_hex(32))
    with pytest.MonkeyPatch.context() as env:
        # Ray reads these when it is imported and when it starts processes, which inherit them
        env.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        env.setenv("RAY_AUTH_MODE", "token")
        env.setenv("RAY_AUTH_TOKEN_PATH", str(token))
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        from ray.cluster_utils import Cluster

        head = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
        try:
            yield head
        finally:
            head.shutdown()


def aevae(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aevae", *args], cwd=popen.pop("cwd"), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def node_running(cluster, pid: int):
    """The worker node whose raylet started process `pid`."""
    ancestors = {p.pid for p in psutil.Process(pid).parents()}
    for node in cluster.worker_nodes:
        if node.all_processes["raylet"][0].process.pid in ancestors:
            return node
    return None


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the command ended before {what}:\n{process.stdout.read()}")
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no {what} within {timeout} s:\n{process.stdout.read()}")


GRID = """
seeds = [0, 1]
[base]
arch = "mlp"
epochs = 25
subset = 2000
val_size = 500
hidden_dim = 64
analysis = false
[axes]
model = ["ae", "vae"]
"""


def test_a_grid_survives_losing_a_node_mid_cell(stack, cluster, tmp_path):
    nodes = [cluster.add_node(**NODE) for _ in range(2)]
    (tmp_path / "twonodes.toml").write_text(GRID)
    driver = aevae("bench", str(tmp_path / "twonodes.toml"), "--executor", "ray", "--ray-address", cluster.address,
                   "--tracking-uri", stack.mlflow_url, "--data-dir", REAL_DATA, cwd=tmp_path)
    client = mlflow.MlflowClient(stack.mlflow_url)

    def a_run_mid_training():
        experiment = client.get_experiment_by_name("bench/twonodes")
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") if experiment else []:
            if "train/loss" in run.data.metrics:  # at least one epoch done
                return run
        return None

    victim = wait_for(a_run_mid_training, 240, "a cell mid-training", driver)
    node = node_running(cluster, int(victim.data.tags["worker"].rpartition(":")[2]))
    assert node in nodes
    removed_at = time.time()
    cluster.remove_node(node, allow_graceful=False)
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, out
    assert "(joined): 3 node(s) on 1 host(s), 2 CPUs" in out  # the driver says where cells run

    experiment = client.get_experiment_by_name("bench/twonodes")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    finished = [(r.data.tags["cell"], r.data.tags["seed"]) for r in runs if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted({(m, s) for m in ("ae/mlp/mnist", "vae/mlp/mnist") for s in ("0", "1")})
    assert not [r for r in runs if r.info.status == "RUNNING"]
    lost = client.get_run(victim.info.run_id)
    assert lost.info.status == "KILLED" and lost.data.tags["failure_reason"].startswith("WorkerDied: ")
    again = next(r for r in runs if r.info.status == "FINISHED" and r.data.tags["config_hash"] == victim.data.tags["config_hash"])
    assert again.data.tags["worker_task"] == victim.data.tags["worker_task"]  # Ray's retry of the same task
    assert again.info.start_time / 1000 > removed_at

    report = subprocess.run([sys.executable, "-m", "aevae", "report", "twonodes", "--tracking-uri", stack.mlflow_url,
                             "--out", str(tmp_path / "report")], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "4 of 4 runs finished" in report.stdout
    text = (tmp_path / "report" / "RESULTS.md").read_text()
    assert "vae/mlp/mnist" in text or "VAE" in text
    for node in cluster.worker_nodes.copy():
        cluster.remove_node(node)


STUDY = """
trials = 6
pruner = "none"
[cells]
model = ["vae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 8
subset = 3000
val_size = 500
hidden_dim = 64
latent_dim = 4
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""


def test_two_ray_workers_share_a_postgres_study_and_a_killed_trial_is_retried(stack, cluster, tmp_path):
    for _ in range(2):
        cluster.add_node(**NODE)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "raytiny.toml").write_text(STUDY)
    storage = stack.postgres_url("optuna")
    driver = aevae("tune", "raytiny", "--executor", "ray", "--workers", "2", "--ray-address", cluster.address,
                   "--storage", storage, "--tracking-uri", stack.mlflow_url, "--data-dir", REAL_DATA,
                   "--heartbeat-grace", "6", "--studies-dir", str(tmp_path / "studies"), cwd=tmp_path)

    def a_trial_mid_training():
        try:
            study = optuna.load_study(study_name="raytiny/vae/mlp/mnist", storage=open_storage(storage))
        except KeyError:
            return None
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.intermediate_values and "pid" in t.user_attrs]
        return running[0] if running else None

    victim = wait_for(a_trial_mid_training, 240, "a trial mid-training", driver)
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, out

    trials = optuna.load_study(study_name="raytiny/vae/mlp/mnist", storage=open_storage(storage)).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert 6 <= len(complete) <= 7  # the second worker may finish the trial it had begun
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert len({t.user_attrs["pid"] for t in complete}) >= 2  # both workers ran trials

    client = mlflow.MlflowClient(stack.mlflow_url)
    lost = client.get_run(victim.user_attrs["mlflow_run_id"])
    assert lost.info.status == "KILLED"
    assert "stopped beating for more than 6 s" in lost.data.tags["failure_reason"]  # Optuna's heartbeat
    parents = {t.user_attrs["mlflow_parent_run_id"] for t in trials}
    assert len(parents) == 1 and client.get_run(parents.pop()).info.status == "FINISHED"
    assert "did not finish" in out and f"{len(complete)} complete" in out
    for node in cluster.worker_nodes.copy():
        cluster.remove_node(node)
