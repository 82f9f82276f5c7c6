"""Hostile survey files: nothing lost and nothing silently wrong in the reader.

Respondent ids are text end to end (``7`` and ``007`` are two respondents, 20-digit ids stay
exact, leading zeros survive ``score -o`` and a saved model, Excel's numbers lose their ``.0``);
a few stray ratings outside the conventional scale the rest of a block fits are an error when the
scale is not declared; formula cells without a saved value in an ``.xlsx`` are an error; and
``validate`` of a very wide file stays in bounded memory. Everything is written under tmp_path.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from latentseg.cli.app import app
from latentseg.errors import SurveyError
from latentseg.io import read_survey, survey_from_frame

SCALES = {"imp_scale": "1-5", "sat_scale": "1-5"}
INFERRED = pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")  # scales left to inference


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error(res, pattern: str) -> str:
    """Exit 1, exactly one line on stderr starting with 'error:' and matching, no traceback."""
    assert res.exit_code == 1, (res.exit_code, res.output)
    err = [line for line in res.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith("error:"), res.stderr
    assert re.search(pattern, err[0]), err[0]
    assert "Traceback" not in res.output and "Traceback" not in res.stderr
    return err[0]


def _ratings(n: int = 120, m: int = 3, seed: int = 0) -> pd.DataFrame:
    """Ratings on 1-5 for m outcomes (every value 1-5 used), n respondents."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for block in ("imp", "sat"):
        for j in range(m):
            data[f"{block}_o{j}"] = rng.integers(1, 6, n)
    return pd.DataFrame(data)


def _survey_csv(path: Path, ids: list[str], ratings: pd.DataFrame | None = None, extra: str = "") -> Path:
    """Write ids as raw text (never through a number), then the ratings."""
    ratings = _ratings(len(ids)) if ratings is None else ratings
    lines = [",".join(["respondent_id", *ratings.columns])]
    for rid, row in zip(ids, ratings.astype(str).to_numpy().tolist(), strict=True):
        lines.append(",".join([rid, *row]))
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # nothing is ever written into the repository
    return tmp_path


# ----------------------------------------------------------------------------- ids are text
def test_7_and_007_are_two_respondents(tmp_path):
    ids = ["7", "007", "0007", "70", "7.0"] + [str(100 + i) for i in range(5, 120)]  # all numbers to a parser
    s = read_survey(_survey_csv(tmp_path / "s.csv", ids), **SCALES)
    assert s.respondent_ids.tolist() == ids
    assert s.respondent_ids.dtype == "str"
    # and the same as a real duplicate is still refused, judged on the text
    dup = ["7", "007", "7"] + [str(100 + i) for i in range(3, 120)]
    with pytest.raises(SurveyError, match=r"repeats 1 respondent ids \[7\] at respondents|at rows \[2, 4\]"):
        read_survey(_survey_csv(tmp_path / "d.csv", dup), **SCALES)


def test_twenty_digit_ids_stay_distinct_and_exact(tmp_path):
    ids = [str(12345678901234567890 + i) for i in range(120)]  # equal as float64
    s = read_survey(_survey_csv(tmp_path / "s.csv", ids), **SCALES)
    assert s.respondent_ids.tolist() == ids and s.respondent_ids.is_unique
    # Parquet int64 ids past 2**53 keep every digit (no float detour)
    big = [2**53 + 1 + i for i in range(120)]
    frame = _ratings(120)
    frame.insert(0, "respondent_id", pd.array(big, dtype="int64"))
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    s2 = read_survey(tmp_path / "s.parquet", **SCALES)
    assert s2.respondent_ids.tolist() == [str(b) for b in big]


def test_frames_and_row_numbers_give_text_ids():
    df = _ratings(120)
    s = survey_from_frame(df, **SCALES)  # no id column: row numbers, as text
    assert s.respondent_ids.tolist()[:3] == ["1", "2", "3"] and s.respondent_ids.dtype == "str"
    s2 = survey_from_frame(df.assign(id=np.arange(120) * 1.0), **SCALES)  # float ids lose the .0
    assert s2.respondent_ids.tolist()[:3] == ["0", "1", "2"]


