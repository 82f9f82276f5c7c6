"""Figures: choosing k, comparing two segmentations, the segments, and the simulation study.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and follows one
convention:

* a single-panel plot takes ``ax=``: it draws into that Axes and returns the figure the Axes
  belongs to; without it, a new figure is made;
* a multi-panel plot (:func:`plot_selection`, :func:`plot_study`) takes ``fig=``: an empty Figure
  or SubFigure to draw its panels into;
* ``path=`` also saves the figure (the whole figure the plot was drawn into), atomically, as PNG
  or SVG by the file's extension (see :func:`save_figure`); without it nothing is written.

Matplotlib is imported inside each function and used through its object-oriented API with the
Agg canvas (no pyplot, no global backend switch), so importing this module is free, nothing opens a
window on a headless machine, and the figures render the same anywhere. The figures this module
makes display themselves in Jupyter as PNG, without ``%matplotlib inline``.

:func:`write_selection_figures` and :func:`write_study_figures` write the files that
``latentseg select --plots``, the HTML report and the simulation study write (``selection_bic.png``,
``selection_loo.png``, ``selection_elbow.png``, ``selection_silhouette.png``;
``study_correct_k.png``, ``study_ari.png``).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.io.files import atomic_write
from latentseg.models.families import FAMILIES

__all__ = [
    "plot_selection",
    "plot_comparison",
    "plot_study",
    "plot_segment_map",
    "plot_opportunity_heatmap",
    "plot_shares",
    "plot_landscape",
    "plot_overlay",
    "save_figure",
    "write_selection_figures",
    "selection_criteria",
    "write_study_figures",
    "SELECTION_CRITERIA",
    "STUDY_METRICS",
    "FAMILY_COLORS",
    "METHOD_COLORS",
]

#: Each family's colour in figures (from the family registry).
FAMILY_COLORS = {name: fam.color for name, fam in FAMILIES.items()}

#: One color per study method (k-means methods in greens, as in the selection figures).
METHOD_COLORS = {
    "kmeans-silhouette": "#1b9e77",
    "kmeans-elbow": "#66c2a5",
    "gmm-bic": "#d95f02",
    "lca-bic": "#7570b3",
    "bayes-loo": "#e7298a",
}

#: The criteria :func:`plot_selection` draws, in panel order, each with the table column it reads.
SELECTION_CRITERIA = {"bic": "bic", "loo": "loo", "elbow": "inertia", "silhouette": "silhouette"}

#: The metrics :func:`plot_study` draws: column -> (axis label, file stem).
STUDY_METRICS = {
    "correct_k": ("share of replications choosing the true k", "study_correct_k"),
    "ari_chosen": ("ARI at the chosen k", "study_ari"),
}

_FORMATS = {".png": "png", ".svg": "svg"}
_RECOMMENDED = "recommended-k"  # gid of the overall recommended k's mark
_FAMILY_PICK = "family-k"  # gid of a family's own recommended k


# ---------------------------------------------------------------------------------- helpers
def _new_figure(width: float, height: float) -> Any:
    from latentseg.deliver._figure import new_figure

    return new_figure(width, height)


def _root(fig: Any) -> Any:
    """The top-level Figure of a Figure or SubFigure."""
    try:
        return fig.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10: SubFigure.figure is the root
        return fig.figure


def _target_ax(ax: Any, width: float, height: float) -> tuple[Any, Any]:
    """(figure, axes): the caller's ``ax`` and its figure, or a new figure with one Axes."""
    if ax is None:
        fig = _new_figure(width, height)
        return fig, fig.add_subplot()
    return ax.figure, ax


def _target_fig(fig: Any, width: float, height: float) -> Any:
    """The caller's ``fig`` (which must be empty), or a new figure."""
    if fig is None:
        return _new_figure(width, height)
    if fig.axes:
        raise ValueError(
            "fig= must be an empty Figure or SubFigure (this plot lays out its own panels); "
            "use fig.subfigures(...) to place it beside other plots."
        )
    return fig


