"""Study files: the ones in studies/ are valid, and a wrong one fails with a sentence."""

import re
from pathlib import Path

import optuna
import pytest

from aevae.config import TrainConfig
from aevae.errors import ConfigError
from aevae.tune.space import all_studies, find_study, suggest

REPO_STUDIES = Path(__file__).resolve().parents[1] / "studies"

HEADER = """
[cells]
model = ["vae"]
arch = ["conv"]
dataset = ["mnist"]
"""
SPACE = "[space]\nlr = { low = 1e-4, high = 1e-2, log = true }\n"


def write(tmp_path, text: str, name: str = "s") -> Path:
    folder = tmp_path / "studies"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text)
    return folder


def test_repo_study_sets_cover_the_lab_grid_and_start_from_the_default_config():
    studies = all_studies(REPO_STUDIES)
    lab = {s.cell for s in studies.values() if s.study_set == "lab"}
    assert lab == {f"{m}/{a}/{d}" for m in ("ae", "vae") for a in ("mlp", "conv")
                   for d in ("mnist", "fashion_mnist", "cifar10")}
    for spec in studies.values():
        assert spec.default_params() is not None, spec.name  # trial 0 is the default config
        assert ("beta" in spec.searched) == (spec.base.model == "vae")
    quick = find_study("quick", REPO_STUDIES)  # a set of one study answers to its set's name
    assert quick.name == "quick/vae/mlp/mnist" and quick.base.epochs == 4 and quick.base.subset == 8000


def test_rules_add_to_the_space_of_matching_cells_only(tmp_path):
    folder = write(tmp_path, """
[cells]
model = ["ae", "vae"]
arch = ["mlp", "conv"]
dataset = ["cifar10"]
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
[[rule]]
when = { model = "vae", arch = "conv" }
fixed.epochs = 2
space.conv_channels = { choices = [[8, 16], [8, 16, 32]] }
[[rule]]
when = { model = ["ae", "vae"], arch = "mlp" }
fixed.epochs = 3
""")
    studies = all_studies(folder)
    special = studies["s/vae/conv/cifar10"]
    assert special.searched == ("lr", "conv_channels") and special.base.epochs == 2
    assert studies["s/ae/conv/cifar10"].searched == ("lr",)
    assert studies["s/ae/conv/cifar10"].base.epochs == TrainConfig().epochs
    assert studies["s/ae/mlp/cifar10"].base.epochs == studies["s/vae/mlp/cifar10"].base.epochs == 3
    trial = optuna.create_study().ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    assert special.config(suggest(trial, special)).conv_channels in ((8, 16), (8, 16, 32))


@pytest.mark.parametrize("body,message", [
    ("[space]\nlr_max = { low = 1, high = 2 }", "'lr_max' is not a field to search; valid fields: latent_dim, hidden_dim,"),
    ("[space]\nseed = { choices = [0, 1] }", "'seed' cannot be searched"),
    ("[fixed]\nlr = 0.01\n[space]\nlr = { low = 1e-4, high = 1e-2 }", "'lr' is both fixed and searched"),
    ("[space]\nlr = { low = 0.0, high = 1e-2, log = true }", "space.lr needs low < high and low > 0 for log"),
    ("[space]\nbatch_size = { choices = [64, 'big'] }", "config field 'batch_size' expects int, got 'big'."),
    ("pruner = 'asha'", "unknown pruner 'asha'; valid pruners: hyperband, median, none."),
    ("[fixed]\nepoch = 3", "unknown config field 'epoch'"),
    ("trails = 3", "unknown key 'trails'; valid keys: cells, datasets, description"),
    ("[[rule]]\nmodel = 'vae'\nfixed.epochs = 2", "[[rule]] number 1 needs when = {...} with at least one cell field"),
    ("[[rule]]\nwhen = { modle = 'vae' }\nfixed.epochs = 2", "[[rule]] number 1 when: unknown key 'modle'; valid keys: arch, dataset, model."),
    ("[[rule]]\nwhen = { model = 'vae' }\nset.epochs = 2", "[[rule]] number 1: unknown key 'set'; valid keys: fixed, space, when."),
])
def test_a_wrong_study_file_names_its_mistake(tmp_path, body, message):
    folder = write(tmp_path, body + "\n" + HEADER)
    with pytest.raises(ConfigError, match=re.escape(message)):
        all_studies(folder)


def test_a_space_that_cannot_build_its_model_fails_before_any_trial(tmp_path):
    folder = write(tmp_path, HEADER + "[space]\nconv_channels = { choices = [[8, 16], [8, 16, 32]] }\n")
    with pytest.raises(ConfigError, match="needs image sides divisible by 8"):
        find_study("s", folder)


def test_unknown_study_lists_the_valid_names_and_a_set_of_many_asks_for_one(tmp_path):
    folder = write(tmp_path, HEADER.replace('["vae"]', '["ae", "vae"]') + SPACE)
    with pytest.raises(ConfigError, match="unknown study name 'nope'; valid study names: s/ae/conv/mnist, s/vae/conv/mnist."):
        find_study("nope", folder)
    with pytest.raises(ConfigError, match="study set 's' holds 2 studies; name one: s/ae/conv/mnist, s/vae/conv/mnist."):
        find_study("s", folder)
