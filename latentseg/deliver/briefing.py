"""The tables leadership reads, in words: one source for the Excel workbook and the PowerPoint deck.

:func:`briefing_tables` turns what the decide step saved with a model (the segment map, sizing,
profile means, overlays, selection table) into a few tables with headers in words. Nothing is
recomputed: a value is the saved value, only rounded to what its interval supports.

Rounding

- A value with an interval (a market count, revenue, ARPU) is rounded to the decimal place of the
  interval's half-width written to one significant figure, and to 2-3 significant figures in any
  case: 2,275 customers (1,937-2,621; half-width 342) is 2,300 (1,900-2,600). The bounds are
  rounded to the same place.
- Shares are whole percentages (a tenth of a percent where an interval is narrower than one
  percentage point).
- Opportunity scores (0-20) to one decimal; selection criteria to one decimal; effect sizes to two.

:func:`write_deliverables` writes both files beside the HTML report (``report.xlsx`` and
``report.pptx``); :func:`deliverable_outputs` names them for the output-path check.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg._display import finite, round_to, estimate_unit

__all__ = [
    "BriefTable",
    "briefing_tables",
    "round_to_interval",
    "share_decimals",
    "deliverable_outputs",
    "write_deliverables",
    "deliverable_title",
    "P_VALUE_FORMAT",
]

#: Excel number format of a p-value: three decimals, "< 0.001" below that.
P_VALUE_FORMAT = '[<0.001]"< 0.001";0.000'
COUNT_FORMAT = "#,##0"

#: How to install what the workbook and the deck need, named when it is missing.
INSTALL_HINT = "pip install 'openpyxl>=3.1' 'python-pptx>=1.0.2'"
#: The libraries the two files need (import names); any other missing module is a real error.
_OPTIONAL = ("openpyxl", "pptx", "lxml", "PIL")


@dataclass(frozen=True)
class BriefTable:
    """One table of the briefing.

    Attributes
    ----------
    key : str
        A stable identifier (``"segment_map"``, ``"sizes"``, ``"opportunity"``, ``"overlays"``,
        ``"overlay_tests"``, ``"selection"``, ``"about"``).
    title : str
        In words; the workbook's sheet name (at most 31 characters).
    frame : DataFrame
        Columns are headers in words; cells are numbers (float or int, NaN where unknown) or text.
    formats : dict of str to str
        Column -> Excel number format (``"0%"``, ``"#,##0"``, ``"0.0"`` ...); text columns absent.
    note : str
        One sentence on what the table is and how its intervals were made.
    fill : dict of str to str
        Column -> a rule name for shading cells (``"opportunity"``: underserved >= 10, >= 15).
    """

    key: str
    title: str
    frame: pd.DataFrame
    formats: dict[str, str] = field(default_factory=dict)
    note: str = ""
    fill: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ rounding

def round_to_interval(value: Any, lower: Any = None, upper: Any = None) -> tuple[float, float, float]:
    """A value and its interval rounded to what the interval supports.

    The unit is :func:`latentseg._display.estimate_unit`'s (the power of ten of the interval's
    half-width, kept to 2-3 significant figures of the value; 3 without an interval), the rule
    the HTML report and the console print counts by, so the three deliverables agree. The bounds
    are rounded to the same unit.

    Parameters
    ----------
    value, lower, upper : float
        NaN or None where unknown.

    Returns
    -------
    (value, lower, upper) : tuple of float
        NaN for an unknown input.

    Examples
    --------
    >>> round_to_interval(2275.0, 1937.4, 2621.1)
    (2300.0, 1900.0, 2600.0)
    >>> round_to_interval(1075.0, 1070.0, 1080.0)  # a narrow interval: 3 significant figures at most
    (1080.0, 1070.0, 1080.0)
    >>> round_to_interval(17.53, 16.52, 18.54)
    (18.0, 17.0, 19.0)
    """
    nan = float("nan")
    if not finite(value):
        return nan, (float(lower) if finite(lower) else nan), (float(upper) if finite(upper) else nan)
    unit = estimate_unit(value, lower, upper)

    def r(x: Any) -> float:
        return round_to(float(x), unit) if finite(x) else nan

    return r(value), r(lower), r(upper)


def share_decimals(lower: Sequence[float], upper: Sequence[float]) -> int:
    """Decimals of a percentage the share intervals support: 0 (whole percent), or 1 when any
    interval is narrower than one percentage point.

    Examples
    --------
    >>> share_decimals([0.39, 0.27], [0.52, 0.40]), share_decimals([0.451], [0.458])
    (0, 1)
    """
    widths = [float(u) - float(lo) for lo, u in zip(lower, upper, strict=True) if finite(lo) and finite(u)]
    return 1 if any(0 < w / 2 < 0.01 for w in widths) else 0


def _pct_format(decimals: int) -> str:
    return "0%" if decimals == 0 else "0." + "0" * decimals + "%"


def _round_share(x: Any, decimals: int) -> float:
    return float(round(float(x), decimals + 2)) if finite(x) else float("nan")


def _words(v: Any) -> Any:
    """Booleans as yes / no, None as an empty cell; numpy scalars as Python numbers."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


