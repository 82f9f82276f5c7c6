"""SegmentationResult: canonical order, relabel, JSON contract, criteria."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentseg.models._criteria import information_criteria
from latentseg.result import SegmentationResult


def _result() -> SegmentationResult:
    z = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.2, 0.8], [0.1, 0.85, 0.05], [0.0, 0.1, 0.9], [0.0, 0.0, 1.0]])
    centers = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    return SegmentationResult.from_memberships(
        "gmm", z, centers=centers, feature_names=("a", "b"), respondent_ids=list("uvwxyz"),
        params={"means": centers}, criteria=information_criteria(-10.0, 5, 6, z),
    )


def test_canonical_order_is_largest_first_and_consistent():
    r = _result()
    assert np.all(np.diff(r.shares) <= 0)
    # old segment 3 (largest: 0.8+0.9+1.0) is now segment 1, with its center and params
    assert r.centers[0, 0] == 3.0 and r.params["means"][0, 0] == 3.0
    assert r.assignment.tolist() == [3, 2, 1, 2, 1, 1]
    np.testing.assert_allclose(r.memberships.sum(axis=1), 1.0)


def test_relabel_round_trip_and_validation():
    r = _result()
    r2 = r.relabel([3, 1, 2])
    assert r2.centers[0, 0] == r.centers[2, 0]
    back = r2.relabel([2, 3, 1])
    np.testing.assert_array_equal(back.memberships, r.memberships)
    with pytest.raises(ValueError, match="permutation of 1..3"):
        r.relabel([1, 1, 2])


def test_to_dict_contract_is_json_and_has_keys():
    d = json.loads(_result().to_json())
    for key in ("model", "k", "n", "loglik", "n_params", "bic", "aic", "converged", "segments", "criteria", "diagnostics"):
        assert key in d
    seg = d["segments"][0]
    assert seg["id"] == 1 and seg["share_lower"] <= seg["share"] <= seg["share_upper"]
    assert seg["interval"] == "95% Wilson"


def test_criteria_match_published_faithful_values():
    # Mplus / scikit-learn, faithful VVV k=2 (shared/reference/README.md)
    c = information_criteria(-1130.264, 11, 272)
    assert c["bic"] == pytest.approx(2322.192, abs=0.01)
    assert c["aic"] == pytest.approx(2282.528, abs=0.01)


def test_relabel_renumbers_segment_tables_in_extras():
    import pandas as pd

    r = _result()
    table = pd.DataFrame({"segment": [1, 2, 3], "value": ["a", "b", "c"]})
    r = SegmentationResult.from_memberships(
        "lca", r.memberships, centers=r.centers, feature_names=r.feature_names, extras={"t": table}
    )
    r2 = r.relabel([3, 1, 2])  # new 1 = old 3, new 2 = old 1, new 3 = old 2
    t = r2.extras["t"]
    assert t.set_index("value")["segment"].to_dict() == {"c": 1, "a": 2, "b": 3}


def test_package_functions_are_not_shadowed_by_submodules():
    import importlib

    import latentseg as ls

    for name, module in ls._LAZY.items():
        importlib.import_module(module)  # importing the defining module must not rebind the name
        assert not isinstance(getattr(ls, name), type(ls)), f"latentseg.{name} is a module"


def test_cli_prints_latentseg_warnings_as_one_line():
    import warnings

    from latentseg.cli.app import _formatwarning
    from latentseg.errors import LatentsegWarning

    text = _formatwarning(LatentsegWarning("scale inferred"), LatentsegWarning, "x.py", 3, "code()")
    assert text == "warning: scale inferred\n"
    assert "x.py" in _formatwarning(UserWarning("other"), UserWarning, "x.py", 3, "code()")
    assert warnings.formatwarning is not None


def test_wilson_interval_reproduces_newcombe_1998_and_refuses_bad_levels() -> None:
    """Newcombe (1998, Statistics in Medicine 17:857, Table I, method 3): Wilson score intervals
    81/263 -> 0.2553-0.3662, 15/148 -> 0.0624-0.1605, 0/20 -> 0-0.1611 (the quantile now comes
    from the stdlib, not scipy)."""
    from latentseg._stats import wilson_interval

    lo, hi = wilson_interval(np.array([81.0, 15.0, 0.0]), np.array([263.0, 148.0, 20.0]))
    np.testing.assert_allclose(lo, [0.2553, 0.0624, 0.0], atol=5e-5)
    np.testing.assert_allclose(hi, [0.3662, 0.1605, 0.1611], atol=5e-5)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="level must be in"):
            wilson_interval(np.array([1.0]), 10, level=bad)
