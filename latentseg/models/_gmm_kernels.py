"""Compiled (numba) EM for one start of a Gaussian mixture with complete data.

The same algorithm as :func:`latentseg.models.gmm._batch_em` (adaptively over-relaxed EM on the
design rows ``[x^2; x; 1]`` or ``[x_a x_b (a <= b); x; 1]``, the five-step stopping rule with
Aitken's projection, a start stopped when its EM update collapses a variance or when it cannot
catch up with the best start so far), written as loops so that a start costs a few microseconds
per iteration on small data instead of numpy's fixed cost per call (about 0.5-1 ms per iteration
for all starts together). Imported lazily by :mod:`latentseg.models.gmm`; compiled on first use
and cached on disk by numba.

Written for a short first compilation (with an empty cache it is part of the first Bayesian fit's
time): arrays are copied by loops, not slice assignments (``a[:] = b`` compiles numba's
shape-mismatch message, seconds), matrix products use ``np.dot(a, b, out)`` only, and the
full-covariance code sits in branches pruned at compile time for the diagonal families
(:func:`em_start`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LOG_2PI = math.log(2.0 * math.pi)


@njit(cache=True, nogil=True)
def _chol(A: np.ndarray, floor: float, L: np.ndarray) -> None:
    """Lower Cholesky factor of a symmetric matrix, written into ``L`` (zeros above the diagonal);
    a pivot below ``floor`` (rounding) is raised to it."""
    d = A.shape[0]
    for j in range(d):
        for m in range(j + 1, d):
            L[j, m] = 0.0
        s = A[j, j]
        for m in range(j):
            s -= L[j, m] * L[j, m]
        if s < floor:
            s = floor
        L[j, j] = math.sqrt(s)
        for i in range(j + 1, d):
            t = A[i, j]
            for m in range(j):
                t -= L[i, m] * L[j, m]
            L[i, j] = t / L[j, j]


@njit(cache=True, nogil=True)
def _coefficients(w, mu, var, chol, full, W):
    """Coefficient rows ``W`` (k, p): ``W @ f(x)`` = log w_j + log N(x | mu_j, S_j). ``full``:
    None for the diagonal families, True for full covariances (see :func:`em_start`)."""
    k, d = mu.shape
    if full is None:
        for j in range(k):
            c = math.log(w[j]) if w[j] > 0 else -np.inf
            for a in range(d):
                inv = 1.0 / var[j, a]
                W[j, a] = -0.5 * inv
                W[j, d + a] = mu[j, a] * inv
                c -= 0.5 * (_LOG_2PI + math.log(var[j, a]) + mu[j, a] * mu[j, a] * inv)
            W[j, 2 * d] = c
        return
    q = d * (d + 1) // 2
    Linv = np.zeros((d, d))
    P = np.zeros((d, d))
    for j in range(k):
        L = chol[j]
        # inverse of the lower factor by forward substitution
        for c in range(d):
            for r in range(d):
                Linv[r, c] = 0.0
            Linv[c, c] = 1.0 / L[c, c]
            for r in range(c + 1, d):
                s = 0.0
                for m in range(c, r):
                    s += L[r, m] * Linv[m, c]
                Linv[r, c] = -s / L[r, r]
        logdet = 0.0
        for a in range(d):
            logdet += 2.0 * math.log(L[a, a])
        for a in range(d):
            for b in range(a, d):
                s = 0.0
                for m in range(b, d):
                    s += Linv[m, a] * Linv[m, b]
                P[a, b] = s
                P[b, a] = s
        col = 0
        for a in range(d):
            for b in range(a, d):
                W[j, col] = (-0.5 if a == b else -1.0) * P[a, b]
                col += 1
        quad = 0.0
        for a in range(d):
            s = 0.0
            for b in range(d):
                s += P[a, b] * mu[j, b]
            W[j, q + a] = s
            quad += mu[j, a] * s
        c = math.log(w[j]) if w[j] > 0 else -np.inf
        W[j, q + d] = c - 0.5 * (d * _LOG_2PI + logdet + quad)


@njit(cache=True, nogil=True)
def _estep(F, W, T, sw, Wt, L, Lt):
    """(Pseudo-)log-likelihood at the coefficients ``W``, and the sufficient statistics ``T`` (k, p):
    two matrix products (BLAS) around one pass of log-sum-exp. ``sw`` (n,): survey weights (ones
    for an unweighted fit: multiplying by 1.0 is exact, so the results are bit for bit those of
    the unweighted algorithm). ``Wt`` (p, k), ``L`` (n, k), ``Lt`` (k, n): scratch (the products
    are written into them with ``np.dot(a, b, out)``, the one form of np.dot compiled here)."""
    n, p = F.shape
    k = W.shape[0]
    for j in range(k):
        for c in range(p):
            Wt[c, j] = W[j, c]
    np.dot(F, Wt, L)  # (n, k)
    ll = 0.0
    for i in range(n):
        m = -np.inf
        for j in range(k):
            if L[i, j] > m:
                m = L[i, j]
        tot = 0.0
        for j in range(k):
            e = math.exp(L[i, j] - m)
            L[i, j] = e
            tot += e
        ll += sw[i] * (m + math.log(tot))
        for j in range(k):
            L[i, j] = L[i, j] / tot * sw[i]
    for i in range(n):
        for j in range(k):
            Lt[j, i] = L[i, j]
    np.dot(Lt, F, T)
    return ll


@njit(cache=True, nogil=True)
def _mstep(T, n, vary, spherical, full, reg, w, mu, var, cov, chol):
    """Closed-form M-step from the sufficient statistics, in place (:func:`_collapsed` then says
    whether a variance collapsed). ``full``: None or True, as in :func:`em_start`."""
    k, d = mu.shape
    eps = 10 * 2.220446049250313e-16
    Nk = np.empty(k)
    for j in range(k):
        Nk[j] = T[j, T.shape[1] - 1] + eps
        w[j] = Nk[j] / n
    if full is None:
        dev = np.empty((k, d))
        for j in range(k):
            for a in range(d):
                mu[j, a] = T[j, d + a] / Nk[j]
                v = T[j, a] - T[j, d + a] * mu[j, a]
                dev[j, a] = v if v > 0.0 else 0.0
        if vary and not spherical:
            for j in range(k):
                for a in range(d):
                    var[j, a] = dev[j, a] / Nk[j] + reg[a]
        elif vary:
            for j in range(k):
                s = 0.0
                for a in range(d):
                    s += dev[j, a]
                for a in range(d):
                    var[j, a] = s / (Nk[j] * d) + reg[a]
        elif not spherical:
            tot = 0.0
            for j in range(k):
                tot += Nk[j]
            for a in range(d):
                s = 0.0
                for j in range(k):
                    s += dev[j, a]
                for j in range(k):
                    var[j, a] = s / tot + reg[a]
        else:
            tot = 0.0
            s = 0.0
            for j in range(k):
                tot += Nk[j]
                for a in range(d):
                    s += dev[j, a]
            for j in range(k):
                for a in range(d):
                    var[j, a] = s / (tot * d) + reg[a]
        return
    q = d * (d + 1) // 2
    S = np.zeros((k, d, d))
    for j in range(k):
        for a in range(d):
            mu[j, a] = T[j, q + a] / Nk[j]
        col = 0
        for a in range(d):
            for b in range(a, d):
                v = T[j, col] - Nk[j] * mu[j, a] * mu[j, b]
                S[j, a, b] = v
                S[j, b, a] = v
                col += 1
    if vary:
        for j in range(k):
            for a in range(d):
                for b in range(d):
                    cov[j, a, b] = S[j, a, b] / Nk[j]
    else:
        for a in range(d):
            for b in range(d):
                s = 0.0
                for j in range(k):
                    s += S[j, a, b]
                for j in range(k):
                    cov[j, a, b] = s / n
    floor = reg[0]
    for a in range(1, d):
        if reg[a] < floor:
            floor = reg[a]
    for j in range(k):
        for a in range(d):
            cov[j, a, a] += reg[a]
        _chol(cov[j], floor, chol[j])


@njit(cache=True, nogil=True)
def _collapsed(var, chol, full, reg, collapse):
    """Whether a variance (a squared Cholesky pivot) is within ``collapse`` of its floor."""
    d = reg.shape[0]
    if full is None:
        for j in range(var.shape[0]):
            for a in range(d):
                if var[j, a] - reg[a] <= collapse:
                    return True
        return False
    for j in range(chol.shape[0]):
        for a in range(d):
            if chol[j, a, a] * chol[j, a, a] - reg[a] <= collapse:
                return True
    return False


@njit(cache=True, nogil=True)
def _relax(aw, amu, avar, achol, ew, emu, evar, echol, eta, full, reg, w, mu, var, cov, chol):
    """Step from the accepted parameters past their EM update by ``eta`` (in place into w, mu,
    var / cov, chol): log weights, means, log variances or Cholesky factors with log diagonals.
    ``full``: None or True, as in :func:`em_start`."""
    k, d = amu.shape
    top = -np.inf
    lw = np.empty(k)
    for j in range(k):
        if aw[j] > 0 and ew[j] > 0:
            lw[j] = math.log(aw[j]) + eta * (math.log(ew[j]) - math.log(aw[j]))
        else:
            lw[j] = math.log(ew[j]) if ew[j] > 0 else -np.inf
        if lw[j] > top:
            top = lw[j]
    tot = 0.0
    for j in range(k):
        w[j] = math.exp(lw[j] - top)
        tot += w[j]
    for j in range(k):
        w[j] /= tot
        for a in range(d):
            mu[j, a] = amu[j, a] + eta * (emu[j, a] - amu[j, a])
    if full is None:
        for j in range(k):
            for a in range(d):
                v = math.exp(math.log(avar[j, a]) + eta * (math.log(evar[j, a]) - math.log(avar[j, a])))
                var[j, a] = v if v > reg[a] else reg[a]
        return
    for j in range(k):
        for a in range(d):
            for b in range(d):
                if b < a:
                    chol[j, a, b] = achol[j, a, b] + eta * (echol[j, a, b] - achol[j, a, b])
                elif b == a:
                    la = math.log(achol[j, a, a])
                    chol[j, a, a] = math.exp(la + eta * (math.log(echol[j, a, a]) - la))
                else:
                    chol[j, a, b] = 0.0
        for a in range(d):
            for b in range(a, d):
                s = 0.0
                for m in range(a + 1):
                    s += chol[j, a, m] * chol[j, b, m]
                cov[j, a, b] = s
                cov[j, b, a] = s


@njit(cache=True, nogil=True)
def _copy_params(w, mu, var, cov, chol, w_to, mu_to, var_to, cov_to, chol_to):
    """Copy one set of parameters into another of the same shapes (loops: a slice assignment
    such as ``w_to[:] = w`` compiles numba's shape-mismatch error message, seconds on a cold cache)."""
    k, d = mu.shape
    for j in range(k):
        w_to[j] = w[j]
        for a in range(d):
            mu_to[j, a] = mu[j, a]
            var_to[j, a] = var[j, a]
            for b in range(d):
                cov_to[j, a, b] = cov[j, a, b]
                chol_to[j, a, b] = chol[j, a, b]


def em_start(F, sw, T0, n_total, vary, spherical, full, max_iter, limit, reg, bar, window, eta_growth, eta_max,
             prune_after, prune_margin, prune_factor, collapse):
    """EM for one start from the sufficient statistics ``T0`` (k, p) of its starting partition;
    ``sw`` (n,) the survey weights (ones when unweighted) and ``n_total`` their sum.

    ``bar``: the best log-likelihood of a finished, non-degenerate start so far (-inf for none),
    below which a start that cannot catch up is pruned. Returns (loglik, n_iter, converged, stopped
    (0 no, 1 collapsed, 2 pruned), weights, means, variances (k, d), covariances (k, d, d)).

    The compiled loops (:func:`_em_start`) get ``full`` as None for the diagonal families and True
    for full covariances: numba drops the branches of an ``is None`` test on an argument before
    compiling, so the diagonal families never compile the full-covariance code (a third of the
    compile time on an empty cache) and the full ones not the diagonal code.
    """
    return _em_start(F, sw, T0, n_total, vary, spherical, True if full else None, max_iter, limit, reg, bar, window,
                     eta_growth, eta_max, prune_after, prune_margin, prune_factor, collapse)


@njit(cache=True, nogil=True)
def _em_start(F, sw, T0, n_total, vary, spherical, full, max_iter, limit, reg, bar, window, eta_growth, eta_max,
              prune_after, prune_margin, prune_factor, collapse):
    """:func:`em_start`'s loops; ``full`` None (diagonal families) or True (full covariances)."""
    n, p = F.shape
    k = T0.shape[0]
    d = reg.shape[0]
    w = np.empty(k)
    mu = np.empty((k, d))
    var = np.empty((k, d))
    cov = np.zeros((k, d, d))
    chol = np.zeros((k, d, d))
    _mstep(T0, n_total, vary, spherical, full, reg, w, mu, var, cov, chol)
    aw, amu, avar, acov, achol = w.copy(), mu.copy(), var.copy(), cov.copy(), chol.copy()
    ew, emu, evar, ecov, echol = w.copy(), mu.copy(), var.copy(), cov.copy(), chol.copy()
    W = np.empty((k, p))
    T = np.empty((k, p))
    Wt = np.empty((p, k))
    L = np.empty((n, k))
    Lt = np.empty((k, n))
    gains = np.full(window, np.inf)
    acc_ll = -np.inf
    eta = 1.0
    plain = False
    em_collapsed = False
    converged = False
    stopped = 0
    it = 0
    for it in range(1, max_iter + 1):
        _coefficients(w, mu, var, chol, full, W)
        ll = _estep(F, W, T, sw, Wt, L, Lt)
        gain = ll - acc_ll
        ok = (gain >= -1e-9 * (1.0 + abs(ll)) or plain) and math.isfinite(ll)
        if ok:
            _copy_params(w, mu, var, cov, chol, aw, amu, avar, acov, achol)
            acc_ll = ll
            for m in range(window - 1):
                gains[m] = gains[m + 1]
            gains[window - 1] = abs(gain)
        # converged: the window's gains and Aitken's projection of the rest are at most `limit`
        total = 0.0
        big = 0.0
        for m in range(window):
            total += gains[m]
            if gains[m] > big:
                big = gains[m]
        rest = np.inf
        first, last = gains[0], gains[window - 1]
        if math.isfinite(first) and first > 0:
            a = (last / first) ** (1.0 / (window - 1))
            if a < 1.0:
                rest = last * a / max(1.0 - a, 1e-300)
        done = big <= 1e-12 * (1.0 + abs(acc_ll)) or (total <= limit and rest <= limit)
        if not math.isfinite(ll) and plain:
            break
        if ok and em_collapsed:
            stopped = 1
            break
        if it > prune_after and ok and not done and acc_ll + prune_margin + prune_factor * rest < bar:
            stopped = 2
            break
        if done:
            converged = True
            break
        if it == max_iter:
            break
        if ok:
            _mstep(T, n_total, vary, spherical, full, reg, ew, emu, evar, ecov, echol)
            em_collapsed = _collapsed(evar, echol, full, reg, collapse)
            _relax(aw, amu, avar, achol, ew, emu, evar, echol, eta, full, reg, w, mu, var, cov, chol)
            eta = min(eta * eta_growth, eta_max)
            plain = False
        else:
            eta = 1.0
            _copy_params(ew, emu, evar, ecov, echol, w, mu, var, cov, chol)
            plain = True
    return acc_ll, it, converged, stopped, aw, amu, avar, acov


# ------------------------------------------------------------------ VVV agglomeration (mclust's hc)
@njit(cache=True, nogil=True)
def _hc_term(l, W, tr, alpha, beta, d, L):
    """Classification cost of one cluster of ``l`` points with scatter ``W`` (trace ``tr``):
    ``l log(det(W / l) + beta (tr + alpha) / l)``; the determinant is left out while ``l <= d``
    (it is zero), as in Fraley (1998)'s regularised VVV criterion."""
    c = beta * (tr + alpha) / l
    if l <= d or tr == 0.0:
        return l * math.log(c if tr > 0.0 else alpha * beta / l)
    det = 1.0
    for a in range(d):  # Cholesky of W / l in L; det(W / l) as the product of its squared diagonal
        for b in range(a + 1):
            s = W[a, b] / l
            for q in range(b):
                s -= L[a, q] * L[b, q]
            if a == b:
                if s <= 0.0:
                    return l * math.log(c)
                L[a, a] = math.sqrt(s)
                det *= s
            else:
                L[a, b] = s / L[b, b]
    if det == 0.0 or not math.isfinite(det):
        return l * math.log(c)
    logdet = math.log(det)
    if logdet > 0.0:
        return l * (logdet + math.log1p(c * math.exp(-logdet)))
    return l * math.log(math.exp(logdet) + c)


@njit(cache=True, nogil=True)
def _hc_pair(i, j, size, mean, W, tr, term, alpha, beta, Wij, L):
    """The change in cost of merging clusters ``i`` and ``j``; their merged scatter left in ``Wij``."""
    d = mean.shape[1]
    ni, nj = size[i], size[j]
    nij = ni + nj
    f = ni * nj / nij
    dm2 = 0.0
    for a in range(d):
        dm2 += (mean[j, a] - mean[i, a]) ** 2
    trij = tr[i] + tr[j] + f * dm2
    if nij > d and trij > 0.0:
        for a in range(d):
            da = mean[j, a] - mean[i, a]
            for b in range(a + 1):
                Wij[a, b] = W[i, a, b] + W[j, a, b] + f * da * (mean[j, b] - mean[i, b])
    return _hc_term(nij, Wij, trij, alpha, beta, d, L) - term[i] - term[j], trij


def hc_vvv(Z, counts, alpha, beta):
    """Greedy VVV agglomeration of the distinct rows of ``Z`` (row ``c`` standing for ``counts[c]``
    identical respondents) down to one cluster.

    Each step merges the two clusters whose merge raises the regularised classification cost
    (:func:`_hc_term`) least. Returns the merges in order, ``(m - 1, 2)``: cluster ``j`` joins
    cluster ``i``. Each row keeps its best partner, so a step costs O(m) pair costs plus the rows
    whose best partner was merged. Exact ties go to the pair mclust's scan would keep: clusters sit
    in slots (first occurrence order; a merge moves the last slot's cluster into the freed one)
    and the tied pair with the highest (higher slot, lower slot) wins.

    The work arrays are made here and the loops compiled (:func:`_hc_vvv_loops`): numpy's array
    constructors inside a compiled function cost about 3 s of its first compilation.
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    m, d = Z.shape
    out = np.zeros((max(m - 1, 0), 2), dtype=np.int64)
    _hc_vvv_loops(
        np.array(counts, dtype=np.float64), Z.copy(), np.zeros((m, d, d)), np.zeros(m), np.empty(m),
        np.zeros((d, d)), np.zeros((d, d)), np.full((m, m), np.inf), np.ones(m, dtype=np.bool_),
        np.arange(m, dtype=np.int64), np.arange(m, dtype=np.int64), np.zeros(m, dtype=np.int64),
        np.full(m, np.inf), out, float(alpha), float(beta),
    )
    return out


@njit(cache=True, nogil=True)
def _hc_vvv_loops(size, mean, W, tr, term, Wij, L, D, active, slot, who, best, bval, out, alpha, beta):
    """:func:`hc_vvv`'s loops on its work arrays (``size`` the counts, ``mean`` a copy of the rows,
    ``W`` and ``tr`` zeros, ``D`` and ``bval`` infinity, ``active`` True, ``slot`` and ``who``
    0..m-1); the merges written into ``out``."""
    m, d = mean.shape
    for c in range(m):
        term[c] = size[c] * math.log(alpha * beta / size[c])
    for i in range(m):
        for j in range(i + 1, m):
            c, _ = _hc_pair(i, j, size, mean, W, tr, term, alpha, beta, Wij, L)
            D[i, j] = c
            D[j, i] = c
    for i in range(m):
        for j in range(m):
            if j != i and D[i, j] < bval[i]:
                bval[i] = D[i, j]
                best[i] = j
    last = m - 1
    for step in range(m - 1):
        v = np.inf
        for r in range(m):
            if active[r] and bval[r] < v:
                v = bval[r]
        hi = -1
        lo = -1
        for r in range(m):  # ties: the pair mclust's scan keeps
            if not active[r] or bval[r] != v:
                continue
            for q in range(m):
                if q != r and active[q] and D[r, q] == v:
                    a_, b_ = (slot[r], slot[q]) if slot[r] > slot[q] else (slot[q], slot[r])
                    if a_ > hi or (a_ == hi and b_ > lo):
                        hi = a_
                        lo = b_
        i = who[lo]
        j = who[hi]
        out[step, 0] = i
        out[step, 1] = j
        _, trij = _hc_pair(i, j, size, mean, W, tr, term, alpha, beta, Wij, L)
        ni, nj = size[i], size[j]
        nij = ni + nj
        f = ni * nj / nij
        for a in range(d):
            da = mean[j, a] - mean[i, a]
            for b in range(d):
                W[i, a, b] = W[i, a, b] + W[j, a, b] + f * da * (mean[j, b] - mean[i, b])
        for a in range(d):
            mean[i, a] = (ni * mean[i, a] + nj * mean[j, a]) / nij
        size[i] = nij
        tr[i] = trij
        term[i] = _hc_term(nij, W[i], trij, alpha, beta, d, L)
        active[j] = False
        if hi != last:  # the last slot's cluster moves into the freed slot
            mover = who[last]
            slot[mover] = hi
            who[hi] = mover
        last -= 1
        bval[j] = np.inf
        bval[i] = np.inf
        for r in range(m):
            if not active[r] or r == i:
                continue
            c, _ = _hc_pair(i, r, size, mean, W, tr, term, alpha, beta, Wij, L)
            D[i, r] = c
            D[r, i] = c
            if c < bval[i]:
                bval[i] = c
                best[i] = r
        for r in range(m):
            if not active[r] or r == i:
                continue
            if best[r] == i or best[r] == j:
                bval[r] = np.inf
                for q in range(m):
                    if active[q] and q != r and D[r, q] < bval[r]:
                        bval[r] = D[r, q]
                        best[r] = q
            elif D[r, i] < bval[r]:
                bval[r] = D[r, i]
                best[r] = i
