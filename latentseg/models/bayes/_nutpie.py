"""nutpie's NUTS on our numba log densities, through nutpie's compiled extension.

nutpie's Python package imports ArviZ, xarray, pandas, SciPy and matplotlib (about 0.9 s on the
benchmark machine) before it can start a chain. Our kernels need none of that: the sampler is
nutpie's Rust extension (``nutpie._lib``), which calls the C version of our log density from its
own threads. :func:`start_chains` loads that extension on its own (7 ms), so that a k-sweep's first
chains run on one core while the rest of the imports happen on the other.

This uses nutpie's extension classes, which are not public, so it runs only on the nutpie
versions it was tested with (:data:`TESTED_NUTPIE`, by minor version; the engine checks the
installed version when it is imported). On any other version :func:`kernel_model` returns
``None`` and the caller (``engine._nutpie_kernel``) uses nutpie's public route: ``nutpie.sample``
on ``nutpie.compiled_pyfunc.from_pyfunc``, returning nutpie's DataTree, with no private
attribute touched. Tests check that the routes give the same draws, bit for bit (the settings
below are the ones ``nutpie.sample`` builds from the same arguments), and
``tests/test_bayes_nutpie_allowlist.py`` fails loudly when the installed nutpie is not on the
list: a new release is tested before the compiled route trusts it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

#: nutpie's default progress refresh rate (ms), as ``nutpie.sample`` uses it
PROGRESS_RATE = 100
#: the nutpie minor versions whose extension layout this module was written and tested against; add
#: a version only after running tests/test_bayes_fit.py and tests/test_bayes_nutpie_allowlist.py on it
TESTED_NUTPIE = ("0.16",)


def installed_version() -> str | None:
    """The installed nutpie's version, read from its package metadata (nutpie is not imported).

    Examples
    --------
    >>> installed_version().count(".") >= 1
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nutpie")
    except PackageNotFoundError:
        return None


def is_tested(version: str | None) -> bool:
    """Whether ``version`` belongs to a minor series in :data:`TESTED_NUTPIE` (``"0.16.11"`` is in
    ``"0.16"``; ``"0.160.1"`` and ``"0.17.0"`` are not).

    Examples
    --------
    >>> is_tested("0.16.11"), is_tested("0.17.0"), is_tested("0.160.1"), is_tested(None)
    (True, False, False, False)
    """
    if not version:
        return False
    minor = ".".join(version.split(".")[:2])
    return minor in TESTED_NUTPIE


def nutpie_lib() -> Any | None:
    """nutpie's compiled extension module, without running nutpie's ``__init__`` when it has not
    been imported yet.

    Returns
    -------
    module or None
        ``nutpie._lib``, registered under that name so that a later ``import nutpie`` reuses it;
        ``None`` if nutpie is not installed or its files are laid out differently.
    """
    lib = sys.modules.get("nutpie._lib")  # nutpie imported (its __init__ loads it) or loaded here before
    if lib is not None:
        return lib
    path = _extension_path()
    spec = importlib.util.spec_from_file_location("nutpie._lib", path) if path else None
    if spec is None or spec.loader is None:
        return None
    lib = importlib.util.module_from_spec(spec)
    sys.modules["nutpie._lib"] = lib
    try:
        spec.loader.exec_module(lib)
    except Exception:  # pragma: no cover - a broken install: nutpie's own import will say
        del sys.modules["nutpie._lib"]
        return None
    return lib


def _extension_path() -> str | None:
    """Where nutpie's compiled extension is, found without importing nutpie (None if absent)."""
    spec = importlib.util.find_spec("nutpie")
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    candidates = (os.path.join(f, "_lib" + suffix) for f in folders for suffix in importlib.machinery.EXTENSION_SUFFIXES)
    return next((path for path in candidates if os.path.exists(path)), None)


