"""The address plan: the one place where roles get addresses.

Topologies, controller apps, defenses, the attacks' scope guard and the experiments' ground
truth all read an :class:`AddressPlan`; nothing derives an address from a host name.

A plan is plain data. It serialises to JSON (``to_json``/``from_json``) so processes started
inside emulated hosts (attacks, PLCs, defenses) can read the plan of the network they run in.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from common.modbus import MODBUS_PORT
from common.s7 import S7_PORT

DEFAULT_SUBNET = "10.0.0.0/24"

# Roles a host can have. Protected hosts are the moving-target defenses' targets; authorized
# hosts may reach protected hosts at their real addresses.
ROLES = ("hmi", "ews", "historian", "plc", "attacker", "host")

# star and linear reach 1000 hosts: past 253 their default subnet widens (a /22 at 1000).
MAX_SCALE_HOSTS = 1000

# Protocols a PLC of the plan can speak, each with its well-known port (the plan and the
# plant-file schema take a protocol's name here).
PROTOCOL_PORTS = {"modbus": MODBUS_PORT, "s7": S7_PORT}
PROTOCOLS = tuple(PROTOCOL_PORTS)
DEFAULT_SCAN_CYCLE_MS = 100.0
DEFAULT_HMI_PERIOD_MS = 100.0
DEFAULT_HMI_TIMEOUT_MS = 500.0


class PlanError(ValueError):
    """An address plan was asked for something it cannot hold."""


@dataclass(frozen=True)
class HostSpec:
    """One emulated host.

    name: Mininet host name, also the role name students type (``hmi``, ``plc1``).
    role: one of :data:`ROLES`.
    ip: IPv4 address (no prefix).
    mac: Ethernet address, fixed so ARP tables and captures are reproducible.
    switch: name of the switch the host is attached to.
    protected: the host is a moving-target defense target (PLCs by default).
    authorized: the host may talk to protected hosts at their real addresses.
    """

    name: str
    role: str
    ip: str
    mac: str
    switch: str
    protected: bool = False
    authorized: bool = False


@dataclass(frozen=True)
class SwitchSpec:
    """One OpenFlow switch; dpid is a 16-hex-digit string as OVS expects."""

    name: str
    dpid: str


@dataclass(frozen=True)
class PlcSpec:
    """What one PLC host runs.

    host: the PLC's host name (role ``plc``).
    process: the process model's kind (``tank``, ``pressure``, ``dosing``: plc.program).
    protocol: one of :data:`PROTOCOLS`.
    port: the TCP port it serves.
    scan_cycle_ms: the PLC's scan-cycle period.
    params: process-model parameters as sorted (name, value) pairs; empty: the kind's
        defaults.
    """

    host: str
    process: str
    protocol: str = "modbus"
    port: int = MODBUS_PORT
    scan_cycle_ms: float = DEFAULT_SCAN_CYCLE_MS
    params: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class OperatorAction:
    """One scheduled operator write from an HMI, in engineering units, by register name."""

    t_s: float
    plc: str
    register: str
    value: float


@dataclass(frozen=True)
class HmiSpec:
    """What one HMI host polls, how often, and the operator's scheduled writes."""

    host: str
    polls: tuple[str, ...]
    period_ms: float = DEFAULT_HMI_PERIOD_MS
    timeout_ms: float = DEFAULT_HMI_TIMEOUT_MS
    actions: tuple[OperatorAction, ...] = ()


