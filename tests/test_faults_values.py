"""Values that cannot run anywhere, and files that mean nothing, through the real command in a
subprocess: each is one sentence naming the value or the file, before anything is created;
values that are unusual but legal still run."""

from pathlib import Path

import pytest

from faults import QUICK, TINY_GRID, TRACEBACK, aevae, assert_one_line_error, tree

STUDIES = str(Path(__file__).resolve().parents[1] / "studies")


@pytest.mark.parametrize("args,fragment", [
    (["tune", "quick", "--timeout", "-5"], "--timeout must be a positive number of seconds, got -5.0"),
    (["tune", "quick", "--timeout", "0"], "--timeout must be a positive number of seconds"),
    (["tune", "quick", "--timeout", "nan"], "--timeout must be a positive number of seconds, got nan"),
    (["tune", "quick", "--trials", "0"], "--trials must be at least 1."),
    (["tune", "quick", "--seed", "-1"], "--seed must lie between 0 and 2**32 - 1"),
    (["tune", "quick", "--storage", ""], "--storage is empty"),
    (["tune", "quick", "--studies-dir", ""], "--studies-dir is empty"),
    (["train", "--experiment", ""], "--experiment is empty"),
    (["train", "--experiment", "  "], "--experiment is empty"),
    (["train", "--lr", "inf"], "lr must be a finite number, got inf."),
    (["train", "--beta", "nan"], "beta must be a finite number, got nan."),
    (["train", "--seed", "-3"], "seed must lie between 0 and 2**32 - 1."),
    (["train", "--data-dir", ""], "--data-dir is empty"),
    (["bench", "smoke", "--workers", "0"], "--workers must be at least 1."),
    (["bench", "smoke", "--workers", "many"], "'many' is neither a whole number nor 'auto'"),
    (["bench", "smoke", "--results-dir", ""], "--results-dir is empty"),
    (["report", "smoke", "--out", ""], "the report folder is an empty path"),
])
def test_a_value_that_cannot_run_is_rejected_before_anything_is_created(tmp_path, args, fragment):
    extra = ["--studies-dir", STUDIES] if args[0] == "tune" and "--studies-dir" not in args else []
    result = aevae([*args, *extra], tmp_path)
    assert_one_line_error(result, args[0], fragment)
    assert tree(tmp_path) == set()


def test_a_storage_that_is_a_folder_is_named(tmp_path):
    (tmp_path / "journal").mkdir()
    result = aevae(["tune", "quick", "--studies-dir", STUDIES, "--storage", "journal"], tmp_path)
    assert_one_line_error(result, "tune", "the Optuna storage journal is a folder")
    assert tree(tmp_path) == {"journal"}


def test_a_data_root_that_is_a_file_is_named(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    result = aevae(["train", "--data-dir", "data"], tmp_path)
    assert_one_line_error(result, "train", "the data root data is a file")
    assert tree(tmp_path) == {"data"}


def test_missing_data_leaves_no_folder_no_store_and_no_study(tmp_path):
    result = aevae(["tune", "quick", "--studies-dir", STUDIES, "--data-dir", "nothing"], tmp_path)
    assert_one_line_error(result, "tune", "MNIST needs", within=60)  # torch and Optuna load first
    assert tree(tmp_path) == set()  # no nothing/MNIST/raw, no mlruns/, no studies/optuna.log


def write_studies(tmp_path: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "good.toml").write_text('[cells]\nmodel = ["ae"]\narch = ["mlp"]\ndataset = ["mnist"]\n'
                                      '[space]\nlr = { low = 1e-4, high = 1e-2, log = true }\n')
    (folder / "broken.toml").write_text('[cells]\nmodel = ["ae", "ae"]\narch = ["mlp"]\ndataset = ["mnist"]\n')
    return folder


def test_a_broken_study_file_breaks_only_its_own_studies_and_is_named(tmp_path):
    folder = write_studies(tmp_path)
    bad = aevae(["tune", "broken", "--studies-dir", str(folder)], tmp_path)
    assert_one_line_error(bad, "tune", f"{folder / 'broken.toml'}: [cells] lists a value of 'model' twice.")
    unknown = aevae(["tune", "nope", "--studies-dir", str(folder)], tmp_path)
    assert_one_line_error(unknown, "tune", "valid study names: good/ae/mlp/mnist",
                          f"{folder / 'broken.toml'} holds errors")
    # the good set is untouched by its broken neighbour: it gets as far as its data
    good = aevae(["tune", "good", "--studies-dir", str(folder), "--data-dir", "nothing"], tmp_path)
    assert_one_line_error(good, "tune", "MNIST needs", within=60)


@pytest.mark.parametrize("text,fragment", [
    ("[base]\nmodel = 'vae'\n", "the grid has no [axes], so it names no cells"),
    ("[axes]\nlatent_dim = [20, 'none']\n", "two cells train the same config (ae/mlp/mnist/latent_dim=20"),
])
def test_a_grid_that_means_nothing_is_an_error_naming_the_file(tmp_path, text, fragment):
    grid = tmp_path / "empty.toml"
    grid.write_text(text.replace("[axes]\n", "[axes]\nmodel = ['ae']\n") if "[axes]" in text else text)
    result = aevae(["bench", str(grid), *QUICK], tmp_path, timeout=120)
    assert_one_line_error(result, "bench", str(grid), fragment)
    assert tree(tmp_path) == {"empty.toml"}


def test_unusual_but_legal_values_still_run(data_root, tmp_path):
    grid = tmp_path / "odd.toml"
    grid.write_text(TINY_GRID.replace("epochs = 2", "epochs = 1\nbeta = 0.0\nlr = 1e-6"))
    result = aevae(["bench", str(grid), *QUICK, "--only", "dataset=mnist", "--only", "model=vae",
                    "--tracking-uri", "sqlite:///odd/mlflow.db"], tmp_path, data=True)
    assert result.status == 0 and TRACEBACK not in result.out + result.err, result.show()
    assert "1 cells: 1 done, 0 failed" in result.out


@pytest.mark.parametrize("how", [["--debug", "train"], ["train", "--debug"], ["train"]])
def test_debug_shows_the_traceback_of_an_error_still_masked(tmp_path, how):
    env = {"AEVAE_DEBUG": "1"} if how == ["train"] else {}
    result = aevae([*how, "--tracking-uri", "http://me:pw-123@127.0.0.1:9"], tmp_path, **env)
    assert result.status == 2 and TRACEBACK in result.err and "pw-123" not in result.err, result.show()
    assert result.err.strip().splitlines()[-1].startswith("aevae train: error: cannot reach")


def test_a_bug_is_one_line_and_its_traceback_comes_on_request(monkeypatch, capsys):
    import aevae.commands.report as report
    from aevae.cli import main

    monkeypatch.setattr(report, "run", lambda args: {}["missing"])
    monkeypatch.delenv("AEVAE_DEBUG", raising=False)
    assert main(["report"]) == 1
    assert capsys.readouterr().err.strip() == (
        "aevae report: internal error: KeyError: 'missing' (a bug in aevae; rerun with --debug or "
        "AEVAE_DEBUG=1 for the traceback, and report it).")
    monkeypatch.setenv("AEVAE_DEBUG", "1")
    assert main(["report"]) == 1
    assert TRACEBACK in capsys.readouterr().err
