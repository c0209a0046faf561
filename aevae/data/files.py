"""Datasets from files people already have (README: Bring your own data): an `.npz` file of
uint8 images with Keras's names, or a folder of images in class folders under train/ and
test/ (aevae.data.images). Each is read into the same uint8 arrays as the built-ins, checked
first: bad data is one sentence naming the file and what to do, and nothing trains on it.

What the built-ins have in the registry, a file's dataset infers from its data (`infer`):
its shape and classes, and the defaults that follow the shape as the built-ins' do.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aevae.data.images import class_names, folder_arrays, folder_digest, folders_of
from aevae.errors import DataError
from aevae.plugins import PluginError, load, name_of
from aevae.registry import DatasetInfo

KERAS = ("x_train", "y_train", "x_test", "y_test")  # the names keras.datasets.*.load_data gives
LABELS = ("y_train", "y_test")  # optional, both or neither
CLASS_NAMES = "class_names"  # an optional array of label names, by label
SMALL_PIXELS = 28 * 28  # pixel values per image up to MNIST's take MNIST's latent size
SMALL_LATENT, LARGE_LATENT = 20, 128  # the built-ins' latent sizes: MNIST's, CIFAR-10's
# Binarization fits images whose pixels are mostly near black or white already: at least
# half of them within 10% of 0 or 1. MNIST has 91% of its pixels there, Fashion-MNIST 60%,
# scikit-learn's 8x8 digits 65%, uniform grey noise 20%.
BINARY_MARGIN, BINARY_SHARE = 0.1, 0.5
BINARY_SAMPLE = 10_000  # training images the share is measured on, at most
READ_HINT = "README: Bring your own data"


@dataclass(frozen=True)
class FileDataset(DatasetInfo):
    """A dataset of the user's, from an .npz file or an image folder: its facts as the
    registry holds a built-in's (inferred from the data), where it is, and its digest."""

    path: str
    """The file or folder, absolute."""
    digest: str
    """sha256 (hex) of the .npz file, or of the folder's images with their relative paths."""

    def arrays(self, root: str) -> tuple[np.ndarray, ...]:
        """The four uint8 arrays; `root` (the built-ins' data folder) plays no part."""
        return folder_arrays(self.path, self.digest) if os.path.isdir(self.path) else npz_arrays(self.path)

    def source(self, root: str) -> str:
        return self.path


def open_reference(reference: str, kind: str = "dataset"):
    """The dataset a reference names: an .npz file or an image folder (read and checked
    once per version of it), or a code reference (module:attribute, path/file.py:attribute)
    to a dataset object or a function that makes one (see `made`)."""
    path = Path(reference).expanduser()
    if path.exists():
        found = path.resolve()
        return _opened(str(found), _signature(found))
    if ":" in reference:
        return made(load(reference, kind))
    if reference.endswith(".npz"):
        raise DataError(f"the dataset file {reference} does not exist: give the path of an .npz file or of an "
                        f"image folder (in a grid or study file, from that file's folder).")
    raise PluginError(f"the dataset {reference} is neither a file nor a folder that exists, nor a code "
                      f"reference: give the path of an .npz file or of an image folder ({READ_HINT}).")


def made(found):
    """A dataset object as it is, or the one a function (a reference's, an entry point's)
    makes, made once."""
    return _call(found) if callable(found) and not hasattr(found, "arrays") else found


@functools.lru_cache(maxsize=16)
def _call(factory):
    return factory()


def _signature(path: Path) -> tuple:
    """What changes when the data does, cheaply, so a file or folder is read again (and its
    digest taken again) only when it has changed: a file's size and modification time; a
    folder's and its split and class folders' modification times, which change as images
    come, go or are renamed. (Stating every image costs a second per 30,000 of them, on
    each of the dozens of lookups of a grid; an image rewritten in place during one command
    is seen by the next, whose first read takes the digest of every file.)"""
    if path.is_dir():
        return tuple((str(p.relative_to(path)), p.stat().st_mtime_ns) for p in folders_of(path))
    return _stamp(path)


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _opened(path: str, signature: tuple) -> FileDataset:
    if os.path.isdir(path):
        digest = folder_digest(Path(path))
        train_x, train_y, test_x, test_y = folder_arrays(path, digest)
        classes = class_names(Path(path))
    else:
        digest = file_digest(path)
        found = _read_npz(path)
        train_x, train_y, test_x, test_y = _checked(path, found)
        classes = npz_class_names(path, found.get(CLASS_NAMES), train_y, test_y)
    return infer(path, digest, train_x, classes)


