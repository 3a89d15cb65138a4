"""Pure parsing for reconnaissance: nmap XML into records, nmap's packet trace into per-reply
times, records into findings.

No I/O and no root: everything here takes text or records and returns records, so it is
unit-tested on saved nmap XML. The nmap XML is nmap's own ``-oX`` format (the one
python-nmap parses); this module reads only what recon reports and tolerates a scan that
ended early (no ``runstats``), but not truncated XML (:class:`NmapParseError`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any

OPEN = "open"


class NmapParseError(ValueError):
    """The text is not a complete nmap XML document."""


@dataclass(frozen=True)
class NmapPort:
    """One ``<port>`` of an nmap host: state plus the service and script results, if any."""

    port: int
    protocol: str
    state: str
    reason: str = ""
    service: str = ""
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    scripts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NmapHost:
    """One ``<host>``: its IPv4 address, MAC when nmap saw it (same L2 only), status, ports."""

    address: str
    mac: str | None
    state: str
    reason: str
    ports: tuple[NmapPort, ...] = ()

    @property
    def is_alive(self) -> bool:
        """Up on evidence: a reply to discovery, or any port answering (open or closed).

        With ``-Pn`` nmap marks every target up (``user-set``); that alone proves nothing.
        """
        if self.state != "up":
            return False
        if self.reason != "user-set":
            return True
        return any(p.state in ("open", "closed") for p in self.ports)

    @property
    def is_self(self) -> bool:
        """nmap's own host reports itself up with ``localhost-response``."""
        return self.reason == "localhost-response"


@dataclass(frozen=True)
class NmapRun:
    """A parsed nmap run: command line, hosts, and nmap's own summary."""

    args: str
    hosts: tuple[NmapHost, ...]
    elapsed_s: float | None
    exit: str | None
    hosts_up: int | None


def _text(node: ET.Element | None, key: str) -> str:
    return "" if node is None else (node.get(key) or "")


def _script(node: ET.Element) -> list[tuple[str, str]]:
    """A ``<script>``'s output, then each of its top-level ``<elem key=...>`` values as
    ``id.key`` (``s7-info.Module``, ``enip-info.vendor``): scripts with structured output."""
    sid = node.get("id") or ""
    items = [(sid, (node.get("output") or "").strip())]
    items += [(f"{sid}.{e.get('key')}", (e.text or "").strip())
              for e in node.findall("elem") if e.get("key")]
    return items


