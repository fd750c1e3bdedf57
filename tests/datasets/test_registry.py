"""Every dataset by name through one registry idiom; the data layer stays below the datasets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openmer.datasets import ADAPTERS, DATASETS, EMODB_CLASSES, load_builtin, load_dataset, load_emodb, load_mafw
from openmer.errors import ConfigError


def test_built_in_datasets_and_adapters_are_registered_by_their_decorators():
    assert DATASETS.names() == ["emodb", "meld", "ravdess", "ravdess-speech"]
    spec = DATASETS.get("emodb")
    assert spec.load is load_emodb and spec.holds == "media" and spec.protocol == "emodb"
    assert spec.classes == EMODB_CLASSES and spec.group == "speaker" and spec.modalities == ("audio", "text")
    assert {n: s.holds for n, s in DATASETS.items()} == {"emodb": "media", "ravdess-speech": "media",
                                                         "meld": "media", "ravdess": "features"}
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


def test_no_dataset_name_decides_behaviour_outside_the_registries():
    """Callers read a dataset's declaration: no ``name == "ravdess"`` or ``name in ("emodb", ...)`` in the code."""
    import re

    import openmer

    src = Path(openmer.__file__).parent
    names = r"""["'](emodb|meld|ravdess|ravdess-speech)["']"""
    pattern = re.compile(rf"""(==|!=)\s*{names}|{names}\s*(==|!=)|\bin\s*[(\[{{]\s*{names}""")
    hits = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_a_declaration_is_checked_when_registered():
    from openmer.datasets import register_dataset
    from openmer.registry import Registry

    common = {"modalities": ("audio",), "group": "speaker", "shared": "data/x", "layout": "x/"}
    with pytest.raises(ConfigError, match="holds must be 'media' or 'features'"):
        register_dataset("x", holds="clips", classes=("a",), **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"shared_names for class\(es\) \['joyful'\]"):
        register_dataset("x", holds="media", classes=("a",), shared_names={"joyful": "happiness"}, **common)
    assert DATASETS.get("meld").shared_names["joy"] == "happiness"
    assert isinstance(DATASETS, Registry)
