"""Which observable traits predict the segment: covariates on membership, with honest intervals.

Segment membership follows a multinomial logit on the covariates,
``P(segment c | x) ∝ exp(x' b_c)`` with ``b_1 = 0`` (segment 1, the largest, is the reference
unless another is asked for). Three estimators (docs/methods.md, "Covariates on membership"):

**one-step** -- the covariates enter the mixture itself (latent class / profile regression,
concomitant-variable mixture): the mixing proportions of the EM fit become the multinomial logit
(:func:`latentseg.models._mnlogit.one_step`). Efficient, but the covariates can move the segments.

**BCH** (Bolck, Croon & Hagenaars 2004; Vermunt 2010; Bakk & Kuha 2021) -- from any fitted result:
each respondent's modal segment ``W_i``, the classification error matrix
``D[c, s] = P(W = s | X = c)`` estimated from the posterior memberships (weighted by the survey
weights), and the multinomial logit fitted to the BCH weights ``(D^-1)[W_i, c]`` (rows sum to 1,
entries may be negative); standard errors by the sandwich estimator.

**ML** (Vermunt 2010; Bakk, Tekle & Vermunt 2013) -- from any fitted result: maximise
``sum_i w_i log sum_c p_c(x_i) D[c, W_i]`` over the coefficients with ``D`` held fixed (EM);
standard errors from the observed information (sandwich with survey weights).

The three-step standard errors treat ``D`` as known (as Vermunt 2010 and StepMix do). Outputs:
coefficients and odds ratios per segment against the reference, with standard errors and 95% Wald
intervals, and average marginal effects of each term on every segment's probability (delta-method
intervals).

Rows with a missing covariate are left out of the membership model and listed in
:attr:`CovariateEffects.excluded` (with a warning); nothing is dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, FitError, LatentsegWarning, format_rows
from latentseg.models._mnlogit import (
    CovariateDesign,
    MeasurementModel,
    coefficient_table,
    covariate_design,
    fit_concomitant,
    fit_mnlogit,
    mnlogit_log_probs,
    one_step,
    rereference,
)

__all__ = [
    "COVARIATE_METHODS",
    "CovariateEffects",
    "apply_covariates",
    "check_covariates_config",
    "check_one_step_weights",
    "covariate_effects",
    "covariates_from_config",
    "covariates_json",
    "error_matrix",
    "marginal_effects",
    "reweight_memberships",
]

#: The estimators :func:`covariate_effects` knows.
COVARIATE_METHODS = ("one-step", "bch", "ml")
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class CovariateEffects:
    """Covariate effects on segment membership (see :func:`covariate_effects`).

    Attributes
    ----------
    method : str
        ``"one-step"``, ``"bch"`` or ``"ml"``.
    reference_segment : int
    coefficients : DataFrame
        ``segment, term, estimate, se, lower, upper, odds_ratio, or_lower, or_upper``: log-odds of
        each non-reference segment against the reference, per term (95% Wald intervals).
    marginal_effects : DataFrame
        ``segment, term, estimate, se, lower, upper``: the average marginal effect of each term on
        the probability of every segment (numeric: per unit; a level: the change from the
        reference level), averaged over the respondents (survey-weighted).
    coef : ndarray, shape (m, k - 1)
        Coefficients against segment 1 (all segments in the result's order).
    vcov : ndarray, shape ((k - 1) m, (k - 1) m)
        Their covariance (segment-major).
    terms : tuple of str
    se_method : str
    n : int
        Respondents used.
    excluded : list
        Respondent ids left out for a missing covariate.
    penalised : bool
        A weak ridge prior was used (separation).
    separated : tuple of str
    loglik : float or None
        The estimator's (pseudo) log-likelihood where it has one.
    classification_error : ndarray, shape (k, k), or None
        ``D`` of the three-step methods.
    weighted : bool
    """

    method: str
    reference_segment: int
    coefficients: pd.DataFrame
    marginal_effects: pd.DataFrame
    coef: np.ndarray
    vcov: np.ndarray
    terms: tuple[str, ...]
    se_method: str
    n: int
    excluded: list[Any] = field(default_factory=list)
    penalised: bool = False
    separated: tuple[str, ...] = ()
    loglik: float | None = None
    classification_error: np.ndarray | None = None
    weighted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: ``{"method", "reference_segment", "se_method", "n", "excluded",
        "penalised", "separated", "weighted", "coefficients": [{"segment", "term", "estimate",
        "se", "lower", "upper", "odds_ratio", "or_lower", "or_upper"}, ...],
        "marginal_effects": [{"segment", "term", "estimate", "se", "lower", "upper"}, ...]}``
        (non-finite numbers become null)."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe({
            "method": self.method,
            "reference_segment": self.reference_segment,
            "se_method": self.se_method,
            "n": self.n,
            "excluded": [str(i) for i in self.excluded],
            "penalised": self.penalised,
            "separated": list(self.separated),
            "weighted": self.weighted,
            "coefficients": self.coefficients.to_dict(orient="records"),
            "marginal_effects": self.marginal_effects.to_dict(orient="records"),
        })


def error_matrix(memberships: np.ndarray, sample_weight: Any = None, classification: str = "modal") -> np.ndarray:
    """Classification error matrix ``D[c, s] = P(W = s | X = c)`` with survey weights.

    ``D[c, s] = sum_i w_i p_ic W_is / sum_i w_i p_ic``, ``W`` the modal one-hot classification
    (or the memberships themselves, ``classification="proportional"``).

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
    sample_weight : array-like, shape (n,), optional
    classification : {"modal", "proportional"}

    Returns
    -------
    ndarray, shape (k, k)
        Rows sum to 1.

    Examples
    --------
    >>> error_matrix(np.array([[0.9, 0.1], [0.2, 0.8]])).round(3).tolist()
    [[0.818, 0.182], [0.111, 0.889]]
    """
    z = np.asarray(memberships, dtype=float)
    w = np.ones(z.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    C = _classify(z, classification)
    num = (z * w[:, None]).T @ C
    size = (z * w[:, None]).sum(axis=0)
    if np.any(size <= 0):
        raise FitError(f"Segments {[int(j) + 1 for j in np.flatnonzero(size <= 0)]} have no membership at all.")
    return num / size[:, None]


def reweight_memberships(memberships: np.ndarray, sample_weight: Any, *, max_iter: int = 1000,
                         tol: float = 1e-12) -> np.ndarray:
    """Posterior memberships of an unweighted fit, moved to the survey-weighted segment shares.

    An EM fit's memberships are ``z_ic ∝ pi_c f_c(y_i)`` with ``pi = mean_i z_i`` (the fixed
    point). Under a design where selection depends on the segment the unweighted ``pi`` is biased
    but the within-segment densities ``f_c`` are not; this keeps the ``f_c`` and solves for the
    weighted proportions ``pi_w = sum_i w_i z_i(pi_w) / sum_i w_i`` (EM on the proportions
    alone), returning ``z_i(pi_w)``. The three-step methods use it when they are given weights
    for a result fitted without them (a weighted fit's memberships are used as they are).

    Parameters
    ----------
    memberships : ndarray, shape (n, k)
    sample_weight : array-like, shape (n,)

    Returns
    -------
    ndarray, shape (n, k)

    Examples
    --------
    >>> z = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])
    >>> w = np.array([1.0, 1.0, 3.0, 3.0])
    >>> (w @ reweight_memberships(z, w) / w.sum()).round(4).tolist()  # the weighted shares
    [0.1875, 0.8125]
    """
    z = np.asarray(memberships, dtype=float)
    w = np.asarray(sample_weight, dtype=float)
    pi0 = np.clip(z.mean(axis=0), 1e-300, None)
    pi = (w @ z) / w.sum()
    for _ in range(max_iter):
        zn = z * (pi / pi0)
        zn /= zn.sum(axis=1, keepdims=True)
        new = (w @ zn) / w.sum()
        if np.abs(new - pi).max() < tol:
            pi = new
            break
        pi = new
    zn = z * (pi / pi0)
    return zn / zn.sum(axis=1, keepdims=True)


def _classify(z: np.ndarray, classification: str) -> np.ndarray:
    if classification == "modal":
        C = np.zeros_like(z)
        C[np.arange(z.shape[0]), np.argmax(z, axis=1)] = 1.0
        return C
    if classification == "proportional":
        return z
    raise ConfigError(f"classification must be 'modal' or 'proportional'; got {classification!r}.")


def covariate_effects(
    result: Any,
    covariates: pd.DataFrame,
    method: str = "bch",
    *,
    columns: Sequence[str] | None = None,
    sample_weight: Any = None,
    data: Any = None,
    reference_segment: int = 1,
    classification: str = "modal",
    penalty: str = "auto",
) -> CovariateEffects:
    """Effects of covariates on segment membership, estimated one-step, by BCH or by ML.

    Parameters
    ----------
    result : SegmentationResult
        Any fitted segmentation (BCH, ML); for ``"one-step"`` a ``gmm`` / ``lca`` result, either
        fitted with ``covariates=`` already or refitted here from ``data`` (starting from it, the
        segments keep its numbering).
    covariates : DataFrame
        Indexed by respondent id (or with exactly ``result.n`` rows in the result's order).
    method : {"one-step", "bch", "ml"}, default "bch"
    columns : sequence of str, optional
        The covariate columns (default: all).
    sample_weight : array-like, shape (n,), optional
        Survey weights aligned with the result's respondents; default the result's own
        ``sample_weight`` when it has one.
    data : DataFrame or array-like, optional
        The model input, needed for ``"one-step"`` when ``result`` was fitted without covariates.
    reference_segment : int, default 1
    classification : {"modal", "proportional"}, default "modal"
        The three-step classification.
    penalty : {"auto", "none", "ridge"}, default "auto"
        See :func:`latentseg.models._mnlogit.fit_mnlogit`.

    Returns
    -------
    CovariateEffects

    Raises
    ------
    ConfigError
        Unknown method, a constant or empty covariate column, misaligned rows, a one-step request
        without data.

    Warns
    -----
    SeparationWarning
        A covariate separates a segment (penalised estimate reported).
    LatentsegWarning
        Respondents left out for a missing covariate.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_covariate_mixture
    >>> from latentseg.models.gmm import fit_gmm
    >>> sim = simulate_covariate_mixture(400, 2, random_seed=2)
    >>> res = fit_gmm(sim.data, 2, random_seed=1)
    >>> eff = covariate_effects(res, sim.covariates, "bch")
    >>> eff.coefficients.columns.tolist()[:6]
    ['segment', 'term', 'estimate', 'se', 'lower', 'upper']
    >>> eff.to_dict()["reference_segment"]
    1
    """
    if method not in COVARIATE_METHODS:
        raise ConfigError(f"The covariate method must be one of {', '.join(COVARIATE_METHODS)}; got {method!r}.")
    k = int(result.k)
    if k < 2:
        raise ConfigError("Covariate effects need at least two segments.")
    if isinstance(reference_segment, bool) or not isinstance(reference_segment, (int, np.integer)) \
            or not 1 <= reference_segment <= k:
        raise ConfigError(f"reference_segment must be a segment number 1..{k}; got {reference_segment!r}.")
    w_all = sample_weight if sample_weight is not None else result.sample_weight
    w_all = None if w_all is None else np.asarray(w_all, dtype=float)
    if w_all is not None and w_all.shape != (result.n,):
        raise ConfigError(f"sample_weight must have shape ({result.n},); got {w_all.shape}.")

    if method == "one-step":
        fitted = result
        if result.settings.get("covariates_method") != "one-step":
            if data is None:
                raise ConfigError("The one-step method refits the mixture: pass data= (the model input), or fit with "
                                  "covariates= (--covariates on the command line).")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LatentsegWarning)  # the missing rows are warned about below
                fitted = one_step(result, data, covariates, columns=columns, sample_weight=w_all, penalty=penalty,
                                  canonical=False)
        spec = fitted.settings["covariates"]
        design = covariate_design(covariates, spec["columns"], respondent_ids=fitted.respondent_ids)
        if list(design.terms) != list(spec["terms"]):
            raise ConfigError(
                f"These covariates code as {format_rows(design.terms, 12)}, but the one-step model was fitted on "
                f"{format_rows(spec['terms'], 12)}; pass the covariates it was fitted with."
            )
        ok = design.complete
        _warn_excluded(design)
        coef = np.asarray(fitted.extras["covariate_coef"], dtype=float)
        vcov = np.asarray(fitted.extras["covariate_vcov"], dtype=float)
        d = fitted.diagnostics
        base = dict(se_method=str(d.get("covariates_se", "observed information")), penalised=bool(d.get("covariates_penalised")),
                    separated=tuple(d.get("covariates_separated", ())), loglik=float(fitted.criteria["loglik"]),
                    classification_error=None)
    else:
        design = covariate_design(covariates, columns, respondent_ids=result.respondent_ids)
        ok = design.complete
        _warn_excluded(design)
        z = np.asarray(result.memberships, dtype=float)
        if w_all is not None and result.sample_weight is None:
            z = reweight_memberships(z, w_all)
        z = z[ok]
        w = None if w_all is None else w_all[ok]
        D = error_matrix(z, w, classification)
        C = _classify(z, classification)
        if method == "bch":
            if np.linalg.cond(D) > 1e8:
                raise FitError("The classification error matrix is singular (segments cannot be told apart); "
                               "use method='ml'.")
            Wb = C @ np.linalg.inv(D)
            fit = fit_mnlogit(Wb, design.X[ok], sample_weight=w, terms=design.terms, scale=design.scale,
                              penalty=penalty, se="sandwich")
            coef, vcov = fit.coef, fit.cov
            base = dict(se_method=fit.se_method, penalised=fit.penalised, separated=fit.separated,
                        loglik=None, classification_error=D)
        else:
            logE = C @ np.log(np.clip(D, 1e-15, 1.0)).T  # (n, k): log P(W_i | X = c)
            meas = MeasurementModel(np.zeros(0), lambda t: logE)
            cf = fit_concomitant(meas, design.X[ok], z, sample_weight=w, penalty=penalty,
                                 terms=design.terms, scale=design.scale)
            coef, vcov = cf.coef, cf.coef_cov
            base = dict(se_method=cf.se_method, penalised=cf.penalised, separated=cf.separated,
                        loglik=cf.loglik, classification_error=D)
    X = design.X[ok]
    w = None if w_all is None else w_all[ok]
    order = [reference_segment - 1] + [j for j in range(k) if j != reference_segment - 1]
    c_ref, v_ref = rereference(coef, vcov, order) if reference_segment != 1 else (coef, vcov)
    table = coefficient_table(c_ref, v_ref, design.terms, reference=reference_segment,
                              segments=[j + 1 for j in order[1:]])
    ame = marginal_effects(coef, vcov, design, X, w)
    return CovariateEffects(
        method=method, reference_segment=int(reference_segment), coefficients=table, marginal_effects=ame,
        coef=coef, vcov=vcov, terms=design.terms, n=int(ok.sum()), excluded=list(design.excluded),
        weighted=w is not None, **base,  # type: ignore[arg-type]
    )


def _warn_excluded(design: CovariateDesign) -> None:
    if (~design.complete).any():
        warnings.warn(
            f"{int((~design.complete).sum())} respondent(s) {format_rows(design.excluded)} have a missing covariate "
            f"({', '.join(design.columns)}); they are left out of the covariate model.",
            LatentsegWarning,
            stacklevel=3,
        )


def _ame_vector(coef: np.ndarray, design: CovariateDesign, X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """AMEs of every (segment, term) as one vector, and the (segment, term) labels."""
    m, k1 = coef.shape
    k = k1 + 1
    B = np.concatenate([np.zeros((m, 1)), coef], axis=1)
    P = np.exp(mnlogit_log_probs(X, coef))
    wn = w / w.sum()
    out, labels = [], []
    pos = 1
    for col in design.columns:
        if col in design.levels:
            lv = design.levels[col]
            cols = list(range(pos, pos + len(lv) - 1))
            X0 = X.copy()
            X0[:, cols] = 0.0
            P0 = np.exp(mnlogit_log_probs(X0, coef))
            for j, level in zip(cols, lv[1:]):
                X1 = X0.copy()
                X1[:, j] = 1.0
                diff = wn @ (np.exp(mnlogit_log_probs(X1, coef)) - P0)
                for c in range(k):
                    out.append(diff[c])
                    labels.append((c + 1, f"{col}[{level}]"))
            pos += len(lv) - 1
        else:
            bj = B[pos]
            dp = P * (bj[None, :] - (P @ bj)[:, None])
            eff = wn @ dp
            for c in range(k):
                out.append(eff[c])
                labels.append((c + 1, col))
            pos += 1
    return np.asarray(out), labels


def marginal_effects(
    coef: np.ndarray, vcov: np.ndarray, design: CovariateDesign, X: np.ndarray, sample_weight: Any = None
) -> pd.DataFrame:
    """Average marginal effects on every segment's probability, with delta-method 95% intervals.

    A numeric term: the (weighted) mean over respondents of ``d p_ic / d x``, per unit of the
    covariate. A level of a categorical covariate: the mean change in ``p_ic`` when every
    respondent is moved from the reference level to that level.

    Parameters
    ----------
    coef : ndarray, shape (m, k - 1)
        Against segment 1.
    vcov : ndarray, shape ((k - 1) m, (k - 1) m)
    design : CovariateDesign
    X : ndarray, shape (n, m)
        The complete rows of the design.
    sample_weight : array-like, shape (n,), optional

    Returns
    -------
    DataFrame
        ``segment, term, estimate, se, lower, upper``.

    Examples
    --------
    >>> d = covariate_design(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}))
    >>> t = marginal_effects(np.array([[0.0], [1.0]]), np.eye(2) * 0.01, d, d.X)
    >>> t["segment"].tolist(), bool(abs(t["estimate"].sum()) < 1e-12)
    ([1, 2], True)
    """
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    m, k1 = coef.shape
    est, labels = _ame_vector(coef, design, X, w)
    vec = coef.T.ravel()
    G = np.empty((est.size, vec.size))
    for j in range(vec.size):
        h = 1e-6 * max(1.0, abs(float(vec[j])))
        vp, vm = vec.copy(), vec.copy()
        vp[j] += h
        vm[j] -= h
        G[:, j] = (_ame_vector(vp.reshape(k1, m).T, design, X, w)[0] - _ame_vector(vm.reshape(k1, m).T, design, X, w)[0]) / (2 * h)
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", G, vcov, G), 0, None))
    rows = [(s, t, float(e), float(v), float(e - _Z95 * v), float(e + _Z95 * v)) for (s, t), e, v in zip(labels, est, se)]
    df = pd.DataFrame(rows, columns=["segment", "term", "estimate", "se", "lower", "upper"])
    return df.sort_values(["segment"], kind="stable").reset_index(drop=True)


def apply_covariates(
    result: Any,
    data: Any,
    covariates: pd.DataFrame,
    columns: Sequence[str],
    method: str,
    *,
    sample_weight: Any = None,
) -> tuple[Any, CovariateEffects]:
    """Estimate covariate effects and keep them with the result (what ``fit`` and ``run`` do).

    ``"one-step"`` refits the mixture with the covariates (the returned result is the covariate
    model, in canonical order); ``"bch"`` and ``"ml"`` leave the segmentation as it is. Either
    way the result carries ``extras["covariates"]`` (the coefficient table),
    ``extras["covariate_marginal_effects"]`` and ``settings["covariates_method"]``, so a saved
    model keeps them and :func:`covariates_json` rebuilds the JSON contract.

    Parameters
    ----------
    result : SegmentationResult
    data : DataFrame
        The model input (one-step refits on it).
    covariates : DataFrame
        Indexed by respondent id.
    columns : sequence of str
    method : {"one-step", "bch", "ml"}
    sample_weight : array-like, shape (n,), optional

    Returns
    -------
    (SegmentationResult, CovariateEffects)

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_covariate_mixture
    >>> from latentseg.models.gmm import fit_gmm
    >>> sim = simulate_covariate_mixture(300, 2, random_seed=4)
    >>> res, eff = apply_covariates(fit_gmm(sim.data, 2, random_seed=1), sim.data, sim.covariates, ["age"], "ml")
    >>> covariates_json(res)["method"], len(covariates_json(res)["coefficients"])
    ('ml', 2)
    """
    import dataclasses

    from latentseg.models.families import BAYES_GMM, BAYES_LCA

    bayes = method == "one-step" and result.model in (BAYES_GMM, BAYES_LCA)
    if bayes:  # the Bayesian one-step: posterior credible intervals, kept as the fit made them
        from latentseg.models.bayes.covariates import refit_with_covariates

        result = refit_with_covariates(result, data, covariates, columns, sample_weight)
    elif method == "one-step":
        w = sample_weight if sample_weight is not None else result.sample_weight
        result = one_step(result, data, covariates, columns=columns, sample_weight=w)
    effects = covariate_effects(result, covariates, method, columns=columns, sample_weight=sample_weight)
    if bayes:
        effects = dataclasses.replace(effects, coefficients=result.extras["covariates"])
    settings = {**dict(result.settings), "covariates_method": method,
                "covariates_info": {"reference_segment": effects.reference_segment, "se_method": effects.se_method,
                                    "n": effects.n, "excluded": [str(i) for i in effects.excluded],
                                    "penalised": effects.penalised, "separated": list(effects.separated),
                                    "weighted": effects.weighted,
                                    **({"interval": result.settings["covariates_info"]["interval"]} if bayes else {})}}
    extras = {**dict(result.extras), "covariates": effects.coefficients,
              "covariate_marginal_effects": effects.marginal_effects}
    if not bayes:  # the coefficients with their covariance, so a relabelling can re-express them
        extras.update(covariate_coef=np.asarray(effects.coef, dtype=float), covariate_vcov=np.asarray(effects.vcov, dtype=float))
    return dataclasses.replace(result, settings=settings, extras=extras), effects


def covariates_json(result: Any) -> dict[str, Any] | None:
    """The ``"covariates"`` object of the JSON contract from a result that carries covariate
    effects (:func:`apply_covariates`, or a one-step fit), else ``None``.

    Examples
    --------
    >>> covariates_json(type("R", (), {"settings": {}, "extras": {}})()) is None
    True
    """
    from latentseg.io.jsonsafe import json_safe

    method = result.settings.get("covariates_method")
    table = result.extras.get("covariates")
    if method is None or not isinstance(table, pd.DataFrame):
        return None
    info = dict(result.settings.get("covariates_info", {}))
    ame = result.extras.get("covariate_marginal_effects")
    return json_safe({
        "method": method,
        "reference_segment": int(info.get("reference_segment", 1)),
        **{key: value for key, value in info.items() if key != "reference_segment"},
        "coefficients": table.to_dict(orient="records"),
        "marginal_effects": [] if not isinstance(ame, pd.DataFrame) else ame.to_dict(orient="records"),
    })


def covariates_from_config(result: Any, data: Any, profile: pd.DataFrame, cfg: Any, *,
                           sample_weight: Any = None) -> tuple[Any, CovariateEffects | None]:
    """:func:`apply_covariates` with the columns and method of ``[model] covariates`` /
    ``covariates_method``, the covariates taken from the survey's profile columns; the result
    unchanged and ``None`` when no covariates are configured.

    Raises
    ------
    ConfigError
        A configured covariate that is not a profile column.

    Examples
    --------
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("gmm", np.eye(2), centers=np.eye(2), feature_names=("a", "b"))
    >>> covariates_from_config(r, None, pd.DataFrame(), {"model": {"covariates": []}})[1] is None
    True
    """
    cols = check_covariates_config(cfg, profile, result.model)
    if not cols:
        return result, None
    method = str(cfg["model"].get("covariates_method", "bch"))
    return apply_covariates(result, data, profile, cols, method, sample_weight=sample_weight)


def check_covariates_config(cfg: Any, profile: pd.DataFrame, model: str | None = None, *,
                            weighted: bool = False) -> list[str]:
    """The configured covariate columns, checked before any fitting: each must be a profile
    column, and ``one-step`` needs a ``gmm``, ``lca``, ``bayes-gmm`` or ``bayes-lca`` model (``model``, when known),
    and no survey weights (``weighted``) for the Bayesian two (:func:`check_one_step_weights`).

    Raises
    ------
    ConfigError

    Examples
    --------
    >>> check_covariates_config({"model": {"covariates": ["region"]}}, pd.DataFrame({"region": ["a"]}))
    ['region']
    """
    from latentseg.models.families import BAYES_GMM, BAYES_LCA, GMM, LCA

    cols = [str(c) for c in (cfg.get("model", {}).get("covariates") or [])]
    if not cols:
        return cols
    absent = [c for c in cols if c not in profile.columns]
    if absent:
        have = list(profile.columns)
        raise ConfigError(
            f"Covariate column(s) {format_rows(absent)} are not profile columns of the survey"
            + (f" (it has {format_rows(have, 12)})" if have else " (it has none)")
            + "; name profile columns in [model] covariates / --covariates."
        )
    if cfg["model"].get("covariates_method") == "one-step" and model is not None \
            and model not in (GMM, LCA, BAYES_GMM, BAYES_LCA):
        raise ConfigError(
            f"One-step covariates are available for the '{GMM}', '{LCA}', '{BAYES_GMM}' and '{BAYES_LCA}' models; "
            f"the model is '{model}'. "
            "Use --covariates-method bch or ml."
        )
    check_one_step_weights(cfg, model, weighted)
    return cols


def check_one_step_weights(cfg: Any, model: str | None, weighted: bool) -> None:
    """Refuse, before any fitting, a Bayesian one-step covariate model on a weighted survey (its
    coefficients would carry unadjusted intervals; the fit itself refuses it too, but only after
    the sampling).

    Raises
    ------
    ConfigError

    Examples
    --------
    >>> check_one_step_weights({"model": {"covariates": ["age"], "covariates_method": "one-step"}}, "gmm", True)
    >>> check_one_step_weights({"model": {"covariates": ["age"], "covariates_method": "bch"}}, "bayes-gmm", True)
    """
    from latentseg.models.families import BAYES_GMM, BAYES_LCA

    m = cfg.get("model", {})
    if weighted and m.get("covariates") and m.get("covariates_method") == "one-step" and model in (BAYES_GMM, BAYES_LCA):
        from latentseg.models.bayes.covariates import weighted_refusal

        raise ConfigError(weighted_refusal(model))
