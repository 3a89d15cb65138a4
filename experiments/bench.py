"""``bench``: how fast the framework builds, runs and scales, side by side with plain Mininet.

Each part is a condition of the runner, so a part that fails is recorded as a failed run and
the others go on; ``--parts`` picks some. Every figure is measured on the machine it runs on,
in the same run:

- ``bringup``: bring-up + teardown of ``star`` topologies of N hosts (``--sizes``) through the
  lab lifecycle (controller started, every switch connected), against plain Mininet building
  the same Topo on the same datapath (``Mininet(...)``, ``start``, ``stop``; no controller
  wait, never ``mn -c``). Seconds per N for both and the ratio ours/plain.
- ``recon_wall``: the default ``recon`` run in-process through the runner (its own bundle in
  this trial's raw folder), its wall time broken down by stage (build, controller connect,
  scans, teardown, the rest of the trial, plotting + report), plus the ``make run`` setup
  check (dpkg-query of the Makefile's packages + ``ovs-vsctl show``).
- ``hopping``: rhm hop latency (decision to flows in place, from the hop log) p50/p95 for
  each protected-host count (``--protected``; a star plan whose first N hosts are
  protected) while hopping every ``--hop-interval-s``, and the controller's CPU share over
  the window (``/proc/<pid>/stat`` utime + stime).
- ``datapath``: RTT (median, p95) between the HMI and PLC 1 of the ICS plan and iperf3
  throughput between them, under ``none`` (l2) and ``rhm``; ratios rhm/none.
- ``scale``: ``recon`` (defense none) on the largest star (``--scale-hosts``) and on a
  ``linear`` chain (``--linear-hosts`` switches); peak memory as the drop of
  ``/proc/meminfo`` MemAvailable (machine-wide: other work on the machine counts too) and
  the ovs-vswitchd RSS growth.
- ``controller``: packet-in → flow-mod rate under a burst of new flows (every host of a star
  of ``--burst-hosts`` sends to every other at once), per engine (``--engines``): flows in
  the switch over time from ``ovs-ofctl dump-flows``; the rate is flows installed / time to
  the last new flow.

Targets (reported in docs/benchmarks.md, never asserted): ratio ≤ 1.15 at N = 100; default
recon ≤ 60 s; hop latency p95 ≤ 50 ms at 10 protected hosts; rhm RTT median ≤ 1.10 x none;
recon completes on 250 hosts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from common.errors import LabError, UserError
from common.plan import AddressPlan, ics_plan, linear_plan, star_plan
from experiments import mtd
from experiments.parsers import ParseError, parse_ping
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.lifecycle import SWITCH_PREFIX_ENV, planned_interfaces, running_lab
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import percentile, summarize

log = logging.getLogger(__name__)

PARTS = ("bringup", "recon_wall", "hopping", "datapath", "scale", "controller")
REPO = Path(__file__).resolve().parents[1]
OVS_PID_FILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")
IPERF_PORT = 5201

PARAMS = (
    Param("parts", "str", ",".join(PARTS),
          f"benchmark parts to run, comma-separated from {', '.join(PARTS)}, or all"),
    Param("sizes", "str", "10,50,100,250", "bringup: star host counts (2-250 each)",
          quick="10,20"),
    Param("bringup_reps", "int", 1, "bringup: builds per size and kind within one trial",
          1, 20),
    Param("recon_trials", "int", 3, "recon_wall: trials of the default recon", 1, 20,
          quick=1),
    Param("protected", "str", "2,10,50", "hopping: protected-host counts", quick="2"),
    Param("hop_interval_s", "float", 1.0, "hopping: rhm hop interval", 0.5, 60),
    Param("hop_window_s", "float", 20.0, "hopping: measurement window per count", 2, 600,
          quick=4.0),
    Param("pings", "int", 50, "datapath: pings per defense", 5, 10000, quick=10),
    Param("iperf_s", "int", 5, "datapath: iperf3 duration per defense", 1, 120, quick=2),
    Param("scale_hosts", "int", 250, "scale: star host count recon runs on", 2, 250,
          quick=20),
    Param("linear_hosts", "int", 20, "scale: switches (one host each) of the linear chain",
          2, 250, quick=4),
    Param("burst_hosts", "int", 20, "controller: star hosts sending the burst", 3, 250,
          quick=6),
    Param("engines", "str", "ryu,os-ken", "controller: engines to compare"),
)


def parse_parts(text: str) -> list[str]:
    """``bringup,hopping`` → ['bringup', 'hopping']; ``all`` → every part, in order."""
    if text.strip() == "all":
        return list(PARTS)
    out: list[str] = []
    for item in (s.strip() for s in text.split(",")):
        if item not in PARTS:
            raise UserError(f"--parts: unknown part {item!r} (choose from "
                            f"{', '.join(PARTS)}, or all)")
        if item not in out:
            out.append(item)
    return out


def parse_counts(text: str, name: str, lo: int = 2, hi: int = 250) -> list[int]:
    """``10,50`` → [10, 50]; each in [lo, hi]; UserError naming ``name`` otherwise."""
    out: list[int] = []
    for item in (s.strip() for s in text.split(",")):
        try:
            n = int(item)
        except ValueError:
            raise UserError(f"--{name}: {item!r} is not an integer") from None
        if not lo <= n <= hi:
            raise UserError(f"--{name}: {n} is out of range ({lo}-{hi})")
        if n not in out:
            out.append(n)
    return out


def parse_engines(text: str) -> list[str]:
    engines = [s.strip() for s in text.split(",") if s.strip()]
    for e in engines:
        if e not in ("ryu", "os-ken"):
            raise UserError(f"--engines: unknown engine {e!r} (ryu, os-ken)")
    if not engines:
        raise UserError("--engines: name at least one engine")
    return engines


def conditions(cfg: dict[str, Any]) -> list[str]:
    return parse_parts(cfg["parts"])


# --- pure helpers -------------------------------------------------------------------------
def protected_star_plan(n_protected: int, n_others: int = 2) -> AddressPlan:
    """A star whose first ``n_protected`` hosts are protected PLCs, then ``n_others``
    authorized hosts, the last of which is the attacker (not authorized)."""
    base = star_plan(n_protected + n_others)
    hosts = []
    for i, h in enumerate(base.hosts):
        if i < n_protected:
            hosts.append(dataclasses.replace(h, role="plc", protected=True))
        elif h.role == "attacker":
            hosts.append(h)
        else:
            hosts.append(dataclasses.replace(h, role="hmi" if i == n_protected else "host",
                                             authorized=True))
    return dataclasses.replace(base, name="star_protected", hosts=tuple(hosts))


def cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from a ``/proc/<pid>/stat`` line."""
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def meminfo_kib(text: str, key: str = "MemAvailable") -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {key} in meminfo")


