"""Small statistical helpers shared by every engine: intervals, entropy, seeds, hashing, checks."""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist
from typing import Any

import numpy as np

from latentseg.errors import ConfigError

__all__ = ["effective_n", "wilson_interval", "weighted_share_interval", "wilson_each", "SHARE_INTERVALS", "classification_entropy", "relative_entropy", "data_hash", "as_rng", "check_int",
           "adjusted_rand_index"]


def effective_n(weights: Any) -> float:
    """Kish's effective sample size of a weighted sample, ``(sum w)**2 / sum(w**2)``.

    Parameters
    ----------
    weights : array-like, shape (n,)
        Positive weights (any scale).

    Returns
    -------
    float
        ``n`` for equal weights, less the more unequal they are.

    Examples
    --------
    >>> effective_n(np.ones(10)), round(effective_n([1.0, 1.0, 2.0, 4.0]), 3)
    (10.0, 2.909)
    """
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.dot(w, w))


def wilson_interval(
    counts: np.ndarray, n: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions.

    Parameters
    ----------
    counts : ndarray, shape (k,)
        Number of respondents in each segment (may be fractional, e.g. summed memberships).
    n : float
        Total number of respondents.
    level : float, default 0.95
        Coverage of the interval.

    Returns
    -------
    lower, upper : ndarray, shape (k,)

    Examples
    --------
    >>> lo, hi = wilson_interval(np.array([16.0]), 200)
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.05, 0.126)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    counts = np.asarray(counts, dtype=float)
    z = NormalDist().inv_cdf(0.5 + level / 2)  # the stdlib's, so importing this module needs no scipy
    p = counts / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def classification_entropy(memberships: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Total classification entropy ``-sum_n w_n sum_k z_nk log z_nk`` (0 when every z is 0 or 1).

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
    sample_weight : ndarray, shape (n,), optional
        Survey weights (``w_n = 1`` without).

    Examples
    --------
    >>> classification_entropy(np.array([[1.0, 0.0], [0.5, 0.5]]))  # doctest: +ELLIPSIS
    0.693...
    >>> classification_entropy(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([1.0, 2.0]))  # doctest: +ELLIPSIS
    1.386...
    """
    z = np.asarray(memberships, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(z > 0, z * np.log(z), 0.0)
    if sample_weight is not None:
        return float(-(np.asarray(sample_weight, dtype=float) @ terms).sum())
    return float(-terms.sum())


def relative_entropy(memberships: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Relative entropy (Mplus "entropy"): ``1 - E / (n log k)``; 1 means perfectly separated.

    With survey weights, ``E`` is the weighted entropy and ``n`` the sum of the weights.

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
    sample_weight : ndarray, shape (n,), optional

    Examples
    --------
    >>> relative_entropy(np.array([[1.0, 0.0], [0.0, 1.0]]))
    1.0
    """
    z = np.asarray(memberships, dtype=float)
    n, k = z.shape
    if k < 2:
        return 1.0
    total = n if sample_weight is None else float(np.sum(sample_weight))
    return float(1.0 - classification_entropy(z, sample_weight) / (total * np.log(k)))


#: The design-based share intervals of :func:`weighted_share_interval`.
SHARE_INTERVALS = ("linearised", "kish")


def weighted_share_interval(
    memberships: np.ndarray,
    sample_weight: np.ndarray,
    shares: np.ndarray | None = None,
    level: float = 0.95,
    method: str = "linearised",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Weighted segment shares and a design-based Wilson interval on each.

    The share of segment c is the ratio estimator ``p_c = sum_i w_i z_ic / sum_i w_i``. Its
    interval is Wilson's score interval at an effective sample size:

    - ``"linearised"`` (default): per segment, ``n*_c = p_c (1 - p_c) / v_c`` with ``v_c`` the
      Taylor-linearised (with-replacement) variance of the ratio,
      ``v_c = n / (n - 1) * sum_i w_i^2 (z_ic - p_c)^2 / (sum_i w_i)^2``; this carries the
      correlation between the weights and the segments (a segment that was oversampled has small
      weights), which Kish's effective n ignores;
    - ``"kish"``: one effective n for every segment, Kish's ``(sum w)^2 / sum w^2``
      (:func:`effective_n`); exact when the weights are unrelated to the segments.

    Which to use was decided by the coverage study in docs/methods.md ("Survey weights (EM)").

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
        Membership probabilities (rows sum to 1).
    sample_weight : ndarray, shape (n,)
        Positive survey weights (any scale).
    shares : ndarray, shape (k,), optional
        The estimate to centre on (e.g. the mixing weights of a converged EM, which equal the
        weighted mean memberships); defaults to the weighted mean memberships.
    level : float, default 0.95
    method : {"linearised", "kish"}

    Returns
    -------
    shares, lower, upper : ndarray, shape (k,)
    label : str
        The method in words, e.g. ``"95% Wilson, linearised effective n 410-560"``.

    Examples
    --------
    >>> z = np.eye(2)[[0, 0, 1, 1, 1]]
    >>> p, lo, hi, label = weighted_share_interval(z, np.array([2.0, 2.0, 1.0, 1.0, 1.0]), method="kish")
    >>> p.round(3).tolist(), label
    ([0.571, 0.429], '95% Wilson, Kish effective n 4.5')
    """
    if method not in SHARE_INTERVALS:
        raise ValueError(f"method must be one of {', '.join(SHARE_INTERVALS)}; got {method!r}")
    z = np.asarray(memberships, dtype=float)
    w = np.asarray(sample_weight, dtype=float)
    n = z.shape[0]
    total = w.sum()
    p = w @ z / total if shares is None else np.asarray(shares, dtype=float)
    pct = f"{100 * level:g}%"
    if method == "kish":
        ne = effective_n(w)
        lo, hi = wilson_interval(p * ne, ne, level)
        return p, lo, hi, f"{pct} Wilson, Kish effective n {ne:.1f}"
    resid = (z - p) * (w / total)[:, None]
    v = (resid * resid).sum(axis=0) * (n / max(n - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ne = np.where(v > 0, p * (1 - p) / v, float(n))
    ne = np.clip(np.nan_to_num(ne, nan=float(n)), 1.0, None)
    lo, hi = wilson_each(p, ne, level)
    span = f"{ne.min():.0f}" if round(ne.min()) == round(ne.max()) else f"{ne.min():.0f}-{ne.max():.0f}"
    return p, lo, hi, f"{pct} Wilson, linearised effective n {span}"


def wilson_each(p: np.ndarray, ne: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson intervals for proportions ``p`` each at its own (effective) sample size ``ne``.

    Examples
    --------
    >>> lo, hi = wilson_each(np.array([0.08]), np.array([200.0]))
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.05, 0.126)
    """
    z = NormalDist().inv_cdf(0.5 + level / 2)
    denom = 1 + z**2 / ne
    centre = (p + z**2 / (2 * ne)) / denom
    half = z * np.sqrt(p * (1 - p) / ne + z**2 / (4 * ne**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def data_hash(*arrays: Any) -> str:
    """A short, stable SHA-256 hex digest of the given arrays / frames (values and shape).

    Examples
    --------
    >>> data_hash(np.zeros(3)) == data_hash(np.zeros(3))
    True
    """
    h = hashlib.sha256()
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a, dtype=float) if not hasattr(a, "to_numpy") else a.to_numpy(dtype=float, na_value=np.nan))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


def as_rng(random_seed: int | None | np.random.Generator) -> np.random.Generator:
    """Convert the one ``random_seed`` argument into a Generator, once, at the top of a fit.

    Examples
    --------
    >>> bool(as_rng(1).integers(10) == as_rng(1).integers(10))
    True
    """
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    return np.random.default_rng(random_seed)


def check_int(value: Any, name: str, *, low: int, high: float = math.inf, where: str = "") -> int:
    """``value`` as an int if it is an integer in ``[low, high]`` (bools refused), else a ConfigError.

    Parameters
    ----------
    value : any
    name : str
        The parameter's name, for the message.
    low : int
    high : int or inf, default inf
    where : str, optional
        The function (or model) the parameter belongs to. With it the message reads
        ``The 'n' parameter of f must be an int in the range [1, inf). Got 0 instead.``;
        without it ``n must be an integer >= 1; got 0.``

    Returns
    -------
    int

    Raises
    ------
    ConfigError

    Examples
    --------
    >>> check_int(np.int64(3), "k", low=1)
    3
    >>> check_int(0, "n_init", low=1)
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: n_init must be an integer >= 1; got 0.
    >>> check_int(True, "n", low=1, high=5, where="simulate")
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: The 'n' parameter of simulate must be an int in the range [1, 5]. Got True instead.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        finite = high != math.inf
        if where:
            upper = f"{int(high)}]" if finite else "inf)"
            msg = f"The '{name}' parameter of {where} must be an int in the range [{low}, {upper}. Got {value!r} instead."
        else:
            bound = f"in [{low}, {int(high)}]" if finite else f">= {low}"
            msg = f"{name} must be an integer {bound}; got {value!r}."
        raise ConfigError(msg)
    return int(value)


def pair_overlap(z: np.ndarray) -> dict[tuple[int, int], float]:
    """For each pair of segments (0-based), how alike the memberships of their respondents are.

    The mean of ``2 min(z_a, z_b) / (z_a + z_b)`` over the respondents whose modal segment is a or
    b: 0 when the two are always told apart, 1 when they are interchangeable. The Bayesian engine
    and the sweep's skip rule call two segments duplicates by it.

    Parameters
    ----------
    z : ndarray, shape (n, k)
        Membership probabilities.

    Returns
    -------
    dict of (a, b) -> float, for a < b (pairs with no modal respondent are left out)

    Examples
    --------
    >>> import numpy as np
    >>> pair_overlap(np.array([[1.0, 0.0], [0.6, 0.4], [0.4, 0.6]]))
    {(0, 1): 0.5333333333333333}
    """
    k = z.shape[1]
    modal = z.argmax(axis=1)
    out: dict[tuple[int, int], float] = {}
    for a in range(k):
        for b in range(a + 1, k):
            rows = (modal == a) | (modal == b)
            if not rows.any():
                continue
            za, zb = z[rows, a], z[rows, b]
            out[(a, b)] = float(np.mean(2.0 * np.minimum(za, zb) / np.maximum(za + zb, 1e-300)))
    return out


def adjusted_rand_index(a: Any, b: Any) -> float:
    """The adjusted Rand index of two partitions of the same items (Hubert and Arabie 1985):
    1 for the same partition, about 0 for unrelated ones.

    Computed from the pair counts in whole numbers, as scikit-learn's ``adjusted_rand_score``
    does, so it returns the same float; here so that a stability check does not import
    scikit-learn (about 1-2 s) in a process that needs nothing else of it.

    Parameters
    ----------
    a, b : array-like, shape (n,)
        Labels (any hashable values).

    Returns
    -------
    float

    Examples
    --------
    >>> adjusted_rand_index([0, 0, 1, 1], [5, 5, 3, 3]), round(adjusted_rand_index([0, 0, 1, 2], [0, 0, 1, 1]), 4)
    (1.0, 0.5714)
    """
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"The two labellings have {a.size} and {b.size} items; they must label the same items.")
    n = int(a.size)
    ia = np.unique(a, return_inverse=True)[1].ravel().astype(np.int64)
    ib = np.unique(b, return_inverse=True)[1].ravel().astype(np.int64)
    if n == 0:
        return 1.0
    cells = np.bincount(ia * (int(ib.max()) + 1) + ib)  # the contingency table's cells, flattened
    squares = int((cells * cells).sum())
    rows, cols = np.bincount(ia), np.bincount(ib)
    # pairs (ordered) in the same group in both, in b only, in a only, in neither
    tp = squares - n
    fp = int((cols * cols).sum()) - squares
    fn = int((rows * rows).sum()) - squares
    tn = n * n - fp - fn - squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))
