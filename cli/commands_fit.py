"""``latentseg fit``: fit one model with k segments to a survey, a score table or an indicator table.

Data kinds:

- ``survey`` (default): prepared by :func:`latentseg.prepare.core.prepare` exactly as ``select``
  and ``run`` prepare it: read, validate, clean, opportunity scores (or, with ``[reduce] method``
  set in the config, their factors); latent class models fit the per-outcome opportunity levels.
  Outcomes on which every respondent has the same value are left out, with a note.
- ``scores``: any numeric table (CSV, Parquet, Excel ...), one row per respondent (latent class
  models fit its opportunity levels).
- ``indicators``: any categorical table, one row per respondent.

A column named ``respondent_id`` or ``id`` in a score / indicator table becomes the respondent
id. A survey's (or table's) weight column weights the fit (``--weights COLUMN`` names another,
``--no-weights`` ignores it); the JSON then says so in ``"weights"``. Settings come from ``--config`` (or ``./latentseg.toml``), overridden by the options given.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from latentseg.cli._common import ModelName, command, echo_json, fit_table, from_config, info, out_console
from latentseg.cli._common import NoWeightsOpt, WeightsOpt, weight_overrides

if TYPE_CHECKING:  # pragma: no cover
    from latentseg.result import SegmentationResult


def _fail(message: str) -> None:
    from latentseg.errors import ConfigError

    raise ConfigError(message)


def _print_result(result: SegmentationResult, source: str) -> None:
    from rich.table import Table

    console = out_console()
    head = Table(title=f"{result.model}, k = {result.k}, n = {result.n} ({source})", title_justify="left")
    head.add_column("Segment", justify="right")
    head.add_column("Share", justify="right")
    head.add_column(result.interval_method, justify="right")
    head.add_column("Respondents", justify="right")
    counts = result.memberships.sum(axis=0)
    for j in range(result.k):
        head.add_row(
            f"{j + 1}",
            f"{result.shares[j]:.1%}",
            f"{result.share_lower[j]:.1%} - {result.share_upper[j]:.1%}",
            f"{counts[j]:.0f}",
        )
    console.print(fit_table(head, console.width))
    title = "Criteria" if "bic" not in result.criteria else "Criteria (lower is better for BIC / AIC / ICL / SABIC / CAIC)"
    crit = Table(title=title, title_justify="left")
    crit.add_column("Criterion")
    crit.add_column("Value", justify="right")
    for key, value in result.criteria.items():
        text = f"{value:d}" if isinstance(value, int) else f"{float(value):.4g}" if abs(float(value)) < 1 else f"{float(value):.3f}"
        crit.add_row(key, text)
    diag = result.diagnostics
    if "n_best" in diag:
        crit.add_row("starts reaching the best log-likelihood", f"{diag['n_best']} of {diag['n_starts']}")
    crit.add_row("converged", "yes" if result.converged else "NO")
    console.print(fit_table(crit, console.width))


def _save_path(name: str) -> Path:
    """models/NAME for a name that ``run --name`` would accept too (letters, digits, '.', '_', '-')."""
    from latentseg.deliver.artifacts import MODEL_NAME

    if not MODEL_NAME.fullmatch(name or ""):
        _fail(
            f"--save takes a plain model name (saved under models/<name>): a letter or digit first, then "
            f"letters, digits, '.', '_' or '-'; got {name!r}."
        )
    return Path("models") / name


def _save(path: Path, result: SegmentationResult, cfg: dict[str, Any], meta: dict[str, Any]) -> Path:
    from latentseg.deliver.artifacts import save_model

    save_model(path, result, config=cfg, meta=meta, name=path.name)
    return path


def _check_paths(data: Path, config: Path | None, path: Path | None) -> None:
    """The output-path policy (:func:`latentseg.io.files.check_outputs`) for ``fit --save``."""
    from latentseg.cli._common import config_inputs
    from latentseg.deliver.artifacts import META_FILE, RESULT_FILE
    from latentseg.io.files import check_outputs

    if path is None:
        return
    check_outputs(
        {"the model folder": path, "the model's model.json": path / META_FILE, "the model's result.nc": path / RESULT_FILE,
         "the model's lock file": path.parent / f".{path.name}.lock"},
        {"DATA": data, **config_inputs(config)},
        command="fit --save",
    )


def fit_options(chosen: str, cfg: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The engine options of ``chosen``: the config's (from the family registry), overridden by
    the options given on the command line (each of which the family must accept); and the notes
    on configured values the family cannot take.

    Examples
    --------
    >>> from latentseg.config import merge_config
    >>> fit_options("bayes-gmm", merge_config({"model": {"covariance": "EEI"}}), {"draws": 200})[0]["covariance"]
    'EEI'
    """
    from latentseg.models.families import MCMC_OPTIONS, family

    fam = family(chosen)
    for name, value in given.items():
        if value is not None and name in MCMC_OPTIONS and not fam.bayesian:
            _fail(f"--{name} applies to the Bayesian models only, not to --model {chosen}.")
    explicit = fam.check_options(given)
    configured = fam.options_from_config(cfg)
    return {**configured.options, **explicit}, list(configured.notes)


