"""Hostile input and output: nothing lost and nothing silently wrong.

Every CSV writer neutralises formula cells (ids, statements, job steps, segment names) and
leaves numbers numeric; Markdown escapes HTML and pipes; the terminal never receives escape
sequences from user text; ``assign`` reads what the survey reader reads (encodings, delimiters,
gzip), refuses damaged or mislabelled files, unknown output extensions and a missing
``--id-column`` with one clear message, and keeps ids as text.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from latentseg.cli.app import app

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EVIL_IDS = ["=cmd|' /C calc'!A0", "-1+2", "@SUM(A1)", "+1", "\t=x", "007"]
ESC = "\x1b"


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error(res, pattern: str) -> str:
    """Exit 1, exactly one line on stderr starting with 'error:' and matching, no traceback."""
    import re

    assert res.exit_code == 1, (res.exit_code, res.output)
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), res.stderr
    assert re.search(pattern, err[0]), err[0]
    assert "Traceback" not in res.output and "Traceback" not in res.stderr
    return err[0]


def _cells(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _assert_no_formula(rows: list[list[str]], where: str) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START), (where, cell)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small saved features model whose first segment name is a formula."""
    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit

    rng = np.random.default_rng(0)
    X = pd.DataFrame(np.r_[rng.normal(0, 1, (40, 2)), rng.normal(6, 1, (40, 2))], columns=["a", "b"])
    result = fit(X, "gmm", 2, random_seed=0, n_init=1).with_labels(["=SUM(A1)", "Speed <b>"])
    path = tmp_path_factory.mktemp("models") / "m"
    save_model(path, result, meta={"data": {"kind": "features", "id_column": "respondent_id"}})
    return path


def _new_data(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ids = [f"{i:03d}" for i in range(n)]
    ids[: len(EVIL_IDS)] = EVIL_IDS
    return pd.DataFrame({"respondent_id": ids, "a": rng.normal(3, 3, n), "b": rng.normal(3, 3, n),
                         "note": ["Jos\u00e9 M\u00fcller \u2013 caf\u00e9"] * n})


def _read_ids(path: Path, sep: str = ",", compression: str | None = None) -> list[str]:
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, compression=compression)["respondent_id"].tolist()


SAFE_IDS = ["'" + i if i.startswith(FORMULA_START) else i for i in _new_data()["respondent_id"]]


def _survey_frame(n: int = 12) -> pd.DataFrame:
    """Ratings for three outcomes (importance 1-5, satisfaction 1-10) and a profile column."""
    i = np.arange(n)
    data: dict[str, object] = {"respondent_id": [f"r{k:02d}" for k in range(1, n + 1)]}
    for j in range(3):
        data[f"imp_o{j}"] = 1 + (i + j) % 5
    for j in range(3):
        data[f"sat_o{j}"] = 1 + (i + 2 * j) % 10
    data["role"] = np.where(i % 3 == 0, "PM", "Eng")
    return pd.DataFrame(data)


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # nothing is ever written into the repository
    return tmp_path


# ----------------------------------------------------------------------------- CSV writers
def test_safe_csv_cell_covers_tab_cr_and_numbers_as_text():
    from latentseg.io.files import safe_csv_cell, safe_csv_frame

    for payload in ("-1+2", "-5", "+33 6 12", "\tx", "\rx", "\uff1dcmd"):
        assert safe_csv_cell(payload) == "'" + payload
    frame = pd.DataFrame({"id": ["=x", "007"], "v": [-1.5, 2.0], "n": [-3, 4]}, index=pd.Index(["@i", "j"], name="=idx"))
    safe = safe_csv_frame(frame)
    assert safe["id"].tolist() == ["'=x", "007"] and safe.index.tolist() == ["'@i", "j"] and safe.index.name == "'=idx"
    assert safe["v"].dtype == float and safe["n"].tolist() == [-3, 4]  # numbers stay numbers


def test_assign_csv_output_neutralises_ids_and_names_and_keeps_numbers(model, here):
    _new_data().to_csv(here / "new.csv", index=False)
    res = _invoke("assign", model, "new.csv", "-o", "out.csv", "-q", "--json")
    assert res.exit_code == 0, res.output
    rows = _cells((here / "out.csv").read_text(encoding="utf-8"))
    _assert_no_formula(rows, "assign")
    assert _read_ids(here / "out.csv") == SAFE_IDS  # 007 stays 007; formulas get the apostrophe
    out = pd.read_csv(here / "out.csv")
    assert out["p_1"].dtype == float and set(out["segment_name"]) <= {"'=SUM(A1)", "Speed <b>"}
    assert (out["p_1"] + out["p_2"]).round(9).eq(1).all()


