"""scikit-learn face: estimator checks, Pipeline and clone, consistency with the engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from latentseg.errors import ConfigError
from latentseg.models import fit
from latentseg.models.bayes.engine import predict_proba as bayes_predict_proba
from latentseg.models.estimators import (
    SEED_MAX,
    BayesianGaussianMixtureSegmenter,
    BayesianLatentClassSegmenter,
    GaussianMixtureSegmenter,
    KMeansSegmenter,
    LatentClassSegmenter,
)
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture

# MCMC settings of the tests below: enough for the plumbing, not for convergence (the fits may warn)
TINY = {"draws": 20, "tune": 20, "chains": 1, "n_init": 2}
# max_draws = draws: chains are not extended, so the stored posterior is exactly 2 x 150 draws and
# predict_proba (which thins to at most 500 draws) uses all of them, as the memberships do
SMALL = {"draws": 150, "tune": 150, "chains": 2, "max_draws": 150}


#: the EM estimators take survey weights, which must be positive (issue 16's contract: a respondent
#: with weight 0 is dropped and reported, not fitted); scikit-learn's check gives some rows weight 0
_ZERO_WEIGHTS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "zero sample weights are refused with a ConfigError naming the rows (survey weights must be "
        "positive); the equivalence of integer weights and duplicated rows is tested in tests/test_weights_em.py"
    ),
}


def _expected_failures(estimator):
    if isinstance(estimator, (GaussianMixtureSegmenter, KMeansSegmenter)):
        return dict(_ZERO_WEIGHTS)
    if isinstance(estimator, (LatentClassSegmenter, BayesianLatentClassSegmenter)):
        failures = {
            "check_clustering": (
                "the check rounds two standardised blob columns to integers: a latent class model "
                "with two indicators is not identified, so recovering the blobs cannot be expected"
            ),
            "check_pipeline_consistency": (
                "the check's rounded data have only 2 distinct rows; k = 3 segments of 2 distinct "
                "respondents is refused with a ConfigError by design"
            ),
        }
        if isinstance(estimator, LatentClassSegmenter):
            failures.update(_ZERO_WEIGHTS)
        return failures
    return {}


# The checks feed tiny random data; engine warnings about such fits (near-empty segments) are
# expected there and are not what these checks test.
@pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")
@parametrize_with_checks(
    [GaussianMixtureSegmenter(n_init=3), KMeansSegmenter(n_init=3), LatentClassSegmenter(n_init=5)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# The same checks for the MCMC estimators, with tiny samplers (~10 s in all): every fit warns that it
# has not converged, which is not what these checks test.
@pytest.mark.xdist_group("bayes")
@pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")
@parametrize_with_checks(
    [BayesianGaussianMixtureSegmenter(**TINY), BayesianLatentClassSegmenter(**TINY)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks_bayesian(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    return simulate_gaussian_mixture(300, k=3, d=4, separation=6.0, random_seed=3)


def test_gmm_estimator_agrees_with_engine(blobs):
    X, truth = blobs
    est = GaussianMixtureSegmenter(n_components=3, covariance_type="full", n_init=3, random_state=1).fit(X)
    r = est.result_
    assert r.settings["covariance"] == "VVV" and est.random_seed_ == 1
    assert adjusted_rand_score(truth, est.labels_) >= 0.9
    np.testing.assert_array_equal(est.labels_, r.assignment - 1)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    np.testing.assert_allclose(est.predict_proba(X), r.memberships, atol=1e-10)
    assert est.bic(X) == pytest.approx(r.criteria["bic"])
    assert est.aic(X) == pytest.approx(r.criteria["aic"])
    assert est.score(X) == pytest.approx(r.criteria["loglik"] / len(X))
    assert est.n_params_ == r.criteria["n_params"] == 3 * 4 + 2 + 3 * 10
    assert est.covariances_.shape == (3, 4, 4) and list(est.feature_names_in_) == list(X.columns)


def test_pipeline_clone_and_cross_validation(blobs):
    X, truth = blobs
    pipe = make_pipeline(StandardScaler(), GaussianMixtureSegmenter(n_components=3, n_init=2, random_state=0))
    labels = pipe.fit(X).predict(X)
    assert adjusted_rand_score(truth, labels) >= 0.9
    twin = clone(pipe)
    assert not hasattr(twin[-1], "result_")
    assert twin.get_params()["gaussianmixturesegmenter__n_components"] == 3
    scores = cross_val_score(clone(pipe), X, cv=3)
    assert np.isfinite(scores).all()
    # held-out log-likelihood prefers the true k to a one-segment model
    one = cross_val_score(make_pipeline(StandardScaler(), GaussianMixtureSegmenter(k=1, random_state=0)), X, cv=3)
    assert scores.mean() > one.mean()


def test_same_random_state_same_fit(blobs):
    X, _ = blobs
    a = GaussianMixtureSegmenter(k=3, random_state=5).fit(X)
    b = clone(a).fit(X)
    assert np.array_equal(a.result_.memberships, b.result_.memberships)


def test_kmeans_estimator(blobs):
    X, truth = blobs
    est = KMeansSegmenter(k=3, random_state=0).fit(X)
    assert adjusted_rand_score(truth, est.labels_) >= 0.9
    assert est.score(X) == pytest.approx(-est.inertia_)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    assert not hasattr(est, "bic")  # no likelihood, none made up


def test_dataframe_ids_flow_into_result(blobs):
    X, _ = blobs
    X = X.set_axis([f"resp{i}" for i in range(len(X))])
    est = GaussianMixtureSegmenter(k=3, n_init=2, random_state=0).fit(X)
    assert est.result_.respondent_ids[0] == "resp0"


def test_latent_class_wrapper():
    Y, truth, _ = simulate_categorical(400, k=2, n_items=8, n_categories=3, separation=0.9, random_seed=4)
    est = LatentClassSegmenter(k=2, n_init=5, random_state=0).fit(Y)
    assert adjusted_rand_score(truth, est.labels_) >= 0.8
    r = est.result_
    assert est.bic(Y) == pytest.approx(r.criteria["bic"])
    assert est.probs_.shape[:2] == (2, 8)
    np.testing.assert_allclose(est.predict_proba(Y), r.memberships, atol=1e-8)


def test_bad_random_state():
    X = np.random.default_rng(0).normal(size=(20, 2))
    for bad in ("abc", True, 1.5):
        with pytest.raises(ConfigError, match="random_state must be None, an int, a numpy RandomState or a numpy Generator; got"):
            GaussianMixtureSegmenter(n_components=2, random_state=bad).fit(X)


def test_too_few_samples_message():
    with pytest.raises(ConfigError, match="k = 3 segments need at least 3 respondents; got n_samples = 2"):
        GaussianMixtureSegmenter(k=3).fit(np.array([[0.0, 1.0], [1.0, 0.0]]))


def test_missing_values_pass_through_to_gmm(blobs):
    X, _ = blobs
    A = X.to_numpy().copy()
    A[::7, 1] = np.nan
    est = GaussianMixtureSegmenter(k=3, n_init=2, random_state=0).fit(A)
    assert est.result_.diagnostics["n_missing"] == int(np.isnan(A).sum())
    assert np.isfinite(est.score(A))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        KMeansSegmenter(k=3).fit(pd.DataFrame(A))


# ------------------------------------------------------------------ scikit-learn's names, aliases
@pytest.mark.parametrize(
    ("sklearn_name", "mclust_name"), [("full", "VVV"), ("tied", "EEE"), ("diag", "VVI"), ("spherical", "VII")]
)
def test_covariance_type_spellings(blobs, sklearn_name, mclust_name):
    X, _ = blobs
    engine = fit(X, "gmm", 3, random_seed=2, covariance=mclust_name, n_init=2)
    for kwargs in ({"covariance_type": sklearn_name}, {"covariance_type": mclust_name}, {"covariance": sklearn_name}):
        est = GaussianMixtureSegmenter(3, n_init=2, random_state=2, **kwargs).fit(X)
        assert est.result_.settings["covariance"] == mclust_name
        np.testing.assert_array_equal(est.result_.memberships, engine.memberships)


def test_aliases_k_and_covariance(blobs):
    X, _ = blobs
    by_name = GaussianMixtureSegmenter(n_components=2, covariance_type="full", n_init=2, random_state=0).fit(X)
    by_alias = GaussianMixtureSegmenter(k=2, covariance="VVV", n_init=2, random_state=0).fit(X)
    np.testing.assert_array_equal(by_name.result_.memberships, by_alias.result_.memberships)
    # both given and the same (in any spelling): fine
    same = GaussianMixtureSegmenter(n_components=2, k=2, covariance_type="full", covariance="vvv", n_init=2,
                                    random_state=0).fit(X)
    np.testing.assert_array_equal(same.result_.memberships, by_name.result_.memberships)
    # the alias wins over the name's default
    assert KMeansSegmenter(k=2, random_state=0).fit(X).result_.k == 2
    assert GaussianMixtureSegmenter(covariance="EEE", n_init=1, random_state=0).fit(X).result_.settings["covariance"] == "EEE"
    with pytest.raises(ConfigError, match="n_components=4 and its alias k=2 disagree"):
        GaussianMixtureSegmenter(n_components=4, k=2).fit(X)
    with pytest.raises(ConfigError, match="covariance_type='full' and its alias covariance='VVI' disagree"):
        GaussianMixtureSegmenter(covariance_type="full", covariance="VVI").fit(X)


def test_params_are_stored_unchanged_and_clone(blobs):
    X, _ = blobs
    est = GaussianMixtureSegmenter(k=2, covariance="VVV", random_state=np.random.RandomState(0))
    params = est.get_params()
    assert params["n_components"] == 3 and params["k"] == 2  # resolved in fit, never in __init__
    assert params["covariance_type"] == "diag" and params["covariance"] == "VVV"
    twin = clone(est)
    assert twin.get_params()["k"] == 2 and twin.get_params()["covariance"] == "VVV"
    twin.set_params(k=None, covariance=None, n_components=4, n_init=1, random_state=0).fit(X)
    assert twin.result_.k == 4 and twin.result_.settings["covariance"] == "VVI"
    assert "n_components=4" in repr(twin)
    grid = GridSearchCV(KMeansSegmenter(n_init=2, random_state=0), {"n_components": [1, 3]}, cv=2).fit(X)
    assert grid.best_params_ == {"n_components": 3}


# ------------------------------------------------------------------ random_state
def test_random_state_kinds(blobs):
    X, _ = blobs
    opts = {"n_components": 3, "n_init": 2}
    by_int = GaussianMixtureSegmenter(random_state=5, **opts).fit(X)
    assert by_int.random_seed_ == 5
    np.testing.assert_array_equal(by_int.result_.memberships, fit(X, "gmm", 3, random_seed=5, n_init=2).memberships)
    assert GaussianMixtureSegmenter(random_state=np.int64(5), **opts).fit(X).random_seed_ == 5

    # a RandomState or Generator gives one draw, once, in fit; the fit is the one of that seed
    seed = int(np.random.RandomState(0).randint(SEED_MAX))
    by_rs = GaussianMixtureSegmenter(random_state=np.random.RandomState(0), **opts).fit(X)
    assert by_rs.random_seed_ == seed and by_rs.result_.provenance["random_seed"] == seed
    np.testing.assert_array_equal(by_rs.result_.memberships, fit(X, "gmm", 3, random_seed=seed, n_init=2).memberships)
    gen_seed = int(np.random.default_rng(0).integers(SEED_MAX))
    assert GaussianMixtureSegmenter(random_state=np.random.default_rng(0), **opts).fit(X).random_seed_ == gen_seed
    # the same instance, fitted twice, moves on (scikit-learn's convention)
    shared = KMeansSegmenter(random_state=np.random.default_rng(1))
    assert shared.fit(X).random_seed_ != shared.fit(X).random_seed_
    # None: numpy's global RandomState
    np.random.seed(11)
    first = KMeansSegmenter().fit(X).random_seed_
    np.random.seed(11)
    assert KMeansSegmenter().fit(X).random_seed_ == first == int(np.random.RandomState(11).randint(SEED_MAX))


def test_too_few_respondents_for_any_segmentation():
    with pytest.raises(ConfigError, match="at least 2 respondents; got n_samples = 1"):
        GaussianMixtureSegmenter(n_components=1).fit(np.array([[0.0, 1.0]]))


# ------------------------------------------------------------------ Bayesian estimators
@pytest.fixture(scope="module")
def small_blobs():
    return simulate_gaussian_mixture(120, k=2, d=3, separation=6.0, random_seed=8)


@pytest.mark.xdist_group("bayes")
@pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")
def test_bayesian_gmm_estimator_agrees_with_engine(small_blobs):
    X, truth = small_blobs
    est = BayesianGaussianMixtureSegmenter(2, covariance_type="diag", random_state=4, **SMALL).fit(X)
    r = est.result_
    engine = fit(X, "bayes-gmm", 2, random_seed=4, covariance="diag", **SMALL)
    np.testing.assert_array_equal(r.memberships, engine.memberships)
    assert r.model == "bayes-gmm" and r.posterior is not None and est.random_seed_ == 4
    assert adjusted_rand_score(truth, est.labels_) >= 0.9
    np.testing.assert_array_equal(est.labels_, r.assignment - 1)
    np.testing.assert_array_equal(est.fit_predict(X), est.labels_)
    P = est.predict_proba(X)
    np.testing.assert_allclose(P, bayes_predict_proba(r, X), atol=1e-12)
    np.testing.assert_allclose(P, r.memberships, atol=1e-8)  # 300 draws: all of them
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    # score: log posterior predictive density per respondent, the lppd of WAIC
    assert est.score(X) * len(X) == pytest.approx(r.criteria["lppd"], rel=1e-9)
    assert est.weights_interval_.shape == (2, 2) and (est.weights_interval_[:, 0] <= est.weights_).all()
    assert est.means_.shape == (2, 3) and np.isfinite(est.loo_) and np.isfinite(est.waic_)
    assert not hasattr(est, "bic")


@pytest.mark.xdist_group("bayes")
@pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")
def test_bayesian_gmm_in_a_pipeline_and_covariance_types(small_blobs):
    X, truth = small_blobs
    # EEI, not full: the full-covariance mixture has no numba kernel (nutpie compiles PyMC's, ~1 min)
    pipe = make_pipeline(StandardScaler(), BayesianGaussianMixtureSegmenter(k=2, covariance="diag-equal", random_state=0, **SMALL))
    labels = pipe.fit(X).predict(X)
    assert adjusted_rand_score(truth, labels) >= 0.9
    assert pipe[-1].result_.settings["covariance"] == "EEI" and pipe[-1].covariances_.shape[-1] == 3
    twin = clone(pipe)
    assert not hasattr(twin[-1], "result_") and twin.get_params()["bayesiangaussianmixturesegmenter__k"] == 2
    with pytest.raises(ConfigError, match="has no EEE structure"):
        BayesianGaussianMixtureSegmenter(2, covariance_type="tied", **TINY).fit(X)
    with pytest.raises(ConfigError, match="disagree"):
        BayesianGaussianMixtureSegmenter(2, covariance_type="full", covariance="EEI", **TINY).fit(X)


@pytest.mark.xdist_group("bayes")
@pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")
def test_bayesian_estimators_take_the_chains_budget(small_blobs):
    """max_draws reaches the engine: the budget recorded with the fit is the one asked for (and
    30 x draws by default), for both Bayesian estimators."""
    X, _ = small_blobs
    budget = lambda est: est.result_.diagnostics["convergence"]["budget_draws_per_chain"]  # noqa: E731
    assert budget(BayesianGaussianMixtureSegmenter(2, random_state=1, max_draws=20, **TINY).fit(X)) == 20
    assert budget(BayesianGaussianMixtureSegmenter(2, random_state=1, **TINY).fit(X)) == 30 * TINY["draws"]
    Y = pd.DataFrame({"q1": list("aabbaabbab" * 6), "q2": list("xxyyxxyyxy" * 6)})
    assert budget(BayesianLatentClassSegmenter(2, random_state=1, max_draws=25, **TINY).fit(Y)) == 25
    assert "max_draws" in BayesianLatentClassSegmenter().get_params()


@pytest.mark.xdist_group("bayes")
@pytest.mark.filterwarnings("ignore::latentseg.errors.LatentsegWarning")
def test_bayesian_latent_class_wrapper():
    Y, truth, _ = simulate_categorical(200, k=2, n_items=6, n_categories=3, separation=0.9, random_seed=4)
    est = BayesianLatentClassSegmenter(n_components=2, random_state=np.random.default_rng(3), **SMALL).fit(Y)
    r = est.result_
    assert r.model == "bayes-lca" and est.random_seed_ == int(np.random.default_rng(3).integers(SEED_MAX))
    assert adjusted_rand_score(truth, est.labels_) >= 0.8
    assert est.probs_.shape[:2] == (2, 6)
    np.testing.assert_allclose(est.predict_proba(Y), r.memberships, atol=1e-8)
    assert est.score(Y) * len(Y) == pytest.approx(r.criteria["lppd"], rel=1e-9)
    # arrays work too (columns named x1 .. xJ), and score the same
    A = Y.to_numpy()
    est_a = BayesianLatentClassSegmenter(n_components=2, random_state=est.random_seed_, **SMALL).fit(A)
    np.testing.assert_allclose(est_a.predict_proba(A[:5]), est_a.result_.memberships[:5], atol=1e-8)
