"""WAIC (ours) against a direct computation; PSIS-LOO; the comparison across k, against az.compare."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from latentseg.errors import ConfigError
from latentseg.models.bayes._loo import compare_k, loo, waic
from latentseg.result import SegmentationResult

# a fixed pointwise log-likelihood: 4 draws x 3 respondents
LL = np.array(
    [
        [-1.2, -0.3, -2.5],
        [-1.0, -0.4, -3.1],
        [-1.5, -0.2, -2.2],
        [-0.9, -0.5, -4.0],
    ]
)


def test_waic_equals_a_direct_computation() -> None:
    S, n = LL.shape
    elpd_i = []
    p_i = []
    for i in range(n):
        col = [LL[s, i] for s in range(S)]
        lppd = math.log(sum(math.exp(v) for v in col) / S)
        mean = sum(col) / S
        var = sum((v - mean) ** 2 for v in col) / (S - 1)
        p_i.append(var)
        elpd_i.append(lppd - var)
    total = sum(elpd_i)
    mean_e = total / n
    se = math.sqrt(n * sum((e - mean_e) ** 2 for e in elpd_i) / n)
    r = waic(LL)
    assert r["elpd_waic"] == pytest.approx(total, rel=1e-13)
    assert r["p_waic"] == pytest.approx(sum(p_i), rel=1e-13)
    assert r["se"] == pytest.approx(se, rel=1e-12)
    assert r["lppd"] == pytest.approx(total + sum(p_i), rel=1e-13)
    np.testing.assert_allclose(r["pointwise"], elpd_i, rtol=1e-13)
    assert r["n_high_p"] == sum(p > 0.4 for p in p_i) == 1  # the third respondent (var of -2.5..-4.0)
    # chains are pooled: (C, S, n) gives the same as (C*S, n)
    assert waic(LL.reshape(2, 2, 3))["elpd_waic"] == pytest.approx(total, rel=1e-13)


def test_waic_needs_two_draws() -> None:
    with pytest.raises(ConfigError, match="at least 2 draws"):
        waic(LL[:1])


def test_loo_agrees_with_waic_for_a_regular_posterior() -> None:
    rng = np.random.default_rng(0)
    # log-likelihood of 50 normal observations under draws of a normal mean: nearly Gaussian posterior
    y = rng.normal(size=50)
    mu = rng.normal(y.mean(), 1 / math.sqrt(50), size=(2, 500))
    ll = -0.5 * np.log(2 * np.pi) - 0.5 * (y[None, None, :] - mu[..., None]) ** 2
    r = loo(ll)
    w = waic(ll)
    assert r["elpd_loo"] == pytest.approx(w["elpd_waic"], abs=0.05)
    assert r["pointwise"].sum() == pytest.approx(r["elpd_loo"], rel=1e-12)
    assert r["pareto_k"].shape == (50,) and r["n_bad_k"] == 0 and not r["warning"]
    assert 0.5 < r["k_threshold"] <= 0.7
    assert r["p_loo"] == pytest.approx(1.0, abs=0.3)  # one parameter


def _fake(k: int, pointwise: np.ndarray, converged: bool = True, data_hash: str = "abc", loo: float | None = None,
          p_loo: float = 1.0, pareto_k: np.ndarray | None = None, k_threshold: float | None = None) -> SegmentationResult:
    n = pointwise.size
    z = np.full((n, k), 1.0 / k)
    diagnostics = {"converged": converged, "pareto_k_bad": 0 if pareto_k is None else int((pareto_k > 0.7).sum())}
    if k_threshold is not None:
        diagnostics["pareto_k_threshold"] = k_threshold
    extras = {"elpd_loo_pointwise": pointwise} if pareto_k is None else {"elpd_loo_pointwise": pointwise, "pareto_k": pareto_k}
    return SegmentationResult.from_memberships(
        "bayes-gmm",
        z,
        centers=np.arange(k, dtype=float)[:, None],
        feature_names=("x",),
        criteria={"loo": float(pointwise.sum()) if loo is None else loo, "loo_se": float(math.sqrt(n * pointwise.var())),
                  "p_loo": p_loo, "waic": float(pointwise.sum()), "waic_se": 1.0, "p_waic": 1.0},
        diagnostics=diagnostics,
        provenance={"data_hash": data_hash},
        extras=extras,
    )


def test_compare_k_parsimony_rule_and_differences() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(-5, 1, 200)
    fits = [
        _fake(2, base - rng.uniform(0.5, 1.5, 200)),  # clearly worse: about -200
        _fake(3, base),
        _fake(4, base + rng.normal(0.002, 0.02, 200)),  # best by a hair
        _fake(5, base + rng.normal(0.001, 0.03, 200), converged=False),
    ]
    t = compare_k(fits)
    # az.compare's shape: best first, indexed by name, the rank in a column
    assert t.index.tolist() == ["k=4", "k=5", "k=3", "k=2"] and t["rank"].tolist() == [0, 1, 2, 3]
    t = t.sort_values("k")
    assert t["k"].tolist() == [2, 3, 4, 5]
    best = 2  # row of k = 4
    assert t["elpd_diff"].iloc[best] == 0.0 and t["rule_elpd_diff"].iloc[best] == 0.0
    d = fits[2].extras["elpd_loo_pointwise"] - fits[1].extras["elpd_loo_pointwise"]
    assert t["elpd_diff"].iloc[1] == pytest.approx(-d.sum(), rel=1e-12)  # this fit minus the best, as ArviZ
    assert t["dse"].iloc[1] == pytest.approx(math.sqrt(200 * d.var()), rel=1e-12)
    np.testing.assert_allclose(t["rule_elpd_diff"], t["elpd_diff"], rtol=1e-12)  # the best fit converged
    np.testing.assert_allclose(t["rule_dse"], t["dse"], rtol=1e-9, atol=1e-12)
    assert t.attrs["recommended_k"] == 3 and t.attrs["recommended"] == "k=3"
    assert t["recommended"].tolist() == [False, True, False, False]
    assert not t["within_rule"].iloc[0] and not t["within_rule"].iloc[3]  # k=2 too far; k=5 not converged
    assert "smallest k" in t.attrs["rule"]


def test_compare_k_rule_refers_to_the_best_converged_fit() -> None:
    """ArviZ's elpd_diff is to the best fit; the rule's (rule_elpd_diff) to the best converged one."""
    rng = np.random.default_rng(5)
    base = rng.normal(-5, 1, 100)
    fits = [_fake(2, base), _fake(3, base + 0.3, converged=False)]  # k = 3 better by 30, not converged
    t = compare_k(fits)
    assert t.index.tolist() == ["k=3", "k=2"]
    assert t.loc["k=2", "elpd_diff"] == pytest.approx(-30.0) and t.loc["k=2", "rule_elpd_diff"] == 0.0
    assert t.loc["k=3", "rule_elpd_diff"] == pytest.approx(30.0) and not t.loc["k=3", "within_rule"]
    assert t.attrs["recommended_k"] == 2


def test_compare_k_rejects_mixed_inputs() -> None:
    a = _fake(2, np.zeros(10))
    with pytest.raises(ConfigError, match="same data"):
        compare_k([a, _fake(3, np.zeros(10), data_hash="other")])
    with pytest.raises(ConfigError, match="same respondents"):
        compare_k([a, _fake(3, np.zeros(11))])
    with pytest.raises(ConfigError, match="at least one"):
        compare_k([])
    plain = SegmentationResult.from_memberships("gmm", np.ones((10, 1)), centers=np.zeros((1, 1)), feature_names=("x",),
                                                provenance={"data_hash": "abc"})
    with pytest.raises(ConfigError, match="needs Bayesian fits"):
        compare_k([a, plain])


def test_compare_k_when_nothing_converged_says_so() -> None:
    fits = [_fake(2, np.full(20, -3.0), converged=False), _fake(3, np.full(20, -2.0), converged=False)]
    t = compare_k(fits)
    assert t.attrs["recommended_k"] == 3
    assert "No fit converged" in t.attrs["rule"]
    assert isinstance(t, pd.DataFrame)


def test_loo_reff_is_arvizs_own() -> None:
    """Our vectorised relative efficiency gives the same PSIS-LOO as ArviZ computing it itself."""
    import warnings

    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(4)
    C, S, n = 2, 400, 30
    theta = rng.normal(size=(C, S, 3)).cumsum(axis=1) * 0.05 + rng.normal(size=(C, S, 3))
    ll = -0.5 * (rng.normal(size=(1, 1, n)) - theta[..., :1]) ** 2 - 0.9
    post = xr.Dataset({"a": (("chain", "draw", "p"), theta), "b": (("chain", "draw"), theta[..., 0] ** 2)})
    ours = loo(ll, post)
    tree = xr.DataTree.from_dict({"posterior": post, "log_likelihood": xr.Dataset({"loglik": (("chain", "draw", "respondent"), ll)})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.loo(tree, pointwise=True, var_name="loglik")
    assert ours["elpd_loo"] == pytest.approx(float(ref.elpd), rel=1e-12)
    np.testing.assert_allclose(ours["pareto_k"], np.asarray(ref.pareto_k, dtype=float), rtol=1e-10)


def test_elpd_data_counts_the_draws_the_loo_used() -> None:
    """az.compare's n_samples is the stored log-likelihood's chains x draws (the convergence rule
    may store more than ``draws`` per chain, a large N fewer), the settings' only without one."""
    from types import SimpleNamespace

    from latentseg.models.bayes._loo import elpd_data

    def result(posterior):
        return SimpleNamespace(criteria={"loo": -10.0, "loo_se": 1.0, "p_loo": 2.0}, diagnostics={},
                               extras={"elpd_loo_pointwise": [-5.0, -5.0]}, settings={"draws": 100, "chains": 2},
                               posterior=posterior)

    stored = {"log_likelihood": SimpleNamespace(sizes={"chain": 2, "draw": 400}),
              "posterior": SimpleNamespace(sizes={"chain": 2, "draw": 400})}
    assert elpd_data(result(stored)).n_samples == 800
    assert elpd_data(result({"posterior": SimpleNamespace(sizes={"chain": 2, "draw": 250})})).n_samples == 500
    assert elpd_data(result(None)).n_samples == 200


