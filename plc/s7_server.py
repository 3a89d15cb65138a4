"""An S7comm PLC: python-snap7's pure-Python S7 server + the scan cycle + ground-truth CSV.

``python -m plc.s7_server --process KIND [--host 0.0.0.0] [--port 102] [--cycle-ms 100]
[--state-csv PATH] [--request-log PATH] [--name PLC] [--params JSON] [--duration-s S]``

The process's register map is exposed as four data blocks (:data:`common.s7.TABLE_DB`:
DB1 input registers, DB2 holding registers, DB3 coils, DB4 discrete inputs; words
big-endian, bits one byte each), holding the same raw values as the Modbus PLC's tables.
Writes to the read-only blocks (DB1, DB4) are refused. The PLC answers nmap's ``s7-info``
with its own identity (SZL 0x0011 and 0x001C). Every S7 request that reached the server is
recorded in the request log (:mod:`common.requestlog`: ``function`` is the S7 function code,
``unit_id`` the PDU type). Malformed frames are handled by snap7's server, one thread per
connection: a broken frame ends that connection only (measured in ``docs/protocols.md``);
its listen backlog is widened so bursts of connections are not dropped.
"""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snap7.datatypes import S7Area
from snap7.server import Server
from snap7.type import SrvArea

from common.errors import UserError
from common.requestlog import RequestLogWriter, RequestRecord
from common.s7 import (
    ROSCTR_ACK,
    ROSCTR_ACK_DATA,
    ROSCTR_JOB,
    S7_PORT,
    TABLE_DB,
    from_db,
    szl_component_id,
    szl_module_id,
    to_db,
)
from plc.cli import plc_main, plc_parser
from plc.program import PlcProgram, make_program
from plc.registers import Table

log = logging.getLogger(__name__)

READ_ONLY_DBS = frozenset({TABLE_DB["input_register"], TABLE_DB["discrete_input"]})
ORDER_NUMBER = "6ES7 315-2EH14-0AB0"
FIRMWARE = (3, 3, 0)
LISTEN_BACKLOG = 128


class S7PlcServer(Server):
    """snap7's server with this PLC's identity, read-only blocks and a request log."""

    def __init__(self, name: str, process: str, request_log: RequestLogWriter | None) -> None:
        super().__init__(log=False)
        self.plc_name = name
        self.process = process
        self.request_log = request_log
        self.requests = 0
        self._log_lock = threading.Lock()

    def _get_szl_data(self, szl_id: int, szl_index: int) -> bytes | None:
        if szl_id == 0x0011:
            return szl_module_id(ORDER_NUMBER, FIRMWARE)
        if szl_id == 0x001C:
            return szl_component_id(f"SDN-ICS-Lab {self.plc_name}", "CPU 315-2 PN/DP",
                                    self.plc_name, f"SDN-ICS-Lab PLC {self.process}",
                                    f"SDNICS-{self.plc_name}")
        return super()._get_szl_data(szl_id, szl_index)

    def _write_to_memory_area(self, area: Any, db_number: int, start: int,
                              write_data: bytearray) -> bool:
        if area == S7Area.DB and db_number in READ_ONLY_DBS:
            return False
        return super()._write_to_memory_area(area, db_number, start, write_data)

    def _process_request(self, request_data: bytes, client_address: tuple[str, int]
                         ) -> bytes | None:
        reply = super()._process_request(request_data, client_address)
        self._log(request_data, reply, client_address)
        return reply

    def _log(self, request: bytes, reply: bytes | None, peer: tuple[str, int]) -> None:
        """One request-log record: PDU type, function, answered, error class."""
        self.requests += 1
        if self.request_log is None:
            return
        rosctr = request[1] if len(request) > 1 else 0
        function = request[10] if rosctr == ROSCTR_JOB and len(request) > 10 else 0
        pdu_ref = int.from_bytes(request[4:6], "big") if len(request) >= 6 else 0
        # ACK and ACK_DATA headers carry an error class and code at bytes 10-11.
        error = reply[10] if reply and len(reply) > 11 and reply[1] in (ROSCTR_ACK,
                                                                       ROSCTR_ACK_DATA) else 0
        if reply and function == 0x05 and len(reply) > 14 and reply[14] != 0xFF:
            error = error or reply[14]  # a refused write item (e.g. a read-only block)
        with self._log_lock:
            self.request_log.write(RequestRecord(
                t_unix_s=round(time.time(), 6), plc=self.plc_name, client_ip=str(peer[0]),
                client_port=int(peer[1]), unit_id=rosctr, function=function,
                transaction_id=pdu_ref, answered=reply is not None, exception_code=error,
                listen_port=self.port))


