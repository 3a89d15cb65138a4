"""The register map, its documentation, and the MBAP guard's pure checks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.modbus import (
    ExceptionCode,
    FrameError,
    check_request,
    exception_adu,
    split_frames,
)
from plc.registers import MAPS, MAPS_BY_ID, TANK_MAP, Register, RegisterMap, Table, markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "registers.md"


def test_doc_lists_every_register_of_the_code_map():
    text = DOC.read_text()
    assert text == markdown(), "docs/registers.md is stale: python -m plc.registers > it"
    for reg_map in MAPS.values():
        section = text.split(f"## `{reg_map.process}`")[1].split("\n## ")[0]
        for r in reg_map.registers:
            assert f"| {r.address} | {r.reference:05d} | `{r.name}` |" in section


def test_maps_are_contiguous_identified_and_documented_in_wire_addresses():
    assert set(MAPS) == {"tank", "pressure", "dosing"}
    assert {m.process_id for m in MAPS.values()} == set(MAPS_BY_ID)
    for reg_map in MAPS.values():
        assert reg_map.get("process_id").table is Table.INPUT_REGISTER
        assert reg_map.get("process_id").address == 0
        for table in Table:
            assert reg_map.count(table) >= 2
    assert TANK_MAP.get("level_high_sp").reference == 40001
    assert TANK_MAP.get("pump_on").reference == 1


def test_scaling_round_trips_and_clamps():
    level = TANK_MAP.get("level")
    assert level.to_raw(123.4) == 1234
    assert level.to_eng(1234) == pytest.approx(123.4)
    assert level.to_raw(-5) == 0 and level.to_raw(1e9) == 0xFFFF
    assert TANK_MAP.get("pump_on").to_raw(7) == 1
    assert level.column == "level_cm" and TANK_MAP.get("pump_on").column == "pump_on"


def test_a_map_with_gaps_or_duplicates_is_refused():
    with pytest.raises(ValueError, match=r"0\.\.n-1"):
        RegisterMap("x", 9, "", (Register("a", Table.COIL, 1, ""),))
    with pytest.raises(ValueError, match="duplicate"):
        RegisterMap("x", 9, "", (Register("a", Table.COIL, 0, ""),
                                 Register("a", Table.COIL, 1, "")))


def adu(tid: int, unit: int, pdu: bytes, protocol: int = 0, length: int | None = None):
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1 if length is None else length,
                       unit) + pdu


def test_split_frames_cuts_pipelined_and_partial_frames():
    a, b = adu(1, 1, b"\x03\x00\x00\x00\x04"), adu(2, 1, b"\x01\x00\x00\x00\x03")
    frames, rest = split_frames(a + b + b[:5])
    assert [f.transaction_id for f in frames] == [1, 2] and rest == b[:5]
    assert frames[0].function_code == 3 and frames[0].unit_id == 1


@pytest.mark.parametrize("data", [adu(1, 1, b"\x03\x00\x00\x00\x01", protocol=7),
                                  adu(1, 1, b"\x03", length=1),
                                  adu(1, 1, b"\x03", length=0),
                                  adu(1, 1, b"\x03", length=255),
                                  b"\xff" * 12])
def test_split_frames_refuses_broken_headers(data):
    with pytest.raises(FrameError):
        split_frames(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_split_frames_never_fails_other_than_framing_error(data):
    try:
        frames, rest = split_frames(data)
    except FrameError:
        return
    assert len(rest) < 7 or struct.unpack_from(">H", rest, 4)[0] + 6 > len(rest)
    for f in frames:
        assert 1 <= len(f.pdu) <= 253
        check_request(f.pdu)  # never raises


@pytest.mark.parametrize("pdu,expected", [
    (b"\x03\x00\x00\x00\x04", None),
    (b"\x03\x00\x00\x00\x00", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x03\x00\x00\x00\x7e", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x01\x00\x00\x07\xd1", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x04\xff\xff\x00\x02", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x03\x00\x00", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x05\x00\x00\xff\x00", None),
    (b"\x05\x00\x00\x12\x34", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x10\x00\x00\x00\x02\x04\x00\x01\x00\x02", None),
    (b"\x10\x00\x00\x00\x02\x03\x00\x01\x00", ExceptionCode.ILLEGAL_DATA_VALUE),
    (b"\x0f\x00\x00\x00\x09\x02\xff\x01", None),
    (b"\x2b\x0e\x01\x00", ExceptionCode.ILLEGAL_FUNCTION),
    (b"\x08\x00\x00", ExceptionCode.ILLEGAL_FUNCTION),
    (b"\x83\x02", ExceptionCode.ILLEGAL_FUNCTION),
    (b"\x11", None),
    (b"\x11\x00", ExceptionCode.ILLEGAL_DATA_VALUE),
])
def test_check_request(pdu, expected):
    assert check_request(pdu) == expected


def test_exception_adu():
    frames, _ = split_frames(adu(0x1234, 9, b"\x2b\x0e"))
    assert exception_adu(frames[0], ExceptionCode.ILLEGAL_FUNCTION) == \
        b"\x12\x34\x00\x00\x00\x03\x09\xab\x01"
