"""``latentseg simulate``: write a survey with known segments (and optionally its truth)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from latentseg.cli._common import command, info

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_SUFFIXES = (".csv", ".parquet")


def _check_suffix(path: Path, option: str) -> None:
    from latentseg.errors import ConfigError

    if path.suffix.lower() not in _SUFFIXES:
        raise ConfigError(f"The {option} file {str(path)!r} must end in .csv or .parquet; got {path.suffix or 'no suffix'!r}.")


def _check_scale(text: str, option: str) -> tuple[int, int]:
    from latentseg.errors import ConfigError
    from latentseg.io.survey import Scale

    try:
        scale = Scale.parse(text)
    except ConfigError:
        scale = None
    if scale is None or not (float(scale.low).is_integer() and float(scale.high).is_integer()):
        raise ConfigError(f"{option} must be an integer rating scale such as '1-5' or '1-10'; got {text!r}.")
    return int(scale.low), int(scale.high)


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by extension; whole-number float columns are written as integers."""
    import numpy as np

    whole = {}
    for c in frame.columns:
        col = frame[c]
        if col.dtype.kind == "f":
            vals = col.to_numpy()
            finite = vals[np.isfinite(vals)]
            if np.array_equal(finite, np.round(finite)):
                whole[c] = col.round().astype("Int64")
    from latentseg.io import write_table

    write_table(frame.assign(**whole), path)


def simulate(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Survey file to write (.csv or .parquet).", show_default=False)
    ],
    n: Annotated[int, typer.Option("--n", help="Respondents, bad ones included.", min=1)] = 400,
    outcomes: Annotated[int, typer.Option("--outcomes", help="Outcomes.", min=2)] = 24,
    segments: Annotated[int, typer.Option("--segments", help="Segments.", min=1)] = 4,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed; without it one is drawn and printed.", min=0)
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Also write the true segment of every respondent (.csv or .parquet)."),
    ] = None,
    imp_scale: Annotated[str, typer.Option("--imp-scale", help="Importance scale, e.g. 1-5.")] = "1-5",
    sat_scale: Annotated[str, typer.Option("--sat-scale", help="Satisfaction scale, e.g. 1-10.")] = "1-10",
    job_steps: Annotated[int, typer.Option("--job-steps", help="Job steps the outcomes fall into.", min=1)] = 6,
    separation: Annotated[
        float, typer.Option("--separation", help="How distinct the segments are (0 = no segments).", min=0.0)
    ] = 1.0,
    straightliners: Annotated[int, typer.Option("--straightliners", help="Planted straight-liners.", min=0)] = 0,
    speeders: Annotated[int, typer.Option("--speeders", help="Planted speeders.", min=0)] = 0,
    too_many_missing: Annotated[
        int, typer.Option("--too-many-missing", help="Planted respondents with >20% unrated.", min=0)
    ] = 0,
    missing_rate: Annotated[
        float, typer.Option("--missing-rate", help="Random missing ratings among good respondents.", min=0.0, max=0.99)
    ] = 0.0,
) -> None:
    """Simulate an outcome survey with known segments (importance / satisfaction per outcome,
    job steps, demographics, optional bad respondents) and write it in the reader's layout."""
    _check_suffix(output, "--output")
    if truth is not None:
        _check_suffix(truth, "--truth")
    imp = _check_scale(imp_scale, "--imp-scale")
    sat = _check_scale(sat_scale, "--sat-scale")
    from latentseg.io.files import check_outputs

    check_outputs({"--output": output, "--truth": truth}, {}, command="simulate")
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**31)
    from latentseg.research.simulate import simulate_survey

    survey, true = simulate_survey(
        n,
        n_outcomes=outcomes,
        n_segments=segments,
        job_steps=job_steps,
        imp_scale=imp,
        sat_scale=sat,
        separation=separation,
        straightliners=straightliners,
        speeders=speeders,
        too_many_missing=too_many_missing,
        missing_rate=missing_rate,
        random_seed=seed,
    )
    _write_table(survey.to_frame(), output)
    if truth is not None:
        _write_table(true.to_frame(), truth)
    shares = " / ".join(f"{s:.0%}" for s in true.shares)
    info(
        f"Simulated {survey.n_respondents} respondents x {survey.n_outcomes} outcomes, "
        f"{true.k} segments ({shares}), importance {survey.imp_scale}, satisfaction {survey.sat_scale}, "
        f"seed {seed} -> {output}" + (f" (truth -> {truth})" if truth is not None else "")
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    command(app, "simulate")(simulate)
