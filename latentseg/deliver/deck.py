"""The PowerPoint deck of a saved model (python-pptx): six editable slides for leadership.

Slides: title; the segment map as a native table; the 2x2 of segments on two dimensions; the
opportunity heatmap; sizes with their intervals (figure and a native table); the recommendation.
Tables and text are native PowerPoint objects (text frames and table cells anyone can edit); the
three figures are the report's own (:mod:`latentseg.deliver.plots`, drawn as PNG in memory). A
section the model lacks (no dimensions, no segment map) leaves its slide out.

Every number comes from :func:`latentseg.deliver.briefing.briefing_tables`, the tables the
workbook shows, rounded to what their intervals support.

Nothing runs off a slide: every shape is placed inside the slide's margins, and text is sized to
its box before it is written. The deck's font is Arial (LibreOffice shows it in Liberation Sans,
which has the same metrics); text is measured with Helvetica's metrics (the same widths, from the
Adobe font metrics matplotlib ships), kerning ignored and 3% added, and lines 1.2 times the font
size, so text that fits when measured fits when shown. Where the segment map does not fit on one
slide it shows two top outcomes a segment instead of three; a table still too long at 9 points
goes on over continuation slides.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from latentseg.deliver.briefing import COUNT_FORMAT, BriefTable, weights_note

__all__ = ["write_deck", "SLIDE_WIDTH", "SLIDE_HEIGHT", "MARGIN", "FIGURES", "FIGURE_DPI"]

#: Slide size in inches (16:9) and the margin kept free on every side.
SLIDE_WIDTH, SLIDE_HEIGHT, MARGIN = 13.333, 7.5, 0.45
#: The report's figures the deck places (by the report's keys), and the resolution of their pictures.
FIGURES = ("segments_2x2", "opportunity_heatmap", "share_intervals")
FIGURE_DPI = 200
_FONT = "Arial"
_TITLE_TOP, _TITLE_H = 0.3, 0.9
_BODY_TOP = _TITLE_TOP + _TITLE_H + 0.15
_BODY_BOTTOM = SLIDE_HEIGHT - MARGIN
_LINE = 1.2  # line height as a multiple of the font size (Arial and DejaVu Sans need < 1.17)
_SAFETY = 1.03  # text is measured this much wider than the font's metrics say
_CELL_MARGIN_X, _CELL_MARGIN_Y = 0.08, 0.05  # inches
_DARK, _GREY = (0x1F, 0x3B, 0x57), (0x55, 0x55, 0x55)
_REC_ORDER = ("target", "monitor", "deprioritize")


# ------------------------------------------------------------------------------ measuring
@lru_cache(maxsize=2)
def _font(bold: bool) -> Any:
    import matplotlib
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name), 100)


@lru_cache(maxsize=2)
def _helvetica(bold: bool) -> dict[str, float]:
    """Advance widths (in em) of the printable ASCII characters in Helvetica, whose metrics Arial
    and Liberation Sans share, from the Adobe font metrics matplotlib ships; {} if not found."""
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "fonts", "afm", "phvb8a.afm" if bold else "phvr8a.afm")
    widths: dict[str, float] = {}
    try:
        lines = Path(path).read_text(encoding="latin-1").splitlines()
    except OSError:
        return widths
    for line in lines:
        fields = dict(f.strip().split(" ", 1) for f in line.split(";") if f.strip().count(" ") >= 1) if line.startswith("C ") else {}
        try:
            code, wx = int(fields["C"]), float(fields["WX"])
        except (KeyError, ValueError):
            continue
        if 32 <= code <= 126:
            widths[chr(code)] = wx / 1000
    return widths


def _width(text: str, pt: float, bold: bool = False) -> float:
    """Width of one line of ``text`` in inches at ``pt`` points, in Arial: Helvetica's widths for
    ASCII characters (kerning ignored, which only overestimates), DejaVu Sans's (wider) for the rest."""
    table = _helvetica(bold)
    em = sum(table.get(ch, 0.0) for ch in text)
    rest = "".join(ch for ch in text if ch not in table)
    if rest:
        em += float(_font(bold).getlength(rest)) / 100
    return em * pt / 72 * _SAFETY


