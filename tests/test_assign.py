"""Scoring new respondents: in memory, streamed CSV / Parquet, Dask; ratings, features, observables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentseg.deliver.artifacts import load_model, save_model
from latentseg.deliver.assign import Scorer, assign, assign_dask, assign_file
from latentseg.errors import ConfigError, SurveyError
from latentseg.models import fit, predict_proba

P_COLS = ["p_1", "p_2", "p_3"]


def _features(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    centers = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, 0.0, 5.0, 0.0], [0.0, 6.0, 0.0, 6.0]])
    X = centers[z] + rng.normal(size=(n, 4))
    return pd.DataFrame(X, columns=["a", "b", "c", "d"], index=pd.Index([f"id{i:04d}" for i in range(n)], name="respondent_id"))


@pytest.fixture(scope="module")
def saved_features(tmp_path_factory):
    X = _features()
    result = fit(X, "gmm", 3, random_seed=5, n_init=2).with_labels(["=SUM(A1)", "Speed <b>", "Accuracy"])
    path = tmp_path_factory.mktemp("models") / "feat"
    save_model(path, result, meta={"data": {"kind": "features", "id_column": "respondent_id"}})
    return path, result, X


def _with_ids(X: pd.DataFrame) -> pd.DataFrame:
    return X.reset_index()


def test_round_trip_assign_gives_identical_memberships(saved_features):
    path, result, X = saved_features
    out = assign(load_model(path), _with_ids(X))
    P = out[P_COLS].to_numpy()
    np.testing.assert_array_equal(P, predict_proba(result, X))  # the saved model predicts exactly as the fitted one
    np.testing.assert_allclose(P, result.memberships, atol=1e-12)  # and reproduces the fit's memberships
    assert out["respondent_id"].tolist() == X.index.tolist()
    assert out["segment"].tolist() == result.assignment.tolist()
    assert out["segment_name"].tolist() == [result.segment_labels[s - 1] for s in result.assignment]


@pytest.mark.parametrize("src_ext", ["csv", "parquet"])
@pytest.mark.parametrize("out_ext", ["csv", "parquet"])
def test_streamed_files_equal_in_memory(tmp_path, saved_features, src_ext, out_ext):
    path, result, X = saved_features
    frame = _with_ids(X).assign(extra="ignored")
    src = tmp_path / f"new.{src_ext}"
    if src_ext == "csv":
        frame.to_csv(src, index=False)
    else:
        frame.to_parquet(src, index=False, row_group_size=50)
    dst = tmp_path / f"out.{out_ext}"
    summary = assign_file(path, src, dst, chunksize=37)
    got = pd.read_csv(dst) if out_ext == "csv" else pd.read_parquet(dst)
    ref = assign(load_model(path), frame)
    # the same numbers; only the BLAS blocking of a chunk may move the last bits
    np.testing.assert_allclose(got[P_COLS].to_numpy(), ref[P_COLS].to_numpy(), rtol=1e-12, atol=1e-15)
    assert got["segment"].tolist() == ref["segment"].tolist()
    assert got["respondent_id"].astype(str).tolist() == X.index.tolist()
    assert summary.rows == summary.scored == len(X)
    if src_ext == "parquet":
        assert summary.chunks == 7  # 240 rows in chunks of at most 37: it streamed
    assert sum(summary.counts.values()) == len(X)
    np.testing.assert_allclose(summary.expected_shares, ref[P_COLS].mean().to_numpy())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    if out_ext == "csv":
        text = dst.read_text()
        assert "'=SUM(A1)" in text and "\n=SUM" not in text and ",=SUM" not in text  # formula neutralised


def test_rows_without_an_id_column_are_numbered_and_empty_rows_unscored(tmp_path, saved_features):
    path, result, X = saved_features
    frame = X.reset_index(drop=True)
    frame.iloc[3] = np.nan
    src = tmp_path / "new.csv"
    frame.to_csv(src, index=False)
    assign_file(path, src, tmp_path / "o.parquet", chunksize=100)
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert got["row"].tolist() == list(range(1, len(X) + 1))
    assert pd.isna(got.loc[3, "segment"]) and got.loc[3, P_COLS].isna().all()
    assert got["segment"].notna().sum() == len(X) - 1


def test_missing_columns_named_against_fit_time(tmp_path, saved_features):
    path, _, X = saved_features
    src = tmp_path / "new.csv"
    _with_ids(X).drop(columns=["b", "d"]).to_csv(src, index=False)
    with pytest.raises(SurveyError, match=r"lacks 2 of the 4 columns the model was fitted on: \[b, d\] \(expected \[a, b, c, d\]\)"):
        assign_file(path, src, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(SurveyError, match=r"new data lacks 1 of the 4 columns .*\[c\]"):
        assign(path, X.drop(columns=["c"]))


def test_bad_values_and_bad_arguments(tmp_path, saved_features):
    path, _, X = saved_features
    frame = _with_ids(X).astype({"c": object})
    frame.loc[200, "c"] = "lots"
    src = tmp_path / "new.csv"
    frame.to_csv(src, index=False)
    with pytest.raises(SurveyError, match=r"column 'c' has a non-numeric value 'lots' at line 202 of the file; expected numbers"):
        assign_file(path, src, tmp_path / "o.parquet", chunksize=50)
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written
    with pytest.raises(SurveyError, match=r"column 'c' has non-numeric values \('lots'\) at rows \[id0200\]"):
        assign(path, frame.set_index("respondent_id"))
    with pytest.raises(ConfigError, match="unknown extension; use .csv"):
        assign_file(path, src, tmp_path / "o.xlsx")
    with pytest.raises(ConfigError, match="chunksize must be a positive integer; got 0"):
        assign_file(path, src, tmp_path / "o.csv", chunksize=0)
    with pytest.raises(SurveyError, match="does not exist"):
        assign_file(path, tmp_path / "none.csv", tmp_path / "o.csv")
    with pytest.raises(ConfigError, match="not on survey ratings; score it with source='features'"):
        Scorer(path, source="ratings")
    with pytest.raises(ConfigError, match="has no finder model"):
        Scorer(path, source="observables")


def _survey_frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    """Ratings with two planted segments: importance 1-5, satisfaction 1-10."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    imp = np.where(z[:, None] == 0, [5, 5, 2, 2], [2, 2, 5, 5]) + rng.integers(-1, 1, (n, 4))
    sat = np.where(z[:, None] == 0, [2, 2, 8, 8], [8, 8, 2, 2]) + rng.integers(-1, 2, (n, 4))
    df = pd.DataFrame({"respondent_id": [f"r{i}" for i in range(n)]})
    for j in range(4):
        df[f"imp_o{j + 1}"] = np.clip(imp[:, j], 1, 5).astype(float)
    for j in range(4):
        df[f"sat_o{j + 1}"] = np.clip(sat[:, j], 1, 10).astype(float)
    df["role"] = np.where(z == 0, "ops", "pm")
    df.loc[5, "imp_o2"] = 99  # a missing-value code
    return df


