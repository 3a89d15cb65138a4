"""Recon's default budgets grow with the target range (a /22 needs more than a /24's 60 s)."""
from __future__ import annotations

import pytest

from attacks.recon import (
    BUDGET_ADDRESSES,
    DEFAULT_STAGE_TIMEOUT_S,
    build_parser,
    scaled_budget_s,
)
from experiments.recon import recon_validity


@pytest.mark.parametrize(("n_addresses", "expected_s"), [
    (1, 60.0), (254, 60.0), (BUDGET_ADDRESSES, 60.0), (512, 120.0), (1022, 239.53125)])
def test_stage_budget_scales_beyond_a_24(n_addresses: int, expected_s: float) -> None:
    assert scaled_budget_s(DEFAULT_STAGE_TIMEOUT_S, n_addresses) == pytest.approx(expected_s)


def test_budgets_default_to_scaled_but_explicit_values_are_kept() -> None:
    args = build_parser().parse_args(["--plan", "p.json", "--targets", "10.0.0.0/24",
                                      "--out", "o.json"])
    assert args.timeout_s is None and args.stage_timeout_s is None
    args = build_parser().parse_args(["--plan", "p.json", "--targets", "10.0.0.0/24",
                                      "--out", "o.json", "--stage-timeout-s", "5"])
    assert args.stage_timeout_s == 5.0


def test_a_sweep_that_found_nobody_is_a_failed_premise_not_a_recall_of_0() -> None:
    ok = {"started_at": "2026-12-02T10:19:17Z"}
    assert recon_validity(ok, {}, ["discovery", "syn"]) == {
        "recon_completed": True, "network_answered": False}
    assert recon_validity(ok, {"10.0.0.1": {}}, ["discovery"])["network_answered"] is True
    # Without discovery every target is taken as live: nothing to check.
    assert "network_answered" not in recon_validity(ok, {}, ["syn"])
    assert recon_validity({"errors": ["nmap died"]}, {"10.0.0.1": {}},
                          ["discovery"])["recon_completed"] is False
