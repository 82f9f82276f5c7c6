"""What the benchmarks that compare with an older checkout share (``--base DIR``)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def base_tree(base: Path) -> str:
    """An importable copy of an older checkout ``base`` (its cli/ folder placed as latentseg/cli,
    as the package was laid out before the CLI moved), in a new temporary folder: put it first on
    ``PYTHONPATH`` to run that version."""
    out = Path(tempfile.mkdtemp(prefix="latentseg-base-"))
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(base / "latentseg", out / "latentseg", ignore=skip)
    if (base / "cli").is_dir() and not (out / "latentseg" / "cli").exists():
        shutil.copytree(base / "cli", out / "latentseg" / "cli", ignore=skip)
    return str(out)