# ------------------------------------------------------------------ compare_k's table is az.compare's
def _compare_sets() -> dict[str, list[SegmentationResult]]:
    """Fitted-like results: pointwise elpd around a shared base (the respondents' difficulty), as
    fits of one survey give them."""
    rng = np.random.default_rng(11)
    n = 240
    base = rng.normal(-4.0, 1.2, n)
    pk = rng.uniform(0.0, 0.9, n)  # some above 0.7: ArviZ's diag_elpd counts them
    six = [_fake(k, base - rng.uniform(0.0, 0.6 / k, n) + rng.normal(0.0, 0.05, n), p_loo=3.0 * k + 0.5,
                 pareto_k=pk if k % 2 else None, k_threshold=0.68 if k == 5 else None, converged=k != 6)
           for k in range(2, 8)]
    small = rng.normal(-3.0, 1.0, 60)  # n < 100: ArviZ's "N < 100"
    return {
        "two models": [_fake(2, base - 0.4), _fake(3, base + rng.normal(0.0, 0.3, n))],
        "six models": six,
        # k = 3 and 4 identical (an empty extra segment), k = 5 the same elpd from other pointwise values
        "ties": [_fake(2, base - 0.2), _fake(3, base), _fake(4, base.copy()),
                 _fake(5, base[::-1] + rng.normal(0.0, 0.2, n), loo=float(base.sum()))],
        # k = 3 predicts every respondent better: all the weight
        "one dominates": [_fake(2, base - 1.0), _fake(3, base), _fake(4, base - 0.5 - rng.uniform(0, 0.5, n))],
        "near identical": [_fake(k, base + rng.normal(0.0, 1e-6, n)) for k in (2, 3, 4)],
        "n < 100": [_fake(2, small - 0.05), _fake(3, small), _fake(4, small + rng.normal(0.0, 0.1, 60))],
        "one model": [_fake(2, base)],
        # a respondent whose LOO is not finite (PSIS gives NaN for a non-finite log-likelihood)
        "non-finite": [_fake(2, np.r_[base[:-1], np.nan], loo=float("nan")), _fake(3, base - 0.01)],
    }


