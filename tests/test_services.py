"""The stack of `make services` (deploy/services.py) with its MLflow server behind MLflow's
basic-auth app, as `--auth` starts it: a real PostgreSQL and a real `mlflow server`, bound to
127.0.0.1 only (a stack on any other address asks for a login without `--auth`; that rule is
checked without binding one). `aevae bench` logs to it with the environment lines `up` prints.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest

from conftest import CLI_SUBPROCESS, cli_subprocess_env, deploy_services

services = deploy_services()
LOGIN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
SERVER = [Path("/usr/local/bin") / name for name in ("initdb", "pg_ctl", "postgres")]

TINY = """
[axes]
model = ["vae"]
[base]
subset = 128
val_size = 64
hidden_dim = 16
epochs = 1
analysis = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack():
    """PostgreSQL and an MLflow server that asks for a login, on 127.0.0.1."""
    if not all(p.exists() or shutil.which(p.name) for p in SERVER):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="aevae-services-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user when the tests run as root
    found = services.Stack(folder, "127.0.0.1", free_port(), free_port(), free_port(), auth=True)
    try:
        services.postgres_up(found)
        services.mlflow_up(found)
        yield found
    finally:
        services.down(found)
        shutil.rmtree(folder, ignore_errors=True)


def printed_environment(stack) -> dict[str, str]:
    """The variables of the `export` lines `up` prints, as a shell would read them."""
    found = {}
    for line in services.env_lines(stack):
        words = shlex.split(line, comments=True)
        assert words[0] == "export", line
        found.update(word.split("=", 1) for word in words[1:])
    return found


def status_of(url: str, login: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if login is not None:
        token = base64.b64encode(":".join(login).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_a_loopback_stack_may_go_without_a_login(tmp_path):
    assert not services.Stack(tmp_path).authenticated
    assert services.Stack(tmp_path, auth=True).authenticated
    assert services.Stack(tmp_path, host="10.0.0.5").authenticated  # never bound: the rule alone


def test_the_rest_api_refuses_a_request_without_the_generated_login(stack):
    env = printed_environment(stack)
    user, password = (env[name] for name in LOGIN)
    search = f"{stack.mlflow_url}{services.MLFLOW_PROBE}"
    assert env["MLFLOW_TRACKING_URI"] == stack.mlflow_url
    assert status_of(search) == 401
    assert status_of(search, (user, password[::-1])) == 401
    assert status_of(search, (user, password)) == 200
    assert status_of(f"{stack.mlflow_url}/health") == 200  # the liveness probe stays open

    for secret in ("mlflow-auth.ini", "mlflow-auth.db"):
        assert stat.S_IMODE((stack.folder / secret).stat().st_mode) == 0o600, secret
    assert printed_environment(stack) == env  # generated once, kept for the next `up`
    # `up` reuses a running server only as it was asked for
    with pytest.raises(services.ServiceError, match="runs with authentication: pass --auth"):
        services.mlflow_up(dataclasses.replace(stack, auth=False))


def test_a_command_without_the_login_is_told_to_set_it(stack):
    without = {k: v for k, v in os.environ.items() if k not in LOGIN}
    refused = subprocess.run([sys.executable, "-m", "aevae", "bench", "smoke", "--tracking-uri", stack.mlflow_url],
                             env=without, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == (f"aevae bench: error: the MLflow tracking server at {stack.mlflow_url} asks for a "
                              f"login: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (make services "
                              f"prints them).\n")


@pytest.mark.slow
def test_bench_logs_through_the_login_of_the_printed_lines_and_never_shows_its_password(stack, data_root, tmp_path,
                                                                                          monkeypatch):
    env = printed_environment(stack)
    (tmp_path / "authtiny.toml").write_text(TINY)
    bench = [sys.executable, str(CLI_SUBPROCESS), "bench", str(tmp_path / "authtiny.toml")]
    done = subprocess.run(bench, env=cli_subprocess_env(**env), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 cells: 1 done" in done.stdout
    password = env["MLFLOW_TRACKING_PASSWORD"]
    assert password not in done.stdout + done.stderr

    for name in LOGIN:  # MLflow's client reads the login from the environment
        monkeypatch.setenv(name, env[name])
    client = mlflow.MlflowClient(stack.mlflow_url)
    runs = client.search_runs([client.get_experiment_by_name("bench/authtiny").experiment_id])
    assert [(r.data.tags["cell"], r.info.status) for r in runs] == [("vae/mlp/mnist", "FINISHED")]
    assert all(password not in repr(r.data) for r in runs)
