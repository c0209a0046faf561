"""Datasets of the user's (README: Bring your own data): .npz files and image folders, read
into the built-ins' uint8 arrays, with what the built-ins have inferred from the data, and
every kind of bad data refused in one sentence that names the file, before anything trains."""

from __future__ import annotations

import hashlib
import runpy
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import PINNED, write_image_folder, write_npz
from PIL import Image

from aevae import data
from aevae.bench.grid import expand, load_grid
from aevae.cli import main
from aevae.config import TrainConfig, with_overrides
from aevae.data import files
from aevae.errors import ConfigError, DataError
from aevae.resolve import resolve
from aevae.tracking import MemoryTracker, names
from aevae.training.loop import train
from aevae.tune.space import load_set

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUICK = dict(epochs=1, batch_size=32, hidden_dim=16, analysis=False, **PINNED)


def mapped(name: str, path: Path) -> tuple[tuple[str, str, str], ...]:
    return (("dataset", name, str(path)),)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_npz_file_is_a_dataset_with_what_the_builtins_have(tmp_path):
    path = write_npz(tmp_path / "strokes.npz", 300, 100)
    spec = data.dataset_spec("strokes", mapped("strokes", path))
    assert (spec.name, spec.title, spec.shape, spec.classes) == ("strokes", "strokes", (1, 28, 28), tuple("0123456789"))
    assert (spec.default_latent, spec.default_recon_loss, spec.binary_ok, spec.train_images) == (20, "bce", True, 300)
    assert spec.digest == sha256(path) and spec.source("ignored") == str(path)
    splits = data.load("strokes", val_size=50, mapped=mapped("strokes", path))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (250, 50, 100)
    assert splits.train.images.dtype == torch.uint8 and splits.source == str(path)
    with np.load(path) as held:  # the validation split is held out of the training images as the built-ins'
        order = torch.randperm(300, generator=torch.Generator().manual_seed(data.SPLIT_SEED)).numpy()
        assert np.array_equal(splits.val.images[:, 0].numpy(), held["x_train"][order[:50]])
        assert np.array_equal(splits.test.labels.numpy(), held["y_test"])


def test_colour_images_take_cifars_defaults_and_a_grid_may_call_the_file_otherwise(tmp_path):
    path = write_npz(tmp_path / "colour.npz", 60, 20, shape=(3, 32, 32))
    spec = data.dataset_spec("mine", mapped("mine", path))
    assert (spec.name, spec.title, spec.shape) == ("mine", "colour", (3, 32, 32))
    assert (spec.default_latent, spec.default_recon_loss, spec.binary_ok) == (128, "mse", False)


def test_without_labels_one_class_and_with_class_names_those(tmp_path):
    unlabelled = write_npz(tmp_path / "plain.npz", 40, 10, labelled=False)
    spec = data.dataset_spec("plain", mapped("plain", unlabelled))
    assert spec.classes == ("0",)
    assert set(data.read("plain", mapped=mapped("plain", unlabelled))[1]) == {0}
    names_given = write_npz(tmp_path / "named.npz", 40, 10, class_names=np.array([f"c{i}" for i in range(12)]))
    assert data.dataset_spec("named", mapped("named", names_given)).classes == tuple(f"c{i}" for i in range(12))


def test_binarization_is_offered_where_most_pixels_are_near_black_or_white(tmp_path):
    # the rule: at least half of the pixels within 10% of 0 or 1 (25 and 230 are, 26 and 229 are not)
    assert files.near_binary_share(np.array([0, 25, 26, 128, 229, 230, 255, 255], np.uint8)) == 0.625
    mnist_like = data.dataset_spec("strokes", mapped("strokes", write_npz(tmp_path / "strokes.npz", 100, 10)))
    noise = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    grey = tmp_path / "noise.npz"
    np.savez(grey, x_train=noise, x_test=noise[:10])
    assert mnist_like.binary_ok and not data.dataset_spec("noise", mapped("noise", grey)).binary_ok
    cfg = with_overrides(TrainConfig(), {"dataset": str(grey), "binarize": True})
    with pytest.raises(ConfigError, match="binarize applies to near-binary grey images"):
        resolve(cfg)


