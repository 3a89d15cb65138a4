"""Staged reconnaissance from inside an emulated host: who is there, what listens, is it Modbus.

Run inside the attacker host::

    python -m attacks.recon --plan PLAN.json --targets 10.0.0.0/24 --out recon.json \\
        [--ports 502,80] [--stages discovery,syn,connect,version,modbus] \\
        [--engine nmap|scapy] [--timeout-s 300] [--stage-timeout-s 60] [--raw-dir DIR]

Stages run in the order above, each only on what earlier stages found:

- ``discovery``: ARP/ping sweep of every target (nmap ``-sn -n``; scapy: ARP who-has).
- ``syn``: half-open TCP scan of the live hosts (nmap ``-sS -n -Pn``; scapy: SYN, SYN-ACK = open).
- ``connect``: full TCP connects (nmap ``-sT``; scapy engine: the kernel's ``connect()``).
- ``version``: service versions of the open ports (nmap ``-sV``; scapy engine: banner grab).
- ``modbus``: who answers Modbus on 502/tcp (nmap ``modbus-discover``, bounded by
  ``--script-timeout``/``--host-timeout``; scapy engine: Report Server ID to a few unit ids).

Without ``discovery`` the later stages take every target as live. Each stage is timed and its
raw output (nmap XML, or the scapy engine's JSON) is saved in ``--raw-dir``. The attacker's own
addresses are never findings. Everything sent goes only to addresses the scope guard returned.

What it cannot do: scan UDP, IPv6, or anything outside the plan's subnet; the scapy engine
identifies no service versions beyond a banner's first line.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attacks.recon_parse import (
    Findings,
    local_ipv4_interfaces,
    parse_nmap_xml,
)
from common.cli import choice_list, port_list, positive_float
from common.errors import UserError
from common.hostenv import (
    AttackContext,
    AttackInterrupted,
    AttackOutcome,
    attack_parser,
    run_attack,
    utc_now_iso,
)
from common.modbus import MODBUS_PORT, describe_report_server_id, report_server_id_request
from common.scope import ScopeError

log = logging.getLogger(__name__)

STAGES = ("discovery", "syn", "connect", "version", "modbus")
DEFAULT_STAGES = ("discovery", "syn", "modbus")
ENGINES = ("nmap", "scapy")
# Modbus/TCP, HTTP, SSH, Siemens S7 (ISO-TSAP), DNP3, EtherNet/IP: what an ICS scan asks first.
DEFAULT_PORTS = (MODBUS_PORT, 80, 22, 102, 20000, 44818)
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_STAGE_TIMEOUT_S = 60.0
# The scapy engine's bounds: how long it waits for replies and how much it may send.
ARP_WAIT_S = 2.0
SYN_WAIT_S = 2.0
CONNECT_TIMEOUT_S = 1.0
MAX_SYN_PROBES = 65536
CONNECT_WORKERS = 32
MODBUS_UNIT_IDS = (1, 0, 255)
# Below this much budget a stage is skipped rather than started and cut short.
MIN_STAGE_BUDGET_S = 1.0
NMAP_KILL_GRACE_S = 5.0


class StageTimeout(Exception):  # noqa: N818 - a state, reported as a stage status
    """A stage ran out of its time budget; its partial results may still be merged."""


@dataclass(kw_only=True)
class StageRecord:
    """One stage's timing and bookkeeping, as it appears in the outcome's ``stages``.

    status: ``ok``, ``skipped`` (``note`` says why), ``failed`` (``error``), ``timed_out``,
        ``interrupted`` or ``running`` (only in an outcome of a killed process).
    started_s: seconds from the attack's start; duration_s: wall time of the stage.
    targets: how many addresses the stage was pointed at; probes: packets or connects sent
        (scapy engine) or None (nmap decides its own probes).
    """

    name: str
    status: str = "running"
    started_at: str = ""
    started_s: float = 0.0
    duration_s: float = 0.0
    targets: int = 0
    ports: list[int] = field(default_factory=list)
    command: list[str] | None = None
    probes: int | None = None
    raw_file: str | None = None
    hosts_up: int = 0
    new_hosts: int = 0
    new_ports: int = 0
    note: str = ""
    error: str = ""


@dataclass(kw_only=True)
class ReconOutcome(AttackOutcome):
    """The recon outcome: :class:`AttackOutcome` plus the engine, stages and findings."""

    engine: str
    engine_version: str = ""
    attacker_addresses: list[str] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)


# --- helpers shared by both engines ----------------------------------------------------
def _address_key(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def own_interfaces() -> dict[str, str]:
    """This namespace's IPv4 interface addresses (``10.0.0.1/24`` -> ``axh1-eth0``)."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True, timeout=10)
    return local_ipv4_interfaces(out.stdout)


