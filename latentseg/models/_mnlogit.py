"""Covariates on segment membership: a weighted multinomial logit for (fractional) memberships,
and the concomitant-variable EM that puts it inside a mixture (latent class regression).

The membership model: respondent ``i`` with covariates ``x_i`` (an intercept first, then the
dummy-coded / numeric terms, ``m`` columns) belongs to segment ``c`` with probability

    ``p_ic = exp(x_i' b_c) / sum_l exp(x_i' b_l)``,  ``b_1 = 0`` (segment 1 is the reference),

so the free coefficients form an ``(m, k - 1)`` matrix. The pieces:

- :func:`covariate_design` validates a table of covariates and codes it (categorical columns
  dummy-coded against their most frequent level, terms named ``region[EU]``); rows with a missing
  covariate are listed, never dropped silently;
- :func:`fit_mnlogit` fits the coefficients to an ``(n, k)`` matrix of memberships (0/1,
  posterior probabilities, or BCH weights that may be negative) with optional survey weights, by
  Newton's method on the weighted log-likelihood ``sum_i w_i sum_c z_ic log p_ic``;
  standard errors from the observed information, or the sandwich (linearisation) estimator with
  survey weights or BCH weights. A covariate that perfectly separates a segment (a coefficient
  running off to infinity) is detected, warned about (:class:`SeparationWarning`) and estimated
  with a weak ridge prior instead (Gaussian, scale 2.5 per two standard deviations of a numeric
  covariate or per unit of a dummy, as Gelman et al. 2008 scale their weakly informative prior;
  the intercept is never penalised);
- :func:`fit_concomitant` runs EM for a mixture whose mixing proportions follow the multinomial
  logit (one-step estimation), given any measurement model (:class:`MeasurementModel`), and
  returns the coefficients with standard errors from the observed information of all parameters
  (measurement and membership together, so the measurement uncertainty is in the intervals);
- :func:`one_step` refits a Gaussian mixture or latent class result with covariates.

Examples
--------
>>> import pandas as pd
>>> cov = pd.DataFrame({"age": [20.0, 35, 50, 65, 30, 45], "region": list("aabbab")})
>>> d = covariate_design(cov)
>>> d.terms
('(intercept)', 'age', 'region[b]')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, LatentsegWarning, format_rows

__all__ = [
    "SeparationWarning",
    "CovariateDesign",
    "covariate_design",
    "MNLogitFit",
    "fit_mnlogit",
    "mnlogit_log_probs",
    "MeasurementModel",
    "ConcomitantFit",
    "fit_concomitant",
    "coefficient_table",
    "one_step",
    "INTERCEPT",
    "code_covariates",
    "PRIOR_SCALE",
    "SEPARATION_LIMIT",
]

#: The name of the intercept term.
INTERCEPT = "(intercept)"
#: Scale of the weak ridge (Gaussian) prior used when separation is detected, per two standard
#: deviations of a numeric covariate or per unit of a dummy (Gelman et al. 2008's 2.5).
PRIOR_SCALE = 2.5
#: A coefficient is taken to be running off to infinity (separation) when its effect over two
#: standard deviations (a numeric covariate) or one unit (a dummy) exceeds this many logits (an
#: odds ratio beyond e^10 ~ 22,000), or when Newton's method does not converge.
SEPARATION_LIMIT = 10.0

_Z95 = 1.959963984540054


class SeparationWarning(LatentsegWarning):
    """A covariate perfectly (or quasi-perfectly) separates a segment: its maximum-likelihood
    coefficient is infinite, so a penalised (weak ridge prior) estimate is reported instead."""


# ======================================================================= the design
@dataclass(frozen=True)
class CovariateDesign:
    """Covariates coded for the membership model.

    Attributes
    ----------
    X : ndarray, shape (n, m)
        The intercept, then one column per numeric covariate and one dummy per non-reference
        level of each categorical covariate. Rows with a missing covariate are all NaN.
    terms : tuple of str, length m
        ``"(intercept)"``, the numeric column names and ``"column[level]"`` dummies.
    columns : tuple of str
        The covariate columns, in order.
    levels : dict
        For each categorical column, its levels (reference first, as strings).
    complete : ndarray of bool, shape (n,)
        Rows with every covariate observed (the rows the membership model uses).
    respondent_ids : pandas.Index, length n
    scale : ndarray, shape (m,)
        Two standard deviations of each numeric term, 1 for dummies and the intercept: the unit
        of the ridge prior and of the separation check.
    """

    X: np.ndarray
    terms: tuple[str, ...]
    columns: tuple[str, ...]
    levels: Mapping[str, tuple[str, ...]]
    complete: np.ndarray
    respondent_ids: pd.Index
    scale: np.ndarray

    @property
    def excluded(self) -> pd.Index:
        """Respondent ids with a missing covariate (left out of the membership model)."""
        return self.respondent_ids[~self.complete]

    @property
    def m(self) -> int:
        """Number of terms (the intercept included)."""
        return len(self.terms)

    def spec(self) -> dict[str, Any]:
        """A JSON-safe description from which :meth:`transform` can be rebuilt."""
        return {"columns": list(self.columns), "levels": {c: list(v) for c, v in self.levels.items()},
                "terms": list(self.terms)}

    def transform(self, covariates: pd.DataFrame) -> np.ndarray:
        """Code new covariates as at fit time, shape (n_new, m); a level not seen at fit time
        is a :class:`ConfigError` naming the column and rows."""
        return code_covariates(covariates, self.columns, self.levels)[0]


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def covariate_design(
    covariates: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    respondent_ids: Sequence[Any] | pd.Index | None = None,
    source: str = "the covariates",
) -> CovariateDesign:
    """Validate covariates and code them for the membership model.

    Numeric columns enter as they are; every other column (text, categorical, boolean) is
    dummy-coded against its most frequent level (ties: the first in sorted order), one term
    ``"column[level]"`` per other level.

    Parameters
    ----------
    covariates : DataFrame, shape (n, ...)
        One row per respondent.
    columns : sequence of str, optional
        The columns to use (default: all).
    respondent_ids : sequence, length n_resp, optional
        Align the rows to these ids: the covariates' index must hold every id (or, when it does
        not, the table must have exactly ``n_resp`` rows, taken in order).
    source : str
        Names the table in messages (e.g. the file).

    Returns
    -------
    CovariateDesign

    Raises
    ------
    ConfigError
        A named column that does not exist, a column with no observed value or with one value
        only (constant), rows that cannot be aligned with the respondents.

    Examples
    --------
    >>> cov = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "g": ["u", "v", "v", "w"]})
    >>> d = covariate_design(cov)
    >>> d.terms, d.levels["g"], d.excluded.tolist()
    (('(intercept)', 'x', 'g[u]', 'g[w]'), ('v', 'u', 'w'), [2])
    """
    if not isinstance(covariates, pd.DataFrame):
        covariates = pd.DataFrame(covariates)
    cols = [str(c) for c in covariates.columns] if columns is None else [str(c) for c in columns]
    covariates = covariates.rename(columns=str)
    absent = [c for c in cols if c not in covariates.columns]
    if absent:
        raise ConfigError(
            f"Covariate column(s) {format_rows(absent)} are not in {source}; it has {format_rows(list(covariates.columns), 12)}."
        )
    if not cols:
        raise ConfigError("No covariate columns were given.")
    frame = covariates[cols]
    if respondent_ids is not None:
        ids = pd.Index(respondent_ids)
        if frame.index.equals(ids):
            pass
        elif ids.isin(frame.index).all() and frame.index.is_unique:
            frame = frame.reindex(ids)
        elif len(frame) == len(ids):
            frame = frame.set_axis(ids)
        else:
            raise ConfigError(
                f"The covariates in {source} have {len(frame)} rows and their index does not hold every respondent "
                f"id; {len(ids)} respondents were segmented."
            )
    ids = pd.Index(frame.index)
    levels: dict[str, tuple[str, ...]] = {}
    for c in cols:
        s = frame[c]
        vals = s.to_numpy(dtype=object)
        obs = vals[~pd.isna(vals)]
        if obs.size == 0:
            raise ConfigError(f"Covariate column '{c}' in {source} has no observed value; drop it.")
        if _is_categorical(s):
            uniq, counts = np.unique(obs.astype(str), return_counts=True)
            levels[c] = tuple(str(u) for _, u in sorted(zip(-counts, uniq)))
            distinct = len(uniq)
        else:
            distinct = np.unique(obs.astype(float)).size
        if distinct < 2:
            raise ConfigError(
                f"Covariate column '{c}' in {source} is constant (every respondent with a value has "
                f"{obs[0]!r}); it cannot predict membership: drop it."
            )
    X, terms, scale = code_covariates(frame, tuple(cols), levels)
    complete = ~np.isnan(X).any(axis=1)
    X[~complete] = np.nan
    return CovariateDesign(X=X, terms=terms, columns=tuple(cols), levels=levels, complete=complete,
                           respondent_ids=ids, scale=scale)


def code_covariates(
    frame: pd.DataFrame, columns: Sequence[str], levels: Mapping[str, Sequence[str]]
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """The design matrix of covariate ``columns`` of ``frame``: an intercept, numeric columns as
    they are, and one dummy per non-reference level of the columns in ``levels``.

    Parameters
    ----------
    frame : DataFrame, shape (n, ...)
    columns : sequence of str
        The covariates, in order.
    levels : mapping of str to sequence of str
        The categorical columns' levels, reference (left out) first.

    Returns
    -------
    X : ndarray, shape (n, p)
    terms : tuple of str, length p
        :data:`INTERCEPT`, then ``col`` or ``col[level]``.
    scale : ndarray, shape (p,)
        Each term's scale for the separation check and the ridge penalty: twice the standard
        deviation of a numeric column, 1 for the intercept and dummies. A missing value stays
        NaN in ``X``; a level not in ``levels`` or an infinite value is a ConfigError naming the rows.

    Examples
    --------
    >>> X, terms, _ = code_covariates(pd.DataFrame({"region": ["EU", "US", "EU"]}), ["region"], {"region": ["EU", "US"]})
    >>> X[:, 1].tolist(), terms[1]
    ([0.0, 1.0, 0.0], 'region[US]')
    """
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ConfigError(f"The covariates lack the column(s) {format_rows(absent)} of the membership model.")
    n = len(frame)
    blocks = [np.ones((n, 1))]
    terms = [INTERCEPT]
    scale = [1.0]
    for c in columns:
        s = frame[c]
        if c in levels:
            lv = list(levels[c])
            vals = s.to_numpy(dtype=object)
            miss = pd.isna(vals)
            text = vals.astype(str)
            unknown = ~miss & ~np.isin(text, lv)
            if unknown.any():
                raise ConfigError(
                    f"Covariate column '{c}' has level(s) {format_rows(sorted(set(text[unknown])))} not seen at fit time "
                    f"at rows {format_rows(frame.index[unknown])}."
                )
            D = (text[:, None] == np.array(lv[1:], dtype=object)[None, :]).astype(float)
            D[miss] = np.nan
            blocks.append(D)
            terms += [f"{c}[{v}]" for v in lv[1:]]
            scale += [1.0] * (len(lv) - 1)
        else:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(v).any():
                raise ConfigError(f"Covariate column '{c}' has infinite values at rows {format_rows(frame.index[np.isinf(v)])}.")
            blocks.append(v[:, None])
            terms.append(c)
            sd = float(np.nanstd(v)) if np.isfinite(v).any() else 1.0
            scale.append(2.0 * sd if sd > 0 else 1.0)
    return np.concatenate(blocks, axis=1), tuple(terms), np.asarray(scale)


# ======================================================================= the multinomial logit
def mnlogit_log_probs(X: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Log membership probabilities ``log p_ic``, shape (n, k), from coefficients (m, k - 1).

    Examples
    --------
    >>> lp = mnlogit_log_probs(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0], [np.log(3)]]))
    >>> np.exp(lp).round(2).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    eta = np.concatenate([np.zeros((X.shape[0], 1)), X @ coef], axis=1)
    mx = eta.max(axis=1, keepdims=True)
    return eta - mx - np.log(np.exp(eta - mx).sum(axis=1, keepdims=True))


def _info(X: np.ndarray, P: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """Observed information of the multinomial logit, ((k-1) m, (k-1) m), segment-major:
    ``sum_i ws_i (diag(p_i) - p_i p_i') (x) x_i x_i'`` over the non-reference segments."""
    n, m = X.shape
    A = P[:, 1:]
    k1 = A.shape[1]
    H = np.empty((k1, m, k1, m))
    for c in range(k1):
        for d in range(c, k1):
            r = ws * (A[:, c] * ((c == d) - A[:, d]))
            blk = (X * r[:, None]).T @ X
            H[c, :, d, :] = blk
            H[d, :, c, :] = blk.T
    return H.reshape(k1 * m, k1 * m)


def _scores(X: np.ndarray, Z: np.ndarray, P: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-respondent score contributions, (n, (k-1) m), segment-major, survey weights in."""
    s = Z.sum(axis=1, keepdims=True)
    R = (w[:, None] * (Z - s * P))[:, 1:]
    return (R[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


def _solve_psd(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(H, g, rcond=None)[0]


@dataclass(frozen=True)
class MNLogitFit:
    """A fitted multinomial logit for memberships.

    Attributes
    ----------
    coef : ndarray, shape (m, k - 1)
        Coefficients of segments 2..k against segment 1 (rows: terms).
    cov : ndarray, shape ((k - 1) m, (k - 1) m)
        Covariance of ``coef.T.ravel()`` (segment-major).
    loglik : float
        ``sum_i w_i sum_c z_ic log p_ic`` at the estimate (penalty excluded).
    se_method : str
        ``"observed information"`` or ``"sandwich"``.
    penalised : bool
        Whether the weak ridge prior was used (separation detected).
    separated : tuple of str
        The terms whose unpenalised coefficients ran off (empty when none).
    converged : bool
    n_iter : int
    """

    coef: np.ndarray
    cov: np.ndarray
    loglik: float
    se_method: str
    penalised: bool
    separated: tuple[str, ...]
    converged: bool
    n_iter: int

    @property
    def se(self) -> np.ndarray:
        """Standard errors, shape (m, k - 1)."""
        m, k1 = self.coef.shape
        return np.sqrt(np.clip(np.diag(self.cov), 0, None)).reshape(k1, m).T


def _newton(
    X: np.ndarray, Z: np.ndarray, w: np.ndarray, lam: np.ndarray, start: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, float, bool, int]:
    """Newton's method with step halving on the penalised weighted log-likelihood."""
    m = X.shape[1]
    k1 = Z.shape[1] - 1
    ws = w * Z.sum(axis=1)
    pen = np.tile(lam, k1)

    def objective(b: np.ndarray) -> tuple[float, np.ndarray]:
        lp = mnlogit_log_probs(X, b)
        return float((w[:, None] * Z * lp).sum() - 0.5 * (pen * b.T.ravel() ** 2).sum()), lp

    b = start.copy()
    f, lp = objective(b)
    scale_f = max(1.0, float(np.abs(w).sum()))
    for it in range(1, max_iter + 1):
        P = np.exp(lp)
        g = _scores(X, Z, P, w).sum(axis=0) - pen * b.T.ravel()
        H = _info(X, P, ws) + np.diag(pen)
        step = _solve_psd(H, g)
        t = 1.0
        for _ in range(30):
            nb = b + t * step.reshape(k1, m).T
            nf, nlp = objective(nb)
            if nf >= f - 1e-12 * abs(f):
                break
            t *= 0.5
        else:
            return b, f, False, it
        done = abs(nf - f) <= tol * scale_f and float(np.abs(t * step).max()) < 1e-6
        b, f, lp = nb, nf, nlp
        if done:
            return b, f, True, it
    return b, f, False, max_iter


def _separated_terms(coef: np.ndarray, scale: np.ndarray, terms: Sequence[str]) -> tuple[str, ...]:
    big = (np.abs(coef) * scale[:, None] > SEPARATION_LIMIT).any(axis=1)
    big[0] = False  # the intercept follows the others
    return tuple(t for t, b in zip(terms, big) if b)


def fit_mnlogit(
    memberships: Any,
    X: Any,
    *,
    sample_weight: Any = None,
    terms: Sequence[str] | None = None,
    scale: Any = None,
    penalty: str = "auto",
    se: str = "auto",
    start: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-12,
) -> MNLogitFit:
    """Fit a weighted multinomial logit to (fractional) memberships, segment 1 the reference.

    Maximises ``sum_i w_i sum_c z_ic log p_ic`` over the coefficients by Newton's method (the
    objective is concave whenever every row of ``memberships`` sums to 1, BCH weights included).

    Parameters
    ----------
    memberships : array-like, shape (n, k)
        Posterior probabilities, 0/1 assignments or BCH weights; rows sum to 1.
    X : array-like, shape (n, m)
        The design, intercept first (:attr:`CovariateDesign.X`); rows must be complete.
    sample_weight : array-like, shape (n,), optional
        Survey weights, used as given.
    terms : sequence of str, length m, optional
        Term names (for the separation message).
    scale : array-like, shape (m,), optional
        Units of the separation check and of the ridge prior (:attr:`CovariateDesign.scale`);
        default: two standard deviations of every non-constant column.
    penalty : {"auto", "none", "ridge"}, default "auto"
        ``"auto"``: maximum likelihood, and when a coefficient runs off (separation) a
        :class:`SeparationWarning` and the ridge estimate; ``"ridge"``: always the weak ridge
        prior (scale :data:`PRIOR_SCALE`); ``"none"``: maximum likelihood, never penalised.
    se : {"auto", "observed", "sandwich"}, default "auto"
        ``"observed"``: the inverse observed information; ``"sandwich"``: the linearisation
        (robust) estimator ``H^-1 (sum_i s_i s_i') H^-1`` with the survey weights in the scores.
        ``"auto"``: the sandwich with survey weights or memberships that are not probabilities
        (BCH), otherwise the observed information.
    start : ndarray, shape (m, k - 1), optional
        Starting coefficients (default zeros).
    max_iter : int, default 100
    tol : float, default 1e-12
        Newton stops when the objective changes by less than ``tol`` times the total weight.

    Returns
    -------
    MNLogitFit

    Warns
    -----
    SeparationWarning
        Separation detected (with ``penalty="auto"``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> p2 = 1 / (1 + np.exp(-(0.5 + 1.0 * x)))
    >>> z = np.c_[1 - p2, p2]
    >>> fit = fit_mnlogit(z, np.c_[np.ones(2000), x])
    >>> fit.coef.round(3).ravel().tolist()
    [0.5, 1.0]
    """
    Z = np.asarray(memberships, dtype=float)
    X = np.asarray(X, dtype=float)
    n, k = Z.shape
    m = X.shape[1]
    if X.shape[0] != n:
        raise ConfigError(f"memberships have {n} rows but the covariate design has {X.shape[0]}.")
    if not np.isfinite(X).all() or not np.isfinite(Z).all():
        raise ConfigError("fit_mnlogit needs complete, finite covariates and memberships (drop incomplete rows first).")
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if penalty not in ("auto", "none", "ridge"):
        raise ConfigError(f"The 'penalty' parameter of fit_mnlogit must be 'auto', 'none' or 'ridge'. Got {penalty!r} instead.")
    if se not in ("auto", "observed", "sandwich"):
        raise ConfigError(f"The 'se' parameter of fit_mnlogit must be 'auto', 'observed' or 'sandwich'. Got {se!r} instead.")
    terms = tuple(terms) if terms is not None else (INTERCEPT,) + tuple(f"x{j}" for j in range(1, m))
    if scale is None:
        sd = X.std(axis=0)
        scale = np.where(sd > 0, 2 * sd, 1.0)
    scale = np.asarray(scale, dtype=float)
    lam = np.r_[0.0, (scale[1:] / PRIOR_SCALE) ** 2]
    b0 = np.zeros((m, k - 1)) if start is None else np.asarray(start, dtype=float)
    separated: tuple[str, ...] = ()
    if penalty == "ridge":
        b, f, conv, it = _newton(X, Z, w, lam, b0, max_iter, tol)
        penalised = True
    else:
        b, f, conv, it = _newton(X, Z, w, np.zeros(m), b0, max_iter, tol)
        separated = _separated_terms(b, scale, terms)
        penalised = False
        if penalty == "auto" and (separated or not conv):
            separated = separated or tuple(terms[1:])
            warnings.warn(
                f"Separation: the covariate term(s) {format_rows(separated)} (quasi-)perfectly predict membership of "
                f"some segment, so their maximum-likelihood coefficients are infinite; reporting a penalised estimate "
                f"(weak ridge prior, scale {PRIOR_SCALE:g} per two standard deviations or per dummy) instead. "
                "Merge rare levels or drop the term for a plain estimate.",
                SeparationWarning,
                stacklevel=2,
            )
            b, f, conv, it = _newton(X, Z, w, lam, np.zeros((m, k - 1)), max_iter, tol)
            penalised = True
    lp = mnlogit_log_probs(X, b)
    P = np.exp(lp)
    pen = np.tile(lam if penalised else np.zeros(m), k - 1)
    H = _info(X, P, w * Z.sum(axis=1)) + np.diag(pen)
    Hinv = _pinv_sym(H)
    fractional = bool((Z < -1e-12).any()) or sample_weight is not None
    method = se if se != "auto" else ("sandwich" if fractional else "observed")
    if method == "sandwich":
        S = _scores(X, Z, P, w) - pen * b.T.ravel() / n
        cov = Hinv @ (S.T @ S) @ Hinv
        method_name = "sandwich"
    else:
        cov = Hinv
        method_name = "observed information"
    loglik = float((w[:, None] * Z * lp).sum())
    return MNLogitFit(coef=b, cov=cov, loglik=loglik, se_method=method_name, penalised=penalised,
                      separated=separated, converged=conv, n_iter=it)


def _pinv_sym(H: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive semi-definite matrix, parameters with no information
    (a zero diagonal: boundary estimates) held fixed (their rows and columns zero)."""
    d = np.diag(H).copy()
    keep = d > 1e-10 * max(1.0, float(np.abs(d).max(initial=0.0)))
    out = np.zeros_like(H)
    if keep.any():
        Hk = H[np.ix_(keep, keep)]
        try:
            inv = np.linalg.inv(Hk)
        except np.linalg.LinAlgError:
            inv = np.linalg.pinv(Hk, hermitian=True)
        out[np.ix_(keep, keep)] = 0.5 * (inv + inv.T)
    return out


# ======================================================================= the one-step EM
@dataclass
class MeasurementModel:
    """What the concomitant-variable EM needs from a mixture's measurement part.

    Attributes
    ----------
    theta : ndarray, shape (P,)
        Starting measurement parameters, unconstrained (log variances, logits ...).
    log_density : callable
        ``theta -> (n, k)`` array of ``log f_c(y_i)``.
    m_step : callable or None
        ``(R, theta) -> theta``: the measurement M-step given weighted responsibilities ``R``
        (n, k) (memberships times survey weights). ``None``: the measurement is fixed.
    scores : callable or None
        ``theta -> (n, k, P)``, ``d log f_c(y_i) / d theta``; ``None``: central differences of
        ``log_density``.
    n_free : int
        Free measurement parameters (for the criteria); defaults to ``len(theta)``.
    unpack : callable or None
        ``theta -> (params, shared_params, centers, extras)`` in the result's layout and segment
        order (``params`` without ``weights``; ``extras`` the per-segment tables to replace), for
        :func:`one_step`.
    """

    theta: np.ndarray
    log_density: Callable[[np.ndarray], np.ndarray]
    m_step: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    scores: Callable[[np.ndarray], np.ndarray] | None = None
    n_free: int | None = None
    unpack: Callable[[np.ndarray], tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, Any]]] | None = None


@dataclass(frozen=True)
class ConcomitantFit:
    """A mixture fitted with covariates on membership (see :func:`fit_concomitant`).

    Attributes
    ----------
    theta : ndarray, shape (P,)
    coef : ndarray, shape (m, k - 1)
    coef_cov : ndarray, shape ((k - 1) m, (k - 1) m)
        Covariance of ``coef.T.ravel()``, from the information of all parameters.
    loglik : float
        ``sum_i w_i log sum_c p_ic f_c(y_i)``.
    memberships : ndarray, shape (n, k)
        Posterior membership probabilities.
    prior : ndarray, shape (n, k)
        ``p_ic``, the membership probabilities given the covariates alone.
    converged : bool
    n_iter : int
    penalised : bool
    separated : tuple of str
    se_method : str
    """

    theta: np.ndarray
    coef: np.ndarray
    coef_cov: np.ndarray
    loglik: float
    memberships: np.ndarray
    prior: np.ndarray
    converged: bool
    n_iter: int
    penalised: bool
    separated: tuple[str, ...]
    se_method: str


def _numeric_scores(log_density: Callable[[np.ndarray], np.ndarray], theta: np.ndarray) -> np.ndarray:
    L0 = log_density(theta)
    out = np.empty(L0.shape + (theta.size,))
    for j in range(theta.size):
        h = 1e-5 * max(1.0, abs(float(theta[j])))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        out[:, :, j] = (log_density(tp) - log_density(tm)) / (2 * h)
    return out


def fit_concomitant(
    measurement: MeasurementModel,
    design: CovariateDesign | np.ndarray,
    memberships: np.ndarray,
    *,
    sample_weight: Any = None,
    penalty: str = "auto",
    se: str = "auto",
    max_iter: int = 5000,
    tol: float = 1e-12,
    terms: Sequence[str] | None = None,
    scale: np.ndarray | None = None,
) -> ConcomitantFit:
    """EM for a mixture whose membership probabilities follow a multinomial logit on covariates.

    The log-likelihood is ``sum_i w_i log sum_c p_c(x_i) f_c(y_i)``. Each EM iteration: the
    E-step (posterior memberships), the measurement M-step on the weighted memberships, and the
    membership M-step: the weighted multinomial logit fitted to the posterior memberships
    (:func:`fit_mnlogit`'s Newton method, warm-started). The log-likelihood never decreases.

    Standard errors come from the observed information of all parameters (the Jacobian of the
    score ``sum_i w_i s_i``, by central differences of the analytic scores), so the uncertainty
    of the measurement parameters is carried into the coefficients' intervals; with survey
    weights (or ``se="sandwich"``) the sandwich ``H^-1 (sum_i w_i^2 s_i s_i') H^-1``.

    Parameters
    ----------
    measurement : MeasurementModel
    design : CovariateDesign or ndarray, shape (n, m)
        Complete rows only (the caller leaves out rows with a missing covariate).
    memberships : ndarray, shape (n, k)
        Starting memberships (e.g. the fit without covariates).
    sample_weight : array-like, shape (n,), optional
    penalty : {"auto", "none", "ridge"}, default "auto"
        As in :func:`fit_mnlogit`; separation is checked on the starting memberships and at the
        end (then EM is rerun with the ridge prior).
    se : {"auto", "observed", "sandwich"}, default "auto"
    max_iter : int, default 5000
    tol : float, default 1e-12
        Stop when an iteration raises the log-likelihood by less than ``tol`` per respondent
        (tight: the iterations are cheap, and the reported log-likelihood is then within about
        1e-9 of the maximum EM converges to).
    terms, scale : optional
        Term names and units (taken from ``design`` when it is a :class:`CovariateDesign`).

    Returns
    -------
    ConcomitantFit

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=400)
    >>> seg = (rng.random(400) < 1 / (1 + np.exp(-1.5 * x))).astype(int)
    >>> y = rng.normal(4.0 * seg, 1.0)
    >>> def logf(t):
    ...     return -0.5 * (y[:, None] - t[None, :]) ** 2 - 0.5 * np.log(2 * np.pi)
    >>> def mstep(R, t):
    ...     return (R * y[:, None]).sum(0) / R.sum(0)
    >>> z0 = np.c_[y < 2, y >= 2].astype(float)
    >>> fit = fit_concomitant(MeasurementModel(np.array([0.0, 4.0]), logf, mstep), np.c_[np.ones(400), x], z0)
    >>> bool(abs(fit.coef[1, 0] - 1.5) < 0.5)
    True
    """
    if isinstance(design, CovariateDesign):
        terms = design.terms if terms is None else terms
        scale = design.scale if scale is None else scale
        X = design.X
    else:
        X = np.asarray(design, dtype=float)
    n, m = X.shape
    z = np.asarray(memberships, dtype=float)
    k = z.shape[1]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    start = fit_mnlogit(z, X, sample_weight=w, terms=terms, scale=scale, penalty="none" if penalty == "none" else penalty)
    penalised = start.penalised
    separated = start.separated
    out = _concomitant_em(measurement, X, z, w, start.coef, penalised, scale, max_iter, tol)
    if penalty == "auto" and not penalised:
        sep = _separated_terms(out[1], np.asarray(scale) if scale is not None else np.where(X.std(0) > 0, 2 * X.std(0), 1.0),
                               terms or (INTERCEPT,) + tuple(f"x{j}" for j in range(1, m)))
        if sep:
            warnings.warn(
                f"Separation: the covariate term(s) {format_rows(sep)} (quasi-)perfectly predict membership of some "
                f"segment in the one-step fit; reporting a penalised estimate (weak ridge prior, scale {PRIOR_SCALE:g}).",
                SeparationWarning,
                stacklevel=2,
            )
            penalised, separated = True, sep
            out = _concomitant_em(measurement, X, z, w, np.zeros((m, k - 1)), True, scale, max_iter, tol)
    theta, coef, ll, zf, prior, conv, it = out
    lam = _ridge(scale, X) if penalised else np.zeros(m)
    cov, method = _joint_cov(measurement, X, w, theta, coef, lam, se if se != "auto" else
                             ("sandwich" if sample_weight is not None else "observed"))
    return ConcomitantFit(theta=theta, coef=coef, coef_cov=cov, loglik=ll, memberships=zf, prior=prior,
                          converged=conv, n_iter=it, penalised=penalised, separated=tuple(separated), se_method=method)


def _ridge(scale: Any, X: np.ndarray) -> np.ndarray:
    if scale is None:
        sd = X.std(axis=0)
        scale = np.where(sd > 0, 2 * sd, 1.0)
    return np.r_[0.0, (np.asarray(scale, dtype=float)[1:] / PRIOR_SCALE) ** 2]


def _concomitant_em(
    measurement: MeasurementModel, X: np.ndarray, z: np.ndarray, w: np.ndarray, coef: np.ndarray,
    penalised: bool, scale: Any, max_iter: int, tol: float,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray, bool, int]:
    from latentseg.models._em import normalize_log

    n, m = X.shape
    lam = _ridge(scale, X) if penalised else np.zeros(m)
    theta = np.asarray(measurement.theta, dtype=float).copy()
    if measurement.m_step is not None:
        theta = measurement.m_step(z * w[:, None], theta)
    prev = -np.inf
    conv = False
    it = 0
    ll = -np.inf
    for it in range(1, max_iter + 1):
        lprior = mnlogit_log_probs(X, coef)
        zf, lli = normalize_log(measurement.log_density(theta) + lprior)
        ll = float((w * lli).sum())
        if abs(ll - prev) < tol * n:
            conv = True
            break
        prev = ll
        if measurement.m_step is not None:
            theta = measurement.m_step(zf * w[:, None], theta)
        coef = _newton(X, zf, w, lam, coef, 25, 1e-14)[0]
    lprior = mnlogit_log_probs(X, coef)
    zf, lli = normalize_log(measurement.log_density(theta) + lprior)
    ll = float((w * lli).sum())
    return theta, coef, ll, zf, np.exp(lprior), conv, it


def _joint_scores(
    measurement: MeasurementModel, X: np.ndarray, w: np.ndarray, theta: np.ndarray, coef: np.ndarray
) -> np.ndarray:
    """Per-respondent scores of all parameters (measurement, then coefficients), weights in."""
    from latentseg.models._em import normalize_log

    L = measurement.log_density(theta)
    lprior = mnlogit_log_probs(X, coef)
    z, _ = normalize_log(L + lprior)
    parts = []
    if theta.size:
        dL = measurement.scores(theta) if measurement.scores is not None else _numeric_scores(measurement.log_density, theta)
        parts.append(w[:, None] * np.einsum("ik,ikp->ip", z, dL))
    parts.append(_scores(X, z, np.exp(lprior), w))
    return np.concatenate(parts, axis=1)


def _joint_cov(
    measurement: MeasurementModel, X: np.ndarray, w: np.ndarray, theta: np.ndarray, coef: np.ndarray,
    lam: np.ndarray, se: str,
) -> tuple[np.ndarray, str]:
    P = theta.size
    m, k1 = coef.shape
    vec = np.r_[theta, coef.T.ravel()]

    def grad(v: np.ndarray) -> np.ndarray:
        return _joint_scores(measurement, X, w, v[:P], v[P:].reshape(k1, m).T).sum(axis=0)

    npar = vec.size
    H = np.empty((npar, npar))
    for j in range(npar):
        h = 1e-5 * max(1.0, abs(float(vec[j])))
        vp, vm = vec.copy(), vec.copy()
        vp[j] += h
        vm[j] -= h
        H[:, j] = -(grad(vp) - grad(vm)) / (2 * h)
    H = 0.5 * (H + H.T)
    H[P:, P:] += np.diag(np.tile(lam, k1))
    Hinv = _pinv_sym(H)
    if se == "sandwich":
        S = _joint_scores(measurement, X, w, theta, coef)
        cov = Hinv @ (S.T @ S) @ Hinv
        name = "sandwich"
    else:
        cov = Hinv
        name = "observed information"
    return cov[P:, P:], name


# ======================================================================= tables
def coefficient_table(
    coef: np.ndarray, cov: np.ndarray, terms: Sequence[str], *, reference: int = 1, segments: Sequence[int] | None = None
) -> pd.DataFrame:
    """Tidy table of coefficients: ``segment, term, estimate, se, lower, upper, odds_ratio,
    or_lower, or_upper`` (95% Wald intervals; odds ratios against the reference segment).

    Parameters
    ----------
    coef : ndarray, shape (m, k - 1)
    cov : ndarray, shape ((k - 1) m, (k - 1) m)
    terms : sequence of str, length m
    reference : int, default 1
    segments : sequence of int, length k - 1, optional
        The segment of each column (default: the segments other than ``reference``).

    Examples
    --------
    >>> t = coefficient_table(np.array([[0.1], [0.8]]), np.diag([0.01, 0.04]), ["(intercept)", "x"])
    >>> [(int(r.segment), r.term, float(r.estimate), float(r.se)) for r in t.itertuples()][1]
    (2, 'x', 0.8, 0.2)
    """
    m, k1 = coef.shape
    segs = list(segments) if segments is not None else [s for s in range(1, k1 + 2) if s != reference]
    se = np.sqrt(np.clip(np.diag(cov), 0, None)).reshape(k1, m).T
    rows = []
    for c in range(k1):
        for j in range(m):
            est, s = float(coef[j, c]), float(se[j, c])
            lo, hi = est - _Z95 * s, est + _Z95 * s
            rows.append((segs[c], terms[j], est, s, lo, hi, _exp(est), _exp(lo), _exp(hi)))
    return pd.DataFrame(rows, columns=["segment", "term", "estimate", "se", "lower", "upper",
                                       "odds_ratio", "or_lower", "or_upper"])


def _exp(v: float) -> float:
    return math.exp(v) if v < 700 else math.inf


def rereference(coef: np.ndarray, cov: np.ndarray, order: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (m, k-1) against old segment 0, re-expressed for the segment order ``order``
    (new segment j is old ``order[j]``) against new segment 0, with the covariance transformed.

    Examples
    --------
    >>> c, v = rereference(np.array([[1.0]]), np.eye(1), [1, 0])
    >>> c.tolist(), v.tolist()
    ([[-1.0]], [[1.0]])
    """
    m, k1 = coef.shape
    k = k1 + 1
    # full (m, k) with old column 0 zero; free vector is columns 1.. segment-major
    A = np.zeros((k, k1))  # full column c as a combination of free columns
    A[1:, :] = np.eye(k1)
    T = np.zeros((k1, k1))
    for j in range(1, k):
        T[j - 1] = A[order[j]] - A[order[0]]
    full = np.concatenate([np.zeros((m, 1)), coef], axis=1)
    new = full[:, list(order)]
    new = new[:, 1:] - new[:, [0]]
    M = np.kron(T, np.eye(m))
    return new, M @ cov @ M.T


# ======================================================================= one-step from a result
def one_step(
    result: Any,
    data: Any,
    covariates: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    sample_weight: Any = None,
    penalty: str = "auto",
    max_iter: int = 5000,
    tol: float = 1e-12,
    canonical: bool = True,
) -> Any:
    """Refit a Gaussian mixture or latent class result with covariates on membership (one step).

    EM starts from the result's parameters and memberships, so the fit without covariates is its
    start (the engines' ``covariates=`` option runs their usual random starts first). Rows with a
    missing covariate are left out of the joint fit (listed in
    ``diagnostics["covariates_excluded"]`` and warned about); their memberships are the posterior
    under the one-step measurement model with the average membership probabilities.

    Parameters
    ----------
    result : SegmentationResult
        A ``gmm`` or ``lca`` fit (without covariates) on ``data``.
    data : DataFrame or array-like, shape (n, d)
        The data the result was fitted on.
    covariates : DataFrame
        Aligned with the rows (by the respondent ids when its index holds them).
    columns : sequence of str, optional
        Covariate columns (default: all of ``covariates``).
    sample_weight : array-like, shape (n,), optional
        Survey weights, used as given (pseudo-log-likelihood); default the result's own
        ``sample_weight`` when it has one.
    penalty : {"auto", "none", "ridge"}
    max_iter, tol
        EM controls (see :func:`fit_concomitant`).
    canonical : bool, default True
        Number the segments largest first (by their mean membership probability); ``False``
        keeps the segments of ``result`` (as :func:`latentseg.decide.covariates.covariate_effects`
        does, so that its table speaks of the segments the user has).

    Returns
    -------
    SegmentationResult
        In canonical order (unless ``canonical=False``); ``criteria`` with the log-likelihood of the joint model and
        ``n_params`` = measurement parameters + ``m (k - 1)`` coefficients; ``shares`` the
        (weighted) mean membership probability; ``extras["covariates"]`` the coefficient table
        (segment 1 the reference), ``extras["covariate_coef"]`` (m, k-1) and
        ``extras["covariate_vcov"]``; ``settings["covariates"]`` the design's spec.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_covariate_mixture
    >>> sim = simulate_covariate_mixture(300, 2, random_seed=3)
    >>> from latentseg.models.gmm import fit_gmm
    >>> res = fit_gmm(sim.data, 2, random_seed=1, covariates=sim.covariates)
    >>> res.extras["covariates"].columns[:4].tolist()
    ['segment', 'term', 'estimate', 'se']
    """
    from latentseg.models.families import GMM, LCA

    if result.model == GMM:
        from latentseg.models.gmm import covariate_measurement
    elif result.model == LCA:
        from latentseg.models.lca import covariate_measurement  # type: ignore[no-redef]
    else:
        raise ConfigError(
            f"One-step covariates are available for the '{GMM}' and '{LCA}' models; got '{result.model}'. "
            "Use the three-step methods (bch, ml) for other models."
        )
    design = covariate_design(covariates, columns, respondent_ids=result.respondent_ids)
    ok = design.complete
    n = result.n
    if sample_weight is None:  # a weighted fit carries its weights (the survey-weights contract)
        sample_weight = result.sample_weight
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if w is not None and w.shape != (n,):
        raise ConfigError(f"sample_weight must have shape ({n},); got {w.shape}.")
    meas = covariate_measurement(result, data, rows=np.flatnonzero(ok))
    fit = fit_concomitant(meas, design.X[ok], np.asarray(result.memberships)[ok],
                          sample_weight=None if w is None else w[ok], penalty=penalty, max_iter=max_iter, tol=tol,
                          terms=design.terms, scale=design.scale)
    k = result.k
    wo = np.ones(int(ok.sum())) if w is None else w[ok]
    shares = (wo[:, None] * fit.prior).sum(axis=0) / wo.sum()
    z = np.empty((n, k))
    z[ok] = fit.memberships
    excluded = design.excluded
    if (~ok).any():
        from latentseg.models._em import normalize_log

        full = covariate_measurement(result, data, rows=np.flatnonzero(~ok))
        z[~ok] = normalize_log(full.log_density(fit.theta) + np.log(shares))[0]
        warnings.warn(
            f"{int((~ok).sum())} respondent(s) {format_rows(excluded)} have a missing covariate: they are left out of "
            "the membership model (their segment is predicted from the ratings alone).",
            LatentsegWarning,
            stacklevel=2,
        )
    assert meas.unpack is not None
    params, shared, centers, extras = meas.unpack(fit.theta)
    order = np.lexsort((centers[:, 0], -shares)) if canonical else np.arange(k)
    coef, cov = rereference(fit.coef, fit.coef_cov, order)
    params = {**params, "weights": shares}
    from latentseg._stats import weighted_share_interval, wilson_interval
    from latentseg.models._criteria import information_criteria

    n_ok = int(ok.sum())
    n_free = (meas.n_free if meas.n_free is not None else meas.theta.size) + (k - 1) + (design.m - 1) * (k - 1)
    criteria = information_criteria(fit.loglik, n_free, n_ok, z[ok], sample_weight=None if w is None else wo)
    if w is None:
        lo, hi = wilson_interval(shares * n_ok, n_ok)
        interval = "95% Wilson (mean membership probability given the covariates)"
    else:  # design-based: the linearised variance of the weighted share, as the weighted fits without covariates
        _, lo, hi, label = weighted_share_interval(z[ok], wo, shares)
        interval = f"{label} (mean membership probability given the covariates)"
    diagnostics = dict(result.diagnostics)
    warns = list(diagnostics.get("warnings", []))
    if fit.penalised:
        warns.append(f"Separation in the covariates ({', '.join(fit.separated)}): penalised (ridge) estimate.")
    if not fit.converged:
        warns.append(f"The one-step EM with covariates did not converge within {max_iter} iterations.")
    diagnostics.update({
        "warnings": warns,
        "converged": bool(diagnostics.get("converged", True)) and fit.converged,
        "covariates_converged": fit.converged,
        "covariates_n_iter": fit.n_iter,
        "covariates_excluded": [str(i) for i in excluded],
        "covariates_penalised": fit.penalised,
        "covariates_separated": list(fit.separated),
        "covariates_se": fit.se_method,
    })
    settings = {**dict(result.settings), "covariates": design.spec(), "covariates_method": "one-step"}
    out = replace(
        result,
        memberships=z,
        centers=centers,
        shares=shares,
        share_lower=lo,
        share_upper=hi,
        interval_method=interval,
        criteria=criteria,
        diagnostics=diagnostics,
        settings=settings,
        params=params,
        shared_params=shared,
        extras={**dict(result.extras), **extras},
    ).relabel(order + 1)
    table = coefficient_table(coef, cov, design.terms)
    return replace(out, extras={**dict(out.extras), "covariates": table, "covariate_coef": coef, "covariate_vcov": cov})
