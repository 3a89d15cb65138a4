"""The benchmark's pure parts: option parsing, the protected star, /proc and tool parsers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from common.errors import UserError
from common.plan import star_plan
from experiments import bench
from experiments.bench import bringup, shared
from experiments.bench.controller import burst_rate, controller_stats
from experiments.bench.datapath import iperf_bps
from experiments.bench.hopping import protected_star_plan
from experiments.bench.memory import fit_line, pss_kib
from experiments.bench.plots import plot
from experiments.bench.scale import meminfo_kib, rss_kib
from experiments.bench.trial_stages import stage_durations
from experiments.registry import get_experiment
from experiments.spec import resolve_config
from lab import clean, network, runstate
from lab.fidelity import process_cpu_ticks


def test_registered_and_quick_is_small() -> None:
    exp = get_experiment("bench")
    cfg = resolve_config(exp, None, {}, quick=True)
    assert shared.parse_counts(cfg["sizes"], "sizes") == [10, 20]
    assert shared.parse_counts(cfg["protected"], "protected", 1) == [2]
    assert exp.conditions is not None and exp.conditions(cfg) == list(bench.PARTS)


def test_parts_and_counts_refuse_bad_values() -> None:
    assert shared.parse_parts("hopping,bringup,hopping") == ["hopping", "bringup"]
    assert shared.parse_parts("all") == list(bench.PARTS)
    with pytest.raises(UserError, match="unknown part 'boot'"):
        shared.parse_parts("boot")
    with pytest.raises(UserError, match="out of range"):
        shared.parse_counts("10,1001", "sizes")
    with pytest.raises(UserError, match="not an integer"):
        shared.parse_counts("ten", "sizes")
    with pytest.raises(UserError, match="unknown engine"):
        shared.parse_engines("pox")


@pytest.mark.parametrize("k", [2, 10, 50])
def test_protected_star_plan(k: int) -> None:
    plan = protected_star_plan(k)
    assert len(plan.protected) == k
    assert plan.attacker is not None and not plan.attacker.authorized
    assert [h.name for h in plan.hosts if h.authorized] == [f"h{k + 1}"]
    assert plan.hosts_with_role("hmi")[0].name == f"h{k + 1}"
    # rhm needs more virtual addresses than protected hosts
    assert len(plan.virtual_pool) > k
    assert not set(plan.virtual_pool) & {h.ip for h in plan.hosts}


def test_proc_parsers() -> None:
    stat = "1234 (python -m (x)) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0"
    assert process_cpu_ticks(stat) == 175
    assert meminfo_kib("MemTotal: 100 kB\nMemAvailable:   2048 kB\n") == 2048
    with pytest.raises(ValueError):
        meminfo_kib("MemTotal: 100 kB\n")
    assert rss_kib("Name: x\nVmRSS:\t  5120 kB\n") == 5120
    assert rss_kib("Name: kthread\n") == 0


def test_iperf_and_stats_parsers() -> None:
    ok = json.dumps({"end": {"sum_received": {"bits_per_second": 1.5e9}}})
    assert iperf_bps(ok) == 1.5e9
    with pytest.raises(ValueError, match="refused"):
        iperf_bps(json.dumps({"error": "unable to connect: Connection refused"}))
    log = ("x controller stats app=l2 {\"packet_ins\": 40, \"flows_installed\": 30}\n"
           "y controller stats app=det {\"handler_exceptions\": 0}\n")
    assert controller_stats(log) == {"packet_ins": 40, "flows_installed": 30,
                                           "handler_exceptions": 0}


def test_burst_rate() -> None:
    samples = [(0.0, 1), (0.1, 5), (0.3, 21), (0.5, 21), (0.9, 21)]
    assert burst_rate(samples) == (20, 0.3)
    added, t = burst_rate([])
    assert added == 0 and math.isnan(t)


def test_plot_reads_only_csvs(tmp_path) -> None:
    (tmp_path / "bringup.csv").write_text(
        "trial,condition,n_hosts,kind,rep,build_s,connect_s,teardown_s,total_s\n"
        "1,bringup,10,ours,1,1,0.1,0.5,1.6\n1,bringup,10,plain,1,1,0,0.4,1.4\n"
        "1,bringup,20,ours,1,2,0.1,0.9,3.0\n1,bringup,20,plain,1,2,0,0.8,2.8\n")
    (tmp_path / "hop_latency.csv").write_text(
        "trial,condition,protected,host,latency_ms\n1,hopping,2,h1,3.5\n1,hopping,2,h2,4.0\n")
    stems = [s for s, _c in plot(tmp_path)]
    assert stems == ["bringup", "hop_latency"]
    assert (tmp_path / "bringup.png").is_file() and (tmp_path / "hop_latency.svg").is_file()


class _Node:
    def __init__(self, name: str, pid: int) -> None:
        self.name, self.pid = name, pid


def test_interrupted_plain_bringup_leaves_what_clean_removes(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    """Plain Mininet killed mid-start: its record names the bridge, the switch ports and every
    node's shell (hosts and switches), and ``experiments.clean --dry-run`` lists them."""
    state_dir = tmp_path / "state"
    monkeypatch.setattr(runstate, "STATE_DIR", state_dir)
    monkeypatch.setattr(network, "existing_bridges", set)
    monkeypatch.setattr(network, "interface_exists", lambda _name: False)
    monkeypatch.delenv(network.SWITCH_PREFIX_ENV, raising=False)
    # A crash skips the finally: keep the record as it stood when start() died, and never
    # let the test signal the made-up pids below.
    monkeypatch.setattr(bringup, "remove_recorded", lambda _state: None)
    left_behind: dict[str, str] = {}

    class CrashingMininet:
        def __init__(self, topo, **_kw) -> None:
            self.topo = topo
            self.hosts: list[_Node] = []
            self.switches: list[_Node] = []
            self.controllers: list[_Node] = []

        def build(self) -> None:
            self.hosts = [_Node(h, 4_000_000 + i) for i, h in enumerate(self.topo.hosts())]
            self.switches = [_Node(s, 4_100_000) for s in self.topo.switches()]

        def start(self) -> None:
            for path in state_dir.glob("*.json"):
                left_behind[path.name] = path.read_text()
            raise KeyboardInterrupt

        def stop(self) -> None:
            pass

    monkeypatch.setattr(bringup, "Mininet", CrashingMininet)
    with pytest.raises(KeyboardInterrupt):
        bringup.plain_mininet_s(star_plan(3), "user", tmp_path)
    assert [name.split("-")[:2] for name in left_behind] == [["bench", "plain"]]
    for name, text in left_behind.items():
        data = json.loads(text)
        data["owner_start_ticks"] = -1  # the owning process is gone
        (state_dir / name).write_text(json.dumps(data))
    (state,) = runstate.all_states()
    assert state.bridges == ["s1"]
    assert sorted(state.interfaces) == ["s1-eth1", "s1-eth2", "s1-eth3"]
    assert sorted(p.what for p in state.processes) == [
        "shell:h1", "shell:h2", "shell:h3", "shell:s1"]
    assert clean.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 4 process(es), bridges ['s1'], 3 interface(s)" in out