def rss_kib(status_text: str) -> int:
    m = re.search(r"^VmRSS:\s+(\d+)", status_text, re.M)
    return int(m.group(1)) if m else 0


def iperf_bps(json_text: str) -> float:
    """Received bits per second from ``iperf3 -J`` output; ValueError on an iperf error."""
    data = json.loads(json_text)
    if data.get("error"):
        raise ValueError(data["error"])
    return float(data["end"]["sum_received"]["bits_per_second"])


def burst_rate(samples: list[tuple[float, int]]) -> tuple[int, float]:
    """(flows added, seconds to the last new flow) from (t since burst start, flow count)."""
    if not samples:
        return 0, math.nan
    first = samples[0][1]
    last_count = max(c for _t, c in samples)
    t_last = next(t for t, c in samples if c == last_count)
    return last_count - first, t_last


def controller_stats(log_text: str) -> dict[str, int]:
    """The ``controller stats app=... {json}`` lines of a controller log, merged."""
    out: dict[str, int] = {}
    for m in re.finditer(r"controller stats app=\S+ (\{.*\})", log_text):
        try:
            out.update(json.loads(m.group(1)))
        except ValueError:
            continue
    return out


# --- I/O helpers --------------------------------------------------------------------------
def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def ovs_rss_kib() -> int:
    pid = _read(OVS_PID_FILE).strip()
    return rss_kib(_read(f"/proc/{pid}/status")) if pid else 0


