"""The ``detector`` app: the scan detector over :mod:`controllers.detector_core`.

``python -m controllers detector [--window-s S] [--max-dsts N] [--max-ports N] [--block-s S]
[--detect-log PATH]`` (options: :mod:`controllers.detector_options`): L2 learning with narrow
(per-conversation) flows, and a drop flow on every switch for a source that scans. Each
detection is one JSON line in ``--detect-log`` (fields: ``time_unix_s``, ``src_mac``,
``src_ip``, ``distinct_dsts``, ``distinct_ports``, ``threshold``, ``window_s``, ``block_s``,
``sample_dsts``, ``sample_ports``, ``switches``) and one log line
(:class:`controllers.app.DetectLog`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from controllers.app import CoreApp, DetectLog
from controllers.detector_core import DetectorSwitchCore, ScanDetector
from controllers.detector_options import DetectorSettings
from controllers.l2_switch_core import LearningSwitchCore


class DetectorSwitch(CoreApp):
    """Learning switch with narrow flows, the scan detector in front."""

    APP_NAME: ClassVar[str] = "detector"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.detect_log = DetectLog(self.settings.detect_log, self.logger)

    def make_core(self) -> DetectorSwitchCore:
        settings: DetectorSettings = self.settings
        return DetectorSwitchCore(LearningSwitchCore(), ScanDetector(settings.config))
