"""Survey weights in the EM engines and in the result's shares (issue 16).

Truth, three ways: (a) an integer weight 2 on a row fits exactly as that row duplicated;
(b) the weighted log-likelihood equals StepMix 3.0.0's with ``sample_weight`` (at the same
parameters, and at each program's own maximum); (c) over 200 unequal-probability samples with a
known population, the weighted 95% share intervals cover the population shares 93-97% of the
time and the unweighted ones do not.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from latentseg._stats import effective_n, weighted_share_interval
from latentseg.errors import ConfigError
from latentseg.models.gmm import fit_gmm
from latentseg.models.kmeans import fit_kmeans
from latentseg.models.lca import fit_lca
from latentseg.models.rating_lca import fit_rating_lca
from latentseg.research.simulate import (
    simulate_categorical,
    simulate_gaussian_mixture,
    simulate_ratings,
    simulate_weighted_survey,
)
from latentseg.result import SegmentationResult


def _twice(n: int, seed: int) -> np.ndarray:
    """Weights 1 or 2 (about 30% twos)."""
    return np.where(np.random.default_rng(seed).random(n) < 0.3, 2.0, 1.0)


def _dup(data, w):
    idx = np.repeat(np.arange(len(w)), w.astype(int))
    return data.iloc[idx] if hasattr(data, "iloc") else data[idx]


def _first(w):
    """Row of each original respondent in the duplicated data."""
    return np.r_[0, np.cumsum(w.astype(int))[:-1]]


# ------------------------------------------------------------------ (a) weight 2 == duplicated row
# Measured (tol 1e-10): log-likelihoods agree to 1e-8, means / covariances to 4e-5, memberships to
# 4e-5 (the two fits start from different partitions and stop at the same optimum within tol);
# thresholds 1e-6 and 1e-3. Data well separated (separation 6) so that every start finds it.
@pytest.mark.parametrize(
    ("n", "missing", "covariance"),
    [(200, False, "EII"), (200, False, "VII"), (200, False, "EEI"), (200, False, "VVI"), (200, False, "EEE"),
     (200, False, "VVV"), (1600, False, "VVI"), (1600, False, "VVV"), (200, True, "EEE"), (200, True, "VVI")],
)
def test_gmm_weight_two_is_duplicated_row(n, missing, covariance):
    X, _ = simulate_gaussian_mixture(n, 3, 3, separation=6.0, random_seed=7)
    X = np.array(X, dtype=float)
    if missing:  # the missing-value paths (plain EM over patterns for EEE)
        X[np.random.default_rng(1).random(X.shape) < 0.05] = np.nan
    w = _twice(n, 2)
    a = fit_gmm(X, 3, covariance=covariance, random_seed=1, sample_weight=w, tol=1e-10)
    b = fit_gmm(_dup(X, w), 3, covariance=covariance, random_seed=1, tol=1e-10)
    assert a.criteria["loglik"] == pytest.approx(b.criteria["loglik"], abs=1e-6)
    np.testing.assert_allclose(a.centers, b.centers, atol=1e-3)
    np.testing.assert_allclose(a.shares, b.shares, atol=1e-4)
    np.testing.assert_allclose(a.memberships, b.memberships[_first(w)], atol=1e-3)
    key = "covariances" if "covariances" in a.params else ("variances" if "variances" in a.params else None)
    if key:
        np.testing.assert_allclose(a.params[key], b.params[key], atol=1e-3)
    # BIC: the pseudo-log-likelihood, n = the rows of the weighted data
    p = a.criteria["n_params"]
    assert a.criteria["bic"] == pytest.approx(-2 * a.criteria["loglik"] + p * np.log(n))
    assert a.sample_weight is not None and np.array_equal(a.sample_weight, w)


def test_kmeans_weight_two_is_duplicated_row():
    X, _ = simulate_gaussian_mixture(300, 3, 3, separation=6.0, random_seed=7)
    w = _twice(300, 3)
    a = fit_kmeans(X, 3, random_seed=1, sample_weight=w)
    b = fit_kmeans(_dup(X, w), 3, random_seed=1)
    # Lloyd's fixed point is the same partition: centers equal to rounding (measured 4e-16)
    np.testing.assert_allclose(a.centers, b.centers, atol=1e-9)
    assert a.criteria["inertia"] == pytest.approx(b.criteria["inertia"], rel=1e-9)
    np.testing.assert_allclose(a.shares, b.shares, atol=1e-12)
    np.testing.assert_array_equal(a.assignment, b.assignment[_first(w)])
    # the silhouette differs only by the zero distances between copies (measured 0.3716 vs 0.3735)
    assert a.criteria["silhouette"] == pytest.approx(b.criteria["silhouette"], abs=0.01)


@pytest.mark.parametrize("measurement", ["categorical", "ordinal"])
def test_lca_weight_two_is_duplicated_row(measurement):
    C = simulate_categorical(400, 3, 6, 4, random_seed=5)[0]
    w = _twice(len(C), 4)
    a = fit_lca(C, 3, measurement=measurement, random_seed=3, n_init=10, sample_weight=w, tol=1e-12)
    b = fit_lca(_dup(C, w), 3, measurement=measurement, random_seed=3, n_init=10, tol=1e-12)
    # measured: log-likelihood 5e-13, probabilities 5e-10, memberships 1e-8; on seeds 1, 2, 4, 9 the
    # two fits' maxima agree to 5e-13 as well (ordinal: 2-6 of the 10 starts reach it)
    assert a.criteria["loglik"] == pytest.approx(b.criteria["loglik"], abs=1e-6)
    np.testing.assert_allclose(a.params["probs"], b.params["probs"], atol=1e-6)
    np.testing.assert_allclose(a.memberships, b.memberships[_first(w)], atol=1e-6)
    np.testing.assert_allclose(a.shares, b.shares, atol=1e-8)


@pytest.mark.parametrize("measurement", ["categorical", "joint"])
def test_rating_lca_weight_two_is_duplicated_row(measurement):
    sim = simulate_ratings(300, k=2, n_outcomes=4, random_seed=1)
    w = _twice(300, 5)
    a = fit_rating_lca(sim.data, 2, measurement=measurement, n_init=5, random_seed=1, sample_weight=w, tol=1e-12)
    b = fit_rating_lca(_dup(sim.data, w), 2, measurement=measurement, n_init=5, random_seed=1, tol=1e-12)
    # measured: log-likelihood 5e-13, opportunity centers 3e-11, memberships 2e-11
    assert a.criteria["loglik"] == pytest.approx(b.criteria["loglik"], abs=1e-6)
    np.testing.assert_allclose(a.centers, b.centers, atol=1e-6)
    np.testing.assert_allclose(a.memberships, b.memberships[_first(w)], atol=1e-6)


# ------------------------------------------------------------------ (b) StepMix 3.0.0 with sample_weight
def _stepmix(measurement: str, **kw):
    stepmix = pytest.importorskip("stepmix")
    return stepmix.StepMix(n_components=3, measurement=measurement, random_state=0, verbose=0, progress_bar=0, **kw)


@pytest.fixture(scope="module")
def weighted_scores():
    # well separated (ARI about 0.95), so that every start of either program finds the one maximum
    s = simulate_weighted_survey(300, 3, kind="scores", d=3, separation=5.0, random_seed=1)
    return s.data.to_numpy(float), s.weights


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("VVI", "gaussian_diag"), ("VVV", "gaussian_full"), ("VII", "gaussian_spherical"), ("EEE", "gaussian_tied")],
)
def test_gmm_pseudo_loglik_equals_stepmix(weighted_scores, ours, theirs):
    """Both evaluated at our weighted fit's parameters (measured difference 2e-13 or less)."""
    X, w = weighted_scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_gmm(X, 3, covariance=ours, random_seed=1, sample_weight=w, n_init=4)
        # a one-step fit only to get a fitted StepMix object (unweighted: StepMix's weighted k-means
        # start fails for gaussian_tied on these data); its parameters are replaced below
        sm = _stepmix(theirs, max_iter=1, init_params="kmeans").fit(X)
    cov = {"VVI": lambda: r.params["variances"], "VVV": lambda: r.params["covariances"],
           "VII": lambda: r.params["variances"][:, 0], "EEE": lambda: r.shared_params["covariance"]}[ours]()
    sm.set_parameters({"weights": r.params["weights"], "measurement": {"means": r.params["means"], "covariances": cov},
                       "measurement_in": X.shape[1]})
    ll_stepmix = sm.score(X, sample_weight=w) * w.sum()  # StepMix's score is the weighted mean
    assert ll_stepmix == pytest.approx(r.criteria["loglik"], abs=1e-6)


