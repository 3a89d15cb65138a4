"""Suite-wide checks: integration tests need root and Open vSwitch; after the whole suite no
bridge, interface, run-state record or process of the project may be left."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_PROC = re.compile(
    r"-m (controllers|plc\.|attacks\.|defenses\.|experiments\.run|topologies\.)|mnexec"
    r"|mininet:")
PREFIX = os.environ.get("SDNICS_SWITCH_PREFIX", "")
# In CI (alone on the machine) every new bridge, interface or process counts. On a developer
# machine where other networks run beside this suite, only this suite's own names count:
# bridges/ports with its switch prefix, processes that carry its prefix in their environment.
STRICT = os.environ.get("CI") == "true" or os.environ.get("SDNICS_STRICT_RESIDUE") == "1"
OWN_NAME = re.compile(rf"^{re.escape(PREFIX)}s\d+(-eth\d+)?$")


def _own(name: str) -> bool:
    return STRICT or bool(OWN_NAME.match(name))


def _own_process(pid: str) -> bool:
    if STRICT:
        return True
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    theirs = next((e.split(b"=", 1)[1].decode() for e in env
                   if e.startswith(b"SDNICS_SWITCH_PREFIX=")), "")
    return theirs == PREFIX


def _bridges() -> set[str]:
    if shutil.which("ovs-vsctl") is None:
        return set()
    res = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                         text=True, check=False)
    return {b for b in res.stdout.split() if _own(b)}


def _eth_interfaces() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir() if "-eth" in p.name and _own(p.name)}


def _project_processes() -> set[str]:
    found = set()
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Not "pytest" anywhere in the line: a leaked process may have a pytest tmp path in it.
        runner = " -m pytest" in cmd or cmd.split(" ", 1)[0].endswith("pytest")
        if PROJECT_PROC.search(cmd) and not runner and _own_process(proc.name):
            found.add(f"{proc.name}: {cmd.strip()[:100]}")
    return found


def _run_states() -> set[str]:
    from lab.runstate import STATE_DIR, RunState

    if not STATE_DIR.is_dir():
        return set()
    names = set()
    for p in STATE_DIR.glob("lab-*.json"):
        try:
            bridges = RunState.load(p).bridges
        except (OSError, ValueError, TypeError):
            continue
        # A record without bridges yet may be a neighbour's lab starting up: strict mode only.
        if (STRICT and not bridges) or any(_own(b) for b in bridges):
            names.add(p.name)
    return names


def ovs_ready() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root"
    if shutil.which("mnexec") is None or shutil.which("ovs-vsctl") is None:
        return False, "Mininet/Open vSwitch not installed (make setup)"
    res = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, check=False)
    if res.returncode != 0:
        return False, "Open vSwitch is not running (make setup starts it)"
    return True, ""


@pytest.fixture(scope="session", autouse=True)
def no_residue_after_suite():
    """Fail the session if the suite left anything of the project on the machine."""
    before = (_bridges(), _eth_interfaces(), _project_processes(), _run_states())
    yield
    after = (_bridges(), _eth_interfaces(), _project_processes(), _run_states())
    labels = ("OVS bridges", "interfaces", "processes", "run-state records")
    left = [f"{label}: {sorted(a - b)}" for label, b, a in zip(labels, before, after, strict=True)
            if a - b]
    print(f"\nresidue check after the suite: {len(left)} kind(s) of leftovers")
    assert not left, "the suite left residue: " + "; ".join(left)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ok, why = ovs_ready()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"integration test: {why}")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
