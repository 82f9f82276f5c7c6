"""Rank-normalised split R-hat, bulk ESS and tail ESS, vectorised over all parameters at once.

ArviZ 1.x (``arviz_stats``) computes these diagnostics one parameter at a time in Python; for the
~100 scalar parameters of a mixture fit that loop dominates the cost of ``_mcmc_diagnostics``. The
functions here take every parameter in one array, ``x[chain, draw, *shape]``, and return the same
numbers as ``az.rhat(method="rank")``, ``az.ess(method="bulk")`` and ``az.ess(method="tail")``
(to ~1e-14 relative in ``tests/test_diagnostics.py``; only rounding differs), following the
definitions of Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC", Bayesian
Analysis 16(2), as ArviZ implements them:

* **Split chains.** Each chain of ``S`` draws is cut into its first and last ``S // 2`` draws (the
  middle draw is dropped when ``S`` is odd); the first halves of all chains come first, then the
  second halves, giving ``M = 2 C`` chains of ``n = S // 2`` draws.
* **Rank normalisation.** The ``N = M n`` split draws of a parameter are ranked together (ties get
  their average rank, ``r`` from 1 to ``N``) and mapped to ``z = Phi^-1((r - 3/8) / (N - 3/4 + 1))``
  (Blom's fractional offset).
* **R-hat.** On ``z``: ``B = n Var_m(mean_m)`` (divisor ``M - 1``), ``W = mean_m Var_m`` (divisor
  ``n - 1``), ``R = sqrt((B / W + n - 1) / n)``. The *bulk* R-hat uses the rank-normalised split
  draws; the *tail* (folded) R-hat uses the rank-normalised ``|draw - median|``, the median taken
  over the split draws. The result is the larger of the two, compared as Python's ``max(bulk,
  tail)`` does: a NaN tail R-hat leaves the bulk value, a NaN bulk R-hat gives NaN.
* **ESS** (Geyer's initial monotone sequence). From the FFT autocovariances ``acov_m(t)`` (divisor
  ``n``), ``var+ = (n - 1)/n * W + Var_m(mean_m)`` and ``rho(t) = 1 - (W - mean_m acov_m(t)) / var+``
  with ``rho(0) = 1``; pairs ``rho(2j) + rho(2j+1)`` are summed while positive (the last pair examined
  contributes its even term when it is positive or when the pair is non-negative), earlier pairs are
  made non-increasing, ``tau = -1 + 2 sum rho + rho_last``, floored at ``1 / log10(M n)``, and
  ``ESS = M n / tau`` (``1 / tau`` when ``relative``).
* **Bulk ESS** is the ESS of the rank-normalised split draws. **Tail ESS** is the smaller of the
  ESS of the split indicators ``draw <= q_lo`` and ``draw <= q_hi``, where ``q_lo, q_hi`` are the
  ``(1 - prob, prob)`` quantiles (``numpy.quantile``, linear) of all ``C S`` draws, odd middle
  draw included. ArviZ 1.x takes ``prob`` from ``rcParams["stats.ci_prob"]``, 0.89 by default, so
  its tail ESS uses the 11% and 89% quantiles, not the 5% / 95% of the paper; ``prob`` defaults
  to :data:`DEFAULT_TAIL_PROB` = 0.89 here for the same numbers.

Special cases, as ArviZ returns them:

* a parameter with any NaN draw, fewer than 4 draws per chain, or (R-hat only) fewer than 2 chains
  gives NaN;
* a constant parameter has R-hat NaN (0 / 0) and ESS ``M n`` (the split size, even with
  ``relative=True``, as ArviZ short-cuts any input whose range is below ``1e-15``);
* a parameter whose chains are each constant at different values has ``W = 0`` up to rounding,
  so an R-hat of ``inf`` or about ``1e16``.

Infinite draws rank like any other value (equal infinities tie). When the median of a parameter's
split draws is infinite, folding gives ``inf - inf = NaN`` for some draws; ArviZ's folded R-hat is
then NaN, and R-hat is the bulk value; so it is here.

How it is vectorised: one ``argsort`` per parameter row gives the ranks (the folded draws, which
fall then rise in that order, are re-sorted by a linear-time merge); the normal scores come from
one table of the ``2N - 1`` possible average ranks; the autocovariances of all series come from
one batched FFT, first over 64 lags only, then over all lags for the few series whose Geyer
sequence has not stopped by then; the Geyer truncation is a running minimum over pair sums.
Parameters are processed in blocks of about ``2**16`` draws whose work arrays are reused from
block to block (on this machine a fresh array costs more in page faults than the arithmetic on it).

To use it on a posterior ``xarray.Dataset``, stack the variables along a last axis::

    x = np.concatenate([ds[v].values.reshape(C, S, -1) for v in ds.data_vars], axis=2)
    d = summary_diagnostics(x)   # d["rhat"][i] belongs to the i-th flattened element
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_TAIL_PROB", "rhat_rank", "ess_bulk", "ess_tail", "summary_diagnostics"]

#: ArviZ 1.x's default ``rcParams["stats.ci_prob"]``, which its tail ESS uses as ``prob``
DEFAULT_TAIL_PROB = 0.89

#: ArviZ treats an input whose range is below ``np.finfo(float).resolution`` as constant
_CONSTANT_RANGE = float(np.finfo(float).resolution)

#: Blom's fractional offset in the rank back-transformation
_BLOM_C = 3.0 / 8.0


# --------------------------------------------------------------------------------------- helpers
class _Scratch:
    """Named scratch arrays, reused from one block of parameters to the next.

    A fresh array of a few hundred kB is a fresh mapping from the allocator, and every page of it
    costs a page fault when first written (about a third of the run time, measured, without this).
    """

    def __init__(self) -> None:
        self._store: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = float) -> np.ndarray:
        size = math.prod(shape)
        buf = self._store.get(name)
        if buf is None or buf.size < size:
            buf = self._store[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)


#: NumPy 2's FFTs write into a given ``out`` array
_FFT_HAS_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def _split_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], np.ndarray]:
    """Split chains, one parameter per row, and flag the parameters ArviZ rejects.

    Returns ``split`` ``(P, 2C, S // 2)`` float64 (each chain's first ``S // 2`` draws for all
    chains, then each chain's last ``S // 2``, ArviZ's order; the middle draw of an odd chain is
    dropped; rejected rows are zeroed so that the vectorised code stays finite), the draws
    ``(C, S, P)``, the trailing ``shape`` and a boolean ``(P,)`` mask of the rejected parameters:
    any NaN draw, fewer than 4 draws, no chain. R-hat's 2-chain minimum is checked by the caller.
    """
    a = np.asarray(x, dtype=float)
    if a.ndim < 2:
        raise ValueError(f"Expected draws shaped (chain, draw, ...); got an array of shape {a.shape}.")
    C, S = a.shape[:2]
    shape = a.shape[2:]
    a3 = a.reshape(C, S, -1)
    P, half = a3.shape[2], S // 2
    if C < 1 or S < 4 or P == 0:
        return np.zeros((P, 2 * C, half)), a3, shape, np.ones(P, bool)
    bad = np.isnan(a3).any(axis=(0, 1))
    split = np.empty((P, 2 * C, half))
    split[:, :C] = a3[:, :half].transpose(2, 0, 1)
    split[:, C:] = a3[:, S - half :].transpose(2, 0, 1)
    if bad.any():
        split[bad] = 0.0
    return split, a3, shape, bad


def _blom_table(size: int) -> np.ndarray:
    """Normal scores of every possible average rank ``1, 1.5, 2, ..., size`` (index ``2 r - 2``).

    Ranks with ties averaged are half-integers, so one ``ndtri`` call over this grid replaces one
    per draw; the arithmetic is ArviZ's ``ndtri((r - 3/8) / (size - 2 * 3/8 + 1))``.
    """
    from scipy.special import ndtri

    ranks = 1.0 + np.arange(2 * size - 1) / 2.0
    return ndtri((ranks - _BLOM_C) / (size - 2 * _BLOM_C + 1))


def _scores_of_sorted(srt: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rank-normal scores of rows already sorted ascending, ``(P, N)`` -> ``(P, N)``.

    The ranks are those of ``scipy.stats.rankdata(method="average")``, which ArviZ uses: the draws
    at sorted positions ``first..last`` (0-based) that share a value all get rank
    ``(first + last) / 2 + 1``. Without ties the result is a read-only broadcast of one row;
    with ties it is written to ``out``.
    """
    P, N = srt.shape
    table = _blom_table(N)
    tie = srt[:, 1:] == srt[:, :-1]  # position i + 1 holds the same value as position i
    scores = np.broadcast_to(table[::2], (P, N))  # no ties: rank i + 1 at sorted position i
    rows, at = np.nonzero(tie)  # row-major: the ties of a run are consecutive here
    if rows.size:
        # tie[p, i] links sorted positions i and i + 1; a run of k links covers positions
        # first..first + k of row p, whose average rank indexes the table at first + last.
        starts = np.ones(rows.size, bool)
        starts[1:] = (rows[1:] != rows[:-1]) | (at[1:] != at[:-1] + 1)
        ends = np.append(starts[1:], True)  # the last tie of each run
        run = np.cumsum(starts) - 1  # the run each tie belongs to
        first = at[starts]
        last = at[ends] + 1
        out[:] = scores
        scores = out
        value = table[first + last]
        scores[rows[starts], first] = value  # each run's first position ...
        scores[rows, at + 1] = value[run]  # ... and the positions its ties add
    return scores


