"""A Python API that feels native in a notebook: short reprs, HTML tables for Jupyter (escaped,
warnings highlighted), pandas in / pandas out for predict_proba and assign, to_frame's index name."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from latentseg.choose.comparison import compare
from latentseg.choose.selection import select
from latentseg.decide.profiling import profile
from latentseg.decide.segmap import segment_map
from latentseg.deliver.artifacts import load_model, save_model
from latentseg.deliver.assign import assign
from latentseg.errors import ConfigError
from latentseg.io.survey import Scale, Survey
from latentseg.models import fit, predict_proba
from latentseg.prepare.cleaning import clean
from latentseg.result import SegmentationResult

N = 400
EVIL = "<script>alert('x')</script>"


def _scores(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Opportunity-like scores (0-20) with three planted segments, indexed by a named id."""
    rng = np.random.default_rng(seed)
    z = rng.choice(3, size=n, p=[0.45, 0.35, 0.20])
    centers = np.array([[14.0, 13.0, 5.0, 5.0], [5.0, 6.0, 14.0, 13.0], [6.0, 5.0, 6.0, 5.0]])
    X = np.clip(centers[z] + rng.normal(scale=1.5, size=(n, 4)), 0, 20)
    return pd.DataFrame(X, columns=["o1", "o2", "o3", "o4"],
                        index=pd.Index([f"c{i:04d}" for i in range(n)], name="customer"))


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return _scores()


@pytest.fixture(scope="module")
def result(scores: pd.DataFrame) -> SegmentationResult:
    return fit(scores, "gmm", 3, random_seed=1, n_init=2).with_labels([EVIL, "Speed & <b>", "Plain"])


@pytest.fixture(scope="module")
def selection(scores: pd.DataFrame):
    return select(scores, models=("kmeans", "gmm"), k=[2, 3, 4], random_seed=2, stability_subsamples=0,
                  fit_options={"gmm": {"n_init": 1}})


@pytest.fixture(scope="module")
def comparison(selection):
    return compare(selection.result("kmeans", 3), selection.result("gmm", 3))


@pytest.fixture(scope="module")
def seg_map(result: SegmentationResult, scores: pd.DataFrame):
    return segment_map(result, profiles=profile(result, scores, top=2, names={1: EVIL}))


@pytest.fixture(scope="module")
def cleaning_report():
    rng = np.random.default_rng(3)
    imp = pd.DataFrame(rng.integers(1, 6, (N, 4)).astype(float), columns=list("abcd"),
                       index=pd.Index(range(1, N + 1), name="rid"))
    imp.iloc[:12] = 3.0  # straight-liners
    sat = pd.DataFrame(rng.integers(1, 6, (N, 4)).astype(float), columns=imp.columns, index=imp.index)
    sat.iloc[20:25, :2] = np.nan  # unrated
    outcomes = pd.DataFrame({"statement": [f"{EVIL} {c}" for c in imp.columns], "job_step": ""}, index=imp.columns)
    survey = Survey(imp, sat, outcomes, Scale(1, 5), Scale(1, 5), source=f"{EVIL}.csv")
    with pytest.warns(Warning, match="only"):
        report = clean(survey, min_respondents=10_000)[1]  # a warning to show
    return report


OBJECTS = ["result", "selection", "comparison", "seg_map", "cleaning_report"]


class _Checker(HTMLParser):
    """Tags balanced, no script element."""

    VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Checker:
    p = _Checker()
    p.feed(html)
    p.close()
    assert not p.errors, p.errors
    assert not p.stack, f"unclosed tags {p.stack}"
    assert "script" not in p.tags
    return p


# ---------------------------------------------------------------------------------- repr
@pytest.mark.parametrize("name", OBJECTS)
def test_repr_is_short(name: str, request) -> None:
    obj = request.getfixturevalue(name)
    text = repr(obj)
    assert text.startswith("<" + type(obj).__name__)
    assert len(text.splitlines()) <= 10
    assert len(text) < 1000
    assert str(obj) == text  # print() shows the same summary, never the arrays


