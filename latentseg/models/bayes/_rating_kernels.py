"""The log posterior density of ``bayes-rating-lca``'s categorical model, laid out for many categories.

The model and the parameter vector are ``bayes-lca``'s
(:func:`latentseg.models.bayes._kernels.lca_categorical_logp`); rating items have every point of
their scale as a category (5 on 1-5, 10 on 1-10), so there are many more categories and item
blocks per respondent than on binned levels, and the parts of the shared kernel that scale with
them dominate. This kernel computes the same density and gradient (the log probabilities from the same
:func:`~latentseg.models.bayes._kernels.categorical_log_probs`, which writes them in place) with

- the segment x respondent layout (respondents innermost, contiguous): the log densities are one
  product ``log P @ Y'`` (k, N) and the responsibilities one vectorised exp over (k, N)
  (:func:`~latentseg.models.bayes._kernels.exp_inplace`), instead of short rows of k.

Measured (400 respondents, 16 items of 5 points, one core of the 2-core Xeon): 31 against 44 us
per gradient at k = 2, 78 against 114 us at k = 5. A gather / scatter over the (N, J) answer
codes instead of the one-hot products (``N J k`` instead of ``N C k`` operations) was tried and
was slower at these sizes (the BLAS products run many times faster per operation than indexed
loads). The result equals the shared kernel's up to the order of floating-point additions
(``tests/test_bayes_rating_lca.py``).

nutpie calls the C version, declared by :func:`register_cfunc` when this module is imported
(compiled on first use); it reads the shared kernels' buffer
(:func:`latentseg.models.bayes._kernels.pack_lca`).

Examples
--------
>>> import numpy as np
>>> from latentseg.models.bayes._kernels import lca_categorical_logp
>>> ncat = np.array([3, 2]); offsets = np.array([0, 3])
>>> Y = np.zeros((3, 5)); Y[[0, 0, 1, 2, 2], [0, 4, 2, 1, 3]] = 1.0  # one answer missing
>>> theta = np.linspace(-0.5, 0.5, 1 + 2 * 3)
>>> g1, g2 = np.empty(7), np.empty(7)
>>> a = rating_categorical_logp(theta, Y, offsets, ncat, 2, 1.0, 1.0, g1)
>>> b = lca_categorical_logp(theta, Y, offsets, ncat, 2, 1.0, 1.0, g2)
>>> bool(np.isclose(a, b) and np.allclose(g1, g2))
True
"""

from __future__ import annotations

import math

import numba
import numpy as np

from latentseg.models.bayes._kernels import (
    LCA_HEADER,
    categorical_log_probs,
    declare_cfunc,
    dirichlet_simplex,
    exp_inplace,
    simplex_log,
    status_jit,
)

__all__ = ["rating_categorical_logp", "register_cfunc", "CFUNC_NAME"]

#: The name under which :func:`register_cfunc` puts the C callback among the shared kernels' ones.
CFUNC_NAME = "rating-categorical"


