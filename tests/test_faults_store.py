"""Faults at the tracking store, through the real command in a subprocess: a URI of no known
scheme, a server that is not there, a SQLite store that cannot be written or vanishes in the
middle of a grid, two benches creating one store at once, and passwords in URLs. Each ends
in one sentence, exit status 2, within seconds, with nothing left behind."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aevae.redact import redact, without_credentials
from aevae.tracking.runs import RunStore
from faults import (
    QUICK, TINY_GRID, TRACEBACK, UNREACHABLE, aevae, assert_one_line_error, finish, mid_training, run_states,
    start, tree, wait_for,
)

PASSWORD = "s3cret-Pw"
WITH_PASSWORD = f"http://me:{PASSWORD}@127.0.0.1:9"
COMMANDS = {  # each command, as far as it goes before it needs the store
    "train": ["train", "--epochs", "1"],
    "bench": ["bench", "smoke", *QUICK],
    "tune": ["tune", "quick", "--studies-dir", str(Path(__file__).resolve().parents[1] / "studies")],
    "report": ["report", "smoke"],
    "compare": ["compare", "smoke"],
}


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("uri,fragment", [
    ("garbage://x", "'garbage://x' is no MLflow tracking URI (unknown scheme 'garbage')"),
    (UNREACHABLE, f"cannot reach the MLflow tracking server at {UNREACHABLE} (Connection refused"),
    (WITH_PASSWORD, "cannot reach the MLflow tracking server at http://me:***@127.0.0.1:9"),
    ("", "the MLflow tracking URI is empty"),
])
def test_a_store_that_cannot_be_used_is_one_sentence_at_once_and_creates_nothing(tmp_path, name, uri, fragment):
    result = aevae([*COMMANDS[name], "--tracking-uri", uri], tmp_path)
    assert_one_line_error(result, name, fragment)
    assert PASSWORD not in result.out + result.err
    assert tree(tmp_path) == set()  # no mlruns/, no studies/optuna.log, no results folder


def test_the_environment_variable_is_checked_the_same_way(tmp_path):
    result = aevae(["train"], tmp_path, MLFLOW_TRACKING_URI=WITH_PASSWORD)
    assert_one_line_error(result, "train", "http://me:***@127.0.0.1:9", "MLFLOW_TRACKING_URI")
    assert PASSWORD not in result.out + result.err and tree(tmp_path) == set()


def read_only_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: chmod 555 works unless this is root, which
    writes anyway; /sys refuses new files to root too."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if not os.path.isdir("/sys") or _writable("/sys"):
        pytest.skip("no folder here refuses new files to root")
    return Path("/sys")


def _writable(folder: str) -> bool:
    try:
        Path(folder, ".aevae-probe").touch()
    except OSError:
        return False
    Path(folder, ".aevae-probe").unlink()
    return True


@pytest.mark.parametrize("where", ["read-only folder", "a file as folder"])
def test_a_sqlite_store_in_a_folder_that_cannot_be_written_fails_in_seconds(tmp_path, where):
    if where == "read-only folder":
        folder = read_only_folder(tmp_path)
    else:
        (tmp_path / "plain").write_text("not a folder")
        folder = tmp_path / "plain" / "sub"
    before = tree(tmp_path)
    result = aevae(["bench", "smoke", *QUICK, "--tracking-uri", f"sqlite:///{folder}/mlflow.db"], tmp_path)
    assert_one_line_error(result, "bench", "the folder of the MLflow store")  # was 105 s of retries
    assert tree(tmp_path) == before


def test_a_file_that_is_no_sqlite_database_is_named(tmp_path):
    (tmp_path / "notes.db").write_text("my notes")
    result = aevae(["train", "--tracking-uri", "sqlite:///notes.db"], tmp_path)
    assert_one_line_error(result, "train", "notes.db is not a SQLite database")
    assert (tmp_path / "notes.db").read_text() == "my notes" and tree(tmp_path) == {"notes.db"}


@pytest.mark.parametrize("text", ["not json\n", '{"a": 1}\n{"b": 2}\n'])
def test_a_file_that_is_no_optuna_journal_is_named_and_left_untouched(tmp_path, text):
    # Optuna skips a last line it cannot parse (a write cut short) and would append to the file
    (tmp_path / "notes.log").write_text(text)
    studies = str(Path(__file__).resolve().parents[1] / "studies")
    result = aevae(["tune", "quick", "--studies-dir", studies, "--storage", "notes.log"], tmp_path)
    assert_one_line_error(result, "tune", "notes.log' is not an Optuna journal")
    assert (tmp_path / "notes.log").read_text() == text and tree(tmp_path) == {"notes.log"}


def test_a_sqlite_store_deleted_mid_grid_stops_the_grid_with_one_sentence(data_root, tmp_path):
    grid, hold = tmp_path / "vanish.toml", tmp_path / "go-on"
    grid.write_text(TINY_GRID)
    db, log = tmp_path / "store" / "mlflow.db", tmp_path / "vanish.log"
    runner = start(["bench", str(grid), *QUICK, "--tracking-uri", f"sqlite:///{db}"], tmp_path, log,
                   AEVAE_TEST_HOLD=str(hold))
    wait_for(lambda: mid_training(db, 1), 180, "a cell in the middle of training", runner, log)
    db.unlink()
    started = time.perf_counter()
    hold.touch()
    result = finish(runner, log, started)
    # the failure itself: from the first write into the missing store to the exit
    line = assert_one_line_error(result, "bench", "went away during the grid", "was deleted")
    assert "run the grid again" in line
    # the table, printed: one cell failed with the reason, the others never started
    assert "StoreLost: its file" in result.out and "4 cells: 0 done, 1 failed, 3 not run" in result.out


def test_two_benches_creating_one_new_store_at_once_both_succeed(data_root, tmp_path):
    grid = tmp_path / "race.toml"
    grid.write_text(TINY_GRID.replace('dataset = ["mnist", "fashion_mnist"]', 'dataset = ["mnist"]'))
    db = tmp_path / "new" / "mlflow.db"
    args = ["bench", str(grid), *QUICK, "--tracking-uri", f"sqlite:///{db}"]
    logs = [tmp_path / f"race{i}.log" for i in range(2)]
    started = time.perf_counter()
    runners = [start(args, tmp_path, log) for log in logs]
    results = [finish(r, log, started, timeout=300) for r, log in zip(runners, logs)]
    for result in results:
        assert result.status == 0 and "already exists" not in result.err, result.show()
        assert TRACEBACK not in result.out + result.err, result.show()
    assert sorted(run_states(db).items()) == [("ae/mlp/mnist/s0", "FINISHED"), ("vae/mlp/mnist/s0", "FINISHED")]


def test_passwords_are_masked_in_every_tag_param_and_reason_stored(tracking_uri):
    store = RunStore(tracking_uri)
    run = store.create(store.experiment("masked"), "r", {"note": f"from {WITH_PASSWORD}/x"})
    store.log_params(run.run_id, {"storage": f"postgresql://me:{PASSWORD}@db/optuna"})
    store.end(run.run_id, "FAILED", f"StorageError: cannot open postgresql://me:{PASSWORD}@db/optuna")
    stored = store.get(run.run_id)
    assert PASSWORD not in repr(stored)
    assert stored.tags["note"] == "from http://me:***@127.0.0.1:9/x"
    assert stored.params["storage"] == "postgresql://me:***@db/optuna"


@pytest.mark.parametrize("text,shown", [
    ("http://me:pw@host:5000/x", "http://me:***@host:5000/x"),
    ("postgresql+psycopg2://me:p@ss@db:5432/optuna", "postgresql+psycopg2://me:***@db:5432/optuna"),
    ("postgresql://me:pa/ss@db/optuna", "postgresql://me:***@db/optuna"),
    ("see http://me:pw@host and write to me@example.org", "see http://me:***@host and write to me@example.org"),
    ("a http://u:1@h and b https://v:2@k/y", "a http://u:***@h and b https://v:***@k/y"),
    ("postgresql://db/optuna?user=me&password=pw", "postgresql://db/optuna?user=me&password=***"),
    ("sqlite:///mlruns/mlflow.db", "sqlite:///mlruns/mlflow.db"),
    ("http://127.0.0.1:5000/#/experiments/1", "http://127.0.0.1:5000/#/experiments/1"),
])
def test_redact_masks_passwords_and_nothing_else(text, shown):
    assert redact(text) == shown


def test_redact_masks_the_tracking_login_of_the_environment_wherever_it_appears(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-Pa55word")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-0123456789")
    assert redact("login s3cret-Pa55word, token=tok-0123456789 at http://u:s3cret-Pa55word@h") == \
        "login ***, token=*** at http://u:***@h"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "loss")  # too short to be told from words: kept
    assert redact("train/loss") == "train/loss"


def test_links_lose_their_credentials():
    assert without_credentials("http://me:pw@host:5000") == "http://host:5000"
    assert without_credentials("http://host:5000") == "http://host:5000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_password_in_a_tracking_server_url_reaches_no_output_tag_param_or_file(data_root, tmp_path):
    """Against a real MLflow server (which ignores the credentials): train, bench, report."""
    port, server_dir = free_port(), tmp_path / "server"
    server_dir.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{server_dir}/m.db", "--workers", "1",
                               "--default-artifact-root", str(server_dir / "artifacts")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://me:{PASSWORD}@127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and server.poll() is None, "the MLflow server did not start"
            time.sleep(0.5)
        work = tmp_path / "work"
        work.mkdir()
        grid = work / "pw.toml"
        grid.write_text(TINY_GRID.replace('dataset = ["mnist", "fashion_mnist"]', 'dataset = ["mnist"]'))
        results = [
            aevae(["train", "--epochs", "1", "--val-size", "100", "--hidden-dim", "32", "--analysis", "false",
                   "--tracking-uri", uri], work, data=True),
            aevae(["bench", str(grid), "--tracking-uri", uri], work, data=True),
            aevae(["report", "pw", "--tracking-uri", uri, "--out", str(work / "report")], work),
        ]
        for result in results:
            assert result.status == 0, result.show()
            assert PASSWORD not in result.out + result.err, result.show()
    finally:
        server.terminate()
        server.wait(timeout=60)
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert leaks == []  # the server's database and artifacts, the report, the summary
    assert "http://127.0.0.1:" in (work / "report" / "RESULTS.md").read_text()  # links, without credentials