def test_an_image_folder_is_decoded_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_image_folder(tmp_path / "shapes")
    spec = data.dataset_spec("shapes", mapped("shapes", folder))
    assert (spec.shape, spec.classes, spec.default_recon_loss, spec.train_images) == (
        (1, 12, 12), ("circle", "square", "triangle"), "bce", 30)
    assert spec.source("") == str(folder)
    train_x, train_y, test_x, test_y = spec.arrays("")
    assert train_x.shape == (30, 1, 12, 12) and list(test_y) == [0] * 4 + [1] * 4 + [2] * 4
    first = np.asarray(Image.open(folder / "train" / "square" / "002.png"))
    assert np.array_equal(train_x[12, 0], first) and train_y[12] == 1
    cached = list((tmp_path / "cache" / "folders").glob("shapes-*.npz"))
    assert [p.name for p in cached] == [f"shapes-{spec.digest[:16]}.npz"]
    with np.load(cached[0]) as held:
        assert np.array_equal(held["x_train"], train_x)
    (folder / "train" / "circle" / "000.png").unlink()  # another version of the folder: read again
    again = data.dataset_spec("shapes", mapped("shapes", folder))
    assert again.digest != spec.digest and again.train_images == 29


def test_a_folder_with_any_colour_image_is_read_as_rgb(tmp_path):
    folder = write_image_folder(tmp_path / "photos", shape=(3, 16, 16), suffix=".jpg")
    write_image_folder(folder, shape=(1, 16, 16), per_class=(2, 1), classes=("circle",), seed=1)
    spec = data.dataset_spec("photos", mapped("photos", folder))
    assert (spec.shape, spec.default_recon_loss, spec.binary_ok) == ((3, 16, 16), "mse", False)


def test_the_digest_covers_the_folders_files_and_their_names(tmp_path):
    folder = write_image_folder(tmp_path / "shapes", per_class=(1, 1), classes=("a",))
    expected = hashlib.sha256()
    for relative in ("train/a/000.png", "test/a/000.png"):
        content = (folder / relative).read_bytes()
        expected.update(f"{relative}\0{len(content)}\0".encode() + content)
    assert data.dataset_spec("shapes", mapped("shapes", folder)).digest == expected.hexdigest()


def bad_npz(tmp_path: Path, **arrays) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


GOOD = np.zeros((4, 8, 8), np.uint8)
LABELS = np.zeros(4, np.uint8)


