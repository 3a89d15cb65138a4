"""Success counted at the target: attempts scored against the PLCs' own request logs."""

from __future__ import annotations

import math

from common.hoplog import HopRecord
from common.plan import ics_plan
from common.requestlog import RequestRecord
from experiments import mtd
from experiments.scoring import (
    NO_TARGET,
    NOT_REACHED,
    REACHED,
    AttackAttempt,
    score_attack,
    score_tactics,
)

T0 = 1_700_000_000.0
ATTACKER = "10.0.0.66"
PLCS = ("plc1", "plc2")


def _record(t: float, port: int, plc: str = "plc1", ip: str = ATTACKER,
            answered: bool = True) -> RequestRecord:
    return RequestRecord(t_unix_s=t, plc=plc, client_ip=ip, client_port=port, unit_id=1,
                         function=4, transaction_id=0x4242, answered=answered)


def _attempt(address: str, t: float, port: int, tactic: str = "staged", sent: bool = True,
             ip: str = ATTACKER) -> AttackAttempt:
    return AttackAttempt(tactic, address, ip, port, t, t + 0.01, sent)


def test_a_reach_through_a_retired_virtual_address_is_a_success() -> None:
    plan = ics_plan()
    hops = [HopRecord.from_json({"time_unix_s": T0, "t_s": 0, "seq": 0, "host": "plc1",
                                 "real_ip": "10.0.0.21",
                                 "old_virtual": None, "new_virtual": "10.0.0.150"}),
            HopRecord.from_json({"time_unix_s": T0 + 2, "t_s": 2, "seq": 1, "host": "plc1",
                                 "real_ip": "10.0.0.21",
                                 "old_virtual": "10.0.0.150", "new_virtual": "10.0.0.151"})]
    spans = mtd.address_spans(plan, [h for h in hops if h is not None], "rhm")
    exploit_t = T0 + 3.0
    assert mtd.owner_at(spans, "10.0.0.150", T0 + 1.0) == "plc1"  # it was plc1's address
    # The address-span view: nobody owns the old address at exploit time (scored 0 before).
    assert mtd.owner_at(spans, "10.0.0.150", exploit_t) is None
    # The PLC's own log: the request through the old address was answered.
    score = score_attack([_attempt("10.0.0.150", exploit_t, 21000)],
                         [_record(exploit_t + 0.005, 21000)], PLCS)
    assert score.success == 1.0 and (score.success.k, score.success.n) == (1, 1)
    assert score.outcome == REACHED and score.plcs_reached == ("plc1",)
    assert (score.reach_share.k, score.reach_share.n) == (1, 2)
    assert (score.connects, score.attempts, score.reaches) == (1, 1, 1)


def test_no_target_is_its_own_outcome_not_a_zero() -> None:
    score = score_attack([], [_record(T0, 40000)], PLCS)
    assert score.outcome == NO_TARGET and math.isnan(score.success)
    assert score.success.n == 0 and math.isnan(score.reach_share)


def test_unanswered_foreign_or_late_requests_are_not_reaches() -> None:
    attempt = _attempt("10.0.0.21", T0, 40001)
    records = [_record(T0, 40001, answered=False),          # the PLC did not answer
               _record(T0, 40002),                          # another connection
               _record(T0, 40001, ip="10.0.0.11"),          # the HMI, same port by chance
               _record(T0 + 30, 40001)]                     # far outside the attempt
    score = score_attack([attempt], records, PLCS)
    assert score.outcome == NOT_REACHED and score.success == 0.0 and score.success.n == 1
    unsent = score_attack([_attempt("10.0.0.150", T0, 0, sent=False)], records, PLCS)
    assert (unsent.connects, unsent.attempts, unsent.outcome) == (1, 0, NO_TARGET)


def test_spoofed_source_and_tactics_scored_apart() -> None:
    attempts = [_attempt("10.0.0.21", T0, 25000, "spoof_authorized", ip="10.0.0.11"),
                _attempt("10.0.0.151", T0, 41000, "pool_sweep"),
                _attempt("10.0.0.152", T0, 41001, "pool_sweep")]
    records = [_record(T0 + 0.01, 25000, "plc2", ip="10.0.0.11"),
               _record(T0 + 0.01, 41001, "plc1")]
    tactics = score_tactics(attempts, records, PLCS,
                            ("spoof_authorized", "pool_sweep", "mac_follow"))
    assert tactics["spoof_authorized"].plcs_reached == ("plc2",)
    assert (tactics["pool_sweep"].attempts, tactics["pool_sweep"].reaches) == (2, 1)
    assert tactics["mac_follow"].outcome == NO_TARGET


def test_probe_results_parse_as_attempts() -> None:
    a = AttackAttempt.from_dict({"address": "10.0.0.21", "stage": "reply", "src_ip": ATTACKER,
                                 "src_port": 4242, "started_unix_s": T0,
                                 "ended_unix_s": T0 + 1}, tactic="staged")
    assert a.sent and a.tactic == "staged" and a.src_port == 4242
    assert not AttackAttempt.from_dict({"address": "10.0.0.21", "stage": "connect"}).sent


def test_refused_connects_to_non_plc_hosts_are_no_target_found() -> None:
    """Connects to found addresses that refused (the HMI, the historian: no 502) or timed out
    are not attempts: with no Modbus request sent, the trial is "no target found", not 0."""
    refused = [_attempt(ip, T0, 0, sent=False) for ip in ("10.0.0.11", "10.0.0.12", "10.0.0.150")]
    score = score_attack(refused, [_record(T0, 40000, ip="10.0.0.11")], PLCS)
    assert (score.connects, score.attempts, score.tried) == (3, 0, False)
    assert score.outcome == NO_TARGET
    assert score.success.n == 0 and math.isnan(score.success)
    # One request sent among the refused connects: an attempt, scored at the PLC's log.
    sent = score_attack([*refused, _attempt("10.0.0.21", T0, 40100)], [], PLCS)
    assert (sent.attempts, sent.outcome, sent.success.n) == (1, NOT_REACHED, 1)
