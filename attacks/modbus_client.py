"""The injection's Modbus/TCP clients ("engines"): one request and its reply at a time.

- ``pymodbus``: the pymodbus 3.16 synchronous TCP client.
- ``scapy``: requests built with scapy's Modbus layers (``scapy.contrib.modbus``) and sent
  over a kernel TCP connection; replies framed by their MBAP length (:mod:`common.modbus`)
  and decoded by scapy. The kernel's TCP (not scapy's) keeps the connection, so no firewall
  rule is needed to stop the kernel from resetting a hand-made handshake.

Every call fills in an :class:`Exchange` (a Modbus exception is data, not a Python
exception) and never raises on I/O. pymodbus and scapy are imported when an engine is used.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from common.modbus import FrameError, recv_adu

ENGINES = ("pymodbus", "scapy")


@dataclass
class Exchange:
    """One request and its reply, as recorded in the outcome's ``exchanges``.

    t_s: seconds since the attack started; latency_ms: request to reply.
    outcome: ``ok``, ``exception`` (``exception_code`` says which), ``timeout`` or ``error``.
    values: registers/bits read, or the (address, value) echo of a write.
    request_hex, reply_hex: the frames on the wire (scapy engine only).
    """

    t_s: float
    function_code: int
    address: int
    purpose: str
    request_value: int | None = None
    count: int = 1
    name: str = ""
    outcome: str = "error"
    exception_code: int | None = None
    values: list[int] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""
    request_hex: str = ""
    reply_hex: str = ""


class Engine:
    """A Modbus/TCP client; every call returns an :class:`Exchange` and never raises on I/O."""

    name = ""

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        self.host, self.port, self.unit_id, self.timeout_s = host, port, unit_id, timeout_s

    def connect(self) -> None:
        """Open the connection; OSError (or ConnectionError) when the PLC does not answer."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def request(self, ex: Exchange) -> Exchange:
        """Send ``ex`` (function, address, value or count), fill in its reply; return it."""
        raise NotImplementedError


class PymodbusEngine(Engine):
    """The pymodbus 3.16 synchronous client (``device_id`` keyword, no retries)."""

    name = "pymodbus"

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        super().__init__(host, port, unit_id, timeout_s)
        from pymodbus.client import ModbusTcpClient

        self.client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)

    def connect(self) -> None:
        if not self.client.connect():
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}")

    def close(self) -> None:
        self.client.close()

    def request(self, ex: Exchange) -> Exchange:
        from pymodbus.exceptions import ModbusException

        c, unit = self.client, self.unit_id
        start = time.monotonic()
        try:
            if ex.function_code == 5:
                rr = c.write_coil(ex.address, bool(ex.request_value), device_id=unit)
            elif ex.function_code == 6:
                rr = c.write_register(ex.address, int(ex.request_value or 0), device_id=unit)
            elif ex.function_code == 1:
                rr = c.read_coils(ex.address, count=ex.count, device_id=unit)
            elif ex.function_code == 3:
                rr = c.read_holding_registers(ex.address, count=ex.count, device_id=unit)
            elif ex.function_code == 4:
                rr = c.read_input_registers(ex.address, count=ex.count, device_id=unit)
            else:
                raise ValueError(f"function {ex.function_code} not supported here")
        except ModbusException as exc:
            ex.latency_ms = (time.monotonic() - start) * 1000
            ex.outcome = "timeout" if "timeout" in str(exc).lower() or \
                "no response" in str(exc).lower() else "error"
            ex.error = f"{type(exc).__name__}: {exc}"
            return ex
        ex.latency_ms = (time.monotonic() - start) * 1000
        if rr.isError():
            ex.outcome = "exception"
            ex.exception_code = int(getattr(rr, "exception_code", 0))
        else:
            ex.outcome = "ok"
            if ex.function_code == 1:
                ex.values = [int(b) for b in rr.bits[:ex.count]]
            elif ex.function_code in (3, 4):
                ex.values = [int(v) for v in rr.registers]
            else:
                ex.values = [ex.address, int(rr.bits[0]) if ex.function_code == 5
                             else int(rr.registers[0])]
        return ex


