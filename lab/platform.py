"""What this machine can do, detected rather than assumed, and the one-line checks.

Facts are measured once per run and written into the manifest: the OVS datapath in use, the
OVS version, whether netem exists (link delay/loss), kernel, tool versions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform as pyplatform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from common.engines import RYU_INSTALL_HINT
from common.errors import SetupError, UserError

log = logging.getLogger(__name__)

OVS_START_HINT = "start it with: /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random"
SETUP_HINT = "run: sudo make setup"


def _run(cmd: list[str], timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def is_root() -> bool:
    return os.geteuid() == 0


def ovs_kernel_module() -> bool:
    """The Open vSwitch kernel datapath exists (loaded or built in)."""
    return Path("/sys/module/openvswitch").exists()


def ovs_running() -> bool:
    if shutil.which("ovs-vsctl") is None:
        return False
    try:
        return _run(["ovs-vsctl", "--timeout=5", "show"]).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ovs_version() -> str:
    if shutil.which("ovs-vswitchd") is None:
        return "absent"
    out = _run(["ovs-vswitchd", "--version"]).stdout.splitlines()
    return out[0].split()[-1] if out else "unknown"


def tool_version(tool: str, args: tuple[str, ...] = ("--version",)) -> str:
    if shutil.which(tool) is None:
        return "absent"
    try:
        out = _run([tool, *args]).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out[0] if out else "unknown"


def netem_available() -> bool:
    """Try a netem qdisc on the loopback of a throwaway network namespace.

    The namespace exists only as long as the `unshare` process, so nothing is left behind and
    no real interface is touched.
    """
    if not is_root() or shutil.which("unshare") is None or shutil.which("tc") is None:
        return False
    try:
        res = _run(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                    "delay", "1ms"], timeout_s=5)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


def choose_datapath(requested: str) -> str:
    """``auto`` → ``kernel`` where the openvswitch module exists, else ``user``."""
    if requested == "auto":
        return "kernel" if ovs_kernel_module() else "user"
    if requested == "kernel" and not ovs_kernel_module():
        raise SetupError("datapath 'kernel' needs the openvswitch kernel module, which this "
                         "kernel lacks; use --datapath user (or auto)")
    if requested not in ("kernel", "user"):
        raise UserError(f"datapath must be auto, kernel or user, not {requested!r}")
    return requested


@dataclass(frozen=True)
class PlatformInfo:
    """The facts about this machine that a result depends on."""

    kernel: str
    ovs_version: str
    ovs_kernel_module: bool
    datapath: str
    tx_checksum_offload_off: bool
    netem: bool
    nmap: str
    python: str

    def to_dict(self) -> dict:
        return asdict(self)


def detect(datapath: str, need_netem: bool = False) -> PlatformInfo:
    chosen = choose_datapath(datapath)
    netem = netem_available()
    if need_netem and not netem:
        raise SetupError("link delay/loss/jitter needs the netem queueing discipline "
                         "(kernel module sch_netem), which this kernel lacks; "
                         "set link_delay_ms and link_loss_pct to 0")
    return PlatformInfo(
        kernel=pyplatform.release(),
        ovs_version=ovs_version(),
        ovs_kernel_module=ovs_kernel_module(),
        datapath=chosen,
        tx_checksum_offload_off=(chosen == "user"),
        netem=netem,
        nmap=tool_version("nmap"),
        python=pyplatform.python_version(),
    )


def require_lab_prerequisites(need_nmap: bool = False) -> None:
    """Raise SetupError with a one-line fix for the first missing prerequisite."""
    if not is_root():
        raise SetupError("this needs root to build the emulated network; run it with sudo")
    for tool in ("mnexec", "ovs-vsctl", "ethtool", "ping"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is not installed; {SETUP_HINT}")
    if not ovs_running():
        raise SetupError(f"Open vSwitch is not running; {OVS_START_HINT}")
    if need_nmap and shutil.which("nmap") is None:
        raise SetupError(f"nmap is not installed; {SETUP_HINT} (or apt-get install nmap)")


def resolve_engine(requested: str) -> str:
    """``auto`` → ``ryu`` when it is installed, else ``os-ken``; error when neither is.

    Ryu first keeps ``auto`` runs on Debian 12 comparable with earlier results; where Ryu
    cannot install (Python 3.12+) ``auto`` is os-ken (:mod:`common.engines`).
    """
    have_ryu = importlib.util.find_spec("ryu") is not None
    have_osken = importlib.util.find_spec("os_ken") is not None
    if requested == "auto":
        if have_ryu:
            return "ryu"
        if have_osken:
            return "os-ken"
        raise SetupError("neither ryu nor os-ken is installed; run: sudo make setup")
    if requested == "ryu" and not have_ryu:
        raise SetupError(f"engine ryu is not installed; {RYU_INSTALL_HINT}")
    if requested == "os-ken" and not have_osken:
        raise SetupError("engine os-ken is not installed; run: sudo make setup")
    return requested
