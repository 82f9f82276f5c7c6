"""Distal outcomes: BCH / ML three-step recovery of planted differences, the naive estimate's bias,
the classification error matrix, intervals and messages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment

from latentseg.decide.distal import (
    align_to_result,
    bch_weights,
    classification_error_matrix,
    distal,
    weighted_means,
)
from latentseg.errors import ConfigError, FitError, SurveyError
from latentseg.result import SegmentationResult

PIS = np.array([0.45, 0.35, 0.20])
MU = np.array([10.0, 6.0, 2.0])  # planted distal means by true segment
P_VD = np.array([0.6, 0.3, 0.1])  # planted share "very disappointed"


def _overlapping(n: int, seed: int, sep: float = 1.6):
    """Two-dimensional spherical mixture; memberships are the exact posteriors under the truth,
    so the segments overlap (relative entropy about 0.4) but the model is right."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [sep, 0.0], [0.0, sep]])
    cls = rng.choice(3, size=n, p=PIS)
    x = centers[cls] + rng.normal(size=(n, 2))
    ll = np.stack([np.log(PIS[j]) + stats.norm.logpdf(x - centers[j]).sum(axis=1) for j in range(3)], axis=1)
    z = np.exp(ll - ll.max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    r = SegmentationResult.from_memberships("gmm", z, centers=centers, feature_names=("a", "b"))
    # canonical order is by estimated share; map true classes to result segments
    match = np.argmax(r.memberships.T @ np.eye(3)[cls], axis=0)  # true class -> result segment index
    y = MU[cls] + rng.normal(scale=2.0, size=n)
    pmf = np.where(rng.random(n) < P_VD[cls], "very disappointed", "not very disappointed")
    df = pd.DataFrame({"nps": y, "pmf": pmf}, index=r.respondent_ids)
    mu_seg = np.empty(3)
    p_seg = np.empty(3)
    mu_seg[match] = MU
    p_seg[match] = P_VD
    return r, df, mu_seg, p_seg


@pytest.fixture(scope="module")
def overlapping():
    return _overlapping(3000, seed=0)


def test_classification_error_matrix_by_hand():
    z = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    d = classification_error_matrix(z)
    # modal: W = [1, 2, 1]; D[k, s] = sum_i z_ik [W_i = s] / sum_i z_ik
    expected = np.array([[0.9 + 0.6, 0.2], [0.1 + 0.4, 0.8]]) / np.array([[1.7], [1.3]])
    np.testing.assert_allclose(d, expected)
    dp = classification_error_matrix(z, "proportional")
    np.testing.assert_allclose(dp, (z.T @ z) / z.sum(axis=0)[:, None])
    np.testing.assert_allclose(classification_error_matrix(np.eye(3)), np.eye(3))
    w = bch_weights(z)
    np.testing.assert_allclose(w, np.eye(2)[[0, 1, 0]] @ np.linalg.inv(d))
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_weighted_means_and_sandwich_match_direct_formula(rng):
    y = rng.normal(size=50)
    w = rng.random((50, 2))
    m, cov, size = weighted_means(y, w)
    for j in range(2):
        mj = np.sum(w[:, j] * y) / np.sum(w[:, j])
        assert m[j, 0] == pytest.approx(mj)
        psi = w[:, j] * (y - mj) / np.sum(w[:, j])
        assert cov[j, j] == pytest.approx(np.sum(psi**2) * 50 / 49)
    np.testing.assert_allclose(size, w.sum(axis=0))


def test_bch_recovers_planted_means_and_naive_modal_is_attenuated(overlapping):
    r, df, mu_seg, _ = overlapping
    from latentseg._stats import relative_entropy

    assert relative_entropy(r.memberships) < 0.6  # the segments really overlap
    res = distal(r, df, ["nps"], method="bch")
    t = res.table.set_index("segment").sort_index()
    est, se, naive = t["estimate"].to_numpy(), t["se"].to_numpy(), t["naive_estimate"].to_numpy()
    assert np.all(np.abs(est - mu_seg) < 3.5 * se), (est, mu_seg, se)
    assert np.all(np.abs(est - mu_seg) < 0.6)
    assert np.all((t["lower"] <= mu_seg) & (mu_seg <= t["upper"]))
    overall = float(df["nps"].mean())
    # naive: every segment pulled toward the overall mean, the extremes by more than 1 point
    assert np.all(np.abs(naive - overall) < np.abs(mu_seg - overall) + 0.1)
    hi, lo = np.argmax(mu_seg), np.argmin(mu_seg)
    assert mu_seg[hi] - naive[hi] > 1.0 and naive[lo] - mu_seg[lo] > 1.0
    assert np.ptp(naive) < 0.75 * np.ptp(mu_seg) < np.ptp(est)


def test_ml_three_step_recovers_planted_means(overlapping):
    r, df, mu_seg, _ = overlapping
    t = distal(r, df, ["nps"], method="ml").table.set_index("segment").sort_index()
    assert np.all(np.abs(t["estimate"].to_numpy() - mu_seg) < 3.5 * t["se"].to_numpy())
    assert np.all(np.abs(t["estimate"].to_numpy() - mu_seg) < 0.4)


@pytest.mark.parametrize("method", ["bch", "ml"])
def test_very_disappointed_share_recovered_with_correction(overlapping, method):
    r, df, _, p_seg = overlapping
    res = distal(r, df, ["pmf"], method=method)
    t = res.table[res.table["category"] == "very disappointed"].set_index("segment").sort_index()
    assert (t["kind"] == "proportion").all()
    assert np.all(np.abs(t["estimate"].to_numpy() - p_seg) < 0.06)
    assert np.ptp(t["naive_estimate"]) < 0.8 * np.ptp(p_seg)
    test = res.tests.set_index("column").loc["pmf"]
    assert test["df"] == 2 and test["p_value"] < 1e-6


def test_end_to_end_with_fitted_gmm_recovers_distal_and_shows_naive_bias():
    from latentseg.models import fit
    from latentseg.research.simulate import simulate_gaussian_mixture

    x, seg = simulate_gaussian_mixture(2000, k=3, d=2, separation=2.2, covariance="spherical", random_seed=1)
    r = fit(x, "gmm", 3, covariance="EII", n_init=3, random_seed=1)
    ct = pd.crosstab(r.assignment, seg).reindex(index=[1, 2, 3], columns=[1, 2, 3], fill_value=0).to_numpy()
    _, true_of_seg = linear_sum_assignment(-ct)
    mu = np.array([2.0, 6.0, 10.0])
    y = mu[seg - 1] + np.random.default_rng(1).normal(scale=2.0, size=len(seg))
    t = distal(r, pd.DataFrame({"y": y}, index=r.respondent_ids), ["y"]).table.sort_values("segment")
    truth = mu[true_of_seg]
    assert np.max(np.abs(t["estimate"].to_numpy() - truth)) < 0.5
    assert abs(np.ptp(t["estimate"]) - np.ptp(truth)) < 0.1 * np.ptp(truth)
    assert np.ptp(t["naive_estimate"]) < 0.75 * np.ptp(truth)


def test_wald_test_rejects_planted_difference_and_not_a_null_one(overlapping):
    r, df, _, _ = overlapping
    null = pd.DataFrame({"noise": np.random.default_rng(5).normal(size=r.n)}, index=r.respondent_ids)
    res = distal(r, df.join(null), ["nps", "noise"])
    tests = res.tests.set_index("column")
    assert tests.loc["nps", "p_value"] < 1e-10 and tests.loc["nps", "df"] == 2
    assert tests.loc["noise", "p_value"] > 0.05
    assert np.isfinite(tests.loc["noise", "naive_p_value"])


def test_bch_interval_coverage_near_nominal():
    hits = []
    for rep in range(60):
        r, df, mu_seg, _ = _overlapping(500, seed=1000 + rep)
        t = distal(r, df, ["nps"]).table.set_index("segment").sort_index()
        hits.append(((t["lower"] <= mu_seg) & (mu_seg <= t["upper"])).to_numpy())
    coverage = np.mean(hits, axis=0)
    assert np.all(coverage >= 0.85), coverage


def test_modal_and_proportional_methods_are_the_plain_weighted_means(overlapping):
    r, df, _, _ = overlapping
    y = df["nps"].to_numpy()
    modal = distal(r, df, ["nps"], method="modal").table.sort_values("segment")
    direct = [y[r.assignment == j].mean() for j in (1, 2, 3)]
    np.testing.assert_allclose(modal["estimate"], direct)
    np.testing.assert_allclose(modal["estimate"], modal["naive_estimate"])
    prop = distal(r, df, ["nps"], method="proportional").table.sort_values("segment")
    np.testing.assert_allclose(prop["estimate"], (r.memberships.T @ y) / r.memberships.sum(axis=0))


def test_missing_values_are_left_out_and_noted(overlapping):
    r, df, _, _ = overlapping
    d2 = df.copy()
    d2.loc[d2.index[:10], "nps"] = np.nan
    res = distal(r, d2, ["nps"])
    assert any("10 respondents" in n for n in res.notes)
    assert np.isfinite(res.table["estimate"]).all()


def test_to_dict_is_json(overlapping):
    r, df, _, _ = overlapping
    d = distal(r, df, ["nps", "pmf"]).to_dict()
    text = json.dumps(d)
    assert '"method": "bch"' in text and len(d["estimates"]) == 3 + 2 * 3


def test_ids_are_matched_as_text_and_missing_ones_named():
    z = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    r = SegmentationResult.from_memberships("gmm", z, centers=np.eye(2), feature_names=("a", "b"),
                                            respondent_ids=[11, 12, 13])
    frame = pd.DataFrame({"x": [3.0, 2.0, 1.0]}, index=["13", "12", "11"])
    assert align_to_result(r, frame)["x"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(SurveyError, match=r"no rows for 1 of the model's respondents: ids \[13\]"):
        align_to_result(r, frame.iloc[:2].set_axis([12, 11]), what="table")


def test_bad_input_messages(overlapping):
    r, df, _, _ = overlapping
    with pytest.raises(ConfigError, match="method must be one of bch, ml, modal, proportional; got 'naive'"):
        distal(r, df, ["nps"], method="naive")
    with pytest.raises(ConfigError, match="ml_shares must be 'free' or 'fixed'; got 'held'"):
        distal(r, df, ["nps"], method="ml", ml_shares="held")
    with pytest.raises(ConfigError, match=r"Distal columns \['churn'\] are not in the table"):
        distal(r, df, ["churn"])
    few = df.copy()
    few["nps"] = np.nan
    few.loc[few.index[:3], "nps"] = 1.0
    with pytest.raises(SurveyError, match="Distal column 'nps' has only 3 observed values; need at least 6"):
        distal(r, few, ["nps"])


def test_bch_refuses_a_segment_that_is_nobodys_modal_segment():
    z = np.array([[0.6, 0.4], [0.7, 0.3], [0.55, 0.45], [0.8, 0.2]])
    r = SegmentationResult.from_memberships("gmm", z, centers=np.eye(2), feature_names=("a", "b"))
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0]}, index=r.respondent_ids)
    with pytest.raises(FitError, match=r"segments \[2\] are nobody's"):
        distal(r, df, ["y"])
    # the membership-weighted estimate needs no inverse
    assert len(distal(r, df.assign(y2=[1.0, 2.5, 3.0, 4.5]), ["y2"], method="proportional").table) == 2


