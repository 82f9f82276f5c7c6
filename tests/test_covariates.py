"""Covariates on segment membership (issue 16 items 4-5): the weighted multinomial logit, the
one-step EM (gmm, lca), BCH and ML three-step, against planted truth and StepMix 3.0."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from latentseg.decide.covariates import covariate_effects, error_matrix, reweight_memberships
from latentseg.errors import ConfigError, LatentsegWarning
from latentseg.models._mnlogit import (
    SeparationWarning,
    covariate_design,
    fit_concomitant,
    fit_mnlogit,
    MeasurementModel,
    one_step,
)
from latentseg.models.gmm import fit_gmm
from latentseg.models.lca import fit_lca
from latentseg.research.simulate import simulate_covariate_mixture
from latentseg.result import SegmentationResult


# ----------------------------------------------------------------------------- shared fits
@pytest.fixture(scope="module")
def sim3() -> object:
    return simulate_covariate_mixture(400, 3, kind="scores", d=5, random_seed=0)


@pytest.fixture(scope="module")
def gmm3(sim3: object) -> SegmentationResult:
    return fit_gmm(sim3.data, 3, random_seed=1)


# ----------------------------------------------------------------------------- design and bad input
def test_design_codes_levels_against_the_most_frequent_and_names_terms() -> None:
    cov = pd.DataFrame({"age": [30.0, 40, 50, 60, 35, 45], "region": ["EU", "US", "US", "APAC", "US", "EU"]})
    d = covariate_design(cov)
    assert d.terms == ("(intercept)", "age", "region[EU]", "region[APAC]")
    assert d.levels["region"] == ("US", "EU", "APAC")
    np.testing.assert_array_equal(d.X[:, 2], [1, 0, 0, 0, 0, 1])


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": [5.0, 5.0, 5.0]}), "Covariate column 'c' .* is constant"),
        (pd.DataFrame({"x": [1.0, 2.0, 3.0], "m": [np.nan] * 3}), "Covariate column 'm' .* has no observed value"),
        (pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "a", None]}), "Covariate column 'g' .* is constant"),
    ],
)
def test_constant_or_empty_covariate_is_an_error_naming_the_column(frame: pd.DataFrame, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        covariate_design(frame)


def test_unknown_column_and_method_are_errors(sim3: object, gmm3: SegmentationResult) -> None:
    with pytest.raises(ConfigError, match="Covariate column\\(s\\) \\[nope\\] are not in"):
        covariate_effects(gmm3, sim3.covariates, "bch", columns=["nope"])
    with pytest.raises(ConfigError, match="must be one of one-step, bch, ml"):
        covariate_effects(gmm3, sim3.covariates, "lm")
    with pytest.raises(ConfigError, match="pass data="):
        covariate_effects(gmm3, sim3.covariates, "one-step")


def test_rows_with_a_missing_covariate_are_reported_not_dropped_silently(sim3: object, gmm3: SegmentationResult) -> None:
    cov = sim3.covariates.copy()
    cov.loc[[3, 17], "age"] = np.nan
    with pytest.warns(LatentsegWarning, match="2 respondent\\(s\\) \\[3, 17\\] have a missing covariate"):
        eff = covariate_effects(gmm3, cov, "bch")
    assert eff.excluded == [3, 17] and eff.n == 398
    assert eff.to_dict()["excluded"] == ["3", "17"]
    with pytest.warns(LatentsegWarning, match="missing covariate"):
        res = one_step(gmm3, sim3.data, cov)
    assert res.diagnostics["covariates_excluded"] == ["3", "17"]
    assert np.allclose(res.memberships.sum(axis=1), 1.0) and res.n == 400  # still segmented


def test_perfect_separation_warns_and_gives_a_finite_penalised_estimate() -> None:
    rng = np.random.default_rng(4)
    n = 300
    seg = rng.integers(2, size=n)
    # 'vip' only occurs in segment 2: its coefficient is +infinity by maximum likelihood
    tier = np.where((seg == 1) & (rng.random(n) < 0.3), "vip", rng.choice(["basic", "plus"], size=n))
    cov = pd.DataFrame({"tier": tier, "x": rng.normal(size=n)})
    z = np.c_[seg == 0, seg == 1].astype(float)
    d = covariate_design(cov)
    with pytest.warns(SeparationWarning, match="tier\\[vip\\]"):
        fit = fit_mnlogit(z, d.X, terms=d.terms, scale=d.scale)
    assert fit.penalised and "tier[vip]" in fit.separated
    j = d.terms.index("tier[vip]")
    # penalised: large but finite (prior scale 2.5; measured 4.6 here), with a finite SE
    assert 2.0 < fit.coef[j, 0] < 10.0 and np.isfinite(fit.se).all()
    # the same through covariate_effects: the JSON carries finite numbers only
    r = SegmentationResult.from_memberships("gmm", 0.98 * z + 0.01, centers=np.zeros((2, 1)), feature_names=("f",))
    with pytest.warns(SeparationWarning):
        eff = covariate_effects(r, cov, "bch")
    text = json.dumps(eff.to_dict(), allow_nan=False)
    assert eff.penalised and "Infinity" not in text


def test_mnlogit_weights_equal_duplicated_rows() -> None:
    rng = np.random.default_rng(0)
    n = 200
    X = np.c_[np.ones(n), rng.normal(size=n), rng.random(n) < 0.4]
    z = rng.dirichlet(np.ones(3), size=n)
    w = rng.integers(1, 3, size=n).astype(float)
    rep = np.repeat(np.arange(n), w.astype(int))
    a = fit_mnlogit(z, X, sample_weight=w, se="observed")
    b = fit_mnlogit(z[rep], X[rep], se="observed")
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-9)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-7)
    assert fit_mnlogit(z, X, sample_weight=w).se_method == "sandwich"


def test_one_step_and_three_step_weights_equal_duplicated_rows(sim3: object, gmm3: SegmentationResult) -> None:
    """A survey weight of 2 on a row gives the same covariate fit as that row duplicated
    (one-step, BCH, ML; the same starting result, so the same EM path)."""
    w = np.where(np.arange(400) % 3 == 0, 2.0, 1.0)
    rep = np.repeat(np.arange(400), w.astype(int))
    ids = pd.RangeIndex(rep.size)
    dup = SegmentationResult.from_memberships(
        "gmm", gmm3.memberships[rep], centers=gmm3.centers, feature_names=gmm3.feature_names, respondent_ids=ids,
        params=gmm3.params, shared_params=gmm3.shared_params, settings=gmm3.settings)
    cov_dup = sim3.covariates.iloc[rep].set_axis(ids)
    data_dup = sim3.data.iloc[rep].set_axis(ids)
    # the weighted three-step first moves the memberships of this unweighted fit to the weighted
    # shares (reweight_memberships); the duplicated rows carry those memberships
    zw = reweight_memberships(gmm3.memberships, w)
    dup3 = SegmentationResult.from_memberships("gmm", zw[rep], centers=gmm3.centers, feature_names=gmm3.feature_names,
                                               respondent_ids=ids)
    assert dup3.respondent_ids.equals(ids) and np.allclose(dup3.memberships, zw[rep])  # order kept
    for method in ("bch", "ml"):
        a = covariate_effects(gmm3, sim3.covariates, method, sample_weight=w)
        b = covariate_effects(dup3, cov_dup, method)
        np.testing.assert_allclose(a.coef, b.coef, atol=1e-7)
    a1 = one_step(gmm3, sim3.data, sim3.covariates, sample_weight=w)
    b1 = one_step(dup, data_dup, cov_dup)
    # EM stops on a 1e-12 per-respondent gain: the two paths agree to ~1e-6 (measured 1.2e-6)
    np.testing.assert_allclose(a1.extras["covariate_coef"], b1.extras["covariate_coef"], atol=2e-5)
    assert abs(a1.criteria["loglik"] - b1.criteria["loglik"]) < 1e-6


# ----------------------------------------------------------------------------- results and JSON
def test_one_step_result_counts_parameters_and_keeps_canonical_order(sim3: object, gmm3: SegmentationResult) -> None:
    res = fit_gmm(sim3.data, 3, random_seed=1, covariates=sim3.covariates)
    m = 5  # intercept, age, EU, APAC, noise
    assert res.criteria["n_params"] == gmm3.criteria["n_params"] + (m - 1) * (3 - 1)
    assert res.criteria["loglik"] > gmm3.criteria["loglik"]  # covariates predict membership
    assert np.all(np.diff(res.shares) <= 0)
    tab = res.extras["covariates"]
    assert set(tab["segment"]) == {2, 3} and tab["term"].iloc[0] == "(intercept)"
    eff = covariate_effects(res, sim3.covariates, "one-step")
    np.testing.assert_allclose(eff.coefficients["estimate"], tab["estimate"])
    out = eff.to_dict()
    assert out["method"] == "one-step" and out["reference_segment"] == 1
    assert set(out["coefficients"][0]) >= {"segment", "term", "estimate", "se", "lower", "upper", "odds_ratio"}
    # average marginal effects on the k probabilities sum to zero per term
    ame = eff.marginal_effects.groupby("term")["estimate"].sum()
    assert np.abs(ame).max() < 1e-10


def test_reference_segment_reexpresses_the_same_model(sim3: object, gmm3: SegmentationResult) -> None:
    a = covariate_effects(gmm3, sim3.covariates, "ml")
    b = covariate_effects(gmm3, sim3.covariates, "ml", reference_segment=2)
    ea = a.coefficients.set_index(["segment", "term"])["estimate"]
    eb = b.coefficients.set_index(["segment", "term"])["estimate"]
    # b_3 vs 2 = b_3 vs 1 - b_2 vs 1; b_1 vs 2 = -b_2 vs 1
    np.testing.assert_allclose(eb.loc[3].to_numpy(), (ea.loc[3] - ea.loc[2]).to_numpy(), atol=1e-10)
    np.testing.assert_allclose(eb.loc[1].to_numpy(), -ea.loc[2].to_numpy(), atol=1e-10)
    pd.testing.assert_frame_equal(a.marginal_effects, b.marginal_effects)


def test_lca_one_step_recovers_the_planted_effects() -> None:
    sim = simulate_covariate_mixture(600, 2, kind="levels", d=6, random_seed=5)
    res = fit_lca(sim.data, 2, random_seed=1, covariates=sim.covariates)
    agree = (res.assignment == sim.labels).mean()
    ref_flip = agree < 0.5
    eff = covariate_effects(res, sim.covariates, "one-step", reference_segment=2 if ref_flip else 1)
    est = eff.coefficients.set_index("term")
    truth = sim.coefficients.set_index("term")["value"]
    inside = [(est.loc[t, "lower"] <= truth[t] <= est.loc[t, "upper"]) for t in truth.index]
    assert sum(inside) >= 4  # 5 terms; each 95% interval (measured: all 5 cover)


# ----------------------------------------------------------------------------- StepMix 3.0
def _stepmix() -> object:
    return pytest.importorskip("stepmix.stepmix")


def _stepmix_beta(coef: np.ndarray) -> np.ndarray:
    """Our (m, k-1) coefficients against segment 1 as StepMix's (k, m) softmax coefficients."""
    return np.c_[np.zeros(coef.shape[0]), coef].T


