"""Shared plumbing for CLI commands: error handling, consoles, JSON output, global flags.

Every command is registered through :func:`command`, which turns a :class:`LatentsegError`
(bad input, bad setting, failed fit) into one message on stderr and exit code 1, with no
traceback. Usage errors (unknown options) are Click's and exit 2.

Every console the commands print through (:func:`out_console`, :func:`err_console`,
:func:`fail`) passes the text it renders through :func:`terminal_text` first, so user text
(statements, column names, segment names, ids) cannot move the cursor, recolour or retitle the
terminal: escape sequences and other control characters are dropped.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand

from latentseg.errors import LatentsegError

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    quiet: bool = False


state = _State()


#: a whole escape sequence: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC strings (to BEL or ESC \\),
#: or a two-character ESC sequence
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)"
)
#: C0 controls except tab and newline, DEL, and C1 controls (0x80-0x9f, e.g. the one-byte CSI)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(value: Any) -> str:
    """``str(value)`` without terminal escape sequences or control characters (newline and tab kept).

    Examples
    --------
    >>> terminal_text("Speed\\x1b[2J\\x1b]0;owned\\x07 Seekers\\r\\n")
    'Speed Seekers\\n'
    """
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", str(value)))


class CleanConsole(Console):
    """A rich Console that renders every string through :func:`terminal_text` (its own styling,
    added after, is untouched)."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        return super().render_str(terminal_text(text), **kwargs)


def out_console() -> Console:
    return CleanConsole(file=sys.stdout, soft_wrap=True)


def err_console() -> Console:
    return CleanConsole(file=sys.stderr, soft_wrap=True, quiet=state.quiet)


def info(message: str) -> None:
    """A progress / log line on stderr (suppressed by ``--quiet``)."""
    err_console().print(message)


def fail(message: str) -> None:
    """Print one error message on stderr and exit 1."""
    from rich.markup import escape  # messages name columns like [b]: not markup

    CleanConsole(file=sys.stderr, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(terminal_text(message))}", markup=True, highlight=False
    )
    raise typer.Exit(1)


def echo_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN becomes null)."""
    from latentseg.io.jsonsafe import json_safe

    sys.stdout.write(json.dumps(json_safe(obj), indent=2) + "\n")


def handle_errors(func: F) -> F:
    """Decorator: LatentsegError, and any OSError (a full disk, a read-only folder, a name too
    long ...), -> one message on stderr naming the path and the reason, exit 1; no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LatentsegError as exc:
            fail(str(exc))
        except OSError as exc:  # a file-system error we did not foresee: the path and the reason
            from latentseg.io.files import os_error_message

            fail(os_error_message(exc))
        except MemoryError:
            fail("out of memory: the input or the requested size is too large for this machine "
                 "(try fewer respondents, outcomes or k values).")
        except KeyboardInterrupt:
            Console(file=sys.stderr).print("interrupted; finished work was kept.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def config_input(config: Any) -> Any:
    """The settings file a command reads: ``config``, else ``./latentseg.toml`` when present."""
    from pathlib import Path

    if config is not None:
        return config
    default = Path("latentseg.toml")
    return default if default.is_file() else None


def config_inputs(config: Any) -> dict[str, Any]:
    """The files a command reads through its settings: the config file and the outcome statements
    it names (``[survey] outcomes_file``), labelled for :func:`latentseg.io.files.check_outputs`."""
    path = config_input(config)
    out: dict[str, Any] = {"the config file": path}
    if path is None:
        return out
    from latentseg.config import load_config
    from latentseg.errors import ConfigError

    try:
        outcomes = load_config(path)["survey"]["outcomes_file"]
    except ConfigError:  # the command itself reports what is wrong with the file
        return out
    if outcomes:
        out["the config's [survey] outcomes_file"] = outcomes
    return out


def model_inputs(model: Any, label: str = "MODEL") -> dict[str, Any]:
    """The files of a saved model a command reads, labelled for :func:`latentseg.io.files.check_outputs`:
    the folder, its ``model.json`` and ``result.nc``, and the survey saved with it."""
    from pathlib import Path

    from latentseg.deliver.artifacts import META_FILE, RESULT_FILE

    folder = Path(model)
    if folder.name == META_FILE and folder.is_file():
        folder = folder.parent
    out: dict[str, Any] = {label: folder, f"{label}'s {META_FILE}": folder / META_FILE,
                           f"{label}'s {RESULT_FILE}": folder / RESULT_FILE}
    try:
        doc = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        data = (doc.get("data") or {}) if isinstance(doc, dict) else {}
        surveys = [data.get("abs_path"), data.get("path")] if isinstance(data, dict) else []
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):  # load_model says what is wrong
        surveys = []
    # the path the model reads (absolute) and the one it records (relative to where it was fitted)
    for i, survey in enumerate(s for s in surveys if isinstance(s, str) and s and "\x00" not in s):
        out[f"the survey saved with {label}" + (f" ({i + 1})" if i else "")] = Path(survey)
    return out


