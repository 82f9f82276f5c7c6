"""Attacks on output paths, saved-model names, locks and the file system: nothing an input holds is
lost, no model is silently replaced, and every file-system failure is one message (exit 1).

The policy lives in :func:`latentseg.io.files.check_outputs` (called by every command that
writes, before any work), :func:`latentseg.deliver.artifacts.check_replace` /
:func:`~latentseg.deliver.artifacts.model_lock` (run, demo, fit --save) and the OSError clause of
``cli._common.handle_errors``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentseg.cli.app import app
from latentseg.deliver import artifacts
from latentseg.deliver.artifacts import load_model, model_lock, save_model
from latentseg.errors import ConfigError, ModelFileError
from latentseg.io.files import check_outputs

pytestmark = pytest.mark.xdist_group("attacks-paths")

FAST = """
[survey]
imp_scale = "1-5"
sat_scale = "1-10"

[cleaning]
min_respondents = 30

[model]
n_init = 1
random_seed = 3

[select]
models = ["gmm"]
k_min = 2
k_max = 2
stability_subsamples = 0
"""


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error(res, pattern: str) -> str:
    """Exit 1, exactly one line on stderr starting with 'error:' that matches, no traceback."""
    assert res.exit_code == 1, (res.exit_code, res.output)
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), res.stderr
    assert re.search(pattern, err[0]), err[0]
    assert "Traceback" not in res.output
    return err[0]


def _proc(*args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latentseg", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "400"})


def _proc_one_error(proc: subprocess.CompletedProcess[str], pattern: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    return lines[0]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny simulated survey, a fast config and one model fitted on it (models/m), all in one
    folder; the survey also lies in rep/tables/ (where a report would write its tables)."""
    root = tmp_path_factory.mktemp("attacks")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        res = _cli("simulate", "-o", "survey.csv", "--n", 120, "--outcomes", 6, "--segments", 2, "--seed", 4)
        assert res.exit_code == 0, res.output
        (root / "latentseg.toml").write_text(FAST)
        (root / "rep" / "tables").mkdir(parents=True)
        shutil.copy(root / "survey.csv", root / "rep" / "tables" / "survey.csv")
        res = _cli("-q", "fit", root / "rep" / "tables" / "survey.csv", "--model", "gmm", "--k", 2, "--n-init", 1,
                   "--save", "m")
        assert res.exit_code == 0, res.output
    return root


@pytest.fixture
def work(base, tmp_path, monkeypatch):
    """A fresh folder holding the survey and config; the shared model at models/m (a copy)."""
    shutil.copy(base / "survey.csv", tmp_path / "survey.csv")
    shutil.copy(base / "latentseg.toml", tmp_path / "latentseg.toml")
    shutil.copytree(base / "models" / "m", tmp_path / "models" / "m")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: object):
    return _cli("-q", "run", *args, "--no-report")


# ------------------------------------------------------------------------ outputs over inputs
def test_score_output_onto_its_survey_is_refused_and_the_survey_is_kept(work):
    before = (work / "survey.csv").read_bytes()
    _one_error(_cli("score", "survey.csv", "-o", "survey.csv"),
               r"score would write --output 'survey.csv' over its input, SURVEY 'survey.csv'")
    # the same file by another name: a dotted path, and a symbolic link
    _one_error(_cli("score", "survey.csv", "-o", "sub/../survey.csv"), r"over its input, SURVEY")
    os.symlink(work / "survey.csv", work / "link.csv")
    _one_error(_cli("score", "link.csv", "-o", "survey.csv"), r"over its input, SURVEY 'link.csv'")
    assert (work / "survey.csv").read_bytes() == before


def test_score_derived_landscape_name_onto_its_survey_is_refused(work):
    """`score -o x.csv` also writes x_landscape.csv: that derived path is an output too."""
    shutil.copy("survey.csv", "x_landscape.csv")
    before = (work / "x_landscape.csv").read_bytes()
    _one_error(_cli("score", "x_landscape.csv", "-o", "x.csv"),
               r"the landscape table \(named after --output\) 'x_landscape.csv' over its input, SURVEY 'x_landscape.csv'")
    assert (work / "x_landscape.csv").read_bytes() == before and not (work / "x.csv").exists()


def test_score_output_onto_its_config_is_refused(work):
    shutil.copy("survey.csv", "cfg.csv")
    _one_error(_cli("score", "survey.csv", "-o", "cfg.csv", "-c", "cfg.csv"), r"--output 'cfg.csv' over its input, the config file 'cfg.csv'")
    _one_error(_cli("score", "survey.csv", "-o", "cfg.csv", "--outcomes", "cfg.csv"),
               r"--output 'cfg.csv' over its input, --outcomes 'cfg.csv'")


