"""The OpenFlow engines a test runs on: os-ken always, Ryu only where its extra is installed.

Ryu 4.34 is the optional ``ryu`` extra (``pip install -e '.[ryu]'``, Python 3.11; ``make setup``
installs it there); on Python 3.12+ it does not install, so its cases skip instead of failing.
"""

from __future__ import annotations

import importlib.util

import pytest

RYU_INSTALLED = importlib.util.find_spec("ryu") is not None
needs_ryu = pytest.mark.skipif(
    not RYU_INSTALLED, reason="Ryu not installed (the optional extra: pip install -e '.[ryu]')")
ENGINE_PARAMS = (pytest.param("ryu", marks=needs_ryu), "os-ken")
"""``@pytest.mark.parametrize(..., ENGINE_PARAMS)``: both engines, Ryu skipped when absent."""
