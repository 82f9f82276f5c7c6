"""Survey weights from the file to every fit (issue 16): validation, normalisation, the CLI
options, the plumbing to every engine call (sweep, stability, checkpoints, keep, comparison,
BLRT), the JSON contract and the deliverables' wording.

The plumbing tests replace the engines' fit functions by recorders that note the
``sample_weight`` each call receives and fit unweighted (so they run before and after the
weighted engines exist). The end-to-end tests at the bottom need the weighted engines
(``sample_weight`` in the fit functions' signatures) and are skipped without them.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from latentseg._stats import effective_n
from latentseg.errors import ConfigError, SurveyError
from latentseg.prepare.core import prepare, weights_sentence

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WEIGHTED = EXAMPLES / "weighted_survey.csv"
CONFIG = EXAMPLES / "latentseg.toml"
#: a quick configuration of the sweep: 4 principal components, 2 starts, 2 stability subsamples
QUICK = {"model": {"n_init": 2}, "select": {"stability_subsamples": 2}, "reduce": {"method": "pca", "n_factors": 4}}
#: the weights as the file gives them, by respondent id
FILE_WEIGHTS = pd.read_csv(WEIGHTED, usecols=["respondent_id", "weight"]).set_index("respondent_id")["weight"]


def _cfg(**survey: Any) -> dict[str, Any]:
    from latentseg.config import load_config

    cfg = load_config(CONFIG)
    cfg["survey"].update(survey)
    return cfg


def _cli(*args: Any) -> Any:
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _with_weights(tmp_path: Path, change: dict[int, Any], name: str = "survey.csv") -> Path:
    frame = pd.read_csv(WEIGHTED, dtype={"weight": object})
    for row, value in change.items():
        frame.loc[row, "weight"] = value
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------ prepare
def test_weights_are_normalised_to_mean_one_over_the_respondents_that_reach_the_model(tmp_path):
    # the project survey has planted straight-liners, speeders and incomplete respondents: give
    # every respondent a known weight and check the kept ones' weights keep their ratios
    frame = pd.read_csv(EXAMPLES / "project_survey.csv")
    frame["weight"] = np.round(1.0 + (np.arange(len(frame)) % 7) / 2.0, 2)
    path = tmp_path / "project_weighted.csv"
    frame.to_csv(path, index=False)
    p = prepare(path, CONFIG, families=["gmm", "lca"])
    assert p.cleaning.n_excluded > 0 and p.n == p.cleaning.n_out
    assert p.weights.index.equals(p.numeric.index)
    assert p.weights.mean() == pytest.approx(1.0, abs=1e-12)
    given = frame.set_index(frame["respondent_id"].astype(str))["weight"].reindex(p.weights.index)
    np.testing.assert_allclose(p.weights.to_numpy(), given.to_numpy() / given.mean(), rtol=1e-12)
    assert p.effective_n == pytest.approx(effective_n(given.to_numpy()), rel=1e-12)
    np.testing.assert_array_equal(p.weights_for("lca"), p.weights.reindex(p.levels.index).to_numpy())
    assert any("normalised to mean 1" in n and "'weight'" in n for n in p.notes)
    info = p.weights_info()
    assert info == {"column": "weight", "effective_n": round(p.effective_n, 1), "n": p.n}


def test_weighted_example_and_its_truth():
    # the bundled sample over-represents the small segments: the unweighted shares of the true
    # segments are reversed, the weighted ones close to the population's 34/28/22/16%
    truth = pd.read_csv(EXAMPLES / "weighted_truth.csv").set_index("respondent_id")
    p = prepare(WEIGHTED, CONFIG, families=["gmm"])
    seg = truth["segment"].reindex(p.weights.index).to_numpy()
    plain = np.bincount(seg, minlength=5)[1:] / len(seg)
    weighted = np.bincount(seg, weights=p.weights.to_numpy(), minlength=5)[1:] / p.weights.sum()
    assert plain[3] > plain[0]  # the smallest segment of the market is the largest of the sample
    np.testing.assert_allclose(weighted, [0.34, 0.28, 0.22, 0.16], atol=0.035)  # 0.030 off at most here
    # the weights are the inverse inclusion probabilities (to the 4 decimals written)
    np.testing.assert_allclose(FILE_WEIGHTS.reindex(truth.index), 1 / truth["inclusion"], rtol=1e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({3: None, 10: None}, r"column 'weight' \(survey weight\) has 2 missing values at respondents \[R\d+, R\d+\]"),
        ({5: 0}, r"has 1 zero value at respondents \[R\d+\]"),
        ({7: -2}, r"column 'weight' \(weight\) has 1 negative values at respondents \[R\d+\]"),  # the reader's check
        ({8: "heavy"}, r"column 'weight' \(weight\) has 1 non-numeric values"),
    ],
)
def test_bad_weights_are_one_message_naming_file_column_and_rows(tmp_path, change, message):
    path = _with_weights(tmp_path, change)
    with pytest.raises(SurveyError, match=message) as err:
        prepare(path, CONFIG, families=["gmm"])
    assert str(path) in str(err.value)
    res = _cli("fit", path, "--k", 3, "--model", "kmeans", "--config", CONFIG)
    assert res.exit_code == 1 and "Traceback" not in res.output and "weight" in res.output
    res = _cli("validate", path, "--config", CONFIG)
    assert res.exit_code == 1 and "Traceback" not in res.output and "weight" in res.output


def test_no_weights_ignores_the_column_and_weights_option_names_another(tmp_path):
    p = prepare(WEIGHTED, _cfg(use_weights=False), families=["gmm"])
    assert p.weights is None and p.weights_for("gmm") is None and p.effective_n == p.n
    assert p.survey.weight is None  # the landscape and every figure unweighted too
    assert any("ignored" in n for n in p.notes)
    # a second column named by --weights / [survey] weight_column
    frame = pd.read_csv(WEIGHTED)
    frame["w_post"] = np.where(np.arange(len(frame)) % 2, 2.0, 1.0)
    path = tmp_path / "two_weights.csv"
    frame.to_csv(path, index=False)
    q = prepare(path, _cfg(weight_column="w_post"), families=["gmm"])
    assert q.weight_column == "w_post" and sorted(set(np.round(q.weights, 6))) == [pytest.approx(2 / 3), pytest.approx(4 / 3)]
    assert "weight" in q.profile.columns  # the detected column is now just a profile column
    with pytest.raises(SurveyError, match=r"the weight column 'nope' \(weight_column\) is not in the file"):
        prepare(path, _cfg(weight_column="nope"), families=["gmm"])


def test_no_weights_reads_a_survey_whose_weight_column_is_broken(tmp_path):
    """The error on a broken weight column offers --no-weights; that way out must work: the column
    is not read (a note says why) and is not a profile column either."""
    frame = pd.read_csv(WEIGHTED)
    frame["weight"] = frame["weight"].astype(object)
    frame.loc[3, "weight"] = "abc"
    frame.loc[5, "weight"] = -1.0
    path = tmp_path / "broken_weights.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SurveyError, match="non-numeric"):
        prepare(path, _cfg(), families=["gmm"])
    p = prepare(path, _cfg(use_weights=False), families=["gmm"])
    assert p.weights is None and p.n == len(frame)
    assert "weight" not in p.profile.columns
    assert any("ignored (--no-weights) and not read" in n for n in p.survey.notes)


def test_score_tables_keep_their_weight_column_out_of_the_model_input(tmp_path):
    rng = np.random.default_rng(5)
    table = pd.DataFrame(rng.normal(8, 2, size=(50, 3)), columns=["a", "b", "c"])
    table.insert(0, "respondent_id", [f"p{i}" for i in range(50)])
    table["Weight"] = rng.uniform(0.5, 3.0, size=50)
    path = tmp_path / "scores.csv"
    table.to_csv(path, index=False)
    p = prepare(path, None, kind="scores", families=["gmm", "lca"])
    assert list(p.numeric.columns) == ["a", "b", "c"] and p.weight_column == "Weight"
    np.testing.assert_allclose(p.weights_for("lca"), table["Weight"] / table["Weight"].mean())
    q = prepare(path, {"survey": {"use_weights": False}}, kind="scores", families=["gmm"])
    assert q.weights is None and list(q.numeric.columns) == ["a", "b", "c"]
    table.loc[4, "Weight"] = 0.0
    table.to_csv(path, index=False)
    with pytest.raises(SurveyError, match=r"scores\.csv: column 'Weight' \(survey weight\) has 1 zero value at respondents \[p4\]"):
        prepare(path, None, kind="scores", families=["gmm"])


def test_validate_reports_the_weights_the_fits_would_get():
    res = _cli("validate", WEIGHTED, "--config", CONFIG, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["weights"] == {"column": "weight", "effective_n": 309.4, "n": 400}


def test_weights_and_no_weights_together_are_refused():
    res = _cli("run", WEIGHTED, "--weights", "weight", "--no-weights")
    assert res.exit_code == 1 and "give one of them" in res.output


def test_weights_sentence():
    assert weights_sentence({"column": "weight", "effective_n": 512.3, "n": 600}) == (
        "Shares are weighted by `weight` (Kish effective n 512 of 600 respondents).")
    assert weights_sentence(None) == ""


# ------------------------------------------------------------------------------ plumbing
class Recorder:
    """Replaces the k-means, Gaussian mixture and latent class fit functions: notes what each
    call receives and fits unweighted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import latentseg.models.gmm as gmm
        import latentseg.models.kmeans as kmeans
        import latentseg.models.lca as lca

        self.calls: list[dict[str, Any]] = []
        for mod, name in ((kmeans, "fit_kmeans"), (gmm, "fit_gmm"), (lca, "fit_lca")):
            monkeypatch.setattr(mod, name, self._wrap(getattr(mod, name), name))

    def _wrap(self, original: Any, name: str) -> Any:
        def fit(data: Any, k: int, **options: Any) -> Any:
            has = "sample_weight" in options
            weights = options.pop("sample_weight", None)
            index = data.index if isinstance(data, pd.DataFrame) else None
            self.calls.append({"fit": name, "k": k, "index": index, "has": has,
                               "weights": None if weights is None else np.asarray(weights, dtype=float)})
            return original(data, k, **options)

        return fit


