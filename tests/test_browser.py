"""What a person sees, in a real browser: after a tiny grid and a tiny study, the MLflow UI
lists the grid's runs with their datasets and source, a run page draws a metric chart and
shows its reconstructions, a figure of `aevae report` renders, and optuna-dashboard lists the
study's trials.

Debian's Chromium (/usr/bin/chromium) is driven through Playwright's Python package, pointed
at it, so nothing is downloaded; without either the test is skipped, saying which is missing.
Screenshots of every page are test output, kept for a person to look at in a folder printed
at the start: benchmarks/results/browser/ of this checkout (git ignores it), or
AEVAE_BROWSER_SHOTS.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import optuna
import pytest

from aevae.cli import main
from aevae.data import DATASETS
from aevae.tracking import links, names
from conftest import register, write_mnist_family

pytestmark = pytest.mark.slow  # a grid, a study, a report, two servers and a browser: minutes

CHROMIUM = os.environ.get("AEVAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SERVER_START_S = 180  # MLflow's server can take a minute to start on a loaded 2-core machine
PAGE_S = 60  # the longest wait for one thing on a page
VIEWPORT = {"width": 1600, "height": 1000}
SHOTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "browser"

GRID = """
description = "Two cells, for the browser test."
seeds = [0]
[base]
subset = 200
val_size = 100
batch_size = 50
hidden_dim = 32
latent_dim = 4
epochs = 2
analysis = false
[axes]
model = ["ae", "vae"]
arch = ["mlp"]
dataset = ["mnist"]
"""

STUDY = """
trials = 3
[cells]
model = ["vae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 2
subset = 200
val_size = 100
hidden_dim = 32
latent_dim = 4
batch_size = 50
analysis = false
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""
STUDY_NAME = "browser/vae/mlp/mnist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A web server in its own process group (MLflow's starts worker processes), its output
    in a log file, stopped with the whole group."""

    def __init__(self, command: list[str], port: int, ready_path: str, log: Path, env: dict[str, str]):
        self.url, self.ready_path, self.log = f"http://127.0.0.1:{port}", ready_path, log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.url} exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        pytest.fail(f"{self.url} did not answer in {SERVER_START_S} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def sync_api():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) "
                    f"or point AEVAE_CHROMIUM at one")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed: "
                               "make install (the dev extra) installs it")


@pytest.fixture(scope="module")
def shots(request) -> Path:
    folder = Path(os.environ.get("AEVAE_BROWSER_SHOTS") or SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"browser screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def lab(sync_api, tmp_path_factory):
    """A tiny grid, a tiny study and the grid's report, on synthetic MNIST in a fresh store;
    then the MLflow UI and optuna-dashboard serving them."""
    root = tmp_path_factory.mktemp("lab")
    store = root / "mlruns" / "mlflow.db"
    store.parent.mkdir()
    uri = f"sqlite:///{store}"
    journal = root / "optuna.log"
    (root / "studies").mkdir()
    (root / "studies" / "browser.toml").write_text(STUDY)
    (root / "browser.toml").write_text(GRID)
    with pytest.MonkeyPatch.context() as patch:
        register(patch, "mnist", write_mnist_family(root / "data", DATASETS["mnist"], 600, 200))
        patch.setenv("AEVAE_DATA_DIR", str(root / "data"))
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["bench", str(root / "browser.toml"), "--results-dir", str(root / "results")]) == 0
        bench_output = printed.getvalue()
        assert main(["tune", "browser", "--studies-dir", str(root / "studies"), "--storage", str(journal)]) == 0
        assert main(["report", "browser", "--out", str(root / "report")]) == 0
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    dashboard_script = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    assert dashboard_script, "optuna-dashboard is not installed beside this Python: make install"
    mlflow_port, dashboard_port = free_port(), free_port()
    # one worker: MLflow's default of four takes minutes to start on a loaded 2-core machine;
    # wsgiref: the dashboard's gunicorn would leave a control socket in the home folder
    servers = [
        Server([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                "--port", str(mlflow_port), "--workers", "1"], mlflow_port, "/health", root / "mlflow.log", env),
        Server([dashboard_script, str(journal), "--host", "127.0.0.1", "--port", str(dashboard_port),
                "--server", "wsgiref", "--quiet"], dashboard_port, "/api/studies", root / "dashboard.log", env),
    ]
    try:
        for server in servers:
            server.wait_ready()
        yield {"uri": uri, "mlflow": servers[0].url, "dashboard": servers[1].url, "journal": journal,
               "report": root / "report", "bench_output": bench_output}
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def browser(sync_api):
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, shots, request):
    """A fresh page; whatever it shows at the end is saved as <test name>.png."""
    opened = browser.new_page(viewport=VIEWPORT)
    opened.set_default_timeout(PAGE_S * 1000)
    yield opened
    opened.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    opened.close()


def shoot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def grid_runs(uri: str) -> tuple[str, list]:
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(names.bench_experiment("browser"))
    return experiment.experiment_id, client.search_runs([experiment.experiment_id])


def train_digest(run) -> str:
    (digest,) = [i.dataset.digest for i in run.inputs.dataset_inputs
                 if any(t.key == names.INPUT_CONTEXT and t.value == names.TRAIN_CONTEXT for t in i.tags)]
    return digest


def test_the_grid_lists_its_runs_with_their_dataset_and_source(lab, page):
    experiment_id, runs = grid_runs(lab["uri"])
    assert len(runs) == 2
    page.goto(f"{lab['mlflow']}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")
    for run in runs:
        page.get_by_text(run.info.run_name, exact=True).wait_for()
    # each row names its training split with the digest, in the Dataset column
    badge = page.get_by_text(f"mnist ({train_digest(runs[0])})", exact=True)
    badge.first.wait_for()
    assert badge.count() == len(runs)
    assert page.get_by_text(names.ENTRY_BENCH, exact=True).count() == len(runs)  # the Source column
    # the dataset filter offers each split
    page.get_by_test_id("datasets-select-dropdown").click()
    options = page.get_by_role("option")
    options.first.wait_for()
    assert sorted(re.sub(r"\s+", " ", text).strip() for text in options.all_inner_texts()) == sorted(
        f"mnist ({i.dataset.digest}) {next(t.value for t in i.tags if t.key == names.INPUT_CONTEXT).title()}"
        for i in runs[0].inputs.dataset_inputs)


def test_a_newcomer_following_the_printed_link_or_the_switch_sees_the_grids_runs(lab, page, shots):
    """What a newcomer sees first. MLflow 3's UI starts in its GenAI view (an experiment
    there opens on a traces overview); the link `aevae bench` prints last opens the runs
    table, and so does the experiment's own link once *Model training* is chosen."""
    experiment_id, runs = grid_runs(lab["uri"])
    printed = [line for line in lab["bench_output"].splitlines() if line.startswith("runs in the MLflow UI:")]
    assert printed, lab["bench_output"]
    url = printed[-1].rsplit(" ", 1)[-1].replace(links.LOCAL_UI, lab["mlflow"])
    assert url == links.experiment_url(lab["mlflow"], experiment_id)
    page.goto(url)
    for run in runs:
        page.get_by_text(run.info.run_name, exact=True).wait_for()
    shoot(page, shots, "newcomer-printed-link")
    fresh = page.context.browser.new_page(viewport=VIEWPORT)  # a browser that has chosen nothing yet
    try:
        fresh.set_default_timeout(PAGE_S * 1000)
        fresh.goto(f"{lab['mlflow']}/")
        fresh.get_by_text("Model training", exact=True).first.click()
        fresh.get_by_text(names.bench_experiment("browser"), exact=True).first.click()
        for run in runs:
            fresh.get_by_text(run.info.run_name, exact=True).wait_for()
        shoot(fresh, shots, "newcomer-model-training-switch")
    finally:
        fresh.close()
    assert grid_experiment_kind(lab["uri"]) == names.MODEL_TRAINING_KIND


