"""Mininet's cluster mode imports where ``distutils`` is missing (Python 3.12+): the stand-in
of :mod:`lab.cluster_compat` is used for the import only and removed afterwards."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import mininet.examples.cluster
import pytest
from packaging.version import Version

from lab import cluster_compat

CLUSTER_PY = Path(mininet.examples.cluster.__file__)


class _NoDistutils:
    """A meta-path finder that makes ``distutils`` unimportable, as on Python 3.12+."""

    @staticmethod
    def find_spec(name: str, *_args: object) -> None:
        if name == "distutils" or name.startswith("distutils."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def no_distutils(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on Python 3.12+: ``distutils`` neither loaded nor importable."""
    saved = {k: v for k, v in sys.modules.items() if k == "distutils" or
             k.startswith("distutils.")}
    for name in saved:
        del sys.modules[name]
    monkeypatch.setattr(sys, "meta_path", [_NoDistutils(), *sys.meta_path])
    try:
        yield
    finally:
        for name in [k for k in sys.modules if k == "distutils" or k.startswith("distutils.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_standin_gives_strictversion_then_leaves(no_distutils: None) -> None:
    with cluster_compat.distutils_version_standin() as used:
        assert used
        from distutils.version import StrictVersion
        assert StrictVersion is Version
        assert StrictVersion("3.1.0") > StrictVersion("1.10") > StrictVersion("1.9")
    assert "distutils" not in sys.modules and "distutils.version" not in sys.modules


def test_mininet_cluster_module_loads_under_the_standin(no_distutils: None) -> None:
    """The installed cluster.py (Debian 12's imports distutils) loads, and its one version
    check (OVS older than 1.10?) answers."""
    assert cluster_compat.distutils_missing()
    spec = importlib.util.spec_from_file_location("mn_cluster_probe", CLUSTER_PY)
    assert spec is not None and spec.loader is not None
    if "distutils" in CLUSTER_PY.read_text():  # Debian 12's file: fails without the stand-in
        with pytest.raises(ModuleNotFoundError, match="distutils"):
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    module = importlib.util.module_from_spec(spec)
    with cluster_compat.distutils_version_standin():
        spec.loader.exec_module(module)
    assert module.MininetCluster.__name__ == "MininetCluster"
    version_class = getattr(module, "StrictVersion", None) or module.Version
    assert not version_class("3.1.0") < version_class("1.10")
    assert "distutils" not in sys.modules


def test_nothing_registered_where_distutils_imports() -> None:
    if cluster_compat.distutils_missing():
        pytest.skip("this interpreter has no distutils")
    before = sys.modules.get("distutils")
    with cluster_compat.distutils_version_standin() as used:
        assert not used
    assert sys.modules.get("distutils") is before
