"""Datasets read once per process: every cell (or trial) of a process that uses a dataset
reuses it, and a dataset that cannot be had fails its later users at once, with the same
reason. An executor may hand cells another object with the same `get` (the Ray executor's
reads each dataset once per machine)."""

from __future__ import annotations

from aevae.config import TrainConfig
from aevae.data import Splits, data_root, load
from aevae.errors import AevaeError


class DataCache:
    """`get(cfg, data_dir)`: the splits `cfg` asks for, read on the first call."""

    def __init__(self):
        self._loaded: dict[tuple, Splits | AevaeError] = {}

    def get(self, cfg: TrainConfig, data_dir: str | None) -> Splits:
        key = (cfg.dataset, data_root(data_dir), cfg.val_size, cfg.subset, cfg.plugins)
        if key not in self._loaded:
            try:
                self._loaded[key] = load(cfg.dataset, data_dir, cfg.val_size, cfg.subset, cfg.plugins)
            except AevaeError as exc:
                self._loaded[key] = exc
        found = self._loaded[key]
        if isinstance(found, AevaeError):
            raise type(found)(*found.args)
        return found
