"""Fidelity monitor: was the machine saturated while a trial ran?

An emulation is only as faithful as the host CPU lets it be: when every core is busy, packets
queue behind the scheduler rather than behind the emulated links, and latencies measure the
machine, not the network. Mininet-HiFi's answer is to monitor the host during the experiment
and flag the runs where it could not keep up; this module does the same with the CPU idle share
read from ``/proc/stat``.

Pure part: :func:`parse_proc_stat` (the ``cpu`` lines of ``/proc/stat`` → cumulative ticks),
:func:`idle_share` (two readings → the share of CPU time idle between them) and
:func:`process_cpu_ticks` (one process's CPU ticks from ``/proc/<pid>/stat``). I/O part:
:class:`FidelityMonitor`, a background thread that takes one sample every ``interval_s``.
Use it around a trial::

    with FidelityMonitor(interval_s=0.2) as mon:
        result = exp.trial(ctx)
    record["fidelity"] = mon.summary().to_dict()
    mon.write_csv(ctx.raw_dir / "fidelity.csv")

Definitions (one sample = the interval between two readings):

- idle share: (idle + iowait ticks) / all ticks of the aggregate ``cpu`` line, in [0, 1];
  iowait counts as idle because a CPU waiting for a disk is free to run the emulation.
- busiest-core idle share: the lowest per-core idle share of the sample (one saturated core
  can stall a single-threaded controller or the userspace datapath while the aggregate looks
  fine); reported, not used for the flag.
- a sample is *low-idle* when its idle share is below ``low_idle_threshold``
  (default :data:`LOW_IDLE_THRESHOLD` = 0.10: less than a tenth of the machine's CPU time free).
- a trial is *saturated* when the share of low-idle samples reaches ``saturated_share``
  (default :data:`SATURATED_SAMPLE_SHARE` = 0.20: a fifth of the trial or more spent with the
  machine nearly fully busy). A saturated trial's timing metrics are suspect; the flag is a
  warning for the reader, it does not invalidate the trial.
"""

from __future__ import annotations

import csv
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")
LOW_IDLE_THRESHOLD = 0.10
SATURATED_SAMPLE_SHARE = 0.20
DEFAULT_INTERVAL_S = 0.2

# Column order of a ``cpu`` line (proc(5)); guest and guest_nice are already counted in user
# and nice, so they are left out of the total.
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_IDLE_FIELDS = ("idle", "iowait")


@dataclass(frozen=True)
class CpuTicks:
    """Cumulative ticks since boot of one ``cpu`` line: idle (idle + iowait) and total."""

    idle_ticks: int
    total_ticks: int


@dataclass(frozen=True)
class StatReading:
    """One reading of ``/proc/stat``: the aggregate line and each core (``cpu0``, ...)."""

    total: CpuTicks
    cores: tuple[CpuTicks, ...]


def parse_proc_stat(text: str) -> StatReading:
    """Parse the ``cpu`` lines of ``/proc/stat`` text.

    Lines other than ``cpu``/``cpuN`` are ignored; fields missing on old kernels (iowait,
    irq, softirq, steal) count as 0. Raises ValueError when there is no aggregate ``cpu`` line
    or a field is not an integer.
    """
    total: CpuTicks | None = None
    cores: list[CpuTicks] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or not parts[0].startswith("cpu"):
            continue
        label = parts[0]
        if label != "cpu" and not label[3:].isdigit():
            continue
        try:
            values = [int(v) for v in parts[1:1 + len(_FIELDS)]]
        except ValueError:
            raise ValueError(f"/proc/stat: non-integer field in line {line!r}") from None
        if len(values) < 4:
            raise ValueError(f"/proc/stat: too few fields in line {line!r}")
        fields = dict(zip(_FIELDS, values, strict=False))
        ticks = CpuTicks(idle_ticks=sum(fields.get(f, 0) for f in _IDLE_FIELDS),
                         total_ticks=sum(values))
        if label == "cpu":
            total = ticks
        else:
            cores.append(ticks)
    if total is None:
        raise ValueError("/proc/stat: no aggregate 'cpu' line")
    return StatReading(total=total, cores=tuple(cores))


