"""The HMI: polls every PLC at a fixed period, runs scheduled operator writes, logs it all.

``python -m plc.hmi --plc NAME=IP[:PORT][/s7] ... [--period-ms 100] [--timeout-ms 500]
--duration-s S --out CSV [--writes JSON] [--unit-id 1]``

Each period, for each PLC: connect when disconnected, run the operator writes that are due,
then read every table of the PLC's register map (learned from input register 0,
``process_id``, after each connect). Every request becomes one CSV row
(:class:`plc.metrics.RequestRecord`), written and flushed as it ends. A timeout or a
connection error drops the connection; the next period reconnects. A PLC given with
``/s7`` speaks S7comm: the same tables are read from its data blocks (:mod:`plc.hmi_s7`) and
recorded under the same function names.

With ``--resolver IP[:PORT]`` a PLC may be given by name (``--plc plc1=plc1.ics.lab``): the
HMI looks it up through that name server before connecting, keeps the answer for its TTL,
asks again once it has run out and moves its connection when the name points elsewhere
(:mod:`plc.hmi_dns`; each query is a ``resolve`` record). Every record's ``peer`` is the
address the request went to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import ipaddress
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from common.cli import OneLineParser, number_in
from common.errors import UserError
from common.modbus import MODBUS_PORT
from common.plan import (
    DEFAULT_HMI_PERIOD_MS,
    DEFAULT_HMI_TIMEOUT_MS,
    PROTOCOL_PORTS,
    PROTOCOLS,
)
from plc.cli import report_usage_error, setup_logging
from plc.hmi_dns import NameResolver, parse_server
from plc.hmi_s7 import S7_FAILURES, S7Session
from plc.metrics import RESOLVE, RequestRecord
from plc.registers import MAPS_BY_ID, RegisterMap, Table

log = logging.getLogger(__name__)

_READERS = {Table.COIL: "read_coils", Table.DISCRETE_INPUT: "read_discrete_inputs",
            Table.INPUT_REGISTER: "read_input_registers",
            Table.HOLDING_REGISTER: "read_holding_registers"}
_WRITERS = {Table.COIL: "write_coil", Table.HOLDING_REGISTER: "write_register"}


@dataclass(frozen=True)
class PlcTarget:
    name: str
    host: str
    port: int = MODBUS_PORT
    protocol: str = "modbus"
    by_name: bool = False  # host is a DNS name, looked up through the HMI's resolver


@dataclass(frozen=True)
class OperatorWrite:
    """One scheduled write; ``value`` is the raw value (0/1 for coils)."""

    t_s: float
    plc: str
    table: Table
    address: int
    value: int


def parse_target(text: str, names: bool = False) -> PlcTarget:
    """``NAME=IP[:PORT][/PROTOCOL]`` -> PlcTarget (protocol modbus unless given); names: the
    IP may be a DNS name instead (a Modbus PLC looked up through ``--resolver``)."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise UserError(f"--plc {text!r}: expected NAME=IP[:PORT][/PROTOCOL]")
    rest, _, protocol = rest.partition("/")
    protocol = protocol or "modbus"
    if protocol not in PROTOCOLS:
        raise UserError(f"--plc {text!r}: unknown protocol {protocol!r} "
                        f"({', '.join(PROTOCOLS)})")
    host, _, port_text = rest.partition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        if not (names and protocol == "modbus" and "." in host):
            raise UserError(f"--plc {text!r}: {host!r} is not an IPv4 address"
                            + ("" if names else " (a name needs --resolver)")) from None
        by_name = True
    else:
        by_name = False
    port = PROTOCOL_PORTS[protocol]
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise UserError(f"--plc {text!r}: bad port {port_text!r}")
        port = int(port_text)
    return PlcTarget(name, host, port, protocol, by_name)


