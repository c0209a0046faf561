"""aevae without its optional `cluster` extra: every command runs in a subprocess where `ray`
and `psycopg2` cannot be imported (a sitecustomize.py on its path, which every Python it
starts imports too, sets them to None in sys.modules, as Python does for a module known
missing). What needs the extra says so in one sentence, exit 2; the rest works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from conftest import CLI_SUBPROCESS, DEPLOY, cli_subprocess_env

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("ray", "psycopg2")
NEEDS = "needs aevae's optional cluster extra: pip install 'aevae[cluster]' (make install includes it)."
# bare postgresql:// (aevae picks psycopg2) on a closed port: the extra is asked for before any connection
POSTGRES = "postgresql://me:secret@127.0.0.1:9"

TINY_GRID = """
[axes]
model = ["ae"]
[base]
subset = 128
val_size = 64
hidden_dim = 16
epochs = 1
analysis = false
"""
TINY_SET = """
trials = 1
[cells]
model = ["ae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 1
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""


@pytest.fixture
def without_extra(tmp_path) -> Path:
    """A folder whose sitecustomize.py hides Ray and psycopg2 from the Python that has it
    on its path."""
    site = tmp_path / "no-cluster-extra"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n")
    return site


def run(command: list[str], site: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python COMMAND` without the extra, in the environment of the test as it is now."""
    env = cli_subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    return subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,feature", [
    (["bench", "{grid}", "--executor", "ray"], "the Ray executor"),
    (["tune", "tiny", "--studies-dir", "{studies}", "--executor", "ray"], "the Ray executor"),
    (["bench", "{grid}", "--tracking-uri", f"{POSTGRES}/mlflow"], "an MLflow store on PostgreSQL"),
    (["report", "tiny", "--tracking-uri", f"{POSTGRES.replace('://', '+psycopg2://')}/mlflow"],
     "an MLflow store on PostgreSQL"),
    (["tune", "tiny", "--studies-dir", "{studies}", "--storage", f"{POSTGRES}/optuna"], "a PostgreSQL Optuna storage"),
], ids=["bench-ray", "tune-ray", "bench-postgres-store", "report-postgres-store", "tune-postgres-storage"])
def test_a_feature_of_the_extra_says_so_in_one_sentence(args, feature, without_extra, data_root, tracking_uri,
                                                        tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_GRID)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.toml").write_text(TINY_SET)
    args = [arg.format(grid=tmp_path / "tiny.toml", studies=tmp_path / "studies") for arg in args]
    done = run([str(CLI_SUBPROCESS), *args], without_extra)
    assert (done.returncode, done.stderr) == (2, f"aevae {args[0]}: error: {feature} {NEEDS}\n"), done.stdout
    assert not mlflow.MlflowClient(tracking_uri).search_experiments(filter_string="name LIKE 'bench/%'")


def test_make_services_says_so_too(without_extra, tmp_path):
    done = run([str(DEPLOY / "services.py"), "up", "--folder", str(tmp_path / "services")], without_extra)
    assert (done.returncode, done.stderr) == (2, f"aevae services: error: make services {NEEDS}\n"), done.stdout
    assert not (tmp_path / "services").exists()  # checked before anything starts


def test_a_grid_runs_without_the_extra(without_extra, data_root, tracking_uri, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_GRID)
    done = run([str(CLI_SUBPROCESS), "bench", str(tmp_path / "tiny.toml")], without_extra, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    client = mlflow.MlflowClient(tracking_uri)
    (finished,) = client.search_runs([client.get_experiment_by_name("bench/tiny").experiment_id])
    assert finished.info.status == "FINISHED" and finished.data.tags["cell"] == "ae/mlp/mnist"


def test_no_module_but_the_ray_executor_imports_ray_and_none_imports_psycopg2(without_extra):
    """Every module of the package imports in a Python without either; the Ray executor's
    own module is the one that cannot."""
    package = ROOT / "aevae"
    names = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                   for path in package.rglob("*.py"))
    importable = [name for name in names if name not in ("aevae.__main__", "aevae.executors.ray_cluster")]
    probe = ("import importlib, sys\n"
             f"for name in {importable!r}:\n    importlib.import_module(name)\n"
             "try:\n    import aevae.executors.ray_cluster\nexcept ImportError:\n    print('no ray')\n")
    done = run(["-c", probe], without_extra)
    assert (done.returncode, done.stdout) == (0, "no ray\n"), done.stderr
