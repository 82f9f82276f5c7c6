"""One-step covariates on membership in the Bayesian mixtures (latent class / profile regression).

``fit_bayes_gmm(..., covariates=)`` and ``fit_bayes_lca(..., covariates=)`` come here. The
mixing proportions become a multinomial logit per respondent,
``p_ic = softmax_c(x_i' b_c)`` with ``b_1 = 0`` (segment 1 the reference), sampled jointly with
the measurement parameters (the family's own priors) by NUTS on a PyMC model: the segment is
marginalised with a log-sum-exp in a ``pm.Potential`` (PyMC's public API; the numba kernels of the
engine are not used). The coefficients are sampled on a standardised scale (numeric covariates
centred and divided by two standard deviations, dummies centred), with Normal(0, 2.5) priors on
the slopes and Normal(0, 5) on the intercept (the log-odds at the average respondent); the draws
are transformed back to the units of the covariates (``docs/priors.md``).

The chains start at the EM one-step fit (:func:`latentseg.models._mnlogit.one_step`, itself
started from the family's usual EM fit), whose segments label the draws: each draw's segments are
matched to the EM segments (the family's location summary, least squares), and its coefficients
are permuted with the segments and re-expressed against the new segment 1 (``b_j - b_1``); the
segments are then numbered largest first by posterior mean share. Estimates are posterior means,
``se`` the posterior sd and ``lower`` / ``upper`` the 95% equal-tailed credible interval of the
relabelled draws.

Survey weights together with covariates are refused (the design-based adjustment of
:mod:`latentseg.models.bayes._survey` is not applied to the coefficients): use the bias-adjusted
three-step estimate (``--covariates-method bch``).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, LatentsegWarning, format_rows
from latentseg.models.families import BAYES_GMM, BAYES_LCA

__all__ = ["SLOPE_SCALE", "INTERCEPT_SCALE", "fit_with_covariates", "refit_with_covariates"]

#: Prior sd of a slope per two standard deviations of a numeric covariate or per unit of a dummy.
SLOPE_SCALE = 2.5
#: Prior sd of the intercept (the log-odds against segment 1 at the average respondent).
INTERCEPT_SCALE = 5.0
_INTERVAL = "95% equal-tailed posterior credible"


def weighted_refusal(model: str) -> str:
    """Why a Bayesian one-step covariate model is refused with survey weights (checked before any
    fitting by :func:`latentseg.decide.covariates.check_covariates_config`).

    Examples
    --------
    >>> weighted_refusal("bayes-gmm").split(":")[0]
    "Covariates on membership (one-step) cannot be combined with survey weights in the 'bayes-gmm' model"
    """
    return (
        f"Covariates on membership (one-step) cannot be combined with survey weights in the '{model}' model: "
        "the design-based adjustment of the weighted pseudo-posterior is not applied to the coefficients, so "
        "their intervals would be too narrow or too wide. Fit with the weights and estimate the covariate effects "
        "by the bias-adjusted three-step method (--covariates-method bch), or pass --no-weights."
    )


def _check(family: Any, s: Any, sample_weight: Any) -> None:
    model = family.model
    if sample_weight is not None:
        raise ConfigError(weighted_refusal(model))
    if family.k < 2:
        raise ConfigError("Covariates on membership need at least two segments.")
    if model == BAYES_GMM and not family.has_kernel:
        raise ConfigError("One-step covariates in the bayes-gmm model are available for covariance 'diag', 'EEI' or "
                          "'auto'; not for 'full'. Use --covariates-method bch or ml.")
    if model == BAYES_LCA and family.ordinal:
        raise ConfigError("One-step covariates in the bayes-lca model are available for the categorical measurement; "
                          "not for 'ordinal'. Use --covariates-method bch or ml.")
    if s.sampler == "advi":
        raise ConfigError("One-step covariates in the Bayesian models need NUTS: sampler 'nutpie', 'pymc' or 'numpyro'.")


def _standardised(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Z, center, scale): the non-intercept columns of X centred and divided by twice their sd
    (dummies: centred only), so ``X b = alpha + Z g`` with ``g = b * scale`` and
    ``alpha = b_0 + center' b``."""
    T = X[:, 1:]
    center = T.mean(axis=0)
    binary = np.all((T == 0) | (T == 1), axis=0)
    scale = np.where(binary, 1.0, 2.0 * T.std(axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    return (T - center) / scale, center, scale


def _to_raw(alpha: np.ndarray, g: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Coefficients in covariate units, (..., m, k-1), from the intercept (..., k-1) and the
    standardised slopes (..., m-1, k-1)."""
    b = g / scale[:, None]
    b0 = alpha - np.einsum("j,...jc->...c", center, b)
    return np.concatenate([b0[..., None, :], b], axis=-2)


def _rereferenced(coef: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Coefficients (S, m, k-1) against old segment 1, for draws whose new segment j is old
    ``perm[s, j]``, against new segment 1 (``b_new_j = b_old_perm[j] - b_old_perm[0]``)."""
    S, m, _ = coef.shape
    full = np.concatenate([np.zeros((S, m, 1)), coef], axis=2)
    new = np.take_along_axis(full, perm[:, None, :], axis=2)
    return new[:, :, 1:] - new[:, :, :1]


def _permute(p: dict[str, np.ndarray], perm: np.ndarray, segment_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = dict(p)
    for key in segment_keys:
        if key in p and p[key].ndim >= 2:
            a = p[key]
            idx = perm.reshape(perm.shape + (1,) * (a.ndim - 2))
            out[key] = np.take_along_axis(a, np.broadcast_to(idx, perm.shape + a.shape[2:]), axis=1)
    return out


def _match(family: Any, p: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
    """Per draw (S,), the permutation (S, k) whose new segment j is the draw's segment perm[s, j],
    the one closest to the reference segment j (least squares on the family's location summary)."""
    from scipy.optimize import linear_sum_assignment

    loc = family.location_summary(p)  # (S, k, ...)
    r = family.location_summary({key: v[None] for key, v in ref.items()})[0]
    S, k = loc.shape[:2]
    a = np.nan_to_num(loc.reshape(S, k, -1))  # latent class: NaN-padded categories
    b = np.nan_to_num(r.reshape(k, -1))
    cost = np.square(a[:, :, None, :] - b[None, None, :, :]).sum(axis=3)  # (S, draw seg, ref seg)
    perm = np.empty((S, k), dtype=int)
    for s in range(S):
        rows, cols = linear_sum_assignment(cost[s])
        perm[s, cols] = rows
    return perm


def fit_with_covariates(family: Any, s: Any, data: Any, covariates: Any, sample_weight: Any = None) -> Any:
    """Fit the family's Bayesian mixture with covariates on membership (see the module notes).

    Parameters
    ----------
    family : GaussianFamily or LatentClassFamily
        Built from the data and settings of ``fit_bayes_gmm`` / ``fit_bayes_lca``.
    s : engine settings
    data : DataFrame or array-like
        The data the family was built from.
    covariates : DataFrame, shape (n, ...)
        Aligned with the rows of the data (by respondent id when its index holds them).
    sample_weight : array-like, optional
        Refused (:class:`ConfigError`): see the module notes.

    Returns
    -------
    SegmentationResult
        The family's model name; memberships, shares and centers from the posterior (95% credible
        share intervals); ``extras["covariates"]`` the coefficient table against segment 1
        (posterior mean, sd, 95% equal-tailed credible interval, odds ratios),
        ``extras["covariate_coef"]`` (m, k-1) posterior means and ``extras["covariate_vcov"]``
        their posterior covariance, ``extras["covariate_draws"]`` (chain, draw, m, k-1);
        ``settings["covariates_method"] = "one-step"``; ``criteria`` at the EM one-step maximum
        (loglik, BIC ...) as the engine reports them at the EM solution.
    """
    import arviz as az
    import pymc as pm
    import pytensor.tensor as pt

    from latentseg.models._mnlogit import INTERCEPT, covariate_design, one_step
    from latentseg.models.bayes.engine import prepare_start

    _check(family, s, sample_weight)
    em0, em_messages, _, sample_seed, g_init = prepare_start(family, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)
        em = one_step(em0, data, covariates)
    design = covariate_design(covariates, em.settings["covariates"]["columns"], respondent_ids=family.respondent_ids)
    if not design.complete.all():
        raise ConfigError(
            f"{int((~design.complete).sum())} respondent(s) {format_rows(design.excluded)} have a missing covariate "
            f"({', '.join(design.columns)}); the Bayesian one-step model needs "
            "every covariate observed: impute or drop them, or use --covariates-method bch."
        )
    X = design.X
    m, k = X.shape[1], family.k
    Z, zc, zs = _standardised(X)
    coef_em = np.asarray(em.extras["covariate_coef"], float)  # (m, k-1), EM canonical order
    start = family.start_params(em)
    g0 = coef_em[1:] * zs[:, None]
    a0 = coef_em[0] + zc @ coef_em[1:]
    coords = {"segment": np.arange(1, k + 1), "term": list(design.terms), "contrast": np.arange(2, k + 1),
              family.feature_dim: list(family.feature_names)}
    with pm.Model(coords=coords) as model:
        comp = family.pymc_components()  # the measurement model, as in the family's own PyMC model
        alpha = pm.Normal("cov_intercept", mu=0.0, sigma=INTERCEPT_SCALE, dims="contrast")
        g = pm.Normal("cov_slopes", mu=0.0, sigma=SLOPE_SCALE, shape=(m - 1, k - 1))
        eta = pt.concatenate([pt.zeros((X.shape[0], 1)), alpha[None, :] + pt.dot(pt.as_tensor(Z), g)], axis=1)
        logpi = eta - pt.logsumexp(eta, axis=1, keepdims=True)
        pm.Deterministic("weights", pt.mean(pt.exp(logpi), axis=0), dims="segment")
        pm.Potential("loglik", pt.sum(pt.logsumexp(comp + logpi, axis=1)))
    inits = []
    for gen in g_init.spawn(s.chains):
        p = family.pymc_initvals(family.jitter_params(start, gen))
        p.pop("weights", None)
        p["cov_intercept"] = a0 + gen.normal(0, 0.05, a0.shape)
        p["cov_slopes"] = g0 + gen.normal(0, 0.05, g0.shape)
        inits.append(p)
    if s.sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model, initial_points=inits[0], jitter_rvs=set())
        idata = nutpie.sample(compiled, draws=s.draws, tune=s.tune, chains=s.chains, cores=min(s.chains, s.cores or s.chains),
                              seed=sample_seed, progress_bar=s.progressbar, target_accept=s.target_accept)
        engine = "nutpie (PyMC model compiled by PyTensor)"
    else:
        kwargs: dict[str, Any] = {}
        if s.sampler == "pymc":
            kwargs.update(target_accept=s.target_accept, init="adapt_diag")
            initvals: Any = inits
        else:
            kwargs["nuts_sampler_kwargs"] = {"target_accept": s.target_accept}
            initvals = inits[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            idata = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, cores=min(s.chains, s.cores or s.chains),
                              random_seed=sample_seed, progressbar=s.progressbar, nuts_sampler=s.sampler,
                              initvals=initvals, model=model, compute_convergence_checks=False, **kwargs)
        engine = f"{s.sampler} NUTS on the PyMC model"
    post = idata["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    p = {key: v.reshape((C * D,) + v.shape[2:]) for key, v in family.params_from_pymc(post).items()}
    coef = _to_raw(np.asarray(post["cov_intercept"].values, float), np.asarray(post["cov_slopes"].values, float), zc, zs)
    coef = coef.reshape((C * D, m, k - 1))

    # relabel: match each draw to the EM one-step segments, then number largest first
    perm = _match(family, p, start)
    p = _permute(p, perm, family.segment_keys)
    coef = _rereferenced(coef, perm)
    order = np.argsort(-p["weights"].mean(axis=0), kind="stable")
    perm2 = np.broadcast_to(order, (C * D, k)).copy()
    p = _permute(p, perm2, family.segment_keys)
    coef = _rereferenced(coef, perm2)

    # memberships: posterior mean of p(c | x_i, y_i) over (up to 1000) evenly thinned draws
    take = np.unique(np.linspace(0, C * D - 1, min(C * D, 1000)).astype(int))
    sub = {key: v[take] for key, v in p.items()}
    logc = family.log_component(sub, slice(None))  # (S, n, k)
    full = np.concatenate([np.zeros((take.size, m, 1)), coef[take]], axis=2)
    eta = np.einsum("nm,smk->snk", X, full)
    lp = logc + eta - np.logaddexp.reduce(eta, axis=2, keepdims=True)
    z = np.exp(lp - np.logaddexp.reduce(lp, axis=2, keepdims=True)).mean(axis=0)

    w = p["weights"]
    shares = w.mean(axis=0)
    lo, hi = np.quantile(w, [0.025, 0.975], axis=0)
    mean_params = {key: v.mean(axis=0) for key, v in p.items()}
    chained = {key: v.reshape((C, D) + v.shape[1:]) for key, v in p.items()}
    params, shared = family.result_params(mean_params, chained)
    centers = np.asarray(family.centers(mean_params), float)

    est = coef.mean(axis=0)
    sd = coef.std(axis=0, ddof=1)
    q_lo, q_hi = np.quantile(coef, [0.025, 0.975], axis=0)
    flat = coef.transpose(0, 2, 1).reshape(C * D, -1)  # segment-major, as the EM vcov
    vcov = np.cov(flat, rowvar=False).reshape(flat.shape[1], flat.shape[1])
    rows = []
    for c in range(k - 1):
        for j, term in enumerate(design.terms):
            e, lo_, hi_ = float(est[j, c]), float(q_lo[j, c]), float(q_hi[j, c])
            rows.append((c + 2, term, e, float(sd[j, c]), lo_, hi_, *np.exp(np.clip([e, lo_, hi_], None, 700)).tolist()))
    table = pd.DataFrame(rows, columns=["segment", "term", "estimate", "se", "lower", "upper",
                                        "odds_ratio", "or_lower", "or_upper"])

    draws_coef = coef.reshape(C, D, m, k - 1)
    rhat = float(np.nanmax(az.rhat(az.convert_to_dataset({"coef": draws_coef}))["coef"].values))
    ess = float(np.nanmin(az.ess(az.convert_to_dataset({"coef": draws_coef}))["coef"].values))
    div = 0
    if "sample_stats" in idata.children if hasattr(idata, "children") else hasattr(idata, "sample_stats"):
        ss = idata["sample_stats"]
        if "diverging" in ss:
            div = int(np.asarray(ss["diverging"].values).sum())
    messages = list(em_messages)
    converged = rhat <= 1.01 and ess >= 400 and div == 0
    if not converged:
        messages.append(f"The covariate model's chains have not converged (coefficients: R-hat {rhat:.3f}, bulk ESS "
                        f"{ess:.0f}, {div} divergences); run more draws.")
    for msg in messages[len(em_messages):]:
        from latentseg.errors import ConvergenceWarning

        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    diagnostics = {
        **{key: v for key, v in em.diagnostics.items() if key.startswith("covariates_")},
        "converged": converged,
        "warnings": messages,
        "approximate": False,
        "engine": engine,
        "covariates_rhat_max": rhat,
        "covariates_ess_bulk_min": ess,
        "divergences": div,
        "covariates_se": "posterior sd",
        "covariates_interval": _INTERVAL,
        "covariates_prior": {"intercept": INTERCEPT_SCALE, "slope": SLOPE_SCALE,
                             "slope_unit": "two standard deviations (numeric) or one unit (dummy)"},
    }
    settings = {**dict(em.settings), **family.settings(), **s.as_dict(), "random_seed": s.random_seed,
                "covariates_method": "one-step",
                "covariates_info": {"reference_segment": 1, "se_method": "posterior sd", "interval": _INTERVAL,
                                    "n": int(X.shape[0]), "excluded": [], "penalised": False, "separated": [],
                                    "weighted": False}}
    settings["covariates"] = design.spec()
    assert INTERCEPT == design.terms[0]
    return dataclasses.replace(
        em,
        model=family.model,
        memberships=z,
        centers=centers,
        shares=shares,
        share_lower=lo,
        share_upper=hi,
        interval_method="95% credible",
        diagnostics=diagnostics,
        settings=settings,
        params=params,
        shared_params=shared,
        extras={**family.extras(p, 0.95), "covariates": table, "covariate_coef": est, "covariate_vcov": vcov,
                "covariate_draws": draws_coef},
    )


def refit_with_covariates(result: Any, data: Any, covariates: pd.DataFrame, columns: Any = None,
                          sample_weight: Any = None) -> Any:
    """Refit a ``bayes-gmm`` / ``bayes-lca`` result with covariates on membership (one step), with
    the settings it was fitted with (what ``--covariates-method one-step`` does for these models).

    The seed is the result's ``settings["random_seed"]`` when it has one, else 0 (same input, same
    draws). ``sample_weight`` (default: the result's own) is refused as in :func:`fit_with_covariates`.
    """
    import inspect

    from latentseg.models.bayes.engine import fit_bayes_gmm, fit_bayes_lca

    fit_fn = fit_bayes_gmm if result.model == BAYES_GMM else fit_bayes_lca
    skip = {"data", "k", "sample_weight", "covariates", "random_seed"}
    kwargs = {name: result.settings[name] for name in inspect.signature(fit_fn).parameters
              if name in result.settings and name not in skip}
    if result.model == BAYES_GMM and "covariance_requested" in result.settings:
        kwargs["covariance"] = result.settings["covariance_requested"]
    w = sample_weight if sample_weight is not None else getattr(result, "sample_weight", None)
    cov = covariates if columns is None else covariates[list(columns)]
    seed = result.settings.get("random_seed")
    return fit_fn(data, result.k, covariates=cov, sample_weight=w, random_seed=0 if seed is None else int(seed), **kwargs)