def kernel_model(family: Any, nd: int, initial_point: Callable[[int], np.ndarray]) -> Any | None:
    """nutpie's model object calling the C version of ``family``'s log density (the mechanism
    nutpie uses for numba-compiled PyMC models).

    Parameters
    ----------
    family : GaussianFamily or LatentClassFamily
        Needs ``c_kernel()`` (the C callback's name and its data buffer).
    nd : int
        Length of the unconstrained parameter vector.
    initial_point : callable
        ``initial_point(chain_seed) -> ndarray (nd,)``, each chain's start.

    Returns
    -------
    nutpie ``PyMcModel`` or None
        ``None`` where the family has no C kernel, or nutpie is not a tested release
        (:data:`TESTED_NUTPIE`) with the extension classes this needs: the caller then uses
        nutpie's public route.
    """
    if not hasattr(family, "c_kernel"):
        return None
    lib = nutpie_lib()
    needed = ("LogpFunc", "ExpandFunc", "PyVariable", "PyMcModel", "PySampler", "PyNutsSettings", "ProgressType",
              "PyStorage")
    if lib is None or not is_tested(str(getattr(lib, "__version__", ""))):
        return None
    if not all(hasattr(lib, name) for name in needed):  # pragma: no cover - a changed layout in a tested series
        return None
    import pandas as pd

    from latentseg.models.bayes._kernels import cfunc

    name, pack = family.c_kernel()
    logp_c, copy_c = cfunc(name), cfunc("copy")
    try:
        ptr = pack.ctypes.data
        logp_fn = lib.LogpFunc(logp_c.address, ptr, pack)  # pack: kept alive with the function
        expand_fn = lib.ExpandFunc(nd, nd, copy_c.address, ptr, pack)
        sizes = {"theta_dim_0": nd}
        variables = lib.PyVariable.new_variables(["theta"], ["float64"], [(nd,)], sizes, {"theta": ("theta_dim_0",)})

        def make_adapter(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("flow adaptation is not supported for latentseg kernels")

        coords = {"theta_dim_0": pd.RangeIndex(nd)}
        return lib.PyMcModel(logp_fn, expand_fn, variables, nd, sizes, coords, initial_point, make_adapter)
    except Exception:  # pragma: no cover - other nutpie versions
        return None


class Chains:
    """Chains sampling in nutpie's background threads (what :func:`start_chains` returns)."""

    def __init__(self, sampler: Any) -> None:
        self._sampler = sampler

    @property
    def is_finished(self) -> bool:
        """Whether every chain is done (nutpie's extension raises ``TimeoutError`` for "not yet")."""
        try:
            return bool(self._sampler.is_finished())
        except TimeoutError:
            return False

    def wait(self) -> Any:
        """Wait for the chains; returns nutpie's raw (Arrow) trace, as ``nutpie.sample(...,
        return_raw_trace=True)`` does."""
        self._sampler.wait(None)
        return self._sampler.take_results()

    def inspect(self) -> Any:
        """A copy of the trace so far, while the chains run (nutpie's raw Arrow trace, as
        :meth:`wait` returns it; tuning draws included)."""
        return self._sampler.inspect()

    def cancel(self) -> None:
        """Stop the chains and discard their draws."""
        self._sampler.abort()

    def __del__(self) -> None:  # a sampler still running when its handle goes: stop it
        sampler = getattr(self, "_sampler", None)
        if sampler is not None and not sampler.is_empty(ignore_error=True):
            sampler.abort()


def start_chains(model: Any, *, draws: int, tune: int, chains: int, cores: int, seed: int,
                 target_accept: float, progressbar: bool, low_rank: bool = False) -> Chains:
    """Start ``chains`` NUTS chains (nutpie's diagonal mass-matrix adaptation, or its low-rank
    one, its defaults otherwise) on ``model`` from :func:`kernel_model`, in nutpie's background
    threads.

    The settings are the ones ``nutpie.sample(model, draws=, tune=, chains=, cores=, seed=,
    target_accept=, adaptation="diag" | "low_rank")`` builds; a test checks that both give the
    same draws.

    Parameters
    ----------
    model : nutpie ``PyMcModel``
        From :func:`kernel_model`.
    draws, tune, chains : int
        Draws kept and tuning steps per chain; number of chains.
    cores : int
        Chains sampling at once (threads).
    seed : int
        nutpie's seed (chain ``c`` starts at ``initial_point`` of a seed derived from it).
    target_accept : float
        NUTS's target acceptance rate, in (0, 1).
    progressbar : bool
        Show the progress: in the notebook inside a Jupyter kernel, nutpie's terminal bar (on
        stderr) elsewhere (:func:`progress_type`).
    low_rank : bool, default False
        nutpie's low-rank modified mass matrix (a diagonal plus the directions in which the
        draws' and gradients' covariances differ most) instead of the diagonal one.

    Returns
    -------
    Chains

    Examples
    --------
    >>> from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> fam = GaussianFamily(X, 1, "diag", GMMPriors())
    >>> theta0 = fam.theta_from_params({"weights": np.ones(1), "means": np.zeros((1, 2)), "sds": np.ones((1, 2))})
    >>> model = kernel_model(fam, theta0.size, lambda seed: theta0)
    >>> run = start_chains(model, draws=50, tune=50, chains=1, cores=1, seed=1, target_accept=0.8,
    ...                    progressbar=False)
    >>> trace = run.wait()
    >>> run.is_finished
    True
    """
    lib = nutpie_lib()
    settings = lib.PyNutsSettings.LowRank(seed) if low_rank else lib.PyNutsSettings.Diag(seed)
    settings.update({"num_tune": tune, "num_draws": draws, "num_chains": chains, "target_accept": target_accept})
    progress = progress_type(lib, progressbar, cores)
    try:
        sampler = lib.PySampler.from_pymc(settings, cores, model, progress, None, PROGRESS_RATE, lib.PyStorage.arrow())
    except RuntimeError:  # pragma: no cover - nutpie could not compile the notebook template: its terminal bar
        if not (progressbar and in_jupyter()):
            raise
        progress = lib.ProgressType.indicatif(PROGRESS_RATE)
        sampler = lib.PySampler.from_pymc(settings, cores, model, progress, None, PROGRESS_RATE, lib.PyStorage.arrow())
    return Chains(sampler)


#: the progress shown in a notebook (nutpie fills it in: its ``template_callback`` progress type)
PROGRESS_TEMPLATE = """<div style="font-family: sans-serif; font-size: 12px">
<progress max="{{ total_draws }}" value="{{ total_finished_draws }}" style="width: 300px"></progress>
{{ total_finished_draws }} / {{ total_draws }} draws (warm-up included), {{ finished_chains }} of
{{ num_chains }} chains done; elapsed: {{ time_sampling }}, to go: {{ time_remaining_estimate }}
<table style="font-size: 12px">
<tr><th>chain</th><th>draws</th><th>divergences</th><th>step size</th><th>gradients / draw</th></tr>
{% for chain in chains %}<tr><td><progress max="{{ chain.total_draws }}" value="{{ chain.finished_draws }}"></progress></td>
<td>{{ chain.finished_draws }}</td><td>{{ chain.divergences }}</td><td>{{ chain.step_size }}</td>
<td>{{ chain.latest_num_steps }}</td></tr>{% endfor %}
</table></div>"""


def in_jupyter() -> bool:
    """Whether this runs in a Jupyter kernel, where a progress bar belongs in the notebook: ipykernel
    is loaded and IPython's shell is its ZMQ shell (or a subclass; not a terminal IPython).

    Examples
    --------
    >>> in_jupyter()  # a plain interpreter (or pytest)
    False
    """
    if "ipykernel" not in sys.modules:
        return False
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:  # pragma: no cover - a broken IPython
        return False
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


class NotebookProgress:
    """A progress display in the notebook cell, replaced in place by each of nutpie's updates
    (the HTML of :data:`PROGRESS_TEMPLATE`); a display that fails stops updating, never the fit."""

    def __init__(self) -> None:
        from IPython.display import HTML, display

        self._html = HTML
        self._handle = display(HTML("<i>Starting the chains ...</i>"), display_id=True)
        self.failed = False

    def __call__(self, formatted: str) -> None:
        if self.failed:
            return
        try:
            self._handle.update(self._html(formatted))
        except Exception:  # pragma: no cover - e.g. the kernel's display machinery gone
            self.failed = True


def progress_type(lib: Any, progressbar: bool, cores: int) -> Any:
    """nutpie's progress setting: none; in a Jupyter kernel (:func:`in_jupyter`) HTML in the
    notebook through :class:`NotebookProgress`; otherwise nutpie's terminal bar (on stderr). The
    draws do not depend on it."""
    if not progressbar:
        return lib.ProgressType.none()
    if in_jupyter():
        try:
            callback = NotebookProgress()
        except ImportError:  # pragma: no cover - IPython without its display module
            return lib.ProgressType.indicatif(PROGRESS_RATE)
        return lib.ProgressType.template_callback(PROGRESS_RATE, PROGRESS_TEMPLATE, cores, callback)
    return lib.ProgressType.indicatif(PROGRESS_RATE)


__all__ = ["TESTED_NUTPIE", "Chains", "NotebookProgress", "in_jupyter", "installed_version", "is_tested", "kernel_model",
           "nutpie_lib", "progress_type", "start_chains"]
