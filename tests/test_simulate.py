"""The simulators: known truth, exact parameters, same seed -> same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from latentseg.errors import ConfigError
from latentseg.research.simulate import default_shares, simulate_categorical, simulate_gaussian_mixture

# --------------------------------------------------------------------------------------------
# Gaussian mixtures
# --------------------------------------------------------------------------------------------


def _pooled_mahalanobis(X: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Pairwise Mahalanobis distances between the sample means under the pooled sample covariance."""
    k = z.max()
    means = np.array([X[z == j].mean(axis=0) for j in range(1, k + 1)])
    pooled = np.mean([np.cov(X[z == j].T) for j in range(1, k + 1)], axis=0)
    inv = np.linalg.inv(np.atleast_2d(pooled))
    return np.array(
        [np.sqrt((means[a] - means[b]) @ inv @ (means[a] - means[b])) for a in range(k) for b in range(a + 1, k)]
    )


def test_default_shares_pattern() -> None:
    assert default_shares(4).round(2).tolist() == [0.34, 0.28, 0.22, 0.16]
    for k in (1, 2, 3, 6):
        s = default_shares(k)
        assert s.sum() == pytest.approx(1.0)
        assert np.all(np.diff(s) < 0) or k == 1
        assert s[0] / s[-1] == pytest.approx(2.125 if k > 1 else 1.0)


def test_gaussian_mixture_shape_columns_and_labels() -> None:
    X, z = simulate_gaussian_mixture(301, k=3, d=5, noise_dims=2, random_seed=7)
    assert list(X.columns) == ["x1", "x2", "x3", "x4", "x5", "noise1", "noise2"]
    assert X.shape == (301, 7) and all(X.dtypes == np.float64)
    assert z.shape == (301,) and set(z.tolist()) == {1, 2, 3}
    counts = np.bincount(z)[1:]
    # exact allocation: realised shares within 1/n of the defaults, largest first
    assert np.all(np.abs(counts / 301 - default_shares(3)) <= 1 / 301)
    assert counts[0] > counts[1] > counts[2]


def test_gaussian_mixture_shares_are_sorted_largest_first() -> None:
    _, z = simulate_gaussian_mixture(1000, k=3, shares=[0.2, 0.5, 0.3], random_seed=1)
    assert np.bincount(z)[1:].tolist() == [500, 300, 200]


def test_gaussian_mixture_multinomial_shares_vary() -> None:
    counts = {tuple(np.bincount(simulate_gaussian_mixture(200, k=2, shares=[0.5, 0.5], exact_shares=False,
                                                          random_seed=s)[1])[1:]) for s in range(10)}
    assert len(counts) > 1


def test_gaussian_mixture_same_seed_same_data() -> None:
    a = simulate_gaussian_mixture(200, k=4, d=3, covariance="unequal", noise_dims=1, random_seed=11)
    b = simulate_gaussian_mixture(200, k=4, d=3, covariance="unequal", noise_dims=1, random_seed=11)
    c = simulate_gaussian_mixture(200, k=4, d=3, covariance="unequal", noise_dims=1, random_seed=12)
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0].to_numpy(), c[0].to_numpy())
    X, z = simulate_gaussian_mixture(50, random_seed=None)
    assert X.shape == (50, 8) and np.isfinite(X.to_numpy()).all()


@pytest.mark.parametrize("covariance", ["spherical", "diagonal", "diagonal-unequal", "full", "unequal"])
def test_gaussian_mixture_separation_is_the_mahalanobis_distance(covariance: str) -> None:
    X, z = simulate_gaussian_mixture(8000, k=4, d=5, separation=2.5, covariance=covariance, random_seed=3)
    dist = _pooled_mahalanobis(X.to_numpy(), z)
    assert dist.shape == (6,)
    # all six pairs equidistant (regular simplex), within sampling error
    np.testing.assert_allclose(dist, 2.5, atol=0.15)


