"""Hostile traffic against a PLC on 127.0.0.1 while the HMI polls it.

A bounded, paced barrage (30,000 malformed frames at about 4,000 per second, 15 s at most)
of random bytes, truncated MBAP headers, lying length fields, bad protocol ids, unknown
function codes, out-of-range addresses and counts, wrong unit ids and pipelining floods,
plus 200 connections held open silent or with half a header. The scan cycle must not stop
and the HMI must keep >= 99 % availability. All traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

from plc.metrics import plc_metrics, records_from_csv
from plc.registers import TANK_MAP, Table
from tests.unit.test_plc_server import LOOPBACK, ROOT, PlcProcess

FRAMES_MIN = 10_000
FRAMES_TARGET = 30_000
FRAMES_PER_S = 4_000
BARRAGE_MAX_S = 15.0
HALF_OPEN = 200
KEEPING_WORKERS = 4
KILLING_WORKERS = 8
BURST = 16
SUPPORTED = {1, 2, 3, 4, 5, 6, 15, 16, 17}


def mbap(tid: int, pdu: bytes, unit: int = 1, protocol: int = 0,
         length: int | None = None) -> bytes:
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1 if length is None else length,
                       unit) + pdu


def bad_content_frame(rng: random.Random, tid: int) -> bytes:
    """A frame with a valid MBAP header whose request the PLC must refuse (exception)."""
    kind = rng.randrange(4)
    if kind == 0:  # unknown function code, random body
        fc = rng.choice([c for c in range(256) if c not in SUPPORTED])
        return mbap(tid, bytes([fc]) + rng.randbytes(rng.randrange(0, 40)))
    if kind == 1:  # reads with an address or count out of range
        fc = rng.choice((1, 2, 3, 4))
        size = TANK_MAP.count({1: Table.COIL, 2: Table.DISCRETE_INPUT,
                               3: Table.HOLDING_REGISTER, 4: Table.INPUT_REGISTER}[fc])
        address, count = rng.choice([(0, 0), (0, 2001), (0, 65535), (65535, 2),
                                     (size, 1), (rng.randrange(size, 65536), 1),
                                     (0, size + 1)])
        return mbap(tid, struct.pack(">BHH", fc, address, count))
    if kind == 2:  # writes outside the map or with lying byte counts
        fc = rng.choice((5, 6, 15, 16))
        address = rng.randrange(100, 65536)
        if fc in (5, 6):
            return mbap(tid, struct.pack(">BHH", fc, address, rng.randrange(65536)))
        count = rng.randrange(0, 300)
        values = rng.randbytes(rng.randrange(0, 60))
        return mbap(tid, struct.pack(">BHHB", fc, address, count, rng.randrange(256)) + values)
    # a good read for a unit id this PLC does not serve
    unit = rng.choice([u for u in range(256) if u not in (1, 255)])
    return mbap(tid, struct.pack(">BHH", 3, 0, 1), unit=unit)


def bad_framing(rng: random.Random) -> bytes:
    """Bytes whose MBAP header is broken or incomplete (the connection is closed after)."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:  # truncated header
        return mbap(rng.randrange(65536), b"\x03\x00\x00\x00\x01")[:rng.randrange(1, 7)]
    if kind == 2:  # a length field that lies (too short, too long, or more than sent)
        length = rng.choice((0, 1, 255, 65535, rng.randrange(20, 254)))
        return mbap(rng.randrange(65536), b"\x03\x00\x00\x00\x01", length=length)
    return mbap(rng.randrange(65536), b"\x03\x00\x00\x00\x01",
                protocol=rng.randrange(1, 65536))


@dataclass
class Barrage:
    frames: int = 0
    connections: int = 0
    responses_bytes: int = 0
    refused_connects: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int = 1) -> None:
        self.frames += n
        self.kinds[kind] = self.kinds.get(kind, 0) + n


