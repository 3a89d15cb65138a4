"""Host-side IP hopping (iptables NAT) on the real ICS with the plain ``l2`` controller app.

One lab: the PLCs and the HMI run throughout, ``defenses.nat_hop`` runs inside plc1 and plc2
with one schedule (same seed and start time). Checked as a user would see it: the HMI (which
uses the real addresses) keeps polling; from the attacker the real addresses neither resolve
by ARP nor answer TCP 502, while the current virtual address answers a Modbus read; a
conversation started before a hop goes on after it, while the old address refuses new ones;
the MAC the attacker learns for a virtual address is that address's virtual MAC, never the
PLC's real one, and changes with the hop; the hop log follows the controller defense's
schedule; after SIGTERM the PLC hosts' iptables, nft ruleset, addresses, interfaces, policy
rules, ``arp_ignore`` settings and permanent neighbours are as before.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, IPerror
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from common.hopschedule import MutationConfig, plan_macs, virtual_mac
from common.plan import ics_plan
from defenses.nat_rules import host_events
from experiments.recon_attackers import run_model
from lab.defenses import DefenseSettings, controller_setup, start_defense
from lab.devices import start_ics, stop_hmi
from lab.lifecycle import SWITCH_PREFIX_ENV, Lab, LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine

pytestmark = pytest.mark.integration

HOP_INTERVAL_S = 3.0
SEED = 7
PLCS = ("plc1", "plc2")

# A Modbus read (holding register 0, unit 1) over a plain socket, run inside the attacker:
# prints one JSON line. "hold" keeps the connection open across a hop and reads again.
PROBE = r"""
import json, socket, sys, time
ip, hold_s = sys.argv[1], float(sys.argv[2])
FRAME = bytes.fromhex("000100000006010300000001")
out = {"ip": ip}
try:
    s = socket.create_connection((ip, 502), timeout=1.0)
    s.settimeout(2.0)
    s.sendall(FRAME); out["first"] = s.recv(64)[7]
    if hold_s:
        time.sleep(hold_s)
        s.sendall(FRAME); out["after_hold"] = s.recv(64)[7]
    s.close()
    out["ok"] = True
except OSError as exc:
    out["ok"] = False; out["error"] = type(exc).__name__
print(json.dumps(out))
"""

STATE_CMDS = {
    "iptables": ["iptables-save"],
    "nft": ["nft", "list", "ruleset"],
    "addr": ["ip", "-4", "-o", "addr", "show"],
    "neigh": ["ip", "neigh", "show", "nud", "permanent"],
    "link": ["ip", "-o", "link", "show"],
    "rule": ["ip", "rule", "show"],
    "arp_ignore": ["sh", "-c", "grep -H . /proc/sys/net/ipv4/conf/*/arp_ignore"],
}


def _host_state(lab: Lab, host: str) -> dict[str, str]:
    out = {}
    for key, argv in STATE_CMDS.items():
        text = lab.run(host, argv, timeout_s=10).stdout
        out[key] = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    return out


def _probe(lab: Lab, ip: str, hold_s: float = 0.0) -> dict:
    res = lab.run("attacker", [sys.executable, "-c", PROBE, ip, str(hold_s)],
                  timeout_s=hold_s + 10)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _mac_seen(lab: Lab, ip: str) -> str:
    """The MAC in the attacker's neighbour table for ``ip`` (after a probe resolved it)."""
    fields = lab.run("attacker", ["ip", "neigh", "show", ip], timeout_s=10).stdout.split()
    assert "lladdr" in fields, f"attacker has no MAC for {ip}: {fields}"
    return fields[fields.index("lladdr") + 1]


