"""Gaussian mixtures (latent profile models) by EM, with mclust-style covariance structures.

Our own vectorised numpy EM (not scikit-learn's). Structures, named as in mclust
(volume / shape / orientation, ``E`` equal across segments, ``V`` varying, ``I`` identity):

========  ===================================  =================================
name      covariance of segment k              free covariance parameters
========  ===================================  =================================
``EII``   ``s2 I`` (spherical, equal)           1
``VII``   ``s2_k I`` (spherical, varying)       k
``EEI``   ``diag(v)`` (diagonal, equal)         d
``VVI``   ``diag(v_k)`` (diagonal, varying)     k d
``EEE``   ``S`` (full, equal / "tied")          d (d + 1) / 2
``VVV``   ``S_k`` (full, varying)               k d (d + 1) / 2
========  ===================================  =================================

plus ``k d`` means and ``k - 1`` mixing weights. For one variable, ``E`` (equal variance) and
``V`` (unequal variances) are accepted, and scikit-learn's names map as ``spherical -> VII``,
``diag -> VVI``, ``tied -> EEE``, ``full -> VVV``.

Missing values are handled exactly: a respondent's likelihood is the Gaussian density of the
coordinates it observed (the marginal of the segment's Gaussian). For the diagonal and spherical
structures the M-step given the responsibilities is then available in closed form (weighted means
and variances over the observed cells). For the full structures (EEE, VVV) EM also treats the
unobserved coordinates as missing data (conditional means and covariances given the observed
ones, computed once per missingness pattern), which maximises the same observed-data likelihood.

Starts are k-means++ seedings and random partitions. Every start runs to convergence; the
replication report (how many starts reached the best log-likelihood, as Mplus reports) and each
start's final log-likelihood go into the diagnostics. Starts that end in a degenerate solution
(a variance collapsed onto the floor ``reg_covar``, where the likelihood is unbounded, or an empty
segment) are set aside when choosing the best start, and are counted; if every start is
degenerate the result says so (``converged`` False, a :class:`ConvergenceWarning` with advice).

Speed. For the diagonal and spherical structures all starts run together: the E-step is one
matrix product between the stacked coefficient rows of every start and segment and the design
``[x^2; x; 1]`` (respondents on the contiguous axis), followed by one ``exp`` per cell, and the
M-step sums are one more matrix product; respondents are processed in chunks, so memory stays
bounded. Steps are adaptively over-relaxed (Salakhutdinov & Roweis 2003): a step that would lower
the log-likelihood is replaced by the plain EM step, so the kept log-likelihoods never decrease.
The full structures run plain EM one start at a time; with missing values they loop over
missingness patterns (not respondents), so many distinct patterns make them slower.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentseg._stats import check_int
from latentseg.errors import ConfigError, ConvergenceWarning, FitError
from latentseg.models._criteria import information_criteria
from latentseg.models._em import (
    check_k,
    kmeanspp_partition,
    normalize_log,
    numeric_matrix,
    provenance,
    random_partition,
    replication_report,
    single_threaded,
    start_generators,
)
from latentseg.result import SegmentationResult
from latentseg.models.families import GMM

__all__ = ["fit_gmm", "predict_proba", "log_likelihood", "n_free_params", "STRUCTURES", "resolve_covariance"]

_LOG_2PI = math.log(2.0 * math.pi)

#: structure -> (family, varies by segment, spherical)
STRUCTURES: dict[str, tuple[str, bool, bool]] = {
    "EII": ("diag", False, True),
    "VII": ("diag", True, True),
    "EEI": ("diag", False, False),
    "VVI": ("diag", True, False),
    "EEE": ("full", False, False),
    "VVV": ("full", True, False),
}
#: the other spellings of a structure (scikit-learn's names; "diag-equal" for EEI), lower case
_ALIASES = {"spherical": "VII", "diag": "VVI", "diagonal": "VVI", "diag-equal": "EEI", "tied": "EEE", "full": "VVV"}
_INITS = ("kmeans++", "random", "both")

#: a variance below this fraction of its column's variance (above ``reg_covar``) has collapsed
COLLAPSE_FRACTION = 1e-6
#: a segment holding less than this share of respondents is reported as near-empty
SMALL_SHARE = 0.01


def resolve_covariance(covariance: str, d: int) -> str:
    """The mclust name of a covariance structure given as mclust, univariate or scikit-learn name.

    Parameters
    ----------
    covariance : str
        ``EII, VII, EEI, VVI, EEE, VVV``; ``E`` / ``V`` (one variable only); or
        ``spherical, diag, tied, full`` (scikit-learn) and ``diag-equal`` (EEI). The one table of
        spellings: the Bayesian mixture reads its ``covariance`` through this function too.
    d : int
        Number of variables.

    Returns
    -------
    str

    Examples
    --------
    >>> resolve_covariance("diag", 3), resolve_covariance("V", 1), resolve_covariance("E", 1)
    ('VVI', 'VVI', 'EEI')
    """
    name = str(covariance).strip()
    if name.upper() in ("E", "V"):
        if d != 1:
            raise ConfigError(
                f"Covariance {name!r} is for one variable; with {d} variables use one of "
                "EII, VII, EEI, VVI, EEE, VVV."
            )
        return "EEI" if name.upper() == "E" else "VVI"
    if name.lower() in _ALIASES:
        return _ALIASES[name.lower()]
    if name.upper() in STRUCTURES:
        return name.upper()
    raise ConfigError(
        f"Unknown covariance structure {covariance!r}; choose one of EII, VII, EEI, VVI, EEE, VVV "
        "(or spherical, diag, tied, full; E or V for one variable), or auto (EEI or VVI by BIC)."
    )


def n_free_params(structure: str, k: int, d: int) -> int:
    """Number of free parameters of a Gaussian mixture (means + weights + covariance).

    Parameters
    ----------
    structure : str
        An mclust name (see :func:`resolve_covariance`).
    k, d : int
        Segments and variables.

    Returns
    -------
    int
        ``k d + (k - 1) + c`` with ``c`` = 1 (EII), k (VII), d (EEI), k d (VVI), d(d+1)/2 (EEE),
        k d(d+1)/2 (VVV).

    Examples
    --------
    >>> n_free_params("VVV", 2, 2), n_free_params("EEI", 3, 4), n_free_params("V", 3, 1)
    (11, 18, 8)
    """
    s = resolve_covariance(structure, d)
    cov = {
        "EII": 1,
        "VII": k,
        "EEI": d,
        "VVI": k * d,
        "EEE": d * (d + 1) // 2,
        "VVV": k * d * (d + 1) // 2,
    }[s]
    return k * d + (k - 1) + cov


# ============================================================================ start bookkeeping
@dataclass
class _Start:
    """Outcome of one EM start (parameters on the centred data)."""

    init: str
    loglik: float
    n_iter: int
    converged: bool
    weights: np.ndarray  # (k,)
    means: np.ndarray  # (k, d)
    cov: np.ndarray  # diag: (k, d) variances; full: (k, d, d)
    degenerate: list[str]


# ============================================================================ diagonal family
def _design(Xc: np.ndarray, obs: np.ndarray | None) -> np.ndarray:
    """Features of every respondent, one column each, whose products with coefficient rows give
    log densities (E-step) and, weighted by responsibilities, the M-step sums.

    Without missing values the rows are ``[x^2; x; 1]``; with missing values ``[x^2; x; m; 1]``
    (x set to 0 where missing, m the observed indicator). Shape (2d + 1, n) or (3d + 1, n):
    respondents along the last, contiguous axis, so every reduction over segments runs along long
    rows.
    """
    n, d = Xc.shape
    XT = Xc.T
    if obs is None:
        FT = np.empty((2 * d + 1, n))
        np.multiply(XT, XT, out=FT[:d])
        FT[d : 2 * d] = XT
        FT[2 * d] = 1.0
    else:
        XzT = np.where(obs.T, XT, 0.0)
        FT = np.empty((3 * d + 1, n))
        np.multiply(XzT, XzT, out=FT[:d])
        FT[d : 2 * d] = XzT
        FT[2 * d : 3 * d] = obs.T
        FT[3 * d] = 1.0
    return FT


def _diag_coefficients(means: np.ndarray, var: np.ndarray, logw: np.ndarray, missing: bool) -> np.ndarray:
    """Coefficient rows for :func:`_design`: ``W @ FT`` gives log w_k + log N(x_obs | mu_k, var_k).

    means, var: (..., k, d); logw: (..., k). Returns (..., k, p).
    """
    inv = 1.0 / var
    c = -0.5 * (_LOG_2PI + np.log(var) + means * means * inv)  # per-cell constant (..., k, d)
    parts = [-0.5 * inv, means * inv]
    if missing:
        parts.append(c)
        parts.append(logw[..., None])
    else:
        parts.append((c.sum(axis=-1) + logw)[..., None])
    return np.concatenate(parts, axis=-1)


def _diag_mstep(
    T: np.ndarray, d: int, n: int, structure: str, reg_covar: float, missing: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form M-step from the sums ``T = R @ FT.T`` (shape (S, k, p)).

    Returns weights (S, k), means (S, k, d), variances (S, k, d).
    """
    eps = 10 * np.finfo(float).eps
    S2 = T[..., :d]
    S1 = T[..., d : 2 * d]
    Nk = T[..., -1] + eps  # (S, k)
    S0 = (T[..., 2 * d : 3 * d] if missing else np.broadcast_to(Nk[..., None], S1.shape)) + eps
    means = S1 / S0
    dev = np.maximum(S2 - S1 * means, 0.0)  # sum r m (x - mu)^2
    _, vary, spherical = STRUCTURES[structure]
    if vary and not spherical:  # VVI
        var = dev / S0
    elif vary:  # VII
        var = np.broadcast_to((dev.sum(-1) / S0.sum(-1))[..., None], dev.shape)
    elif not spherical:  # EEI
        var = np.broadcast_to((dev.sum(-2) / S0.sum(-2))[..., None, :], dev.shape)
    else:  # EII
        var = np.broadcast_to((dev.sum((-1, -2)) / S0.sum((-1, -2)))[..., None, None], dev.shape)
    var = var + reg_covar
    weights = Nk / n
    return weights, means, var


