"""Distal outcomes per segment with a three-step correction for classification error.

A distal outcome is any variable measured next to the survey that the segmentation did not use:
NPS, the Sean Ellis "very disappointed" product-market-fit answer, churn, ARPU. Averaging it over
respondents' modal segments (the naive "classify-analyze" approach) attenuates differences between
segments toward the overall mean, because misclassified respondents carry the other segments'
values. The three-step corrections undo that:

**BCH** (Bolck, Croon & Hagenaars 2004; Vermunt 2010; Bakk & Vermunt 2016). With modal assignment
``W`` and true segment ``X``, the classification error matrix is

.. math:: D_{ks} = P(W = s \\mid X = k) = \\frac{\\sum_i p_{ik} [W_i = s]}{\\sum_i p_{ik}},

estimated from the posterior memberships ``p``. Cross-tabulating anything against ``W`` gives
``D^T`` times the table against ``X``; so each respondent gets weight ``w_ik = (D^{-1})_{W_i k}``
(row ``W_i`` of ``D^{-1}``) for segment ``k`` and the weighted mean of ``y`` with weights
``w_{.k}`` estimates ``E[y | X = k]`` without bias. Weights can be negative.

**ML** (Vermunt 2010). Maximise ``sum_i log sum_k pi_k D_{k W_i} f(y_i | k)`` over the segment
shares ``pi`` and the distal parameters with ``D`` held fixed (EM); ``f`` is a normal density with a
segment-specific variance for numeric outcomes (equal variances bias the ML estimate when they
differ, Bakk & Vermunt 2016) and a categorical distribution otherwise.

Standard errors ignore the uncertainty in ``D`` (as the step-3 estimators in Vermunt 2010 do);
they are linearisation ("sandwich") standard errors for the weighted means and outer-product-of-
gradients standard errors for ML.

**Survey weights** (``sample_weight``, default the result's own): the membership weighting above
is multiplied by each respondent's survey weight ``w_i``. ``D`` is estimated on the weighted
sample (``D_ks = sum_i w_i p_ik [W_i = s] / sum_i w_i p_ik``, the population's classification
error), BCH, modal and proportional means become ``sum_i w_i c_ik y_i / sum_i w_i c_ik`` with the
design-based linearisation (sandwich) standard error, and ML maximises the pseudo-log-likelihood
``sum_i w_i log sum_k ...`` with the design-based sandwich covariance ``H^{-1} J H^{-1}``
(``H = sum_i w_i s_i s_i^T``, ``J = sum_i w_i^2 s_i s_i^T``, ``s_i`` the scores), which reduces to
the outer-product-of-gradients covariance when all weights are 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from latentseg.errors import ConfigError, FitError, SurveyError, format_rows

__all__ = [
    "DISTAL_METHODS",
    "DistalResult",
    "align_to_result",
    "bch_weights",
    "classification_error_matrix",
    "distal",
    "segment_weights",
    "wald_equal",
    "weighted_means",
]

DISTAL_METHODS = ("bch", "ml", "modal", "proportional")
_Z95 = float(stats.norm.ppf(0.975))


# ---------------------------------------------------------------------------------------- helpers
def align_to_result(result: Any, frame: pd.DataFrame, *, what: str = "table") -> pd.DataFrame:
    """Rows of ``frame`` in the order of ``result.respondent_ids``.

    Ids are matched by value, and by their text form when the two sides disagree on type (a
    survey read from CSV may have string ids where the model has integers).

    Parameters
    ----------
    result : SegmentationResult
    frame : DataFrame
        Indexed by respondent id; may hold more respondents than the result (they are dropped).
    what : str
        Name of the table, used in the error message.

    Returns
    -------
    DataFrame, shape (n, frame.shape[1])

    Raises
    ------
    SurveyError
        When some of the result's respondents are not in ``frame``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("gmm", np.eye(2), centers=np.eye(2),
    ...                                         feature_names=("a", "b"), respondent_ids=[7, 9])
    >>> align_to_result(r, pd.DataFrame({"x": [1, 2, 3]}, index=["9", "7", "8"])).x.tolist()
    [2, 1]
    """
    ids = pd.Index(result.respondent_ids)
    idx = pd.Index(frame.index)
    if ids.isin(idx).all():
        return frame.loc[ids]
    as_text = pd.Index(idx.map(str))
    if as_text.is_unique and pd.Index(ids.map(str)).isin(as_text).all():
        out = frame.set_axis(as_text, axis=0).loc[ids.map(str)]
        return out.set_axis(ids, axis=0)
    missing = [i for i in ids if i not in idx and str(i) not in set(as_text)]
    raise SurveyError(
        f"The {what} has no rows for {len(missing)} of the model's respondents: ids "
        f"{format_rows(missing)}; expected one row per respondent the model was fitted on."
    )


def _one_hot(assignment: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((assignment.shape[0], k))
    out[np.arange(assignment.shape[0]), assignment - 1] = 1.0
    return out


def classification_error_matrix(
    memberships: np.ndarray, classification: str = "modal", sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Classification error probabilities ``D[k, s] = P(W = s | X = k)``.

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
        Posterior membership probabilities.
    classification : {"modal", "proportional"}
        How respondents are classified: ``W`` = modal segment, or a fractional assignment equal
        to the memberships (then ``D[k, s] = sum_i p_ik p_is / sum_i p_ik``).
    sample_weight : ndarray, shape (n,), optional
        Survey weights: ``D`` of the population, ``sum_i w_i p_ik [W_i = s] / sum_i w_i p_ik``.

    Returns
    -------
    ndarray, shape (k, k)
        Rows sum to 1; the identity when classification is perfect.

    Examples
    --------
    >>> classification_error_matrix(np.array([[0.9, 0.1], [0.2, 0.8]])).round(3).tolist()
    [[0.818, 0.182], [0.111, 0.889]]
    """
    z = np.asarray(memberships, dtype=float)
    n, k = z.shape
    c = _classifier(z, classification)
    zw = z if sample_weight is None else z * np.asarray(sample_weight, dtype=float)[:, None]
    num = zw.T @ c
    size = zw.sum(axis=0)
    if np.any(size <= 0):
        empty = [int(j) + 1 for j in np.flatnonzero(size <= 0)]
        raise FitError(f"Segments {empty} have no membership at all; cannot estimate classification error.")
    return num / size[:, None]


