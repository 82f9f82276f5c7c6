"""The JAX log density of the diagonal Gaussian mixture and NumPyro's NUTS on it.

The JAX log density and its gradient are checked against the numba kernel (itself tested against
finite differences, scipy and the PyMC model in test_bayes_models.py); one small fit against the
EM solution, with split R-hat; the seed against bit-for-bit reproducibility. About 20 s here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("numpyro")
jax = pytest.importorskip("jax")

from latentseg.errors import ConfigError  # noqa: E402
from latentseg.models.bayes._jax_kernels import _family_args, gmm_diag_logp_jax, sample_numpyro  # noqa: E402
from latentseg.models.bayes._relabel import relabel_draws  # noqa: E402
from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors  # noqa: E402
from latentseg.research.simulate import simulate_gaussian_mixture  # noqa: E402

pytestmark = pytest.mark.xdist_group("bayes_jax")

SAMPLING = {"draws": 300, "tune": 300, "chains": 2, "target_accept": 0.8, "progressbar": False}


def _data(missing: bool) -> pd.DataFrame:
    X, _ = simulate_gaussian_mixture(150, k=3, d=4, separation=3.0, random_seed=11)
    if missing:
        mask = np.random.default_rng(3).random(X.shape) < 0.08
        X = X.mask(mask)
    return X


def _jax_value_and_grad(fam: GaussianFamily):  # type: ignore[no-untyped-def]
    static, (F, cst, m0, s0, l0) = _family_args(fam)

    def logp(theta):  # type: ignore[no-untyped-def]
        return gmm_diag_logp_jax(theta, F, cst, static["k"], static["d"], static["alpha"], m0, s0, l0,
                                 static["logsd_scale"], static["ks"])

    return jax.jit(jax.value_and_grad(logp))


@pytest.mark.parametrize("covariance", ["diag", "EEI"])
@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_logp_and_gradient_match_numba_kernel(k: int, missing: bool, covariance: str) -> None:
    fam = GaussianFamily(_data(missing), k, covariance, GMMPriors(concentration=1.5, sd_scale=0.7))
    assert fam.F.shape[1] == (3 if missing else 2) * fam.d  # both forms of F are exercised
    kernel = fam.kernel()
    value_and_grad = _jax_value_and_grad(fam)
    rng = np.random.default_rng(k + 10 * missing)
    prior = fam.sample_prior(rng, 4)
    for s in range(4):
        theta = fam.theta_from_params({key: val[s] for key, val in prior.items()})
        theta = theta + 0.3 * rng.standard_normal(theta.size)
        grad = np.empty(theta.size)
        lp = kernel(theta, grad)
        lp_j, grad_j = value_and_grad(theta)
        assert np.isfinite(lp)
        np.testing.assert_allclose(float(lp_j), lp, rtol=1e-10)
        # atol: a component that nearly cancels is compared at the gradient's overall scale
        np.testing.assert_allclose(np.asarray(grad_j), grad, rtol=1e-10, atol=1e-12 * np.abs(grad).max())


def test_logp_outside_support_is_minus_inf_with_zero_gradient() -> None:
    fam = GaussianFamily(_data(False), 3, "diag", GMMPriors())
    theta = fam.theta_from_params({key: val[0] for key, val in fam.sample_prior(np.random.default_rng(0), 1).items()})
    theta[-1] = 31.0  # a log sd beyond the numba kernel's support
    lp, grad = _jax_value_and_grad(fam)(theta)
    assert float(lp) == -np.inf
    assert np.all(np.asarray(grad) == 0.0)
    assert fam.kernel()(theta, np.empty(theta.size)) == -np.inf


@pytest.fixture(scope="module")
def small_fit() -> tuple[GaussianFamily, dict[str, np.ndarray], dict]:
    X, _ = simulate_gaussian_mixture(300, k=3, d=3, separation=3.0, random_seed=5)
    fam = GaussianFamily(X, 3, "diag", GMMPriors())
    start = fam.start_params(fam.em_start(1, 5))
    out = sample_numpyro(fam, start, seed=7, chain_method="vectorized", **SAMPLING)
    return fam, start, out


def _split_rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat (Gelman et al., BDA3 11.4) of draws (C, S, ...), per parameter."""
    C, S = x.shape[:2]
    half = S // 2
    parts = np.concatenate([x[:, :half], x[:, S - half :]], axis=0)  # (2C, half, ...)
    w = parts.var(axis=1, ddof=1).mean(axis=0)
    b = half * parts.mean(axis=1).var(axis=0, ddof=1)
    var = (half - 1) / half * w + b / half
    return np.sqrt(var / w)


