"""Writing files safely: atomic replacement and spreadsheet-safe CSV cells.

Every file latentseg writes as a whole (reports, figures, tables, checkpoints, saved results,
scored files) goes through :func:`atomic_write` (or :func:`atomic_write_text` /
:func:`atomic_write_bytes`, or :class:`AtomicFile` for a file written in pieces): the content
goes to a unique temporary file in the target's folder, is flushed to disk, and replaces the
target in one ``os.replace``. A killed run leaves either the old file or the new one, never half
of one; a failed write removes its temporary file. The new file gets the permissions of any
newly created file (``0o666`` less the umask), not the ``0o600`` of :func:`tempfile.mkstemp`.

:func:`safe_csv_cell` is the one rule that keeps a spreadsheet from running a text cell of a
CSV file as a formula; :func:`safe_csv_frame` applies it to a whole table (text cells, column
names, text index labels) and leaves numeric columns numeric. :func:`markdown_cell` is the
matching rule for user text placed in a Markdown table (HTML and pipes escaped).

>>> from latentseg.io.files import atomic_write, atomic_write_text, safe_csv_cell
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "AtomicFile",
    "atomic_write",
    "atomic_write_text",
    "atomic_write_bytes",
    "fsync_file",
    "fsync_dir",
    "safe_csv_cell",
    "safe_csv_frame",
    "markdown_cell",
]

#: text starting with one of these is run as a formula by a spreadsheet (the full-width forms
#: too: some spreadsheets fold them to their ASCII twins)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's content to disk."""
    with open(path, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the filesystem allows it."""
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsync'ed
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicFile:
    """A temporary file beside ``path`` that replaces ``path`` when committed.

    For content written in pieces (a writer kept open across calls); :func:`atomic_write`
    covers the common case of one call. Use as a context manager (commit when the block ends
    normally, discard when it raises), or call :meth:`commit` / :meth:`discard` yourself.

    Parameters
    ----------
    path : path-like
        The file to write; its folder must exist.
    suffix : str, default ".tmp"
        Suffix of the temporary file (``.<name>.<random><suffix>`` in the same folder).
    replace : callable, default os.replace
        Moves the temporary file onto ``path`` (a seam for crash tests).
    sync_dir : bool, default False
        Also flush the folder after the replacement, so the rename itself survives a power cut.

    Attributes
    ----------
    path : Path
        The target.
    tmp : Path
        The temporary file to write to; it exists (empty) from the start.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with AtomicFile(target) as tmp:
    ...     _ = tmp.write_text("done", encoding="utf-8")
    >>> Path(target).read_text(encoding="utf-8"), sorted(os.listdir(os.path.dirname(target)))
    ('done', ['out.txt'])
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        suffix: str = ".tmp",
        replace: Callable[[Any, Any], Any] | None = None,
        sync_dir: bool = False,
    ) -> None:
        self.path = Path(path)
        self._replace = replace if replace is not None else os.replace
        self._sync_dir = sync_dir
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        self.tmp = Path(name)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0o600; the result is an ordinary file
        except BaseException:
            os.close(fd)
            self.discard()
            raise
        os.close(fd)

    def commit(self) -> Path:
        """Flush the temporary file to disk and move it onto the target (removed on failure)."""
        try:
            fsync_file(self.tmp)
            self._replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        if self._sync_dir:
            fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (the target is left as it was)."""
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write(
    path: str | os.PathLike[str],
    writer: Callable[[Path], Any],
    *,
    suffix: str = ".tmp",
    replace: Callable[[Any, Any], Any] | None = None,
    sync_dir: bool = False,
) -> Path:
    """Write a file atomically: ``writer(tmp)`` writes a temporary file that then replaces ``path``.

    Parameters
    ----------
    path : path-like
        The file to write; its folder must exist.
    writer : callable
        Called with the temporary file's path (an existing empty file in the same folder); it
        writes the whole content there, e.g. ``lambda p: frame.to_csv(p, index=False)``.
    suffix, replace, sync_dir
        As :class:`AtomicFile`.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> target = os.path.join(tempfile.mkdtemp(), "data.csv")
    >>> atomic_write(target, lambda p: p.write_text("a,b\\n1,2\\n", encoding="utf-8")).read_text()
    'a,b\\n1,2\\n'
    >>> def crash(p):
    ...     raise RuntimeError("disk full")
    >>> try:
    ...     atomic_write(target, crash)
    ... except RuntimeError:
    ...     pass
    >>> Path(target).read_text(encoding="utf-8"), len(os.listdir(os.path.dirname(target)))  # old content, no leftovers
    ('a,b\\n1,2\\n', 1)
    """
    with AtomicFile(path, suffix=suffix, replace=replace, sync_dir=sync_dir) as tmp:
        writer(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`).

    Examples
    --------
    >>> import os, tempfile
    >>> atomic_write_text(os.path.join(tempfile.mkdtemp(), "a.json"), "{}").read_text()
    '{}'
    """
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Examples
    --------
    >>> import os, tempfile
    >>> atomic_write_bytes(os.path.join(tempfile.mkdtemp(), "a.bin"), b"\\x00\\x01").read_bytes()
    b'\\x00\\x01'
    """
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def safe_csv_cell(value: Any) -> Any:
    """Neutralise a text cell that a spreadsheet would run as a formula (CSV injection).

    Text beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or the full-width
    forms U+FF1D, U+FF0B, U+FF0D, U+FF20) gets a leading apostrophe, which spreadsheets show as
    text. That includes text that looks like a number or a sum (``"-1+2"``, ``"-5"``): as text it
    would be run as a formula.
    Numbers and other values are returned unchanged (a negative number is data, not a formula).

    Parameters
    ----------
    value : any

    Returns
    -------
    any
        ``value``, or ``"'" + value`` for a risky string.

    Examples
    --------
    >>> safe_csv_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> safe_csv_cell("Speed Seekers"), safe_csv_cell(-3.5), safe_csv_cell("-1+2")
    ('Speed Seekers', -3.5, "'-1+2")
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _is_text(dtype: Any) -> bool:
    import pandas as pd

    return dtype == object or pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)


