"""Data with known truth: Gaussian mixtures, latent class data and whole outcome surveys.

Every simulator takes one ``random_seed`` (``int`` or ``None``), converts it once with
:func:`numpy.random.default_rng` and spawns child generators for its parts, so the same seed gives
the same data bit for bit. Segments are numbered ``1..k`` with segment 1 the largest (shares are
sorted largest first before anything is drawn).

* :func:`simulate_gaussian_mixture` -- numeric data from a Gaussian mixture (for the latent
  profile / GMM / k-means engines);
* :func:`simulate_categorical` -- categorical indicators from a latent class model, nominal or
  ordinal (for the LCA engines);
* :func:`simulate_survey` -- a whole outcome survey (importance and satisfaction on Likert scales,
  job steps, demographics, planted bad respondents) with its :class:`SimulationTruth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from latentseg._stats import as_rng
from latentseg.errors import ConfigError

__all__ = [
    "default_shares",
    "simulate_gaussian_mixture",
    "simulate_categorical",
]

Covariance = Literal["spherical", "diagonal", "full", "unequal"]
_COVARIANCES = ("spherical", "diagonal", "full", "unequal")


# --------------------------------------------------------------------------------------------
# parameter checks and small helpers
# --------------------------------------------------------------------------------------------


def _check_int(value: object, name: str, func: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(
            f"The {name!r} parameter of {func} must be an int in the range [{low}, inf). Got {value!r} instead."
        )
    return int(value)


def _check_float(value: object, name: str, func: str, low: float, high: float, *, high_open: bool = False) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = float("nan")
    ok = low <= v < high if high_open else low <= v <= high
    if isinstance(value, bool) or not ok:
        bracket = ")" if high_open else "]"
        raise ConfigError(
            f"The {name!r} parameter of {func} must be a number in the range [{low}, {high}{bracket}. "
            f"Got {value!r} instead."
        )
    return v


def default_shares(k: int) -> np.ndarray:
    """The default unequal segment shares: linear from largest to smallest, ratio 2.125.

    For ``k = 4`` these are 0.34 / 0.28 / 0.22 / 0.16; the largest is always 2.125 times the
    smallest, so segments are distinguishable by size and none is tiny.

    Parameters
    ----------
    k : int
        Number of segments.

    Returns
    -------
    ndarray, shape (k,)
        Shares summing to 1, largest first.

    Examples
    --------
    >>> default_shares(4).round(2).tolist()
    [0.34, 0.28, 0.22, 0.16]
    """
    k = _check_int(k, "k", "default_shares", 1)
    if k == 1:
        return np.ones(1)
    w = 2.125 - 1.125 * np.arange(k) / (k - 1)
    return w / w.sum()


def _resolve_shares(shares: Sequence[float] | np.ndarray | None, k: int, func: str) -> np.ndarray:
    """Validate shares (length k, positive, sum 1 within 1e-6) and sort them largest first."""
    if shares is None:
        return default_shares(k)
    arr = np.asarray(shares, dtype=float).ravel()
    if arr.shape != (k,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0) or abs(arr.sum() - 1.0) > 1e-6:
        raise ConfigError(
            f"The 'shares' parameter of {func} must be {k} positive numbers summing to 1 (one per segment). "
            f"Got {list(np.asarray(shares).ravel())!r} instead."
        )
    return np.sort(arr / arr.sum())[::-1]


def _allocate(n: int, shares: np.ndarray, rng: np.random.Generator, exact: bool) -> np.ndarray:
    """Segment labels 1..k for n units, in random order.

    ``exact=True``: counts are ``n * shares`` rounded by largest remainder (realised shares within
    1/n of the given ones). ``exact=False``: counts are multinomial(n, shares).
    """
    k = len(shares)
    if exact:
        raw = n * shares
        counts = np.floor(raw).astype(int)
        short = n - counts.sum()
        # ties broken towards the larger (earlier) segment: stable sort on -remainder
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:short]] += 1
    else:
        counts = rng.multinomial(n, shares)
    labels = np.repeat(np.arange(1, k + 1), counts)
    return rng.permutation(labels)


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed random orthogonal d x d matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _simplex_vertices(k: int) -> np.ndarray:
    """Vertices of a regular simplex with unit edge length, shape (k, k - 1), centred at 0."""
    centred = np.eye(k) - 1.0 / k
    # orthonormal basis of the (k-1)-dim subspace the centred points span
    u, _, _ = np.linalg.svd(centred)
    coords = centred @ u[:, : k - 1]
    return coords / np.sqrt(2.0)


def _unit_means(k: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """k points in R^d whose pairwise distances are all 1 (d >= k - 1) or, when d < k - 1, which
    lie on a line through the origin with neighbours 1 apart (the smallest pairwise distance is 1)."""
    if k == 1:
        return np.zeros((1, d))
    if d >= k - 1:
        pts = np.zeros((k, d))
        pts[:, : k - 1] = _simplex_vertices(k)
    else:
        direction = np.zeros(d)
        direction[0] = 1.0
        pts = (np.arange(k) - (k - 1) / 2.0)[:, None] * direction[None, :]
    return pts @ _random_rotation(d, rng).T


def _covariances(kind: str, k: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Within-component covariance matrices, shape (k, d, d) (see simulate_gaussian_mixture)."""
    if kind == "spherical":
        return np.broadcast_to(np.eye(d), (k, d, d)).copy()
    if kind == "diagonal":
        var = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=d))
        return np.broadcast_to(np.diag(var), (k, d, d)).copy()
    if kind == "full":
        var = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=d))
        q = _random_rotation(d, rng)
        return np.broadcast_to((q * var) @ q.T, (k, d, d)).copy()
    # unequal: a different full covariance per component, with volumes differing up to 4x
    out = np.empty((k, d, d))
    for j in range(k):
        var = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=d)) * np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
        q = _random_rotation(d, rng)
        out[j] = (q * var) @ q.T
    return out