def test_simulate_output_and_truth_to_one_file_is_refused(work):
    _one_error(_cli("simulate", "-o", "X.csv", "--truth", "X.csv", "--n", 40, "--outcomes", 4),
               r"simulate would write --output 'X.csv' and --truth 'X.csv' to the same file")
    _one_error(_cli("simulate", "-o", "X.csv", "--truth", "./X.csv", "--n", 40, "--outcomes", 4), r"the same file")
    assert not (work / "X.csv").exists()


def test_compare_disagreements_onto_an_input_is_refused(work):
    import pandas as pd

    ids = pd.read_csv("survey.csv")["respondent_id"].head(20)
    pd.DataFrame({"respondent_id": ids, "segment": [1, 2] * 10}).to_csv("a.csv", index=False)
    pd.DataFrame({"respondent_id": ids, "segment": [2, 1] * 10}).to_csv("b.csv", index=False)
    before = (work / "b.csv").read_bytes()
    _one_error(_cli("compare", "a.csv", "b.csv", "--disagreements", "b.csv"),
               r"compare would write --disagreements 'b.csv' over its input, B 'b.csv'")
    _one_error(_cli("compare", "a.csv", "b.csv", "--plot", "a.csv"), r"--plot 'a.csv' over its input, A 'a.csv'")
    _one_error(_cli("compare", "models/m", "a.csv", "--disagreements", "models/m/model.json"),
               r"--disagreements 'models/m/model.json' over its input, A's model.json")
    assert (work / "b.csv").read_bytes() == before
    load_model("models/m")  # untouched


def test_report_onto_the_model_folder_or_over_its_survey_is_refused(work, base):
    # a model whose folder name is a valid report name: the report would replace the model folder
    shutil.copytree("models/m", "models/r.html")
    _one_error(_cli("report", "models/r.html", "-o", "models/r.html"),
               r"report would write --output 'models/r.html' over its input, MODEL 'models/r.html'")
    load_model("models/r.html")
    # the survey the model was fitted on lies in rep/tables/, where the report writes its tables
    _one_error(_cli("report", "models/m", "-o", base / "rep" / "report.html"),
               r"report writes files into the report's tables folder .* which holds its input, the survey saved with MODEL")


def test_assign_select_and_profile_outputs_onto_inputs_are_refused(work):
    shutil.copy("survey.csv", "new.csv")
    _one_error(_cli("assign", "models/m", "new.csv", "-o", "new.csv"),
               r"assign would write --output 'new.csv' over its input, NEW_DATA 'new.csv'")
    _one_error(_cli("assign", "models/m", "new.csv", "-o", "models/m/result.nc"), r"over its input, MODEL's result.nc")
    _one_error(_cli("select", "survey.csv", "--plots", "survey.csv"), r"select would write --plots 'survey.csv' over its input, DATA")
    _one_error(_cli("select", "survey.csv", "--checkpoint", "./survey.csv"), r"--checkpoint 'survey.csv' over its input, DATA")
    (work / "out").mkdir()
    shutil.copy("survey.csv", "out/profiles.csv")
    _one_error(_cli("profile", "models/m", "--survey", "out/profiles.csv", "-o", "out"),
               r"profile would write --output's profiles.csv 'out/profiles.csv' over its input, --survey")
    assert (work / "new.csv").read_bytes() == (work / "survey.csv").read_bytes()


def test_run_report_folder_holding_the_survey_is_refused(work):
    (work / "out" / "tables").mkdir(parents=True)
    shutil.copy("survey.csv", "out/tables/s.csv")
    _one_error(_cli("-q", "run", "out/tables/s.csv", "-o", "out"),
               r"run writes files into the report's tables folder 'out/tables', which holds its input, the survey")
    assert not (work / "models" / "s").exists()  # refused before any work


def test_check_outputs_library_examples(tmp_path):
    (tmp_path / "a.csv").write_text("x\n")
    os.link(tmp_path / "a.csv", tmp_path / "hard.csv")
    with pytest.raises(ConfigError, match=r"would write '.*a.csv' over its input, '.*hard.csv' \(the same file\)"):
        check_outputs([tmp_path / "a.csv"], [tmp_path / "hard.csv"], command="x")  # a hard link is the same file
    check_outputs([tmp_path / "b.csv", None], [tmp_path / "a.csv", None], command="x")  # fine
    with pytest.raises(ConfigError, match="holds its input"):
        check_outputs([], {"in": tmp_path / "t" / "a.csv"}, command="x", trees={"t": tmp_path / "t"})


