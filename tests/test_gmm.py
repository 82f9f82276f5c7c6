"""Gaussian mixture EM: structures and parameter counts, recovery, reproducibility, the exact
missing-data likelihood, degenerate solutions and messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import ConfigError, ConvergenceWarning
from latentseg.models import fit, predict_proba
from latentseg.models._em import check_k, normalize_log, random_partition, replication_report
from latentseg.models.gmm import fit_gmm, log_likelihood, n_free_params, resolve_covariance
from latentseg.research.simulate import simulate_gaussian_mixture

STRUCTS = ["EII", "VII", "EEI", "VVI", "EEE", "VVV"]


# ------------------------------------------------------------------ structures and counts
@pytest.mark.parametrize(
    ("structure", "expected"),
    # k = 3, d = 4: means 12, weights 2, covariance per mclust
    [("EII", 15), ("VII", 17), ("EEI", 18), ("VVI", 26), ("EEE", 24), ("VVV", 44)],
)
def test_free_parameter_counts(structure, expected):
    assert n_free_params(structure, 3, 4) == expected


def test_univariate_counts_and_aliases():
    assert n_free_params("E", 3, 1) == 3 + 2 + 1
    assert n_free_params("V", 3, 1) == 3 + 2 + 3
    assert [resolve_covariance(a, 2) for a in ("spherical", "diag", "tied", "full", "vvi")] == [
        "VII", "VVI", "EEE", "VVV", "VVI",
    ]


def test_univariate_names_need_one_variable():
    with pytest.raises(ConfigError, match="Covariance 'V' is for one variable; with 3 variables"):
        resolve_covariance("V", 3)
    with pytest.raises(ConfigError, match="Unknown covariance structure 'XYZ'"):
        resolve_covariance("XYZ", 2)


def test_bayesian_mixture_reads_the_same_spellings():
    """One table of spellings: bayes-gmm takes every EM spelling of the structures it has, and
    names those it has for the ones it lacks."""
    from latentseg.models.bayes.gmm import covariance_option as bayes_covariance

    for spelling in ("VVI", "vvi", "diag", "diagonal", "EEI", "diag-equal", "VVV", "full", "auto", "Auto"):
        expected = {"VVI": "diag", "EEI": "EEI", "VVV": "full"}.get(
            "auto" if spelling.lower() == "auto" else resolve_covariance(spelling, 2), "auto"
        )
        assert bayes_covariance(spelling) == expected
    for spelling, name in (("EII", "EII"), ("spherical", "VII"), ("tied", "EEE")):
        with pytest.raises(ConfigError, match=rf"must be 'diag' \(VVI\), 'EEI' or 'full' \(VVV\), or 'auto'; it has no {name}"):
            bayes_covariance(spelling)
    with pytest.raises(ConfigError, match=r"or 'auto'\. Got 'XYZ' instead"):
        bayes_covariance("XYZ")


# ------------------------------------------------------------------ recovery
@pytest.fixture(scope="module")
def separated():
    return simulate_gaussian_mixture(600, k=3, d=5, separation=5.0, random_seed=11)


@pytest.mark.parametrize("structure", STRUCTS)
def test_recovery_every_structure(separated, structure):
    X, truth = separated
    r = fit_gmm(X, 3, covariance=structure, random_seed=5)
    assert adjusted_rand_score(truth, r.assignment) >= 0.9
    true_shares = np.bincount(truth)[1:] / len(truth)
    np.testing.assert_allclose(r.shares, true_shares, atol=0.03)
    assert r.criteria["n_params"] == n_free_params(structure, 3, 5)
    assert r.converged and r.diagnostics["warnings"] == []
    np.testing.assert_allclose(r.memberships.sum(axis=1), 1.0)
    # segments in canonical order, largest first
    assert np.all(np.diff(r.shares) <= 0)


def test_parameter_layout(separated):
    X, _ = separated
    r = fit_gmm(X, 3, covariance="VVI", random_seed=1, n_init=2)
    assert r.params["variances"].shape == (3, 5) and r.params["means"].shape == (3, 5)
    # shares are the fitted mixing weights; at the maximum they equal the mean memberships
    np.testing.assert_array_equal(r.params["weights"], r.shares)
    np.testing.assert_allclose(r.memberships.mean(axis=0), r.shares, atol=1e-3)
    r = fit_gmm(X, 3, covariance="EEI", random_seed=1, n_init=2)
    assert r.shared_params["variances"].shape == (5,) and "variances" not in r.params
    r = fit_gmm(X, 3, covariance="EEE", random_seed=1, n_init=2)
    assert r.shared_params["covariance"].shape == (5, 5)
    r = fit_gmm(X, 3, covariance="VVV", random_seed=1, n_init=2)
    assert r.params["covariances"].shape == (3, 5, 5)
    r = fit_gmm(X, 3, covariance="VII", random_seed=1, n_init=2)
    v = r.params["variances"]
    np.testing.assert_allclose(v, v[:, :1] * np.ones((1, 5)))
    assert r.settings["covariance"] == "VII" and r.settings["n_init"] == 2


def test_same_seed_bit_for_bit(separated):
    X, _ = separated
    a = fit_gmm(X, 3, covariance="VVI", random_seed=42)
    b = fit_gmm(X, 3, covariance="VVI", random_seed=42)
    assert np.array_equal(a.memberships, b.memberships)
    for key in a.params:
        assert np.array_equal(a.params[key], b.params[key])
    assert a.diagnostics["start_logliks"] == b.diagnostics["start_logliks"]
    c = fit_gmm(X, 3, covariance="VVV", random_seed=42, n_init=3)
    d = fit_gmm(X, 3, covariance="VVV", random_seed=42, n_init=3)
    assert np.array_equal(c.memberships, d.memberships)
    # no seed works and is still a valid fit
    assert fit_gmm(X, 3, n_init=2).k == 3


def test_replication_report_in_diagnostics(separated):
    X, _ = separated
    r = fit_gmm(X, 3, random_seed=3, n_init=6, init="both")
    diag = r.diagnostics
    assert diag["n_starts"] == 6 and len(diag["start_logliks"]) == 6
    assert diag["start_init"] == ["kmeans++", "hierarchical-VVV", "hierarchical-EII", "random", "kmeans++", "random"]
    best = max(diag["start_logliks"])
    assert r.criteria["loglik"] == pytest.approx(best, abs=1e-6)
    assert diag["n_best"] == sum(ll >= best - 0.01 for ll in diag["start_logliks"])


def test_k1_is_the_sample_moments(separated):
    X, _ = separated
    r = fit_gmm(X, 1, covariance="VVV", random_seed=0, n_init=1)
    np.testing.assert_allclose(r.centers[0], X.mean().to_numpy())
    np.testing.assert_allclose(r.params["covariances"][0], np.cov(X.to_numpy().T, bias=True) + 1e-6 * np.eye(5))
    expected = stats.multivariate_normal(X.mean().to_numpy(), np.cov(X.to_numpy().T, bias=True)).logpdf(X).sum()
    assert r.criteria["loglik"] == pytest.approx(expected, rel=1e-6)


def test_dispatcher_and_predict(separated):
    X, _ = separated
    r = fit(X, "gmm", 3, random_seed=2, covariance="EEE", n_init=2)
    assert r.model == "gmm"
    np.testing.assert_allclose(predict_proba(r, X), r.memberships, atol=1e-10)
    # columns matched by name
    np.testing.assert_allclose(predict_proba(r, X[X.columns[::-1]]), r.memberships, atol=1e-10)
    with pytest.raises(ConfigError, match=r"New data lack the column\(s\) \[x1\]"):
        predict_proba(r, X.drop(columns="x1"))
    assert log_likelihood(r, X).sum() == pytest.approx(r.criteria["loglik"])


# ------------------------------------------------------------------ missing values
def _punch_holes(X, seed, rate=0.2):
    A = X.to_numpy().copy()
    holes = np.random.default_rng(seed).random(A.shape) < rate
    holes[holes.all(axis=1), 0] = False  # every respondent keeps at least one value
    A[holes] = np.nan
    return pd.DataFrame(A, columns=X.columns)


@pytest.fixture(scope="module")
def with_missing():
    """Correlated (full-covariance) segments, 20% of cells missing completely at random."""
    X, truth = simulate_gaussian_mixture(300, k=2, d=3, separation=5.0, covariance="full", random_seed=8)
    return _punch_holes(X, 9), truth


@pytest.fixture(scope="module")
def with_missing_diag():
    """Diagonal-covariance segments, 20% of cells missing completely at random."""
    X, truth = simulate_gaussian_mixture(300, k=2, d=3, separation=5.0, covariance="diagonal", random_seed=8)
    return _punch_holes(X, 9), truth


def _brute_loglik(A, weights, means, covs):
    """Sum over respondents of log sum_k w_k N(x_obs | mu_k[obs], S_k[obs, obs]), one at a time."""
    total = 0.0
    for x in A:
        o = ~np.isnan(x)
        dens = [
            np.log(w) + stats.multivariate_normal(m[o], c[np.ix_(o, o)]).logpdf(x[o])
            for w, m, c in zip(weights, means, covs)
        ]
        total += np.logaddexp.reduce(dens)
    return total


@pytest.mark.parametrize("structure", ["VVI", "VII", "EEI", "EEE", "VVV"])
def test_missing_likelihood_is_the_observed_marginal(with_missing, with_missing_diag, structure):
    X, truth = with_missing if structure in ("EEE", "VVV") else with_missing_diag
    r = fit_gmm(X, 2, covariance=structure, random_seed=1, n_init=4)
    k, d = 2, 3
    if "covariances" in r.params:
        covs = r.params["covariances"]
    elif "covariance" in r.shared_params:
        covs = np.repeat(r.shared_params["covariance"][None], k, axis=0)
    else:
        v = r.params["variances"] if "variances" in r.params else np.tile(r.shared_params["variances"], (k, 1))
        covs = np.stack([np.diag(row) for row in v])
    brute = _brute_loglik(X.to_numpy(), r.params["weights"], r.params["means"], covs)
    assert r.criteria["loglik"] == pytest.approx(brute, abs=1e-7)
    # respondents who answered everything are classified as well as without missing data (a
    # respondent who skipped the informative columns cannot be, whatever the method)
    complete = X.notna().all(axis=1).to_numpy()
    assert adjusted_rand_score(truth[complete], r.assignment[complete]) >= 0.9
    assert r.diagnostics["n_missing"] == int(X.isna().sum().sum())
    np.testing.assert_allclose(predict_proba(r, X), r.memberships, atol=1e-10)


def _pattern_loglik(A, weights, means, covs):
    """The same observed-data log-likelihood, evaluated per missingness pattern (fast)."""
    obs = ~np.isnan(A)
    total = 0.0
    for pattern in np.unique(obs, axis=0):
        rows = (obs == pattern).all(axis=1)
        Xo = A[rows][:, pattern]
        dens = np.stack(
            [
                np.log(w) + np.atleast_1d(stats.multivariate_normal(m[pattern], c[np.ix_(pattern, pattern)]).logpdf(Xo))
                for w, m, c in zip(weights, means, covs)
            ]
        )
        total += np.logaddexp.reduce(dens, axis=0).sum()
    return total


def test_missing_k1_full_matches_direct_maximisation(with_missing):
    """EM with conditional expectations reaches the observed-data MLE of a Gaussian."""
    X, _ = with_missing
    A = X.to_numpy()
    r = fit_gmm(X, 1, covariance="VVV", random_seed=0, n_init=1, tol=1e-12, max_iter=5000, reg_covar=0.0)

    def negll(theta):
        mu = theta[:3]
        Lc = np.zeros((3, 3))
        Lc[np.tril_indices(3)] = theta[3:]
        Lc[np.diag_indices(3)] = np.exp(np.diag(Lc))
        return -_pattern_loglik(A, [1.0], [mu], [Lc @ Lc.T])

    start = np.r_[np.nanmean(A, axis=0), np.zeros(6)]
    best = optimize.minimize(negll, start, method="BFGS")
    assert r.criteria["loglik"] >= -best.fun - 1e-5
    assert r.criteria["loglik"] == pytest.approx(-best.fun, abs=1e-3)


def test_missing_diagonal_k1_closed_form(with_missing):
    X, _ = with_missing
    r = fit_gmm(X, 1, covariance="VVI", random_seed=0, n_init=1, reg_covar=0.0)
    np.testing.assert_allclose(r.centers[0], X.mean().to_numpy())
    np.testing.assert_allclose(r.params["variances"][0], X.var(ddof=0).to_numpy())


def test_missing_k2_diagonal_is_a_stationary_point(with_missing):
    """Finite-difference gradient of the observed-data log-likelihood vanishes at the EM fit."""
    X, _ = with_missing
    A = X.to_numpy()
    r = fit_gmm(X, 2, covariance="VVI", random_seed=2, n_init=4, tol=1e-13, max_iter=5000, reg_covar=0.0)
    w, mu, var = r.params["weights"], r.params["means"], r.params["variances"]

    def ll(theta):
        lw = np.r_[0.0, theta[0]]
        ww = np.exp(lw) / np.exp(lw).sum()
        m = theta[1:7].reshape(2, 3)
        v = np.exp(theta[7:13]).reshape(2, 3)
        return _pattern_loglik(A, ww, m, [np.diag(row) for row in v])

    theta = np.r_[np.log(w[1] / w[0]), mu.ravel(), np.log(var).ravel()]
    grad = optimize.approx_fprime(theta, ll, 1e-6)
    assert np.abs(grad).max() < 1e-3
    assert ll(theta) == pytest.approx(r.criteria["loglik"], abs=1e-8)


# ------------------------------------------------------------------ degenerate solutions
def test_collapsed_variance_is_reported():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (100, 1)), np.full((10, 1), 6.0)]
    with pytest.warns(ConvergenceWarning, match=r"A variance of segment 2 collapsed .* constrained covariance \(EEI\)"):
        r = fit_gmm(X, 2, covariance="V", random_seed=0, n_init=3)
    assert not r.converged
    assert any("collapsed" in w for w in r.diagnostics["warnings"])
    assert all(r.diagnostics["start_degenerate"])


def test_near_empty_segment_is_reported():
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (995, 2)), rng.normal(30, 1, (5, 2))]
    with pytest.warns(ConvergenceWarning, match=r"Segment 2 holds 0\.5% of respondents: try a smaller k"):
        r = fit_gmm(X, 2, covariance="VVI", random_seed=0, n_init=2)
    assert r.converged  # a small segment is legitimate, just flagged


def test_non_convergence_is_reported(separated):
    X, _ = separated
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        r = fit_gmm(X, 3, covariance="VVV", random_seed=0, n_init=2, max_iter=2, init="random")
    assert not r.converged
    assert r.to_dict()["converged"] is False


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "data", "match"),
    [
        ({"k": 0}, None, r"k must be an integer >= 1; got 0"),
        ({"k": 2.5}, None, r"k must be an integer >= 1; got 2.5"),
        ({"k": 5}, np.array([[1.0], [1.0], [2.0], [2.0], [3.0]]), r"only 3 distinct respondents"),
        ({"k": 2, "init": "spectral"}, None, r"init must be one of kmeans\+\+, random, both; got 'spectral'"),
        ({"k": 2, "n_init": 0}, None, r"n_init must be an integer >= 1; got 0"),
        ({"k": 2, "tol": -1.0}, None, r"tol must be a number >= 0; got -1.0"),
        (
            {"k": 2},
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 4.0, 4.0]}),
            r"Column\(s\) \[b\] have zero variance",
        ),
        ({"k": 2}, pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]}), r"column\(s\) \[s\] are not numeric"),
        (
            {"k": 2},
            pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, np.nan, 2.0]}, index=[10, 11, 12]),
            r"1 row\(s\) \[11\] have no observed value",
        ),
        ({"k": 2}, np.array([[1.0], [np.inf], [3.0]]), r"Infinite values at rows \[2\]"),
    ],
)
def test_bad_input_messages(kwargs, data, match):
    if data is None:
        data = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ConfigError, match=match):
        fit_gmm(data, **kwargs)


# ------------------------------------------------------------------ helpers in _em
def test_normalize_log_is_stable():
    L = np.array([[-1000.0, -1001.0], [5.0, 5.0]])
    r, ll = normalize_log(L.copy())
    np.testing.assert_allclose(r[0], [1 / (1 + np.exp(-1)), 1 - 1 / (1 + np.exp(-1))])
    np.testing.assert_allclose(ll, [np.logaddexp(-1000.0, -1001.0), 5 + np.log(2)])


def test_random_partition_and_report_and_check_k():
    z = random_partition(10, 4, np.random.default_rng(0))
    assert (z.sum(axis=0) >= 1).all()
    rep = replication_report([-5.0, -5.001, -9.0, -4.0], usable=[True, True, True, False])
    assert rep["best"] == 0 and rep["n_best"] == 2 and rep["share_best"] == 0.5
    with pytest.raises(ConfigError, match="k = 3 segments but only 2 respondents"):
        check_k(3, np.zeros((2, 1)), "gmm")


def test_accelerated_em_converges_where_reg_covar_shifts_the_fixed_point():
    """Tight clusters: an over-relaxed step can beat EM's reg_covar-shifted fixed point; the plain
    EM step must still be taken so the start converges instead of stalling."""
    X = np.r_[np.zeros((5, 1)), np.ones((5, 1))] + np.linspace(0, 0.1, 10)[:, None]
    r = fit_gmm(X, 2, random_seed=0)
    assert all(r.diagnostics["start_converged"])
    assert max(r.diagnostics["start_n_iter"]) < 100
    assert r.diagnostics["n_best"] >= 2


def test_auto_covariance_keeps_the_lower_bic_of_eei_and_vvi():
    """covariance="auto" is EEI or VVI, whichever has the lower BIC, and equals that explicit fit."""
    from latentseg.research.simulate import simulate_gaussian_mixture

    for spread, expected in (("diagonal", "EEI"), ("diagonal-unequal", "VVI")):
        X, _ = simulate_gaussian_mixture(400, k=2, d=3, separation=4.0, covariance=spread, random_seed=3)
        auto = fit_gmm(X, 2, covariance="auto", n_init=3, random_seed=1)
        eei = fit_gmm(X, 2, covariance="EEI", n_init=3, random_seed=1)
        vvi = fit_gmm(X, 2, covariance="VVI", n_init=3, random_seed=1)
        assert auto.settings["covariance"] == expected and auto.settings["covariance_requested"] == "auto"
        assert auto.settings["covariance_bic"] == {"EEI": eei.criteria["bic"], "VVI": vvi.criteria["bic"]}
        same = eei if expected == "EEI" else vvi
        assert (same.criteria["bic"] < (vvi if expected == "EEI" else eei).criteria["bic"])
        np.testing.assert_array_equal(auto.memberships, same.memberships)
        assert auto.criteria == same.criteria
