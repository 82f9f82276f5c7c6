"""Survey weights in the Bayesian mixtures (issue 16): the weighted pseudo-posterior and its
design-based adjustment (Williams & Savitsky 2021; ``latentseg.models.bayes._survey``).

Exact checks: an integer weight on a row gives the log density and gradient of that row repeated,
in every kernel (numba, the C callbacks nutpie calls) and in the PyMC models; weights of 1 give
the unweighted kernel bit for bit. Truth checks, on unequal-probability samples from
``simulate_weighted_survey`` (population shares known): the adjusted share sd matches the
design-based (linearisation) SE; scaling the weights leaves the adjusted intervals alone while the
plain weighted likelihood's narrow or widen; the weighted posterior mean shares are the weighted
(Hajek) shares of the respondents' segments, the unweighted ones are biased; and a small coverage
study (the full one is ``benchmarks/study_weights_bayes.py``). Margins are stated where used.
"""

from __future__ import annotations

import ctypes
import dataclasses
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from latentseg.errors import ConfigError, ConvergenceWarning, LatentsegWarning
from latentseg.models.bayes import engine
from latentseg.models.bayes._kernels import cfunc
from latentseg.models.bayes.engine import fit_bayes_gmm, fit_bayes_lca
from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
from latentseg.models.bayes.lca import LatentClassFamily, LCAPriors
from latentseg.research.simulate import simulate_response_styles, simulate_weighted_survey
from latentseg.result import SegmentationResult

FAST = {"chains": 2, "draws": 500, "tune": 500, "max_draws": 500, "n_init": 3, "cores": 1}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)  # short chains: the diagnostics are not judged here
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _matched(labels: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """Fitted segment of each true segment, by the table of modal assignments."""
    tab = np.zeros((k, k))
    np.add.at(tab, (labels, z.argmax(axis=1)), 1.0)
    return linear_sum_assignment(-tab)[1]


def _hajek(labels: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    return np.array([w[labels == j].sum() for j in range(k)]) / w.sum()


# ----------------------------------------------------------------------------- exact checks
def _families():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (15, 3)), rng.normal(3, 1, (10, 3))]
    Xm = X.copy()
    Xm[[1, 7, 20], [0, 2, 1]] = np.nan
    levels = pd.DataFrame({f"q{i}": rng.integers(1, 5, 25) for i in range(4)}).astype("Int64")
    levels.iloc[[2, 9], [1, 3]] = pd.NA
    from latentseg.models.bayes.rating_lca import RatingClassFamily
    from latentseg.prepare.ratings import rating_frame

    survey, _ = simulate_response_styles(25, n_outcomes=2, n_segments=2, separation=2.0, top_share=0.0, random_seed=4)
    return {
        "gmm-diag-missing": GaussianFamily(Xm, 2, "diag", GMMPriors()),
        "gmm-EEI": GaussianFamily(X, 3, "EEI", GMMPriors()),
        "lca-categorical": LatentClassFamily(levels, 2, "categorical", LCAPriors()),
        "lca-ordinal": LatentClassFamily(levels, 3, "ordinal", LCAPriors()),
        "rating-categorical": RatingClassFamily(rating_frame(survey), 2, "categorical", LCAPriors()),
    }


FAMILIES = _families()


def _duplicated(family, idx: np.ndarray):
    """The family with its rows repeated as ``idx`` says, the priors' data summaries unchanged."""
    dup = object.__new__(type(family))
    dup.__dict__.update(family.__dict__)
    if isinstance(family, GaussianFamily):
        dup.F = np.ascontiguousarray(family.F[idx])
        dup._Ft = None
        dup.cst = family.cst[idx]
        dup.n = idx.size
    else:
        dup.Y = np.ascontiguousarray(family.Y[idx])
        dup.n = idx.size
    dup.sample_weight = None
    return dup


def _c_call(family, theta: np.ndarray) -> tuple[float, np.ndarray]:
    name, pack = family.c_kernel()
    grad, lp = np.empty(theta.size), np.empty(1)
    ptr = ctypes.POINTER(ctypes.c_double)
    rc = cfunc(name).ctypes(theta.size, theta.ctypes.data_as(ptr), grad.ctypes.data_as(ptr), lp.ctypes.data_as(ptr),
                            pack.ctypes.data_as(ctypes.c_void_p))
    assert rc == 0
    return float(lp[0]), grad


