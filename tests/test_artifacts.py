"""Saved models: exact round trip, refusal of other versions and changed contents, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentseg.deliver import artifacts
from latentseg.deliver.artifacts import (
    META_FILE,
    RESULT_FILE,
    load_model,
    load_result,
    save_model,
    save_result,
)
from latentseg.errors import ModelFileError
from latentseg.models import fit, predict_proba
from latentseg.result import SegmentationResult


def _gaussian_data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0, 1, (70, 3)), rng.normal(4, 1, (50, 3)), rng.normal((0, 5, 0), 1, (30, 3))]


@pytest.fixture(scope="module")
def gmm_fit() -> tuple[SegmentationResult, np.ndarray]:
    X = _gaussian_data()
    return fit(X, "gmm", 3, random_seed=3, n_init=3), X


def _assert_same_result(a: SegmentationResult, b: SegmentationResult) -> None:
    assert a.model == b.model and a.k == b.k
    assert a.respondent_ids.equals(b.respondent_ids)
    assert a.feature_names == b.feature_names
    for name in ("memberships", "centers", "shares", "share_lower", "share_upper"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("center_intervals", "membership_intervals"):
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None)
        if va is not None:
            np.testing.assert_array_equal(va, vb)
    assert a.interval_method == b.interval_method
    assert a.labels == b.labels
    assert set(a.params) == set(b.params) and set(a.shared_params) == set(b.shared_params)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
        assert np.asarray(a.params[key]).dtype == np.asarray(b.params[key]).dtype
    for key in a.shared_params:
        np.testing.assert_array_equal(a.shared_params[key], b.shared_params[key])
    assert dict(a.settings) == dict(b.settings)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_gmm_round_trip_gives_identical_predictions(tmp_path, gmm_fit):
    result, X = gmm_fit
    saved = save_model(tmp_path / "m", result, config={"model": {"family": "gmm", "k": 3}}, meta={"note": "x"})
    loaded = load_model(tmp_path / "m")
    _assert_same_result(result, loaded.result)
    np.testing.assert_array_equal(predict_proba(loaded.result, X), predict_proba(result, X))
    assert loaded.model_id == saved.model_id and len(loaded.model_id) == 16
    assert loaded.config == {"model": {"family": "gmm", "k": 3}}
    assert loaded.meta["note"] == "x"
    assert loaded.meta["versions"]["latentseg"] == artifacts.__version__
    assert loaded.meta["data_hash"] == result.provenance.get("data_hash")
    # no pickle anywhere: exactly the netCDF file and the JSON file
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted([RESULT_FILE, META_FILE])
    assert (tmp_path / "m" / RESULT_FILE).read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_lca_round_trip_keeps_extras_tables(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 120)
    codes = np.where(rng.random((120, 5)) < np.where(z[:, None] == 1, 0.85, 0.15), 1, 0)
    frame = pd.DataFrame(codes, columns=[f"item {i}" for i in range(5)], index=[f"r{i}" for i in range(120)])
    result = fit(frame, "lca", 2, random_seed=2)
    save_model(tmp_path / "lca", result)
    loaded = load_model(tmp_path / "lca").result
    _assert_same_result(result, loaded)
    for key, val in result.extras.items():
        if isinstance(val, pd.DataFrame):
            pd.testing.assert_frame_equal(loaded.extras[key], val)
    np.testing.assert_array_equal(predict_proba(loaded, frame), predict_proba(result, frame))


def _bayes_like_result() -> SegmentationResult:
    import xarray as xr

    rng = np.random.default_rng(7)
    n, k, d = 12, 3, 2
    post = xr.Dataset(
        {
            "w": (("chain", "draw", "segment"), rng.dirichlet(np.ones(k), size=(2, 5))),
            "mu": (("chain", "draw", "segment", "outcome"), rng.normal(size=(2, 5, k, d))),
        },
        coords={"chain": [0, 1], "draw": np.arange(5), "segment": np.arange(1, k + 1), "outcome": ["o/1", "o 2"]},
        attrs={"created_at": "2026-01-01", "inference_library": "pymc", "sampling_time": 1.5, "tuned": True},
    )
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 5), bool))}),
            "log_likelihood": xr.Dataset({"x": (("chain", "draw", "respondent"), rng.normal(size=(2, 5, n)))}),
        }
    )
    z = rng.dirichlet(np.ones(k), size=n)
    return SegmentationResult.from_memberships(
        "bayes-gmm",
        z,
        centers=rng.normal(size=(k, d)),
        feature_names=("o/1", "o 2"),
        respondent_ids=[f"id-{i}" for i in range(n)],
        share_interval=(np.full(k, 0.1), np.full(k, 0.6)),
        interval_method="95% credible (equal-tailed)",
        params={"weights": np.full(k, 1 / k), "means": rng.normal(size=(k, d)), "mask": np.eye(k, d, dtype=bool)},
        center_intervals=rng.normal(size=(k, d, 2)),
        membership_intervals=rng.random(size=(n, k, 2)),
        criteria={"loo": -10.5, "loo_se": 1.2, "waic": float("nan")},
        diagnostics={"converged": True, "rhat_max": 1.004, "warnings": [], "chains": (0, 1)},
        settings={"draws": 5, "priors": {"alpha": 1.0}},
        labels=("A", "B", "C"),
        posterior=tree,
        extras={"draws_used": np.arange(10), "note": {"x": [1, 2]}},
    )


def test_posterior_datatree_round_trip(tmp_path):
    result = _bayes_like_result()
    save_model(tmp_path / "b", result)
    loaded = load_model(tmp_path / "b").result
    _assert_same_result(result, loaded)
    assert loaded.posterior.identical(result.posterior)
    assert loaded.posterior["posterior"].attrs["tuned"] is True
    assert loaded.criteria["loo"] == -10.5 and np.isnan(loaded.criteria["waic"])
    assert loaded.diagnostics["chains"] == (0, 1)
    np.testing.assert_array_equal(loaded.extras["draws_used"], np.arange(10))
    assert loaded.extras["note"] == {"x": [1, 2]}
    assert loaded.params["mask"].dtype == bool
    # relabelling still permutes the posterior after a round trip
    moved = loaded.relabel([2, 1, 3])
    np.testing.assert_array_equal(moved.posterior["posterior"]["w"].values[..., 0], result.posterior["posterior"]["w"].values[..., 1])


def test_tables_and_tagged_values_round_trip(tmp_path, gmm_fit):
    table = pd.DataFrame(
        {
            "name": ["=cmd()", "Speed <fast>", None],
            "share": [0.5, np.nan, 0.25],
            "n": [1, 2, 3],
            "flag": [True, False, True],
            "cat": pd.Categorical(["a", "b", "a"]),
        },
        index=pd.Index([1, 2, 3], name="segment"),
    )
    meta = {"cleaning": {"excluded": {"r1": "straight-liner"}, "thresholds": (0.2, None)}, "x": np.float64(np.inf)}
    save_model(tmp_path / "t", gmm_fit[0], meta=meta, tables={"segment_map": table})
    loaded = load_model(tmp_path / "t")
    pd.testing.assert_frame_equal(loaded.tables["segment_map"], table)
    assert loaded.meta["cleaning"] == {"excluded": {"r1": "straight-liner"}, "thresholds": (0.2, None)}
    assert loaded.meta["x"] == np.inf


def test_missing_damaged_or_foreign_files_are_refused(tmp_path, gmm_fit):
    with pytest.raises(ModelFileError, match=r"No saved model at '.*nowhere': model.json not found"):
        load_model(tmp_path / "nowhere")
    d = tmp_path / "bad"
    d.mkdir()
    (d / META_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match="is damaged: model.json is not valid JSON"):
        load_model(d)
    (d / META_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="is not a latentseg model file"):
        load_model(d)
    with pytest.raises(ModelFileError, match="meta may not set reserved key"):
        save_model(tmp_path / "r", gmm_fit[0], meta={"model_id": "x"})
    with pytest.raises(ModelFileError, match=r"Cannot save meta\['obj'\]: values of type object have no JSON form"):
        save_model(tmp_path / "r", gmm_fit[0], meta={"obj": object()})


def _rewrite(path: Path, change) -> None:
    doc = json.loads((path / META_FILE).read_text())
    change(doc)
    (path / META_FILE).write_text(json.dumps(doc))


def test_other_version_is_refused(tmp_path, gmm_fit):
    d = tmp_path / "m"
    save_model(d, gmm_fit[0])

    def other_version(doc):
        doc["latentseg_version"] = "0.2.0"
        doc["model_id"] = artifacts._model_id(doc)  # a genuine file from another version

    _rewrite(d, other_version)
    with pytest.raises(ModelFileError, match=r"written by latentseg 0\.2\.0 .*this is latentseg 0\.1\.0"):
        load_model(d)


def test_changed_contents_are_refused(tmp_path, gmm_fit):
    d = tmp_path / "m"
    save_model(d, gmm_fit[0])
    _rewrite(d, lambda doc: doc["segment_labels"].__setitem__(0, "Renamed"))
    with pytest.raises(ModelFileError, match="does not match its id .*model.json was changed"):
        load_model(d)

    save_model(d, gmm_fit[0])
    data = bytearray((d / RESULT_FILE).read_bytes())
    data[-100] ^= 0xFF
    (d / RESULT_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its id .*result.nc has changed"):
        load_model(d)
    (d / RESULT_FILE).unlink()
    with pytest.raises(ModelFileError, match="result.nc is missing"):
        load_model(d)


class _Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


@pytest.mark.parametrize("crash_at", ["write", "first replace", "second replace"])
def test_crash_mid_save_never_leaves_a_model_that_loads_wrongly(tmp_path, gmm_fit, monkeypatch, crash_at):
    old = gmm_fit[0]
    new = old.with_labels(["N1", "N2", "N3"])
    d = tmp_path / "m"
    save_model(d, old)

    calls = {"n": 0}
    real_replace, real_write = artifacts._replace, artifacts._write_tree

    def replace(src, dst):
        calls["n"] += 1
        if (crash_at == "first replace" and calls["n"] == 1) or (crash_at == "second replace" and calls["n"] == 2):
            raise _Crash
        real_replace(src, dst)

    def write(tree, path):
        real_write(tree, path)
        if crash_at == "write":
            raise _Crash

    monkeypatch.setattr(artifacts, "_replace", replace)
    monkeypatch.setattr(artifacts, "_write_tree", write)
    with pytest.raises(_Crash):
        save_model(d, new)
    monkeypatch.undo()

    if crash_at == "second replace":
        # new result.nc beside the old model.json: the hashes disagree, so it is refused
        with pytest.raises(ModelFileError, match="does not match its id"):
            load_model(d)
    else:
        assert load_model(d).result.labels == old.labels  # the previous model, untouched
    assert not list(d.glob(".saving-*"))  # the staging directory is cleaned up
    save_model(d, new)  # and the next save works
    assert load_model(d).result.labels == ("N1", "N2", "N3")


def test_first_save_crashing_leaves_nothing_loadable(tmp_path, gmm_fit, monkeypatch):
    monkeypatch.setattr(artifacts, "_replace", lambda src, dst: (_ for _ in ()).throw(_Crash()))
    with pytest.raises(_Crash):
        save_model(tmp_path / "new", gmm_fit[0])
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match="No saved model"):
        load_model(tmp_path / "new")


@pytest.mark.xdist_group("artifacts-kill")
def test_killed_process_never_leaves_a_half_written_model(tmp_path):
    """SIGKILL a process that saves models in a loop; whatever is on disk loads completely or is refused."""
    script = textwrap.dedent(
        f"""
        import numpy as np, sys
        from latentseg.result import SegmentationResult
        from latentseg.deliver.artifacts import save_model
        rng = np.random.default_rng(0)
        i = 0
        while True:
            z = rng.dirichlet(np.ones(3), size=5000)
            r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((3, 2)), feature_names=("a", "b"),
                                                    labels=(str(i), str(i), str(i)))
            save_model({str(tmp_path / 'm')!r}, r)
            i += 1
            sys.stdout.write(f"{{i}}\\n"); sys.stdout.flush()
        """
    )
    outcomes = []
    for delay in (0.05,):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env={**os.environ})
        assert proc.stdout is not None
        proc.stdout.readline()  # one save finished: from now on every kill lands on a model in place
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            m = load_model(tmp_path / "m")
        except ModelFileError as exc:
            outcomes.append("refused")
            assert "does not match its id" in str(exc)
        else:
            outcomes.append("loaded")
            labels = set(m.result.labels)
            assert len(labels) == 1  # one complete save, never a mix
            np.testing.assert_allclose(m.result.memberships.sum(axis=1), 1.0)


def test_save_result_single_file(tmp_path, gmm_fit):
    result, X = gmm_fit
    p = save_result(result, tmp_path / "fit.nc")
    _assert_same_result(result, load_result(p))
    assert [x.name for x in tmp_path.iterdir()] == ["fit.nc"]  # no temporary left behind
    with pytest.raises(ModelFileError, match="No result file at"):
        load_result(tmp_path / "other.nc")
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with pytest.raises(ModelFileError, match="not a readable netCDF file"):
        load_result(tmp_path / "junk.nc")


def test_summary_is_json(tmp_path, gmm_fit):
    save_model(tmp_path / "m", gmm_fit[0], name="my-model")
    s = load_model(tmp_path / "m").summary()
    json.dumps(s)
    assert s["name"] == "my-model" and s["k"] == 3 and len(s["segments"]) == 3


@pytest.mark.slow
def test_real_bayesian_fit_round_trip(tmp_path):
    """A posterior from the Bayesian engine (ArviZ attributes, sample stats, log-likelihood) survives."""
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    with warnings.catch_warnings():  # a short run; whether it converged is not the point here
        warnings.simplefilter("ignore")
        result = fit(X, "bayes-gmm", 2, random_seed=1, draws=100, tune=100, chains=2)
    save_model(tmp_path / "b", result)
    loaded = load_model(tmp_path / "b").result
    _assert_same_result(result, loaded)
    assert loaded.posterior.identical(result.posterior)
    np.testing.assert_array_equal(predict_proba(loaded, X), predict_proba(result, X))
