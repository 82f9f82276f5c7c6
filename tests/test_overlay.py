"""Overlays: a demographic tied to the segments is found (p < 0.01, Cramér's V near the planted
strength), an unrelated one is not; crosstab arithmetic, the Monte-Carlo p-value, fingerprints."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment

from latentseg.errors import ConfigError, SurveyError
from latentseg.decide.overlay import (
    STRONG_P,
    cramers_v,
    cramers_v_from_joint,
    overlay,
)
from latentseg.result import SegmentationResult


def _opportunity(survey) -> pd.DataFrame:
    from latentseg.prepare.scoring import opportunity_scores

    return opportunity_scores(survey)


@pytest.fixture(scope="module")
def fitted():
    from latentseg.models import fit
    from latentseg.research.simulate import simulate_survey

    survey, truth = simulate_survey(800, n_outcomes=18, n_segments=4, demographic_strength=0.6, random_seed=3)
    result = fit(_opportunity(survey), "gmm", 4, n_init=3, random_seed=1)
    ct = pd.crosstab(result.assignment, truth.segment.to_numpy()).to_numpy()
    _, true_of = linear_sum_assignment(-ct)  # fitted segment j -> true segment true_of[j] + 1
    return survey, truth, result, true_of + 1


def test_tied_demographic_found_with_planted_strength_unrelated_one_not(fitted):
    survey, truth, result, _ = fitted
    bch = overlay(result, survey.profile, weighting="bch", random_seed=0)
    role, region = bch["role"], bch["region"]
    assert role.p_value < STRONG_P and role.strength == "strong"
    # the simulator plants P(level | segment) = s [typical] + (1 - s) / L; its implied V:
    assert role.effect == pytest.approx(truth.cramers_v["role"], abs=0.08)
    assert region.p_value > 0.05 and region.strength == "none" and region.effect < 0.12
    assert truth.cramers_v["region"] == 0.0
    # membership-proportional counts blur the table: V is attenuated relative to BCH
    prop = overlay(result, survey.profile, columns=["role"], random_seed=0)
    assert prop["role"].effect < role.effect
    assert prop["role"].p_value < STRONG_P
    assert "asymptotic" in prop["role"].p_method and "Monte-Carlo" in role.p_method


def test_cramers_v_from_joint_matches_simulator_formula():
    from latentseg.research.simulate import cramers_v_from_strength

    shares = np.array([0.34, 0.28, 0.22, 0.16])
    s, levels = 0.6, 5
    cond = np.full((4, levels), (1 - s) / levels)
    cond[np.arange(4), np.arange(4)] += s
    assert cramers_v_from_joint(shares[:, None] * cond) == pytest.approx(
        cramers_v_from_strength(s, shares, levels), rel=1e-9
    )
    assert cramers_v(np.array([[10, 0], [0, 10]])) == pytest.approx(1.0)


def test_crosstab_percentages_and_chi2_by_direct_computation(rng):
    z = rng.dirichlet([1, 1, 1], size=120)
    r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((3, 1)), feature_names=("f",))
    cats = rng.choice(["a", "b", "c", "d"], size=120)
    prof = pd.DataFrame({"tool": cats}, index=r.respondent_ids)
    ov = overlay(r, prof, random_seed=1)["tool"]
    onehot = (cats[:, None] == np.array(["a", "b", "c", "d"])[None, :]).astype(float)
    table = r.memberships.T @ onehot
    np.testing.assert_allclose(ov.table.to_numpy(), table)
    np.testing.assert_allclose(ov.row_pct.loc[[1, 2, 3]].sum(axis=1), 100.0)
    np.testing.assert_allclose(ov.col_pct.sum(axis=0), 100.0)
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    assert ov.statistic == pytest.approx(chi2)
    assert ov.effect == pytest.approx(np.sqrt(chi2 / (120 * 2)))
    assert ov.p_value == pytest.approx(stats.chi2.sf(chi2, 6))


def test_monte_carlo_p_value_matches_exact_permutation_distribution():
    assignment = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2])
    r = SegmentationResult.from_memberships(
        "kmeans", np.eye(2)[assignment - 1], centers=np.array([[1.0], [0.0]]), feature_names=("f",)
    )
    values = np.array(["x", "x", "x", "y", "z", "y", "z", "z", "y"])
    prof = pd.DataFrame({"c": values}, index=r.respondent_ids)
    ov = overlay(r, prof, weighting="modal", n_mc=20000, random_seed=4)["c"]
    assert ov.min_expected < 5 and "Monte-Carlo permutation" in ov.p_method and "20000" in ov.p_method
    # exact: every distinct arrangement of the values over the 9 respondents is equally likely
    seg = r.assignment
    cats = ["x", "y", "z"]

    def stat(v):
        t = np.array([[np.sum((seg == s) & (v == c)) for c in cats] for s in (1, 2)], dtype=float)
        e = np.outer(t.sum(1), t.sum(0)) / t.sum()
        return ((t - e) ** 2 / e).sum()

    observed = stat(values)
    arrangements = set(itertools.permutations(values.tolist()))
    exact = np.mean([stat(np.array(a)) >= observed - 1e-9 for a in arrangements])
    assert ov.statistic == pytest.approx(observed)
    assert ov.p_value == pytest.approx(exact, abs=0.012)


def test_same_seed_same_monte_carlo_p_value(fitted):
    survey, _, result, _ = fitted
    a = overlay(result, survey.profile, columns=["industry"], weighting="bch", n_mc=300, random_seed=9)
    b = overlay(result, survey.profile, columns=["industry"], weighting="bch", n_mc=300, random_seed=9)
    assert a["industry"].p_value == b["industry"].p_value


def test_numeric_column_means_intervals_and_kruskal(fitted):
    survey, truth, result, true_of = fitted
    ov = overlay(result, survey.profile, columns=["plan_price"], weighting="modal")["plan_price"]
    assert ov.kind == "numeric" and ov.test.startswith("Kruskal-Wallis")
    price = survey.profile["plan_price"].loc[result.respondent_ids].to_numpy()
    groups = [price[result.assignment == j] for j in (1, 2, 3, 4)]
    h, p = stats.kruskal(*groups)
    assert ov.statistic == pytest.approx(h) and ov.p_value == pytest.approx(p)
    means = ov.table.loc[[1, 2, 3, 4], "mean"].to_numpy()
    np.testing.assert_allclose(means, [g.mean() for g in groups])
    assert (ov.table["lower"] < ov.table["mean"]).all() and (ov.table["mean"] < ov.table["upper"]).all()
    # segment means track the planted segment means
    planted = truth.plan_price_mean.loc[true_of].to_numpy()
    assert np.corrcoef(means, planted)[0, 1] > 0.95


def test_fingerprints_name_each_segments_typical_role(fitted):
    survey, truth, result, true_of = fitted
    ov = overlay(result, survey.profile, weighting="bch", n_mc=200, random_seed=0)
    for j in range(1, 5):
        typical = truth.typical["role"].loc[true_of[j - 1]]
        roles = [f["value"] for f in ov.fingerprints[j] if f["column"] == "role"]
        assert roles and roles[0] == typical
        assert "region" not in {f["column"] for f in ov.fingerprints[j]}
        assert "role = " in ov.fingerprint_text(j)
    json.dumps(ov.to_dict())
    assert "strong: Cramér's V >= 0.3 and p < 0.01" in ov.thresholds


def test_diffuse_segment_fingerprint_text():
    z = np.repeat(np.eye(2), 30, axis=0)
    r = SegmentationResult.from_memberships("gmm", z, centers=np.eye(2), feature_names=("a", "b"))
    prof = pd.DataFrame({"r": ["a", "b"] * 30}, index=r.respondent_ids)
    ov = overlay(r, prof, random_seed=0)
    assert ov["r"].strength == "none"
    assert ov.fingerprint_text(1).startswith("demographically diffuse")


def test_low_level_numeric_is_categorical_and_kinds_override(fitted):
    survey, _, result, _ = fitted
    prof = survey.profile.assign(rating=np.arange(len(survey.profile)) % 3 + 1)
    ov = overlay(result, prof, columns=["rating", "plan_price"], kinds={"plan_price": "categorical"}, n_mc=50,
                 max_categories=1000)
    assert ov["rating"].kind == "categorical" and ov["plan_price"].kind == "categorical"


def test_bad_input_messages(fitted):
    survey, _, result, _ = fitted
    with pytest.raises(ConfigError, match="weighting must be one of proportional, modal, bch; got 'soft'"):
        overlay(result, survey.profile, weighting="soft")
    with pytest.raises(ConfigError, match=r"Overlay columns \['age'\] are not in the profile table"):
        overlay(result, survey.profile, columns=["age"])
    with pytest.raises(ConfigError, match="n_mc must be a positive number of shuffles; got 0"):
        overlay(result, survey.profile, n_mc=0)
    with pytest.raises(ConfigError, match="Column 'role' is not numeric"):
        overlay(result, survey.profile, columns=["role"], kinds={"role": "numeric"})
    with pytest.raises(SurveyError, match="The profile table has no rows for 5 of the model's respondents"):
        overlay(result, survey.profile.iloc[5:])


def test_high_cardinality_text_column_is_skipped_with_reason(fitted):
    survey, _, result, _ = fitted
    prof = survey.profile.assign(comment=[f"text {i}" for i in range(len(survey.profile))])
    ov = overlay(result, prof, columns=["role", "comment"], n_mc=50, random_seed=0)
    assert list(ov.columns) == ["role"]
    assert ov.skipped["comment"].startswith("800 distinct values (more than 30)")
    assert "comment" in ov.to_dict()["skipped"]
