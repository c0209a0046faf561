import dataclasses
import json
import shutil

import mlflow
import pytest
import torch

from aevae import data
from aevae.config import TrainConfig
from aevae.resolve import resolve
from aevae.errors import TrainingFailed
from aevae.tracking import MemoryTracker
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training.loop import RunOptions, setup, train
from conftest import PINNED

# The analysis has tests of its own (test_analysis.py); these runs measure training only.
# The numerics are pinned (conftest.PINNED): these tests' numbers must not depend on the machine.
SMOKE = TrainConfig(epochs=3, batch_size=50, val_size=100, hidden_dim=64, latent_dim=8, lr=3e-3, analysis=False,
                    **PINNED)


def load(cfg):
    return data.load(cfg.dataset, val_size=cfg.val_size, subset=cfg.subset)


@pytest.mark.parametrize("model,arch", [("ae", "mlp"), ("vae", "mlp"), ("vae", "conv")])
def test_loss_falls_and_every_metric_is_tracked(data_root, model, arch):
    cfg = dataclasses.replace(SMOKE, model=model, arch=arch, conv_channels=(8, 16))
    tracker = MemoryTracker()
    result = train(cfg, load(cfg), tracker, options=RunOptions(artifacts=False))
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
    first = train(cfg, load(cfg), MemoryTracker(), options=RunOptions(artifacts=False))
    again = train(cfg, load(cfg), MemoryTracker(), options=RunOptions(artifacts=False))
    other = train(dataclasses.replace(cfg, seed=1), load(cfg), MemoryTracker(), options=RunOptions(artifacts=False))
    assert first.test == again.test
    assert first.test != other.test


def test_bf16_conv_run_is_deterministic(data_root):
    cfg = dataclasses.replace(SMOKE, arch="conv", conv_channels=(8, 16), epochs=1, precision="bf16")
    runs = [train(cfg, load(cfg), MemoryTracker(), options=RunOptions(artifacts=False)).test for _ in range(2)]
    assert runs[0] == runs[1]


CONV = dataclasses.replace(SMOKE, model="vae", arch="conv", conv_channels=(8, 16))
BF16_UNIT_ROUNDOFF = 2.0 ** -8  # 8 significant bits, rounded to nearest
FP32_UNIT_ROUNDOFF = 2.0 ** -24


def layout_bound(unit_roundoff: float, layers: int, longest_sum: int) -> float:
    """How far apart, norm-wise and relative, two evaluations of one network may land when
    they differ only in the order of each sum (what a memory layout changes): a sum of n
    terms in floating point is within gamma_n = n u / (1 - n u) of the exact sum, relative to
    the sum of the terms' magnitudes (Higham, Accuracy and Stability of Numerical Algorithms,
    section 3.1), so two orders are within 2 gamma_n of each other; to first order such
    differences add up over the network's layers. A run in bf16 autocast also rounds each
    layer's output to bf16 (2u apart where the two orders round an element differently).
    These are worst cases: a layout bug (permuted channels, a wrong stride) moves the numbers
    by their own size, far beyond them."""
    n_u = longest_sum * FP32_UNIT_ROUNDOFF
    gamma = n_u / (1 - n_u)
    return 2 * layers * (gamma + (unit_roundoff if unit_roundoff > FP32_UNIT_ROUNDOFF else 0.0))


