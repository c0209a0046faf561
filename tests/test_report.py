"""`aevae report` over small real MLflow stores with known numbers."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from report_store import Store, finished_metrics

from aevae.cli import main
from aevae.report import build_report
from aevae.report.display import mean_std
from aevae.tracking import runs as tracking_runs
from aevae.report.runs import load_grid_runs
from aevae.tracking.reader import StoreReader

CURVES = {"train/loss": [90, 70, 60], "val/loss": [95, 75, 66], "train/kl": [5, 9, 11],
          "val/kl": [6, 9, 10], "val/recon_mse": [0.05, 0.03, 0.02]}
FAILURE = "DataError: CIFAR-10 needs cifar-10-python.tar.gz in data/ and the machine is offline."


@pytest.fixture
def store_uri(tracking_uri) -> str:
    """`tracking_uri`, whose empty MLflow store already exists (see conftest)."""
    return tracking_uri


def table(markdown: str, heading: str) -> list[dict[str, str]]:
    """The first Markdown table after `heading`, as one dict per row."""
    lines = markdown.split(heading, 1)[1].splitlines()
    rows = [line for line in lines[next(i for i, l in enumerate(lines) if l.startswith("|")):]]
    rows = rows[:next((i for i, l in enumerate(rows) if not l.startswith("|")), len(rows))]
    split = [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]
    return [dict(zip(split[0], row)) for row in split[2:]]


def row_of(rows: list[dict], **match) -> dict:
    (found,) = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return found


@pytest.fixture
def lab(store_uri) -> Store:
    """MNIST AE and VAE with three seeds each (known MSE and KL), a CIFAR-10 AE that failed
    for want of data, a CIFAR-10 VAE never run, and a Fashion-MNIST AE still running."""
    store = Store(store_uri)
    store.expect([(f"{m}/mlp/mnist", s, "h") for m in ("ae", "vae") for s in range(3)]
                 + [("ae/mlp/cifar10", 0, "h"), ("vae/mlp/cifar10", 0, "h"), ("ae/mlp/fashion_mnist", 0, "h")],
                 {"model": ["ae", "vae"], "arch": ["mlp"], "dataset": ["mnist", "cifar10", "fashion_mnist"]})
    for seed, (mse_ae, mse_vae, kl) in enumerate([(0.009, 0.060, 20), (0.010, 0.061, 22), (0.011, 0.062, 24)]):
        common = {"history": CURVES, "params": {"epochs": 3, "latent_dim": 4, "lr": 0.001},
                  "logged": {"train_seconds": 10 + seed, "images_per_sec": 1000}}
        analysis_ae, analysis_vae = {"frechet": 50.0, "probe_acc": 0.9}, {"frechet": 30.0, "probe_acc": 0.8}
        store.run("ae/mlp/mnist", seed, test={**finished_metrics(mse_ae), **analysis_ae}, figures=seed == 0, **common)
        store.run("vae/mlp/mnist", seed, test={**finished_metrics(mse_vae, kl, True), **analysis_vae}, **common)
    store.run("ae/mlp/cifar10", 0, status="FAILED", tags={"failure_reason": FAILURE})
    store.run("ae/mlp/fashion_mnist", 0, status="RUNNING")
    return store


def test_report_tables_numbers_failures_links_and_figures(lab, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["report", "lab", "--out", str(out), "--ui-url", "http://ui:5000"]) == 0
    assert f"wrote {out / 'RESULTS.md'} (5 cells, 6 of 9 runs finished" in capsys.readouterr().out
    text = (out / "RESULTS.md").read_text()

    compact = table(text, "## Results")
    assert list(compact[0]) == ["model", "arch", "dataset", "recon MSE", "recon acc (%)", "KL (nats)",
                                "ELBO (nats)", "seeds"]
    assert row_of(compact, model="VAE", dataset="MNIST") == {
        "model": "VAE", "arch": "MLP", "dataset": "MNIST", "recon MSE": "0.0610 ± 0.0010",
        "recon acc (%)": "93.90 ± 0.10", "KL (nats)": "22.0 ± 2.0", "ELBO (nats)": "-72.0 ± 2.0", "seeds": "3/3"}
    assert row_of(compact, model="AE", dataset="CIFAR-10")["seeds"] == "0/1"

    full = table(text, "## Every metric")
    ae = row_of(full, model="AE", dataset="MNIST")
    vae = row_of(full, model="VAE", dataset="MNIST")
    assert (ae["seeds"], ae["recon MSE"], ae["wall (s)"]) == ("3/3", "0.0100 ± 0.0010", "11.0 ± 1.0")
    assert (vae["recon MSE"], vae["KL (nats)"], vae["ELBO (nats)"]) == ("0.0610 ± 0.0010", "22.0 ± 2.0", "-72.0 ± 2.0")
    assert ae["pixel acc (%)"] == "90" and ae["ELBO (nats)"] == "—"
    assert row_of(full, model="AE", dataset="CIFAR-10")["notes"] == "1 FAILED (reason 2)"
    assert row_of(full, model="VAE", dataset="CIFAR-10")["notes"] == "1 NOT RUN (reason 3)"

    client, experiment = lab.client, lab.experiment_id
    seed0 = [r for r in client.search_runs([experiment], "tags.cell = 'ae/mlp/mnist' and tags.seed = '0'")][0]
    assert f"(http://ui:5000/#/experiments/{experiment}/runs/{seed0.info.run_id}?workflowType=machine_learning)" \
        in ae["runs"]

    kl_section = text.split("## What the KL term does", 1)[1].split("\n## ", 1)[0]
    readings = [line for line in kl_section.splitlines() if line.startswith("- ")]
    assert readings == [  # Fashion-MNIST has no VAE cell
        "- **MNIST/MLP**: The VAE's recon MSE is 6.1x the AE's (0.06100 vs 0.01000). It pays 22 nats of "
        "KL per image. It keeps 4 of 4 latent units active (AE: 4). The Fréchet distance of its samples "
        "is lower (30 vs 50): better than the AE's. Its linear-probe accuracy is lower (0.8000 vs "
        "0.9000): worse than the AE's.",
        "- **CIFAR-10/MLP**: No finished AE or VAE run to compare yet."]
    assert (vae["Fréchet"], vae["probe acc"]) == ("30", "0.8000") and "NLL (nats)" not in vae

    problems = table(text, "## Not in the tables")
    assert [(p["#"], p["state"], p["runs"], p["cells"]) for p in problems] == [  # in cell order
        ("1", "RUNNING", "1", "ae/mlp/fashion_mnist (seed 0)"), ("2", "FAILED", "1", "ae/mlp/cifar10 (seed 0)"),
        ("3", "NOT RUN", "1", "vae/mlp/cifar10 (seed 0)")]
    assert problems[1]["reason"] == FAILURE
    assert problems[0]["reason"].startswith("still running (started 2023-11-14")

    for name in ("metrics-mnist.png", "curves-mnist.png", "panels-mnist-mlp.png"):
        assert (out / name).stat().st_size > 1000 and f"]({name})" in text
    vae_seed0 = client.search_runs([experiment], "tags.cell = 'vae/mlp/mnist' and tags.seed = '0'")[0].info.run_id
    assert f"Run `{vae_seed0}` (vae/mlp/mnist) has no figures/reconstructions.png" in text


def test_beta_grid_draws_rate_distortion_and_latent_maps_per_beta(store_uri, tmp_path):
    store = Store(store_uri, "bench/beta")
    cells = ["ae/mlp/mnist", "vae/mlp/mnist/beta=0.5", "vae/mlp/mnist/beta=2.0"]
    store.expect([(c, s, "h") for c in cells for s in (0, 1)], {"model": ["ae", "vae"], "beta": [0.5, 2.0]})
    for seed in (0, 1):
        store.run(cells[0], seed, test=finished_metrics(0.01), figures=seed == 0)
        store.run(cells[1], seed, test=finished_metrics(0.02, 30 + seed, True), figures=seed == 0,
                  params={"beta": 0.5})
        store.run(cells[2], seed, test=finished_metrics(0.04, 10 + seed, True), figures=seed == 0,
                  params={"beta": 2.0})
    report = build_report("beta", tmp_path / "out")
    text = report.path.read_text()
    assert (tmp_path / "out" / "rate-distortion.png").is_file() and (tmp_path / "out" / "beta-mnist-mlp.png").is_file()
    readings = [line for line in text.split("## What the KL term does", 1)[1].splitlines() if line.startswith("- **")]
    assert [line.split(" It keeps")[0] for line in readings] == [
        "- **MNIST/MLP/beta=0.5**: The VAE's recon MSE is 2.0x the AE's (0.02000 vs 0.01000). "
        "It pays 30.50 nats of KL per image.",
        "- **MNIST/MLP/beta=2.0**: The VAE's recon MSE is 4.0x the AE's (0.04000 vs 0.01000). "
        "It pays 10.50 nats of KL per image."]
    compact = table(text, "## Results")
    assert [r["beta"] for r in compact] == ["", "0.5", "2.0"] and len(compact[0]) == 9


@pytest.mark.parametrize("values,runs,shown", [
    ([0.009, 0.010, 0.011], 3, "0.0100 ± 0.0010"),
    ([1234.4, 1246.6], 2, "1240.5 ± 8.6"),
    ([5.0], 1, "5"),
    ([1.23456], 1, "1.235"),
    ([20.0, 20.0], 2, "20"),
    ([0.8, 0.8, 0.8], 3, "0.8000"),
    ([0.5, 0.7], 3, "0.60 ± 0.14 (n=2)"),
    ([], 2, "—"),
])
def test_mean_std_prints_the_mean_to_the_stds_precision(values, runs, shown):
    assert mean_std(pd.Series(values, dtype=float), runs) == shown


def test_repeated_stale_and_foreign_runs_leave_one_run_per_slot(store_uri):
    store = Store(store_uri)
    store.expect([("ae/mlp/mnist", 0, "new")])
    store.run("ae/mlp/mnist", 0, status="FAILED", config_hash="new", start=1_700_000_000_000)
    kept = store.run("ae/mlp/mnist", 0, test=finished_metrics(0.01), config_hash="new", start=1_700_000_100_000)
    store.run("ae/mlp/mnist", 0, status="FAILED", config_hash="new", start=1_700_000_200_000)
    store.run("ae/mlp/mnist", 0, test=finished_metrics(0.5), config_hash="old")
    store.run("vae/conv/mnist", 0, test=finished_metrics(0.5))
    store.client.create_run(store.experiment_id, tags={"grid": "lab"})  # a grid's parent run
    grid = load_grid_runs(StoreReader(store_uri), "lab")
    assert list(grid.slots["run_id"]) == [kept]
    notes = " ".join(grid.notes)
    for expected in ("1 run(s) without model/arch/dataset tags", "2 repeated run(s)",
                     "1 run(s) of cells or seeds outside the grid", "1 run(s) of an earlier config"):
        assert expected in notes


def test_runs_without_cell_tags_are_grouped_by_the_config_fields_that_vary(store_uri, monkeypatch):
    monkeypatch.setattr(tracking_runs, "SEARCH_PAGE", 3)  # four runs: the search reads two pages
    store = Store(store_uri, "aevae")
    for lr in (0.001, 0.01):
        for seed in (0, 1):
            store.run(None, seed, test=finished_metrics(lr), params={
                "model": "vae", "arch": "mlp", "dataset": "mnist", "lr": lr, "epochs": 2})
    grid = load_grid_runs(StoreReader(store_uri), "aevae")
    assert sorted(grid.slots["cell"].unique()) == ["vae/mlp/mnist/lr=0.001", "vae/mlp/mnist/lr=0.01"]
    assert grid.extra_axes == ["lr"] and len(grid.finished) == 4


def test_finished_runs_missing_metrics_are_listed_and_counted(store_uri, tmp_path):
    store = Store(store_uri)
    store.run("vae/mlp/mnist", 0, test=finished_metrics(0.02, 5, True), logged={"train_seconds": 3})
    partial = {k: v for k, v in finished_metrics(0.04, 7, True).items() if k not in ("elbo", "kl")}
    lacking = store.run("vae/mlp/mnist", 1, test=partial)
    text = build_report("lab", tmp_path / "out").path.read_text()
    assert row_of(table(text, "## Every metric"), model="VAE")["KL (nats)"] == "5 (n=1)"
    (gap,) = table(text, "### Finished runs with missing metrics")
    assert gap["missing"] == "test/kl, train_seconds, test/elbo" and lacking[:8] in gap["run"]
    assert "This grid has no AE and VAE cells of the same dataset and arch to compare." in text


def test_a_grid_with_no_runs_yet_lists_every_cell_as_not_run(store_uri, tmp_path):
    store = Store(store_uri)
    store.expect([("ae/mlp/mnist", 0, "h"), ("vae/mlp/mnist", 0, "h")])
    text = build_report("lab", tmp_path / "out").path.read_text()
    (not_run,) = table(text, "## Not in the tables")
    assert (not_run["state"], not_run["runs"]) == ("NOT RUN", "2")
    assert not_run["cells"] == "ae/mlp/mnist, vae/mlp/mnist (seed 0)"
    assert "0 finished" in text and not list((tmp_path / "out").glob("*.png"))


@pytest.mark.usefixtures("tracking_uri")
@pytest.mark.parametrize("setup,message", [
    ("none", "there is no MLflow store at"),
    ("other", "no experiment 'lab' (nor grid 'bench/lab') in sqlite:///"),
    ("empty", "experiment 'bench/lab' has no runs yet: run `aevae bench lab`"),
    ("scheme", "'nosuch://x' is no MLflow tracking URI (unknown scheme 'nosuch')"),
])
def test_missing_store_experiment_or_runs_is_one_clear_line(setup, message, request, tmp_path, capsys):
    if setup in ("other", "empty"):
        Store(request.getfixturevalue("store_uri"), "bench/lab" if setup == "empty" else "bench/smoke")
    capsys.readouterr()
    missing = tmp_path / "nothing" / "mlflow.db"
    uri = {"scheme": ["--tracking-uri", "nosuch://x"], "none": ["--tracking-uri", f"sqlite:///{missing}"]}
    assert main(["report", "lab", *uri.get(setup, [])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aevae report: error: ") and message in err
    if setup == "other":
        assert "experiments there: Default, bench/smoke" in err
    if setup == "none":
        assert not missing.exists()  # reading created no store


def test_report_never_imports_the_training_code():
    code = ("import sys, aevae.report, aevae.commands.report; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' "
            "or m in ('aevae.training.loop', 'aevae.models', 'aevae.data')]; print(bad)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_cell_whose_runs_resolved_auto_to_different_precision_or_device_says_so(store_uri, tmp_path):
    # precision=auto and device=auto resolve per machine: same config hash, different runtimes
    store = Store(store_uri)
    cpu = {"precision": "bf16-autocast", "device": "cpu (x86_64)"}
    gpu = {"precision": "fp32", "device": "NVIDIA H100 80GB HBM3"}
    cells = ("ae/mlp/mnist", "vae/mlp/mnist", "ae/conv/mnist")
    store.expect([(cell, s, "h") for cell in cells for s in range(3)])
    for seed, tags in enumerate([cpu, cpu, gpu]):
        store.run("ae/mlp/mnist", seed, test=finished_metrics(0.01), tags=tags)
        store.run("vae/mlp/mnist", seed, test=finished_metrics(0.02, 5, True), tags=cpu)
        store.run("ae/conv/mnist", seed, test=finished_metrics(0.01), tags={"precision": "fp32"} if seed else cpu)
    store.run("ae/conv/mnist", 0, status="FAILED", tags=gpu)  # only finished runs count
    text = build_report("lab", tmp_path / "out").path.read_text()
    headline = table(text, "## Every metric")
    assert row_of(headline, model="AE", arch="MLP")["notes"] == (
        "runs differ in precision and device: 2 bf16-autocast on cpu (x86_64), 1 fp32 on NVIDIA H100 80GB HBM3")
    assert row_of(headline, model="AE", arch="conv")["notes"] == "runs differ in precision: 2 fp32, 1 bf16-autocast"
    assert row_of(headline, model="VAE")["notes"] == ""
    assert "2 cell(s) mix runs of different precision or device, so their spread includes that " \
           "difference (see their notes): ae/conv/mnist, ae/mlp/mnist" in text


@pytest.mark.parametrize("vae,ae,shown", [
    (0.2211, 0.2255, "2.0% lower than"),  # was "1.0x lower than": a ratio that reads as nothing
    (0.2256, 0.2255, "about the same as"),
    (0.25, 0.2, "25% higher than"),
    (0.1, 0.2, "50% lower than"),
    (0.5, 0.2, "2.5x"),
    (0.061, 0.01, "6.1x"),
])
def test_the_readings_say_how_far_apart_two_means_are_in_words_a_reader_can_use(vae, ae, shown):
    from aevae.report.ae_vae import mse_sentence

    sentence = mse_sentence(pd.DataFrame({"test/recon_mse": [ae]}), pd.DataFrame({"test/recon_mse": [vae]}))
    assert sentence.startswith(f"The VAE's recon MSE is {shown} the AE's (")
