"""HMI measurements: the per-request record, and per-PLC figures computed from records.

Pure: no I/O. A *poll* is one HMI period for one PLC (its ``poll`` index): a connect attempt
when the HMI was disconnected, then one read per register table. A poll is *ok* when it
has at least one read and every request in it was answered ``ok`` within the timeout.
Operator writes carry the poll index they ran in, but never count as polls.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

from common.quantiles import percentile

OUTCOMES = ("ok", "exception", "timeout", "connection_error")
READ_FUNCTIONS = ("read_coils", "read_discrete_inputs", "read_input_registers",
                  "read_holding_registers")
WRITE_FUNCTIONS = ("write_coil", "write_register")
CONNECT = "connect"
# A name lookup (plc.hmi --resolver): part of the poll it ran in, never a request to the PLC.
RESOLVE = "resolve"


@dataclass(frozen=True)
class RequestRecord:
    """One HMI request and how it ended (one CSV row).

    t_s: start of the request, seconds since the HMI started.
    poll: index of the HMI period the request belongs to, per PLC.
    values: values read or written, space-separated raw integers; empty otherwise.
    error: exception code (``0x02``) or error text when the outcome is not ok.
    peer: the address the request went to (the resolved one for a PLC given by name; the
        name server's for a ``resolve``); empty in CSVs written before it was recorded.
    """

    t_s: float
    plc: str
    poll: int
    function: str
    address: int
    count: int
    latency_ms: float
    outcome: str
    values: str = ""
    error: str = ""
    peer: str = ""

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_row(self) -> tuple:
        return (round(self.t_s, 4), self.plc, self.poll, self.function, self.address,
                self.count, round(self.latency_ms, 3), self.outcome, self.values, self.error,
                self.peer)


def records_from_csv(lines: Iterable[str]) -> list[RequestRecord]:
    """Parse HMI CSV text (header included); a torn last line is skipped."""
    records = []
    for row in csv.DictReader(lines):
        try:
            records.append(RequestRecord(
                t_s=float(row["t_s"]), plc=row["plc"], poll=int(row["poll"]),
                function=row["function"], address=int(row["address"]),
                count=int(row["count"]), latency_ms=float(row["latency_ms"]),
                outcome=row["outcome"], values=row["values"] or "",
                error=row["error"] or "", peer=row.get("peer") or ""))
        except (KeyError, TypeError, ValueError):
            continue
    return records




@dataclass(frozen=True)
class PlcMetrics:
    """Figures for one PLC over one HMI run.

    availability: share of polls that were ok (NaN without polls).
    longest_outage_s: longest time from a failed poll to the next ok poll (or to the last
        poll when none followed).
    reconnects: successful connects after the first one.
    """

    plc: str
    polls: int
    polls_ok: int
    availability: float
    requests: int
    timeouts: int
    exceptions: int
    connection_errors: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    longest_outage_s: float
    reconnects: int


def plc_metrics(plc: str, records: Iterable[RequestRecord]) -> PlcMetrics:
    """The figures of one PLC from the records (other PLCs' records are ignored)."""
    mine = [r for r in records if r.plc == plc]
    polls: dict[int, list[RequestRecord]] = {}
    for r in mine:
        if r.function not in WRITE_FUNCTIONS:
            polls.setdefault(r.poll, []).append(r)
    verdicts: list[tuple[float, bool]] = []
    for index in sorted(polls):
        rows = polls[index]
        ok = (any(r.function in READ_FUNCTIONS for r in rows)
              and all(r.outcome == "ok" for r in rows))
        verdicts.append((min(r.t_s for r in rows), ok))
    longest = 0.0
    outage_start: float | None = None
    for t_s, ok in verdicts:
        if not ok and outage_start is None:
            outage_start = t_s
        elif ok and outage_start is not None:
            longest = max(longest, t_s - outage_start)
            outage_start = None
    if outage_start is not None:
        longest = max(longest, verdicts[-1][0] - outage_start)
    latencies = [r.latency_ms for r in mine
                 if r.function in READ_FUNCTIONS and r.outcome == "ok"]
    requests = [r for r in mine if r.function not in (CONNECT, RESOLVE)]
    n_ok = sum(ok for _, ok in verdicts)
    connects_ok = sum(r.function == CONNECT and r.outcome == "ok" for r in mine)
    return PlcMetrics(
        plc=plc,
        polls=len(verdicts),
        polls_ok=n_ok,
        availability=n_ok / len(verdicts) if verdicts else math.nan,
        requests=len(requests),
        timeouts=sum(r.outcome == "timeout" for r in mine),
        exceptions=sum(r.outcome == "exception" for r in mine),
        connection_errors=sum(r.outcome == "connection_error" for r in mine),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99),
        latency_max_ms=max(latencies) if latencies else math.nan,
        longest_outage_s=longest,
        reconnects=max(0, connects_ok - 1),
    )


def summarize(records: Sequence[RequestRecord]) -> list[PlcMetrics]:
    """Figures for every PLC that appears in the records, by name."""
    return [plc_metrics(name, records) for name in sorted({r.plc for r in records})]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the per-PLC figures of an HMI CSV as JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m plc.metrics",
                                     description="Per-PLC figures from an HMI CSV.")
    parser.add_argument("csv", help="CSV written by python -m plc.hmi --out")
    args = parser.parse_args(argv)
    try:
        with open(args.csv, newline="") as f:
            records = records_from_csv(f)
    except OSError as exc:
        sys.stderr.write(f"python -m plc.metrics: error: {exc.strerror}: {args.csv}\n")
        return 2
    for m in summarize(records):
        row = {k: (None if isinstance(v, float) and math.isnan(v) else v)
               for k, v in asdict(m).items()}
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
