"""The cluster file (``--cluster FILE``, ``docs/cluster.md``): servers, ssh, placement.

Pure: reading and validating the file (unknown keys and bad values are one-line
:class:`~common.errors.UserError`\\ s naming the key) and placing a plan's switches and hosts
on servers. The Mininet side (remote nodes, links, records, teardown) is
:mod:`lab.cluster_nodes`.

Placement:

* ``zone``: each switch of the plan is a zone (``ics``: ``s1`` the supervisory zone, ``s2`` the
  control zone); ``zones`` maps every switch to a server, hosts go with their switch, and the
  trunk between zones on different servers becomes a cross-server link.
* ``block``: switches in contiguous blocks over the servers (``linear``); a plan with one
  switch (``star``) keeps the switch on the first server and spreads its hosts in blocks.
* ``round-robin``: the same, one at a time in turn.

Any placement: ``hosts`` (host: server) moves single hosts off their switch's server (the
host's link then crosses servers), e.g. the ``ics`` attacker onto a third server.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.files import DocumentError, parse_document
from common.plan import AddressPlan

PLACEMENTS = ("zone", "block", "round-robin")
LINK_KINDS = ("ssh", "vxlan")
PROJECT_DIR = Path(__file__).resolve().parent.parent
TOP_KEYS = {"servers", "ssh", "controller_address", "link", "placement", "zones", "hosts"}
SERVER_KEYS = {"name", "address", "user", "project_dir", "python"}
SSH_KEYS = {"key", "known_hosts", "options"}


@dataclass(frozen=True)
class ServerSpec:
    """One server: its name (used in ``zones`` and logs), address, ssh user, and where the
    project is installed there (``project_dir``, its ``python``)."""

    name: str
    address: str
    user: str = "root"
    project_dir: str = str(PROJECT_DIR)
    python: str = ""

    @property
    def interpreter(self) -> str:
        return self.python or f"{self.project_dir}/.venv/bin/python"


@dataclass(frozen=True)
class ClusterSpec:
    """A validated cluster file. ``ssh_options`` are the client options every ssh (head to
    server, server to server for ``ssh`` links) uses: the key, a private known_hosts."""

    servers: tuple[ServerSpec, ...]
    controller_address: str
    ssh_key: str
    known_hosts: str
    link: str = "ssh"
    placement: str = "block"
    zones: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    extra_ssh_options: tuple[str, ...] = ()
    source: str = ""

    @property
    def ssh_options(self) -> list[str]:
        return ["-i", self.ssh_key, "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=5", *self.extra_ssh_options]

    def server(self, name: str) -> ServerSpec:
        return next(s for s in self.servers if s.name == name)


def _err(source: str, text: str) -> UserError:
    return UserError(f"{source}: {text}")


def _unknown(source: str, where: str, data: dict, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise _err(source, f"unknown key {where}{extra[0]!r} (allowed: "
                           f"{', '.join(sorted(allowed))})")


def _text(source: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _err(source, f"{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _ipv4(source: str, key: str, value: Any) -> str:
    text = _text(source, key, value)
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise _err(source, f"{key} = {text!r} is not an IPv4 address") from None
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        raise _err(source, f"{key} = {text} cannot be used: a server-reachable unicast "
                           "address is needed (not 0.0.0.0, loopback or multicast)")
    return text


def parse_cluster(data: Any, source: str = "cluster file") -> ClusterSpec:
    """Validate the parsed YAML/TOML ``data``; UserError (one line, the key named) if bad."""
    if not isinstance(data, dict):
        raise _err(source, "must be a mapping with 'servers', 'ssh', 'controller_address'")
    _unknown(source, "", data, TOP_KEYS)
    for key in ("servers", "ssh", "controller_address"):
        if key not in data:
            raise _err(source, f"missing key {key!r}")
    raw_servers = data["servers"]
    if not isinstance(raw_servers, list) or not raw_servers:
        raise _err(source, "servers must be a non-empty list")
    servers: list[ServerSpec] = []
    for i, item in enumerate(raw_servers, start=1):
        where = f"servers[{i}]"
        if not isinstance(item, dict):
            raise _err(source, f"{where} must be a mapping with name and address")
        _unknown(source, f"in {where}: ", item, SERVER_KEYS)
        for key in ("name", "address"):
            if key not in item:
                raise _err(source, f"{where}: missing key {key!r}")
        name = _text(source, f"{where}.name", item["name"])
        if not name.replace("-", "").replace("_", "").isalnum():
            raise _err(source, f"{where}.name = {name!r}: letters, digits, - and _ only")
        opts = {k: _text(source, f"{where}.{k}", v) for k, v in item.items()
                if k in ("user", "project_dir", "python")}
        servers.append(ServerSpec(name=name, address=_ipv4(source, f"{where}.address",
                                                           item["address"]), **opts))
    names = [s.name for s in servers]
    for label, values in (("name", names), ("address", [s.address for s in servers])):
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise _err(source, f"two servers with the same {label} {dup[0]!r}")
    ssh = data["ssh"]
    if not isinstance(ssh, dict):
        raise _err(source, "ssh must be a mapping with key and known_hosts")
    _unknown(source, "in ssh: ", ssh, SSH_KEYS)
    for key in ("key", "known_hosts"):
        if key not in ssh:
            raise _err(source, f"ssh: missing key {key!r}")
    key = _text(source, "ssh.key", ssh["key"])
    known = _text(source, "ssh.known_hosts", ssh["known_hosts"])
    if Path(key).expanduser().resolve().parent == Path("~/.ssh").expanduser().resolve():
        raise _err(source, "ssh.key: use a project-owned key, not one in ~/.ssh")
    extra = ssh.get("options", [])
    if isinstance(extra, str):
        extra = shlex.split(extra)
    if not isinstance(extra, list) or not all(isinstance(o, str) for o in extra):
        raise _err(source, "ssh.options must be a list of ssh arguments")
    link = data.get("link", "ssh")
    if link not in LINK_KINDS:
        raise _err(source, f"link = {link!r} is invalid; expected one of {', '.join(LINK_KINDS)}")
    placement = data.get("placement", "zone" if "zones" in data else "block")
    if placement not in PLACEMENTS:
        raise _err(source, f"placement = {placement!r} is invalid; expected one of "
                           f"{', '.join(PLACEMENTS)}")
    zones = _server_map(source, data, "zones", "switch", names)
    hosts = _server_map(source, data, "hosts", "host", names)
    if placement == "zone" and not zones:
        raise _err(source, "placement zone needs 'zones' (switch: server)")
    return ClusterSpec(servers=tuple(servers),
                       controller_address=_ipv4(source, "controller_address",
                                                data["controller_address"]),
                       ssh_key=key, known_hosts=known, link=link, placement=placement,
                       zones=zones, hosts=hosts, extra_ssh_options=tuple(extra),
                       source=source)


def _server_map(source: str, data: dict[str, Any], key: str, what: str,
                names: list[str]) -> dict[str, str]:
    """``zones`` or ``hosts``: a mapping of ``what`` names (switch, host) to server names."""
    mapping = data.get(key, {})
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in mapping.items()):
        raise _err(source, f"{key} must map {what} names to server names")
    for name, server in mapping.items():
        if server not in names:
            raise _err(source, f"{key}.{name} = {server!r}: no such server "
                               f"(servers: {', '.join(names)})")
    return dict(mapping)


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster file (YAML; ``.toml`` as TOML)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise UserError(f"cluster file {p}: {exc.strerror or exc}") from None
    try:
        data = parse_document(text, "toml" if p.suffix == ".toml" else "yaml")
    except DocumentError as exc:
        raise UserError(f"cluster file {p}: not valid {p.suffix.lstrip('.') or 'YAML'}: "
                        f"{exc}") from None
    return parse_cluster(data, str(p))


def _spread(items: list[str], servers: list[str], mode: str) -> dict[str, str]:
    if mode == "round-robin":
        return {item: servers[i % len(servers)] for i, item in enumerate(items)}
    size, extra = divmod(len(items), len(servers))
    out: dict[str, str] = {}
    start = 0
    for i, server in enumerate(servers):
        n = size + (1 if i < extra else 0)
        out.update({item: server for item in items[start:start + n]})
        start += n
    return out


def place(plan: AddressPlan, cluster: ClusterSpec) -> dict[str, str]:
    """Plan node name (switches as the plan names them, hosts) → server name.

    UserError when ``zone`` placement leaves a switch without a server or names a switch
    the plan does not have.
    """
    servers = [s.name for s in cluster.servers]
    switches = [s.name for s in plan.switches]
    if cluster.placement == "zone":
        unknown = sorted(set(cluster.zones) - set(switches))
        if unknown:
            raise UserError(f"{cluster.source}: zones.{unknown[0]}: topology {plan.name} has "
                            f"no switch {unknown[0]!r} (switches: {', '.join(switches)})")
        missing = [s for s in switches if s not in cluster.zones]
        if missing:
            raise UserError(f"{cluster.source}: zones: switch {missing[0]!r} of topology "
                            f"{plan.name} has no server")
        placement = dict(cluster.zones)
    elif len(switches) == 1:
        placement = {switches[0]: servers[0]}
        placement.update(_spread([h.name for h in plan.hosts], servers, cluster.placement))
        return _with_host_overrides(placement, plan, cluster)
    else:
        placement = _spread(switches, servers, cluster.placement)
    placement.update({h.name: placement[h.switch] for h in plan.hosts})
    return _with_host_overrides(placement, plan, cluster)


def _with_host_overrides(placement: dict[str, str], plan: AddressPlan,
                         cluster: ClusterSpec) -> dict[str, str]:
    """The cluster file's ``hosts`` (host: server) over the placement; UserError on a host
    the plan does not have."""
    names = [h.name for h in plan.hosts]
    unknown = sorted(set(cluster.hosts) - set(names))
    if unknown:
        raise UserError(f"{cluster.source}: hosts.{unknown[0]}: topology {plan.name} has no "
                        f"host {unknown[0]!r} (hosts: {', '.join(names[:12])}"
                        f"{', ...' if len(names) > 12 else ''})")
    return {**placement, **cluster.hosts}


def cross_server_links(plan: AddressPlan, placement: dict[str, str]) -> list[tuple[str, str]]:
    """The plan's links whose ends are on different servers (each becomes a tunnel)."""
    links = [*plan.trunks, *((h.name, h.switch) for h in plan.hosts)]
    return [(a, b) for a, b in links if placement[a] != placement[b]]
