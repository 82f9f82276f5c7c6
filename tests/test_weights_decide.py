"""Survey weights through every decision number (issue 16, latentseg/decide/).

Truth, not smoke: the weighted crosstab of region by true segment recovers the population table
of :func:`simulate_weighted_survey` while the unweighted one is biased; weighted distal means
recover population means; the Rao-Scott test equals R's ``survey::svychisq(statistic = "F")``
(stored numbers always, a live run when R and the survey package are there) and holds its size
under the null where the naive Pearson test does not; weights all 1 give exactly the unweighted
numbers; an integer weight 2 equals duplicating the row.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from latentseg.decide.distal import distal
from latentseg.decide.finder import finder
from latentseg.decide.overlay import overlay
from latentseg.decide.profiling import profile
from latentseg.decide.segmap import segment_map
from latentseg.decide.sizing import size_segments
from latentseg.decide.weights import design_shares, rao_scott, resolve_weights
from latentseg.errors import ConfigError
from latentseg.research.simulate import simulate_weighted_survey
from latentseg.result import SegmentationResult

SOUTH = np.linspace(0.2, 0.8, 3)  # P(south | true segment j) in simulate_weighted_survey, k = 3


def _hard(labels: np.ndarray, ids: pd.Index, k: int = 3) -> SegmentationResult:
    return SegmentationResult.from_memberships(
        "gmm", np.eye(k)[labels - 1], centers=np.zeros((k, 1)), feature_names=("f",), respondent_ids=ids
    )


def _true_label(r: SegmentationResult, labels: np.ndarray) -> dict[int, int]:
    """The result's segment j -> the simulator's true segment (the result is in canonical order)."""
    return {j: int(np.bincount(labels[r.assignment == j]).argmax()) for j in range(1, r.k + 1)}


@pytest.fixture(scope="module", params=[1, 2, 3])
def weighted_sample(request):
    s = simulate_weighted_survey(2000, k=3, random_seed=request.param)
    r = _hard(s.labels, s.data.index)
    return s, r, _true_label(r, s.labels)


# ---------------------------------------------------------------------------------------- truth
def test_weighted_crosstab_recovers_population_table(weighted_sample):
    s, r, lab = weighted_sample
    w = overlay(r, s.profile, weighting="modal", sample_weight=s.weights)["region"]
    u = overlay(r, s.profile, weighting="modal")["region"]
    for j in range(1, 4):
        truth = SOUTH[lab[j] - 1]
        # weighted: |error| <= 0.036 over seeds 1-5 x 3 segments (SE about 0.02); tolerance 0.07
        assert abs(w.row_pct.loc[j, "south"] / 100 - truth) < 0.07
        # unweighted: the south is oversampled e-fold, error 0.11-0.25 over the same draws
        assert u.row_pct.loc[j, "south"] / 100 - truth > 0.09
    assert w.weighted and w.test.startswith("Rao-Scott") and w.ddf is not None
    assert w.p_value < 1e-10  # region depends strongly on the segment
    for weighting in ("proportional", "bch"):  # the same table by memberships (here exact): same answer
        o = overlay(r, s.profile, weighting=weighting, sample_weight=s.weights)["region"]
        np.testing.assert_allclose(o.row_pct, w.row_pct, rtol=1e-9)
        assert o.p_value == pytest.approx(w.p_value, rel=1e-6)


def test_weighted_profile_means_recover_population_means(weighted_sample):
    s, r, lab = weighted_sample
    south = (s.profile["region"] == "south").to_numpy()
    scores = pd.DataFrame({"o1": 8.0 + s.labels + 4.0 * south, "o2": 12.0 - 2.0 * south}, index=s.data.index)
    pw, pu = profile(r, scores, sample_weight=s.weights), profile(r, scores)
    truth = np.array([8.0 + lab[j] + 4.0 * SOUTH[lab[j] - 1] for j in range(1, 4)])
    # weighted: |error| (4 x the region-share error) <= 0.145 over seeds 1-5, tolerance 0.3;
    # unweighted: 0.46-1.0 too high over the same draws
    assert np.abs(pw.means["o1"].to_numpy() - truth).max() < 0.3
    assert (pu.means["o1"].to_numpy() - truth).min() > 0.35
    # overall mean: weighted |error| <= 0.018 (tolerance 0.05), unweighted 0.65-0.67 too low
    pop_south = float(s.population_shares @ SOUTH)
    assert pw.overall["o2"] == pytest.approx(12.0 - 2.0 * pop_south, abs=0.05)
    assert pu.overall["o2"] < 12.0 - 2.0 * pop_south - 0.1


def test_weighted_shares_recover_population_shares(weighted_sample):
    s, r, lab = weighted_sample
    truth = s.population_shares[[lab[j] - 1 for j in range(1, 4)]]
    sh, lo, hi, how = design_shares(r, s.weights)
    assert "design-based" in how and np.all(lo < sh) and np.all(sh < hi)
    # weighted: |error| <= 0.025 over seeds 1-5 (SE about 0.014), tolerance 0.05; unweighted: the
    # smallest segment is oversampled 3-fold, off by 0.25-0.27 in segments 1 and 3
    assert np.abs(sh - truth).max() < 0.05
    assert np.abs(np.asarray(r.shares) - truth).max() > 0.1
    t = size_segments(r, tam=1e6, sample_weight=s.weights).table
    np.testing.assert_allclose(t["count"], sh * 1e6)
    assert t["interval"].iloc[0] == how


def test_design_share_intervals_cover():
    """95% design-based share intervals cover the population share in 200 samples: measured
    0.955-0.975 per segment over seeds 1000-1199 and 3000-3199 (slightly conservative: the
    with-replacement variance ignores Poisson sampling's finite-population gain); binomial SE 0.015,
    so the bounds are 0.91-0.995. (With population_factor=10 the sampling fractions reach 40% and
    coverage rises to 0.99: keep the population large.)"""
    hits = np.zeros(3)
    reps = 200
    for seed in range(reps):
        s = simulate_weighted_survey(300, k=3, population_factor=40, random_seed=1000 + seed)
        r = _hard(s.labels, s.data.index)
        lab = _true_label(r, s.labels)
        truth = s.population_shares[[lab[j] - 1 for j in range(1, 4)]]
        _, lo, hi, _ = design_shares(r, s.weights)
        hits += (lo <= truth) & (truth <= hi)
    assert np.all(hits / reps >= 0.91) and np.all(hits / reps <= 0.995), hits / reps


def test_weighted_distal_recovers_population_means(weighted_sample):
    s, r, lab = weighted_sample
    south = (s.profile["region"] == "south").to_numpy()
    rng = np.random.default_rng(7)
    y = 2.0 * s.labels + 3.0 * south + rng.normal(0, 1, s.labels.size)
    frame = pd.DataFrame({"y": y, "churn": np.where(south, "yes", "no")}, index=s.data.index)
    for method in ("modal", "bch", "ml"):
        d = distal(r, frame, ["y", "churn"], method=method, sample_weight=s.weights)
        u = distal(r, frame, ["y", "churn"], method=method)
        truth = np.array([2.0 * lab[j] + 3.0 * SOUTH[lab[j] - 1] for j in range(1, 4)])
        err_w = d.estimate("y").to_numpy() - truth
        err_u = u.estimate("y").to_numpy() - truth
        # weighted: |error| <= 0.14 over seeds 1-5 (SE about 0.09), tolerance 0.3; the unweighted
        # mean carries the oversampled south: 0.29-0.71 too high, 0.47-0.55 on average over segments
        assert np.abs(err_w).max() < 0.3, (method, err_w)
        assert np.all(np.abs(err_w) < err_u) and err_u.mean() > 0.3, (method, err_u)
        # proportions: |error| <= 0.036 (SE about 0.02), tolerance 0.07
        south_hat = d.estimate("churn", "yes").to_numpy()
        assert np.abs(south_hat - SOUTH[[lab[j] - 1 for j in range(1, 4)]]).max() < 0.07
        assert any("survey-weighted" in n for n in d.notes)


def test_weighted_distal_se_is_design_based():
    """The BCH / modal SE with survey weights is the linearisation SE R's svyby(svymean) gives:
    for hard segments, sqrt(n/(n-1) sum (w_i (y_i - m))^2) / sum w_i within the segment."""
    rng = np.random.default_rng(3)
    n = 400
    labels = rng.integers(1, 3, n)
    w = np.exp(rng.normal(0, 0.7, n))
    y = labels + rng.normal(0, 1, n)
    r = _hard(labels, pd.RangeIndex(n), k=2)
    d = distal(r, pd.DataFrame({"y": y}), ["y"], method="modal", sample_weight=w)
    for j in (1, 2):
        m = r.assignment == j
        mean = (w[m] @ y[m]) / w[m].sum()
        se = np.sqrt(n / (n - 1) * np.sum((w[m] * (y[m] - mean)) ** 2)) / w[m].sum()
        row = d.table[d.table.segment == j].iloc[0]
        assert row.estimate == pytest.approx(mean, rel=1e-12)
        assert row.se == pytest.approx(se, rel=1e-10)


# ---------------------------------------------------------------------------------------- Rao-Scott
# Stored reference: printed by R 4.3 / survey 4.1-1 with
#   suppressMessages(library(survey)); tabs <- list()
#   i <- 0:299; tabs$A <- data.frame(a = i %% 3, b = (i * i + i %/% 7) %% 3, w = 1 + ((i * 37) %% 11) / 2 + i %% 3)
#   i <- 0:499; tabs$B <- data.frame(a = (i %/% 3) %% 2, b = (i * 7 + i %/% 11) %% 4, w = exp(((i * 13) %% 17) / 8))
#   i <- 0:239; tabs$C <- data.frame(a = i %% 4, b = as.integer((i * 5 + i %% 4) %% 9 < 3 + i %% 4), w = 1 + (i %% 5)^2)
#   for (nm in names(tabs)) {
#     des <- svydesign(ids = ~1, weights = ~w, data = tabs[[nm]])
#     r <- svychisq(~a + b, des, statistic = "F")
#     cat(nm, sprintf("%.15g", c(r$statistic, r$parameter, r$p.value)), "\n")
#   }
R_REFERENCE = {  # F, ndf, ddf, p
    "A": (1.78278753253867, 3.95890083310482, 1183.71134909834, 0.130621612152143),
    "B": (0.301607566652817, 2.99994876928318, 1496.97443587231, 0.82425356132904),
    "C": (4.26523023461218, 2.99953501342484, 716.888868208536, 0.00535557688099272),
}


def _reference_table(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if name == "A":
        i = np.arange(300)
        return i % 3, (i * i + i // 7) % 3, 1 + ((i * 37) % 11) / 2 + i % 3
    if name == "B":
        i = np.arange(500)
        return (i // 3) % 2, (i * 7 + i // 11) % 4, np.exp(((i * 13) % 17) / 8)
    i = np.arange(240)
    return i % 4, ((i * 5 + i % 4) % 9 < 3 + i % 4).astype(int), 1.0 + (i % 5) ** 2


@pytest.mark.parametrize("name", sorted(R_REFERENCE))
def test_rao_scott_matches_stored_r_numbers(name):
    a, b, w = _reference_table(name)
    r, c = a.max() + 1, b.max() + 1
    rs = rao_scott(np.eye(r * c)[a * c + b], w, (r, c))
    np.testing.assert_allclose((rs.statistic, rs.ndf, rs.ddf, rs.p_value), R_REFERENCE[name], rtol=1e-6)


# Stored reference for the numeric overlay's design-based Kruskal-Wallis, printed by R 4.3 / survey 4.1-1:
#   i <- 0:199; d <- data.frame(g = i %% 3 + 1, y = (i * 17) %% 23 + 2 * (i %% 3), w = 1 + ((i * 7) %% 5) / 2 + (i %% 3 == 2))
#   r <- svyranktest(y ~ g, svydesign(ids = ~1, weights = ~w, data = d), test = "KruskalWallis")
#   cat(sprintf("%.15g", c(r$parameter, r$statistic, r$ddf, r$p.value)))
R_RANKTEST = (9.22570628449352, 2, 197, 0.0110193889053257)  # chi2, ndf, ddf, p


def test_weighted_rank_test_matches_stored_r_numbers():
    i = np.arange(200)
    g = i % 3 + 1
    frame = pd.DataFrame({"y": (i * 17) % 23 + 2.0 * (i % 3)})
    w = 1 + ((i * 7) % 5) / 2 + (i % 3 == 2)
    o = overlay(_hard(g, pd.RangeIndex(200)), frame, sample_weight=w)["y"]
    assert o.test.startswith("design-based Kruskal-Wallis")
    np.testing.assert_allclose((o.statistic, o.df, o.ddf, o.p_value), R_RANKTEST, rtol=1e-6)


def _r_survey_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    got = subprocess.run(["Rscript", "-e", "suppressMessages(library(survey))"], capture_output=True, timeout=120)
    return got.returncode == 0


def test_overlay_rao_scott_matches_live_r(tmp_path):
    """overlay() on hard segments against survey::svychisq (categorical) and svyranktest (numeric),
    and the weighted distal means and their SEs against svyby(svymean), on the same data (two
    seeds), to 1e-6."""
    if not _r_survey_available():
        pytest.skip("R with the survey package is not installed (apt-get install r-cran-survey)")
    got, paths = [], []
    for seed in (11, 12):
        rng = np.random.default_rng(seed)
        n = 350
        labels = rng.integers(1, 4, n)
        role = np.where(rng.random(n) < 0.25 + 0.15 * labels, "ops", np.where(rng.random(n) < 0.5, "pm", "finance"))
        w = np.exp(rng.normal(0, 0.8, n)) * (1 + (role == "ops"))
        size = np.round(rng.normal(50 + 3 * labels, 10, n))  # ties
        r = _hard(labels, pd.RangeIndex(n))
        ov = overlay(r, pd.DataFrame({"role": role, "size": size}), weighting="modal", sample_weight=w)
        dist = distal(r, pd.DataFrame({"size": size}), ["size"], method="modal", sample_weight=w).table
        got.append((ov["role"].statistic, ov["role"].df, ov["role"].ddf, ov["role"].p_value,
                    ov["size"].statistic, ov["size"].df, ov["size"].ddf, ov["size"].p_value,
                    *dist["estimate"], *dist["se"]))
        paths.append(str(tmp_path / f"t{seed}.csv"))
        pd.DataFrame({"a": r.assignment, "b": role, "y": size, "w": w}).to_csv(paths[-1], index=False)
    code = (
        "suppressMessages(library(survey)); for (f in commandArgs(TRUE)) { d <- read.csv(f); "
        "des <- svydesign(ids = ~1, weights = ~w, data = d); r <- svychisq(~a + b, des, statistic = 'F'); "
        "k <- svyranktest(y ~ a, des, test = 'KruskalWallis'); m <- svyby(~y, ~a, des, svymean); "
        "cat(sprintf('%.15g', c(r$statistic, r$parameter, r$p.value, k$parameter, k$statistic, k$ddf, k$p.value, "
        "coef(m), SE(m))), '\\n') }"
    )
    out = subprocess.run(["Rscript", "-e", code, *paths], capture_output=True, text=True, timeout=120, check=True)
    want = [[float(x) for x in line.split()] for line in out.stdout.strip().splitlines()]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_rao_scott_holds_its_size_where_pearson_does_not():
    """Segment independent of the column, lognormal weights (sigma 0.8, Kish deff about 1.9): over
    300 tables of 500 the Rao-Scott test rejects at 5% in 0.050-0.063 of them (seed blocks 0, 5000,
    9000; Monte-Carlo SE 0.013), Pearson's test on the weighted table scaled to n in 0.25-0.31."""
    from scipy import stats

    reps, n = 300, 500
    rs_rej = naive_rej = 0
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        seg, cat = rng.integers(0, 3, n), rng.integers(0, 3, n)
        w = np.exp(rng.normal(0, 0.8, n))
        cells = np.eye(9)[seg * 3 + cat]
        res = rao_scott(cells, w, (3, 3))
        rs_rej += res.p_value < 0.05
        naive_rej += stats.chi2.sf(res.pearson, 4) < 0.05
    assert 0.02 <= rs_rej / reps <= 0.09, rs_rej / reps
    assert naive_rej / reps > 0.15, naive_rej / reps


# ---------------------------------------------------------------------------------------- exactness
@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(4)
    n, k = 120, 3
    logits = rng.normal(0, 2, (n, k))
    z = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((k, 1)), feature_names=("f",))
    ids = r.respondent_ids
    prof = pd.DataFrame(
        {
            "role": rng.choice(["ops", "pm", "finance"], n),
            "size": rng.normal(50, 10, n),
            "plan": rng.choice(["a", "b"], n),
            "nps": rng.integers(0, 11, n).astype(float),
        },
        index=ids,
    )
    scores = pd.DataFrame(rng.uniform(0, 20, (n, 4)), columns=["o1", "o2", "o3", "o4"], index=ids)
    return r, prof, scores


