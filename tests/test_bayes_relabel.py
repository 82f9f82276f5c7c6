"""Label switching: relabelling draws with planted permutations; chains in different modes."""

from __future__ import annotations

import numpy as np
import pytest

from latentseg.errors import ConvergenceWarning
from latentseg.models.bayes._relabel import apply_permutations, chain_modes, hungarian_permutations, relabel_draws
from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
from latentseg.models.bayes.lca import LatentClassFamily, LCAPriors
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture


def _planted(rng: np.random.Generator, C: int, S: int, k: int) -> np.ndarray:
    """Random permutations (C, S, k), a third of the draws left alone."""
    perms = np.array([[rng.permutation(k) for _ in range(S)] for _ in range(C)])
    keep = rng.random((C, S)) < 1 / 3
    perms[keep] = np.arange(k)
    return perms


def test_hungarian_recovers_planted_permutations_gmm() -> None:
    X, _ = simulate_gaussian_mixture(200, k=4, d=3, random_seed=2)
    fam = GaussianFamily(X, 4, "diag", GMMPriors())
    rng = np.random.default_rng(0)
    ref = {
        "weights": np.array([0.4, 0.3, 0.2, 0.1]),
        "means": rng.normal(0, 3, (4, 3)) * fam.scale,
        "sds": np.exp(rng.normal(0, 0.3, (4, 3))) * fam.scale,
    }
    C, S = 3, 200
    truth = {
        "weights": ref["weights"] * np.exp(0.1 * rng.standard_normal((C, S, 4))),
        "means": ref["means"] + 0.2 * fam.scale * rng.standard_normal((C, S, 4, 3)),
        "sds": ref["sds"] * np.exp(0.05 * rng.standard_normal((C, S, 4, 3))),
    }
    truth["weights"] /= truth["weights"].sum(axis=-1, keepdims=True)
    planted = _planted(rng, C, S, 4)
    # draw s shows component planted[s, l] where the truth has label l ... scrambled draws:
    scrambled = {}
    for key, val in truth.items():
        out = np.empty_like(val)
        for c in range(C):
            for s in range(S):
                out[c, s, planted[c, s]] = val[c, s]
        scrambled[key] = out
    relabelled, perms = relabel_draws(scrambled, ref, fam.relabel_cost, fam.segment_keys)
    for key in truth:
        np.testing.assert_array_equal(relabelled[key], truth[key])
    np.testing.assert_array_equal(perms, planted)


def test_hungarian_recovers_planted_permutations_lca() -> None:
    df, _, probs = simulate_categorical(150, k=3, n_items=6, n_categories=3, random_seed=3)
    fam = LatentClassFamily(df, 3, "categorical", LCAPriors())
    ref = {"weights": np.array([0.5, 0.3, 0.2]), "probs": fam._flat_probs(probs)}
    rng = np.random.default_rng(1)
    S = 300
    noisy = ref["probs"] * np.exp(0.15 * rng.standard_normal((1, S, 3, fam.C)))
    truth = {"weights": np.tile(ref["weights"], (1, S, 1)), "probs": fam._normalise_blocks(noisy)}
    planted = _planted(rng, 1, S, 3)
    scrambled = {key: np.empty_like(val) for key, val in truth.items()}
    for s in range(S):
        for key in truth:
            scrambled[key][0, s, planted[0, s]] = truth[key][0, s]
    relabelled, perms = relabel_draws(scrambled, ref, fam.relabel_cost, fam.segment_keys)
    np.testing.assert_array_equal(perms, planted)
    np.testing.assert_array_equal(relabelled["probs"], truth["probs"])


def test_hungarian_finds_the_least_cost_assignment_not_the_greedy_one() -> None:
    # greedy row-by-row would give component 0 label 0 (cost 1) and then component 1 label 1 (100)
    cost = np.array([[[1.0, 2.0], [2.0, 100.0]]])
    assert hungarian_permutations(cost).tolist() == [[1, 0]]
    w = np.array([[0.3, 0.7]])
    assert apply_permutations({"weights": w, "other": w}, np.array([[1, 0]]), ["weights"])["other"].tolist() == [[0.3, 0.7]]


def test_chain_modes_groups_chains() -> None:
    rng = np.random.default_rng(0)
    base = np.tile([0.5, 0.3, 0.2], (400, 1))
    other = np.tile([0.5, 0.48, 0.02], (400, 1))
    w = np.stack([base, base, other, base]) + 0.01 * rng.standard_normal((4, 400, 3))
    loc = 0.1 * rng.standard_normal((4, 400, 3, 2))
    assert chain_modes(w, loc) == [[0, 1, 3], [2]]
    # same weights but a location in another place
    loc2 = loc.copy()
    loc2[1, :, 0, 0] += 2.0
    assert chain_modes(w[[0, 1]], loc2[[0, 1]]) == [[0], [1]]
    # chains in one mode with ordinary Monte Carlo noise stay together
    assert chain_modes(w[[0, 1, 3]], loc[[0, 1, 3]]) == [[0, 1, 2]]


def test_chains_in_another_mode_are_reported_not_averaged() -> None:
    """Draws of chain 1 sit in a different solution: the summary must use chain 0 only, flag the fit
    as not converged and say so."""
    from latentseg.models.bayes.engine import _Draws, _Settings, _summarise

    X, z = simulate_gaussian_mixture(300, k=3, d=3, separation=4.0, random_seed=5)
    fam = GaussianFamily(X, 3, "diag", GMMPriors())
    em = fam.em_start(1, 5)
    good = fam.start_params(em)
    rng = np.random.default_rng(2)
    S = 300

    def chain(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        w = p["weights"] * np.exp(0.05 * rng.standard_normal((S, 3)))
        return {
            "weights": w / w.sum(axis=1, keepdims=True),
            "means": p["means"] + 0.05 * fam.scale * rng.standard_normal((S, 3, 3)),
            "sds": p["sds"] * np.exp(0.03 * rng.standard_normal((S, 3, 3))),
        }

    # a worse solution: segments 1 and 2 merged, segment 3 split off a few respondents
    bad = {
        "weights": np.array([0.7, 0.25, 0.05]),
        "means": np.stack([good["means"][:2].mean(axis=0), good["means"][2], good["means"][2] + fam.scale]),
        "sds": np.stack([good["sds"][0] * 2, good["sds"][2], good["sds"][2]]),
    }
    a, b = chain(good), chain(bad)
    params = {key: np.stack([a[key], b[key]]) for key in a}
    raw = _Draws(params=params, diverging=np.zeros((2, S), bool), energy=rng.normal(size=(2, S)))
    s = _Settings(draws=S, tune=0, chains=2, sampler="nutpie", target_accept=0.8, n_init=5, advi_iterations=100,
                  keep_log_likelihood=None, progressbar=False, random_seed=1)
    with pytest.warns(ConvergenceWarning, match="different modes"):
        res = _summarise(fam, em, [], raw, s)
    assert res.diagnostics["converged"] is False
    assert res.diagnostics["chains_used"] == [0]
    assert len(res.diagnostics["modes"]) == 2
    np.testing.assert_allclose(np.sort(res.shares), np.sort(a["weights"].mean(axis=0)), atol=1e-12)
    assert "posterior_other_modes" in res.posterior.children
    assert list(res.posterior["posterior"]["chain"].values) == [0]