def test_leading_zeros_kept_through_score_output(here):
    ids = [f"{i:05d}" for i in range(120)]
    _survey_csv(here / "s.csv", ids)
    for out in ("scores.csv", "scores.parquet"):
        res = _invoke("-q", "score", "s.csv", "-o", out, "--no-clean", "--imp-scale", "1-5", "--sat-scale", "1-5")
        assert res.exit_code == 0, res.output
        if out.endswith(".csv"):
            got = pd.read_csv(here / out, dtype=str)["respondent_id"].tolist()
            assert (here / out).read_text().splitlines()[1].startswith("00000,")
        else:
            got = pd.read_parquet(here / out)["respondent_id"].tolist()
        assert got == ids, out


@INFERRED
def test_leading_zeros_kept_in_a_saved_model_and_assign_output(here):
    from latentseg.deliver.artifacts import load_model

    ids = [f"{i:04d}" for i in range(120)]
    _survey_csv(here / "s.csv", ids)
    res = _invoke("-q", "fit", "s.csv", "--k", "2", "--model", "kmeans", "--n-init", "2", "--seed", "1", "--save", "m")
    assert res.exit_code == 0, res.output
    saved = load_model(here / "models" / "m")
    kept = saved.result.respondent_ids.tolist()  # cleaning may leave a few out
    assert len(kept) > 100 and set(kept) <= set(ids) and kept == sorted(kept, key=ids.index)
    assert saved.result.respondent_ids.dtype == "str"
    res = _invoke("-q", "assign", "models/m", "s.csv", "-o", "out.csv")
    assert res.exit_code == 0, res.output
    assert pd.read_csv(here / "out.csv", dtype=str)["respondent_id"].tolist() == ids


