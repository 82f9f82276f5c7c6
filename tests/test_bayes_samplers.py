"""Every sampler x structure the Bayesian engines accept, end to end on tiny data.

``fit_bayes_gmm`` takes covariance diag (VVI), EEI, full (VVV) and auto (BIC's choice of diag and
EEI); ``fit_bayes_lca`` takes measurement categorical, binary and ordinal; both take the samplers
nutpie, pymc, numpyro and advi. Each cell of that matrix goes its own route (numba kernel, PyMC
model, JAX kernel, PyMC's JAX backend, PyMC's ADVI; the table ``_engine`` below), so each is fitted
once here: two well-separated segments (shares 0.68 / 0.32), few draws, and checks that the route
was the one intended and that the fit recovers the segments. The fits on our numba kernels take a
second or two; the ones that build the PyMC model (and NumPyro's) are marked slow.

Tolerances, for the seeds used: every fit here classifies all respondents right (ARI 1.0); a single
misassigned respondent of 100 gives ARI 0.96, hence ``ARI_MIN``. The shares are within 0.01 of the
sample's (the Dirichlet(1) prior moves a posterior mean share by 0.004 here); ``SHARE_ATOL`` is
0.03, more than 5 Monte Carlo standard errors of a posterior mean of 300 draws (posterior sd
0.047). Centers and item probabilities are compared with the true segments' sample means and
frequencies, which a posterior mean under weak priors sits close to.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import LatentsegWarning
from latentseg.models.bayes.engine import SAMPLERS, fit_bayes_gmm, fit_bayes_lca
from latentseg.models.bayes.gmm import covariance_option
from latentseg.models.bayes.lca import MEASUREMENTS
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture

GMM_STRUCTURES = ("diag", "EEI", "full", "auto")
LCA_STRUCTURES = MEASUREMENTS  # categorical, binary, ordinal
#: a single misassigned respondent of 100 gives 0.96 (every fit here gets 1.0)
ARI_MIN = 0.95
#: the shares are within 0.01 of the sample's; 0.03 is more than 5 Monte Carlo SEs of a 300-draw mean
SHARE_ATOL = 0.03
#: few draws: the chains must agree roughly, not to the 1.01 of a final fit (observed <= 1.06)
RHAT_SMOKE = 1.1
# max_draws = draws: smoke tests of every route with few draws, not extended by the convergence rule
OPTS = {"draws": 150, "tune": 150, "chains": 2, "cores": 1, "random_seed": 4, "advi_iterations": 3000, "max_draws": 150}

_MCMC = pytest.mark.xdist_group("bayes")
_JAX = pytest.mark.xdist_group("bayes_jax")  # as tests/test_bayes_jax.py


def _numpyro() -> None:
    pytest.importorskip("numpyro")
    pytest.importorskip("jax")


def _has_kernel(model: str, structure: str) -> bool:
    return model == "bayes-lca" or structure != "full"


def _engine(model: str, structure: str, sampler: str) -> str:
    """The start of ``diagnostics["engine"]`` that each cell of the matrix must report."""
    kernel = _has_kernel(model, structure)
    if sampler == "nutpie":
        return "nutpie (numba log density" if kernel else "nutpie (PyMC model compiled by PyTensor)"
    if sampler == "pymc":
        return "pymc NUTS on the PyMC model"
    if sampler == "numpyro":
        return "numpyro (JAX log density" if kernel and model == "bayes-gmm" else "numpyro NUTS on the PyMC model"
    return "mean-field ADVI (numba log density)" if kernel else "mean-field ADVI (PyMC)"


def _slow(model: str, structure: str, sampler: str) -> bool:
    """Cells that take more than ~10 s here: those that build the PyMC model or a JAX program."""
    return sampler in ("pymc", "numpyro") or not _has_kernel(model, structure)


def _cells(model: str, structures: tuple[str, ...]) -> list[object]:
    cells = []
    for sampler in SAMPLERS:
        for structure in structures:
            marks = [_JAX if sampler == "numpyro" else _MCMC]
            if _slow(model, structure, sampler):
                marks.append(pytest.mark.slow)
            cells.append(pytest.param(structure, sampler, marks=marks, id=f"{sampler}-{structure}"))
    return cells


@pytest.fixture(scope="module")
def gaussian() -> tuple[pd.DataFrame, np.ndarray]:
    """Two segments 6 sds apart, equal spreads (BIC picks EEI), 68 and 32 respondents."""
    return simulate_gaussian_mixture(100, k=2, d=2, separation=6.0, random_seed=31)


def _latent_class(structure: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Two classes (102 and 48 respondents) on 5 items, 3 categories (2 for binary)."""
    df, z, _ = simulate_categorical(150, k=2, n_items=5, n_categories=2 if structure == "binary" else 3,
                                    separation=0.9, ordinal=structure == "ordinal", random_seed=5)
    return df, np.asarray(z)