def test_score_output_and_landscape_neutralise_ids_statements_and_job_steps(here):
    df = _survey_frame()
    df["respondent_id"] = [*EVIL_IDS, *df["respondent_id"][len(EVIL_IDS):]]
    df.to_csv(here / "survey.csv", index=False)
    (here / "outcomes.csv").write_text(
        'outcome,statement,job_step\no0,"=HYPERLINK(""http://evil"",""x"")",@plan\no1,-1+2,+run\no2,Keep it tidy,Plan\n',
        encoding="utf-8",
    )
    res = _invoke("score", "survey.csv", "-o", "scores.csv", "--outcomes", "outcomes.csv", "--no-clean",
                  "--imp-scale", "1-5", "--sat-scale", "1-10", "--json")
    assert res.exit_code == 0, res.output
    scores = _cells((here / "scores.csv").read_text(encoding="utf-8"))
    landscape = _cells((here / "scores_landscape.csv").read_text(encoding="utf-8"))
    _assert_no_formula(scores, "scores")
    _assert_no_formula(landscape, "landscape")
    ids = [r[0] for r in scores[1:]]  # (the survey reader may trim blanks around ids)
    assert {"'=cmd|' /C calc'!A0", "'-1+2", "'@SUM(A1)", "'+1", "007"} <= set(ids)
    lf = pd.read_csv(here / "scores_landscape.csv")
    assert lf.set_index("outcome").loc["o0", "statement"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert lf.set_index("outcome").loc["o1", "job_step"] == "'+run"
    assert lf["opportunity"].dtype == float  # numeric columns stay numeric


def test_compare_disagreements_neutralise_ids(here):
    ids = [f"=cmd{i}" for i in range(20)] + ["-1+2", "@x"]
    seg_a = [1] * 11 + [2] * 11
    seg_b = seg_a[:-3] + [1, 1, 1]  # the last three disagree
    pd.DataFrame({"respondent_id": ids, "segment": seg_a}).to_csv(here / "a.csv", index=False)
    pd.DataFrame({"respondent_id": ids, "segment": seg_b}).to_csv(here / "b.csv", index=False)
    res = _invoke("compare", "a.csv", "b.csv", "--disagreements", "dis.csv", "--json")
    assert res.exit_code == 0, res.output
    rows = _cells((here / "dis.csv").read_text(encoding="utf-8"))
    assert len(rows) > 1
    _assert_no_formula(rows, "disagreements")
    assert {"'-1+2", "'@x"} <= {r[0] for r in rows[1:]}


def test_report_tables_and_segment_map_csv_neutralise_segment_names(here):
    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit

    X = np.r_[np.zeros((30, 2)), np.full((30, 2), 5.0)] + np.random.default_rng(1).normal(size=(60, 2))
    save_model(here / "bare", fit(X, "gmm", 2, random_seed=0, n_init=1).with_labels(["=2+3", "@evil"]))
    res = _invoke("report", "bare", "-o", here / "rep" / "index.html", "--json", "-q")
    assert res.exit_code == 0, res.output
    tables = sorted((here / "rep" / "tables").glob("*.csv"))
    assert any(p.name == "segment_map.csv" for p in tables)
    for p in tables:
        _assert_no_formula(_cells(p.read_text(encoding="utf-8")), p.name)
    assert "'=2+3" in (here / "rep" / "tables" / "segment_map.csv").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- Markdown
def test_segment_map_markdown_escapes_html_and_pipes():
    from latentseg.decide.profiling import profile
    from latentseg.decide.segmap import segment_map
    from latentseg.result import SegmentationResult

    counts = [600, 400]
    z = np.repeat(np.eye(2), counts, axis=0)
    s = np.full((1000, 3), 5.0)
    s[:600, :2] = 12.0
    s += np.random.default_rng(0).normal(0, 0.1, size=s.shape)
    scores = pd.DataFrame(s, columns=["o0", "o1", "o2"])
    outcomes = pd.DataFrame({"statement": ["<img src=x onerror=alert(1)>", "a | b & c", "plain"], "job_step": ""},
                            index=pd.Index(["o0", "o1", "o2"], name="outcome"))
    r = SegmentationResult.from_memberships("gmm", z, centers=np.array([[2.0], [1.0]]), feature_names=("f",),
                                            respondent_ids=scores.index)
    names = {1: "<script>alert('x')</script>", 2: "Fast | Furious & Co"}
    md = segment_map(r, profiles=profile(r, scores, outcomes, names=names, top=3)).to_markdown()
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md and "&lt;img src=x" in md
    assert "Fast \\| Furious &amp; Co" in md and "a \\| b &amp; c" in md
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(table) == 3 and all(ln.count(" | ") == 5 for ln in table)  # no cell split by a pipe


# ----------------------------------------------------------------------------- terminal
def test_escape_sequences_in_statements_and_columns_never_reach_the_terminal(here):
    evil = "Plan\x1b[2J\x1b]0;pwned\x07 fast\x9b31m\x08"
    df = _survey_frame().rename(columns={"role": "role\x1b[31m"})
    df.to_csv(here / "survey.csv", index=False)
    pd.DataFrame({"outcome": ["o0"], "statement": [evil], "job_step": ["Step\x1b[5m"]}).to_csv(here / "outcomes.csv", index=False)
    for cmd in (["score", "survey.csv", "-o", "s.csv", "--no-clean"], ["validate", "survey.csv"]):
        res = _invoke(*cmd, "--outcomes", "outcomes.csv", "--imp-scale", "1-5", "--sat-scale", "1-10")
        assert res.exit_code == 0, res.output
        for stream in (res.stdout, res.stderr):
            assert ESC not in stream and "\x07" not in stream and "\x9b" not in stream and "\x08" not in stream
    assert "Plan fast" in _invoke("score", "survey.csv", "-o", "s.csv", "--no-clean", "--outcomes", "outcomes.csv",
                                  "--imp-scale", "1-5", "--sat-scale", "1-10").stdout


def test_terminal_text_strips_control_characters_but_keeps_newline_and_tab():
    from latentseg.cli._common import terminal_text

    assert terminal_text("a\x1b[31mb\x1b]8;;http://x\x1b\\c\x00d\x7fe\x85f\tg\nh\r") == "abcdef\tg\nh"
    assert terminal_text(ESC) == "" and terminal_text("caf\u00e9 \u2013 ok") == "caf\u00e9 \u2013 ok"


# ----------------------------------------------------------------------------- assign input
@pytest.mark.parametrize(
    "name, write",
    [
        ("latin1.csv", lambda df, p: df.to_csv(p, index=False, sep=";", encoding="latin-1", errors="replace")),
        ("cp1252.csv", lambda df, p: df.to_csv(p, index=False, sep="|", encoding="cp1252", errors="replace")),
        ("utf16.csv", lambda df, p: df.to_csv(p, index=False, sep="\t", encoding="utf-16")),
        ("semicolon.csv", lambda df, p: df.to_csv(p, index=False, sep=";")),
        ("pipes.txt", lambda df, p: df.to_csv(p, index=False, sep="|")),
        ("data.csv.gz", lambda df, p: p.write_bytes(gzip.compress(df.to_csv(index=False, sep=";").encode("utf-8")))),
    ],
    ids=["latin1-semicolon", "cp1252-pipe", "utf16-tab", "semicolon", "pipe-txt", "gzip-semicolon"],
)
def test_assign_reads_what_the_survey_reader_reads(model, here, name, write):
    write(_new_data(), here / name)
    res = _invoke("assign", model, name, "-o", "out.csv", "--chunksize", "7", "--json", "-q")
    assert res.exit_code == 0, res.output
    assert '"rows": 30' in res.stdout and '"chunks": 5' in res.stdout  # streamed in chunks of 7
    assert _read_ids(here / "out.csv") == SAFE_IDS  # ids as text, nothing lost


def test_assign_reads_a_qualtrics_export(model, here):
    df = _new_data()
    lines = ["respondent_id,a,b", "Respondent,Rating A,Rating B",
             '"{""ImportId"":""id""}","{""ImportId"":""QID1""}","{""ImportId"":""QID2""}"']
    body = df[["respondent_id", "a", "b"]].iloc[len(EVIL_IDS):].to_csv(index=False, header=False)
    (here / "q.csv").write_text("\n".join(lines) + "\n" + body, encoding="utf-8")
    res = _invoke("assign", model, "q.csv", "-o", "out.parquet", "--json", "-q")
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(here / "out.parquet")["respondent_id"].tolist()[:2] == ["006", "007"]


def test_assign_refuses_a_corrupt_gzip(model, here):
    (here / "bad.csv.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"not really deflate data" * 40)
    _one_error(_invoke("assign", model, "bad.csv.gz", "-o", "out.csv"), r"bad\.csv\.gz.*cannot be decompressed")
    assert not (here / "out.csv").exists()


def test_assign_refuses_a_truncated_gzip_midway(model, here):
    rng = np.random.default_rng(2)
    n = 120_000
    big = pd.DataFrame({"respondent_id": np.arange(n).astype(str), "a": rng.normal(size=n), "b": rng.normal(size=n)})
    data = gzip.compress(big.to_csv(index=False).encode())
    (here / "cut.csv.gz").write_bytes(data[: len(data) * 3 // 4])
    _one_error(_invoke("assign", model, "cut.csv.gz", "-o", "out.parquet", "-q"), r"cut\.csv\.gz.*(decompress|gzip)")
    assert sorted(p.name for p in here.iterdir()) == ["cut.csv.gz"]  # nothing half-written, no temporary


def test_assign_refuses_a_fake_parquet(model, here):
    _new_data().to_csv(here / "fake.parquet", index=False)
    _one_error(_invoke("assign", model, "fake.parquet", "-o", "out.csv"), r"fake\.parquet.*not a \.parquet file")
    (here / "broken.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    _one_error(_invoke("assign", model, "broken.parquet", "-o", "out.csv"), r"broken\.parquet.*cannot be read as Parquet")


# ----------------------------------------------------------------------------- assign output
def test_assign_csv_gz_output_is_really_gzip(model, here):
    _new_data().to_csv(here / "new.csv", index=False)
    res = _invoke("assign", model, "new.csv", "-o", "out.csv.gz", "--json", "-q")
    assert res.exit_code == 0, res.output
    raw = (here / "out.csv.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    _assert_no_formula(_cells(gzip.decompress(raw).decode("utf-8")), "csv.gz")
    assert _read_ids(here / "out.csv.gz", compression="gzip") == SAFE_IDS
    assert '"format": "csv.gz"' in res.stdout


def test_assign_tsv_output_is_really_tab_separated(model, here):
    _new_data().to_parquet(here / "new.parquet", index=False)
    res = _invoke("assign", model, "new.parquet", "-o", "out.tsv", "--json", "-q")
    assert res.exit_code == 0, res.output
    text = (here / "out.tsv").read_text(encoding="utf-8")
    header = text.splitlines()[0]
    assert header.replace('"', "").split("\t") == ["respondent_id", "segment", "segment_name", "p_1", "p_2"]
    assert "," not in header
    _assert_no_formula(_cells(text, "\t"), "tsv")
    assert _read_ids(here / "out.tsv", sep="\t") == SAFE_IDS


def test_assign_refuses_an_unknown_output_extension(model, here):
    _new_data().to_csv(here / "new.csv", index=False)
    err = _one_error(_invoke("assign", model, "new.csv", "-o", "out.xyz"), r"out\.xyz.*unknown extension")
    for ext in (".csv", ".csv.gz", ".tsv", ".parquet"):
        assert ext in err
    assert not (here / "out.xyz").exists()


def test_assign_refuses_an_id_column_the_input_lacks(model, here):
    _new_data().to_csv(here / "new.csv", index=False)
    err = _one_error(_invoke("assign", model, "new.csv", "-o", "out.csv", "--id-column", "nosuch"), r"'nosuch'")
    assert "respondent_id" in err and "a" in err  # what the input has
    assert not (here / "out.csv").exists()


def test_assign_keeps_ids_with_leading_zeros_in_every_format(model, here):
    df = _new_data().iloc[len(EVIL_IDS):]
    df.to_csv(here / "new.csv", index=False)
    for out in ("out.csv", "out.parquet", "out.tsv"):
        res = _invoke("assign", model, "new.csv", "-o", out, "--id-column", "respondent_id", "-q", "--json")
        assert res.exit_code == 0, res.output
    expected = df["respondent_id"].tolist()
    assert expected[:2] == ["006", "007"]
    assert _read_ids(here / "out.csv") == expected
    assert _read_ids(here / "out.tsv", sep="\t") == expected
    assert pd.read_parquet(here / "out.parquet")["respondent_id"].tolist() == expected


# ----------------------------------------------------------------------------- a real process
def _run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "latentseg", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("bad.csv.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 300, "cannot be decompressed"),
        ("fake.parquet", b"respondent_id,a,b\n1,2,3\n", "not a .parquet file"),
    ],
    ids=["corrupt-gzip", "fake-parquet"],
)
def test_damaged_input_in_a_real_process_is_one_error_line(model, tmp_path, name, content, pattern):
    (tmp_path / name).write_bytes(content)
    proc = _run_cli("assign", model, name, "-o", "out.csv", cwd=tmp_path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and name in err[0] and pattern in err[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out.csv").exists()
