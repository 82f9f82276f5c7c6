"""Reading a survey file (CSV, Qualtrics and SurveyMonkey exports, Parquet, Excel, SPSS) into a validated :class:`Survey`.

The file is read once. CSV files go through pyarrow's multi-threaded parser after a look at
their first megabyte: encoding (UTF-8, with or without BOM; UTF-16 with BOM; otherwise
Windows-1252), delimiter (``,`` ``;`` tab ``|``), duplicate column names (refused before any
parser renames them to ``x.1``) and the export layout (:mod:`latentseg.io.exports`: Qualtrics'
three header rows, SurveyMonkey's two; in CSV and Excel alike). The rating matrices are then
checked with vectorised numpy (see :mod:`latentseg.io.validate`).

With no configuration an export reads as it comes: rating columns named ``Q3_1`` are found
through their question text ("How important ..." / "How satisfied ..."), which also gives the
outcome statements; choice text becomes numbers through the standard label sets; survey
previews, spam and unfinished responses (``Status``, ``Finished``) are set aside for the
cleaning report; platform metadata and personal data (IP address, e-mail, names, location,
recipient and external reference) stay out of the profile.

The format is chosen by extension, and by content where that disagrees (an Excel workbook
named ``.csv`` is read as Excel).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.config import merge_config
from latentseg.errors import ConfigError, LatentsegError, LatentsegWarning, SurveyError
from latentseg.io.columns import RatingColumns, find_rating_columns
from latentseg.io.exports import (
    ExportLayout,
    detect_layout,
    is_metadata,
    map_labels,
    personal_by_name,
    personal_columns,
    question_rating_columns,
    status_exclusions,
)
from latentseg.io.validate import (
    RowNamer,
    apply_missing_codes,
    check_ids,
    check_rated,
    check_scale,
    check_unique_names,
    column_ranges,
    id_text,
    infer_scale,
    is_numeric,
    numeric_block,
    numeric_column,
)
from latentseg.io.survey import Scale, Survey

__all__ = ["read_survey", "survey_from_frame", "read_table", "RawTable", "sniff_file", "FileFormat", "find_weight_column"]

#: Normalised names (lower case, letters and digits only) detected as the id column, in order.
ID_NAMES = (
    "respondentid", "responseid", "respid", "participantid", "caseid", "recordid", "id", "uuid",
    "respondent", "userid",
)
#: Normalised names detected as the completion-time column.
DURATION_NAMES = (
    "duration", "durationinseconds", "durations", "durationsec", "durationsecs", "durationseconds",
    "timetaken", "completiontime", "loi", "responsetime", "durationmin", "durationminutes",
)
#: Normalised names detected as the survey-weight column.
WEIGHT_NAMES = ("weight", "weights", "wt", "wgt", "surveyweight", "sampleweight")

_SNIFF_BYTES = 1 << 20
_SNIFF_LINES = 4  # the sniffed head holds at least this many lines (a 100,000-column header is over 1 MB)
_MAX_SNIFF = 64 << 20
_BLOCK_SIZE = 1 << 20  # bytes of CSV per parsed batch (and per type-inference sample), at least
_BLOCK_ROWS = 2048  # rows per parsed batch, at least, up to _MAX_BLOCK bytes: Arrow's cost is per column and batch
_MAX_BLOCK = 64 << 20
_WIDE = 1000  # columns read
_DELIMITERS = (",", ";", "\t", "|")


class _FrameColumns:
    """Column access over a pandas DataFrame (Excel, SPSS and in-memory tables)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.names = [str(c) for c in df.columns]
        self.n = len(df)

    def series(self, name: str) -> pd.Series:
        return self.df[name]

    def numeric(self, names: Sequence[str]) -> np.ndarray | None:
        cols = list(names)
        if not all(is_numeric(self.df[c].dtype) for c in cols):
            return None
        # always a copy of our own: to_numpy may hand back a read-only view of the caller's frame
        return np.array(self.df[cols].to_numpy(dtype=np.float64, na_value=np.nan), order="F", copy=True)

    def frame(self, names: Sequence[str], index: pd.Index) -> pd.DataFrame:
        return self.df[list(names)].set_axis(index, axis=0)

    def to_pandas(self) -> pd.DataFrame:
        return self.df

    def take(self, keep: np.ndarray) -> _FrameColumns:
        return _FrameColumns(self.df.iloc[np.flatnonzero(keep)])


class _ArrowColumns:
    """Column access over a pyarrow Table (CSV and Parquet): rating columns go straight into
    numpy, only the other columns become pandas."""

    def __init__(self, table: Any, names: Sequence[str] | None = None) -> None:
        self.table = table
        # ``names``: every column of the file, where only some were read (their values unread)
        self.names = [str(c) for c in (table.column_names if names is None else names)]
        self.n = table.num_rows

    def series(self, name: str) -> pd.Series:
        return self.table.column(name).to_pandas()

    def numeric(self, names: Sequence[str]) -> np.ndarray | None:
        import pyarrow as pa

        cols = [self.table.column(c) for c in names]
        if not all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in cols):
            return None
        out = np.empty((self.n, len(cols)), dtype=np.float64, order="F")
        for j, c in enumerate(cols):
            out[:, j] = c.to_numpy()  # integers with nulls arrive as float64 with NaN
        return out

    def frame(self, names: Sequence[str], index: pd.Index) -> pd.DataFrame:
        return self.table.select(list(names)).to_pandas().set_axis(index, axis=0)

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def take(self, keep: np.ndarray) -> _ArrowColumns:
        import pyarrow as pa

        return _ArrowColumns(self.table.filter(pa.array(keep)), self.names)


class _StreamedColumns:
    """Column access over a CSV read batch by batch: the rating blocks were filled while
    reading (no full table ever held), the other columns kept as a small pyarrow Table."""

    def __init__(self, blocks: dict[tuple[str, ...], np.ndarray], others: Any, names: list[str], n: int) -> None:
        self.blocks = blocks
        self.others = others
        self.names = names
        self.n = n
        self._where = {c: (b, j) for b in blocks for j, c in enumerate(b)}

    def series(self, name: str) -> pd.Series:
        if name in self._where:
            b, j = self._where[name]
            return pd.Series(self.blocks[b][:, j], name=name)
        return self.others.column(name).to_pandas()

    def numeric(self, names: Sequence[str]) -> np.ndarray | None:
        key = tuple(names)
        if key in self.blocks:
            return self.blocks[key]
        return _ArrowColumns(self.others).numeric(names) if all(c not in self._where for c in names) else None

    def frame(self, names: Sequence[str], index: pd.Index) -> pd.DataFrame:
        return self.others.select(list(names)).to_pandas().set_axis(index, axis=0)

    def to_pandas(self) -> pd.DataFrame:
        frame = self.others.to_pandas()
        for b, block in self.blocks.items():
            for j, c in enumerate(b):
                frame[c] = block[:, j]
        return frame[self.names]

    def take(self, keep: np.ndarray) -> _StreamedColumns:
        import pyarrow as pa

        blocks = {b: np.asfortranarray(v[keep]) for b, v in self.blocks.items()}
        return _StreamedColumns(blocks, self.others.filter(pa.array(keep)), self.names, int(keep.sum()))


@dataclass
class RawTable:
    """A table as read from a file, before validation.

    Attributes
    ----------
    columns : column access
        Over a pandas DataFrame or a pyarrow Table.
    source : str
        The file, for messages.
    first_row : int or None
        Spreadsheet row number of the first data row (CSV / Excel: 2, a Qualtrics export: 4);
        None where rows have no such number.
    statements : dict
        Column -> question text (Qualtrics) or variable label (SPSS).
    value_labels : dict
        Column -> {code: label} (SPSS).
    notes : list of str
        What the reader inferred (encoding, delimiter, layout).
    not_profile : tuple of str
        Columns never used as profile (Qualtrics metadata).
    index_rows : bool
        Name rows by the frame's index labels in messages (in-memory tables).
    layout : str
        ``"plain"``, ``"qualtrics"`` or ``"surveymonkey"`` (see :mod:`latentseg.io.exports`).
    """

    columns: _FrameColumns | _ArrowColumns | _StreamedColumns
    source: str
    first_row: int | None = None
    statements: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    not_profile: tuple[str, ...] = ()
    index_rows: bool = False
    layout: str = "plain"

    @property
    def frame(self) -> pd.DataFrame:
        """The whole table as a pandas DataFrame."""
        return self.columns.to_pandas()


# ----------------------------------------------------------------------------- file formats
def _unreadable(source: str, exc: OSError) -> SurveyError:
    """One message for a survey file the operating system will not hand over."""
    if isinstance(exc, FileNotFoundError):
        return SurveyError(f"{source}: no such file; expected a survey file (CSV, Parquet, Excel .xlsx or SPSS .sav).")
    if isinstance(exc, IsADirectoryError):
        return SurveyError(f"{source}: is a folder; expected a survey file.")
    if isinstance(exc, PermissionError):
        return SurveyError(f"{source}: cannot be read (permission denied).")
    return SurveyError(f"{source}: cannot be read ({exc.strerror or exc}).")


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(source, exc) from None


