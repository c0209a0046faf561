"""Frames: per-epoch images on MLflow's image slider, from training to the report's strips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image
from conftest import PINNED
from report_store import Store, finished_metrics

from aevae import data
from aevae.bench.grid import expand, load_grid
from aevae.cli import main
from aevae.config import TrainConfig, frame_epochs, validate
from aevae.models import Traits
from aevae.resolve import resolve
from aevae.errors import ConfigError
from aevae.report import build_report, downloads
from aevae.tracking import MemoryTracker, names
from aevae.tracking.reader import StoreReader
from aevae.tracking.step_images import by_key
from aevae.training.frames import CAPTION_PIXELS, captioned, frame_inputs, prior_caption
from aevae.training.loop import train
from aevae.tune.space import find_study, load_set

STUDIES = Path(__file__).resolve().parents[1] / "studies"
SMALL = TrainConfig(epochs=2, batch_size=50, val_size=100, hidden_dim=32, latent_dim=2, analysis=False, **PINNED)
TINY_STUDY = """
trials = 1
[cells]
model = ["vae"]
arch = ["mlp"]
dataset = ["mnist"]
[fixed]
epochs = 2
val_size = 100
hidden_dim = 32
latent_dim = 4
[space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""


def load(cfg):
    return data.load(cfg.dataset, val_size=cfg.val_size)


def stored_steps(client, run_id) -> dict[str, list[int]]:
    """Steps per image key, read straight from the artifact names MLflow 3 writes
    (images/<key with ~ for />+step+<step>+timestamp+...png), not through aevae's reader."""
    steps: dict[str, list[int]] = {}
    for entry in client.list_artifacts(run_id, "images"):
        name = entry.path.rsplit("/", 1)[-1]
        if name.endswith(".png"):
            key, rest = name.split("+step+")
            steps.setdefault(key.replace("~", "/"), []).append(int(rest.split("+")[0]))
    return {key: sorted(found) for key, found in steps.items()}


def test_train_command_logs_a_frame_per_epoch_of_each_kind_on_the_image_slider(data_root, tracking_uri):
    assert main(["train", "--model", "vae", "--arch", "conv", "--dataset", "mnist", "--epochs", "5",
                 "--val-size", "100", "--conv-channels", "8,16", "--analysis", "false",
                 "--experiment", "frames"]) == 0
    client = mlflow.MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("frames").experiment_id])
    steps = stored_steps(client, run.info.run_id)
    assert steps == {names.FRAME_RECONSTRUCTIONS: [1, 2, 3, 4, 5], names.FRAME_PRIOR: [1, 2, 3, 4, 5]}
    assert run.data.tags["mlflow.loggedImages"] == "True"  # what the UI's image charts look for
    assert run.data.params["image_every"] == "1"  # the automatic interval, resolved and logged
    read = StoreReader(tracking_uri).step_images(run.info.run_id)
    assert {key: [image.step for image in images] for key, images in read.items()} == steps


def test_frames_show_the_same_inputs_every_step_and_run_and_change_no_number(data_root):
    with_frames, without = MemoryTracker(), MemoryTracker()
    cfg = dataclasses.replace(SMALL, image_every=1)
    framed = train(cfg, load(cfg), with_frames)
    plain = train(dataclasses.replace(cfg, image_every=0), load(cfg), without)
    timing = ("epoch_seconds", "images_per_sec")
    assert [{k: v for k, v in row.items() if k not in timing} for row in framed.history] == \
           [{k: v for k, v in row.items() if k not in timing} for row in plain.history]
    assert framed.test == plain.test and without.current["images"] == {}
    images = with_frames.current["images"]
    assert {key: [step for step, _ in frames] for key, frames in images.items()} == {
        names.FRAME_RECONSTRUCTIONS: [1, 2], names.FRAME_PRIOR: [1, 2], names.FRAME_LATENT: [1, 2]}
    assert all(frame.dtype == np.uint8 for frames in images.values() for _, frame in frames)

    originals = slice(CAPTION_PIXELS, CAPTION_PIXELS + 28)  # the first row of test images
    first, second = (frame[originals] for _, frame in images[names.FRAME_RECONSTRUCTIONS])
    assert np.array_equal(first, second)
    splits = load(cfg)
    traits = Traits("VAE", "MLP", "gaussian")
    inputs = [frame_inputs(resolve(dataclasses.replace(cfg, seed=seed)), splits, torch.device("cpu"), traits)
              for seed in (0, 1)]  # another run of the dataset sees the same images and noise
    assert torch.equal(inputs[0].images, inputs[1].images) and torch.equal(inputs[0].prior, inputs[1].prior)
    decoded = [frame for _, frame in images[names.FRAME_PRIOR]]
    assert not np.array_equal(decoded[0], decoded[1])  # the model moved; the noise did not