def _model_names() -> Any:
    from enum import StrEnum

    from latentseg.models.families import NAMES

    return StrEnum("ModelName", [(n, n) for n in NAMES])


#: ``--model``'s choices, from the family registry (a str: ``ModelName("gmm") == "gmm"``); help lists
#: them, the shell completes them, and any other value exits 2 with Click's message.
ModelName = _model_names()
#: ``--reduce``'s choices (``[reduce] method``).
Reduction = Literal["none", "pca", "fa", "jobstep"]


class HelpAsWritten(TyperCommand):
    """A command whose ``--help`` shows its text as written: rich markup in it is escaped, so
    "Default: [select] models from the config" keeps its ``[select]`` (rich would take it for a
    style tag and drop it)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from rich.markup import escape

        params = [(p, p.help) for p in self.params if getattr(p, "help", None)]
        own = (self.help, self.epilog, self.short_help)
        try:
            for p, text in params:
                p.help = escape(text)  # type: ignore[attr-defined]
            self.help, self.epilog, self.short_help = (escape(t) if t else t for t in own)
            super().format_help(ctx, formatter)
        finally:
            for p, text in params:
                p.help = text  # type: ignore[attr-defined]
            self.help, self.epilog, self.short_help = own


def from_config(text: str, section: str, key: str, *, empty: str | None = None) -> str:
    """An option's help naming the config key it overrides and that key's default.

    Examples
    --------
    >>> from_config("Random seed.", "model", "random_seed")
    'Random seed. Default: [model] random_seed from the config, else 20261122.'
    """
    from latentseg.config import KEYS

    default = next(k.default for k in KEYS if k.section == section and k.name == key)
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    if shown in ("", [], {}) or (isinstance(default, list) and not default):
        shown = empty or "none"
    return f"{text} Default: [{section}] {key} from the config, else {shown}."


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register ``func`` as a command of ``app`` with latentseg's error handling (and its help
    shown as written: :class:`HelpAsWritten`)."""

    def deco(func: F) -> F:
        app.command(name, cls=HelpAsWritten, **kwargs)(handle_errors(func))
        return func

    return deco


# ---- console tables that fit the terminal without eliding a number ("..." in place of 43,840.6) ----
#: a cell that is a number, a share, an interval of them, a count or yes/no: never cut, never wrapped
_NUMBER_CELL = re.compile(r"^[\s\d.,%+\-–()/~≥≤<>=]*(?:n/a|yes|no|NO)?[\s\d.,%+\-–()/]*$")


def _plain(cell: Any) -> str:
    return cell.plain if hasattr(cell, "plain") else str(cell)