@pytest.mark.parametrize("name", list(FAMILIES))
def test_integer_weights_are_duplicated_rows(name):
    """sum_n w_n log p(x_n) with integer w is the log-likelihood of the rows repeated w times: the
    same log density and gradient at the same parameters (numba kernel and nutpie's C callback),
    and weights of 1 give the unweighted kernel bit for bit."""
    fam = FAMILIES[name]
    rng = np.random.default_rng(7)
    w = rng.integers(1, 4, fam.n).astype(float)
    weighted = object.__new__(type(fam))
    weighted.__dict__.update(fam.__dict__)
    weighted.sample_weight = w
    dup = _duplicated(fam, np.repeat(np.arange(fam.n), w.astype(int)))
    prior = fam.sample_prior(np.random.default_rng(1), 1)
    theta = fam.theta_from_params({key: val[0] for key, val in prior.items()})
    nd = theta.size
    g_w, g_d = np.empty(nd), np.empty(nd)
    lp_w = weighted.kernel()(theta, g_w)
    lp_d = dup.kernel()(theta, g_d)
    assert lp_w == pytest.approx(lp_d, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(g_w, g_d, rtol=1e-10, atol=1e-8)
    lp_c, g_c = _c_call(weighted, theta)  # what nutpie's compiled route calls
    assert lp_c == pytest.approx(lp_w, rel=1e-13, abs=1e-10)
    np.testing.assert_allclose(g_c, g_w, rtol=1e-12, atol=1e-9)
    ones = object.__new__(type(fam))
    ones.__dict__.update(fam.__dict__)
    ones.sample_weight = np.ones(fam.n)
    g1, g0 = np.empty(nd), np.empty(nd)
    assert ones.kernel()(theta, g1) == fam.kernel()(theta, g0)
    np.testing.assert_array_equal(g1, g0)


@pytest.mark.parametrize("name", ["gmm-diag-missing", "lca-categorical"])
def test_pymc_model_carries_the_weights(name):
    """The PyMC model (samplers "pymc" / "numpyro" / full covariance) has the same weighted log
    density as the kernel, up to a constant (the kernel drops none, so: equal differences)."""
    fam = object.__new__(type(FAMILIES[name]))
    fam.__dict__.update(FAMILIES[name].__dict__)
    fam.sample_weight = np.random.default_rng(2).uniform(0.3, 3.0, fam.n)
    model = fam.pymc_model()
    logp = model.compile_logp(jacobian=True)
    vals = []
    for seed in (1, 2):
        prior = fam.sample_prior(np.random.default_rng(seed), 1)
        theta = fam.theta_from_params({key: val[0] for key, val in prior.items()})
        vals.append((logp(fam.pymc_point(theta)), fam.kernel()(theta, np.empty(theta.size))))
    assert vals[0][0] - vals[1][0] == pytest.approx(vals[0][1] - vals[1][1], rel=1e-9, abs=1e-7)


def test_bad_weights_name_the_rows():
    X = np.random.default_rng(0).normal(size=(30, 2))
    w = np.ones(30)
    w[[4, 11]] = [0.0, -1.0]
    with pytest.raises(ConfigError, match=r"2 row\(s\).*5.*12"):
        fit_bayes_gmm(X, 2, sample_weight=w)
    with pytest.raises(ConfigError, match="full-covariance"):
        fit_bayes_gmm(X, 2, covariance="full", sample_weight=np.ones(30))
    with pytest.raises(ConfigError, match="one weight per respondent"):
        fit_bayes_gmm(X, 2, sample_weight=np.ones(29))


# ----------------------------------------------------------------------------- shared fits
@pytest.fixture(scope="module")
def gmm_sample():
    # k = 2, well separated: memberships are near 0 / 1, so the weighted share is close to the
    # weighted (Hajek) mean of the memberships and its linearisation SE is the design-based truth
    return simulate_weighted_survey(300, k=2, kind="scores", d=3, separation=5.0, random_seed=1)


@pytest.fixture(scope="module")
def gmm_fits(gmm_sample):
    s = gmm_sample
    X = s.data.to_numpy(float)
    opts = dict(FAST, draws=1000, max_draws=1000)
    return {c: _quiet(fit_bayes_gmm, X, 2, random_seed=1, sample_weight=s.weights * c, **opts) for c in (1.0, 4.0, 0.25)}


def test_adjusted_share_sd_is_the_design_based_se(gmm_fits, gmm_sample):
    """The adjusted posterior sd of a share equals the linearisation SE of the weighted share
    (with-replacement variance of the weighted membership total), whatever the weights' scale.
    Measured sd / SE: 0.985-1.049 over data seeds 1-3 and scales 1, 4, 1/4; bounds 0.85-1.25."""
    w = gmm_sample.weights
    n = w.size
    for c, r in gmm_fits.items():
        z = r.memberships[:, 0]
        p = (w * z).sum() / w.sum()
        u = w * (z - p)
        se = np.sqrt(n / (n - 1) * ((u - u.mean()) ** 2).sum()) / w.sum()
        sd = float(r.extras["share_summary"]["sd"].iloc[0])
        assert 0.85 < sd / se < 1.25, (c, sd, se)
        assert abs(r.shares[0] - p) < 0.01  # measured 0.0002-0.0034


def test_adjusted_intervals_widen_and_narrow_as_the_design_says(gmm_fits):
    """Weights 4 times larger make the plain weighted likelihood (the unadjusted pseudo-posterior)
    twice too sure, weights 4 times smaller twice too unsure; the adjustment restores the design's
    width. Measured width(adjusted) / width(pseudo-posterior): 1.10-1.17 at scale 1, 2.23-2.33 at
    scale 4, 0.528-0.551 at scale 1/4 (data seeds 1-3); the adjusted widths agree within 4%."""
    ratio, widths = {}, {}
    for c, r in gmm_fits.items():
        pp = r.diagnostics["survey_weights"]["pseudo_posterior_shares"]
        widths[c] = r.share_upper[0] - r.share_lower[0]
        ratio[c] = widths[c] / (pp["upper"][0] - pp["lower"][0])
    assert ratio[4.0] > 1.7 and ratio[0.25] < 0.75
    assert 0.9 < ratio[1.0] < 1.5
    assert widths[4.0] == pytest.approx(widths[1.0], rel=0.15)
    assert widths[0.25] == pytest.approx(widths[1.0], rel=0.15)


def test_weighted_result_contract(gmm_fits, gmm_sample):
    r = gmm_fits[1.0]
    w = gmm_sample.weights
    assert r.interval_method == "95% credible, design-adjusted pseudo-posterior (Williams-Savitsky)"
    sw = r.diagnostics["survey_weights"]
    assert sw["effective_n"] == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    # LOO / WAIC: the weighted sums of the respondents' terms (the unweighted terms kept alongside)
    np.testing.assert_allclose(r.extras["elpd_loo_pointwise"], w * r.extras["elpd_loo_pointwise_unweighted"])
    assert r.criteria["loo"] == pytest.approx(float(np.sum(w * r.extras["elpd_loo_pointwise_unweighted"])))
    assert r.criteria["waic"] == pytest.approx(float(np.sum(w * r.extras["elpd_waic_pointwise_unweighted"])))
    # expected counts on the weighted scale
    summ = r.extras["share_summary"]
    np.testing.assert_allclose(summ["membership_sum"], w @ r.memberships)
    if "sample_weight" in {f.name for f in dataclasses.fields(SegmentationResult)}:  # issue 16's field (wts-em)
        np.testing.assert_array_equal(r.sample_weight, w)


def test_compiled_route_carries_the_weights(gmm_sample, monkeypatch):
    """nutpie's C callback and its public Python-callback route give the same weighted draws."""
    X = gmm_sample.data.to_numpy(float)[:150]
    w = gmm_sample.weights[:150]
    opts = dict(FAST, draws=100, tune=100, max_draws=100, chains=1)
    a = _quiet(fit_bayes_gmm, X, 2, random_seed=3, sample_weight=w, **opts)
    monkeypatch.setattr(engine, "USE_C_CALLBACK", False)
    b = _quiet(fit_bayes_gmm, X, 2, random_seed=3, sample_weight=w, **opts)
    assert "C callback" in a.diagnostics["engine"] and "Python callback" in b.diagnostics["engine"]
    np.testing.assert_array_equal(a.posterior["posterior"]["means"].values, b.posterior["posterior"]["means"].values)


@pytest.mark.parametrize("kind", ["scores", "levels"])
def test_weighted_shares_are_the_population_shares(kind):
    """The weighted posterior mean shares are the weighted (Hajek) shares of the respondents' true
    segments and near the population's; the unweighted ones are the sample's, biased. Measured
    on data seeds 1 / 2 / 3 (the test uses 2): largest |weighted - Hajek| 0.045 / 0.005 / 0.029
    (scores), 0.001 / 0.001 / 0.008 (levels); |weighted - population| 0.025-0.067; |unweighted -
    population| 0.24-0.29, |unweighted - sample| 0.002-0.038. Where the EM engine takes weights
    (issue 16), the weighted EM shares too."""
    k = 3
    s = simulate_weighted_survey(300, k=k, kind=kind, d=5 if kind == "scores" else 8,
                                 separation=4.0 if kind == "scores" else 0.8, random_seed=2)
    labels = np.asarray(s.labels) - 1
    fit = fit_bayes_gmm if kind == "scores" else fit_bayes_lca
    rw = _quiet(fit, s.data, k, random_seed=2, sample_weight=s.weights, **FAST)
    ru = _quiet(fit, s.data, k, random_seed=2, **FAST)
    hajek = _hajek(labels, s.weights, k)
    sw = rw.shares[_matched(labels, rw.memberships, k)]
    su = ru.shares[_matched(labels, ru.memberships, k)]
    tol = 0.03 if kind == "scores" else 0.06
    np.testing.assert_allclose(sw, hajek, atol=tol)
    np.testing.assert_allclose(sw, s.population_shares, atol=tol + 0.03)
    assert np.max(np.abs(su - s.population_shares)) > 0.12  # the unweighted fit estimates the sample's shares
    np.testing.assert_allclose(su, s.sample_shares, atol=tol)
    from latentseg.models.gmm import fit_gmm
    from latentseg.models.lca import fit_lca

    em_fit = fit_gmm if kind == "scores" else fit_lca
    if "sample_weight" in inspect.signature(em_fit).parameters:
        em = em_fit(s.data, k, random_seed=2, sample_weight=s.weights)
        np.testing.assert_allclose(sw, em.shares[_matched(labels, em.memberships, k)], atol=0.03)


def test_rating_lca_takes_weights():
    from latentseg.models.bayes.rating_lca import fit_bayes_rating_lca

    survey, truth = simulate_response_styles(200, n_outcomes=3, n_segments=2, separation=2.0, top_share=0.0,
                                             random_seed=4)
    w = np.random.default_rng(0).uniform(0.5, 2.0, 200)
    r = _quiet(fit_bayes_rating_lca, survey, 2, random_seed=1, sample_weight=w, **dict(FAST, draws=200, tune=200,
                                                                                        max_draws=200))
    assert r.interval_method.startswith("95% credible, design-adjusted")
    assert r.diagnostics["survey_weights"]["n_params"] == 1 + 2 * 3 * 2 * 4  # (k-1) + k J (C_imp-1 + C_sat-1)
    np.testing.assert_allclose(r.extras["share_summary"]["membership_sum"], w @ r.memberships)


@pytest.mark.slow
@pytest.mark.parametrize("kind,datasets", [("scores", 16), ("levels", 10)])
def test_coverage_small(kind, datasets):
    """A small coverage check (k = 2, n = 300; the full study is benchmarks/study_weights_bayes.py):
    the adjusted 95% interval of segment 1's share covers the population share. Under 95% coverage
    P(4 or more misses of 16) = 0.007 and P(3 or more of 10) = 0.012: the thresholds."""
    misses = 0
    for seed in range(1, datasets + 1):
        s = simulate_weighted_survey(300, k=2, kind=kind, d=4 if kind == "scores" else 6,
                                     separation=4.0 if kind == "scores" else 0.6, random_seed=100 + seed)
        fit = fit_bayes_gmm if kind == "scores" else fit_bayes_lca
        r = _quiet(fit, s.data, 2, random_seed=seed, sample_weight=s.weights, **FAST)
        j = _matched(np.asarray(s.labels) - 1, r.memberships, 2)[0]
        misses += not (r.share_lower[j] <= s.population_shares[0] <= r.share_upper[j])
    assert misses <= (3 if datasets == 16 else 2)
