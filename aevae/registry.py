"""The names aevae knows and what they mean, without importing torch or numpy.

The CLI, the config and the report need a dataset's title, image shape and defaults, and
the model and architecture names, long before (or without ever) training anything; keeping
them here lets `aevae --help` and `aevae report` start without loading torch. The registries
that bind these names to code (`aevae.data.DATASETS`, `aevae.models.MODELS` and `ARCHS`) use
the same keys, and a test holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetInfo:
    """What is known of a dataset without reading it."""

    name: str
    title: str
    shape: tuple[int, int, int]
    """Image shape [C,H,W]."""
    classes: tuple[str, ...]
    """Label names, by label."""
    default_latent: int
    """Latent size of a config that leaves `latent_dim` empty."""
    default_recon_loss: str
    """Reconstruction term of a config that leaves `recon_loss` empty: 'bce' or 'mse'."""
    binary_ok: bool
    """Whether dynamic binarization makes sense (near-binary images, the MNIST family)."""
    train_images: int = field(default=0, kw_only=True)
    """Images of the training split, validation included (a dataset of the user's is read
    to know it); 0 where it is not known."""


_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

# In the order the report lists them.
DATASET_INFO: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "MNIST", (1, 28, 28), tuple(str(d) for d in range(10)),
                         default_latent=20, default_recon_loss="bce", binary_ok=True, train_images=60_000),
    "fashion_mnist": DatasetInfo("fashion_mnist", "Fashion-MNIST", (1, 28, 28), _FASHION_CLASSES,
                                 default_latent=20, default_recon_loss="bce", binary_ok=True, train_images=60_000),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10", (3, 32, 32), _CIFAR_CLASSES,
                           default_latent=128, default_recon_loss="mse", binary_ok=False, train_images=50_000),
}

# Model families (the AE first, as the report compares the VAE against it) and encoder /
# decoder architectures, by name, with the titles tables and figures show.
MODEL_TITLES: dict[str, str] = {"ae": "AE", "vae": "VAE"}
ARCH_TITLES: dict[str, str] = {"mlp": "MLP", "conv": "conv"}