def _n_lines(text: str, pt: float, width: float, bold: bool = False) -> int:
    """Lines ``text`` takes when wrapped at word boundaries into ``width`` inches (a word wider
    than the line is broken, as PowerPoint and LibreOffice do)."""
    lines = 0
    for para in text.split("\n"):
        lines += 1
        used = 0.0
        space = _width(" ", pt, bold)
        for word in para.split(" "):
            w = _width(word, pt, bold)
            if used and used + space + w <= width:
                used += space + w
                continue
            if used:
                lines += 1
            while w > width:  # a word longer than the line
                lines += 1
                w -= width
            used = w
    return lines


@dataclass(frozen=True)
class _Para:
    """One paragraph of a text frame or cell: text, bold, relative size, colour."""

    text: str
    bold: bool = False
    scale: float = 1.0
    color: tuple[int, int, int] | None = None


def _height(paras: Sequence[_Para], pt: float, width: float, margin_y: float = _CELL_MARGIN_Y) -> float:
    """Height in inches of paragraphs in a box (a cell, a text box) ``width`` inches wide, with its
    margins."""
    h = 0.0
    for p in paras:
        size = pt * p.scale
        h += _n_lines(p.text, size, width - 2 * _CELL_MARGIN_X, p.bold) * size * _LINE / 72
    return h + 2 * margin_y


# ------------------------------------------------------------------------------ drawing
def _inches(x: float) -> Any:
    from pptx.util import Emu

    return Emu(int(round(x * 914400)))


def _write_paras(tf: Any, paras: Sequence[_Para], pt: float) -> None:
    from pptx.dml.color import RGBColor
    from pptx.util import Pt

    tf.word_wrap = True
    for i, p in enumerate(paras):
        para = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
        run = para.add_run()
        run.text = _clean(p.text)
        f = run.font
        f.name, f.size, f.bold = _FONT, Pt(round(pt * p.scale, 1)), p.bold
        if p.color is not None:
            f.color.rgb = RGBColor(*p.color)


def _clean(text: str) -> str:
    """One line of text with every control character (which an XML part cannot hold, or which
    would break the line where the measurement did not) made a space; paragraphs are separate."""
    return "".join(ch if ch >= " " and ch not in "\x7f\ufffe\uffff" else " " for ch in str(text))


def _textbox(slide: Any, box: tuple[float, float, float, float], paras: Sequence[_Para], *, sizes: Sequence[float]) -> Any:
    """A text box in ``box`` (left, top, width, height inches) with the largest size of ``sizes``
    at which the text fits; the box shrinks to the text's height. At the smallest size, text that
    still does not fit is cut to what fits, with an ellipsis."""
    from pptx.enum.text import MSO_AUTO_SIZE

    left, top, width, height = box
    pt = sizes[-1]
    for s in sizes:
        if _height(paras, s, width) <= height:
            pt = s
            break
    else:
        paras = _cut(paras, pt, width, height)
    shape = slide.shapes.add_textbox(_inches(left), _inches(top), _inches(width), _inches(min(height, _height(paras, pt, width))))
    tf = shape.text_frame
    tf.auto_size = MSO_AUTO_SIZE.NONE
    tf.margin_left = tf.margin_right = _inches(_CELL_MARGIN_X)
    tf.margin_top = tf.margin_bottom = _inches(_CELL_MARGIN_Y)
    _write_paras(tf, paras, pt)
    return shape


