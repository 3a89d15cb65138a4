"""The attacker models on the real network, success read from the PLCs' own request logs.

Two short recon runs through the CLI (one network build each): the ``fast`` attacker against
no defense, and the ``aware`` attacker against ``rhm``, whose source-port-reuse tactic no longer
reaches a PLC: before the hardening (issue 15) a conversation was a bare 5-tuple, so a new
connection from the scan's source port to the scan's retired address was still rewritten to the
PLC; now a retired address's conversations are checked by the controller and a new SYN on them
is dropped (tests/integration/test_defense_hardening.py checks every tactic).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from attacks.attacker_aware import FIXED_PORT_BASE, MAX_TARGETS
from common import requestlog
from common.plan import ics_plan

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ATTACKER_IP = ics_plan().attacker.ip  # type: ignore[union-attr]


def _recon(out: Path, defense: str, attacker: str) -> Path:
    res = subprocess.run([sys.executable, "-m", "experiments.run", "recon", "--quick",
                          "--trials", "1", "--defense", defense, "--attacker", attacker,
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=240, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return (out / "recon" / "latest").resolve()


def _outcomes(bundle: Path) -> dict[str, dict[str, str]]:
    with open(bundle / "attack_outcomes.csv", newline="") as f:
        return {row["tactic"]: row for row in csv.DictReader(f)}


def _answered_from_attacker(raw: Path, ports: set[int] | None = None) -> set[str]:
    """PLCs whose own log shows an answered request from the attacker (optionally from
    one of ``ports``)."""
    logs = [requestlog.log_path(raw, p) for p in ("plc1", "plc2")]
    return {r.plc for r in requestlog.read(logs) if r.answered and r.client_ip == ATTACKER_IP
            and (ports is None or r.client_port in ports)}


def test_fast_attacker_reaches_both_plcs_without_defense(tmp_path: Path) -> None:
    bundle = _recon(tmp_path, "none", "fast")
    raw = bundle / "raw" / "trial-001" / "none+fast"
    assert _answered_from_attacker(raw) == {"plc1", "plc2"}
    row = _outcomes(bundle)["all"]
    assert row["outcome"] == "reached" and row["plcs_reached"] == "plc1 plc2"
    with open(bundle / "attack_attempts.csv", newline="") as f:
        delays = [float(r["reply_to_reach_ms"]) for r in csv.DictReader(f)
                  if r["reply_to_reach_ms"]]
    print(f"fast vs none: reply-to-reach {sorted(delays)} ms")
    assert len(delays) == 2 and max(delays) < 1000


def test_aware_port_reuse_against_rhm_fails(tmp_path: Path) -> None:
    bundle = _recon(tmp_path, "rhm", "aware")
    rows = _outcomes(bundle)
    print({t: r["outcome"] for t, r in rows.items()})
    with open(bundle / "attack_attempts.csv", newline="") as f:
        reuse = [r for r in csv.DictReader(f) if r["tactic"] == "port_reuse"]
    assert reuse, "the scan found no address with 502 open: the premise failed"
    assert rows["port_reuse"]["outcome"] != "reached"
    assert not any(r["reached_plc"] for r in reuse)
    raw = bundle / "raw" / "trial-001" / "rhm+aware"
    ports = set(range(FIXED_PORT_BASE, FIXED_PORT_BASE + MAX_TARGETS))  # its fixed scan ports
    assert not _answered_from_attacker(raw, ports), "a PLC answered a reused source port"
