"""``python -m lab.emucluster up N | down | status``: N emulated cluster servers on this machine.

Each "server" is a network namespace *and* a mount namespace (``unshare``) holding its own
sshd (key-only root login, ``PermitTunnel yes`` for Mininet's ``ssh -w`` links, high
``MaxSessions``/``MaxStartups``), its own ``ovsdb-server`` and ``ovs-vswitchd`` (userspace
datapath; a private directory is bind-mounted over ``/run/openvswitch``,
``/etc/openvswitch`` and ``/var/log/openvswitch`` inside it, so the OVS tools there talk to
that server's daemons only), and an address on a private underlay Linux bridge
(:data:`UNDERLAY`: the head is ``.1``, server *i* is ``.10+i``). The head's project-owned
key pair and a private ``known_hosts`` live in the run directory, never in ``~/.ssh``.

Everything ``up`` creates is recorded in the state file *before* it is created; ``down``
removes exactly that. A cluster run reaches these servers only over ssh, as it would real
machines (``docs/cluster.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.cli import OneLineParser, int_in, run_main, wait_until
from common.errors import SetupError, UserError
from common.files import atomic_write_text
from lab.cluster_sample import processes_of, server_key
from lab.runstate import pid_alive, proc_start_ticks

log = logging.getLogger(__name__)

RUN_DIR = Path(os.environ.get("SDNICS_EMUCLUSTER_DIR", "/run/sdn-ics-emucluster"))
UNDERLAY = "172.31.250"  # /24 on our own bridge; never routed off this machine
HEAD_ADDRESS = f"{UNDERLAY}.1"
BRIDGE = "sdnicsu0"
MAX_SERVERS = 8
TOOLS = ("unshare", "nsenter", "ip", "ssh", "ssh-keygen", "sudo", "ovsdb-server",
         "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "mnexec")
SSHD = "/usr/sbin/sshd"
OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
# Inside a server's mount namespace these point at its private directories.
PRIVATE_MOUNTS = {"ovs-run": "/run/openvswitch", "ovs-etc": "/etc/openvswitch",
                  "ovs-log": "/var/log/openvswitch"}

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PermitTunnel yes
MaxSessions 1000
MaxStartups 1000
AcceptEnv SDNICS_*
Subsystem sftp internal-sftp
"""


@dataclass
class Pid:
    pid: int
    start_ticks: int | None
    what: str


@dataclass
class Server:
    """One emulated server: its namespaces' holder, address, processes, directory."""

    name: str
    address: str
    veth: str
    directory: str
    holder: Pid | None = None
    netns: str = ""  # "net:[inode]" of the holder, to find every process inside it
    pids: list[Pid] = field(default_factory=list)


@dataclass
class ClusterState:
    """What ``up`` created (recorded before creating)."""

    bridge: str
    head_address: str
    key: str
    known_hosts: str
    servers: list[Server] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)

    def save(self) -> None:
        atomic_write_text(RUN_DIR / "state.json", json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls) -> ClusterState | None:
        path = RUN_DIR / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        servers = []
        for s in data.pop("servers"):
            holder = Pid(**s.pop("holder")) if s.get("holder") else None
            s.pop("holder", None)
            pids = [Pid(**p) for p in s.pop("pids")]
            servers.append(Server(holder=holder, pids=pids, **s))
        return cls(servers=servers, **data)


def server_address(index: int) -> str:
    """Underlay address of server ``index`` (1-based)."""
    return f"{UNDERLAY}.{10 + index}"


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and res.returncode != 0:
        raise SetupError(f"{' '.join(cmd)}: {(res.stderr or res.stdout).strip()}")
    return res


