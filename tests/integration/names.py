"""Switch names as this test session's labs create them (``SDNICS_SWITCH_PREFIX`` + plan name)."""

from __future__ import annotations

import os

PREFIX = os.environ.get("SDNICS_SWITCH_PREFIX", "")
S1, S2 = f"{PREFIX}s1", f"{PREFIX}s2"
SWITCHES = {S1, S2}
PORT_PREFIXES = (f"{S1}-eth", f"{S2}-eth")
