"""The whole playbook as one library function: :func:`run_pipeline` (the ``latentseg run`` command).

A thin prepare -> choose -> decide -> deliver (every choice comes from the configuration; see
``docs/config.md``):

1. **prepare** (:func:`latentseg.prepare.core.prepare`): read, validate, clean (with a report of
   every excluded respondent), opportunity scores, optionally reduced (``[survey]``,
   ``[cleaning]``, ``[reduce]``); the survey weights, when it has a weight column (normalised to
   mean 1), weight every fit below (``sample_weight=``) and every figure of the report;
2. **choose**: sweep model families and k (``[select]``, :func:`latentseg.choose.selection.select`),
   each finished fit checkpointed in ``<models_dir>/<name>/checkpoints/`` so an interrupted run
   resumes where it stopped; keep the chosen family (``--model``, else ``[model] model``) at the
   recommended k (:func:`latentseg.choose.keep.keep`); compare k-means with latent class at that k;
3. **decide** (:func:`latentseg.decide.core.decide`): profile and name the segments, overlays,
   finder, distal outcomes, sizes, the segment map (``[profile]``, ``[size]``);
4. **deliver**: save the model (``<models_dir>/<name>/``: ``result.nc`` + ``model.json``) with
   everything the report and ``latentseg assign`` need, and write the report (``[report] output``).

Before any work the run checks its paths (:func:`latentseg.io.files.check_outputs`: no output
over the survey, the config or the outcome statements), refuses to replace a model already saved
under that name unless ``force`` (a folder with only checkpoints is an interrupted run and
resumes), and takes the model's lock (``<models_dir>/.<name>.lock``), held until the model and
the report are written: a second process with the same name is refused (or waits, ``wait``).

Warnings raised along the way (inferred scales, small samples, convergence) are collected, kept
with the model and shown in the report's appendix; they are returned, not re-raised.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from latentseg.errors import ConfigError, FitError, LatentsegWarning
from latentseg.models.families import BASELINE, LATENT_CLASS, family

__all__ = ["run_pipeline", "PipelineResult", "STEPS", "default_name", "kept_family", "run_overrides"]

#: Step names reported to the progress callback, in order.
STEPS = ("prepare", "select", "fit", "decide", "compare", "save", "report")

#: ``progress(step, done, total, detail)``: ``step`` one of :data:`STEPS`; ``done``/``total``
#: count fits within "select" (``None`` elsewhere), where ``detail`` names the fit that starts
#: (``"bayes-gmm k=5 (running)"``, ``done`` fits finished before it) or ends (``"... (done)"``,
#: ``(loaded)``, ``(failed)``, ``(skipped: why)``, ``(stopped: why)``, ``done`` counting it).
ProgressCallback = Callable[[str, "int | None", "int | None", str], None]


@dataclass(frozen=True, eq=False, repr=False)
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

    def __repr__(self) -> str:
        r = self.result
        shares = ", ".join(f"{s:.0%}" for s in r.shares)
        lines = [
            f"<PipelineResult {self.name!r}: {self.model} k={self.k} n={r.n} ({shares}); {self.seconds:.1f} s>",
            f"  why: {self.why}",
            f"  model: {self.model_dir}" + (f"; report: {self.report}" if self.report is not None else ""),
        ]
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s), e.g. {self.warnings[0][:120]}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The chosen segmentation's table (see :meth:`SegmentationResult._repr_html_`) under a one-line header."""
        import html

        head = html.escape(f"{self.name}: {self.model} at k = {self.k} ({self.why})")
        return f"<div><p><b>{head}</b></p>{self.result._repr_html_()}</div>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (what ``latentseg run --json`` prints)."""
        from latentseg.decide.covariates import covariates_json
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
            if "opportunity" in s:  # families fitted on ratings: the segment opportunity per outcome
                entry["opportunity"] = s["opportunity"]
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
                "weights": self.saved.meta.get("weights"),
                "segments": segments,
                "cleaning": {
                    "n_in": self.cleaning.n_in,
                    "n_out": self.cleaning.n_out,
                    "excluded": self.cleaning.n_excluded,
                    "counts": dict(self.cleaning.counts),
                },
                **({"covariates": cov} if (cov := covariates_json(self.result)) is not None else {}),
                **({"covariate_finder": cf} if (cf := self.saved.meta.get("covariate_finder")) else {}),
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
    from latentseg.deliver.artifacts import MODEL_NAME

    if not MODEL_NAME.fullmatch(name or ""):
        raise ConfigError(
            f"Model name {name!r} must start with a letter or digit and use only letters, digits, '.', '_' and '-'."
        )
    return name


