"""Wire addresses and exception answers of the PLC, in process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import struct

from pymodbus.client import AsyncModbusTcpClient

from plc.registers import TANK_MAP, Table
from plc.server import Plc, run


async def _raw(port: int, adu: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(adu)
    reply = await asyncio.wait_for(reader.read(300), 2.0)
    writer.close()
    return reply


def test_wire_addresses_writes_and_exceptions(tmp_path):
    state = tmp_path / "state.csv"

    async def scenario() -> None:
        plc = Plc("tank", host="127.0.0.1", port=0, cycle_ms=20, state_csv=state)
        plc.open_csv()
        stop = asyncio.Event()
        task = asyncio.create_task(run(plc, None, stop))
        while plc.server is None or not plc.server.transport:
            await asyncio.sleep(0.01)
        port = plc.server.port
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0,
                                      reconnect_delay=0)
        await client.connect()
        hr = await client.read_holding_registers(0, count=TANK_MAP.count(Table.HOLDING_REGISTER),
                                                 device_id=1)
        assert hr.registers == TANK_MAP.defaults(Table.HOLDING_REGISTER)
        ir = await client.read_input_registers(0, count=1, device_id=255)
        assert ir.registers == [TANK_MAP.process_id]
        low = TANK_MAP.get("level_low_sp")
        assert not (await client.write_register(low.address, low.to_raw(55.5),
                                                device_id=1)).isError()
        beyond = await client.read_coils(TANK_MAP.count(Table.COIL), count=1, device_id=1)
        assert beyond.isError() and beyond.exception_code == 0x02
        other_unit = await client.read_holding_registers(0, count=1, device_id=9)
        assert other_unit.isError() and other_unit.exception_code == 0x0B
        client.close()
        # unknown function code (read device identification) and a zero count, raw
        assert await _raw(port, struct.pack(">HHHB", 7, 0, 4, 1) + b"\x2b\x0e\x01") == \
            struct.pack(">HHHB", 7, 0, 3, 1) + b"\xab\x01"
        assert await _raw(port, struct.pack(">HHHBBHH", 8, 0, 6, 1, 3, 0, 0)) == \
            struct.pack(">HHHB", 8, 0, 3, 1) + b"\x83\x03"
        # Report Server ID, as nmap's modbus-discover asks it
        ident = b"SDN-ICS-Lab PLC tank\xff"
        assert await _raw(port, struct.pack(">HHHB", 9, 0, 2, 1) + b"\x11") == \
            struct.pack(">HHHB", 9, 0, 3 + len(ident), 1) + bytes((0x11, len(ident))) + ident
        await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(scenario())
    with open(state, newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["level_low_sp_cm"]) == 40.0
    assert float(rows[-1]["level_low_sp_cm"]) == 55.5