def _kind(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"$FL2", b"$FL3")):
        return "spss"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if suffix in (".parquet", ".pq", ".xlsx", ".xlsm", ".sav", ".zsav", ".xls"):
        # a file whose content does not match its extension: say so rather than misparse it
        return "mismatch"
    return "text"


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as Parquet (``.parquet``), an Excel workbook (``.xlsx``, needs
    ``latentseg[excel]``) or CSV (anything else), creating the folder.

    In CSV and Excel every text cell and column name goes through
    :func:`latentseg.io.files.safe_csv_frame` (a spreadsheet never runs one as a formula);
    numeric columns stay numeric.

    Parameters
    ----------
    frame : DataFrame
        Written without its index (reset it first to keep one).
    path : str or Path

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SurveyError
        An old-style ``.xls`` / ``.xlsm`` path (not written), or ``.xlsx`` without openpyxl.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_table(pd.DataFrame({"a": [1]}), pathlib.Path(tempfile.mkdtemp()) / "t.csv")
    >>> p.read_text().split()
    ['a', '1']
    """
    from latentseg.io.files import atomic_write, safe_csv_frame

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".xls", ".xlsm", ".xlsb", ".ods"):
        raise SurveyError(f"{path}: tables are written as .csv, .parquet or .xlsx; {suffix} is not written (use .xlsx).")
    if suffix == ".xlsx":
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            raise SurveyError(
                f'{path}: writing Excel .xlsx files needs openpyxl, which is not installed: pip install "latentseg[excel]".'
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    # atomically: a link at ``path`` is replaced, never followed to a file elsewhere
    if suffix == ".parquet":
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False), suffix=".parquet")
    elif suffix == ".xlsx":
        safe = safe_csv_frame(frame, index=False)
        atomic_write(path, lambda tmp: safe.to_excel(tmp, index=False, engine="openpyxl"), suffix=".xlsx")
    else:
        safe = safe_csv_frame(frame, index=False)
        atomic_write(path, lambda tmp: safe.to_csv(tmp, index=False))
    return path


def read_table(
    path: str | Path, *, sheet: str | int | None = None, ratings: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Read any table latentseg reads (CSV with sniffed delimiter and encoding, Qualtrics and
    SurveyMonkey exports, Parquet, Excel, SPSS) into a DataFrame, without survey validation.

    Parameters
    ----------
    path : str or Path
    sheet : str or int, optional
        Excel sheet (name or 0-based position); default the first.
    ratings : mapping, optional
        A saved model's rating spec (``imp_columns``, ``sat_columns``, ``labels``,
        ``custom_labels``, as :func:`latentseg.prepare.core.rating_spec` records it): rating
        columns holding choice text are turned into numbers with the label sets the model was
        fitted with (``latentseg assign``).

    Returns
    -------
    DataFrame
        As read (for a Qualtrics or SurveyMonkey export: the data rows only, SurveyMonkey's
        columns named as :func:`read_survey` names them). The id column, found by name as
        :func:`read_survey` finds it (``respondent_id``, ``id``, ``ResponseId`` ...), is text as
        in :func:`read_survey` (``007`` stays ``007``; Excel's 7.0 is ``"7"``).

    Raises
    ------
    SurveyError
        Missing, unreadable, empty, header-only or ragged file, or duplicate column names; a
        rating label the model's label set does not know.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a;b\\n1;2\\n")
    >>> read_table(p).columns.tolist()
    ['a', 'b']
    """
    hint = _Hint(None, str(path))
    raw = _read_raw(Path(path), sheet=sheet, hint=hint)
    frame = raw.frame
    id_col = hint.id_column([str(c) for c in frame.columns])
    if id_col is not None and id_col in frame.columns:
        frame[id_col] = id_text(frame[id_col])
    if ratings:
        frame = _map_rating_text(frame, ratings, raw)
    return frame


def _map_rating_text(frame: pd.DataFrame, ratings: Mapping[str, Any], raw: RawTable) -> pd.DataFrame:
    """Rating columns of choice text as numbers, with the label sets a model was fitted with."""
    used = ratings.get("labels") or {}
    custom = ratings.get("custom_labels") or {}
    rows = RowNamer.for_file(len(frame), raw.first_row)
    for block, key in (("importance", "imp_columns"), ("satisfaction", "sat_columns")):
        text = [c for c in ratings.get(key) or () if c in frame.columns and not is_numeric(frame[c].dtype)]
        if not text or block not in used:
            continue  # numbers expected: the scorer names any text it meets
        own = custom.get(block) if used[block] == "[survey.labels]" else None
        mapped = map_labels(
            {c: frame[c] for c in text}, block, raw.source, rows, custom=own, fixed=None if own is not None else used[block]
        )[0]
        frame = frame.assign(**{c: mapped[c] for c in text})
    return frame


@dataclass(frozen=True)
class FileFormat:
    """How the survey reader sees a file, from its first megabyte (see :func:`sniff_file`).

    Attributes
    ----------
    kind : {"csv", "parquet", "excel", "spss"}
        By content (an Excel workbook named ``.csv`` is Excel).
    encoding : str
        Delimited text only: ``utf-8`` (a BOM is skipped), ``utf-16`` (with BOM),
        ``cp1252`` or ``latin-1``, as Python and pyarrow name them.
    delimiter : str
        ``,`` ``;`` tab or ``|``.
    compression : str or None
        ``"gzip"`` for a gzipped text file.
    header : tuple of str
        The column names (a SurveyMonkey export's are made from its two header rows, see
        :func:`latentseg.io.exports.detect_layout`).
    skip_rows : int
        Rows after the first that are not data (a Qualtrics export: 2, SurveyMonkey: 1).
    notes : tuple of str
        What was inferred, in the reader's words.
    layout : str
        ``"plain"``, ``"qualtrics"`` or ``"surveymonkey"``.
    """

    kind: str
    encoding: str = "utf-8"
    delimiter: str = ","
    compression: str | None = None
    header: tuple[str, ...] = ()
    skip_rows: int = 0
    notes: tuple[str, ...] = ()
    layout: str = "plain"


def sniff_file(path: str | Path) -> FileFormat:
    """What :func:`read_survey` would make of a file's layout, reading only its first megabyte
    (decompressed): for readers that stream the rest themselves (``latentseg assign``).

    Raises
    ------
    SurveyError
        The file is missing, unreadable, empty, a corrupt gzip, not text, or its content does not
        match its extension (a ``.parquet`` that is not Parquet); the message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_bytes("id;name\\n007;Jos\\xe9\\n".encode("latin-1"))
    >>> f = sniff_file(p)
    >>> f.kind, f.encoding, f.delimiter, f.header
    ('csv', 'cp1252', ';', ('id', 'name'))
    """
    import zlib

    path = Path(path)
    source = str(path)
    head = _read_head(path, source, _SNIFF_BYTES)
    if not head:
        raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
    kind = _kind(path, head)
    if kind in ("excel", "parquet", "spss"):
        return FileFormat(kind)
    if kind == "xls":
        raise SurveyError(f"{source}: old Excel .xls workbooks are not read; expected .xlsx (save the file as .xlsx or CSV).")
    if kind == "mismatch":
        raise SurveyError(
            f"{source}: the content is not a {path.suffix.lower()} file; expected a file matching its extension."
        )
    notes: list[str] = []
    compression = None
    data = head
    truncated = path.stat().st_size > len(head)
    if head[:2] == b"\x1f\x8b":
        compression = "gzip"
        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read(_SNIFF_BYTES)
                truncated = bool(fh.read(1))
        except (OSError, EOFError, zlib.error) as exc:
            raise SurveyError(f"{source}: cannot be decompressed as gzip ({exc}).") from None
        notes.append("decompressed gzip")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
        try:
            text = codecs.getincrementaldecoder("utf-16")().decode(data, final=not truncated)
        except UnicodeDecodeError:
            raise SurveyError(f"{source}: starts with a UTF-16 mark but is not UTF-16 text.") from None
        notes.append("read as UTF-16")
    elif b"\x00" in data:
        raise SurveyError(
            f"{source}: does not look like a text (CSV) file; expected CSV, Parquet, Excel .xlsx or SPSS .sav."
        )
    elif _utf8_prefix(data):
        encoding = "utf-8"
        text = data.decode("utf-8", errors="ignore").lstrip("\ufeff")
    else:
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
            notes.append("read as Windows-1252 (the file is not valid UTF-8)")
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
            notes.append("read as Latin-1 (the file is not valid UTF-8)")
    if not text.strip():
        raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
    sample = text if len(text) <= 65536 else text[:65536]
    delimiter, recs = _sniff(sample, truncated or len(sample) < len(text))
    if len(recs) < 3 and len(sample) < len(text):  # very long header rows (Qualtrics question text)
        delimiter, recs = _sniff(text, truncated)
    if not recs:
        raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
    if delimiter != ",":
        notes.append(f"delimiter {delimiter!r}")
    layout = detect_layout(recs)
    return FileFormat("csv", encoding, delimiter, compression, layout.names, layout.skip, tuple(notes), layout.kind)


