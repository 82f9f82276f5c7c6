"""The raw ratings as model input (families with ``data == "ratings"``), and segment opportunity.

The families fitted on ratings (``rating-lca``, ``bayes-rating-lca``) see each outcome's
importance and satisfaction rating as two categorical indicators, on the scales the survey was
asked on: nothing is rescaled, binned or combined before the model.

The data contract
-----------------
:func:`rating_frame` turns a (cleaned) survey into the model input of these families, a
DataFrame of shape ``(n, 2J)``:

- index: the respondent ids;
- columns ``imp:<outcome>`` for the J outcomes, then ``sat:<outcome>`` in the same outcome order
  (:func:`rating_column`; ``:`` is :data:`SEPARATOR`);
- every column an *ordered* pandas Categorical whose categories are every point of that rating's
  scale, ``low, low + 1, ..., high`` (integers: 1-5 gives 5 categories, 0-10 gives 11), observed or
  not; a missing rating is a missing value (category code ``-1``).

:class:`Ratings` (``Ratings.from_frame(frame)``) is what an engine reads from that frame: integer
codes ``0..C - 1`` (``-1`` missing) of importance and satisfaction, shape ``(n, J)`` each, the
scale points of each (``C_imp``, ``C_sat`` values, the same for every outcome of a survey) and
their values on the 0-10 base of the opportunity scores (``10 (x - low) / (high - low)``, as
:mod:`latentseg.prepare.scoring` maps every rating before scoring it).

Segment opportunity
-------------------
A segment's rating distributions imply an expected opportunity score per outcome on exactly the
scale of the respondent scores (0-20):

``E[o] = E[i + max(i - s, 0)] = sum_a sum_b P(imp = a, sat = b) (x_a + max(x_a - y_b, 0))``

with ``x_a``, ``y_b`` the 0-10 values of the scale points. When importance and satisfaction are
independent within the segment (the latent class assumption of both rating families) the joint
probability is the product ``p_a q_b`` of the two categorical distributions; a model of the
joint cell table passes that table instead (:func:`segment_opportunity`, ``joint=``).
:func:`segment_top_box` gives the segment's top-2-box landscape (Ulwick's aggregate form, as
:func:`latentseg.prepare.scoring.opportunity_landscape` computes it for the whole sample).

A fitted rating family returns ``centers`` = the segment opportunity (k, J) in opportunity-score
units, ``center_intervals`` (k, J, 2) its interval, ``feature_names`` = the outcomes, and
``params["imp_probs"]`` (k, J, C_imp), ``params["sat_probs"]`` (k, J, C_sat): the category
probabilities over every scale point (zero where a model gives none).

Examples
--------
>>> import pandas as pd
>>> from latentseg.io.survey import Scale, Survey
>>> imp = pd.DataFrame({"o1": [5.0, 4.0, None], "o2": [1.0, 2.0, 3.0]}, index=["r1", "r2", "r3"])
>>> sat = pd.DataFrame({"o1": [1.0, 2.0, 3.0], "o2": [3.0, 3.0, 3.0]}, index=imp.index)
>>> out = pd.DataFrame({"statement": ["a", "b"], "job_step": ""}, index=["o1", "o2"])
>>> frame = rating_frame(Survey(imp, sat, out, Scale(1, 5), Scale(1, 3)))
>>> list(frame.columns), frame["imp:o1"].cat.categories.tolist()
(['imp:o1', 'imp:o2', 'sat:o1', 'sat:o2'], [1, 2, 3, 4, 5])
>>> r = Ratings.from_frame(frame)
>>> r.imp_codes[:, 0].tolist(), r.sat_0_10.tolist()
([4, 3, -1], [0.0, 5.0, 10.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError, format_rows
from latentseg.io.survey import Scale

__all__ = [
    "SEPARATOR",
    "IMP",
    "SAT",
    "MAX_POINTS",
    "rating_column",
    "rating_frame",
    "Ratings",
    "segment_opportunity",
    "segment_top_box",
    "segment_landscape",
]

#: Between the rating kind and the outcome id in a column name: ``imp:o01``.
SEPARATOR = ":"
#: The two rating kinds (column prefixes).
IMP, SAT = "imp", "sat"
#: The most points a rating scale may have to be modelled category by category (0-20 at most).
MAX_POINTS = 21


def rating_column(kind: str, outcome: str) -> str:
    """The column name of one rating: ``rating_column("imp", "o01") == "imp:o01"``.

    Examples
    --------
    >>> rating_column(SAT, "o07")
    'sat:o07'
    """
    if kind not in (IMP, SAT):
        raise ValueError(f"kind must be {IMP!r} or {SAT!r}; got {kind!r}.")
    return f"{kind}{SEPARATOR}{outcome}"


def _points(scale: Scale, what: str, source: str) -> np.ndarray:
    """The scale's points ``low..high`` (step 1), or a message saying why it has none."""
    low, high = float(scale.low), float(scale.high)
    if not (low.is_integer() and high.is_integer()):
        raise ConfigError(
            f"{source}: the {what} scale {scale} does not have integer end points; the rating families "
            "(rating-lca, bayes-rating-lca) model each point of an integer scale such as 1-5, 1-7 or 0-10."
        )
    n_points = int(high - low) + 1
    if n_points > MAX_POINTS:
        raise ConfigError(
            f"{source}: the {what} scale {scale} has {n_points} points; the rating families model at most "
            f"{MAX_POINTS} (a 0-20 scale). Bin the ratings first, or use a family fitted on opportunity scores."
        )
    return np.arange(int(low), int(high) + 1)


