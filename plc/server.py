"""A Modbus/TCP PLC: pymodbus 3.16 TCP server + a fixed-rate scan cycle + ground-truth CSV.

``python -m plc.server --process tank|pressure [--host 0.0.0.0] [--port 502]
[--cycle-ms 100] [--unit-id 1] [--state-csv PATH] [--request-log PATH] [--name PLC]
[--duration-s S]``

Hostile traffic never reaches pymodbus's own stream parser (which has crash bugs on
malformed frames in 3.16): each connection's bytes are split into ADUs by :mod:`common.modbus`;
a broken MBAP header closes that connection only; requests that break the Modbus spec or
the register map are answered with an exception here; only well-formed requests are decoded
by pymodbus and run against its datastore, one at a time per connection, with any error
confined to that connection. With ``--request-log`` every request that reached this point
is recorded (:mod:`common.requestlog`: client address and port, unit, function, answered).
Connections are capped (silent ones are evicted first) and
idle ones reaped, so floods of half-open connections cannot lock out the HMI. The scan
cycle is a separate task that nothing on the network side can stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from common.cli import number_in
from common.errors import UserError
from common.modbus import (
    MODBUS_PORT,
    REPORT_SERVER_ID,
    WRITE_SINGLE_FUNCTIONS,
    ExceptionCode,
    Frame,
    FrameError,
    adu,
    check_request,
    exception_adu,
    report_server_id_adu,
    split_frames,
)
from common.requestlog import RequestLogWriter, RequestRecord
from plc.cli import plc_main, plc_parser
from plc.program import PlcProgram, RegisterImage, make_program
from plc.registers import TABLE_BY_FUNCTION, Table

log = logging.getLogger(__name__)

BROADCAST_UNIT_ID = 255  # Modbus/TCP "this device" unit id, answered besides --unit-id
MAX_PENDING_FRAMES = 32  # per connection; more means a flood, and the connection is dropped


@dataclass
class GuardStats:
    """What the guard has seen since start (logged at exit)."""

    connections: int = 0
    frames: int = 0
    framing_errors: int = 0
    exceptions_sent: int = 0
    handler_errors: int = 0
    evicted: int = 0
    reaped: int = 0
    floods: int = 0


def build_device(image: RegisterImage, unit_id: int) -> SimDevice:
    """A pymodbus SimDevice holding ``image`` at the wire addresses of the register map.

    SimData addresses are wire addresses (0-based); the four tables are separate blocks.
    """
    def bits(values: list[bool]) -> list[SimData]:
        return [SimData(0, values=[bool(v) for v in values], datatype=DataType.BITS)]

    def regs(values: list[int]) -> list[SimData]:
        return [SimData(0, values=[int(v) for v in values], datatype=DataType.REGISTERS)]

    return SimDevice(id=unit_id, simdata=(bits(image.coils), bits(image.discrete_inputs),
                                          regs(image.holding_registers),
                                          regs(image.input_registers)))


def _address_in_map(pdu: bytes, table_sizes: dict[Table, int]) -> bool:
    """Whether a spec-valid request stays inside the register map."""
    fc = pdu[0]
    address, quantity = struct.unpack_from(">HH", pdu, 1)
    if fc in WRITE_SINGLE_FUNCTIONS:
        quantity = 1
    return address + quantity <= table_sizes[TABLE_BY_FUNCTION[fc]]


class GuardedHandler(ServerRequestHandler):
    """One client connection: own framing, sequential requests, errors stay here."""

    def __init__(self, owner: GuardedTcpServer) -> None:
        super().__init__(owner, None, None, None)
        self.guarded_server = owner
        self._rest = b""
        self._pending: deque[Frame] = deque()
        self._worker: asyncio.Task | None = None
        self.created_s = time.monotonic()
        self.last_request_s = self.created_s
        self.served = 0
        self.peer: tuple[str, int] = ("", 0)  # client (ip, port), known from the first bytes
        self.local_port = 0

    def data_received(self, data: bytes) -> None:
        """Replace pymodbus's parser: split into ADUs, drop the connection on a bad header."""
        stats = self.guarded_server.stats
        if not self.peer[0] and self.transport:
            peer = self.transport.get_extra_info("peername")
            local = self.transport.get_extra_info("sockname")
            self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
            self.local_port = int(local[1]) if local else 0
        try:
            frames, self._rest = split_frames(self._rest + data)
        except FrameError as exc:
            stats.framing_errors += 1
            log.debug("dropping connection: %s", exc)
            self.close()
            return
        if not frames:
            return
        if len(self._pending) + len(frames) > MAX_PENDING_FRAMES:
            stats.floods += 1
            self.close()
            return
        stats.frames += len(frames)
        self.last_request_s = time.monotonic()
        self._pending.extend(frames)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while self._pending and self.transport:
            frame = self._pending.popleft()
            try:
                adu = await self.guarded_server.answer(frame)
            except Exception:  # one bad request must not take the PLC down
                self.guarded_server.stats.handler_errors += 1
                log.exception("request failed; closing that connection")
                self.guarded_server.log_request(self, frame, b"", False)
                self.close()
                return
            answered = bool(self.transport)
            if self.transport:
                self.transport.write(adu)
                self.served += 1
            self.guarded_server.log_request(self, frame, adu, answered)

    def close(self, reconnect: bool = False) -> None:
        if self._worker and not self._worker.done() and \
                self._worker is not asyncio.current_task():
            self._worker.cancel()
        self._pending.clear()
        super().close(reconnect)

    def callback_disconnected(self, exc: Exception | None) -> None:
        if self._worker and not self._worker.done():
            self._worker.cancel()
        super().callback_disconnected(exc)