def _numbers(r, prof, scores, w):
    ov = overlay(r, prof, columns=["role", "size"], sample_weight=w, random_seed=1)
    out = {
        "ov_table": ov["role"].table,
        "ov_row": ov["role"].row_pct,
        "ov_num": ov["size"].table,
        "ov_test": pd.Series([ov["role"].statistic, ov["role"].p_value, ov["size"].statistic, ov["size"].p_value]),
        "sizing": size_segments(r, tam=1e5, arpu_column="size", data=prof, sample_weight=w).table.drop(columns="flags"),
        "profile": profile(r, scores, sample_weight=w).means,
    }
    for method in ("bch", "ml", "proportional"):
        out[f"distal_{method}"] = distal(r, prof, ["nps", "plan"], method=method, sample_weight=w).table
    return out


def test_weights_all_one_give_exactly_the_unweighted_numbers(small):
    r, prof, scores = small
    plain, ones = _numbers(r, prof, scores, None), _numbers(r, prof, scores, np.ones(r.n))
    for key in plain:
        pd.testing.assert_frame_equal(pd.DataFrame(ones[key]), pd.DataFrame(plain[key]), check_exact=True, obj=key)
    f0 = finder(r, prof, columns=["role", "plan"], random_seed=2)
    f1 = finder(r, prof, columns=["role", "plan"], random_seed=2, sample_weight=np.ones(r.n))
    assert (f1.cv_accuracy, f1.baseline_accuracy, f1.p_value) == (f0.cv_accuracy, f0.baseline_accuracy, f0.p_value)
    np.testing.assert_array_equal(f1.coef, f0.coef)