@pytest.fixture(scope="module")
def saved_survey(tmp_path_factory):
    from latentseg.decide.finder import finder
    from latentseg.io import survey_from_frame
    from latentseg.prepare.scoring import opportunity_scores

    df = _survey_frame()
    survey = survey_from_frame(df, imp_scale="1-5", sat_scale="1-10", missing_codes=[99])
    scores = opportunity_scores(survey)
    result = fit(scores, "gmm", 2, random_seed=1, covariance="EEI", n_init=2)
    spec = {
        "kind": "survey",
        "id_column": "respondent_id",
        "outcomes": survey.outcome_ids,
        "imp_columns": [f"imp_{o}" for o in survey.outcome_ids],
        "sat_columns": [f"sat_{o}" for o in survey.outcome_ids],
        "imp_scale": "1-5",
        "sat_scale": "1-10",
        "missing_codes": [99.0],
    }
    fnd = finder(result, survey.profile, random_seed=1)
    path = tmp_path_factory.mktemp("models") / "survey"
    save_model(path, result, meta={"data": spec, "finder": fnd})
    return path, result, df, scores, fnd


def test_ratings_path_applies_fit_time_scoring(saved_survey):
    path, result, df, scores, _ = saved_survey
    out = assign(path, df)
    np.testing.assert_array_equal(out[["p_1", "p_2"]].to_numpy(), predict_proba(result, scores))
    np.testing.assert_allclose(out[["p_1", "p_2"]].to_numpy(), result.memberships, atol=1e-12)
    bad = df.copy()
    bad.loc[[7, 9], "sat_o3"] = 11
    with pytest.raises(SurveyError, match=r"column 'sat_o3' has 2 value\(s\) outside the scale 1-10 .* at rows \[7, 9\]"):
        assign(path, bad)
    with pytest.raises(SurveyError, match=r"lacks 1 of the 8 rating columns .*\[imp_o4\]"):
        assign(path, df.drop(columns=["imp_o4"]))


def test_observables_path_uses_the_finder(tmp_path, saved_survey):
    path, _, df, _, fnd = saved_survey
    prospects = df[["respondent_id", "role"]].iloc[:50]
    out = assign(path, prospects, source="observables")
    np.testing.assert_allclose(out[["p_1", "p_2"]].to_numpy(), fnd.predict_proba(prospects).to_numpy())
    prospects.to_csv(tmp_path / "p.csv", index=False)
    assign_file(path, tmp_path / "p.csv", tmp_path / "p_out.csv", source="observables", chunksize=20)
    got = pd.read_csv(tmp_path / "p_out.csv")
    np.testing.assert_allclose(got[["p_1", "p_2"]].to_numpy(), out[["p_1", "p_2"]].to_numpy(), rtol=1e-12, atol=1e-15)


def test_dask_equals_in_memory(saved_features):
    dask = pytest.importorskip("dask")
    import dask.dataframe as dd

    path, _, X = saved_features
    frame = _with_ids(X)
    ref = assign(path, frame)
    ddf = dd.from_pandas(frame, npartitions=4)
    with dask.config.set(scheduler="synchronous"):
        got = assign_dask(path, ddf).compute()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), ref.reset_index(drop=True), check_dtype=False,
                                  rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got[P_COLS].to_numpy(), ref[P_COLS].to_numpy(), rtol=1e-12, atol=1e-15)


def test_dask_local_cluster_equals_in_memory(saved_features):
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    path, _, X = saved_features
    frame = _with_ids(X)
    ref = assign(path, frame)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster):
        got = assign_dask(load_model(path), dd.from_pandas(frame, npartitions=3)).compute()
    np.testing.assert_allclose(got[P_COLS].to_numpy(), ref[P_COLS].to_numpy(), rtol=1e-12, atol=1e-15)
    assert got["segment"].tolist() == ref["segment"].tolist()


def test_dask_missing_is_one_clear_message(saved_features, monkeypatch):
    import sys

    path, _, X = saved_features
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)  # as if dask were not installed
    with pytest.raises(ConfigError, match=r"Scoring on Dask needs dask\[dataframe\]; install it with: pip install \"latentseg\[dask\]\""):
        assign_dask(path, X)
