"""Datasets as whole uint8 tensors in memory.

Decoding the raw files once and keeping `[N,C,H,W]` uint8 on the training device, then
converting one batch at a time to float, is faster than a per-sample pipeline: MNIST is
47 MB and CIFAR-10 154 MB, so there is nothing to stream and no DataLoader workers to feed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, is_dataclass, replace
from functools import cached_property
from typing import Iterator

import numpy as np
import torch

from aevae.data.sources import DATASETS, DatasetSpec
from aevae.errors import ConfigError, DataError
from aevae.plugins import find

DEFAULT_DATA_DIR = "data"
SPLIT_SEED = 0  # the validation split is the same for every run and seed
EVAL_BATCH = 1000  # images per batch of every pass that only reads a split
EVAL_SEED = 1234  # fixed binarization of evaluation images, the same for every run


def data_root(data_dir: str | None = None) -> str:
    """`--data-dir`, else `AEVAE_DATA_DIR`, else `./data`."""
    return data_dir or os.environ.get("AEVAE_DATA_DIR") or DEFAULT_DATA_DIR


@dataclass(frozen=True)
class ImageSet:
    """Images `[N,C,H,W]` uint8 and labels `[N]` int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device))

    def floats(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The selected images as float32 on a [0,1] scale."""
        return self.images[index].float().div_(255.0)

    @cached_property
    def digest(self) -> str:
        """The first 10 hex digits of the sha256 of the decoded images and labels (about 40 ms
        for MNIST's training split), computed once per set: a grid's cells and a study's
        trials share one set, so they share the cost too."""
        hashed = hashlib.sha256()
        for tensor in (self.images, self.labels):
            hashed.update(tensor.cpu().contiguous().numpy().data)
        return hashed.hexdigest()[:10]


def eval_batches(images: ImageSet, binarize: bool, batch_size: int = EVAL_BATCH) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Float batches `(x, labels)` of a split in order; binarized with a fixed seed when asked,
    so every pass that reads a split (metrics, codes, frames, figures) sees the same images."""
    generator = None
    if binarize:
        generator = torch.Generator(images.images.device).manual_seed(EVAL_SEED)
    for start in range(0, len(images), batch_size):
        x = images.floats(slice(start, start + batch_size))
        if generator is not None:
            x = torch.bernoulli(x, generator=generator)
        yield x, images.labels[start:start + batch_size]


@dataclass(frozen=True)
class Splits:
    """Train, validation (carved from the training set) and test splits of one dataset; an
    Optuna trial's splits have no test split (`without_test`), so no trial can read it."""

    spec: DatasetSpec
    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    source: str = ""  # the folder (or archive) the files were decoded from, absolute

    def to(self, device: torch.device) -> "Splits":
        test = None if self.test is None else self.test.to(device)
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=test)

    def without_test(self) -> "Splits":
        """The same train and validation splits, and no test split."""
        return replace(self, test=None)


def _image_set(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    # a read-only array (one shared by every process of a node) is copied: torch writes in place
    images = np.ascontiguousarray(images) if images.flags.writeable else np.array(images)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train images, labels, test images, labels


def dataset_spec(name: str, mapped=()) -> DatasetSpec:
    """The dataset `name`: a built-in, a name `mapped` ((kind, name, reference) triples, a
    config's `plugins`) gives a file, a folder or a code reference, or an installed package's
    entry point (aevae.plugins.find, the one door)."""
    from aevae.data.files import made, open_reference

    spec = made(find("dataset", name, mapped, DATASETS, opener=open_reference))  # an entry point's may be a function
    # a file goes by its stem, but a grid may call it otherwise ([datasets] mine = "x.npz")
    return replace(spec, name=name) if spec.name != name and is_dataclass(spec) else spec


def relabelled(splits: Splits, title: str = "", classes: tuple[str, ...] = ()) -> Splits:
    """The splits, their dataset titled and its classes named as a grid or study file says
    (the run's dataset_title tag, its figures' legends); the names must be one per class."""
    from aevae.data.files import relabel

    return replace(splits, spec=relabel(splits.spec, title, classes))


def read(name: str, data_dir: str | None = None, mapped=()) -> Arrays:
    """The dataset's decoded files (downloading a built-in's if needed), before any split:
    the slow part of `load`, which an executor may do once per machine and share."""
    spec = dataset_spec(name, mapped)
    root = data_root(data_dir)
    if name in DATASETS and os.path.isfile(root):  # a file of the user's has its own path
        raise DataError(f"the data root {root} is a file; point --data-dir (or AEVAE_DATA_DIR) at the "
                        f"folder that holds the datasets (MNIST/raw/, FashionMNIST/raw/, ...).")
    return spec.arrays(root)


def split(name: str, arrays: Arrays, val_size: int = 5000, subset: int = 0, data_dir: str | None = None,
          mapped=()) -> Splits:
    """The splits of a dataset's decoded files; `subset` caps every split. `data_dir` names
    the folder they came from, for the runs' dataset inputs."""
    spec = dataset_spec(name, mapped)
    return cut(spec, arrays, val_size, subset, spec.source(data_root(data_dir)))


def cut(spec: DatasetSpec, arrays: Arrays, val_size: int, subset: int, source: str) -> Splits:
    """The splits of `spec`'s decoded arrays: the validation split is the same
    `val_size` training images for every run and seed; `subset` caps every split."""
    train_x, train_y, test_x, test_y = arrays
    if val_size >= len(train_x):
        raise ConfigError(f"val_size {val_size} leaves no training images out of {len(train_x)}.")
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    val_idx, train_idx = order[:val_size], order[val_size:]
    cap = slice(None, subset or None)
    return Splits(
        spec,
        train=_image_set(train_x[train_idx][cap], train_y[train_idx][cap]),
        val=_image_set(train_x[val_idx][cap], train_y[val_idx][cap]),
        test=_image_set(test_x[cap], test_y[cap]),
        source=source,
    )


def load(name: str, data_dir: str | None = None, val_size: int = 5000, subset: int = 0, mapped=()) -> Splits:
    """Read (downloading if needed) a dataset and split it; `subset` caps every split."""
    return split(name, read(name, data_dir, mapped), val_size, subset, data_dir, mapped)


__all__ = ["DATASETS", "Arrays", "DatasetSpec", "ImageSet", "Splits", "data_root", "dataset_spec", "eval_batches",
           "load", "read", "relabelled", "split"]