def safe_csv_frame(frame: Any, *, index: bool = True) -> Any:
    """A copy of a DataFrame ready for ``to_csv``: every text cell, column name and (with
    ``index``) text index label passed through :func:`safe_csv_cell`; numeric columns untouched.

    Parameters
    ----------
    frame : DataFrame
    index : bool, default True
        Also neutralise the index labels (when the index is text); pass False when the index is
        not written.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": ["=cmd", "007"], "x": [-1.5, 2.0]})
    >>> safe_csv_frame(df).to_csv(index=False).splitlines()
    ['id,x', "'=cmd,-1.5", '007,2.0']
    """
    import pandas as pd

    out = frame.copy()
    for j in range(out.shape[1]):
        s = out.iloc[:, j]
        if _is_text(s.dtype):
            out.isetitem(j, s.astype(object).map(safe_csv_cell))
    out.columns = [safe_csv_cell(str(c)) for c in out.columns]
    if index:
        if isinstance(out.index, pd.MultiIndex):
            out.index = pd.MultiIndex.from_tuples(
                [tuple(safe_csv_cell(v) for v in t) for t in out.index], names=out.index.names
            )
        elif _is_text(out.index.dtype):
            out.index = pd.Index([safe_csv_cell(v) for v in out.index], name=out.index.name)
        if out.index.name is not None:
            out.index = out.index.rename(safe_csv_cell(str(out.index.name)))
    return out


def markdown_cell(value: Any) -> str:
    """User text made safe for a Markdown table cell: ``&``, ``<`` and ``>`` become HTML
    entities (no tag or script survives a Markdown renderer), backslashes and pipes are escaped
    (no cell is split) and line breaks become spaces.

    Examples
    --------
    >>> markdown_cell("<script>x</script> | A&B")
    '&lt;script&gt;x&lt;/script&gt; \\\\| A&amp;B'
    """
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
