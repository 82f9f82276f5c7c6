"""``latentseg select``, ``compare`` and ``study`` through Typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentseg.research.simulate import simulate_gaussian_mixture, simulate_survey


def _run(*args: object):
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def scores_csv(tmp_path_factory):
    X, truth = simulate_gaussian_mixture(240, k=3, d=4, separation=5.0, random_seed=41)
    X.insert(0, "respondent_id", [f"r{i:03d}" for i in range(len(X))])
    folder = tmp_path_factory.mktemp("select")
    path = folder / "scores.csv"
    X.to_csv(path, index=False)
    # every fit checkpointed (the default keeps only fits of 2 s or more): the test counts them
    (folder / "nostab.toml").write_text("[select]\nstability_subsamples = 0\ncheckpoint_min_seconds = 0\n")
    return path


@pytest.fixture(scope="module")
def survey_csv(tmp_path_factory):
    survey, _ = simulate_survey(180, n_outcomes=8, n_segments=3, job_steps=2, separation=2.0, random_seed=43)
    folder = tmp_path_factory.mktemp("survey")
    path = folder / "survey.csv"
    survey.to_frame().to_csv(path)
    cfg = folder / "latentseg.toml"
    cfg.write_text(
        '[survey]\nimp_scale = "1-5"\nsat_scale = "1-10"\n\n[cleaning]\nmin_respondents = 50\n\n'
        "[select]\nstability_subsamples = 0\n"
    )
    return path, cfg


# ------------------------------------------------------------------------------- select
@pytest.mark.xdist_group("cli_select")
def test_select_json_contract_on_scores(scores_csv, tmp_path):
    nostab = scores_csv.parent / "nostab.toml"
    res = _run("select", scores_csv, "--data-kind", "scores", "--models", "kmeans,gmm", "--k", "2..4",
               "--seed", 3, "--json", "--plots", tmp_path / "figs", "--checkpoint", tmp_path / "ckpt",
               "--config", nostab)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"fits", "recommended_k", "rule"} <= set(out)
    assert out["recommended_k"] == 3
    assert [(f["model"], f["k"]) for f in out["fits"]] == [("kmeans", 2), ("kmeans", 3), ("kmeans", 4), ("gmm", 2), ("gmm", 3), ("gmm", 4)]
    assert out["fits"][0]["n"] == 240 and "segments" in out["fits"][0]
    assert [r["k"] for r in out["lmr"]] == [3, 4]
    assert (tmp_path / "figs" / "selection_bic.png").exists()
    assert len(list((tmp_path / "ckpt").glob("*.json"))) == 6
    # resumed from the checkpoints: same answer
    again = _run("select", scores_csv, "--data-kind", "scores", "--models", "kmeans,gmm", "--k", "2..4",
                 "--seed", 3, "--json", "--checkpoint", tmp_path / "ckpt", "--config", nostab)
    assert json.loads(again.stdout)["fits"] == out["fits"]


@pytest.mark.xdist_group("cli_select")
def test_select_survey_with_latent_class_prints_the_rule(survey_csv):
    path, cfg = survey_csv
    res = _run("select", path, "--config", cfg, "--models", "gmm,lca", "--k", "2,3,4", "--seed", 1)
    assert res.exit_code == 0, res.output
    assert "Recommended k:" in res.stdout and "Rule:" in res.stdout
    assert "lca" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "3..x"], "--k must look like 3..7"),
        (["--k", "0..3"], "every k >= 1"),
        (["--models", "kmeans,hmm"], "Unknown model 'hmm' in --models"),
    ],
)
def test_select_bad_options_exit_1_with_one_message(scores_csv, args, message):
    res = _run("select", scores_csv, "--data-kind", "scores", *args)
    assert res.exit_code == 1
    assert message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.xdist_group("cli_select")
def test_select_with_bootstrap_lrt(scores_csv):
    nostab = scores_csv.parent / "nostab.toml"
    res = _run("select", scores_csv, "--data-kind", "scores", "--models", "gmm", "--k", "2,3", "--seed", 5,
               "--blrt", 4, "--jobs", 1, "--json", "--config", nostab)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["blrt"]
    assert [(r["model"], r["k_null"], r["k"]) for r in rows] == [("gmm", 1, 2), ("gmm", 2, 3)]
    assert all(r["replicates"] == 4 and r["n_failed"] == 0 for r in rows)
    assert rows[1]["p_value"] == pytest.approx(0.2)  # 3 well-separated segments: no replicate beats it


def test_select_missing_file(tmp_path):
    res = _run("select", tmp_path / "nope.csv")
    assert res.exit_code == 1 and "does not exist" in res.stderr


def test_quiet_hides_progress(scores_csv):
    nostab = scores_csv.parent / "nostab.toml"
    loud = _run("select", scores_csv, "--data-kind", "scores", "--models", "gmm", "--k", "2,3", "--config", nostab)
    quiet = _run("--quiet", "select", scores_csv, "--data-kind", "scores", "--models", "gmm", "--k", "2,3", "--config", nostab)
    # off a terminal (the test runner's stderr) progress is plain log lines naming the running fit
    assert "select: fit 2 of 2: gmm k=3 (running)" in loud.stderr
    assert "fit 2 of 2" not in quiet.stderr and quiet.exit_code == 0


# ------------------------------------------------------------------------------- compare
def _assignments(path, ids, seg, probs=None):
    df = pd.DataFrame({"respondent_id": ids, "segment": seg})
    if probs is not None:
        for j in range(probs.shape[1]):
            df[f"p_{j + 1}"] = probs[:, j]
    df.to_csv(path, index=False)
    return path


def test_compare_two_assignment_tables(tmp_path):
    rng = np.random.default_rng(0)
    seg = rng.integers(1, 4, size=200)
    ids = [f"r{i}" for i in range(200)]
    a = _assignments(tmp_path / "a.csv", ids, seg)
    perm = np.array([0, 3, 1, 2])  # b numbers the same segments differently
    probs = np.eye(3)[perm[seg] - 1] * 0.9 + 0.1 / 3
    b = _assignments(tmp_path / "b.csv", ids, perm[seg], probs)
    res = _run("compare", a, b, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ari"] == pytest.approx(1.0) and out["agreement"] == 1.0
    assert out["mapping"] == {"1": 2, "2": 3, "3": 1}
    assert out["crosstab"]["columns"] == [3, 1, 2]  # b's numbers, in matched order
    text = _run("compare", a, b, "--plot", tmp_path / "c.png", "--disagreements", tmp_path / "d.csv")
    assert text.exit_code == 0 and "agree on 100% of respondents" in text.stdout
    assert (tmp_path / "c.png").exists() and len(pd.read_csv(tmp_path / "d.csv")) == 0


def test_compare_saved_models(tmp_path, scores_csv):
    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit

    X = pd.read_csv(scores_csv).set_index("respondent_id")
    save_model(tmp_path / "km", fit(X, "kmeans", 3, random_seed=1))
    save_model(tmp_path / "gmm", fit(X, "gmm", 3, random_seed=1))
    res = _run("compare", tmp_path / "km", tmp_path / "gmm", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n"] == 240 and out["ari"] > 0.95
    assert out["a"] == "kmeans (k=3)" and out["b"] == "gmm (k=3)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id_x,seg\n1,1\n", "needs columns 'respondent_id' and 'segment'"),
        ("respondent_id,segment\n1,1\n2,0\n3,x\n", "must hold segment numbers 1, 2, ...; bad values at respondents [2, 3]"),
        ("respondent_id,segment,p_1,p_2\n1,1,0.9,0.3\n2,2,0.1,0.9\n", "summing to 1 in every row; they do not at respondents [1]"),
        ("respondent_id,segment\n1,1\n1,2\n", "repeated respondent ids [1]"),
    ],
)
def test_compare_bad_assignment_tables(tmp_path, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    good = _assignments(tmp_path / "good.csv", [1, 2, 3], [1, 2, 1])
    res = _run("compare", bad, good)
    assert res.exit_code == 1
    assert message in " ".join(res.stderr.split())


def test_compare_missing_or_odd_paths(tmp_path):
    good = _assignments(tmp_path / "good.csv", [1, 2, 3], [1, 2, 1])
    res = _run("compare", tmp_path / "nothing", good)
    assert res.exit_code == 1 and "No saved model directory or assignment file" in res.stderr
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"\x00")
    res = _run("compare", odd, good)
    assert res.exit_code == 1 and "neither a saved model directory nor an assignment table" in res.stderr


# ------------------------------------------------------------------------------- study
def test_study_command_runs_and_resumes(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        "[study]\nreplications = 1\nseed = 3\nmethods = ['kmeans-silhouette', 'gmm-bic']\nk_candidates = [1, 2, 3]\n"
        "d = 2\n[study.grid]\nn = [100]\nk = [2]\nseparation = [4.0]\n"
    )
    res = _run("study", cfg, "-o", tmp_path / "out", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["computed"] == 1 and {r["method"] for r in out["overall"]} == {"kmeans-silhouette", "gmm-bic"}
    assert (tmp_path / "out" / "summary.csv").exists()
    again = _run("study", cfg, "-o", tmp_path / "out", "--json")
    assert json.loads(again.stdout)["resumed"] == 1


def test_study_bad_config(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[study]\n[study.grid]\nn = [100]\n")
    res = _run("study", cfg)
    assert res.exit_code == 1 and "grid.k is missing" in res.stderr
