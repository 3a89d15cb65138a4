"""The recon stage plan and its records: what a run knows, how a stage is timed and recorded.

Both engines (:mod:`attacks.recon_nmap`, :mod:`attacks.recon_scapy`) run their stages inside
:func:`stage`, against one :class:`ReconRun`, which also picks the hosts and ports of the later
stages from what the earlier ones found; the outcome records (:class:`ReconOutcome`,
:class:`StageRecord`) are what ``python -m attacks.recon`` writes as JSON.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attacks.recon_parse import Findings, local_ipv4_interfaces
from common.hostenv import AttackContext, AttackInterrupted, AttackOutcome, utc_now_iso
from common.modbus import MODBUS_PORT
from common.s7 import S7_PORT
from common.scope import ScopeError

log = logging.getLogger(__name__)

STAGES = ("discovery", "syn", "connect", "version", "modbus", "s7")
DEFAULT_STAGES = ("discovery", "syn", "modbus", "s7")
# Below this much budget a stage is skipped rather than started and cut short.
MIN_STAGE_BUDGET_S = 1.0


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

    def version_targets(self) -> tuple[list[str], list[int]]:
        """Hosts and ports for version detection: the open ones, or all ports when none known."""
        port_stages = {"syn", "connect"} & set(self.args.stages)
        hosts = self.live_hosts()
        if not port_stages:
            return hosts, list(self.args.ports)
        hosts = [h for h in hosts if self.findings.open_ports(h)]
        ports = sorted({p for h in hosts for p in self.findings.open_ports(h)})
        return hosts, ports

    def modbus_targets(self) -> list[str]:
        """Hosts to ask for Modbus: with 502 open, or every live host when no port scan ran."""
        port_stages = {"syn", "connect", "version"} & set(self.args.stages)
        hosts = self.live_hosts()
        if not port_stages:
            return hosts
        return [h for h in hosts if MODBUS_PORT in self.findings.open_ports(h)]

    def s7_targets(self) -> list[str]:
        """Hosts to ask for S7comm: with 102 open, or every live host when no port scan ran."""
        if not {"syn", "connect", "version"} & set(self.args.stages):
            return self.live_hosts()
        return [h for h in self.live_hosts() if S7_PORT in self.findings.open_ports(h)]


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


def skip(record: StageRecord, note: str) -> None:
    """Mark a stage skipped (nothing to probe), saying why."""
    record.status = "skipped"
    record.note = note
    log.info("stage %s: skipped: %s", record.name, note)


class Engine:
    """A way to run the stages; subclasses implement ``stage_<name>`` for each they support."""

    name = ""

    def __init__(self, run: ReconRun) -> None:
        self.run = run

    def version(self) -> str:
        return ""

    def stage_fn(self, name: str) -> Callable[[StageRecord], None]:
        return getattr(self, f"stage_{name}")
