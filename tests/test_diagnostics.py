"""Vectorised R-hat / bulk ESS / tail ESS against ArviZ (arviz_stats), the reference they copy.

Every comparison goes through ``az.rhat`` / ``az.ess`` on an ``xarray.DataTree`` of the same draws
that ``latentseg.models.bayes.engine._mcmc_diagnostics`` reads as arrays, and asserts agreement to ``rtol=1e-8``
with the same NaN / inf pattern. Only rounding can differ: the FFT is padded to a different
length and the chain average is taken before the inverse transform.

``python tests/test_diagnostics.py`` prints the timing of both on a (2, 1000, 111) posterior.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latentseg.models.bayes import _diagnostics as diag
from latentseg.models.bayes._diagnostics import (
    DEFAULT_TAIL_PROB,
    ess_bulk,
    ess_tail,
    rhat_rank,
    summary_diagnostics,
)

RTOL = 1e-8


# ----------------------------------------------------------------------------------- reference
def _arviz(x: np.ndarray, prob: object = None, relative: bool = False) -> dict[str, np.ndarray]:
    """R-hat, bulk and tail ESS of ``x[chain, draw, p]`` from ArviZ, as bayes.py calls it."""
    az = pytest.importorskip("arviz")
    xr = pytest.importorskip("xarray")
    C, S = x.shape[:2]
    ds = xr.Dataset(
        {"theta": (("chain", "draw", "p"), x)},
        coords={"chain": np.arange(C), "draw": np.arange(S)},
    )
    tree = xr.DataTree.from_dict({"posterior": ds})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "rhat": np.asarray(az.rhat(tree, method="rank")["theta"].values, dtype=float),
            "ess_bulk": np.asarray(az.ess(tree, method="bulk", relative=relative)["theta"].values, dtype=float),
            "ess_tail": np.asarray(
                az.ess(tree, method="tail", prob=prob, relative=relative)["theta"].values, dtype=float
            ),
        }


def _assert_same(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape, what
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"{what}: NaN pattern")
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(ref), err_msg=f"{what}: inf pattern")
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=RTOL, atol=0, err_msg=what)


def _check_against_arviz(x: np.ndarray) -> dict[str, np.ndarray]:
    ref = _arviz(x)
    both = summary_diagnostics(x)
    single = {"rhat": rhat_rank(x), "ess_bulk": ess_bulk(x), "ess_tail": ess_tail(x)}
    for key in ("rhat", "ess_bulk", "ess_tail"):
        _assert_same(both[key], ref[key], f"summary_diagnostics {key}")
        _assert_same(single[key], ref[key], key)
    return ref


# ----------------------------------------------------------------------------------- draws
def _ar1(rng: np.random.Generator, C: int, S: int, P: int, phi: float) -> np.ndarray:
    e = rng.normal(size=(C, S, P))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, S):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


# ----------------------------------------------------------------------------------- agreement
@pytest.mark.parametrize(("C", "S"), [(2, 1000), (4, 301), (1, 777), (3, 6)])
def test_iid_normal(rng: np.random.Generator, C: int, S: int) -> None:
    x = rng.normal(size=(C, S, 6))
    ref = _check_against_arviz(x)
    if C >= 2 and S >= 100:  # the comparison can fail; check that it is a sharp one
        assert np.all(ref["rhat"] < 1.02)


@pytest.mark.parametrize(("C", "S", "phi"), [(2, 1000, 0.95), (4, 1001, 0.9), (1, 600, 0.99), (4, 400, -0.6)])
def test_autocorrelated_chains(rng: np.random.Generator, C: int, S: int, phi: float) -> None:
    """Strong positive autocorrelation needs many lags (the second FFT pass); negative gives ESS > draws."""
    x = _ar1(rng, C, S, 5, phi)
    ref = _check_against_arviz(x)
    if phi > 0:
        assert np.all(ref["ess_bulk"] < 0.2 * C * S)
    else:
        assert np.all(ref["ess_bulk"] > C * S)


@pytest.mark.parametrize(("C", "S"), [(2, 1000), (4, 301)])
def test_shifted_chain_means(rng: np.random.Generator, C: int, S: int) -> None:
    x = rng.normal(size=(C, S, 5))
    x[0, :, 0] += 3.0  # one chain elsewhere
    x[:, :, 1] += np.arange(C)[:, None]  # every chain elsewhere
    x[0, :, 2] *= 4.0  # same location, wider: only the folded R-hat sees it
    x[:, S // 2 :, 3] += 1.0  # drift within chains: only split chains see it
    ref = _check_against_arviz(x)
    assert np.all(ref["rhat"][:4] > 1.05)


@pytest.mark.parametrize(("C", "S"), [(2, 500), (4, 101), (1, 40)])
def test_constant_and_tied_parameters(rng: np.random.Generator, C: int, S: int) -> None:
    x = rng.normal(size=(C, S, 8))
    x[:, :, 0] = 1.5  # constant: R-hat NaN, ESS = split size
    x[:, :, 1] = rng.integers(0, 3, size=(C, S))  # 3 values, heavy ties
    x[:, :, 2] = rng.integers(0, 2, size=(C, S))  # binary
    x[:, :, 3] = np.arange(C * S).reshape(C, S) % 2  # balanced binary: constant folded draws
    x[:, :, 4] = np.round(x[:, :, 4] * 2) / 2  # rounded continuous
    x[:, :, 5] = np.arange(C)[:, None] * 1.0  # each chain constant at its own value: W ~ 0
    x[:, :, 6] = rng.poisson(0.05, size=(C, S))  # almost all zero
    ref = _check_against_arviz(x)
    half = S // 2
    assert np.isnan(ref["rhat"][0])
    assert ref["ess_bulk"][0] == ref["ess_tail"][0] == 2 * C * half
    if C >= 2:
        assert ref["rhat"][5] > 1e6


def test_nan_infinite_and_short_draws(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 80, 6))
    x[1, 7, 0] = np.nan  # one NaN draw: NaN diagnostics
    x[:, :, 1] = np.nan
    x[0, 3, 2] = np.inf
    x[:, :10, 3] = -np.inf
    x[:, :, 4][rng.uniform(size=(3, 80)) < 0.75] = np.inf  # infinite median: folded R-hat NaN
    x[:, :, 5][rng.uniform(size=(3, 80)) < 0.5] = -np.inf
    _check_against_arviz(x)
    for S in (3, 4, 5):  # ArviZ needs 4 draws
        _check_against_arviz(rng.normal(size=(2, S, 3)))


@pytest.mark.parametrize("prob", [0.95, 0.5, (0.1, 0.8)])
def test_tail_prob_and_relative(rng: np.random.Generator, prob: float | tuple[float, float]) -> None:
    x = _ar1(rng, 2, 301, 4, 0.7)
    x[:, :, 3] = 2.0
    ref = _arviz(x, prob=prob, relative=True)
    _assert_same(ess_tail(x, prob=prob, relative=True), ref["ess_tail"], "tail, relative")
    _assert_same(ess_bulk(x, relative=True), ref["ess_bulk"], "bulk, relative")
    both = summary_diagnostics(x, prob=prob, relative=True)
    _assert_same(both["ess_tail"], ref["ess_tail"], "summary tail, relative")


def test_default_tail_prob_is_arvizs() -> None:
    az = pytest.importorskip("arviz")
    assert az.rcParams["stats.ci_prob"] == DEFAULT_TAIL_PROB


# ----------------------------------------------------------------------------------- internals
def test_two_pass_autocovariance_equals_one_pass(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The short first FFT pass plus the full second pass give the all-lags answer."""
    x = np.concatenate([_ar1(rng, 2, 400, 3, phi) for phi in (0.0, 0.8, 0.995)], axis=2)
    first = summary_diagnostics(x)
    for lags in (4, 10**6):
        monkeypatch.setattr(diag, "_FIRST_PASS_LAGS", lags)
        other = summary_diagnostics(x)
        for key in first:
            np.testing.assert_allclose(other[key], first[key], rtol=1e-12, err_msg=f"{key}, {lags} lags")


