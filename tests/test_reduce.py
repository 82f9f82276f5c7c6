"""Reduction of the opportunity matrix: PCA variance rule, varimax recovery, job-step composites."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from latentseg.errors import ConfigError, SurveyError
from latentseg.prepare.reduce import Reduction, reduce


def _planted(n: int = 1500, groups: int = 3, per: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Scores with a planted simple structure: outcome i loads 0.8 on factor i // per only."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, groups))
    m = groups * per
    truth = np.repeat(np.arange(groups), per)
    L = np.zeros((m, groups))
    L[np.arange(m), truth] = 0.8
    X = F @ L.T + 0.6 * rng.normal(size=(n, m))
    cols = [f"o{i:02d}" for i in range(m)]
    return pd.DataFrame(10 + 2 * X, columns=cols, index=pd.Index(range(100, 100 + n), name="id")), truth


def test_pca_reaches_variance_target_with_fewest_components():
    X, _ = _planted()
    Z = (X - X.mean()) / X.std(ddof=0)
    eig = np.sort(np.linalg.eigvalsh(np.cov(Z.to_numpy(), rowvar=False, ddof=0)))[::-1]
    share = np.cumsum(eig) / eig.sum()
    for target in (0.5, 0.6, 0.75, 0.9):
        red = reduce(X, "pca", variance=target)
        f = red.n_factors
        assert red.explained_variance.sum() >= target - 1e-12
        assert f == 1 or share[f - 2] < target  # one fewer would not do
        np.testing.assert_allclose(red.explained_variance, eig[:f] / eig.sum(), rtol=1e-10)
    red = reduce(X, "pca", n_factors=2)
    assert red.n_factors == 2 and red.scores.shape == (1500, 2)
    assert list(red.scores.index) == list(X.index)
    # scores are the projections: uncorrelated, variance = eigenvalue
    np.testing.assert_allclose(np.var(red.scores.to_numpy(), axis=0), eig[:2], rtol=1e-8)
    # loadings are outcome-component correlations
    corr = np.corrcoef(np.c_[X.to_numpy(), red.scores.to_numpy()], rowvar=False)[:12, 12:]
    np.testing.assert_allclose(red.loadings.to_numpy(), corr, atol=1e-8)


def test_pca_round_trip_and_linear_map():
    X, _ = _planted(n=300)
    full = reduce(X, "pca", n_factors=12)
    # all components: back to the data exactly
    np.testing.assert_allclose(full.to_outcomes(full.scores.to_numpy()).to_numpy(), X.to_numpy(), atol=1e-9)
    red = reduce(X, "pca", variance=0.75)
    c = np.random.default_rng(1).normal(size=(2, red.n_factors))
    back = red.to_outcomes(c)
    assert list(back.columns) == list(X.columns) and list(back.index) == [1, 2]
    np.testing.assert_allclose(red.transform(back).to_numpy(), c, atol=1e-10)  # factor -> outcome -> factor
    np.testing.assert_allclose(red.transform(X).to_numpy(), red.scores.to_numpy(), atol=1e-10)
    spec = red.transform_spec()
    json.dumps(spec)
    Z = (X.to_numpy() - np.array(spec["mean"])) / np.array(spec["scale"])
    np.testing.assert_allclose(Z @ np.array(spec["weights"]), red.scores.to_numpy(), atol=1e-10)


def test_varimax_recovers_planted_structure():
    X, truth = _planted(seed=3)
    outcomes = pd.DataFrame(
        {"statement": [f"minimize the time it takes to do thing {i}" for i in range(12)], "job_step": "x"},
        index=X.columns,
    )
    red = reduce(X, "fa", n_factors=3, outcomes=outcomes, random_seed=1)
    L = red.loadings.to_numpy()
    assigned = np.argmax(np.abs(L), axis=1)
    tab = np.zeros((3, 3))
    np.add.at(tab, (truth, assigned), 1)
    rows, cols = linear_sum_assignment(-tab)
    assert tab[rows, cols].sum() == 12  # every outcome on its planted factor
    # simple structure: the planted loading dominates the cross-loadings
    own = np.abs(L[np.arange(12), assigned])
    assert own.min() > 0.6 and np.abs(L).sum(axis=1).max() - own.min() < 0.6
    # labels from the top-loading statements, which all belong to the factor's planted group
    for j, lab in enumerate(red.labels):
        assert lab.startswith(f"F{j + 1}: minimize the time")
        top = np.argsort(-np.abs(L[:, j]))[:2]
        assert len(set(truth[top])) == 1
    assert red.explained_variance.shape == (3,)
    assert 0.4 < red.explained_variance.sum() < 0.8
    # Bartlett scores: transform(to_outcomes(c)) == c, and the scores track the true factors
    c = np.array([[0.5, -1.0, 2.0]])
    np.testing.assert_allclose(red.transform(red.to_outcomes(c)).to_numpy(), c, atol=1e-8)
    np.testing.assert_allclose(
        red.to_outcomes(c).to_numpy(), red.mean + red.scale * (c @ L.T), atol=1e-10
    )


def test_fa_default_factor_count_and_determinism():
    X, _ = _planted(n=600, seed=5)
    a = reduce(X, "fa", random_seed=1)
    b = reduce(X, "fa", random_seed=1)
    pca_f = reduce(X, "pca").n_factors
    assert a.n_factors == min(pca_f, 11)
    np.testing.assert_array_equal(a.scores.to_numpy(), b.scores.to_numpy())


def test_jobstep_composites_equal_groupby_mean():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.uniform(0, 20, size=(50, 6)), columns=list("abcdef"))
    X.iloc[3, 0] = np.nan
    X.iloc[4, [0, 1]] = np.nan  # every outcome of step "define" missing for respondent 4
    outcomes = pd.DataFrame(
        {"statement": list("ABCDEF"), "job_step": ["define", "define", "locate", "execute", "locate", "execute"]},
        index=list("abcdef"),
    )
    red = reduce(X, "jobstep", outcomes=outcomes)
    direct = X.T.groupby(outcomes["job_step"]).mean().T  # skips NaN, like the composites
    assert red.labels == ("define", "locate", "execute")
    pd.testing.assert_frame_equal(red.scores, direct[list(red.labels)], check_names=False)
    assert np.isnan(red.scores.loc[4, "define"])
    # to_outcomes: each outcome takes its step's value; and back again
    c = np.array([[1.0, 2.0, 3.0]])
    out = red.to_outcomes(c)
    assert out.iloc[0].tolist() == [1.0, 1.0, 2.0, 3.0, 2.0, 3.0]
    np.testing.assert_allclose(red.transform(out).to_numpy(), c)
    np.testing.assert_allclose(red.transform(X).to_numpy(), red.scores.to_numpy(), equal_nan=True)
    assert red.loadings.loc["e", "locate"] == 1.0 and red.loadings.loc["e", "define"] == 0.0
    assert 0 < red.explained_variance.sum() <= 1
    json.dumps(red.to_dict())


def test_missing_values_are_mean_imputed_for_pca():
    X, _ = _planted(n=200, seed=7)
    Xm = X.copy()
    Xm.iloc[0, 0] = np.nan
    red = reduce(Xm, "pca", n_factors=2)
    assert any("1 missing score(s) replaced by the outcome mean" in n for n in red.notes)
    assert np.isfinite(red.scores.to_numpy()).all()
    filled = Xm.fillna({Xm.columns[0]: Xm.iloc[:, 0].mean()})
    np.testing.assert_allclose(red.transform(filled).to_numpy(), red.scores.to_numpy(), atol=1e-10)


def test_bad_input_messages():
    X, _ = _planted(n=50)
    with pytest.raises(ConfigError, match="The 'method' parameter of reduce must be one of pca, fa, jobstep"):
        reduce(X, "ica")
    with pytest.raises(ConfigError, match=r"The 'variance' parameter of reduce must be a float in \(0, 1\]"):
        reduce(X, variance=80)
    with pytest.raises(ConfigError, match=r"The 'n_factors' parameter of reduce must be an int in the range \[1, 11\] for method 'fa'"):
        reduce(X, "fa", n_factors=12)
    with pytest.raises(SurveyError, match=r"Column\(s\) \['o01'\] have zero variance"):
        reduce(X.assign(o01=3.0), "pca")
    with pytest.raises(SurveyError, match=r"column\(s\) \['t'\] are not numeric"):
        reduce(X.assign(t="x"))
    with pytest.raises(ConfigError, match="needs outcomes with a 'job_step' column"):
        reduce(X, "jobstep")
    outcomes = pd.DataFrame({"job_step": ["s"] * 11 + [""]}, index=X.columns)
    with pytest.raises(ConfigError, match=r"1 outcome\(s\) have none: \['o11'\]"):
        reduce(X, "jobstep", outcomes=outcomes)
    with pytest.raises(ConfigError, match="Expected points with 2 factor coordinates; got 3"):
        reduce(X, "pca", n_factors=2).to_outcomes(np.zeros((1, 3)))
    assert isinstance(reduce(X, "pca"), Reduction)
