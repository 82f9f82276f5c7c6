"""Shared plumbing for CLI commands: error handling, consoles, JSON output, global flags.

Every command is registered through :func:`command`, which turns a :class:`LatentsegError`
(bad input, bad setting, failed fit) into one message on stderr and exit code 1, with no
traceback. Usage errors (unknown options) are Click's and exit 2.
"""

from __future__ import annotations

import functools
import json
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


def out_console() -> Console:
    return Console(file=sys.stdout, soft_wrap=True)


def err_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, quiet=state.quiet)


def info(message: str) -> None:
    """A progress / log line on stderr (suppressed by ``--quiet``)."""
    err_console().print(message)


def fail(message: str) -> None:
    """Print one error message on stderr and exit 1."""
    from rich.markup import escape  # messages name columns like [b]: not markup

    Console(file=sys.stderr, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(1)


def echo_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN becomes null)."""
    from latentseg.io.jsonsafe import json_safe

    sys.stdout.write(json.dumps(json_safe(obj), indent=2) + "\n")


def handle_errors(func: F) -> F:
    """Decorator: LatentsegError (and unreadable files) -> one message on stderr, exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LatentsegError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            Console(file=sys.stderr).print("interrupted; finished work was kept.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register ``func`` as a command of ``app`` with latentseg's error handling."""

    def deco(func: F) -> F:
        app.command(name, **kwargs)(handle_errors(func))
        return func

    return deco
