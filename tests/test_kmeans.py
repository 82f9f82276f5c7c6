"""k-means baseline: recovery, criteria, Wilson and bootstrap share intervals, messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from latentseg.errors import ConfigError
from latentseg.models import fit, predict_proba
from latentseg.models.kmeans import fit_kmeans
from latentseg.research.simulate import simulate_gaussian_mixture


@pytest.fixture(scope="module")
def separated():
    X, truth = simulate_gaussian_mixture(400, k=3, d=4, separation=6.0, covariance="spherical", random_seed=21)
    X.index = pd.Index([f"r{i}" for i in range(len(X))], name="id")
    return X, truth


def test_recovery_and_result_contents(separated):
    X, truth = separated
    r = fit_kmeans(X, 3, random_seed=1)
    assert adjusted_rand_score(truth, r.assignment) >= 0.9
    np.testing.assert_allclose(r.shares, np.bincount(truth)[1:] / len(truth), atol=0.02)
    assert set(np.unique(r.memberships)) == {0.0, 1.0}
    assert list(r.respondent_ids[:2]) == ["r0", "r1"] and r.feature_names == ("x1", "x2", "x3", "x4")
    # centers are the segment means, in the data's units
    for j in range(3):
        np.testing.assert_allclose(r.centers[j], X.to_numpy()[r.assignment == j + 1].mean(axis=0))
    c = r.criteria
    assert c["silhouette"] == pytest.approx(silhouette_score(X, r.assignment))
    assert c["inertia"] == pytest.approx(
        sum(((X.to_numpy()[r.assignment == j + 1] - r.centers[j]) ** 2).sum() for j in range(3))
    )
    assert c["smallest_share"] == pytest.approx(r.shares.min())
    assert "loglik" not in c
    assert r.interval_method == "95% Wilson"
    assert (r.share_lower < r.shares).all() and (r.shares < r.share_upper).all()
    np.testing.assert_array_equal(predict_proba(r, X), r.memberships)


def test_k1_silhouette_is_nan(separated):
    X, _ = separated
    r = fit_kmeans(X, 1, random_seed=0)
    assert np.isnan(r.criteria["silhouette"]) and r.shares.tolist() == [1.0]
    assert r.to_dict()["criteria"]["silhouette"] is None


def test_same_seed_same_result(separated):
    X, _ = separated
    a = fit_kmeans(X, 4, random_seed=7, bootstrap=20)
    b = fit_kmeans(X, 4, random_seed=7, bootstrap=20)
    assert np.array_equal(a.memberships, b.memberships)
    assert np.array_equal(a.share_lower, b.share_lower) and np.array_equal(a.center_intervals, b.center_intervals)


def test_bootstrap_intervals(separated):
    X, _ = separated
    r = fit_kmeans(X, 3, random_seed=2, bootstrap=60)
    assert r.interval_method == "95% bootstrap"
    assert (r.share_lower <= r.shares).all() and (r.shares <= r.share_upper).all()
    assert r.center_intervals.shape == (3, 4, 2)
    assert (r.center_intervals[..., 0] <= r.centers).all() and (r.centers <= r.center_intervals[..., 1]).all()
    assert r.diagnostics["bootstrap"] == 60 and r.diagnostics["bootstrap_failed"] == 0
    # the interval is about as wide as binomial sampling error says (+-1.96 sqrt(p(1-p)/n))
    half = (r.share_upper - r.share_lower) / 2
    np.testing.assert_allclose(half, 1.96 * np.sqrt(r.shares * (1 - r.shares) / r.n), rtol=0.4)


def test_bootstrap_interval_coverage():
    """Shares drawn multinomially: the 95% bootstrap interval covers the true share most of the time."""
    hits = []
    for rep in range(30):
        X, _ = simulate_gaussian_mixture(
            200, k=3, d=3, separation=8.0, covariance="spherical", exact_shares=False, random_seed=100 + rep
        )
        r = fit_kmeans(X, 3, random_seed=rep, bootstrap=40, n_init=3)
        true = np.array([0.453, 0.333, 0.213])  # simulate.default_shares(3), largest first
        hits.extend(((r.share_lower <= true) & (true <= r.share_upper)).tolist())
    assert np.mean(hits) >= 0.85


def test_standardize_reports_original_units(separated):
    X, _ = separated
    Y = X.assign(x1=X["x1"] * 100)
    r = fit_kmeans(Y, 3, random_seed=1, standardize=True)
    assert r.settings["standardize"] is True
    for j in range(3):
        np.testing.assert_allclose(r.centers[j], Y.to_numpy()[r.assignment == j + 1].mean(axis=0))
    np.testing.assert_array_equal(predict_proba(r, Y), r.memberships)


def test_dispatcher(separated):
    X, truth = separated
    r = fit(X, "kmeans", 3, random_seed=0, n_init=2)
    assert r.model == "kmeans" and r.settings["n_init"] == 2
    assert adjusted_rand_score(truth, r.assignment) >= 0.9


def test_missing_values_are_refused_with_advice():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [1.0, 2.0, np.nan, 5.0]}, index=[11, 12, 13, 14])
    with pytest.raises(
        ConfigError,
        match=r"kmeans model cannot use missing values: 2 row\(s\) \[12, 13\] .* impute them, .* use the Gaussian "
        r"mixture \(model 'gmm'\)",
    ):
        fit_kmeans(X, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, r"k must be an integer >= 1; got 0"),
        ({"k": 31}, r"k = 31 segments but only 30 respondents"),
        ({"k": 2, "bootstrap": -1}, r"bootstrap must be an integer >= 0; got -1"),
        ({"k": 2, "n_init": 0}, r"n_init must be an integer >= 1; got 0"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fit_kmeans(np.random.default_rng(0).normal(size=(30, 2)), **kwargs)


def test_single_threaded_limits_openmp_loaded_after_its_first_use() -> None:
    """The k sweep enters ``single_threaded`` before scikit-learn (and its OpenMP runtime) is
    imported; k-means's own ``single_threaded`` must still put OpenMP on one thread (a controller
    kept from before the import left k-means on two OpenMP threads that spun against the sweep's
    other process: 14 s instead of 1.5 s for the select step on a loaded 2-core machine).
    Checked in a fresh interpreter, where scikit-learn is not imported yet."""
    import os
    import subprocess
    import sys

    code = (
        "from latentseg.models._em import single_threaded\n"
        "with single_threaded():\n"
        "    pass\n"
        "import sklearn.cluster\n"
        "from threadpoolctl import threadpool_info\n"
        "with single_threaded():\n"
        "    print(sorted({(i['user_api'], i['num_threads']) for i in threadpool_info()}))\n"
    )
    # two threads asked for (the test suite's own environment asks for one), whatever the machine
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, env=env)
    assert out.stdout.strip() == "[('blas', 1), ('openmp', 1)]", out.stdout + out.stderr