def _read_head(path: Path, source: str, size: int = 8) -> bytes:
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise _unreadable(source, exc) from None
    except ValueError:  # a NUL byte in the name
        raise SurveyError(f"{source}: not a valid file name.") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # a device or pipe (/dev/zero ...) never ends
        raise SurveyError(f"{source}: not a regular file (a device, pipe or socket); expected a survey file.")
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise _unreadable(source, exc) from None


def _read_raw(path: Path, *, sheet: str | int | None = None, hint: _Hint | None = None) -> RawTable:
    """Read a table. ``hint`` knows, from a CSV header, the importance and satisfaction column
    lists (so the CSV can be streamed straight into rating blocks), the id column (read as text)
    and which columns to read at all."""
    source = str(path)
    head = _read_head(path, source, _SNIFF_BYTES)
    if not head:
        raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
    kind = _kind(path, head)
    if kind == "excel":
        return _read_excel(path, source, sheet, hint)
    if kind == "parquet":
        return _read_parquet(path, source)
    if kind == "spss":
        return _read_spss(path, source)
    if kind == "xls":
        raise SurveyError(f"{source}: old Excel .xls workbooks are not read; expected .xlsx (save the file as .xlsx or CSV).")
    if kind == "mismatch":
        raise SurveyError(
            f"{source}: the content is not a {path.suffix.lower()} file; expected a file matching its extension."
        )
    return _read_csv(path, head, source, hint)


def _missing_extra(source: str, what: str, module: str, extra: str) -> SurveyError:
    return SurveyError(f'{source}: reading {what} files needs {module}, which is not installed: pip install "latentseg[{extra}]".')


def _read_excel(path: Path, source: str, sheet: str | int | None, hint: _Hint | None = None) -> RawTable:
    try:
        import openpyxl
    except ImportError:
        raise _missing_extra(source, "Excel", "openpyxl", "excel") from None
    content = io.BytesIO(_read_bytes(path, source))  # a file object: openpyxl judges paths by extension
    try:
        wb = openpyxl.load_workbook(content, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise SurveyError(f"{source}: cannot be read as an Excel workbook ({exc}).") from None
    try:
        names = wb.sheetnames
        if sheet is None:
            sheet_name = names[0]
        elif isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
            idx = int(sheet)
            if not 0 <= idx < len(names):
                raise SurveyError(f"{source}: has no sheet number {idx}; expected 0-{len(names) - 1} (sheets: {', '.join(names)}).")
            sheet_name = names[idx]
        elif sheet in names:
            sheet_name = sheet
        else:
            raise SurveyError(f"{source}: has no sheet {sheet!r}; expected one of {', '.join(repr(n) for n in names)}.")
        ws = wb[sheet_name]
        head = list(ws.iter_rows(min_row=1, max_row=3, values_only=True))
    finally:
        wb.close()
    header = head[0] if head else None
    if header is None or all(h is None for h in header):
        raise SurveyError(f"{source}: sheet {sheet_name!r} is empty; expected a header row and one row per respondent.")
    layout = detect_layout(head)
    raw_names = list(layout.names)
    check_unique_names(raw_names, source)
    _check_formulas(content.getvalue(), sheet_name, source)
    content.seek(0)
    id_col = hint.id_column(raw_names) if hint is not None else None
    # the id column as the cells hold it (pandas would read the text "007" as the number 7)
    dtype = {id_col: object} if id_col else None
    if layout.kind == "surveymonkey":  # names made from both header rows
        df = pd.read_excel(content, sheet_name=sheet_name, engine="openpyxl", header=None, skiprows=2,
                           names=raw_names, dtype=dtype)
    else:
        skip = list(range(1, layout.skip + 1))
        df = pd.read_excel(content, sheet_name=sheet_name, engine="openpyxl", dtype=dtype, skiprows=skip)
        df = _fix_blank_names(df, raw_names)
    if df.empty:
        raise SurveyError(f"{source}: has a header but no data rows; expected one row per respondent.")
    notes = [f"read sheet {sheet_name!r} of an Excel workbook"]
    if layout.kind != "plain":
        notes.append(_layout_note(layout))
    return RawTable(
        _FrameColumns(df), source, first_row=2 + layout.skip, notes=notes, statements=dict(layout.questions),
        not_profile=tuple(c for c in raw_names if is_metadata(c)) if layout.kind != "plain" else (),
        layout=layout.kind,
    )


_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")


def _sheet_ref(sheet: str) -> str:
    """A sheet name as a cell reference writes it: ``Sheet1``, ``'My data'``."""
    return sheet if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet) else "'" + sheet.replace("'", "''") + "'"


