"""The decide step: a segmentation, its survey and a config -> profiles, overlays, finder, distal
outcomes, sizes and the segment map.

``latentseg run``, ``profile``, ``size`` and the report all reach the decisions through
:func:`decide`, so one model gives one segment map whichever command built it. The rules, in
one place:

- segments are profiled and named in outcome terms on the outcome-level opportunity scores
  (``[profile] top_outcomes``, ``names``);
- overlays: the configured ``[profile] overlay`` columns, else every profile column that is not
  a distal outcome; the finder model is fitted on the overlay columns the overlays kept (a finder
  that cannot be fitted becomes a note, not an error);
- distal outcomes (``[profile] distal``) are compared across segments with a correction for
  classification error (BCH by default);
- sizes always: shares, and market counts and revenue when ``[size] tam`` is set (``arpu_column``
  wins over ``arpu``);
- the segment map, with each segment's current solution from ``[profile] current_solution`` or a
  profile column whose name says so, and its recommendation by the ``[decide]`` rule;
- the two dimensions of the 2x2 (job steps or factors; ``[report] dimensions``);
- survey weights (``sample_weight=``, default the result's own ``sample_weight``) enter every
  number above: population shares and sizes with design-based intervals, weighted profile means,
  weighted overlay tables with the Rao-Scott test, weighted distal outcomes with design-based
  standard errors and a finder fitted and scored with the weights
  (:mod:`latentseg.decide.weights`).

Examples
--------
>>> from latentseg.prepare.core import prepare
>>> from latentseg.models import fit
>>> p = prepare("examples/project_survey.csv", "examples/latentseg.toml")
>>> d = decide(fit(p.numeric, "gmm", 3, random_seed=1, n_init=2), p.scores, p.outcomes, p.profile, p.config)
>>> len(d.segment_map.segments), d.sizing.tam
(3, 50000.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, LatentsegError

__all__ = ["Decisions", "decide", "decide_sizes", "decide_inputs", "decide_saved", "dimensions", "OVERLAY_WEIGHTINGS"]

#: How overlays weight respondents by their membership probabilities.
OVERLAY_WEIGHTINGS = ("proportional", "bch", "modal")


@dataclass(frozen=True, eq=False)
class Decisions:
    """What :func:`decide` produced.

    Attributes
    ----------
    result : SegmentationResult
        The segmentation with its segments named.
    profiles : Profiles
    overlays : Overlays or None
    finder : Finder or None
    distal : DistalResult or None
    sizing : Sizing
    segment_map : SegmentMap
    current_column : str or None
        The profile column the segment map's current solutions come from.
    dimensions : DataFrame (k, c) or None
        Per-segment coordinates on candidate dimensions (job steps, factors).
    chosen_dimensions : list of str
        The two dimensions of the 2x2.
    dimensions_why : str
    notes : tuple of str
    covariate_finder : CovariateFinder or None
        The finder profile built on the result's covariate model (traits per segment and the
        softmax rule), when the result carries covariate effects (``--covariates``).
    """

    result: Any
    profiles: Any
    overlays: Any
    finder: Any
    distal: Any
    sizing: Any
    segment_map: Any
    current_column: str | None
    dimensions: pd.DataFrame | None
    chosen_dimensions: list[str]
    dimensions_why: str
    notes: tuple[str, ...] = ()
    covariate_finder: Any = None

    def saved_sections(self) -> dict[str, Any]:
        """The sections a saved model carries (``model.json``; the report reads them)."""
        d = self
        return {
            "profile": d.profiles.to_dict(),
            "overlay": None if d.overlays is None else d.overlays.to_dict(),
            "finder": d.finder,
            "finder_summary": None if d.finder is None else d.finder.summary(),
            "covariate_finder": None if d.covariate_finder is None else d.covariate_finder.to_dict(),
            "distal": None if d.distal is None else d.distal.to_dict(),
            "sizing": d.sizing.to_dict(),
            "segment_map": d.segment_map.to_dict(),
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables a saved model carries for the report."""
        d = self
        out: dict[str, pd.DataFrame] = {
            "profile_means": d.profiles.means,
            "profile_effects": d.profiles.effects,
            "overall": d.profiles.overall.to_frame("overall"),
            "sizing": d.sizing.table,
            "segment_map": d.segment_map.to_frame(),
        }
        if d.dimensions is not None:
            out["dimensions"] = d.dimensions
        if d.overlays is not None:
            out["overlay_summary"] = d.overlays.summary
            for col, ov in d.overlays.columns.items():
                if ov.row_pct is not None:
                    out[f"overlay_pct::{col}"] = ov.row_pct
        if d.distal is not None:
            out["distal"] = d.distal.table
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe sections (what ``latentseg profile --json`` prints and the model saves)."""
        f = self.finder
        return {
            "profiles": self.profiles.to_dict(),
            "overlays": None if self.overlays is None else self.overlays.to_dict(),
            "finder": None if f is None else {**f.summary(), "confusion": f.confusion.to_numpy().tolist()},
            "covariate_finder": None if self.covariate_finder is None else self.covariate_finder.to_dict(),
            "distal": None if self.distal is None else self.distal.to_dict(),
            "sizing": self.sizing.to_dict(),
            "segment_map": self.segment_map.to_dict(),
            "notes": list(self.notes),
        }


def decide(
    result: Any,
    scores: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    profile: pd.DataFrame,
    config: Mapping[str, Mapping[str, Any]],
    *,
    reduction: Any = None,
    weighting: str = "proportional",
    distal_method: str = "bch",
    tam_interval: tuple[float, float] | None = None,
    product_fit: Mapping[int, float] | None = None,
    source: str = "the survey",
    sample_weight: Any = None,
) -> Decisions:
    """Profile, overlay, find, compare distal outcomes, size and map the segments of ``result``.

    Parameters
    ----------
    result : SegmentationResult
    scores : DataFrame (n, m)
        Outcome-level opportunity scores (or the model's score table), indexed by respondent id.
    outcomes : DataFrame or None
        Outcome statements and job steps (``None`` for a score table).
    profile : DataFrame (n, p)
        Profile columns, indexed by respondent id.
    config : mapping
        A merged config; ``[profile]``, ``[size]``, ``[report] dimensions`` and ``[model]
        random_seed`` are read.
    reduction : Reduction, optional
        The ``[reduce]`` step the model was fitted after (its factors are candidate dimensions).
    weighting : {"proportional", "bch", "modal"}
        How overlays weight respondents.
    distal_method : str
        The distal outcomes' correction (:data:`latentseg.decide.distal.DISTAL_METHODS`).
    tam_interval, product_fit
        Passed to :func:`latentseg.decide.sizing.size_segments`.
    source : str
        Named in messages.
    sample_weight : array-like (n,), Series indexed by respondent id, or None
        Survey weights (e.g. ``Prepared.weights``); default the result's own ``sample_weight``.
        Passed to every decision (see the module docstring).

    Returns
    -------
    Decisions

    Raises
    ------
    ConfigError
        A configured column the profile does not have, or invalid survey weights.
    """
    pcfg, scfg = config["profile"], config["size"]
    seed = config["model"]["random_seed"]
    if weighting not in OVERLAY_WEIGHTINGS:
        raise ConfigError(f"--weighting must be one of {', '.join(OVERLAY_WEIGHTINGS)}; got {weighting!r}.")
    from latentseg.decide.weights import resolve_weights, weights_text

    sw = resolve_weights(result, sample_weight)
    notes: list[str] = []
    if sw is not None:
        notes.append(f"every number is {weights_text(sw)}")
    profiles = _profiles(result, scores, outcomes, pcfg, notes, sw)
    result = profiles.apply(result)
    overlay_cols, distal_cols = _profile_columns(profile, pcfg, source)

    overlays = None
    if overlay_cols:
        from latentseg.decide.overlay import overlay

        overlays = overlay(result, profile, columns=overlay_cols, weighting=weighting, random_seed=seed, sample_weight=sw)
        notes.extend(f"overlay skipped {c}: {why}" for c, why in overlays.skipped.items())
    finder_model = _finder(result, profile, [c for c in overlay_cols if overlays is None or c in overlays.columns], seed, notes, sw)
    cov_finder = _covariate_finder(result, profile, notes, sw)
    dist = None
    if distal_cols:
        from latentseg.decide.distal import distal

        dist = distal(result, profile, distal_cols, method=distal_method, sample_weight=sw)
    sizing = _sizing(result, scfg, profile, profiles, tam_interval, product_fit, sw)
    current = _current_column(profile, pcfg.get("current_solution") or None, source)
    from latentseg.decide.segmap import DefaultRule, segment_map

    dcfg = config["decide"]  # the recommendation rule's thresholds, fit and hand-set recommendations
    smap = segment_map(
        result,
        profiles=profiles,
        overlays=overlays,
        sizing=sizing,
        current_solution_column=current,
        profile_df=profile if current else None,
        rule=DefaultRule(dcfg["target_ratio"], dcfg["max_targets"], dcfg["deprioritize_ratio"], dcfg["min_share"]),
        fit={int(j): v for j, v in dcfg["fit"].items()},
        overrides={int(j): v for j, v in dcfg["recommend"].items()},
        sample_weight=sw,
    )
    if current:
        notes.append(f"current solution per segment from the profile column '{current}'")
    frame, chosen, why = (None, [], "")
    if outcomes is not None:
        frame, chosen, why = dimensions(profiles, outcomes, result, reduction, list(config["report"]["dimensions"]))
    return Decisions(
        result=result,
        profiles=profiles,
        overlays=overlays,
        finder=finder_model,
        distal=dist,
        sizing=sizing,
        segment_map=smap,
        current_column=current,
        dimensions=frame,
        chosen_dimensions=chosen,
        dimensions_why=why,
        notes=tuple(notes),
        covariate_finder=cov_finder,
    )


def decide_sizes(
    result: Any,
    scores: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    profile: pd.DataFrame,
    config: Mapping[str, Mapping[str, Any]],
    *,
    tam_interval: tuple[float, float] | None = None,
    product_fit: Mapping[int, float] | None = None,
    sample_weight: Any = None,
) -> Any:
    """Only the sizes of :func:`decide` (``latentseg size``): the segments profiled and named by the
    same rule (their flags need the profiles), then sized; no overlays, finder or distal outcomes,
    so a ``[profile]`` column the data lack does not stop sizing. ``sample_weight`` as in
    :func:`decide`.

    Returns
    -------
    Sizing
    """
    from latentseg.decide.weights import resolve_weights

    sw = resolve_weights(result, sample_weight)
    profiles = _profiles(result, scores, outcomes, config["profile"], [], sw)
    return _sizing(profiles.apply(result), config["size"], profile, profiles, tam_interval, product_fit, sw)


def _profiles(result: Any, scores: pd.DataFrame, outcomes: pd.DataFrame | None, pcfg: Mapping[str, Any],
              notes: list[str], sw: np.ndarray | None = None) -> Any:
    """The segments profiled and named (``[profile] top_outcomes``, ``names``); names for segments
    the segmentation does not have are left out, with a note."""
    from latentseg.decide.profiling import profile as make_profiles

    names = {int(key): val for key, val in (pcfg.get("names") or {}).items()}
    beyond = sorted(j for j in names if j > result.k)
    if beyond:
        notes.append(
            f"[profile] names segment(s) {beyond}, but the segmentation has k = {result.k}: those names are left out"
        )
        names = {j: v for j, v in names.items() if j <= result.k}
    return make_profiles(result, scores, outcomes, top=int(pcfg["top_outcomes"]), names=names or None, sample_weight=sw)


def _profile_columns(profile: pd.DataFrame, pcfg: Mapping[str, Any], source: str) -> tuple[list[str], list[str]]:
    """(overlay columns, distal columns), each checked against the profile."""
    have = [str(c) for c in profile.columns]
    distal_cols = [str(c) for c in pcfg.get("distal") or []]
    overlay_cols = [str(c) for c in pcfg.get("overlay") or []] or [c for c in have if c not in distal_cols]
    for key, cols in (("overlay", overlay_cols), ("distal", distal_cols)):
        missing = [c for c in cols if c not in have]
        if missing:
            raise ConfigError(
                f"Columns {missing} are not in the survey's profile columns {have[:20]} ({source}); "
                f"check --{key} or [profile] {key}."
            )
    return overlay_cols, distal_cols


def _finder(result: Any, profile: pd.DataFrame, columns: list[str], seed: int | None, notes: list[str],
            sw: np.ndarray | None = None) -> Any:
    """The finder model on ``columns``; a finder that cannot be fitted becomes a note."""
    if not columns:
        return None
    from latentseg.decide.finder import finder

    try:
        return finder(result, profile, columns=columns, random_seed=seed, sample_weight=sw)
    except LatentsegError as exc:
        notes.append(f"no finder model: {exc}")
        return None


def _covariate_finder(result: Any, profile: pd.DataFrame, notes: list[str], sw: np.ndarray | None = None) -> Any:
    """The finder profile built on the result's covariate model, when it has one; one that
    cannot be built becomes a note."""
    if result.settings.get("covariates_method") is None or not isinstance(result.extras.get("covariates"), pd.DataFrame):
        return None
    from latentseg.decide.finder import covariate_finder

    try:
        return covariate_finder(result, profile, sample_weight=sw)
    except LatentsegError as exc:
        notes.append(f"no finder profile from the covariate model: {exc}")
        return None


def _sizing(
    result: Any,
    scfg: Mapping[str, Any],
    profile: pd.DataFrame,
    profiles: Any,
    tam_interval: tuple[float, float] | None,
    product_fit: Mapping[int, float] | None,
    sw: np.ndarray | None = None,
) -> Any:
    from latentseg.decide.sizing import size_segments

    arpu_column = scfg.get("arpu_column") or None
    arpu = None if arpu_column else (float(scfg.get("arpu") or 0) or None)
    return size_segments(
        result,
        tam=float(scfg["tam"]) if scfg.get("tam") else None,
        tam_interval=tam_interval,
        arpu=arpu,
        arpu_column=arpu_column,
        data=profile if arpu_column else None,
        product_fit=product_fit,
        profiles=profiles,
        sample_weight=sw,
    )


def _current_column(profile: pd.DataFrame, configured: str | None, source: str) -> str | None:
    from latentseg.decide.segmap import find_current_solution_column

    if configured and configured not in profile.columns:
        raise ConfigError(
            f"profile.current_solution names column {configured!r}, which is not in the survey's profile columns ({source})."
        )
    return find_current_solution_column(profile, configured)


def dimensions(
    profiles: Any, outcomes: pd.DataFrame, result: Any, reduction: Any, wanted: Sequence[str]
) -> tuple[pd.DataFrame, list[str], str]:
    """Per-segment coordinates on candidate dimensions (job steps, factors) and the two chosen.

    Job-step dimensions are the mean segment opportunity over the step's outcomes; factor
    dimensions are the segment centers on the factors. Without ``wanted``, the two dimensions
    along which segment means vary most (share-weighted variance) are chosen.
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
    w = np.array([seg.share for seg in profiles.segments], dtype=float)  # survey-weighted where the profiles are
    spread = {c: float(np.sum(w * (frame[c] - np.sum(w * frame[c])) ** 2)) for c in frame.columns}
    chosen = sorted(spread, key=lambda c: -spread[c])[:2]
    return frame, chosen, "the two dimensions along which the segments differ most (largest between-segment variance)"


def decide_inputs(saved: Any, survey_path: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, str, Any]:
    """(outcome-level scores, outcome table or None, profile table, source, reduction) for a saved
    model: its survey prepared exactly as at fit time (:func:`latentseg.prepare.core.prepare`
    under the saved config), or the score table it was fitted on.

    The file is verified against the hash recorded when the model's data was prepared
    (:func:`latentseg.prepare.provenance.training_file`): another file of the same name, or a
    ``survey_path`` whose respondents' model input differs from the model's, is refused.

    Parameters
    ----------
    saved : SavedModel
    survey_path : path, optional
        The survey; default: the path saved with the model.

    Raises
    ------
    ConfigError
        No survey is known, or the file is not there.
    DataMismatchError
        The file is not the one the model was fitted on.
    """
    from latentseg.config import merge_config
    from latentseg.prepare.core import prepare
    from latentseg.prepare.provenance import training_file

    cfg = merge_config(saved.config or None, source=f"the config saved with model '{saved.name}'")
    spec = saved.meta.get("data") if isinstance(saved.meta.get("data"), dict) else {}
    kind = spec.get("data_kind") or spec.get("kind") or "survey"
    path = training_file(saved, survey_path)
    if kind == "survey" or (survey_path is not None and "file_sha256" not in spec):
        p = prepare(path, cfg)
        assert p.survey is not None
        return p.scores, p.outcomes, p.profile, str(path), p.reduction  # type: ignore[return-value]
    from latentseg.io import read_table
    from latentseg.prepare.core import ID_COLUMNS

    table = read_table(path)
    ids = [c for c in table.columns if str(c).lower() in ID_COLUMNS]
    if ids:
        table = table.set_index(ids[0])
    features = [f for f in saved.result.feature_names if f in table.columns]
    if not features:
        raise ConfigError(f"'{path}' has none of the model's columns {list(saved.result.feature_names)[:5]}; pass --survey.")
    rest = [c for c in table.columns if c not in features]
    return table[features].apply(pd.to_numeric, errors="coerce"), None, table[rest], str(path), None


def decide_saved(saved: Any, survey_path: str | Path | None = None) -> Any:
    """A saved model with its decisions: the model itself when it carries them (``latentseg run``
    saved them), else a copy in memory with the sections :func:`decide` makes from its survey
    under its saved config (a model saved by ``latentseg fit --save``). The files are not changed.

    Raises
    ------
    ConfigError
        The model has no decisions and its survey cannot be read.
    """
    import dataclasses

    if saved.meta.get("segment_map") and saved.meta.get("profile"):
        return saved
    from latentseg.config import merge_config

    cfg = merge_config(saved.config or None, source=f"the config saved with model '{saved.name}'")
    scores, outcomes, profile, source, reduction = decide_inputs(saved, survey_path)
    d = decide(saved.result, scores, outcomes, profile, cfg, reduction=reduction, source=source)
    report = dict(saved.meta.get("report") or {})
    report.setdefault("dimensions", d.chosen_dimensions)
    report.setdefault("dimensions_why", d.dimensions_why)
    meta = {**saved.meta, **d.saved_sections(), "report": report, "tables": {**saved.tables, **d.tables()},
            "notes": list(saved.meta.get("notes") or []) + list(d.notes)}
    return dataclasses.replace(saved, result=d.result, meta=meta)