def _cut(paras: Sequence[_Para], pt: float, width: float, height: float) -> list[_Para]:
    """The leading paragraphs that fit in ``height``, the last one shortened with an ellipsis."""
    out: list[_Para] = []
    for p in paras:
        if _height([*out, p], pt, width) <= height:
            out.append(p)
            continue
        words = p.text.split(" ")

        def shortened(n: int, p: _Para = p) -> _Para:
            return _Para(" ".join(words[:n]) + " …", p.bold, p.scale, p.color)

        lo, hi = 0, len(words)  # the most words that fit (binary search: the height grows with them)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _height([*out, shortened(mid)], pt, width) <= height:
                lo = mid
            else:
                hi = mid - 1
        if lo:
            out.append(shortened(lo))
        break
    return out


def _find(tables: Any, key: str) -> Any:
    """The briefing table ``key`` among ``tables`` (None when absent)."""
    return next((t for t in tables if t.key == key), None)


def _slide_title(slide: Any, text: str) -> None:
    _textbox(slide, (MARGIN, _TITLE_TOP, SLIDE_WIDTH - 2 * MARGIN, _TITLE_H), [_Para(text, True, color=_DARK)],
             sizes=(28, 26, 24, 22, 20, 18))


def _picture(slide: Any, png: bytes, box: tuple[float, float, float, float]) -> Any:
    """The image scaled to fit ``box`` (aspect kept), centred in it."""
    from PIL import Image

    left, top, width, height = box
    with Image.open(io.BytesIO(png)) as im:
        w_px, h_px = im.size
    scale = min(width / w_px, height / h_px)
    w, h = w_px * scale, h_px * scale
    return slide.shapes.add_picture(io.BytesIO(png), _inches(left + (width - w) / 2), _inches(top + (height - h) / 2),
                                    _inches(w), _inches(h))


def _png(fig: Any) -> bytes:
    if isinstance(fig, bytes):  # rendered already, at FIGURE_DPI (the report renders them with its own)
        return fig
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI)
    return buf.getvalue()


# ------------------------------------------------------------------------------ tables
def _fit_rows(header: Sequence[Sequence[_Para]], rows: Sequence[Sequence[Sequence[_Para]]], widths: Sequence[float],
              height: float, sizes: Sequence[float]) -> tuple[float, list[float], float, list[float]]:
    """(font size, column widths, header height, row heights): the largest size at which all rows
    fit in ``height``, else the smallest (the caller splits the rows over slides)."""

    def heights(pt: float) -> tuple[list[float], float, list[float]]:
        ws = _widths([[h, *(r[j] for r in rows)] for j, h in enumerate(header)], widths, pt)
        head = max(_height(c, pt, w) for c, w in zip(header, ws, strict=True))
        return ws, head, [max(_height(c, pt, w) for c, w in zip(r, ws, strict=True)) for r in rows]

    for pt in sizes:
        ws, head, hs = heights(pt)
        if head + sum(hs) <= height:
            return pt, ws, head, hs
    ws, head, hs = heights(sizes[-1])
    return sizes[-1], ws, head, hs


def _widths(columns: Sequence[Sequence[Sequence[_Para]]], widths: Sequence[float], pt: float) -> list[float]:
    """Column widths, each at least as wide as the longest word in it (so no word is broken where
    the table can afford it), the other columns narrowed in proportion to pay for it."""
    need = [max((_width(w, pt * p.scale, p.bold) for c in col for p in c for w in p.text.split()), default=0.0)
            + 2 * _CELL_MARGIN_X + 0.02 for col in columns]
    out = list(widths)
    short = [j for j in range(len(out)) if need[j] > out[j]]
    if not short or sum(need) > sum(widths):
        return out
    extra = sum(need[j] - out[j] for j in short)
    rest = [j for j in range(len(out)) if j not in short]
    spare = sum(out[j] - need[j] for j in rest)
    for j in short:
        out[j] = need[j]
    for j in rest:
        out[j] -= extra * (out[j] - need[j]) / spare
    return out