@pytest.mark.parametrize("arrays, sentence", [
    (dict(x_train=GOOD.astype(np.float32) + np.eye(8, dtype=np.float32), x_test=GOOD),
     "{p}: x_train is float32 with values from 0 to 1, not uint8 0 to 255: save (x * 255).round().astype(np.uint8)."),
    (dict(x_train=GOOD.astype(np.int64) + 200, x_test=GOOD),
     "{p}: x_train is int64, not uint8: its values lie in 0 to 255, so save x.astype(np.uint8)."),
    (dict(x_train=GOOD, x_test=np.full((4, 8, 8), 700, np.int16) - np.eye(8, dtype=np.int16) * 703),
     "{p}: x_test is int16 with values from -3 to 700, outside uint8's 0 to 255: scale the pixels to 0 to 255 and "
     "save them as uint8."),
    (dict(x_train=GOOD, y_train=LABELS[:3], x_test=GOOD, y_test=LABELS),
     "{p} holds 4 images in x_train but 3 labels in y_train: save one label per image."),
    (dict(x_train=GOOD, y_train=LABELS),
     "{p} has no x_test array (it holds x_train, y_train): save the test images as x_test, with x_train, y_train, "
     "x_test and y_test (README: Bring your own data)."),
    (dict(x_train=GOOD, y_train=LABELS, x_test=GOOD),
     "{p} has y_train but no y_test: save labels for both splits, or for neither."),
    (dict(x_train=np.zeros((4, 3, 8, 8), np.uint8), x_test=GOOD),
     "{p}: x_train has shape (4, 3, 8, 8), not [N,H,W] or [N,H,W,C] with 1 or 3 channels last: save grey images as "
     "[N,H,W] and colour ones as [N,H,W,3] (x.transpose(0, 2, 3, 1) turns [N,C,H,W] into that)."),
    (dict(x_train=GOOD, x_test=np.zeros((4, 9, 8), np.uint8)),
     "{p}: x_train's images are 8x8 but x_test's are 9x8: save both splits at one size."),
    (dict(x_train=GOOD, y_train=LABELS - 1.0, x_test=GOOD, y_test=LABELS),
     "{p}: y_train is float64 of shape (4,), not one class number per image: save the labels as integers 0 to K-1, "
     "shape [N]."),
    (dict(x_train=GOOD, y_train=LABELS.astype(np.int8) - 1, x_test=GOOD, y_test=LABELS),
     "{p}: y_train holds the label -1: labels are class numbers 0 to K-1."),
    (dict(x_train=GOOD, x_test=GOOD[:0]),
     "{p}: x_test holds no images: save at least one image in each split."),
    (dict(x_train=GOOD, y_train=LABELS + 2, x_test=GOOD, y_test=LABELS, class_names=np.array(["a", "b"])),
     "{p}: class_names must be a list of 3 or more names (strings), one per label from 0 to 2; it holds <U1 of "
     "shape (2,)."),
], ids=["float", "int64", "range", "counts", "no-test", "one-split-labelled", "channels-first", "sizes",
        "float-labels", "negative-label", "empty-test", "class-names"])
def test_bad_npz_files_are_one_sentence(tmp_path, arrays, sentence):
    path = bad_npz(tmp_path, **arrays)
    with pytest.raises(DataError) as caught:
        data.dataset_spec("bad", mapped("bad", path))
    assert str(caught.value) == sentence.format(p=path)


def test_a_file_that_is_not_an_npz_is_one_sentence(tmp_path):
    for content in (b"x_train,y_train\n1,2\n", np.lib.format.magic(1, 0)):
        path = tmp_path / "table.npz"
        path.write_bytes(content)
        with pytest.raises(DataError) as caught:
            data.dataset_spec("table", mapped("table", path))
        assert str(caught.value) == (
            f"{path} is not an .npz file (it is no zip archive, which numpy.savez writes): write it with "
            f"numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...), which takes Keras's names.")
    with pytest.raises(DataError) as caught:
        data.dataset_spec("missing", mapped("missing", Path("data/missing.npz")))
    assert str(caught.value) == ("the dataset file data/missing.npz does not exist: give the path of an .npz file "
                                 "or of an image folder (in a grid or study file, from that file's folder).")


