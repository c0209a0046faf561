"""Models and architectures of one's own: the examples in examples/ (an IWAE, a VQ-VAE and a
residual conv net, each importing only aevae's model protocol) through the same door as the
built-ins, every model x arch x dataset shape held to the protocol; a grid of them beside the
built-ins through bench and tune; and a bad plug-in is one sentence, exit 2, before anything
trains."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
import torch

from aevae.cli import main
from aevae.config import TrainConfig, config_hash, with_overrides
from aevae.data import DATASETS
from aevae.models import ARCHS, MODELS, build, check
from aevae.resolve import resolve
from aevae.tune.storage import open_storage
from conftest import PINNED, REAL_DATA

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
IWAE = f"{EXAMPLES}/models/iwae.py:IWAE"
VQVAE = f"{EXAMPLES}/models/vqvae.py:VQVAE"
RESNET = f"{EXAMPLES}/archs/resnet.py:ResNet"
SMALL = {"latent_dim": 8, "hidden_dim": 32, "conv_channels": (8, 16), **PINNED}
ARCH_PARAMS = {RESNET: {"arch_params.channels": 8}}

# Every model (built-in and example) on every architecture and dataset shape, as
# tests/test_models.py holds the built-ins.
CASES = list(itertools.product([*MODELS, IWAE, VQVAE], [*ARCHS, RESNET], DATASETS))


def config(model: str, arch: str, dataset: str, **changes) -> TrainConfig:
    return resolve(with_overrides(TrainConfig(dataset=dataset, **SMALL),
                                  {"model": model, "arch": arch, **ARCH_PARAMS.get(arch, {}), **changes}))


@pytest.mark.parametrize("model,arch,dataset", CASES, ids=lambda v: str(v).rsplit(":", 1)[-1])
def test_every_model_on_every_arch_follows_the_protocol_and_learns(model, arch, dataset):
    cfg = config(model, arch, dataset)
    shape = DATASETS[dataset].shape
    traits = check(cfg, shape)
    assert traits.code == {"ae": "point", VQVAE: "discrete"}.get(model, "gaussian")
    torch.manual_seed(0)
    net = build(cfg, shape)
    x = torch.rand(8, *shape)
    code, logvar = net.encode(x)
    assert code.shape == (8, cfg.latent_dim) and (logvar is None) == (traits.code != "gaussian")
    assert net.decode(code).shape == x.shape
    parts = net.loss(x)
    assert all(torch.isfinite(p) for p in parts)
    before = [p.detach().clone() for p in net.parameters()]
    parts.total.backward()
    torch.optim.Adam(net.parameters(), lr=1e-3).step()
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_a_reference_goes_by_its_name_and_its_hyperparameters_are_declared_checked_and_filled():
    cfg = config(IWAE, RESNET, "mnist", **{"model_params.samples": "3"})
    assert (cfg.model, cfg.arch) == ("iwae", "resnet")
    assert ("model", "iwae", IWAE) in cfg.plugins and ("arch", "resnet", RESNET) in cfg.plugins
    assert cfg.model_params == (("samples", 3),)  # typed as the class declares it
    assert cfg.arch_params == (("channels", 8), ("stages", 2))  # the declared default filled in
    assert config(IWAE, "mlp", "mnist").model_params == (("samples", 5),)


def test_the_iwae_with_one_sample_trains_the_vaes_elbo_in_expectation():
    """k = 1: the importance-weighted bound is the ELBO with a one-sample KL, whose mean over
    the noise is the VAE's analytic KL. Same weights and noise: the reconstruction terms are
    equal draw by draw, and the totals' mean difference over 200 draws lies within five
    standard errors of that difference's own spread (a Monte Carlo bound, exact in the limit)."""
    x = torch.rand(6, 1, 28, 28)
    vae, iwae = (build(config(m, "mlp", "mnist", **extra), (1, 28, 28))
                 for m, extra in (("vae", {}), (IWAE, {"model_params.samples": 1})))
    iwae.load_state_dict(vae.state_dict())
    differences = []
    with torch.no_grad():
        for draw in range(200):
            torch.manual_seed(draw)
            expected = vae.loss(x)
            torch.manual_seed(draw)
            got = iwae.loss(x)
            torch.testing.assert_close(got.recon, expected.recon)
            differences.append(float(got.total - expected.total))
    spread = torch.tensor(differences, dtype=torch.float64)
    assert abs(spread.mean()) <= 5 * spread.std() / len(differences) ** 0.5


