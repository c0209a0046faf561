"""`aevae` in a subprocess, on the synthetic data of the `data_root` fixture.

The fixture registers its files' checksums in this process only; this script registers the
checksums of the files it finds under AEVAE_DATA_DIR with the same helper. It does so at
import, outside the main guard, because bench's spawned workers re-import the main script
and must see the same registry.

With AEVAE_TEST_HOLD=<file>, every run stops before its second epoch (its first epoch's
metrics logged) until <file> exists: a test can then act while runs are certainly in the
middle of training, however short their cells are.
"""

import os
import sys
import time
from pathlib import Path

import aevae.training.loop
from aevae.data import DATASETS
from conftest import files_under, with_checksums_of

root = Path(os.environ["AEVAE_DATA_DIR"])
for name, spec in list(DATASETS.items()):
    DATASETS[name] = with_checksums_of(spec, files_under(root, spec))

if os.environ.get("AEVAE_TEST_HOLD"):
    hold, train_epoch = Path(os.environ["AEVAE_TEST_HOLD"]), aevae.training.loop.train_epoch

    def held_train_epoch(loss, model, optimizer, splits, cfg, generator, numerics, epoch):
        while epoch > 1 and not hold.exists():
            time.sleep(0.05)
        return train_epoch(loss, model, optimizer, splits, cfg, generator, numerics, epoch)

    aevae.training.loop.train_epoch = held_train_epoch

if __name__ == "__main__":
    from aevae.cli import main

    sys.exit(main(sys.argv[1:]))
