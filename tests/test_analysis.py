"""The end-of-run analysis: each number on inputs with a known answer, the reference
classifier's cache, and a tiny real run that logs every metric and figure to MLflow."""

import dataclasses
import math
import os

import mlflow
import numpy as np
import pytest
import torch

from aevae import data
from aevae.analysis import analyse, classifier
from aevae.analysis.codes import Codes, Gaussian, encode, interpolation_codes
from aevae.analysis.likelihood import bits_per_dim, iwae_nll
from aevae.analysis.probe import probe_accuracy
from aevae.analysis.quality import confident_share, feature_stats, frechet_distance
from aevae.config import TrainConfig, validate
from aevae.resolve import resolve
from aevae.errors import ConfigError
from aevae.metrics import evaluate
from aevae.numerics import Numerics
from aevae.models import build
from aevae.tracking import MemoryTracker
from aevae.tracking.mlflow_tracker import MlflowTracker
from aevae.training.loop import RunOptions, train
from conftest import PINNED, REAL_DATA

TINY = TrainConfig(epochs=1, batch_size=50, val_size=100, hidden_dim=32, latent_dim=6, lr=3e-3,
                   tsne_points=100, frechet_samples=100, nll_samples=8, nll_images=40, **PINNED)
ANALYSIS_FIGURES = {"interpolations", "fitted_samples", "latent_dims"}
SAMPLE_METRICS = {"frechet", "frechet_fitted", "frechet_recon", "confident_share", "confident_share_fitted"}


def load(cfg=TINY):
    return data.load(cfg.dataset, val_size=cfg.val_size, subset=cfg.subset)


def tiny_vae(latent_dim=6):
    torch.manual_seed(0)
    return build(resolve(dataclasses.replace(TINY, latent_dim=latent_dim)), (1, 28, 28))


def test_two_dead_latent_dimensions_give_two_fewer_active_units(data_root):
    model = tiny_vae()
    head = model.encoder[-1]  # its first 6 outputs are the code means
    with torch.no_grad():
        head.weight[:6] *= 20  # every mean varies well above the 0.01 threshold
    test = load().test
    active = evaluate(model, test, Numerics(torch.device("cpu")), binarize=False, pixel_tol=0.1)
    with torch.no_grad():
        head.weight[[1, 4]] = 0  # means 1 and 4 become constants: dead units
    dead = evaluate(model, test, Numerics(torch.device("cpu")), binarize=False, pixel_tol=0.1)
    assert active["active_units"] == 6
    assert dead["active_units"] == 4


def test_frechet_distance_of_identical_sets_is_zero_and_of_a_shift_is_its_square():
    features = torch.from_numpy(np.random.default_rng(0).normal(size=(500, 16)))
    mean, cov = feature_stats(features)
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0, abs=1e-8)
    shift = np.arange(16) / 4.0
    shifted_mean, shifted_cov = feature_stats(features + torch.from_numpy(shift))
    assert frechet_distance(mean, cov, shifted_mean, shifted_cov) == pytest.approx(np.square(shift).sum())
    # N(0, I) against N(0, 4 I) in 16 dimensions: 16 * (1 - 2)^2
    assert frechet_distance(np.zeros(16), np.eye(16), np.zeros(16), 4 * np.eye(16)) == pytest.approx(16)


def test_confident_share_counts_rows_whose_top_class_clears_the_threshold():
    sure = torch.full((3, 10), 0.05 / 9).index_fill_(1, torch.tensor([2]), 0.95)
    unsure = torch.full((5, 10), 0.1)
    assert confident_share(torch.cat([sure, unsure])) == pytest.approx(3 / 8)


def test_probe_reads_a_separable_latent_perfectly_and_random_codes_at_chance():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 10, size=2000))
    separable = torch.eye(10)[labels] * 5 + torch.from_numpy(rng.normal(scale=0.1, size=(2000, 10))).float()
    assert probe_accuracy(separable[:1500], labels[:1500], separable[1500:], labels[1500:]) == 1.0
    noise = torch.from_numpy(rng.normal(size=(2000, 10))).float()
    assert probe_accuracy(noise[:1500], labels[:1500], noise[1500:], labels[1500:]) < 0.2


def test_iwae_nll_is_exact_when_the_posterior_is_the_prior_and_the_decoder_ignores_z(data_root):
    model = tiny_vae()
    with torch.no_grad():
        model.encoder[-1].weight.zero_()  # q(z|x) = N(0, I) for every x
        model.encoder[-1].bias.zero_()
        model.decoder[-2].weight.zero_()
        model.decoder[-2].bias.copy_(torch.linspace(-3, 3, 784))  # p(x|z) = p(x), fixed
    test = load().test
    x = test.floats(slice(0, 30))
    exact = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.linspace(-3, 3, 784).reshape(1, 1, 28, 28).expand_as(x), x, reduction="none").flatten(1).sum(1)
    for k in (1, 7):
        estimate = iwae_nll(model, test, samples=k, binarize=False, seed=0, limit=30)
        assert estimate == pytest.approx(exact, rel=1e-5)
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_iwae_bound_tightens_with_more_samples(data_root):
    model = tiny_vae()
    test = load().test
    one = iwae_nll(model, test, samples=1, binarize=True, seed=0, limit=100).mean()
    many = iwae_nll(model, test, samples=64, binarize=True, seed=0, limit=100).mean()
    assert many < one


