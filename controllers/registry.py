"""Controller apps the launcher knows by short name (``python -m controllers <name>``).

Add an app by adding an :class:`AppEntry`; ``modules`` are loaded together into one
controller process (an app that needs L2 forwarding underneath lists ``controllers.l2_switch``
too). Importing this module loads no OpenFlow framework.

App options: an entry's ``options`` names a framework-free module with
``add_arguments(parser)`` and ``settings_from_args(namespace) -> settings`` (ValueError on bad
input). The launcher adds those options to its command line, and stores the settings here
(:func:`set_app_settings`) before the app is instantiated; the app reads them with
:func:`app_settings`.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class AppEntry:
    """name: short name on the command line. modules: Python modules holding the app classes.

    options: module providing the app's command-line options (see module docstring), or "".
    """

    name: str
    modules: tuple[str, ...]
    description: str
    options: str = ""

    def options_module(self) -> ModuleType | None:
        return importlib.import_module(self.options) if self.options else None


APPS: dict[str, AppEntry] = {
    "l2": AppEntry(
        name="l2",
        modules=("controllers.l2_switch",),
        description="OpenFlow 1.3 L2 learning switch (idle-timeout flows, flood on trees)",
    ),
    "rhm": AppEntry(
        name="rhm",
        modules=("controllers.rhm",),
        description="random host mutation (virtual addresses for protected hosts) + L2 "
                    "learning; --detector adds the scan detector",
        options="controllers.rhm_options",
    ),
    "detector": AppEntry(
        name="detector",
        modules=("controllers.detector",),
        description="scan detector (drop flows for scanners) + L2 learning with narrow flows",
        options="controllers.detector_options",
    ),
}

_settings: dict[str, Any] = {}


def set_app_settings(name: str, settings: Any) -> None:
    """Record the parsed settings of app ``name`` for this controller process."""
    _settings[name] = settings


def app_settings(name: str) -> Any:
    """Settings of app ``name``: what the launcher recorded, else the options' defaults (the
    app was started some other way, e.g. ``ryu-manager``)."""
    if name not in _settings:
        module = APPS[name].options_module()
        if module is None:
            return None
        parser = argparse.ArgumentParser(add_help=False)
        module.add_arguments(parser)
        _settings[name] = module.settings_from_args(parser.parse_args([]))
    return _settings[name]
