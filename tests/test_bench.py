import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import optuna

from aevae.bench import claims, versions
from aevae.cli import main
from aevae.bench.grid import expand, load_grid, select
from aevae.bench.runner import bench_tags
from aevae.tune.storage import open_storage
from aevae.tune.study import tuned_lookup
from aevae.tracking.runs import RunStore
from conftest import CLI_SUBPROCESS, cli_subprocess_env

QUICK = ["--no-artifacts"]
SMOKE_MNIST_MLP = ["smoke", "--only", "dataset=mnist", "--only", "arch=mlp", *QUICK]


def runs(tracking_uri, grid, status=None):
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(f"bench/{grid}")
    found = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in found if status is None or r.info.status == status]


def one_finished_run_per_cell(tracking_uri, grid, expected: int):
    finished = runs(tracking_uri, grid, "FINISHED")
    keys = [(r.data.tags["cell"], r.data.tags["seed"]) for r in finished]
    assert len(keys) == len(set(keys)) == expected
    assert not runs(tracking_uri, grid, "RUNNING")


def write_grid(tmp_path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def test_smoke_grid_runs_then_skips_then_force_reruns(data_root, tracking_uri, capsys):
    assert main(["bench", *SMOKE_MNIST_MLP]) == 0
    assert "0 finished earlier, 2 to run" in capsys.readouterr().out
    first = runs(tracking_uri, "smoke", "FINISHED")
    assert {r.data.tags["cell"] for r in first} == {"ae/mlp/mnist", "vae/mlp/mnist"}
    for run in first:
        tags = run.data.tags
        assert tags["grid"] == "smoke" and tags["seed"] == "0" and tags["git_commit"]
        assert tags["version_label"] == versions.default_label() != ""  # the checkout's commit
        assert tags["claim"] == "won" and run.data.params["subset"] == "256"
        # --no-artifacts: every metric the params promise (analysis=True), and no file but the config
        assert {"test/loss", "test/probe_acc"} <= set(run.data.metrics) and run.data.params["analysis"] == "True"
        assert [a.path for a in mlflow.MlflowClient(tracking_uri).list_artifacts(run.info.run_id)] == ["config.json"]
    experiment = mlflow.MlflowClient(tracking_uri).get_experiment_by_name("bench/smoke")
    expected = json.loads(experiment.tags[f"grid_cells/{versions.default_label()}"])
    assert len(expected) == 12 and {"cell", "seed", "config_hash"} == set(expected[0])
    assert json.loads(experiment.tags[f"grid_axes/{versions.default_label()}"])["model"] == ["ae", "vae"]
    assert Path("benchmarks/results/smoke/summary.csv").read_text().count("skipped") == 0

    assert main(["bench", *SMOKE_MNIST_MLP]) == 0
    assert "2 finished earlier, 0 to run" in capsys.readouterr().out
    assert {r.info.run_id for r in runs(tracking_uri, "smoke")} == {r.info.run_id for r in first}

    assert main(["bench", *SMOKE_MNIST_MLP, "--only", "model=ae", "--force"]) == 0
    one_finished_run_per_cell(tracking_uri, "smoke", 2)
    retired = mlflow.MlflowClient(tracking_uri).get_run(
        next(r.info.run_id for r in first if r.data.tags["model"] == "ae"))
    assert retired.info.lifecycle_stage == "deleted" and retired.data.tags["superseded_by"]


def test_failing_cell_is_recorded_and_the_grid_goes_on(data_root, tracking_uri, tmp_path, capsys):
    grid = write_grid(tmp_path, "diverge", """
[base]
model = "ae"
epochs = 2
val_size = 100
hidden_dim = 32
analysis = false
[axes]
lr = [1e30, 1e-3]
""")
    assert main(["bench", grid, *QUICK]) == 1
    out = capsys.readouterr().out
    assert "failed: 1 cell (ae/mlp/mnist/lr=1e+30/s0): TrainingFailed:" in out
    (failed,) = runs(tracking_uri, "diverge", "FAILED")
    assert failed.data.tags["failure_reason"].startswith("TrainingFailed: ")
    (done,) = runs(tracking_uri, "diverge", "FINISHED")
    assert done.data.tags["cell"] == "ae/mlp/mnist/lr=0.001"


def test_dataset_that_cannot_be_had_fails_its_cells_with_one_reason(data_root, tracking_uri, capsys):
    shutil.rmtree(data_root / "cifar-10-batches-py")
    assert main(["bench", "smoke", "--only", "dataset=cifar10", "--only", "model=ae", *QUICK]) == 1
    out = capsys.readouterr().out
    # once as the first cell fails, once in the summary; the later cell says "as above"
    assert out.count("CIFAR-10 needs") == 2 and "ae/conv/cifar10/s0  (DataError, as above)" in out
    assert "Traceback" not in out
    failed = runs(tracking_uri, "smoke", "FAILED")
    assert sorted(r.data.tags["cell"] for r in failed) == ["ae/conv/cifar10", "ae/mlp/cifar10"]
    assert all(r.data.tags["failure_reason"].startswith("DataError: CIFAR-10 needs") for r in failed)
    assert all(r.data.params["dataset"] == "cifar10" and r.data.tags["model"] == "ae" for r in failed)


def test_concurrent_claims_of_one_cell_have_one_winner(tracking_uri):
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = RunStore(tracking_uri).experiment("bench/race")
    start = threading.Barrier(4)
    results = []

    def contender():
        start.wait()
        results.append(claims.claim(RunStore(tracking_uri), experiment_id, "race",
                                    "abc123", "cell/s0", {"grid": "race", "config_hash": "abc123"}))

    threads = [threading.Thread(target=contender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.status for c in results) == ["busy", "busy", "busy", "won"]
    (live,) = client.search_runs([experiment_id])
    assert live.info.run_id == next(c.run.run_id for c in results if c.status == "won")


def start_runner(args, log: Path, hold: Path | None = None) -> subprocess.Popen:
    """`aevae ARGS` in a subprocess (this checkout's aevae first on the path); with `hold`,
    every run it trains waits after its first epoch until the file `hold` exists. It gets a
    process group of its own, so `kill_group` also ends the pool workers it spawned."""
    env = cli_subprocess_env(**({"AEVAE_TEST_HOLD": str(hold)} if hold else {}))
    return subprocess.Popen([sys.executable, str(CLI_SUBPROCESS), *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the runner and everything it started: a held worker left behind by a failed
    test would wait for its hold file forever."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            err = Path(f"{log}.err")  # where a runner writes its stderr apart (tests/faults.py)
            shown = log.read_text() + (f"\n{err.read_text()}" if err.exists() else "")
            raise AssertionError(f"the runner exited ({process.returncode}) before {what}:\n{shown}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def mid_training(tracking_uri, grid: str, count: int):
    """The RUNNING runs that have logged an epoch, once there are `count` of them."""
    client = mlflow.MlflowClient(tracking_uri)
    if not client.get_experiment_by_name(f"bench/{grid}"):
        return None
    running = [r for r in runs(tracking_uri, grid, "RUNNING") if "val/loss" in r.data.metrics]
    return running if len(running) >= count else None


# Two epochs: a held runner (start_runner's hold) stops between them.
TINY_GRID = """
[base]
epochs = 2
val_size = 100
hidden_dim = 32
latent_dim = 4
analysis = false
[axes]
model = ["ae", "vae"]
dataset = ["mnist", "fashion_mnist"]
"""


def test_workers_auto_runs_the_cells_in_a_pool_that_shares_the_cores(data_root, tracking_uri, tmp_path):
    log = tmp_path / "auto.log"
    runner = start_runner(["bench", *SMOKE_MNIST_MLP, "--workers", "auto"], log)
    try:
        assert runner.wait(timeout=180) == 0, log.read_text()
    finally:
        kill_group(runner)
    cores, out = len(os.sched_getaffinity(0)), log.read_text()
    finished = runs(tracking_uri, "smoke", "FINISHED")
    assert len(finished) == 2
    if cores == 1:  # one worker: the cells run in the command's own process
        assert "worker processes" not in out
    else:
        share = max(1, cores // 2)  # two cells, two workers: on 2 cores one thread each
        assert f"2 worker processes, {share} torch threads each" in out
        assert {r.data.tags["torch_threads"] for r in finished} == {str(share)}


def test_a_two_worker_bench_and_another_bench_never_duplicate_a_cell(data_root, tracking_uri, tmp_path, capsys):
    grid, hold = write_grid(tmp_path, "shared", TINY_GRID), tmp_path / "go-on"
    log = tmp_path / "workers.log"
    other = start_runner(["bench", grid, "--workers", "2", *QUICK], log, hold)
    try:
        held = wait_for(lambda: mid_training(tracking_uri, "shared", 2), 120,
                        "both workers in the middle of a cell", other, log)
        assert main(["bench", grid, *QUICK]) == 0  # trains the other two cells, leaves the held ones
        out = capsys.readouterr().out
        assert "4 cells: 2 done, 0 failed, 2 busy" in out and "which is still running it" in out
        hold.touch()
        assert other.wait(timeout=120) == 0, log.read_text()
    finally:
        kill_group(other)
    one_finished_run_per_cell(tracking_uri, "shared", 4)
    finished = runs(tracking_uri, "shared", "FINISHED")
    assert {r.info.run_id for r in held} <= {r.info.run_id for r in finished}
    here = f"{socket.gethostname()}:{os.getpid()}"
    by_workers = [r for r in finished if r.data.tags["worker"] != here]
    assert len({r.data.tags["worker"] for r in by_workers}) == 2
    assert len(finished) - len(by_workers) == 2
    # the two workers share the cores instead of each taking all of them
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert all(r.data.tags["torch_threads"] == share for r in by_workers)


def test_kill_9_mid_cell_then_rerun_leaves_one_finished_run_per_cell(data_root, tracking_uri, tmp_path, capsys):
    grid = write_grid(tmp_path, "killed", TINY_GRID.replace('model = ["ae", "vae"]', 'model = ["ae"]'))
    log = tmp_path / "killed.log"
    victim = start_runner(["bench", grid, *QUICK], log, hold=tmp_path / "never")
    try:
        (running,) = wait_for(lambda: mid_training(tracking_uri, "killed", 1), 120,
                              "a cell in the middle of training", victim, log)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()  # reaped: a zombie's pid would still look alive
    assert main(["bench", grid, *QUICK]) == 0
    assert "closed 1 run(s) left RUNNING by dead workers" in capsys.readouterr().out
    one_finished_run_per_cell(tracking_uri, "killed", 2)
    killed = mlflow.MlflowClient(tracking_uri).get_run(running.info.run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["failure_reason"].startswith("WorkerDied")


def lab_study_with_best(storage: str, cell: str, params: dict, distributions: dict) -> None:
    """A real Optuna study of the lab set for `cell` holding one completed trial."""
    study = optuna.create_study(study_name=f"lab/{cell}", storage=open_storage(storage))
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=100.0))


def test_tuned_cells_take_the_best_trial_of_their_study_and_say_so(tmp_path):
    storage = str(tmp_path / "optuna.log")
    lab_study_with_best(storage, "ae/mlp/mnist", {"lr": 0.003, "model": "vae"},
                        {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                         "model": optuna.distributions.CategoricalDistribution(["ae", "vae"])})
    cells = select(expand(load_grid("lab"), tuned_lookup(storage)), ["dataset=mnist", "arch=mlp", "seed=1"])
    by_model = {c.config.model: c for c in cells}
    assert by_model["ae"].config.lr == 0.003  # the tuned value; the axis value model=ae stays
    assert bench_tags(by_model["ae"])["tuned_from"] == "lab/ae/mlp/mnist"
    assert by_model["vae"].config.lr == 1e-3 and "tuned_from" not in bench_tags(by_model["vae"])
    assert by_model["vae"].tuned_from is None  # no study of vae/mlp/mnist: the grid's settings


def test_bench_tuned_end_to_end_runs_the_tuned_config(data_root, tracking_uri, tmp_path):
    storage = str(tmp_path / "optuna.log")
    lab_study_with_best(storage, "ae/mlp/mnist", {"lr": 0.002},
                        {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    assert main(["bench", "smoke", "--only", "dataset=mnist", "--only", "model=ae", "--only", "arch=mlp",
                 "--tuned", "--storage", storage, *QUICK]) == 0
    (run,) = runs(tracking_uri, "smoke", "FINISHED")
    assert run.data.params["lr"] == "0.002" and run.data.tags["tuned_from"] == "lab/ae/mlp/mnist"


def test_bench_errors_are_one_line(capsys):
    assert main(["bench", "smoke", "--tuned", "--storage", "nosuchdb://host/db"]) == 2
    assert capsys.readouterr().err.strip().startswith(
        "aevae bench: error: cannot open the Optuna storage 'nosuchdb://host/db' (")
    assert main(["bench", "smoke", "--only", "model=gan"]) == 2
    assert capsys.readouterr().err.strip() == (
        "aevae bench: error: --only model=gan matches no cell of the grid; its values of model: ae, vae.")
