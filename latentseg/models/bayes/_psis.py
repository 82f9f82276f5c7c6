"""PSIS-LOO, ArviZ's definition, computed for every respondent at once.

ArviZ 1.x (``arviz_stats``) runs Pareto-smoothed importance sampling one observation at a time
(``np.vectorize`` over the respondents, a Python-level ``logsumexp`` per column), and importing
it costs more than the computation. :func:`psis_loo` returns the same numbers as
``arviz.loo(..., pointwise=True, reff=reff)`` (to ~1e-14 relative in ``tests/test_psis.py``; only
rounding differs) with NumPy over the whole ``(S, n)`` log-likelihood, following Vehtari, Gelman
& Gabry (2017), "Practical Bayesian model evaluation using leave-one-out cross-validation and
WAIC", and Vehtari, Simpson, Gelman, Yao & Gabry (2024), "Pareto smoothed importance sampling",
JMLR 25(72), as ArviZ implements them. For a respondent's column ``x`` of ``S`` draws (chains
pooled):

* **Raw log weights** ``r = -x - max(-x)``.
* **Tail length** ``M = floor(3 sqrt(S / reff))`` when ``S reff > 225``, else ``floor(S / 5)``,
  the same ``M`` for every respondent. ``M < 5`` is an error (ArviZ raises ``ValueError``).
* **Tail.** The ``M`` largest raw log weights, sorted, and the cutoff: the next largest. When the
  ``M`` tail values are all equal (their range below the smallest normal float) it is an error
  (ArviZ's "All tail values are the same": a respondent whose log-likelihood does not move).
* **Generalised Pareto fit** (Zhang & Stephens 2009, with the weakly informative prior of Vehtari
  et al. 2024) to ``y = exp(tail) - exp(cutoff)`` (sorted, ``M`` values): with
  ``m = 30 + floor(sqrt(M))`` grid points ``b_j = (1 - sqrt(m / (j - 1/2))) / (3 y*) + 1 / y_M``,
  ``y*`` = ``y[floor(M/4 + 1/2) - 1]`` (the first quartile), profile ``k_j = mean log1p(-b_j y)``,
  ``l_j = M (log(-b_j / k_j) - k_j - 1)``, weights ``w_j = exp(l_j - logsumexp(l))`` of which those
  below ``10 eps`` (or NaN) are dropped and the rest renormalised, ``b = sum w_j b_j`` (0 when
  none is left: ``k-hat`` is then ``5 / (M + 10)``, ``sigma`` NaN, and the respondent's smoothed
  weights and ``elpd_i`` NaN, as in ArviZ),
  ``k = mean log1p(-b y)``, ``sigma = -k / b`` and the reported shape, shrunk towards 1/2,
  ``k-hat = (M k + 5) / (M + 10)``. When ``y* <= y_1`` (a tail far from Pareto) ``k-hat`` is NaN;
  when ``k-hat`` comes out NaN it is reported as ``inf``.
* **Smoothing** (only where ``k-hat`` is finite): the tail's ``i``-th smallest raw weight becomes
  ``log`` of the generalised Pareto quantile at ``p_i = (i - 1/2) / M`` (location ``exp(cutoff)``,
  scale ``sigma``, NaN when ``sigma <= 0``), capped at the largest raw tail weight (0).
* **Normalisation** ``lw = r - logsumexp(r)``; then ``elpd_i = logsumexp(lw + x)``,
  ``lppd_i = logsumexp(x) - log S`` and ``p_i = lppd_i - elpd_i``.
* **Totals** ``elpd = sum elpd_i``, ``se = sqrt(n Var(elpd_i))`` (divisor ``n - 1``; 0 for one
  respondent), ``p = sum p_i``; the Pareto-k threshold ``good_k = min(1 - 1 / log10(S), 0.7)``
  and ``warning`` = any ``k-hat > good_k``.

Ties among the draws do not change any of these numbers (tied draws have equal log-likelihood, so
which of them is smoothed to which quantile leaves every sum the same), so the tail is found with
one ``argpartition`` per block of respondents and only its ``M + 1`` values are sorted.

Where this differs from ArviZ, on purpose:

* a respondent with a non-finite log-likelihood gets NaN ``elpd_i``, ``p_i`` and ``k-hat`` (ArviZ
  gives NaN ``elpd_i`` too, and a ``k-hat`` that depends on the kind of non-finite value);
* fewer than 5 draws is the same error as a short tail (ArviZ raises ``IndexError``);
* a float32 log-likelihood is computed in float64, block by block (ArviZ computes in float32, so
  it agrees with this to ~1e-7 only; with the float32 values cast to float64 to ~1e-14).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["PSISError", "psis_loo", "tail_length", "good_k"]

#: ArviZ's test for a constant tail: the range of the tail's raw log weights below this
_TINY = float(np.finfo(float).tiny)
#: grid weights below this are dropped from the posterior mean of ``b`` (ArviZ's ``10 eps``)
_NEGLIGIBLE = 10 * float(np.finfo(float).eps)
#: the prior on k-hat: ``prior_k`` pseudo-observations at 1/2
_PRIOR_K = 10
#: the scale of the grid of ``b`` values, ``prior_bs``
_PRIOR_BS = 3
#: about this many float64 elements in the largest work array of one block of respondents (2 MB:
#: cache-sized blocks ran about 1.8x faster than 8 MB ones, measured at S = 2000 and 11668)
_BLOCK_ELEMENTS = 1 << 18


class PSISError(ValueError):
    """PSIS cannot fit a tail: too few draws, or a respondent whose tail draws are all equal
    (where :func:`arviz.loo` raises ``ValueError``)."""


def tail_length(n_draws: int, reff: float) -> int:
    """ArviZ's number of tail draws ``M`` for PSIS with ``n_draws`` draws in all.

    Examples
    --------
    >>> tail_length(2000, 1.0), tail_length(2000, 0.5), tail_length(100, 1.0)
    (134, 189, 20)
    """
    if n_draws * reff > 225:
        return int(math.floor(3 * (n_draws / reff) ** 0.5))
    return int(math.floor(n_draws / 5))


def good_k(n_draws: int) -> float:
    """ArviZ's sample-size dependent Pareto-k threshold, ``min(1 - 1/log10(S), 0.7)``.

    Examples
    --------
    >>> round(good_k(100), 3), good_k(4000)
    (0.5, 0.7)
    """
    return min(1 - 1 / float(np.log10(n_draws)), 0.7) if n_draws > 1 else 0.7  # np.log10: ArviZ's last bit


def _lse_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a)))`` along the last axis, shifted by the row maximum (finite rows)."""
    m = a.max(axis=-1, keepdims=True)
    return (np.log(np.exp(a - m).sum(axis=-1, keepdims=True)) + m)[..., 0]