@pytest.mark.parametrize(("ours", "theirs"), [("VVI", "gaussian_diag"), ("VII", "gaussian_spherical")])
def test_gmm_weighted_maximum_equals_stepmix(weighted_scores, ours, theirs):
    """Each program's own weighted fit reaches the same maximum (measured below 5e-10 on seeds 1-3)."""
    X, w = weighted_scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_gmm(X, 3, covariance=ours, random_seed=1, sample_weight=w, n_init=4, tol=1e-10)
        sm = _stepmix(theirs, max_iter=5000, abs_tol=1e-12, n_init=5).fit(X, sample_weight=w)
    assert sm.score(X, sample_weight=w) * w.sum() == pytest.approx(r.criteria["loglik"], abs=1e-4)


def test_lca_pseudo_loglik_equals_stepmix():
    """Categorical latent class model: at our parameters (to 1e-6), and at StepMix's own maximum."""
    s = simulate_weighted_survey(300, 3, kind="levels", d=6, random_seed=1)
    codes = s.data.to_numpy(dtype=int)
    assert (codes.max(axis=0) == 4).all() and (codes.min(axis=0) == 0).all()  # codes 0..4 = our categories
    w = s.weights
    r = fit_lca(s.data, 3, random_seed=1, sample_weight=w, n_init=20, tol=1e-12)
    with warnings.catch_warnings():  # one iteration: StepMix warns that it has not converged
        warnings.simplefilter("ignore")
        sm = _stepmix("categorical", max_iter=1).fit(codes, sample_weight=w)
    probs = r.params["probs"]  # (k, J, C)
    k, J, C = probs.shape
    params = sm.get_parameters()
    pis = probs.reshape(k, J * C)  # StepMix keeps pis as (k, J * C): item j's category m at j * C + m
    params["weights"] = r.params["weights"]
    params["measurement"] = {**params["measurement"], "pis": pis}
    sm.set_parameters(params)
    assert sm.score(codes, sample_weight=w) * w.sum() == pytest.approx(r.criteria["loglik"], abs=1e-6)
    sm2 = _stepmix("categorical", max_iter=5000, abs_tol=1e-12, n_init=10).fit(codes, sample_weight=w)
    # each program's own weighted maximum: measured 1e-10 apart (StepMix 10 starts, ours 20)
    assert sm2.score(codes, sample_weight=w) * w.sum() == pytest.approx(r.criteria["loglik"], abs=1e-4)


