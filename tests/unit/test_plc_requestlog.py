"""The PLC's request log (common.requestlog) written by a real plc.server on 127.0.0.1."""

from __future__ import annotations

import socket

from common import requestlog
from common.modbus import READ_INPUT_REGISTERS, parse_reply, read_request, recv_adu
from tests.support.plc_process import LOOPBACK, PlcProcess


def test_every_request_is_logged_with_client_port_and_answer(tmp_path) -> None:
    log = tmp_path / "plc1_requests.jsonl"
    plc = PlcProcess(tmp_path, "tank", "--request-log", str(log), "--name", "plc1")
    try:
        with socket.create_connection((LOOPBACK, plc.port), timeout=2) as sock:
            sock.settimeout(2)
            client_port = sock.getsockname()[1]
            sock.sendall(read_request(7, READ_INPUT_REGISTERS, 0, 1))
            assert not parse_reply(recv_adu(sock, "closed")).exception_code
            sock.sendall(read_request(8, READ_INPUT_REGISTERS, 9999, 1))  # outside the map
            assert parse_reply(recv_adu(sock, "closed")).exception_code == 2
    finally:
        assert plc.stop() == 0
    records = requestlog.read([log, tmp_path / "missing.jsonl"])
    assert [(r.plc, r.client_ip, r.client_port, r.transaction_id, r.answered,
             r.exception_code) for r in records] == [
        ("plc1", LOOPBACK, client_port, 7, True, 0), ("plc1", LOOPBACK, client_port, 8, True, 2)]
    assert records[0].function == READ_INPUT_REGISTERS and records[0].listen_port == plc.port


def test_reader_skips_torn_and_foreign_lines() -> None:
    good = ('{"t_unix_s": 1.5, "plc": "plc2", "client_ip": "10.0.0.66", "client_port": 4242, '
            '"unit_id": 1, "function": 4, "transaction_id": 3, "answered": true}')
    records = requestlog.parse([good, '{"t_unix_s": 2', '{"other": 1}', "", "[1]"])
    assert len(records) == 1 and records[0].client_port == 4242 and records[0].answered
