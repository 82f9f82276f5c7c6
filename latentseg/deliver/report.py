"""The segment-map report: one self-contained HTML file, with its figures and tables beside it.

:func:`write_report` reads everything from a saved model (``latentseg run`` saves what the
report needs: the segment map, profiles, sizing, selection table, comparison, overlays,
cleaning report) and writes

``report.html``
    One file that works offline: CSS inline, figures embedded as base64 PNG, no external
    resource of any kind (a Content-Security-Policy forbids fetching any). Every piece of user
    text (outcome statements, segment names, column names, category values) goes through
    jinja2's autoescaping.
``figures/*.png`` and ``figures/*.svg``
    The same figures as files.
``tables/*.csv`` and ``tables/*.json``
    The tables behind the figures. CSV cells starting with ``=``, ``+``, ``-``, ``@`` (or a tab
    or carriage return) get a leading apostrophe, so a spreadsheet shows them as text instead of
    running them as formulas.

Sections: summary; the segment map (name, size with interval, top outcomes, fingerprint,
recommendation); the 2x2 of segments on two dimensions (playbook step 9); the segment x outcome
opportunity heatmap; share intervals and sizing; choosing k (selection plots and table); k-means
versus latent class; overlays and the finder; the opportunity landscape; and an appendix with
diagnostics, warnings, cleaning and provenance. A section whose inputs were not saved with the
model says so instead of disappearing silently.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from latentseg.io.files import atomic_write_text, safe_csv_cell
from latentseg.models.families import BAYES_GMM

__all__ = ["write_report", "Figure"]

#: Script placed inline in the page: records JavaScript errors into the DOM (``#js-errors``), and
#: the laid-out page's width beside the window's, so that a headless browser check can read them.
#: Its hash goes into the page's CSP.
_ERROR_PROBE = (
    "window.addEventListener('error',function(e){var d=document.getElementById('js-errors');"
    "if(d){d.setAttribute('data-count',String(+(d.getAttribute('data-count')||0)+1));"
    "d.appendChild(document.createTextNode((e.message||'error')+'\\n'));}});"
    "document.addEventListener('DOMContentLoaded',function(){document.body.setAttribute('data-ready','1');});"
    # the page's width against the window's, once laid out: a browser check reads them (no horizontal overflow)
    "window.addEventListener('load',function(){var b=document.body;"
    "b.setAttribute('data-scroll-width',String(document.documentElement.scrollWidth));"
    "b.setAttribute('data-inner-width',String(window.innerWidth));});"
)


def _safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell, column name and index label passed through :func:`safe_csv_cell`."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s.astype(object).map(safe_csv_cell)
    out.columns = [safe_csv_cell(str(c)) for c in out.columns]
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index.dtype):
        out.index = out.index.map(lambda v: safe_csv_cell(str(v)))
    return out


@dataclass
class Figure:
    """One figure of the report: files beside it and the PNG embedded."""

    key: str
    title: str
    caption: str
    png: Path
    svg: Path | None = None

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png.read_bytes()).decode("ascii")


@dataclass
class _Context:
    """Where the report goes, and what has been written or left out so far."""

    out_dir: Path
    figures: list[Figure] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    #: sections left out, each with why (shown in the report instead of disappearing silently)
    missing: list[str] = field(default_factory=list)
    #: the figures drawn and still to be rendered to their files (all at once, by rendering.render_figures)
    jobs: dict[str, Any] = field(default_factory=dict)

    @property
    def fig_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def table_dir(self) -> Path:
        return self.out_dir / "tables"


#: The modules :func:`write_report` imports as it goes (matplotlib first, the costliest), for a
#: caller with time to spare before it to import ahead (:func:`latentseg.run`, while its k sweep's
#: second process finishes).
IMPORTED_AS_IT_GOES = ("latentseg.deliver._figure", "latentseg.deliver.plots", "jinja2", "latentseg.deliver.briefing",
                       "latentseg.deliver.workbook", "openpyxl", "latentseg.deliver.deck", "pptx")


# ------------------------------------------------------------------------------ matplotlib
# The figures are drawn by latentseg.deliver.plots (the public plot functions); the report saves
# each as PNG (embedded) and SVG beside it, and keeps a caption. Each figure is queued as a way to
# draw it, and drawn and rendered with all the others at once (_render), by whichever process
# renders it.
def _save_fig(ctx: _Context, draw: Callable[[], Any], key: str, title: str, caption: str, cost: float) -> Figure:
    return _add_figure(ctx, draw, Figure(key, title, caption, ctx.fig_dir / f"{key}.png", ctx.fig_dir / f"{key}.svg"), cost)


def _add_figure(ctx: _Context, draw: Callable[[], Any], entry: Figure, cost: float) -> Figure:
    """Keep ``entry`` (in the report's order) and queue its files: the PNG (which settles the
    layout), then the SVG. ``draw()`` draws the figure; it is called by whichever process renders
    it (:func:`latentseg.deliver.rendering.render_figures`), so drawing is shared out too.
    ``cost``: its rough rendering time relative to the others (:data:`_COST`)."""
    from latentseg.deliver.rendering import FigureJob

    ctx.figures.append(entry)
    files = tuple(p for p in (entry.png, entry.svg) if p is not None)
    ctx.jobs[entry.key] = FigureJob(None, files, draw=draw, weight=cost * (1.0 if entry.svg is not None else 0.6))
    return entry


#: Rough seconds to draw a figure of each kind and render its PNG and SVG (measured on a 2-core
#: Xeon for a 400 x 24 survey at k = 4); only how work is shared between processes depends on it.
_COST = {"segments_2x2": 0.25, "heatmap_cell": 0.006, "share_intervals": 0.15, "selection": 0.3,
         "comparison": 0.15, "overlay": 0.2, "opportunity_landscape": 0.3}


def _render(ctx: _Context, meanwhile: Callable[[], None] | None = None) -> dict[str, bytes]:
    """Render every queued figure to its files (shared with a second process where that is safe;
    the same bytes either way) and the slide deck's pictures with them; those pictures by key.
    ``meanwhile``: work that needs no figure, done while the other process renders."""
    from latentseg.deliver.deck import FIGURE_DPI, FIGURES
    from latentseg.deliver.rendering import render_figures

    ctx.fig_dir.mkdir(parents=True, exist_ok=True)
    for key in FIGURES:
        if key in ctx.jobs:
            ctx.jobs[key].png_dpi = FIGURE_DPI
    render_figures(list(ctx.jobs.values()), meanwhile=meanwhile)
    return {key: job.png for key, job in ctx.jobs.items() if job.png is not None}


def _fig_quadrant(ctx: _Context, result: Any, dims: pd.DataFrame, pair: Sequence[str], why: str) -> Figure | None:
    from latentseg.deliver.plots import plot_segment_map

    if len(pair) != 2 or any(p not in dims.columns for p in pair):
        return None
    return _save_fig(
        ctx, lambda: plot_segment_map(result, dims, pair), "segments_2x2", "Segments on two dimensions",
        f"Each bubble is a segment at its mean opportunity on {pair[0]!s} and {pair[1]!s}; dashed lines are "
        f"the sample averages, splitting the plane into four quadrants. Dimensions: {why}.", _COST["segments_2x2"],
    )


def _fig_heatmap(ctx: _Context, means: pd.DataFrame, outcomes: pd.DataFrame | None, names: Sequence[str]) -> Figure | None:
    from latentseg.deliver.plots import plot_opportunity_heatmap

    if means is None or means.empty:
        return None
    return _save_fig(
        ctx, lambda: plot_opportunity_heatmap(means, outcomes=outcomes, names=names), "opportunity_heatmap",
        "Opportunity by segment and outcome",
        "Membership-weighted mean opportunity score of each segment on each outcome; bold cells are "
        "underserved in the segment (segment mean ≥ 10).", _COST["heatmap_cell"] * means.size + 0.1,
    )


def _fig_shares(ctx: _Context, result: Any) -> Figure:
    from latentseg.deliver.plots import plot_shares

    return _save_fig(ctx, lambda: plot_shares(result), "share_intervals", "Segment sizes",
                     f"Bars: estimated share; whiskers: {result.interval_method} interval.", _COST["share_intervals"])


def _fig_landscape(ctx: _Context, landscape: pd.DataFrame) -> Figure | None:
    from latentseg.deliver.plots import plot_landscape

    need = {"importance", "satisfaction", "opportunity"}
    if landscape is None or not need <= set(landscape.columns):
        return None
    return _save_fig(ctx, lambda: plot_landscape(landscape), "opportunity_landscape", "Opportunity landscape",
                     "Aggregate (Ulwick, top-2-box, all respondents) importance and satisfaction per outcome; below the dashed "
                     "line an outcome is underserved in the landscape (aggregate opportunity ≥ 10).",
                     _COST["opportunity_landscape"])


def _fig_overlay(ctx: _Context, column: str, pct: pd.DataFrame, names: Sequence[str], index: int) -> Figure | None:
    from latentseg.deliver.plots import plot_overlay

    if pct is None or pct.empty:
        return None
    return _save_fig(ctx, lambda: plot_overlay(pct, column=column, names=names), f"overlay_{index:02d}", f"Overlay: {column}",
                     f"Distribution of {column} within each segment (row percentages).", _COST["overlay"])


# ------------------------------------------------------------------------------- tables
def _write_table(ctx: _Context, name: str, frame: pd.DataFrame, *, index: bool = True) -> None:
    ctx.table_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.table_dir / f"{name}.csv"
    _safe_frame(frame).to_csv(path, index=index)
    ctx.tables.append(path)


def _write_json(ctx: _Context, name: str, obj: Any) -> None:
    from latentseg.io.jsonsafe import json_safe

    ctx.table_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.table_dir / f"{name}.json"
    path.write_text(json.dumps(json_safe(obj), indent=1, default=str), encoding="utf-8")
    ctx.tables.append(path)


def _pct(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if not math.isfinite(f) else f"{f:.0%}"


def _num(v: Any, digits: int = 0) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v) if v is not None else ""
    if not math.isfinite(f):
        return ""
    return f"{f:,.{digits}f}"


#: Column headers in words: the one mapping every table of the report (and its appendix) uses.
HEADERS: dict[str, str] = {
    "segment": "Segment", "label": "Segment", "name": "Name", "model": "Family", "k": "k", "status": "Status",
    "share": "Share", "share_lower": "Share, lower bound", "share_upper": "Share, upper bound",
    "count": "Customers", "revenue": "Revenue", "arpu": "Revenue per customer",
    "n_underserved": "Underserved outcomes (segment mean ≥ 10)", "flags": "Flags", "product_fit": "Product fit",
    "bic": "BIC", "icl": "ICL", "aic": "AIC", "loo": "PSIS-LOO", "loo_se": "PSIS-LOO SE", "waic": "WAIC",
    "silhouette": "Silhouette", "inertia": "Inertia (within-segment sum of squares)",
    "smallest_share": "Smallest segment", "stability_mean": "Stability (mean ARI over subsamples)",
    "converged": "Converged", "admissible": "Admissible", "excluded": "Why not admissible",
    "column": "Profile column", "kind": "Type", "test": "Test", "statistic": "Statistic", "p_value": "p-value",
    "effect": "Effect size", "strength": "Strength",
    "outcome": "Outcome", "statement": "Statement", "job_step": "Job step",
    "importance": "Importance (top-2-box, 0-10)", "satisfaction": "Satisfaction (top-2-box, 0-10)",
    "opportunity": "Opportunity (landscape)", "class": "Landscape class (all respondents)",
    "underserved_in": "Underserved in segments (segment mean ≥ 10)",
    # diagnostics and criteria (appendix)
    "loglik": "Log-likelihood", "n_params": "Free parameters", "sabic": "Sample-size adjusted BIC",
    "caic": "Consistent AIC", "relative_entropy": "Relative entropy (classification certainty)",
    "entropy": "Entropy", "n_iter": "Iterations", "iterations": "Iterations",
    "starts_at_best": "Starts reaching the best log-likelihood", "n_init": "Random starts",
    "start_logliks": "Log-likelihood of each start", "rhat_max": "Largest R-hat", "ess_bulk_min": "Smallest bulk ESS",
    "ess_tail_min": "Smallest tail ESS", "divergences": "Divergent transitions", "seconds": "Seconds",
    "covariance": "Covariance structure", "sampler": "Sampler", "weak_separation": "Weakly separated segments",
    "em_relative_entropy": "Relative entropy of the EM solution",
    "share_intervals_approximate": "Share intervals approximate",
    "rhat_max_by_parameter": "Largest R-hat by parameter", "rhat_weights": "R-hat of the weights", "ebfmi": "E-BFMI",
    "ebfmi_min": "Smallest E-BFMI", "n_chains": "Chains", "n_draws": "Draws per chain", "waic_se": "WAIC SE",
    "p_waic": "Effective parameters (WAIC)", "p_loo": "Effective parameters (PSIS-LOO)",
    "lppd": "Log pointwise predictive density", "pareto_k_max": "Largest Pareto k", "pareto_k_bad": "Pareto k above threshold",
    "pareto_k_threshold": "Pareto k threshold",
}


def header(name: Any) -> str:
    """A column name in words (:data:`HEADERS`, else underscores as spaces, first letter capital)."""
    key = str(name)
    if key in HEADERS:
        return HEADERS[key]
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _p_text(v: Any) -> str:
    """A p-value as people read it: ``< 0.001`` below that, else 3 decimals."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(f):
        return ""
    return "< 0.001" if f < 0.001 else f"{f:.3f}"


