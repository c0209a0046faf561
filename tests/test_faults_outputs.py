"""Output folders, through the real command in a subprocess: a results folder or report folder
that cannot be written is known before any training or reading, and a summary that cannot be
written after the cells trained loses none of their record."""

import time

import pytest

from faults import (
    QUICK, TINY_GRID, aevae, assert_one_line_error, finish, mid_training, run_states, start, tree, wait_for,
)


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "taken"
    path.write_text("a file, not a folder")
    return path


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_results_folder_that_cannot_be_written_fails_before_any_training(tmp_path, a_file, where):
    folder = a_file if where == "file" else a_file / "results"
    result = aevae(["bench", "smoke", *QUICK, "--results-dir", str(folder)], tmp_path)
    assert_one_line_error(result, "bench", "the results folder", "is a file", "--results-dir")
    assert tree(tmp_path) == {"taken"}  # no store was created, so nothing trained


@pytest.mark.parametrize("command,what", [("report", "the report folder"), ("compare", "the comparison's folder")])
@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_report_folder_that_cannot_be_written_fails_before_reading(tmp_path, a_file, where, command, what):
    folder = a_file if where == "file" else a_file / "report"
    result = aevae([command, "smoke", "--out", str(folder)], tmp_path)
    assert_one_line_error(result, command, what, "is a file", "--out")
    assert tree(tmp_path) == {"taken"}


def test_a_summary_that_cannot_be_written_keeps_the_table_and_the_runs(data_root, tmp_path):
    grid, hold = tmp_path / "kept.toml", tmp_path / "go-on"
    grid.write_text(TINY_GRID.replace('dataset = ["mnist", "fashion_mnist"]', 'dataset = ["mnist"]'))
    db, log, results = tmp_path / "store" / "mlflow.db", tmp_path / "kept.log", tmp_path / "results"
    runner = start(["bench", str(grid), *QUICK, "--tracking-uri", f"sqlite:///{db}", "--results-dir",
                    str(results)], tmp_path, log, AEVAE_TEST_HOLD=str(hold))
    wait_for(lambda: mid_training(db, 1), 180, "a cell in the middle of training", runner, log)
    results.write_text("the folder was checked, then this file took its place")
    hold.touch()
    result = finish(runner, log, time.perf_counter(), timeout=180)
    assert_one_line_error(result, "bench", "cannot write", "the table above and the runs in MLflow hold the "
                          "results", within=180)
    assert "2 cells: 2 done, 0 failed" in result.out  # the table, printed first
    assert run_states(db) == {"ae/mlp/mnist/s0": "FINISHED", "vae/mlp/mnist/s0": "FINISHED"}