def _classifier(z: np.ndarray, classification: str) -> np.ndarray:
    if classification == "modal":
        return _one_hot(np.argmax(z, axis=1) + 1, z.shape[1])
    if classification == "proportional":
        return z
    raise ConfigError(f"classification must be 'modal' or 'proportional'; got {classification!r}.")


def bch_weights(
    memberships: np.ndarray, classification: str = "modal", sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """BCH weights: the classification (modal one-hot or memberships) times ``D^{-1}``.

    With modal classification respondent ``i`` gets row ``W_i`` of ``D^{-1}``.
    Weighted tables and means with these weights estimate those of the true segments.

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
    classification : {"modal", "proportional"}
    sample_weight : ndarray, shape (n,), optional
        Survey weights, used to estimate ``D`` (the returned weights do not include them).

    Returns
    -------
    ndarray, shape (n, k)
        Rows sum to 1; entries may be negative.

    Raises
    ------
    FitError
        When ``D`` is singular (a segment is nobody's modal segment, or two are indistinguishable).

    Examples
    --------
    >>> w = bch_weights(np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]))
    >>> w.sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    z = np.asarray(memberships, dtype=float)
    d = classification_error_matrix(z, classification, sample_weight)
    c = _classifier(z, classification)
    if classification == "modal":
        never = [j + 1 for j in range(z.shape[1]) if not c[:, j].any()]
        if never:
            raise FitError(
                f"BCH needs every segment to be the modal segment of some respondent; segments "
                f"{never} are nobody's; use method='ml' or 'proportional'."
            )
    cond = np.linalg.cond(d)
    if not np.isfinite(cond) or cond > 1e8:
        raise FitError(
            "The classification error matrix is singular (segments cannot be told apart); "
            "BCH weights do not exist; use method='proportional'."
        )
    return c @ np.linalg.inv(d)


def segment_weights(result: Any, weighting: str, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-respondent weights for each segment, shape (n, k).

    Parameters
    ----------
    result : SegmentationResult
    weighting : {"modal", "proportional", "bch", "bch-proportional"}
        ``modal``: one-hot of the modal segment; ``proportional``: the memberships;
        ``bch``: modal BCH weights; ``bch-proportional``: memberships times ``D^{-1}`` (``D`` from
        the proportional classification).
    sample_weight : ndarray, shape (n,), optional
        Survey weights, used to estimate BCH's ``D`` (the returned weights do not include them).

    Examples
    --------
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("gmm", np.array([[0.9, 0.1], [0.3, 0.7]]),
    ...                                         centers=np.eye(2), feature_names=("a", "b"))
    >>> segment_weights(r, "modal").tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    z = np.asarray(result.memberships, dtype=float)
    if weighting == "modal":
        return _one_hot(np.argmax(z, axis=1) + 1, z.shape[1])
    if weighting == "proportional":
        return z.copy()
    if weighting == "bch":
        return bch_weights(z, "modal", sample_weight)
    if weighting == "bch-proportional":
        return bch_weights(z, "proportional", sample_weight)
    raise ConfigError(
        f"weighting must be one of 'modal', 'proportional', 'bch'; got {weighting!r}."
    )


def weighted_means(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted means of the columns of ``y`` per segment, with their sandwich covariance.

    Parameters
    ----------
    y : ndarray, shape (n,) or (n, c)
        Values (NaN rows are dropped per column set: a row with any NaN is dropped).
    w : ndarray, shape (n, k)
        Weights per segment.

    Returns
    -------
    means : ndarray, shape (k, c)
    cov : ndarray, shape (k*c, k*c)
        Covariance of ``means.ravel()`` (segment-major): ``sum_i psi_i psi_i^T * n/(n-1)`` with
        influence terms ``psi_i,kc = w_ik (y_ic - m_kc) / sum_i w_ik``.
    size : ndarray, shape (k,)
        Sum of weights per segment (the estimated segment size among the rows used).

    Examples
    --------
    >>> m, cov, size = weighted_means(np.array([1.0, 3.0, 5.0]), np.array([[1, 0], [1, 0], [0, 1.0]]))
    >>> m.ravel().tolist(), size.tolist()
    ([2.0, 5.0], [2.0, 1.0])
    """
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    w = np.asarray(w, dtype=float)
    ok = ~np.isnan(y).any(axis=1)
    y, w = y[ok], w[ok]
    n = y.shape[0]
    size = w.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = (w.T @ y) / size[:, None]
        # psi[i, k, c]
        psi = w[:, :, None] * (y[:, None, :] - means[None, :, :]) / size[None, :, None]
    flat = psi.reshape(n, -1)
    cov = flat.T @ flat * (n / max(n - 1, 1))
    return means, cov, size


def wald_equal(theta: np.ndarray, cov: np.ndarray, k: int) -> tuple[float, int, float]:
    """Wald test that the k segment vectors in ``theta`` (k, c) are equal.

    Parameters
    ----------
    theta : ndarray, shape (k, c)
    cov : ndarray, shape (k*c, k*c)
        Covariance of ``theta.ravel()``.
    k : int

    Returns
    -------
    statistic, df, p_value
        Chi-squared on the rank of the contrasts' covariance; NaN when it is 0 or not finite.

    Examples
    --------
    >>> stat, df, p = wald_equal(np.array([[0.0], [2.0]]), np.eye(2), 2)
    >>> stat, df, round(p, 4)
    (2.0, 1, 0.1573)
    """
    k_, c = theta.shape
    contrasts = np.zeros(((k - 1) * c, k * c))
    for j in range(1, k):
        for q in range(c):
            contrasts[(j - 1) * c + q, j * c + q] = 1.0
            contrasts[(j - 1) * c + q, q] = -1.0
    d = contrasts @ theta.ravel()
    v = contrasts @ cov @ contrasts.T
    if not np.all(np.isfinite(v)) or not np.all(np.isfinite(d)):
        return float("nan"), 0, float("nan")
    vals = np.linalg.eigvalsh((v + v.T) / 2)
    tol = max(vals.max(initial=0.0), 0.0) * 1e-10
    rank = int((vals > tol).sum())
    if rank == 0:
        return float("nan"), 0, float("nan")
    stat = float(d @ np.linalg.pinv(v, rcond=1e-10, hermitian=True) @ d)
    return stat, rank, float(stats.chi2.sf(stat, rank))


# ---------------------------------------------------------------------------------------- ML step 3
def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def _sandwich(s: np.ndarray, sw: np.ndarray | None) -> np.ndarray:
    """Covariance of (pseudo-)ML estimates from the per-respondent scores ``s`` (n, p): the inverse
    outer product of gradients, or with survey weights the design-based ``H^-1 J H^-1``."""
    if sw is None:
        return np.linalg.pinv(s.T @ s, rcond=1e-12, hermitian=True)
    h_inv = np.linalg.pinv((s * sw[:, None]).T @ s, rcond=1e-12, hermitian=True)
    j = (s * (sw**2)[:, None]).T @ s
    return h_inv @ j @ h_inv


def _ml_numeric(
    y: np.ndarray, w_mod: np.ndarray, d: np.ndarray, pi0: np.ndarray, fixed_shares: bool = False,
    sw: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ML three-step for a numeric outcome; returns means (k,) and their covariance (k, k).
    With survey weights ``sw`` the pseudo-log-likelihood ``sum_i w_i log f_i`` is maximised."""
    k = d.shape[0]
    log_dw = np.log(np.clip(w_mod @ d.T, 1e-300, None))  # (n, k): log D[k, W_i]
    rw = np.ones(y.shape[0]) if sw is None else sw
    start, _, _ = weighted_means(y, bch_weights_from(w_mod, d) * rw[:, None])
    mu = start[:, 0]
    var = np.full(k, np.var(y) if sw is None else float(rw @ (y - rw @ y / rw.sum()) ** 2 / rw.sum()))
    pi = pi0.copy()
    floor = 1e-6 * max(np.var(y), 1e-12)
    prev = -np.inf
    for _ in range(1000):
        logf = -0.5 * (np.log(2 * np.pi * var)[None, :] + (y[:, None] - mu[None, :]) ** 2 / var[None, :])
        a = np.log(pi)[None, :] + log_dw + logf
        ll_i = _logsumexp(a)
        q = np.exp(a - ll_i[:, None])
        if sw is not None:
            ll_i = ll_i * sw
            q = q * sw[:, None]
        ll = float(ll_i.sum())
        sq = q.sum(axis=0)
        if not fixed_shares:
            pi = sq / sq.sum()
        mu = (q.T @ y) / sq
        var = np.maximum((q * (y[:, None] - mu[None, :]) ** 2).sum(axis=0) / sq, floor)
        if ll - prev < 1e-10 * max(abs(ll), 1.0):
            break
        prev = ll
    logf = -0.5 * (np.log(2 * np.pi * var)[None, :] + (y[:, None] - mu[None, :]) ** 2 / var[None, :])
    a = np.log(pi)[None, :] + log_dw + logf
    q = np.exp(a - _logsumexp(a)[:, None])
    # outer product of gradients over (pi logits 2..k, mu, log sigma)
    s_pi = (q - pi[None, :])[:, 1:] if not fixed_shares else np.zeros((y.shape[0], 0))
    s_mu = q * (y[:, None] - mu[None, :]) / var[None, :]
    s_ls = q * ((y[:, None] - mu[None, :]) ** 2 / var[None, :] - 1.0)
    s = np.hstack([s_pi, s_mu, s_ls])
    cov = _sandwich(s, sw)
    off = s_pi.shape[1]
    block = slice(off, off + k)
    return mu, cov[block, block]


def _ml_categorical(
    y: np.ndarray, n_cat: int, w_mod: np.ndarray, d: np.ndarray, pi0: np.ndarray, fixed_shares: bool = False,
    sw: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ML three-step for a categorical outcome coded 0..C-1; proportions (k, C) and the
    covariance of their ravel (k*C, k*C). With survey weights ``sw``: the pseudo-likelihood."""
    k = d.shape[0]
    n = y.shape[0]
    onehot = np.zeros((n, n_cat))
    onehot[np.arange(n), y] = 1.0
    log_dw = np.log(np.clip(w_mod @ d.T, 1e-300, None))
    bw = bch_weights_from(w_mod, d)
    start, _, _ = weighted_means(onehot, bw if sw is None else bw * sw[:, None])
    p = np.clip(start, 1e-3, None)
    p /= p.sum(axis=1, keepdims=True)
    pi = pi0.copy()
    prev = -np.inf
    for _ in range(1000):
        a = np.log(pi)[None, :] + log_dw + np.log(np.clip(p, 1e-300, None))[:, y].T
        ll_i = _logsumexp(a)
        q = np.exp(a - ll_i[:, None])
        if sw is not None:
            ll_i = ll_i * sw
            q = q * sw[:, None]
        ll = float(ll_i.sum())
        sq = q.sum(axis=0)
        if not fixed_shares:
            pi = sq / sq.sum()
        p = (q.T @ onehot) / sq[:, None]
        if ll - prev < 1e-10 * max(abs(ll), 1.0):
            break
        prev = ll
    a = np.log(pi)[None, :] + log_dw + np.log(np.clip(p, 1e-300, None))[:, y].T
    q = np.exp(a - _logsumexp(a)[:, None])
    # gradients over (pi logits 2..k, per segment category logits 2..C with category 1 baseline)
    s_pi = (q - pi[None, :])[:, 1:] if not fixed_shares else np.zeros((n, 0))
    blocks = [q[:, [j]] * (onehot[:, 1:] - p[j, 1:][None, :]) for j in range(k)]
    s = np.hstack([s_pi, *blocks])
    cov_all = _sandwich(s, sw)
    off = s_pi.shape[1]
    # delta method: dp_kc / db_kc' = p_kc (1[c = c'] - p_kc'), c' = 2..C
    jac = np.zeros((k * n_cat, s.shape[1]))
    for j in range(k):
        pj = p[j]
        jj = np.diag(pj) - np.outer(pj, pj)  # (C, C)
        cols = slice(off + j * (n_cat - 1), off + (j + 1) * (n_cat - 1))
        jac[j * n_cat : (j + 1) * n_cat, cols] = jj[:, 1:]
    return p, jac @ cov_all @ jac.T


def bch_weights_from(w_mod: np.ndarray, d: np.ndarray) -> np.ndarray:
    """BCH weights from a modal one-hot matrix and a given ``D`` (used to start ML's EM)."""
    try:
        return w_mod @ np.linalg.inv(d)
    except np.linalg.LinAlgError:
        return w_mod


# ---------------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class DistalResult:
    """Per-segment distal-outcome estimates with 95% intervals and tests of equality.

    Attributes
    ----------
    method : str
        ``"bch"``, ``"ml"``, ``"modal"`` or ``"proportional"``.
    table : DataFrame
        One row per column × category × segment: ``column, category`` (empty for numeric),
        ``kind`` (``"mean"`` or ``"proportion"``), ``segment`` (1..k), ``estimate, se, lower,
        upper``, ``size`` (estimated number of respondents in the segment with the column
        observed), ``naive_estimate, naive_lower, naive_upper`` (modal assignment, uncorrected).
    tests : DataFrame
        One row per column: ``column, statistic, df, p_value`` of the Wald test that the segment
        means (or category proportions) are all equal, under the chosen method, and
        ``naive_statistic, naive_p_value`` for the modal estimate.
    notes : tuple of str
        What was assumed or adjusted (clipped proportions, dropped missing values).
    """

    method: str
    table: pd.DataFrame
    tests: pd.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    def estimate(self, column: str, category: Any = "") -> pd.Series:
        """Estimates for one column (and category), indexed by segment 1..k."""
        rows = self.table[(self.table["column"] == column) & (self.table["category"] == str(category))]
        if rows.empty:
            raise ConfigError(f"No distal estimate for column {column!r} category {category!r}.")
        return rows.set_index("segment")["estimate"]

    def to_frame(self) -> pd.DataFrame:
        """The long table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary: ``method``, ``estimates`` (records), ``tests`` (records), ``notes``."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe(
            {
                "method": self.method,
                "estimates": self.table.to_dict(orient="records"),
                "tests": self.tests.to_dict(orient="records"),
                "notes": list(self.notes),
            }
        )


def _is_categorical(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return True
    if not pd.api.types.is_numeric_dtype(s):
        return True
    return s.dropna().nunique() <= 2


def distal(
    result: Any,
    outcomes_df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    method: str = "bch",
    ml_shares: str = "free",
    sample_weight: Any = None,
) -> DistalResult:
    """Per-segment means or proportions of distal outcomes, corrected for classification error.

    Parameters
    ----------
    result : SegmentationResult
    outcomes_df : DataFrame
        Indexed by respondent id (may hold more respondents than the result).
    columns : sequence of str, optional
        Columns to analyse; defaults to every column. Numeric columns with more than two distinct
        values get per-segment means; anything else (text, booleans, 0/1) per-category proportions.
    method : {"bch", "ml", "modal", "proportional"}, default "bch"
        ``bch``: BCH weights (rows of ``D^{-1}``, modal classification); ``ml``: ML three-step;
        ``modal``: naive modal assignment; ``proportional``: membership-weighted (also biased when
        segments overlap, less than modal).
    ml_shares : {"free", "fixed"}, default "free"
        ML only: estimate the segment shares in step 3 with the distal parameters (Vermunt 2010),
        or hold them at the mean memberships of step 1 (StepMix's choice).
    sample_weight : array-like (n,) or Series, optional
        Survey weights (default: the result's ``sample_weight``): population estimates with
        design-based standard errors (see the module docstring); ``size`` is then the weighted
        segment size.

    Returns
    -------
    DistalResult
        Estimates with 95% normal intervals (proportions clipped to [0, 1]) and Wald tests; the
        naive modal estimates beside them. Respondents missing a column are dropped for that column
        (BCH and ML keep ``D`` estimated on everyone: missing at random given the segment).

    Raises
    ------
    ConfigError
        Unknown method or column.
    FitError
        When ``D`` is singular (BCH).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> z = np.array([[0.95, 0.05]] * 50 + [[0.1, 0.9]] * 50)
    >>> r = SegmentationResult.from_memberships("gmm", z, centers=np.eye(2), feature_names=("a", "b"))
    >>> nps = np.r_[np.tile([7.0, 8.0, 9.0], 17)[:50], np.tile([3.0, 4.0, 5.0], 17)[:50]]
    >>> y = pd.DataFrame({"nps": nps}, index=r.respondent_ids)
    >>> d = distal(r, y, ["nps"])
    >>> d.table[["segment", "estimate", "naive_estimate"]].round(1).values.tolist()
    [[1.0, 8.2, 8.0], [2.0, 3.5, 4.0]]
    """
    if method not in DISTAL_METHODS:
        raise ConfigError(f"method must be one of {', '.join(DISTAL_METHODS)}; got {method!r}.")
    rows: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    notes: list[str] = []
    if ml_shares not in ("free", "fixed"):
        raise ConfigError(f"ml_shares must be 'free' or 'fixed'; got {ml_shares!r}.")
    if columns is None:
        columns = [str(c) for c in outcomes_df.columns]
    columns = [str(c) for c in columns]
    unknown = [c for c in columns if c not in outcomes_df.columns]
    if unknown:
        raise ConfigError(
            f"Distal columns {unknown} are not in the table; it has {[str(c) for c in outcomes_df.columns][:20]}."
        )
    frame = align_to_result(result, outcomes_df[columns], what="distal-outcome table")
    from latentseg.decide.weights import is_weighted, resolve_weights

    sw_given = resolve_weights(result, sample_weight)
    sw = sw_given if is_weighted(sw_given) else None  # equal weights: a simple random sample
    z = np.asarray(result.memberships, dtype=float)
    k = z.shape[1]
    w_modal = _one_hot(np.argmax(z, axis=1) + 1, k)
    d_modal = classification_error_matrix(z, "modal", sw)
    if method == "bch":
        w_main = segment_weights(result, "bch", sw)
    elif method in ("modal", "proportional"):
        w_main = segment_weights(result, method)
    else:
        w_main = None
    if sw is not None:
        notes.append(
            "survey-weighted: population estimates with design-based (linearisation / sandwich) standard errors"
        )
    rw = np.ones(z.shape[0]) if sw is None else sw  # multiplies the membership weighting
    for col in columns:
        s = frame[col]
        ok = s.notna().to_numpy()
        if ok.sum() < 2 * k:
            raise SurveyError(
                f"Distal column {col!r} has only {int(ok.sum())} observed values; need at least {2 * k}."
            )
        if (~ok).any():
            notes.append(f"{col}: {int((~ok).sum())} respondents without a value were left out.")
        categorical = _is_categorical(s)
        if categorical:
            cats = sorted({str(v) for v in s[ok]})
            codes = pd.Categorical(s[ok].map(str), categories=cats).codes.astype(int)
            y = np.zeros((codes.shape[0], len(cats)))
            y[np.arange(codes.shape[0]), codes] = 1.0
            labels = cats
        else:
            y = s[ok].to_numpy(dtype=float)[:, None]
            labels = [""]
        c = y.shape[1]
        swk = None if sw is None else sw[ok]
        if method == "ml":
            pi0 = np.clip(z.mean(axis=0) if sw is None else rw @ z / rw.sum(), 1e-6, None)
            pi0 = pi0 / pi0.sum()
            fixed = ml_shares == "fixed"
            if categorical:
                est, cov = _ml_categorical(codes, c, w_modal[ok], d_modal, pi0, fixed, swk)
            else:
                mu, cov = _ml_numeric(y[:, 0], w_modal[ok], d_modal, pi0, fixed, swk)
                est = mu[:, None]
            size = z[ok].sum(axis=0) if sw is None else rw[ok] @ z[ok]
        elif sw is None:
            assert w_main is not None
            est, cov, size = weighted_means(y, w_main[ok])
        else:
            assert w_main is not None
            est, cov, size = weighted_means(y, w_main[ok] * rw[ok][:, None])
        naive, ncov, nsize = weighted_means(y, w_modal[ok] if sw is None else w_modal[ok] * rw[ok][:, None])
        se = np.sqrt(np.clip(np.diag(cov), 0, None)).reshape(k, c)
        nse = np.sqrt(np.clip(np.diag(ncov), 0, None)).reshape(k, c)
        # proportions sum to one: test on all categories but the last (before any clipping)
        keep = slice(0, c - 1) if categorical else slice(0, c)
        idx = np.arange(k * c).reshape(k, c)[:, keep].ravel()
        stat, df, p = wald_equal(est[:, keep], cov[np.ix_(idx, idx)], k)
        nstat, ndf, np_ = wald_equal(naive[:, keep], ncov[np.ix_(idx, idx)], k)
        tests.append(
            {"column": col, "statistic": stat, "df": df, "p_value": p, "naive_statistic": nstat, "naive_p_value": np_}
        )
        lo, hi = est - _Z95 * se, est + _Z95 * se
        nlo, nhi = naive - _Z95 * nse, naive + _Z95 * nse
        if categorical:
            if np.any((est < 0) | (est > 1)):
                notes.append(f"{col}: corrected proportions outside [0, 1] were clipped (a nearly empty cell).")
            est, lo, hi = (np.clip(a, 0.0, 1.0) for a in (est, lo, hi))
            nlo, nhi = np.clip(nlo, 0.0, 1.0), np.clip(nhi, 0.0, 1.0)
        for q, lab in enumerate(labels):
            for j in range(k):
                rows.append(
                    {
                        "column": col,
                        "category": lab,
                        "kind": "proportion" if categorical else "mean",
                        "segment": j + 1,
                        "estimate": float(est[j, q]),
                        "se": float(se[j, q]),
                        "lower": float(lo[j, q]),
                        "upper": float(hi[j, q]),
                        "size": float(size[j]),
                        "naive_estimate": float(naive[j, q]),
                        "naive_lower": float(nlo[j, q]),
                        "naive_upper": float(nhi[j, q]),
                    }
                )
    table = pd.DataFrame(rows)
    return DistalResult(method=method, table=table, tests=pd.DataFrame(tests), notes=tuple(notes))

