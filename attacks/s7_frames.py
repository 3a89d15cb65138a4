"""Malformed S7comm frames for the fuzzer, seeded: what a hostile client can put on 102/tcp.

Each :func:`hostile_exchange` is one connection's worth: a kind name and the frames to send
on it in order (a valid COTP connect and setup first where the kind aims past them). Built
from :mod:`common.s7`'s frames, then broken: truncated or lying TPKT lengths, COTP garbage,
S7 headers whose parameter/data lengths lie, random S7 PDUs after a valid setup, truncated
jobs, user-data (SZL) requests with random ids and tails, and plain random bytes.
"""

from __future__ import annotations

import random
import struct

from common.s7 import COTP_DATA, cotp_connect_request, setup_communication, tpkt

KINDS = ("random", "tpkt_truncated", "tpkt_bad_length", "cotp_garbage", "s7_bad_lengths",
         "s7_random_pdu", "s7_truncated", "s7_userdata")
_SZL_HEAD = bytes.fromhex("3207000000000008000800011204114400")


def hostile_exchange(rng: random.Random) -> tuple[str, list[bytes]]:
    """One kind (from :data:`KINDS`) and its frames, drawn from ``rng``."""
    kind = KINDS[rng.randrange(len(KINDS))]
    cr, setup = cotp_connect_request(), setup_communication()
    setup_pdu = setup[7:]  # the S7 PDU inside TPKT + COTP data

    def noise(n: int) -> bytes:
        return rng.randbytes(n)

    if kind == "random":
        return kind, [noise(rng.randrange(1, 300))]
    if kind == "tpkt_truncated":
        return kind, [cr[:rng.randrange(1, 4)]]
    if kind == "tpkt_bad_length":
        frame = bytearray(cr)
        struct.pack_into(">H", frame, 2, rng.choice([0, 1, 3, 4, 5, 7, 65535]))
        return kind, [bytes(frame)]
    if kind == "cotp_garbage":
        return kind, [tpkt(noise(rng.randrange(0, 40)))]
    if kind == "s7_bad_lengths":
        pdu = bytearray(setup_pdu)
        struct.pack_into(">HH", pdu, 6, rng.randrange(65536), rng.randrange(65536))
        return kind, [cr, tpkt(COTP_DATA + bytes(pdu))]
    if kind == "s7_random_pdu":
        return kind, [cr, setup, tpkt(COTP_DATA + b"\x32" + noise(rng.randrange(0, 60)))]
    if kind == "s7_truncated":
        return kind, [cr, tpkt(COTP_DATA + setup_pdu[:rng.randrange(0, len(setup_pdu))])]
    return kind, [cr, setup, tpkt(COTP_DATA + _SZL_HEAD + noise(rng.randrange(0, 12)))]