def _categorical(values: pd.DataFrame, points: np.ndarray, what: str, source: str) -> dict[str, pd.Categorical]:
    """Each column as an ordered Categorical over ``points``; ratings between points are refused."""
    dtype = pd.CategoricalDtype(points.tolist(), ordered=True)
    out: dict[str, pd.Categorical] = {}
    for col in values.columns:
        v = values[col].to_numpy(dtype=float, na_value=np.nan)
        seen = ~np.isnan(v)
        off = seen & ~np.isin(v, points.astype(float))
        if off.any():
            rows = values.index[off].tolist()
            raise SurveyError(
                f"{source}: column '{what}_{col}' has {int(off.sum())} rating(s) that are not points of the scale "
                f"{points[0]}-{points[-1]} at rows {format_rows(rows)}; the rating families need whole-point ratings."
            )
        code = np.where(seen, np.searchsorted(points, np.where(seen, v, points[0])), -1)
        out[str(col)] = pd.Categorical.from_codes(code, dtype=dtype)
    return out


def rating_frame(survey: Any, outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """The model input of the rating families: every importance and satisfaction rating as a category.

    Parameters
    ----------
    survey : Survey
        A (cleaned) survey: its raw ``importance`` and ``satisfaction`` ratings and their scales.
    outcomes : sequence of str, optional
        The outcomes to keep, in this order (default: every outcome of the survey).

    Returns
    -------
    DataFrame, shape (n, 2J)
        Indexed by respondent id; columns ``imp:<outcome>`` (J) then ``sat:<outcome>`` (J); each an
        ordered Categorical over every point of its scale (``low..high``); missing ratings missing.

    Raises
    ------
    ConfigError
        A scale without integer end points, or with more than :data:`MAX_POINTS` points.
    SurveyError
        A rating that is not a point of its scale (e.g. 2.5 on 1-5); the message names the column
        and rows.

    Examples
    --------
    >>> from latentseg.io.survey import Scale, Survey
    >>> imp = pd.DataFrame({"o1": [0.0, 10.0]}); sat = pd.DataFrame({"o1": [7.0, None]})
    >>> out = pd.DataFrame({"statement": ["a"], "job_step": ""}, index=["o1"])
    >>> f = rating_frame(Survey(imp, sat, out, Scale(0, 10), Scale(1, 7)))
    >>> f["imp:o1"].cat.codes.tolist(), f["sat:o1"].cat.codes.tolist(), len(f["sat:o1"].cat.categories)
    ([0, 10], [6, -1], 7)
    """
    source = str(getattr(survey, "source", "<memory>"))
    cols = [str(c) for c in survey.importance.columns] if outcomes is None else [str(c) for c in outcomes]
    imp_points = _points(survey.imp_scale, "importance", source)
    sat_points = _points(survey.sat_scale, "satisfaction", source)
    imp = _categorical(survey.importance.rename(columns=str)[cols], imp_points, IMP, source)
    sat = _categorical(survey.satisfaction.rename(columns=str)[cols], sat_points, SAT, source)
    data = {rating_column(IMP, c): imp[c] for c in cols}
    data.update({rating_column(SAT, c): sat[c] for c in cols})
    return pd.DataFrame(data, index=survey.importance.index)


@dataclass(frozen=True)
class Ratings:
    """The ratings an engine reads from a :func:`rating_frame` (see the module notes).

    Attributes
    ----------
    outcomes : tuple of str, length J
    imp_codes, sat_codes : ndarray of int64, shape (n, J)
        Category codes ``0..C - 1`` (the position of the rating among the scale's points), ``-1``
        where the rating is missing.
    imp_points, sat_points : ndarray of float, shapes (C_imp,), (C_sat,)
        The scale points (the ratings) of the codes.
    imp_scale, sat_scale : Scale
        ``low`` = the first point, ``high`` = the last.
    ids : pandas.Index, length n
        Respondent ids.
    """

    outcomes: tuple[str, ...]
    imp_codes: np.ndarray
    sat_codes: np.ndarray
    imp_points: np.ndarray
    sat_points: np.ndarray
    imp_scale: Scale
    sat_scale: Scale
    ids: pd.Index

    @property
    def codes(self) -> np.ndarray:
        """Importance then satisfaction codes side by side, shape (n, 2J) (the frame's column order)."""
        return np.concatenate([self.imp_codes, self.sat_codes], axis=1)

    @property
    def imp_0_10(self) -> np.ndarray:
        """The importance points on the 0-10 base of the opportunity scores, shape (C_imp,)."""
        return np.asarray(self.imp_scale.to_0_10(self.imp_points), dtype=float)

    @property
    def sat_0_10(self) -> np.ndarray:
        """The satisfaction points on the 0-10 base, shape (C_sat,)."""
        return np.asarray(self.sat_scale.to_0_10(self.sat_points), dtype=float)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, where: str = "the rating data") -> Ratings:
        """Read a :func:`rating_frame` (or any frame laid out the same way).

        Raises
        ------
        ConfigError
            Columns that do not follow the contract (names, order, ordered Categoricals over the
            same numeric points within each kind); the message names the columns.
        """
        if not isinstance(frame, pd.DataFrame):
            raise ConfigError(
                f"{where}: the rating families take the ratings of a survey (latentseg.prepare.ratings.rating_frame); "
                f"got {type(frame).__name__}."
            )
        names = [str(c) for c in frame.columns]
        J = len(names) // 2
        outcomes = [n.split(SEPARATOR, 1)[-1] for n in names[:J]]
        expected = [rating_column(IMP, o) for o in outcomes] + [rating_column(SAT, o) for o in outcomes]
        if len(names) == 0 or len(names) % 2 or names != expected:
            raise ConfigError(
                f"{where}: expected columns imp:<outcome> for every outcome, then sat:<outcome> in the same order "
                f"(latentseg.prepare.ratings.rating_frame); got {format_rows(names)}."
            )
        kinds: dict[str, np.ndarray] = {}
        codes: dict[str, np.ndarray] = {}
        for kind, cols in ((IMP, names[:J]), (SAT, names[J:])):
            points = None
            block = np.empty((frame.shape[0], J), dtype=np.int64)
            for j, c in enumerate(cols):
                s = frame[c]
                if not (isinstance(s.dtype, pd.CategoricalDtype) and s.cat.ordered):
                    raise ConfigError(f"{where}: column '{c}' must be an ordered Categorical over the scale's points.")
                cats = np.asarray(s.cat.categories, dtype=float)
                if points is None:
                    points = cats
                elif cats.shape != points.shape or not np.array_equal(cats, points):
                    raise ConfigError(f"{where}: column '{c}' has other scale points than '{cols[0]}'.")
                block[:, j] = s.cat.codes.to_numpy(dtype=np.int64)
            assert points is not None
            if points.size < 2 or np.any(np.diff(points) <= 0):
                raise ConfigError(f"{where}: the {kind} scale needs at least two increasing points; got {points.tolist()}.")
            kinds[kind], codes[kind] = points, block
        return cls(
            outcomes=tuple(outcomes),
            imp_codes=codes[IMP],
            sat_codes=codes[SAT],
            imp_points=kinds[IMP],
            sat_points=kinds[SAT],
            imp_scale=Scale(float(kinds[IMP][0]), float(kinds[IMP][-1])),
            sat_scale=Scale(float(kinds[SAT][0]), float(kinds[SAT][-1])),
            ids=frame.index,
        )