def _in(server: Server, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside ``server``'s network and mount namespaces."""
    assert server.holder is not None
    return _run(["nsenter", "-t", str(server.holder.pid), "-n", "-m", *cmd], check)


def _spawn(server: Server, state: ClusterState, what: str, cmd: list[str]) -> None:
    """Start a daemon in the foreground inside ``server`` and record its pid right away."""
    assert server.holder is not None
    logf = open(Path(server.directory) / f"{what}.stdout.log", "ab")
    proc = subprocess.Popen(["nsenter", "-t", str(server.holder.pid), "-n", "-m", *cmd],
                            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    logf.close()
    server.pids.append(Pid(proc.pid, proc_start_ticks(proc.pid), what))
    state.save()


def _ns_of(pid: int, kind: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return ""


def _netns_of(pid: int) -> str:
    return _ns_of(pid, "net")


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise UserError("the emulated cluster needs root: sudo python -m lab.emucluster up N")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not Path(SSHD).exists():
        missing.append(SSHD)
    if missing:
        raise SetupError(f"missing: {', '.join(missing)}; run: make test (installs "
                         "openssh-server, openssh-client, sudo)")


def _start_server(state: ClusterState, server: Server) -> None:
    d = Path(server.directory)
    for sub in ("sshd", *PRIVATE_MOUNTS):
        (d / sub).mkdir(parents=True, exist_ok=True)
    host_key = d / "sshd" / "host_ed25519"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", server.name, "-f", str(host_key)])
    (d / "sshd" / "sshd_config").write_text(SSHD_CONFIG.format(
        address=server.address, host_key=host_key, authorized=RUN_DIR / "authorized_keys"))
    _run(["ovsdb-tool", "create", str(d / "ovs-etc" / "conf.db"), OVS_SCHEMA])
    # The holder keeps both namespaces alive; recorded before anything is put inside.
    holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private",
                               "sleep", "infinity"], stdin=subprocess.DEVNULL,
                              start_new_session=True)
    server.holder = Pid(holder.pid, proc_start_ticks(holder.pid), "holder")
    state.save()
    mine = _netns_of(os.getpid())
    if not wait_until(lambda: _netns_of(holder.pid) not in ("", mine), 5.0):
        raise SetupError(f"{server.name}: unshare did not create a network namespace")
    server.netns = _netns_of(holder.pid)
    state.save()
    peer = f"{server.veth}p"
    _run(["ip", "link", "add", server.veth, "type", "veth", "peer", "name", peer])
    _run(["ip", "link", "set", peer, "netns", str(holder.pid)])
    _run(["ip", "link", "set", server.veth, "master", state.bridge, "up"])
    mounts = [f"mount --bind {d / sub} {target}" for sub, target in PRIVATE_MOUNTS.items()]
    _in(server, ["sh", "-ec", " && ".join([
        "mount -t sysfs sysfs /sys", *mounts, "ip link set lo up",
        f"ip link set {peer} name eth0", f"ip addr add {server.address}/24 dev eth0",
        "ip link set eth0 up"])])
    _spawn(server, state, "ovsdb-server", [
        "ovsdb-server", "/etc/openvswitch/conf.db", "--remote=punix:/run/openvswitch/db.sock",
        "--pidfile=/run/openvswitch/ovsdb-server.pid", "--no-chdir",
        "--log-file=/var/log/openvswitch/ovsdb-server.log"])
    if not wait_until(lambda: (d / "ovs-run" / "db.sock").exists(), 10.0):
        raise SetupError(f"{server.name}: ovsdb-server did not start (see {d})")
    _in(server, ["ovs-vsctl", "--no-wait", "init"])
    _spawn(server, state, "ovs-vswitchd", [
        "ovs-vswitchd", "unix:/run/openvswitch/db.sock", "--no-chdir",
        "--pidfile=/run/openvswitch/ovs-vswitchd.pid",
        "--log-file=/var/log/openvswitch/ovs-vswitchd.log"])
    _spawn(server, state, "sshd", [SSHD, "-D", "-e", "-f", str(d / "sshd" / "sshd_config")])


def _port_open(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def up(n_servers: int) -> ClusterState:
    """Start ``n_servers`` emulated servers; SetupError (nothing left) if one cannot start."""
    _check_prerequisites()
    if ClusterState.load() is not None:
        raise UserError(f"an emulated cluster is already up (state in {RUN_DIR}); "
                        "run: python -m lab.emucluster down")
    clash = [n for n in [BRIDGE, *(f"ecu{i}" for i in range(1, n_servers + 1))]
             if Path("/sys/class/net", n).exists()]
    if clash:
        raise SetupError(f"interface(s) {', '.join(clash)} already exist and are not ours")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    state = ClusterState(bridge=BRIDGE, head_address=HEAD_ADDRESS,
                         key=str(RUN_DIR / "id_ed25519"),
                         known_hosts=str(RUN_DIR / "known_hosts"))
    if not Path("/run/sshd").exists():  # sshd's privilege-separation directory
        state.created_dirs.append("/run/sshd")
    state.servers = [Server(f"srv{i}", server_address(i), f"ecu{i}", str(RUN_DIR / f"srv{i}"))
                     for i in range(1, n_servers + 1)]
    state.save()
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sdn-ics-lab head",
              "-f", state.key])
        Path(state.key + ".pub").chmod(0o644)
        (RUN_DIR / "authorized_keys").write_text(Path(state.key + ".pub").read_text())
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "addr", "add", f"{HEAD_ADDRESS}/24", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        for server in state.servers:
            log.info("starting %s at %s", server.name, server.address)
            _start_server(state, server)
        known = []
        for server in state.servers:
            pub = (Path(server.directory) / "sshd" / "host_ed25519.pub").read_text().split()
            known.append(f"{server.address} {pub[0]} {pub[1]}")
        Path(state.known_hosts).write_text("\n".join(known) + "\n")
        for server in state.servers:
            if not wait_until(lambda s=server: _port_open(s.address), 10.0):
                raise SetupError(f"{server.name}: sshd not reachable at {server.address}:22")
        (RUN_DIR / "ssh_config").write_text(ssh_config_text(state))
    except BaseException:
        down(quiet=True)
        raise
    return state


