"""``latentseg validate`` and ``latentseg score``: read, validate, clean and score a survey.

``validate SURVEY`` prints what was read (respondents, outcomes, scales and whether they were
inferred, the reader's notes) and the cleaning report; it exits 1 on invalid input with one
message and no traceback. ``score SURVEY -o FILE`` writes the respondent-level opportunity scores
and, next to them, the per-outcome landscape as ``<stem>_landscape.<ext>`` (CSV or Parquet by
extension). Settings come from ``--config`` (or ``./latentseg.toml``); options override them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from latentseg.cli._common import command, echo_json, err_console, from_config, info, out_console
from latentseg.cli._common import NoWeightsOpt, WeightsOpt, weight_overrides
from rich.markup import escape

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from latentseg.prepare.cleaning import CleaningReport
    from latentseg.io.survey import Survey

_SUFFIXES = (".csv", ".parquet", ".xlsx")

SurveyArg = Annotated[
    Path, typer.Argument(help="Survey file: CSV (Qualtrics exports too), Parquet, Excel .xlsx or SPSS .sav.", show_default=False)
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="latentseg.toml with settings. Default: ./latentseg.toml if present.")
]
ImpScaleOpt = Annotated[str | None, typer.Option("--imp-scale", help=from_config("Importance scale, e.g. 1-5.", "survey", "imp_scale", empty="inferred from the data"))]
SatScaleOpt = Annotated[str | None, typer.Option("--sat-scale", help=from_config("Satisfaction scale, e.g. 1-10.", "survey", "sat_scale", empty="inferred from the data"))]
MissingOpt = Annotated[
    str | None, typer.Option("--missing-codes", help="Comma-separated rating values meaning 'no answer', e.g. 99,-9.")
]
OutcomesOpt = Annotated[
    Path | None, typer.Option("--outcomes", help="Outcome statements: a table with outcome, statement, job_step columns.")
]
SheetOpt = Annotated[str | None, typer.Option("--sheet", help="Excel sheet name or 0-based number (default: the first).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]


def _codes(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, e.g. 99,-9; got {text!r}.", param_hint="--missing-codes") from None


def _load(
    path: Path,
    config: Path | None,
    imp_scale: str | None,
    sat_scale: str | None,
    missing_codes: str | None,
    outcomes: Path | None,
    sheet: str | None,
    profile: bool = True,
    survey_overrides: dict[str, Any] | None = None,
) -> tuple[Survey, dict[str, Any], list[str]]:
    """Read and validate the survey; LatentsegWarnings are collected (printed by the caller).
    ``profile=False`` reads the profile columns' names only (validate: bounded memory on wide files)."""
    from latentseg.config import load_config
    from latentseg.errors import LatentsegWarning
    from latentseg.io import read_survey

    codes = _codes(missing_codes)
    cfg = load_config(config)
    cfg["survey"].update(survey_overrides or {})
    sheet_arg: str | int | None = int(sheet) if sheet is not None and sheet.isdigit() else sheet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatentsegWarning)
        survey = read_survey(
            path, config=cfg, imp_scale=imp_scale, sat_scale=sat_scale, missing_codes=codes,
            outcomes_file=outcomes, sheet=sheet_arg, profile=profile,
        )
    return survey, cfg, [str(w.message) for w in caught if issubclass(w.category, LatentsegWarning)]


def _clean(survey: Survey, cfg: dict[str, Any]) -> tuple[Survey, CleaningReport, list[str]]:
    from latentseg.prepare.cleaning import clean
    from latentseg.errors import LatentsegWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatentsegWarning)
        kept, report = clean(survey, **cfg["cleaning"])
    return kept, report, [str(w.message) for w in caught if issubclass(w.category, LatentsegWarning)]


def _warn(messages: list[str]) -> None:
    console = err_console()
    for m in messages:
        console.print(f"[yellow]warning:[/] {escape(m)}", highlight=False)


def _scale_dict(scale: Any) -> dict[str, Any]:
    return {"scale": str(scale), "low": scale.low, "high": scale.high, "inferred": scale.inferred}


