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

:func:`check_outputs` is the one output-path policy of every command that writes: before any
work it refuses an output that is one of the command's inputs (resolved paths, derived names
included), two outputs that are one file, and an output that cannot be written (a parent that is
a file, a read-only folder, a name longer than the file system allows).
:func:`exclusive_lock` is an OS file lock (``fcntl.flock``) held by the one process that writes
something others must not write at the same time (a saved model); :func:`os_error_message`
turns an :class:`OSError` into one sentence naming the path and the reason.

>>> from latentseg.io.files import atomic_write, atomic_write_text, safe_csv_cell
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    "check_outputs",
    "exclusive_lock",
    "os_error_message",
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


# --------------------------------------------------------------------------- output-path policy
PathLike = str | os.PathLike[str]


def _labelled(paths: Mapping[str, PathLike | None] | Iterable[PathLike | None]) -> list[tuple[str, Path]]:
    """``(description, path)`` pairs: ``"--output 'x.csv'"``, or ``"'x.csv'"`` for a path without a label."""
    items = paths.items() if isinstance(paths, Mapping) else ((None, p) for p in paths)
    return [(f"{label} '{p}'" if label else f"'{p}'", Path(p)) for label, p in items if p is not None and str(p) != ""]


def _real(path: Path) -> str:
    try:
        return os.path.realpath(os.path.abspath(path))
    except ValueError:  # an embedded NUL byte: no such file can exist
        return str(path)


def _same(a: Path, b: Path) -> bool:
    """The same file or folder: equal resolved paths, or one file reached by two names (hard link)."""
    if _real(a) == _real(b):
        return True
    with contextlib.suppress(OSError, ValueError):
        return os.path.samefile(a, b)
    return False


def _inside(path: Path, folder: Path) -> bool:
    real, top = _real(path), _real(folder)
    return real != top and real.startswith(top.rstrip(os.sep) + os.sep)


def _name_max(folder: Path) -> int:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    return 255


def _cannot(path: Path, code: int, detail: str) -> Exception:
    from latentseg.errors import ConfigError

    return ConfigError(f"Cannot write '{path}': {os.strerror(code)} ({detail}).")


def _check_writable(path: Path) -> None:
    """Raise ConfigError when ``path`` cannot be written (or created, with its folders)."""
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    limit = _name_max(folder if folder.is_dir() else Path("."))
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise _cannot(path, errno.ENAMETOOLONG, f"the name '{part[:40]}...' has {size} bytes; the limit is {limit}")
    if not folder.is_dir():
        raise _cannot(path, errno.ENOTDIR, f"'{folder}' is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _cannot(path, errno.EACCES, f"the folder '{folder}' is read-only for this user")


def check_outputs(
    outputs: Mapping[str, PathLike | None] | Iterable[PathLike | None],
    inputs: Mapping[str, PathLike | None] | Iterable[PathLike | None],
    *,
    command: str,
    trees: Mapping[str, PathLike | None] | Iterable[PathLike | None] = (),
) -> None:
    """The output-path policy of every command that writes: refuse, before any work, to write over
    an input, to write two outputs to one file, or to write where the file system will not let us.

    Paths are compared resolved (``os.path.realpath``: ``./a.csv``, ``sub/../a.csv`` and a symbolic
    link to ``a.csv`` are all ``a.csv``) and, where both exist, with ``os.path.samefile`` (hard
    links). Derived names count: a command that also writes ``x_landscape.csv`` next to
    ``x.csv`` lists both among its outputs.

    Parameters
    ----------
    outputs : mapping of label to path, or iterable of paths
        Every file (or folder) the command writes or replaces; ``None`` entries are skipped. A
        label (``"--output"``, ``"the landscape table"``) names the path in the message.
    inputs : mapping of label to path, or iterable of paths
        Every file or folder the command reads.
    command : str
        The command (or function) named in the message.
    trees : mapping of label to path, or iterable of paths, optional
        Folders the command fills with files of its own naming (a report's ``figures/`` and
        ``tables/``): an input at or inside one of them is refused too.

    Raises
    ------
    ConfigError
        One message naming both paths (or the path and the reason it cannot be written).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> survey = os.path.join(d, "survey.csv")
    >>> check_outputs({"--output": os.path.join(d, "scores.csv")}, {"the survey": survey}, command="score")
    >>> check_outputs({"--output": os.path.join(d, ".", "survey.csv")}, {"the survey": survey}, command="score")
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: score would write --output '....csv' over its input, the survey '....csv' (the same file); choose another output path.
    """
    from latentseg.errors import ConfigError

    outs, ins, folders = _labelled(outputs), _labelled(inputs), _labelled(trees)
    for n, (desc_a, a) in enumerate(outs):
        for desc_b, b in outs[:n]:
            if _same(a, b):
                raise ConfigError(f"{command} would write {desc_b} and {desc_a} to the same file; give them different paths.")
    for desc_o, o in outs:
        for desc_i, i in ins:
            if _same(o, i):
                raise ConfigError(
                    f"{command} would write {desc_o} over its input, {desc_i} (the same file); choose another output path."
                )
    for desc_t, t in folders:
        for desc_i, i in ins:
            if _same(t, i) or _inside(i, t):
                raise ConfigError(
                    f"{command} writes files into {desc_t}, which holds its input, {desc_i}, and could overwrite it; "
                    "choose another output folder or move the input."
                )
    for _, p in [*outs, *folders]:
        _check_writable(p)


# ------------------------------------------------------------------------------ OS errors
_OS_HINTS = {
    errno.ENOSPC: "free some disk space and run again",
    getattr(errno, "EDQUOT", -2): "free some of your disk quota and run again",
    errno.EACCES: "check the permissions of the file and its folder",
    errno.EPERM: "check the permissions of the file and its folder",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.ENAMETOOLONG: "use a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "check that the path and its folders exist",
    errno.EISDIR: "give a file name, not a folder",
}


def os_error_message(exc: OSError) -> str:
    """One sentence for a file-system error: the path(s), the reason (``strerror``) and a hint.

    Examples
    --------
    >>> import errno
    >>> os_error_message(OSError(errno.ENOSPC, "No space left on device", "models/m/result.nc"))
    "Cannot access 'models/m/result.nc': No space left on device (free some disk space and run again)."
    >>> os_error_message(PermissionError(errno.EACCES, "Permission denied", "a.tmp", None, "out/a.csv"))
    "Cannot access 'a.tmp' (-> 'out/a.csv'): Permission denied (check the permissions of the file and its folder)."
    """
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else None) or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(exc.errno or -1)
    tail = f" ({hint})." if hint else "."
    if exc.filename is None:
        return f"File system error: {reason}{'' if reason.endswith('.') and not hint else tail}"
    where = f"'{os.fsdecode(exc.filename)}'"
    if exc.filename2 is not None:
        where += f" (-> '{os.fsdecode(exc.filename2)}')"
    return f"Cannot access {where}: {reason}{tail}"