def test_integer_weight_two_equals_a_duplicated_row(small):
    r, prof, scores = small
    w = np.ones(r.n)
    w[[3, 40, 77]] = 2.0
    dup_rows = np.r_[np.arange(r.n), [3, 40, 77]]
    ids = pd.RangeIndex(dup_rows.size)
    rd = dataclasses.replace(r, memberships=np.asarray(r.memberships)[dup_rows], respondent_ids=ids)
    prof_d = prof.iloc[dup_rows].set_axis(ids)
    scores_d = scores.iloc[dup_rows].set_axis(ids)
    ow, od = overlay(r, prof, sample_weight=w)["role"], overlay(rd, prof_d)["role"]
    np.testing.assert_allclose(ow.table, od.table, rtol=1e-12)
    np.testing.assert_allclose(ow.row_pct, od.row_pct, rtol=1e-12)
    np.testing.assert_allclose(ow.effect, od.effect, rtol=1e-12)
    np.testing.assert_allclose(overlay(r, prof, sample_weight=w)["size"].table["mean"],
                               overlay(rd, prof_d)["size"].table["mean"], rtol=1e-12)
    np.testing.assert_allclose(profile(r, scores, sample_weight=w).means, profile(rd, scores_d).means, rtol=1e-12)
    for method in ("bch", "proportional", "ml"):
        dw = distal(r, prof, ["nps", "plan"], method=method, sample_weight=w).table
        dd = distal(rd, prof_d, ["nps", "plan"], method=method).table
        np.testing.assert_allclose(dw["estimate"], dd["estimate"], rtol=1e-6, atol=1e-9, err_msg=method)
        np.testing.assert_allclose(dw["size"], dd["size"], rtol=1e-12)
    sh, _, _, _ = design_shares(r, w)
    np.testing.assert_allclose(sh, np.asarray(rd.memberships).mean(axis=0), rtol=1e-12)
    mw = segment_map(r, profiles=profile(r, scores, sample_weight=w), current_solution_column="role", profile_df=prof,
                     sample_weight=w)
    md = segment_map(rd, profiles=profile(rd, scores_d), current_solution_column="role", profile_df=prof_d)
    for a, b in zip(mw.segments, md.segments):
        assert a["current_solution"] == b["current_solution"]
        assert a["current_solution_pct"] == pytest.approx(b["current_solution_pct"], rel=1e-12)
        assert a["unmet_need"] == pytest.approx(b["unmet_need"], rel=1e-9)


