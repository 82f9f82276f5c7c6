"""Helpers shared by the EM engines (Gaussian mixtures, latent class) and k-means.

Nothing here knows about a particular model. The pieces:

- :func:`numeric_matrix` turns a DataFrame / ndarray into a float matrix with feature names and
  respondent ids, and rejects what no engine can use (text columns, infinities, constant columns);
- :func:`check_k` validates the number of segments against the data;
- :func:`normalize_log` is the log-sum-exp step of every E-step: log joint densities in,
  responsibilities and per-respondent log-likelihoods out, with one ``exp`` per cell;
- :func:`start_generators` spawns one independent generator per start from the one seed;
- :func:`random_partition`, :func:`kmeanspp_partition` and :func:`hierarchical_partition` are
  the kinds of starts, the last two on data put on one scale by :func:`standardise`;
- :func:`replication_report` is the Mplus-style summary of which starts reached the best
  log-likelihood;
- :func:`provenance` stamps a result with version, seed, data hash and config.

A latent class engine can reuse :func:`normalize_log`, :func:`start_generators`,
:func:`random_partition`, :func:`replication_report`, :func:`check_k` and :func:`provenance`
unchanged: they work on any ``(n, k)`` array of log joint densities.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentseg._stats import data_hash
from latentseg._version import __version__
from latentseg.errors import ConfigError, format_rows
from latentseg.models.families import GMM

__all__ = [
    "numeric_matrix",
    "check_sample_weight",
    "sandwich_share_interval",
    "share_information",
    "check_k",
    "normalize_log",
    "start_generators",
    "random_partition",
    "kmeanspp_partition",
    "standardise",
    "hierarchical_partition",
    "replication_report",
    "provenance",
    "single_threaded",
    "REPLICATION_TOL",
]


#: Two starts "reach the same maximum" when their log-likelihoods differ by at most this much
#: (the tolerance Mplus uses in its replication report).
REPLICATION_TOL = 0.01


# ---------------------------------------------------------------------------------------- data
def numeric_matrix(
    data: Any,
    *,
    allow_missing: bool,
    model: str,
    check_constant: bool = True,
) -> tuple[np.ndarray, tuple[str, ...], pd.Index]:
    """Validate a numeric table and return it as a float matrix.

    Parameters
    ----------
    data : DataFrame or array-like, shape (n, d)
        A DataFrame gives feature names (its columns) and respondent ids (its index); an array
        gives ``x1..xd`` and ``1..n``. A 1-d array is one feature.
    allow_missing : bool
        Whether NaN (missing) values are allowed. When not, the error names the rows and tells
        the user to impute or to use the Gaussian mixture, which handles missing values.
    model : str
        The model name, used in messages.
    check_constant : bool, default True
        Reject columns with zero variance (over their observed values).

    Returns
    -------
    X : ndarray, shape (n, d), float64
        A new array (the caller's data is never modified).
    feature_names : tuple of str, length d
    respondent_ids : pandas.Index, length n

    Raises
    ------
    ConfigError
        Non-numeric columns, infinite values, missing values where not allowed, a column with
        no observed value or zero variance, an empty table, a respondent with nothing observed.

    Examples
    --------
    >>> X, names, ids = numeric_matrix(pd.DataFrame({"a": [1, 2], "b": [3.0, 5.0]}),
    ...                                allow_missing=False, model="kmeans")
    >>> X.shape, names, list(ids)
    ((2, 2), ('a', 'b'), [0, 1])
    """
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        bad = [str(c) for c, t in zip(data.columns, data.dtypes) if not _is_numeric_dtype(t)]
        if bad:
            raise ConfigError(
                f"The {model} model needs numeric columns; column(s) {format_rows(bad)} are not numeric "
                "(pick numeric columns, or fit a latent class model to categorical data)."
            )
        names = tuple(str(c) for c in data.columns)
        ids = pd.Index(data.index)
        X = data.to_numpy(dtype=float, na_value=np.nan, copy=True)
    else:
        try:
            X = np.array(data, dtype=float, copy=True)
        except (TypeError, ValueError):
            raise ConfigError(f"The {model} model needs a numeric matrix; got values that are not numbers.") from None
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ConfigError(f"The {model} model needs a 2-d table (respondents x features); got {X.ndim} dimensions.")
        names = tuple(f"x{j + 1}" for j in range(X.shape[1]))
        ids = pd.RangeIndex(1, X.shape[0] + 1)
    n, d = X.shape
    if n == 0 or d == 0:
        raise ConfigError(f"The {model} model needs at least one respondent and one column; got shape {X.shape}.")
    if np.isinf(X).any():
        rows = np.flatnonzero(np.isinf(X).any(axis=1))
        raise ConfigError(f"Infinite values at rows {format_rows(ids[rows])}; the {model} model needs finite numbers.")
    missing = np.isnan(X)
    has_missing = bool(missing.any())
    if has_missing:
        rows = np.flatnonzero(missing.any(axis=1))
        if not allow_missing:
            cols = [names[j] for j in np.flatnonzero(missing.any(axis=0))]
            raise ConfigError(
                f"The {model} model cannot use missing values: {len(rows)} row(s) {format_rows(ids[rows])} have "
                f"missing values in column(s) {format_rows(cols)}; impute them, drop those rows, or use the "
                f"Gaussian mixture (model '{GMM}'), which uses each respondent's observed values."
            )
        empty = np.flatnonzero(missing.all(axis=1))
        if empty.size:
            raise ConfigError(
                f"{empty.size} row(s) {format_rows(ids[empty])} have no observed value; drop them before fitting."
            )
        nocol = [names[j] for j in np.flatnonzero(missing.all(axis=0))]
        if nocol:
            raise ConfigError(f"Column(s) {format_rows(nocol)} have no observed value; drop them before fitting.")
    if check_constant and n > 1:
        with np.errstate(invalid="ignore"):
            if has_missing:
                spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
            else:
                spread = X.max(axis=0) - X.min(axis=0)
        const = [names[j] for j in np.flatnonzero(spread == 0)]
        if const:
            raise ConfigError(
                f"Column(s) {format_rows(const)} have zero variance (every respondent has the same value); "
                "drop them: they cannot separate segments."
            )
    return X, names, ids


def check_sample_weight(sample_weight: Any, ids: pd.Index, model: str) -> np.ndarray | None:
    """Validate survey weights for a fit: ``None``, or positive finite numbers, one per row.

    Engines use the weights as given (never renormalised), so an integer weight 2 on a row fits
    as that row twice; the pipeline normalises them to mean 1 before.

    Parameters
    ----------
    sample_weight : array-like, shape (n,), or None
    ids : pandas.Index, length n
        Respondent ids of the rows (named in messages).
    model : str
        Used in messages.

    Returns
    -------
    ndarray, shape (n,), float64 (a new array), or None

    Raises
    ------
    ConfigError
        Wrong length, non-numeric, missing, infinite, zero or negative weights (naming the rows).

    Examples
    --------
    >>> check_sample_weight([1, 2.5], pd.RangeIndex(1, 3), "gmm").tolist()
    [1.0, 2.5]
    >>> check_sample_weight([1.0, 0.0], pd.Index(["a", "b"]), "gmm")
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: The gmm model needs positive, finite sample weights; 1 row(s) [b] have zero, negative, infinite or missing weights.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, (pd.Series, pd.Index)):
        sample_weight = sample_weight.to_numpy()
    try:
        w = np.array(sample_weight, dtype=float, copy=True)
    except (TypeError, ValueError):
        raise ConfigError(f"The {model} model needs numeric sample weights; got values that are not numbers.") from None
    if w.shape != (len(ids),):
        raise ConfigError(
            f"sample_weight must have one weight per respondent, shape ({len(ids)},); got shape {w.shape}."
        )
    bad = np.flatnonzero(~np.isfinite(w) | (w <= 0) | np.isnan(w))
    if bad.size:
        raise ConfigError(
            f"The {model} model needs positive, finite sample weights; {bad.size} row(s) {format_rows(ids[bad])} "
            "have zero, negative, infinite or missing weights."
        )
    return w



