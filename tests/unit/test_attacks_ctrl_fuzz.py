"""The controller barrage's frames (pure): every kind, in scope, fresh MACs, deterministic."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections import Counter
from pathlib import Path

from attacks.ctrl_fuzz import ETH_MAX_FRAME, KINDS, hostile_frames
from common.plan import ics_plan
from controllers.l2_switch_core import LearningSwitchCore

REPO = Path(__file__).resolve().parents[2]
TARGETS = [h.ip for h in ics_plan().hosts]


def test_every_kind_and_deterministic() -> None:
    a = list(hostile_frames(7, TARGETS, 1400))
    b = list(hostile_frames(7, TARGETS, 1400))
    assert a == b
    assert Counter(k for k, _ in a) == {k: 100 for k in KINDS}
    assert list(hostile_frames(8, TARGETS, 50)) != a[:50]


def test_frames_fit_the_link_and_use_fresh_unicast_sources() -> None:
    plan_macs = {bytes.fromhex(h.mac.replace(":", "")) for h in ics_plan().hosts}
    sources = set()
    for kind, frame in hostile_frames(3, TARGETS, 2800):
        assert 1 <= len(frame) <= ETH_MAX_FRAME, kind
        if len(frame) >= 12:
            src = frame[6:12]
            assert not src[0] & 1 and src[0] & 2  # unicast, locally administered
            assert src not in plan_macs
            sources.add(src)
    assert len(sources) > 2700  # (nearly) every frame misses the flow table


def test_ipv4_addresses_stay_in_scope() -> None:
    net = ipaddress.IPv4Network(ics_plan().subnet)
    for kind, frame in hostile_frames(5, TARGETS, 1400):
        if len(frame) >= 34 and frame[12:14] == b"\x08\x00" and kind != "truncated_ipv4":
            src, dst = frame[26:30], frame[30:34]
            assert ipaddress.IPv4Address(src) in net, kind
            assert ipaddress.IPv4Address(dst) in net, kind


def test_the_learning_core_counts_instead_of_raising() -> None:
    core = LearningSwitchCore()
    core.switch_connected(1)
    for i, (_kind, frame) in enumerate(hostile_frames(11, TARGETS, 2800)):
        core.packet_in(dpid=1, in_port=1 + i % 4, frame=frame, now_s=i * 0.001)
    stats = core.stats
    assert stats.packet_ins == 2800
    assert stats.parse_errors > 0  # the truncated Ethernet frames


def test_refuses_out_of_scope_and_root_namespace(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    ics_plan().save(plan)
    for targets in ("8.8.8.8", "10.0.0.0/8"):
        res = subprocess.run([sys.executable, "-m", "attacks.ctrl_fuzz", "--plan", str(plan),
                              "--targets", targets, "--out", str(tmp_path / "o.json")],
                             cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    res = subprocess.run([sys.executable, "-m", "attacks.ctrl_fuzz", "--plan", str(plan),
                          "--targets", "10.0.0.0/24", "--out", str(tmp_path / "o.json")],
                         cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 2 and "root network namespace" in res.stderr
    assert not (tmp_path / "o.json").exists()