def test_gaussian_mixture_covariance_structures() -> None:
    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="spherical", random_seed=5)
    for j in (1, 2):
        np.testing.assert_allclose(np.cov(X.to_numpy()[z == j].T), np.eye(3), atol=0.1)

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="diagonal", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    np.testing.assert_allclose(cov1, cov2, atol=0.12)
    assert np.abs(cov1 - np.diag(np.diag(cov1))).max() < 0.08  # uncorrelated within component

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="full", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    np.testing.assert_allclose(cov1, cov2, atol=0.12)

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="unequal", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    assert np.abs(cov1 - cov2).max() > 0.3

    X, z = simulate_gaussian_mixture(12000, k=2, d=3, covariance="diagonal-unequal", random_seed=5)
    cov1, cov2 = (np.cov(X.to_numpy()[z == j].T) for j in (1, 2))
    assert np.abs(cov1 - cov2).max() > 0.3  # each component its own variances
    for c in (cov1, cov2):  # ... and uncorrelated within the component
        assert np.abs(c - np.diag(np.diag(c))).max() < 0.1


def test_gaussian_mixture_more_components_than_dimensions_lie_on_a_line() -> None:
    X, z = simulate_gaussian_mixture(8000, k=4, d=1, separation=3.0, covariance="spherical", random_seed=2)
    means = np.sort(X.groupby(z)["x1"].mean().to_numpy())
    np.testing.assert_allclose(np.diff(means), 3.0, atol=0.15)


def test_gaussian_mixture_noise_columns_carry_no_signal() -> None:
    X, z = simulate_gaussian_mixture(6000, k=3, d=2, noise_dims=2, separation=6, random_seed=4)
    group_means = X.groupby(z)[["noise1", "noise2"]].mean().to_numpy()
    assert np.abs(group_means).max() < 0.1
    assert X[["noise1", "noise2"]].std().between(0.95, 1.05).all()


def test_gaussian_mixture_is_recoverable_when_well_separated() -> None:
    from sklearn.mixture import GaussianMixture

    X, z = simulate_gaussian_mixture(600, k=3, d=4, separation=6.0, covariance="diagonal", random_seed=8)
    pred = GaussianMixture(3, covariance_type="diag", n_init=3, random_state=0).fit_predict(X)
    assert adjusted_rand_score(z, pred) > 0.95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, r"The 'n' parameter of simulate_gaussian_mixture must be an int in the range \[1, inf\)\. Got 0"),
        ({"n": 10, "k": 2.5}, r"The 'k' parameter .* Got 2\.5 instead"),
        ({"n": 10, "separation": -1}, r"The 'separation' parameter .* range \[0\.0, inf\]\. Got -1 instead"),
        ({"n": 10, "covariance": "tied"}, r"'covariance' parameter .* one of 'spherical', 'diagonal', 'diagonal-unequal', 'full', 'unequal'\. Got 'tied'"),
        ({"n": 10, "k": 2, "shares": [0.5, 0.6]}, r"'shares' parameter .* 2 positive numbers summing to 1"),
        ({"n": 10, "k": 3, "shares": [0.5, 0.5]}, r"'shares' parameter .* 3 positive numbers"),
        ({"n": 10, "noise_dims": -1}, r"'noise_dims' parameter .* \[0, inf\)\. Got -1"),
    ],
)
def test_gaussian_mixture_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate_gaussian_mixture(**kwargs)


# --------------------------------------------------------------------------------------------
# latent class data
# --------------------------------------------------------------------------------------------


def _empirical_probs(Y: pd.DataFrame, z: np.ndarray, k: int, C: int) -> np.ndarray:
    return np.array(
        [[Y[z == j][col].value_counts(normalize=True).reindex(range(C), fill_value=0).to_numpy(dtype=float)
          for col in Y.columns] for j in range(1, k + 1)]
    )


def test_categorical_shape_dtype_and_probabilities() -> None:
    Y, z, p = simulate_categorical(500, k=3, n_items=7, n_categories=4, random_seed=1)
    assert Y.shape == (500, 7) and list(Y.columns) == [f"item{i}" for i in range(1, 8)]
    assert all(str(t) == "Int64" for t in Y.dtypes)
    assert int(Y.min().min()) >= 0 and int(Y.max().max()) <= 3
    assert p.shape == (3, 7, 4)
    np.testing.assert_allclose(p.sum(axis=2), 1.0)
    counts = np.bincount(z)[1:]
    assert counts.sum() == 500 and np.all(np.abs(counts / 500 - default_shares(3)) < 1 / 500)


def test_categorical_nominal_separation_is_total_variation() -> None:
    _, _, p = simulate_categorical(10, k=3, n_items=6, n_categories=5, separation=0.7, random_seed=2)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        np.testing.assert_allclose(0.5 * np.abs(p[a] - p[b]).sum(axis=1), 0.7)
    # each class favours one category per item with probability (1 - s)/C + s
    np.testing.assert_allclose(p.max(axis=2), 0.3 / 5 + 0.7)