def parse_writes(text: str, plc_names: Sequence[str]) -> list[OperatorWrite]:
    """The ``--writes`` JSON: a list of {t_s, plc, table, address, value}, sorted by t_s."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--writes: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(items, list):
        raise UserError("--writes: expected a JSON list")
    keys = {"t_s", "plc", "table", "address", "value"}
    writes = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != keys:
            raise UserError(f"--writes[{i}]: expected exactly the keys {sorted(keys)}")
        try:
            table = Table(item["table"])
        except ValueError:
            raise UserError(f"--writes[{i}]: table must be coil or holding_register") \
                from None
        if not table.writable:
            raise UserError(f"--writes[{i}]: table {table} is read-only")
        if item["plc"] not in plc_names:
            raise UserError(f"--writes[{i}]: unknown plc {item['plc']!r}")
        t_s, address, value = item["t_s"], item["address"], item["value"]
        if not isinstance(t_s, int | float) or isinstance(t_s, bool) or t_s < 0:
            raise UserError(f"--writes[{i}]: t_s must be a number >= 0")
        if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
            raise UserError(f"--writes[{i}]: address must be an integer 0..65535")
        hi = 1 if table is Table.COIL else 0xFFFF
        if not isinstance(value, int) or not 0 <= value <= hi:
            raise UserError(f"--writes[{i}]: value must be an integer 0..{hi}")
        writes.append(OperatorWrite(float(t_s), item["plc"], table, address, int(value)))
    return sorted(writes, key=lambda w: w.t_s)


class Hmi:
    """Polls PLCs and writes one :class:`RequestRecord` per request to ``sink``."""

    def __init__(self, targets: Sequence[PlcTarget], period_ms: float, timeout_ms: float,
                 sink: Callable[[RequestRecord], None],
                 writes: Sequence[OperatorWrite] = (), unit_id: int = 1,
                 resolver: NameResolver | None = None) -> None:
        self.targets = tuple(targets)
        self.period_s = period_ms / 1000.0
        self.timeout_s = timeout_ms / 1000.0
        self.sink = sink
        self.writes = tuple(writes)
        self.unit_id = unit_id
        self._t0 = 0.0
        self._s7_maps: dict[str, RegisterMap] = {}  # learned from process_id per S7 PLC
        self.resolver = resolver
        self._peer = {t.name: t.host for t in self.targets}  # the address now connected to

    def _now_s(self) -> float:
        return time.monotonic() - self._t0

    async def run(self, stop: asyncio.Event, duration_s: float) -> None:
        """Poll until ``stop`` or ``duration_s``."""
        self._t0 = time.monotonic()
        await asyncio.gather(*(self._poll_plc(t, stop, duration_s) for t in self.targets))

    async def _request(self, target: PlcTarget, client: AsyncModbusTcpClient, poll: int,
                       function: str, address: int, count: int,
                       value: int | None = None) -> tuple[RequestRecord, Any]:
        """One request, timed; returns its record and the response (None unless ok)."""
        t_s = self._now_s()
        start = time.perf_counter()
        outcome, error, values, response = "ok", "", "", None
        try:
            # pymodbus raises ConnectionException here already when the peer has gone.
            if value is None:
                call = getattr(client, function)(address, count=count,
                                                 device_id=self.unit_id)
            elif function == "write_coil":
                call = client.write_coil(address, bool(value), device_id=self.unit_id)
            else:
                call = client.write_register(address, value, device_id=self.unit_id)
            response = await asyncio.wait_for(call, self.timeout_s)
        except (TimeoutError, asyncio.TimeoutError, ModbusIOException):
            outcome, error = "timeout", "no response"
        except (ConnectionException, OSError) as exc:
            outcome, error = "connection_error", str(exc)[:80]
        latency_ms = (time.perf_counter() - start) * 1000.0
        if response is not None:
            if response.isError():
                outcome = "exception"
                error = f"0x{getattr(response, 'exception_code', 0):02x}"
                response = None
            elif value is not None:
                values = str(value)
            elif function in ("read_coils", "read_discrete_inputs"):
                values = " ".join(str(int(b)) for b in response.bits[:count])
            else:
                values = " ".join(str(v) for v in response.registers)
        record = RequestRecord(t_s, target.name, poll, function, address, count, latency_ms,
                               outcome, values, error, self._peer[target.name])
        self.sink(record)
        return record, response

    async def _address(self, target: PlcTarget, poll: int) -> str | None:
        """The address to use for ``target`` now: its IP, or its name's cached or freshly
        resolved address (a query is recorded as a ``resolve`` request); None when the lookup
        failed."""
        if self.resolver is None or not target.by_name:
            return target.host
        t_s = self._now_s()
        found = await self.resolver.address(target.host)
        if found.queried:
            self.sink(RequestRecord(t_s, target.name, poll, RESOLVE, 0, 0, found.latency_ms,
                                    found.outcome, found.address or "", found.error,
                                    self.resolver.server))
        return found.address

    async def _moved(self, target: PlcTarget, poll: int) -> bool:
        """The name now points to another address than the one connected to (a failed
        lookup keeps the working connection)."""
        address = await self._address(target, poll)
        return address is not None and address != self._peer[target.name]

    async def _connect(self, target: PlcTarget, poll: int) -> AsyncModbusTcpClient | None:
        address = await self._address(target, poll)
        if address is None:
            return None
        self._peer[target.name] = address
        client = AsyncModbusTcpClient(address, port=target.port, timeout=self.timeout_s,
                                      retries=0, reconnect_delay=0)
        t_s = self._now_s()
        start = time.perf_counter()
        outcome, error = "ok", ""
        try:
            connected = await asyncio.wait_for(client.connect(), self.timeout_s)
            if not connected:
                outcome, error = "connection_error", "refused or unreachable"
        except (TimeoutError, asyncio.TimeoutError):
            outcome, error = "timeout", "connect timed out"
        except OSError as exc:
            outcome, error = "connection_error", str(exc)[:80]
        self.sink(RequestRecord(t_s, target.name, poll, "connect", 0, 0,
                                (time.perf_counter() - start) * 1000.0, outcome, "", error,
                                address))
        if outcome != "ok":
            client.close()
            return None
        return client

    async def _poll_plc(self, target: PlcTarget, stop: asyncio.Event,
                        duration_s: float) -> None:
        if target.protocol == "s7":
            await self._poll_s7(target, stop, duration_s)
            return
        client: AsyncModbusTcpClient | None = None
        reg_map: RegisterMap | None = None
        pending = [w for w in self.writes if w.plc == target.name]
        poll = 0
        next_s = 0.0
        try:
            while not stop.is_set() and self._now_s() < duration_s:
                if client is not None and await self._moved(target, poll):
                    client.close()  # the name moved: a new conversation at the new address
                    client = None
                if client is None:
                    client = await self._connect(target, poll)
                    reg_map = None
                if client is not None:
                    client, reg_map = await self._poll_once(target, client, reg_map, poll,
                                                            pending)
                poll += 1
                next_s += self.period_s
                if next_s < self._now_s():  # a slow poll: skip the missed slots
                    next_s = self._now_s()
                delay_s = min(next_s, duration_s) - self._now_s()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, delay_s))
        finally:
            if client is not None:
                client.close()

    async def _poll_once(self, target: PlcTarget, client: AsyncModbusTcpClient,
                         reg_map: RegisterMap | None, poll: int,
                         pending: list[OperatorWrite]
                         ) -> tuple[AsyncModbusTcpClient | None, RegisterMap | None]:
        """Due writes, then the reads of one period; returns (client or None, map)."""
        while pending and pending[0].t_s <= self._now_s():
            w = pending.pop(0)
            record, _ = await self._request(target, client, poll, _WRITERS[w.table],
                                            w.address, 1, w.value)
            log.info("operator write plc=%s %s[%d]=%d: %s", w.plc, w.table, w.address,
                     w.value, record.outcome)
            if record.outcome in ("timeout", "connection_error"):
                client.close()
                return None, None
        if reg_map is None:
            record, response = await self._request(target, client, poll,
                                                   "read_input_registers", 0, 1)
            if record.outcome in ("timeout", "connection_error"):
                client.close()
                return None, None
            if response is None:
                return client, None
            reg_map = MAPS_BY_ID.get(response.registers[0])
            if reg_map is None:
                log.warning("plc %s: unknown process_id %d", target.name,
                            response.registers[0])
                return client, None
        for table in Table:
            count = reg_map.count(table)
            if not count:
                continue
            record, _ = await self._request(target, client, poll, _READERS[table], 0, count)
            if record.outcome in ("timeout", "connection_error"):
                client.close()
                return None, None
        return client, reg_map


    async def _s7_request(self, target: PlcTarget, poll: int, function: str, address: int,
                          count: int, call: Any, value: int | None = None
                          ) -> tuple[RequestRecord, Any]:
        """One S7 call (an awaitable), timed and recorded like a Modbus request."""
        t_s = self._now_s()
        start = time.perf_counter()
        outcome, error, result = "ok", "", None
        try:
            result = await call
        except (TimeoutError, asyncio.TimeoutError):
            outcome, error = "timeout", "no response"
        except S7_FAILURES as exc:
            outcome, error = "connection_error", str(exc)[:80]
        values = "" if outcome != "ok" else (
            str(value) if value is not None
            else " ".join(str(v) for v in result) if isinstance(result, list) else "")
        record = RequestRecord(t_s, target.name, poll, function, address, count,
                               (time.perf_counter() - start) * 1000.0, outcome, values, error,
                               target.host)
        self.sink(record)
        return record, result

    async def _poll_s7(self, target: PlcTarget, stop: asyncio.Event,
                       duration_s: float) -> None:
        """The S7 twin of :meth:`_poll_plc`: connect, due writes, read every table."""
        session: S7Session | None = None
        reg_map: RegisterMap | None = None
        pending = [w for w in self.writes if w.plc == target.name]
        poll, next_s = 0, 0.0
        try:
            while not stop.is_set() and self._now_s() < duration_s:
                if session is None:
                    session = S7Session(target.host, target.port, self.timeout_s)
                    record, _ = await self._s7_request(target, poll, "connect", 0, 0,
                                                       session.connect())
                    reg_map = None
                    if record.outcome != "ok":
                        session.close()
                        session = None
                if session is not None and not await self._s7_once(target, session, poll,
                                                                    pending, reg_map):
                    session.close()
                    session = None
                elif session is not None and reg_map is None:
                    reg_map = self._s7_maps.get(target.name)
                poll += 1
                next_s = max(next_s + self.period_s, self._now_s())
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(),
                                           max(0.0, min(next_s, duration_s) - self._now_s()))
        finally:
            if session is not None:
                session.close()

    async def _s7_once(self, target: PlcTarget, session: S7Session, poll: int,
                       pending: list[OperatorWrite], reg_map: RegisterMap | None) -> bool:
        """Due writes, then the reads of one period; False when the connection is lost."""
        while pending and pending[0].t_s <= self._now_s():
            w = pending.pop(0)
            record, _ = await self._s7_request(target, poll, _WRITERS[w.table], w.address, 1,
                                               session.write(w.table, w.address, w.value),
                                               w.value)
            log.info("operator write plc=%s %s[%d]=%d: %s", w.plc, w.table, w.address,
                     w.value, record.outcome)
            if record.outcome != "ok":
                return False
        if reg_map is None:
            record, values = await self._s7_request(
                target, poll, "read_input_registers", 0, 1,
                session.read_table(Table.INPUT_REGISTER, 1))
            if record.outcome != "ok":
                return False
            reg_map = MAPS_BY_ID.get(values[0])
            if reg_map is None:
                log.warning("plc %s: unknown process_id %d", target.name, values[0])
                return True
            self._s7_maps[target.name] = reg_map
        for table in Table:
            count = reg_map.count(table)
            if count:
                record, _ = await self._s7_request(target, poll, _READERS[table], 0, count,
                                                   session.read_table(table, count))
                if record.outcome != "ok":
                    return False
        return True


class CsvSink:
    """Writes records as CSV rows, flushed one by one so a crash loses nothing."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(RequestRecord.columns())
        self._file.flush()

    def __call__(self, record: RequestRecord) -> None:
        self._writer.writerow(record.as_row())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m plc.hmi",
                      description="Poll Modbus/TCP and S7comm PLCs, log requests.")
    p.add_argument("--plc", action="append", required=True, metavar="NAME=IP[:PORT][/s7]")
    p.add_argument("--period-ms", type=number_in(float, 1, 60000),
                   default=DEFAULT_HMI_PERIOD_MS)
    p.add_argument("--timeout-ms", type=number_in(float, 1, 60000),
                   default=DEFAULT_HMI_TIMEOUT_MS)
    p.add_argument("--duration-s", type=number_in(float, 0.001, 1e9), required=True)
    p.add_argument("--out", type=Path, required=True, help="CSV, one row per request")
    p.add_argument("--writes", type=Path, help="JSON list of {t_s, plc, table, address, value}")
    p.add_argument("--unit-id", type=int, default=1, choices=range(0, 256), metavar="0..255")
    p.add_argument("--resolver", metavar="IP[:PORT]",
                   help="name server for PLCs given by name (NAME=plc1.ics.lab)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


async def _run(hmi: Hmi, duration_s: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await hmi.run(stop, duration_s)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        server = parse_server(args.resolver) if args.resolver else None
        targets = [parse_target(t, names=server is not None) for t in args.plc]
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise UserError("--plc: duplicate PLC name")
        writes: list[OperatorWrite] = []
        if args.writes:
            try:
                writes = parse_writes(args.writes.read_text(), names)
            except OSError as exc:
                raise UserError(f"--writes: {exc.strerror}: {args.writes}") from None
        try:
            sink = CsvSink(args.out)
        except OSError as exc:
            raise UserError(f"--out: {exc.strerror}: {args.out}") from None
    except UserError as exc:
        return report_usage_error(parser.prog, exc)
    setup_logging(args.log_level)
    logging.getLogger("snap7").setLevel(logging.WARNING)  # it logs every connect at INFO
    resolver = (NameResolver(server[0], server[1], args.timeout_ms / 1000.0)
                if server is not None else None)
    hmi = Hmi(targets, args.period_ms, args.timeout_ms, sink, writes, args.unit_id, resolver)
    log.info("hmi polling %s every %g ms for %g s", ", ".join(names), args.period_ms,
             args.duration_s)
    try:
        asyncio.run(_run(hmi, args.duration_s))
    except KeyboardInterrupt:
        pass
    finally:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