def _largest_first(z: np.ndarray) -> list[int]:
    """The true segment labels, largest segment first (the fits' canonical order)."""
    labels, counts = np.unique(z, return_counts=True)
    return [int(v) for v in labels[np.argsort(-counts, kind="stable")]]


def _fit(fn: object, data: pd.DataFrame, sampler: str, structure: str, **kw: object) -> object:
    with warnings.catch_warnings():
        # few draws (R-hat above 1.01) and ADVI's "approximate" label: checked below instead
        warnings.simplefilter("ignore", LatentsegWarning)
        return fn(data, 2, sampler=sampler, **OPTS, **kw)  # type: ignore[operator]


def _check_common(r: object, z: np.ndarray, model: str, structure: str, sampler: str) -> None:
    d = r.diagnostics  # type: ignore[attr-defined]
    assert d["engine"].startswith(_engine(model, structure, sampler)), d["engine"]
    assert d["sampler"] == sampler
    approximate = sampler == "advi"
    assert d["approximate"] is approximate
    assert r.interval_method == ("95% approximate (ADVI)" if approximate else "95% credible")  # type: ignore[attr-defined]
    # the segments: every respondent where it belongs, the shares those of the sample
    assert adjusted_rand_score(z, r.assignment) >= ARI_MIN  # type: ignore[attr-defined]
    truth = np.array([np.mean(z == label) for label in _largest_first(z)])
    np.testing.assert_allclose(r.shares, truth, atol=SHARE_ATOL)  # type: ignore[attr-defined]
    assert np.all(r.share_lower <= r.shares) and np.all(r.shares <= r.share_upper)  # type: ignore[attr-defined]
    if approximate:
        assert d["rhat_max"] is None and d["advi_iterations"] <= OPTS["advi_iterations"]
    else:
        assert d["divergences"] == 0 and d["n_chains"] == OPTS["chains"] and d["n_draws"] == OPTS["draws"]
        assert d["rhat_max"] < RHAT_SMOKE and len(d["modes"]) == 1
        # 95% credible intervals around the sample's shares (MCMC; ADVI's are too narrow as a rule)
        assert np.all(r.share_lower < truth) and np.all(truth < r.share_upper)  # type: ignore[attr-defined]
    post = r.posterior["posterior"]  # type: ignore[attr-defined]
    assert dict(post["weights"].sizes) == {"chain": 1 if approximate else 2, "draw": OPTS["draws"], "segment": 2}
    assert math.isfinite(r.criteria["loo"]) and math.isfinite(r.criteria["waic"])  # type: ignore[attr-defined]
    # the ArviZ-ready tree, the same on every route (sample_stats are NUTS's: none for ADVI)
    tree = r.idata  # type: ignore[attr-defined]
    groups = {"posterior", "log_likelihood", "observed_data"} | (set() if approximate else {"sample_stats"})
    assert groups == set(tree.children) - {"posterior_other_modes"}
    ll, obs = tree["log_likelihood"]["loglik"], tree["observed_data"]
    assert ll.dims == ("chain", "draw", "respondent") and ll.shape[:2] == post["weights"].shape[:2]
    np.testing.assert_array_equal(obs["respondent"].values, ll["respondent"].values)
    assert obs.sizes["respondent"] == r.n  # type: ignore[attr-defined]
    if not approximate:
        assert "diverging" in tree["sample_stats"]