@pytest.mark.parametrize(("k", "C"), [(2, 5), (3, 5), (4, 4)])
def test_categorical_ordinal_levels_are_ordered_and_separated(k: int, C: int) -> None:
    _, _, p = simulate_categorical(10, k=k, n_items=8, n_categories=C, separation=0.6, ordinal=True, random_seed=3)
    for i in range(8):
        order = np.argsort(p[:, i, :] @ np.arange(C))  # classes by expected level on this item
        tv = 0.5 * np.abs(np.diff(p[order, i, :], axis=0)).sum(axis=1)
        assert tv.min() == pytest.approx(0.6, abs=1e-6)
        # stochastically ordered: each higher class's CDF lies below the lower one's
        cdf = np.cumsum(p[order, i, :], axis=1)
        assert np.all(np.diff(cdf[:, :-1], axis=0) <= 1e-12)
        # unimodal
        for j in range(k):
            peak = int(np.argmax(p[j, i]))
            assert np.all(np.diff(p[j, i, : peak + 1]) >= -1e-12) and np.all(np.diff(p[j, i, peak:]) <= 1e-12)


@pytest.mark.parametrize("ordinal", [False, True])
def test_categorical_draws_follow_the_true_probabilities(ordinal: bool) -> None:
    Y, z, p = simulate_categorical(6000, k=3, n_items=5, n_categories=4, ordinal=ordinal, random_seed=4)
    assert np.abs(_empirical_probs(Y, z, 3, 4) - p).max() < 0.05


def test_categorical_missing_rate_and_reproducibility() -> None:
    a = simulate_categorical(2000, k=2, missing_rate=0.15, random_seed=9)
    b = simulate_categorical(2000, k=2, missing_rate=0.15, random_seed=9)
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[0].isna().to_numpy().mean() == pytest.approx(0.15, abs=0.01)
    floats = a[0].to_numpy(dtype=float, na_value=np.nan)
    assert np.isnan(floats).any() and np.nanmax(floats) <= 4
    Y, z, p = simulate_categorical(20, random_seed=None)
    assert Y.shape == (20, 10)


def test_categorical_separation_zero_means_identical_classes() -> None:
    _, _, p = simulate_categorical(10, k=3, separation=0.0, random_seed=1)
    np.testing.assert_allclose(p, 0.2)
    _, _, p = simulate_categorical(10, k=3, separation=0.0, ordinal=True, random_seed=1)
    np.testing.assert_allclose(p, 0.2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 10, "n_categories": 1}, r"'n_categories' parameter of simulate_categorical must be an int in the range \[2, inf\)"),
        ({"n": 10, "separation": 1.0}, r"'separation' parameter .* range \[0\.0, 1\.0\)\. Got 1\.0 instead"),
        ({"n": 10, "missing_rate": -0.1}, r"'missing_rate' parameter .* Got -0\.1 instead"),
        ({"n": 10, "k": 4, "n_categories": 3, "ordinal": True}, r"With ordinal=True, the 'k' parameter .* at most n_categories=3"),
    ],
)
def test_categorical_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate_categorical(**kwargs)


# --------------------------------------------------------------------------------------------
# surveys
# --------------------------------------------------------------------------------------------

from latentseg.research.simulate import (  # noqa: E402
    BAD_RULES,
    DEFAULT_JOB,
    cramers_v_from_strength,
    simulate_survey,
)
from latentseg.io.survey import Scale, Survey  # noqa: E402


def _opportunity(survey: Survey) -> pd.DataFrame:
    """Respondent-level opportunity, written out independently of latentseg.prepare.scoring."""
    imp = survey.importance_0_10()
    sat = survey.satisfaction_0_10()
    return imp + (imp - sat).clip(lower=0)


def _playbook_rules(survey: Survey) -> dict[str, set[str]]:
    """The playbook's three cleaning rules, written out independently of latentseg.prepare.cleaning."""
    def flat(block: pd.DataFrame) -> pd.Series:
        return (block.nunique(axis=1) == 1) & (block.notna().sum(axis=1) >= 2)

    straight = flat(survey.importance) | flat(survey.satisfaction)
    speed = survey.duration < survey.duration.median() / 3
    unrated = (survey.importance.isna() | survey.satisfaction.isna()).mean(axis=1) > 0.2
    return {
        "straightliner": set(survey.respondent_ids[straight.to_numpy()]),
        "speeder": set(survey.respondent_ids[speed.to_numpy()]),
        "too_many_missing": set(survey.respondent_ids[unrated.to_numpy()]),
    }


