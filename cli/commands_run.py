"""``latentseg run``, ``demo``, ``assign``, ``report`` and ``info`` (alias ``load``).

- ``run SURVEY``: the whole playbook (:func:`latentseg.pipeline.run_pipeline`): validate, clean,
  score, optionally reduce, select over families and k (checkpointed, so an interrupted run
  resumes), keep the chosen model, profile, overlay, size, segment map, save the model to
  ``models/<name>/`` and write the report.
- ``demo``: ``run`` on the bundled example survey with its ``latentseg.toml``.
- ``assign MODEL NEW_DATA -o OUT``: membership probabilities and modal segment for new
  respondents (ratings, model features or observables), streamed in chunks.
- ``report MODEL -o report.html``: the self-contained HTML report of a saved model.
- ``info MODEL``: what a saved model is (id, versions, segments, saved sections); checks that it
  loads (same version, id matching its contents).

Exit codes: 0 ok, 1 invalid input or failed fit (one message, no traceback), 2 bad usage,
130 interrupted (finished fits are kept). Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from latentseg.cli._common import command, echo_json, err_console, info, model_inputs, out_console, state
from latentseg.cli._common import ModelName, Reduction, from_config  # option choices and config-key help
from latentseg.cli._common import NoWeightsOpt, WeightsOpt, weight_overrides
from latentseg.models.families import DEMO

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="latentseg.toml with settings. Default: ./latentseg.toml if present.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines; only errors and results.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a model already saved under that name.")]
AllKOpt = Annotated[bool, typer.Option("--all-k", help="Fit every family at every k, each to the end: no hopeless Bayesian fit skipped, no fit stopped for time [config: select.all_k].")]

#: The example the demo runs on, relative to the source tree.
EXAMPLE_SURVEY = Path("examples") / "project_survey.csv"
EXAMPLE_CONFIG = Path("examples") / "latentseg.toml"


def _usage(message: str) -> None:
    from latentseg.errors import ConfigError

    raise ConfigError(message)


@contextlib.contextmanager
def _run_progress() -> Iterator[Any]:
    """A rich progress display for the pipeline's steps, naming the fit that is running (nothing
    under --quiet; plain periodic log lines when stderr is not a terminal)."""
    if state.quiet:
        yield None
        return
    from latentseg.cli.commands_select import PlainProgress

    console = err_console()
    if not console.is_terminal:
        with PlainProgress(console) as plain:
            yield plain.update
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from latentseg.pipeline import STEPS

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=len(STEPS), detail="")
        order = {s: i for i, s in enumerate(STEPS)}

        def update(step: str, done: int | None, total: int | None, detail: str) -> None:
            if done is None:
                bar.update(task, description=step, completed=order.get(step, 0), total=len(STEPS), detail="")
            else:
                bar.update(task, description=step, completed=done, total=total, detail=escape(detail))

        yield update


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        _usage("--models needs at least one family, e.g. kmeans,gmm,lca.")
    return items


def _print_run(res: Any) -> None:
    from rich.table import Table

    console = out_console()
    result = res.result
    from latentseg._display import estimate
    from latentseg.cli._common import fit_table

    smap = {int(s["id"]): s for s in (res.saved.meta.get("segment_map") or {}).get("segments", [])}
    table = Table(title=f"{res.k} segments ({res.model}), {result.n} respondents", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Segment")
    table.add_column("Size", justify="right")
    table.add_column("Interval", justify="right")
    table.add_column("Market", justify="right")
    table.add_column("Recommendation")
    for j in range(result.k):
        s = smap.get(j + 1, {})
        count = s.get("count")
        table.add_row(
            str(j + 1),
            escape(result.segment_labels[j]),
            f"{result.shares[j]:.0%}",
            f"{result.share_lower[j]:.0%}-{result.share_upper[j]:.0%}",
            "" if count is None else estimate(count, s.get("count_lower"), s.get("count_upper")),
            escape(str(s.get("recommendation", ""))),
        )
    console.print(fit_table(table, console.width))
    if res.saved.meta.get("weights"):
        from latentseg.prepare.core import weights_sentence

        console.print(escape(weights_sentence(res.saved.meta["weights"])), highlight=False)
    console.print(escape(f"why: {res.why}"), highlight=False)
    console.print(escape(f"model  -> {res.model_dir}  (id {res.saved.model_id})"), highlight=False)
    if res.report is not None:
        console.print(escape(f"report -> {res.report}"), highlight=False)


def _warn_all(messages: Any) -> None:
    for m in messages:
        info(f"[yellow]warning:[/] {escape(str(m))}")


def _run(
    survey: Path,
    *,
    config: Path | None,
    models: str | None,
    k: str | None,
    reduce: str | None,
    seed: int | None,
    name: str | None,
    output: Path | None,
    models_dir: Path,
    report: bool,
    as_json: bool,
    overrides: dict[str, dict[str, Any]] | None = None,
    model: str | None = None,
    force: bool = False,
    wait: bool = False,
    all_k: bool = False,
    weights: str | None = None,
    no_weights: bool = False,
) -> None:
    from latentseg.cli.commands_select import parse_k
    from latentseg.pipeline import run_pipeline

    if not survey.exists():
        from latentseg.errors import SurveyError

        raise SurveyError(f"Survey file '{survey}' does not exist.")
    if config is not None and not config.exists():
        _usage(f"Config file '{config}' does not exist.")
    if reduce is not None and reduce not in ("none", "pca", "fa", "jobstep"):
        _usage(f"--reduce must be one of none, pca, fa, jobstep; got {reduce!r}.")
    ks = parse_k(k) if k else None
    weight_overrides(weights, no_weights)  # refuses --weights with --no-weights before any work
    with _run_progress() as progress:
        res = run_pipeline(
            survey,
            config,
            models=_split(models),
            model=model,
            k=ks,
            reduce=reduce,
            random_seed=seed,
            name=name,
            output=output,
            models_dir=models_dir,
            report=report,
            progress=progress,
            overrides=overrides,
            force=force,
            wait=wait,
            on_wait=lambda message: info(escape(message)),
            all_k=True if all_k else None,
            weights=False if no_weights else weights,
        )
    _warn_all(res.warnings)
    if as_json:
        echo_json(res.to_dict())
    else:
        _print_run(res)


def find_example() -> tuple[Path, Path]:
    """The bundled example survey and config: next to the installed package (a source checkout or
    an editable install), else under the current directory."""
    import latentseg

    roots = [Path(latentseg.__file__).resolve().parent.parent, Path.cwd()]
    for root in roots:
        survey, config = root / EXAMPLE_SURVEY, root / EXAMPLE_CONFIG
        if survey.is_file() and config.is_file():
            return survey, config
    from latentseg.errors import ConfigError

    raise ConfigError(
        f"The demo needs the example survey {EXAMPLE_SURVEY} and {EXAMPLE_CONFIG}, which ship with the source "
        "repository; run it from a clone (pip install -e .) or from a folder holding examples/."
    )


def run_cmd(
    survey: Annotated[Path, typer.Argument(help="Survey file: CSV (Qualtrics too), Parquet, Excel or SPSS.", show_default=False)],
    config: ConfigOpt = None,
    models: Annotated[str | None, typer.Option("--models", help=from_config("Families to compare, comma-separated, e.g. kmeans,gmm,lca,bayes-gmm.", "select", "models"))] = None,
    model: Annotated[ModelName | None, typer.Option("--model", help=from_config("The family to keep at the recommended k (a --models naming one family keeps it).", "model", "model"))] = None,
    k: Annotated[str | None, typer.Option("--k", help="k values to try: 3..7, 3,4,5 or one k. Default: [select] k_min..k_max from the config, else 3..7.")] = None,
    reduce: Annotated[Reduction | None, typer.Option("--reduce", help=from_config("Dimension reduction before clustering.", "reduce", "method"))] = None,
    seed: Annotated[int | None, typer.Option("--seed", help=from_config("Random seed.", "model", "random_seed"), min=0)] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name: saved to MODELS_DIR/NAME. Default: the survey file's name.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=from_config("Folder for the report.", "report", "output"))] = None,
    models_dir: Annotated[Path, typer.Option("--models-dir", help="Where models are saved.")] = Path("models"),
    no_report: Annotated[bool, typer.Option("--no-report", help="Save the model but write no report.")] = False,
    force: ForceOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="If another process is writing this model, wait for it instead of failing.")] = False,
    all_k: AllKOpt = False,
    covariates: Annotated[str | None, typer.Option("--covariates", help=from_config("Comma-separated profile columns that predict segment membership (text columns dummy-coded).", "model", "covariates", empty="none"))] = None,
    covariates_method: Annotated[Literal["one-step", "bch", "ml"] | None, typer.Option("--covariates-method", help=from_config("one-step (in the fit itself; gmm, lca, bayes-gmm, bayes-lca) or bias-adjusted three-step bch / ml.", "model", "covariates_method"))] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    weights: WeightsOpt = None,
    no_weights: NoWeightsOpt = False,
) -> None:
    """Run the whole playbook on a survey: validate, clean, score, select k, fit, profile, size, save, report.

    Sampling is spent where it can change the answer: the Bayesian fits of the sweep come last and
    are skipped when they cannot change the recommended k or their k is hopeless, and a fit far
    past its family's time budget is stopped; the selection table says which and why (--all-k
    fits everything). Progress names the fit that is running (plain log lines off a terminal).

    An interrupted run (Ctrl-C, a crash) keeps every finished fit in
    MODELS_DIR/NAME/checkpoints/; running the same command again resumes from them. A model
    already saved as MODELS_DIR/NAME is never replaced without --force (NAME defaults to the
    survey file name, so wave1/survey.csv and wave2/survey.csv need --name); with --force the
    run reuses the checkpoints that match and replaces the model. No output may overwrite an
    input, and one process at a time writes a model (another gets an error, or waits with --wait).
    """
    state.quiet = state.quiet or quiet
    cov_over: dict[str, Any] = {}
    if covariates is not None:
        cov_over["covariates"] = [c.strip() for c in covariates.split(",") if c.strip()]
    if covariates_method is not None:
        cov_over["covariates_method"] = covariates_method
    _run(survey, config=config, models=models, k=k, reduce=reduce, seed=seed, name=name, output=output,
         models_dir=models_dir, report=not no_report, as_json=as_json, model=model.value if model else None,
         force=force, wait=wait, all_k=all_k, weights=weights, no_weights=no_weights,
         overrides={"model": cov_over} if cov_over else None)

def demo_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for the report. Default: latentseg_output.")] = None,
    models_dir: Annotated[Path, typer.Option("--models-dir", help="Where the demo model is saved.")] = Path("models"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole job on the bundled example survey (examples/project_survey.csv).

    The example's config sweeps k-means, Gaussian mixtures and latent class models over
    k = 3..7; the demo then fits the final segmentation as a Bayesian Gaussian mixture at the
    recommended k (2 chains x 1000 draws), so the segment sizes carry posterior credible
    intervals. Same as: latentseg run examples/project_survey.csv --config
    examples/latentseg.toml --name demo, with [model] model = "bayes-gmm". A demo model already
    saved in MODELS_DIR is replaced only with --force.
    """
    state.quiet = state.quiet or quiet
    survey, config = find_example()
    from latentseg.deliver.artifacts import check_replace

    check_replace(models_dir / "demo", force=force, survey=survey, keep="--models-dir DIR")
    info(escape(f"demo: {survey} with {config}; final model: Bayesian Gaussian mixture at the recommended k"))
    _run(survey, config=config, models=None, k=None, reduce=None, seed=None, name="demo", output=output,
         models_dir=models_dir, report=True, as_json=as_json, model=DEMO, force=force)

