"""Checks that turn a table into trustworthy rating matrices, with messages that name what is wrong.

Every failure is one :class:`~latentseg.errors.SurveyError` sentence naming the file, the column,
up to five rows and what was expected. Rows are named by respondent id where the survey has an id
column, else by row number: the spreadsheet row for CSV and Excel files (the header is row 1;
a Qualtrics export's three header rows are rows 1-3), the 1-based position for Parquet and SPSS
files, the index label for in-memory DataFrames.

All checks are vectorised over the (n, m) rating block; nothing loops over respondents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from latentseg.errors import SurveyError, format_rows
from latentseg.io.survey import Scale

__all__ = [
    "RowNamer",
    "COMMON_SCALES",
    "check_unique_names",
    "check_ids",
    "id_text",
    "numeric_block",
    "is_numeric",
    "Columns",
    "numeric_column",
    "survey_weights",
    "apply_missing_codes",
    "check_rated",
    "column_ranges",
    "check_scale",
    "infer_scale",
    "stray_ratings",
    "CONVENTIONAL_SCALES",
    "looks_like_code",
]

#: Scales :func:`infer_scale` chooses from (the narrowest one that holds every rating).
COMMON_SCALES: tuple[tuple[int, int], ...] = (
    (1, 3), (1, 4), (1, 5), (0, 5), (1, 6), (1, 7), (0, 7), (1, 9), (0, 10), (1, 10), (0, 100), (1, 100),
)

#: The conventional scales a block's ratings may *mostly* fit, with a few stray values sticking
#: out (see :func:`stray_ratings`).
CONVENTIONAL_SCALES: tuple[tuple[int, int], ...] = ((1, 5), (1, 7), (1, 10), (0, 10), (0, 100))
#: At most this many ratings, ...
STRAY_MAX = 5
#: ... and at most this share of a block's ratings, outside a conventional scale that holds the
#: others are stray values (an error when the scale is not declared).
STRAY_SHARE = 0.01


class RowNamer:
    """Names rows in messages: respondent ids where known, else row numbers.

    Parameters
    ----------
    labels : sequence, length n
        What to call each row (respondent ids, file row numbers or index labels).
    word : str
        ``"respondents"`` or ``"rows"``.
    """

    def __init__(self, labels: Sequence[Any] | pd.Index | np.ndarray, word: str = "rows") -> None:
        self.labels = labels
        self.word = word

    @classmethod
    def for_file(cls, n: int, first_row: int | None, index: pd.Index | None = None) -> RowNamer:
        """Row numbers starting at ``first_row`` (file rows), or ``index`` labels when None."""
        if first_row is not None:
            return cls(np.arange(first_row, first_row + n), "rows")
        return cls(index if index is not None else np.arange(1, n + 1), "rows")

    def __call__(self, positions: np.ndarray | Sequence[int]) -> str:
        pos = np.asarray(positions, dtype=np.intp)
        shown = [self.labels[int(p)] for p in pos[:5]]
        shown = [x.item() if isinstance(x, np.generic) else x for x in shown]
        return f"{self.word} {format_rows(shown + [None] * (len(pos) - len(shown)))}"


def check_unique_names(names: Sequence[str], source: str) -> None:
    """Refuse duplicate column names (checked on the raw header, before pandas renames them).

    Examples
    --------
    >>> check_unique_names(["id", "imp_a", "imp_a"], "s.csv")
    Traceback (most recent call last):
    ...
    latentseg.errors.SurveyError: s.csv: column name 'imp_a' appears 2 times (columns 2 and 3); expected unique column names.
    """
    if len(set(map(str, names))) == len(names):
        return  # the common case, in one pass of C (a 100,000-column header)
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        if str(name).strip() == "":
            continue
        seen.setdefault(str(name), []).append(i)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    if dups:
        name, where = next(iter(dups.items()))
        cols = ", ".join(str(i) for i in where[:-1]) + f" and {where[-1]}"
        more = f" ({len(dups) - 1} more duplicated: " + ", ".join(f"'{k}'" for k in list(dups)[1:6]) + ")" if len(dups) > 1 else ""
        raise SurveyError(
            f"{source}: column name '{name}' appears {len(where)} times (columns {cols}){more}; "
            "expected unique column names."
        )


def _float_id(x: float) -> str:
    """A number as an id: an integer value without its ``.0`` (7.0 -> ``"7"``), else the shortest
    text that reads back as the same float (1.5 -> ``"1.5"``)."""
    return str(int(x)) if x.is_integer() else repr(x)


def _one_id(x: Any) -> str | None:
    if x is None or x is pd.NA or x is pd.NaT or (isinstance(x, (float, np.floating)) and np.isnan(x)):
        return None
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return _float_id(float(x))
    if isinstance(x, bytes):
        x = x.decode("utf-8", errors="replace")
    return str(x).strip()


def id_text(values: pd.Series) -> pd.Series:
    """Respondent ids as text (dtype ``str``; missing stays missing), whatever type they were read as.

    Text is kept as written apart from surrounding spaces (``"007"`` stays ``"007"``; SPSS pads
    string variables with spaces); integers are written in full (no float rounding); an
    integer-valued float, as Excel and SPSS store numbers, loses its ``.0`` (7.0 -> ``"7"``);
    another float is written as the shortest text that reads back as it (1.5 -> ``"1.5"``).
    Ids are then compared as text: ``"7"`` and ``"007"`` are two respondents.

    Examples
    --------
    >>> id_text(pd.Series([7.0, 12.0, np.nan, 1.5])).tolist()
    ['7', '12', nan, '1.5']
    >>> id_text(pd.Series(["007", " r1 ", 7], dtype=object)).tolist()
    ['007', 'r1', '7']
    """
    dtype = values.dtype
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return values.str.strip().astype("str")
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
        return pd.Series(values.to_numpy().astype(str), index=values.index, name=values.name, dtype="str")
    if pd.api.types.is_float_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
        v = values.to_numpy(dtype=np.float64)
        out = np.full(len(v), None, dtype=object)
        small = np.isfinite(v) & (v == np.trunc(v)) & (np.abs(v) < 2.0**62)
        out[small] = v[small].astype(np.int64).astype(str)
        for i in np.flatnonzero(~small & ~np.isnan(v)):  # fractions and huge numbers: rare
            out[i] = _float_id(float(v[i]))
        return pd.Series(out, index=values.index, name=values.name, dtype="str")
    out = [_one_id(x) for x in values.astype(object)]
    return pd.Series(out, index=values.index, name=values.name, dtype="str")


def check_ids(values: pd.Series, column: str, source: str, rows: RowNamer) -> pd.Index:
    """Respondent ids: none blank, none repeated, compared as text (see :func:`id_text`).

    Returns
    -------
    pandas.Index of dtype ``str``, length n, named ``respondent_id``
    """
    text = id_text(values)
    blank = (text.isna() | text.eq("")).to_numpy()
    if blank.any():
        pos = np.flatnonzero(blank)
        raise SurveyError(
            f"{source}: column '{column}' has {len(pos)} blank respondent ids at {rows(pos)}; "
            "expected an id for every respondent."
        )
    ids = pd.Index(text.to_numpy(), dtype="str", name="respondent_id")
    if not ids.is_unique:
        dup = ids.duplicated(keep=False)
        pos = np.flatnonzero(dup)
        repeated = pd.unique(ids[dup])
        raise SurveyError(
            f"{source}: column '{column}' repeats {len(repeated)} respondent ids "
            f"{format_rows([_py(v) for v in repeated])} at {rows(pos)}; expected each id once."
        )
    return ids


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _coerce_text_numbers(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse text that holds numbers (``" 5"``, ``"3,5"``); return the numbers and a mask of
    cells that are neither numbers nor blank."""
    text = s.astype("str").str.strip()
    text = text.where(s.notna(), "")
    num = pd.to_numeric(text, errors="coerce")
    blank = text.eq("").to_numpy()
    bad = num.isna().to_numpy() & ~blank
    if bad.any():  # decimal commas (semicolon-delimited European files)
        alt = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        if not (alt.isna().to_numpy() & ~blank).any():
            return alt.astype(float), np.zeros(len(s), dtype=bool)
    return num.astype(float), bad


