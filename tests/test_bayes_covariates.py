"""One-step covariates on membership in the Bayesian Gaussian mixture (issue 16, item 4).

One shared fit (n = 300, d = 3, k = 2, 2 chains of 300 draws after 300 tuning; about 25 s of CPU,
most of it nutpie compiling the PyMC model) checks recovery of the planted coefficients against
the truth, the no-effect covariate, agreement with the EM one-step estimate and the relabelling;
the other tests fail before sampling.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latentseg.errors import ConfigError
from latentseg.models._mnlogit import rereference
from latentseg.models.bayes.covariates import _match, _permute, _rereferenced
from latentseg.models.bayes.engine import fit_bayes_gmm, fit_bayes_lca
from latentseg.models.gmm import fit_gmm
from latentseg.research.simulate import simulate_covariate_mixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_covariate_mixture(300, 2, d=3, random_seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_bayes_gmm(sim.data, 2, covariates=sim.covariates, draws=300, tune=300, chains=2, cores=1,
                            random_seed=1)
        em = fit_gmm(sim.data, 2, random_seed=1, covariates=sim.covariates)
    lab = res.memberships.argmax(axis=1) + 1
    truth = sim.coefficients["value"].to_numpy()[:, None]  # (m, 1) against the simulated segment 1
    if np.mean(lab == sim.labels) < 0.5:  # our segment 1 is the simulated segment 2
        truth = rereference(truth, np.eye(truth.size), [1, 0])[0]
    return sim, res, em, truth[:, 0]


def test_planted_coefficients_recovered(fitted):
    sim, res, _, truth = fitted
    tab = res.extras["covariates"]
    assert res.model == "bayes-gmm" and res.settings["covariates_method"] == "one-step"
    assert tab["term"].tolist() == ["(intercept)", "age", "region[EU]", "region[APAC]", "noise"]
    assert tab.columns.tolist()[:6] == ["segment", "term", "estimate", "se", "lower", "upper"]
    # 300 draws x 2 chains: coefficient R-hat 1.009-1.014, bulk ESS 237-1191 over seeds 1-4
    assert res.diagnostics["covariates_rhat_max"] < 1.05
    # every planted coefficient inside its 95% credible interval (seeds 1-4: all 20 covered)
    assert ((tab["lower"] <= truth) & (truth <= tab["upper"])).all(), (tab, truth)
    # the strong effect (age, 0.05 per year, about 1.2 per two sds): its interval excludes 0; over
    # seeds 1-4 the bound nearest 0 is 0.011-0.047 away from it
    age = tab.set_index("term").loc["age"]
    assert age["lower"] * age["upper"] > 0
    # intervals are the equal-tailed quantiles of the draws, estimate the posterior mean
    draws = res.extras["covariate_draws"].reshape(-1, 5, 1)
    np.testing.assert_allclose(tab["lower"], np.quantile(draws[:, :, 0], 0.025, axis=0))
    np.testing.assert_allclose(tab["estimate"], draws[:, :, 0].mean(axis=0))


def test_no_effect_covariate_interval_contains_zero(fitted):
    _, res, _, _ = fitted
    noise = res.extras["covariates"].set_index("term").loc["noise"]
    # planted 0; seeds 1-4: intervals about 0.5-0.7 wide, 0 inside with at least 0.098 to spare
    assert noise["lower"] < 0 < noise["upper"]


def test_agrees_with_em_one_step(fitted):
    _, res, em, _ = fitted
    tb, te = res.extras["covariates"], em.extras["covariates"]
    assert tb["term"].tolist() == te["term"].tolist() and tb["segment"].tolist() == te["segment"].tolist()
    # weak priors, n = 300 (seeds 1-4): posterior means within 0.12 of the EM estimates on the
    # intercept and 0.022 on the slopes (0.003 on age); posterior sds / EM standard errors 0.93-1.13
    np.testing.assert_allclose(tb["estimate"][0], te["estimate"][0], atol=0.3)
    np.testing.assert_allclose(tb["estimate"][1:], te["estimate"][1:], atol=0.08)
    np.testing.assert_allclose(tb["se"] / te["se"], 1.0, atol=0.25)
    # same segments as the EM fit (numbered largest first)
    assert np.mean(res.memberships.argmax(1) == em.memberships.argmax(1)) > 0.95


def test_relabelling_permutes_and_rereferences(fitted):
    _, res, _, _ = fitted
    coef = res.extras["covariate_draws"].reshape(-1, 5, 1)
    swapped = _rereferenced(coef, np.tile([1, 0], (coef.shape[0], 1)))
    np.testing.assert_allclose(swapped, -coef)  # k = 2: swapping the segments negates every coefficient
    # k = 3: the same as the EM engine's rereference, for every permutation
    rng = np.random.default_rng(0)
    c3 = rng.normal(size=(4, 3, 2))
    for order in ([0, 1, 2], [1, 0, 2], [2, 0, 1], [2, 1, 0]):
        got = _rereferenced(c3, np.tile(order, (4, 1)))
        for s in range(4):
            np.testing.assert_allclose(got[s], rereference(c3[s], np.eye(6), order)[0])
    # label switching undone: scramble the draws' segments, then match them back to the reference
    from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors

    fam = GaussianFamily(np.zeros((2, 3)) + [[0.0], [1.0]], 2, "diag", GMMPriors())
    S = 50
    means = res.params["means"][None] + rng.normal(0, 0.05, (S, 2, 3))
    p = {"weights": np.tile(res.shares, (S, 1)), "means": means, "sds": np.ones((S, 2, 3))}
    flip = np.where(rng.random(S) < 0.5, 1, 0)
    scramble = np.stack([flip, 1 - flip], axis=1)
    q = _permute(p, scramble, fam.segment_keys)
    perm = _match(fam, q, {"weights": res.shares, "means": res.params["means"], "sds": np.ones((2, 3))})
    np.testing.assert_array_equal(perm, scramble)  # a swap is its own inverse
    np.testing.assert_allclose(_permute(q, perm, fam.segment_keys)["means"], means)
    back = _rereferenced(_rereferenced(coef[:S], scramble), perm)
    np.testing.assert_allclose(back, coef[:S], atol=1e-12)


def test_bad_input_same_error_as_em():
    sim = simulate_covariate_mixture(120, 2, d=3, random_seed=2)
    cov = sim.covariates.assign(const=1.0)
    with pytest.raises(ConfigError) as em_err:
        fit_gmm(sim.data, 2, random_seed=1, covariates=cov)
    with pytest.raises(ConfigError) as bayes_err:
        fit_bayes_gmm(sim.data, 2, covariates=cov, draws=10, tune=10, chains=1, random_seed=1)
    assert "'const'" in str(bayes_err.value) and "constant" in str(bayes_err.value)
    assert str(bayes_err.value) == str(em_err.value)


def test_weights_with_covariates_refused():
    sim = simulate_covariate_mixture(60, 2, d=2, random_seed=3)
    with pytest.raises(ConfigError, match="--covariates-method bch"):
        fit_bayes_gmm(sim.data, 2, covariates=sim.covariates, sample_weight=np.ones(60), draws=10, tune=10, chains=1)
    levels = simulate_covariate_mixture(60, 2, kind="levels", d=3, random_seed=3)
    with pytest.raises(ConfigError, match="--covariates-method bch"):
        fit_bayes_lca(levels.data, 2, covariates=levels.covariates, sample_weight=np.ones(60), draws=10, tune=10,
                      chains=1)


def test_full_covariance_and_ordinal_refused():
    sim = simulate_covariate_mixture(60, 2, d=2, random_seed=3)
    with pytest.raises(ConfigError, match="not for 'full'"):
        fit_bayes_gmm(sim.data, 2, covariance="full", covariates=sim.covariates, draws=10, tune=10, chains=1)
    levels = simulate_covariate_mixture(60, 2, kind="levels", d=3, random_seed=3)
    with pytest.raises(ConfigError, match="not for 'ordinal'"):
        fit_bayes_lca(levels.data, 2, measurement="ordinal", covariates=levels.covariates, draws=10, tune=10, chains=1)


def test_latent_class_one_step_recovers_and_matches_em():
    """bayes-lca with covariates (5 items, 3 categories): the planted effects inside their credible
    intervals, the estimates the EM one-step's, and the JSON contract carries the table."""
    from latentseg.decide.covariates import covariates_json
    from latentseg.models.lca import fit_lca

    sim = simulate_covariate_mixture(300, 2, kind="levels", d=5, random_seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_bayes_lca(sim.data, 2, covariates=sim.covariates, draws=300, tune=300, chains=2, cores=1,
                            random_seed=1)
        em = fit_lca(sim.data, 2, random_seed=1, covariates=sim.covariates)
    truth = sim.coefficients["value"].to_numpy()[:, None]
    if np.mean(res.memberships.argmax(axis=1) + 1 == sim.labels) < 0.5:
        truth = rereference(truth, np.eye(truth.size), [1, 0])[0]
    tb, te = res.extras["covariates"], em.extras["covariates"]
    # the four planted non-zero terms covered (seeds 1-2: 8 of 8; the no-effect 'noise' interval
    # missed 0 on seed 1, as the EM one-step's Wald interval did: a 5% event)
    planted = tb["term"] != "noise"
    assert ((tb["lower"] <= truth[:, 0]) & (truth[:, 0] <= tb["upper"]))[planted].all(), (tb, truth)
    # seeds 1-2: |Bayes - EM| at most 0.051 (intercept), 0.016 (slopes); sd / se 0.97-1.06
    np.testing.assert_allclose(tb["estimate"], te["estimate"], atol=0.15)
    np.testing.assert_allclose(tb["se"] / te["se"], 1.0, atol=0.25)
    out = covariates_json(res)
    assert out["method"] == "one-step" and out["interval"] == "95% equal-tailed posterior credible"
    assert out["coefficients"][1]["term"] == "age" and out["coefficients"][1]["lower"] == tb["lower"][1]
    assert res.model == "bayes-lca" and "item_probs" in res.extras


def test_pipeline_one_step_refits_the_bayesian_model(fitted):
    """--covariates-method one-step on a bayes-gmm result (apply_covariates, what fit and run do):
    the model is refitted with its own settings, the credible table is kept and the JSON says so."""
    from latentseg.decide.covariates import apply_covariates, check_covariates_config, covariates_json

    sim, res, _, _ = fitted
    cfg = {"model": {"covariates": ["age", "noise"], "covariates_method": "one-step"}}
    assert check_covariates_config(cfg, sim.covariates, "bayes-gmm") == ["age", "noise"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, eff = apply_covariates(res, sim.data, sim.covariates, ["age", "noise"], "one-step")
    assert out.model == "bayes-gmm" and out.settings["draws"] == 300 and out.settings["chains"] == 2
    tab = out.extras["covariates"]
    assert tab["term"].tolist() == ["(intercept)", "age", "noise"]
    draws = out.extras["covariate_draws"].reshape(-1, 3)
    np.testing.assert_allclose(tab["upper"], np.quantile(draws, 0.975, axis=0))  # credible, not Wald
    j = covariates_json(out)
    assert j["method"] == "one-step" and j["interval"] == "95% equal-tailed posterior credible"
    assert j["se_method"] == "posterior sd" and eff.coefficients is tab
    # without region the age effect is still recovered (0.05 per year, our segment 1 = simulated 2 here)
    age = tab.set_index("term").loc["age"]
    assert age["upper"] < 0 and age["lower"] < -0.05 < age["upper"]
    with pytest.raises(ConfigError, match="--covariates-method bch"):
        apply_covariates(res, sim.data, sim.covariates, ["age"], "one-step", sample_weight=np.ones(300))


def test_missing_covariate_is_an_error_naming_the_rows():
    sim = simulate_covariate_mixture(120, 2, d=3, random_seed=2)
    cov = sim.covariates.copy()
    cov.loc[cov.index[[3, 7]], "age"] = np.nan
    with pytest.raises(ConfigError, match=r"2 respondent\(s\) \[3, 7\] have a missing covariate \(age, region, noise\)"):
        fit_bayes_gmm(sim.data, 2, covariates=cov, draws=10, tune=10, chains=1, random_seed=1)
