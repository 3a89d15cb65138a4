"""The name service on the real network (issue 15 item 7): one ``rhm`` lab (hop interval 2 s),
the name server in the historian, the non-exempt HMI ``hmi2`` polling the PLCs by name.

Checks, one network build for all: hmi2 cannot reach the PLCs' real addresses (it is not
exempt); it resolves each PLC by name and reads its registers at two or more of its virtual
addresses (across at least one hop); every answer's TTL is at most the hop interval; the
attacker's query is REFUSED (the server answers only HMIs and authorized hosts).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import dns, jsonlines
from common.plan import ics_plan
from experiments import mtd
from lab import nameservice as ns
from lab.defenses import DefenseSettings, controller_setup, start_defense
from lab.devices import start_plcs
from lab.lifecycle import SWITCH_PREFIX_ENV, LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine
from plc.metrics import READ_FUNCTIONS, records_from_csv

pytestmark = pytest.mark.integration

HOP_INTERVAL_S = 2.0
WINDOW_S = 7.0
ATTACKER_QUERY = """
import socket, sys
from common import dns
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(dns.query("plc1.ics.lab", 77), (sys.argv[1], 53))
try:
    dns.parse_answer(s.recv(4096), 77)
    print("answered")
except dns.DnsAnswerError as exc:
    print("rcode", exc)
"""


@pytest.fixture(scope="module")
def name_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    raw = tmp_path_factory.mktemp("nameservice")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SWITCH_PREFIX_ENV, os.environ.get(SWITCH_PREFIX_ENV) or "ee")
        yield _run(raw)


def _run(raw: Path) -> dict:
    plan, client = dns.with_client(ics_plan())
    plan_path = raw / "plan.json"
    plan.save(plan_path)
    settings = DefenseSettings("rhm", hop_interval_s=HOP_INTERVAL_S, seed=3)
    app, cargs, hop_logs = controller_setup(settings, plan_path, raw)
    cfg = LabConfig(plan=plan, log_dir=raw, engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"), app=app, controller_args=cargs)
    t0 = time.monotonic()
    with running_lab(cfg) as lab:
        start_plcs(lab, raw)
        running = start_defense(lab, settings, plan_path, raw, hop_logs)
        checks = mtd.check_real_addresses(lab, client)
        service = ns.start_name_server(lab, running, plan_path, raw)
        csv_path = ns.start_name_client(lab, service, client, raw, 100.0, 500.0)
        time.sleep(WINDOW_S)  # the client's window: it polls across hops meanwhile
        ns.stop_name_client(lab, service)
        attacker = lab.run("attacker", [sys.executable, "-c", ATTACKER_QUERY,
                                        service.server_ip], timeout_s=15).stdout
        lab.check_healthy()
    with open(csv_path, newline="") as f:
        records = records_from_csv(f)
    queries = [dns.QueryRecord.from_json(o) for o in jsonlines.read(service.queries)]
    return {"records": records, "queries": queries, "checks": checks, "attacker": attacker,
            "client": plan.host(client), "hops": running.hops(),
            "seconds": time.monotonic() - t0}


def test_client_is_not_exempt(name_run: dict) -> None:
    assert name_run["checks"] and not any(c.reachable for c in name_run["checks"])


def test_client_reads_each_plc_by_name_across_a_hop(name_run: dict) -> None:
    records = name_run["records"]
    print(f"run took {name_run['seconds']:.0f} s, {len(records)} records")
    assert [r for r in records if r.function == "resolve" and r.outcome == "ok"]
    for plc in ("plc1", "plc2"):
        peers = {r.peer for r in records
                 if r.plc == plc and r.function in READ_FUNCTIONS and r.outcome == "ok"}
        virtual = {h.new_virtual for h in name_run["hops"] if h.host == plc}
        assert len(peers) >= 2 and peers <= virtual, (plc, peers, virtual)


def test_every_ttl_is_within_the_hop_interval(name_run: dict) -> None:
    client_ip = name_run["client"].ip
    answered = [q for q in name_run["queries"] if q is not None and q.client_ip == client_ip]
    assert answered and all(q.rcode == dns.NOERROR for q in answered)
    assert all(q.ttl_s is not None and q.ttl_s <= HOP_INTERVAL_S for q in answered)


def test_attacker_is_refused(name_run: dict) -> None:
    assert "rcode REFUSED" in name_run["attacker"], name_run["attacker"]
