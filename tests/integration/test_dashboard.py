"""The dashboard in a real browser: lab mode with ``--dashboard`` while the injection attack
fills the tank, and the replay of a bundle (headless Chromium over the DevTools protocol)."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest

from common.groundtruth import read_ground_truth_file
from lab.runstate import all_states
from tests.support.browser import CHROMIUM, chromium, open_page
from tests.support.dashboard_runs import write_bundle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs /usr/bin/chromium (Debian package chromium)"),
]

REPO = Path(__file__).resolve().parents[2]
LAB_TIMEOUT_S = 120.0
SCRIPT = """\
attack inject --auto-off --pump-on --valve-close
sleep 22
plc
"""
LEVEL_JS = "(() => { const e = document.querySelector('.value[data-plc=\"plc1\"]');" \
           " return e ? [e.dataset.tS, e.dataset.value] : null; })()"
ALARM_JS = "(() => { const e = document.querySelector('[data-plc=\"plc1\"]" \
           "[data-bit=\"alarm_high_high\"]'); return e ? e.dataset.on : null; })()"


def _lines(proc: subprocess.Popen[str], out: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.put(line)


def _wait_line(lines: queue.Queue[str], pattern: str, seen: list[str]) -> re.Match[str]:
    while True:
        line = lines.get(timeout=LAB_TIMEOUT_S)
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m


def test_lab_mode_dashboard_shows_the_tank_and_its_alarm(tmp_path: Path) -> None:
    script = tmp_path / "lab.cli"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "topologies.ics", "--script", str(script), "--dashboard", "0",
         "--out", str(tmp_path / "results")], cwd=tmp_path, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc, lines), daemon=True).start()
    seen: list[str] = []
    try:
        run_dir = Path(_wait_line(lines, r"lab: run folder (\S+)", seen).group(1))
        url = _wait_line(lines, r"lab: dashboard (http://127\.0\.0\.1:\d+/)", seen).group(1)
        level, alarm_before, alarm_after = asyncio.run(_watch(url, tmp_path))
        assert alarm_before == "0" and alarm_after == "1"
        t_s, shown = float(level[0]), float(level[1])
        rows = read_ground_truth_file(run_dir / "plc1_state.csv")
        row = min(rows, key=lambda r: abs(r.t_s - t_s))
        assert abs(row.t_s - t_s) < 1e-3, "the page's PLC time is not a row of the CSV"
        assert shown == pytest.approx(row["level_cm"], rel=0.01)
        proc.wait(timeout=LAB_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        (tmp_path / "transcript.txt").write_text("".join(seen))
    assert proc.returncode == 0
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert not [s for s in all_states() if s.run_id.startswith(f"dashboard-{proc.pid}-")]


async def _watch(url: str, tmp_path: Path) -> tuple[list[str], str, str]:
    """(level and PLC time shown, alarm before, alarm after) read from the live page."""
    with chromium(tmp_path / "profile") as browser:
        async with aiohttp.ClientSession() as session:
            page, ws = await open_page(session, browser, url)
            try:
                await page.wait_for(LEVEL_JS, 20)
                alarm_before = await page.evaluate(ALARM_JS)
                level = await page.evaluate(LEVEL_JS)
                alarm_after = await page.wait_for(f"{ALARM_JS} === '1' && '1'", 40)
                await page.screenshot(tmp_path / "dashboard.png")
            finally:
                await ws.close()
    return level, alarm_before, alarm_after


def test_replay_shows_every_hop_in_the_browser(tmp_path: Path) -> None:
    hops = write_bundle(tmp_path / "bundle")["rhm"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.dashboard", str(tmp_path / "bundle"), "--speed",
         "20", "--port", "0"], cwd=REPO, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", proc.stdout.readline()).group(1)

        async def watch() -> list[str]:
            with chromium(tmp_path / "profile") as browser:
                async with aiohttp.ClientSession() as session:
                    page, ws = await open_page(session, browser, url)
                    try:
                        await page.wait_for("document.getElementById('replay').textContent"
                                            ".includes('finished')", 30)
                        await page.screenshot(tmp_path / "replay.png")
                        return await page.evaluate(
                            "[...document.querySelectorAll('.hop')].map(e => e.dataset.new)")
                    finally:
                        await ws.close()

        shown = asyncio.run(watch())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert sorted(shown) == sorted(h.new_virtual for h in hops)
    assert proc.returncode == 0