def test_fitted_gaussian_samples_match_the_codes_and_interpolations_join_the_pairs():
    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.multivariate_normal([1.0, -2.0], [[2.0, 0.6], [0.6, 0.5]], size=4000)).float()
    fitted = Gaussian.fit(codes)
    draws = fitted.sample(20000, seed=0).double()
    assert draws.mean(0) == pytest.approx(codes.double().mean(0), abs=0.05)
    assert torch.cov(draws.T) == pytest.approx(torch.cov(codes.double().T), abs=0.05)
    assert torch.equal(fitted.sample(5, seed=3), fitted.sample(5, seed=3))
    line = interpolation_codes(Codes(codes[:6], None, torch.zeros(6)), pairs=3, steps=5).reshape(3, 5, 2)
    assert torch.allclose(line[:, 0], codes[0:6:2]) and torch.allclose(line[:, -1], codes[1:6:2])


def test_reference_classifier_is_trained_once_then_read_from_the_cache(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path / "cache"))
    splits = load()
    first = classifier.reference(splits, epochs=1)
    (path,) = (tmp_path / "cache" / "reference").iterdir()
    written = path.stat().st_mtime_ns
    again = classifier.reference(splits, epochs=1)
    assert (first.from_cache, again.from_cache) == (False, True)
    assert path.stat().st_mtime_ns == written
    images = splits.test.floats(slice(0, 50))
    assert all(torch.equal(a, b) for a, b in zip(first.score(images), again.score(images)))
    assert again.test_accuracy == first.test_accuracy > 0.5  # the fixture's classes are easy
    other = classifier.reference(load(dataclasses.replace(TINY, subset=300)), epochs=1)
    assert other.key != first.key and not other.from_cache


def test_reference_classifier_training_is_deterministic(data_root, tmp_path, monkeypatch):
    splits = load()
    weights = []
    for folder in ("a", "b"):
        monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path / folder))
        weights.append(classifier.reference(splits, epochs=1).net.state_dict())
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


@pytest.mark.parametrize("model,latent_dim", [("vae", 6), ("ae", 2)])
def test_run_logs_every_analysis_metric_and_figure_to_mlflow(data_root, tracking_uri, model, latent_dim):
    cfg = dataclasses.replace(TINY, model=model, latent_dim=latent_dim)
    result = train(cfg, load(cfg), MlflowTracker(tracking_uri, "analysis"))
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    expected = {"probe_acc", *SAMPLE_METRICS} | ({"nll", "bpd"} if model == "vae" else set())
    assert expected <= set(result.test)
    for name in expected:
        assert run.data.metrics[f"test/{name}"] == pytest.approx(result.test[name])
    assert 0 <= run.data.metrics["test/probe_acc"] <= 1
    assert run.data.metrics["analysis_seconds"] > 0 and 0 < run.data.metrics["reference_acc"] <= 1
    assert run.data.tags["reference_classifier"].startswith(f"{classifier.VERSION}/mnist-")
    assert ("nll_comparable" in run.data.tags) == (model == "vae")
    figures = {a.path.removeprefix("figures/").removesuffix(".png")
               for a in client.list_artifacts(result.run_id, "figures")}
    two_d = {"manifold"} if latent_dim == 2 else {"latent_tsne"}
    assert ANALYSIS_FIGURES | two_d <= figures
    assert not ({"manifold", "latent_tsne"} - two_d) & figures
    dims = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/latent_dims.json")
    assert len(dims["variance"]) == latent_dim
    assert (dims["kl_per_dim"] is None) == (model == "ae")


def test_each_part_switches_off_and_draws_are_seeded(data_root):
    cfg = dataclasses.replace(TINY, analysis_figures=False, tsne_points=0, probe=False, nll_samples=0)
    runs = [MemoryTracker(), MemoryTracker()]
    results = [train(cfg, load(), tracker) for tracker in runs]
    assert set(results[0].test) - set(train(dataclasses.replace(cfg, analysis=False), load(),
                                            MemoryTracker()).test) == SAMPLE_METRICS
    assert results[0].test == results[1].test
    artifacts = set(runs[0].current["artifacts"])
    assert not {f"figures/{name}.png" for name in ANALYSIS_FIGURES | {"latent_tsne"}} & artifacts


