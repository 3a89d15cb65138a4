"""Packet captures a Wireshark user can open: hosts, switch trunk ports and the OpenFlow channel.

One capture is a set of ``tcpdump`` processes writing full frames (``-s 0``) into one folder:

- ``<host>.pcap``: a host's interface (``plc1-eth0``), captured inside the host;
- ``<switch>-eth<N>.pcap``: a switch port (``s1-eth1``, a trunk), captured in the root namespace;
- ``openflow.pcap``: the controller's OpenFlow channel on loopback (``tcp port <ofp port>``).

The controller listens on a free loopback port (labs run side by side, so not on 6653), where
Wireshark does not decode OpenFlow by itself. Beside the pcaps go ``decode_as_entries`` (the
file Wireshark keeps in a profile: copy it into ``~/.config/wireshark/`` or a profile folder),
``README.txt`` with the ``tshark -d tcp.port==PORT,openflow`` line, and ``capture.json`` (what
each file holds, for programs). The switch side of each file uses the plan's names (``s1``),
even when ``SDNICS_SWITCH_PREFIX`` renames the bridges.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import LabError, UserError
from common.plan import AddressPlan
from topologies.base import PlanTopo

if TYPE_CHECKING:
    import subprocess

    from lab.lifecycle import Lab

CAPTURE_WORDS = ("all", "hosts", "trunks", "openflow")
# tcpdump -s 0: the whole frame (262144 bytes), so long Modbus and fuzz frames stay whole.
SNAPLEN_BYTES = 0
READY_TIMEOUT_S = 10.0
_SWITCH_PORT = re.compile(r"^(?P<switch>[A-Za-z0-9]+)-eth(?P<port>\d+)$")


@dataclass(frozen=True)
class CaptureSpec:
    """What one capture records. The OpenFlow channel is always part of it.

    hosts: plan host names (each host's ``-eth0``).
    switch_ports: plan switch interface names (``s1-eth1``); the lab's prefix is added when
        the capture starts.
    """

    hosts: tuple[str, ...] = ()
    switch_ports: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [*self.hosts, *self.switch_ports, "openflow"]
        return ", ".join(parts)


def switch_ports(plan: AddressPlan) -> dict[str, tuple[str, ...]]:
    """Every switch interface the plan's topology has, by switch: ``{"s1": ("s1-eth1", ...)}``.

    Mininet names a port ``<switch>-eth<N>`` with the number its ``Topo`` assigned, so the
    names come from the topology graph, before anything is built.
    """
    topo = PlanTopo(plan)
    return {sw: tuple(f"{sw}-eth{n}" for n in sorted(topo.ports.get(sw, {})))
            for sw in topo.switches()}


def trunk_ports(plan: AddressPlan) -> tuple[str, ...]:
    """One interface per switch-to-switch link (its first switch's end): ``("s1-eth1",)``."""
    topo = PlanTopo(plan)
    names = []
    for a, b in plan.trunks:
        port_a, _port_b = topo.port(a, b)
        names.append(f"{a}-eth{port_a}")
    return tuple(names)


def parse_capture(text: str, plan: AddressPlan, flag: str = "--pcap") -> CaptureSpec:
    """``--pcap`` text → what to capture; UserError (one line naming ``flag``) on bad input.

    Comma-separated: host names, switch ports (``s1-eth1``), ``hosts`` (every host),
    ``trunks`` (every switch-to-switch link), ``openflow`` (the control channel only) or
    ``all`` (hosts and trunks). The OpenFlow channel is captured in every case.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UserError(f"{flag}: name what to capture (host names, s1-eth1, "
                        f"{', '.join(CAPTURE_WORDS)})")
    host_names = [h.name for h in plan.hosts]
    ports = switch_ports(plan)
    hosts: list[str] = []
    intfs: list[str] = []
    for item in items:
        if item in ("all", "hosts"):
            hosts += host_names
        if item in ("all", "trunks"):
            intfs += trunk_ports(plan)
        if item in CAPTURE_WORDS:
            continue
        if item in host_names:
            hosts.append(item)
            continue
        match = _SWITCH_PORT.match(item)
        if match and match["switch"] in ports:
            if item not in ports[match["switch"]]:
                raise UserError(f"{flag}: switch {match['switch']} has no port {item!r} "
                                f"(ports: {', '.join(ports[match['switch']])})")
            intfs.append(item)
            continue
        raise UserError(f"{flag}: {item!r} is no host or switch port of topology {plan.name} "
                        f"(hosts: {', '.join(host_names)}; switch ports like s1-eth1; or "
                        f"{', '.join(CAPTURE_WORDS)})")
    return CaptureSpec(hosts=tuple(dict.fromkeys(hosts)), switch_ports=tuple(dict.fromkeys(intfs)))


# --- the hint files (pure) ----------------------------------------------------------------
def decode_as_text(ofp_port: int) -> str:
    """Wireshark's ``decode_as_entries`` profile file: TCP port ``ofp_port`` is OpenFlow."""
    return ("# \"Decode As\" entries for Wireshark (SDN-ICS Lab capture): copy this file into\n"
            "# ~/.config/wireshark/ (or a profile folder) to decode the OpenFlow channel.\n"
            f"decode_as_entry: tcp.port,{ofp_port},(none),OpenFlow\n")


@dataclass(frozen=True)
class CapturedFile:
    """One pcap: the file name in the capture folder, the interface, where tcpdump ran."""

    file: str
    interface: str
    where: str
    filter: str = ""


@dataclass(frozen=True)
class CaptureInfo:
    """What ``capture.json`` holds."""

    openflow_port: int
    snaplen_bytes: int
    files: tuple[CapturedFile, ...] = field(default=())

    def tshark_hint(self) -> str:
        return f"-d tcp.port=={self.openflow_port},openflow"


def readme_text(info: CaptureInfo) -> str:
    """``README.txt`` beside the pcaps: what each file is and how to open it."""
    lines = [
        "Packet captures of one SDN-ICS Lab run (tcpdump, full frames: snap length "
        f"{info.snaplen_bytes or 'unlimited'}).",
        "",
        f"The OpenFlow channel ran on 127.0.0.1 TCP port {info.openflow_port}, not on 6653,",
        "so tell Wireshark it is OpenFlow:",
        f"  tshark -r openflow.pcap {info.tshark_hint()} -Y openflow_v4",
        f"  wireshark -r openflow.pcap {info.tshark_hint()}",
        "or copy decode_as_entries into ~/.config/wireshark/ (Analyze > Decode As... in the GUI).",
        "Modbus/TCP (port 502) is decoded as is: tshark -r plc1.pcap -Y modbus",
        "",
        "files:",
    ]
    lines += [f"  {f.file:<20} {f.interface} ({f.where}{', ' + f.filter if f.filter else ''})"
              for f in info.files]
    return "\n".join(lines) + "\n"


# --- running captures ---------------------------------------------------------------------
@dataclass
class RunningCapture:
    """tcpdump processes of one capture; :meth:`stop` ends them (teardown does too)."""

    folder: Path
    info: CaptureInfo
    procs: list[tuple[subprocess.Popen[bytes], CapturedFile]]
    lab: Lab

    @property
    def running(self) -> bool:
        return any(proc.poll() is None for proc, _f in self.procs)

    def status(self) -> list[str]:
        """One line per file: its size so far and whether tcpdump still runs."""
        lines = [f"capture in {self.folder} "
                 f"({'running' if self.running else 'stopped'}; OpenFlow: "
                 f"{self.info.tshark_hint()})"]
        for proc, f in self.procs:
            try:
                size = (self.folder / f.file).stat().st_size
            except OSError:
                size = 0
            state = "" if proc.poll() is None else f" (tcpdump exited {proc.returncode})"
            lines.append(f"  {f.file:<20} {size:>10} bytes  {f.interface}{state}")
        return lines

    def stop(self) -> None:
        for proc, _f in self.procs:
            self.lab.stop(proc)


def _capture_node(lab: Lab, intf: str) -> str:
    """Which Mininet node's namespace has ``intf``: its host, or a switch (root namespace)."""
    owner = intf.rsplit("-eth", 1)[0]
    if owner in (h.name for h in lab.plan.hosts):
        return owner
    return lab.cfg.switch_prefix + owner


def start_capture(lab: Lab, spec: CaptureSpec, folder: Path) -> RunningCapture:
    """Start tcpdump for every part of ``spec`` into ``folder`` (inside the lab's log folder);
    returns once every tcpdump listens. LabError when one does not."""
    folder.mkdir(parents=True, exist_ok=True)
    rel = folder.relative_to(lab.cfg.log_dir)
    prefix = lab.cfg.switch_prefix
    root_node = prefix + lab.plan.switches[0].name  # a switch's shell is in the root namespace
    jobs: list[tuple[str, CapturedFile]] = []
    for name in spec.hosts:
        jobs.append((name, CapturedFile(f"{name}.pcap", f"{name}-eth0", f"host {name}")))
    for intf in spec.switch_ports:
        jobs.append((_capture_node(lab, intf),
                     CapturedFile(f"{intf}.pcap", prefix + intf, "switch port, root namespace")))
    jobs.append((root_node, CapturedFile("openflow.pcap", "lo", "controller channel, root "
                                         "namespace", f"tcp port {lab.ofp_port}")))
    info = CaptureInfo(openflow_port=lab.ofp_port, snaplen_bytes=SNAPLEN_BYTES,
                       files=tuple(f for _n, f in jobs))
    (folder / "decode_as_entries").write_text(decode_as_text(lab.ofp_port))
    (folder / "README.txt").write_text(readme_text(info))
    (folder / "capture.json").write_text(json.dumps(asdict(info), indent=2) + "\n")
    procs = []
    for node, f in jobs:
        # -U: each packet written as it comes, so a capture stopped at any moment is readable.
        args = ["tcpdump", "-n", "-U", "-s", str(SNAPLEN_BYTES), "-i", f.interface,
                "-w", str(folder / f.file)]
        if f.filter:
            args += f.filter.split()
        proc = lab.popen(node, args, str(rel / f"{Path(f.file).stem}.log"), what="tcpdump")
        procs.append((proc, f))
    capture = RunningCapture(folder, info, procs, lab)
    try:
        for proc, f in procs:
            lab.wait_for_log(str(rel / f"{Path(f.file).stem}.log"), "listening on",
                             READY_TIMEOUT_S, proc=proc)
    except LabError:
        capture.stop()
        raise
    return capture


def next_capture_folder(run_dir: Path) -> Path:
    """``run_dir/pcap``, or ``pcap-2``, ``pcap-3``... when taken (one folder per capture)."""
    for n in range(1, 1000):
        path = run_dir / ("pcap" if n == 1 else f"pcap-{n}")
        if not path.exists():
            return path
    raise LabError(f"no free capture folder under {run_dir}")
