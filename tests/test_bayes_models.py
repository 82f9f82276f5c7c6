"""The Bayesian mixtures' log densities: numba kernels against finite differences, an independent
scipy computation and the PyMC models; finiteness at the EM start; the numpy summaries' density."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
from latentseg.models.bayes.lca import LatentClassFamily, LCAPriors
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture


def _gmm_data(n: int = 120, d: int = 4, missing: bool = True) -> pd.DataFrame:
    X, _ = simulate_gaussian_mixture(n, k=3, d=d, separation=3.0, random_seed=11)
    if missing:
        X.iloc[3, 1] = np.nan
        X.iloc[7, 0] = np.nan
        X.iloc[8, [1, 2]] = np.nan
    return X


def _lca_data(ordinal: bool) -> pd.DataFrame:
    df, _, _ = simulate_categorical(150, k=3, n_items=5, n_categories=4, ordinal=ordinal, missing_rate=0.05,
                                    random_seed=4)
    if ordinal:  # an item with only three levels and a binary one: ragged category counts
        df["item4"] = df["item4"].clip(upper=2)
        df["item5"] = (df["item5"] >= 2).astype("Int64")
    return df


def _families() -> list[tuple[str, object]]:
    return [
        ("gmm", GaussianFamily(_gmm_data(), 3, "diag", GMMPriors(concentration=1.5))),
        ("gmm-complete", GaussianFamily(_gmm_data(missing=False), 3, "diag", GMMPriors(sd_scale=0.7))),
        ("gmm-eei", GaussianFamily(_gmm_data(), 3, "EEI", GMMPriors(concentration=1.5))),
        ("gmm-eei-complete", GaussianFamily(_gmm_data(missing=False, d=3), 3, "EEI", GMMPriors(sd_scale=0.7))),
        ("lca-categorical", LatentClassFamily(_lca_data(False), 3, "categorical", LCAPriors(item_concentration=0.8))),
        ("lca-ordinal", LatentClassFamily(_lca_data(True), 3, "ordinal", LCAPriors())),
    ]


def _random_theta(fam: object, rng: np.random.Generator, scale: float) -> np.ndarray:
    p = fam.sample_prior(rng, 1)  # type: ignore[attr-defined]
    theta = fam.theta_from_params({key: val[0] for key, val in p.items()})  # type: ignore[attr-defined]
    return theta + scale * rng.standard_normal(theta.size)


@pytest.mark.parametrize("name,fam", _families(), ids=lambda v: v if isinstance(v, str) else "")
def test_kernel_gradient_matches_finite_differences(name: str, fam: object) -> None:
    rng = np.random.default_rng(1)
    logp = fam.kernel()  # type: ignore[attr-defined]
    for _ in range(3):
        theta = _random_theta(fam, rng, 0.3)
        grad = np.empty(theta.size)
        lp = logp(theta, grad)
        assert np.isfinite(lp)
        num = np.empty(theta.size)
        h = 1e-6
        for i in range(theta.size):
            e = np.zeros(theta.size)
            e[i] = h
            num[i] = (logp(theta + e, np.empty(theta.size)) - logp(theta - e, np.empty(theta.size))) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6 * (1 + np.abs(num).max()))


@pytest.mark.parametrize("name,fam", _families(), ids=lambda v: v if isinstance(v, str) else "")
def test_logp_and_gradient_finite_at_em_start(name: str, fam: object) -> None:
    em = fam.em_start(3, 5)  # type: ignore[attr-defined]
    start = fam.start_params(em)  # type: ignore[attr-defined]
    theta = fam.theta_from_params(start)  # type: ignore[attr-defined]
    grad = np.empty(theta.size)
    lp = fam.kernel()(theta, grad)  # type: ignore[attr-defined]
    assert np.isfinite(lp) and np.all(np.isfinite(grad))
    # the start reproduces the EM solution (weights and, for latent class models, probabilities)
    back = fam.params_from_theta(theta)  # type: ignore[attr-defined]
    np.testing.assert_allclose(back["weights"], start["weights"], atol=1e-12)
    if "probs" in start:
        np.testing.assert_allclose(back["probs"], start["probs"], atol=1e-9)
        em_probs = fam._flat_probs(np.nan_to_num(em.params["probs"]))  # type: ignore[attr-defined]
        np.testing.assert_allclose(back["probs"], em_probs, atol=2e-3)


@pytest.mark.parametrize("covariance", ["diag", "EEI"])
def test_gmm_kernel_equals_independent_scipy_computation(covariance: str) -> None:
    fam = GaussianFamily(_gmm_data(), 3, covariance, GMMPriors(concentration=1.5, mean_scale=2.0, sd_scale=0.5))
    rng = np.random.default_rng(5)
    theta = _random_theta(fam, rng, 0.2)
    lp = fam.kernel()(theta, np.empty(theta.size))
    k, d = fam.k, fam.d
    y = theta[: k - 1]
    mu = theta[k - 1 : k - 1 + k * d].reshape(k, d) + fam.center
    ls_free = theta[k - 1 + k * d :]
    assert ls_free.size == (d if covariance == "EEI" else k * d)
    ls = np.broadcast_to(ls_free.reshape(-1, d), (k, d))
    X = fam.X
    u = np.r_[y, -y.sum()]
    w = np.exp(u) / np.exp(u).sum()
    # log prior in the unconstrained space: Dirichlet weights with the simplex Jacobian (log k + sum log w),
    # Normal means, LogNormal sds with the log Jacobian
    prior = stats.dirichlet.logpdf(w, np.full(k, 1.5)) + math.log(k) + np.log(w).sum()
    prior += np.sum(stats.norm.logpdf(mu, fam.center, 2.0 * fam.scale))
    ls_prior = ls_free.reshape(-1, d)  # EEI: one prior term per feature, not per segment
    prior += np.sum(stats.lognorm.logpdf(np.exp(ls_prior), s=1.0, scale=0.5 * fam.scale) + ls_prior)
    lik = 0.0
    for row in X:
        o = ~np.isnan(row)
        comp = [math.log(w[j]) + stats.norm.logpdf(row[o], mu[j, o], np.exp(ls[j, o])).sum() for j in range(k)]
        lik += float(np.logaddexp.reduce(comp))
    assert lp == pytest.approx(prior + lik, rel=1e-11)


@pytest.mark.parametrize("covariance", ["diag", "EEI"])
def test_gmm_c_callback_equals_numba_kernel(covariance: str) -> None:
    """The C callback nutpie calls (data and the sd layout read from the packed buffer) is the
    numba kernel."""
    import ctypes

    from latentseg.models.bayes._kernels import cfunc

    fam = GaussianFamily(_gmm_data(), 3, covariance, GMMPriors(concentration=1.5))
    name, buf = fam.c_kernel()
    fn = cfunc(name).ctypes  # type: ignore[attr-defined]
    dptr = ctypes.POINTER(ctypes.c_double)
    rng = np.random.default_rng(2)
    for _ in range(3):
        theta = _random_theta(fam, rng, 0.3)
        grad, grad_c, lp_c = np.empty(theta.size), np.empty(theta.size), np.empty(1)
        lp = fam.kernel()(theta, grad)
        status = fn(theta.size, theta.ctypes.data_as(dptr), grad_c.ctypes.data_as(dptr), lp_c.ctypes.data_as(dptr),
                    buf.ctypes.data_as(ctypes.c_void_p))
        assert status == 0
        assert lp_c[0] == lp
        np.testing.assert_array_equal(grad_c, grad)


def _compile_logp(model: object) -> tuple[object, object]:
    """Compile the PyMC model's log density and gradient with PyTensor's Python linker (no C, no
    numba), which takes seconds even with an empty compile cache."""
    import pytensor
    from pytensor.compile.mode import Mode

    mode = Mode(linker="py", optimizer="fast_compile")
    with pytensor.config.change_flags(cxx=""):
        return model.compile_logp(jacobian=True, mode=mode), model.compile_dlogp(mode=mode)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name,fam", _families(), ids=lambda v: v if isinstance(v, str) else "")
def test_kernel_equals_pymc_model(name: str, fam: object) -> None:
    """The numba kernel is the PyMC model's log density (incl. Jacobians) and gradient."""
    model = fam.pymc_model()  # type: ignore[attr-defined]
    logp, dlogp = _compile_logp(model)
    order = [v.name for v in model.value_vars]  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    for scale in (0.1, 0.5, 1.0):
        theta = _random_theta(fam, rng, scale)
        grad = np.empty(theta.size)
        lp = fam.kernel()(theta, grad)  # type: ignore[attr-defined]
        point = fam.pymc_point(theta)  # type: ignore[attr-defined]
        assert float(logp(point)) == pytest.approx(lp, rel=1e-12, abs=1e-8)
        # PyMC's gradient is ordered by value variable; ours by layout: compare per block
        g_pm = np.asarray(dlogp(point))
        sizes = [np.size(point[name]) for name in order]
        blocks = np.split(g_pm, np.cumsum(sizes)[:-1])
        g_pm_by_name = dict(zip(order, blocks))
        ours = np.concatenate([g_pm_by_name[name].ravel() for name in point])
        np.testing.assert_allclose(grad, ours, rtol=1e-9, atol=1e-8)


