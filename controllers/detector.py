"""Scan detector app: a thin adapter around :class:`controllers.detector_core.DetectorSwitchCore`.

``python -m controllers detector [--window-s S] [--max-dsts N] [--max-ports N] [--block-s S]
[--detect-log PATH]``: L2 learning with narrow (per-conversation) flows, and a drop flow on every
switch for a source that scans. Each detection is one JSON line in ``--detect-log`` (fields:
``time_unix_s``, ``src_mac``, ``src_ip``, ``distinct_dsts``, ``distinct_ports``, ``threshold``,
``window_s``, ``block_s``, ``sample_dsts``, ``sample_ports``, ``switches``) and one log line.

The class is also the base of :class:`controllers.rhm.RhmSwitch`, which swaps the core.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from controllers import engine, ofmsg
from controllers.detector_core import (
    DetectorSettings,
    DetectorSwitchCore,
    PacketResult,
    ScanDetector,
)
from controllers.flowspec import Decision
from controllers.handlers import fail_loudly
from controllers.learning import LearningSwitchCore
from controllers.registry import app_settings


class JsonLines:
    """Append-only JSON-lines file, flushed per record (readers poll it during a run)."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


class DetectorSwitch(engine.AppBase):
    """Events in, core answers out; one lock serialises the core (os-ken uses native threads)."""

    OFP_VERSIONS: ClassVar[list[int]] = [engine.ofproto_v1_3.OFP_VERSION]
    APP_NAME: ClassVar[str] = "detector"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler_exceptions = 0
        self.datapaths: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.settings = app_settings(self.APP_NAME)
        self.core = self.make_core()
        self.detect_log = JsonLines(self.detect_log_path())
        ofmsg.check_constants(engine.ofproto_v1_3)

    # --- hooks a subclass overrides ------------------------------------------------------
    def make_core(self) -> Any:
        settings: DetectorSettings = self.settings
        return DetectorSwitchCore(LearningSwitchCore(), ScanDetector(settings.config))

    def detect_log_path(self) -> str | None:
        return self.settings.detect_log

    # --- events --------------------------------------------------------------------------
    @engine.set_ev_cls(engine.ofp_event.EventOFPSwitchFeatures, engine.CONFIG_DISPATCHER)
    @fail_loudly
    def on_switch_features(self, ev: Any) -> None:
        """A switch finished the handshake: table-miss flow (and active blocks) on it."""
        datapath = ev.msg.datapath
        with self.lock:
            flows = self.core.switch_connected(datapath.id, time.monotonic())
        for spec in flows:
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
            with self.lock:
                self.core.switch_disconnected(datapath.id)
            self.logger.info("switch disconnected dpid=%016x", datapath.id)

    @engine.set_ev_cls(engine.ofp_event.EventOFPPacketIn, engine.MAIN_DISPATCHER)
    @fail_loudly
    def on_packet_in(self, ev: Any) -> None:
        """Hand the raw frame to the core (never to the framework's packet parser)."""
        msg = ev.msg
        datapath = msg.datapath
        with self.lock:
            result: PacketResult = self.core.packet_in(
                dpid=datapath.id, in_port=msg.match.get("in_port"), frame=msg.data,
                now_s=time.monotonic(), buffer_id=msg.buffer_id)
            self.apply(datapath, result.decision)
        if result.detection is not None:
            record = {"time_unix_s": round(time.time(), 6),
                      "switches": len(result.decision.flows), **result.detection.record()}
            self.detect_log.write(record)
            self.logger.info("scan blocked src_mac=%s src_ip=%s threshold=%s dsts=%d ports=%d "
                             "block_s=%d switches=%d", record["src_mac"], record["src_ip"],
                             record["threshold"], record["distinct_dsts"],
                             record["distinct_ports"], record["block_s"], record["switches"])

    # --- output --------------------------------------------------------------------------
    def datapath_for(self, dpid: int, fallback: Any = None) -> Any:
        if fallback is not None and fallback.id == dpid:
            return fallback
        return self.datapaths.get(dpid)

    def apply(self, datapath: Any, decision: Decision) -> None:
        """Send a decision's deletes, flows and packet-out, each to the switch it names."""
        for delete in decision.deletes:
            target = self.datapath_for(delete.dpid, datapath)
            if target is not None:
                target.send_msg(ofmsg.flow_delete(target, delete))
        for flow in decision.flows:
            target = self.datapath_for(flow.dpid, datapath)
            if target is not None:
                target.send_msg(ofmsg.flow_add(target, flow))
        if decision.packet_out is not None:
            target = self.datapath_for(decision.packet_out.dpid, datapath)
            if target is not None:
                target.send_msg(ofmsg.packet_out(target, decision.packet_out))