# ------------------------------------------------------------------------------ tables
def briefing_tables(model: Any) -> list[BriefTable]:
    """The briefing's tables from a saved model (what the workbook and the deck show).

    Parameters
    ----------
    model : SavedModel or path
        A model saved by ``latentseg run`` (or one given its decisions by
        :func:`latentseg.decide.core.decide_saved`). Sections it lacks are left out.

    Returns
    -------
    list of BriefTable
        In order: segment map, sizes, opportunity, overlays, overlay tests, selection, about.

    Examples
    --------
    >>> tables = briefing_tables("models/project-survey")  # doctest: +SKIP
    >>> [t.title for t in tables]  # doctest: +SKIP
    ['Segment map', 'Sizes', 'Opportunity', 'Overlays', 'Overlay tests', 'Selection', 'About']
    """
    from latentseg.deliver.artifacts import SavedModel, load_model

    saved = model if isinstance(model, SavedModel) else load_model(model)
    builders = (_segment_map, _sizes, _opportunity, _overlays, _overlay_tests, _selection)
    out = [t for t in (b(saved) for b in builders) if t is not None]
    out.append(_about(saved))
    return out


def _names(saved: Any) -> list[str]:
    return [str(n) for n in saved.result.segment_labels]


def weights_note(saved: Any) -> str:
    """"Shares are weighted by 'weight' (Kish effective n 309 of 400 respondents)." for a model
    fitted on a weighted survey (its ``meta["weights"]``), else ""."""
    from latentseg.prepare.core import weights_sentence

    return weights_sentence(saved.meta.get("weights"), quote="'")


def _segments(saved: Any) -> list[dict[str, Any]]:
    """The saved segment map's segments (the decide step's), in segment order; [] if not saved."""
    smap = saved.meta.get("segment_map") or {}
    return sorted((dict(s) for s in smap.get("segments") or [] if "id" in s), key=lambda s: int(s["id"]))


