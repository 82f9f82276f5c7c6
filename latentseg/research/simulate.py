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
  job steps, demographics, planted bad respondents) with its :class:`SimulationTruth`;
* :func:`simulate_score_segments` and :func:`simulate_response_styles` -- the rating study's
  designs (b) (segments Gaussian on the opportunity-score scale, mapped back to ratings) and
  (c) (segments on the ratings plus respondents who use only the top of the scale).
* :func:`simulate_ratings` -- segments defined at the rating level (each segment a distribution
  over the points of each importance and satisfaction scale), with the true segment opportunity
  (:class:`RatingSimulation`; for the families fitted on ratings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from latentseg._stats import as_rng, check_int
from latentseg.errors import ConfigError
from latentseg.io.survey import Scale, Survey

__all__ = [
    "DEFAULT_JOB",
    "BAD_RULES",
    "SimulationTruth",
    "cramers_v_from_strength",
    "default_shares",
    "simulate_categorical",
    "simulate_gaussian_mixture",
    "simulate_survey",
    "simulate_score_segments",
    "simulate_response_styles",
    "score_to_ratings_0_10",
    "simulate_ratings",
    "RatingSimulation",
    "WeightedSample",
    "simulate_weighted_survey",
    "CovariateSample",
    "simulate_covariate_mixture",
]

Covariance = Literal["spherical", "diagonal", "diagonal-unequal", "full", "unequal"]
_COVARIANCES = ("spherical", "diagonal", "diagonal-unequal", "full", "unequal")


# --------------------------------------------------------------------------------------------
# parameter checks and small helpers
# --------------------------------------------------------------------------------------------


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
    k = check_int(k, "k", low=1, where="default_shares")
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
    if kind == "diagonal-unequal":  # VVI: each component its own variances, volumes differing up to 4x
        var = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=(k, d)) + rng.uniform(np.log(0.5), np.log(2.0), size=(k, 1)))
        return var[:, :, None] * np.eye(d)[None]
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
    * ``"diagonal-unequal"`` (VVI): a different diagonal matrix per component, variances
      log-uniform on [0.5, 2] times a volume factor per component, log-uniform on [0.5, 2];
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
    covariance : {"spherical", "diagonal", "diagonal-unequal", "full", "unequal"}, default "diagonal"
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
    n = check_int(n, "n", low=1, where=func)
    k = check_int(k, "k", low=1, where=func)
    d = check_int(d, "d", low=1, where=func)
    noise_dims = check_int(noise_dims, "noise_dims", low=0, where=func)
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
    n = check_int(n, "n", low=1, where=func)
    k = check_int(k, "k", low=1, where=func)
    n_items = check_int(n_items, "n_items", low=1, where=func)
    n_categories = check_int(n_categories, "n_categories", low=2, where=func)
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


# --------------------------------------------------------------------------------------------
# outcome surveys
# --------------------------------------------------------------------------------------------

#: The job of the bundled example survey (and the default of :func:`simulate_survey`).
DEFAULT_JOB = "manage cross-functional projects to deliver on time and on budget"

#: Names of the three planted kinds of bad respondent, as keys of :attr:`SimulationTruth.bad`.
BAD_RULES = ("straightliner", "speeder", "too_many_missing")

# Outcome statements for DEFAULT_JOB: job step -> statements (Ulwick's "direction + metric +
# object of control" form). Used when the requested layout fits (<= 6 steps of <= 6 outcomes).
_PROJECT_JOB_MAP: dict[str, tuple[str, ...]] = {
    "Define the scope": (
        "Minimize the time it takes to agree the project's objectives with stakeholders",
        "Minimize the likelihood that a requirement is missed during scoping",
        "Minimize the time it takes to estimate the effort each deliverable needs",
        "Minimize the likelihood of scope creep after kick-off",
        "Minimize the likelihood that nobody owns a deliverable",
        "Minimize the time it takes to get the budget approved",
    ),
    "Plan the work": (
        "Minimize the time it takes to build a realistic project schedule",
        "Minimize the likelihood of overlooking a dependency between teams",
        "Minimize the time it takes to assign work to the right people",
        "Minimize the likelihood of over-allocating a team member",
        "Minimize the likelihood that the cost forecast is wrong",
        "Minimize the time it takes to set milestones everyone agrees on",
    ),
    "Coordinate the teams": (
        "Minimize the time it takes to share updates across teams",
        "Minimize the likelihood that a team works from outdated information",
        "Minimize the time it takes to hand off work between teams",
        "Minimize the number of status meetings needed to stay aligned",
        "Minimize the likelihood that a decision does not reach everyone it affects",
        "Minimize the time it takes to find the latest version of a project document",
    ),
    "Track progress": (
        "Minimize the time it takes to see whether the project is on schedule",
        "Minimize the time it takes to see actual spend against the budget",
        "Minimize the likelihood that a slipping task goes unnoticed",
        "Minimize the time it takes to prepare a status report for leadership",
        "Minimize the likelihood that the projected completion date is wrong",
        "Minimize the effort it takes to collect progress from team members",
    ),
    "Manage risks and changes": (
        "Minimize the likelihood that a risk is identified too late to act on",
        "Minimize the time it takes to assess the impact of a change request",
        "Minimize the time it takes to re-plan after a delay",
        "Minimize the likelihood that a blocked task stays blocked",
        "Minimize the time it takes to escalate an issue to the right decision-maker",
        "Minimize the likelihood that a budget overrun goes unnoticed",
    ),
    "Close and learn": (
        "Minimize the time it takes to confirm every deliverable has been accepted",
        "Minimize the time it takes to capture lessons learned",
        "Minimize the likelihood of repeating a mistake on the next project",
        "Minimize the time it takes to release people to other work",
        "Minimize the effort it takes to reuse plans from past projects",
        "Minimize the time it takes to report final cost and schedule performance",
    ),
}

_GENERIC_TEMPLATES = (
    "Minimize the time it takes to {obj}",
    "Minimize the likelihood of errors when you {obj}",
    "Minimize the effort it takes to {obj}",
    "Minimize the likelihood of having to redo work to {obj}",
)

# Profile columns: name -> (levels, association with the segment as a multiple of
# demographic_strength). region is unrelated to the segment by construction.
_PROFILE_COLUMNS: dict[str, tuple[tuple[str, ...], float]] = {
    "role": (("Project manager", "Engineering lead", "Product manager", "Operations lead", "Executive"), 1.0),
    "company_size": (("1-49", "50-199", "200-999", "1000+"), 0.5),
    "industry": (
        ("Software", "Professional services", "Manufacturing", "Healthcare", "Financial services", "Education"),
        0.25,
    ),
    "current_tool": (("Spreadsheets", "Jira", "Asana", "Microsoft Project", "Monday.com", "Other"), 0.5),
    "region": (("North America", "Europe", "Asia-Pacific", "Latin America"), 0.0),
}

# latent rating model on the 0-10 scale (see simulate_survey)
_ITEM_SD = 1.3  # within-respondent noise per rating
_RESPONDENT_SD = 0.75  # per-respondent, per-block scale-use offset
_LATENT_SD = math.sqrt(_ITEM_SD**2 + _RESPONDENT_SD**2)
_IMP_SHIFT = 2.5  # importance raised on a segment's underserved outcomes (times separation)
_SAT_SHIFT = 3.0  # satisfaction lowered on them (times separation)
_PLAN_PRICE_BASE = 25.0  # median plan price (per seat and month) when strength = 0
_UNRATED_MAX_FRACTION = 0.2  # the playbook's cleaning threshold (more than 20% unrated)


