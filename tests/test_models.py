import itertools

import pytest
import torch

from aevae.config import TrainConfig
from aevae.resolve import resolve
from aevae.data import DATASETS
from aevae.errors import ConfigError
from aevae.models import ARCHS, MODELS, build

# Every registered model x arch x dataset, each with the dataset's own shape, latent size
# and reconstruction loss (what `resolve` fills in): a new entry in any registry is tested.
CASES = list(itertools.product(MODELS, ARCHS, DATASETS))


def make(model, arch, dataset, **changes):
    cfg = resolve(TrainConfig(model=model, arch=arch, dataset=dataset, **changes))
    torch.manual_seed(0)
    return cfg, build(cfg, DATASETS[dataset].shape)


@pytest.mark.parametrize("model,arch,dataset", CASES)
def test_shapes_loss_backward_and_step(model, arch, dataset):
    cfg, net = make(model, arch, dataset)
    x = torch.rand(8, *DATASETS[dataset].shape)
    assert net(x).shape == x.shape
    assert 0 <= net(x).min() and net(x).max() <= 1
    mean, _ = net.encode(x)
    assert mean.shape == (8, cfg.latent_dim)
    parts = net.loss(x)
    assert all(torch.isfinite(p) for p in parts)
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    parts.total.backward()
    assert all(p.grad is not None for p in net.parameters())
    optimizer.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, net.parameters())]
    assert all(changed)


@pytest.mark.parametrize("arch", ARCHS)
def test_two_dimensional_latent(arch):
    _, net = make("vae", arch, "mnist", latent_dim=2)
    assert net.encode(torch.rand(4, 1, 28, 28))[0].shape == (4, 2)


def test_ae_has_no_kl_and_vae_total_weighs_kl_by_beta():
    x = torch.rand(16, 1, 28, 28)
    _, ae = make("ae", "mlp", "mnist")
    assert ae.loss(x).kl.item() == 0.0
    _, vae = make("vae", "mlp", "mnist", beta=0.0)
    parts = vae.loss(x)
    assert parts.kl.item() > 0
    assert parts.total.item() == pytest.approx(parts.recon.item())
    vae.beta = 2.0
    torch.manual_seed(1)
    parts = vae.loss(x)
    assert parts.total.item() == pytest.approx(parts.recon.item() + 2.0 * parts.kl.item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["bce", "mse"])
def test_recon_term_is_summed_per_image_and_averaged_over_the_batch(kind):
    x = torch.rand(4, 1, 28, 28)
    _, net = make("ae", "mlp", "mnist", recon_loss=kind)
    logits = net.decode(net.encode(x)[0])
    if kind == "bce":
        per_pixel = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - x) ** 2
    expected = per_pixel.reshape(4, -1).sum(1).mean()
    assert net.loss(x).recon.item() == pytest.approx(expected.item(), rel=1e-4)


def test_too_many_conv_layers_is_a_clear_error():
    with pytest.raises(ConfigError, match="needs image sides divisible by 8, and 28x28 is not"):
        make("ae", "conv", "mnist", conv_channels=(8, 16, 32))
    _, net = make("ae", "conv", "cifar10", conv_channels=(8, 16, 32))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("model", MODELS)
def test_the_loss_of_a_given_code_is_the_loss(model):
    """Evaluation encodes each batch once and hands the code (and, for the AE, the decode of
    its mean) to `loss_of_code`; that must be the training loss, sampling noise included."""
    _, net = make(model, "conv", "mnist")
    net.eval()
    x = torch.rand(8, 1, 28, 28)
    torch.manual_seed(1)
    expected = net.loss(x)
    mean, logvar = net.encode(x)
    torch.manual_seed(1)
    given = net.loss_of_code(x, mean, logvar, net.decode(mean))
    for got, want in zip(given, expected):
        torch.testing.assert_close(got, want)