# ------------------------------------------------------------------ (c) coverage of the share intervals
def _match(labels: np.ndarray, z: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    k = z.shape[1]
    agree = np.zeros((k, k))
    np.add.at(agree, (labels - 1, z.argmax(axis=1)), 1.0)
    return linear_sum_assignment(-agree)[1]


def _coverage(kind: str, sets: int) -> tuple[float, float]:
    """Coverage of the population shares by the weighted fit's and by the unweighted fit's 95%
    intervals, over ``sets`` samples (n = 300, k = 3) of benchmarks/study_weights_em.py's design."""
    hit_w, hit_u = [], []
    for seed in range(1, sets + 1):
        if kind == "scores":
            s = simulate_weighted_survey(300, 3, kind="scores", d=4, separation=5.0, random_seed=seed)
            fit = lambda **kw: fit_gmm(s.data, 3, covariance="VVI", random_seed=seed, **kw)  # noqa: E731
        else:
            s = simulate_weighted_survey(300, 3, kind="levels", d=6, separation=0.8, random_seed=seed)
            fit = lambda **kw: fit_lca(s.data, 3, random_seed=seed, n_init=5, **kw)  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rw, ru = fit(sample_weight=s.weights), fit()
        truth = s.population_shares
        cw, cu = _match(s.labels, rw.memberships), _match(s.labels, ru.memberships)
        hit_w.append((rw.share_lower[cw] <= truth) & (truth <= rw.share_upper[cw]))
        hit_u.append((ru.share_lower[cu] <= truth) & (truth <= ru.share_upper[cu]))
    return float(np.mean(hit_w)), float(np.mean(hit_u))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["scores", "levels"])
