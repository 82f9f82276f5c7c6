"""Bayesian results read by ArviZ as they are: the posterior tree's groups (``posterior``,
``sample_stats``, ``log_likelihood``, ``observed_data``) with consistent dims; ``az.summary``,
``az.loo`` and ``az.plot_trace`` on ``result.idata``; ``compare_k``'s table shaped as
``az.compare``'s, drawn by ``az.plot_compare``; the progress display inside a Jupyter kernel.

Small fits (100 respondents, 150 draws and tuning steps, 2 chains): the checks are about shapes
and plumbing, not convergence. Every sampler route (pymc, numpyro, ADVI ...) builds the same tree;
tests/test_bayes_samplers.py checks its groups on each of them.
"""

from __future__ import annotations

import re

import sys
import types
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from latentseg.errors import LatentsegWarning
from latentseg.models.bayes import _nutpie
from latentseg.models.bayes._loo import ARVIZ_COMPARE_COLUMNS, COMPARE_K_COLUMNS
from latentseg.models.bayes.engine import compare_k, fit_bayes_gmm, fit_bayes_lca, fit_sweep
from latentseg.research.simulate import simulate_categorical, simulate_gaussian_mixture

matplotlib.use("Agg")  # no window, whatever the environment says

SMALL = {"draws": 150, "tune": 150, "chains": 2, "cores": 1, "random_seed": 2}
_MCMC = pytest.mark.xdist_group("bayes")


def _quiet(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)  # few draws: R-hat above 1.01
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def gaussian() -> pd.DataFrame:
    X, _ = simulate_gaussian_mixture(100, k=2, d=3, separation=4.0, random_seed=1)
    X.index = pd.Index([f"r{i:03d}" for i in range(len(X))], name="respondent_id")
    X.iloc[3, 1] = np.nan  # a missing value: kept as NaN in observed_data
    return X


@pytest.fixture(scope="module")
def sweep(gaussian: pd.DataFrame) -> list[object]:
    return _quiet(fit_sweep, gaussian, [1, 2], **SMALL)


def _figure(pc: object) -> object:
    fig = pc.viz["figure"]  # type: ignore[attr-defined]
    return fig.item() if hasattr(fig, "item") else fig


@_MCMC
def test_the_tree_has_arviz_groups_with_consistent_dims(sweep: list[object], gaussian: pd.DataFrame) -> None:
    r = sweep[1]
    tree = r.idata  # type: ignore[attr-defined]
    assert tree is r.posterior  # type: ignore[attr-defined]  # the old name keeps working
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(tree.children)
    post, stats = tree["posterior"], tree["sample_stats"]
    ll, obs = tree["log_likelihood"], tree["observed_data"]
    # the chains were extended (2 x 150 draws cannot have a bulk ESS of 400) and are stored thinned
    # back to 150 draws, or to 300, 600 ... when the rule does not hold on 150 (docs/priors.md)
    conv = r.diagnostics["convergence"]  # type: ignore[attr-defined]
    S = post.sizes["draw"]
    assert S in (150, 300, 600, 1200, conv["draws_per_chain"]) and conv["thinned_by"] == round(
        conv["draws_per_chain"] / S, 2)
    assert dict(post["weights"].sizes) == {"chain": 2, "draw": S, "segment": 2}
    for group in (stats, ll):
        np.testing.assert_array_equal(group["chain"].values, post["chain"].values)
        np.testing.assert_array_equal(group["draw"].values, post["draw"].values)
    assert stats["diverging"].dtype == bool and set(stats.data_vars) >= {"diverging", "energy", "tree_depth"}
    assert ll["loglik"].dims == ("chain", "draw", "respondent")
    # observed_data: the data the model was fitted on, by the log-likelihood's respondent
    assert obs["x"].dims == ("respondent", "outcome")
    np.testing.assert_array_equal(obs["respondent"].values, ll["respondent"].values)
    assert obs["respondent"].values.tolist() == gaussian.index.tolist()
    assert obs["outcome"].values.tolist() == list(gaussian.columns) == post["outcome"].values.tolist()
    np.testing.assert_array_equal(obs["x"].values, gaussian.to_numpy())  # NaN where missing