class MemorySampler:
    """Background sampling of MemAvailable and ovs-vswitchd RSS; peak deltas from the start."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.base_avail_kib = meminfo_kib(_read("/proc/meminfo"))
        self.base_ovs_kib = ovs_rss_kib()
        self.min_avail_kib = self.base_avail_kib
        self.max_ovs_kib = self.base_ovs_kib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.min_avail_kib = min(self.min_avail_kib,
                                         meminfo_kib(_read("/proc/meminfo")))
            except ValueError:
                pass
            self.max_ovs_kib = max(self.max_ovs_kib, ovs_rss_kib())

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mem_mib(self) -> float:
        return (self.base_avail_kib - self.min_avail_kib) / 1024

    @property
    def ovs_rss_delta_mib(self) -> float:
        return (self.max_ovs_kib - self.base_ovs_kib) / 1024


def switch_prefix() -> str:
    return os.environ.get(SWITCH_PREFIX_ENV, "")


def plain_mininet_s(plan: AddressPlan, datapath: str, log_dir: Path) -> dict[str, float]:
    """Plain Mininet: build + start + stop the plan's Topo, no controller; seconds per step.

    Bridges and interfaces are recorded in a run-state file first (``experiments.clean``
    finishes the job after a crash); the network is always stopped in ``finally``.
    """
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from lab.runstate import RunState
    from lab.teardown import remove_recorded
    from topologies.base import PlanTopo

    topo = PlanTopo(plan, switch_prefix=switch_prefix())
    state = RunState.new(f"bench-plain-{os.getpid()}-{uuid.uuid4().hex[:8]}", log_dir)
    state.add_bridges(list(topo.switches()))
    state.add_interfaces(planned_interfaces(topo))
    net = None
    out: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        net = Mininet(topo=topo, switch=partial(OVSSwitch, datapath=datapath),
                      controller=None, autoSetMacs=False, autoStaticArp=False,
                      waitConnected=False, cleanup=False)
        for h in net.hosts:
            state.add_process(h.pid, f"host:{h.name}")
        out["build_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        net.start()
        out["start_s"] = time.monotonic() - t1
    finally:
        t2 = time.monotonic()
        if net is not None:
            net.stop()
        out["teardown_s"] = time.monotonic() - t2
        remove_recorded(state)
        state.remove()
    out["total_s"] = time.monotonic() - t0
    return out


@contextmanager
def _as_lab_error(part: str) -> Iterator[None]:
    """The runner records LabError as a failed run; a UserError would stop the whole run."""
    try:
        yield
    except UserError as exc:
        raise LabError(f"{part}: {exc}") from None


# --- parts --------------------------------------------------------------------------------
def part_bringup(ctx: TrialContext) -> TrialResult:
    sizes = parse_counts(ctx.config["sizes"], "sizes")
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for n in sizes:
        plan = star_plan(n)
        ours: list[float] = []
        plain: list[float] = []
        for rep in range(1, ctx.config["bringup_reps"] + 1):
            # Alternate which kind goes first, so drift in the machine's load hits both.
            order = ("plain", "ours") if rep % 2 else ("ours", "plain")
            for kind in order:
                ctx.stage(f"bring-up: star {n} hosts, {kind} (rep {rep})")
                logd = ctx.raw_dir / f"bringup_n{n}_{kind}_{rep}"
                logd.mkdir(exist_ok=True)
                if kind == "plain":
                    t = plain_mininet_s(plan, ctx.datapath, logd)
                    plain.append(t["total_s"])
                    rows.append({"n_hosts": n, "kind": kind, "rep": rep,
                                 "build_s": t["build_s"] + t["start_s"], "connect_s": 0.0,
                                 "teardown_s": t["teardown_s"], "total_s": t["total_s"]})
                else:
                    t0 = time.monotonic()
                    with running_lab(ctx.lab_config(plan=plan, app="l2",
                                                    log_dir=logd)) as lab:
                        pass
                    total = time.monotonic() - t0
                    ours.append(total)
                    rows.append({"n_hosts": n, "kind": kind, "rep": rep,
                                 "build_s": lab.timeline.get("build_s", math.nan),
                                 "connect_s": lab.timeline.get("connect_s", math.nan),
                                 "teardown_s": lab.timeline.get("teardown_s", math.nan),
                                 "total_s": total})
        o, p = summarize(ours).mean, summarize(plain).mean
        metrics[f"ours_s_n{n}"] = o
        metrics[f"plain_s_n{n}"] = p
        metrics[f"ratio_n{n}"] = o / p
    return TrialResult(tables={"bringup": rows}, metrics=metrics)


def setup_check_s() -> float:
    """What ``make run`` does before recon when everything is installed: dpkg-query of the
    Makefile's packages, then ``ovs-vsctl show`` (seconds)."""
    text = _read(REPO / "Makefile")
    m = re.search(r"^APT_PACKAGES := (.*?)(?<!\\)$", text, re.M | re.S)
    pkgs = m.group(1).replace("\\\n", " ").split() if m else []
    t0 = time.monotonic()
    for p in pkgs:
        subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                       timeout=30, check=False)
    subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, timeout=10,
                   check=False)
    return time.monotonic() - t0


