"""User-facing errors and warnings.

Every problem a user can cause (a bad file, a bad setting, a fit that failed) is raised as a
:class:`LatentsegError` whose message is one sentence naming the file, the column, up to five
offending row ids and what was expected. The CLI turns it into exit code 1 with no traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "LatentsegError",
    "SurveyError",
    "ConfigError",
    "FitError",
    "ModelFileError",
    "DataMismatchError",
    "BusyError",
    "LatentsegWarning",
    "ConvergenceWarning",
    "format_rows",
]


class LatentsegError(Exception):
    """Base class for every error caused by the user's input or settings (CLI exit code 1)."""


class SurveyError(LatentsegError, ValueError):
    """A survey file or table that cannot be read or fails validation."""


class ConfigError(LatentsegError, ValueError):
    """A bad setting: an out-of-range parameter, an unknown option, a broken ``latentseg.toml``."""


class FitError(LatentsegError, RuntimeError):
    """A model that could not be fitted to the data it was given."""


class ModelFileError(LatentsegError, OSError):
    """A saved model that cannot be loaded (missing, damaged, other version, changed id)."""


class DataMismatchError(LatentsegError, ValueError):
    """A file that is not the data a saved model was fitted on (another survey of the same name,
    or the survey changed after the fit)."""


class BusyError(LatentsegError, RuntimeError):
    """Another process is writing the same thing (a saved model of the same name) right now."""


class LatentsegWarning(UserWarning):
    """Something the user should know about that does not stop the run (inferred scales, small n)."""


class ConvergenceWarning(LatentsegWarning):
    """A fit that did not converge or reached a degenerate solution."""


def format_rows(ids: Iterable[Any], limit: int = 5) -> str:
    """Format offending row ids for a message: at most ``limit`` of them, then a count.

    Parameters
    ----------
    ids : iterable
        Row ids (respondent ids or 1-based row numbers).
    limit : int, default 5
        How many to show.

    Returns
    -------
    str
        For example ``"[12, 408, 977]"`` or ``"[1, 2, 3, 4, 5] and 7 more"``.

    Examples
    --------
    >>> format_rows([3, 1, 4, 1, 5, 9, 2])
    '[3, 1, 4, 1, 5] and 2 more'
    """
    items = list(ids)
    shown = ", ".join(str(i) for i in items[:limit])
    extra = len(items) - limit
    return f"[{shown}]" + (f" and {extra} more" if extra > 0 else "")