def _fmt_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return ""
        if f.is_integer() and abs(f) < 1e15:
            return f"{f:,.0f}" if abs(f) >= 10_000 else f"{f:.0f}"
        if abs(f) >= 1000:
            return f"{f:,.0f}"
        if abs(f) < 0.001:  # nothing a reader needs in e-notation
            return "0" if f == 0 else ("< 0.001" if f > 0 else "> −0.001")
        return f"{f:.3g}" if abs(f) < 1 else f"{f:.4g}"
    if isinstance(v, (list, tuple)) and not v:
        return "none"
    if isinstance(v, (list, tuple)):
        shown = [_fmt_cell(x) for x in list(v)[:12]]
        return ", ".join(shown) + (f" … ({len(v)} in all)" if len(v) > 12 else "")
    if isinstance(v, dict):
        return "; ".join(f"{header(key)}: {_fmt_cell(val)}" for key, val in list(v.items())[:12])
    return str(v)


#: Cell formats by column, where the general one (:func:`_fmt_cell`) would mislead.
_COLUMN_FORMATS: dict[str, Any] = {
    "p_value": _p_text,
    "share": lambda v: _pct(v), "smallest_share": lambda v: _pct(v),
    "importance": lambda v: _num(v, 1), "satisfaction": lambda v: _num(v, 1), "opportunity": lambda v: _num(v, 1),
    "statistic": lambda v: _num(v, 1), "effect": lambda v: _num(v, 2), "bic": _num, "icl": _num, "loo": _num,
    "silhouette": lambda v: _num(v, 2), "stability_mean": lambda v: _num(v, 2),
}