@numba.njit(cache=True, nogil=True)
def rating_categorical_logp(
    theta: np.ndarray,
    Y: np.ndarray,
    offsets: np.ndarray,
    ncat: np.ndarray,
    k: int,
    alpha: float,
    beta: float,
    grad: np.ndarray,
    wt: np.ndarray | None = None,
) -> float:  # pragma: no cover - compiled
    """Nominal latent class model: the log posterior density, the gradient in ``grad``; the
    arguments and the result as :func:`latentseg.models.bayes._kernels.lca_categorical_logp`.

    Layout segment x respondent (respondents innermost, contiguous): the log densities are one
    product ``log P @ Y'`` (k, N), the responsibilities one vectorised exp over (k, N), the
    expected counts one product ``R @ Y`` (k, C); the log probabilities are written in place.
    ``wt`` (N,): survey weights as in :func:`latentseg.models.bayes._kernels.gmm_diag_logp`
    (``None``: unweighted)."""
    N, C = Y.shape
    a = k - 1
    logw = simplex_log(theta[:a], k)
    logp = categorical_log_probs(theta[a:], offsets, ncat, k)
    L = logp @ Y.T  # (k, N)
    for j in range(k):
        Lj = L[j]
        w = logw[j]
        for n in range(N):
            Lj[n] += w
    mx = L[0].copy()
    for j in range(1, k):
        Lj = L[j]
        for n in range(N):
            mx[n] = max(mx[n], Lj[n])
    for j in range(k):
        Lj = L[j]
        for n in range(N):
            Lj[n] -= mx[n]
    exp_inplace(L.reshape(k * N), np.empty(k * N, dtype=np.int64))
    tot = L[0].copy()
    for j in range(1, k):
        Lj = L[j]
        for n in range(N):
            tot[n] += Lj[n]
    lp = 0.0
    total = float(N)
    if wt is None:
        for n in range(N):
            lp += mx[n] + math.log(tot[n])
            tot[n] = 1.0 / tot[n]
    else:  # weighted responsibilities wt_n r_nj: the counts below become weighted counts
        total = 0.0
        for n in range(N):
            lp += wt[n] * (mx[n] + math.log(tot[n]))
            tot[n] = wt[n] / tot[n]
            total += wt[n]
    sumr = np.zeros(k)
    for j in range(k):
        Lj = L[j]
        acc = 0.0
        for n in range(N):
            Lj[n] *= tot[n]
            acc += Lj[n]
        sumr[j] = acc
    T = L @ Y  # (k, C) expected category counts per segment
    lp += dirichlet_simplex(logw, sumr, total, alpha, grad, 0)
    # item probabilities: Dirichlet(beta) with the simplex Jacobian, and the gradient of that and
    # of the counts' multinomial log-likelihood (dirichlet_simplex's terms, in its order; its
    # normalising constant, which depends only on the block size, computed once per size)
    cmax = 0
    for b in range(ncat.shape[0]):
        cmax = max(cmax, ncat[b])
    const = np.full(cmax + 1, np.nan)
    lg_beta = math.lgamma(beta)
    pos = a
    for j in range(k):
        for b in range(ncat.shape[0]):
            o = offsets[b]
            c = ncat[b]
            if math.isnan(const[c]):
                const[c] = math.lgamma(c * beta) - c * lg_beta + math.log(c)
            tt = 0.0
            for m in range(c):
                tt += T[j, o + m]
            blk = const[c]
            gl = 0.0
            for m in range(c):
                lpm = logp[j, o + m]
                p = math.exp(lpm)
                g = T[j, o + m] - tt * p + beta - c * beta * p
                blk += beta * lpm
                if m == c - 1:
                    gl = g
                else:
                    grad[pos + m] = g
            for m in range(c - 1):
                grad[pos + m] -= gl
            lp += blk
            pos += c - 1
    return lp


def _rating_c(dim, x_, out_, logp_, user_data_):  # pragma: no cover - compiled
    # the buffer of latentseg.models.bayes._kernels.pack_lca (categorical)
    head = numba.carray(user_data_, (LCA_HEADER,), np.float64)
    N = int(head[0])
    C = int(head[1])
    J = int(head[2])
    k = int(head[3])
    total = LCA_HEADER + N * C + 3 * J
    buf = numba.carray(user_data_, (total + N,), np.float64)  # weights always there: ones when unweighted
    o = LCA_HEADER
    Y = buf[o : o + N * C].reshape((N, C))
    o += N * C
    offsets = buf[o : o + J].astype(np.int64)
    ncat = buf[o + J : o + 2 * J].astype(np.int64)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    logp = numba.carray(logp_, (1,))
    # one specialisation of the kernel (the weighted one: weights of one give the unweighted
    # values bit for bit, as in _kernels._lca_c), so the callback compiles it once
    val = rating_categorical_logp(x, Y, offsets, ncat, k, head[4], head[5], out, buf[total : total + N])
    logp[0] = val
    return status_jit(val, out)


def register_cfunc() -> str:
    """Make the C callback available to nutpie's route under :data:`CFUNC_NAME`
    (``latentseg.models.bayes._kernels.cfunc(CFUNC_NAME)`` compiles it on first use, cached on
    disk); done when this module is imported. Returns the name."""
    return declare_cfunc(CFUNC_NAME, _rating_c)


register_cfunc()
