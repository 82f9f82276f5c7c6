"""``latentseg validate`` and ``latentseg score`` through Typer's CliRunner: exit codes, stdout/stderr."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from latentseg.cli.app import app
from typer.testing import CliRunner

from latentseg.io import read_survey
from latentseg.prepare.scoring import opportunity_scores

runner = CliRunner()


def survey_frame(n: int = 12, names=("o0", "o1", "o2"), seed: int = 0) -> pd.DataFrame:
    """A survey in which nobody straight-lines by accident (the first two outcomes always differ)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    data: dict[str, object] = {"respondent_id": [f"r{k:02d}" for k in range(1, n + 1)]}
    for j, o in enumerate(names):
        data[f"imp_{o}"] = 1 + (i + j) % 5 if j < 2 else rng.integers(1, 6, n)
    for j, o in enumerate(names):
        data[f"sat_{o}"] = 1 + (i + j) % 10 if j < 2 else rng.integers(1, 11, n)
    data["role"] = np.where(i % 3 == 0, "PM", "Eng")
    data["duration"] = rng.integers(300, 600, n)
    return pd.DataFrame(data)


@pytest.fixture
def survey_csv(tmp_path):
    df = survey_frame()
    df.loc[3, ["imp_o0", "imp_o1", "imp_o2"]] = 4  # a straight-liner
    p = tmp_path / "survey.csv"
    df.to_csv(p, index=False)
    return p


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


# ----------------------------------------------------------------------------- validate
def test_validate_prints_summary_and_cleaning(survey_csv):
    r = invoke("validate", survey_csv, "--imp-scale", "1-5", "--sat-scale", "1-10")
    assert r.exit_code == 0, r.output
    assert "12 respondents, 3 outcomes" in r.stdout
    assert "importance scale 1-5 (declared)" in r.stdout
    assert "Cleaning: 12 respondents in, 11 kept, 1 excluded." in r.stdout
    assert "r04" in r.stdout and "straight-liner (importance)" in r.stdout
    assert "fewer than 100" in r.stderr  # small-sample warning goes to stderr


def test_validate_reports_inferred_scales(survey_csv):
    r = invoke("validate", survey_csv)
    assert r.exit_code == 0, r.output
    assert "Importance scale not declared: inferred 1-5" in r.stderr
    assert "importance scale 1-5 (inferred from the data)" in r.stdout


def test_validate_json(survey_csv, tmp_path):
    (tmp_path / "outcomes.csv").write_text("outcome,statement,job_step\no0,Minimize the time to plan,Plan\n")
    r = invoke("validate", survey_csv, "--json", "--imp-scale", "1-5", "--sat-scale", "1-10", "--outcomes", tmp_path / "outcomes.csv")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n_respondents"] == 12 and out["n_outcomes"] == 3
    assert out["imp_scale"] == {"scale": "1-5", "low": 1.0, "high": 5.0, "inferred": False}
    assert out["outcomes"][0] == {"id": "o0", "statement": "Minimize the time to plan", "job_step": "Plan"}
    assert out["cleaning"]["n_out"] == 11 and out["cleaning"]["excluded"][0]["respondent_id"] == "r04"
    assert out["profile_columns"] == ["role"] and out["duration"] is True
    assert any("unstable" in w for w in out["warnings"])


