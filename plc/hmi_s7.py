"""The HMI's S7comm session: python-snap7's client, the register tables read from their DBs.

:class:`plc.hmi.Hmi` polls an S7 PLC through this as it polls a Modbus PLC through
pymodbus: each table of the register map is one ``db_read`` of its data block
(:data:`common.s7.TABLE_DB`), recorded under the same function names (``read_coils`` ...
``read_holding_registers``) so the HMI's figures mean the same for both protocols; an
operator write is one ``db_write`` of one entry. snap7's client blocks, so each call runs in
the session's own worker thread, bounded by the HMI's timeout: a PLC whose connect hangs
delays only its own polls (a shared pool would queue every other PLC's calls behind it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from snap7.client import Client
from snap7.error import S7Error

from common.s7 import RACK, SLOT, TABLE_DB, WORD_TABLES, db_offset, from_db, to_db
from plc.registers import MAPS_BY_ID, RegisterMap, Table

log = logging.getLogger(__name__)

# Exceptions that mean "no usable answer": the connection is dropped and reopened next period.
S7_FAILURES = (S7Error, OSError, RuntimeError, ValueError)


class S7Session:
    """One connection to one S7 PLC; every method raises on failure (the caller records)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.client = Client()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"s7-{host}")

    async def _call(self, func, *args):  # type: ignore[no-untyped-def]
        future = asyncio.get_running_loop().run_in_executor(self._worker, func, *args)
        return await asyncio.wait_for(future, self.timeout_s)

    def _connect(self) -> None:
        self.client.connect(self.host, RACK, SLOT, self.port)
        conn = self.client.connection
        if conn is not None and conn.socket is not None:
            conn.timeout = self.timeout_s
            conn.socket.settimeout(self.timeout_s)

    async def connect(self) -> None:
        await self._call(self._connect)

    async def read_table(self, table: Table, count: int) -> list[int]:
        """The raw values of ``count`` entries of ``table`` (bits as 0/1)."""
        size = count * (2 if table.value in WORD_TABLES else 1)
        data = await self._call(self.client.db_read, TABLE_DB[table.value], 0, size)
        return from_db(table.value, data)

    async def register_map(self) -> RegisterMap | None:
        """The PLC's map, learned from input register 0 (process_id) as over Modbus."""
        (process_id,) = await self.read_table(Table.INPUT_REGISTER, 1)
        return MAPS_BY_ID.get(process_id)

    async def write(self, table: Table, address: int, value: int) -> None:
        """One entry of a writable table."""
        data = bytearray(to_db(table.value, [value]))
        await self._call(self.client.db_write, TABLE_DB[table.value],
                         db_offset(table.value, address), data)

    def close(self) -> None:
        with contextlib.suppress(*S7_FAILURES):
            self.client.disconnect()
        self._worker.shutdown(wait=False)