def ssh_config_text(state: ClusterState) -> str:
    """An ssh_config for reaching the servers with the project's key and known_hosts only."""
    return (f"Host {UNDERLAY}.*\n  User root\n  IdentityFile {state.key}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {state.known_hosts}\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n")


def _processes_in(ns: str, kind: str = "net") -> list[int]:
    if not ns:
        return []
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _ns_of(int(proc.name), kind) == ns:
            found.append(int(proc.name))
    return found


def _server_processes(server: Server) -> list[int]:
    """Every process started inside ``server``, its emulated hosts' included (they have mount
    namespaces of their own, copied from the server's): those with the server's mounts."""
    assert server.holder is not None
    key = server_key(server.holder.pid)
    if not key:
        return []
    return [int(pid) for pid, _argv in processes_of(key)]


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def down(quiet: bool = False) -> list[str]:
    """Remove exactly what the state file records; returns what was removed."""
    state = ClusterState.load()
    if state is None:
        if not quiet:
            raise UserError(f"no emulated cluster is up (no state in {RUN_DIR})")
        return []
    removed = []
    for server in state.servers:
        inside: list[int] = []
        if server.holder and server.netns and pid_alive(server.holder.pid,
                                                        server.holder.start_ticks):
            # Every process in a network namespace that this tool created (sshd sessions,
            # OVS daemons, the holder) ends; Mininet hosts live in namespaces of their own.
            inside = _processes_in(server.netns)
            # ... and every process started inside the server that a run left in an emulated
            # host's namespaces (found by the server's mounts, which hosts inherit).
            inside += _server_processes(server)
        inside += [p.pid for p in server.pids if pid_alive(p.pid, p.start_ticks)]
        inside = sorted(set(inside))
        _kill(inside, signal.SIGTERM)
        if not wait_until(lambda ps=inside: not any(Path(f"/proc/{p}").exists() for p in ps),
                          5.0):
            _kill(inside, signal.SIGKILL)
        if inside:
            removed.append(f"{server.name}: {len(inside)} process(es)")
        if Path("/sys/class/net", server.veth).exists():
            _run(["ip", "link", "del", server.veth], check=False)
            removed.append(server.veth)
    if Path("/sys/class/net", state.bridge).exists():
        _run(["ip", "link", "del", state.bridge], check=False)
        removed.append(state.bridge)
    for d in state.created_dirs:
        try:
            Path(d).rmdir()
        except OSError:
            pass
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    return removed


