"""Mininet's cluster mode (``mininet.examples.cluster``), importable on Python 3.10 to 3.13.

Debian 12's Mininet 2.3.0 has ``from distutils.version import StrictVersion`` in
``examples/cluster.py``, used once (``RemoteOVSSwitch.isOldOVS``: OVS older than 1.10?).
``distutils`` left the standard library in Python 3.12, so with that Mininet and a 3.12+
interpreter the import fails, and with it every lab (``lab.lifecycle`` imports the cluster
classes). Debian 13's package replaced the line with ``packaging.version.Version``; where
``distutils`` is missing, :func:`distutils_version_standin` does the same for the old file:
while Mininet's module is imported, a ``distutils.version`` module whose ``StrictVersion`` is
``packaging``'s ``Version`` (a dependency of matplotlib, so always in the venv) is registered,
and removed again afterwards. Where ``distutils`` imports (3.10, 3.11, or setuptools' shim),
nothing is changed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator

from packaging.version import Version

SHIM_NAME = "distutils.version"


def distutils_missing() -> bool:
    """True when ``import distutils`` would fail (Python 3.12+ without setuptools' shim)."""
    if "distutils" in sys.modules:
        return False
    try:
        return importlib.util.find_spec("distutils") is None
    except (ImportError, ValueError):
        return True


@contextlib.contextmanager
def distutils_version_standin() -> Iterator[bool]:
    """While inside, a ``distutils.version`` stand-in exists if ``distutils`` is missing
    (yields True then); it is taken out of ``sys.modules`` again on leaving, so no other code
    sees a ``distutils`` that is not there.

    Only ``StrictVersion`` is provided (the one name Mininet's cluster mode imports).
    """
    if not distutils_missing():
        yield False
        return
    package = types.ModuleType("distutils")
    package.__path__ = []  # a package, so "distutils.version" resolves through sys.modules
    version = types.ModuleType(SHIM_NAME)
    version.StrictVersion = Version  # type: ignore[attr-defined]
    package.version = version  # type: ignore[attr-defined]
    sys.modules["distutils"] = package
    sys.modules[SHIM_NAME] = version
    try:
        yield True
    finally:
        for name in (SHIM_NAME, "distutils"):
            if sys.modules.get(name) in (package, version):
                del sys.modules[name]


with distutils_version_standin():
    from mininet.examples.cluster import (
        ClusterCleanup,
        MininetCluster,
        RemoteHost,
        RemoteLink,
        RemoteOVSSwitch,
    )

__all__ = ["ClusterCleanup", "MininetCluster", "RemoteHost", "RemoteLink", "RemoteOVSSwitch",
           "distutils_missing", "distutils_version_standin"]
