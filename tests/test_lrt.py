"""Likelihood-ratio tests: the samplers, the Lo-Mendell-Rubin formula, and (slow) the bootstrap
LRT's behaviour on separated two-segment data and on one-segment data."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import latentseg.models as models_mod
from latentseg.errors import ConfigError, FitError
from latentseg.choose.lrt import blrt, lmr_table, lmr_test, sample_from_result
from latentseg.models import fit
from latentseg.result import SegmentationResult
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture


def _gmm_result(params: dict, shared: dict, covariance: str) -> SegmentationResult:
    k, d = params["means"].shape
    z = np.full((10, k), 1.0 / k)
    return SegmentationResult.from_memberships(
        "gmm", z, centers=params["means"], feature_names=[f"x{j}" for j in range(d)],
        params=params, shared_params=shared, settings={"covariance": covariance},
    )


# ------------------------------------------------------------------------------- samplers
@pytest.mark.parametrize("structure", ["VVI", "EEI", "VVV", "EEE"])
def test_gmm_sampler_reproduces_weights_means_and_covariances(structure):
    w = np.array([0.7, 0.3])
    mu = np.array([[0.0, 0.0], [5.0, -5.0]])
    var = np.array([[1.0, 4.0], [0.25, 1.0]])
    cov = np.array([[[1.0, 0.6], [0.6, 2.0]], [[0.5, -0.2], [-0.2, 0.3]]])
    params: dict[str, Any] = {"weights": w, "means": mu}
    shared: dict[str, Any] = {}
    if structure == "VVI":
        params["variances"] = var
    elif structure == "EEI":
        shared["variances"] = var[0]
    elif structure == "VVV":
        params["covariances"] = cov
    else:
        shared["covariance"] = cov[0]
    r = _gmm_result(params, shared, structure)
    X, seg = sample_from_result(r, 20000, random_seed=3)
    assert list(X.columns) == ["x0", "x1"]
    # canonical order may have permuted segments: compare against the result's own params
    w_r, mu_r = r.params["weights"], r.params["means"]
    np.testing.assert_allclose(np.bincount(seg)[1:] / seg.size, w_r, atol=0.015)
    for j in range(2):
        rows = X.to_numpy()[seg == j + 1]
        np.testing.assert_allclose(rows.mean(axis=0), mu_r[j], atol=0.06)
        if structure == "VVI":
            want = np.diag(r.params["variances"][j])
        elif structure == "EEI":
            want = np.diag(var[0])
        elif structure == "VVV":
            want = r.params["covariances"][j]
        else:
            want = cov[0]
        np.testing.assert_allclose(np.cov(rows.T), want, atol=0.08 * want.max())
    # same seed, same draw
    X2, _ = sample_from_result(r, 20000, random_seed=3)
    pd.testing.assert_frame_equal(X, X2)


def test_lca_sampler_reproduces_item_probabilities_and_categories():
    data, _, _ = simulate_categorical(600, k=2, n_items=4, n_categories=3, separation=0.8, random_seed=2)
    labels = data.astype("float").map(lambda v: "abc"[int(v)] if v == v else None)
    r = fit(labels, "lca", 2, random_seed=1, n_init=5)
    X, seg = sample_from_result(r, 30000, random_seed=5)
    assert set(np.unique(X.to_numpy().astype(str))) <= {"a", "b", "c"}  # original categories back
    for j in range(2):
        rows = X[seg == j + 1]
        for i, item in enumerate(r.feature_names):
            freq = rows[item].value_counts(normalize=True).reindex(list("abc"), fill_value=0).to_numpy()
            np.testing.assert_allclose(freq, r.params["probs"][j, i, :3], atol=0.03)


def test_sampler_refuses_other_models():
    r = SegmentationResult.from_memberships("kmeans", np.eye(2), centers=np.eye(2), feature_names=("a", "b"))
    with pytest.raises(ConfigError, match="Cannot simulate from a 'kmeans' model"):
        sample_from_result(r, 10)


# ------------------------------------------------------------------------------- LMR
def _fake(k: int, ll: float, p: int, n: int = 300, model: str = "gmm") -> SegmentationResult:
    return SegmentationResult.from_memberships(
        model, np.full((n, k), 1.0 / k), centers=np.zeros((k, 1)), feature_names=("x",),
        criteria={"loglik": ll, "n_params": p},
    )


def test_lmr_formula_by_hand():
    from scipy import stats

    r = lmr_test(_fake(2, -1000.0, 9), _fake(3, -980.0, 14))
    lr = 40.0
    adj = lr / (1 + 1 / (5 * math.log(300)))
    assert r.lr == pytest.approx(lr) and r.df == 5
    assert r.lr_adjusted == pytest.approx(adj)
    assert r.p_value == pytest.approx(stats.chi2.sf(adj, 5))
    assert "approximation" in r.reference
    json.dumps(r.to_dict())


def test_lmr_refuses_mismatched_fits():
    with pytest.raises(ConfigError, match="compares k - 1 with k segments; got k=2 and k=4"):
        lmr_test(_fake(2, -1.0, 9), _fake(4, -1.0, 19))
    with pytest.raises(ConfigError, match="two fits of one family; got gmm and lca"):
        lmr_test(_fake(2, -1.0, 9), _fake(3, -1.0, 14, model="lca"))
    with pytest.raises(ConfigError, match="same respondents; got n=300 and n=200"):
        lmr_test(_fake(2, -1.0, 9), _fake(3, -1.0, 14, n=200))


def test_lmr_table_over_a_selection_table():
    t = pd.DataFrame(
        {
            "model": ["gmm"] * 3 + ["kmeans"] + ["lca"] * 2,
            "k": [2, 3, 5, 3, 3, 4],
            "status": ["ok", "ok", "ok", "ok", "ok", "failed"],
            "loglik": [-500.0, -450.0, -440.0, np.nan, -300.0, np.nan],
            "n_params": [9, 14, 24, np.nan, 20, np.nan],
        }
    )
    out = lmr_table(t, 300)
    assert out[["model", "k_null", "k"]].values.tolist() == [["gmm", 2, 3]]  # 3->5 is not consecutive


# ------------------------------------------------------------------------------- BLRT
def test_blrt_checks_its_arguments():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ConfigError, match=r"for the EM engines \(gmm, lca, rating-lca\); got model 'kmeans'"):
        blrt(X, "kmeans", 2)
    with pytest.raises(ConfigError, match="k must be an integer >= 2"):
        blrt(X, "gmm", 1)
    with pytest.raises(ConfigError, match="replicates must be an integer >= 1; got 0"):
        blrt(X, "gmm", 2, replicates=0)
    with pytest.raises(ConfigError, match="n_jobs must be an integer >= 1; got 0"):
        blrt(X, "gmm", 2, n_jobs=0)


def test_failing_replicates_are_recorded_and_skipped(monkeypatch):
    X, _ = simulate_gaussian_mixture(120, k=2, d=2, separation=5.0, random_seed=4)
    calls = {"n": 0}
    real = models_mod.fit

    def flaky(data: Any, model: str, k: int, **kw: Any):
        calls["n"] += 1
        if calls["n"] > 2 and calls["n"] % 4 == 0:  # every second replicate fails in its k fit
            raise FitError("simulated failure")
        return real(data, model, k, **kw)

    monkeypatch.setattr(models_mod, "fit", flaky)
    seen: list[tuple[int, int]] = []
    res = blrt(X, "gmm", 2, replicates=6, random_seed=1, n_jobs=1, fit_options={"n_init": 2},
               progress=lambda d, t: seen.append((d, t)))
    assert res.n_failed == 3 and res.lr_boot.size == 3
    assert all("simulated failure" in f for f in res.failures)
    assert seen[-1] == (6, 6)
    assert res.p_value == pytest.approx(1 / 4)  # (1 + 0) / (3 + 1): no replicate beats a real split
    assert "3 of 6 replicates failed" in res.summary
    json.dumps(res.to_dict())


@pytest.mark.xdist_group("lrt")  # one worker pays the process-pool start once for every BLRT test
def test_blrt_same_seed_same_answer_whatever_n_jobs():
    X, _ = simulate_gaussian_mixture(80, k=1, d=2, random_seed=9)
    a = blrt(X, "gmm", 2, replicates=4, random_seed=5, n_jobs=1, fit_options={"n_init": 2})
    b = blrt(X, "gmm", 2, replicates=4, random_seed=5, n_jobs=2, fit_options={"n_init": 2})
    np.testing.assert_array_equal(a.lr_boot, b.lr_boot)
    assert a.p_value == b.p_value


@pytest.mark.slow
@pytest.mark.xdist_group("lrt")
def test_blrt_rejects_one_segment_on_separated_two_segment_data():
    X, _ = simulate_gaussian_mixture(200, k=2, d=2, separation=4.0, shares=[0.6, 0.4], random_seed=11)
    res = blrt(X, "gmm", 2, replicates=39, random_seed=2, n_jobs=2, fit_options={"n_init": 3})
    assert res.n_failed == 0
    assert res.p_value < 0.05
    assert res.lr > res.lr_boot.max()


@pytest.mark.slow
@pytest.mark.xdist_group("lrt")
def test_blrt_does_not_reject_on_one_segment_data():
    X, _ = simulate_gaussian_mixture(200, k=1, d=2, random_seed=12)
    res = blrt(X, "gmm", 2, replicates=39, random_seed=3, n_jobs=2, fit_options={"n_init": 3})
    assert res.p_value > 0.05
    assert res.n_negative == 0


@pytest.mark.slow
@pytest.mark.xdist_group("lrt")
def test_blrt_latent_class_rejects_on_two_classes_and_not_on_one():
    two, _, _ = simulate_categorical(300, k=2, n_items=6, n_categories=3, separation=0.6, random_seed=3)
    one, _, _ = simulate_categorical(300, k=1, n_items=6, n_categories=3, random_seed=4)
    r2 = blrt(two, "lca", 2, replicates=19, random_seed=1, n_jobs=2, fit_options={"n_init": 5})
    r1 = blrt(one, "lca", 2, replicates=19, random_seed=1, n_jobs=2, fit_options={"n_init": 5})
    assert r2.p_value == pytest.approx(1 / 20) and r2.n_failed == 0
    assert r1.p_value > 0.05
