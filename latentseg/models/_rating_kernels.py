"""Sparse (gather / scatter) products of the rating latent class EM (family ``rating-lca``).

The latent class EM of :mod:`latentseg.models.lca` multiplies by the one-hot design ``X``
(n, D), ``D = sum_j C_j`` columns, once in the E-step (``log W @ X'``: each respondent's log
joint density) and once in the M-step (``z @ X``: expected counts per category). A respondent
has one 1 per answered item, so of the ``n D`` cells only ``n J`` are non-zero. On rating scales
``D / J`` is the mean number of points (5.0 on 1-5 scales, 7.5 on the example survey's 1-5 / 1-10
pair against 3 for binned opportunity levels), and the dense products waste that factor.

:class:`GatherDesign` does the same two products over the observed answers only: the E-step
adds, for every respondent, the log probability of each answer given (a gather over the answer
codes, missing answers skipped); the M-step adds each respondent's memberships to the count of
the category it answered (a scatter). Both loop over the batch of starts x segments innermost,
contiguous, so the compiler vectorises them. The results equal the dense products up to the
order of floating-point additions.

Examples
--------
>>> import numpy as np
>>> from latentseg.models.lca import OneHot, onehot
>>> codes = np.array([[0, 1], [1, -1], [2, 0]])
>>> n_cat = np.array([3, 2])
>>> g, d = GatherDesign(codes, n_cat), OneHot(onehot(codes, n_cat)[0])
>>> lw = np.log(np.full((4, 5), 0.3))
>>> bool(np.allclose(g.log_joint(lw), d.log_joint(lw)))
True
>>> z = np.random.default_rng(0).random((4, 3))
>>> bool(np.allclose(g.counts(z), d.counts(z)))
True
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["GatherDesign"]


@numba.njit(cache=True, nogil=True)
def _log_joint(lw: np.ndarray, idx: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """out[b, i] = sum_j lw[b, idx[i, j]] over idx[i, j] >= 0; lw (B, D), idx (n, J)."""
    B, D = lw.shape
    n, J = idx.shape
    lwT = np.ascontiguousarray(lw.T)  # (D, B): the batch innermost
    acc = np.zeros((n, B))
    for i in range(n):
        for j in range(J):
            t = idx[i, j]
            if t >= 0:
                for b in range(B):
                    acc[i, b] += lwT[t, b]
    return np.ascontiguousarray(acc.T)


@numba.njit(cache=True, nogil=True)
def _counts(z: np.ndarray, idx: np.ndarray, D: int) -> np.ndarray:  # pragma: no cover - compiled
    """out[b, d] = sum_i z[b, i] [idx[i, j] = d for some j]; z (B, n), idx (n, J)."""
    B, n = z.shape
    J = idx.shape[1]
    zT = np.ascontiguousarray(z.T)  # (n, B)
    acc = np.zeros((D, B))
    for i in range(n):
        for j in range(J):
            t = idx[i, j]
            if t >= 0:
                for b in range(B):
                    acc[t, b] += zT[i, b]
    return np.ascontiguousarray(acc.T)


class GatherDesign:
    """The one-hot design of categorical indicators, held as answer codes, with the two
    products the latent class EM needs (the interface of :class:`latentseg.models.lca.OneHot`).

    Parameters
    ----------
    codes : ndarray of int, shape (n, J)
        Category codes ``0..C_j - 1`` per item, ``-1`` where missing.
    n_cat : ndarray of int, shape (J,)
        Categories per item; item ``j`` takes design columns ``offset_j .. offset_j + C_j - 1``.
    """

    def __init__(self, codes: np.ndarray, n_cat: np.ndarray) -> None:
        offsets = np.r_[0, np.cumsum(n_cat)[:-1]].astype(np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        self.idx = np.ascontiguousarray(np.where(codes >= 0, offsets[None, :] + codes, -1))
        self.D = int(np.sum(n_cat))

    def log_joint(self, lw: np.ndarray) -> np.ndarray:
        """``lw @ X'``: (B, D) log item probabilities -> (B, n) sums over each respondent's answers."""
        return _log_joint(np.ascontiguousarray(lw, dtype=np.float64), self.idx)

    def counts(self, z: np.ndarray) -> np.ndarray:
        """``z @ X``: (B, n) memberships -> (B, D) expected counts per category."""
        return _counts(np.ascontiguousarray(z, dtype=np.float64), self.idx, self.D)