def _z_and_folded(
    split: np.ndarray, folded: bool, z: np.ndarray, scratch: _Scratch
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Rank-normalised split draws, the same for the folded split draws, and the sorted draws.

    ``split`` is ``(P, M, n)``. The rank-normalised draws are written to ``z`` (same shape,
    C-contiguous: the scatter goes through a flat view) and returned, with the folded ones (in a
    scratch array; None unless ``folded``) and the sorted draws ``(P, M n)`` (a scratch array).
    The fold is ``|draw - median|``, the median over all ``M n`` split draws (``M n`` is even, so
    it is the mean of the two middle order statistics, as ``np.median`` computes it).
    """
    P, M, n = split.shape
    N = M * n
    flat = split.reshape(P, N)
    offsets = (np.arange(P) * N)[:, None]
    order = np.argsort(flat, axis=1)
    order += offsets  # now flat indices into (P, N)
    srt = np.take(flat.ravel(), order, out=scratch.get("sorted", (P, N)), mode="clip")
    z.reshape(P * N)[order] = _scores_of_sorted(srt, scratch.get("scores", (P, N)))
    if not folded:
        return z, None, srt
    # In sorted order the folded values fall then rise: two runs, which a stable (merge) sort
    # orders in linear time.
    with np.errstate(invalid="ignore"):  # inf - inf when the median is infinite
        median = (srt[:, N // 2 - 1] + srt[:, N // 2]) / 2
        fold = np.subtract(srt, median[:, None], out=scratch.get("folded", (P, N)))
    np.abs(fold, out=fold)
    fold_order = np.argsort(fold, axis=1, kind="stable")
    fold_order += offsets
    fold_sorted = np.take(fold.ravel(), fold_order, out=scratch.get("folded sorted", (P, N)), mode="clip")
    where = np.take(order.ravel(), fold_order, out=scratch.get("where", (P, N), np.intp), mode="clip")
    zf = fold  # reused: the folded draws are not needed any more
    zf.ravel()[where] = _scores_of_sorted(fold_sorted, scratch.get("scores", (P, N)))
    # An infinite (or NaN: -inf and +inf in the middle) median folds some draws to NaN; ArviZ
    # gives those NaN ranks (``nan_policy="omit"``) and so a NaN folded R-hat.
    zf[~np.isfinite(median)] = np.nan
    return z, zf.reshape(P, M, n), srt


def _rhat_columns(z: np.ndarray) -> np.ndarray:
    """Classic R-hat of each parameter of ``(P, M, n)`` (chains on axis 1, draws on axis 2)."""
    n = z.shape[2]
    chain_mean = np.mean(z, axis=2)
    chain_var = np.var(z, axis=2, ddof=1)
    between = n * np.var(chain_mean, axis=1, ddof=1)
    within = np.mean(chain_var, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _mean_autocov(a: np.ndarray, lags: int, scratch: _Scratch | None = None) -> np.ndarray:
    """Autocovariances at lags ``0..lags-1`` averaged over chains: ``(P, M, n)`` -> ``(P, lags)``.

    ``a`` holds chains already centred; the divisor is ``n`` (ArviZ's ``autocov``). The FFT is
    zero-padded to a 2-3-5-smooth length ``m >= n + lags - 1``, enough for those lags to be free
    of wrap-around; ArviZ pads to ``m >= 2n`` for all lags. The chain average is taken on the
    power spectra, so one inverse transform per parameter suffices (the transform is linear).
    """
    from scipy.fft import next_fast_len

    n = a.shape[2]
    m = next_fast_len(n + lags - 1, real=True)
    if scratch is not None and _FFT_HAS_OUT:
        spec_out = scratch.get("spectrum", a.shape[:2] + (m // 2 + 1,), complex)
        spec = np.fft.rfft(a, n=m, axis=2, out=spec_out)
    else:
        spec = np.fft.rfft(a, n=m, axis=2)
    power, imag = spec.real, spec.imag  # |spec|^2, in place
    np.multiply(power, power, out=power)
    np.multiply(imag, imag, out=imag)
    power += imag
    acov = np.fft.irfft(power.mean(axis=1), n=m, axis=1)[:, :lags]
    acov /= n
    return acov


def _geyer_tau(
    mean_acov: np.ndarray, mean_var: np.ndarray, var_plus: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Integrated autocorrelation time by ArviZ's Geyer rules, from the first ``K`` lags.

    ``mean_acov`` is ``(R, K)``. Returns ``tau`` (before the ``1 / log10`` floor) and a mask of
    the rows it settles: a row needs lags beyond ``K`` when its initial positive sequence has not
    stopped within them.

    ArviZ examines pair ``j`` = ``(rho[2j], rho[2j+1])`` for ``j = 1, 2, ...`` while the
    previous pair was positive and ``2j - 1 < n - 3``; ``J`` is the first pair it does not go
    past. Pairs ``0..J-1`` are summed after being made non-increasing (Geyer's initial monotone
    sequence, which turns the pair sums into their running minimum); pair ``J`` adds its even
    term when that term is positive or the pair is non-negative.
    """
    R, K = mean_acov.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    rho[:, 0] = 1.0
    j_max = max(0, math.ceil((n - 4) / 2))  # the last pair ArviZ can reach
    j_have = (K - 2) // 2  # the last pair these lags give
    complete = j_have >= j_max
    j_top = j_max if complete else j_have
    pairs = rho[:, 0 : 2 * j_top + 1 : 2] + rho[:, 1 : 2 * j_top + 2 : 2]  # (R, j_top + 1)
    stop = ~(pairs[:, : (j_max if complete else j_top + 1)] > 0)  # NaN stops too
    found = stop.any(axis=1)
    J = np.where(found, stop.argmax(axis=1), j_top) if stop.shape[1] else np.zeros(R, dtype=np.intp)
    settled = found | complete
    monotone = np.minimum.accumulate(pairs, axis=1)
    summed = np.where(np.arange(j_top + 1) < J[:, None], monotone, 0.0).sum(axis=1)
    rows = np.arange(R)
    rho_last = rho[rows, 2 * J]
    last = np.where((pairs[rows, J] >= 0) | (rho_last > 0), rho_last, 0.0)
    tau = -1.0 + 2.0 * summed + last
    return np.where(np.isnan(rho[:, 1]), np.nan, tau), settled


#: lags computed in the first, cheaper FFT pass; parameters that need more get a second pass
_FIRST_PASS_LAGS = 64


def _ess_columns(a: np.ndarray, relative: bool, scratch: _Scratch | None = None) -> np.ndarray:
    """Geyer ESS of each parameter of split draws ``(P, M, n)`` -> ``(P,)``, as ArviZ's ``_ess``.

    ``a`` is overwritten (each chain is centred in place).
    """
    P, M, n = a.shape
    size = M * n
    constant = (a.max(axis=(1, 2)) - a.min(axis=(1, 2))) < _CONSTANT_RANGE
    chain_mean = a.mean(axis=2)
    a -= chain_mean[:, :, None]

    lags = min(n, _FIRST_PASS_LAGS)
    mean_acov = _mean_autocov(a, lags, scratch)
    mean_var = mean_acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if M > 1:
        var_plus = var_plus + np.var(chain_mean, axis=1, ddof=1)
    tau, settled = _geyer_tau(mean_acov, mean_var, var_plus, n)
    if not settled.all():  # slowly mixing parameters: all lags
        redo = np.flatnonzero(~settled)
        tau[redo], _ = _geyer_tau(_mean_autocov(a[redo], n), mean_var[redo], var_plus[redo], n)

    tau = np.maximum(tau, 1.0 / np.log10(size))
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = (1.0 if relative else float(size)) / tau
    return np.where(constant, float(size), ess)


def _python_max(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Elementwise ``max(first, second)`` with Python's rule: ``second`` only if it is larger."""
    return np.where(second > first, second, first)


def _python_min(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Elementwise ``min(first, second)`` with Python's rule: ``second`` only if it is smaller."""
    return np.where(second < first, second, first)


def _tail_probs(prob: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(prob, Sequence):
        if len(prob) != 2:
            raise ValueError(f"prob must be a float or a (low, high) pair; got {prob!r}.")
        lo, hi = float(prob[0]), float(prob[1])
    else:
        p = float(prob)
        lo, hi = sorted((p, 1 - p))
    for q in (lo, hi):
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"prob must lie in [0, 1]; got {prob!r}.")
    return lo, hi


#: parameters are processed in blocks of about this many draws (chains x draws x parameters),
#: with work arrays reused from block to block (see _Scratch); 2**15 to 2**17 measured best
_BLOCK_DRAWS = 2**16


def _diagnose(
    x: np.ndarray, *, rhat: bool, bulk: bool, tail: bool, prob: float | Sequence[float], relative: bool
) -> dict[str, np.ndarray]:
    """The requested diagnostics of ``x[chain, draw, *shape]``, sharing the common work."""
    lo, hi = _tail_probs(prob)
    split, a3, shape, bad = _split_columns(x)
    P = split.shape[0]
    C, S = a3.shape[:2]
    keys = [key for key, wanted in (("rhat", rhat), ("ess_bulk", bulk), ("ess_tail", tail)) if wanted]
    out = {key: np.full(P, np.nan) for key in keys}
    if not bad.all():  # all bad also covers S < 4 and P == 0
        step = max(1, _BLOCK_DRAWS // (C * S))
        scratch = _Scratch()
        for start in range(0, P, step):
            block = slice(start, start + step)
            part = _diagnose_block(split[block], a3[:, :, block], rhat, bulk, tail, lo, hi, relative, scratch)
            for key in keys:
                out[key][block] = part[key]
        for key in keys:
            out[key][bad] = np.nan
    return {key: val.reshape(shape) for key, val in out.items()}


def _diagnose_block(
    split: np.ndarray,
    a3: np.ndarray,
    rhat: bool,
    bulk: bool,
    tail: bool,
    lo: float,
    hi: float,
    relative: bool,
    scratch: _Scratch,
) -> dict[str, np.ndarray]:
    """Diagnostics of the parameters of split draws ``(P, M, n)`` and draws ``(C, S, P)``."""
    P, M, n = split.shape
    C, S = a3.shape[:2]
    out: dict[str, np.ndarray] = {}
    # every series whose ESS is wanted, stacked: z of each parameter, then the tail indicators
    ess_in = scratch.get("ess input", ((P if bulk else 0) + (2 * P if tail else 0), M, n))
    srt = None
    if (rhat and C >= 2) or bulk:
        z = ess_in[:P] if bulk else scratch.get("z", (P, M, n))
        z, zf, srt = _z_and_folded(split, rhat and C >= 2, z, scratch)
        if zf is not None:
            out["rhat"] = _python_max(_rhat_columns(z), _rhat_columns(zf))
    if rhat and C < 2:
        out["rhat"] = np.full(P, np.nan)
    if tail:
        with np.errstate(invalid="ignore"):  # inf - inf between order statistics
            if srt is not None and S % 2 == 0:  # the split draws are all the draws: reuse the sort
                q = np.quantile(srt, [lo, hi], axis=1, overwrite_input=True)  # srt is done with
            else:  # ArviZ takes the quantiles over all draws, the middle one of an odd chain too
                q = np.quantile(a3.reshape(C * S, P), [lo, hi], axis=0)
        k = P if bulk else 0
        np.less_equal(split, q[0][:, None, None], out=ess_in[k : k + P])
        np.less_equal(split, q[1][:, None, None], out=ess_in[k + P :])
    if ess_in.shape[0]:
        ess = _ess_columns(ess_in, relative, scratch)
        if bulk:
            out["ess_bulk"] = ess[:P]
        if tail:
            k = P if bulk else 0
            out["ess_tail"] = _python_min(ess[k : k + P], ess[k + P : k + 2 * P])
    return out


# ------------------------------------------------------------------------------------ public API
def rhat_rank(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat of every parameter, as ``arviz.rhat(..., method="rank")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, *shape)
        Posterior draws; every trailing element is a separate parameter.

    Returns
    -------
    ndarray, shape (*shape)
        ``max(bulk R-hat, folded R-hat)`` on rank-normalised split chains. NaN for a parameter
        with a NaN draw, for fewer than 2 chains or 4 draws, and for a constant parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.models.bayes._diagnostics import rhat_rank
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 500, 3))
    >>> x[0, :, 2] += 3.0                      # one chain stuck elsewhere for parameter 2
    >>> r = rhat_rank(x)
    >>> r.shape, bool(r[0] < 1.01), bool(r[2] > 1.1)
    ((3,), True, True)
    """
    return _diagnose(x, rhat=True, bulk=False, tail=False, prob=DEFAULT_TAIL_PROB, relative=False)["rhat"]


def ess_bulk(x: np.ndarray, *, relative: bool = False) -> np.ndarray:
    """Bulk effective sample size of every parameter, as ``arviz.ess(..., method="bulk")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, *shape)
        Posterior draws; every trailing element is a separate parameter.
    relative : bool, default False
        Divide by the number of split draws (``2 * chain * (draw // 2)``).

    Returns
    -------
    ndarray, shape (*shape)
        ESS of the rank-normalised split chains. NaN for a parameter with a NaN draw or fewer
        than 4 draws; the split size for a constant parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.models.bayes._diagnostics import ess_bulk
    >>> rng = np.random.default_rng(1)
    >>> e = ess_bulk(rng.normal(size=(2, 1000, 2)))
    >>> e.shape, bool(np.all((e > 1500) & (e < 2600)))
    ((2,), True)
    """
    out = _diagnose(x, rhat=False, bulk=True, tail=False, prob=DEFAULT_TAIL_PROB, relative=relative)
    return out["ess_bulk"]


def ess_tail(
    x: np.ndarray, *, prob: float | Sequence[float] = DEFAULT_TAIL_PROB, relative: bool = False
) -> np.ndarray:
    """Tail effective sample size of every parameter, as ``arviz.ess(..., method="tail")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, *shape)
        Posterior draws; every trailing element is a separate parameter.
    prob : float or (float, float), default 0.89
        A float ``p`` uses the quantiles ``sorted((p, 1 - p))``; a pair is used as given (low,
        high). The default is ArviZ 1.x's ``rcParams["stats.ci_prob"]``, which ``az.ess`` uses
        when it is given no ``prob``.
    relative : bool, default False
        Divide by the number of split draws (``2 * chain * (draw // 2)``).

    Returns
    -------
    ndarray, shape (*shape)
        The smaller of the ESS of the split indicators ``x <= q_low`` and ``x <= q_high``.
        NaN for a parameter with a NaN draw or fewer than 4 draws.

    Raises
    ------
    ValueError
        If a probability lies outside [0, 1] or ``prob`` is a sequence that is not a pair.

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.models.bayes._diagnostics import ess_tail
    >>> rng = np.random.default_rng(2)
    >>> e = ess_tail(rng.normal(size=(2, 1000, 2)))
    >>> e.shape, bool(np.all((e > 1000) & (e < 3000)))
    ((2,), True)
    """
    return _diagnose(x, rhat=False, bulk=False, tail=True, prob=prob, relative=relative)["ess_tail"]


def summary_diagnostics(
    x: np.ndarray, *, prob: float | Sequence[float] = DEFAULT_TAIL_PROB, relative: bool = False
) -> dict[str, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every parameter in one pass over the draws.

    Shares the split chains and the rank normalisation between R-hat and bulk ESS, and runs one
    batch of FFTs for all the ESS computations.

    Parameters
    ----------
    x : array_like, shape (chain, draw, *shape)
        Posterior draws; every trailing element is a separate parameter.
    prob : float or (float, float), default 0.89
        Tail quantiles, as in :func:`ess_tail`.
    relative : bool, default False
        Relative ESS, as in :func:`ess_bulk`.

    Returns
    -------
    dict
        ``"rhat"``, ``"ess_bulk"``, ``"ess_tail"``: arrays of shape ``(*shape)``, equal to
        :func:`rhat_rank`, :func:`ess_bulk` and :func:`ess_tail` of ``x``.

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 dimensions, or ``prob`` is invalid (see :func:`ess_tail`).

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.models.bayes._diagnostics import summary_diagnostics
    >>> rng = np.random.default_rng(3)
    >>> d = summary_diagnostics(rng.normal(size=(2, 1000, 4, 3)))
    >>> sorted(d), d["rhat"].shape, bool(d["rhat"].max() < 1.01)
    (['ess_bulk', 'ess_tail', 'rhat'], (4, 3), True)
    """
    return _diagnose(x, rhat=True, bulk=True, tail=True, prob=prob, relative=relative)


def ess_mean(x: np.ndarray, *, relative: bool = False) -> np.ndarray:
    """ESS of the mean of every parameter (split chains, no rank normalisation), as
    ``arviz.ess(..., method="mean")``: what ArviZ's PSIS-LOO averages into its relative
    efficiency ``reff``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, *shape)
    relative : bool, default False
        Divide by the number of split draws, ``2 * chains * (draws // 2)`` (ArviZ's rule).

    Returns
    -------
    ndarray, shape (*shape)

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.models.bayes._diagnostics import ess_mean
    >>> x = np.random.default_rng(0).normal(size=(2, 1000, 3))
    >>> bool(np.all(ess_mean(x) > 1500))
    True
    """
    split, _, shape, bad = _split_columns(x)
    out = np.full(split.shape[0], np.nan)
    if not bad.all():
        out = _ess_columns(split, relative)
        out[bad] = np.nan
    return out.reshape(shape)