def test_bad_image_folders_are_one_sentence(tmp_path):
    def refused(folder: Path) -> str:
        with pytest.raises(DataError) as caught:
            data.dataset_spec("shapes", mapped("shapes", folder))
        return str(caught.value)

    folder = write_image_folder(tmp_path / "sizes", per_class=(2, 1))
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(folder / "train" / "square" / "001.png")
    assert refused(folder) == (f"{folder}/train/square/001.png is 10x12 pixels but {folder}/train/circle/000.png "
                               f"is 12x12: give every image of the folder one size.")
    folder = write_image_folder(tmp_path / "empty", per_class=(2, 1))
    (folder / "train" / "fox").mkdir()
    (folder / "train" / "fox" / "notes.txt").write_text("no images here")
    assert refused(folder) == (f"{folder}/train/fox holds no images (.png, .jpg, .jpeg): add its images, or "
                               f"remove the folder.")
    folder = write_image_folder(tmp_path / "untested", per_class=(2, 1))
    for path in (folder / "test").rglob("*.png"):
        path.unlink()
    for path in sorted((folder / "test").iterdir()):
        path.rmdir()
    (folder / "test").rmdir()
    assert refused(folder) == (f"{folder} has no test/ folder: put the images in train/<class>/ and test/<class>/ "
                               f"(README: Bring your own data).")
    folder = write_image_folder(tmp_path / "flat", per_class=(2, 2))
    (folder / "test" / "pig").mkdir()
    (folder / "test" / "circle" / "000.png").rename(folder / "test" / "pig" / "000.png")
    assert refused(folder) == (f"{folder}/test/pig has no train/pig beside it: name the test split's class folders "
                               f"as the training split's.")
    folder = tmp_path / "unsorted"
    (folder / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(folder / "train" / "000.png")
    assert refused(folder) == (f"{folder}/train holds no class folders: put each class's images in "
                               f"train/<class>/, one folder per class.")
    folder = write_image_folder(tmp_path / "broken", per_class=(2, 1))
    (folder / "train" / "circle" / "001.png").write_bytes(b"not a png")
    assert refused(folder) == (f"{folder}/train/circle/001.png is not an image Pillow can read "
                               f"(UnidentifiedImageError): replace or remove it.")


def test_a_small_dataset_asks_for_a_smaller_validation_split(tmp_path):
    path = write_npz(tmp_path / "few.npz", 300, 20)
    with pytest.raises(ConfigError) as caught:
        resolve(with_overrides(TrainConfig(), {"dataset": str(path)}))
    assert str(caught.value) == ("val_size 5000 leaves no training images out of the 300 of 'few': set val_size "
                                 "below that, e.g. val_size = 30.")


def test_runs_on_8x8_and_colour_images_log_figures_frames_and_the_files_digest(tmp_path):
    path = write_npz(tmp_path / "tiny.npz", 200, 40, shape=(1, 8, 8))
    for dataset, arch in ((path, "conv"), (write_image_folder(tmp_path / "rgb", shape=(3, 12, 12)), "mlp")):
        cfg = resolve(with_overrides(TrainConfig(**{**QUICK, "analysis": True}), {
            "dataset": str(dataset), "arch": arch, "conv_channels": "8,16", "val_size": 8, "model": "vae",
            "frechet_samples": 20, "nll_samples": 2, "nll_images": 4, "tsne_points": 0}))
        splits = data.load(cfg.dataset, val_size=cfg.val_size, mapped=cfg.plugins)
        tracker = MemoryTracker()
        train(cfg, splits, tracker)
        run = tracker.current
        assert run["status"] == "FINISHED"
        assert run["tags"][names.DATASET_DIGEST] == splits.spec.digest and len(splits.spec.digest) == 64
        assert run["tags"][names.DATASET_TITLE] == Path(dataset).stem
        assert {(i.name, i.context, i.source) for i in run["inputs"]} == {
            (cfg.dataset, context, str(dataset)) for context in ("train", "validation", "test")}
        assert "figures/reconstructions.png" in run["artifacts"] and "frames/reconstructions" in run["images"]
    assert path.name == "tiny.npz" and sha256(path) == data.dataset_spec(
        "tiny", mapped("tiny", path)).digest


def test_train_takes_a_file_as_the_dataset(tmp_path, tracking_uri, capsys):
    path = write_npz(tmp_path / "strokes.npz", 120, 30)
    assert main(["train", "--dataset", str(path), "--epochs", "1", "--val-size", "20", "--hidden-dim", "16",
                 "--analysis", "false", "--no-artifacts", "--no-system-metrics", "--device", "cpu"]) == 0
    run = mlflow.MlflowClient(tracking_uri).search_runs(
        [mlflow.MlflowClient(tracking_uri).get_experiment_by_name("aevae").experiment_id])[0]
    assert run.data.tags["dataset"] == "strokes" and run.data.tags[names.DATASET_DIGEST] == sha256(path)
    assert run.data.params["latent_dim"] == "20" and run.data.params["recon_loss"] == "bce"
    bad = bad_npz(tmp_path, x_train=GOOD, x_test=GOOD.astype(np.float64) + 3)
    assert main(["train", "--dataset", str(bad), "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"aevae train: error: {bad}: x_test is float64, not uint8: its values lie in 0 to 255, so save "
        f"x.astype(np.uint8).")


def grid_text(datasets: str, axes: str = 'model = ["ae"]\narch = ["mlp"]') -> str:
    return f"""
[datasets]
{datasets}
[base]
epochs = 1
val_size = 20
hidden_dim = 16
analysis = false
[axes]
{axes}
"""


def test_a_grid_names_files_with_a_title_and_class_names(tmp_path):
    path = write_npz(tmp_path / "strokes.npz", 100, 20)
    folder = write_image_folder(tmp_path / "shapes", per_class=(12, 2))
    grid = tmp_path / "mine.toml"
    grid.write_text(grid_text(f'strokes = {{ path = "{path}", title = "Strokes" }}\n'
                              f'shapes = {{ path = "{folder}", classes = ["o", "[]", "^"] }}',
                              'dataset = ["strokes", "shapes"]'))
    cells = {c.key: c for c in expand(load_grid(str(grid)))}
    assert cells["vae/mlp/strokes"].labels.title == "Strokes"
    assert cells["vae/mlp/shapes"].config.plugins == (("dataset", "shapes", str(folder)),)
    splits = data.load("shapes", val_size=20, mapped=cells["vae/mlp/shapes"].config.plugins)
    labels = cells["vae/mlp/shapes"].labels
    named = data.relabelled(splits, labels.title, labels.classes)
    assert (named.spec.title, named.spec.classes) == ("shapes", ("o", "[]", "^"))
    grid.write_text(grid_text(f'strokes = {{ path = "{path}", classes = ["a", "b"] }}', 'dataset = ["strokes"]'))
    with pytest.raises(DataError) as caught:
        expand(load_grid(str(grid)))
    assert str(caught.value) == (f"{grid}: the grid names 2 classes of the dataset {path}, whose labels make 10 "
                                 f"(0 to 9): name 10 classes, in the order of their labels, or leave classes out.")
    grid.write_text(grid_text(f'mnist = "{path}"', 'dataset = ["mnist"]'))
    with pytest.raises(ConfigError) as caught:
        load_grid(str(grid))
    assert str(caught.value) == (f"{grid}: [datasets] mnist is the name of a built-in dataset; call yours something "
                                 f"else, e.g. mnist_own.")


def test_a_grid_naming_bad_data_trains_nothing(tmp_path, tracking_uri, capsys):
    bad = bad_npz(tmp_path, x_train=GOOD, y_train=LABELS[:3], x_test=GOOD, y_test=LABELS)
    grid = tmp_path / "baddata.toml"
    grid.write_text(grid_text(f'bad = "{bad}"', 'dataset = ["bad"]'))
    assert main(["bench", str(grid)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"aevae bench: error: {bad} holds 4 images in x_train but 3 labels in y_train: save one label per image.")
    assert mlflow.MlflowClient(tracking_uri).get_experiment_by_name("bench/baddata") is None


def test_a_study_file_names_a_dataset_file(tmp_path):
    path = write_npz(tmp_path / "strokes.npz", 100, 20)
    study = tmp_path / "own.toml"
    study.write_text(f"""
trials = 2
[datasets]
strokes = "{path}"
[cells]
model = ["vae"]
arch = ["conv"]
dataset = ["strokes"]
[fixed]
val_size = 20
[space]
lr = {{ low = 1e-4, high = 1e-2, log = true }}
""")
    (spec,) = load_set(study)
    assert spec.name == "own/vae/conv/strokes" and spec.base.plugins == (("dataset", "strokes", str(path)),)
    assert spec.config({"lr": 1e-3}).latent_dim == 20


def test_the_example_script_writes_scikit_learns_digits(tmp_path):
    out = tmp_path / "digits.npz"
    namespace = runpy.run_path(str(EXAMPLES / "data" / "make_digits.py"))
    namespace["main"](out)
    spec = data.dataset_spec("digits", mapped("digits", out))
    assert (spec.shape, spec.classes, spec.train_images, spec.binary_ok) == ((1, 8, 8), tuple("0123456789"), 1440, True)


def grid_runs(tracking_uri: str, grid: str) -> list:
    client = mlflow.MlflowClient(tracking_uri)
    return client.search_runs([client.get_experiment_by_name(f"bench/{grid}").experiment_id], max_results=100)


def test_the_example_grid_runs_files_beside_mnist_through_bench_report_and_compare(data_root, tracking_uri,
                                                                                    tmp_path, capsys):
    # as a user would, from the checkout's root: the example's script, an image folder of their
    # own, the example grid with it added (its paths are taken from the grid file's folder)
    runpy.run_path(str(EXAMPLES / "data" / "make_digits.py"))["main"](Path("examples/data/digits.npz"))
    write_image_folder(Path("shapes"), per_class=(100, 20))
    grid = (EXAMPLES / "digits.toml").read_text().replace(
        'dataset = ["mnist", "digits"]', 'dataset = ["mnist", "digits", "shapes"]') + (
        '\n[datasets.shapes]\npath = "../shapes"\ntitle = "Shapes"\nclasses = ["o", "[]", "^"]\n')
    Path("examples/digits.toml").write_text(grid)
    quick = ["--no-artifacts", "--no-system-metrics"]
    assert main(["bench", "examples/digits.toml", "--label", "a", "--only", "arch=mlp", *quick]) == 0
    assert main(["bench", "examples/digits.toml", "--label", "a", "--only", "arch=conv", "--only", "dataset=digits",
                 *quick]) == 0  # conv layers of stride 2 take 8x8 images to 2x2
    digits, shapes = Path("examples/data/digits.npz").resolve(), Path("shapes").resolve()
    runs = {r.data.tags["cell"]: r for r in grid_runs(tracking_uri, "digits")}
    assert sorted(runs) == ["ae/conv/digits", "ae/mlp/digits", "ae/mlp/mnist", "ae/mlp/shapes",
                            "vae/conv/digits", "vae/mlp/digits", "vae/mlp/mnist", "vae/mlp/shapes"]
    assert all(r.info.status == "FINISHED" for r in runs.values())
    for cell, path, title in (("vae/mlp/digits", digits, "Digits 8x8 (scikit-learn)"), ("ae/mlp/shapes", shapes, "Shapes")):
        run = runs[cell]
        assert run.data.tags[names.DATASET_TITLE] == title
        assert run.data.tags[names.DATASET_DIGEST] == data.dataset_spec(
            run.data.tags["dataset"], mapped(run.data.tags["dataset"], path)).digest
        inputs = {(i.dataset.name, i.tags[0].value, i.dataset.source) for i in run.inputs.dataset_inputs}
        assert inputs == {(run.data.tags["dataset"], context, f'{{"uri": "{path}"}}')
                          for context in ("train", "validation", "test")}
    assert runs["vae/mlp/digits"].data.tags[names.DATASET_DIGEST] == sha256(digits)
    assert runs["vae/mlp/digits"].data.params["latent_dim"] == "20"
    assert "MNIST" == runs["ae/mlp/mnist"].data.tags[names.DATASET_TITLE]

    assert main(["report", "digits", "--label", "a", "--out", "report"]) == 0
    table = Path("report/results.csv").read_text()
    assert all(f"\n{cell}," in table for cell in runs)
    shown = Path("report/RESULTS.md").read_text()  # the report names each dataset by its title
    assert "Digits 8x8 (scikit-learn)" in shown and "Shapes" in shown
    assert main(["bench", "examples/digits.toml", "--label", "b", "--only", "arch=mlp", "--only", "model=vae", *quick]) == 0
    assert main(["compare", "digits@a", "digits@b", "--out", "compare"]) == 0
    compared = Path("compare/COMPARE.md").read_text()
    assert "vae/mlp/digits" in compared and "vae/mlp/shapes" in compared

    # the file changes: resuming version a on it trains nothing and says so; a new version is fine
    before = sha256(digits)
    with np.load(digits) as held:
        np.savez(digits, **{**held, "x_test": held["x_test"][:-1], "y_test": held["y_test"][:-1]})
    after = sha256(digits)
    capsys.readouterr()
    assert main(["bench", "examples/digits.toml", "--label", "a", *quick]) == 2
    assert capsys.readouterr().err.strip() == (
        f"aevae bench: error: {digits} changed since this version of grid digits trained on it (sha256 "
        f"{before[:12]} then, {after[:12]} now): restore the file, or run the grid as a new version with --label "
        f"(e.g. --label data-{after[:7]}).")
    assert len(grid_runs(tracking_uri, "digits")) == 11


SKETCHES = '''
from dataclasses import dataclass

import numpy as np

from aevae.registry import DatasetInfo


@dataclass(frozen=True)
class Sketches(DatasetInfo):
    digest: None = None

    def arrays(self, root):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 2, (60, 1, 8, 8), dtype=np.uint8) * 255
        return images[:50], np.arange(50) % 2, images[50:], np.arange(10) % 2

    def source(self, root):
        return "generated by mylab_sketches"


def sketches():
    return Sketches("sketches", "Sketches", (1, 8, 8), ("odd", "even"), 20, "bce", True, train_images=50)
'''


@pytest.fixture
def installed_package(tmp_path, monkeypatch):
    """A package installed as pip installs one: its module, and a dist-info folder whose
    entry_points.txt registers the dataset `sketches` in the group aevae.datasets."""
    from aevae.plugins import entry_point_names

    site = tmp_path / "site"
    (site / "mylab_sketches-1.0.dist-info").mkdir(parents=True)
    (site / "mylab_sketches-1.0.dist-info" / "METADATA").write_text("Name: mylab-sketches\nVersion: 1.0\n")
    (site / "mylab_sketches-1.0.dist-info" / "entry_points.txt").write_text(
        "[aevae.datasets]\nsketches = mylab_sketches:sketches\n")
    (site / "mylab_sketches.py").write_text(SKETCHES)
    monkeypatch.syspath_prepend(str(site))
    entry_point_names.cache_clear()
    yield
    entry_point_names.cache_clear()


def test_an_installed_package_registers_a_dataset_by_name(installed_package):
    cfg = resolve(with_overrides(TrainConfig(**{**QUICK, "analysis": True}), {  # a reference classifier of 2 classes
        "dataset": "sketches", "val_size": 10, "binarize": True, "frechet_samples": 10, "nll_samples": 2,
        "nll_images": 4, "tsne_points": 0}))
    assert cfg.latent_dim == 20 and cfg.plugins == ()
    splits = data.load("sketches", val_size=10)
    assert (splits.spec.title, len(splits.train), splits.source) == ("Sketches", 40, "generated by mylab_sketches")
    tracker = MemoryTracker()
    train(cfg, splits, tracker)
    assert tracker.current["tags"][names.DATASET_TITLE] == "Sketches"
    assert names.DATASET_DIGEST not in tracker.current["tags"]
    assert "test/frechet" in tracker.current["metrics"] and "test/probe_acc" in tracker.current["metrics"]
