"""examples/tutorial.ipynb: executed end to end (nbclient, a kernel on this interpreter, the
notebook's folder as working directory), kept in git without outputs, and written by
examples/make_tutorial.py byte for byte."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")
pytest.importorskip("ipykernel", reason="the test extra installs ipykernel")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOK = EXAMPLES / "tutorial.ipynb"
CELL_TIMEOUT = 180  # seconds per cell; the whole notebook runs in ~10 s on two cores
KERNEL = "latentseg-tests"


def _read() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def _kernel_manager(kernels: Path):
    """A kernel manager that starts ipykernel on this very interpreter (the test's venv), from a
    kernelspec in a temporary folder: no user-level kernelspec is needed or consulted."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = kernels / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "latentseg tests",
        "language": "python",
        "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1"},  # quiet debugpy's frozen-modules notice
    }))
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, float]:
    nb = _read()
    km = _kernel_manager(tmp_path_factory.mktemp("kernels"))
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=120,
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    t = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first error
    return nb, time.perf_counter() - t


def test_notebook_runs_without_errors(executed) -> None:
    nb, seconds = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [(c.id, o.get("ename"), o.get("evalue")) for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert seconds < 120, f"the tutorial took {seconds:.0f} s; keep it under a minute"


def test_notebook_shows_the_segment_map_as_html_and_draws_figures(executed) -> None:
    nb, _ = executed
    cells = {c.id: c for c in nb.cells}
    seg_map = [o for o in cells["segment-map"].outputs if o.output_type == "execute_result"]
    assert seg_map and "text/html" in seg_map[0].data
    assert "<table" in seg_map[0].data["text/html"]
    figures = [c.id for c in nb.cells if c.cell_type == "code"
               for o in c.outputs if "image/png" in o.get("data", {})]
    # landscape, selection, comparison, 2x2, heatmap, shares
    assert {"landscape-plot", "select-plot", "compare-plot", "map-plot", "heatmap", "shares"} <= set(figures)
    for cell_id in ("clean", "select", "fit", "compare"):  # the rich displays of the notebook API
        assert any("text/html" in o.get("data", {}) for o in cells[cell_id].outputs), cell_id
    predicted = cells["predict"].outputs[0].data["text/plain"]
    assert "respondent_id" in predicted and "segment" in predicted


def test_committed_notebook_is_stripped() -> None:
    nb = _read()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert all(c.metadata == {} for c in nb.cells)
    assert set(nb.metadata) <= {"kernelspec", "language_info"}


def test_make_tutorial_writes_the_committed_notebook(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_tutorial", EXAMPLES / "make_tutorial.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    assert (tmp_path / "tutorial.ipynb").read_bytes() == NOTEBOOK.read_bytes(), "rerun examples/make_tutorial.py"