@_MCMC
def test_latent_class_observed_data_is_the_category_codes() -> None:
    df, _, _ = simulate_categorical(100, k=2, n_items=4, n_categories=3, separation=0.9, random_seed=5)
    df.iloc[0, 2] = None
    r = _quiet(fit_bayes_lca, df, 2, **SMALL)
    tree = r.idata
    obs, ll = tree["observed_data"], tree["log_likelihood"]
    assert obs["responses"].dims == ("respondent", "indicator")
    np.testing.assert_array_equal(obs["respondent"].values, ll["respondent"].values)
    assert obs["indicator"].values.tolist() == list(df.columns)
    codes = obs["responses"].values
    assert codes[0, 2] == -1 and codes.dtype.kind == "i"
    cats = r.extras["categories"]
    for j, item in enumerate(df.columns):  # each code is the category extras["categories"] names
        labels = cats[cats["item"] == item].set_index("code")["category"]
        seen = codes[:, j] >= 0
        decoded = labels.reindex(codes[seen, j]).to_numpy()
        assert decoded.tolist() == df.loc[seen, item].astype(str).tolist()


@_MCMC
def test_large_fits_drop_the_log_likelihood_and_observed_data_together(gaussian: pd.DataFrame) -> None:
    r = _quiet(fit_bayes_gmm, gaussian, 2, keep_log_likelihood=False, **SMALL)
    assert set(r.idata.children) == {"posterior", "sample_stats"}
    assert np.isfinite(r.criteria["loo"])  # the fit's own LOO does not need them


@_MCMC
def test_az_summary_loo_and_plot_trace_take_the_tree(sweep: list[object]) -> None:
    import arviz as az
    import matplotlib.pyplot as plt

    r = sweep[1]
    summary = az.summary(r.idata)  # type: ignore[attr-defined]
    assert {"weights[1]", "weights[2]", "means[1, x1]"} <= set(summary.index)
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(summary.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a Pareto-k warning at 300 draws
        res = az.loo(r.idata)  # type: ignore[attr-defined]
    assert res.elpd == pytest.approx(r.criteria["loo"], rel=1e-6)  # type: ignore[attr-defined]
    try:
        fig = _figure(az.plot_trace(r.idata, backend="matplotlib"))  # type: ignore[attr-defined]
        assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) >= 6
    finally:
        plt.close("all")


@_MCMC
def test_compare_k_is_shaped_as_az_compare_and_plot_compare_draws_it(sweep: list[object]) -> None:
    import arviz as az
    import matplotlib.pyplot as plt

    table = compare_k(sweep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.compare({f"k={f.k}": f.idata for f in sweep}, round_to="none")  # type: ignore[attr-defined]
    assert list(ref.columns) == list(ARVIZ_COMPARE_COLUMNS)  # ArviZ's own columns, as pinned here
    assert list(table.columns) == list(ARVIZ_COMPARE_COLUMNS) + list(COMPARE_K_COLUMNS)
    assert table.index.tolist() == ref.index.tolist() == ["k=2", "k=1"]
    for col in ("rank", "elpd_diff", "dse", "p", "elpd", "se", "weight"):
        np.testing.assert_allclose(table[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-6, atol=1e-9)
    assert table["k"].tolist() == [2, 1] and table.attrs["recommended_k"] in (1, 2)
    try:
        fig = _figure(az.plot_compare(table, backend="matplotlib"))
        labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]  # type: ignore[attr-defined]
        assert labels == ["k=2", "k=1"]
    finally:
        plt.close("all")


# ------------------------------------------------------------------ progress inside Jupyter
class ZMQInteractiveShell:  # the name ipykernel's shell has
    pass


class TerminalInteractiveShell:
    pass


def _fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: object, kernel: bool = True) -> None:
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    if kernel:
        monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    else:
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)