class GuardedTcpServer(ModbusTcpServer):
    """pymodbus's TCP listener and datastore behind the :mod:`common.modbus` guard.

    table_sizes: number of entries of each table (requests beyond get exception 0x02).
    max_connections: at the cap, a new connection evicts a silent one (no request yet), or
        else the one idle longest.
    idle_timeout_s: connections without a complete request for this long are closed.
    """

    def __init__(self, device: SimDevice, table_sizes: dict[Table, int], unit_id: int,
                 address: tuple[str, int], max_connections: int = 64,
                 idle_timeout_s: float = 30.0, server_id: bytes = b"SDN-ICS-Lab PLC") -> None:
        super().__init__(device, address=address)
        self.server_id = server_id
        self.unit_id = unit_id
        self.table_sizes = table_sizes
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.stats = GuardStats()
        self.request_log: RequestLogWriter | None = None
        self.name = ""

    def log_request(self, handler: GuardedHandler, frame: Frame, reply: bytes,
                    answered: bool) -> None:
        """One request-log record (when a log is open): who asked what, answered or not."""
        if self.request_log is None:
            return
        client_ip, client_port = handler.peer
        code = reply[8] if answered and len(reply) > 8 and reply[7] & 0x80 else 0
        self.request_log.write(RequestRecord(
            t_unix_s=round(time.time(), 6), plc=self.name, client_ip=client_ip,
            client_port=client_port, unit_id=frame.unit_id, function=frame.function_code,
            transaction_id=frame.transaction_id, answered=answered, exception_code=code,
            listen_port=handler.local_port))

    def callback_new_connection(self) -> GuardedHandler:
        """Accept a connection, making room under the cap first."""
        self.stats.connections += 1
        handlers = [h for h in self.active_connections.values()
                    if isinstance(h, GuardedHandler)]
        if len(handlers) >= self.max_connections:
            victim = min(handlers, key=lambda h: (h.served > 0, h.last_request_s))
            self.stats.evicted += 1
            victim.close()
        return GuardedHandler(self)

    def reap_idle(self, now_s: float) -> int:
        """Close connections idle longer than the timeout; returns how many."""
        idle = [h for h in list(self.active_connections.values())
                if isinstance(h, GuardedHandler)
                and now_s - h.last_request_s > self.idle_timeout_s]
        for h in idle:
            h.close()
        self.stats.reaped += len(idle)
        return len(idle)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return self.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def answer(self, frame: Frame) -> bytes:
        """The response ADU to one header-valid request."""
        if frame.unit_id not in (self.unit_id, BROADCAST_UNIT_ID):
            return self._exception(frame, ExceptionCode.GATEWAY_TARGET_FAILED)
        if code := check_request(frame.pdu):
            return self._exception(frame, code)
        if frame.function_code == REPORT_SERVER_ID:
            return report_server_id_adu(frame, self.server_id)
        if not _address_in_map(frame.pdu, self.table_sizes):
            return self._exception(frame, ExceptionCode.ILLEGAL_DATA_ADDRESS)
        request = self.decoder.decode(frame.pdu)
        if request is None:
            return self._exception(frame, ExceptionCode.ILLEGAL_DATA_VALUE)
        request.dev_id = self.unit_id
        request.transaction_id = frame.transaction_id
        response = await request.datastore_update(self.context, self.unit_id)
        return adu(frame, response.function_code.to_bytes(1, "big") + response.encode())

    def _exception(self, frame: Frame, code: ExceptionCode) -> bytes:
        self.stats.exceptions_sent += 1
        return exception_adu(frame, code)


