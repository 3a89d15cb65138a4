"""The one framework-facing adapter for every pure core: events in, OpenFlow messages out.

:class:`CoreApp` turns Ryu/os-ken events into calls on a pure core (``switch_connected``,
``switch_disconnected``, ``packet_in``, with the time as an argument) and the core's plain-data
answers (:mod:`controllers.flowspec`) into OpenFlow messages (:mod:`controllers.ofmsg`). An app
(``l2_switch``, ``detector``, ``rhm``) only says which core it runs (:meth:`CoreApp.make_core`)
and adds what is its own (rhm: the hop thread); a core's detection, when it has a detector, is
logged by :class:`DetectLog`.

Every handler is wrapped by :func:`controllers.handlers.fail_loudly`; one lock serialises the
core (os-ken runs handlers on native threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from common import jsonlines
from controllers import engine, ofmsg
from controllers.flowspec import Decision, FlowDelete, FlowSpec, PacketResult
from controllers.handlers import fail_loudly
from controllers.registry import app_settings


class Core(Protocol):
    """What the adapter asks of a pure core (each answer is plain data)."""

    def switch_connected(self, dpid: int, now_s: float) -> tuple[FlowSpec, ...]: ...

    def switch_disconnected(self, dpid: int) -> None: ...

    def packet_in(self, dpid: int, in_port: int, frame: bytes, now_s: float,
                  buffer_id: int) -> PacketResult: ...


class DetectLog:
    """The scan detector's output: one JSON line per detection (``--detect-log``, optional) and
    one ``scan blocked ...`` log line."""

    def __init__(self, path: str | None, logger: Any) -> None:
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.logger = logger

    def write(self, result: PacketResult) -> None:
        """Record ``result``'s detection (the caller checked there is one)."""
        assert result.detection is not None
        record = {"time_unix_s": round(time.time(), 6),
                  "switches": len(result.decision.flows), **result.detection.record()}
        if self.path is not None:
            jsonlines.append(self.path, record)
        if record.get("kind") == "spoof":
            self.logger.warning("spoof refused src_mac=%s src_ip=%s dpid=%s in_port=%s "
                                "claims_host=%s claims=%s", record["src_mac"],
                                record["src_ip"], record["dpid"], record["in_port"],
                                record["claims_host"], record["claims"])
            return
        self.logger.info("scan blocked src_mac=%s src_ip=%s threshold=%s dsts=%d ports=%d "
                         "block_s=%d switches=%d", record["src_mac"], record["src_ip"],
                         record["threshold"], record["distinct_dsts"],
                         record["distinct_ports"], record["block_s"], record["switches"])


class CoreApp(engine.AppBase):
    """Events in, core answers out. Subclasses implement :meth:`make_core`; one with a scan
    detector sets :attr:`detect_log`.

    APP_NAME: the launcher's name of an app with options (:attr:`settings` are then that app's,
    see :mod:`controllers.registry`); None for an app without options.
    """

    OFP_VERSIONS: ClassVar[list[int]] = [engine.ofproto_v1_3.OFP_VERSION]
    APP_NAME: ClassVar[str | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler_exceptions = 0
        self.datapaths: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.detect_log: DetectLog | None = None
        self.settings: Any = app_settings(self.APP_NAME) if self.APP_NAME else None
        self.core = self.make_core()
        ofmsg.check_constants(engine.ofproto_v1_3)

    def make_core(self) -> Any:
        """The pure core this app runs (called once, from ``__init__``)."""
        raise NotImplementedError

    def packet_result(self, dpid: int, in_port: int, frame: bytes, now_s: float,
                      buffer_id: int) -> PacketResult:
        """The core's answer to one packet-in (a core answering a bare Decision overrides)."""
        return self.core.packet_in(dpid=dpid, in_port=in_port, frame=frame, now_s=now_s,
                                   buffer_id=buffer_id)

    # --- events --------------------------------------------------------------------------
    @engine.set_ev_cls(engine.ofp_event.EventOFPSwitchFeatures, engine.CONFIG_DISPATCHER)
    @fail_loudly
    def on_switch_features(self, ev: Any) -> None:
        """A switch finished the handshake: its first flows (table-miss, active blocks)."""
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
            result = self.packet_result(datapath.id, msg.match.get("in_port"), msg.data,
                                        time.monotonic(), msg.buffer_id)
            self.apply(datapath, result.decision)
        if result.detection is not None and self.detect_log is not None:
            self.detect_log.write(result)

    # --- output --------------------------------------------------------------------------
    def datapath_for(self, dpid: int, fallback: Any = None) -> Any:
        """The connected datapath ``dpid`` (``fallback`` when it is that one), or None."""
        if fallback is not None and fallback.id == dpid:
            return fallback
        return self.datapaths.get(dpid)

    def apply(self, datapath: Any, decision: Decision) -> None:
        """Send a decision's deletes, flows and packet-out, each to the switch it names."""
        self.send_changes(decision.deletes, decision.flows, datapath)
        if decision.packet_out is not None:
            target = self.datapath_for(decision.packet_out.dpid, datapath)
            if target is not None:
                target.send_msg(ofmsg.packet_out(target, decision.packet_out))

    def send_changes(self, deletes: Iterable[FlowDelete], flows: Iterable[FlowSpec],
                     datapath: Any = None) -> None:
        """Flow deletes then adds, each to the switch it names (skipped if not connected)."""
        for delete in deletes:
            target = self.datapath_for(delete.dpid, datapath)
            if target is not None:
                target.send_msg(ofmsg.flow_delete(target, delete))
        for flow in flows:
            target = self.datapath_for(flow.dpid, datapath)
            if target is not None:
                target.send_msg(ofmsg.flow_add(target, flow))