def test_finder_is_trained_and_scored_with_the_weights():
    """A weight of 2 on a row trains the classifier as that row duplicated (categorical predictors:
    no scaling), and the reported accuracy and baseline are the weighted shares."""
    rng = np.random.default_rng(9)
    n = 200
    labels = rng.integers(1, 3, n)
    role = np.where(rng.random(n) < np.where(labels == 1, 0.8, 0.3), "ops", "pm")
    r = _hard(labels, pd.RangeIndex(n), k=2)
    prof = pd.DataFrame({"role": role, "tier": rng.choice(["x", "y", "z"], n)})
    w = np.where(role == "pm", 3.0, 1.0)
    f = finder(r, prof, random_seed=0, sample_weight=w)
    dup = np.repeat(np.arange(n), w.astype(int))
    rd = _hard(labels[dup], pd.RangeIndex(dup.size), k=2)
    fd = finder(rd, prof.iloc[dup].reset_index(drop=True), random_seed=0)
    np.testing.assert_allclose(f.coef, fd.coef, atol=2e-4)  # lbfgs tolerance
    y = r.assignment
    assert f.baseline_accuracy == pytest.approx(max(w[y == c].sum() for c in (1, 2)) / w.sum())
    pred = f.predict(prof).to_numpy()  # the final model; the CV accuracy is out-of-fold
    assert 0 < f.cv_accuracy <= 1 and abs(f.cv_accuracy - w[pred == y].sum() / w.sum()) < 0.1
    assert f.settings["sample_weight"].startswith("survey-weighted")


