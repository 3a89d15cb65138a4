"""One line per bundle: attacker success and HMI availability per condition (valid trials).

    python tools/bundle_summary.py results/latest

Used by ``tools/debian13.sh`` to print the Debian 13 run's outcome in the same terms as the
recon report. Reads ``metrics.csv`` only (standard library), so it runs in any venv.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

SHOWN = ("attacker_modbus_success", "hmi_availability")


def summarize(bundle: Path) -> str:
    """``cond: metric=mean (n=k) ...; ...`` over the valid trials of ``bundle/metrics.csv``."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with (bundle / "metrics.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("valid") == "false" or row.get("metric") not in SHOWN:
                continue
            if row.get("value") not in (None, ""):
                values[row.get("condition") or "baseline"][row["metric"]].append(
                    float(row["value"]))
    parts = []
    for cond, metrics in values.items():
        shown = " ".join(f"{m}={sum(v) / len(v):.2f} (n={len(v)})"
                         for m, v in metrics.items() if v)
        parts.append(f"{cond}: {shown}")
    return "; ".join(parts) or "no valid trials"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python tools/bundle_summary.py BUNDLE_DIR", file=sys.stderr)
        return 2
    try:
        print(summarize(Path(args[0])))
    except (OSError, ValueError, KeyError) as exc:
        print(f"bundle_summary: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
