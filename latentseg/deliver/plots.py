"""Figures for choosing k, comparing two segmentations and the simulation study (PNG).

Matplotlib is imported inside each function and used through its object-oriented API with the
Agg canvas (no pyplot, no global backend switch), so importing this module is free and the
figures render the same on a headless machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.io.files import atomic_write
from latentseg.models.families import FAMILIES

__all__ = ["plot_selection", "plot_comparison", "plot_study", "FAMILY_COLORS"]

#: One color per model family, shared by every figure.
#: Each family's colour in figures (from the family registry).
FAMILY_COLORS = {name: fam.color for name, fam in FAMILIES.items()}


def _figure(width: float = 6.0, height: float = 4.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def _mark_k(ax: Any, k: int | None, color: str, label: str | None = None) -> None:
    if k is not None:
        ax.axvline(k, color=color, linestyle=":", linewidth=1.2, alpha=0.9, label=label)


def plot_selection(selection: Any, out_dir: str | os.PathLike[str], *, prefix: str = "selection") -> list[Path]:
    """The k-selection figures as PNG files.

    Parameters
    ----------
    selection : Selection
        From :func:`latentseg.choose.selection.select`.
    out_dir : path
        Directory (created if needed).
    prefix : str, default "selection"
        File name prefix.

    Returns
    -------
    list of Path
        Those written, among ``<prefix>_bic.png`` (BIC and ICL per EM family),
        ``<prefix>_loo.png`` (elpd_loo with ±1 SE bars per Bayesian family), ``<prefix>_elbow.png``
        (k-means inertia) and ``<prefix>_silhouette.png`` (k-means silhouette with the threshold);
        a figure is skipped when no fit has its criterion. Recommended k values are marked with
        dotted lines, non-admissible fits with open markers.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from latentseg.choose.selection import select
    >>> X = np.r_[np.zeros((30, 2)), np.full((30, 2), 6.0)] + np.random.default_rng(0).normal(size=(60, 2))
    >>> sel = select(X, models=("kmeans", "gmm"), k=[1, 2, 3], random_seed=1, stability_subsamples=0)
    >>> [p.name for p in plot_selection(sel, tempfile.mkdtemp())]
    ['selection_bic.png', 'selection_elbow.png', 'selection_silhouette.png']
    """
    out = Path(out_dir)
    table: pd.DataFrame = selection.table
    per_family: dict[str, Any] = selection.per_family
    written: list[Path] = []

    def series(model: str, col: str) -> pd.DataFrame:
        sub = table[(table["model"] == model) & (table["status"] == "ok")].sort_values("k")
        return sub[np.isfinite(sub[col].astype(float))]

    def draw(ax: Any, model: str, col: str, *, yerr: str | None = None, style: str = "-", label: str | None = None) -> bool:
        sub = series(model, col)
        if sub.empty:
            return False
        color = FAMILY_COLORS.get(model, "#444444")
        ks = sub["k"].to_numpy()
        y = sub[col].to_numpy(dtype=float)
        if yerr is not None:
            ax.errorbar(ks, y, yerr=sub[yerr].to_numpy(dtype=float), color=color, linestyle=style,
                        capsize=3, label=label or model)
        else:
            ax.plot(ks, y, style, color=color, label=label or model)
        adm = sub["admissible"].to_numpy(dtype=bool) if "admissible" in sub else np.ones(len(sub), bool)
        ax.plot(ks[adm], y[adm], "o", color=color)
        ax.plot(ks[~adm], y[~adm], "o", markerfacecolor="white", color=color)
        return True

    # BIC (and ICL, dashed) for the likelihood families
    fig = _figure()
    ax = fig.add_subplot()
    any_bic = False
    for model in per_family:
        if draw(ax, model, "bic"):
            any_bic = True
            draw(ax, model, "icl", style="--", label=f"{model} ICL")
            _mark_k(ax, per_family[model].get("recommended_k"), FAMILY_COLORS.get(model, "#444"))
    if any_bic:
        ax.set(xlabel="k (segments)", ylabel="criterion (lower is better)", title="BIC (solid) and ICL (dashed)")
        ax.legend(fontsize=8)
        written.append(_save(fig, out / f"{prefix}_bic.png"))

    # LOO with error bars
    fig = _figure()
    ax = fig.add_subplot()
    any_loo = False
    for model in per_family:
        sub = series(model, "loo")
        if sub.empty:
            continue
        from latentseg.choose.selection import loo_elpd, loo_se_elpd

        frame = sub.assign(elpd=loo_elpd(sub), elpd_se=loo_se_elpd(sub))
        color = FAMILY_COLORS.get(model, "#444")
        ax.errorbar(frame["k"], frame["elpd"], yerr=frame["elpd_se"], color=color, capsize=3, marker="o", label=model)
        _mark_k(ax, per_family[model].get("recommended_k"), color, f"{model}: recommended")
        any_loo = True
    if any_loo:
        ax.set(xlabel="k (segments)", ylabel="elpd LOO (higher is better)", title="PSIS-LOO with ±1 SE")
        ax.legend(fontsize=8)
        written.append(_save(fig, out / f"{prefix}_loo.png"))

    # families chosen by an elbow (k-means): elbow and silhouette
    for model in [m for m in per_family if FAMILIES[m].criterion == "elbow"]:
        title = FAMILIES[model].title
        if not series(model, "inertia").empty:
            fig = _figure()
            ax = fig.add_subplot()
            draw(ax, model, "inertia")
            _mark_k(ax, per_family[model].get("recommended_k"), FAMILY_COLORS[model], "recommended")
            ax.set(xlabel="k (segments)", ylabel="inertia (within-segment sum of squares)", title=f"{title} elbow")
            written.append(_save(fig, out / f"{prefix}_elbow.png"))
        if not series(model, "silhouette").empty:
            fig = _figure()
            ax = fig.add_subplot()
            draw(ax, model, "silhouette")
            thr = selection.settings.get("silhouette_min")
            if thr is not None:
                ax.axhline(float(thr), color="#999999", linestyle="--", linewidth=1, label=f"threshold {float(thr):g}")
            _mark_k(ax, per_family[model].get("recommended_k"), FAMILY_COLORS[model], "recommended")
            ax.set(xlabel="k (segments)", ylabel="mean silhouette", title=f"{title} silhouette")
            ax.legend(fontsize=8)
            written.append(_save(fig, out / f"{prefix}_silhouette.png"))
    return written


def plot_comparison(comparison: Any, path: str | os.PathLike[str]) -> Path:
    """Heatmap of a comparison's crosstab (row percentages, counts written in the cells).

    Parameters
    ----------
    comparison : Comparison
        From :func:`latentseg.choose.comparison.compare`.
    path : path
        The PNG file to write.

    Returns
    -------
    Path

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from latentseg.result import SegmentationResult
    >>> from latentseg.choose.comparison import compare
    >>> r = SegmentationResult.from_memberships("kmeans", np.eye(2)[[0, 1, 1]], centers=np.zeros((2, 1)),
    ...                                         feature_names=("x",))
    >>> plot_comparison(compare(r, r), os.path.join(tempfile.mkdtemp(), "c.png")).suffix
    '.png'
    """
    ct: pd.DataFrame = comparison.crosstab
    counts = ct.to_numpy(dtype=float)
    rowpct = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ka, kb = counts.shape
    fig = _figure(1.6 + 0.9 * kb, 1.4 + 0.7 * ka)
    ax = fig.add_subplot()
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
    return _save(fig, Path(path))


def plot_study(summary: pd.DataFrame, out_dir: str | os.PathLike[str], *, factors: Sequence[str] | None = None) -> list[Path]:
    """Study figures: the rate of choosing the true k and the ARI at the chosen k, by method,
    against each design factor that varies (averaged over the other factors).

    Parameters
    ----------
    summary : DataFrame
        :func:`latentseg.research.study.summarize` output (one row per cell and method).
    out_dir : path
    factors : sequence of str, optional
        Design columns to plot against (default: those with more than one value).

    Returns
    -------
    list of Path
        ``study_correct_k.png`` and ``study_ari.png`` (one panel per factor).
    """
    out = Path(out_dir)
    design = ["n", "k", "separation", "imbalance", "covariance", "noise_dims"]
    factors = [f for f in (factors or design) if f in summary.columns and summary[f].nunique() > 1]
    if not factors:
        factors = [f for f in design if f in summary.columns][:1]
    written: list[Path] = []
    for metric, label, fname in (
        ("correct_k", "share of replications choosing the true k", "study_correct_k.png"),
        ("ari_chosen", "ARI at the chosen k", "study_ari.png"),
    ):
        if metric not in summary.columns:
            continue
        fig = _figure(3.2 * len(factors) + 1.2, 3.4)
        axes = fig.subplots(1, len(factors), squeeze=False)[0]
        for ax, factor in zip(axes, factors):
            agg = summary.groupby([factor, "method"], sort=True)[metric].mean().unstack("method")
            xs = np.arange(len(agg.index))
            for method in agg.columns:
                color = _method_color(str(method))
                ax.plot(xs, agg[method].to_numpy(dtype=float), marker="o", color=color, label=str(method))
            ax.set_xticks(xs, [str(v) for v in agg.index])
            ax.set(xlabel=factor, ylim=(-0.02, 1.02))
        axes[0].set_ylabel(label)
        axes[-1].legend(fontsize=7, loc="lower right")
        written.append(_save(fig, out / fname))
    return written


#: One color per study method (k-means methods in greens, as in the selection figures).
METHOD_COLORS = {
    "kmeans-silhouette": "#1b9e77",
    "kmeans-elbow": "#66c2a5",
    "gmm-bic": "#d95f02",
    "lca-bic": "#7570b3",
    "bayes-loo": "#e7298a",
}


def _method_color(method: str) -> str:
    return METHOD_COLORS.get(method, "#444444")