def fit(
    data: Annotated[Path, typer.Argument(help="Survey file, or a score / indicator table (see --data-kind).")],
    k: Annotated[int, typer.Option("--k", help="Number of segments.")],
    model: Annotated[
        ModelName | None, typer.Option("--model", help=from_config("The model family.", "model", "model"))
    ] = None,
    covariance: Annotated[
        str | None, typer.Option("--covariance", help=from_config("Gaussian mixture structure: EII VII EEI VVI EEE VVV, or auto (EEI or VVI by BIC); bayes-gmm takes VVI, EEI, auto or VVV.", "model", "covariance"))
    ] = None,
    n_init: Annotated[int | None, typer.Option("--n-init", help=from_config("Starts for k-means / EM fits.", "model", "n_init"))] = None,
    seed: Annotated[int | None, typer.Option("--seed", help=from_config("Random seed.", "model", "random_seed"))] = None,
    data_kind: Annotated[
        Literal["survey", "scores", "indicators"],
        typer.Option("--data-kind", help="A survey, a numeric score table (scores) or a categorical table (indicators)."),
    ] = "survey",
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns (outcomes for a survey) to fit on.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="latentseg.toml with settings. Default: ./latentseg.toml if present.")
    ] = None,
    draws: Annotated[int | None, typer.Option("--draws", help=from_config("Posterior draws per chain (Bayesian).", "model", "draws"))] = None,
    tune: Annotated[int | None, typer.Option("--tune", help=from_config("Tuning steps per chain (Bayesian).", "model", "tune"))] = None,
    chains: Annotated[int | None, typer.Option("--chains", help=from_config("MCMC chains (Bayesian).", "model", "chains"))] = None,
    sampler: Annotated[
        Literal["nutpie", "pymc", "numpyro", "advi"] | None,
        typer.Option("--sampler", help=from_config("MCMC sampler (numpyro needs the jax extra; advi is approximate).", "model", "sampler")),
    ] = None,
    covariates: Annotated[
        str | None,
        typer.Option("--covariates", help=from_config("Comma-separated columns that predict segment membership (profile columns of a survey, other columns of a table; text columns dummy-coded).", "model", "covariates", empty="none")),
    ] = None,
    covariates_method: Annotated[
        Literal["one-step", "bch", "ml"] | None,
        typer.Option("--covariates-method", help=from_config("one-step (in the fit itself; gmm, lca, bayes-gmm, bayes-lca) or bias-adjusted three-step bch / ml.", "model", "covariates_method")),
    ] = None,
    save: Annotated[str | None, typer.Option("--save", help="Save the fitted model as models/NAME.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --save: replace a model already saved as models/NAME.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (the documented contract).")] = False,
    weights: WeightsOpt = None,
    no_weights: NoWeightsOpt = False,
) -> None:
    """Fit one segmentation model with K segments and print its segments and criteria.

    With --save NAME the model goes to models/NAME; a model already saved there is replaced only
    with --force, and while this process writes it no other can (it gets an error naming this one).
    """
    import contextlib

    from latentseg.config import load_config, merge_config
    from latentseg.models.families import NAMES
    from latentseg.prepare.core import INPUT_KINDS

    cfg = load_config(config)
    cfg["survey"].update(weight_overrides(weights, no_weights).get("survey", {}))
    chosen = model.value if model is not None else cfg["model"]["model"]
    if chosen not in NAMES:
        _fail(f"--model must be one of {', '.join(NAMES)}; got {chosen!r}.")
    if data_kind not in INPUT_KINDS:
        _fail(f"--data-kind must be one of {', '.join(INPUT_KINDS)}; got {data_kind!r}.")
    if k < 1:
        _fail(f"--k must be at least 1; got {k}.")
    picked = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    given = {"covariance": covariance, "n_init": n_init, "draws": draws, "tune": tune, "chains": chains, "sampler": sampler}
    # validate the overrides through the config table (ranges, choices) before any work
    overrides = {key: value for key, value in (*given.items(), ("random_seed", seed)) if value is not None}
    checked = merge_config({"model": overrides}, "options")["model"]
    cfg["model"].update({key: checked[key] for key in overrides})
    options, option_notes = fit_options(chosen, cfg, {key: checked[key] for key in given if key in overrides})
    if not data.exists():
        _fail(f"Data file '{data}' does not exist.")
    picked = _covariate_settings(cfg, covariates, covariates_method, data, data_kind, picked)
    save_path = _save_path(save) if save is not None else None
    _check_paths(data, config, save_path)
    with contextlib.ExitStack() as hold:
        if save_path is not None:  # held from the check to the save: no other process writes this model meanwhile
            from latentseg.deliver.artifacts import check_replace, model_lock

            hold.enter_context(model_lock(save_path, hint="wait for it to finish, or pass another --save name"))
            check_replace(save_path, force=force, survey=data, keep="--save NAME")
        _fit_and_report(data, cfg, chosen, k, data_kind, picked, options, option_notes, save_path, as_json)


