import dataclasses

import pytest

from aevae.config import TrainConfig, config_hash, from_dict, to_dict, validate, with_overrides
from aevae.resolve import resolve
from aevae.errors import ConfigError


def test_overrides_are_coerced_from_strings():
    cfg = with_overrides(TrainConfig(), {"lr": "3e-4", "epochs": "7", "binarize": "true",
                                         "conv_channels": "16,32,64", "latent_dim": "none"})
    assert (cfg.lr, cfg.epochs, cfg.binarize, cfg.conv_channels, cfg.latent_dim) == (3e-4, 7, True, (16, 32, 64), None)


def test_unknown_field_lists_valid_fields():
    with pytest.raises(ConfigError, match="unknown config field 'learning_rate'; valid fields: model, arch"):
        with_overrides(TrainConfig(), {"learning_rate": 0.1})


@pytest.mark.parametrize("name,value", [("epochs", "ten"), ("epochs", 2.5), ("binarize", "maybe"), ("lr", True)])
def test_bad_value_type_is_one_sentence(name, value):
    with pytest.raises(ConfigError, match=f"config field '{name}' expects"):
        with_overrides(TrainConfig(), {name: value})


@pytest.mark.parametrize("field,value,valid", [
    ("model", "gan", "ae, vae"),
    ("arch", "resnet", "conv, mlp"),
    ("dataset", "svhn", "cifar10, fashion_mnist, mnist"),
])
def test_unknown_registry_names_list_the_valid_ones(field, value, valid):
    with pytest.raises(ConfigError, match=f"unknown {field} '{value}'; valid {field}s: {valid}"):
        validate(dataclasses.replace(TrainConfig(), **{field: value}))


@pytest.mark.parametrize("changes", [{"lr": 0.0}, {"beta": -1.0}, {"pixel_tol": 1.5}, {"epochs": 0},
                                     {"precision": "fp8"}, {"memory_format": "nhwc"}, {"dataset": "cifar10", "binarize": True}])
def test_out_of_range_values_are_rejected(changes):
    with pytest.raises(ConfigError):
        validate(dataclasses.replace(TrainConfig(), **changes))


def test_resolve_fills_dataset_defaults():
    mnist = resolve(TrainConfig(dataset="mnist"))
    cifar = resolve(TrainConfig(dataset="cifar10"))
    assert (mnist.latent_dim, mnist.recon_loss) == (20, "bce")
    assert (cifar.latent_dim, cifar.recon_loss) == (128, "mse")
    assert resolve(TrainConfig(latent_dim=2)).latent_dim == 2


def test_hash_is_stable_and_sensitive():
    cfg = resolve(TrainConfig())
    assert config_hash(cfg) == config_hash(from_dict(to_dict(cfg)))
    assert config_hash(cfg) != config_hash(dataclasses.replace(cfg, seed=1))


def test_logged_params_parse_back():
    # MLflow stores params as strings; the tuple comes back as "[32, 64]".
    params = {k: str(v) for k, v in to_dict(resolve(TrainConfig())).items()}
    assert from_dict(params) == resolve(TrainConfig())