# ------------------------------------------------------------------- saved models: --name / --force
def test_run_same_default_name_from_two_folders_is_refused_then_forced(work):
    for wave in ("wave1", "wave2"):
        (work / wave).mkdir()
        shutil.copy("survey.csv", work / wave / "survey.csv")
    assert _run("wave1/survey.csv").exit_code == 0
    first = load_model("models/survey").model_id
    msg = _one_error(_run("wave2/survey.csv"),
                     r"Model 'survey' at 'models/survey' was saved on .* from the survey 'wave1/survey.csv'; this would replace it")
    assert "--name NAME to keep both" in msg and "--force to replace it" in msg
    assert load_model("models/survey").model_id == first  # nothing was replaced
    assert _run("wave2/survey.csv", "--name", "wave2").exit_code == 0
    # rerunning the very same command is refused too, and says so
    _one_error(_run("wave1/survey.csv"), r"from this same survey 'wave1/survey.csv'; running again would replace it.*--force")
    res = _run("wave2/survey.csv", "--force")
    assert res.exit_code == 0, res.output
    assert json.loads((work / "models" / "survey" / "model.json").read_text())["run"]["survey"] == "wave2/survey.csv"


def test_an_interrupted_run_resumes_without_force(work):
    assert _run("survey.csv").exit_code == 0
    ckpt = sorted(p.name for p in (work / "models" / "survey" / "checkpoints").iterdir())
    (work / "models" / "survey" / "model.json").unlink()  # as if killed before the save
    (work / "models" / "survey" / "result.nc").unlink()
    res = _run("survey.csv")
    assert res.exit_code == 0, res.output
    load_model("models/survey")
    assert sorted(p.name for p in (work / "models" / "survey" / "checkpoints").iterdir()) == ckpt


def test_demo_does_not_replace_a_saved_demo_model(work):
    shutil.copytree("models/m", "models/demo")
    _one_error(_cli("demo", "-q"), r"Model 'demo' at 'models/demo' .*Pass --models-dir DIR to keep both, or --force to replace it")
    load_model("models/demo")


def test_fit_save_over_a_saved_model_needs_force(work):
    before = load_model("models/m").model_id
    _one_error(_cli("fit", "survey.csv", "--k", 2, "--n-init", 1, "--save", "m"),
               r"Model 'm' at 'models/m' .*Pass --save NAME to keep both, or --force to replace it")
    assert load_model("models/m").model_id == before
    res = _cli("-q", "fit", "survey.csv", "--k", 2, "--n-init", 1, "--save", "m", "--force")
    assert res.exit_code == 0, res.output
    assert load_model("models/m").model_id != before


# --------------------------------------------------------------------------------- one writer
def test_a_model_being_written_by_another_process_is_refused(work):
    with model_lock(work / "models" / "survey"), model_lock(work / "models" / "m"):
        msg = _one_error(_run("survey.csv"), rf"Model 'survey' .* is being written by another latentseg process \(pid {os.getpid()};")
        assert msg.endswith("wait for it to finish (--wait waits), or pass another --name.")
        _one_error(_cli("fit", "survey.csv", "--k", 2, "--save", "m", "--force"),
                   rf"Model 'm' .* another latentseg process \(pid {os.getpid()}")
    assert not (work / "models" / "survey" / "model.json").exists()
    assert _run("survey.csv").exit_code == 0  # the lock went with its holder


