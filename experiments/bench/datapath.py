"""``datapath``: RTT (median, p95) and iperf3 throughput between the HMI and PLC 1 of the ICS
plan, under ``none`` (l2) and ``rhm``; ratios rhm/none."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common.errors import LabError
from common.plan import ics_plan
from experiments import mtd
from experiments.parsers import ParseError, parse_ping
from experiments.runner import TrialContext
from experiments.spec import TrialResult
from lab.lifecycle import Lab, running_lab
from reporting.stats import percentile

IPERF_PORT = 5201


def iperf_bps(json_text: str) -> float:
    """Received bits per second from ``iperf3 -J`` output; ValueError on an iperf error."""
    data = json.loads(json_text)
    if data.get("error"):
        raise ValueError(data["error"])
    return float(data["end"]["sum_received"]["bits_per_second"])


def _iperf(lab: Lab, server: str, client: str, ip: str, seconds: int, raw: Path) -> float:
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
    """Ping RTTs and iperf3 throughput HMI → PLC 1 under each defense."""
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
