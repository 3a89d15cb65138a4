"""The lab lifecycle: build the emulated network, start the controller, wait until every switch
is connected, start devices, yield, and tear down exactly what was created.

Everything the lab creates is recorded in a :class:`~lab.runstate.RunState` *before* it
is created, so ``python -m experiments.clean`` can finish the job after a crash. Never
``mn -c``: that kills every controller and deletes every bridge on the machine.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mininet.node import OVSSwitch, RemoteController
from mininet.util import quietRun

from common.cli import wait_until
from common.errors import LabError, SetupError
from common.plan import AddressPlan
from lab.runstate import RunState
from lab.teardown import existing_bridges, interface_exists, remove_recorded
from topologies.base import PlanTopo

if TYPE_CHECKING:
    from mininet.net import Mininet

log = logging.getLogger(__name__)

# Set to run a second lab beside a first one (tests, parallel helpers): bridges get the
# prefix (``t1s1``), so neither network touches the other's switches or ports.
SWITCH_PREFIX_ENV = "SDNICS_SWITCH_PREFIX"

CONTROLLER_ERROR_MARKERS = ("HANDLER EXCEPTION", "Traceback (most recent call last)")


@dataclass(frozen=True)
class LabConfig:
    """How to build one lab.

    engine: ``ryu`` or ``os-ken`` (resolved, not ``auto``).
    datapath: ``user`` or ``kernel`` (resolved by lab.platform.choose_datapath).
    app: controller app short name (``python -m controllers list``).
    log_dir: where the controller's and devices' logs go (inside the results bundle).
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
    pcap_hosts: tuple[str, ...] = ()


class ReadyController(RemoteController):
    """A RemoteController that does not probe the controller port.

    Mininet's check pipes ``echo A | telnet`` into the port and decodes whatever comes back as
    UTF-8 in its shell: the controller answers with a binary OpenFlow HELLO whose random xid
    makes that decode fail now and then (a UnicodeDecodeError in ``Node.read``). The lab has
    already waited for the launcher's ``controller ready`` line, logged once it listens.
    """

    def checkListening(self) -> None:
        return None


class LabSwitch(OVSSwitch):
    """OVSSwitch whose ``ovs-vsctl`` calls run as subprocesses, not through the node's shell.

    Mininet types ``ovs-vsctl ...`` into the switch's bash over a pty, and a pty line holds at
    most 4095 bytes: a switch with more than about 50 ports (one ``add-port`` clause each)
    got a truncated command, no bridge, and a lab that never connected. Same command, same
    shell quoting, no length limit.
    """

    def vsctl(self, *args: object, **kwargs: object) -> str | None:
        if self.batch:
            return super().vsctl(*args, **kwargs)
        cmd = " ".join(str(arg).strip() for arg in args)
        return quietRun(f"ovs-vsctl {cmd}", shell=True)


