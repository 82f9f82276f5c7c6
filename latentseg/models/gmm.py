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

Starts (built on standardised data, so that no column's unit decides them) are k-means++
seedings, mclust's own start (the VVV model-based hierarchical agglomeration of the SVD-scaled
data), Ward's agglomeration and random partitions (docs/methods.md, section 2). Every start runs
to convergence (except those stopped
early: see ``n_init`` in :func:`fit_gmm`); the
replication report (how many starts reached the best log-likelihood, as Mplus reports) and each
start's final log-likelihood go into the diagnostics. Starts that end in a degenerate solution
(a variance collapsed onto the floor ``reg_covar``, where the likelihood is unbounded, or an empty
segment) are set aside when choosing the best start, and are counted; if every start is
degenerate the result says so (``converged`` False, a :class:`ConvergenceWarning` with advice).

A segment whose covariance is near-singular relative to the column variances and its size is
flagged (``diagnostics["near_singular"]``, ``diagnostics["near_singular_reason"]``) and excluded
from choosing k by :func:`latentseg.choose.selection.select`.

Speed. EM runs on standardised data (spherical structures: one common scale). All starts run
together: the E-step is one matrix product between the stacked coefficient rows of every start
and segment and the design ``[x^2; x; 1]`` (diagonal) or ``[x_a x_b (a <= b); x; 1]`` (full;
respondents on the contiguous axis), followed by one ``exp`` per cell, and the M-step's
sufficient statistics are one more matrix product; respondents are processed in chunks, so
memory stays bounded. Steps are adaptively over-relaxed (Salakhutdinov & Roweis 2003): a step
that would lower the log-likelihood is replaced by the plain EM step, so the kept
log-likelihoods never decrease. A start stops when the gains of its last five kept steps, and
Aitken's projection of the gains to come, are small (:func:`_gains_converged`). Small complete
data (a design of at most ``COMPILED_MAX_CELLS`` cells) run the same algorithm one start after
another in compiled code (:mod:`latentseg.models._gmm_kernels`, numba), where numpy's fixed cost
per call would dominate. The full
structures with missing values (or a design larger than ``FULL_DESIGN_MAX_BYTES``) run plain EM
one start at a time, looping over missingness
patterns (not respondents), so many distinct patterns make them slower.
"""

from __future__ import annotations

import functools
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
    check_sample_weight,
    hierarchical_partition,
    kmeanspp_partition,
    normalize_log,
    numeric_matrix,
    provenance,
    random_partition,
    replication_report,
    sandwich_share_interval,
    share_information,
    single_threaded,
    standardise,
    start_generators,
)
from latentseg.result import SegmentationResult
from latentseg.models.families import GMM

__all__ = ["fit_gmm", "predict_proba", "log_likelihood", "n_free_params", "STRUCTURES", "resolve_covariance",
           "covariate_measurement"]

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
    stopped: str = ""  # "collapsed" / "pruned": stopped before convergence (see _batch_em)


# ============================================================================ batch EM (every structure)
@functools.lru_cache(maxsize=64)
def _pairs(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of every upper-triangle cell (a <= b), the diagonal's positions, and the
    factor (-0.5 on the diagonal, -1 off it) that turns a precision matrix into the coefficients
    of the products ``x_a x_b`` in a log density."""
    a, b = np.triu_indices(d)
    a.setflags(write=False)
    b.setflags(write=False)
    diag = np.arange(d)
    diag.setflags(write=False)
    factor = np.where(a == b, -0.5, -1.0)
    factor.setflags(write=False)
    return a, b, diag, factor


def _design(Zc: np.ndarray, obs: np.ndarray | None, full: bool = False) -> np.ndarray:
    """Features of every respondent, one column each, whose products with coefficient rows give
    log densities (E-step) and, weighted by responsibilities, the M-step's sufficient statistics.

    Diagonal structures: ``[x^2; x; 1]`` without missing values, ``[x^2; x; m; 1]`` with them (x
    set to 0 where missing, m the observed indicator). Full structures (complete data only):
    ``[x_a x_b for a <= b; x; 1]``. Shape (p, n): respondents along the last, contiguous axis, so
    every reduction over segments runs along long rows.
    """
    n, d = Zc.shape
    XT = Zc.T
    if full:
        a, b, _, _ = _pairs(d)
        q = a.size
        FT = np.empty((q + d + 1, n))
        np.multiply(XT[a], XT[b], out=FT[:q])
        FT[q : q + d] = XT
        FT[q + d] = 1.0
    elif obs is None:
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


