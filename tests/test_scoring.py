"""Opportunity scores: the published examples, rescaling, missing ratings, the landscape, properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentseg.prepare import scoring
from latentseg.errors import SurveyError
from latentseg.prepare.scoring import (
    classify,
    opportunity_landscape,
    opportunity_scores,
    respondent_opportunity,
    top_box_threshold,
)
from latentseg.io.survey import Scale, Survey


def make_survey(imp, sat, imp_scale=(1, 5), sat_scale=(1, 10), profile=None, weight=None) -> Survey:
    imp = pd.DataFrame(np.asarray(imp, dtype=float))
    n, m = imp.shape
    ids = pd.Index([f"r{i}" for i in range(n)], name="respondent_id")
    cols = pd.Index([f"o{j}" for j in range(m)], name="outcome")
    imp = imp.set_axis(ids, axis=0).set_axis(cols, axis=1)
    sat = pd.DataFrame(np.asarray(sat, dtype=float), index=ids, columns=cols)
    outcomes = pd.DataFrame({"statement": [f"Minimize {c}" for c in cols], "job_step": "Plan"}, index=cols)
    return Survey(
        imp, sat, outcomes, Scale(*imp_scale), Scale(*sat_scale),
        profile=pd.DataFrame(profile or {}, index=ids),
        weight=None if weight is None else pd.Series(weight, index=ids, dtype=float),
        source="t.csv",
    )


# ----------------------------------------------------------------------------- published examples
def test_published_respondent_examples():
    # shared/reference: importance 9, satisfaction 3 -> 15; importance 9, satisfaction 9 -> 9
    assert respondent_opportunity(9.0, 3.0) == 15.0
    assert respondent_opportunity(9.0, 9.0) == 9.0
    s = make_survey([[9, 9]], [[3, 9]], imp_scale=(0, 10), sat_scale=(0, 10))
    assert opportunity_scores(s).loc["r0"].tolist() == [15.0, 9.0]


def test_published_aggregate_example():
    # shared/reference: top-2-box importance 74% and satisfaction 28% -> 7.4 + (7.4 - 2.8) = 12.0, underserved
    n = 50
    imp = np.where(np.arange(n) < 37, 5, 2)[:, None].repeat(2, axis=1)
    sat = np.where(np.arange(n) < 14, 10, 3)[:, None].repeat(2, axis=1)
    land = opportunity_landscape(make_survey(imp, sat))
    row = land.iloc[0]
    assert row["importance"] == pytest.approx(7.4)
    assert row["satisfaction"] == pytest.approx(2.8)
    assert row["opportunity"] == pytest.approx(12.0)
    assert row["class"] == "underserved"
    assert row["n_rated"] == n and row["statement"] == "Minimize o0" and row["job_step"] == "Plan"


# ----------------------------------------------------------------------------- respondent level
def test_both_scales_rescaled_to_0_10():
    # importance 1-5, satisfaction 1-10: 5 -> 10, 1 -> 0, 3 -> 5; 10 -> 10, 1 -> 0, 5.5 -> 5
    s = make_survey([[5, 1, 3, 5]], [[1, 10, 5.5, 10]])
    assert opportunity_scores(s).loc["r0"].tolist() == [20.0, 0.0, 5.0, 10.0]


def test_missing_either_rating_gives_nan():
    s = make_survey([[5, np.nan, 3]], [[np.nan, 4, 2]])
    out = opportunity_scores(s)
    assert np.isnan(out.loc["r0", "o0"]) and np.isnan(out.loc["r0", "o1"]) and out.loc["r0", "o2"] > 0
    assert out.index.equals(s.respondent_ids) and out.columns.tolist() == ["o0", "o1", "o2"]


def test_matches_the_formula_across_chunks(monkeypatch, rng):
    monkeypatch.setattr(scoring, "_CHUNK", 7)
    imp = rng.integers(1, 6, (50, 6)).astype(float)
    sat = rng.integers(0, 11, (50, 6)).astype(float)
    imp[rng.random(imp.shape) < 0.1] = np.nan
    s = make_survey(imp, sat, sat_scale=(0, 10))
    i10 = (imp - 1) * 2.5
    expected = i10 + np.maximum(i10 - sat, 0)
    np.testing.assert_allclose(opportunity_scores(s).to_numpy(), expected)


# ----------------------------------------------------------------------------- properties
ratings = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(imp=ratings, sat=ratings, d=st.floats(min_value=0.0, max_value=10.0))
def test_bounds_and_monotonicity(imp, sat, d):
    o = float(respondent_opportunity(imp, sat))
    assert 0.0 <= o <= 20.0
    assert o >= imp  # never below importance
    more_imp = min(imp + d, 10.0)
    more_sat = min(sat + d, 10.0)
    assert float(respondent_opportunity(more_imp, sat)) >= o  # non-decreasing in importance
    assert float(respondent_opportunity(imp, more_sat)) <= o  # non-increasing in satisfaction


@settings(max_examples=50, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 7)), min_size=1, max_size=30),
)
def test_survey_scores_stay_within_bounds(data):
    imp = np.array([[a] for a, _ in data], dtype=float)
    sat = np.array([[b] for _, b in data], dtype=float)
    s = make_survey(np.hstack([imp, imp]), np.hstack([sat, sat]), sat_scale=(1, 7))
    out = opportunity_scores(s).to_numpy()
    assert np.all((out >= 0) & (out <= 20))
    land = opportunity_landscape(s)
    assert ((land["opportunity"] >= 0) & (land["opportunity"] <= 20)).all()


# ----------------------------------------------------------------------------- landscape
def test_classes():
    assert classify([9.5, 7.4, 5, 3, 6], [2, 2.8, 5, 6, 5.5], [17, 12.0, 5, 3, 6.5]).tolist() == [
        "extremely underserved", "underserved", "appropriately served", "overserved", "appropriately served",
    ]
    assert classify([8.0], [2.0], [14.0]).tolist() == ["underserved"]
    assert classify([7.5], [0.0], [15.0]).tolist() == ["extremely underserved"]


@pytest.mark.parametrize(
    ("scale", "top_box", "threshold"),
    [((1, 5), 2, 4.0), ((1, 7), 2, 6.0), ((0, 10), 2, 9.0), ((1, 10), 2, 9.0), ((1, 5), 1, 5.0), ((0, 100), 2, 90.0)],
)
def test_top_box_thresholds(scale, top_box, threshold):
    assert top_box_threshold(Scale(*scale), top_box) == threshold


def test_landscape_top_two_box_on_original_scales():
    # importance 1-5: 4 and 5 count; satisfaction 0-10: 9 and 10 count (8 does not)
    imp = [[5, 3], [4, 3], [3, 5], [2, 5]]
    sat = [[8, 10], [9, 9], [10, 0], [0, 1]]
    land = opportunity_landscape(make_survey(imp, sat, sat_scale=(0, 10)))
    assert land["importance"].tolist() == [5.0, 5.0]
    assert land["satisfaction"].tolist() == [5.0, 5.0]
    assert land["class"].tolist() == ["appropriately served", "appropriately served"]
    one_box = opportunity_landscape(make_survey(imp, sat, sat_scale=(0, 10)), top_box=1)
    assert one_box["importance"].tolist() == [2.5, 5.0] and one_box["satisfaction"].tolist() == [2.5, 2.5]


def test_landscape_counts_rated_respondents_only():
    imp = [[5, 1], [np.nan, 1], [1, 1], [5, np.nan]]
    sat = [[1, 1], [1, np.nan], [np.nan, 1], [1, 1]]
    land = opportunity_landscape(make_survey(imp, sat))
    assert land.loc[0, "importance"] == pytest.approx(10 * 2 / 3)
    assert land[["n_rated", "n_importance", "n_satisfaction"]].values.tolist() == [[2, 3, 3], [2, 3, 3]]


def test_landscape_by_group_and_weights():
    imp = [[5, 1], [5, 1], [1, 1], [1, 5]]
    sat = [[1, 10], [1, 10], [10, 10], [10, 1]]
    profile = {"role": ["PM", "PM", "Eng", None]}
    s = make_survey(imp, sat, profile=profile, weight=[1, 1, 2, 4])
    by = opportunity_landscape(s, by="role", weighted=False)
    assert by.columns[:2].tolist() == ["group", "outcome"]
    pm = by[by["group"] == "PM"].set_index("outcome")
    assert pm.loc["o0", "opportunity"] == 20.0 and pm.loc["o0", "class"] == "extremely underserved"
    assert pm.loc["o1", "class"] == "overserved" and pm.loc["o1", "n_rated"] == 2
    assert set(by["group"]) == {"PM", "Eng", "(missing)"}
    weighted = opportunity_landscape(s)
    assert weighted.loc[0, "importance"] == pytest.approx(10 * 2 / 8)
    unweighted = opportunity_landscape(s, weighted=False)
    assert unweighted.loc[0, "importance"] == pytest.approx(5.0)


def test_landscape_by_unknown_column():
    with pytest.raises(SurveyError, match=r"t\.csv: cannot group by 'age': not a profile column; expected one of 'role'"):
        opportunity_landscape(make_survey([[1, 2]], [[1, 2]], profile={"role": ["PM"]}), by="age")
