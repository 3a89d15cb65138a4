"""The lab's name service: the naming rule, the name table a moving-target defense keeps
current, the TTL rule, and the DNS wire format (through dnslib) for both ends.

The name server (:mod:`defenses.nameserver`) answers A queries for the PLCs' names
(:func:`name_for`: ``plc1.ics.lab``) with each PLC's current address: its current virtual
address under ``rhm`` or ``nat`` (the last hop-log record, :mod:`common.hoplog`), its real
address under no defense. The TTL never outlasts the address: it is the whole seconds left
until the host's next hop can come (:func:`ttl_s`), so it is at most the hop interval. The
non-exempt HMI (:mod:`plc.hmi_dns`) builds its queries and reads the answers here and caches
them for their TTL (:class:`DnsCache`).

Pure: no sockets, no clock (every function takes ``now``).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord

from common.hoplog import HopRecord
from common.plan import AddressPlan, HostSpec, PlanError, mac_for

DNS_PORT = 53
ZONE = "ics.lab"
DEFAULT_MAX_TTL_S = 60
CLIENT_NAME = "hmi2"
# Where the name server runs, by preference: a supervisory host that is not protected (its
# address never changes, so clients can be configured with it, like a resolver address).
SERVER_ROLES = ("historian", "ews")
# rcode names as the query log and the client's records show them.
NOERROR, NXDOMAIN, REFUSED, SERVFAIL = "NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL"


class DnsAnswerError(ValueError):
    """A reply that is not an answer to the query (wrong id, no A record, an error rcode)."""


def name_for(host: str, zone: str = ZONE) -> str:
    """The one naming rule: host ``plc1`` is ``plc1.ics.lab``."""
    return f"{host}.{zone}"


def host_for(name: str, zone: str = ZONE) -> str | None:
    """The host a name in ``zone`` names (case and a trailing dot ignored); None outside it."""
    name = name.rstrip(".").lower()
    suffix = "." + zone.lower()
    if not name.endswith(suffix):
        return None
    host = name[: -len(suffix)]
    return host if host and "." not in host else None


def in_zone(name: str, zone: str = ZONE) -> bool:
    name = name.rstrip(".").lower()
    return name == zone.lower() or name.endswith("." + zone.lower())


def ipv4(text: str) -> str:
    """argparse type (and check): a dotted IPv4 address; ArgumentTypeError otherwise."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None


@dataclass(frozen=True)
class Binding:
    """A name's current address. since_unix_s: when it took that address (None: always,
    the real address under no defense); virtual: a defense's virtual address."""

    host: str
    address: str
    since_unix_s: float | None = None
    virtual: bool = False


def named_hosts(plan: AddressPlan) -> tuple[str, ...]:
    """The hosts the server has names for: the PLCs and every protected host."""
    return tuple(h.name for h in plan.hosts if h.role == "plc" or h.protected)


def bindings(plan: AddressPlan, hops: Iterable[HopRecord], defended: bool
             ) -> dict[str, Binding]:
    """Host → current binding. defended: a moving-target defense runs, so a protected host
    has an address only once the hop log gives it one (its latest record wins)."""
    out: dict[str, Binding] = {}
    protected = {h.name for h in plan.protected}
    for name in named_hosts(plan):
        if not (defended and name in protected):
            out[name] = Binding(name, plan.host(name).ip)
    if defended:
        for r in sorted(hops, key=lambda r: r.time_unix_s):
            if r.host in protected:
                out[r.host] = Binding(r.host, r.new_virtual, r.time_unix_s, virtual=True)
    return out


def ttl_s(binding: Binding, now_unix_s: float, hop_interval_s: float, jitter_s: float = 0.0,
          max_ttl_s: int = DEFAULT_MAX_TTL_S) -> int:
    """Whole seconds the answer stays right: until the earliest time the host's next hop can
    come (its last hop + interval - jitter), never more than the hop interval or max_ttl_s.
    A real address (no defense) gets max_ttl_s."""
    if not binding.virtual or binding.since_unix_s is None:
        return max(0, int(max_ttl_s))
    left_s = binding.since_unix_s + hop_interval_s - jitter_s - now_unix_s
    cap = min(float(max_ttl_s), hop_interval_s)
    return int(max(0.0, math.floor(min(left_s, cap))))


@dataclass(frozen=True)
class QueryRecord:
    """One query the server answered (a line of its query log).

    t_unix_s: the time the answer was computed for; client_ip, client_port: the datagram's
    source; rcode, address, ttl_s: what was sent back (address '' and ttl_s None without an
    A record).
    """

    t_unix_s: float
    client_ip: str
    client_port: int
    name: str
    qtype: str
    rcode: str
    address: str = ""
    ttl_s: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueryRecord | None:
        try:
            ttl = data.get("ttl_s")
            return cls(float(data["t_unix_s"]), str(data["client_ip"]),
                       int(data["client_port"]), str(data["name"]), str(data["qtype"]),
                       str(data["rcode"]), str(data.get("address") or ""),
                       None if ttl is None else int(ttl))
        except (KeyError, TypeError, ValueError):
            return None



def _parse(data: bytes) -> DNSRecord | None:
    try:
        return DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, KeyError):
        return None