def _safe_cholesky(cov: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of covariances (..., d, d); a matrix that rounding made
    indefinite gets its eigenvalues raised to ``min(floor)`` first."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        lam, vec = np.linalg.eigh(cov)
        lam = np.maximum(lam, float(np.min(floor)))
        return np.linalg.cholesky((vec * lam[..., None, :]) @ np.swapaxes(vec, -1, -2))


def _full_coefficients(means: np.ndarray, chol: np.ndarray, logw: np.ndarray) -> np.ndarray:
    """Coefficient rows for the full design: ``W @ FT`` gives log w_k + log N(x | mu_k, S_k).

    means: (..., k, d); chol: (..., k, d, d) lower Cholesky factors of S_k; logw: (..., k).
    """
    d = means.shape[-1]
    a, b, _, factor = _pairs(d)
    Linv = np.linalg.inv(chol)
    P = np.swapaxes(Linv, -1, -2) @ Linv  # precision
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    quad = P[..., a, b] * factor
    Pmu = np.einsum("...ij,...j->...i", P, means)
    const = logw - 0.5 * (d * _LOG_2PI + logdet + np.einsum("...i,...i->...", means, Pmu))
    return np.concatenate([quad, Pmu, const[..., None]], axis=-1)


def _mstep(
    T: np.ndarray, d: int, n: int, structure: str, reg: np.ndarray, missing: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form M-step from the sums ``T = R @ FT.T`` (shape (S, k, p)).

    Returns weights (S, k), means (S, k, d) and variances (S, k, d) (diagonal structures) or
    covariances (S, k, d, d) (full structures). ``reg`` (d,) is added to every variance.
    """
    eps = 10 * np.finfo(float).eps
    family, vary, spherical = STRUCTURES[structure]
    Nk = T[..., -1] + eps  # (S, k)
    weights = Nk / n
    if family == "full":
        a, b, idx, _ = _pairs(d)
        q = a.size
        S2 = np.empty(T.shape[:-1] + (d, d))
        S2[..., a, b] = T[..., :q]
        S2[..., b, a] = T[..., :q]
        means = T[..., q : q + d] / Nk[..., None]
        scatter = S2 - Nk[..., None, None] * (means[..., :, None] * means[..., None, :])
        if vary:
            cov = scatter / Nk[..., None, None]
        else:
            cov = np.broadcast_to((scatter.sum(axis=-3) / n)[..., None, :, :], scatter.shape).copy()
        cov[..., idx, idx] += reg
        return weights, means, cov
    S2 = T[..., :d]
    S1 = T[..., d : 2 * d]
    S0 = (T[..., 2 * d : 3 * d] if missing else np.broadcast_to(Nk[..., None], S1.shape)) + eps
    means = S1 / S0
    dev = np.maximum(S2 - S1 * means, 0.0)  # sum r m (x - mu)^2
    if vary and not spherical:  # VVI
        var = dev / S0
    elif vary:  # VII
        var = np.broadcast_to((dev.sum(-1) / S0.sum(-1))[..., None], dev.shape)
    elif not spherical:  # EEI
        var = np.broadcast_to((dev.sum(-2) / S0.sum(-2))[..., None, :], dev.shape)
    else:  # EII
        var = np.broadcast_to((dev.sum((-1, -2)) / S0.sum((-1, -2)))[..., None, None], dev.shape)
    return weights, means, var + reg


#: Over-relaxation of the EM: after every accepted step the step length grows by this factor (up
#: to ``_ETA_MAX``); a step that lowers the log-likelihood is rejected and replaced by the plain EM
#: step, which never does (Salakhutdinov & Roweis 2003, adaptive over-relaxed EM).
_ETA_GROWTH = 1.5
_ETA_MAX = 16.0


def _relax(
    w: np.ndarray, mu: np.ndarray, cov: np.ndarray, mw: np.ndarray, mmu: np.ndarray, mcov: np.ndarray,
    eta: np.ndarray, reg: np.ndarray, chols: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step from (w, mu, cov) past the EM update (mw, mmu, mcov) by the factor eta (per start), on
    log weights, means and log variances (diagonal) or Cholesky factors with log diagonals (full:
    every relaxed covariance stays positive definite); eta = 1 gives the EM update itself. Full
    covariances: ``chols`` holds the Cholesky factors of ``cov`` and ``mcov`` when known, and the
    relaxed covariances' factors are returned fourth."""
    e = eta[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lw = np.log(w) + e * (np.log(mw) - np.log(w))
    lw = np.where(np.isfinite(lw), lw, np.log(mw))
    lw -= lw.max(axis=1, keepdims=True)
    nw = np.exp(lw)
    nw /= nw.sum(axis=1, keepdims=True)
    e3 = eta[:, None, None]
    nmu = mu + e3 * (mmu - mu)
    if cov.ndim == 3:  # variances (S, k, d)
        ncov = np.maximum(np.exp(np.log(cov) + e3 * (np.log(mcov) - np.log(cov))), reg)
        return nw, nmu, ncov
    La, Le = chols if chols is not None else (_safe_cholesky(cov, reg), _safe_cholesky(mcov, reg))
    e4 = eta[:, None, None, None]
    L = La + e4 * (Le - La)
    idx = _pairs(cov.shape[-1])[2]
    da, de = np.log(La[..., idx, idx]), np.log(Le[..., idx, idx])
    L[..., idx, idx] = np.exp(da + e3 * (de - da))
    return nw, nmu, L @ np.swapaxes(L, -1, -2), L


#: the stopping rule looks at this many kept steps
_WINDOW = 5
#: pruning of starts that cannot catch up with the best one (see _batch_em)
_PRUNE_AFTER = 50
_PRUNE_MARGIN = 5.0
_PRUNE_FACTOR = 100.0


def _gains_converged(gains: np.ndarray, limit: float, ll: np.ndarray) -> np.ndarray:
    """Whether EM has converged, from the gains of its last kept steps.

    ``gains`` (S, _WINDOW): the absolute log-likelihood gains of each start's last kept steps,
    oldest first (``inf`` before there are that many). Converged when the gains of the whole window
    add up to at most ``limit``, and so does the gain still to come if the gains keep shrinking at
    their rate over the window (Aitken's projection, ``g * a / (1 - a)`` with ``a`` the geometric
    mean ratio of successive gains): a slow crawl (``a`` near 1) along a flat ridge, where each
    step gains little but many steps gain much, is not mistaken for convergence. Steps that gain
    nothing at the rounding level count as converged.
    """
    rounding = gains.max(axis=1) <= 1e-12 * (1.0 + np.abs(ll))
    small = gains.sum(axis=1) <= limit
    out = rounding | small
    if not small.any():  # the common case while EM runs: nothing more to compute
        return out
    out[small] = rounding[small] | (_projected_rest(gains[small]) <= limit)
    return out


def _projected_rest(gains: np.ndarray) -> np.ndarray:
    """Aitken's projection of the gain still to come, from the gains of the last kept steps
    (S, _WINDOW), oldest first: ``g a / (1 - a)`` with ``a`` their geometric mean ratio; ``inf``
    when the gains do not shrink (or the window is not full yet)."""
    first, last = gains[:, 0], gains[:, -1]
    with np.errstate(invalid="ignore"):
        ratio = last / np.maximum(first, 1e-300)
    a = np.where(np.isfinite(first) & (first > 0), ratio ** (1.0 / (gains.shape[1] - 1)), 1.0)
    return np.where(a < 1, last * a / np.maximum(1.0 - a, 1e-300), np.inf)


def _batch_em(
    FT: np.ndarray,
    d: int,
    structure: str,
    init_resp: Sequence[Callable[[], np.ndarray]],
    *,
    max_iter: int,
    tol: float,
    reg: np.ndarray,
    missing: bool,
    chunk_cells: int = 4_000_000,
    sw: np.ndarray | None = None,
) -> list[tuple[float, int, bool, np.ndarray, np.ndarray, np.ndarray]]:
    """Run EM for every start at once (the starts are stacked along the segment axis).

    One pass over the data per iteration computes, for all active starts, the log-likelihood at
    the current parameters and the sums the M-step needs: two matrix products with the design
    ``FT`` (shape (p, n)) and one ``exp`` per start, segment and respondent. Respondents are
    processed in chunks so that memory stays bounded for any n. The same loop serves the diagonal
    and (complete-data) full structures; only the coefficient rows, M-step and relaxation differ.

    Steps are over-relaxed (see ``_ETA_GROWTH``): a step is kept only if the log-likelihood does
    not fall, otherwise the plain EM step is taken (and always kept), so the kept log-likelihoods
    behave as EM's: they never decrease except through the ``reg`` floor, which also moves EM's own
    fixed point off the exact maximum. A start stops when :func:`_gains_converged` says so for its
    last kept steps (``tol`` per respondent); its parameters are then the ones the reported
    log-likelihood was computed at.

    ``init_resp`` holds one function per start returning its initial responsibilities (n, k), so
    that only one start's partition is in memory at a time. ``sw`` (n,): survey weights; every
    sufficient statistic and the log-likelihood are then weighted sums, and the total weight
    takes the place of n.

    Returns one tuple per start: (loglik, n_iter, converged, weights, means, covariances,
    stopped), the covariances as (k, d) variances or (k, d, d) matrices; ``stopped`` is
    ``"collapsed"`` for a start stopped early because its EM update put a variance onto ``reg``
    (on the standardised scale, to within ``COLLAPSE_FRACTION``), ``"pruned"`` for one stopped
    because it could not catch up with the best start, ``""`` otherwise.
    """
    n_rows = FT.shape[1]
    n = n_rows if sw is None else float(sw.sum())  # the total weight
    S = len(init_resp)
    full = STRUCTURES[structure][0] == "full"
    if sw is None:
        T0 = np.stack([(FT @ make()).T for make in init_resp])  # (S, k, p); one partition at a time
    else:
        T0 = np.stack([(FT @ (make() * sw[:, None])).T for make in init_resp])
    k = T0.shape[1]
    w, mu, cov = (np.array(a, dtype=float) for a in _mstep(T0, d, n, structure, reg, missing))
    # accepted parameters, their log-likelihood and their EM update
    acc_w, acc_mu, acc_cov = w.copy(), mu.copy(), cov.copy()
    em_w, em_mu, em_cov = w.copy(), mu.copy(), cov.copy()
    # full structures: Cholesky factors of the current, accepted and EM-update covariances, each
    # computed once (the relaxation works on them, and a relaxed factor is the new one)
    chol = _safe_cholesky(cov, reg) if full else cov
    acc_chol, em_chol = chol.copy(), chol.copy()
    acc_ll = np.full(S, -np.inf)
    eta = np.ones(S)
    plain = np.zeros(S, dtype=bool)  # the parameters evaluated next are a plain EM step
    gains = np.full((S, _WINDOW), np.inf)  # the last kept steps' gains, oldest first
    n_iter = np.zeros(S, dtype=int)
    conv = np.zeros(S, dtype=bool)
    stopped = np.zeros(S, dtype=bool)  # stopped early: a variance collapsed onto the floor
    pruned = np.zeros(S, dtype=bool)  # stopped early: too far below the best start to catch up
    active = np.arange(S)
    limit = tol * n
    step = max(1, chunk_cells // (S * k))
    buf = np.empty((S * k, min(step, n_rows)))
    for it in range(1, max_iter + 1):
        A = active.size
        with np.errstate(divide="ignore"):
            logw = np.log(w[active])
        if full:
            W = _full_coefficients(mu[active], chol[active], logw)
        else:
            W = _diag_coefficients(mu[active], cov[active], logw, missing)
        W = W.reshape(A * k, -1)
        ll = np.zeros(A)
        T = np.zeros((A * k, FT.shape[0]))
        for lo in range(0, n_rows, step):
            Fc = FT[:, lo : lo + step]
            L = np.matmul(W, Fc, out=buf[: A * k, : Fc.shape[1]])
            _, llc = normalize_log(L.reshape(A, k, -1), out=L.reshape(A, k, -1), axis=1)
            if sw is None:
                ll += llc.sum(axis=1)
            else:
                swc = sw[lo : lo + step]
                ll += llc @ swc
                L *= swc
            T += L @ Fc.T
        n_iter[active] = it
        gain = ll - acc_ll[active]
        # keep a step that is not worse (up to rounding), and always keep a plain EM step: it can
        # only be worse through the reg floor, where EM's fixed point is the reference
        ok = ((gain >= -1e-9 * (1.0 + np.abs(ll))) | plain[active]) & np.isfinite(ll)
        acc = active[ok]
        acc_w[acc], acc_mu[acc], acc_cov[acc] = w[acc], mu[acc], cov[acc]
        if full:
            acc_chol[acc] = chol[acc]
        acc_ll[acc] = ll[ok]
        gains[acc, :-1] = gains[acc, 1:]
        gains[acc, -1] = np.abs(gain[ok])
        done = _gains_converged(gains[active], limit, acc_ll[active])
        broken = ~np.isfinite(ll) & plain[active]  # a plain step gave no finite likelihood
        halt = ok & stopped[active]  # its EM update collapsed (below), and that was kept
        # a start that cannot catch up with the best one stops (em-EM pruning, Biernacki et al.
        # 2003): below the best log-likelihood reached so far by more than _PRUNE_MARGIN plus
        # _PRUNE_FACTOR times its own projected remaining gain, after _PRUNE_AFTER iterations
        if it > _PRUNE_AFTER:
            reach = acc_ll[active] + _PRUNE_MARGIN + _PRUNE_FACTOR * _projected_rest(gains[active])
            alive = np.isfinite(acc_ll) & ~stopped  # collapsed starts are set aside: not the bar
            behind = ok & (reach < acc_ll[alive].max(initial=-np.inf)) & ~done
            pruned[active[behind]] = True
            halt |= behind
        if it == max_iter:
            conv[active] = done
            break
        conv[active[done]] = True
        keep = ~(done | broken | halt)
        if not keep.any():
            break
        # EM update from the accepted parameters (sums computed at them this pass)
        kept_ok = ok & keep
        if kept_ok.any():
            nw, nmu, ncov = _mstep(T.reshape(A, k, -1)[kept_ok], d, n, structure, reg, missing)
            idx = active[kept_ok]
            em_w[idx], em_mu[idx], em_cov[idx] = nw, nmu, ncov
            # EM itself puts a variance onto the floor (where the likelihood is unbounded): the
            # start will be set aside, so it stops at its next evaluation instead of crawling on
            # to max_iter. A Cholesky pivot (a conditional variance) bounds the smallest
            # eigenvalue from above and is at least its column's floor.
            if full:
                em_chol[idx] = _safe_cholesky(ncov, reg)
                spread = np.diagonal(em_chol[idx], axis1=-2, axis2=-1) ** 2 - reg
            else:
                spread = ncov - reg
            stopped[idx] = spread.min(axis=(1, 2)) <= COLLAPSE_FRACTION
        idx_ok = active[kept_ok]
        idx_bad = active[~ok & keep]
        eta[idx_bad] = 1.0
        w[idx_bad], mu[idx_bad], cov[idx_bad] = em_w[idx_bad], em_mu[idx_bad], em_cov[idx_bad]
        if full:
            chol[idx_bad] = em_chol[idx_bad]
        plain[idx_bad] = True
        plain[idx_ok] = False
        if idx_ok.size:
            relaxed = _relax(
                acc_w[idx_ok], acc_mu[idx_ok], acc_cov[idx_ok], em_w[idx_ok], em_mu[idx_ok], em_cov[idx_ok],
                eta[idx_ok], reg, (acc_chol[idx_ok], em_chol[idx_ok]) if full else None,
            )
            w[idx_ok], mu[idx_ok], cov[idx_ok] = relaxed[:3]
            if full:
                chol[idx_ok] = relaxed[3]
            eta[idx_ok] = np.minimum(eta[idx_ok] * _ETA_GROWTH, _ETA_MAX)
        active = active[keep]
    return [
        (float(acc_ll[s]), int(n_iter[s]), bool(conv[s]), acc_w[s].copy(), acc_mu[s].copy(), acc_cov[s].copy(),
         "collapsed" if stopped[s] and not pruned[s] else ("pruned" if pruned[s] else ""))
        for s in range(S)
    ]


#: complete data whose design has at most this many cells (n times 2d + 1, or d(d+1)/2 + d + 1)
#: run through the compiled per-start EM (:mod:`latentseg.models._gmm_kernels`): there numpy's
#: fixed cost per call dominates; beyond it the batched matrix products (BLAS) are faster
COMPILED_MAX_CELLS = 10_000


def _compiled_starts(
    Z: np.ndarray,
    structure: str,
    init_resp: Sequence[Callable[[], np.ndarray]],
    *,
    max_iter: int,
    tol: float,
    reg: np.ndarray,
    sw: np.ndarray | None = None,
) -> list[tuple[float, int, bool, np.ndarray, np.ndarray, np.ndarray, str]]:
    """:func:`_batch_em`'s algorithm, one start after another in compiled code (complete data;
    ``sw`` survey weights, as in :func:`_batch_em`).

    A start is pruned against the best log-likelihood of the starts finished before it (not
    collapsed), so the hierarchical starts, which run first, set the bar early.
    """
    from latentseg.models._gmm_kernels import em_start

    family, vary, spherical = STRUCTURES[structure]
    full = family == "full"
    F = np.ascontiguousarray(_design(Z, None, full=full).T)  # (n, p): one respondent per row
    n = F.shape[0] if sw is None else float(sw.sum())
    ones = np.ones(F.shape[0]) if sw is None else np.ascontiguousarray(sw, dtype=float)
    bar = -np.inf
    out = []
    for make in init_resp:
        T0 = np.ascontiguousarray(make().T @ F if sw is None else (make() * sw[:, None]).T @ F)
        ll, it, conv, stopped, w, mu, var, cov = em_start(
            F, ones, T0, float(n), vary, spherical, full, max_iter, tol * n, np.ascontiguousarray(reg), bar, _WINDOW,
            _ETA_GROWTH, _ETA_MAX, _PRUNE_AFTER, _PRUNE_MARGIN, _PRUNE_FACTOR, COLLAPSE_FRACTION,
        )
        if stopped == 0 and np.isfinite(ll):
            bar = max(bar, ll)
        out.append((float(ll), int(it), bool(conv), w, mu, cov if full else var,
                    ("", "collapsed", "pruned")[int(stopped)]))
    return out


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
    reg: np.ndarray,
    n_total: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM M-step for full covariances; unobserved coordinates enter through their conditional
    mean and covariance given the observed ones (old parameters). ``reg`` (d,) is added to the
    variances. With survey weights ``R`` holds the weighted responsibilities and ``n_total`` the
    total weight."""
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
    eye = np.diag(reg)
    if n_total is not None:
        n = n_total  # type: ignore[assignment]
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
    reg: np.ndarray,
    sw: np.ndarray | None = None,
) -> tuple[float, int, bool, np.ndarray, np.ndarray, np.ndarray]:
    """Plain EM for one start of a full-covariance structure (EEE / VVV) with missing values,
    stopped by :func:`_gains_converged` (complete data go through :func:`_batch_em`); ``sw``
    survey weights."""
    n, d = X.shape
    k = R0.shape[1]
    tied = not STRUCTURES[structure][1]
    total = None if sw is None else float(sw.sum())
    if sw is not None:
        n = total  # type: ignore[assignment]
        R0 = R0 * sw[:, None]
    # initial parameters from the partition (complete-case means for unobserved cells)
    Xf = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
    w, mu, cov = _full_mstep(Xf, _Patterns(np.ones_like(X, dtype=bool)), R0, None, None, tied, reg, total)  # type: ignore[arg-type]
    prev = -np.inf
    gains = np.full((1, _WINDOW), np.inf)
    ll = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            L = _full_log_joint(X, patterns, w, mu, cov)
        except np.linalg.LinAlgError:
            return (float("nan"), it, False, w, mu, cov)
        R, llr = normalize_log(L, out=L)
        if sw is None:
            ll = float(llr.sum())
        else:
            ll = float(llr @ sw)
            R *= sw[:, None]
        gains[0, :-1] = gains[0, 1:]
        gains[0, -1] = abs(ll - prev)
        if _gains_converged(gains, tol * n, np.array([ll]))[0]:
            converged = True
            break
        if it == max_iter:
            break
        prev = ll
        try:
            w, mu, cov = _full_mstep(X, patterns, R, mu, cov, tied, reg, total)
        except np.linalg.LinAlgError:
            return (float("nan"), it, False, w, mu, cov)
    return (ll, it, converged, w, mu, cov)


# ============================================================================ degeneracy
def _degeneracy(
    start_cov: np.ndarray, weights: np.ndarray, family: str, col_var: np.ndarray, reg_covar: float, n: float
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


#: the full structures run all starts together through a design of d(d+1)/2 + d + 1 rows per
#: respondent while it takes at most this many bytes (d = 20: up to about 290,000 respondents);
#: beyond it (or with missing values) each start runs plain EM on the data itself
FULL_DESIGN_MAX_BYTES = 512 * 2**20

#: a segment of ``n_k`` respondents whose covariance has an eigenvalue below this times ``d / n_k``
#: of the column variances (on the standardised scale) is near-singular: it lies close to a
#: lower-dimensional subspace. Measured on the mclust grid (benchmarks/bench_mclust.py): the
#: segments flagged (5-15 respondents) sit at 1e-13 to 2e-4 of the column variances; large real
#: segments of strongly correlated columns (crabs' size measurements, 50-106 crabs) at 7e-4 to 1.5e-3,
#: 7 to 30 times above their thresholds.
NEAR_SINGULAR_EIGEN = 1e-3


def _near_singular(cov: np.ndarray, weights: np.ndarray, family: str, col_var: np.ndarray, n: float) -> list[dict[str, Any]]:
    """Segments (0-based) whose covariance is near-singular relative to the column variances and
    the segment's size.

    The covariance is put on the standardised scale (divided by the column standard deviations on
    both sides), where an eigenvalue of 1 is a column's whole variance; a segment of ``n_k``
    respondents whose smallest eigenvalue there is below ``NEAR_SINGULAR_EIGEN * d / n_k`` has
    (nearly) no spread in some direction (the fewer its respondents, the less spread is expected).
    Such a segment usually holds few respondents (about as many as the covariance has dimensions)
    and fits them exactly: its likelihood grows without bound as it shrinks, so its
    log-likelihood (and BIC) are not evidence for it. Each entry: ``segment``, ``smallest_eigenvalue``
    (standardised), ``size`` (expected number of respondents, ``w_k n``) and ``threshold``.
    """
    sd = np.sqrt(col_var)
    d = col_var.size
    out = []
    for j in range(weights.size):
        if family == "diag":
            lam = float(np.min(cov[j] / col_var))
        else:
            lam = float(np.linalg.eigvalsh(cov[j] / np.outer(sd, sd))[0])
        size = float(weights[j] * n)
        threshold = NEAR_SINGULAR_EIGEN * d / max(size, 1.0)
        if lam < threshold:
            out.append({"segment": j, "smallest_eigenvalue": lam, "size": size, "threshold": threshold})
    return out


def _near_singular_reason(entries: Sequence[Mapping[str, Any]], structure: str, k: int) -> str:
    """One sentence naming the near-singular segments ('' when there are none)."""
    if not entries:
        return ""
    simpler = "EEE" if structure == "VVV" else "EEI"
    parts = [
        f"segment {e['segment']} ({e['size']:.1f} respondents; smallest covariance eigenvalue "
        f"{e['smallest_eigenvalue']:.1e} of the column variances, below {e['threshold']:.1e})"
        for e in entries
    ]
    return (
        f"Near-singular: {'; '.join(parts)} fits a thin slice of the data, where the likelihood grows "
        f"without bound, so this k = {k} {structure} fit is excluded from choosing k; try a smaller k or "
        f"a constrained covariance ({simpler})."
    )


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
    n_init: int = 2,
    init: str = "both",
    max_iter: int = 500,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    random_seed: int | None = None,
    sample_weight: Any = None,
    covariates: pd.DataFrame | None = None,
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
    n_init : int, default 2
        Number of starts. Each runs to convergence, except a start whose EM update puts a variance
        onto the ``reg_covar`` floor (it stops there and is set aside as degenerate) and, after 50
        iterations, one too far below the best non-degenerate start to catch up (more than 5 plus
        100 times its own projected remaining gain; ``diagnostics["start_stopped"]``). The default
        two starts (a k-means++ partition and mclust's own hierarchical start) reach mclust's
        maximum or a higher one in every cell of benchmarks/bench_mclust.py (docs/methods.md,
        section 2); more starts can only find a higher maximum. The pipeline's ``model.n_init``
        (default 10) is passed on.
    init : {"both", "kmeans++", "random"}, default "both"
        Starting partitions, built on standardised data: nearest k-means++ seed, a uniformly
        random partition, or "both": a k-means++ partition, mclust's default start (the VVV
        model-based agglomeration of the SVD-scaled data from single respondents, as
        ``hc(modelName = "VVV", use = "SVD")``) and Ward's (EII) agglomeration (deterministic up to
        n = 1,000, fewer for VVV on more than 20 columns; a seeded subset beyond), then random
        and k-means++ partitions in turn. With
        k = 1 one start is run (they would all be the same).
    max_iter : int, default 500
        EM iterations per start.
    tol : float, default 1e-6
        Convergence per respondent: a start has converged when its last five kept steps together
        gained at most ``tol * n``, and so would the steps to come if the gains kept shrinking at
        their rate (Aitken's projection); one small step is not enough. (scikit-learn's ``tol``
        is per respondent too, default 1e-3, and stops after one small step.) The default keeps
        the reported log-likelihoods accurate to well within the 0.01 used by the replication
        report for surveys up to about 10^4 respondents.
    reg_covar : float, default 1e-6
        Added to every variance (diagonal of every covariance) in each M-step, in data units.
    random_seed : int, optional
        The one seed; same seed, same result bit for bit.
    sample_weight : array-like, shape (n,), optional
        Survey weights, used as given (a weight of 2 counts a respondent twice): EM maximises the
        pseudo-log-likelihood ``sum_i w_i log f(x_i)`` (weighted sufficient statistics for every
        structure, the total weight in place of n in the M-step and in ``tol``); the criteria use
        the pseudo-log-likelihood with n = the number of respondents; shares are weighted and
        their intervals design-based (diagonal structures: Wilson at the effective n of the
        design-based sandwich, :func:`design_share_interval`; EEE, VVV: at the linearised
        effective n). Starting partitions ignore the weights.
    covariates : DataFrame, optional
        Covariates on membership (one-step latent profile regression): the mixing proportions
        become a multinomial logit on these columns (aligned with the rows; categorical columns
        dummy-coded), fitted jointly with the mixture by EM started from the fit without them
        (:func:`latentseg.models._mnlogit.one_step`). The coefficients are in
        ``extras["covariates"]``; ``n_params`` adds ``(m - 1)(k - 1)`` coefficients.

    Returns
    -------
    SegmentationResult
        ``model="gmm"``; ``params``: ``weights (k,)``, ``means (k, d)`` and ``variances (k, d)``
        (VII, VVI) or ``covariances (k, d, d)`` (VVV); ``shared_params``: ``variances (d,)``
        (EII, EEI) or ``covariance (d, d)`` (EEE). ``criteria`` from
        :func:`latentseg.models._criteria.information_criteria`; ``diagnostics`` with
        ``converged, warnings, n_iter, n_starts, n_best, share_best, start_logliks, start_init,
        start_converged, start_degenerate``, and ``near_singular`` (one entry per near-singular
        segment: ``segment``, ``size``, ``smallest_eigenvalue`` of the covariance over the column
        variances, ``threshold``) with ``near_singular_reason`` (the sentence, '' when none).

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
        segment), has a near-empty or a near-singular segment; the same text is in
        ``diagnostics["warnings"]``.

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
    if covariates is not None:
        from latentseg.models._mnlogit import one_step

        base = fit_gmm(data, k, covariance=covariance, n_init=n_init, init=init, max_iter=max_iter, tol=tol,
                       reg_covar=reg_covar, random_seed=random_seed, sample_weight=sample_weight)
        return one_step(base, data, covariates, sample_weight=sample_weight)
    if str(covariance).strip().lower() == "auto":
        return _fit_auto(data, k, n_init=n_init, init=init, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                         random_seed=random_seed, sample_weight=sample_weight)
    X, names, ids = numeric_matrix(data, allow_missing=True, model=GMM)
    sw = check_sample_weight(sample_weight, ids, GMM)
    n, d = X.shape
    k, structure, n_init, max_iter = _checked_settings(X, k, covariance, n_init, init, max_iter, tol, reg_covar)
    obs = ~np.isnan(X)
    starts, center = _run_starts(X, obs, k, structure, n_init, init, max_iter, tol, reg_covar, random_seed, sw)
    rep, best = _best_start(starts, structure, k)
    z, loglik, params, shared = _final_fit(X, obs, best, center, structure, sw)
    means, weights = params["means"], best.weights
    criteria = information_criteria(loglik, n_free_params(structure, k, d), n, z, sw)

    # warnings with advice (indices are canonical after ordering by share)
    order = np.lexsort((means[:, 0], -weights))
    canon = {int(j): pos + 1 for pos, j in enumerate(order)}
    messages, converged = _advice(best, starts, canon, structure, k, max_iter)
    near_singular = _near_singular(best.cov, weights, STRUCTURES[structure][0], _col_var(X, obs),
                                   n if sw is None else float(sw.sum()))
    for entry in near_singular:
        entry["segment"] = canon[entry["segment"]]
    near_singular.sort(key=lambda e: e["segment"])
    reason = _near_singular_reason(near_singular, structure, k)
    if reason:
        messages.append(reason)
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
        diagnostics={
            **_diagnostics(best, starts, rep, loglik, messages, converged, obs),
            "near_singular": near_singular,
            "near_singular_reason": reason,
        },
        provenance=provenance(random_seed, *((X,) if sw is None else (X, sw)), config={"model": GMM, "k": k, **settings}),
        settings=settings,
        params=params,
        shared_params=shared,
        sample_weight=sw,
        **design_share_interval(X, z, structure, params, shared, sw),
    )


#: the sandwich share interval multiplies, per segment, an (n, k - 1 + 2d) score block by itself
#: and keeps the (n, q) scores; beyond this many multiply-adds in all, or cells of scores, a
#: weighted fit reports the linearised interval instead
SANDWICH_MAX_FLOPS = 1e9
SANDWICH_MAX_CELLS = 20_000_000


def design_share_interval(
    X: np.ndarray,
    z: np.ndarray,
    structure: str,
    params: Mapping[str, np.ndarray],
    shared: Mapping[str, np.ndarray],
    sw: np.ndarray | None,
) -> dict[str, Any]:
    """``share_interval`` and ``interval_method`` of a weighted fit with a diagonal structure
    (EII, VII, EEI, VVI): Wilson at each share's effective n from the design-based sandwich
    covariance of the pseudo-maximum-likelihood estimate; empty (the linearised interval of
    :meth:`SegmentationResult.from_memberships` stands) when unweighted, for the full structures,
    too large, or singular.

    Parameters: ``pi_1..pi_{k-1}``, the means and the structure's variance parameters (one per
    segment and column for VVI, per column for EEI, per segment for VII, one for EII). Bread: the
    weighted observed information by Louis' (1982) identity, ``sum_i w_i [sum_c z_ic I_c(x_i) -
    sum_c z_ic S_ic S_ic' + s_i s_i']``, with segment c's complete-data score ``S_ic`` (means
    ``e / v``, variances ``(e^2 / v^2 - 1 / v) / 2``, ``e = x - mu_c`` over the observed cells)
    and information ``I_c`` (``1 / v``, ``e / v^2``, ``e^2 / v^3 - 1 / (2 v^2)``), a shared
    variance summing over the cells it serves; meat ``n / (n - 1)`` times the centred
    cross-products of ``w_i s_i`` (Binder 1983). docs/methods.md, "Survey weights (EM)".
    """

    family, vary, spherical = STRUCTURES[structure]
    n, d = X.shape
    pi = np.asarray(params["weights"], dtype=float)
    k = pi.size
    if sw is None or family != "diag" or k < 2:
        return {}
    # parameter layout: pi_1..pi_{k-1}, means (k, d), then the variance parameters
    mean_idx = (k - 1) + np.arange(k * d).reshape(k, d)
    n_var = (k if vary else 1) * (1 if spherical else d)
    var_idx = (k - 1 + k * d) + np.arange(n_var).reshape(k if vary else 1, 1 if spherical else d)
    var_idx = np.broadcast_to(var_idx, (k, d))
    q = k - 1 + k * d + n_var
    if n * k * (k - 1 + d + n_var) ** 2 > SANDWICH_MAX_FLOPS or n * q > SANDWICH_MAX_CELLS:
        return {}
    mu = np.asarray(params["means"], dtype=float)
    v = np.asarray(params["variances"] if vary else np.broadcast_to(shared["variances"], (k, d)), dtype=float)
    obs = ~np.isnan(X)
    Xz = np.where(obs, X, 0.0)
    wz = sw[:, None] * z
    P, H, s = share_information(z, wz, pi, q)
    pidx = np.arange(k - 1)
    for c in range(k):
        e = np.where(obs, Xz - mu[c], 0.0)
        g_mu = e / v[c]
        g_v = obs * (e * e / v[c] ** 2 - 1.0 / v[c]) / 2.0
        vix, inv = np.unique(var_idx[c], return_inverse=True)  # the variance parameters segment c uses
        G_v = np.zeros((n, vix.size))
        np.add.at(G_v.T, inv, g_v.T)
        Sc = np.concatenate([g_mu, G_v], axis=1)
        ix = np.concatenate([mean_idx[c], vix])
        s[:, ix] += z[:, [c]] * Sc
        # expected complete-data information, weighted by w z
        wc = wz[:, c]
        H[mean_idx[c], mean_idx[c]] += (wc @ obs) / v[c]
        cross = (wc @ e) / v[c] ** 2  # d2 / dmu_cj dv: one per column
        np.add.at(H, (mean_idx[c], var_idx[c]), cross)
        np.add.at(H, (var_idx[c], mean_idx[c]), cross)
        vv = (wc @ (e * e)) / v[c] ** 3 - (wc @ obs) / (2.0 * v[c] ** 2)
        np.add.at(H, (var_idx[c], var_idx[c]), vv)
        # minus the conditional second moment of the complete-data score (Louis 1982)
        Xc = np.sqrt(wc)[:, None] * np.concatenate([np.broadcast_to(P[c], (n, k - 1)), Sc], axis=1)
        full = np.concatenate([pidx, ix])
        H[np.ix_(full, full)] -= Xc.T @ Xc
    H += (s * sw[:, None]).T @ s
    return sandwich_share_interval(H, s, sw, pi)


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
    Z: np.ndarray, k: int, gens: Sequence[np.random.Generator], kinds: Sequence[str]
) -> list[Callable[[], np.ndarray]]:
    """One starting partition per start, made when the start runs; ``Z`` is standardised."""
    n = Z.shape[0]

    def partition(g: np.random.Generator, kind: str) -> Callable[[], np.ndarray]:
        if k == 1:
            return lambda: np.ones((n, 1))
        if kind.startswith("hierarchical"):
            return lambda: hierarchical_partition(Z, k, g, model="VVV" if kind.endswith("VVV") else "EII")
        if kind == "kmeans++":
            return lambda: kmeanspp_partition(Z, k, g)
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
    sw: np.ndarray | None = None,
) -> tuple[list[_Start], np.ndarray]:
    """EM from every start; the starts (parameters on the centred data, in data units) and the
    centre that was subtracted. ``sw``: survey weights (the starting partitions and the
    standardisation ignore them: they only choose where EM starts and the units it runs in).

    EM runs on standardised data (every column centred and divided by its standard deviation):
    the likelihood only changes by the constant Jacobian, added back, and every sum is well
    scaled even when the columns' variances differ by orders of magnitude. ``reg_covar`` stays in
    data units (``reg_covar / scale**2`` on the standardised scale).
    """
    n, d = X.shape
    family = STRUCTURES[structure][0]
    has_missing = not obs.all()
    n_run = 1 if k == 1 else n_init  # with one segment every start is the same
    kinds = [_start_kind(init, s) for s in range(n_run)]
    Z, center, scale = standardise(X)
    resp0 = _start_partitions(Z, k, start_generators(random_seed, n_run), kinds)
    if STRUCTURES[structure][2]:  # spherical: only a common scale keeps the structure's meaning
        Z = Z * (scale / math.sqrt(float(np.mean(scale**2))))
        scale = np.full(d, math.sqrt(float(np.mean(scale**2))))
    reg = reg_covar / scale**2
    # log |dZ/dX| over observed cells (weighted like the log-likelihood)
    jacobian = float(((obs.sum(axis=0) if sw is None else sw @ obs) * np.log(scale)).sum())
    total = n if sw is None else float(sw.sum())
    col_var = _col_var(X, obs)
    with single_threaded():
        full_rows = d * (d + 1) // 2 + d + 1
        p = full_rows if family == "full" else 2 * d + 1
        if not has_missing and n * p <= COMPILED_MAX_CELLS:
            runs = _compiled_starts(Z, structure, resp0, max_iter=max_iter, tol=tol, reg=reg, sw=sw)
        elif family == "diag" or (not has_missing and full_rows * n * 8 <= FULL_DESIGN_MAX_BYTES):
            FT = _design(Z, obs if has_missing else None, full=family == "full")
            runs = _batch_em(FT, d, structure, resp0, max_iter=max_iter, tol=tol, reg=reg, missing=has_missing, sw=sw)
            del FT
        else:
            patterns = _Patterns(obs)
            runs = [(*_full_em(Z, patterns, structure, make(), max_iter=max_iter, tol=tol, reg=reg, sw=sw), "")
                    for make in resp0]
    starts = []
    outer = scale[:, None] * scale[None, :]
    for kind, (ll, it, conv, w, mu, cov, early) in zip(kinds, runs):
        cov = cov * (scale**2 if family == "diag" else outer)
        ll = ll - jacobian
        deg = _degeneracy(cov, w, family, col_var, reg_covar, total) if np.isfinite(ll) else ["failed"]
        if early == "collapsed" and not deg:  # stopped on the way to a collapse
            deg = [f"collapse:{int(np.argmin(w))}"]
        starts.append(_Start(kind, ll, it, conv, w, mu * scale, cov, deg, early))
    return starts, center


def _col_var(X: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Each column's variance over its observed values."""
    return X.var(axis=0) if obs.all() else np.nanvar(X, axis=0)


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
    X: np.ndarray, obs: np.ndarray, best: _Start, center: np.ndarray, structure: str, sw: np.ndarray | None = None
) -> tuple[np.ndarray, float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Memberships, (pseudo-)log-likelihood and parameters (in data units) of the chosen start."""
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
    loglik = float(llr.sum()) if sw is None else float(llr @ sw)

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
        "best_start": int(rep["best"]),
        "start_init": [s.init for s in starts],
        "start_converged": [s.converged for s in starts],
        "start_n_iter": [s.n_iter for s in starts],
        "start_degenerate": [bool(s.degenerate) for s in starts],
        # starts stopped before convergence: "collapsed" (set aside) or "pruned" (too far below
        # the best start to catch up); "" for the others
        "start_stopped": [s.stopped for s in starts],
        # degenerate starts (collapsed variance, empty segment) are set aside when choosing the best
        "n_degenerate_starts": sum(bool(s.degenerate) for s in starts),
        # Mplus's check: was the best log-likelihood reached by more than one start?
        "replicated": rep["n_best"] >= 2 or rep["n_starts"] == 1,
        "n_missing": int((~obs).sum()),
    }


def _start_kind(init: str, s: int) -> str:
    """The kind of start ``s``: "both" runs a k-means++ partition, the two hierarchical partitions,
    then random and k-means++ partitions in turn."""
    if init == "both":
        return _BOTH[s] if s < len(_BOTH) else ("kmeans++" if s % 2 == 0 else "random")
    return init


#: the first starts of ``init="both"``: k-means++ (so that ``n_init=1`` keeps the start it always
#: had: on discrete ratings the VVV agglomeration can isolate a cluster that is constant in a
#: column, a start that collapses), then the two hierarchical partitions (mclust's VVV start and
#: Ward / EII)
_BOTH = ("kmeans++", "hierarchical-VVV", "hierarchical-EII")


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


def diagonal_terms(result: SegmentationResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The terms of a diagonal mixture's log joint density, for compiled scorers of new data.

    ``log w_j + log N(x | mu_j, diag var_j) = logw[j] + sum_a (C[j, a] + x_a (A[j, a] x_a + B[j, a]))``,
    a missing ``x_a`` leaving its term out (as :func:`predict_proba` does).

    Parameters
    ----------
    result : SegmentationResult
        From :func:`fit_gmm`.

    Returns
    -------
    (logw, A, B, C) or None
        ``logw`` shape (k,); ``A`` (= -1 / (2 var)), ``B`` (= mu / var) and ``C`` (the per-cell
        constant) shape (k, d), C-contiguous float64. ``None`` for a full-covariance structure.

    Examples
    --------
    >>> X = np.r_[np.zeros((5, 1)), np.ones((5, 1))] + np.linspace(0, 0.1, 10)[:, None]
    >>> r = fit_gmm(X, 2, random_seed=0)
    >>> logw, A, B, C = diagonal_terms(r)
    >>> L = logw + (C + X[:, None, :] * (A * X[:, None, :] + B)).sum(axis=2)
    >>> bool(np.allclose(np.exp(L - L.max(1, keepdims=True)) / np.exp(L - L.max(1, keepdims=True)).sum(1, keepdims=True),
    ...                  predict_proba(r, X)))
    True
    """
    family, w, mu, var = _params_of(result)
    if family != "diag":
        return None
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    d = mu.shape[1]
    W = _diag_coefficients(mu, var, logw, True)  # [A | B | C | log w], (k, 3d + 1)
    A, B, C = (np.ascontiguousarray(W[:, s : s + d]) for s in (0, d, 2 * d))
    return logw, A, B, C


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


# ============================================================================ covariates on membership
def covariate_measurement(result: SegmentationResult, data: Any, rows: np.ndarray | None = None) -> Any:
    """The measurement part of a fitted Gaussian mixture, for the one-step covariate EM
    (:func:`latentseg.models._mnlogit.fit_concomitant`).

    Parameters: means and log variances (diagonal and spherical structures, with analytic scores)
    or means and Cholesky factors (log diagonal, lower off-diagonal; full structures, numeric
    scores). The M-step is the weighted closed form over each respondent's observed values (full
    structures: conditional expectations of the unobserved ones), ``reg_covar`` added as in
    :func:`fit_gmm`.

    Parameters
    ----------
    result : SegmentationResult
        From :func:`fit_gmm`.
    data : DataFrame or ndarray, shape (n, d)
        The data it was fitted on.
    rows : ndarray of int, optional
        Use only these rows.

    Returns
    -------
    MeasurementModel

    Examples
    --------
    >>> X = np.r_[np.zeros((5, 1)), np.ones((5, 1))] + np.linspace(0, 0.1, 10)[:, None]
    >>> r = fit_gmm(X, 2, random_seed=0)
    >>> mm = covariate_measurement(r, X)
    >>> mm.log_density(mm.theta).shape, mm.theta.size
    ((10, 2), 4)
    """
    from latentseg.models._mnlogit import MeasurementModel

    X = _new_data(result, data)
    if rows is not None:
        X = X[rows]
    structure = str(result.settings.get("covariance", "VVI"))
    family, vary, spherical = STRUCTURES[structure]
    reg_covar = float(result.settings.get("reg_covar", 1e-6))
    _, _, mu0, cov0 = _params_of(result)
    k, d = mu0.shape
    obs = ~np.isnan(X)
    Xz = np.where(obs, X, 0.0)
    n_free = n_free_params(structure, k, d) - (k - 1)
    nm = k * d

    if family == "diag":
        nv = (k if vary else 1) * (1 if spherical else d)

        def variances(t: np.ndarray) -> np.ndarray:
            lv = t[nm:].reshape(k if vary else 1, 1 if spherical else d)
            return np.broadcast_to(np.exp(lv), (k, d))

        def log_density(t: np.ndarray) -> np.ndarray:
            mu, v = t[:nm].reshape(k, d), variances(t)
            D = (Xz[:, None, :] - mu[None]) ** 2 / v[None] + np.log(v)[None] + _LOG_2PI
            return -0.5 * (D * obs[:, None, :]).sum(axis=2)

        def scores(t: np.ndarray) -> np.ndarray:
            mu, v = t[:nm].reshape(k, d), variances(t)
            diff = (Xz[:, None, :] - mu[None]) * obs[:, None, :]
            out = np.zeros((X.shape[0], k, nm + nv))
            for c in range(k):
                out[:, c, c * d : (c + 1) * d] = diff[:, c] / v[c]
            g = 0.5 * (diff**2 / v[None] - obs[:, None, :])  # (n, k, d) d/d log v_cj
            if vary and not spherical:
                for c in range(k):
                    out[:, c, nm + c * d : nm + (c + 1) * d] = g[:, c]
            elif vary:
                for c in range(k):
                    out[:, c, nm + c] = g[:, c].sum(axis=1)
            elif not spherical:
                out[:, :, nm:] = g
            else:
                out[:, :, nm] = g.sum(axis=2)
            return out

        def m_step(R: np.ndarray, t: np.ndarray) -> np.ndarray:
            N = R.T @ obs.astype(float)  # (k, d)
            S1 = R.T @ Xz
            mu_old = t[:nm].reshape(k, d)
            with np.errstate(invalid="ignore", divide="ignore"):
                mu = np.where(N > 0, S1 / N, mu_old)
            SS = R.T @ (Xz * Xz) - 2 * mu * S1 + mu * mu * N
            SS = np.maximum(SS, 0.0)
            if vary and not spherical:
                v = SS / np.maximum(N, 1e-300)
            elif vary:
                v = SS.sum(axis=1, keepdims=True) / np.maximum(N.sum(axis=1, keepdims=True), 1e-300)
            elif not spherical:
                v = SS.sum(axis=0, keepdims=True) / np.maximum(N.sum(axis=0, keepdims=True), 1e-300)
            else:
                v = np.atleast_2d(SS.sum() / max(N.sum(), 1e-300))
            return np.r_[mu.ravel(), np.log(v + reg_covar).ravel()]

        v0 = cov0  # (k, d)
        lv0 = np.log(v0[:, :1] if spherical else v0) if vary else np.log(v0[:1, :1] if spherical else v0[:1])
        theta0 = np.r_[mu0.ravel(), lv0.ravel()]

        def unpack(t: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
            mu, v = t[:nm].reshape(k, d).copy(), np.array(variances(t))
            if vary:
                return {"means": mu, "variances": v}, {}, mu, {}
            return {"means": mu}, {"variances": v[0].copy()}, mu, {}

        return MeasurementModel(theta0, log_density, m_step, scores, n_free, unpack)

    tril = np.tril_indices(d, -1)
    nc = k if vary else 1
    per = d + len(tril[0])
    patterns = _Patterns(obs)

    def covs_of(t: np.ndarray) -> np.ndarray:
        out = np.empty((nc, d, d))
        for c in range(nc):
            blk = t[nm + c * per : nm + (c + 1) * per]
            L = np.zeros((d, d))
            L[np.diag_indices(d)] = np.exp(blk[:d])
            L[tril] = blk[d:]
            out[c] = L @ L.T
        return np.broadcast_to(out, (k, d, d)) if not vary else out

    def pack_covs(covs: np.ndarray) -> np.ndarray:
        parts = []
        for c in range(nc):
            L = np.linalg.cholesky(covs[c])
            parts.append(np.r_[np.log(np.diag(L)), L[tril]])
        return np.concatenate(parts)

    def log_density_full(t: np.ndarray) -> np.ndarray:
        return _full_log_joint(X, patterns, np.ones(k), t[:nm].reshape(k, d), np.ascontiguousarray(covs_of(t)))

    def m_step_full(R: np.ndarray, t: np.ndarray) -> np.ndarray:
        mu_old, cov_old = t[:nm].reshape(k, d), np.ascontiguousarray(covs_of(t))
        _, mu, covs = _full_mstep(X, patterns, R, mu_old, cov_old, False, np.full(d, reg_covar))
        if not vary:
            Nk = R.sum(axis=0)
            pooled = ((covs - np.eye(d) * reg_covar) * Nk[:, None, None]).sum(axis=0) / Nk.sum() + np.eye(d) * reg_covar
            covs = pooled[None]
        return np.r_[mu.ravel(), pack_covs(covs)]

    def unpack_full(t: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
        mu, covs = t[:nm].reshape(k, d).copy(), np.array(covs_of(t))
        if vary:
            return {"means": mu, "covariances": covs}, {}, mu, {}
        return {"means": mu}, {"covariance": covs[0].copy()}, mu, {}

    theta0 = np.r_[mu0.ravel(), pack_covs(cov0 if vary else cov0[:1])]
    return MeasurementModel(theta0, log_density_full, m_step_full, None, n_free, unpack_full)