def gap_table(imp_0_10: np.ndarray, sat_0_10: np.ndarray) -> np.ndarray:
    """``x_a + max(x_a - y_b, 0)``, the opportunity score of each rating pair, shape (C_imp, C_sat)."""
    x = np.asarray(imp_0_10, dtype=float)[:, None]
    y = np.asarray(sat_0_10, dtype=float)[None, :]
    return x + np.maximum(x - y, 0.0)


def segment_opportunity(
    imp_probs: Any,
    sat_probs: Any,
    imp_0_10: Any,
    sat_0_10: Any,
    *,
    joint: Any = None,
) -> np.ndarray:
    """Expected opportunity score ``E[imp + max(imp - sat, 0)]`` implied by rating distributions.

    On the 0-10 base of the respondent opportunity scores, so on their 0-20 scale (module notes).

    Parameters
    ----------
    imp_probs : array_like, shape (..., J, C_imp)
        Importance category probabilities (any leading axes: segments, draws x segments ...).
    sat_probs : array_like, shape (..., J, C_sat)
        Satisfaction category probabilities, the same leading axes.
    imp_0_10, sat_0_10 : array_like, shapes (C_imp,), (C_sat,)
        The 0-10 values of the scale points (:attr:`Ratings.imp_0_10`, :attr:`Ratings.sat_0_10`).
    joint : array_like, shape (..., J, C_imp, C_sat), optional
        The joint cell probabilities of (importance, satisfaction) within the segment; by default
        the product of the two margins (independence within the segment). When given,
        ``imp_probs`` and ``sat_probs`` are not used.

    Returns
    -------
    ndarray, shape (..., J)
        In [0, 20].

    Examples
    --------
    A segment that always rates importance 5 and satisfaction 1 on 1-5 scales has opportunity 20;
    one that rates importance 5 and satisfaction 1 or 5 with equal chance has 10 + 5 = 15:

    >>> pts = np.array([0.0, 2.5, 5.0, 7.5, 10.0])
    >>> p = np.array([[[0, 0, 0, 0, 1.0]], [[0, 0, 0, 0, 1.0]]])
    >>> q = np.array([[[1.0, 0, 0, 0, 0]], [[0.5, 0, 0, 0, 0.5]]])
    >>> segment_opportunity(p, q, pts, pts).tolist()
    [[20.0], [15.0]]
    """
    G = gap_table(np.asarray(imp_0_10), np.asarray(sat_0_10))
    if joint is not None:
        return np.einsum("...ab,ab->...", np.asarray(joint, dtype=float), G)
    p = np.asarray(imp_probs, dtype=float)
    q = np.asarray(sat_probs, dtype=float)
    return np.einsum("...a,ab,...b->...", p, G, q)


