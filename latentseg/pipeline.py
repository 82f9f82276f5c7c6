"""The whole playbook as one library function: :func:`run_pipeline` (the ``latentseg run`` command).

Steps, in order (every choice comes from the configuration; see ``docs/config.md``):

1. read and validate the survey (``[survey]``);
2. clean it, with a report of every excluded respondent (``[cleaning]``);
3. opportunity scores per respondent and outcome, and the aggregate opportunity landscape;
4. optionally reduce the scores to factors or job-step composites (``[reduce]``);
5. sweep model families and k (``[select]``), each finished fit checkpointed in
   ``<models_dir>/<name>/checkpoints/`` so an interrupted run resumes where it stopped;
6. keep the chosen model: the configured family (``[model] model``) at the recommended k;
7. profile and name the segments in outcome terms, overlay the profile columns, fit the finder
   model, compare distal outcomes, size the segments (``[profile]``, ``[size]``);
8. compare k-means with latent class at the chosen k;
9. the segment map;
10. save the model (``<models_dir>/<name>/``: ``result.nc`` + ``model.json``) with everything the
    report and ``latentseg assign`` need;
11. write the report (``[report] output``).

Warnings raised along the way (inferred scales, small samples, convergence) are collected, kept
with the model and shown in the report's appendix; they are returned, not re-raised.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, FitError, LatentsegError, LatentsegWarning

__all__ = ["run_pipeline", "PipelineResult", "STEPS", "default_name"]

#: Step names reported to the progress callback, in order.
STEPS = (
    "read",
    "clean",
    "score",
    "reduce",
    "select",
    "fit",
    "profile",
    "overlay",
    "finder",
    "distal",
    "size",
    "compare",
    "segment map",
    "save",
    "report",
)

#: ``progress(step, done, total, detail)``: ``step`` one of :data:`STEPS`; ``done``/``total``
#: count fits within "select" (``None`` elsewhere).
ProgressCallback = Callable[[str, "int | None", "int | None", str], None]

_CATEGORICAL = ("lca", "bayes-lca")
_BAYES = ("bayes-gmm", "bayes-lca")


@dataclass(frozen=True, eq=False)
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes
    ----------
    name : str
        The model's name (its folder under ``models_dir``).
    model_dir : Path
    report : Path or None
        The HTML report (``None`` when ``report=False``).
    saved : SavedModel
        The saved model (``saved.result`` is the chosen segmentation, with segment names).
    selection : Selection
    model : str
        The chosen family.
    k : int
    cleaning : CleaningReport
    warnings : tuple of str
        Every warning raised during the run.
    seconds : float
    steps : dict of str to float
        Seconds per step.
    """

    name: str
    model_dir: Path
    report: Path | None
    saved: Any
    selection: Any
    model: str
    k: int
    cleaning: Any
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    why: str = ""

    @property
    def result(self) -> Any:
        """The chosen :class:`~latentseg.SegmentationResult`."""
        return self.saved.result

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (what ``latentseg run --json`` prints)."""
        from latentseg.io.jsonsafe import json_safe

        d = self.result.to_dict()
        sizing = self.saved.meta.get("sizing") or {}
        seg_sizes = {int(s.get("segment", i + 1)): s for i, s in enumerate(sizing.get("segments", []))}
        segments = []
        for s in d["segments"]:
            entry = {key: s[key] for key in ("id", "label", "share", "share_lower", "share_upper", "interval")}
            size = seg_sizes.get(int(s["id"]), {})
            for key in ("count", "count_lower", "count_upper", "revenue", "flags"):
                if key in size:
                    entry[key] = size[key]
            segments.append(entry)
        return json_safe(
            {
                "name": self.name,
                "model_dir": str(self.model_dir),
                "model_id": self.saved.model_id,
                "report": None if self.report is None else str(self.report),
                "model": self.model,
                "k": self.k,
                "n": d["n"],
                "why": self.why,
                "recommended_k": self.selection.recommended_k,
                "rule": self.selection.rule,
                "converged": d["converged"],
                "bic": d["bic"],
                "segments": segments,
                "cleaning": {
                    "n_in": self.cleaning.n_in,
                    "n_out": self.cleaning.n_out,
                    "excluded": self.cleaning.n_excluded,
                    "counts": dict(self.cleaning.counts),
                },
                "warnings": list(self.warnings),
                "seconds": round(self.seconds, 2),
                "steps": {k: round(v, 2) for k, v in self.steps.items()},
            }
        )


def default_name(survey_path: str | Path) -> str:
    """A model name from a survey file name: ``"Project Survey.csv"`` -> ``"project-survey"``.

    Examples
    --------
    >>> default_name("data/Project Survey 2026.csv")
    'project-survey-2026'
    """
    stem = Path(survey_path).name.split(".")[0]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower()
    return slug or "model"


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name or ""):
        raise ConfigError(
            f"Model name {name!r} must start with a letter or digit and use only letters, digits, '.', '_' and '-'."
        )
    return name


def _resolve_config(config: Any, overrides: Mapping[str, Mapping[str, Any]] | None) -> tuple[dict[str, Any], str]:
    """(complete config, where it came from) with ``overrides`` applied and checked."""
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


def _fit_options(cfg: Mapping[str, Any], models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-family engine options from ``[model]``."""
    m = cfg["model"]
    opts: dict[str, dict[str, Any]] = {}
    for model in models:
        if model == "gmm":
            opts[model] = {"covariance": m["covariance"], "n_init": m["n_init"]}
        elif model in ("kmeans", "lca"):
            opts[model] = {"n_init": m["n_init"]}
        elif model in _BAYES:
            opts[model] = {"draws": m["draws"], "tune": m["tune"], "chains": m["chains"], "sampler": m["sampler"]}
            if model == "bayes-gmm":
                from latentseg.models.bayes.gmm import OPTIONS
                from latentseg.models.gmm import resolve_covariance

                # any spelling the EM engine takes (VVI, diag, full ...), as an mclust name; bayes-gmm
                # has VVI, EEI and VVV (and auto); for the others (EII, VII, EEE) it keeps its default, VVI
                raw = str(m["covariance"]).strip()
                name = "auto" if raw.lower() == "auto" else resolve_covariance(raw, 2)
                if name == "auto" or name in OPTIONS:
                    opts[model]["covariance"] = OPTIONS.get(name, name)
    return opts


