"""What aevae knows of a dataset's original files: the types the registry in sources.py is
made of, apart from it so that the readers and the downloader can use them without
importing the registry that binds the readers."""

from __future__ import annotations

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
    """A dataset's facts from aevae.registry, where its files live, and its reader:
    `read(spec, root)` returns uint8 arrays (train_images [N,C,H,W], train_labels [N],
    test_images, test_labels)."""

    folder: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    read: Callable[["DatasetSpec", str], tuple[np.ndarray, ...]]
    archive: RemoteFile | None = None