def infer(path: str, digest: str, train_x: np.ndarray, classes: tuple[str, ...]) -> FileDataset:
    """The facts of a dataset from its training images [N,C,H,W]: its shape, the latent size
    and reconstruction loss the built-ins choose for such a shape, and whether binarizing fits."""
    shape = tuple(int(d) for d in train_x.shape[1:])
    grey = shape[0] == 1
    return FileDataset(
        name=name_of(path), title=Path(path).stem, shape=shape, classes=classes,
        default_latent=SMALL_LATENT if np.prod(shape) <= SMALL_PIXELS else LARGE_LATENT,
        default_recon_loss="bce" if grey else "mse",
        binary_ok=grey and near_binary_share(train_x[:BINARY_SAMPLE]) >= BINARY_SHARE,
        train_images=len(train_x), path=path, digest=digest,
    )


def near_binary_share(images_u8: np.ndarray) -> float:
    """The share of pixel values within BINARY_MARGIN of 0 or 1 (on a [0,1] scale)."""
    low, high = 255 * BINARY_MARGIN, 255 * (1 - BINARY_MARGIN)
    return float(((images_u8 <= low) | (images_u8 >= high)).mean())


def file_digest(path: str) -> str:
    hashed = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hashed.update(block)
    return hashed.hexdigest()


def relabel(spec, title: str = "", classes: tuple[str, ...] = ()):
    """`spec` as a grid or study file calls it: its title and class names, where given. The
    names must be as many as the dataset's classes, one per label in order."""
    if classes and len(classes) != len(spec.classes):
        where = getattr(spec, "path", spec.name)
        raise DataError(f"the grid names {len(classes)} classes of the dataset {where}, whose labels make "
                        f"{len(spec.classes)} (0 to {len(spec.classes) - 1}): name {len(spec.classes)} classes, "
                        f"in the order of their labels, or leave classes out.")
    return dataclasses.replace(spec, title=title or spec.title, classes=tuple(classes) or spec.classes)


def npz_arrays(path: str) -> tuple[np.ndarray, ...]:
    """The four arrays of an .npz file with Keras's names, checked, as [N,C,H,W] uint8 images
    and int64 labels (all 0 where the file has none)."""
    return _checked(path, _read_npz(path))


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The file's arrays that aevae reads, by name, once the names are found complete."""
    with _npz(path) as held:
        missing = [key for key in ("x_train", "x_test") if key not in held.files]
        if missing:
            raise DataError(f"{path} has no {missing[0]} array (it holds {', '.join(held.files) or 'none'}): "
                            f"save the {'test' if missing[0] == 'x_test' else 'training'} images as "
                            f"{missing[0]}, with x_train, y_train, x_test and y_test ({READ_HINT}).")
        labelled = [key for key in LABELS if key in held.files]
        if len(labelled) == 1:
            other = "y_test" if labelled[0] == "y_train" else "y_train"
            raise DataError(f"{path} has {labelled[0]} but no {other}: save labels for both splits, or for neither.")
        return {key: _member(path, held, key) for key in (*KERAS, CLASS_NAMES) if key in held.files}


def _member(path: str, held, key: str) -> np.ndarray:
    try:
        return held[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: {key} cannot be read ({_reason(exc)}): save it as a plain array, "
                        f"uint8 images or integer labels.") from None


