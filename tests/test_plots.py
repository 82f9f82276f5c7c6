"""latentseg.deliver.plots: every plot returns a Figure, draws into the caller's ax / fig, saves
(PNG or SVG) only when given a path, and the selection figure marks one recommended k.

Small and fast: the selection comes from ``select()`` with a scripted engine (criteria on the
scales of real fits: gmm BIC ~27,900, lca ~8,300), the comparison from two small results.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure, SubFigure

import latentseg.models as models_mod
from latentseg.deliver import plots
from latentseg.result import SegmentationResult

PNG = b"\x89PNG\r\n\x1a\n"
N = 120
KS = [2, 3, 4]


def _scripted_fit(data: Any, model: str, k: int, *, random_seed: int | None = None, **opts: Any) -> SegmentationResult:
    from latentseg.models._criteria import information_criteria

    z = np.eye(k)[np.arange(N) % k]
    if model == "kmeans":
        crit = {"inertia": 1000.0 / k, "silhouette": 0.5 - 0.05 * k}
    elif model.startswith("bayes"):
        crit = {"loo": -14000.0 - 30 * (k - 3) ** 2, "loo_se": 10.0, "waic": -14000.0, "waic_se": 10.0}
    else:  # gmm's minimum at 3, lca's at 4, on their own scales
        crit = information_criteria(-1000.0, 5 * k, N, z)
        crit["bic"] = {"gmm": 27900.0 + 40 * (k - 3) ** 2, "lca": 8300.0 + 40 * (k - 4) ** 2}[model]
        crit["icl"] = crit["bic"] + 25.0 * k
    return SegmentationResult.from_memberships(model, z, centers=np.zeros((k, 2)), feature_names=("a", "b"),
                                               criteria=crit, diagnostics={"converged": True})


@pytest.fixture(scope="module")
def selection():
    from latentseg.choose.selection import select

    mp = pytest.MonkeyPatch()
    mp.setattr(models_mod, "fit", _scripted_fit)
    try:
        X = np.random.default_rng(0).normal(size=(N, 2))
        cat = np.random.default_rng(1).integers(0, 3, size=(N, 4))
        sel = select(X, models=("kmeans", "gmm", "lca", "bayes-gmm"), k=KS, random_seed=1,
                     stability_subsamples=0, categorical_data=cat, all_k=True)  # every family, every k
    finally:
        mp.undo()
    assert sel.recommended_k == 3 and sel.per_family["lca"]["recommended_k"] == 4  # the figure must tell them apart
    return sel


@pytest.fixture(scope="module")
def result():
    z = np.eye(3)[[0, 0, 1, 1, 1, 2, 2, 0, 1, 2]]
    return SegmentationResult.from_memberships("kmeans", z, centers=np.zeros((3, 2)), feature_names=("a", "b"))


@pytest.fixture(scope="module")
def comparison(result):
    from latentseg.choose.comparison import compare

    z = np.eye(3)[[0, 1, 1, 1, 1, 2, 2, 0, 1, 2]]
    other = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((3, 2)), feature_names=("a", "b"))
    return compare(result, other)


DIMS = pd.DataFrame({"plan": [12.0, 4.0, 8.0], "pay": [3.0, 11.0, 9.0], "use": [5.0, 5.5, 6.0]}, index=[1, 2, 3])
MEANS = pd.DataFrame({"o1": [12.0, 4.0, 9.0], "o2": [6.0, 15.5, 2.0]}, index=[1, 2, 3])
OUTCOMES = pd.DataFrame({"statement": ["Minimize the time to plan", "Avoid paying twice"], "job_step": ["plan", "pay"]},
                        index=["o1", "o2"])
LANDSCAPE = pd.DataFrame({"outcome": ["o1", "o2"], "importance": [8.0, 4.0], "satisfaction": [3.0, 6.0],
                          "opportunity": [13.0, 4.0]})
OVERLAY = pd.DataFrame({"yes": [80.0, 30.0, 50.0, 55.0], "no": [20.0, 70.0, 50.0, 45.0]}, index=[1, 2, 3, "overall"])
SUMMARY = pd.DataFrame({"n": [100, 100, 400, 400], "k": [3, 3, 3, 3], "method": ["gmm-bic", "kmeans-elbow"] * 2,
                        "correct_k": [0.5, 0.2, 0.9, 0.4], "ari_chosen": [0.6, 0.5, 0.9, 0.7]})

# name -> (call with keyword arguments, single panel?)
SINGLE = {
    "comparison": lambda f, **kw: plots.plot_comparison(f["comparison"], **kw),
    "segment_map": lambda f, **kw: plots.plot_segment_map(f["result"], DIMS, ["plan", "pay"], **kw),
    "heatmap": lambda f, **kw: plots.plot_opportunity_heatmap(MEANS, outcomes=OUTCOMES, names=["A", "B", "C"], **kw),
    "shares": lambda f, **kw: plots.plot_shares(f["result"], **kw),
    "landscape": lambda f, **kw: plots.plot_landscape(LANDSCAPE, **kw),
    "overlay": lambda f, **kw: plots.plot_overlay(OVERLAY, column="owns a car", names=["A", "B", "C"], **kw),
}
MULTI = {
    "selection": lambda f, **kw: plots.plot_selection(f["selection"], **kw),
    "study": lambda f, **kw: plots.plot_study(SUMMARY, **kw),
}
ALL = {**SINGLE, **MULTI}


@pytest.fixture(scope="module")
def objs(selection, result, comparison):
    return {"selection": selection, "result": result, "comparison": comparison}


def _drawn(ax: Any) -> int:
    """How many data artists an Axes holds."""
    return len(ax.lines) + len(ax.collections) + len(ax.images) + len(ax.patches) + len(ax.texts)


@pytest.mark.parametrize("name", list(ALL))
def test_each_plot_returns_a_figure_and_writes_nothing_without_a_path(name, objs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = ALL[name](objs)
    assert isinstance(fig, Figure)
    assert fig.axes and all(_drawn(ax) for ax in fig.axes if ax.get_label() != "<colorbar>")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", list(SINGLE))
def test_single_panel_plots_draw_into_the_callers_axes(name, objs):
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert _drawn(right) == 0
    out = SINGLE[name](objs, ax=right)
    assert out is fig
    assert _drawn(right) > 0 and _drawn(left) == 0  # the artists are in the caller's axes, nowhere else


@pytest.mark.parametrize("name", list(MULTI))
def test_multi_panel_plots_draw_into_the_callers_figure_or_subfigure(name, objs):
    fig = Figure()
    assert MULTI[name](objs, fig=fig) is fig and fig.axes and all(_drawn(ax) for ax in fig.axes)
    outer = Figure()
    left, right = outer.subfigures(1, 2)
    left.add_subplot().plot([0, 1])
    out = MULTI[name](objs, fig=right)
    assert isinstance(out, SubFigure) and out is right and len(right.axes) >= 2 and len(left.axes) == 1
    with pytest.raises(ValueError, match="empty Figure"):  # its panels would cover what is there
        MULTI[name](objs, fig=left)


@pytest.mark.parametrize("name", list(ALL))
def test_each_plot_saves_png_or_svg_by_extension(name, objs, tmp_path):
    png, svg = tmp_path / "sub" / "a.png", tmp_path / "b.SVG"
    ALL[name](objs, path=png)
    assert png.read_bytes()[:8] == PNG
    ALL[name](objs, path=svg)
    text = svg.read_text(encoding="utf-8")
    assert text.startswith("<?xml") and "<svg" in text
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        ALL[name](objs, path=tmp_path / "c.jpg")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "b.SVG"]  # no temporary left


def test_a_plot_drawn_into_a_subfigure_saves_the_whole_figure(objs, tmp_path):
    outer = Figure(figsize=(8, 3))
    left, right = outer.subfigures(1, 2)
    plots.plot_shares(objs["result"], ax=left.add_subplot(), path=tmp_path / "a.png")
    plots.plot_selection(objs["selection"], criterion="bic", fig=right, path=tmp_path / "b.png")
    from PIL import Image

    assert Image.open(tmp_path / "b.png").size == (int(8 * outer.dpi), int(3 * outer.dpi))


def test_svg_has_no_date_so_the_same_figure_gives_the_same_bytes(objs, tmp_path):
    a = plots.save_figure(plots.plot_comparison(objs["comparison"]), tmp_path / "a.svg").read_bytes()
    b = plots.save_figure(plots.plot_comparison(objs["comparison"]), tmp_path / "b.svg").read_bytes()
    assert a == b and b"<dc:date>" not in a


def _marks(fig: Figure, gid: str) -> list[tuple[Any, float]]:
    return [(ax, float(np.asarray(line.get_xdata())[0])) for ax in fig.axes for line in ax.lines if line.get_gid() == gid]


def test_selection_marks_exactly_one_recommended_k_and_each_familys_own_pick(selection):
    fig = plots.plot_selection(selection)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Gaussian mixture: BIC and ICL", "latent class: BIC and ICL", "Bayesian Gaussian mixture: PSIS-LOO",
                      "k-means: elbow", "k-means: silhouette"]
    recommended = _marks(fig, "recommended-k")
    assert {k for _, k in recommended} == {selection.recommended_k} == {3}  # one k, the overall recommendation
    assert [ax for ax, _ in recommended] == fig.axes  # at the same place in every panel
    assert fig.get_suptitle().startswith("Recommended k = 3")
    picks = {ax.get_title(): k for ax, k in _marks(fig, "family-k")}
    assert picks == {"Gaussian mixture: BIC and ICL": 3, "latent class: BIC and ICL": 4,
                     "Bayesian Gaussian mixture: PSIS-LOO": 3, "k-means: elbow": 2, "k-means: silhouette": 2}
    # the families' BIC are not flattened onto one axis: each panel's y range is its own family's
    gmm, lca = fig.axes[0].get_ylim(), fig.axes[1].get_ylim()
    assert gmm[0] > 27000 and lca[1] < 9000


def test_selection_without_a_recommendation_marks_none(selection):
    table = selection.table.assign(admissible=False)
    bare = SimpleNamespace(table=table, per_family={m: {} for m in selection.per_family}, recommended_k=None, settings={})
    fig = plots.plot_selection(bare, criterion=["bic", "loo"])
    assert len(fig.axes) == 3 and _marks(fig, "recommended-k") == [] and _marks(fig, "family-k") == []
    assert fig.get_suptitle().startswith("No k recommended")


def test_selection_criterion_picks_panels_and_refuses_what_is_not_there(selection):
    assert [ax.get_title() for ax in plots.plot_selection(selection, criterion="loo").axes] == ["Bayesian Gaussian mixture: PSIS-LOO"]
    with pytest.raises(ValueError, match="criterion must be among"):
        plots.plot_selection(selection, criterion="aic")
    only_km = SimpleNamespace(table=selection.table[selection.table["model"] == "kmeans"], per_family={"kmeans": {}},
                              recommended_k=2, settings={})
    with pytest.raises(ValueError, match="no fit in this selection has bic"):
        plots.plot_selection(only_km, criterion="bic")


def test_write_selection_and_study_figures_keep_the_file_names(selection, tmp_path):
    written = plots.write_selection_figures(selection, tmp_path)
    assert [p.name for p in written] == ["selection_bic.png", "selection_loo.png", "selection_elbow.png", "selection_silhouette.png"]
    assert all(p.read_bytes()[:8] == PNG for p in written)
    study = plots.write_study_figures(SUMMARY, tmp_path / "s")
    assert [p.name for p in study] == ["study_correct_k.png", "study_ari.png"]
    assert [p.name for p in plots.write_study_figures(SUMMARY.drop(columns="ari_chosen"), tmp_path / "t")] == ["study_correct_k.png"]


def test_study_metric_and_factors(objs):
    fig = plots.plot_study(SUMMARY, metric="ari_chosen")
    assert [ax.get_ylabel() for ax in fig.axes] == ["ARI at the chosen k"] and fig.axes[0].get_xlabel() == "n"
    assert len(plots.plot_study(SUMMARY, factors=["n", "k"]).axes) == 2  # k does not vary: left out
    with pytest.raises(ValueError, match="metric must be among"):
        plots.plot_study(SUMMARY, metric="bic")


def test_segment_map_reads_a_decisions_and_checks_its_pair(objs):
    d = SimpleNamespace(result=objs["result"], dimensions=DIMS, chosen_dimensions=["use", "plan"])
    ax = plots.plot_segment_map(d).axes[0]
    assert ax.get_xlabel().startswith("use") and ax.get_ylabel().startswith("plan")
    with pytest.raises(ValueError, match="pair must name two"):
        plots.plot_segment_map(objs["result"], DIMS, ["plan", "nope"])
    with pytest.raises(ValueError, match="dimensions"):
        plots.plot_segment_map(objs["result"])


def test_heatmap_reads_profiles_and_overlay_refuses_a_numeric_column():
    prof = SimpleNamespace(means=MEANS, outcomes=OUTCOMES, handles=("Planners", "Payers", "Users"))
    ax = plots.plot_opportunity_heatmap(prof).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["o1: Minimize the time to plan", "o2: Avoid paying twice"]
    assert ax.get_xticklabels()[0].get_text() == "1. Planners"
    with pytest.raises(ValueError, match="no row percentages"):
        plots.plot_overlay(SimpleNamespace(row_pct=None, column="age"))
    with pytest.raises(ValueError, match="several groups"):
        plots.plot_landscape(pd.concat([LANDSCAPE.assign(group="a"), LANDSCAPE.assign(group="b")]))


def test_figures_show_in_jupyter_without_pyplot(objs):
    """IPython displays an object with ``_repr_png_``; a bare matplotlib Figure made without pyplot
    has none (only ``_repr_html_``, for WebAgg), so the plots return one that has."""
    fig = plots.plot_comparison(objs["comparison"])
    assert not hasattr(Figure, "_repr_png_")
    assert fig._repr_png_()[:8] == PNG
    again = pickle.loads(pickle.dumps(fig))  # an ordinary, picklable Figure otherwise
    assert isinstance(again, Figure) and again._repr_png_()[:8] == PNG


def test_plotting_touches_no_pyplot_state():
    code = (
        "import json, sys\n"
        "import pandas as pd\n"
        "from latentseg.deliver import plots\n"
        "assert 'matplotlib' not in sys.modules\n"  # importing the module is free
        "fig = plots.plot_landscape(pd.DataFrame({'importance': [8.0], 'satisfaction': [3.0], 'opportunity': [13.0]}))\n"
        "print(json.dumps([type(fig.canvas).__name__, 'matplotlib.pyplot' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["FigureCanvasAgg", False]  # no window, no global figure manager


def test_compare_plot_writes_svg_by_extension_and_refuses_other_formats(tmp_path):
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    ids = [f"r{i}" for i in range(30)]
    seg = np.arange(30) % 3 + 1
    for name in ("a.csv", "b.csv"):
        pd.DataFrame({"respondent_id": ids, "segment": seg}).to_csv(tmp_path / name, index=False)
    run = CliRunner().invoke(app, ["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--plot", str(tmp_path / "c.svg")])
    assert run.exit_code == 0, run.output
    assert "<svg" in (tmp_path / "c.svg").read_text(encoding="utf-8")
    bad = CliRunner().invoke(app, ["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--plot", str(tmp_path / "c.jpg")])
    assert bad.exit_code != 0 and ".png or .svg" in bad.output and not (tmp_path / "c.jpg").exists()


def _label_boxes(fig: Any) -> tuple[Any, list[Any], Any]:
    from matplotlib.text import Annotation, Text

    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    anns = [t for t in ax.texts if isinstance(t, Annotation)]
    # the text's own box (an Annotation's box also spans its leader line, which may cross a label)
    return ax, [(a, Text.get_window_extent(a, renderer)) for a in anns], renderer


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_segment_map_labels_never_overlap_each_other_or_other_bubbles(seed, tmp_path):
    """Five segments with long names at random, crowded positions: after saving, no two label boxes
    overlap, no label covers another segment's bubble, every label stays inside the axes, and
    each label carries the segment's whole name (wrapped, never cut)."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.30, 0.25, 0.2, 0.15, 0.1])
    z = np.repeat(np.eye(5), (shares * 100).astype(int), axis=0)
    names = ["Defining Speed Seekers who prepare effort estimates", "Planning Risk Reducers", "Coordinating Speed Seekers",
             "Tracking Risk Reducers on Microsoft Project", "Preparing Effort Estimators"]
    r = SegmentationResult.from_memberships("kmeans", z, centers=np.zeros((5, 1)), feature_names=("a",)).with_labels(names)
    dims = pd.DataFrame(rng.uniform(4, 9, size=(5, 2)), columns=["plan", "coordinate"], index=range(1, 6))
    fig = plots.plot_segment_map(r, dims, ["plan", "coordinate"], path=tmp_path / "map.png")
    ax, boxes, _ = _label_boxes(fig)
    assert len(boxes) == 5
    frame = ax.get_window_extent()
    centres = ax.transData.transform(dims.to_numpy())
    radii = np.sqrt(4000 * shares / np.pi) * fig.dpi / 72
    for i, (ann, box) in enumerate(boxes):
        assert " ".join(ann.get_text().split()) == f"{i + 1}. {names[i]} ({shares[i]:.0%})"
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        for j, (_, other) in enumerate(boxes[i + 1:], start=i + 1):
            assert not box.overlaps(other), (i, j)
        for j in range(5):
            if j != i:
                nx, ny = np.clip(centres[j, 0], box.x0, box.x1), np.clip(centres[j, 1], box.y0, box.y1)
                assert np.hypot(centres[j, 0] - nx, centres[j, 1] - ny) >= radii[j] - 0.5, (i, j)


