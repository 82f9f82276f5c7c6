"""WAIC and PSIS-LOO on the per-respondent marginal log-likelihood, and the comparison across k.

The pointwise log-likelihood of a mixture is per respondent, with the segment summed out:
``log p(x_n | theta_s) = logsumexp_j (log w_j + log p(x_n | segment j))``. It does not depend on
the labels, so neither do WAIC and LOO.

Both are reported on the log scale (expected log predictive density, **higher is better**):
``criteria["waic"]`` is ``elpd_waic`` and ``criteria["loo"]`` is ``elpd_loo``; multiply by -2 for
the deviance scale that some software prints.

WAIC (Watanabe 2010, as in Vehtari, Gelman & Gabry 2017), computed here because ArviZ 1.x no
longer provides it, from the S x n matrix ``ll[s, n]``::

    lppd_n      = log( (1/S) sum_s exp(ll[s, n]) )
    p_waic_n    = Var_s(ll[s, n])            (sample variance, divisor S - 1)
    elpd_waic_n = lppd_n - p_waic_n
    elpd_waic   = sum_n elpd_waic_n,   SE = sqrt(n * Var_n(elpd_waic_n))

PSIS-LOO (Pareto-smoothed importance sampling, Vehtari et al. 2017, 2024) is ArviZ's definition,
that of :func:`arviz.loo` with its Pareto-k diagnostics, computed vectorised over the respondents
by :mod:`latentseg.models.bayes._psis` (tested equal to ArviZ's to ~1e-14 in ``tests/test_psis.py``;
ArviZ loops over the respondents in Python and costs more to import than to run).

:func:`compare_k`'s table is :func:`arviz.compare`'s (stacking weights), computed without ArviZ by
:mod:`latentseg.models.bayes._compare` (tested equal to ``az.compare`` in ``tests/test_bayes_loo.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError
from latentseg.models.bayes._compare import COMPARE_COLUMNS
from latentseg.models.families import BAYES_GMM

__all__ = ["waic", "loo", "compare_k", "elpd_data", "WAIC_P_WARN", "ARVIZ_COMPARE_COLUMNS", "COMPARE_K_COLUMNS"]

#: a respondent whose p_waic term exceeds this makes WAIC unreliable (the loo package's rule)
WAIC_P_WARN = 0.4


def _logmeanexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``log(mean(exp(a)))`` along ``axis``, by :func:`scipy.special.logsumexp`."""
    from scipy.special import logsumexp

    return logsumexp(a, axis=axis) - math.log(a.shape[axis])