def _summary(survey: Survey) -> dict[str, Any]:
    steps = [s for s in survey.outcomes["job_step"].astype(str).unique() if s]
    return {
        "source": survey.source,
        "n_respondents": survey.n_respondents,
        "n_outcomes": survey.n_outcomes,
        "outcomes": [
            {"id": o, "statement": str(st), "job_step": str(js)}
            for o, st, js in zip(survey.outcomes.index, survey.outcomes["statement"], survey.outcomes["job_step"], strict=True)
        ],
        "job_steps": steps,
        "imp_scale": _scale_dict(survey.imp_scale),
        "sat_scale": _scale_dict(survey.sat_scale),
        "profile_columns": survey.profile_columns,
        "duration": survey.duration is not None,
        "weight": survey.weight is not None,
        "missing_ratings": int(survey.importance.isna().to_numpy().sum() + survey.satisfaction.isna().to_numpy().sum()),
        "notes": list(survey.notes),
    }


def _weights(kept: Survey, cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The weights the fits would get (``{"column", "effective_n", "n"}``, as ``run --json``), checked
    as :func:`latentseg.prepare.core.prepare` checks them; None without a weight column (or with
    ``[survey] use_weights = false``)."""
    if kept.weight is None or not cfg["survey"]["use_weights"]:
        return None
    from latentseg._stats import effective_n
    from latentseg.io.validate import survey_weights

    column = (kept.columns or {}).get("weight") or cfg["survey"]["weight_column"] or "weight"
    w = survey_weights(kept.weight, column, kept.source)
    return {"column": column, "effective_n": round(effective_n(w.to_numpy()), 1), "n": int(len(w))}


def _print_summary(summary: dict[str, Any], report: CleaningReport, warned: list[str]) -> None:
    from rich.table import Table

    console = out_console()
    s = summary
    console.print(f"[bold]Survey[/] {escape(s['source'])}", highlight=False)
    console.print(
        f"  {s['n_respondents']} respondents, {s['n_outcomes']} outcomes"
        + (f" in {len(s['job_steps'])} job steps" if s["job_steps"] else "")
        + f", {s['missing_ratings']} missing ratings",
        highlight=False,
    )
    for name in ("imp_scale", "sat_scale"):
        sc = s[name]
        label = "importance" if name == "imp_scale" else "satisfaction"
        how = "[yellow]inferred from the data[/]" if sc["inferred"] else "declared"
        console.print(f"  {label} scale {sc['scale']} ({how})", highlight=False)
    extras = [x for x, present in (("duration", s["duration"]), ("weight", s["weight"])) if present]
    profile = ", ".join(s["profile_columns"]) or "none"
    console.print(f"  profile columns: {escape(profile)}" + (f"; {', '.join(extras)} column found" if extras else ""), highlight=False)
    if s.get("weights"):
        from latentseg.prepare.core import weights_sentence

        console.print(escape("  " + weights_sentence(s["weights"], "Fits and shares", quote="'")), highlight=False)
    notes = [n for n in s["notes"] if not any(n in w for w in warned)]  # warnings were printed already
    if notes:
        console.print("[bold]Notes[/]")
        for note in notes:
            console.print(f"  - {escape(note)}", highlight=False)
    console.print(f"[bold]{escape(report.summary().splitlines()[0])}[/]", highlight=False)
    for line in report.summary().splitlines()[1:]:
        console.print(escape(line), highlight=False)
    if len(report.excluded):
        table = Table("respondent", "reasons", title=None, show_edge=False)
        for rid, reasons in report.excluded[["respondent_id", "reasons"]].head(25).itertuples(index=False):
            table.add_row(escape(str(rid)), escape(str(reasons)))
        console.print(table)
        if len(report.excluded) > 25:
            console.print(f"  ... and {len(report.excluded) - 25} more (--json lists all)")


def validate(
    survey: SurveyArg,
    config: ConfigOpt = None,
    imp_scale: ImpScaleOpt = None,
    sat_scale: SatScaleOpt = None,
    missing_codes: MissingOpt = None,
    outcomes: OutcomesOpt = None,
    sheet: SheetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Read and validate a survey: what was found, scales (declared or inferred), notes, cleaning report.

    Exits 1 with one message when the file is invalid (survey weights included: every respondent
    kept by the cleaning needs a positive weight).
    """
    data, cfg, warned = _load(survey, config, imp_scale, sat_scale, missing_codes, outcomes, sheet, profile=False)
    kept, report, more = _clean(data, cfg)
    warned += more
    summary = _summary(data)
    summary["weights"] = _weights(kept, cfg)
    _warn(warned)
    if json_:
        echo_json({**summary, "warnings": warned, "cleaning": report.to_dict()})
        return
    _print_summary(summary, report, warned)

def score(
    survey: SurveyArg,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Respondent-level scores (.csv, .parquet or .xlsx); the landscape goes next to it.", show_default=False),
    ],
    no_clean: Annotated[bool, typer.Option("--no-clean", help="Score every respondent (skip cleaning).")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Also compute the landscape per value of this profile column.")] = None,
    config: ConfigOpt = None,
    imp_scale: ImpScaleOpt = None,
    sat_scale: SatScaleOpt = None,
    missing_codes: MissingOpt = None,
    outcomes: OutcomesOpt = None,
    sheet: SheetOpt = None,
    json_: JsonOpt = False,
    weights: WeightsOpt = None,
    no_weights: NoWeightsOpt = False,
) -> None:
    """Write opportunity scores per respondent and outcome, and the per-outcome landscape.

    Scores: importance + max(importance - satisfaction, 0), both rescaled to 0-10. Landscape
    (Ulwick): top-2-box shares x 10, opportunity and class per outcome, in
    <stem>_landscape.<ext>; its shares are weighted by the survey's weight column when it has one
    (--no-weights: unweighted).
    """
    from latentseg.errors import ConfigError
    from latentseg.prepare.scoring import opportunity_landscape, opportunity_scores

    if output.suffix.lower() not in _SUFFIXES:
        raise ConfigError(f"The --output file {str(output)!r} must end in .csv, .parquet or .xlsx; got {output.suffix or 'no suffix'!r}.")
    from latentseg.cli._common import config_inputs
    from latentseg.io.files import check_outputs

    landscape_path = output.with_name(f"{output.stem}_landscape{output.suffix}")
    check_outputs({"--output": output, "the landscape table (named after --output)": landscape_path},
                  {"SURVEY": survey, **config_inputs(config), "--outcomes": outcomes},
                  command="score")
    over = weight_overrides(weights, no_weights).get("survey", {})
    data, cfg, warned = _load(survey, config, imp_scale, sat_scale, missing_codes, outcomes, sheet, survey_overrides=over)
    report = None
    if not no_clean:
        data, report, more = _clean(data, cfg)
        warned += more
    _warn(warned)
    if report is not None:
        info(escape(report.summary().splitlines()[0]))
    scores = opportunity_scores(data)
    landscape = opportunity_landscape(data, by=by, weighted=bool(cfg["survey"]["use_weights"]))
    from latentseg.io import write_table

    write_table(scores.reset_index(), output)
    write_table(landscape, landscape_path)
    info(
        f"wrote {escape(str(output))} ({scores.shape[0]} respondents x {scores.shape[1]} outcomes) "
        f"and {escape(str(landscape_path))}"
    )
    if json_:
        echo_json(
            {
                "source": data.source,
                "n_respondents": data.n_respondents,
                "n_outcomes": data.n_outcomes,
                "cleaned": report is not None,
                "n_excluded": 0 if report is None else report.n_excluded,
                "scores_file": str(output),
                "landscape_file": str(landscape_path),
                "warnings": warned,
                "landscape": landscape.to_dict(orient="records"),
            }
        )
        return
    _print_landscape(landscape, by)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    command(app, "validate")(validate)
    command(app, "score")(score)


def _print_landscape(landscape: pd.DataFrame, by: str | None) -> None:
    from rich.table import Table

    table = Table(title="Opportunity landscape (top-2-box, 0-10)" + (f" by {escape(by)}" if by else ""), show_edge=False)
    if by:
        table.add_column(escape(by))
    table.add_column("outcome")
    table.add_column("statement", max_width=60, overflow="ellipsis", no_wrap=True)
    for name in ("importance", "satisfaction", "opportunity"):
        table.add_column(name, justify="right")
    table.add_column("class")
    ordered = landscape.sort_values(["group", "opportunity"] if by else ["opportunity"], ascending=[True, False] if by else [False])
    for _, r in ordered.iterrows():
        cells = [escape(str(r["group"]))] if by else []
        cells += [
            escape(str(r["outcome"])), escape(str(r["statement"])), f"{r['importance']:.1f}",
            f"{r['satisfaction']:.1f}", f"{r['opportunity']:.1f}", escape(str(r["class"])),
        ]
        table.add_row(*cells)
    out_console().print(table)