@dataclass(frozen=True)
class AddressPlan:
    """Everything a run needs to know about who is where.

    name: the topology name the plan belongs to (``ics``, ``star``...).
    subnet: the one IPv4 network every host lives in.
    hosts, switches: the nodes.
    trunks: switch-to-switch links as (switch, switch) pairs, in order.
    virtual_pool: spare addresses a moving-target defense may hand out; never a host's
        real address.
    plcs: what each PLC host runs; a PLC host without an entry runs the default process
        (lab.devices). hmis: what each HMI polls; empty: the first HMI polls every PLC.
    """

    name: str
    subnet: str
    hosts: tuple[HostSpec, ...]
    switches: tuple[SwitchSpec, ...]
    trunks: tuple[tuple[str, str], ...] = ()
    virtual_pool: tuple[str, ...] = field(default=())
    plcs: tuple[PlcSpec, ...] = ()
    hmis: tuple[HmiSpec, ...] = ()

    def __post_init__(self) -> None:
        net = self.network
        seen_ip: dict[str, str] = {}
        seen_mac: dict[str, str] = {}
        switch_names = {s.name for s in self.switches}
        for h in self.hosts:
            if h.role not in ROLES:
                raise PlanError(f"host {h.name}: unknown role {h.role!r}")
            if ipaddress.IPv4Address(h.ip) not in net:
                raise PlanError(f"host {h.name}: {h.ip} is outside {self.subnet}")
            if h.ip in seen_ip:
                raise PlanError(f"hosts {seen_ip[h.ip]} and {h.name} share {h.ip}")
            if h.mac in seen_mac:
                raise PlanError(f"hosts {seen_mac[h.mac]} and {h.name} share {h.mac}")
            if h.switch not in switch_names:
                raise PlanError(f"host {h.name}: unknown switch {h.switch}")
            seen_ip[h.ip] = h.name
            seen_mac[h.mac] = h.name
        for a, b in self.trunks:
            if a not in switch_names or b not in switch_names:
                raise PlanError(f"trunk {a}-{b}: unknown switch")
        for v in self.virtual_pool:
            if ipaddress.IPv4Address(v) not in net:
                raise PlanError(f"virtual address {v} is outside {self.subnet}")
            if v in seen_ip:
                raise PlanError(f"virtual address {v} is {seen_ip[v]}'s real address")
        self._check_devices()

    def _check_devices(self) -> None:
        roles = {h.name: h.role for h in self.hosts}
        plc_names: set[str] = set()
        for p in self.plcs:
            if roles.get(p.host) != "plc":
                raise PlanError(f"plc entry {p.host}: no host of role plc has that name")
            if p.host in plc_names:
                raise PlanError(f"plc {p.host}: two entries")
            if p.protocol not in PROTOCOLS:
                raise PlanError(f"plc {p.host}: unknown protocol {p.protocol!r}")
            plc_names.add(p.host)
        for m in self.hmis:
            if roles.get(m.host) != "hmi":
                raise PlanError(f"hmi entry {m.host}: no host of role hmi has that name")
            for name in (*m.polls, *(a.plc for a in m.actions)):
                if roles.get(name) != "plc":
                    raise PlanError(f"hmi {m.host}: {name!r} is not a PLC")

    # --- queries -------------------------------------------------------------------------
    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise PlanError(f"no host named {name!r} in the {self.name} plan")

    def by_ip(self, ip: str) -> HostSpec | None:
        for h in self.hosts:
            if h.ip == ip:
                return h
        return None

    def hosts_with_role(self, role: str) -> tuple[HostSpec, ...]:
        return tuple(h for h in self.hosts if h.role == role)

    @property
    def protected(self) -> tuple[HostSpec, ...]:
        return tuple(h for h in self.hosts if h.protected)

    @property
    def attacker(self) -> HostSpec | None:
        found = self.hosts_with_role("attacker")
        return found[0] if found else None

    def in_scope(self, address: str) -> bool:
        """True when ``address`` (an IP or CIDR) lies wholly inside the plan's subnet."""
        try:
            net = ipaddress.IPv4Network(address, strict=False)
        except ValueError:
            return False
        return net.subnet_of(self.network)

    def ground_truth(self, exclude: Iterable[str] = ()) -> dict[str, HostSpec]:
        """Real addresses an observer should find, keyed by IP, minus ``exclude`` names."""
        skip = set(exclude)
        return {h.ip: h for h in self.hosts if h.name not in skip}

    def edge_ports(self) -> dict[str, tuple[str, int]]:
        """Each host's (switch, OpenFlow port number): the ports the topology gives its links.

        Ports are numbered per switch from 1, trunks first (in order), then hosts in plan
        order; :class:`topologies.base.PlanTopo` passes these numbers to Mininet, so this is
        the one place that knows which port a host is on (the controller binds trust to it).
        """
        return {h.name: (h.switch, port) for h, port in zip(self.hosts, self._host_ports(),
                                                             strict=True)}

    def trunk_ports(self) -> tuple[tuple[int, int], ...]:
        """(port on a, port on b) of each trunk (a, b), in the same numbering as edge_ports."""
        used: dict[str, int] = {}
        out = []
        for a, b in self.trunks:
            used[a] = used.get(a, 0) + 1
            used[b] = used.get(b, 0) + 1
            out.append((used[a], used[b]))
        return tuple(out)

    def _host_ports(self) -> list[int]:
        used: dict[str, int] = {}
        for a, b in self.trunks:
            used[a] = used.get(a, 0) + 1
            used[b] = used.get(b, 0) + 1
        ports = []
        for h in self.hosts:
            used[h.switch] = used.get(h.switch, 0) + 1
            ports.append(used[h.switch])
        return ports

    def plc_spec(self, name: str) -> PlcSpec | None:
        """What PLC ``name`` runs, when the plan says (None: the default process)."""
        for p in self.plcs:
            if p.host == name:
                return p
        return None

    def __iter__(self) -> Iterator[HostSpec]:
        return iter(self.hosts)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> AddressPlan:
        return cls(
            name=data["name"],
            subnet=data["subnet"],
            hosts=tuple(HostSpec(**h) for h in data["hosts"]),
            switches=tuple(SwitchSpec(**s) for s in data["switches"]),
            trunks=tuple((a, b) for a, b in data.get("trunks", ())),
            virtual_pool=tuple(data.get("virtual_pool", ())),
            plcs=tuple(_plc_from_dict(p) for p in data.get("plcs", ())),
            hmis=tuple(_hmi_from_dict(m) for m in data.get("hmis", ())),
        )

    @classmethod
    def from_json(cls, text: str) -> AddressPlan:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: Path) -> AddressPlan:
        return cls.from_json(Path(path).read_text())