def _hops(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_nat_hop_on_real_ics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH_PREFIX_ENV, os.environ.get(SWITCH_PREFIX_ENV) or "he")
    plan = ics_plan()
    plan_path = tmp_path / "plan.json"
    plan.save(plan_path)
    cfg = LabConfig(plan=plan, log_dir=tmp_path, engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"), app="l2")
    config = MutationConfig(hop_interval_s=HOP_INTERVAL_S, seed=SEED)
    with running_lab(cfg) as lab:
        ics = start_ics(lab, tmp_path)
        before = {h: _host_state(lab, h) for h in PLCS}
        start_epoch_s = time.time() + 0.5
        procs, logs = {}, {}
        for h in PLCS:
            logs[h] = tmp_path / f"hops-{h}.jsonl"
            procs[h] = lab.python(h, "defenses.nat_hop", [
                "--plan", str(plan_path), "--host", h, "--log", str(logs[h]),
                "--hop-interval-s", str(HOP_INTERVAL_S), "--seed", str(SEED),
                "--start-epoch-s", f"{start_epoch_s:.6f}", "--duration-s", "120",
                "--out", str(tmp_path / f"nat_hop-{h}.json")], f"nat_hop-{h}.log")
        for h in PLCS:
            lab.wait_for_log(f"nat_hop-{h}.log", "nat_hop ready", 20, procs[h])

        # The attacker cannot resolve or reach the real addresses.
        for h in PLCS:
            real = plan.host(h).ip
            ping = lab.run("attacker", ["ping", "-c1", "-W1", real], timeout_s=10)
            assert ping.returncode != 0, f"{h}'s real address answered ping"
            neigh = lab.run("attacker", ["ip", "neigh", "show", real], timeout_s=10).stdout
            assert "lladdr" not in neigh and ("FAILED" in neigh or "INCOMPLETE" in neigh), neigh
            assert not _probe(lab, real)["ok"], f"{h}'s real address answered TCP 502"

        # The current virtual address answers Modbus; a conversation held across a hop goes
        # on, and while it does (its address retiring) that address refuses new ones.
        current = _hops(logs["plc1"])[-1]["new_virtual"]
        assert _probe(lab, current)["ok"]
        first_mac = _mac_seen(lab, current)
        hold_s = 2 * HOP_INTERVAL_S
        holder = lab.popen("attacker", [sys.executable, "-c", PROBE, current, str(hold_s)],
                           "held_probe.log", what="held_probe")
        _wait(lambda: any(r["old_virtual"] == current for r in _hops(logs["plc1"])),
              2 * HOP_INTERVAL_S, "plc1 to hop away from " + current)
        stale = _probe(lab, current)
        assert not stale["ok"], f"old virtual {current} accepted a new connection"
        now_virtual = _hops(logs["plc1"])[-1]["new_virtual"]
        assert now_virtual != current and _probe(lab, now_virtual)["ok"]
        # The MAC the attacker sees for a virtual address: the address's own virtual MAC,
        # never plc1's real one, and a new one after the hop (no following plc1 by its MAC).
        later_mac = _mac_seen(lab, now_virtual)
        avoid = plan_macs(plan)
        assert first_mac == virtual_mac(current, avoid), (current, first_mac)
        assert later_mac == virtual_mac(now_virtual, avoid), (now_virtual, later_mac)
        assert first_mac != later_mac and plan.host("plc1").mac not in (first_mac, later_mac)
        _wait(lambda: holder.poll() is not None, hold_s + 10, "the held conversation")
        lab.stop(holder)
        held = json.loads((tmp_path / "held_probe.log").read_text().strip().splitlines()[-1])
        assert held["ok"] and held["first"] == 3 and held["after_hold"] == 3, held
        hop_away = next(r for r in _hops(logs["plc1"]) if r["old_virtual"] == current)
        assert hop_away["kept_flows"] == 1

        _wait(lambda: all(len(_hops(logs[h])) >= 4 for h in PLCS), 4 * HOP_INTERVAL_S + 10,
              "several hops")
        for h in PLCS:
            assert lab.stop(procs[h]) == 143  # SIGTERM: stopped cleanly, 128 + 15
        metrics = stop_hmi(lab, ics)
        after = {h: _host_state(lab, h) for h in PLCS}

    hops = {h: _hops(logs[h]) for h in PLCS}
    for h in PLCS:
        expected = [e.new_virtual for e in host_events(plan, config, h, 3600)]
        assert [r["new_virtual"] for r in hops[h]] == expected[:len(hops[h])]
        summary = json.loads((tmp_path / f"nat_hop-{h}.json").read_text())
        assert summary["restored"], summary["differences"]
        assert after[h] == before[h]
    latencies = [r["decision_to_rules_ms"] for h in PLCS for r in hops[h]]
    availability = sum(m.polls_ok for m in metrics) / sum(m.polls for m in metrics)
    print(f"\nnat_hop: {sum(map(len, hops.values()))} hops, decision_to_rules_ms "
          f"median {statistics.median(latencies):.1f} max {max(latencies):.1f}; "
          f"kept_flows max {max(r['kept_flows'] for h in PLCS for r in hops[h])}; "
          f"HMI availability {availability:.4f} "
          + " ".join(f"{m.plc}={m.availability:.4f}" for m in metrics))
    assert availability >= 0.99


# --- in a throwaway namespace: the defense alone, SIGKILL and the crash clean-up ----------
def _ns_run(ns: str, argv: list[str], timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def _ns_state(ns: str) -> dict[str, str]:
    out = {}
    for key, argv in STATE_CMDS.items():
        text = _ns_run(ns, argv).stdout
        out[key] = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    return out


@pytest.fixture()
def plc1_namespace() -> Iterator[str]:
    """A network namespace whose only interface carries plc1's address (no traffic leaves)."""
    ns = f"he-nathop-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        for argv in (["ip", "link", "add", "plc1-eth0", "type", "veth", "peer", "name", "peer0"],
                     ["ip", "addr", "add", "10.0.0.21/24", "dev", "plc1-eth0"],
                     ["ip", "link", "set", "plc1-eth0", "up"],
                     ["ip", "link", "set", "peer0", "up"]):
            assert _ns_run(ns, argv).returncode == 0, argv
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


def test_sigkill_leaves_tagged_state_that_cleanup_removes(plc1_namespace: str,
                                                          tmp_path: Path) -> None:
    ns = plc1_namespace
    plan_path = tmp_path / "plan.json"
    ics_plan().save(plan_path)
    before = _ns_state(ns)
    argv = [sys.executable, "-u", "-m", "defenses.nat_hop", "--plan", str(plan_path), "--host",
            "plc1", "--log", str(tmp_path / "hops.jsonl"), "--hop-interval-s", "0.5",
            "--duration-s", "30"]
    log_path = tmp_path / "nat_hop.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=logf,
                                stderr=subprocess.STDOUT)
    try:
        _wait(lambda: len(_hops(tmp_path / "hops.jsonl")) >= 3, 20, "three hops")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    crashed = _ns_state(ns)
    assert "sdnics-nat-hop" in crashed["iptables"] and "sdnics_nat_hop" in crashed["nft"]
    assert "proto 209" in _ns_run(ns, ["ip", "-d", "neigh", "show"]).stdout
    assert "sdnh" in crashed["link"] and "0x5d" in crashed["rule"]
    # A new run refuses to start on an earlier run's state, in one line.
    again = _ns_run(ns, argv[:1] + argv[2:])
    assert again.returncode == 2 and "--cleanup" in again.stderr and again.stderr.count("\n") == 1
    cleaned = _ns_run(ns, [sys.executable, "-m", "defenses.nat_hop", "--cleanup", "--host",
                           "plc1"])
    assert cleaned.returncode == 0, cleaned.stderr
    print(f"\ncleanup: {cleaned.stdout.strip()}")
    after = _ns_state(ns)
    for key in ("addr", "neigh", "link", "rule"):
        assert after[key] == before[key], key
    assert "sdnics" not in after["iptables"] and "sdnics" not in after["nft"]
    # What the crash clean-up cannot do: drop the tables iptables-nft created, now empty.
    assert "-A " not in after["iptables"]


