"""Survey weights in the Bayesian mixtures: the weighted pseudo-posterior and its design-based adjustment.

A weighted survey is fitted by the **pseudo-posterior** (Savitsky & Toth 2016)::

    p_w(theta | x) ∝ p(theta) prod_n p(x_n | theta) ** w_n

with the weights used as given (the pipeline passes them normalised to mean 1, so they sum to
the number of respondents; an integer weight 2 is the row twice). Its point estimates are
design-consistent, but its spread is not the sampling variance under the design: the weights
make the likelihood look as informative as n simple random draws. Williams & Savitsky (2021,
*Bayesian Analysis* 16(1)) correct the draws after sampling, by an affine map that keeps their
mean and gives them the design-based (sandwich) covariance::

    theta_adj = theta_bar + (theta - theta_bar) R2^{-1} R1,
    R2' R2 = Sigma (the draws' covariance),
    R1' R1 = H^{-1} J H^{-1} (the sandwich),
    J = n / (n - 1) sum_n (w_n s_n - mean)(w_n s_n - mean)'

so the adjusted draws have exactly the sandwich covariance. ``H`` is minus the Hessian of the log
pseudo-posterior at its mode (climbed to from the posterior mean ``theta_bar``), ``s_n`` the
score of respondent n (the gradient of ``log p(x_n | theta)``) there, and ``J`` the design-based
variance of the weighted score total for a
single-stage unequal-probability sample (with-replacement approximation, no strata or clusters:
what ``survey::svyrecvar`` gives for ``ids = ~1``). Everything is done in the samplers'
unconstrained coordinates (the simplex coordinates of the shares, centred means, log sds, item
probability coordinates), where the posterior is closest to normal; the adjusted draws are mapped
back, so shares stay on the simplex. ``docs/methods.md`` ("Survey weights (Bayesian)") says why
this was chosen over the weighted Bayesian bootstrap.

The scores are central finite differences of the per-respondent log-likelihood (the families'
``log_component``) and ``H`` those of the sampler's analytic gradient, so every family with an
unconstrained parameter vector gets the adjustment without hand-written derivatives. Where ``H``
is not positive definite the draws' covariance stands for ``H^{-1}``. (Using the draws'
covariance always, ``Sigma J Sigma``, was tried first: it enters squared, and where the posterior
is not normal it inflated the share intervals, e.g. an sd of 0.060 against a linearisation SE of
0.037 on a k = 3 pilot fit; the Hessian gave 0.040.)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError

__all__ = [
    "METHOD",
    "check_weights",
    "set_weights",
    "em_weight_kwargs",
    "pointwise_loglik",
    "scores",
    "design_adjust",
    "weighted_elpd",
    "weighted_loglik",
]

#: ``interval_method`` of a weighted fit's shares
METHOD = "95% credible, design-adjusted pseudo-posterior (Williams-Savitsky)"
#: ... of a weighted ADVI fit
METHOD_ADVI = "95% approximate (ADVI), design-adjusted pseudo-posterior (Williams-Savitsky)"
#: central finite-difference step of the scores, relative to max(1, |theta_i|)
SCORE_STEP = 1e-5


def check_weights(sample_weight: Any, ids: pd.Index, model: str) -> np.ndarray | None:
    """Validate survey weights: ``None``, or positive finite numbers, one per respondent (a new
    float64 array; used as given, never renormalised). The EM engines' check where it exists
    (``latentseg.models._em.check_sample_weight``), the same rules otherwise.

    Examples
    --------
    >>> check_weights([1, 2.5], pd.RangeIndex(1, 3), "bayes-gmm").tolist()
    [1.0, 2.5]
    >>> try:
    ...     check_weights([1.0, -1.0], pd.Index(["a", "b"]), "bayes-gmm")
    ... except ConfigError as err:
    ...     print(str(err).split(";")[0])
    The bayes-gmm model needs positive, finite sample weights
    """
    from latentseg.models._em import check_sample_weight

    return check_sample_weight(sample_weight, ids, model)


def set_weights(family: Any, sample_weight: Any) -> None:
    """Validate ``sample_weight`` against the family's respondents and attach it (``None``: the
    unweighted model, untouched)."""
    w = check_weights(sample_weight, family.respondent_ids, family.model)
    if w is None:
        return
    if not family.has_kernel:
        raise ConfigError(
            f"sample_weight is not supported by the full-covariance {family.model} (its design-based adjustment "
            "needs the sampler's parameter vector); use covariance='diag' or 'EEI'."
        )
    family.sample_weight = w


def em_weight_kwargs(fit_fn: Any, sample_weight: np.ndarray | None) -> dict[str, Any]:
    """``{"sample_weight": w}`` when the EM engine ``fit_fn`` takes weights (issue 16), else ``{}``:
    the EM solution is then the unweighted one, still a good start and reference labelling (the
    chains move to the weighted posterior), and the likelihood criteria are recomputed with the
    weights at it (:func:`weighted_loglik`)."""
    if sample_weight is None:
        return {}
    try:
        takes = "sample_weight" in inspect.signature(fit_fn).parameters
    except (TypeError, ValueError):
        takes = False
    return {"sample_weight": sample_weight} if takes else {}


def pointwise_loglik(family: Any, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """``log p(x_n | theta_t)`` (T, n), the segment summed out, for constrained draws ``params``
    (T, ...), in blocks of respondents."""
    from scipy.special import logsumexp

    T = params["weights"].shape[0]
    n = family.n
    logw = np.log(np.clip(params["weights"], 1e-300, None))
    out = np.empty((T, n))
    step = family.block_size(T)
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        out[:, rows] = logsumexp(family.log_component(dict(params), rows) + logw[:, None, :], axis=2)
    return out


def scores(family: Any, theta: np.ndarray, step: float = SCORE_STEP) -> np.ndarray:
    """Per-respondent scores (n, nd): the gradient of ``log p(x_n | theta)`` (the likelihood
    only, no prior) in the unconstrained coordinates, by central differences.

    Examples
    --------
    >>> from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
    >>> X = np.random.default_rng(0).normal(size=(20, 2))
    >>> fam = GaussianFamily(X, 1, "diag", GMMPriors())
    >>> theta = fam.theta_from_params({"weights": np.ones(1), "means": np.zeros((1, 2)), "sds": np.ones((1, 2))})
    >>> s = scores(fam, theta)   # d/d mu of log N(x | mu, 1) at mu = 0 is x
    >>> bool(np.allclose(s[:, :2], X, atol=1e-6))
    True
    """
    theta = np.asarray(theta, dtype=float)
    nd = theta.size
    h = step * np.maximum(1.0, np.abs(theta))
    pts = np.concatenate([theta + np.diag(h), theta - np.diag(h)])
    ll = pointwise_loglik(family, family.params_from_theta(pts))
    return ((ll[:nd] - ll[nd:]) / (2.0 * h[:, None])).T


def _sqrt_factor(M: np.ndarray) -> np.ndarray:
    """Upper triangular R with R'R = M (Cholesky), a symmetric square root where M is only
    semi-definite (eigenvalues floored at 1e-12 of the largest)."""
    try:
        return np.linalg.cholesky(M).T
    except np.linalg.LinAlgError:
        val, vec = np.linalg.eigh((M + M.T) / 2)
        val = np.clip(val, 1e-12 * max(val.max(), 1e-300), None)
        return (vec * np.sqrt(val)) @ vec.T


def hessian(family: Any, theta: np.ndarray, step: float = SCORE_STEP) -> np.ndarray:
    """The negative Hessian (nd, nd) of the log pseudo-posterior at ``theta``: central differences
    of the sampler's analytic gradient (the family's kernel, weights included), symmetrised."""
    f = family.kernel()
    theta = np.asarray(theta, dtype=float)
    nd = theta.size
    h = step * np.maximum(1.0, np.abs(theta))
    H = np.empty((nd, nd))
    gp, gm = np.empty(nd), np.empty(nd)
    for i in range(nd):
        e = np.zeros(nd)
        e[i] = h[i]
        f(theta + e, gp)
        f(theta - e, gm)
        H[i] = -(gp - gm) / (2.0 * h[i])
    return (H + H.T) / 2


def _mode(family: Any, theta: np.ndarray) -> np.ndarray:
    """The pseudo-posterior's mode climbed to from ``theta`` (L-BFGS on the kernel), or ``theta``
    when that fails."""
    from scipy.optimize import minimize

    f = family.kernel()
    grad = np.empty(theta.size)

    def neg(t: np.ndarray) -> tuple[float, np.ndarray]:
        val = f(t, grad)
        if not np.isfinite(val):
            return np.inf, np.zeros_like(t)
        return -val, -grad.copy()

    res = minimize(neg, theta, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x if np.isfinite(res.fun) and res.fun <= neg(theta)[0] else theta


def design_adjust(family: Any, params: Mapping[str, np.ndarray], keep: list[int],
                  sample_weight: np.ndarray, curvature: str = "hessian") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The kept chains' draws mapped to the design-based covariance (the module notes).

    Parameters
    ----------
    family
        A Bayesian family with an unconstrained parameter vector (``theta_from_params`` /
        ``params_from_theta``).
    params : dict of ndarray (C, S, ...)
        Relabelled draws of every chain.
    keep : list of int
        The chains summarised (one mode); only they are adjusted.
    sample_weight : ndarray (n,)
    curvature : {"hessian", "draws"}, default "hessian"
        What stands for ``H^{-1}`` in the sandwich: the inverse Hessian at the mode (the draws'
        covariance where it is not positive definite), or the draws' covariance (for studies).

    Returns
    -------
    (params, info)
        The draws with the kept chains adjusted (the others as they were), and a record:
        ``method``, ``effective_n`` (Kish), ``design_effect`` (mean ratio of the adjusted to the
        pseudo-posterior variance over the coordinates), ``share_variance_ratio`` (the same for the
        simplex coordinates of the shares), ``n_params``, ``curvature`` (what stood for
        ``H^{-1}``: ``"hessian"`` or ``"draws"``).
    """
    from latentseg._stats import effective_n

    C, S = params["weights"].shape[:2]
    Ck = len(keep)
    T = Ck * S
    flat = {key: np.asarray(val)[keep].reshape((T,) + val.shape[2:]) for key, val in params.items()}
    theta = np.stack([family.theta_from_params({key: val[t] for key, val in flat.items()}) for t in range(T)])
    nd = theta.shape[1]
    theta_bar = theta.mean(axis=0)
    Sigma = np.atleast_2d(np.cov(theta, rowvar=False))
    w = np.asarray(sample_weight, dtype=float)
    n = w.size
    at, Hi, used = theta_bar, Sigma, "draws"
    if curvature == "hessian":
        at = _mode(family, theta_bar)
        H = hessian(family, at)
        try:
            np.linalg.cholesky(H)
            Hi, used = np.linalg.inv(H), "hessian"
        except np.linalg.LinAlgError:  # not a strict maximum: the draws' covariance stands for H^-1
            at = theta_bar
    u = w[:, None] * scores(family, at)
    u -= u.mean(axis=0)
    J = (n / (n - 1.0)) * (u.T @ u)
    V = Hi @ J @ Hi
    V = (V + V.T) / 2
    R2, R1 = _sqrt_factor(Sigma), _sqrt_factor(V)
    A = np.linalg.solve(R2, R1)
    adj = theta_bar + (theta - theta_bar) @ A
    new = family.params_from_theta(adj.reshape(Ck, S, nd))
    out: dict[str, np.ndarray] = {}
    for key, val in params.items():
        arr = np.array(val, dtype=float, copy=True)
        arr[keep] = new[key]
        out[key] = arr
    ratio = np.diag(V) / np.where(np.diag(Sigma) > 0, np.diag(Sigma), np.nan)
    a = family.k - 1
    info = {
        "method": "weighted pseudo-posterior, draws adjusted to the design-based (sandwich) covariance "
                  "(Williams & Savitsky 2021)",
        "effective_n": float(effective_n(w)),
        "sum_weights": float(w.sum()),
        "design_effect": float(np.nanmean(ratio)),
        "share_variance_ratio": [float(x) for x in ratio[:a]],
        "n_params": int(nd),
        "curvature": used,
    }
    return out, info