_SETS = _compare_sets()


@pytest.mark.parametrize("case", list(_SETS))
def test_compare_k_table_is_az_compare(case: str) -> None:
    """compare_k computes ArviZ's table without ArviZ: az.compare(method="stacking") on the same
    stored LOO (elpd_data, what compare_k passed it before) gives the same index, the same dtypes
    and every number exactly; the stacking weights too (the same SLSQP from the same start: 0.0
    difference on these sets and 20 random ones of 1-7 models; tolerance 1e-9)."""
    import warnings

    import arviz as az

    from latentseg.models.bayes._loo import ARVIZ_COMPARE_COLUMNS, elpd_data

    fits = _SETS[case]
    table = compare_k(fits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.compare({f"k={r.k}": elpd_data(r) for r in fits}, method="stacking", round_to="none")
    ours = table[list(ARVIZ_COMPARE_COLUMNS)]
    assert list(ref.columns) == list(ARVIZ_COMPARE_COLUMNS)
    pd.testing.assert_frame_equal(ours.drop(columns="weight"), ref.drop(columns="weight"), check_exact=True)
    np.testing.assert_allclose(ours["weight"], ref["weight"], rtol=0, atol=1e-9)
    # what each set is there for
    w = table["weight"]
    if case == "ties":
        assert table.index.tolist()[:3] == ["k=3", "k=4", "k=5"]  # equal elpd: ArviZ keeps the given order
        assert table.loc["k=4", "elpd_diff"] == 0.0 and np.isnan(table.loc["k=4", "p_worse"])
        assert table.loc["k=5", "elpd_diff"] != 0.0  # its pointwise values differ
    if case == "one dominates":
        assert w["k=3"] == pytest.approx(1.0, abs=1e-6) and w.drop("k=3").max() < 1e-6
    if case == "near identical":
        assert (table["diag_diff"].iloc[1:] == "|elpd_diff| < 4").all()
    if case == "n < 100":
        assert table["diag_diff"].tolist() == ["", "N < 100", "N < 100"]
    if case == "six models":
        assert table["diag_elpd"].str.contains("k̂ > 0.68").sum() == 1 and table["diag_elpd"].eq("").sum() == 3
    if case == "non-finite":  # listed as ArviZ lists it, not recommended
        assert table.attrs["recommended_k"] == 3 and not table.loc["k=2", "within_rule"]
    else:
        assert w.sum() == pytest.approx(1.0, abs=1e-6) and (w > -1e-9).all()


def test_loo_and_compare_k_import_neither_arviz_nor_xarray() -> None:
    """loo() without a posterior (_psis.py) and compare_k on stored fits (_compare.py) load no
    ArviZ, xarray or scipy.stats: importing them was about 1.8 s of a k sweep."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from latentseg.result import SegmentationResult\n"
        "from latentseg.models.bayes._loo import compare_k, loo\n"
        "rng = np.random.default_rng(0)\n"
        "loo(rng.normal(-2.0, 0.3, (2, 200, 10)))\n"
        "def fake(k, e):\n"
        "    return SegmentationResult.from_memberships('bayes-gmm', np.full((e.size, k), 1 / k), centers=np.zeros((k, 1)),\n"
        "        feature_names=('x',), criteria={'loo': e.sum(), 'loo_se': 1.0, 'p_loo': 2.0 * k},\n"
        "        diagnostics={'converged': True}, provenance={'data_hash': 'h'}, extras={'elpd_loo_pointwise': e})\n"
        "base = rng.normal(-2.0, 0.5, 200)\n"
        "t = compare_k([fake(k, base - rng.uniform(0, 0.1, 200)) for k in range(2, 8)])\n"
        "assert t.shape[0] == 6\n"
        "heavy = ('arviz', 'arviz_stats', 'arviz_base', 'xarray', 'scipy.stats')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_fit_stopped_in_warm_up_is_not_chosen_when_no_fit_converged() -> None:
    """Without a converged fit every fit is compared, except one stopped in its warm-up (its draws
    are warm-up draws, not a posterior sample), even when its elpd_loo is the best."""
    rng = np.random.default_rng(5)
    base = rng.normal(-2.0, 0.4, 150)
    fits = [_fake(2, base - 0.3, converged=False), _fake(3, base - 0.1, converged=False), _fake(4, base, converged=False)]
    fits[2].diagnostics["convergence"] = {"stopped_in_warmup": True, "stopped_early": "diffuse segments [4] in warm-up"}
    table = compare_k(fits)
    assert table.attrs["recommended_k"] == 3  # k = 4 has the best elpd_loo (0.1 per respondent) but is not eligible
    assert "No fit converged" in table.attrs["rule"]
    fits[2].diagnostics["convergence"] = {}
    assert compare_k(fits).attrs["recommended_k"] == 4  # the same fit, not stopped in its warm-up


def test_unreliable_loo_is_said_with_its_count_and_threshold() -> None:
    """The PSIS-LOO advice (ignored by the suite's warning filter, where it depends on the CPU's
    last bits) names how many respondents have a Pareto k above the threshold."""
    from latentseg.models.bayes.engine import _loo_waic_advice

    messages: list[str] = []
    diag: dict = {}
    _loo_waic_advice({"n_bad_k": 3, "k_threshold": 0.7}, {"warning": False}, diag, messages)
    assert messages == [messages[0]] and messages[0].startswith("PSIS-LOO is unreliable for 3 respondent(s) (Pareto k above 0.70)")
    messages.clear()
    _loo_waic_advice({"n_bad_k": 0, "k_threshold": 0.7}, {"warning": True, "n_high_p": 2}, diag, messages)
    assert messages == [] and diag["notes"][-1].startswith("WAIC may be unreliable: 2 respondent(s)")
