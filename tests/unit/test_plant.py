"""Plant files: the bundled plants, the strict schema, plant-check and --plant (no root)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from common.hopschedule import MutationConfig, schedule_events
from common.plan import AddressPlan, classic_plan, ics_plan
from common.plant import PlantError, load_plant, parse_plant
from experiments import run
from lab.devices import hmi_spec, load_plant_plan, operator_writes, plc_processes
from plc.program import process_kinds
from topologies.plant import PlantTopo

ROOT = Path(__file__).resolve().parents[2]
PLANTS = ROOT / "plants"
BAD = sorted((ROOT / "tests" / "data" / "plants" / "bad").glob("*.yaml"))


def _expected_path(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line names the key path"
    return first.removeprefix("# expect: ")


def _assert_same_plan(built: AddressPlan, reference: AddressPlan) -> None:
    for f in dataclasses.fields(AddressPlan):
        assert getattr(built, f.name) == getattr(reference, f.name), f.name
    assert built == reference


def test_water_plant_is_the_default_ics_field_by_field() -> None:
    built = load_plant_plan(PLANTS / "water.yaml")
    _assert_same_plan(built, ics_plan())
    for seed in (1, 7):
        cfg = MutationConfig(hop_interval_s=5.0, jitter_s=1.0, seed=seed)
        assert schedule_events(built, cfg, 120.0) == schedule_events(ics_plan(), cfg, 120.0)
    assert plc_processes(built) == {"plc1": "tank", "plc2": "pressure"}


def test_classic_plant_is_the_classic_lab() -> None:
    _assert_same_plan(load_plant_plan(PLANTS / "classic.yaml"), classic_plan())


def test_treatment_plant_three_zones_six_plcs_three_kinds_on_a_22() -> None:
    plan = load_plant_plan(PLANTS / "treatment.yaml")
    assert plan.prefixlen == 22
    assert {"intake", "treat", "dist"} <= {s.name for s in plan.switches}
    kinds = plc_processes(plan)
    assert len(kinds) >= 6 and set(kinds.values()) == {"tank", "pressure", "dosing"}
    # Hosts spread over several /24 blocks of the /22, so the whole prefix is used.
    assert len({h.ip.rsplit(".", 1)[0] for h in plan.hosts}) >= 3
    spec = hmi_spec(plan)
    assert spec is not None and set(spec.polls) == set(kinds)
    writes = operator_writes(plan, spec)
    assert writes[0] == {"t_s": 20.0, "plc": "dose1", "table": "holding_register",
                         "address": 0, "value": 120}
    topo = PlantTopo(str(PLANTS / "treatment.yaml"))
    assert len(topo.hosts()) == len(plan.hosts) and len(topo.switches()) == 4


def test_plan_with_devices_round_trips_through_json(tmp_path: Path) -> None:
    plan = load_plant_plan(PLANTS / "treatment.yaml")
    plan.save(tmp_path / "plan.json")
    assert AddressPlan.load(tmp_path / "plan.json") == plan
    # A plan.json written before plants existed (no plcs/hmis keys) still loads.
    old = ics_plan().to_dict()
    del old["plcs"], old["hmis"]
    assert AddressPlan.from_dict(old).hosts == ics_plan().hosts


def _minimal(subnet: str, address: str) -> dict:
    return {"name": "mini", "subnet": subnet, "zones": [{"name": "s1"}],
            "hosts": [{"name": "p1", "role": "plc", "address": address, "zone": "s1"}],
            "plcs": [{"host": "p1", "process": {"kind": "dosing"}}]}


@pytest.mark.parametrize(("subnet", "address", "mac"), [
    ("10.9.0.0/16", "10.9.200.7", "02:00:00:00:c8:07"),
    ("192.168.5.8/29", "192.168.5.14", "02:00:00:00:00:06"),
])
def test_any_prefix_from_16_to_29_with_derived_macs(subnet: str, address: str,
                                                     mac: str) -> None:
    plan = parse_plant(_minimal(subnet, address))
    assert plan.subnet == subnet and plan.host("p1").mac == mac
    assert plan.host("p1").protected


def test_without_kinds_the_process_is_checked_for_shape_only() -> None:
    data = _minimal("10.0.0.0/24", "10.0.0.5")
    data["plcs"][0]["process"]["kind"] = "boiler"
    assert parse_plant(data).plcs[0].process == "boiler"
    with pytest.raises(PlantError, match=r"^plcs\[0\]\.process\.kind: unknown 'boiler'"):
        parse_plant(data, process_kinds())


def test_enough_malformed_files() -> None:
    assert len(BAD) >= 25


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_plant_check_rejects_each_malformed_file_in_one_line(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run.main(["plant-check", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: {_expected_path(path)}"), err


@pytest.mark.parametrize("name", ["unknown_process_kind", "plc_without_process",
                                  "address_outside_subnet", "trunk_loop"])
def test_experiment_with_a_malformed_plant_creates_nothing(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "tests" / "data" / "plants" / "bad" / f"{name}.yaml"
    out_dir = tmp_path / "results"
    code = run.main(["recon", "--plant", str(path), "--quick", "--out", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and _expected_path(path) in err, err
    assert not out_dir.exists()


def test_plant_check_prints_the_plant(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["plant-check", str(PLANTS / "treatment.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plant treatment: subnet 10.20.0.0/22, 4 zone(s), 13 host(s), 8 PLC(s)")
    assert "dose2      plc        10.20.2.22" in out
    assert "dosing (modbus/502, scan 200 ms; flow_mean_lps=25, flow_period_s=60)" in out
    assert "at 40 s: booster1.pressure_sp = 4.5" in out


def test_unreadable_plant_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PlantError, match="cannot read the plant file"):
        load_plant(tmp_path / "none.yaml")
