"""`aevae compare` over small real MLflow stores whose numbers are known: an improvement, a
regression, a difference inside the noise, a cell on one side only, one seed only, and the
CI gate's exit status."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from report_store import Store, finished_metrics
from scipy import stats as scipy_stats

import aevae
from aevae.cli import main
from aevae.compare.stats import holm, welch
from test_report import row_of, table

BEFORE, AFTER = 1_700_000_000_000, 1_700_000_900_000  # start times: version A, then B


def seeds(store: Store, cell: str, label: str, rows: list[dict], start: int, **extra) -> None:
    """One finished run per seed of `cell` in version `label`, with the given test metrics."""
    for seed, test in enumerate(rows):
        store.run(cell, seed, test=test, tags={"version_label": label}, start=start + seed, **extra)


def ae(mse: float, pixel_acc: float = 0.9) -> dict:
    return {**finished_metrics(mse), "pixel_acc": pixel_acc}


def vae(mse: float, kl: float, elbo: float) -> dict:
    return {**finished_metrics(mse, kl, True), "elbo": elbo}


@pytest.fixture
def store(tracking_uri) -> Store:
    return two_versions(Store(tracking_uri))


def two_versions(store: Store) -> Store:
    """bench/lab in versions `before` and `after`:
    - ae/mlp/mnist: MSE halves (better); pixel accuracy the same in every seed (within noise);
    - vae/mlp/mnist: MSE up by 0.01 with a 0.001 spread (worse), ELBO up 5 nats (better), KL
      unchanged; `after` ran it with latent_dim 2 instead of 20;
    - ae/conv/mnist: MSE moves by less than its spread (within noise), pixel accuracy drops
      ten points (worse: higher is better);
    - vae/conv/mnist: one seed in `after` (no test possible);
    - ae/mlp/cifar10 finished in `before` only, vae/mlp/cifar10 in `after` only."""
    seeds(store, "ae/mlp/mnist", "before", [ae(0.010), ae(0.011), ae(0.012)], BEFORE)
    seeds(store, "ae/mlp/mnist", "after", [ae(0.0050), ae(0.0055), ae(0.0060)], AFTER)
    seeds(store, "vae/mlp/mnist", "before", [vae(0.060, 20, -90), vae(0.061, 22, -91), vae(0.062, 24, -92)],
          BEFORE, params={"latent_dim": 20})
    seeds(store, "vae/mlp/mnist", "after", [vae(0.070, 20, -85), vae(0.071, 22, -86), vae(0.072, 24, -87)],
          AFTER, params={"latent_dim": 2})
    seeds(store, "ae/conv/mnist", "before", [ae(0.010, 0.90), ae(0.014, 0.91), ae(0.012, 0.92)], BEFORE)
    seeds(store, "ae/conv/mnist", "after", [ae(0.011, 0.80), ae(0.013, 0.81), ae(0.0125, 0.82)], AFTER)
    seeds(store, "vae/conv/mnist", "before", [vae(0.05, 20, -90), vae(0.051, 21, -91)], BEFORE)
    seeds(store, "vae/conv/mnist", "after", [vae(0.04, 20, -80)], AFTER)
    seeds(store, "ae/mlp/cifar10", "before", [ae(0.02), ae(0.021)], BEFORE)
    store.run("ae/mlp/cifar10", 0, status="FAILED", tags={"version_label": "after"}, start=AFTER)
    seeds(store, "vae/mlp/cifar10", "after", [vae(0.03, 30, -700), vae(0.031, 31, -701)], AFTER)
    return store


def detectable(a, b, alpha: float = 0.05) -> float:
    """Welch's critical difference in shares of |mean(a)|, from scipy's own degrees of freedom."""
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    df = scipy_stats.ttest_ind(b, a, equal_var=False).df
    return scipy_stats.t.ppf(1 - alpha / 2, df) * se / abs(np.mean(a))


def seeds_for(effect: float, a, b, alpha: float = 0.05) -> int:
    """The first n with 80% power for a change of `effect` × |mean(a)|, counted up one by one."""
    spread = math.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
    d = effect * abs(np.mean(a)) / spread
    for n in range(2, 1001):
        critical = scipy_stats.t.ppf(1 - alpha / 2, 2 * n - 2)
        if scipy_stats.nct.sf(critical, 2 * n - 2, d * math.sqrt(n / 2)) >= 0.8:  # the other tail is < 1e-6 here
            return n
    raise AssertionError("over 1000")


def verdicts(text: str) -> dict[tuple[str, str], str]:
    return {(r["cell"], r["metric"]): r["verdict"].strip("*") for r in table(text, "## Changes per cell")}


def test_compare_calls_improvements_regressions_noise_and_untestable_cells(store, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "lab@before", "lab@after", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    text = (out / "COMPARE.md").read_text()
    assert printed.startswith(text) and f"wrote {out / 'COMPARE.md'}" in printed
    assert text.startswith("# Compare: `lab@before` → `lab@after`")

    found = verdicts(text)
    assert found[("ae/mlp/mnist", "recon MSE")] == "better"
    assert found[("ae/mlp/mnist", "pixel acc (%)")] == "within noise"  # equal in every seed: p = 1
    assert found[("vae/mlp/mnist", "recon MSE")] == "worse"
    assert found[("vae/mlp/mnist", "ELBO (nats)")] == "better"  # higher is better
    assert found[("vae/mlp/mnist", "KL (nats)")] == "within noise"
    assert found[("ae/conv/mnist", "recon MSE")] == "within noise"
    assert found[("ae/conv/mnist", "pixel acc (%)")] == "worse"
    assert found[("vae/conv/mnist", "recon MSE")] == "no test possible (one seed)"
    assert not any(cell.endswith("cifar10") for cell, _ in found)
    assert ("ae/mlp/mnist", "ELBO (nats)") not in found  # the AE logs no ELBO on either side

    rows = table(text, "## Changes per cell")
    mse = row_of(rows, cell="ae/mlp/mnist", metric="recon MSE")
    expected_p = scipy_stats.ttest_ind([0.005, 0.0055, 0.006], [0.010, 0.011, 0.012], equal_var=False).pvalue
    assert (mse["A"], mse["B"], mse["change"], mse["change %"]) == (
        "0.0110 ± 0.0010 (n=3)", "0.00550 ± 0.00050 (n=3)", "-0.0055", "-50.0%")
    assert mse["p"] == f"{expected_p:.3f}"
    untested = row_of(rows, cell="vae/conv/mnist", metric="recon MSE")
    assert (untested["B"], untested["p"]) == ("0.04000 (n=1)", "—")  # never a p-value of nan

    # what the seeds could detect: Welch's critical difference (between 10% and 100% of A's
    # mean here: two digits) and the seeds a 1% change would need
    a, b = (0.010, 0.011, 0.012), (0.0050, 0.0055, 0.0060)
    assert (mse["detectable"], mse["seeds for 1%"]) == (f"{100 * detectable(a, b):.0f}%", str(seeds_for(0.01, a, b)))
    # KL 22 ± 2 on both sides: 1% is 0.11 sd, about 2 (1.96 + 0.84)² / 0.11² = 1300 seeds
    assert row_of(rows, cell="vae/mlp/mnist", metric="KL (nats)")["seeds for 1%"] == "over 1000"
    pixel = row_of(rows, cell="ae/mlp/mnist", metric="pixel acc (%)")
    assert (pixel["detectable"], pixel["seeds for 1%"]) == ("seeds agree", "—")
    assert (untested["detectable"], untested["seeds for 1%"]) == ("—", "—")
    assert ("2 cell metric(s) whose seeds all agree on both sides are left out: any change of them shows.\n"
            in text)
    assert "nan" not in text.lower()

    assert "- `latent_dim`: 20 → 2 (vae/mlp/mnist)" in text
    assert "Only in A (lab@before), no finished run in B: ae/mlp/cifar10" in text
    assert "Only in B (lab@after), no finished run in A: vae/mlp/cifar10" in text
    assert "2 better, 2 worse" in text and (out / "changes.png").stat().st_size > 5000


def test_the_gate_fails_on_a_regression_unless_it_is_below_the_minimum_effect(store, tmp_path, capsys):
    args = ["compare", "lab@before", "lab@after", "--out", str(tmp_path / "cmp"), "--fail-on-regression"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "worse beyond noise: vae/mlp/mnist recon MSE: 0.0610 ± 0.0010 (n=3) → 0.0710 ± 0.0010 (n=3)" in out
    assert "worse beyond noise: ae/conv/mnist pixel acc (%)" in out
    assert "not tested (one seed on a side): 4 cell metrics" in out  # vae/conv/mnist's four
    # both regressions move the mean by less than 20%: below a 20% minimum effect, no call
    assert main([*args, "--min-effect", "20"]) == 0
    assert "below 20.00% (beyond noise)" in capsys.readouterr().out
    assert main([*args, "--metrics", "test/recon_mse"]) == 1
    assert main([*args, "--metrics", "test/kl,test/recon_bce"]) == 0  # KL has no worse; BCE is the same


def test_the_gate_sets_the_process_exit_status(store, tmp_path):
    def status(*sides: str) -> int:
        """`python -m aevae compare` (this checkout's aevae), as a CI job runs it."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
            str(Path(aevae.__file__).parents[1]), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-m", "aevae", "compare", *sides, "--fail-on-regression",
                               "--out", str(tmp_path / "cmp")], capture_output=True, text=True,
                              env=env, timeout=300)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    assert status("lab@before", "lab@after") == 1
    assert status("lab@after", "lab@before") == 1  # the other way round, the improvements regress