def test_bch_and_ml_match_stepmix_on_the_same_memberships():
    """Peer check: StepMix 3.0's BCH (same D, rows of D^-1) and ML correction (segment shares held
    at step 1, so ``ml_shares="fixed"``) give the same distal means from the same memberships."""
    import warnings

    stepmix = pytest.importorskip("stepmix.stepmix")
    from stepmix.corrections import compute_log_emission_pm

    from latentseg.research.simulate import simulate_gaussian_mixture

    x, seg = simulate_gaussian_mixture(600, k=3, d=2, separation=2.2, covariance="spherical", random_seed=1)
    y = np.array([2.0, 6.0, 10.0])[seg - 1] + np.random.default_rng(1).normal(scale=2.0, size=len(seg))
    sm = stepmix.StepMix(n_components=3, n_steps=3, measurement="gaussian_diag", structural="gaussian_diag",
                         correction="BCH", random_state=1, n_init=1, progress_bar=0, abs_tol=1e-12, max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm.fit(x.to_numpy(), y[:, None])
        their_bch = sm.get_parameters()["structural"]["means"][:, 0].copy()
        z = sm.predict_proba_class(x.to_numpy())
        sm.em(x.to_numpy(), y[:, None], freeze_measurement=True, log_emission_pm=compute_log_emission_pm(z, "modal"))
        their_ml = sm.get_parameters()["structural"]["means"][:, 0]
    r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((3, 1)), feature_names=("f",))
    # result segment j is StepMix class order[j] (canonical order relabels by share)
    order = [int(np.argmin(np.abs(r.memberships[:, [j]] - z).sum(axis=0))) for j in range(3)]
    frame = pd.DataFrame({"y": y}, index=r.respondent_ids)
    ours_bch = distal(r, frame, ["y"]).table.sort_values("segment")["estimate"].to_numpy()
    ours_ml = distal(r, frame, ["y"], method="ml", ml_shares="fixed").table.sort_values("segment")["estimate"]
    np.testing.assert_allclose(ours_bch, their_bch[order], atol=1e-10)
    np.testing.assert_allclose(ours_ml.to_numpy(), their_ml[order], atol=1e-3)
    # free shares (Vermunt 2010) is a different estimator, close to the fixed one here
    free = distal(r, frame, ["y"], method="ml").table.sort_values("segment")["estimate"].to_numpy()
    assert np.max(np.abs(free - ours_ml.to_numpy())) < 0.5