def _run(tmp_path: Path, name: str, **kwargs: Any) -> Any:
    from latentseg.pipeline import run_pipeline

    return run_pipeline(WEIGHTED, CONFIG, models=["kmeans", "gmm", "lca"], k=[3, 4], name=name,
                        models_dir=tmp_path / "models", report=False, overrides=QUICK, **kwargs)


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        rec = Recorder(mp)
        res = _run(tmp_path_factory.mktemp("weighted"), "weighted")
    finally:
        mp.undo()
    return res, rec.calls


def test_run_passes_each_fit_the_weights_of_its_own_rows(weighted_run):
    res, calls = weighted_run
    w = prepare(WEIGHTED, CONFIG, families=["gmm"]).weights
    fits = {c["fit"] for c in calls}
    assert fits == {"fit_kmeans", "fit_gmm", "fit_lca"}
    # the sweep, the k-means elbow's extra k, the stability refits on subsamples and the kept fit
    assert {c["k"] for c in calls if c["fit"] == "fit_kmeans"} >= {2, 3, 4, 5}
    subsamples = [c for c in calls if c["index"] is not None and len(c["index"]) < len(w)]
    assert subsamples, "no stability refit was recorded"
    for c in calls:
        assert c["weights"] is not None and c["index"] is not None, c["fit"]
        np.testing.assert_array_equal(c["weights"], w.reindex(c["index"]).to_numpy())
    full = [c for c in calls if len(c["index"]) == len(w)]
    assert all(c["weights"].mean() == pytest.approx(1.0, abs=1e-12) for c in full)


