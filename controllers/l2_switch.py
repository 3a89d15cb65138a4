"""The ``l2`` app: OpenFlow 1.3 L2 learning switch over :mod:`controllers.l2_switch_core`.

Runs on either engine: ``python -m controllers l2 [--engine ryu|os-ken]``, or from habit
``ryu-manager controllers/l2_switch.py`` once ``python -m controllers.ryu_compat --install`` has
been run in the venv. Events and OpenFlow messages are :class:`controllers.app.CoreApp`'s.
"""

from __future__ import annotations

from controllers.app import CoreApp
from controllers.flowspec import PacketResult
from controllers.l2_switch_core import LearningConfig, LearningSwitchCore


class L2Switch(CoreApp):
    """All forwarding logic lives in LearningSwitchCore."""

    def make_core(self) -> LearningSwitchCore:
        return LearningSwitchCore(LearningConfig())

    def packet_result(self, dpid: int, in_port: int, frame: bytes, now_s: float,
                      buffer_id: int) -> PacketResult:
        """The learning switch answers a bare Decision (it detects nothing)."""
        return PacketResult(self.core.packet_in(dpid=dpid, in_port=in_port, frame=frame,
                                                now_s=now_s, buffer_id=buffer_id))

    def stats_summary(self) -> dict[str, int]:
        """The core's counters plus handler exceptions (logged when the controller stops)."""
        return {**self.core.stats.as_dict(), "handler_exceptions": self.handler_exceptions}