def idle_share(before: CpuTicks, after: CpuTicks) -> float:
    """Share of CPU time idle between two readings, in [0, 1]; NaN when no tick elapsed."""
    d_total = after.total_ticks - before.total_ticks
    d_idle = after.idle_ticks - before.idle_ticks
    if d_total <= 0:
        return math.nan
    return min(1.0, max(0.0, d_idle / d_total))


@dataclass(frozen=True)
class FidelitySample:
    """One sampling interval.

    t_s: end of the interval, seconds since the monitor started. idle_share: aggregate
    idle share over the interval. busiest_core_idle_share: lowest per-core idle share (NaN
    when ``/proc/stat`` lists no cores).
    """

    t_s: float
    idle_share: float
    busiest_core_idle_share: float


def sample_between(before: StatReading, after: StatReading, t_s: float) -> FidelitySample | None:
    """The sample of the interval between two readings; None when no tick elapsed."""
    share = idle_share(before.total, after.total)
    if math.isnan(share):
        return None
    core_shares = [idle_share(b, a) for b, a in zip(before.cores, after.cores, strict=False)]
    core_shares = [s for s in core_shares if not math.isnan(s)]
    return FidelitySample(t_s=t_s, idle_share=share,
                          busiest_core_idle_share=min(core_shares) if core_shares else math.nan)


@dataclass(frozen=True)
class FidelitySummary:
    """Per-trial summary of the samples (shares in [0, 1]; NaN when there is no sample).

    saturated: low_idle_sample_share >= saturated_share (False without samples; see the
    module docstring for the definitions).
    """

    n_samples: int
    interval_s: float
    mean_idle_share: float
    min_idle_share: float
    low_idle_sample_share: float
    min_busiest_core_idle_share: float
    low_idle_threshold: float
    saturated_share: float
    saturated: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest (NaN stays NaN; the bundle writer turns it into null)."""
        return asdict(self)


def summarize_samples(samples: Iterable[FidelitySample], interval_s: float,
                      low_idle_threshold: float = LOW_IDLE_THRESHOLD,
                      saturated_share: float = SATURATED_SAMPLE_SHARE) -> FidelitySummary:
    """Mean and minimum idle share, the share of low-idle samples, the saturation flag."""
    shares = [s.idle_share for s in samples]
    cores = [s.busiest_core_idle_share for s in samples
             if not math.isnan(s.busiest_core_idle_share)]
    n = len(shares)
    if n == 0:
        nan = math.nan
        return FidelitySummary(0, interval_s, nan, nan, nan, nan, low_idle_threshold,
                               saturated_share, False)
    low = sum(1 for s in shares if s < low_idle_threshold) / n
    return FidelitySummary(
        n_samples=n, interval_s=interval_s, mean_idle_share=sum(shares) / n,
        min_idle_share=min(shares), low_idle_sample_share=low,
        min_busiest_core_idle_share=min(cores) if cores else math.nan,
        low_idle_threshold=low_idle_threshold, saturated_share=saturated_share,
        saturated=low >= saturated_share)


def read_proc_stat() -> StatReading:
    """Read and parse the real ``/proc/stat``."""
    return parse_proc_stat(PROC_STAT.read_text())


def process_cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from the text of ``/proc/<pid>/stat``: one process's CPU.

    The process name (field 2) is in parentheses and may hold spaces or parentheses itself,
    so fields are counted after its last ``)``: utime and stime are fields 14 and 15.
    ValueError when the text is not a stat line.
    """
    head, sep, rest = stat_text.rpartition(")")
    fields = rest.split()
    if not sep or "(" not in head or len(fields) < 13:
        raise ValueError("not a /proc/<pid>/stat line")
    return int(fields[11]) + int(fields[12])