def _cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a, b).to_numpy(dtype=float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    return float(np.sqrt(chi2 / table.sum() / (min(table.shape) - 1)))


@pytest.fixture(scope="module")
def planted() -> tuple[Survey, object]:
    return simulate_survey(
        400, straightliners=6, speeders=5, too_many_missing=7, missing_rate=0.1, random_seed=2024
    )


def test_survey_structure(planted: tuple) -> None:
    survey, truth = planted
    assert isinstance(survey, Survey)
    assert survey.n_respondents == 400 and survey.n_outcomes == 24
    assert survey.respondent_ids[:3].tolist() == ["R0001", "R0002", "R0003"]
    assert survey.respondent_ids.is_unique
    assert survey.outcome_ids == [f"o{i:02d}" for i in range(1, 25)]
    assert list(survey.satisfaction.columns) == survey.outcome_ids
    assert (survey.satisfaction.index == survey.respondent_ids).all()
    assert list(survey.outcomes.columns) == ["statement", "job_step"]
    assert survey.outcomes["job_step"].value_counts().tolist() == [4] * 6
    assert survey.outcomes["statement"].str.startswith("Minimize").all()
    assert survey.outcomes["statement"].is_unique
    assert survey.imp_scale == Scale(1, 5) and survey.sat_scale == Scale(1, 10)
    imp, sat = survey.importance.to_numpy(), survey.satisfaction.to_numpy()
    for block, (lo, hi) in ((imp, (1, 5)), (sat, (1, 10))):
        vals = block[~np.isnan(block)]
        assert vals.min() == lo and vals.max() == hi and np.all(vals == np.round(vals))
    assert list(survey.profile.columns) == ["role", "company_size", "industry", "current_tool", "region", "plan_price"]
    assert (survey.profile.index == survey.respondent_ids).all()
    assert survey.profile["plan_price"].gt(0).all()
    assert survey.duration is not None and survey.duration.gt(0).all()
    assert survey.source == "<simulated>"
    # the truth lines up with the survey
    assert (truth.segment.index == survey.respondent_ids).all()
    assert truth.centers.shape == (4, 24) and list(truth.centers.columns) == survey.outcome_ids
    assert truth.shares.round(2).tolist() == [0.34, 0.28, 0.22, 0.16]
    assert set(truth.bad) == set(BAD_RULES)
    assert [len(truth.bad[r]) for r in BAD_RULES] == [6, 5, 7]
    assert len(truth.good_ids) == 400 - 18
    frame = truth.to_frame()
    assert list(frame.columns) == ["respondent_id", "segment", "bad"]
    assert (frame["bad"] != "").sum() == 18


def test_survey_wide_frame_round_trip_layout(planted: tuple) -> None:
    survey, _ = planted
    frame = survey.to_frame()
    assert frame.shape == (400, 1 + 48 + 6 + 1)
    assert frame.columns[:3].tolist() == ["respondent_id", "imp_o01", "imp_o02"]
    assert "sat_o24" in frame.columns and "duration" in frame.columns


def test_survey_same_seed_same_survey_bit_for_bit() -> None:
    kw = dict(n=150, n_outcomes=10, n_segments=3, straightliners=2, speeders=2, too_many_missing=2, missing_rate=0.1)
    (a, ta), (b, tb) = simulate_survey(**kw, random_seed=5), simulate_survey(**kw, random_seed=5)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), check_exact=True)
    pd.testing.assert_frame_equal(a.outcomes, b.outcomes, check_exact=True)
    pd.testing.assert_series_equal(ta.segment, tb.segment, check_exact=True)
    pd.testing.assert_frame_equal(ta.centers, tb.centers, check_exact=True)
    assert ta.bad == tb.bad and ta.underserved == tb.underserved
    c, _ = simulate_survey(**kw, random_seed=6)
    assert not a.to_frame().equals(c.to_frame())
    d, td = simulate_survey(**kw, random_seed=None)
    assert d.n_respondents == 150 and td.random_seed is None


