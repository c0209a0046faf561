"""Try aevae as a careless or hostile user would, and print what happened as a Markdown table.

Each input runs the real command (`python -m aevae ...`) in a fresh folder: bad tracking
stores, storages, folders, files and values across train, bench, tune, report and compare;
signals, a vanishing store and racing benches in the middle of real training; and legal but
unusual inputs, which must run. Every row says the outcome, the exit status, the seconds (for an
injected fault, from the fault to the command's last word) and what a failed command left
behind; the counts at the end are what issue 10 asks to be zero.

    AEVAE_DATA_DIR=../shared/data .venv/bin/python tests/faults_table.py
    AEVAE_DATA_DIR=../shared/data .venv/bin/python tests/faults_table.py --only SIGTERM

Needs the real MNIST files (AEVAE_DATA_DIR); takes several minutes. Nothing outside a
temporary folder is touched; nothing is left running.

It lives beside the fault-injection tests (tests/test_faults_*.py, helpers in
tests/faults.py), which assert the same kinds of input one by one; this prints them all as
one table for a person to read. Its name is not test_*.py, so pytest does not collect it.
It imports neither aevae nor the tests' modules (theirs load aevae, torch and pytest): it
only starts the real command, with this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
SECRET = "Sekr3t-pw-42"
TRACEBACK = "Traceback (most recent call last)"
TINY = ["--subset", "256", "--val-size", "128", "--epochs", "1", "--hidden-dim", "32", "--analysis", "false"]
# Cells long enough (tens of seconds) that a signal lands in the middle of training.
LONG_GRID = """seeds = [0]
[base]
dataset = "mnist"
subset = 3000
val_size = 500
epochs = 40
hidden_dim = 64
analysis = false
[axes]
model = ["ae", "vae"]
latent_dim = [4, 8]
"""
SMALL_GRID = LONG_GRID.replace("epochs = 40", "epochs = 1").replace("subset = 3000", "subset = 256")
TINY_STUDY = """trials = 2
[cells]
model = ["ae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 1
subset = 256
val_size = 128
hidden_dim = 32
analysis = false
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""

LONG_STUDY = TINY_STUDY.replace("epochs = 1", "epochs = 40").replace("subset = 256", "subset = 3000")


@dataclass
class Case:
    command: str
    shown: str  # the input, as the table shows it
    args: list[str]
    expect: str  # "error", "run" or "stop"
    setup: Callable[[Path], None] | str | None = None  # "store": a copy of a store with smoke runs
    env: dict[str, str] = field(default_factory=dict)
    inject: Callable[[subprocess.Popen, Path], None] | None = None  # the fault, mid-command


@dataclass
class Row:
    case: Case
    outcome: str
    status: int
    seconds: float
    left: list[str]
    secret: bool


def write(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def mkdir(name: str):
    return lambda folder: (folder / name).mkdir(parents=True)


def running_with_metrics(db: Path) -> int:
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(
                "select count(distinct r.run_uuid) from runs r join latest_metrics m on m.run_uuid = r.run_uuid "
                "where r.status = 'RUNNING' and m.key = 'val/loss'").fetchone()[0]
    except sqlite3.Error:
        return 0


def states(db: Path) -> list[str]:
    try:
        with sqlite3.connect(db) as connection:
            return [s for (s,) in connection.execute("select status from runs where lifecycle_stage = 'active'")]
    except sqlite3.Error:
        return []


def when_training(count: int, then: Callable[[subprocess.Popen, Path], None]):
    """A fault injected once `count` runs of ./mlruns are in the middle of training."""

    def inject(process: subprocess.Popen, folder: Path) -> None:
        while running_with_metrics(folder / "mlruns" / "mlflow.db") < count:
            if process.poll() is not None:
                return
            time.sleep(0.2)
        then(process, folder)

    return inject


def ctrl_c_twice(process, folder):
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)


def sigterm(process, folder):
    process.send_signal(signal.SIGTERM)


def delete_store(process, folder):
    (folder / "mlruns" / "mlflow.db").unlink()


def replace_results(process, folder):
    shutil.rmtree(folder / "results", ignore_errors=True)
    (folder / "results").write_text("a file where the results folder was")


def cases() -> list[Case]:
    pw = f"http://me:{SECRET}@127.0.0.1:9"
    studies = str(REPO / "studies")
    t = lambda shown, args, expect="error", **kw: Case("train", shown, ["train", *args], expect, **kw)  # noqa: E731
    b = lambda shown, args, expect="error", **kw: Case("bench", shown, ["bench", *args], expect, **kw)  # noqa: E731
    q = lambda shown, args, expect="error", **kw: Case("tune", shown, ["tune", *args], expect, **kw)  # noqa: E731
    r = lambda shown, args, expect="error", **kw: Case("report", shown, ["report", *args], expect, **kw)  # noqa: E731
    smoke = ["smoke", "--only", "dataset=mnist", "--only", "arch=mlp", "--no-artifacts"]
    return [
        t("--tracking-uri garbage://x", ["--tracking-uri", "garbage://x", *TINY]),
        t("--tracking-uri http://127.0.0.1:9 (nothing listens)", ["--tracking-uri", "http://127.0.0.1:9", *TINY]),
        t("--tracking-uri with a password, unreachable", ["--tracking-uri", pw, *TINY]),
        t("MLFLOW_TRACKING_URI=garbage://x", TINY, env={"MLFLOW_TRACKING_URI": "garbage://x"}),
        t("--tracking-uri sqlite:////sys/mlflow.db (folder not writable)",
          ["--tracking-uri", "sqlite:////sys/mlflow.db", *TINY]),
        t("--tracking-uri in a folder that is a file", ["--tracking-uri", "sqlite:///taken/mlflow.db", *TINY],
          setup=write("taken", "a file")),
        t("--tracking-uri naming a text file", ["--tracking-uri", "sqlite:///notes.db", *TINY],
          setup=write("notes.db", "notes")),
        t("--tracking-uri sqlite:// (in memory)", ["--tracking-uri", "sqlite://", *TINY]),
        t("--tracking-uri ''", ["--tracking-uri", "", *TINY]),
        t("--experiment ''", ["--experiment", "", *TINY]),
        t("--lr inf", ["--lr", "inf"]),
        t("--beta nan", ["--beta", "nan"]),
        t("--seed -3", ["--seed", "-3"]),
        t("--epochs 0", ["--epochs", "0"]),
        t("--data-dir ''", ["--data-dir", ""]),
        t("--data-dir naming a file", ["--data-dir", "data.txt"], setup=write("data.txt", "x")),
        t("--data-dir with no data (offline)", ["--data-dir", "nothing", *TINY]),
        t("--device cuda (no GPU here)", ["--device", "cuda", *TINY]),
        t("--val-size 60000 (the whole training set)", ["--val-size", "60000"]),
        t("--beta 0 --lr 1e-6 (unusual, legal)", ["--beta", "0", "--lr", "1e-6", *TINY], "run"),
        t("SIGTERM mid-training", ["--epochs", "40", "--subset", "3000", "--analysis", "false"], "stop",
          inject=when_training(1, sigterm)),
        b("unknown grid", ["nosuch"]),
        b("grid file that is not TOML", ["bad.toml"], setup=write("bad.toml", "[axes\nmodel = 1")),
        b("grid file without axes", ["flat.toml"], setup=write("flat.toml", "[base]\nmodel = 'vae'\n")),
        b("grid whose cells collapse (latent_dim 20 and default)", ["twins.toml"],
          setup=write("twins.toml", "[axes]\nmodel = ['ae']\nlatent_dim = [20, 'none']\n")),
        b("--workers 0", ["smoke", "--workers", "0"]),
        b("--only model=gan", ["smoke", "--only", "model=gan"]),
        b("--results-dir naming a file", [*smoke, "--results-dir", "taken"], setup=write("taken", "a file")),
        b("--results-dir under a file", [*smoke, "--results-dir", "taken/results"], setup=write("taken", "a file")),
        b("--results-dir ''", [*smoke, "--results-dir", ""]),
        b("--tracking-uri garbage://x", [*smoke, "--tracking-uri", "garbage://x"]),
        b("--tracking-uri http://127.0.0.1:9", [*smoke, "--tracking-uri", "http://127.0.0.1:9"]),
        b("--tracking-uri with a password, unreachable", [*smoke, "--tracking-uri", pw]),
        b("--tracking-uri sqlite:////sys/mlflow.db", [*smoke, "--tracking-uri", "sqlite:////sys/mlflow.db"]),
        b("--tuned --storage nosuchdb://x", [*smoke, "--tuned", "--storage", "nosuchdb://x"]),
        b("--tuned --storage with a password, unreachable",
          [*smoke, "--tuned", "--storage", f"postgresql://me:{SECRET}@127.0.0.1:9/optuna"]),
        b("smoke, MNIST MLP cells (legal)", smoke, "run"),
        b("two benches at once on a new store", ["small.toml", "--no-artifacts"], "run",
          setup=write("small.toml", SMALL_GRID)),
        b("Ctrl-C twice 0.3 s apart, --workers 2", ["long.toml", "--workers", "2", "--no-artifacts"], "stop",
          setup=write("long.toml", LONG_GRID), inject=when_training(2, ctrl_c_twice)),
        b("SIGTERM to the bench alone, --workers 2", ["long.toml", "--workers", "2", "--no-artifacts"], "stop",
          setup=write("long.toml", LONG_GRID), inject=when_training(2, sigterm)),
        b("Ctrl-C twice 0.3 s apart, serial", ["long.toml", "--no-artifacts"], "stop",
          setup=write("long.toml", LONG_GRID), inject=when_training(1, ctrl_c_twice)),
        b("SQLite store deleted mid-grid", ["long.toml", "--no-artifacts"], "error",
          setup=write("long.toml", LONG_GRID), inject=when_training(1, delete_store)),
        b("results folder replaced by a file mid-grid", ["long.toml", "--no-artifacts", "--results-dir", "results"],
          "error", setup=write("long.toml", LONG_GRID.replace("epochs = 40", "epochs = 3")),
          inject=when_training(1, replace_results)),
        q("--timeout -5", ["quick", "--studies-dir", studies, "--timeout", "-5"]),
        q("--timeout 0", ["quick", "--studies-dir", studies, "--timeout", "0"]),
        q("--trials 0", ["quick", "--studies-dir", studies, "--trials", "0"]),
        q("--seed -1", ["quick", "--studies-dir", studies, "--seed", "-1"]),
        q("--storage ''", ["quick", "--studies-dir", studies, "--storage", ""]),
        q("--storage naming a folder", ["quick", "--studies-dir", studies, "--storage", "journal"],
          setup=mkdir("journal")),
        q("--storage nosuchdb://x", ["quick", "--studies-dir", studies, "--storage", "nosuchdb://x"]),
        q("--storage with a password, unreachable",
          ["quick", "--studies-dir", studies, "--storage", f"postgresql://me:{SECRET}@127.0.0.1:9/optuna"]),
        q("--storage a file that is no journal", ["tiny", "--studies-dir", "studies", "--storage", "j.log"],
          setup=lambda f: (write("j.log", "not json\n")(f), mkdir("studies")(f),
                           write("studies/tiny.toml", TINY_STUDY)(f))),
        q("--tracking-uri garbage://x", ["quick", "--studies-dir", studies, "--tracking-uri", "garbage://x"]),
        q("unknown study", ["nope", "--studies-dir", studies]),
        q("--studies-dir that does not exist", ["quick", "--studies-dir", "nowhere"]),
        q("a broken file in studies/: its own set", ["broken", "--studies-dir", "studies"],
          setup=lambda f: (mkdir("studies")(f), write("studies/broken.toml", "[cells]\nmodel = ['ae', 'ae']\n")(f))),
        q("a broken file in studies/: another set runs", ["tiny", "--studies-dir", "studies", "--trials", "1"], "run",
          setup=lambda f: (mkdir("studies")(f), write("studies/broken.toml", "[cells\n")(f),
                           write("studies/tiny.toml", TINY_STUDY)(f))),
        q("study file whose study searches nothing", ["flat", "--studies-dir", "studies"],
          setup=lambda f: (mkdir("studies")(f), write("studies/flat.toml", TINY_STUDY.split("[space]")[0])(f))),
        q("--data-dir with no data (offline)", ["quick", "--studies-dir", studies, "--data-dir", "nothing"]),
        q("Ctrl-C twice 0.3 s apart mid-trial", ["long", "--studies-dir", "studies", "--storage", "j.log"], "stop",
          setup=lambda f: (mkdir("studies")(f), write("studies/long.toml", LONG_STUDY)(f)),
          inject=when_training(1, ctrl_c_twice)),
        r("no store yet", ["smoke"]),
        r("--tracking-uri with a password, unreachable", ["smoke", "--tracking-uri", pw]),
        r("--tracking-uri garbage://x", ["smoke", "--tracking-uri", "garbage://x"]),
        r("--out naming a file", ["smoke", "--out", "taken"], setup=write("taken", "a file")),
        r("--out under a file", ["smoke", "--out", "taken/report"], setup=write("taken", "a file")),
        r("--out ''", ["smoke", "--out", ""]),
        r("--out in /sys (not writable)", ["smoke", "--out", "/sys/aevae-report"]),
        r("unknown experiment", ["nosuch"], setup="store"),
        Case("compare", "--tracking-uri with a password, unreachable", ["compare", "smoke", "--tracking-uri", pw],
             "error"),
        Case("compare", "--out naming a file", ["compare", "smoke", "--out", "taken"], "error",
             setup=write("taken", "a file")),
        Case("compare", "--alpha 2", ["compare", "smoke", "--alpha", "2"], "error"),
        Case("compare", "--min-effect nan", ["compare", "smoke", "--min-effect", "nan"], "error"),
        Case("compare", "a version that does not exist", ["compare", "smoke@nosuch"], "error", setup="store"),
        r("smoke, with --ui-url carrying a password (legal)", ["smoke", "--out", "report", "--ui-url", pw], "run",
          setup="store"),
    ]


def run_case(case: Case, folder: Path, env: dict[str, str], store: Path | None) -> Row:
    if case.setup == "store":
        shutil.copytree(store, folder / "mlruns")
    elif case.setup is not None:
        case.setup(folder)
    before = {p.relative_to(folder) for p in folder.rglob("*")}
    command = [sys.executable, "-m", "aevae", *case.args]
    full_env = {**env, **case.env}
    racing = case.shown.startswith("two benches")
    out, err = folder / "out.txt", folder / "err.txt"
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=folder, env=full_env, stdout=(folder / f"out{i}.txt").open("w"),
                                  stderr=(folder / f"err{i}.txt").open("w"), start_new_session=True)
                 for i in range(2 if racing else 1)]
    if case.inject is not None:
        case.inject(processes[0], folder)
        started = time.perf_counter()
    said = None
    while any(p.poll() is None for p in processes):
        if said is None and any(line.startswith("aevae ") for line in (folder / "err0.txt").read_text().splitlines()):
            said = time.perf_counter()
        time.sleep(0.05)
    seconds = (said or time.perf_counter()) - started
    statuses = [p.returncode for p in processes]
    text = "".join((folder / f"{kind}{i}.txt").read_text() for kind in ("out", "err") for i in range(len(processes)))
    out.write_text(text)
    left = sorted(str(p) for p in {p.relative_to(folder) for p in folder.rglob("*")} - before
                  if len(p.parts) == 1 and not p.name.startswith(("out", "err")))
    secret = any(SECRET.encode() in p.read_bytes() for p in folder.rglob("*") if p.is_file())
    status = max(statuses, key=abs)
    outcome = classify(case, status, text, folder)
    # what a command that failed before doing its work left behind (none should be)
    early = case.expect == "error" and case.inject is None
    return Row(case, outcome, status, seconds, left if early else [], secret)


