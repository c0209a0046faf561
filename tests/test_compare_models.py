"""`aevae compare GRID[@LABEL] --models A,B` over a real MLflow store: two models of one version,
cell by cell, with the tests, verdicts, gate and what the seeds could detect that two versions
get; metrics that do not apply to a model listed with their reason; bad input in one line."""

from __future__ import annotations

import pytest
from report_store import Store, discrete_metrics, identity
from scipy import stats
from test_compare import ae, detectable, seeds_for, vae
from test_report import row_of, table

from aevae.cli import main

OLD, NEW = 1_700_000_000_000, 1_700_000_900_000  # start times: version v0, then v1
DISCRETE = "the VQ-VAE's code is discrete, not a Gaussian posterior."
NO_BOUND = "no importance-weighted bound is implemented for this model"
IWAE = identity("IWAE", "gaussian")
VQVAE = identity("VQ-VAE", "discrete", {"test/kl": DISCRETE, "test/elbo": DISCRETE, "test/nll": NO_BOUND})


def seeds(store: Store, cell: str, label: str, rows: list[dict], start: int, tags: dict | None = None) -> None:
    for seed, test in enumerate(rows):
        store.run(cell, seed, test=test, tags={"version_label": label, **(tags or {})}, start=start + seed)


@pytest.fixture
def store(tracking_uri) -> Store:
    """bench/lab, version v1 (the newest):
    - mlp/mnist: the IWAE's MSE is 0.010 below the VAE's with a 0.001 spread (better), its
      ELBO 5 nats higher (better); the AE and a VQ-VAE beside them;
    - conv/mnist: VAE and IWAE within noise of each other;
    - mlp/cifar10: the VAE only.
    Version v0 holds an IWAE far off, which --models on v1 must not read."""
    seeds(store_ := Store(tracking_uri), "iwae/mlp/mnist", "v0", [vae(0.5, 1, -500), vae(0.6, 1, -600)], OLD, IWAE)
    seeds(store_, "ae/mlp/mnist", "v1", [ae(0.010), ae(0.011), ae(0.012)], NEW)
    seeds(store_, "vae/mlp/mnist", "v1", [vae(0.060, 20, -90), vae(0.061, 22, -91), vae(0.062, 24, -92)], NEW)
    seeds(store_, "iwae/mlp/mnist", "v1", [vae(0.050, 28, -85), vae(0.051, 29, -86), vae(0.052, 30, -87)], NEW, IWAE)
    seeds(store_, "vqvae/mlp/mnist", "v1", [discrete_metrics(0.03)] * 3, NEW, VQVAE)
    seeds(store_, "vae/conv/mnist", "v1", [vae(0.040, 20, -80), vae(0.042, 21, -81), vae(0.041, 22, -82)], NEW)
    seeds(store_, "iwae/conv/mnist", "v1", [vae(0.041, 20, -80), vae(0.040, 21, -81), vae(0.043, 22, -82)], NEW,
          IWAE)
    seeds(store_, "vae/mlp/cifar10", "v1", [vae(0.03, 30, -700), vae(0.031, 31, -701)], NEW)
    return store_


def test_two_models_of_one_version_are_compared_cell_by_cell(store, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "lab@v1", "--models", "vae,iwae", "--out", str(out)]) == 0
    text = (out / "COMPARE.md").read_text()
    assert capsys.readouterr().out.startswith(text)
    assert text.startswith("# Compare: `lab@v1: vae` → `lab@v1: iwae`\n\n"
                           "- **A**: experiment `bench/lab`, version `v1`, model `vae`: 8 of 8 runs finished in 3 "
                           "cells; git commit `abc123d`\n"
                           "- **B**: experiment `bench/lab`, version `v1`, model `iwae`: 6 of 6 runs finished in 2 "
                           "cells; git commit `abc123d`\n\n"
                           "B against A in every cell (arch, dataset and other axes) both models finished")

    rows = table(text, "## Changes per cell")
    assert [(r["cell"], r["metric"], r["verdict"].strip("*")) for r in rows if r["metric"] != "pixel acc (%)"] == [
        ("mlp/mnist", "recon MSE", "better"), ("mlp/mnist", "ELBO (nats)", "better"),
        ("mlp/mnist", "KL (nats)", "higher"),
        ("conv/mnist", "recon MSE", "within noise"), ("conv/mnist", "ELBO (nats)", "within noise"),
        ("conv/mnist", "KL (nats)", "within noise")]
    a, b = (0.060, 0.061, 0.062), (0.050, 0.051, 0.052)
    p = stats.ttest_ind(b, a, equal_var=False).pvalue
    assert row_of(rows, cell="mlp/mnist", metric="recon MSE") == {
        "cell": "mlp/mnist", "metric": "recon MSE", "A": "0.0610 ± 0.0010 (n=3)", "B": "0.0510 ± 0.0010 (n=3)",
        "change": "-0.0100", "change %": "-16.4%", "p": f"{p:.1e}",  # below 0.001
        "verdict": "**better**", "detectable": f"{100 * detectable(a, b):.1f}%",  # between 1% and 10%
        "seeds for 1%": str(seeds_for(0.01, a, b))}

    assert "- `model`: vae → iwae (mlp/mnist, conv/mnist)\n" in text
    assert "## Cells in one model only\n\n- Only in A (lab@v1: vae), no finished run in B: mlp/cifar10\n" in text
    assert (out / "changes.png").stat().st_size > 5000