def sandwich_share_interval(H: np.ndarray, s: np.ndarray, sw: np.ndarray, pi: np.ndarray) -> dict[str, Any]:
    """Design-based (sandwich) Wilson intervals on the shares of a weighted EM fit.

    The first ``k - 1`` free parameters are the shares' (``pi_k = 1 - sum``); the variance of
    the shares is ``L H^-1 B H^-1 L'`` with ``B`` the weighted scores' covariance, and each share's
    Wilson interval is taken at the effective n that variance implies.

    Parameters
    ----------
    H : ndarray, shape (q, q)
        The weighted observed information of the ``q`` free parameters.
    s : ndarray, shape (n, q)
        Each respondent's score (unweighted).
    sw : ndarray, shape (n,)
        The survey weights.
    pi : ndarray, shape (k,)
        The weighted shares.

    Returns
    -------
    dict
        ``share_interval`` (lower, upper) and ``interval_method``; empty when the information
        is singular or a variance is not positive (the caller then falls back).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.normal(size=(200, 1)); out = sandwich_share_interval(np.array([[200.0]]), s, np.ones(200), np.array([0.5, 0.5]))
    >>> out["interval_method"].startswith("95% Wilson, design-based sandwich effective n")
    True
    """
    from latentseg._stats import wilson_each

    n, q = s.shape
    k = pi.size
    WS = s * sw[:, None]
    WS -= WS.mean(axis=0)
    B = WS.T @ WS * (n / max(n - 1, 1))
    try:
        rows = np.linalg.solve(H, np.eye(q)[:, : k - 1]).T  # the first k - 1 rows of H^-1
    except np.linalg.LinAlgError:
        return {}
    L = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
    var = np.diag(L @ (rows @ B @ rows.T) @ L.T)
    if not np.all(np.isfinite(var)) or np.any(var <= 0):
        return {}
    ne = np.clip(pi * (1 - pi) / var, 1.0, None)
    lo, hi = wilson_each(pi, ne)
    span = f"{ne.min():.0f}" if round(ne.min()) == round(ne.max()) else f"{ne.min():.0f}-{ne.max():.0f}"
    return {"share_interval": (lo, hi), "interval_method": f"95% Wilson, design-based sandwich effective n {span}"}


