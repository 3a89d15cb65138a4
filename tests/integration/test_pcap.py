"""``--pcap`` as a Wireshark user meets it: one short recon trial captured, then dissected by
``tshark``: Modbus/TCP function codes and register values (the same values the HMI logged),
OpenFlow packet-ins through the decode-as hint stored beside the pcaps, a trunk port, whole
frames. One network build (about 15 s) for every check."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.plan import ics_plan

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOC = "docs/captures.md"


def doc_lines() -> list[str]:
    """The lines of docs/captures.md, whose commands these tests run."""
    return (REPO / DOC).read_text().splitlines()


def tshark(pcap: Path, *args: str, home: Path | None = None) -> list[str]:
    """tshark's field lines for ``pcap`` (HOME: whose Wireshark profile it reads)."""
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
        env.pop("XDG_CONFIG_HOME", None)
    res = subprocess.run(["tshark", "-r", str(pcap), *args], capture_output=True, text=True,
                         timeout=120, check=False, env=env)
    assert res.returncode == 0, res.stderr
    return [ln for ln in res.stdout.splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pcap folder of one ``recon --quick --defense none --pcap`` trial."""
    if shutil.which("tshark") is None or shutil.which("tcpdump") is None:
        pytest.skip("tshark/tcpdump not installed (sudo make setup; make test installs them)")
    out = tmp_path_factory.mktemp("pcap-run")
    # The command docs/captures.md shows (as root already: no sudo), into a temporary root.
    (line,) = [ln for ln in doc_lines() if ln.startswith("sudo .venv/bin/sdn-ics-lab ")]
    args = shlex.split(line.removeprefix("sudo "))
    args[0] = str(Path(sys.executable).parent / "sdn-ics-lab")
    res = subprocess.run([*args, "--quiet", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    folders = sorted(out.glob("recon/latest/raw/trial-001/*/pcap"))
    assert len(folders) == 1, folders
    return folders[0]


def test_capture_folder_lists_every_host_the_trunk_and_the_openflow_channel(
        capture: Path) -> None:
    info = json.loads((capture / "capture.json").read_text())
    plan = ics_plan()
    files = {f["file"]: f for f in info["files"]}
    assert set(files) == ({f"{h.name}.pcap" for h in plan.hosts}
                          | {"s1-eth1.pcap", "openflow.pcap"})
    assert info["snaplen_bytes"] == 0
    assert files["openflow.pcap"]["filter"] == f"tcp port {info['openflow_port']}"
    readme = (capture / "README.txt").read_text()
    assert f"-d tcp.port=={info['openflow_port']},openflow" in readme
    for name in files:
        assert (capture / name).stat().st_size > 24, name  # more than the pcap header


def test_modbus_function_codes_and_register_values_match_the_hmi(capture: Path) -> None:
    plc1 = ics_plan().host("plc1")
    lines = tshark(capture / "plc1.pcap", "-Y", "modbus", "-T", "fields", "-e", "ip.src",
                   "-e", "modbus.func_code", "-e", "modbus.regval_uint16")
    fields = [ln.split("\t") for ln in lines]
    codes = {int(code) for _src, code, _v in fields if code}
    assert {3, 4} <= codes, codes  # the HMI reads holding and input registers
    wire = {tuple(int(v) for v in vals.split(",")) for src, code, vals in fields
            if src == plc1.ip and code == "3" and vals}
    assert wire, "no read-holding-registers reply with values decoded"
    with open(capture.parent / "hmi_requests.csv", newline="") as f:
        logged = {tuple(int(v) for v in r["values"].split()) for r in csv.DictReader(f)
                  if r["plc"] == "plc1" and r["function"] == "read_holding_registers"
                  and r["outcome"] == "ok"}
    assert wire <= logged and wire, (wire, logged)
    # The trunk between the switches carries the same conversation.
    assert tshark(capture / "s1-eth1.pcap", "-Y", "modbus.func_code == 3")


def test_openflow_packet_ins_decode_with_the_stored_hint(capture: Path, tmp_path: Path) -> None:
    info = json.loads((capture / "capture.json").read_text())
    pcap = capture / "openflow.pcap"
    assert not tshark(pcap, "-Y", "openflow_v4"), "decoded without a hint: port is not random?"
    hinted = tshark(pcap, "-d", f"tcp.port=={info['openflow_port']},openflow", "-Y",
                    "openflow_v4.type == 10", "-T", "fields", "-e", "frame.number")
    assert len(hinted) > 5
    # The decode_as_entries file works as Wireshark's own profile file.
    profile = tmp_path / ".config" / "wireshark"
    profile.mkdir(parents=True)
    shutil.copy(capture / "decode_as_entries", profile / "decode_as_entries")
    assert tshark(pcap, "-Y", "openflow_v4.type == 10", "-T", "fields", "-e", "frame.number",
                  home=tmp_path) == hinted


def test_the_documented_tshark_lines_decode(capture: Path) -> None:
    port = json.loads((capture / "capture.json").read_text())["openflow_port"]
    lines = [ln for ln in doc_lines() if ln.startswith("tshark ")]
    assert len(lines) == 2
    for line in lines:
        res = subprocess.run(line.replace("PORT", str(port)), shell=True, cwd=capture,
                             capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 0 and len(res.stdout.splitlines()) > 5, (line, res.stderr)


def test_frames_are_captured_whole(capture: Path) -> None:
    longest = 0
    for pcap in capture.glob("*.pcap"):
        for ln in tshark(pcap, "-T", "fields", "-e", "frame.cap_len", "-e", "frame.len"):
            cap_len, length = (int(x) for x in ln.split("\t"))
            assert cap_len == length, f"{pcap.name}: a frame cut at {cap_len} of {length} bytes"
            longest = max(longest, length)
    assert longest > 256  # what the old -s 256 would have cut (packet-ins carry whole frames)


def test_lab_mode_pcap_option_and_prompt_command(tmp_path: Path) -> None:
    """``--pcap hmi`` from the start, then ``pcap stop`` / ``pcap start`` at the prompt."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make test installs it)")
    script = tmp_path / "session.txt"
    script.write_text("pcap\nsleep 2\npcap start plc1\npcap stop\npcap start nosuch\n"
                      "pcap start plc1,trunks\nsleep 2\npcap stop\npcap stop\n")
    res = subprocess.run([sys.executable, "-m", "topologies.ics", "--script", str(script),
                          "--pcap", "hmi", "--out", str(tmp_path / "results")], cwd=REPO,
                         capture_output=True, text=True, timeout=180, check=False)
    out = res.stdout
    assert res.returncode == 0, out[-2000:] + res.stderr[-2000:]
    run_dir = Path(next(ln for ln in out.splitlines() if "lab: run folder" in ln).split()[-1])
    assert f"capture in {run_dir / 'pcap'} (running" in out
    assert "pcap: already capturing" in out
    assert "pcap: 'nosuch' is no host" in out
    assert f"pcap: capturing plc1, s1-eth1, openflow into {run_dir / 'pcap-2'}" in out
    assert "pcap: no capture running" in out
    assert {p.name for p in (run_dir / "pcap").glob("*.pcap")} == {"hmi.pcap", "openflow.pcap"}
    second = run_dir / "pcap-2"
    assert {p.name for p in second.glob("*.pcap")} == {"plc1.pcap", "s1-eth1.pcap",
                                                        "openflow.pcap"}
    assert tshark(run_dir / "pcap" / "hmi.pcap", "-Y", "modbus.func_code == 3")
    assert tshark(second / "plc1.pcap", "-Y", "modbus.func_code == 4")
    assert tshark(second / "s1-eth1.pcap", "-Y", "modbus")
