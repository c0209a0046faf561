"""Helpers of the fault-injection tests (tests/test_faults_*.py): the real `aevae` command in
a subprocess, timed, and what a failure must look like (one line on stderr, exit status 2,
no traceback) and leave behind (nothing).

`aevae(...)` runs `python -m aevae` for failures that come before any data is read;
`aevae(..., data=True)` runs tests/cli_subprocess.py, which registers the checksums of the
`data_root` fixture's synthetic files, for commands that train.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import CLI_SUBPROCESS, cli_subprocess_env
from test_bench import QUICK, TINY_GRID, wait_for  # noqa: F401 - shared with the bench tests

REPO = Path(__file__).resolve().parents[1]
FAILS_WITHIN_S = 10  # a boundary failure, from the command's start to its exit
TRACEBACK = "Traceback (most recent call last)"
UNREACHABLE = "http://127.0.0.1:9"  # a closed port on loopback: refused at once


@dataclass
class Result:
    status: int
    out: str
    err: str
    seconds: float

    def show(self) -> str:
        return f"exit {self.status} after {self.seconds:.1f} s\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def environment(data: bool, **extra: str) -> dict[str, str]:
    env = cli_subprocess_env() if data else {
        **os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("MLFLOW_TRACKING_URI", None)  # each test names its store, or means ./mlruns
    env.pop("AEVAE_DEBUG", None)
    return {**env, **extra}


def command(args: list[str], data: bool) -> list[str]:
    entry = [str(CLI_SUBPROCESS)] if data else ["-m", "aevae"]
    return [sys.executable, *entry, *args]


def aevae(args: list[str], cwd: Path, *, data: bool = False, timeout: float = 300, **env: str) -> Result:
    """Run `aevae ARGS` in `cwd` to its end."""
    started = time.perf_counter()
    done = subprocess.run(command(args, data), cwd=cwd, env=environment(data, **env), capture_output=True,
                          text=True, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


def start(args: list[str], cwd: Path, log: Path, *, data: bool = True, **env: str) -> subprocess.Popen:
    """`aevae ARGS` in the background, in a session of its own (so a signal can go to its
    whole process group, as a terminal's Ctrl-C does); stdout to `log`, stderr to `log`.err."""
    return subprocess.Popen(command(args, data), cwd=cwd, env=environment(data, **env),
                            stdout=log.open("w"), stderr=Path(f"{log}.err").open("w"), text=True,
                            start_new_session=True, preexec_fn=_takes_ctrl_c)


def _takes_ctrl_c() -> None:
    """A test run in the background ignores Ctrl-C, and aevae keeps ignoring a signal it was
    started ignoring; the command under test takes it as from a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen, log: Path, started: float, timeout: float = 120) -> Result:
    """Wait for a background command; its result, timed from `started` to its last word on
    stderr (`aevae COMMAND: ...`), or to its exit if it says none: the interpreter's own
    exit afterwards (seconds, with torch loaded) is not the failure's time."""
    err, said = Path(f"{log}.err"), None
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if said is None and any(line.startswith("aevae ") for line in err.read_text().splitlines()):
                said = time.perf_counter()
            time.sleep(0.05)
        status = process.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return Result(status, log.read_text(), err.read_text(), (said or time.perf_counter()) - started)


def assert_one_line_error(result: Result, command_name: str, *fragments: str,
                          within: float = FAILS_WITHIN_S) -> str:
    """Exit status 2 within `within` seconds, no traceback anywhere, and stderr's last line
    the command's one-sentence error holding each fragment; returns that line."""
    assert result.status == 2, result.show()
    assert TRACEBACK not in result.out + result.err, result.show()
    assert result.seconds < within, result.show()
    line = result.err.strip().splitlines()[-1]
    assert line.startswith(f"aevae {command_name}: error: "), result.show()
    for fragment in fragments:
        assert fragment in line, result.show()
    return line


def tree(folder: Path) -> set[str]:
    """Every path under `folder`, relative: what a command left there."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_states(db: Path) -> dict[str, str]:
    """Run name -> status of every active run in the SQLite MLflow store `db` (read with
    sqlite3 directly: the test process need not open the store MLflow's way)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select name, status from runs where lifecycle_stage = 'active'")
        return dict(rows.fetchall())


def mid_training(db: Path, count: int) -> list[str]:
    """Names of the RUNNING runs that have logged an epoch, once there are `count` of them."""
    try:
        with sqlite3.connect(db) as connection:
            rows = connection.execute(
                "select distinct r.name from runs r join latest_metrics m on m.run_uuid = r.run_uuid "
                "where r.status = 'RUNNING' and m.key = 'val/loss'").fetchall()
    except sqlite3.Error:  # not created yet, or busy
        return []
    return [name for (name,) in rows] if len(rows) >= count else []
