"""The light registry and the registries that bind its names to code name the same things."""

from __future__ import annotations

from aevae import data, models, registry


def test_datasets_bind_exactly_the_registry_names():
    assert list(data.DATASETS) == list(registry.DATASET_INFO)


def test_models_and_archs_bind_exactly_the_registry_names():
    assert set(models.MODELS) == set(registry.MODEL_TITLES)
    assert set(models.ARCHS) == set(registry.ARCH_TITLES)