def test_weighted_share_intervals_cover_population_shares(kind):
    """200 data sets x 3 segments = 600 intervals: a Monte-Carlo SE of 0.9 points at 95%, so the
    band 93-97% is about +-2 SE (the issue's band). Measured (seeds 1-200, Wilson at the
    design-based sandwich's effective n): 96.0% (scores, Gaussian mixture VVI) and 94.3% (levels,
    latent class), benchmarks/results/weights_em.json. The unweighted intervals cover about a third (32.3%,
    32.5%: the oversampled smallest segment's share is 26 points too high): threshold 0.6."""
    weighted, unweighted = _coverage(kind, 200)
    assert 0.93 <= weighted <= 0.97
    assert unweighted < 0.6


# ------------------------------------------------------------------ the result's weights
def test_from_memberships_weighted_shares_and_interval():
    z = np.eye(2)[[0, 0, 1, 1, 1]]
    w = np.array([2.0, 2.0, 1.0, 1.0, 1.0])
    r = SegmentationResult.from_memberships("gmm", z, centers=np.array([[0.0], [1.0]]), feature_names=("x",),
                                            sample_weight=w)
    np.testing.assert_allclose(r.shares, [4 / 7, 3 / 7])
    assert r.interval_method.startswith("95% Wilson, linearised effective n")
    assert np.array_equal(r.sample_weight, w)
    # Kish's effective n for comparison: 49 / 11 = 4.45 of 5 respondents
    assert effective_n(w) == pytest.approx(49 / 11)
    # relabelling permutes segments, never respondents: the weights stay
    assert np.array_equal(r.relabel([2, 1]).sample_weight, w)
    p, lo, hi, label = weighted_share_interval(z, w, method="kish")
    assert label == "95% Wilson, Kish effective n 4.5" and (lo < p).all() and (p < hi).all()
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        SegmentationResult.from_memberships("gmm", z, centers=np.zeros((2, 1)), feature_names=("x",),
                                            sample_weight=np.ones(3))


def test_weights_saved_and_loaded_with_the_result(tmp_path):
    from latentseg.deliver.artifacts import load_result, save_result

    X, _ = simulate_gaussian_mixture(120, 2, 2, separation=6.0, random_seed=3)
    w = _twice(120, 6)
    r = fit_gmm(X, 2, random_seed=1, sample_weight=w)
    back = load_result(save_result(r, tmp_path / "fit.nc"))
    assert np.array_equal(back.sample_weight, r.sample_weight)
    assert back.interval_method == r.interval_method
    np.testing.assert_array_equal(back.share_lower, r.share_lower)
    unweighted = load_result(save_result(fit_gmm(X, 2, random_seed=1), tmp_path / "u.nc"))
    assert unweighted.sample_weight is None