def parse_nmap_xml(xml_text: str) -> NmapRun:
    """Parse nmap ``-oX`` output into an :class:`NmapRun` (IPv4 hosts only)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise NmapParseError(f"not a complete nmap XML document: {exc}") from None
    if root.tag != "nmaprun":
        raise NmapParseError(f"root element is <{root.tag}>, not <nmaprun>")
    hosts: list[NmapHost] = []
    for node in root.iter("host"):
        address = mac = None
        for addr in node.findall("address"):
            if addr.get("addrtype") == "ipv4":
                address = addr.get("addr")
            elif addr.get("addrtype") == "mac":
                mac = (addr.get("addr") or "").lower() or None
        if address is None:
            continue
        status = node.find("status")
        ports: list[NmapPort] = []
        for port in node.findall("ports/port"):
            state = port.find("state")
            service = port.find("service")
            scripts = tuple(item for s in port.findall("script") for item in _script(s))
            ports.append(NmapPort(
                port=int(port.get("portid", "0")),
                protocol=port.get("protocol", ""),
                state=_text(state, "state"),
                reason=_text(state, "reason"),
                service=_text(service, "name"),
                product=_text(service, "product"),
                version=_text(service, "version"),
                extrainfo=_text(service, "extrainfo"),
                scripts=scripts,
            ))
        hosts.append(NmapHost(address=address, mac=mac, state=_text(status, "state"),
                              reason=_text(status, "reason"), ports=tuple(ports)))
    finished = root.find("runstats/finished")
    counts = root.find("runstats/hosts")
    elapsed = finished.get("elapsed") if finished is not None else None
    up = counts.get("up") if counts is not None else None
    return NmapRun(
        args=root.get("args", ""),
        hosts=tuple(hosts),
        elapsed_s=float(elapsed) if elapsed else None,
        exit=finished.get("exit") if finished is not None else None,
        hosts_up=int(up) if up else None,
    )


def local_ipv4_interfaces(ip_json: str) -> dict[str, str]:
    """Map each local IPv4 interface address (``10.0.0.1/24``) to its interface name.

    ip_json: the output of ``ip -j -4 addr show``.
    """
    out: dict[str, str] = {}
    for link in json.loads(ip_json or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and info.get("local"):
                out[f"{info['local']}/{info.get('prefixlen', 32)}"] = link.get("ifname", "")
    return out


# --- nmap --packet-trace: when each host and port answered ------------------------------
# nmap prints one line per packet sent/received and per connect() outcome, timed in seconds
# since nmap started: "RCVD (0.0312s) ARP reply 10.0.0.21 is-at ...", "RCVD (0.0400s) ICMP
# [10.0.0.21 > 10.0.0.100 Echo reply ...", "RCVD (1.2s) TCP 10.0.0.21:502 > 10.0.0.100:61 SA
# ...", "CONN (2.1s) TCP localhost > 10.0.0.21:502 => Connected".
_IP = r"(\d{1,3}(?:\.\d{1,3}){3})"
_T = r"\((\d+(?:\.\d+)?)s\)"
_ARP = re.compile(rf"^RCVD {_T} ARP reply {_IP} is-at")
_ICMP = re.compile(rf"^RCVD {_T} ICMP \[?{_IP} > ")
_TCP = re.compile(rf"^RCVD {_T} TCP \[?{_IP}:(\d+) > {_IP}:\d+ ([A-Z]+)")
_CONN = re.compile(rf"^CONN {_T} TCP \S+ > {_IP}:(\d+) => (Connected|Connection refused)")


@dataclass(frozen=True)
class TraceReply:
    """One answer in nmap's packet trace.

    t_s: seconds since nmap started; port: the answering TCP port when it is open (a SYN-ACK
        or a completed connect), None for a host-level answer (ARP, ICMP, RST, a refused
        connect).
    """

    t_s: float
    address: str
    kind: str
    port: int | None = None


def parse_packet_trace(text: str) -> list[TraceReply]:
    """Every answer in ``nmap --packet-trace`` output (other lines are ignored). An ICMP
    error is the answer of its outer source: the router or host that sent it."""
    out: list[TraceReply] = []
    for line in text.splitlines():
        line = line.strip()
        if m := _ARP.match(line):
            out.append(TraceReply(float(m.group(1)), m.group(2), "arp"))
        elif m := _ICMP.match(line):
            out.append(TraceReply(float(m.group(1)), m.group(2), "icmp"))
        elif m := _TCP.match(line):
            flags = m.group(5)
            port = int(m.group(3)) if "S" in flags and "A" in flags else None
            out.append(TraceReply(float(m.group(1)), m.group(2), "tcp", port))
        elif m := _CONN.match(line):
            port = int(m.group(3)) if m.group(4) == "Connected" else None
            out.append(TraceReply(float(m.group(1)), m.group(2), "conn", port))
    return out


@dataclass(frozen=True)
class ReplyTimes:
    """When each host, and each of its open ports, first answered, in seconds since the
    attack started (the trace's times shifted by nmap's start)."""

    hosts: dict[str, float] = field(default_factory=dict)
    ports: dict[tuple[str, int], float] = field(default_factory=dict)

    @classmethod
    def from_trace(cls, replies: list[TraceReply], nmap_start_s: float) -> ReplyTimes:
        """nmap_start_s: when nmap was started, in seconds since the attack started."""
        hosts: dict[str, float] = {}
        ports: dict[tuple[str, int], float] = {}
        for r in replies:
            at = round(nmap_start_s + r.t_s, 6)
            hosts[r.address] = min(hosts.get(r.address, at), at)
            if r.port is not None:
                key = (r.address, r.port)
                ports[key] = min(ports.get(key, at), at)
        return cls(hosts, ports)

    def host_s(self, address: str, default_s: float) -> float:
        return self.hosts.get(address, default_s)

    def port_s(self, address: str, port: int, default_s: float) -> float:
        return self.ports.get((address, port), self.hosts.get(address, default_s))


# --- findings ---------------------------------------------------------------------------
@dataclass
class PortFinding:
    """An open port the attacker learned of.

    first_seen_s: seconds from the attack's start to the moment the port answered (nmap's
        packet trace; the end of the stage that found it when the trace has no answer).
    found_by: the stage that found it first; ``details`` adds what later stages learned
        (service product/version, script output such as modbus-discover's).
    """

    port: int
    protocol: str
    first_seen_s: float
    found_by: str
    service: str = ""
    product: str = ""
    version: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class HostFinding:
    """A host the attacker learned of: address, MAC (None when never seen on the same L2)."""

    address: str
    mac: str | None
    first_seen_s: float
    found_by: str
    ports: dict[int, PortFinding] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        ports = [asdict(self.ports[p]) for p in sorted(self.ports)]
        return {
            "address": self.address,
            "mac": self.mac,
            "first_seen_s": self.first_seen_s,
            "found_by": self.found_by,
            "open_ports": [p["port"] for p in ports],
            "services": ports,
        }


class Findings:
    """What the attacker knows, merged over stages; addresses outside ``scope`` or in
    ``exclude`` (the attacker's own) are never recorded."""

    def __init__(self, scope: set[str] | frozenset[str], exclude: set[str] | frozenset[str]):
        self._scope = frozenset(scope)
        self._exclude = frozenset(exclude)
        self.hosts: dict[str, HostFinding] = {}

    def accepts(self, address: str) -> bool:
        return address in self._scope and address not in self._exclude

    def add_host(self, address: str, mac: str | None, at_s: float, stage: str) -> bool:
        """Record a live host; True when it is new. A later MAC fills a missing one."""
        if not self.accepts(address):
            return False
        known = self.hosts.get(address)
        if known is None:
            self.hosts[address] = HostFinding(address, mac, round(at_s, 6), stage)
            return True
        if known.mac is None and mac:
            known.mac = mac
        return False

    def add_port(self, address: str, port: int, protocol: str, at_s: float, stage: str,
                 service: str = "", product: str = "", version: str = "",
                 details: dict[str, str] | None = None) -> bool:
        """Record an open port (and its host); True when the port is new."""
        if not self.accepts(address):
            return False
        self.add_host(address, None, at_s, stage)
        host = self.hosts[address]
        known = host.ports.get(port)
        new = known is None
        if known is None:
            known = host.ports[port] = PortFinding(port, protocol, round(at_s, 6), stage)
        # Later, more specific stages refine what earlier ones guessed (-sS guesses by port).
        known.service = service or known.service
        known.product = product or known.product
        known.version = version or known.version
        known.details.update(details or {})
        return new

    def merge_nmap(self, run: NmapRun, at_s: float, stage: str,
                   replies: ReplyTimes | None = None) -> int:
        """Merge one nmap run's up hosts and open ports; return how many hosts were new.

        at_s: when the stage's output was in; replies: when each host and port answered
            (nmap's packet trace), which times a finding when it has the answer.
        """
        times = replies or ReplyTimes()
        new_hosts = 0
        for host in run.hosts:
            if not host.is_alive or host.is_self:
                continue
            host_s = min(times.host_s(host.address, at_s), at_s)
            new_hosts += self.add_host(host.address, host.mac, host_s, stage)
            for port in host.ports:
                if port.state != OPEN:
                    continue
                port_s = min(times.port_s(host.address, port.port, at_s), at_s)
                # -sS/-sT name services from the port table only; keep those as a guess.
                self.add_port(host.address, port.port, port.protocol, port_s, stage,
                              service=port.service, product=port.product,
                              version=port.version, details=dict(port.scripts))
        return new_hosts

    def addresses(self) -> list[str]:
        """Known live hosts, in address order."""
        return sorted(self.hosts, key=lambda a: tuple(int(x) for x in a.split(".")))

    def open_ports(self, address: str) -> list[int]:
        host = self.hosts.get(address)
        return sorted(host.ports) if host else []

    def to_list(self) -> list[dict[str, Any]]:
        return [self.hosts[a].to_dict() for a in self.addresses()]
