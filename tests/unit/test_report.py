"""report.html: self-contained, escaped, flags invalid runs and failed trials (no root)."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from reporting.report import REPORT_NAME, load_bundle, main, render_report, write_report
from reporting.summary import metric_entries
from tests.support.bundles import draw_plot, make_bundle

DATA = Path(__file__).parent / "data" / "bundles"


def external_references(doc: str) -> list[str]:
    """Everything in the document that would make a browser fetch or open something."""
    bad = []
    for needle in ("http://", "https://", "//fonts.", "@import", "url(", "<script", "<link",
                   "<iframe", "<object", "<embed", 'src="/', "src='/", 'href="/'):
        if needle in doc:
            bad.append(needle)
    for attr, value in re.findall(r'\b(src|href|srcset|action)\s*=\s*"([^"]*)"', doc):
        if attr == "src" and not value.startswith("data:image/"):
            bad.append(f'{attr}="{value[:40]}"')
        if attr == "href" and not value.startswith("#"):
            bad.append(f'{attr}="{value[:40]}"')
        if attr in ("srcset", "action"):
            bad.append(attr)
    return bad


def test_images_embedded_with_captions(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    doc = write_report(b).read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', doc)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == (b / "alpha.png").read_bytes()
    assert base64.b64decode(images[1]) == (b / "beta.png").read_bytes()
    assert "Alpha caption" in doc and "Beta caption" in doc
    assert doc.index("alpha</b>") < doc.index("beta</b>")  # the manifest's order


def test_report_is_self_contained(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, hostile=True, failed=True, invalid=True, fidelity=True)
    doc = write_report(b).read_text()
    assert external_references(doc) == []
    assert "Content-Security-Policy" in doc and "default-src 'none'" in doc
    # the URLs of the files are still readable text
    assert "https&#58;//nmap.org" in doc and "http&#58;//example.org/beta" in doc


def test_everything_from_files_is_escaped(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, hostile=True, failed=True)
    doc = write_report(b).read_text()
    assert "<script" not in doc and "<b>&" not in doc
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;"
    assert doc.count(escaped) >= 5  # config, command, platform, error, caption
    assert "&lt;deep-cause&gt;" in doc  # the traceback tail


def test_complete_valid_run(tmp_path: Path) -> None:
    doc = write_report(make_bundle(tmp_path)).read_text()
    assert "Complete run" in doc
    assert "INVALID" not in doc and "FAILED" not in doc and "not scored</" not in doc
    assert 'id="fidelity"' not in doc  # no fidelity data, no section
    for fact in ("0123abcd", "6.1.0-test", "3.1.0", "ryu", "4.34", "3.16.1",
                 "python -m experiments.run demo --note plain",
                 "2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00"):
        assert fact in doc, fact


def test_invalid_run_is_flagged_and_not_scored(tmp_path: Path) -> None:
    doc = write_report(make_bundle(tmp_path, invalid=True)).read_text()
    assert "INVALID RUN" in doc
    assert "real_addresses_unreachable" in doc
    assert "are not scored" in doc
    assert 'class="pill fail">FAIL<' in doc and "failed in at least one trial" in doc
    assert 'class="pill invalid">invalid<' in doc
    assert "trial 2 (invalid, not scored)" in doc
    assert "Complete run" not in doc


def test_failed_trial_listed_with_error(tmp_path: Path) -> None:
    doc = write_report(make_bundle(tmp_path, failed=True)).read_text()
    assert "1 of 3 trial(s) FAILED" in doc
    assert 'class="pill failed">failed<' in doc
    assert "LabError: PLC plc1 exited with 1" in doc
    assert "raw/trial-003/error.txt" in doc and "Traceback" in doc


def test_summary_table(tmp_path: Path) -> None:
    doc = write_report(make_bundle(tmp_path)).read_text()
    for head in ("condition", "metric", "estimate", "95% interval", "k/n or n", "method"):
        assert f"<th>{head}</th>" in doc
    row = re.search(r"<tr><td>all</td><td>rtt_avg_ms</td>(.*?)</tr>", doc).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells == ["2", "[-0.4842, 4.484]", "n=3", "Student t"]
    row = re.search(r"<tr><td>all</td><td>plc_reached</td>(.*?)</tr>", doc).group(1)
    # 3 of 3: a Wilson interval with k/n, never "± 0".
    assert re.findall(r"<td[^>]*>(.*?)</td>", row) == [
        "1.00", "[0.44, 1.00]", "3/3 over 3 trial(s)", "Wilson score"]
    assert "±" not in doc


def test_results_first_provenance_last(tmp_path: Path) -> None:
    doc = write_report(make_bundle(tmp_path, invalid=True)).read_text()
    order = [doc.index(f'id="{a}"') for a in ("results", "plots", "trials", "validity", "run")]
    assert order == sorted(order)
    assert doc.index("Package versions") > doc.index('id="plots"')
    # The invalid trial is counted as premise failed next to the results, not dropped.
    row = re.search(r"<tr><td>all</td>(<td class=\"num\">\d+</td>){2}<td>"
                    r"real_addresses_unreachable: 1</td>", doc)
    assert row and "<td class=\"num\">2</td><td class=\"num\">1</td>" in row.group(0)


def test_fidelity_section_and_saturation(tmp_path: Path) -> None:
    doc = write_report(make_bundle(tmp_path, fidelity=True)).read_text()
    assert 'id="fidelity"' in doc
    assert "SATURATED HOST" in doc and "trial(s) 1;" in doc
    assert "10.0 %" in doc  # the documented threshold, shown
    assert doc.count('class="pill saturated">SATURATED<') == 1


def test_midrun_validity_lists_and_missing_summary(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    m = json.loads((b / "manifest.json").read_text())
    m.update(validity={"scope_ok": [True, False]}, complete=False, ended_utc=None)
    (b / "manifest.json").write_text(json.dumps(m))
    (b / "summary.json").unlink()
    doc = write_report(b).read_text()
    assert "passed in 1 of 2 trial(s)" in doc and "INVALID RUN" in doc
    assert "INCOMPLETE" in doc and "No <code>summary.json</code>" in doc


def test_missing_and_uncaptioned_plots(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    m = json.loads((b / "manifest.json").read_text())
    m["plots"].append({"stem": "gone", "caption": "never drawn"})
    m["plots"].append({"stem": "../../secret", "caption": "outside"})
    (b / "manifest.json").write_text(json.dumps(m))
    (tmp_path / "secret.png").write_bytes(b"\x89PNG not ours")
    draw_plot(b, "extra")
    doc = write_report(b).read_text()
    assert "gone.png/.svg is missing" in doc
    assert "(no caption recorded)" in doc and "extra</b>" in doc
    assert base64.b64encode(b"\x89PNG not ours").decode() not in doc
    assert len(re.findall(r'<img src="data:image/png;base64,', doc)) == 3


def test_svg_only_plot_embedded_as_data_image(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    (b / "beta.png").unlink()
    doc = write_report(b).read_text()
    assert doc.count('src="data:image/svg+xml;base64,') == 1
    assert "<svg" not in doc and external_references(doc) == []


def test_pure_and_deterministic(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, failed=True, fidelity=True)
    first = write_report(b).read_bytes()
    assert write_report(b).read_bytes() == first
    assert render_report(load_bundle(b)).encode() == first
    assert not list(b.glob(".*tmp"))


@pytest.mark.parametrize("name", ["rtt-quick", "recon-failed"])
def test_real_runner_bundles(tmp_path: Path, name: str) -> None:
    """Bundles written by the real runner (a quick rtt run, a recon run whose trial failed)."""
    b = tmp_path / name
    shutil.copytree(DATA / name, b)
    manifest = json.loads((b / "manifest.json").read_text())
    if manifest["plots"]:
        from experiments.plot import replot

        assert [s for s, _ in replot(b)] == [p["stem"] for p in manifest["plots"]]
    doc = write_report(b).read_text()
    assert external_references(doc) == []
    assert len(re.findall(r'<img src="data:image/png;base64,', doc)) == len(manifest["plots"])
    for rec in manifest["trials"]:
        assert f'class="pill {rec["status"]}">{rec["status"]}<' in doc
        if rec.get("error"):
            assert rec["error"].replace("'", "&#x27;") in doc
    for e in metric_entries(json.loads((b / "summary.json").read_text())):
        assert f"<td>{e.condition}</td><td>{e.metric}</td>" in doc
    if name == "recon-failed":
        assert "No metric is scored" in doc and "FAILED" in doc


def test_cli_writes_and_rejects_bad_input(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    b = make_bundle(tmp_path)
    assert main([str(b)]) == 0
    assert (b / REPORT_NAME).exists()
    assert capsys.readouterr().out.strip() == str(b / REPORT_NAME)

    cases = [str(tmp_path / "nope"), str(tmp_path)]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    cases.append(str(bad))
    for arg in cases:
        assert main([arg]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert main([]) == 2
    assert capsys.readouterr().err.count("\n") == 1