@pytest.mark.parametrize(
    ("weights", "match"),
    [(np.r_[0.0, np.ones(39)], r"1 row\(s\) \[1\] have zero, negative"),
     (np.r_[np.ones(39), np.nan], r"\[40\]"),
     (np.r_[-1.0, np.ones(39)], "positive, finite"),
     (np.ones(39), r"shape \(40,\)")],
)
def test_bad_weights_are_refused_naming_rows(weights, match):
    X = np.asarray(simulate_gaussian_mixture(40, 2, 2, random_seed=3)[0], dtype=float)  # rows 1..40
    for fit in (fit_gmm, fit_kmeans):
        with pytest.raises(ConfigError, match=match):
            fit(X, 2, random_seed=1, sample_weight=weights)


def test_estimators_take_sample_weight():
    from latentseg.models.estimators import GaussianMixtureSegmenter, KMeansSegmenter

    X, _ = simulate_gaussian_mixture(150, 2, 2, separation=6.0, random_seed=4)
    X = np.asarray(X, dtype=float)
    w = _twice(150, 7)
    est = GaussianMixtureSegmenter(n_components=2, random_state=1).fit(X, sample_weight=w)
    direct = fit_gmm(X, 2, random_seed=est.random_seed_, sample_weight=w)
    assert est.loglik_ == pytest.approx(direct.criteria["loglik"])
    # score / bic with the weights: the pseudo-log-likelihood, n = rows
    assert est.score(X, sample_weight=w) * w.sum() == pytest.approx(est.loglik_)
    assert est.bic(X, sample_weight=w) == pytest.approx(direct.criteria["bic"])
    km = KMeansSegmenter(n_components=2, random_state=1).fit(pd.DataFrame(X), sample_weight=w)
    assert km.result_.sample_weight is not None


def test_lca_sandwich_interval_equals_numerical_derivatives():
    """The latent class share interval's sandwich (Louis' observed information as bread, the
    weighted scores' cross-products as meat) recomputed from finite differences of the
    pseudo-log-likelihood in the free parameters (pi_1, and every item probability but each
    item's largest): interval bounds agree to 1e-6 (measured: below 1e-9)."""
    from latentseg._stats import wilson_each

    s = simulate_weighted_survey(200, 2, kind="levels", d=4, n_categories=3, separation=0.6, random_seed=2)
    codes, w = s.data.to_numpy(int), s.weights
    r = fit_lca(s.data, 2, random_seed=1, n_init=5, sample_weight=w, tol=1e-12)
    assert r.interval_method.startswith("95% Wilson, design-based sandwich")
    probs, pi = r.params["probs"], r.params["weights"]
    refs = probs.argmax(axis=2)
    free = [(c, j, m) for c in range(2) for j in range(4) for m in range(3) if m != refs[c, j]]
    theta0 = np.r_[pi[0], [probs[c, j, m] for c, j, m in free]]

    def loglik_rows(theta):
        p = probs.copy()
        for (c, j, m), v in zip(free, theta[1:]):
            p[c, j, m] = v
        for c in range(2):
            for j in range(4):
                p[c, j, refs[c, j]] = 1 - (p[c, j].sum() - p[c, j, refs[c, j]])
        a = np.log([theta[0], 1 - theta[0]]) + sum(np.log(p[:, j, codes[:, j]]).T for j in range(4))
        return np.logaddexp(a[:, 0], a[:, 1])

    h, q = 1e-5, theta0.size
    steps = np.eye(q) * h
    S = np.stack([(loglik_rows(theta0 + e) - loglik_rows(theta0 - e)) / (2 * h) for e in steps], axis=1)
    H = np.empty((q, q))
    for a in range(q):  # the Jacobian of the weighted score total, by differences of the scores
        up = np.stack([(loglik_rows(theta0 + steps[a] + e) - loglik_rows(theta0 + steps[a] - e)) / (2 * h) for e in steps], 1)
        dn = np.stack([(loglik_rows(theta0 - steps[a] + e) - loglik_rows(theta0 - steps[a] - e)) / (2 * h) for e in steps], 1)
        H[:, a] = -(w @ up - w @ dn) / (2 * h)
    H = (H + H.T) / 2
    WS = S * w[:, None]
    WS -= WS.mean(axis=0)
    n = len(w)
    V = np.linalg.solve(H, np.linalg.solve(H, WS.T @ WS * n / (n - 1)).T)
    var = V[0, 0]  # of pi_1, and so of pi_2 = 1 - pi_1
    lo, hi = wilson_each(pi, pi * (1 - pi) / var)
    np.testing.assert_allclose(r.share_lower, lo, atol=1e-6)
    np.testing.assert_allclose(r.share_upper, hi, atol=1e-6)


