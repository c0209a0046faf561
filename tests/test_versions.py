"""Versions of a grid: a label per run that the skip rule, --force and the report follow, and
a default label from the code's git commit (aevae.bench.versions)."""

from __future__ import annotations

import subprocess

import mlflow
import pytest
from report_store import Store, finished_metrics

from aevae.bench import versions
from aevae.cli import main
from aevae.report import build_report
from test_report import row_of, table

TINY = """
[axes]
model = ["ae"]

[base]
subset = 128
val_size = 64
hidden_dim = 16
epochs = 1
analysis = false
"""


def finished_by_label(tracking_uri: str) -> dict[str, set[tuple[str, str]]]:
    """Active FINISHED runs of bench/tiny as {label: {(seed, run_id)}}."""
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("bench/tiny").experiment_id
    found: dict[str, set] = {}
    for run in client.search_runs([experiment], "attributes.status = 'FINISHED'"):
        found.setdefault(run.data.tags.get("version_label", ""), set()).add((run.data.tags["seed"], run.info.run_id))
    return found


def test_a_new_label_trains_the_grid_again_and_force_retires_only_its_own_runs(data_root, tracking_uri,
                                                                                tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    one_cell = [str(tmp_path / "tiny.toml"), "--no-artifacts"]
    assert main(["bench", *one_cell, "--seeds", "0,1", "--label", "before"]) == 0
    assert "version before: 2 of 2 cells selected, 0 finished earlier, 2 to run" in capsys.readouterr().out
    assert main(["bench", *one_cell, "--seeds", "0,1", "--label", "after"]) == 0
    assert "0 finished earlier, 2 to run" in capsys.readouterr().out  # the same code, another version
    first = finished_by_label(tracking_uri)
    assert {label: sorted(seed for seed, _ in runs) for label, runs in first.items()} == {
        "before": ["0", "1"], "after": ["0", "1"]}

    assert main(["bench", *one_cell, "--seeds", "0,1", "--label", "after"]) == 0
    assert "2 finished earlier, 0 to run" in capsys.readouterr().out

    assert main(["bench", *one_cell, "--seeds", "0", "--label", "after", "--force"]) == 0
    now = finished_by_label(tracking_uri)
    assert now["before"] == first["before"]  # the other version keeps both runs
    (retired,) = {run_id for seed, run_id in first["after"] if seed == "0"}
    assert {seed for seed, _ in now["after"]} == {"0", "1"} and retired not in {r for _, r in now["after"]}
    gone = mlflow.MlflowClient(tracking_uri).get_run(retired)
    assert gone.info.lifecycle_stage == "deleted" and gone.data.tags["superseded_by"]

    # the unlabelled version (runs logged before versions existed) is a version of its own
    assert main(["bench", *one_cell, "--label", ""]) == 0
    assert "version (unlabelled): 1 of 1 cells selected, 0 finished earlier, 1 to run" in capsys.readouterr().out
    assert "" in finished_by_label(tracking_uri)


def test_a_bad_label_or_seed_list_fails_before_anything_runs(tracking_uri, capsys):
    assert main(["bench", "smoke", "--label", "my label"]) == 2
    assert "label 'my label' cannot name a version" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "smoke", "--seeds", "0,one"])
    assert main(["bench", "smoke", "--seeds", "1,1"]) == 2
    assert "--seeds must list one or more distinct integers" in capsys.readouterr().err


@pytest.fixture
def two_versions(tracking_uri) -> Store:
    """bench/lab with the runs of an older aevae (no label, config hash h) and, later, of
    version v2 (config hash h2: a default changed), two seeds each."""
    store = Store(tracking_uri)
    store.expect([("ae/mlp/mnist", s, "h") for s in (0, 1)], {"model": ["ae"]})
    store.expect([("ae/mlp/mnist", s, "h2") for s in (0, 1)], {"model": ["ae"]}, version="v2")
    for seed in (0, 1):
        store.run("ae/mlp/mnist", seed, test=finished_metrics(0.010 + seed / 1000), start=1_700_000_000_000)
        store.run("ae/mlp/mnist", seed, test=finished_metrics(0.020 + seed / 1000), config_hash="h2",
                  tags={"version_label": "v2", "git_commit": "fedcba9876543"}, start=1_700_000_500_000)
    return store


