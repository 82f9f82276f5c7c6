"""Attacks on saved models and sweep checkpoints: nothing lost and nothing silently wrong.

- a saved model is tied to the bytes of its survey: ``profile``, ``size``, ``report`` and ``assign``
  run from another folder that holds another ``survey.csv`` are refused (exit 1, both paths named);
  ``--survey`` with another file is refused unless it holds the same respondents' model input;
- ``model.json`` is cross-checked against ``result.nc`` and any malformed content is a
  ModelFileError naming the file (NaN, deep nesting, wrong types, a missing ``files`` entry,
  a swapped ``result.nc``, an object path outside the allowlist);
- sweep checkpoints that do not match (renamed across k, another survey's fit, edited JSON or .nc)
  are discarded with a LatentsegWarning and refitted; failed fits are retried, never replayed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from latentseg.errors import DataMismatchError, FitError, LatentsegWarning, ModelFileError

pytestmark = pytest.mark.xdist_group("attacks_models")

CFG = {"survey": {"imp_scale": "1-5", "sat_scale": "1-10"}}


# ------------------------------------------------------------------------------------ helpers
def _cli(*args: Any):
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _stderr(res: Any) -> str:
    return " ".join(res.stderr.split())


def _survey_frame(seed: int, n: int = 150) -> pd.DataFrame:
    from latentseg.research.simulate import simulate_survey

    survey, _ = simulate_survey(n, n_outcomes=6, n_segments=2, random_seed=seed)
    return survey.to_frame()


def _train(folder: Path, monkeypatch: pytest.MonkeyPatch, *, seed: int = 3, keep_rating_columns: bool = True) -> Path:
    """``folder/survey.csv`` prepared from inside ``folder`` (so the model records the relative path
    'survey.csv' next to the absolute one), a 2-segment gmm fitted on it, saved as ``folder/models/m``
    the way ``latentseg fit --save`` saves (no decisions: profile, size and report re-read the survey)."""
    from latentseg.config import merge_config
    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit
    from latentseg.prepare.core import prepare

    folder.mkdir(parents=True, exist_ok=True)
    _survey_frame(seed).to_csv(folder / "survey.csv", index=False)
    monkeypatch.chdir(folder)
    cfg = merge_config(CFG)
    p = prepare("survey.csv", cfg, families=["gmm"])
    result = fit(p.data_for("gmm"), "gmm", 2, n_init=1, random_seed=1)
    spec = p.spec_for("gmm")
    if not keep_rating_columns:  # as an older `fit --save` recorded it: assign re-reads the survey
        spec = {k: spec[k] for k in ("kind", "data_kind", "path", "abs_path", "source", "file_sha256", "input_sha256")}
    model = folder / "models" / "m"
    save_model(model, result, config=cfg, meta={"data": spec})
    return model


@pytest.fixture
def moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """The model of folder ``a``, whose survey is gone from there; the command runs in folder ``b``,
    which holds another survey under the same name 'survey.csv'."""
    a, b = tmp_path / "a", tmp_path / "b"
    model = _train(a, monkeypatch)
    (a / "survey.csv").rename(tmp_path / "kept-survey.csv")
    b.mkdir()
    _survey_frame(seed=99).to_csv(b / "survey.csv", index=False)
    monkeypatch.chdir(b)
    return model, a / "survey.csv", b / "survey.csv"


def _refused_naming_both(res: Any, recorded: Path, found: Path) -> None:
    assert res.exit_code == 1, res.output
    err = _stderr(res)
    assert err.count("error:") == 1 and "Traceback" not in res.output
    assert str(recorded) in err and str(found) in err, err
    assert "is not the survey model 'm' was fitted on" in err


def _rewrite(model: Path, edit: Any) -> None:
    """Edit model.json with ``edit(doc)`` and give it a fresh, matching id (a careful forger)."""
    from latentseg.deliver.artifacts import _dumps, _model_id

    path = model / "model.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    doc["model_id"] = _model_id(doc)
    path.write_text(_dumps(doc), encoding="utf-8")


# --------------------------------------------------------------------- 1. models tied to data
def test_profile_from_another_folder_with_a_same_named_survey_is_refused(moved):
    model, recorded, found = moved
    res = _cli("profile", model, "--json")
    _refused_naming_both(res, recorded, found)
    assert "--survey PATH" in _stderr(res)
    assert res.stdout == ""


def test_size_never_falls_back_to_shares_on_another_survey(moved):
    model, recorded, found = moved
    res = _cli("size", model, "--tam", 1000, "--json")
    _refused_naming_both(res, recorded, found)


def test_report_of_a_model_is_never_written_from_another_survey(moved, tmp_path):
    model, recorded, found = moved
    res = _cli("report", model, "-o", tmp_path / "out" / "report.html")
    _refused_naming_both(res, recorded, found)
    assert not (tmp_path / "out" / "report.html").exists()


def test_assign_rereading_the_survey_refuses_another_file(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    model = _train(a, monkeypatch, keep_rating_columns=False)
    (a / "survey.csv").unlink()
    b.mkdir()
    other = _survey_frame(seed=99)
    other.to_csv(b / "survey.csv", index=False)
    other.to_csv(b / "new.csv", index=False)
    monkeypatch.chdir(b)
    res = _cli("assign", model, "new.csv", "-o", "scored.csv")
    _refused_naming_both(res, a / "survey.csv", b / "survey.csv")
    assert "Put the training survey back at" in _stderr(res)
    assert not (b / "scored.csv").exists()


def test_a_survey_edited_after_the_fit_is_refused_in_place(tmp_path, monkeypatch):
    model = _train(tmp_path / "a", monkeypatch)
    survey = tmp_path / "a" / "survey.csv"
    df = pd.read_csv(survey)
    df.loc[0, "imp_o01"] = 5 if df.loc[0, "imp_o01"] != 5 else 1
    df.to_csv(survey, index=False)
    res = _cli("profile", model)
    _refused_naming_both(res, survey, survey)


def test_the_recorded_absolute_path_is_found_from_another_folder(tmp_path, monkeypatch):
    """The right survey is still where it was: used, whatever the working folder holds."""
    model = _train(tmp_path / "a", monkeypatch)
    (tmp_path / "b").mkdir()
    _survey_frame(seed=99).to_csv(tmp_path / "b" / "survey.csv", index=False)
    monkeypatch.chdir(tmp_path / "b")
    res = _cli("profile", model, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["source"] == str(tmp_path / "a" / "survey.csv")


def test_survey_option_with_another_survey_is_refused(tmp_path, monkeypatch):
    model = _train(tmp_path / "a", monkeypatch)
    _survey_frame(seed=99).to_csv(tmp_path / "other.csv", index=False)
    for cmd in (["profile", model], ["size", model, "--tam", 1000]):
        res = _cli(*cmd, "--survey", tmp_path / "other.csv")
        assert res.exit_code == 1, res.output
        err = _stderr(res)
        assert f"Survey file '{tmp_path / 'other.csv'}' (--survey) is not the survey model 'm' was fitted on" in err
        assert str(tmp_path / "a" / "survey.csv") in err
        assert "answers differ" in err and "same respondents with the same model input" in err


def test_survey_option_accepts_the_same_respondents_and_refuses_one_changed_answer(tmp_path, monkeypatch):
    """The rule: a different file is accepted when it holds the model's respondents with the same
    model input (a re-export with a new profile column); one changed rating is refused."""
    model = _train(tmp_path / "a", monkeypatch)
    df = pd.read_csv(tmp_path / "a" / "survey.csv")
    df.assign(segment_owner=np.where(np.arange(len(df)) % 2, "east", "west")).to_csv(tmp_path / "plus.csv", index=False)
    res = _cli("profile", model, "--survey", tmp_path / "plus.csv", "--overlay", "segment_owner", "--json")
    assert res.exit_code == 0, res.output
    assert "segment_owner" in json.loads(res.stdout)["overlays"]["columns"]

    df.loc[5, "sat_o02"] = 1 if df.loc[5, "sat_o02"] != 1 else 10
    df.to_csv(tmp_path / "changed.csv", index=False)
    res = _cli("profile", model, "--survey", tmp_path / "changed.csv")
    assert res.exit_code == 1 and "answers differ from those the model was fitted on" in _stderr(res)
    df.iloc[:-10].to_csv(tmp_path / "fewer.csv", index=False)  # ten respondents left out
    res = _cli("profile", model, "--survey", tmp_path / "fewer.csv")
    assert res.exit_code == 1 and "respondents differ from the model's (10 of the model's 150 missing" in _stderr(res)


def test_a_model_saved_without_the_hash_warns_that_it_cannot_be_verified(tmp_path, monkeypatch):
    from latentseg.decide.core import decide_inputs
    from latentseg.deliver.artifacts import load_model

    model = _train(tmp_path / "a", monkeypatch)
    _rewrite(model, lambda d: d.__setitem__("data", {"path": "survey.csv", "data_kind": "survey"}))
    with pytest.warns(LatentsegWarning, match="cannot be verified to be that survey"):
        scores, *_ = decide_inputs(load_model(model))
    assert len(scores) == 150
    with pytest.warns(LatentsegWarning, match="cannot be verified"):
        res = _cli("profile", model, "--json")
    assert res.exit_code == 0, res.output


def test_fit_save_records_the_survey_hash_and_absolute_path(tmp_path, monkeypatch):
    from latentseg.deliver.artifacts import load_model
    from latentseg.prepare.provenance import file_sha256

    monkeypatch.chdir(tmp_path)
    _survey_frame(3).to_csv("survey.csv", index=False)
    Path("latentseg.toml").write_text('[survey]\nimp_scale = "1-5"\nsat_scale = "1-10"\n', encoding="utf-8")
    res = _cli("-q", "fit", "survey.csv", "--k", 2, "--model", "kmeans", "--n-init", 1, "--save", "m")
    assert res.exit_code == 0, res.output
    data = load_model("models/m").meta["data"]
    assert data["path"] == "survey.csv" and data["abs_path"] == str(tmp_path / "survey.csv")
    assert data["file_sha256"] == file_sha256("survey.csv") and len(data["input_sha256"]) == 64


def test_subprocess_profile_from_another_folder_exits_1_with_one_error_line(moved):
    model, recorded, found = moved
    proc = subprocess.run([sys.executable, "-m", "latentseg", "profile", str(model)], cwd=found.parent,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    err = " ".join(proc.stderr.split())
    assert str(recorded) in err and str(found) in err


# ------------------------------------------------------------------- 2. model.json cross-checks
@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _train(tmp_path / "a", monkeypatch)


def _refused(model: Path, *fragments: str) -> str:
    from latentseg.deliver.artifacts import load_model

    with pytest.raises(ModelFileError) as info:
        load_model(model)
    msg = str(info.value)
    assert str(model) in msg, msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_nan_literal_in_model_json_is_refused(saved):
    path = saved / "model.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"n": 150', '"n": NaN'), encoding="utf-8")
    _refused(saved, "not valid JSON", "NaN is not a JSON value")


def test_deeply_nested_model_json_is_refused(saved):
    from latentseg.deliver.artifacts import load_model

    # deep but parseable (with a matching id): loads, or is refused as damaged; never a crash
    _rewrite(saved, lambda d: d.__setitem__("notes", json.loads("[" * 950 + "]" * 950)))
    try:
        load_model(saved)
    except ModelFileError as exc:
        assert str(saved) in str(exc)
    # deeper than any parser's stack: RecursionError inside json.loads
    path = saved / "model.json"
    text = path.read_text(encoding="utf-8").rstrip()[:-1] + ', "more": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text(text, encoding="utf-8")
    _refused(saved, "nested too deeply")


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda d: d.__setitem__("k", 3), ("model.json says k = 3 but result.nc holds 2", "do not belong together")),
        (lambda d: d.__setitem__("k", "2"), ('"k" must be a whole number', "'2'")),
        (lambda d: d.__setitem__("n", 149), ("says n = 149 but result.nc holds 150",)),
        (lambda d: d.__setitem__("model", "kmeans"), ("says model = 'kmeans' but result.nc holds 'gmm'",)),
        (lambda d: d["feature_names"].reverse(), ("says feature_names",)),
        (lambda d: d.__setitem__("config", []), ('"config" must be an object; got list',)),
        (lambda d: d.__setitem__("files", []), ('"files" entry must give the SHA-256 of result.nc',)),
        (lambda d: d.pop("files"), ('"files" entry must give the SHA-256 of result.nc',)),
        (lambda d: d["files"].__setitem__("../../etc/passwd", d["files"]["result.nc"]), ("not a file of the model folder",)),
        (lambda d: d.__setitem__("random_seed", 2), ("says random_seed = 2 but result.nc holds 1",)),
    ],
    ids=["k-changed", "k-string", "n-changed", "family-changed", "features-reordered", "config-list", "files-list",
         "files-removed", "files-path", "seed-changed"],
)
def test_model_json_edited_with_a_matching_id_is_refused(saved, edit, fragments):
    _rewrite(saved, edit)
    _refused(saved, *fragments)


def test_result_nc_swapped_for_another_models_is_refused(tmp_path, monkeypatch):
    """Same survey, same k and family, another seed: only the cross-check tells them apart once the
    forger has also copied the other model's result.nc hash into model.json."""
    from latentseg.config import merge_config
    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit
    from latentseg.prepare.core import prepare

    model = _train(tmp_path / "a", monkeypatch)
    p = prepare("survey.csv", merge_config(CFG), families=["gmm"])
    other = save_model(tmp_path / "other", fit(p.data_for("gmm"), "gmm", 2, n_init=1, random_seed=7))
    shutil.copyfile(tmp_path / "other" / "result.nc", model / "result.nc")
    _refused(model, "result.nc has changed since it was saved")
    _rewrite(model, lambda d: d.__setitem__("files", dict(other.meta["files"])))
    _refused(model, "says random_seed = 1 but result.nc holds 7", "copied from another model")