def classify(case: Case, status: int, text: str, folder: Path) -> str:
    if TRACEBACK in text:
        return "traceback"
    if "internal error" in text:
        return "internal error"
    lines = [line for line in text.splitlines() if line.startswith(f"aevae {case.command}: ")]
    if status == 2 and lines and ": error: " in lines[-1]:
        return "one-line error"
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        running = states(folder / "mlruns" / "mlflow.db").count("RUNNING")
        return f"stopped, {running} run(s) left RUNNING" if running else "stopped, every run ended"
    if status == 0:
        return "ran" if case.expect == "run" else "SILENT ACCEPTANCE"
    return f"exit {status}"


def build_store(folder: Path, env: dict[str, str]) -> Path:
    """A store holding the smoke grid's MNIST MLP cells, for the report's cases."""
    subprocess.run([sys.executable, "-m", "aevae", "bench", "smoke", "--only", "dataset=mnist", "--only",
                    "arch=mlp"], cwd=folder, env=env, check=True, capture_output=True)
    return folder / "mlruns"


def main() -> None:
    # A script started in the background ignores Ctrl-C, and so would every command it starts
    # (aevae keeps a signal ignored that it was started ignoring): give them the terminal's.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run only the cases whose input contains this text")
    args = parser.parse_args()
    data = os.environ.get("AEVAE_DATA_DIR")
    if not data or not (Path(data) / "MNIST" / "raw").is_dir():
        sys.exit("set AEVAE_DATA_DIR to a folder with the real MNIST files (MNIST/raw/)")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "AEVAE_DEBUG")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               AEVAE_DATA_DIR=str(Path(data).resolve()), MLFLOW_DISABLE_TELEMETRY="true")
    rows = []
    with tempfile.TemporaryDirectory(prefix="aevae-faults-") as scratch:
        store = build_store(Path(scratch), env)
        for number, case in enumerate(c for c in cases() if args.only in c.shown):
            folder = Path(scratch) / f"case{number}"
            folder.mkdir()
            rows.append(run_case(case, folder, env, store))
            print(f"{number + 1}. {case.command} {case.shown}: {rows[-1].outcome}", file=sys.stderr, flush=True)
    print(table(rows))


