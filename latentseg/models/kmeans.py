"""k-means baseline (scikit-learn's :class:`~sklearn.cluster.KMeans`) as a :class:`SegmentationResult`.

Memberships are 0/1 (each respondent belongs to the nearest center). Criteria: ``inertia``
(within-segment sum of squares), ``silhouette`` (mean silhouette width, scikit-learn's
``silhouette_score``; NaN for k = 1; on a random sample of 10,000 respondents when there are more)
and ``smallest_share``. Share intervals are 95% Wilson intervals by default; with ``bootstrap=B``
they are percentile intervals from B refits on resamples, each resample's segments matched to
the full-sample solution by the Hungarian algorithm on the centers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError
from latentseg.models._em import (
    check_k,
    check_sample_weight,
    numeric_matrix,
    provenance,
    single_threaded,
    start_generators,
)
from latentseg.result import SegmentationResult
from latentseg.models.families import KMEANS

__all__ = ["fit_kmeans", "predict_proba", "weighted_silhouette", "SILHOUETTE_SAMPLE"]

#: Above this many respondents the silhouette is computed on a random sample of this size.
SILHOUETTE_SAMPLE = 10_000


def _kmeans(
    X: np.ndarray, k: int, n_init: int, rng: np.random.Generator, init: Any = "k-means++", w: np.ndarray | None = None
) -> Any:
    from sklearn.cluster import KMeans

    seed = int(rng.integers(2**31 - 1))
    return KMeans(n_clusters=k, n_init=n_init, init=init, random_state=seed).fit(X, sample_weight=w)


def weighted_silhouette(Z: np.ndarray, labels: np.ndarray, w: np.ndarray, chunk: int = 512) -> float:
    """Mean silhouette width with survey weights.

    Respondent ``i``'s mean distance to a segment is the weighted mean over its members (``i``
    itself left out of its own segment), and the widths are averaged with the weights, so an
    integer weight counts a respondent that many times (up to the zero distances between copies).

    Parameters
    ----------
    Z : ndarray, shape (n, d)
    labels : ndarray of int, shape (n,), values 0..k-1
    w : ndarray, shape (n,)

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn.metrics import silhouette_score
    >>> Z = np.array([[0.0], [0.5], [4.0], [5.0], [5.5]]); lab = np.array([0, 0, 1, 1, 1])
    >>> bool(np.isclose(weighted_silhouette(Z, lab, np.ones(5)), silhouette_score(Z, lab)))
    True
    """
    k = int(labels.max()) + 1
    onehot = np.zeros((Z.shape[0], k))
    onehot[np.arange(Z.shape[0]), labels] = w
    mass = onehot.sum(axis=0)
    sq = np.einsum("ij,ij->i", Z, Z)
    widths = np.empty(Z.shape[0])
    for lo in range(0, Z.shape[0], chunk):
        rows = slice(lo, lo + chunk)
        D = np.sqrt(np.maximum(sq[rows, None] - 2.0 * Z[rows] @ Z.T + sq[None, :], 0.0))
        S = D @ onehot  # weighted distance sums to every segment (c, k)
        own = labels[rows]
        idx = np.arange(S.shape[0])
        own_mass = mass[own] - w[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(own_mass > 0, S[idx, own] / own_mass, 0.0)
            other = S / mass
        other[idx, own] = np.inf
        b = other.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s_i = np.where(own_mass > 0, (b - a) / np.maximum(a, b), 0.0)  # a singleton scores 0
        widths[rows] = s_i
    return float(w @ widths / w.sum())


def fit_kmeans(
    data: Any,
    k: int,
    *,
    n_init: int = 10,
    random_seed: int | None = None,
    bootstrap: int = 0,
    standardize: bool = False,
    sample_weight: Any = None,
) -> SegmentationResult:
    """k-means with ``k`` segments, the best of ``n_init`` starts (by inertia).

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        Numeric, no missing values (impute them, or use the Gaussian mixture, which handles them).
    k : int
        Number of segments (1 to the number of distinct respondents).
    n_init : int, default 10
        k-means++ starts (scikit-learn's ``n_init``).
    random_seed : int, optional
        The one seed; same seed, same result.
    bootstrap : int, default 0
        ``B > 0``: share (and center) intervals from ``B`` refits on resamples of the respondents
        (``"95% bootstrap"``, percentile intervals; each refit starts from the full-sample centers
        and its segments are matched to them by the Hungarian algorithm); ``0``: 95% Wilson
        intervals on the shares.
    standardize : bool, default False
        Cluster on z-scores (each column centred and divided by its standard deviation). Centers
        are reported in the original units either way.
    sample_weight : array-like, shape (n,), optional
        Survey weights, used as given (a weight of 2 counts a respondent twice): weighted Lloyd
        iterations and weighted k-means++ seeding (scikit-learn's ``sample_weight``), weighted
        centers, inertia, silhouette (each respondent's mean distances and the overall mean
        weighted) and shares; share intervals are design-based
        (:meth:`SegmentationResult.from_memberships`), bootstrap resamples keep each respondent's
        weight. Standardizing uses the unweighted column moments (a change of units only).

    Returns
    -------
    SegmentationResult
        ``model="kmeans"``; ``params["centers"] (k, d)`` in the units clustered on (z-scores when
        standardized; ``shared_params`` then holds ``scale_mean`` and ``scale_sd``); criteria
        ``inertia, silhouette, smallest_share``; with a bootstrap, ``center_intervals (k, d, 2)``.

    Raises
    ------
    ConfigError
        Missing values, non-numeric columns, a bad ``k``, ``n_init`` or ``bootstrap``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 2)), rng.normal(8, 1, (20, 2))]
    >>> r = fit_kmeans(X, 2, random_seed=1)
    >>> r.shares.tolist(), r.interval_method
    ([0.6, 0.4], '95% Wilson')
    """
    X, names, ids = numeric_matrix(data, allow_missing=False, model=KMEANS)
    w = check_sample_weight(sample_weight, ids, KMEANS)
    k = check_k(k, X, KMEANS)
    for name, val, low in (("n_init", n_init, 1), ("bootstrap", bootstrap, 0)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
            raise ConfigError(f"{name} must be an integer >= {low}; got {val!r}.")
    n_init, bootstrap = int(n_init), int(bootstrap)

    shared: dict[str, np.ndarray] = {}
    Z = X
    if standardize:
        mean, sd = X.mean(axis=0), X.std(axis=0)
        Z = (X - mean) / sd
        shared = {"scale_mean": mean, "scale_sd": sd}

    rng_fit, rng_boot = start_generators(random_seed, 2)
    # scikit-learn loads its OpenMP and SciPy's OpenBLAS when imported: imported first, so that the
    # limit below finds their thread pools on the first fit too
    import sklearn.cluster  # noqa: F401
    import sklearn.metrics  # noqa: F401

    with single_threaded():  # see single_threaded: parallelism belongs across fits
        return _fit(X, Z, names, ids, k, n_init, bootstrap, standardize, shared, rng_fit, rng_boot, random_seed, w)


def _fit(
    X: np.ndarray,
    Z: np.ndarray,
    names: tuple[str, ...],
    ids: pd.Index,
    k: int,
    n_init: int,
    bootstrap: int,
    standardize: bool,
    shared: dict[str, np.ndarray],
    rng_fit: np.random.Generator,
    rng_boot: np.random.Generator,
    random_seed: int | None,
    w: np.ndarray | None = None,
) -> SegmentationResult:
    from sklearn.metrics import silhouette_score

    n = X.shape[0]
    km = _kmeans(Z, k, n_init, rng_fit, w=w)
    labels = km.labels_
    fit_centers = km.cluster_centers_
    if w is None:
        counts = np.bincount(labels, minlength=k)
        centers = np.vstack([X[labels == j].mean(axis=0) for j in range(k)])  # original units
    else:
        counts = np.bincount(labels, weights=w, minlength=k)
        centers = np.vstack([np.average(X[labels == j], axis=0, weights=w[labels == j]) for j in range(k)])
    z = np.zeros((n, k))
    z[np.arange(n), labels] = 1.0
    silhouette = float("nan")
    if 1 < k < n and len(set(labels)) > 1:
        # exact up to SILHOUETTE_SAMPLE respondents; beyond that (O(n^2) work) on a random sample
        sample = SILHOUETTE_SAMPLE if n > SILHOUETTE_SAMPLE else None
        seed = int(rng_fit.integers(2**31 - 1))
        if w is None:
            silhouette = float(silhouette_score(Z, labels, sample_size=sample, random_state=seed))
        else:
            rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False)) if sample else slice(None)
            silhouette = weighted_silhouette(Z[rows], labels[rows], w[rows])
    criteria = {
        "inertia": float(km.inertia_),  # scikit-learn weights it by sample_weight
        "silhouette": silhouette,
        "smallest_share": float(counts.min() / counts.sum()),
    }

    kwargs: dict[str, Any] = {}
    diagnostics: dict[str, Any] = {"converged": True, "warnings": [], "n_iter": int(km.n_iter_), "n_starts": n_init}
    if bootstrap:
        lo, hi, c_int, n_failed = _bootstrap(Z, X, k, fit_centers, n_init, bootstrap, rng_boot, w)
        kwargs = {
            "share_interval": (lo, hi),
            "interval_method": "95% bootstrap",
            "center_intervals": c_int,
        }
        diagnostics["bootstrap"] = bootstrap
        diagnostics["bootstrap_failed"] = n_failed

    settings = {"n_init": n_init, "bootstrap": bootstrap, "standardize": bool(standardize)}
    return SegmentationResult.from_memberships(
        KMEANS,
        z,
        centers=centers,
        feature_names=names,
        respondent_ids=ids,
        criteria=criteria,
        diagnostics=diagnostics,
        provenance=provenance(random_seed, *((X,) if w is None else (X, w)), config={"model": KMEANS, "k": k, **settings}),
        settings=settings,
        params={"centers": fit_centers.copy()},
        shared_params=shared,
        sample_weight=w,
        **kwargs,
    )


def _bootstrap(
    Z: np.ndarray,
    X: np.ndarray,
    k: int,
    ref_centers: np.ndarray,
    n_init: int,
    B: int,
    rng: np.random.Generator,
    w: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Percentile intervals for shares and centers from B refits on resamples (with survey
    weights ``w``: each resampled respondent keeps its weight, and shares and centers are weighted).

    Each refit starts from the full-sample centers (one start: the resample's variability, not
    the search for a better optimum, is what the interval measures, and it is n_init times
    faster), and its centers are matched to the full-sample centers (in the clustering units) by
    the Hungarian algorithm on squared Euclidean distance, which guards against a segment
    taking another's place during the refit.
    """
    from scipy.optimize import linear_sum_assignment

    n, d = X.shape
    shares = np.full((B, k), np.nan)
    centers = np.full((B, k, d), np.nan)
    failed = 0
    for b, g in enumerate(rng.spawn(B)):
        idx = g.integers(n, size=n)
        Zb = Z[idx]
        if np.unique(Zb, axis=0).shape[0] < k:
            failed += 1
            continue
        wb = None if w is None else w[idx]
        km = _kmeans(Zb, k, 1, g, init=ref_centers, w=wb)
        cost = ((ref_centers[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        ref_j, boot_j = linear_sum_assignment(cost)
        counts = np.bincount(km.labels_, weights=wb, minlength=k)
        Xb = X[idx]
        for r, c in zip(ref_j, boot_j):
            shares[b, r] = counts[c] / n if wb is None else counts[c] / wb.sum()
            members = km.labels_ == c
            if members.any():
                centers[b, r] = Xb[members].mean(axis=0) if wb is None else np.average(Xb[members], axis=0, weights=wb[members])
    lo, hi = np.nanpercentile(shares, [2.5, 97.5], axis=0)
    c_lo, c_hi = np.nanpercentile(centers, [2.5, 97.5], axis=0)
    return lo, hi, np.stack([c_lo, c_hi], axis=-1), failed


def predict_proba(result: SegmentationResult, data: Any) -> np.ndarray:
    """One-hot memberships of (new) respondents: 1 for the nearest center.

    Parameters
    ----------
    result : SegmentationResult
        From :func:`fit_kmeans`.
    data : DataFrame or ndarray, shape (n, d)
        A DataFrame is matched to the fitted columns by name. No missing values.

    Returns
    -------
    ndarray, shape (n, k)

    Examples
    --------
    >>> X = np.array([[0.0], [0.2], [5.0], [5.3]])
    >>> r = fit_kmeans(X, 2, random_seed=0)
    >>> predict_proba(r, np.array([[4.9], [0.1]])).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    names = list(result.feature_names)
    if isinstance(data, pd.DataFrame):
        absent = [c for c in names if c not in data.columns]
        if absent:
            from latentseg.errors import format_rows

            raise ConfigError(f"New data lack the column(s) {format_rows(absent)} the model was fitted on.")
        data = data[names]
    X, _, _ = numeric_matrix(data, allow_missing=False, model=KMEANS, check_constant=False)
    if X.shape[1] != len(names):
        raise ConfigError(f"New data have {X.shape[1]} columns; the model was fitted on {len(names)}.")
    if "scale_mean" in result.shared_params:
        X = (X - result.shared_params["scale_mean"]) / result.shared_params["scale_sd"]
    C = np.asarray(result.params["centers"], dtype=float)
    dist = (X * X).sum(axis=1)[:, None] - 2 * X @ C.T + (C * C).sum(axis=1)[None, :]
    out = np.zeros((X.shape[0], C.shape[0]))
    out[np.arange(X.shape[0]), dist.argmin(axis=1)] = 1.0
    return out
