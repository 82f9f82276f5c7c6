"""Segment map: assembled from profiles, overlays and sizing; the stated rule and its overrides;
JSON / CSV / Markdown exports; CSV formula injection neutralised."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from latentseg.errors import ConfigError
from latentseg.decide.overlay import overlay
from latentseg.decide.profiling import profile
from latentseg.result import SegmentationResult
from latentseg.decide.segmap import DefaultRule, segment_map
from latentseg.decide.sizing import size_segments


def _opportunity(survey) -> pd.DataFrame:
    from latentseg.prepare.scoring import opportunity_scores

    return opportunity_scores(survey)


@pytest.fixture(scope="module")
def pipeline():
    from latentseg.models import fit
    from latentseg.research.simulate import simulate_survey

    survey, truth = simulate_survey(800, n_outcomes=18, n_segments=4, demographic_strength=0.8, random_seed=7)
    scores = _opportunity(survey)
    result = fit(scores, "gmm", 4, n_init=3, random_seed=1)
    ct = pd.crosstab(result.assignment, truth.segment.to_numpy()).to_numpy()
    _, true_of = linear_sum_assignment(-ct)
    prof = profile(result, scores, survey.outcomes)
    ov = overlay(result, survey.profile, columns=["role", "company_size", "region"], n_mc=200, random_seed=0)
    sz = size_segments(result, tam=50_000, arpu_column="plan_price", data=survey.profile, profiles=prof)
    return survey, truth, result, true_of + 1, prof, ov, sz


def _toy(shares: list[float], under: list[int]):
    """A result with the given shares and a profile with the given underserved counts."""
    k, m = len(shares), max(max(under), 1) + 1
    counts = np.round(np.array(shares) * 1000).astype(int)
    z = np.repeat(np.eye(k), counts, axis=0)
    s = np.full((len(z), m), 5.0)
    seg = np.repeat(np.arange(k), counts)
    for j in range(k):
        s[seg == j, : under[j]] = 12.0
    s += np.random.default_rng(0).normal(0, 0.1, size=s.shape)
    scores = pd.DataFrame(s, columns=[f"o{i}" for i in range(m)])
    r = SegmentationResult.from_memberships("gmm", z, centers=np.arange(k, 0, -1.0)[:, None] + np.array(shares)[:, None],
                                            feature_names=("f",), respondent_ids=scores.index)
    return r, profile(r, scores, top=3)


def test_map_assembles_names_sizes_outcomes_fingerprints_and_current_solution(pipeline):
    survey, truth, result, true_of, prof, ov, sz = pipeline
    m = segment_map(result, profiles=prof, overlays=ov, sizing=sz, current_solution_column="current_tool",
                    profile_df=survey.profile)
    assert len(m.segments) == 4
    for j in range(1, 5):
        s = m[j]
        assert s["name"] == prof[j].name and s["handle"] == prof[j].handle
        assert s["share"] == pytest.approx(result.shares[j - 1])
        assert s["count"] == pytest.approx(sz.table.loc[j, "count"])
        assert s["revenue_lower"] <= s["revenue"] <= s["revenue_upper"]
        assert [o["outcome"] for o in s["top_underserved"]] == list(prof[j].top_underserved)
        assert all(o["segment_mean"] >= 10 for o in s["top_underserved"])
        assert any(t.startswith("role = " + truth.typical["role"].loc[true_of[j - 1]]) for t in s["fingerprint"])
        assert s["current_solution"] == truth.typical["current_tool"].loc[true_of[j - 1]]
        assert 0 < s["current_solution_pct"] <= 100
        assert s["recommendation"] in ("target", "monitor", "deprioritize") and s["reason"]
    d = json.loads(m.to_json())
    assert d["schema_version"] == 1 and d["rule"].startswith("target if share >= 15%")


def test_default_rule_branches():
    r, p = _toy([0.40, 0.25, 0.17, 0.12, 0.06], [4, 1, 2, 0, 5])
    m = segment_map(r, profiles=p)
    assert [s["n_underserved"] for s in m.segments] == [4, 1, 2, 0, 5]
    # 40% & 4 -> target; 25% & 1 -> monitor; 17% & 2 -> monitor; 12% & 0 -> deprioritize; 6% -> deprioritize
    assert m.recommendations == {1: "target", 2: "monitor", 3: "monitor", 4: "deprioritize", 5: "deprioritize"}
    assert m[4]["reason"] == "no underserved outcome" and m[5]["reason"].startswith("share 6% < 10%")
    # "or the largest number of underserved outcomes among segments"
    r2, p2 = _toy([0.5, 0.3, 0.2], [2, 1, 0])
    assert segment_map(r2, profiles=p2).recommendations == {1: "target", 2: "monitor", 3: "deprioritize"}
    assert "most underserved" in segment_map(r2, profiles=p2)[1]["reason"]


def test_rule_overrides_mapping_thresholds_and_callable():
    r, p = _toy([0.40, 0.25, 0.17, 0.12, 0.06], [4, 1, 2, 0, 5])
    m = segment_map(r, profiles=p, rule={"5": "target"})
    assert m.recommendations[5] == "target" and m[5]["reason"] == "set by the user"
    assert m.recommendations[1] == "target" and "Overridden by the user for segments [5]" in m.rule
    strict = segment_map(r, profiles=p, rule=DefaultRule(target_min_share=0.5))
    assert strict.recommendations[1] == "monitor" and "share >= 50%" in strict.rule

    def by_size(facts):
        """Target the two largest segments."""
        return "target" if facts["id"] <= 2 else "monitor"

    c = segment_map(r, profiles=p, rule=by_size)
    assert c.recommendations == {1: "target", 2: "target", 3: "monitor", 4: "monitor", 5: "monitor"}
    assert c.rule == "user rule by_size: Target the two largest segments."
    with pytest.raises(ConfigError, match="The recommendation rule returned 'maybe' for segment 1"):
        segment_map(r, profiles=p, rule=lambda f: "maybe")
    with pytest.raises(ConfigError, match="The recommendation for segment 2 must be one of target, monitor"):
        segment_map(r, profiles=p, rule={2: "later"})
    with pytest.raises(ConfigError, match=r"rule overrides name segments \[9\]; the segments are 1..5"):
        segment_map(r, profiles=p, rule={9: "target"})
    with pytest.raises(ConfigError, match="rule must be a mapping, a DefaultRule or a callable; got int"):
        segment_map(r, profiles=p, rule=3)


def test_csv_export_has_no_cell_starting_a_formula(pipeline, tmp_path):
    survey, _, result, _, _, ov, sz = pipeline
    scores = _opportunity(survey)
    evil = profile(result, scores, survey.outcomes, names={1: '=HYPERLINK("http://evil","x")', 2: "@calc", 3: "-1+2"})
    prof = survey.profile.assign(current_tool=np.where(np.arange(len(survey.profile)) % 2, "+tool", "=bad()"))
    m = segment_map(result, profiles=evil, overlays=ov, sizing=sz, current_solution_column="current_tool",
                    profile_df=prof)
    text = m.to_csv(tmp_path / "map.csv")
    assert (tmp_path / "map.csv").read_text(encoding="utf-8") == text
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 4
    for row in rows:
        for cellv in row:
            assert not cellv.startswith(("=", "+", "-", "@", "\t", "\r")), cellv
    header = rows[0]
    names = [r[header.index("name")] for r in rows[1:]]
    assert names[:3] == ["'=HYPERLINK(\"http://evil\",\"x\")", "'@calc", "'-1+2"]
    # numbers stay numbers
    assert float(rows[1][header.index("share")]) == pytest.approx(result.shares[0])


def test_markdown_export_escapes_pipes_and_states_rule(pipeline):
    survey, _, result, _, _, ov, sz = pipeline
    p = profile(result, _opportunity(survey), survey.outcomes, names={1: "Fast | Furious"})
    md = segment_map(result, profiles=p, overlays=ov, sizing=sz).to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| Segment | Size | Top underserved outcomes")
    assert len([ln for ln in lines if ln.startswith("| ")]) == 5
    assert "**Fast \\| Furious**" in md
    assert all(ln.count(" | ") == 5 for ln in lines if ln.startswith("| ") and "---" not in ln)
    assert "Rule: target if share >= 15%" in md and "customers" in md


def test_without_overlays_or_sizing(pipeline):
    _, _, result, _, prof, _, _ = pipeline
    m = segment_map(result, profiles=prof)
    assert m[1]["fingerprint"] is None and m[1]["count"] is None and m[1]["current_solution"] is None
    assert "fingerprints not analysed" in m.notes[0]
    assert "not analysed" in m.to_markdown()
    frame = m.to_frame()
    assert list(frame.index) == [1, 2, 3, 4] and "top_underserved" in frame.columns


def test_input_checks(pipeline):
    survey, _, result, _, prof, _, _ = pipeline
    with pytest.raises(ConfigError, match="needs profile_df"):
        segment_map(result, profiles=prof, current_solution_column="current_tool")
    with pytest.raises(ConfigError, match="Current-solution column 'tool' is not in the profile table"):
        segment_map(result, profiles=prof, current_solution_column="tool", profile_df=survey.profile)
    r2, p2 = _toy([0.6, 0.4], [1, 0])
    with pytest.raises(ConfigError, match="The profiles have 2 segments; the result has 4"):
        segment_map(result, profiles=p2)


def test_package_level_segment_map_is_callable_after_submodule_import():
    import latentseg as ls
    import latentseg.decide.segmap  # noqa: F401 - the module is named apart from the function

    r, p = _toy([0.6, 0.4], [3, 0])
    assert ls.segment_map(r, profiles=p).recommendations == {1: "target", 2: "deprioritize"}


def test_current_solution_column_configured_or_found_by_name():
    import pandas as pd

    from latentseg.errors import ConfigError
    from latentseg.decide.segmap import find_current_solution_column

    df = pd.DataFrame(columns=["role", "incumbent_vendor", "tool"])
    assert find_current_solution_column(df) == "incumbent_vendor"
    assert find_current_solution_column(df, "tool") == "tool"
    assert find_current_solution_column(pd.DataFrame(columns=["role"])) is None
    with pytest.raises(ConfigError, match="The current-solution column 'nope' is not a profile column"):
        find_current_solution_column(df, "nope")
