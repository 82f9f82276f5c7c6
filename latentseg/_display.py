"""How results show themselves: a short text ``repr`` and a compact HTML table for Jupyter.

Shared by :class:`~latentseg.SegmentationResult`, :class:`~latentseg.choose.selection.Selection`,
:class:`~latentseg.choose.comparison.Comparison`, :class:`~latentseg.decide.segmap.SegmentMap` and
:class:`~latentseg.prepare.cleaning.CleaningReport`. Standard library only (cheap to import).

Every piece of text that may come from a user (segment names, outcome statements, file names,
warnings) goes through :func:`esc` (``html.escape``) before it reaches HTML; table cells are
escaped unless wrapped in :class:`Raw` (HTML built here from escaped parts).

Examples
--------
>>> finish_repr(["<Thing a=1>", "  detail"])
'<Thing a=1>\\n  detail'
>>> share_text(0.384, 0.331, 0.43)
'38% [33-43]'
>>> str(cell("<script>"))
'<td>&lt;script&gt;</td>'
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "Raw",
    "esc",
    "clip",
    "pct",
    "share_text",
    "number",
    "estimate",
    "estimate_unit",
    "finish_repr",
    "badge",
    "cell",
    "table",
    "box",
    "MAX_REPR_LINES",
    "MAX_REPR_CHARS",
]

#: A repr is at most this many lines and characters (the rest is cut, with an ellipsis).
MAX_REPR_LINES = 10
MAX_REPR_CHARS = 990

_BADGE = {
    "ok": ("#e8f5e9", "#1b5e20"),
    "warn": ("#fff3e0", "#8a4b00"),
    "bad": ("#c62828", "#ffffff"),
    "info": ("#eceff1", "#263238"),
    "target": ("#2e7d32", "#ffffff"),
    "monitor": ("#f9a825", "#212121"),
    "deprioritize": ("#9e9e9e", "#ffffff"),
}
_HIGHLIGHT = "background:#fff8c4;font-weight:bold"


class Raw(str):
    """HTML already built from escaped parts; :func:`cell` leaves it as is."""


def esc(value: Any) -> str:
    """``html.escape(str(value))`` (quotes too)."""
    return html.escape(str(value), quote=True)


def clip(value: Any, width: int = 80) -> str:
    """One line of at most ``width`` characters (whitespace collapsed; ``...`` where cut)."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: max(width - 3, 1)].rstrip() + "..."


def finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def pct(x: Any, digits: int = 0) -> str:
    """``0.384`` -> ``"38%"``; ``"n/a"`` for a missing value."""
    return f"{float(x) * 100:.{digits}f}%" if finite(x) else "n/a"


def share_text(share: Any, lower: Any, upper: Any) -> str:
    """``"38% [33-43]"``: a share and its interval, in percent."""
    if not (finite(lower) and finite(upper)):
        return pct(share)
    return f"{pct(share)} [{float(lower) * 100:.0f}-{float(upper) * 100:.0f}]"