def loss_and_gradients(cfg: TrainConfig, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and backward pass of `cfg`'s model, built from the config's seed, with
    its numerics (precision, memory format) as a run sets them up."""
    built = setup(resolve(cfg), tuple(x.shape[1:]))
    torch.manual_seed(1)  # the VAE's sampling noise, the same for both layouts
    with built.numerics.autocast():
        parts = built.loss(x)
    parts.total.backward()
    gradients = torch.cat([p.grad.flatten() for p in built.model.parameters()])
    return torch.stack([part.detach().float() for part in parts]), gradients


# Every setting aevae.training.measured may choose, as config values: each must compute the
# reference's step (contiguous, native, eager) up to rounding to be a candidate at all.
SETTINGS = {
    "channels_last": {"memory_format": "channels_last"},
    "fold": {"transposed_conv": "fold"},
    "channels_last+fold": {"memory_format": "channels_last", "transposed_conv": "fold"},
    "compiled": {"compile": "on"},
    "threads": {},  # the reference on another number of torch threads (the pool's layouts)
}


@pytest.mark.parametrize("precision,unit_roundoff", [("fp32", FP32_UNIT_ROUNDOFF), ("bf16", BF16_UNIT_ROUNDOFF)])
@pytest.mark.parametrize("setting", SETTINGS)
def test_every_measured_setting_computes_the_same_step_up_to_rounding(data_root, precision, unit_roundoff, setting):
    """The same weights and images, the reference and one candidate setting (each on
    another number of threads than the reference, as a pool layout may run it): one step's
    loss and gradients agree to the precision's rounding. bf16 autocast runs on any CPU
    (emulated where the CPU lacks bf16 instructions, only slower), so both paths that
    `precision=auto` can take are tested on every machine. Compiled, inductor may fuse a
    layer's operations and skip the bf16 rounding between them: at most the one rounding
    per layer the bound already allows; its random draws are torch's own
    (`fallback_random`), so the VAE's noise is the same."""
    if setting == "compiled" and not shutil.which("c++") and not shutil.which("g++"):
        pytest.skip("torch.compile needs a C++ compiler on CPU")
    x = load(CONV).train.floats(slice(0, 50))
    cfg = dataclasses.replace(CONV, precision=precision)
    parts_a, grads_a = loss_and_gradients(cfg, x)
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        parts_b, grads_b = loss_and_gradients(dataclasses.replace(cfg, **SETTINGS[setting]), x)
    finally:
        torch.set_num_threads(threads)
    # 7 layers (2 convolutions, 2 linear, 2 transposed convolutions, the loss's sums); the
    # longest sum is a weight gradient of the first convolution: 50 images x 14 x 14 places
    bound = layout_bound(unit_roundoff, layers=7, longest_sum=50 * 14 * 14)
    assert ((parts_a - parts_b).abs() / parts_a.abs().clamp_min(1e-12)).max() <= bound
    assert (grads_a - grads_b).norm() / grads_a.norm() <= bound
    assert not torch.equal(grads_a, torch.zeros_like(grads_a))


def test_channels_last_training_ends_nearer_than_another_seed_and_is_recorded(data_root):
    """Two epochs in each layout, fp32. Bound: rounding moves each step's weights by about
    1e-7 of their size, while another seed replaces the initial weights and the batch order;
    over two epochs training has not had time to blow the first difference up to the size of
    the second (on the machine this was written on, the summed relative distance below was 5e-5
    between the layouts and 0.5 between the seeds), so the layouts must end within a quarter of the seeds' distance
    (summed over the test loss, recon MSE and KL, so no chance tie of two seeds on one metric
    can make the bound zero)."""
    cfg = dataclasses.replace(CONV, epochs=2, precision="fp32")
    keys = ("loss", "recon_mse", "kl")
    seen, tags = {}, {}
    for fmt, seed in (("contiguous", 0), ("channels_last", 0), ("contiguous", 1), ("auto", 0)):
        tracker = MemoryTracker()
        seen[fmt, seed] = train(dataclasses.replace(cfg, memory_format=fmt, seed=seed), load(cfg), tracker,
                                options=RunOptions(artifacts=False)).test
        tags[fmt, seed] = tracker.current["tags"]["memory_format"]
        assert tracker.current["tags"]["settings_source"] == ("reference" if fmt == "auto" else "config")

    def distance(a: dict, b: dict) -> float:
        return sum(abs(a[k] - b[k]) / abs(a[k]) for k in keys)

    layouts = distance(seen["contiguous", 0], seen["channels_last", 0])
    seeds = distance(seen["contiguous", 0], seen["contiguous", 1])
    assert layouts <= seeds / 4, (layouts, seeds)
    assert tags["contiguous", 0] == "contiguous" and tags["channels_last", 0] == "channels_last"
    # auto is what this machine measured (or the reference, for a run too short to measure),
    # recorded as what it chose, and the same computation as that fixed choice: exactly
    chosen = tags["auto", 0]
    assert chosen in ("contiguous", "channels_last")
    assert seen["auto", 0] == seen[chosen, 0]
    mlp = MemoryTracker()
    train(dataclasses.replace(SMOKE, epochs=1), load(SMOKE), mlp, options=RunOptions(artifacts=False))
    assert mlp.current["tags"]["memory_format"] == "contiguous"  # an MLP has no image tensor to reorder


def test_diverging_run_fails_with_a_reason(data_root):
    cfg = dataclasses.replace(SMOKE, model="ae", lr=1e30, epochs=3)
    tracker = MemoryTracker()
    with pytest.raises(TrainingFailed, match="diverged; try a lower lr"):
        train(cfg, load(cfg), tracker, options=RunOptions(artifacts=False))
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
        train(SMOKE, load(SMOKE), tracker, on_epoch=hook, options=RunOptions(artifacts=False))
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
    from aevae.data import eval_batches

    cfg = dataclasses.replace(SMOKE, binarize=True, epochs=2)
    splits = load(cfg)
    x, _ = next(eval_batches(splits.val, binarize=True))
    assert set(x.unique().tolist()) == {0.0, 1.0}
    again, _ = next(eval_batches(splits.val, binarize=True))
    assert torch.equal(x, again), "evaluation images are binarized the same way every time"
    result = train(cfg, splits, MemoryTracker(), options=RunOptions(artifacts=False))
    assert result.history[-1]["val/loss"] < result.history[0]["val/loss"]