def part_recon_wall(ctx: TrialContext) -> TrialResult:
    from experiments import recon
    from experiments.runner import run_experiment
    from experiments.spec import resolve_config

    rcfg = resolve_config(recon.EXPERIMENT, None, {
        "trials": ctx.config["recon_trials"], "seed": ctx.seed,
        "engine": ctx.engine, "datapath": ctx.datapath})
    ctx.stage(f"default recon, {rcfg['trials']} trial(s), in-process")
    setup_s = setup_check_s()
    t0 = time.monotonic()
    outcome = run_experiment(recon.EXPERIMENT, rcfg, ctx.raw_dir / "recon",
                             ["bench", "recon_wall"])
    wall_s = time.monotonic() - t0
    if outcome.failed:
        raise LabError(f"recon: {outcome.failed} run(s) failed: "
                       f"{outcome.summary['failures'][:1]}")
    manifest = json.loads((outcome.bundle / "manifest.json").read_text())
    scans: dict[tuple[str, str], float] = defaultdict(float)
    for r in read_csv(outcome.bundle / "metrics.csv"):
        if r["metric"] in ("discovery_s", "port_scan_s") and r["value"]:
            scans[(r["trial"], r.get("condition", ""))] += float(r["value"])
    stages: dict[str, float] = defaultdict(float)
    for t in manifest["trials"]:
        tl = t.get("timeline", {})
        scan = scans.get((str(t["trial"]), t.get("condition", "")), 0.0)
        known = tl.get("build_s", 0.0) + tl.get("connect_s", 0.0) + tl.get("teardown_s", 0.0)
        stages["build"] += tl.get("build_s", 0.0)
        stages["connect"] += tl.get("connect_s", 0.0)
        stages["scans"] += scan
        stages["teardown"] += tl.get("teardown_s", 0.0)
        stages["rest_of_trial"] += max(0.0, t["duration_s"] - known - scan)
    stages["plots_report_setup"] = max(0.0, wall_s - sum(stages.values()))
    rows = [{"stage": k, "duration_s": v} for k, v in stages.items()]
    rows.append({"stage": "make_setup_check", "duration_s": setup_s})
    metrics = {f"{k}_s": v for k, v in stages.items()}
    metrics.update(recon_wall_s=wall_s, make_setup_check_s=setup_s,
                   make_run_s=wall_s + setup_s, recon_runs=float(len(manifest["trials"])))
    return TrialResult(tables={"recon_wall": rows}, metrics=metrics)


