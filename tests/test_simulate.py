"""The simulators: known truth, exact parameters, same seed -> same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import ConfigError
from latentseg.simulate import default_shares, simulate_categorical, simulate_gaussian_mixture

# --------------------------------------------------------------------------------------------
# Gaussian mixtures
# --------------------------------------------------------------------------------------------


def _pooled_mahalanobis(X: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Pairwise Mahalanobis distances between the sample means under the pooled sample covariance."""
    k = z.max()
    means = np.array([X[z == j].mean(axis=0) for j in range(1, k + 1)])
    pooled = np.mean([np.cov(X[z == j].T) for j in range(1, k + 1)], axis=0)
    inv = np.linalg.inv(np.atleast_2d(pooled))
    return np.array(
        [np.sqrt((means[a] - means[b]) @ inv @ (means[a] - means[b])) for a in range(k) for b in range(a + 1, k)]
    )


def test_default_shares_pattern() -> None:
    assert default_shares(4).round(2).tolist() == [0.34, 0.28, 0.22, 0.16]
    for k in (1, 2, 3, 6):
        s = default_shares(k)
        assert s.sum() == pytest.approx(1.0)
        assert np.all(np.diff(s) < 0) or k == 1
        assert s[0] / s[-1] == pytest.approx(2.125 if k > 1 else 1.0)


def test_gaussian_mixture_shape_columns_and_labels() -> None:
    X, z = simulate_gaussian_mixture(301, k=3, d=5, noise_dims=2, random_seed=7)
    assert list(X.columns) == ["x1", "x2", "x3", "x4", "x5", "noise1", "noise2"]
    assert X.shape == (301, 7) and all(X.dtypes == np.float64)
    assert z.shape == (301,) and set(z.tolist()) == {1, 2, 3}
    counts = np.bincount(z)[1:]
    # exact allocation: realised shares within 1/n of the defaults, largest first
    assert np.all(np.abs(counts / 301 - default_shares(3)) <= 1 / 301)
    assert counts[0] > counts[1] > counts[2]


def test_gaussian_mixture_shares_are_sorted_largest_first() -> None:
    _, z = simulate_gaussian_mixture(1000, k=3, shares=[0.2, 0.5, 0.3], random_seed=1)
    assert np.bincount(z)[1:].tolist() == [500, 300, 200]


def test_gaussian_mixture_multinomial_shares_vary() -> None:
    counts = {tuple(np.bincount(simulate_gaussian_mixture(200, k=2, shares=[0.5, 0.5], exact_shares=False,
                                                          random_seed=s)[1])[1:]) for s in range(10)}
    assert len(counts) > 1


def test_gaussian_mixture_same_seed_same_data() -> None:
    a = simulate_gaussian_mixture(200, k=4, d=3, covariance="unequal", noise_dims=1, random_seed=11)
    b = simulate_gaussian_mixture(200, k=4, d=3, covariance="unequal", noise_dims=1, random_seed=11)
    c = simulate_gaussian_mixture(200, k=4, d=3, covariance="unequal", noise_dims=1, random_seed=12)
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0].to_numpy(), c[0].to_numpy())
    X, z = simulate_gaussian_mixture(50, random_seed=None)
    assert X.shape == (50, 8) and np.isfinite(X.to_numpy()).all()


@pytest.mark.parametrize("covariance", ["spherical", "diagonal", "full", "unequal"])
def test_gaussian_mixture_separation_is_the_mahalanobis_distance(covariance: str) -> None:
    X, z = simulate_gaussian_mixture(8000, k=4, d=5, separation=2.5, covariance=covariance, random_seed=3)
    dist = _pooled_mahalanobis(X.to_numpy(), z)
    assert dist.shape == (6,)
    # all six pairs equidistant (regular simplex), within sampling error
    np.testing.assert_allclose(dist, 2.5, atol=0.15)


def test_gaussian_mixture_covariance_structures() -> None:
    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="spherical", random_seed=5)
    for j in (1, 2):
        np.testing.assert_allclose(np.cov(X.to_numpy()[z == j].T), np.eye(3), atol=0.1)

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="diagonal", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    np.testing.assert_allclose(cov1, cov2, atol=0.12)
    assert np.abs(cov1 - np.diag(np.diag(cov1))).max() < 0.08  # uncorrelated within component

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="full", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    np.testing.assert_allclose(cov1, cov2, atol=0.12)

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="unequal", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    assert np.abs(cov1 - cov2).max() > 0.3


def test_gaussian_mixture_more_components_than_dimensions_lie_on_a_line() -> None:
    X, z = simulate_gaussian_mixture(8000, k=4, d=1, separation=3.0, covariance="spherical", random_seed=2)
    means = np.sort(X.groupby(z)["x1"].mean().to_numpy())
    np.testing.assert_allclose(np.diff(means), 3.0, atol=0.15)


def test_gaussian_mixture_noise_columns_carry_no_signal() -> None:
    X, z = simulate_gaussian_mixture(6000, k=3, d=2, noise_dims=2, separation=6, random_seed=4)
    group_means = X.groupby(z)[["noise1", "noise2"]].mean().to_numpy()
    assert np.abs(group_means).max() < 0.1
    assert X[["noise1", "noise2"]].std().between(0.95, 1.05).all()


