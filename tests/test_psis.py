"""Our vectorised PSIS-LOO (latentseg.models.bayes._psis) reproduces arviz.loo.

Every comparison is relative, ``|ours - arviz| <= 1e-10 |arviz|`` on elpd, se, p_loo, every
pointwise elpd and every Pareto k (NaN where ArviZ has NaN). The two compute the same formulas in a
different order (blocks of respondents, our own logsumexp), so only rounding differs: the largest
deviation measured over all the cases here is 1.5e-15 on elpd / se / p / pointwise elpd and 3.9e-15
on Pareto k; 1e-10 leaves a margin of more than 10^4 for other CPUs' last bits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latentseg.models.bayes import _loo
from latentseg.models.bayes._psis import PSISError, good_k, psis_loo, tail_length

RTOL = 1e-10  # measured <= 3.9e-15 (module docstring)


def _arviz_loo(ll: np.ndarray, reff: float):
    import arviz as az
    import xarray as xr

    tree = xr.DataTree.from_dict({"log_likelihood": xr.Dataset({"loglik": (("chain", "draw", "respondent"), ll)})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's Pareto-k warning
        return az.loo(tree, pointwise=True, var_name="loglik", reff=reff)


def _mixture_loglik(rng: np.random.Generator, C: int, D: int, n: int, spread: float = 1.0,
                    outliers: int = 0) -> np.ndarray:
    """Per-respondent marginal log-likelihood (C, D, n) of a 2-segment 1-D normal mixture under
    draws scattered around the truth by about ``spread / sqrt(n_eff)``; ``outliers`` respondents
    far out in the tails (their LOO posterior differs: heavy-tailed importance ratios)."""
    y = np.where(rng.random(n) < 0.4, rng.normal(-1.5, 1.0, n), rng.normal(1.5, 1.0, n))
    y[:outliers] = rng.choice([-1.0, 1.0], outliers) * rng.uniform(6.0, 9.0, outliers)
    sd = spread / np.sqrt(max(n, 20))
    w = np.clip(0.4 + sd * rng.normal(size=(C, D, 1)), 0.05, 0.95)
    mu1 = -1.5 + 2 * sd * rng.normal(size=(C, D, 1))
    mu2 = 1.5 + 2 * sd * rng.normal(size=(C, D, 1))
    s = np.exp(sd * rng.normal(size=(C, D, 1)))
    c1 = np.log(w) - 0.5 * ((y - mu1) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
    c2 = np.log1p(-w) - 0.5 * ((y - mu2) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
    return np.logaddexp(c1, c2)


def _rel(ours: np.ndarray | float, ref) -> float:
    """Largest relative deviation; NaN must match NaN, and infinities and zeros exactly."""
    a = np.atleast_1d(np.asarray(ours, dtype=float))
    b = np.atleast_1d(np.asarray(ref, dtype=float))
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
    fin = np.isfinite(b) & (b != 0)
    np.testing.assert_array_equal(a[~fin & ~np.isnan(b)], b[~fin & ~np.isnan(b)])  # inf, -inf, 0 exactly
    return float(np.max(np.abs(a[fin] - b[fin]) / np.abs(b[fin]), initial=0.0))


def _assert_same(ll: np.ndarray, reff: float, ref_ll: np.ndarray | None = None) -> dict:
    """psis_loo and loo() against arviz.loo on ``ref_ll`` (default ``ll``); returns ours."""
    ref = _arviz_loo(ll if ref_ll is None else ref_ll, reff)
    ours = psis_loo(ll, reff)
    dev = {
        "elpd": _rel(ours["elpd"], ref.elpd), "se": _rel(ours["se"], ref.se), "p": _rel(ours["p"], ref.p),
        "elpd_i": _rel(ours["elpd_i"], ref.elpd_i.values), "pareto_k": _rel(ours["pareto_k"], ref.pareto_k.values),
    }
    assert max(dev.values()) <= RTOL, dev
    assert ours["good_k"] == ref.good_k  # the same float: np.log10 as ArviZ
    assert ours["warning"] == bool(ref.warning)
    # loo() passes them on (reff from a posterior is tested in test_bayes_loo.py)
    if reff == 1.0 and ll.ndim == 3:
        mine = _loo.loo(ll)
        np.testing.assert_equal(mine["elpd_loo"], ours["elpd"])  # NaN == NaN here
        assert mine["k_threshold"] == ref.good_k
        assert mine["warning"] == bool(ref.warning)
        assert mine["n_bad_k"] == int((ref.pareto_k.values > ref.good_k).sum())
        np.testing.assert_array_equal(mine["pointwise"], ours["elpd_i"])
    return ours


# (chains, draws per chain, respondents, reff, seed): S = 200 ... 4000, n = 1 ... 300
SHAPES = [
    (1, 200, 1, 1.0, 1),
    (2, 100, 40, 1.0, 2),
    (4, 50, 300, 1.0, 3),
    (2, 1000, 300, 1.0, 4),
    (3, 400, 120, 0.35, 5),
    (4, 1000, 60, 0.8, 6),
    (2, 2000, 25, 1.0, 7),
    (1, 800, 2, 1.3, 8),  # reff > 1 (antithetic chains): a shorter tail
    (2, 150, 90, 0.5, 9),
]


@pytest.mark.parametrize(("C", "D", "n", "reff", "seed"), SHAPES)
def test_psis_loo_equals_arviz_on_mixture_logliks(C: int, D: int, n: int, reff: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    _assert_same(_mixture_loglik(rng, C, D, n, spread=rng.uniform(0.5, 3.0)), reff)


@pytest.mark.parametrize(("seed", "spread"), [(11, 1.0), (12, 1.0), (13, 0.5), (12, 8.0)])
def test_heavy_tails_equal_arviz_and_are_flagged(seed: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    # 10 outliers under a posterior of their segment's mean: importance ratios with Pareto k > 0.7
    ll = _mixture_loglik(rng, 2, 300, 80, spread=spread, outliers=10)
    ours = _assert_same(ll, 1.0)
    k = ours["pareto_k"]
    # measured: 7-10 respondents above 0.7 (max k 1.2-4.1) with spread 0.5-1 over seeds 11-13;
    # with spread 8 about 60 of 80; seed 12 then has NaN k-hats (tails far from Pareto) and two
    # respondents whose raw weights underflow so far that no grid point of the fit keeps its weight:
    # ArviZ then reports k-hat 5 / (M + 10) and smooths with a NaN scale, so their elpd_i, and
    # elpd, are NaN; so are ours
    assert ours["warning"] and np.sum(k > 0.7) >= 5
    if spread == 8.0:
        assert np.isnan(k).any()
        gone = np.isnan(ours["elpd_i"])
        assert gone.sum() == 2 and np.all(k[gone] == 5 / (ours["tail_draws"] + 10))
    _assert_same(ll, 0.4)


@pytest.mark.parametrize(("S", "reff", "M"), [(25, 1.0, 5), (100, 1.0, 20), (225, 1.0, 45), (226, 1.0, 45),
                                              (300, 0.7, 60), (300, 0.76, 59), (1000, 0.2, 200)])
def test_tail_length_and_its_lower_bound(S: int, reff: float, M: int) -> None:
    """S reff <= 225 gives floor(S / 5) tail draws; above, floor(3 sqrt(S / reff)); each equal to ArviZ."""
    assert tail_length(S, reff) == M
    rng = np.random.default_rng(S)
    ours = _assert_same(_mixture_loglik(rng, 1, S, 30, spread=2.0), reff)
    assert ours["tail_draws"] == M
    if M == 5:  # the first quartile of 5 tail values is the smallest: ArviZ's k-hat is NaN
        assert np.isnan(ours["pareto_k"]).all() and not ours["warning"]


def test_float32_loglik_is_computed_in_float64() -> None:
    rng = np.random.default_rng(21)
    ll32 = _mixture_loglik(rng, 2, 700, 150, spread=2.0).astype(np.float32)
    # equal to ArviZ on the same values in float64 ...
    ours = _assert_same(ll32, 1.0, ref_ll=ll32.astype(np.float64))
    # ... and to ArviZ's own float32 arithmetic up to float32 rounding (measured ~3e-7 on k)
    ref32 = _arviz_loo(ll32, 1.0)
    np.testing.assert_allclose(ours["elpd_i"], ref32.elpd_i.values, rtol=1e-5)
    np.testing.assert_allclose(ours["pareto_k"], ref32.pareto_k.values, rtol=1e-4, atol=1e-5)
    assert _loo.loo(ll32)["pointwise"].dtype == np.float64


def test_ties_below_the_tail_do_not_matter() -> None:
    """Log-likelihoods rounded to 0.01 (many tied draws, in and around the tail): still ArviZ's numbers."""
    rng = np.random.default_rng(31)
    _assert_same(np.round(_mixture_loglik(rng, 2, 500, 60, spread=3.0), 2), 1.0)