def _table_slides(prs: Any, title: str, header: Sequence[Sequence[_Para]], rows: Sequence[Sequence[Sequence[_Para]]],
                  fractions: Sequence[float], *, box: tuple[float, float, float, float] | None = None,
                  sizes: Sequence[float] = (14, 13, 12, 11, 10, 9), slide: Any = None) -> list[Any]:
    """A native table on one slide, or over continuation slides when it does not fit on one."""
    left, top, width, height = box or (MARGIN, _BODY_TOP, SLIDE_WIDTH - 2 * MARGIN, _BODY_BOTTOM - _BODY_TOP)
    widths = [width * f / sum(fractions) for f in fractions]
    pt, widths, head_h, row_h = _fit_rows(header, rows, widths, height, sizes)
    rows = list(rows)
    for i, h in enumerate(row_h):  # a row taller than a slide on its own is cut to one slide
        if head_h + h > height:
            rows[i] = [_cut(c, pt, w, height - head_h) for c, w in zip(rows[i], widths, strict=True)]
            row_h[i] = max(_height(c, pt, w) for c, w in zip(rows[i], widths, strict=True))
    chunks: list[list[int]] = [[]]
    used = head_h
    for i, h in enumerate(row_h):
        if chunks[-1] and used + h > height:
            chunks.append([])
            used = head_h
        chunks[-1].append(i)
        used += h
    slides = []
    for n, chunk in enumerate(chunks):
        if slide is None or n > 0:
            slide = prs.slides.add_slide(prs.slide_layouts[6])
            _slide_title(slide, title if n == 0 else f"{title} (continued)")
        _native_table(slide, header, [rows[i] for i in chunk], widths, head_h, [row_h[i] for i in chunk], pt, left, top)
        slides.append(slide)
    return slides


def _native_table(slide: Any, header: Sequence[Sequence[_Para]], rows: Sequence[Sequence[Sequence[_Para]]],
                  widths: Sequence[float], head_h: float, row_h: Sequence[float], pt: float, left: float, top: float) -> Any:
    hs = [head_h, *row_h]
    shape = slide.shapes.add_table(len(rows) + 1, len(widths), _inches(left), _inches(top), _inches(sum(widths)), _inches(sum(hs)))
    table = shape.table
    for j, w in enumerate(widths):
        table.columns[j].width = _inches(w)
    for i, h in enumerate(hs):
        table.rows[i].height = _inches(h)
    for i, cells in enumerate([header, *rows]):
        for j, paras in enumerate(cells):
            cell = table.cell(i, j)
            cell.margin_left = cell.margin_right = _inches(_CELL_MARGIN_X)
            cell.margin_top = cell.margin_bottom = _inches(_CELL_MARGIN_Y)
            _write_paras(cell.text_frame, [_Para(" ")] if not paras else paras, pt)
    return shape