def test_segment_map_and_decide_use_the_weights():
    from latentseg.decide.core import decide
    from latentseg.models import fit
    from latentseg.prepare.core import prepare

    p = prepare("examples/project_survey.csv", "examples/latentseg.toml")
    res = fit(p.numeric, "gmm", 3, random_seed=1, n_init=2)
    rng = np.random.default_rng(0)
    ids = pd.Index(res.respondent_ids)
    w = pd.Series(np.exp(rng.normal(0, 0.6, res.n)), index=ids).sample(frac=1.0, random_state=0)  # matched by id
    d = decide(res, p.scores, p.outcomes, p.profile, p.config, sample_weight=w)
    wv = w.loc[ids].to_numpy()
    want = wv @ np.asarray(res.memberships) / wv.sum()
    np.testing.assert_allclose(d.sizing.table["share"], want, rtol=1e-12)
    np.testing.assert_allclose([s["share"] for s in d.segment_map.segments], want, rtol=1e-12)
    np.testing.assert_allclose([s.share for s in d.profiles.segments], want, rtol=1e-12)
    assert any("survey-weighted" in n for n in d.notes)
    if d.overlays is not None:
        assert all(c.weighted for c in d.overlays.columns.values())
    plain = decide(res, p.scores, p.outcomes, p.profile, p.config)
    np.testing.assert_allclose(plain.sizing.table["share"], res.shares)


