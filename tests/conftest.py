"""Fixtures: small datasets written in the real file formats, registered with their own
checksums, and real MLflow stores in temporary folders."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from aevae.data import DATASETS, DatasetSpec
from aevae.data.sources import RemoteFile

# The numerics a test pins when its numbers matter: what `auto` resolves to (bf16 autocast on
# a CPU with bf16 instructions, channels-last conv nets on CPU, CUDA where present) differs
# between machines, and a test's numbers must not. The auto paths have tests of their own
# (test_machine.py, and test_train.py runs both precisions and both layouts).
PINNED = {"precision": "fp32", "memory_format": "contiguous", "transposed_conv": "native", "compile": "off", "device": "cpu"}

# A closed port on loopback: a download attempt fails at once, as it does offline.
UNREACHABLE = ("http://127.0.0.1:9/",)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def class_images(labels: np.ndarray, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Images with a class-dependent bright bar plus noise, so there is structure to learn."""
    c, h, w = shape
    images = rng.integers(0, 40, size=(len(labels), c, h, w))
    for i, label in enumerate(labels):
        row = 2 + (int(label) * (h - 6)) // 10
        images[i, :, row:row + 3, 2:w - 2] = 255
    return images.astype(np.uint8)


def write_mnist_family(root: Path, spec, n_train: int, n_test: int, seed: int = 0) -> dict[str, bytes]:
    """Write the four gzipped IDX files of `spec` under `root`; return their bytes by name."""
    rng = np.random.default_rng(seed)
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = class_images(labels, spec.shape, rng)[:, 0]
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            blob = gzip.compress(idx_bytes(array), mtime=0)
            (folder / name).write_bytes(blob)
            written[name] = blob
    return written


def write_npz(path: Path, n_train: int = 300, n_test: int = 100, shape: tuple[int, int, int] = (1, 28, 28),
              labelled: bool = True, seed: int = 0, **extra: np.ndarray) -> Path:
    """An .npz dataset in Keras's layout (x_train [N,H,W] for grey images, [N,H,W,3] for colour
    ones; y_train and y_test 0 to 9 unless not `labelled`), of MNIST-like images."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = class_images(labels, shape, rng).transpose(0, 2, 3, 1)
        arrays[f"x_{split}"] = images[..., 0] if shape[0] == 1 else images
        if labelled:
            arrays[f"y_{split}"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{**arrays, **extra})
    return path


def write_image_folder(root: Path, shape: tuple[int, int, int] = (1, 12, 12), per_class: tuple[int, int] = (10, 4),
                       classes: tuple[str, ...] = ("circle", "square", "triangle"), suffix: str = ".png",
                       seed: int = 0) -> Path:
    """A folder of images in class folders under train/ and test/ (`per_class` images per class
    and split), grey (mode L) or colour (RGB), as PNG or JPEG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "test"), per_class):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            images = class_images(np.full(n, label * 3), shape, rng).transpose(0, 2, 3, 1)
            for i, pixels in enumerate(images):
                Image.fromarray(pixels[..., 0] if shape[0] == 1 else pixels).save(folder / f"{i:03d}{suffix}")
    return root


def cifar_batches(n_per_batch: int, seed: int = 0) -> dict[str, bytes]:
    """The six CIFAR-10 pickle batches, small, in the real format."""
    rng = np.random.default_rng(seed)
    blobs = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, size=n_per_batch)
        data = class_images(labels, (3, 32, 32), rng).reshape(n_per_batch, -1)
        entry = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                 b"filenames": [f"{i}.png".encode() for i in range(n_per_batch)]}
        blobs[name] = pickle.dumps(entry, protocol=2)
    return blobs


def cifar_archive(blobs: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


def with_checksums_of(spec: DatasetSpec, blobs: dict[str, bytes], archive: bytes | None = None) -> DatasetSpec:
    """The one place tests fake a registry entry: `spec` expecting the md5s of `blobs` (by file
    name; a file not given expects no bytes, so it reads as missing) and of `archive`, and
    downloading from a closed port, as offline."""
    files = tuple(RemoteFile(f.name, md5(blobs.get(f.name, b""))) for f in spec.files)
    changes = {"files": files, "mirrors": UNREACHABLE}
    if archive is not None:
        changes["archive"] = RemoteFile(spec.archive.name, md5(archive))
    return dataclasses.replace(spec, **changes)


def files_under(root: Path, spec: DatasetSpec) -> dict[str, bytes]:
    """The bytes of `spec`'s files found in its folder under `root`, by name."""
    folder = Path(root) / spec.folder
    return {f.name: (folder / f.name).read_bytes() for f in spec.files if (folder / f.name).is_file()}


def register(monkeypatch, name: str, blobs: dict[str, bytes], archive: bytes | None = None) -> None:
    """For this test only, make the registry expect these files' checksums."""
    monkeypatch.setitem(DATASETS, name, with_checksums_of(DATASETS[name], blobs, archive))


CLI_SUBPROCESS = Path(__file__).with_name("cli_subprocess.py")
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def deploy_services():
    """deploy/services.py, the stack of `make services`: a script of the repository, not a
    module of the package, so it is imported by its path (once per test session)."""
    if "services" not in sys.modules:
        spec = importlib.util.spec_from_file_location("services", DEPLOY / "services.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["services"] = module  # before it runs: its dataclass looks itself up there
        spec.loader.exec_module(module)
    return sys.modules["services"]


def cli_subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for `python CLI_SUBPROCESS ...`: this folder first on the path (for
    conftest), then the caller's own PYTHONPATH, which may put a checkout's aevae ahead of
    the installed one."""
    path = os.pathsep.join(filter(None, [str(CLI_SUBPROCESS.parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def pytest_report_header(config) -> list[str]:
    """The machine in the header of every test report: its CPU and the flags that pick
    kernels, torch's build, and what each `auto` resolves to here, so a failure says which
    path it took."""
    from aevae.machine import header_lines

    return header_lines()


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A data root with small MNIST and Fashion-MNIST (600 train, 200 test images each) and a
    small extracted CIFAR-10 (5 x 40 train, 40 test), all registered."""
    root = tmp_path / "data"
    for seed, name in enumerate(("mnist", "fashion_mnist")):
        register(monkeypatch, name, write_mnist_family(root, DATASETS[name], 600, 200, seed))
    blobs = cifar_batches(40)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    register(monkeypatch, "cifar10", blobs, cifar_archive(blobs))
    monkeypatch.setenv("AEVAE_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite database whose tables exist. Making them (MLflow's schema
    migrations) takes seconds, so each test copies this file instead."""
    import mlflow

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch, migrated_store) -> str:
    """A real, empty SQLite MLflow store in a temporary folder, also set as the default."""
    path = tmp_path / "mlruns" / "mlflow.db"
    path.parent.mkdir(parents=True)
    shutil.copyfile(migrated_store, path)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Nothing a test does lands in the checkout (mlruns/, data/)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """aevae's cache (the reference classifiers) in one temporary folder per test session,
    never in ~/.cache: the tests' tiny datasets give cache entries no real run should see."""
    monkeypatch.setenv("AEVAE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "aevae-cache"))


# The real data root, if the caller pointed at one; absolute, since tests change directory.
REAL_DATA = os.path.abspath(os.environ["AEVAE_DATA_DIR"]) if os.environ.get("AEVAE_DATA_DIR") else None
