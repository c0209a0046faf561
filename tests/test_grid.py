import warnings
from pathlib import Path

import pytest

from aevae.errors import ConfigError
from aevae.bench.grid import expand, format_value, load_grid, parse_grid, select


def grid_file(tmp_path, text: str, name: str = "g"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_lab_grid_is_12_cells_by_3_seeds_on_the_lab_budget():
    cells = expand(load_grid("lab"))
    assert len(cells) == 36 and len({c.config_hash for c in cells}) == 36
    assert len({c.key for c in cells}) == 12 and {c.seed for c in cells} == {0, 1, 2}
    by_key = {(c.key, c.seed): c.config for c in cells}
    assert by_key[("ae/conv/cifar10", 1)].epochs == 10
    assert by_key[("vae/mlp/fashion_mnist", 2)].epochs == 15
    assert all(c.config.lr == 1e-3 for c in cells)
    assert by_key[("vae/mlp/cifar10", 0)].latent_dim == 128  # resolved, as train logs it


def test_smoke_and_beta_grids():
    smoke = expand(load_grid("smoke"))
    assert len(smoke) == 12 and all(c.config.subset and c.config.epochs <= 2 for c in smoke)
    beta = expand(load_grid("beta"))
    assert len(beta) == 24
    keys = {c.key for c in beta}
    assert "vae/mlp/mnist/beta=0.5" in keys and "vae/mlp/fashion_mnist/beta=0" in keys
    assert {c.config.beta for c in beta} == {0.0, 0.1, 0.5, 1.0, 2.0, 4.0}
    assert load_grid("beta").axes_json()["seed"] == [0, 1]


RULES = """
seeds = [3]
[axes]
dataset = ["mnist", "fashion_mnist", "cifar10"]
[[rule]]
when = { dataset = ["mnist", "fashion_mnist"] }
set = { epochs = 4, hidden_dim = 32 }
[[rule]]
when = { epochs = 4 }
set = { lr = 0.01 }
"""


def test_rules_match_lists_and_apply_in_order(tmp_path):
    grid = load_grid(str(grid_file(tmp_path, RULES)))
    cfgs = {c.key: c.config for c in expand(grid)}
    assert cfgs["vae/mlp/mnist"].epochs == 4 and cfgs["vae/mlp/mnist"].lr == 0.01
    assert cfgs["vae/mlp/cifar10"].epochs == 10 and cfgs["vae/mlp/cifar10"].lr == 1e-3
    assert grid.name == "g" and all(c.seed == 3 for c in expand(grid))


def test_the_older_when_spelling_is_refused_with_how_to_rewrite_it(tmp_path):
    old = grid_file(tmp_path, """
seeds = [3]
[axes]
dataset = ["mnist", "fashion_mnist", "cifar10"]

[[when]]
dataset = ["mnist", "fashion_mnist"]
set = { epochs = 4, hidden_dim = 32 }
""", name="old")
    with pytest.raises(ConfigError) as info:
        load_grid(str(old))
    assert str(info.value) == (f"{old}: [[when]] tables are no longer read; write each as [[rule]] with the fields "
                               f"to match in when = {{...}} and the fields to give in set = {{...}}, e.g. when = "
                               f"{{ model = \"ae\" }} and set = {{ epochs = 10 }}.")


def test_the_repo_grids_use_the_current_spelling():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("lab", "smoke", "beta"):
            load_grid(name)


@pytest.mark.parametrize("text,message", [
    ("colour = 1", "unknown key 'colour'; valid keys: description, seeds, base, axes, rule, models, archs, datasets."),
    ("[axes]\nbetta = [1.0]", "[axes]: unknown config field 'betta'; valid fields: model, arch,"),
    ("[axes]\nepochs = [1, 'ten']", "[axes]: config field 'epochs' expects int, got 'ten'."),
    ("[axes]\nmodel = ['ae', 'gan']", "unknown model 'gan'; valid models: ae, vae, or a reference"),
    ("[base]\nlr = -1.0", "lr must be positive."),
    ("[axes]\nbeta = []", "[axes] beta must be a non-empty list of values."),
    ("[axes]\nbeta = [1.0, 1]", "[axes] beta lists a value twice."),
    ("[base]\nseed = 1", "[base] sets 'seed'; list the seeds in seeds = [...] instead."),
    ("seeds = []", "seeds must be a non-empty list of integers"),
    ("[base]\nbeta = 1.0\n[axes]\nbeta = [2.0]", "'beta' is both in [base] and in [axes]; keep one."),
    ("[axes]\nbeta = [0.0, 1.0]\n[[rule]]\nwhen = { model = 'vae' }\nset = { beta = 2.0 }",
     "[[rule]] number 1 sets 'beta', which is an axis"),
    ("[[rule]]\nwhen = {}\nset = { epochs = 2 }", "[[rule]] number 1 needs when = {...} with at least one field"),
    ("[[rule]]\nmodel = 'ae'\nset = { epochs = 2 }", "[[rule]] number 1 needs when = {...}"),
    ("[[rule]]\nwhen = { modle = 'ae' }\nset = { epochs = 2 }",
     "[[rule]] number 1 when: unknown config field 'modle'"),
    ("[rule]\nwhen = { model = 'ae' }\nset = { epochs = 2 }", "write each rule as a [[rule]] table"),
    ("[[rule]]\nwhen = { model = 'ae' }\nset = { epochs = 2 }\n[[when]]\nmodel = 'vae'\nset = { epochs = 3 }",
     "[[when]] tables are no longer read; write each as [[rule]]"),
    ("[axes\nmodel = 1", "is not valid TOML"),
])
def test_grid_errors_name_the_file_and_what_is_valid(tmp_path, text, message):
    path = grid_file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        expand(load_grid(str(path)))
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_unknown_grid_name_lists_the_grids():
    with pytest.raises(ConfigError, match=r"unknown grid 'labb'; valid grids: beta, lab, literature, smoke \("):
        load_grid("labb")
    with pytest.raises(ConfigError, match=r"unknown grid 'references'"):  # the report's data, not a grid
        load_grid("references")


def test_only_filters_cells():
    cells = expand(load_grid("lab"))
    mnist_family = select(cells, ["dataset=mnist", "dataset=fashion_mnist"])
    assert len(mnist_family) == 24 and {c.config.dataset for c in mnist_family} == {"mnist", "fashion_mnist"}
    one = select(cells, ["dataset=mnist", "model=vae", "arch=conv", "seed=2"])
    assert [c.run_name for c in one] == ["vae/conv/mnist/s2"]
    with pytest.raises(ConfigError, match=r"--only dataset=svhn matches no cell of the grid; its values "
                                          r"of dataset: cifar10, fashion_mnist, mnist\."):
        select(cells, ["dataset=svhn"])
    with pytest.raises(ConfigError, match="--only expects KEY=VALUE"):
        select(cells, ["mnist"])
    with pytest.raises(ConfigError, match="unknown config field 'colour'"):
        select(cells, ["colour=red"])


def test_cell_keys_read_well():
    assert [format_value(v) for v in (0.0, 0.1, 4.0, 1e-30, (8, 16), "bce")] == ["0", "0.1", "4", "1e-30", "8,16", "bce"]
    grid = parse_grid(Path("k.toml"), {"axes": {"latent_dim": [2, 8], "model": ["ae"]}})
    assert [c.key for c in expand(grid)] == ["ae/mlp/mnist/latent_dim=2", "ae/mlp/mnist/latent_dim=8"]


def test_a_pool_takes_the_longest_cells_first():
    from aevae.bench.run import longest_first

    cells = select(expand(load_grid("lab")), ["seed=0"])
    order = [c.key for c in longest_first(cells)]
    assert order[:2] == ["vae/conv/cifar10", "ae/conv/cifar10"]  # 15 and 10 epochs of 32x32x3
    assert order.index("vae/conv/mnist") < order.index("ae/conv/mnist") < order.index("vae/mlp/mnist")
    assert set(order[-6:]) == {f"{m}/mlp/{d}" for m in ("ae", "vae") for d in ("mnist", "fashion_mnist", "cifar10")}
