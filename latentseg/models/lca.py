"""Latent class models by EM: nominal (poLCA), binary and ordinal indicators.

The model: respondent ``i`` belongs to segment ``c`` with probability ``pi_c``; given the segment,
the indicators are independent. For indicator ``j`` with categories ``0..C_j - 1``:

- **categorical** (nominal, as poLCA): one free probability vector per segment and item,
  ``P(x_ij = m | c) = theta_cjm``. Free parameters ``(k - 1) + k * sum_j (C_j - 1)``
  (poLCA's count).
- **binary**: the same model for items with exactly two categories (Bernoulli); the count is
  ``(k - 1) + k * J``.
- **ordinal**: an adjacent-category logit (partial-credit) model with item thresholds shared by all
  segments and a segment x item location, ``log P(m + 1 | c) / P(m | c) = beta_cj - tau_jm``,
  that is ``P(x_ij = m | c) ∝ exp(m * beta_cj - sum_{l < m} tau_jl)``. The thresholds of each
  item sum to zero (identification), so the count is
  ``(k - 1) + k * J + sum_j (C_j - 2)``; for two-category items this is the binary model.

Missing indicator values drop out of a respondent's likelihood (they contribute a factor 1).
Every fit runs ``n_init`` random starts (random soft partitions, or Dirichlet(1) item-response
probabilities) in one vectorised batch and reports how many reached the best log-likelihood.
EM is accelerated by SQUAREM with a monotone safeguard (``accelerate=False`` for plain EM).

The M-step is closed form for the nominal and binary models; for the ordinal model it is a
generalised M-step: per item, a few damped Newton steps on the (concave) expected complete-data
log-likelihood, warm-started from the previous iteration, with step halving so the log-likelihood
never decreases.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from latentseg._stats import as_rng, check_int
from latentseg.errors import ConfigError, ConvergenceWarning
from latentseg.models._criteria import information_criteria
from latentseg.models._em import check_k, check_sample_weight, provenance, replication_report, sandwich_share_interval, share_information
from latentseg.prepare.encoding import EncodedIndicators, categories_frame, encode_indicators, encode_new_indicators
from latentseg.result import SegmentationResult
from latentseg.models.families import LCA

__all__ = [
    "fit_lca",
    "predict_proba",
    "log_likelihood",
    "MEASUREMENTS",
    "covariate_measurement",
]

#: The measurement models :func:`fit_lca` knows.
MEASUREMENTS = ("categorical", "binary", "ordinal")

_LOG_FLOOR = -700.0  # log of a probability that is numerically zero (keeps 0 * log 0 at 0)
_BOUNDARY = 1e-6  # probabilities below this (or above 1 - this) are boundary estimates
_ORD_BOUND = 30.0
  # ordinal locations / thresholds are kept within +-this (logit units)


# ====================================================================== the likelihood
def onehot(codes: np.ndarray, n_cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-hot design (n, D), D = sum C_j, missing -> all-zero block; and the block offsets (J,)."""
    n, J = codes.shape
    offsets = np.r_[0, np.cumsum(n_cat)[:-1]].astype(np.int64)
    X = np.zeros((n, int(n_cat.sum())), dtype=float)
    rows, cols = np.nonzero(codes >= 0)
    X[rows, offsets[cols] + codes[rows, cols]] = 1.0
    return X, offsets


class OneHot:
    """The one-hot design ``X`` (n, D) and the two products EM needs of it. The EM engine takes
    any object with these two methods (``rating-lca`` passes
    :class:`latentseg.models._rating_kernels.GatherDesign`, the same products over the answer
    codes, cheaper where items have many categories)."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.XT = np.ascontiguousarray(X.T)

    def log_joint(self, lw: np.ndarray) -> np.ndarray:
        """``lw @ X'``: (B, D) -> (B, n)."""
        return lw @ self.XT

    def counts(self, z: np.ndarray) -> np.ndarray:
        """``z @ X``: (B, n) -> (B, D)."""
        return z @ self.X


def _padded_to_flat(probs: np.ndarray, n_cat: np.ndarray) -> np.ndarray:
    """(k, J, Cmax) NaN-padded -> (k, D) stacked blocks."""
    return np.concatenate([probs[:, j, : n_cat[j]] for j in range(len(n_cat))], axis=1)


