"""assign's compiled scorer for diagonal Gaussian mixtures (issue 18 item 5) gives the engine's
numbers: the same modal segments, probabilities equal to rounding, on awkward data (missing
values, rows with one or no observed value, far tails, tile and block boundaries), and the same
files as the engine's path (text ids, blanks, chunks) in Parquet and CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import latentseg.deliver.assign as assign_mod
from latentseg.deliver._assign_kernels import TILE
from latentseg.deliver.artifacts import save_model
from latentseg.deliver.assign import Scorer, assign_file
from latentseg.errors import ConfigError
from latentseg.models import fit, predict_proba

COLS = ["a", "b", "c", "d", "e"]


def _training(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    centers = np.array([[0.0] * 5, [4.0, 0.0, 4.0, 0.0, 2.0], [0.0, 5.0, 0.0, 5.0, -2.0]])
    scale = np.array([1.0, 0.5, 2.0, 1.0, 3.0])  # unequal spreads: VVI and EEI differ
    return pd.DataFrame(centers[z] + scale * rng.normal(size=(n, 5)), columns=COLS)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    X = _training()
    out = {}
    for structure in ("VVI", "EEI", "VII", "VVV"):
        path = tmp_path_factory.mktemp("m") / structure
        result = fit(X, "gmm", 3, covariance=structure, random_seed=2, n_init=2)
        out[structure] = (save_model(path, result, meta={"data": {"kind": "features", "id_column": "respondent_id"}}),
                          result)
    return out


def _awkward(n: int = 1500, seed: int = 11) -> np.ndarray:
    """New rows crossing several kernel tiles, with every kind of gap and tail."""
    rng = np.random.default_rng(seed)
    X = rng.normal(2.0, 3.0, size=(n, 5))
    X[rng.random((n, 5)) < 0.1] = np.nan  # about 10% of cells missing
    X[[i for i in (4, TILE - 1, TILE, n - 1) if i < n]] = np.nan  # nothing observed, at tile edges, at the end
    X[7, 1:] = np.nan  # one value observed
    X[min(TILE + 1, n - 2), :4] = np.nan
    X[20:30] = rng.normal(0.0, 1000.0, size=(10, 5))  # far tails: probabilities underflow to 0 or subnormals
    X[40:60, 2] = np.nan  # a column missing for a stretch
    X[n // 2] = [0, 0, 0, 0, 0]  # integers as floats
    return X


@pytest.mark.parametrize("structure", ["VVI", "EEI", "VII"])
def test_the_kernel_gives_the_engines_memberships(models, monkeypatch, structure):
    saved, result = models[structure]
    monkeypatch.setattr(assign_mod, "BLOCK_ROWS", 700)  # blocks that end inside a tile
    scorer = Scorer(saved, source="features")
    assert scorer._diagonal() is not None
    X = _awkward()
    P, seg = scorer._score_matrix(X)
    empty = np.isnan(X).all(axis=1)
    assert P.shape == (3, len(X)) and np.isnan(P[:, empty]).all() and (seg[empty] == -1).all()
    ref = predict_proba(result, X[~empty])
    got = P.T[~empty]
    # the sums run in another order. Measured over training seeds 3-5, new-data seeds 11-12 and the
    # three structures: |difference| <= 1.0e-14 (relative <= 1.4e-13 for VVI / VII; up to 5e-10 for
    # EEI's probabilities below 1e-100 in the far tails, where the log densities are ~1e5 and hold
    # ~1e-11 of rounding in either path); the absolute threshold is 10x the worst
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-13)
    assert (got == 0).sum() == (ref == 0).sum() > 0  # the same underflows (the far tails)
    np.testing.assert_array_equal(seg[~empty], ref.argmax(axis=1))  # the same modal segments, exactly
    top2 = np.sort(ref, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-9  # no near tie a last bit could flip (min gap measured 2.9e-5)


def _frame(n: int = 230) -> pd.DataFrame:
    X = _awkward(n, seed=5)
    frame = pd.DataFrame(X, columns=COLS)
    frame["e"] = frame["e"].round().astype("Int64")  # whole numbers with gaps: Parquet int64 with nulls
    ids = [f"{i:03d}" for i in range(n)]  # text ids: 007 stays 007
    ids[9] = "=HYPERLINK(1)"  # neutralised in text output
    frame.insert(0, "respondent_id", ids)
    return frame


@pytest.mark.parametrize("src_ext", ["parquet", "csv"])
@pytest.mark.parametrize("out_ext", ["parquet", "csv"])
def test_files_scored_by_the_kernel_equal_the_engines(models, tmp_path, monkeypatch, src_ext, out_ext):
    saved, _ = models["VVI"]
    frame = _frame()
    src = tmp_path / f"new.{src_ext}"
    frame.to_parquet(src, row_group_size=50) if src_ext == "parquet" else frame.to_csv(src, index=False)
    fast = assign_file(saved, src, tmp_path / f"fast.{out_ext}", chunksize=37, source="features")
    monkeypatch.setattr(Scorer, "_diagonal", lambda self: None)  # the engine's path
    slow = assign_file(saved, src, tmp_path / f"slow.{out_ext}", chunksize=37, source="features")
    read = (lambda p: pd.read_parquet(p)) if out_ext == "parquet" else (lambda p: pd.read_csv(p, dtype={"respondent_id": str}))
    got, ref = read(tmp_path / f"fast.{out_ext}"), read(tmp_path / f"slow.{out_ext}")
    assert list(got.columns) == list(ref.columns) == ["respondent_id", "segment", "segment_name", "p_1", "p_2", "p_3"]
    assert got.dtypes.equals(ref.dtypes)
    pd.testing.assert_frame_equal(got.iloc[:, :3], ref.iloc[:, :3])  # ids, segments, names, blanks: identical
    empty = frame[COLS].isna().all(axis=1).to_numpy()
    assert got["segment"].isna().to_numpy().tolist() == empty.tolist() and empty.sum() == 2
    assert got["respondent_id"].iloc[7] == "007"
    np.testing.assert_allclose(got.iloc[:, 3:].to_numpy(), ref.iloc[:, 3:].to_numpy(), rtol=1e-9, atol=1e-13)  # as above
    assert fast.counts == slow.counts and fast.scored == slow.scored == 228 and fast.chunks == slow.chunks == 7
    np.testing.assert_allclose(fast.expected_shares, slow.expected_shares, rtol=1e-12)


def test_row_numbers_as_ids(models, tmp_path):
    saved, _ = models["VVI"]
    frame = _frame().drop(columns="respondent_id")
    frame.to_parquet(tmp_path / "new.parquet")
    assign_file(saved, tmp_path / "new.parquet", tmp_path / "o.parquet", chunksize=37, source="features")
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert got.columns[0] == "row" and got["row"].tolist() == list(range(1, len(frame) + 1))  # delta-encoded, exact


def test_infinite_values_are_refused_as_before(models, tmp_path):
    saved, _ = models["VVI"]
    frame = _frame(60)
    frame.loc[45, "c"] = np.inf
    frame.to_parquet(tmp_path / "inf.parquet")
    with pytest.raises(ConfigError, match=r"Infinite values at rows .*needs finite numbers"):
        assign_file(saved, tmp_path / "inf.parquet", tmp_path / "o.parquet", chunksize=20, source="features")
    assert not (tmp_path / "o.parquet").exists()


def test_full_covariance_models_keep_the_engines_path(models, tmp_path, monkeypatch):
    saved, result = models["VVV"]
    assert Scorer(saved, source="features")._diagonal() is None
    frame = _frame(80).dropna()
    frame.to_parquet(tmp_path / "new.parquet")
    assign_file(saved, tmp_path / "new.parquet", tmp_path / "o.parquet", chunksize=30, source="features")
    got = pd.read_parquet(tmp_path / "o.parquet")
    np.testing.assert_allclose(got[["p_1", "p_2", "p_3"]].to_numpy(), predict_proba(result, frame[COLS].to_numpy()),
                               rtol=1e-12, atol=1e-15)
