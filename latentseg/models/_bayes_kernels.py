"""Log posterior densities and their gradients for the Bayesian mixtures, compiled with numba.

These are the same models as the PyMC models in :mod:`latentseg.models.bayes_gmm` and
:mod:`latentseg.models.bayes_lca` (``tests/test_bayes_models.py`` checks the log density and the
gradient against PyMC's at random points), written out by hand so that the default sampler
(nutpie) does not have to compile a PyTensor graph: on our 2-core machine that compilation took
70 s with an empty cache and 7-13 s with a warm one per model, more than the sampling itself.
Numba compiles each function here once (about 3 s, cached on disk afterwards) and the same
compiled code serves every k, every data set and every chain.

Every function takes the unconstrained parameter vector ``theta``, writes the gradient of the log
posterior density (log prior + log likelihood + log Jacobian of the transforms) into ``grad`` and
returns the log density. The segment is marginalised: the likelihood of respondent n is
``logsumexp_j (log w_j + log p(x_n | theta_j))``; missing values drop out of ``log p``.

Layouts of ``theta`` (k segments):

- weights, every family: ``z`` (k,), ``log g_j`` where ``g_j ~ Gamma(alpha, 1)``;
  ``w = g / sum(g)`` is then Dirichlet(alpha, ..., alpha) (the normalised-Gamma construction).
- diagonal Gaussian mixture: then ``mu`` (k, d) row-major, then ``log sigma`` (k, d).
- nominal latent class: then ``h`` (k, C) with ``C = sum_j C_j`` (the categories of every item,
  item blocks side by side); ``h = log g``, ``g ~ Gamma(beta, 1)``, probabilities normalised
  within each item block (Dirichlet(beta) per segment and item).
- ordinal latent class (adjacent-category logit): then ``b`` (k, J) segment locations, then the
  free thresholds, ``C_j - 2`` per item (the last threshold of an item is minus the sum of the
  others: thresholds sum to zero, as in the EM engine).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["gmm_diag_logp", "lca_categorical_logp", "lca_ordinal_logp", "mixture_responsibilities"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: log sigma outside +-this is treated as outside the support (a sampler's wild first steps)
_LOGSD_LIMIT = 30.0


@numba.njit(cache=True, nogil=True)
def mixture_responsibilities(L: np.ndarray, logw: np.ndarray, cst: np.ndarray) -> float:
    """Turn log component densities into responsibilities, in place.

    ``L`` (N, k) holds ``log p(x_n | segment j)`` (without the constant ``cst``); on return it
    holds ``p(segment j | x_n)``. Returns ``sum_n [cst_n + logsumexp_j(logw_j + L_nj)]``.
    """
    N, k = L.shape
    total = 0.0
    for n in range(N):
        mx = -np.inf
        for j in range(k):
            v = L[n, j] + logw[j]
            L[n, j] = v
            if v > mx:
                mx = v
        s = 0.0
        for j in range(k):
            v = L[n, j] - mx
            # exp(-37) < 2^-53: such a term cannot change the sum in double precision
            e = math.exp(v) if v > -37.0 else 0.0
            L[n, j] = e
            s += e
        total += mx + math.log(s) + cst[n]
        inv = 1.0 / s
        for j in range(k):
            L[n, j] *= inv
    return total


@numba.njit(cache=True, nogil=True)
def _log_weights(z: np.ndarray) -> np.ndarray:
    k = z.shape[0]
    mx = z.max()
    s = 0.0
    for j in range(k):
        s += math.exp(z[j] - mx)
    return z - (mx + math.log(s))


@numba.njit(cache=True, nogil=True)
def _weights_terms(z: np.ndarray, logw: np.ndarray, sumr: np.ndarray, n: int, alpha: float, grad: np.ndarray) -> float:
    """Gradient of the likelihood and of the Gamma(alpha, 1) prior (with the log Jacobian) in z."""
    lga = math.lgamma(alpha)
    lp = 0.0
    for j in range(z.shape[0]):
        ez = math.exp(z[j])
        grad[j] = sumr[j] - n * math.exp(logw[j]) + alpha - ez
        lp += alpha * z[j] - ez - lga
    return lp


@numba.njit(cache=True, nogil=True)
def gmm_diag_logp(
    theta: np.ndarray,
    F: np.ndarray,
    cst: np.ndarray,
    k: int,
    d: int,
    alpha: float,
    mean_loc: np.ndarray,
    mean_scale: np.ndarray,
    logsd_loc: np.ndarray,
    logsd_scale: float,
    grad: np.ndarray,
) -> float:
    """Diagonal Gaussian mixture.

    ``F`` (N, 3d) is ``[x^2, x, o]`` with ``x`` the centred data (0 where missing) and ``o`` the
    0/1 observed indicator; ``cst`` (N,) is ``-0.5 log(2 pi)`` times the number of observed
    values. Priors: ``mu_jd ~ Normal(mean_loc_d, mean_scale_d)`` (centred units),
    ``log sigma_jd ~ Normal(logsd_loc_d, logsd_scale)`` (sigma log-normal).
    """
    N = F.shape[0]
    kd = k * d
    z = theta[:k]
    mu = theta[k : k + kd]
    ls = theta[k + kd : k + 2 * kd]
    for i in range(kd):
        if not (-_LOGSD_LIMIT < ls[i] < _LOGSD_LIMIT):
            grad[:] = 0.0
            return -np.inf
    logw = _log_weights(z)
    inv = np.exp(-2.0 * ls)
    P = np.empty((3 * d, k))
    for j in range(k):
        for e in range(d):
            i = j * d + e
            P[e, j] = -0.5 * inv[i]
            P[d + e, j] = mu[i] * inv[i]
            P[2 * d + e, j] = -0.5 * mu[i] * mu[i] * inv[i] - ls[i]
    L = F @ P
    lp = mixture_responsibilities(L, logw, cst)
    S = L.T @ F  # (k, 3d): sum_n r x^2, sum_n r x, sum_n r o
    sumr = L.sum(axis=0)
    lp += _weights_terms(z, logw, sumr, N, alpha, grad)
    log_s0 = np.log(mean_scale)
    log_t0 = math.log(logsd_scale)
    for j in range(k):
        for e in range(d):
            i = j * d + e
            m = mu[i]
            sxx = S[j, e]
            sx = S[j, d + e]
            so = S[j, 2 * d + e]
            u = (m - mean_loc[e]) / mean_scale[e]
            v = (ls[i] - logsd_loc[e]) / logsd_scale
            grad[k + i] = (sx - m * so) * inv[i] - u / mean_scale[e]
            grad[k + kd + i] = (sxx - 2.0 * m * sx + m * m * so) * inv[i] - so - v / logsd_scale
            lp += -0.5 * u * u - log_s0[e] - 0.5 * v * v - log_t0 - 2.0 * _HALF_LOG_2PI
    return lp


@numba.njit(cache=True, nogil=True)
def _block_log_normalise(h: np.ndarray, offsets: np.ndarray, ncat: np.ndarray) -> np.ndarray:
    """Row-wise, within each item block: ``h - logsumexp(h[block])``."""
    k, C = h.shape
    out = np.empty((k, C))
    for j in range(k):
        for b in range(ncat.shape[0]):
            o = offsets[b]
            c = ncat[b]
            mx = -np.inf
            for m in range(c):
                if h[j, o + m] > mx:
                    mx = h[j, o + m]
            s = 0.0
            for m in range(c):
                s += math.exp(h[j, o + m] - mx)
            lse = mx + math.log(s)
            for m in range(c):
                out[j, o + m] = h[j, o + m] - lse
    return out


@numba.njit(cache=True, nogil=True)
def lca_categorical_logp(
    theta: np.ndarray,
    Y: np.ndarray,
    offsets: np.ndarray,
    ncat: np.ndarray,
    k: int,
    alpha: float,
    beta: float,
    grad: np.ndarray,
) -> float:
    """Nominal latent class model.

    ``Y`` (N, C) is the one-hot design (an item's block is all zero where it is missing);
    ``offsets`` / ``ncat`` (J,) locate the item blocks. Item probabilities Dirichlet(beta).
    """
    N, C = Y.shape
    z = theta[:k]
    h = theta[k : k + k * C].reshape((k, C))
    logw = _log_weights(z)
    logpi = _block_log_normalise(h, offsets, ncat)
    L = Y @ logpi.T
    lp = mixture_responsibilities(L, logw, np.zeros(N))
    T = L.T @ Y  # (k, C) expected category counts per segment
    sumr = L.sum(axis=0)
    lp += _weights_terms(z, logw, sumr, N, alpha, grad)
    lgb = math.lgamma(beta)
    for j in range(k):
        for b in range(ncat.shape[0]):
            o = offsets[b]
            c = ncat[b]
            tot = 0.0
            for m in range(c):
                tot += T[j, o + m]
            for m in range(c):
                hv = h[j, o + m]
                eh = math.exp(hv)
                grad[k + j * C + o + m] = T[j, o + m] - tot * math.exp(logpi[j, o + m]) + beta - eh
                lp += beta * hv - eh - lgb
    return lp


@numba.njit(cache=True, nogil=True)
def ordinal_thresholds(free: np.ndarray, ncat: np.ndarray, free_offsets: np.ndarray) -> np.ndarray:
    """Full thresholds (J, Cmax - 1), zero-padded: the free ones, then minus their sum."""
    J = ncat.shape[0]
    cmax = ncat.max()
    tau = np.zeros((J, cmax - 1))
    for b in range(J):
        nf = ncat[b] - 2
        s = 0.0
        for l in range(nf):
            tau[b, l] = free[free_offsets[b] + l]
            s += tau[b, l]
        tau[b, nf] = -s
    return tau


@numba.njit(cache=True, nogil=True)
def ordinal_log_probs(b: np.ndarray, tau: np.ndarray, offsets: np.ndarray, ncat: np.ndarray, C: int) -> np.ndarray:
    """log P(y_j = m | segment) (k, C) of the adjacent-category logit, item blocks side by side:
    ``eta_m = m b - sum_{l < m} tau_l``, normalised over m."""
    k, J = b.shape
    out = np.empty((k, C))
    for j in range(k):
        for i in range(J):
            o = offsets[i]
            c = ncat[i]
            acc = 0.0
            mx = -np.inf
            for m in range(c):
                if m > 0:
                    acc += tau[i, m - 1]
                v = m * b[j, i] - acc
                out[j, o + m] = v
                if v > mx:
                    mx = v
            s = 0.0
            for m in range(c):
                s += math.exp(out[j, o + m] - mx)
            lse = mx + math.log(s)
            for m in range(c):
                out[j, o + m] -= lse
    return out


@numba.njit(cache=True, nogil=True)
def lca_ordinal_logp(
    theta: np.ndarray,
    Y: np.ndarray,
    offsets: np.ndarray,
    ncat: np.ndarray,
    free_offsets: np.ndarray,
    k: int,
    alpha: float,
    location_scale: float,
    threshold_scale: float,
    grad: np.ndarray,
) -> float:
    """Ordinal latent class model (adjacent-category logit, thresholds shared by the segments).

    Priors: locations ``b_ji ~ Normal(0, location_scale)``; every threshold (the free ones and the
    derived last one) contributes ``Normal(0, threshold_scale)`` (a zero-sum normal).
    """
    N, C = Y.shape
    J = ncat.shape[0]
    z = theta[:k]
    b = theta[k : k + k * J].reshape((k, J))
    free = theta[k + k * J :]
    tau = ordinal_thresholds(free, ncat, free_offsets)
    logw = _log_weights(z)
    logp = ordinal_log_probs(b, tau, offsets, ncat, C)
    L = Y @ logp.T
    lp = mixture_responsibilities(L, logw, np.zeros(N))
    T = L.T @ Y
    sumr = L.sum(axis=0)
    lp += _weights_terms(z, logw, sumr, N, alpha, grad)
    gtau = np.zeros(tau.shape)
    log_sb = math.log(location_scale)
    log_st = math.log(threshold_scale)
    for i in range(J):
        o = offsets[i]
        c = ncat[i]
        for j in range(k):
            tot = 0.0
            em = 0.0
            gm = 0.0
            for m in range(c):
                p = math.exp(logp[j, o + m])
                tot += T[j, o + m]
                em += m * p
                gm += m * T[j, o + m]
            bv = b[j, i]
            grad[k + j * J + i] = gm - tot * em - bv / (location_scale * location_scale)
            lp += -0.5 * (bv / location_scale) ** 2 - log_sb - _HALF_LOG_2PI
            # d log P_m / d tau_l = -[l < m] + P(y > l)
            upper_t = 0.0
            upper_p = 0.0
            for l in range(c - 2, -1, -1):
                upper_t += T[j, o + l + 1]
                upper_p += math.exp(logp[j, o + l + 1])
                gtau[i, l] += -upper_t + tot * upper_p
        nf = c - 2
        last = tau[i, nf]
        for l in range(nf + 1):
            lp += -0.5 * (tau[i, l] / threshold_scale) ** 2 - log_st - _HALF_LOG_2PI
        for l in range(nf):
            grad[k + k * J + free_offsets[i] + l] = (
                gtau[i, l] - gtau[i, nf] - tau[i, l] / threshold_scale**2 + last / threshold_scale**2
            )
    return lp