class FidelityMonitor:
    """Samples the CPU idle share every ``interval_s`` in a daemon thread.

    interval_s: sampling period (seconds, > 0); ``/proc/stat`` counts in ticks of 10 ms, so
        periods under ~0.05 s give coarse shares. low_idle_threshold, saturated_share: see the
    module docstring. read: returns one reading (tests inject fake ones; default reads
    ``/proc/stat``). A monitor is started once; ``stop()`` takes a last sample covering the
    time since the previous one, so even a trial shorter than ``interval_s`` gets a sample.
    A failing read is logged once and ends the sampling; the samples so far are kept.
    """

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S,
                 low_idle_threshold: float = LOW_IDLE_THRESHOLD,
                 saturated_share: float = SATURATED_SAMPLE_SHARE,
                 read: Callable[[], StatReading] = read_proc_stat) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, not {interval_s!r}")
        self.interval_s = float(interval_s)
        self.low_idle_threshold = low_idle_threshold
        self.saturated_share = saturated_share
        self._read = read
        self._samples: list[FidelitySample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._last: StatReading | None = None
        self._failed = False

    def start(self) -> FidelityMonitor:
        """Take the baseline reading and start the sampling thread."""
        if self._thread is not None:
            raise RuntimeError("a FidelityMonitor is started only once")
        self._t0 = time.monotonic()
        self._last = self._safe_read()
        self._thread = threading.Thread(target=self._loop, name="fidelity-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[FidelitySample]:
        """Stop the thread, take the final sample; returns every sample so far."""
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._take()
        return self.samples

    @property
    def samples(self) -> list[FidelitySample]:
        with self._lock:
            return list(self._samples)

    def summary(self) -> FidelitySummary:
        return summarize_samples(self.samples, self.interval_s, self.low_idle_threshold,
                                 self.saturated_share)

    def write_csv(self, path: Path) -> None:
        """Write the samples as ``t_s,idle_share,busiest_core_idle_share`` rows."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("t_s", "idle_share", "busiest_core_idle_share"))
            for s in self.samples:
                w.writerow((f"{s.t_s:.3f}", f"{s.idle_share:.4f}",
                            "" if math.isnan(s.busiest_core_idle_share)
                            else f"{s.busiest_core_idle_share:.4f}"))

    def __enter__(self) -> FidelityMonitor:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._take():
                return

    def _safe_read(self) -> StatReading | None:
        if self._failed:
            return None
        try:
            return self._read()
        except (OSError, ValueError) as exc:
            self._failed = True
            log.warning("fidelity monitor: cannot read CPU times: %s", exc)
            return None

    def _take(self) -> bool:
        """One sample against the previous reading; False when reading failed."""
        now = self._safe_read()
        if now is None:
            return False
        if self._last is not None:
            sample = sample_between(self._last, now, time.monotonic() - self._t0)
            if sample is not None:
                with self._lock:
                    self._samples.append(sample)
        self._last = now
        return True


def run_summary(trial_records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Run-level fidelity for the manifest from its per-trial records.

    trial_records: the manifest's ``trials`` list; a record is monitored when it has a
    ``fidelity`` key (a ``FidelitySummary.to_dict()``). Returns ``{"monitored_trials": n,
    "saturated_trials": [trial numbers], "low_idle_threshold": x, "saturated_share": y}``.
    """
    saturated: list[int] = []
    monitored = 0
    low_idle, share = LOW_IDLE_THRESHOLD, SATURATED_SAMPLE_SHARE
    for rec in trial_records:
        fid = rec.get("fidelity")
        if not isinstance(fid, dict):
            continue
        monitored += 1
        low_idle = fid.get("low_idle_threshold", low_idle)
        share = fid.get("saturated_share", share)
        if fid.get("saturated"):
            saturated.append(rec.get("trial", monitored))
    return {"monitored_trials": monitored, "saturated_trials": saturated,
            "low_idle_threshold": low_idle, "saturated_share": share}
