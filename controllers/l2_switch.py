"""OpenFlow 1.3 L2 learning switch: a thin adapter around :mod:`controllers.learning`.

Runs on either engine: ``python -m controllers l2 [--engine ryu|os-ken]``, or from habit
``ryu-manager controllers/l2_switch.py`` once ``python -m controllers.ryu_compat --install`` has
been run in the venv.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from controllers import engine, ofmsg
from controllers.flowspec import Decision
from controllers.handlers import fail_loudly
from controllers.learning import LearningConfig, LearningSwitchCore


class L2Switch(engine.AppBase):
    """Events in, core decisions out; all forwarding logic lives in LearningSwitchCore."""

    OFP_VERSIONS: ClassVar[list[int]] = [engine.ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.core = LearningSwitchCore(LearningConfig())
        self.handler_exceptions = 0
        self.datapaths: dict[int, Any] = {}
        ofmsg.check_constants(engine.ofproto_v1_3)

    @engine.set_ev_cls(engine.ofp_event.EventOFPSwitchFeatures, engine.CONFIG_DISPATCHER)
    @fail_loudly
    def on_switch_features(self, ev: Any) -> None:
        """A switch finished the handshake: fresh MAC table, table-miss flow to us."""
        datapath = ev.msg.datapath
        for spec in self.core.switch_connected(datapath.id):
            datapath.send_msg(ofmsg.flow_add(datapath, spec))

    @engine.set_ev_cls(engine.ofp_event.EventOFPStateChange,
                       [engine.MAIN_DISPATCHER, engine.DEAD_DISPATCHER])
    @fail_loudly
    def on_state_change(self, ev: Any) -> None:
        """Log connects/disconnects with the dpid (the lab waits for these lines)."""
        datapath = ev.datapath
        if datapath.id is None:
            return
        if ev.state == engine.MAIN_DISPATCHER:
            self.datapaths[datapath.id] = datapath
            self.logger.info("switch connected dpid=%016x", datapath.id)
        elif ev.state == engine.DEAD_DISPATCHER:
            self.datapaths.pop(datapath.id, None)
            self.core.switch_disconnected(datapath.id)
            self.logger.info("switch disconnected dpid=%016x", datapath.id)

    @engine.set_ev_cls(engine.ofp_event.EventOFPPacketIn, engine.MAIN_DISPATCHER)
    @fail_loudly
    def on_packet_in(self, ev: Any) -> None:
        """Hand the raw frame to the core (never to the framework's packet parser)."""
        msg = ev.msg
        datapath = msg.datapath
        decision = self.core.packet_in(
            dpid=datapath.id,
            in_port=msg.match.get("in_port"),
            frame=msg.data,
            now_s=time.monotonic(),
            buffer_id=msg.buffer_id,
        )
        self.apply(datapath, decision)

    def stats_summary(self) -> dict[str, int]:
        """The core's counters plus handler exceptions (logged when the controller stops)."""
        return {**self.core.stats.as_dict(), "handler_exceptions": self.handler_exceptions}

    def apply(self, datapath: Any, decision: Decision) -> None:
        """Send a decision's deletes, flows and packet-out to ``datapath``, in that order."""
        for delete in decision.deletes:
            datapath.send_msg(ofmsg.flow_delete(datapath, delete))
        for flow in decision.flows:
            datapath.send_msg(ofmsg.flow_add(datapath, flow))
        if decision.packet_out is not None:
            datapath.send_msg(ofmsg.packet_out(datapath, decision.packet_out))