def kept_family(cfg: Mapping[str, Any], model: str | None, models: Sequence[str] | None) -> str:
    """The family ``run`` keeps: ``model`` when given; else the one family ``models`` names when it
    names one; else ``[model] model``.

    Examples
    --------
    >>> from latentseg.config import merge_config
    >>> cfg = merge_config(None)
    >>> kept_family(cfg, None, None), kept_family(cfg, None, ["bayes-gmm"]), kept_family(cfg, "lca", ["gmm"])
    ('gmm', 'bayes-gmm', 'lca')
    """
    if model is not None:
        return family(model).name
    if models is not None and len(models) == 1:
        return family(models[0]).name
    return family(cfg["model"]["model"]).name


def run_overrides(
    *,
    models: Sequence[str] | None = None,
    model: str | None = None,
    k: Sequence[int] | None = None,
    reduce: str | None = None,
    random_seed: int | None = None,
    output: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    all_k: bool | None = None,
    weights: str | bool | None = None,
) -> dict[str, dict[str, Any]]:
    """The ``run`` options as config overrides ``{section: {key: value}}``.

    ``weights``: a column name (``[survey] weight_column``), ``False`` (``[survey] use_weights =
    false``) or ``None`` (as configured)."""
    over: dict[str, dict[str, Any]] = {s: dict(v) for s, v in (overrides or {}).items()}
    if weights is False:
        over.setdefault("survey", {})["use_weights"] = False
    elif isinstance(weights, str):
        over.setdefault("survey", {}).update({"weight_column": weights, "use_weights": True})
    elif weights is not None:
        raise ConfigError(f"weights must be a column name, False or None; got {weights!r}.")
    if all_k is not None:
        over.setdefault("select", {})["all_k"] = bool(all_k)
    if models is not None:
        over.setdefault("select", {})["models"] = list(models)
    if model is not None:
        over.setdefault("model", {})["model"] = model
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
    return over


