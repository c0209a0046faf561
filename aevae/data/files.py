"""Datasets from files people already have (README: Bring your own data): an `.npz` file of
uint8 images with Keras's names, or a folder of images in class folders under train/ and
test/. Each is read into the same uint8 arrays as the built-ins, checked first: bad data is
one sentence naming the file and what to do, and nothing trains on it.
"""

from __future__ import annotations

from aevae.plugins import PluginError, load


def open_reference(reference: str, kind: str = "dataset"):
    """The dataset a reference names: a code reference (module:attribute, path/file.py:
    attribute) to a dataset object or a function that makes one."""
    if ":" in reference:
        found = load(reference, kind)
        return found() if callable(found) and not hasattr(found, "arrays") else found
    raise PluginError(f"the dataset {reference} is neither a code reference nor a file aevae reads.")
