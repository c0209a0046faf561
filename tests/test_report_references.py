"""RESULTS.md for a reader, over real MLflow stores: the compact first table, a failure reason
shared by many runs said once, the CSV beside it, and published references beside our cells."""

from __future__ import annotations

import pandas as pd
import pytest
from report_store import Store, finished_metrics
from test_report import row_of, table

from aevae.bench.grid import expand, load_grid
from aevae.cli import main
from aevae.report import build_report
from aevae.report.references import default_path, load_references

OFFLINE = "DataError: CIFAR-10 needs cifar-10-python.tar.gz in /data/shared and the machine is offline."
LITERATURE = {"binarize": True, "recon_loss": "bce", "nll_samples": 5000, "nll_images": 10000,
              "latent_dim": 20, "epochs": 100}

REFERENCES = """
[[reference]]
id = "same-measurement"
cite = "Paper A"
source = "Paper A, Table 1"
checked = "read in the paper"
model = "vae"
arch = "mlp"
dataset = "mnist"
values = { "test/nll" = 90.0 }
[reference.measured]
dataset = "mnist"
binarize = true
recon_loss = "bce"
nll_samples = 5000
nll_images = 10000
[reference.trained]
latent_dim = 50
epochs = 100

[[reference]]
id = "other-estimator"
cite = "Repo B"
source = "Repo B, README"
checked = "read in the README"
verified = false
model = "vae"
arch = "mlp"
dataset = "mnist"
values = { "test/nll" = 80.0 }
also_differs = ["binarization dynamic vs static"]
[reference.measured]
nll_samples = 200

[[reference]]
id = "no-such-cell"
cite = "Paper C"
source = "Paper C"
checked = "read in the paper"
model = "vae"
arch = "conv"
dataset = "mnist"
values = { "test/nll" = 85.0 }
"""


@pytest.fixture
def offline_lab(tracking_uri) -> Store:
    """MNIST AE and VAE (MLP) with two finished seeds each, in the literature's setting, and
    four CIFAR-10 cells whose eight runs all failed for the same reason."""
    store = Store(tracking_uri)
    cifar = [f"{m}/{a}/cifar10" for m in ("ae", "vae") for a in ("mlp", "conv")]
    store.expect([(f"{m}/mlp/mnist", s, "h") for m in ("ae", "vae") for s in (0, 1)]
                 + [(cell, s, "h") for cell in cifar for s in (0, 1)])
    for seed, nll in ((0, 93.0), (1, 95.0)):
        store.run("ae/mlp/mnist", seed, test=finished_metrics(0.01 + 0.002 * seed), params=LITERATURE)
        store.run("vae/mlp/mnist", seed, test={**finished_metrics(0.03, 25.0, True), "nll": nll}, params=LITERATURE)
    for cell in cifar:
        for seed in (0, 1):
            store.run(cell, seed, status="FAILED", tags={"failure_reason": OFFLINE})
    return store


def test_the_first_table_fits_a_page_a_shared_failure_is_said_once_and_a_csv_sits_beside(offline_lab, tmp_path):
    report = build_report("lab", tmp_path / "out")
    text = report.path.read_text()

    compact = table(text, "## Results")
    assert list(compact[0]) == ["model", "arch", "dataset", "recon MSE", "recon acc (%)", "KL (nats)",
                                "NLL (nats, k=5000)", "seeds"]
    vae = row_of(compact, model="VAE", dataset="MNIST")
    assert (vae["NLL (nats, k=5000)"], vae["seeds"]) == ("94.0 ± 1.4", "2/2")
    assert row_of(compact, model="VAE", arch="conv")["seeds"] == "0/2"

    assert text.count(OFFLINE) == 1
    (failed,) = table(text, "## Not in the tables")
    assert (failed["state"], failed["runs"], failed["reason"]) == ("FAILED", "8", OFFLINE)
    assert failed["cells"] == "ae/mlp/cifar10, vae/mlp/cifar10, ae/conv/cifar10, vae/conv/cifar10 (seeds 0, 1)"
    full = table(text, "## Every metric")
    assert {r["notes"] for r in full if r["dataset"] == "CIFAR-10"} == {"2 FAILED (reason 1)"}

    csv = pd.read_csv(report.path.parent / "results.csv").set_index("cell")
    assert "[results.csv](results.csv)" in text
    assert csv.loc["ae/mlp/mnist", "test/recon_mse mean"] == pytest.approx(0.011)
    assert csv.loc["ae/mlp/mnist", "test/recon_mse std"] == pytest.approx(0.002 / 2 ** 0.5)
    assert csv.loc["vae/mlp/mnist", "test/nll n"] == 2
    assert tuple(csv.loc["vae/conv/cifar10", ["seeds_finished", "seeds_expected"]]) == (0, 2)