def _plc_from_dict(data: dict) -> PlcSpec:
    return PlcSpec(**{**data, "params": tuple((k, float(v)) for k, v in data.get("params", ()))})


def _hmi_from_dict(data: dict) -> HmiSpec:
    return HmiSpec(**{**data, "polls": tuple(data.get("polls", ())),
                      "actions": tuple(OperatorAction(**a) for a in data.get("actions", ()))})


def mac_for(index: int) -> str:
    """A locally administered, unicast MAC whose last two bytes are ``index``."""
    if not 0 < index < 0x10000:
        raise PlanError(f"MAC index {index} out of range")
    return f"02:00:00:00:{index >> 8:02x}:{index & 0xFF:02x}"


def dpid_for(index: int) -> str:
    return f"{index:016x}"


def _host(name: str, role: str, net: ipaddress.IPv4Network, octet: int, switch: str,
          protected: bool = False, authorized: bool = False) -> HostSpec:
    return HostSpec(name=name, role=role, ip=str(net.network_address + octet),
                    mac=mac_for(octet), switch=switch, protected=protected,
                    authorized=authorized)


def _pool(net: ipaddress.IPv4Network, first: int, last: int,
          used: set[str]) -> tuple[str, ...]:
    return tuple(str(net.network_address + i) for i in range(first, last + 1)
                 if str(net.network_address + i) not in used)


def widen_pool(plan: AddressPlan, prefixlen: int) -> AddressPlan:
    """``plan`` in the /``prefixlen`` network that holds its subnet, with every address of that
    network no host uses as the virtual pool (OF-RHM's large unused range: an attacker must
    search the whole range). Hosts keep their addresses and MACs; the hosts' prefix widens
    with the subnet. PlanError when ``prefixlen`` is narrower than the subnet or below /16."""
    if not 16 <= prefixlen <= plan.prefixlen:
        raise PlanError(f"pool prefix /{prefixlen}: expected /16 to /{plan.prefixlen} (the "
                        f"subnet {plan.subnet} or a wider network holding it)")
    net = plan.network.supernet(new_prefix=prefixlen)
    used = {h.ip for h in plan.hosts}
    pool = tuple(str(a) for a in net.hosts() if str(a) not in used)
    return replace(plan, subnet=str(net), virtual_pool=pool)


def ics_plan(subnet: str = DEFAULT_SUBNET) -> AddressPlan:
    """The default ICS: a supervisory zone (s1) and a control zone (s2).

    s1: hmi .11, ews .12, historian .13, attacker .66; s2: plc1 .21, plc2 .22.
    The PLCs are protected; the HMI, engineering workstation and historian are authorized.
    Virtual pool: .100-.199.
    """
    net = ipaddress.IPv4Network(subnet)
    hosts = (
        _host("hmi", "hmi", net, 11, "s1", authorized=True),
        _host("ews", "ews", net, 12, "s1", authorized=True),
        _host("historian", "historian", net, 13, "s1", authorized=True),
        _host("attacker", "attacker", net, 66, "s1"),
        _host("plc1", "plc", net, 21, "s2", protected=True),
        _host("plc2", "plc", net, 22, "s2", protected=True),
    )
    return AddressPlan(
        name="ics",
        subnet=subnet,
        hosts=hosts,
        switches=(SwitchSpec("s1", dpid_for(1)), SwitchSpec("s2", dpid_for(2))),
        trunks=(("s1", "s2"),),
        virtual_pool=_pool(net, 100, 199, {h.ip for h in hosts}),
        plcs=(PlcSpec("plc1", "tank"), PlcSpec("plc2", "pressure")),
        hmis=(HmiSpec("hmi", polls=("plc1", "plc2")),),
    )


