"""Attacks found by an independent pass over the CLI (448 attempts) after the first corpus: each
reproduces one and asserts exit 1 with one message, no traceback, and the input untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _cli(*args):
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _one_error(res) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    err = res.stderr
    assert err.count("error:") == 1, err
    return " ".join(err.split())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A run model in a/ (fitted on a/s.csv), and a second survey a/new.csv."""
    root = tmp_path_factory.mktemp("second")
    a = root / "a"
    a.mkdir()
    for name in ("project_survey.csv", "project_outcomes.csv", "latentseg.toml"):
        shutil.copy(EXAMPLES / name, a / name)
    shutil.copy(a / "project_survey.csv", a / "s.csv")
    shutil.copy(a / "project_survey.csv", a / "new.csv")
    cwd = os.getcwd()
    os.chdir(a)
    try:
        res = _cli("run", "s.csv", "-c", "latentseg.toml", "--models", "gmm", "--k", "2", "--name", "m", "--no-report", "-q")
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    (root / "b").mkdir()
    return root


def test_assign_from_another_folder_cannot_write_over_the_training_survey(project, monkeypatch):
    """The policy checks the survey path the model reads (absolute), not only the one it records."""
    a = project / "a"
    before = _sha(a / "s.csv")
    monkeypatch.chdir(project / "b")
    msg = _one_error(_cli("assign", "../a/models/m", "../a/new.csv", "-o", "../a/s.csv"))
    assert "over its input" in msg or "would write" in msg
    assert _sha(a / "s.csv") == before


def test_score_cannot_write_over_the_configs_outcome_statements(project, monkeypatch):
    a = project / "a"
    monkeypatch.chdir(a)
    before = _sha(a / "project_outcomes.csv")
    msg = _one_error(_cli("score", "s.csv", "-o", "project_outcomes.csv", "-c", "latentseg.toml"))
    assert "outcomes_file" in msg
    assert _sha(a / "project_outcomes.csv") == before


def test_repeated_columns_and_absurd_k_ranges_are_one_message(project, monkeypatch):
    monkeypatch.chdir(project / "a")
    msg = _one_error(_cli("fit", "s.csv", "--config", "latentseg.toml", "--k", "2", "--columns", "o01,o01"))
    assert "more than once" in msg
    msg = _one_error(_cli("select", "s.csv", "--config", "latentseg.toml", "--k", "2..999999999999999999999"))
    assert "--k must look like" in msg


def test_a_damaged_saved_model_is_not_a_traceback_when_replacing_or_reading_it(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    shutil.copy(project / "a" / "s.csv", "s.csv")
    shutil.copy(project / "a" / "latentseg.toml", "latentseg.toml")
    shutil.copy(project / "a" / "project_outcomes.csv", "project_outcomes.csv")
    for i, doc in enumerate(('{"run": {"survey": 5}}', "[" * 100_000 + "]" * 100_000,
                             json.dumps({"data": {"path": "a\u0000b"}}))):
        folder = Path("models") / f"bad{i}"
        folder.mkdir(parents=True)
        (folder / "model.json").write_text(doc)
        msg = _one_error(_cli("fit", "s.csv", "--k", "2", "--save", f"bad{i}"))
        assert "--force" in msg
        _one_error(_cli("report", folder, "-o", "out/report.html"))


def test_deeply_nested_settings_and_device_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("deep.toml").write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    msg = _one_error(_cli("validate", EXAMPLES / "project_survey.csv", "-c", "deep.toml"))
    assert "deep.toml" in msg
    if Path("/dev/zero").exists():
        os.symlink("/dev/zero", "zero.csv")
        msg = _one_error(_cli("validate", "zero.csv"))
        assert "not a regular file" in msg


def test_fit_save_takes_only_plain_names(project, monkeypatch):
    monkeypatch.chdir(project / "a")
    for name in ("", "a\nb", "a\x1b[2Jb"):
        msg = _one_error(_cli("fit", "s.csv", "--config", "latentseg.toml", "--k", "2", "--save", name))
        assert "--save takes a plain model name" in msg
    assert not (project / "a" / "models" / "a\nb").exists()


def test_assign_refuses_blank_ids_instead_of_writing_them_empty(project, monkeypatch):
    import pandas as pd

    a = project / "a"
    monkeypatch.chdir(project / "b")
    frame = pd.read_csv(a / "new.csv", dtype=str).head(20)
    frame.loc[3, "respondent_id"] = "NA"
    frame.to_csv("na.csv", index=False)
    msg = _one_error(_cli("assign", "../a/models/m", "na.csv", "-o", "out.csv"))
    assert "blank respondent id" in msg and "line(s) [5]" in msg
    assert not Path("out.csv").exists()
