"""Modbus frame builders and parser, the hostile-frame generators, the barrage's bounds (on
127.0.0.1 against a real PLC process) and the CLI refusals of the three Modbus/TCP attacks."""

from __future__ import annotations

import asyncio
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks.modbus_frames import (
    bad_content_frame,
    bad_framing,
    partial_header,
    table_sizes_of,
)
from attacks.modbus_fuzz import BarrageConfig, run_barrage
from common.modbus import (
    EXCEPTION_REPLY_BYTES,
    SUPPORTED_FUNCTIONS,
    FrameError,
    mbap,
    parse_reply,
    read_request,
    reply_length,
    split_frames,
    write_coil_request,
    write_register_request,
)
from common.plan import ics_plan
from plc.registers import PRESSURE_MAP, TANK_MAP, Table
from tests.support.plc_process import LOOPBACK, PlcProcess

REPO = Path(__file__).resolve().parents[2]


# --- builders -----------------------------------------------------------------------------
def test_requests_have_the_documented_wire_bytes() -> None:
    assert read_request(5, 4, 0, 1).hex() == "000500000006010400000001"
    assert write_coil_request(5, 0, True).hex() == "00050000000601050000ff00"
    assert write_coil_request(5, 2, False).hex() == "000500000006010500020000"
    assert write_register_request(7, 0, 1950, unit_id=255).hex() == \
        "000700000006ff060000079e"


@settings(deadline=None)  # the first example imports scapy
@given(tid=st.integers(0, 0xFFFF), unit=st.integers(0, 255), address=st.integers(0, 0xFFFF),
       value=st.integers(0, 0xFFFF), on=st.booleans(), fc=st.sampled_from([1, 3, 4]),
       count=st.integers(1, 125))
def test_builders_match_scapy_modbus_layers(tid: int, unit: int, address: int, value: int,
                                            on: bool, fc: int, count: int) -> None:
    from attacks.modbus_client import scapy_request

    assert write_register_request(tid, address, value, unit) == \
        scapy_request(tid, unit, 6, address, value)
    assert write_coil_request(tid, address, on, unit) == \
        scapy_request(tid, unit, 5, address, int(on))
    assert read_request(tid, fc, address, count, unit) == \
        scapy_request(tid, unit, fc, address, count)


def test_write_register_refuses_values_beyond_16_bits() -> None:
    with pytest.raises(ValueError, match="outside"):
        write_register_request(1, 0, 65536)
    with pytest.raises(ValueError, match="not a read"):
        read_request(1, 5, 0, 1)


def test_parse_reply_registers_bits_echo_and_exception() -> None:
    regs = parse_reply(mbap(9, bytes([3, 4]) + struct.pack(">HH", 1600, 400)))
    assert (regs.transaction_id, regs.function_code, regs.values) == (9, 3, (1600, 400))
    assert not regs.is_exception
    bits = parse_reply(mbap(1, bytes([1, 1, 0b101])))
    assert bits.values[:3] == (1, 0, 1) and len(bits.values) == 8
    echo = parse_reply(write_coil_request(3, 2, True))  # a write's reply echoes the request
    assert echo.values == (2, 0xFF00)
    exc = parse_reply(mbap(4, bytes([0x86, 0x02]), unit_id=255))
    assert exc.is_exception and exc.exception_code == 2 and exc.function_code == 6
    assert exc.unit_id == 255 and len(mbap(4, bytes([0x86, 0x02]))) == EXCEPTION_REPLY_BYTES


@pytest.mark.parametrize("data", [
    b"\x00\x01\x00",  # short header
    mbap(1, b"\x03\x02\x00"),  # byte count says 2, only 1 data byte
    mbap(1, b"\x03\x00\x00", protocol_id=1),
    mbap(1, b"\x03\x02\x00\x01", length=200),  # length lies
    mbap(1, b"\x83"),  # exception without a code
    mbap(1, b"\x11\x00"),  # function not parsed here
])
def test_parse_reply_refuses_malformed_replies(data: bytes) -> None:
    with pytest.raises(FrameError):
        parse_reply(data)