# ------------------------------------------------------------------------------------ locks
def _lock_fd(fd: int, wait: bool) -> bool:
    """Take an exclusive lock on an open file; False when another process holds it (and not ``wait``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        mode = msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK  # type: ignore[attr-defined]
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, mode, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = path.read_text(encoding="ascii").strip()
        if text.isdigit():
            return f"pid {text}"
    return "pid unknown"


@contextlib.contextmanager
def exclusive_lock(
    path: PathLike,
    *,
    what: str,
    wait: bool = False,
    hint: str = "",
    on_wait: Callable[[str], Any] | None = None,
) -> Iterator[Path]:
    """Hold an exclusive OS lock on ``path`` (``fcntl.flock``) for the ``with`` block.

    The lock file is created if needed and keeps the holder's process id; it is left in place
    when the block ends (removing it would let a third process lock a different file). The lock
    goes with the process: a killed holder releases it at once.

    Parameters
    ----------
    path : path-like
        The lock file; its folder is created.
    what : str
        What is locked, for the message (``"model 'survey'"``).
    wait : bool, default False
        Wait for the holder to finish instead of refusing.
    hint : str, optional
        What the user can do, ending the refusal [``"wait for it to finish"``].
    on_wait : callable, optional
        Called with a message once when ``wait`` has to wait.

    Raises
    ------
    BusyError
        Another process holds the lock (and ``wait`` is False): one message naming ``what``, the
        holder's pid and the lock file.

    Examples
    --------
    >>> import os, tempfile
    >>> lock = os.path.join(tempfile.mkdtemp(), "m.lock")
    >>> with exclusive_lock(lock, what="model 'm'"):
    ...     Path(lock).read_text().strip() == str(os.getpid())
    True
    """
    from latentseg.errors import BusyError

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        if not _lock_fd(fd, wait=False):
            message = f"{what} is being written by another latentseg process ({_holder(target)}; lock file '{target}')"
            if not wait:
                raise BusyError(f"{message}; {hint or 'wait for it to finish'}.")
            if on_wait is not None:
                on_wait(f"{message}; waiting for it to finish.")
            _lock_fd(fd, wait=True)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield target
    finally:
        os.close(fd)  # releases the lock
