"""Profiles: segment means against the truth, effects by direct computation, defining outcomes
recovered, draft names unique and never "Segment 1", overrides and messages."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from latentseg.errors import ConfigError, SurveyError
from latentseg.decide.profiling import EXTREMELY_UNDERSERVED, UNDERSERVED, profile
from latentseg.result import SegmentationResult

GENERIC = re.compile(r"^\s*(segment|cluster|group)\s*([0-9]+|[A-Z])\b", re.I)


def _opportunity(survey) -> pd.DataFrame:
    from latentseg.prepare.scoring import opportunity_scores

    return opportunity_scores(survey)


@pytest.fixture(scope="module")
def fitted():
    from latentseg.models import fit
    from latentseg.research.simulate import simulate_survey

    survey, truth = simulate_survey(800, n_outcomes=18, n_segments=4, random_seed=3)
    scores = _opportunity(survey)
    result = fit(scores, "gmm", 4, n_init=3, random_seed=1)
    ct = pd.crosstab(result.assignment, truth.segment.to_numpy()).to_numpy()
    _, true_of = linear_sum_assignment(-ct)
    return survey, truth, scores, result, true_of + 1


def test_segment_means_recover_true_centers_and_underserved_counts(fitted):
    survey, truth, scores, result, true_of = fitted
    p = profile(result, scores, survey.outcomes)
    for j in range(1, 5):
        centers = truth.centers.loc[true_of[j - 1]]
        means = p.means.loc[j, centers.index]
        assert np.max(np.abs(means - centers)) < 1.0
        clear = (centers - UNDERSERVED).abs() > 1.0  # outcomes not on the threshold's edge
        assert ((means[clear] >= UNDERSERVED) == (centers[clear] >= UNDERSERVED)).all()
        assert p[j].n_underserved == int((means >= UNDERSERVED).sum())


def test_defining_outcomes_are_the_planted_underserved_ones(fitted):
    survey, truth, scores, result, true_of = fitted
    p = profile(result, scores, survey.outcomes, top=4)
    for j in range(1, 5):
        planted = set(truth.underserved[int(true_of[j - 1])])
        defining = p[j].defining_outcomes
        assert len(defining) == 4
        assert len(planted & set(defining)) >= 3, (j, defining, planted)
        assert defining[0] in planted
        assert set(p[j].top_underserved) <= set(p.means.columns[p.means.loc[j] >= UNDERSERVED])


def test_means_effects_and_pooled_sd_by_direct_computation(rng):
    z = rng.dirichlet([2, 2], size=60)
    s = pd.DataFrame(rng.normal(9, 3, size=(60, 3)), columns=["a", "b", "c"])
    s.iloc[3, 1] = np.nan
    r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((2, 1)), feature_names=("f",),
                                            respondent_ids=s.index)
    p = profile(r, s, top=3)
    zz = r.memberships
    for o in ["a", "b", "c"]:
        x = s[o].to_numpy()
        ok = ~np.isnan(x)
        m = [(zz[ok, j] * x[ok]).sum() / zz[ok, j].sum() for j in range(2)]
        np.testing.assert_allclose(p.means[o], m)
        assert p.overall[o] == pytest.approx(np.nanmean(x))
        ss = sum((zz[ok, j] * (x[ok] - m[j]) ** 2).sum() for j in range(2))
        sd = np.sqrt(ss / (ok.sum() - 2))
        assert p.pooled_sd[o] == pytest.approx(sd)
        np.testing.assert_allclose(p.effects[o], (np.array(m) - np.nanmean(x)) / sd)


def test_draft_names_are_unique_descriptive_and_never_generic(fitted):
    survey, _, scores, result, _ = fitted
    p = profile(result, scores, survey.outcomes)
    assert len(set(p.handles)) == 4 and len(set(p.names)) == 4
    steps = set(survey.outcomes["job_step"])
    for seg in p.segments:
        assert not GENERIC.match(seg.handle) and not GENERIC.match(seg.name)
        assert 2 <= len(seg.handle.split()) <= 3
        assert seg.name.startswith("Underserved on ")
        assert seg.dominant_job_step in steps
        # the long name quotes the top statement of the dominant step
        assert any(st[1:].lower() in seg.name for st in survey.outcomes["statement"])
        assert seg.name_source == "draft"


def test_handle_vocabulary_from_job_step_and_metric():
    rng = np.random.default_rng(0)
    s = pd.DataFrame(rng.normal(7, 1, (90, 6)), columns=[f"o{i}" for i in range(6)])
    s.iloc[:30, 0] += 7
    s.iloc[30:60, 2] += 7
    s.iloc[60:, 4] += 7
    z = np.repeat(np.eye(3), 30, axis=0)
    outcomes = pd.DataFrame(
        {
            "statement": [
                "Minimize the time it takes to plan a sprint",
                "b",
                "Minimize the likelihood of missing a deadline",
                "d",
                "Minimize the cost of hosting reports",
                "f",
            ],
            "job_step": ["Plan the work", "Plan the work", "Execute", "Execute", "Report", "Report"],
        },
        index=s.columns,
    )
    r = SegmentationResult.from_memberships("gmm", z, centers=np.arange(3.0)[:, None], feature_names=("f",),
                                            respondent_ids=s.index)
    p = profile(r, s, outcomes, top=3)
    by_def = {seg.defining_outcomes[0]: seg for seg in p.segments}
    assert by_def["o0"].handle == "Planning Speed Seekers"
    assert by_def["o2"].handle == "Executing Risk Reducers"
    assert by_def["o4"].handle == "Reporting Cost Cutters"
    assert by_def["o0"].name == "Underserved on planning the work: minimize the time it takes to plan a sprint"


def test_colliding_handles_are_made_specific_and_well_served_named():
    rng = np.random.default_rng(1)
    s = pd.DataFrame(rng.normal(6, 1, (90, 4)), columns=["o1", "o2", "o3", "o4"])
    s.iloc[:30, 0] += 8
    s.iloc[30:60, 1] += 8
    z = np.repeat(np.eye(3), 30, axis=0)
    outcomes = pd.DataFrame(
        {
            "statement": [
                "Minimize the time it takes to find an invoice",
                "Minimize the time it takes to approve a payment",
                "Minimize the time it takes to x",
                "Minimize the time it takes to y",
            ],
            "job_step": ["Pay"] * 4,
        },
        index=s.columns,
    )
    r = SegmentationResult.from_memberships("gmm", z, centers=np.arange(3.0)[:, None], feature_names=("f",),
                                            respondent_ids=s.index)
    p = profile(r, s, outcomes, top=3)
    handles = {seg.defining_outcomes[0]: seg.handle for seg in p.segments if seg.n_underserved}
    assert handles == {"o1": "Paying Speed Seekers (invoice)", "o2": "Paying Speed Seekers (payment)"}
    well = [seg for seg in p.segments if seg.n_underserved == 0]
    assert len(well) == 1 and well[0].handle == "Well-Served Paying"
    assert well[0].name.startswith("Well served")
    assert "No defining outcome is underserved" in well[0].paragraph


def test_paragraph_states_size_interval_and_top_outcomes(fitted):
    survey, _, scores, result, _ = fitted
    p = profile(result, scores, survey.outcomes)
    seg = p[1]
    assert f"{seg.share:.0%} of respondents" in seg.paragraph
    assert result.interval_method in seg.paragraph
    assert p.statement(seg.defining_outcomes[0]) in seg.paragraph
    assert f"{seg.n_underserved} of 18 outcomes are underserved" in seg.paragraph


def test_names_override_from_config_keys(fitted):
    survey, _, scores, result, _ = fitted
    p = profile(result, scores, survey.outcomes, names={"2": "Dependency Hawks"})
    assert p[2].name == p[2].handle == "Dependency Hawks" and p[2].name_source == "config"
    assert p.apply(result).segment_labels[1] == "Dependency Hawks"
    with pytest.raises(ConfigError, match=r"keyed by segment number 1..4; got 7"):
        profile(result, scores, names={7: "x"})
    with pytest.raises(ConfigError, match="The name of segment 1 must be non-empty text"):
        profile(result, scores, names={1: " "})
    with pytest.raises(ConfigError, match=r"Segment names must be unique; \['A', 'a'\] is given to more than one"):
        profile(result, scores, names={1: "A", 2: "a"})


def test_without_outcome_table_ids_stand_in_and_json(fitted):
    _, _, scores, result, _ = fitted
    p = profile(result, scores)
    assert all(not GENERIC.match(h) for h in p.handles)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["thresholds"] == {"underserved": UNDERSERVED, "extremely_underserved": EXTREMELY_UNDERSERVED,
                               "min_effect": 0.2}
    assert len(d["segments"]) == 4 and len(d["segments"][0]["outcomes"]) == 18
    long = p.to_frame()
    assert long.shape[0] == 4 * 18 and set(long["defining"]) >= {0, 1, 2, 3}


def test_bad_input_messages(fitted):
    _, _, scores, result, _ = fitted
    with pytest.raises(SurveyError, match=r"The opportunity-score table has no rows for 3 of the model's respondents"):
        profile(result, scores.iloc[3:])
    with pytest.raises(SurveyError, match=r"Opportunity scores must be numeric; columns \['o01'\]"):
        profile(result, scores.assign(o01="high"))
    with pytest.raises(SurveyError, match=r"Outcomes \[o02\] have no scores"):
        profile(result, scores.assign(o02=np.nan))
    with pytest.raises(ConfigError, match="top must be a positive number of defining outcomes"):
        profile(result, scores, top=0)


def test_package_level_profile_is_callable_after_submodule_import(fitted):
    import latentseg as ls
    import latentseg.decide.profiling  # noqa: F401 - the module is named apart from the function

    survey, _, scores, result, _ = fitted
    p = ls.profile(result, scores, survey.outcomes)
    assert p.handles == profile(result, scores, survey.outcomes).handles


def test_result_fitted_on_factors_is_profiled_in_outcome_terms(fitted):
    from sklearn.decomposition import PCA

    from latentseg.models import fit

    survey, truth, scores, _, _ = fitted
    filled = scores.fillna(scores.mean())
    factors = pd.DataFrame(PCA(4, random_state=0).fit_transform(filled), index=scores.index,
                           columns=[f"F{i + 1}" for i in range(4)])
    result = fit(factors, "gmm", 4, n_init=3, random_seed=1)
    assert result.feature_names == ("F1", "F2", "F3", "F4")
    p = profile(result, scores, survey.outcomes)
    assert list(p.means.columns) == list(scores.columns)
    planted = {o for outs in truth.underserved.values() for o in outs}
    assert all(seg.defining_outcomes[0] in planted for seg in p.segments)
