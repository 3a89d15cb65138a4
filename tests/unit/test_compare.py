"""compare: shared metrics of several bundles, table, long CSV, plot, one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reporting.compare import compare, load_bundles, main, shared_metrics
from reporting.stats import Proportion
from reporting.summary import ConditionTrials, build_summary

DATA = Path(__file__).parent / "data" / "bundles"


def make_summary_bundle(root: Path, experiment: str, stamp: str,
                        metrics: dict[str, tuple[float | None, float | None, int]]) -> Path:
    """A bundle with only what compare reads: summary.json (and a manifest)."""
    b = root / experiment / stamp
    b.mkdir(parents=True)
    entries: dict[str, Any] = {}
    summary: dict[str, Any] = {"experiment": experiment, "trials_completed": 3,
                               "trials_failed": 0, "trials_premise_failed": 0, "failures": [],
                               "conditions": {"all": entries}, "paired": []}
    for name, (mean, ci, n) in metrics.items():
        has_ci = mean is not None and ci is not None
        entries[name] = {"kind": "continuous", "n": n, "k": None, "trials": n, "mean": mean,
                         "ci_low": mean - ci if has_ci else None,
                         "ci_high": mean + ci if has_ci else None, "method": "t",
                         "note": "" if has_ci else "n=1: no interval"}
    (b / "summary.json").write_text(json.dumps(summary))
    (b / "manifest.json").write_text(json.dumps({"experiment": experiment}))
    return b


@pytest.fixture
def two_bundles(tmp_path: Path) -> tuple[Path, Path]:
    a = make_summary_bundle(tmp_path, "recon", "20260101T000000Z", {
        "host_recall": (1.0, 0.0, 3), "discovery_s": (1.876, 0.0061, 3),
        "only_in_a": (5.0, 1.0, 3)})
    b = make_summary_bundle(tmp_path, "recon_mtd", "20260102T000000Z", {
        "discovery_s": (4.5, 1.25, 5), "only_in_b": (2.0, None, 1),
        "host_recall": (0.4, 0.125, 5)})
    return a, b


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_shared_metrics_in_first_bundles_order(two_bundles: tuple[Path, Path]) -> None:
    bundles = load_bundles(list(two_bundles))
    assert shared_metrics(bundles) == ["host_recall", "discovery_s"]
    assert [b.label for b in bundles] == ["recon/20260101T000000Z",
                                          "recon_mtd/20260102T000000Z"]
    assert [b.experiment for b in bundles] == ["recon", "recon_mtd"]


def test_csv_long_format_values(tmp_path: Path, two_bundles: tuple[Path, Path]) -> None:
    out = tmp_path / "cmp"
    compare(list(two_bundles), out)
    rows = read_rows(out / "comparison.csv")
    assert list(rows[0]) == ["bundle", "experiment", "metric", "mean", "ci_low", "ci_high",
                             "n", "k", "method"]
    assert [(r["bundle"], r["metric"], r["mean"], r["ci_low"], r["ci_high"], r["n"])
            for r in rows] == [
        ("recon/20260101T000000Z", "host_recall", "1", "1", "1", "3"),
        ("recon_mtd/20260102T000000Z", "host_recall", "0.4", "0.275", "0.525", "5"),
        ("recon/20260101T000000Z", "discovery_s", "1.876", "1.8699", "1.8821", "3"),
        ("recon_mtd/20260102T000000Z", "discovery_s", "4.5", "3.25", "5.75", "5"),
    ]
    for suffix in (".png", ".svg"):
        assert (out / f"comparison{suffix}").stat().st_size > 1000


def test_table_on_stdout(tmp_path: Path, two_bundles: tuple[Path, Path],
                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main([*map(str, two_bundles), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[1] recon/20260101T000000Z (recon)" in text
    assert "[2] recon_mtd/20260102T000000Z (recon_mtd)" in text
    line = next(x for x in text.splitlines() if x.startswith("discovery_s"))
    assert "1.88 [1.87, 1.88] (n=3, t)" in line and "4.5 [3.25, 5.75] (n=5, t)" in line
    assert "±" not in text
    assert "only_in_a" not in text and "only_in_b" not in text
    assert str(out / "comparison.csv") in text


def test_missing_ci_and_nan_mean(tmp_path: Path) -> None:
    a = make_summary_bundle(tmp_path, "rtt", "A", {"rtt_avg_ms": (1.5, None, 1),
                                                   "loss_pct": (None, None, 0)})
    b = make_summary_bundle(tmp_path, "rtt", "B", {"rtt_avg_ms": (2.5, 0.5, 3),
                                                   "loss_pct": (0.0, 0.0, 3)})
    table, out = compare([a, b], tmp_path / "cmp")
    rows = read_rows(out / "comparison.csv")
    assert rows[0] == {"bundle": "rtt/A", "experiment": "rtt", "metric": "rtt_avg_ms",
                       "mean": "1.5", "ci_low": "", "ci_high": "", "n": "1", "k": "",
                       "method": "t"}
    assert rows[2]["mean"] == "" and rows[2]["n"] == "0"
    assert "1.5 (n=1: no interval) (n=1)" in table and "- (n=0)" in table
    assert (out / "comparison.png").exists()


def test_same_bundle_twice_gets_distinct_labels(tmp_path: Path) -> None:
    a = make_summary_bundle(tmp_path, "rtt", "A", {"rtt_avg_ms": (1.0, 0.1, 3)})
    bundles = load_bundles([a, a])
    assert len({b.label for b in bundles}) == 2


def test_real_bundles_of_different_experiments(tmp_path: Path) -> None:
    """The real rtt bundle and a copy relabelled as ics share every metric."""
    rtt = tmp_path / "rtt" / "run1"
    shutil.copytree(DATA / "rtt-quick", rtt)
    other = tmp_path / "ics" / "run2"
    other.mkdir(parents=True)
    s = json.loads((rtt / "summary.json").read_text())
    s["experiment"] = "ics"
    del s["conditions"]["all"]["rtt_avg_ms"]
    (other / "summary.json").write_text(json.dumps(s))
    table, out = compare([rtt, other], tmp_path / "cmp")
    metrics = {r["metric"] for r in read_rows(out / "comparison.csv")}
    assert "hmi_availability" in metrics and "rtt_avg_ms" not in metrics
    assert "(ics)" in table and "(rtt)" in table


def test_proportions_and_old_flat_summaries(tmp_path: Path) -> None:
    """A proportion shows its Wilson interval and k/n; a pre-nesting bundle still compares."""
    new = tmp_path / "recon" / "new"
    new.mkdir(parents=True)
    ct = ConditionTrials.empty()
    for t in (1, 2, 3):
        ct.add_scored(t, {"attacker_modbus_success": Proportion(1, 1)})
    (new / "summary.json").write_text(json.dumps(build_summary("recon", {"none": ct}, [])))
    old = tmp_path / "recon" / "old"
    old.mkdir(parents=True)
    (old / "summary.json").write_text(json.dumps({"experiment": "recon", "metrics": {
        "none:attacker_modbus_success": {"n": 3, "mean": 0.5, "ci95": 0.25}}}))
    table, out = compare([new, old], tmp_path / "cmp")
    assert "1.00 [0.44, 1.00] 3/3 (wilson)" in table and "0.5 [0.25, 0.75] (n=3, t)" in table
    rows = read_rows(out / "comparison.csv")
    assert (rows[0]["metric"], rows[0]["k"], rows[0]["n"]) == (
        "none:attacker_modbus_success", "3", "3")


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_summary_bundle(tmp_path, "rtt", "A", {"rtt_avg_ms": (1.0, 0.1, 3)})
    b = make_summary_bundle(tmp_path, "recon", "B", {"host_recall": (1.0, 0.0, 3)})
    failed = make_summary_bundle(tmp_path, "recon", "C", {})
    out = ["--out", str(tmp_path / "cmp")]
    assert "share no metric" in one_line_error(capsys, [str(a), str(b), *out])
    assert "no metric)" in one_line_error(capsys, [str(a), str(failed), *out])
    assert "at least two" in one_line_error(capsys, [str(a), *out])
    assert "not a directory" in one_line_error(capsys, [str(a), str(tmp_path / "x"), *out])
    assert "no summary.json" in one_line_error(capsys, [str(a), str(tmp_path), *out])
    (b / "summary.json").write_text("[1, 2")
    assert "not valid JSON" in one_line_error(capsys, [str(a), str(b), *out])
    (b / "summary.json").write_text("{}")
    assert "no 'conditions'" in one_line_error(capsys, [str(a), str(b), *out])
    one_line_error(capsys, [])
    one_line_error(capsys, [str(a), str(a), "--bogus"])
    assert not (tmp_path / "cmp").exists()  # nothing written on error


def test_default_out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         two_bundles: tuple[Path, Path]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*map(str, two_bundles)]) == 0
    [out] = (tmp_path / "results" / "compare").iterdir()
    assert (out / "comparison.csv").exists() and (out / "comparison.svg").exists()