def is_numeric(dtype: Any) -> bool:
    """Numbers, not booleans."""
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


class Columns(Protocol):
    """Column access over a table being validated (a DataFrame or a pyarrow Table)."""

    names: list[str]
    n: int

    def series(self, name: str) -> pd.Series: ...

    def numeric(self, names: Sequence[str]) -> np.ndarray | None: ...


def numeric_block(
    table: Columns,
    columns: Sequence[str],
    block: str,
    source: str,
    rows: RowNamer,
    value_labels: Mapping[str, Mapping[Any, str]] | None = None,
) -> np.ndarray:
    """The rating columns as one float matrix (NaN where unrated), refusing text.

    Returns
    -------
    ndarray, shape (n, len(columns)), float64, Fortran order (each outcome contiguous; a new array)
    """
    cols = list(columns)
    fast = table.numeric(cols)
    if fast is not None:
        return fast
    out = np.empty((table.n, len(cols)), dtype=np.float64, order="F")
    for j, c in enumerate(cols):
        s = table.series(c)
        if is_numeric(s.dtype):
            out[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        num, bad = _coerce_text_numbers(s)
        if bad.any():
            pos = np.flatnonzero(bad)
            examples = list(dict.fromkeys(str(v) for v in s.iloc[pos[:50]]))[:3]
            ex = ", ".join(repr(e) for e in examples)
            hint = ""
            if any(any(ch.isalpha() for ch in e) for e in examples):
                hint = (
                    " They look like text labels: recode them to numbers (e.g. 1 = lowest to 5 = highest), "
                    "export numeric values (Qualtrics: 'Export values' instead of choice text), or read the "
                    "SPSS .sav file, whose numeric codes and value labels latentseg keeps. Columns holding "
                    "labels only are read as choice text: the standard importance and satisfaction labels "
                    "as they are, others listed low to high in [survey.labels]; numbers and labels are not mixed."
                )
            raise SurveyError(
                f"{source}: column '{c}' ({block}) has {len(pos)} non-numeric values (e.g. {ex}) at "
                f"{rows(pos)}; expected numeric ratings or blanks.{hint}"
            )
        out[:, j] = num.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def numeric_column(s: pd.Series, column: str, what: str, source: str, rows: RowNamer) -> pd.Series:
    """A duration or weight column: numbers, none negative.

    Returns
    -------
    Series of float64 (NaN where blank), same index as ``s``.
    """
    if is_numeric(s.dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num, bad = _coerce_text_numbers(s)
        if bad.any():
            pos = np.flatnonzero(bad)
            ex = ", ".join(repr(str(v)) for v in s.iloc[pos[:3]])
            raise SurveyError(
                f"{source}: column '{column}' ({what}) has {len(pos)} non-numeric values (e.g. {ex}) at "
                f"{rows(pos)}; expected numbers."
            )
        values = num.to_numpy(dtype=np.float64, na_value=np.nan)
    neg = values < 0
    if neg.any():
        pos = np.flatnonzero(neg)
        raise SurveyError(
            f"{source}: column '{column}' ({what}) has {len(pos)} negative values at {rows(pos)}; "
            "expected numbers >= 0."
        )
    return pd.Series(values, index=s.index, name=column)


def survey_weights(weight: pd.Series, column: str, source: str) -> pd.Series:
    """Survey weights checked and normalised to mean 1: the weights every fit receives.

    Parameters
    ----------
    weight : Series, shape (n,)
        One weight per respondent that reaches the model, indexed by respondent id (any
        positive scale: inverse inclusion probabilities, post-stratification weights ...).
    column : str
        The weight column's name in the file (for messages).
    source : str
        The file (for messages).

    Returns
    -------
    Series of float64, shape (n,)
        ``weight / weight.mean()``, same index: they sum to n, so criteria that count
        respondents (BIC's ``ln n``) keep n, and a weight of 2 still counts a respondent twice
        as much as a weight of 1.

    Raises
    ------
    SurveyError
        A weight that is not a number, missing, infinite, zero or negative; the message names the
        file, the column and up to five respondents.

    Examples
    --------
    >>> w = survey_weights(pd.Series([1.0, 3.0], index=["r1", "r2"]), "weight", "s.csv")
    >>> w.tolist()
    [0.5, 1.5]
    >>> survey_weights(pd.Series([1.0, 0.0, None], index=["r1", "r2", "r3"]), "weight", "s.csv")
    Traceback (most recent call last):
    ...
    latentseg.errors.SurveyError: s.csv: column 'weight' (survey weight) has 1 missing value at respondents [r3] and 1 zero value at respondents [r2]; expected a positive number for every respondent (give them a weight, drop them from the file, or pass --no-weights to ignore the weights).
    """
    if is_numeric(weight.dtype):
        values = weight.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num = pd.to_numeric(weight, errors="coerce")
        bad = num.isna() & weight.notna()
        if bad.any():
            ids = list(weight.index[bad.to_numpy()])
            ex = ", ".join(repr(str(v)) for v in weight[bad].iloc[:3])
            raise SurveyError(
                f"{source}: column '{column}' (survey weight) has {len(ids)} non-numeric values (e.g. {ex}) at "
                f"respondents {format_rows(ids)}; expected a positive number for every respondent."
            )
        values = num.to_numpy(dtype=np.float64, na_value=np.nan)
    problems = []
    for what, mask in (
        ("missing", np.isnan(values)),
        ("infinite", np.isinf(values)),
        ("zero", values == 0),
        ("negative", values < 0),
    ):
        if mask.any():
            ids = list(weight.index[mask])
            plural = "s" if len(ids) > 1 else ""
            problems.append(f"{len(ids)} {what} value{plural} at respondents {format_rows(ids)}")
    if problems:
        raise SurveyError(
            f"{source}: column '{column}' (survey weight) has " + " and ".join(problems) + "; expected a positive "
            "number for every respondent (give them a weight, drop them from the file, or pass --no-weights to "
            "ignore the weights)."
        )
    return pd.Series(values / values.mean(), index=weight.index, name="weight")


def apply_missing_codes(block: np.ndarray, codes: Sequence[float]) -> int:
    """Set every cell equal to one of ``codes`` to NaN, in place; return how many were set.

    Examples
    --------
    >>> a = np.array([[1.0, 99.0], [-9.0, 3.0]])
    >>> apply_missing_codes(a, [99, -9]), a.tolist()
    (2, [[1.0, nan], [nan, 3.0]])
    """
    if not len(codes):
        return 0
    hit = np.isin(block, np.asarray(codes, dtype=np.float64))
    count = int(np.count_nonzero(hit))
    if count:
        block[hit] = np.nan
    return count


def column_ranges(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest rating of each column (NaN for a column without ratings), one pass each.

    Examples
    --------
    >>> lo, hi = column_ranges(np.array([[1.0, np.nan], [3.0, np.nan]]))
    >>> lo.tolist(), hi.tolist()
    ([1.0, nan], [3.0, nan])
    """
    return np.fmin.reduce(block, axis=0), np.fmax.reduce(block, axis=0)


def check_rated(
    imp_low: np.ndarray, sat_low: np.ndarray, outcomes: Sequence[str], imp_cols: Sequence[str], sat_cols: Sequence[str],
    source: str,
) -> None:
    """Refuse an outcome whose importance or satisfaction column holds no rating at all.

    ``imp_low`` / ``sat_low`` are the per-column minima (:func:`column_ranges`): NaN = no rating.
    """
    for block, low, cols in (("importance", imp_low, imp_cols), ("satisfaction", sat_low, sat_cols)):
        empty = np.flatnonzero(np.isnan(low))
        if len(empty):
            j = int(empty[0])
            more = (
                f" ({len(empty) - 1} more empty columns: " + ", ".join(f"'{cols[i]}'" for i in empty[1:6]) + ")"
                if len(empty) > 1 else ""
            )
            raise SurveyError(
                f"{source}: outcome '{outcomes[j]}' has no {block} ratings at all (column '{cols[j]}' is empty "
                f"or holds only missing-value codes){more}; expected at least one rating per outcome, or drop "
                "the outcome."
            )


def looks_like_code(value: float) -> bool:
    """Whether a rating looks like a missing-value code (99, 98, 999, -9, -1, 88 ...).

    Examples
    --------
    >>> [looks_like_code(v) for v in (99, -9, 7, 100, 88)]
    [True, True, False, False, True]
    """
    if value < 0:
        return True
    if value < 77 or not float(value).is_integer():
        return False
    digits = str(int(value))
    return len(set(digits)) == 1 or (digits[:-1] == "9" * (len(digits) - 1) and digits[-1] in "78")


def _label_for(labels: Mapping[Any, str] | None, value: float) -> str | None:
    if not labels:
        return None
    for key in (value, int(value) if float(value).is_integer() else value, _fmt(value)):
        if key in labels:
            return labels[key]
    return None


def _code_hint(values: np.ndarray, flag: str, labels: Mapping[Any, str] | None) -> str:
    """A hint for out-of-scale values that look like missing-value codes (by value, or because an
    SPSS value label names them)."""
    codes = [v for v in values if looks_like_code(float(v)) or _label_for(labels, float(v))]
    if not codes:
        return ""
    shown = ", ".join(_fmt(v) for v in codes[:4])
    label = next((lab for v in codes if (lab := _label_for(labels, float(v)))), None)
    said = f" (its SPSS value label is {label!r})" if label else ""
    return (
        f" Values like {shown} are often missing-value codes{said}; if so, declare them with "
        f"{flag} {','.join(_fmt(v) for v in codes[:4])} (or missing_codes in [survey] of latentseg.toml)."
    )


def _fmt(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def check_scale(
    block: np.ndarray,
    scale: Scale,
    columns: Sequence[str],
    name: str,
    source: str,
    rows: RowNamer,
    value_labels: Mapping[str, Mapping[Any, str]] | None = None,
    ranges: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Refuse ratings outside a declared scale, with a hint about missing-value codes.

    ``ranges`` are the per-column minima and maxima (:func:`column_ranges`), if already known.
    """
    col_lo, col_hi = ranges if ranges is not None else column_ranges(block)
    lo, hi = float(np.nanmin(col_lo)), float(np.nanmax(col_hi))
    if lo >= scale.low and hi <= scale.high:
        return
    with np.errstate(invalid="ignore"):
        bad = (block < scale.low) | (block > scale.high)
    per_col = bad.any(axis=0)
    j = int(np.flatnonzero(per_col)[0])
    pos = np.flatnonzero(bad[:, j])
    values = np.unique(block[bad])
    col = columns[j]
    shown = ", ".join(_fmt(v) for v in values[:5]) + (" ..." if len(values) > 5 else "")
    n_cols = int(per_col.sum())
    more = f" ({n_cols - 1} more columns have values outside it)" if n_cols > 1 else ""
    flag = "--missing-codes"
    hint = _code_hint(values, flag, (value_labels or {}).get(col))
    raise SurveyError(
        f"{source}: column '{col}' has {len(pos)} values outside the declared {name} scale {scale} "
        f"(found {shown}) at {rows(pos)}{more}; expected ratings from {_fmt(scale.low)} to {_fmt(scale.high)}.{hint}"
    )


def stray_ratings(
    block: np.ndarray, ranges: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[tuple[int, int], np.ndarray] | None:
    """Find a few ratings that stick out of the conventional scale the rest of a block fits.

    With N ratings in the block (all importance, or all satisfaction, ratings; NaN not counted),
    take the conventional scales of :data:`CONVENTIONAL_SCALES` (1-5, 1-7, 1-10, 0-10, 0-100)
    from the narrowest. The first one S that holds all but k ratings with
    ``k <= min(STRAY_MAX, floor(STRAY_SHARE * N))`` (at most 5 ratings and at most 1% of the
    block) decides: when k >= 1 those k ratings are *stray*. A 0 on a scale starting at 1 is
    never stray (0-5, 0-7, 0-10 are scales of their own), nor is anything when S is no narrower
    than the narrowest scale of :data:`COMMON_SCALES` holding every rating. Blocks with fewer
    than 100 ratings have no stray ratings (1% of them is less than one rating).

    Parameters
    ----------
    block : ndarray, shape (n, m)
    ranges : (ndarray, ndarray), optional
        Per-column minima and maxima (:func:`column_ranges`), if already known.

    Returns
    -------
    (scale, mask) or None
        The scale S as ``(low, high)`` and a boolean mask (n, m) of the stray ratings; None when
        there are none.

    Examples
    --------
    >>> b = np.ones((100, 2)); b[::7] = 3; b[5, 1] = 7
    >>> scale, mask = stray_ratings(b)
    >>> scale, np.argwhere(mask).tolist()
    ((1, 5), [[5, 1]])
    >>> stray_ratings(np.where(b == 7, 5, b)) is None
    True
    """
    col_lo, col_hi = ranges if ranges is not None else column_ranges(block)
    if np.isnan(col_lo).all():
        return None
    lo, hi = float(np.nanmin(col_lo)), float(np.nanmax(col_hi))
    every = [s for s in COMMON_SCALES if s[0] <= lo and hi <= s[1]]
    widest = min((s[1] - s[0] for s in every), default=np.inf)  # of the narrowest scale holding all
    n_rated = None
    for low, high in sorted(CONVENTIONAL_SCALES, key=lambda s: (s[1] - s[0], -s[0])):
        if high - low >= widest:
            return None
        floor = 0 if low == 1 else low  # a 0 below a 1-N scale makes it 0-N, not a stray
        if floor <= lo and hi <= high:
            return None
        if n_rated is None:
            n_rated = int(np.count_nonzero(~np.isnan(block)))
            limit = min(STRAY_MAX, int(np.floor(STRAY_SHARE * n_rated)))
            if limit < 1:
                return None
        with np.errstate(invalid="ignore"):
            out = (block < floor) | (block > high)
        k = int(np.count_nonzero(out))
        if k <= limit:
            return ((floor if lo < low else low, high), out) if k else None
    return None


def _raise_strays(
    block: np.ndarray, scale: tuple[int, int], mask: np.ndarray, columns: Sequence[str], name: str, source: str,
    rows: RowNamer, option: str,
) -> None:
    per_col = mask.any(axis=0)
    hit = np.flatnonzero(per_col)
    j = int(hit[0])
    pos = np.flatnonzero(mask[:, j])
    values = np.unique(block[mask])
    shown = ", ".join(_fmt(v) for v in np.unique(block[pos, j]))
    every = ", ".join(_fmt(v) for v in values)
    k = int(np.count_nonzero(mask))
    n_rated = int(np.count_nonzero(~np.isnan(block)))
    more = ""
    if len(hit) > 1:
        more = f" ({k - len(pos)} more in column{'s' if len(hit) > 2 else ''} " + ", ".join(
            f"'{columns[i]}'" for i in hit[1:6]
        ) + (" ..." if len(hit) > 6 else "") + ")"
    low, high = scale
    wider = sorted(
        (s for s in COMMON_SCALES if s[0] <= min(low, values.min()) and max(high, values.max()) <= s[1]),
        key=lambda s: (s[1] - s[0], -s[0]),
    )
    declare = f"{option} {wider[0][0]}-{wider[0][1]}" if wider else f"{option} LOW-HIGH"
    raise SurveyError(
        f"{source}: column '{columns[j]}' has {len(pos)} {name} rating{'s' if len(pos) > 1 else ''} ({shown}) at "
        f"{rows(pos)}{more} outside the {low}-{high} scale that holds the other {n_rated - k} {name} ratings; "
        f"expected ratings on one scale. If {every} mean{'s' if len(values) == 1 else ''} 'no answer', declare "
        f"{'it' if len(values) == 1 else 'them'} with --missing-codes {','.join(_fmt(v) for v in values[:4])} "
        f"(or missing_codes in [survey]); if the scale is wider, declare it with {declare} (or "
        f"{name[:3]}_scale in [survey])."
    )


def infer_scale(
    block: np.ndarray,
    columns: Sequence[str],
    name: str,
    source: str,
    rows: RowNamer,
    option: str,
    ranges: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Scale, str]:
    """Infer a block's scale: the narrowest of :data:`COMMON_SCALES` holding every rating.

    Parameters
    ----------
    block : ndarray, shape (n, m)
    columns : sequence of str, length m
    name : str
        ``"importance"`` or ``"satisfaction"`` (for messages).
    option : str
        The CLI option that declares it (``"--imp-scale"``), for messages.
    ranges : (ndarray, ndarray), optional
        Per-column minima and maxima (:func:`column_ranges`), if already known.

    Returns
    -------
    scale : Scale
        With ``inferred=True``.
    message : str
        What was inferred, for the warning and the survey's notes.

    Raises
    ------
    SurveyError
        Ratings that fit no common scale; a small scale plus values that look like
        missing-value codes (e.g. 1-5 and 99); a few stray ratings outside the conventional
        scale the others fit (a 7 among 1-5 ratings: see :func:`stray_ratings`).
    """
    strays = stray_ratings(block, ranges)
    if strays is not None:
        _raise_strays(block, strays[0], strays[1], columns, name, source, rows, option)
    col_lo, col_hi = ranges if ranges is not None else column_ranges(block)
    lo, hi = float(np.nanmin(col_lo)), float(np.nanmax(col_hi))
    fits = sorted((s for s in COMMON_SCALES if s[0] <= lo and hi <= s[1]), key=lambda s: (s[1] - s[0], -s[0]))
    if not fits or fits[0][1] - fits[0][0] > 10:
        values = np.unique(block[~np.isnan(block)])
        codes = np.array([v for v in values if looks_like_code(float(v))])
        rest = values[~np.isin(values, codes)] if len(codes) else values
        if len(codes) and len(rest) and rest.min() >= 0 and rest.max() <= 10:
            with np.errstate(invalid="ignore"):
                bad = np.isin(block, codes)
            per_col = bad.any(axis=0)
            j = int(np.flatnonzero(per_col)[0])
            pos = np.flatnonzero(bad[:, j])
            raise SurveyError(
                f"{source}: column '{columns[j]}' has {len(pos)} {name} values "
                f"{', '.join(_fmt(v) for v in codes[:4])} at {rows(pos)}, far outside the other ratings "
                f"({_fmt(rest.min())}-{_fmt(rest.max())}); expected ratings on one scale. They look like "
                f"missing-value codes: declare them with --missing-codes {','.join(_fmt(v) for v in codes[:4])} "
                f"(or missing_codes in [survey]), or declare the scale with {option}."
            )
        if not fits:
            raise SurveyError(
                f"{source}: cannot infer the {name} scale: ratings range from {_fmt(lo)} to {_fmt(hi)}, which fits "
                f"no common scale (1-5, 1-7, 0-10, 1-10, 0-100 ...); expected ratings on one scale: declare it "
                f"with {option} LOW-HIGH (or {name[:3]}_scale in [survey])."
            )
    low, high = fits[0]
    scale = Scale(float(low), float(high), inferred=True)
    message = (
        f"{name.capitalize()} scale not declared: inferred {scale} from the ratings "
        f"(observed {_fmt(lo)}-{_fmt(hi)}); declare it with {option} or {name[:3]}_scale in [survey] if that is wrong."
    )
    return scale, message
