"""The manifest schema reads and writes the bundles the runner wrote before it existed:
same keys, same order, same values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reporting.manifest import MANIFEST_KEYS, Manifest, TrialRecord

DATA = Path(__file__).resolve().parent / "data" / "bundles"


@pytest.mark.parametrize("name", ["rtt-quick", "recon-failed"])
def test_real_manifest_round_trips(name: str) -> None:
    text = (DATA / name / "manifest.json").read_text()
    data = json.loads(text)
    manifest = Manifest.from_dict(data)
    assert not manifest.extra
    assert manifest.to_dict() == data
    assert list(manifest.to_dict()) == list(data)  # the key order too
    for rec, raw in zip(manifest.trials, data["trials"], strict=True):
        assert list(rec.to_dict()) == list(raw)


def test_running_then_finished() -> None:
    m = Manifest(experiment="recon", command=["x"], seed=1, topology="ics",
                 trials_requested=2)
    assert list(m.to_dict()) == [k for k in MANIFEST_KEYS
                                 if k not in ("conditions", "condition_order", "plots",
                                              "fidelity")]
    m.conditions = ["none", "rhm"]
    m.condition_order = [["rhm", "none"]]
    m.trials.append(TrialRecord(trial=1, seed=7, condition="rhm", status="failed",
                                error="LabError: x", duration_s=1.0, fidelity={}))
    m.record_validity("rhm:real_addresses_unreachable", True)
    m.record_validity("rhm:real_addresses_unreachable", False)
    assert m.validity_counts() == {"rhm:real_addresses_unreachable": (1, 2)}
    m.finish("2026-01-01T00:00:00+00:00", False, [("p", "caption")], {"monitored_trials": 1})
    d = m.to_dict()
    assert d["complete"] and not d["interrupted"]
    assert d["validity"] == {"rhm:real_addresses_unreachable": False}
    assert d["plots"] == [{"stem": "p", "caption": "caption"}]
    assert list(d)[-4:] == ["conditions", "condition_order", "plots", "fidelity"]
    assert Manifest.from_dict(d).condition_order == [["rhm", "none"]]
    assert list(d["trials"][0]) == ["trial", "seed", "condition", "status", "error",
                                    "duration_s", "fidelity"]
    assert m.validity_counts() == {"rhm:real_addresses_unreachable": (0, None)}


def test_lenient_read_keeps_unknown_keys() -> None:
    m = Manifest.from_dict({"experiment": "x", "trials": "oops", "seed": True, "note": 1})
    assert m.trials == [] and m.seed is None and m.extra == {"note": 1}