def free_loopback_port() -> int:
    """An unused TCP port on 127.0.0.1 for the OpenFlow listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def planned_interfaces(topo: PlanTopo) -> list[str]:
    """Root-namespace interface names Mininet will create for ``topo`` (switch ports).

    Mininet names an interface ``<node>-eth<port>`` with the port the Topo assigned, so the
    names are known before anything is built.
    """
    switches = set(topo.switches())
    names = []
    for src, dst, info in topo.links(sort=False, withKeys=False, withInfo=True):
        for node, port in ((src, info["port1"]), (dst, info["port2"])):
            if node in switches:
                names.append(f"{node}-eth{port}")
    return names


def record_planned_network(state: RunState, topo: PlanTopo) -> None:
    """Record the bridges and switch ports ``topo`` will create, before anything is built.

    SetupError when one of them exists already: it is not this run's, and this run's teardown
    (or ``experiments.clean``) would remove it.
    """
    clash = sorted(set(topo.switches()) & existing_bridges())
    if clash:
        raise SetupError(f"OVS bridge(s) {', '.join(clash)} already exist and are not this "
                         "run's; if a crashed run left them, run: python -m experiments.clean")
    intfs = planned_interfaces(topo)
    clash_if = [i for i in intfs if interface_exists(i)]
    if clash_if:
        raise SetupError(f"interface(s) {', '.join(clash_if[:3])} already exist; if a "
                         "crashed run left them, run: python -m experiments.clean")
    state.add_bridges(list(topo.switches()))
    state.add_interfaces(intfs)


def record_node_shells(state: RunState, net: Mininet) -> None:
    """Record the shell of every node of a built Mininet ``net`` for crash clean-up.

    Every node owns one: hosts in their namespaces, switches and a controller stand-in in the
    root one (``experiments.clean`` ends them, a crashed run's switch shells included).
    """
    nodes = (*net.hosts, *net.switches, *net.controllers)
    state.add_processes([(node.pid, f"shell:{node.name}") for node in nodes
                         if getattr(node, "pid", None)])


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a process is started and recorded, then deliver them.

    An interrupt between a child's fork and its run-state entry would leave a process no
    teardown knows of (seen: a PLC server outliving an interrupted run). Blocking the signals
    instead is no option: children inherit the signal mask. Main thread only; elsewhere a
    no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            os.kill(os.getpid(), pending[0])


def exit_description(code: int | None) -> str:
    """``-9`` → ``killed by SIGKILL``; ``1`` → ``exit status 1``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _tail(path: Path, n_lines: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n_lines:])