class _Steps:
    """Times each step and reports it to the progress callback."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    def tick(self, step: str, done: int | None = None, total: int | None = None, detail: str = "") -> None:
        if self.progress is not None:
            self.progress(step, done, total, detail)

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        t = time.perf_counter()
        self.tick(step)
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t


def run_pipeline(
    survey_path: str | Path,
    config: Any = None,
    *,
    models: Sequence[str] | None = None,
    model: str | None = None,
    k: Sequence[int] | None = None,
    reduce: str | None = None,
    random_seed: int | None = None,
    name: str | None = None,
    output: str | Path | None = None,
    models_dir: str | Path = "models",
    report: bool = True,
    progress: ProgressCallback | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    wait: bool = False,
    on_wait: Callable[[str], Any] | None = None,
    all_k: bool | None = None,
    weights: str | bool | None = None,
) -> PipelineResult:
    """Run the playbook on a survey file: prepare, choose, decide, save, report.

    Parameters
    ----------
    survey_path : path
        The survey (CSV, Parquet, Excel, SPSS; see :func:`latentseg.read_survey`).
    config : path, mapping or None
        ``latentseg.toml`` (path), settings as a mapping, or ``None`` for ``./latentseg.toml``
        when present, else the defaults.
    models : sequence of str, optional
        Families to compare (overrides ``[select] models``).
    model : str, optional
        The family to keep (overrides ``[model] model``); without it, a ``models`` naming one
        family keeps that family.
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
    force : bool, default False
        Replace a model already saved as ``models_dir/name`` (one with a ``model.json``). Without
        it such a model is never replaced: a :class:`~latentseg.errors.ConfigError` says where it
        came from and to pass another ``name`` or ``force``. A folder holding only checkpoints
        (an interrupted run) is not a saved model: the run resumes from them either way.
    wait : bool, default False
        When another process is writing the model of the same name, wait for it instead of
        raising :class:`~latentseg.errors.BusyError`.
    on_wait : callable, optional
        Called with a message once when ``wait`` has to wait.
    all_k : bool, optional
        Overrides ``[select] all_k``: fit every family at every k, each to the end (by default
        hopeless Bayesian fits are skipped and a fit far past its family's time budget is
        stopped; see :func:`latentseg.choose.selection.select`).
    weights : str, False or None
        The survey-weight column (overrides ``[survey] weight_column``); ``False`` ignores the
        weights (``[survey] use_weights = false``); ``None``: as configured (by default the
        survey's ``weight`` column, when it has one). Weighted, every fit gets the weights
        normalised to mean 1 as ``sample_weight``, the saved model's ``meta["weights"]`` and
        :meth:`PipelineResult.to_dict`'s ``"weights"`` say ``{"column", "effective_n", "n"}``
        (``None`` when unweighted), and the report says its figures are weighted.

    Returns
    -------
    PipelineResult

    Raises
    ------
    SurveyError, ConfigError, FitError
        Bad input, bad settings, or no usable segmentation (one clear message each); an output
        that would overwrite an input, or an existing saved model without ``force``
        (:class:`~latentseg.errors.ConfigError`).
    BusyError
        Another process is writing the model of the same name (and ``wait`` is False).

    Examples
    --------
    >>> import tempfile
    >>> res = run_pipeline("examples/project_survey.csv", "examples/latentseg.toml", models=["gmm"], k=[3],
    ...                    models_dir=tempfile.mkdtemp(), report=False)
    >>> res.model, res.k, res.result.n
    ('gmm', 3, 385)
    """
    from latentseg.prepare.core import resolve_config

    t_start = time.perf_counter()
    survey_path = Path(survey_path)
    cfg, cfg_source = resolve_config(
        config, run_overrides(models=models, model=model, k=k, reduce=reduce, random_seed=random_seed,
                              output=output, overrides=overrides, all_k=all_k, weights=weights)
    )
    kept = kept_family(cfg, model, models)
    cfg["model"]["model"] = kept
    ks = list(range(cfg["select"]["k_min"], cfg["select"]["k_max"] + 1)) if k is None else sorted({int(x) for x in k})
    seed = cfg["model"]["random_seed"]
    name = _check_name(name or default_name(survey_path))
    model_dir = Path(models_dir) / name
    _check_run_paths(survey_path, config, cfg, model_dir, report)
    step = _Steps(progress)
    sweep = list(cfg["select"]["models"])
    everyone = list(dict.fromkeys([*sweep, kept, BASELINE, LATENT_CLASS]))

    from latentseg.deliver.artifacts import check_replace, model_lock

    with model_lock(model_dir, wait=wait, on_wait=on_wait,
                    hint="wait for it to finish (--wait waits), or pass another --name"):
        check_replace(model_dir, force=force, survey=survey_path)
        return _run_locked(survey_path, cfg, cfg_source, kept, ks, seed, name, model_dir, models_dir, report,
                           step, sweep, everyone, t_start)


def _check_run_paths(survey_path: Path, config: Any, cfg: Mapping[str, Any], model_dir: Path, report: bool) -> None:
    """The output-path policy for a run (:func:`latentseg.io.files.check_outputs`): the model's
    files, its checkpoints and the report must not overwrite the survey, the config or the
    outcome statements, before any work."""
    from latentseg.deliver.artifacts import META_FILE, RESULT_FILE
    from latentseg.io.files import check_outputs

    inputs: dict[str, Any] = {"the survey": survey_path}
    if isinstance(config, (str, Path)):
        inputs["the config file"] = Path(config)
    elif config is None and Path("latentseg.toml").is_file():
        inputs["the config file"] = Path("latentseg.toml")
    if cfg["survey"].get("outcomes_file"):
        inputs["the outcomes file"] = Path(cfg["survey"]["outcomes_file"])
    outputs: dict[str, Any] = {"the model folder": model_dir, "the model's model.json": model_dir / META_FILE,
                               "the model's result.nc": model_dir / RESULT_FILE,
                               "the model's lock file": model_dir.parent / f".{model_dir.name}.lock"}
    trees: dict[str, Any] = {"the checkpoint folder": model_dir / "checkpoints"}
    if report:
        out = Path(cfg["report"]["output"])
        outputs["the report"] = out / "report.html"
        from latentseg.deliver.briefing import deliverable_outputs

        outputs.update(deliverable_outputs(out / "report.html"))  # the workbook and the deck beside it
        trees.update({"the report's figures folder": out / "figures", "the report's tables folder": out / "tables"})
    check_outputs(outputs, inputs, command="run", trees=trees)


def _run_locked(survey_path: Path, cfg: dict[str, Any], cfg_source: str, kept: str, ks: list[int], seed: int | None,
                name: str, model_dir: Path, models_dir: str | Path, report: bool, step: _Steps, sweep: list[str],
                everyone: list[str], t_start: float) -> PipelineResult:
    """The run itself, under the model's lock."""
    from latentseg.choose.keep import baseline_comparison, keep
    from latentseg.decide.core import decide
    from latentseg.decide.covariates import check_covariates_config, covariates_from_config
    from latentseg.prepare.core import prepare

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatentsegWarning)
        with step("prepare"):
            prepared = prepare(survey_path, cfg, families=everyone)
            check_covariates_config(cfg, prepared.profile, kept, weighted=prepared.weights is not None)
        notes = list(prepared.notes)
        options = {}
        for fam in everyone:
            eo = family(fam).options_from_config(cfg)
            options[fam] = eo.options
            notes.extend(eo.notes)
        with step("select"):
            selection = _sweep(prepared, sweep, ks, seed, options, model_dir, step,
                               while_waiting=functools.partial(_import_later_steps, bool(report)))
        with step("fit"):
            chosen_k = selection.recommended_k
            if chosen_k is None:
                if len(ks) != 1:
                    raise FitError(f"No admissible segmentation for k in {ks[0]}..{ks[-1]}: {selection.rule}")
                chosen_k = ks[0]
                notes.append(f"k = {chosen_k} was fixed on the command line although no fit there is admissible")
            result, fam, why = keep(selection, prepared, kept, int(chosen_k), options, seed)
            # a weighted fit carries its sample_weight, which the covariate model uses
            result = covariates_from_config(result, prepared.data_for(fam), prepared.profile, cfg)[0]
        with step("decide"):
            decisions = decide(result, prepared.scores, prepared.outcomes, prepared.profile, cfg,
                               reduction=prepared.reduction, source=str(survey_path), sample_weight=prepared.weights)
            notes.extend(decisions.notes)
        with step("compare"):
            comparison, cmp_note = baseline_comparison(selection, prepared, decisions.result, fam, int(chosen_k), options, seed)
            if cmp_note:
                notes.append(cmp_note)
        run_warnings = tuple(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, LatentsegWarning)))

    meta, tables = _deliverables(cfg, cfg_source, survey_path, models_dir, prepared, selection, fam, int(chosen_k), why,
                                 decisions, comparison, notes, run_warnings)
    from latentseg.deliver.artifacts import save_model

    with step("save"):
        saved = save_model(model_dir, decisions.result, config=cfg, meta=meta, tables=tables, name=name)
    report_path = None
    if report:
        from latentseg.deliver.report import write_report

        with step("report"):
            report_path = write_report(saved, Path(cfg["report"]["output"]) / "report.html")
    return PipelineResult(
        name=name,
        model_dir=model_dir,
        report=report_path,
        saved=saved,
        selection=selection,
        model=fam,
        k=int(chosen_k),
        cleaning=prepared.cleaning,
        warnings=run_warnings,
        seconds=time.perf_counter() - t_start,
        steps=step.seconds,
        why=why,
    )