def segment_top_box(
    imp_probs: Any,
    sat_probs: Any,
    imp_points: Any,
    sat_points: Any,
    *,
    top_box: int = 2,
) -> dict[str, np.ndarray]:
    """A segment's top-box landscape (Ulwick's aggregate form) from its rating distributions.

    Importance = 10 x P(importance in the top ``top_box`` boxes of its scale), satisfaction
    likewise, opportunity = importance + max(importance - satisfaction, 0), and Ulwick's class, as
    :func:`latentseg.prepare.scoring.opportunity_landscape` computes them from a sample.

    Parameters
    ----------
    imp_probs, sat_probs : array_like, shapes (..., J, C_imp), (..., J, C_sat)
    imp_points, sat_points : array_like, shapes (C_imp,), (C_sat,)
        The scale points (ratings) of the categories.
    top_box : int, default 2

    Returns
    -------
    dict
        ``importance``, ``satisfaction``, ``opportunity`` (ndarray, shape (..., J)) and ``class``
        (ndarray of str, shape (..., J)).

    Examples
    --------
    >>> pts = np.arange(1.0, 6.0)
    >>> tb = segment_top_box([[0, 0, 0.2, 0.3, 0.5]], [[0.5, 0.3, 0.2, 0, 0]], pts, pts)
    >>> tb["importance"].tolist(), tb["satisfaction"].tolist(), tb["opportunity"].tolist(), tb["class"].tolist()
    ([8.0], [0.0], [16.0], ['extremely underserved'])
    """
    from latentseg.prepare.scoring import classify, respondent_opportunity, top_box_threshold

    ip, sp = np.asarray(imp_points, dtype=float), np.asarray(sat_points, dtype=float)
    i_top = ip >= top_box_threshold(Scale(float(ip[0]), float(ip[-1])), top_box)
    s_top = sp >= top_box_threshold(Scale(float(sp[0]), float(sp[-1])), top_box)
    imp = 10.0 * (np.asarray(imp_probs, dtype=float) * i_top).sum(axis=-1)
    sat = 10.0 * (np.asarray(sat_probs, dtype=float) * s_top).sum(axis=-1)
    opp = respondent_opportunity(imp, sat)
    return {"importance": imp, "satisfaction": sat, "opportunity": opp, "class": classify(imp, sat, opp)}