def test_changed_plugin_code_is_another_config(tmp_path):
    source = (EXAMPLES / "models" / "iwae.py").read_text()
    copy = tmp_path / "mine" / "iwaecopy.py"
    copy.parent.mkdir()
    copy.write_text(source)
    first = config_hash(config(f"{copy}:IWAE", "mlp", "mnist"))
    copy.write_text(source + "\n# a change\n")
    from aevae.plugins import code_digest

    code_digest.cache_clear()
    assert config_hash(config(f"{copy}:IWAE", "mlp", "mnist")) != first


BROKEN = {
    "nomethod.py": "import torch\nclass Model(torch.nn.Module):\n"
                   "    def __init__(self, inputs):\n        super().__init__()\n"
                   "    def encode(self, x):\n        return x.flatten(1), None\n"
                   "    def loss(self, x):\n        return x.mean()\n",
    "badloss.py": "import torch\nclass Model(torch.nn.Module):\n"
                  "    def __init__(self, inputs):\n        super().__init__()\n"
                  "        self.enc = inputs.arch.encoder(inputs.latent_dim)\n"
                  "        self.dec = inputs.arch.decoder(inputs.latent_dim)\n"
                  "    def encode(self, x):\n        return self.enc(x), None\n"
                  "    def decode(self, z):\n        return self.dec(z)\n"
                  "    def loss(self, x):\n        return (self.dec(self.enc(x)) - x).square().mean()\n",
    "raises.py": "raise RuntimeError('a typo in the module')\n",
    "nothing.py": "class Model:\n    pass\n",
}