class Plc:
    """A running PLC: the guarded server, the scan task and the ground-truth CSV writer."""

    def __init__(self, process: str, host: str = "0.0.0.0", port: int = MODBUS_PORT,
                 cycle_ms: float = 100.0, unit_id: int = 1,
                 state_csv: Path | None = None, max_connections: int = 64,
                 idle_timeout_s: float = 30.0, request_log: Path | None = None,
                 name: str = "", params: dict[str, float] | None = None) -> None:
        self.program: PlcProgram = make_program(process, params)
        self.process = process
        self.host, self.requested_port = host, port
        self.cycle_s = cycle_ms / 1000.0
        self.unit_id = unit_id
        self.state_csv = state_csv
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.request_log_path = request_log
        self.name = name
        self._request_log: RequestLogWriter | None = None
        self.server: GuardedTcpServer | None = None
        self.overruns = 0
        self._csv_file: IO[str] | None = None
        self._csv: Any = None  # csv.writer has no public type

    def open_request_log(self) -> None:
        """Open the request log for appending (raises OSError)."""
        if self.request_log_path is not None:
            self._request_log = RequestLogWriter(self.request_log_path)

    def open_csv(self) -> None:
        """Create the ground-truth CSV and write its header (raises OSError)."""
        if self.state_csv is None:
            return
        self._csv_file = open(self.state_csv, "w", newline="")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(self.program.columns())
        self._csv_file.flush()

    def close_csv(self) -> None:
        if self._csv_file:
            self._csv_file.close()
            self._csv_file = None

    async def start(self) -> int:
        """Listen; returns the bound port. Raises OSError when the address is unusable."""
        m = self.program.register_map
        sizes = {t: m.count(t) for t in Table}
        self.server = GuardedTcpServer(build_device(self.program.image, self.unit_id), sizes,
                                       self.unit_id, (self.host, self.requested_port),
                                       self.max_connections, self.idle_timeout_s,
                                       f"SDN-ICS-Lab PLC {self.process}".encode())
        self.server.request_log = self._request_log
        self.server.name = self.name or self.process
        if not await self.server.listen():
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}")
        return self.server.port

    async def _read(self, table: Table) -> list:
        assert self.server is not None
        count = self.program.register_map.count(table)
        return await self.server.async_getValues(self.unit_id, table.read_function, 0, count)

    async def scan_once(self, dt_s: float, t_s: float) -> None:
        """Store -> program -> store, then one CSV row."""
        assert self.server is not None
        coils = await self._read(Table.COIL)
        holding = await self._read(Table.HOLDING_REGISTER)
        image = self.program.scan(coils, holding, dt_s)
        # Write back only the coils the logic changed, so nothing else is clobbered.
        for address, (before, after) in enumerate(zip(coils, image.coils, strict=True)):
            if bool(before) != after:
                await self.server.async_setValues(self.unit_id, 5, address, [after])
        await self.server.async_setValues(self.unit_id, 2, 0, image.discrete_inputs)
        await self.server.async_setValues(self.unit_id, 4, 0, image.input_registers)
        if self._csv and self._csv_file:
            self._csv.writerow(self.program.row(t_s))
            self._csv_file.flush()

    async def run_scans(self, stop: asyncio.Event) -> None:
        """Scan at the fixed cycle until ``stop``; the process advances by real elapsed time."""
        loop = asyncio.get_running_loop()
        start = last = next_s = loop.time()
        while not stop.is_set():
            now = loop.time()
            dt_s, last = now - last, now
            await self.scan_once(dt_s, now - start)
            next_s += self.cycle_s
            if next_s < loop.time():  # overran: skip the missed slots, keep the phase
                self.overruns += 1
                next_s += self.cycle_s * int((loop.time() - next_s) / self.cycle_s + 1)
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), next_s - loop.time())

    async def reap_loop(self, stop: asyncio.Event) -> None:
        assert self.server is not None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            self.server.reap_idle(time.monotonic())

    async def shutdown(self) -> None:
        if self.server and self.server.transport:
            await self.server.shutdown()
            log.info("plc stopped process=%s scans=%d overruns=%d guard=%s", self.process,
                     self.program.scan_count, self.overruns, self.server.stats)
        self.close_csv()
        if self._request_log is not None:
            self._request_log.close()


async def run(plc: Plc, duration_s: float | None, stop: asyncio.Event | None = None) -> None:
    """Serve and scan until SIGTERM/SIGINT, ``stop`` or ``duration_s``; then clean up."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        port = await plc.start()
        log.info("plc ready process=%s port=%d", plc.process, port)
        if duration_s is not None:
            loop.call_later(duration_s, stop.set)
        tasks = [asyncio.create_task(plc.run_scans(stop), name="scan"),
                 asyncio.create_task(plc.reap_loop(stop), name="reaper")]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # a scan-cycle bug fails loudly
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await plc.shutdown()


def build_parser() -> argparse.ArgumentParser:
    p = plc_parser("server", "Modbus/TCP", MODBUS_PORT, min_port=0)
    p.add_argument("--unit-id", type=number_in(int, 0, 254), default=1)
    p.add_argument("--max-connections", type=number_in(int, 1, 10000), default=64)
    p.add_argument("--idle-timeout-s", type=number_in(float, 0.1, 1e6), default=30.0)
    return p


def _make(args: argparse.Namespace) -> Plc:
    plc = Plc(args.process, args.host, args.port, args.cycle_ms, args.unit_id,
              args.state_csv, args.max_connections, args.idle_timeout_s,
              args.request_log, args.name, args.params)
    try:
        plc.open_csv()
    except OSError as exc:
        raise UserError(f"--state-csv: {exc.strerror}: {args.state_csv}") from None
    try:
        plc.open_request_log()
    except OSError as exc:
        raise UserError(f"--request-log: {exc.strerror}: {args.request_log}") from None
    return plc


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 runtime failure, 2 bad arguments)."""
    return plc_main(build_parser(), argv, _make,
                    lambda args, plc: asyncio.run(run(plc, args.duration_s)), log)


if __name__ == "__main__":
    sys.exit(main())