def test_reply_length_reads_the_mbap_length() -> None:
    assert reply_length(mbap(1, b"\x03\x02\x00\x01")) == 11
    with pytest.raises(FrameError):
        reply_length(b"\x00" * 6)


# --- hostile frames -----------------------------------------------------------------------
@given(seed=st.integers(0, 2**32), tid=st.integers(0, 0xFFFF))
def test_bad_content_frames_are_well_framed_requests_a_plc_must_refuse(seed: int,
                                                                        tid: int) -> None:
    frame = bad_content_frame(random.Random(seed), tid)
    frames, rest = split_frames(frame)  # the PLC's own framing accepts it as one request
    assert len(frames) == 1 and rest == b""
    f = frames[0]
    pdu = f.pdu
    sizes = table_sizes_of(TANK_MAP)
    if f.unit_id not in (1, 255) or pdu[0] not in SUPPORTED_FUNCTIONS:
        return
    # a supported function for a served unit: it must aim outside the map or lie
    if pdu[0] in (1, 2, 3, 4):
        address, count = struct.unpack_from(">HH", pdu, 1)
        table = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING_REGISTER,
                 4: Table.INPUT_REGISTER}[pdu[0]]
        assert count == 0 or count > 2000 or address + count > sizes[table]
    else:
        address = struct.unpack_from(">H", pdu, 1)[0]
        assert address >= 100


def test_hostile_frames_are_seeded() -> None:
    a = [bad_content_frame(random.Random(3), i) for i in range(20)]
    b = [bad_content_frame(random.Random(3), i) for i in range(20)]
    assert a == b
    assert [bad_framing(random.Random(s)) for s in range(20)] == \
        [bad_framing(random.Random(s)) for s in range(20)]


def test_bad_framing_breaks_the_plc_framing_in_every_way() -> None:
    outcomes = {"error": 0, "incomplete": 0}
    for seed in range(400):
        try:
            frames, _rest = split_frames(bad_framing(random.Random(seed)))
        except FrameError:
            outcomes["error"] += 1
            continue
        if not frames:
            outcomes["incomplete"] += 1
    # bad protocol ids / lengths are refused; truncated headers and over-long lengths wait
    assert outcomes["error"] > 100 and outcomes["incomplete"] > 50
    assert outcomes["error"] + outcomes["incomplete"] >= 395
    assert len(partial_header(1)) == 3


def test_table_sizes_follow_the_register_maps() -> None:
    assert table_sizes_of(TANK_MAP)[Table.COIL] == 3
    assert table_sizes_of(PRESSURE_MAP)[Table.HOLDING_REGISTER] == 6


# --- the barrage's bounds, on loopback ----------------------------------------------------
@pytest.fixture
def plc(tmp_path: Path):
    proc = PlcProcess(tmp_path, "tank", "--cycle-ms", "100")
    yield proc
    proc.stop()


def test_barrage_stops_at_its_frame_count(plc: PlcProcess) -> None:
    stats = asyncio.run(run_barrage(BarrageConfig(
        host=LOOPBACK, port=plc.port, frames=2_000, rate_fps=5_000, max_s=10, half_open=10,
        seed=2)))
    slack = 4 * 16 * 4 + 8  # a burst (or pipelining flood) in flight per worker
    assert 2_000 <= stats.frames <= 2_000 + slack
    assert stats.exception_replies > 0 and stats.half_open_held == 10
    assert stats.duration_s < 5
    assert stats.timeline[-1]["frames"] == stats.frames
    assert plc.proc.poll() is None


def test_barrage_stops_at_its_time_bound(plc: PlcProcess) -> None:
    stats = asyncio.run(run_barrage(BarrageConfig(
        host=LOOPBACK, port=plc.port, frames=1_000_000, rate_fps=1_000, max_s=1.0,
        half_open=0, seed=3)))
    assert stats.duration_s < 1.0 + 2.5  # one reply timeout may still be pending
    assert stats.frames <= 1_000 * 1.0 + 4 * 64 + 8  # the pacing held
    assert stats.frames > 300