@pytest.mark.parametrize("model,message", [
    ("nowhere/missing.py:Model", "aevae train: error: the model file nowhere/missing.py does not exist: give the "
                                 "path of a .py file."),
    ("nosuchpackage.models:Model", "aevae train: error: the model nosuchpackage.models:Model does not import: there "
                                   "is no module 'nosuchpackage' (install its package, or run from the folder that "
                                   "holds it)."),
    ("{dir}/raises.py:Model", "aevae train: error: the model file {dir}/raises.py does not load: RuntimeError: a typo "
                              "in the module."),
    ("{dir}/nomethod.py:Model", "aevae train: error: the model 'model' (Model) lacks decode, which every model has: "
                                "add it (README: Bring your own model)."),
    ("{dir}/badloss.py:Model", "aevae train: error: the model 'model' does not follow the protocol: its loss returns "
                               "a tensor of shape [], not LossParts(total, recon, kl) of three per-image means (scalar "
                               "tensors) (README: Bring your own model)."),
    ("{dir}/nothing.py:Nothing", "aevae train: error: the model {dir}/nothing.py:Nothing does not exist: "
                                 "{dir}/nothing.py has no 'Nothing'."),
])
def test_a_bad_plugin_is_one_sentence_and_exit_2_before_anything_is_logged(data_root, tracking_uri, tmp_path,
                                                                          capsys, model, message):
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    model = model.format(dir=tmp_path)
    assert main(["train", "--model", model, "--epochs", "1", "--val-size", "100", "--latent-dim", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == message.format(dir=tmp_path)
    assert mlflow.MlflowClient(tracking_uri).search_experiments(filter_string="name = 'aevae'") == []


def test_an_unknown_hyperparameter_names_the_valid_ones(data_root, tracking_uri, capsys):
    assert main(["train", "--model", IWAE, "--model-params", "smaples=3", "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "aevae train: error: unknown model_params 'smaples' of the model 'iwae'; valid: samples.")
    assert main(["train", "--model", "vae", "--model-params", "samples=3", "--epochs", "1"]) == 2
    assert "the model 'vae' declares no hyperparameters, so model_params samples cannot be set" in \
        capsys.readouterr().err


GRID = f"""
description = "The examples beside the built-ins, at smoke size."
seeds = [0]
[models]
iwae = "{IWAE}"
vqvae = "{VQVAE}"
[archs]
resnet = "{RESNET}"
[base]
dataset = "mnist"
binarize = true
epochs = 2
val_size = 100
hidden_dim = 32
latent_dim = 4
tsne_points = 50
frechet_samples = 100
nll_samples = 8
nll_images = 40
precision = "fp32"
[axes]
model = ["ae", "vae", "iwae", "vqvae"]
arch = ["mlp", "resnet"]
[[rule]]
when = {{ arch = "resnet" }}
set = {{ arch_params = {{ channels = 8 }} }}
[[rule]]
when = {{ model = "iwae" }}
set = {{ model_params = {{ samples = 3 }} }}
"""


def test_a_grid_of_plugins_beside_the_builtins_trains_and_tags_what_the_read_side_needs(data_root, tracking_uri,
                                                                                       tmp_path):
    (tmp_path / "plugged.toml").write_text(GRID)
    assert main(["bench", str(tmp_path / "plugged.toml"), "--results-dir", str(tmp_path / "results"),
                 "--no-system-metrics"]) == 0
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("bench/plugged")
    runs = {r.data.tags["cell"]: r for r in client.search_runs([experiment.experiment_id])}
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs.values())
    iwae, vqvae = runs["iwae/resnet/mnist"], runs["vqvae/mlp/mnist"]
    assert (iwae.data.tags["model_title"], iwae.data.tags["arch_title"], iwae.data.tags["model_code"]) == (
        "IWAE", "residual conv", "gaussian")
    assert {"test/kl", "test/elbo", "test/nll"} <= set(iwae.data.metrics)  # a Gaussian code: all apply
    assert iwae.data.params["model_params.samples"] == "3" and iwae.data.params["arch_params.channels"] == "8"
    assert vqvae.data.tags["model_code"] == "discrete" and "test/kl" not in vqvae.data.metrics
    assert "discrete" in vqvae.data.tags["not_applicable"] and "test/kl" in vqvae.data.tags["not_applicable"]
    # the logged model carries the plug-in's file and loads where it is not importable
    loaded = mlflow.pytorch.load_model(iwae.data.tags["model_uri"])
    assert type(loaded).__name__ == "IWAE" and loaded(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    # resumed: every cell is finished, nothing trains again
    assert main(["bench", str(tmp_path / "plugged.toml"), "--results-dir", str(tmp_path / "results"),
                 "--no-system-metrics"]) == 0
    assert len(client.search_runs([experiment.experiment_id])) == 8


STUDY = f"""
trials = 3
pruner = "none"
[models]
iwae = "{IWAE}"
[cells]
model = ["iwae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 1
val_size = 100
hidden_dim = 32
latent_dim = 4
precision = "fp32"
[space]
"model_params.samples" = {{ choices = [1, 4] }}
lr = {{ low = 1e-4, high = 1e-2, log = true }}
"""


def test_a_study_searches_a_plugins_own_hyperparameter(data_root, tracking_uri, tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "plugged.toml").write_text(STUDY)
    storage = str(tmp_path / "optuna.log")
    assert main(["tune", "plugged", "--studies-dir", str(tmp_path / "studies"), "--storage", storage]) == 0
    study = optuna.load_study(study_name="plugged/iwae/mlp/mnist", storage=open_storage(storage))
    assert study.user_attrs["objective_metric"] == "-val/elbo"  # a Gaussian code: the ELBO, as for the VAE
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 3 and {t.params["model_params.samples"] for t in trials} <= {1, 4}
    client = mlflow.MlflowClient(tracking_uri)
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.params["model_params.samples"] == str(trial.params["model_params.samples"])


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA or not (Path(REAL_DATA) / "MNIST").is_dir(),
                    reason="needs AEVAE_DATA_DIR with the real MNIST files (Ray's workers read them)")
def test_a_plugin_grid_runs_through_the_ray_executor(tmp_path):
    """Ray tasks train plug-in cells: the plug-in's file reaches the workers through Ray's
    runtime environment, and nobody copies it (the command runs in another folder)."""
    plugin = tmp_path / "elsewhere" / "mine.py"
    plugin.parent.mkdir()
    plugin.write_text((EXAMPLES / "models" / "iwae.py").read_text())
    driver = tmp_path / "driver"
    driver.mkdir()
    (driver / "raygrid.toml").write_text(f"""
seeds = [0]
[models]
mine = "{plugin}:IWAE"
[base]
dataset = "mnist"
epochs = 1
subset = 500
val_size = 200
hidden_dim = 32
latent_dim = 4
analysis = false
[axes]
model = ["vae", "mine"]
""")
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-m", "aevae", "bench", "raygrid.toml", "--executor", "ray",
                           "--ray-address", "local", "--workers", "2", "--tracking-uri", store,
                           "--data-dir", REAL_DATA, "--no-system-metrics"], cwd=driver, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "at most 2 at once" in done.stdout
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("bench/raygrid").experiment_id])
    assert {r.data.tags["cell"]: r.info.status for r in runs} == {"vae/mlp/mnist": "FINISHED",
                                                                 "mine/mlp/mnist": "FINISHED"}
    (mine,) = [r for r in runs if r.data.tags["model"] == "mine"]  # the grid's name for it
    assert mine.data.tags["model_title"] == "IWAE" and mine.data.tags["worker_task"].startswith("ray:")
