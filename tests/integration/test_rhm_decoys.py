"""rhm's decoy responders on the real ics network, and what they cost the controller.

Two labs, one after the other (about 20 s each): rhm without decoys, then with
:data:`DECOYS`. In each, the attacker sweeps the virtual pool with ``nmap -sn -n`` (ARP ping:
what a sweep inside the subnet sends) and pings every address it found. Checked: with decoys
the sweep finds N + 2 responders, of which only the 2 PLCs' current addresses are PLCs; every
responder answers ping with the MAC its ARP answer gave; without decoys only the 2 PLCs
answer. Printed: the cost with vs without (controller CPU seconds, packet-ins, the switches'
flow-table size after the sweeps), the figures docs/attacks-defenses.md quotes.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from common.hopschedule import plan_macs, virtual_mac
from common.plan import ics_plan
from lab.defenses import DefenseSettings, controller_setup, rhm_hop_log, start_defense
from lab.devices import start_ics
from lab.lifecycle import SWITCH_PREFIX_ENV, Lab, LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine

pytestmark = pytest.mark.integration

DECOYS = 8
SWEEPS = 3
HOP_INTERVAL_S = 120.0  # no hop during the sweeps: the set a sweep meets is one draw


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _flows(lab: Lab) -> int:
    assert lab.net is not None
    return sum(len(subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", s.name],
                                  capture_output=True, text=True, timeout=10,
                                  check=True).stdout.splitlines()) - 1
               for s in lab.net.switches)


def _sweep_and_ping(lab: Lab, pool: str) -> tuple[dict[str, str], set[str]]:
    """(address -> MAC of each responder of an nmap ARP sweep, addresses that answer ping)."""
    out = lab.run("attacker", ["nmap", "-sn", "-n", pool], timeout_s=60).stdout
    found = dict(re.findall(r"Nmap scan report for (\S+)\nHost is up.*\nMAC Address: (\S+)",
                            out))
    pinged = {a for a in found
              if lab.run("attacker", ["ping", "-c1", "-W1", a], timeout_s=10).returncode == 0}
    return {a: m.lower() for a, m in found.items()}, pinged


def _run(tmp: Path, decoys: int) -> dict:
    plan = ics_plan()
    plan_path = tmp / "plan.json"
    plan.save(plan_path)
    settings = DefenseSettings("rhm", hop_interval_s=HOP_INTERVAL_S, seed=4, decoys=decoys)
    app, cargs, hop_logs = controller_setup(settings, plan_path, tmp)
    cfg = LabConfig(plan=plan, log_dir=tmp, engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"), app=app, controller_args=cargs)
    pool = f"{plan.virtual_pool[0]}-{plan.virtual_pool[-1].rsplit('.', 1)[1]}"
    with running_lab(cfg) as lab:
        start_ics(lab, tmp)
        running = start_defense(lab, settings, plan_path, tmp, hop_logs)
        assert lab.controller is not None
        cpu0, flows0 = _cpu_s(lab.controller.pid), _flows(lab)
        sweeps = [_sweep_and_ping(lab, pool) for _ in range(SWEEPS)]
        cpu_s, flows = _cpu_s(lab.controller.pid) - cpu0, _flows(lab)
        current = {r.new_virtual for r in running.hops()}
        lab.check_healthy()
    text = (tmp / "controller.log").read_text()
    stats = [m for m in re.findall(r"controller stats app=\S+ (\{.*\})", text)]
    drawn = re.findall(r"decoys draw=\d+ addresses=(\S+)", text)
    assert rhm_hop_log(tmp).exists()
    return {"sweeps": sweeps, "cpu_s": cpu_s, "flows_before": flows0, "flows": flows,
            "current": current, "stats": stats, "decoys": set(drawn[-1].split(",")) if drawn
            else set(), "plan": plan}


def test_decoys_answer_sweeps_and_pings_like_hosts(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH_PREFIX_ENV, os.environ.get(SWITCH_PREFIX_ENV) or "dc")
    runs = {}
    for n in (0, DECOYS):
        folder = tmp_path / f"decoys{n}"
        folder.mkdir()
        runs[n] = _run(folder, n)
    plain, decoyed = runs[0], runs[DECOYS]
    avoid = plan_macs(decoyed["plan"])
    assert len(decoyed["decoys"]) == DECOYS and not decoyed["decoys"] & decoyed["current"]
    for found, pinged in decoyed["sweeps"]:
        assert set(found) == decoyed["current"] | decoyed["decoys"], found
        assert pinged == set(found)
        assert all(mac == virtual_mac(a, avoid) for a, mac in found.items())
    for found, pinged in plain["sweeps"]:
        assert set(found) == plain["current"] == pinged
    print(f"\ndecoys cost ({SWEEPS} pool sweeps + a ping per responder):")
    for n, run in runs.items():
        print(f"  decoys={n}: controller cpu {run['cpu_s']:.2f} s, flows {run['flows_before']} -> "
              f"{run['flows']}, responders {len(run['sweeps'][0][0])}, stats {run['stats']}")