def test_run_wait_waits_for_the_holder(work):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from latentseg.deliver.artifacts import model_lock
            with model_lock(sys.argv[1]):
                print("locked", flush=True)
                time.sleep(1.5)
        """), str(work / "models" / "survey")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        t = time.perf_counter()
        res = _run("survey.csv", "--wait")
        assert res.exit_code == 0, res.output
        assert holder.poll() is not None or time.perf_counter() - t > 0.5
    finally:
        holder.kill()
        holder.wait()


def test_staging_folders_of_other_processes_are_never_removed(work):
    live = work / "models" / "m" / f".saving-{os.getppid()}.{artifacts._host()}.abc"  # a live process's save
    older = work / "models" / "m" / ".saving-abc123"  # another layout (or machine): not ours to judge
    dead_proc = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_proc.wait()
    dead = work / "models" / "m" / f".saving-{dead_proc.pid}.{artifacts._host()}.xyz"  # left by a killed save
    for p in (live, older, dead):
        p.mkdir()
        (p / "result.nc").write_bytes(b"half")
    saved = load_model("models/m")
    save_model("models/m", saved.result, config=saved.config)
    assert live.is_dir() and older.is_dir() and not dead.exists()
    load_model("models/m")


# ------------------------------------------------------------------------------ file system
def test_parent_is_a_file(work):
    _one_error(_cli("score", "survey.csv", "-o", "survey.csv/x.csv"),
               r"Cannot write 'survey.csv/x.csv': Not a directory \('survey.csv' is a file, not a folder\)")
    _one_error(_run("survey.csv", "--models-dir", "survey.csv"), r"Cannot write 'survey.csv/survey.*Not a directory")
    _one_error(_cli("report", "models/m", "-o", "survey.csv/r.html"), r"Not a directory")


def test_names_too_long(work):
    long = "n" * 300
    _one_error(_run("survey.csv", "--name", long), r"Cannot write 'models/n+.*': File name too long .*300 bytes")
    _one_error(_cli("fit", "survey.csv", "--k", 2, "--save", long), r"File name too long")
    _one_error(_cli("simulate", "-o", f"{long}.csv"), r"File name too long")


def test_read_only_folder(work, monkeypatch):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root writes anyway: make the check see the folder as others would
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, **kw: (not mode & os.W_OK or Path(p).name != "ro")
                                and real_access(p, mode, **kw))
        _one_error(_cli("score", "survey.csv", "-o", "ro/x.csv"), r"Cannot write 'ro/x.csv': Permission denied .*read-only")
        _one_error(_run("survey.csv", "--models-dir", "ro"), r"Permission denied")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC, errno.EROFS])
def test_an_unforeseen_os_error_is_one_message(work, monkeypatch, code):
    """Whatever the file system says after the checks (a disk filling up, permissions changed
    meanwhile) reaches the user as one line naming the path and the reason."""
    import latentseg.io

    def refuse(frame, path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(latentseg.io, "write_table", refuse)
    _one_error(_cli("-q", "score", "survey.csv", "-o", "s.csv"), rf"Cannot access 's.csv': {re.escape(os.strerror(code))} \(")


def test_disk_full_during_a_resave_keeps_the_previous_model(work, monkeypatch):
    """ENOSPC half way through writing result.nc (an HDF5 file left open): one message, the old
    model still loads, the staging folder is gone and its HDF5 handle closed (no crash later)."""
    import gc

    import h5py
    import numpy as np

    before = load_model("models/m")
    handles = []
    real_write = artifacts._write_tree

    def full_disk(tree, path):
        f = h5py.File(path, "w")
        f.create_dataset("memberships", data=np.zeros((100, 2)))
        handles.append(f)  # left open, as a write that failed half way may leave it
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(artifacts, "_write_tree", full_disk)
    with pytest.raises(ModelFileError, match=r"Could not save the model to 'models/m': .*No space left on device.*unchanged"):
        save_model("models/m", before.result, config=before.config)
    assert not handles[0].id.valid  # closed before its file was removed
    res = _cli("-q", "fit", "survey.csv", "--k", 2, "--n-init", 1, "--save", "m", "--force")
    _one_error(res, r"Could not save the model to 'models/m': Cannot access .*No space left on device.*unchanged")
    monkeypatch.setattr(artifacts, "_write_tree", real_write)
    handles.clear()
    gc.collect()
    assert load_model("models/m").model_id == before.model_id
    assert not list((work / "models" / "m").glob(".saving-*"))


# ------------------------------------------------------------------------- real subprocesses
def test_subprocess_output_onto_input_one_error_line(work):
    before = (work / "survey.csv").read_bytes()
    _proc_one_error(_proc("score", "survey.csv", "-o", "./survey.csv", cwd=work), r"over its input, SURVEY")
    _proc_one_error(_proc("simulate", "-o", "X.csv", "--truth", "X.csv", cwd=work), r"to the same file")
    assert (work / "survey.csv").read_bytes() == before


def test_subprocess_parent_is_a_file_and_name_too_long(work):
    _proc_one_error(_proc("run", "survey.csv", "--models-dir", "survey.csv", "--no-report", cwd=work), r"Not a directory")
    _proc_one_error(_proc("score", "survey.csv", "-o", "x" * 300 + ".csv", cwd=work), r"File name too long")


def test_subprocess_two_runs_with_one_name(work):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from latentseg.deliver.artifacts import model_lock
            with model_lock(sys.argv[1]):
                print("locked", flush=True)
                time.sleep(60)
        """), str(work / "models" / "survey")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        _proc_one_error(_proc("-q", "run", "survey.csv", "--no-report", cwd=work),
                        rf"Model 'survey' .* is being written by another latentseg process \(pid {holder.pid};")
    finally:
        holder.kill()
        holder.wait()
    assert not (work / "models" / "survey" / "model.json").exists()
