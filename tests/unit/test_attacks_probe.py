"""The exploit check's one harmless read, sent by the probe and the attacker models alike,
against a loopback Modbus responder; the sweep dispatcher with the ARP sweep faked."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from attacks import attacker_common
from attacks.attacker_common import Local, Reply, modbus_attempt, sweep_dispatch
from attacks.modbus_probe import PROCESS_ID_ADDRESS, probe, probe_request
from common.modbus import READ_INPUT_REGISTERS, adu, recv_adu, split_frames
from common.plan import ics_plan
from plc.registers import MAPS, Table


def test_the_probe_reads_the_process_id_register_of_every_map() -> None:
    for register_map in MAPS.values():
        register = register_map.get("process_id")
        assert (register.table, register.address) == (Table.INPUT_REGISTER, PROCESS_ID_ADDRESS)
    frames, rest = split_frames(probe_request(7))
    assert rest == b"" and len(frames) == 1 and frames[0].transaction_id == 7
    assert frames[0].pdu == struct.pack(">BHH", READ_INPUT_REGISTERS, PROCESS_ID_ADDRESS, 1)


@pytest.fixture
def responder() -> Iterator[tuple[int, list[bytes]]]:
    """A one-connection-at-a-time Modbus responder on 127.0.0.1: answers every read with
    process id 1 and records the requests it got."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    requests: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                data = recv_adu(conn)
                requests.append(data)
                frame = split_frames(data)[0][0]
                conn.sendall(adu(frame, bytes((frame.function_code, 2)) + b"\x00\x01"))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], requests
    stop.set()
    thread.join(timeout=5.0)
    server.close()


def test_probe_and_attempt_send_the_same_read_and_parse_the_reply(
        responder: tuple[int, list[bytes]]) -> None:
    port, requests = responder
    result = probe("127.0.0.1", port, 2.0)
    assert result["reached"] and result["values"] == [1] and result["stage"] == "reply"
    attempt = modbus_attempt("fast", "127.0.0.1", 2.0, port=port)
    assert attempt.connected and attempt.sent and attempt.replied, attempt.error
    assert attempt.src_ip == "127.0.0.1" and attempt.src_port > 0
    assert requests == [probe_request(1), probe_request(0x4242)]


def test_an_unanswered_probe_is_recorded_not_raised() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    result = probe("127.0.0.1", port, 0.5)
    assert not result["reached"] and result["stage"] == "connect" and result["error"]
    attempt = modbus_attempt("fast", "127.0.0.1", 0.5, port=port)
    assert not attempt.connected and not attempt.sent and attempt.error


def test_sweep_dispatch_runs_the_work_each_reply_asks_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    replies = [Reply(f"10.0.0.{i}", f"02:00:00:00:00:{i}", 100.0 + i) for i in (21, 22, 23)]

    def fake_sweep(_plan: object, _local: Local, addresses: list[str], _wait_s: float,
                   on_reply: Callable[[Reply], None]) -> list[Reply]:
        assert addresses == ["10.0.0.21", "10.0.0.22", "10.0.0.23"]
        for reply in replies:
            on_reply(reply)
        return replies

    monkeypatch.setattr(attacker_common, "arp_sweep", fake_sweep)
    seen: list[str] = []

    def task(reply: Reply) -> Callable[[], str] | None:
        seen.append(reply.address)
        return None if reply.address.endswith(".22") else (lambda: reply.mac)

    local = Local("attacker-eth0", "10.0.0.66", "02:00:00:00:00:66")
    got, results = sweep_dispatch(ics_plan(), local, [r.address for r in replies], 0.0, task)
    assert got == replies and seen == [r.address for r in replies]
    assert results == ["02:00:00:00:00:21", "02:00:00:00:00:23"]
    assert replies[0].to_dict(2) == {"address": "10.0.0.21", "mac": "02:00:00:00:00:21",
                                     "t_unix_s": 121.0, "sweep": 2}