class StateCsv:
    """The ground-truth CSV (``common.groundtruth`` reads it): header, then a row per scan."""

    def __init__(self, path: Path, program: PlcProgram) -> None:
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(program.columns())
        self._file.flush()

    def write(self, row: Sequence[Any]) -> None:
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class S7Plc:
    """A running S7 PLC: the server, its data blocks, the scan cycle and the CSV."""

    def __init__(self, process: str, host: str = "0.0.0.0", port: int = S7_PORT,
                 cycle_ms: float = 100.0, state_csv: Path | None = None,
                 request_log: Path | None = None, name: str = "",
                 params: dict[str, float] | None = None) -> None:
        self.program: PlcProgram = make_program(process, params)
        self.process = process
        self.host, self.port = host, port
        self.cycle_s = cycle_ms / 1000.0
        self.name = name or process
        self.csv = StateCsv(state_csv, self.program) if state_csv else None
        self.request_log = RequestLogWriter(request_log) if request_log else None
        self.server = S7PlcServer(self.name, process, self.request_log)
        self.blocks: dict[Table, bytearray] = {}
        self.overruns = 0
        for table in Table:
            block = bytearray(to_db(table.value, self.program.image.table(table)) or b"\0\0")
            self.blocks[table] = block
            self.server.register_area(SrvArea.DB, TABLE_DB[table.value], block)

    def start(self) -> None:
        """Listen (raises OSError, e.g. when the port is taken)."""
        try:
            self.server.start_to(self.host, self.port)
        except Exception as exc:  # snap7 wraps the socket error in its own type
            raise OSError(str(exc)) from None
        # snap7 listens with a backlog of 5: a burst of connections (a fuzzer's, a scan's)
        # then has SYNs dropped and the HMI's connect waits. Listening again widens it.
        if self.server.server_socket is not None:
            self.server.server_socket.listen(LISTEN_BACKLOG)

    def _table(self, table: Table) -> list[int]:
        count = self.program.register_map.count(table)
        with self.server.area_locks[(S7Area.DB, TABLE_DB[table.value])]:
            return from_db(table.value, self.blocks[table])[:count]

    def _store(self, table: Table, values: Sequence[int | bool], start: int = 0) -> None:
        data = to_db(table.value, values)
        offset = start * (2 if table in (Table.INPUT_REGISTER, Table.HOLDING_REGISTER) else 1)
        with self.server.area_locks[(S7Area.DB, TABLE_DB[table.value])]:
            self.blocks[table][offset:offset + len(data)] = data

    def scan_once(self, dt_s: float, t_s: float) -> None:
        """Blocks -> program -> blocks (only the coils the logic changed), then a CSV row."""
        coils = [bool(v) for v in self._table(Table.COIL)]
        holding = self._table(Table.HOLDING_REGISTER)
        image = self.program.scan(coils, holding, dt_s)
        for address, (before, after) in enumerate(zip(coils, image.coils, strict=True)):
            if before != after:
                self._store(Table.COIL, [after], address)
        self._store(Table.DISCRETE_INPUT, image.discrete_inputs)
        self._store(Table.INPUT_REGISTER, image.input_registers)
        if self.csv:
            self.csv.write(self.program.row(t_s))

    def run(self, stop: threading.Event, duration_s: float | None) -> None:
        """Scan at the fixed cycle until ``stop`` or ``duration_s``; then stop the server."""
        start = last = next_s = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    break
                self.scan_once(now - last, now - start)
                last = now
                next_s += self.cycle_s
                if next_s < time.monotonic():  # overran: skip the missed slots
                    self.overruns += 1
                    next_s += self.cycle_s * int((time.monotonic() - next_s) / self.cycle_s + 1)
                stop.wait(max(0.0, next_s - time.monotonic()))
        finally:
            self.server.stop()
            log.info("plc stopped process=%s scans=%d overruns=%d requests=%d", self.process,
                     self.program.scan_count, self.overruns, self.server.requests)
            if self.csv:
                self.csv.close()
            if self.request_log is not None:
                self.request_log.close()


def build_parser() -> argparse.ArgumentParser:
    return plc_parser("s7_server", "S7comm", S7_PORT)


def _make(args: argparse.Namespace) -> S7Plc:
    try:
        return S7Plc(args.process, args.host, args.port, args.cycle_ms, args.state_csv,
                     args.request_log, args.name, args.params)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from None


def _run(args: argparse.Namespace, plc: S7Plc) -> None:
    logging.getLogger("snap7").setLevel(logging.CRITICAL)  # it logs every hostile frame
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    plc.start()
    log.info("plc ready process=%s port=%d protocol=s7", plc.process, plc.port)
    plc.run(stop, args.duration_s)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 runtime failure, 2 bad arguments)."""
    return plc_main(build_parser(), argv, _make, _run, log)


if __name__ == "__main__":
    sys.exit(main())
