"""HTML building blocks of ``report.html``: the style, escaping, numbers, pills, tables.

Every string that comes from a file goes through :func:`esc`; ``://`` becomes ``&#58;//`` so
the page holds no literal URL.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

NA = "\u2013"  # what a missing or non-finite number shows

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f6f7f9;color:#1d2330;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff;
box-shadow:0 0 8px rgba(0,0,0,.08)}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 8px;
border-bottom:2px solid #dde3ec;padding-bottom:4px}h3{font-size:1.05em;margin:18px 0 6px}
.sub{color:#5a6475;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:.92em}
th,td{border:1px solid #d5dbe5;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef2f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:.9em}
pre{background:#f3f4f6;padding:8px;overflow-x:auto;white-space:pre-wrap;margin:4px 0}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.banner.bad{background:#fde8e8;border:1px solid #e0a0a0;color:#8a1c1c}
.banner.warn{background:#fff4dc;border:1px solid #e5c77a;color:#6b4b00}
.banner.good{background:#e6f5ea;border:1px solid #9fd0ad;color:#1d5b2e}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600}
.pill.ok,.pill.pass{background:#d8f0de;color:#1d5b2e}
.pill.failed,.pill.fail{background:#f8d4d4;color:#8a1c1c}
.pill.invalid,.pill.saturated{background:#ffe7b3;color:#6b4b00}
.pill.other{background:#e4e7ec;color:#333}
td.notscored{color:#8a8f99;font-style:italic}
figure{margin:16px 0 28px}figure img{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{color:#3c4656;font-size:.92em;margin-top:4px}
.muted{color:#6b7383}td code{word-break:break-all}
.cols{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}.cols h3{margin-top:6px}
.headline td:nth-child(3){font-weight:600}
"""

# The browser may load nothing but this file's own inline style and data: images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class Html(str):
    """A string that is already HTML (built here from escaped parts); never escaped again."""


def esc(value: Any) -> str:
    """Escape text from a file for HTML; ``://`` becomes ``&#58;//`` (no literal URLs)."""
    return html.escape(str(value), quote=True).replace("://", "&#58;//")


def fmt_num(value: Any, digits: int = 4) -> str:
    """Numbers to ``digits`` significant digits; None/NaN → ``NA``; other values as text."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return NA
        return f"{value:.{digits}g}"
    return str(value)


def pill(text: str, kind: str) -> Html:
    return Html(f'<span class="pill {esc(kind)}">{esc(text)}</span>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          numeric: Sequence[int] = (), cls: str = "") -> Html:
    """An HTML table; cells are escaped unless they are :class:`Html`.

    numeric: column indices right-aligned (their cells formatted with :func:`fmt_num`).
    cls: the table's CSS class.
    """
    attr = f' class="{esc(cls)}"' if cls else ""
    out = [f"<table{attr}><thead><tr>", *(f"<th>{esc(h)}</th>" for h in headers),
           "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            if isinstance(cell, Html):
                cls = ' class="num"' if i in numeric else ""
                out.append(f"<td{cls}>{cell}</td>")
            elif i in numeric:
                out.append(f'<td class="num">{esc(fmt_num(cell))}</td>')
            else:
                out.append(f"<td>{esc(fmt_num(cell))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return Html("".join(out))