@dataclass
class ReconRun:
    """The state of one recon run: context, findings, time budget, raw output folder."""

    ctx: AttackContext
    findings: Findings
    own: dict[str, str]
    work_dir: Path
    raw_dir: Path | None

    @property
    def args(self) -> argparse.Namespace:
        return self.ctx.args

    @property
    def outcome(self) -> ReconOutcome:
        assert isinstance(self.ctx.outcome, ReconOutcome)
        return self.ctx.outcome

    def remaining_s(self) -> float:
        return self.args.timeout_s - self.ctx.elapsed_s()

    def stage_budget_s(self) -> float:
        return min(self.args.stage_timeout_s, self.remaining_s())

    def live_hosts(self) -> list[str]:
        """Hosts the later stages probe: discovered ones, or every target without discovery."""
        if "discovery" in self.args.stages:
            return self.findings.addresses()
        own = {a.split("/")[0] for a in self.own}
        return [t for t in self.ctx.targets if t not in own]

    def save_raw(self, stage: str, suffix: str, text: str) -> str | None:
        if self.raw_dir is None:
            return None
        path = self.raw_dir / f"{self.args.engine}_{stage}.{suffix}"
        path.write_text(text)
        return str(path)

    def sync_findings(self) -> None:
        self.outcome.findings = self.findings.to_list()

    def check_targets(self, addresses: Sequence[str]) -> None:
        """Re-check right before sending: every address must be one the scope guard returned."""
        allowed = set(self.ctx.targets)
        outside = [a for a in addresses if a not in allowed]
        if outside:
            raise ScopeError(f"refusing to probe {outside[0]}: not in the expanded targets")


@contextmanager
def stage(run: ReconRun, name: str) -> Iterator[StageRecord]:
    """Time one stage and record how it ended; failures are recorded, not raised."""
    record = StageRecord(name=name, started_at=utc_now_iso(),
                         started_s=round(run.ctx.elapsed_s(), 6))
    run.outcome.stages.append(record)
    start_s = run.ctx.elapsed_s()
    hosts_before = len(run.findings.hosts)
    ports_before = sum(len(h.ports) for h in run.findings.hosts.values())
    log.info("stage %s: start", name)
    try:
        yield record
        if record.status == "running":
            record.status = "ok"
    except StageTimeout as exc:
        record.status = "timed_out"
        record.error = str(exc)
        run.outcome.errors.append(f"stage {name}: {exc}")
    except ScopeError:
        record.status = "failed"
        raise
    except AttackInterrupted:
        record.status = "interrupted"
        raise
    except Exception as exc:
        log.exception("stage %s failed", name)
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        run.outcome.errors.append(f"stage {name}: {record.error}")
    finally:
        if record.status == "running":
            record.status = "interrupted"
        record.duration_s = round(run.ctx.elapsed_s() - start_s, 6)
        record.new_hosts = len(run.findings.hosts) - hosts_before
        record.new_ports = sum(len(h.ports) for h in run.findings.hosts.values()) - ports_before
        run.sync_findings()
        log.info("stage %s: %s in %.2f s, %d new host(s), %d new port(s)", name,
                 record.status, record.duration_s, record.new_hosts, record.new_ports)


def _skip(record: StageRecord, note: str) -> None:
    record.status = "skipped"
    record.note = note
    log.info("stage %s: skipped: %s", record.name, note)


# --- engines ----------------------------------------------------------------------------
class Engine:
    """A way to run the stages; subclasses implement those they support."""

    name = ""

    def __init__(self, run: ReconRun) -> None:
        self.run = run

    def version(self) -> str:
        return ""

    def stage_fn(self, name: str) -> Callable[[StageRecord], None]:
        return getattr(self, f"stage_{name}")


