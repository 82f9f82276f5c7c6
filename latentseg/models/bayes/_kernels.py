"""Log posterior densities and their gradients for the Bayesian mixtures, compiled with numba.

These are the same models as the PyMC models in :mod:`latentseg.models.bayes.gmm` and
:mod:`latentseg.models.bayes.lca` (``tests/test_bayes_models.py`` checks the log density and the
gradient against PyMC's at random points), written out by hand so that the default sampler
(nutpie) does not have to compile a PyTensor graph: on our 2-core machine that compilation took
70 s with an empty cache and 7-13 s with a warm one per model, more than the sampling itself.
Numba compiles each function here once (about 3 s, cached on disk afterwards) and the same
compiled code serves every k, every data set and every chain.

Every function takes the unconstrained parameter vector ``theta``, writes the gradient of the log
posterior density (log prior + log likelihood + log Jacobian of the transforms) into ``grad`` and
returns the log density. The segment is marginalised: the likelihood of respondent n is
``logsumexp_j (log w_j + log p(x_n | theta_j))``; missing values drop out of ``log p``.

Layouts of ``theta`` (k segments). Probability vectors use PyMC's ``simplex`` transform (the
one ``pm.Dirichlet`` uses): a vector ``p`` of length m is ``softmax(u)`` with
``u = (y_1, ..., y_{m-1}, -sum(y))``, i.e. ``y`` are the first m - 1 centred log probabilities,
and the log Jacobian is ``log m + sum_c log p_c``.

- weights, every family: ``y`` (k - 1,), Dirichlet(alpha, ..., alpha).
- diagonal Gaussian mixture: then ``mu`` (k, d) row-major, then ``log sigma`` (k, d), or (d,)
  when the segments share their sds (mclust EEI).
- nominal latent class: then, segment by segment and item by item, ``C_i - 1`` simplex
  coordinates of the item's response probabilities (Dirichlet(beta)).
- ordinal latent class (adjacent-category logit): then ``b`` (k, J) segment locations, then the
  free thresholds, ``C_i - 2`` per item (the last threshold of an item is minus the sum of the
  others: thresholds sum to zero, as in the EM engine).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "gmm_diag_logp",
    "lca_categorical_logp",
    "lca_ordinal_logp",
    "mixture_responsibilities",
    "simplex_log",
    "simplex_log_into",
    "categorical_log_probs",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: log sigma outside +-this is treated as outside the support (a sampler's wild first steps)
_LOGSD_LIMIT = 30.0


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
#: 1.5 * 2**52: adding it to a double of magnitude < 2**51 rounds it to an integer held in the low
#: bits of the sum's bit pattern (the round-to-integer step without a float -> int conversion,
#: which AVX2 cannot vectorise)
_MAGIC = 6755399441055744.0
_MAGIC_BITS = 0x4338000000000000


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def exp_inplace(v: np.ndarray, bits: np.ndarray) -> None:
    """``v = exp(v)`` for a 1-d array of arguments <= 0, in a form the compiler vectorises
    (numba's ``math.exp`` is a scalar library call: 3 to 6 times slower here).

    exp(x) = 2^m exp(r), m = round(x / ln 2), |r| <= ln(2) / 2, exp(r) by its Taylor polynomial
    of degree 13 (truncation error below 1e-17 relative) evaluated by Estrin's scheme (four
    dependent steps instead of Horner's thirteen), 2^m assembled in the exponent bits (``bits``
    is int64 scratch of the same length). Arguments below -700 are treated as -700
    (exp(-700) < 1e-304: nothing next to the row's largest term, which is exp(0) = 1).
    Relative error below 5e-16.
    """
    n = v.shape[0]
    tf = bits.view(np.float64)
    for i in range(n):
        x = v[i]
        if x < -700.0:
            x = -700.0
        t = x * _LOG2E + _MAGIC
        kf = t - _MAGIC
        r = (x - kf * _LN2_HI) - kf * _LN2_LO
        tf[i] = t
        r2 = r * r
        r4 = r2 * r2
        q0 = 1.0 + r
        q1 = 0.5 + r * (1.0 / 6.0)
        q2 = (1.0 / 24.0) + r * (1.0 / 120.0)
        q3 = (1.0 / 720.0) + r * (1.0 / 5040.0)
        q4 = (1.0 / 40320.0) + r * (1.0 / 362880.0)
        q5 = (1.0 / 3628800.0) + r * (1.0 / 39916800.0)
        q6 = (1.0 / 479001600.0) + r * (1.0 / 6227020800.0)
        lo = (q0 + q1 * r2) + (q2 + q3 * r2) * r4
        hi = (q4 + q5 * r2) + q6 * r4
        v[i] = lo + hi * (r4 * r4)
    for i in range(n):  # 2^m: (bit pattern of t) - (that of _MAGIC) = m
        bits[i] = (bits[i] - _MAGIC_BITS + 1023) << 52
    scale = bits.view(np.float64)
    for i in range(n):
        v[i] *= scale[i]


@numba.njit(cache=True, nogil=True)
def softmax_rows(L: np.ndarray, logw: np.ndarray, row_lse: np.ndarray, bits: np.ndarray) -> None:
    """``L[n] = softmax(logw + L[n])`` for every row, in place, and ``row_lse[n] =
    logsumexp(logw + L[n])``. ``L`` (N, k) C-contiguous; ``bits`` int64 scratch of N * k."""
    N, k = L.shape
    for n in range(N):
        mx = -np.inf
        for j in range(k):
            v = L[n, j] + logw[j]
            L[n, j] = v
            if v > mx:
                mx = v
        row_lse[n] = mx
        for j in range(k):
            L[n, j] -= mx
    exp_inplace(L.reshape(N * k), bits)
    for n in range(N):
        s = 0.0
        for j in range(k):
            s += L[n, j]
        row_lse[n] += math.log(s)
        inv = 1.0 / s
        for j in range(k):
            L[n, j] *= inv


@numba.njit(cache=True, nogil=True)
def mixture_responsibilities(L: np.ndarray, logw: np.ndarray, cst: np.ndarray, wt: np.ndarray | None = None) -> float:
    """Turn log component densities into responsibilities, in place.

    ``L`` (N, k), C-contiguous, holds ``log p(x_n | segment j)`` (without the constant ``cst``);
    on return it holds ``p(segment j | x_n)``. Returns
    ``sum_n [cst_n + logsumexp_j(logw_j + L_nj)]``. With survey weights ``wt`` (N,): row n of the
    responsibilities is multiplied by ``wt_n`` and the sum is ``sum_n wt_n [...]`` (the
    pseudo-log-likelihood; ``wt=None`` is the unweighted code, unchanged).
    """
    N, k = L.shape
    row_lse = np.empty(N)
    softmax_rows(L, logw, row_lse, np.empty(N * k, dtype=np.int64))
    total = 0.0
    if wt is None:
        for n in range(N):
            total += row_lse[n] + cst[n]
    else:
        for n in range(N):
            total += wt[n] * (row_lse[n] + cst[n])
            for j in range(k):
                L[n, j] *= wt[n]
    return total


@numba.njit(cache=True, nogil=True)
def simplex_log_into(y: np.ndarray, m: int, out: np.ndarray, at: int) -> None:
    """:func:`simplex_log` written to ``out[at : at + m]`` (no temporary array)."""
    s = 0.0
    for i in range(m - 1):
        out[at + i] = y[i]
        s += y[i]
    out[at + m - 1] = -s
    mx = out[at]  # loops, not u.max() and u - c: those cost about 0.5 s of a cold compile
    for i in range(1, m):
        if out[at + i] > mx or math.isnan(out[at + i]):
            mx = out[at + i]
            if math.isnan(mx):
                break
    tot = 0.0
    for i in range(m):
        tot += math.exp(out[at + i] - mx)
    c = mx + math.log(tot)
    for i in range(m):
        out[at + i] -= c


@numba.njit(cache=True, nogil=True)
def simplex_log(y: np.ndarray, m: int) -> np.ndarray:
    """log p (m,) from simplex coordinates y (m - 1,): ``u = (y, -sum y)``, ``log softmax(u)``."""
    u = np.empty(m)
    simplex_log_into(y, m, u, 0)
    return u


@numba.njit(cache=True, nogil=True)
def dirichlet_simplex(logp: np.ndarray, counts: np.ndarray, total: float, conc: float, grad: np.ndarray, at: int) -> float:
    """Dirichlet(conc) log density of p = exp(logp) with the simplex Jacobian, plus the gradient of
    that and of a multinomial-type likelihood ``sum_c counts_c log p_c`` (with ``total`` the sum of
    the counts) in the simplex coordinates, written to ``grad[at : at + m - 1]``."""
    m = logp.shape[0]
    lp = math.lgamma(m * conc) - m * math.lgamma(conc) + math.log(m)
    gl = 0.0
    for c in range(m):
        p = math.exp(logp[c])
        g = counts[c] - total * p + conc - m * conc * p
        lp += conc * logp[c]
        if c == m - 1:
            gl = g
        else:
            grad[at + c] = g
    for c in range(m - 1):
        grad[at + c] -= gl
    return lp


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _weighted_sums(R: np.ndarray, Ft: np.ndarray, S: np.ndarray, sumr: np.ndarray) -> None:
    """``S[j, e] = sum_n R[j, n] Ft[e, n]`` and ``sumr[j] = sum_n R[j, n]``.

    Reassociation is allowed here (and only here) so that the compiler vectorises the sums over
    respondents; the order of the additions is fixed by the compiled code, so results are
    reproducible run to run on one machine (another CPU, with another vector width, may round
    the last bits differently and so give other draws for the same seed).
    """
    k, N = R.shape
    m = Ft.shape[0]
    for j in range(k):
        r = R[j]
        acc = 0.0
        for n in range(N):
            acc += r[n]
        sumr[j] = acc
        e = 0
        while e + 4 <= m:  # four features per pass: each responsibility loaded once for four sums
            f0, f1, f2, f3 = Ft[e], Ft[e + 1], Ft[e + 2], Ft[e + 3]
            a0 = a1 = a2 = a3 = 0.0
            for n in range(N):
                rn = r[n]
                a0 += rn * f0[n]
                a1 += rn * f1[n]
                a2 += rn * f2[n]
                a3 += rn * f3[n]
            S[j, e], S[j, e + 1], S[j, e + 2], S[j, e + 3] = a0, a1, a2, a3
            e += 4
        while e < m:
            f0 = Ft[e]
            a0 = 0.0
            for n in range(N):
                a0 += r[n] * f0[n]
            S[j, e] = a0
            e += 1


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def gmm_diag_logp(
    theta: np.ndarray,
    Ft: np.ndarray,
    cst: np.ndarray,
    k: int,
    d: int,
    alpha: float,
    mean_loc: np.ndarray,
    mean_scale: np.ndarray,
    logsd_loc: np.ndarray,
    logsd_scale: float,
    grad: np.ndarray,
    ks: int = 0,
    wt: np.ndarray | None = None,
) -> float:
    """Diagonal Gaussian mixture.

    ``Ft`` (3d, N), feature-major, is ``[x^2, x, o]`` with ``x`` the centred data (0 where
    missing) and ``o`` the 0/1 observed indicator; without missing values it may be just
    ``[x^2, x]`` (2d, N), ``o`` being all ones (a third less work). ``cst`` (N,) is
    ``-0.5 log(2 pi)`` times the number of observed values. Priors: ``mu_jd ~ Normal(mean_loc_d,
    mean_scale_d)`` (centred units), ``log sigma_jd ~ Normal(logsd_loc_d, logsd_scale)`` (sigma
    log-normal). ``ks`` is the number of rows of sds: ``k`` (or 0, the default, meaning ``k``)
    for segment-specific sds (mclust VVI), 1 for sds shared by the segments (EEI), whose ``d``
    log sds then follow the means in ``theta``. ``wt`` (N,): survey weights, used as given: the
    likelihood is the pseudo-log-likelihood ``sum_n wt_n log p(x_n)`` (an integer weight 2 is the
    row twice); ``None`` (the default) runs the unweighted code unchanged.

    The respondents are the innermost loop everywhere (the layout is segment x respondent), so
    every pass over the data is a contiguous, vectorised loop; for the sizes of a survey
    (hundreds to thousands of respondents, k <= 10) this is 2-3 times faster than two BLAS
    products on the respondent-major layout.
    """
    m, N = Ft.shape
    kd = k * d
    a = k - 1
    if ks <= 0:
        ks = k
    sd_n = ks * d
    mu = theta[a : a + kd]
    ls = theta[a + kd : a + kd + sd_n]
    for i in range(sd_n):
        if not (-_LOGSD_LIMIT < ls[i] < _LOGSD_LIMIT):
            grad[:] = 0.0
            return -np.inf
    logw = simplex_log(theta[:a], k)
    inv = np.empty(sd_n)
    for i in range(sd_n):
        inv[i] = math.exp(-2.0 * ls[i])
    complete = m == 2 * d
    # L[j, n] = log w_j + log p(x_n | j) - cst_n
    L = np.empty((k, N))
    for j in range(k):
        c = logw[j]
        so_ = j * d if ks > 1 else 0  # this segment's row of sds
        if complete:
            for e in range(d):
                i = j * d + e
                c += -0.5 * mu[i] * mu[i] * inv[so_ + e] - ls[so_ + e]
        row = L[j]
        for n in range(N):
            row[n] = c
        e = 0
        while e + 2 <= d:  # two features (four rows of Ft) per pass over the respondents
            i = j * d + e
            q = so_ + e
            a2, a1 = -0.5 * inv[q], mu[i] * inv[q]
            b2, b1 = -0.5 * inv[q + 1], mu[i + 1] * inv[q + 1]
            f2, f1, g2, g1 = Ft[e], Ft[d + e], Ft[e + 1], Ft[d + e + 1]
            for n in range(N):
                row[n] += (a2 * f2[n] + a1 * f1[n]) + (b2 * g2[n] + b1 * g1[n])
            e += 2
        if e < d:
            i = j * d + e
            q = so_ + e
            a2, a1 = -0.5 * inv[q], mu[i] * inv[q]
            f2, f1 = Ft[e], Ft[d + e]
            for n in range(N):
                row[n] += a2 * f2[n] + a1 * f1[n]
        for e in range(d):
            i = j * d + e
            q = so_ + e
            if not complete:
                a0 = -0.5 * mu[i] * mu[i] * inv[q] - ls[q]
                f0 = Ft[2 * d + e]
                for n in range(N):
                    row[n] += a0 * f0[n]
    # responsibilities, in place, and the log-likelihood
    mx = L[0].copy()
    for j in range(1, k):
        row = L[j]
        for n in range(N):
            mx[n] = max(mx[n], row[n])
    for j in range(k):
        row = L[j]
        for n in range(N):
            row[n] -= mx[n]
    exp_inplace(L.reshape(k * N), np.empty(k * N, dtype=np.int64))
    tot = L[0].copy()
    for j in range(1, k):
        row = L[j]
        for n in range(N):
            tot[n] += row[n]
    lp = 0.0
    total = float(N)
    if wt is None:
        for n in range(N):
            lp += mx[n] + math.log(tot[n]) + cst[n]
            tot[n] = 1.0 / tot[n]
    else:  # weighted responsibilities wt_n r_nj: every sum below becomes the weighted sum
        total = 0.0
        for n in range(N):
            lp += wt[n] * (mx[n] + math.log(tot[n]) + cst[n])
            tot[n] = wt[n] / tot[n]
            total += wt[n]
    for j in range(k):
        row = L[j]
        for n in range(N):
            row[n] *= tot[n]
    S = np.empty((k, m))  # sum_n r x^2, sum_n r x, sum_n r o (the last block only with missing values)
    sumr = np.empty(k)
    _weighted_sums(L, Ft, S, sumr)
    lp += dirichlet_simplex(logw, sumr, total, alpha, grad, 0)
    log_t0 = math.log(logsd_scale)
    shared = ks != k
    gs = grad[a + kd : a + kd + sd_n]
    if shared:  # their likelihood gradient sums over the segments; one prior term each, below
        gs[:] = 0.0
    for j in range(k):
        for e in range(d):
            i = j * d + e
            mv = mu[i]
            q = e if shared else i
            sxx = S[j, e]
            sx = S[j, d + e]
            so = sumr[j] if complete else S[j, 2 * d + e]
            u = (mv - mean_loc[e]) / mean_scale[e]
            grad[a + i] = (sx - mv * so) * inv[q] - u / mean_scale[e]
            g = (sxx - 2.0 * mv * sx + mv * mv * so) * inv[q] - so
            term = -0.5 * u * u - math.log(mean_scale[e])
            if shared:
                gs[e] += g
                term -= _HALF_LOG_2PI
            else:  # segment-specific sds: the prior term here, in the order the kernel always used
                v = (ls[i] - logsd_loc[e]) / logsd_scale
                gs[i] = g - v / logsd_scale
                term = term - 0.5 * v * v - log_t0 - 2.0 * _HALF_LOG_2PI
            lp += term
    if shared:
        for e in range(d):
            v = (ls[e] - logsd_loc[e]) / logsd_scale
            gs[e] -= v / logsd_scale
            lp += -0.5 * v * v - log_t0 - _HALF_LOG_2PI
    return lp


@numba.njit(cache=True, nogil=True)
def _column_sums(L: np.ndarray) -> np.ndarray:
    """``L.sum(axis=0)`` (the same additions in the same order) without compiling numpy's axis
    checks and their error messages."""
    N, k = L.shape
    out = np.zeros(k)
    for n in range(N):
        for j in range(k):
            out[j] += L[n, j]
    return out


@numba.njit(cache=True, nogil=True)
def _total(w: np.ndarray) -> float:
    """``w.sum()`` (the same additions in the same order) for a 1-d array."""
    s = 0.0
    for i in range(w.shape[0]):
        s += w[i]
    return s


@numba.njit(cache=True, nogil=True)
def categorical_log_probs(coords: np.ndarray, offsets: np.ndarray, ncat: np.ndarray, k: int) -> np.ndarray:
    """log P (k, C) from the simplex coordinates of every segment and item, in layout order."""
    C = offsets[-1] + ncat[-1]
    out = np.empty((k, C))
    pos = 0
    for j in range(k):
        row = out[j]
        for b in range(ncat.shape[0]):
            c = ncat[b]
            simplex_log_into(coords[pos : pos + c - 1], c, row, offsets[b])
            pos += c - 1
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
    wt: np.ndarray | None = None,
) -> float:
    """Nominal latent class model.

    ``Y`` (N, C) is the one-hot design (an item's block is all zero where it is missing);
    ``offsets`` / ``ncat`` (J,) locate the item blocks. Item probabilities Dirichlet(beta).
    ``wt`` (N,): survey weights as in :func:`gmm_diag_logp` (``None``: unweighted).
    """
    N, C = Y.shape
    a = k - 1
    logw = simplex_log(theta[:a], k)
    logpi = categorical_log_probs(theta[a:], offsets, ncat, k)
    L = Y @ logpi.T
    lp = mixture_responsibilities(L, logw, np.zeros(N), wt)
    T = L.T @ Y  # (k, C) expected category counts per segment
    total = float(N) if wt is None else _total(wt)
    lp += dirichlet_simplex(logw, _column_sums(L), total, alpha, grad, 0)
    pos = a
    for j in range(k):
        for b in range(ncat.shape[0]):
            o = offsets[b]
            c = ncat[b]
            tot = 0.0
            for m in range(c):
                tot += T[j, o + m]
            lp += dirichlet_simplex(logpi[j, o : o + c], T[j, o : o + c], tot, beta, grad, pos)
            pos += c - 1
    return lp


@numba.njit(cache=True, nogil=True)
def ordinal_thresholds(free: np.ndarray, ncat: np.ndarray, free_offsets: np.ndarray) -> np.ndarray:
    """Full thresholds (J, Cmax - 1), zero-padded: the free ones, then minus their sum."""
    J = ncat.shape[0]
    cmax = ncat[0]
    for b in range(1, J):
        if ncat[b] > cmax:
            cmax = ncat[b]
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
    wt: np.ndarray | None = None,
) -> float:
    """Ordinal latent class model (adjacent-category logit, thresholds shared by the segments).

    Priors: locations ``b_ji ~ Normal(0, location_scale)``; every threshold (the free ones and the
    derived last one) contributes ``Normal(0, threshold_scale)`` (a zero-sum normal). ``wt`` (N,):
    survey weights as in :func:`gmm_diag_logp` (``None``: unweighted).
    """
    N, C = Y.shape
    J = ncat.shape[0]
    a = k - 1
    b = theta[a : a + k * J].reshape((k, J))
    free = theta[a + k * J :]
    tau = ordinal_thresholds(free, ncat, free_offsets)
    logw = simplex_log(theta[:a], k)
    logp = ordinal_log_probs(b, tau, offsets, ncat, C)
    L = Y @ logp.T
    lp = mixture_responsibilities(L, logw, np.zeros(N), wt)
    T = L.T @ Y
    total = float(N) if wt is None else _total(wt)
    lp += dirichlet_simplex(logw, _column_sums(L), total, alpha, grad, 0)
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
            grad[a + j * J + i] = gm - tot * em - bv / (location_scale * location_scale)
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
            grad[a + k * J + free_offsets[i] + l] = (
                gtau[i, l] - gtau[i, nf] - tau[i, l] / threshold_scale**2 + last / threshold_scale**2
            )
    return lp


# ---------------------------------------------------------------------------------------------
# C-callable versions for nutpie: int64(dim, x*, grad*, logp*, user_data*), where user_data
# points to one float64 buffer holding a small header and then the data arrays (see the pack_*
# functions). They are compiled once, on first use (and cached on disk), and serve every data set
# and k: nutpie calls them from its own threads without going through Python.
# Return codes as nutpie expects: 0 ok, 3 non-finite gradient, 4 non-finite log density.
# ---------------------------------------------------------------------------------------------
C_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)
_GMM_HEADER = 8
LCA_HEADER = 9


def pack_gmm(Ft: np.ndarray, cst: np.ndarray, k: int, alpha: float, mean_loc: np.ndarray, mean_scale: np.ndarray,
             logsd_loc: np.ndarray, logsd_scale: float, ks: int = 0, wt: np.ndarray | None = None) -> np.ndarray:
    """The user-data buffer of :func:`gmm_diag_logp`'s C version (``Ft`` (m, N), feature-major;
    ``ks`` the rows of sds as there: 0 or k segment-specific, 1 shared; ``wt`` (N,) survey
    weights, appended at the end (ones without them), the header's last field saying whether they
    were given)."""
    m, N = Ft.shape
    d = mean_loc.shape[0]
    head = np.array([N, d, k, alpha, logsd_scale, m, ks, float(wt is not None)], dtype=np.float64)
    # without survey weights, weights of one: the C version then calls the one (weighted)
    # specialisation of gmm_diag_logp, compiled once instead of twice (1.5-3 s on a cold cache), and
    # its results are bit for bit the unweighted code's (1.0 * x and sums of 1.0 are exact)
    weights = np.ones(N) if wt is None else np.asarray(wt, dtype=np.float64)
    return np.ascontiguousarray(np.concatenate([head, Ft.ravel(), cst, mean_loc, mean_scale, logsd_loc, weights]))


def pack_lca(Y: np.ndarray, offsets: np.ndarray, ncat: np.ndarray, free_offsets: np.ndarray, k: int, alpha: float,
             beta: float, location_scale: float, threshold_scale: float, ordinal: bool,
             wt: np.ndarray | None = None) -> np.ndarray:
    """The user-data buffer of the latent class models' C versions (offsets stored as floats;
    ``wt`` (N,) survey weights appended at the end, ones without them (as in :func:`pack_gmm`: one
    specialisation of each kernel in the callback), the header's last field saying whether they
    were given)."""
    N, C = Y.shape
    J = ncat.shape[0]
    head = np.array([N, C, J, k, alpha, beta if not ordinal else location_scale, threshold_scale, float(ordinal),
                     float(wt is not None)])
    weights = np.ones(N) if wt is None else np.asarray(wt, dtype=np.float64)
    return np.ascontiguousarray(
        np.concatenate([head, Y.ravel(), offsets.astype(np.float64), ncat.astype(np.float64),
                        free_offsets.astype(np.float64), weights])
    )


def _status(val: float, out: np.ndarray) -> int:  # pragma: no cover - compiled
    if not np.isfinite(val):
        return 4
    for i in range(out.shape[0]):
        if not np.isfinite(out[i]):
            return 3
    return 0


status_jit = numba.njit(cache=True, nogil=True)(_status)


def _gmm_c(dim, x_, out_, logp_, user_data_):  # pragma: no cover - compiled
    head = numba.carray(user_data_, (_GMM_HEADER,), np.float64)
    N = int(head[0])
    d = int(head[1])
    k = int(head[2])
    m = int(head[5])
    total = _GMM_HEADER + N * m + N + 3 * d
    buf = numba.carray(user_data_, (total + N,), np.float64)
    o = _GMM_HEADER
    Ft = buf[o : o + N * m].reshape((m, N))
    o += N * m
    cst = buf[o : o + N]
    o += N
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    logp = numba.carray(logp_, (1,))
    # the weights are always there (ones when unweighted: see pack_gmm)
    val = gmm_diag_logp(x, Ft, cst, k, d, head[3], buf[o : o + d], buf[o + d : o + 2 * d],
                        buf[o + 2 * d : o + 3 * d], head[4], out, int(head[6]), buf[total : total + N])
    logp[0] = val
    return status_jit(val, out)


def _lca_c(dim, x_, out_, logp_, user_data_):  # pragma: no cover - compiled
    head = numba.carray(user_data_, (LCA_HEADER,), np.float64)
    N = int(head[0])
    C = int(head[1])
    J = int(head[2])
    k = int(head[3])
    total = LCA_HEADER + N * C + 3 * J
    buf = numba.carray(user_data_, (total + N,), np.float64)
    o = LCA_HEADER
    Y = buf[o : o + N * C].reshape((N, C))
    o += N * C
    offsets = buf[o : o + J].astype(np.int64)
    ncat = buf[o + J : o + 2 * J].astype(np.int64)
    free_offsets = buf[o + 2 * J : o + 3 * J].astype(np.int64)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    logp = numba.carray(logp_, (1,))
    wt = buf[total : total + N]  # always there (ones when unweighted: see pack_lca)
    if head[7] > 0.5:
        val = lca_ordinal_logp(x, Y, offsets, ncat, free_offsets, k, head[4], head[5], head[6], out, wt)
    else:
        val = lca_categorical_logp(x, Y, offsets, ncat, k, head[4], head[5], out, wt)
    logp[0] = val
    return status_jit(val, out)


_EXPAND_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)


def _copy_c(dim, expanded, x_, out_, user_data_):  # pragma: no cover - compiled
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (expanded,))
    for i in range(dim):
        out[i] = x[i]
    return 0


_CFUNCS: dict[str, object] = {}
#: C callbacks of families outside this module, by name: (function, signature), compiled by
#: :func:`cfunc` on first use (:func:`declare_cfunc`)
_DECLARED: dict[str, tuple[object, object]] = {}


def declare_cfunc(name: str, py: object) -> str:
    """Make ``py`` (a function of signature :data:`C_SIG`) available as ``cfunc(name)``, compiled
    on first use (cached on disk): how a family outside this module (the rating model's kernel)
    gives nutpie's compiled route its own density. Returns ``name``."""
    _DECLARED.setdefault(name, (py, C_SIG))
    return name


def compiled_here(name: str) -> bool:
    """Whether the C callback :func:`cfunc` ``(name)`` and :func:`membership_summary` are compiled
    (or loaded from the disk cache) in this process already."""
    return name in _CFUNCS and bool(membership_summary.signatures)


def cfunc(name: str) -> object:
    """The compiled C callback ``"gaussian"``, ``"categorical"``, ``"copy"`` or one declared by
    :func:`declare_cfunc` (compiled on first use)."""
    if name not in _CFUNCS:
        builtin = {"gaussian": (_gmm_c, C_SIG), "categorical": (_lca_c, C_SIG), "copy": (_copy_c, _EXPAND_SIG)}
        py, sig = builtin[name] if name in builtin else _DECLARED[name]
        _CFUNCS[name] = numba.cfunc(sig, cache=True, nogil=True)(py)
    return _CFUNCS[name]


# ---------------------------------------------------------------------------------------------
# Posterior summaries of memberships (after sampling)
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _lerp(a: float, b: float, t: float) -> float:
    """numpy's interpolation between order statistics (the same rounding as ``np.quantile``)."""
    d = b - a
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@numba.njit(cache=True, nogil=True)
def _select(a: np.ndarray, kth: int, lo: int, hi: int) -> float:
    """The ``kth`` smallest of ``a[lo:hi + 1]`` (0-based within ``a``), by Hoare's quickselect with
    a median-of-three pivot; ``a`` is reordered so that ``a[lo:kth]`` <= ``a[kth]`` <=
    ``a[kth + 1:hi + 1]``. (``np.partition`` does the same but took seconds to compile.)"""
    while hi > lo:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            break
    return a[kth]


@numba.njit(cache=True, nogil=True)
def _quantile_pair(buf: np.ndarray, lo_q: float, hi_q: float) -> tuple[float, float]:
    """``np.quantile(buf, [lo_q, hi_q])`` (linear method) by selection, not sorting; ``buf`` is
    reordered."""
    T = buf.shape[0]
    out = np.empty(2)
    for i in range(2):
        pos = (T - 1) * (lo_q if i == 0 else hi_q)
        lo = int(math.floor(pos))
        if lo >= T - 1:
            lo = T - 1
        frac = pos - lo
        a = _select(buf, lo, 0, T - 1)
        b = a
        if lo + 1 < T:  # the next order statistic: the smallest to the right of lo
            b = buf[lo + 1]
            for m in range(lo + 2, T):
                if buf[m] < b:
                    b = buf[m]
        out[i] = _lerp(a, b, frac)
    return out[0], out[1]


@numba.njit(cache=True, nogil=True)
def membership_summary(
    L: np.ndarray, logw: np.ndarray, lo_q: float, hi_q: float,
    loglik: np.ndarray, z_mean: np.ndarray, z_int: np.ndarray, intervals: bool = True,
) -> None:
    """Per-respondent marginal log-likelihood and membership summaries over posterior draws.

    ``L`` (T, B, k), C-contiguous, holds ``log p(x_b | segment j, draw t)`` and is overwritten
    with the memberships ``softmax_j(log w_tj + L_tbj)``; ``logw`` (T, k). Writes ``loglik``
    (T, B) = ``logsumexp_j(log w_tj + L_tbj)``, ``z_mean`` (B, k), the posterior mean
    membership, and, with ``intervals``, ``z_int`` (B, k, 2), its ``lo_q`` / ``hi_q`` quantiles
    over the draws (numpy's linear method).
    """
    T, B, k = L.shape
    bits = np.empty(B * k, dtype=np.int64)
    for t in range(T):
        softmax_rows(L[t], logw[t], loglik[t], bits)
    buf = np.empty(T)
    for b in range(B):
        for j in range(k):
            acc = 0.0
            for t in range(T):
                v = L[t, b, j]
                buf[t] = v
                acc += v
            z_mean[b, j] = acc / T
            if intervals:
                lo, hi = _quantile_pair(buf, lo_q, hi_q)
                z_int[b, j, 0] = lo
                z_int[b, j, 1] = hi