class Lab:
    """A running emulated network. Created only by :func:`running_lab`."""

    def __init__(self, cfg: LabConfig, state: RunState) -> None:
        self.cfg = cfg
        self.plan = cfg.plan
        self.state = state
        self.net = None  # mininet.net.Mininet once built
        self.ofp_port = 0
        self.controller: subprocess.Popen[bytes] | None = None
        self.controller_log = cfg.log_dir / "controller.log"
        self._procs: list[tuple[subprocess.Popen[bytes], str, IO[bytes]]] = []
        self.timeline: dict[str, float] = {}

    # --- hosts and processes -------------------------------------------------------------
    def host(self, name: str):  # -> mininet.node.Host
        assert self.net is not None
        return self.net.get(name)

    def popen(self, host_name: str, args: Sequence[str], log_name: str,
              env: dict[str, str] | None = None, what: str = "") -> subprocess.Popen[bytes]:
        """Start ``args`` inside ``host_name``'s namespace; output goes to ``log_dir/log_name``.

        The pid is recorded before this returns and the process is stopped at teardown.
        """
        host = self.host(host_name)
        logf = open(self.cfg.log_dir / log_name, "ab")
        with signals_deferred():
            proc = host.popen(list(args), stdout=logf, stderr=subprocess.STDOUT,
                              env=env or os.environ.copy())
            self.state.add_process(proc.pid, f"{host_name}:{what or Path(args[0]).name}")
            self._procs.append((proc, host_name, logf))
        return proc

    def run(self, host_name: str, args: Sequence[str], timeout_s: float
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a host and wait, bounded by ``timeout_s``.

        Output is read through a pipe and decoded leniently, not through Mininet's shell pty
        (``host.cmd``), which has no time-out and fails on a stray non-UTF-8 byte.
        """
        host = self.host(host_name)
        with signals_deferred():
            proc = host.popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.state.add_process(proc.pid, f"{host_name}:{Path(args[0]).name}")
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise LabError(f"{host_name}: {' '.join(args)} did not finish within "
                           f"{timeout_s:g} s") from None
        finally:
            self.state.drop_process(proc.pid)
        return subprocess.CompletedProcess(list(args), proc.returncode,
                                           out.decode(errors="replace"), "")

    def python(self, host_name: str, module: str, args: Sequence[str], log_name: str
               ) -> subprocess.Popen[bytes]:
        """Run ``python -m module args`` inside a host with this interpreter."""
        return self.popen(host_name, [sys.executable, "-u", "-m", module, *args], log_name,
                          what=module)

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> int | None:
        """SIGTERM a process this lab started, wait, SIGKILL if it does not go."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for i, (p, _h, logf) in enumerate(self._procs):
            if p is proc:
                logf.close()
                del self._procs[i]
                break
        self.state.drop_process(proc.pid)
        return proc.returncode

    def wait_for_log(self, log_name: str, needle: str, timeout_s: float,
                     proc: subprocess.Popen[bytes] | None = None) -> None:
        """Poll a process log until ``needle`` appears; LabError on timeout or early exit."""
        path = self.cfg.log_dir / log_name

        def seen() -> bool:
            try:
                if needle in path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            if proc is not None and proc.poll() is not None:
                raise LabError(f"{log_name}: process exited with {proc.returncode} before "
                               f"'{needle}': {_tail(path)}")
            return False

        if not wait_until(seen, timeout_s, interval_s=0.05):
            raise LabError(f"{log_name}: no '{needle}' within {timeout_s:g} s: {_tail(path)}")

    # --- controller ----------------------------------------------------------------------
    def controller_alive(self) -> bool:
        return self.controller is not None and self.controller.poll() is None

    def controller_errors(self) -> list[str]:
        """Lines of the controller log that show an unhandled exception."""
        try:
            text = self.controller_log.read_text(errors="replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines()
                if any(marker in ln for marker in CONTROLLER_ERROR_MARKERS)]

    def check_healthy(self) -> None:
        """LabError when the controller died or logged an exception (the trial fails)."""
        if not self.controller_alive():
            code = self.controller.returncode if self.controller else None
            raise LabError(f"controller process died ({exit_description(code)}); last log "
                           f"line: {_tail(self.controller_log, 1)}")
        errors = self.controller_errors()
        if errors:
            raise LabError(f"controller logged {len(errors)} exception(s): {errors[0]}")

    # --- lifecycle steps -----------------------------------------------------------------
    def _start_controller(self) -> None:
        self.ofp_port = free_loopback_port()
        cmd = [sys.executable, "-u", "-m", "controllers", self.cfg.app,
               "--engine", self.cfg.engine, "--ofp-port", str(self.ofp_port),
               "--log-file", str(self.controller_log), *self.cfg.controller_args]
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
        from mininet.link import Link, TCLink
        from mininet.net import Mininet

        prefix = self.cfg.switch_prefix
        if prefix and not (prefix.isalnum() and len(prefix) <= 4):
            raise SetupError(f"{SWITCH_PREFIX_ENV} must be 1-4 letters/digits, not {prefix!r}")
        topo = PlanTopo(self.plan, switch_prefix=prefix)
        # Record before creating: a crash between here and teardown stays cleanable.
        record_planned_network(self.state, topo)

        link_cls = Link
        link_opts: dict[str, object] = {}
        if self.cfg.link_delay_ms or self.cfg.link_loss_pct:
            link_cls = TCLink
            if self.cfg.link_delay_ms:
                link_opts["delay"] = f"{self.cfg.link_delay_ms:g}ms"
            if self.cfg.link_loss_pct:
                link_opts["loss"] = self.cfg.link_loss_pct
        switch = partial(LabSwitch, datapath=self.cfg.datapath, failMode="secure",
                         protocols="OpenFlow13")
        self.net = Mininet(topo=topo, switch=switch, controller=None,
                           link=partial(link_cls, **link_opts) if link_opts else link_cls,
                           build=False, autoSetMacs=False, autoStaticArp=False,
                           waitConnected=False, cleanup=False)
        self.net.addController(ReadyController("c0", ip="127.0.0.1", port=self.ofp_port))
        self.net.build()
        record_node_shells(self.state, self.net)
        # The controller process imported its framework while the hosts and links were made;
        # switches are created only once it listens (no failed first connection attempt).
        self._wait_controller_ready()
        self.net.start()
        if self.cfg.datapath == "user":
            # Userspace datapath: TCP segments with offloaded (unfilled) checksums are dropped.
            # Sent to every host's shell first, then awaited: the hosts work in parallel.
            for h in self.net.hosts:
                intfs = [i for i in h.intfNames() if i != "lo"]
                h.sendCmd("; ".join(f"ethtool -K {i} tx off >/dev/null 2>&1" for i in intfs)
                          or "true")
            for h in self.net.hosts:
                h.waitOutput()

    def _start_captures(self) -> None:
        """tcpdump on each chosen host's interface, inside the host, into ``pcap/``."""
        if not self.cfg.pcap_hosts:
            return
        pcap_dir = self.cfg.log_dir / "pcap"
        pcap_dir.mkdir(exist_ok=True)
        for name in self.cfg.pcap_hosts:
            intf = f"{name}-eth0"
            # -U: write each packet as it comes, so a stopped capture is still readable;
            # -s 256: headers and the start of Modbus payloads, not bulk data.
            self.popen(name, ["tcpdump", "-n", "-U", "-s", "256", "-i", intf, "-w",
                              str(pcap_dir / f"{name}.pcap")], f"pcap/{name}.log",
                       what="tcpdump")
        for name in self.cfg.pcap_hosts:
            self.wait_for_log(f"pcap/{name}.log", "listening on", 10.0)

    def _wait_controller_ready(self) -> None:
        """The launcher logs ``controller ready`` once it listens; build only then."""
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        while "controller ready" not in self._controller_log_text():
            if not self.controller_alive():
                raise LabError(f"controller exited with {self.controller.returncode} at start: "
                               f"{_tail(self.controller_log)} "
                               f"{_tail(self.cfg.log_dir / 'controller.stdout.log')}")
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
                               f"the switches connected: {_tail(self.controller_log)}")
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in self.plan.switches if s.dpid in pending)
                raise LabError(f"switch(es) {names} did not connect to the controller on "
                               f"127.0.0.1:{self.ofp_port} within "
                               f"{self.cfg.connect_timeout_s:g} s")
            time.sleep(0.02)

    def _stop_network(self) -> None:
        """Bridges first (one ovs-vsctl call), then every node's shell.

        Unlike ``Mininet.stop()``, no ``ip link del`` per link (about 10 ms each, 2 s at 100
        hosts): a host's veth pair disappears with its namespace once its shell is gone, and
        what the kernel has not removed yet (trunks between switches, stragglers) is deleted
        from the run-state record right after.
        """
        assert self.net is not None
        switches = [s for s in self.net.switches if isinstance(s, OVSSwitch)]
        if switches:
            LabSwitch.batchShutdown(switches)
        for node in (*self.net.switches, *self.net.hosts, *self.net.controllers):
            if node not in switches:
                node.terminate()

    def _teardown(self) -> None:
        # Ctrl-C during teardown would leave half a network: finish first.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for proc, _h, _f in list(self._procs):
                try:
                    self.stop(proc, grace_s=3.0)
                except Exception as exc:  # keep tearing down whatever fails
                    log.warning("stopping pid %s: %s", proc.pid, exc)
            if self.net is not None:
                try:
                    self._stop_network()
                except Exception as exc:
                    log.warning("mininet stop: %s", exc)
            if self.controller is not None and self.controller.poll() is None:
                self.controller.terminate()
                try:
                    self.controller.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.controller.kill()
                    self.controller.wait(timeout=5)
            leftovers = remove_recorded(self.state)
            if leftovers.total():
                log.info("teardown safety net removed %s", leftovers.describe())
            self.state.remove()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


def _quiet_mininet() -> None:
    from mininet.log import setLogLevel

    setLogLevel("warning")


@contextmanager
def running_lab(cfg: LabConfig) -> Iterator[Lab]:
    """Build → controller → connected → yield → teardown (also on Ctrl-C / SIGTERM)."""
    _quiet_mininet()
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
