"""Cleaning, the playbook's step 1: exclude straight-liners, speeders and mostly-unrated respondents.

Nothing is dropped without a record: :func:`clean` returns the clean survey together with a
:class:`CleaningReport` that lists every excluded respondent with every rule that excluded it.

Rules (each with its threshold, all configurable in ``[cleaning]`` of ``latentseg.toml``):

straight-liner
    the same rating for every outcome the respondent rated in the importance block, or in the
    satisfaction block (at least two ratings in that block); the reason says which block.
speeder
    completion time below ``speeder_fraction`` x the median completion time (only where the
    survey has a duration column; respondents without a duration are never speeders).
unrated
    more than ``max_unrated`` of the outcomes missing an importance or a satisfaction rating.
status
    set aside by the reader (:attr:`latentseg.io.survey.Survey.set_aside`): a Qualtrics export's
    survey previews, tests and spam (``Status``) and unfinished responses (``Finished``); listed
    here with the reader's reason. Counted (key ``status``) only where there are some.

Below ``min_respondents`` clean respondents, algorithmic clustering is unstable; :func:`clean`
warns and :func:`manual_groups` offers the playbook's fallback (group respondents by their top
three underserved outcomes).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, LatentsegWarning, SurveyError
from latentseg.io.survey import Survey

__all__ = ["clean", "CleaningReport", "manual_groups", "RULES"]

#: The rules, in the order reasons are listed.
RULES = ("straightliner", "speeder", "unrated")
_RULE_LABELS = (("straightliner", "straight-liners"), ("speeder", "speeders"), ("unrated", "unrated"))
_STATUS_LABEL = "previews, tests, spam and unfinished"


@dataclass(frozen=True, eq=False, repr=False)
class CleaningReport:
    """What :func:`clean` excluded, and why.

    Attributes
    ----------
    excluded : DataFrame
        One row per excluded respondent (in survey order, the reader's set-aside responses first):
        ``respondent_id``, ``reasons`` (every rule that applies, joined with ``"; "``), and one
        boolean column per rule (``straightliner``, ``speeder``, ``unrated``, and ``status``
        where the reader set responses aside).
    counts : mapping
        Respondents caught by each rule (a respondent caught by two rules counts in both).
    n_in, n_out : int
        Respondents before and after cleaning.
    thresholds : mapping
        The settings used (``straightliners``, ``speeder_fraction``, ``max_unrated``,
        ``min_respondents``, and ``median_duration`` where a duration exists).
    source : str
        The survey's file.
    dropped_outcomes : mapping
        Outcomes left out of the model input, with the reason (an outcome on which every
        respondent has the same opportunity score cannot separate segments); filled by
        :func:`latentseg.prepare.core.prepare`.
    """

    excluded: pd.DataFrame
    counts: Mapping[str, int]
    n_in: int
    n_out: int
    thresholds: Mapping[str, Any]
    source: str = "<memory>"
    warnings: tuple[str, ...] = field(default=())
    dropped_outcomes: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_excluded(self) -> int:
        return self.n_in - self.n_out

    def to_frame(self) -> pd.DataFrame:
        """The excluded respondents (a copy of :attr:`excluded`)."""
        return self.excluded.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, thresholds and the excluded respondents with reasons."""
        from latentseg.io.jsonsafe import json_safe

        ids = [x.item() if isinstance(x, np.generic) else x for x in self.excluded["respondent_id"]]
        return json_safe(
            {
                "source": self.source,
                "n_in": self.n_in,
                "n_out": self.n_out,
                "n_excluded": self.n_excluded,
                "counts": dict(self.counts),
                "thresholds": dict(self.thresholds),
                "warnings": list(self.warnings),
                "dropped_outcomes": dict(self.dropped_outcomes),
                "excluded": [
                    {"respondent_id": i, "reasons": r}
                    for i, r in zip(ids, self.excluded["reasons"].tolist(), strict=True)
                ],
            }
        )

    def __repr__(self) -> str:
        """``<CleaningReport survey.csv: 400 in, 380 kept, 20 excluded (straight-liners 12, ...)>``,
        then outcomes left out and warnings, clipped."""
        from latentseg._display import clip, finish_repr

        c = self.counts
        by_rule = ", ".join(f"{label} {c.get(key, 0)}" for key, label in _RULE_LABELS)
        if c.get("status"):
            by_rule += f", {_STATUS_LABEL} {c['status']}"
        lines = [
            f"<CleaningReport {clip(self.source, 80)}: {self.n_in} in, {self.n_out} kept, "
            f"{self.n_excluded} excluded ({by_rule})>"
        ]
        dropped = list(self.dropped_outcomes.items())
        lines.extend(f"  outcome left out: {clip(o, 40)} ({clip(why, 100)})" for o, why in dropped[:3])
        if len(dropped) > 3:
            lines.append(f"  ... and {len(dropped) - 3} more outcomes left out")
        lines.extend(f"  warning: {clip(w, 200)}" for w in self.warnings[:3])
        return finish_repr(lines)

    def _repr_html_(self) -> str:
        """Counts per rule with its threshold, outcomes left out, warnings highlighted, for Jupyter.
        All text is HTML-escaped."""
        from latentseg._display import Raw, badge, box, esc, table

        t = self.thresholds
        sp = t.get("speeder_fraction")
        med = t.get("median_duration")
        why = {
            "straightliner": "identical ratings across every outcome in a block" if t.get("straightliners") else "rule off",
            "speeder": "no duration column" if med is None else (
                "rule off" if not sp else f"under {sp:.3g} x median duration {med:.4g}"),
            "unrated": f"more than {t.get('max_unrated', 0):.0%} of outcomes missing a rating",
        }
        rows = [(label, f"{self.counts.get(key, 0):,}", why[key]) for key, label in _RULE_LABELS]
        if self.counts.get("status"):
            rows.insert(0, (_STATUS_LABEL, f"{self.counts['status']:,}", "Status / Finished columns of the export"))
        rows.append(("excluded (any rule)", f"{self.n_excluded:,}", "a respondent caught by two rules counts once"))
        title = Raw(
            f"CleaningReport: {esc(self.source)}: {self.n_in:,} in, {self.n_out:,} kept, {self.n_excluded:,} excluded"
            + (f" {badge(f'{len(self.warnings)} warning' + 's' * (len(self.warnings) != 1), 'warn')}" if self.warnings else "")
        )
        dropped = Raw("".join(
            f'<p style="margin:2px 0">{badge("outcome left out", "info")} {esc(o)}: {esc(w)}</p>'
            for o, w in self.dropped_outcomes.items()
        )) if self.dropped_outcomes else None
        warns = Raw("".join(
            f'<p style="margin:2px 0">{badge("warning", "warn")} {esc(w)}</p>' for w in self.warnings
        )) if self.warnings else None
        return box(title, table(["Rule", "Respondents", "Threshold"], rows), dropped, warns)

    def summary(self) -> str:
        """A few lines of text for people.

        Examples
        --------
        >>> from latentseg.io.survey import Scale, Survey
        >>> imp = pd.DataFrame({"a": [5.0, 3, 4], "b": [5.0, 1, 2]}, index=[1, 2, 3])
        >>> s = Survey(imp, imp.copy(), pd.DataFrame({"statement": ["a", "b"], "job_step": ""},
        ...            index=["a", "b"]), Scale(1, 5), Scale(1, 5))
        >>> print(clean(s, min_respondents=0)[1].summary())
        Cleaning: 3 respondents in, 2 kept, 1 excluded.
          straight-liners: 1 (identical ratings across every outcome in a block)
          speeders: 0 (no duration column)
          unrated: 0 (more than 20% of outcomes missing a rating)
        """
        t = self.thresholds
        lines = [f"Cleaning: {self.n_in} respondents in, {self.n_out} kept, {self.n_excluded} excluded."]
        if self.counts.get("status"):
            lines.append(f"  {_STATUS_LABEL}: {self.counts['status']} (Status / Finished columns of the export)")
        sl = "identical ratings across every outcome in a block" if t["straightliners"] else "rule off"
        lines.append(f"  straight-liners: {self.counts['straightliner']} ({sl})")
        if t.get("median_duration") is None:
            sp = "no duration column"
        elif t["speeder_fraction"] <= 0:
            sp = "rule off"
        else:
            sp = (
                f"under {t['speeder_fraction']:.3g} x median duration {t['median_duration']:.4g}"
                f" = {t['speeder_fraction'] * t['median_duration']:.4g}"
            )
        lines.append(f"  speeders: {self.counts['speeder']} ({sp})")
        lines.append(f"  unrated: {self.counts['unrated']} (more than {t['max_unrated']:.0%} of outcomes missing a rating)")
        lines.extend(f"  outcome left out: {o} ({why})" for o, why in self.dropped_outcomes.items())
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _straight(block: np.ndarray) -> np.ndarray:
    """Rows whose rated values (>= 2 of them) are all equal. Vectorised, NaN-aware."""
    hi = np.fmax.reduce(block, axis=1)
    lo = np.fmin.reduce(block, axis=1)
    rated = block.shape[1] - np.count_nonzero(np.isnan(block), axis=1)
    return (hi == lo) & (rated >= 2)


def _check(name: str, value: float, low: float, high: float, high_open: bool = False) -> float:
    ok = low <= value < high if high_open else low <= value <= high
    if isinstance(value, bool) or not ok:
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ConfigError(f"clean(): '{name}' must be a number in {bound}; got {value!r}.")
    return float(value)


def clean(
    survey: Survey,
    *,
    straightliners: bool = True,
    speeder_fraction: float = 1 / 3,
    max_unrated: float = 0.2,
    min_respondents: int = 100,
) -> tuple[Survey, CleaningReport]:
    """Exclude straight-liners, speeders and mostly-unrated respondents, with a report.

    Parameters
    ----------
    survey : Survey
    straightliners : bool, default True
        Exclude respondents with identical ratings across every rated outcome in the importance
        block or in the satisfaction block.
    speeder_fraction : float, default 1/3
        Exclude respondents whose duration is below this fraction of the median (0 = off).
    max_unrated : float, default 0.2
        Exclude respondents with more than this fraction of outcomes missing importance or
        satisfaction (1 = off).
    min_respondents : int, default 100
        Warn when fewer clean respondents remain.

    Returns
    -------
    clean_survey : Survey
        The kept respondents, in the original order (the same object when nobody is excluded).
    report : CleaningReport

    Raises
    ------
    SurveyError
        No respondent is left; the message says how many each rule removed.
    ConfigError
        A threshold out of range.

    Warns
    -----
    LatentsegWarning
        Fewer than ``min_respondents`` clean respondents.

    Examples
    --------
    >>> from latentseg.io.survey import Scale, Survey
    >>> imp = pd.DataFrame({"a": [5.0, 3, 4], "b": [5.0, 1, 2]}, index=["r1", "r2", "r3"])
    >>> sat = pd.DataFrame({"a": [1.0, 2, 3], "b": [2.0, 3, 4]}, index=imp.index)
    >>> out = pd.DataFrame({"statement": ["a", "b"], "job_step": ""}, index=["a", "b"])
    >>> kept, report = clean(Survey(imp, sat, out, Scale(1, 5), Scale(1, 5)), min_respondents=0)
    >>> kept.respondent_ids.tolist(), report.excluded["reasons"].tolist()
    (['r2', 'r3'], ['straight-liner (importance)'])
    """
    speeder_fraction = _check("speeder_fraction", speeder_fraction, 0.0, 1.0, high_open=True)
    max_unrated = _check("max_unrated", max_unrated, 0.0, 1.0)
    if isinstance(min_respondents, bool) or not isinstance(min_respondents, (int, np.integer)) or min_respondents < 0:
        raise ConfigError(f"clean(): 'min_respondents' must be an integer >= 0; got {min_respondents!r}.")

    imp = survey.importance.to_numpy(dtype=np.float64)
    sat = survey.satisfaction.to_numpy(dtype=np.float64)
    n, m = imp.shape

    if straightliners:
        sl_imp, sl_sat = _straight(imp), _straight(sat)
    else:
        sl_imp = sl_sat = np.zeros(n, dtype=bool)

    median = None
    speed = np.zeros(n, dtype=bool)
    if survey.duration is not None:
        dur = survey.duration.to_numpy(dtype=np.float64)
        if np.isfinite(dur).any():
            median = float(np.nanmedian(dur))
            if speeder_fraction > 0:
                with np.errstate(invalid="ignore"):
                    speed = dur < speeder_fraction * median

    missing = np.count_nonzero(np.isnan(imp) | np.isnan(sat), axis=1)
    unrated = missing > max_unrated * m + 1e-9

    straight = sl_imp | sl_sat
    drop = straight | speed | unrated
    counts = {"straightliner": int(straight.sum()), "speeder": int(speed.sum()), "unrated": int(unrated.sum())}
    thresholds: dict[str, Any] = {
        "straightliners": bool(straightliners),
        "speeder_fraction": speeder_fraction,
        "max_unrated": max_unrated,
        "min_respondents": int(min_respondents),
        "median_duration": median,
    }

    pos = np.flatnonzero(drop)
    excluded = _excluded_frame(survey, pos, sl_imp, sl_sat, speed, unrated, missing, m, median, speeder_fraction)
    n_out = n - len(pos)
    aside = survey.set_aside
    if len(aside):  # the reader's set-aside responses come first, with the reader's reasons
        counts["status"] = len(aside)
        first = pd.DataFrame({
            "respondent_id": aside["respondent_id"].to_numpy(),
            "reasons": pd.Series(aside["reasons"].to_numpy(), dtype="str"),
            **{rule: np.zeros(len(aside), dtype=bool) for rule in RULES},
            "status": np.ones(len(aside), dtype=bool),
        })
        excluded = pd.concat([first, excluded.assign(status=np.zeros(len(excluded), dtype=bool))], ignore_index=True)
        if excluded["respondent_id"].map(type).nunique() > 1:  # ids as text throughout
            excluded["respondent_id"] = excluded["respondent_id"].astype(str)
    if n_out == 0:
        raise SurveyError(
            f"{survey.source}: no respondents left after cleaning all {n}: straight-liners removed "
            f"{counts['straightliner']}, speeders {counts['speeder']}, too many unrated outcomes "
            f"{counts['unrated']} (respondents can be caught by several rules); expected some respondents "
            "to pass: check the file, or loosen [cleaning] thresholds."
        )
    notes: list[str] = []
    if n_out < min_respondents:
        msg = (
            f"only {n_out} respondents remain after cleaning {survey.source} (fewer than {min_respondents}): "
            "algorithmic clustering is unstable at that size; consider the playbook's manual grouping, "
            "latentseg.prepare.cleaning.manual_groups(latentseg.opportunity_scores(survey))."
        )
        warnings.warn(msg, LatentsegWarning, stacklevel=2)
        notes.append(msg)
    report = CleaningReport(
        excluded=excluded, counts=counts, n_in=n + len(aside), n_out=n_out, thresholds=thresholds, source=survey.source,
        warnings=tuple(notes),
    )
    if not len(pos):
        return (dataclasses.replace(survey, set_aside=survey.set_aside.iloc[:0]) if len(aside) else survey), report
    return _keep(survey, ~drop, len(pos)), report


def _excluded_frame(
    survey: Survey, pos: np.ndarray, sl_imp: np.ndarray, sl_sat: np.ndarray, speed: np.ndarray,
    unrated: np.ndarray, missing: np.ndarray, m: int, median: float | None, fraction: float,
) -> pd.DataFrame:
    ids = survey.respondent_ids[pos]
    dur = survey.duration.to_numpy(dtype=np.float64)[pos] if survey.duration is not None else None
    reasons = []
    for i, p in enumerate(pos):  # excluded respondents only
        r = []
        if sl_imp[p] and sl_sat[p]:
            r.append("straight-liner (importance and satisfaction)")
        elif sl_imp[p]:
            r.append("straight-liner (importance)")
        elif sl_sat[p]:
            r.append("straight-liner (satisfaction)")
        if speed[p]:
            r.append(f"speeder ({dur[i]:.4g} < {fraction:.3g} x median {median:.4g})")  # type: ignore[index]
        if unrated[p]:
            r.append(f"unrated ({int(missing[p])} of {m} outcomes missing a rating)")
        reasons.append("; ".join(r))
    return pd.DataFrame(
        {
            "respondent_id": ids.to_numpy(),
            "reasons": pd.Series(reasons, dtype="str"),
            "straightliner": (sl_imp | sl_sat)[pos],
            "speeder": speed[pos],
            "unrated": unrated[pos],
        }
    )


def _take_rows(frame: pd.DataFrame, keep: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Rows ``keep`` of a rating block, copied once outcome by outcome (no pandas take)."""
    values = frame.to_numpy()
    if values.dtype.kind != "f":
        return frame.iloc[keep]
    sub = values.T[:, keep].T  # (n', m), each outcome contiguous
    return pd.DataFrame(sub, index=index, columns=frame.columns, copy=False)


def _keep(survey: Survey, keep: np.ndarray, n_dropped: int) -> Survey:
    index = survey.respondent_ids[keep]
    profile = survey.profile
    profile = profile.iloc[keep] if len(profile) == len(keep) else profile
    return dataclasses.replace(
        survey,
        importance=_take_rows(survey.importance, keep, index),
        satisfaction=_take_rows(survey.satisfaction, keep, index),
        profile=profile,
        duration=None if survey.duration is None else survey.duration.iloc[keep],
        weight=None if survey.weight is None else survey.weight.iloc[keep],
        notes=(*survey.notes, f"cleaning excluded {n_dropped} respondents (see the CleaningReport)"),
        set_aside=survey.set_aside.iloc[:0],  # reported once, by this cleaning
    )


def manual_groups(scores: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """The playbook's fallback for small samples: group respondents by their top underserved outcomes.

    Each respondent's ``top`` highest opportunity scores (ties broken by outcome order) define a
    group; respondents sharing the same set of outcomes form one group.

    Parameters
    ----------
    scores : DataFrame, shape (n, m)
        Opportunity scores (:func:`latentseg.prepare.scoring.opportunity_scores`), index respondent ids.
    top : int, default 3
        Outcomes per respondent.

    Returns
    -------
    DataFrame
        One row per group, largest first: ``group`` (1..G), ``outcomes`` (tuple of outcome ids,
        in score order of the group's mean), ``n``, ``share``, ``mean_opportunity`` (mean of the
        members' scores on those outcomes) and ``respondents`` (list of ids). Respondents with
        fewer than ``top`` scored outcomes are left out.

    Examples
    --------
    >>> sc = pd.DataFrame({"a": [15.0, 14, 2], "b": [12.0, 13, 3], "c": [1.0, 2, 16], "d": [0.0, 0, 11]},
    ...                   index=["r1", "r2", "r3"])
    >>> manual_groups(sc, top=2)[["group", "outcomes", "n"]].to_dict("records")
    [{'group': 1, 'outcomes': ('a', 'b'), 'n': 2}, {'group': 2, 'outcomes': ('c', 'd'), 'n': 1}]
    """
    if not isinstance(top, (int, np.integer)) or isinstance(top, bool) or top < 1:
        raise ConfigError(f"manual_groups(): 'top' must be an integer >= 1; got {top!r}.")
    values = scores.to_numpy(dtype=np.float64)
    n, m = values.shape
    if top > m:
        raise ConfigError(f"manual_groups(): 'top' ({top}) must not exceed the number of outcomes ({m}).")
    filled = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(-filled, axis=1, kind="stable")[:, :top]
    usable = np.isfinite(np.take_along_axis(filled, order, axis=1)).all(axis=1)
    keys = np.sort(order, axis=1)
    cols = [str(c) for c in scores.columns]
    frame = pd.DataFrame(keys[usable])
    frame["pos"] = np.flatnonzero(usable)
    groups = []
    for key, members in frame.groupby(list(range(top)), sort=False)["pos"]:
        idx = np.asarray(key if isinstance(key, tuple) else (key,), dtype=int)
        sub = values[np.ix_(members.to_numpy(), idx)]
        means = np.nanmean(sub, axis=0)
        ordered = idx[np.argsort(-means, kind="stable")]
        groups.append(
            {
                "outcomes": tuple(cols[j] for j in ordered),
                "n": int(len(members)),
                "mean_opportunity": float(np.nanmean(sub)),
                "respondents": scores.index[members.to_numpy()].tolist(),
            }
        )
    groups.sort(key=lambda g: (-g["n"], -g["mean_opportunity"]))
    total = int(usable.sum())
    out = pd.DataFrame(groups, columns=["outcomes", "n", "mean_opportunity", "respondents"])
    out.insert(0, "group", np.arange(1, len(out) + 1))
    out.insert(3, "share", out["n"] / total if total else np.nan)
    return out