# ------------------------------------------------------------------------------ formatting
def _fmt(v: Any, fmt: str | None) -> str:
    """A table value as the workbook shows it (its Excel number format, in Python)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, str) or fmt is None:
        return str(v)
    f = float(v)
    if fmt.endswith("%"):
        decimals = len(fmt.split(".")[1]) - 1 if "." in fmt else 0
        return f"{f:.{decimals}%}"
    if fmt == "#,##0":
        return f"{f:,.0f}"
    if fmt == "0":
        return f"{f:.0f}"
    decimals = len(fmt.split(".")[1]) if "." in fmt else 0
    return f"{f:,.{decimals}f}" if fmt.startswith("#,##") else f"{f:.{decimals}f}"


def _range(t: BriefTable, row: Any, head: str) -> str:
    """``"46% (39–52%)"`` from a value column and its bound columns."""
    fmt = t.formats.get(head)
    lo, hi = row.get(f"{head} lower bound"), row.get(f"{head} upper bound")
    value = _fmt(row.get(head), fmt)
    if _fmt(lo, fmt) and _fmt(hi, fmt):
        return f"{value} ({_fmt(lo, fmt)}–{_fmt(hi, fmt)})"
    return value


# ------------------------------------------------------------------------------ slides
def write_deck(model: Any, path: str | os.PathLike[str], *, title: str | None = None,
               tables: Sequence[BriefTable] | None = None, figures: Mapping[str, Any] | None = None) -> Path:
    """Write the leadership deck of a saved model as a PowerPoint file.

    Parameters
    ----------
    model : SavedModel or path
    path : path
        The ``.pptx`` file (written atomically).
    title : str, optional
        The title slide's title (default: the title saved with the model).
    tables : list of BriefTable, optional
        Default: :func:`latentseg.deliver.briefing.briefing_tables` of ``model``.
    figures : mapping of str to Figure or bytes, optional
        Figures of this model already drawn, by the HTML report's keys (:data:`FIGURES`:
        ``segments_2x2``, ``opportunity_heatmap``, ``share_intervals``), or their PNG already
        rendered at :data:`FIGURE_DPI`: placed as they are instead of drawn again (the report
        passes its own). A key not given is drawn here.

    Returns
    -------
    Path

    Examples
    --------
    >>> write_deck("models/project-survey", "out/report.pptx")  # doctest: +SKIP
    PosixPath('out/report.pptx')
    """
    from pptx import Presentation

    from latentseg.deliver.artifacts import SavedModel, load_model
    from latentseg.deliver.briefing import briefing_tables, deliverable_title
    from latentseg.io.files import atomic_write

    saved = model if isinstance(model, SavedModel) else load_model(model)
    tables = list(tables) if tables is not None else briefing_tables(saved)
    prs = Presentation()
    prs.slide_width, prs.slide_height = _inches(SLIDE_WIDTH), _inches(SLIDE_HEIGHT)
    smap = _find(tables, "segment_map")
    _title_slide(prs, saved, deliverable_title(saved, title), smap)
    if smap is not None:
        _segment_map_slide(prs, smap)
    drawn = dict(figures or {})
    _quadrant_slide(prs, saved, drawn.get("segments_2x2"))
    _heatmap_slide(prs, saved, drawn.get("opportunity_heatmap"))
    _sizes_slide(prs, saved, _find(tables, "sizes"), drawn.get("share_intervals"))
    if smap is not None:
        _recommendation_slide(prs, smap, saved)
    prs.core_properties.title = _clean(deliverable_title(saved, title))[:250]
    prs.core_properties.author = "latentseg"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: prs.save(str(tmp)))


def _body_box() -> tuple[float, float, float, float]:
    return MARGIN, _BODY_TOP, SLIDE_WIDTH - 2 * MARGIN, _BODY_BOTTOM - _BODY_TOP


def _title_slide(prs: Any, saved: Any, title: str, smap: BriefTable | None) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    result = saved.result
    width = SLIDE_WIDTH - 2 * MARGIN
    _textbox(slide, (MARGIN, 2.0, width, 1.9), [_Para(title, True, color=_DARK)], sizes=(40, 36, 32, 28, 24, 20))
    lines = [_Para(f"{result.k} segments of {result.n:,} respondents ({result.model}; shares with {result.interval_method} intervals)")]
    if weights_note(saved):
        lines.append(_Para(weights_note(saved), scale=0.8))
    if smap is not None:
        for rec in _REC_ORDER:
            names = [str(n) for n, r in zip(smap.frame["Name"], smap.frame["Recommendation"], strict=True) if r == rec]
            if names:
                lines.append(_Para(f"{rec.capitalize()}: {', '.join(names)}", bold=rec == "target"))
    lines.append(_Para(f"latentseg, {_dt.datetime.now(_dt.UTC):%Y-%m-%d}; model {saved.model_id[:12]}", scale=0.8, color=_GREY))
    _textbox(slide, (MARGIN, 4.0, width, _BODY_BOTTOM - 4.0), lines, sizes=(20, 18, 16, 14, 12, 10))


def _segment_map_slide(prs: Any, smap: BriefTable) -> None:
    frame = smap.frame
    has_count = "Customers" in frame.columns
    has_current = "Current solution" in frame.columns
    heads = ["Segment", "Size", "Top underserved outcomes", "Who they are"] + (["Current solution"] if has_current else []) + ["Recommendation"]
    fractions = [0.17, 0.14, 0.33, 0.22] + ([0.12] if has_current else []) + [0.12]
    header = [[_Para(h, True)] for h in heads]
    left, top, width, height = _body_box()
    widths = [width * f / sum(fractions) for f in fractions]
    # up to three top outcomes and two fingerprint items a segment; two and one where that keeps
    # the map on one slide (the workbook has them all)
    for n_out, n_who in ((3, 2), (2, 1)):
        rows = _segment_map_rows(smap, n_out, n_who, has_count, has_current)
        _, _, head_h, row_h = _fit_rows(header, rows, widths, height, _TABLE_SIZES)
        if head_h + sum(row_h) <= height:
            break
    _table_slides(prs, "Segment map", header, rows, fractions)


_TABLE_SIZES = (14, 13, 12, 11, 10, 9)


def _segment_map_rows(smap: BriefTable, n_out: int, n_who: int, has_count: bool, has_current: bool) -> list[list[list[_Para]]]:
    """The segment map's cells, one row a segment."""
    rows = []
    for rec in smap.frame.to_dict(orient="records"):
        name = [_Para(str(rec["Name"]), True)]
        if rec.get("Description") and rec["Description"] != rec["Name"] and len(str(rec["Description"])) <= 40:
            name.append(_Para(str(rec["Description"]), scale=0.85, color=_GREY))
        size = [_Para(_range(smap, rec, "Share"))]
        if has_count and _fmt(rec.get("Customers"), COUNT_FORMAT):
            size.append(_Para(f"~{_range(smap, rec, 'Customers')} customers", scale=0.85, color=_GREY))
        outs = [_Para(f"• {o}") for o in str(rec.get("Top underserved outcomes") or "").split("\n")[:n_out] if o] or [_Para("none underserved")]
        who = [_Para(f"• {w}") for w in str(rec.get("Who they are") or "").split("\n")[:n_who] if w]
        row = [name, size, outs, who]
        if has_current:
            row.append([_Para(str(rec.get("Current solution") or "–"))])
        recommendation = [_Para(str(rec["Recommendation"]).capitalize(), True)]
        recommendation += [_Para(f, scale=0.85, color=_GREY) for f in str(rec.get("Flags") or "").split("; ") if f]
        row.append(recommendation)
        rows.append(row)
    return rows


