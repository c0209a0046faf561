"""Signals in the middle of training, through the real command in a subprocess: Ctrl-C twice
0.3 s apart to the whole process group (as a terminal sends it), and SIGTERM to the command
alone (as `kill` does). When the command exits, every run it touched is FINISHED, FAILED or
KILLED, and its table says which."""

import os
import signal
import time

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
    held = wait_for(lambda: mid_training(db, workers), process, log, f"{workers} cells in the middle of training")
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


def test_ctrl_c_twice_during_a_two_worker_grid_ends_every_run(data_root, tmp_path):
    process, log, db, held = held_bench(tmp_path, workers=2)
    started = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
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
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    result = finish(process, log, started)
    assert_every_run_ended(db, held, result, 128 + signal.SIGINT)
    assert "1 interrupted, 3 not run" in result.out


def test_sigterm_during_train_ends_its_run_killed(data_root, tmp_path):
    db, log = tmp_path / "store" / "mlflow.db", tmp_path / "train.log"
    process = start(["train", "--epochs", "2", "--val-size", "100", "--hidden-dim", "32", "--analysis", "false",
                     "--tracking-uri", f"sqlite:///{db}"], tmp_path, log, AEVAE_TEST_HOLD=str(tmp_path / "never"))
    (held,) = wait_for(lambda: mid_training(db, 1), process, log, "the run in the middle of training")
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    result = finish(process, log, started)
    assert result.status == 128 + signal.SIGTERM and TRACEBACK not in result.err, result.show()
    assert run_states(db) == {held: "KILLED"}
