"""MITM and IP hopping on the real default ICS (Mininet + OVS + controller + PLCs + HMI).

One lab for the module: the PLCs and the HMI run throughout; each test starts its attack in
the attacker host and checks both the attacker's outcome and what the victims or targets
really saw (``ip neigh`` inside the HMI and plc1, the HMI's CSV against the PLC's ground
truth, a capture inside plc1). The lab's bridges take ``SDNICS_SWITCH_PREFIX`` (``hb`` in a
shared development machine) so the test never touches another lab's switches.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.groundtruth import read_ground_truth_file
from common.plan import AddressPlan, ics_plan
from lab.devices import Ics, start_ics, stop_hmi
from lab.lifecycle import SWITCH_PREFIX_ENV, Lab, LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine

pytestmark = pytest.mark.integration

TAMPER_RAW = 1999  # level 199.9 cm: above the rim's high-high alarm, never reached here


@dataclass
class IcsLab:
    lab: Lab
    ics: Ics
    plan: AddressPlan
    plan_path: Path
    raw: Path


@pytest.fixture(scope="module")
def ics_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IcsLab]:
    raw = tmp_path_factory.mktemp("mitm_iphop")
    with pytest.MonkeyPatch.context() as mp:
        # Own bridge names (hbs1, hbs2) unless the caller chose a prefix: never another lab's.
        mp.setenv(SWITCH_PREFIX_ENV, os.environ.get(SWITCH_PREFIX_ENV) or "hb")
        yield from _ics_lab(raw)


def _ics_lab(raw: Path) -> Iterator[IcsLab]:
    plan = ics_plan()
    plan_path = raw / "plan.json"
    plan.save(plan_path)
    cfg = LabConfig(plan=plan, log_dir=raw, engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"))
    with running_lab(cfg) as lab:
        ics = start_ics(lab, raw)
        _wait_hmi_reads(ics, 20)
        yield IcsLab(lab, ics, plan, plan_path, raw)
        stop_hmi(lab, ics)


def _hmi_rows(ics: Ics) -> list[dict[str, str]]:
    assert ics.hmi_csv is not None
    with open(ics.hmi_csv, newline="") as f:
        return list(csv.DictReader(f))


def _wait_hmi_reads(ics: Ics, n_reads: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ics.hmi_csv is not None and ics.hmi_csv.exists():
            ok = [r for r in _hmi_rows(ics) if r["plc"] == "plc1" and r["outcome"] == "ok"]
            if len(ok) >= n_reads:
                return
        time.sleep(0.2)
    raise AssertionError("the HMI never read plc1")


def _neigh(lab: Lab, host: str, ip: str) -> str | None:
    """The MAC ``host`` maps ``ip`` to (``ip -j neigh``), None when it has no entry."""
    done = lab.run(host, ["ip", "-j", "neigh", "show", ip], timeout_s=10)
    entries = json.loads(done.stdout or "[]")
    return entries[0].get("lladdr") if entries else None


def _state(lab: Lab, host: str) -> tuple[str, str, str]:
    """(iptables-save -t nat, iptables-save -t filter, ip addr) inside ``host``."""
    nat = lab.run(host, ["iptables-save", "-t", "nat"], timeout_s=10).stdout
    flt = lab.run(host, ["iptables-save", "-t", "filter"], timeout_s=10).stdout
    addr = lab.run(host, ["ip", "-4", "-o", "addr", "show"], timeout_s=10).stdout

    def strip(text: str) -> str:
        return "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))

    return strip(nat), strip(flt), addr


def _run_attack(env: IcsLab, module: str, args: list[str], log_name: str,
                timeout_s: float) -> tuple[int, dict]:
    out = env.raw / f"{log_name}.json"
    proc = env.lab.python("attacker", module, ["--plan", str(env.plan_path), "--out", str(out),
                                               *args], f"{log_name}.log")
    try:
        code = proc.wait(timeout=timeout_s)
    finally:
        env.lab.stop(proc)
    log_text = (env.raw / f"{log_name}.log").read_text(errors="replace")
    assert out.exists(), log_text
    return code, json.loads(out.read_text())


def test_mitm_sees_modbus_and_restores_caches(ics_lab: IcsLab) -> None:
    env, plan = ics_lab, ics_lab.plan
    hmi, plc1, attacker = plan.host("hmi"), plan.host("plc1"), plan.host("attacker")
    before = _state(env.lab, "attacker")
    code, outcome = _run_attack(env, "attacks.mitm", [
        "--targets", f"{hmi.ip},{plc1.ip}", "--duration-s", "5", "--poison-interval-s", "0.5"],
        "mitm", timeout_s=60)
    print(f"mitm: first intercept {outcome['first_intercept_s']} s, "
          f"{outcome['exchange_count']} exchanges, frames {outcome['intercepted_frames']}, "
          f"restore {outcome['restore']}")
    assert code == 0, outcome["errors"]
    assert outcome["exchange_count"] >= 10
    functions = {e["function_name"] for e in outcome["exchanges"]}
    assert {"read_input_registers", "read_holding_registers"} <= functions
    level_reads = [e for e in outcome["exchanges"] if e["function"] == 4 and e["count"] == 6]
    assert level_reads and all(e["server"] == f"{plc1.ip}:502" for e in level_reads)
    assert all(e["latency_ms"] is not None and e["latency_ms"] >= 0 for e in level_reads)
    assert outcome["intercepted_frames"].get("hmi->plc1", 0) > 0
    assert outcome["intercepted_frames"].get("plc1->hmi", 0) > 0
    assert outcome["restore"]["verified"] and outcome["host_restored"]
    # The victims' own caches: each maps the other's IP to the true MAC again.
    assert _neigh(env.lab, "hmi", plc1.ip) == plc1.mac
    assert _neigh(env.lab, "plc1", hmi.ip) == hmi.mac
    assert _neigh(env.lab, "hmi", plc1.ip) != attacker.mac
    assert _state(env.lab, "attacker") == before
    assert env.lab.run("attacker", ["cat", "/proc/sys/net/ipv4/ip_forward"],
                       timeout_s=10).stdout.strip() == "0"


def test_mitm_tamper_shows_the_hmi_a_false_level(ics_lab: IcsLab) -> None:
    env, plan = ics_lab, ics_lab.plan
    hmi, plc1 = plan.host("hmi"), plan.host("plc1")
    before = _state(env.lab, "attacker")
    t_start = time.monotonic()
    code, outcome = _run_attack(env, "attacks.mitm", [
        "--targets", f"{hmi.ip},{plc1.ip}", "--duration-s", "5", "--poison-interval-s", "0.5",
        "--tamper", f"level={TAMPER_RAW}"], "mitm_tamper", timeout_s=60)
    print(f"tamper: {outcome['tamper']}, forwarded by scapy {outcome['forwarded_by_scapy']}, "
          f"in {time.monotonic() - t_start:.1f} s")
    assert code == 0, outcome["errors"]
    assert outcome["tamper"]["responses_rewritten"] > 0
    tampered = [e for e in outcome["exchanges"] if e["tampered_values"]]
    assert tampered and all(e["tampered_values"][2] == TAMPER_RAW for e in tampered)
    assert all(e["values"][2] != TAMPER_RAW for e in tampered)  # what the PLC really said
    # The HMI recorded the false level; the PLC's ground truth never had it.
    shown = [r["values"].split() for r in _hmi_rows(env.ics)
             if r["plc"] == "plc1" and r["function"] == "read_input_registers"
             and r["count"] == "6" and r["outcome"] == "ok"]
    assert any(int(v[2]) == TAMPER_RAW for v in shown)
    state_csv = next(p.state_csv for p in env.ics.plcs if p.name == "plc1")
    levels_cm = [r["level_cm"] for r in read_ground_truth_file(state_csv)]
    assert levels_cm and max(levels_cm) < TAMPER_RAW / 10
    # And afterwards the HMI sees the truth again, through the true MAC.
    assert outcome["restore"]["verified"] and outcome["host_restored"]
    assert _neigh(env.lab, "hmi", plc1.ip) == plc1.mac
    assert _neigh(env.lab, "plc1", hmi.ip) == hmi.mac
    n_rows = len(_hmi_rows(env.ics))
    _wait_hmi_reads(env.ics, 1)
    time.sleep(1.0)
    later = [r["values"].split() for r in _hmi_rows(env.ics)[n_rows:]
             if r["plc"] == "plc1" and r["function"] == "read_input_registers"
             and r["count"] == "6" and r["outcome"] == "ok"]
    assert later and all(int(v[2]) != TAMPER_RAW for v in later)
    assert _state(env.lab, "attacker") == before


def test_mitm_sigterm_still_restores(ics_lab: IcsLab) -> None:
    env, plan = ics_lab, ics_lab.plan
    hmi, plc1 = plan.host("hmi"), plan.host("plc1")
    before = _state(env.lab, "attacker")
    out = env.raw / "mitm_term.json"
    proc = env.lab.python("attacker", "attacks.mitm", [
        "--plan", str(env.plan_path), "--out", str(out), "--targets", f"{hmi.ip},{plc1.ip}",
        "--duration-s", "60", "--tamper", f"ir:2={TAMPER_RAW}"], "mitm_term.log")
    try:
        deadline = time.monotonic() + 20
        log_path = env.raw / "mitm_term.log"
        while "poisoning" not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
            time.sleep(0.1)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        env.lab.stop(proc)
    outcome = json.loads(out.read_text())
    assert code == 128 + signal.SIGTERM and outcome["interrupted"]
    assert outcome["exchange_count"] > 0
    assert outcome["restore"]["verified"] and outcome["host_restored"]
    assert _neigh(env.lab, "hmi", plc1.ip) == plc1.mac
    assert _state(env.lab, "attacker") == before


def test_iphop_probes_come_from_several_sources(ics_lab: IcsLab) -> None:
    env, plan = ics_lab, ics_lab.plan
    plc1 = plan.host("plc1")
    before = _state(env.lab, "attacker")
    pcap = env.raw / "plc1_syns.pcap"
    capture = env.lab.popen("plc1", [
        "tcpdump", "-n", "-U", "-i", "plc1-eth0", "-c", "500", "-w", str(pcap),
        f"dst host {plc1.ip} and tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack = 0"],
        "tcpdump_plc1.log", what="tcpdump")
    try:
        env.lab.wait_for_log("tcpdump_plc1.log", "listening on", 10, capture)
        code, outcome = _run_attack(env, "attacks.iphop", [
            "--targets", plc1.ip, "--ports", "502,80", "--hop-interval-s", "0.5",
            "--duration-s", "3", "--probe-interval-s", "0.1", "--seed", "7"],
            "iphop", timeout_s=60)
        time.sleep(0.5)
    finally:
        env.lab.stop(capture)
    print(f"iphop: {outcome['probe_count']} probes, states {outcome['states']}, sources "
          f"{outcome['sources_used']}")
    assert code == 0, outcome["errors"]
    assert len(outcome["sources_used"]) >= 2
    assert set(outcome["sources_used"]) <= set(outcome["pool"])
    assert outcome["states"].get("open", 0) > 0 and outcome["states"].get("closed", 0) > 0
    # Target side: the SYNs really came from the hopped addresses, never the real one.
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    seen = {p[IP].src for p in rdpcap(str(pcap)) if p.haslayer(IP)}
    assert len(seen) >= 2
    assert seen <= set(outcome["sources_used"])
    assert plan.host("attacker").ip not in seen
    assert outcome["host_restored"]
    assert _state(env.lab, "attacker") == before



def test_iphop_sigterm_still_restores(ics_lab: IcsLab) -> None:
    env, plan = ics_lab, ics_lab.plan
    before = _state(env.lab, "attacker")
    out = env.raw / "iphop_term.json"
    proc = env.lab.python("attacker", "attacks.iphop", [
        "--plan", str(env.plan_path), "--out", str(out), "--targets", plan.host("plc2").ip,
        "--hop-interval-s", "0.3", "--duration-s", "60"], "iphop_term.log")
    try:
        env.lab.wait_for_log("iphop_term.log", "hop 2:", 20, proc)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        env.lab.stop(proc)
    outcome = json.loads(out.read_text())
    assert code == 128 + signal.SIGTERM and outcome["interrupted"]
    assert len(outcome["hops_applied"]) >= 3 and outcome["host_restored"]
    assert _state(env.lab, "attacker") == before
