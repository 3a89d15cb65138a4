"""The injection's S7comm engine: python-snap7's client behind the injection's engine API.

``python -m attacks.inject --engine s7 --port 102 ...`` writes an S7 PLC's coils and
setpoints as the Modbus engines write a Modbus PLC's: each Exchange keeps the Modbus
function code of the table it touches (1, 3, 4 reads; 5, 6 writes of one entry), and the
engine turns it into a ``db_read``/``db_write`` of that table's data block
(:data:`common.s7.TABLE_DB`). A refused S7 request (e.g. a write to a read-only block) is
``outcome: "exception"`` with the S7 error as its text; the PLC's request log records it.
"""

from __future__ import annotations

import contextlib
import time

from attacks.modbus_client import Engine, Exchange
from common.s7 import RACK, SLOT, TABLE_DB, WORD_TABLES, db_offset, from_db, to_db
from plc.registers import TABLE_BY_FUNCTION


class S7Engine(Engine):
    """python-snap7's synchronous client (``unit_id`` is unused: S7 has rack and slot)."""

    name = "s7"

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        super().__init__(host, port, unit_id, timeout_s)
        from snap7.client import Client

        self.client = Client()

    def connect(self) -> None:
        from snap7.error import S7Error

        try:
            self.client.connect(self.host, RACK, SLOT, self.port)
        except S7Error as exc:
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") \
                from None
        if self.client.connection is not None and self.client.connection.socket is not None:
            self.client.connection.timeout = self.timeout_s
            self.client.connection.socket.settimeout(self.timeout_s)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()

    def request(self, ex: Exchange) -> Exchange:
        from snap7.error import S7Error, S7TimeoutError

        table = TABLE_BY_FUNCTION.get(ex.function_code)
        start = time.monotonic()
        try:
            if table is None:
                raise ValueError(f"function {ex.function_code} has no S7 data block here")
            db = TABLE_DB[table.value]
            if ex.request_value is not None:  # a write of one entry
                data = bytearray(to_db(table.value, [ex.request_value]))
                self.client.db_write(db, db_offset(table.value, ex.address), data)
                ex.values = [ex.address, int(ex.request_value)]
            else:
                size = ex.count * (2 if table.value in WORD_TABLES else 1)
                data = self.client.db_read(db, db_offset(table.value, ex.address), size)
                ex.values = from_db(table.value, data)
            ex.outcome = "ok"
        except S7TimeoutError as exc:
            ex.outcome, ex.error = "timeout", str(exc)[:120]
        except S7Error as exc:
            text = str(exc)
            ex.outcome = "exception" if "protocol" in text.lower() else "error"
            ex.error = text[:120]
        except (OSError, ValueError) as exc:
            ex.outcome, ex.error = "error", str(exc)[:120]
        ex.latency_ms = (time.monotonic() - start) * 1000
        return ex