def grid_experiment_kind(uri: str) -> str | None:
    experiment = mlflow.MlflowClient(uri).get_experiment_by_name(names.bench_experiment("browser"))
    return experiment.tags.get(names.EXPERIMENT_KIND)


def test_a_run_page_draws_a_metric_chart_and_shows_its_reconstructions(lab, page, shots):
    experiment_id, runs = grid_runs(lab["uri"])
    (run,) = [r for r in runs if r.data.tags[names.MODEL] == "vae"]
    base = f"{lab['mlflow']}/#/experiments/{experiment_id}/runs/{run.info.run_id}"
    page.goto(f"{base}/model-metrics")
    # The page draws only the charts in view, and the frames' image charts come first: ask for
    # our metric by name, as a user would, so that its chart is the one drawn.
    page.get_by_placeholder("Search metric charts").fill("recon_mse")
    page.get_by_text("recon_mse", exact=True).first.wait_for()  # a chart of one of our metrics
    chart = page.locator(".js-plotly-plot .main-svg")
    chart.first.wait_for()
    assert chart.count() >= 1
    shoot(page, shots, "run-metrics")
    page.goto(f"{base}/artifacts/figures/reconstructions.png")
    loaded = page.wait_for_function(
        "() => [...document.images].filter(i => i.src.startsWith('blob:') && i.complete)"
        ".map(i => i.naturalWidth).reduce((a, b) => Math.max(a, b), 0) || null")
    assert loaded.json_value() > 100  # the grid of test images and reconstructions, in pixels


def test_a_report_figure_renders(lab, page):
    results = (lab["report"] / "RESULTS.md").read_text()
    figures = [lab["report"] / name for name in re.findall(r"\]\(([^)\s]+\.png)\)", results)]
    assert figures and figures[0].is_file(), "RESULTS.md links no figure it wrote"
    page.goto(figures[0].resolve().as_uri())
    width = page.evaluate("() => { const i = document.images[0]; return i && i.complete ? i.naturalWidth : 0; }")
    assert width > 100


def test_the_study_page_lists_its_trials(lab, page):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(lab["journal"])))
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    assert len(trials) == 3
    page.goto(f"{lab['dashboard']}/dashboard/studies/{study_id}/trials")
    page.get_by_text(f"{len(trials)} Trials", exact=True).wait_for()
    for trial in trials:
        assert page.get_by_text(f"Trial {trial.number}", exact=True).count() >= 1