@pytest.mark.parametrize(
    "shell,kernel,expected",
    [
        (ZMQInteractiveShell(), True, True),
        (type("Colab", (ZMQInteractiveShell,), {})(), True, True),  # a subclass of the ZMQ shell
        (TerminalInteractiveShell(), True, False),  # terminal IPython
        (None, True, False),  # ipykernel imported, but no shell running
        (ZMQInteractiveShell(), False, False),  # no kernel
    ],
)
def test_in_jupyter_detects_a_kernel_shell(monkeypatch: pytest.MonkeyPatch, shell: object, kernel: bool,
                                          expected: bool) -> None:
    _fake_ipython(monkeypatch, shell, kernel)
    assert _nutpie.in_jupyter() is expected


def test_in_jupyter_without_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setitem(sys.modules, "IPython", None)  # not importable
    assert _nutpie.in_jupyter() is False


class _Recorder:
    """Stands in for NotebookProgress: records the HTML nutpie renders."""

    made: list[_Recorder] = []

    def __init__(self) -> None:
        self.html: list[str] = []
        _Recorder.made.append(self)

    def __call__(self, formatted: str) -> None:
        self.html.append(formatted)


def test_progress_type_picks_the_notebook_only_in_jupyter(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []
    lib = types.SimpleNamespace(ProgressType=types.SimpleNamespace(
        none=lambda: calls.append(("none",)) or "none",
        indicatif=lambda rate: calls.append(("indicatif", rate)) or "terminal",
        template_callback=lambda rate, template, cores, cb: calls.append(("html", rate, cores, cb)) or "notebook",
    ))
    monkeypatch.setattr(_nutpie, "NotebookProgress", _Recorder)
    _fake_ipython(monkeypatch, TerminalInteractiveShell())
    assert _nutpie.progress_type(lib, True, 2) == "terminal"  # outside Jupyter: as before
    assert _nutpie.progress_type(lib, False, 2) == "none"
    _fake_ipython(monkeypatch, ZMQInteractiveShell())
    assert _nutpie.progress_type(lib, False, 2) == "none"
    assert _nutpie.progress_type(lib, True, 2) == "notebook"
    assert isinstance(calls[-1][3], _Recorder) and calls[-1][2] == 2


@_MCMC
def test_notebook_progress_renders_and_leaves_the_draws_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a (fake) Jupyter kernel nutpie renders our template through the callback; the draws are
    the same as without a progress bar."""
    from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors

    X = np.random.default_rng(0).normal(size=(50, 2))
    fam = GaussianFamily(X, 1, "diag", GMMPriors())
    theta0 = fam.theta_from_params({"weights": np.ones(1), "means": np.zeros((1, 2)), "sds": np.ones((1, 2))})
    model = _nutpie.kernel_model(fam, theta0.size, lambda seed: theta0)
    if model is None:
        pytest.skip("nutpie's extension route is not available")

    def draws(progressbar: bool) -> np.ndarray:
        run = _nutpie.start_chains(model, draws=100, tune=100, chains=2, cores=1, seed=3, target_accept=0.8,
                                   progressbar=progressbar)
        import pyarrow as pa

        batches, _ = run.wait().get_arrow_trace()
        return np.concatenate([pa.array(b.column("theta")).flatten().to_numpy(zero_copy_only=False) for b in batches])

    plain = draws(False)
    _Recorder.made.clear()
    monkeypatch.setattr(_nutpie, "NotebookProgress", _Recorder)
    _fake_ipython(monkeypatch, ZMQInteractiveShell())
    shown = draws(True)
    np.testing.assert_array_equal(shown, plain)
    (rec,) = _Recorder.made
    # nutpie renders on a timer (and once at the start), so how far the last render got depends on the
    # machine's load (a loaded CI machine showed only the first, "0 / 400"); the template and its total are
    # what is ours to check
    assert rec.html and all("<progress" in h for h in rec.html)
    assert re.search(r"\b\d+ / 400 draws", rec.html[-1])
