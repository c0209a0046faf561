"""RESULTS.md over a grid with plug-in models, archs and datasets, on real MLflow stores: cells
named and ordered by the runs' own titles, metrics that do not apply shown as n/a with their
reason, and the AE read against every other model."""

from __future__ import annotations

import pandas as pd
import pytest
from report_store import Store, discrete_metrics, finished_metrics, identity
from test_report import row_of, table

from aevae.report import build_report
from aevae.report.runs import load_grid_runs
from aevae.tracking.reader import StoreReader

DISCRETE = "the VQ-VAE's code is discrete, not a Gaussian posterior."
NO_BOUND = "no importance-weighted bound is implemented for this model"
IWAE = identity("IWAE", "gaussian")
VQVAE = identity("VQ-VAE", "discrete", {"test/kl": DISCRETE, "test/elbo": DISCRETE, "test/nll": NO_BOUND})
DIGITS = {"arch_title": "residual conv", "dataset_title": "8x8 digits"}


@pytest.fixture
def plugins(tracking_uri) -> Store:
    """Two seeds of each cell: the built-in AE and VAE on MNIST (runs of an older version,
    without title tags), an IWAE (seed 1 lacks its ELBO) and a VQ-VAE beside them, and the
    AE and the IWAE on a plug-in dataset and arch."""
    store = Store(tracking_uri)
    cells = {
        "ae/mlp/mnist": [(finished_metrics(0.0105), {}), (finished_metrics(0.0115), {})],
        "vae/mlp/mnist": [(finished_metrics(0.060, 20, True), {}), (finished_metrics(0.062, 22, True), {})],
        "iwae/mlp/mnist": [(finished_metrics(0.00960, 30, True), IWAE),
                           ({k: v for k, v in finished_metrics(0.00976, 30, True).items() if k != "elbo"}, IWAE)],
        "vqvae/mlp/mnist": [(discrete_metrics(0.02), VQVAE)] * 2,
        "ae/resnet/digits": [(finished_metrics(0.03), identity(**DIGITS))] * 2,
        "iwae/resnet/digits": [(finished_metrics(0.024, 5, True), identity("IWAE", "gaussian", **DIGITS))] * 2,
    }
    store.expect([(cell, seed, "h") for cell in cells for seed in (0, 1)])
    for cell, runs in cells.items():
        for seed, (test, tags) in enumerate(runs):
            store.run(cell, seed, test=test, tags=tags, logged={"train_seconds": 10}, figures=seed == 0)
    return store


def test_cells_are_named_by_their_titles_and_ordered_builtins_first(plugins, tmp_path):
    text = build_report("lab", tmp_path / "out").path.read_text()
    compact = table(text, "## Results")
    assert [(r["model"], r["arch"], r["dataset"]) for r in compact] == [
        ("AE", "MLP", "MNIST"), ("VAE", "MLP", "MNIST"), ("IWAE", "MLP", "MNIST"), ("VQ-VAE", "MLP", "MNIST"),
        ("AE", "residual conv", "8x8 digits"), ("IWAE", "residual conv", "8x8 digits")]
    assert [(r["model"], r["dataset"]) for r in table(text, "## Every metric")] == [
        (r["model"], r["dataset"]) for r in compact]
    for name in ("panels-mnist-mlp.png", "panels-digits-resnet.png", "metrics-digits.png"):
        assert f"]({name})" in text and (tmp_path / "out" / name).stat().st_size > 1000


def test_a_metric_that_does_not_apply_is_na_with_its_reason_never_missing(plugins, tmp_path):
    report = build_report("lab", tmp_path / "out")
    text = report.path.read_text()
    compact = table(text, "## Results")
    assert list(compact[0])[3:] == ["recon MSE", "recon acc (%)", "KL (nats)", "ELBO (nats)", "seeds"]
    vq = row_of(compact, model="VQ-VAE")
    assert (vq["recon MSE"], vq["KL (nats)"], vq["ELBO (nats)"], vq["seeds"]) == ("0.02000", "n/a", "n/a", "2/2")
    assert row_of(compact, model="IWAE", arch="MLP")["ELBO (nats)"] == "-80 (n=1)"  # missing, not n/a
    note = ("- KL (nats) and ELBO (nats) are n/a for vqvae/mlp/mnist: the VQ-VAE's code is discrete, "
            "not a Gaussian posterior.\n")
    assert text.split("## Results", 1)[1].split("\n\n")[2] == note.rstrip("\n")
    assert text.split("## Every metric", 1)[1].split("\n\n")[2] == note.rstrip("\n")
    full = row_of(table(text, "## Every metric"), model="VQ-VAE")
    assert (full["KL (nats)"], full["ELBO (nats)"], full["recon BCE (nats)"]) == ("n/a", "n/a", "50")

    # a VQ-VAE lacks no metric; an IWAE (a Gaussian code) without its ELBO does
    gaps = table(text, "### Finished runs with missing metrics")
    assert [(g["cell"], g["seed"], g["missing"]) for g in gaps] == [("iwae/mlp/mnist", "1", "test/elbo")]

    csv = pd.read_csv(report.path.parent / "results.csv").set_index("cell")
    assert csv.loc["vqvae/mlp/mnist", ["test/kl mean", "test/kl std", "test/kl n"]].isna().all()
    assert csv.loc["ae/mlp/mnist", "test/kl n"] == 2 and csv.loc["iwae/mlp/mnist", "test/kl mean"] == 30
    assert csv.loc["vqvae/mlp/mnist", "test/recon_mse mean"] == pytest.approx(0.02)