@dataclass(frozen=True, eq=False)
class SimulationTruth:
    """What :func:`simulate_survey` planted.

    Attributes
    ----------
    segment : Series of int, length n
        True segment ``1..k`` of **every** respondent, indexed by respondent id, bad respondents
        included (they were drawn from a segment too; see ``bad``). The ratings of straight-liners and
        speeders carry no segment signal; those of respondents with too many unrated outcomes do.
    shares : Series of float, length k
        The segment shares the respondents were allocated by (index 1..k, largest first). The good
        respondents' realised shares equal these within ``1 / n_good``.
    underserved : mapping of int to tuple of str
        Segment -> the outcome ids on which it is underserved.
    bad : mapping of str to tuple of str
        Planted bad respondents per cleaning rule (keys :data:`BAD_RULES`: ``"straightliner"``,
        ``"speeder"``, ``"too_many_missing"``); the three sets are disjoint.
    centers : DataFrame, shape (k, m)
        True mean respondent-level opportunity score (0-20 scale: importance + max(importance -
        satisfaction, 0), both rescaled to 0-10) per segment and outcome, computed exactly from the
        generating model (discretisation and clipping included, before planting bad respondents,
        missing ratings or the tie-breaking of accidental straight lines).
    importance_mean, satisfaction_mean : DataFrame, shape (k, m)
        The latent means on the 0-10 scale the ratings were drawn around.
    cramers_v : mapping of str to float
        Population Cramér's V between each categorical profile column and the segment
        (see :func:`cramers_v_from_strength`); 0 for ``region``.
    typical : mapping of str to Series
        For each categorical profile column, the typical level of each segment.
    plan_price_mean : Series, length k
        Mean plan price per segment.
    random_seed : int or None
    """

    segment: pd.Series
    shares: pd.Series
    underserved: Mapping[int, tuple[str, ...]]
    bad: Mapping[str, tuple[str, ...]]
    centers: pd.DataFrame
    importance_mean: pd.DataFrame
    satisfaction_mean: pd.DataFrame
    cramers_v: Mapping[str, float] = field(default_factory=dict)
    typical: Mapping[str, pd.Series] = field(default_factory=dict)
    plan_price_mean: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    random_seed: int | None = None

    @property
    def k(self) -> int:
        """Number of segments."""
        return len(self.shares)

    @property
    def bad_ids(self) -> pd.Index:
        """Ids of every planted bad respondent, in respondent order."""
        bad = {i for ids in self.bad.values() for i in ids}
        return self.segment.index[self.segment.index.isin(list(bad))]

    @property
    def good_ids(self) -> pd.Index:
        """Ids of the respondents that no cleaning rule should remove, in respondent order."""
        return self.segment.index[~self.segment.index.isin(list(self.bad_ids))]

    def to_frame(self) -> pd.DataFrame:
        """One row per respondent: ``respondent_id``, ``segment`` and ``bad`` (the planted rule,
        empty for good respondents).

        Returns
        -------
        DataFrame, shape (n, 3)
        """
        rule = pd.Series("", index=self.segment.index, dtype="str")
        for name, ids in self.bad.items():
            rule.loc[list(ids)] = name
        return pd.DataFrame(
            {"respondent_id": self.segment.index.to_numpy(), "segment": self.segment.to_numpy(), "bad": rule.to_numpy()}
        )


