"""The Excel workbook of a saved model: one sheet per briefing table (openpyxl).

Sheets, in order: Segment map, Sizes, Opportunity, Overlays, Overlay tests, Selection, About
(:func:`latentseg.deliver.briefing.briefing_tables`; a section the model lacks is left out).
Each sheet has its header row (and, where the first column names the row, that column) frozen,
a filter on the header, numbers stored as numbers with their format (percentages as ``0%``,
counts as ``#,##0``), and the table's note in a comment on the first header cell. Opportunity
scores that are underserved (>= 10) are shaded, darker where extremely underserved (>= 15).

Text is stored as text, never as a formula: a cell beginning with ``=`` (a segment named
``=HYPERLINK(...)``) is written as a string with Excel's quote prefix, so neither opening nor
editing the cell runs it. Characters a workbook cannot hold (control characters) are dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentseg.deliver.briefing import BriefTable

__all__ = ["write_workbook"]

_HEADER_FILL = "1F3B57"
_UNDERSERVED_FILL = "FBE3C8"
_EXTREME_FILL = "F4A460"
#: Leading columns that name a row: frozen with the header.
_ROW_NAMES = ("Segment", "Name", "Outcome", "Statement", "Profile column", "Value", "Model", "Segments")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def write_workbook(model: Any, path: str | os.PathLike[str], *, title: str | None = None,
                   tables: Sequence[BriefTable] | None = None) -> Path:
    """Write the briefing tables of a saved model to one Excel workbook, one sheet per table.

    Parameters
    ----------
    model : SavedModel or path
    path : path
        The ``.xlsx`` file (written atomically).
    title : str, optional
        Shown on the About sheet (default: the title saved with the model).
    tables : list of BriefTable, optional
        Default: :func:`latentseg.deliver.briefing.briefing_tables` of ``model``.

    Returns
    -------
    Path

    Examples
    --------
    >>> write_workbook("models/project-survey", "out/report.xlsx")  # doctest: +SKIP
    PosixPath('out/report.xlsx')
    """
    from openpyxl import Workbook

    from latentseg.deliver.artifacts import SavedModel, load_model
    from latentseg.deliver.briefing import briefing_tables, deliverable_title
    from latentseg.io.files import atomic_write

    saved = model if isinstance(model, SavedModel) else load_model(model)
    tables = list(tables) if tables is not None else briefing_tables(saved)
    wb = Workbook()
    wb.remove(wb.active)
    for t in tables:
        ws = wb.create_sheet(t.title[:31])
        _fill_sheet(ws, t, title=deliverable_title(saved, title) if t.key == "about" else None)
    wb.properties.title = _clean(deliverable_title(saved, title))
    wb.properties.creator = "latentseg"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: wb.save(tmp))


def _clean(text: Any) -> str:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("", str(text))


def _put(ws: Any, row: int, col: int, value: Any) -> Any:
    """One cell: a number as a number, text as text (never a formula)."""
    import math

    if isinstance(value, float) and math.isnan(value):
        value = None
    if isinstance(value, str):
        text = _clean(value)
        cell = ws.cell(row=row, column=col, value=text)
        cell.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
        if text.startswith(_FORMULA_START):
            cell.quotePrefix = True  # and Excel would run it once the cell is edited
        return cell
    return ws.cell(row=row, column=col, value=value)


def _fill_sheet(ws: Any, t: BriefTable, *, title: str | None) -> None:
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    frame = t.frame
    if title is not None and t.key == "about":
        frame = frame.copy()
        frame.loc[frame["Item"] == "Title", "Value"] = title
    head_font = Font(bold=True, color="FFFFFF")
    head_fill = PatternFill("solid", fgColor=_HEADER_FILL)
    fills = {"under": PatternFill("solid", fgColor=_UNDERSERVED_FILL), "extreme": PatternFill("solid", fgColor=_EXTREME_FILL)}
    for j, head in enumerate(frame.columns, start=1):
        cell = _put(ws, 1, j, str(head))
        cell.font, cell.fill = head_font, head_fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    if t.note:
        ws.cell(row=1, column=1).comment = Comment(_clean(t.note)[:2000], "latentseg")
    widths = [min(max(len(str(h)), 8), 40) for h in frame.columns]
    for i, rec in enumerate(frame.itertuples(index=False, name=None), start=2):
        for j, (head, value) in enumerate(zip(frame.columns, rec, strict=True), start=1):
            cell = _put(ws, i, j, value)
            fmt = t.formats.get(str(head))
            if fmt and not isinstance(value, str):
                cell.number_format = fmt
            if isinstance(value, str):
                widths[j - 1] = min(max(widths[j - 1], *(len(line) for line in value.split("\n"))), 60)
                if len(value) > 60 or "\n" in value:  # a list, one item a line
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
            rule = t.fill.get(str(head))
            if rule == "opportunity" and isinstance(value, (int, float)) and value == value:
                if value >= 15:
                    cell.fill, cell.font = fills["extreme"], Font(bold=True)
                elif value >= 10:
                    cell.fill, cell.font = fills["under"], Font(bold=True)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w + 2
    # header row frozen, and the leading columns that name the row (segment and name, outcome and statement ...)
    lead = 0
    while lead < min(2, frame.shape[1] - 1) and str(frame.columns[lead]) in _ROW_NAMES:
        lead += 1
    ws.freeze_panes = f"{get_column_letter(lead + 1)}2"
    if len(frame):
        ws.auto_filter.ref = f"A1:{get_column_letter(frame.shape[1])}{len(frame) + 1}"
