"""Sample quality in the reference classifier's feature space.

- Frechet distance: between Gaussians fitted to the features of generated images and of the
  test images, ||m1 - m2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)), in squared feature units. It
  is FID's formula in aevae's own 128-d feature space: comparable between aevae runs scored
  by the same reference classifier with the same number of samples (the estimate is biased
  upwards for small sample counts), not with Inception-based FID.
- Confident share: the share of generated images the classifier assigns to one class with
  probability at least `CONFIDENT`, on [0, 1]; blurry or off-manifold samples score low.
"""

from __future__ import annotations

import numpy as np
import torch

CONFIDENT = 0.9


def feature_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[F]` and covariance `[F,F]` (float64) of features `[N,F]`."""
    data = features.double()
    return data.mean(0).numpy(), torch.cov(data.T).reshape(data.shape[1], -1).numpy()


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b)."""
    # Tr((C_a C_b)^(1/2)) is the sum of the square roots of the eigenvalues of C_a C_b, which
    # are real and non-negative for covariances; unlike a matrix square root this stays
    # accurate when a covariance is singular (dead ReLU features, fewer samples than features).
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b).real.clip(min=0)
    distance = np.square(mean_a - mean_b).sum() + np.trace(cov_a) + np.trace(cov_b) \
        - 2 * np.sqrt(eigenvalues).sum()
    return float(max(distance, 0.0))


def confident_share(probs: torch.Tensor, threshold: float = CONFIDENT) -> float:
    """Share of rows whose largest class probability is at least `threshold`."""
    return float((probs.max(1).values >= threshold).double().mean())
