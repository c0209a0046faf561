"""Image folders as datasets: `<folder>/train/<class>/*.png` and `<folder>/test/<class>/*.png`
(PNG or JPEG, read through Pillow), labelled by class folder in sorted order, as
torchvision's ImageFolder labels them.

Decoding thousands of small files costs seconds to minutes, so a folder is decoded once per
version of its files (their digest) into `$AEVAE_CACHE_DIR/folders/` as an .npz of the four
uint8 arrays; every later read loads that. Bad data (no test split, an empty class folder,
images of different sizes, a file Pillow cannot read) is one sentence naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from aevae.errors import DataError
from aevae.folders import cache_dir
from aevae.plugins import name_of

SPLITS = ("train", "test")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")  # the cache file's, as an .npz dataset's
SUFFIXES = (".png", ".jpg", ".jpeg")  # other files in a class folder are not images of it
GREY_MODES = ("1", "L", "LA")  # Pillow's modes of grey images; any other makes the folder RGB
LAYOUT = "put the images in train/<class>/ and test/<class>/ (README: Bring your own data)"


def image_files(folder: Path) -> list[Path]:
    """The images of the folder's splits in sorted order (unchecked: see `layout`)."""
    return [path for split in SPLITS for _, path in _split_images(folder / split)]


def folders_of(folder: Path) -> list[Path]:
    """The folder, its split folders and their class folders: what changes when an image
    comes, goes or is renamed."""
    splits = [folder / split for split in SPLITS if (folder / split).is_dir()]
    return [folder, *splits, *(class_folder for split in splits for class_folder in _class_folders(split))]


def _class_folders(split: Path) -> list[Path]:
    if not split.is_dir():
        return []
    return sorted(p for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))


def _split_images(split: Path) -> list[tuple[str, Path]]:
    """(class name, path) of every image of one split, sorted."""
    return [(folder.name, path) for folder in _class_folders(split) for path in _images_in(folder)]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES)


def class_names(folder: Path) -> tuple[str, ...]:
    """The class folders of train/, sorted: label i is the i-th."""
    return tuple(p.name for p in _class_folders(folder / "train"))


def layout(folder: Path) -> dict[str, list[tuple[int, Path]]]:
    """(label, path) of every image, by split, once the folder is found to hold a dataset."""
    for split in SPLITS:
        if not (folder / split).is_dir():
            raise DataError(f"{folder} has no {split}/ folder: {LAYOUT}.")
        if not _class_folders(folder / split):
            raise DataError(f"{folder / split} holds no class folders: put each class's images in "
                            f"{split}/<class>/, one folder per class.")
    classes = class_names(folder)
    found = {}
    for split in SPLITS:
        for class_folder in _class_folders(folder / split):
            if class_folder.name not in classes:
                raise DataError(f"{class_folder} has no train/{class_folder.name} beside it: name the test "
                                f"split's class folders as the training split's.")
            if not _images_in(class_folder):
                raise DataError(f"{class_folder} holds no images ({', '.join(SUFFIXES)}): add its images, or "
                                f"remove the folder.")
        found[split] = [(classes.index(name), path) for name, path in _split_images(folder / split)]
    return found


def folder_digest(folder: Path) -> str:
    """sha256 (hex) of the folder's images in sorted order, each with its relative path."""
    hashed = hashlib.sha256()
    for path in image_files(folder):
        content = path.read_bytes()
        hashed.update(f"{path.relative_to(folder).as_posix()}\0{len(content)}\0".encode())
        hashed.update(content)
    return hashed.hexdigest()


def folder_arrays(folder: str, digest: str) -> tuple[np.ndarray, ...]:
    """The folder's four uint8 arrays: from the cache, else decoded (and cached)."""
    cached = cache_dir() / "folders" / f"{name_of(folder)}-{digest[:16]}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as held:
            return tuple(held[key] for key in ARRAYS)
    arrays = decode(Path(folder))
    _save(cached, arrays)
    return arrays


def decode(folder: Path) -> tuple[np.ndarray, ...]:
    """Every image of the folder as [N,C,H,W] uint8 in one mode (all grey: L; else RGB) and
    one size, with its label."""
    from PIL import Image, UnidentifiedImageError

    found = layout(folder)
    headers = {}
    for label, path in (item for split in SPLITS for item in found[split]):
        try:
            with Image.open(path) as image:  # the header only: mode and size
                headers[path] = image.mode, image.size
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path} is not an image Pillow can read ({type(exc).__name__}): replace or "
                            f"remove it.") from None
    first, (_, size) = next(iter(headers.items()))
    for path, (_, other) in headers.items():
        if other != size:
            raise DataError(f"{path} is {other[0]}x{other[1]} pixels but {first} is {size[0]}x{size[1]}: "
                            f"give every image of the folder one size.")
    mode = "L" if all(m in GREY_MODES for m, _ in headers.values()) else "RGB"
    arrays = []
    for split in SPLITS:
        pixels = np.stack([_pixels(path, mode) for _, path in found[split]])
        arrays += [np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)),
                   np.array([label for label, _ in found[split]], dtype=np.int64)]
    return tuple(arrays)


def _pixels(path: Path, mode: str) -> np.ndarray:
    """[H,W,C] uint8."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert(mode), dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _save(path: Path, arrays: tuple[np.ndarray, ...]) -> None:
    """Write then rename, so a concurrent reader never sees half a file; a cache that cannot be
    written only means the folder is decoded again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **dict(zip(ARRAYS, arrays)))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temporary)