@pytest.mark.parametrize("structure,sampler", _cells("bayes-gmm", GMM_STRUCTURES))
def test_gaussian_mixture_every_sampler_and_structure(structure: str, sampler: str,
                                                      gaussian: tuple[pd.DataFrame, np.ndarray]) -> None:
    if sampler == "numpyro":
        _numpyro()
    X, z = gaussian
    r = _fit(fit_bayes_gmm, X, sampler, structure, covariance=structure)
    _check_common(r, z, "bayes-gmm", structure, sampler)
    fitted = "EEI" if structure == "auto" else structure  # equal spreads: BIC picks EEI
    assert r.settings["covariance"] == fitted
    assert ("covariance_bic" in r.settings) == (structure == "auto")
    # the centers: the true segments' sample means (0.6 and 1.1 sds within a segment, 68 / 32 of them)
    true_means = np.array([X[z == label].mean().to_numpy() for label in _largest_first(z)])
    np.testing.assert_allclose(r.centers, true_means, atol=0.25)
    post = r.posterior["posterior"]
    assert ("covariances" in post) == (fitted == "full")
    if fitted == "full":
        cov = r.params["covariances"]
        assert cov.shape == (2, 2, 2)
        assert np.all(np.linalg.eigvalsh(cov) > 0)
        np.testing.assert_allclose(cov, np.swapaxes(cov, 1, 2))
    else:
        sds = post["sds"].values
        shared = np.array_equal(sds[:, :, 0], sds[:, :, 1])
        assert shared == (fitted == "EEI")  # EEI: one vector of sds for every segment


@pytest.mark.parametrize("structure,sampler", _cells("bayes-lca", LCA_STRUCTURES))
def test_latent_class_every_sampler_and_measurement(structure: str, sampler: str) -> None:
    if sampler == "numpyro":
        _numpyro()
    df, z = _latent_class(structure)
    r = _fit(fit_bayes_lca, df, sampler, structure, measurement=structure)
    _check_common(r, z, "bayes-lca", structure, sampler)
    assert r.settings["measurement"] == structure
    # item probabilities: each true class's answer frequencies (102 and 48 respondents)
    probs = r.params["probs"]
    n_cat = 2 if structure == "binary" else 3
    assert probs.shape == (2, 5, n_cat)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)
    cats = r.extras["categories"]
    for j, item in enumerate(r.feature_names):
        labels = cats[cats["item"] == item].sort_values("code")["category"].tolist()  # probs' last axis
        for seg, cls in enumerate(_largest_first(z)):
            answers = df.loc[z == cls, item].dropna().astype(str)
            freq = answers.value_counts(normalize=True).reindex(labels, fill_value=0.0).to_numpy()
            np.testing.assert_allclose(probs[seg, j], freq, atol=0.08)
    if structure == "ordinal":
        assert r.params["locations"].shape == (2, 5)


def test_covariance_spellings_name_the_same_structures() -> None:
    """The matrix above uses one spelling of each structure; the mclust names are the same ones."""
    assert [covariance_option(c) for c in ("VVI", "diag", "EEI", "VVV", "full", "auto")] == [
        "diag", "diag", "EEI", "full", "full", "auto"
    ]


def test_hdi_is_the_shortest_interval_of_ceil_prob_draws() -> None:
    """``_hdi`` equals ArviZ's HDI asked for exactly ceil(0.95 T) draws and the direct computation:
    sort, slide a window of m = ceil(0.95 T) draws, keep the narrowest; ties and T where 0.95 T is a
    whole number (where ArviZ's own count, floor(0.95 T) + 1, would be one more) included."""
    from latentseg.models.bayes.engine import _hdi

    def direct(draws: np.ndarray, prob: float = 0.95) -> np.ndarray:
        T, k = draws.shape
        m = max(1, math.ceil(prob * T))
        out = np.empty((k, 2))
        for j in range(k):
            x = np.sort(draws[:, j])
            i = int(np.argmin(x[m - 1:] - x[: T - m + 1]))
            out[j] = x[i], x[i + m - 1]
        return out

    import arviz as az

    rng = np.random.default_rng(0)
    for T in [1, 2, 3, 19, 20, 21, 39, 40, 41, 399, 400, 401, 4000]:
        w = rng.dirichlet([5.0, 3.0, 2.0], size=T)
        m = max(1, math.ceil(0.95 * T))
        for draws in (w, np.round(w, 2)):  # continuous, and with ties
            np.testing.assert_array_equal(_hdi(draws), direct(draws))
            # and ArviZ's "nearest" HDI asked for m draws, which _hdi computes without importing ArviZ
            np.testing.assert_array_equal(_hdi(draws), np.asarray(az.hdi(draws, prob=(m - 0.5) / T, axis=0)))