def test_sides_default_to_the_last_two_versions(store, tmp_path, capsys):
    assert main(["compare", "lab", "--out", str(tmp_path / "a")]) == 0  # the version before the newest, and it
    assert capsys.readouterr().out.startswith("# Compare: `lab@before` → `lab@after`")
    assert main(["compare", "lab@after", "lab@before", "--out", str(tmp_path / "b")]) == 0
    assert verdicts(capsys.readouterr().out)[("ae/mlp/mnist", "recon MSE")] == "worse"
    assert main(["compare", "lab@after"]) == 2
    assert "both sides are lab@after: name two different versions" in capsys.readouterr().err
    assert main(["compare", "lab@before", "lab@nope"]) == 2
    assert "experiment 'bench/lab' has no version 'nope'" in capsys.readouterr().err
    assert main(["compare", "lab@before", "lab@after", "--metrics", "test/typo"]) == 2
    assert "no finished run of either side logged test/typo" in capsys.readouterr().err


def test_one_version_has_nothing_to_compare_with(tracking_uri, capsys):
    store = Store(tracking_uri)
    seeds(store, "ae/mlp/mnist", "only", [ae(0.01), ae(0.02)], BEFORE)
    assert main(["compare"]) == 2
    assert ("experiment 'bench/lab' has 1 version(s) (only (2 runs)): run the grid again after a change"
            in capsys.readouterr().err)


def test_holm_and_welch_edge_cases():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert welch((1.0, 1.0), (1.0, 1.0), 0.05) == (1.0, (0.0, 0.0))  # deterministic, unchanged
    assert welch((1.0,), (1.0, 2.0), 0.05) == (None, None)
    p, (low, high) = welch((1.0, 2.0, 3.0), (2.0, 3.0, 4.0), 0.05)
    assert 0.05 < p < 1 and low < 1.0 < high