def weighted_elpd(w_res: Mapping[str, Any], l_res: Mapping[str, Any],
                  sample_weight: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """WAIC and PSIS-LOO results with every respondent's term multiplied by its weight: the
    Horvitz-Thompson estimate of the population's expected log predictive density, on the
    sample's scale (weights of mean 1). Totals, p terms and SEs from the weighted pointwise
    terms; Pareto k's are the respondents' own (unweighted) values. The unweighted pointwise
    terms are kept under ``pointwise_unweighted``."""
    w = np.asarray(sample_weight, dtype=float)
    n = w.size

    def se(x: np.ndarray) -> float:
        return float(np.sqrt(n * x.var())) if n > 1 else float("nan")

    ww = dict(w_res)
    pw = w * np.asarray(w_res["pointwise"], dtype=float)
    p_i = np.asarray(w_res["p_pointwise"], dtype=float)
    lppd_i = np.asarray(w_res["pointwise"], dtype=float) + p_i
    ww.update(elpd_waic=float(pw.sum()), se=se(pw), p_waic=float((w * p_i).sum()), lppd=float((w * lppd_i).sum()),
              pointwise=pw, pointwise_unweighted=np.asarray(w_res["pointwise"], dtype=float))
    lw = dict(l_res)
    pl = w * np.asarray(l_res["pointwise"], dtype=float)
    p_loo_i = lppd_i - np.asarray(l_res["pointwise"], dtype=float)
    lw.update(elpd_loo=float(pl.sum()), se=se(pl), p_loo=float((w * p_loo_i).sum()), pointwise=pl,
              pointwise_unweighted=np.asarray(l_res["pointwise"], dtype=float))
    return ww, lw


def weighted_loglik(family: Any, start: Mapping[str, np.ndarray], sample_weight: np.ndarray) -> float:
    """The pseudo-log-likelihood ``sum_n w_n log p(x_n)`` at constrained parameters ``start`` (the
    EM solution)."""
    p = {key: np.asarray(val, dtype=float)[None] for key, val in start.items()}
    return float(pointwise_loglik(family, p)[0] @ np.asarray(sample_weight, dtype=float))


def weighted_start(family: Any, em: Any) -> dict[str, np.ndarray]:
    """The chains' start and reference labelling of a weighted fit: the EM solution when the EM
    engine fitted the weights (its result carries ``sample_weight``), else the mode of the
    pseudo-posterior climbed to from the unweighted EM solution (L-BFGS on the sampler's log
    density and gradient). Starting the chains at the unweighted solution leaves them far from
    the weighted posterior when the weights change the shares a lot (seen: k = 3 chains that never
    found it in 500 tuning steps). Computed once per EM result."""
    from scipy.optimize import minimize

    cached = getattr(family, "_weighted_start", None)
    if cached is not None and cached[0] is em:
        return cached[1]
    start = family.start_params(em)
    if getattr(em, "sample_weight", None) is None:
        f = family.kernel()
        grad = np.empty(family.theta_from_params(start).size)

        def neg(theta: np.ndarray) -> tuple[float, np.ndarray]:
            val = f(theta, grad)
            if not np.isfinite(val):
                return np.inf, np.zeros_like(theta)
            return -val, -grad.copy()

        theta0 = family.theta_from_params(start)
        res = minimize(neg, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
        if np.isfinite(res.fun) and res.fun <= neg(theta0)[0]:
            p = family.params_from_theta(res.x[None])
            start = {key: np.asarray(val[0]) for key, val in p.items()}
    family._weighted_start = (em, start)
    return start
