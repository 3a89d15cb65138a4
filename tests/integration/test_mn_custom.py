"""Mininet's own ``mn --custom`` with the project's learning-switch controller, as the README
types it: the README's block (controller in the background, ``mn ... --test pingall``, ``kill
%1``) is run as a bash script and every host pings every other with 0% loss.

``mn`` removes its own switches and links at a normal exit; the test removes the bridges only
if they are left and did not exist before, and stops the script's process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.doc_commands import REPO, block_run_by, sudo_shim

pytestmark = pytest.mark.integration

DOC = "README.md"
SWITCHES = ("s1", "s2")  # what `--topo ics` creates, as typed
OFP_PORT = 6653


def bridges() -> set[str]:
    res = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                         text=True, check=True)
    return set(res.stdout.split())


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_mn_custom_with_the_l2_controller_pings_all(tmp_path: Path) -> None:
    (block,) = block_run_by("tests/integration/test_mn_custom.py", DOC)
    assert f"port={OFP_PORT}" in block.script() and "--test pingall" in block.script()
    before = bridges()
    if before & set(SWITCHES):
        pytest.skip(f"bridges {sorted(before & set(SWITCHES))} exist (another network): "
                    "mn would replace them")
    if not port_free(OFP_PORT):
        pytest.skip(f"127.0.0.1:{OFP_PORT} is in use (another controller)")
    shim = sudo_shim(tmp_path)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    proc = subprocess.Popen(["bash", "-c", block.script()], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the README's mn block did not finish in 120 s:\n{out[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the controller, if `kill %1` was not reached
        except ProcessLookupError:
            pass
        left = bridges() & set(SWITCHES) - before
        for br in sorted(left):
            subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", br],
                           check=False)
    assert proc.returncode == 0, out[-3000:]
    assert "*** Results: 0% dropped (30/30 received)" in out, out[-3000:]
    assert "Caught exception" not in out, out[-3000:]
    assert not left, f"mn left bridges behind: {sorted(left)}"