def _fit_and_report(data: Path, cfg: dict[str, Any], chosen: str, k: int, data_kind: str, picked: list[str] | None,
                    options: dict[str, Any], option_notes: list[str], save_path: Path | None, as_json: bool) -> None:
    from latentseg.prepare.core import prepare

    prepared = prepare(data, cfg, kind=data_kind, families=[chosen], columns=picked)
    if prepared.cleaning is not None:
        info(escape(prepared.cleaning.summary().splitlines()[0]))
    for note in [*prepared.notes_for(chosen), *option_notes]:
        info(escape(f"note: {note}."))
    table = prepared.data_for(chosen)
    sample_weight = prepared.weights_for(chosen)
    from latentseg.decide.covariates import check_one_step_weights

    check_one_step_weights(cfg, chosen, sample_weight is not None)  # before the fit, not after the sampling
    if sample_weight is not None:  # only then: an unweighted fit calls the engine exactly as before
        options = {**options, "sample_weight": sample_weight}

    from latentseg.errors import LatentsegWarning
    from latentseg.models import fit as fit_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatentsegWarning)
        result = prepared.stamp(fit_model(table, chosen, k, random_seed=cfg["model"]["random_seed"], **options))
        result, effects = _covariate_effects(result, prepared, table, data, data_kind, cfg)
    for w in caught:
        if issubclass(w.category, LatentsegWarning):
            info(f"[yellow]warning:[/] {escape(str(w.message))}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)

    if save_path is not None:
        path = _save(save_path, result, cfg, {"data": prepared.spec_for(chosen), "notes": list(prepared.notes_for(chosen)),
                                              "weights": prepared.weights_info()})
        info(escape(f"saved -> {path}"))
    if as_json:
        from latentseg.decide.covariates import covariates_json

        out = result.to_dict()
        if effects is not None:
            out["covariates"] = covariates_json(result)
        echo_json(out)
    else:
        _print_result(result, prepared.description)
        if effects is not None:
            _print_covariates(effects)
        if prepared.weights is not None:
            from latentseg.prepare.core import weights_sentence

            out_console().print(escape(weights_sentence(prepared.weights_info())), highlight=False)


def _covariate_settings(cfg: dict[str, Any], covariates: str | None, method: str | None, data: Path, data_kind: str,
                        picked: list[str] | None) -> list[str] | None:
    """Put ``--covariates`` / ``--covariates-method`` into ``cfg["model"]`` (checked as config
    values); for a score / indicator table without ``--columns``, the model columns become every
    column but the covariates and the id (returned)."""
    from latentseg.config import merge_config

    given: dict[str, Any] = {}
    if covariates is not None:
        given["covariates"] = [c.strip() for c in covariates.split(",") if c.strip()]
    if method is not None:
        given["covariates_method"] = method
    if given:
        checked = merge_config({"model": given}, "options")["model"]
        cfg["model"].update({key: checked[key] for key in given})
    cols = list(cfg["model"].get("covariates") or [])
    if not cols or data_kind == "survey":
        return picked
    clash = [c for c in (picked or []) if c in cols]
    if clash:
        _fail(f"Column(s) {', '.join(clash)} are both model columns (--columns) and covariates (--covariates).")
    from latentseg.io import read_table
    from latentseg.prepare.core import ID_COLUMNS

    names = [str(c) for c in read_table(data).columns]
    absent = [c for c in cols if c not in names]
    if absent:
        _fail(f"{data}: covariate column(s) {', '.join(absent)} are not in the file.")
    if picked is None:
        from latentseg.io.readers import find_weight_column

        weight = find_weight_column(names, cfg["survey"]["weight_column"] or None, str(data))
        picked = [c for c in names if c not in cols and c.lower() not in ID_COLUMNS and c != weight]
    return picked


def _covariate_effects(result: SegmentationResult, prepared: Any, table: Any, data: Path, data_kind: str,
                       cfg: dict[str, Any]) -> tuple[SegmentationResult, Any]:
    """The result with its covariate effects when ``[model] covariates`` is set (one-step refits
    it), else the result and ``None``."""
    cols = list(cfg["model"].get("covariates") or [])
    if not cols:
        return result, None
    from latentseg.decide.covariates import covariates_from_config

    if data_kind == "survey":
        profile = prepared.profile
    else:
        from latentseg.io import read_table
        from latentseg.prepare.core import ID_COLUMNS

        frame = read_table(data)
        ids = [c for c in frame.columns if str(c).lower() in ID_COLUMNS]
        absent = [c for c in cols if c not in frame.columns]
        if absent:
            _fail(f"{data}: covariate column(s) {', '.join(absent)} are not in the file.")
        profile = (frame.set_index(ids[0]) if ids else frame.set_axis(table.index))[cols]
    return covariates_from_config(result, table, profile, cfg)  # a weighted fit carries its sample_weight


def _print_covariates(effects: Any) -> None:
    from rich.table import Table

    console = out_console()
    title = (f"Covariates on membership ({effects.method}; log-odds against segment {effects.reference_segment}, "
             f"SE {effects.se_method}{', penalised' if effects.penalised else ''})")
    tab = Table(title=title, title_justify="left")
    for name, just in (("Segment", "right"), ("Term", "left"), ("Estimate", "right"), ("SE", "right"),
                       ("95% interval", "right"), ("Odds ratio", "right")):
        tab.add_column(name, justify=just)  # type: ignore[arg-type]
    for row in effects.coefficients.itertuples(index=False):
        tab.add_row(str(row.segment), escape(str(row.term)), f"{row.estimate:.3f}", f"{row.se:.3f}",
                    f"{row.lower:.3f} to {row.upper:.3f}", f"{row.odds_ratio:.3g}")
    console.print(fit_table(tab, console.width))


def register(app: typer.Typer) -> None:
    """Add ``fit`` to ``app``."""
    command(app, "fit")(fit)