def _quadrant_slide(prs: Any, saved: Any, fig: Any = None) -> None:
    from latentseg.deliver.plots import plot_segment_map

    dims = saved.tables.get("dimensions")
    rep = saved.meta.get("report") or {}
    pair = [str(p) for p in rep.get("dimensions") or []]
    if dims is None or len(pair) != 2 or any(p not in dims.columns for p in pair):
        return
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, "Segments on two dimensions")
    left, top, width, height = _body_box()
    caption = [_Para(f"Bubble area is the segment's share; its position the segment's mean opportunity on {pair[0]} and "
                     f"{pair[1]}. Dashed lines: sample averages. Dimensions: {rep.get('dimensions_why', '')}.", scale=1, color=_GREY)]
    cap_h = min(_height(caption, 12, width), 1.0)
    fig = fig if fig is not None else plot_segment_map(saved.result, dims, pair)
    _picture(slide, _png(fig), (left, top, width, height - cap_h - 0.1))
    _textbox(slide, (left, top + height - cap_h, width, cap_h), caption, sizes=(12, 11, 10, 9))


def _heatmap_slide(prs: Any, saved: Any, fig: Any = None) -> None:
    import pandas as pd

    from latentseg.deliver.plots import plot_opportunity_heatmap

    result = saved.result
    means = saved.tables.get("profile_means")
    if means is None:
        means = pd.DataFrame(result.centers, index=pd.RangeIndex(1, result.k + 1), columns=list(result.feature_names))
    if means.empty:
        return
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, "Opportunity by segment and outcome")
    left, top, width, height = _body_box()
    caption = [_Para("Mean opportunity score (0-20) of each segment on each outcome; bold cells are underserved (10 or more).",
                     color=_GREY)]
    cap_h = min(_height(caption, 12, width), 0.8)
    if fig is None:
        fig = plot_opportunity_heatmap(means, outcomes=saved.tables.get("outcomes"), names=list(result.segment_labels))
    _picture(slide, _png(fig), (left, top, width, height - cap_h - 0.1))
    _textbox(slide, (left, top + height - cap_h, width, cap_h), caption, sizes=(12, 11, 10, 9))


