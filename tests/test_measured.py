"""Measured execution settings (aevae.training.measured, aevae.models.fold, aevae.bench.pool):
each candidate computes what the reference computes, up to float rounding; the choice is
measured once per machine and model, cached, recorded, and overridable."""

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

from aevae.bench.pool import PoolChoice, layouts, makespan, pick_layout
from aevae.config import TrainConfig
from aevae.errors import ConfigError
from aevae.models.fold import FoldConvTranspose2d, fold_transposed_convolutions, unfold_transposed_convolutions
from aevae.numerics import Numerics
from aevae.resolve import resolve
from aevae.training import measured

FP32_UNIT_ROUNDOFF = 2.0 ** -24
SHAPE = (1, 28, 28)
# a small conv VAE: its decoder ends in a transposed convolution 8 -> 1, the foldable kind
SMALL = TrainConfig(model="vae", arch="conv", conv_channels=(4, 8), latent_dim=4, batch_size=16, precision="fp32",
                    device="cpu", compile="off")


def gamma(n: int, u: float = FP32_UNIT_ROUNDOFF) -> float:
    """Higham's gamma_n: a sum of n products computed in floating point is within gamma_n
    of the exact sum, relative to the sum of the products' magnitudes (Accuracy and
    Stability of Numerical Algorithms, section 3.1)."""
    return n * u / (1 - n * u)


LAYERS = [  # (in, out, kernel, stride, padding, bias): the decoders' last layers and others foldable
    (32, 1, 4, 2, 1, True),
    (16, 3, 4, 2, 1, False),
    (8, 2, 3, 1, 0, True),
    (5, 4, 5, 3, 2, True),
]


@pytest.mark.parametrize("c_in,c_out,kernel,stride,padding,bias", LAYERS)
def test_fold_computes_the_transposed_convolution_forward_and_backward_up_to_rounding(
        c_in, c_out, kernel, stride, padding, bias):
    """Both formulations in fp32 against the exact result (float64): each output, input
    gradient and weight gradient is a sum of products, within gamma_n of the exact sum
    relative to the sum of the products' magnitudes (the same sums over |x|, |W| and |g|,
    in float64), n being the most products one sum can hold. A wrong index (a transposed
    kernel, an output shifted by a pixel) errs by the size of the values themselves."""
    torch.manual_seed(0)
    native = nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)
    x = torch.randn(6, c_in, 9, 7)
    g = torch.randn_like(native(x))
    exact = _forward_backward(native.double(), x.double(), g.double())
    size = _forward_backward(_absolute(native), x.double().abs(), g.double().abs())
    native.float()
    folded = _forward_backward(_as_fold(native), x, g)
    plain = _forward_backward(native, x, g)
    batch, _, height, width = exact["out"].shape
    sums = {"out": c_in * math.ceil(kernel / stride) ** 2 + 1, "x": c_out * kernel * kernel,
            "weight": 6 * 9 * 7, "bias": batch * height * width}
    for name in exact:
        bound = gamma(sums[name] + 1) * size[name]  # the sum, and the rounding of its result to fp32
        for found in (folded, plain):
            assert (found[name].double() - exact[name]).abs().le(bound).all(), name
        assert folded[name].shape == plain[name].shape
    assert not torch.equal(exact["out"], torch.zeros_like(exact["out"]))