def _gpdfit_rows(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape ``k-hat`` and scale of a generalised Pareto fit to each row of ``y`` (B, M), sorted
    ascending and non-negative: ArviZ's ``_gpdfit`` (Zhang & Stephens with the prior), by rows."""
    n_rows, M = y.shape
    m_est = 30 + int(M**0.5)
    xstar = y[:, int(M / 4 + 0.5) - 1]
    j = np.arange(1, m_est + 1, dtype=float)
    b = (1 - np.sqrt(m_est / (j - 0.5)))[None, :] / (_PRIOR_BS * xstar)[:, None] + (1 / y[:, -1])[:, None]
    prof = np.log1p(-b[:, :, None] * y[:, None, :]).mean(axis=2)  # (B, m_est)
    len_scale = M * (np.log(-b / prof) - prof - 1)
    w = np.exp(len_scale - _lse_rows(len_scale)[:, None])
    kept = w >= _NEGLIGIBLE  # NaN weights are dropped too; with none kept ArviZ's sum is over nothing: b = 0
    w = np.where(kept, w, 0.0)
    w /= w.sum(axis=1, keepdims=True)
    b_post = np.where(kept, b * w, 0.0).sum(axis=1)
    k_raw = np.log1p(-b_post[:, None] * y).mean(axis=1)
    sigma = -k_raw / b_post
    kappa = (M * k_raw + _PRIOR_K * 0.5) / (M + _PRIOR_K)
    nan_k = np.isnan(kappa)
    kappa[nan_k] = np.inf
    sigma[nan_k] = np.nan
    far = xstar <= y[:, 0]  # the first quartile is the minimum: far from a generalised Pareto tail
    kappa[far] = np.nan
    sigma[far] = np.nan
    return kappa, sigma


def _block(x: np.ndarray, M: int, first_col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSIS-LOO of the respondents in the rows of ``x`` (B, S) float64: ``elpd_i, p_i, k-hat``."""
    n_rows, S = x.shape
    lo, hi = x.min(axis=1), x.max(axis=1)
    ok = np.isfinite(lo) & np.isfinite(hi)  # NaN propagates through min and max
    if not ok.all():
        x = np.where(ok[:, None], x, 0.0)  # computed on zeros, reported as NaN below
        lo, hi = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    r = lo[:, None] - x  # -x - max(-x), the same bits
    lppd = np.log(np.exp(x - hi[:, None]).sum(axis=1)) + hi - math.log(S)
    cut_at = S - M - 1
    top = np.argpartition(r, cut_at, axis=1)[:, cut_at:]  # the cutoff, then the M tail draws (unsorted)
    top_vals = np.take_along_axis(r, top, axis=1)
    cutoff = top_vals[:, 0]
    order = np.argsort(top_vals[:, 1:], axis=1)
    tail_idx = np.take_along_axis(top[:, 1:], order, axis=1)
    tail = np.take_along_axis(top_vals[:, 1:], order, axis=1)
    constant = ok & (tail[:, -1] - tail[:, 0] < _TINY)
    if constant.any():
        raise PSISError(f"All tail values are the same (respondent {first_col + int(np.flatnonzero(constant)[0])})")
    with np.errstate(all="ignore"):
        mu = np.exp(cutoff)
        kappa, sigma = _gpdfit_rows(np.exp(tail) - mu[:, None])
        smooth = np.isfinite(kappa)
        if smooth.any():
            kk, ss, mm = kappa[smooth, None], sigma[smooth, None], mu[smooth, None]
            lp = np.log1p(-(np.arange(0.5, M) / M))[None, :]
            q = np.where(kk == 0, mm - ss * lp, mm + ss * np.expm1(-kk * lp) / kk)
            q = np.where(ss > 0, q, np.nan)
            smoothed = np.log(q)
            cap = tail[smooth, -1:]
            smoothed = np.where(smoothed > cap, cap, smoothed)
            rows = np.flatnonzero(smooth)
            r[rows[:, None], tail_idx[smooth]] = smoothed
        lw = r - _lse_rows(r)[:, None]
        elpd = _lse_rows(lw + x)
    p = lppd - elpd
    if not ok.all():
        elpd[~ok] = p[~ok] = kappa[~ok] = np.nan
    return elpd, p, kappa


def psis_loo(loglik: np.ndarray, reff: float = 1.0) -> dict[str, Any]:
    """PSIS-LOO of every respondent, as :func:`arviz.loo` computes it (module docstring).

    Parameters
    ----------
    loglik : ndarray, shape (S, n) or (C, D, n)
        Log-likelihood of each respondent under each posterior draw (chains are pooled,
        ``S = C D``); float32 is accepted and computed in float64 block by block.
    reff : float, default 1.0
        Relative efficiency of the draws (ESS / S), which sets the tail length.

    Returns
    -------
    dict
        ``elpd, se, p`` (floats), ``elpd_i, p_i, pareto_k`` (n,), ``good_k`` (the Pareto-k
        threshold), ``warning`` (any ``pareto_k > good_k``), ``n_samples`` (S) and ``tail_draws``
        (M).

    Raises
    ------
    PSISError
        Fewer than 5 tail draws, or a respondent whose tail draws are all equal (ArviZ raises
        ``ValueError`` there; :func:`latentseg.models.bayes._loo.loo` falls back to truncated
        importance sampling).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.normal(0.0, 0.2, 400)  # draws of a normal mean, 3 observations
    >>> ll = -0.5 * np.log(2 * np.pi) - 0.5 * (np.array([-0.5, 0.1, 0.4])[None, :] - mu[:, None]) ** 2
    >>> r = psis_loo(ll)
    >>> r["elpd_i"].shape, r["tail_draws"], bool(r["warning"]), round(r["p"], 2)
    ((3,), 60, False, 0.02)
    """
    ll = np.asarray(loglik)
    if ll.ndim == 3:
        ll = ll.reshape(-1, ll.shape[-1])
    if ll.ndim != 2:
        raise ValueError(f"psis_loo needs an (S, n) or (C, D, n) log-likelihood array; got shape {ll.shape}.")
    S, n = ll.shape
    M = tail_length(S, float(reff))
    if M < 5:
        raise PSISError(f"n_draws_tail must be at least 5 (PSIS with {S} draws and reff {float(reff):.3g} has {M})")
    m_est = 30 + int(M**0.5)
    step = max(1, min(n, _BLOCK_ELEMENTS // S, _BLOCK_ELEMENTS // (m_est * M)))
    elpd_i = np.empty(n)
    p_i = np.empty(n)
    k = np.empty(n)
    for a in range(0, n, step):
        x = np.ascontiguousarray(ll[:, a : a + step].T, dtype=float)
        elpd_i[a : a + step], p_i[a : a + step], k[a : a + step] = _block(x, M, a)
    thr = good_k(S)
    return {
        "elpd": float(elpd_i.sum()),
        "se": float(math.sqrt(n * np.var(elpd_i, ddof=1))) if n > 1 else 0.0,
        "p": float(p_i.sum()),
        "elpd_i": elpd_i,
        "p_i": p_i,
        "pareto_k": k,
        "good_k": thr,
        "warning": bool(np.any(k > thr)),
        "n_samples": S,
        "tail_draws": M,
    }