def test_constant_tail_falls_back_where_arviz_raises() -> None:
    rng = np.random.default_rng(41)
    ll = _mixture_loglik(rng, 2, 300, 12, spread=2.0)
    S = 600
    M = tail_length(S, 1.0)  # 73
    flat = ll.reshape(S, -1).copy()
    flat[:, 3] = -2.5  # a respondent whose log-likelihood never moves
    # respondent 7: its M lowest log-likelihoods (the largest raw weights) tied: a constant tail
    order = np.argsort(flat[:, 7])
    flat[order[:M], 7] = flat[order[0], 7]
    for col in (3, 7):
        case = ll.reshape(S, -1).copy()
        case[:, col] = flat[:, col]
        with pytest.raises(ValueError, match="All tail values are the same"):
            _arviz_loo(case.reshape(ll.shape), 1.0)
        with pytest.raises(PSISError, match=f"All tail values are the same \\(respondent {col}\\)"):
            psis_loo(case, 1.0)
        res = _loo.loo(case.reshape(ll.shape))
        assert res["warning"] and "truncated importance sampling" in res["method"]
    # M - 1 tied lowest values: the tail is not constant, PSIS runs, as in ArviZ
    case = ll.reshape(S, -1).copy()
    case[order[: M - 1], 7] = case[order[0], 7]
    _assert_same(case.reshape(ll.shape), 1.0)