def scapy_request(transaction_id: int, unit_id: int, function_code: int, address: int,
                  value_or_count: int) -> bytes:
    """A request ADU built by scapy's Modbus layers (functions 1, 3, 4, 5, 6)."""
    from scapy.contrib import modbus as mb

    pdu: Any
    if function_code == 1:
        pdu = mb.ModbusPDU01ReadCoilsRequest(startAddr=address, quantity=value_or_count)
    elif function_code == 3:
        pdu = mb.ModbusPDU03ReadHoldingRegistersRequest(startAddr=address,
                                                        quantity=value_or_count)
    elif function_code == 4:
        pdu = mb.ModbusPDU04ReadInputRegistersRequest(startAddr=address,
                                                      quantity=value_or_count)
    elif function_code == 5:
        pdu = mb.ModbusPDU05WriteSingleCoilRequest(
            outputAddr=address, outputValue=0xFF00 if value_or_count else 0x0000)
    elif function_code == 6:
        pdu = mb.ModbusPDU06WriteSingleRegisterRequest(registerAddr=address,
                                                       registerValue=value_or_count)
    else:
        raise ValueError(f"function {function_code} not supported here")
    return bytes(mb.ModbusADURequest(transId=transaction_id, unitId=unit_id) / pdu)


def scapy_reply(data: bytes) -> tuple[int, int | None, list[int]]:
    """Decode one reply ADU with scapy: (function code, exception code or None, values)."""
    from scapy.contrib.modbus import ModbusADUResponse

    pdu = ModbusADUResponse(data).payload
    fc = int(pdu.funcCode)
    if fc & 0x80:
        return fc & 0x7F, int(pdu.exceptCode), []
    if fc in (1, 2):
        return fc, None, [(byte >> i) & 1 for byte in pdu.coilStatus for i in range(8)]
    if fc in (3, 4):
        return fc, None, [int(v) for v in pdu.registerVal]
    if fc == 5:
        return fc, None, [int(pdu.outputAddr), int(pdu.outputValue == 0xFF00)]
    if fc == 6:
        return fc, None, [int(pdu.registerAddr), int(pdu.registerValue)]
    raise FrameError(f"unexpected reply function {fc}")


class ScapyEngine(Engine):
    """Frames built and decoded by scapy, carried by a kernel TCP socket (see the module doc)."""

    name = "scapy"

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        super().__init__(host, port, unit_id, timeout_s)
        self.sock: socket.socket | None = None
        self.transaction_id = 0

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, ex: Exchange) -> Exchange:
        self.transaction_id = (self.transaction_id + 1) & 0xFFFF
        argument = ex.count if ex.function_code in (1, 3, 4) else int(ex.request_value or 0)
        frame = scapy_request(self.transaction_id, self.unit_id, ex.function_code, ex.address,
                              argument)
        ex.request_hex = frame.hex()
        start = time.monotonic()
        try:
            if self.sock is None:
                raise ConnectionError("not connected")
            self.sock.sendall(frame)
            reply = recv_adu(self.sock, "the PLC closed the connection")
        except TimeoutError:
            ex.latency_ms = (time.monotonic() - start) * 1000
            ex.outcome, ex.error = "timeout", f"no reply within {self.timeout_s:g} s"
            return ex
        except (OSError, FrameError) as exc:
            ex.latency_ms = (time.monotonic() - start) * 1000
            ex.outcome, ex.error = "error", f"{type(exc).__name__}: {exc}"
            self.close()
            return ex
        ex.latency_ms = (time.monotonic() - start) * 1000
        ex.reply_hex = reply.hex()
        tid = struct.unpack_from(">H", reply)[0]
        if tid != self.transaction_id:
            ex.outcome, ex.error = "error", f"reply transaction id {tid} != {self.transaction_id}"
            return ex
        _fc, exception_code, values = scapy_reply(reply)
        if exception_code is not None:
            ex.outcome, ex.exception_code = "exception", exception_code
        else:
            ex.outcome = "ok"
            ex.values = values[:ex.count] if ex.function_code == 1 else values
        return ex


ENGINE_CLASSES: dict[str, type[Engine]] = {"pymodbus": PymodbusEngine, "scapy": ScapyEngine}
