"""The rating study: its designs' truth, its config, and the same table on a Dask cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentseg.errors import ConfigError
from latentseg.prepare.scoring import opportunity_scores
from latentseg.research.simulate import score_to_ratings_0_10, simulate_response_styles, simulate_score_segments
from latentseg.research.study import run_study, study_config_from_dict

TINY = {
    "data": "ratings",
    "grid": {"design": ["ratings", "styles"], "n": [200], "k": [2], "separation": [1.5]},
    "replications": 1,
    "methods": ["kmeans-silhouette", "rating-lca-bic"],
    "k_candidates": [1, 2, 3],
    "d": 4,
    "seed": 11,
    "fit_options": {"rating-lca": {"n_init": 4}, "kmeans": {"n_init": 4}},
}


def test_score_map_gives_back_the_score():
    s = np.linspace(0.0, 20.0, 401)
    imp, sat = score_to_ratings_0_10(s)
    np.testing.assert_allclose(imp + np.maximum(imp - sat, 0.0), s, atol=1e-12)
    assert np.all(np.diff(imp) >= 0) and imp.min() >= 0 and imp.max() <= 10 and sat.min() >= 0 and sat.max() <= 10


@pytest.mark.parametrize("simulate", [simulate_score_segments, simulate_response_styles])
def test_designs_plant_the_segment_opportunity_they_report(simulate):
    survey, truth = simulate(30000, n_outcomes=4, n_segments=3, sat_scale=(1, 10), random_seed=5)
    seg = truth.segment.to_numpy()
    empirical = opportunity_scores(survey).groupby(seg).mean().to_numpy()
    # standard error of a segment mean about 0.04 (sd 4, n >= 6000); largest error 0.03-0.06 over
    # seeds 1-5 at this size; tolerance 0.2
    assert np.abs(empirical - truth.centers.to_numpy()).max() < 0.2
    np.testing.assert_allclose(np.bincount(seg)[1:] / seg.size, truth.shares.to_numpy(), atol=0.02)


def test_rating_study_config_is_checked():
    cfg = study_config_from_dict(TINY)
    assert cfg.factors[0] == "design" and len(cfg.cells()) == 2 and cfg.grid["scale"] == ["1-5"]
    with pytest.raises(ConfigError, match="need data"):
        study_config_from_dict({**TINY, "data": "gaussian", "grid": {"n": [100], "k": [2], "separation": [2.0]}})
    with pytest.raises(ConfigError, match="design"):
        study_config_from_dict({**TINY, "grid": {**TINY["grid"], "design": ["likert"]}})
    with pytest.raises(ConfigError, match="scale"):
        study_config_from_dict({**TINY, "grid": {**TINY["grid"], "scale": ["1-5-7"]}})


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    return run_study(TINY, tmp_path_factory.mktemp("local"), plots=False)


def test_rating_lca_recovers_segments_defined_by_ratings(local_run):
    reps = local_run.replications.set_index(["design", "method"])
    row = reps.loc[("ratings", "rating-lca-bic")]
    # design (a) at separation 1.5 on 4 outcomes: ARI 0.97-1.00 and k = 2 chosen on seeds 11-15
    assert row["correct_k"] == 1.0 and row["ari_true_k"] > 0.85
    assert 0.0 <= row["opp_coverage"] <= 1.0 and row["opp_rmse"] < 1.0
    assert np.isnan(reps.loc[("ratings", "kmeans-silhouette"), "opp_coverage"])


def test_dask_cluster_gives_the_local_table(local_run, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = run_study(TINY, tmp_path, scheduler=cluster.scheduler_address, plots=False)
    assert res.computed == 2
    drop = ["seconds"]
    pd.testing.assert_frame_equal(res.replications.drop(columns=drop), local_run.replications.drop(columns=drop))
    pd.testing.assert_frame_equal(res.summary, local_run.summary)