def test_heatmap_and_shares_wrap_long_labels_at_words_instead_of_cutting():
    statement = "Minimize the likelihood that a slipping task goes unnoticed by the project lead until the deadline"
    names = ["Preparing Effort Estimators", "Tracking Risk Reducers on Microsoft Project"]
    means = pd.DataFrame({"o1": [12.0, 4.0]}, index=[1, 2])
    ax = plots.plot_opportunity_heatmap(means, outcomes=pd.DataFrame({"statement": [statement]}, index=["o1"]),
                                        names=names).axes[0]
    ylab = ax.get_yticklabels()[0].get_text()
    assert "\n" in ylab and " ".join(ylab.split()) == f"o1: {statement}" and "…" not in ylab
    xlabs = [" ".join(t.get_text().split()) for t in ax.get_xticklabels()]
    assert xlabs == ["1. Preparing Effort Estimators", "2. Tracking Risk Reducers on Microsoft Project"]
    assert all(word in {w for t in ax.get_xticklabels() for w in t.get_text().split()} for word in ("Microsoft", "Effort"))
    z = np.eye(2)[[0, 1, 1]]
    r = SegmentationResult.from_memberships("kmeans", z, centers=np.zeros((2, 1)), feature_names=("a",)).with_labels(names)
    shares_ax = plots.plot_shares(r).axes[0]
    assert [" ".join(t.get_text().split()) for t in shares_ax.get_yticklabels()] == xlabs


def test_landscape_outcome_labels_do_not_overlap(tmp_path):
    """Twelve outcomes in a tight cluster (ids would print over each other at a fixed offset)."""
    rng = np.random.default_rng(3)
    imp, sat = 5 + rng.uniform(-0.6, 0.6, 12), 2 + rng.uniform(-0.6, 0.6, 12)
    land = pd.DataFrame({"outcome": [f"o{i:02d}" for i in range(12)], "importance": imp, "satisfaction": sat,
                         "opportunity": imp + np.maximum(imp - sat, 0)})
    fig = plots.plot_landscape(land, path=tmp_path / "land.png")
    ax, boxes, renderer = _label_boxes(fig)
    assert sorted(a.get_text() for a, _ in boxes) == sorted(land["outcome"])
    legend = ax.get_legend().get_window_extent(renderer)
    for i, (_, box) in enumerate(boxes):
        assert not box.overlaps(legend)
        assert all(not box.overlaps(other) for _, other in boxes[i + 1:])