def assign_cmd(
    model: Annotated[Path, typer.Argument(help="Saved model folder (models/NAME).", show_default=False)],
    new_data: Annotated[Path, typer.Argument(help="New respondents: CSV (any delimiter and encoding, optionally .gz; Qualtrics too), Parquet, Excel or SPSS.", show_default=False)],
    out: Annotated[Path, typer.Option("--output", "-o", help="Output file: .csv, .csv.gz, .tsv, .tsv.gz or .parquet.", show_default=False)],
    chunksize: Annotated[int, typer.Option("--chunksize", help="Rows per chunk (memory bound).", min=1)] = 200_000,
    source: Annotated[Literal["auto", "ratings", "features", "observables"], typer.Option("--from", help="What NEW_DATA holds: ratings, the model's features, observable columns for the finder, or auto (detected).")] = "auto",
    id_column: Annotated[str | None, typer.Option("--id-column", help="Respondent id column; must be in NEW_DATA. Default: the one used at fit time, else row numbers.")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Score new respondents: membership probabilities and the modal segment.

    From survey ratings (same columns as at fit time; same scales, missing codes and scoring),
    from the model's own feature columns, or from observable variables alone through the
    finder model (--from observables). Files stream in chunks, so memory stays bounded.
    """
    from latentseg.deliver.assign import SOURCES, assign_file
    from latentseg.io.files import check_outputs

    state.quiet = state.quiet or quiet
    if source not in SOURCES:
        _usage(f"--from must be one of {', '.join(SOURCES)}; got {source!r}.")
    check_outputs({"--output": out}, {**model_inputs(model), "NEW_DATA": new_data}, command="assign")
    summary = assign_file(model, new_data, out, chunksize=chunksize, source=source, id_column=id_column,
                          progress=not state.quiet)
    d = summary.to_dict()
    if as_json:
        echo_json(d)
        return
    from rich.table import Table

    table = Table(title=f"{d['rows']:,} rows scored in {d['seconds']:.1f} s -> {out}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Segment")
    table.add_column("Modal", justify="right")
    table.add_column("Expected share", justify="right")
    for s in d["segments"]:
        share = s["expected_share"]
        table.add_row(str(s["id"]), escape(s["name"]), f"{s['modal_count']:,}", "" if share is None else f"{share:.1%}")
    from latentseg.cli._common import fit_table

    console = out_console()
    console.print(fit_table(table, console.width))
    aside = d["set_aside"]
    if aside["count"]:
        why = "; ".join(f"{n:,} {escape(reason)}" for reason, n in aside["reasons"].items())
        info(f"{aside['count']:,} responses set aside as run sets them aside ({why}): listed in the output, "
             "their segment empty.")
    if d["unscored"] > aside["count"]:
        info(f"[yellow]warning:[/] {d['unscored'] - aside['count']:,} rows had nothing to score (every input missing); "
             "their segment is empty.")

def report_cmd(
    model: Annotated[Path, typer.Argument(help="Saved model folder (models/NAME).", show_default=False)],
    out: Annotated[Path, typer.Option("--output", "-o", help="The HTML file; figures/, tables/ and the workbook and deck (.xlsx, .pptx of the same name) go beside it.")] = Path("latentseg_output/report.html"),
    title: Annotated[str | None, typer.Option("--title", help="Page title. Default: the one saved with the model.")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the self-contained HTML report of a saved model (works offline), with PNG/SVG figures, CSV/JSON tables, an Excel workbook and a PowerPoint deck beside it."""
    from latentseg.deliver.artifacts import load_model
    from latentseg.deliver.report import write_report

    state.quiet = state.quiet or quiet
    if out.suffix.lower() not in (".html", ".htm"):
        _usage(f"--output must be an .html file; got '{out}'.")
    from latentseg.deliver.briefing import deliverable_outputs
    from latentseg.io.files import check_outputs

    check_outputs({"--output": out, **deliverable_outputs(out)}, model_inputs(model), command="report",
                  trees={"the report's figures folder": out.parent / "figures",
                         "the report's tables folder": out.parent / "tables"})
    from latentseg.decide.core import decide_saved
    from latentseg.errors import DataMismatchError, LatentsegError

    saved = load_model(model)
    try:  # a model saved by `fit --save` has no decisions yet: the decide step makes them from its survey
        saved = decide_saved(saved)
    except DataMismatchError:  # another survey than the model's: refused, never reported on
        raise
    except LatentsegError as exc:
        info(escape(f"note: the report has no profiles or segment map: {exc}"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib font notices are not the user's business
        path = write_report(saved, out, title=title)
    files = sorted(str(p.relative_to(path.parent)) for p in path.parent.rglob("*") if p.is_file() and p != path)
    if as_json:
        echo_json({"report": str(path), "model_id": saved.model_id, "files": files})
    else:
        out_console().print(escape(f"report -> {path} ({len(files)} figure and table files beside it)"), highlight=False)

def _info(model: Path, as_json: bool) -> None:
    from latentseg.deliver.artifacts import load_model

    saved = load_model(model)
    s = saved.summary()
    if as_json:
        echo_json(s)
        return
    from rich.table import Table

    console = out_console()
    console.print(escape(f"{s['name']}: {s['model']}, k = {s['k']}, n = {s['n']}, id {s['model_id']}"), highlight=False)
    console.print(escape(f"saved {s['created']} by latentseg {s['latentseg_version']}; seed {s['random_seed']}, data {s['data_hash']}"), highlight=False)
    table = Table(title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Segment")
    table.add_column("Share", justify="right")
    table.add_column("Interval", justify="right")
    for seg in s["segments"]:
        table.add_row(str(seg["id"]), escape(str(seg["label"])), f"{seg['share']:.1%}",
                      f"{seg['share_lower']:.1%}-{seg['share_upper']:.1%} ({escape(str(seg['interval']))})")
    from latentseg.cli._common import fit_table

    console.print(fit_table(table, console.width))
    console.print(escape(f"features: {', '.join(s['features'][:12])}{' ...' if len(s['features']) > 12 else ''}"), highlight=False)
    if s["sections"]:
        console.print(escape(f"saved with: {', '.join(s['sections'])}"), highlight=False)

def info_cmd(
    model: Annotated[Path, typer.Argument(help="Saved model folder (models/NAME).", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Describe a saved model and check that it loads (same version, id matching its contents)."""
    _info(model, as_json)

def load_cmd(
    model: Annotated[Path, typer.Argument(help="Saved model folder (models/NAME).", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Load a saved model (checking version and id) and describe it; same as `info`."""
    _info(model, as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    command(app, "run")(run_cmd)
    command(app, "demo")(demo_cmd)
    command(app, "assign")(assign_cmd)
    command(app, "report")(report_cmd)
    command(app, "info")(info_cmd)
    command(app, "load", hidden=False)(load_cmd)
