"""Indicators for the latent class models: opportunity levels and integer category codes.

A latent class model reads categorical indicators. For a survey they are the
:func:`opportunity_levels` of each outcome (served, underserved, extremely underserved), after
:func:`drop_constant_columns` has left out those on which everyone agrees; any other
categorical table works too. :func:`encode_indicators` turns the indicators into integer codes
(validating them), :func:`categories_frame` keeps the mapping with a fit, and
:func:`encode_new_indicators` codes new respondents with it.

>>> from latentseg.prepare.encoding import opportunity_levels, encode_indicators
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError, format_rows

__all__ = [
    "OPPORTUNITY_LEVEL_NAMES",
    "opportunity_levels",
    "drop_constant_columns",
    "EncodedIndicators",
    "encode_indicators",
    "encode_new_indicators",
    "categories_frame",
    "category_key",
]

#: Names of the default opportunity levels (Ulwick thresholds 10 and 15).
OPPORTUNITY_LEVEL_NAMES = ("served", "underserved", "extremely underserved")


# ====================================================================== survey -> levels
def drop_constant_columns(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Leave out indicators on which every respondent gives the same answer.

    Such a column carries no information about segments (its likelihood factor is 1 in every
    segment) and :func:`~latentseg.models.lca.fit_lca` refuses it; a survey outcome that is
    "served" for everyone is the common case. Callers say which columns were left out. When every
    column is constant the frame is returned unchanged, so the engine's own message names the
    problem.

    Parameters
    ----------
    frame : DataFrame, shape (n, j)

    Returns
    -------
    frame : DataFrame, shape (n, j')
    dropped : list of str
        The column names left out.

    Examples
    --------
    >>> kept, dropped = drop_constant_columns(pd.DataFrame({"a": [0, 1, 1], "b": [2, 2, None]}))
    >>> list(kept.columns), dropped
    (['a'], ['b'])
    """
    const = [str(c) for c in frame.columns if frame[c].nunique(dropna=True) < 2]
    if not const or len(const) == frame.shape[1]:
        return frame, []
    return frame.drop(columns=const), const