def share_information(z: np.ndarray, wz: np.ndarray, pi: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixing proportions' part of a weighted EM fit's information and scores, the start of
    :func:`sandwich_share_interval`'s inputs (free parameters ``0 .. k-2`` are the shares).

    Parameters
    ----------
    z : ndarray, shape (n, k)
        Memberships.
    wz : ndarray, shape (n, k)
        Memberships times the survey weights.
    pi : ndarray, shape (k,)
        The weighted shares.
    q : int
        Free parameters in all.

    Returns
    -------
    P : ndarray, shape (k, k - 1)
        The complete-data score of the proportions for a member of segment c (row c).
    H : ndarray, shape (q, q)
        The information, filled for the proportions.
    s : ndarray, shape (n, q)
        The scores, filled for the proportions.

    Examples
    --------
    >>> z = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> P, H, s = share_information(z, z, np.array([0.5, 0.5]), 3)
    >>> float(H[0, 0]), s[:, 0].tolist()
    (8.0, [2.0, -2.0])
    """
    n, k = z.shape
    P = np.zeros((k, k - 1))
    P[np.arange(k - 1), np.arange(k - 1)] = 1.0 / pi[: k - 1]
    P[k - 1] = -1.0 / pi[k - 1]
    H = np.zeros((q, q))
    s = np.zeros((n, q))
    s[:, : k - 1] = z @ P
    Nc = wz.sum(axis=0)
    H[np.arange(k - 1), np.arange(k - 1)] += Nc[: k - 1] / pi[: k - 1] ** 2
    H[: k - 1, : k - 1] += Nc[k - 1] / pi[k - 1] ** 2
    return P, H, s

def _is_numeric_dtype(dtype: Any) -> bool:
    return bool(pd.api.types.is_numeric_dtype(dtype)) and not pd.api.types.is_bool_dtype(dtype)


def check_k(k: Any, X: np.ndarray, model: str) -> int:
    """Validate the number of segments: an integer from 1 to the number of distinct respondents.

    Parameters
    ----------
    k : int
    X : ndarray, shape (n, d)
        The data (NaN allowed; rows are compared as they are).
    model : str
        Used in messages.

    Returns
    -------
    int

    Raises
    ------
    ConfigError

    Examples
    --------
    >>> check_k(2, np.array([[0.0], [1.0], [1.0]]), "gmm")
    2
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ConfigError(f"The number of segments k must be an integer >= 1; got {k!r}.")
    k = int(k)
    if k < 1:
        raise ConfigError(f"The number of segments k must be an integer >= 1; got {k}.")
    if k > X.shape[0]:
        raise ConfigError(f"k = {k} segments but only {X.shape[0]} respondents; choose k <= {X.shape[0]}.")
    if k > 1:
        distinct = _n_distinct_rows(X[: 20 * k + 100])  # usually enough to see k distinct rows
        if distinct < k and X.shape[0] > 20 * k + 100:
            distinct = _n_distinct_rows(X)
        if k > distinct:
            raise ConfigError(
                f"k = {k} segments but only {distinct} distinct respondents (rows with different values); "
                f"choose k <= {distinct}."
            )
    return k


def _n_distinct_rows(X: np.ndarray) -> int:
    """Number of distinct rows (missing values compare equal to each other)."""
    rows = np.ascontiguousarray(np.where(np.isnan(X), np.inf, X))
    return int(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()).size)