def test_the_report_shows_the_newest_version_or_the_one_asked_for(two_versions, tmp_path, capsys):
    newest = build_report("lab", tmp_path / "newest")
    text = newest.path.read_text()
    assert text.startswith("# Results: `bench/lab`, version `v2`")
    assert row_of(table(text, "## Results"), model="AE")["recon MSE"] == "0.02050 ± 0.00071"
    assert "the experiment also holds, oldest first: (unlabelled) (2 runs)" in text

    for asked in ("", "fedcb"):  # the unlabelled version; a commit the runs of v2 ran
        out = tmp_path / f"asked-{asked}"
        assert main(["report", "lab", "--label", asked, "--out", str(out)]) == 0
        shown = row_of(table((out / "RESULTS.md").read_text(), "## Results"), model="AE")
        assert (shown["recon MSE"], shown["seeds"]) == (("0.01050 ± 0.00071", "2/2") if asked == "" else
                                                        ("0.02050 ± 0.00071", "2/2"))
    capsys.readouterr()
    assert main(["report", "lab", "--label", "v3"]) == 2
    assert ("experiment 'bench/lab' has no version 'v3'; its versions, oldest first: (unlabelled) "
            "(2 runs), v2 (2 runs).") in capsys.readouterr().err


def test_pick_takes_a_label_a_unique_prefix_or_a_commit():
    found = versions.versions_of([("abc1234", 3, "abc1234ffff"), ("abc1234-dirty-0f0f0f", 5, "abc1234ffff"),
                                  ("base", 1, "0123456789"), ("base", 2, "0123456789")])
    assert [v.label for v in found] == ["base", "abc1234", "abc1234-dirty-0f0f0f"]
    assert found[0].runs == 2 and versions.pick(found, None, "g").label == "abc1234-dirty-0f0f0f"
    assert versions.pick(found, "abc1234", "g").label == "abc1234"  # the label itself beats a prefix
    assert versions.pick(found, "abc1234-d", "g").label == "abc1234-dirty-0f0f0f"
    assert versions.pick(found, "01234567", "g").label == "base"  # a commit of its runs
    with pytest.raises(versions.VersionError, match="'abc' names 2 versions of g"):
        versions.pick(found, "abc", "g")
    with pytest.raises(versions.VersionError, match="g has no version 'zzz'"):
        versions.pick(found, "zzz", "g")


def git(folder, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout


def test_the_default_label_is_the_commit_and_a_digest_of_uncommitted_code(tmp_path):
    repo = tmp_path / "repo"
    package = repo / "aevae"
    package.mkdir(parents=True)
    (package / "model.py").write_text("LATENT = 20\n")
    (repo / "notes.md").write_text("notes\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert versions.code_label(package) == commit[:7]

    (repo / "notes.md").write_text("other notes\n")  # outside the code: the same version
    assert versions.code_label(package) == commit[:7]
    (package / "model.py").write_text("LATENT = 2\n")
    edited = versions.code_label(package)
    assert edited.startswith(f"{commit[:7]}-dirty-") and versions.code_label(package) == edited
    (package / "model.py").write_text("LATENT = 8\n")
    assert versions.code_label(package) not in (edited, commit[:7])  # another edit, another version
    (package / "model.py").write_text("LATENT = 20\n")
    (package / "new.py").write_text("X = 1\n")  # a new file counts too
    assert versions.code_label(package).startswith(f"{commit[:7]}-dirty-")
    (package / "new.py").unlink()
    assert versions.code_label(package) == commit[:7]
    assert versions.code_label(tmp_path) == ""  # not a git checkout