def test_full_covariance_model_finite_at_em_start_and_matches_numpy_density() -> None:
    X = _gmm_data(n=90, d=3, missing=False)
    fam = GaussianFamily(X, 2, "full", GMMPriors())
    em = fam.em_start(2, 5)
    start = fam.start_params(em)
    model = fam.pymc_model()
    logp, dlogp = _compile_logp(model)
    lw = np.log(start["weights"])
    point = {"weights_simplex__": (lw - lw.mean())[:-1], "means": start["means"]}
    idx = np.tril_indices(3)
    diag_pos = np.flatnonzero(idx[0] == idx[1])
    for j in range(2):
        packed = start["chols"][j][idx].copy()
        packed[diag_pos] = np.log(packed[diag_pos])
        point[f"chol_{j + 1}_cholesky-cov-packed__"] = packed
    assert set(point) == {v.name for v in model.value_vars}
    assert np.isfinite(logp(point)) and np.all(np.isfinite(dlogp(point)))
    # the likelihood term equals the numpy marginal log-likelihood used for memberships and LOO
    import pytensor
    from pytensor.compile.mode import Mode

    with pytensor.config.change_flags(cxx=""):
        out = model.replace_rvs_by_values([model["loglik"]])[0]
        f = model.compile_fn(out, inputs=model.value_vars, mode=Mode(linker="py", optimizer="fast_compile"))
    ll_pm = float(f(point))
    p = {key: val[None] for key, val in start.items()}
    L = fam.log_component(p, slice(0, fam.n))[0] + np.log(start["weights"])
    ll_np = float(np.logaddexp.reduce(L, axis=1).sum())
    assert ll_pm == pytest.approx(ll_np, rel=1e-10)
    # and the EM log-likelihood (the same model at the same parameters)
    assert ll_np == pytest.approx(em.criteria["loglik"], rel=1e-6)


