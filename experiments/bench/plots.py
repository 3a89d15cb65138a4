"""The benchmark's figures, drawn from the bundle's CSVs only (``experiments.plot`` redraws)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from experiments.bench.memory import fit_line
from experiments.figures import cdf_figure, finish
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import summarize


def _mean_by(rows: list[dict[str, str]], key: str, value: str,
             where: Callable[[dict[str, str]], bool] = lambda r: True
             ) -> dict[str, tuple[float, float]]:
    """{``key`` value: (mean, 95% CI half-width or 0)} of the ``value`` column."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if where(r) and r.get(value):
            groups[r[key]].append(float(r[value]))
    out = {}
    for k, xs in groups.items():
        s = summarize(xs)
        out[k] = (s.mean, 0.0 if math.isnan(s.ci95) else s.ci95)
    return out


def _plot_bringup(bundle: Path, rows: list[dict[str, str]]) -> tuple[str, str]:
    fig, ax = plotting.figure()
    for kind, label in (("ours", "SDN-ICS lab (controller, connected)"),
                        ("plain", "plain Mininet (no controller)")):
        m = _mean_by(rows, "n_hosts", "total_s", lambda r, k=kind: r["kind"] == k)
        ns = sorted(m, key=int)
        ax.errorbar([int(n) for n in ns], [m[n][0] for n in ns],
                    yerr=[m[n][1] for n in ns], marker="o", capsize=3, label=label)
    return finish(fig, bundle, "bringup", "Seconds to build and tear down a star of N hosts, "
                  "through the lab lifecycle and with plain Mininet, on the same datapath.",
                  ax, xlabel="hosts in the star", ylabel="build + teardown (s), mean ± 95% CI",
                  title="Bring-up and teardown: ours vs plain Mininet", legend={"fontsize": 8})


def _plot_recon_wall(bundle: Path, rows: list[dict[str, str]]) -> tuple[str, str]:
    m = _mean_by(rows, "stage", "duration_s")
    fig, ax = plotting.figure()
    names = list(m)
    ax.bar(names, [m[n][0] for n in names], yerr=[m[n][1] for n in names], capsize=3,
           color="#4477aa")
    ax.tick_params(axis="x", labelsize=7)
    return finish(fig, bundle, "recon_wall", "Wall time of the default recon by stage, summed "
                  "over its trials and defenses; plots/report/setup is what the runner spends "
                  "outside trials.", ax, ylabel="seconds (summed over the recon run)",
                  title="Where the default recon's wall time goes")


def _plot_hop_latency(bundle: Path, rows: list[dict[str, str]]) -> tuple[str, str] | None:
    by: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        if r["latency_ms"]:
            by[int(r["protected"])].append(float(r["latency_ms"]))
    if not by:
        return None
    return cdf_figure(bundle, "hop_latency", "CDF of rhm hop latency (decision to flows in "
                      "place) per protected-host count.",
                      [(f"{k} protected", by[k], None) for k in sorted(by)],
                      xlabel="hop latency, decision to flows in place (ms)",
                      title="rhm hop latency by protected-host count")


def _plot_rtt(bundle: Path, rows: list[dict[str, str]]) -> tuple[str, str]:
    steady = [r for r in rows if r["seq"] != "1"]
    curves = []
    for d in ("none", "rhm"):
        xs = [float(r["rtt_ms"]) for r in steady if r["defense"] == d and r["rtt_ms"]]
        if xs:
            curves.append((d, xs, plotting.color(d)))
    return cdf_figure(bundle, "rtt_overhead", "RTT between authorized hosts with and without "
                      "rhm.", curves, xlabel="RTT HMI → PLC 1 (ms), first ping excluded",
                      title="Data-path overhead of rhm",
                      legend={"fontsize": 8, "title": "defense"})


def _plot_controller_burst(bundle: Path, rows: list[dict[str, str]]) -> tuple[str, str]:
    fig, ax = plotting.figure()
    for eng in sorted({r["engine"] for r in rows}):
        for tr in sorted({r["trial"] for r in rows if r["engine"] == eng}, key=int):
            pts = [(float(r["t_s"]), int(r["flows"])) for r in rows
                   if r["engine"] == eng and r["trial"] == tr]
            ax.plot([p[0] for p in pts], [p[1] for p in pts],
                    label=eng if tr == "1" else None, color=plotting.color(eng))
    return finish(fig, bundle, "controller_burst", "Flows in the switch over time while every "
                  "host sends to every other, per controller engine.", ax,
                  xlabel="time since the burst started (s)", ylabel="flows in the switch",
                  title="Flow set-up under a burst of new flows",
                  legend={"fontsize": 8, "title": "engine"})


def _plot_memory(bundle: Path, rows: list[dict[str, str]]) -> tuple[str, str]:
    fig, ax = plotting.figure()
    ns = [int(r["n_hosts"]) for r in rows]
    for col, label in (("mem_available_drop_mib", "MemAvailable drop (machine)"),
                       ("ovs_rss_mib", "ovs-vswitchd RSS growth"),
                       ("shells_pss_mib", "node shells (PSS)"),
                       ("controller_rss_mib", "controller RSS")):
        ys = [float(r[col]) for r in rows]
        ax.plot(ns, ys, marker="o", label=label)
        if len(set(ns)) >= 2:
            slope, icpt = fit_line([float(n) for n in ns], ys)
            ax.plot([min(ns), max(ns)], [icpt + slope * x for x in (min(ns), max(ns))],
                    linestyle=":", color=ax.lines[-1].get_color())
            ax.lines[-2].set_label(f"{label}: {slope * 1024:.0f} KiB/host")
    return finish(fig, bundle, "memory", "Memory of an idle lab against its host count; the "
                  "legend gives each line's slope, the memory per host.", ax,
                  xlabel="hosts in the star", ylabel="MiB",
                  title="Memory against network size (dotted: least-squares line)",
                  legend={"fontsize": 8})


_PLOTS: tuple[tuple[str, Callable[[Path, list[dict[str, str]]], tuple[str, str] | None]],
              ...] = (
    ("bringup.csv", _plot_bringup),
    ("recon_wall.csv", _plot_recon_wall),
    ("hop_latency.csv", _plot_hop_latency),
    ("rtt.csv", _plot_rtt),
    ("controller_burst.csv", _plot_controller_burst),
    ("memory.csv", _plot_memory),
)


def plot(bundle: Path) -> list[tuple[str, str]]:
    """Draw each figure whose CSV the bundle has; (stem, caption) per figure, in order."""
    out: list[tuple[str, str]] = []
    for csv_name, draw in _PLOTS:
        path = bundle / csv_name
        if path.exists():
            fig = draw(bundle, read_csv(path))
            if fig is not None:
                out.append(fig)
    return out
