"""Plant files: a whole ICS described in YAML, validated strictly, turned into an address plan.

The schema (``docs/plants.md``) describes the subnet, the virtual pool, zones (switches) and
trunks, hosts with their roles, addresses and MACs, what each PLC runs and what the HMI
polls. :func:`load_plant` reads a file and returns an :class:`~common.plan.AddressPlan`, the
one thing the rest of the project reads; every mistake is a :class:`PlantError` whose one
line names the key path (``plcs[2].process.kind: unknown 'boiler' (tank, pressure, dosing)``)
and nothing is created before the whole file has passed.

This module knows no process model: the caller passes the kinds it may use
(``plc.program.process_kinds()``); without them the process part is checked for shape only
(what a topology, which needs only the network, can do).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from common.errors import UserError
from common.plan import (
    DEFAULT_HMI_PERIOD_MS,
    DEFAULT_HMI_TIMEOUT_MS,
    DEFAULT_SCAN_CYCLE_MS,
    PROTOCOL_PORTS,
    PROTOCOLS,
    AddressPlan,
    HmiSpec,
    HostSpec,
    OperatorAction,
    PlanError,
    PlcSpec,
    SwitchSpec,
    dpid_for,
)
from common.plant_groups import COUNT_KEY, MAX_GROUP, GroupError, expand_group

# Plant-file role → plan role (the plan calls a host with no ICS role ``host``).
ROLE_NAMES = {"hmi": "hmi", "ews": "ews", "historian": "historian", "plc": "plc",
              "attacker": "attacker", "other": "host"}
MIN_PREFIX, MAX_PREFIX = 16, 29
MAX_POOL = 4096
MAX_DPID = 2**48 - 1
# Host interfaces are ``<name>-eth0`` (15 characters at most); a switch's ports are
# ``<prefix><name>-ethNN`` with a two-letter prefix in tests.
HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
ZONE_NAME = re.compile(r"^[a-z][a-z0-9]{0,6}$")
PLANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# A switch port is ``<prefix><zone>-eth<port>``, 15 characters at most; two for the prefix.
PORT_NAME_ROOM = 15 - 2

TOP = "(top level)"
TOP_KEYS = ("name", "description", "subnet", "virtual_pool", "zones", "trunks", "hosts",
            "plcs", "hmis")


class PlantError(UserError):
    """A plant file is wrong; the message is one line starting with the key path."""


@dataclass(frozen=True)
class ProcessKind:
    """What a plant file may ask of one process kind.

    params: parameter names of the process model.
    writable: registers an operator may write (coils and holding registers).
    registers: (name, table, wire address) of every register of the kind's default map.
    """

    name: str
    params: tuple[str, ...]
    writable: tuple[str, ...]
    registers: tuple[tuple[str, str, int], ...] = ()


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise PlantError(f"line {key_node.start_mark.line + 1}: key {key!r} given twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _fail(path: str, message: str) -> NoReturn:
    raise PlantError(f"{path}: {message}")


def _choices(names: Any) -> str:
    return ", ".join(names)


def _mapping(value: Any, path: str, required: tuple[str, ...],
             optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"expected a mapping, got {_type(value)}")
    prefix = f"{path}." if path and path != TOP else ""
    for key in value:
        if key not in required and key not in optional:
            _fail(f"{prefix}{key}", f"unknown key (known: {_choices((*required, *optional))})")
    for key in required:
        if key not in value:
            _fail(f"{prefix}{key}", "missing")
    return value


def _type(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, f"expected a list, got {_type(value)}")
    return value


def _text(value: Any, path: str, pattern: re.Pattern[str] | None = None,
          what: str = "") -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_type(value)}")
    if pattern is not None and not pattern.match(value):
        _fail(path, f"{value!r} is not a valid {what}")
    return value


def _number(value: Any, path: str, lo: float, hi: float, integer: bool = False) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        _fail(path, f"expected {'an integer' if integer else 'a number'}, got {_type(value)}")
    if not lo <= value <= hi or value != value:
        _fail(path, f"{value} is outside {lo:g}..{hi:g}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, got {_type(value)}")
    return value


class _Reader:
    """One plant file's validation, section by section; remembers what it has seen."""

    def __init__(self, data: Any, kinds: Mapping[str, ProcessKind] | None) -> None:
        self.data = _mapping(data, TOP, ("name", "subnet", "zones", "hosts"),
                             tuple(k for k in TOP_KEYS
                                   if k not in ("name", "subnet", "zones", "hosts")))
        self.kinds = kinds
        self.net = ipaddress.IPv4Network("0.0.0.0/32")
        self.zones: list[SwitchSpec] = []
        self.hosts: list[HostSpec] = []
        self.ip_owner: dict[str, str] = {}
        self.plc_kind: dict[str, str] = {}

    def plan(self) -> AddressPlan:
        name = _text(self.data["name"], "name", PLANT_NAME, "plant name ([a-z][a-z0-9_-]*)")
        if "description" in self.data:
            _text(self.data["description"], "description")
        self._subnet()
        self._zones()
        trunks = self._trunks()
        self._hosts()
        self._port_names(trunks)
        pool = self._pool()
        plcs = self._plcs()
        hmis = self._hmis()
        try:
            return AddressPlan(name=name, subnet=str(self.net), hosts=tuple(self.hosts),
                               switches=tuple(self.zones), trunks=trunks, virtual_pool=pool,
                               plcs=plcs, hmis=hmis)
        except PlanError as exc:  # every rule is checked above; this is a second net
            _fail("(plan)", str(exc))

    def _subnet(self) -> None:
        text = _text(self.data["subnet"], "subnet")
        try:
            net = ipaddress.IPv4Network(text)
        except ValueError as exc:
            _fail("subnet", f"{text!r} is not an IPv4 network ({exc})")
        if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
            _fail("subnet", f"prefix /{net.prefixlen} is outside /{MIN_PREFIX}../{MAX_PREFIX}")
        self.net = net

    def _address(self, value: Any, path: str) -> str:
        text = _text(value, path)
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            _fail(path, f"{text!r} is not an IPv4 address")
        if ip not in self.net:
            _fail(path, f"{ip} is outside the subnet {self.net}")
        if ip in (self.net.network_address, self.net.broadcast_address):
            which = "network" if ip == self.net.network_address else "broadcast"
            _fail(path, f"{ip} is the subnet's {which} address")
        return str(ip)

    def _zones(self) -> None:
        names: set[str] = set()
        dpids: set[str] = set()
        zones = _list(self.data["zones"], "zones")
        if not zones:
            _fail("zones", "at least one zone (switch) is needed")
        for i, item in enumerate(zones):
            path = f"zones[{i}]"
            z = _mapping(item, path, ("name",), ("dpid", "description"))
            name = _text(z["name"], f"{path}.name", ZONE_NAME, "zone name ([a-z][a-z0-9]*, "
                         "at most 7 characters)")
            if name in names:
                _fail(f"{path}.name", f"duplicate zone name {name!r}")
            dpid = dpid_for(int(_number(z.get("dpid", i + 1), f"{path}.dpid", 1, MAX_DPID,
                                        integer=True)))
            if dpid in dpids:
                _fail(f"{path}.dpid", f"duplicate dpid {int(dpid, 16)}")
            if "description" in z:
                _text(z["description"], f"{path}.description")
            names.add(name)
            dpids.add(dpid)
            self.zones.append(SwitchSpec(name, dpid))

    def _trunks(self) -> tuple[tuple[str, str], ...]:
        names = [z.name for z in self.zones]
        group = {n: n for n in names}  # union-find: a second trunk between one group is a loop

        def root(n: str) -> str:
            while group[n] != n:
                n = group[n]
            return n

        trunks = []
        for i, item in enumerate(_list(self.data.get("trunks", []), "trunks")):
            path = f"trunks[{i}]"
            pair = _list(item, path)
            if len(pair) != 2:
                _fail(path, f"expected two zone names [a, b], got {len(pair)} items")
            for j, zone in enumerate(pair):
                if zone not in group:
                    _fail(f"{path}[{j}]", f"unknown zone {zone!r} ({_choices(names)})")
            a, b = pair
            if root(a) == root(b):
                _fail(path, f"trunk {a}-{b} closes a loop (the zones must form a tree: the "
                      "learning switch floods along every trunk)")
            group[root(a)] = root(b)
            trunks.append((a, b))
        islands = {root(n) for n in names}
        if len(islands) > 1:
            lonely = next(n for n in names if root(n) != root(names[0]))
            _fail("trunks", f"zone {lonely!r} is not connected to zone {names[0]!r}")
        return tuple(trunks)

    def _hosts(self) -> None:
        zone_names = [z.name for z in self.zones]
        names: set[str] = set(zone_names)
        macs: dict[str, str] = {}
        attacker = ""
        for path, h, member in self._host_entries():
            name = _text(h["name"], f"{path}.name", HOST_NAME,
                         "host name ([a-z][a-z0-9]*, at most 10 characters)")
            if name in names:
                _fail(f"{path}.name", f"duplicate name {name!r} (host and zone names are "
                      "one namespace)")
            role = _text(h["role"], f"{path}.role")
            if role not in ROLE_NAMES:
                _fail(f"{path}.role", f"unknown {role!r} ({_choices(ROLE_NAMES)})")
            if role == "attacker" and attacker:
                _fail(f"{path}.role", f"a second attacker (hosts {attacker!r} and {name!r}); "
                      "a plant has at most one")
            attacker = attacker or (name if role == "attacker" else "")
            ip = self._address(h["address"], f"{path}.address")
            if ip in self.ip_owner:
                which = f" (the group's member {name!r})" if member else ""
                _fail(f"{path}.address",
                      f"{ip} is already the address of {self.ip_owner[ip]!r}{which}")
            zone = _text(h["zone"], f"{path}.zone")
            if zone not in zone_names:
                _fail(f"{path}.zone", f"unknown zone {zone!r} ({_choices(zone_names)})")
            mac = self._mac(h, path, ip)
            if mac in macs:
                _fail(f"{path}.mac", f"{mac} is already the MAC of {macs[mac]!r}")
            authorized = _bool(h.get("authorized", False), f"{path}.authorized")
            protected = _bool(h.get("protected", role == "plc"), f"{path}.protected")
            if "description" in h:
                _text(h["description"], f"{path}.description")
            names.add(name)
            macs[mac] = name
            self.ip_owner[ip] = name
            self.hosts.append(HostSpec(name=name, role=ROLE_NAMES[role], ip=ip, mac=mac,
                                       switch=zone, protected=protected,
                                       authorized=authorized))

    def _host_entries(self) -> list[tuple[str, dict[str, Any], bool]]:
        """(key path, host, is a group member) of each host; a group (``count``) as its members."""
        hosts = _list(self.data["hosts"], "hosts")
        if not hosts:
            _fail("hosts", "at least one host is needed")
        out = []
        for i, item in enumerate(hosts):
            path = f"hosts[{i}]"
            h = _mapping(item, path, ("name", "role", "address", "zone"),
                         ("mac", "authorized", "protected", "description", COUNT_KEY))
            if COUNT_KEY not in h:
                out.append((path, h, False))
                continue
            count = int(_number(h[COUNT_KEY], f"{path}.count", 1, MAX_GROUP, integer=True))
            _text(h["name"], f"{path}.name", HOST_NAME, "host name ([a-z][a-z0-9]*)")
            first = self._address(h["address"], f"{path}.address")
            try:
                out.extend((path, m, True) for m in expand_group(h, first, count, self.net))
            except GroupError as exc:
                _fail(f"{path}.{exc.key}", str(exc))
        return out

    def _port_names(self, trunks: tuple[tuple[str, str], ...]) -> None:
        """A zone's last port name (``<zone>-eth<ports>``) must fit in PORT_NAME_ROOM."""
        ports = Counter(h.switch for h in self.hosts) + Counter(z for t in trunks for z in t)
        for i, zone in enumerate(self.zones):
            last = f"{zone.name}-eth{ports[zone.name]}"
            if len(last) > PORT_NAME_ROOM:
                _fail(f"zones[{i}].name", f"{ports[zone.name]} ports make the port name "
                      f"{last!r} longer than {PORT_NAME_ROOM} characters (15 with a "
                      "two-letter switch prefix): shorten the zone name")

    def _mac(self, h: dict[str, Any], path: str, ip: str) -> str:
        """The given MAC, or one derived from the address's offset in the subnet."""
        if "mac" not in h:
            index = int(ipaddress.IPv4Address(ip)) - int(self.net.network_address)
            return f"02:00:00:00:{index >> 8:02x}:{index & 0xFF:02x}"
        mac = _text(h["mac"], f"{path}.mac").lower()
        if not MAC.match(mac):
            _fail(f"{path}.mac", f"{h['mac']!r} is not a MAC address (xx:xx:xx:xx:xx:xx)")
        if int(mac[:2], 16) & 1:
            _fail(f"{path}.mac", f"{mac} is a multicast address")
        return mac

    def _pool(self) -> tuple[str, ...]:
        value = self.data.get("virtual_pool", [])
        items = [value] if isinstance(value, str) else _list(value, "virtual_pool")
        pool: list[str] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            path = "virtual_pool" if isinstance(value, str) else f"virtual_pool[{i}]"
            first, sep, last = _text(item, path).partition("-")
            lo = self._address(first.strip(), path)
            hi = self._address(last.strip(), path) if sep else lo
            a, b = int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi))
            if b < a:
                _fail(path, f"range {item!r} ends before it starts")
            if len(pool) + b - a + 1 > MAX_POOL:
                _fail(path, f"the pool holds more than {MAX_POOL} addresses")
            for n in range(a, b + 1):
                ip = str(ipaddress.IPv4Address(n))
                if ip in self.ip_owner:
                    _fail(path, f"{ip} is the real address of {self.ip_owner[ip]!r}")
                if ip in seen:
                    _fail(path, f"{ip} is in the pool twice")
                seen.add(ip)
                pool.append(ip)
        return tuple(pool)

    def _plcs(self) -> tuple[PlcSpec, ...]:
        plc_hosts = [h.name for h in self.hosts if h.role == "plc"]
        specs = []
        for i, item in enumerate(_list(self.data.get("plcs", []), "plcs")):
            path = f"plcs[{i}]"
            p = _mapping(item, path, ("host", "process"),
                         ("protocol", "port", "scan_cycle_ms", "registers"))
            host = _text(p["host"], f"{path}.host")
            if host not in plc_hosts:
                _fail(f"{path}.host", f"{host!r} is not a host of role plc "
                      f"({_choices(plc_hosts) or 'none'})")
            if host in self.plc_kind:
                _fail(f"{path}.host", f"PLC {host!r} has two entries")
            protocol = _text(p.get("protocol", "modbus"), f"{path}.protocol")
            if protocol not in PROTOCOLS:
                _fail(f"{path}.protocol", f"unknown {protocol!r} ({_choices(PROTOCOLS)})")
            port = int(_number(p.get("port", PROTOCOL_PORTS[protocol]), f"{path}.port", 1, 65535,
                               integer=True))
            cycle = float(_number(p.get("scan_cycle_ms", DEFAULT_SCAN_CYCLE_MS),
                                  f"{path}.scan_cycle_ms", 1, 60000))
            if p.get("registers", "default") != "default":
                _fail(f"{path}.registers", "only the kind's default map is supported "
                      "(registers: default; see docs/registers.md)")
            kind, params = self._process(p["process"], f"{path}.process")
            self.plc_kind[host] = kind
            specs.append(PlcSpec(host=host, process=kind, protocol=protocol, port=port,
                                 scan_cycle_ms=cycle, params=params))
        for host in plc_hosts:
            if host not in self.plc_kind:
                index = next(i for i, h in enumerate(self.hosts) if h.name == host)
                _fail(f"hosts[{index}]", f"PLC {host!r} has no process (add a plcs entry "
                      f"with host: {host})")
        return tuple(specs)

    def _process(self, value: Any, path: str) -> tuple[str, tuple[tuple[str, float], ...]]:
        proc = _mapping(value, path, ("kind",), ("params",))
        kind = _text(proc["kind"], f"{path}.kind")
        known = self.kinds.get(kind) if self.kinds is not None else None
        if self.kinds is not None and known is None:
            _fail(f"{path}.kind", f"unknown {kind!r} ({_choices(self.kinds)})")
        params = proc.get("params") or {}
        if not isinstance(params, dict):
            _fail(f"{path}.params", f"expected a mapping, got {_type(params)}")
        pairs = []
        for key, val in params.items():
            where = f"{path}.params.{key}"
            if known is not None and key not in known.params:
                _fail(where, f"unknown parameter ({_choices(known.params)})")
            pairs.append((str(key), float(_number(val, where, 0, 1e9))))
        return kind, tuple(sorted(pairs))

    def _hmis(self) -> tuple[HmiSpec, ...]:
        hmi_hosts = [h.name for h in self.hosts if h.role == "hmi"]
        items = _list(self.data.get("hmis", []), "hmis")
        if len(items) > 1:
            _fail("hmis[1]", "one HMI entry per plant for now (it may poll every PLC)")
        specs = []
        for i, item in enumerate(items):
            path = f"hmis[{i}]"
            m = _mapping(item, path, ("host",), ("polls", "period_ms", "timeout_ms",
                                                 "operator"))
            host = _text(m["host"], f"{path}.host")
            if host not in hmi_hosts:
                _fail(f"{path}.host", f"{host!r} is not a host of role hmi "
                      f"({_choices(hmi_hosts) or 'none'})")
            polls = self._polls(m.get("polls", "all"), f"{path}.polls")
            period = float(_number(m.get("period_ms", DEFAULT_HMI_PERIOD_MS),
                                   f"{path}.period_ms", 1, 60000))
            timeout = float(_number(m.get("timeout_ms", DEFAULT_HMI_TIMEOUT_MS),
                                    f"{path}.timeout_ms", 1, 60000))
            actions = tuple(self._action(a, f"{path}.operator[{j}]", polls)
                            for j, a in enumerate(_list(m.get("operator", []),
                                                        f"{path}.operator")))
            specs.append(HmiSpec(host=host, polls=polls, period_ms=period,
                                 timeout_ms=timeout,
                                 actions=tuple(sorted(actions, key=lambda a: a.t_s))))
        return tuple(specs)

    def _polls(self, value: Any, path: str) -> tuple[str, ...]:
        if value == "all":
            return tuple(self.plc_kind)
        polls = []
        for j, name in enumerate(_list(value, path)):
            if name not in self.plc_kind:
                _fail(f"{path}[{j}]", f"{name!r} is not a PLC ({_choices(self.plc_kind)})")
            if name in polls:
                _fail(f"{path}[{j}]", f"{name!r} is polled twice")
            polls.append(name)
        return tuple(polls)

    def _action(self, value: Any, path: str, polls: tuple[str, ...]) -> OperatorAction:
        a = _mapping(value, path, ("at_s", "plc", "register", "value"))
        t_s = float(_number(a["at_s"], f"{path}.at_s", 0, 1e7))
        plc = _text(a["plc"], f"{path}.plc")
        if plc not in polls:
            _fail(f"{path}.plc", f"{plc!r} is not one of the PLCs this HMI polls "
                  f"({_choices(polls)})")
        register = _text(a["register"], f"{path}.register")
        known = self.kinds.get(self.plc_kind[plc]) if self.kinds is not None else None
        if known is not None and register not in known.writable:
            _fail(f"{path}.register", f"{register!r} is not a writable register of "
                  f"{known.name} ({_choices(known.writable)})")
        value_eng = float(_number(a["value"], f"{path}.value", 0, 1e6))
        return OperatorAction(t_s=t_s, plc=plc, register=register, value=value_eng)


def parse_plant(data: Any, kinds: Mapping[str, ProcessKind] | None = None) -> AddressPlan:
    """The plan of already-parsed plant data; PlantError (key path first) when it is wrong."""
    return _Reader(data, kinds).plan()


def load_plant(path: Path | str, kinds: Mapping[str, ProcessKind] | None = None
               ) -> AddressPlan:
    """Read, validate and convert a plant file; PlantError ``FILE: key.path: what``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlantError(f"{path}: cannot read the plant file ({exc.strerror or exc})"
                         ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
        return parse_plant(data, kinds)
    except PlantError as exc:
        raise PlantError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlantError(f"{path}: {where}not valid YAML ({problem})") from None