def _sweep(prepared: Any, sweep: list[str], ks: list[int], seed: int | None, options: Mapping[str, Any],
           model_dir: Path, step: _Steps, while_waiting: Callable[[Callable[[], bool]], None] | None = None) -> Any:
    """The k sweep over the configured families, checkpointed under ``model_dir``; ``while_waiting``:
    :func:`latentseg.choose.selection.select`'s."""
    from latentseg.choose.selection import select
    from latentseg.config import select_options

    return select(
        prepared.numeric,
        models=sweep,
        k=ks,
        random_seed=seed,
        **select_options(prepared.config),
        fit_options={m: options[m] for m in sweep},
        progress=lambda done, total, desc: step.tick("select", done, total, desc),
        checkpoint_dir=model_dir / "checkpoints",
        categorical_data=prepared.levels if any(family(m).categorical for m in sweep) else None,
        rating_data=prepared.ratings,
        sample_weight=None if prepared.weights is None else prepared.weights.to_numpy(dtype=float),
        while_waiting=while_waiting,
    )


#: What the steps after the sweep import (decide, compare, save, the report), most time saved
#: first, imported ahead by :func:`_import_later_steps`; the report's only with a report.
_LATER_MODULES = ("latentseg.decide.profiling", "latentseg.decide.overlay", "latentseg.decide.finder",
                  "latentseg.decide.sizing", "latentseg.decide.segmap", "latentseg.choose.comparison",
                  "xarray", "h5netcdf")


