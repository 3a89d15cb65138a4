"""What the experiments' figures share, on top of the house style of :mod:`reporting.plotting`:
labelling and saving a figure as the (stem, caption) pair every ``plot()`` returns, and the
CDF figure (one step line per curve). Figures are drawn from a bundle's CSVs only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reporting import plotting


def finish(fig: Any, bundle: Path, stem: str, caption: str, ax: Any = None, *,
           xlabel: str = "", ylabel: str = "", title: str = "",
           legend: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """Label ``ax`` (an empty text leaves that label as it is), draw its legend with these
    keyword arguments (None: no legend), save ``stem`` (PNG + SVG) into the bundle.

    Returns (stem, caption), the pair a ``plot()`` lists for the report.
    """
    if ax is not None:
        if xlabel:
            ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if legend is not None:
            ax.legend(**legend)
    return plotting.save(fig, bundle, stem), caption


def cdf_figure(bundle: Path, stem: str, caption: str,
               curves: Iterable[tuple[str, Sequence[float], str | None]], *, xlabel: str,
               title: str, ylabel: str = "CDF", log_x: bool = False,
               legend: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """One empirical CDF step line per (label, values, colour or None for the default
    cycle); the legend's keyword arguments default to a small font."""
    fig, ax = plotting.figure()
    for label, values, colour in curves:
        xs, ys = plotting.cdf(values)
        ax.step(xs, ys, where="post", label=label, color=colour)
    if log_x:
        ax.set_xscale("log")
    return finish(fig, bundle, stem, caption, ax, xlabel=xlabel, ylabel=ylabel, title=title,
                  legend={"fontsize": 8} if legend is None else legend)
