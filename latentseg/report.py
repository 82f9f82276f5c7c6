"""The segment-map report (work in progress)."""

from __future__ import annotations

from typing import Any

__all__ = ["safe_csv_cell"]


def safe_csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formula injection: a text cell starting with = + - @ (or tab / CR)
    gets a leading apostrophe.

    Examples
    --------
    >>> safe_csv_cell("=HYPERLINK()"), safe_csv_cell("Speed"), safe_csv_cell(-1.5)
    ("'=HYPERLINK()", 'Speed', -1.5)
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
