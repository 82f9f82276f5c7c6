"""``latentseg fit``: fit one model with k segments to a survey, a score table or an indicator table.

Data kinds:

- ``survey`` (default): read and validate with :func:`latentseg.io.read_survey`, clean with
  :func:`latentseg.prepare.cleaning.clean`, score with :func:`latentseg.prepare.scoring.opportunity_scores`; the
  numeric models fit the opportunity scores (or, with ``[reduce] method`` set in the config,
  their factors from :func:`latentseg.prepare.reduce.reduce`), latent class models the per-outcome
  opportunity level (:func:`latentseg.models.lca.opportunity_levels`). Outcomes on which every
  respondent has the same value are left out, with a note.
- ``scores``: any numeric table (CSV, Parquet, Excel ...), one row per respondent.
- ``indicators``: any categorical table, one row per respondent.

A column named ``respondent_id`` or ``id`` in a score / indicator table becomes the respondent
id. Settings come from ``--config`` (or ``./latentseg.toml``), overridden by the options given.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from latentseg.cli._common import command, echo_json, info, out_console

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from latentseg.result import SegmentationResult

MODELS = ("kmeans", "gmm", "lca", "bayes-gmm", "bayes-lca")
DATA_KINDS = ("survey", "scores", "indicators")
NUMERIC_MODELS = ("kmeans", "gmm", "bayes-gmm")
CATEGORICAL_MODELS = ("lca", "bayes-lca")
BAYES_OPTIONS = ("draws", "tune", "chains", "sampler")
ID_COLUMNS = ("respondent_id", "id")


def _fail(message: str) -> None:
    from latentseg.errors import ConfigError

    raise ConfigError(message)


def _read_data(path: Path, kind: str, model: str, columns: list[str] | None, cfg: dict[str, Any]) -> tuple[Any, str]:
    """The table the model is fitted on, and a one-line description of where it came from."""
    import pandas as pd

    if kind == "survey":
        from latentseg.prepare.cleaning import clean
        from latentseg.io import read_survey
        from latentseg.prepare.scoring import opportunity_scores

        survey = read_survey(path, config=cfg)
        cleaned, report = clean(survey, **cfg["cleaning"])
        info(escape(report.summary().splitlines()[0]))
        scores = opportunity_scores(cleaned)
        scores = _pick_columns(scores, columns, str(path))
        if model in CATEGORICAL_MODELS:
            from latentseg.prepare.encoding import opportunity_levels

            levels = _drop_constant(opportunity_levels(scores), "opportunity level")
            return levels, f"opportunity levels of {levels.shape[1]} outcomes"
        scores = _drop_constant(scores, "opportunity score")
        method = cfg["reduce"]["method"]
        if method != "none":  # the playbook's step 3, as configured ([reduce])
            from latentseg.prepare.reduce import reduce

            r = cfg["reduce"]
            kwargs: dict[str, Any] = {"outcomes": cleaned.outcomes}
            if method in ("pca", "fa"):
                kwargs["variance"] = r["variance"]
                if r["n_factors"]:
                    kwargs["n_factors"] = r["n_factors"]
            red = reduce(scores, method, **kwargs)
            info(
                escape(
                    f"reduced {scores.shape[1]} outcomes to {red.scores.shape[1]} {method} factor(s) "
                    f"explaining {red.explained_variance.sum():.0%} of the variance ([reduce] in the config)"
                )
            )
            return red.scores, f"{red.scores.shape[1]} {method} factors of {scores.shape[1]} outcomes"
        return scores, f"opportunity scores of {scores.shape[1]} outcomes"

    from latentseg.io import read_table

    frame = read_table(path)
    ids = [c for c in frame.columns if str(c).lower() in ID_COLUMNS]
    if ids:
        id_col = ids[0]
        dup = frame[id_col].duplicated(keep=False)
        if dup.any():
            from latentseg.errors import format_rows

            _fail(f"{path}: column '{id_col}' has repeated respondent ids {format_rows(frame.loc[dup, id_col].unique())}.")
        frame = frame.set_index(id_col)
    frame = _pick_columns(frame, columns, str(path))
    if kind == "scores":
        bad = [str(c) for c in frame.columns if not _numeric(frame[c])]
        if bad:
            from latentseg.errors import format_rows

            _fail(
                f"{path}: score column(s) {format_rows(bad)} are not numeric; pick the score columns with "
                "--columns, or use --data-kind indicators with a latent class model."
            )
        if model in CATEGORICAL_MODELS:
            info("note: fitting a latent class model to numeric scores treats every distinct value as a category.")
        return frame, f"{frame.shape[1]} score columns"
    if model in NUMERIC_MODELS:
        _fail(
            f"--model {model} needs numeric scores, but --data-kind indicators is categorical; use "
            "--model lca (or bayes-lca), or --data-kind scores."
        )
    return frame, f"{frame.shape[1]} indicator columns"


def _drop_constant(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """Leave out survey outcomes on which every respondent has the same value, and say so.

    Such an outcome cannot separate segments: for a latent class model it contributes the same
    factor (probability 1) to every segment, and for a Gaussian mixture its variance would be 0.
    A score or indicator table given by the user is not edited: there the engine refuses it.
    """
    from latentseg.errors import format_rows
    from latentseg.prepare.encoding import drop_constant_columns

    frame, const = drop_constant_columns(frame)
    if const:
        info(escape(f"note: left out outcome(s) {format_rows(const)}: every respondent has the same {what} there."))
    return frame


def _mean_impute(frame: pd.DataFrame) -> pd.DataFrame:
    """k-means cannot use missing values: replace them by the column mean, and say so (as
    ``latentseg select`` does for its k-means fits; the mixtures use the observed values)."""
    n_missing = int(frame.isna().to_numpy().sum())
    if not n_missing:
        return frame
    info(
        f"note: k-means cannot use missing values: {n_missing} missing value(s) were replaced by their "
        "column mean (--model gmm uses each respondent's observed values instead)."
    )
    return frame.fillna(frame.mean())


def _numeric(col: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(col.dtype)) and not pd.api.types.is_bool_dtype(col.dtype)


def _pick_columns(frame: pd.DataFrame, columns: list[str] | None, source: str) -> pd.DataFrame:
    if not columns:
        return frame
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        from latentseg.errors import format_rows

        have = ", ".join(map(str, list(frame.columns)[:8])) + (" ..." if frame.shape[1] > 8 else "")
        _fail(f"{source}: --columns names unknown column(s) {format_rows(unknown)}; the table has {have}.")
    return frame[columns]


def _engine_options(model: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Options for the engine: those given explicitly must be accepted by it (else one clear
    message); configured defaults are passed only where the engine takes them."""
    import inspect

    from latentseg.models import MODELS as ENGINES
    from latentseg.models import engine

    func = getattr(engine(model), ENGINES[model][1])
    accepted = set(inspect.signature(func).parameters)
    opts: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if name in BAYES_OPTIONS and not model.startswith("bayes"):
            _fail(f"--{name} applies to the Bayesian models (bayes-gmm, bayes-lca) only, not to --model {model}.")
        if name not in accepted:
            _fail(f"--{name.replace('_', '-')} is not an option of --model {model}.")
        opts[name] = value
    for name, value in defaults.items():
        if name in accepted and name not in opts:
            opts[name] = value
    return opts


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
    console.print(head)
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
    console.print(crit)


