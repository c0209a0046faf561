"""The end-of-run analysis: the evidence for what the KL term does to the latent space.

`analyse` runs inside a finished run, after its test metrics, and logs:

- figures: `latent_tsne.png` (t-SNE of test codes, latents wider than 2),
  `manifold.png` (decoded grid, 2-d latents), `interpolations.png`, `fitted_samples.png`
  (decoded draws from a Gaussian fitted to training codes; `prior_samples.png` from the
  run's artifacts shows N(0, I)), `latent_dims.png` and `latent_dims.json` (per dimension:
  variance of the code mean, and the KL for the VAE);
- `test/probe_acc`: linear-probe accuracy on [0, 1] (see probe.py);
- `test/frechet`, `test/confident_share`: samples from N(0, I); `test/frechet_fitted`,
  `test/confident_share_fitted`: samples from the fitted Gaussian; `test/frechet_recon`:
  reconstructions of test images (see quality.py and classifier.py), with `reference_acc`,
  the reference classifier's test accuracy, and its cache key as tag `reference_classifier`;
- `test/nll` (nats per image) and `test/bpd` (bits per pixel channel), VAE with a Bernoulli
  decoder only, with tag `nll_comparable` (see likelihood.py);
- `analysis_seconds`, and `analysis_seconds/<part>` for each part that ran (the test codes
  are encoded once at the end of the run, for the run's figures and the analysis, and are
  not counted here).

Each part has a config switch (`analysis`, `analysis_figures`, `tsne_points`, `probe`,
`frechet_samples`, `nll_samples`); every draw is seeded by the run's seed.
"""

from __future__ import annotations

import time

import torch

from aevae.analysis import classifier, figures
from aevae.analysis.codes import Codes, Gaussian, decode, encode, interpolation_codes, prior_codes
from aevae.analysis.likelihood import bits_per_dim, iwae_nll
from aevae.analysis.probe import probe_accuracy
from aevae.analysis.quality import confident_share, feature_stats, frechet_distance
from aevae.config import TrainConfig
from aevae.data import Splits
from aevae.models.protocol import kl_per_dim
from aevae.numerics import Numerics
from aevae.plotting import grid_figure, log_figure
from aevae.stopwatch import Stopwatch
from aevae.tracking import names

TRAIN_CODES = 10_000  # training images whose codes fit the probe and the fitted Gaussian
INTERPOLATION_PAIRS, INTERPOLATION_STEPS = 8, 10
FIGURE_SAMPLES = 64
MIN_TSNE_POINTS = 10  # fewer distinct codes (smoke subsets, collapsed codes) leave t-SNE no neighbours to keep


def analyse(model, splits: Splits, test: Codes, cfg: TrainConfig, tracker, numerics: Numerics,
            log_figures: bool = True) -> dict[str, float]:
    """Run the parts `cfg` switches on and log them to `tracker`'s current run; return the
    new test metrics without their `test/` prefix (cfg must be resolved). `test` holds the
    codes of the whole test split, which the run's own figures share. Without
    `log_figures` (`--no-artifacts`) every metric is still measured and no file is logged."""
    if not cfg.analysis:
        return {}
    started, timer = time.perf_counter(), Stopwatch()
    with timer.part("codes"):
        train_codes = encode(model, splits.train, cfg.binarize, numerics, limit=TRAIN_CODES)
        fitted = Gaussian.fit(train_codes.means)
    metrics: dict[str, float] = {}
    if cfg.analysis_figures and log_figures:
        with timer.part("figures"):
            _latent_figures(model, test, fitted, cfg, tracker, numerics)
    points = min(cfg.tsne_points, len(test))
    # scikit-learn's t-SNE crashes the process on codes that all coincide (a collapsed code,
    # a discrete code with few values in use): it needs points to tell apart
    distinct = len(torch.unique(test.means[:points], dim=0)) if points else 0
    if log_figures and distinct >= MIN_TSNE_POINTS and test.means.shape[1] > 2:
        with timer.part("tsne"):
            log_figure(tracker, "figures/latent_tsne.png", figures.tsne_figure(
                test.means[:points], test.labels[:points], splits.spec.classes, cfg.seed))
    if cfg.probe:
        with timer.part("probe"):
            accuracy = probe_accuracy(train_codes.means, train_codes.labels, test.means, test.labels)
            metrics.update({} if accuracy is None else {names.PROBE_ACC: accuracy})
    if cfg.frechet_samples:
        with timer.part("sample_quality"):
            metrics.update(_sample_quality(model, splits, test, fitted, cfg, tracker, numerics))
    if cfg.nll_samples and test.logvars is not None and cfg.recon_loss == "bce":
        with timer.part("nll"):
            nll = iwae_nll(model, splits.test, samples=cfg.nll_samples, binarize=cfg.binarize,
                           seed=cfg.seed, limit=cfg.nll_images).mean().item()
            metrics.update({names.NLL: nll, names.BPD: bits_per_dim(nll, splits.test.images[0].numel())})
            tracker.set_tags({"nll_comparable": str(cfg.binarize).lower()})
    tracker.log_metrics({
        **{names.TEST_PREFIX + name: value for name, value in metrics.items()},
        **{f"{names.ANALYSIS_SECONDS}/{name}": value for name, value in timer.seconds.items()},
        names.ANALYSIS_SECONDS: time.perf_counter() - started,
    })
    return metrics


