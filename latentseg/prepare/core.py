"""The prepare step: a survey (or a score / indicator table) and a config -> every family's model input.

Every command that fits or scores (``fit``, ``select``, ``run``, ``assign``) reaches the models
through :func:`prepare`, so they all fit the same data under one config:

- ``kind="survey"``: read and validate (``[survey]``), clean with a report of every excluded
  respondent (``[cleaning]``), opportunity scores per respondent and outcome (and the aggregate
  landscape); outcomes on which every respondent has the same score are left out, with a note;
  optionally reduced to factors or job-step composites (``[reduce]``). The survey's weight column
  (``[survey] weight_column``, detected ``weight`` by default; ``use_weights = false`` ignores it)
  is checked (every weight a positive number) and normalised to mean 1 over the respondents that
  reach the model, after cleaning: :attr:`Prepared.weights`. Families fitted on scores
  take the (reduced) scores; families fitted on levels take the per-outcome opportunity levels
  of the outcome scores, without outcomes that have one level for everyone (with a note).
  Families fitted on ratings take the raw importance and satisfaction ratings of the same
  outcomes as the scores, each a category of its scale (:mod:`latentseg.prepare.ratings`).
- ``kind="scores"``: any numeric table (one row per respondent; a ``respondent_id`` / ``id``
  column becomes the index). Families fitted on levels take its opportunity levels (cut at 10
  and 15), which assumes opportunity scores. A user's table is not edited: constant columns are
  refused with one message.
- ``kind="indicators"``: any categorical table, for the families fitted on levels only.

A score or indicator table's weight column (the configured one, else one named ``weight`` ...)
is not a score or an indicator: it is taken out of the model input and, unless weights are
ignored, becomes :attr:`Prepared.weights` as for a survey.

:attr:`Prepared.spec` records what :mod:`latentseg.deliver.assign` needs to prepare new
respondents exactly the same way (rating columns, scales, missing codes, the reduction's linear
map, and, per family, whether levels were taken).

Examples
--------
>>> from latentseg.prepare.core import prepare
>>> p = prepare("examples/project_survey.csv", "examples/latentseg.toml", families=["gmm", "lca"])
>>> p.kind, p.numeric.shape[1] == p.scores.shape[1], p.levels is not None
('survey', True, True)
>>> p.data_for("lca") is p.levels
True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError, format_rows
from latentseg.models.families import family
from latentseg.prepare.provenance import file_sha256, input_sha256

__all__ = [
    "Prepared",
    "prepare",
    "resolve_config",
    "mean_impute",
    "rating_spec",
    "reduce_from_config",
    "INPUT_KINDS",
    "ID_COLUMNS",
    "weights_sentence",
]

#: What :func:`prepare` reads: a survey, a numeric score table, a categorical indicator table.
INPUT_KINDS = ("survey", "scores", "indicators")
#: Column names (lower case) that become the respondent id of a score / indicator table.
ID_COLUMNS = ("respondent_id", "id")


@dataclass(frozen=True, eq=False)
class Prepared:
    """Model input for every family, and how it was made.

    Attributes
    ----------
    kind : {"survey", "scores", "indicators"}
    source : str
        The file (or ``"<memory>"``).
    description : str
        One line: what the numeric families fit (``"opportunity scores of 24 outcomes"``).
    config : dict
        The merged config it was prepared under.
    survey : Survey or None
        The cleaned survey (``kind="survey"``).
    raw_survey : Survey or None
        The survey as read, before cleaning.
    cleaning : CleaningReport or None
    scores : DataFrame (n, m) or None
        Outcome-level opportunity scores (survey) or the score table (scores).
    landscape : DataFrame or None
        The aggregate opportunity landscape (survey).
    reduction : Reduction or None
        The ``[reduce]`` step, when configured.
    numeric : DataFrame (n, d) or None
        What families fitted on scores take: ``scores``, or the factors of ``reduction``.
    levels : DataFrame (n, m') or None
        What families fitted on levels take (computed when one of ``families`` needs them).
    ratings : DataFrame (n, 2m) or None
        What families fitted on ratings take (a survey, when one of ``families`` needs them): the
        raw ratings of the outcomes in ``scores``, laid out as
        :func:`latentseg.prepare.ratings.rating_frame` says.
    notes : tuple of str
        What was left out or assumed, in words.
    spec : dict
        How new respondents are prepared the same way (see :meth:`spec_for`).
    weights : Series (n,) or None
        Survey weights of the respondents in the model input (same index, same order),
        normalised to mean 1 (so they sum to n); ``None`` for an unweighted input or when the
        weights are ignored (``[survey] use_weights = false``, ``--no-weights``).
    weight_column : str or None
        The column they came from.
    """

    kind: str
    source: str
    description: str
    config: dict[str, Any]
    survey: Any = None
    raw_survey: Any = None
    cleaning: Any = None
    scores: pd.DataFrame | None = None
    landscape: pd.DataFrame | None = None
    reduction: Any = None
    numeric: pd.DataFrame | None = None
    levels: pd.DataFrame | None = None
    ratings: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)
    weights: pd.Series | None = None
    weight_column: str | None = None

    @property
    def n(self) -> int:
        """Respondents in the model input."""
        frame = self.numeric if self.numeric is not None else self.levels
        return 0 if frame is None else int(frame.shape[0])

    @property
    def profile(self) -> pd.DataFrame:
        """Profile columns of the cleaned survey (empty without a survey)."""
        if self.survey is not None:
            return self.survey.profile
        index = (self.numeric if self.numeric is not None else self.levels).index  # type: ignore[union-attr]
        return pd.DataFrame(index=index)

    @property
    def effective_n(self) -> float:
        """Kish's effective sample size of the weights (:func:`latentseg._stats.effective_n`);
        ``n`` when unweighted."""
        from latentseg._stats import effective_n

        return float(self.n) if self.weights is None else effective_n(self.weights.to_numpy())

    def weights_for(self, name: str) -> np.ndarray | None:
        """The weights aligned with the rows of :meth:`data_for` ``(name)`` as a float array of
        shape (n,) (what the family's ``sample_weight=`` takes), or ``None`` when unweighted.

        Examples
        --------
        >>> p = prepare("examples/weighted_survey.csv", "examples/latentseg.toml", families=["gmm"])
        >>> w = p.weights_for("gmm")
        >>> w.shape == (p.n,), round(float(w.mean()), 12), p.weight_column
        (True, 1.0, 'weight')
        """
        if self.weights is None:
            return None
        index = self.data_for(name).index
        return self.weights.reindex(index).to_numpy(dtype=float)

    def weights_info(self) -> dict[str, Any] | None:
        """The JSON contract's ``"weights"`` block, ``{"column", "effective_n", "n"}``, or ``None``
        when unweighted."""
        if self.weights is None:
            return None
        return {"column": self.weight_column, "effective_n": round(self.effective_n, 1), "n": self.n}

    def stamp(self, result: Any) -> Any:
        """``result`` with the weight column recorded in its provenance (``weight_column``) when
        this input is weighted (what ``"weights"`` in its JSON names); else ``result`` itself."""
        if self.weights is None:
            return result
        import dataclasses

        return dataclasses.replace(result, provenance={**dict(result.provenance), "weight_column": self.weight_column})

    @property
    def outcomes(self) -> pd.DataFrame | None:
        """The outcome table (statement, job step) of a survey."""
        return None if self.survey is None else self.survey.outcomes

    def data_for(self, name: str) -> pd.DataFrame:
        """The model input of family ``name`` (missing values mean-imputed for families that
        need complete data, as :func:`mean_impute` says).

        Raises
        ------
        ConfigError
            The family needs data this input does not have (levels that were not prepared, or
            numeric scores from an indicator table).
        """
        fam = family(name)
        if fam.on_ratings:
            if self.ratings is None:
                raise ConfigError(
                    f"--model {name} fits the raw importance and satisfaction ratings of a survey; "
                    + ("they were not prepared for this input: pass it in families= when preparing."
                       if self.kind == "survey" else f"--data-kind {self.kind} has none (use a survey).")
                )
            return self.ratings
        if fam.categorical:
            if self.levels is None:
                raise ConfigError(
                    f"--model {name} fits categorical levels, which were not prepared for this input; "
                    f"pass it in families= when preparing."
                )
            return self.levels
        if self.numeric is None:
            raise ConfigError(
                f"--model {name} needs numeric scores, but --data-kind indicators is categorical; use a family "
                "fitted on levels (lca, bayes-lca), or --data-kind scores."
            )
        if fam.complete_data:
            return mean_impute(self.numeric)[0]
        return self.numeric

    def notes_for(self, name: str) -> list[str]:
        """The notes that concern family ``name``'s input (imputation included)."""
        fam = family(name)
        out = list(self.notes)
        if fam.complete_data and self.numeric is not None:
            n_missing = mean_impute(self.numeric)[1]
            if n_missing:
                out.append(
                    f"{name} cannot use missing values: {n_missing} missing value(s) were replaced by their column "
                    "mean (the mixtures use each respondent's observed values instead)"
                )
        return out

    def spec_for(self, name: str) -> dict[str, Any]:
        """What :mod:`latentseg.deliver.assign` needs to score new data for a fit of family ``name``,
        with the hash of that family's model input (``input_sha256``: respondent ids, columns,
        values; :mod:`latentseg.prepare.provenance`)."""
        spec = copy.deepcopy(self.spec)
        if family(name).categorical and self.kind != "indicators":
            spec["transform"] = "opportunity_levels"
        if family(name).on_ratings:
            spec["transform"] = "ratings"
            spec["rating_outcomes"] = [str(c) for c in self.scores.columns] if self.scores is not None else []
        spec["input_sha256"] = input_sha256(self.data_for(name))
        if family(name).complete_data and self.numeric is not None:
            # the column means its missing values were replaced by, so assign fills new data alike
            means = self.numeric.mean()
            spec["impute_means"] = {str(c): float(v) for c, v in means.items()}
        return spec


def resolve_config(config: Any = None, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[dict[str, Any], str]:
    """(complete config, where it came from), with ``overrides`` (``{section: {key: value}}``,
    ``None`` values ignored) merged over it and checked.

    Parameters
    ----------
    config : None, path or mapping
        ``None``: ``./latentseg.toml`` if present, else the defaults.

    Examples
    --------
    >>> cfg, source = resolve_config({"model": {"n_init": 3}}, {"select": {"k_max": 5, "k_min": None}})
    >>> cfg["model"]["n_init"], cfg["select"]["k_max"], source
    (3, 5, 'config')
    """
    from latentseg.config import CONFIG_FILENAME, load_config, merge_config

    if config is None:
        cfg = load_config(None)
        source = CONFIG_FILENAME if Path(CONFIG_FILENAME).is_file() else "defaults"
    elif isinstance(config, (str, Path)):
        cfg = load_config(config)
        source = str(config)
    elif isinstance(config, Mapping):
        cfg = merge_config(config, source="config")
        source = "config"
    else:
        raise ConfigError(f"config must be a path to latentseg.toml or a mapping; got {type(config).__name__}.")
    if overrides:
        merged = copy.deepcopy(cfg)
        for section, values in overrides.items():
            merged.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
        cfg = merge_config(merged, source="command-line options")
    return cfg, source


def mean_impute(data: Any) -> tuple[Any, int]:
    """The data with missing values replaced by their column means, and how many there were.

    For families that cannot use missing values (k-means); the mixtures use each respondent's
    observed values instead.

    Examples
    --------
    >>> frame, n = mean_impute(pd.DataFrame({"a": [1.0, None, 3.0]}))
    >>> frame["a"].tolist(), n
    ([1.0, 2.0, 3.0], 1)
    """
    if isinstance(data, pd.DataFrame):
        num = data.select_dtypes("number")
        n_missing = int(num.isna().to_numpy().sum())
        if not n_missing:
            return data, 0
        return data.assign(**{c: num[c].fillna(num[c].mean()) for c in num.columns}), n_missing
    arr = np.asarray(data, dtype=float)
    miss = np.isnan(arr)
    if not miss.any():
        return data, 0
    return np.where(miss, np.nanmean(arr, axis=0), arr), int(miss.sum())


def prepare(
    source: str | Path,
    config: Any = None,
    *,
    kind: str = "survey",
    families: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> Prepared:
    """Read, validate, clean, score and (as configured) reduce a survey: the input of every family.

    Parameters
    ----------
    source : path
        A survey file (any format :func:`latentseg.read_survey` reads) or, with ``kind="scores"`` /
        ``"indicators"``, a table.
    config : None, path or mapping
        Settings (see :func:`resolve_config`); ``[survey]``, ``[cleaning]`` and ``[reduce]`` are used.
    kind : {"survey", "scores", "indicators"}
    families : sequence of str
        The families that will be fitted: levels are computed only when one of them takes levels.
    columns : sequence of str, optional
        Outcomes (survey) or columns (table) to keep.

    Returns
    -------
    Prepared

    Raises
    ------
    SurveyError, ConfigError
        The file, a column or a setting is wrong (the message names it).
    """
    cfg, _ = resolve_config(config)
    if kind not in INPUT_KINDS:
        raise ConfigError(f"--data-kind must be one of {', '.join(INPUT_KINDS)}; got {kind!r}.")
    names = [family(f).name for f in families]
    need_levels = any(family(f).categorical for f in names)
    need_ratings = any(family(f).on_ratings for f in names)
    if need_ratings and kind != "survey":
        on = next(f for f in names if family(f).on_ratings)
        raise ConfigError(
            f"--model {on} fits the raw importance and satisfaction ratings of a survey; --data-kind {kind} has none "
            "(use a survey, or a family fitted on scores or levels)."
        )
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"Data file '{path}' does not exist.")
    # the file's identity, taken once as it is read: a saved model is tied to exactly these bytes
    # (latentseg.prepare.provenance); a file that changes while it is read is refused
    before = _file_state(path)
    digest = file_sha256(path) if path.is_file() else None
    if kind == "survey":
        prepared = _prepare_survey(path, cfg, need_levels, columns, need_ratings)
    else:
        prepared = _prepare_table(path, cfg, kind, need_levels, columns, names)
    if _file_state(path) != before:
        raise SurveyError(f"Data file '{path}' changed while it was being read; run the command again once it is written.")
    prepared.spec.update({"file_sha256": digest, "abs_path": str(path.resolve())})
    if kind == "survey":
        prepared.spec["selected_columns"] = list(columns) if columns else None
    return prepared


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


# ------------------------------------------------------------------------------------ survey
def _prepare_survey(
    path: Path, cfg: dict[str, Any], need_levels: bool, columns: Sequence[str] | None, need_ratings: bool = False
) -> Prepared:
    from latentseg.io import read_survey
    from latentseg.prepare.cleaning import clean
    from latentseg.prepare.scoring import opportunity_landscape, opportunity_scores

    notes: list[str] = []
    raw = read_survey(path, config=cfg)
    spec = rating_spec(path, raw, cfg)
    cleaned, cleaning = clean(raw, **cfg["cleaning"])
    weight_column = (raw.columns or {}).get("weight") or (cfg["survey"]["weight_column"] or "weight")
    if cleaned.weight is not None and not cfg["survey"]["use_weights"]:
        import dataclasses

        notes.append(f"the survey weights in column '{weight_column}' are ignored (--no-weights / "
                     "[survey] use_weights = false): every respondent counts once")
        cleaned = dataclasses.replace(cleaned, weight=None)  # the landscape and every figure unweighted too
    scores = _pick_columns(opportunity_scores(cleaned), columns, str(path))
    landscape = opportunity_landscape(cleaned)
    kept = _drop_constant(scores, "opportunity score", notes)
    dropped = [str(c) for c in scores.columns if c not in kept.columns]
    if dropped:  # listed in the cleaning report beside the excluded respondents
        import dataclasses

        why = "every respondent has the same opportunity score"
        cleaning = dataclasses.replace(cleaning, dropped_outcomes={o: why for o in dropped})
    scores = numeric = kept
    reduction = None
    description = f"opportunity scores of {scores.shape[1]} outcomes"
    if cfg["reduce"]["method"] != "none":
        reduction = reduce_from_config(scores, cleaned.outcomes, cfg)
        numeric = reduction.scores
        spec["reduction"] = reduction.transform_spec()
        method = cfg["reduce"]["method"]
        description = f"{numeric.shape[1]} {method} factors of {scores.shape[1]} outcomes"
        notes.append(
            f"reduced {scores.shape[1]} outcomes to {numeric.shape[1]} {method} factor(s) explaining "
            f"{reduction.explained_variance.sum():.0%} of the variance ([reduce] in the config)"
        )
    levels = None
    if need_levels:
        levels = _levels(scores, notes)
        if reduction is not None:
            notes.append("latent class families use the outcome-level opportunity levels (not the factors)")
    ratings = None
    if need_ratings:
        from latentseg.prepare.ratings import rating_frame

        ratings = rating_frame(cleaned, [str(c) for c in scores.columns])
        if reduction is not None:
            notes.append("families fitted on ratings use the outcomes' raw ratings (not the factors)")
    weights = None
    if cleaned.weight is not None:
        weights = _weights(cleaned.weight.reindex(numeric.index), weight_column, str(path), notes)
    return Prepared(
        kind="survey",
        source=str(path),
        description=description,
        config=cfg,
        survey=cleaned,
        raw_survey=raw,
        cleaning=cleaning,
        scores=scores,
        landscape=landscape,
        reduction=reduction,
        numeric=numeric,
        levels=levels,
        ratings=ratings,
        notes=tuple(notes),
        spec=spec,
        weights=weights,
        weight_column=weight_column if weights is not None else None,
    )


def reduce_from_config(scores: pd.DataFrame, outcomes: pd.DataFrame | None, cfg: Mapping[str, Any]) -> Any:
    """The ``[reduce]`` step on opportunity scores (outcome statements label the factors)."""
    from latentseg.prepare.reduce import reduce

    r = cfg["reduce"]
    kwargs: dict[str, Any] = {"outcomes": outcomes}
    if r["method"] in ("pca", "fa"):
        kwargs["variance"] = r["variance"]
        if r["n_factors"]:
            kwargs["n_factors"] = r["n_factors"]
    return reduce(scores, r["method"], **kwargs)


def rating_spec(survey_path: str | Path, survey: Any, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What :mod:`latentseg.deliver.assign` needs to score new ratings exactly as at fit time:
    the rating columns, scales, missing codes, statements and the id column of the file."""
    from latentseg.io import read_table
    from latentseg.io.columns import find_rating_columns

    s = cfg["survey"]
    profile_cols = {str(c) for c in survey.profile.columns}
    read = survey.columns  # the reader's own record of the columns it read
    if read.get("importance"):
        outcomes = list(survey.outcome_ids)
        imp_columns, sat_columns = list(read["importance"]), list(read["satisfaction"])
        id_column = read.get("id")
    else:
        table = read_table(survey_path)
        names = [str(c) for c in table.columns]
        rc = find_rating_columns(
            [c for c in names if c not in profile_cols],
            imp_pattern=s["imp_pattern"] or None,
            sat_pattern=s["sat_pattern"] or None,
            mapping=s["columns"] or None,
            exclude=[c for c in (s["id_column"], s["duration_column"], s["weight_column"]) if c],
            source=str(survey_path),
        )
        outcomes, imp_columns, sat_columns = list(rc.outcomes), list(rc.importance), list(rc.satisfaction)
        id_column = None
        ids = {str(v) for v in survey.respondent_ids}
        for c in names:
            if c in profile_cols or c in rc.importance or c in rc.satisfaction:
                continue
            col = table[c]
            if len(col) >= len(ids) and ids <= set(col.astype(str)):
                id_column = c
                break
    return {
        "kind": "survey",
        "data_kind": "survey",
        "path": str(survey_path),
        "source": Path(survey_path).name,
        "id_column": id_column,
        "outcomes": outcomes,
        "imp_columns": imp_columns,
        "sat_columns": sat_columns,
        # choice text: the label set each block was read with, so assign maps it the same way
        "labels": dict(read.get("labels") or {}),
        "custom_labels": dict(s["labels"]),
        "imp_scale": str(survey.imp_scale),
        "sat_scale": str(survey.sat_scale),
        "missing_codes": [float(c) for c in s["missing_codes"]],
        "statements": survey.statements(),
        "job_steps": {str(k): str(v) for k, v in survey.outcomes["job_step"].items()},
        "profile_columns": sorted(profile_cols),
    }


# ------------------------------------------------------------------------------------ tables
def _prepare_table(
    path: Path, cfg: dict[str, Any], kind: str, need_levels: bool, columns: Sequence[str] | None, names: list[str]
) -> Prepared:
    from latentseg.io import read_table

    frame = read_table(path)
    ids = [c for c in frame.columns if str(c).lower() in ID_COLUMNS]
    if ids:
        id_col = ids[0]
        dup = frame[id_col].duplicated(keep=False)
        if dup.any():
            raise ConfigError(f"{path}: column '{id_col}' has repeated respondent ids {format_rows(frame.loc[dup, id_col].unique())}.")
        frame = frame.set_index(id_col)
    notes: list[str] = []
    frame, weights, weight_column = _table_weights(frame, cfg, str(path), notes)
    frame = _pick_columns(frame, columns, str(path))
    spec: dict[str, Any] = {"kind": kind, "data_kind": kind, "path": str(path), "source": path.name,
                            "columns": [str(c) for c in frame.columns]}
    if kind == "indicators":
        numeric_families = [n for n in names if not family(n).categorical]
        if numeric_families:
            raise ConfigError(
                f"--model {numeric_families[0]} needs numeric scores, but --data-kind indicators is categorical; use "
                "a family fitted on levels (lca, bayes-lca), or --data-kind scores."
            )
        return Prepared(kind=kind, source=str(path), description=f"{frame.shape[1]} indicator columns", config=cfg,
                        levels=frame, notes=tuple(notes), spec=spec, weights=weights, weight_column=weight_column)
    bad = [str(c) for c in frame.columns if not _numeric(frame[c])]
    if bad:
        raise ConfigError(
            f"{path}: score column(s) {format_rows(bad)} are not numeric; pick the score columns with "
            "--columns, or use --data-kind indicators with a latent class model."
        )
    const = [str(c) for c in frame.columns if frame[c].nunique(dropna=True) <= 1]
    if const and len(frame) > 1:
        raise ConfigError(
            f"{path}: Column(s) {format_rows(const)} have zero variance (every respondent has the same value); "
            "leave them out with --columns (a score table given by the user is not edited)."
        )
    levels = None
    if need_levels:
        levels = _levels(frame, notes)
        notes.append("latent class families fit the opportunity levels of these scores (cut at 10 and 15)")
    return Prepared(kind=kind, source=str(path), description=f"{frame.shape[1]} score columns", config=cfg,
                    scores=frame, numeric=frame, levels=levels, notes=tuple(notes), spec=spec, weights=weights,
                    weight_column=weight_column)


# ------------------------------------------------------------------------------------ weights
def weights_sentence(info: Mapping[str, Any] | None, what: str = "Shares", quote: str = "`") -> str:
    """The sentence every output uses to say its figures are weighted (empty when unweighted).

    Parameters
    ----------
    info : mapping or None
        :meth:`Prepared.weights_info` (also saved with a model as ``meta["weights"]``).
    what : str
        What is weighted.
    quote : str, default "`"
        Put around the column's name (``"'"`` outside Markdown).

    Examples
    --------
    >>> weights_sentence({"column": "weight", "effective_n": 512.3, "n": 600})
    'Shares are weighted by `weight` (Kish effective n 512 of 600 respondents).'
    >>> weights_sentence(None)
    ''
    """
    if not info:
        return ""
    n = info.get("n")
    of = f" of {int(n)} respondents" if n else ""
    column = f"{quote}{info.get('column') or 'weight'}{quote}"
    return f"{what} are weighted by {column} (Kish effective n {float(info['effective_n']):.0f}{of})."


def _weights(weight: pd.Series, column: str, source: str, notes: list[str]) -> pd.Series:
    """The respondents' weights checked and normalised to mean 1 (:func:`latentseg.io.validate.survey_weights`),
    with a note saying so."""
    from latentseg._stats import effective_n
    from latentseg.io.validate import survey_weights

    w = survey_weights(weight, column, source)
    notes.append(
        f"weighted by column '{column}' (normalised to mean 1 over the {len(w)} respondents that reach the model; "
        f"Kish effective n {effective_n(w.to_numpy()):.0f} of {len(w)})"
    )
    return w


def _table_weights(frame: pd.DataFrame, cfg: Mapping[str, Any], source: str,
                   notes: list[str]) -> tuple[pd.DataFrame, pd.Series | None, str | None]:
    """(the table without its weight column, the weights or None, the column or None)."""
    from latentseg.io.readers import find_weight_column

    col = find_weight_column([str(c) for c in frame.columns], cfg["survey"]["weight_column"] or None, source)
    if col is None:
        return frame, None, None
    rest = frame.drop(columns=[col])
    if not cfg["survey"]["use_weights"]:
        notes.append(f"column '{col}' holds survey weights, ignored (--no-weights / [survey] use_weights = false)")
        return rest, None, None
    return rest, _weights(frame[col], col, source, notes), col


# ------------------------------------------------------------------------------------ helpers
def _numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col.dtype)) and not pd.api.types.is_bool_dtype(col.dtype)


def _pick_columns(frame: pd.DataFrame, columns: Sequence[str] | None, source: str) -> pd.DataFrame:
    if not columns:
        return frame
    repeated = sorted({c for c in columns if list(columns).count(c) > 1})
    if repeated:
        raise ConfigError(f"{source}: --columns names column(s) {format_rows(repeated)} more than once.")
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        have = ", ".join(map(str, list(frame.columns)[:8])) + (" ..." if frame.shape[1] > 8 else "")
        raise ConfigError(f"{source}: --columns names unknown column(s) {format_rows(unknown)}; the table has {have}.")
    return frame[list(columns)]


def _drop_constant(frame: pd.DataFrame, what: str, notes: list[str]) -> pd.DataFrame:
    """Leave out survey outcomes on which every respondent has the same value, and say so.

    Such an outcome cannot separate segments: for a latent class model it contributes the same
    factor (probability 1) to every segment, and for a Gaussian mixture its variance would be 0.
    """
    from latentseg.prepare.encoding import drop_constant_columns

    frame, const = drop_constant_columns(frame)
    if const:
        notes.append(f"left out outcome(s) {format_rows(const)}: every respondent has the same {what} there")
    return frame


def _levels(scores: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Opportunity levels for the families fitted on levels, without outcomes that have one level."""
    from latentseg.prepare.encoding import opportunity_levels

    return _drop_constant(opportunity_levels(scores), "opportunity level", notes)
