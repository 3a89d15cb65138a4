"""Outputs belong to the user who ran sudo: a bundle written by ``sudo ... experiments.run`` (root,
with ``SUDO_UID``/``SUDO_GID`` set) is owned by that user, who re-plots and re-reports it without
root (``python -m experiments.plot DIR``, ``python -m experiments.report DIR``)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reporting.bundle import invoking_user

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
USER_UID = USER_GID = 65534  # nobody / nogroup: an unprivileged user every Debian system has


def as_user(argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` from the repository root as the unprivileged user (no root, no groups)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(["setpriv", f"--reuid={USER_UID}", f"--regid={USER_GID}",
                           "--clear-groups", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_invoking_user_reads_sudo_variables_only_as_root() -> None:
    env = {"SUDO_UID": "1000", "SUDO_GID": "1001"}
    assert invoking_user(env, euid=0) == (1000, 1001)
    assert invoking_user(env, euid=1000) is None  # not root: files are the user's already
    assert invoking_user({}, euid=0) is None  # plain root login
    assert invoking_user({"SUDO_UID": "0", "SUDO_GID": "0"}, euid=0) is None
    assert invoking_user({"SUDO_UID": "x", "SUDO_GID": "1"}, euid=0) is None


def test_bundle_written_under_sudo_is_replotted_by_that_user() -> None:
    pwd.getpwuid(USER_UID)  # KeyError (a failure) when the system has no nobody
    probe = as_user([sys.executable, "-c", "import experiments.plot"], Path("/"))
    if probe.returncode != 0:
        pytest.skip(f"the clone at {REPO} is not readable by other users: {probe.stderr[-200:]}")
    out = Path(tempfile.mkdtemp(prefix="sdnics-owner-"))
    try:
        out.chmod(0o755)  # like a user's own results folder: reachable by that user
        home = out / "home"
        home.mkdir()
        os.chown(home, USER_UID, USER_GID)
        res = subprocess.run(
            [sys.executable, "-m", "experiments.run", "rtt", "--quick", "--quiet", "--out",
             str(out)], cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
            env={**os.environ, "SUDO_UID": str(USER_UID), "SUDO_GID": str(USER_GID)})
        assert res.returncode == 0, res.stderr[-2000:]
        latest = out / "latest"
        bundle = latest.resolve()
        owned = [latest, out / "rtt", out / "rtt" / "latest", *bundle.rglob("*"), bundle]
        not_users = [str(p) for p in owned if p.lstat().st_uid != USER_UID
                     or p.lstat().st_gid != USER_GID]
        assert not not_users, f"left to root: {not_users[:5]}"
        pngs = sorted(bundle.glob("*.png"))
        assert pngs, "the run drew no plot"
        for p in [*pngs, bundle / "report.html"]:
            p.unlink(missing_ok=True)  # re-made below by the user, or the test fails
        plot = as_user([sys.executable, "-m", "experiments.plot", str(latest)], home)
        assert plot.returncode == 0, plot.stderr[-2000:]
        report = as_user([sys.executable, "-m", "experiments.report", str(latest)], home)
        assert report.returncode == 0, report.stderr[-2000:]
        for p in [*pngs, bundle / "report.html"]:
            assert p.exists() and p.stat().st_uid == USER_UID, f"{p.name} not re-made by the user"
    finally:
        shutil.rmtree(out, ignore_errors=True)
