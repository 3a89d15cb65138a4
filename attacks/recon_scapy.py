"""The recon stages without nmap: scapy for ARP and SYN, plain sockets for the rest.

- ``discovery``: ARP who-has to every target; ``syn``: SYN, a SYN-ACK means open;
- ``connect``: the kernel's ``connect()``; ``version``: a banner grab (HTTP ``HEAD`` when the
  server says nothing first, except on 502);
- ``modbus``: Report Server ID (function 0x11) to a few unit ids.

Every packet goes to an address from the expanded targets; counts and waits are bounded by
ARP_WAIT_S, SYN_WAIT_S, MAX_SYN_PROBES and CONNECT_TIMEOUT_S. What it cannot do: identify a
service version beyond a banner's first line.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attacks.recon_run import MIN_STAGE_BUDGET_S, Engine, ReconRun, StageRecord, StageTimeout, skip
from common.modbus import MODBUS_PORT, describe_report_server_id, report_server_id_request

# The scapy engine's bounds: how long it waits for replies and how much it may send.
ARP_WAIT_S = 2.0
SYN_WAIT_S = 2.0
CONNECT_TIMEOUT_S = 1.0
MAX_SYN_PROBES = 65536
CONNECT_WORKERS = 32
MODBUS_UNIT_IDS = (1, 0, 255)


class ScapyEngine(Engine):
    """Stages with scapy (ARP, SYN) and plain sockets (connect, banner, Modbus): no nmap."""

    name = "scapy"

    def __init__(self, run: ReconRun) -> None:
        super().__init__(run)
        self.iface = interface_for(run)

    def version(self) -> str:
        # scapy is imported only when this engine runs: the nmap engine does not need it.
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
            return skip(record, "no live hosts")
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
            return skip(record, "no live hosts")
        record.ports = list(self.run.args.ports)
        self._connect_stage(record, [(h, p) for h in hosts for p in self.run.args.ports],
                            connect_probe)

    def stage_version(self, record: StageRecord) -> None:
        hosts, ports = self.run.version_targets()
        pairs = [(h, p) for h in hosts for p in ports
                 if not self.run.findings.open_ports(h) or p in self.run.findings.open_ports(h)]
        if not pairs:
            return skip(record, "no live hosts with open ports")
        record.ports = ports
        self._connect_stage(record, pairs, banner_probe)

    def stage_modbus(self, record: StageRecord) -> None:
        hosts = self.run.modbus_targets()
        if not hosts:
            return skip(record, f"no live host with {MODBUS_PORT}/tcp open")
        record.ports = [MODBUS_PORT]
        self._connect_stage(record, [(h, MODBUS_PORT) for h in hosts], modbus_probe)

    def stage_s7(self, record: StageRecord) -> None:
        """S7comm identification is nmap's ``s7-info`` only; this engine records a skip."""
        return skip(record, "S7comm identification needs the nmap engine (s7-info)")


def interface_for(run: ReconRun) -> str:
    """The local interface on the plan's subnet (scapy's ARP needs it: hosts have no route)."""
    subnet = run.ctx.plan.network
    for address, ifname in run.own.items():
        if ipaddress.IPv4Interface(address).network.overlaps(subnet):
            return ifname
    raise RuntimeError(f"no local interface on {subnet}: is this an emulated host?")


def connect_probe(address: str, port: int) -> dict[str, Any]:
    """A full TCP connect: open, closed (refused) or filtered (no answer in time)."""
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S):
            state = "open"
    except ConnectionRefusedError:
        state = "closed"
    except OSError:
        state = "filtered"
    return {"address": address, "port": port, "state": state}


def banner_probe(address: str, port: int) -> dict[str, Any]:
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


def modbus_probe(address: str, port: int) -> dict[str, Any]:
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
