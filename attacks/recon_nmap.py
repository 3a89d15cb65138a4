"""The recon stages run by the nmap binary, parsed from its XML (attacks.recon_parse).

- ``discovery``: ``-sn -n``; ``syn``: ``-sS -n -Pn``; ``connect``: ``-sT``;
- ``version``: ``-sV``, bounded by ``--host-timeout``;
- ``modbus``: the ``modbus-discover`` script on 502/tcp, bounded by ``--script-timeout`` and
  ``--host-timeout``;
- ``s7``: the ``s7-info`` script on 102/tcp (S7comm: module, firmware, system name), bounded
  the same way.

Every run has ``--packet-trace``: its stdout (saved as ``nmap_<stage>.trace.txt``) times each
answer, so a finding is timed at the moment the host answered, not at the end of its stage
(:func:`attacks.recon_parse.parse_packet_trace`); the XML goes to a file.

nmap is started with ``subprocess``, not through python-nmap (no longer a dependency):
python-nmap keeps the child process private, so a SIGTERM during its scan would leave nmap
running in the namespace. Here the child is always terminated in a ``finally``.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Sequence

from attacks.recon_parse import ReplyTimes, parse_nmap_xml, parse_packet_trace
from attacks.recon_run import MIN_STAGE_BUDGET_S, Engine, ReconRun, StageRecord, StageTimeout, skip
from common.modbus import MODBUS_PORT
from common.s7 import S7_PORT

log = logging.getLogger(__name__)

NMAP_KILL_GRACE_S = 5.0


class NmapEngine(Engine):
    """Stages through the nmap binary (see the module docstring)."""

    name = "nmap"

    def __init__(self, run: ReconRun) -> None:
        super().__init__(run)
        self.nmap_path = shutil.which("nmap")
        if self.nmap_path is None:
            raise RuntimeError("nmap not found on PATH (apt-get install nmap)")

    def version(self) -> str:
        """``nmap 7.93``, from ``nmap --version`` (the first line names it)."""
        try:
            res = subprocess.run([self.nmap_path or "nmap", "--version"], capture_output=True,
                                 text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"nmap (version unknown: {exc})"
        match = re.search(r"Nmap version (\S+)", res.stdout)
        return f"nmap {match.group(1)}" if match else "nmap (version unknown)"

    def _nmap(self, record: StageRecord, hosts: Sequence[str], options: list[str]) -> None:
        """Run nmap on ``hosts`` with ``options``, save its XML, merge what it found."""
        self.run.check_targets(hosts)
        budget_s = self.run.stage_budget_s()
        if budget_s < MIN_STAGE_BUDGET_S:
            raise StageTimeout(f"time budget exhausted before the stage ({budget_s:.1f} s)")
        target_file = self.run.work_dir / f"targets_{record.name}.txt"
        target_file.write_text("\n".join(hosts) + "\n")
        xml_file = self.run.work_dir / f"nmap_{record.name}.xml"
        xml_file.unlink(missing_ok=True)
        command = [self.nmap_path or "nmap", "-oX", str(xml_file), "--packet-trace", *options,
                   "-iL", str(target_file)]
        record.command = command
        record.targets = len(hosts)
        log.debug("running %s", " ".join(command))
        # The trace's times count from nmap's start; this is that start, a few ms early.
        nmap_start_s = self.run.ctx.elapsed_s()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        timed_out = False
        try:
            try:
                trace_text, err_text = proc.communicate(timeout=budget_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.terminate()
                trace_text, err_text = proc.communicate(timeout=NMAP_KILL_GRACE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        xml_text = xml_file.read_text() if xml_file.exists() else ""
        record.raw_file = self.run.save_raw(record.name, "xml", xml_text)
        self.run.save_raw(record.name, "trace.txt", trace_text)
        if timed_out:
            raise StageTimeout(f"nmap ran over the stage budget of {budget_s:.1f} s")
        if proc.returncode != 0:
            raise RuntimeError(f"nmap exited {proc.returncode}: "
                               f"{err_text.strip().splitlines()[-1:] or ''}")
        parsed = parse_nmap_xml(xml_text)
        at_s = self.run.ctx.elapsed_s()
        record.hosts_up = sum(1 for h in parsed.hosts if h.is_alive and not h.is_self
                              and self.run.findings.accepts(h.address))
        replies = ReplyTimes.from_trace(parse_packet_trace(trace_text), nmap_start_s)
        self.run.findings.merge_nmap(parsed, at_s, record.name, replies)

    def stage_discovery(self, record: StageRecord) -> None:
        self._nmap(record, self.run.ctx.targets, ["-sn", "-n"])

    def _port_scan(self, record: StageRecord, scan_type: str) -> None:
        hosts = self.run.live_hosts()
        if not hosts:
            return skip(record, "no live hosts")
        record.ports = list(self.run.args.ports)
        self._nmap(record, hosts, [scan_type, "-n", "-Pn", "-p",
                                   ",".join(map(str, self.run.args.ports))])

    def stage_syn(self, record: StageRecord) -> None:
        self._port_scan(record, "-sS")

    def stage_connect(self, record: StageRecord) -> None:
        self._port_scan(record, "-sT")

    def stage_version(self, record: StageRecord) -> None:
        hosts, ports = self.run.version_targets()
        if not hosts:
            return skip(record, "no live hosts with open ports")
        record.ports = ports
        host_timeout_s = nmap_bound_s(self.run.stage_budget_s())
        self._nmap(record, hosts, ["-sV", "-n", "-Pn", "--host-timeout", f"{host_timeout_s}s",
                                   "-p", ",".join(map(str, ports))])

    def stage_modbus(self, record: StageRecord) -> None:
        self._script_stage(record, self.run.modbus_targets(), MODBUS_PORT, "modbus-discover")

    def stage_s7(self, record: StageRecord) -> None:
        self._script_stage(record, self.run.s7_targets(), S7_PORT, "s7-info")

    def _script_stage(self, record: StageRecord, hosts: list[str], port: int,
                      script: str) -> None:
        """One NSE script against one port of the hosts found listening there; the script
        gets half of nmap's per-host bound so a silent device cannot use up the stage."""
        if not hosts:
            return skip(record, f"no live host with {port}/tcp open")
        record.ports = [port]
        host_timeout_s = nmap_bound_s(self.run.stage_budget_s())
        self._nmap(record, hosts, ["-sT", "-n", "-Pn", "-p", str(port), "--script", script,
                                   "--script-timeout", f"{max(1, host_timeout_s // 2)}s",
                                   "--host-timeout", f"{host_timeout_s}s"])


def nmap_bound_s(budget_s: float) -> int:
    """nmap's own --host-timeout for a stage: short enough that nmap ends before we kill it."""
    return max(1, int(budget_s * 0.8))