class NmapEngine(Engine):
    """Stages through the nmap binary, parsed from its XML (the format python-nmap reads).

    nmap is started with ``subprocess`` rather than ``nmap.PortScanner.scan()`` because
    python-nmap keeps the child process private: a SIGTERM during its scan would leave nmap
    running in the namespace. Here the child is always terminated in a ``finally``.
    """

    name = "nmap"

    def __init__(self, run: ReconRun) -> None:
        super().__init__(run)
        self.nmap_path = shutil.which("nmap")
        if self.nmap_path is None:
            raise RuntimeError("nmap not found on PATH (apt-get install nmap)")

    def version(self) -> str:
        import nmap  # python-nmap; imported here so the scapy engine does not need it

        major, minor = nmap.PortScanner(nmap_search_path=(self.nmap_path,)).nmap_version()
        return f"nmap {major}.{minor}"

    def _nmap(self, record: StageRecord, hosts: Sequence[str], options: list[str]) -> None:
        """Run nmap on ``hosts`` with ``options``, save its XML, merge what it found."""
        self.run.check_targets(hosts)
        budget_s = self.run.stage_budget_s()
        if budget_s < MIN_STAGE_BUDGET_S:
            raise StageTimeout(f"time budget exhausted before the stage ({budget_s:.1f} s)")
        target_file = self.run.work_dir / f"targets_{record.name}.txt"
        target_file.write_text("\n".join(hosts) + "\n")
        command = [self.nmap_path or "nmap", "-oX", "-", *options, "-iL", str(target_file)]
        record.command = command
        record.targets = len(hosts)
        log.debug("running %s", " ".join(command))
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        timed_out = False
        try:
            try:
                xml_text, err_text = proc.communicate(timeout=budget_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.terminate()
                xml_text, err_text = proc.communicate(timeout=NMAP_KILL_GRACE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        record.raw_file = self.run.save_raw(record.name, "xml", xml_text)
        if timed_out:
            raise StageTimeout(f"nmap ran over the stage budget of {budget_s:.1f} s")
        if proc.returncode != 0:
            raise RuntimeError(f"nmap exited {proc.returncode}: "
                               f"{err_text.strip().splitlines()[-1:] or ''}")
        parsed = parse_nmap_xml(xml_text)
        at_s = self.run.ctx.elapsed_s()
        record.hosts_up = sum(1 for h in parsed.hosts if h.is_alive and not h.is_self
                              and self.run.findings.accepts(h.address))
        self.run.findings.merge_nmap(parsed, at_s, record.name)

    def stage_discovery(self, record: StageRecord) -> None:
        self._nmap(record, self.run.ctx.targets, ["-sn", "-n"])

    def _port_scan(self, record: StageRecord, scan_type: str) -> None:
        hosts = self.run.live_hosts()
        if not hosts:
            return _skip(record, "no live hosts")
        record.ports = list(self.run.args.ports)
        self._nmap(record, hosts, [scan_type, "-n", "-Pn", "-p",
                                   ",".join(map(str, self.run.args.ports))])

    def stage_syn(self, record: StageRecord) -> None:
        self._port_scan(record, "-sS")

    def stage_connect(self, record: StageRecord) -> None:
        self._port_scan(record, "-sT")

    def stage_version(self, record: StageRecord) -> None:
        hosts, ports = _version_targets(self.run)
        if not hosts:
            return _skip(record, "no live hosts with open ports")
        record.ports = ports
        host_timeout_s = _nmap_bound_s(self.run.stage_budget_s())
        self._nmap(record, hosts, ["-sV", "-n", "-Pn", "--host-timeout", f"{host_timeout_s}s",
                                   "-p", ",".join(map(str, ports))])

    def stage_modbus(self, record: StageRecord) -> None:
        hosts = _modbus_targets(self.run)
        if not hosts:
            return _skip(record, f"no live host with {MODBUS_PORT}/tcp open")
        record.ports = [MODBUS_PORT]
        host_timeout_s = _nmap_bound_s(self.run.stage_budget_s())
        script_timeout_s = max(1, host_timeout_s // 2)
        self._nmap(record, hosts, ["-sT", "-n", "-Pn", "-p", str(MODBUS_PORT),
                                   "--script", "modbus-discover",
                                   "--script-timeout", f"{script_timeout_s}s",
                                   "--host-timeout", f"{host_timeout_s}s"])


def _nmap_bound_s(budget_s: float) -> int:
    """nmap's own --host-timeout for a stage: short enough that nmap ends before we kill it."""
    return max(1, int(budget_s * 0.8))


def _version_targets(run: ReconRun) -> tuple[list[str], list[int]]:
    """Hosts and ports for version detection: the open ones, or all ports when none known."""
    port_stages = {"syn", "connect"} & set(run.args.stages)
    hosts = run.live_hosts()
    if not port_stages:
        return hosts, list(run.args.ports)
    hosts = [h for h in hosts if run.findings.open_ports(h)]
    ports = sorted({p for h in hosts for p in run.findings.open_ports(h)})
    return hosts, ports


def _modbus_targets(run: ReconRun) -> list[str]:
    """Hosts to ask for Modbus: those with 502 open, or every live host when no port scan ran."""
    port_stages = {"syn", "connect", "version"} & set(run.args.stages)
    hosts = run.live_hosts()
    if not port_stages:
        return hosts
    return [h for h in hosts if MODBUS_PORT in run.findings.open_ports(h)]


class ScapyEngine(Engine):
    """Stages with scapy (ARP, SYN) and plain sockets (connect, banner, Modbus): no nmap.

    Every packet goes to an address from the expanded targets; counts and waits are bounded
    by ARP_WAIT_S, SYN_WAIT_S, MAX_SYN_PROBES and CONNECT_TIMEOUT_S.
    """

    name = "scapy"

    def __init__(self, run: ReconRun) -> None:
        super().__init__(run)
        self.iface = _interface_for(run)

    def version(self) -> str:
        import scapy

        return f"scapy {scapy.VERSION}"

    def _raw(self, record: StageRecord, data: Any) -> None:
        record.raw_file = self.run.save_raw(record.name, "json", json.dumps(data, indent=2))

    def stage_discovery(self, record: StageRecord) -> None:
        from scapy.layers.l2 import ARP, Ether
        from scapy.sendrecv import srp

        own = {a.split("/")[0] for a in self.run.own}
        hosts = [t for t in self.run.ctx.targets if t not in own]
        self.run.check_targets(hosts)
        record.targets = record.probes = len(hosts)
        wait_s = min(ARP_WAIT_S, self.run.stage_budget_s())
        if wait_s < MIN_STAGE_BUDGET_S:
            raise StageTimeout("time budget exhausted before the stage")
        answered, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=hosts), iface=self.iface,
                          timeout=wait_s, verbose=0)
        at_s = self.run.ctx.elapsed_s()
        seen = []
        for _sent, reply in answered:
            address, mac = reply[ARP].psrc, reply[ARP].hwsrc.lower()
            seen.append({"address": address, "mac": mac})
            self.run.findings.add_host(address, mac, at_s, record.name)
        record.hosts_up = len({s["address"] for s in seen if self.run.findings.accepts(
            s["address"])})
        self._raw(record, {"iface": self.iface, "sent": len(hosts), "replies": seen})

    def stage_syn(self, record: StageRecord) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.sendrecv import sr
        from scapy.volatile import RandShort

        hosts = self.run.live_hosts()
        if not hosts:
            return _skip(record, "no live hosts")
        ports = list(self.run.args.ports)
        record.targets, record.ports = len(hosts), ports
        record.probes = len(hosts) * len(ports)
        if record.probes > MAX_SYN_PROBES:
            raise ValueError(f"{record.probes} SYN probes exceed the bound of {MAX_SYN_PROBES}")
        self.run.check_targets(hosts)
        wait_s = min(SYN_WAIT_S, self.run.stage_budget_s())
        if wait_s < MIN_STAGE_BUDGET_S:
            raise StageTimeout("time budget exhausted before the stage")
        answered, _ = sr(IP(dst=hosts) / TCP(sport=RandShort(), dport=ports, flags="S"),
                         timeout=wait_s, verbose=0)
        at_s = self.run.ctx.elapsed_s()
        replies = []
        for sent, reply in answered:
            if TCP not in reply:
                continue
            flags = str(reply[TCP].flags)
            state = "open" if "S" in flags and "A" in flags else "closed"
            replies.append({"address": sent[IP].dst, "port": sent[TCP].dport, "flags": flags,
                            "state": state})
            self.run.findings.add_host(sent[IP].dst, None, at_s, record.name)
            if state == "open":
                self.run.findings.add_port(sent[IP].dst, sent[TCP].dport, "tcp", at_s,
                                           record.name)
        record.hosts_up = len({r["address"] for r in replies})
        self._raw(record, {"sent": record.probes, "replies": replies})

    def _each(self, record: StageRecord, pairs: list[tuple[str, int]],
              probe: Callable[[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
        """Run ``probe`` on (host, port) pairs with a bounded thread pool; keep the order."""
        self.run.check_targets([h for h, _ in pairs])
        record.targets = len({h for h, _ in pairs})
        record.probes = len(pairs)
        if self.run.stage_budget_s() < MIN_STAGE_BUDGET_S:
            raise StageTimeout("time budget exhausted before the stage")
        deadline_s = time.monotonic() + self.run.stage_budget_s()
        pool = ThreadPoolExecutor(max_workers=CONNECT_WORKERS)
        try:
            futures = [pool.submit(probe, h, p) for h, p in pairs]
            results = []
            for future in futures:
                left_s = deadline_s - time.monotonic()
                if left_s <= 0:
                    raise StageTimeout("stage budget exhausted")
                results.append(future.result(timeout=left_s))
            return results
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _connect_stage(self, record: StageRecord, pairs: list[tuple[str, int]],
                       probe: Callable[[str, int], dict[str, Any]]) -> None:
        results = self._each(record, pairs, probe)
        at_s = self.run.ctx.elapsed_s()
        for r in results:
            if r["state"] == "open":
                self.run.findings.add_port(r["address"], r["port"], "tcp", at_s, record.name,
                                           service=r.get("service", ""),
                                           product=r.get("product", ""),
                                           details=r.get("details"))
        record.hosts_up = len({r["address"] for r in results if r["state"] != "filtered"})
        self._raw(record, {"probes": results})

    def stage_connect(self, record: StageRecord) -> None:
        hosts = self.run.live_hosts()
        if not hosts:
            return _skip(record, "no live hosts")
        record.ports = list(self.run.args.ports)
        self._connect_stage(record, [(h, p) for h in hosts for p in self.run.args.ports],
                            _connect_probe)

    def stage_version(self, record: StageRecord) -> None:
        hosts, ports = _version_targets(self.run)
        pairs = [(h, p) for h in hosts for p in ports
                 if not self.run.findings.open_ports(h) or p in self.run.findings.open_ports(h)]
        if not pairs:
            return _skip(record, "no live hosts with open ports")
        record.ports = ports
        self._connect_stage(record, pairs, _banner_probe)

    def stage_modbus(self, record: StageRecord) -> None:
        hosts = _modbus_targets(self.run)
        if not hosts:
            return _skip(record, f"no live host with {MODBUS_PORT}/tcp open")
        record.ports = [MODBUS_PORT]
        self._connect_stage(record, [(h, MODBUS_PORT) for h in hosts], _modbus_probe)


def _interface_for(run: ReconRun) -> str:
    """The local interface on the plan's subnet (scapy's ARP needs it: hosts have no route)."""
    subnet = run.ctx.plan.network
    for address, ifname in run.own.items():
        if ipaddress.IPv4Interface(address).network.overlaps(subnet):
            return ifname
    raise RuntimeError(f"no local interface on {subnet}: is this an emulated host?")


def _connect_probe(address: str, port: int) -> dict[str, Any]:
    """A full TCP connect: open, closed (refused) or filtered (no answer in time)."""
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S):
            state = "open"
    except ConnectionRefusedError:
        state = "closed"
    except OSError:
        state = "filtered"
    return {"address": address, "port": port, "state": state}


def _banner_probe(address: str, port: int) -> dict[str, Any]:
    """Connect, read a banner; if the server says nothing, ask as HTTP (except on 502)."""
    result = {"address": address, "port": port, "state": "filtered", "banner": ""}
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S) as sock:
            result["state"] = "open"
            sock.settimeout(CONNECT_TIMEOUT_S)
            data = b""
            try:
                data = sock.recv(512)
            except TimeoutError:
                if port != MODBUS_PORT:
                    sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                    data = sock.recv(512)
    except ConnectionRefusedError:
        result["state"] = "closed"
        return result
    except OSError:
        return result
    text = data.decode("latin-1", "replace")
    lines = text.splitlines()
    result["banner"] = lines[0] if lines else ""
    for line in lines:
        if line.lower().startswith("server:"):
            result["product"] = line.split(":", 1)[1].strip()
    if text.startswith("HTTP/"):
        result["service"] = "http"
    if result["banner"]:
        result["details"] = {"banner": result["banner"]}
    return result


def _modbus_probe(address: str, port: int) -> dict[str, Any]:
    """Ask Report Server ID (function 0x11) of a few unit ids; stop at the first answer."""
    result: dict[str, Any] = {"address": address, "port": port, "state": "filtered"}
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S) as sock:
            result["state"] = "open"
            sock.settimeout(CONNECT_TIMEOUT_S)
            for transaction_id, unit_id in enumerate(MODBUS_UNIT_IDS, start=1):
                sock.sendall(report_server_id_request(transaction_id, unit_id))
                try:
                    reply = sock.recv(260)
                except TimeoutError:
                    continue
                if not reply:
                    break
                summary = describe_report_server_id(reply, transaction_id)
                if summary is not None:
                    result["service"] = "modbus"
                    result["details"] = {"modbus-report-server-id":
                                         f"unit {unit_id}: {summary}"}
                    break
    except ConnectionRefusedError:
        result["state"] = "closed"
    except OSError:
        pass
    return result


ENGINE_CLASSES: dict[str, type[Engine]] = {"nmap": NmapEngine, "scapy": ScapyEngine}


# --- CLI --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The recon command line (see the module docstring)."""
    parser = attack_parser("attacks.recon", "Staged reconnaissance from inside an emulated host.")
    parser.add_argument("--ports", type=port_list, default=DEFAULT_PORTS,
                        help="TCP ports, e.g. 502,80,8000-8010 "
                             f"(default {','.join(map(str, DEFAULT_PORTS))})")
    parser.add_argument("--stages", type=choice_list(STAGES), default=DEFAULT_STAGES,
                        help=f"comma-separated subset of {','.join(STAGES)} "
                             f"(default {','.join(DEFAULT_STAGES)})")
    parser.add_argument("--engine", choices=ENGINES, default="nmap")
    parser.add_argument("--timeout-s", type=positive_float, default=DEFAULT_TIMEOUT_S,
                        help="budget for the whole run in seconds")
    parser.add_argument("--stage-timeout-s", type=positive_float,
                        default=DEFAULT_STAGE_TIMEOUT_S,
                        help="budget for one stage; bounds nmap's --host-timeout and "
                             "--script-timeout")
    parser.add_argument("--raw-dir", type=Path, default=None,
                        help="folder for each stage's raw output (created if missing)")
    return parser


def _validate(args: argparse.Namespace) -> None:
    if args.raw_dir is not None:
        parent = Path(args.raw_dir).resolve().parent
        if not parent.is_dir():
            raise UserError(f"--raw-dir {args.raw_dir}: parent {parent} does not exist")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> ReconOutcome:
    return ReconOutcome(attack="recon", parameters={}, targets=list(targets),
                        started_at=utc_now_iso(), engine=args.engine)


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    raw_dir = Path(args.raw_dir) if args.raw_dir is not None else None
    if raw_dir is not None:
        raw_dir.mkdir(exist_ok=True)
    own = own_interfaces()
    outcome = ctx.outcome
    assert isinstance(outcome, ReconOutcome)
    outcome.attacker_addresses = sorted(
        (a.split("/")[0] for a in own if not ipaddress.IPv4Interface(a).is_loopback),
        key=_address_key)
    findings = Findings(scope=set(ctx.targets), exclude=set(outcome.attacker_addresses))
    with tempfile.TemporaryDirectory(prefix="recon-") as work_dir:
        run = ReconRun(ctx=ctx, findings=findings, own=own, work_dir=Path(work_dir),
                       raw_dir=raw_dir)
        try:
            engine = ENGINE_CLASSES[args.engine](run)
            outcome.engine_version = engine.version()
            for name in args.stages:
                with stage(run, name) as record:
                    engine.stage_fn(name)(record)
        finally:
            run.sync_findings()
    log.info("recon: %d host(s) found: %s", len(findings.hosts),
             ", ".join(findings.addresses()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run recon; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