def _latent_figures(model, test: Codes, fitted: Gaussian, cfg: TrainConfig, tracker, numerics: Numerics) -> None:
    """Interpolations, fitted-Gaussian samples, per-dimension bars and, for 2-d latents, the
    manifold, drawn from the prior for the VAE and from the fitted Gaussian for the AE."""
    dim = test.means.shape[1]
    line = interpolation_codes(test, INTERPOLATION_PAIRS, INTERPOLATION_STEPS)
    log_figure(tracker, "figures/interpolations.png", figures.interpolation_figure(
        decode(model, line, numerics), INTERPOLATION_STEPS))
    samples = decode(model, fitted.sample(FIGURE_SAMPLES, cfg.seed), numerics)
    log_figure(tracker, "figures/fitted_samples.png", grid_figure(
        samples, 8, "decoded samples from a Gaussian fitted to training codes"))
    variance = test.means.double().var(0, correction=0).numpy()
    kl = None if test.logvars is None else kl_per_dim(test.means, test.logvars).double().mean(0).numpy()
    log_figure(tracker, "figures/latent_dims.png", figures.latent_dims_figure(variance, kl))
    tracker.log_dict({"variance": variance.tolist(), "kl_per_dim": None if kl is None else kl.tolist()},
                     "latent_dims.json")
    if dim == 2:
        source = fitted if test.logvars is None else Gaussian.standard(dim)
        log_figure(tracker, "figures/manifold.png", figures.manifold_figure(model, source, numerics))


def _sample_quality(model, splits: Splits, test: Codes, fitted: Gaussian, cfg: TrainConfig,
                    tracker, numerics: Numerics) -> dict[str, float]:
    """Frechet distances and confident shares of prior samples, fitted-Gaussian samples and
    test reconstructions, against the reference classifier's test statistics."""
    ref = classifier.reference(splits)
    tracker.set_tags({"reference_classifier": f"{classifier.VERSION}/{splits.spec.name}-{ref.key}"})
    tracker.log_metrics({"reference_acc": ref.test_accuracy})
    # As many samples as reference images at most: the distance's bias depends on both counts.
    count, dim = min(cfg.frechet_samples, len(splits.test)), test.means.shape[1]
    image_sets = {
        "": decode(model, prior_codes(count, dim, cfg.seed), numerics),
        "_fitted": decode(model, fitted.sample(count, cfg.seed), numerics),
        "_recon": decode(model, test.means[:count], numerics),
    }
    reference_stats = (ref.test_mean.numpy(), ref.test_covariance.numpy())
    metrics = {}
    for suffix, images in image_sets.items():
        features, probs = ref.score(images)
        metrics[names.FRECHET + suffix] = frechet_distance(*feature_stats(features), *reference_stats)
        if suffix != "_recon":
            metrics[names.CONFIDENT_SHARE + suffix] = confident_share(probs)
    return metrics