def _sizes_slide(prs: Any, saved: Any, sizes: BriefTable | None, fig: Any = None) -> None:
    from latentseg.deliver.plots import plot_shares

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, "Segment sizes")
    left, top, width, height = _body_box()
    fig_w = width * 0.5 if sizes is not None else width
    caption = [_Para(f"Bars: estimated share; whiskers: {saved.result.interval_method} interval.", color=_GREY)]
    if weights_note(saved):
        caption.append(_Para(weights_note(saved), color=_GREY, scale=0.9))
    if sizes is not None and sizes.note:
        caption.append(_Para(sizes.note, color=_GREY, scale=0.9))
    cap_h = min(_height(caption, 11, width), 1.2)
    fig = fig if fig is not None else plot_shares(saved.result)
    _picture(slide, _png(fig), (left, top, fig_w - 0.2, height - cap_h - 0.1))
    _textbox(slide, (left, top + height - cap_h, width, cap_h), caption, sizes=(11, 10, 9, 8))
    if sizes is None:
        return
    frame = sizes.frame
    cols = [c for c in ("Share", "Customers", "Revenue") if c in frame.columns]
    heads = ["Segment", *(f"{c} (interval)" for c in cols)]
    rows = [[[_Para(str(rec["Name"]), True)], *([_Para(_range(sizes, rec, c))] for c in cols)]
            for rec in frame.to_dict(orient="records")]
    _table_slides(prs, "Segment sizes", [[_Para(h, True)] for h in heads], rows, [1.3] + [1.0] * len(cols),
                  box=(left + fig_w, top, width - fig_w, height - cap_h - 0.1), slide=slide)


def _recommendation_slide(prs: Any, smap: BriefTable, saved: Any) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, "Recommendation")
    left, top, width, height = _body_box()
    paras: list[_Para] = []
    frame = smap.frame
    for rec in _REC_ORDER:
        seg = [r for r in frame.to_dict(orient="records") if r["Recommendation"] == rec]
        if not seg:
            continue
        paras.append(_Para(rec.capitalize(), True, scale=1.1, color=_DARK))
        for r in seg:
            outs = [o for o in str(r.get("Top underserved outcomes") or "").split("\n") if o][:2]
            text = f"{r['Name']}, {_range(smap, r, 'Share')} of respondents: {r['Why']}"
            if outs:
                text += f". Most underserved: {'; '.join(outs)}"
            paras.append(_Para(f"• {text}"))
    rule = (saved.meta.get("segment_map") or {}).get("rule", "")
    foot = [_Para(f"Rule: {rule}", scale=1, color=_GREY)] if rule else []
    foot_h = min(_height(foot, 10, width), 1.0) if foot else 0.0
    _textbox(slide, (left, top, width, height - foot_h - 0.1), paras, sizes=(20, 18, 16, 14, 13, 12, 11, 10))
    if foot:
        _textbox(slide, (left, top + height - foot_h, width, foot_h), foot, sizes=(10, 9, 8))