def test_the_median_of_what_the_seeds_detect_is_said_under_the_table(store, tmp_path, capsys):
    args = ["compare", "--models", "vae,iwae", "--metrics", "test/recon_mse", "--effect", "5", "--out", str(tmp_path)]
    assert main(args) == 0  # the newest version, v1
    text = capsys.readouterr().out
    mlp = ((0.060, 0.061, 0.062), (0.050, 0.051, 0.052))
    conv = ((0.040, 0.042, 0.041), (0.041, 0.040, 0.043))
    median = (detectable(*mlp) + detectable(*conv)) / 2
    seeds = max(seeds_for(0.05, *mlp), seeds_for(0.05, *conv))  # the higher middle of two
    assert [r["seeds for 5%"] for r in table(text, "## Changes per cell")] == [
        str(seeds_for(0.05, *mlp)), str(seeds_for(0.05, *conv))]
    assert (f"**What these seeds can detect**: with the seeds at hand (3 per side), the median of the 2 tested "
            f"cell metrics would have to change by {100 * median:.1f}% of A's mean for Welch's test to call it at "
            f"alpha 0.05, and finding a 5% change with 80% power would take a median of {seeds} seeds per "
            f"side.\n") in text


def test_a_metric_that_does_not_apply_to_one_model_is_listed_with_its_reason(store, tmp_path, capsys):
    assert main(["compare", "lab@v1", "--models", "vae,vqvae", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert [(r["cell"], r["metric"]) for r in table(text, "## Changes per cell")] == [
        ("mlp/mnist", "recon MSE"), ("mlp/mnist", "pixel acc (%)")]
    assert ("## Metrics that do not apply\n\n"
            "- ELBO (nats) and KL (nats) of mlp/mnist: n/a in B (lab@v1: vqvae), not compared: the VQ-VAE's code "
            "is discrete, not a Gaussian posterior.\n"
            "- NLL (nats) of mlp/mnist: n/a in B (lab@v1: vqvae), not compared: no importance-weighted bound is "
            "implemented for this model.\n") in text


def test_the_gate_judges_two_models_as_it_judges_two_versions(store, tmp_path, capsys):
    args = ["compare", "lab@v1", "--models", "iwae,vae", "--out", str(tmp_path), "--fail-on-regression"]
    assert main(args) == 1
    assert "worse beyond noise: mlp/mnist recon MSE: 0.0510 ± 0.0010 (n=3) → 0.0610 ± 0.0010 (n=3)" in \
        capsys.readouterr().out
    assert main([*args, "--min-effect", "20"]) == 0  # 19.6% worse: below a 20% minimum effect


@pytest.mark.parametrize("args,message", [
    (["lab@v1", "--models", "vae"], "--models takes two different model names, e.g. --models vae,iwae (got 'vae')."),
    (["lab@v1", "--models", "vae,vae"], "--models takes two different model names"),
    (["lab@v1", "--models", "vae,iwae,ae"], "--models takes two different model names"),
    (["lab@v1", "--models", "vae,flow"],
     "lab@v1 has no finished run of model 'flow'; models with finished runs there: ae, vae, iwae, vqvae."),
    (["lab@v0", "--models", "vae,iwae"],
     "lab@v0 has no finished run of model 'vae'; models with finished runs there: iwae."),
    (["lab@v0", "lab@v1", "--models", "vae,iwae"],
     "--models compares two models of one version, so it takes one side (aevae compare GRID[@LABEL] "
     "--models vae,iwae), not a second one ('lab@v1')."),
    (["lab@v1", "--models", "vae,iwae", "--effect", "0"], "--effect must be a positive percentage, e.g. 1 for 1%."),
])
def test_bad_input_is_one_sentence_and_exit_status_2(store, tmp_path, capsys, args, message):
    assert main(["compare", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aevae compare: error: ") and message in err