def _segment_map(saved: Any) -> BriefTable | None:
    segs = _segments(saved)
    if not segs:
        return None
    names = _names(saved)
    dec = share_decimals([s["share_lower"] for s in segs], [s["share_upper"] for s in segs])
    has_count = any(finite(s.get("count")) for s in segs)
    has_current = any(s.get("current_solution") is not None for s in segs)
    rows = []
    for s in segs:
        j = int(s["id"])
        row: dict[str, Any] = {
            "Segment": j,
            "Name": names[j - 1] if j <= len(names) else str(s.get("handle", j)),
            "Description": str(s.get("name") or ""),
            "Recommendation": str(s.get("recommendation") or ""),
            "Why": str(s.get("reason") or ""),
            "Share": _round_share(s["share"], dec),
            "Share lower bound": _round_share(s["share_lower"], dec),
            "Share upper bound": _round_share(s["share_upper"], dec),
        }
        if has_count:
            c, lo, hi = round_to_interval(s.get("count"), s.get("count_lower"), s.get("count_upper"))
            row.update({"Customers": c, "Customers lower bound": lo, "Customers upper bound": hi})
        row["Underserved outcomes"] = int(s.get("n_underserved") or 0)
        row["Top underserved outcomes"] = "\n".join(str(o.get("statement", o.get("outcome", ""))) for o in s.get("top_underserved") or [])
        fp = s.get("fingerprint")
        row["Who they are"] = "not analysed" if fp is None else ("\n".join(map(str, fp)) or "demographically diffuse")
        if has_current:
            cur = s.get("current_solution")
            row["Current solution"] = "" if cur is None else f"{cur} ({float(s.get('current_solution_pct') or 0):.0f}% of the segment)"
        row["Flags"] = "; ".join(map(str, s.get("flags") or []))
        rows.append(row)
    pct = _pct_format(dec)
    formats = {"Segment": "0", "Share": pct, "Share lower bound": pct, "Share upper bound": pct,
               "Underserved outcomes": "0"}
    if has_count:
        formats.update({c: COUNT_FORMAT for c in ("Customers", "Customers lower bound", "Customers upper bound")})
    rule = (saved.meta.get("segment_map") or {}).get("rule", "")
    weighted = weights_note(saved)
    return BriefTable("segment_map", "Segment map", pd.DataFrame(rows), formats,
                      f"Shares with their {saved.result.interval_method} interval.{' ' + weighted if weighted else ''} "
                      f"Recommendation rule: {rule}")


#: The sizing table's columns: (saved column, header, kind); kind "share", "count" (rounded with
#: the interval of the next two columns), "int", "fit", "text".
_SIZE_COLUMNS = (
    ("share", "Share", "share"), ("share_lower", "Share lower bound", "share"), ("share_upper", "Share upper bound", "share"),
    ("interval", "Interval", "text"),
    ("count", "Customers", "count"), ("count_lower", "Customers lower bound", "bound"),
    ("count_upper", "Customers upper bound", "bound"),
    ("arpu", "Revenue per customer", "count"), ("arpu_lower", "Revenue per customer lower bound", "bound"),
    ("arpu_upper", "Revenue per customer upper bound", "bound"),
    ("revenue", "Revenue", "count"), ("revenue_lower", "Revenue lower bound", "bound"),
    ("revenue_upper", "Revenue upper bound", "bound"),
    ("n_underserved", "Underserved outcomes", "int"), ("product_fit", "Product fit", "fit"),
    ("flags", "Flags", "text"),
)


def _sizes(saved: Any) -> BriefTable | None:
    table = saved.tables.get("sizing")
    if table is None or table.empty or "share" not in table.columns:
        return None
    names = _names(saved)
    dec = share_decimals(table["share_lower"], table["share_upper"])
    cols = [c for c in _SIZE_COLUMNS if c[0] in table.columns]
    rows = []
    for seg, rec in table.iterrows():
        j = int(seg)  # type: ignore[call-overload]
        row: dict[str, Any] = {"Segment": j, "Name": names[j - 1] if j <= len(names) else str(rec.get("label", j))}
        for key, head, kind in cols:
            v = rec[key]
            if kind == "share":
                row[head] = _round_share(v, dec)
            elif kind == "count":
                row[head], row[f"{head} lower bound"], row[f"{head} upper bound"] = round_to_interval(
                    v, rec.get(f"{key}_lower"), rec.get(f"{key}_upper"))
            elif kind == "bound":
                continue  # rounded with its value
            elif kind == "int":
                row[head] = int(v) if finite(v) else None
            elif kind == "fit":
                row[head] = float(round(float(v), 2)) if finite(v) else None
            else:
                row[head] = _words(v)
        rows.append(row)
    frame = pd.DataFrame(rows)
    pct = _pct_format(dec)
    formats: dict[str, str] = {"Segment": "0"}
    for key, head, kind in cols:
        if kind == "share":
            formats[head] = pct
        elif kind in ("count", "bound"):
            formats[head] = COUNT_FORMAT
        elif kind == "int":
            formats[head] = "0"
        elif kind == "fit":
            formats[head] = "0.00"
    methods = (saved.meta.get("sizing") or {}).get("methods") or {}
    note = "Intervals: " + "; ".join(f"{k}: {v}" for k, v in methods.items()) if methods else ""
    return BriefTable("sizes", "Sizes", frame, formats, note)


