"""compare: shared metrics of several bundles, table, long CSV, plot, one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reporting.compare import compare, load_bundles, main, shared_metrics

DATA = Path(__file__).parent / "data" / "bundles"


def make_summary_bundle(root: Path, experiment: str, stamp: str,
                        metrics: dict[str, tuple[float | None, float | None, int]]) -> Path:
    """A bundle with only what compare reads: summary.json (and a manifest)."""
    b = root / experiment / stamp
    b.mkdir(parents=True)
    summary: dict[str, Any] = {"experiment": experiment, "trials_completed": 3,
                               "trials_failed": 0, "trials_invalid": 0, "failures": [],
                               "metrics": {}}
    for name, (mean, ci, n) in metrics.items():
        summary["metrics"][name] = {"n": n, "mean": mean, "ci95": ci, "std": None,
                                    "median": mean, "min": mean, "max": mean}
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
    assert list(rows[0]) == ["bundle", "experiment", "metric", "mean", "ci95", "n"]
    assert [(r["bundle"], r["metric"], r["mean"], r["ci95"], r["n"]) for r in rows] == [
        ("recon/20260101T000000Z", "host_recall", "1", "0", "3"),
        ("recon_mtd/20260102T000000Z", "host_recall", "0.4", "0.125", "5"),
        ("recon/20260101T000000Z", "discovery_s", "1.876", "0.0061", "3"),
        ("recon_mtd/20260102T000000Z", "discovery_s", "4.5", "1.25", "5"),
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
    assert "1.876 ± 0.0061 (3)" in line and "4.5 ± 1.25 (5)" in line
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
                       "mean": "1.5", "ci95": "", "n": "1"}
    assert rows[2]["mean"] == "" and rows[2]["n"] == "0"
    assert "1.5 (1)" in table and "- (0)" in table
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
    del s["metrics"]["rtt_avg_ms"]
    (other / "summary.json").write_text(json.dumps(s))
    table, out = compare([rtt, other], tmp_path / "cmp")
    metrics = {r["metric"] for r in read_rows(out / "comparison.csv")}
    assert "hmi_availability" in metrics and "rtt_avg_ms" not in metrics
    assert "(ics)" in table and "(rtt)" in table


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
    assert "no 'metrics'" in one_line_error(capsys, [str(a), str(b), *out])
    one_line_error(capsys, [])
    one_line_error(capsys, [str(a), str(a), "--bogus"])
    assert not (tmp_path / "cmp").exists()  # nothing written on error


def test_default_out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         two_bundles: tuple[Path, Path]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*map(str, two_bundles)]) == 0
    [out] = (tmp_path / "results" / "compare").iterdir()
    assert (out / "comparison.csv").exists() and (out / "comparison.svg").exists()
