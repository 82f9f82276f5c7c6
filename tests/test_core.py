"""One core for every command: the entry points that fit (fit, select, run) and decide (run,
profile) agree under one config, because they share the family registry, prepare() and decide()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentseg.models.families import FAMILIES, NAMES, family

ROOT = Path(__file__).resolve().parents[1]
SURVEY = ROOT / "examples" / "project_survey.csv"

CONFIG = f"""
[survey]
outcomes_file = "{(ROOT / 'examples' / 'project_outcomes.csv').as_posix()}"
imp_scale = "1-5"
sat_scale = "1-10"

[reduce]
method = "pca"
variance = 0.6

[model]
model = "gmm"
n_init = 3
random_seed = 11

[select]
models = ["gmm", "kmeans"]
k_min = 2
k_max = 4
stability_subsamples = 0

[profile]
overlay = ["role", "company_size", "industry", "current_tool", "region"]
distal = ["plan_price"]
"""


def _cli(*args):
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("core")
    (d / "latentseg.toml").write_text(CONFIG)
    return d


@pytest.fixture(scope="module")
def ran(workdir):
    from latentseg.pipeline import run_pipeline

    res = run_pipeline(SURVEY, workdir / "latentseg.toml", name="core", models_dir=workdir / "models", report=False)
    return res


def test_registry_is_the_one_list_of_families():
    from latentseg.config import KEYS
    from latentseg.choose.selection import CATEGORICAL_MODELS, FAMILY_RULES

    assert NAMES == tuple(FAMILIES)
    choices = {k.dotted: k.choices for k in KEYS}
    assert choices["model.model"] == NAMES and choices["select.models"] == NAMES
    assert set(FAMILY_RULES) == set(NAMES)
    assert CATEGORICAL_MODELS == {n for n in NAMES if family(n).data == "levels"}
    # every engine the registry names exists and takes (data, k, random_seed=, **its options)
    import inspect

    for fam in FAMILIES.values():
        params = inspect.signature(fam.fit_function()).parameters
        assert "random_seed" in params
        assert set(fam.option_names) <= set(params), fam.name
    # seed streams are distinct (a sweep's fits must not share seeds)
    assert len({f.seed_code for f in FAMILIES.values()}) == len(FAMILIES)


def test_select_and_run_fit_the_same_reduced_data_and_recommend_the_same_k(workdir, ran):
    """[reduce] method = "pca" reaches select as it reaches run: equal log-likelihoods for every
    family and k (same data, same per-fit seeds), the same recommended k."""
    res = _cli("select", SURVEY, "--config", workdir / "latentseg.toml", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    table = ran.selection.table.set_index(["model", "k"])
    fits = {(f["model"], f["k"]): f for f in out["fits"]}
    assert set(fits) == set(table.index)
    for key, f in fits.items():
        if key[0] == "gmm":
            assert f["loglik"] == pytest.approx(table.loc[key, "loglik"], rel=1e-12, abs=1e-9), key
        assert f["n"] == ran.result.n
    assert out["recommended_k"] == ran.selection.recommended_k
    assert 1 < len(ran.result.feature_names) < ran.saved.meta["data"]["outcomes"].__len__()  # factors, not outcomes


def test_profile_gives_the_segment_map_run_saved(workdir, ran):
    res = _cli("profile", ran.model_dir, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    saved = ran.saved.meta["segment_map"]
    assert d["segment_map"] == json.loads(json.dumps(saved))
    assert d["sizing"]["segments"] == json.loads(json.dumps(ran.saved.meta["sizing"]))["segments"]


def test_run_keeps_the_family_asked_for(workdir):
    from latentseg.pipeline import kept_family, run_pipeline

    cfg = {"model": {"model": "gmm"}}
    assert kept_family(cfg, None, ["bayes-gmm"]) == "bayes-gmm"  # --models bayes-gmm alone implies it
    assert kept_family(cfg, None, ["kmeans", "lca"]) == "gmm"
    assert kept_family(cfg, "kmeans", ["gmm"]) == "kmeans"
    res = run_pipeline(SURVEY, workdir / "latentseg.toml", model="kmeans", name="kept", models_dir=workdir / "models",
                       report=False)
    assert res.model == "kmeans" and res.result.model == "kmeans"
    assert res.result.interval_method == "95% Wilson"
    res = _cli("run", SURVEY, "--config", workdir / "latentseg.toml", "--models", "lca", "--k", "3",
               "--name", "lca-only", "--models-dir", workdir / "models", "--no-report", "--json", "-q")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == "lca"


def test_a_resumed_run_refits_the_fit_the_sweep_scored(workdir, ran):
    """A checkpoint holding only the summary (its .nc gone) is refitted with the sweep's own seed
    for that family and k, so the kept model is the fit the sweep scored."""
    from latentseg.pipeline import run_pipeline

    models = workdir / "resume"
    shutil.copytree(ran.model_dir, models / "core")
    for nc in (models / "core" / "checkpoints").glob("*.nc"):
        nc.unlink()
    again = run_pipeline(SURVEY, workdir / "latentseg.toml", name="core", models_dir=models, report=False,
                         force=True)  # the copied model.json is replaced only with force
    assert again.k == ran.k and again.model == ran.model
    np.testing.assert_array_equal(again.result.memberships, ran.result.memberships)
    assert again.result.criteria["loglik"] == ran.result.criteria["loglik"]


def test_fit_save_then_assign_prepares_the_survey_the_same_way(workdir, tmp_path, monkeypatch):
    """`fit --model lca --save` then `assign` on the very survey it was fitted on: assign takes the
    opportunity levels, as prepare() did (it used to fail on 'categories not seen at fit time')."""
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "latentseg.toml"
    cfg.write_text(CONFIG.replace('method = "pca"', 'method = "none"'))
    res = _cli("fit", SURVEY, "--model", "lca", "--k", "3", "--save", "m", "--config", cfg, "--n-init", "2")
    assert res.exit_code == 0, res.output
    from latentseg.deliver.artifacts import load_model

    result = load_model("models/m").result
    # the respondents the model was fitted on (cleaning left some out; a level no fitted respondent
    # had is refused by assign with a message naming the row, by design)
    raw = pd.read_csv(SURVEY)
    raw[raw["respondent_id"].astype(str).isin(set(map(str, result.respondent_ids)))].to_csv("kept.csv", index=False)
    res = _cli("assign", "models/m", "kept.csv", "-o", "a.csv", "-q")
    assert res.exit_code == 0, res.output
    out = pd.read_csv("a.csv", dtype={"respondent_id": str}).set_index("respondent_id")
    probs = out.loc[[str(i) for i in result.respondent_ids], [f"p_{j + 1}" for j in range(3)]].to_numpy()
    np.testing.assert_allclose(probs, result.memberships, atol=1e-9)


def test_report_of_a_fit_saved_model_runs_the_decide_step(tmp_path, monkeypatch):
    """`fit --save` keeps no decisions; `report` makes them with the same decide step as `run`, so
    the segment map has names, market sizes and recommendations instead of 'not analysed'."""
    monkeypatch.chdir(tmp_path)
    res = _cli("-q", "fit", SURVEY, "--config", ROOT / "examples" / "latentseg.toml", "--k", "3", "--save", "m",
               "--n-init", "2")
    assert res.exit_code == 0, res.output
    res = _cli("report", "models/m", "-o", "out/report.html")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "not analysed" not in html and "Segment 1<" not in html
    from latentseg.decide.core import decide_saved
    from latentseg.deliver.artifacts import load_model

    saved = load_model("models/m")
    decided = decide_saved(saved)
    assert decided.meta["sizing"]["tam"] == 50000 and len(decided.meta["segment_map"]["segments"]) == 3
    assert "segment_map" not in saved.meta  # the files on disk are not changed


def test_segment_names_that_depend_on_k_are_checked_before_the_sweep(workdir, monkeypatch):
    """profile.names with a non-numeric key, or naming a segment beyond the k range, is refused
    before any fit; names for segments the chosen k does not have are left out with a note (the
    run does not fail after the whole sweep)."""
    import latentseg.choose.selection as selection
    from latentseg.errors import ConfigError
    from latentseg.pipeline import run_pipeline

    def no_sweep(*args, **kwargs):  # the checks must come first
        raise AssertionError("the sweep ran before the config was checked")

    cfg = workdir / "latentseg.toml"
    with monkeypatch.context() as m:
        m.setattr(selection, "select", no_sweep)
        with pytest.raises(ConfigError, match="keyed by segment number .* got key 'lead'"):
            run_pipeline(SURVEY, cfg, overrides={"profile": {"names": {"lead": "Leaders"}}}, report=False,
                         models_dir=workdir / "m1")
        with pytest.raises(ConfigError, match="names segment 6, but the k range ends at 'select.k_max' = 4"):
            run_pipeline(SURVEY, cfg, overrides={"profile": {"names": {"6": "Sixth"}}}, report=False,
                         models_dir=workdir / "m2")
    # names for segments the chosen k does not have: left out with a note, not a failure after the sweep
    from latentseg.decide.core import decide
    from latentseg.models import fit
    from latentseg.prepare.core import prepare, resolve_config

    conf, _ = resolve_config(cfg, {"profile": {"names": {"1": "Firsts", "3": "Thirds"}}})
    p = prepare(SURVEY, conf)
    d = decide(fit(p.numeric, "gmm", 2, random_seed=1, n_init=2), p.scores, p.outcomes, p.profile, conf)
    assert d.result.segment_labels[0] == "Firsts"
    assert any("names segment(s) [3], but the segmentation has k = 2" in n for n in d.notes)


def test_latent_class_on_a_score_table_is_assigned_on_the_same_levels(tmp_path, monkeypatch):
    """`fit --data-kind scores --model lca` fits the opportunity levels of the scores (as `select`
    does); `assign --from features` takes the same levels of new scores."""
    from latentseg.research.simulate import simulate_gaussian_mixture

    monkeypatch.chdir(tmp_path)
    X, _ = simulate_gaussian_mixture(300, k=2, d=4, separation=4.0, random_seed=3)
    X = (X - X.min()) / (X.max() - X.min()) * 20  # on the 0-20 opportunity scale
    X.insert(0, "respondent_id", [f"r{i:03d}" for i in range(len(X))])
    X.to_csv("scores.csv", index=False)
    res = _cli("fit", "scores.csv", "--data-kind", "scores", "--model", "lca", "--k", "2", "--save", "m",
               "--n-init", "2")
    assert res.exit_code == 0, res.output
    assert "opportunity levels of these scores" in " ".join(res.stderr.split())
    res = _cli("assign", "models/m", "scores.csv", "-o", "a.csv", "-q")
    assert res.exit_code == 0, res.output
    from latentseg.deliver.artifacts import load_model

    result = load_model("models/m").result
    out = pd.read_csv("a.csv", dtype={"respondent_id": str}).set_index("respondent_id")
    np.testing.assert_allclose(out.loc[list(map(str, result.respondent_ids)), ["p_1", "p_2"]].to_numpy(),
                               result.memberships, atol=1e-9)


def test_run_leaves_out_a_constant_outcome_and_lists_it_in_the_cleaning_report(tmp_path):
    """`run` drops an outcome on which every respondent has the same opportunity score, as `fit`
    and `select` do (it used to fail with "zero variance"), and the cleaning report lists it."""
    from latentseg.pipeline import run_pipeline

    frame = pd.read_csv(SURVEY)
    frame["imp_o03"], frame["sat_o03"] = 1, 10  # unimportant and satisfied: opportunity 0 for everyone
    survey = tmp_path / "survey.csv"
    frame.to_csv(survey, index=False)
    res = run_pipeline(survey, ROOT / "examples" / "latentseg.toml", models=["gmm"], k=[3],
                       models_dir=tmp_path / "models", report=False)
    assert "o03" not in res.result.feature_names and len(res.result.feature_names) == 23
    assert res.cleaning.dropped_outcomes == {"o03": "every respondent has the same opportunity score"}
    assert res.saved.meta["cleaning"]["dropped_outcomes"] == {"o03": "every respondent has the same opportunity score"}
    assert "outcome left out: o03" in res.cleaning.summary()


def test_size_needs_only_profiles_and_a_kmeans_model_scores_its_own_survey(tmp_path, monkeypatch):
    """`size` profiles and sizes only (a [profile] overlay column the data lack does not stop it);
    a k-means model fills missing ratings with the fit's column means in `assign`, as prepare()
    did at fit time, so it scores its own survey; a saved model finds its outcome statements from
    any folder (the config keeps them as an absolute path)."""
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "latentseg.toml"
    cfg.write_text((ROOT / "examples" / "latentseg.toml").read_text().replace(
        'outcomes_file = "project_outcomes.csv"', f'outcomes_file = "{(ROOT / "examples" / "project_outcomes.csv").as_posix()}"'
    ).replace('overlay = ["role"', 'overlay = ["no_such_column", "role"'))
    res = _cli("-q", "fit", SURVEY, "--config", cfg, "--k", "3", "--model", "kmeans", "--save", "km", "--n-init", "2")
    assert res.exit_code == 0, res.output
    res = _cli("size", "models/km", "--tam", "1000", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tam"] == 1000
    res = _cli("-q", "assign", "models/km", SURVEY, "-o", "a.csv")
    assert res.exit_code == 0, res.output
    from latentseg.deliver.artifacts import load_model

    result = load_model("models/km").result
    out = pd.read_csv("a.csv", dtype={"respondent_id": str}).set_index("respondent_id")
    kept = out.loc[list(map(str, result.respondent_ids))]
    assert (kept["segment"].to_numpy() == result.assignment).all()  # the fit's own hard assignment
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    rel = Path("..") / "models" / "km"
    assert _cli("size", rel, "--tam", "1000").exit_code == 0


def test_load_config_keeps_the_outcomes_file_as_an_absolute_path(tmp_path):
    from latentseg.config import load_config

    (tmp_path / "latentseg.toml").write_text('[survey]\noutcomes_file = "statements.csv"\n')
    got = Path(load_config(tmp_path / "latentseg.toml")["survey"]["outcomes_file"])
    assert got.is_absolute() and got == (tmp_path / "statements.csv").resolve()