def test_references_sit_beside_their_cell_with_the_difference_or_the_setting_that_differs(offline_lab, tmp_path):
    references = tmp_path / "references.toml"
    references.write_text(REFERENCES)
    text = build_report("lab", tmp_path / "out", references_file=references).path.read_text()
    rows = table(text, "## Beside published results")
    assert [(r["cell"], r["metric"]) for r in rows] == [("vae/mlp/mnist", "NLL (nats)")] * 2  # nothing for conv
    same = row_of(rows, reference="90 (Paper A)")
    assert (same["ours"], same["difference"]) == ("94.0 ± 1.4", "+4 (+4.4%)")
    assert same["setting"] == "same measurement; trained differently: latent_dim 20 vs 50"
    other = row_of(rows, reference="80 (Repo B, unverified)")
    assert other["difference"] == "not comparable"
    assert other["setting"] == "setting differs: nll_samples 5000 vs 200; binarization dynamic vs static"
    assert "Unverified: read in the README" in text and "Paper C" not in text


def test_a_setting_the_runs_disagree_on_or_never_logged_is_not_compared(tracking_uri, tmp_path):
    store = Store(tracking_uri)
    store.run("vae/mlp/mnist", 0, test={**finished_metrics(0.03, 25.0, True), "nll": 90.0}, params=LITERATURE)
    store.run("vae/mlp/mnist", 1, test={**finished_metrics(0.03, 25.0, True), "nll": 91.0},
              params={**LITERATURE, "nll_samples": 100})
    references = tmp_path / "references.toml"
    references.write_text(REFERENCES.replace("recon_loss = \"bce\"", "recon_loss = \"bce\"\nweight_decay = 0.0"))
    text = build_report("lab", tmp_path / "out", references_file=references).path.read_text()
    same = row_of(table(text, "## Beside published results"), reference="90 (Paper A)")
    # the trained fields matter only once the measurement is the same
    assert same["setting"] == "setting differs: weight_decay not logged vs 0; nll_samples mixed vs 5000"
    assert same["difference"] == "not comparable"


def test_the_shipped_references_load_and_name_known_metrics():
    references = load_references(default_path())
    by_id = {r.id: r for r in references}
    assert {"lab-cifar10-mlp-ae", "lab-cifar10-mlp-vae", "burda2016-vae", "pythae-vae"} <= set(by_id)
    burda = by_id["burda2016-vae"]
    assert burda.measured["nll_samples"] == 5000 and burda.measured["binarize"] is True
    assert all(r.checked and r.source for r in references)


@pytest.mark.parametrize("change,message", [
    (("id = \"no-such-cell\"", "id = \"same-measurement\""), "uses the id(s) same-measurement more than once"),
    (("epochs = 100", "epoch = 100"), "unknown config field 'epoch'"),
    (("cite = \"Paper C\"", "cite = \"Paper C\"\nyear = 2016"), "unknown key(s) year; valid keys:"),
    (("\"test/nll\" = 85.0", "\"test/nl\" = 85.0"), "unknown metric 'test/nl'"),
    (("[[reference]]", "[[reference]"), "is not valid TOML"),
    (None, "cannot read the references file"),
])
def test_a_bad_references_file_is_one_clear_line(tmp_path, capsys, change, message):
    references = tmp_path / "references.toml"
    if change:
        references.write_text(REFERENCES.replace(*change, 1))
    # read before MLflow: no store is needed to find the mistake
    store = f"sqlite:///{tmp_path}/none.db"
    assert main(["report", "lab", "--tracking-uri", store, "--references", str(references)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aevae report: error: ") and message in err


def test_the_literature_grid_measures_what_the_published_nlls_measure():
    (cell,) = expand(load_grid("literature"))
    for reference in (r for r in load_references(default_path()) if r.id in ("burda2016-vae", "nbip-iwae-vae")):
        assert {field: getattr(cell.config, field) for field in reference.measured} == reference.measured
        assert (cell.config.model, cell.config.arch, cell.config.dataset) == (reference.model, reference.arch,
                                                                              reference.dataset)


def test_a_plugins_hyperparameter_read_back_as_text_equals_the_number_a_reference_gives():
    from aevae.report.references import same

    assert same("5", 5) and same("0.25", 0.25) and not same("50", 5) and not same("k", 5)
    assert same(True, True) and not same("1", True)
