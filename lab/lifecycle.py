"""The lab lifecycle: build the emulated network, start the controller, wait until every switch
is connected, start devices, yield, and tear down exactly what was created.

Everything the lab creates is recorded in a :class:`~lab.runstate.RunState` *before* it
is created, so ``python -m experiments.clean`` can finish the job after a crash. Never
``mn -c``: that kills every controller and deletes every bridge on the machine.

This module is the order of it all and the controller process; building and stopping the
network is :mod:`lab.network`'s, starting and stopping what runs in the hosts is
:mod:`lab.processes`'s.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import LabError
from common.plan import AddressPlan
from lab import cluster_nodes
from lab.capture import CaptureSpec, RunningCapture, start_capture
from lab.cluster import ClusterSpec
from lab.network import (
    SWITCH_PREFIX_ENV,
    new_network,
    quiet_mininet,
    start_network,
    stop_network,
)
from lab.processes import (
    HostProcesses,
    exit_description,
    log_tail,
    signals_deferred,
    terminate,
)
from lab.runstate import RunState
from lab.teardown import remove_recorded

log = logging.getLogger(__name__)

CONTROLLER_ERROR_MARKERS = ("HANDLER EXCEPTION", "Traceback (most recent call last)")


@dataclass(frozen=True)
class LabConfig:
    """How to build one lab.

    engine: ``ryu`` or ``os-ken`` (resolved, not ``auto``).
    datapath: ``user`` or ``kernel`` (resolved by lab.platform.choose_datapath).
    app: controller app short name (``python -m controllers list``).
    log_dir: where the controller's and devices' logs go (inside the results bundle).
    capture: what to capture once the switches are connected (None: nothing).
    cluster: run over these servers (``--cluster``, :mod:`lab.cluster_nodes`); None: here.
    """

    plan: AddressPlan
    log_dir: Path
    engine: str = "ryu"
    datapath: str = "user"
    app: str = "l2"
    link_delay_ms: float = 0.0
    link_loss_pct: float = 0.0
    connect_timeout_s: float = 30.0
    controller_args: tuple[str, ...] = field(default=())
    switch_prefix: str = field(default_factory=lambda: os.environ.get(SWITCH_PREFIX_ENV, ""))
    capture: CaptureSpec | None = None
    cluster: ClusterSpec | None = None


def free_loopback_port() -> int:
    """An unused TCP port on 127.0.0.1 for the OpenFlow listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab(HostProcesses):
    """A running emulated network. Created only by :func:`running_lab`."""

    def __init__(self, cfg: LabConfig, state: RunState) -> None:
        super().__init__(state, cfg.log_dir)
        self.cfg = cfg
        self.plan = cfg.plan
        self.net = None  # mininet.net.Mininet once built
        self.ofp_port = 0
        self.controller: subprocess.Popen[bytes] | None = None
        self.controller_log = cfg.log_dir / "controller.log"
        self.timeline: dict[str, float] = {}
        self.capture: RunningCapture | None = None
        self._errors_from = 0  # controller-log byte offset the health check reads from


    def host(self, name: str):  # -> mininet.node.Host
        assert self.net is not None
        return self.net.get(name)

    # --- controller ----------------------------------------------------------------------
    def controller_alive(self) -> bool:
        return self.controller is not None and self.controller.poll() is None

    def controller_errors(self) -> list[str]:
        """Lines of the controller log that show an unhandled exception."""
        try:
            with open(self.controller_log, "rb") as f:
                f.seek(self._errors_from)
                text = f.read().decode(errors="replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines()
                if any(marker in ln for marker in CONTROLLER_ERROR_MARKERS)]

    def check_healthy(self) -> None:
        """LabError when the controller died or logged an exception (the trial fails)."""
        if not self.controller_alive():
            code = self.controller.returncode if self.controller else None
            raise LabError(f"controller process died ({exit_description(code)}); last log "
                           f"line: {log_tail(self.controller_log, 1)}")
        errors = self.controller_errors()
        if errors:
            raise LabError(f"controller logged {len(errors)} exception(s): {errors[0]}")

    # --- a lab kept across trials (lab.warm) --------------------------------------------
    def begin_trial(self, log_dir: Path, reused: bool) -> None:
        """The next trial on this lab: what it starts logs into ``log_dir``, and only
        controller errors logged from now on fail it. reused: the network was built for an
        earlier trial (its build and connect then cost this trial nothing)."""
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir = log_dir
        if reused:
            self.timeline = {"build_s": 0.0, "connect_s": 0.0}
        self.timeline["lab_reused"] = 1.0 if reused else 0.0
        try:
            self._errors_from = self.controller_log.stat().st_size
        except OSError:
            self._errors_from = 0

    def reset_hosts(self) -> None:
        """After a trial on a kept lab: stop every process it started in the hosts and empty
        every host's neighbour cache (what the next trial learns, it learns on the wire)."""
        self.stop_all(grace_s=3.0)
        assert self.net is not None
        procs = []
        with signals_deferred():  # one flush per host, all at once, each pid recorded
            for host in self.net.hosts:
                proc = host.popen(["ip", "neigh", "flush", "all"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                self.state.add_process(proc.pid, f"{host.name}:ip")
                procs.append(proc)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            finally:
                self.state.drop_process(proc.pid)

    # --- lifecycle steps -----------------------------------------------------------------
    def _start_controller(self) -> None:
        self.ofp_port = free_loopback_port()
        cmd = [sys.executable, "-u", "-m", "controllers", self.cfg.app,
               "--engine", self.cfg.engine, "--ofp-port", str(self.ofp_port),
               "--log-file", str(self.controller_log), *self.cfg.controller_args]
        if self.cfg.cluster is not None:  # the head's cluster-facing address only
            cmd += ["--ofp-host", self.cfg.cluster.controller_address, "--cluster-facing"]
        # Own session: a Ctrl-C at the terminal reaches the runner, which then stops the
        # controller in order, instead of killing it under a live network.
        out = open(self.cfg.log_dir / "controller.stdout.log", "ab")
        with signals_deferred():
            self.controller = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL,
                                               start_new_session=True)
            self.state.add_process(self.controller.pid, "controller")
        out.close()

    def _build_network(self) -> None:
        # The controller process imported its framework while the hosts and links were made;
        # switches are created only once it listens (no failed first connection attempt).
        if self.cfg.cluster is not None:
            self.net = cluster_nodes.new_cluster_network(
                self.plan, self.state, self.cfg.cluster, ofp_port=self.ofp_port,
                datapath=self.cfg.datapath, switch_prefix=self.cfg.switch_prefix)
            cluster_nodes.start_cluster_network(self.net, self.state, self.cfg.datapath,
                                                before_switches=self._wait_controller_ready)
            return
        self.net = new_network(self.plan, self.state, ofp_port=self.ofp_port,
                               datapath=self.cfg.datapath, switch_prefix=self.cfg.switch_prefix,
                               link_delay_ms=self.cfg.link_delay_ms,
                               link_loss_pct=self.cfg.link_loss_pct)
        start_network(self.net, self.state, self.cfg.datapath,
                      before_switches=self._wait_controller_ready)

    def _start_captures(self) -> None:
        """``--pcap``: tcpdump into ``pcap/`` (:mod:`lab.capture`), the OpenFlow channel too."""
        if self.cfg.capture is not None:
            self.capture = start_capture(self, self.cfg.capture, self.cfg.log_dir / "pcap")

    def _wait_controller_ready(self) -> None:
        """The launcher logs ``controller ready`` once it listens; build only then."""
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        while "controller ready" not in self._controller_log_text():
            if not self.controller_alive():
                raise LabError(f"controller exited with {self.controller.returncode} at start: "
                               f"{log_tail(self.controller_log)} "
                               f"{log_tail(self.cfg.log_dir / 'controller.stdout.log')}")
            if time.monotonic() > deadline:
                raise LabError(f"controller not listening within {self.cfg.connect_timeout_s:g} s")
            time.sleep(0.02)

    def _controller_log_text(self) -> str:
        try:
            return self.controller_log.read_text(errors="replace")
        except OSError:
            return ""

    def _wait_connected(self) -> None:
        """Poll until every switch of the plan is connected.

        The controller logs ``switch connected dpid=<16 hex>`` on each features reply: that is
        immediate, while OVS refreshes its ``is_connected`` column only every few seconds.
        """
        assert self.net is not None
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        pending = {sw.dpid for sw in self.plan.switches}
        while pending:
            text = self._controller_log_text()
            pending = {d for d in pending if f"switch connected dpid={d}" not in text}
            if not pending:
                return
            if not self.controller_alive():
                raise LabError(f"controller exited with {self.controller.returncode} before "
                               f"the switches connected: {log_tail(self.controller_log)}")
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in self.plan.switches if s.dpid in pending)
                raise LabError(f"switch(es) {names} did not connect to the controller on "
                               f"127.0.0.1:{self.ofp_port} within "
                               f"{self.cfg.connect_timeout_s:g} s")
            time.sleep(0.02)

    def _teardown(self) -> None:
        # Ctrl-C during teardown would leave half a network: finish first.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self.stop_all(grace_s=3.0)
            if self.net is not None:
                try:
                    if self.cfg.cluster is not None:
                        cluster_nodes.stop_cluster_network(self.net)
                    else:
                        stop_network(self.net)
                except Exception as exc:
                    log.warning("mininet stop: %s", exc)
            if self.controller is not None:
                terminate(self.controller)
            leftovers = remove_recorded(self.state)
            if leftovers.total():
                log.info("teardown safety net removed %s", leftovers.describe())
            self.state.remove()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


@contextmanager
def running_lab(cfg: LabConfig) -> Iterator[Lab]:
    """Build → controller → connected → yield → teardown (also on Ctrl-C / SIGTERM)."""
    quiet_mininet()
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    state = RunState.new(f"lab-{os.getpid()}-{uuid.uuid4().hex[:8]}", cfg.log_dir)
    lab = Lab(cfg, state)
    t0 = time.monotonic()
    try:
        lab._start_controller()
        lab._build_network()
        lab.timeline["build_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        lab._wait_connected()
        lab.timeline["connect_s"] = time.monotonic() - t1
        lab._start_captures()
        yield lab
    finally:
        t2 = time.monotonic()
        lab._teardown()
        lab.timeline["teardown_s"] = time.monotonic() - t2