@pytest.mark.parametrize("kind", ["levels", "scores"])
def test_one_step_loglik_equals_stepmix(kind: str) -> None:
    """StepMix 3.0.0, ``structural="covariate"``, ``n_steps=1``: (a) its log-likelihood evaluated at
    our estimates equals ours (measured difference < 1e-10); (b) fitted separately from its own
    5 random starts, it reaches the same maximum (measured |difference| < 6e-10 over seeds 0-3,
    both models; threshold 1e-6)."""
    sm_mod = _stepmix()
    sim = simulate_covariate_mixture(400, 3, kind=kind, d=5, random_seed=1)
    d = covariate_design(sim.covariates)
    Y, X = d.X[:, 1:], sim.data.to_numpy()
    if kind == "levels":
        res = fit_lca(sim.data, 3, random_seed=1, covariates=sim.covariates)
    else:
        res = fit_gmm(sim.data, 3, random_seed=1, covariates=sim.covariates, n_init=5)
    sm = sm_mod.StepMix(n_components=3, measurement="categorical" if kind == "levels" else "gaussian_diag",
                        structural="covariate", n_steps=1, n_init=5, max_iter=5000, abs_tol=1e-12, rel_tol=0,
                        random_state=1, progress_bar=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm.fit(X, Y)
    fitted = sm.lower_bound_ * 400
    params = sm.get_parameters()
    if kind == "levels":
        probs = res.params["probs"]  # (k, J, C): the items' categories are the codes 0..2
        params["measurement"]["pis"] = probs.reshape(3, -1)
    else:
        params["measurement"]["means"] = res.params["means"]
        params["measurement"]["covariances"] = res.params["variances"]
        params["measurement"]["precisions_cholesky"] = 1.0 / np.sqrt(res.params["variances"])
    params["structural"]["beta"] = _stepmix_beta(res.extras["covariate_coef"])
    sm.set_parameters(params)
    at_ours = sm.score(X, Y) * 400
    assert abs(at_ours - res.criteria["loglik"]) < 1e-6
    assert abs(fitted - res.criteria["loglik"]) < 1e-6


def test_three_step_ml_and_bch_equal_stepmix_on_the_same_memberships() -> None:
    """StepMix 3.0.0, ``n_steps=3``, ``correction="ML"`` / ``"BCH"`` (modal assignment), from the
    step-1 memberships StepMix itself found: the ML log-likelihood at the optimum agrees to 1e-6
    (measured < 1e-10 over 10 data sets, benchmarks/results/covariates.json), the BCH coefficients
    to 1e-8 (measured < 2e-13) and the ML coefficients to 1e-4 (measured up to 1.1e-5: StepMix's EM
    stops on the change of its average log-likelihood, where the optimum is flat)."""
    sm_mod = _stepmix()
    sim = simulate_covariate_mixture(500, 3, kind="scores", d=4, separation=2.5, random_seed=2)
    d = covariate_design(sim.covariates)
    Y, X = d.X[:, 1:], sim.data.to_numpy()
    out = {}
    for corr in ("ML", "BCH"):
        sm = sm_mod.StepMix(n_components=3, measurement="gaussian_diag", structural="covariate", n_steps=3,
                            correction=corr, n_init=3, max_iter=5000, abs_tol=1e-13, rel_tol=0, random_state=1,
                            progress_bar=0, structural_params={"max_iter": 200, "tol": 1e-12})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sm.fit(X, Y)
        out[corr] = (sm.lower_bound_ * 500, sm.get_parameters()["structural"]["beta"], sm.predict_proba_class(X))
    z = out["ML"][2]
    np.testing.assert_allclose(z, out["BCH"][2])
    # a result holding StepMix's memberships, in StepMix's class order (reference = its class 0)
    r = SegmentationResult(model="gmm", k=3, respondent_ids=pd.RangeIndex(500), feature_names=("f",),
                           memberships=z, centers=np.zeros((3, 1)), shares=z.mean(0), share_lower=z.mean(0),
                           share_upper=z.mean(0), interval_method="none")
    cov = sim.covariates
    ml = covariate_effects(r, cov, "ml")
    bch = covariate_effects(r, cov, "bch")
    assert abs(ml.loglik - out["ML"][0]) < 1e-6
    for ours, beta, tol in ((ml, out["ML"][1], 1e-4), (bch, out["BCH"][1], 1e-8)):
        theirs = (beta[1:] - beta[0]).T  # (m, k-1) against class 0
        np.testing.assert_allclose(ours.coef, theirs, atol=tol)


# ----------------------------------------------------------------------------- coverage
def _coverage_run(seed: int, n: int = 400) -> dict[str, list[tuple[str, float, float, float]]]:
    """One data set: (term, truth, lower, upper) of every non-intercept coefficient, per method."""
    sim = simulate_covariate_mixture(n, 2, kind="scores", d=4, separation=3.0, random_seed=seed)
    res = fit_gmm(sim.data, 2, random_seed=seed, n_init=1)
    # the fitted segment that holds most of true segment 1 is the reference
    ref = 1 if (res.assignment[sim.labels == 1] == 1).mean() >= 0.5 else 2
    truth = sim.coefficients.set_index("term")["value"]
    out = {}
    for method in ("one-step", "bch", "ml"):
        eff = covariate_effects(res, sim.covariates, method, data=sim.data, reference_segment=ref)
        tab = eff.coefficients.set_index("term").drop("(intercept)")
        out[method] = [(t, truth[t], tab.loc[t, "lower"], tab.loc[t, "upper"]) for t in tab.index]
    return out


@pytest.mark.slow
def test_interval_coverage_of_planted_coefficients_over_200_data_sets() -> None:
    """95% intervals cover the planted coefficients 90-97% of the time, one-step, BCH and ML
    (k = 2, n = 400, 4 terms x 200 data sets = 800 intervals per method; measured on seeds
    0-199: one-step 0.959, BCH 0.953, ML 0.948, so the nearest bound is 0.011 away, ~9
    intervals), and the interval of the no-effect covariate contains 0 in at least 93% of the
    data sets (measured 0.96, 0.97, 0.965). About 19 s of CPU."""
    runs = [_coverage_run(seed) for seed in range(200)]
    for method in ("one-step", "bch", "ml"):
        cells = [c for r in runs for c in r[method]]
        cover = np.mean([lo <= t <= hi for _, t, lo, hi in cells])
        assert 0.90 <= cover <= 0.97, (method, cover)
        null = np.mean([lo <= 0 <= hi for name, _, lo, hi in cells if name == "noise"])
        assert null >= 0.93, (method, null)


def test_ml_three_step_on_a_fixed_error_matrix_is_an_em_with_no_free_measurement() -> None:
    """The ML step is the concomitant EM with the measurement fixed at log D[c, W_i]: with a
    perfect classification it is the plain multinomial logit of the modal segments."""
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    seg = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    z = np.c_[seg == 0, seg == 1].astype(float)
    D = error_matrix(z)
    np.testing.assert_allclose(D, np.eye(2))
    logE = z @ np.log(np.clip(D, 1e-15, 1)).T
    cf = fit_concomitant(MeasurementModel(np.zeros(0), lambda t: logE), np.c_[np.ones(n), x], z)
    ml = fit_mnlogit(z, np.c_[np.ones(n), x])
    np.testing.assert_allclose(cf.coef, ml.coef, atol=1e-6)


# ----------------------------------------------------------------------------- the CLI
def _fit_cli(*args: object) -> object:
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, ["fit", *map(str, args)])


