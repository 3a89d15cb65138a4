"""The PLC request log: one JSON line per Modbus request a PLC served, the target's own record.

``plc.server --request-log PATH`` writes it (:class:`RequestLogWriter`); scoring reads it
(:func:`read`) to decide whether an attack reached a PLC: success is counted at the target,
from what the PLC itself saw, not from what the attacker believes or from address spans.

Each record names the client as the PLC's socket saw it (after any address rewriting by a
defense: the attacker's real or spoofed address and its source port), the request's unit id,
function code and transaction id, and whether a reply was written back (``answered``; an
exception reply counts as answered: the attacker talked to the PLC).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from common import jsonlines


@dataclass(frozen=True)
class RequestRecord:
    """One Modbus request a PLC served.

    t_unix_s: when the PLC finished handling it (reply written or given up).
    plc: the PLC's host name; listen_port: the port it served on.
    client_ip, client_port: the peer of the TCP connection as the PLC saw it.
    answered: a reply ADU (normal or exception) was written back.
    exception_code: the Modbus exception sent (0: a normal reply, or none sent).
    """

    t_unix_s: float
    plc: str
    client_ip: str
    client_port: int
    unit_id: int
    function: int
    transaction_id: int
    answered: bool
    exception_code: int = 0
    listen_port: int = 502

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RequestRecord | None:
        """The record of one parsed line; None when a field is missing or of the wrong type."""
        try:
            return cls(t_unix_s=float(data["t_unix_s"]), plc=str(data["plc"]),
                       client_ip=str(data["client_ip"]), client_port=int(data["client_port"]),
                       unit_id=int(data["unit_id"]), function=int(data["function"]),
                       transaction_id=int(data["transaction_id"]),
                       answered=bool(data["answered"]),
                       exception_code=int(data.get("exception_code", 0)),
                       listen_port=int(data.get("listen_port", 502)))
        except (KeyError, TypeError, ValueError):
            return None


class RequestLogWriter:
    """Appends records to one file, a line each, flushed at once (the scorer may read it live).

    The file is opened on construction (OSError when it cannot be) and closed by :meth:`close`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")
        self.count = 0

    def write(self, record: RequestRecord) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def parse(lines: Iterable[str]) -> list[RequestRecord]:
    """Records of JSON lines; torn or foreign lines are skipped."""
    out = []
    for obj in jsonlines.parse(lines):
        rec = RequestRecord.from_json(obj)
        if rec is not None:
            out.append(rec)
    return out


def read(paths: Iterable[Path]) -> list[RequestRecord]:
    """Every record of the given logs (missing files have none), sorted by time."""
    records: list[RequestRecord] = []
    for path in paths:
        for obj in jsonlines.read(Path(path)):
            rec = RequestRecord.from_json(obj)
            if rec is not None:
                records.append(rec)
    return sorted(records, key=lambda r: r.t_unix_s)


def log_path(folder: Path, plc: str) -> Path:
    """Where the lab puts PLC ``plc``'s request log: next to its ground-truth CSV."""
    return Path(folder) / f"{plc}_requests.jsonl"