# ---------------------------------------------------------------------------------------- bad input
def test_bad_weights_name_the_respondents(small):
    r, prof, _ = small
    w = np.ones(r.n)
    w[[4, 9]] = [0.0, np.nan]
    with pytest.raises(ConfigError, match=r"2 respondents have a missing, zero, negative or infinite weight: ids \[5, 10\]"):
        overlay(r, prof, sample_weight=w)
    with pytest.raises(ConfigError, match="sample_weight has 3 weights; the segmentation has 120 respondents"):
        resolve_weights(r, [1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="positive and finite"):
        distal(r, prof, ["nps"], sample_weight=-w)


def test_the_results_own_weights_are_the_default(small):
    """A result fitted with weights carries them (``result.sample_weight``, the survey-weights
    contract): every decision then uses them without being told, and its own shares and interval
    (design-based from the engine) stand, rather than being recomputed."""
    r, prof, scores = small
    w = np.random.default_rng(1).uniform(0.5, 2.0, r.n)
    fitted = dataclasses.replace(r)
    object.__setattr__(fitted, "sample_weight", w)  # what a weighted engine's result carries
    np.testing.assert_array_equal(resolve_weights(fitted), w)
    sh, lo, hi, how = design_shares(fitted, w)
    assert how == r.interval_method and np.array_equal(sh, r.shares) and np.array_equal(lo, r.share_lower)
    assert design_shares(r, w)[3].startswith("95% design-based")  # weights the fit did not see
    a = overlay(fitted, prof, columns=["role"])["role"]
    b = overlay(r, prof, columns=["role"], sample_weight=w)["role"]
    assert a.weighted and a.statistic == b.statistic and a.p_value == b.p_value
    np.testing.assert_array_equal(profile(fitted, scores).means, profile(r, scores, sample_weight=w).means)