def test_log_component_equals_em_loglik_diag() -> None:
    fam = GaussianFamily(_gmm_data(), 3, "diag", GMMPriors())
    em = fam.em_start(1, 5)
    start = fam.start_params(em)
    p = {key: val[None] for key, val in start.items()}
    L = fam.log_component(p, slice(0, fam.n))[0] + np.log(start["weights"])
    assert float(np.logaddexp.reduce(L, axis=1).sum()) == pytest.approx(em.criteria["loglik"], rel=1e-6)


@pytest.mark.parametrize("ordinal", [False, True])
def test_lca_log_component_equals_em_loglik(ordinal: bool) -> None:
    fam = LatentClassFamily(_lca_data(ordinal), 3, "ordinal" if ordinal else "categorical", LCAPriors())
    em = fam.em_start(1, 5)
    start = fam.start_params(em)
    p = {key: val[None] for key, val in start.items()}
    L = fam.log_component(p, slice(0, fam.n))[0] + np.log(start["weights"])
    # start probabilities are floored at 1e-4, so allow a little
    assert float(np.logaddexp.reduce(L, axis=1).sum()) == pytest.approx(em.criteria["loglik"], rel=2e-3)


def test_prior_draws_match_the_declared_priors() -> None:
    fam = GaussianFamily(_gmm_data(), 3, "diag", GMMPriors(concentration=2.0, mean_scale=2.0, sd_scale=0.5))
    p = fam.sample_prior(np.random.default_rng(3), 4000)
    # Dirichlet(2, 2, 2): mean 1/3, variance (1/3)(2/3)/(6+1)
    assert p["weights"].mean() == pytest.approx(1 / 3, abs=0.01)
    assert p["weights"][:, 0].var() == pytest.approx((1 / 3) * (2 / 3) / 7, rel=0.1)
    np.testing.assert_allclose(p["means"].mean(axis=(0, 1)), fam.center, atol=0.15 * fam.scale.max())
    np.testing.assert_allclose(p["means"].std(axis=(0, 1)), 2.0 * fam.scale, rtol=0.06)
    np.testing.assert_allclose(np.median(p["sds"], axis=(0, 1)), 0.5 * fam.scale, rtol=0.08)
    lca = LatentClassFamily(_lca_data(True), 3, "ordinal", LCAPriors(threshold_scale=2.0))
    q = lca.sample_prior(np.random.default_rng(4), 3000)
    tau = q["thresholds"]
    assert np.abs(tau[:, 0, :3].sum(axis=1)).max() < 1e-12  # zero-sum per item
    assert tau[:, 0, 0].std() == pytest.approx(2.0 * math.sqrt(1 - 1 / 3), rel=0.06)


