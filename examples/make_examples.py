"""Regenerate the example data in this folder from latentseg's simulator.

Run ``python examples/make_examples.py`` (or ``python examples/make_examples.py OUT_DIR``); the
output is deterministic, so regenerating leaves ``git status`` clean (tests/test_examples.py
checks this byte for byte).

Files written
-------------
project_survey.csv
    400 respondents of a project-management SaaS survey for the job "manage cross-functional
    projects to deliver on time and on budget": 24 outcomes in 6 job steps, importance on 1-5 and
    satisfaction on 1-10 (``imp_o01`` ... ``sat_o24``), 4 segments (34/28/22/16%), profile columns
    ``role, company_size, industry, current_tool, region, plan_price`` and ``duration`` (seconds).
    Planted: 6 straight-liners, 5 speeders, 4 respondents with more than 20% of outcomes unrated,
    and a few random missing ratings among the others.
project_outcomes.csv
    ``outcome, statement, job_step`` for the 24 outcomes.
latentseg.toml
    Settings for that survey: the outcomes file, the two declared scales, cleaning, model,
    selection, profiling and sizing settings.
truth.csv
    The true segment of every respondent of project_survey.csv and, for the planted bad ones, the
    rule that should remove them (``straightliner``, ``speeder``, ``too_many_missing``). For
    methodologists checking a segmentation against the truth; latentseg itself never reads it.
qualtrics_export.csv
    A smaller survey (60 respondents, 8 outcomes, 3 segments) as Qualtrics exports it with
    "Export values": UTF-8 with a byte-order mark, CRLF line ends, three header rows (column names
    ``imp_1..imp_8`` / ``sat_1..sat_8``; question text of the two matrix questions, "<question> -
    <outcome statement>"; ``{"ImportId":"QID1_1"}``), Qualtrics' metadata columns, one speeder and
    a few unanswered ratings.
weighted_survey.csv
    An unequal-probability sample of the same kind of survey (same 24 outcomes, scales and
    profile columns, so ``latentseg.toml`` applies) with a ``weight`` column: a population of
    2,000 customers in 4 segments (34/28/22/16%) from which each one was invited with a
    probability that rises 3-fold from segment 1 to segment 4 and doubles in North America
    (a panel that over-recruits there), so the sample over-represents the small segments.
    ``weight`` is the inverse inclusion probability: weighted shares estimate the population's,
    unweighted ones are biased.
weighted_truth.csv
    For each respondent of weighted_survey.csv its true segment and inclusion probability. The
    population's shares are exactly 34/28/22/16%; the sample's unweighted shares of the true
    segments are 22/23/26/29% (the order reversed), weighted by ``weight`` 37/27/20/16%.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from latentseg.research.simulate import simulate_survey

HERE = Path(__file__).resolve().parent

PROJECT_SEED = 20261122
QUALTRICS_SEED = 20261123
WEIGHTED_SEED = 20261124
#: weighted_survey.csv: population size, expected sample size, selection size of segment 4
#: relative to segment 1, of North America relative to the other regions
WEIGHTED_POPULATION, WEIGHTED_N, WEIGHTED_OVERSAMPLE, WEIGHTED_REGION = 2000, 400, 3.0, 2.0

CONFIG = """\
# latentseg settings for examples/project_survey.csv (relative paths are relative to this file).
# Use it with:  latentseg validate examples/project_survey.csv --config examples/latentseg.toml

[survey]
outcomes_file = "project_outcomes.csv"   # outcome, statement, job_step
imp_scale = "1-5"                        # importance was asked on 1-5 ...
sat_scale = "1-10"                       # ... and satisfaction on 1-10: both are rescaled to 0-10

[cleaning]
straightliners = true      # same rating for every outcome in a block
speeder_fraction = 0.3333  # faster than a third of the median duration
max_unrated = 0.2          # more than 20% of outcomes unrated
min_respondents = 100

[model]
model = "gmm"
random_seed = 20261122

[select]
models = ["kmeans", "gmm", "lca"]
k_min = 3
k_max = 7

[profile]
overlay = ["role", "company_size", "industry", "current_tool", "region"]
distal = ["plan_price"]

[size]
tam = 50000
arpu_column = "plan_price"
"""


def _write_csv(frame: pd.DataFrame, path: Path, *, bom: bool = False, crlf: bool = False) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\r\n" if crlf else "\n")
    path.write_bytes(("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8"))


def _as_int_columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Whole-number columns written without a trailing '.0' (missing stays empty)."""
    return frame.assign(**{c: frame[c].round().astype("Int64") for c in columns})


def project_files(out: Path) -> None:
    """project_survey.csv, project_outcomes.csv, truth.csv and latentseg.toml."""
    survey, truth = simulate_survey(
        400,
        n_outcomes=24,
        n_segments=4,
        job_steps=6,
        imp_scale=(1, 5),
        sat_scale=(1, 10),
        straightliners=6,
        speeders=5,
        too_many_missing=4,
        missing_rate=0.02,
        random_seed=PROJECT_SEED,
    )
    frame = survey.to_frame()
    whole = [c for c in frame.columns if c.startswith(("imp_", "sat_"))] + ["plan_price", "duration"]
    _write_csv(_as_int_columns(frame, whole), out / "project_survey.csv")
    outcomes = survey.outcomes.reset_index().rename(columns={"index": "outcome"})
    _write_csv(outcomes[["outcome", "statement", "job_step"]], out / "project_outcomes.csv")
    _write_csv(truth.to_frame(), out / "truth.csv")
    (out / "latentseg.toml").write_text(CONFIG, encoding="utf-8")


