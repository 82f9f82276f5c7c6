"""JSON-safe values: numpy scalars and arrays as Python numbers and lists, NaN and inf as ``null``.

Every ``to_dict`` / JSON file of the package goes through :func:`json_safe`, so the same value
is written the same way everywhere (the machine-readable contract of ``--json`` output, saved
tables, checkpoints).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars / arrays made plain and NaN / inf made ``None``, recursively.

    Mappings become dicts with string keys; lists, tuples and arrays become lists; numpy bools,
    integers and floats become Python ones. Anything else is returned unchanged.

    Parameters
    ----------
    value : any

    Returns
    -------
    any
        What :func:`json.dumps` writes as standard JSON (no ``NaN`` / ``Infinity`` tokens).

    Examples
    --------
    >>> import json
    >>> json.dumps(json_safe({"share": np.float64(0.25), "k": np.int64(3), "ll": float("nan"),
    ...                       1: np.array([True, False])}))
    '{"share": 0.25, "k": 3, "ll": null, "1": [true, false]}'
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else v
    return value
