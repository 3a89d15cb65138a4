"""HMI figures from request records (pure)."""

from __future__ import annotations

import io
import math

import pytest

from common.quantiles import percentile
from plc.metrics import RequestRecord, plc_metrics, records_from_csv, summarize


def rec(t_s, poll, function="read_coils", outcome="ok", latency_ms=1.0, plc="plc1",
        values=""):
    return RequestRecord(t_s, plc, poll, function, 0, 3, latency_ms, outcome, values)


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile(list(range(101)), 95) == 95
    assert math.isnan(percentile([], 50))


def test_availability_outage_and_reconnects():
    records = [rec(0.0, 0, "connect")]
    # polls 0..9 every 0.1 s; polls 3..5 fail (timeout, then connection refused twice)
    for poll in range(10):
        t = poll * 0.1
        if poll == 3:
            records.append(rec(t, poll, outcome="timeout", latency_ms=500))
        elif poll in (4, 5):
            records.append(rec(t, poll, "connect", outcome="connection_error"))
        else:
            if poll == 6:
                records.append(rec(t, poll, "connect"))
            records += [rec(t, poll, latency_ms=float(poll)),
                        rec(t, poll, "read_input_registers", latency_ms=float(poll))]
    records.append(rec(0.25, 2, "write_coil", outcome="exception"))  # not a poll
    records.append(rec(0.0, 0, plc="plc2", outcome="timeout"))
    m = plc_metrics("plc1", records)
    assert (m.polls, m.polls_ok) == (10, 7)
    assert m.availability == pytest.approx(0.7)
    assert m.longest_outage_s == pytest.approx(0.3)
    assert m.reconnects == 1
    assert (m.timeouts, m.connection_errors, m.exceptions) == (1, 2, 1)
    assert m.latency_max_ms == 9.0 and m.latency_p50_ms == pytest.approx(6.0)


def test_an_outage_until_the_end_counts_and_no_polls_is_nan():
    records = [rec(0.0, 0), rec(0.1, 1, outcome="timeout"), rec(0.9, 9, outcome="timeout")]
    assert plc_metrics("plc1", records).longest_outage_s == pytest.approx(0.8)
    assert math.isnan(plc_metrics("nobody", records).availability)
    assert [m.plc for m in summarize([*records, rec(0, 0, plc="a")])] == ["a", "plc1"]


def test_a_poll_with_only_a_successful_connect_is_not_ok():
    assert plc_metrics("plc1", [rec(0.0, 0, "connect")]).availability == 0.0


def test_csv_round_trip_skips_a_torn_last_line():
    r = rec(1.5, 3, values="1 0 1")
    text = ",".join(RequestRecord.columns()) + "\n" + \
        ",".join(str(v) for v in r.as_row()) + "\n" + "2.0,plc1,4,read_co"
    assert records_from_csv(io.StringIO(text)) == [r]
