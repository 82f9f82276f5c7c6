"""Cleaning: the three rules, their thresholds, the report, the small-sample fallback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from latentseg.prepare.cleaning import CleaningReport, clean, manual_groups
from latentseg.errors import ConfigError, LatentsegWarning, SurveyError
from latentseg.io import read_survey
from latentseg.prepare.scoring import opportunity_scores
from latentseg.io.survey import Scale, Survey

NAN = np.nan


def make_survey(imp, sat, duration=None, weight=None, ids=None) -> Survey:
    imp = np.asarray(imp, dtype=float)
    sat = np.asarray(sat, dtype=float)
    n, m = imp.shape
    ids = pd.Index(ids if ids is not None else [f"r{i}" for i in range(1, n + 1)], name="respondent_id")
    cols = pd.Index([f"o{j}" for j in range(m)], name="outcome")
    outcomes = pd.DataFrame({"statement": list(cols), "job_step": ""}, index=cols)
    return Survey(
        importance=pd.DataFrame(imp, index=ids, columns=cols),
        satisfaction=pd.DataFrame(sat, index=ids, columns=cols),
        outcomes=outcomes,
        imp_scale=Scale(1, 5),
        sat_scale=Scale(1, 10),
        profile=pd.DataFrame({"role": [f"x{i % 2}" for i in range(n)]}, index=ids),
        duration=None if duration is None else pd.Series(duration, index=ids, dtype=float),
        weight=None if weight is None else pd.Series(weight, index=ids, dtype=float),
        source="test.csv",
    )


# 5 outcomes; rows: good, importance straight, satisfaction straight, both straight, speeder,
# unrated (2 of 5 missing > 20%), exactly 20% unrated (kept), straight + unrated, good,
# straight-looking but only one rating in the block (kept), good without duration
IMP = [
    [5, 4, 3, 2, 1],
    [4, 4, 4, 4, 4],
    [5, 4, 3, 2, 1],
    [3, 3, 3, 3, 3],
    [2, 3, 4, 5, 1],
    [5, NAN, 3, NAN, 1],
    [5, 4, NAN, 2, 1],
    [2, 2, 2, NAN, NAN],
    [1, 2, 3, 4, 5],
    [3, NAN, NAN, NAN, NAN],
    [2, 4, 1, 5, 3],
]
SAT = [
    [1, 9, 3, 7, 5],
    [2, 3, 9, 4, 1],
    [6, 6, 6, 6, 6],
    [7, 7, 7, 7, 7],
    [8, 1, 2, 3, 10],
    [1, 2, 3, 4, 5],
    [1, 2, 3, 4, 5],
    [1, 2, 3, 4, 5],
    [10, 9, 8, 7, 6],
    [3, 4, 5, 6, 7],
    [5, 4, 3, 2, 1],
]
DURATION = [300, 280, 320, 310, 60, 290, 305, 300, 315, 295, NAN]


def test_rules_and_reasons():
    s = make_survey(IMP, SAT, DURATION)
    kept, report = clean(s, max_unrated=0.2, min_respondents=0)
    reasons = dict(zip(report.excluded["respondent_id"], report.excluded["reasons"], strict=True))
    median = float(np.nanmedian(DURATION))
    assert reasons == {
        "r2": "straight-liner (importance)",
        "r3": "straight-liner (satisfaction)",
        "r4": "straight-liner (importance and satisfaction)",
        "r5": f"speeder (60 < 0.333 x median {median:.4g})",
        "r6": "unrated (2 of 5 outcomes missing a rating)",
        "r8": "straight-liner (importance); unrated (2 of 5 outcomes missing a rating)",
        "r10": "unrated (4 of 5 outcomes missing a rating)",
    }
    assert kept.respondent_ids.tolist() == ["r1", "r7", "r9", "r11"]
    assert report.counts == {"straightliner": 4, "speeder": 1, "unrated": 3}
    assert (report.n_in, report.n_out, report.n_excluded) == (11, 4, 7)
    assert report.excluded.set_index("respondent_id").loc["r8", ["straightliner", "speeder", "unrated"]].tolist() == [True, False, True]
    assert report.thresholds["median_duration"] == median
    # the kept survey carries its rows everywhere, in order
    assert kept.profile.index.tolist() == kept.duration.index.tolist() == ["r1", "r7", "r9", "r11"]
    assert kept.satisfaction.loc["r9"].tolist() == SAT[8]
    assert any("excluded 7 respondents" in n for n in kept.notes)


def test_thresholds_switch_rules_off():
    s = make_survey(IMP, SAT, DURATION)
    kept, report = clean(s, straightliners=False, speeder_fraction=0.0, max_unrated=1.0, min_respondents=0)
    assert report.n_excluded == 0 and kept is s
    assert report.counts == {"straightliner": 0, "speeder": 0, "unrated": 0}
    _, strict = clean(s, max_unrated=0.0, min_respondents=0)
    assert "r7" in set(strict.excluded["respondent_id"])  # 1 of 5 missing > 0%
    _, fast = clean(s, speeder_fraction=0.99, min_respondents=0)
    assert fast.counts["speeder"] == int((np.array(DURATION) < 0.99 * np.nanmedian(DURATION)).sum())


def test_without_duration_nobody_is_a_speeder():
    s = make_survey(IMP, SAT)
    _, report = clean(s, min_respondents=0)
    assert report.counts["speeder"] == 0 and report.thresholds["median_duration"] is None
    assert "speeders: 0 (no duration column)" in report.summary()


def test_report_forms():
    _, report = clean(make_survey(IMP, SAT, DURATION), min_respondents=0)
    assert isinstance(report, CleaningReport)
    frame = report.to_frame()
    assert frame.columns.tolist() == ["respondent_id", "reasons", "straightliner", "speeder", "unrated"]
    frame.loc[0, "reasons"] = "changed"
    assert report.excluded.loc[0, "reasons"] != "changed"
    d = report.to_dict()
    assert d["n_in"] == 11 and d["counts"]["unrated"] == 3 and d["excluded"][0] == {
        "respondent_id": "r2", "reasons": "straight-liner (importance)"
    }
    text = report.summary()
    assert text.startswith("Cleaning: 11 respondents in, 4 kept, 7 excluded.")
    assert "straight-liners: 4" in text and "unrated: 3 (more than 20% of outcomes missing a rating)" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.n_in = 3  # type: ignore[misc]


def test_small_sample_warns_and_points_at_manual_groups():
    s = make_survey(IMP, SAT, DURATION)
    with pytest.warns(LatentsegWarning, match=r"only 4 respondents remain after cleaning test\.csv \(fewer than 100\): "
                      r"algorithmic clustering is unstable at that size; .*manual_groups"):
        _, report = clean(s)
    assert report.warnings and "unstable" in report.warnings[0]


def test_no_respondent_left_names_the_rules():
    imp = [[3, 3, 3], [4, 4, 4], [2, NAN, NAN]]
    sat = [[1, 2, 3], [5, 5, 5], [1, 2, 3]]
    with pytest.raises(
        SurveyError,
        match=r"test\.csv: no respondents left after cleaning all 3: straight-liners removed 2, speeders 0, too many "
        r"unrated outcomes 1 \(respondents can be caught by several rules\)",
    ):
        clean(make_survey(imp, sat), min_respondents=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speeder_fraction": 1.0}, r"'speeder_fraction' must be a number in \[0\.0, 1\.0\); got 1\.0"),
        ({"max_unrated": -0.1}, r"'max_unrated' must be a number in \[0\.0, 1\.0\]; got -0\.1"),
        ({"min_respondents": -1}, r"'min_respondents' must be an integer >= 0; got -1"),
    ],
)
def test_bad_thresholds(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        clean(make_survey(IMP, SAT), **kwargs)


def test_clean_catches_exactly_the_planted_respondents_after_a_file_round_trip(tmp_path):
    simulate = pytest.importorskip("latentseg.research.simulate")
    survey, truth = simulate.simulate_survey(
        250, n_outcomes=12, n_segments=3, job_steps=3, straightliners=6, speeders=5, too_many_missing=4,
        missing_rate=0.1, random_seed=11,
    )
    p = tmp_path / "sim.csv"
    survey.to_frame().to_csv(p, index=False)
    read = read_survey(p, imp_scale=str(survey.imp_scale), sat_scale=str(survey.sat_scale))
    kept, report = clean(read)
    assert set(report.excluded["respondent_id"]) == set(truth.bad_ids)
    ex = report.excluded.set_index("respondent_id")
    for rule, column in (("straightliner", "straightliner"), ("speeder", "speeder"), ("too_many_missing", "unrated")):
        assert set(ex.index[ex[column].to_numpy(dtype=bool)]) == set(truth.bad[rule]), rule
    assert kept.respondent_ids.tolist() == list(truth.good_ids)


# ----------------------------------------------------------------------------- manual groups
def test_manual_groups_by_top_three():
    cols = list("abcdef")
    rows = {
        "r1": [18, 17, 16, 1, 1, 1],
        "r2": [15, 16, 17, 2, 2, 2],
        "r3": [14, 19, 12, 3, 1, 0],
        "r4": [1, 1, 2, 15, 16, 19],
        "r5": [0, 3, 1, 12, 18, 14],
        "r6": [9, NAN, 9, 9, 1, 1],  # tie between a, c, d and one missing: ties go to outcome order
        "r7": [NAN, NAN, NAN, NAN, 5, 5],  # fewer than three scored outcomes: left out
    }
    scores = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    groups = manual_groups(scores)
    assert groups["group"].tolist() == [1, 2, 3]
    assert groups.loc[0, "outcomes"] == ("b", "a", "c") and groups.loc[0, "respondents"] == ["r1", "r2", "r3"]
    assert groups.loc[1, "outcomes"] == ("e", "f", "d") and groups.loc[1, "n"] == 2
    assert groups.loc[2, "outcomes"] == ("a", "c", "d") and groups.loc[2, "respondents"] == ["r6"]
    assert groups["share"].tolist() == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert groups.loc[0, "mean_opportunity"] == pytest.approx(np.mean([18, 17, 16, 15, 16, 17, 14, 19, 12]))


def test_manual_groups_on_scores_and_bad_top():
    s = make_survey(IMP, SAT, DURATION)
    groups = manual_groups(opportunity_scores(s), top=2)
    assert groups["n"].sum() == 11 - 1  # r10 has a single scored outcome
    with pytest.raises(ConfigError, match=r"'top' \(6\) must not exceed the number of outcomes \(5\)"):
        manual_groups(opportunity_scores(s), top=6)
    with pytest.raises(ConfigError, match=r"'top' must be an integer >= 1; got 0"):
        manual_groups(opportunity_scores(s), top=0)
