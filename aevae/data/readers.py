"""Decoders of the original file formats: IDX (MNIST family) and CIFAR-10's pickle batches.

Each returns uint8 arrays; a file whose header or size does not match its format is an
error, never silently used.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile

import numpy as np

from aevae.data.fetch import ensure, verify
from aevae.data.spec import DatasetSpec
from aevae.errors import DataError

_IDX_UBYTE = 0x08


def read_idx(path: str, ndim: int) -> np.ndarray:
    """Decode a gzipped IDX file of unsigned bytes with `ndim` dimensions."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc}).") from None
    if len(raw) < 4 + 4 * ndim or raw[0:2] != b"\x00\x00" or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise DataError(
            f"{path} does not have an IDX header for {ndim}-d unsigned bytes "
            f"(magic {raw[:4].hex() or 'missing'}, expected 000008{ndim:02x})."
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(bytearray(raw), dtype=np.uint8, offset=4 + 4 * ndim)  # writable for torch
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} holds {body.size} bytes of data, its header promises {int(np.prod(dims))}.")
    return body.reshape(dims)


def read_mnist_family(spec: DatasetSpec, root: str) -> tuple[np.ndarray, ...]:
    folder = os.path.join(root, spec.folder)
    train_x, train_y, test_x, test_y = ensure(spec.title, folder, spec.files, spec.mirrors)
    arrays = []
    for images_path, labels_path in ((train_x, train_y), (test_x, test_y)):
        images = read_idx(images_path, 3)
        labels = read_idx(labels_path, 1)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != spec.shape[1:]:
            raise DataError(
                f"{images_path} and {labels_path} do not match: images {images.shape}, "
                f"labels {labels.shape}, expected [N,{spec.shape[1]},{spec.shape[2]}] and [N]."
            )
        arrays += [images[:, None, :, :], labels]
    return tuple(arrays)


def _decode_cifar_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    # Only called on bytes whose md5 matched the published one, so unpickling is safe.
    try:
        entry = pickle.loads(blob, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8)
        labels = np.asarray(entry[b"labels"], dtype=np.uint8)
    except Exception as exc:
        raise DataError(f"{where} is not a CIFAR-10 pickle batch ({type(exc).__name__}).") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{where} holds data of shape {data.shape}, expected [N, 3072] with N labels.")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_blobs(spec: DatasetSpec, root: str) -> dict[str, tuple[bytes, str]]:
    """The batch files' bytes, from the extracted folder if complete, else from the archive."""
    folder = os.path.join(root, spec.folder)
    if all(os.path.isfile(os.path.join(folder, f.name)) for f in spec.files):
        paths = ensure(spec.title, folder, spec.files, spec.mirrors)
        return {f.name: (open(p, "rb").read(), p) for f, p in zip(spec.files, paths)}
    wanted = f"{spec.archive.name} or the extracted {spec.folder}/ folder"
    (archive,) = ensure(spec.title, root, (spec.archive,), spec.mirrors, wanted)
    blobs = {}
    with tarfile.open(archive, "r:gz") as tar:
        for remote in spec.files:
            member = f"{spec.folder}/{remote.name}"
            try:
                blob = tar.extractfile(member).read()
            except (KeyError, AttributeError):
                raise DataError(f"{archive} has no member {member}.") from None
            where = f"{archive}:{member}"
            if hashlib.md5(blob).hexdigest() != remote.md5:
                raise DataError(f"{where} fails its checksum: replace the archive with the original.")
            blobs[remote.name] = (blob, where)
    return blobs


def read_cifar10(spec: DatasetSpec, root: str) -> tuple[np.ndarray, ...]:
    blobs = _cifar_blobs(spec, root)
    train = [_decode_cifar_batch(*blobs[f.name]) for f in spec.files if f.name != "test_batch"]
    test_x, test_y = _decode_cifar_batch(*blobs["test_batch"])
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return train_x, train_y, test_x, test_y


__all__ = ["read_idx", "read_mnist_family", "read_cifar10", "verify"]
