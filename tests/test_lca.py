"""Latent class models by EM (latentseg.models.lca): recovery, likelihood, counts, input checks."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import ConfigError, ConvergenceWarning, SurveyError
from latentseg.models import fit, predict_proba as dispatch_predict_proba
from latentseg.models.lca import _ordinal_logp, fit_lca, log_likelihood, predict_proba
from latentseg.prepare.encoding import OPPORTUNITY_LEVEL_NAMES, opportunity_levels
from latentseg.research.simulate import simulate_categorical

# module-scoped fits are shared by several tests: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("lca")


def _match(truth: np.ndarray, est: np.ndarray, k: int) -> np.ndarray:
    """perm[t] = estimated segment (0-based) best matching true class t (Hungarian on the crosstab)."""
    from scipy.optimize import linear_sum_assignment

    tab = np.zeros((k, k))
    np.add.at(tab, (truth - 1, est - 1), 1)
    rows, cols = linear_sum_assignment(-tab)
    return cols[np.argsort(rows)]


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def nominal():
    data, truth, probs = simulate_categorical(
        1200, 3, 10, 4, separation=0.6, shares=[0.5, 0.3, 0.2], random_seed=11
    )
    return data, truth, probs


@pytest.fixture(scope="module")
def nominal_fit(nominal):
    return fit_lca(nominal[0], 3, n_init=10, random_seed=5)


# ------------------------------------------------------------------------------------ recovery
def test_recovers_simulated_classes(nominal, nominal_fit):
    data, truth, probs = nominal
    res = nominal_fit
    assert adjusted_rand_score(truth, res.assignment) >= 0.9
    # canonical order: largest first, so segment j matches true class j (shares 0.5/0.3/0.2)
    perm = _match(truth, res.assignment, 3)
    assert perm.tolist() == [0, 1, 2]
    np.testing.assert_allclose(res.shares, [0.5, 0.3, 0.2], atol=0.04)
    np.testing.assert_allclose(res.params["probs"], probs, atol=0.08)
    assert res.diagnostics["converged"]
    assert res.diagnostics["n_starts"] == 10
    assert 1 <= res.diagnostics["n_best"] <= 10
    assert len(res.diagnostics["start_logliks"]) == 10
    assert max(res.diagnostics["start_logliks"]) == pytest.approx(res.criteria["loglik"], abs=1e-6)


def test_same_seed_same_result(nominal, nominal_fit):
    again = fit_lca(nominal[0], 3, n_init=10, random_seed=5)
    np.testing.assert_array_equal(again.memberships, nominal_fit.memberships)
    np.testing.assert_array_equal(again.params["probs"], nominal_fit.params["probs"])
    assert again.diagnostics["start_logliks"] == nominal_fit.diagnostics["start_logliks"]
    other = fit_lca(nominal[0], 3, n_init=10, random_seed=6)
    assert other.diagnostics["start_logliks"] != nominal_fit.diagnostics["start_logliks"]


def test_result_contents(nominal, nominal_fit):
    res = nominal_fit
    data = nominal[0]
    assert res.model == "lca" and res.k == 3 and res.n == 1200
    assert res.feature_names == tuple(data.columns)
    # the fitted log-likelihood is the log-likelihood of the data at the stored parameters
    assert log_likelihood(res, data) == pytest.approx(res.criteria["loglik"], abs=1e-8)
    np.testing.assert_allclose(predict_proba(res, data), res.memberships, atol=1e-12)
    np.testing.assert_allclose(dispatch_predict_proba(res, data), res.memberships, atol=1e-12)
    # centers are expected category values per segment x item
    vals = np.arange(4.0)
    np.testing.assert_allclose(res.centers, (res.params["probs"] * vals).sum(axis=2))
    # weights are the shares at the maximum (an EM fixed point)
    np.testing.assert_allclose(res.params["weights"], res.shares, atol=1e-6)
    # tidy item-probability table agrees with params
    tab = res.extras["item_probs"]
    assert list(tab.columns) == ["segment", "item", "category", "probability"]
    assert len(tab) == 3 * 10 * 4
    row = tab[(tab.segment == 2) & (tab.item == "item3") & (tab.category == "1")]
    assert row.probability.iloc[0] == pytest.approx(res.params["probs"][1, 2, 1])
    crit = res.criteria
    assert crit["bic"] == pytest.approx(-2 * crit["loglik"] + crit["n_params"] * math.log(1200))
    json.dumps(res.to_dict())


# ------------------------------------------------------------------------------------ parameter counts
def test_parameter_counts_follow_polca():
    rng = np.random.default_rng(3)
    n = 300
    lab = rng.integers(0, 3, n)  # three planted classes so every k converges quickly

    def item(levels: list, rate: float = 0.75) -> np.ndarray:
        own = np.array(levels, dtype=object)[lab % len(levels)]
        other = rng.choice(np.array(levels, dtype=object), n)
        return np.where(rng.random(n) < rate, own, other)

    df = pd.DataFrame(
        {
            "two": item(["no", "yes"]).astype(str),
            "three": item(["a", "b", "c"]).astype(str),
            "four": item([1, 2, 3, 4]).astype(int),
            "five": item([0, 1, 2, 3, 4]).astype(int),
        }
    )
    C = np.array([2, 3, 4, 5])
    for k in (1, 2, 3):
        res = fit_lca(df, k, n_init=2, random_seed=0)
        assert res.criteria["n_params"] == (k - 1) + k * int(np.sum(C - 1))
    res = fit_lca(df[["four", "five"]], 2, measurement="ordinal", n_init=2, random_seed=0)
    assert res.criteria["n_params"] == 1 + 2 * 2 + (4 - 2) + (5 - 2)
    binary = pd.DataFrame({f"b{j}": item([0, 1]).astype(int) for j in range(5)})
    res = fit_lca(binary, 2, measurement="binary", n_init=2, random_seed=0)
    assert res.criteria["n_params"] == 1 + 2 * 5


def test_binary_equals_categorical_on_two_category_items():
    data, truth, _ = simulate_categorical(400, 2, 10, 2, separation=0.7, random_seed=4)
    a = fit_lca(data, 2, measurement="binary", n_init=5, random_seed=1)
    b = fit_lca(data, 2, measurement="categorical", n_init=5, random_seed=1)
    assert a.criteria["loglik"] == pytest.approx(b.criteria["loglik"], abs=1e-6)
    assert adjusted_rand_score(truth, a.assignment) >= 0.9


# ------------------------------------------------------------------------------------ missing values
def _brute_loglik(codes: np.ndarray, weights: np.ndarray, probs: np.ndarray) -> float:
    """sum_i log sum_c w_c prod_{j observed} P(x_ij | c), by explicit loops."""
    total = 0.0
    for row in codes:
        lik = 0.0
        for c in range(len(weights)):
            p = weights[c]
            for j, x in enumerate(row):
                if x >= 0:
                    p *= probs[c, j, x]
            lik += p
        total += math.log(lik)
    return total


def test_missing_values_drop_out_of_the_likelihood():
    data, _, _ = simulate_categorical(60, 2, 4, 3, separation=0.7, missing_rate=0.2, random_seed=8)
    res = fit_lca(data, 2, n_init=4, random_seed=2)
    codes = data.to_numpy(dtype=float, na_value=-1).astype(int)
    assert (codes < 0).sum() > 0
    brute = _brute_loglik(codes, res.params["weights"], res.params["probs"])
    assert res.criteria["loglik"] == pytest.approx(brute, abs=1e-8)
    assert res.diagnostics["n_missing"] == int((codes < 0).sum())
    # a respondent's contribution equals the likelihood of its observed items only
    per = log_likelihood(res, data, per_respondent=True)
    i = int(np.flatnonzero((codes < 0).any(axis=1))[0])
    obs = codes[i] >= 0
    sub = data.loc[[data.index[i]]].copy()
    direct = math.log(
        sum(res.params["weights"][c] * np.prod(res.params["probs"][c, obs, codes[i, obs]]) for c in range(2))
    )
    assert per[i] == pytest.approx(direct, abs=1e-10)
    # and a new respondent with nothing observed gets the segment weights
    empty = sub.astype("Float64")
    empty.iloc[0] = pd.NA
    np.testing.assert_allclose(predict_proba(res, empty)[0], res.params["weights"])


def test_missing_values_m_step_is_the_observed_data_mle():
    """At the maximum the score is zero: EM with missing data converges to the observed-data MLE."""
    data, _, _ = simulate_categorical(200, 2, 4, 3, separation=0.7, missing_rate=0.15, random_seed=9)
    res = fit_lca(data, 2, n_init=4, random_seed=1, tol=1e-12)
    codes = data.to_numpy(dtype=float, na_value=-1).astype(int)
    w, p = res.params["weights"], res.params["probs"]

    def negll(theta: np.ndarray) -> float:
        lw = np.r_[0.0, theta[:1]]
        logits = np.concatenate([np.zeros((2, 4, 1)), theta[1:].reshape(2, 4, 2)], axis=2)
        ww = np.exp(lw - np.logaddexp.reduce(lw))
        pp = np.exp(logits - np.logaddexp.reduce(logits, axis=2, keepdims=True))
        return -_brute_loglik(codes, ww, pp)

    theta0 = np.r_[math.log(w[1] / w[0]), (np.log(p[..., 1:]) - np.log(p[..., :1])).ravel()]
    better = optimize.minimize(negll, theta0, method="L-BFGS-B")
    assert -better.fun - res.criteria["loglik"] < 1e-4


# ------------------------------------------------------------------------------------ ordinal
def _direct_ordinal_probs(beta: float, tau: np.ndarray) -> np.ndarray:
    """P(x = m) proportional to exp(m * beta - sum_{l < m} tau_l), written out."""
    scores = [m * beta - sum(tau[:m]) for m in range(len(tau) + 1)]
    e = np.exp(scores)
    return e / e.sum()


def test_ordinal_log_probabilities_pinned():
    beta = np.array([[[0.4, -1.2]]])  # (1 start, 1 item, 2 segments)
    tau = np.array([[[-0.5, 0.1, 0.4]]])  # 4 categories, thresholds sum to 0
    valid = np.ones((1, 4), dtype=bool)
    logp = _ordinal_logp(beta, tau, valid)[0, 0]
    for c in range(2):
        np.testing.assert_allclose(np.exp(logp[c]), _direct_ordinal_probs(beta[0, 0, c], tau[0, 0]), rtol=1e-12)
    # a pinned value, by hand: scores 0, 0.9, 1.2, 1.2 -> 1.2 - log(1 + e^0.9 + 2 e^1.2)
    assert logp[0, 3] == pytest.approx(1.2 - np.log(np.exp([0.0, 0.9, 1.2, 1.2]).sum()), abs=1e-12)
    assert logp[0, 3] == pytest.approx(-1.112519, abs=5e-7)


@pytest.fixture(scope="module")
def ordinal_data():
    return simulate_categorical(900, 3, 8, 5, separation=0.6, ordinal=True, random_seed=21)


@pytest.fixture(scope="module")
def ordinal_fit(ordinal_data):
    return fit_lca(ordinal_data[0], 3, measurement="ordinal", n_init=8, random_seed=3)


def test_ordinal_recovers_classes_and_likelihood_is_direct(ordinal_data, ordinal_fit):
    data, truth, true_probs = ordinal_data
    res = ordinal_fit
    assert adjusted_rand_score(truth, res.assignment) >= 0.9
    assert res.diagnostics["converged"]
    beta, tau = res.params["locations"], res.shared_params["thresholds"]
    assert beta.shape == (3, 8) and tau.shape == (8, 4)
    np.testing.assert_allclose(np.nansum(tau, axis=1), 0.0, atol=1e-9)  # identification
    # stored probabilities are the model's, and the log-likelihood is the direct one at them
    probs = np.array([[_direct_ordinal_probs(beta[c, j], tau[j]) for j in range(8)] for c in range(3)])
    np.testing.assert_allclose(res.params["probs"], probs, atol=1e-12)
    codes = data.to_numpy(dtype=float, na_value=-1).astype(int)
    assert res.criteria["loglik"] == pytest.approx(_brute_loglik(codes, res.params["weights"], probs), abs=1e-7)
    # the truth is in the model family (simulate uses an adjacent-category logit), so the
    # estimated category probabilities are close to the true ones
    perm = _match(truth, res.assignment, 3)
    np.testing.assert_allclose(res.params["probs"][perm], true_probs, atol=0.07)
    # the ordinal model is nested in the nominal one: its maximum cannot be higher
    nom = fit_lca(data, 3, n_init=8, random_seed=3)
    assert res.criteria["loglik"] <= nom.criteria["loglik"] + 1e-6
    assert res.criteria["n_params"] < nom.criteria["n_params"]


def test_ordinal_maximum_is_a_maximum(ordinal_data):
    """The generalised (Newton) M-step converges to a point no general-purpose optimiser improves."""
    data = ordinal_data[0].iloc[:250, :4]
    res = fit_lca(data, 2, measurement="ordinal", n_init=4, random_seed=0, tol=1e-12)
    codes = data.to_numpy(dtype=float, na_value=-1).astype(int)
    J, C = 4, 5

    def unpack(theta):
        w = np.exp(np.r_[0.0, theta[0]] - np.logaddexp(0.0, theta[0]))
        beta = theta[1 : 1 + 2 * J].reshape(2, J)
        free = theta[1 + 2 * J :].reshape(J, C - 2)
        tau = np.concatenate([free, -free.sum(axis=1, keepdims=True)], axis=1)
        probs = np.array([[_direct_ordinal_probs(beta[c, j], tau[j]) for j in range(J)] for c in range(2)])
        return w, probs

    w, b, t = res.params["weights"], res.params["locations"], res.shared_params["thresholds"]
    theta0 = np.r_[math.log(w[1] / w[0]), b.ravel(), t[:, :-1].ravel()]
    w0, p0 = unpack(theta0)
    np.testing.assert_allclose(p0, res.params["probs"], atol=1e-12)
    better = optimize.minimize(lambda th: -_brute_loglik(codes, *unpack(th)), theta0, method="L-BFGS-B")
    assert -better.fun - res.criteria["loglik"] < 1e-4


def test_ordinal_needs_ordered_levels():
    df = pd.DataFrame({"a": list("xyzxyz"), "b": list("xxyyzz")})
    with pytest.raises(ConfigError, match=r"measurement='ordinal' needs ordered levels; column\(s\) 'a', 'b'"):
        fit_lca(df, 2, measurement="ordinal")
    ordered = df.astype(pd.CategoricalDtype(["z", "y", "x"], ordered=True))
    res = fit_lca(ordered, 2, measurement="ordinal", n_init=2, random_seed=0)
    assert res.extras["categories"].query("item == 'a'")["category"].tolist() == ["z", "y", "x"]


# ------------------------------------------------------------------------------------ input handling
def test_any_categorical_table_and_mapping_kept():
    rng = np.random.default_rng(5)
    lab = rng.integers(0, 2, 200)
    df = pd.DataFrame(
        {
            "colour": np.where(lab == 0, "red", "blue"),
            "size": pd.Categorical(np.where(lab == 0, "S", "L"), categories=["S", "M", "L"]),
            "count": np.where(rng.random(200) < 0.9, lab * 2 + 1, 3 - lab * 2),
            "flag": rng.random(200) < np.where(lab == 0, 0.2, 0.8),
        },
        index=pd.Index([f"r{i}" for i in range(200)], name="id"),
    )
    res = fit_lca(df, 2, n_init=4, random_seed=0)
    assert list(res.respondent_ids[:2]) == ["r0", "r1"]
    cats = res.extras["categories"]
    assert cats.query("item == 'colour'")["category"].tolist() == ["blue", "red"]
    assert cats.query("item == 'size'")["category"].tolist() == ["S", "L"]  # unused "M" dropped
    assert cats.query("item == 'count'")["category"].tolist() == ["1", "3"]
    assert cats.query("item == 'flag'")["category"].tolist() == ["False", "True"]
    # centers: expected value for numeric items (1/3 levels), expected code otherwise
    j = res.feature_names.index("count")
    assert np.all((res.centers[:, j] >= 1) & (res.centers[:, j] <= 3))
    # new respondents: columns in another order, a float 3.0 equal to the level 3
    new = df.iloc[:3][["count", "flag", "size", "colour"]].astype({"count": float})
    np.testing.assert_allclose(predict_proba(res, new), res.memberships[:3], atol=1e-12)
    bad = df.iloc[:6].copy()
    bad["colour"] = ["red", "green", "red", "green", "red", "red"]
    with pytest.raises(SurveyError, match=r"Column 'colour' has categories not seen at fit time \['green'\] at rows \[r1, r3\]"):
        predict_proba(res, bad)
    with pytest.raises(ConfigError, match=r"lack the indicator column\(s\) \['flag'\]"):
        predict_proba(res, df.drop(columns="flag"))


def test_bad_input_messages():
    ok = pd.DataFrame({"a": [1, 2, 1, 2, 1, 2], "b": [1, 1, 2, 2, 1, 2]})
    one = ok.assign(c=[3] * 6, d=[np.nan] * 6)
    with pytest.raises(SurveyError, match=r"Columns 'c' \(only '3'\), 'd' \(no observed values\) need at least two observed categories"):
        fit_lca(one, 2)
    rows = ok.astype(float)
    rows.loc[[1, 4]] = np.nan
    with pytest.raises(SurveyError, match=r"2 respondent\(s\) have every indicator missing at rows \[1, 4\]"):
        fit_lca(rows, 2)
    with pytest.raises(ConfigError, match=r"measurement='binary' needs exactly two categories per column; column\(s\) 'a' \(3\)"):
        fit_lca(ok.assign(a=[1, 2, 3, 1, 2, 3]), 2, measurement="binary")
    with pytest.raises(ConfigError, match="The 'measurement' parameter of fit_lca must be one of"):
        fit_lca(ok, 2, measurement="nominal")
    with pytest.raises(ConfigError, match=r"k must be an integer >= 1; got 0"):
        fit_lca(ok, 0)
    with pytest.raises(ConfigError, match=r"k = 5 segments but only 4 distinct respondents"):
        fit_lca(ok, 5)
    with pytest.raises(ConfigError, match=r"The 'n_init' parameter of fit_lca must be an int in the range \[1, inf\)\. Got 0"):
        fit_lca(ok, 2, n_init=0)
    with pytest.raises(ConfigError, match="The 'prior' parameter of fit_lca must be a float >= 0"):
        fit_lca(ok, 2, prior=-1)
    with pytest.raises(ConfigError, match="The 'init' parameter of fit_lca"):
        fit_lca(ok, 2, init="kmeans")
    with pytest.raises(ConfigError, match=r"init\) must be a non-negative array of shape \(n_init, n, k\) = \(2, 6, 2\) with no all-zero row; got shape \(1, 6, 3\)"):
        fit_lca(ok, 2, n_init=2, init=np.ones((6, 3)))


# ------------------------------------------------------------------------------------ diagnostics
def test_boundary_and_nonconvergence_are_reported(nominal):
    data = nominal[0]
    with pytest.warns(ConvergenceWarning, match="did not converge within max_iter=2"):
        res = fit_lca(data, 3, n_init=3, max_iter=2, random_seed=0)
    assert not res.diagnostics["converged"] and not res.converged
    assert "increase max_iter" in res.diagnostics["warnings"][0]
    # a class that never uses a category -> item-response probability at 0
    rng = np.random.default_rng(1)
    lab = np.repeat([0, 1], 100)
    df = pd.DataFrame({f"q{j}": np.where(lab == 0, rng.integers(0, 2, 200), rng.integers(2, 4, 200)) for j in range(4)})
    res = fit_lca(df, 2, n_init=3, random_seed=0)
    assert any("boundary estimate" in m and "prior=1" in m for m in res.diagnostics["warnings"])
    smooth = fit_lca(df, 2, n_init=3, random_seed=0, prior=1.0)
    assert not any("boundary" in m for m in smooth.diagnostics["warnings"])
    assert np.nanmin(smooth.params["probs"]) > 1e-3
    assert adjusted_rand_score(lab, smooth.assignment) == 1.0


def test_dispatcher_and_one_class():
    data, _, _ = simulate_categorical(150, 2, 5, 3, random_seed=2)
    res = fit(data, "lca", 2, random_seed=1, n_init=3)
    assert res.model == "lca" and res.settings["n_init"] == 3
    one = fit_lca(data, 1, n_init=1)
    # k = 1: independence model, probabilities are the sample proportions
    codes = data.to_numpy(dtype=float, na_value=-1).astype(int)
    for j in range(5):
        np.testing.assert_allclose(one.params["probs"][0, j], np.bincount(codes[:, j], minlength=3) / 150)


# ------------------------------------------------------------------------------------ opportunity levels
def test_opportunity_levels():
    s = pd.DataFrame({"o1": [0.0, 9.99, 10.0, 14.99, 15.0, 20.0, np.nan], "o2": [12.0] * 7}, index=list("abcdefg"))
    lv = opportunity_levels(s)
    assert lv["o1"].tolist()[:6] == [0, 0, 1, 1, 2, 2] and pd.isna(lv["o1"].iloc[6])
    assert isinstance(lv["o1"].dtype, pd.CategoricalDtype) and lv["o1"].cat.ordered
    assert list(lv.index) == list("abcdefg")
    named = opportunity_levels(s, names=OPPORTUNITY_LEVEL_NAMES)
    assert named["o1"].tolist()[2] == "underserved"
    assert list(named["o1"].cat.categories) == list(OPPORTUNITY_LEVEL_NAMES)
    assert opportunity_levels(s, cuts=(5, 12))["o2"].tolist() == [2] * 7
    # raw ratings on 1-5 with their own cut points
    raw = pd.DataFrame({"imp": [1, 2, 3, 4, 5]})
    assert opportunity_levels(raw, cuts=(3, 5))["imp"].tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(ConfigError, match="cut points must be finite and strictly increasing"):
        opportunity_levels(s, cuts=(15, 10))
    with pytest.raises(ConfigError, match="2 cut points make 3 levels; got 2 names"):
        opportunity_levels(s, names=["a", "b"])
    with pytest.raises(SurveyError, match=r"column\(s\) \['txt'\] are not numeric"):
        opportunity_levels(s.assign(txt="x"))


def test_opportunity_levels_feed_an_ordinal_latent_class_model():
    rng = np.random.default_rng(7)
    lab = rng.integers(0, 2, 400)
    scores = pd.DataFrame(
        {f"o{j}": np.clip(rng.normal(np.where(lab == 0, 7.0, 16.0), 2.5), 0, 20) for j in range(6)}
    )
    lv = opportunity_levels(scores)
    res = fit_lca(lv, 2, measurement="ordinal", n_init=4, random_seed=1)
    assert adjusted_rand_score(lab, res.assignment) >= 0.9
    assert set(res.extras["categories"]["category"]) == {"0", "1", "2"}


def test_all_starts_reported_in_order():
    data, _, _ = simulate_categorical(300, 3, 6, 3, separation=0.4, random_seed=12)
    res = fit_lca(data, 3, n_init=6, random_seed=4, init="dirichlet")
    ll = np.array(res.diagnostics["start_logliks"])
    assert ll.shape == (6,) and np.all(ll <= res.criteria["loglik"] + 1e-9)
    assert res.diagnostics["n_best"] == int(np.sum(ll >= ll.max() - 0.01))
    assert len(res.diagnostics["start_n_iter"]) == 6
    assert all(isinstance(v, bool) for v in res.diagnostics["start_converged"])
    for a, b in itertools.pairwise(res.shares):
        assert a >= b


@pytest.mark.parametrize("measurement", ["categorical", "ordinal"])
def test_acceleration_reaches_the_plain_em_maximum(measurement, ordinal_data):
    data = ordinal_data[0].iloc[:500]
    plain = fit_lca(data, 3, measurement=measurement, n_init=4, random_seed=2, accelerate=False, tol=1e-10)
    fast = fit_lca(data, 3, measurement=measurement, n_init=4, random_seed=2, tol=1e-10)
    assert fast.settings["accelerate"] and not plain.settings["accelerate"]
    assert fast.criteria["loglik"] == pytest.approx(plain.criteria["loglik"], abs=1e-4)
    np.testing.assert_allclose(fast.params["probs"], plain.params["probs"], atol=1e-3)
    assert adjusted_rand_score(plain.assignment, fast.assignment) == 1.0


def test_recovers_segments_of_a_simulated_survey():
    """Survey -> opportunity scores -> Ulwick levels -> ordinal latent classes recovers the segments."""
    from latentseg.prepare.scoring import opportunity_scores
    from latentseg.research.simulate import simulate_survey

    survey, truth = simulate_survey(500, 24, 4, separation=1.5, random_seed=3)
    levels = opportunity_levels(opportunity_scores(survey))
    levels = levels.loc[:, levels.nunique() > 1]  # an outcome served for everyone is no indicator
    res = fit_lca(levels, 4, measurement="ordinal", n_init=6, random_seed=1)
    assert adjusted_rand_score(truth.segment, res.assignment) >= 0.9
    np.testing.assert_allclose(res.shares, truth.shares, atol=0.05)