@dataclass
class ServerUse:
    """What runs on one emulated server besides its own daemons: OVS bridges, interfaces
    other than ``lo``/``eth0`` in its namespace, and processes with the server's mounts (so
    started inside it, even if re-parented since) but in another network namespace: an
    emulated host's shell, PLC, attack..."""

    bridges: list[str]
    interfaces: list[str]
    host_processes: list[int]
    sessions: list[int]  # any other process of the server: ssh sessions, their sudo...

    def empty(self) -> bool:
        return not (self.bridges or self.interfaces or self.host_processes or self.sessions)

    def describe(self) -> str:
        if self.empty():
            return "nothing of a run"
        return (f"{len(self.bridges)} bridge(s), {len(self.interfaces)} interface(s), "
                f"{len(self.host_processes)} process(es) in host namespaces, "
                f"{len(self.sessions)} other process(es) (ssh sessions)")


def server_use(server: Server) -> ServerUse:
    """What a cluster run has (or left) on ``server``; read from here, not over ssh (an ssh
    session of our own would count itself)."""
    bridges = _in(server, ["ovs-vsctl", "--timeout=5", "list-br"], check=False).stdout.split()
    links = _in(server, ["ip", "-br", "link"], check=False).stdout.splitlines()
    interfaces = [ln.split()[0].split("@")[0] for ln in links if ln.strip()]
    assert server.holder is not None
    ours = {server.holder.pid, *(p.pid for p in server.pids)}
    inside = _server_processes(server)
    found = [pid for pid in inside if _netns_of(pid) != server.netns]
    return ServerUse(bridges=bridges,
                     interfaces=[i for i in interfaces if i not in ("lo", "eth0")],
                     host_processes=sorted(p for p in found if p not in ours),
                     sessions=sorted(p for p in inside if p not in ours and p not in found))


def status() -> list[str]:
    """One line per server: address, whether its holder, sshd and OVS are alive, and what
    a cluster run has (or left) there."""
    state = ClusterState.load()
    if state is None:
        return ["no emulated cluster is up"]
    lines = [f"head {state.head_address} on {state.bridge}; key {state.key}"]
    for s in state.servers:
        alive = [p.what for p in s.pids if pid_alive(p.pid, p.start_ticks)]
        holder = bool(s.holder and pid_alive(s.holder.pid, s.holder.start_ticks))
        use = server_use(s).describe() if holder else "-"  # before our probe's sshd child
        ssh_ok = _port_open(s.address)
        lines.append(f"{s.name} {s.address}: namespaces {'up' if holder else 'GONE'}, "
                     f"running {', '.join(alive) or 'nothing'}, ssh {'ok' if ssh_ok else 'DOWN'};"
                     f" in use: {use}")
    return lines


def _main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cmd = args.command
    if cmd == "up":
        t0 = time.monotonic()
        state = up(args.n)
        print(f"{len(state.servers)} emulated server(s) up in {time.monotonic() - t0:.1f} s: "
              + ", ".join(f"{s.name}={s.address}" for s in state.servers))
        print(f"ssh: ssh -F {RUN_DIR / 'ssh_config'} {state.servers[0].address}")
    elif cmd == "down":
        removed = down()
        print("removed " + (", ".join(removed) or "nothing"))
    else:
        print("\n".join(status()))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m lab.emucluster", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    up_p = sub.add_parser("up", help="start N emulated servers")
    up_p.add_argument("n", type=int_in(1, MAX_SERVERS), help=f"servers (1..{MAX_SERVERS})")
    sub.add_parser("down", help="remove everything 'up' created")
    sub.add_parser("status", help="show the servers")
    return run_main(lambda: _main(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
