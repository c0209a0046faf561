import gzip
import os

import numpy as np
import pytest
import torch

from conftest import REAL_DATA, cifar_archive, cifar_batches, idx_bytes, register, write_mnist_family
from aevae import data
from aevae.data import DATASETS
from aevae.errors import ConfigError, DataError


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_family_reads_into_uint8_splits(data_root, name):
    splits = data.load(name, val_size=100)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (500, 100, 200)
    assert splits.train.images.dtype == torch.uint8 and splits.train.images.shape[1:] == (1, 28, 28)
    assert splits.train.labels.dtype == torch.int64
    # the bright bar the fixture drew survives decoding
    assert splits.test.images.max() == 255


def test_validation_split_is_fixed_and_disjoint(data_root):
    a = data.load("mnist", val_size=100)
    b = data.load("mnist", val_size=100)
    assert torch.equal(a.val.images, b.val.images)
    train_rows = {bytes(img.numpy()) for img in a.train.images}
    assert not any(bytes(img.numpy()) in train_rows for img in a.val.images)


def test_subset_caps_every_split(data_root):
    splits = data.load("mnist", val_size=100, subset=50)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50, 50, 50)


def test_val_size_must_leave_training_images(data_root):
    with pytest.raises(ConfigError, match="leaves no training images"):
        data.load("mnist", val_size=600)


def test_cifar_from_extracted_batches(data_root):
    splits = data.load("cifar10", val_size=20)
    assert splits.train.images.shape == (180, 3, 32, 32) and len(splits.test) == 40


def test_cifar_from_archive_only(tmp_path, monkeypatch):
    blobs = cifar_batches(10, seed=3)
    archive = cifar_archive(blobs)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    register(monkeypatch, "cifar10", blobs, archive)
    splits = data.load("cifar10", str(tmp_path), val_size=5)
    assert (len(splits.train), len(splits.test)) == (45, 10)
    assert not (tmp_path / "cifar-10-batches-py").exists(), "the data folder is never written"


def test_corrupt_file_fails_its_checksum(data_root):
    path = data_root / "MNIST/raw/train-labels-idx1-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz fails its checksum"):
        data.load("mnist")


def test_wrong_header_is_rejected_even_with_a_matching_checksum(tmp_path, monkeypatch):
    blobs = write_mnist_family(tmp_path, DATASETS["mnist"], 20, 10)
    # labels where images belong: right checksum for the registry, wrong format
    bad = gzip.compress(idx_bytes(np.zeros(20, dtype=np.uint8)), mtime=0)
    (tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz").write_bytes(bad)
    blobs["train-images-idx3-ubyte.gz"] = bad
    register(monkeypatch, "mnist", blobs)
    with pytest.raises(DataError, match="does not have an IDX header for 3-d unsigned bytes"):
        data.load("mnist", str(tmp_path), val_size=5)


def test_missing_files_offline_name_the_files_and_folder(tmp_path, monkeypatch):
    register(monkeypatch, "fashion_mnist", {})
    with pytest.raises(DataError) as info:
        data.load("fashion_mnist", str(tmp_path / "empty"))
    message = str(info.value)
    assert "Fashion-MNIST needs train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "empty" / "FashionMNIST" / "raw") in message
    assert "AEVAE_DATA_DIR" in message


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ConfigError, match="valid datasets: cifar10, fashion_mnist, mnist"):
        data.load("svhn")


def test_data_dir_precedence(monkeypatch):
    monkeypatch.setenv("AEVAE_DATA_DIR", "/from/env")
    assert data.data_root("/from/flag") == "/from/flag"
    assert data.data_root() == "/from/env"
    monkeypatch.delenv("AEVAE_DATA_DIR")
    assert data.data_root() == "data"


@pytest.mark.skipif(not REAL_DATA or not os.path.isdir(os.path.join(REAL_DATA or "", "MNIST")),
                    reason="AEVAE_DATA_DIR does not point at the real MNIST files")
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_files_read_and_verify(name):
    splits = data.load(name, REAL_DATA)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55000, 5000, 10000)
    assert splits.train.labels.bincount().min() > 4000
    mean = splits.test.images.float().mean().item() / 255
    assert 0.1 < mean < 0.35