def test_run_json_and_saved_model_carry_the_weights_block(weighted_run):
    res, _ = weighted_run
    p = prepare(WEIGHTED, CONFIG, families=["gmm"])
    block = {"column": "weight", "effective_n": round(p.effective_n, 1), "n": 400}
    d = res.to_dict()
    assert d["weights"] == block and res.saved.meta["weights"] == block
    assert json.loads(json.dumps(d))["weights"]["effective_n"] == pytest.approx(309.4, abs=0.05)
    assert all(s["interval"] == res.result.interval_method and s["interval"] for s in d["segments"])
    assert res.result.provenance["weight_column"] == "weight"
    # the k-means against latent class comparison is weighted too
    assert "weighted" in res.saved.meta["comparison"]["notes"][-1]


def test_an_unweighted_run_calls_every_engine_exactly_as_before(tmp_path, monkeypatch):
    rec = Recorder(monkeypatch)
    res = _run(tmp_path, "plain", weights=False)
    assert rec.calls and not any(c["has"] for c in rec.calls)
    assert res.to_dict()["weights"] is None and res.saved.meta["weights"] is None
    assert "weight_column" not in res.result.provenance


def test_checkpoints_of_an_unweighted_sweep_are_not_reused_for_a_weighted_one(tmp_path, monkeypatch):
    from latentseg.choose.selection import select

    rng = np.random.default_rng(3)
    X = pd.DataFrame(np.r_[rng.normal(0, 1, (40, 2)), rng.normal(5, 1, (40, 2))], columns=["a", "b"])
    w = np.where(np.arange(80) < 40, 0.5, 1.5)
    rec = Recorder(monkeypatch)

    def sweep(weights: Any) -> Any:
        return select(X, models=["gmm"], k=[2, 3], random_seed=1, stability_subsamples=0, checkpoint_dir=tmp_path,
                      checkpoint_min_seconds=0, sample_weight=weights)

    sweep(None)
    assert len(rec.calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2
    sweep(None)
    assert len(rec.calls) == 2  # loaded
    sel = sweep(w)
    assert len(rec.calls) == 4 and all(c["weights"] is not None for c in rec.calls[2:])  # refitted, weighted
    assert "weights" in sel.settings["data_hash"]
    sweep(w)
    assert len(rec.calls) == 4  # the weighted checkpoints are reused by a weighted sweep
    sweep(w[::-1].copy())
    assert len(rec.calls) == 6  # other weights: refitted
    with pytest.raises(ConfigError, match=r"sample_weight must be positive and finite; rows \[0\]"):
        select(X, models=["gmm"], k=[2], sample_weight=np.r_[0.0, np.ones(79)])


def test_stability_subsamples_and_blrt_replicates_are_weighted(monkeypatch):
    from latentseg.choose.lrt import blrt
    from latentseg.choose.stability import stability

    rng = np.random.default_rng(4)
    X = pd.DataFrame(np.r_[rng.normal(0, 1, (40, 2)), rng.normal(6, 1, (40, 2))], columns=["a", "b"],
                     index=[f"r{i}" for i in range(80)])
    w = pd.Series(rng.uniform(0.5, 2.0, 80), index=X.index)
    rec = Recorder(monkeypatch)
    stability(X, "gmm", 2, subsamples=2, random_seed=1, sample_weight=w.to_numpy(), n_init=1)
    assert len(rec.calls) == 3
    for c in rec.calls:
        np.testing.assert_array_equal(c["weights"], w.reindex(c["index"]).to_numpy())
    rec.calls.clear()
    res = blrt(X, "gmm", 2, replicates=2, random_seed=1, n_jobs=1, fit_options={"n_init": 1}, sample_weight=w.to_numpy())
    assert res.weighted and res.to_dict()["weighted"] and "Weighted" in res.summary
    assert len(rec.calls) == 2 + 2 * 2  # the observed k-1 and k, then both per replicate
    for c in rec.calls:  # replicates carry the observed weights, in order
        np.testing.assert_array_equal(c["weights"], w.to_numpy())


def test_weighted_comparison_and_hopeless_rule():
    from latentseg.choose.comparison import compare
    from latentseg.choose.selection import hopeless_em_fit
    from latentseg.result import SegmentationResult

    za = np.eye(2)[[0, 0, 0, 1, 1, 1]]
    zb = np.eye(2)[[0, 0, 1, 1, 1, 1]]
    w = np.array([3.0, 3.0, 1.0, 1.0, 1.0, 1.0])
    ra = SegmentationResult.from_memberships("kmeans", za, centers=np.zeros((2, 1)), feature_names=("x",))
    rb = SegmentationResult.from_memberships("lca", zb, centers=np.zeros((2, 1)), feature_names=("x",))
    c = compare(ra, rb, sample_weight=w)
    row = c.shares.iloc[0]
    assert row["share_a"] == pytest.approx(7 / 10) and row["share_b"] == pytest.approx(6 / 10)
    # the linearised SE of the weighted mean difference: d = (0, 0, 1, 0, 0, 0), mean 0.1
    d = np.array([0, 0, 1, 0, 0, 0.0])
    se = np.sqrt(np.sum(w**2 * (d - 0.1) ** 2)) / w.sum()
    assert row["upper"] - row["difference"] == pytest.approx(1.959964 * se, rel=1e-5)
    assert "weighted" in c.shares.attrs["interval"]
    assert compare(ra, rb).shares.iloc[0]["share_a"] == pytest.approx(0.5)  # unweighted as before
    # a segment of 10% of respondents but 25% of the weight is not "too small" under the weights
    z = np.eye(2)[[0] * 90 + [1] * 10]
    assert hopeless_em_fit(z, min_share=0.2).startswith("a segment of 10.0%")
    assert hopeless_em_fit(z, min_share=0.2, sample_weight=np.r_[np.ones(90), np.full(10, 3.0)]) == ""


def test_deliverables_say_the_figures_are_weighted(weighted_run, tmp_path):
    from latentseg.deliver.report import write_report

    res, _ = weighted_run
    html = write_report(res.saved, tmp_path / "report.html").read_text(encoding="utf-8")
    sentence = "Shares, sizes, profiles and the landscape are weighted by &#39;weight&#39; (Kish effective n 309 of 400 respondents)."
    assert sentence in html
    import openpyxl

    about = openpyxl.load_workbook(tmp_path / "report.xlsx")["About"]
    values = {row[0]: row[1] for row in about.iter_rows(values_only=True)}
    assert values["Survey weights"] == "Shares are weighted by 'weight' (Kish effective n 309 of 400 respondents)."
    from pptx import Presentation

    texts = [sh.text_frame.text for s in Presentation(tmp_path / "report.pptx").slides for sh in s.shapes if sh.has_text_frame]
    assert any("weighted by 'weight' (Kish effective n 309 of 400" in t for t in texts)


# ------------------------------------------------------------------------------ end to end (weighted engines)
def _engines_weighted() -> bool:
    from latentseg.models.families import family

    return all("sample_weight" in inspect.signature(family(m).fit_function()).parameters for m in ("kmeans", "gmm", "lca"))


needs_engines = pytest.mark.skipif(not _engines_weighted(), reason="the weighted engines (sample_weight) are not merged yet")


@needs_engines
def test_fit_json_has_the_weights_block_and_weighted_shares(tmp_path):
    res = _cli("fit", WEIGHTED, "--k", 4, "--model", "gmm", "--config", CONFIG, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    p = prepare(WEIGHTED, CONFIG, families=["gmm"])
    assert out["weights"] == {"column": "weight", "effective_n": round(p.effective_n, 1)}
    assert all(s["interval"] for s in out["segments"])
    plain = json.loads(_cli("fit", WEIGHTED, "--k", 4, "--model", "gmm", "--config", CONFIG, "--json", "--no-weights").stdout)
    assert plain["weights"] is None


@needs_engines
def test_weighted_run_shares_are_weighted_mean_memberships_and_recover_the_population(tmp_path):
    from latentseg.pipeline import run_pipeline
    from sklearn.metrics import adjusted_rand_score

    res = run_pipeline(WEIGHTED, CONFIG, models=["gmm"], k=[4], name="e2e", models_dir=tmp_path, report=False,
                       overrides={"model": {"n_init": 3}, "select": {"stability_subsamples": 0}})
    r = res.result
    w = prepare(WEIGHTED, CONFIG, families=["gmm"]).weights.reindex(r.respondent_ids).to_numpy()
    # the mixing weights of the last M-step against the memberships of the last E-step: 7e-7 apart
    # unweighted on these data (seeds 1-3), so 1e-5
    np.testing.assert_allclose(r.shares, np.average(r.memberships, axis=0, weights=w), atol=1e-5)
    np.testing.assert_allclose(r.sample_weight, w, rtol=1e-12)
    assert res.to_dict()["weights"]["column"] == "weight" and r.to_dict()["weights"]["column"] == "weight"
    truth = pd.read_csv(EXAMPLES / "weighted_truth.csv").set_index("respondent_id")["segment"].reindex(r.respondent_ids)
    assert adjusted_rand_score(truth, r.assignment) > 0.9  # 0.993 unweighted, seeds 1-3
    # matched to the true segments, the weighted shares are near the population's 34/28/22/16%, and
    # nearer than the unweighted mean memberships (which follow the biased sample, 22/23/26/29%)
    from latentseg.choose.comparison import match_segments

    ct = pd.crosstab(truth.to_numpy(), r.assignment).to_numpy()
    order = match_segments(ct)
    weighted, plain = r.shares[order], r.memberships.mean(axis=0)[order]
    population = np.array([0.34, 0.28, 0.22, 0.16])
    # weighted mean memberships of the unweighted fit: 0.027 off at most; unweighted: 0.123 off
    assert np.abs(weighted - population).max() < 0.06
    assert np.abs(plain - population).max() > 0.09