def test_duration_end_restores_the_namespace_exactly(plc1_namespace: str,
                                                     tmp_path: Path) -> None:
    ns = plc1_namespace
    plan_path = tmp_path / "plan.json"
    ics_plan().save(plan_path)
    before = _ns_state(ns)
    done = _ns_run(ns, [sys.executable, "-m", "defenses.nat_hop", "--plan", str(plan_path),
                        "--host", "plc1", "--log", str(tmp_path / "hops.jsonl"),
                        "--hop-interval-s", "0.4", "--duration-s", "2",
                        "--out", str(tmp_path / "summary.json")])
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["restored"] and summary["hops"] >= 3 and not summary["interrupted"]
    assert _ns_state(ns) == before


# --- what nat still shows the attacker (capture) ------------------------------------------
def test_attacker_gets_no_real_plc_address_or_mac_addressed_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``fast`` and ``aware`` attackers under nat, ``tcpdump -Q in`` on the attacker: no
    frame sent *to* the attacker (ARP answers, replies, ICMP errors and their quotes) carries a
    PLC's real MAC or IP, and every frame from a virtual address carries that address's own
    virtual MAC (a conversation held across hops too). Printed, not asserted: what the
    attacker still sees in broadcast and flooded frames (trusted traffic the plain learning
    switch floods; docs/attacks-defenses.md quotes it)."""
    monkeypatch.setenv(SWITCH_PREFIX_ENV, os.environ.get(SWITCH_PREFIX_ENV) or "he")
    plan = ics_plan()
    assert plan.attacker is not None
    plan_path = tmp_path / "plan.json"
    plan.save(plan_path)
    settings = DefenseSettings("nat", hop_interval_s=2.0, seed=5)
    app, cargs, hop_logs = controller_setup(settings, plan_path, tmp_path)
    cfg = LabConfig(plan=plan, log_dir=tmp_path, engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"), app=app, controller_args=cargs)
    pcap = tmp_path / "attacker_in.pcap"
    iface = f"{plan.attacker.name}-eth0"
    with running_lab(cfg) as lab:
        ics = start_ics(lab, tmp_path)
        lab.popen(plan.attacker.name, ["tcpdump", "-n", "-U", "-Q", "in", "-s", "0", "-i", iface,
                                       "-w", str(pcap)], "tcpdump_attacker.log", what="tcpdump")
        lab.wait_for_log("tcpdump_attacker.log", "listening on", 10)
        start_defense(lab, settings, plan_path, tmp_path, hop_logs)
        for attacker in ("fast", "aware"):
            run_model(lab, attacker, plan_path, tmp_path, {"hop_interval_s": 2.0}, 0.0)
        stop_hmi(lab, ics)
    real = {h.ip for h in plan.protected} | {h.mac for h in plan.protected}
    pool, avoid = set(plan.virtual_pool), plan_macs(plan)
    to_attacker, seen, wrong_mac, from_pool = [], Counter(), [], 0
    for pkt in rdpcap(str(pcap)):
        if Ether in pkt and IP in pkt and pkt[IP].src in pool:
            # Every frame from a virtual address, a held conversation's after its address
            # retired included, carries that address's own MAC: never the next one's.
            from_pool += 1
            if pkt[Ether].src != virtual_mac(pkt[IP].src, avoid):
                wrong_mac.append(pkt.summary())
        fields = {pkt[Ether].src, pkt[Ether].dst} if Ether in pkt else set()
        for layer, names in ((ARP, ("psrc", "pdst", "hwsrc")), (IP, ("src", "dst")),
                             (IPerror, ("src", "dst"))):
            if layer in pkt:
                fields |= {getattr(pkt[layer], n) for n in names}
        if not fields & real:
            continue
        dst = pkt[Ether].dst if Ether in pkt else ""
        if dst == plan.attacker.mac:
            to_attacker.append(pkt.summary())
        kind = "ARP" if ARP in pkt else "IPv4" if IP in pkt else "other (IPv6)"
        to = ("broadcast" if dst == "ff:ff:ff:ff:ff:ff"
              else "multicast" if dst and int(dst[:2], 16) & 1 else "another host")
        seen[f"{kind} to {to}"] += 1
    print(f"\nnat: {from_pool} frames from virtual addresses, each with its own MAC; real PLC "
          f"address or MAC in frames the attacker received (not to it): "
          f"{dict(seen)}")
    assert not to_attacker, to_attacker[:5]
    assert from_pool > 0 and not wrong_mac, (from_pool, wrong_mac[:5])