def waic(loglik: np.ndarray) -> dict[str, Any]:
    """WAIC from a pointwise log-likelihood matrix.

    Parameters
    ----------
    loglik : ndarray, shape (S, n) or (C, S, n)
        Log-likelihood of each respondent under each posterior draw (chains are pooled).

    Returns
    -------
    dict
        ``elpd_waic, se, p_waic, lppd`` (floats), ``pointwise`` (n,) elpd_waic terms,
        ``p_pointwise`` (n,), ``n_high_p`` (respondents with a p_waic term above 0.4) and
        ``warning`` (bool: any such respondent).

    Examples
    --------
    >>> ll = np.log(np.array([[0.5, 0.2], [0.3, 0.2]]))  # 2 draws, 2 respondents
    >>> r = waic(ll)
    >>> round(r["lppd"], 4)  # log(0.4) + log(0.2)
    -2.5257
    """
    ll = np.asarray(loglik)
    if ll.ndim == 3:
        ll = ll.reshape(-1, ll.shape[-1])
    if ll.ndim != 2 or ll.shape[0] < 2:
        raise ConfigError(f"waic needs a (draws, respondents) matrix with at least 2 draws; got shape {ll.shape}.")
    n = ll.shape[1]
    lppd_i = np.empty(n)
    p_i = np.empty(n)
    step = max(1, 2_000_000 // ll.shape[0])  # float64 in blocks of respondents (a float32 matrix stays one)
    for a in range(0, n, step):
        block = np.asarray(ll[:, a : a + step], dtype=float)
        lppd_i[a : a + step] = _logmeanexp(block, axis=0)
        p_i[a : a + step] = block.var(axis=0, ddof=1)
    elpd_i = lppd_i - p_i
    n_high = int((p_i > WAIC_P_WARN).sum())
    return {
        "elpd_waic": float(elpd_i.sum()),
        "se": float(math.sqrt(n * elpd_i.var())) if n > 1 else float("nan"),
        "p_waic": float(p_i.sum()),
        "lppd": float(lppd_i.sum()),
        "pointwise": elpd_i,
        "p_pointwise": p_i,
        "n_high_p": n_high,
        "warning": n_high > 0,
    }


def loo(loglik: np.ndarray, posterior: Any | None = None) -> dict[str, Any]:
    """PSIS-LOO as :func:`arviz.loo` computes it (:func:`latentseg.models.bayes._psis.psis_loo`).

    Parameters
    ----------
    loglik : ndarray, shape (C, S, n)
        float64, or float32 (large surveys; computed in float64 block by block).
    posterior : xarray.Dataset, optional
        The posterior draws (chain, draw, ...); they give the relative efficiency (``reff``, the
        mean relative ESS, as ArviZ computes it), which sets PSIS's tail length. Without them
        ``reff = 1`` (independent draws).

    Returns
    -------
    dict
        ``elpd_loo, se, p_loo`` (floats), ``pointwise`` (n,), ``pareto_k`` (n,),
        ``k_threshold`` (ArviZ's sample-size dependent threshold, at most 0.7), ``n_bad_k``
        (respondents above it) and ``warning`` (ArviZ's flag: any Pareto k above the
        threshold). Where PSIS cannot fit a tail (fewer than 5 tail draws, or a respondent whose
        tail draws are all equal: where ArviZ raises ``ValueError``), truncated importance
        sampling instead, with ``method`` saying so.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.normal(0.0, 0.1, (2, 300))  # 2 chains of draws of a normal mean
    >>> y = rng.normal(size=40)
    >>> r = loo(-0.5 * np.log(2 * np.pi) - 0.5 * (y - mu[..., None]) ** 2)
    >>> r["pointwise"].shape, r["n_bad_k"], r["warning"]
    ((40,), 0, False)
    """
    from latentseg.models.bayes._psis import PSISError, psis_loo

    ll = np.asarray(loglik)
    if ll.dtype not in (np.float32, np.float64):  # a float32 log-likelihood (large surveys) stays float32
        ll = ll.astype(float)
    if ll.ndim != 3:
        raise ConfigError(f"loo needs a (chains, draws, respondents) array; got shape {ll.shape}.")
    try:
        res = psis_loo(ll, reff=_reff(posterior, ll.shape[0] * ll.shape[1]))
    except PSISError as exc:  # where arviz.loo raises ValueError: too few draws, or chains that did not move
        return _tis_loo(ll, reason=str(exc))
    pk = res["pareto_k"]
    thr = res["good_k"]
    return {
        "elpd_loo": res["elpd"],
        "se": res["se"],
        "p_loo": res["p"],
        "pointwise": res["elpd_i"],
        "pareto_k": pk,
        "k_threshold": thr,
        "n_bad_k": int((pk > thr).sum()),
        "warning": res["warning"],
    }


def _reff(posterior: Any | None, n_samples: int) -> float:
    """ArviZ's relative efficiency for PSIS-LOO: the mean ESS of the means of every posterior
    parameter over the number of draws (1 with one chain or no posterior), computed as ArviZ's
    ``_get_r_eff`` does but vectorised (:func:`latentseg.models.bayes._diagnostics.ess_mean`)."""
    if posterior is None or posterior.sizes.get("chain", 1) == 1:
        return 1.0
    from latentseg.models.bayes._diagnostics import ess_mean

    vals = [np.ravel(ess_mean(np.asarray(posterior[v].values, dtype=float))) for v in posterior.data_vars]
    with np.errstate(all="ignore"):
        return float(np.hstack(vals).mean() / n_samples)


def _tis_loo(ll: np.ndarray, reason: str) -> dict[str, Any]:
    """Truncated importance-sampling LOO (Ionides 2008), used when PSIS cannot fit its tail.

    Weights ``1 / p(y_i | theta_s)`` are truncated at ``mean(w) * sqrt(S)``; there is no Pareto k,
    so every respondent is reported as unreliable and ``warning`` is set, with the reason.
    """
    from scipy.special import logsumexp

    S = ll.shape[0] * ll.shape[1]
    flat = ll.reshape(S, -1)
    log_w = -flat - np.max(-flat, axis=0)
    w = np.exp(log_w)
    w = np.minimum(w, w.mean(axis=0) * np.sqrt(S))
    log_wn = np.log(w) - np.log(w.sum(axis=0))
    elpd_i = logsumexp(log_wn + flat, axis=0)
    lppd = float(_logmeanexp(flat, axis=0).sum())
    n = flat.shape[1]
    return {
        "elpd_loo": float(elpd_i.sum()),
        "se": float(np.sqrt(n * np.var(elpd_i))),
        "p_loo": float(lppd - elpd_i.sum()),
        "pointwise": elpd_i,
        "pareto_k": np.full(n, np.nan),
        "k_threshold": 0.7,
        "n_bad_k": n,
        "warning": True,
        "method": f"truncated importance sampling (PSIS failed: {reason})",
    }


def _degenerate(diag: Mapping[str, Any]) -> str:
    """One line naming a fit's empty, diffuse and duplicated segments ("" when there are none)."""
    parts = []
    for key, label in (("empty_segments", "empty"), ("diffuse_segments", "diffuse"), ("duplicated_segments", "duplicated")):
        val = diag.get(key) or []
        if val:
            parts.append(f"{label} {', '.join(str(tuple(v)) if isinstance(v, list) else str(v) for v in val)}")
    return "; ".join(parts)


def _loo_samples(result: Any) -> int:
    """Chains x draws the fit's PSIS-LOO was computed from: those of its stored log-likelihood (or
    posterior), which may hold more than ``draws`` per chain (chains the convergence rule extended)
    or fewer (a thinned log-likelihood at large N); the settings' ``draws x chains`` without one."""
    tree = getattr(result, "posterior", None)
    for group in ("log_likelihood", "posterior"):
        try:
            sizes = tree[group].sizes
            return int(sizes["chain"]) * int(sizes["draw"])
        except (TypeError, KeyError, AttributeError):
            continue
    settings = result.settings or {}
    return int(settings.get("draws", 0)) * int(settings.get("chains", 0))


def elpd_data(result: Any) -> Any:
    """A fit's PSIS-LOO as ArviZ's ``ELPDDataLOO`` (what :func:`arviz.loo` returned when the fit
    was summarised, rebuilt from the stored pointwise values), for :func:`arviz.compare`."""
    import arviz as az
    import xarray as xr

    c, d = result.criteria, result.diagnostics
    pointwise = np.asarray(result.extras["elpd_loo_pointwise"], dtype=float)
    pareto_k = np.asarray(result.extras.get("pareto_k", np.full(pointwise.size, np.nan)), dtype=float)
    return az.ELPDDataLOO(
        elpd=float(c["loo"]), se=float(c["loo_se"]), p=float(c["p_loo"]),
        n_samples=_loo_samples(result), n_data_points=int(pointwise.size),
        scale="log", warning=bool(d.get("pareto_k_bad", 0)), good_k=float(d.get("pareto_k_threshold", 0.7)),
        elpd_i=xr.DataArray(pointwise, dims=["respondent"]), pareto_k=xr.DataArray(pareto_k, dims=["respondent"]),
    )


def _arviz_compare(results: Sequence[Any], names: Sequence[str]) -> pd.DataFrame:
    """:func:`arviz.compare`'s table of the fits (stacking weights, numbers not rounded), from their
    stored PSIS-LOO, indexed by ``names`` and ordered best first, as ArviZ returns it for
    :func:`elpd_data` of each, but computed without ArviZ
    (:func:`latentseg.models.bayes._compare.compare_elpd`, tested equal to ``az.compare``)."""
    from latentseg.models.bayes._compare import compare_elpd

    pointwise = [np.asarray(r.extras["elpd_loo_pointwise"], dtype=float) for r in results]
    return compare_elpd(
        names,
        pointwise,
        elpd=[float(r.criteria["loo"]) for r in results],
        se=[float(r.criteria["loo_se"]) for r in results],
        p=[float(r.criteria["p_loo"]) for r in results],
        pareto_k=[np.asarray(r.extras.get("pareto_k", np.full(e.size, np.nan)), dtype=float)
                  for r, e in zip(results, pointwise)],
        good_k=[float(r.diagnostics.get("pareto_k_threshold", 0.7)) for r in results],
    )


def _structure(result: Any) -> str:
    """The fitted structure: mclust name of a Gaussian mixture's covariance, a latent class model's
    measurement ("" when the settings do not say)."""
    st = getattr(result, "settings", None) or {}
    if result.model == BAYES_GMM:
        from latentseg.models.bayes.gmm import COVARIANCES

        return COVARIANCES.get(str(st.get("covariance")), "")
    return str(st.get("measurement", ""))


def _model_names(ks: Sequence[int], structures: Sequence[str]) -> list[str]:
    """The table's index: ``"k=2"``, with the structure where the fits have several
    (``"k=2 (VVI)"``), and ``" #2"``, ``" #3"`` ... on repeats."""
    several = len(set(structures)) > 1
    base = [f"k={k}" + (f" ({st})" if several and st else "") for k, st in zip(ks, structures)]
    seen: dict[str, int] = {}
    names = []
    for name in base:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return names


#: the columns :func:`arviz.compare` returns (ArviZ 1.x), in its order: :func:`compare_k` starts with them
ARVIZ_COMPARE_COLUMNS = COMPARE_COLUMNS
#: :func:`compare_k`'s own columns, after ArviZ's
COMPARE_K_COLUMNS = ("k", "structure", "n_params", "converged", "elpd_waic", "waic_se", "p_waic", "n_bad_pareto_k",
                     "degenerate_segments", "rule_elpd_diff", "rule_dse", "within_rule", "recommended")


def compare_k(results: Sequence[Any], se_rule: float = 2.0, small_diff: float = 4.0) -> pd.DataFrame:
    """Compare Bayesian fits with different k by PSIS-LOO, as :func:`arviz.compare` does, with a
    parsimony rule.

    LOO barely penalises superfluous, nearly empty segments, so the recommendation is the
    **smallest converged k whose elpd_loo is within ``se_rule`` standard errors of the best
    converged fit**, the standard error being that of the pointwise difference (ArviZ's ``dse``).
    A difference below ``small_diff`` (4 on the elpd scale) also counts as within: below that the
    normal approximation behind the standard error is unreliable and the models predict alike
    (Sivula, Magnusson & Vehtari 2022; the LOO CV-FAQ), which is the case of a k + 1 fit whose
    extra segment is nearly empty. Fits that did not converge are listed but not recommended (when
    none converged, all are considered and the table says so).

    Fits of one k with different structures (e.g. ``covariance="diag"`` and ``"EEI"``) are
    compared the same way: among the fits within the rule, the smallest k is recommended, and of
    its fits the one with the highest elpd_loo. (Not the fewest parameters: where segments
    overlap strongly LOO often cannot tell equal spreads from unequal ones, and EEI's intervals
    are far too narrow when the spreads differ; ``docs/priors.md``.)

    Parameters
    ----------
    results : sequence of SegmentationResult
        Bayesian fits (``bayes-gmm`` / ``bayes-lca``) of the same data.
    se_rule : float, default 2.0
    small_diff : float, default 4.0

    Returns
    -------
    DataFrame, one row per fit
        Shaped as :func:`arviz.compare` returns it, so that ``az.plot_compare(table)`` draws it:
        indexed by model name (``"k=2"``; ``"k=2 (VVI)"`` where the fits have several structures),
        ordered best first, with ArviZ's columns (:data:`ARVIZ_COMPARE_COLUMNS`, the very numbers
        ``az.compare`` gives with ``method="stacking"``, not rounded, computed without importing
        ArviZ by :func:`latentseg.models.bayes._compare.compare_elpd`): ``rank`` (0 is the best),
        ``elpd_diff`` (this fit minus the best, <= 0), ``dse`` (its SE), ``p_worse``,
        ``diag_diff``, ``diag_elpd``, ``p`` (p_loo), ``elpd`` (elpd_loo), ``se`` and ``weight``
        (stacking: how a predictive average would weigh the fits, not a probability that k is
        right). Then latentseg's (:data:`COMPARE_K_COLUMNS`): ``k``, ``structure`` (``VVI`` /
        ``EEI`` / ``VVV`` for bayes-gmm, the measurement for bayes-lca), ``n_params``,
        ``converged``, ``elpd_waic, waic_se, p_waic``, ``n_bad_pareto_k``,
        ``degenerate_segments`` (the fit's empty, diffuse and duplicated segments, as text: how
        an overfitted k shows), ``rule_elpd_diff`` and ``rule_dse`` (the difference to the best
        converged fit, the rule's reference, and its SE: ``elpd_diff`` and ``dse`` whenever the
        best fit converged), ``within_rule`` and ``recommended``.
        ``attrs["recommended_k"]``, ``attrs["recommended"]`` (its row's name) and
        ``attrs["rule"]`` (a sentence) say what was chosen and why.

    Raises
    ------
    ConfigError
        Fits of different data, non-Bayesian fits, or an empty list.

    Examples
    --------
    The table of two fits whose stored LOO differs (``fits`` from
    :func:`~latentseg.models.bayes.engine.fit_sweep` in practice):

    >>> from latentseg.result import SegmentationResult
    >>> def fake(k, elpd_i):
    ...     return SegmentationResult.from_memberships(
    ...         "bayes-gmm", np.full((elpd_i.size, k), 1 / k), centers=np.zeros((k, 1)), feature_names=("x",),
    ...         criteria={"loo": elpd_i.sum(), "loo_se": 1.0, "p_loo": 2.0 * k},
    ...         diagnostics={"converged": True}, provenance={"data_hash": "h"}, extras={"elpd_loo_pointwise": elpd_i})
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(-2.0, 0.5, 200)
    >>> table = compare_k([fake(2, base - rng.uniform(0, 0.2, 200)), fake(3, base)])
    >>> table.index.tolist(), table["rank"].tolist(), table.attrs["recommended_k"]
    (['k=3', 'k=2'], [0, 1], 3)
    >>> list(table.columns[:10]) == list(ARVIZ_COMPARE_COLUMNS)
    True
    """
    if not results:
        raise ConfigError("compare_k needs at least one fitted result.")
    if float(se_rule) < 0:
        raise ConfigError(f"se_rule must be 0 or more; got {se_rule}.")
    hashes = {r.provenance.get("data_hash") for r in results}
    if len(hashes) > 1:
        raise ConfigError("compare_k needs fits of the same data; the results have different data hashes.")
    rows = []
    pointwise = []
    for r in results:
        if not str(r.model).startswith("bayes") or "elpd_loo_pointwise" not in r.extras:
            raise ConfigError(
                f"compare_k needs Bayesian fits (bayes-gmm, bayes-lca) with pointwise LOO; got model {r.model!r}."
            )
        c = r.criteria
        rows.append(
            {
                "k": r.k,
                "structure": _structure(r),
                "n_params": c.get("n_params"),
                "converged": bool(r.converged),
                "elpd_waic": c.get("waic"),
                "waic_se": c.get("waic_se"),
                "p_waic": c.get("p_waic"),
                "n_bad_pareto_k": r.diagnostics.get("pareto_k_bad", 0),
                "degenerate_segments": _degenerate(r.diagnostics),
            }
        )
        pointwise.append(np.asarray(r.extras["elpd_loo_pointwise"], dtype=float))
    ours = pd.DataFrame(rows)
    if len({p.size for p in pointwise}) > 1:
        raise ConfigError("compare_k needs fits of the same respondents; the fits have different n.")
    names = _model_names(ours["k"].tolist(), ours["structure"].tolist())
    ours.index = pd.Index(names)
    elpd = np.array([float(r.criteria.get("loo", np.nan)) for r in results])
    finite = np.isfinite(elpd)  # a respondent with a non-finite log-likelihood makes elpd_loo NaN
    eligible = ours["converged"].to_numpy() & finite
    # a fit stopped in its warm-up holds warm-up draws, not a posterior sample: never a candidate
    # while another fit can be (engine.WARMUP_WINDOW)
    posterior = ~np.array([bool(((getattr(r, "diagnostics", None) or {}).get("convergence") or {})
                                .get("stopped_in_warmup")) for r in results])
    note = ""
    if not eligible.any():
        fallback = finite & posterior
        eligible = fallback if fallback.any() else (finite if finite.any() else np.ones(len(ours), dtype=bool))
        note = (" No fit converged, so all were compared; treat the choice as provisional." if not ours["converged"].any()
                else " No converged fit has a finite elpd_loo, so all were compared; treat the choice as provisional.")
    best = int(np.flatnonzero(eligible)[np.argmax(elpd[eligible])])
    diff = elpd[best] - elpd
    diff_se = np.array([float(np.sqrt(p.size * np.var(pointwise[best] - p))) for p in pointwise])
    within = eligible & (diff <= np.maximum(se_rule * diff_se, small_diff))
    ours["rule_elpd_diff"] = elpd - elpd[best]
    ours["rule_dse"] = diff_se
    ours["within_rule"] = within
    candidates = np.flatnonzero(within) if within.any() else np.array([best])  # no finite elpd_loo at all
    # parsimony in k; between structures of that k, the better predictive fit
    chosen_pos = int(min(candidates, key=lambda i: (ours["k"].iloc[i], -elpd[i])))
    ours["recommended"] = np.arange(len(ours)) == chosen_pos
    k_chosen = int(ours["k"].iloc[chosen_pos])
    several = ours["structure"].nunique() > 1

    def name(i: int) -> str:
        return f"k = {int(ours['k'].iloc[i])}" + (f" ({ours['structure'].iloc[i]})" if several else "")

    if chosen_pos == best:
        rule = (
            f"{name(best)} has the highest elpd_loo ({elpd[best]:.1f}) and no simpler fit is within {se_rule:g} SE "
            f"(or {small_diff:g}) of it."
        )
    else:
        rule = (
            f"{name(chosen_pos)} is the smallest k whose elpd_loo is within "
            f"{se_rule:g} SE (or {small_diff:g}) of the best ({name(best)}: difference {diff[chosen_pos]:.1f}, "
            f"SE {diff_se[chosen_pos]:.1f}); LOO barely penalises extra segments."
        )
    table = _arviz_compare(results, names).join(ours[list(COMPARE_K_COLUMNS)])
    table.attrs["recommended_k"] = k_chosen
    table.attrs["recommended"] = names[chosen_pos]
    table.attrs["rule"] = rule + note
    return table