def _opportunity(saved: Any) -> BriefTable | None:
    means = saved.tables.get("profile_means")
    if means is None or means.empty:
        return None
    outcomes = saved.tables.get("outcomes")
    overall = saved.tables.get("overall")
    names = _names(saved)
    seg_heads = [f"{int(j)}: {names[int(j) - 1]}" if int(j) <= len(names) else str(j) for j in means.index]
    has_steps = outcomes is not None and "job_step" in outcomes.columns and outcomes["job_step"].astype(str).str.strip().any()
    rows = []
    for o in means.columns:
        row: dict[str, Any] = {"Outcome": str(o)}
        statement = str(outcomes.loc[o, "statement"]) if outcomes is not None and o in outcomes.index else str(o)
        row["Statement"] = statement
        if has_steps:
            assert outcomes is not None
            row["Job step"] = str(outcomes.loc[o, "job_step"]) if o in outcomes.index else ""
        for head, j in zip(seg_heads, means.index, strict=True):
            row[head] = _round1(means.loc[j, o])
        if overall is not None and o in overall.index:
            row["All respondents"] = _round1(overall.loc[o].iloc[0])
        rows.append(row)
    frame = pd.DataFrame(rows)
    score_cols = [c for c in frame.columns if c not in ("Outcome", "Statement", "Job step")]
    return BriefTable("opportunity", "Opportunity", frame, dict.fromkeys(score_cols, "0.0"),
                      "Membership-weighted mean opportunity score (0-20) of each segment on each outcome; "
                      ">= 10 is underserved, >= 15 extremely underserved.",
                      fill=dict.fromkeys(score_cols, "opportunity"))


def _rounded(v: Any, fmt: str) -> float | int | None:
    """A number rounded to the decimals of its Excel format (``"0"``: an int; ``"#,##0.0"``: one)."""
    if not finite(v):
        return None
    if fmt == "0":
        return int(round(float(v)))
    return float(round(float(v), len(fmt.split(".")[1]) if "." in fmt else 0))


def _round1(v: Any) -> float:
    return float(round(float(v), 1)) if finite(v) else float("nan")


def _overlays(saved: Any) -> BriefTable | None:
    summary = saved.tables.get("overlay_summary")
    if summary is None or summary.empty:
        return None
    names = _names(saved)
    rows = []
    for col in summary.index:
        pct = saved.tables.get(f"overlay_pct::{col}")
        if pct is None or pct.empty:
            continue
        for cat in pct.columns:
            row: dict[str, Any] = {"Profile column": str(col), "Value": str(cat)}
            for j in pct.index:
                head = "All respondents" if str(j) == "overall" else (
                    f"{int(j)}: {names[int(j) - 1]}" if str(j).isdigit() and int(j) <= len(names) else str(j))
                v = pct.loc[j, cat]
                row[head] = float(round(float(v) / 100, 2)) if finite(v) else float("nan")
            rows.append(row)
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    weighting = (saved.meta.get("overlay") or {}).get("weighting", "")
    return BriefTable("overlays", "Overlays", frame, {c: "0%" for c in frame.columns[2:]},
                      "Share of each segment with each value of a profile column (each column's values add up to "
                      f"100% within a segment){f'; respondents weighted {weighting}' if weighting else ''}.")


_TEST_COLUMNS = (("kind", "Kind", None), ("test", "Test", None), ("statistic", "Statistic", "0.0"),
                 ("df", "Degrees of freedom", "0"), ("p_value", "p-value", P_VALUE_FORMAT),
                 ("p_method", "How the p-value was computed", None), ("effect", "Effect size", "0.00"),
                 ("strength", "Strength", None))


