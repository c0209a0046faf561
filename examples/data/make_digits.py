"""Write scikit-learn's bundled 8x8 digits (1,797 images, no download) as an .npz dataset in
Keras's layout, for aevae's grids (README: Bring your own data):

    .venv/bin/python examples/data/make_digits.py            # examples/data/digits.npz
    .venv/bin/python examples/data/make_digits.py OUT.npz

Pixels are 0 to 16 in scikit-learn; aevae reads uint8 images, so they are scaled to 0 to 255.
The first 1,440 images are the training split (aevae holds its validation images out of
them), the other 357 the test split; the labels are the digits, so the class names are
0 to 9 without a class_names array.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

TRAIN = 1440


def main(out: Path) -> None:
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # [N,8,8]
    labels = digits.target.astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x_train=images[:TRAIN], y_train=labels[:TRAIN],
                        x_test=images[TRAIN:], y_test=labels[TRAIN:])
    print(f"wrote {out}: {TRAIN} training and {len(images) - TRAIN} test images of 8x8 pixels")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("digits.npz"))
