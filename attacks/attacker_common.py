"""What the attacker models (fast, persistent, aware) share: the interface, the ARP sweep that
reports each reply the moment it arrives, one Modbus attempt with its source address and port
recorded, and the outcome record.

Every attempt is recorded as an :class:`Attempt` with the source (IP, port) it used, so the
experiment can find it in the PLC's own request log (:mod:`common.requestlog`): the attacker's
belief ("replied") is kept, but success is decided at the target.

Bounds: a sweep sends at most :data:`MAX_SWEEP_ADDRESSES` ARP requests at most
:data:`SWEEP_PPS` a second (a larger target list is swept a seeded random sample at a time,
:func:`round_sample`); every connect and read waits at most ``timeout_s`` (≤ 10 s); at
most :data:`EXPLOIT_WORKERS` attempts run at once. Every address sent to comes from the scope
guard's expansion of ``--targets``, or is re-checked with :func:`common.scope.require_in_scope`.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from attacks.modbus_probe import probe_request, read_probe_reply
from attacks.recon_run import own_interfaces
from common.cli import positive_float
from common.hostenv import AttackOutcome, attack_parser
from common.modbus import MODBUS_PORT, FrameError
from common.plan import AddressPlan
from common.scope import require_in_scope

log = logging.getLogger(__name__)

R = TypeVar("R")

MAX_SWEEP_ADDRESSES = 4096
SWEEP_PPS = 2000.0
EXPLOIT_WORKERS = 16
MAX_TIMEOUT_S = 10.0
ARP_REPLY_BPF = "arp[6:2] = 2"  # ARP opcode 2 (is-at)


@dataclass
class Attempt:
    """One try to talk Modbus to an address.

    tactic: which attacker behaviour made it (``fast``, ``port_reuse``, ``spoof_authorized``...).
    src_ip, src_port: the source the request left with (a spoofed IP for ``spoof_authorized``).
    reply_unix_s: when the reply that revealed the address arrived (NaN-free: 0 when none).
    connected: the TCP handshake completed; sent: a Modbus request went out (an attempt in the
        experiment's sense); replied: a Modbus reply came back (the attacker's belief).
    """

    tactic: str
    address: str
    src_ip: str = ""
    src_port: int = 0
    started_unix_s: float = 0.0
    ended_unix_s: float = 0.0
    reply_unix_s: float = 0.0
    connected: bool = False
    sent: bool = False
    replied: bool = False
    error: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class AttackerOutcome(AttackOutcome):
    """attempts: every Modbus attempt; replies: every sweep reply (first per address and
    sweep); tactics: per tactic, what the attacker itself saw (aware); rounds: per sweep round
    (persistent): start time, responders, replied attempts."""

    model: str = ""
    attack_start_unix_s: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    tactics: dict[str, dict[str, Any]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)


def round_sample(targets: Sequence[str], seed: int, sweep: int,
                 size: int = MAX_SWEEP_ADDRESSES) -> list[str]:
    """What sweep number ``sweep`` sends to: every target, in order, when there are at most
    ``size``; else a random sample of ``size`` of them (no repeats, a fresh draw each sweep,
    the same for the same seed and sweep). The sample only ever holds given targets, so what
    the scope guard expanded stays the bound of what is sent."""
    if len(targets) <= size:
        return list(targets)
    return random.Random(f"sweep-sample:{seed}:{sweep}").sample(list(targets), size)


def attacker_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The attack parser plus what every model has: --timeout-s, --sweep-wait-s."""
    p = attack_parser(prog, description)
    p.add_argument("--timeout-s", type=positive_float, default=1.0,
                   help=f"per connect and read (at most {MAX_TIMEOUT_S:g})")
    p.add_argument("--sweep-wait-s", type=positive_float, default=1.0,
                   help="how long a sweep listens for replies after the last request")
    return p


@dataclass(frozen=True)
class Local:
    """The attacker's own interface on the plan's subnet."""

    iface: str
    ip: str
    mac: str


def local_interface(plan: AddressPlan) -> Local:
    """The interface with an address in the plan's subnet; RuntimeError when there is none."""
    for address, ifname in own_interfaces().items():
        iface = ipaddress.IPv4Interface(address)
        if iface.network.overlaps(plan.network) and not iface.is_loopback:
            with open(f"/sys/class/net/{ifname}/address") as f:
                return Local(ifname, str(iface.ip), f.read().strip().lower())
    raise RuntimeError(f"no local interface on {plan.subnet}: is this an emulated host?")


