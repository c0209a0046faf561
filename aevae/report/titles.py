"""What a reader calls each model, arch and dataset of a grid, and what kind of code each model
has, as its runs say.

A plug-in's runs carry their own titles (`names.MODEL_TITLE`, `ARCH_TITLE`, `DATASET_TITLE`:
"IWAE", "residual conv", "8x8 digits") and their model's code (`names.MODEL_CODE`); the
report never imports a plug-in, so it reads them from the runs. Runs of older versions lack
the tags: the registry's titles stand in for them, then the name itself, and the built-in
models' codes are known here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from aevae.registry import ARCH_TITLES, DATASET_INFO, MODEL_TITLES
from aevae.tracking import names

# The values of names.MODEL_CODE
GAUSSIAN = "gaussian"  # a diagonal-Gaussian posterior and an N(0, I) prior: KL, ELBO and NLL apply
POINT = "point"  # a deterministic code (the AE's): no KL term, its KL logged as 0
DISCRETE = "discrete"  # a codebook: no KL, ELBO or NLL
# What the built-in models' runs of versions before the tag existed had.
BUILTIN_CODES = {"ae": POINT, "vae": GAUSSIAN}
AE = "ae"  # the model every other one is read against: the same network without a prior


def tagged(frame: pd.DataFrame, axis: str, tag: str) -> dict[str, str]:
    """name -> the value of run tag `tag` for runs of that `axis` name that carry it."""
    if tag not in frame or axis not in frame:
        return {}
    known = frame[[axis, tag]].dropna()
    known = known[known[tag].astype(str).str.strip() != ""]
    return dict(zip(known[axis].astype(str), known[tag].astype(str)))


@dataclass(frozen=True)
class Titles:
    """The runs' own titles and model codes, by name; `model`, `arch`, `dataset` and `code`
    look a name up with the fallbacks of the module docstring."""

    models: dict[str, str]
    archs: dict[str, str]
    datasets: dict[str, str]
    codes: dict[str, str]

    @classmethod
    def of(cls, runs: pd.DataFrame) -> "Titles":
        """From the identity columns runs.training_runs reads out of the tags."""
        return cls(tagged(runs, names.MODEL, names.MODEL_TITLE), tagged(runs, names.ARCH, names.ARCH_TITLE),
                   tagged(runs, names.DATASET, names.DATASET_TITLE), tagged(runs, names.MODEL, names.MODEL_CODE))

    def model(self, name) -> str:
        return self.models.get(str(name)) or MODEL_TITLES.get(str(name), str(name))

    def arch(self, name) -> str:
        return self.archs.get(str(name)) or ARCH_TITLES.get(str(name), str(name))

    def dataset(self, name) -> str:
        known = DATASET_INFO.get(str(name))
        return self.datasets.get(str(name)) or (known.title if known else str(name))

    def code(self, model) -> str:
        """GAUSSIAN, POINT, DISCRETE, or '' when neither the runs nor this module know it."""
        return self.codes.get(str(model)) or BUILTIN_CODES.get(str(model), "")

    def group(self, row, extra_axes: list[str], separator: str = "/") -> str:
        """`CIFAR-10/MLP` or `MNIST/conv/beta=0.5`: a cell without its model, as a reader names it."""
        extras = [f"{a}={row[a]}" for a in extra_axes if pd.notna(row.get(a))]
        return separator.join([self.dataset(row["dataset"]), self.arch(row["arch"]), *extras])