def _weak_separation_coverage(result: Any, approximate: bool) -> str | None:
    """The calibration study's coverage to quote beside a weak-separation callout: VVI's when its
    intervals are approximate, EEI's when they are trusted (an explicit EEI fit); None otherwise
    (other models, or EEI chosen by BIC, which the study found unreliable at such overlap)."""
    from latentseg.models.bayes import engine as bayes

    if result.model != BAYES_GMM:
        return None
    structure = str(result.settings.get("covariance"))
    if (structure == "diag" and approximate) or (structure == "EEI" and not approximate):
        return bayes.WEAK_SEPARATION_COVERAGE[structure]
    return None


def _html_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, index: bool = False) -> dict[str, Any]:
    """Header and rows as plain strings (escaped by the template)."""
    if frame is None or frame.empty:
        return {"header": [], "rows": []}
    df = frame.reset_index() if index else frame
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    fmts = [_COLUMN_FORMATS.get(str(c), _fmt_cell) for c in cols]
    return {
        "header": [header(c) for c in cols],
        "rows": [[f(v) for f, v in zip(fmts, row, strict=True)] for row in df[cols].itertuples(index=False, name=None)],
    }


# ------------------------------------------------------------------------------- public
def write_report(model: Any, out: str | os.PathLike[str] = "latentseg_output/report.html", *, title: str | None = None) -> Path:
    """Write the self-contained HTML report of a saved model, with figures and tables beside it.

    Parameters
    ----------
    model : SavedModel or path
        From :func:`latentseg.deliver.artifacts.load_model` or :func:`latentseg.pipeline.run_pipeline`.
    out : path, default "latentseg_output/report.html"
        The HTML file; ``figures/`` and ``tables/`` are written in its folder.
    title : str, optional
        Page title (default: the title saved with the model).

    Returns
    -------
    Path
        The HTML file.

    Examples
    --------
    >>> write_report("models/project-survey", "out/report.html")  # doctest: +SKIP
    PosixPath('out/report.html')
    """
    from latentseg.deliver.artifacts import SavedModel, load_model

    saved = model if isinstance(model, SavedModel) else load_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ctx = _Context(out.parent)
    result, meta, tables = saved.result, saved.meta, saved.tables
    names = list(result.segment_labels)
    smap_meta = meta.get("segment_map") or {}
    smap_segments = {int(sg["id"]): sg for sg in smap_meta.get("segments", []) if "id" in sg}
    seg_rows = _segment_rows(result, names, smap_segments)
    if not smap_segments:
        ctx.missing.append("segment map (not saved with this model; `latentseg run` saves it)")
    figures = _report_figures(ctx, result, meta, tables, names)
    title = title or (meta.get("report") or {}).get("title") or f"Segments: {saved.name}"
    # --- deliverables for leadership: report.xlsx and report.pptx beside the HTML, from the same saved tables
    from latentseg.deliver.briefing import briefing_tables, write_deliverables

    brief: list[Any] = []

    def meanwhile() -> None:  # what needs no figure, while the other process renders its share
        _write_side_tables(ctx, saved, seg_rows, smap_segments, smap_meta)
        brief.extend(briefing_tables(saved))  # the workbook's and the deck's tables, made once
        ctx.missing.extend(write_deliverables(saved, out, title=title, parts=("workbook",), tables=brief)[1])  # a library not installed: say so

    deck_pictures = _render(ctx, meanwhile)
    # the deck places the report's figures, rendered with them at its resolution: drawn once
    ctx.missing.extend(write_deliverables(saved, out, title=title, figures=deck_pictures, parts=("deck",), tables=brief or None)[1])
    context = {
        "title": title,
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "model_id": saved.model_id,
        "name": saved.name,
        "model": result.model,
        "k": result.k,
        "n": result.n,
        "interval_method": result.interval_method,
        "weights_note": _weights_note(meta),
        "source": (meta.get("data") or {}).get("source", ""),
        "selection": meta.get("selection") or {},
        "segments": seg_rows,
        "segment_rule": smap_meta.get("rule", ""),
        "current_solution_column": smap_meta.get("current_solution_column"),
        "comparison": meta.get("comparison"),
        "finder": meta.get("finder_summary"),
        **_covariates_context(result),
        **figures,
        **_table_context(meta, tables, names),
        **_appendix_context(result, meta),
        "missing": ctx.missing,
        "figures": ctx.figures,
        "files": sorted(str(p.relative_to(ctx.out_dir)) for p in [*ctx.tables, *(f.png for f in ctx.figures), *(f.svg for f in ctx.figures if f.svg)]),
        "error_probe": _ERROR_PROBE,
        "csp_hash": base64.b64encode(hashlib.sha256(_ERROR_PROBE.encode()).digest()).decode(),
    }
    html = _template().render(**context)
    return atomic_write_text(out, html)


