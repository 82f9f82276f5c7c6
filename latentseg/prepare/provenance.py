"""Which file a saved model was fitted on, and proof that a file is that one.

:func:`latentseg.prepare.core.prepare` records in its spec (``Prepared.spec``, saved with a model
under ``data``) the SHA-256 of the survey / table file it read (``file_sha256``), its absolute
path (``abs_path``) next to the path as given (``path``) and, per family
(:meth:`~latentseg.prepare.core.Prepared.spec_for`), the hash of the model input itself
(``input_sha256``: respondent ids, column names and values of what the family was fitted on).

Every command that re-reads a model's training data (``profile``, ``size``, ``report`` through
:func:`latentseg.decide.core.decide_inputs`, ``assign`` for a model that records only its survey's
path) finds it with :func:`training_file`, which applies these rules:

- without ``--survey``: the recorded absolute path, then the recorded path (relative to the
  working folder); the first whose bytes hash to ``file_sha256`` is used. A file there with other
  contents (another survey with the same name, or the survey edited after the fit) is refused
  with :class:`~latentseg.errors.DataMismatchError`, naming both paths.
- with ``--survey PATH``: the file is used when its bytes hash to ``file_sha256``; a different
  file (a re-export, the survey with a profile column added) is accepted only when, prepared
  exactly as at fit time (same config, kind, columns, family), its model input has the same
  respondent ids, columns and values as the model's (``input_sha256``). Anything else is refused.
- a model saved before these hashes were recorded keeps working, with a
  :class:`~latentseg.errors.LatentsegWarning` that the file cannot be verified.

Examples
--------
>>> import pandas as pd
>>> a = pd.DataFrame({"x": [1.0, 2.0]}, index=["r1", "r2"])
>>> input_sha256(a) == input_sha256(a.copy()), input_sha256(a) == input_sha256(a.rename(index={"r2": "r3"}))
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, DataMismatchError, LatentsegError, LatentsegWarning

__all__ = ["file_sha256", "input_sha256", "training_file", "RULE"]

#: The rule for a file other than the training survey, as every refusal states it.
RULE = (
    "a different file is accepted only when it holds the same respondents with the same model input "
    "(respondent ids, columns and values) as at fit time"
)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.csv")
    >>> _ = open(p, "wb").write(b"")
    >>> file_sha256(p)[:12]
    'e3b0c44298fc'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_sha256(frame: Any) -> str:
    """SHA-256 (hex) of a model input: respondent ids, column names and values (numbers as
    float64 bytes, anything else as text; missing values kept apart)."""
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(np.asarray(frame))
    h = hashlib.sha256()
    h.update(json.dumps([str(i) for i in df.index]).encode())
    h.update(json.dumps([str(c) for c in df.columns]).encode())
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            h.update(b"f")
            h.update(np.ascontiguousarray(col.to_numpy(dtype=float, na_value=np.nan)).tobytes())
        else:
            h.update(b"s")
            h.update(json.dumps([None if _missing(v) else str(v) for v in col.tolist()]).encode())
    return h.hexdigest()


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def training_file(saved: Any, given: str | os.PathLike[str] | None = None, *, option: str | None = "--survey") -> Path:
    """The file ``saved`` was fitted on, verified against the hashes recorded when it was prepared.

    Parameters
    ----------
    saved : SavedModel
    given : path, optional
        A file the user named (``--survey``); default: the recorded path.
    option : str or None
        The option that points at the file (named in messages); ``None`` where the command has none.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        No file is recorded, or it is not there.
    DataMismatchError
        The file is not the one the model was fitted on (the message names both paths and the rule).
    """
    spec = saved.meta.get("data") if isinstance(saved.meta.get("data"), dict) else {}
    recorded = spec.get("abs_path") or spec.get("path")
    digest = spec.get("file_sha256")
    how = f"pass the survey with {option}" if option else "put the training survey back at that path"
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(f"Survey file '{path}' does not exist.")
        if not isinstance(digest, str):
            _unverifiable(saved, path)
            return path
        got = file_sha256(path)
        if got == digest:
            return path
        why = _same_input(saved, spec, path)
        if why is None:
            return path
        raise DataMismatchError(
            f"Survey file '{path}' ({option or 'given'}) is not the survey model '{saved.name}' was fitted on "
            f"('{recorded}', sha256 {digest[:12]}; this file: {got[:12]}), and {why}. Point at the training survey "
            f"with {option or 'its path'} PATH; {RULE}."
        )
    if not recorded:
        raise ConfigError(f"Model '{saved.name}' does not say which survey it was fitted on; pass the survey with --survey.")
    candidates = list(dict.fromkeys(str(p) for p in (spec.get("abs_path"), spec.get("path")) if p))
    existing = [Path(p) for p in candidates if Path(p).is_file()]
    if not existing:
        raise ConfigError(f"Survey file '{spec.get('path') or recorded}' does not exist (the path saved with the model); {how}.")
    if not isinstance(digest, str):
        _unverifiable(saved, existing[0])
        return existing[0]
    hashes = {p: file_sha256(p) for p in existing}
    for p, h in hashes.items():
        if h == digest:
            return p
    found = existing[-1]
    fix = (f"Point at the training survey with {option} PATH; {RULE}" if option
           else f"Put the training survey back at '{recorded}'")
    raise DataMismatchError(
        f"Survey file '{os.path.abspath(found)}' is not the survey model '{saved.name}' was fitted on: the model "
        f"records '{recorded}' (sha256 {digest[:12]}), this file has sha256 {hashes[found][:12]} (another file with "
        f"the same name, or the survey was changed after the fit). {fix}."
    )


def _unverifiable(saved: Any, path: Path) -> None:
    warnings.warn(
        f"Model '{saved.name}' does not record the hash of the survey it was fitted on (saved by an older "
        f"latentseg): '{path}' cannot be verified to be that survey; refit the model to record it.",
        LatentsegWarning,
        stacklevel=3,
    )


def _same_input(saved: Any, spec: dict[str, Any], path: Path) -> str | None:
    """``None`` when ``path``, prepared as at fit time, gives the model input the model was fitted
    on; else why not, in words."""
    from latentseg.config import merge_config
    from latentseg.prepare.core import prepare

    want = spec.get("input_sha256")
    if not isinstance(want, str):
        return "the model does not record its input's hash to compare it with"
    fam = saved.result.model
    kind = spec.get("data_kind") or spec.get("kind") or "survey"
    columns = spec.get("selected_columns") if kind == "survey" else spec.get("columns")
    try:
        cfg = merge_config(saved.config or None, source=f"the config saved with model '{saved.name}'")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LatentsegWarning)  # the fit saw them already
            data = prepare(path, cfg, kind=kind, families=[fam], columns=columns or None).data_for(fam)
    except LatentsegError as exc:
        return f"it cannot be prepared as the model's data was ({exc})"
    if input_sha256(data) == want:
        return None
    ids = {str(i) for i in data.index}
    model_ids = {str(i) for i in saved.result.respondent_ids}
    if ids != model_ids:
        return (f"its respondents differ from the model's ({len(model_ids - ids)} of the model's {len(model_ids)} "
                f"missing, {len(ids - model_ids)} others)")
    if [str(c) for c in data.columns] != [str(c) for c in saved.result.feature_names]:
        return "its model input has other columns than the model's"
    return "its respondents' answers differ from those the model was fitted on"