def segment_landscape(result: Any, *, top_box: int = 2) -> pd.DataFrame:
    """The segment opportunity and top-box landscape of a fitted rating family, as one tidy table.

    Parameters
    ----------
    result : SegmentationResult
        A fit of a rating family: ``centers`` (k, J) segment opportunity, optional
        ``center_intervals`` (k, J, 2), ``params["imp_probs"]``, ``params["sat_probs"]`` and
        ``extras["scale_points"]`` (the importance and satisfaction points).

    Returns
    -------
    DataFrame
        One row per segment and outcome: ``segment, outcome, opportunity, opportunity_lower,
        opportunity_upper`` (the expected opportunity score and its interval) and the top-box
        ``importance, satisfaction, top_box_opportunity, class``.
    """
    points = result.extras["scale_points"]
    ip = np.asarray(points.loc[points["kind"] == IMP, "point"], dtype=float)
    sp = np.asarray(points.loc[points["kind"] == SAT, "point"], dtype=float)
    tb = segment_top_box(result.params["imp_probs"], result.params["sat_probs"], ip, sp, top_box=top_box)
    k, J = np.asarray(result.centers).shape
    ci = result.center_intervals
    ci = np.full((k, J, 2), np.nan) if ci is None else np.asarray(ci, dtype=float)
    return pd.DataFrame(
        {
            "segment": np.repeat(np.arange(1, k + 1), J),
            "outcome": np.tile(list(result.feature_names), k),
            "opportunity": np.asarray(result.centers, dtype=float).ravel(),
            "opportunity_lower": ci[..., 0].ravel(),
            "opportunity_upper": ci[..., 1].ravel(),
            "importance": tb["importance"].ravel(),
            "satisfaction": tb["satisfaction"].ravel(),
            "top_box_opportunity": tb["opportunity"].ravel(),
            "class": tb["class"].ravel(),
        }
    )