def _checked(path: str, found: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    train_x, test_x = (_images(path, key, found[key]) for key in ("x_train", "x_test"))
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{path}: x_train's images are {_size(train_x)} but x_test's are {_size(test_x)}: "
                        f"save both splits at one size.")
    train_y, test_y = (_labels(path, key, found[key], len(x)) if key in found else np.zeros(len(x), np.int64)
                       for key, x in (("y_train", train_x), ("y_test", test_x)))
    return train_x, train_y, test_x, test_y


def _npz(path: str):
    """The open archive; anything else (a .npy file, a pickle, text) is not an .npz dataset."""
    saying = ("write it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...), which takes "
              "Keras's names")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file (it is no zip archive, which numpy.savez writes): {saying}.")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is not an .npz file numpy can read ({_reason(exc)}): {saying}.") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".")[:200] if text else type(exc).__name__


def _images(path: str, key: str, array: np.ndarray) -> np.ndarray:
    """An image array as [N,C,H,W] uint8: Keras's [N,H,W] or [N,H,W,C] with 1 or 3 channels."""
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (1, 3)):
        raise DataError(f"{path}: {key} has shape {tuple(array.shape)}, not [N,H,W] or [N,H,W,C] with 1 or 3 "
                        f"channels last: save grey images as [N,H,W] and colour ones as [N,H,W,3] "
                        f"(x.transpose(0, 2, 3, 1) turns [N,C,H,W] into that).")
    if len(array) == 0:
        raise DataError(f"{path}: {key} holds no images: save at least one image in each split.")
    if array.dtype != np.uint8:
        raise DataError(f"{path}: {key} {_not_uint8(array)}.")
    return np.ascontiguousarray((array[..., None] if array.ndim == 3 else array).transpose(0, 3, 1, 2))


def _not_uint8(array: np.ndarray) -> str:
    """What is wrong with an image array that is not uint8, and what to do, for one sentence."""
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        return f"is {array.dtype}, not uint8: save the pixel values as uint8, 0 to 255"
    low, high = float(array.min()), float(array.max())
    if np.issubdtype(array.dtype, np.floating) and 0 <= low and high <= 1:
        return (f"is {array.dtype} with values from {low:g} to {high:g}, not uint8 0 to 255: save "
                f"(x * 255).round().astype(np.uint8)")
    if 0 <= low and high <= 255 and np.all(array == np.round(array)):
        return f"is {array.dtype}, not uint8: its values lie in 0 to 255, so save x.astype(np.uint8)"
    return (f"is {array.dtype} with values from {low:g} to {high:g}, outside uint8's 0 to 255: scale the "
            f"pixels to 0 to 255 and save them as uint8")


def _size(images_nchw: np.ndarray) -> str:
    c, h, w = images_nchw.shape[1:]
    return f"{h}x{w}" + ("" if c == 1 else f"x{c}")


def _labels(path: str, key: str, array: np.ndarray, count: int) -> np.ndarray:
    """One class number per image, 0 to K-1 (Keras's CIFAR-10 saves [N,1]; that reads too)."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: {key} is {array.dtype} of shape {tuple(array.shape)}, not one class number per "
                        f"image: save the labels as integers 0 to K-1, shape [N].")
    if len(array) != count:
        images_key = key.replace("y_", "x_")
        raise DataError(f"{path} holds {count} images in {images_key} but {len(array)} labels in {key}: "
                        f"save one label per image.")
    if array.min() < 0:
        raise DataError(f"{path}: {key} holds the label {array.min()}: labels are class numbers 0 to K-1.")
    return array.astype(np.int64)


def npz_class_names(path: str, names: np.ndarray | None, train_y: np.ndarray, test_y: np.ndarray) -> tuple[str, ...]:
    """The file's class_names, else the label numbers 0 to the largest label."""
    count = int(max(train_y.max(), test_y.max())) + 1
    if names is None:
        return tuple(str(label) for label in range(count))
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) < count:
        raise DataError(f"{path}: {CLASS_NAMES} must be a list of {count} or more names (strings), one per label "
                        f"from 0 to {count - 1}; it holds {names.dtype} of shape {tuple(names.shape)}.")
    return tuple(str(name) for name in names)