#: Over-relaxation of the diagonal EM: after every accepted step the step length grows by this
#: factor (up to ``_ETA_MAX``); a step that lowers the log-likelihood is rejected and replaced by
#: the plain EM step, which never does (Salakhutdinov & Roweis 2003, adaptive over-relaxed EM).
_ETA_GROWTH = 1.5
_ETA_MAX = 16.0


def _relax(
    w: np.ndarray, mu: np.ndarray, var: np.ndarray, mw: np.ndarray, mmu: np.ndarray, mvar: np.ndarray,
    eta: np.ndarray, reg_covar: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step from (w, mu, var) past the EM update (mw, mmu, mvar) by the factor eta (per start),
    on log weights, means and log variances; eta = 1 gives the EM update itself."""
    e = eta[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lw = np.log(w) + e * (np.log(mw) - np.log(w))
    lw = np.where(np.isfinite(lw), lw, np.log(mw))
    lw -= lw.max(axis=1, keepdims=True)
    nw = np.exp(lw)
    nw /= nw.sum(axis=1, keepdims=True)
    e3 = eta[:, None, None]
    nmu = mu + e3 * (mmu - mu)
    nvar = np.maximum(np.exp(np.log(var) + e3 * (np.log(mvar) - np.log(var))), reg_covar)
    return nw, nmu, nvar


def _diag_batch_em(
    FT: np.ndarray,
    d: int,
    structure: str,
    init_resp: Sequence[Callable[[], np.ndarray]],
    *,
    max_iter: int,
    tol: float,
    reg_covar: float,
    missing: bool,
    chunk_cells: int = 4_000_000,
) -> list[tuple[float, int, bool, np.ndarray, np.ndarray, np.ndarray]]:
    """Run EM for every start at once (the starts are stacked along the segment axis).

    One pass over the data per iteration computes, for all active starts, the log-likelihood at
    the current parameters and the sums the M-step needs: two matrix products with the design
    ``FT`` (shape (p, n)) and one ``exp`` per start, segment and respondent. Respondents are
    processed in chunks so that memory stays bounded for any n.

    Steps are over-relaxed (see ``_ETA_GROWTH``): a step is kept only if the log-likelihood does
    not fall, otherwise the plain EM step is taken (and always kept), so the kept log-likelihoods
    behave as EM's: they never decrease except through the ``reg_covar`` floor, which also moves
    EM's own fixed point off the exact maximum. A start stops after two kept steps in a row each gaining at most
    ``tol * n`` (``tol`` per respondent); its parameters are then the ones the reported
    log-likelihood was computed at.

    ``init_resp`` holds one function per start returning its initial responsibilities (n, k), so
    that only one start's partition is in memory at a time.

    Returns one tuple per start: (loglik, n_iter, converged, weights, means, variances).
    """
    n = FT.shape[1]
    S = len(init_resp)
    T0 = np.stack([(FT @ make()).T for make in init_resp])  # (S, k, p); one partition at a time
    k = T0.shape[1]
    w, mu, var = (np.array(a, dtype=float) for a in _diag_mstep(T0, d, n, structure, reg_covar, missing))
    # accepted parameters, their log-likelihood and their EM update
    acc_w, acc_mu, acc_var = w.copy(), mu.copy(), var.copy()
    em_w, em_mu, em_var = w.copy(), mu.copy(), var.copy()
    acc_ll = np.full(S, -np.inf)
    eta = np.ones(S)
    plain = np.zeros(S, dtype=bool)  # the parameters evaluated next are a plain EM step
    small = np.zeros(S, dtype=int)
    n_iter = np.zeros(S, dtype=int)
    conv = np.zeros(S, dtype=bool)
    active = np.arange(S)
    step = max(1, chunk_cells // (S * k))
    buf = np.empty((S * k, min(step, n)))
    for it in range(1, max_iter + 1):
        A = active.size
        with np.errstate(divide="ignore"):
            logw = np.log(w[active])
        W = _diag_coefficients(mu[active], var[active], logw, missing).reshape(A * k, -1)
        ll = np.zeros(A)
        T = np.zeros((A * k, FT.shape[0]))
        for lo in range(0, n, step):
            Fc = FT[:, lo : lo + step]
            L = np.matmul(W, Fc, out=buf[: A * k, : Fc.shape[1]])
            _, llc = normalize_log(L.reshape(A, k, -1), out=L.reshape(A, k, -1), axis=1)
            ll += llc.sum(axis=1)
            T += L @ Fc.T
        n_iter[active] = it
        gain = ll - acc_ll[active]
        # keep a step that is not worse (up to rounding), and always keep a plain EM step: it can
        # only be worse through the reg_covar floor, where EM's fixed point is the reference
        ok = (gain >= -1e-9 * (1.0 + np.abs(ll))) | plain[active]
        acc = active[ok]
        acc_w[acc], acc_mu[acc], acc_var[acc] = w[acc], mu[acc], var[acc]
        acc_ll[acc] = ll[ok]
        tiny = ok & (np.abs(gain) <= tol * n)
        small[active] = np.where(tiny, small[active] + 1, np.where(ok, 0, small[active]))
        done = small[active] >= 2
        if it == max_iter:
            conv[active] = done
            break
        conv[active[done]] = True
        keep = ~done
        if not keep.any():
            break
        # EM update from the accepted parameters (sums computed at them this pass)
        kept_ok = ok & keep
        if kept_ok.any():
            nw, nmu, nvar = _diag_mstep(T.reshape(A, k, -1)[kept_ok], d, n, structure, reg_covar, missing)
            idx = active[kept_ok]
            em_w[idx], em_mu[idx], em_var[idx] = nw, nmu, nvar
        idx_ok = active[kept_ok]
        idx_bad = active[~ok & keep]
        eta[idx_bad] = 1.0
        w[idx_bad], mu[idx_bad], var[idx_bad] = em_w[idx_bad], em_mu[idx_bad], em_var[idx_bad]
        plain[idx_bad] = True
        plain[idx_ok] = False
        if idx_ok.size:
            w[idx_ok], mu[idx_ok], var[idx_ok] = _relax(
                acc_w[idx_ok], acc_mu[idx_ok], acc_var[idx_ok], em_w[idx_ok], em_mu[idx_ok], em_var[idx_ok],
                eta[idx_ok], reg_covar,
            )
            eta[idx_ok] = np.minimum(eta[idx_ok] * _ETA_GROWTH, _ETA_MAX)
        active = active[keep]
    return [
        (float(acc_ll[s]), int(n_iter[s]), bool(conv[s]), acc_w[s].copy(), acc_mu[s].copy(), acc_var[s].copy())
        for s in range(S)
    ]


def _diag_log_joint(X: np.ndarray, weights: np.ndarray, means: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log w_k + log N(x_obs | mu_k, diag var_k) for every row, shape (n, k). NaN = missing."""
    obs = ~np.isnan(X)
    missing = not obs.all()
    FT = _design(X, obs if missing else None)
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    W = _diag_coefficients(means, var, logw, missing)
    return (W @ FT).T


# ============================================================================ full family
class _Patterns:
    """Respondents grouped by which coordinates they observed."""

    def __init__(self, obs: np.ndarray) -> None:
        n, d = obs.shape
        if obs.all():
            self.groups = [(np.arange(n), np.arange(d), np.arange(0))]
        else:
            keys, inverse = np.unique(obs, axis=0, return_inverse=True)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(keys.shape[0] + 1))
            self.groups = [
                (order[bounds[g] : bounds[g + 1]], np.flatnonzero(keys[g]), np.flatnonzero(~keys[g]))
                for g in range(keys.shape[0])
            ]

    def __len__(self) -> int:
        return len(self.groups)