def _check_formulas(data: bytes, sheet_name: str, source: str) -> None:
    """Refuse formula cells without a saved value (a workbook written by a program that does not
    calculate, e.g. openpyxl or pandas): read for their values they are blanks, so a rating
    computed by a formula would silently become a missing rating."""
    import zipfile

    import openpyxl
    from openpyxl.utils import get_column_letter

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            if not any(_FORMULA_TAG.search(zf.read(n)) for n in sheets):
                return  # no formula anywhere: the usual case, decided without parsing a cell
    except (zipfile.BadZipFile, OSError, KeyError):
        pass
    formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    values = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        where = {
            (cell.row, cell.column)
            for row in formulas[sheet_name].iter_rows()
            for cell in row
            if getattr(cell, "data_type", None) == "f"
        }
        if not where:
            return
        bad = [
            (cell.row, cell.column)
            for row in values[sheet_name].iter_rows()
            for cell in row
            if (getattr(cell, "row", None), getattr(cell, "column", None)) in where and cell.value is None
        ]
    finally:
        formulas.close()
        values.close()
    if bad:
        bad.sort()
        ref = _sheet_ref(sheet_name)
        cells = ", ".join(f"{ref}!{get_column_letter(c)}{r}" for r, c in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise SurveyError(
            f"{source}: {len(bad)} formula cell{'s' if len(bad) > 1 else ''} without a saved value ({cells}): the "
            "workbook was written by a program that does not calculate formulas, so their results are not in the "
            "file and would read as blanks; expected values: open and save the workbook in Excel or LibreOffice "
            "(which stores the results), or replace the formulas by their values."
        )


def _read_parquet(path: Path, source: str) -> RawTable:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise SurveyError(f"{source}: cannot be read as Parquet ({exc}).") from None
    check_unique_names([str(c) for c in table.column_names], source)
    index_cols = [c for c in table.column_names if re.fullmatch(r"__index_level_\d+__", str(c))]
    if index_cols:  # an unnamed pandas index saved with the data
        table = table.drop_columns(index_cols)
    return RawTable(_ArrowColumns(table), source)


def _read_spss(path: Path, source: str) -> RawTable:
    try:
        import pyreadstat
    except ImportError:
        raise _missing_extra(source, "SPSS", "pyreadstat", "spss") from None
    try:
        df, meta = pyreadstat.read_sav(str(path))
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise SurveyError(f"{source}: cannot be read as an SPSS .sav file ({exc}).") from None
    labels = {str(k): {kk: str(vv) for kk, vv in v.items()} for k, v in (meta.variable_value_labels or {}).items()}
    statements = {str(k): str(v) for k, v in (meta.column_names_to_labels or {}).items() if v}
    notes = ["read an SPSS .sav file (numeric codes kept; value labels in Survey.value_labels)"] if labels else []
    return RawTable(_FrameColumns(df), source, statements=statements, value_labels=labels, notes=notes)


def _blank_plan(raw_names: Sequence[str], n_columns: int, is_empty: Any) -> tuple[list[int], list[str]] | None:
    """Which columns to keep and their names: blank-headed columns are dropped when empty,
    else named ``unnamed_<k>``. None when there is nothing to do."""
    blanks = {i for i, n in enumerate(raw_names) if str(n).strip() == ""}
    if not blanks or len(raw_names) != n_columns:
        return None
    keep, names = [], []
    for i in range(n_columns):
        if i in blanks:
            if is_empty(i):
                continue
            names.append(f"unnamed_{i + 1}")
        else:
            names.append(str(raw_names[i]))
        keep.append(i)
    return keep, names


def _fix_blank_names(df: pd.DataFrame, raw_names: Sequence[str]) -> pd.DataFrame:
    plan = _blank_plan(raw_names, df.shape[1], lambda i: bool(df.iloc[:, i].isna().all()))
    if plan is None:
        return df
    keep, names = plan
    return df.iloc[:, keep].set_axis(names, axis=1)


def _fix_blank_names_arrow(table: Any, raw_names: Sequence[str]) -> Any:
    plan = _blank_plan(raw_names, table.num_columns, lambda i: table.column(i).null_count == table.num_rows)
    if plan is None:
        return table
    keep, names = plan
    return table.select(keep).rename_columns(names)


def _decode(data: bytes, source: str) -> tuple[bytes, list[str]]:
    """Return UTF-8 bytes without BOM, and notes on what was converted (the slow path: gzip,
    UTF-16 or non-UTF-8 files, read whole into memory)."""
    notes: list[str] = []
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise SurveyError(f"{source}: cannot be decompressed ({exc}).") from None
        notes.append("decompressed gzip")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise SurveyError(f"{source}: starts with a UTF-16 mark but is not UTF-16 text.") from None
        notes.append("read as UTF-16")
    if not data or data.isspace():
        raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise SurveyError(
            f"{source}: does not look like a text (CSV) file; expected CSV, Parquet, Excel .xlsx or SPSS .sav."
        )
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text, enc = data.decode("cp1252"), "Windows-1252"
            except UnicodeDecodeError:
                text, enc = data.decode("latin-1"), "Latin-1"
            data = text.encode("utf-8")
            notes.append(f"read as {enc} (the file is not valid UTF-8)")
    return data, notes


def _records(sample: str, delimiter: str, truncated: bool, limit: int = 40) -> list[list[str]]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    out: list[list[str]] = []
    try:
        for rec in reader:
            out.append(rec)
            if len(out) > limit:
                break
    except csv.Error:
        pass
    if truncated and len(out) <= limit and out:
        out.pop()  # possibly cut in the middle
    return [r for r in out if r]


def _sniff(sample: str, truncated: bool) -> tuple[str, list[list[str]]]:
    best: tuple[tuple[bool, int], str, list[list[str]]] | None = None
    for d in _DELIMITERS:
        recs = _records(sample, d, truncated)
        if not recs or len(recs[0]) < 2:
            continue
        width = len(recs[0])
        consistent = all(len(r) == width for r in recs[1:])
        score = (consistent, width)
        if best is None or score > best[0]:
            best = (score, d, recs)
    if best is None:
        return ",", _records(sample, ",", truncated)
    return best[1], best[2]


def _layout_note(layout: ExportLayout) -> str:
    return (
        f"{layout.platform} export: {layout.skip + 1} header rows; the question text gives the outcome statements"
    )


def _utf8_prefix(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes, possibly cut mid-character) is UTF-8 text."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_end(data: bytes) -> int:
    """How much of ``data`` to sniff: the first megabyte, or more to hold _SNIFF_LINES lines."""
    pos = -1
    for _ in range(_SNIFF_LINES):
        pos = data.find(b"\n", pos + 1)
        if pos < 0:
            return len(data)
    return max(_SNIFF_BYTES, pos + 1)


def _read_csv(path: Path, head: bytes, source: str, hint: _Hint | None = None) -> RawTable:
    """Read a delimited text file. The fast path hands the file to pyarrow as it is (UTF-8,
    with or without BOM); gzip, UTF-16 and non-UTF-8 files are decoded in memory first."""
    import pyarrow as pa

    size = path.stat().st_size
    want = len(head)
    while len(head) == want < size and head.count(b"\n") < _SNIFF_LINES and want < _MAX_SNIFF:
        want *= 4  # a very wide header: sniff until a few whole lines are in view
        head = _read_head(path, source, want)
    fast = (
        head[:2] != b"\x1f\x8b"
        and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        and b"\x00" not in head
        and _utf8_prefix(head)
    )
    if fast:
        text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
        if not text.strip() and size <= len(head):
            raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
        raw = _parse_csv(lambda: str(path), text, size > len(head), b'"' in head, size, source, [], hint)
        if raw is not None:
            return raw
        # a column pyarrow could not read as UTF-8 further down the file: decode it all
    data, notes = _decode(_read_bytes(path, source), source)
    end = _sniff_end(data)
    text = data[:end].decode("utf-8", errors="ignore")
    raw = _parse_csv(lambda: pa.py_buffer(data), text, len(data) > end, b'"' in data, len(data), source, notes, hint)
    assert raw is not None  # data is valid UTF-8 now
    return raw


def _release_arrow_memory() -> None:
    """Hand memory Arrow freed (parse buffers, read-ahead) back to the system, so later numpy
    arrays do not stack on top of it."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


class _Retry(Exception):
    """The streamed read met something only the whole-table reader handles."""


def _stream(make_input: Any, options: tuple[Any, Any, Any], header: list[str], blocks: list[list[str]], size: int) -> _StreamedColumns:
    """Read batch by batch: rating columns (typed float64) go straight into F-ordered blocks,
    the other columns are kept (those of ``convert_opts.include_columns``, if given). Peak
    memory: the blocks, the other columns and one batch."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    read_opts, parse_opts, convert_opts = options
    rating = [c for b in blocks for c in b]
    typed = pcsv.ConvertOptions(
        column_types={**dict(convert_opts.column_types), **{c: pa.float64() for c in rating}},
        include_columns=convert_opts.include_columns,
        strings_can_be_null=convert_opts.strings_can_be_null,
        quoted_strings_can_be_null=convert_opts.quoted_strings_can_be_null,
    )
    try:
        reader = pcsv.open_csv(make_input(), read_opts, parse_opts, typed)
        schema = reader.schema
        if [str(n) for n in schema.names] != (list(convert_opts.include_columns) or header):
            raise _Retry
        index = {name: i for i, name in enumerate(schema.names)}
        block_idx = [[index[c] for c in b] for b in blocks]
        rating_set = set(rating)
        other_idx = [i for i, name in enumerate(schema.names) if name not in rating_set]
        cap = 0
        outs: list[np.ndarray] = [np.empty((0, len(b)), order="F") for b in blocks]
        others = []
        n = 0
        for batch in reader:
            k = batch.num_rows
            if n + k > cap:  # first batch: estimate the rows from the file size; later: grow
                cap = max(n + k, int(size / max(read_opts.block_size, 1) * k * 1.05) + k) if cap == 0 else int((n + k) * 1.5)
                grown = [np.empty((cap, len(b)), order="F") for b in blocks]
                for g, o in zip(grown, outs, strict=True):
                    g[:n] = o[:n]
                outs = grown
            for out, idx in zip(outs, block_idx, strict=True):
                for j, ci in enumerate(idx):
                    out[n : n + k, j] = batch.column(ci).to_numpy(zero_copy_only=False)
            others.append(batch.select(other_idx))
            n += k
            del batch
    except pa.ArrowInvalid as exc:
        if "columns, got" in str(exc):
            raise
        raise _Retry from None  # a value the first block's types cannot hold, e.g. text in a rating
    if n and cap > 1.1 * n:
        outs = [np.array(o[:n], order="F") for o in outs]  # one copy, exact size
    else:
        outs = [o[:n] for o in outs]
    other_schema = pa.schema([schema.field(i) for i in other_idx])
    table = pa.Table.from_batches(others, schema=other_schema)
    _release_arrow_memory()
    return _StreamedColumns({tuple(b): o for b, o in zip(blocks, outs, strict=True)}, table, header, n)


def _block_size(text: str, n_read: int) -> int:
    """Bytes per parsed batch: _BLOCK_SIZE, or where more than _WIDE columns are read and rows
    are wider than 1 MB / _BLOCK_ROWS (512 bytes), _BLOCK_ROWS rows (at most _MAX_BLOCK).
    Arrow's CSV reader spends time and memory per column read and batch: 100,000 columns read
    1 MB at a time are 50 batches of five rows, 5 million small arrays. Where few columns are
    read, small batches parse in less memory. A batch always holds the longest line seen twice
    over (Arrow needs the header, and any row, inside one batch)."""
    longest = max(len(line.encode("utf-8", errors="ignore")) for line in text.split("\n", 2 * _SNIFF_LINES)[: 2 * _SNIFF_LINES])
    row = len(text.encode("utf-8", errors="ignore")) / max(text.count("\n"), 1)
    if n_read <= _WIDE or row * _BLOCK_ROWS <= 1 << 20:
        return max(_BLOCK_SIZE, 2 * longest)
    return int(max(min(_MAX_BLOCK, max(_BLOCK_SIZE, row * _BLOCK_ROWS)), 2 * longest))


def _parse_csv(
    make_input: Any, text: str, truncated: bool, quoted: bool, size: int, source: str, notes: list[str],
    hint: _Hint | None = None,
) -> RawTable | None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    sample = text if len(text) <= 65536 else text[:65536]
    delimiter, recs = _sniff(sample, truncated or len(sample) < len(text))
    if len(recs) < 3 and len(sample) < len(text):  # very long header rows (Qualtrics question text)
        delimiter, recs = _sniff(text, truncated)
    if delimiter != ",":
        notes.append(f"delimiter {delimiter!r}")
    if not recs:
        raise SurveyError(f"{source}: the file is empty; expected a header row and one row per respondent.")
    layout = detect_layout(recs)
    header = list(layout.names)
    check_unique_names(header, source)
    skip = layout.skip
    if layout.kind != "plain":
        notes.append(_layout_note(layout))
    # a SurveyMonkey export's names are made from its two header rows: both are skipped
    names_opt: dict[str, Any] = {"column_names": header} if layout.kind == "surveymonkey" else {}
    extra: dict[str, Any] = {
        "first_row": 2 + skip,
        "statements": dict(layout.questions),
        "notes": notes,
        "not_profile": tuple(c for c in header if is_metadata(c)) if layout.kind != "plain" else (),
        "layout": layout.kind,
    }
    blocks = keep = None
    text_columns: dict[str, Any] = {}
    if hint is not None:
        clean = all(h.strip() for h in header)  # else the names change (unnamed_<k>) once read
        plan = hint.plan(header, raise_error=clean, questions=layout.questions)
        if plan is not None and clean:
            blocks = [list(plan[3].importance), list(plan[3].satisfaction)]
            keep = hint.keep(header)
        id_col = plan[0] if plan is not None else hint.id_column(header)
        if id_col is not None:
            text_columns[id_col] = pa.string()  # ids as written: 007 stays 007, 20 digits stay exact
    convert_opts = pcsv.ConvertOptions(
        strings_can_be_null=True, quoted_strings_can_be_null=True, column_types=text_columns, include_columns=keep or []
    )
    block_size = _block_size(text, len(keep) if keep else len(header))

    for newlines in (quoted, True) if not quoted else (True,):
        read_opts = pcsv.ReadOptions(
            use_threads=True, skip_rows_after_names=skip + len(names_opt), block_size=block_size, **names_opt
        )
        parse_opts = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=newlines)
        try:
            if blocks:
                try:
                    cols = _stream(make_input, (read_opts, parse_opts, convert_opts), header, blocks, size)
                except _Retry:
                    pass
                else:
                    if cols.n == 0:
                        raise SurveyError(f"{source}: has a header but no data rows; expected one row per respondent.")
                    if any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in cols.others.schema.types):
                        return None  # not UTF-8 after all
                    return RawTable(cols, source, **extra)
            table = pcsv.read_csv(make_input(), read_opts, parse_opts, convert_opts)
        except pa.ArrowInvalid as exc:
            msg = str(exc)
            if "columns, got" in msg:
                if not newlines:
                    continue  # perhaps a quoted line break: read again allowing them
                _raise_ragged(make_input, source, read_opts, parse_opts, convert_opts, len(header))
            raise SurveyError(f"{source}: cannot be parsed as CSV ({msg}).") from None
        break
    if any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in table.schema.types):
        return None  # not UTF-8 after all
    if table.num_rows == 0:
        raise SurveyError(f"{source}: has a header but no data rows; expected one row per respondent.")
    if keep:
        return RawTable(_ArrowColumns(table, header), source, **extra)
    table = _fix_blank_names_arrow(table, header)
    return RawTable(_ArrowColumns(table), source, **extra)