def table(rows: list[Row]) -> str:
    lines = ["| # | command | input | outcome | exit | seconds | left behind |", "|---|---|---|---|---|---|---|"]
    for number, row in enumerate(rows, 1):
        outcome = row.outcome + (" (SECRET PRINTED)" if row.secret else "")
        lines.append(f"| {number} | {row.case.command} | {row.case.shown} | {outcome} | {row.status} | "
                     f"{row.seconds:.1f} | {', '.join(row.left) or 'nothing'} |")
    count = lambda test: sum(1 for row in rows if test(row))  # noqa: E731
    lines += ["", f"{len(rows)} inputs: "
              f"{count(lambda r: r.outcome == 'one-line error')} one-line errors, "
              f"{count(lambda r: r.outcome == 'ran')} legal inputs run, "
              f"{count(lambda r: r.outcome.startswith('stopped'))} stops; "
              f"tracebacks {count(lambda r: r.outcome == 'traceback')}, "
              f"internal errors {count(lambda r: r.outcome == 'internal error')}, "
              f"silent acceptances {count(lambda r: r.outcome == 'SILENT ACCEPTANCE')}, "
              f"secrets printed {count(lambda r: r.secret)}, "
              f"runs left RUNNING {count(lambda r: 'left RUNNING' in r.outcome)}, "
              f"failures that left something behind {count(lambda r: bool(r.left))}, "
              f"other outcomes {count(lambda r: r.outcome.startswith('exit'))}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
