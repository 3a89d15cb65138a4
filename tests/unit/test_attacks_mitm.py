"""MITM pure parts: the tamper spec, Modbus PDU parsing, response rewriting, following a
conversation from sniffed segments; and the CLI's refusals (one line, exit 2)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from attacks.mitm_tamper import TamperSpec, parse_tamper, tamper_pdu
from attacks.mitm_tracker import ModbusTracker, rewrite_response_payload
from common.errors import UserError
from common.modbus import ModbusRequest, parse_request, parse_response
from common.plan import ics_plan
from plc.registers import Table

REPO = Path(__file__).resolve().parents[2]
HMI, PLC = "10.0.0.11", "10.0.0.21"
LEVEL = TamperSpec("level", Table.INPUT_REGISTER, 2, 1999)


def adu(tid: int, pdu: bytes, unit: int = 1) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def read_req(fc: int, address: int, count: int) -> bytes:
    return struct.pack(">BHH", fc, address, count)


def regs_resp(fc: int, values: list[int]) -> bytes:
    return struct.pack(f">BB{len(values)}H", fc, 2 * len(values), *values)


# --- tamper spec ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "table", "address", "value"), [
    ("level=1999", Table.INPUT_REGISTER, 2, 1999),
    ("tank.level=0x10", Table.INPUT_REGISTER, 2, 16),
    ("ir:2=5", Table.INPUT_REGISTER, 2, 5),
    ("hr:0=1600", Table.HOLDING_REGISTER, 0, 1600),
    ("coil:1=1", Table.COIL, 1, 1),
    ("di:3=0", Table.DISCRETE_INPUT, 3, 0),
    ("pressure=650", Table.INPUT_REGISTER, 2, 650),
    ("pressure.auto_mode=0", Table.COIL, 1, 0),
])
def test_parse_tamper(text: str, table: Table, address: int, value: int) -> None:
    spec = parse_tamper(text)
    assert (spec.table, spec.address, spec.value) == (table, address, value)


@pytest.mark.parametrize(("text", "says"), [
    ("level", "REGISTER=VALUE"), ("=5", "REGISTER=VALUE"), ("level=abc", "not an integer"),
    ("level=70000", "0..65535"), ("coil:0=2", "0..1"), ("xx:1=1", "unknown table"),
    ("ir:-1=1", "address"), ("nosuch=1", "no register"), ("auto_mode=1", "ambiguous"),
    ("boiler.level=1", "unknown process"),
])
def test_parse_tamper_refusals(text: str, says: str) -> None:
    with pytest.raises(UserError, match=says):
        parse_tamper(text)


# --- PDUs -------------------------------------------------------------------------------
def test_parse_requests() -> None:
    assert parse_request(read_req(4, 0, 6)) == ModbusRequest(4, 0, 6)
    assert parse_request(bytes.fromhex("050001ff00")) == ModbusRequest(5, 1, 1, (1,))
    assert parse_request(bytes.fromhex("0600000640")) == ModbusRequest(6, 0, 1, (1600,))
    assert parse_request(bytes.fromhex("0f0000000301 05")) == ModbusRequest(15, 0, 3, (1, 0, 1))
    assert parse_request(bytes.fromhex("10000100020400070008")) == \
        ModbusRequest(16, 1, 2, (7, 8))
    assert parse_request(b"\x11") == ModbusRequest(17)
    assert parse_request(b"\x03\x00") == ModbusRequest(3)  # short: code only
    with pytest.raises(ValueError):
        parse_request(b"")


def test_parse_responses() -> None:
    assert parse_response(regs_resp(4, [1, 7, 1000]), None).values == (1, 7, 1000)
    assert parse_response(bytes.fromhex("010105"), ModbusRequest(1, 0, 3)).values == (1, 0, 1)
    assert parse_response(bytes.fromhex("8402"), None).exception_code == 2
    assert parse_response(bytes.fromhex("8402"), None).function == 4
    assert parse_response(bytes.fromhex("0600000640"), None).values == (1600,)


def test_tamper_pdu_registers_and_bits() -> None:
    true = regs_resp(4, [1, 42, 1000, 0, 5, 0])
    out = tamper_pdu(true, ModbusRequest(4, 0, 6), LEVEL)
    assert out is not None and len(out) == len(true)
    assert parse_response(out, None).values == (1, 42, 1999, 0, 5, 0)
    # a read starting at 1 puts address 2 at index 1
    assert parse_response(tamper_pdu(regs_resp(4, [42, 1000]), ModbusRequest(4, 1, 2), LEVEL),
                          None).values == (42, 1999)
    # not covered, another table, an exception, a mismatched request: untouched
    assert tamper_pdu(regs_resp(4, [1, 42]), ModbusRequest(4, 0, 2), LEVEL) is None
    assert tamper_pdu(regs_resp(3, [1, 2, 3]), ModbusRequest(3, 0, 3), LEVEL) is None
    assert tamper_pdu(bytes.fromhex("8402"), ModbusRequest(4, 0, 6), LEVEL) is None
    assert tamper_pdu(true, ModbusRequest(3, 0, 6), LEVEL) is None
    pump_off = TamperSpec("pump_on", Table.COIL, 0, 0)
    bits = tamper_pdu(bytes.fromhex("010107"), ModbusRequest(1, 0, 3), pump_off)
    assert bits == bytes.fromhex("010106")
    pump_on = TamperSpec("c:2", Table.COIL, 2, 1)
    assert tamper_pdu(bytes.fromhex("010100"), ModbusRequest(1, 0, 3), pump_on) == \
        bytes.fromhex("010104")


# --- following a conversation -----------------------------------------------------------
def test_tracker_matches_requests_and_responses() -> None:
    tracker = ModbusTracker()
    assert tracker.feed(1.0, HMI, 40000, PLC, 502, adu(7, read_req(4, 0, 6))) == []
    done = tracker.feed(1.002, PLC, 502, HMI, 40000, adu(7, regs_resp(4, [1, 3, 900, 0, 0, 0])))
    assert len(done) == 1
    x = done[0]
    assert (x.function_name, x.address, x.count, x.values) == \
        ("read_input_registers", 0, 6, [1, 3, 900, 0, 0, 0])
    assert x.client == f"{HMI}:40000" and x.server == f"{PLC}:502"
    assert x.latency_ms == pytest.approx(2.0) and x.t_s == 1.0
    assert tracker.unanswered() == 0


def test_tracker_writes_exceptions_split_segments_and_garbage() -> None:
    tracker = ModbusTracker()
    tracker.feed(0.0, HMI, 1, PLC, 502, adu(1, bytes.fromhex("0600000640")))
    (w,) = tracker.feed(0.1, PLC, 502, HMI, 1, adu(1, bytes.fromhex("0600000640")))
    assert (w.function_name, w.values) == ("write_register", [1600])
    # two requests in one segment, the second split over two
    both = adu(2, read_req(3, 0, 4)) + adu(3, read_req(4, 9, 1))
    tracker.feed(0.2, HMI, 1, PLC, 502, both[:15])
    tracker.feed(0.21, HMI, 1, PLC, 502, both[15:])
    (e,) = tracker.feed(0.3, PLC, 502, HMI, 1, adu(3, bytes.fromhex("8402")))
    assert e.exception_code == 2 and e.address == 9
    assert tracker.unanswered() == 1
    assert tracker.feed(0.4, PLC, 502, HMI, 1, adu(99, regs_resp(3, [1]))) == []
    assert tracker.unmatched_responses == 1
    assert tracker.feed(0.5, HMI, 1, PLC, 502, b"GET / HTTP/1.0\r\n\r\n") == []
    assert tracker.framing_errors == 1
    assert tracker.feed(0.6, HMI, 1, "10.0.0.9", 80, b"x") == []  # not Modbus


def test_rewrite_response_payload() -> None:
    tracker = ModbusTracker()
    tracker.feed(0.0, HMI, 5, PLC, 502, adu(10, read_req(4, 0, 6)) + adu(11, read_req(3, 0, 4)))
    first = adu(10, regs_resp(4, [1, 3, 900, 0, 0, 0]))
    payload = first + adu(11, regs_resp(3, [1, 2, 3, 4]))
    out, changed, segmented = rewrite_response_payload(payload, HMI, 5, tracker, LEVEL)
    assert not segmented and len(out) == len(payload)
    assert changed == {10: [1, 3, 1999, 0, 0, 0]}
    assert out[:len(first)] == adu(10, regs_resp(4, [1, 3, 1999, 0, 0, 0]))
    assert out[len(first):] == payload[len(first):]  # the holding registers: untouched
    done = tracker.feed(0.1, PLC, 502, HMI, 5, payload, changed)
    assert done[0].values[2] == 900 and done[0].tampered_values == [1, 3, 1999, 0, 0, 0]
    assert done[1].tampered_values is None
    # a partial ADU is forwarded unchanged and reported
    tracker.feed(0.2, HMI, 5, PLC, 502, adu(12, read_req(4, 0, 6)))
    part = adu(12, regs_resp(4, [1, 3, 900, 0, 0, 0]))[:10]
    assert rewrite_response_payload(part, HMI, 5, tracker, LEVEL) == (part, {}, True)


# --- CLI --------------------------------------------------------------------------------
@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    ics_plan().save(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "attacks.mitm", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


BAD = [
    (["--targets", "10.0.0.11,8.8.8.8"], "outside the plan's subnet"),
    (["--targets", "10.0.0.11"], "exactly two"),
    (["--targets", "10.0.0.11,10.0.0.21,10.0.0.22"], "exactly two"),
    (["--targets", "10.0.0.0/30"], "exactly two"),
    (["--targets", "10.0.0.11,10.0.0.11"], "exactly two"),
    (["--targets", "10.0.0.11,10.0.0.66"], "the attacker itself"),
    (["--targets", "10.0.0.11,10.0.0.21", "--tamper", "level"], "--tamper"),
    (["--targets", "10.0.0.11,10.0.0.21", "--tamper", "auto_mode=1"], "ambiguous"),
    (["--targets", "10.0.0.11,10.0.0.21", "--poison-interval-s", "0.01"], "at least"),
    (["--targets", "10.0.0.11,10.0.0.21", "--duration-s", "1e9"], "--duration-s"),
    (["--targets", "10.0.0.11,10.0.0.21", "--port", "70000"], "--port"),
]


@pytest.mark.parametrize(("extra", "says"), BAD)
def test_bad_input_is_one_line_exit_2(plan_path: Path, tmp_path: Path, extra: list[str],
                                      says: str) -> None:
    out = tmp_path / "o.json"
    done = _cli("--plan", str(plan_path), "--out", str(out), *extra)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("attacks.mitm: error: ") and says in lines[0]
    assert not out.exists()


def test_root_namespace_is_refused(plan_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    done = _cli("--plan", str(plan_path), "--out", str(out), "--targets",
                "10.0.0.11,10.0.0.21")
    assert done.returncode == 2 and "root network namespace" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and not out.exists()