def test_the_ae_prior_frames_say_the_ae_has_no_prior(data_root):
    tracker = MemoryTracker()
    cfg = dataclasses.replace(SMALL, model="ae", epochs=1, latent_dim=4)
    train(cfg, load(cfg), tracker)
    ((step, frame),) = tracker.current["images"][names.FRAME_PRIOR]
    band = frame[:CAPTION_PIXELS]
    ae_caption, vae_caption = prior_caption(Traits("AE", "MLP", "point")), prior_caption(Traits("VAE", "MLP", "gaussian"))
    expected = captioned(np.zeros((1, frame.shape[1]), np.uint8), f"epoch 1: {ae_caption}")
    vae = captioned(np.zeros((1, frame.shape[1]), np.uint8), f"epoch 1: {vae_caption}")
    assert np.array_equal(band, expected[:CAPTION_PIXELS]) and not np.array_equal(band, vae[:CAPTION_PIXELS])
    assert ae_caption == "AE decodes of N(0, I) draws (no prior)" and vae_caption == "VAE samples (N(0, I) draws decoded)"
    assert names.FRAME_LATENT not in tracker.current["images"]  # a 4-d latent has no map


def test_every_lab_cell_logs_about_ten_frames_from_the_first_epoch_to_the_last():
    for cell in expand(load_grid("lab")):
        epochs = frame_epochs(cell.config.epochs, cell.config.image_every)
        assert 8 <= len(epochs) <= 12 and epochs[0] == 1 and epochs[-1] == cell.config.epochs, cell.key
    assert len(frame_epochs(5, resolve(TrainConfig(epochs=5)).image_every)) == 5
    assert frame_epochs(100, 10) == [1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 100]
    assert frame_epochs(7, 0) == []
    with pytest.raises(ConfigError, match="image_every must be 0"):
        validate(TrainConfig(image_every=-1))


def test_trials_log_no_frames_unless_their_study_asks(data_root, tmp_path):
    assert all(spec.base.image_every == 0 for spec in load_set(STUDIES / "lab.toml"))
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_STUDY)
    (folder / "watched.toml").write_text(TINY_STUDY.replace("[fixed]", "[fixed]\nimage_every = 1"))
    for name, expected in (("tiny", {}), ("watched", [1, 2])):
        cfg = find_study(name, folder).config({"lr": 1e-3})
        tracker = MemoryTracker()
        train(cfg, load(cfg).without_test(), tracker)
        images = tracker.current["images"]
        steps = {key: [s for s, _ in frames] for key, frames in images.items()}
        assert steps == ({} if expected == {} else {names.FRAME_RECONSTRUCTIONS: expected,
                                                    names.FRAME_PRIOR: expected})


def log_frames(store: Store, run_id: str, steps: range) -> None:
    """Frames as training logs them: one image per key and step, through MLflow's own call."""
    for step in steps:
        for key in (names.FRAME_RECONSTRUCTIONS, names.FRAME_PRIOR):
            store.client.log_image(run_id, np.full((40, 80), 20 * step, np.uint8), key=key, step=step)


def test_the_report_shows_each_pair_through_training_from_the_lowest_seed(tracking_uri, tmp_path):
    store = Store(tracking_uri)
    store.expect([(f"{m}/mlp/{d}", s, "h") for m in ("ae", "vae") for d in ("mnist", "fashion_mnist")
                  for s in range(2)])
    lowest = {}
    for model in ("ae", "vae"):
        for seed in range(2):
            run_id = store.run(f"{model}/mlp/mnist", seed, test=finished_metrics(0.01), figures=True)
            log_frames(store, run_id, range(1, 6) if seed == 0 else range(1, 10))
            lowest.setdefault(model, run_id)
            store.run(f"{model}/mlp/fashion_mnist", seed, test=finished_metrics(0.02), figures=True)
    report = build_report("lab", tmp_path / "out", tracking_uri)
    text = report.path.read_text()
    assert "](frames-mnist-mlp.png)" in text and (tmp_path / "out" / "frames-mnist-mlp.png").stat().st_size > 1000
    assert "frames-fashion_mnist-mlp.png" not in text  # those runs logged no frames
    assert text.index("](panels-mnist-mlp.png)") < text.index("](frames-mnist-mlp.png)")

    fetched = downloads.download_frames(StoreReader(tracking_uri), [lowest["ae"]], tmp_path / "fetch")
    strip = fetched[lowest["ae"]][names.FRAME_PRIOR]
    assert [step for step, _ in strip] == [1, 3, 5]  # first, middle and last of five
    assert [int(np.asarray(Image.open(path))[0, 0]) for _, path in strip] == [20, 60, 100]


def test_step_image_names_of_mlflow_3_and_2_parse_and_the_thumbnails_do_not():
    paths = ["images/frames~latent+step+3+timestamp+100+0a1b-2c.png",
             "images/frames~latent+step+3+timestamp+100+0a1b-2c+compressed.webp",
             "images/frames#latent%step%1%timestamp%50%9f9f-00.png",  # MLflow 2.x
             "images/frames~latent+step+3+timestamp+90+dead-beef.png",  # the same step, logged earlier
             "images/notes.txt"]
    (only,) = by_key(paths).values()
    assert [(i.key, i.step, i.path) for i in only] == [("frames/latent", 1, paths[2]), ("frames/latent", 3, paths[0])]