@pytest.mark.parametrize("covariance", ["VVI", "EEI", "VII", "EII"])
def test_gmm_sandwich_interval_equals_numerical_derivatives(covariance):
    """The Gaussian mixture's share sandwich (diagonal structures, with missing values) recomputed
    from finite differences of the pseudo-log-likelihood in pi_1, the means and the structure's
    variance parameters: bounds agree to 1e-6 (measured 1e-8 to 8e-8)."""
    from latentseg._stats import wilson_each
    from latentseg.models.gmm import STRUCTURES

    s = simulate_weighted_survey(200, 2, kind="scores", d=2, separation=3.0, random_seed=2)
    X, w = np.array(s.data, dtype=float), s.weights
    gone = np.random.default_rng(0).random(X.shape) < 0.05
    gone[:, 0] &= ~gone[:, 1]  # every respondent keeps a value
    X[gone] = np.nan
    r = fit_gmm(X, 2, covariance=covariance, random_seed=1, sample_weight=w, tol=1e-12, reg_covar=0.0)
    assert r.interval_method.startswith("95% Wilson, design-based sandwich")
    _, vary, spherical = STRUCTURES[covariance]
    pi, mu = r.params["weights"], r.params["means"]
    v = r.params["variances"] if vary else np.broadcast_to(r.shared_params["variances"], (2, 2))
    vpar = (v[:, :1] if spherical else v) if vary else (v[:1, :1] if spherical else v[:1])
    theta0 = np.r_[pi[0], mu.ravel(), vpar.ravel()]
    obs = ~np.isnan(X)

    def loglik_rows(theta):
        m, vv = theta[1:5].reshape(2, 2), np.broadcast_to(theta[5:].reshape(vpar.shape), (2, 2))
        e = [np.where(obs, X - m[c], 0.0) for c in range(2)]
        a = [np.log(p) + (obs * (-0.5 * np.log(2 * np.pi * vv[c]) - e[c] ** 2 / (2 * vv[c]))).sum(axis=1)
             for c, p in enumerate((theta[0], 1 - theta[0]))]
        return np.logaddexp(*a)

    q = theta0.size
    steps = np.diag(1e-5 * np.maximum(1.0, np.abs(theta0)))
    h = np.diag(steps)

    def scores(theta):
        return np.stack([(loglik_rows(theta + e) - loglik_rows(theta - e)) / (2 * h[b]) for b, e in enumerate(steps)], 1)

    S = scores(theta0)
    H = np.stack([-(w @ scores(theta0 + e) - w @ scores(theta0 - e)) / (2 * h[a]) for a, e in enumerate(steps)], 1)
    H = (H + H.T) / 2
    WS = S * w[:, None]
    WS -= WS.mean(axis=0)
    n = len(w)
    V = np.linalg.solve(H, np.linalg.solve(H, WS.T @ WS * n / (n - 1)).T)
    lo, hi = wilson_each(pi, pi * (1 - pi) / V[0, 0])
    np.testing.assert_allclose(r.share_lower, lo, atol=1e-6)
    np.testing.assert_allclose(r.share_upper, hi, atol=1e-6)
    assert q == 5 + vpar.size
