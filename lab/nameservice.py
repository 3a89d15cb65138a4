"""The name service in a lab: the name server the defense keeps current, and the non-exempt
HMI that finds the PLCs through it (issue 15 item 7; ``docs/nameservice.md``).

The server (``python -m defenses.nameserver``) runs in the plan's historian (else its ews,
else an authorized host: :func:`common.dns.server_host`): a supervisory host that is not
protected, so its address never hops and clients can be configured with it, as with any
resolver. It reads the hop logs the running defense writes (:class:`lab.defenses.
RunningDefense`); with no defense it serves the real addresses. The client is
``python -m plc.hmi --resolver`` in the plan's non-exempt HMI (:func:`common.dns.
with_client`), polling every Modbus PLC by name. Both are started through the lab's process
supervisor (pids recorded, stopped at teardown).

Files in the folder given: ``nameserver.log``, ``dns_queries.jsonl`` (one
:class:`common.dns.QueryRecord` per answered query), ``<client>_requests.csv`` (the client's
:class:`plc.metrics.RequestRecord` rows) and ``<client>.log``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from common import dns
from lab.defenses import DefenseSettings, RunningDefense
from lab.devices import HMI_MAX_DURATION_S, plc_specs
from lab.lifecycle import Lab

SERVER_LOG = "nameserver.log"
READY_TIMEOUT_S = 20.0


def query_log(folder: Path) -> Path:
    return folder / "dns_queries.jsonl"


def client_csv(folder: Path, client: str) -> Path:
    return folder / f"{client}_requests.csv"


@dataclass
class NameService:
    """A running name server and, once started, its client."""

    server_host: str
    server_ip: str
    server: subprocess.Popen[bytes]
    queries: Path
    client: str = ""
    client_proc: subprocess.Popen[bytes] | None = None
    client_csv: Path | None = None


def allowed_clients(lab: Lab) -> list[str]:
    """Who may query when the server is restricted: every HMI and every authorized host."""
    return sorted({h.ip for h in lab.plan.hosts if h.role == "hmi" or h.authorized})


def start_name_server(lab: Lab, defense: RunningDefense, plan_path: Path, folder: Path,
                      restrict: bool = True, max_ttl_s: int = dns.DEFAULT_MAX_TTL_S,
                      timeout_s: float = READY_TIMEOUT_S) -> NameService:
    """Start the server for ``defense`` and wait until it listens (LabError otherwise).

    restrict: only :func:`allowed_clients` get answers (others, the attacker among them,
    REFUSED); False answers everyone.
    """
    settings: DefenseSettings = defense.settings
    host = dns.server_host(lab.plan)
    ip = lab.plan.host(host).ip
    args = ["--plan", str(plan_path), "--listen", ip, "--hop-interval-s",
            f"{settings.hop_interval_s:g}", "--jitter-s", f"{settings.jitter_s:g}",
            "--max-ttl-s", str(max_ttl_s), "--query-log", str(query_log(folder))]
    if settings.defense != "none":
        for path in defense.hop_logs:
            args += ["--hop-log", str(path)]
    if restrict:
        for client in allowed_clients(lab):
            args += ["--allow", client]
    proc = lab.python(host, "defenses.nameserver", args, SERVER_LOG)
    lab.wait_for_log(SERVER_LOG, "nameserver ready", timeout_s, proc)
    return NameService(host, ip, proc, query_log(folder))


def start_name_client(lab: Lab, service: NameService, client: str, folder: Path,
                      period_ms: float, timeout_ms: float) -> Path:
    """Start the non-exempt HMI ``client`` polling every Modbus PLC by name; its CSV."""
    args = []
    for spec in plc_specs(lab.plan):
        if spec.protocol == "modbus":
            args += ["--plc", f"{spec.host}={dns.name_for(spec.host)}:{spec.port}"]
    out = client_csv(folder, client)
    args += ["--resolver", service.server_ip, "--period-ms", f"{period_ms:g}",
             "--timeout-ms", f"{timeout_ms:g}", "--duration-s", str(HMI_MAX_DURATION_S),
             "--out", str(out)]
    service.client, service.client_csv = client, out
    service.client_proc = lab.python(client, "plc.hmi", args, f"{client}.log")
    return out


def stop_name_client(lab: Lab, service: NameService) -> None:
    """Stop the client (its CSV is complete afterwards); the server stays until teardown."""
    if service.client_proc is not None:
        lab.stop(service.client_proc)
        service.client_proc = None
