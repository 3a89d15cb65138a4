"""The persistent attacker on a pool wider than one sweep: each round sweeps a seeded random
sample of at most MAX_SWEEP_ADDRESSES of the scope guard's targets (a fresh one each round),
the scope guard accepts a /16 and nothing wider, and the round loop uses the sample (the ARP
sweep faked: no network)."""

from __future__ import annotations

import argparse

import pytest

from attacks import attacker_persistent
from attacks.attacker_common import MAX_SWEEP_ADDRESSES, Local, round_sample
from common.hostenv import AttackContext
from common.plan import ics_plan, widen_pool
from common.scope import ScopeError, expand_targets

WIDE = widen_pool(ics_plan(), 16)


def test_a_slash16_expands_and_a_slash15_is_refused() -> None:
    targets = expand_targets(WIDE, WIDE.subnet)
    assert WIDE.subnet == "10.0.0.0/16" and len(targets) == 65534
    assert targets[0] == "10.0.0.1" and targets[-1] == "10.0.255.254"
    with pytest.raises(ScopeError, match="outside"):
        expand_targets(WIDE, "10.0.0.0/15")
    with pytest.raises(ScopeError, match="outside"):
        expand_targets(ics_plan(), "10.0.0.0/16")  # the /24 plan's scope stays its /24


def test_small_target_lists_are_swept_whole_and_in_order() -> None:
    targets = [f"10.0.0.{i}" for i in range(1, 255)]
    assert round_sample(targets, seed=1, sweep=0) == targets
    assert round_sample(targets, seed=1, sweep=7) == targets
    exact = [f"10.0.{i // 256}.{i % 256}" for i in range(MAX_SWEEP_ADDRESSES)]
    assert round_sample(exact, seed=3, sweep=2) == exact


def test_a_large_pool_is_sampled_fresh_each_round_within_scope() -> None:
    targets = expand_targets(WIDE, WIDE.subnet)
    scope = set(targets)
    rounds = [round_sample(targets, seed=5, sweep=k) for k in range(4)]
    for sample in rounds:
        assert len(sample) == MAX_SWEEP_ADDRESSES == len(set(sample))  # no repeats
        assert set(sample) <= scope
    assert len({tuple(s) for s in rounds}) == 4  # a fresh draw each round
    overlap = len(set(rounds[0]) & set(rounds[1]))
    assert overlap < 2 * MAX_SWEEP_ADDRESSES ** 2 / len(targets)  # independent draws, ~256
    assert round_sample(targets, seed=5, sweep=2) == rounds[2]  # same seed and round: same
    assert round_sample(targets, seed=6, sweep=2) != rounds[2]
    assert round_sample(targets, seed=5, sweep=0, size=10) == round_sample(
        targets, seed=5, sweep=0, size=10)
    assert len(round_sample(targets, seed=5, sweep=0, size=10)) == 10


def test_every_pool_address_is_eventually_swept() -> None:
    targets = expand_targets(WIDE, WIDE.subnet)
    seen: set[str] = set()
    for k in range(120):  # P(an address missed 120 rounds) = (15/16)^120 ~ 4e-4
        seen.update(round_sample(targets, seed=9, sweep=k))
    assert len(seen) > 0.999 * len(targets)


def test_the_persistent_round_loop_sweeps_each_rounds_sample(monkeypatch) -> None:
    targets = expand_targets(WIDE, WIDE.subnet)
    swept: list[list[str]] = []

    def fake_sweep(ctx, local, addresses, tactic, sweep=0, want=None):
        swept.append(list(addresses))
        return []

    monkeypatch.setattr(attacker_persistent, "sweep_and_exploit", fake_sweep)
    monkeypatch.setattr(attacker_persistent, "local_interface",
                        lambda plan: Local("eth0", "10.0.0.66", "02:00:00:00:00:42"))
    args = argparse.Namespace(window_s=0.6, round_s=0.5, seed=4)
    outcome = attacker_persistent._new_outcome(args, targets)
    ctx = AttackContext(args=args, plan=WIDE, targets=targets, outcome=outcome)
    attacker_persistent._body(ctx)
    assert len(swept) == 2
    assert swept == [round_sample(targets, 4, 0), round_sample(targets, 4, 1)]
    assert [r["swept"] for r in outcome.rounds] == [MAX_SWEEP_ADDRESSES] * 2


def test_the_persistent_parser_takes_a_seed() -> None:
    p = attacker_persistent.build_parser()
    base = ["--plan", "p.json", "--targets", "10.0.0.0/16", "--out", "o.json"]
    assert p.parse_args(base).seed == 0
    assert p.parse_args([*base, "--seed", "12"]).seed == 12
