"""`aevae` in a subprocess, on the synthetic data of the `data_root` fixture.

The fixture registers its files' checksums in this process only; this script registers the
checksums of the files it finds under AEVAE_DATA_DIR the same way, and points downloads
nowhere. It does so at import, outside the main guard, because bench's spawned workers
re-import the main script and must see the same registry.
"""

import dataclasses
import hashlib
import os
import sys
from pathlib import Path

from aevae.data import DATASETS

UNREACHABLE = ("http://127.0.0.1:9/",)  # as in conftest: a download fails at once

root = Path(os.environ["AEVAE_DATA_DIR"])
for name, spec in list(DATASETS.items()):
    folder = root / spec.folder
    files = spec.files
    if all((folder / f.name).is_file() for f in spec.files):
        files = tuple(dataclasses.replace(f, md5=hashlib.md5((folder / f.name).read_bytes()).hexdigest())
                      for f in spec.files)
    DATASETS[name] = dataclasses.replace(spec, files=files, mirrors=UNREACHABLE)

if __name__ == "__main__":
    from aevae.cli import main

    sys.exit(main(sys.argv[1:]))