def _finish(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is not None:
        save_figure(fig, path)
    return fig


def _wrap(text: Any, width: int) -> str:
    """``text`` on lines of at most ``width`` characters, broken at spaces (a longer word keeps its
    own line whole): a label is wrapped, never cut."""
    return "\n".join(textwrap.wrap(" ".join(str(text).split()), width=width, break_long_words=False,
                                   break_on_hyphens=False)) or str(text)


def _overlap(a: Any, b: Any) -> float:
    """The area two display-space boxes share (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _circle_overlap(box: Any, cx: float, cy: float, r: float) -> float:
    """How far a circle reaches into a box (0 when apart), in display units."""
    nx, ny = min(max(cx, box.x0), box.x1), min(max(cy, box.y0), box.y1)
    return max(r - math.hypot(cx - nx, cy - ny), 0.0)


#: Label positions tried around a bubble, in order: above, below, right, left, then the diagonals
#: (direction, horizontal and vertical alignment of the text at that side).
_SIDES = ((0, 1, "center", "bottom"), (0, -1, "center", "top"), (1, 0, "left", "center"), (-1, 0, "right", "center"),
          (1, 1, "left", "bottom"), (-1, 1, "right", "bottom"), (1, -1, "left", "top"), (-1, -1, "right", "top"))


def _repel_labels(ax: Any, xy: np.ndarray, radii: np.ndarray, texts: Sequence[str], order: Sequence[int], **text_kw: Any) -> list[Any]:
    """Place one label per bubble so that no two labels overlap, no label covers another bubble and
    every label stays inside the axes.

    Greedy and deterministic: labels are placed in ``order`` (largest bubble first); each takes the
    first position around its bubble (:data:`_SIDES`, at growing distances) whose box is clear of
    the labels placed so far and of the other bubbles; a label moved away from its bubble gets a
    leader line. Where no position is clear, the one with the least overlap is taken. Positions are
    computed on the drawn figure, in display space (so they hold for the saved file).
    """
    fig = _root(ax.figure)
    if not hasattr(fig.canvas, "get_renderer"):  # a caller's figure without a drawing canvas: labels above
        return [ax.annotate(texts[i], xy[i], xytext=(0, radii[i] + 3), textcoords="offset points", ha="center",
                            va="bottom", **text_kw) for i in range(len(texts))]
    fig.canvas.draw()  # settle the layout: transforms below are the final ones
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    to_px = fig.dpi / 72.0
    centers = ax.transData.transform(xy)
    legend = ax.get_legend()
    placed: list[Any] = [] if legend is None else [legend.get_window_extent(renderer)]  # labels keep off the legend
    out: list[Any] = [None] * len(texts)
    for i in order:
        best: tuple[float, Any, tuple[float, float, str, str, float]] | None = None
        for gap in (3.0, 10.0, 22.0, 40.0, 65.0):
            dist = radii[i] + gap  # points from the bubble's centre
            for dx, dy, ha, va in _SIDES:
                norm = math.hypot(dx, dy)
                off = (dist * dx / norm, dist * dy / norm)
                ann = ax.annotate(texts[i], xy[i], xytext=off, textcoords="offset points", ha=ha, va=va, **text_kw)
                box = ann.get_window_extent(renderer)
                ann.remove()
                cost = sum(_overlap(box, b) for b in placed)
                cost += sum(_circle_overlap(box, *centers[j], radii[j] * to_px) ** 2 for j in range(len(texts)) if j != i)
                outside = (max(frame.x0 - box.x0, 0) + max(box.x1 - frame.x1, 0)
                           + max(frame.y0 - box.y0, 0) + max(box.y1 - frame.y1, 0))
                cost += 1e3 * outside
                if best is None or cost < best[0] - 1e-9:
                    best = (cost, box, (off[0], off[1], ha, va, gap))
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        _, box, (ox, oy, ha, va, gap) = best
        arrow = {"arrowstyle": "-", "color": "#777777", "linewidth": 0.6, "shrinkA": 0, "shrinkB": radii[i]} if gap > 3.0 else None
        out[i] = ax.annotate(texts[i], xy[i], xytext=(ox, oy), textcoords="offset points", ha=ha, va=va,
                             arrowprops=arrow, **text_kw)
        out[i].set_in_layout(False)
        placed.append(box)
    return out


def _palette(k: int) -> list[str]:
    base = ["#1f77b4", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
    return [base[i % len(base)] for i in range(k)]


def _as_bool(values: pd.Series) -> np.ndarray:
    """Booleans from a column that may have been read back from text ("True" / "False")."""
    if values.dtype == object:
        return values.map(lambda v: str(v).strip().lower() in ("true", "1", "yes")).to_numpy(dtype=bool)
    return values.fillna(False).to_numpy(dtype=bool)


def _int_or_none(value: Any) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) else None


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save a figure atomically, as PNG or SVG by the file's extension.

    Parameters
    ----------
    fig : Figure or SubFigure
        A SubFigure saves the whole figure it belongs to.
    path : path
        Ending in ``.png`` or ``.svg`` (any case); its folder is created if needed. The file
        appears whole or not at all. SVG files carry no date and, unless ``svg.hashsalt`` is
        set, a fixed salt for their element ids, so the same figure gives the same bytes.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        Any other extension.

    Examples
    --------
    >>> import os, tempfile
    >>> from latentseg.deliver._figure import new_figure
    >>> save_figure(new_figure(2, 2), os.path.join(tempfile.mkdtemp(), "a.svg")).suffix
    '.svg'
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"a figure is saved as .png or .svg; {str(path)!r} has {path.suffix or 'no extension'!r}")
    root = _root(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        return atomic_write(path, lambda tmp: root.savefig(tmp, format="png"))
    import matplotlib

    # element ids are hashed with a random salt unless one is set: fix it (for this call only)
    salt = {"svg.hashsalt": "latentseg"} if matplotlib.rcParams["svg.hashsalt"] is None else {}

    def write_svg(tmp: Path) -> None:
        with matplotlib.rc_context(salt):
            root.savefig(tmp, format="svg", metadata={"Date": None})

    return atomic_write(path, write_svg)


# -------------------------------------------------------------------------------- selection
def _series(table: pd.DataFrame, model: str, col: str) -> pd.DataFrame:
    if col not in table.columns:
        return table.iloc[:0]
    sub = table[(table["model"] == model) & (table["status"] == "ok")].sort_values("k")
    return sub[np.isfinite(pd.to_numeric(sub[col], errors="coerce").to_numpy(dtype=float))]


def _criteria(criterion: str | Sequence[str] | None) -> list[str]:
    wanted = list(SELECTION_CRITERIA) if criterion is None else [criterion] if isinstance(criterion, str) else list(criterion)
    bad = [c for c in wanted if c not in SELECTION_CRITERIA]
    if bad:
        raise ValueError(f"criterion must be among {list(SELECTION_CRITERIA)}; got {bad[0]!r}")
    return wanted


def _selection_panels(selection: Any, criteria: Sequence[str]) -> list[tuple[str, str]]:
    """(criterion, family) for each panel with something to draw, criterion by criterion."""
    panels = []
    for crit in criteria:
        for model in selection.per_family:
            if crit in ("elbow", "silhouette") and (model not in FAMILIES or FAMILIES[model].criterion != "elbow"):
                continue  # inertia and silhouette are drawn for the families chosen by an elbow
            if not _series(selection.table, model, SELECTION_CRITERIA[crit]).empty:
                panels.append((crit, model))
    return panels


def _draw_curve(ax: Any, sub: pd.DataFrame, col: str, color: str, *, style: str = "-", label: str,
                yerr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    ks = sub["k"].to_numpy(dtype=float)
    y = pd.to_numeric(sub[col], errors="coerce").to_numpy(dtype=float)
    if yerr is not None:
        ax.errorbar(ks, y, yerr=yerr, color=color, linestyle=style, capsize=3, label=label)
    else:
        ax.plot(ks, y, style, color=color, label=label)
    adm = _as_bool(sub["admissible"]) if "admissible" in sub.columns else np.ones(len(sub), bool)
    ax.plot(ks[adm], y[adm], "o", color=color)
    ax.plot(ks[~adm], y[~adm], "o", markerfacecolor="white", color=color)
    return ks, y


def _selection_panel(ax: Any, selection: Any, crit: str, model: str, overall_k: int | None, ks_all: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    table = selection.table
    color = FAMILY_COLORS.get(model, "#444444")
    title = FAMILIES[model].title if model in FAMILIES else model
    col = SELECTION_CRITERIA[crit]
    sub = _series(table, model, col)
    if crit == "bic":
        ks, y = _draw_curve(ax, sub, "bic", color, label="BIC")
        icl = _series(table, model, "icl")
        if not icl.empty:
            _draw_curve(ax, icl, "icl", color, style="--", label="ICL")
        ax.set(title=f"{title}: BIC and ICL", ylabel="BIC (solid), ICL (dashed); lower is better")
    elif crit == "loo":
        from latentseg.choose.selection import loo_elpd, loo_se_elpd

        frame = sub.assign(elpd=loo_elpd(sub), elpd_se=loo_se_elpd(sub))
        ks, y = _draw_curve(ax, frame, "elpd", color, label="elpd LOO ±1 SE", yerr=frame["elpd_se"].to_numpy(dtype=float))
        ax.set(title=f"{title}: PSIS-LOO", ylabel="elpd LOO (higher is better)")
    elif crit == "elbow":
        ks, y = _draw_curve(ax, sub, "inertia", color, label="inertia")
        ax.set(title=f"{title}: elbow", ylabel="inertia (within-segment sum of squares)")
    else:
        ks, y = _draw_curve(ax, sub, "silhouette", color, label="silhouette")
        thr = (getattr(selection, "settings", None) or {}).get("silhouette_min")
        if thr is not None:
            ax.axhline(float(thr), color="#999999", linestyle="--", linewidth=1, label=f"threshold {float(thr):g}")
        ax.set(title=f"{title}: silhouette", ylabel="mean silhouette")
    pick = _int_or_none((selection.per_family.get(model) or {}).get("recommended_k"))
    if pick is not None and pick in ks:
        ax.plot([pick], [y[list(ks).index(pick)]], linestyle="none", marker="*", markersize=15, color=color,
                markeredgecolor="black", zorder=5, gid=_FAMILY_PICK, label=f"{model}'s own pick: k={pick}")
    if overall_k is not None:
        ax.axvline(overall_k, color="black", linewidth=9, alpha=0.12, zorder=0, gid=_RECOMMENDED)
    ax.set_xlim(float(ks_all.min()) - 0.5, float(ks_all.max()) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (segments)")
    ax.legend(fontsize=7)


def plot_selection(
    selection: Any,
    *,
    criterion: str | Sequence[str] | None = None,
    fig: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The k-selection figure: one panel per family and criterion, each on its own y axis.

    Families are fitted to different data (scores for the Gaussian mixture, categories for latent
    class), so their criteria are on different scales; each family's BIC / ICL, LOO, inertia or
    silhouette gets its own panel rather than sharing one axis. The overall recommended k
    (``selection.recommended_k``) is marked once per panel by the same grey band; each family's own
    pick (``per_family[model]["recommended_k"]``) by a star in the family's colour. Open markers
    are fits that are not admissible.

    Parameters
    ----------
    selection : Selection
        From :func:`latentseg.choose.selection.select` (or anything with its ``table``,
        ``per_family``, ``recommended_k`` and ``settings``).
    criterion : str or sequence of str, optional
        Only these, among :data:`SELECTION_CRITERIA`: ``"bic"`` (BIC solid, ICL dashed, per
        likelihood family), ``"loo"`` (elpd_loo with ±1 SE bars per Bayesian family),
        ``"elbow"`` (inertia) and ``"silhouette"`` (with the admissibility threshold) for the
        families chosen by an elbow. Default: all that the selection has.
    fig : Figure or SubFigure, optional
        An empty figure to draw the panels into; default a new one.
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Raises
    ------
    ValueError
        No fit has the criteria asked for, or an unknown criterion.

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.choose.selection import select
    >>> X = np.r_[np.zeros((30, 2)), np.full((30, 2), 6.0)] + np.random.default_rng(0).normal(size=(60, 2))
    >>> sel = select(X, models=("kmeans", "gmm"), k=[1, 2, 3], random_seed=1, stability_subsamples=0)
    >>> fig = plot_selection(sel)
    >>> [ax.get_title() for ax in fig.axes]
    ['Gaussian mixture: BIC and ICL', 'k-means: elbow', 'k-means: silhouette']
    >>> fig.get_suptitle()
    "Recommended k = 2 (grey band); ★ each family's pick"
    """
    criteria = _criteria(criterion)
    panels = _selection_panels(selection, criteria)
    if not panels:
        raise ValueError(f"no fit in this selection has {' or '.join(criteria)} to plot")
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = _target_fig(fig, max(5.6, 4.2 * ncols), 3.4 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.remove()
    overall_k = _int_or_none(getattr(selection, "recommended_k", None))
    ks_all = pd.to_numeric(selection.table["k"], errors="coerce").dropna().to_numpy(dtype=float)
    for ax, (crit, model) in zip(axes, panels):
        _selection_panel(ax, selection, crit, model, overall_k, ks_all)
    fig.suptitle(
        f"Recommended k = {overall_k} (grey band); ★ each family's pick" if overall_k is not None
        else "No k recommended (no admissible fit); ★ each family's pick", fontsize=11,
    )
    return _finish(fig, path)


def write_selection_figures(selection: Any, out_dir: str | os.PathLike[str], *, prefix: str = "selection") -> list[Path]:
    """One PNG per criterion that the selection has: ``<prefix>_bic.png``, ``<prefix>_loo.png``,
    ``<prefix>_elbow.png``, ``<prefix>_silhouette.png`` (each :func:`plot_selection` with that
    ``criterion``), in that order; a criterion no fit has is skipped.

    Returns
    -------
    list of Path
        Those written.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from latentseg.choose.selection import select
    >>> X = np.r_[np.zeros((30, 2)), np.full((30, 2), 6.0)] + np.random.default_rng(0).normal(size=(60, 2))
    >>> sel = select(X, models=("kmeans", "gmm"), k=[1, 2, 3], random_seed=1, stability_subsamples=0)
    >>> [p.name for p in write_selection_figures(sel, tempfile.mkdtemp())]
    ['selection_bic.png', 'selection_elbow.png', 'selection_silhouette.png']
    """
    out = Path(out_dir)
    written = []
    for crit in selection_criteria(selection):
        path = out / f"{prefix}_{crit}.png"
        plot_selection(selection, criterion=crit, path=path)
        written.append(path)
    return written


def selection_criteria(selection: Any) -> list[str]:
    """The criteria among :data:`SELECTION_CRITERIA` that some fit of ``selection`` has, in that
    order: those :func:`plot_selection` can draw and :func:`write_selection_figures` writes.

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.choose.selection import select
    >>> X = np.r_[np.zeros((30, 2)), np.full((30, 2), 6.0)] + np.random.default_rng(0).normal(size=(60, 2))
    >>> selection_criteria(select(X, models=("kmeans", "gmm"), k=[1, 2, 3], random_seed=1, stability_subsamples=0))
    ['bic', 'elbow', 'silhouette']
    """
    return [crit for crit in SELECTION_CRITERIA if _selection_panels(selection, [crit])]


# ------------------------------------------------------------------------------- comparison
def plot_comparison(comparison: Any, *, ax: Any = None, path: str | os.PathLike[str] | None = None) -> Any:
    """Heatmap of a comparison's crosstab (row percentages shaded, counts written in the cells).

    Parameters
    ----------
    comparison : Comparison
        From :func:`latentseg.choose.comparison.compare`.
    ax : Axes, optional
        Draw here (a colour bar is added beside it); default a new figure.
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.result import SegmentationResult
    >>> from latentseg.choose.comparison import compare
    >>> r = SegmentationResult.from_memberships("kmeans", np.eye(2)[[0, 1, 1]], centers=np.zeros((2, 1)),
    ...                                         feature_names=("x",))
    >>> plot_comparison(compare(r, r)).axes[0].get_title()
    'agreement 100%, ARI 1.00'
    """
    ct: pd.DataFrame = comparison.crosstab
    counts = ct.to_numpy(dtype=float)
    rowpct = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ka, kb = counts.shape
    fig, ax = _target_ax(ax, 1.6 + 0.9 * kb, 1.4 + 0.7 * ka)
    im = ax.imshow(rowpct, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(ka):
        for j in range(kb):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if rowpct[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(kb), [str(c) for c in ct.columns])
    ax.set_yticks(range(ka), [str(r) for r in ct.index])
    ax.set(xlabel=f"{comparison.name_b} segment", ylabel=f"{comparison.name_a} segment",
           title=f"agreement {comparison.agreement:.0%}, ARI {comparison.ari:.2f}")
    fig.colorbar(im, ax=ax, label="share of row")
    return _finish(fig, path)


# --------------------------------------------------------------------------------- segments
def _segment_names(result: Any, k: int) -> list[str]:
    labels = getattr(result, "segment_labels", None)
    return [str(n) for n in labels] if labels is not None else [str(j + 1) for j in range(k)]


def plot_segment_map(
    segments: Any,
    dimensions: pd.DataFrame | None = None,
    pair: Sequence[str] | None = None,
    *,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The 2x2 of segments on two dimensions: one bubble per segment (area = share), dashed lines
    at the share-weighted averages splitting the plane into four quadrants.

    Parameters
    ----------
    segments : Decisions or SegmentationResult
        A :class:`~latentseg.decide.core.Decisions` brings its result, its ``dimensions`` and
        its two ``chosen_dimensions``; a result brings the names and shares, with ``dimensions``.
    dimensions : DataFrame (k, c), optional
        Per-segment coordinates (columns: job steps, factors). Required with a result.
    pair : two column names, optional
        Default: the Decisions' chosen two, else the two along which the segments differ most
        (largest share-weighted variance).
    ax : Axes, optional
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Raises
    ------
    ValueError
        No dimensions, fewer than two, or a ``pair`` naming a column they lack.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("kmeans", np.eye(3)[[0, 1, 2, 2]], centers=np.zeros((3, 1)),
    ...                                         feature_names=("x",))
    >>> dims = pd.DataFrame({"plan": [12.0, 4, 8], "pay": [3.0, 11, 9]}, index=[1, 2, 3])
    >>> plot_segment_map(r, dims).axes[0].get_xlabel()  # the two that differ most, by share
    'pay (mean opportunity)'
    >>> plot_segment_map(r, dims, ["plan", "pay"]).axes[0].get_xlabel()
    'plan (mean opportunity)'
    """
    result = getattr(segments, "result", segments)
    if dimensions is None:
        dimensions = getattr(segments, "dimensions", None)
        if pair is None:
            pair = getattr(segments, "chosen_dimensions", None) or None
    if dimensions is None:
        raise ValueError("plot_segment_map needs the segments' dimensions (a Decisions, or dimensions=)")
    shares = np.asarray(result.shares, dtype=float)
    if pair is None:
        spread = {c: float(np.sum(shares * (dimensions[c].to_numpy(dtype=float) - np.sum(shares * dimensions[c].to_numpy(dtype=float))) ** 2))
                  for c in dimensions.columns}
        pair = sorted(spread, key=lambda c: -spread[c])[:2]
    pair = list(pair)
    if len(pair) != 2 or any(p not in dimensions.columns for p in pair):
        raise ValueError(f"pair must name two of the dimensions {list(dimensions.columns)[:10]}; got {pair}")
    names = _segment_names(result, len(shares))
    x = dimensions[pair[0]].to_numpy(dtype=float)
    y = dimensions[pair[1]].to_numpy(dtype=float)
    fig, ax = _target_ax(ax, 7.0, 5.2)
    ax.scatter(x, y, s=4000 * shares, c=_palette(len(names)), alpha=0.55, edgecolors="black", linewidths=0.8)
    ax.axvline(float(np.sum(shares * x)), color="#888888", linestyle="--", linewidth=1)
    ax.axhline(float(np.sum(shares * y)), color="#888888", linestyle="--", linewidth=1)
    padx = max(np.ptp(x) * 0.45, 0.8)
    pady = max(np.ptp(y) * 0.45, 0.8)
    ax.set_xlim(x.min() - padx, x.max() + padx)
    ax.set_ylim(y.min() - pady, y.max() + pady)
    ax.set_xlabel(_wrap(f"{pair[0]} (mean opportunity)", 70))
    ax.set_ylabel(_wrap(f"{pair[1]} (mean opportunity)", 50))
    ax.set_title("Segments on two dimensions (bubble area = share)")
    radii = np.sqrt(4000 * shares / math.pi)  # points
    texts = [_wrap(f"{i + 1}. {name} ({shares[i]:.0%})", 24) for i, name in enumerate(names)]
    _repel_labels(ax, np.c_[x, y], radii, texts, np.argsort(-shares, kind="stable"), fontsize=8)
    return _finish(fig, path)


def plot_opportunity_heatmap(
    profiles: Any,
    *,
    outcomes: pd.DataFrame | None = None,
    names: Sequence[str] | None = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The segment x outcome heatmap of mean opportunity (0-20), underserved cells (≥ 10) in bold.

    Parameters
    ----------
    profiles : Profiles or DataFrame (k, m)
        :func:`latentseg.profile` output (its ``means``, ``outcomes`` and segment handles), or
        the means themselves, one row per segment and one column per outcome id.
    outcomes : DataFrame, optional
        ``statement`` per outcome id, shown beside the id (default: the Profiles' own).
    names : sequence of str, optional
        Segment names (default: the Profiles' handles, else the means' index).
    ax : Axes, optional
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Examples
    --------
    >>> import pandas as pd
    >>> means = pd.DataFrame({"o1": [12.0, 4.0], "o2": [6.0, 15.5]}, index=[1, 2])
    >>> [t.get_text() for t in plot_opportunity_heatmap(means).axes[0].get_yticklabels()]
    ['o1', 'o2']
    """
    means = getattr(profiles, "means", profiles)
    if outcomes is None:
        outcomes = getattr(profiles, "outcomes", None)
    if names is None:
        names = getattr(profiles, "handles", None) or [str(i) for i in means.index]
    if means is None or means.empty:
        raise ValueError("plot_opportunity_heatmap needs segment means (one row per segment)")
    M = means.to_numpy(dtype=float).T  # outcomes x segments
    labels = []
    for o in means.columns:
        stmt = str(outcomes.loc[o, "statement"]) if outcomes is not None and "statement" in outcomes.columns and o in outcomes.index else str(o)
        labels.append(_wrap(f"{o}: {stmt}", 48) if stmt != str(o) else str(o))
    m, k = M.shape
    lines = max(label.count("\n") + 1 for label in labels)
    seg_labels = [_wrap(f"{j + 1}. {n}", 14) for j, n in enumerate(names)]
    seg_lines = max(label.count("\n") + 1 for label in seg_labels)
    fig, ax = _target_ax(ax, 5.6 + 1.1 * k, 0.9 + 0.15 * seg_lines + (0.14 + 0.12 * lines) * m)
    im = ax.imshow(M, cmap="YlOrRd", vmin=0, vmax=20, aspect="auto")
    for i in range(m):
        for j in range(k):
            v = M[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if v >= 13 else "black", fontweight="bold" if v >= 10 else "normal")
    ax.set_xticks(range(k), seg_labels, fontsize=8)
    ax.set_yticks(range(m), labels, fontsize=7)
    fig.colorbar(im, ax=ax, label="mean opportunity (0-20; ≥10 underserved, ≥15 extremely)")
    return _finish(fig, path)


def plot_shares(result: Any, *, ax: Any = None, path: str | os.PathLike[str] | None = None) -> Any:
    """Segment sizes with their intervals: one bar per segment, whiskers from the interval.

    Parameters
    ----------
    result : SegmentationResult
        Its ``shares``, ``share_lower``, ``share_upper``, ``interval_method`` and segment labels.
    ax : Axes, optional
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("kmeans", np.eye(2)[[0, 1, 1]], centers=np.zeros((2, 1)),
    ...                                         feature_names=("x",))
    >>> plot_shares(r).axes[0].get_title()
    'Segment sizes with intervals'
    """
    shares = np.asarray(result.shares, dtype=float)
    lo = np.asarray(result.share_lower, dtype=float)
    hi = np.asarray(result.share_upper, dtype=float)
    names = _segment_names(result, len(shares))
    k = len(names)
    seg_labels = [_wrap(f"{j + 1}. {n}", 30) for j, n in enumerate(names)]
    fig, ax = _target_ax(ax, 7.0, 1.0 + max(0.55, 0.16 * max(t.count("\n") + 1 for t in seg_labels)) * k)
    ypos = np.arange(k)[::-1]
    ax.barh(ypos, shares, color=_palette(k), alpha=0.8)
    err = np.vstack([np.clip(shares - lo, 0, None), np.clip(hi - shares, 0, None)])
    ax.errorbar(shares, ypos, xerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=4)
    right = np.where(np.isfinite(hi), hi, shares)
    for yv, s, h in zip(ypos, shares, right, strict=True):
        ax.text(h + 0.01, yv, f"{s:.0%}", va="center", fontsize=8)
    ax.set_yticks(ypos, seg_labels, fontsize=8)
    ax.set_xlim(0, min(1.0, float(np.max(right)) + 0.12))
    ax.set_xlabel(f"share of respondents ({result.interval_method})")
    ax.set_title("Segment sizes with intervals")
    return _finish(fig, path)


def plot_landscape(landscape: pd.DataFrame, *, ax: Any = None, path: str | os.PathLike[str] | None = None) -> Any:
    """Ulwick's opportunity landscape: importance against satisfaction per outcome, coloured by
    opportunity; below the dashed line (opportunity = 10) an outcome is underserved.

    Parameters
    ----------
    landscape : DataFrame
        :func:`latentseg.opportunity_landscape` output for the whole sample (``importance``,
        ``satisfaction``, ``opportunity``; ``outcome`` labels the points). For one computed with
        ``by=``, select one group's rows first.
    ax : Axes, optional
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Raises
    ------
    ValueError
        A column missing, or several groups.

    Examples
    --------
    >>> import pandas as pd
    >>> land = pd.DataFrame({"outcome": ["o1", "o2"], "importance": [8.0, 4.0], "satisfaction": [3.0, 6.0],
    ...                      "opportunity": [13.0, 4.0]})
    >>> plot_landscape(land).axes[0].get_title()
    'Opportunity landscape'
    """
    need = {"importance", "satisfaction", "opportunity"}
    if not need <= set(landscape.columns):
        raise ValueError(f"the landscape lacks {sorted(need - set(landscape.columns))}")
    if "group" in landscape.columns and landscape["group"].nunique() > 1:
        raise ValueError("the landscape has several groups (computed with by=); plot one group's rows at a time")
    fig, ax = _target_ax(ax, 6.0, 5.0)
    imp = landscape["importance"].to_numpy(dtype=float)
    sat = landscape["satisfaction"].to_numpy(dtype=float)
    opp = landscape["opportunity"].to_numpy(dtype=float)
    sc = ax.scatter(imp, sat, c=opp, cmap="YlOrRd", vmin=0, vmax=20, edgecolors="black", linewidths=0.5)
    label = landscape["outcome"] if "outcome" in landscape.columns else landscape.index
    grid = np.linspace(0, 10, 50)
    ax.plot(grid, np.clip(2 * grid - 10, 0, 10), color="#999999", linestyle="--", linewidth=1, label="opportunity = 10")
    ax.plot([0, 10], [0, 10], color="#bbbbbb", linestyle=":", linewidth=1, label="satisfaction = importance")
    ax.set(xlim=(0, 10), ylim=(0, 10), xlabel="importance (top-2-box, 0-10)", ylabel="satisfaction (top-2-box, 0-10)",
           title="Opportunity landscape")
    ax.legend(fontsize=7, loc="upper left")
    fig.colorbar(sc, ax=ax, label="opportunity")
    ok = np.isfinite(imp) & np.isfinite(sat)
    # outcome ids placed clear of each other, of the other points and of the legend (highest opportunity first)
    _repel_labels(ax, np.c_[imp, sat][ok], np.full(int(ok.sum()), 3.5), [str(v) for v in np.asarray(label)[ok]],
                  np.argsort(-np.nan_to_num(opp[ok]), kind="stable"), fontsize=6)
    return _finish(fig, path)


def plot_overlay(
    overlay: Any,
    *,
    column: str | None = None,
    names: Sequence[str] | None = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """A categorical profile column by segment: stacked bars of its categories within each
    segment (row percentages), with all respondents as the last bar.

    Parameters
    ----------
    overlay : ColumnOverlay or DataFrame
        One of :func:`latentseg.decide.overlay.overlay`'s columns (a categorical one), or its
        ``row_pct``: rows segment 1..k (and ``overall``), columns the categories, in percent.
    column : str, optional
        The column's name for the title (default: the overlay's).
    names : sequence of str, optional
        Segment names, segment 1..k.
    ax : Axes, optional
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Raises
    ------
    ValueError
        A numeric overlay (it has no row percentages).

    Examples
    --------
    >>> import pandas as pd
    >>> pct = pd.DataFrame({"yes": [80.0, 30.0, 55.0], "no": [20.0, 70.0, 45.0]}, index=[1, 2, "overall"])
    >>> plot_overlay(pct, column="owns a car", names=["Drivers", "Walkers"]).axes[0].get_title()
    'owns a car by segment'
    """
    pct = getattr(overlay, "row_pct", overlay)
    column = column if column is not None else getattr(overlay, "column", "overlay")
    if pct is None or not isinstance(pct, pd.DataFrame) or pct.empty:
        raise ValueError(f"{column!r} has no row percentages to plot (a numeric overlay?)")
    names = list(names or [])
    rows = [r for r in pct.index if str(r) != "overall"]
    data = pct.loc[rows].to_numpy(dtype=float)
    labels = [_wrap(f"{r}. {names[int(r) - 1]}", 26) if str(r).isdigit() and 0 < int(r) <= len(names) else str(r) for r in rows]
    if "overall" in [str(r) for r in pct.index]:
        overall = pct.loc[[r for r in pct.index if str(r) == "overall"][0]].to_numpy(dtype=float)
        data = np.vstack([data, overall])
        labels.append("all respondents")
    cats = [str(c) for c in pct.columns]
    own = ax is None
    fig, ax = _target_ax(ax, 7.0, 1.6 + 0.45 * len(labels) + 0.2 * math.ceil(len(cats) / 4))
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    left = np.zeros(len(labels))
    ypos = np.arange(len(labels))[::-1]
    for c, cat in enumerate(cats):
        vals = np.nan_to_num(data[:, c])
        ax.barh(ypos, vals, left=left, color=cmap(c % 20), label=_wrap(cat, 28))
        left += vals
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% within segment")
    ax.set_title(_wrap(f"{column} by segment", 60))
    if own:  # below the bars, outside the axes
        fig.legend(fontsize=7, ncol=min(4, len(cats)), loc="outside lower center")
    else:  # the caller's figure keeps its own layout
        ax.legend(fontsize=7, ncol=min(4, len(cats)))
    return _finish(fig, path)


# ------------------------------------------------------------------------------------ study
def _study_factors(summary: pd.DataFrame, factors: Sequence[str] | None) -> list[str]:
    design = ["n", "k", "separation", "imbalance", "covariance", "noise_dims"]
    chosen = [f for f in (factors or design) if f in summary.columns and summary[f].nunique() > 1]
    if not chosen:
        chosen = [f for f in (factors or design) if f in summary.columns][:1]
    if not chosen:
        raise ValueError(f"the summary has none of the design columns {list(factors or design)}")
    return chosen


def plot_study(
    summary: pd.DataFrame,
    *,
    metric: str | Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
    fig: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Simulation-study figure: per method, the rate of choosing the true k (``correct_k``) and
    the ARI at the chosen k (``ari_chosen``) against each design factor that varies (averaged over
    the other factors); one row of panels per metric, one column per factor.

    Parameters
    ----------
    summary : DataFrame
        :func:`latentseg.research.study.summarize` output (one row per cell and method).
    metric : str or sequence of str, optional
        Among :data:`STUDY_METRICS`; default those the summary has.
    factors : sequence of str, optional
        Design columns to plot against (default: those with more than one value).
    fig : Figure or SubFigure, optional
        An empty figure to draw the panels into; default a new one.
    path : path, optional
        Also save the figure there (``.png`` or ``.svg``).

    Returns
    -------
    Figure

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"n": [100, 100, 400, 400], "method": ["gmm-bic", "kmeans-elbow"] * 2,
    ...                   "correct_k": [0.5, 0.2, 0.9, 0.4], "ari_chosen": [0.6, 0.5, 0.9, 0.7]})
    >>> [ax.get_ylabel() for ax in plot_study(s).axes]
    ['share of replications choosing the true k', 'ARI at the chosen k']
    """
    metrics = list(STUDY_METRICS) if metric is None else [metric] if isinstance(metric, str) else list(metric)
    bad = [m for m in metrics if m not in STUDY_METRICS]
    if bad:
        raise ValueError(f"metric must be among {list(STUDY_METRICS)}; got {bad[0]!r}")
    metrics = [m for m in metrics if m in summary.columns]
    if not metrics:
        raise ValueError(f"the summary has none of the metrics {list(STUDY_METRICS)}")
    chosen = _study_factors(summary, factors)
    fig = _target_fig(fig, 3.2 * len(chosen) + 1.2, 3.4 * len(metrics))
    grid = fig.subplots(len(metrics), len(chosen), squeeze=False)
    for row, m in zip(grid, metrics):
        for ax, factor in zip(row, chosen):
            agg = summary.groupby([factor, "method"], sort=True)[m].mean().unstack("method")
            xs = np.arange(len(agg.index))
            for method in agg.columns:
                ax.plot(xs, agg[method].to_numpy(dtype=float), marker="o", color=METHOD_COLORS.get(str(method), "#444444"),
                        label=str(method))
            ax.set_xticks(xs, [str(v) for v in agg.index])
            ax.set(xlabel=factor, ylim=(-0.02, 1.02))
        row[0].set_ylabel(STUDY_METRICS[m][0])
        row[-1].legend(fontsize=7, loc="lower right")
    return _finish(fig, path)


def write_study_figures(summary: pd.DataFrame, out_dir: str | os.PathLike[str], *, factors: Sequence[str] | None = None) -> list[Path]:
    """``study_correct_k.png`` and ``study_ari.png`` (each :func:`plot_study` with that
    ``metric``, one panel per factor), for the metrics the summary has.

    Returns
    -------
    list of Path
        Those written.
    """
    out = Path(out_dir)
    written = []
    for m, (_, stem) in STUDY_METRICS.items():
        if m in summary.columns:
            path = out / f"{stem}.png"
            plot_study(summary, metric=m, factors=factors, path=path)
            written.append(path)
    return written