def answer(query: bytes, table: Mapping[str, Binding], now_unix_s: float,
           hop_interval_s: float, jitter_s: float = 0.0, max_ttl_s: int = DEFAULT_MAX_TTL_S,
           zone: str = ZONE, client: tuple[str, int] = ("", 0), allowed: bool = True
           ) -> tuple[bytes, QueryRecord] | None:
    """The reply to one datagram from ``client`` (ip, port) and its query-log record; None
    for anything that is not a parsable query (dropped).

    A query for a named host → its A record; for that name another type → no record
    (NOERROR); an unknown name in the zone → NXDOMAIN; outside the zone, or a client that is
    not ``allowed`` → REFUSED.
    """
    request = _parse(query)
    if request is None or request.header.qr or not request.questions:
        return None
    q = request.q
    record = QueryRecord(now_unix_s, client[0], client[1], str(q.qname).rstrip("."),
                         QTYPE.get(q.qtype, str(q.qtype)), NOERROR)
    reply = request.reply()
    reply.header.ra = 0
    host = host_for(record.name, zone)
    if not allowed or not in_zone(record.name, zone):
        reply.header.rcode = RCODE.REFUSED
        return reply.pack(), replace(record, rcode=REFUSED)
    if host is None or host not in table:
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack(), replace(record, rcode=NXDOMAIN)
    if q.qtype != QTYPE.A:
        return reply.pack(), record
    binding = table[host]
    ttl = ttl_s(binding, now_unix_s, hop_interval_s, jitter_s, max_ttl_s)
    reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(binding.address), ttl=ttl))
    return reply.pack(), replace(record, address=binding.address, ttl_s=ttl)


def query(name: str, query_id: int) -> bytes:
    """An A query for ``name`` with the given 16-bit id (recursion not asked for)."""
    q = DNSRecord.question(name, "A")
    q.header.id = query_id & 0xFFFF
    q.header.rd = 0
    return q.pack()


def parse_answer(data: bytes, query_id: int) -> tuple[str, int]:
    """(address, TTL s) of the first A record of a reply to query ``query_id``.

    DnsAnswerError (naming the rcode) for a reply with another id, an error rcode or no A
    record."""
    reply = _parse(data)
    if reply is None:
        raise DnsAnswerError("unparsable reply")
    if reply.header.id != query_id & 0xFFFF or not reply.header.qr:
        raise DnsAnswerError(f"reply id {reply.header.id} is not query {query_id}")
    if reply.header.rcode != RCODE.NOERROR:
        raise DnsAnswerError(RCODE.get(reply.header.rcode, str(reply.header.rcode)))
    for rr in reply.rr:
        if rr.rtype == QTYPE.A:
            return str(rr.rdata), int(rr.ttl)
    raise DnsAnswerError("no A record")


class DnsCache:
    """Answers kept for their TTL, as a resolver honouring it does (TTL 0: not kept)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, name: str, now_s: float) -> str | None:
        """The cached address, or None once its TTL has run out."""
        entry = self._entries.get(name.lower())
        if entry is None or now_s >= entry[1]:
            return None
        return entry[0]

    def put(self, name: str, address: str, ttl_s: int, now_s: float) -> None:
        self._entries[name.lower()] = (address, now_s + max(0, ttl_s))


def server_host(plan: AddressPlan) -> str:
    """The host the name server runs in: the first historian or ews that is not protected,
    else the first authorized unprotected host; PlanError when there is none."""
    candidates = [h for role in SERVER_ROLES for h in plan.hosts_with_role(role)]
    candidates += [h for h in plan.hosts if h.authorized]
    for h in candidates:
        if not h.protected:
            return h.name
    raise PlanError(f"plan {plan.name}: no unprotected historian, ews or authorized host to "
                    "run the name server in")


def client_host(plan: AddressPlan) -> HostSpec | None:
    """The plan's non-exempt HMI (role hmi, not authorized), when it declares one."""
    for h in plan.hosts_with_role("hmi"):
        if not h.authorized and not h.protected:
            return h
    return None


def with_client(plan: AddressPlan, name: str = CLIENT_NAME) -> tuple[AddressPlan, str]:
    """``plan`` with a non-exempt HMI, and that HMI's name: the plan's own (a plant file's
    ``authorized: false`` hmi) or ``name`` added at the end (so no other host's switch port
    moves) at the lowest free address outside the pool, on the first HMI's switch (else the
    first switch's). PlanError when the subnet has no free address."""
    found = client_host(plan)
    if found is not None:
        return plan, found.name
    used = {h.ip for h in plan.hosts} | set(plan.virtual_pool)
    free = next((a for a in plan.network.hosts() if str(a) not in used), None)
    if free is None:
        raise PlanError(f"plan {plan.name}: no free address for the name-service client")
    hmis = plan.hosts_with_role("hmi")
    switch = hmis[0].switch if hmis else plan.switches[0].name
    offset = int(free) - int(plan.network.network_address)
    host = HostSpec(name=name, role="hmi", ip=str(free), mac=mac_for(offset), switch=switch)
    return replace(plan, hosts=(*plan.hosts, host)), name
