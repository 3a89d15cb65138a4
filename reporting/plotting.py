"""Plot helpers: Agg backend, one style, every figure saved as PNG and SVG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

STYLE = {
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "svg.hashsalt": "sdn-ics-lab",  # same data, same SVG bytes
}


def figure() -> tuple[plt.Figure, plt.Axes]:
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
    return fig, ax


def save(fig: plt.Figure, bundle: Path, stem: str) -> str:
    """Write ``stem.png`` and ``stem.svg`` into the bundle; returns ``stem``."""
    with plt.rc_context(STYLE):
        fig.tight_layout()
        fig.savefig(bundle / f"{stem}.png")
        fig.savefig(bundle / f"{stem}.svg", metadata={"Date": None})
    plt.close(fig)
    return stem


def cdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    xs = sorted(values)
    n = len(xs)
    return xs, [(i + 1) / n for i in range(n)]


PALETTE = {"none": "#bb5566", "rhm": "#004488", "nat": "#ddaa33"}
_CYCLE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")


def color(name: str) -> str:
    """A stable colour per condition name (defenses have fixed ones)."""
    if name in PALETTE:
        return PALETTE[name]
    return _CYCLE[sum(map(ord, name)) % len(_CYCLE)]
