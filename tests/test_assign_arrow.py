"""assign_file's Arrow path (numeric feature files scored without pandas, in blocks, with
background reading and writing) gives the numbers the in-memory path gives, ids and blanks
handled alike (issue 18 item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import latentseg.deliver.assign as assign_mod
from latentseg.deliver.artifacts import save_model
from latentseg.deliver.assign import assign, assign_file
from latentseg.errors import SurveyError
from latentseg.models import fit

COLS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(8)
    X = pd.DataFrame(np.repeat([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 5.0, 5.0]], 40, axis=0)
                     + rng.normal(size=(120, 3)), columns=COLS)
    return save_model(tmp_path_factory.mktemp("m") / "m", fit(X, "gmm", 3, random_seed=1, n_init=2))


def _new(n: int = 95) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(rng.normal(2.0, 3.0, size=(n, 3)), columns=COLS)
    frame.iloc[4, 1] = np.nan  # one value missing: dropped from that row's likelihood
    frame.iloc[10, :] = np.nan  # nothing to score
    frame.insert(0, "respondent_id", [f"c{i:03d}" for i in range(n)])
    frame.loc[7, "respondent_id"] = "=HYPERLINK(1)"  # a formula a spreadsheet would run
    return frame


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_arrow_path_matches_the_in_memory_scores(saved, tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(assign_mod, "BLOCK_ROWS", 7)  # several blocks per chunk, a short last one
    new = _new()
    src = tmp_path / f"new{suffix}"
    new.to_parquet(src) if suffix == ".parquet" else new.to_csv(src, index=False)
    expect = assign(saved, new, source="features", id_column="respondent_id")
    seen = []
    real = assign_mod.Scorer._score_arrow
    monkeypatch.setattr(assign_mod.Scorer, "_score_arrow", lambda self, b, o: seen.append(o) or real(self, b, o))
    summary = assign_file(saved, src, tmp_path / "out.parquet", chunksize=20, source="features",
                          id_column="respondent_id")
    assert seen == [0, 20, 40, 60, 80]  # every chunk went the Arrow way
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert got["respondent_id"].tolist() == new["respondent_id"].tolist()
    np.testing.assert_allclose(got[["p_1", "p_2", "p_3"]].to_numpy(), expect[["p_1", "p_2", "p_3"]].to_numpy(),
                               rtol=1e-12, atol=1e-15)
    assert got["segment"].isna().tolist() == expect["segment"].isna().tolist() == [i == 10 for i in range(95)]
    assert got["segment"].dropna().tolist() == expect["segment"].dropna().tolist()
    assert got["segment_name"].astype(object).where(got["segment"].notna()).tolist()[:3] == \
        expect["segment_name"].astype(object).tolist()[:3]
    assert summary.rows == 95 and summary.scored == 94
    counts = expect["segment"].value_counts()
    assert summary.counts == {j: int(counts.get(j, 0)) for j in (1, 2, 3)}
    # CSV output: the formula-like id is neutralised, as on the pandas path
    assign_file(saved, src, tmp_path / "out.csv", chunksize=20, source="features", id_column="respondent_id")
    text = pd.read_csv(tmp_path / "out.csv", dtype={"respondent_id": str})
    assert text.loc[7, "respondent_id"] == "'=HYPERLINK(1)" and text.loc[8, "respondent_id"] == "c008"


def test_arrow_path_refuses_blank_ids_naming_the_lines(saved, tmp_path):
    new = _new(30)
    new.loc[[3, 25], "respondent_id"] = [None, "  "]
    new.to_parquet(tmp_path / "blank.parquet")
    with pytest.raises(SurveyError, match=r"column 'respondent_id' has 1 blank respondent id\(s\) .* line\(s\) \[5\] of the file"):
        assign_file(saved, tmp_path / "blank.parquet", tmp_path / "o.parquet", chunksize=20, source="features",
                    id_column="respondent_id")
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written left behind


def test_a_reading_error_part_way_is_reported_and_leaves_no_output(saved, tmp_path):
    new = _new(60).drop(columns="respondent_id")
    text = new.to_csv(index=False).splitlines()
    text[45] = "1.0,oops,2.0"  # line 46 of the file
    (tmp_path / "bad.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(SurveyError, match=r"column 'b' has a non-numeric value 'oops'"):
        assign_file(saved, tmp_path / "bad.csv", tmp_path / "o.csv", chunksize=10, source="features")
    assert not (tmp_path / "o.csv").exists()
