"""Name resolution for the HMI (``plc.hmi --resolver IP[:PORT]``): a PLC given by name
(``--plc plc1=plc1.ics.lab``) is looked up through the lab's name server, and the answer is
kept for its TTL and no longer (:class:`common.dns.DnsCache`).

The HMI that uses it is a client without the real-address exemption: it must follow the
PLCs' virtual addresses. It asks again once the TTL has run out and, when the name points
elsewhere, closes its connection and connects to the new address (:meth:`Hmi._poll_plc`).
The wire format and the cache are :mod:`common.dns`'s; this module is the UDP exchange.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from common import dns
from common.errors import UserError


@dataclass(frozen=True)
class Lookup:
    """One name's address for the next request.

    address: None when the lookup failed. queried: a query was sent (else the cache
    answered); latency_ms, outcome (plc.metrics.OUTCOMES), error, ttl_s: that query's.
    """

    address: str | None
    queried: bool = False
    latency_ms: float = 0.0
    outcome: str = "ok"
    error: str = ""
    ttl_s: int | None = None


def parse_server(text: str) -> tuple[str, int]:
    """``IP[:PORT]`` → (ip, port), port 53 unless given; UserError otherwise."""
    host, _, port_text = text.partition(":")
    try:
        dns.ipv4(host)
    except argparse.ArgumentTypeError:
        raise UserError(f"--resolver {text!r}: expected IP[:PORT]") from None
    if not port_text:
        return host, dns.DNS_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UserError(f"--resolver {text!r}: bad port {port_text!r}")
    return host, int(port_text)


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable, etc.
        if not self.done.done():
            self.done.set_exception(exc)


class NameResolver:
    """Resolves names through one server, caching each answer for its TTL."""

    def __init__(self, server: str, port: int, timeout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.port = port
        self.timeout_s = timeout_s
        self.cache = dns.DnsCache()
        self._clock = clock
        self._rng = random.Random()

    async def _exchange(self, payload: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            _Reply, remote_addr=(self.server, self.port))
        try:
            transport.sendto(payload)
            return await proto.done
        finally:
            transport.close()

    async def address(self, name: str) -> Lookup:
        """The cached address while its TTL lasts, else a fresh answer from the server."""
        cached = self.cache.get(name, self._clock())
        if cached is not None:
            return Lookup(cached)
        query_id = self._rng.randrange(0x10000)
        start = time.perf_counter()
        try:
            data = await asyncio.wait_for(self._exchange(dns.query(name, query_id)),
                                          self.timeout_s)
            address, ttl = dns.parse_answer(data, query_id)
        except (TimeoutError, asyncio.TimeoutError):
            return Lookup(None, True, _ms_since(start), "timeout", "no answer")
        except dns.DnsAnswerError as exc:
            return Lookup(None, True, _ms_since(start), "exception", str(exc)[:80])
        except OSError as exc:
            return Lookup(None, True, _ms_since(start), "connection_error", str(exc)[:80])
        self.cache.put(name, address, ttl, self._clock())
        return Lookup(address, True, _ms_since(start), ttl_s=ttl)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
