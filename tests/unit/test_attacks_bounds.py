"""The one bounds check of attack flags and the barrages' shared options."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

from attacks import modbus_fuzz, s7_fuzz
from attacks.barrage import BarrageLimits
from attacks.bounds import Bound, check_bounds
from attacks.ctrl_fuzz import LIMITS as CTRL_LIMITS
from attacks.modbus_fuzz import LIMITS as MODBUS_LIMITS
from attacks.s7_fuzz import LIMITS as S7_LIMITS
from common.cli import OneLineParser
from common.errors import UserError
from common.plan import ics_plan

BOUNDS = (Bound("--max-s", at_most=300), Bound("--round-s", at_least=0.5))


@pytest.mark.parametrize(("max_s", "round_s", "message"), [
    (301.0, 1.0, "--max-s 301: at most 300"),
    (10.0, 0.2, "--round-s 0.2: at least 0.5"),
    (float("nan"), 1.0, "--max-s nan: not a number"),
])
def test_a_value_outside_its_bound_is_refused_by_name(max_s: float, round_s: float,
                                                       message: str) -> None:
    with pytest.raises(UserError) as info:
        check_bounds(argparse.Namespace(max_s=max_s, round_s=round_s), BOUNDS)
    assert str(info.value) == message


def test_limits_are_inclusive_and_unset_flags_pass() -> None:
    check_bounds(argparse.Namespace(max_s=300.0, round_s=0.5), BOUNDS)
    check_bounds(argparse.Namespace(max_s=None, round_s=0.5), BOUNDS)


def _parse(limits: BarrageLimits, *argv: str) -> argparse.Namespace:
    parser = OneLineParser(prog="t")
    limits.add_options(parser)
    args = parser.parse_args(list(argv))
    check_bounds(args, limits.bounds)
    return args


@pytest.mark.parametrize("limits", [MODBUS_LIMITS, S7_LIMITS, CTRL_LIMITS])
def test_every_barrage_has_the_same_flags_with_its_own_defaults(limits: BarrageLimits) -> None:
    args = _parse(limits)
    assert (args.frames, args.rate_fps, args.max_s, args.seed) == (
        limits.frames, limits.rate_fps, limits.max_s, 1)
    with pytest.raises(UserError, match="--frames"):
        _parse(limits, "--frames", str(limits.max_frames + 1))
    with pytest.raises(UserError, match=f"--max-s .*: at most {limits.max_duration_s:g}"):
        _parse(limits, "--max-s", str(limits.max_duration_s + 1))


def test_a_rate_ceiling_is_enforced_only_where_one_is_declared() -> None:
    with pytest.raises(UserError, match="--rate-fps 1e\\+09: at most 50000"):
        _parse(MODBUS_LIMITS, "--rate-fps", "1e9")
    assert _parse(CTRL_LIMITS, "--rate-fps", "1e9").rate_fps == 1e9


@pytest.mark.parametrize(("module", "argv", "needle"), [
    (s7_fuzz, ["--targets", "10.0.0.21", "--rate-fps", "6000"], "--rate-fps 6000: at most 5000"),
    (s7_fuzz, ["--targets", "10.0.0.21,10.0.0.22"], "exactly one"),
    (s7_fuzz, ["--targets", "10.0.0.21", "--port", "0"], "--port"),
    (modbus_fuzz, ["--targets", "10.0.0.21", "--max-s", "601"], "--max-s 601: at most 600"),
    (modbus_fuzz, ["--targets", "10.0.0.21", "--half-open", "1001"], "--half-open"),
])
def test_one_port_barrages_refuse_before_sending(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 module: ModuleType, argv: list[str],
                                                 needle: str) -> None:
    plan, out = tmp_path / "plan.json", tmp_path / "out.json"
    ics_plan().save(plan)
    assert module.main(["--plan", str(plan), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith(
        f"attacks.{module.ATTACK.attack}: error:")
    assert not out.exists()