def test_survey_plants_exactly_the_bad_respondents(planted: tuple) -> None:
    survey, truth = planted
    flagged = _playbook_rules(survey)
    for rule in BAD_RULES:
        assert flagged[rule] == set(truth.bad[rule]), rule
    # random missing ratings happened, but only below the threshold for good respondents
    unrated = (survey.importance.isna() | survey.satisfaction.isna()).sum(axis=1)
    assert unrated.loc[truth.good_ids].max() == 4  # floor(0.2 * 24)
    assert unrated.loc[truth.good_ids].gt(0).mean() > 0.5
    bad_missing = unrated.loc[list(truth.bad["too_many_missing"])]
    assert bad_missing.min() >= 8 and bad_missing.max() <= 15


@pytest.mark.parametrize("m", [3, 5, 7])
def test_survey_bad_respondents_exact_with_few_outcomes(m: int) -> None:
    survey, truth = simulate_survey(
        300, n_outcomes=m, n_segments=2, job_steps=1, straightliners=4, speeders=4, too_many_missing=4,
        missing_rate=0.3, imp_scale=(1, 3), sat_scale=(1, 3), random_seed=m,
    )
    flagged = _playbook_rules(survey)
    for rule in BAD_RULES:
        assert flagged[rule] == set(truth.bad[rule]), rule


def test_survey_good_respondents_keep_exact_shares(planted: tuple) -> None:
    _, truth = planted
    good = truth.segment.loc[truth.good_ids]
    realised = good.value_counts(normalize=True).sort_index().to_numpy()
    assert np.all(np.abs(realised - truth.shares.to_numpy()) < 1 / len(good))


def test_survey_centers_are_the_exact_expected_opportunity() -> None:
    survey, truth = simulate_survey(12000, n_outcomes=8, n_segments=2, job_steps=4, random_seed=3)
    opp = _opportunity(survey)
    empirical = opp.groupby(truth.segment).mean()
    # standard error of a mean of ~5000 scores with SD <= 5 is <= 0.07
    np.testing.assert_allclose(empirical.to_numpy(), truth.centers.to_numpy(), atol=0.25)
    # the centers put each segment's underserved outcomes far above the other segment's
    for g, outs in truth.underserved.items():
        other = 3 - g
        own = [o for o in outs if o not in truth.underserved[other]]
        assert own and (truth.centers.loc[g, own] - truth.centers.loc[other, own]).min() > 4


def test_survey_landscape_has_underserved_and_overserved_outcomes() -> None:
    survey, truth = simulate_survey(600, random_seed=11)
    imp, sat = survey.importance_0_10().mean(), survey.satisfaction_0_10().mean()
    assert (sat > imp).sum() >= 3  # an overserved job step
    everyone = (truth.importance_mean.min() >= 7.5) & (truth.satisfaction_mean.max() <= 3.5)
    assert everyone.sum() == 1  # one outcome underserved for all segments


def test_survey_kmeans_recovers_segments_at_default_separation(planted: tuple) -> None:
    from sklearn.cluster import KMeans

    for seed in (1, 2, 3):
        survey, truth = simulate_survey(400, random_seed=seed)
        opp = _opportunity(survey)
        labels = KMeans(4, n_init=10, random_state=0).fit_predict(opp.to_numpy())
        assert adjusted_rand_score(truth.segment.to_numpy(), labels) >= 0.9


@pytest.mark.parametrize("seed", [7, 8])
def test_survey_kmeans_on_opportunity_scores_of_good_respondents(seed: int) -> None:
    from sklearn.cluster import KMeans

    from latentseg.prepare.scoring import opportunity_scores

    survey, truth = simulate_survey(400, straightliners=5, speeders=5, too_many_missing=5, random_seed=seed)
    good = survey.subset(truth.good_ids)
    scores = opportunity_scores(good)
    pd.testing.assert_frame_equal(scores, _opportunity(good), check_names=False)
    labels = KMeans(4, n_init=10, random_state=0).fit_predict(scores.to_numpy())
    assert adjusted_rand_score(truth.segment.loc[truth.good_ids].to_numpy(), labels) >= 0.9


