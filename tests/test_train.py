import dataclasses
import json

import mlflow
import pytest
import torch

from aevae import data
from aevae.config import TrainConfig
from aevae.errors import TrainingFailed
from aevae.tracking import MemoryTracker
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training.loop import train

# The analysis has tests of its own (test_analysis.py); these runs measure training only.
SMOKE = TrainConfig(epochs=3, batch_size=50, val_size=100, hidden_dim=64, latent_dim=8, lr=3e-3, analysis=False)


def load(cfg):
    return data.load(cfg.dataset, val_size=cfg.val_size, subset=cfg.subset)


@pytest.mark.parametrize("model,arch", [("ae", "mlp"), ("vae", "mlp"), ("vae", "conv")])
def test_loss_falls_and_every_metric_is_tracked(data_root, model, arch):
    cfg = dataclasses.replace(SMOKE, model=model, arch=arch, conv_channels=(8, 16))
    tracker = MemoryTracker()
    result = train(cfg, load(cfg), tracker, log_artifacts=False)
    losses = [row["train/loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert result.history[-1]["val/loss"] < result.history[0]["val/loss"]
    run = tracker.current
    assert run["status"] == "FINISHED"
    assert [step for step, _ in run["metrics"]["val/recon_mse"]] == [1, 2, 3]
    for key in ("loss", "recon_mse", "recon_bce", "kl", "pixel_acc", "recon_acc_1mse", "active_units"):
        assert f"test/{key}" in run["metrics"]
    assert ("test/elbo" in run["metrics"]) == (model == "vae")
    assert run["tags"]["model"] == model and run["tags"]["config_hash"]
    assert run["params"]["latent_dim"] == 8


def test_same_seed_same_numbers_other_seed_other_numbers(data_root):
    cfg = dataclasses.replace(SMOKE, epochs=2)
    first = train(cfg, load(cfg), MemoryTracker(), log_artifacts=False)
    again = train(cfg, load(cfg), MemoryTracker(), log_artifacts=False)
    other = train(dataclasses.replace(cfg, seed=1), load(cfg), MemoryTracker(), log_artifacts=False)
    assert first.test == again.test
    assert first.test != other.test


def test_bf16_conv_run_is_deterministic(data_root):
    cfg = dataclasses.replace(SMOKE, arch="conv", conv_channels=(8, 16), epochs=1, precision="bf16")
    runs = [train(cfg, load(cfg), MemoryTracker(), log_artifacts=False).test for _ in range(2)]
    assert runs[0] == runs[1]


def test_channels_last_changes_the_layout_not_the_numbers_and_is_recorded(data_root):
    cfg = dataclasses.replace(SMOKE, model="vae", arch="conv", conv_channels=(8, 16), epochs=2)
    seen = {}
    for fmt in ("contiguous", "channels_last", "auto"):
        tracker = MemoryTracker()
        seen[fmt] = (train(dataclasses.replace(cfg, memory_format=fmt), load(cfg), tracker,
                           log_artifacts=False).test, tracker.current["tags"]["memory_format"])
    assert [tag for _, tag in seen.values()] == ["contiguous", "channels_last", "channels_last"]  # auto: conv on CPU
    # other kernels, the same model: equal up to float rounding, not bit for bit
    assert seen["channels_last"][0] == pytest.approx(seen["contiguous"][0], rel=1e-3, abs=1e-4)
    assert seen["auto"][0] == seen["channels_last"][0]
    mlp = MemoryTracker()
    train(dataclasses.replace(SMOKE, epochs=1), load(SMOKE), mlp, log_artifacts=False)
    assert mlp.current["tags"]["memory_format"] == "contiguous"  # an MLP has no image tensor to reorder


def test_diverging_run_fails_with_a_reason(data_root):
    cfg = dataclasses.replace(SMOKE, model="ae", lr=1e30, epochs=3)
    tracker = MemoryTracker()
    with pytest.raises(TrainingFailed, match="diverged; try a lower lr"):
        train(cfg, load(cfg), tracker, log_artifacts=False)
    assert tracker.current["status"] == "FAILED"
    assert "diverged" in tracker.current["tags"]["failure_reason"]


def test_on_epoch_hook_sees_each_epoch_and_can_stop_the_run(data_root):
    seen = []

    class Stop(Exception):
        run_status = "KILLED"

    def hook(epoch, metrics):
        seen.append((epoch, metrics["val/loss"]))
        if epoch == 2:
            raise Stop()

    tracker = MemoryTracker()
    with pytest.raises(Stop):
        train(SMOKE, load(SMOKE), tracker, on_epoch=hook, log_artifacts=False)
    assert [e for e, _ in seen] == [1, 2]
    assert tracker.current["status"] == "KILLED"


def test_mlflow_run_holds_params_curves_test_metrics_figures_and_a_loadable_model(data_root, tracking_uri):
    cfg = dataclasses.replace(SMOKE, epochs=2)
    splits = load(cfg)
    result = train(cfg, splits, MlflowTracker(tracking_uri, "smoke"))
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.003" and run.data.params["recon_loss"] == "bce"
    for tag in ("git_commit", "torch_version", "mlflow_version", "device", "config_hash", "dataset"):
        assert run.data.tags[tag]
    history = client.get_metric_history(result.run_id, "val/loss")
    assert [m.step for m in history] == [1, 2]
    assert run.data.metrics["test/recon_mse"] == pytest.approx(result.test["recon_mse"])
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "figures")}
    assert artifacts >= {f"figures/{n}.png" for n in ("reconstructions", "prior_samples", "latent", "curves")}
    config = json.loads(open(client.download_artifacts(result.run_id, "config.json")).read())
    assert config["seed"] == 0 and config["latent_dim"] == 8
    model = mlflow.pytorch.load_model(run.data.tags["model_uri"])
    x = splits.test.floats(slice(0, 4))
    assert model(x).shape == x.shape


def test_mlflow_run_that_fails_ends_failed_with_reason(data_root, tracking_uri):
    cfg = dataclasses.replace(SMOKE, model="ae", lr=1e30)
    tracker = MlflowTracker(tracking_uri, "smoke")
    with pytest.raises(TrainingFailed):
        train(cfg, load(cfg), tracker)
    (run,) = mlflow.MlflowClient(tracking_uri).search_runs([tracker.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("TrainingFailed: ")


def test_dynamic_binarization_trains_on_binary_pixels(data_root):
    from aevae.training.evaluate import eval_batches

    cfg = dataclasses.replace(SMOKE, binarize=True, epochs=2)
    splits = load(cfg)
    x, _ = next(eval_batches(splits.val, binarize=True))
    assert set(x.unique().tolist()) == {0.0, 1.0}
    again, _ = next(eval_batches(splits.val, binarize=True))
    assert torch.equal(x, again), "evaluation images are binarized the same way every time"
    result = train(cfg, splits, MemoryTracker(), log_artifacts=False)
    assert result.history[-1]["val/loss"] < result.history[0]["val/loss"]