def _import_later_steps(report: bool, still_waiting: Callable[[], bool]) -> None:
    """Import the modules of the steps after the sweep, one by one while ``still_waiting()``:
    while this process waits for the sweep's second process, imports that would otherwise come
    after the sweep, on one core while the other idles (the report's matplotlib alone takes
    about 0.3 s). Only time depends on it: a module not imported here is imported by the step
    that needs it, which says what fails."""
    import importlib

    from latentseg.deliver.report import IMPORTED_AS_IT_GOES

    names = (IMPORTED_AS_IT_GOES if report else ()) + _LATER_MODULES
    for name in names:
        if not still_waiting():
            return
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _deliverables(cfg: Mapping[str, Any], cfg_source: str, survey_path: Path, models_dir: str | Path, prepared: Any,
                  selection: Any, fam: str, chosen_k: int, why: str, decisions: Any, comparison: Any,
                  notes: list[str], run_warnings: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """What the saved model carries: the meta sections and the tables of the report."""
    d = decisions
    meta: dict[str, Any] = {
        "data": prepared.spec_for(fam),
        "survey_notes": list(prepared.raw_survey.notes),
        "warnings": list(run_warnings),
        "notes": list(dict.fromkeys(notes)),
        "cleaning": prepared.cleaning.to_dict(),
        "weights": prepared.weights_info(),
        "selection": {
            "recommended_k": selection.recommended_k,
            "rule": selection.rule,
            "per_family": selection.per_family,
            "settings": selection.settings,
            "notes": list(selection.notes),
            "chosen_model": fam,
            "chosen_k": chosen_k,
            "why": why,
        },
        "comparison": None if comparison is None else comparison.to_dict(),
        **d.saved_sections(),
        "report": {
            "title": cfg["report"]["name"] or f"Segments of {survey_path.name}",
            "dimensions": d.chosen_dimensions,
            "dimensions_why": d.dimensions_why,
        },
        "run": {"survey": str(survey_path), "config": cfg_source, "models_dir": str(models_dir)},
    }
    tables: dict[str, pd.DataFrame] = {
        "selection": selection.table,
        "landscape": prepared.landscape,
        "outcomes": prepared.outcomes,
        **d.tables(),
        "cleaning_excluded": prepared.cleaning.excluded,
    }
    if comparison is not None:
        tables["comparison_crosstab"] = comparison.crosstab
        tables["comparison_shares"] = comparison.shares
    if prepared.reduction is not None:
        tables["reduction_loadings"] = pd.DataFrame(prepared.reduction.loadings)
        meta["reduction"] = prepared.reduction.to_dict()
    if family(fam).on_ratings and "opportunity" in d.result.extras:  # the model's own segment opportunity
        tables["segment_opportunity"] = d.result.extras["opportunity"]
    return meta, tables
