"""Every ``sh`` block of README.md and docs/ without a marker, run as typed, in document order
(tests/support/doc_commands.py has the format).

The blocks run as bash scripts, stdin closed, in one sandbox: a temporary folder whose entries
link to the repository's (so ``.venv/bin/python`` and ``topologies/ics.py`` resolve) but with
its own ``results/``, so the first run's bundle serves the later blocks (plot, report, compare).
A block typed with ``sudo`` runs as root (a ``sudo`` that just runs its arguments, with
``SUDO_UID``/``SUDO_GID`` of an unprivileged user, as sudo sets them); a block typed without it
runs as that unprivileged user, so "no root needed" is checked too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.doc_commands import REPO, Block, run_here, sudo_shim

pytestmark = pytest.mark.integration

USER_UID = USER_GID = 65534  # nobody / nogroup
BLOCK_TIMEOUT_S = 240
BLOCKS = run_here()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sdnics-docs-"))
    try:
        root.chmod(0o755)
        for entry in REPO.iterdir():
            if entry.name != "results":
                (root / entry.name).symlink_to(entry)
        home = root / "home"
        home.mkdir()
        os.chown(home, USER_UID, USER_GID)
        sudo_shim(root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_block(block: Block, sandbox: Path) -> subprocess.CompletedProcess[str]:
    if block.as_root:
        env = {**os.environ, "PATH": f"{sandbox / 'docs-bin'}:{os.environ['PATH']}",
               "SUDO_UID": str(USER_UID), "SUDO_GID": str(USER_GID)}
        argv = ["bash", "-e", "-c", block.script()]
    else:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(sandbox / "home"),
               "LANG": "C.UTF-8"}
        argv = ["setpriv", f"--reuid={USER_UID}", f"--regid={USER_GID}", "--clear-groups",
                "bash", "-e", "-c", block.script()]
    return subprocess.run(argv, cwd=sandbox, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False)


def test_the_docs_have_commands_to_run() -> None:
    assert len(BLOCKS) >= 5, [b.where for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_doc_command_runs_as_typed(block: Block, sandbox: Path) -> None:
    if not block.as_root:
        probe = subprocess.run(["setpriv", f"--reuid={USER_UID}", f"--regid={USER_GID}",
                                "--clear-groups", sys.executable, "-c", "import experiments"],
                               cwd=sandbox, capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"the clone at {REPO} is not readable by other users")
    res = run_block(block, sandbox)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{block.where} exited {res.returncode}:\n{out[-3000:]}"
    for regex in block.expects:
        assert re.search(regex, out, re.MULTILINE), \
            f"{block.where}: no /{regex}/ in:\n{out[-3000:]}"
