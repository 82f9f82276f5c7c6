"""``latentseg fit`` through Typer's CliRunner: JSON contract, tables, data kinds, messages."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

from latentseg.models.gmm import fit_gmm
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture, simulate_survey


def _cli():
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner(), app


def _run(args):
    runner, app = _cli()
    return runner.invoke(app, ["fit", *map(str, args)])


@pytest.fixture(scope="module")
def scores_csv(tmp_path_factory):
    X, truth = simulate_gaussian_mixture(240, k=3, d=4, separation=5.0, random_seed=31)
    X.insert(0, "respondent_id", [f"r{i:03d}" for i in range(len(X))])
    path = tmp_path_factory.mktemp("fit") / "scores.csv"
    X.to_csv(path, index=False)
    return path, X.set_index("respondent_id"), truth


@pytest.fixture(scope="module")
def indicators_csv(tmp_path_factory):
    Y, truth, _ = simulate_categorical(300, k=2, n_items=6, n_categories=3, separation=0.9, random_seed=32)
    path = tmp_path_factory.mktemp("fit") / "items.csv"
    Y.to_csv(path, index=False)
    return path, Y


@pytest.fixture(scope="module")
def survey_csv(tmp_path_factory):
    survey, truth = simulate_survey(160, n_outcomes=8, n_segments=3, job_steps=2, separation=1.5, random_seed=33)
    folder = tmp_path_factory.mktemp("survey")
    path = folder / "survey.csv"
    survey.to_frame().to_csv(path)
    cfg = folder / "latentseg.toml"
    cfg.write_text('[survey]\nimp_scale = "1-5"\nsat_scale = "1-10"\n\n[cleaning]\nmin_respondents = 50\n')
    return path, cfg, truth


# ------------------------------------------------------------------ JSON contract
def test_json_contract_scores_gmm(scores_csv):
    path, X, _ = scores_csv
    res = _run([path, "--data-kind", "scores", "--model", "gmm", "--k", 3, "--seed", 7, "--covariance", "EEI", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("model", "k", "n", "loglik", "n_params", "bic", "aic", "converged", "segments", "criteria", "diagnostics"):
        assert key in out
    assert (out["model"], out["k"], out["n"]) == ("gmm", 3, 240)
    seg = out["segments"][0]
    assert set(seg) >= {"id", "label", "share", "share_lower", "share_upper", "interval"}
    assert [s["id"] for s in out["segments"]] == [1, 2, 3]
    assert sum(s["share"] for s in out["segments"]) == pytest.approx(1.0)
    # the same fit as the library's, bit for bit
    lib = fit_gmm(X, 3, covariance="EEI", random_seed=7, n_init=10)
    assert out["loglik"] == lib.criteria["loglik"] and out["n_params"] == lib.criteria["n_params"]
    assert out["settings"]["covariance"] == "EEI"
    assert out["diagnostics"]["n_starts"] == 10


def test_table_output_kmeans_with_columns(scores_csv):
    path, _, _ = scores_csv
    res = _run([path, "--data-kind", "scores", "--model", "kmeans", "--k", 2, "--columns", "x1,x3", "--n-init", 3])
    assert res.exit_code == 0, res.output
    assert "kmeans, k = 2, n = 240 (2 score columns)" in res.stdout
    assert "95% Wilson" in res.stdout and "silhouette" in res.stdout


def test_indicators_lca(indicators_csv):
    path, Y = indicators_csv
    res = _run([path, "--data-kind", "indicators", "--model", "lca", "--k", 2, "--seed", 1, "--n-init", 5, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == "lca" and out["n"] == len(Y)
    assert out["n_params"] == 1 + 2 * 6 * 2  # poLCA: (k - 1) + k * sum_j (C_j - 1)


def test_survey_numeric_and_latent_class(survey_csv):
    path, cfg, _ = survey_csv
    res = _run([path, "--config", cfg, "--model", "gmm", "--k", 3, "--seed", 2, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == "gmm" and out["k"] == 3
    assert len(out["segments"][0]["center"]) == 8  # one opportunity score per outcome
    assert "Cleaning: 160 respondents in" in res.stderr
    res = _run([path, "--config", cfg, "--model", "lca", "--k", 2, "--seed", 2, "--n-init", 4, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == "lca"


def test_survey_reduction_from_config(survey_csv, tmp_path):
    path, cfg, _ = survey_csv
    reduced = tmp_path / "latentseg.toml"
    reduced.write_text(cfg.read_text() + '\n[reduce]\nmethod = "pca"\nn_factors = 3\n')
    res = _run([path, "--config", reduced, "--model", "gmm", "--k", 2, "--seed", 2, "--n-init", 3, "--json"])
    assert res.exit_code == 0, res.output
    assert "reduced 8 outcomes to 3 pca factor(s)" in res.stderr
    assert len(json.loads(res.stdout)["segments"][0]["center"]) == 3


def test_kmeans_on_scores_with_missing_values_imputes_with_a_note(scores_csv, tmp_path):
    _, X, truth = scores_csv
    holed = X.copy()
    holed.iloc[::10, 0] = np.nan
    path = tmp_path / "holes.csv"
    holed.reset_index().to_csv(path, index=False)
    res = _run([path, "--data-kind", "scores", "--model", "kmeans", "--k", 3, "--seed", 1, "--json"])
    assert res.exit_code == 0, res.output
    assert "24 missing value(s) were replaced by their column mean" in " ".join(res.stderr.split())
    assert json.loads(res.stdout)["n"] == 240


def test_config_supplies_defaults_and_options_override(scores_csv, tmp_path):
    path, X, _ = scores_csv
    cfg = tmp_path / "latentseg.toml"
    cfg.write_text('[model]\nmodel = "gmm"\ncovariance = "VII"\nn_init = 3\nrandom_seed = 5\n')
    out = json.loads(_run([path, "--data-kind", "scores", "--k", 2, "--config", cfg, "--json"]).stdout)
    assert out["settings"]["covariance"] == "VII" and out["settings"]["n_init"] == 3
    assert out["provenance"]["random_seed"] == 5
    out = json.loads(_run([path, "--data-kind", "scores", "--k", 2, "--config", cfg, "--covariance", "VVV", "--json"]).stdout)
    assert out["settings"]["covariance"] == "VVV"


def test_save_writes_a_model(scores_csv, tmp_path, monkeypatch):
    artifacts = pytest.importorskip("latentseg.deliver.artifacts")
    path, _, _ = scores_csv
    monkeypatch.chdir(tmp_path)
    res = _run([path, "--data-kind", "scores", "--k", 2, "--n-init", 2, "--seed", 1, "--save", "first"])
    assert res.exit_code == 0, res.output
    saved = artifacts.load_model(tmp_path / "models" / "first")
    assert saved.result.k == 2
    res = _run([path, "--data-kind", "scores", "--k", 2, "--save", "../up"])
    assert res.exit_code == 1 and "--save takes a plain model name" in res.output


def test_bayes_options_reach_only_bayes_models(scores_csv, monkeypatch):
    """The sampler is not run here: a stand-in Bayesian engine records what it was given. The
    config's [model] covariance reaches bayes-gmm in its own spelling (VVI -> "diag"), as in
    `select` and `run`; an explicit --covariance overrides it."""
    path, _, _ = scores_csv
    seen = {}

    def fit_bayes_gmm(data, k, *, random_seed=None, draws=1000, tune=1000, chains=2, sampler="nutpie", n_init=10,
                      covariance="diag"):
        seen.update(draws=draws, tune=tune, chains=chains, sampler=sampler, n_init=n_init, covariance=covariance)
        return fit_gmm(data, k, random_seed=random_seed, n_init=1)

    fake = types.ModuleType("latentseg.models.bayes.engine")
    fake.fit_bayes_gmm = fit_bayes_gmm
    monkeypatch.setitem(sys.modules, "latentseg.models.bayes.engine", fake)
    res = _run([path, "--data-kind", "scores", "--model", "bayes-gmm", "--k", 2, "--draws", 50, "--chains", 1])
    assert res.exit_code == 0, res.output
    assert seen == {"draws": 50, "tune": 1000, "chains": 1, "sampler": "nutpie", "n_init": 10, "covariance": "diag"}
    res = _run([path, "--data-kind", "scores", "--model", "bayes-gmm", "--k", 2, "--covariance", "EEI"])
    assert res.exit_code == 0, res.output
    assert seen["covariance"] == "EEI"


def test_fit_honours_the_configs_covariance_for_bayes_gmm(scores_csv, monkeypatch, tmp_path):
    """[model] covariance = "EEI" in the config reaches bayes-gmm through `fit` (it used to be ignored);
    a structure bayes-gmm does not have keeps its default, with a note."""
    path, _, _ = scores_csv
    seen = {}

    def fit_bayes_gmm(data, k, *, random_seed=None, covariance="diag", **options):
        seen["covariance"] = covariance
        return fit_gmm(data, k, random_seed=random_seed, n_init=1)

    fake = types.ModuleType("latentseg.models.bayes.engine")
    fake.fit_bayes_gmm = fit_bayes_gmm
    monkeypatch.setitem(sys.modules, "latentseg.models.bayes.engine", fake)
    for given, want in (("EEI", "EEI"), ("VVV", "full"), ("auto", "auto"), ("EEE", "diag")):
        cfg = tmp_path / f"{given}.toml"
        cfg.write_text(f'[model]\ncovariance = "{given}"\n')
        seen.clear()
        res = _run([path, "--data-kind", "scores", "--model", "bayes-gmm", "--k", 2, "--config", cfg])
        assert res.exit_code == 0, res.output
        assert seen["covariance"] == want, given
    assert "bayes-gmm has no 'EEE' covariance structure" in " ".join(res.stderr.split())


# ------------------------------------------------------------------ bad settings: exit 1, one message
@pytest.fixture(scope="module")
def odd_tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    const = folder / "const.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 5.0, 5.0, 5.0]}).to_csv(const, index=False)
    text = folder / "text.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "who": ["x", "y", "z"]}).to_csv(text, index=False)
    dup = folder / "dup.csv"
    pd.DataFrame({"a": [1.0, 1.0, 2.0, 2.0, 1.0]}).to_csv(dup, index=False)
    onecat = folder / "onecat.csv"
    pd.DataFrame({"q1": list("abab"), "q2": list("xxxx")}).to_csv(onecat, index=False)
    return {"const": const, "text": text, "dup": dup, "onecat": onecat}


@pytest.mark.parametrize(
    ("table", "args", "message"),
    [
        ("scores", ["--k", "0"], "--k must be at least 1; got 0."),
        ("dup", ["--k", "3"], "k = 3 segments but only 2 distinct respondents"),
        ("const", ["--k", "2"], "Column(s) [b] have zero variance"),
        ("text", ["--k", "2"], "score column(s) [who] are not numeric"),
        ("scores", ["--k", "2", "--columns", "x1,nope"], "--columns names unknown column(s) [nope]"),
        ("onecat", ["--k", "2", "--model", "lca", "--data-kind", "indicators"], "'q2'"),
        ("onecat", ["--k", "2", "--model", "gmm", "--data-kind", "indicators"], "--model gmm needs numeric scores"),
        ("scores", ["--k", "2", "--draws", "10"], "--draws applies to the Bayesian models"),
        ("scores", ["--k", "2", "--covariance", "XYZ"], "Unknown covariance structure 'XYZ'"),
        ("scores", ["--k", "2", "--seed", "-3"], "options: 'model.random_seed'"),
        ("missing", ["--k", "2"], "does not exist"),
    ],
)
def test_bad_settings_exit_1_with_one_message(scores_csv, odd_tables, tmp_path, table, args, message):
    path = {"scores": scores_csv[0], "missing": tmp_path / "nothing.csv", **odd_tables}[table]
    if "--data-kind" not in args:
        args = [*args, "--data-kind", "scores"]
    res = _run([path, *args])
    assert res.exit_code == 1, res.output
    flat = " ".join(res.output.split())
    assert message in flat
    assert "Traceback" not in res.output
    assert res.stderr.count("error:") == 1


def test_survey_one_category_outcome_is_left_out_with_a_note(tmp_path):
    """An outcome on which every respondent has the same opportunity level cannot change a latent
    class fit (it contributes probability 1 in every segment): the survey path (the prepare step
    every command shares) leaves it out and says which; a user's own table is not edited (see the
    'onecat' case above)."""
    rng = np.random.default_rng(3)
    n = 150
    frame = pd.DataFrame({"respondent_id": [f"r{i}" for i in range(n)]})
    for o in ("o1", "o3", "o4"):
        frame[f"imp_{o}"] = rng.integers(1, 6, n)
        frame[f"sat_{o}"] = rng.integers(1, 6, n)
    frame["imp_o2"], frame["sat_o2"] = 1, 5  # importance 0, satisfied: opportunity 0 for everyone
    survey = tmp_path / "survey.csv"
    frame.to_csv(survey, index=False)
    cfg = tmp_path / "latentseg.toml"
    cfg.write_text('[survey]\nimp_scale = "1-5"\nsat_scale = "1-5"\n[cleaning]\nmin_respondents = 10\n')
    res = _run([survey, "--model", "lca", "--k", "2", "--n-init", "2", "--config", cfg])
    assert res.exit_code == 0, res.output
    err = " ".join(res.stderr.split())
    assert "left out outcome(s) [o2]: every respondent has the same opportunity score there" in err
    from latentseg.prepare.core import prepare

    p = prepare(survey, cfg, families=["lca"])
    assert "o2" not in p.levels.columns and list(p.levels.columns) == list(p.scores.columns)