def fit_table(table: Any, width: int, *, optional: Any = ()) -> Any:
    """``table`` made to fit ``width`` terminal columns without eliding a number.

    Number columns (every cell a number, share, interval, count or yes/no) keep their full width
    and never wrap; text columns share the rest and wrap (folding a word longer than the column).
    When the numbers alone do not fit, the columns named in ``optional`` are left out, last first,
    with a line saying which; when still too wide, each row is printed as a block of
    ``header: value`` lines instead.

    Examples
    --------
    >>> import io
    >>> from rich.console import Console
    >>> from rich.table import Table
    >>> t = Table("Segment", "BIC", "Customers")
    >>> t.add_row("Coordinating Speed Seekers from large companies", "43,840.6", "17,000 (15,000–19,000)")
    >>> c = Console(file=io.StringIO(), width=40)
    >>> c.print(fit_table(t, 40))
    >>> out = c.file.getvalue()
    >>> "43,840.6" in out and "17,000 (15,000–19,000)" in out and "…" not in out
    True
    """
    from rich.cells import cell_len
    from rich.console import Group
    from rich.text import Text

    cols = list(table.columns)
    cells = [[_plain(c) for c in col.cells] for col in cols]
    headers = [_plain(col.header) for col in cols]
    number = [bool(cells[i]) and all(_NUMBER_CELL.match(v) for v in cells[i]) for i in range(len(cols))]
    full = [max([cell_len(headers[i])] + [cell_len(v) for v in cells[i]] + [1]) for i in range(len(cols))]
    # the narrowest a column can be without breaking a word (a number column: without breaking a value)
    natural = [max([cell_len(w) for w in headers[i].split()]
                   + [cell_len(v) if number[i] else max((cell_len(w) for w in v.split()), default=0) for v in cells[i]]
                   + [1]) for i in range(len(cols))]
    keep = list(range(len(cols)))
    dropped: list[str] = []

    def overhead(n: int) -> int:  # borders and one space of padding each side
        return 3 * n + 1

    def minimum(idx: list[int], whole_words: bool = True) -> int:
        text = (lambda i: min(natural[i], 20)) if whole_words else (lambda i: min(full[i], 8))
        return sum(natural[i] if number[i] else text(i) for i in idx) + overhead(len(idx))

    for name in reversed(list(optional)):  # first: room for whole numbers and whole words
        if minimum(keep) <= width:
            break
        hit = [i for i in keep if headers[i] == name]
        if hit:
            keep.remove(hit[0])
            dropped.append(name)
    if minimum(keep, whole_words=False) > width:  # still too wide for whole numbers: one block per row
        blocks: list[Any] = [Text(_plain(table.title), style="bold")] if table.title else []
        for r in range(table.row_count):
            blocks.append(Text("\n".join(f"{headers[i] or '-'}: {cells[i][r]}" for i in range(len(cols)) if cells[i][r])))
            blocks.append(Text(""))
        return Group(*blocks)
    for i in keep:  # a number column gets a fixed width its every value fits (its header wraps at spaces)
        cols[i].overflow = "fold"
        if number[i]:
            cols[i].width = natural[i]
    if sum(full[i] for i in keep) + overhead(len(keep)) > width:  # the text columns share what is left
        text_cols = [i for i in keep if not number[i]]
        room = width - overhead(len(keep)) - sum(natural[i] for i in keep if number[i])
        base = {i: min(natural[i], 20) for i in text_cols}  # each text column's longest word, where it fits
        if sum(base.values()) > room:
            base = {i: min(full[i], 8) for i in text_cols}
        spare = room - sum(base.values())
        want = sum(full[i] - base[i] for i in text_cols) or 1
        for i in text_cols:
            cols[i].width = base[i] + max(int(spare * (full[i] - base[i]) / want), 0)
        while text_cols and sum(cols[i].width or 0 for i in text_cols) > room:
            widest = max(text_cols, key=lambda i: cols[i].width or 0)
            cols[widest].width = (cols[widest].width or 1) - 1
    if not dropped:
        return table
    table.columns[:] = [cols[i] for i in keep]
    return Group(table, Text(f"(left out at this width: {', '.join(dropped)}; widen the terminal or use --json)", style="dim"))


# ----------------------------------------------------------------------------- survey weights
#: ``--weights COLUMN``: the survey-weight column (on every command that prepares a survey).
WeightsOpt = Annotated[
    str | None,
    typer.Option("--weights", metavar="COLUMN", help=(
        "Survey-weight column: every fit, share and report figure is weighted by it (normalised to mean 1). "
        "Default: [survey] weight_column from the config, else a column named weight when the survey has one.")),
]
#: ``--no-weights``: ignore the survey's weight column.
NoWeightsOpt = Annotated[
    bool, typer.Option("--no-weights", help="Ignore the survey's weight column: every respondent counts once [config: survey.use_weights].")
]


def weight_overrides(weights: str | None, no_weights: bool) -> dict[str, dict[str, Any]]:
    """``--weights`` / ``--no-weights`` as config overrides (``{"survey": {...}}``; empty when
    neither is given).

    Examples
    --------
    >>> weight_overrides("w2", False), weight_overrides(None, True), weight_overrides(None, False)
    ({'survey': {'weight_column': 'w2', 'use_weights': True}}, {'survey': {'use_weights': False}}, {})
    """
    if weights is not None and no_weights:
        from latentseg.errors import ConfigError

        raise ConfigError("--weights names a weight column and --no-weights ignores it; give one of them.")
    if no_weights:
        return {"survey": {"use_weights": False}}
    if weights is not None:
        if not weights.strip():
            from latentseg.errors import ConfigError

            raise ConfigError("--weights needs a column name, e.g. --weights weight.")
        return {"survey": {"weight_column": weights, "use_weights": True}}
    return {}
