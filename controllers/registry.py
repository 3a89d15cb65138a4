"""Controller apps the launcher knows by short name (``python -m controllers <name>``).

Add an app by adding an :class:`AppEntry`; ``modules`` are loaded together into one
controller process (an app that needs L2 forwarding underneath lists ``controllers.l2_switch``
too). Importing this module loads no OpenFlow framework.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppEntry:
    """name: short name on the command line. modules: Python modules holding the app classes."""

    name: str
    modules: tuple[str, ...]
    description: str


APPS: dict[str, AppEntry] = {
    "l2": AppEntry(
        name="l2",
        modules=("controllers.l2_switch",),
        description="OpenFlow 1.3 L2 learning switch (idle-timeout flows, flood on trees)",
    ),
}
