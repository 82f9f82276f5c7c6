"""Finder: beats the majority baseline only where observables are tied to the segments; agrees
with an independently built scikit-learn pipeline; round-trips through JSON; readable rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentseg.errors import ConfigError, FitError, LatentsegWarning, SurveyError
from latentseg.decide.finder import Finder, finder
from latentseg.result import SegmentationResult


def _opportunity(survey) -> pd.DataFrame:
    from latentseg.prepare.scoring import opportunity_scores

    return opportunity_scores(survey)


def _fit(strength: float, seed: int):
    from latentseg.models import fit
    from latentseg.research.simulate import simulate_survey

    survey, truth = simulate_survey(
        600, n_outcomes=18, n_segments=4, demographic_strength=strength, random_seed=seed
    )
    return survey, fit(_opportunity(survey), "gmm", 4, n_init=3, random_seed=1)


@pytest.fixture(scope="module")
def tied():
    return _fit(0.6, 3)


@pytest.fixture(scope="module")
def untied():
    return _fit(0.0, 4)


@pytest.mark.parametrize("method", ["logistic", "tree"])
def test_beats_baseline_only_where_a_tie_exists(tied, untied, method):
    survey, result = tied
    role = finder(result, survey.profile, columns=["role"], method=method, random_seed=0)
    assert role.beats_baseline and role.cv_accuracy > role.baseline_accuracy + 0.2
    region = finder(result, survey.profile, columns=["region"], method=method, random_seed=0)
    assert not region.beats_baseline and region.cv_accuracy < region.baseline_accuracy + 0.05
    # strength 0: nothing observable is tied to the segments, plan price included
    survey0, result0 = untied
    none = finder(result0, survey0.profile, method=method, random_seed=0)
    assert not none.beats_baseline, none.summary()


def test_logistic_matches_an_independent_sklearn_pipeline(tied):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    survey, result = tied
    cols = ["role", "current_tool", "plan_price"]
    f = finder(result, survey.profile, columns=cols, random_seed=0)
    x = survey.profile.loc[result.respondent_ids, cols].astype({"role": object, "current_tool": object})
    ref = make_pipeline(
        ColumnTransformer([("n", StandardScaler(), ["plan_price"]),
                           ("c", OneHotEncoder(), ["role", "current_tool"])]),
        LogisticRegression(C=1.0, max_iter=5000),
    ).fit(x, result.assignment)
    ours = f.predict_proba(survey.profile.loc[result.respondent_ids]).to_numpy()
    np.testing.assert_allclose(ours, ref.predict_proba(x), atol=1e-5)
    assert f.coefficients().shape == (4, 1 + 5 + 6)


@pytest.mark.parametrize("method", ["logistic", "tree"])
def test_json_round_trip_predicts_identically(tied, method):
    survey, result = tied
    f = finder(result, survey.profile, method=method, random_seed=0)
    g = Finder.from_dict(json.loads(json.dumps(f.to_dict())))
    new = survey.profile.iloc[:50]
    pd.testing.assert_frame_equal(f.predict_proba(new), g.predict_proba(new))
    assert g.summary() == f.summary() and g.rules() == f.rules()
    pd.testing.assert_frame_equal(f.confusion, g.confusion)


def test_tree_rules_select_their_leaf_and_predict_its_segment(tied):
    survey, result = tied
    f = finder(result, survey.profile, method="tree", max_depth=3, random_seed=0)
    prof = survey.profile.loc[result.respondent_ids]
    pred = f.predict(prof)
    rules = f.rules()
    assert 2 <= len(rules) <= 8 and sum(r["n"] for r in rules) == result.n
    assert "|---" in f.rules_text
    for rule in rules:
        mask = np.ones(len(prof), dtype=bool)
        for c in rule["conditions"]:
            v = prof[c["column"]]
            if c["op"] == "==":
                mask &= (v == c["value"]).to_numpy()
            elif c["op"] == "!=":
                mask &= (v != c["value"]).to_numpy()
            elif c["op"] == "<=":
                mask &= (v <= c["value"]).to_numpy()
            else:
                mask &= (v > c["value"]).to_numpy()
        assert mask.sum() == rule["n"]
        assert (pred[mask] == rule["segment"]).all()
        assert rule["text"].startswith("IF ") and f"n = {rule['n']}" in rule["text"]


def test_confusion_matrix_and_accuracy_agree(tied):
    survey, result = tied
    f = finder(result, survey.profile, columns=["role", "company_size"], random_seed=0)
    conf = f.confusion.to_numpy()
    assert conf.sum() == result.n
    np.testing.assert_array_equal(conf.sum(axis=1), np.bincount(result.assignment, minlength=5)[1:])
    assert np.trace(conf) / result.n == pytest.approx(f.cv_accuracy)
    assert f.baseline_accuracy == pytest.approx(np.bincount(result.assignment).max() / result.n)
    assert f.cv_folds == 5 and len(f.cv_accuracy_folds) == 5


def test_same_seed_same_finder(tied):
    survey, result = tied
    a = finder(result, survey.profile, method="tree", random_seed=3).to_dict()
    b = finder(result, survey.profile, method="tree", random_seed=3).to_dict()
    assert a == b


def test_self_classification_question_as_predictor():
    rng = np.random.default_rng(2)
    seg = np.repeat([1, 2, 3], [50, 40, 30])
    z = np.eye(3)[seg - 1]
    r = SegmentationResult.from_memberships("gmm", z, centers=np.array([[3.0], [2.0], [1.0]]), feature_names=("f",))
    answer = np.where(rng.random(120) < 0.8, np.array(["speed", "accuracy", "cost"])[seg - 1],
                      rng.choice(["speed", "accuracy", "cost"], size=120))
    q = pd.DataFrame({"priority": answer, "age_band": rng.integers(1, 4, size=120)}, index=r.respondent_ids)
    f = finder(r, q, random_seed=0)
    assert f.beats_baseline and f.categories["age_band"] == ("1", "2", "3")
    assert f.predict(pd.DataFrame({"priority": ["cost", "speed"], "age_band": [2, 1]})).tolist() == [3, 1]


def test_binary_segmentation_and_missing_values():
    seg = np.repeat([1, 2], [40, 30])
    r = SegmentationResult.from_memberships("gmm", np.eye(2)[seg - 1], centers=np.array([[1.0], [0.0]]),
                                            feature_names=("f",))
    x = np.where(seg == 1, 10.0, 20.0) + np.random.default_rng(0).normal(size=70)
    x[[0, 45]] = np.nan
    df = pd.DataFrame({"tenure": x, "plan": np.where(seg == 1, "basic", None)}, index=r.respondent_ids)
    f = finder(r, df, random_seed=0)
    assert f.cv_accuracy > 0.95
    assert "<missing>" in f.categories["plan"]
    p = f.predict_proba(pd.DataFrame({"tenure": [9.0, np.nan], "plan": ["basic", None]}))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p.iloc[0, 0] > 0.9


def test_prediction_input_checks(tied):
    survey, result = tied
    f = finder(result, survey.profile, columns=["role", "plan_price"], random_seed=0)
    with pytest.raises(SurveyError, match=r"lacks the finder's predictor columns \['plan_price'\]"):
        f.predict(survey.profile[["role"]])
    bad = survey.profile.iloc[:3].assign(plan_price=["12", "cheap", "30"])
    with pytest.raises(SurveyError, match=r"Column 'plan_price' must be numeric; rows \[R0002\] are not"):
        f.predict(bad)
    with pytest.warns(LatentsegWarning, match=r"Categories not seen .* role: \['Astronaut'\]"):
        f.predict(survey.profile.iloc[:2].assign(role="Astronaut"))
    with pytest.raises(ConfigError, match="Not a latentseg finder of format version 1"):
        Finder.from_dict({"format": "other"})


def test_fit_input_checks(tied):
    survey, result = tied
    with pytest.raises(ConfigError, match="method must be one of logistic, tree; got 'forest'"):
        finder(result, survey.profile, method="forest")
    with pytest.raises(ConfigError, match="cv must be at least 2 folds; got 1"):
        finder(result, survey.profile, cv=1)
    with pytest.raises(ConfigError, match=r"Predictor columns \['age'\] are not in the table"):
        finder(result, survey.profile, columns=["age"])
    with pytest.raises(ConfigError, match=r"Predictor columns \['empty'\] have no values"):
        finder(result, survey.profile.assign(empty=np.nan), columns=["empty"])
    one = SegmentationResult.from_memberships("gmm", np.tile([0.6, 0.4], (10, 1)), centers=np.eye(2),
                                              feature_names=("a", "b"))
    with pytest.raises(FitError, match="at least two segments among the modal assignments"):
        finder(one, pd.DataFrame({"x": np.arange(10.0)}, index=one.respondent_ids))


def test_few_in_smallest_segment_reduces_folds_with_warning():
    seg = np.repeat([1, 2], [20, 3])
    r = SegmentationResult.from_memberships("gmm", np.eye(2)[seg - 1], centers=np.array([[1.0], [0.0]]),
                                            feature_names=("f",))
    df = pd.DataFrame({"g": np.where(seg == 1, "a", "b")}, index=r.respondent_ids)
    with pytest.warns(LatentsegWarning, match="cv reduced from 5 to 3 folds"):
        f = finder(r, df, random_seed=0)
    assert f.cv_folds == 3
