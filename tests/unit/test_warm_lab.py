"""lab.warm: which trials share a kept lab, and that a failed trial never hands one on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.plan import ics_plan
from lab import warm
from lab.lifecycle import LabConfig
from lab.warm import WarmLabs


class FakeLab:
    """What WarmLabs uses of a Lab; records what happened to it."""

    def __init__(self, cfg: LabConfig, events: list[str]) -> None:
        self.cfg = cfg
        self.events = events
        self.timeline: dict[str, float] = {"build_s": 1.0, "connect_s": 0.1}
        self.alive = True
        self.log_dirs: list[Path] = []

    def controller_alive(self) -> bool:
        return self.alive

    def begin_trial(self, log_dir: Path, reused: bool) -> None:
        self.log_dirs.append(log_dir)
        if reused:
            self.timeline = {"build_s": 0.0, "connect_s": 0.0}
        self.timeline["lab_reused"] = float(reused)

    def reset_hosts(self) -> None:
        self.events.append("reset")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    log: list[str] = []

    @contextlib.contextmanager
    def fake_running_lab(cfg: LabConfig) -> Iterator[FakeLab]:
        log.append(f"build {cfg.app} {cfg.log_dir.name}")
        try:
            yield FakeLab(cfg, log)
        finally:
            log.append(f"teardown {cfg.app}")

    monkeypatch.setattr(warm, "running_lab", fake_running_lab)
    return log


def cfg(tmp_path: Path, trial: str, app: str = "l2") -> LabConfig:
    return LabConfig(plan=ics_plan(), log_dir=tmp_path / trial, app=app)


def test_consecutive_matching_trials_share_one_lab(tmp_path: Path, events: list[str]) -> None:
    labs = WarmLabs(tmp_path / "raw")
    reused = []
    for trial in ("t1", "t2", "t3"):
        with labs.lab(cfg(tmp_path, trial), reusable=True) as lab:
            reused.append(lab.timeline["lab_reused"])
            assert lab.log_dirs[-1] == tmp_path / trial  # the trial's own log folder
    assert reused == [0.0, 1.0, 1.0]
    assert events == ["build l2 lab-1", "reset", "reset", "reset"]
    assert (labs.built, labs.reused) == (1, 2)
    labs.close()
    assert events[-1] == "teardown l2"


def test_a_different_lab_replaces_the_kept_one(tmp_path: Path, events: list[str]) -> None:
    labs = WarmLabs(tmp_path / "raw")
    with labs.lab(cfg(tmp_path, "t1"), reusable=True):
        pass
    with labs.lab(cfg(tmp_path, "t2", app="rhm"), reusable=True) as lab:
        assert lab.timeline["lab_reused"] == 0.0
    labs.close()
    assert events == ["build l2 lab-1", "reset", "teardown l2", "build rhm lab-2", "reset",
                      "teardown rhm"]


def test_not_reusable_or_disabled_means_a_fresh_lab_each(tmp_path: Path,
                                                         events: list[str]) -> None:
    for labs, reusable in ((WarmLabs(tmp_path / "a"), False),
                           (WarmLabs(tmp_path / "b", enabled=False), True)):
        for trial in ("t1", "t2"):
            with labs.lab(cfg(tmp_path, trial), reusable=reusable) as lab:
                assert lab.timeline["lab_reused"] == 0.0
        labs.close()
    # built in the trial's own folder and torn down at once, no reset
    assert events == ["build l2 t1", "teardown l2", "build l2 t2", "teardown l2"] * 2


def test_a_failed_trial_tears_the_kept_lab_down(tmp_path: Path, events: list[str]) -> None:
    labs = WarmLabs(tmp_path / "raw")
    with labs.lab(cfg(tmp_path, "t1"), reusable=True):
        pass
    with pytest.raises(RuntimeError), labs.lab(cfg(tmp_path, "t2"), reusable=True):
        raise RuntimeError("trial failed")
    with labs.lab(cfg(tmp_path, "t3"), reusable=True) as lab:
        assert lab.timeline["lab_reused"] == 0.0  # built afresh
    labs.close()
    assert events == ["build l2 lab-1", "reset", "teardown l2", "build l2 lab-2", "reset",
                      "teardown l2"]


def test_a_dead_controller_is_not_reused(tmp_path: Path, events: list[str]) -> None:
    labs = WarmLabs(tmp_path / "raw")
    with labs.lab(cfg(tmp_path, "t1"), reusable=True) as lab:
        lab.alive = False
    with labs.lab(cfg(tmp_path, "t2"), reusable=True) as lab:
        assert lab.timeline["lab_reused"] == 0.0
    labs.close()
    assert events.count("build l2 lab-1") == 1 and "build l2 lab-2" in events
