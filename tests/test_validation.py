"""Every validation message: one sentence naming the file, the column, up to five rows, and what
was expected. Each is pinned with ``pytest.raises(match=...)``. Config messages are pinned here too."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from latentseg.config import DEFAULT_CONFIG, KEYS, config_reference_markdown, load_config, merge_config
from latentseg.errors import ConfigError, LatentsegWarning, SurveyError
from latentseg.io import read_survey, survey_from_frame

SCALES = {"imp_scale": "1-5", "sat_scale": "1-10"}
HEADER = "respondent_id,imp_a,imp_b,sat_a,sat_b,role\n"
ROWS = ["r1,5,4,3,7,PM", "r2,4,2,9,2,PM", "r3,1,3,5,5,Eng", "r4,3,3,6,8,Exec", "r5,2,5,1,10,Eng"]


def write(tmp_path, text: str | bytes, name: str = "s.csv"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def survey_csv(tmp_path, rows=ROWS, header=HEADER, name="s.csv"):
    return write(tmp_path, header + "\n".join(rows) + "\n", name)


def test_valid_baseline(tmp_path):
    s = read_survey(survey_csv(tmp_path), **SCALES)
    assert s.n_respondents == 5 and s.outcome_ids == ["a", "b"]


# ----------------------------------------------------------------------------- files
def test_missing_file(tmp_path):
    with pytest.raises(SurveyError, match=r"nope\.csv: no such file; expected a survey file"):
        read_survey(tmp_path / "nope.csv", **SCALES)


def test_missing_excel_file(tmp_path):
    with pytest.raises(SurveyError, match=r"nope\.xlsx: no such file"):
        read_survey(tmp_path / "nope.xlsx", **SCALES)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(SurveyError, match=r"is a folder; expected a survey file"):
        read_survey(tmp_path, **SCALES)


@pytest.mark.parametrize("content", [b"", b"  \n\r\n  ", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    p = write(tmp_path, content)
    with pytest.raises(SurveyError, match=r"s\.csv: the file is empty; expected a header row and one row per respondent"):
        read_survey(p, **SCALES)


def test_header_only(tmp_path):
    p = write(tmp_path, HEADER)
    with pytest.raises(SurveyError, match=r"s\.csv: has a header but no data rows; expected one row per respondent"):
        read_survey(p, **SCALES)


def test_empty_frame():
    with pytest.raises(SurveyError, match=r"<frame>: has a header but no data rows"):
        survey_from_frame(pd.DataFrame(columns=["imp_a", "sat_a", "imp_b", "sat_b"]), **SCALES)


def test_ragged_row_too_many_fields(tmp_path):
    rows = list(ROWS)
    rows[2] = "r3,1,3,5,5,Eng,extra"
    p = survey_csv(tmp_path, rows)
    with pytest.raises(
        SurveyError,
        match=r"s\.csv: ragged rows: row 4 has 7 fields where the header has 6 \(1 such rows, at rows \[4\]\); "
        r"expected 6 fields in every row",
    ):
        read_survey(p, **SCALES)


def test_ragged_rows_too_few_fields(tmp_path):
    rows = list(ROWS)
    rows[0] = "r1,5,4,3"
    rows[3] = "r4,3,3"
    p = survey_csv(tmp_path, rows)
    with pytest.raises(SurveyError, match=r"ragged rows: row 2 has 4 fields where the header has 6 \(2 such rows, at rows \[2, 5\]\)"):
        read_survey(p, **SCALES)


def test_binary_file(tmp_path):
    p = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(SurveyError, match=r"s\.csv: does not look like a text \(CSV\) file"):
        read_survey(p, **SCALES)


def test_extension_content_mismatch(tmp_path):
    p = write(tmp_path, HEADER + ROWS[0], name="s.parquet")
    with pytest.raises(SurveyError, match=r"s\.parquet: the content is not a \.parquet file"):
        read_survey(p, **SCALES)


def test_old_xls(tmp_path):
    p = write(tmp_path, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, name="s.xls")
    with pytest.raises(SurveyError, match=r"old Excel \.xls workbooks are not read; expected \.xlsx"):
        read_survey(p, **SCALES)


def test_damaged_parquet(tmp_path):
    p = write(tmp_path, b"PAR1garbage", name="s.parquet")
    with pytest.raises(SurveyError, match=r"s\.parquet: cannot be read as Parquet"):
        read_survey(p, **SCALES)


# ----------------------------------------------------------------------------- columns
def test_duplicate_column_names_csv(tmp_path):
    p = write(tmp_path, "respondent_id,imp_a,sat_a,imp_b,sat_b,imp_a\nr1,1,2,3,4,5\n")
    with pytest.raises(
        SurveyError, match=r"s\.csv: column name 'imp_a' appears 2 times \(columns 2 and 6\); expected unique column names"
    ):
        read_survey(p, **SCALES)


def test_duplicate_column_names_excel(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "imp_a", "sat_a", "imp_b", "sat_b", "sat_b"])
    ws.append([1, 1, 2, 3, 4, 5])
    p = tmp_path / "s.xlsx"
    wb.save(p)
    with pytest.raises(SurveyError, match=r"s\.xlsx: column name 'sat_b' appears 2 times \(columns 5 and 6\)"):
        read_survey(p, **SCALES)


def test_importance_without_satisfaction_partner(tmp_path):
    p = survey_csv(tmp_path, [r + ",3" for r in ROWS], header=HEADER.strip() + ",imp_c\n")
    with pytest.raises(
        SurveyError,
        match=r"s\.csv: column 'imp_c' \(importance of outcome 'c'\) has no satisfaction partner; "
        r"expected a column named 'sat_c'",
    ):
        read_survey(p, **SCALES)


def test_satisfaction_without_importance_partner():
    df = pd.DataFrame({"speed_imp": [1, 2], "speed_sat": [3, 4], "cost_imp": [1, 2], "cost_sat": [2, 2], "risk_sat": [1, 1]})
    with pytest.raises(
        SurveyError,
        match=r"column 'risk_sat' \(satisfaction of outcome 'risk'\) has no importance partner; expected a column named 'risk_imp'",
    ):
        survey_from_frame(df, **SCALES)


def test_partner_missing_under_custom_pattern():
    df = pd.DataFrame({"I_a": [1], "S_a": [2], "I_b": [1], "X_b": [2]})
    with pytest.raises(SurveyError, match=r"column 'I_b' .* expected a satisfaction column matching 'S_\{outcome\}' for outcome 'b'"):
        survey_from_frame(df, config={"survey": {"imp_pattern": "I_{outcome}", "sat_pattern": "S_{outcome}"}}, **SCALES)


def test_two_importance_columns_for_one_outcome():
    df = pd.DataFrame({"imp_a": [1], "importance_a": [2], "sat_a": [1], "imp_b": [1], "sat_b": [2]})
    with pytest.raises(SurveyError, match=r"outcome 'a' has two importance columns, 'imp_a' and 'importance_a'"):
        survey_from_frame(df, **SCALES)


def test_fewer_than_two_outcomes(tmp_path):
    p = write(tmp_path, "id,imp_a,sat_a,age\n1,3,4,30\n")
    with pytest.raises(SurveyError, match=r"s\.csv: found only 1 outcome \('a'\); at least two outcomes are needed"):
        read_survey(p, **SCALES)


def test_no_rating_columns(tmp_path):
    p = write(tmp_path, "id;age;role\n1;30;PM\n")
    with pytest.raises(SurveyError, match=r"s\.csv: found no rating columns; .*Columns seen: 'id', 'age', 'role'"):
        read_survey(p, **SCALES)


def test_mapped_column_not_in_file():
    df = pd.DataFrame({"a1": [1], "a2": [2], "b1": [1], "b2": [2]})
    cfg = {"survey": {"columns": {"a": {"importance": "a1", "satisfaction": "a2"}, "b": {"importance": "b1", "satisfaction": "bb"}}}}
    with pytest.raises(SurveyError, match=r"column 'bb' \(satisfaction of outcome 'b' in \[survey.columns\]\) is not in the file"):
        survey_from_frame(df, config=cfg, **SCALES)


def test_declared_id_column_missing(tmp_path):
    with pytest.raises(SurveyError, match=r"s\.csv: the id column 'case' \(id_column\) is not in the file"):
        read_survey(survey_csv(tmp_path), id_column="case", **SCALES)


def test_profile_column_missing(tmp_path):
    with pytest.raises(SurveyError, match=r"profile column 'age' \(profile_columns\) is not in the file"):
        read_survey(survey_csv(tmp_path), config={"survey": {"profile_columns": ["age"]}}, **SCALES)


# ----------------------------------------------------------------------------- respondent ids
def test_duplicate_respondent_ids(tmp_path):
    rows = list(ROWS)
    rows[3] = rows[3].replace("r4", "r2")
    with pytest.raises(
        SurveyError,
        match=r"s\.csv: column 'respondent_id' repeats 1 respondent ids \[r2\] at rows \[3, 5\]; expected each id once",
    ):
        read_survey(survey_csv(tmp_path, rows), **SCALES)


def test_blank_respondent_ids(tmp_path):
    rows = list(ROWS)
    rows[1] = rows[1].replace("r2", "")
    rows[4] = rows[4].replace("r5", "  ")
    with pytest.raises(
        SurveyError, match=r"column 'respondent_id' has 2 blank respondent ids at rows \[3, 6\]; expected an id for every respondent"
    ):
        read_survey(survey_csv(tmp_path, rows), **SCALES)


def test_row_numbers_for_frames_are_index_labels():
    df = pd.DataFrame({"imp_a": [1, 2, "x"], "sat_a": [1, 2, 3], "imp_b": [1, 1, 1], "sat_b": [2, 2, 2]}, index=[10, 20, 30])
    with pytest.raises(SurveyError, match=r"<frame>: column 'imp_a' \(importance\) has 1 non-numeric values \(e\.g\. 'x'\) at rows \[30\]"):
        survey_from_frame(df, **SCALES)


# ----------------------------------------------------------------------------- ratings
def test_text_label_ratings_get_a_hint(tmp_path):
    rows = list(ROWS)
    rows[1] = "r2,4,Very important,9,2,PM"
    rows[4] = "r5,2,Not at all important,1,10,Eng"
    with pytest.raises(
        SurveyError,
        match=r"s\.csv: column 'imp_b' \(importance\) has 2 non-numeric values \(e\.g\. 'Very important', "
        r"'Not at all important'\) at respondents \[r2, r5\]; expected numeric ratings or blanks\. "
        r"They look like text labels: recode them",
    ):
        read_survey(survey_csv(tmp_path, rows), **SCALES)


def test_non_numeric_without_label_hint(tmp_path):
    rows = list(ROWS)
    rows[2] = "r3,1,3,5/10,5,Eng"
    with pytest.raises(SurveyError, match=r"column 'sat_a' \(satisfaction\) has 1 non-numeric values \(e\.g\. '5/10'\)") as info:
        read_survey(survey_csv(tmp_path, rows), **SCALES)
    assert "text labels" not in str(info.value)


def test_decimal_commas_are_numbers(tmp_path):
    p = write(tmp_path, "id;imp_a;sat_a;imp_b;sat_b;weight\n1;4;3;2;5;1,5\n2;3;3;2;1;0,5\n")
    s = read_survey(p, **SCALES)
    assert s.weight.tolist() == [1.5, 0.5]


def test_values_outside_declared_scale_hint_missing_codes(tmp_path):
    rows = list(ROWS)
    rows[0] = "r1,99,4,3,7,PM"
    rows[2] = "r3,99,3,5,5,Eng"
    with pytest.raises(
        SurveyError,
        match=r"s\.csv: column 'imp_a' has 2 values outside the declared importance scale 1-5 \(found 99\) at "
        r"respondents \[r1, r3\]; expected ratings from 1 to 5\. Values like 99 are often missing-value codes; "
        r"if so, declare them with --missing-codes 99",
    ):
        read_survey(survey_csv(tmp_path, rows), **SCALES)


def test_values_outside_declared_scale_without_hint(tmp_path):
    rows = list(ROWS)
    rows[3] = "r4,3,3,6,11,Exec"
    with pytest.raises(SurveyError, match=r"column 'sat_b' has 1 values outside the declared satisfaction scale 1-10 \(found 11\) at respondents \[r4\]") as info:
        read_survey(survey_csv(tmp_path, rows), **SCALES)
    assert "missing-value codes" not in str(info.value)


def test_many_offending_rows_are_capped_at_five():
    df = pd.DataFrame({"imp_a": [7] * 8, "sat_a": [1] * 8, "imp_b": [1] * 8, "sat_b": [1] * 8})
    with pytest.raises(SurveyError, match=r"has 8 values outside .* at rows \[0, 1, 2, 3, 4\] and 3 more;"):
        survey_from_frame(df, **SCALES)


def test_codes_among_inferred_ratings(tmp_path):
    rows = list(ROWS)
    rows[4] = "r5,2,5,1,99,Eng"
    with pytest.warns(LatentsegWarning, match="Importance scale not declared"):
        with pytest.raises(
            SurveyError,
            match=r"column 'sat_b' has 1 satisfaction values 99 at respondents \[r5\], far outside the other ratings "
            r"\(1-9\); .*declare them with --missing-codes 99",
        ):
            read_survey(survey_csv(tmp_path, rows))


def test_ratings_fitting_no_common_scale():
    df = pd.DataFrame({"imp_a": [1, 250], "sat_a": [1, 2], "imp_b": [3, 4], "sat_b": [1, 2]})
    with pytest.raises(SurveyError, match=r"cannot infer the importance scale: ratings range from 1 to 250, .* declare it with --imp-scale"):
        survey_from_frame(df, sat_scale="1-5")


def test_outcome_without_any_rating(tmp_path):
    rows = [",".join(r.split(",")[:2]) + ",," + ",".join(r.split(",")[3:]) for r in ROWS]
    with pytest.raises(
        SurveyError,
        match=r"s\.csv: outcome 'b' has no importance ratings at all \(column 'imp_b' is empty or holds only "
        r"missing-value codes\); expected at least one rating per outcome",
    ):
        read_survey(survey_csv(tmp_path, rows), **SCALES)


def test_outcome_with_only_missing_codes():
    df = pd.DataFrame({"imp_a": [1, 2], "sat_a": [99, 99], "imp_b": [3, 4], "sat_b": [1, 2]})
    with pytest.raises(SurveyError, match=r"outcome 'a' has no satisfaction ratings at all \(column 'sat_a'"):
        survey_from_frame(df, missing_codes=[99], **SCALES)


def test_spss_value_label_named_in_hint(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame({"imp_a": [1.0, 5.0, 9.0], "sat_a": [2.0, 3.0, 4.0], "imp_b": [1.0, 2.0, 3.0], "sat_b": [4.0, 4.0, 4.0]})
    p = tmp_path / "s.sav"
    pyreadstat.write_sav(df, str(p), variable_value_labels={"imp_a": {1.0: "Not important", 9.0: "Don't know"}})
    with pytest.raises(SurveyError, match=r"column 'imp_a' has 1 values outside .*its SPSS value label is \"Don't know\""):
        read_survey(p, imp_scale="1-5", sat_scale="1-5")


def test_non_numeric_and_negative_duration_and_weight():
    base = {"imp_a": [1, 2], "sat_a": [1, 2], "imp_b": [3, 4], "sat_b": [1, 2]}
    with pytest.raises(SurveyError, match=r"column 'duration' \(duration\) has 1 non-numeric values \(e\.g\. '5 min'\)"):
        survey_from_frame(pd.DataFrame({**base, "duration": ["300", "5 min"]}), **SCALES)
    with pytest.raises(SurveyError, match=r"column 'weight' \(weight\) has 1 negative values at rows \[0\]; expected numbers >= 0"):
        survey_from_frame(pd.DataFrame({**base, "weight": [-1.0, 2.0]}), **SCALES)


def test_bad_scale_text():
    with pytest.raises(ConfigError, match=r"scale must look like '1-5'"):
        survey_from_frame(pd.DataFrame({"imp_a": [1], "sat_a": [1], "imp_b": [1], "sat_b": [1]}), imp_scale="five")


def test_outcomes_file_problems(tmp_path):
    p = survey_csv(tmp_path)
    bad_cols = write(tmp_path, "name,text\na,A\n", "outcomes.csv")
    with pytest.raises(SurveyError, match=r"outcomes\.csv: outcomes file needs an 'outcome' column"):
        read_survey(p, outcomes_file=bad_cols, **SCALES)
    no_match = write(tmp_path, "outcome,statement\nx,X\ny,Y\n", "outcomes2.csv")
    with pytest.raises(SurveyError, match=r"outcomes2\.csv: none of its 2 outcomes .* is an outcome of"):
        read_survey(p, outcomes_file=no_match, **SCALES)
    with pytest.raises(SurveyError, match=r"Outcomes file .*missing\.csv: no such file"):
        read_survey(p, outcomes_file=tmp_path / "missing.csv", **SCALES)


# ----------------------------------------------------------------------------- config
def test_config_defaults_and_reference():
    cfg = load_config(None)
    assert cfg == DEFAULT_CONFIG and cfg is not DEFAULT_CONFIG
    assert cfg["model"]["random_seed"] == 20261122 and cfg["select"]["models"] == ["kmeans", "gmm", "lca", "bayes-gmm"]
    table = config_reference_markdown()
    for key in KEYS:
        assert f"`{key.dotted}" in table


def test_config_file_merges_over_defaults(tmp_path):
    p = write(tmp_path, '[cleaning]\nmax_unrated = 0.1\n[select]\nk_max = 6\n[profile.names]\n1 = "Speed seekers"\n', "latentseg.toml")
    cfg = load_config(p)
    assert cfg["cleaning"]["max_unrated"] == 0.1 and cfg["cleaning"]["min_respondents"] == 100
    assert cfg["select"]["k_max"] == 6 and cfg["profile"]["names"] == {"1": "Speed seekers"}
    assert cfg["size"]["arpu"] == 0.0 and isinstance(merge_config({"size": {"arpu": 12}})["size"]["arpu"], float)


def test_config_from_current_directory(tmp_path, monkeypatch):
    write(tmp_path, '[model]\nn_init = 3\n', "latentseg.toml")
    monkeypatch.chdir(tmp_path)
    assert load_config(None)["model"]["n_init"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[survey]\nid_colum = 'x'\n", r"latentseg\.toml: unknown key 'survey\.id_colum' \(did you mean 'id_column'\?\)"),
        ("[modle]\nn_init = 3\n", r"latentseg\.toml: unknown section '\[modle\]' \(did you mean 'model'\?\)"),
        ("[cleaning]\nmax_unrated = 'lots'\n", r"latentseg\.toml: 'cleaning\.max_unrated' must be a number in \[0, 1\]; got 'lots' \(string\)"),
        ("[cleaning]\nmax_unrated = 1.5\n", r"'cleaning\.max_unrated' must be a number in \[0, 1\]; got 1\.5"),
        ("[cleaning]\nstraightliners = 1\n", r"'cleaning\.straightliners' must be a boolean; got 1 \(integer\)"),
        ("[model]\nn_init = 2.5\n", r"'model\.n_init' must be a integer >= 1; got 2\.5 \(number\)"),
        ("[model]\nmodel = 'lda'\n", r"'model\.model' must be a string, one of 'kmeans', 'gmm'"),
        ("[select]\nmodels = ['gmm', 'hmm']\n", r"'select\.models' must be a list of strings, one of"),
        ("[select]\nk_min = 5\nk_max = 4\n", r"'select\.k_max' \(4\) must be at least 'select\.k_min' \(5\)"),
        ("[survey]\nmissing_codes = [99, 'DK']\n", r"'survey\.missing_codes' must be a list of numbers"),
        ("[survey]\nimp_scale = 'high'\n", r"'survey\.imp_scale' must be a string; got 'high'"),
        ("[survey]\nimp_pattern = 'imp_.+'\n", r"'survey\.imp_pattern': 'imp_\.\+' needs a group for the outcome id"),
        ("[survey.columns]\na = {importance = 'x'}\n", r"'survey\.columns\.a' needs both importance and satisfaction columns; 'satisfaction' is missing"),
        ("[survey.outcomes]\na = {statment = 'x'}\n", r"unknown key 'survey\.outcomes\.a\.statment' \(did you mean 'statement'\?\)"),
        ("[report]\ndimensions = ['speed']\n", r"'report\.dimensions' must be a list of strings; got \['speed'\] \(list\), which needs exactly two names or none"),
        ("[survey\nid_column = 1\n", r"Config file '.*latentseg\.toml' is not valid TOML"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, message):
    p = write(tmp_path, text, "latentseg.toml")
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_config_file_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"Config file '.*nope\.toml' does not exist"):
        load_config(tmp_path / "nope.toml")


def test_outcomes_file_relative_to_config(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    p = write(sub, '[survey]\noutcomes_file = "outcomes.csv"\n', "latentseg.toml")
    assert load_config(p)["survey"]["outcomes_file"] == str(sub / "outcomes.csv")


def test_messages_are_one_line(tmp_path):
    rows = list(ROWS)
    rows[0] = "r1,7,4,3,7,PM"
    with pytest.raises(SurveyError) as info:
        read_survey(survey_csv(tmp_path, rows), **SCALES)
    assert "\n" not in str(info.value) and re.search(r"s\.csv", str(info.value))


def test_nan_safe_on_all_missing_optional_columns():
    df = pd.DataFrame({"imp_a": [1, 2], "sat_a": [1, 2], "imp_b": [3, 4], "sat_b": [1, 2], "duration": [np.nan, np.nan]})
    s = survey_from_frame(df, **SCALES)
    assert s.duration is not None and s.duration.isna().all()