# --------------------------------------------------------------------------------------------
# Gaussian mixtures
# --------------------------------------------------------------------------------------------


def simulate_gaussian_mixture(
    n: int,
    k: int = 3,
    d: int = 8,
    *,
    shares: Sequence[float] | np.ndarray | None = None,
    separation: float = 3.0,
    covariance: Covariance = "diagonal",
    noise_dims: int = 0,
    exact_shares: bool = True,
    random_seed: int | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Numeric data from a k-component Gaussian mixture with known segments.

    The component means are the vertices of a regular simplex: **every pair of component means is
    exactly** ``separation`` **apart in Mahalanobis distance under the pooled within-component
    covariance** ``S = mean_j Sigma_j``, i.e. ``sqrt((mu_a - mu_b)' S^-1 (mu_a - mu_b)) =
    separation``. For the shared structures (``spherical``, ``diagonal``, ``full``) ``S`` is the
    covariance of every component, so ``separation`` is the distance in within-component standard
    deviations along the line joining the two means (``separation = 3`` means two components whose
    1-D projections are 3 SDs apart). When ``d < k - 1`` a regular simplex does not fit; the means
    then lie on a line with neighbours ``separation`` apart (the smallest pairwise distance).
    The simplex is randomly rotated, so every column carries some of the signal, and centred at 0.

    Covariance structures (mclust names in brackets):

    * ``"spherical"`` (EII): identity for every component;
    * ``"diagonal"`` (EEI): one diagonal matrix shared by all components, variances log-uniform
      on [0.5, 2];
    * ``"full"`` (EEE): one full matrix shared by all, ``Q diag(v) Q'`` with a random rotation
      ``Q`` and ``v`` log-uniform on [0.5, 2];
    * ``"unequal"`` (VVV): a different full matrix per component, built the same way and scaled
      by a volume factor log-uniform on [0.5, 2].

    Noise columns are independent standard normal, unrelated to the segments.

    Parameters
    ----------
    n : int
        Number of rows (>= 1).
    k : int, default 3
        Number of components (>= 1).
    d : int, default 8
        Number of informative columns (>= 1).
    shares : sequence of float, optional
        Component shares (k positive numbers summing to 1), sorted largest first before use.
        Default :func:`default_shares` (unequal, largest / smallest = 2.125).
    separation : float, default 3.0
        Mahalanobis distance between every pair of component means (>= 0; 0 means one blob).
    covariance : {"spherical", "diagonal", "full", "unequal"}, default "diagonal"
    noise_dims : int, default 0
        Extra pure-noise columns ``noise1..``.
    exact_shares : bool, default True
        ``True``: the component sizes are ``n * shares`` rounded by largest remainder, so the
        realised shares equal the given ones within ``1/n`` (what recovery tests want).
        ``False``: sizes are multinomial draws (what interval-coverage tests want).
    random_seed : int or None
        Same seed, same data.

    Returns
    -------
    data : DataFrame, shape (n, d + noise_dims)
        Columns ``x1..xd`` then ``noise1..noise<noise_dims>``, float64, rows in random order.
    segment : ndarray of int, shape (n,)
        True component of each row, ``1..k``; segment 1 has the largest share.

    Raises
    ------
    ConfigError
        For an out-of-range parameter.

    Examples
    --------
    >>> X, z = simulate_gaussian_mixture(300, k=3, d=4, random_seed=1)
    >>> X.shape, sorted(set(z.tolist()))
    ((300, 4), [1, 2, 3])
    >>> np.bincount(z)[1:].tolist()  # default shares 0.453 / 0.333 / 0.213
    [136, 100, 64]
    """
    func = "simulate_gaussian_mixture"
    n = _check_int(n, "n", func, 1)
    k = _check_int(k, "k", func, 1)
    d = _check_int(d, "d", func, 1)
    noise_dims = _check_int(noise_dims, "noise_dims", func, 0)
    separation = _check_float(separation, "separation", func, 0.0, np.inf)
    if covariance not in _COVARIANCES:
        raise ConfigError(
            f"The 'covariance' parameter of {func} must be one of {', '.join(map(repr, _COVARIANCES))}. "
            f"Got {covariance!r} instead."
        )
    share_arr = _resolve_shares(shares, k, func)

    rng = as_rng(random_seed)
    rng_alloc, rng_means, rng_cov, rng_draw, rng_noise = rng.spawn(5)

    segment = _allocate(n, share_arr, rng_alloc, exact_shares)
    covs = _covariances(covariance, k, d, rng_cov)
    pooled = covs.mean(axis=0)
    means = separation * _unit_means(k, d, rng_means) @ np.linalg.cholesky(pooled).T

    x = np.empty((n, d))
    z = rng_draw.standard_normal((n, d))
    for j in range(k):
        rows = segment == j + 1
        x[rows] = means[j] + z[rows] @ np.linalg.cholesky(covs[j]).T
    columns = [f"x{i + 1}" for i in range(d)]
    if noise_dims:
        x = np.hstack([x, rng_noise.standard_normal((n, noise_dims))])
        columns += [f"noise{i + 1}" for i in range(noise_dims)]
    return pd.DataFrame(x, columns=columns), segment


# --------------------------------------------------------------------------------------------
# latent class (categorical) data
# --------------------------------------------------------------------------------------------


def _acl_probs(mu: np.ndarray, concentration: float, n_categories: int) -> np.ndarray:
    """Adjacent-category logit with linearly increasing thresholds: ``log P(y = c)`` is
    ``-a (c - mu)^2`` up to a constant, i.e. ``log P(c) / P(c - 1) = 2 a mu - a (2c - 1)``
    (location ``theta = 2 a mu``, thresholds ``tau_c = a (2c - 1)``). Unimodal with its peak at
    the category nearest ``mu``; ``a = 0`` is uniform.

    ``mu`` any shape; returns shape ``mu.shape + (C,)``.
    """
    c = np.arange(n_categories)
    logits = -concentration * (c - mu[..., None]) ** 2
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def _ordinal_concentration(separation: float, locations: np.ndarray, n_categories: int, func: str) -> float:
    """The concentration ``a`` for which the *smallest* total variation distance between the
    response distributions at neighbouring class locations equals ``separation`` (bisection; the
    smallest distance grows with ``a``)."""
    if separation == 0.0 or len(locations) == 1:
        return 0.0

    def min_tv(a: float) -> float:
        p = _acl_probs(locations, a, n_categories)
        return float((0.5 * np.abs(np.diff(p, axis=0)).sum(axis=1)).min())

    reachable = min_tv(1e4)
    if separation >= reachable - 1e-9:
        raise ConfigError(
            f"The 'separation' parameter of {func} must be below {reachable:.3f} for {len(locations)} ordinal "
            f"classes on {n_categories} categories (neighbouring classes cannot be further apart). "
            f"Got {separation!r} instead."
        )
    lo, hi = 0.0, 1.0
    while min_tv(hi) < separation:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if min_tv(mid) < separation else (lo, mid)
    return 0.5 * (lo + hi)


def simulate_categorical(
    n: int,
    k: int = 3,
    n_items: int = 10,
    n_categories: int = 5,
    *,
    shares: Sequence[float] | np.ndarray | None = None,
    separation: float = 0.8,
    ordinal: bool = False,
    missing_rate: float = 0.0,
    exact_shares: bool = True,
    random_seed: int | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Categorical indicators from a latent class model (local independence) with known classes.

    ``separation`` is a **total variation distance**, in [0, 1): how different two classes'
    response distributions on one item are (0: classes identical; near 1: each class answers
    almost deterministically).

    * Nominal (``ordinal=False``): on each item every class has a favoured category, and
      ``P(y = c | class j) = (1 - s) / C + s * [c == favoured_j]``. When ``k <= C`` the classes'
      favoured categories differ on every item (a random permutation per item), so every pair of
      classes is exactly ``s`` apart in total variation on every item; when ``k > C`` some classes
      share a favoured category on some items (distance 0 there).
    * Ordinal (``ordinal=True``): an adjacent-category logit with linearly increasing thresholds,
      ``log P(y = c) / P(y = c - 1) = 2 a mu_ij - a (2c - 1)``, equivalently
      ``P(y = c) proportional to exp(-a (c - mu_ij)^2)``: levels are ordered and each class's
      answers peak at the level nearest its location ``mu_ij``. The k locations are evenly spaced
      over ``[0, C - 1]`` and assigned to the classes in a random order per item; the concentration
      ``a`` is solved so that the closest pair of neighbouring locations is exactly ``s`` apart in
      total variation (other pairs are further apart). Needs ``k <= C``.

    Missing values: each cell independently with probability ``missing_rate`` (missing completely
    at random).

    Parameters
    ----------
    n : int
        Number of respondents (>= 1).
    k : int, default 3
        Number of latent classes (>= 1).
    n_items : int, default 10
        Number of indicators (>= 1).
    n_categories : int, default 5
        Categories per item, C >= 2; codes are ``0..C-1``.
    shares : sequence of float, optional
        Class shares, sorted largest first; default :func:`default_shares`.
    separation : float, default 0.8
        Total variation distance between classes on an item, in [0, 1).
    ordinal : bool, default False
        Generate ordered levels from an adjacent-category logit.
    missing_rate : float, default 0.0
        Probability that a cell is missing, in [0, 1).
    exact_shares : bool, default True
        Class sizes ``n * shares`` (largest remainder) rather than multinomial draws.
    random_seed : int or None
        Same seed, same data.

    Returns
    -------
    data : DataFrame, shape (n, n_items)
        Columns ``item1..item<n_items>``, dtype ``Int64`` (nullable; ``<NA>`` where missing), codes
        ``0..C-1``. ``data.to_numpy(dtype=float, na_value=np.nan)`` gives floats with NaN.
    segment : ndarray of int, shape (n,)
        True class ``1..k``; class 1 has the largest share.
    probs : ndarray, shape (k, n_items, n_categories)
        True item-response probabilities; ``probs[j - 1, i, c] = P(item i = c | class j)``.

    Raises
    ------
    ConfigError
        For an out-of-range parameter.

    Examples
    --------
    >>> Y, z, p = simulate_categorical(200, k=2, n_items=6, n_categories=3, random_seed=3)
    >>> Y.shape, p.shape, str(Y.dtypes.iloc[0])
    ((200, 6), (2, 6, 3), 'Int64')
    >>> bool(np.allclose(p.sum(axis=2), 1.0))
    True
    """
    func = "simulate_categorical"
    n = _check_int(n, "n", func, 1)
    k = _check_int(k, "k", func, 1)
    n_items = _check_int(n_items, "n_items", func, 1)
    n_categories = _check_int(n_categories, "n_categories", func, 2)
    separation = _check_float(separation, "separation", func, 0.0, 1.0, high_open=True)
    missing_rate = _check_float(missing_rate, "missing_rate", func, 0.0, 1.0, high_open=True)
    share_arr = _resolve_shares(shares, k, func)
    if ordinal and k > n_categories:
        raise ConfigError(
            f"With ordinal=True, the 'k' parameter of {func} must be at most n_categories={n_categories} "
            f"(ordered classes need a level each). Got {k!r} instead."
        )

    rng = as_rng(random_seed)
    rng_alloc, rng_params, rng_draw, rng_missing = rng.spawn(4)
    segment = _allocate(n, share_arr, rng_alloc, exact_shares)

    C = n_categories
    probs = np.empty((k, n_items, C))
    if ordinal:
        locations = np.full(k, (C - 1) / 2.0) if k == 1 else np.linspace(0.0, C - 1.0, k)
        a = _ordinal_concentration(separation, locations, C, func)
        # class j's location on item i: a random permutation of the k locations per item
        mu = np.stack([locations[rng_params.permutation(k)] for _ in range(n_items)], axis=1)
        probs[:] = _acl_probs(mu, a, C)
    else:
        for i in range(n_items):
            if k <= C:
                fav = rng_params.permutation(C)[:k]
            else:
                fav = np.concatenate([rng_params.permutation(C) for _ in range(-(-k // C))])[:k]
                fav = rng_params.permutation(fav)
            probs[:, i, :] = (1.0 - separation) / C
            probs[np.arange(k), i, fav] += separation

    # inverse-CDF draws: one uniform per cell
    cdf = np.cumsum(probs, axis=2)[segment - 1]  # (n, items, C)
    u = rng_draw.random((n, n_items))
    codes = (u[..., None] > cdf[..., :-1]).sum(axis=2)
    data = pd.DataFrame(codes, columns=[f"item{i + 1}" for i in range(n_items)]).astype("Int64")
    if missing_rate > 0:
        mask = rng_missing.random((n, n_items)) < missing_rate
        data = data.mask(pd.DataFrame(mask, columns=data.columns))
    return data, segment, probs
