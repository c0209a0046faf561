"""A run that cannot fit in memory ends in one sentence that names the setting to lower, exit
status 2, before anything trains; in a grid its cell fails with that reason and the grid goes
on. The sizes are far beyond any machine (terabytes, petabytes), so these hold everywhere."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest

from aevae import data
from aevae.cli import main
from aevae.config import TrainConfig
from aevae.resolve import resolve
from aevae.tracking import MemoryTracker
from aevae.training import memory
from aevae.training.loop import RunOptions, train
from conftest import PINNED

SMALL = TrainConfig(epochs=1, batch_size=50, val_size=100, hidden_dim=32, latent_dim=4, analysis=False, **PINNED)
# 2e14 latent units: a weight matrix of 1e17 floats, beyond the address space of a 64-bit CPU
# (2^48 bytes), so its allocation fails on any machine, whatever the system's overcommit.
BEYOND_ADDRESSES = 10**14


def test_the_size_of_a_run_grows_with_its_settings():
    small = memory.size_of(resolve(SMALL), (1, 28, 28))
    wide = memory.size_of(resolve(dataclasses.replace(SMALL, hidden_dim=64)), (1, 28, 28))
    big_batch = memory.size_of(resolve(dataclasses.replace(SMALL, batch_size=100)), (1, 28, 28))
    # the MLP VAE's weights: 784*32 + 32 + 32*8 + 8 encoder (a mean and a log-variance per
    # latent unit), 4*32 + 32 + 32*784 + 784 decoder; 4 copies of 4 bytes each
    assert small.state == 16 * (784 * 32 + 32 + 32 * 8 + 8 + 4 * 32 + 32 + 32 * 784 + 784)
    assert wide.state > small.state and wide.activations > small.activations
    assert big_batch.state == small.state and big_batch.activations == 2 * small.activations


def test_a_latent_beyond_the_machine_is_one_sentence_and_exit_2(data_root, tracking_uri, capsys):
    assert main(["train", "--latent-dim", "1000000000", "--epochs", "1", "--val-size", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("aevae train: error: this run needs about ")
    assert err.endswith("lower latent_dim (now 1000000000, default 20).")
    assert mlflow.MlflowClient(tracking_uri).search_experiments(filter_string="name = 'aevae'") == []


def test_a_batch_beyond_the_machine_names_the_batch_size(data_root, tracking_uri, capsys):
    assert main(["train", "--arch", "conv", "--batch-size", "100000000", "--epochs", "1", "--val-size", "100"]) == 2
    assert capsys.readouterr().err.strip().endswith("lower batch_size (now 100000000, default 128).")


def test_an_allocation_that_fails_while_training_ends_the_run_with_the_sentence(data_root, monkeypatch):
    # what check_fits cannot foresee: here, because it is told every byte is free
    monkeypatch.setattr(memory, "free_bytes", lambda device: 2**80)
    cfg = dataclasses.replace(SMALL, latent_dim=BEYOND_ADDRESSES)
    tracker = MemoryTracker()
    with pytest.raises(memory.ResourceError, match=r"ran out of memory on cpu .* lower latent_dim \(now 1"):
        train(cfg, data.load("mnist", val_size=100), tracker, options=RunOptions(artifacts=False))


GRID = """
[base]
epochs = 1
val_size = 100
hidden_dim = 32
analysis = false
precision = "fp32"
[axes]
model = ["ae"]
latent_dim = [4, 1000000000]
"""


def test_in_a_grid_the_cell_that_cannot_fit_fails_with_the_reason_and_the_grid_goes_on(data_root, tracking_uri,
                                                                                        tmp_path, capsys):
    grid = tmp_path / "toobig.toml"
    grid.write_text(GRID)
    assert main(["bench", str(grid), "--no-artifacts", "--results-dir", str(tmp_path / "results")]) == 1
    out = capsys.readouterr().out
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("bench/toobig")
    states = {r.data.tags["cell"]: r for r in client.search_runs([experiment.experiment_id])}
    assert states["ae/mlp/mnist/latent_dim=4"].info.status == "FINISHED"
    failed = states["ae/mlp/mnist/latent_dim=1000000000"]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure_reason"].startswith("ResourceError: this run needs about ")
    assert "lower latent_dim (now 1000000000, default 20)." in out and "unexpected error" not in out
