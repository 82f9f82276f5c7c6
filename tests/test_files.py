"""latentseg.io.files: atomic writes (content, permissions, clean-up) and spreadsheet-safe cells."""

from __future__ import annotations

import os
import stat

import pytest

from latentseg.io.files import AtomicFile, atomic_write, atomic_write_bytes, atomic_write_text, safe_csv_cell


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("write", ["text", "bytes", "callback", "pieces"])
def test_written_files_get_ordinary_permissions_not_0600(tmp_path, write):
    """Regression: files went out with mkstemp's 0600, unreadable to the rest of a team."""
    target = tmp_path / "out.csv"
    if write == "text":
        atomic_write_text(target, "a\n")
    elif write == "bytes":
        atomic_write_bytes(target, b"a\n")
    elif write == "callback":
        atomic_write(target, lambda p: p.write_text("a\n"))
    else:
        with AtomicFile(target, suffix=".part") as tmp, open(tmp, "a") as fh:
            fh.write("a\n")
    assert target.read_text() == "a\n"
    assert _mode(target) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.html"
    atomic_write_text(target, "old")

    def crash(p):
        p.write_text("half")
        raise KeyboardInterrupt  # not an Exception: clean-up must not depend on catching Exception

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_failed_replace_removes_the_temporary(tmp_path):
    target = tmp_path / "x.json"

    def replace(src, dst):
        raise OSError("cross-device")

    with pytest.raises(OSError, match="cross-device"):
        atomic_write(target, lambda p: p.write_text("{}"), replace=replace)
    assert list(tmp_path.iterdir()) == []


def test_discarded_file_leaves_the_target_alone(tmp_path):
    target = tmp_path / "scores.parquet"
    target.write_bytes(b"old")
    f = AtomicFile(target, suffix=".part")
    f.tmp.write_bytes(b"new")
    f.discard()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]


@pytest.mark.parametrize("payload", ["=1+1", "+cmd", "-x", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_safe_csv_cell_neutralises_formulas(payload):
    assert safe_csv_cell(payload) == "'" + payload


@pytest.mark.parametrize("value", ["Speed Seekers", "", "a=b", -1.5, -2, None])
def test_safe_csv_cell_leaves_other_values_alone(value):
    assert safe_csv_cell(value) == value
