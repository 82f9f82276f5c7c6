"""Opportunity scores: per respondent (the clustering input) and per outcome (Ulwick's landscape).

Both ratings are first mapped linearly onto 0-10, ``10 (x - low) / (high - low)`` on their own
declared (or inferred) scales, so a 1-5 importance and a 1-10 satisfaction scale are comparable.

Respondent level
    ``opportunity = importance + max(importance - satisfaction, 0)`` on the 0-10 ratings: 0 to 20;
    NaN where either rating is missing.
Outcome level (Ulwick's aggregate form)
    importance = 10 x the share of respondents rating importance in the top two boxes of the
    original scale; satisfaction likewise; then the same formula. "Top two boxes" are the two
    highest scale points for every scale of up to 11 points (4-5 on 1-5, 9-10 on 1-10 and
    0-10: a deliberate choice, so the aggregate does not depend on how many points the scale
    has); a wider scale is read as eleven boxes, like 0-10 stretched (90-100 on 0-100). Classes: extremely underserved
    (>= 15), underserved (>= 10), overserved (satisfaction above importance), otherwise
    appropriately served. Survey weights, where present, weight the shares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError
from latentseg.io.survey import Scale, Survey

__all__ = [
    "respondent_opportunity",
    "opportunity_scores",
    "opportunity_landscape",
    "classify",
    "top_box_threshold",
    "UNDERSERVED",
    "EXTREMELY_UNDERSERVED",
]

#: Opportunity at or above which an outcome is underserved / extremely underserved.
UNDERSERVED = 10.0
EXTREMELY_UNDERSERVED = 15.0

_CHUNK = 16384  # rows per chunk: bounds the scratch memory of opportunity_scores


def respondent_opportunity(importance_0_10: Any, satisfaction_0_10: Any, *, out: np.ndarray | None = None) -> Any:
    """``importance + max(importance - satisfaction, 0)``, elementwise, NaN-propagating.

    Parameters
    ----------
    importance_0_10, satisfaction_0_10 : array_like, broadcastable
        Ratings on 0-10.
    out : ndarray, optional
        Where to write the result (the broadcast shape, float64).

    Returns
    -------
    ndarray of float64, the broadcast shape (a numpy scalar for scalar inputs)
        In [0, 20] for inputs in [0, 10]; NaN where either input is NaN.

    Examples
    --------
    >>> respondent_opportunity([9.0, 9.0, np.nan], [3.0, 9.0, 1.0]).tolist()
    [15.0, 9.0, nan]
    >>> float(respondent_opportunity(7.4, 2.8))
    12.0
    """
    imp = np.asarray(importance_0_10, dtype=np.float64)
    gap = np.subtract(imp, np.asarray(satisfaction_0_10, dtype=np.float64))
    if isinstance(gap, np.ndarray):
        np.maximum(gap, 0.0, out=gap)  # NaN stays NaN
    else:
        gap = np.maximum(gap, 0.0)
    return np.add(imp, gap, out=out)


def opportunity_scores(survey: Survey) -> pd.DataFrame:
    """Opportunity score of every respondent on every outcome (the clustering input).

    Parameters
    ----------
    survey : Survey

    Returns
    -------
    DataFrame, shape (n, m)
        Index respondent ids, columns outcome ids; values in [0, 20], NaN where either rating is
        missing.

    Examples
    --------
    >>> imp = pd.DataFrame({"a": [5.0, 3.0], "b": [1.0, np.nan]}, index=["r1", "r2"])
    >>> sat = pd.DataFrame({"a": [2.0, 10.0], "b": [1.0, 5.0]}, index=imp.index)
    >>> out = pd.DataFrame({"statement": ["a", "b"], "job_step": ""}, index=["a", "b"])
    >>> s = Survey(imp, sat, out, Scale(1, 5), Scale(1, 10))
    >>> opportunity_scores(s).round(2).to_dict("index")
    {'r1': {'a': 18.89, 'b': 0.0}, 'r2': {'a': 5.0, 'b': nan}}
    """
    imp = survey.importance.to_numpy(dtype=np.float64)
    sat = survey.satisfaction.to_numpy(dtype=np.float64)
    out = np.empty(imp.shape, dtype=np.float64)
    a_i, b_i = _linear(survey.imp_scale)
    a_s, b_s = _linear(survey.sat_scale)
    for start in range(0, imp.shape[0], _CHUNK):  # chunks of rows: bounded scratch memory
        sl = slice(start, start + _CHUNK)
        i = np.multiply(imp[sl], a_i)
        i += b_i
        g = np.multiply(sat[sl], a_s)
        g += b_s
        respondent_opportunity(i, g, out=out[sl])
    return pd.DataFrame(out, index=survey.importance.index, columns=survey.importance.columns, copy=False)


def _linear(scale: Scale) -> tuple[float, float]:
    """``a, b`` with ``a x + b`` = the 0-10 value of rating ``x``."""
    a = 10.0 / (scale.high - scale.low)
    return a, -scale.low * a


def top_box_threshold(scale: Scale, top_box: int = 2) -> float:
    """The lowest rating counted in the top ``top_box`` boxes of ``scale``.

    Examples
    --------
    >>> top_box_threshold(Scale(1, 5)), top_box_threshold(Scale(1, 10)), top_box_threshold(Scale(0, 100))
    (4.0, 9.0, 90.0)
    """
    if isinstance(top_box, bool) or not isinstance(top_box, (int, np.integer)) or top_box < 1:
        raise ConfigError(f"top_box must be an integer >= 1; got {top_box!r}.")
    width = scale.high - scale.low
    step = 1.0 if width <= 10 else width / 10.0
    return float(scale.high - (top_box - 1) * step)


def classify(importance: Any, satisfaction: Any, opportunity: Any) -> np.ndarray:
    """Ulwick's class of each outcome.

    Examples
    --------
    >>> classify([7.4, 9, 3, 5], [2.8, 1, 6, 5], [12.0, 17, 3, 5]).tolist()
    ['underserved', 'extremely underserved', 'overserved', 'appropriately served']
    """
    imp = np.asarray(importance, dtype=float)
    sat = np.asarray(satisfaction, dtype=float)
    opp = np.asarray(opportunity, dtype=float)
    out = np.full(opp.shape, "appropriately served", dtype=object)
    out[sat > imp] = "overserved"
    out[opp >= UNDERSERVED] = "underserved"
    out[opp >= EXTREMELY_UNDERSERVED] = "extremely underserved"
    out[np.isnan(opp)] = "not rated"
    return out


def _colsum(mask: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Per-column count of True (or sum of weights where True), without a float copy of ``mask``."""
    if w is None:
        return np.count_nonzero(mask, axis=0).astype(np.float64)
    total = np.zeros(mask.shape[1])
    for start in range(0, mask.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        total += w[sl] @ mask[sl]
    return total


def _aggregate(
    imp_top: np.ndarray, imp_rated: np.ndarray, sat_top: np.ndarray, sat_rated: np.ndarray, w: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Top-box shares x 10, opportunity and class per column; the masks are boolean (n, m)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        imp = 10.0 * _colsum(imp_top, w) / _colsum(imp_rated, w)
        sat = 10.0 * _colsum(sat_top, w) / _colsum(sat_rated, w)
    opp = respondent_opportunity(imp, sat)
    return {
        "importance": imp,
        "satisfaction": sat,
        "opportunity": opp,
        "class": classify(imp, sat, opp),
        "n_rated": np.count_nonzero(imp_rated & sat_rated, axis=0).astype(np.int64),
        "n_importance": np.count_nonzero(imp_rated, axis=0).astype(np.int64),
        "n_satisfaction": np.count_nonzero(sat_rated, axis=0).astype(np.int64),
    }


def opportunity_landscape(survey: Survey, by: str | None = None, top_box: int = 2, *, weighted: bool = True) -> pd.DataFrame:
    """Ulwick's per-outcome opportunity landscape, for the whole sample or per profile group.

    Parameters
    ----------
    survey : Survey
    by : str, optional
        A profile column; the landscape is computed for each of its values (missing values form
        the group ``"(missing)"``).
    top_box : int, default 2
        Boxes at the top of each original scale counted as "important" / "satisfied".
    weighted : bool, default True
        Weight shares by the survey's weight column, where it has one.

    Returns
    -------
    DataFrame
        One row per outcome (per group and outcome with ``by``; tidy, group column first), in
        survey order: ``[group,] outcome, statement, job_step, importance, satisfaction,
        opportunity, class, n_rated`` (respondents who rated both), ``n_importance``,
        ``n_satisfaction``. Importance and satisfaction are top-box shares x 10.

    Raises
    ------
    SurveyError
        ``by`` is not a profile column.

    Examples
    --------
    >>> imp = pd.DataFrame({"a": [5.0, 4, 2, 5, 1], "b": [1.0, 2, 3, 2, 1]})
    >>> sat = pd.DataFrame({"a": [1.0, 2, 3, 1, 5], "b": [5.0, 4, 5, 5, 1]})
    >>> out = pd.DataFrame({"statement": ["A", "B"], "job_step": ""}, index=["a", "b"])
    >>> land = opportunity_landscape(Survey(imp, sat, out, Scale(1, 5), Scale(1, 5)))
    >>> land[["outcome", "importance", "satisfaction", "opportunity", "class"]].values.tolist()
    [['a', 6.0, 2.0, 10.0, 'underserved'], ['b', 0.0, 8.0, 0.0, 'overserved']]
    """
    imp = survey.importance.to_numpy(dtype=np.float64)
    sat = survey.satisfaction.to_numpy(dtype=np.float64)
    imp_rated, sat_rated = ~np.isnan(imp), ~np.isnan(sat)
    imp_top = imp >= top_box_threshold(survey.imp_scale, top_box)
    sat_top = sat >= top_box_threshold(survey.sat_scale, top_box)
    w = survey.weight.to_numpy(dtype=np.float64) if (weighted and survey.weight is not None) else None
    if w is not None:
        w = np.where(np.isnan(w), 0.0, w)
    outcomes = survey.outcomes.reindex(survey.importance.columns)
    base = {
        "outcome": [str(c) for c in survey.importance.columns],
        "statement": outcomes["statement"].astype(str).to_numpy(),
        "job_step": outcomes["job_step"].fillna("").astype(str).to_numpy(),
    }
    if by is None:
        stats = _aggregate(imp_top, imp_rated, sat_top, sat_rated, w)
        return pd.DataFrame({**base, **stats})

    if by not in survey.profile.columns:
        cols = ", ".join(f"'{c}'" for c in survey.profile.columns[:8])
        raise SurveyError(f"{survey.source}: cannot group by '{by}': not a profile column; expected one of {cols or '(none)'}.")
    groups = survey.profile[by]
    labels = groups.astype(object).where(groups.notna(), "(missing)").to_numpy()
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except TypeError:  # labels of mixed types: order of first appearance
        codes, uniques = pd.factorize(labels, sort=False)
    frames = []
    for g, label in enumerate(uniques):
        rows = codes == g
        stats = _aggregate(imp_top[rows], imp_rated[rows], sat_top[rows], sat_rated[rows], None if w is None else w[rows])
        frames.append(pd.DataFrame({"group": label, **base, **stats}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["by"] = by
    return out
