"""The light registry and the registries that bind its names to code name the same things."""

from __future__ import annotations

import dataclasses

from aevae import data, models, registry
from aevae.tune import defaults, space


def test_datasets_bind_exactly_the_registry_names_with_its_facts():
    assert list(data.DATASETS) == list(registry.DATASET_INFO)
    for name, spec in data.DATASETS.items():
        facts = {f.name: getattr(spec, f.name) for f in dataclasses.fields(registry.DatasetInfo)}
        assert registry.DatasetInfo(**facts) == registry.DATASET_INFO[name]
        assert spec.name == name


def test_models_and_archs_bind_exactly_the_registry_names():
    assert set(models.MODELS) == set(registry.MODEL_TITLES)
    assert set(models.ARCHS) == set(registry.ARCH_TITLES)


def test_the_command_line_offers_exactly_the_pruners_there_are():
    assert set(defaults.PRUNER_NAMES) == set(space.PRUNERS)
