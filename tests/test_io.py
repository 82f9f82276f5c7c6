"""Reading surveys: formats, encodings, layouts, column conventions, special columns, config."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pandas as pd
import pytest

from latentseg.config import load_config
from latentseg.errors import LatentsegWarning, SurveyError
from latentseg.io import read_survey, read_table, survey_from_frame
from latentseg.io.columns import find_rating_columns
from latentseg.io.survey import Scale

SCALES = {"imp_scale": "1-5", "sat_scale": "1-10"}


def survey_frame(n: int = 8, m: int = 3, seed: int = 0, names: list[str] | None = None) -> pd.DataFrame:
    """A small wide survey table: respondent_id, imp_<o>, sat_<o>, role, duration."""
    rng = np.random.default_rng(seed)
    outcomes = names or [f"o{j}" for j in range(m)]
    data: dict[str, object] = {"respondent_id": [f"r{i:03d}" for i in range(1, n + 1)]}
    for o in outcomes:
        data[f"imp_{o}"] = rng.integers(1, 6, n)
    for o in outcomes:
        data[f"sat_{o}"] = rng.integers(1, 11, n)
    data["role"] = rng.choice(["PM", "Engineer", "Exec"], n)
    data["duration"] = rng.integers(200, 900, n)
    return pd.DataFrame(data)


def check_same(survey, df: pd.DataFrame, outcomes: list[str]) -> None:
    assert survey.outcome_ids == outcomes
    np.testing.assert_array_equal(survey.importance.to_numpy(), df[[f"imp_{o}" for o in outcomes]].to_numpy(float))
    np.testing.assert_array_equal(survey.satisfaction.to_numpy(), df[[f"sat_{o}" for o in outcomes]].to_numpy(float))
    assert survey.respondent_ids.tolist() == df["respondent_id"].tolist()


# ----------------------------------------------------------------------------- CSV variants
def test_csv_round_trip_with_special_columns(tmp_path):
    df = survey_frame()
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    s = read_survey(p, **SCALES)
    check_same(s, df, ["o0", "o1", "o2"])
    assert list(s.profile.columns) == ["role"]
    assert s.duration is not None and s.duration.tolist() == df["duration"].astype(float).tolist()
    assert s.weight is None
    assert s.imp_scale == Scale(1, 5) and not s.imp_scale.inferred
    assert s.source == str(p)
    assert s.outcomes["statement"].tolist() == ["o0", "o1", "o2"]  # ids stand in
    assert s.importance.index.name == "respondent_id"


@pytest.mark.parametrize(
    ("sep", "encoding", "newline", "bom"),
    [
        (";", "utf-8", "\n", False),
        ("\t", "utf-8", "\r\n", False),
        ("|", "utf-8", "\n", False),
        (",", "utf-8", "\r\n", True),
        (";", "latin-1", "\r\n", False),
        (",", "cp1252", "\n", False),
        (",", "utf-16", "\n", False),
    ],
)
def test_csv_dialects_and_encodings(tmp_path, sep, encoding, newline, bom):
    df = survey_frame()
    df["role"] = ["Gérant", "Café", "Zoë", "PM", "Señor", "Jürgen", "Œuvre", "naïve"] if encoding != "latin-1" else [
        "Gérant", "Café", "Zoë", "PM", "Señor", "Jürgen", "Ångström", "naïve"
    ]
    text = df.to_csv(index=False, sep=sep, lineterminator=newline)
    raw = text.encode(encoding)
    if bom:
        raw = b"\xef\xbb\xbf" + raw
    p = tmp_path / "s.csv"
    p.write_bytes(raw)
    s = read_survey(p, **SCALES)
    check_same(s, df, ["o0", "o1", "o2"])
    assert s.profile["role"].tolist() == df["role"].tolist()
    if sep != ",":
        assert any("delimiter" in note for note in s.notes)
    if encoding in ("latin-1", "cp1252"):
        assert any("not valid UTF-8" in note for note in s.notes)


def test_gzip_csv(tmp_path):
    df = survey_frame()
    p = tmp_path / "s.csv.gz"
    p.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    check_same(read_survey(p, **SCALES), df, ["o0", "o1", "o2"])


def test_quoted_fields_with_delimiters_and_line_breaks(tmp_path):
    df = survey_frame(n=4)
    df["comment"] = ["fast, reliable", 'said "hi"', "two\nlines", ""]
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    s = read_survey(p, **SCALES)
    check_same(s, df, ["o0", "o1", "o2"])
    assert s.profile["comment"].tolist()[:3] == ["fast, reliable", 'said "hi"', "two\nlines"]


def test_unicode_and_html_outcome_names(tmp_path):
    names = ["<b>Speed</b>", "coût_total", "naïve café ☕", "[bold]x[/bold]"]
    df = survey_frame(names=names)
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False, encoding="utf-8")
    s = read_survey(p, **SCALES)
    check_same(s, df, names)


def test_three_hundred_outcomes(tmp_path):
    names = [f"out{j:03d}" for j in range(300)]
    df = survey_frame(n=30, names=names)
    p = tmp_path / "wide.csv"
    df.to_csv(p, index=False)
    s = read_survey(p, **SCALES)
    assert s.n_outcomes == 300 and s.n_respondents == 30
    check_same(s, df, names)


def test_missing_ratings_become_nan(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("id,imp_a,sat_a,imp_b,sat_b\n1,5,,3,NA\n2, 4 ,2,,7\n3,1,10,2,3\n")
    s = read_survey(p, **SCALES)
    # respondent ids are text, as written in the file
    assert np.isnan(s.satisfaction.loc["1", "a"]) and np.isnan(s.satisfaction.loc["1", "b"])
    assert s.importance.loc["2", "a"] == 4.0 and np.isnan(s.importance.loc["2", "b"])


# ----------------------------------------------------------------------------- Qualtrics
QUALTRICS = (
    'StartDate,EndDate,Status,IPAddress,Progress,Duration (in seconds),Finished,ResponseId,'
    'Q1_imp,Q1_sat,Q2_imp,Q2_sat,role\n'
    '"Start Date","End Date","Response Type","IP Address","Progress","Duration (in seconds)","Finished",'
    '"Response ID","How important is it to you? - Minimize the time\nto plan a project",'
    '"How satisfied are you? - Minimize the time\nto plan a project",'
    '"How important is it to you? - Minimize the risk of missing a deadline",'
    '"How satisfied are you? - Minimize the risk of missing a deadline","What is your role?"\n'
    '"{""ImportId"":""startDate""}","{""ImportId"":""endDate""}","{""ImportId"":""status""}",'
    '"{""ImportId"":""ipAddress""}","{""ImportId"":""progress""}","{""ImportId"":""duration""}",'
    '"{""ImportId"":""finished""}","{""ImportId"":""_recordId""}","{""ImportId"":""QID1_1""}",'
    '"{""ImportId"":""QID2_1""}","{""ImportId"":""QID1_2""}","{""ImportId"":""QID2_2""}",'
    '"{""ImportId"":""QID3""}"\n'
    "2026-01-01 10:00:00,2026-01-01 10:07:00,0,1.2.3.4,100,420,1,R_abc,5,3,4,8,PM\n"
    "2026-01-01 11:00:00,2026-01-01 11:09:00,0,1.2.3.5,100,540,1,R_def,2,9,5,1,Engineer\n"
    "2026-01-01 12:00:00,2026-01-01 12:01:00,0,1.2.3.6,100,61,1,R_ghi,3,4,3,5,Exec\n"
)


def test_qualtrics_export_detected(tmp_path):
    p = tmp_path / "qualtrics.csv"
    p.write_text(QUALTRICS, encoding="utf-8-sig")
    s = read_survey(p, **SCALES)
    assert s.respondent_ids.tolist() == ["R_abc", "R_def", "R_ghi"]
    assert s.outcome_ids == ["Q1", "Q2"]
    assert s.statements() == {
        "Q1": "Minimize the time\nto plan a project",
        "Q2": "Minimize the risk of missing a deadline",
    }
    assert s.importance["Q2"].tolist() == [4.0, 5.0, 3.0]
    assert s.duration.tolist() == [420.0, 540.0, 61.0]
    assert list(s.profile.columns) == ["role"]  # Qualtrics metadata left out
    assert any("Qualtrics" in n for n in s.notes)


def test_qualtrics_errors_name_spreadsheet_rows(tmp_path):
    p = tmp_path / "qualtrics.csv"
    p.write_text(QUALTRICS.replace("R_def,2,9", "R_def,2,99"))
    with pytest.raises(SurveyError, match=r"column 'Q1_sat' has 1 values outside .* respondents \[R_def\]"):
        read_survey(p, **SCALES)


# ----------------------------------------------------------------------------- other formats
def test_parquet(tmp_path):
    df = survey_frame()
    p = tmp_path / "s.parquet"
    df.to_parquet(p)
    check_same(read_survey(p, **SCALES), df, ["o0", "o1", "o2"])


def test_excel_with_sheet(tmp_path):
    df = survey_frame()
    p = tmp_path / "s.xlsx"
    with pd.ExcelWriter(p, engine="openpyxl") as xw:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(xw, sheet_name="About", index=False)
        df.to_excel(xw, sheet_name="Data", index=False)
    check_same(read_survey(p, sheet="Data", **SCALES), df, ["o0", "o1", "o2"])
    check_same(read_survey(p, sheet=1, **SCALES), df, ["o0", "o1", "o2"])
    with pytest.raises(SurveyError, match=r"has no sheet 'Dat'; expected one of 'About', 'Data'"):
        read_survey(p, sheet="Dat", **SCALES)


def test_excel_blank_header_cells(tmp_path):
    df = survey_frame()
    df[""] = np.nan  # an empty column with no header, as spreadsheets leave them
    p = tmp_path / "s.xlsx"
    df.to_excel(p, index=False)
    s = read_survey(p, **SCALES)
    assert list(s.profile.columns) == ["role"]


def test_excel_without_openpyxl(tmp_path, monkeypatch):
    p = tmp_path / "s.xlsx"
    survey_frame().to_excel(p, index=False)
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(SurveyError, match=r'needs openpyxl.*pip install "latentseg\[excel\]"'):
        read_survey(p, **SCALES)


def _write_sav(path, df, labels, column_labels=None):
    pyreadstat = pytest.importorskip("pyreadstat")
    pyreadstat.write_sav(df, str(path), variable_value_labels=labels, column_labels=column_labels)


def test_spss_keeps_value_labels_and_uses_variable_labels(tmp_path):
    df = survey_frame().drop(columns=["role"])
    df["respondent_id"] = np.arange(1, len(df) + 1)
    labels = {"imp_o0": {1.0: "Not at all important", 5.0: "Extremely important"}}
    column_labels = {c: c for c in df.columns}
    column_labels["imp_o1"] = "Importance - Finish on budget"
    column_labels["sat_o1"] = "Satisfaction - Finish on budget"
    p = tmp_path / "s.sav"
    _write_sav(p, df, labels, column_labels)
    s = read_survey(p, **SCALES)
    np.testing.assert_array_equal(s.importance.to_numpy(), df[["imp_o0", "imp_o1", "imp_o2"]].to_numpy(float))
    assert s.value_labels["imp_o0"][5.0] == "Extremely important"
    assert s.statements()["o1"] == "Finish on budget"


def test_spss_without_pyreadstat(tmp_path, monkeypatch):
    p = tmp_path / "s.sav"
    _write_sav(p, survey_frame().drop(columns=["role", "respondent_id"]), {})
    monkeypatch.setitem(sys.modules, "pyreadstat", None)
    with pytest.raises(SurveyError, match=r'needs pyreadstat.*pip install "latentseg\[spss\]"'):
        read_survey(p, **SCALES)


def test_content_decides_format(tmp_path):
    df = survey_frame()
    p = tmp_path / "actually_excel.csv"
    df.to_excel(p, index=False, engine="openpyxl")
    check_same(read_survey(p, **SCALES), df, ["o0", "o1", "o2"])


def test_read_table_any_numeric_table(tmp_path):
    p = tmp_path / "scores.csv"
    p.write_text("a;b\n1,5;2\n3;4\n")
    t = read_table(p)
    assert t.columns.tolist() == ["a", "b"] and len(t) == 2


# ----------------------------------------------------------------------------- columns
@pytest.mark.parametrize(
    ("imp", "sat"),
    [("imp_{}", "sat_{}"), ("importance_{}", "satisfaction_{}"), ("{}_imp", "{}_sat"), ("Imp.{}", "SAT-{}")],
)
def test_column_conventions(imp, sat):
    cols = ["id"] + [imp.format(o) for o in "abc"] + [sat.format(o) for o in "abc"] + ["age"]
    rc = find_rating_columns(cols)
    assert rc.outcomes == ("a", "b", "c")
    assert rc.importance == tuple(imp.format(o) for o in "abc")
    assert rc.satisfaction == tuple(sat.format(o) for o in "abc")


def test_column_patterns_and_mapping(tmp_path):
    df = pd.DataFrame({"Q5_speed_1": [5, 4], "Q6_speed_1": [2, 3], "Q5_cost_1": [1, 2], "Q6_cost_1": [3, 3]})
    s = survey_from_frame(
        df, config={"survey": {"imp_pattern": "Q5_{outcome}_1", "sat_pattern": r"Q6_(?P<outcome>\w+)_1"}},
        imp_scale="1-5", sat_scale="1-5",
    )
    assert s.outcome_ids == ["speed", "cost"]
    mapped = survey_from_frame(
        df,
        config={"survey": {"columns": {
            "fast": {"importance": "Q5_speed_1", "satisfaction": "Q6_speed_1"},
            "cheap": {"importance": "Q5_cost_1", "satisfaction": "Q6_cost_1"},
        }}},
        imp_scale="1-5", sat_scale="1-5",
    )
    assert mapped.outcome_ids == ["fast", "cheap"]
    assert mapped.importance["cheap"].tolist() == [1.0, 2.0]


def test_config_file_drives_reading(tmp_path):
    df = survey_frame().rename(columns={"respondent_id": "case", "duration": "secs"})
    df["w"] = 1.5
    df.loc[0, "imp_o1"] = 99
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    (tmp_path / "outcomes.csv").write_text(
        "outcome,statement,job_step\no0,Minimize the time to plan,Plan\no2,Minimize rework,Execute\nzz,Unknown,X\n"
    )
    cfg_path = tmp_path / "latentseg.toml"
    cfg_path.write_text(
        '[survey]\nid_column = "case"\nduration_column = "secs"\nweight_column = "w"\n'
        'imp_scale = "1-5"\nsat_scale = "1-10"\nmissing_codes = [99]\noutcomes_file = "outcomes.csv"\n'
        'profile_columns = ["role"]\n'
        '[survey.outcomes]\no1 = {statement = "Minimize cost overruns", job_step = "Monitor"}\n'
    )
    s = read_survey(p, config=load_config(cfg_path))
    assert s.respondent_ids[0] == "r001"
    assert np.isnan(s.importance.iloc[0, 1])
    assert s.weight.tolist() == [1.5] * 8
    assert s.duration.tolist() == df["secs"].astype(float).tolist()
    assert s.outcomes.loc["o0", "job_step"] == "Plan"
    assert s.outcomes.loc["o1", "statement"] == "Minimize cost overruns"
    assert s.outcomes.loc["o2", "statement"] == "Minimize rework"
    assert any("1 ratings set to missing" in n for n in s.notes)
    assert any("not in the survey were ignored (zz)" in n for n in s.notes)
    # explicit arguments override the config
    s2 = read_survey(p, config=load_config(cfg_path), sat_scale="0-10")
    assert str(s2.sat_scale) == "0-10"


# ----------------------------------------------------------------------------- special columns
def test_id_detection_and_numbering():
    df = survey_frame().drop(columns=["respondent_id"])
    s = survey_from_frame(df, **SCALES)
    assert s.respondent_ids.tolist() == [str(i) for i in range(1, 9)]  # row numbers, as text like every id
    assert any("respondents numbered 1..n" in n for n in s.notes)
    df2 = survey_frame().rename(columns={"respondent_id": "ResponseId", "duration": "Duration (in seconds)"})
    s2 = survey_from_frame(df2, **SCALES)
    assert s2.respondent_ids.tolist() == df2["ResponseId"].tolist()
    assert s2.duration is not None


def test_ids_from_named_index():
    df = survey_frame().set_index("respondent_id")
    s = survey_from_frame(df, **SCALES)
    assert s.respondent_ids.tolist() == df.index.tolist()


def test_float_frame_with_contiguous_blocks_not_mutated():
    values = np.array([[1.0, 3.0, 2.0, 1.0], [99.0, 4.0, 3.0, 2.0]])
    df = pd.DataFrame(values.copy(), columns=["imp_a", "imp_b", "sat_a", "sat_b"])
    s = survey_from_frame(df, missing_codes=[99], imp_scale="1-5", sat_scale="1-10")
    assert np.isnan(s.importance.iloc[1, 0])
    np.testing.assert_array_equal(df.to_numpy(), values)


def test_csv_trailing_delimiter_column_dropped(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("id,imp_a,sat_a,imp_b,sat_b,\n1,5,2,3,3,\n2,4,4,1,5,\n")
    s = read_survey(p, imp_scale="1-5", sat_scale="1-5")
    assert s.outcome_ids == ["a", "b"] and list(s.profile.columns) == []


def test_frame_not_mutated_and_to_frame_round_trip():
    df = survey_frame()
    df.loc[2, "imp_o0"] = 99
    before = df.copy()
    s = survey_from_frame(df, missing_codes=[99], **SCALES)
    pd.testing.assert_frame_equal(df, before)
    again = survey_from_frame(s.to_frame(), **SCALES)
    pd.testing.assert_frame_equal(again.importance, s.importance)
    pd.testing.assert_frame_equal(again.satisfaction, s.satisfaction)
    assert again.respondent_ids.tolist() == s.respondent_ids.tolist()


# ----------------------------------------------------------------------------- scales
def test_scales_inferred_with_warning():
    df = survey_frame(n=40, seed=3)
    with pytest.warns(LatentsegWarning) as record:
        s = survey_from_frame(df)
    assert s.imp_scale == Scale(1, 5, inferred=True) and s.sat_scale == Scale(1, 10, inferred=True)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "Importance scale not declared: inferred 1-5 from the ratings (observed 1-5)" in messages[0]
    assert "Satisfaction scale not declared: inferred 1-10" in messages[1]
    assert any("inferred 1-5" in n for n in s.notes)


@pytest.mark.parametrize(
    ("low", "high", "expected"), [(0, 10, "0-10"), (1, 7, "1-7"), (2, 5, "1-5"), (0, 100, "0-100"), (1, 4, "1-4")]
)
def test_scale_inference_picks_narrowest_common_scale(low, high, expected):
    df = pd.DataFrame({"imp_a": [low, high], "sat_a": [1, 5], "imp_b": [low, high], "sat_b": [2, 3]})
    with pytest.warns(LatentsegWarning, match="Importance scale not declared"):
        s = survey_from_frame(df, sat_scale="1-5")
    assert str(s.imp_scale) == expected and s.imp_scale.inferred


def test_missing_codes_then_declared_scale():
    df = survey_frame()
    df.loc[[1, 4], "sat_o2"] = -9
    df.loc[3, "imp_o0"] = 99
    s = survey_from_frame(df, missing_codes=[99, -9], **SCALES)
    assert np.isnan(s.satisfaction.loc["r002", "o2"]) and np.isnan(s.importance.loc["r004", "o0"])
    assert int(s.importance.isna().sum().sum() + s.satisfaction.isna().sum().sum()) == 3


# ----------------------------------------------------------------------------- streaming paths
@pytest.fixture
def small_batches(monkeypatch):
    """Parse CSV in tiny batches, so files of a few kB exercise the batch-by-batch reader."""
    from latentseg.io import readers

    monkeypatch.setattr(readers, "_BLOCK_SIZE", 512)
    return readers


def test_streamed_read_matches_whole_table_read(tmp_path, small_batches):
    df = survey_frame(n=300, m=5, seed=4)
    df.loc[df.index % 7 == 0, "imp_o2"] = np.nan
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    s = read_survey(p, **SCALES)
    opts = small_batches._options(
        None, imp_scale="1-5", sat_scale="1-5", missing_codes=(), outcomes_file=None, id_column=None,
        duration_column=None, weight_column=None,
    )  # the reader's hint knows the rating and id columns from the header
    assert isinstance(small_batches._read_raw(p, hint=small_batches._Hint(opts, str(p))).columns,
                      small_batches._StreamedColumns)
    check_same(s, df, [f"o{j}" for j in range(5)])
    assert s.profile["role"].tolist() == df["role"].tolist()
    assert s.duration.tolist() == df["duration"].astype(float).tolist()


def test_late_surprises_fall_back_to_the_whole_table(tmp_path, small_batches):
    df = survey_frame(n=200, seed=5)
    df["price"] = np.arange(200).astype(object)
    df.loc[180, "price"] = "12.5 EUR"  # a profile column that turns to text after the first batch
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    s = read_survey(p, **SCALES)
    check_same(s, df, ["o0", "o1", "o2"])
    assert s.profile["price"].iloc[180] == "12.5 EUR"
    df["imp_o1"] = df["imp_o1"].astype(object)
    df.loc[190, "imp_o1"] = "Very important"  # a text label deep in the file
    df.to_csv(p, index=False)
    with pytest.raises(SurveyError, match=r"column 'imp_o1' \(importance\) has 1 non-numeric values .* respondents \[r191\]"):
        read_survey(p, **SCALES)


def test_late_non_utf8_and_quoted_line_breaks(tmp_path, small_batches, monkeypatch):
    monkeypatch.setattr(small_batches, "_SNIFF_BYTES", 256)  # the head looks like plain UTF-8 without quotes
    df = survey_frame(n=120, seed=6)
    df["comment"] = "ok"
    df.loc[100, "comment"] = "two\nlines, quoted"
    df.loc[110, "role"] = "Gérant"
    p = tmp_path / "s.csv"
    p.write_bytes(df.to_csv(index=False).encode("cp1252"))
    s = read_survey(p, **SCALES)
    check_same(s, df, ["o0", "o1", "o2"])
    assert s.profile.loc["r111", "role"] == "Gérant" and s.profile.loc["r101", "comment"] == "two\nlines, quoted"
    assert any("Windows-1252" in n for n in s.notes)


def test_ragged_row_deep_in_a_streamed_file(tmp_path, small_batches):
    df = survey_frame(n=150, seed=7)
    lines = df.to_csv(index=False).splitlines()
    lines[140] += ",extra"
    p = tmp_path / "s.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(SurveyError, match=r"ragged rows: row 141 has 10 fields where the header has 9"):
        read_survey(p, **SCALES)