def _inv_chol(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse lower Cholesky factors and log determinants of a stack of covariances (k, d, d)."""
    chol = np.linalg.cholesky(covs)
    eye = np.broadcast_to(np.eye(covs.shape[-1]), covs.shape)
    inv = np.linalg.solve(chol, eye)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    return inv, logdet


def _full_log_joint(
    X: np.ndarray, patterns: _Patterns, weights: np.ndarray, means: np.ndarray, covs: np.ndarray
) -> np.ndarray:
    """log w_k + log N(x_obs | mu_k[obs], S_k[obs, obs]), shape (n, k)."""
    n = X.shape[0]
    k = weights.shape[0]
    L = np.empty((n, k))
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    for rows, o, _ in patterns.groups:
        Xo = X[np.ix_(rows, o)] if o.size < X.shape[1] else (X if rows.size == n else X[rows])
        inv, logdet = _inv_chol(covs[:, o][:, :, o])
        const = logw - 0.5 * (o.size * _LOG_2PI + logdet)
        for j in range(k):
            sol = (Xo - means[j, o]) @ inv[j].T
            L[rows, j] = const[j] - 0.5 * np.einsum("ij,ij->i", sol, sol)
    return L


def _full_mstep(
    X: np.ndarray,
    patterns: _Patterns,
    R: np.ndarray,
    means: np.ndarray,
    covs: np.ndarray,
    tied: bool,
    reg_covar: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM M-step for full covariances; unobserved coordinates enter through their conditional
    mean and covariance given the observed ones (old parameters)."""
    n, d = X.shape
    k = R.shape[1]
    eps = 10 * np.finfo(float).eps
    Nk = R.sum(axis=0) + eps
    Sx = np.zeros((k, d))
    Sxx = np.zeros((k, d, d))
    for rows, o, m in patterns.groups:
        Rg = R if rows.size == n else R[rows]
        if m.size == 0:
            Xg = X if rows.size == n else X[rows]
            Sx += Rg.T @ Xg
            for j in range(k):
                Sxx[j] += (Xg * Rg[:, j : j + 1]).T @ Xg
            continue
        Xo = X[np.ix_(rows, o)]
        for j in range(k):
            if o.size:
                B = np.linalg.solve(covs[j][np.ix_(o, o)], covs[j][np.ix_(o, m)])  # (|o|, |m|)
                xm = means[j, m] + (Xo - means[j, o]) @ B
                C = covs[j][np.ix_(m, m)] - covs[j][np.ix_(m, o)] @ B
            else:
                xm = np.broadcast_to(means[j, m], (rows.size, m.size))
                C = covs[j][np.ix_(m, m)]
            xhat = np.empty((rows.size, d))
            xhat[:, o] = Xo
            xhat[:, m] = xm
            r = Rg[:, j]
            Sx[j] += r @ xhat
            Sxx[j] += (xhat * r[:, None]).T @ xhat
            Sxx[j][np.ix_(m, m)] += r.sum() * C
    new_means = Sx / Nk[:, None]
    scatter = Sxx - Nk[:, None, None] * np.einsum("ki,kj->kij", new_means, new_means)
    eye = np.eye(d) * reg_covar
    if tied:
        shared = scatter.sum(axis=0) / n
        shared = 0.5 * (shared + shared.T) + eye
        new_covs = np.broadcast_to(shared, (k, d, d)).copy()
    else:
        new_covs = scatter / Nk[:, None, None]
        new_covs = 0.5 * (new_covs + new_covs.transpose(0, 2, 1)) + eye
    return Nk / n, new_means, new_covs


def _full_em(
    X: np.ndarray,
    patterns: _Patterns,
    structure: str,
    R0: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    reg_covar: float,
) -> tuple[float, int, bool, np.ndarray, np.ndarray, np.ndarray]:
    """EM for one start of a full-covariance structure (EEE / VVV)."""
    n, d = X.shape
    k = R0.shape[1]
    tied = not STRUCTURES[structure][1]
    # initial parameters from the partition (complete-case means for unobserved cells)
    Xf = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
    w, mu, cov = _full_mstep(Xf, _Patterns(np.ones_like(X, dtype=bool)), R0, None, None, tied, reg_covar)  # type: ignore[arg-type]
    prev = -np.inf
    ll = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            L = _full_log_joint(X, patterns, w, mu, cov)
        except np.linalg.LinAlgError:
            return (float("nan"), it, False, w, mu, cov)
        R, llr = normalize_log(L, out=L)
        ll = float(llr.sum())
        if abs(ll - prev) <= tol * n:
            converged = True
            break
        if it == max_iter:
            break
        prev = ll
        try:
            w, mu, cov = _full_mstep(X, patterns, R, mu, cov, tied, reg_covar)
        except np.linalg.LinAlgError:
            return (float("nan"), it, False, w, mu, cov)
    return (ll, it, converged, w, mu, cov)


# ============================================================================ degeneracy
def _degeneracy(
    start_cov: np.ndarray, weights: np.ndarray, family: str, col_var: np.ndarray, reg_covar: float, n: int
) -> list[str]:
    """Reasons a solution is degenerate: a collapsed variance or an empty segment (0-based)."""
    reasons = []
    for j in range(weights.size):
        if weights[j] * n < 1.0:
            reasons.append(f"empty:{j}")
            continue
        if family == "diag":
            excess = start_cov[j] - reg_covar
            if (excess <= COLLAPSE_FRACTION * col_var).any():
                reasons.append(f"collapse:{j}")
        else:
            eig = np.linalg.eigvalsh(start_cov[j])
            if eig.min() - reg_covar <= COLLAPSE_FRACTION * col_var.min():
                reasons.append(f"collapse:{j}")
    return reasons


#: ``covariance="auto"`` chooses between these structures by BIC (the first on a tie)
AUTO_STRUCTURES = ("EEI", "VVI")


def _fit_auto(data: Any, k: int, **options: Any) -> SegmentationResult:
    """``fit_gmm(covariance="auto")``: both diagonal structures fitted with the same starts, the
    lower BIC kept; only the kept fit's warnings are passed on."""
    import dataclasses

    fits = {}
    for structure in AUTO_STRUCTURES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fits[structure] = (fit_gmm(data, k, covariance=structure, **options), caught)
    bic = {s: float(fits[s][0].criteria["bic"]) for s in AUTO_STRUCTURES}
    best = min(AUTO_STRUCTURES, key=lambda s: bic[s])
    result, caught = fits[best]
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    settings = {**result.settings, "covariance_requested": "auto", "covariance_bic": bic}
    return dataclasses.replace(result, settings=settings)


# ============================================================================ public API
def fit_gmm(
    data: Any,
    k: int,
    *,
    covariance: str = "VVI",
    n_init: int = 10,
    init: str = "both",
    max_iter: int = 500,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    random_seed: int | None = None,
) -> SegmentationResult:
    """Fit a Gaussian mixture with ``k`` segments by EM from several starts.

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        Numeric; NaN marks a missing value (each respondent's likelihood uses the values it has).
        A DataFrame's columns name the features and its index the respondents.
    k : int
        Number of segments (1 to the number of distinct respondents).
    covariance : str, default "VVI"
        mclust structure: ``EII, VII, EEI, VVI, EEE, VVV``; ``E`` / ``V`` for one variable;
        scikit-learn's ``spherical, diag, tied, full`` are accepted. ``"auto"``: EEI or VVI,
        whichever has the lower BIC (EEI on a tie), as mclust chooses a structure; both BICs in
        ``settings["covariance_bic"]``, the chosen one in ``settings["covariance"]``.
    n_init : int, default 10
        Number of starts; each runs to convergence.
    init : {"both", "kmeans++", "random"}, default "both"
        Starting partitions: nearest k-means++ seed, a uniformly random partition, or alternating
        (even starts k-means++, odd starts random).
    max_iter : int, default 500
        EM iterations per start.
    tol : float, default 1e-6
        Convergence per respondent: a start has converged when its log-likelihood gains at most
        ``tol * n`` in an iteration (scikit-learn's ``tol`` has the same meaning, default 1e-3);
        the accelerated diagonal EM asks for two such iterations in a row. The default keeps the
        reported log-likelihoods accurate to well within the 0.01 used by the replication report
        for surveys up to about 10^4 respondents.
    reg_covar : float, default 1e-6
        Added to every variance (diagonal of every covariance) in each M-step, in data units.
    random_seed : int, optional
        The one seed; same seed, same result bit for bit.

    Returns
    -------
    SegmentationResult
        ``model="gmm"``; ``params``: ``weights (k,)``, ``means (k, d)`` and ``variances (k, d)``
        (VII, VVI) or ``covariances (k, d, d)`` (VVV); ``shared_params``: ``variances (d,)``
        (EII, EEI) or ``covariance (d, d)`` (EEE). ``criteria`` from
        :func:`latentseg.models._criteria.information_criteria`; ``diagnostics`` with
        ``converged, warnings, n_iter, n_starts, n_best, share_best, start_logliks,
        start_converged, start_degenerate``.

    Raises
    ------
    ConfigError
        Bad settings or data (see :func:`latentseg.models._em.numeric_matrix`).
    FitError
        No start produced a finite log-likelihood.

    Warns
    -----
    ConvergenceWarning
        The chosen solution did not converge, is degenerate (a collapsed variance, an empty
        segment) or has a near-empty segment; the same text is in ``diagnostics["warnings"]``.

    Notes
    -----
    BIC = -2 log L + p ln n (lower is better; mclust prints the negative).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(6, 1, (40, 2))]
    >>> r = fit_gmm(X, 2, covariance="VVI", random_seed=1)
    >>> r.shares.round(2).tolist(), r.criteria["n_params"]
    ([0.6, 0.4], 9)
    """
    if str(covariance).strip().lower() == "auto":
        return _fit_auto(data, k, n_init=n_init, init=init, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                         random_seed=random_seed)
    X, names, ids = numeric_matrix(data, allow_missing=True, model=GMM)
    n, d = X.shape
    k, structure, n_init, max_iter = _checked_settings(X, k, covariance, n_init, init, max_iter, tol, reg_covar)
    obs = ~np.isnan(X)
    starts, center = _run_starts(X, obs, k, structure, n_init, init, max_iter, tol, reg_covar, random_seed)
    rep, best = _best_start(starts, structure, k)
    z, loglik, params, shared = _final_fit(X, obs, best, center, structure)
    means, weights = params["means"], best.weights
    criteria = information_criteria(loglik, n_free_params(structure, k, d), n, z)

    # warnings with advice (indices are canonical after ordering by share)
    order = np.lexsort((means[:, 0], -weights))
    canon = {int(j): pos + 1 for pos, j in enumerate(order)}
    messages, converged = _advice(best, starts, canon, structure, k, max_iter)
    if messages:
        warnings.warn(" ".join(messages), ConvergenceWarning, stacklevel=2)

    settings = {
        "covariance": structure,
        "covariance_requested": str(covariance),
        "n_init": n_init,
        "init": init,
        "max_iter": max_iter,
        "tol": float(tol),
        "reg_covar": float(reg_covar),
    }
    return SegmentationResult.from_memberships(
        GMM,
        z,
        centers=means,
        feature_names=names,
        respondent_ids=ids,
        shares=weights,
        criteria=criteria,
        diagnostics=_diagnostics(best, starts, rep, loglik, messages, converged, obs),
        provenance=provenance(random_seed, X, config={"model": GMM, "k": k, **settings}),
        settings=settings,
        params=params,
        shared_params=shared,
    )


def _checked_settings(
    X: np.ndarray, k: Any, covariance: str, n_init: Any, init: str, max_iter: Any, tol: Any, reg_covar: Any
) -> tuple[int, str, int, int]:
    """``k``, the mclust structure, ``n_init`` and ``max_iter`` after checking every setting."""
    k = check_k(k, X, GMM)
    structure = resolve_covariance(covariance, X.shape[1])
    n_init = check_int(n_init, "n_init", low=1)
    max_iter = check_int(max_iter, "max_iter", low=1)
    if init not in _INITS:
        raise ConfigError(f"init must be one of {', '.join(_INITS)}; got {init!r}.")
    for name, val in (("tol", tol), ("reg_covar", reg_covar)):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
            raise ConfigError(f"{name} must be a number >= 0; got {val!r}.")
    return k, structure, n_init, max_iter


def _start_partitions(
    Xc: np.ndarray, k: int, gens: Sequence[np.random.Generator], kinds: Sequence[str]
) -> list[Callable[[], np.ndarray]]:
    """One starting partition per start (k-means++ or random), made when the start runs."""
    n = Xc.shape[0]

    def partition(g: np.random.Generator, kind: str) -> Callable[[], np.ndarray]:
        if k == 1:
            return lambda: np.ones((n, 1))
        if kind == "kmeans++":
            return lambda: kmeanspp_partition(Xc, k, g)
        return lambda: random_partition(n, k, g)

    return [partition(g, kind) for g, kind in zip(gens, kinds)]


def _run_starts(
    X: np.ndarray,
    obs: np.ndarray,
    k: int,
    structure: str,
    n_init: int,
    init: str,
    max_iter: int,
    tol: float,
    reg_covar: float,
    random_seed: int | None,
) -> tuple[list[_Start], np.ndarray]:
    """EM from every start on the centred data; the starts and the centre that was subtracted."""
    n, d = X.shape
    family = STRUCTURES[structure][0]
    has_missing = not obs.all()
    center = np.nanmean(X, axis=0)
    Xc = X - center  # translation leaves the likelihood unchanged and keeps the sums well scaled
    col_var = np.nanvar(X, axis=0)
    kinds = [_start_kind(init, s) for s in range(n_init)]
    resp0 = _start_partitions(Xc, k, start_generators(random_seed, n_init), kinds)
    with single_threaded():
        if family == "diag":
            FT = _design(Xc, obs if has_missing else None)
            runs = _diag_batch_em(
                FT, d, structure, resp0, max_iter=max_iter, tol=tol, reg_covar=reg_covar, missing=has_missing
            )
            del FT
        else:
            patterns = _Patterns(obs)
            Xz = np.where(obs, Xc, np.nan)
            runs = [
                _full_em(Xz, patterns, structure, make(), max_iter=max_iter, tol=tol, reg_covar=reg_covar)
                for make in resp0
            ]
    starts = []
    for kind, (ll, it, conv, w, mu, cov) in zip(kinds, runs):
        deg = _degeneracy(cov, w, family, col_var, reg_covar, n) if np.isfinite(ll) else ["failed"]
        starts.append(_Start(kind, ll, it, conv, w, mu, cov, deg))
    return starts, center


def _best_start(starts: list[_Start], structure: str, k: int) -> tuple[dict[str, Any], _Start]:
    """The replication report and the best usable start (FitError when none is finite)."""
    usable = [not s.degenerate and np.isfinite(s.loglik) for s in starts]
    rep = replication_report([s.loglik for s in starts], usable)
    best = starts[rep["best"]]
    if not np.isfinite(best.loglik):
        raise FitError(
            f"No start of the {structure} Gaussian mixture with k = {k} gave a finite log-likelihood; "
            "try a constrained covariance (EEI), a smaller k, or a larger reg_covar."
        )
    return rep, best


def _final_fit(
    X: np.ndarray, obs: np.ndarray, best: _Start, center: np.ndarray, structure: str
) -> tuple[np.ndarray, float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Memberships, log-likelihood and parameters (in data units) of the chosen start."""
    family, vary, _ = STRUCTURES[structure]
    means = best.means + center
    weights = best.weights
    if family == "diag":
        variances = best.cov
        L = _diag_log_joint(X, weights, means, variances)
    else:
        covs = best.cov
        L = _full_log_joint(X, _Patterns(obs), weights, means, covs)
    z, llr = normalize_log(L, out=L)
    loglik = float(llr.sum())

    params: dict[str, np.ndarray] = {"weights": weights.copy(), "means": means}
    shared: dict[str, np.ndarray] = {}
    if family == "diag":
        if vary:
            params["variances"] = variances.copy()
        else:
            shared["variances"] = variances[0].copy()
    elif vary:
        params["covariances"] = covs.copy()
    else:
        shared["covariance"] = covs[0].copy()
    return z, loglik, params, shared


def _diagnostics(
    best: _Start,
    starts: list[_Start],
    rep: Mapping[str, Any],
    loglik: float,
    messages: list[str],
    converged: bool,
    obs: np.ndarray,
) -> dict[str, Any]:
    """The fit's diagnostics: convergence, warnings and how the starts went."""
    return {
        "converged": converged,
        "warnings": messages,
        "n_iter": best.n_iter,
        "n_starts": rep["n_starts"],
        "n_best": rep["n_best"],
        "share_best": rep["share_best"],
        "best_loglik": loglik,
        "start_logliks": rep["start_logliks"],
        "start_init": [s.init for s in starts],
        "start_converged": [s.converged for s in starts],
        "start_n_iter": [s.n_iter for s in starts],
        "start_degenerate": [bool(s.degenerate) for s in starts],
        # degenerate starts (collapsed variance, empty segment) are set aside when choosing the best
        "n_degenerate_starts": sum(bool(s.degenerate) for s in starts),
        # Mplus's check: was the best log-likelihood reached by more than one start?
        "replicated": rep["n_best"] >= 2 or rep["n_starts"] == 1,
        "n_missing": int((~obs).sum()),
    }


def _start_kind(init: str, s: int) -> str:
    if init == "both":
        return "kmeans++" if s % 2 == 0 else "random"
    return init


def _advice(
    best: _Start,
    starts: list[_Start],
    canon: Mapping[int, int],
    structure: str,
    k: int,
    max_iter: int,
) -> tuple[list[str], bool]:
    """Warnings (with what to try) about the chosen solution, and whether it counts as converged."""
    msgs: list[str] = []
    converged = best.converged
    simpler = "EEI" if structure != "EEI" else "EII"
    for reason in best.degenerate:
        kind, _, j = reason.partition(":")
        seg = canon.get(int(j), int(j) + 1) if j else 0
        if kind == "empty":
            msgs.append(
                f"Segment {seg} is empty (holds less than one respondent): the solution is degenerate; "
                f"try a smaller k (k = {k} is too many for these data)."
            )
        elif kind == "collapse":
            msgs.append(
                f"A variance of segment {seg} collapsed to the floor (reg_covar): the likelihood is "
                f"unbounded there and the solution is degenerate; try a smaller k or a constrained "
                f"covariance ({simpler})."
            )
    if best.degenerate:
        converged = False
        msgs.append(f"Every one of the {len(starts)} starts ended in a degenerate solution.")
    shares = best.weights
    for j in np.argsort(shares):
        if shares[j] < SMALL_SHARE and not any(r.endswith(f":{j}") for r in best.degenerate):
            msgs.append(
                f"Segment {canon[int(j)]} holds {100 * shares[j]:.1f}% of respondents: try a smaller k "
                f"or a constrained covariance ({simpler})."
            )
    if not best.converged:
        msgs.append(
            f"The best start did not converge in {max_iter} iterations (log-likelihood still changing); "
            "raise max_iter or loosen tol, or try a constrained covariance."
        )
    return msgs, converged


# ============================================================================ scoring new data
def _params_of(result: SegmentationResult) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    structure = str(result.settings.get("covariance", "VVI"))
    family = STRUCTURES[structure][0]
    w = np.asarray(result.params["weights"], dtype=float)
    mu = np.asarray(result.params["means"], dtype=float)
    k, d = mu.shape
    if family == "diag":
        v = result.params.get("variances")
        cov = np.asarray(v if v is not None else np.broadcast_to(result.shared_params["variances"], (k, d)), float)
    else:
        c = result.params.get("covariances")
        cov = np.asarray(c if c is not None else np.broadcast_to(result.shared_params["covariance"], (k, d, d)), float)
    return family, w, mu, cov


def _new_data(result: SegmentationResult, data: Any) -> np.ndarray:
    names = list(result.feature_names)
    if isinstance(data, pd.DataFrame):
        missing = [c for c in names if c not in data.columns]
        if missing:
            from latentseg.errors import format_rows

            raise ConfigError(f"New data lack the column(s) {format_rows(missing)} the model was fitted on.")
        data = data[names]
    X, _, _ = numeric_matrix(data, allow_missing=True, model=result.model, check_constant=False)
    if X.shape[1] != len(names):
        raise ConfigError(f"New data have {X.shape[1]} columns; the model was fitted on {len(names)}.")
    return X


def log_likelihood(result: SegmentationResult, data: Any) -> np.ndarray:
    """Per-respondent log-likelihood of (new) data under a fitted Gaussian mixture, shape (n,).

    Examples
    --------
    >>> X = np.r_[np.zeros((5, 1)), np.ones((5, 1))] + np.linspace(0, 0.1, 10)[:, None]
    >>> r = fit_gmm(X, 2, random_seed=0)
    >>> bool(np.isclose(log_likelihood(r, X).sum(), r.criteria["loglik"]))
    True
    """
    X = _new_data(result, data)
    return _normalized(result, X)[1]


def _normalized(result: SegmentationResult, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    family, w, mu, cov = _params_of(result)
    if family == "diag":
        L = _diag_log_joint(X, w, mu, cov)
    else:
        L = _full_log_joint(X, _Patterns(~np.isnan(X)), w, mu, cov)
    return normalize_log(L, out=L)


def predict_proba(result: SegmentationResult, data: Any) -> np.ndarray:
    """Membership probabilities of (new) respondents under a fitted Gaussian mixture.

    Parameters
    ----------
    result : SegmentationResult
        From :func:`fit_gmm`.
    data : DataFrame or ndarray, shape (n, d)
        A DataFrame is matched to the fitted columns by name; NaN values are left out of each
        respondent's likelihood, as in fitting.

    Returns
    -------
    ndarray, shape (n, k)
        Rows sum to 1; columns in the result's segment order.

    Examples
    --------
    >>> X = np.r_[np.zeros((5, 1)), np.ones((5, 1))] + np.linspace(0, 0.1, 10)[:, None]
    >>> r = fit_gmm(X, 2, random_seed=0)
    >>> np.allclose(predict_proba(r, X), r.memberships)
    True
    """
    X = _new_data(result, data)
    return _normalized(result, X)[0]
