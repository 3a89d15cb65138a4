"""The Internet checksum (RFC 1071): the 16-bit ones'-complement sum that IPv4, ICMP, TCP
and UDP headers carry.

One place for it: the SYN flood fills it in (:mod:`attacks.synflood`) and the controller
recomputes it when it rewrites an ICMP error's quote (:mod:`controllers.packets`).
"""

from __future__ import annotations

import struct


def internet_checksum(data: bytes) -> int:
    """The checksum of ``data`` (an odd length is padded with a zero byte).

    Over a header that already carries its checksum the result is 0, which is how a
    receiver verifies it.
    """
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