def number(x: Any) -> str:
    """A criterion for people: ``27,912.4``, ``-12.35``, ``0.412``; ``"n/a"`` when missing."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if not finite(x):
        return "n/a"
    if isinstance(x, numbers.Integral):
        return f"{int(x):,}"
    v = float(x)
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def finish_repr(lines: Sequence[str], max_lines: int = MAX_REPR_LINES, max_chars: int = MAX_REPR_CHARS) -> str:
    """Join repr lines, keeping at most ``max_lines`` lines and ``max_chars`` characters."""
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        room = max_chars - used - (1 if kept else 0)
        if len(kept) == max_lines - 1 and i < len(lines) - 1:
            more = f"  ... ({len(lines) - i} more lines)"
            kept.append(more if len(more) <= room else clip(more, max(room, 4)))
            break
        if room <= 3:
            break
        kept.append(line if len(line) <= room else clip(line, room))
        used += len(kept[-1]) + (1 if len(kept) > 1 else 0)
    return "\n".join(kept)


def badge(text: Any, kind: str = "info") -> Raw:
    """A small coloured label (``kind``: ok, warn, bad, info, target, monitor, deprioritize)."""
    bg, fg = _BADGE.get(kind, _BADGE["info"])
    return Raw(
        f'<span class="latentseg-badge latentseg-badge-{esc(kind)}" style="background:{bg};color:{fg};'
        f'padding:0 6px;border-radius:8px;font-size:85%;white-space:nowrap">{esc(text)}</span>'
    )


def cell(value: Any, tag: str = "td", style: str = "") -> Raw:
    """One table cell; ``value`` escaped unless it is :class:`Raw`."""
    body = value if isinstance(value, Raw) else esc(value)
    attr = f' style="{esc(style)}"' if style else ""
    return Raw(f"<{tag}{attr}>{body}</{tag}>")


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], highlight: Iterable[bool] | None = None,
          caption: Any = None) -> Raw:
    """A compact HTML table; rows whose ``highlight`` flag is true are marked."""
    marks = list(highlight) if highlight is not None else None
    out = ['<table class="latentseg-table" style="border-collapse:collapse;font-size:90%">']
    if caption is not None:
        out.append(f'<caption style="text-align:left">{caption if isinstance(caption, Raw) else esc(caption)}</caption>')
    out.append("<thead><tr>" + "".join(cell(h, "th") for h in header) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        on = marks is not None and i < len(marks) and marks[i]
        attr = f' class="latentseg-highlight" style="{_HIGHLIGHT}"' if on else ""
        out.append(f"<tr{attr}>" + "".join(cell(v) for v in row) + "</tr>")
    out.append("</tbody></table>")
    return Raw("".join(out))


def box(title: Any, *parts: Any) -> str:
    """The outer block: a bold title line (HTML if :class:`Raw`), then the parts (``None`` skipped)."""
    head = title if isinstance(title, Raw) else esc(title)
    body = "".join(p if isinstance(p, Raw) else f"<div>{esc(p)}</div>" for p in parts if p is not None)
    return f'<div class="latentseg-repr"><div style="margin-bottom:4px"><b>{head}</b></div>{body}</div>'


# ---- estimates rounded to what their interval supports (report, segment map, console) ----
def round_to(x: float, unit: float) -> float:
    """``x`` rounded to ``unit``, a power of ten (``round`` to decimals, so 0.1 units stay exact)."""
    return float(round(x, -round(math.log10(unit))))


def estimate_unit(value: Any, lower: Any = None, upper: Any = None) -> float:
    """The rounding unit an estimate supports: a power of ten giving 2-3 significant figures.

    With an interval: the power of ten of its half-width, but never more than 3 significant figures
    of the value and never fewer than 2. Without one: 3 significant figures.

    Examples
    --------
    >>> estimate_unit(52521, 45800, 59439)  # half-width 6,800: thousands
    1000.0
    >>> estimate_unit(52521)  # no interval: 3 significant figures
    100.0
    """
    v = abs(float(value))
    if v == 0 or not math.isfinite(v):
        return 1.0
    top = math.floor(math.log10(v))  # the value's leading digit position
    digits = 3
    if finite(lower) and finite(upper) and float(upper) > float(lower):
        half = (float(upper) - float(lower)) / 2
        digits = min(3, max(2, top - math.floor(math.log10(half)) + 1))
    return float(10.0 ** (top - digits + 1))


def estimate(value: Any, lower: Any = None, upper: Any = None) -> str:
    """A count (customers, revenue) rounded to what its interval supports, with the interval.

    Examples
    --------
    >>> estimate(52521.3, 45800.2, 59439.9)
    '53,000 (46,000–59,000)'
    >>> estimate(16932.1, 14566.7, 19268.7)
    '17,000 (15,000–19,000)'
    >>> estimate(458516.4, 375317.1, 547116.1)
    '460,000 (380,000–550,000)'
    >>> estimate(1234.5)
    '1,230'
    >>> estimate(float("nan"))
    'n/a'
    """
    if not finite(value):
        return "n/a"
    unit = estimate_unit(value, lower, upper)

    def fmt(x: Any) -> str:
        r = round_to(float(x), unit)
        return f"{r:,.0f}" if unit >= 1 else f"{r:,.{-math.floor(math.log10(unit))}f}"

    text = fmt(value)
    if finite(lower) and finite(upper):
        text += f" ({fmt(lower)}–{fmt(upper)})"
    return text