def test_gaussian_mixture_is_recoverable_when_well_separated() -> None:
    from sklearn.mixture import GaussianMixture

    X, z = simulate_gaussian_mixture(600, k=3, d=4, separation=6.0, covariance="diagonal", random_seed=8)
    pred = GaussianMixture(3, covariance_type="diag", n_init=3, random_state=0).fit_predict(X)
    assert adjusted_rand_score(z, pred) > 0.95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, r"The 'n' parameter of simulate_gaussian_mixture must be an int in the range \[1, inf\)\. Got 0"),
        ({"n": 10, "k": 2.5}, r"The 'k' parameter .* Got 2\.5 instead"),
        ({"n": 10, "separation": -1}, r"The 'separation' parameter .* range \[0\.0, inf\]\. Got -1 instead"),
        ({"n": 10, "covariance": "tied"}, r"'covariance' parameter .* one of 'spherical', 'diagonal', 'full', 'unequal'\. Got 'tied'"),
        ({"n": 10, "k": 2, "shares": [0.5, 0.6]}, r"'shares' parameter .* 2 positive numbers summing to 1"),
        ({"n": 10, "k": 3, "shares": [0.5, 0.5]}, r"'shares' parameter .* 3 positive numbers"),
        ({"n": 10, "noise_dims": -1}, r"'noise_dims' parameter .* \[0, inf\)\. Got -1"),
    ],
)
def test_gaussian_mixture_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate_gaussian_mixture(**kwargs)


# --------------------------------------------------------------------------------------------
# latent class data
# --------------------------------------------------------------------------------------------


def _empirical_probs(Y: pd.DataFrame, z: np.ndarray, k: int, C: int) -> np.ndarray:
    return np.array(
        [[Y[z == j][col].value_counts(normalize=True).reindex(range(C), fill_value=0).to_numpy(dtype=float)
          for col in Y.columns] for j in range(1, k + 1)]
    )


def test_categorical_shape_dtype_and_probabilities() -> None:
    Y, z, p = simulate_categorical(500, k=3, n_items=7, n_categories=4, random_seed=1)
    assert Y.shape == (500, 7) and list(Y.columns) == [f"item{i}" for i in range(1, 8)]
    assert all(str(t) == "Int64" for t in Y.dtypes)
    assert int(Y.min().min()) >= 0 and int(Y.max().max()) <= 3
    assert p.shape == (3, 7, 4)
    np.testing.assert_allclose(p.sum(axis=2), 1.0)
    counts = np.bincount(z)[1:]
    assert counts.sum() == 500 and np.all(np.abs(counts / 500 - default_shares(3)) < 1 / 500)


def test_categorical_nominal_separation_is_total_variation() -> None:
    _, _, p = simulate_categorical(10, k=3, n_items=6, n_categories=5, separation=0.7, random_seed=2)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        np.testing.assert_allclose(0.5 * np.abs(p[a] - p[b]).sum(axis=1), 0.7)
    # each class favours one category per item with probability (1 - s)/C + s
    np.testing.assert_allclose(p.max(axis=2), 0.3 / 5 + 0.7)


@pytest.mark.parametrize(("k", "C"), [(2, 5), (3, 5), (4, 4)])
def test_categorical_ordinal_levels_are_ordered_and_separated(k: int, C: int) -> None:
    _, _, p = simulate_categorical(10, k=k, n_items=8, n_categories=C, separation=0.6, ordinal=True, random_seed=3)
    for i in range(8):
        order = np.argsort(p[:, i, :] @ np.arange(C))  # classes by expected level on this item
        tv = 0.5 * np.abs(np.diff(p[order, i, :], axis=0)).sum(axis=1)
        assert tv.min() == pytest.approx(0.6, abs=1e-6)
        # stochastically ordered: each higher class's CDF lies below the lower one's
        cdf = np.cumsum(p[order, i, :], axis=1)
        assert np.all(np.diff(cdf[:, :-1], axis=0) <= 1e-12)
        # unimodal
        for j in range(k):
            peak = int(np.argmax(p[j, i]))
            assert np.all(np.diff(p[j, i, : peak + 1]) >= -1e-12) and np.all(np.diff(p[j, i, peak:]) <= 1e-12)


@pytest.mark.parametrize("ordinal", [False, True])
def test_categorical_draws_follow_the_true_probabilities(ordinal: bool) -> None:
    Y, z, p = simulate_categorical(6000, k=3, n_items=5, n_categories=4, ordinal=ordinal, random_seed=4)
    assert np.abs(_empirical_probs(Y, z, 3, 4) - p).max() < 0.05


def test_categorical_missing_rate_and_reproducibility() -> None:
    a = simulate_categorical(2000, k=2, missing_rate=0.15, random_seed=9)
    b = simulate_categorical(2000, k=2, missing_rate=0.15, random_seed=9)
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[0].isna().to_numpy().mean() == pytest.approx(0.15, abs=0.01)
    floats = a[0].to_numpy(dtype=float, na_value=np.nan)
    assert np.isnan(floats).any() and np.nanmax(floats) <= 4
    Y, z, p = simulate_categorical(20, random_seed=None)
    assert Y.shape == (20, 10)


def test_categorical_separation_zero_means_identical_classes() -> None:
    _, _, p = simulate_categorical(10, k=3, separation=0.0, random_seed=1)
    np.testing.assert_allclose(p, 0.2)
    _, _, p = simulate_categorical(10, k=3, separation=0.0, ordinal=True, random_seed=1)
    np.testing.assert_allclose(p, 0.2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 10, "n_categories": 1}, r"'n_categories' parameter of simulate_categorical must be an int in the range \[2, inf\)"),
        ({"n": 10, "separation": 1.0}, r"'separation' parameter .* range \[0\.0, 1\.0\)\. Got 1\.0 instead"),
        ({"n": 10, "missing_rate": -0.1}, r"'missing_rate' parameter .* Got -0\.1 instead"),
        ({"n": 10, "k": 4, "n_categories": 3, "ordinal": True}, r"With ordinal=True, the 'k' parameter .* at most n_categories=3"),
    ],
)
def test_categorical_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate_categorical(**kwargs)