def _raise_ragged(make_input: Any, source: str, read_opts: Any, parse_opts: Any, convert_opts: Any, width: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    bad: list[tuple[int | None, int]] = []

    def handler(row: Any) -> str:
        bad.append((row.number, row.actual_columns))
        return "skip"

    serial_read = pcsv.ReadOptions(
        use_threads=False, skip_rows_after_names=read_opts.skip_rows_after_names, block_size=read_opts.block_size,
        column_names=read_opts.column_names,
    )
    serial_parse = pcsv.ParseOptions(
        delimiter=parse_opts.delimiter, newlines_in_values=parse_opts.newlines_in_values, invalid_row_handler=handler
    )
    try:
        pcsv.read_csv(make_input(), serial_read, serial_parse, convert_opts)
    except pa.ArrowInvalid:
        pass
    if not bad:
        raise SurveyError(f"{source}: has rows with a different number of fields than the header ({width}).")
    first_line, first_count = bad[0]
    lines = [b[0] for b in bad if b[0] is not None]
    raise SurveyError(
        f"{source}: ragged rows: row {first_line} has {first_count} fields where the header has {width} "
        f"({len(bad)} such rows, at rows {lines[:5]}{' ...' if len(lines) > 5 else ''}); expected {width} fields "
        "in every row (check for unquoted delimiters or line breaks inside a field)."
    )


# ----------------------------------------------------------------------------- survey building
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
#: Normalised names of the columns that set responses aside (Qualtrics ``Status`` and ``Finished``).
_STATUS_NAMES = ("status", "finished")


def _norm(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


def _normalised(names: Sequence[str]) -> dict[str, str]:
    """Normalised name -> the first column with that normalised name."""
    normalised: dict[str, str] = {}
    for c in names:
        normalised.setdefault(_norm(c), c)
    return normalised


def find_weight_column(names: Sequence[str], explicit: str | None = None, source: str = "the table") -> str | None:
    """The survey-weight column of a table with these column names: ``explicit`` (which must be
    one of them), else the first whose normalised name is in :data:`WEIGHT_NAMES`, else None.

    Examples
    --------
    >>> find_weight_column(["id", "imp_a", "Weight"]), find_weight_column(["id", "w2"], "w2"), find_weight_column(["a"])
    ('Weight', 'w2', None)
    """
    names = [str(c) for c in names]
    return _pick(explicit or None, names, WEIGHT_NAMES, "weight", "weight_column", source)


def _pick(
    explicit: str | None, names: Sequence[str], candidates: Sequence[str], what: str, flag: str, source: str,
    normalised: Mapping[str, str] | None = None,
) -> str | None:
    if explicit:
        if explicit not in names:
            shown = ", ".join(f"'{c}'" for c in names[:8]) + (" ..." if len(names) > 8 else "")
            raise SurveyError(
                f"{source}: the {what} column '{explicit}' ({flag}) is not in the file; expected one of its columns: {shown}."
            )
        return explicit
    if normalised is None:
        normalised = _normalised(names)
    for cand in candidates:
        if cand in normalised:
            return normalised[cand]
    return None


def _as_scale(value: str | Scale | tuple[float, float] | None, what: str) -> Scale | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Scale):
        return value
    if isinstance(value, tuple):
        try:
            return Scale(float(value[0]), float(value[1]))
        except (ValueError, TypeError, IndexError):
            raise ConfigError(f"The {what} scale must look like '1-5' or (1, 5); got {value!r}.") from None
    try:
        return Scale.parse(str(value))
    except ValueError:
        raise ConfigError(f"The {what} scale must look like '1-5' or '0-10' with low < high; got {value!r}.") from None


def _statement(imp_text: str | None, sat_text: str | None) -> str | None:
    """The outcome statement shared by an importance and a satisfaction question text:
    Qualtrics writes ``"<question> - <statement>"``; take the longest common trailing part."""
    if not imp_text:
        return None
    a = [p.strip() for p in imp_text.split(" - ")]
    if sat_text:
        b = [p.strip() for p in sat_text.split(" - ")]
        common: list[str] = []
        while a and b and a[-1] == b[-1] and len(common) < min(len(a), len(b)):
            common.insert(0, a[-1])
            a, b = a[:-1], b[:-1]
        if common and a:  # something differed before the shared part
            return " - ".join(common)
        a = [p.strip() for p in imp_text.split(" - ")]
    return a[-1] if len(a) > 1 else imp_text.strip()


def _read_outcomes_file(path: str | Path, outcomes: Sequence[str], source: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    p = Path(path)
    try:
        table = _read_raw(p).frame
    except SurveyError as exc:
        raise SurveyError(f"Outcomes file {exc}") from None
    cols = {_norm(str(c)): str(c) for c in table.columns}
    id_col = next((cols[c] for c in ("outcome", "outcomeid", "id", "outcomes") if c in cols), None)
    st_col = next((cols[c] for c in ("statement", "outcomestatement", "text", "description", "label") if c in cols), None)
    js_col = next((cols[c] for c in ("jobstep", "step", "jobstage") if c in cols), None)
    if id_col is None or (st_col is None and js_col is None):
        raise SurveyError(
            f"{p}: outcomes file needs an 'outcome' column and a 'statement' and/or 'job_step' column; "
            f"found {', '.join(repr(str(c)) for c in table.columns)}."
        )
    known = {o: o for o in outcomes}
    folded = {o.casefold(): o for o in outcomes}
    info: dict[str, dict[str, str]] = {}
    unknown = []
    for _, row in table.iterrows():  # a few dozen rows
        key = str(row[id_col]).strip()
        target = known.get(key) or folded.get(key.casefold())
        if target is None:
            unknown.append(key)
            continue
        entry = {}
        if st_col is not None and pd.notna(row[st_col]) and str(row[st_col]).strip():
            entry["statement"] = str(row[st_col]).strip()
        if js_col is not None and pd.notna(row[js_col]) and str(row[js_col]).strip():
            entry["job_step"] = str(row[js_col]).strip()
        info[target] = entry
    notes = []
    if not info:
        raise SurveyError(
            f"{p}: none of its {len(table)} outcomes ({', '.join(repr(u) for u in unknown[:3])} ...) is an outcome of "
            f"{source} ({', '.join(repr(o) for o in outcomes[:3])} ...); expected the same outcome ids."
        )
    if unknown:
        notes.append(f"outcomes file {p.name}: {len(unknown)} outcomes not in the survey were ignored ({', '.join(unknown[:5])})")
    missing = [o for o in outcomes if o not in info]
    if missing:
        notes.append(f"outcomes file {p.name}: no statement for {len(missing)} outcomes ({', '.join(missing[:5])}); their ids stand in")
    return info, notes


@dataclass
class _Options:
    id_column: str | None
    duration_column: str | None
    weight_column: str | None
    imp_pattern: str | None
    sat_pattern: str | None
    imp_scale: Scale | None
    sat_scale: Scale | None
    missing_codes: tuple[float, ...]
    outcomes_file: str | None
    profile_columns: tuple[str, ...]
    columns: dict[str, dict[str, str]]
    outcomes: dict[str, dict[str, str]]
    labels: dict[str, Any] = field(default_factory=dict)
    use_weights: bool = True


def _options(
    config: Mapping[str, Any] | None,
    *,
    imp_scale: Any,
    sat_scale: Any,
    missing_codes: Sequence[float],
    outcomes_file: str | Path | None,
    id_column: str | None,
    duration_column: str | None,
    weight_column: str | None,
) -> _Options:
    s = merge_config(config, source="config")["survey"]
    codes = tuple(float(c) for c in missing_codes) if len(missing_codes) else tuple(s["missing_codes"])
    return _Options(
        id_column=id_column or s["id_column"] or None,
        duration_column=duration_column or s["duration_column"] or None,
        weight_column=weight_column or s["weight_column"] or None,
        imp_pattern=s["imp_pattern"] or None,
        sat_pattern=s["sat_pattern"] or None,
        imp_scale=_as_scale(imp_scale if imp_scale is not None else s["imp_scale"], "importance"),
        sat_scale=_as_scale(sat_scale if sat_scale is not None else s["sat_scale"], "satisfaction"),
        missing_codes=codes,
        outcomes_file=str(outcomes_file) if outcomes_file else (s["outcomes_file"] or None),
        profile_columns=tuple(s["profile_columns"]),
        columns=dict(s["columns"]),
        outcomes=dict(s["outcomes"]),
        labels=dict(s["labels"]),
        use_weights=bool(s["use_weights"]),
    )


def _plan(
    names: list[str], opts: _Options, source: str, questions: Mapping[str, str] | None = None
) -> tuple[str | None, str | None, str | None, RatingColumns]:
    """The id, duration and weight columns and the rating columns of a table with these names.

    Rating columns: ``[survey.columns]``, else the patterns, else the naming conventions, else
    (no configuration, and ``questions``: a Qualtrics or SurveyMonkey export's question text,
    SPSS variable labels) the question text, "How important ..." / "How satisfied ..."."""
    normalised = _normalised(names)
    id_col = _pick(opts.id_column, names, ID_NAMES, "id", "id_column", source, normalised)
    dur_col = _pick(opts.duration_column, names, DURATION_NAMES, "duration", "duration_column", source, normalised)
    wt_col = _pick(opts.weight_column, names, WEIGHT_NAMES, "weight", "weight_column", source, normalised)
    special = [c for c in (id_col, dur_col, wt_col) if c]
    try:
        rc = find_rating_columns(
            names, imp_pattern=opts.imp_pattern, sat_pattern=opts.sat_pattern, mapping=opts.columns or None,
            exclude=special, source=source,
        )
    except SurveyError:
        if not questions or opts.columns or opts.imp_pattern or opts.sat_pattern:
            raise
        found = question_rating_columns(names, questions, exclude=[*special, *(c for c in names if is_metadata(c))])
        if found is None:
            raise
        rc = RatingColumns(*found)
    return id_col, dur_col, wt_col, rc


class _Hint:
    """What the CSV reader learns from a header before it reads the rows: the id, duration,
    weight and rating columns (:func:`_plan`, worked out once and kept for :func:`_build`), and
    which columns to read at all.

    Parameters
    ----------
    opts : _Options or None
        None: a plain table (:func:`read_table`), whose id column is found by name only.
    source : str
    profile : bool
        Read the profile columns' values (else only their names are kept).
    """

    def __init__(self, opts: _Options | None, source: str, profile: bool = True) -> None:
        self.opts, self.source, self.profile = opts, source, profile
        self._names: list[str] | None = None
        self._questions: dict[str, str] = {}
        self._plan: tuple[str | None, str | None, str | None, RatingColumns] | None = None

    def plan(
        self, names: Sequence[str], *, raise_error: bool = False, questions: Mapping[str, str] | None = None
    ) -> tuple[str | None, str | None, str | None, RatingColumns] | None:
        """:func:`_plan` of these names (and question text); None where it fails, unless ``raise_error``."""
        names = [str(n) for n in names]
        if self.opts is None:
            return None
        if questions is not None and dict(questions) != self._questions:
            self._questions, self._names = dict(questions), None
        if self._names != names:
            self._names, self._plan = names, None
            try:
                self._plan = _plan(names, self.opts, self.source, self._questions)
            except LatentsegError:
                if raise_error:  # a problem with the header: say so before reading the rows
                    raise
        return self._plan

    def id_column(self, names: Sequence[str]) -> str | None:
        """The id column alone (it depends on the names only), or None."""
        try:
            return _pick(self.opts.id_column if self.opts else None, names, ID_NAMES, "id", "id_column", self.source)
        except LatentsegError:
            return None

    def keep(self, names: Sequence[str]) -> list[str] | None:
        """The columns to read, in file order; None for all of them."""
        plan = self.plan(names)
        if plan is None or (self.profile and not self.opts.profile_columns):
            return None
        wanted = {c for c in plan[:3] if c} | plan[3].columns | {c for c in _status_candidates(names) if _norm(c) in _STATUS_NAMES}
        if self.profile:
            wanted |= set(self.opts.profile_columns)
        return [c for c in names if c in wanted]


def _id_values(cols: Any, name: str) -> pd.Series:
    """The id column; integers in an Arrow table go to text in Arrow (exact, where pandas would
    make a column with nulls float64)."""
    import pyarrow as pa

    table = cols.table if isinstance(cols, _ArrowColumns) else getattr(cols, "others", None)
    if table is not None and name in table.column_names:
        col = table.column(name)
        if pa.types.is_integer(col.type):
            return col.cast(pa.string()).to_pandas()
    return cols.series(name)


def _build(raw: RawTable, opts: _Options, *, stacklevel: int, hint: _Hint | None = None, profile: bool = True) -> Survey:
    cols, source = raw.columns, raw.source
    notes = list(raw.notes)
    names = cols.names
    n = cols.n
    if n == 0:
        raise SurveyError(f"{source}: has a header but no data rows; expected one row per respondent.")
    check_unique_names(names, source)

    questions = raw.statements or None
    plan = hint.plan(names, questions=questions) if hint is not None else None  # worked out from the header already
    id_col, dur_col, wt_col, rc = plan if plan is not None else _plan(names, opts, source, questions)
    special = [c for c in (id_col, dur_col, wt_col) if c]
    notes.append(rc.how)

    frame_index = cols.df.index if isinstance(cols, _FrameColumns) else None
    file_rows = RowNamer.for_file(n, raw.first_row, frame_index if raw.index_rows else None)
    if id_col is not None:
        ids = check_ids(_id_values(cols, id_col), id_col, source, file_rows)
        rows = RowNamer(ids, "respondents")
    elif frame_index is not None and frame_index.name and _norm(str(frame_index.name)) in ID_NAMES:
        ids = check_ids(frame_index.to_series(), f"index {frame_index.name}", source, file_rows)
        rows = RowNamer(ids, "respondents")
        notes.append(f"respondent ids taken from the index '{frame_index.name}'")
    else:
        # row numbers, as text like every respondent id
        ids = pd.Index(np.arange(1, n + 1).astype(str), dtype="str", name="respondent_id")
        rows = file_rows
        notes.append("no respondent id column (respondent_id, id, ResponseId ...) found; respondents numbered 1..n in file order")

    taken = set(special) | rc.columns
    cols, ids, rows, set_aside, status_cols = _set_aside(cols, ids, rows, names, taken, source, notes)

    imp, imp_labels = _rating_block(cols, rc.importance, "importance", source, rows, raw.value_labels, opts, opts.imp_scale)
    sat, sat_labels = _rating_block(cols, rc.satisfaction, "satisfaction", source, rows, raw.value_labels, opts, opts.sat_scale)
    if opts.missing_codes:
        k = apply_missing_codes(imp, opts.missing_codes) + apply_missing_codes(sat, opts.missing_codes)
        codes = ", ".join(str(int(c)) if float(c).is_integer() else str(c) for c in opts.missing_codes)
        notes.append(f"missing-value codes {codes}: {k} ratings set to missing")
    imp_ranges, sat_ranges = column_ranges(imp), column_ranges(sat)
    check_rated(imp_ranges[0], sat_ranges[0], rc.outcomes, rc.importance, rc.satisfaction, source)

    scales = []
    labels_used: dict[str, str] = {}
    for arr, ranges, block_cols, declared, name, flag, labelled in (
        (imp, imp_ranges, rc.importance, opts.imp_scale, "importance", "--imp-scale", imp_labels),
        (sat, sat_ranges, rc.satisfaction, opts.sat_scale, "satisfaction", "--sat-scale", sat_labels),
    ):
        if labelled is not None:
            how, (low, high), sure, key = labelled
            labels_used[name] = key
            notes.append(f"{name} ratings read from choice text: {how}")
            scale = declared if declared is not None else Scale(low, high, inferred=not sure)
            if declared is None and not sure:
                message = (
                    f"the {name} choice text also fits another label set that codes it differently; read as "
                    f"{how}: declare {flag.lstrip('-').replace('-', '_')} (e.g. '1-7') or [survey.labels] to be sure"
                )
                warnings.warn(f"{source}: {message}", LatentsegWarning, stacklevel=stacklevel + 1)
                notes.append(message)
            check_scale(arr, scale, block_cols, name, source, rows, raw.value_labels, ranges)
            scales.append(scale)
        elif declared is not None:
            check_scale(arr, declared, block_cols, name, source, rows, raw.value_labels, ranges)
            scales.append(declared)
        elif (coded := _value_label_scale(raw.value_labels, block_cols, opts.missing_codes)) is not None:
            notes.append(f"{name} scale {coded} taken from the value labels of the file")
            check_scale(arr, coded, block_cols, name, source, rows, raw.value_labels, ranges)
            scales.append(coded)
        else:
            scale, message = infer_scale(arr, block_cols, name, source, rows, flag, ranges)
            warnings.warn(f"{source}: {message}", LatentsegWarning, stacklevel=stacklevel + 1)
            notes.append(message)
            scales.append(scale)

    duration = weight = None
    if dur_col is not None:
        duration = numeric_column(cols.series(dur_col), dur_col, "duration", source, rows).set_axis(ids).rename("duration")
    if wt_col is not None:
        try:
            weight = numeric_column(cols.series(wt_col), wt_col, "weight", source, rows).set_axis(ids).rename("weight")
        except SurveyError as err:
            if opts.use_weights:
                raise
            # --no-weights ignores the column, so a column it ignores cannot stop the read
            notes.append(f"weight column '{wt_col}' ignored (--no-weights) and not read: {str(err).split(': ', 1)[-1]}")

    personal: list[str] = []
    if opts.profile_columns:
        missing = [c for c in opts.profile_columns if c not in names]
        if missing:
            raise SurveyError(f"{source}: profile column '{missing[0]}' (profile_columns) is not in the file; expected one of its columns.")
        clash = [c for c in opts.profile_columns if c in taken]
        if clash:
            raise SurveyError(f"{source}: profile column '{clash[0]}' (profile_columns) is a rating, id, duration or weight column; expected a profile column.")
        profile_cols = list(opts.profile_columns)  # named explicitly: kept, personal data or not
    else:
        not_profile = set(raw.not_profile) | set(status_cols)
        profile_cols = [c for c in names if c not in taken and c not in not_profile]
        left = [c for c in names if c in not_profile]
        if left:
            what = f"{_LAYOUT_NAMES.get(raw.layout, 'survey')} metadata" if raw.layout != "plain" else "response status"
            notes.append(f"{what} columns left out of the profile: {', '.join(left)}")
    if profile:
        profile_frame, unread = cols.frame(profile_cols, ids), ()
    else:  # names only (latentseg validate): a wide file's profile is most of its memory
        profile_frame, unread = pd.DataFrame(index=ids), tuple(profile_cols)
    if not opts.profile_columns:
        # by name, and (values read) by content: e-mail and IP addresses
        personal = personal_columns(profile_frame) if profile else personal_by_name(unread)
        if personal:
            gone = set(personal)
            profile_frame = profile_frame.drop(columns=[c for c in personal if c in profile_frame.columns])
            unread = tuple(c for c in unread if c not in gone)
            notes.append(
                f"personal data left out of the profile (and so of reports and saved models): {', '.join(personal)}; "
                "name a column in profile_columns to keep it"
            )

    outcomes = _outcomes_frame(rc, raw, opts, source, notes)
    index = pd.Index(rc.outcomes, name="outcome")
    return Survey(
        importance=pd.DataFrame(imp, index=ids, columns=index, copy=False),
        satisfaction=pd.DataFrame(sat, index=ids, columns=index.copy(), copy=False),
        outcomes=outcomes,
        imp_scale=scales[0],
        sat_scale=scales[1],
        profile=profile_frame,
        duration=duration,
        weight=weight,
        source=source,
        notes=tuple(notes),
        value_labels=dict(raw.value_labels),
        unread_profile=unread,
        set_aside=set_aside,
        personal=tuple(personal),
        columns={
            "id": id_col, "importance": tuple(rc.importance), "satisfaction": tuple(rc.satisfaction),
            "labels": labels_used, "layout": raw.layout, "weight": wt_col,
        },
    )


_LAYOUT_NAMES = {"qualtrics": "Qualtrics", "surveymonkey": "SurveyMonkey"}


def _status_candidates(names: Sequence[str]) -> list[str]:
    """Columns that may be ``Status`` / ``Finished`` (a cheap look at a wide header)."""
    return [c for c in names if "stat" in c.lower() or "fini" in c.lower()]


def _set_aside(
    cols: Any, ids: pd.Index, rows: RowNamer, names: Sequence[str], taken: set[str], source: str, notes: list[str]
) -> tuple[Any, pd.Index, RowNamer, pd.DataFrame, list[str]]:
    """Set aside survey previews, tests, spam and unfinished responses (Qualtrics ``Status`` and
    ``Finished``): the kept rows, their ids and row names, the set-aside respondents with their
    reasons, and the status columns used."""
    found = {_norm(c): c for c in _status_candidates(names) if c not in taken and _norm(c) in _STATUS_NAMES}
    empty = pd.DataFrame({"respondent_id": pd.Series([], dtype="str"), "reasons": pd.Series([], dtype="str")})
    if not found:
        return cols, ids, rows, empty, []
    status = cols.series(found["status"]).rename(found["status"]) if "status" in found else None
    finished = cols.series(found["finished"]).rename(found["finished"]) if "finished" in found else None
    mask, reasons, used = status_exclusions(status, finished)
    if not mask.any():
        return cols, ids, rows, empty, used
    if mask.all():
        raise SurveyError(
            f"{source}: every response is set aside by {' and '.join(repr(u) for u in used)} ({reasons[0]}, ...); "
            "expected some finished, non-preview responses."
        )
    keep = ~mask
    set_aside = pd.DataFrame({
        "respondent_id": pd.Series(np.asarray(ids)[mask].astype(str), dtype="str"),
        "reasons": pd.Series(reasons, dtype="str"),
    })
    notes.append(
        f"{int(mask.sum())} responses set aside by {' and '.join(repr(u) for u in used)} (survey previews, tests, spam, "
        "unfinished); listed in the cleaning report"
    )
    labels = rows.labels
    kept_rows = RowNamer(np.asarray(labels)[keep] if not isinstance(labels, pd.Index) else labels[keep], rows.word)
    return cols.take(keep), ids[keep], kept_rows, set_aside, used


def _value_label_scale(
    value_labels: Mapping[str, Mapping[Any, str]], columns: Sequence[str], missing: Sequence[float]
) -> Scale | None:
    """The scale every column of a block labels alike (an SPSS file's value labels), or None."""
    if not value_labels or not all(c in value_labels for c in columns):
        return None
    sets = set()
    for c in columns:
        try:
            codes = frozenset(float(k) for k in value_labels[c] if float(k) not in missing)
        except (TypeError, ValueError):
            return None
        sets.add(codes)
    if len(sets) != 1:
        return None
    codes = next(iter(sets))
    # contiguous whole numbers only: a labelled "Don't know" = 99 is no scale point
    if len(codes) < 2 or any(not c.is_integer() for c in codes) or max(codes) - min(codes) + 1 != len(codes):
        return None
    return Scale(min(codes), max(codes))


def _rating_block(
    cols: Any, columns: Sequence[str], block: str, source: str, rows: RowNamer,
    value_labels: Mapping[str, Mapping[Any, str]], opts: _Options, declared: Scale | None,
) -> tuple[np.ndarray, tuple[str, tuple[float, float], bool, str] | None]:
    """A block's ratings as a float matrix; choice text ("Extremely important") mapped to
    numbers through the standard label sets or ``[survey.labels]``.

    Returns
    -------
    (ratings (n, m), None or (description of the labels, (low, high), sure, label-set key))
    """
    custom = opts.labels.get(block)
    try:
        return numeric_block(cols, columns, block, source, rows, value_labels), None
    except SurveyError:
        texts = {c: cols.series(c) for c in columns}
        if not _choice_text(texts.values(), block, custom is not None):
            raise  # not choice text: the message about non-numeric values stands
    points = int(declared.high - declared.low + 1) if declared is not None and declared.low == 1 else None
    mapped, how, scale, sure, key = map_labels(texts, block, source, rows, custom=custom, scale_points=points)
    out = np.empty((cols.n, len(columns)), dtype=np.float64, order="F")
    for j, c in enumerate(columns):
        out[:, j] = mapped[c]
    return out, (how, scale, sure, key)


def _choice_text(columns: Any, block: str, custom: bool) -> bool:
    """Whether a block holds choice text: no cell a number, and (without ``[survey.labels]``)
    some cell a standard label of the block. A number among labels, or text among numbers, is
    a data error named by :func:`latentseg.io.validate.numeric_block`."""
    from latentseg.io.exports import known_label

    known = False
    for s in columns:
        if is_numeric(s.dtype):
            if s.notna().any():
                return False
            continue
        values = pd.unique(s.dropna().astype(str).str.strip().to_numpy())
        values = values[values != ""]
        if len(values) and pd.to_numeric(pd.Series(values), errors="coerce").notna().any():
            return False
        known = known or any(known_label(v, block) for v in values[:50])
    return known or custom


def _outcomes_frame(rc: Any, raw: RawTable, opts: _Options, source: str, notes: list[str]) -> pd.DataFrame:
    statements = {o: o for o in rc.outcomes}
    steps = {o: "" for o in rc.outcomes}
    if raw.statements:
        for o, ic, sc in zip(rc.outcomes, rc.importance, rc.satisfaction, strict=True):
            text = _statement(raw.statements.get(ic), raw.statements.get(sc))
            if text:
                statements[o] = text
    if opts.outcomes_file:
        info, more = _read_outcomes_file(opts.outcomes_file, rc.outcomes, source)
        notes.extend(more)
        for o, entry in info.items():
            statements[o] = entry.get("statement", statements[o])
            steps[o] = entry.get("job_step", steps[o])
    if opts.outcomes:
        folded = {o.casefold(): o for o in rc.outcomes}
        unknown = [k for k in opts.outcomes if k not in statements and k.casefold() not in folded]
        if unknown:
            notes.append(f"[survey.outcomes] names outcomes not in the survey, ignored: {', '.join(unknown[:5])}")
        for key, entry in opts.outcomes.items():
            o = key if key in statements else folded.get(key.casefold())
            if o is None:
                continue
            statements[o] = entry.get("statement", statements[o])
            steps[o] = entry.get("job_step", steps[o])
    return pd.DataFrame(
        {"statement": [statements[o] for o in rc.outcomes], "job_step": [steps[o] for o in rc.outcomes]},
        index=pd.Index(rc.outcomes, name="outcome"),
    )


def read_survey(
    path: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    imp_scale: str | Scale | None = None,
    sat_scale: str | Scale | None = None,
    missing_codes: Sequence[float] = (),
    outcomes_file: str | Path | None = None,
    id_column: str | None = None,
    duration_column: str | None = None,
    weight_column: str | None = None,
    sheet: str | int | None = None,
    profile: bool = True,
) -> Survey:
    """Read and validate an outcome survey.

    Parameters
    ----------
    path : str or Path
        CSV or TSV (any common delimiter and encoding), Parquet, Excel ``.xlsx`` (needs
        ``latentseg[excel]``) or SPSS ``.sav`` (needs ``latentseg[spss]``; value labels give the
        scale). Qualtrics exports (three header rows, values or choice text) and SurveyMonkey
        exports (two header rows) are recognised in CSV and Excel; see :mod:`latentseg.io.exports`.
    config : mapping, optional
        A configuration as :func:`latentseg.config.load_config` returns (or any part of one);
        its ``[survey]`` section supplies defaults for every option below.
    imp_scale, sat_scale : str or Scale, optional
        Declared scales (``"1-5"``); inferred from the data, with a :class:`LatentsegWarning`,
        when neither given nor configured.
    missing_codes : sequence of float
        Rating values that mean "no answer" (e.g. ``(99, -9)``); they become NaN.
    outcomes_file : str or Path, optional
        Outcome statements: a table with ``outcome``, ``statement`` and ``job_step`` columns.
    id_column, duration_column, weight_column : str, optional
        Column names; detected by name when not given (``respondent_id`` / ``id`` /
        ``ResponseId`` ...; ``duration`` / ``Duration (in seconds)`` ...; ``weight``).
    sheet : str or int, optional
        Excel sheet; default the first.
    profile : bool, default True
        Read the profile columns' values. False keeps only their names (``Survey.unread_profile``;
        ``Survey.profile`` has no columns): ``latentseg validate`` reads a survey so, in bounded
        memory however wide the file (a CSV's other columns are then never converted).

    Returns
    -------
    Survey
        Ratings as float matrices (n, m) on their own scales, NaN where unrated; every other
        column in ``profile`` except platform metadata and personal data (``personal``, unless
        named in ``profile_columns``); survey previews, spam and unfinished responses of an
        export in ``set_aside``, not in the ratings; what was inferred in ``notes``. Respondent ids are text (dtype
        ``str``) in every format: read as written from CSV (``007`` stays ``007``), numbers from
        Excel, SPSS or Parquet without float artefacts (7.0 -> ``"7"``); without an id column
        respondents are numbered ``"1"`` .. ``"n"`` in file order. Ids are compared as text.

    Raises
    ------
    SurveyError
        The file cannot be read or fails validation (the message names the file, the column,
        up to five rows and what was expected).
    ConfigError
        A malformed scale or configuration.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = p.write_text("id,imp_a,sat_a,imp_b,sat_b\\nr1,5,2,3,3\\nr2,4,4,1,5\\n")
    >>> s = read_survey(p, imp_scale="1-5", sat_scale="1-5")
    >>> s.outcome_ids, s.importance.loc["r1"].tolist()
    (['a', 'b'], [5.0, 3.0])
    """
    opts = _options(
        config, imp_scale=imp_scale, sat_scale=sat_scale, missing_codes=missing_codes, outcomes_file=outcomes_file,
        id_column=id_column, duration_column=duration_column, weight_column=weight_column,
    )
    hint = _Hint(opts, str(path), profile=profile)
    raw = _read_raw(Path(path), sheet=sheet, hint=hint)
    try:
        return _build(raw, opts, stacklevel=2, hint=hint, profile=profile)
    finally:
        del raw
        _release_arrow_memory()


def survey_from_frame(
    df: pd.DataFrame,
    *,
    source: str = "<frame>",
    config: Mapping[str, Any] | None = None,
    imp_scale: str | Scale | None = None,
    sat_scale: str | Scale | None = None,
    missing_codes: Sequence[float] = (),
    outcomes_file: str | Path | None = None,
    id_column: str | None = None,
    duration_column: str | None = None,
    weight_column: str | None = None,
) -> Survey:
    """Validate an in-memory table as an outcome survey (the same rules as :func:`read_survey`).

    ``df`` is never modified. Rows are named in messages by respondent id, else by index label.

    Parameters
    ----------
    df : DataFrame, shape (n, columns)
        One row per respondent; ``imp_<o>`` / ``sat_<o>`` columns (or another convention).
    source : str
        What to call the table in messages and ``Survey.source``.
    config, imp_scale, sat_scale, missing_codes, outcomes_file, id_column, duration_column, weight_column
        As for :func:`read_survey`.

    Returns
    -------
    Survey

    Examples
    --------
    >>> df = pd.DataFrame({"imp_a": [5, 4], "sat_a": [2, 4], "imp_b": [3, 1], "sat_b": [3, 5]})
    >>> s = survey_from_frame(df, imp_scale="1-5", sat_scale="1-5")
    >>> s.respondent_ids.tolist(), str(s.sat_scale)
    (['1', '2'], '1-5')
    """
    if not isinstance(df, pd.DataFrame):
        raise SurveyError(f"{source}: expected a pandas DataFrame; got {type(df).__name__}.")
    opts = _options(
        config, imp_scale=imp_scale, sat_scale=sat_scale, missing_codes=missing_codes, outcomes_file=outcomes_file,
        id_column=id_column, duration_column=duration_column, weight_column=weight_column,
    )
    names = [str(c) for c in df.columns]
    check_unique_names(names, source)
    if any(not isinstance(c, str) for c in df.columns):
        df = df.set_axis(names, axis=1)  # a new object: the caller's frame keeps its labels
    raw = RawTable(_FrameColumns(df), source, index_rows=True)
    return _build(raw, opts, stacklevel=2)

