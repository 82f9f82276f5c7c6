"""bayes-rating-lca: recovery of planted segments, shares and segment opportunity, and its contract.

One fitted fixture (simulate_ratings, n = 400, k = 3, 6 outcomes on 1-5 scales; 2 chains x 500)
serves the recovery tests. Margins were measured on seeds 1-5 of the same design (fits with
random_seed = data seed): ARI 0.926 / 0.937 / 0.950 / 0.991 / 0.986, largest share error
0.023 / 0.003 / 0.004 / 0.004 / 0.002, opportunity coverage of the 18 (segment, outcome) cells by
the 95% intervals 1.00 / 0.89 / 0.89 / 0.89 / 0.94, largest opportunity error 0.34 / 0.71 / 0.70 /
0.86 / 0.50 (root mean square 0.18-0.32), largest gap between the posterior mean opportunity and
that of the posterior mean probabilities below 0.002, largest difference between predict_proba
and the fit's memberships 0.009-0.020. The fixture uses seed 4.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import ConfigError, ConvergenceWarning
from latentseg.io.survey import Scale, Survey
from latentseg.models import fit
from latentseg.models.bayes.lca import LCAPriors
from latentseg.models.bayes.rating_lca import RatingClassFamily, predict_proba
from latentseg.prepare.ratings import rating_frame, segment_opportunity
from latentseg.research.simulate import simulate_ratings

SEED = 4


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_ratings(400, k=3, n_outcomes=6, separation=0.8, exact_shares=True, random_seed=SEED)
    with warnings.catch_warnings():
        # 2 x 500 draws is short for R-hat <= 1.01 over ~250 parameters (1.013-1.021 on seeds 1-5);
        # the tests judge recovery, not the sampler's diagnostics
        warnings.simplefilter("ignore", ConvergenceWarning)
        # max_draws=500: the fixed 2 x 500 chains the margins above were measured on (no extension)
        res = fit(sim.data, "bayes-rating-lca", 3, draws=500, tune=500, chains=2, max_draws=500, random_seed=SEED)
    ct = np.zeros((3, 3))
    np.add.at(ct, (sim.segment.to_numpy() - 1, res.assignment - 1), 1)
    rows, cols = linear_sum_assignment(-ct)
    return sim, res, rows, cols


def test_recovers_planted_segments_and_shares(fitted):
    sim, res, rows, cols = fitted
    assert res.model == "bayes-rating-lca" and res.interval_method == "95% credible"
    # ARI 0.93-0.99 over seeds 1-5 (0.991 here); threshold 0.85
    assert adjusted_rand_score(sim.segment, res.assignment) > 0.85
    # largest share error 0.002-0.023 over seeds 1-5; tolerance 0.06
    assert np.abs(res.shares[cols] - sim.shares[rows]).max() < 0.06
    assert np.all((res.share_lower[cols] <= sim.shares[rows]) & (sim.shares[rows] <= res.share_upper[cols]))


def test_opportunity_intervals_cover_the_truth(fitted):
    sim, res, rows, cols = fitted
    truth = sim.opportunity.to_numpy()[rows]
    ci = res.center_intervals[cols]
    covered = (ci[..., 0] <= truth) & (truth <= ci[..., 1])
    # 0.89-1.00 of the 18 cells over seeds 1-5 (nominal 0.95); threshold 0.75 (at most 4 misses)
    assert covered.mean() >= 0.75
    # largest error 0.34-0.86 and root mean square 0.18-0.32 on seeds 1-5 (0-20 scale)
    err = res.centers[cols] - truth
    assert np.abs(err).max() < 1.5 and np.sqrt(np.mean(err**2)) < 0.6
    assert np.all((ci[..., 0] <= res.centers[cols]) & (res.centers[cols] <= ci[..., 1]))


def test_result_follows_the_rating_families_contract(fitted):
    sim, res, _, _ = fitted
    assert res.feature_names == tuple(sim.opportunity.columns)
    assert res.params["imp_probs"].shape == (3, 6, 5) and res.params["sat_probs"].shape == (3, 6, 5)
    np.testing.assert_allclose(res.params["imp_probs"].sum(axis=-1), 1.0, atol=1e-9)
    pts = res.extras["scale_points"]
    assert pts[pts["kind"] == "imp"]["point"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    # the posterior mean opportunity is close to the opportunity of the posterior mean
    # probabilities (not equal: the opportunity is a product of the two distributions)
    plug_in = segment_opportunity(res.params["imp_probs"], res.params["sat_probs"], np.linspace(0, 10, 5),
                                  np.linspace(0, 10, 5))
    assert np.abs(plug_in - res.centers).max() < 0.05  # below 0.002 on seeds 1-5
    assert set(res.posterior["posterior"]["probs"].coords["indicator"].values[:2]) == {"imp:o01", "imp:o02"}
    assert np.isfinite(res.criteria["loo"]) and np.isfinite(res.criteria["bic"])
    table = res.extras["opportunity"]
    np.testing.assert_allclose(table["opportunity_lower"].to_numpy(), res.center_intervals[..., 0].ravel())
    seg1 = res.to_dict()["segments"][0]["opportunity"][0]
    assert seg1["outcome"] == "o01" and seg1["lower"] <= seg1["mean"] <= seg1["upper"]


def test_predict_proba_reproduces_the_memberships(fitted):
    sim, res, _, _ = fitted
    z = predict_proba(res, sim.data)
    assert z.shape == (400, 3)
    # 500 of the 1000 draws (thinned) against all of them: 0.009-0.020 apart on seeds 1-5
    assert np.abs(z - res.memberships).max() < 0.06
    with pytest.raises(ConfigError, match="lack outcome"):
        predict_proba(res, sim.data.drop(columns=["imp:o06", "sat:o06"]).rename(columns=lambda c: c))


# ------------------------------------------------------------------------------ no sampling
def _survey(imp, sat, imp_scale, sat_scale):
    imp = pd.DataFrame(imp, columns=["a", "b"], index=[f"r{i}" for i in range(len(imp))], dtype=float)
    sat = pd.DataFrame(sat, columns=["a", "b"], index=imp.index, dtype=float)
    out = pd.DataFrame({"statement": ["a", "b"], "job_step": ""}, index=["a", "b"])
    return Survey(imp, sat, out, imp_scale, sat_scale)


def test_any_scale_keeps_its_points_and_missing_ratings_drop_out():
    imp = [[0, 10], [3, 7], [10, np.nan], [5, 2]]
    sat = [[1, 7], [4, 4], [7, 1], [np.nan, 2]]
    fam = RatingClassFamily(rating_frame(_survey(imp, sat, Scale(0, 10), Scale(1, 7))), 2, "categorical", LCAPriors())
    assert fam.ncat.tolist() == [11, 11, 7, 7]  # every point of 0-10 and of 1-7, observed or not
    rng = np.random.default_rng(0)
    probs = fam._normalise_blocks(rng.random((2, fam.C)))
    L = fam.log_component({"probs": probs[None]}, slice(0, 4))[0]  # (n, k)
    # respondent r2 has no importance rating on b: its sum has imp:a = 10, sat:a = 7 and sat:b = 1 only
    # (items in the frame's order imp:a, imp:b, sat:a, sat:b)
    expect = (np.log(probs[:, fam.offsets[0] + 10])
              + np.log(probs[:, fam.offsets[2] + 6])
              + np.log(probs[:, fam.offsets[3] + 0]))
    np.testing.assert_allclose(L[2], expect, rtol=1e-12)
    # all of a segment's mass on importance 10 and satisfaction 1: opportunity 20; 0 and 7: 0
    p = np.zeros((1, 2, fam.C))
    p[0, 0, fam.offsets[0] + 10] = p[0, 0, fam.offsets[2] + 0] = 1.0
    p[0, 1, fam.offsets[0] + 0] = p[0, 1, fam.offsets[2] + 6] = 1.0
    p[0, :, fam.offsets[1]] = p[0, :, fam.offsets[3]] = 1.0
    np.testing.assert_allclose(fam.centers({"probs": p})[0, :, 0], [20.0, 0.0])



@pytest.mark.parametrize("k", [2, 5])
def test_rating_kernel_is_bayes_lcas_density_and_gradient(k):
    """The rating family's own kernel (segment x respondent layout) and its C version give
    bayes-lca's log posterior density and gradient on ratings (1-5 / 1-10, 5% missing) at random
    points: measured identical to the last bit here; tolerance 1e-10 relative for other CPUs'
    rounding of the reordered sums."""
    import ctypes

    from latentseg.models.bayes._kernels import cfunc
    from latentseg.models.bayes.lca import LatentClassFamily

    sim = simulate_ratings(150, k=3, n_outcomes=5, missing_rate=0.05, random_seed=8)
    fam = RatingClassFamily(sim.data, k, "categorical", LCAPriors(concentration=1.5, item_concentration=0.7))
    ours, shared = fam.kernel(), LatentClassFamily.kernel(fam)
    name, pack = fam.c_kernel()
    assert name != LatentClassFamily.c_kernel(fam)[0]
    c_fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p)(cfunc(name).address)
    nd = (k - 1) + k * int((fam.ncat - 1).sum())
    rng = np.random.default_rng(k)
    for _ in range(3):
        theta = rng.normal(scale=0.8, size=nd)
        g1, g2, g3, lp3 = np.empty(nd), np.empty(nd), np.empty(nd), np.empty(1)
        lp1, lp2 = ours(theta, g1), shared(theta, g2)
        assert c_fn(nd, theta.ctypes.data, g3.ctypes.data, lp3.ctypes.data, pack.ctypes.data) == 0
        assert lp1 == pytest.approx(lp2, rel=1e-10) and lp3[0] == pytest.approx(lp2, rel=1e-10)
        np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(g3, g2, rtol=1e-9, atol=1e-9)
        # the C version always runs the weighted kernel (weights of one without survey weights, so
        # that it compiles one specialisation): bit for bit the unweighted kernel
        assert lp3[0] == lp1
        np.testing.assert_array_equal(g3, g1)
    from latentseg.models.bayes._survey import set_weights

    set_weights(fam, rng.uniform(0.5, 2.0, fam.n))  # survey weights: the C version is the weighted kernel
    weighted, (name, pack) = fam.kernel(), fam.c_kernel()
    for _ in range(2):
        theta = rng.normal(scale=0.8, size=nd)
        g1, g3, lp3 = np.empty(nd), np.empty(nd), np.empty(1)
        lp1 = weighted(theta, g1)
        assert c_fn(nd, theta.ctypes.data, g3.ctypes.data, lp3.ctypes.data, pack.ctypes.data) == 0
        assert lp3[0] == lp1
        np.testing.assert_array_equal(g3, g1)
    # the ordinal model keeps bayes-lca's kernel
    ordinal = RatingClassFamily(sim.data, k, "ordinal", LCAPriors())
    assert ordinal.c_kernel()[0] == LatentClassFamily.c_kernel(ordinal)[0]

def test_refuses_data_that_are_not_ratings():
    with pytest.raises(ConfigError, match="rating_frame"):
        fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), "bayes-rating-lca", 2)
    with pytest.raises(ConfigError, match="measurement"):
        imp = [[1, 2], [3, 4], [5, 1]]
        RatingClassFamily(rating_frame(_survey(imp, imp, Scale(1, 5), Scale(1, 5))), 2, "nominal", LCAPriors())
