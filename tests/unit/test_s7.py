"""S7comm: the codec's mapping, the S7 PLC on 127.0.0.1 read and written with python-snap7's own
client, the HMI polling it, the injection engine, the fuzzer against it, recon's parsing."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from snap7.client import Client

from attacks.modbus_client import Exchange
from attacks.recon_parse import Findings, parse_nmap_xml
from attacks.s7_client import S7Engine
from attacks.s7_frames import KINDS, hostile_exchange
from attacks.s7_fuzz import run_barrage
from common.groundtruth import read_ground_truth_file
from common.plant import PlantError, parse_plant
from common.requestlog import read as read_request_log
from common.s7 import TABLE_DB, from_db, szl_component_id, szl_module_id, to_db
from experiments.scoring import modbus_identified, s7_identified
from plc.hmi import Hmi, PlcTarget, parse_target
from plc.metrics import RequestRecord, plc_metrics
from plc.registers import MAPS, Table
from plc.s7_server import S7Plc

DATA = Path(__file__).parent / "data"
LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@pytest.fixture
def s7plc(tmp_path: Path) -> Iterator[S7Plc]:
    plc = S7Plc("tank", LOOPBACK, _free_port(), 20.0, tmp_path / "state.csv",
                tmp_path / "requests.jsonl", "tank1")
    plc.start()
    stop = threading.Event()
    thread = threading.Thread(target=plc.run, args=(stop, None), daemon=True)
    thread.start()
    yield plc
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def _client(plc: S7Plc) -> Client:
    client = Client()
    client.connect(LOOPBACK, 0, 2, plc.port)
    return client


def test_tables_round_trip_through_their_data_blocks() -> None:
    assert from_db("input_register", to_db("input_register", [0, 1, 65535])) == [0, 1, 65535]
    assert to_db("holding_register", [0x1234]) == b"\x12\x34"
    assert from_db("coil", to_db("coil", [True, False, 1])) == [1, 0, 1]
    assert sorted(TABLE_DB.values()) == [1, 2, 3, 4]


def test_identity_records_have_the_layout_nmap_s7_info_reads() -> None:
    module = szl_module_id("6ES7 315-2EH14-0AB0", (3, 3, 0))
    assert module[:4] == b"\x00\x1c\x00\x03" and len(module) == 4 + 3 * 28
    assert module[-4:] == b"V\x03\x03\x00"  # firmware record: 'V' and the version
    component = szl_component_id("sys", "mod", "plant", "(c)", "serial")
    assert len(component) == 4 + 5 * 34 and component[6:9] == b"sys"


def test_plc_serves_the_register_map_and_refuses_read_only_blocks(s7plc: S7Plc,
                                                                  tmp_path: Path) -> None:
    client = _client(s7plc)
    try:
        tank = MAPS["tank"]
        (process_id,) = from_db("input_register", client.db_read(1, 0, 2))
        assert process_id == tank.get("process_id").default
        sp = tank.get("level_high_sp")
        client.db_write(2, 2 * sp.address, bytearray(to_db("holding_register", [1700])))
        assert from_db("holding_register", client.db_read(2, 2 * sp.address, 2)) == [1700]
        with pytest.raises(Exception, match="protocol"):
            client.db_write(1, 0, bytearray(b"\x00\x07"))
        assert from_db("input_register", client.db_read(1, 0, 2)) == [process_id]
        info = client.get_cpu_info()
        assert info.ASName == b"SDN-ICS-Lab tank1"
    finally:
        client.disconnect()
    records = read_request_log([tmp_path / "requests.jsonl"])
    writes = [r for r in records if r.function == 0x05]
    assert len(writes) == 2 and writes[1].exception_code != 0  # the refused one
    assert all(r.plc == "tank1" and r.client_ip == LOOPBACK for r in records)


def test_hmi_polls_an_s7_plc_with_figures_like_modbus(s7plc: S7Plc, tmp_path: Path) -> None:
    records: list[RequestRecord] = []
    target = parse_target(f"tank1={LOOPBACK}:{s7plc.port}/s7")
    assert target == PlcTarget("tank1", LOOPBACK, s7plc.port, "s7")
    hmi = Hmi([target], period_ms=50, timeout_ms=500, sink=records.append)
    asyncio.run(hmi.run(asyncio.Event(), 1.0))
    m = plc_metrics("tank1", records)
    assert m.polls >= 10 and m.availability == 1.0
    # The values the HMI read are those of one scan of the ground truth, exactly.
    level, scans = MAPS["tank"].get("level"), MAPS["tank"].get("scan_count")
    reads = [r for r in records if r.function == "read_input_registers" and r.count > 1]
    values = [int(v) for v in reads[-1].values.split()]
    truth = {int(row["scan_count"]): row for row in
             read_ground_truth_file(tmp_path / "state.csv")}
    row = truth[values[scans.address]]
    assert level.to_raw(row["level_cm"]) == values[level.address]


def test_hmi_target_errors() -> None:
    assert parse_target("p=10.0.0.1").protocol == "modbus"
    assert parse_target("p=10.0.0.1/s7").port == 102
    with pytest.raises(Exception, match="unknown protocol 'enip'"):
        parse_target("p=10.0.0.1/enip")


def test_inject_engine_writes_and_reports_refusals(s7plc: S7Plc) -> None:
    engine = S7Engine(LOOPBACK, s7plc.port, 1, 2.0)
    engine.connect()
    try:
        auto = MAPS["tank"].get("auto_mode")
        ex = engine.request(Exchange(0.0, 5, auto.address, "write", request_value=0))
        assert ex.outcome == "ok"
        ex = engine.request(Exchange(0.0, 1, 0, "read", count=MAPS["tank"].count(Table.COIL)))
        assert ex.outcome == "ok" and ex.values[auto.address] == 0
        ex = engine.request(Exchange(0.0, 2, 0, "read", count=1))
        assert ex.outcome == "ok"
        ex = engine.request(Exchange(0.0, 99, 0, "write", request_value=1))
        assert ex.outcome == "error"
    finally:
        engine.close()


def test_plc_survives_the_fuzzer_and_keeps_answering(s7plc: S7Plc) -> None:
    stats = run_barrage(LOOPBACK, s7plc.port, frames=1500, rate_fps=5000, max_s=60, seed=3)
    # On a loaded 2-core machine a connect can time out now and then (the fuzzer and the
    # server share the cores); the integration test asserts none on the emulated network.
    assert stats.frames >= 1500 and stats.connect_failures <= stats.connections // 100
    assert set(stats.kinds) == set(KINDS)
    client = _client(s7plc)
    try:
        assert from_db("input_register", client.db_read(1, 0, 2)) == [
            MAPS["tank"].get("process_id").default]
    finally:
        client.disconnect()


def test_hostile_exchanges_are_seeded() -> None:
    a = [hostile_exchange(random.Random(5)) for _ in range(3)]
    b = [hostile_exchange(random.Random(5)) for _ in range(3)]
    assert a == b


def test_recon_parses_s7_info_and_scoring_identifies_it() -> None:
    run = parse_nmap_xml((DATA / "nmap_s7info.xml").read_text())
    (port,) = run.hosts[0].ports
    assert dict(port.scripts)["s7-info.Module"] == "6ES7 315-2EH14-0AB0"
    findings = Findings({LOOPBACK}, set())
    findings.merge_nmap(run, 1.0, "s7")
    (finding,) = findings.to_list()
    finding = json.loads(json.dumps(finding))
    assert s7_identified(finding) and not modbus_identified(finding)
    assert not s7_identified({"services": [{"port": 102, "details": {}}]})


def _plant(protocol: object, **extra: object) -> dict:
    return {"name": "p", "subnet": "10.0.0.0/24", "zones": [{"name": "s1"}],
            "hosts": [{"name": "plc1", "role": "plc", "address": "10.0.0.21", "zone": "s1"}],
            "plcs": [{"host": "plc1", "protocol": protocol, "process": {"kind": "tank"},
                      **extra}]}


def test_plant_files_accept_s7_with_its_port() -> None:
    assert parse_plant(_plant("s7")).plcs[0].port == 102
    assert parse_plant(_plant("s7", port=1102)).plcs[0].port == 1102
    with pytest.raises(PlantError, match=r"plcs\[0\]\.protocol: unknown 'enip' \(modbus, s7\)"):
        parse_plant(_plant("enip"))