def test_a_run_without_artifacts_measures_the_same_numbers_and_logs_no_file(data_root):
    # --no-artifacts must not make `analysis=True` a false param: only the files go.
    full, bare = MemoryTracker(), MemoryTracker()
    with_files = train(TINY, load(), full)
    without = train(TINY, load(), bare, options=RunOptions(artifacts=False))
    assert {"probe_acc", "nll", *SAMPLE_METRICS} <= set(without.test)
    assert without.test == with_files.test
    assert set(bare.current["artifacts"]) == {"config.json"}
    assert bare.current["params"]["analysis"] is True and "analysis_seconds" in bare.current["metrics"]
    assert {"model", "latent_dims.json", "figures/latent.png"} <= set(full.current["artifacts"])


def test_the_test_split_is_encoded_once_for_the_figures_and_the_analysis_both(data_root, monkeypatch):
    import aevae.training.loop

    splits = load()
    whole_test = splits.test.floats(slice(None))
    passes = []

    def build_counting(cfg, shape):
        model = build(cfg, shape)
        model.encoder.register_forward_pre_hook(
            lambda module, inputs: passes.append(torch.equal(inputs[0], whole_test)))
        return model

    def test_split_passes(cfg, log_artifacts: bool) -> int:
        passes.clear()
        train(cfg, splits, MemoryTracker(), options=RunOptions(artifacts=log_artifacts))
        return sum(passes)

    monkeypatch.setattr(aevae.training.loop, "build", build_counting)
    metrics_only = test_split_passes(dataclasses.replace(TINY, analysis=False), log_artifacts=False)
    assert test_split_passes(TINY, log_artifacts=True) == metrics_only + 1


@pytest.mark.parametrize("field,value,message", [
    ("tsne_points", 5, "tsne_points must be 0 (off) or at least 10."),
    ("frechet_samples", 1, "frechet_samples must be 0 (off) or at least 2."),
    ("nll_samples", -1, "nll_samples must be 0 (off) or a positive count."),
    ("nll_images", 0, "nll_images must be at least 1."),
])
def test_analysis_fields_are_validated(field, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(dataclasses.replace(TrainConfig(), **{field: value}))


def test_conv_vae_on_cifar10_gets_every_analysis_but_the_likelihood_of_its_squared_error_decoder(data_root):
    cfg = dataclasses.replace(TINY, dataset="cifar10", arch="conv", conv_channels=(8, 16), latent_dim=None)
    tracker = MemoryTracker()
    result = train(cfg, data.load("cifar10", val_size=40), tracker)
    assert result.config.recon_loss == "mse"
    assert {"probe_acc", *SAMPLE_METRICS} <= set(result.test) and "nll" not in result.test
    assert "figures/latent_tsne.png" in tracker.current["artifacts"]


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA or not os.path.isdir(os.path.join(REAL_DATA or "", "MNIST")),
                    reason="AEVAE_DATA_DIR does not point at the real MNIST files")
def test_ae_and_vae_on_real_mnist_log_every_analysis_metric_and_figure(tracking_uri):
    splits = data.load("mnist", REAL_DATA)
    client = mlflow.MlflowClient(tracking_uri)
    for model in ("ae", "vae"):
        result = train(TrainConfig(model=model, epochs=1, **PINNED), splits, MlflowTracker(tracking_uri, "real"))
        run = client.get_run(result.run_id)
        expected = {"probe_acc", *SAMPLE_METRICS} | ({"nll", "bpd"} if model == "vae" else set())
        assert {f"test/{name}" for name in expected} <= set(run.data.metrics)
        assert run.data.metrics["reference_acc"] > 0.97  # the reference CNN on real MNIST
        assert run.data.metrics["test/probe_acc"] > 0.8
        # N(0, I) is far from where the AE's codes live: its prior samples score worse than
        # samples from the Gaussian fitted to its codes.
        if model == "ae":
            assert run.data.metrics["test/frechet"] > run.data.metrics["test/frechet_fitted"]
        figures = {a.path for a in client.list_artifacts(result.run_id, "figures")}
        assert {f"figures/{name}.png" for name in ANALYSIS_FIGURES | {"latent_tsne"}} <= figures


def test_codes_that_all_coincide_get_no_tsne_map_instead_of_a_crash(data_root):
    """scikit-learn's t-SNE kills the process (a segmentation fault, no exception) on points
    that all coincide, which a collapsed or discrete code gives: the map is left out."""
    model = tiny_vae()
    with torch.no_grad():
        model.encoder[-1].weight.zero_()  # every image's code is the bias: one point
    cfg = dataclasses.replace(TINY, analysis_figures=False, probe=False, frechet_samples=0, nll_samples=0)
    tracker = MemoryTracker()
    with tracker.run("collapsed", {}, {}):
        splits = load()
        codes = encode(model, splits.test, False, Numerics(torch.device("cpu")))
        analyse(model, splits, codes, resolve(cfg), tracker, Numerics(torch.device("cpu")))
    assert "figures/latent_tsne.png" not in tracker.current["artifacts"]