def flat_to_padded(flat: np.ndarray, n_cat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(k, D) stacked blocks -> (k, J, Cmax) NaN-padded."""
    k = flat.shape[0]
    out = np.full((k, len(n_cat), int(n_cat.max())), np.nan)
    for j, (o, c) in enumerate(zip(offsets, n_cat)):
        out[:, j, :c] = flat[:, o : o + c]
    return out


def safe_log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), _LOG_FLOOR)


def _e_step(
    design: Any, logW: np.ndarray, logpi: np.ndarray, sw: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Batched E-step.

    design: the one-hot design (:class:`OneHot`); logW (S, k, D) log item probabilities; logpi (S, k);
    sw (n,) survey weights, optional.
    Returns the (pseudo-)log-likelihood of each start (S,) and the memberships (S, k, n).
    """
    S, k, D = logW.shape
    a = design.log_joint(logW.reshape(S * k, D)).reshape(S, k, -1)
    a += logpi[:, :, None]
    m = a.max(axis=1)
    a -= m[:, None, :]
    np.exp(a, out=a)
    s = a.sum(axis=1)
    a /= s[:, None, :]
    np.log(s, out=s)
    s += m
    return (s.sum(axis=1) if sw is None else s @ sw), a


def _nominal_m_step(
    design: Any, z: np.ndarray, offsets: np.ndarray, col_item: np.ndarray, col_ncat: np.ndarray, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form M-step: log item probabilities (S, k, D) and log weights (S, k).

    design: the one-hot design (:class:`OneHot`); z (S, k, n) memberships; ``col_item`` (D,) is the item of each
    one-hot column and ``col_ncat`` (D,) its number of categories.
    """
    S, k, n = z.shape
    N = design.counts(z.reshape(S * k, n)).reshape(S, k, -1)  # expected counts per category
    den = np.add.reduceat(N, offsets, axis=2)  # expected observed responses per item (S, k, J)
    if prior:
        theta = (N + prior) / (den[:, :, col_item] + prior * col_ncat)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = N / den[:, :, col_item]
        theta[~np.isfinite(theta)] = 0.0  # a segment with no weight: any value will do
    return safe_log(theta), safe_log(z.sum(axis=2) / n)


# ---------------------------------------------------------------------- ordinal pieces
def _ordinal_eta(beta: np.ndarray, tau: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Category scores ``m * beta - sum_{l<m} tau_l`` (-inf on padding).

    beta (..., J, k); tau (..., J, Cmax - 1); valid (J, Cmax) -> (..., J, k, Cmax).
    """
    cmax = valid.shape[1]
    m = np.arange(cmax, dtype=float)
    cum = np.concatenate([np.zeros(tau.shape[:-1] + (1,)), np.cumsum(tau, axis=-1)], axis=-1)
    eta = beta[..., None] * m - cum[..., None, :]
    return np.where(valid[:, None, :], eta, -np.inf)


def _ordinal_logp(beta: np.ndarray, tau: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """log P(category | segment) under the adjacent-category logit, shape (..., J, k, Cmax)."""
    eta = _ordinal_eta(beta, tau, valid)
    mx = eta.max(axis=-1, keepdims=True)
    lse = mx + np.log(np.exp(eta - mx).sum(axis=-1, keepdims=True))
    return eta - lse


def _ordinal_objective(N: np.ndarray, logp: np.ndarray) -> np.ndarray:
    """Expected complete-data log-likelihood per item: N (..., J, k, Cmax) -> (..., J)."""
    return (N * np.where(N > 0, logp, 0.0)).sum(axis=(-2, -1))


def _ordinal_newton(
    N: np.ndarray, beta: np.ndarray, tau: np.ndarray, valid: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """A few damped Newton steps on each item's expected complete-data log-likelihood.

    N (B, J, k, Cmax) expected counts; beta (B, J, k); tau (B, J, Cmax - 1).
    The objective is concave in (beta, tau) (an exponential family in its natural parameters);
    its one flat direction (shifting every beta and tau by the same constant) is removed after each
    step by centring the thresholds. Padding thresholds have zero gradient and stay at 0.
    """
    B, J, k, cmax = N.shape
    P = k + cmax - 1
    m = np.arange(cmax, dtype=float)
    U = (m[:, None] > np.arange(cmax - 1)[None, :]).astype(float)  # (Cmax, Cmax-1) [m > l]
    tvalid = valid[:, 1:]  # threshold l exists iff category l+1 exists, (J, Cmax-1)
    nk = N.sum(axis=-1)  # (B, J, k)
    Sk = N @ m  # (B, J, k)
    G = N @ U  # (B, J, k, Cmax-1) counts above threshold l
    eye = np.eye(P)
    for _ in range(steps):
        logp = _ordinal_logp(beta, tau, valid)
        p = np.exp(logp)
        q0 = _ordinal_objective(N, logp)
        mean = p @ m  # (B, J, k)
        var = p @ (m * m) - mean**2
        above = p @ U  # P(x > l), (B, J, k, Cmax-1)
        g_beta = Sk - nk * mean
        g_tau = (nk[..., None] * above - G).sum(axis=2)
        # Hessian = -sum_k n_k Cov_k(T), T = (m e_k, -[m > l])
        e_mu = np.einsum("bjkc,c,cl->bjkl", p, m, U)  # E[m [m>l]]
        cov_m_u = e_mu - mean[..., None] * above  # Cov(m, [m>l])
        e_uu = np.einsum("bjkc,cl,cr->bjklr", p, U, U)
        cov_uu = e_uu - above[..., :, None] * above[..., None, :]
        H = np.zeros((B, J, P, P))
        idx = np.arange(k)
        H[:, :, idx, idx] = -nk * var
        H[:, :, :k, k:] = nk[..., None] * cov_m_u
        H[:, :, k:, :k] = np.swapaxes(H[:, :, :k, k:], -1, -2)
        H[:, :, k:, k:] = -(nk[..., None, None] * cov_uu).sum(axis=2)
        g = np.concatenate([g_beta, g_tau], axis=-1)
        scale = np.abs(np.diagonal(H, axis1=-2, axis2=-1)).max(axis=-1) + 1.0
        A = -H + (1e-9 * scale)[..., None, None] * eye
        delta = np.linalg.solve(A, g[..., None])[..., 0]
        delta[..., k:] *= tvalid
        step = np.ones((B, J))
        b_new, t_new = beta, tau
        for _half in range(8):
            b_new = np.clip(beta + step[..., None] * delta[..., :k], -_ORD_BOUND, _ORD_BOUND)
            t_new = np.clip(tau + step[..., None] * delta[..., k:], -_ORD_BOUND, _ORD_BOUND)
            q1 = _ordinal_objective(N, _ordinal_logp(b_new, t_new, valid))
            worse = q1 < q0 - 1e-12 * np.abs(q0)
            if not worse.any():
                break
            step = np.where(worse, step * 0.5, step)
        else:
            keep = worse
            b_new = np.where(keep[..., None], beta, b_new)
            t_new = np.where(keep[..., None], tau, t_new)
        beta, tau = _centre(b_new, t_new, tvalid)
    return beta, tau


def _centre(beta: np.ndarray, tau: np.ndarray, tvalid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Impose sum_l tau_jl = 0 by the shift that leaves every probability unchanged."""
    a = (tau * tvalid).sum(axis=-1) / tvalid.sum(axis=-1)  # (B, J)
    return beta - a[..., None], (tau - a[..., None]) * tvalid


def _pad_counts(N: np.ndarray, n_cat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Expected counts (S, k, D) -> (S, J, k, Cmax), zero on padding."""
    S, k, D = N.shape
    J, cmax = len(n_cat), int(n_cat.max())
    out = np.zeros((S, J, k, cmax))
    for j, (o, c) in enumerate(zip(offsets, n_cat)):
        out[:, j, :, :c] = N[:, :, o : o + c]
    return out


def _ordinal_to_flat(logp: np.ndarray, n_cat: np.ndarray) -> np.ndarray:
    """(S, J, k, Cmax) log-probs -> (S, k, D)."""
    return np.concatenate([logp[:, j, :, : n_cat[j]] for j in range(len(n_cat))], axis=2)


# ====================================================================== the batched EM
@dataclasses.dataclass
class _Fit:
    logW: np.ndarray  # (k, D) log item probabilities of the best start
    logpi: np.ndarray  # (k,)
    beta: np.ndarray | None  # (J, k) ordinal locations
    tau: np.ndarray | None  # (J, Cmax-1) ordinal thresholds
    loglik: float
    z: np.ndarray  # (n, k)
    start_logliks: np.ndarray  # (S,)
    start_iters: np.ndarray  # (S,)
    start_converged: np.ndarray  # (S,)
    best: int


def run_em(
    enc: EncodedIndicators,
    k: int,
    measurement: str,
    n_init: int,
    max_iter: int,
    tol: float,
    prior: float,
    init: str | np.ndarray,
    rng: np.random.Generator,
    accelerate: bool = True,
    design: Any = None,
    sample_weight: np.ndarray | None = None,
) -> _Fit:
    """EM from ``n_init`` starts in one batch; ``design`` does the products with the one-hot
    design (default :class:`OneHot`). With ``sample_weight`` (n,) EM maximises the
    pseudo-log-likelihood ``sum_i w_i log f(x_i)``: the E-step's log-likelihood and the M-step's
    expected counts are weighted sums, the total weight takes the place of n (class sizes and
    ``tol``); the starting partitions ignore the weights."""
    offsets = np.r_[0, np.cumsum(enc.n_cat)[:-1]].astype(np.int64)
    if design is None:
        design = OneHot(onehot(enc.codes, enc.n_cat)[0])
    n = enc.codes.shape[0]
    sw = sample_weight
    n_tot = n if sw is None else float(sw.sum())  # the total weight

    def weigh(z: np.ndarray) -> np.ndarray:
        """Memberships (S, k, n) times the survey weights (as they are when unweighted)."""
        return z if sw is None else z * sw

    n_cat = enc.n_cat
    S = n_init
    J, cmax = len(n_cat), int(n_cat.max())
    valid = np.arange(cmax)[None, :] < n_cat[:, None]  # (J, Cmax)
    ordinal = measurement == "ordinal"
    vpad = valid[:, None, :].astype(float)  # (J, 1, Cmax) broadcast over starts and segments

    col_item = np.repeat(np.arange(J), n_cat)
    col_ncat = np.repeat(n_cat, n_cat).astype(float)
    # starts, one child stream each: random soft partitions (uniform memberships, normalised; the
    # first M-step turns them into item probabilities near the sample margins, as StepMix and
    # scikit-learn start) or Dirichlet(1) item-response probabilities with equal weights
    children = rng.spawn(S)
    if isinstance(init, np.ndarray) or init == "partition":
        if isinstance(init, np.ndarray):
            z0 = np.ascontiguousarray(np.transpose(init, (0, 2, 1)))  # given memberships (S, k, n)
        else:
            z0 = np.stack([child.random((n, k)).T for child in children])  # (S, k, n)
        z0 /= z0.sum(axis=1, keepdims=True)
        logW, _ = _nominal_m_step(design, weigh(z0), offsets, col_item, col_ncat, prior)
    else:
        logW = np.empty((S, k, int(n_cat.sum())))
        for s, child in enumerate(children):
            for o, c in zip(offsets, n_cat):
                logW[s, :, o : o + c] = safe_log(child.dirichlet(np.ones(c), size=k))
    logpi = np.full((S, k), -math.log(k))
    beta = np.zeros((S, J, k)) if ordinal else None
    tau = np.zeros((S, J, cmax - 1)) if ordinal else None
    if ordinal:
        # project the starts onto the ordinal model (one M-step from their memberships)
        _, z = _e_step(design, logW, logpi)
        z = weigh(z)
        N = _pad_counts(design.counts(z.reshape(S * k, n)).reshape(S, k, -1), n_cat, offsets) + prior * vpad
        beta, tau = _ordinal_newton(N, beta, tau, valid, steps=10)
        logW = _ordinal_to_flat(_ordinal_logp(beta, tau, valid), n_cat)
        logpi = safe_log(z.sum(axis=2) / n_tot)

    # ---- the EM map on a batch of starts; parameters are tuples with the start axis first:
    # nominal (log item probabilities (S, k, D), log weights (S, k)); ordinal (locations
    # (S, J, k), thresholds (S, J, Cmax-1), log weights (S, k))
    tvalid = valid[:, 1:]

    def to_logw(params: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        if ordinal:
            return _ordinal_to_flat(_ordinal_logp(params[0], params[1], valid), n_cat), params[2]
        return params[0], params[1]

    def em_map(params: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """One EM iteration: log-likelihood at ``params`` and the M-step's new parameters."""
        lw, lp = to_logw(params)
        ll, z = _e_step(design, lw, lp, sw)
        z = weigh(z)
        lp_new = safe_log(z.sum(axis=2) / n_tot)
        if ordinal:
            N = _pad_counts(design.counts(z.reshape(-1, n)).reshape(z.shape[0], k, -1), n_cat, offsets) + prior * vpad
            b, t = _ordinal_newton(N, params[0], params[1], valid, steps=2)
            return ll, (b, t, lp_new)
        lw_new, _ = _nominal_m_step(design, z, offsets, col_item, col_ncat, prior)
        return ll, (lw_new, lp_new)

    def project(params: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Back onto the parameter space after an extrapolation (normalise, centre, clip)."""
        lp = params[-1] - np.logaddexp.reduce(params[-1], axis=1, keepdims=True)
        lp = np.maximum(lp, _LOG_FLOOR)
        if ordinal:
            b, t = _centre(
                np.clip(params[0], -_ORD_BOUND, _ORD_BOUND), np.clip(params[1], -_ORD_BOUND, _ORD_BOUND), tvalid
            )
            return b, t, lp
        lw = params[0]
        mx = np.maximum.reduceat(lw, offsets, axis=2)
        lse = mx + np.log(np.add.reduceat(np.exp(lw - mx[:, :, col_item]), offsets, axis=2))
        return np.maximum(lw - lse[:, :, col_item], _LOG_FLOOR), lp

    params: tuple[np.ndarray, ...] = (beta, tau, logpi) if ordinal else (logW, logpi)  # type: ignore[assignment]
    final = tuple(p.copy() for p in params)
    iters = np.zeros(S, dtype=np.int64)
    converged = np.zeros(S, dtype=bool)
    active = np.arange(S)

    def retire(stop: np.ndarray, values: tuple[np.ndarray, ...]) -> None:
        for dst, src in zip(final, values):
            dst[active[stop]] = src[stop]

    if not accelerate:
        prev = np.full(S, -np.inf)
        cur = params
        for it in range(1, max_iter + 1):
            ll, cur = em_map(cur)
            iters[active] = it
            done = np.abs(ll - prev[active]) / n_tot < tol
            prev[active] = ll
            stop = done | (it == max_iter)
            converged[active[done]] = True
            if stop.any():
                retire(stop, cur)
                active, cur = active[~stop], tuple(p[~stop] for p in cur)
                if active.size == 0:
                    break
    else:
        # SQUAREM (Varadhan & Roland 2008, scheme S3) with a monotone safeguard: two EM steps,
        # an extrapolation along them, one EM step from the extrapolated point, accepted only
        # when its log-likelihood beats the first EM step's; otherwise the plain two steps stand.
        # Convergence: one EM step changes the log-likelihood per respondent by less than ``tol``
        # (plain EM's rule, checked at the current point).
        p0 = params
        amax = np.ones(S)
        while active.size:
            ll0, p1 = em_map(p0)
            ll1, p2 = em_map(p1)
            iters[active] += 2
            done = np.abs(ll1 - ll0) / n_tot < tol
            converged[active[done]] = True
            r = [b - a for a, b in zip(p0, p1)]
            v = [c - 2 * b + a for a, b, c in zip(p0, p1, p2)]
            axes = [tuple(range(1, x.ndim)) for x in r]
            sr = sum((x * x).sum(axis=ax) for x, ax in zip(r, axes))
            sv = sum((x * x).sum(axis=ax) for x, ax in zip(v, axes))
            with np.errstate(invalid="ignore", divide="ignore"):
                alpha = -np.sqrt(sr / sv)
            alpha = np.where(np.isfinite(alpha), alpha, -1.0)
            alpha = np.clip(alpha, -amax[active], -1.0)
            amax[active] = np.where(alpha <= -amax[active], 4 * amax[active], amax[active])
            shape = [(-1,) + (1,) * (x.ndim - 1) for x in r]
            pe = project(
                tuple(a - 2 * alpha.reshape(sh) * x + (alpha**2).reshape(sh) * y for a, x, y, sh in zip(p0, r, v, shape))
            )
            lle, p3 = em_map(pe)
            iters[active] += 1
            accept = lle >= ll1
            amax[active] = np.where(accept, amax[active], np.maximum(1.0, amax[active] / 4))
            nxt = tuple(np.where(accept.reshape(sh), c, b) for b, c, sh in zip(p2, p3, shape))
            stop = done | (iters[active] >= max_iter)
            # a start that converged keeps the plain EM step (its extrapolation is moot)
            nxt = tuple(np.where(done.reshape(sh), b, c) for b, c, sh in zip(p2, nxt, shape))
            if stop.any():
                retire(stop, nxt)
            active, p0 = active[~stop], tuple(p[~stop] for p in nxt)

    if ordinal:
        beta, tau = final[0], final[1]
    logW, logpi = to_logw(final)

    # final log-likelihood of every start at its final parameters (one batched pass)
    ll_all, _ = _e_step(design, logW, logpi, sw)
    best = int(np.argmax(ll_all))
    ll_best, z_best = _e_step(design, logW[[best]], logpi[[best]], sw)
    return _Fit(
        logW=logW[best],
        logpi=logpi[best],
        beta=None if beta is None else beta[best].copy(),
        tau=None if tau is None else tau[best].copy(),
        loglik=float(ll_best[0]),
        z=z_best[0].T,
        start_logliks=ll_all,
        start_iters=iters,
        start_converged=converged,
        best=best,
    )


# ====================================================================== public API
def count_free_params(k: int, n_cat: np.ndarray, measurement: str) -> int:
    J = len(n_cat)
    if measurement == "ordinal":
        return (k - 1) + k * J + int(np.sum(n_cat - 2))
    return (k - 1) + k * int(np.sum(n_cat - 1))


def fit_lca(
    data: Any,
    k: int,
    *,
    measurement: str = "categorical",
    n_init: int = 20,
    max_iter: int = 1000,
    tol: float = 1e-8,
    random_seed: int | None = None,
    prior: float = 0.0,
    init: str | np.ndarray = "partition",
    accelerate: bool = True,
    sample_weight: Any = None,
    covariates: pd.DataFrame | None = None,
) -> SegmentationResult:
    """Fit a latent class model with ``k`` segments by EM from ``n_init`` random starts.

    Parameters
    ----------
    data : DataFrame or array-like, shape (n, J)
        Categorical indicators: strings, integers, booleans or pandas Categoricals, one column per
        indicator; NaN / None / ``pd.NA`` where missing. Each column's observed categories are
        mapped to codes ``0..C_j - 1`` (a Categorical keeps its category order, numbers sort by
        value, strings alphabetically); the mapping is kept in ``extras["categories"]`` and reused
        by :func:`predict_proba`. Categories that never occur are dropped.
    k : int
        Number of segments (1 <= k <= n).
    measurement : {"categorical", "binary", "ordinal"}, default "categorical"
        ``"categorical"``: nominal indicators as in poLCA, one probability per segment, item and
        category; free parameters ``(k - 1) + k * sum_j (C_j - 1)``.
        ``"binary"``: two-category indicators (Bernoulli); same count, ``(k - 1) + k * J``.
        ``"ordinal"``: adjacent-category logit with item thresholds shared across segments and a
        segment x item location (see the module notes); needs numeric levels or ordered
        Categoricals; free parameters ``(k - 1) + k * J + sum_j (C_j - 2)``.
    n_init : int, default 20
        Random starts, all run in one vectorised batch.
    max_iter : int, default 1000
        EM iterations per start (each EM step counts, also those inside an acceleration cycle).
    tol : float, default 1e-8
        A start has converged when its log-likelihood per respondent changes by less than ``tol``
        between iterations (StepMix's ``abs_tol`` semantics).
    random_seed : int, optional
        The one seed; each start draws from its own child generator. Same seed, same result.
    prior : float, default 0.0
        Dirichlet pseudo-count added to every category count in the M-step (posterior-mode
        smoothing that keeps probabilities off 0 and 1). With ``prior > 0`` the reported
        log-likelihood is still the data log-likelihood at the smoothed estimate.
    init : {"partition", "dirichlet"} or ndarray, default "partition"
        How starts are drawn: ``"partition"``, random soft partitions (uniform memberships,
        normalised, then an M-step: item probabilities near the sample margins, as StepMix and
        scikit-learn start); ``"dirichlet"``, Dirichlet(1) item-response probabilities with equal
        weights (poLCA-like, more dispersed, reaches more local maxima). An array of starting
        memberships, shape (n_init, n, k) or (n, k), non-negative (rows are normalised), gives
        the starts explicitly (a previous solution, k-means partitions, another program's
        starts); ``n_init`` must then equal its first dimension.
    accelerate : bool, default True
        Accelerate EM with SQUAREM (Varadhan & Roland 2008): extrapolate along two EM steps and
        keep the extrapolation only when it raises the log-likelihood, so every start still
        climbs monotonically to a fixed point of EM, in far fewer iterations where EM crawls
        (overfitted k, flat likelihoods). ``False`` runs plain EM (each start then follows the
        same path as StepMix or poLCA from the same starting values).
    sample_weight : array-like, shape (n,), optional
        Survey weights, used as given (a weight of 2 counts a respondent twice): EM maximises the
        pseudo-log-likelihood ``sum_i w_i log f(x_i)`` (weighted expected counts and class
        sizes; ``tol`` per unit of weight); criteria from the pseudo-log-likelihood with n = the
        number of respondents; weighted shares with design-based intervals (nominal and binary
        models: Wilson at the effective n of the design-based sandwich,
        :func:`design_share_interval`). The log-likelihood equals StepMix's with
        ``sample_weight`` (tests/test_weights_em.py).
    covariates : DataFrame, optional
        Covariates on membership (one-step latent class regression, as poLCA's formula
        ``cbind(...) ~ x``): the class proportions become a multinomial logit on these columns
        (aligned with the rows; categorical columns dummy-coded), fitted jointly by EM started from
        the fit without them (:func:`latentseg.models._mnlogit.one_step`); every measurement.
        Coefficients in ``extras["covariates"]``; ``n_params`` adds
        ``(m - 1)(k - 1)`` coefficients.

    Returns
    -------
    SegmentationResult
        ``model="lca"``, in canonical order. ``centers`` (k, J): expected category value per
        segment and item (the numeric level where the item's categories are numbers, otherwise the
        expected 0-based code). ``params``: ``weights`` (k,), ``probs`` (k, J, Cmax) item-response
        probabilities NaN-padded where an item has fewer categories, and for ordinal models
        ``locations`` (k, J); ``shared_params["thresholds"]`` (J, Cmax - 1) for ordinal models.
        ``extras``: ``item_probs`` (tidy: segment, item, category, probability) and
        ``categories`` (item, code, category, value). ``diagnostics``: ``converged``, ``n_iter``,
        ``n_starts``, ``n_best`` (starts within 0.01 of the best log-likelihood),
        ``start_logliks``, ``warnings`` (boundary estimates, non-convergence, weak replication,
        with advice).

    Raises
    ------
    ConfigError
        Bad settings (k, n_init, measurement ...), binary data with more than two categories,
        ordinal data without an order.
    SurveyError
        A column with fewer than two observed categories, respondents with every indicator missing.

    Warns
    -----
    ConvergenceWarning
        When the best start did not converge; boundary estimates, weak replication and tiny
        segments are reported in ``diagnostics["warnings"]`` only.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"q1": list("aabbaabbab" * 4), "q2": list("xxyyxxyyxy" * 4),
    ...                    "q3": list("uuvvuuvvuv" * 4)})
    >>> res = fit_lca(df, 2, n_init=5, random_seed=1)
    >>> res.k, res.criteria["n_params"]
    (2, 7)
    >>> res.params["probs"].shape
    (2, 3, 2)
    """
    if covariates is not None:
        from latentseg.models._mnlogit import one_step

        base = fit_lca(data, k, measurement=measurement, n_init=n_init, max_iter=max_iter, tol=tol,
                       random_seed=random_seed, prior=prior, init=init, accelerate=accelerate,
                       sample_weight=sample_weight)
        return one_step(base, data, covariates, sample_weight=sample_weight)
    if not isinstance(init, np.ndarray) and init not in ("partition", "dirichlet"):
        raise ConfigError(
            "The 'init' parameter of fit_lca must be 'partition', 'dirichlet' or an array of starting "
            f"memberships. Got {init!r} instead."
        )
    if measurement not in MEASUREMENTS:
        raise ConfigError(
            f"The 'measurement' parameter of fit_lca must be one of {', '.join(MEASUREMENTS)}. Got {measurement!r} instead."
        )
    n_init = check_int(n_init, "n_init", low=1, where="fit_lca")
    max_iter = check_int(max_iter, "max_iter", low=1, where="fit_lca")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ConfigError(f"The 'tol' parameter of fit_lca must be a float > 0. Got {tol!r} instead.")
    if not (isinstance(prior, (int, float)) and prior >= 0 and math.isfinite(prior)):
        raise ConfigError(f"The 'prior' parameter of fit_lca must be a float >= 0. Got {prior!r} instead.")
    enc = encode_indicators(data, measurement)
    n, J = enc.codes.shape
    sw = check_sample_weight(sample_weight, enc.ids, LCA)
    codes_f = np.where(enc.codes >= 0, enc.codes, np.nan).astype(float)
    k = check_k(k, codes_f, LCA)
    if isinstance(init, np.ndarray):
        init = np.asarray(init, dtype=float)
        init = init[None] if init.ndim == 2 else init
        if init.shape != (n_init, n, k) or not np.all(np.isfinite(init)) or np.any(init < 0) or np.any(init.sum(axis=2) <= 0):
            raise ConfigError(
                f"Starting memberships (init) must be a non-negative array of shape (n_init, n, k) = "
                f"({n_init}, {n}, {k}) with no all-zero row; got shape {init.shape}."
            )

    rng = as_rng(random_seed)
    fit = run_em(enc, k, measurement, n_init, max_iter, float(tol), float(prior), init, rng, bool(accelerate),
                 sample_weight=sw)

    n_cat = enc.n_cat
    offsets = np.r_[0, np.cumsum(n_cat)[:-1]].astype(np.int64)
    probs = flat_to_padded(np.exp(fit.logW), n_cat, offsets)  # (k, J, Cmax)
    probs = np.where(probs < 1e-300, 0.0, probs)  # numerically-zero probabilities are zero (NaN stays)
    weights = np.exp(fit.logpi)
    z = fit.z
    centers = _centers(probs, enc)

    # canonical order (largest share first, ties by first center) before building the tables
    order = np.lexsort((centers[:, 0], -(z.mean(axis=0) if sw is None else sw @ z)))
    z, probs, weights, centers = z[:, order], probs[order], weights[order], centers[order]
    params: dict[str, np.ndarray] = {"weights": weights, "probs": probs}
    shared: dict[str, np.ndarray] = {}
    if measurement == "ordinal":
        assert fit.beta is not None and fit.tau is not None
        params["locations"] = fit.beta.T[order]  # (k, J)
        thr = fit.tau.copy()
        thr[~(np.arange(thr.shape[1])[None, :] < (n_cat - 1)[:, None])] = np.nan
        shared["thresholds"] = thr

    p = count_free_params(k, n_cat, measurement)
    criteria = information_criteria(fit.loglik, p, n, z, sw)
    diagnostics = lc_diagnostics(fit, probs, weights, enc, measurement, p, n_init, max_iter, tol, params, shared)
    if not diagnostics["converged"]:
        warnings.warn(diagnostics["warnings"][0], ConvergenceWarning, stacklevel=2)
    interval = design_share_interval(enc.codes, n_cat, probs, weights, z, sw, measurement)

    settings = {
        "measurement": measurement,
        "n_init": n_init,
        "init": init if isinstance(init, str) else "given",
        "max_iter": max_iter,
        "tol": float(tol),
        "prior": float(prior),
        "accelerate": bool(accelerate),
    }
    return SegmentationResult.from_memberships(
        LCA,
        z,
        centers=centers,
        feature_names=enc.items,
        respondent_ids=enc.ids,
        criteria=criteria,
        diagnostics=diagnostics,
        provenance=provenance(random_seed, *((codes_f,) if sw is None else (codes_f, sw)),
                              config={"model": LCA, "k": k, **settings}),
        settings=settings,
        params=params,
        shared_params=shared,
        extras={"item_probs": _item_probs_frame(probs, enc), "categories": categories_frame(enc)},
        sample_weight=sw,
        **interval,
    )


#: the sandwich share interval multiplies, per segment, an (n, k - 1 + q_c) score block by itself
#: and keeps the (n, q) scores; beyond this many multiply-adds in all, or cells of scores, a
#: weighted fit reports the linearised interval instead
SANDWICH_MAX_FLOPS = 1e9
SANDWICH_MAX_CELLS = 20_000_000
#: item probabilities below this are held fixed in the sandwich (boundary estimates)
_SANDWICH_FIXED = 1e-6


def design_share_interval(
    codes: np.ndarray,
    n_cat: np.ndarray,
    probs: np.ndarray,
    weights: np.ndarray,
    z: np.ndarray,
    sw: np.ndarray | None,
    measurement: str,
) -> dict[str, Any]:
    """``share_interval`` and ``interval_method`` of a weighted nominal / binary latent class fit:
    Wilson at each share's effective n from the design-based sandwich covariance of the
    pseudo-maximum-likelihood estimate (empty, so that the linearised interval of
    :meth:`SegmentationResult.from_memberships` stands, when unweighted, ordinal, too large, or
    singular).

    Parameters ``pi_1..pi_{k-1}`` and, per segment and item, the category probabilities but the
    largest (the reference; probabilities below ``_SANDWICH_FIXED`` held fixed). Bread: the
    weighted observed information by Louis' (1982) identity, ``sum_i w_i [sum_c z_ic I_c(x_i) -
    sum_c z_ic S_ic S_ic' + s_i s_i']`` (``S_ic``, ``I_c`` the complete-data score and information
    of respondent i in segment c, ``s_i = sum_c z_ic S_ic``); meat: ``n / (n - 1)`` times the
    centred cross-products of ``w_i s_i`` (with-replacement design, Binder 1983). So the share
    interval carries how well the segments are told apart, which the linearised interval
    (memberships taken as known) does not. docs/methods.md, "Survey weights (EM)".
    """

    k = weights.size
    if sw is None or measurement == "ordinal" or k < 2:
        return {}
    n, J = codes.shape
    pi = weights
    layout = []  # per segment: (item, free categories, reference, first parameter index)
    idx_c, firsts = [], []
    start = k - 1
    for c in range(k):
        first, items = start, []
        firsts.append(first)
        for j in range(J):
            th = probs[c, j, : n_cat[j]]
            r = int(np.argmax(th))
            free = np.flatnonzero((th >= _SANDWICH_FIXED) & (np.arange(n_cat[j]) != r))
            items.append((j, free, r, start))
            start += free.size
        layout.append(items)
        idx_c.append(np.arange(first, start))
    q = start
    if sum(n * (k - 1 + ix.size) ** 2 for ix in idx_c) > SANDWICH_MAX_FLOPS or n * q > SANDWICH_MAX_CELLS:
        return {}
    wz = sw[:, None] * z
    P, H, s = share_information(z, wz, pi, q)
    pidx = np.arange(k - 1)
    for c in range(k):
        Sc = np.zeros((n, idx_c[c].size))
        for j, free, r, off in layout[c]:
            if not free.size:
                continue
            x = codes[:, j]
            th = probs[c, j]
            cols = np.arange(off, off + free.size)
            Sc[:, cols - firsts[c]] = (
                (x[:, None] == free[None, :]) / th[free] - (x == r)[:, None] / th[r]
            )
            N = np.bincount(x[x >= 0], weights=wz[x >= 0, c], minlength=int(n_cat[j]))  # expected counts
            H[cols, cols] += N[free] / th[free] ** 2
            H[np.ix_(cols, cols)] += N[r] / th[r] ** 2
        s[:, idx_c[c]] = z[:, [c]] * Sc
        Xc = np.sqrt(wz[:, [c]]) * np.concatenate([np.broadcast_to(P[c], (n, k - 1)), Sc], axis=1)
        ix = np.concatenate([pidx, idx_c[c]])
        H[np.ix_(ix, ix)] -= Xc.T @ Xc
    H += (s * sw[:, None]).T @ s
    return sandwich_share_interval(H, s, sw, pi)


def _centers(probs: np.ndarray, enc: EncodedIndicators) -> np.ndarray:
    k, J, cmax = probs.shape
    vals = np.zeros((J, cmax))
    for j, v in enumerate(enc.values):
        c = len(v)
        vals[j, :c] = v if np.all(np.isfinite(v)) else np.arange(c)
    return np.nansum(probs * vals[None], axis=2)


def _item_probs_frame(probs: np.ndarray, enc: EncodedIndicators) -> pd.DataFrame:
    rows = []
    for c in range(probs.shape[0]):
        for j, item in enumerate(enc.items):
            for m, key in enumerate(enc.keys[j]):
                rows.append((c + 1, item, key, float(probs[c, j, m])))
    return pd.DataFrame(rows, columns=["segment", "item", "category", "probability"])


def lc_diagnostics(
    fit: _Fit,
    probs: np.ndarray,
    weights: np.ndarray,
    enc: EncodedIndicators,
    measurement: str,
    n_params: int,
    n_init: int,
    max_iter: int,
    tol: float,
    params: dict[str, np.ndarray],
    shared: dict[str, np.ndarray],
) -> dict[str, Any]:
    msgs: list[str] = []
    converged = bool(fit.start_converged[fit.best])
    if not converged:
        msgs.append(
            f"The best of {n_init} starts did not converge within max_iter={max_iter} EM iterations "
            f"(tol={tol:g}); increase max_iter or loosen tol, and treat the estimates as provisional."
        )
    rep = replication_report(fit.start_logliks)
    n_best = rep["n_best"]
    if n_init > 1 and n_best == 1:
        msgs.append(
            f"Only 1 of {n_init} starts reached the best log-likelihood ({fit.loglik:.3f}); the maximum may be "
            "local: increase n_init (e.g. to 100) and check that the best value replicates."
        )
    if measurement == "ordinal":
        at_bound = np.abs(params["locations"]) >= _ORD_BOUND - 1e-6
        at_bound_thr = np.abs(np.nan_to_num(shared["thresholds"])) >= _ORD_BOUND - 1e-6
        n_b = int(at_bound.sum() + at_bound_thr.sum())
        seg_items = [(c + 1, enc.items[j]) for c, j in zip(*np.nonzero(at_bound))]
    else:
        with np.errstate(invalid="ignore"):
            low = np.nan_to_num(probs, nan=0.5) < _BOUNDARY
            high = np.nan_to_num(probs, nan=0.5) > 1 - _BOUNDARY
        bad = low | high
        n_b = int(bad.sum())
        seg_items = sorted({(c + 1, enc.items[j]) for c, j, _m in zip(*np.nonzero(bad))})
    if n_b:
        shown = ", ".join(f"segment {c} / {i}" for c, i in seg_items[:5]) + (" ..." if len(seg_items) > 5 else "")
        what = (
            f"ordinal locations / thresholds at the +-{_ORD_BOUND:g} bound (a segment that never uses the "
            "lowest or highest levels)"
            if measurement == "ordinal"
            else f"item-response probabilities at 0 or 1 (within {_BOUNDARY:g})"
        )
        msgs.append(
            f"{n_b} boundary estimate(s): {what}"
            + (f" ({shown})" if shown else "")
            + "; common with rare categories or too many segments: consider fewer segments, merging rare "
            "categories, or prior=1 (Dirichlet smoothing)."
        )
    tiny = np.flatnonzero(weights < 0.01)
    if tiny.size:
        msgs.append(
            f"Segment(s) {[int(t) + 1 for t in tiny]} hold less than 1% of respondents; the solution is probably "
            "over-extracted: prefer fewer segments."
        )
    n = enc.codes.shape[0]
    log_cells = float(np.sum(np.log(enc.n_cat.astype(float))))
    if n_params >= n or (log_cells < math.log(1e15) and n_params >= math.exp(log_cells) - 1):
        msgs.append(
            f"The model has {n_params} free parameters, more than the data can identify (n={n}, "
            f"{math.exp(log_cells):.0f} response patterns possible); use fewer segments."
        )
    return {
        "converged": converged,
        "warnings": msgs,
        "n_iter": int(fit.start_iters[fit.best]),
        "n_starts": rep["n_starts"],
        "n_best": n_best,
        "share_best": rep["share_best"],
        "best_loglik": fit.loglik,
        "start_logliks": rep["start_logliks"],
        "start_converged": [bool(c) for c in fit.start_converged],
        "start_n_iter": [int(i) for i in fit.start_iters],
        "n_missing": int((enc.codes < 0).sum()),
    }


def _log_probs_of(result: SegmentationResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked log item probabilities (k, D), log weights (k,), categories per item (J,)."""
    probs = np.asarray(result.params["probs"], dtype=float)
    n_cat = (~np.isnan(probs[0])).sum(axis=1)
    return safe_log(_padded_to_flat(probs, n_cat)), safe_log(np.asarray(result.params["weights"])), n_cat


def _check_result(result: SegmentationResult) -> None:
    if result.model != LCA or "probs" not in result.params or "categories" not in result.extras:
        raise ConfigError(f"Expected a latent class result (model '{LCA}'); got model {result.model!r}.")


def predict_proba(result: SegmentationResult, data: Any) -> np.ndarray:
    """Membership probabilities of (new) respondents under a fitted latent class model.

    Parameters
    ----------
    result : SegmentationResult
        A result of :func:`fit_lca`.
    data : DataFrame or array-like, shape (n_new, J)
        Indicators with the fitted column names (a DataFrame may hold more columns); categories are
        mapped with the codes kept at fit time. Missing values drop out; a respondent with every
        indicator missing gets the segment weights.

    Returns
    -------
    ndarray, shape (n_new, k)

    Raises
    ------
    SurveyError
        A category not seen at fit time (the message names the column and rows).
    ConfigError
        Missing columns, or a result from another model.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"q1": list("aabb" * 10), "q2": list("xxyy" * 10), "q3": list("uuvv" * 10)})
    >>> res = fit_lca(df, 2, n_init=3, random_seed=0)
    >>> predict_proba(res, df.head(2)).shape
    (2, 2)
    """
    _check_result(result)
    codes = encode_new_indicators(result, data)
    logW, logpi, n_cat = _log_probs_of(result)
    X, _ = onehot(codes, n_cat)
    _, z = _e_step(OneHot(X), logW[None], logpi[None])
    return z[0].T


def log_likelihood(result: SegmentationResult, data: Any, *, per_respondent: bool = False) -> Any:
    """Log-likelihood of data under a fitted latent class model (missing indicators drop out).

    Parameters
    ----------
    result : SegmentationResult
        A result of :func:`fit_lca`.
    data : DataFrame or array-like, shape (n, J)
    per_respondent : bool, default False
        Return the (n,) vector of per-respondent log-likelihoods instead of the total.

    Returns
    -------
    float or ndarray, shape (n,)

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"q1": list("aabb" * 10), "q2": list("xxyy" * 10), "q3": list("uuvv" * 10)})
    >>> res = fit_lca(df, 2, n_init=3, random_seed=0)
    >>> bool(abs(log_likelihood(res, df) - res.criteria["loglik"]) < 1e-8)
    True
    """
    _check_result(result)
    codes = encode_new_indicators(result, data)
    logW, logpi, n_cat = _log_probs_of(result)
    X, _ = onehot(codes, n_cat)
    a = X @ logW.T + logpi
    mx = a.max(axis=1, keepdims=True)
    ll = (mx + np.log(np.exp(a - mx).sum(axis=1, keepdims=True)))[:, 0]
    return ll if per_respondent else float(ll.sum())


# ====================================================================== covariates on membership
def covariate_measurement(result: SegmentationResult, data: Any, rows: np.ndarray | None = None) -> Any:
    """The measurement part of a fitted latent class model (nominal or binary indicators), for
    the one-step covariate EM (:func:`latentseg.models._mnlogit.fit_concomitant`).

    Parameters: per segment and item, the log-odds of each category against the segment's most
    likely category at the start (analytic scores); the M-step is the weighted closed form (with
    the fit's Dirichlet ``prior``). Probabilities at 0 stay there (boundary estimates carry no
    information and are held fixed in the standard errors).

    Parameters
    ----------
    result : SegmentationResult
        From :func:`fit_lca`.
    data : DataFrame or array-like, shape (n, J)
        The indicators it was fitted on.
    rows : ndarray of int, optional
        Use only these rows.

    Returns
    -------
    MeasurementModel

    Ordinal models: segment locations and the free thresholds of each item (the last is minus
    the sum of the others), numeric scores, the M-step a few of the fit's damped Newton steps.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"q1": list("aabb" * 10), "q2": list("xxyy" * 10), "q3": list("uuvv" * 10)})
    >>> mm = covariate_measurement(fit_lca(df, 2, n_init=3, random_seed=0), df)
    >>> mm.log_density(mm.theta).shape, mm.theta.size
    ((40, 2), 6)
    """
    from latentseg.models._mnlogit import MeasurementModel

    _check_result(result)
    if result.settings.get("measurement") == "ordinal":
        return _ordinal_covariate_measurement(result, data, rows)
    codes = encode_new_indicators(result, data)
    if rows is not None:
        codes = codes[rows]
    logW0, _, n_cat = _log_probs_of(result)
    k, D = logW0.shape
    J = len(n_cat)
    X, offsets = onehot(codes, n_cat)
    obs = (codes >= 0).astype(float)
    col_item = np.repeat(np.arange(J), n_cat)
    col_ncat = np.repeat(n_cat, n_cat).astype(float)
    prior = float(result.settings.get("prior", 0.0))
    ref = np.empty((k, J), dtype=np.int64)
    for j, (o, c) in enumerate(zip(offsets, n_cat)):
        ref[:, j] = o + np.argmax(logW0[:, o : o + c], axis=1)
    free = np.ones((k, D), dtype=bool)
    free[np.arange(k)[:, None], ref] = False
    P = int(free.sum())

    def logits(t: np.ndarray) -> np.ndarray:
        a = np.zeros((k, D))
        a[free] = t
        return a

    def log_probs(t: np.ndarray) -> np.ndarray:
        a = logits(t)
        mx = np.maximum.reduceat(a, offsets, axis=1)
        lse = mx + np.log(np.add.reduceat(np.exp(a - mx[:, col_item]), offsets, axis=1))
        return a - lse[:, col_item]

    def to_theta(logW: np.ndarray) -> np.ndarray:
        return (logW - logW[np.arange(k)[:, None], ref][:, col_item])[free]

    def log_density(t: np.ndarray) -> np.ndarray:
        return X @ log_probs(t).T

    cidx = [np.flatnonzero(free[c]) for c in range(k)]
    starts = np.r_[0, np.cumsum([len(i) for i in cidx])]

    def scores(t: np.ndarray) -> np.ndarray:
        p = np.exp(log_probs(t))
        out = np.zeros((X.shape[0], k, P))
        for c in range(k):
            cols = cidx[c]
            out[:, c, starts[c] : starts[c + 1]] = X[:, cols] - obs[:, col_item[cols]] * p[c, cols]
        return out

    def m_step(R: np.ndarray, t: np.ndarray) -> np.ndarray:
        lw, _ = _nominal_m_step(OneHot(X), np.ascontiguousarray(R.T)[None], offsets, col_item, col_ncat, prior)
        return to_theta(lw[0])

    cats = result.extras["categories"]

    def unpack(t: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
        probs = flat_to_padded(np.exp(log_probs(t)), n_cat, offsets)
        probs = np.where(probs < 1e-300, 0.0, probs)
        centers, table = _item_table(result, cats, probs)
        return {"probs": probs}, {}, centers, {"item_probs": table}

    n_free = count_free_params(k, n_cat, str(result.settings.get("measurement", "categorical"))) - (k - 1)
    return MeasurementModel(to_theta(logW0), log_density, m_step, scores, n_free, unpack)



def _item_table(result: SegmentationResult, cats: pd.DataFrame, probs: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Segment centers (expected category value per item) and the long item-probability table
    (sorted by segment) of padded category probabilities ``probs`` (k, J, C), for the covariate
    measurement models."""
    k, J = probs.shape[:2]
    vals = np.zeros((J, probs.shape[2]))
    rows_ = []
    for j, item in enumerate(result.feature_names):
        sub = cats[cats["item"] == item].sort_values("code")
        v = sub["value"].to_numpy(dtype=float)
        vals[j, : len(v)] = v if np.all(np.isfinite(v)) else np.arange(len(v))
        for c in range(k):
            for m, key in enumerate(sub["category"]):
                rows_.append((c + 1, item, key, float(probs[c, j, m])))
    centers = np.nansum(probs * vals[None], axis=2)
    table = pd.DataFrame(rows_, columns=["segment", "item", "category", "probability"])
    return centers, table.sort_values("segment", kind="stable").reset_index(drop=True)

def _ordinal_covariate_measurement(result: SegmentationResult, data: Any, rows: np.ndarray | None) -> Any:
    """:func:`covariate_measurement` for the ordinal (adjacent-category logit) model."""
    from latentseg.models._mnlogit import MeasurementModel

    codes = encode_new_indicators(result, data)
    if rows is not None:
        codes = codes[rows]
    probs0 = np.asarray(result.params["probs"], dtype=float)
    n_cat = (~np.isnan(probs0[0])).sum(axis=1)
    k, J = probs0.shape[:2]
    cmax = int(n_cat.max())
    X, offsets = onehot(codes, n_cat)
    valid = np.arange(cmax)[None, :] < n_cat[:, None]
    tvalid = valid[:, 1:]
    vpad = valid[:, None, :].astype(float)
    prior = float(result.settings.get("prior", 0.0))
    # free thresholds: the first C_j - 2 of each item (the last is minus their sum)
    free_t = tvalid.copy()
    free_t[np.arange(J), n_cat - 2] = False
    nb = J * k

    def split(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        beta = t[:nb].reshape(J, k)
        tau = np.zeros((J, cmax - 1))
        tau[free_t] = t[nb:]
        tau[np.arange(J), n_cat - 2] = -(tau * free_t).sum(axis=1)
        return beta, tau

    def pack(beta: np.ndarray, tau: np.ndarray) -> np.ndarray:
        return np.r_[beta.ravel(), tau[free_t]]

    def log_w(t: np.ndarray) -> np.ndarray:
        beta, tau = split(t)
        return _ordinal_to_flat(_ordinal_logp(beta, tau, valid)[None], n_cat)[0]  # (k, D)

    def log_density(t: np.ndarray) -> np.ndarray:
        return X @ np.maximum(log_w(t), _LOG_FLOOR).T

    def m_step(R: np.ndarray, t: np.ndarray) -> np.ndarray:
        beta, tau = split(t)
        N = _pad_counts((R.T @ X)[None], n_cat, offsets) + prior * vpad
        b, tt = _ordinal_newton(N, beta[None], tau[None], valid, steps=3)
        return pack(b[0], tt[0])

    cats = result.extras["categories"]

    def unpack(t: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
        beta, tau = split(t)
        probs = flat_to_padded(np.exp(log_w(t)), n_cat, offsets)
        centers, table = _item_table(result, cats, probs)
        thr = tau.copy()
        thr[~tvalid] = np.nan
        return ({"probs": probs, "locations": beta.T.copy()}, {"thresholds": thr}, centers,
                {"item_probs": table.sort_values("segment", kind="stable").reset_index(drop=True)})

    beta0 = np.asarray(result.params["locations"], dtype=float).T  # (J, k)
    tau0 = np.nan_to_num(np.asarray(result.shared_params["thresholds"], dtype=float))
    n_free = count_free_params(k, n_cat, "ordinal") - (k - 1)
    return MeasurementModel(pack(beta0, tau0), log_density, m_step, None, n_free, unpack)