def _weights_note(meta: Mapping[str, Any]) -> str:
    """"Shares are weighted by 'weight' (Kish effective n 309 of 400 respondents)." for a weighted
    model (``meta["weights"]``, saved by ``run`` and ``fit --save``), else ""."""
    from latentseg.prepare.core import weights_sentence

    return weights_sentence(meta.get("weights"), "Shares, sizes, profiles and the landscape", quote="'")


def _segment_rows(result: Any, names: Sequence[str], smap_segments: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per segment for the segment-map section (what the saved segment map says of it)."""
    seg_rows = []
    for j in range(result.k):
        sg = smap_segments.get(j + 1, {})
        top = [str(o.get("statement", o.get("outcome", ""))) for o in sg.get("top_underserved") or []]
        current = sg.get("current_solution")
        seg_rows.append(
            {
                "id": j + 1,
                "name": names[j],
                "description": str(sg.get("name") or ""),
                "share": _pct(result.shares[j]),
                "interval": f"{_pct(result.share_lower[j])}–{_pct(result.share_upper[j])}",
                **_count_parts(sg.get("count"), sg.get("count_lower"), sg.get("count_upper")),
                "top_outcomes": top,
                "fingerprint": "; ".join(sg["fingerprint"]) if sg.get("fingerprint") else (
                    "not analysed" if sg.get("fingerprint") is None else "demographically diffuse"
                ),
                "fingerprint_items": [str(f) for f in sg.get("fingerprint") or []],
                "current_solution": (
                    f"{current} ({float(sg.get('current_solution_pct') or 0):.0f}%)" if current is not None else ""
                ),
                "rank": sg.get("rank"),
                "recommendation": str(sg.get("recommendation") or ""),
                "reason": str(sg.get("reason") or ""),
                "flags": list(sg.get("flags") or []),
            }
        )
    return seg_rows


def _count_parts(count: Any, lower: Any, upper: Any) -> dict[str, str]:
    """A market count and its interval, each rounded to what the interval supports."""
    from latentseg._display import estimate

    if count is None:
        return {"count": "", "count_interval": ""}
    text = estimate(count, lower, upper)
    value, _, interval = text.partition(" (")
    return {"count": value, "count_interval": interval.rstrip(")")}


def _sizing_frame(sizing: pd.DataFrame) -> pd.DataFrame:
    """The sizing table for people: each estimate with its interval in one cell, rounded to it."""
    from latentseg._display import estimate

    def col(name: str) -> Any:
        return sizing[name] if name in sizing.columns else pd.Series(np.nan, index=sizing.index)

    rows = []
    for j, r in sizing.iterrows():
        row: dict[str, Any] = {"Segment": f"{j}. {r.get('label', '')}".rstrip(". ")}
        row["Share"] = f"{_pct(r.get('share'))} ({_pct(r.get('share_lower'))}–{_pct(r.get('share_upper'))})"
        if col("count").notna().any():
            row["Customers"] = estimate(r.get("count"), r.get("count_lower"), r.get("count_upper"))
        if col("arpu").notna().any():
            row["Revenue per customer"] = _num(r.get("arpu"), 2)
        if col("revenue").notna().any():
            row["Revenue"] = estimate(r.get("revenue"), r.get("revenue_lower"), r.get("revenue_upper"))
        if "n_underserved" in sizing.columns:
            row[HEADERS["n_underserved"]] = _fmt_cell(r.get("n_underserved"))
        if "flags" in sizing.columns:
            row["Flags"] = "" if pd.isna(r.get("flags")) else str(r.get("flags"))
        rows.append(row)
    return pd.DataFrame(rows)


def _landscape_frame(landscape: pd.DataFrame, means: pd.DataFrame | None, names: Sequence[str]) -> pd.DataFrame:
    """The ten outcomes with the highest landscape opportunity, with the segments in which each is
    underserved by the segment definition beside the landscape's own class."""
    from latentseg.decide.profiling import UNDERSERVED

    top = landscape.sort_values("opportunity", ascending=False).head(10).copy()
    if means is not None and "outcome" in top.columns:
        def where(o: Any) -> str:
            if o not in means.columns:
                return ""
            col = means[o]
            hits = [f"{j} ({float(v):.1f})" for j, v in col.items() if np.isfinite(float(v)) and float(v) >= UNDERSERVED]
            return ", ".join(hits) if hits else "none"
        top["underserved_in"] = top["outcome"].map(where)
    return top


def _report_figures(ctx: _Context, result: Any, meta: Mapping[str, Any], tables: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Every figure, in the report's order, as the template's figure entries."""
    k = result.k
    dims = tables.get("dimensions")
    rep = meta.get("report") or {}
    pair = list(rep.get("dimensions") or [])
    quadrant = _fig_quadrant(ctx, result, dims, pair, rep.get("dimensions_why", "")) if dims is not None else None
    if quadrant is None:
        ctx.missing.append("2x2 of segments (no dimensions saved with this model)")
    means = tables.get("profile_means")
    if means is None:
        means = pd.DataFrame(result.centers, index=pd.RangeIndex(1, k + 1), columns=list(result.feature_names))
    heat = _fig_heatmap(ctx, means, tables.get("outcomes"), names)
    shares_fig = _fig_shares(ctx, result)
    selection_figs = _selection_figures(ctx, meta.get("selection") or {}, tables.get("selection"))
    comparison_fig = _comparison_figure(ctx, meta.get("comparison"), tables.get("comparison_crosstab"))
    overlay_figs = _overlay_figures(ctx, tables, names)
    landscape = tables.get("landscape")
    landscape_fig = _fig_landscape(ctx, landscape) if landscape is not None else None
    return {
        "quadrant": quadrant,
        "heatmap": heat,
        "shares": shares_fig,
        "selection_figs": selection_figs,
        "comparison_fig": comparison_fig,
        "overlay_figs": overlay_figs,
        "landscape_fig": landscape_fig,
    }


def _selection_figures(ctx: _Context, sel_meta: Mapping[str, Any], sel_table: pd.DataFrame | None) -> list[Figure]:
    """The k-selection plots (BIC / ICL, LOO, elbow, silhouette) from the saved selection table."""
    selection_figs: list[Figure] = []
    if sel_table is not None:
        from latentseg.deliver.plots import plot_selection, selection_criteria

        sel_obj = SimpleNamespace(table=sel_table, per_family=sel_meta.get("per_family") or {}, settings=sel_meta.get("settings") or {},
                                  recommended_k=sel_meta.get("recommended_k"))
        for kind in selection_criteria(sel_obj):  # the files plots.write_selection_figures writes, rendered with the others
            draw = functools.partial(plot_selection, sel_obj, criterion=kind)
            titles = {"bic": "BIC and ICL by k", "loo": "PSIS-LOO by k", "elbow": "k-means elbow", "silhouette": "k-means silhouette"}
            p = ctx.fig_dir / f"selection_{kind}.png"
            selection_figs.append(_add_figure(ctx, draw, Figure(p.stem, titles.get(kind, p.stem), "One panel per family, each on its own scale; the grey band marks the recommended k, a star each family's own pick; open markers are fits that are not admissible.", p), _COST["selection"]))
    else:
        ctx.missing.append("k-selection plots (no selection table saved)")
    return selection_figs


def _comparison_figure(ctx: _Context, cmp_meta: Mapping[str, Any] | None, ct: pd.DataFrame | None) -> Figure | None:
    """The k-means versus latent class crosstab figure, when the comparison was saved."""
    if not (cmp_meta and ct is not None):
        ctx.missing.append("k-means versus latent class comparison (not saved with this model)")
        return None
    from latentseg.deliver.plots import plot_comparison

    cobj = SimpleNamespace(crosstab=ct, name_a=cmp_meta.get("a", "a"), name_b=cmp_meta.get("b", "b"),
                           agreement=float(cmp_meta.get("agreement", float("nan"))), ari=float(cmp_meta.get("ari", float("nan"))))
    p = ctx.fig_dir / "comparison.png"
    return _add_figure(ctx, lambda: plot_comparison(cobj), Figure("comparison", f"{cobj.name_a} versus {cobj.name_b}", "Cross-tabulation of modal segments (row percentages shaded, counts written).", p), _COST["comparison"])


def _overlay_figures(ctx: _Context, tables: Mapping[str, Any], names: Sequence[str]) -> list[Figure]:
    """Figures for up to six overlaid profile columns that tell segments apart, strongest first."""
    overlay_figs: list[Figure] = []
    ov_summary = tables.get("overlay_summary")
    if ov_summary is not None and not ov_summary.empty:
        ranked = ov_summary.sort_values("effect", ascending=False)
        if "strength" in ranked.columns:  # figures for the columns that tell segments apart
            ranked = ranked[ranked["strength"].isin(["strong", "weak"])]
        order = ranked.index.tolist()[:6]
        for i, col in enumerate(order):
            pct = tables.get(f"overlay_pct::{col}")
            f = _fig_overlay(ctx, str(col), pct, names, i + 1) if pct is not None else None
            if f is not None:
                overlay_figs.append(f)
    else:
        ctx.missing.append("overlays (no profile columns were overlaid)")
    return overlay_figs


def _write_side_tables(
    ctx: _Context,
    saved: Any,
    seg_rows: Sequence[Mapping[str, Any]],
    smap_segments: Mapping[int, Mapping[str, Any]],
    smap_meta: Mapping[str, Any],
) -> None:
    """The CSV and JSON tables written beside the report (segment map, saved tables, summary)."""
    result, tables = saved.result, saved.tables
    seg_frame = pd.DataFrame(
        [{"segment": r["id"], "name": r["name"], "share": float(result.shares[r["id"] - 1]),
          "share_lower": float(result.share_lower[r["id"] - 1]), "share_upper": float(result.share_upper[r["id"] - 1]),
          "interval": result.interval_method, "count": smap_segments.get(r["id"], {}).get("count"),
          "count_lower": smap_segments.get(r["id"], {}).get("count_lower"),
          "count_upper": smap_segments.get(r["id"], {}).get("count_upper"),
          "top_outcomes": "; ".join(r["top_outcomes"]), "fingerprint": r["fingerprint"],
          "current_solution": r["current_solution"], "recommendation": r["recommendation"], "reason": r["reason"],
          "flags": "; ".join(r["flags"])} for r in seg_rows]
    )
    _write_table(ctx, "segment_map", seg_frame, index=False)
    _write_json(ctx, "segment_map", {"model_id": saved.model_id, **(smap_meta or {"segments": seg_frame.to_dict(orient="records")})})
    for key in ("selection", "sizing", "profile_means", "segment_opportunity", "overlay_summary", "landscape", "cleaning_excluded",
                "comparison_crosstab", "distal", "dimensions"):
        if key in tables:
            _write_table(ctx, key, tables[key])
    _write_json(ctx, "model_summary", saved.summary())


def _covariates_context(result: Any) -> dict[str, Any]:
    """The covariates-on-membership table (``[model] covariates``), when the result carries one."""
    tab = result.extras.get("covariates")
    if not isinstance(tab, pd.DataFrame) or "covariates_method" not in result.settings:
        return {"covariates_table": None, "covariates_note": ""}
    info = dict(result.settings.get("covariates_info", {}))
    shown = tab[tab["term"] != "(intercept)"]
    note = (f"Log-odds of each segment against segment {info.get('reference_segment', 1)} "
            f"({result.settings['covariates_method']}; standard errors: {info.get('se_method', '')}"
            f"{'; penalised for separation' if info.get('penalised') else ''}; 95% intervals; "
            f"{len(info.get('excluded', []))} respondent(s) with a missing covariate left out).")
    return {"covariates_table": _html_table(shown, ["segment", "term", "estimate", "lower", "upper", "odds_ratio"]),
            "covariates_note": note}


def _table_context(meta: Mapping[str, Any], tables: Mapping[str, Any], names: Sequence[str] = ()) -> dict[str, Any]:
    """The HTML tables of the sizing, selection, overlay and landscape sections."""
    sizing_table = tables.get("sizing")
    sel_table = tables.get("selection")
    sel_cols = ["model", "k", "status", "bic", "icl", "loo", "silhouette", "smallest_share", "stability_mean", "converged", "admissible", "excluded"]
    ov_summary = tables.get("overlay_summary")
    ov_meta = meta.get("overlay") or {}
    fingerprints = (ov_meta or {}).get("fingerprints") or {}
    landscape = tables.get("landscape")
    return {
        "sizing": _html_table(_sizing_frame(sizing_table)) if sizing_table is not None else None,
        "sizing_notes": (meta.get("sizing") or {}).get("notes", []),
        "selection_table": _html_table(sel_table, sel_cols) if sel_table is not None else None,
        "overlay_table": _html_table(ov_summary, ["column", "kind", "test", "statistic", "p_value", "effect", "strength"], index=True) if ov_summary is not None else None,
        "overlay_thresholds": (ov_meta or {}).get("thresholds", ""),
        "fingerprints": [(int(s), [e.get("text", "") for e in items]) for s, items in sorted(fingerprints.items(), key=lambda kv: int(kv[0]))],
        "landscape_table": _html_table(_landscape_frame(landscape, tables.get("profile_means"), names), ["outcome", "statement", "job_step", "importance", "satisfaction", "opportunity", "class", "underserved_in"]) if landscape is not None and "opportunity" in landscape.columns else None,
    }


def _appendix_context(result: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Diagnostics, criteria, the weak-separation callout, warnings, notes, cleaning and provenance."""
    from latentseg.models.bayes import engine as bayes  # the weak-separation cut and its calibration numbers

    diag = dict(result.diagnostics)
    approximate = bool(diag.get("share_intervals_approximate", diag.get("weak_separation", False)))
    cleaning = meta.get("cleaning") or {}
    return {
        "diagnostics": [(header(key), _fmt_cell(val)) for key, val in diag.items() if key != "warnings"],
        "criteria": [(header(key), _fmt_cell(val)) for key, val in dict(result.criteria).items()],
        "converged": result.converged,
        "weak_separation": bool(diag.get("weak_separation", False)),
        "em_relative_entropy": diag.get("em_relative_entropy"),
        "weak_separation_cut": bayes.WEAK_SEPARATION_ENTROPY,
        # older saved fits lack the key: they were flagged as approximate whenever weakly separated
        "intervals_approximate": approximate,
        "weak_separation_coverage": _weak_separation_coverage(result, approximate),
        "fit_warnings": list(diag.get("warnings", []) or []),
        "run_warnings": list(meta.get("warnings", []) or []),
        "notes": list(meta.get("notes", []) or []) + list((meta.get("selection") or {}).get("notes", []) or []),
        "survey_notes": list(meta.get("survey_notes", []) or []),
        "cleaning": cleaning,
        "cleaning_excluded": (cleaning.get("excluded") or [])[:200],
        "versions": meta.get("versions", {}),
        "created": meta.get("created", ""),
    }


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("latentseg.deliver", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["p"] = _p_text
    return env.get_template("report.html.j2")
