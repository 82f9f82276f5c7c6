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
from typing import Any, TypeVar

import typer
from rich.console import Console

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


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register ``func`` as a command of ``app`` with latentseg's error handling."""

    def deco(func: F) -> F:
        app.command(name, **kwargs)(handle_errors(func))
        return func

    return deco