def part_hopping(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    counts = parse_counts(cfg["protected"], "protected", 1, 200)
    clk_tck = os.sysconf("SC_CLK_TCK")
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for k in counts:
        plan = protected_star_plan(k)
        raw = ctx.raw_dir / f"protected_{k}"
        raw.mkdir(exist_ok=True)
        plan_path = raw / "plan.json"
        plan.save(plan_path)
        settings = mtd.DefenseSettings("rhm", hop_interval_s=cfg["hop_interval_s"],
                                       seed=ctx.seed, flow_idle_s=2)
        app, cargs, hop_logs = mtd.controller_setup(settings, plan_path, raw)
        ctx.stage(f"hopping: {k} protected host(s), {cfg['hop_window_s']:g} s window")
        with running_lab(ctx.lab_config(plan=plan, app=app, controller_args=cargs,
                                        log_dir=raw)) as lab:
            running = mtd.start_defense(lab, settings, plan_path, raw, hop_logs)
            assert lab.controller is not None
            stat = Path(f"/proc/{lab.controller.pid}/stat")
            c0, w0 = cpu_ticks(stat.read_text()), time.monotonic()
            t_start = time.time()
            time.sleep(cfg["hop_window_s"])
            c1, w1 = cpu_ticks(stat.read_text()), time.monotonic()
            lab.check_healthy()
        hops = [h for h in running.hops() if float(h.get("time_unix_s", 0)) >= t_start]
        lat = mtd.hop_latencies_ms(hops)
        if not lat:
            raise LabError(f"hopping: no hop with a latency in {cfg['hop_window_s']:g} s "
                           f"({k} protected)")
        cpu_pct = 100.0 * (c1 - c0) / clk_tck / (w1 - w0)
        rows.extend({"protected": k, "host": h.get("host"),
                     "latency_ms": h.get("decision_to_flows_ms")}
                    for h in hops if h.get("old_virtual") is not None)
        metrics[f"hop_p50_ms_p{k}"] = percentile(lat, 50)
        metrics[f"hop_p95_ms_p{k}"] = percentile(lat, 95)
        metrics[f"hops_p{k}"] = float(len(lat))
        metrics[f"ctrl_cpu_pct_p{k}"] = cpu_pct
    return TrialResult(tables={"hop_latency": rows}, metrics=metrics)


def _iperf(lab: Any, server: str, client: str, ip: str, seconds: int, raw: Path) -> float:
    """Throughput (bit/s) client → server with iperf3, both inside their hosts."""
    # No ``-1``: a one-off server exits after a client that failed half-way, and every
    # retry is then refused; the lab stops it instead.
    log_name = f"iperf3_server_{server}.log"
    srv = lab.popen(server, ["iperf3", "-s", "--forceflush", "-p", str(IPERF_PORT)],
                    log_name, what="iperf3")
    try:
        lab.wait_for_log(log_name, "Server listening", 10.0, srv)
        out = ""
        for _attempt in range(5):  # bounded retries of a failed client
            res = lab.run(client, ["iperf3", "-c", ip, "-p", str(IPERF_PORT), "-t",
                                   str(seconds), "-J"], timeout_s=seconds + 15)
            out = res.stdout
            if res.returncode == 0:
                break
            time.sleep(0.2)
        (raw / f"iperf3_{client}_{server}.json").write_text(out)
        try:
            return iperf_bps(out)
        except (ValueError, KeyError) as exc:
            raise LabError(f"iperf3 {client}→{server}: {exc}") from None
    finally:
        lab.stop(srv, grace_s=2.0)


def part_datapath(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    plan = ics_plan()
    src = plan.hosts_with_role("hmi")[0]
    dst = plan.hosts_with_role("plc")[0]
    rtt_rows: list[dict[str, Any]] = []
    tput_rows: list[dict[str, Any]] = []
    med: dict[str, float] = {}
    metrics: dict[str, float] = {}
    for defense in ("none", "rhm"):
        raw = ctx.raw_dir / defense
        raw.mkdir(exist_ok=True)
        plan_path = raw / "plan.json"
        plan.save(plan_path)
        settings = mtd.DefenseSettings(defense, hop_interval_s=2.0, seed=ctx.seed)
        app, cargs, hop_logs = mtd.controller_setup(settings, plan_path, raw)
        ctx.stage(f"data path under {defense}: ping and iperf3 {src.name}→{dst.name}")
        with running_lab(ctx.lab_config(plan=plan, app=app, controller_args=cargs,
                                        log_dir=raw)) as lab:
            mtd.start_defense(lab, settings, plan_path, raw, hop_logs)
            out = lab.run(src.name, ["ping", "-n", "-c", str(cfg["pings"]), "-i", "0.05",
                                     "-W", "1", dst.ip],
                          timeout_s=cfg["pings"] * 0.1 + 20).stdout
            (raw / "ping.txt").write_text(out)
            try:
                rtts = [(q, r) for q, r in parse_ping(out).rtts_ms]
            except ParseError as exc:
                raise LabError(f"ping {src.name}→{dst.name} under {defense}: {exc}") from None
            bps = _iperf(lab, dst.name, src.name, dst.ip, cfg["iperf_s"], raw)
            lab.check_healthy()
        steady = [r for q, r in rtts if q > 1] or [r for _q, r in rtts]
        rtt_rows.extend({"defense": defense, "seq": q, "rtt_ms": r} for q, r in rtts)
        tput_rows.append({"defense": defense, "throughput_mbps": bps / 1e6})
        med[defense] = percentile(steady, 50)
        metrics[f"rtt_p50_ms_{defense}"] = med[defense]
        metrics[f"rtt_p95_ms_{defense}"] = percentile(steady, 95)
        metrics[f"throughput_mbps_{defense}"] = bps / 1e6
    metrics["rtt_p50_ratio_rhm_none"] = med["rhm"] / med["none"]
    metrics["throughput_ratio_rhm_none"] = (metrics["throughput_mbps_rhm"]
                                            / metrics["throughput_mbps_none"])
    return TrialResult(tables={"rtt": rtt_rows, "throughput": tput_rows}, metrics=metrics)


def _recon_on(ctx: TrialContext, plan: AddressPlan, label: str) -> dict[str, float]:
    """Run recon's trial (defense none) in-process on ``plan``; time and memory."""
    from experiments import recon
    from experiments.spec import resolve_config

    rcfg = resolve_config(recon.EXPERIMENT, None, {"topo": plan.name, "n_hosts":
                                                   len(plan.hosts), "seed": ctx.seed})
    raw = ctx.raw_dir / label
    raw.mkdir(exist_ok=True)
    rctx = TrialContext(exp=recon.EXPERIMENT, config=rcfg, trial=ctx.trial, seed=ctx.seed,
                        raw_dir=raw, plan=plan, engine=ctx.engine, datapath=ctx.datapath,
                        progress=ctx.progress, condition="none")
    ctx.stage(f"scale: recon on {label}")
    t0 = time.monotonic()
    with MemorySampler() as mem:
        res = recon.trial(rctx)
    wall = time.monotonic() - t0
    ok = all(res.validity.values())
    return {"wall_s": wall, "completed": float(ok),
            "host_recall": res.metrics.get("host_recall", math.nan),
            "build_s": res.timeline.get("build_s", math.nan),
            "connect_s": res.timeline.get("connect_s", math.nan),
            "teardown_s": res.timeline.get("teardown_s", math.nan),
            "discovery_s": res.metrics.get("discovery_s", math.nan),
            "mem_available_drop_mib": mem.peak_mem_mib,
            "ovs_rss_delta_mib": mem.ovs_rss_delta_mib}


def part_scale(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for label, plan in ((f"star{cfg['scale_hosts']}", star_plan(cfg["scale_hosts"])),
                        (f"linear{cfg['linear_hosts']}", linear_plan(cfg["linear_hosts"]))):
        r = _recon_on(ctx, plan, label)
        rows.append({"topology": label, "hosts": len(plan.hosts),
                     "switches": len(plan.switches), **r})
        kind = "star" if label.startswith("star") else "linear"
        for key in ("wall_s", "completed", "host_recall", "mem_available_drop_mib",
                    "ovs_rss_delta_mib", "build_s"):
            if not math.isnan(r[key]):
                metrics[f"{kind}_{key}"] = r[key]
    return TrialResult(tables={"scale": rows}, metrics=metrics)


_BURST = """
import socket, sys, time
ips = sys.argv[1:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _round in range(3):
    for ip in ips:
        try:
            s.sendto(b"x", (ip, 9))
        except OSError:
            pass
    time.sleep(0.2)
"""


def _flow_count(bridge: str) -> int:
    res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                         capture_output=True, text=True, timeout=10, check=False)
    return sum(1 for ln in res.stdout.splitlines() if "actions=" in ln)


def part_controller(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    plan = star_plan(cfg["burst_hosts"])
    bridge = switch_prefix() + plan.switches[0].name
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for engine in parse_engines(cfg["engines"]):
        raw = ctx.raw_dir / engine
        raw.mkdir(exist_ok=True)
        ctx.stage(f"controller burst: {engine}, {len(plan.hosts)} hosts")
        with running_lab(ctx.lab_config(plan=plan, app="l2", engine=engine,
                                        log_dir=raw)) as lab:
            base = _flow_count(bridge)
            procs = []
            t0 = time.monotonic()
            for h in plan.hosts:
                others = [o.ip for o in plan.hosts if o.name != h.name]
                procs.append(lab.popen(h.name, [sys.executable, "-c", _BURST, *others],
                                       f"burst_{h.name}.log", what="burst"))
            samples: list[tuple[float, int]] = [(0.0, base)]
            stable_since = time.monotonic()
            deadline = t0 + 30.0
            while time.monotonic() < deadline:
                count = _flow_count(bridge)
                now = time.monotonic()
                if count != samples[-1][1]:
                    stable_since = now
                samples.append((now - t0, count))
                done = all(p.poll() is not None for p in procs)
                if done and now - stable_since > 1.0:
                    break
                time.sleep(0.05)
            for p in procs:
                lab.stop(p, grace_s=1.0)
            lab.check_healthy()
        added, t_last = burst_rate(samples)
        stats = controller_stats(_read(raw / "controller.log"))
        rows.extend({"engine": engine, "t_s": t, "flows": c} for t, c in samples)
        if added <= 0 or not t_last > 0:
            raise LabError(f"controller burst ({engine}): no flow installed")
        metrics[f"flows_per_s_{engine}"] = added / t_last
        metrics[f"flows_added_{engine}"] = float(added)
        metrics[f"burst_s_{engine}"] = t_last
        if "packet_ins" in stats:
            metrics[f"packet_ins_{engine}"] = float(stats["packet_ins"])
            metrics[f"packet_ins_per_s_{engine}"] = stats["packet_ins"] / t_last
    return TrialResult(tables={"controller_burst": rows}, metrics=metrics)


PART_FUNCS: dict[str, Callable[[TrialContext], TrialResult]] = {
    "bringup": part_bringup,
    "recon_wall": part_recon_wall,
    "hopping": part_hopping,
    "datapath": part_datapath,
    "scale": part_scale,
    "controller": part_controller,
}


def trial(ctx: TrialContext) -> TrialResult:
    part = ctx.condition or "bringup"
    with _as_lab_error(part):
        return PART_FUNCS[part](ctx)


# --- plots --------------------------------------------------------------------------------
def _mean_by(rows: list[dict[str, str]], key: str, value: str,
             where: Callable[[dict[str, str]], bool] = lambda r: True
             ) -> dict[str, tuple[float, float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if where(r) and r.get(value):
            groups[r[key]].append(float(r[value]))
    out = {}
    for k, xs in groups.items():
        s = summarize(xs)
        out[k] = (s.mean, 0.0 if math.isnan(s.ci95) else s.ci95)
    return out


def plot(bundle: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    path = bundle / "bringup.csv"
    if path.exists():
        rows = read_csv(path)
        fig, ax = plotting.figure()
        for kind, label in (("ours", "SDN-ICS lab (controller, connected)"),
                            ("plain", "plain Mininet (no controller)")):
            m = _mean_by(rows, "n_hosts", "total_s", lambda r, k=kind: r["kind"] == k)
            ns = sorted(m, key=int)
            ax.errorbar([int(n) for n in ns], [m[n][0] for n in ns],
                        yerr=[m[n][1] for n in ns], marker="o", capsize=3, label=label)
        ax.set_xlabel("hosts in the star")
        ax.set_ylabel("build + teardown (s), mean ± 95% CI")
        ax.set_title("Bring-up and teardown: ours vs plain Mininet")
        ax.legend(fontsize=8)
        out.append((plotting.save(fig, bundle, "bringup"),
                    "Seconds to build and tear down a star of N hosts, through the lab "
                    "lifecycle and with plain Mininet, on the same datapath."))
    path = bundle / "recon_wall.csv"
    if path.exists():
        m = _mean_by(read_csv(path), "stage", "duration_s")
        fig, ax = plotting.figure()
        names = list(m)
        ax.bar(names, [m[n][0] for n in names], yerr=[m[n][1] for n in names], capsize=3,
               color="#4477aa")
        ax.set_ylabel("seconds (summed over the recon run)")
        ax.set_title("Where the default recon's wall time goes")
        ax.tick_params(axis="x", labelsize=7)
        out.append((plotting.save(fig, bundle, "recon_wall"),
                    "Wall time of the default recon by stage, summed over its trials and "
                    "defenses; plots/report/setup is what the runner spends outside trials."))
    path = bundle / "hop_latency.csv"
    if path.exists():
        rows = read_csv(path)
        by: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            if r["latency_ms"]:
                by[int(r["protected"])].append(float(r["latency_ms"]))
        if by:
            fig, ax = plotting.figure()
            for k in sorted(by):
                xs, ys = plotting.cdf(by[k])
                ax.step(xs, ys, where="post", label=f"{k} protected")
            ax.set_xlabel("hop latency, decision to flows in place (ms)")
            ax.set_ylabel("CDF")
            ax.set_title("rhm hop latency by protected-host count")
            ax.legend(fontsize=8)
            out.append((plotting.save(fig, bundle, "hop_latency"),
                        "CDF of rhm hop latency (decision to flows in place) per "
                        "protected-host count."))
    path = bundle / "rtt.csv"
    if path.exists():
        rows = [r for r in read_csv(path) if r["seq"] != "1"]
        fig, ax = plotting.figure()
        for d in ("none", "rhm"):
            xs = [float(r["rtt_ms"]) for r in rows if r["defense"] == d and r["rtt_ms"]]
            if xs:
                cx, cy = plotting.cdf(xs)
                ax.step(cx, cy, where="post", label=d, color=plotting.color(d))
        ax.set_xlabel("RTT HMI → PLC 1 (ms), first ping excluded")
        ax.set_ylabel("CDF")
        ax.set_title("Data-path overhead of rhm")
        ax.legend(fontsize=8, title="defense")
        out.append((plotting.save(fig, bundle, "rtt_overhead"),
                    "RTT between authorized hosts with and without rhm."))
    path = bundle / "controller_burst.csv"
    if path.exists():
        rows = read_csv(path)
        fig, ax = plotting.figure()
        for eng in sorted({r["engine"] for r in rows}):
            for tr in sorted({r["trial"] for r in rows if r["engine"] == eng}, key=int):
                pts = [(float(r["t_s"]), int(r["flows"])) for r in rows
                       if r["engine"] == eng and r["trial"] == tr]
                ax.plot([p[0] for p in pts], [p[1] for p in pts],
                        label=eng if tr == "1" else None, color=plotting.color(eng))
        ax.set_xlabel("time since the burst started (s)")
        ax.set_ylabel("flows in the switch")
        ax.set_title("Flow set-up under a burst of new flows")
        ax.legend(fontsize=8, title="engine")
        out.append((plotting.save(fig, bundle, "controller_burst"),
                    "Flows in the switch over time while every host sends to every other, "
                    "per controller engine."))
    return out


EXPERIMENT = Experiment(
    name="bench",
    description="benchmarks: bring-up vs plain Mininet, recon wall time, hop latency, "
                "data-path overhead, scale, controller flow set-up rate",
    params=PARAMS,
    trial=trial,
    plot=plot,
    needs_nmap=True,
    conditions=conditions,
)


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.bench [options]`` = ``python -m experiments.run bench ...``."""
    from experiments import run

    return run.main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