# --- CLI refusals (every attack: one line, exit 2, nothing sent) --------------------------
@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    ics_plan().save(path)
    return path


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"attacks.{module}", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


REFUSALS = [
    ("modbus_fuzz", ["--targets", "8.8.8.8"], "outside the plan's subnet"),
    ("modbus_fuzz", ["--targets", "10.0.0.21,10.0.0.22"], "exactly one"),
    ("modbus_fuzz", ["--targets", "10.0.0.21", "--rate-fps", "1e9"], "at most 50000"),
    ("modbus_fuzz", ["--targets", "10.0.0.21", "--frames", "0"], "--frames"),
    ("modbus_fuzz", ["--targets", "10.0.0.21", "--max-s", "-1"], "--max-s"),
    ("inject", ["--targets", "127.0.0.1", "--pump-on"], "outside the plan's subnet"),
    ("inject", ["--targets", "10.0.0.21"], "nothing to write"),
    ("inject", ["--targets", "10.0.0.21", "--set", "level=5"], "input_register"),
    ("inject", ["--targets", "10.0.0.21", "--process", "tank", "--set", "nope=1"],
     "no register 'nope'"),
    ("inject", ["--targets", "10.0.0.21", "--set", "pump_on"], "NAME=VALUE"),
    ("inject", ["--targets", "10.0.0.21", "--pump-on", "--engine", "modpoll"], "--engine"),
    ("inject", ["--targets", "10.0.0.21", "--pump-on", "--hold-s", "1e6"], "--hold-s"),
    ("inject", ["--targets", "10.0.0.21", "--pump-on", "--hold-s", "600", "--period-s",
                "0.05"], "exceed the bound"),
    ("synflood", ["--targets", "192.168.1.1"], "outside the plan's subnet"),
    ("synflood", ["--targets", "10.0.0.21", "--spoof-cidr", "10.0.1.0/24"],
     "outside the plan's subnet"),
    ("synflood", ["--targets", "10.0.0.21", "--rate-pps", "1000000"], "at most 100000"),
    ("synflood", ["--targets", "10.0.0.21", "--duration-s", "3600"],
     "--duration-s 3600: at most 300"),
    ("synflood", ["--targets", "10.0.0.21", "--max-packets", "0"], "--max-packets"),
    ("synflood", ["--targets", "10.0.0.0/30"], "exactly one"),
]


@pytest.mark.parametrize(("module", "args", "needle"), REFUSALS,
                         ids=[f"{m}:{' '.join(a[2:]) or a[1]}" for m, a, _ in REFUSALS])
def test_bad_input_is_one_line_and_exit_2(plan_path: Path, tmp_path: Path, module: str,
                                          args: list[str], needle: str) -> None:
    out = tmp_path / "out.json"
    res = _cli(module, "--plan", str(plan_path), "--out", str(out), *args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert lines[0].startswith(f"attacks.{module}: error:")
    assert "Traceback" not in res.stderr and not out.exists()


@pytest.mark.parametrize("module,args", [
    ("modbus_fuzz", ["--frames", "10"]),
    ("inject", ["--pump-on"]),
    ("synflood", ["--rate-pps", "10", "--duration-s", "1"]),
])
def test_refuses_the_root_namespace(plan_path: Path, tmp_path: Path, module: str,
                                    args: list[str]) -> None:
    """Run from the test runner's namespace (the root one, or unreadable): refused, exit 2."""
    out = tmp_path / "out.json"
    res = _cli(module, "--plan", str(plan_path), "--out", str(out), "--targets",
               "10.0.0.21", *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and ("root network namespace" in lines[0]
                                or "cannot" in lines[0]), res.stderr
    assert not out.exists()
