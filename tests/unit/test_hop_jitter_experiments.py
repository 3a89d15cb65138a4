"""``--hop-jitter-s`` in evasion, mtd-sweep and mtd-timing: from the flag to the defense's launch
(the controller's ``--jitter-s``, nat_hop's arguments), checked up front, and the jittered
timing model. No network: the lab is stopped where it would be built."""

from __future__ import annotations

import bisect
import random
from pathlib import Path
from typing import Any

import pytest

from common.errors import UserError
from common.plan import plan_for
from experiments import mtd, runner
from experiments.mtd_timing import model_success
from experiments.registry import get_experiment
from experiments.runner import TrialContext
from experiments.spec import resolve_config
from lab.defenses import DefenseSettings, nat_hop_args


class _LaunchedError(Exception):
    """Raised where the lab would be built: the trial got as far as the defense's launch."""


def _launch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, condition: str,
            flags: dict[str, Any]) -> tuple[DefenseSettings, tuple[str, ...]]:
    """Run ``name``'s trial up to the lab; the defense settings and controller arguments."""
    seen: dict[str, Any] = {}
    real_setup = mtd.controller_setup

    def controller_setup(settings: DefenseSettings, plan_path: Path, folder: Path
                         ) -> tuple[str, tuple[str, ...], list[Path]]:
        seen["settings"] = settings
        return real_setup(settings, plan_path, folder)

    def running_lab(cfg: Any) -> Any:
        seen["controller_args"] = tuple(cfg.controller_args)
        raise _LaunchedError

    monkeypatch.setattr(mtd, "controller_setup", controller_setup)
    monkeypatch.setattr(runner, "running_lab", running_lab)  # ctx.open_lab, no kept lab
    exp = get_experiment(name)
    config = resolve_config(exp, None, flags, quick=True)
    plan = plan_for(config["topo"])
    assert exp.check is not None
    exp.check(config, plan)
    ctx = TrialContext(exp=exp, config=config, trial=1, seed=7, raw_dir=tmp_path, plan=plan,
                       engine="os-ken", datapath="user", condition=condition)
    with pytest.raises(_LaunchedError):
        exp.trial(ctx)
    return seen["settings"], seen["controller_args"]


def _value_after(args: tuple[str, ...] | list[str], flag: str) -> str:
    return args[list(args).index(flag) + 1]


@pytest.mark.parametrize("name,condition,flags", [
    ("evasion", "hopping", {"defense": "rhm", "hop_jitter_s": 0.7}),
    ("mtd-sweep", "hop2s", {"defense": "rhm", "intervals_s": "2,5", "hop_jitter_s": 0.7}),
    ("mtd-timing", "hop2s", {"defense": "rhm", "intervals_s": "2,5", "hop_jitter_s": 0.7}),
])
def test_jitter_reaches_the_controller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       name: str, condition: str, flags: dict[str, Any]) -> None:
    settings, cargs = _launch(monkeypatch, tmp_path, name, condition, flags)
    assert settings.jitter_s == 0.7 and settings.seed == 7
    assert _value_after(cargs, "--jitter-s") == "0.7"
    assert _value_after(cargs, "--hop-interval-s") == "2"


@pytest.mark.parametrize("name,condition", [("mtd-sweep", "hop2s"), ("mtd-timing", "hop2s")])
def test_jitter_reaches_nat_hop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str,
                                condition: str) -> None:
    settings, cargs = _launch(monkeypatch, tmp_path, name, condition,
                              {"defense": "nat", "intervals_s": "2", "hop_jitter_s": 0.5})
    assert "--jitter-s" not in cargs  # nat hops in the hosts, not in the controller
    args = nat_hop_args(settings, tmp_path / "plan.json", tmp_path, "plc1", 0.0)
    assert _value_after(args, "--jitter-s") == "0.5"


@pytest.mark.parametrize("name", ["evasion", "mtd-sweep", "mtd-timing"])
def test_no_jitter_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                              name: str) -> None:
    condition = "fixed" if name == "evasion" else "hop2s"
    flags = {"defense": "rhm"} if name == "evasion" else {"defense": "rhm", "intervals_s": "2"}
    settings, cargs = _launch(monkeypatch, tmp_path, name, condition, flags)
    assert settings.jitter_s == 0.0 and "--jitter-s" not in cargs


@pytest.mark.parametrize("name,flags,needle", [
    ("evasion", {"hop_jitter_s": 2.0}, "below --hop-interval-s 2"),
    ("mtd-sweep", {"intervals_s": "5,1", "hop_jitter_s": 1.0},
     "below every --intervals-s value \\(the shortest is 1\\)"),
    ("mtd-timing", {"intervals_s": "3", "hop_jitter_s": 4.0}, "below --intervals-s 3"),
])
def test_jitter_not_below_an_interval_is_refused_up_front(name: str, flags: dict[str, Any],
                                                          needle: str) -> None:
    exp = get_experiment(name)
    config = resolve_config(exp, None, flags)
    assert exp.check is not None
    with pytest.raises(UserError, match=needle):
        exp.check(config, plan_for("ics"))


def test_jittered_model_is_the_length_biased_survival() -> None:
    assert model_success(1.0, 4.0, 0.0) == 0.75
    assert model_success(1.0, 4.0, 2.0) == 0.75  # no interval is shorter than 2 s
    assert model_success(2.0, 4.0, 2.0) == pytest.approx(0.5)  # continuous at I - j
    assert model_success(4.0, 4.0, 2.0) == pytest.approx(2.0 ** 2 / (4 * 2.0 * 4.0))
    assert model_success(6.0, 4.0, 2.0) == 0.0
    # Monte Carlo of the same renewal process (fixed seed): the closed form agrees.
    rng = random.Random(3)
    t, hops = 0.0, []
    while t < 40_000:
        t += rng.uniform(2.0, 6.0)
        hops.append(t)
    hits = 0
    n = 20_000
    for _ in range(n):
        answer = rng.uniform(10.0, 39_000.0)
        nxt = next_hop(hops, answer)
        hits += nxt > answer + 3.0
    assert hits / n == pytest.approx(model_success(3.0, 4.0, 2.0), abs=0.02)


def next_hop(hops: list[float], t: float) -> float:
    """The first hop after ``t`` (hops sorted)."""
    return hops[bisect.bisect_right(hops, t)]
