"""The ``>>>`` examples of every module's docstrings run here, one test per module.

Every module of ``latentseg`` and its subpackages is collected with ``pkgutil.walk_packages``,
and so is ``latentseg.cli`` (its sources live in the top-level ``cli/`` folder, so it is walked
on its own). The examples run from the repository root, because several read
``examples/project_survey.csv``. An example that warns with a ``LatentsegWarning`` on purpose
does not fail here (the pytest configuration turns those warnings into errors elsewhere). An
example that needs more than a few seconds or an optional extra is marked ``# doctest: +SKIP``
in its docstring.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings
from pathlib import Path

import pytest

import latentseg
import latentseg.cli
from latentseg.errors import LatentsegWarning

REPO_ROOT = Path(__file__).resolve().parents[1]

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# modules whose examples take more than ~10 s in total (marked slow). None does today: the longest,
# latentseg.models.bayes.engine (PyMC/nutpie sampling), takes about 5 s of CPU; numpyro sampling
# (latentseg.models.bayes._jax_kernels.sample_numpyro, ~15 s) is skipped in its docstring instead.
SLOW_MODULES: set[str] = set()


def _raise(name: str) -> None:
    raise ImportError(f"cannot import package {name} while collecting its modules")


def _module_names() -> list[str]:
    names: set[str] = set()
    for package in (latentseg, latentseg.cli):
        names.add(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".", onerror=_raise):
            names.add(info.name)
    return sorted(names)


MODULES = _module_names()


def test_every_package_is_collected() -> None:
    for name in ("latentseg.models.bayes.engine", "latentseg.cli.app", "latentseg.io.files"):
        assert name in MODULES


@pytest.mark.parametrize(
    "module_name",
    [pytest.param(name, id=name, marks=[pytest.mark.slow] if name in SLOW_MODULES else []) for name in MODULES],
)
def test_docstring_examples(module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS, verbose=False)
    report: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)
        for test in sorted(tests, key=lambda t: t.name):
            runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    if results.failed:
        pytest.fail(
            f"{results.failed} of {results.attempted} docstring examples of {module_name} failed:\n" + "".join(report),
            pytrace=False,
        )
