"""Workers on several machines share a study through PostgreSQL: here, two processes and a
real PostgreSQL server started on loopback for the test."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from aevae.tune.storage import open_storage
from aevae.tracking.runs import RunStore

from conftest import CLI_SUBPROCESS, cli_subprocess_env
from test_tune import TINY_SET

BIN = Path("/usr/local/bin")
SERVER = [BIN / name for name in ("initdb", "pg_ctl", "postgres")]
pytestmark = pytest.mark.skipif(not all(p.exists() for p in SERVER),
                                reason="PostgreSQL server binaries (initdb, pg_ctl, postgres) not in /usr/local/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway server on 127.0.0.1 (trust auth), run as `postgres` when the tests run as
    root (the server refuses root); yields a URL prefix `postgresql://postgres@127.0.0.1:port`."""
    as_server_user = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root needs runuser to start PostgreSQL as the postgres user")
        as_server_user = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: the server's user must be able to reach the folder.
    folder = Path(tempfile.mkdtemp(prefix="aevae-pg-"))
    if as_server_user:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()

    def server(*args):
        subprocess.run([*as_server_user, *map(str, args)], check=True, capture_output=True)

    try:
        server(BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        server(BIN / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "start", "-o",
               f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off")
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        if (data / "postmaster.pid").exists():
            server(BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    import psycopg2

    connection = psycopg2.connect(f"{url}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return f"{url}/{name}"


def test_two_workers_share_a_postgres_study_and_run_distinct_trials(data_root, postgres, tmp_path):
    optuna_url = create_database(postgres, "optuna")  # bare postgresql://: aevae picks psycopg2
    mlflow_url = create_database(postgres, "mlflow").replace("postgresql://", "postgresql+psycopg2://")
    (tmp_path / "studies").mkdir()
    study_set = TINY_SET.replace("trials = 3", "trials = 4").replace("epochs = 3", "epochs = 2")
    (tmp_path / "studies" / "tiny.toml").write_text(study_set)
    # Schemas first, as an operator would: two workers migrating one empty database race.
    open_storage(optuna_url)
    RunStore(mlflow_url).experiment("tune/tiny")

    env = cli_subprocess_env(OMP_NUM_THREADS="1")  # two workers, each on one core
    workers = [subprocess.Popen([sys.executable, str(CLI_SUBPROCESS), "tune", "tiny",
                                 "--storage", optuna_url, "--tracking-uri", mlflow_url, "--seed", str(seed)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for seed in (1, 2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    trials = optuna.load_study(study_name="tiny/vae/mlp/mnist", storage=open_storage(optuna_url)).trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) >= 4 and len({t.number for t in trials}) == len(trials)
    by_worker = {(t.user_attrs["host"], t.user_attrs["pid"]) for t in finished}
    assert {pid for _, pid in by_worker} == {w.pid for w in workers}  # both did trials

    client = mlflow.MlflowClient(mlflow_url)
    runs = client.search_runs([client.get_experiment_by_name("tune/tiny").experiment_id])
    parents = {r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert len(parents) == 2  # one parent run per worker invocation
    for trial in finished:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.tags["mlflow.parentRunId"] == trial.user_attrs["mlflow_parent_run_id"]
        assert run.data.tags["mlflow.parentRunId"] in parents