def _rating_spec(survey_path: Path, survey: Any, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What :mod:`latentseg.deliver.assign` needs to score new ratings exactly as at fit time."""
    from latentseg.io import read_table
    from latentseg.io.columns import find_rating_columns

    s = cfg["survey"]
    table = read_table(survey_path)
    names = [str(c) for c in table.columns]
    profile_cols = {str(c) for c in survey.profile.columns}
    rc = find_rating_columns(
        [c for c in names if c not in profile_cols],
        imp_pattern=s["imp_pattern"] or None,
        sat_pattern=s["sat_pattern"] or None,
        mapping=s["columns"] or None,
        exclude=[c for c in (s["id_column"], s["duration_column"], s["weight_column"]) if c],
        source=str(survey_path),
    )
    id_column = None
    ids = [str(v) for v in survey.respondent_ids]
    for c in names:
        if c in profile_cols or c in rc.importance or c in rc.satisfaction:
            continue
        col = table[c]
        if len(col) >= len(ids) and set(ids) <= set(col.astype(str)):
            id_column = c
            break
    return {
        "kind": "survey",
        "data_kind": "survey",
        "path": str(survey_path),
        "source": Path(survey_path).name,
        "id_column": id_column,
        "outcomes": list(rc.outcomes),
        "imp_columns": list(rc.importance),
        "sat_columns": list(rc.satisfaction),
        "imp_scale": str(survey.imp_scale),
        "sat_scale": str(survey.sat_scale),
        "missing_codes": [float(c) for c in s["missing_codes"]],
        "statements": survey.statements(),
        "job_steps": {str(k): str(v) for k, v in survey.outcomes["job_step"].items()},
        "profile_columns": sorted(profile_cols),
    }


def _choose(selection: Any, preferred: str, k: int, data: Any, categorical: Any, seed: int | None,
            opts: Mapping[str, Mapping[str, Any]]) -> tuple[Any, str, str]:
    """(result, family, why) at ``k``: the configured family if it has a good fit, else the first
    family in sweep order whose own rule recommends ``k``."""
    from latentseg.models import fit

    models = list(selection.settings.get("models", []))
    table = selection.table

    def usable(model: str) -> Any:
        rows = table[(table["model"] == model) & (table["k"] == k)]
        if rows.empty or rows.iloc[0]["status"] != "ok":
            return None
        try:
            res = selection.result(model, k)
        except KeyError:
            return None
        if res is None:  # resumed from a checkpoint without the full result: refit (same seed)
            fam_data = categorical if model in _CATEGORICAL else data
            res = fit(fam_data, model, k, random_seed=seed, **opts.get(model, {}))
        return res

    if preferred in models:
        res = usable(preferred)
        if res is not None:
            return res, preferred, f"{preferred} (the configured model family) at the recommended k = {k}"
    else:
        fam_data = categorical if preferred in _CATEGORICAL else data
        try:
            res = fit(fam_data, preferred, k, random_seed=seed, **opts.get(preferred, {}))
            return res, preferred, f"{preferred} (the configured model family, fitted at the recommended k = {k})"
        except LatentsegError as exc:
            failed = str(exc)
        else:  # pragma: no cover
            failed = ""
    for model in models:
        if selection.per_family.get(model, {}).get("recommended_k") == k:
            res = usable(model)
            if res is not None:
                return res, model, (
                    f"{model} at the recommended k = {k} ({preferred}, the configured family, has no usable fit at k = {k})"
                )
    for model in models:
        res = usable(model)
        if res is not None:
            return res, model, f"{model} at k = {k} (the first family with a usable fit at that k)"
    raise FitError(f"No model family has a usable fit at k = {k}; see the selection table for each fit's error.")


def _dimensions(profiles: Any, outcomes: pd.DataFrame, result: Any, reduction: Any, wanted: Sequence[str]) -> tuple[pd.DataFrame, list[str], str]:
    """Per-segment coordinates on candidate dimensions (job steps, factors) and the two chosen.

    Job-step dimensions are the mean segment opportunity over the step's outcomes; factor
    dimensions are the segment centers on the factors. Without ``wanted``, the two dimensions
    along which segment means vary most (population-weighted variance) are chosen.
    """
    means = profiles.means  # (k, m), index segment
    cols: dict[str, np.ndarray] = {}
    steps = outcomes["job_step"].astype(str)
    for step in dict.fromkeys(steps):
        if not step:
            continue
        ids = [o for o in steps.index if steps[o] == step and o in means.columns]
        if ids:
            cols[step] = means[ids].mean(axis=1).to_numpy()
    if reduction is not None:
        for j, name in enumerate(result.feature_names):
            cols[str(name)] = np.asarray(result.centers)[:, j]
    if len(cols) < 2:  # no job steps: single outcomes
        for o in means.columns:
            cols[str(outcomes.loc[o, "statement"]) if o in outcomes.index else str(o)] = means[o].to_numpy()
    frame = pd.DataFrame(cols, index=means.index)
    if wanted:
        missing = [w for w in wanted if w not in frame.columns]
        if missing:
            raise ConfigError(
                f"report.dimensions names {missing[0]!r}, which is neither a job step nor a factor; "
                f"choose two of {list(frame.columns)[:10]}."
            )
        return frame, list(wanted), "as configured ([report] dimensions)"
    w = np.asarray(result.shares, dtype=float)
    spread = {c: float(np.sum(w * (frame[c] - np.sum(w * frame[c])) ** 2)) for c in frame.columns}
    chosen = sorted(spread, key=lambda c: -spread[c])[:2]
    return frame, chosen, "the two dimensions along which the segments differ most (largest between-segment variance)"


def run_pipeline(
    survey_path: str | Path,
    config: Any = None,
    *,
    models: Sequence[str] | None = None,
    k: Sequence[int] | None = None,
    reduce: str | None = None,
    random_seed: int | None = None,
    name: str | None = None,
    output: str | Path | None = None,
    models_dir: str | Path = "models",
    report: bool = True,
    progress: ProgressCallback | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> PipelineResult:
    """Run the playbook on a survey file: validate, clean, score, select, fit, profile, size, save, report.

    Parameters
    ----------
    survey_path : path
        The survey (CSV, Parquet, Excel, SPSS; see :func:`latentseg.read_survey`).
    config : path, mapping or None
        ``latentseg.toml`` (path), settings as a mapping, or ``None`` for ``./latentseg.toml``
        when present, else the defaults.
    models : sequence of str, optional
        Families to compare (overrides ``[select] models``).
    k : sequence of int, optional
        The k values to try (overrides ``[select] k_min``/``k_max``; one value fixes k).
    reduce : {"none", "pca", "fa", "jobstep"}, optional
        Overrides ``[reduce] method``.
    random_seed : int, optional
        Overrides ``[model] random_seed``.
    name : str, optional
        Model name (folder under ``models_dir``); default from the survey file name.
    output : path, optional
        Report folder (overrides ``[report] output``).
    models_dir : path, default "models"
    report : bool, default True
        Write the HTML report.
    progress : callable, optional
        ``progress(step, done, total, detail)``; see :data:`STEPS`.
    overrides : mapping, optional
        Any other settings, ``{section: {key: value}}``, applied over the file.

    Returns
    -------
    PipelineResult

    Raises
    ------
    SurveyError, ConfigError, FitError
        Bad input, bad settings, or no usable segmentation (one clear message each).

    Examples
    --------
    >>> res = run_pipeline("examples/project_survey.csv", "examples/latentseg.toml",
    ...                    models=["gmm"], k=[4], models_dir=tempfile.mkdtemp())  # doctest: +SKIP
    >>> res.k, res.result.segment_labels  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    steps: dict[str, float] = {}
    notes: list[str] = []
    survey_path = Path(survey_path)

    def tick(step: str, done: int | None = None, total: int | None = None, detail: str = "") -> None:
        if progress is not None:
            progress(step, done, total, detail)

    class _Timer:
        def __init__(self, step: str) -> None:
            self.step = step

        def __enter__(self) -> None:
            self.t = time.perf_counter()
            tick(self.step)

        def __exit__(self, *exc: Any) -> None:
            steps[self.step] = steps.get(self.step, 0.0) + time.perf_counter() - self.t

    over: dict[str, dict[str, Any]] = {s: dict(v) for s, v in (overrides or {}).items()}
    if models is not None:
        over.setdefault("select", {})["models"] = list(models)
    if k is not None:
        ks = sorted({int(x) for x in k})
        if not ks:
            raise ConfigError("The k range is empty; give at least one k, e.g. 3..7.")
        over.setdefault("select", {}).update({"k_min": ks[0], "k_max": ks[-1]})
    if reduce is not None:
        over.setdefault("reduce", {})["method"] = reduce
    if random_seed is not None:
        over.setdefault("model", {})["random_seed"] = int(random_seed)
    if output is not None:
        over.setdefault("report", {})["output"] = str(output)
    cfg, cfg_source = _resolve_config(config, over)
    ks = list(range(cfg["select"]["k_min"], cfg["select"]["k_max"] + 1)) if k is None else sorted({int(x) for x in k})
    seed = cfg["model"]["random_seed"]
    name = _check_name(name or default_name(survey_path))
    model_dir = Path(models_dir) / name

    caught: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatentsegWarning)
        # ---------------------------------------------------------------- 1-3 read, clean, score
        from latentseg.prepare.cleaning import clean
        from latentseg.io import read_survey
        from latentseg.prepare.scoring import opportunity_landscape, opportunity_scores

        with _Timer("read"):
            survey = read_survey(survey_path, config=cfg)
            spec = _rating_spec(survey_path, survey, cfg)
        with _Timer("clean"):
            c = cfg["cleaning"]
            clean_survey, cleaning = clean(
                survey,
                straightliners=c["straightliners"],
                speeder_fraction=c["speeder_fraction"],
                max_unrated=c["max_unrated"],
                min_respondents=c["min_respondents"],
            )
        with _Timer("score"):
            scores = opportunity_scores(clean_survey)
            landscape = opportunity_landscape(clean_survey)

        # ---------------------------------------------------------------- 4 reduce
        reduction = None
        data = scores
        method = cfg["reduce"]["method"]
        if method != "none":
            with _Timer("reduce"):
                reduction, data, spec["reduction"] = _reduce(scores, clean_survey, cfg)

        # ---------------------------------------------------------------- 5 select
        from latentseg.config import select_options
        from latentseg.choose.selection import select

        sweep_models = list(cfg["select"]["models"])
        opts = _fit_options(cfg, sorted(set(sweep_models) | {cfg["model"]["model"], "kmeans", "lca"}))
        categorical = _levels(scores, notes) if any(m in _CATEGORICAL for m in sweep_models) else None
        if categorical is not None and reduction is not None:
            notes.append("latent class families use the outcome-level opportunity levels (not the factors)")
        with _Timer("select"):
            selection = select(
                data,
                models=sweep_models,
                k=ks,
                random_seed=seed,
                **select_options(cfg),
                fit_options={m: o for m, o in opts.items() if m in sweep_models},
                progress=lambda done, total, desc: tick("select", done, total, desc),
                checkpoint_dir=model_dir / "checkpoints",
                categorical_data=categorical,
            )

        # ---------------------------------------------------------------- 6 the chosen model
        with _Timer("fit"):
            chosen_k = selection.recommended_k
            if chosen_k is None:
                if len(ks) == 1:
                    chosen_k = ks[0]
                    notes.append(f"k = {chosen_k} was fixed on the command line although no fit there is admissible")
                else:
                    raise FitError(f"No admissible segmentation for k in {ks[0]}..{ks[-1]}: {selection.rule}")
            if categorical is None and cfg["model"]["model"] in _CATEGORICAL:
                categorical = _levels(scores, notes)
            result, family, why = _choose(selection, cfg["model"]["model"], int(chosen_k), data, categorical, seed, opts)
            if family in _CATEGORICAL:
                spec["transform"] = "opportunity_levels"

        # ---------------------------------------------------------------- 7 decisions
        from latentseg.decide.profiling import profile as make_profiles

        with _Timer("profile"):
            names = {int(key): val for key, val in cfg["profile"]["names"].items() if str(key).isdigit()}
            profiles = make_profiles(result, scores, clean_survey.outcomes, top=cfg["profile"]["top_outcomes"], names=names or None)
            result = profiles.apply(result)

        prof_df = clean_survey.profile
        overlay_cols = [c for c in (cfg["profile"]["overlay"] or list(prof_df.columns)) if c in prof_df.columns]
        missing_overlay = [c for c in cfg["profile"]["overlay"] if c not in prof_df.columns]
        if missing_overlay:
            raise ConfigError(
                f"profile.overlay names column(s) {missing_overlay} that the survey's profile does not have; "
                f"it has {list(prof_df.columns)}."
            )
        overlays = None
        with _Timer("overlay"):
            if overlay_cols:
                from latentseg.decide.overlay import overlay

                overlays = overlay(result, prof_df, columns=overlay_cols, random_seed=seed)
        finder_model = None
        with _Timer("finder"):
            if overlay_cols:
                from latentseg.decide.finder import finder

                try:
                    finder_model = finder(result, prof_df[overlay_cols], random_seed=seed)
                except LatentsegError as exc:
                    notes.append(f"no finder model: {exc}")
        distal_result = None
        with _Timer("distal"):
            distal_cols = list(cfg["profile"]["distal"])
            if distal_cols:
                bad = [col for col in distal_cols if col not in prof_df.columns]
                if bad:
                    raise ConfigError(f"profile.distal names column(s) {bad} that the survey's profile does not have.")
                from latentseg.decide.distal import distal

                distal_result = distal(result, prof_df, distal_cols)
        with _Timer("size"):
            from latentseg.decide.sizing import size_segments

            sz = cfg["size"]
            sizing = size_segments(
                result,
                tam=float(sz["tam"]) if sz["tam"] else None,
                arpu=float(sz["arpu"]) if sz["arpu"] else None,
                arpu_column=sz["arpu_column"] or None,
                data=prof_df if sz["arpu_column"] else None,
                profiles=profiles,
            )

        # ---------------------------------------------------------------- 8 k-means vs latent class
        comparison = None
        with _Timer("compare"):
            comparison, cmp_note = _comparison(selection, result, family, int(chosen_k), data, categorical, seed, opts)
            if cmp_note:
                notes.append(cmp_note)

        # ---------------------------------------------------------------- 9 segment map
        with _Timer("segment map"):
            dims_frame, dims, dims_why = _dimensions(profiles, clean_survey.outcomes, result, reduction, cfg["report"]["dimensions"])
            seg_map, current_col = _segment_map(
                result, profiles, sizing, overlays, prof_df, cfg["profile"]["current_solution"]
            )
            if current_col:
                notes.append(f"current solution per segment from the profile column '{current_col}'")

        # ---------------------------------------------------------------- 10 save
        from latentseg.deliver.artifacts import save_model

        run_warnings = tuple(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, LatentsegWarning)))

    title = cfg["report"]["name"] or f"Segments of {survey_path.name}"
    meta: dict[str, Any] = {
        "data": spec,
        "survey_notes": list(survey.notes),
        "warnings": list(run_warnings),
        "notes": notes,
        "cleaning": cleaning.to_dict(),
        "selection": {
            "recommended_k": selection.recommended_k,
            "rule": selection.rule,
            "per_family": selection.per_family,
            "settings": selection.settings,
            "notes": list(selection.notes),
            "chosen_model": family,
            "chosen_k": int(chosen_k),
            "why": why,
        },
        "comparison": None if comparison is None else comparison.to_dict(),
        "profile": profiles.to_dict(),
        "overlay": None if overlays is None else overlays.to_dict(),
        "finder": finder_model,
        "finder_summary": None if finder_model is None else finder_model.summary(),
        "distal": None if distal_result is None else distal_result.to_dict(),
        "sizing": sizing.to_dict(),
        "segment_map": seg_map.to_dict(),
        "report": {"title": title, "dimensions": dims, "dimensions_why": dims_why},
        "run": {"survey": str(survey_path), "config": cfg_source, "models_dir": str(models_dir)},
    }
    tables: dict[str, pd.DataFrame] = {
        "selection": selection.table,
        "landscape": landscape,
        "outcomes": clean_survey.outcomes,
        "profile_means": profiles.means,
        "profile_effects": profiles.effects,
        "overall": profiles.overall.to_frame("overall"),
        "sizing": sizing.table,
        "dimensions": dims_frame,
        "segment_map": seg_map.to_frame(),
        "cleaning_excluded": cleaning.excluded,
    }
    if overlays is not None:
        tables["overlay_summary"] = overlays.summary
        for col, ov in overlays.columns.items():
            if ov.row_pct is not None:
                tables[f"overlay_pct::{col}"] = ov.row_pct
    if comparison is not None:
        tables["comparison_crosstab"] = comparison.crosstab
        tables["comparison_shares"] = comparison.shares
    if distal_result is not None:
        tables["distal"] = distal_result.table
    if reduction is not None:
        tables["reduction_loadings"] = pd.DataFrame(reduction.loadings)
        meta["reduction"] = reduction.to_dict()
    with _Timer("save"):
        saved = save_model(model_dir, result, config=cfg, meta=meta, tables=tables, name=name)

    report_path = None
    if report:
        with _Timer("report"):
            from latentseg.deliver.report import write_report

            report_path = write_report(saved, Path(cfg["report"]["output"]) / "report.html")
    return PipelineResult(
        name=name,
        model_dir=model_dir,
        report=report_path,
        saved=saved,
        selection=selection,
        model=family,
        k=int(chosen_k),
        cleaning=cleaning,
        warnings=run_warnings,
        seconds=time.perf_counter() - t_start,
        steps=steps,
        why=why,
    )


