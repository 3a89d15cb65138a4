"""What a command injection did to the tank, computed afterwards from the PLC's ground truth.

Pure (apart from :func:`tank_impact_from_csv`, which reads the file): the impact is not the
attacker's to see, so it is scored from the PLC's own rows (time until the level leaves its
band, alarms, spilled water).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.groundtruth import read_ground_truth_file


@dataclass(frozen=True)
class TankImpact:
    """What an injection did to the tank, from the PLC's ground truth.

    attack_t_s: the attack's start on the PLC's clock (the CSV's ``t_s``).
    high_sp_cm, low_sp_cm: the band as it stood before the attack (last row before it).
    above_high_sp_after_s, alarm_high_high_after_s, alarm_overflow_after_s: seconds from the
        attack to the first row with the level above the old high setpoint / the alarm bit
        set; None when it never happened in the rows given.
    spilled_l: water spilled over the rim after the attack.
    left_band: the level went above the old high setpoint or below the old low setpoint.
    """

    attack_t_s: float
    level_at_attack_cm: float
    high_sp_cm: float
    low_sp_cm: float
    max_level_cm: float
    min_level_cm: float
    above_high_sp_after_s: float | None
    below_low_sp_after_s: float | None
    alarm_high_high_after_s: float | None
    alarm_overflow_after_s: float | None
    spilled_l: float
    observed_s: float
    left_band: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



def tank_impact(rows: Sequence[Mapping[str, float]], attack_t_s: float) -> TankImpact:
    """The impact on the tank of an attack that started at ``attack_t_s`` (PLC clock).

    rows: ground-truth rows in time order (``plc.server --state-csv``, tank columns).
    Raises ValueError when no row is at or after the attack or none is before it (no band).
    """
    before = [r for r in rows if r["t_s"] < attack_t_s]
    after = [r for r in rows if r["t_s"] >= attack_t_s]
    if not before or not after:
        raise ValueError(f"need rows before and after t_s={attack_t_s} "
                         f"({len(before)} before, {len(after)} after)")
    ref = before[-1]
    high, low = ref["level_high_sp_cm"], ref["level_low_sp_cm"]

    def first(predicate: Any) -> float | None:
        for r in after:
            if predicate(r):
                return round(r["t_s"] - attack_t_s, 4)
        return None

    above = first(lambda r: r["level_cm"] > high)
    below = first(lambda r: r["level_cm"] < low)
    levels = [r["level_cm"] for r in after]
    return TankImpact(
        attack_t_s=attack_t_s,
        level_at_attack_cm=ref["level_cm"],
        high_sp_cm=high,
        low_sp_cm=low,
        max_level_cm=max(levels),
        min_level_cm=min(levels),
        above_high_sp_after_s=above,
        below_low_sp_after_s=below,
        alarm_high_high_after_s=first(lambda r: r["alarm_high_high"] >= 1),
        alarm_overflow_after_s=first(lambda r: r["alarm_overflow"] >= 1),
        spilled_l=round(after[-1]["spilled_l"] - ref["spilled_l"], 4),
        observed_s=round(after[-1]["t_s"] - attack_t_s, 4),
        left_band=above is not None or below is not None,
    )


def tank_impact_from_csv(path: Path, attack_t_s: float) -> TankImpact:
    """:func:`tank_impact` of a ground-truth CSV file."""
    return tank_impact(read_ground_truth_file(path), attack_t_s)
