"""Signals in the middle of training, through the real command in a subprocess: Ctrl-C twice
0.3 s apart to the whole process group (as a terminal sends it), and SIGTERM to the command
alone (as `kill` does), during a grid, a run and a study. When the command exits, every run
and trial it touched is FINISHED, FAILED or KILLED, and a grid's table says which."""

import os
import signal
import time

import optuna
import pytest

from faults import QUICK, TINY_GRID, TRACEBACK, finish, mid_training, run_states, start, wait_for

STOPS_WITHIN_S = 30  # the runs closed and the workers joined, from the first signal to the exit


def held_bench(tmp_path, workers: int):
    """A bench of TINY_GRID whose runs wait after their first epoch, until `count` of them
    are in the middle of training; returns the process, its log and its store."""
    grid = tmp_path / "stop.toml"
    grid.write_text(TINY_GRID)
    db, log = tmp_path / "store" / "mlflow.db", tmp_path / "stop.log"
    process = start(["bench", str(grid), "--workers", str(workers), *QUICK, "--tracking-uri", f"sqlite:///{db}"],
                    tmp_path, log, AEVAE_TEST_HOLD=str(tmp_path / "never"))
    held = wait_for(lambda: mid_training(db, workers), 180, f"{workers} cells in the middle of training",
                    process, log)
    return process, log, db, held


def assert_every_run_ended(db, held, result, status: int):
    assert result.status == status, result.show()
    assert TRACEBACK not in result.out + result.err, result.show()
    assert result.seconds < STOPS_WITHIN_S, result.show()
    states = run_states(db)
    assert set(states.values()) <= {"FINISHED", "FAILED", "KILLED"}, states
    assert all(states[name] == "KILLED" for name in held), states
    for name in held:  # the table says what became of them
        cell = name.rsplit("/s", 1)[0]
        assert any(line.startswith(cell) and " interrupted" in line for line in result.out.splitlines()), result.out


def ctrl_c_twice(process) -> None:
    """Two Ctrl-C 0.3 s apart, to the command's whole process group, as a terminal sends them."""
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)


def test_ctrl_c_twice_during_a_two_worker_grid_ends_every_run(data_root, tmp_path):
    process, log, db, held = held_bench(tmp_path, workers=2)
    started = time.perf_counter()
    ctrl_c_twice(process)
    result = finish(process, log, started)
    assert_every_run_ended(db, held, result, 128 + signal.SIGINT)
    assert "2 interrupted, 2 not run" in result.out
    assert result.err.strip().splitlines()[-1] == ("aevae bench: interrupted by SIGINT; the runs in "
                                                   "progress ended KILLED.")


def test_sigterm_to_the_bench_alone_stops_its_workers_and_ends_every_run(data_root, tmp_path):
    process, log, db, held = held_bench(tmp_path, workers=2)
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)  # the workers get nothing from outside
    result = finish(process, log, started)
    assert_every_run_ended(db, held, result, 128 + signal.SIGTERM)
    assert "interrupted by SIGTERM" in result.err


def test_ctrl_c_twice_during_a_serial_grid_ends_its_run(data_root, tmp_path):
    process, log, db, held = held_bench(tmp_path, workers=1)
    started = time.perf_counter()
    ctrl_c_twice(process)
    result = finish(process, log, started)
    assert_every_run_ended(db, held, result, 128 + signal.SIGINT)
    assert "1 interrupted, 3 not run" in result.out


def test_sigterm_during_train_ends_its_run_killed(data_root, tmp_path):
    db, log = tmp_path / "store" / "mlflow.db", tmp_path / "train.log"
    process = start(["train", "--epochs", "2", "--val-size", "100", "--hidden-dim", "32", "--analysis", "false",
                     "--tracking-uri", f"sqlite:///{db}"], tmp_path, log, AEVAE_TEST_HOLD=str(tmp_path / "never"))
    (held,) = wait_for(lambda: mid_training(db, 1), 180, "the run in the middle of training", process, log)
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    result = finish(process, log, started)
    assert result.status == 128 + signal.SIGTERM and TRACEBACK not in result.err, result.show()
    assert run_states(db) == {held: "KILLED"}


TINY_STUDY = """
trials = 3
[cells]
model = ["vae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 2
val_size = 100
hidden_dim = 32
latent_dim = 4
analysis = false
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""


def test_ctrl_c_twice_during_a_trial_ends_the_trial_and_its_runs(data_root, tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.toml").write_text(TINY_STUDY)
    db, log, journal = tmp_path / "store" / "mlflow.db", tmp_path / "tune.log", tmp_path / "optuna.log"
    process = start(["tune", "tiny", "--studies-dir", "studies", "--storage", str(journal),
                     "--tracking-uri", f"sqlite:///{db}"], tmp_path, log, AEVAE_TEST_HOLD=str(tmp_path / "never"))
    (held,) = wait_for(lambda: mid_training(db, 1), 180, "a trial in the middle of training", process, log)
    started = time.perf_counter()
    ctrl_c_twice(process)
    result = finish(process, log, started)
    assert result.status == 128 + signal.SIGINT and TRACEBACK not in result.out + result.err, result.show()
    assert result.seconds < STOPS_WITHIN_S, result.show()
    states = run_states(db)
    assert states[held] == "KILLED" and set(states.values()) == {"KILLED"}, states  # the trial and its parent
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="tiny/vae/mlp/mnist", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL"]


def test_a_stop_inside_a_deferred_block_comes_after_it():
    from aevae.interrupts import Interrupted, deferred, stop_on_signals

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    finished = []
    try:
        with pytest.raises(Interrupted) as stopped, stop_on_signals("test"):
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)  # the handler has run by now, and raised nothing
                finished.append("the write")
            finished.append("after the block")
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert finished == ["the write"] and stopped.value.signum == signal.SIGTERM