def _reduce(scores: pd.DataFrame, survey: Any, cfg: Mapping[str, Any]) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    """Run the configured reduction; return it, the clustering input and its linear map for assign."""
    from latentseg.prepare.reduce import reduce as do_reduce

    r = cfg["reduce"]
    kwargs: dict[str, Any] = {}
    if r["method"] in ("pca", "fa"):
        kwargs["variance"] = r["variance"]
        if r["n_factors"]:
            kwargs["n_factors"] = r["n_factors"]
    if r["method"] == "jobstep":
        kwargs["outcomes"] = survey.outcomes
    if r["method"] in ("pca", "fa"):
        kwargs["outcomes"] = survey.outcomes  # statements label the factors
    red = do_reduce(scores, r["method"], **kwargs)
    return red, red.scores, red.transform_spec()


def _comparison(selection: Any, result: Any, family: str, k: int, data: Any, categorical: Any, seed: int | None,
                opts: Mapping[str, Mapping[str, Any]]) -> tuple[Any, str]:
    """k-means versus latent class at the chosen k (fitting either if the sweep did not)."""
    from latentseg.choose.comparison import compare
    from latentseg.models import fit

    def get(model: str) -> Any:
        if family == model:
            return result
        try:
            res = selection.result(model, k)
        except KeyError:
            res = None
        if res is None:
            fam_data = categorical if model in _CATEGORICAL else data
            if model == "kmeans" and isinstance(data, pd.DataFrame) and data.isna().any().any():
                fam_data = data.fillna(data.mean())
            res = fit(fam_data, model, k, random_seed=seed, **opts.get(model, {}))
        return res

    try:
        km = get("kmeans")
    except LatentsegError as exc:
        return None, f"no k-means comparison: {exc}"
    try:
        lc = get("lca")
        return compare(km, lc, names=("k-means", "latent class")), ""
    except LatentsegError as exc:
        if family == "kmeans":
            return None, f"no latent class comparison: {exc}"
        note = f"latent class could not be fitted at k = {k} ({exc}); k-means is compared with the chosen {family} instead"
        return compare(km, result, names=("k-means", family)), note


def _segment_map(
    result: Any, profiles: Any, sizing: Any, overlays: Any, profile_df: pd.DataFrame, configured: str = ""
) -> tuple[Any, str | None]:
    """The segment map (playbook step 9); the current solution comes from a profile column whose
    name says so (``current_tool``, ``current_solution`` ...), when the survey has one."""
    from latentseg.decide.segmap import find_current_solution_column, segment_map

    current = find_current_solution_column(profile_df, configured or None)
    smap = segment_map(
        result,
        profiles=profiles,
        overlays=overlays,
        sizing=sizing,
        current_solution_column=current,
        profile_df=profile_df if current else None,
    )
    return smap, current


def _levels(scores: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Opportunity levels for the latent class families, without outcomes that have one level."""
    from latentseg.prepare.encoding import drop_constant_columns, opportunity_levels

    levels, dropped = drop_constant_columns(opportunity_levels(scores))
    if dropped:
        notes.append(
            f"latent class families leave out {', '.join(dropped)}: every respondent has the same opportunity level there"
        )
    return levels
