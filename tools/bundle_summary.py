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

SHOWN = ("attacker_modbus_success", "attack_no_target", "hmi_availability")


def _mean(values: list[float]) -> str:
    """``0.50 (n=2)``; ``- (n=0)`` when no valid trial scored it (e.g. no target found)."""
    return f"{sum(values) / len(values):.2f} (n={len(values)})" if values else "- (n=0)"


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
        shown = " ".join(f"{m}={_mean(metrics.get(m, []))}" for m in SHOWN)
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