@pytest.fixture(scope="module")
def cov_csv(tmp_path_factory: pytest.TempPathFactory) -> object:
    sim = simulate_covariate_mixture(300, 2, kind="scores", d=3, random_seed=8)
    frame = sim.data.join(sim.covariates[["age", "region"]])
    frame.insert(0, "respondent_id", [f"r{i:03d}" for i in range(len(frame))])
    path = tmp_path_factory.mktemp("cov") / "scores.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("method", ["one-step", "bch", "ml"])
def test_fit_cli_json_carries_the_covariates_contract(cov_csv: object, method: str) -> None:
    out = _fit_cli(cov_csv, "--k", 2, "--data-kind", "scores", "--model", "gmm", "--n-init", 2,
                   "--covariates", "age,region", "--covariates-method", method, "--json")
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    cov = d["covariates"]
    assert cov["method"] == method and cov["reference_segment"] == 1
    assert [c["term"] for c in cov["coefficients"]] == ["(intercept)", "age", "region[EU]", "region[APAC]"]
    assert {"segment", "estimate", "se", "lower", "upper", "odds_ratio"} <= set(cov["coefficients"][0])
    assert cov["marginal_effects"] and d["settings"]["covariates_method"] == method
    # the covariates are not model columns: 3 score columns only
    assert list(d["segments"][0]["center"]) == ["x1", "x2", "x3"]
    if method == "one-step":
        assert d["n_params"] == (2 * 3 * 2 + 1) + 3  # VVI with 3 columns + 3 coefficients


