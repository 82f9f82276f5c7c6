"""run_pipeline end to end on a simulated survey: recovery, saved model, assign round trip, resume, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from latentseg.deliver.artifacts import load_model
from latentseg.deliver.assign import assign, assign_file
from latentseg.errors import ConfigError, FitError
from latentseg.models import predict_proba
from latentseg.pipeline import default_name, run_pipeline

pytestmark = pytest.mark.xdist_group("pipeline")

#: Small, fast settings: two families, k = 2..4, no stability subsamples.
FAST = {
    "survey": {"imp_scale": "1-5", "sat_scale": "1-10"},
    "select": {"models": ["kmeans", "gmm"], "k_min": 2, "k_max": 4, "stability_subsamples": 0,
               "checkpoint_min_seconds": 0},  # every fit checkpointed: the resume test counts them
    "model": {"n_init": 3, "covariance": "EEI", "random_seed": 11},
    "size": {"tam": 20000},
    "cleaning": {"min_respondents": 50},
}


def write_survey(path, n=260, seed=4, **kw):
    from latentseg.research.simulate import simulate_survey

    survey, truth = simulate_survey(n=n, n_outcomes=10, n_segments=3, job_steps=3, separation=1.6,
                                    straightliners=4, speeders=3, random_seed=seed, **kw)
    survey.to_frame().to_csv(path, index=False)
    return truth


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    truth = write_survey(root / "survey.csv")
    res = run_pipeline(root / "survey.csv", FAST, models_dir=root / "models", output=root / "out", report=False)
    return res, truth, root


def test_pipeline_recovers_planted_segments_and_saves_everything(run):
    res, truth, root = run
    assert res.k == 3 and res.model == "gmm"
    result = res.result
    true_seg = truth.segment.loc[result.respondent_ids].to_numpy()
    assert adjusted_rand_score(true_seg, result.assignment) > 0.85
    np.testing.assert_allclose(np.sort(result.shares), np.sort(truth.shares.to_numpy()), atol=0.07)
    assert res.cleaning.n_excluded == 7  # the planted straight-liners and speeders, nothing else
    assert all(not lab.startswith("Segment ") for lab in result.segment_labels)  # named in outcome terms
    saved = load_model(res.model_dir)
    assert saved.model_id == res.saved.model_id and saved.name == "survey"
    for key in ("data", "cleaning", "selection", "profile", "overlay", "finder", "sizing", "segment_map", "comparison"):
        assert saved.meta.get(key), key
    assert saved.meta["data"]["imp_columns"][:2] == ["imp_o01", "imp_o02"]
    assert saved.meta["data"]["id_column"] == "respondent_id"
    assert {"selection", "segment_map", "profile_means", "landscape", "sizing", "dimensions"} <= set(saved.tables)
    assert saved.config["select"]["k_max"] == 4
    assert (res.model_dir / "checkpoints").is_dir()
    d = res.to_dict()
    assert d["k"] == 3 and len(d["segments"]) == 3 and d["segments"][0]["count"] > 0


def test_saved_model_and_assign_reproduce_the_fit(run):
    res, _, root = run
    saved = load_model(res.model_dir)
    scores = pd.read_csv(root / "survey.csv")
    out = assign(saved, scores)  # ratings -> same scales and scoring -> model
    fitted = out.set_index("respondent_id").loc[res.result.respondent_ids]
    P = fitted[[f"p_{j}" for j in (1, 2, 3)]].to_numpy()
    np.testing.assert_allclose(P, res.result.memberships, atol=1e-10)
    assert (fitted["segment"].to_numpy() == res.result.assignment).all()
    assert len(out) == 260  # excluded respondents are scored too
    # and streamed from the file, in chunks, to Parquet: the same numbers
    summary = assign_file(saved, root / "survey.csv", root / "assigned.parquet", chunksize=64)
    streamed = pd.read_parquet(root / "assigned.parquet")
    np.testing.assert_allclose(streamed[["p_1", "p_2", "p_3"]].to_numpy(), out[["p_1", "p_2", "p_3"]].to_numpy(),
                               rtol=1e-12, atol=1e-15)
    assert summary.rows == 260


def test_resume_after_a_killed_sweep_gives_the_same_model(run, tmp_path):
    res, _, root = run
    calls = []

    def kill_after_three(step, done, total, detail):
        if step == "select" and done is not None:
            calls.append(detail)
            if done == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(root / "survey.csv", FAST, models_dir=tmp_path, report=False, progress=kill_after_three)
    assert len(list((tmp_path / "survey" / "checkpoints").glob("*.json"))) == 3
    assert not (tmp_path / "survey" / "model.json").exists()  # no model from the interrupted run

    seen = []
    resumed = run_pipeline(root / "survey.csv", FAST, models_dir=tmp_path, report=False,
                           progress=lambda s, d, t, detail: seen.append(detail) if s == "select" and d else None)
    assert sum("loaded" in s for s in seen) == 3  # the three finished fits were not refitted
    np.testing.assert_array_equal(resumed.result.memberships, res.result.memberships)
    np.testing.assert_array_equal(resumed.result.centers, res.result.centers)
    assert resumed.result.segment_labels == res.result.segment_labels
    pd.testing.assert_frame_equal(
        resumed.selection.table.drop(columns=["seconds"]), res.selection.table.drop(columns=["seconds"])
    )


def test_reduction_is_applied_to_new_respondents_exactly(run, tmp_path):
    _, _, root = run
    res = run_pipeline(root / "survey.csv", FAST, reduce="pca", models=["gmm"], k=[3], models_dir=tmp_path,
                       report=False, name="pca")
    saved = load_model(res.model_dir)
    assert saved.meta["data"]["reduction"]["method"] == "pca"
    assert list(res.result.feature_names) == saved.meta["data"]["reduction"]["labels"]
    out = assign(saved, pd.read_csv(root / "survey.csv")).set_index("respondent_id").loc[res.result.respondent_ids]
    np.testing.assert_allclose(out[["p_1", "p_2", "p_3"]].to_numpy(), res.result.memberships, atol=1e-10)


def test_latent_class_model_assigns_from_ratings(run, tmp_path):
    _, _, root = run
    cfg = {**FAST, "model": {**FAST["model"], "model": "lca"}}
    res = run_pipeline(root / "survey.csv", cfg, models=["lca"], k=[3], models_dir=tmp_path, report=False, name="lca")
    assert res.model == "lca"
    saved = load_model(res.model_dir)
    out = assign(saved, pd.read_csv(root / "survey.csv")).set_index("respondent_id").loc[res.result.respondent_ids]
    np.testing.assert_allclose(out[["p_1", "p_2", "p_3"]].to_numpy(), predict_proba(saved.result, _levels(root, res)), atol=1e-12)
    np.testing.assert_allclose(out[["p_1", "p_2", "p_3"]].to_numpy(), res.result.memberships, atol=1e-8)


def _levels(root, res):
    from latentseg.prepare.cleaning import clean
    from latentseg.io import read_survey
    from latentseg.prepare.encoding import opportunity_levels
    from latentseg.prepare.scoring import opportunity_scores

    survey = read_survey(root / "survey.csv", imp_scale="1-5", sat_scale="1-10")
    clean_survey, _ = clean(survey, min_respondents=50)
    return opportunity_levels(opportunity_scores(clean_survey)).loc[res.result.respondent_ids]


def test_user_errors_are_one_clear_message(run, tmp_path):
    _, _, root = run
    with pytest.raises(ConfigError, match="unknown key 'select.k_mx'"):
        run_pipeline(root / "survey.csv", {"select": {"k_mx": 3}}, models_dir=tmp_path)
    with pytest.raises(ConfigError, match="Model name 'a/b' must start with a letter or digit"):
        run_pipeline(root / "survey.csv", FAST, name="a/b", models_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"Columns \['salary'\] are not in the survey's profile columns.*\[profile\] overlay"):
        run_pipeline(root / "survey.csv", {**FAST, "profile": {"overlay": ["salary"]}}, models=["gmm"], k=[3],
                     models_dir=tmp_path, report=False)
    strict = {**FAST, "select": {**FAST["select"], "min_share": 0.6}}
    with pytest.raises(FitError, match=r"No admissible segmentation for k in 2..4: .*smallest segment"):
        run_pipeline(root / "survey.csv", strict, models_dir=tmp_path, report=False, name="strict")
    with pytest.raises(ConfigError, match="Config file .* does not exist"):
        run_pipeline(root / "survey.csv", tmp_path / "nope.toml", models_dir=tmp_path)


def test_default_name():
    assert default_name("x/My Survey (final).xlsx") == "my-survey-final"
    assert default_name("...csv") == "model"


def test_bayes_gmm_takes_the_configured_gaussian_structure():
    """`[model] covariance` reaches bayes-gmm in its own spelling (VVI -> diag, EEI, auto, VVV ->
    full); a structure it does not have (EII ...) leaves its default."""
    from latentseg.models.families import family

    base = {"n_init": 3, "draws": 10, "tune": 10, "chains": 1, "sampler": "nutpie"}
    for given, expected in (("VVI", "diag"), ("EEI", "EEI"), ("auto", "auto"), ("VVV", "full"), ("EII", None),
                            ("diag", "diag"), ("full", "full"), ("tied", None)):
        cfg = {"model": {**base, "covariance": given}}
        assert family("gmm").options_from_config(cfg).options["covariance"] == given
        bayes = family("bayes-gmm").options_from_config(cfg)
        assert bayes.options.get("covariance") == expected
        assert bool(bayes.notes) == (expected is None)  # a structure it lacks is said, not dropped silently
