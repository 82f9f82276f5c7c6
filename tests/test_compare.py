"""compare(): agreement measures, Hungarian matching, share-difference intervals, disagreements."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentseg.choose.comparison import compare, match_segments
from latentseg.errors import ConfigError
from latentseg.result import SegmentationResult


def _result(model: str, labels: np.ndarray, *, soft: float = 1.0, ids=None, k: int | None = None) -> SegmentationResult:
    k = k or int(labels.max()) + 1
    z = np.eye(k)[labels] * soft + (1 - soft) / k
    return SegmentationResult.from_memberships(
        model, z, centers=np.arange(k, dtype=float)[:, None], feature_names=("x",), respondent_ids=ids
    )


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(11).choice(3, size=600, p=[0.5, 0.3, 0.2])


def test_compare_with_itself_gives_ari_1_and_no_disagreements(labels):
    r = _result("gmm", labels, soft=0.8)
    c = compare(r, r)
    assert c.ari == pytest.approx(1.0) and c.nmi == pytest.approx(1.0) and c.agreement == 1.0
    assert c.disagreements.empty
    np.testing.assert_array_equal(np.diag(c.crosstab.to_numpy()), np.bincount(r.assignment)[1:])
    np.testing.assert_allclose(c.shares["difference"], 0.0, atol=1e-12)
    assert "agree on 100% of respondents (ARI 1.00)" in c.summary


def test_permuted_labels_are_matched_back(labels):
    a = _result("kmeans", labels)
    perm = np.array([2, 0, 1])
    b = _result("lca", perm[labels], soft=0.9)
    c = compare(a, b)
    assert c.ari == pytest.approx(1.0) and c.agreement == 1.0
    # b's segments are matched to a's: the crosstab is diagonal after matching
    ct = c.crosstab.to_numpy()
    assert np.count_nonzero(ct - np.diag(np.diag(ct))) == 0
    assert c.mapping == {int(b.assignment[np.argmax(a.assignment == i)]): i for i in (1, 2, 3)}


def test_disagreements_crosstab_and_share_intervals(labels):
    rng = np.random.default_rng(3)
    moved = rng.random(labels.size) < 0.5
    # b moves half of a's segment 3 (20%) into segment 1, and is unsure about exactly those
    lb = np.where((labels == 2) & moved, 0, labels)
    a = _result("kmeans", labels)
    zb = np.eye(3)[lb] * 0.9 + 0.1 / 3
    zb[(labels == 2) & moved] = [0.55, 0.0, 0.45]
    b = SegmentationResult.from_memberships("lca", zb, centers=np.zeros((3, 1)), feature_names=("x",))
    c = compare(a, b)
    n_moved = int(((labels == 2) & moved).sum())
    assert len(c.disagreements) == n_moved
    assert c.agreement == pytest.approx(1 - n_moved / labels.size)
    dis = c.disagreements
    seg3_a = int(np.argmax(np.bincount(a.assignment)[1:] == (labels == 2).sum())) + 1
    assert (dis["segment_a"] == seg3_a).all()
    assert set(dis.columns) >= {"segment_a", "segment_b", "segment_b_as_a", "p_a", "p_b", "a_p_1", "b_p_3"}
    np.testing.assert_allclose(dis["p_b"], 0.55)
    # segment 3's share is smaller under b; the interval says so and excludes 0
    row = c.shares.set_index("segment_a").loc[seg3_a]
    assert row["difference"] > 0 and row["lower"] > 0
    # and it covers the exact difference of the mean memberships
    assert row["lower"] <= row["share_a"] - row["share_b"] <= row["upper"]
    assert "larger under kmeans" in c.summary and "less sure of the disagreeing respondents" in c.summary
    json.dumps(c.to_dict())


def test_share_interval_coverage_under_a_known_truth():
    """The paired normal interval covers the true difference of expected shares ~95% of the time."""
    rng = np.random.default_rng(8)
    cover = 0
    reps = 300
    p_move = 0.1  # b moves 10% of a's segment 2 into segment 1: true difference 0.1 * 0.4 = 0.04
    for _ in range(reps):
        la = rng.choice(2, size=400, p=[0.6, 0.4])
        lb = np.where((la == 1) & (rng.random(400) < p_move), 0, la)
        a, b = _result("kmeans", la, k=2), _result("gmm", lb, k=2)
        c = compare(a, b)
        row = c.shares.set_index("segment_a").loc[int(np.argmax(np.bincount(a.assignment)[1:] == (la == 1).sum())) + 1]
        cover += row["lower"] <= 0.04 <= row["upper"]
    assert 0.91 <= cover / reps <= 0.99


def test_different_k_and_partial_overlap_are_noted(labels):
    a = _result("kmeans", labels, ids=np.arange(600))
    lb = np.where(labels == 2, 1, labels)  # b merges segments 2 and 3
    b = _result("gmm", lb[100:], ids=np.arange(100, 600), k=2)
    c = compare(a, b)
    assert c.n == 500 and c.crosstab.shape == (3, 2)
    assert any("Only the 500 respondents in both results" in n for n in c.notes)
    assert any("k=3 and k=2" in n for n in c.notes)
    assert len(c.mapping) == 2 and 0 < c.ari < 1


def test_no_common_respondents_is_a_clear_error(labels):
    a = _result("kmeans", labels, ids=np.arange(600))
    b = _result("gmm", labels, ids=np.arange(1000, 1600))
    with pytest.raises(ConfigError, match="The two results share no respondent ids \\(kmeans has 600, gmm has 600\\)"):
        compare(a, b)
    with pytest.raises(ConfigError, match="level must be in \\(0, 1\\); got 1.5"):
        compare(a, a, level=1.5)


def test_match_segments_handles_rectangular_tables():
    ct = np.array([[0, 5, 40], [30, 2, 1]])
    assert match_segments(ct).tolist() == [2, 0, 1]
    assert match_segments(ct.T).tolist() == [1, 0]


def test_ari_nmi_are_scikit_learn_on_the_common_respondents():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(4)
    for _ in range(10):
        ka, kb = (int(v) for v in rng.integers(1, 6, size=2))
        la, lb = rng.integers(0, ka, 150), rng.integers(0, kb, 150)
        lb = np.where(rng.random(150) < 0.6, la % kb, lb)
        a = _result("kmeans", la, k=ka, ids=np.arange(150))
        b = _result("lca", lb[25:], soft=0.9, k=kb, ids=np.arange(25, 150))  # ids 25..149 in common
        c = compare(a, b)
        # segment numbers may differ (canonical order), so equal up to the order of float sums
        assert c.ari == pytest.approx(adjusted_rand_score(la[25:], lb[25:]), abs=1e-12)
        assert c.nmi == pytest.approx(normalized_mutual_info_score(la[25:], lb[25:]), abs=1e-12)