def test_vectorised_exp_matches_numpy_to_a_few_ulp() -> None:
    """The kernels' own exp (Estrin polynomial + exponent bits) against numpy's, including the
    range-reduction boundaries and the clamp at -700."""
    from latentseg.models.bayes._kernels import exp_inplace

    rng = np.random.default_rng(3)
    x = np.concatenate([
        -np.abs(rng.normal(0, 30, 20_000)),
        -np.abs(rng.normal(0, 0.5, 20_000)),
        [0.0, -1e-300, -0.5 * math.log(2), -1.5 * math.log(2), -699.9, -700.0, -745.0, -1e10],
    ])
    got = x.copy()
    exp_inplace(got, np.empty(x.size, dtype=np.int64))
    ref = np.exp(np.maximum(x, -700.0))
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    assert np.max(np.abs(got - ref) / ref) < 5e-16


def test_membership_summary_equals_numpy() -> None:
    """The compiled membership summaries (log-likelihood, posterior mean membership and its 95%
    interval over draws) against a direct numpy computation, including np.quantile's rounding."""
    from scipy.special import logsumexp, softmax

    from latentseg.models.bayes._kernels import membership_summary

    rng = np.random.default_rng(5)
    for T, B, k in ((2000, 30, 4), (7, 5, 1), (101, 3, 3)):
        L = rng.normal(0, 3, (T, B, k))
        L[0, 0, 0] = -800.0  # below the exp clamp
        logw = np.log(rng.dirichlet(np.ones(k), size=T))
        ref_ll = logsumexp(L + logw[:, None, :], axis=2)
        ref_z = softmax(L + logw[:, None, :], axis=2)
        ll, zm, zi = np.empty((T, B)), np.empty((B, k)), np.empty((B, k, 2))
        membership_summary(L.copy(), logw, 0.025, 0.975, ll, zm, zi)
        np.testing.assert_allclose(ll, ref_ll, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(zm, ref_z.mean(axis=0), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(zi, np.moveaxis(np.quantile(ref_z, [0.025, 0.975], axis=0), 0, -1), rtol=1e-12, atol=1e-300)


def test_quantile_by_selection_equals_numpy_with_ties() -> None:
    from latentseg.models.bayes._kernels import _quantile_pair

    rng = np.random.default_rng(8)
    for T in (1, 2, 3, 10, 999, 2000):
        for vals in (rng.normal(size=T), rng.integers(0, 3, T).astype(float), np.zeros(T), np.sort(rng.normal(size=T)),
                     -np.sort(rng.normal(size=T))):
            for q in ((0.025, 0.975), (0.0, 1.0), (0.5, 0.89)):
                got = _quantile_pair(vals.copy(), *q)
                np.testing.assert_array_equal(got, np.quantile(vals, q))
