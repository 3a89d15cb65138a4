"""fidelity: /proc/stat parser, idle-share and summary math, the sampler thread."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.fidelity import (
    LOW_IDLE_THRESHOLD,
    SATURATED_SAMPLE_SHARE,
    CpuTicks,
    FidelityMonitor,
    FidelitySample,
    StatReading,
    idle_share,
    parse_proc_stat,
    process_cpu_ticks,
    run_summary,
    sample_between,
    summarize_samples,
)
from reporting.bundle import write_json

# Captured from a 2-core Debian 12 machine (kernel 6.x), trimmed.
PROC_STAT = """\
cpu  32442 0 9056 250290 499 0 533 12 0 0
cpu0 11358 0 3684 130942 71 0 264 5 0 0
cpu1 21083 0 5371 119348 427 0 269 7 0 0
intr 2893611 0 9 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 6047553
btime 1764420000
processes 25402
procs_running 2
procs_blocked 0
softirq 1210493 2 289164 0 53312 0 0 1218 528374 0 338423
"""


def stat_text(user: int, idle: int, cores: list[tuple[int, int]]) -> str:
    lines = [f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0"]
    lines += [f"cpu{i} {u} 0 0 {d} 0 0 0 0 0 0" for i, (u, d) in enumerate(cores)]
    return "\n".join(lines) + "\nctxt 1\n"


def test_parse_captured_proc_stat() -> None:
    r = parse_proc_stat(PROC_STAT)
    # idle + iowait; total of the first eight fields (guest columns are inside user/nice)
    assert r.total == CpuTicks(idle_ticks=250290 + 499,
                               total_ticks=32442 + 9056 + 250290 + 499 + 533 + 12)
    assert r.cores == (CpuTicks(130942 + 71, 11358 + 3684 + 130942 + 71 + 264 + 5),
                       CpuTicks(119348 + 427, 21083 + 5371 + 119348 + 427 + 269 + 7))


def test_guest_time_not_counted_twice() -> None:
    r = parse_proc_stat("cpu  100 0 0 100 0 0 0 0 50 50\n")
    assert r.total == CpuTicks(100, 200)


def test_old_kernel_four_fields() -> None:
    assert parse_proc_stat("cpu 10 0 5 85\n").total == CpuTicks(85, 100)


@pytest.mark.parametrize("text", ["", "intr 1 2 3\n", "cpu 1 x 3 4\n", "cpu 1 2\n"])
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="/proc/stat"):
        parse_proc_stat(text)


def test_idle_share_between_readings() -> None:
    before = parse_proc_stat(stat_text(100, 100, [(50, 50), (50, 50)]))
    after = parse_proc_stat(stat_text(175, 125, [(100, 50), (75, 75)]))
    assert idle_share(before.total, after.total) == pytest.approx(25 / 100)
    s = sample_between(before, after, t_s=0.2)
    assert s == FidelitySample(t_s=0.2, idle_share=0.25, busiest_core_idle_share=0.0)
    assert sample_between(before, before, t_s=0.4) is None  # no tick elapsed
    assert math.isnan(idle_share(after.total, before.total))  # counters went backwards


def samples(*shares: float) -> list[FidelitySample]:
    return [FidelitySample(0.2 * (i + 1), s, s / 2) for i, s in enumerate(shares)]


def test_summary_math() -> None:
    s = summarize_samples(samples(0.9, 0.5, 0.05, 0.3), interval_s=0.2)
    assert s.n_samples == 4
    assert s.mean_idle_share == pytest.approx((0.9 + 0.5 + 0.05 + 0.3) / 4)
    assert s.min_idle_share == 0.05
    assert s.low_idle_sample_share == 0.25
    assert s.min_busiest_core_idle_share == 0.025
    assert (s.low_idle_threshold, s.saturated_share) == (LOW_IDLE_THRESHOLD,
                                                         SATURATED_SAMPLE_SHARE)
    assert s.saturated  # 25 % of the samples below 10 % idle >= 20 %


def test_saturation_threshold_boundaries() -> None:
    # exactly the threshold idle is not low-idle; exactly the share saturates
    assert not summarize_samples(samples(0.10, 0.10, 0.10), 0.2).saturated
    assert summarize_samples(samples(0.0, 1, 1, 1, 1), 0.2).saturated  # 1/5 = 0.2
    assert not summarize_samples(samples(0.0, 1, 1, 1, 1, 1), 0.2).saturated  # 1/6
    custom = summarize_samples(samples(0.3, 0.9), 0.2, low_idle_threshold=0.5,
                               saturated_share=0.6)
    assert custom.low_idle_sample_share == 0.5 and not custom.saturated


def test_summary_without_samples() -> None:
    s = summarize_samples([], interval_s=0.5)
    assert s.n_samples == 0 and not s.saturated and math.isnan(s.mean_idle_share)


def test_to_dict_goes_into_a_manifest(tmp_path: Path) -> None:
    d = summarize_samples([], 0.2).to_dict()
    write_json(tmp_path / "m.json", {"fidelity": d})
    back = json.loads((tmp_path / "m.json").read_text())["fidelity"]
    assert back["mean_idle_share"] is None and back["saturated"] is False
    assert set(back) == {"n_samples", "interval_s", "mean_idle_share", "min_idle_share",
                         "low_idle_sample_share", "min_busiest_core_idle_share",
                         "low_idle_threshold", "saturated_share", "saturated"}


def fake_reader(idle_per_read: float, ticks_per_read: int = 100
                ) -> tuple[Callable[[], StatReading], list[int]]:
    """Readings whose every interval has ``idle_per_read`` idle share; counts the reads."""
    calls = [0]

    def read() -> StatReading:
        calls[0] += 1
        total = calls[0] * ticks_per_read
        idle = int(total * idle_per_read)
        return StatReading(CpuTicks(idle, total), (CpuTicks(idle // 2, total // 2),))

    return read, calls


def wait_for(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_sampler_start_stop_with_fake_reads() -> None:
    read, calls = fake_reader(0.05)
    mon = FidelityMonitor(interval_s=0.01, read=read).start()
    wait_for(lambda: len(mon.samples) >= 5)
    got = mon.stop()
    n = len(got)
    assert n >= 6  # five by the thread, one more by stop()
    assert all(s.idle_share == pytest.approx(0.05) for s in got)
    assert [s.t_s for s in got] == sorted(s.t_s for s in got)
    reads_after_stop = calls[0]
    time.sleep(0.05)
    assert calls[0] == reads_after_stop and len(mon.samples) == n  # really stopped
    assert mon.summary().saturated and mon.summary().n_samples == n
    assert mon.stop() == got  # stopping twice is harmless


def test_short_trial_still_gets_a_sample() -> None:
    read, _ = fake_reader(0.9)
    with FidelityMonitor(interval_s=60, read=read) as mon:
        pass
    assert len(mon.samples) == 1 and not mon.summary().saturated


def test_sampler_really_samples_proc_stat(tmp_path: Path) -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("no /proc/stat on this system")
    with FidelityMonitor(interval_s=0.05) as mon:
        deadline = time.monotonic() + 5
        while len(mon.samples) < 3 and time.monotonic() < deadline:
            sum(range(10_000))  # keep a CPU a bit busy so ticks advance
    s = mon.summary()
    assert s.n_samples >= 3
    assert 0.0 <= s.min_idle_share <= s.mean_idle_share <= 1.0
    mon.write_csv(tmp_path / "fidelity.csv")
    lines = (tmp_path / "fidelity.csv").read_text().splitlines()
    assert lines[0] == "t_s,idle_share,busiest_core_idle_share"
    assert len(lines) == s.n_samples + 1


def test_failing_reader_logs_and_keeps_samples(caplog: pytest.LogCaptureFixture) -> None:
    read, calls = fake_reader(0.5)

    def flaky() -> StatReading:
        if calls[0] >= 3:
            raise OSError("gone")
        return read()

    caplog.set_level(logging.WARNING, logger="lab.fidelity")
    mon = FidelityMonitor(interval_s=0.01, read=flaky).start()
    wait_for(lambda: mon._thread is not None and not mon._thread.is_alive())
    assert len(mon.stop()) == 2
    assert sum("cannot read CPU times" in r.message for r in caplog.records) == 1


def test_monitor_misuse() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        FidelityMonitor(interval_s=0)
    read, _ = fake_reader(0.5)
    mon = FidelityMonitor(interval_s=1, read=read).start()
    with pytest.raises(RuntimeError, match="once"):
        mon.start()
    mon.stop()


def test_run_summary_from_trial_records() -> None:
    sat = summarize_samples(samples(0.0, 0.0), 0.2).to_dict()
    ok = summarize_samples(samples(0.9, 0.8), 0.2).to_dict()
    records: Iterator[dict] = iter([
        {"trial": 1, "status": "ok", "fidelity": ok},
        {"trial": 2, "status": "failed", "error": "x"},
        {"trial": 3, "status": "ok", "fidelity": sat},
    ])
    assert run_summary(records) == {"monitored_trials": 2, "saturated_trials": [3],
                                    "low_idle_threshold": 0.1, "saturated_share": 0.2}


# A real line of /proc/<pid>/stat, with a process name holding a space and a parenthesis.
STAT = ("4242 (python3 x) y) S 1 4242 4242 0 -1 4194560 5873 0 0 0 "
        "137 42 0 0 20 0 3 0 123456 1234567 2345 18446744073709551615")


def test_proc_stat_ticks_parse_after_the_name() -> None:
    assert process_cpu_ticks(STAT) == 137 + 42
    for bad in ("", "4242 python3 S 1", "4242 (x) S 1 2 3"):
        with pytest.raises(ValueError):
            process_cpu_ticks(bad)


def test_proc_stat_of_this_process_parses() -> None:
    text = Path("/proc/self/stat").read_text()
    assert process_cpu_ticks(text) >= 0