# ---------------------------------------------------------------------------------------- E-step
def normalize_log(
    log_joint: np.ndarray, out: np.ndarray | None = None, axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise log joint densities into responsibilities (the log-sum-exp step).

    Parameters
    ----------
    log_joint : ndarray, shape (..., k, ...)
        ``log w_k + log p(x_i | segment k)``, segments along ``axis``. Rows that are all
        ``-inf`` are not allowed.
    out : ndarray, same shape, optional
        Where to write the responsibilities (may be ``log_joint`` itself, to save memory).
    axis : int, default -1
        The segment axis. Putting segments on a leading axis and respondents last (shape
        ``(k, n)``) makes the reductions run along long contiguous rows, which is much faster than
        reducing a short last axis.

    Returns
    -------
    resp : ndarray, same shape
        Posterior membership probabilities; they sum to 1 along ``axis``.
    loglik : ndarray, the shape without ``axis``
        ``log sum_k exp(log_joint)``, the per-respondent log-likelihood.

    Examples
    --------
    >>> r, ll = normalize_log(np.log(np.array([[0.2, 0.6]])))
    >>> r.round(2).tolist(), round(float(ll[0]), 4)
    ([[0.25, 0.75]], -0.2231)
    >>> r, ll = normalize_log(np.log(np.array([[0.2], [0.6]])), axis=0)
    >>> r.round(2).ravel().tolist()
    [0.25, 0.75]
    """
    m = log_joint.max(axis=axis, keepdims=True)
    resp = np.subtract(log_joint, m, out=out)
    np.exp(resp, out=resp)
    s = resp.sum(axis=axis, keepdims=True)
    resp /= s
    ll = np.log(s)
    ll += m
    return resp, np.squeeze(ll, axis=axis)


# ---------------------------------------------------------------------------------------- starts
def start_generators(random_seed: int | None | np.random.Generator, n_starts: int) -> list[np.random.Generator]:
    """One independent generator per start, spawned from the one seed.

    Parameters
    ----------
    random_seed : int, None or Generator
        Converted once with :func:`numpy.random.default_rng`.
    n_starts : int

    Returns
    -------
    list of Generator, length n_starts

    Examples
    --------
    >>> a = [g.random() for g in start_generators(3, 2)]
    >>> a == [g.random() for g in start_generators(3, 2)]
    True
    """
    rng = random_seed if isinstance(random_seed, np.random.Generator) else np.random.default_rng(random_seed)
    return list(rng.spawn(n_starts))


def random_partition(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A random hard partition of ``n`` respondents into ``k`` non-empty segments, as one-hot rows.

    Parameters
    ----------
    n, k : int
        ``n >= k``.
    rng : Generator

    Returns
    -------
    ndarray, shape (n, k), float
        One-hot responsibilities.

    Examples
    --------
    >>> z = random_partition(5, 2, np.random.default_rng(0))
    >>> z.shape, z.sum(axis=1).tolist(), bool((z.sum(axis=0) > 0).all())
    ((5, 2), [1.0, 1.0, 1.0, 1.0, 1.0], True)
    """
    labels = rng.integers(k, size=n)
    # guarantee every segment one member (rare fix-up for small n)
    labels[rng.choice(n, size=k, replace=False)] = np.arange(k)
    z = np.zeros((n, k))
    z[np.arange(n), labels] = 1.0
    return z


def kmeanspp_partition(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Hard partition by the nearest of ``k`` centers chosen by k-means++ seeding.

    The seeding is Arthur & Vassilvitskii's (2007) D^2 sampling: the first center is a random
    respondent, each next one is drawn with probability proportional to the squared distance to
    the nearest center chosen so far. Missing values (NaN) are ignored in distances (distances are
    averaged over the dimensions both rows observe).

    Parameters
    ----------
    X : ndarray, shape (n, d)
    k : int
    rng : Generator

    Returns
    -------
    ndarray, shape (n, k), float
        One-hot responsibilities (every segment holds at least its own center).

    Examples
    --------
    >>> X = np.r_[np.zeros((5, 1)), np.full((5, 1), 9.0)]
    >>> z = kmeanspp_partition(X, 2, np.random.default_rng(1))
    >>> sorted(z.sum(axis=0).tolist())
    [5.0, 5.0]
    """
    n = X.shape[0]
    obs = ~np.isnan(X)
    Xz = np.where(obs, X, 0.0)
    has_missing = not obs.all()
    centers = np.empty(k, dtype=np.intp)
    centers[0] = rng.integers(n)
    dist = np.empty((n, k))  # squared distance to every center, each computed once
    dist[:, 0] = _sq_dist_to(Xz, obs, centers[0], has_missing)
    closest = dist[:, 0].copy()
    for j in range(1, k):
        total = closest.sum()
        if total <= 0 or not np.isfinite(total):
            rest = np.setdiff1d(np.arange(n), centers[:j])
            centers[j] = rng.choice(rest)
        else:
            centers[j] = rng.choice(n, p=closest / total)
        dist[:, j] = _sq_dist_to(Xz, obs, centers[j], has_missing)
        np.minimum(closest, dist[:, j], out=closest)
    labels = dist.argmin(axis=1)
    labels[centers] = np.arange(k)
    z = np.zeros((n, k))
    z[np.arange(n), labels] = 1.0
    return z


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre every column on its mean and divide by its standard deviation (observed values).

    Starting partitions are built on these scale-free coordinates: on raw data a column with a
    large variance (an earthquake's depth in km, variance ~46,000) decides every distance and a
    column with a small one (its magnitude, variance 0.16) is ignored.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        NaN marks a missing value (left as NaN).

    Returns
    -------
    Z : ndarray, shape (n, d)
    center, scale : ndarray, shape (d,)
        ``Z = (X - center) / scale``; a column without spread gets scale 1.

    Examples
    --------
    >>> Z, c, s = standardise(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> Z.tolist(), c.tolist(), s.tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [2.0, 20.0], [1.0, 10.0])
    """
    if np.isnan(X).any():
        center, scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    else:  # the same values, without nan-functions' copies
        center = X.mean(axis=0)
        scale = np.sqrt(((X - center) ** 2).mean(axis=0))
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return (X - center) / scale, center, scale


#: The hierarchical start clusters at most this many respondents (a random subset beyond it) and
#: assigns the rest to the nearest cluster mean: Ward's agglomeration costs O(m^2) time and memory
#: (measured: 15 ms for 1,000 rows, 300 ms for 4,000 on the 2-core benchmark machine).
HC_MAX_ROWS = 1000

_HC_CACHE: dict[Any, Any] = {}


def hc_max_rows(d: int, model: str) -> int:
    """How many respondents the hierarchical start clusters (a seeded subset beyond).

    Ward's agglomeration (EII), and the VVV one on up to 20 columns: :data:`HC_MAX_ROWS`. The VVV
    agglomeration needs a determinant of order d for every pair involving a cluster of more than d
    respondents (measured on 1,000 rows: 0.26 s for d = 5, 0.4 s for d = 20, 9.0 s for d = 40; on
    500 and 250 rows at d = 40: 1.6 s and 0.4 s), so beyond 20 columns it clusters
    ``HC_MAX_ROWS * (20 / d)^2`` rows (250 for d = 40; at least 100).

    Examples
    --------
    >>> hc_max_rows(5, "VVV"), hc_max_rows(40, "VVV"), hc_max_rows(40, "EII")
    (1000, 250, 1000)
    """
    if model != "VVV" or d <= 20:
        return HC_MAX_ROWS
    return max(100, int(HC_MAX_ROWS * (20.0 / d) ** 2))


def hierarchical_partition(Z: np.ndarray, k: int, rng: np.random.Generator, model: str = "EII") -> np.ndarray:
    """Hard partition from a model-based hierarchical agglomeration of standardised data, cut at ``k``.

    Agglomeration merges, step by step, the two clusters whose merge lowers the classification
    likelihood of a Gaussian mixture least (Banfield & Raftery 1993, Fraley 1998), as mclust does to
    start EM.

    ``model="EII"`` (spherical, equal volume) is Ward's criterion. ``model="VVV"`` is mclust's
    default start (``hc(modelName = "VVV", use = "SVD")``, mclust 6.0): the data are re-standardised,
    rotated onto their principal axes and divided by the square roots of the singular values, and
    single respondents are merged, step by step, into the clusters ``C`` that least increase
    ``sum_C n_C log(det(W_C / n_C) + (tr(W_C) + alpha) / n_C)`` (``W_C`` the cluster's scatter
    matrix, the determinant left out while ``n_C <= d``, ``alpha = tr(W) / (n d)`` of all the data;
    Fraley 1998), with mclust's order among exact ties; on the benchmark data sets its partitions
    equal mclust's ``hclass`` exactly (benchmarks/bench_mclust.py). Compiled
    (:func:`latentseg.models._gmm_kernels.hc_vvv`): O(m^2) memory, about 0.1-0.3 s for 1,000 rows
    of 5 columns.
    Elongated segments (a column that varies within every segment) are where it beats Ward.

    Beyond :func:`hc_max_rows` respondents (1,000; fewer for VVV on more than 20 columns) a random
    subset (drawn from ``rng``) is clustered and every respondent goes to the nearest cluster mean.
    The trees do not depend on ``k``, so they are
    cached (keyed by the rows clustered) and reused when the same data are fitted for several k.

    Parameters
    ----------
    Z : ndarray, shape (n, d)
        Standardised data (:func:`standardise`); NaN is treated as the column mean, 0.
    k : int
    rng : Generator
    model : {"EII", "VVV"}

    Returns
    -------
    ndarray, shape (n, k), float
        One-hot responsibilities; every segment non-empty.

    Examples
    --------
    >>> Z = np.r_[np.zeros((4, 1)), np.full((3, 1), 5.0)] + np.arange(7)[:, None] / 100
    >>> sorted(hierarchical_partition(Z, 2, np.random.default_rng(0)).sum(axis=0).tolist())
    [3.0, 4.0]
    >>> sorted(hierarchical_partition(Z, 2, np.random.default_rng(0), model="VVV").sum(axis=0).tolist())
    [3.0, 4.0]
    """
    import hashlib

    from scipy.cluster.hierarchy import linkage

    n = Z.shape[0]
    Zf = np.where(np.isnan(Z), 0.0, Z)
    cap = hc_max_rows(Z.shape[1], model)
    rows = np.sort(rng.choice(n, size=cap, replace=False)) if n > cap else None
    sample = np.ascontiguousarray(Zf if rows is None else Zf[rows])
    m_rows = sample.shape[0]
    key = hashlib.blake2b(sample.tobytes(), digest_size=16, key=str(sample.shape).encode()).digest()
    if model == "VVV" and m_rows > k:
        merges, start = _cached((key, "vvv"), lambda: _mclust_merges(sample))
        labels = _cached((key, "vvv", k), lambda: _replay(start, len(merges) + 1, merges, k))
    else:
        tree = _cached((key, "ward"), lambda: linkage(sample, method="ward"))
        labels = _cached((key, "cut", k), lambda: _cut(tree, m_rows, k))
    if rows is not None:
        means = np.stack([sample[labels == j].mean(axis=0) for j in range(k)])
        d2 = (Zf * Zf).sum(axis=1)[:, None] - 2.0 * Zf @ means.T + (means * means).sum(axis=1)
        full = d2.argmin(axis=1)
        full[rows] = labels
        labels = full
    z = np.zeros((n, k))
    z[np.arange(n), labels] = 1.0
    return z


def _cached(key: Any, make: Any) -> Any:
    value = _HC_CACHE.get(key)
    if value is None:
        value = make()
        if len(_HC_CACHE) >= 64:
            _HC_CACHE.pop(next(iter(_HC_CACHE)))
        _HC_CACHE[key] = value
    return value


def _cut(tree: np.ndarray, n: int, k: int) -> np.ndarray:
    """Labels 0..k-1 of the ``n`` leaves of a scipy linkage cut into exactly ``k`` clusters (the
    first ``n - k`` merges replayed; ties in merge height cannot leave fewer clusters)."""
    merges = tree[: n - k, :2].astype(np.intp)
    parent = np.arange(2 * n - 1)
    for step, (a, b) in enumerate(merges):
        parent[a] = parent[b] = n + step
    roots = np.arange(n)
    for _ in range(n):  # follow parents to the top (depth <= n)
        nxt = parent[roots]
        if np.array_equal(nxt, roots):
            break
        roots = nxt
    return np.unique(roots, return_inverse=True)[1].ravel()


def _mclust_merges(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mclust's default agglomeration (``hc(modelName = "VVV", use = "SVD")``) of the rows of
    ``Z``, from single rows down to one cluster; the merges in order, shape ``(m - 1, 2)``.

    The rows are re-standardised (standard deviations with ``m - 1``, as R's ``scale``), rotated
    onto their principal axes and divided by the square roots of the singular values; the VVV
    criterion is regularised by ``alpha = trace(W) / (m d)`` of the whole sample and ``beta = 1``
    (mclust's defaults; :func:`latentseg.models._gmm_kernels.hc_vvv`). Every row starts as its own
    cluster (as mclust 6.0 does, duplicates included); the second array gives each row's
    starting cluster.
    """
    from latentseg.models._gmm_kernels import hc_vvv

    m = Z.shape[0]
    sd = Z.std(axis=0, ddof=1) if m > 1 else np.ones(Z.shape[1])
    S = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    _, sv, vt = np.linalg.svd(S, full_matrices=False)
    keep = sv > sv[0] * 1e-12 if sv.size else sv > 0
    U = S @ vt[keep].T / np.sqrt(sv[keep])
    alpha = max(float(((U - U.mean(axis=0)) ** 2).sum()) / (m * U.shape[1]), np.finfo(float).eps)
    return hc_vvv(np.ascontiguousarray(U), np.ones(m), alpha, 1.0), np.arange(m)


def _replay(labels: np.ndarray, m: int, merges: Sequence[tuple[int, int]], k: int) -> np.ndarray:
    """Labels 0..k-1 after the first ``m - k`` merges of :func:`_mclust_merges`."""
    group = np.arange(m)
    for i, j in merges[: m - k]:
        group[group == j] = i
    return np.unique(group[labels], return_inverse=True)[1].ravel()


def _sq_dist_to(Xz: np.ndarray, obs: np.ndarray, i: int, has_missing: bool) -> np.ndarray:
    diff = Xz - Xz[i]
    if not has_missing:
        return np.einsum("ij,ij->i", diff, diff)
    both = obs & obs[i]
    diff *= both
    cnt = both.sum(axis=1)
    d = Xz.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.einsum("ij,ij->i", diff, diff) * d / cnt
    return np.where(cnt > 0, out, np.nanmean(out) if np.isfinite(out).any() else 1.0)


def single_threaded() -> Any:
    """A context in which BLAS and OpenMP use one thread (threadpoolctl).

    The EM loops' matrix products have a short inner dimension (2d + 1), so extra BLAS threads
    buy little even on an idle machine, and on a shared or busy one (or under the joblib workers
    of a k sweep, or pytest-xdist) they oversubscribe the cores: measured on the 2-core benchmark
    machine, default threads made a 10,000 x 24 sweep 4x slower and a 1,000,000 x 20 fit 2x slower.
    Parallelism belongs one level up (across fits), so every engine runs single-threaded.

    Returns
    -------
    context manager

    Examples
    --------
    >>> with single_threaded():
    ...     pass
    """
    global _CONTROLLER, _CONTROLLER_MODULES
    # finding the libraries reads /proc/self/maps (~1 ms): done again only after imports, which
    # is when a thread pool can appear (scikit-learn brings OpenMP: a controller made before it was
    # imported would leave k-means on two OpenMP threads spinning against the sweep's other process)
    if _CONTROLLER is None or _CONTROLLER_MODULES != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
        _CONTROLLER_MODULES = len(sys.modules)
    return _CONTROLLER.limit(limits=1)


_CONTROLLER: Any = None
_CONTROLLER_MODULES = 0


# ---------------------------------------------------------------------------------------- report
def replication_report(
    logliks: Sequence[float], usable: Sequence[bool] | None = None, tol: float = REPLICATION_TOL
) -> dict[str, Any]:
    """The Mplus-style replication report over starts.

    Parameters
    ----------
    logliks : sequence of float, length S
        Final log-likelihood of every start.
    usable : sequence of bool, length S, optional
        Starts eligible as the solution (e.g. not degenerate). Defaults to all.
    tol : float, default 0.01
        Starts within ``tol`` of the best usable log-likelihood count as replicating it.

    Returns
    -------
    dict
        ``best`` (index of the best usable start, or of the best start when none is usable),
        ``n_starts``, ``n_best`` (usable starts within ``tol`` of the best), ``share_best``,
        ``best_loglik``, ``start_logliks`` (every start's final log-likelihood, in start order).

    Examples
    --------
    >>> r = replication_report([-10.0, -10.004, -12.0])
    >>> r["best"], r["n_best"], r["n_starts"]
    (0, 2, 3)
    """
    ll = np.asarray(logliks, dtype=float)
    ok = np.ones(ll.size, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    ok = ok & np.isfinite(ll)
    pool = ok if ok.any() else np.isfinite(ll)
    if not pool.any():
        best = 0
        n_best = 0
        best_ll = float("nan")
    else:
        masked = np.where(pool, ll, -np.inf)
        best = int(np.argmax(masked))
        best_ll = float(ll[best])
        n_best = int((pool & (ll >= best_ll - tol)).sum())
    return {
        "best": best,
        "n_starts": int(ll.size),
        "n_best": n_best,
        "share_best": n_best / ll.size if ll.size else float("nan"),
        "best_loglik": best_ll,
        "start_logliks": [float(v) for v in ll],
    }


def provenance(random_seed: int | None, *arrays: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance of a fit: library version, seed, data hash, creation time and config.

    Examples
    --------
    >>> p = provenance(1, np.zeros(3), config={"k": 2})
    >>> sorted(p)
    ['config', 'created', 'data_hash', 'random_seed', 'version']
    """
    return {
        "version": __version__,
        "random_seed": None if random_seed is None else int(random_seed),
        "data_hash": data_hash(*arrays),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": dict(config or {}),
    }
