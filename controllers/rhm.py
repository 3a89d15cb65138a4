"""The ``rhm`` app: random host mutation over :class:`controllers.rhm_core.RhmCore`.

``python -m controllers rhm [--plan PLAN.json] [--hop-interval-s S] [--seed N] [--jitter-s S]
[--flow-idle-s S] [--arp-mac virtual|real] [--hop-log PATH] [--decoys N]
[--detector ...detector options]``
(options: :mod:`controllers.rhm_options`). Packet-ins and switch events are
:class:`controllers.app.CoreApp`'s; this app adds the hop thread.

A hop thread asks the core for due hops, sends their flow changes, then a barrier request to
each switch touched; when every barrier reply is back, the hop is logged as one JSON line in
``--hop-log`` (a :class:`common.hoplog.HopRecord`; its latency is None when no switch was
touched or a barrier reply did not come within :data:`BARRIER_TIMEOUT_S`) and one log line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from common import hoplog
from common.hopschedule import HopEvent
from controllers import engine, ofmsg
from controllers.app import CoreApp, DetectLog
from controllers.detector_core import ScanDetector
from controllers.handlers import fail_loudly
from controllers.l2_switch_core import LearningSwitchCore
from controllers.rhm_core import HopResult, RhmCore
from controllers.rhm_options import RhmSettings

BARRIER_TIMEOUT_S = 5.0
HOP_LOOP_MAX_SLEEP_S = 0.2


@dataclass
class _PendingHop:
    result: HopResult
    sent_s: float
    outstanding: set[tuple[int, int]] = field(default_factory=set)


class RhmSwitch(CoreApp):
    """The RHM core (the scan detector composed in only with ``--detector``), plus hops,
    barriers and flow-removed messages."""

    APP_NAME: ClassVar[str] = "rhm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings: RhmSettings = self.settings
        # Spoofing events are logged with the detector's log, or alone without a detector.
        self.detect_log = DetectLog(settings.spoof_log, self.logger)
        self.hop_log = Path(settings.hop_log) if settings.hop_log else None
        if self.hop_log is not None:
            self.hop_log.parent.mkdir(parents=True, exist_ok=True)
        self._pending: dict[int, _PendingHop] = {}
        self._barrier_owner: dict[tuple[int, int], int] = {}

    def make_core(self) -> RhmCore:
        settings: RhmSettings = self.settings
        detector = (ScanDetector(settings.detector.config)
                    if settings.detector is not None else None)
        return RhmCore(settings.load_plan(), settings.config, time.monotonic(),
                       LearningSwitchCore(), detector, settings.hardening, settings.decoys)

    def start(self) -> Any:
        thread = super().start()
        cfg = self.settings.config
        self.logger.info("rhm started seed=%d hop_interval_s=%g jitter_s=%g flow_idle_s=%d "
                         "arp_mac=%s detector=%s hardening=%s decoys=%d", cfg.seed,
                         cfg.hop_interval_s, cfg.jitter_s, cfg.flow_idle_timeout_s, cfg.arp_mac,
                         self.settings.detector is not None, self.settings.hardening,
                         self.settings.decoys)
        self._log_decoys()
        for event in self.core.initial_events:
            self._log_hop(event, 0, 0, 0, 0, None)
        self.threads.append(engine.hub.spawn(self._hop_loop))
        return thread

    def stats_summary(self) -> dict[str, int]:
        """The learning switch's and the mutation core's counters (packet-ins, ARP and decoy
        answers, refusals), plus handler exceptions; logged when the controller stops."""
        return {**self.core.learning.stats.as_dict(), **self.core.stats.as_dict(),
                "decoy_draws": self.core.decoys.draws,
                "handler_exceptions": self.handler_exceptions}

    # --- hops ----------------------------------------------------------------------------
    def _hop_loop(self) -> None:
        while True:
            try:
                self._hop_once()
            except Exception:
                self.handler_exceptions += 1
                self.logger.exception("HANDLER EXCEPTION app=%s handler=_hop_loop count=%d",
                                      type(self).__name__, self.handler_exceptions)
            with self.lock:
                wait_s = self.core.next_hop_in_s(time.monotonic())
            engine.hub.sleep(min(max(wait_s, 0.005), HOP_LOOP_MAX_SLEEP_S))

    def _hop_once(self) -> None:
        with self.lock:
            now_s = time.monotonic()
            results = self.core.tick(now_s)
            for result in results:
                self._send_hop(result)
            if results:
                self._log_decoys()
            cut = self.core.cut_retired(now_s)
            if cut:
                self.send_changes(cut, ())
            for seq in [s for s, p in self._pending.items()
                        if now_s - p.sent_s > BARRIER_TIMEOUT_S]:
                self._finish(seq, None)

    def _log_decoys(self) -> None:
        """The decoy set after each draw (the ground truth of what a sweep finds)."""
        decoys = self.core.decoys
        if decoys.count:
            self.logger.info("decoys draw=%d addresses=%s", decoys.draws,
                             ",".join(sorted(decoys.current)))

    def _send_hop(self, result: HopResult) -> None:
        pending = _PendingHop(result, result.decided_s)
        dpids = {d.dpid for d in result.deletes} | {f.dpid for f in result.flows}
        self.send_changes(result.deletes, result.flows)
        for dpid in sorted(dpids):
            target = self.datapaths.get(dpid)
            if target is None:
                continue
            msg, xid = ofmsg.barrier_request(target)
            pending.outstanding.add((dpid, xid))
            self._barrier_owner[(dpid, xid)] = result.event.seq
            target.send_msg(msg)
        self._pending[result.event.seq] = pending
        if not pending.outstanding:
            self._finish(result.event.seq, None)

    def _finish(self, seq: int, done_s: float | None) -> None:
        pending = self._pending.pop(seq)
        for key in pending.outstanding:
            self._barrier_owner.pop(key, None)
        r = pending.result
        latency_ms = None if done_s is None else (done_s - r.decided_s) * 1000.0
        switches = len({f.dpid for f in r.flows} | {d.dpid for d in r.deletes})
        self._log_hop(r.event, len(r.flows), len(r.deletes), switches, r.kept_flows, latency_ms)

    def _log_hop(self, event: HopEvent, flows: int, deletes: int, switches: int, kept: int,
                 latency_ms: float | None) -> None:
        if self.hop_log is not None:
            hoplog.append(self.hop_log, hoplog.HopRecord(
                time_unix_s=round(time.time(), 6), t_s=round(event.t_s, 6), seq=event.seq,
                host=event.host, real_ip=event.real_ip, old_virtual=event.old_virtual,
                new_virtual=event.new_virtual, kept_flows=kept,
                decision_ms=None if latency_ms is None else round(latency_ms, 3),
                defense=hoplog.RHM, flows_installed=flows, flows_deleted=deletes,
                switches=switches))
        self.logger.info("hop seq=%d host=%s old=%s new=%s flows=%d kept_flows=%d "
                         "decision_to_flows_ms=%s", event.seq, event.host, event.old_virtual,
                         event.new_virtual, flows, kept,
                         "none" if latency_ms is None else f"{latency_ms:.2f}")

    @engine.set_ev_cls(engine.ofp_event.EventOFPBarrierReply, engine.MAIN_DISPATCHER)
    @fail_loudly
    def on_barrier_reply(self, ev: Any) -> None:
        """A switch processed everything sent before our barrier: a hop's flows are in place
        once every switch it touched has answered."""
        done_s = time.monotonic()
        key = (ev.msg.datapath.id, ev.msg.xid)
        with self.lock:
            seq = self._barrier_owner.pop(key, None)
            pending = self._pending.get(seq) if seq is not None else None
            if pending is None:
                return
            pending.outstanding.discard(key)
            if not pending.outstanding:
                self._finish(seq, done_s)

    @engine.set_ev_cls(engine.ofp_event.EventOFPFlowRemoved, engine.MAIN_DISPATCHER)
    @fail_loudly
    def on_flow_removed(self, ev: Any) -> None:
        """An edge rewrite flow idled out: its conversation's mapping may end."""
        with self.lock:
            self.core.flow_removed(ev.msg.cookie)