def classic_plan(subnet: str = DEFAULT_SUBNET) -> AddressPlan:
    """The well-known single-switch lab: h1-h4 at .1-.4 on s1; h4 runs a Modbus PLC."""
    net = ipaddress.IPv4Network(subnet)
    hosts = tuple(
        _host(f"h{i}", "plc" if i == 4 else "host", net, i, "s1", protected=(i == 4),
              authorized=(i == 1))
        for i in range(1, 5)
    )
    return AddressPlan(name="classic", subnet=subnet, hosts=hosts,
                       switches=(SwitchSpec("s1", dpid_for(1)),),
                       virtual_pool=_pool(net, 100, 199, {h.ip for h in hosts}),
                       plcs=(PlcSpec("h4", "tank"),))


def _check_scale(n_hosts: int) -> None:
    if not 2 <= n_hosts <= MAX_SCALE_HOSTS:
        raise PlanError(f"host count must be between 2 and {MAX_SCALE_HOSTS}, got {n_hosts}")


def scale_subnet(n_hosts: int) -> str:
    """The default subnet of a star/linear plan of ``n_hosts``: 10.0.0.0/24 up to 253 hosts,
    else the narrowest 10.0.0.0/N that holds them (/23 up to 509, /22 up to 1021)."""
    prefix = 24
    while (1 << (32 - prefix)) - 2 - 1 < n_hosts:  # network, broadcast, one pool address
        prefix -= 1
    return DEFAULT_SUBNET if prefix == 24 else f"10.0.0.0/{prefix}"


def _scale_net(n_hosts: int, subnet: str | None) -> ipaddress.IPv4Network:
    _check_scale(n_hosts)
    net = ipaddress.IPv4Network(subnet or scale_subnet(n_hosts))
    if net.num_addresses - 2 < n_hosts:
        raise PlanError(f"{n_hosts} hosts do not fit in {net}")
    return net


def star_plan(n_hosts: int, subnet: str | None = None) -> AddressPlan:
    """One switch, hosts h1..hN at .1..N (counted from the subnet's first address). The last
    host is the attacker. Subnet: :func:`scale_subnet` unless given."""
    net = _scale_net(n_hosts, subnet)
    hosts = tuple(
        _host(f"h{i}", "attacker" if i == n_hosts else "host", net, i, "s1")
        for i in range(1, n_hosts + 1)
    )
    return AddressPlan(name="star", subnet=str(net), hosts=hosts,
                       switches=(SwitchSpec("s1", dpid_for(1)),),
                       virtual_pool=_pool(net, n_hosts + 1, net.num_addresses - 2,
                                          {h.ip for h in hosts}))


def linear_plan(n_hosts: int, subnet: str | None = None) -> AddressPlan:
    """A chain of N switches s1..sN with one host each (h_i on s_i); hN is the attacker.
    Subnet: :func:`scale_subnet` unless given."""
    net = _scale_net(n_hosts, subnet)
    hosts = tuple(
        _host(f"h{i}", "attacker" if i == n_hosts else "host", net, i, f"s{i}")
        for i in range(1, n_hosts + 1)
    )
    switches = tuple(SwitchSpec(f"s{i}", dpid_for(i)) for i in range(1, n_hosts + 1))
    trunks = tuple((f"s{i}", f"s{i + 1}") for i in range(1, n_hosts))
    return AddressPlan(name="linear", subnet=str(net), hosts=hosts, switches=switches,
                       trunks=trunks,
                       virtual_pool=_pool(net, n_hosts + 1, net.num_addresses - 2,
                                          {h.ip for h in hosts}))


PLANS = {
    "ics": lambda n_hosts=None: ics_plan(),
    "classic": lambda n_hosts=None: classic_plan(),
    "star": lambda n_hosts=None: star_plan(n_hosts or 10),
    "linear": lambda n_hosts=None: linear_plan(n_hosts or 4),
}


def plan_for(topo: str, n_hosts: int | None = None) -> AddressPlan:
    """The plan of a named topology; ``n_hosts`` sizes ``star`` and ``linear``."""
    try:
        factory = PLANS[topo]
    except KeyError:
        raise PlanError(f"unknown topology {topo!r} (choose from {', '.join(PLANS)})") from None
    return factory(n_hosts)
