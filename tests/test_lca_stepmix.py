"""Latent class EM against StepMix (a test-only dependency): same likelihood, same maximum, same counts.

StepMix's ``score(X)`` is the *average* log-likelihood per respondent; the total is ``score * n``.
Its ``n_parameters`` counts the class weights too, so it equals poLCA's
``(k - 1) + k * sum_j (C_j - 1)``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from latentseg.models.lca import fit_lca, log_likelihood
from latentseg.research.simulate import simulate_categorical

stepmix = pytest.importorskip("stepmix")

N, K, ITEMS, LEVELS = 400, 3, 8, 4
pytestmark = pytest.mark.xdist_group("lca_stepmix")


def _stepmix(X: np.ndarray, measurement: str):
    from stepmix.stepmix import StepMix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return StepMix(
            n_components=K, measurement=measurement, n_init=6, abs_tol=1e-10, rel_tol=0.0,
            random_state=1, progress_bar=0, verbose=0,
        ).fit(X)


@pytest.fixture(scope="module")
def complete():
    data, _, _ = simulate_categorical(N, K, ITEMS, LEVELS, separation=0.5, random_seed=31)
    X = data.to_numpy(dtype=float, na_value=np.nan)
    return data, X, _stepmix(X, "categorical"), fit_lca(data, K, n_init=10, random_seed=1, tol=1e-10)


@pytest.fixture(scope="module")
def with_missing():
    data, _, _ = simulate_categorical(N, K, ITEMS, LEVELS, separation=0.5, missing_rate=0.1, random_seed=31)
    X = data.to_numpy(dtype=float, na_value=np.nan)
    return data, X, _stepmix(X, "categorical_nan"), fit_lca(data, K, n_init=10, random_seed=1, tol=1e-10)


@pytest.mark.parametrize("case", ["complete", "with_missing"])
def test_maximum_equals_stepmix(case, request):
    data, X, sm, ours = request.getfixturevalue(case)
    sm_loglik = sm.score(X) * X.shape[0]
    # equal to StepMix's best start within 1e-3, never worse
    assert ours.criteria["loglik"] >= sm_loglik - 1e-3
    assert abs(ours.criteria["loglik"] - sm_loglik) < 1e-3
    # parameter count: poLCA's formula, and StepMix's count
    assert ours.criteria["n_params"] == (K - 1) + K * ITEMS * (LEVELS - 1) == sm.n_parameters
    assert ours.criteria["bic"] == pytest.approx(sm.bic(X), abs=2e-3)
    # same segments: shares agree after sorting
    np.testing.assert_allclose(np.sort(ours.shares), np.sort(sm.get_parameters()["weights"]), atol=1e-4)


@pytest.mark.parametrize("case", ["complete", "with_missing"])
def test_likelihood_at_stepmix_parameters(case, request):
    """Our likelihood evaluated at StepMix's estimates is StepMix's own log-likelihood."""
    data, X, sm, ours = request.getfixturevalue(case)
    params = sm.get_parameters()
    probs = params["measurement"]["pis"].reshape(K, ITEMS, -1)[:, :, :LEVELS]
    at_sm = dataclasses.replace(ours, params={"weights": params["weights"], "probs": probs})
    assert log_likelihood(at_sm, data) == pytest.approx(sm.score(X) * X.shape[0], abs=1e-6)


def test_identical_starts_follow_identical_em_paths(complete):
    """From StepMix's own starts (uniform memberships from RandomState(seed)), every start reaches
    the same log-likelihood in both programs: the EM iterations are the same algorithm."""
    data, X, sm, _ = complete
    rs = np.random.RandomState(1)  # StepMix(random_state=1): one uniform (n, k) block per start
    starts = np.stack([rs.uniform(size=(N, K)) for _ in range(6)])
    ours = fit_lca(data, K, n_init=6, init=starts, tol=1e-10, accelerate=False)
    np.testing.assert_allclose(ours.diagnostics["start_logliks"], np.array(sm.lower_bound_buffer_) * N, atol=1e-6)
    assert ours.settings["init"] == "given"