def _overlay_tests(saved: Any) -> BriefTable | None:
    summary = saved.tables.get("overlay_summary")
    if summary is None or summary.empty:
        return None
    cols = [c for c in _TEST_COLUMNS if c[0] in summary.columns]
    if "df" in summary.columns:  # survey weights: the Rao-Scott df is fractional (1.94 is not 2)
        dfs = pd.to_numeric(summary["df"], errors="coerce").to_numpy(dtype=float)
        if any(finite(v) and abs(v - round(v)) > 1e-9 for v in dfs):
            cols = [(key, head, "0.0" if key == "df" else fmt) for key, head, fmt in cols]
    rows = []
    for col, rec in summary.iterrows():
        row: dict[str, Any] = {"Profile column": str(col)}
        for key, head, fmt in cols:
            v = rec[key]
            if fmt is None:
                row[head] = _words(v)
            elif fmt == P_VALUE_FORMAT:
                row[head] = float(v) if finite(v) else float("nan")
            else:
                row[head] = _rounded(v, fmt)
        rows.append(row)
    thresholds = (saved.meta.get("overlay") or {}).get("thresholds", "")
    return BriefTable("overlay_tests", "Overlay tests", pd.DataFrame(rows),
                      {head: fmt for _, head, fmt in cols if fmt is not None},
                      f"Does a profile column differ across segments? {thresholds}".strip())


#: The selection table's columns: (saved column, header, format); a column that is empty for
#: every fit is left out.
_SELECTION_COLUMNS = (
    ("model", "Model", None), ("k", "Segments", "0"), ("status", "Status", None),
    ("loglik", "Log-likelihood", "#,##0.0"), ("n_params", "Free parameters", "0"),
    ("bic", "BIC (lower is better)", "#,##0.0"), ("icl", "ICL (lower is better)", "#,##0.0"),
    ("aic", "AIC (lower is better)", "#,##0.0"), ("loo", "PSIS-LOO (lower is better)", "#,##0.0"),
    ("relative_entropy", "Relative entropy", "0.00"), ("silhouette", "Silhouette", "0.00"),
    ("smallest_share", "Smallest segment", "0%"), ("stability_mean", "Stability (mean ARI)", "0.00"),
    ("converged", "Converged", None), ("admissible", "Admissible", None), ("excluded", "Excluded because", None),
)


def _selection(saved: Any) -> BriefTable | None:
    table = saved.tables.get("selection")
    if table is None or table.empty:
        return None
    sel = saved.meta.get("selection") or {}
    chosen = (str(sel.get("chosen_model") or saved.result.model), int(sel.get("chosen_k") or saved.result.k))
    cols = [c for c in _SELECTION_COLUMNS if c[0] in table.columns and table[c[0]].replace("", np.nan).notna().any()]
    rows = []
    for _, rec in table.iterrows():
        row: dict[str, Any] = {}
        for key, head, fmt in cols:
            v = rec[key]
            if fmt is None:
                row[head] = _words(v)
            elif fmt == "0%":
                row[head] = float(round(float(v), 2)) if finite(v) else float("nan")
            else:
                row[head] = _rounded(v, fmt)
        row["Chosen"] = "yes" if (str(rec.get("model")), int(rec.get("k", -1))) == chosen else ""
        rows.append(row)
    return BriefTable("selection", "Selection", pd.DataFrame(rows),
                      {head: fmt for _, head, fmt in cols if fmt is not None}, str(sel.get("rule") or ""))


def _about(saved: Any) -> BriefTable:
    result, meta = saved.result, saved.meta
    sizing = meta.get("sizing") or {}
    items: list[tuple[str, Any]] = [
        ("Title", (meta.get("report") or {}).get("title") or f"Segments: {saved.name}"),
        ("Model", f"{result.model}, {result.k} segments"),
        ("Respondents", int(result.n)),
        ("Survey", str((meta.get("data") or {}).get("source") or (meta.get("data") or {}).get("path") or "")),
        ("Share interval", str(result.interval_method)),
        ("Survey weights", weights_note(saved) or "none: every respondent counts once"),
        ("Market size (TAM)", float(sizing["tam"]) if finite(sizing.get("tam")) else "not given"),
        ("How k was chosen", str((meta.get("selection") or {}).get("rule") or "")),
        ("Recommendation rule", str((meta.get("segment_map") or {}).get("rule") or "")),
        ("Model id", saved.model_id),
        ("Saved", str(meta.get("created") or "")),
        ("latentseg version", str(meta.get("latentseg_version") or "")),
    ]
    items += [(f"Note {i + 1}", str(n)) for i, n in enumerate(list(meta.get("notes") or []) + list(sizing.get("notes") or []))]
    frame = pd.DataFrame(items, columns=["Item", "Value"])
    return BriefTable("about", "About", frame, {}, "What the workbook was made from.")