def opportunity_levels(
    scores: pd.DataFrame,
    cuts: Sequence[float] = (10.0, 15.0),
    *,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-respondent, per-outcome opportunity level: the latent class indicators of a survey.

    With the default Ulwick cut points on the respondent opportunity score (0-20 scale):
    below 10 -> 0 (served), 10 to below 15 -> 1 (underserved), 15 and above -> 2 (extremely
    underserved). NaN stays missing (and drops out of the latent class likelihood).

    The same function bins raw ratings: pass the ratings and cut points on their scale, e.g.
    ``opportunity_levels(importance, cuts=(3, 5))`` on a 1-5 scale gives 0 (1-2), 1 (3-4),
    2 (5). Raw ratings may also go to :func:`~latentseg.models.lca.fit_lca` directly
    (``measurement="ordinal"``).

    Parameters
    ----------
    scores : DataFrame, shape (n, m)
        Numeric respondent scores (respondents x outcomes).
    cuts : sequence of float, default (10.0, 15.0)
        Strictly increasing cut points; a value equal to a cut goes to the upper level.
    names : sequence of str, optional
        Level names (``len(cuts) + 1``); by default the levels are the integers ``0..len(cuts)``.
        :data:`OPPORTUNITY_LEVEL_NAMES` are the names of the default levels.

    Returns
    -------
    DataFrame, shape (n, m)
        Same index and columns; every column an ordered pandas Categorical.

    Raises
    ------
    ConfigError
        Cut points that are not finite and strictly increasing, or names of the wrong length.
    SurveyError
        A non-numeric column.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"o1": [4.0, 10.0, 14.9, 15.0, None]})
    >>> opportunity_levels(s)["o1"].tolist()
    [0, 1, 1, 2, nan]
    >>> opportunity_levels(s, names=OPPORTUNITY_LEVEL_NAMES)["o1"].iloc[3]
    'extremely underserved'
    """
    cut = np.asarray(list(cuts), dtype=float)
    if cut.ndim != 1 or cut.size == 0 or not np.all(np.isfinite(cut)) or np.any(np.diff(cut) <= 0):
        raise ConfigError(f"Opportunity cut points must be finite and strictly increasing; got {list(cuts)}.")
    levels: list[Any] = list(range(cut.size + 1))
    if names is not None:
        if len(names) != cut.size + 1:
            raise ConfigError(f"{cut.size} cut points make {cut.size + 1} levels; got {len(names)} names.")
        levels = [str(x) for x in names]
    df = _as_frame(scores, "scores")
    bad = [str(c) for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise SurveyError(f"Opportunity levels need numeric scores; column(s) {bad} are not numeric.")
    out = {}
    dtype = pd.CategoricalDtype(levels, ordered=True)
    for c in df.columns:
        v = df[c].to_numpy(dtype=float, na_value=np.nan)
        code = np.searchsorted(cut, v, side="right")
        code = np.where(np.isnan(v), -1, code)
        out[c] = pd.Categorical.from_codes(code, dtype=dtype)
    return pd.DataFrame(out, index=df.index)


# ====================================================================== codes
@dataclasses.dataclass(frozen=True)
class EncodedIndicators:
    """Indicators as integer codes: ``codes[i, j]`` in ``0..n_cat[j] - 1``, ``-1`` when missing.

    Made by :func:`encode_indicators`; the input of the latent class engines.

    Attributes
    ----------
    codes : ndarray of int64, shape (n, J)
    n_cat : ndarray of int64, shape (J,)
        Observed categories per indicator.
    items : tuple of str
        The indicator (column) names.
    keys : tuple of tuple of str
        Each indicator's category labels in code order (see :func:`category_key`).
    values : tuple of ndarray
        Each indicator's numeric category values in code order (NaN where not numeric).
    ids : pandas.Index
        Respondent ids (the rows).

    Examples
    --------
    >>> enc = encode_indicators(pd.DataFrame({"q": ["b", "a", None], "r": [1, 2, 2]}))
    >>> enc.codes[:, 0].tolist(), enc.keys, enc.observed[:, 0].tolist()
    ([1, 0, -1], (('a', 'b'), ('1', '2')), [True, True, False])
    """

    codes: np.ndarray  # (n, J) int64
    n_cat: np.ndarray  # (J,) int64
    items: tuple[str, ...]
    keys: tuple[tuple[str, ...], ...]  # category labels (as strings) per item
    values: tuple[np.ndarray, ...]  # numeric category values per item (NaN when not numeric)
    ids: pd.Index

    @property
    def observed(self) -> np.ndarray:
        """Where a value is present, shape (n, J)."""
        return self.codes >= 0


def _is_number(v: Any) -> bool:
    return isinstance(v, (numbers.Number, np.bool_)) and not isinstance(v, complex)


def category_key(v: Any) -> str:
    """A stable string label for a category value (``3``, ``3.0`` and ``"3"`` all give ``"3"``).

    Examples
    --------
    >>> [category_key(v) for v in (3, 3.0, "3", 2.5, True)]
    ['3', '3', '3', '2.5', 'True']
    """
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if _is_number(v):
        f = float(v)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(v)


def _as_frame(data: Any, what: str = "data") -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    arr = np.asarray(data, dtype=object)
    if arr.ndim != 2:
        raise ConfigError(f"The {what} must be a 2-D table (respondents x indicators); got {arr.ndim} dimension(s).")
    # as the other engines: columns x1..xd, respondent ids 1..n
    return pd.DataFrame(arr, columns=[f"x{j + 1}" for j in range(arr.shape[1])], index=pd.RangeIndex(1, arr.shape[0] + 1))


def _column_codes(s: pd.Series) -> tuple[np.ndarray, list[Any], bool]:
    """Codes (n,) of one column (-1 missing), its observed categories in order, and whether
    that order is meaningful (ordered Categorical, numbers, booleans)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        raw = np.asarray(s.cat.codes.to_numpy(), dtype=np.int64)
        cats_all = s.cat.categories.tolist()
        used = np.unique(raw[raw >= 0])
        remap = np.full(len(cats_all) + 1, -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        cats = [cats_all[u] for u in used]
        return remap[raw], cats, bool(s.cat.ordered) or all(_is_number(c) for c in cats)
    raw, uniq = pd.factorize(s, use_na_sentinel=True)
    raw = np.asarray(raw, dtype=np.int64)
    uniq = list(np.asarray(uniq, dtype=object))
    numeric = all(_is_number(v) for v in uniq)
    order = sorted(range(len(uniq)), key=(lambda i: float(uniq[i])) if numeric else (lambda i: category_key(uniq[i])))
    remap = np.empty(len(uniq) + 1, dtype=np.int64)
    remap[order] = np.arange(len(uniq))
    remap[-1] = -1
    return remap[raw], [uniq[i] for i in order], numeric


def encode_indicators(data: Any, measurement: str = "categorical") -> EncodedIndicators:
    """Map each column's categories to codes ``0..C_j - 1`` and validate them as latent class indicators.

    Numbers (and ordered categoricals) keep their order; other categories are ordered by their
    label. Missing values get code ``-1``. Every problem of a kind is reported in one message.

    Parameters
    ----------
    data : DataFrame or array-like, shape (n, J)
        One column per indicator; an array gets columns ``x1..xJ`` and respondent ids ``1..n``.
    measurement : {"categorical", "binary", "ordinal"}, default "categorical"
        ``binary`` needs exactly two categories per column; ``ordinal`` needs ordered ones
        (numbers or an ordered pandas Categorical).

    Returns
    -------
    EncodedIndicators

    Raises
    ------
    SurveyError
        A column with fewer than two observed categories, categories that differ only in type
        (``1`` and ``"1"``), no respondents, or respondents with every indicator missing.
    ConfigError
        No columns, or columns that do not fit ``measurement``.

    Examples
    --------
    >>> enc = encode_indicators(pd.DataFrame({"q1": [5, 1, 3, 1], "q2": ["no", "yes", "yes", None]}))
    >>> enc.codes.tolist(), enc.n_cat.tolist(), enc.items
    ([[2, 0], [0, 1], [1, 1], [0, -1]], [3, 2], ('q1', 'q2'))
    """
    df = _as_frame(data)
    if df.shape[1] == 0:
        raise ConfigError("The data has no indicator columns; a latent class model needs at least one.")
    if df.shape[0] == 0:
        raise SurveyError("The data has no respondents (0 rows).")
    n, J = df.shape
    codes = np.full((n, J), -1, dtype=np.int64)
    keys: list[tuple[str, ...]] = []
    values: list[np.ndarray] = []
    few: list[str] = []
    unordered: list[str] = []
    too_many: list[str] = []
    for j, col in enumerate(df.columns):
        col_codes, cats, ordered = _column_codes(df[col])
        keyed = [category_key(c) for c in cats]
        keys.append(tuple(keyed))
        values.append(np.array([float(c) if _is_number(c) else np.nan for c in cats]))
        if len(cats) < 2:
            few.append(f"'{col}' ({'no observed values' if not cats else 'only ' + repr(keyed[0])})")
            continue
        if measurement == "ordinal" and not ordered:
            unordered.append(f"'{col}'")
        if measurement == "binary" and len(cats) != 2:
            too_many.append(f"'{col}' ({len(cats)})")
        if len(set(keyed)) != len(keyed):
            raise SurveyError(f"Column '{col}' has categories that differ only in type (e.g. 1 and '1'): {keyed}.")
        codes[:, j] = col_codes
    if few:
        raise SurveyError(
            f"Column{'s' if len(few) > 1 else ''} {', '.join(few)} need{'' if len(few) > 1 else 's'} at least two "
            "observed categories to serve as a latent class indicator; drop or recode "
            f"{'them' if len(few) > 1 else 'it'}."
        )
    if too_many:
        raise ConfigError(
            f"measurement='binary' needs exactly two categories per column; column(s) {', '.join(too_many)} "
            "have more. Use measurement='categorical' or 'ordinal'."
        )
    if unordered:
        raise ConfigError(
            f"measurement='ordinal' needs ordered levels; column(s) {', '.join(unordered)} hold unordered "
            "categories. Pass numeric levels or an ordered pandas Categorical, or use measurement='categorical'."
        )
    empty = ~(codes >= 0).any(axis=1)
    if empty.any():
        bad = df.index[empty]
        raise SurveyError(
            f"{int(empty.sum())} respondent(s) have every indicator missing at rows {format_rows(bad.tolist())}; "
            "drop them before fitting a latent class model (they carry no information)."
        )
    return EncodedIndicators(
        codes=codes,
        n_cat=np.array([len(kk) for kk in keys], dtype=np.int64),
        items=tuple(str(c) for c in df.columns),
        keys=tuple(keys),
        values=tuple(values),
        ids=df.index,
    )


def encode_new_indicators(result: Any, data: Any) -> np.ndarray:
    """Codes of new respondents under the category mapping kept at fit time.

    Parameters
    ----------
    result : SegmentationResult
        A latent class fit: its ``feature_names`` and ``extras["categories"]`` (the table of
        :func:`categories_frame`).
    data : DataFrame or array-like, shape (n, J)
        The indicators; a DataFrame is matched by column name (and may hold more columns), an
        array by position.

    Returns
    -------
    ndarray of int64, shape (n, J)
        ``-1`` where a value is missing.

    Raises
    ------
    ConfigError
        Missing columns or the wrong number of them.
    SurveyError
        A category not seen at fit time (the message names the column and rows).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> enc = encode_indicators(pd.DataFrame({"q": ["a", "b"]}))
    >>> fit = SimpleNamespace(feature_names=enc.items, extras={"categories": categories_frame(enc)})
    >>> encode_new_indicators(fit, pd.DataFrame({"q": ["b", None, "a"]})).ravel().tolist()
    [1, -1, 0]
    """
    items = list(result.feature_names)
    if isinstance(data, pd.DataFrame):
        missing = [c for c in items if c not in set(map(str, data.columns))]
        if missing:
            raise ConfigError(
                f"The new data lack the indicator column(s) {missing} the latent class model was fitted on."
            )
        df = data.rename(columns=str)[items]
    else:
        df = _as_frame(data)
        if df.shape[1] != len(items):
            raise ConfigError(f"The new data have {df.shape[1]} columns; the model was fitted on {len(items)}.")
        df.columns = items
    cat_table = result.extras["categories"]
    codes = np.full(df.shape, -1, dtype=np.int64)
    for j, item in enumerate(items):
        rows = cat_table[cat_table["item"] == item]
        lookup = dict(zip(rows["category"].astype(str), rows["code"].astype(int)))
        raw, uniq = pd.factorize(df[item], use_na_sentinel=True)
        raw = np.asarray(raw, dtype=np.int64)
        mapped = np.array([lookup.get(category_key(v), -1) for v in np.asarray(uniq, dtype=object)] + [-1], dtype=np.int64)
        unseen = [i for i in range(len(uniq)) if mapped[i] < 0]
        if unseen:
            pos = np.flatnonzero(np.isin(raw, unseen))
            raise SurveyError(
                f"Column '{item}' has categories not seen at fit time {sorted(category_key(uniq[i]) for i in unseen)} "
                f"at rows {format_rows(df.index[pos].tolist())}; the model knows {list(lookup)}."
            )
        codes[:, j] = mapped[raw]
    return codes


def categories_frame(enc: EncodedIndicators) -> pd.DataFrame:
    """The category mapping as a table: one row per item and code, with its label and value.

    Saved with a latent class fit (``extras["categories"]``) so that
    :func:`encode_new_indicators` codes new respondents the same way.

    Examples
    --------
    >>> categories_frame(encode_indicators(pd.DataFrame({"q": [2, 1, 2]})))
      item  code category  value
    0    q     0        1    1.0
    1    q     1        2    2.0
    """
    rows = [
        (item, m, key, float(enc.values[j][m]))
        for j, item in enumerate(enc.items)
        for m, key in enumerate(enc.keys[j])
    ]
    return pd.DataFrame(rows, columns=["item", "code", "category", "value"])