# latentseg.prepare.cleaning's rule names for the simulator's planted kinds
_CLEANING_RULE = {"straightliner": "straightliner", "speeder": "speeder", "too_many_missing": "unrated"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_excludes_exactly_the_planted_bad_respondents(seed: int) -> None:
    from latentseg.prepare.cleaning import clean

    survey, truth = simulate_survey(
        300, n_outcomes=20, n_segments=3, straightliners=7, speeders=6, too_many_missing=5, missing_rate=0.12,
        random_seed=seed,
    )
    kept, report = clean(survey)
    excluded = report.excluded.set_index("respondent_id")
    for rule in BAD_RULES:
        caught = set(excluded.index[excluded[_CLEANING_RULE[rule]].to_numpy(dtype=bool)])
        assert caught == set(truth.bad[rule]), rule
    assert set(excluded.index) == set(truth.bad_ids)
    assert kept.respondent_ids.tolist() == truth.good_ids.tolist()


def test_survey_zero_separation_has_no_segment_structure() -> None:
    _, truth = simulate_survey(100, separation=0.0, random_seed=1)
    assert np.ptp(truth.centers.to_numpy(), axis=0).max() == 0.0


def test_survey_demographics_follow_the_chosen_strength() -> None:
    survey, truth = simulate_survey(20000, n_outcomes=6, job_steps=3, demographic_strength=0.8, random_seed=4)
    seg = truth.segment
    for column in ("role", "company_size", "industry", "current_tool"):
        v = _cramers_v(seg, survey.profile[column])
        assert v == pytest.approx(truth.cramers_v[column], abs=0.03), column
        # each segment's most common level is its typical one (when the association is not tiny)
        if truth.cramers_v[column] > 0.3:
            modal = survey.profile[column].groupby(seg).agg(lambda s: s.value_counts().index[0])
            assert modal.tolist() == truth.typical[column].tolist()
    assert truth.cramers_v["region"] == 0.0 and _cramers_v(seg, survey.profile["region"]) < 0.03
    price = survey.profile["plan_price"].groupby(seg).mean()
    np.testing.assert_allclose(price.to_numpy(), truth.plan_price_mean.to_numpy(), rtol=0.03)
    assert truth.plan_price_mean.max() / truth.plan_price_mean.min() > 2


def test_cramers_v_from_strength() -> None:
    for s in (0.0, 0.3, 0.6, 1.0):
        assert cramers_v_from_strength(s, [0.25] * 4, 4) == pytest.approx(s)
    assert cramers_v_from_strength(0.5, [1.0], 4) == 0.0
    assert 0 < cramers_v_from_strength(0.5, [0.34, 0.28, 0.22, 0.16], 6) < 1


def test_survey_custom_underserved_and_scales() -> None:
    survey, truth = simulate_survey(
        300, n_outcomes=9, n_segments=2, job_steps=3, underserved={1: ["o02", "o01"], 2: ["o09"]},
        imp_scale="1-7", sat_scale=Scale(0, 10), random_seed=1,
    )
    assert truth.underserved == {1: ("o01", "o02"), 2: ("o09",)}
    assert str(survey.imp_scale) == "1-7" and str(survey.sat_scale) == "0-10"
    assert truth.centers.loc[1, "o01"] > truth.centers.loc[2, "o01"] + 4
    assert truth.centers.loc[2, "o09"] > truth.centers.loc[1, "o09"] + 4


def test_survey_generic_statements_for_other_jobs() -> None:
    survey, _ = simulate_survey(120, n_outcomes=40, n_segments=3, job_steps=8, job="plan a family trip", random_seed=1)
    assert survey.outcome_ids[0] == "o01" and survey.outcome_ids[-1] == "o40"
    assert survey.outcomes["job_step"].nunique() == 8
    assert survey.outcomes["statement"].str.contains("plan a family trip").all()
    survey, _ = simulate_survey(120, n_outcomes=150, n_segments=2, random_seed=1)
    assert survey.outcome_ids[0] == "o001"


def test_survey_default_job_uses_the_project_job_map() -> None:
    survey, _ = simulate_survey(50, random_seed=1)
    assert DEFAULT_JOB.startswith("manage cross-functional projects")
    assert survey.outcomes["job_step"].iloc[0] == "Define the scope"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_outcomes": 1}, r"'n_outcomes' parameter of simulate_survey must be an int in the range \[2, inf\)"),
        ({"n_outcomes": 4, "job_steps": 5}, r"'job_steps' parameter of simulate_survey must be at most n_outcomes=4\. Got 5"),
        ({"imp_scale": (1, 4.5)}, r"'imp_scale' parameter .* integer Likert scale .* Got \(1, 4\.5\) instead"),
        ({"sat_scale": "ten"}, r"'sat_scale' parameter .* Got 'ten' instead"),
        ({"demographic_strength": 1.5}, r"'demographic_strength' parameter .* \[0\.0, 1\.0\]\. Got 1\.5"),
        ({"n": 10, "speeders": 5}, r"bad respondents of simulate_survey .* = 5\) must be fewer than half of n=10"),
        ({"n_segments": 2, "underserved": {3: ["o01"]}}, r"'underserved' parameter .* segments 1\.\.2 .* Got segment keys \[3\]"),
        ({"underserved": {1: ["o99", "x"]}}, r"names unknown outcome ids \[o99, x\]; expected ids among o01\.\.o24"),
        ({"n_outcomes": 2, "job_steps": 1, "too_many_missing": 1}, r"'too_many_missing' parameter .* needs n_outcomes >= 3"),
        ({"shares": [0.5, 0.5]}, r"'shares' parameter of simulate_survey must be 4 positive numbers"),
    ],
)
def test_survey_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate_survey(**kwargs)