@pytest.mark.parametrize("path", ["os:system", "latentseg.deliver.artifacts:SavedModel", "latentseg.errors:FitError"])
def test_object_paths_outside_the_allowlist_are_never_rebuilt(saved, path):
    _rewrite(saved, lambda d: d.__setitem__("finder", {"__object__": path, "data": {"x": 1}}))
    _refused(saved, f"Refusing to rebuild an object of class {path!r}", "latentseg.decide.finder:Finder")


def test_malformed_tagged_values_are_model_file_errors(saved):
    for bad in ({"__tuple__": 5}, {"__array__": {"dtype": "<f8", "shape": [3], "data": [1]}},
                {"__object__": "latentseg.decide.finder:Finder", "data": {"format": "x"}}):
        _rewrite(saved, lambda d: d.__setitem__("extra", bad))
        _refused(saved, "model.json")


def test_cli_info_on_a_tampered_model_exits_1_through_a_subprocess(saved):
    _rewrite(saved, lambda d: d.pop("files"))
    proc = subprocess.run([sys.executable, "-m", "latentseg", "info", str(saved)], cwd=saved.parent,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert "Traceback" not in proc.stderr and "files" in proc.stderr


# ----------------------------------------------------------------------- 3. sweep checkpoints
X = pd.DataFrame(
    np.r_[np.zeros((40, 2)), np.full((40, 2), 5.0)] + np.random.default_rng(4).normal(size=(80, 2)),
    index=[f"r{i:03d}" for i in range(80)], columns=["a", "b"],
)


def _sweep(ckpt: Path, data: pd.DataFrame = X, ks: tuple[int, ...] = (2, 3)) -> Any:
    from latentseg.choose.selection import select

    return select(data, models=("gmm",), k=list(ks), random_seed=5, stability_subsamples=0,
                  fit_options={"gmm": {"n_init": 1}}, checkpoint_dir=ckpt, checkpoint_min_seconds=0)


class _Counting:
    """Wraps the real engine, counting fits (a loaded checkpoint is not a fit)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: dict[int, BaseException] | None = None):
        import latentseg.models as models_mod

        self.real = models_mod.fit
        self.calls: list[int] = []
        self.fail = dict(fail or {})
        monkeypatch.setattr(models_mod, "fit", self)

    def __call__(self, data: Any, model: str, k: int, **kw: Any) -> Any:
        self.calls.append(k)
        if k in self.fail:
            raise self.fail[k]
        return self.real(data, model, k, **kw)


def test_a_k2_result_renamed_over_k3_is_discarded_and_refitted(tmp_path, monkeypatch):
    first = _sweep(tmp_path)
    shutil.copyfile(tmp_path / "gmm-k2.nc", tmp_path / "gmm-k3.nc")
    eng = _Counting(monkeypatch)
    with pytest.warns(LatentsegWarning, match=r"gmm-k3.json' does not match gmm-k3.nc"):
        again = _sweep(tmp_path)
    assert eng.calls == [3]
    assert again.result("gmm", 3).k == 3
    np.testing.assert_allclose(again.table["bic"], first.table["bic"])


def test_a_checkpoint_renamed_across_k_is_discarded(tmp_path, monkeypatch):
    _sweep(tmp_path, ks=(2,))
    for ext in ("json", "nc"):
        shutil.copyfile(tmp_path / f"gmm-k2.{ext}", tmp_path / f"gmm-k3.{ext}")
    eng = _Counting(monkeypatch)
    with pytest.warns(LatentsegWarning, match="holds the fit of gmm with k = 2, not gmm with k = 3"):
        again = _sweep(tmp_path)
    assert eng.calls == [3] and again.result("gmm", 3).k == 3


def test_another_surveys_fit_with_the_same_respondent_ids_is_refitted(tmp_path, monkeypatch):
    other = X.copy()
    other.iloc[:, 0] = other.iloc[:, 0][::-1].to_numpy()  # same ids, other answers
    _sweep(tmp_path, data=other)
    eng = _Counting(monkeypatch)
    with pytest.warns(LatentsegWarning, match="was fitted on other data"):
        sel = _sweep(tmp_path)
    assert eng.calls == [2, 3]
    assert all(not r.from_checkpoint for r in sel.records)


def test_tampered_checkpoint_json_or_nc_is_discarded(tmp_path, monkeypatch):
    _sweep(tmp_path)
    doc = json.loads((tmp_path / "gmm-k2.json").read_text(encoding="utf-8"))
    doc["row"]["bic"] = -1e9  # a "better" BIC, to win the recommendation
    (tmp_path / "gmm-k2.json").write_text(json.dumps(doc), encoding="utf-8")
    with open(tmp_path / "gmm-k3.nc", "ab") as fh:
        fh.write(b"\0")
    eng = _Counting(monkeypatch)
    with pytest.warns(LatentsegWarning) as caught:
        sel = _sweep(tmp_path)
    said = " ".join(str(w.message) for w in caught)
    assert "gmm-k2.json' does not match its checksum" in said and "gmm-k3.json' does not match gmm-k3.nc" in said
    assert eng.calls == [2, 3] and sel.table["bic"].min() > -1e9
    # the refits were checkpointed again: a third run loads both, fits nothing
    del eng.calls[:]
    _sweep(tmp_path)
    assert eng.calls == []


@pytest.mark.parametrize(
    "error",
    [FitError("no convergence"), RuntimeError("engine bug"), ImportError("no module named pymc")],
    ids=["FitError", "RuntimeError", "ImportError"],
)
def test_a_failed_fit_is_in_the_table_but_retried_on_rerun(tmp_path, monkeypatch, error):
    eng = _Counting(monkeypatch, fail={3: error})
    first = _sweep(tmp_path)
    t = first.table.set_index("k")
    assert t.loc[3, "status"] == "failed" and t.loc[2, "status"] == "ok"
    assert [f["k"] for f in first.failures] == [3]
    assert not (tmp_path / "gmm-k3.json").exists()
    eng.fail.clear()
    del eng.calls[:]
    second = _sweep(tmp_path)
    assert eng.calls == [3]  # k = 2 loaded, k = 3 retried
    assert (second.table["status"] == "ok").all()
    assert [r.from_checkpoint for r in second.records] == [True, False]