def cramers_v_from_strength(
    strength: float,
    shares: Sequence[float] | np.ndarray,
    n_levels: int,
    typical: Sequence[int] | np.ndarray | None = None,
) -> float:
    """Population Cramér's V between the segment and a profile column generated with ``strength``.

    The generating rule: a respondent of segment ``g`` takes its segment's typical level with
    probability ``strength``, and otherwise a level drawn uniformly from all ``L`` levels (the typical
    one included), so ``P(level = l | g) = strength [l = t_g] + (1 - strength) / L``. With as many
    levels as segments, distinct typical levels and equal shares, ``V = strength`` exactly; otherwise
    V follows from the joint distribution: ``V = sqrt(phi^2 / (min(k, L) - 1))``,
    ``phi^2 = sum_gl (p_gl - p_g p_l)^2 / (p_g p_l)``.

    Parameters
    ----------
    strength : float
        In [0, 1].
    shares : sequence of float, shape (k,)
        Segment shares.
    n_levels : int
        Number of levels L of the profile column.
    typical : sequence of int, shape (k,), optional
        Typical level (0-based) of each segment; default ``g mod L``.

    Returns
    -------
    float
        Cramér's V in [0, 1] (0 when ``k`` or ``L`` is 1).

    Examples
    --------
    >>> round(cramers_v_from_strength(0.6, [0.25] * 4, 4), 6)
    0.6
    >>> round(cramers_v_from_strength(0.6, [0.34, 0.28, 0.22, 0.16], 5), 3)
    0.617
    """
    p_g = np.asarray(shares, dtype=float)
    p_g = p_g / p_g.sum()
    k, L = len(p_g), int(n_levels)
    if min(k, L) < 2:
        return 0.0
    t = np.arange(k) % L if typical is None else np.asarray(typical, dtype=int)
    cond = np.full((k, L), (1.0 - strength) / L)
    cond[np.arange(k), t] += strength
    joint = p_g[:, None] * cond
    p_l = joint.sum(axis=0)
    expected = p_g[:, None] * p_l[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        phi2 = float(np.nansum(np.where(expected > 0, (joint - expected) ** 2 / expected, 0.0)))
    return float(np.sqrt(phi2 / (min(k, L) - 1)))


def _parse_scale(value: object, name: str) -> tuple[int, int]:
    func = "simulate_survey"
    try:
        if isinstance(value, Scale):
            lo, hi = value.low, value.high
        elif isinstance(value, str):
            sc = Scale.parse(value)
            lo, hi = sc.low, sc.high
        else:
            lo, hi = value  # type: ignore[misc]
        lo_f, hi_f = float(lo), float(hi)
        ok = lo_f.is_integer() and hi_f.is_integer() and hi_f - lo_f >= 1
    except (TypeError, ValueError, ConfigError):
        ok = False
    if not ok:
        raise ConfigError(
            f"The {name!r} parameter of {func} must be an integer Likert scale (low, high) with high > low, "
            f"e.g. (1, 5) or '1-10'. Got {value!r} instead."
        )
    return int(lo_f), int(hi_f)


def _outcome_table(m: int, n_steps: int, job: str) -> pd.DataFrame:
    """Outcome ids o01.., statements and job steps; outcomes split over steps as evenly as possible."""
    sizes = [m // n_steps + (1 if s < m % n_steps else 0) for s in range(n_steps)]
    width = max(2, len(str(m)))
    ids = [f"o{i + 1:0{width}d}" for i in range(m)]
    bank = list(_PROJECT_JOB_MAP.items())
    use_bank = job == DEFAULT_JOB and n_steps <= len(bank) and max(sizes) <= min(len(v) for _, v in bank)
    statements: list[str] = []
    steps: list[str] = []
    for s, size in enumerate(sizes):
        if use_bank:
            step_name, step_statements = bank[s]
            statements.extend(step_statements[:size])
        else:
            step_name = f"Step {s + 1}"
            for j in range(size):
                obj = f"complete task {j + 1} of step {s + 1} when you {job}"
                statements.append(_GENERIC_TEMPLATES[j % len(_GENERIC_TEMPLATES)].format(obj=obj))
        steps.extend([step_name] * size)
    return pd.DataFrame(
        {"statement": pd.array(statements, dtype="str"), "job_step": pd.array(steps, dtype="str")},
        index=pd.Index(ids, name="outcome", dtype="str"),
    )


def _default_underserved(outcomes: pd.DataFrame, k: int, rng: np.random.Generator) -> dict[int, tuple[str, ...]]:
    """Segment g is underserved on (up to 4 outcomes of) job step g, plus one outcome of another
    segment's step.

    With more segments than job steps, the outcomes are cut into k contiguous blocks instead.
    """
    ids = list(outcomes.index)
    step_names = list(dict.fromkeys(outcomes["job_step"]))
    out: dict[int, tuple[str, ...]] = {}
    if k <= len(step_names):
        for g in range(k):
            own = [o for o, st in zip(ids, outcomes["job_step"], strict=True) if st == step_names[g]][:4]
            # the extra outcome comes from another segment's step, so the steps no segment owns
            # stay free for the overserved / universally underserved outcomes
            pool = [st for st in step_names[:k] if st != step_names[g]] or [st for st in step_names if st != step_names[g]]
            others = [o for o in ids if o not in own and outcomes.loc[o, "job_step"] in pool]
            extra = [others[int(rng.integers(len(others)))]] if others else []
            out[g + 1] = tuple(sorted(own + extra, key=ids.index))
    else:
        blocks = np.array_split(np.arange(len(ids)), k)
        for g, block in enumerate(blocks):
            out[g + 1] = tuple(ids[i] for i in block)
    return out


def _check_underserved(
    underserved: Mapping[int, Sequence[str]], k: int, outcome_ids: list[str]
) -> dict[int, tuple[str, ...]]:
    func = "simulate_survey"
    bad_keys = [g for g in underserved if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 1 <= g <= k]
    if bad_keys:
        raise ConfigError(
            f"The 'underserved' parameter of {func} must map segments 1..{k} to outcome ids. "
            f"Got segment keys {bad_keys!r}."
        )
    known = set(outcome_ids)
    unknown = [o for ids in underserved.values() for o in ids if o not in known]
    if unknown:
        from latentseg.errors import format_rows

        raise ConfigError(
            f"The 'underserved' parameter of {func} names unknown outcome ids {format_rows(unknown)}; "
            f"expected ids among {outcome_ids[0]}..{outcome_ids[-1]}."
        )
    return {g: tuple(o for o in outcome_ids if o in set(underserved.get(g, ()))) for g in range(1, k + 1)}


def _rating_probs(mu10: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """P(rating = v), v = lo..hi, for latent 0-10 means ``mu10`` (any shape) -> shape + (levels,)."""
    from scipy.stats import norm

    span = hi - lo
    m = lo + span * mu10 / 10.0
    s = span * _LATENT_SD / 10.0
    edges = np.arange(lo, hi) + 0.5  # boundaries between neighbouring levels
    cdf = norm.cdf((edges - m[..., None]) / s)
    lower = np.concatenate([np.zeros(m.shape + (1,)), cdf], axis=-1)
    upper = np.concatenate([cdf, np.ones(m.shape + (1,))], axis=-1)
    return upper - lower


def _exact_centers(imp_mu: np.ndarray, sat_mu: np.ndarray, imp: tuple[int, int], sat: tuple[int, int]) -> np.ndarray:
    """E[importance + max(importance - satisfaction, 0)] (0-10 rescaled) per segment and outcome.

    Importance and satisfaction of one outcome are independent given the segment (their
    respondent offsets are drawn independently per block), so the expectation is a double sum over
    the two rating distributions.
    """
    p_i = _rating_probs(imp_mu, *imp)  # (k, m, Li)
    p_s = _rating_probs(sat_mu, *sat)  # (k, m, Ls)
    v_i = 10.0 * np.arange(imp[1] - imp[0] + 1) / (imp[1] - imp[0])
    v_s = 10.0 * np.arange(sat[1] - sat[0] + 1) / (sat[1] - sat[0])
    opp = v_i[:, None] + np.maximum(v_i[:, None] - v_s[None, :], 0.0)  # (Li, Ls)
    return np.einsum("kmi,kms,is->km", p_i, p_s, opp)


def _to_likert(latent10: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.rint(lo + (hi - lo) * latent10 / 10.0), lo, hi)


def _break_straight_lines(block: np.ndarray, rows: np.ndarray, lo: int, hi: int, rng: np.random.Generator) -> None:
    """In place: for the given rows whose rated values are all identical, move one rated value by 1."""
    sub = block[rows]
    with np.errstate(invalid="ignore"):
        rated_n = (~np.isnan(sub)).sum(axis=1)
        flat = np.nanmin(np.where(rated_n[:, None] > 0, sub, 0.0), axis=1) == np.nanmax(
            np.where(rated_n[:, None] > 0, sub, 0.0), axis=1
        )
    for r in rows[flat & (rated_n >= 2)]:
        vals = block[r]
        rated = np.flatnonzero(~np.isnan(vals))
        if len(rated) >= 2 and np.all(vals[rated] == vals[rated[0]]):
            j = rated[int(rng.integers(len(rated)))]
            vals[j] = vals[j] + 1 if vals[j] < hi else vals[j] - 1


def simulate_survey(
    n: int = 400,
    n_outcomes: int = 24,
    n_segments: int = 4,
    *,
    shares: Sequence[float] | np.ndarray | None = None,
    job_steps: int = 6,
    imp_scale: tuple[int, int] | str | Scale = (1, 5),
    sat_scale: tuple[int, int] | str | Scale = (1, 10),
    underserved: Mapping[int, Sequence[str]] | None = None,
    separation: float = 1.0,
    demographic_strength: float = 0.6,
    straightliners: int = 0,
    speeders: int = 0,
    too_many_missing: int = 0,
    missing_rate: float = 0.0,
    job: str = DEFAULT_JOB,
    random_seed: int | None = None,
) -> tuple[Survey, SimulationTruth]:
    """An outcome survey with known segments, demographics and planted bad respondents.

    **Outcomes.** ``n_outcomes`` outcomes ``o01..`` split as evenly as possible over ``job_steps``
    job steps. For the default job (and at most 6 steps of at most 6 outcomes) the statements and
    step names come from a job map for "manage cross-functional projects"; otherwise they are
    built from templates ("Minimize the time it takes to ...").

    **Ratings.** Each rating is a latent value on a 0-10 scale, mapped linearly onto the Likert
    scale, rounded and clipped: ``rating = clip(round(low + (high - low) * y / 10), low, high)``, with
    ``y = mean[segment, outcome] + respondent offset + noise``; the respondent offset (scale use,
    SD 0.75, one per respondent and block) and the noise (SD 1.3, one per rating) are normal, so the
    within-segment latent SD is 1.5. Outcome baselines: importance uniform on [4, 6.5] and
    satisfaction on [5, 7.5]; the last job step not claimed by any segment is *overserved* for
    everyone (importance [3, 4.5], satisfaction [7, 8.5]) and one unclaimed outcome of another
    step is *underserved for everyone* (importance 7.5, satisfaction 3.5), so the landscape has
    all classes. On a segment's underserved outcomes its importance mean is raised by
    ``2.5 * separation`` and its satisfaction mean lowered by ``3.0 * separation`` (``separation =
    0``: no segment structure). By default segment ``g`` is underserved on up to four outcomes of job
    step ``g`` plus one outcome of another segment's step.

    **Profile.** ``role`` (5 levels), ``company_size`` (4), ``industry`` (6), ``current_tool`` (6)
    and ``region`` (4): a respondent takes its segment's typical level with probability ``strength``
    and otherwise a uniformly drawn level, where ``strength`` is ``demographic_strength`` times 1
    (role), 0.5 (company_size, current_tool), 0.25 (industry) and 0 (region: unrelated). The
    resulting population Cramér's V is in ``truth.cramers_v`` (:func:`cramers_v_from_strength`).
    ``plan_price`` (per seat and month) is log-normal with CV about 0.3 around a segment mean
    ``25 * exp(demographic_strength * d_g)``, ``d_g`` evenly spaced on [-0.6, 0.6] in random order.
    ``duration`` (seconds) is log-normal around ``60 + 20 m`` with SD 0.3 on the log scale, clipped
    to [0.6, 2.5] times that.

    **Bad respondents** (disjoint, at random positions; all other respondents pass every rule):

    * straight-liners: one value for every importance rating and one for every satisfaction rating;
    * speeders: duration 0.08-0.18 times the typical duration (under a third of the median whenever
      fewer than half the respondents are speeders), uniformly random ratings;
    * too many missing: drawn from their segment, then both ratings blanked on 30-60% of outcomes
      (always more than 20%).

    ``missing_rate`` blanks ratings of good respondents at random (both ratings of an outcome, or
    one of them), never more than 20% of a respondent's outcomes; a good respondent whose ratings in a
    block happen to be all equal gets one of them moved by 1, so no good respondent is a
    straight-liner.

    Parameters
    ----------
    n : int, default 400
        Number of respondents, bad ones included.
    n_outcomes : int, default 24
        Number of outcomes m (>= 2).
    n_segments : int, default 4
        Number of segments k.
    shares : sequence of float, optional
        Segment shares (sorted largest first); default :func:`default_shares`
        (0.34 / 0.28 / 0.22 / 0.16 for k = 4).
    job_steps : int, default 6
        Number of job steps (1..m).
    imp_scale, sat_scale : (int, int) or str or Scale, default (1, 5) and (1, 10)
        Integer Likert scales.
    underserved : mapping of int to sequence of str, optional
        Segment (1..k) -> outcome ids it is underserved on; segments left out are underserved on
        nothing.
    separation : float, default 1.0
        Multiplies the underserved shifts (>= 0).
    demographic_strength : float, default 0.6
        How strongly the profile is tied to the segment, in [0, 1].
    straightliners, speeders, too_many_missing : int, default 0
        Planted bad respondents of each kind (together fewer than half of ``n``).
    missing_rate : float, default 0.0
        Probability that a good respondent leaves an outcome unrated, in [0, 1).
    job : str
        The job the outcomes belong to.
    random_seed : int or None
        Same seed, same survey (bit for bit).

    Returns
    -------
    survey : Survey
        Ratings as float (integers, NaN where unrated), respondent ids ``R0001..``, outcomes with
        statement and job step, the declared scales, profile and duration; ``source`` is
        ``"<simulated>"``.
    truth : SimulationTruth

    Raises
    ------
    ConfigError
        For an out-of-range parameter.

    Examples
    --------
    >>> survey, truth = simulate_survey(200, n_outcomes=12, n_segments=3, speeders=4, random_seed=1)
    >>> survey.importance.shape, str(survey.imp_scale), str(survey.sat_scale)
    ((200, 12), '1-5', '1-10')
    >>> len(truth.bad["speeder"]), truth.centers.shape
    (4, (3, 12))
    """
    func = "simulate_survey"
    n = check_int(n, "n", low=1, where=func)
    m = check_int(n_outcomes, "n_outcomes", low=2, where=func)
    k = check_int(n_segments, "n_segments", low=1, where=func)
    n_steps = check_int(job_steps, "job_steps", low=1, where=func)
    if n_steps > m:
        raise ConfigError(f"The 'job_steps' parameter of {func} must be at most n_outcomes={m}. Got {n_steps} instead.")
    imp = _parse_scale(imp_scale, "imp_scale")
    sat = _parse_scale(sat_scale, "sat_scale")
    separation = _check_float(separation, "separation", func, 0.0, np.inf)
    strength = _check_float(demographic_strength, "demographic_strength", func, 0.0, 1.0)
    missing_rate = _check_float(missing_rate, "missing_rate", func, 0.0, 1.0, high_open=True)
    n_bad = {
        "straightliner": check_int(straightliners, "straightliners", low=0, where=func),
        "speeder": check_int(speeders, "speeders", low=0, where=func),
        "too_many_missing": check_int(too_many_missing, "too_many_missing", low=0, where=func),
    }
    if 2 * sum(n_bad.values()) >= n:
        raise ConfigError(
            f"The planted bad respondents of {func} (straightliners + speeders + too_many_missing = "
            f"{sum(n_bad.values())}) must be fewer than half of n={n}."
        )
    max_unrated_good = math.floor(_UNRATED_MAX_FRACTION * m)
    if n_bad["too_many_missing"] and m - (max_unrated_good + 1) < 2:
        raise ConfigError(
            f"The 'too_many_missing' parameter of {func} needs n_outcomes >= 3 (more than 20% unrated and "
            f"at least two rated outcomes). Got n_outcomes={m}."
        )
    share_arr = _resolve_shares(shares, k, func)
    n_good = n - sum(n_bad.values())
    if n_good < 1:  # pragma: no cover - excluded by the half-of-n rule
        raise ConfigError(f"{func} needs at least one good respondent.")

    rng = as_rng(random_seed)
    (rng_out, rng_alloc, rng_lat, rng_bad, rng_miss, rng_prof, rng_dur, rng_fix) = rng.spawn(8)

    # ---- outcomes, segment profiles (latent means) -------------------------------------------
    outcomes = _outcome_table(m, n_steps, job)
    ids_o = list(outcomes.index)
    claimed = (
        _default_underserved(outcomes, k, rng_out)
        if underserved is None
        else _check_underserved(underserved, k, ids_o)
    )
    imp_base = rng_out.uniform(4.0, 6.5, size=m)
    sat_base = rng_out.uniform(5.0, 7.5, size=m)
    used = {o for v in claimed.values() for o in v}
    step_of = outcomes["job_step"].to_numpy()
    steps = list(dict.fromkeys(step_of))
    free_steps = [st for st in steps if not any(o in used for o in outcomes.index[step_of == st])]
    if free_steps:
        over = np.flatnonzero(step_of == free_steps[-1])
        imp_base[over] = rng_out.uniform(3.0, 4.5, size=len(over))
        sat_base[over] = rng_out.uniform(7.0, 8.5, size=len(over))
    candidates = [
        i for i, o in enumerate(ids_o) if o not in used and (not free_steps or step_of[i] != free_steps[-1])
    ]
    if candidates:
        i = candidates[int(rng_out.integers(len(candidates)))]
        imp_base[i], sat_base[i] = 7.5, 3.5
    imp_mu = np.tile(imp_base, (k, 1))
    sat_mu = np.tile(sat_base, (k, 1))
    col = {o: i for i, o in enumerate(ids_o)}
    for g, outs in claimed.items():
        for o in outs:
            imp_mu[g - 1, col[o]] += _IMP_SHIFT * separation
            sat_mu[g - 1, col[o]] -= _SAT_SHIFT * separation

    # ---- respondents: segments and who is bad ------------------------------------------------
    seg_good = _allocate(n_good, share_arr, rng_alloc, exact=True)
    bad_total = n - n_good
    seg_bad = _allocate(bad_total, share_arr, rng_alloc, exact=True) if bad_total else np.zeros(0, dtype=int)
    kind = np.concatenate(
        [np.zeros(n_good, dtype=int)] + [np.full(c, r + 1, dtype=int) for r, c in enumerate(n_bad.values())]
    )
    seg = np.concatenate([seg_good, seg_bad])
    order = rng_alloc.permutation(n)
    seg, kind = seg[order], kind[order]
    width = max(4, len(str(n)))
    rid = pd.Index([f"R{i + 1:0{width}d}" for i in range(n)], name="respondent_id", dtype="str")

    # ---- ratings ---------------------------------------------------------------------------
    def block(mu: np.ndarray, scale: tuple[int, int]) -> np.ndarray:
        offset = rng_lat.normal(0.0, _RESPONDENT_SD, size=(n, 1))
        noise = rng_lat.normal(0.0, _ITEM_SD, size=(n, m))
        return _to_likert(mu[seg - 1] + offset + noise, *scale)

    imp_r = block(imp_mu, imp)
    sat_r = block(sat_mu, sat)

    sl = np.flatnonzero(kind == 1)
    imp_r[sl] = rng_bad.integers(imp[0], imp[1] + 1, size=(len(sl), 1))
    sat_r[sl] = rng_bad.integers(sat[0], sat[1] + 1, size=(len(sl), 1))
    sp = np.flatnonzero(kind == 2)
    imp_r[sp] = rng_bad.integers(imp[0], imp[1] + 1, size=(len(sp), m))
    sat_r[sp] = rng_bad.integers(sat[0], sat[1] + 1, size=(len(sp), m))
    tm = np.flatnonzero(kind == 3)
    for r in tm:
        lo_c = max_unrated_good + 1
        hi_c = max(lo_c, min(m - 2, math.ceil(0.6 * m)))
        lo_c = max(lo_c, min(hi_c, math.ceil(0.3 * m)))
        blank = rng_bad.choice(m, size=int(rng_bad.integers(lo_c, hi_c + 1)), replace=False)
        imp_r[r, blank] = np.nan
        sat_r[r, blank] = np.nan

    good = np.flatnonzero(kind == 0)
    if missing_rate > 0 and max_unrated_good > 0:
        unrated = rng_miss.random((len(good), m)) < missing_rate
        # keep at most max_unrated_good per respondent: a random subset of the drawn ones
        key = np.where(unrated, rng_miss.random((len(good), m)), np.inf)
        rank = np.argsort(np.argsort(key, axis=1, kind="stable"), axis=1, kind="stable")
        unrated &= rank < max_unrated_good
        which = rng_miss.random((len(good), m))  # < .5 both, < .75 importance only, else satisfaction only
        imp_blank = np.zeros((n, m), dtype=bool)
        sat_blank = np.zeros((n, m), dtype=bool)
        imp_blank[good] = unrated & (which < 0.75)
        sat_blank[good] = unrated & ((which < 0.5) | (which >= 0.75))
        imp_r[imp_blank] = np.nan
        sat_r[sat_blank] = np.nan
    # nobody but the planted straight-liners may look like one
    not_sl = np.flatnonzero(kind != 1)
    _break_straight_lines(imp_r, not_sl, *imp, rng_fix)
    _break_straight_lines(sat_r, not_sl, *sat, rng_fix)

    # ---- profile and duration ----------------------------------------------------------------
    profile: dict[str, object] = {}
    cramers: dict[str, float] = {}
    typical_levels: dict[str, pd.Series] = {}
    seg_index = pd.Index(range(1, k + 1), name="segment")
    for name, (levels, mult) in _PROFILE_COLUMNS.items():
        L = len(levels)
        s_col = strength * mult
        perm = rng_prof.permutation(L)
        typ = perm[np.arange(k) % L]
        take_typical = rng_prof.random(n) < s_col
        level = np.where(take_typical, typ[seg - 1], rng_prof.integers(0, L, size=n))
        profile[name] = pd.array(np.asarray(levels, dtype=object)[level], dtype="str")
        cramers[name] = cramers_v_from_strength(s_col, share_arr, L, typ) if mult else 0.0
        typical_levels[name] = pd.Series([levels[t] for t in typ], index=seg_index, name=name, dtype="str")
    d = np.linspace(-0.6, 0.6, k) if k > 1 else np.zeros(1)
    price_mean = _PLAN_PRICE_BASE * np.exp(strength * rng_prof.permutation(d))
    sigma = 0.3
    price = price_mean[seg - 1] * np.exp(rng_prof.normal(-sigma**2 / 2, sigma, size=n))
    profile["plan_price"] = np.round(price, 0)
    profile_df = pd.DataFrame(profile, index=rid)

    typical_dur = 60.0 + 20.0 * m
    dur = typical_dur * np.clip(np.exp(rng_dur.normal(0.0, 0.3, size=n)), 0.6, 2.5)
    dur[sp] = typical_dur * rng_dur.uniform(0.08, 0.18, size=len(sp))
    duration = pd.Series(np.round(dur), index=rid, name="duration")

    # ---- assemble ----------------------------------------------------------------------------
    cols = pd.Index(ids_o, name="outcome", dtype="str")
    survey = Survey(
        importance=pd.DataFrame(imp_r, index=rid, columns=cols),
        satisfaction=pd.DataFrame(sat_r, index=rid, columns=cols),
        outcomes=outcomes,
        imp_scale=Scale(float(imp[0]), float(imp[1])),
        sat_scale=Scale(float(sat[0]), float(sat[1])),
        profile=profile_df,
        duration=duration,
        source="<simulated>",
        notes=(f"simulated: n={n}, m={m}, k={k}, separation={separation}, random_seed={random_seed}",),
    )
    truth = SimulationTruth(
        segment=pd.Series(seg, index=rid, name="segment"),
        shares=pd.Series(share_arr, index=seg_index, name="share"),
        underserved=claimed,
        bad={rule: tuple(rid[kind == r + 1]) for r, rule in enumerate(BAD_RULES)},
        centers=pd.DataFrame(_exact_centers(imp_mu, sat_mu, imp, sat), index=seg_index, columns=cols),
        importance_mean=pd.DataFrame(imp_mu, index=seg_index, columns=cols),
        satisfaction_mean=pd.DataFrame(sat_mu, index=seg_index, columns=cols),
        cramers_v=cramers,
        typical=typical_levels,
        plan_price_mean=pd.Series(price_mean, index=seg_index, name="plan_price_mean"),
        random_seed=random_seed,
    )
    return survey, truth


# --------------------------------------------------------------------------------------------
# rating-level study designs (b) and (c): segments on the opportunity scale; response styles
# --------------------------------------------------------------------------------------------

_SCORE_SD = 2.5  # within-segment sd of a latent opportunity score (0-20 scale), design (b)
# design (b) raises a segment's outcomes by _SCORE_SHIFT * separation sds: in designs (a) / (c) a
# separation s moves the opportunity score of a segment's own outcomes by 2.2 s pooled sds
# (measured on 60,000 respondents: 1.00, 1.58, 2.18 at s = 0.5, 0.75, 1), so one separation means
# about the same distance on the opportunity scale in every design
_SCORE_SHIFT = 2.2
_STYLE_SD = 1.5  # within-segment sd of a latent rating (0-10 scale), design (c)


def _survey_from_ratings(imp_r: np.ndarray, sat_r: np.ndarray, imp: tuple[int, int], sat: tuple[int, int],
                         note: str) -> Survey:
    n, m = imp_r.shape
    outcomes = _outcome_table(m, 1, DEFAULT_JOB)
    width = max(4, len(str(n)))
    rid = pd.Index([f"R{i + 1:0{width}d}" for i in range(n)], name="respondent_id", dtype="str")
    cols = pd.Index(list(outcomes.index), name="outcome", dtype="str")
    return Survey(
        importance=pd.DataFrame(imp_r, index=rid, columns=cols),
        satisfaction=pd.DataFrame(sat_r, index=rid, columns=cols),
        outcomes=outcomes,
        imp_scale=Scale(float(imp[0]), float(imp[1])),
        sat_scale=Scale(float(sat[0]), float(sat[1])),
        source="<simulated>",
        notes=(note,),
    )


def _block_segments(m: int, k: int) -> list[np.ndarray]:
    """Outcomes of segment g's block: contiguous blocks of up to 2 outcomes each, one per segment
    (outcomes beyond the blocks belong to no segment)."""
    size = max(1, min(2, m // max(k, 1)))
    return [np.arange(g * size, min(m, (g + 1) * size)) for g in range(k)]


def score_to_ratings_0_10(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The importance and satisfaction (0-10) whose opportunity score is ``score`` (0-20).

    A continuous, increasing map with ``imp + max(imp - sat, 0) = score`` exactly: up to
    ``20 / 3`` the outcome is served (importance = score, satisfaction above it, meeting it at
    ``20 / 3``); beyond, importance ``5 + score / 4`` rises to 10 and satisfaction
    ``10 - score / 2`` falls to 0.

    Examples
    --------
    >>> i, s = score_to_ratings_0_10(np.array([0.0, 20 / 3, 15.0, 20.0]))
    >>> i.round(2).tolist(), s.round(2).tolist()
    ([0.0, 6.67, 8.75, 10.0], [3.33, 6.67, 2.5, 0.0])
    """
    s = np.clip(np.asarray(score, dtype=float), 0.0, 20.0)
    knot = 20.0 / 3.0
    high = s >= knot
    imp = np.where(high, 5.0 + s / 4.0, s)
    sat = np.where(high, 10.0 - s / 2.0, s + (knot - s) / 2.0)
    return imp, sat


def _rate(x10: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.rint(lo + (hi - lo) * x10 / 10.0), lo, hi)


def _opp_of_ratings(imp_r: np.ndarray, sat_r: np.ndarray, imp: tuple[int, int], sat: tuple[int, int]) -> np.ndarray:
    i10 = 10.0 * (imp_r - imp[0]) / (imp[1] - imp[0])
    s10 = 10.0 * (sat_r - sat[0]) / (sat[1] - sat[0])
    return i10 + np.maximum(i10 - s10, 0.0)


def simulate_score_segments(
    n: int = 400,
    n_outcomes: int = 8,
    n_segments: int = 3,
    *,
    shares: Sequence[float] | np.ndarray | None = None,
    separation: float = 1.0,
    imp_scale: tuple[int, int] | str | Scale = (1, 5),
    sat_scale: tuple[int, int] | str | Scale = (1, 5),
    exact_shares: bool = False,
    random_seed: int | None = None,
) -> tuple[Survey, SimulationTruth]:
    """Design (b) of the rating study: segments that are Gaussian on the opportunity-score scale.

    Each respondent's latent opportunity score on outcome o is ``Normal(mu[g, o], 2.5)`` (0-20
    scale, clipped to it), independent across outcomes given the segment g. Outcome baselines are
    uniform on [4, 9]; segment g's block of (up to two) outcomes is raised by
    ``2.2 * separation * 2.5``: a standardised distance of ``2.2 * separation`` between a
    segment and the others on its own outcomes, about what the same ``separation`` gives on the
    opportunity scale in :func:`simulate_response_styles`. The score is mapped back to importance and satisfaction by
    :func:`score_to_ratings_0_10` (one deterministic pair per score, so the two ratings of an
    outcome are **dependent** given the segment: the rating models' local independence is
    violated, on purpose), then onto the scales and rounded.

    ``truth.centers`` is the segment's expected opportunity score of the **rounded** ratings (what
    a respondent-level score averages to), by quadrature over the normal (error below 1e-6).

    Parameters
    ----------
    n, n_outcomes, n_segments : int
    shares : sequence of float, optional
        Default :func:`default_shares`.
    separation : float, default 1.0
    imp_scale, sat_scale : (int, int) or str or Scale, default (1, 5)
    exact_shares : bool, default False
        ``False``: segment sizes multinomial (what a sample gives); ``True``: ``n * shares`` rounded.
    random_seed : int or None

    Returns
    -------
    survey : Survey
    truth : SimulationTruth
        ``segment``, ``shares``, ``underserved`` (each segment's raised outcomes), ``centers``
        (k, m) the true segment opportunity; ``importance_mean`` / ``satisfaction_mean`` the
        0-10 ratings at the segment's mean score.

    Examples
    --------
    >>> survey, truth = simulate_score_segments(100, n_outcomes=6, n_segments=3, random_seed=1)
    >>> survey.importance.shape, truth.centers.shape
    ((100, 6), (3, 6))
    """
    func = "simulate_score_segments"
    n = check_int(n, "n", low=1, where=func)
    m = check_int(n_outcomes, "n_outcomes", low=2, where=func)
    k = check_int(n_segments, "n_segments", low=1, where=func)
    separation = _check_float(separation, "separation", func, 0.0, np.inf)
    imp = _parse_scale(imp_scale, "imp_scale")
    sat = _parse_scale(sat_scale, "sat_scale")
    share_arr = _resolve_shares(shares, k, func)
    rng_mu, rng_alloc, rng_x = as_rng(random_seed).spawn(3)
    base = rng_mu.uniform(4.0, 9.0, size=m)
    mu = np.tile(base, (k, 1))
    blocks = _block_segments(m, k)
    for g, b in enumerate(blocks):
        mu[g, b] += _SCORE_SHIFT * separation * _SCORE_SD
    seg = _allocate(n, share_arr, rng_alloc, exact=bool(exact_shares))
    score = mu[seg - 1] + _SCORE_SD * rng_x.standard_normal((n, m))
    i10, s10 = score_to_ratings_0_10(score)
    imp_r, sat_r = _rate(i10, *imp), _rate(s10, *sat)
    # exact segment opportunity: quadrature of the rounded ratings' score over the normal
    z = np.linspace(-8.0, 8.0, 16001)
    wz = np.exp(-0.5 * z**2)
    wz /= wz.sum()
    centers = np.empty((k, m))
    for g in range(k):
        for o in range(m):
            gi, gs = score_to_ratings_0_10(mu[g, o] + _SCORE_SD * z)
            centers[g, o] = float(wz @ _opp_of_ratings(_rate(gi, *imp), _rate(gs, *sat), imp, sat))
    survey = _survey_from_ratings(imp_r, sat_r, imp, sat,
                                  f"simulated (design b): n={n}, m={m}, k={k}, separation={separation}, random_seed={random_seed}")
    ids = list(survey.outcome_ids)
    seg_index = pd.Index(range(1, k + 1), name="segment")
    cols = pd.Index(ids, name="outcome", dtype="str")
    mi, ms = score_to_ratings_0_10(mu)
    truth = SimulationTruth(
        segment=pd.Series(seg, index=survey.respondent_ids, name="segment"),
        shares=pd.Series(share_arr, index=seg_index, name="share"),
        underserved={g + 1: tuple(ids[i] for i in b) for g, b in enumerate(blocks)},
        bad={rule: () for rule in BAD_RULES},
        centers=pd.DataFrame(centers, index=seg_index, columns=cols),
        importance_mean=pd.DataFrame(mi, index=seg_index, columns=cols),
        satisfaction_mean=pd.DataFrame(ms, index=seg_index, columns=cols),
        random_seed=random_seed,
    )
    return survey, truth


def _rating_probs_sd(mu10: np.ndarray, sd10: float, lo: int, hi: int) -> np.ndarray:
    """P(rating = v), v = lo..hi, for latent 0-10 values Normal(mu10, sd10) rounded and clipped."""
    from scipy.stats import norm

    span = hi - lo
    mloc = lo + span * mu10 / 10.0
    s = span * sd10 / 10.0
    edges = np.arange(lo, hi) + 0.5
    cdf = norm.cdf((edges - mloc[..., None]) / s)
    lower = np.concatenate([np.zeros(mloc.shape + (1,)), cdf], axis=-1)
    upper = np.concatenate([cdf, np.ones(mloc.shape + (1,))], axis=-1)
    return upper - lower


def simulate_response_styles(
    n: int = 400,
    n_outcomes: int = 8,
    n_segments: int = 3,
    *,
    shares: Sequence[float] | np.ndarray | None = None,
    separation: float = 1.0,
    top_share: float = 0.3,
    imp_scale: tuple[int, int] | str | Scale = (1, 5),
    sat_scale: tuple[int, int] | str | Scale = (1, 5),
    exact_shares: bool = False,
    random_seed: int | None = None,
) -> tuple[Survey, SimulationTruth]:
    """Design (c) of the rating study: segments on the ratings, plus respondents who use only the
    top of the scale.

    Every rating is a latent 0-10 value ``Normal(mean[g, o], 1.5)``, independent given the
    segment g, rounded onto the scale. Importance baselines are uniform on [3.5, 6], satisfaction
    on [5, 7.5]; on segment g's block of (up to two) outcomes importance is raised by
    ``2.5 * separation`` and satisfaction lowered by ``3 * separation`` (those of
    :func:`simulate_survey`). A share ``top_share`` of the respondents, in every segment alike,
    use only the top half of both scales: their latent value is ``5 + y / 2`` (sd halved). The
    style is a nuisance that crosses the segments: a method that finds "top-raters" as a
    segment has found the style, not a need.

    ``truth.centers`` is the segment's expected opportunity score of the rounded ratings, the
    two styles mixed in their proportions (exact, from the rating distributions).

    Parameters
    ----------
    n, n_outcomes, n_segments : int
    shares : sequence of float, optional
    separation : float, default 1.0
    top_share : float, default 0.3
        In [0, 1).
    imp_scale, sat_scale : (int, int) or str or Scale, default (1, 5)
    exact_shares : bool, default False
    random_seed : int or None

    Returns
    -------
    survey : Survey
    truth : SimulationTruth
        As :func:`simulate_score_segments`; ``importance_mean`` / ``satisfaction_mean`` are the
        latent means of the ordinary style.

    Examples
    --------
    >>> survey, truth = simulate_response_styles(100, n_outcomes=6, n_segments=3, random_seed=1)
    >>> int(survey.importance.min().min()), truth.centers.shape
    (1, (3, 6))
    """
    func = "simulate_response_styles"
    n = check_int(n, "n", low=1, where=func)
    m = check_int(n_outcomes, "n_outcomes", low=2, where=func)
    k = check_int(n_segments, "n_segments", low=1, where=func)
    separation = _check_float(separation, "separation", func, 0.0, np.inf)
    top_share = _check_float(top_share, "top_share", func, 0.0, 1.0, high_open=True)
    imp = _parse_scale(imp_scale, "imp_scale")
    sat = _parse_scale(sat_scale, "sat_scale")
    share_arr = _resolve_shares(shares, k, func)
    rng_mu, rng_alloc, rng_style, rng_x = as_rng(random_seed).spawn(4)
    imp_mu = np.tile(rng_mu.uniform(3.5, 6.0, size=m), (k, 1))
    sat_mu = np.tile(rng_mu.uniform(5.0, 7.5, size=m), (k, 1))
    blocks = _block_segments(m, k)
    for g, b in enumerate(blocks):
        imp_mu[g, b] += _IMP_SHIFT * separation
        sat_mu[g, b] -= _SAT_SHIFT * separation
    seg = _allocate(n, share_arr, rng_alloc, exact=bool(exact_shares))
    top = rng_style.random(n) < top_share
    shrink = np.where(top, 0.5, 1.0)[:, None]
    lift = np.where(top, 5.0, 0.0)[:, None]
    yi = imp_mu[seg - 1] + _STYLE_SD * rng_x.standard_normal((n, m))
    ys = sat_mu[seg - 1] + _STYLE_SD * rng_x.standard_normal((n, m))
    imp_r = _rate(lift + shrink * yi, *imp)
    sat_r = _rate(lift + shrink * ys, *sat)
    vi = 10.0 * np.arange(imp[1] - imp[0] + 1) / (imp[1] - imp[0])
    vs = 10.0 * np.arange(sat[1] - sat[0] + 1) / (sat[1] - sat[0])
    opp = vi[:, None] + np.maximum(vi[:, None] - vs[None, :], 0.0)
    centers = np.zeros((k, m))
    for w, lf, sh in ((1.0 - top_share, 0.0, 1.0), (top_share, 5.0, 0.5)):
        if w > 0:
            p_i = _rating_probs_sd(lf + sh * imp_mu, sh * _STYLE_SD, *imp)
            p_s = _rating_probs_sd(lf + sh * sat_mu, sh * _STYLE_SD, *sat)
            centers += w * np.einsum("kmi,kms,is->km", p_i, p_s, opp)
    survey = _survey_from_ratings(
        imp_r, sat_r, imp, sat,
        f"simulated (design c): n={n}, m={m}, k={k}, separation={separation}, top_share={top_share}, "
        f"random_seed={random_seed}")
    ids = list(survey.outcome_ids)
    seg_index = pd.Index(range(1, k + 1), name="segment")
    cols = pd.Index(ids, name="outcome", dtype="str")
    truth = SimulationTruth(
        segment=pd.Series(seg, index=survey.respondent_ids, name="segment"),
        shares=pd.Series(share_arr, index=seg_index, name="share"),
        underserved={g + 1: tuple(ids[i] for i in b) for g, b in enumerate(blocks)},
        bad={rule: () for rule in BAD_RULES},
        centers=pd.DataFrame(centers, index=seg_index, columns=cols),
        importance_mean=pd.DataFrame(imp_mu, index=seg_index, columns=cols),
        satisfaction_mean=pd.DataFrame(sat_mu, index=seg_index, columns=cols),
        random_seed=random_seed,
    )
    return survey, truth


# --------------------------------------------------------------------------------------------
# segments defined at the rating level
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RatingSimulation:
    """Ratings simulated from segments defined by their rating distributions, and the truth.

    Attributes
    ----------
    survey : Survey
        The ratings as a survey (outcomes ``o01..``, respondents ``r0001..``), no profile columns.
    data : DataFrame, shape (n, 2J)
        The same ratings as the rating families take them
        (:func:`latentseg.prepare.ratings.rating_frame`).
    segment : Series of int, length n
        True segment 1..k of every respondent (1 the largest).
    shares : ndarray, shape (k,)
        True segment shares (largest first).
    imp_probs, sat_probs : ndarray, shapes (k, J, C_imp), (k, J, C_sat)
        True probability of every scale point per segment and outcome (the margins).
    joint_probs : ndarray, shape (k, J, C_imp, C_sat)
        True probability of every (importance, satisfaction) pair per segment and outcome.
    opportunity : DataFrame, shape (k, J)
        True segment opportunity ``E[imp + max(imp - sat, 0)]`` on the 0-20 scale of the scores
        (index segments 1..k, columns outcomes).
    random_seed : int or None
    """

    survey: Survey
    data: pd.DataFrame
    segment: pd.Series
    shares: np.ndarray
    imp_probs: np.ndarray
    sat_probs: np.ndarray
    opportunity: pd.DataFrame
    random_seed: int | None = None
    joint_probs: np.ndarray | None = None


def _peaked(mu: np.ndarray, n_points: int, width: float) -> np.ndarray:
    """Probabilities over ``n_points`` equally spaced points of [0, 1] peaking at ``mu`` (..., ) ->
    (..., n_points): a discretised normal of sd ``width``."""
    t = np.linspace(0.0, 1.0, n_points)
    logp = -0.5 * ((t - mu[..., None]) / width) ** 2
    logp -= logp.max(axis=-1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=-1, keepdims=True)


def simulate_ratings(
    n: int,
    k: int = 4,
    n_outcomes: int = 24,
    *,
    imp_scale: object = "1-5",
    sat_scale: object = "1-5",
    shares: Sequence[float] | np.ndarray | None = None,
    separation: float = 1.0,
    width: float = 0.18,
    dependence: float = 0.0,
    missing_rate: float = 0.0,
    exact_shares: bool = True,
    random_seed: int | None = None,
) -> RatingSimulation:
    """Importance and satisfaction ratings from segments defined by their rating distributions.

    Every outcome ``j`` has a sample-wide importance and satisfaction location on [0, 1]
    (uniform on [0.3, 0.8]); segment ``c`` moves each by ``separation x 0.25 x N(0, 1)``
    (clipped to [0.02, 0.98]), so segments differ on every outcome by random amounts, some
    underserved (important, unsatisfied) where others are not. A segment's distribution over
    the points of a scale is a discretised normal around its location with standard deviation
    ``width`` (on [0, 1]); ratings are independent given the segment (the latent class model of
    ``rating-lca``). With ``dependence`` > 0 importance and satisfaction of one outcome are
    dependent within a segment: with that probability a respondent's satisfaction is the mirror of
    its importance (the point at the same relative position from the other end of its scale: the
    more it matters, the less satisfied), otherwise it is drawn from the segment's satisfaction
    distribution; ``joint_probs`` and ``opportunity`` are then those of the joint table.
    Missing ratings: each cell independently with probability ``missing_rate``.

    Parameters
    ----------
    n : int
        Respondents.
    k : int, default 4
        Segments.
    n_outcomes : int, default 24
    imp_scale, sat_scale : str or (low, high), default "1-5"
        Integer scales, e.g. ``"1-7"`` or ``(0, 10)``.
    shares : sequence of float, optional
        Segment shares (largest first); default :func:`default_shares`.
    separation : float, default 1.0
        Scale of the segment differences (0: identical segments).
    width : float, default 0.18
        Spread of a segment's ratings around its location (smaller: more peaked, easier).
    dependence : float, default 0.0
        Within-segment dependence of satisfaction on importance, in [0, 1] (above).
    missing_rate : float, default 0.0
    exact_shares : bool, default True
    random_seed : int or None

    Returns
    -------
    RatingSimulation

    Examples
    --------
    >>> sim = simulate_ratings(100, k=3, n_outcomes=5, imp_scale="0-10", random_seed=1)
    >>> sim.data.shape, sim.imp_probs.shape, sim.sat_probs.shape, sim.opportunity.shape
    ((100, 10), (3, 5, 11), (3, 5, 5), (3, 5))
    >>> sim.segment.value_counts().sort_index().tolist()
    [45, 33, 22]
    """
    from latentseg.prepare.ratings import rating_frame, segment_opportunity

    func = "simulate_ratings"
    n = check_int(n, "n", low=1, where=func)
    k = check_int(k, "k", low=1, where=func)
    J = check_int(n_outcomes, "n_outcomes", low=1, where=func)
    separation = _check_float(separation, "separation", func, 0.0, 10.0)
    width = _check_float(width, "width", func, 0.01, 10.0)
    dependence = _check_float(dependence, "dependence", func, 0.0, 1.0)
    missing_rate = _check_float(missing_rate, "missing_rate", func, 0.0, 1.0, high_open=True)
    ilo, ihi = _parse_scale(imp_scale, "imp_scale")
    slo, shi = _parse_scale(sat_scale, "sat_scale")
    share_arr = _resolve_shares(shares, k, func)
    rng = as_rng(random_seed)
    rng_alloc, rng_params, rng_draw, rng_missing, rng_dep = rng.spawn(5)
    seg = _allocate(n, share_arr, rng_alloc, exact_shares) - 1  # 0-based

    base = rng_params.uniform(0.3, 0.8, size=(2, J))
    mu = np.clip(base[:, None, :] + separation * 0.25 * rng_params.standard_normal((2, k, J)), 0.02, 0.98)
    imp_probs = _peaked(mu[0], ihi - ilo + 1, width)
    sat_probs = _peaked(mu[1], shi - slo + 1, width)

    def draw(probs: np.ndarray, low: int) -> np.ndarray:
        cum = np.cumsum(probs[seg], axis=2)  # (n, J, C)
        cum[..., -1] = 1.0
        u = rng_draw.random((n, J, 1))
        return (u > cum).sum(axis=2).astype(float) + low

    imp = draw(imp_probs, ilo)
    sat = draw(sat_probs, slo)
    ci, cs = ihi - ilo + 1, shi - slo + 1
    mirror = np.rint((1.0 - np.arange(ci) / (ci - 1)) * (cs - 1)).astype(int)  # importance code -> satisfaction code
    joint = (1.0 - dependence) * imp_probs[..., :, None] * sat_probs[..., None, :]
    if dependence > 0:
        tied = rng_dep.random((n, J)) < dependence
        sat = np.where(tied, mirror[(imp - ilo).astype(int)] + slo, sat).astype(float)
        joint[..., np.arange(ci), mirror] += dependence * imp_probs
    if missing_rate > 0:
        imp[rng_missing.random(imp.shape) < missing_rate] = np.nan
        sat[rng_missing.random(sat.shape) < missing_rate] = np.nan
    ids = pd.Index([f"r{i + 1:04d}" for i in range(n)], name="respondent_id")
    outcomes = [f"o{j + 1:02d}" for j in range(J)]
    isc, ssc = Scale(float(ilo), float(ihi)), Scale(float(slo), float(shi))
    survey = Survey(
        importance=pd.DataFrame(imp, index=ids, columns=outcomes),
        satisfaction=pd.DataFrame(sat, index=ids, columns=outcomes),
        outcomes=pd.DataFrame({"statement": outcomes, "job_step": ""}, index=outcomes),
        imp_scale=isc,
        sat_scale=ssc,
        source="<simulated>",
    )
    opp = segment_opportunity(
        None, None, isc.to_0_10(np.arange(ilo, ihi + 1.0)), ssc.to_0_10(np.arange(slo, shi + 1.0)), joint=joint
    )
    return RatingSimulation(
        survey=survey,
        data=rating_frame(survey),
        segment=pd.Series(seg + 1, index=ids, name="segment"),
        shares=share_arr,
        imp_probs=imp_probs,
        sat_probs=joint.sum(axis=-2),
        joint_probs=joint,
        opportunity=pd.DataFrame(opp, index=pd.RangeIndex(1, k + 1, name="segment"), columns=outcomes),
        random_seed=None if random_seed is None else int(random_seed),
    )


# --------------------------------------------------------------------------------------------
# unequal-probability samples (survey weights with a known population truth)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WeightedSample:
    """An unequal-probability sample from a finite population with known segments.

    Attributes
    ----------
    data : DataFrame, shape (n, d)
        The sample's model input: numeric ``x1..xd`` (``kind="scores"``) or categorical items coded as
        :func:`simulate_categorical` codes them (``kind="levels"``).
    labels : ndarray of int, shape (n,)
        True segment of each sampled row, ``1..k`` (segment 1 the largest in the population).
    weights : ndarray, shape (n,)
        Design weights ``1 / inclusion``, normalised to mean 1.
    inclusion : ndarray, shape (n,)
        Each sampled row's inclusion probability.
    profile : DataFrame, shape (n, 1)
        ``region`` (``"north"`` / ``"south"``): a profile column tied to the segment that also
        drives selection.
    population_shares : ndarray, shape (k,)
        The finite population's segment shares (the truth a weighted share estimates).
    sample_shares : ndarray, shape (k,)
        The sample's unweighted segment shares (what an unweighted fit estimates).
    population_size : int
    """

    data: pd.DataFrame
    labels: np.ndarray
    weights: np.ndarray
    inclusion: np.ndarray
    profile: pd.DataFrame
    population_shares: np.ndarray
    sample_shares: np.ndarray
    population_size: int


def simulate_weighted_survey(
    n: int = 600,
    k: int = 3,
    *,
    kind: Literal["scores", "levels"] = "scores",
    d: int = 8,
    n_categories: int = 5,
    shares: Sequence[float] | np.ndarray | None = None,
    separation: float | None = None,
    oversample: float = 3.0,
    region_effect: float = 1.0,
    population_factor: int = 20,
    random_seed: int | None = None,
) -> WeightedSample:
    """An unequal-probability (Poisson) sample from a finite population with known segments.

    A population of ``population_factor * n`` respondents is drawn from a Gaussian mixture
    (:func:`simulate_gaussian_mixture`, ``kind="scores"``) or a latent class model
    (:func:`simulate_categorical`, ``kind="levels"``) with exactly the given ``shares``. Each
    respondent has a ``region``: ``P(south | segment j)`` rises linearly from 0.2 (segment 1) to
    0.8 (segment k). Selection depends on both: respondent ``i`` of segment ``j`` has size
    ``s_i = oversample ** ((j - 1) / (k - 1)) * exp(region_effect * [south])`` and is sampled
    independently with probability ``pi_i = min(1, n * s_i / sum(s))`` (expected sample size
    about ``n``). Small segments and the south are thus over-represented: the sample's unweighted
    shares are biased, the shares weighted by ``1 / pi`` are not.

    Parameters
    ----------
    n : int, default 600
        Expected sample size.
    k : int, default 3
        Segments (>= 2).
    kind : {"scores", "levels"}
    d : int, default 8
        Numeric columns (``kind="scores"``) or items (``kind="levels"``).
    n_categories : int, default 5
        Categories per item (``kind="levels"``).
    shares : sequence of float, optional
        Population shares (default :func:`default_shares`).
    separation : float, optional
        Passed to the simulator (default 3.0 for scores, 0.6 for levels).
    oversample : float, default 3.0
        Selection size of segment k relative to segment 1 (>= 1; 1 = segment-blind).
    region_effect : float, default 1.0
        Log selection size of the south relative to the north.
    population_factor : int, default 20
        Population size over ``n``.
    random_seed : int or None
        Same seed, same sample.

    Returns
    -------
    WeightedSample

    Examples
    --------
    >>> s = simulate_weighted_survey(400, k=3, random_seed=1)
    >>> s.data.shape[1], round(float(s.weights.mean()), 6), s.population_shares.round(3).tolist()
    (8, 1.0, [0.453, 0.333, 0.213])
    >>> bool(s.sample_shares[-1] > s.population_shares[-1])  # the smallest segment is oversampled
    True
    """
    func = "simulate_weighted_survey"
    n = check_int(n, "n", low=10, where=func)
    k = check_int(k, "k", low=2, where=func)
    factor = check_int(population_factor, "population_factor", low=2, where=func)
    oversample = _check_float(oversample, "oversample", func, 1.0, np.inf)
    region_effect = _check_float(region_effect, "region_effect", func, -10.0, 10.0)
    if kind not in ("scores", "levels"):
        raise ConfigError(f"The 'kind' parameter of {func} must be 'scores' or 'levels'. Got {kind!r} instead.")
    share_arr = _resolve_shares(shares, k, func)
    rng = as_rng(random_seed)
    seed_pop, rng_region, rng_sample = rng.spawn(3)
    big = factor * n
    pop_seed = int(seed_pop.integers(2**31))
    if kind == "scores":
        sep = 3.0 if separation is None else separation
        pop, seg = simulate_gaussian_mixture(big, k, d, shares=share_arr, separation=sep, random_seed=pop_seed)
    else:
        sep = 0.6 if separation is None else separation
        pop, seg = simulate_categorical(big, k, d, n_categories, shares=share_arr, separation=sep,
                                        random_seed=pop_seed)[:2]
    p_south = np.linspace(0.2, 0.8, k)[seg - 1]
    south = rng_region.random(big) < p_south
    size = oversample ** ((seg - 1) / (k - 1)) * np.exp(region_effect * south)
    pi = np.minimum(1.0, n * size / size.sum())
    take = rng_sample.random(big) < pi
    labels = seg[take]
    w = 1.0 / pi[take]
    population_shares = np.bincount(seg, minlength=k + 1)[1:] / big
    sample_shares = np.bincount(labels, minlength=k + 1)[1:] / labels.size
    index = pd.RangeIndex(labels.size, name="respondent")
    data = pop.loc[take].reset_index(drop=True)
    data.index = index
    profile = pd.DataFrame({"region": np.where(south[take], "south", "north")}, index=index)
    return WeightedSample(
        data=data, labels=labels, weights=w / w.mean(), inclusion=pi[take], profile=profile,
        population_shares=population_shares, sample_shares=sample_shares, population_size=big,
    )


@dataclass(frozen=True, eq=False)
class CovariateSample:
    """A mixture whose membership follows a multinomial logit on covariates, with the truth.

    Attributes
    ----------
    data : DataFrame, shape (n, d)
        Numeric ``x1..xd`` (``kind="scores"``) or categorical items ``q1..qd`` with levels
        ``0..C-1`` (``kind="levels"``).
    labels : ndarray of int, shape (n,)
        True segment, ``1..k``.
    covariates : DataFrame, shape (n, 3)
        ``age`` (numeric, mean 40, sd 12), ``region`` (``US`` 50%, ``EU`` 30%, ``APAC`` 20%;
        ``US`` the reference) and ``noise`` (numeric, no effect on membership).
    coefficients : DataFrame
        The planted coefficients: ``segment`` (2..k), ``term`` (``(intercept)``, ``age``,
        ``region[EU]``, ``region[APAC]``, ``noise``), ``value``; against segment 1.
    """

    data: pd.DataFrame
    labels: np.ndarray
    covariates: pd.DataFrame
    coefficients: pd.DataFrame


#: The default planted coefficients per term, columns = segments 2, 3, 4 (against segment 1); age
#: is per year (0.05 per year is 0.6 per standard deviation).
_COVARIATE_TRUTH = {
    "(intercept)": (-2.3, -0.8, -1.0),
    "age": (0.05, 0.0, 0.03),
    "region[EU]": (0.8, -0.6, 0.4),
    "region[APAC]": (-0.5, 0.9, 0.0),
    "noise": (0.0, 0.0, 0.0),
}


def simulate_covariate_mixture(
    n: int = 500,
    k: int = 2,
    *,
    kind: Literal["scores", "levels"] = "scores",
    d: int = 4,
    n_categories: int = 3,
    separation: float | None = None,
    coefficients: Mapping[str, Sequence[float]] | None = None,
    random_seed: int | None = None,
) -> CovariateSample:
    """Simulate a mixture with covariates on membership (latent class / profile regression).

    Respondent ``i`` gets ``age ~ N(40, 12)``, ``region`` in US / EU / APAC (0.5 / 0.3 / 0.2)
    and ``noise ~ N(0, 1)``; its segment is drawn from the multinomial logit
    ``P(c | x) ∝ exp(x' b_c)`` with ``b_1 = 0`` and the planted ``b_c``; then its data from
    the segment: ``kind="scores"``, independent normals with unit variance around means that are
    ``separation`` apart (default 3) on a random simplex; ``kind="levels"``, ``d`` items with
    ``n_categories`` categories, ``P(y = c | segment) = (1 - s) / C + s [c = favoured]``
    (``s = separation``, default 0.6; the favoured categories of the segments differ on every
    item when ``k <= C``).

    Parameters
    ----------
    n : int, default 500
    k : int, default 2
        2 to 4 with the default coefficients.
    kind : {"scores", "levels"}
    d : int, default 4
        Columns or items.
    n_categories : int, default 3
    separation : float, optional
    coefficients : mapping term -> sequence of k - 1 floats, optional
        Default: the first ``k - 1`` of ``(-2.3, -0.8, -1.0)`` (intercept), ``(0.05, 0.0, 0.03)``
        (age per year), ``(0.8, -0.6, 0.4)`` (EU), ``(-0.5, 0.9, 0.0)`` (APAC), zero for noise.
    random_seed : int or None
        Same seed, same sample.

    Returns
    -------
    CovariateSample

    Examples
    --------
    >>> s = simulate_covariate_mixture(400, 2, random_seed=1)
    >>> s.data.shape, list(s.covariates.columns), sorted(set(s.labels.tolist()))
    ((400, 4), ['age', 'region', 'noise'], [1, 2])
    >>> s.coefficients.query("term == 'age'")["value"].tolist()
    [0.05]
    """
    func = "simulate_covariate_mixture"
    n = check_int(n, "n", low=10, where=func)
    k = check_int(k, "k", low=2, where=func)
    d = check_int(d, "d", low=1, where=func)
    if kind not in ("scores", "levels"):
        raise ConfigError(f"The 'kind' parameter of {func} must be 'scores' or 'levels'. Got {kind!r} instead.")
    truth = dict(coefficients) if coefficients is not None else {t: v[: k - 1] for t, v in _COVARIATE_TRUTH.items()}
    if coefficients is None and k > 4:
        raise ConfigError(f"The default coefficients of {func} are for k <= 4; give 'coefficients' for k = {k}.")
    terms = ["(intercept)", "age", "region[EU]", "region[APAC]", "noise"]
    B = np.zeros((len(terms), k - 1))
    for j, t in enumerate(terms):
        vals = np.asarray(truth.get(t, np.zeros(k - 1)), dtype=float)
        if vals.shape != (k - 1,):
            raise ConfigError(f"Coefficients of term {t!r} must be {k - 1} numbers (segments 2..{k}); got {vals.tolist()}.")
        B[j] = vals
    rng = as_rng(random_seed)
    r_cov, r_seg, r_means, r_data = rng.spawn(4)
    age = r_cov.normal(40.0, 12.0, n)
    region = r_cov.choice(np.array(["US", "EU", "APAC"]), size=n, p=[0.5, 0.3, 0.2])
    noise = r_cov.normal(0.0, 1.0, n)
    X = np.c_[np.ones(n), age, region == "EU", region == "APAC", noise].astype(float)
    eta = np.c_[np.zeros(n), X @ B]
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    u = r_seg.random(n)
    labels = (u[:, None] > np.cumsum(P, axis=1)[:, :-1]).sum(axis=1) + 1
    index = pd.RangeIndex(n, name="respondent")
    if kind == "scores":
        sep = 3.0 if separation is None else float(separation)
        means = _unit_means(k, d, r_means) * sep
        data = pd.DataFrame(means[labels - 1] + r_data.standard_normal((n, d)), index=index,
                            columns=[f"x{j + 1}" for j in range(d)])
    else:
        C = check_int(n_categories, "n_categories", low=2, where=func)
        s = 0.6 if separation is None else float(separation)
        fav = np.stack([r_means.permutation(C)[:k] if k <= C else r_means.integers(C, size=k) for _ in range(d)], axis=1)
        probs = (1 - s) / C + s * (np.arange(C)[None, None, :] == fav[:, :, None])  # (k, d, C)
        cum = np.cumsum(probs[labels - 1], axis=2)  # (n, d, C)
        codes = (r_data.random((n, d))[:, :, None] > cum[:, :, :-1]).sum(axis=2)
        data = pd.DataFrame(codes, index=index, columns=[f"q{j + 1}" for j in range(d)])
    covariates = pd.DataFrame({"age": age, "region": region, "noise": noise}, index=index)
    table = pd.DataFrame(
        [(c + 2, t, float(B[j, c])) for c in range(k - 1) for j, t in enumerate(terms)],
        columns=["segment", "term", "value"],
    )
    return CovariateSample(data=data, labels=labels, covariates=covariates, coefficients=table)
