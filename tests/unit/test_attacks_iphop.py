"""IP hopping: the seeded schedule, the pool taken from the plan, the CLI's refusals."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from attacks.iphop import (
    check_pool,
    default_pool,
    free_addresses,
    hop_at,
    hop_schedule,
    probe_pairs,
    snat_rule,
)
from common.errors import UserError
from common.plan import ics_plan, star_plan
from common.scope import ScopeError

REPO = Path(__file__).resolve().parents[2]
POOL = ("10.0.0.200", "10.0.0.201", "10.0.0.202", "10.0.0.203")


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    a = hop_schedule(POOL, 7, 2.0, 60.0)
    assert a == hop_schedule(POOL, 7, 2.0, 60.0)
    assert [h.address for h in a] != [h.address for h in hop_schedule(POOL, 8, 2.0, 60.0)]


def test_schedule_is_pinned_across_python_versions() -> None:
    # SHA-256 based: the sequence a paper reports for seed 1 must never change.
    addresses = [h.address for h in hop_schedule(POOL, 1, 1.0, 6.0)]
    assert addresses == ["10.0.0.203", "10.0.0.200", "10.0.0.203", "10.0.0.201",
                         "10.0.0.203", "10.0.0.202"]
    assert addresses == [h.address for h in hop_schedule(list(POOL), 1, 1.0, 6.0)]


def test_schedule_covers_the_duration_without_repeating_back_to_back() -> None:
    schedule = hop_schedule(POOL, 3, 0.5, 10.0)
    assert len(schedule) == 20
    assert [h.start_s for h in schedule] == [i * 0.5 for i in range(20)]
    assert [h.index for h in schedule] == list(range(20))
    assert all(x.address != y.address for x, y in itertools.pairwise(schedule))
    assert {h.address for h in schedule} <= set(POOL)
    assert len({h.address for h in schedule}) >= 3


def test_schedule_edge_cases() -> None:
    assert len(hop_schedule(POOL, 1, 5.0, 1.0)) == 1
    assert len(hop_schedule(POOL, 1, 1.0, 3.0)) == 3  # no spurious hop at exactly t=3
    single = hop_schedule(("10.0.0.200",), 1, 1.0, 3.0)
    assert {h.address for h in single} == {"10.0.0.200"}
    with pytest.raises(ValueError):
        hop_schedule((), 1, 1.0, 3.0)
    with pytest.raises(ValueError):
        hop_schedule(POOL, 1, 0.0, 3.0)


def test_hop_at() -> None:
    schedule = hop_schedule(POOL, 1, 2.0, 10.0)
    assert hop_at(schedule, 0.0) == schedule[0]
    assert hop_at(schedule, 1.999) == schedule[0]
    assert hop_at(schedule, 2.0) == schedule[1]
    assert hop_at(schedule, 99.0) == schedule[-1]


def test_default_pool_avoids_hosts_and_virtual_pool() -> None:
    plan = ics_plan()
    pool = default_pool(plan, 8)
    assert pool == tuple(f"10.0.0.{i}" for i in range(247, 255))
    used = {h.ip for h in plan.hosts} | set(plan.virtual_pool)
    assert not set(free_addresses(plan)) & used
    assert "10.0.0.255" not in free_addresses(plan) and "10.0.0.0" not in free_addresses(plan)


def test_default_pool_when_only_the_virtual_pool_is_free() -> None:
    plan = star_plan(10)  # virtual pool .11-.254: nothing else is free
    with pytest.raises(UserError, match="allow-virtual-pool"):
        default_pool(plan, 4)
    assert len(default_pool(plan, 4, allow_virtual_pool=True)) == 4


def test_explicit_pool_is_checked() -> None:
    plan = ics_plan()
    assert check_pool(plan, "10.0.0.200/30") == ("10.0.0.201", "10.0.0.202")
    with pytest.raises(UserError, match="plc1"):
        check_pool(plan, "10.0.0.21,10.0.0.200")
    with pytest.raises(UserError, match="virtual pool"):
        check_pool(plan, "10.0.0.150,10.0.0.200")
    with pytest.raises(ScopeError):
        check_pool(plan, "192.168.0.1,10.0.0.200")
    with pytest.raises(UserError, match="at least 2"):
        check_pool(plan, "10.0.0.200")


def test_probe_pairs_and_snat_rule() -> None:
    assert probe_pairs(["a", "b"], [1, 2]) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    rule = snat_rule("attacker-eth0", "10.0.0.66", "10.0.0.0/24", "10.0.0.250")
    assert rule[-2:] == ["--to-source", "10.0.0.250"]
    assert "10.0.0.66/32" in rule and "attacker-eth0" in rule


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    ics_plan().save(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "attacks.iphop", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


BAD = [
    (["--targets", "8.8.8.8"], "outside the plan's subnet"),
    (["--targets", "10.0.0.21", "--pool", "192.168.1.1,192.168.1.2"], "--pool"),
    (["--targets", "10.0.0.21", "--pool", "10.0.0.11,10.0.0.200"], "hmi's address"),
    (["--targets", "10.0.0.21", "--pool", "10.0.0.150,10.0.0.200"], "virtual pool"),
    (["--targets", "10.0.0.21", "--hop-interval-s", "0"], "--hop-interval-s"),
    (["--targets", "10.0.0.21", "--hop-interval-s", "0.01"], "--hop-interval-s"),
    (["--targets", "10.0.0.21", "--duration-s", "99999"], "--duration-s"),
    (["--targets", "10.0.0.21", "--max-probes", "0"], "--max-probes"),
    (["--targets", "10.0.0.21", "--seed", "x"], "--seed"),
    (["--targets", "10.0.0.21", "--probe-interval-s", "0.001"], "--probe-interval-s"),
]


@pytest.mark.parametrize(("extra", "says"), BAD)
def test_bad_input_is_one_line_exit_2(plan_path: Path, tmp_path: Path, extra: list[str],
                                      says: str) -> None:
    out = tmp_path / "o.json"
    done = _cli("--plan", str(plan_path), "--out", str(out), *extra)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("attacks.iphop: error: ") and says in lines[0]
    assert not out.exists()


def test_root_namespace_is_refused(plan_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    done = _cli("--plan", str(plan_path), "--out", str(out), "--targets", "10.0.0.21")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "root network namespace" in done.stderr
    assert not out.exists()
