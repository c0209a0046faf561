"""What aevae knows of a dataset's original files: the types the registry in sources.py is
made of, apart from it so that the readers and the downloader can use them without
importing the registry that binds the readers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from aevae.registry import DatasetInfo


@dataclass(frozen=True)
class RemoteFile:
    """One original file and the md5 its publisher gives for it."""

    name: str
    md5: str


@dataclass(frozen=True)
class DatasetSpec(DatasetInfo):
    """A built-in dataset's facts from aevae.registry, where its files live, and its reader:
    `read(spec, root)` returns uint8 arrays (train_images [N,C,H,W], train_labels [N],
    test_images, test_labels).

    Every dataset, a plug-in too, answers `arrays(root)` (those four arrays), `source(root)`
    (the file or folder they came from, for the runs' dataset inputs) and `digest` (the
    sha256 of a plug-in's file, which a grid checks when it resumes; None for the built-ins,
    whose files are checked against their publishers' md5s)."""

    folder: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    read: Callable[["DatasetSpec", str], tuple[np.ndarray, ...]]
    archive: RemoteFile | None = None
    digest: None = None

    def arrays(self, root: str) -> tuple[np.ndarray, ...]:
        return self.read(self, root)

    def source(self, root: str) -> str:
        """The dataset's folder under `root`, or the archive a reader falls back to when the
        folder is incomplete (CIFAR-10)."""
        folder = os.path.abspath(os.path.join(root, self.folder))
        if self.archive is None or all(os.path.isfile(os.path.join(folder, f.name)) for f in self.files):
            return folder
        return os.path.abspath(os.path.join(root, self.archive.name))