@pytest.mark.parametrize(("S", "exc"), [(24, ValueError), (4, IndexError)])
def test_too_few_draws_fall_back(S: int, exc: type) -> None:
    """Fewer than 25 draws leave fewer than 5 tail draws: ArviZ raises (IndexError below 5 draws),
    loo() falls back to truncated importance sampling."""
    ll = np.random.default_rng(S).normal(-2.0, 0.3, size=(1, S, 3))
    with pytest.raises(exc):
        _arviz_loo(ll, 1.0)
    with pytest.raises(PSISError, match="at least 5"):
        psis_loo(ll)
    res = _loo.loo(ll)
    assert "truncated importance sampling" in res["method"] and res["n_bad_k"] == 3


def test_threshold_is_arvizs_and_blocks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    for S in (2, 10, 100, 1000, 5000):
        assert good_k(S) == min(1 - 1 / np.log10(S), 0.7)
    rng = np.random.default_rng(51)
    ll = _mixture_loglik(rng, 2, 400, 50, spread=5.0, outliers=3)
    whole = psis_loo(ll)
    from latentseg.models.bayes import _psis

    monkeypatch.setattr(_psis, "_BLOCK_ELEMENTS", 1)  # one respondent per block
    single = psis_loo(ll)
    for key in ("elpd_i", "p_i", "pareto_k"):
        np.testing.assert_array_equal(single[key], whole[key])


def test_a_non_finite_loglik_gives_nan_for_that_respondent_only() -> None:
    rng = np.random.default_rng(61)
    ll = _mixture_loglik(rng, 2, 300, 5, spread=2.0)
    ll[0, 10, 2] = -np.inf
    res = psis_loo(ll)
    assert np.isnan(res["elpd_i"][2]) and np.isnan(res["pareto_k"][2]) and np.isnan(res["elpd"])
    ref = _arviz_loo(ll, 1.0)  # ArviZ: NaN elpd_i too; the others unchanged
    keep = [0, 1, 3, 4]
    assert _rel(res["elpd_i"][keep], ref.elpd_i.values[keep]) <= RTOL
    assert _rel(res["pareto_k"][keep], ref.pareto_k.values[keep]) <= RTOL