async def run_barrage(port: int, seed: int) -> Barrage:
    stats = Barrage()
    start = time.monotonic()
    deadline = start + BARRAGE_MAX_S
    share = FRAMES_TARGET // 2  # half of the frames keep their connection, half kill it

    async def more(kind_share: int, kind_frames: int) -> bool:
        while stats.frames > FRAMES_PER_S * (time.monotonic() - start):
            await asyncio.sleep(0.005)  # pace the barrage so it spans several seconds
        return time.monotonic() < deadline and kind_frames < kind_share

    held: list[asyncio.StreamWriter] = []
    for i in range(HALF_OPEN):  # connections left open, silent or mid-header
        try:
            _, w = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            stats.refused_connects += 1
            continue
        stats.connections += 1
        if i % 2:
            w.write(mbap(i, b"\x03\x00\x00\x00\x01")[:3])
            stats.count("half_open_partial_header")
        held.append(w)

    keeping_frames = 0
    killing_frames = 0

    async def keeping(worker: int) -> None:
        nonlocal keeping_frames
        rng = random.Random(seed * 100 + worker)
        reader = writer = None
        tid = 0
        while await more(share, keeping_frames):
            if writer is None:
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                stats.connections += 1
            burst = b"".join(bad_content_frame(rng, (tid := tid + 1) & 0xFFFF)
                             for _ in range(BURST))
            # now and then a pipelining flood: more frames than the PLC queues per connection
            flood = rng.random() < 0.02
            n = BURST * (4 if flood else 1)
            writer.write(burst * (4 if flood else 1))
            keeping_frames += n
            stats.count("pipelining_flood" if flood else "bad_content", n)
            try:
                got = 0
                while got < 9 * BURST:  # every exception reply is 9 bytes
                    chunk = await asyncio.wait_for(reader.read(65536), 1.0)
                    if not chunk:
                        break
                    got += len(chunk)
                stats.responses_bytes += got
                if got < 9 * BURST or flood:
                    raise ConnectionError
            except (TimeoutError, ConnectionError, OSError):
                writer.close()
                reader = writer = None

    async def killing(worker: int) -> None:
        nonlocal killing_frames
        rng = random.Random(seed * 1000 + worker)
        while await more(share, killing_frames):
            try:
                _, w = await asyncio.open_connection(LOOPBACK, port)
            except OSError:
                stats.refused_connects += 1
                continue
            stats.connections += 1
            w.write(bad_framing(rng))
            killing_frames += 1
            stats.count("bad_framing")
            with contextlib.suppress(OSError):
                await w.drain()
            w.close()

    await asyncio.gather(*(keeping(i) for i in range(KEEPING_WORKERS)),
                         *(killing(i) for i in range(KILLING_WORKERS)))
    for w in held:
        w.close()
    return stats


def test_plc_survives_a_barrage_of_malformed_frames_while_the_hmi_polls(tmp_path):
    plc = PlcProcess(tmp_path, "tank", "--cycle-ms", "100")
    out = tmp_path / "hmi.csv"
    hmi_proc = subprocess.Popen(
        [sys.executable, "-m", "plc.hmi", "--plc", f"plc1={LOOPBACK}:{plc.port}",
         "--period-ms", "50", "--timeout-ms", "500", "--duration-s", "60", "--out",
         str(out)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                not out.exists() or out.read_text().count("\n") < 10):
            time.sleep(0.05)  # the HMI is connected and polling
        started = time.monotonic()
        barrage = asyncio.run(run_barrage(plc.port, seed=7))
        barrage_s = time.monotonic() - started
        time.sleep(0.3)
        assert plc.proc.poll() is None, "the PLC died under the barrage"
        hmi_proc.send_signal(signal.SIGTERM)
        assert hmi_proc.wait(10) == 0
        assert plc.stop() == 0
    finally:
        if hmi_proc.poll() is None:
            hmi_proc.kill()
            hmi_proc.wait()
        plc.stop()

    with open(out, newline="") as f:
        m = plc_metrics("plc1", records_from_csv(f))
    truth = plc.rows()
    gaps = [b["t_s"] - a["t_s"] for a, b in itertools.pairwise(truth)]
    log = plc.stderr_path.read_text()
    guard = re.search(r"guard=GuardStats\((.*)\)", log)
    print(f"\nbarrage: {barrage.frames} frames, {barrage.connections} connections in "
          f"{barrage_s:.1f} s, kinds={barrage.kinds}\nHMI: availability "
          f"{m.availability:.4f} over {m.polls} polls, p50 {m.latency_p50_ms:.2f} ms, "
          f"p99 {m.latency_p99_ms:.2f} ms, max {m.latency_max_ms:.1f} ms, "
          f"reconnects {m.reconnects}\nscan: {len(truth)} rows, max gap {max(gaps):.3f} s"
          f"\nguard: {guard.group(1) if guard else '?'}")
    assert barrage.frames >= FRAMES_MIN
    assert barrage_s < BARRAGE_MAX_S + 3
    assert m.polls >= 20 * barrage_s * 0.8
    assert m.availability >= 0.99
    assert max(gaps) < 0.5, "the scan cycle stalled"
    assert truth[-1]["scan_count"] == len(truth)
    assert "Traceback" not in log
