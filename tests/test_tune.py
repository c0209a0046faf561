"""Optuna studies on tiny synthetic data, with real journal storage and a real MLflow store."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
import torch
from optuna.trial import TrialState

from aevae import data
from aevae.cli import main
from aevae.tune.space import find_study
from aevae.tune.storage import StorageError, open_storage, owner_attrs, recover_trials
from aevae.tracking import MemoryTracker
from aevae.tracking.runs import RunStore
from aevae.training.loop import train
from aevae.tune.study import StudyRequest, open_study, run_study, tuned_overrides
from conftest import CLI_SUBPROCESS, cli_subprocess_env

TINY_SET = """
trials = 3
pruner = "median"
[cells]
model = ["vae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 3
val_size = 100
hidden_dim = 32
latent_dim = 4
batch_size = 50
[space]
lr = { low = 1e-6, high = 1e-2, log = true }
"""


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train faster on one thread than on threads that contend for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(tmp_path):
    """The study `tiny/vae/mlp/mnist`: 3 trials of 3 epochs, searching the learning rate."""
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_SET)
    return find_study("tiny", folder)


def runs_of(tracking_uri, experiment):
    client = mlflow.MlflowClient(tracking_uri)
    return client, client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def test_study_prunes_the_worse_curve_and_mirrors_every_trial_in_mlflow(data_root, tracking_uri, tiny, tmp_path):
    storage = str(tmp_path / "studies" / "optuna.log")
    study = open_study(tiny, open_storage(storage))  # enqueues the default config (lr 1e-3)
    study.enqueue_trial({"lr": 3e-3})
    study.enqueue_trial({"lr": 1e-6})  # learns nothing in an epoch: worse than the median
    summary = run_study(StudyRequest(tiny, storage=storage, tracking_uri=tracking_uri))

    trials = optuna.load_study(study_name="tiny/vae/mlp/mnist", storage=open_storage(storage)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert trials[0].user_attrs["default_config"] and summary.default_value == trials[0].value
    assert [len(t.intermediate_values) for t in trials] == [3, 3, 1]
    assert (summary.complete, summary.pruned, summary.epochs_saved, summary.new_trials) == (2, 1, 2, 3)
    assert summary.best_value == min(trials[0].value, trials[1].value)

    client, runs = runs_of(tracking_uri, "tune/tiny")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_id: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert len(children) == 3 and len(runs) == 4
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_pruned"] == 1
    assert parent.data.tags["objective_units"] == "nats per image"
    for trial in trials:
        run = children[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna_trial_number"] == str(trial.number)
        assert float(run.data.params["lr"]) == pytest.approx(trial.params["lr"])
        assert not any(key.startswith("test/") for key in run.data.metrics)  # never the test split
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/elbo")]
        assert steps == list(range(1, len(trial.intermediate_values) + 1))
    pruned = children[trials[2].user_attrs["mlflow_run_id"]]
    assert (pruned.info.status, pruned.data.tags["optuna_state"]) == ("KILLED", "PRUNED")
    done = children[trials[0].user_attrs["mlflow_run_id"]]
    assert (done.info.status, done.data.tags["optuna_state"]) == ("FINISHED", "COMPLETE")
    assert {a.path for a in client.list_artifacts(done.info.run_id)} == {"config.json", "figures"}
    assert {a.path for a in client.list_artifacts(done.info.run_id, "figures")} == {
        "figures/curves.png", "figures/reconstructions.png"}

    overrides, name = tuned_overrides("vae", "mlp", "mnist", storage, study_set="tiny")
    assert name == "tiny/vae/mlp/mnist" and overrides == {"lr": summary.best_params["lr"]}
    assert tuned_overrides("ae", "mlp", "mnist", storage, study_set="tiny") is None


def test_resume_fails_the_dead_process_trial_retries_its_point_and_completes(data_root, tracking_uri, tiny,
                                                                             tmp_path, capsys):
    storage = str(tmp_path / "journal.log")
    study = open_study(tiny, open_storage(storage))
    # A crash mid-trial: the default-config trial RUNNING, owned by a process that is gone,
    # with an MLflow run left RUNNING too.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.create_experiment("crashed")
    orphan = client.create_run(experiment).info.run_id
    crashed = study.ask()
    for key, value in (("host", __import__("socket").gethostname()), ("pid", dead.pid), ("mlflow_run_id", orphan)):
        crashed.set_user_attr(key, value)
    crashed.suggest_float("lr", 1e-6, 1e-2, log=True)

    summary = run_study(StudyRequest(tiny, storage=storage, tracking_uri=tracking_uri, trials=2))

    trials = optuna.load_study(study_name=tiny.name, storage=open_storage(storage)).trials
    assert trials[0].state == TrialState.FAIL and "died" in trials[0].user_attrs["abandoned"]
    assert trials[1].system_attrs["failed_trial"] == 0 and trials[1].user_attrs["default_config"]  # Optuna's retry
    assert "abandoned" not in trials[1].user_attrs and trials[1].user_attrs["pid"] != dead.pid
    assert trials[1].params == trials[0].params and trials[1].state == TrialState.COMPLETE
    assert summary.retried == [0] and summary.complete + summary.pruned == 2
    assert summary.default_number == 1
    orphan_run = client.get_run(orphan)
    assert orphan_run.info.status == "KILLED" and "died" in orphan_run.data.tags["failure_reason"]

    # Done: re-running the command adds nothing and prints the same study.
    assert main(["tune", "tiny", "--studies-dir", str(tmp_path / "studies"), "--storage", storage,
                 "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "this run: nothing to do" in out and "default config (trial 1): " in out
    assert "did not finish" not in out


def test_a_trial_whose_pid_now_names_another_process_is_recovered_a_live_one_is_not(tracking_uri, tiny,
                                                                                     tmp_path):
    storage = open_storage(str(tmp_path / "journal.log"))
    study = open_study(tiny, storage)
    runs = RunStore(tracking_uri)
    experiment_id = runs.experiment("tune/tiny")
    live, reused = study.ask(), study.ask()
    for trial in (live, reused):
        trial.suggest_float("lr", 1e-6, 1e-2, log=True)
        run_id = runs.create(experiment_id, f"trial {trial.number}", {}).run_id
        for key, value in {**owner_attrs(parent_run_id="0" * 32), "mlflow_run_id": run_id}.items():
            trial.set_user_attr(key, value)
    # this process's pid, as a process started an hour earlier would have recorded it
    reused.set_user_attr("process_started", reused.user_attrs["process_started"] - 3600)

    assert recover_trials(study, storage, runs) == [reused.number]
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[live.number] == TrialState.RUNNING and states[reused.number] == TrialState.FAIL
    ended = runs.get(study.trials[reused.number].user_attrs["mlflow_run_id"])
    assert ended.status == "KILLED" and "died during trial" in ended.tags["failure_reason"]
    assert runs.get(study.trials[live.number].user_attrs["mlflow_run_id"]).status == "RUNNING"


@pytest.mark.parametrize("url,shown", [
    ("postgresql://me:secret@127.0.0.1:1/optuna", "postgresql://me:***@127.0.0.1:1/optuna"),
    ("postgresql://me:secret@127.0.0.1:port/optuna", "postgresql://me:***@127.0.0.1:port/optuna"),
    ("nosuchdb://host/db", "nosuchdb://host/db"),
])
def test_bad_storage_url_is_one_clear_line(data_root, tiny, tmp_path, capsys, url, shown):
    with pytest.raises(StorageError, match="postgresql://user:password@host:5432/optuna"):
        open_storage(url)
    assert main(["tune", "tiny", "--studies-dir", str(tmp_path / "studies"), "--storage", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "secret" not in err
    assert err.startswith(f"aevae tune: error: cannot open the Optuna storage '{shown}' (")


def test_a_run_on_splits_without_test_never_evaluates_a_test_split(data_root, tiny):
    cfg = tiny.config({"lr": 1e-3})
    splits = data.load("mnist", val_size=cfg.val_size).without_test()
    assert splits.test is None and splits.to(torch.device("cpu")).test is None
    tracker = MemoryTracker()
    result = train(dataclasses.replace(cfg, epochs=1), splits, tracker)
    assert result.test == {} and not any(k.startswith("test/") for k in tracker.current["metrics"])
    assert set(tracker.current["artifacts"]) == {"config.json", "figures/curves.png", "figures/reconstructions.png"}


def test_tuned_overrides_is_none_without_the_default_storage(tmp_path):
    assert tuned_overrides("vae", "mlp", "mnist") is None
    assert not Path("studies/optuna.log").exists()  # looking does not create it


def test_two_local_workers_run_two_trials_at_once(data_root, tracking_uri, tmp_path):
    """`--workers 2` on the local executor: two processes optimize the study side by side,
    as two Ray tasks do, each with its own sampler seed."""
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "pair.toml").write_text(TINY_SET.replace("trials = 3", "trials = 4").replace("epochs = 3", "epochs = 8")
                                      .replace('pruner = "median"', 'pruner = "none"'))
    storage = str(tmp_path / "optuna.log")
    done = subprocess.run([sys.executable, str(CLI_SUBPROCESS), "tune", "pair", "--workers", "2", "--studies-dir",
                           str(folder), "--storage", storage], env=cli_subprocess_env(), capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 worker processes, 1 torch threads each" in done.stdout
    trials = [t for t in optuna.load_study(study_name="pair/vae/mlp/mnist", storage=open_storage(storage)).trials
              if t.state == TrialState.COMPLETE]
    assert 4 <= len(trials) <= 5  # the second worker may finish the trial it had begun
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    assert any(later_start < earlier_end for (_, earlier_end), (later_start, _) in zip(spans, spans[1:]))
