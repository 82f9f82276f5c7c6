"""Survey weights in the decision numbers: the weights a decision uses, design-based shares and
the Rao-Scott test of a weighted table.

A survey is weighted because its sample is not representative; every number the decide step
reports (shares, sizes, profile means, overlay percentages and tests, distal outcomes, the
finder's accuracy) is then a *weighted* estimate of the population's number, and its uncertainty
is *design-based*: it comes from the variation of the weighted estimator over repeated samples
drawn by the same design, not from a model of the ratings. Respondents are treated as
independently selected units with weights ``w_i`` (no strata or clusters): the variance of a
weighted mean ``sum w_i x_i / sum w_i`` is estimated by linearisation,
``n / (n - 1) * sum_i (w_i (x_i - mean) / sum w)^2``, what R's ``survey`` package computes for
``svydesign(ids = ~1, weights = ~w)``.

The weights are used as given (an integer weight 2 counts a respondent twice in every count and
percentage); weights that are all equal describe a simple random sample, and every number and
test is then the unweighted one, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from latentseg.errors import ConfigError, format_rows

__all__ = [
    "RaoScott",
    "WEIGHTED_NOTE",
    "design_shares",
    "is_weighted",
    "linearised_cov",
    "rao_scott",
    "resolve_weights",
    "weights_text",
]

#: Named in the methods of weighted numbers.
WEIGHTED_NOTE = "survey-weighted"


def resolve_weights(result: Any, sample_weight: Any = None) -> np.ndarray | None:
    """The survey weights a decision uses, aligned with ``result.respondent_ids``.

    Parameters
    ----------
    result : SegmentationResult
    sample_weight : array-like (n,), Series indexed by respondent id, or None
        Default: the result's own ``sample_weight`` (the weights it was fitted with), if any.
        A Series is matched to the result's respondents by id; anything else must have one
        positive, finite weight per respondent, in the result's order.

    Returns
    -------
    ndarray, shape (n,), or None
        The weights as given (never renormalised); None for an unweighted survey.

    Raises
    ------
    ConfigError
        A weight that is missing, zero, negative or not finite (naming the respondents), or a
        length that is not the result's number of respondents.

    Examples
    --------
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("gmm", np.eye(2)[[0, 0, 1]], centers=np.eye(2),
    ...                                         feature_names=("a", "b"))
    >>> resolve_weights(r, [1.0, 2.0, 0.5]).tolist()
    [1.0, 2.0, 0.5]
    >>> resolve_weights(r) is None
    True
    """
    if sample_weight is None:
        sample_weight = getattr(result, "sample_weight", None)
    if sample_weight is None:
        return None
    ids = pd.Index(result.respondent_ids)
    if isinstance(sample_weight, pd.Series):
        from latentseg.decide.distal import align_to_result

        w_series = align_to_result(result, sample_weight.to_frame("w"), what="survey-weight column")["w"]
        w = pd.to_numeric(w_series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        w = np.asarray(sample_weight, dtype=float).ravel()
        if w.shape[0] != ids.size:
            raise ConfigError(
                f"sample_weight has {w.shape[0]} weights; the segmentation has {ids.size} respondents "
                "(one positive weight per respondent, in the order of result.respondent_ids)."
            )
    bad = ~np.isfinite(w) | (w <= 0) if w.size else np.zeros(0, bool)
    if bad.any():
        raise ConfigError(
            f"Survey weights must be positive and finite; {int(bad.sum())} respondents have a missing, zero, "
            f"negative or infinite weight: ids {format_rows(list(ids[bad]))}."
        )
    return w


def is_weighted(w: np.ndarray | None) -> bool:
    """Whether ``w`` describes an unequal-probability sample (weights not all equal).

    Examples
    --------
    >>> is_weighted(None), is_weighted(np.ones(4)), is_weighted(np.array([1.0, 2.0]))
    (False, False, True)
    """
    return w is not None and w.size > 0 and bool(np.ptp(w) > 0)


def linearised_cov(x: np.ndarray, w: np.ndarray, n_design: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means of the columns of ``x`` and their linearisation covariance.

    Parameters
    ----------
    x : ndarray, shape (n, c)
    w : ndarray, shape (n,)
        Survey weights.
    n_design : int, optional
        The number of units in the design (default ``n``); more when ``x`` is a domain (rows with
        a missing value left out: they contribute zero).

    Returns
    -------
    mean : ndarray, shape (c,)
    cov : ndarray, shape (c, c)
        ``n / (n - 1) * sum_i u_i u_i^T`` with ``u_i = w_i (x_i - mean) / sum w``.

    Examples
    --------
    >>> m, v = linearised_cov(np.array([[1.0], [0.0], [0.0], [1.0]]), np.ones(4))
    >>> m.tolist(), round(float(v[0, 0]), 6)  # p (1 - p) / (n - 1)
    ([0.5], 0.083333)
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0] if n_design is None else int(n_design)
    total = w.sum()
    mean = (w @ x) / total
    u = w[:, None] * (x - mean[None, :]) / total
    return mean, u.T @ u * (n / max(n - 1, 1))


def design_shares(result: Any, w: np.ndarray | None, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Segment shares with their interval and its method, under the survey weights.

    Unweighted, or weighted by the weights the result was fitted with: the result's own shares
    and interval (an engine fitted with weights estimates weighted shares with a design-based
    interval). Otherwise (weights the fit did not see): the weighted mean membership
    ``sum_i w_i p_ik / sum_i w_i`` with a Wilson interval at the design's effective sample size
    ``p (1 - p) / v``, ``v`` the linearisation variance of the weighted mean (Kish's effective n
    for the share, Korn & Graubard 1998).

    Parameters
    ----------
    result : SegmentationResult
    w : ndarray (n,) or None
        From :func:`resolve_weights`.
    level : float, default 0.95

    Returns
    -------
    shares, lower, upper : ndarray, shape (k,)
    method : str

    Examples
    --------
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("gmm", np.eye(2)[[0, 0, 0, 1]], centers=np.eye(2),
    ...                                         feature_names=("a", "b"))
    >>> sh, lo, hi, how = design_shares(r, np.array([1.0, 1.0, 1.0, 3.0]))
    >>> sh.tolist(), how
    ([0.5, 0.5], '95% design-based Wilson (survey-weighted; linearisation, effective n)')
    """
    own = getattr(result, "sample_weight", None)
    fitted_with = w is not None and own is not None and np.shape(own) == w.shape and np.array_equal(np.asarray(own, float), w)
    if not is_weighted(w) or fitted_with:
        return (np.asarray(result.shares, dtype=float), np.asarray(result.share_lower, dtype=float),
                np.asarray(result.share_upper, dtype=float), str(result.interval_method))
    assert w is not None
    z = np.asarray(result.memberships, dtype=float)
    p, cov = linearised_cov(z, w)
    v = np.clip(np.diag(cov), 1e-300, None)
    n_eff = np.clip(p * (1 - p) / v, 1.0, None)
    zq = float(stats.norm.ppf(0.5 + level / 2))
    denom = 1 + zq**2 / n_eff
    centre = (p + zq**2 / (2 * n_eff)) / denom
    half = zq * np.sqrt(p * (1 - p) / n_eff + zq**2 / (4 * n_eff**2)) / denom
    lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    return p, lo, hi, f"{level:.0%} design-based Wilson ({WEIGHTED_NOTE}; linearisation, effective n)"