def test_trial_stage_durations_split_build_and_teardown() -> None:
    marks = [("building the network (none)", 0.0), ("starting PLCs, HMI and defense", 1.5),
             ("random attack phase (0.10 s)", 2.0), ("reconnaissance (nmap: discovery)", 2.1),
             ("exploit: Modbus to 2 address(es)", 3.1)]
    out = stage_durations(marks, end=4.0, timeline={"build_s": 1.0, "connect_s": 0.2,
                                                    "teardown_s": 0.4})
    assert out["build"] == 1.0 and out["connect"] == 0.2 and out["teardown"] == 0.4
    # What the build stage held beyond build + connect (the lab's captures) counts as start-up.
    assert out["plc_hmi_start"] == pytest.approx(0.5 + 0.3)
    assert out["scans"] == pytest.approx(1.0)
    assert out["exploit"] == pytest.approx(0.9 - 0.4)
    assert sum(out.values()) == pytest.approx(4.0)


def test_memory_fit_line_and_pss() -> None:
    slope, icpt = fit_line([250.0, 500.0, 1000.0], [30.0, 55.0, 105.0])
    assert slope == pytest.approx(0.1) and icpt == pytest.approx(5.0)
    with pytest.raises(ValueError, match="two distinct"):
        fit_line([250.0, 250.0], [1.0, 2.0])
    assert pss_kib("Rss:  4000 kB\nPss:  1234 kB\nPss_Anon: 800 kB\n") == 1234
    assert pss_kib("") == 0


def test_memory_figure_drawn_from_its_csv(tmp_path: Path) -> None:
    cols = "n_hosts,ovs_rss_mib,shells_pss_mib,controller_rss_mib,mem_available_drop_mib"
    (tmp_path / "memory.csv").write_text(
        f"{cols},ovs_cpu_pct,idle_share\n250,20,300,60,500,3,0.9\n500,40,600,61,1000,5,0.8\n")
    figs = plot(tmp_path)
    assert [stem for stem, _ in figs] == ["memory"]
    assert (tmp_path / "memory.png").exists()
