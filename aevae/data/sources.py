"""Where each dataset's original files live, what their checksums are, and the registry
that binds each name of aevae.registry to its files and reader.

The layout is torchvision's, so an existing torchvision data root works unchanged:
`<root>/MNIST/raw/*.gz`, `<root>/FashionMNIST/raw/*.gz`, and for CIFAR-10 either
`<root>/cifar-10-batches-py/` or the `<root>/cifar-10-python.tar.gz` archive.
"""

from __future__ import annotations

from aevae.data.readers import read_cifar10, read_mnist_family
from aevae.data.spec import DatasetSpec, RemoteFile
from aevae.registry import DATASET_INFO


def _spec(name: str, folder: str, files: tuple[RemoteFile, ...], mirrors: tuple[str, ...],
          read, archive: RemoteFile | None = None) -> DatasetSpec:
    """The registry's facts of dataset `name`, with where its files are and how to read them."""
    return DatasetSpec(**vars(DATASET_INFO[name]), folder=folder, files=files, mirrors=mirrors,
                       read=read, archive=archive)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": _spec(
        "mnist",
        folder="MNIST/raw",
        files=(
            RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        read=read_mnist_family,
    ),
    "fashion_mnist": _spec(
        "fashion_mnist",
        folder="FashionMNIST/raw",
        files=(
            RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        read=read_mnist_family,
    ),
    "cifar10": _spec(
        "cifar10",
        folder="cifar-10-batches-py",
        files=(
            RemoteFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            RemoteFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            RemoteFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            RemoteFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
            RemoteFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            RemoteFile("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
        archive=RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        read=read_cifar10,
    ),
}

__all__ = ["DATASETS", "DatasetSpec", "RemoteFile"]
