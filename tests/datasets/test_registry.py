"""Every dataset by name through one registry idiom; the data layer stays below the datasets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openmer.datasets import ADAPTERS, DATASETS, load_builtin, load_dataset, load_emodb, load_mafw
from openmer.errors import ConfigError


def test_built_in_datasets_and_adapters_are_registered_by_their_decorators():
    assert DATASETS.names() == ["emodb", "meld", "ravdess", "ravdess-speech"]
    assert DATASETS.get("emodb") is load_emodb
    assert ADAPTERS.names() == ["cmu-mosei", "mafw", "ov-merd"]
    assert ADAPTERS.get("mafw") is load_mafw


@pytest.mark.parametrize(("load", "name", "choices"), [
    (load_builtin, "mafw", "['emodb', 'meld', 'ravdess', 'ravdess-speech']"),
    (lambda name: load_dataset(name, "."), "emodb", "['cmu-mosei', 'mafw', 'ov-merd']"),
])
def test_an_unknown_name_lists_the_choices(load, name, choices):
    with pytest.raises(ConfigError, match=f"unknown dataset '{name}'; choose one of " + choices.replace("[", r"\[")):
        load(name)


def test_the_data_layer_does_not_import_the_datasets():
    code = ("import importlib, pkgutil, sys, openmer.data as d\n"
            "for m in pkgutil.iter_modules(d.__path__): importlib.import_module(f'openmer.data.{m.name}')\n"
            "print('openmer.datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