def test_blocks_of_parameters_do_not_change_results(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.concatenate([rng.normal(size=(3, 101, 7)), _ar1(rng, 3, 101, 4, 0.9)], axis=2)
    x[:, :, 2] = 1.0
    x[0, 5, 4] = np.nan
    whole = summary_diagnostics(x)
    for draws_per_block in (1, 3 * 101 * 2, 3 * 101 * 4):  # 1, 2 and 4 parameters per block
        monkeypatch.setattr(diag, "_BLOCK_DRAWS", draws_per_block)
        blocked = summary_diagnostics(x)
        for key in whole:
            np.testing.assert_array_equal(blocked[key], whole[key], err_msg=f"{key}, {draws_per_block}")


def test_tied_ranks_match_scipy_rankdata(rng: np.random.Generator) -> None:
    """Average ranks of tie runs (at the start, middle and end of a row, whole rows) are exact."""
    stats = pytest.importorskip("scipy.stats")
    from scipy.special import ndtri

    for _ in range(50):
        N = int(rng.integers(2, 40))
        rows = np.sort(rng.integers(0, int(rng.integers(1, 6)), size=(6, N)).astype(float), axis=1)
        rows[0] = np.sort(rng.normal(size=N))  # no ties at all
        expected = ndtri((stats.rankdata(rows, axis=1) - 3 / 8) / (N - 2 * 3 / 8 + 1))
        np.testing.assert_array_equal(diag._scores_of_sorted(rows, np.empty_like(rows)), expected)


def test_shapes_follow_trailing_dimensions(rng: np.random.Generator) -> None:
    x = rng.normal(size=(2, 200, 3, 4))
    out = summary_diagnostics(x)
    assert {key: val.shape for key, val in out.items()} == {"rhat": (3, 4), "ess_bulk": (3, 4), "ess_tail": (3, 4)}
    flat = summary_diagnostics(x.reshape(2, 200, 12))
    for key in out:
        np.testing.assert_array_equal(out[key].ravel(), flat[key])
    scalar = summary_diagnostics(x[:, :, 0, 0])
    assert scalar["rhat"].shape == () and scalar["rhat"] == flat["rhat"][0]
    assert summary_diagnostics(np.ones((2, 10, 0)))["rhat"].shape == (0,)


def test_invalid_input_messages(rng: np.random.Generator) -> None:
    shaped = r"Expected draws shaped \(chain, draw, \.\.\.\); got an array of shape \(5,\)"
    with pytest.raises(ValueError, match=shaped):
        rhat_rank(np.zeros(5))
    x = rng.normal(size=(2, 50, 2))
    with pytest.raises(ValueError, match=r"prob must lie in \[0, 1\]; got 1.5"):
        ess_tail(x, prob=1.5)
    with pytest.raises(ValueError, match=r"prob must be a float or a \(low, high\) pair; got \(0.1, 0.5, 0.9\)"):
        summary_diagnostics(x, prob=(0.1, 0.5, 0.9))


# ----------------------------------------------------------------------------------- timing
def _benchmark(repeats: int = 20) -> None:  # pragma: no cover - run by hand
    """Time ArviZ (as bayes.py calls it) and summary_diagnostics on a (2, 1000, 111) posterior."""
    import time

    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(0)
    C, S, k, d = 2, 1000, 3, 18  # weights (3,), means (3, 18), sds (3, 18): 111 parameters
    draws = {
        "weights": rng.dirichlet(np.ones(k), size=(C, S)),
        "means": rng.normal(size=(C, S, k, d)),
        "sds": np.exp(rng.normal(size=(C, S, k, d))),
    }
    ds = xr.Dataset(
        {name: (("chain", "draw") + tuple(f"{name}_{i}" for i in range(v.ndim - 2)), v) for name, v in draws.items()},
        coords={"chain": np.arange(C), "draw": np.arange(S)},
    )

    def with_arviz() -> list[np.ndarray]:  # what bayes._mcmc_diagnostics does
        tree = xr.DataTree.from_dict({"posterior": ds})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = [az.rhat(tree, method="rank"), az.ess(tree, method="bulk"), az.ess(tree, method="tail")]
        return [np.concatenate([r[name].values.ravel() for name in draws]) for r in res]

    def vectorised() -> dict[str, np.ndarray]:
        x = np.concatenate([ds[name].values.reshape(C, S, -1) for name in ds.data_vars], axis=2)
        return summary_diagnostics(x)

    def separately() -> list[np.ndarray]:
        x = np.concatenate([ds[name].values.reshape(C, S, -1) for name in ds.data_vars], axis=2)
        return [rhat_rank(x), ess_bulk(x), ess_tail(x)]

    fns = {
        "arviz rhat + ess bulk + ess tail": with_arviz,
        "summary_diagnostics": vectorised,
        "rhat_rank + ess_bulk + ess_tail": separately,
    }
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):  # interleaved, so that all three see the same machine load
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    ref, ours = with_arviz(), vectorised()
    worst = max(
        float(np.max(np.abs(ours[key] - r) / np.abs(r))) for key, r in zip(("rhat", "ess_bulk", "ess_tail"), ref)
    )
    base_wall, base_cpu = min(wall["arviz rhat + ess bulk + ess tail"]), min(cpu["arviz rhat + ess bulk + ess tail"])
    print(f"(chain, draw, P) = ({C}, {S}, {sum(v[0, 0].size for v in draws.values())}); best of {repeats}")
    for name in fns:
        w, c = min(wall[name]), min(cpu[name])
        print(
            f"{name:33s} wall {w * 1e3:6.1f} ms ({base_wall / w:4.1f}x)  "
            f"cpu {c * 1e3:6.1f} ms ({base_cpu / c:4.1f}x)  median wall {np.median(wall[name]) * 1e3:6.1f} ms"
        )
    print(f"largest relative difference: {worst:.1e}")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_ess_mean_equals_arviz(rng: np.random.Generator, phi: float) -> None:
    az = pytest.importorskip("arviz")
    xr = pytest.importorskip("xarray")
    x = rng.normal(size=(3, 501, 6))
    for s in range(1, x.shape[1]):
        x[:, s] = phi * x[:, s - 1] + np.sqrt(1 - phi**2) * x[:, s]
    x[:, :, 5] = 2.0  # constant
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"theta": (("chain", "draw", "p"), x)})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for relative in (False, True):
            ref = np.asarray(az.ess(tree, method="mean", relative=relative)["theta"].values, dtype=float)
            _assert_same(diag.ess_mean(x, relative=relative), ref, f"ess mean relative={relative}")