def test_result_repr_shows_shares_intervals_criterion_and_status(result: SegmentationResult) -> None:
    first = repr(result).splitlines()[0]
    assert first.startswith(f"<SegmentationResult gmm k=3 n={N}: ")
    lo, hi = result.share_lower[0] * 100, result.share_upper[0] * 100
    assert f"{result.shares[0] * 100:.0f}% [{lo:.0f}-{hi:.0f}]" in first
    assert "(95% Wilson)" in first and "; BIC " in first and first.endswith("; converged>")
    assert "memberships" not in repr(result) and "array(" not in repr(result)


def test_repr_of_many_segments_and_long_text_stays_short() -> None:
    k = 30
    z = np.eye(k)[np.arange(N) % k]
    r = SegmentationResult.from_memberships(
        "gmm", z, centers=np.zeros((k, 50)), feature_names=[f"outcome_{i}_" + "x" * 40 for i in range(50)],
        labels=tuple(f"segment {i} " + "y" * 100 for i in range(k)),
        diagnostics={"converged": False, "warnings": ["w " * 200] * 20},
    )
    text = repr(r)
    assert len(text.splitlines()) <= 10 and len(text) < 1000
    assert "NOT CONVERGED" in text


# ---------------------------------------------------------------------------------- HTML
@pytest.mark.parametrize("name", OBJECTS)
def test_repr_html_is_balanced_and_escapes_user_text(name: str, request) -> None:
    obj = request.getfixturevalue(name)
    html = obj._repr_html_()
    p = _parse(html)
    assert html.startswith('<div class="latentseg-repr">')
    assert "<script" not in html
    if name in ("result", "seg_map", "cleaning_report"):
        assert "&lt;script&gt;" in html
        assert EVIL in "".join(p.text)  # shown to the reader as text


def test_result_html_has_shares_and_intervals(result: SegmentationResult) -> None:
    html = result._repr_html_()
    for j in range(result.k):
        assert f"{result.shares[j] * 100:.1f}%" in html
        assert f"{result.share_lower[j] * 100:.1f}% - {result.share_upper[j] * 100:.1f}%" in html
    assert "95% Wilson" in html and "bic" in html
    assert "Speed &amp; &lt;b&gt;" in html
    assert "latentseg-badge-ok" in html and "latentseg-badge-bad" not in html


def test_non_converged_result_is_highlighted(result: SegmentationResult) -> None:
    bad = dataclasses.replace(result, diagnostics={**result.diagnostics, "converged": False,
                                                     "warnings": ["EM stopped at max_iter <200>"]})
    html = bad._repr_html_()
    _parse(html)
    assert "latentseg-badge-bad" in html and "not converged" in html
    assert "latentseg-badge-warn" in html and "max_iter &lt;200&gt;" in html
    assert "NOT CONVERGED" in repr(bad) and "warning: EM stopped" in repr(bad)


def test_selection_html_highlights_recommended_k_and_states_the_rule(selection) -> None:
    html = selection._repr_html_()
    _parse(html)
    assert selection.recommended_k is not None
    highlighted = [row for row in html.split("<tr")[1:] if row.startswith(' class="latentseg-highlight"')]
    assert len(highlighted) == len(selection.per_family)  # one per family
    assert all(f"<td>{selection.per_family[m]['recommended_k']}</td>" in "".join(highlighted) for m in selection.per_family)
    assert "Rule." in html and "among admissible fits" in html
    # a fit that did not converge is flagged
    table = selection.table.copy()
    table.loc[0, "converged"] = False
    flagged = dataclasses.replace(selection, table=table)
    assert "not converged" in flagged._repr_html_() and "latentseg-badge-bad" in flagged._repr_html_()
    assert "NOT CONVERGED" in repr(flagged)


def test_comparison_html_has_agreement_and_crosstab(comparison) -> None:
    html = comparison._repr_html_()
    _parse(html)
    assert f"agreement {comparison.agreement:.0%}" in html and f"ARI {comparison.ari:.2f}" in html
    for v in comparison.crosstab.to_numpy().ravel():
        assert f">{int(v):,}</td>" in html