def modbus_attempt(tactic: str, address: str, timeout_s: float, *, src_port: int = 0,
                   reply_unix_s: float = 0.0, port: int = MODBUS_PORT,
                   sock: socket.socket | None = None) -> Attempt:
    """Connect (or use ``sock``, already connected) and send one harmless read (function 4,
    register 0); never raises. src_port: bind this source port first (0: the kernel's)."""
    timeout_s = min(timeout_s, MAX_TIMEOUT_S)
    a = Attempt(tactic, address, started_unix_s=time.time(), reply_unix_s=reply_unix_s)
    own = sock is None
    try:
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.settimeout(timeout_s)
            if src_port:
                sock.bind(("", src_port))
            sock.connect((address, port))
        a.src_ip, a.src_port = sock.getsockname()[:2]
        a.connected = True
        sock.settimeout(timeout_s)
        sock.sendall(probe_request(0x4242))
        a.sent = True
        read_probe_reply(sock)
        a.replied = True
    except (OSError, FrameError) as exc:
        a.error = f"{type(exc).__name__}: {exc}"
    finally:
        if own and sock is not None:
            close_with_reset(sock)
    a.ended_unix_s = time.time()
    return a


def close_with_reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a SYN scanner does: no TIME_WAIT left behind, so the
    same source port can be used again at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


@dataclass(frozen=True)
class Reply:
    """An ARP reply of a sweep: ``address`` is at ``mac``, seen at ``t_unix_s``."""

    address: str
    mac: str
    t_unix_s: float

    def to_dict(self, sweep: int = 0) -> dict[str, Any]:
        """The outcome's ``replies`` entry; sweep: which sweep of the run saw it."""
        return {"address": self.address, "mac": self.mac, "t_unix_s": self.t_unix_s,
                "sweep": sweep}


def arp_sweep(plan: AddressPlan, local: Local, addresses: Sequence[str], wait_s: float,
              on_reply: Callable[[Reply], None] | None = None) -> list[Reply]:
    """ARP who-has to every address; ``on_reply`` is called from the sniffer thread the moment
    each (first) reply arrives. Returns the replies, first per address, in arrival order."""
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import AsyncSniffer, sendp

    targets = [require_in_scope(plan, a) for a in addresses if a != local.ip]
    if len(targets) > MAX_SWEEP_ADDRESSES:
        raise ValueError(f"{len(targets)} addresses exceed the sweep bound "
                         f"{MAX_SWEEP_ADDRESSES}")
    wanted = set(targets)
    seen: dict[str, Reply] = {}
    lock = threading.Lock()

    def handle(pkt: Any) -> None:
        if ARP not in pkt or pkt[ARP].op != 2:
            return
        address = pkt[ARP].psrc
        with lock:
            if address not in wanted or address in seen:
                return
            # the kernel's capture time: the sniffer thread can fall seconds behind a large
            # sweep, and the reply's time decides who held the address when it answered
            reply = Reply(address, str(pkt[ARP].hwsrc).lower(), float(pkt.time))
            seen[address] = reply
        if on_reply is not None:
            on_reply(reply)

    # ARP replies only, in the kernel (BPF): the sweep's own requests never reach Python
    sniffer = AsyncSniffer(iface=local.iface, store=False, prn=handle, filter=ARP_REPLY_BPF,
                           lfilter=lambda p: ARP in p)
    sniffer.start()
    time.sleep(0.05)  # let the socket open before the first request leaves
    try:
        frames = [Ether(src=local.mac, dst="ff:ff:ff:ff:ff:ff")
                  / ARP(op=1, hwsrc=local.mac, psrc=local.ip, pdst=a) for a in targets]
        sendp(frames, iface=local.iface, inter=1.0 / SWEEP_PPS, verbose=0)
        time.sleep(wait_s)
    finally:
        sniffer.stop()
    return sorted(seen.values(), key=lambda r: r.t_unix_s)


def sweep_dispatch(plan: AddressPlan, local: Local, addresses: Sequence[str], wait_s: float,
                   task: Callable[[Reply], Callable[[], R] | None]
                   ) -> tuple[list[Reply], list[R]]:
    """ARP-sweep ``addresses`` and act on each reply the moment it arrives.

    task: called for each (first) reply, one reply at a time, from the sniffer thread; returns
        the work to run for that reply in a pool of :data:`EXPLOIT_WORKERS` threads, or None.
    Returns the replies (arrival order) and the works' results (submission order) once every
    work has finished.
    """
    futures: list[Future[R]] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=EXPLOIT_WORKERS) as pool:
        def on_reply(reply: Reply) -> None:
            with lock:
                work = task(reply)
                if work is not None:
                    futures.append(pool.submit(work))

        replies = arp_sweep(plan, local, addresses, wait_s, on_reply)
        results = [f.result() for f in list(futures)]
    return replies, results
