"""Switch names as this test session's labs create them (``SDNICS_SWITCH_PREFIX`` + plan name)."""

from __future__ import annotations

import os

PREFIX = os.environ.get("SDNICS_SWITCH_PREFIX", "")
S1, S2 = f"{PREFIX}s1", f"{PREFIX}s2"
SWITCHES = {S1, S2}
PORT_PREFIXES = (f"{S1}-eth", f"{S2}-eth")


def own_states() -> list[str]:
    """Run-state records of labs with this session's switch names (others may run beside)."""
    from lab.runstate import STATE_DIR, RunState

    names = []
    for path in STATE_DIR.glob("lab-*.json"):
        try:
            bridges = set(RunState.load(path).bridges)
        except (OSError, ValueError, TypeError):
            continue
        if bridges & SWITCHES:  # a record still without bridges may be a neighbour starting
            names.append(path.name)
    return names
