"""The reference classifier that scores generated images, trained by aevae and cached.

Sample quality needs a feature space that knows what the dataset's images look like.
Inception-based FID needs downloaded weights and 299x299 inputs; instead aevae trains a
small CNN per dataset, once, on the training split it is given, and caches the weights, the
classifier's test accuracy and the statistics of its features on the test split. Numbers
scored with it are comparable between aevae runs that share the cache entry (same data
files, same classifier version), never with published FID values.

The cache lives in `$AEVAE_CACHE_DIR`, else `~/.cache/aevae/` (never the data folder, which
may be read-only). An entry's key hashes the images and labels of both splits, the
architecture version, the epochs and the seed, so changed data or code never reuse a stale
classifier. Training runs on the CPU in fp32 under a fixed seed, so the same key gives the
same weights on any device a run uses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aevae.data import ImageSet, Splits
from aevae.folders import cache_dir

VERSION = "cnn-v1"  # bump when the architecture or its training changes
EPOCHS = 5
SEED = 0
BATCH = 128
LR = 1e-3
FEATURES = 128  # width of the penultimate layer, the Frechet feature space


class ReferenceNet(nn.Module):
    """Two stride-2 5x5 convolutions, a 128-unit hidden layer (the features), a logit per class.

    Strided convolutions instead of conv + max-pool: a tenth of the cost per image on a CPU
    at about the same accuracy, and every run scores thousands of generated images."""

    def __init__(self, shape: tuple[int, int, int], classes: int = 10):
        super().__init__()
        channels, height, width = shape
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * (height // 4) * (width // 4), FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features `[B,128]`, logits `[B,classes]`) of images on [0,1]."""
        features = self.body(x)
        return features, self.head(features)


@dataclass
class ReferenceClassifier:
    """A trained reference classifier with its test accuracy and test feature statistics."""

    net: ReferenceNet
    key: str
    test_accuracy: float
    test_mean: torch.Tensor  # [128] float64
    test_covariance: torch.Tensor  # [128,128] float64
    from_cache: bool
    train_seconds: float

    @torch.no_grad()
    def score(self, images: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """(features `[N,128]` float64, softmax probabilities `[N,classes]`) of images on [0,1]."""
        self.net.eval()
        features, probs = [], []
        for start in range(0, len(images), batch):
            f, logits = self.net(images[start:start + batch].float().cpu())
            features.append(f.double())
            probs.append(logits.softmax(1))
        return torch.cat(features), torch.cat(probs)


def cache_key(splits: Splits, epochs: int, seed: int) -> str:
    """A digest of everything that decides the classifier: the data, the code, the budget."""
    classes = len(splits.spec.classes)
    # the class count enters the key only where it is not ten, so the built-ins' entries keep their keys
    head = f"{VERSION}/{epochs}/{seed}/{splits.spec.shape}" + ("" if classes == 10 else f"/{classes}")
    digest = hashlib.blake2b(head.encode(), digest_size=8)
    for images in (splits.train, splits.test):
        digest.update(images.images.cpu().numpy().tobytes())
        digest.update(images.labels.cpu().numpy().tobytes())
    return digest.hexdigest()


def reference(splits: Splits, epochs: int = EPOCHS, seed: int = SEED) -> ReferenceClassifier:
    """The cached classifier for these splits, trained and cached first if there is none."""
    key = cache_key(splits, epochs, seed)
    path = cache_dir() / "reference" / f"{splits.spec.name}-{key}.pt"
    if path.is_file():
        return _load(path, splits, key)
    started = time.perf_counter()
    net = train_net(splits.train, splits.spec.shape, len(splits.spec.classes), epochs, seed)
    found = _finish(net, splits.test, key, from_cache=False, seconds=time.perf_counter() - started)
    _save(path, found)
    return found


def train_net(images: ImageSet, shape: tuple[int, int, int], classes: int, epochs: int, seed: int) -> ReferenceNet:
    """Adam on cross-entropy, seeded batch order and weights; leaves the global RNG as it was."""
    images = images.to(torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ReferenceNet(shape, classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=LR)
        order_generator = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=order_generator)
            for start in range(0, len(images), BATCH):
                index = order[start:start + BATCH]
                _, logits = net(images.floats(index))
                loss = nn.functional.cross_entropy(logits, images.labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return net.eval()


def _finish(net: ReferenceNet, test: ImageSet, key: str, from_cache: bool, seconds: float) -> ReferenceClassifier:
    found = ReferenceClassifier(net, key, 0.0, torch.zeros(FEATURES), torch.zeros(FEATURES, FEATURES),
                      from_cache, seconds)
    features, probs = found.score(test.to(torch.device("cpu")).floats(slice(None)))
    found.test_accuracy = float((probs.argmax(1) == test.labels.cpu()).double().mean())
    found.test_mean = features.mean(0)
    found.test_covariance = torch.cov(features.T)
    return found


def _save(path: Path, found: ReferenceClassifier) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"weights": found.net.state_dict(), "test_accuracy": found.test_accuracy,
             "test_mean": found.test_mean, "test_covariance": found.test_covariance,
             "train_seconds": found.train_seconds, "version": VERSION}
    # Write then rename, so a concurrent run never reads a half-written file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(state, temporary)
    os.replace(temporary, path)


def _load(path: Path, splits: Splits, key: str) -> ReferenceClassifier:
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = ReferenceNet(splits.spec.shape, len(splits.spec.classes))
    net.load_state_dict(state["weights"])
    return ReferenceClassifier(net.eval(), key, state["test_accuracy"], state["test_mean"],
                     state["test_covariance"], from_cache=True, train_seconds=state["train_seconds"])
