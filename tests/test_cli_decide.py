"""``latentseg profile`` and ``latentseg size`` through Typer's CliRunner on a saved model."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

pytest.importorskip("latentseg.deliver.artifacts")
pytestmark = pytest.mark.xdist_group("cli_decide")


def _run(*args):
    from typer.testing import CliRunner

    from latentseg.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from latentseg.deliver.artifacts import save_model
    from latentseg.config import merge_config
    from latentseg.models import fit
    from latentseg.prepare.scoring import opportunity_scores
    from latentseg.research.simulate import simulate_survey

    folder = tmp_path_factory.mktemp("decide")
    survey, truth = simulate_survey(400, n_outcomes=12, n_segments=3, demographic_strength=0.7, random_seed=21)
    path = folder / "survey.csv"
    survey.to_frame().to_csv(path, index=False)
    outcomes = folder / "outcomes.csv"
    survey.outcomes.reset_index().rename(columns={survey.outcomes.index.name or "index": "outcome"}).to_csv(
        outcomes, index=False
    )
    cfg = merge_config(
        {
            "survey": {"imp_scale": "1-5", "sat_scale": "1-10", "outcomes_file": str(outcomes)},
            "profile": {"distal": ["plan_price"], "names": {"2": "Planning Hawks"}},
        }
    )
    result = fit(opportunity_scores(survey), "gmm", 3, n_init=3, random_seed=1)
    model = folder / "models" / "m1"
    from latentseg.prepare.provenance import file_sha256

    save_model(model, result, config=cfg,
               meta={"data": {"path": str(path), "data_kind": "survey", "file_sha256": file_sha256(path)}})
    bare = folder / "models" / "bare"
    save_model(bare, result, config=merge_config({}))
    return model, bare, result, survey, truth, path


def test_profile_json_has_profiles_overlays_finder_distal_and_map(saved):
    model, _, result, _, _, _ = saved
    res = _run("profile", model, "--json", "--overlay", "role,region")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["k"] == 3 and d["n"] == result.n
    segs = d["profiles"]["segments"]
    assert segs[1]["name"] == "Planning Hawks" and segs[0]["name_source"] == "draft"
    assert not segs[0]["handle"].lower().startswith("segment")
    cols = d["overlays"]["columns"]
    assert cols["role"]["strength"] == "strong" and cols["region"]["strength"] == "none"
    assert d["finder"]["beats_baseline"] is True
    assert {e["column"] for e in d["distal"]["estimates"]} == {"plan_price"}
    assert [s["id"] for s in d["segment_map"]["segments"]] == [1, 2, 3]
    assert d["segment_map"]["segments"][0]["current_solution"]  # current_tool found by name
    # [size] tam is 0: sizes are shares only (as `run` sizes every model), no market counts
    assert d["sizing"]["tam"] is None and len(d["sizing"]["segments"]) == 3
    assert all("count" not in s or s["count"] is None for s in d["sizing"]["segments"])


def test_profile_writes_files_and_prints_tables(saved, tmp_path):
    model = saved[0]
    out = tmp_path / "out"
    res = _run("profile", model, "-o", out, "--overlay", "role,current_tool", "--weighting", "bch")
    assert res.exit_code == 0, res.output
    assert "Segments" in res.stdout and "Rule: Each segment is scored size x unmet need x fit" in res.stdout
    assert "Overlays (bch weighting)" in res.stdout and "finder (logistic)" in res.stdout
    for name in ("profiles.csv", "segment_map.csv", "segment_map.json", "segment_map.md", "overlays.json",
                 "finder.json", "distal.csv"):
        assert (out / name).is_file(), name
    rows = list(csv.reader(io.StringIO((out / "segment_map.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 4
    from latentseg.decide.finder import Finder

    f = Finder.from_dict(json.loads((out / "finder.json").read_text(encoding="utf-8")))
    assert f.columns == ("role", "current_tool")


def test_size_counts_and_revenue_match_direct_computation(saved):
    model, _, result, _, _, _ = saved
    res = _run("size", model, "--tam", 50000, "--arpu", 120, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    counts = [s["count"] for s in d["segments"]]
    np.testing.assert_allclose(counts, result.shares * 50000)
    np.testing.assert_allclose([s["count_lower"] for s in d["segments"]], result.share_lower * 50000)
    np.testing.assert_allclose([s["revenue"] for s in d["segments"]], result.shares * 50000 * 120)
    assert all(s["growth_opportunity"] is not None for s in d["segments"])  # survey read: underserved known
    res2 = _run("size", model, "--tam", 50000, "--tam-low", 40000, "--tam-high", 60000, "--arpu-column", "plan_price",
                "--product-fit", "1=0.9,2=0.1,3=0.5")
    assert res2.exit_code == 0, res2.output
    assert "interval product" in res2.stdout and "retention priority" in res2.stdout


def test_size_without_survey_still_sizes(saved):
    _, bare, result, _, _, _ = saved
    res = _run("size", bare, "--tam", 1000, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    np.testing.assert_allclose([s["count"] for s in d["segments"]], result.shares * 1000)
    assert any("growth flags need it" in n for n in d["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["size", "{model}"], "size needs the market size: pass --tam N"),
        (["size", "{model}", "--tam", "10", "--arpu", "1", "--arpu-column", "plan_price"], "Give either --arpu or --arpu-column"),
        (["size", "{model}", "--tam", "10", "--tam-low", "5"], "Give both --tam-low and --tam-high"),
        (["size", "{model}", "--tam", "10", "--product-fit", "1:0.5"], "--product-fit takes SEGMENT=VALUE pairs"),
        (["profile", "{model}", "--overlay", "age"], "Columns ['age'] are not in the survey's profile columns"),
        (["profile", "{bare}"], "does not say which survey it was fitted on; pass the survey with --survey"),
        (["profile", "{model}", "--survey", "nope.csv"], "Survey file 'nope.csv' does not exist"),
        (["profile", "no/such/model"], "No saved model at 'no/such/model'"),
    ],
)
def test_messages(saved, args, message):
    model, bare, *_ = saved
    res = _run(*[a.format(model=model, bare=bare) for a in args])
    assert res.exit_code == 1, res.output
    assert message in " ".join(res.stderr.split())
