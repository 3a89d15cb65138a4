"""The shared helpers folded out of repeated code (issue #12): bounded numbers on the command
line, structured-text documents, stopping a process, table cells, each protocol's port."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.cli import int_in, number_in
from common.files import DocumentError, parse_document
from common.modbus import MODBUS_PORT
from common.plan import PROTOCOL_PORTS, PROTOCOLS
from common.s7 import S7_PORT
from dashboard.follow import LineFollower
from dashboard.runs import CsvTail
from lab.processes import terminate
from plc.metrics import records_from_csv
from reporting.bundle import cell_value


@pytest.mark.parametrize(("parse", "text", "message"), [
    (number_in(float, 1.0, 20.0), "30", "must be 1..20, got '30'"),
    (number_in(float, 10.0, 3600.0, unit=" s"), "5", "must be 10..3600 s, got '5'"),
    (number_in(float, 0.001, 1e9), "nan", "must be 0.001..1e+09"),
    (number_in(float, 1, 60000), "fast", "not a number: 'fast'"),
    (int_in(0, 2**63 - 1), "-1", f"must be 0..{2**63 - 1}, got '-1'"),
    (int_in(1, 65535), "1.5", "not an integer: '1.5'"),
])
def test_number_in_refuses_with_one_line(parse, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="^" + message.replace("+", r"\+")):
        parse(text)


def test_number_in_keeps_the_kind() -> None:
    assert number_in(int, 0, 65535)("502") == 502
    assert isinstance(number_in(float, 1, 60000)("100"), float)
    assert number_in(float, 10.0, 3600.0)("3600") == 3600.0


@pytest.mark.parametrize(("fmt", "text", "expected"), [
    ("yaml", "trials: 2\nports: [1, 2]\n", {"trials": 2, "ports": [1, 2]}),
    ("toml", "trials = 2\n[ssh]\nkey = 'k'\n", {"trials": 2, "ssh": {"key": "k"}}),
    ("json", '{"trials": 2}', {"trials": 2}),
    ("yaml", "", None),
])
def test_parse_document(fmt: str, text: str, expected: object) -> None:
    assert parse_document(text, fmt) == expected


@pytest.mark.parametrize(("fmt", "text"), [
    ("yaml", "a: [1, 2\n"), ("toml", "trials = \n"), ("json", "{trials: 2}"),
])
def test_parse_document_errors_are_one_line(fmt: str, text: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_document(text, fmt)
    assert str(info.value) and "\n" not in str(info.value)


def test_terminate_stops_a_process_that_ignores_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c",
                             "import signal, sys, time\n"
                             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                             "print('ready', flush=True)\n"
                             "time.sleep(60)\n"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        start = time.monotonic()
        code = terminate(proc, grace_s=0.3)
        assert code == -9 and proc.poll() == -9
        assert time.monotonic() - start < 5
        assert terminate(proc) == -9  # already gone: nothing sent, same status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize(("value", "kwargs", "expected"), [
    (None, {}, ""), (math.nan, {}, ""), (1 / 3, {}, "0.333333"), (7, {}, 7), ("x", {}, "x"),
    (None, {"missing": "-"}, "-"), (12345.6, {"digits": 4, "fixed_from": 1e4}, "12346"),
    (1234.56, {"digits": 4, "fixed_from": 1e4}, "1235"), (math.inf, {}, "inf"),
])
def test_cell_value(value: object, kwargs: dict, expected: object) -> None:
    assert cell_value(value, **kwargs) == expected


def test_csv_tail_keeps_the_last_rows_and_starts_over_on_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "hmi_requests.csv"
    header = ("t_s,plc,poll,function,address,count,latency_ms,outcome,values,error,peer\n")

    def rows(start: int, n: int) -> str:
        return "".join(f"{t}.0,plc1,{t},read_coils,0,3,1.5,ok,,,\n"
                       for t in range(start, start + n))

    path.write_text(header + rows(0, 5))
    tail = CsvTail(LineFollower(path, has_header=True), records_from_csv, max_rows=3)
    assert [r.t_s for r in tail.poll()] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [r.t_s for r in tail.rows] == [2.0, 3.0, 4.0]
    assert tail.clock.known
    assert tail.clock.to_unix(4.0) == pytest.approx(path.stat().st_mtime)
    with open(path, "a") as f:
        f.write(rows(5, 1))
    assert [r.t_s for r in tail.poll()] == [5.0]
    assert tail.poll() == []
    path.write_text(header + rows(0, 1))  # a new run rewrote the file
    tail.poll()
    assert [r.t_s for r in tail.rows] == [0.0]


def test_each_protocol_has_its_one_port() -> None:
    assert PROTOCOL_PORTS == {"modbus": MODBUS_PORT, "s7": S7_PORT}
    assert PROTOCOLS == ("modbus", "s7")
