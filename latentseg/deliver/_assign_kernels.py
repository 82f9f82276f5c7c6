"""Compiled (numba) scoring of new rows under a diagonal Gaussian mixture, for ``assign``.

The reference path, :func:`latentseg.models.gmm.predict_proba`, validates a copy of the data,
builds the design rows ``[x^2; x; m; 1]`` (5 x 20 + 1 rows for 20 columns) and multiplies them by
the coefficient rows with BLAS: several passes over memory per block. Here the log joint density
``log w_j + sum_a obs_a (c_ja + x_a (A_ja x_a + B_ja))`` (``A = -1/(2 var)``, ``B = mu / var``,
``c`` the per-cell constant, a missing value leaving its term out) is summed in one pass, a tile
of rows at a time held in cache, straight into the (k, n) output; the normalisation is the
engine's own :func:`latentseg.models._em.normalize_log` (the same exp); then one pass picks the
modal segment. Every row depends on that row alone, so blocks give the same numbers in any order.
The result agrees with the reference path to rounding (the sums run in another order: about
1e-14 in a probability); tests/test_assign_fast.py checks that on awkward data.

Imported lazily by :mod:`latentseg.deliver.assign`; compiled on first use and cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: rows per tile: 5 segments x 512 rows x 8 bytes stay in L1 while the columns stream past
TILE = 512


@njit(cache=True, nogil=True, boundscheck=False)
def diag_log_joint(X, A, B, C, logw, L, nobs, offset):  # pragma: no cover - compiled
    """``L[j, offset + i] = log w_j + log N(x_i,obs | mu_j, diag var_j)`` and ``nobs[offset + i]``,
    the values row i of X has observed, for every row of X (a block of the data).

    X: (m, d) float64, column-major (a cache-sized block); NaN = missing. A, B, C: (k, d);
    logw: (k,); L: (k, n) float64 out; nobs: (n,) int32 out. Returns the number of infinite
    values seen (the caller refuses them; L is then not meaningful).
    """
    m_all, d = X.shape
    k = A.shape[0]
    n_inf = 0
    for t0 in range(0, m_all, TILE):
        t1 = min(t0 + TILE, m_all)
        m = t1 - t0
        o0 = offset + t0
        o1 = offset + t1
        for c in range(k):
            Lc = L[c, o0:o1]
            for i in range(m):
                Lc[i] = logw[c]
        cnt = nobs[o0:o1]
        for i in range(m):
            cnt[i] = 0
        for a in range(d):
            x_col = X[t0:t1, a]
            odd = False  # any NaN or infinite value in this tile of the column
            for i in range(m):
                x = x_col[i]
                odd |= not (x - x == 0.0)
            if not odd:
                for i in range(m):
                    cnt[i] += 1
                for c in range(k):
                    aa = A[c, a]
                    bb = B[c, a]
                    cc = C[c, a]
                    Lc = L[c, o0:o1]
                    for i in range(m):
                        x = x_col[i]
                        Lc[i] += cc + x * (aa * x + bb)
            else:
                for i in range(m):
                    x = x_col[i]
                    if x == x:
                        if x - x != 0.0:
                            n_inf += 1
                        cnt[i] += 1
                for c in range(k):
                    aa = A[c, a]
                    bb = B[c, a]
                    cc = C[c, a]
                    Lc = L[c, o0:o1]
                    for i in range(m):
                        x = x_col[i]
                        v = cc + x * (aa * x + bb)
                        Lc[i] += v if x == x else 0.0
    return n_inf


@njit(cache=True, nogil=True, boundscheck=False)
def modal_segment(P, nobs, seg):  # pragma: no cover - compiled
    """``seg[i]``: the first segment of highest probability in column i of P (k, n), 0-based, or
    -1 where row i has nothing observed (its probabilities are set to NaN)."""
    k, n = P.shape
    for i in range(n):
        if nobs[i] == 0:
            for c in range(k):
                P[c, i] = np.nan
            seg[i] = -1
            continue
        best = 0
        top = P[0, i]
        for c in range(1, k):
            if P[c, i] > top:
                top = P[c, i]
                best = c
        seg[i] = best