def test_segment_map_and_cleaning_html(seg_map, cleaning_report) -> None:
    html = seg_map._repr_html_()
    for s in seg_map.segments:
        assert f"latentseg-badge-{s['recommendation']}" in html
        assert f"{s['share'] * 100:.0f}% [{s['share_lower'] * 100:.0f}-{s['share_upper'] * 100:.0f}]" in html
    html = cleaning_report._repr_html_()
    assert f"<td>{cleaning_report.counts['straightliner']}</td>" in html
    assert f"<td>{cleaning_report.counts['unrated']}</td>" in html
    assert "latentseg-badge-warn" in html  # the small-sample warning


# ---------------------------------------------------------------------------------- pandas in, pandas out
def test_predict_proba_keeps_the_frame_index(result: SegmentationResult, scores: pd.DataFrame) -> None:
    new = scores.iloc[[5, 1, 9]]
    p = predict_proba(result, new)
    assert isinstance(p, pd.DataFrame)
    assert p.index.equals(new.index) and p.index.name == "customer"
    assert p.columns.tolist() == ["p_1", "p_2", "p_3"]
    np.testing.assert_allclose(p.to_numpy(), result.memberships[[5, 1, 9]], atol=1e-10)
    p.index.name = "changed"
    assert new.index.name == "customer"  # the input is not touched
    arr = predict_proba(result, new.to_numpy())
    assert isinstance(arr, np.ndarray) and arr.shape == (3, 3)
    np.testing.assert_allclose(arr, p.to_numpy())


def test_assign_keeps_the_frame_index(tmp_path, result: SegmentationResult, scores: pd.DataFrame) -> None:
    path = tmp_path / "m"
    save_model(path, result, meta={"data": {"kind": "features"}})
    new = scores.iloc[10:14]
    out = assign(path, new)
    assert out.index.equals(new.index) and out.index.name == "customer"
    assert out.columns.tolist() == ["segment", "segment_name", "p_1", "p_2", "p_3"]
    assert out["segment"].tolist() == result.assignment[10:14].tolist()
    # an id column, when there is one, stays a column; the index is still the input's
    with_id = new.reset_index().rename(columns={"customer": "respondent_id"}).set_index(pd.Index(list("wxyz"), name="row_tag"))
    out2 = assign(path, with_id)
    assert out2.index.tolist() == list("wxyz") and out2.index.name == "row_tag"
    assert out2["respondent_id"].tolist() == new.index.tolist()
    with pytest.raises(ConfigError, match="needs a DataFrame"):
        assign(path, new.to_numpy())


def test_to_frame_keeps_the_index_name(tmp_path, result: SegmentationResult) -> None:
    frame = result.to_frame()
    assert frame.index.name == "customer" and frame.index.equals(result.respondent_ids)
    assert result.respondent_ids.name == "customer"  # not renamed in place
    path = tmp_path / "saved"
    save_model(path, result)
    loaded = load_model(path)
    assert loaded.result.respondent_ids.name == "customer"
    assert loaded.result.to_frame().index.name == "customer"
    unnamed = SegmentationResult.from_memberships("kmeans", np.eye(2)[[0, 1, 1]], centers=np.zeros((2, 1)),
                                                  feature_names=("x",))
    assert unnamed.to_frame().index.name == "respondent_id"  # the default, as before
    assert unnamed.respondent_ids.name is None


def test_pipeline_result_repr_is_short(tmp_path):
    from latentseg.pipeline import run_pipeline

    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "examples"
    res = run_pipeline(root / "project_survey.csv", root / "latentseg.toml", models=["gmm"], k=[3],
                       models_dir=tmp_path, report=False)
    text = repr(res)
    assert text.startswith("<PipelineResult 'project-survey': gmm k=3 n=385")
    assert len(text.splitlines()) <= 10 and len(text) < 1000
    assert "<table" in res._repr_html_()
