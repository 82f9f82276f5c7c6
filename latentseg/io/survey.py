"""The survey as data: :class:`Survey` and :class:`Scale`.

A ``Survey`` is produced by :func:`latentseg.read_survey` (files) or :func:`latentseg.research.simulate.simulate_survey`
(known truth). It is immutable; cleaning returns a new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Scale", "Survey"]


@dataclass(frozen=True)
class Scale:
    """A rating scale ``low..high`` (e.g. 1-5), and whether it was inferred from the data.

    Examples
    --------
    >>> Scale(1, 5).to_0_10(np.array([1.0, 3.0, 5.0])).tolist()
    [0.0, 5.0, 10.0]
    >>> str(Scale(1, 10))
    '1-10'
    """

    low: float
    high: float
    inferred: bool = False

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"A scale needs high > low; got {self.low}-{self.high}.")

    def to_0_10(self, values: Any) -> Any:
        """Map ratings linearly onto 0-10: ``10 (x - low) / (high - low)``."""
        return (values - self.low) * (10.0 / (self.high - self.low))

    def __str__(self) -> str:
        fmt = lambda v: str(int(v)) if float(v).is_integer() else str(v)  # noqa: E731
        return f"{fmt(self.low)}-{fmt(self.high)}"

    @classmethod
    def parse(cls, text: str) -> Scale:
        """Parse ``"1-5"`` / ``"0-10"`` into a Scale.

        Examples
        --------
        >>> Scale.parse("1-10")
        Scale(low=1.0, high=10.0, inferred=False)
        """
        from latentseg.errors import ConfigError

        try:
            lo, hi = (float(p) for p in str(text).replace("..", "-").split("-", 1))
            return cls(lo, hi)
        except ValueError:
            raise ConfigError(f"A scale must look like '1-5' or '0-10'; got {text!r}.") from None


@dataclass(frozen=True, eq=False)
class Survey:
    """A validated outcome survey.

    Attributes
    ----------
    importance, satisfaction : DataFrame, shape (n, m)
        Raw ratings on their own scales, NaN where unrated; index = respondent ids,
        columns = outcome ids (identical in both).
    outcomes : DataFrame, shape (m, 2)
        Indexed by outcome id, columns ``statement`` and ``job_step`` (the id stands in where
        no statement is known; ``job_step`` may be empty strings).
    imp_scale, sat_scale : Scale
    profile : DataFrame, shape (n, p)
        Demographic, firmographic and behavioural columns (anything that is not a rating,
        the id, the duration or the weight).
    duration : Series, optional
        Completion time in seconds, per respondent.
    weight : Series, optional
        Survey weight per respondent.
    source : str
        The file (or ``"<simulated>"``) the survey came from; used in messages.
    notes : tuple of str
        What the reader inferred or assumed (inferred scales, recoded missing codes ...).
    value_labels : mapping
        Value labels per column (SPSS), ``{column: {code: label}}``.
    unread_profile : tuple of str
        Profile columns whose values were not read (``read_survey(..., profile=False)``, as
        ``latentseg validate`` reads a survey); empty when ``profile`` holds every profile column.
    set_aside : DataFrame
        Respondents the reader set aside before validation (a Qualtrics export's survey
        previews, tests, spam and unfinished responses), columns ``respondent_id`` and
        ``reasons``; :func:`latentseg.prepare.cleaning.clean` lists them in its report.
    personal : tuple of str
        Columns recognised as personal data (IP address, e-mail, names, location, recipient or
        external reference) and left out of ``profile``.
    columns : mapping
        How the file's columns were read: ``id`` (the id column or None), ``importance`` and
        ``satisfaction`` (the rating columns, in outcome order), ``labels`` (block -> the label
        set that turned choice text into numbers), ``layout`` (``plain``, ``qualtrics``,
        ``surveymonkey``) and ``weight`` (the weight column's name in the file, or None); empty
        for a survey not read from a table.
    """

    importance: pd.DataFrame
    satisfaction: pd.DataFrame
    outcomes: pd.DataFrame
    imp_scale: Scale
    sat_scale: Scale
    profile: pd.DataFrame = field(default_factory=pd.DataFrame)
    duration: pd.Series | None = None
    weight: pd.Series | None = None
    source: str = "<memory>"
    notes: tuple[str, ...] = ()
    value_labels: Mapping[str, Mapping[Any, str]] = field(default_factory=dict)
    unread_profile: tuple[str, ...] = ()
    set_aside: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"respondent_id": [], "reasons": []}, dtype="str"))
    personal: tuple[str, ...] = ()
    columns: Mapping[str, Any] = field(default_factory=dict)

    @property
    def respondent_ids(self) -> pd.Index:
        """Respondent ids, length n (text, dtype ``str``, for a survey read from a file or frame)."""
        return self.importance.index

    @property
    def profile_columns(self) -> list[str]:
        """The names of the profile columns, read (``profile``) or not (``unread_profile``)."""
        return [str(c) for c in self.profile.columns] + list(self.unread_profile)

    @property
    def outcome_ids(self) -> list[str]:
        """Outcome ids, length m."""
        return [str(c) for c in self.importance.columns]

    @property
    def n_respondents(self) -> int:
        return int(self.importance.shape[0])

    @property
    def n_outcomes(self) -> int:
        return int(self.importance.shape[1])

    def importance_0_10(self) -> pd.DataFrame:
        """Importance rescaled linearly onto 0-10, shape (n, m)."""
        return self.imp_scale.to_0_10(self.importance.astype(float))

    def satisfaction_0_10(self) -> pd.DataFrame:
        """Satisfaction rescaled linearly onto 0-10, shape (n, m)."""
        return self.sat_scale.to_0_10(self.satisfaction.astype(float))

    def statements(self) -> dict[str, str]:
        """Outcome id -> statement."""
        return {str(k): str(v) for k, v in self.outcomes["statement"].items()}

    def to_frame(self, imp_prefix: str = "imp_", sat_prefix: str = "sat_") -> pd.DataFrame:
        """The survey as one wide table, as a reader expects it: ``respondent_id``, then
        ``imp_<outcome>`` and ``sat_<outcome>`` for every outcome, the profile columns, and
        ``duration`` / ``weight`` where present.

        Returns
        -------
        DataFrame, shape (n, 1 + 2m + p [+ 1] [+ 1])
        """
        parts = [
            pd.Series(self.respondent_ids, index=self.respondent_ids, name="respondent_id"),
            self.importance.add_prefix(imp_prefix),
            self.satisfaction.add_prefix(sat_prefix),
            self.profile,
        ]
        if self.duration is not None:
            parts.append(self.duration.rename("duration"))
        if self.weight is not None:
            parts.append(self.weight.rename("weight"))
        return pd.concat(parts, axis=1).reset_index(drop=True)

    def subset(self, ids: Sequence[Any] | pd.Index | np.ndarray) -> Survey:
        """A new survey with only the given respondents (in the given order)."""
        ids = pd.Index(ids)
        return dataclasses.replace(
            self,
            importance=self.importance.loc[ids],
            satisfaction=self.satisfaction.loc[ids],
            profile=self.profile.loc[ids] if len(self.profile.columns) else self.profile.reindex(ids),
            duration=None if self.duration is None else self.duration.loc[ids],
            weight=None if self.weight is None else self.weight.loc[ids],
        )
