"""The table :func:`arviz.compare` returns, from fits' stored PSIS-LOO, without importing ArviZ.

:func:`compare_elpd` gives what ``az.compare(..., method="stacking", round_to="none")`` (ArviZ 1.x,
``arviz_stats.loo.compare``) returns for precomputed, non-subsampled PSIS-LOO results: the same
columns, dtypes, row order and numbers. Importing ArviZ, xarray and ``scipy.stats`` costs more than
a whole comparison (about 1.1 s of import and 0.7 s of first-call set-up on a 2-core machine), so
the k sweep's :func:`~latentseg.models.bayes._loo.compare_k` uses this instead. It is tested equal
to ``az.compare`` (``tests/test_bayes_loo.py``): every column exactly, the stacking weights to
1e-9 (the same optimisation, so in practice to the last bit).

What ArviZ computes, for models ``m`` with pointwise elpd ``e[m, i]`` (i = 1..n):

- the rows are sorted by ``elpd`` (the stored ``elpd_loo``), highest first, as ``pandas`` sorts
  them (``sort_values(ascending=False)``; ties keep ArviZ's order); ``rank`` is the position;
- ``elpd_diff = sum_i (e[m, i] - e[best, i])`` over the finite differences, and
  ``dse = sqrt(n' * var(those differences))`` (divisor n'); 0 and 0 for the best row (where no
  difference is finite, ``elpd_m - elpd_best`` and ``sqrt(se_m^2 + se_best^2)``);
- ``p_worse = Phi(-elpd_diff / (dse + 1e-12))``, NaN where ``elpd_diff == 0``;
- ``diag_diff``: ``"N < 100"`` for n < 100 (where ``elpd_diff != 0``), otherwise
  ``"|elpd_diff| < 4"`` where ``0 < |elpd_diff| < 4``; ``diag_elpd``: ``"K k̂ > 0.70"`` where
  K > 0 Pareto k values exceed the model's threshold;
- ``weight``: stacking (Yao, Vehtari, Simpson & Gelman 2018), the weights ``w`` on the simplex
  maximising ``sum_i log(sum_m w_m exp(e[m, i]))``, found as ArviZ finds them: SLSQP
  (:func:`scipy.optimize.minimize` with bounds [0, 1], the sum-to-one constraint, the analytic
  gradient) from equal weights.

ArviZ's check for selection bias among more than 11 models only warns (compare_k silences it), so
it is left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["compare_elpd", "stacking_weights", "COMPARE_COLUMNS"]

#: the columns :func:`arviz.compare` returns (ArviZ 1.x), in its order
COMPARE_COLUMNS = ("rank", "elpd_diff", "dse", "p_worse", "diag_diff", "diag_elpd", "p", "elpd", "se", "weight")


def stacking_weights(elpd_i: np.ndarray) -> np.ndarray:
    """Stacking weights of models from their pointwise elpd, as :func:`arviz.compare` computes them.

    Parameters
    ----------
    elpd_i : ndarray, shape (n, M)
        Pointwise elpd (log scale) of M models at n observations, one column per model.

    Returns
    -------
    ndarray, shape (M,)
        The weights (on the simplex, up to SLSQP's tolerance) maximising
        ``sum_i log(sum_m w_m exp(elpd_i[i, m]))``, by SLSQP from equal weights as ArviZ does.

    Examples
    --------
    >>> e = np.log(np.array([[0.5, 0.1], [0.5, 0.1], [0.1, 0.6]]))  # model 2 predicts point 3 only
    >>> w = stacking_weights(e)  # maximises 2 log(0.1 + 0.4 w1) + log(0.6 - 0.5 w1): w1 = 43/60
    >>> bool(abs(w[0] - 43 / 60) < 1e-3), bool(abs(w.sum() - 1) < 1e-9)  # SLSQP's default tolerance
    (True, True)
    """
    from scipy.optimize import Bounds, LinearConstraint, minimize

    ic = np.asarray(elpd_i, dtype=float)
    cols = ic.shape[1]
    exp_ic_i = np.exp(ic)

    def log_score(weights: np.ndarray) -> float:
        return -np.sum(np.log(np.dot(exp_ic_i, weights)))

    def gradient(weights: np.ndarray) -> np.ndarray:
        denominator = np.dot(exp_ic_i, weights)
        return -np.sum(exp_ic_i / denominator[:, np.newaxis], axis=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's optimisation warns as it likes; the weights are what it returns
        res = minimize(
            fun=log_score,
            x0=np.full(cols, 1.0 / cols),
            jac=gradient,
            bounds=Bounds(lb=np.zeros(cols), ub=np.ones(cols)),
            constraints=LinearConstraint(np.ones(cols), lb=1.0, ub=1.0),
        )
    return np.asarray(res["x"])


def _pairwise_diff(a: np.ndarray, b: np.ndarray, elpd: tuple[float, float], se: tuple[float, float]) -> tuple[float, float]:
    """elpd_diff and its SE of model a against model b, as ArviZ's ``_compute_elpd_diff_subsampled``
    (without subsampling) computes them."""
    diff = (a - b).reshape(-1)
    valid = diff[np.isfinite(diff)]
    if valid.size == 0:  # ArviZ's naive difference
        return elpd[0] - elpd[1], np.sqrt(se[0] ** 2 + se[1] ** 2)
    return np.nansum(valid), np.sqrt(valid.size * np.nanvar(valid))


def compare_elpd(
    names: Sequence[str],
    elpd_i: Sequence[np.ndarray],
    elpd: Sequence[float],
    se: Sequence[float],
    p: Sequence[float],
    pareto_k: Sequence[np.ndarray | None] | None = None,
    good_k: Sequence[float | None] | None = None,
) -> pd.DataFrame:
    """``arviz.compare(..., method="stacking", round_to="none")`` on precomputed PSIS-LOO results.

    Parameters
    ----------
    names : sequence of str, length M
        The models' names (the table's index), unique.
    elpd_i : sequence of M ndarrays, each shape (n,)
        Pointwise elpd of each model (ArviZ's ``elpd_i``).
    elpd, se, p : sequences of M floats
        Each model's elpd_loo, its standard error and p_loo (ArviZ's ``elpd``, ``se``, ``p``).
    pareto_k : sequence of M ndarrays (n,) or None, optional
        Pointwise Pareto k (``diag_elpd`` counts those above ``good_k``); None: no count.
    good_k : sequence of M floats or None, optional
        Each model's Pareto k threshold (ArviZ's ``good_k``).

    Returns
    -------
    DataFrame, M rows
        Indexed by ``names``, best first, with :data:`COMPARE_COLUMNS` (``rank`` int64,
        ``diag_diff`` and ``diag_elpd`` pandas ``string``, the others float64), the numbers
        ``az.compare`` returns (module docstring).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = rng.normal(-2.0, 0.5, 150)
    >>> b = a - rng.uniform(0.0, 0.1, 150)  # b predicts every point a little worse
    >>> t = compare_elpd(["a", "b"], [a, b], [a.sum(), b.sum()], [3.0, 3.0], [2.0, 3.0])
    >>> t.index.tolist(), t["rank"].tolist(), t["weight"].round(6).tolist()
    (['a', 'b'], [0, 1], [1.0, 0.0])
    >>> bool(t.loc["b", "elpd_diff"] == (b - a).sum())
    True
    """
    from scipy.special import ndtr

    m = len(names)
    pts = [np.asarray(e, dtype=float).reshape(-1) for e in elpd_i]
    if len({e.size for e in pts}) > 1:
        raise ValueError("All models must have the same number of observations.")
    pks = list(pareto_k) if pareto_k is not None else [None] * m
    gks = list(good_k) if good_k is not None else [None] * m
    # ArviZ's order: pandas' descending sort of elpd (its sort, so that ties come out as ArviZ's do)
    order = pd.Series(np.asarray(elpd, dtype=float), index=pd.Index(names)).sort_values(ascending=False)
    pos = {name: i for i, name in enumerate(names)}
    sorted_pos = [pos[name] for name in order.index]
    weights = stacking_weights(np.column_stack([pts[i] for i in sorted_pos]))
    ref = sorted_pos[0]
    cols: dict[str, list] = {c: [] for c in COMPARE_COLUMNS}
    for rank, i in enumerate(sorted_pos):
        if i == ref:
            d_ic, d_se = 0.0, 0.0
        else:
            d_ic, d_se = _pairwise_diff(pts[i], pts[ref], (elpd[i], elpd[ref]), (se[i], se[ref]))
        prob = np.nan if d_ic == 0.0 else ndtr(np.asarray((0 - d_ic) / (d_se + 1e-12), dtype=float))
        if pts[i].size < 100:
            diag_diff = "N < 100" if d_ic != 0 else ""
        else:
            diag_diff = "|elpd_diff| < 4" if abs(d_ic) > 0 and abs(d_ic) < 4 else ""
        diag_elpd = ""
        if pks[i] is not None and gks[i] is not None:
            n_k_exceed = int(np.sum(np.asarray(pks[i]) > gks[i]))
            if n_k_exceed > 0:
                diag_elpd = f"{n_k_exceed} k̂ > {gks[i]:.2f}"
        for col, val in zip(COMPARE_COLUMNS, (rank, d_ic, d_se, prob, diag_diff, diag_elpd, p[i], elpd[i], se[i], weights[rank])):
            cols[col].append(val)
    index = pd.Index([names[i] for i in sorted_pos])
    return pd.DataFrame(
        {
            col: pd.Series(vals, index=index, dtype="int64" if col == "rank" else "string" if col.startswith("diag") else "float64")
            for col, vals in cols.items()
        }
    )
