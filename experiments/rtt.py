"""``rtt``: the classic ``h1 ping h2``, measured.

N pings between chosen host pairs, run inside the source host's namespace; RTT
min/avg/max/mdev and loss per pair; a CDF plot of all RTTs. The first reply of each pair also
pays for ARP and the controller's flow set-up, so it is reported separately
(``first_rtt_ms``) from the steady state (``rtt_p50_ms`` over replies 2..N).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from common.errors import LabError, UserError
from common.plan import AddressPlan
from experiments.figures import cdf_figure
from experiments.parsers import ParseError, parse_ping
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.devices import hmi_results, start_ics, stop_hmi
from lab.lifecycle import running_lab
from reporting.bundle import read_csv
from reporting.stats import percentile

DEFAULT_PAIRS = {
    "ics": "hmi:plc1,hmi:plc2,ews:historian",
    "classic": "h1:h2,h1:h4",
}


def parse_pairs(text: str, plan: AddressPlan) -> list[tuple[str, str]]:
    """``a:b,c:d`` → [(a, b), (c, d)]; ``auto`` → the topology's default pairs."""
    if text == "auto":
        if plan.name in DEFAULT_PAIRS:
            text = DEFAULT_PAIRS[plan.name]
        else:
            first, second, last = plan.hosts[0].name, plan.hosts[1].name, plan.hosts[-1].name
            text = f"{first}:{second},{first}:{last}"
    pairs = []
    names = {h.name for h in plan.hosts}
    for item in text.split(","):
        src, sep, dst = item.strip().partition(":")
        if not sep or not src or not dst:
            raise UserError(f"--pairs: {item.strip()!r} is not SRC:DST")
        for n in (src, dst):
            if n not in names:
                raise UserError(f"--pairs: no host {n!r} in topology {plan.name} "
                                f"(hosts: {', '.join(sorted(names))})")
        if src == dst:
            raise UserError(f"--pairs: {item.strip()!r} pings a host from itself")
        pairs.append((src, dst))
    return pairs


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """The pairs name hosts of the topology (before anything is created)."""
    parse_pairs(cfg["pairs"], plan)


PARAMS = (
    Param("pairs", "str", "auto", "host pairs SRC:DST,... (auto: HMI to each PLC and a "
          "same-switch pair on ics)"),
    Param("count", "int", 20, "pings per pair", 1, 10000, quick=5),
    Param("interval_s", "float", 0.2, "seconds between pings (>= 0.002 as root)", 0.002, 60),
    Param("timeout_s", "float", 1.0, "seconds to wait for each reply", 0.1, 60),
)


def trial(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    pairs = parse_pairs(cfg["pairs"], ctx.plan)
    samples: list[dict] = []
    per_pair: list[dict] = []
    metrics: dict[str, float] = {}
    ctx.stage("building the network")
    with running_lab(ctx.lab_config()) as lab:
        # The ICS runs (PLCs polled by the HMI) while we ping, as it would in a plant.
        ics = start_ics(lab, ctx.raw_dir) if ctx.plan.hosts_with_role("plc") else None
        for src, dst in pairs:
            ctx.stage(f"ping {src} -> {dst}")
            dst_ip = ctx.plan.host(dst).ip
            cmd = ["ping", "-n", "-c", str(cfg["count"]), "-i", f"{cfg['interval_s']:g}",
                   "-W", f"{cfg['timeout_s']:g}", dst_ip]
            bound_s = cfg["count"] * (cfg["interval_s"] + cfg["timeout_s"]) + 10
            out = lab.run(src, cmd, timeout_s=bound_s).stdout
            (ctx.raw_dir / f"ping_{src}_{dst}.txt").write_text(f"$ {' '.join(cmd)}\n{out}")
            try:
                res = parse_ping(out)
            except ParseError as exc:
                raise LabError(f"ping {src}->{dst}: {exc}") from None
            for seq, rtt in res.rtts_ms:
                samples.append({"src": src, "dst": dst, "seq": seq, "rtt_ms": rtt})
            steady = [r for s, r in res.rtts_ms if s > 1]
            first = [r for s, r in res.rtts_ms if s == 1]
            per_pair.append({
                "src": src, "dst": dst, "transmitted": res.transmitted,
                "received": res.received, "loss_pct": res.loss_pct,
                "rtt_min_ms": res.rtt_min_ms, "rtt_avg_ms": res.rtt_avg_ms,
                "rtt_max_ms": res.rtt_max_ms, "rtt_mdev_ms": res.rtt_mdev_ms,
                "first_rtt_ms": first[0] if first else None,
                "rtt_p50_ms": percentile(steady, 50) if steady else None,
            })
        hmi_rows, hmi_metrics = hmi_results(stop_hmi(lab, ics)) if ics else ([], {})
        lab.check_healthy()
    all_rtts = [s["rtt_ms"] for s in samples]
    tx = sum(p["transmitted"] for p in per_pair)
    rx = sum(p["received"] for p in per_pair)
    metrics["loss_pct"] = 100.0 * (tx - rx) / tx if tx else 100.0
    if all_rtts:
        steady = [s["rtt_ms"] for s in samples if s["seq"] > 1] or all_rtts
        metrics["rtt_avg_ms"] = sum(all_rtts) / len(all_rtts)
        metrics["rtt_p50_ms"] = percentile(steady, 50)
        metrics["rtt_p95_ms"] = percentile(steady, 95)
        firsts = [p["first_rtt_ms"] for p in per_pair if p["first_rtt_ms"] is not None]
        if firsts:
            metrics["first_rtt_ms"] = sum(firsts) / len(firsts)
    metrics.update(hmi_metrics)
    return TrialResult(tables={"rtt_samples": samples, "ping_pairs": per_pair, "hmi": hmi_rows},
                       metrics=metrics, timeline=dict(lab.timeline))


def plot(bundle: Path) -> list[tuple[str, str]]:
    rows = read_csv(bundle / "rtt_samples.csv")
    by_pair: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_pair[f"{r['src']} → {r['dst']}"].append(float(r["rtt_ms"]))
    return [cdf_figure(
        bundle, "rtt_cdf", "CDF of ICMP round-trip times per host pair, all trials pooled; the "
        "long tail is the first packet of each pair (ARP and controller flow set-up).",
        [(f"{label} (n={len(values)})", values, None)
         for label, values in sorted(by_pair.items())],
        xlabel="round-trip time (ms, log scale)", ylabel="cumulative fraction of replies",
        title="RTT distribution per host pair (all trials)", log_x=True,
        legend={"loc": "lower right", "fontsize": 8})]


EXPERIMENT = Experiment.from_module(
    __name__, "rtt",
    "ping between host pairs: RTT min/avg/max/mdev and loss, RTT CDF")