def test_validate_missing_codes_and_config(tmp_path):
    df = survey_frame()
    df.loc[5, "sat_o1"] = 99
    df.loc[6, "imp_o2"] = -9
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    r = invoke("validate", p, "--imp-scale", "1-5", "--sat-scale", "1-10")
    assert_clean_failure(r, "column 'imp_o2' has 1 values outside the declared importance scale 1-5 (found -9)")
    r = invoke("validate", p, "--imp-scale", "1-5", "--sat-scale", "1-10", "--missing-codes", "99,-9", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["missing_ratings"] == 2
    cfg = tmp_path / "latentseg.toml"
    cfg.write_text('[survey]\nimp_scale = "1-5"\nsat_scale = "1-10"\nmissing_codes = [99, -9]\n[cleaning]\nmin_respondents = 5\n')
    r = invoke("validate", p, "--config", cfg)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""


def test_validate_bad_usage_exits_2(survey_csv):
    r = invoke("validate", survey_csv, "--missing-codes", "dk")
    assert r.exit_code == 2
    assert "expected numbers separated by commas" in r.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("respondent_id,imp_a,sat_a,imp_b,sat_b\n", "has a header but no data rows"),
        ("respondent_id,imp_a,sat_a,imp_b,sat_b\nr1,1,2,3,4\nr2,1,2,3,4,5\n", "ragged rows: row 3 has 6 fields"),
        ("respondent_id,imp_a,sat_a,imp_b,sat_b\nr1,1,2,3,4\nr1,1,2,3,4\n", "repeats 1 respondent ids [r1]"),
        ("id,imp_a,sat_a,imp_b\n1,1,2,3\n", "column 'imp_b' (importance of outcome 'b') has no satisfaction partner"),
    ],
)
def test_validate_invalid_file_exits_1_without_traceback(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    r = invoke("validate", p, "--imp-scale", "1-5", "--sat-scale", "1-10")
    assert_clean_failure(r, message)
    assert "bad.csv" in r.stderr


def test_validate_missing_file_and_bad_config(tmp_path, survey_csv):
    assert_clean_failure(invoke("validate", tmp_path / "none.csv"), "no such file")
    cfg = tmp_path / "latentseg.toml"
    cfg.write_text("[cleaning]\nmax_unrated = 'many'\n")
    assert_clean_failure(invoke("validate", survey_csv, "-c", cfg), "'cleaning.max_unrated' must be a number in [0, 1]")


def test_validate_markup_like_outcome_names(tmp_path):
    df = survey_frame(names=("[bold]x[/bold]", "<b>Speed</b>"))
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    r = invoke("validate", p, "--imp-scale", "1-5", "--sat-scale", "1-10", "--json")
    assert r.exit_code == 0, r.output
    assert [o["id"] for o in json.loads(r.stdout)["outcomes"]] == ["[bold]x[/bold]", "<b>Speed</b>"]
    r = invoke("score", p, "-o", tmp_path / "out.csv", "--imp-scale", "1-5", "--sat-scale", "1-10", "--no-clean")
    assert r.exit_code == 0, r.output
    assert "[bold]x[/bold]" in r.stdout


# ----------------------------------------------------------------------------- score
def test_score_writes_scores_and_landscape(survey_csv, tmp_path):
    out = tmp_path / "results" / "scores.csv"
    r = invoke("score", survey_csv, "-o", out, "--imp-scale", "1-5", "--sat-scale", "1-10")
    assert r.exit_code == 0, r.output
    scores = pd.read_csv(out)
    assert scores.columns.tolist() == ["respondent_id", "o0", "o1", "o2"]
    assert "r04" not in set(scores["respondent_id"]) and len(scores) == 11
    expected = opportunity_scores(read_survey(survey_csv, imp_scale="1-5", sat_scale="1-10"))
    np.testing.assert_allclose(scores.set_index("respondent_id").to_numpy(), expected.drop(index="r04").to_numpy())
    landscape = pd.read_csv(tmp_path / "results" / "scores_landscape.csv")
    assert landscape["outcome"].tolist() == ["o0", "o1", "o2"]
    assert {"importance", "satisfaction", "opportunity", "class", "n_rated"} <= set(landscape.columns)
    assert "Opportunity landscape" in r.stdout
    assert "wrote" in r.stderr


def test_score_parquet_json_no_clean_and_by(survey_csv, tmp_path):
    out = tmp_path / "scores.parquet"
    r = invoke("score", survey_csv, "-o", out, "--imp-scale", "1-5", "--sat-scale", "1-10", "--no-clean", "--json", "--by", "role")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["cleaned"] is False and payload["n_respondents"] == 12
    assert payload["landscape_file"] == str(tmp_path / "scores_landscape.parquet")
    assert {row["group"] for row in payload["landscape"]} == {"PM", "Eng"}
    assert len(pd.read_parquet(out)) == 12
    assert set(pd.read_parquet(tmp_path / "scores_landscape.parquet")["group"]) == {"PM", "Eng"}


def test_score_writes_a_real_workbook_for_an_xlsx_path(survey_csv, tmp_path):
    # issue 15: a .xlsx path used to get CSV text; now a workbook whose scores are numbers
    out = tmp_path / "scores.xlsx"
    r = invoke("score", survey_csv, "-o", out, "--imp-scale", "1-5", "--sat-scale", "1-10")
    assert r.exit_code == 0, r.output
    with open(out, "rb") as fh:
        assert fh.read(2) == b"PK"  # a zip container, not CSV text
    back = pd.read_excel(out)
    as_csv = tmp_path / "scores.csv"
    assert invoke("score", survey_csv, "-o", as_csv, "--imp-scale", "1-5", "--sat-scale", "1-10").exit_code == 0
    expected = pd.read_csv(as_csv)
    assert list(back.columns) == list(expected.columns) and len(back) == len(expected) > 0
    numeric = [c for c in expected.columns if c != "respondent_id"]
    assert all(pd.api.types.is_float_dtype(back[c]) for c in numeric)  # numbers stored as numbers
    np.testing.assert_allclose(back[numeric].to_numpy(), expected[numeric].to_numpy(), rtol=1e-12)
    assert (tmp_path / "scores_landscape.xlsx").exists()


def test_score_bad_output_suffix_and_bad_by(survey_csv, tmp_path):
    r = invoke("score", survey_csv, "-o", tmp_path / "scores.txt", "--imp-scale", "1-5", "--sat-scale", "1-10")
    assert_clean_failure(r, "must end in .csv, .parquet or .xlsx")
    r = invoke("score", survey_csv, "-o", tmp_path / "s.csv", "--imp-scale", "1-5", "--sat-scale", "1-10", "--by", "age")
    assert r.exit_code == 1 and "cannot group by 'age'" in r.stderr and "Traceback" not in r.output