@dataclass(frozen=True)
class RaoScott:
    """Rao-Scott second-order corrected Pearson test of a survey-weighted two-way table.

    Attributes
    ----------
    pearson : float
        Pearson's X^2 of the weighted table scaled to ``n`` respondents.
    statistic : float
        ``F = X^2 / tr(Delta)``, ``Delta`` the design-effect matrix of the interaction contrasts.
    ndf, ddf : float
        ``ndf = tr(Delta)^2 / tr(Delta^2)`` (Satterthwaite), ``ddf = ndf * (n - 1)``.
    p_value : float
        ``P(F(ndf, ddf) >= statistic)``.
    mean_deff : float
        ``tr(Delta) / ((r - 1)(c - 1))``, the mean generalised design effect.
    """

    pearson: float
    statistic: float
    ndf: float
    ddf: float
    p_value: float
    mean_deff: float


def rao_scott(cells: np.ndarray, w: np.ndarray, shape: tuple[int, int], n_design: int | None = None) -> RaoScott:
    """Rao-Scott (second-order, F) test of independence in a survey-weighted table.

    What ``survey::svychisq(~a + b, design, statistic = "F")`` computes for
    ``svydesign(ids = ~1, weights = ~w)``; respondents may count fractionally in several rows
    (membership-weighted segments), their cell contributions summing to 1.

    Parameters
    ----------
    cells : ndarray, shape (n, r * c)
        Each respondent's contribution to cell ``(a, b)`` in column ``a * c + b`` (fractional
        for membership-weighted segments; BCH weights may be negative, and a cell whose weighted
        proportion comes out negative counts as empty).
    w : ndarray, shape (n,)
        Survey weights.
    shape : (r, c)
    n_design : int, optional
        Units in the design (default ``n``; more when respondents missing the column were left out).

    Returns
    -------
    RaoScott

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.integers(0, 2, 200), rng.integers(0, 3, 200)
    >>> cells = np.eye(6)[a * 3 + b]
    >>> rs = rao_scott(cells, np.ones(200), (2, 3))
    >>> 0.9 < rs.mean_deff < 1.1, rs.p_value > 0.05  # equal weights: no design effect, no association
    (True, True)
    """
    r, c = shape
    n_rows = cells.shape[0]
    nd = n_rows if n_design is None else int(n_design)
    p, v = linearised_cov(cells, w, nd)
    table = p.reshape(r, c)
    keep_r, keep_c = table.sum(axis=1) > 0, table.sum(axis=0) > 0
    r2, c2 = int(keep_r.sum()), int(keep_c.sum())
    if r2 < 2 or c2 < 2:
        return RaoScott(0.0, float("nan"), 0.0, 0.0, float("nan"), float("nan"))
    keep = np.outer(keep_r, keep_c).ravel()
    # BCH-weighted cells can come out slightly negative (a nearly empty cell): count them as 0
    p, v = np.clip(p[keep], 0.0, None), v[np.ix_(keep, keep)]
    t = p.reshape(r2, c2) * n_rows
    e = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    pearson = float(((t - e) ** 2 / e).sum())
    # main effects (intercept, rows, columns) in cell space; Delta lives on their complement
    rows = np.repeat(np.arange(r2), c2)
    cols = np.tile(np.arange(c2), r2)
    x1 = np.column_stack([np.ones(r2 * c2), np.eye(r2)[rows][:, 1:], np.eye(c2)[cols][:, 1:]])
    q, _ = np.linalg.qr(x1, mode="complete")
    cmat = q[:, x1.shape[1]:]
    inv_p = np.where(p > 0, 1.0 / np.where(p > 0, p, 1.0), 0.0)
    denom = (cmat.T * (inv_p / n_rows)) @ cmat
    numr = (cmat.T * inv_p) @ v @ (inv_p[:, None] * cmat)
    delta = np.linalg.solve(denom, numr)
    tr, tr2 = float(np.trace(delta)), float(np.trace(delta @ delta))
    if not tr > 0:
        return RaoScott(pearson, float("nan"), 0.0, 0.0, float("nan"), float("nan"))
    ndf = tr**2 / tr2
    ddf = ndf * (nd - 1)
    f = pearson / tr
    return RaoScott(pearson, f, ndf, ddf, float(stats.f.sf(f, ndf, ddf)), tr / ((r2 - 1) * (c2 - 1)))


def weights_text(w: np.ndarray | None) -> str | None:
    """A phrase saying how survey weights entered, or None without them.

    Examples
    --------
    >>> weights_text(np.array([1.0, 1.0, 2.0, 4.0]))
    'survey-weighted (4 respondents, Kish effective n 2.9)'
    """
    if w is None:
        return None
    from latentseg._stats import effective_n

    return f"{WEIGHTED_NOTE} ({w.size} respondents, Kish effective n {effective_n(w):.1f})"