# ------------------------------------------------------------------------------ files
def deliverable_outputs(html: str | os.PathLike[str]) -> dict[str, Path]:
    """The workbook and deck :func:`write_deliverables` writes beside ``html``, labelled for
    :func:`latentseg.io.files.check_outputs`.

    Examples
    --------
    >>> sorted(p.name for p in deliverable_outputs("out/report.html").values())
    ['report.pptx', 'report.xlsx']
    """
    html = Path(html)
    return {"the report's workbook": html.with_suffix(".xlsx"), "the report's slide deck": html.with_suffix(".pptx")}


def write_deliverables(model: Any, html: str | os.PathLike[str], *, title: str | None = None,
                       figures: Mapping[str, Any] | None = None,
                       parts: Sequence[str] = ("workbook", "deck"),
                       tables: Sequence[BriefTable] | None = None) -> tuple[list[Path], list[str]]:
    """Write the workbook (``.xlsx``) and the slide deck (``.pptx``) beside the HTML report.

    A missing library (openpyxl, python-pptx) skips its file with a note saying what to install.

    Parameters
    ----------
    model : SavedModel or path
    html : path
        The report's HTML file; the two files take its name with ``.xlsx`` and ``.pptx``.
    title : str, optional
        Default: the title saved with the model.
    figures : mapping of str to Figure or bytes, optional
        Figures of this model already drawn, or their slide pictures already rendered (the HTML
        report's), passed to
        :func:`latentseg.deliver.deck.write_deck`, which places them instead of drawing them again.
    parts : sequence of {"workbook", "deck"}, default both
        Which of the two files to write (the HTML report writes the workbook while its figures
        are still being rendered, and the deck once they are).
    tables : sequence of BriefTable, optional
        :func:`briefing_tables` of this model, when the caller has them already (the report,
        writing the two files in two calls); default: made here.

    Returns
    -------
    (paths written, notes) : tuple of list of Path and list of str

    Raises
    ------
    ValueError
        ``parts`` names something other than "workbook" and "deck".

    Examples
    --------
    >>> write_deliverables("models/project-survey", "out/report.html")  # doctest: +SKIP
    ([PosixPath('out/report.xlsx'), PosixPath('out/report.pptx')], [])
    """
    from latentseg.deliver.artifacts import SavedModel, load_model

    unknown = sorted(set(parts) - {"workbook", "deck"})
    if unknown:
        raise ValueError(f"parts must be 'workbook' and/or 'deck'; got {unknown}")
    saved = model if isinstance(model, SavedModel) else load_model(model)
    paths = deliverable_outputs(html)
    written: list[Path] = []
    notes: list[str] = []
    if tables is None:
        tables = briefing_tables(saved)
    if "workbook" in parts:
        try:
            from latentseg.deliver.workbook import write_workbook

            written.append(write_workbook(saved, paths["the report's workbook"], title=title, tables=tables))
        except ModuleNotFoundError as exc:
            if exc.name not in _OPTIONAL:
                raise
            notes.append(f"report.xlsx not written: {exc.name} is not installed ({INSTALL_HINT})")
    if "deck" in parts:
        try:
            from latentseg.deliver.deck import write_deck

            written.append(write_deck(saved, paths["the report's slide deck"], title=title, tables=tables,
                                      figures=figures))
        except ModuleNotFoundError as exc:
            if exc.name not in _OPTIONAL:
                raise
            notes.append(f"report.pptx not written: {'python-pptx' if exc.name == 'pptx' else exc.name} is not installed ({INSTALL_HINT})")
    return written, notes


def deliverable_title(saved: Any, title: str | None) -> str:
    """The title of a saved model's deliverables: ``title`` when given, else the report title its
    config set, else ``"Segments: <model name>"``."""
    return str(title or (saved.meta.get("report") or {}).get("title") or f"Segments: {saved.name}")