# --------------------------------------------------------------------------------------------
# latentseg simulate
# --------------------------------------------------------------------------------------------


def _cli():
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner(), app


def test_cli_simulate_writes_survey_and_truth(tmp_path) -> None:
    runner, app = _cli()
    out, truth_path = tmp_path / "s.csv", tmp_path / "sub" / "truth.csv"
    args = ["simulate", "-o", str(out), "--n", "120", "--outcomes", "10", "--segments", "3", "--seed", "3",
            "--truth", str(truth_path), "--imp-scale", "1-7", "--sat-scale", "0-10", "--speeders", "2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "Simulated 120 respondents x 10 outcomes, 3 segments" in res.output
    frame = pd.read_csv(out)
    survey, truth = simulate_survey(
        120, n_outcomes=10, n_segments=3, imp_scale=(1, 7), sat_scale=(0, 10), speeders=2, random_seed=3
    )
    expected = survey.to_frame()
    assert list(frame.columns) == list(expected.columns)
    np.testing.assert_array_equal(frame.filter(like="imp_").to_numpy(), expected.filter(like="imp_").to_numpy())
    assert frame["imp_o01"].dtype.kind == "i"  # whole numbers written without '.0'
    written_truth = pd.read_csv(truth_path, keep_default_na=False)
    assert written_truth["segment"].tolist() == truth.segment.tolist()
    assert (written_truth["bad"] == "speeder").sum() == 2
    # same seed, same file
    again = tmp_path / "again.csv"
    assert runner.invoke(app, args[:2] + [str(again)] + args[3:]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_cli_simulate_parquet_and_drawn_seed(tmp_path) -> None:
    runner, app = _cli()
    out = tmp_path / "s.parquet"
    res = runner.invoke(app, ["simulate", "-o", str(out), "--n", "60", "--outcomes", "4", "--job-steps", "2"])
    assert res.exit_code == 0, res.output
    seed = int(res.output.split("seed ")[1].split()[0])
    frame = pd.read_parquet(out)
    assert frame.shape == (60, 1 + 8 + 6 + 1)
    expected = simulate_survey(60, n_outcomes=4, job_steps=2, random_seed=seed)[0].to_frame()
    np.testing.assert_array_equal(frame.filter(like="sat_").to_numpy(dtype=float), expected.filter(like="sat_").to_numpy())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "s.txt"], "The --output file 's.txt' must end in .csv or .parquet; got '.txt'."),
        (["-o", "s.csv", "--truth", "t"], "The --truth file 't' must end in .csv or .parquet; got 'no suffix'."),
        (["-o", "s.csv", "--imp-scale", "5"], "--imp-scale must be an integer rating scale such as '1-5' or '1-10'; got '5'."),
        (["-o", "s.csv", "--sat-scale", "1-4.5"], "--sat-scale must be an integer rating scale"),
        (["-o", "s.csv", "--n", "10", "--speeders", "5"], "must be fewer than half of n=10"),
    ],
)
def test_cli_simulate_bad_input_exits_1_with_one_message(tmp_path, monkeypatch, args: list, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    runner, app = _cli()
    res = runner.invoke(app, ["simulate", *args])
    assert res.exit_code == 1
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert not list(tmp_path.iterdir())
