"""Stability under subsampling: high on separated segments, clearly lower on noise, reproducible."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import ConfigError, FitError
from latentseg.models import fit
from latentseg.research.simulate import simulate_categorical
from latentseg.choose.stability import StabilityResult, stability


def _separated(n_per: int = 100, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    X = np.concatenate([c + rng.normal(size=(n_per, 3)) for c in centers])
    return pd.DataFrame(X, columns=["a", "b", "c"], index=pd.Index([f"r{i}" for i in range(len(X))]))


def _noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(300, 10))


def test_separated_segments_are_stable_and_noise_is_not():
    sep = stability(_separated(), "kmeans", 3, random_seed=1)
    assert isinstance(sep, StabilityResult)
    assert sep.subsamples == 5 and sep.ari.shape == (5,)
    assert sep.mean > 0.9 and sep.min > 0.9
    assert sep.sizes.tolist() == [240] * 5
    noise = stability(_noise(), "kmeans", 4, random_seed=1)
    assert noise.mean < 0.6
    assert sep.mean - noise.mean > 0.3
    assert noise.min == pytest.approx(noise.ari.min()) and noise.mean == pytest.approx(noise.ari.mean())


def test_latent_class_stability():
    data, truth, _ = simulate_categorical(400, 3, 8, 4, separation=0.7, random_seed=2)
    st = stability(data, "lca", 3, subsamples=3, random_seed=4, n_init=4)
    assert st.mean > 0.9
    assert st.model == "lca" and st.k == 3


def test_same_seed_same_result_and_reference():
    X = _noise(1)
    a = stability(X, "kmeans", 4, subsamples=3, random_seed=7)
    b = stability(X, "kmeans", 4, subsamples=3, random_seed=7)
    np.testing.assert_array_equal(a.ari, b.ari)
    assert a.to_dict() == b.to_dict()
    json.dumps(a.to_dict())
    c = stability(X, "kmeans", 4, subsamples=3, random_seed=8)
    assert not np.array_equal(a.ari, c.ari)
    # a given reference is what the subsamples are compared with
    ref = fit(X, "kmeans", 4, random_seed=3)
    with_ref = stability(X, "kmeans", 4, subsamples=3, random_seed=7, reference=ref)
    rng = np.random.default_rng(7)
    _, *subs = rng.spawn(4)
    g = subs[0]
    idx = np.sort(g.choice(300, size=240, replace=False))
    sub = fit(X[idx], "kmeans", 4, random_seed=int(g.integers(0, 2**31 - 1)))
    assert with_ref.ari[0] == pytest.approx(adjusted_rand_score(ref.assignment[idx], sub.assignment))


def test_bad_settings():
    X = _separated(20)
    with pytest.raises(ConfigError, match="The 'subsamples' parameter of stability must be an int >= 1. Got 0"):
        stability(X, "kmeans", 2, subsamples=0)
    with pytest.raises(ConfigError, match=r"The 'fraction' parameter of stability must be a float in \(0, 1\). Got 1.0"):
        stability(X, "kmeans", 2, fraction=1.0)
    with pytest.raises(ConfigError, match="too few for k = 50 segments"):
        stability(X, "kmeans", 50)
    ref = fit(X.iloc[:30], "kmeans", 2, random_seed=0)
    with pytest.raises(ConfigError, match="The reference segmentation has 30 respondents but the data have 60"):
        stability(X, "kmeans", 2, reference=ref)
    # one odd respondent: a 10% subsample without it has a single distinct row, too few for k = 2
    twins = pd.DataFrame({"a": [1.0] * 29 + [2.0], "b": [0.0] * 29 + [1.0]})
    with pytest.raises(FitError, match=r"Stability refit \d of 5 \(kmeans, k = 2\) failed: "):
        stability(twins, "kmeans", 2, fraction=0.1, random_seed=0, reference=fit(twins, "kmeans", 2, random_seed=0))
