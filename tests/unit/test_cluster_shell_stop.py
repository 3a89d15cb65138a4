"""A cluster node's ssh shell that does not end on SIGHUP cannot hang the teardown: it gets
``SHELL_EXIT_S``, then SIGKILL, and Mininet's clean-up (which waits without a time-out) runs."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from lab import cluster_nodes
from lab.cluster_nodes import _ClusterSsh

IGNORES_HUP = ("import signal, sys, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
               "print('up', flush=True); time.sleep(60)")


def node_with_shell(code: str) -> SimpleNamespace:
    shell = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert shell.stdout is not None and shell.stdout.readline() == "up\n"  # handler installed
    cleaned: list[int | None] = []
    node = SimpleNamespace(name="h1", shell=shell)
    # Mininet waits without a time-out; 10 s here, so that a hang fails the test
    node.cleanup = lambda: cleaned.append(shell.wait(timeout=10))
    node.cleaned = cleaned
    return node


def test_a_shell_ignoring_sighup_is_killed_after_its_grace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_nodes, "SHELL_EXIT_S", 0.5)
    node = node_with_shell(IGNORES_HUP)
    t0 = time.monotonic()
    _ClusterSsh.terminate(node)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 5
    assert node.cleaned == [-9]  # SIGKILL, and the clean-up ran


def test_a_shell_that_ends_on_sighup_is_not_killed() -> None:
    # SIG_DFL set explicitly: under nohup a child inherits SIGHUP ignored
    node = node_with_shell("import signal, time; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
                           "print('up', flush=True); time.sleep(60)")
    _ClusterSsh.terminate(node)  # type: ignore[arg-type]
    assert node.cleaned == [-1]  # SIGHUP's own exit