def _save(name: str, result: SegmentationResult, cfg: dict[str, Any], meta: dict[str, Any]) -> Path:
    import importlib

    if not name or any(sep in name for sep in ("/", "\\")) or name in (".", ".."):
        _fail(f"--save takes a plain model name (saved under models/<name>); got {name!r}.")
    try:
        artifacts = importlib.import_module("latentseg.deliver.artifacts")
    except ModuleNotFoundError as exc:
        if exc.name != "latentseg.deliver.artifacts":
            raise
        _fail("--save needs latentseg.deliver.artifacts, which this installation does not have; rerun without --save.")
    path = Path("models") / name
    artifacts.save_model(path, result, config=cfg, meta=meta, name=name)
    return path


def register(app: typer.Typer) -> None:
    @command(app, "fit")
    def fit(
        data: Annotated[Path, typer.Argument(help="Survey file, or a score / indicator table (see --data-kind).")],
        k: Annotated[int, typer.Option("--k", help="Number of segments.")],
        model: Annotated[
            str | None, typer.Option("--model", help="kmeans | gmm | lca | bayes-gmm | bayes-lca (default: the config's, gmm).")
        ] = None,
        covariance: Annotated[
            str | None, typer.Option("--covariance", help="Gaussian mixture structure: EII VII EEI VVI EEE VVV, or auto (EEI or VVI by BIC); bayes-gmm takes VVI, EEI, auto or VVV (default: the config's, VVI).")
        ] = None,
        n_init: Annotated[int | None, typer.Option("--n-init", help="Starts for k-means / EM fits (default: the config's, 10).")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: the config's).")] = None,
        data_kind: Annotated[
            str, typer.Option("--data-kind", help="survey | scores (numeric table) | indicators (categorical table).")
        ] = "survey",
        columns: Annotated[
            str | None, typer.Option("--columns", help="Comma-separated columns (outcomes for a survey) to fit on.")
        ] = None,
        config: Annotated[
            Path | None, typer.Option("--config", help="Settings file (default: ./latentseg.toml if present).")
        ] = None,
        draws: Annotated[int | None, typer.Option("--draws", help="Posterior draws per chain (Bayesian).")] = None,
        tune: Annotated[int | None, typer.Option("--tune", help="Tuning steps per chain (Bayesian).")] = None,
        chains: Annotated[int | None, typer.Option("--chains", help="MCMC chains (Bayesian).")] = None,
        sampler: Annotated[str | None, typer.Option("--sampler", help="nutpie | pymc | numpyro (needs the jax extra) | advi (approximate).")] = None,
        save: Annotated[str | None, typer.Option("--save", help="Save the fitted model as models/NAME.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (the documented contract).")] = False,
    ) -> None:
        """Fit one segmentation model with K segments and print its segments and criteria."""
        from latentseg.config import load_config, merge_config

        cfg = load_config(config)
        chosen = model or cfg["model"]["model"]
        if chosen not in MODELS:
            _fail(f"--model must be one of {', '.join(MODELS)}; got {chosen!r}.")
        if data_kind not in DATA_KINDS:
            _fail(f"--data-kind must be one of {', '.join(DATA_KINDS)}; got {data_kind!r}.")
        if k < 1:
            _fail(f"--k must be at least 1; got {k}.")
        if not data.exists():
            _fail(f"Data file '{data}' does not exist.")
        picked = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        # validate the overrides through the config table (ranges, choices) before any work
        overrides = {
            key: value
            for key, value in (
                ("covariance", covariance),
                ("n_init", n_init),
                ("random_seed", seed),
                ("draws", draws),
                ("tune", tune),
                ("chains", chains),
                ("sampler", sampler),
            )
            if value is not None
        }
        checked = merge_config({"model": overrides}, "options")["model"]
        cfg["model"].update({key: checked[key] for key in overrides})
        m = cfg["model"]

        table, source = _read_data(data, data_kind, chosen, picked, cfg)
        if chosen == "kmeans":
            table = _mean_impute(table)
        defaults = {"n_init": m["n_init"]}
        if chosen == "gmm":
            defaults["covariance"] = m["covariance"]
        if chosen.startswith("bayes"):
            defaults.update({name: m[name] for name in BAYES_OPTIONS})
        given = {"covariance": covariance, "n_init": n_init, "draws": draws, "tune": tune, "chains": chains, "sampler": sampler}
        options = _engine_options(chosen, given, defaults)

        from latentseg.errors import LatentsegWarning
        from latentseg.models import fit as fit_model

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LatentsegWarning)
            result = fit_model(table, chosen, k, random_seed=m["random_seed"], **options)
        for w in caught:
            if issubclass(w.category, LatentsegWarning):
                info(f"[yellow]warning:[/] {escape(str(w.message))}")
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)

        if save:
            meta = {"data": {"path": str(data), "data_kind": data_kind, "columns": list(map(str, table.columns))}}
            path = _save(save, result, cfg, meta)
            info(escape(f"saved -> {path}"))
        if as_json:
            echo_json(result.to_dict())
        else:
            _print_result(result, source)
