"""Sizing: counts, revenue and their intervals against a direct computation; flags from the rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentseg.errors import ConfigError
from latentseg.result import SegmentationResult
from latentseg.decide.sizing import FlagRules, interval_product, size_segments


@pytest.fixture
def result(rng):
    z = rng.dirichlet([4, 2, 1], size=300) ** 3
    z /= z.sum(axis=1, keepdims=True)
    return SegmentationResult.from_memberships("gmm", z, centers=np.zeros((3, 1)), feature_names=("f",))


def test_fixed_tam_counts_and_bounds(result):
    s = size_segments(result, tam=50_000)
    t = s.table
    np.testing.assert_allclose(t["count"], result.shares * 50_000)
    np.testing.assert_allclose(t["count_lower"], result.share_lower * 50_000)
    np.testing.assert_allclose(t["count_upper"], result.share_upper * 50_000)
    assert (t["interval"] == "95% Wilson").all() and "fixed TAM 50000" in s.methods["count"]
    assert s.methods["share"] == "95% Wilson"


def test_playbook_example_28_percent_of_50000():
    z = np.repeat(np.eye(3), [144, 112, 144], axis=0)  # 36% / 28% / 36% of 400
    r = SegmentationResult.from_memberships("kmeans", z, centers=np.array([[0.0], [1.0], [2.0]]),
                                            feature_names=("f",))
    t = size_segments(r, tam=50_000).table
    row = t[np.isclose(t["share"], 0.28)].iloc[0]
    assert row["count"] == pytest.approx(14_000)


def test_uncertain_tam_uses_interval_product(result):
    s = size_segments(result, tam=50_000, tam_interval=(40_000, 65_000))
    t = s.table
    np.testing.assert_allclose(t["count"], result.shares * 50_000)
    np.testing.assert_allclose(t["count_lower"], result.share_lower * 40_000)
    np.testing.assert_allclose(t["count_upper"], result.share_upper * 65_000)
    assert s.methods["count"].startswith("interval product")


def test_interval_product_handles_signs():
    lo, hi = interval_product((np.array([-2.0, 1.0]), np.array([3.0, 2.0])), (np.array([-1.0, -3.0]), np.array([4.0, -1.0])))
    assert lo.tolist() == [-8.0, -6.0] and hi.tolist() == [12.0, -1.0]


def test_revenue_with_fixed_and_per_segment_arpu(result):
    t = size_segments(result, tam=10_000, arpu=120.0).table
    np.testing.assert_allclose(t["revenue"], result.shares * 10_000 * 120)
    np.testing.assert_allclose(t["revenue_lower"], result.share_lower * 10_000 * 120)
    np.testing.assert_allclose(t["revenue_upper"], result.share_upper * 10_000 * 120)
    per = size_segments(result, tam=10_000, arpu={"1": 50, 2: 80, 3: 200}).table
    np.testing.assert_allclose(per["revenue"], result.shares * 10_000 * np.array([50, 80, 200]))
    seq = size_segments(result, tam=10_000, arpu=[50, 80, 200]).table
    pd.testing.assert_frame_equal(per, seq)


def test_revenue_from_column_is_membership_weighted_and_interval_carried(result, rng):
    price = pd.DataFrame({"plan_price": rng.gamma(4.0, 10.0, size=result.n)}, index=result.respondent_ids)
    s = size_segments(result, tam=20_000, tam_interval=(15_000, 30_000), arpu_column="plan_price", data=price)
    t = s.table
    z, y = result.memberships, price["plan_price"].to_numpy()
    arpu = (z * y[:, None]).sum(axis=0) / z.sum(axis=0)
    np.testing.assert_allclose(t["arpu"], arpu)
    # sandwich SE of the weighted mean, directly
    se = np.sqrt([((z[:, j] * (y - arpu[j]) / z[:, j].sum()) ** 2).sum() * result.n / (result.n - 1) for j in range(3)])
    np.testing.assert_allclose(t["arpu_lower"], arpu - 1.959964 * se, rtol=1e-6)
    np.testing.assert_allclose(t["revenue"], result.shares * 20_000 * arpu)
    np.testing.assert_allclose(t["revenue_lower"], result.share_lower * 15_000 * t["arpu_lower"])
    np.testing.assert_allclose(t["revenue_upper"], result.share_upper * 30_000 * t["arpu_upper"])
    assert "membership-weighted mean of 'plan_price'" in s.methods["arpu"]
    assert s.methods["revenue"] == "interval product: count interval × ARPU interval"


def test_flags_follow_the_stated_rules():
    z = np.repeat(np.eye(4), [40, 30, 20, 10], axis=0)
    r = SegmentationResult.from_memberships("gmm", z, centers=np.arange(4.0)[:, None], feature_names=("f",))
    under = {1: 5, 2: 1, 3: 4, 4: 6}
    fit = [0.2, 0.9, 0.6, 0.8]
    s = size_segments(r, profiles=under, product_fit=fit)
    t = s.table
    # seg 1: 40%, 5 underserved, fit 0.2 -> growth; seg 2: fit 0.9 -> retention;
    # seg 3: 20%, 4 underserved but fit 0.6 >= 0.5 -> neither; seg 4: 10% < 15% -> retention only
    assert t["growth_opportunity"].tolist() == [True, False, False, False]
    assert t["retention_priority"].tolist() == [False, True, False, True]
    assert t.loc[1, "flags"] == "growth opportunity" and t.loc[3, "flags"] == ""
    lenient = size_segments(r, profiles=under, rules=FlagRules(growth_min_share=0.1))
    assert lenient.table["growth_opportunity"].tolist() == [True, False, True, True]
    assert lenient.table["retention_priority"].isna().all()
    assert any("retention priority not judged" in n for n in lenient.notes)


def test_flags_from_profiles_object():
    from latentseg.decide.profiling import profile

    rng = np.random.default_rng(0)
    s = pd.DataFrame(rng.normal(7, 1, (100, 4)), columns=list("abcd"))
    s.iloc[:60, :3] += 6
    z = np.repeat(np.eye(2), [60, 40], axis=0)
    r = SegmentationResult.from_memberships("gmm", z, centers=np.array([[1.0], [0.0]]), feature_names=("f",),
                                            respondent_ids=s.index)
    p = profile(r, s, top=3)
    t = size_segments(r, profiles=p).table
    assert t["n_underserved"].tolist() == [3, 0]
    assert t["growth_opportunity"].tolist() == [True, False]


def test_json(result):
    d = size_segments(result, tam=1000, arpu=10.0, product_fit=[0.1, 0.5, 0.9]).to_dict()
    json.dumps(d)
    assert d["rules"]["growth_min_share"] == 0.15 and len(d["segments"]) == 3
    assert d["segments"][0]["growth_opportunity"] is None  # no profiles given


def test_bad_input_messages(result):
    with pytest.raises(ConfigError, match="tam must be a positive number of customers; got -5"):
        size_segments(result, tam=-5)
    with pytest.raises(ConfigError, match=r"tam_interval \(60000, 70000\) must be positive and contain tam = 50000"):
        size_segments(result, tam=50_000, tam_interval=(60_000, 70_000))
    with pytest.raises(ConfigError, match="Give either arpu or arpu_column, not both"):
        size_segments(result, tam=1, arpu=3.0, arpu_column="x")
    with pytest.raises(ConfigError, match="an ARPU needs a tam"):
        size_segments(result, arpu=3.0)
    with pytest.raises(ConfigError, match=r"arpu needs one value per segment \(3\); got 2"):
        size_segments(result, tam=1, arpu=[1, 2])
    with pytest.raises(ConfigError, match=r"arpu has no value for segments \[3\]"):
        size_segments(result, tam=1, arpu={1: 2.0, 2: 3.0})
    with pytest.raises(ConfigError, match="ARPU column 'price' is not in the table"):
        size_segments(result, tam=1, arpu_column="price", data=pd.DataFrame({"x": [1]}))
    text = pd.DataFrame({"price": ["a"] * result.n}, index=result.respondent_ids)
    with pytest.raises(ConfigError, match="ARPU column 'price' must be numeric"):
        size_segments(result, tam=1, arpu_column="price", data=text)
    with pytest.raises(ConfigError, match=r"product_fit must be in \[0, 1\]; segments \[2\]"):
        size_segments(result, product_fit=[0.5, 1.5, 0.1])
    with pytest.raises(ConfigError, match="arpu must be a number; got 'lots'"):
        size_segments(result, tam=1, arpu="lots")
