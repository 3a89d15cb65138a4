"""Lab mode without a network: options and their one-line errors, the controller set-up of
each defense, the attack command's arguments, and what mtd/plc/hmi/detector/attack print."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from common import hoplog
from common.errors import UserError
from common.groundtruth import read_ground_truth
from common.plan import classic_plan, ics_plan
from lab import commands as labcmds
from lab import defenses
from lab import options as labopts
from lab import views as labviews
from plc.metrics import PlcMetrics

REPO = Path(__file__).resolve().parents[2]


# --- options ----------------------------------------------------------------------------
def test_defaults_and_script(tmp_path: Path) -> None:
    script = tmp_path / "s.cli"
    script.write_text("pingall\n")
    opts = labopts.parse_options(["--script", str(script), "--defense", "rhm", "--detector"],
                                 "prog")
    assert (opts.topo, opts.defense, opts.detector, opts.script) == ("ics", "rhm", True, script)
    assert labopts.parse_options(["--cli"], "prog", default_topo="classic").topo == "classic"


@pytest.mark.parametrize("argv, needle", [
    ([], "nothing to do"),
    (["--cli", "--defense", "firewall"], "invalid choice: 'firewall'"),
    (["--cli", "--topo", "star"], "invalid choice: 'star'"),
    (["--cli", "--script", "x.cli"], "not allowed with argument"),
    (["--script", "/nonexistent/lab.cli"], "no such file"),
    (["--cli", "--hop-interval-s", "0"], "must be > 0"),
    (["--cli", "--attack-timeout-s", "abc"], "not a number"),
    (["--cli", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_options_are_user_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        labopts.parse_options(argv, "prog")


@pytest.mark.parametrize("module", ["topologies.ics", "topologies.classic"])
@pytest.mark.parametrize("argv", [[], ["--cli", "--defense", "x"], ["--cli", "--nope"],
                                  ["--script", "/nonexistent"]])
def test_cli_errors_are_one_line_exit_2(module: str, argv: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m {module}: error: "), res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_missing_part_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labopts, "_module_exists", lambda name: name != "defenses.nat_hop")
    opts = labopts.LabModeOptions(defense="nat")
    assert labopts.missing_part(opts) == (
        "--defense nat needs the host defense defenses.nat_hop (defenses.nat_hop), which this "
        "checkout does not have yet")
    assert labopts.missing_part(labopts.LabModeOptions(defense="rhm", detector=True)) is None


def test_controller_setup_per_defense(tmp_path: Path) -> None:
    files = labopts.RunFiles.under(tmp_path)

    def setup(opts: labopts.LabModeOptions) -> tuple[str, tuple[str, ...], list[Path]]:
        return defenses.controller_setup(opts.defense_settings(), files.plan_path, files.run_dir)

    assert setup(labopts.LabModeOptions())[:2] == ("l2", ())
    app, args, _ = setup(labopts.LabModeOptions(detector=True))
    assert (app, args) == ("detector", ("--detect-log", str(files.detect_log)))
    app, args, hop_logs = setup(
        labopts.LabModeOptions(defense="rhm", detector=True, hop_interval_s=2.5, seed=7))
    assert app == "rhm"
    assert hop_logs == [defenses.rhm_hop_log(files.run_dir)]
    assert args == ("--plan", str(files.plan_path), "--hop-interval-s", "2.5", "--seed", "7",
                    "--flow-idle-s", "10", "--hop-log", str(hop_logs[0]), "--detector",
                    "--detect-log", str(files.detect_log))
    # nat hops in the hosts: the controller stays a plain learning switch
    nat_opts = labopts.LabModeOptions(defense="nat")
    assert setup(nat_opts)[0] == "l2"
    nat = defenses.nat_hop_args(nat_opts.defense_settings(), files.plan_path, files.run_dir,
                                "plc1", 100.5)
    assert nat[nat.index("--host") + 1] == "plc1"
    assert nat[nat.index("--start-epoch-s") + 1] == "100.500000"
    assert nat[nat.index("--log") + 1] == str(defenses.nat_hop_log(files.run_dir, "plc1"))
    assert nat[nat.index("--flow-idle-s") + 1] == "10"


def test_run_dir_is_new_each_time(tmp_path: Path) -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    first = labopts.new_run_dir(tmp_path, now)
    second = labopts.new_run_dir(tmp_path, now)
    assert first == tmp_path / "lab" / "20260102T030405Z" and first.is_dir()
    assert second.name == "20260102T030405Z-2"


# --- command helpers --------------------------------------------------------------------
def test_switch_aliases_replace_whole_words_only() -> None:
    aliases = {"s1": "hfs1", "s2": "hfs2"}
    assert labcmds.alias_switches("link s1 s2 down", aliases) == "link hfs1 hfs2 down"
    assert labcmds.alias_switches("sh ovs-ofctl dump-flows s1", aliases).endswith(" hfs1")
    assert labcmds.alias_switches("h1 ping -s1 s10 x.s1", aliases) == "h1 ping -s1 s10 x.s1"
    assert labcmds.alias_switches("link s1 s2 down", {}) == "link s1 s2 down"


def test_attack_argv_fills_plan_out_and_targets(tmp_path: Path) -> None:
    plan = ics_plan()
    argv = labcmds.attack_argv("recon", ["--ports", "502"], plan, tmp_path / "p.json",
                               tmp_path / "o.json")
    assert argv == ["-m", "attacks.recon", "--plan", str(tmp_path / "p.json"), "--out",
                    str(tmp_path / "o.json"), "--targets", "10.0.0.0/24", "--ports", "502"]
    argv = labcmds.attack_argv("inject", ["--targets", "plc2", "--pump-on"], plan,
                               tmp_path / "p.json", tmp_path / "o.json")
    assert argv[-3:] == ["--targets", "10.0.0.22", "--pump-on"]
    mitm = labcmds.attack_argv("mitm", [], plan, tmp_path / "p.json", tmp_path / "o.json")
    assert mitm[-2:] == ["--targets", "10.0.0.11,10.0.0.21"]
    hop = labcmds.attack_argv("iphop", ["--targets=plc1,plc2"], plan, tmp_path, tmp_path)
    assert hop[-1] == "--targets=10.0.0.21,10.0.0.22"


@pytest.mark.parametrize("name, args, needle", [
    ("teardrop", [], "unknown attack 'teardrop'"),
    ("recon", ["--out", "x.json"], "fills --out itself"),
    ("recon", ["--plan=p.json"], "fills --plan itself"),
])
def test_attack_argv_refusals(tmp_path: Path, name: str, args: list[str], needle: str) -> None:
    with pytest.raises(labcmds.CommandError, match=needle):
        labcmds.attack_argv(name, args, ics_plan(), tmp_path, tmp_path)


def test_default_targets_need_the_roles() -> None:
    plan = classic_plan()
    assert labcmds.default_targets("plc", plan) == "10.0.0.4"
    with pytest.raises(labcmds.CommandError, match="no HMI"):
        labcmds.default_targets("hmi+plc", plan)


# --- views ------------------------------------------------------------------------------
HOP_LINES = [
    json.dumps({"time_unix_s": 1000.0, "t_s": 0.0, "seq": 1, "host": "plc1",
                "real_ip": "10.0.0.21", "old_virtual": None, "new_virtual": "10.0.0.117"}),
    json.dumps({"time_unix_s": 1000.0, "t_s": 0.0, "seq": 2, "host": "plc2",
                "real_ip": "10.0.0.22", "old_virtual": None, "new_virtual": "10.0.0.173"}),
    "{torn line",
    json.dumps({"time_unix_s": 1005.0, "t_s": 5.0, "seq": 3, "host": "plc1",
                "real_ip": "10.0.0.21", "old_virtual": "10.0.0.117",
                "new_virtual": "10.0.0.199"}),
]


def test_mtd_mapping_and_log() -> None:
    hops = hoplog.parse(HOP_LINES)
    assert len(hops) == 3
    lines = labviews.format_mtd("rhm", hops, now_unix_s=1007.5)
    assert lines == [
        "mtd: rhm, 3 hop(s) so far",
        "host  real       virtual now  since_s  hops",
        "----  ---------  -----------  -------  ----",
        "plc1  10.0.0.21  10.0.0.199   2.5      2",
        "plc2  10.0.0.22  10.0.0.173   7.5      1",
    ]
    log = labviews.format_mtd_log(hops, n_lines=2)
    assert log[0].split() == ["seq", "t_s", "host", "real", "old", "virtual", "new", "virtual"]
    assert log[2].split() == ["2", "0", "plc2", "10.0.0.22", "(first)", "10.0.0.173"]
    assert log[3].split() == ["3", "5", "plc1", "10.0.0.21", "10.0.0.117", "10.0.0.199"]
    assert labviews.format_mtd("nat", [], 0.0) == ["mtd: nat is running; no hop logged yet"]


def _tank_csv(rows: list[dict[str, float]]) -> tuple[str, list[str]]:
    from plc.registers import TANK_MAP

    columns = ["t_s"] + [r.column for r in TANK_MAP.registers if r.name != "process_id"]
    lines = []
    for row in rows:
        full = {c: 0.0 for c in columns} | row
        lines.append(",".join(f"{full[c]:g}" for c in columns))
    return ",".join(columns), lines


def test_plc_view_shows_values_trend_coils_setpoints_alarms() -> None:
    header, lines = _tank_csv([
        {"t_s": 1.0, "level_cm": 100.0, "level_high_sp_cm": 160, "level_low_sp_cm": 40},
        {"t_s": 6.0, "level_cm": 110.25, "pump_on": 1, "level_high_sp_cm": 160,
         "level_low_sp_cm": 40, "alarm_high_high": 1},
    ])
    rows = read_ground_truth([header, *lines, "7.0,1"])
    view = labviews.plc_view("plc1", "10.0.0.21", "tank", rows)
    assert view is not None and view.row["t_s"] == 6
    text = labviews.format_plc(view)
    assert text[0] == "plc1 (10.0.0.21, tank) t=6.0 s"
    assert text[1].startswith("  process:   level 110.25 cm (+10.25 in 5 s)")
    assert "pump_on=on" in text[2] and "valve_open=off" in text[2]
    assert "level_high_sp 160 cm, level_low_sp 40 cm" in text[3]
    assert text[4] == "  alarms:    alarm_high_high"
    assert labviews.plc_view("plc1", "x", "tank", read_ground_truth([header, "t_s,level"])) is None


def test_hmi_table_has_availability_and_latency() -> None:
    m = PlcMetrics(plc="plc1", polls=50, polls_ok=49, availability=0.98, requests=200,
                   timeouts=1, exceptions=0, connection_errors=0, latency_p50_ms=1.234,
                   latency_p95_ms=3.5, latency_p99_ms=4.0, latency_max_ms=math.nan,
                   longest_outage_s=0.1, reconnects=0)
    lines = labviews.format_hmi([m], elapsed_s=5.4)
    assert lines[0] == "hmi: polls of every PLC over 5 s"
    assert lines[1].split() == ["plc", "polls", "availability", "p50_ms", "p95_ms", "max_ms",
                                "longest_outage_s", "reconnects"]
    assert lines[3].split() == ["plc1", "50", "0.98", "1.234", "3.5", "-", "0.1", "0"]
    assert labviews.format_hmi([], None) == ["hmi: no poll recorded yet"]


def test_detections_blocked_and_expired() -> None:
    records = [{"time_unix_s": 100.0, "src_ip": "10.0.0.66", "src_mac": "02:00:00:00:00:42",
                "distinct_dsts": 9, "distinct_ports": 0, "threshold": "max_dsts",
                "block_s": 60},
               {"time_unix_s": 10.0, "src_ip": None, "src_mac": "02:00:00:00:00:43",
                "distinct_dsts": 1, "distinct_ports": 13, "threshold": "max_ports",
                "block_s": 60}]
    lines = labviews.format_detections(records, now_unix_s=130.0)
    assert lines[0] == "detector: 2 source(s) blocked"
    assert "9 dsts / 0 ports > max_dsts" in lines[3] and lines[3].endswith("blocked 30 s more")
    assert lines[4].startswith("-  ") and lines[4].endswith("expired")
    assert labviews.format_detections([], 0.0) == ["detector: running; no source blocked so far"]


def test_recon_summary_names_hosts_ports_and_modbus_ids() -> None:
    outcome = {"attack": "recon", "duration_s": 2.2, "targets": ["10.0.0.1"] * 254,
               "attacker_addresses": ["10.0.0.66"], "errors": [],
               "stages": [{"name": "discovery", "status": "ok", "duration_s": 1.9}],
               "findings": [{"address": "10.0.0.21", "mac": "02:00:00:00:00:15",
                             "open_ports": [502], "services": [
                                 {"port": 502, "details": {"modbus-discover":
                                                           "sid 0x1: SDN-ICS-Lab PLC tank"}}]}]}
    lines = labviews.summarize_outcome("recon", outcome, 0)
    assert lines[0] == "attack recon: exit status 0 after 2.20 s"
    assert "  stages: discovery ok 1.9 s" in lines
    assert "  hosts found: 1" in lines
    assert lines[-1].endswith("open: 502  [sid 0x1: SDN-ICS-Lab PLC tank]")


def test_outcome_summaries_for_failures_and_other_attacks() -> None:
    assert labviews.summarize_outcome("inject", None, 2, "") == [
        "attack inject: exit status 2, no outcome written"]
    lines = labviews.summarize_outcome(
        "inject", {"target": "10.0.0.21", "port": 502, "unit_id": 1, "process": "tank",
                   "writes_ok": 2, "writes_refused": 0, "interrupted": True,
                   "interrupt_signal": "SIGTERM", "duration_s": 1.0,
                   "writes": [{"name": "pump_on", "value": 1.0}],
                   "errors": ["TimeoutError: x"]}, 143, "stopped by Ctrl-C")
    assert lines[0] == ("attack inject: exit status 143 after 1.00 s (interrupted by SIGTERM); "
                        "stopped by Ctrl-C")
    assert "  writes: 2 accepted, 0 refused" in lines and "    pump_on = 1.0" in lines
    assert lines[-1] == "  error: TimeoutError: x"
    generic = labviews.summarize_outcome("newattack", {"foo": 3, "bar": [1]}, 0)
    assert generic == ["attack newattack: exit status 0", "  foo: 3"]


def test_format_table_aligns_without_trailing_spaces() -> None:
    assert labviews.format_table(("a", "bb"), [(1.5, None), ("long", "x")]) == [
        "a     bb", "----  --", "1.5   -", "long  x"]