def test_small_fit_recovers_em_weights_and_mixes(small_fit) -> None:  # type: ignore[no-untyped-def]
    fam, start, out = small_fit
    C, S = SAMPLING["chains"], SAMPLING["draws"]
    n_free = fam.n_free
    assert out["theta"].shape == (C, S, n_free)
    assert out["params"]["weights"].shape == (C, S, 3)
    assert out["params"]["means"].shape == out["params"]["sds"].shape == (C, S, 3, 3)
    for name in ("diverging", "energy", "tree_depth"):
        assert out[name].shape == (C, S)
    assert out["diverging"].dtype == bool and not out["diverging"].any()
    assert out["step_size"].shape == (C,) and np.all(out["step_size"] > 0)
    assert np.all((out["tree_depth"] >= 1) & (out["tree_depth"] <= 10))
    assert out["info"]["engine"].startswith("numpyro (JAX log density, ")
    params, _ = relabel_draws(out["params"], start, fam.relabel_cost, fam.segment_keys)
    w_mean = params["weights"].mean(axis=(0, 1))
    np.testing.assert_allclose(w_mean, start["weights"], atol=0.05)
    rhat = max(float(_split_rhat(params[name]).max()) for name in ("weights", "means", "sds"))
    assert rhat < 1.05
    # the two chains are distinct (jittered starts, own keys), not copies
    assert not np.array_equal(out["theta"][0], out["theta"][1])


def test_same_seed_same_draws(small_fit) -> None:  # type: ignore[no-untyped-def]
    fam, start, out = small_fit
    again = sample_numpyro(fam, start, seed=7, chain_method="vectorized", **SAMPLING)
    np.testing.assert_array_equal(again["theta"], out["theta"])
    np.testing.assert_array_equal(again["energy"], out["energy"])
    other = sample_numpyro(fam, start, seed=8, chain_method="vectorized", **SAMPLING)
    assert not np.any(np.all(other["theta"] == out["theta"], axis=-1))  # no draw in common


def test_bad_chain_method_and_full_covariance_are_config_errors() -> None:
    X, _ = simulate_gaussian_mixture(60, k=2, d=2, random_seed=1)
    fam = GaussianFamily(X, 2, "diag", GMMPriors())
    start = fam.start_params(fam.em_start(1, 2))
    with pytest.raises(ConfigError, match="'chain_method' parameter of sample_numpyro must be one of"):
        sample_numpyro(fam, start, seed=1, chain_method="pmap", **SAMPLING)
    full = GaussianFamily(X, 2, "full", GMMPriors())
    with pytest.raises(ConfigError, match="diagonal Gaussian mixtures only"):
        sample_numpyro(full, start, seed=1, **SAMPLING)


def test_fit_bayes_gmm_with_numpyro_agrees_with_nutpie() -> None:
    """The public path: ``fit_bayes_gmm(sampler="numpyro")`` samples the same posterior as the
    default sampler (shares and centers within Monte Carlo error), with the engine named."""
    from latentseg.models.bayes.engine import fit_bayes_gmm

    X, _ = simulate_gaussian_mixture(300, k=2, d=2, separation=4.0, random_seed=11)
    X.iloc[0, 1] = np.nan  # missing values drop out of the likelihood on both paths
    opts = {"draws": 500, "tune": 500, "chains": 2, "random_seed": 3}
    a = fit_bayes_gmm(X, 2, sampler="numpyro", **opts)
    b = fit_bayes_gmm(X, 2, **opts)
    assert a.diagnostics["engine"].startswith("numpyro (JAX log density")
    assert a.diagnostics["rhat_max"] < 1.02 and a.diagnostics["divergences"] == 0
    np.testing.assert_allclose(a.shares, b.shares, atol=0.02)
    np.testing.assert_allclose(a.centers, b.centers, atol=0.1)
    np.testing.assert_allclose(a.share_upper - a.share_lower, b.share_upper - b.share_lower, rtol=0.25)