def test_excel_numeric_ids_have_no_float_artefacts(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ratings = _ratings(120)
    ws.append(["respondent_id", *ratings.columns])
    ids: list[object] = [7, 8.0, "007", 12345678901, 2.5] + [1000 + i for i in range(5, 120)]
    for rid, row in zip(ids, ratings.to_numpy().tolist(), strict=True):
        ws.append([rid, *row])
    wb.save(tmp_path / "s.xlsx")
    s = read_survey(tmp_path / "s.xlsx", **SCALES)
    assert s.respondent_ids.tolist()[:5] == ["7", "8", "007", "12345678901", "2.5"]
    assert s.respondent_ids.dtype == "str"


def test_spss_numeric_ids_have_no_float_artefacts(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    df = _ratings(120).astype(float)
    df.insert(0, "respondent_id", np.arange(1, 121, dtype=float))
    pyreadstat.write_sav(df, str(tmp_path / "s.sav"))
    s = read_survey(tmp_path / "s.sav", **SCALES)
    assert s.respondent_ids.tolist()[:3] == ["1", "2", "3"]


# ----------------------------------------------------------------------------- stray scale values
def _with(frame: pd.DataFrame, cells: dict[tuple[int, str], float]) -> pd.DataFrame:
    frame = frame.copy()
    for (row, col), value in cells.items():
        frame.loc[row, col] = value
    return frame


@INFERRED
def test_a_stray_7_on_a_1_to_5_block_is_an_error_naming_column_and_rows(here):
    ids = [f"r{i:03d}" for i in range(120)]
    _survey_csv(here / "s.csv", ids, _with(_ratings(), {(3, "sat_o1"): 7, (40, "sat_o1"): 7}))
    err = _one_error(_invoke("validate", "s.csv"), r"column 'sat_o1'")
    assert "respondents [r003, r040]" in err and "outside the 1-5 scale" in err
    assert "--missing-codes 7" in err and "--sat-scale 1-7" in err
    # a library call says the same
    with pytest.raises(SurveyError, match=r"column 'sat_o1' has 2 satisfaction ratings \(7\)"):
        read_survey(here / "s.csv")


def test_a_stray_99_names_the_first_five_rows_and_suggests_missing_codes(here):
    ids = [f"r{i:03d}" for i in range(600)]  # 1,800 importance ratings: up to 5 may be stray
    _survey_csv(here / "s.csv", ids, _with(_ratings(600), {(i, "imp_o2"): 99 for i in (1, 5, 9, 11, 30)}))
    err = _one_error(_invoke("validate", "s.csv"), r"column 'imp_o2' has 5 importance ratings \(99\)")
    assert "respondents [r001, r005, r009, r011, r030]" in err and "--missing-codes 99" in err
    ok = _invoke("validate", "s.csv", "--missing-codes", "99", "--json")
    assert ok.exit_code == 0, ok.output
    # strays in several columns: the first column named, the others counted
    cells = {(i, "imp_o2"): 99 for i in (1, 5, 9)} | {(7, "imp_o0"): 98}
    _survey_csv(here / "t.csv", ids, _with(_ratings(600), cells))
    err = _one_error(_invoke("validate", "t.csv"), r"column 'imp_o0' has 1 importance rating \(98\) at respondents \[r007\]")
    assert "(3 more in column 'imp_o2')" in err and "If 98, 99 mean 'no answer'" in err and "--missing-codes 98,99" in err


@INFERRED
def test_a_declared_scale_keeps_its_behaviour(here):
    ids = [f"r{i:03d}" for i in range(120)]
    _survey_csv(here / "s.csv", ids, _with(_ratings(), {(3, "sat_o1"): 7}))
    assert _invoke("validate", "s.csv", "--sat-scale", "1-7").exit_code == 0
    s = read_survey(here / "s.csv", imp_scale="1-5", sat_scale="1-7")
    assert s.satisfaction.loc["r003", "o1"] == 7.0
    # declared too narrow: the declared-scale error, as before
    _one_error(_invoke("validate", "s.csv", "--sat-scale", "1-5"), r"outside the declared satisfaction scale 1-5")


@INFERRED
def test_real_wide_scales_and_zeros_are_not_strays(tmp_path):
    rng = np.random.default_rng(3)
    seven = pd.DataFrame({f"{b}_o{j}": rng.integers(1, 8, 200) for b in ("imp", "sat") for j in range(3)})
    s = read_survey(_survey_csv(tmp_path / "a.csv", [f"r{i}" for i in range(200)], seven))
    assert str(s.imp_scale) == "1-7" and s.imp_scale.inferred
    # a 0-10 block where 0 is rare: 0-10 is a scale of its own, never a stray below 1-10
    ten = pd.DataFrame({f"{b}_o{j}": rng.integers(1, 11, 200) for b in ("imp", "sat") for j in range(3)})
    ten.loc[4, "imp_o1"] = 0
    s = read_survey(_survey_csv(tmp_path / "b.csv", [f"r{i}" for i in range(200)], ten))
    assert str(s.imp_scale) == "0-10"
    # fewer than 100 ratings in a block: 1% is under one rating, so no stray rule (inferred 1-7)
    small = _with(_ratings(10), {(3, "sat_o1"): 7})
    s = read_survey(_survey_csv(tmp_path / "c.csv", [f"r{i}" for i in range(10)], small))
    assert str(s.sat_scale) == "1-7"


def test_stray_error_through_a_real_subprocess(tmp_path):
    ids = [f"r{i:03d}" for i in range(120)]
    p = _survey_csv(tmp_path / "s.csv", ids, _with(_ratings(), {(8, "imp_o0"): 7}))
    proc = subprocess.run(
        [sys.executable, "-m", "latentseg", "validate", str(p)], capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "column 'imp_o0'" in errors[0] and "respondents [r008]" in errors[0]
    assert "--missing-codes" in errors[0]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


# ----------------------------------------------------------------------------- Excel formulas
def _formula_workbook(path: Path) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data 1"
    ratings = _ratings(20)
    ws.append(["respondent_id", *ratings.columns])
    for i, row in enumerate(ratings.to_numpy().tolist()):
        ws.append([f"r{i}", *row])
    ws["E3"] = "=B3+1"  # sat_o0 of r1: a formula openpyxl cannot calculate
    ws["F9"] = "=MIN(5, 2*2)"
    wb.save(path)
    return path


def test_xlsx_formula_cells_without_saved_values_are_an_error(here):
    _formula_workbook(here / "s.xlsx")
    err = _one_error(_invoke("validate", "s.xlsx", "--imp-scale", "1-5", "--sat-scale", "1-5"),
                     r"2 formula cells without a saved value")
    assert "'Data 1'!E3, 'Data 1'!F9" in err
    with pytest.raises(SurveyError, match=r"'Data 1'!E3"):
        read_survey(here / "s.xlsx", **SCALES)


def test_xlsx_formula_cells_with_saved_values_are_read(tmp_path):
    src = _formula_workbook(tmp_path / "f.xlsx")
    dst = tmp_path / "cached.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):  # what Excel writes: the formula and its result
                # an empty value is <v /> without lxml, <v></v> with it (openpyxl writes through either)
                data = re.sub(rb"<f>(B3\+1|MIN\(5, 2\*2\))</f>(?:<v\s*/>|<v></v>)", rb"<f>\1</f><v>4</v>", data)
            zout.writestr(item, data)
    s = read_survey(dst, **SCALES)
    assert s.satisfaction.loc["r1", "o0"] == 4.0 and s.satisfaction.loc["r7", "o1"] == 4.0


# ----------------------------------------------------------------------------- wide files
# VmHWM (the peak resident set of this process's own memory since exec), not ru_maxrss: Linux
# carries ru_maxrss over from the parent at fork/exec, so a large pytest process would hide it.
_CHILD = """
import re, sys
from latentseg.cli.app import main
sys.argv = ["latentseg", "validate", sys.argv[1], "--json"]
try:
    main()
except SystemExit as exc:
    code = exc.code
with open("/proc/self/status") as fh:
    peak = re.search(r"VmHWM:\\s*(\\d+) kB", fh.read()).group(1)
print("MAXRSS", peak, code, file=sys.stderr)
"""


def _peak_kb(path: Path) -> int:
    """Peak resident memory (kB) of a fresh interpreter running ``latentseg validate PATH``."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=300)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MAXRSS")][-1]
    _, kb, code = line.split()
    assert code in ("0", "None"), proc.stderr[-2000:]
    return int(kb)


def _wide_csv(path: Path, n: int, m: int) -> Path:
    """An id, 5 outcomes (10 rating columns) and m - 10 other columns of small ints."""
    vals = np.random.default_rng(0).integers(1, 6, size=(n, m))
    names = ["respondent_id", *(f"imp_o{j}" for j in range(5)), *(f"sat_o{j}" for j in range(5)), *(f"x{j}" for j in range(m - 10))]
    body = "\n".join(f"{i + 1}," + ",".join(map(str, row)) for i, row in enumerate(vals.tolist()))
    path.write_text(",".join(names) + "\n" + body + "\n")
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_validate_of_a_wide_file_stays_in_bounded_memory(tmp_path):
    small = _wide_csv(tmp_path / "small.csv", 240, 20)
    wide = _wide_csv(tmp_path / "wide.csv", 240, 20_000)  # ~10 MB
    grown = _peak_kb(wide) - _peak_kb(small)
    # the file's profile columns are never converted: ~50 MB here; reading them all (as
    # before) cost ~370 MB, and the 100,000-column version 2.5-4 GB
    assert grown < 150_000, f"validate of a 20,000-column file grew the peak by {grown / 1024:.0f} MB"


def test_header_longer_than_the_sniffed_megabyte(tmp_path):
    m = 60_000
    names = ["id", "imp_a", "sat_a", "imp_b", "sat_b", *(f"a_long_profile_question_{j:06d}" for j in range(m))]
    rows = [",".join([f"r{i}", "1", "2", "3", str(1 + i % 5), *("1" * m)]) for i in range(3)]
    p = tmp_path / "wide_header.csv"
    p.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    assert len(",".join(names)) > 1 << 20
    s = read_survey(p, profile=False, **SCALES)
    assert s.n_respondents == 3 and len(s.unread_profile) == m and s.profile.shape == (3, 0)
    assert s.profile_columns[:1] == ["a_long_profile_question_000000"]
    assert read_survey(p, **SCALES).profile.shape == (3, m)
