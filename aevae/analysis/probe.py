"""The linear probe: how much class information the code holds in a linearly readable form.

A multinomial logistic regression (scikit-learn) on standardized code means of training
images, scored on the codes of the test images. Accuracy is a share on [0, 1].
"""

from __future__ import annotations

import torch

PROBE_MAX_ITER = 1000


def probe_accuracy(train_codes: torch.Tensor, train_labels: torch.Tensor,
                   test_codes: torch.Tensor, test_labels: torch.Tensor) -> float | None:
    """Test accuracy of a logistic regression fitted on the training codes; None when the
    training codes hold a single class (only in tiny smoke subsets), so nothing to tell apart."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if len(torch.unique(train_labels)) < 2:
        return None
    # Standardizing makes lbfgs converge in a few dozen steps whatever the code's scale
    # (AE codes are not tied to unit variance).
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER))
    # One thread: at this size a second gains nothing, and on a shared CPU idle BLAS threads
    # spinning for their turn made the fit 100 times slower (0.04 s against 4 s, measured).
    with threadpool_limits(limits=1):
        probe.fit(train_codes.double().numpy(), train_labels.numpy())
        return float(probe.score(test_codes.double().numpy(), test_labels.numpy()))
