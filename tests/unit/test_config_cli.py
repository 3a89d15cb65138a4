"""Config precedence and validation; the runner CLI's answers to bad input (no root)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from experiments.registry import EXPERIMENTS, get_experiment
from experiments.spec import load_config_file, parse_names, resolve_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_quick_file_flags_precedence(tmp_path: Path) -> None:
    exp = get_experiment("rtt")
    assert resolve_config(exp, None, {})["count"] == 20
    assert resolve_config(exp, None, {}, quick=True)["count"] == 5
    assert resolve_config(exp, {"count": 7}, {}, quick=True)["count"] == 7
    assert resolve_config(exp, {"count": 7}, {"count": "9"}, quick=True)["count"] == 9
    cfg = resolve_config(exp, {"interval-s": 0.5}, {})  # dashes accepted in files
    assert cfg["interval_s"] == 0.5


def test_config_file_formats(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("trials: 4\nseed: 9\n")
    (tmp_path / "a.toml").write_text("trials = 4\nseed = 9\n")
    (tmp_path / "a.json").write_text('{"trials": 4, "seed": 9}')
    for name in ("a.yaml", "a.toml", "a.json"):
        assert load_config_file(tmp_path / name) == {"trials": 4, "seed": 9}


@pytest.mark.parametrize("values,needle", [
    ({"trials": 0}, "trials"), ({"trials": "many"}, "trials"), ({"trials": True}, "trials"),
    ({"seed": -1}, "seed"), ({"topo": "mesh"}, "topo"), ({"n_hosts": 1001}, "n_hosts"),
    ({"count": 2.5}, "count"), ({"interval_s": 0}, "interval_s"),
    ({"link_loss_pct": 101}, "link_loss_pct"), ({"engine": "pox"}, "engine"),
    ({"warp": 9}, "unknown key 'warp'"), ({"interval_s": float("nan")}, "interval_s"),
])
def test_bad_values_name_the_key(values: dict, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        resolve_config(get_experiment("rtt"), values, {})


@pytest.mark.parametrize("name,text,needle", [
    ("bad.yaml", "trials: [1,\n", "not valid YAML"), ("bad.toml", "trials = = 3", "TOML"),
    ("list.yaml", "- 1\n- 2\n", "mapping"), ("x.ini", "trials=1", "unknown format")])
def test_bad_config_files(tmp_path: Path, name: str, text: str, needle: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=needle):
        load_config_file(tmp_path / name)


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_config_file(tmp_path / "missing.yaml")


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_list_and_help_need_no_root() -> None:
    res = run_cli("list")
    assert res.returncode == 0
    for name in EXPERIMENTS:
        assert name in res.stdout
    res = run_cli("--help")
    assert res.returncode == 0 and "recon" in res.stdout
    res = run_cli("recon", "--help")
    assert res.returncode == 0 and "--ports" in res.stdout and "--trials" in res.stdout


BAD_INVOCATIONS = [
    ["nosuch"],
    ["recon", "--trials", "-1"],
    ["recon", "--trials", "0"],
    ["recon", "--trials", "x"],
    ["rtt", "--count", "0"],
    ["rtt", "--interval-s", "0"],
    ["recon", "--seed", "-5"],
    ["recon", "--topo", "mesh"],
    ["recon", "--n-hosts", "1001"],
    ["recon", "--engine", "pox"],
    ["recon", "--datapath", "fast"],
    ["recon", "--link-loss-pct", "150"],
    ["recon", "--bogus"],
    ["recon", "--config", "/nonexistent/cfg.yaml"],
    ["list", "extra"],
    [],
]


@pytest.mark.parametrize("args", BAD_INVOCATIONS, ids=lambda a: " ".join(a) or "(none)")
def test_bad_invocations_one_line_exit_2(args: list[str]) -> None:
    res = run_cli(*args)
    assert res.returncode == 2, res.stderr
    if args:
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr


def test_bad_config_key_via_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("trials = 2\nhop_speed = 3\n")
    res = run_cli("recon", "--config", str(cfg))
    assert res.returncode == 2
    assert "unknown key 'hop_speed'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_boolean_params_are_x_and_no_x_flags() -> None:
    from experiments.run import experiment_parser

    exp = get_experiment("ics")
    parser = experiment_parser(exp)
    assert parser.parse_args([]).operator_write is None  # not given: the file or default wins
    assert parser.parse_args(["--operator-write"]).operator_write is True
    off = parser.parse_args(["--no-operator-write"]).operator_write
    assert off is False
    assert resolve_config(exp, {"operator_write": True}, {"operator_write": off})[
        "operator_write"] is False
    assert resolve_config(exp, {"operator_write": False}, {"operator_write": None})[
        "operator_write"] is False
    with pytest.raises(UserError, match="operator-write"):
        parser.parse_args(["--operator-write=maybe"])


def test_help_lists_choices_and_prints_integers_as_integers() -> None:
    res = run_cli("ics", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())  # argparse wraps lines
    assert "--operator-write, --no-operator-write" in text
    assert "--topo {ics,classic,star,linear}" in text
    assert "--engine {auto,ryu,os-ken}" in text
    assert "[0, 2147483647]" in text and "e+0" not in text
    assert "--pcap [WHAT]" in text


def test_int_param_texts() -> None:
    seed = get_experiment("recon").param("seed")
    assert seed.allowed() == "an integer in [0, 2147483647]"
    assert seed.default_text() == "1"
    assert get_experiment("rtt").param("connect_timeout_s").default_text() == "30"
    with pytest.raises(UserError, match=r"\[0, 2147483647\]"):
        resolve_config(get_experiment("recon"), {"seed": -1}, {})


def test_bare_pcap_means_all() -> None:
    from experiments.run import experiment_parser

    parser = experiment_parser(get_experiment("recon"))
    assert parser.parse_args([]).pcap is None
    assert parser.parse_args(["--pcap"]).pcap == "all"
    assert parser.parse_args(["--pcap", "plc1,s1-eth1"]).pcap == "plc1,s1-eth1"


def test_console_script_is_experiments_run() -> None:
    from importlib.metadata import entry_points

    from experiments.run import main

    (script,) = entry_points(group="console_scripts", name="sdn-ics-lab")
    assert script.load() is main
    exe = Path(sys.executable).parent / "sdn-ics-lab"
    res = subprocess.run([str(exe), "recon", "--seed", "-1"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 2 and "[0, 2147483647]" in res.stderr, res.stderr


def test_name_lists_keep_order_drop_repeats_and_name_the_flag() -> None:
    assert parse_names("nat, none,nat", "--defense", "defense", ("none", "rhm", "nat")) == [
        "nat", "none"]
    assert parse_names("all", "--parts", "part", ("a", "b")) == ["a", "b"]
    for bad, needle in (("rhm,moat", "--defense: unknown defense 'moat'"),
                        ("", "--defense: unknown defense ''")):
        with pytest.raises(UserError, match=needle):
            parse_names(bad, "--defense", "defense", ("none", "rhm", "nat"))


def test_every_experiment_is_built_from_its_modules_parts() -> None:
    for name in ("recon", "rtt", "ics", "attacks", "mtd-sweep", "mtd-timing", "evasion",
                 "bench", "mtd-longrun"):
        exp = get_experiment(name)
        module = importlib.import_module(exp.trial.__module__)
        assert exp.params is module.PARAMS and exp.trial is module.trial
        assert exp.conditions is getattr(module, "conditions", None)
        assert exp.check is getattr(module, "check", None)
    assert get_experiment("bench").check is None and get_experiment("rtt").conditions is None