def _response_id(rng: np.random.Generator) -> str:
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    return "R_" + "".join(rng.choice(alphabet, size=15))


def qualtrics_file(out: Path) -> None:
    """qualtrics_export.csv: three header rows, metadata columns, numeric values."""
    survey, _ = simulate_survey(
        60,
        n_outcomes=8,
        n_segments=3,
        job_steps=4,
        speeders=1,
        missing_rate=0.03,
        random_seed=QUALTRICS_SEED,
    )
    rng = np.random.default_rng(QUALTRICS_SEED).spawn(1)[0]
    n, m = survey.n_respondents, survey.n_outcomes
    start = pd.Timestamp("2026-03-02 08:00:00") + pd.to_timedelta(
        np.sort(rng.integers(0, 14 * 24 * 3600, size=n)), unit="s"
    )
    duration = survey.duration.to_numpy().astype(int)
    end = start + pd.to_timedelta(duration, unit="s")
    fmt = "%Y-%m-%d %H:%M:%S"

    names: list[str] = []
    texts: list[str] = []
    imports: list[str] = []
    columns: dict[str, object] = {}

    def add(name: str, text: str, import_id: dict[str, str], values: object) -> None:
        names.append(name)
        texts.append(text)
        imports.append(json.dumps(import_id, separators=(",", ":")))
        columns[name] = values

    tz = "America/Denver"
    add("StartDate", "Start Date", {"ImportId": "startDate", "timeZone": tz}, start.strftime(fmt))
    add("EndDate", "End Date", {"ImportId": "endDate", "timeZone": tz}, end.strftime(fmt))
    add("Status", "Response Type", {"ImportId": "status"}, np.zeros(n, dtype=int))
    add("Progress", "Progress", {"ImportId": "progress"}, np.full(n, 100))
    add("Duration (in seconds)", "Duration (in seconds)", {"ImportId": "duration"}, duration)
    add("Finished", "Finished", {"ImportId": "finished"}, np.ones(n, dtype=int))
    add("RecordedDate", "Recorded Date", {"ImportId": "recordedDate", "timeZone": tz}, end.strftime(fmt))
    add("ResponseId", "Response ID", {"ImportId": "_recordId"}, [_response_id(rng) for _ in range(n)])
    statements = survey.statements()
    for j, o in enumerate(survey.outcome_ids, start=1):
        add(
            f"imp_{j}",
            f"When you manage a cross-functional project, how important is it to you to... - {statements[o]}",
            {"ImportId": f"QID1_{j}"},
            survey.importance[o].astype("Int64").reset_index(drop=True),
        )
    for j, o in enumerate(survey.outcome_ids, start=1):
        add(
            f"sat_{j}",
            f"How satisfied are you with how well you can do the following today? - {statements[o]}",
            {"ImportId": f"QID2_{j}"},
            survey.satisfaction[o].astype("Int64").reset_index(drop=True),
        )
    add("role", "Which best describes your role?", {"ImportId": "QID3"}, survey.profile["role"].to_numpy())
    add(
        "company_size",
        "How many people work at your company?",
        {"ImportId": "QID4"},
        survey.profile["company_size"].to_numpy(),
    )
    data = pd.DataFrame(columns)
    header = pd.DataFrame([texts, imports], columns=names)
    body = pd.concat([header, data.astype("str").replace({"<NA>": ""})], ignore_index=True)
    assert len(names) == 8 + 2 * m + 2
    _write_csv(body, out / "qualtrics_export.csv", bom=True, crlf=True)


def weighted_files(out: Path) -> None:
    """weighted_survey.csv and weighted_truth.csv: a Poisson sample with known inclusion probabilities."""
    population, truth = simulate_survey(
        WEIGHTED_POPULATION,
        n_outcomes=24,
        n_segments=4,
        job_steps=6,
        imp_scale=(1, 5),
        sat_scale=(1, 10),
        missing_rate=0.02,
        random_seed=WEIGHTED_SEED,
    )
    segment = truth.segment.reindex(population.respondent_ids).to_numpy(dtype=int)
    north_america = (population.profile["region"] == "North America").to_numpy()
    size = WEIGHTED_OVERSAMPLE ** ((segment - 1) / 3) * np.where(north_america, WEIGHTED_REGION, 1.0)
    inclusion = np.minimum(1.0, WEIGHTED_N * size / size.sum())
    rng = np.random.default_rng(WEIGHTED_SEED).spawn(1)[0]
    chosen = rng.random(len(inclusion)) < inclusion
    frame = population.to_frame().loc[chosen].copy()
    frame["weight"] = np.round(1.0 / inclusion[chosen], 4)
    whole = [c for c in frame.columns if c.startswith(("imp_", "sat_"))] + ["plan_price", "duration"]
    _write_csv(_as_int_columns(frame, whole), out / "weighted_survey.csv")
    rows = pd.DataFrame({"respondent_id": frame["respondent_id"].to_numpy(), "segment": segment[chosen],
                         "inclusion": np.round(inclusion[chosen], 6)})
    _write_csv(rows, out / "weighted_truth.csv")


def main(out_dir: str | Path = HERE) -> Path:
    """Write every example file into ``out_dir`` (default: this folder)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    project_files(out)
    qualtrics_file(out)
    weighted_files(out)
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