def _forward_backward(layer: nn.ConvTranspose2d, x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    layer.zero_grad()
    out = layer(x)
    out.backward(g)
    found = {"out": out.detach(), "x": x.grad, "weight": layer.weight.grad}
    if layer.bias is not None:
        found["bias"] = layer.bias.grad
    return found


def _absolute(layer: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    copy = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                              padding=layer.padding, bias=layer.bias is not None).double()
    with torch.no_grad():
        copy.weight.copy_(layer.weight.double().abs())
        if layer.bias is not None:
            copy.bias.copy_(layer.bias.double().abs())
    return copy


def _as_fold(layer: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    copy = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                              padding=layer.padding, bias=layer.bias is not None)
    copy.load_state_dict(layer.state_dict())
    assert fold_transposed_convolutions(copy) == 1
    return copy


def test_only_transposed_convolutions_to_an_images_channels_fold_and_unfold_restores_the_class():
    """64 -> 32 stays oneDNN's (faster there); the state dict is the same either way, so a
    folded model's weights load into the reference model."""
    model = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1),
                          nn.ConvTranspose2d(4, 3, 3, 1, 0, output_padding=0, dilation=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fold_transposed_convolutions(model) == 1
    assert [type(m) for m in model] == [nn.ConvTranspose2d, FoldConvTranspose2d, nn.ConvTranspose2d]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert unfold_transposed_convolutions(model) == 1
    assert [type(m) for m in model] == [nn.ConvTranspose2d] * 3


def test_a_folded_layer_called_with_an_output_size_is_the_reference_layer():
    """`output_size` picks an output padding, which the fold does not take: such a call is
    the reference layer's own, so the same kernel and the same bits."""
    torch.manual_seed(0)
    layer, x = nn.ConvTranspose2d(8, 1, 4, 2, 1), torch.rand(2, 8, 7, 7)
    expected = layer(x, output_size=[15, 15])
    assert fold_transposed_convolutions(layer) == 1
    assert torch.equal(layer(x, output_size=[15, 15]), expected)


def test_candidates_are_the_auto_fields_values_that_change_something():
    auto = resolve(dataclasses.replace(SMALL, memory_format="auto", transposed_conv="auto"))
    assert {(s.channels_last, s.fold) for s in measured.candidates(auto, SHAPE)} == {
        (False, False), (False, True), (True, False), (True, True)}
    fixed = resolve(dataclasses.replace(auto, memory_format="channels_last"))
    assert {(s.channels_last, s.fold) for s in measured.candidates(fixed, SHAPE)} == {(True, False), (True, True)}
    mlp = resolve(dataclasses.replace(auto, arch="mlp"))  # no convolution: nothing to lay out or fold
    assert [(s.channels_last, s.fold) for s in measured.candidates(mlp, SHAPE)] == [(False, False)]


def test_a_long_run_measures_once_and_later_runs_read_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path))
    cfg = resolve(dataclasses.replace(SMALL, memory_format="auto", transposed_conv="auto"))
    numerics = Numerics.of(cfg)
    first = measured.choose(cfg, SHAPE, numerics, steps=measured.MIN_MEASURED_STEPS)
    assert first.source == "measured" and first.seconds > 0
    assert set(first.step_seconds) == {s.name for s in measured.candidates(cfg, SHAPE)}
    assert first.settings.name == min(first.step_seconds, key=first.step_seconds.get)  # the fastest
    (cached,) = (tmp_path / "settings").glob("*.json")
    stored = json.loads(cached.read_text())
    assert stored["machine"]["threads"] == torch.get_num_threads()
    assert stored["machine"]["kernels"] == torch.backends.cpu.get_cpu_capability()
    again = measured.choose(cfg, SHAPE, numerics, steps=10)  # short, but measured before: the cache's choice
    assert (again.source, again.settings, again.seconds) == ("cached", first.settings, 0.0)
    assert again.step_seconds == first.step_seconds
    measured.remeasure(numerics)
    assert not cached.exists()
    short = measured.choose(cfg, SHAPE, numerics, steps=10)  # nothing cached and too short to pay for measuring
    assert (short.source, short.settings) == ("reference", measured.REFERENCE)
    assert not cached.exists()


def test_compile_is_chosen_only_when_its_compile_time_is_paid_back(tmp_path, monkeypatch):
    """The cache as a run reads it (written here, as a measurement would): eager 10 ms a
    step; compiled 6 ms after 30 s of compiling. 30 s are paid back after 7500 steps."""
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path))
    cfg = resolve(dataclasses.replace(SMALL, memory_format="contiguous", transposed_conv="native", compile="auto"))
    numerics = Numerics.of(cfg)
    if len(measured.candidates(cfg, SHAPE)) == 1:
        pytest.skip("no C++ compiler here: 'auto' leaves compile out")
    with measured.SettingsCache.for_machine(numerics) as cache:
        eager = measured.REFERENCE.name
        cache.put(measured.shape_key(cfg, SHAPE, numerics),
                  {"steps": {eager: 0.010}, "compile": {eager: {"seconds": 30.0, "step": 0.006}}})
    assert not measured.choose(cfg, SHAPE, numerics, steps=7000).settings.compile
    chosen = measured.choose(cfg, SHAPE, numerics, steps=8000)
    assert chosen.settings.compile and chosen.source == "cached"
    assert chosen.step_seconds == {eager: 0.010, "contiguous/native/compiled": 0.006}


def test_fixed_settings_are_the_configs_and_nothing_is_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path))
    cfg = resolve(dataclasses.replace(SMALL, memory_format="channels_last", transposed_conv="fold", compile="off"))
    choice = measured.choose(cfg, SHAPE, Numerics.of(cfg), steps=10 * measured.MIN_MEASURED_STEPS)
    assert (choice.source, choice.settings) == ("config", measured.Settings(True, True, False))
    assert not (tmp_path / "settings").exists()


