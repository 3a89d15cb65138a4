"""The lab guides, run: every ``mininet>`` command of every guide in docs/labs is typed into a
real lab (``python -m topologies.ics|classic --script``), and its output must show what the
guide says it shows. Also: leaving the prompt by EOF, Ctrl-C and SIGTERM tears the lab down.

The commands, their excerpts and checks come from the guides themselves
(:mod:`lab.guide`), so a guide cannot show a command that is not tested.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab.guide import excerpt_mismatch, parse_guide, split_transcript

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GUIDES = sorted((REPO / "docs" / "labs").glob("[0-9][0-9]-*.md"))
PREFIX = os.environ.get("SDNICS_SWITCH_PREFIX", "")
PART_TIMEOUT_S = 150.0


def _parts() -> list[tuple[Path, int]]:
    return [(g, i) for g in GUIDES for i in range(1, len(parse_guide(g.read_text(), g.name)) + 1)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _no_lab_left() -> None:
    bridges = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert f"{PREFIX}s1" not in bridges and f"{PREFIX}s2" not in bridges, bridges


def test_every_guide_has_parts_and_commands() -> None:
    assert len(GUIDES) == 6
    for guide in GUIDES:
        parts = parse_guide(guide.read_text(), guide.name)
        assert parts and all(p.steps for p in parts), guide.name


@pytest.mark.parametrize("guide, index", _parts(),
                         ids=[f"{g.stem}-part{i}" for g, i in _parts()])
def test_guide_part(guide: Path, index: int, tmp_path: Path) -> None:
    part = parse_guide(guide.read_text(), guide.name)[index - 1]
    for module in part.needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{guide.name} part {index} needs {module}, not in this checkout yet")
    script = tmp_path / "lab.cli"
    script.write_text(part.script())
    (tmp_path / "plants").symlink_to(REPO / "plants")  # guides name plant files relatively
    # cwd: a scratch folder, so the guide's relative run folder (results/lab/...) lands there.
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", part.module, *part.argv, "--script",
                          str(script)], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=PART_TIMEOUT_S)
    transcript = res.stdout
    (tmp_path / "transcript.txt").write_text(transcript + "\n--- stderr\n" + res.stderr)
    print(f"{guide.name} part {index}: {len(part.steps)} command(s) in "
          f"{time.monotonic() - started:.1f} s")
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr[-2000:]}"
    pairs = split_transcript(transcript)
    assert [cmd for cmd, _ in pairs] == [s.command for s in part.steps]
    for step, (_cmd, out) in zip(part.steps, pairs, strict=True):
        missing = excerpt_mismatch(step.excerpt, out)
        assert missing is None, (f"{guide.name}: `{step.command}` did not print "
                                 f"{missing!r}; it printed:\n{out}")
        for regex in step.expects:
            assert re.search(regex, out), (f"{guide.name}: `{step.command}`: no match for "
                                           f"{regex!r} in:\n{out}")
        assert "Traceback" not in out and "Unknown command" not in out, out
    assert "lab: torn down" in transcript
    run_dirs = list((tmp_path / "results" / "lab").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "controller.log").is_file()
    _no_lab_left()


class _Session:
    """An interactive lab on pipes: what it printed so far, read by a thread."""

    def __init__(self, tmp_path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "topologies.ics", "--cli"],
                                     cwd=tmp_path, env=_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 4096):
            self.out += chunk

    def wait_for(self, text: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text.encode() not in self.out:
            assert time.monotonic() < deadline, f"no {text!r} in: {self.out.decode()[-2000:]}"
            assert self.proc.poll() is None, f"exited: {self.out.decode()[-2000:]}"
            time.sleep(0.05)

    def finish(self, timeout_s: float = 60.0) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code, self.out.decode(errors="replace")


@pytest.mark.parametrize("how", ["eof", "exit", "ctrl-c", "sigterm"])
def test_leaving_the_prompt_tears_the_lab_down(how: str, tmp_path: Path) -> None:
    session = _Session(tmp_path)
    session.wait_for("mininet> ")
    assert session.proc.stdin is not None
    session.proc.stdin.write(b"plc\n")
    session.proc.stdin.flush()
    session.wait_for("setpoints:")
    session.wait_for("mininet> ", 5)  # the next prompt
    if how == "eof":
        session.proc.stdin.close()
    elif how == "exit":
        session.proc.stdin.write(b"exit\n")
        session.proc.stdin.flush()
    else:
        time.sleep(1.5)  # past the grace period of a Ctrl-C right after a command
        session.proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    code, out = session.finish()
    if how == "sigterm":
        assert code == 130, out
        assert "interrupted: the lab was torn down" in out
    else:
        assert code == 0, out
        assert "lab: torn down" in out
    if how == "ctrl-c":
        assert "Ctrl-C: leaving the lab" in out
    assert "Traceback" not in out, out
    _no_lab_left()
