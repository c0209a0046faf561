"""Training on the real MNIST files (slow; runs when AEVAE_DATA_DIR points at them)."""

import os

import pytest

from conftest import PINNED, REAL_DATA
from aevae import data
from aevae.config import TrainConfig
from aevae.tracking import MemoryTracker
from aevae.training.loop import RunOptions, train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL_DATA or not os.path.isdir(os.path.join(REAL_DATA or "", "MNIST")),
                       reason="AEVAE_DATA_DIR does not point at the real MNIST files"),
]


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_one_epoch_on_real_mnist_reaches_sane_numbers(model):
    cfg = TrainConfig(model=model, arch="mlp", dataset="mnist", epochs=1, analysis=False, **PINNED)
    result = train(cfg, data.load("mnist", REAL_DATA), MemoryTracker(), options=RunOptions(artifacts=False))
    # after one epoch an MLP autoencoder of MNIST is well below 0.03 MSE per pixel
    assert result.test["recon_mse"] < 0.03
    assert result.test["pixel_acc"] > 0.8
    assert (result.test["kl"] > 5) == (model == "vae")