def test_a_cache_folder_that_cannot_be_written_only_means_measuring_again(tmp_path, monkeypatch):
    """AEVAE_CACHE_DIR on a file: the run measures (or takes the reference) and goes on."""
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path / "a_file"))
    cfg = resolve(dataclasses.replace(SMALL, memory_format="auto", transposed_conv="auto"))
    numerics = Numerics.of(cfg)
    first = measured.choose(cfg, SHAPE, numerics, steps=measured.MIN_MEASURED_STEPS)
    assert first.source == "measured" and first.settings.name in first.step_seconds
    again = measured.choose(cfg, SHAPE, numerics, steps=10)  # nothing was kept
    assert (again.source, again.settings) == ("reference", measured.REFERENCE)


def test_compile_on_without_a_compiler_is_one_sentence(monkeypatch):
    monkeypatch.setattr(measured.shutil, "which", lambda name: None)
    cfg = resolve(dataclasses.replace(SMALL, compile="on"))
    with pytest.raises(ConfigError, match=r"^compile='on' needs a C\+\+ compiler on CPU .* or set compile to 'auto' "
                                          r"or 'off'\.$"):
        measured.choose(cfg, SHAPE, Numerics.of(cfg), steps=10)
    auto = resolve(dataclasses.replace(SMALL, compile="auto"))  # 'auto' leaves compile out instead
    assert not any(s.compile for s in measured.candidates(auto, SHAPE))


def test_the_pool_deals_the_longest_cells_first_to_the_least_loaded_worker():
    assert makespan([3, 1, 2], 1) == 6
    assert makespan([3, 1, 2], 3) == 3
    assert makespan([4, 3, 3, 2], 2) == 6  # 4+2 and 3+3
    assert layouts(2, 8) == [(1, 2), (2, 1)]
    assert layouts(8, 3) == [(1, 8), (2, 4), (3, 2)]
    assert layouts(4, 1) == [(1, 4)]
    # a smaller estimate wins by more than POOL_TIE; within it, the layout of more workers
    assert pick_layout({(1, 2): 800.0, (2, 1): 1000.0}) == (1, 2)
    assert pick_layout({(1, 2): 1000.0, (2, 1): 800.0}) == (2, 1)
    assert pick_layout({(1, 2): 890.0, (2, 1): 917.0}) == (2, 1)
    assert pick_layout({(1, 4): 900.0, (2, 2): 950.0, (4, 1): 1200.0}) == (2, 2)
    choice = PoolChoice(2, 1, {"1x2": 900.0, "2x1": 600.0}, {"vae/conv/1x28x28": "contiguous/fold/eager (measured)"},
                        "measured", 41.6)
    assert choice.lines() == [
        "workers: 2 x 1 thread(s) (measured now, in 42 s; the grid's training steps: 1x2 about 900 s, "
        "2x1 about 600 s)",
        "settings of vae/conv/1x28x28: contiguous/fold/eager (measured)"]


POOL_GRID = {
    "base": {"epochs": 40, "hidden_dim": 16, "latent_dim": 2, "batch_size": 256, "compile": "off",
             "precision": "fp32", "device": "cpu"},
    "axes": {"model": ["ae", "vae"], "arch": ["mlp"], "dataset": ["mnist"]},
    "seeds": [0, 1],
}


def test_auto_workers_times_each_pool_layout_once_per_machine(tmp_path, monkeypatch):
    """Four cells of two tiny models, long enough that measuring pays: each layout is timed
    with its workers really running at once (spawned processes that wait for each other),
    the estimates name every layout, the smallest wins (or a tie's most workers), and a
    second grid reads the cache."""
    from aevae.bench.grid import expand, parse_grid
    from aevae.bench.pool import choose_pool
    from aevae.machine import usable_cores

    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path))
    cells = expand(parse_grid(tmp_path / "pool.toml", POOL_GRID))
    first = choose_pool(cells)
    expected = {f"{w}x{t}" for w, t in layouts(usable_cores(), len(cells))}
    assert first.source == "measured" and set(first.estimates) == expected
    estimates = {tuple(map(int, name.split("x"))): seconds for name, seconds in first.estimates.items()}
    assert (first.workers, first.threads) == pick_layout(estimates)
    assert set(first.settings) == {"ae/mlp/1x28x28", "vae/mlp/1x28x28"}
    again = choose_pool(cells)
    assert (again.source, again.workers, again.estimates) == ("cached", first.workers, first.estimates)
    fewer = [dataclasses.replace(c, config=dataclasses.replace(c.config, epochs=1)) for c in cells[:2]]
    assert choose_pool(fewer).source in ("default", "cached")  # too short to measure: what is known, or the default
