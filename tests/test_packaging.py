"""The wheel ships every module: build it, look inside, install it elsewhere and import everything.

A package missing from ``[tool.setuptools] packages`` in pyproject.toml (say a new
``latentseg/foo/`` folder) would work in the editable checkout and break for every user; this
test catches it. The build runs on a copy of the source tree so nothing is written into the
checkout.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_IGNORE_ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".pytest_cache", ".hypothesis",
    ".mypy_cache",
)
# top-level folders that are not package code (fitted models, outputs, benchmark data)
_IGNORE_TOP = {"models", "latentseg_output", "benchmarks", "docs", "examples", "tests"}


def _ignore(directory: str, names: list[str]) -> set[str]:
    ignored = set(_IGNORE_ANYWHERE(directory, names))
    if Path(directory).resolve() == ROOT:
        ignored |= _IGNORE_TOP & set(names)
    return ignored


def _expected_modules(root: Path) -> dict[str, str]:
    """Path inside the wheel -> module name, for every .py file of the library and the CLI."""
    out: dict[str, str] = {}
    for src, pkg in ((root / "latentseg", "latentseg"), (root / "cli", "latentseg/cli")):
        for path in sorted(src.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(src).as_posix()
            in_wheel = f"{pkg}/{rel}"
            module = in_wheel[:-3].replace("/", ".")
            out[in_wheel] = module.removesuffix(".__init__")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the source copy it was built from); the copy is the reference for what to expect."""
    src = tmp_path_factory.mktemp("src") / "latentseg"
    shutil.copytree(ROOT, src, ignore=_ignore)
    dist = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist)]
    if importlib.util.find_spec("setuptools") is not None:
        # offline: build with this environment's setuptools (which builds wheels without the
        # `wheel` package, so skip build's check of the declared build requirements)
        cmd[4:4] = ["--no-isolation", "--skip-dependency-check"]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(dist.glob("latentseg-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], src


@pytest.mark.xdist_group("packaging")
def test_wheel_contains_every_module_and_data_file(built: tuple[Path, Path]) -> None:
    wheel, src = built
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in _expected_modules(src) if p not in names]
    assert not missing, f"modules missing from the wheel (add their package to pyproject.toml): {missing}"
    assert "latentseg/py.typed" in names
    for folder in ("templates", "data"):
        data_dir = src / "latentseg" / folder
        for path in sorted(data_dir.glob("*")) if data_dir.is_dir() else []:
            if path.is_file():
                assert f"latentseg/{folder}/{path.name}" in names, f"package data missing from the wheel: {path}"
    # not shipped: tests, examples, benchmarks, saved models, the cli/ folder under its own name
    assert not [n for n in names if n.split("/")[0] in {"tests", "examples", "benchmarks", "models", "cli"}]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "latentseg = latentseg.cli.app:main" in text


@pytest.mark.xdist_group("packaging")
def test_every_module_imports_from_the_installed_wheel(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel, src = built
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = sorted(set(_expected_modules(src).values()))
    script = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "out = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        out[name] = importlib.import_module(name).__file__\n"
        "    except Exception as exc:\n"
        "        out[name] = 'ERROR ' + type(exc).__name__ + ': ' + str(exc)\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = {m: f for m, f in files.items() if f.startswith("ERROR")}
    assert not failed, failed
    outside = {m: f for m, f in files.items() if not Path(f).resolve().is_relative_to(target.resolve())}
    assert not outside, f"imported from outside the installed wheel: {outside}"

    # the console entry point and `python -m latentseg` work from the installed copy
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(target)!r}); "
         "sys.argv = ['latentseg', '--version']; from latentseg.cli.app import main; main()"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("latentseg "), proc.stdout + proc.stderr