def test_fit_cli_bad_covariates_exit_1_with_one_message(cov_csv: object) -> None:
    out = _fit_cli(cov_csv, "--k", 2, "--data-kind", "scores", "--covariates", "age,nope")
    assert out.exit_code == 1 and "covariate column(s) nope are not in the file" in out.output
    out = _fit_cli(cov_csv, "--k", 2, "--data-kind", "scores", "--model", "kmeans", "--covariates", "age,region",
                   "--covariates-method", "one-step")
    assert out.exit_code == 1 and "Use --covariates-method bch or ml" in out.output
    assert "Traceback" not in out.output


def test_run_cli_puts_covariates_in_the_json_and_the_saved_model(tmp_path: object) -> None:
    """``latentseg run --covariates`` on the bundled example: the profile columns become
    covariates, the run's JSON carries the contract and the saved model keeps the table."""
    from pathlib import Path

    from typer.testing import CliRunner

    from latentseg.cli.app import app
    from latentseg.deliver.artifacts import load_model

    ex = Path(__file__).resolve().parents[1] / "examples"
    out = CliRunner().invoke(app, ["run", str(ex / "project_survey.csv"), "-c", str(ex / "latentseg.toml"),
                                   "--models", "gmm", "--k", "3", "--no-report", "--models-dir", str(tmp_path),
                                   "--name", "cov", "--covariates", "role,company_size", "--covariates-method", "ml",
                                   "--json", "--quiet"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    cov = d["covariates"]
    assert cov["method"] == "ml" and cov["n"] == d["n"]
    assert {c["segment"] for c in cov["coefficients"]} == {2, 3}
    assert any(c["term"].startswith("role[") for c in cov["coefficients"])
    # the finder built on the covariate model reaches the run's JSON too, with every segment
    assert d["covariate_finder"]["method"] == "ml"
    assert set(d["covariate_finder"]["top_traits"]) == {"1", "2", "3"}
    saved = load_model(Path(str(tmp_path)) / "cov").result
    assert saved.settings["covariates_method"] == "ml"
    assert len(saved.extras["covariates"]) == len(cov["coefficients"])
    bad = CliRunner().invoke(app, ["run", str(ex / "project_survey.csv"), "-c", str(ex / "latentseg.toml"),
                                   "--models", "gmm", "--k", "3", "--no-report", "--models-dir", str(tmp_path),
                                   "--name", "bad", "--covariates", "shoe_size"])
    assert bad.exit_code == 1 and "Covariate column(s) [shoe_size] are not profile columns" in bad.output


def test_one_step_separation_warns_and_reports_the_penalised_fit() -> None:
    """A level seen only in segment 2 (well-separated mixture): the one-step fit warns, refits with
    the ridge prior and reports a finite coefficient (measured 4.4, SE 1.1), flagged in the
    diagnostics."""
    sim = simulate_covariate_mixture(300, 2, random_seed=5, separation=4)
    cov = sim.covariates.copy()
    cov["tier"] = np.where((sim.labels == 2) & (np.random.default_rng(0).random(300) < 0.3), "vip", "basic")
    with pytest.warns(SeparationWarning, match="tier\\[vip\\]"):
        res = fit_gmm(sim.data, 2, random_seed=1, covariates=cov[["age", "tier"]])
    tab = res.extras["covariates"].set_index("term")
    assert res.diagnostics["covariates_penalised"] and res.diagnostics["covariates_separated"] == ["tier[vip]"]
    assert 2.0 < abs(tab.loc["tier[vip]", "estimate"]) < 10.0 and np.isfinite(tab["se"]).all()


@pytest.mark.parametrize(("family", "option"), [("gmm", s) for s in ("EII", "VII", "EEI", "VVI", "EEE", "VVV")]
                         + [("lca", "categorical"), ("lca", "ordinal")])
def test_measurement_adapters_reproduce_the_fit_and_one_step_only_climbs(family: str, option: str) -> None:
    """Each family's measurement part, at the fitted parameters with the fitted weights, gives the
    fit's own log-likelihood (to 1e-8; measured 0 to 2e-13); the one-step fit started there ends at
    a log-likelihood at least as high (EM is monotone; measured +16 to +22 here) and counts
    (m - 1)(k - 1) = 4 more parameters."""
    from latentseg.models._em import normalize_log
    from latentseg.models.gmm import covariate_measurement as gmm_measurement
    from latentseg.models.lca import covariate_measurement as lca_measurement

    if family == "gmm":
        sim = simulate_covariate_mixture(300, 2, kind="scores", d=3, random_seed=3)
        base = fit_gmm(sim.data, 2, covariance=option, random_seed=1)
        mm = gmm_measurement(base, sim.data)
    else:
        sim = simulate_covariate_mixture(300, 2, kind="levels", d=6, random_seed=3)
        base = fit_lca(sim.data, 2, measurement=option, random_seed=1)
        mm = lca_measurement(base, sim.data)
    ll = normalize_log(mm.log_density(mm.theta) + np.log(base.params["weights"]))[1].sum()
    assert abs(ll - base.criteria["loglik"]) < 1e-8
    res = one_step(base, sim.data, sim.covariates)
    assert res.criteria["loglik"] >= base.criteria["loglik"] - 1e-8
    assert res.criteria["n_params"] == base.criteria["n_params"] + 4


@pytest.mark.slow
def test_weighted_covariate_effects_recover_the_population_logit() -> None:
    """simulate_weighted_survey (segment 2 and the south oversampled): the population logit of
    segment 2 on region is known exactly from the population shares and P(south | segment)
    (0.2, 0.8). Over 60 data sets (one unweighted step-1 fit each): weighted one-step 95% intervals
    cover both coefficients (measured 0.95 / 0.97; threshold 0.88), weighted ML (memberships moved
    to the weighted shares, :func:`reweight_memberships`) is unbiased (intercept bias measured
    +0.02, slope -0.003) and covers the slope (0.97); unweighted, the intercept is biased by
    +1.1 logits and its interval never covers (0.0; threshold 0.2). About 7 s of CPU."""
    from latentseg.research.simulate import simulate_weighted_survey

    cover: dict[str, list[list[bool]]] = {"w": [], "u": [], "ml": []}
    bias: dict[str, list[list[float]]] = {"w": [], "u": [], "ml": []}
    for seed in range(60):
        s = simulate_weighted_survey(400, k=2, d=4, random_seed=seed)
        ps = np.array([0.2, 0.8])
        pi = s.population_shares
        # the sample's most frequent region is the south (oversampled): it is the reference level
        truth = {"(intercept)": np.log(pi[1] / pi[0]) + np.log(ps[1] / ps[0]),
                 "region[north]": -(np.log(ps[1] / (1 - ps[1])) - np.log(ps[0] / (1 - ps[0])))}
        res = fit_gmm(s.data, 2, random_seed=seed, n_init=2)
        ref = 1 if (res.assignment[s.labels == 1] == 1).mean() >= 0.5 else 2
        for key, w, method in (("w", s.weights, "one-step"), ("u", None, "one-step"), ("ml", s.weights, "ml")):
            tab = covariate_effects(res, s.profile, method, data=s.data, sample_weight=w,
                                    reference_segment=ref).coefficients.set_index("term")
            cover[key].append([bool(tab.loc[t, "lower"] <= v <= tab.loc[t, "upper"]) for t, v in truth.items()])
            bias[key].append([float(tab.loc[t, "estimate"] - v) for t, v in truth.items()])
    cw, cu, cm = (np.mean(cover[k_], axis=0) for k_ in ("w", "u", "ml"))
    bu, bm = np.mean(bias["u"], axis=0), np.mean(bias["ml"], axis=0)
    assert cw.min() >= 0.88, cw
    assert cu[0] <= 0.2 and bu[0] > 0.8, (cu, bu)
    assert abs(bm[0]) < 0.15 and abs(bm[1]) < 0.15 and cm[1] >= 0.88, (cm, bm)


def test_fit_cli_weighted_table_uses_the_weights_for_the_covariates(tmp_path: object) -> None:
    """A score table with a ``weight`` column: the weights are not a model column or a covariate,
    the fit is weighted and so is the covariate model."""
    from pathlib import Path

    sim = simulate_covariate_mixture(200, 2, kind="scores", d=3, random_seed=9)
    frame = sim.data.join(sim.covariates[["age", "region"]])
    frame["weight"] = np.where(np.arange(200) % 2 == 0, 0.5, 1.5)
    path = Path(str(tmp_path)) / "w.csv"
    frame.to_csv(path, index=False)
    out = _fit_cli(path, "--k", 2, "--data-kind", "scores", "--model", "gmm", "--n-init", 2,
                   "--covariates", "age,region", "--covariates-method", "ml", "--json")
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert list(d["segments"][0]["center"]) == ["x1", "x2", "x3"]
    assert d["covariates"]["weighted"] is True and d["covariates"]["se_method"] == "sandwich"


def test_relabelling_re_expresses_the_coefficients_against_the_new_segment_1() -> None:
    """Coefficients are log-odds against segment 1: swapping segments 1 and 2 negates segment 2's
    (k = 2), and at k = 3 segment 3's become ``b3 - b2``; keeping segment 1 first only renumbers.
    Both are exact algebra (the reviewer's failing case: the table used to be renumbered only)."""
    from latentseg.decide.covariates import apply_covariates
    from latentseg.models.gmm import fit_gmm
    from latentseg.research.simulate import simulate_covariate_mixture

    sim = simulate_covariate_mixture(300, 2, random_seed=4)
    for method in ("bch", "one-step"):
        res = apply_covariates(fit_gmm(sim.data, 2, random_seed=1), sim.data, sim.covariates, ["age"], method)[0]
        swapped = res.relabel([2, 1])
        a = res.extras["covariates"].set_index(["segment", "term"])
        b = swapped.extras["covariates"].set_index(["segment", "term"])
        assert list(b.columns) == list(a.columns)
        np.testing.assert_allclose(b["estimate"], -a["estimate"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(b["se"], a["se"], rtol=1e-12)
        back = swapped.relabel([2, 1])
        np.testing.assert_allclose(back.extras["covariate_vcov"], res.extras["covariate_vcov"], rtol=0, atol=1e-12)
    sim3 = simulate_covariate_mixture(400, 3, random_seed=5)
    res = apply_covariates(fit_gmm(sim3.data, 3, random_seed=1), sim3.data, sim3.covariates, ["age"], "ml")[0]
    a = res.extras["covariates"].set_index(["segment", "term"])["estimate"]
    keep = res.relabel([1, 3, 2]).extras["covariates"].set_index(["segment", "term"])["estimate"]
    assert keep[(2, "age")] == pytest.approx(a[(3, "age")], abs=1e-12)
    swap = res.relabel([2, 1, 3]).extras["covariates"].set_index(["segment", "term"])["estimate"]
    assert swap[(3, "age")] == pytest.approx(a[(3, "age")] - a[(2, "age")], abs=1e-12)


def test_bayesian_one_step_on_a_weighted_survey_is_refused_before_any_fitting(tmp_path: object) -> None:
    """The Bayesian one-step cannot adjust its coefficients' intervals for the design: ``fit`` and
    ``run`` refuse it right after reading the survey (no sampling first), with the way out."""
    from pathlib import Path

    from typer.testing import CliRunner

    from latentseg.cli.app import app

    ex = Path(__file__).resolve().parents[1] / "examples"
    common = ["--covariates", "region", "--covariates-method", "one-step"]
    fit = CliRunner().invoke(app, ["fit", str(ex / "weighted_survey.csv"), "--config", str(ex / "latentseg.toml"),
                                   "--model", "bayes-gmm", "--k", "3", *common])
    run = CliRunner().invoke(app, ["run", str(ex / "weighted_survey.csv"), "-c", str(ex / "latentseg.toml"),
                                   "--models", "bayes-gmm", "--k", "3", "--no-report", "--models-dir", str(tmp_path),
                                   "--name", "w", *common])
    for out in (fit, run):
        assert out.exit_code == 1, out.output
        assert "cannot be combined with survey weights in the 'bayes-gmm' model" in out.output
        assert "--covariates-method bch" in out.output and "Traceback" not in out.output
        assert "R-hat" not in out.output  # nothing was sampled