def test_the_ae_is_read_against_every_other_model_by_its_title(plugins, tmp_path):
    text = build_report("lab", tmp_path / "out").path.read_text()
    section = text.split("## What the KL term does: AE vs VAE, IWAE, VQ-VAE\n\n", 1)[1].split("\n## ", 1)[0]
    assert section.startswith("Each VAE, IWAE and VQ-VAE cell beside the AE of the same dataset and arch")
    # AE: 0.0105, 0.0115 (sd 0.00071); IWAE: 0.0096, 0.00976 (sd 0.00011), 12% lower and
    # apart by more than the two spreads; the VQ-VAE has no KL to pay
    assert [line for line in section.splitlines() if line.startswith("- ")] == [
        "- **MNIST/MLP**: The VAE's recon MSE is 5.5x the AE's (0.06100 vs 0.01100). It pays 21 nats of KL per "
        "image. It keeps 4 latent units active (AE: 4).",
        "- **MNIST/MLP**: The IWAE's recon MSE is 12% lower than the AE's (0.009680 vs 0.01100). It pays 30 nats "
        "of KL per image. It keeps 4 latent units active (AE: 4).",
        "- **MNIST/MLP**: The VQ-VAE's recon MSE is 1.8x the AE's (0.02000 vs 0.01100). It keeps 4 latent units "
        "active (AE: 4).",
        "- **8x8 digits/residual conv**: The IWAE's recon MSE is 20% lower than the AE's (0.02400 vs 0.03000). "
        "It pays 5 nats of KL per image. It keeps 4 latent units active (AE: 4)."]


def test_titles_fall_back_to_the_registry_then_to_the_name(tracking_uri):
    store = Store(tracking_uri)
    store.run("flow/mlp/mnist", 0, test=finished_metrics(0.01))  # a plug-in's run from before the tags
    store.run("vae/mlp/mnist", 0, test=finished_metrics(0.01, 5, True))
    store.run("iwae/conv/blobs", 0, test=finished_metrics(0.01, 5, True), tags=identity("IWAE", "gaussian"))
    titles = load_grid_runs(StoreReader(tracking_uri), "lab").titles
    assert [titles.model(m) for m in ("flow", "vae", "iwae", "ae")] == ["flow", "VAE", "IWAE", "AE"]
    assert [titles.code(m) for m in ("flow", "vae", "iwae", "ae")] == ["", "gaussian", "gaussian", "point"]
    assert (titles.dataset("mnist"), titles.dataset("blobs"), titles.arch("conv")) == ("MNIST", "blobs", "conv")


def test_the_likelihood_column_is_not_lost_to_a_model_it_does_not_apply_to(tracking_uri, tmp_path):
    """The NLL column stays when a model has no NLL at all (an n/a, not a missing value), and
    the ELBO column shows a discrete model's n/a."""
    hvae = identity("HVAE", "gaussian", {"test/nll": NO_BOUND})
    binarized = {"binarize": True, "nll_samples": 5000}
    for experiment, nll in (("bench/lab", True), ("bench/elbo", False)):
        store = Store(tracking_uri, experiment)
        for seed in (0, 1):
            vae = {**finished_metrics(0.03, 25, True), **({"nll": 89.0 + 2 * seed} if nll else {})}
            store.run("vae/mlp/mnist", seed, test=vae, params=binarized)
            store.run("hvae/mlp/mnist", seed, test=finished_metrics(0.03, 25, True), tags=hvae, params=binarized)
            store.run("vqvae/mlp/mnist", seed, test=discrete_metrics(0.02), tags=VQVAE, params=binarized)

    text = build_report("lab", tmp_path / "nll").path.read_text()
    compact = table(text, "## Results")
    assert [(r["model"], r["NLL (nats, k=5000)"]) for r in compact] == [
        ("VAE", "90.0 ± 1.4"), ("HVAE", "n/a"), ("VQ-VAE", "n/a")]
    assert text.split("## Results", 1)[1].split("\n\n")[2] == (
        "- NLL (nats, k=5000) is n/a for hvae/mlp/mnist, vqvae/mlp/mnist: no importance-weighted bound is "
        "implemented for this model.\n"
        "- KL (nats) is n/a for vqvae/mlp/mnist: the VQ-VAE's code is discrete, not a Gaussian posterior.")

    compact = table(build_report("elbo", tmp_path / "elbo").path.read_text(), "## Results")
    assert [(r["model"], r["ELBO (nats)"]) for r in compact] == [("VAE", "-75"), ("HVAE", "-75"), ("VQ-VAE", "n/a")]
