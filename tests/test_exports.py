"""The exports analysts receive, read with no configuration (tests/make_exports.py writes them
with known answers): Qualtrics CSV (values and choice text), TSV and .xlsx, SurveyMonkey CSV and
.xlsx, the Qualtrics SPSS file. Each must give the same respondents, outcomes, statements, scales,
set-aside responses and opportunity scores; personal data must reach no output."""

from __future__ import annotations

import json
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from latentseg.cli.app import app
from latentseg.errors import LatentsegWarning, SurveyError
from latentseg.io import read_survey, read_table, write_table
from latentseg.io.exports import choose_label_set
from latentseg.prepare.cleaning import clean
from latentseg.prepare.scoring import opportunity_scores

sys.path.insert(0, str(Path(__file__).parent))
from make_exports import IMP_LABELS, PLANTED, write_exports  # noqa: E402

FORMATS = ["qualtrics_values", "qualtrics_text", "qualtrics_tsv", "qualtrics_xlsx", "surveymonkey",
           "surveymonkey_xlsx", "spss"]
QUALTRICS_PERSONAL = {"IPAddress", "RecipientLastName", "RecipientFirstName", "RecipientEmail", "ExternalReference",
                      "LocationLatitude", "LocationLongitude"}
SURVEYMONKEY_PERSONAL = {"IP Address", "Email Address", "First Name", "Last Name", "Custom Data 1"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_exports(tmp_path_factory.mktemp("exports"), n=120)


def _read(path, **kw):
    """read_survey, allowing only the warning that a scale was inferred from numeric ratings."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", LatentsegWarning)
        survey = read_survey(path, **kw)
    other = [str(w.message) for w in seen if "scale not declared: inferred 1-5" not in str(w.message)]
    assert not other, other
    return survey


@pytest.fixture(scope="module")
def surveys(exports):
    _, files = exports
    return {name: _read(files[name]) for name in FORMATS}


@pytest.mark.parametrize("name", FORMATS)
def test_each_export_reads_with_no_config(exports, surveys, name):
    truth, _ = exports
    s = surveys[name]
    assert s.respondent_ids.tolist() == truth.ids  # the real responses, in file order
    assert s.outcome_ids == truth.outcomes
    assert s.statements() == truth.statements  # the statement part of the question text
    assert (str(s.imp_scale), str(s.sat_scale)) == ("1-5", "1-5")
    pd.testing.assert_frame_equal(s.importance, truth.importance, check_names=False)
    pd.testing.assert_frame_equal(s.satisfaction, truth.satisfaction, check_names=False)
    personal = SURVEYMONKEY_PERSONAL if name.startswith("surveymonkey") else QUALTRICS_PERSONAL
    if name == "spss":  # the SPSS file carries a subset of the columns
        personal = {"IPAddress", "RecipientEmail", "RecipientFirstName", "LocationLatitude", "LocationLongitude"}
    assert set(s.personal) == personal
    assert not set(s.profile.columns) & personal
    assert any("personal data left out" in n for n in s.notes)
    if name.startswith("surveymonkey"):  # no Status / Finished: nothing to set aside
        assert s.set_aside.empty
        assert list(s.profile.columns) == ["What is your role? Select the closest one.", "How many people work at your company?"]
    else:
        reasons = dict(zip(s.set_aside["respondent_id"], s.set_aside["reasons"], strict=True))
        assert set(reasons) == set(truth.set_aside)
        for rid, why in truth.set_aside.items():
            assert reasons[rid].startswith(why), (rid, reasons[rid])
        assert list(s.profile.columns) == (["Q5"] if name == "spss" else ["Q5", "Q6"])  # metadata left out
    if name == "qualtrics_text":
        assert any("choice text: 5-point importance" in n for n in s.notes)
    if name in ("qualtrics_text", "spss"):  # the scale comes from the labels, not from the ratings seen
        assert not s.imp_scale.inferred and not s.sat_scale.inferred


def test_same_scores_in_every_format(surveys):
    ref = opportunity_scores(surveys["qualtrics_values"])
    for name in FORMATS[1:]:
        pd.testing.assert_frame_equal(opportunity_scores(surveys[name]), ref, check_names=False, obj=name)


def test_cleaning_report_lists_the_set_aside_responses(exports, surveys):
    truth, _ = exports
    s = surveys["qualtrics_text"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)  # fewer than 100 respondents
        kept, report = clean(s)
    assert report.n_in == len(truth.ids) + len(truth.set_aside)
    assert report.counts["status"] == len(truth.set_aside)
    first = report.excluded.head(len(truth.set_aside))
    assert first["respondent_id"].tolist() == list(truth.set_aside) and first["status"].all()
    assert "previews, tests, spam and unfinished: 6" in report.summary()
    assert kept.set_aside.empty  # listed once
    assert report.n_out == kept.n_respondents


def test_unknown_choice_label_names_column_label_and_rows(exports, tmp_path):
    _, files = exports
    text = files["qualtrics_text"].read_bytes().decode("utf-8-sig")
    lines = text.split("\r\n")
    row = lines[3].split(",")  # the first response (the line break in a question text is a bare \n)
    col = 17 + 1  # Q3_2
    assert row[col] in IMP_LABELS
    row[col] = "Kinda important"
    lines[3] = ",".join(row)
    p = tmp_path / "bad.csv"
    p.write_text("\r\n".join(lines), encoding="utf-8")
    with pytest.raises(SurveyError, match=r"bad\.csv: column 'Q3_2' \(importance\) has the answer label 'Kinda important', "
                                          r"which is not in .*at respondents \[R_R0001x001\]; expected a known label"):
        read_survey(p)


def test_custom_labels_from_config(tmp_path):
    labels = ["Not important", "Somewhat", "Important", "Critical"]
    sats = ["Poor", "Fair", "Good", "Excellent"]
    rng = np.random.default_rng(3)
    imp = rng.integers(1, 5, size=(30, 3))
    sat = rng.integers(1, 5, size=(30, 3))
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(30)]})
    for j in range(3):
        frame[f"imp_{j}"] = [labels[v - 1] for v in imp[:, j]]
        frame[f"sat_{j}"] = [sats[v - 1] for v in sat[:, j]]
    p = tmp_path / "custom.csv"
    frame.to_csv(p, index=False)
    # "Important" is a standard label, "Critical" is not: declare the set
    with pytest.raises(SurveyError, match=r"column 'imp_0' \(importance\) has the answer label 'Critical', which is not in "
                                          r"the standard importance and satisfaction label sets, at respondents \[r0, r2, "):
        read_survey(p)
    s = read_survey(p, config={"survey": {"labels": {"importance": labels, "satisfaction": sats}}})
    assert s.importance.to_numpy().tolist() == imp.astype(float).tolist()
    assert s.satisfaction.to_numpy().tolist() == sat.astype(float).tolist()
    assert (str(s.imp_scale), str(s.sat_scale)) == ("1-4", "1-4")


def test_labels_config_table_and_errors(tmp_path):
    from latentseg.config import load_config
    from latentseg.errors import ConfigError

    p = tmp_path / "latentseg.toml"
    p.write_text('[survey.labels]\nimportance = ["Low", "Mid", "High"]\nsatisfaction = {"Bad" = 0, "OK" = 5, "Great" = 10}\n')
    cfg = load_config(p)
    assert cfg["survey"]["labels"] == {"importance": ["Low", "Mid", "High"], "satisfaction": {"Bad": 0.0, "OK": 5.0, "Great": 10.0}}
    survey = tmp_path / "s.csv"
    survey.write_text("id,imp_a,sat_a,imp_b,sat_b\nr1,High,Bad,Low,OK\nr2,mid,great,,Bad\n")
    s = read_survey(survey, config=cfg)
    assert s.importance.to_numpy().tolist()[0] == [3.0, 1.0] and np.isnan(s.importance.iloc[1, 1])
    assert s.satisfaction.to_numpy().tolist() == [[0.0, 5.0], [10.0, 0.0]]
    assert (str(s.imp_scale), str(s.sat_scale)) == ("1-3", "0-10")
    p.write_text('[survey.labels]\nimportanc = ["Low", "High"]\n')
    with pytest.raises(ConfigError, match=r"unknown key 'survey.labels.importanc' \(did you mean 'importance'\?\)"):
        load_config(p)
    p.write_text('[survey.labels]\nimportance = "Low"\n')
    with pytest.raises(ConfigError, match=r"'survey.labels.importance' must be a list of at least two labels"):
        load_config(p)
    p.write_text('[survey.labels]\nimportance = ["Low", "low"]\n')
    with pytest.raises(ConfigError, match=r"lists a label twice"):
        load_config(p)


def test_read_table_maps_choice_text_with_the_fitted_label_set(exports):
    """assign's read: rating columns of choice text become the numbers the model was fitted on."""
    truth, files = exports
    spec = {"imp_columns": [f"Q3_{o}" for o in truth.outcomes], "sat_columns": [f"Q4_{o}" for o in truth.outcomes],
            "labels": {"importance": "5-point importance", "satisfaction": "5-point satisfaction"}}
    frame = read_table(files["qualtrics_text"], ratings=spec).set_index("ResponseId")
    np.testing.assert_array_equal(frame.loc[truth.ids, spec["imp_columns"]].to_numpy(float), truth.importance.to_numpy())
    np.testing.assert_array_equal(frame.loc[truth.ids, spec["sat_columns"]].to_numpy(float), truth.satisfaction.to_numpy())
    assert frame["Status"].iloc[3] == "Survey Preview"  # a table, not a survey: every row is there
    spec["labels"]["importance"] = "7-point importance"  # the set the model was fitted with wins
    frame = read_table(files["qualtrics_text"], ratings=spec).set_index("ResponseId")
    assert frame.loc[truth.ids[0], "Q3_1"] == {4.0: 6.0, 5.0: 7.0, 3.0: 5.0, 2.0: 3.0, 1.0: 1.0}[truth.importance.iloc[0, 0]]


def test_label_set_choice():
    five = ["Not at all important", "Slightly important", "Moderately important", "Very important", "Extremely important"]
    best, sure = choose_label_set("importance", five)
    assert best.name == "5-point importance" and sure  # all five seen, the 7-point set lacks two
    best, sure = choose_label_set("importance", five[1:4])  # three middle labels: 5- or 7-point?
    assert best.name == "5-point importance" and not sure
    best, sure = choose_label_set("importance", five[1:4], scale_points=7)  # a declared 1-7 settles it
    assert best.name == "7-point importance" and best.code("Slightly important") == 3


def test_plain_status_column_is_a_profile_column(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("id,imp_a,sat_a,imp_b,sat_b,status\nr1,5,2,3,3,customer\nr2,4,4,1,5,prospect\nr3,2,3,4,1,customer\n")
    s = read_survey(p, imp_scale="1-5", sat_scale="1-5")
    assert s.respondent_ids.tolist() == ["r1", "r2", "r3"] and s.set_aside.empty
    assert list(s.profile.columns) == ["status"]


def test_personal_columns_by_content_and_kept_when_named(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("id,imp_a,sat_a,imp_b,sat_b,contact,role\nr1,5,2,3,3,ann@example.com,PM\nr2,4,4,1,5,bo@example.org,Dev\n")
    s = read_survey(p, imp_scale="1-5", sat_scale="1-5")
    assert s.personal == ("contact",) and list(s.profile.columns) == ["role"]
    s = read_survey(p, imp_scale="1-5", sat_scale="1-5", config={"survey": {"profile_columns": ["contact", "role"]}})
    assert list(s.profile.columns) == ["contact", "role"] and s.personal == ()


def test_write_table_xlsx_is_a_workbook(tmp_path):
    frame = pd.DataFrame({"id": ["=HYPERLINK(1)", "007"], "x": [1.5, 2.0]})
    p = write_table(frame, tmp_path / "t.xlsx")
    assert p.read_bytes()[:4] == b"PK\x03\x04"
    back = read_table(p)
    assert back["id"].tolist() == ["'=HYPERLINK(1)", "007"] and back["x"].tolist() == [1.5, 2.0]
    with pytest.raises(SurveyError, match=r"t\.xls: tables are written as \.csv, \.parquet or \.xlsx"):
        write_table(frame, tmp_path / "t.xls")


# ----------------------------------------------------------------------------- run, assign, personal data
FAST = """
[model]
model = "kmeans"
n_init = 2
random_seed = 7
[select]
models = ["kmeans"]
k_min = 3
k_max = 3
stability_subsamples = 0
[cleaning]
min_respondents = 50
"""


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run_output(exports, tmp_path_factory):
    _, files = exports
    root = tmp_path_factory.mktemp("run")
    (root / "fast.toml").write_text(FAST)
    res = _invoke("run", files["qualtrics_text"], "-c", root / "fast.toml", "-o", root / "out", "--models-dir",
                  root / "models", "--name", "q", "--json", "-q")
    assert res.exit_code == 0, res.output
    return root, json.loads(res.stdout)


def test_run_assign_same_reader(exports, run_output, tmp_path):
    """assign reads the Qualtrics exports (choice text with a line break in a question, values,
    .xlsx) through the survey reader, and scores each respondent alike."""
    truth, files = exports
    root, d = run_output
    assert d["cleaning"]["n_in"] == len(truth.ids) + len(truth.set_aside)
    segments = {}
    for name in ("qualtrics_text", "qualtrics_values", "qualtrics_xlsx"):
        out = tmp_path / f"{name}.csv"
        res = _invoke("assign", root / "models" / "q", files[name], "-o", out, "-q")
        assert res.exit_code == 0, res.output
        frame = pd.read_csv(out, dtype={"ResponseId": str}).set_index("ResponseId")
        segments[name] = frame.loc[truth.ids, "segment"]
        # previews, spam and unfinished responses stay in the output, unscored, as run sets them aside
        aside = list(truth.set_aside)
        assert frame.loc[aside, "segment"].isna().all() and frame.loc[truth.ids, "segment"].notna().all()
        res = _invoke("assign", root / "models" / "q", files[name], "-o", tmp_path / f"{name}_2.csv", "--json")
        summary = json.loads(res.stdout)
        assert summary["set_aside"]["count"] == len(aside) == summary["unscored"]
        assert sum(v for k, v in summary["set_aside"]["reasons"].items() if k.startswith("survey preview")) == 2
    pd.testing.assert_series_equal(segments["qualtrics_values"], segments["qualtrics_text"], check_names=False)
    pd.testing.assert_series_equal(segments["qualtrics_xlsx"], segments["qualtrics_text"], check_names=False)


def test_personal_data_reaches_no_output(run_output):
    """Planted e-mail, IP, names, external reference and coordinates appear in no file written by
    run (report, tables, figures, saved model), as text or as binary float64."""
    root, _ = run_output
    needles = [str(v).encode() for k, v in PLANTED.items() if k not in ("latitude", "longitude")]
    for k in ("latitude", "longitude"):
        v = PLANTED[k]
        needles += [f"{v:.4f}".encode(), struct.pack("<d", v), struct.pack(">d", v), struct.pack("<f", v)]
    files = [p for p in (root / "out").rglob("*") if p.is_file()] + [p for p in (root / "models").rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.suffix == ".nc" for p in files) and any(p.suffix == ".html" for p in files)
    for p in files:
        data = p.read_bytes()
        for needle in needles:
            assert needle not in data, (p, needle)
    saved = json.loads((root / "models" / "q" / "model.json").read_text())
    assert "RecipientEmail" not in json.dumps(saved.get("meta", {}).get("data", {}).get("profile_columns", []))
