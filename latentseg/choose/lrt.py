"""Likelihood-ratio tests for the number of segments (EM engines: ``gmm`` and ``lca``).

Two tests of ``k - 1`` segments (the null) against ``k`` (the alternative):

**Bootstrap likelihood-ratio test** (BLRT; McLachlan 1987, Nylund, Asparouhov & Muthén 2007).
The ordinary chi-square theory does not apply to mixtures (the null sits on the boundary of the
alternative's parameter space), so the null distribution of ``LR = 2 (log L_k - log L_{k-1})`` is
simulated: draw ``B`` data sets of the same size from the fitted ``k - 1`` model, fit both ``k - 1``
and ``k`` segments to each (same engine, same options, multiple starts), and compare:
``p = (1 + #{LR_b >= LR_obs}) / (B_ok + 1)``, with ``B_ok`` the replicates that fitted. A replicate
that fails (an engine error, a degenerate draw) is recorded with its reason and skipped; the
result says how many failed. Replicates run in parallel worker processes (joblib).

Note on the replicate fits: with too few starts the ``k``-segment fit of a replicate can land
below the ``k - 1`` one, giving a negative ``LR_b``; that biases the p-value downwards, so keep
the engines' multiple starts (the default) for these fits. Negative replicate statistics are
counted in ``n_negative``.

**Lo-Mendell-Rubin adjusted LRT** (Lo, Mendell & Rubin 2001, their equation 15). The ad hoc
adjustment divides the statistic by a factor that depends on the number of extra parameters and
the sample size::

    LR_adj = LR / (1 + 1 / ((p_k - p_{k-1}) ln n))

where ``p`` counts free parameters. (tidyLPA hard-codes ``p_k - p_{k-1} = 3``, the univariate
normal value from the paper; we use the real difference, as Mplus's TECH11 does for its
adjusted test.) **The reference distribution is an approximation**: Lo, Mendell & Rubin derive a
weighted sum of chi-squares whose weights are the eigenvalues of Vuong's (1989) matrix built from
the per-respondent scores and Hessians of both models (Mplus TECH11 computes that "VLMR"
distribution). We do not compute those weights; the p-value here is from a chi-square with
``p_k - p_{k-1}`` degrees of freedom, the approximation tidyLPA also uses. Jeffries (2003) showed
that the LMR derivation does not hold for mixtures in general, and Nylund et al. (2007) found the
BLRT more reliable in simulations; use the LMR p-value as a quick screen and the BLRT to decide.

**Survey weights.** With ``sample_weight`` both tests compare weighted *pseudo*-log-likelihoods
(``sum_i w_i log f(x_i)``, weights normalised to mean 1). The BLRT then simulates the null
distribution of that same statistic: each replicate draws ``n`` respondents from the weighted
``k - 1`` fit (an estimate of the population model) and fits both models with the observed
weights attached to the drawn rows in order (the rows are independent draws, so this pairs the
weights with them at random). The replicate statistics thus carry the same weight variability
as the observed one; unequal weights inflate a pseudo-LR roughly by the design effect, and a
replicate fitted without weights would miss that and reject too often. This treats the
weights as fixed (not re-drawn with a design), so it is an approximation for a design with
strata or clusters. The LMR test uses the pseudo-log-likelihoods and ``n`` respondents as they
are, without any design adjustment: with weights it is a rougher screen still.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, LatentsegError, LatentsegWarning
from latentseg.models.families import FAMILIES, family

__all__ = ["blrt", "BLRTResult", "lmr_test", "LMRResult", "lmr_table", "sample_from_result"]

#: The families the likelihood-ratio tests apply to (EM fits; from the family registry).
_EM_MODELS = tuple(name for name, fam in FAMILIES.items() if fam.lrt)


# ---------------------------------------------------------------------------------- sampling
def sample_from_result(result: Any, n: int, random_seed: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw a data set from a fitted Gaussian mixture or latent class model.

    Parameters
    ----------
    result : SegmentationResult
        A ``gmm`` result (``params``: ``weights``, ``means``, ``variances`` (k, d) or
        ``covariances`` (k, d, d); or ``shared_params``: ``variances`` (d,) / ``covariance`` (d, d))
        or an ``lca`` result (``params``: ``weights``, ``probs`` (k, J, Cmax), NaN-padded).
    n : int
        Number of respondents to draw.
    random_seed : int, optional

    Returns
    -------
    data : DataFrame, shape (n, d) or (n, J)
        Columns named as the model's features; for ``lca`` the values are the original
        categories (from ``extras["categories"]``) where known, otherwise the codes ``0..C_j - 1``.
    segment : ndarray of int, shape (n,)
        The segment (1..k) each row was drawn from.

    Raises
    ------
    ConfigError
        A model this sampler does not know, or a result without the parameters it needs.

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships(
    ...     "gmm", np.eye(2)[[0, 1, 0]], centers=np.array([[0.0], [5.0]]), feature_names=("x",),
    ...     params={"weights": np.array([0.5, 0.5]), "means": np.array([[0.0], [5.0]]),
    ...             "variances": np.array([[1.0], [1.0]])}, settings={"covariance": "VVI"})
    >>> X, z = sample_from_result(r, 1000, random_seed=1)
    >>> X.shape, round(float(X["x"][z == 2].mean()))
    ((1000, 1), 5)
    """
    rng = np.random.default_rng(random_seed)
    weights = np.asarray(result.params.get("weights", result.shares), dtype=float)
    weights = weights / weights.sum()
    seg = rng.choice(result.k, size=int(n), p=weights)
    names = list(result.feature_names)
    if result.model not in _EM_MODELS:
        raise ConfigError(
            f"Cannot simulate from a {result.model!r} model; the likelihood-ratio tests need {' or '.join(_EM_MODELS)}."
        )
    if family(result.model).on_ratings:
        return _sample_ratings(result, seg, rng), seg + 1
    if family(result.model).categorical:
        return _sample_lca(result, seg, rng, names), seg + 1
    X = _sample_gmm(result, seg, rng)
    return pd.DataFrame(X, columns=names), seg + 1


def _sample_gmm(result: Any, seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p, sp = result.params, result.shared_params
    try:
        mu = np.asarray(p["means"], dtype=float)
    except KeyError:
        raise ConfigError("This gmm result has no 'means' parameter; cannot simulate from it.") from None
    k, d = mu.shape
    X = np.empty((seg.size, d))
    z = rng.standard_normal((seg.size, d))
    if "covariances" in p or "covariance" in sp:
        covs = np.asarray(p["covariances"] if "covariances" in p else np.broadcast_to(sp["covariance"], (k, d, d)), float)
        for j in range(k):
            rows = seg == j
            X[rows] = mu[j] + z[rows] @ np.linalg.cholesky(covs[j]).T
        return X
    if "variances" in p or "variances" in sp:
        var = np.asarray(p["variances"] if "variances" in p else np.broadcast_to(sp["variances"], (k, d)), float)
        var = np.broadcast_to(var.reshape(k, -1), (k, d)) if var.ndim == 1 else var
        return mu[seg] + z * np.sqrt(var[seg])
    raise ConfigError("This gmm result has no variances or covariances; cannot simulate from it.")


def _sample_ratings(result: Any, seg: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Ratings drawn from a rating family's per-segment category probabilities, laid out as
    :func:`latentseg.prepare.ratings.rating_frame` lays them out."""
    from latentseg.prepare.ratings import IMP, SAT, rating_column

    try:
        probs = {IMP: np.asarray(result.params["imp_probs"], float), SAT: np.asarray(result.params["sat_probs"], float)}
        points = result.extras["scale_points"]
    except KeyError:
        raise ConfigError(f"This {result.model} result has no rating probabilities; cannot simulate from it.") from None
    def draw(p: np.ndarray) -> np.ndarray:  # (n, J, C) -> codes (n, J)
        cum = np.cumsum(p, axis=2)
        cum[..., -1] = np.maximum(cum[..., -1], 1.0)
        return (rng.random(p.shape[:2] + (1,)) > cum).sum(axis=2)

    joint = result.params.get("joint_probs")
    drawn: dict[str, np.ndarray] = {}
    if joint is not None:  # the joint cell model: draw each outcome's (importance, satisfaction) pair
        joint = np.asarray(joint, dtype=float)
        cs = joint.shape[-1]
        cell = draw(joint[seg].reshape(seg.size, joint.shape[1], -1))
        drawn = {IMP: cell // cs, SAT: cell % cs}
    out: dict[str, Any] = {}
    for kind in (IMP, SAT):
        codes = drawn[kind] if drawn else draw(probs[kind][seg])
        pts = points.loc[points["kind"] == kind, "point"].to_numpy(dtype=float)
        dtype = pd.CategoricalDtype([int(v) if float(v).is_integer() else float(v) for v in pts], ordered=True)
        for j, o in enumerate(result.feature_names):
            out[rating_column(kind, o)] = pd.Categorical.from_codes(codes[:, j], dtype=dtype)
    return pd.DataFrame(out)


def _sample_lca(result: Any, seg: np.ndarray, rng: np.random.Generator, names: list[str]) -> pd.DataFrame:
    try:
        probs = np.asarray(result.params["probs"], dtype=float)  # (k, J, Cmax), NaN-padded
    except KeyError:
        raise ConfigError("This lca result has no 'probs' parameter; cannot simulate from it.") from None
    k, J, cmax = probs.shape
    p = np.nan_to_num(probs[seg], nan=0.0)  # (n, J, Cmax)
    cum = np.cumsum(p, axis=2)
    cum[..., -1] = np.maximum(cum[..., -1], 1.0)  # guard rounding
    u = rng.random((seg.size, J, 1))
    codes = (u > cum).sum(axis=2)  # (n, J) in 0..C_j - 1
    cats = result.extras.get("categories") if hasattr(result, "extras") else None
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        col = codes[:, j]
        if isinstance(cats, pd.DataFrame) and {"item", "code", "category"} <= set(cats.columns):
            rows = cats[cats["item"].astype(str) == str(name)].sort_values("code")
            if "value" in rows.columns and rows["value"].notna().all():
                lookup = rows["value"].to_numpy(dtype=float)
            else:
                lookup = rows["category"].astype(str).to_numpy()
            if len(lookup) == int(np.sum(np.isfinite(probs[0, j]))):
                out[name] = lookup[col]
                continue
        out[name] = col
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------- BLRT
@dataclass(frozen=True)
class BLRTResult:
    """A bootstrap likelihood-ratio test of ``k - 1`` against ``k`` segments.

    Attributes
    ----------
    model : str
    k : int
        The alternative's number of segments (the null has ``k - 1``).
    lr : float
        Observed statistic ``2 (log L_k - log L_{k-1})``.
    p_value : float
        ``(1 + #{LR_b >= lr}) / (n_ok + 1)``; NaN when no replicate fitted.
    lr_boot : ndarray, shape (n_ok,)
        The replicate statistics that fitted.
    replicates : int
        Replicates requested (B).
    n_failed : int
        Replicates that failed and were skipped.
    failures : list of str
        Their reasons (``"replicate 7: <message>"``).
    n_negative : int
        Replicates whose ``k`` fit landed below the ``k - 1`` fit (a hint to add starts).
    loglik_null, loglik_alt : float
    n_params_null, n_params_alt : int
    seconds : float
    weighted : bool
        Fitted with survey weights (``sample_weight``; see the module notes).
    """

    model: str
    k: int
    lr: float
    p_value: float
    lr_boot: np.ndarray
    replicates: int
    n_failed: int
    failures: list[str] = field(default_factory=list)
    n_negative: int = 0
    loglik_null: float = float("nan")
    loglik_alt: float = float("nan")
    n_params_null: int = 0
    n_params_alt: int = 0
    seconds: float = 0.0
    weighted: bool = False

    @property
    def summary(self) -> str:
        """One sentence: the test, the statistic, the p-value and the replicates used."""
        ok = self.replicates - self.n_failed
        verdict = "rejects" if self.p_value < 0.05 else "does not reject"
        s = (
            f"BLRT {self.model} k={self.k - 1} vs k={self.k}: LR = {self.lr:.2f}, p = {self.p_value:.3f} "
            f"from {ok} bootstrap replicates; at the 5% level it {verdict} {self.k - 1} segments in favour of {self.k}."
        )
        if self.n_failed:
            s += f" {self.n_failed} of {self.replicates} replicates failed and were skipped."
        if self.weighted:
            s += " Weighted: pseudo-log-likelihoods, replicates fitted with the survey weights."
        return s

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field plus ``summary``."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe(
            {
                "test": "BLRT",
                "model": self.model,
                "k_null": self.k - 1,
                "k": self.k,
                "lr": self.lr,
                "p_value": self.p_value,
                "replicates": self.replicates,
                "n_failed": self.n_failed,
                "failures": self.failures,
                "n_negative": self.n_negative,
                "lr_boot": self.lr_boot,
                "loglik_null": self.loglik_null,
                "loglik_alt": self.loglik_alt,
                "n_params_null": self.n_params_null,
                "n_params_alt": self.n_params_alt,
                "seconds": self.seconds,
                "weighted": self.weighted,
                "summary": self.summary,
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _replicate(
    spec: Any, n: int, model: str, k: int, seed: int, fit_options: Mapping[str, Any]
) -> tuple[float | None, str | None]:
    """One bootstrap replicate (runs in a worker): simulate from the null, fit k-1 and k."""
    from latentseg.models import fit

    rng = np.random.default_rng(seed)
    s_data, s_null, s_alt = (int(v) for v in rng.integers(0, 2**31 - 1, size=3))
    try:
        data, _ = sample_from_result(spec, n, random_seed=s_data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LatentsegWarning)
            ll0 = float(fit(data, model, k - 1, random_seed=s_null, **fit_options).criteria["loglik"])
            ll1 = float(fit(data, model, k, random_seed=s_alt, **fit_options).criteria["loglik"])
    except (LatentsegError, ValueError, RuntimeError, np.linalg.LinAlgError, FloatingPointError, KeyError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    lr = 2.0 * (ll1 - ll0)
    if not math.isfinite(lr):
        return None, f"non-finite log-likelihood (k-1: {ll0}, k: {ll1})"
    return lr, None


def _run_replicate(b: int, *args: Any) -> tuple[int, float | None, str | None]:
    lr, err = _replicate(*args)
    return b, lr, err


def blrt(
    data: Any,
    model: str,
    k: int,
    *,
    replicates: int = 99,
    random_seed: int | None = None,
    n_jobs: int = 2,
    progress: Callable[[int, int], None] | None = None,
    fit_options: Mapping[str, Any] | None = None,
    null: Any = None,
    alternative: Any = None,
    sample_weight: Any = None,
) -> BLRTResult:
    """Bootstrap likelihood-ratio test of ``k - 1`` segments against ``k``.

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        The data both models are (or were) fitted to: numeric for ``gmm``, categorical for ``lca``.
    model : {"gmm", "lca"}
    k : int
        Segments under the alternative (>= 2).
    replicates : int, default 99
        Bootstrap replicates B (99 gives p-values in steps of 0.01).
    random_seed : int, optional
        The one seed; each replicate gets its own child seed, so results do not depend on
        ``n_jobs`` or on the order replicates finish.
    n_jobs : int, default 2
        Worker processes (joblib); 1 runs in this process.
    progress : callable(done, total), optional
        Called as replicates finish.
    fit_options : mapping, optional
        Engine options for every fit (``covariance=``, ``n_init=`` ...).
    null, alternative : SegmentationResult, optional
        Already fitted ``k - 1`` and ``k`` models on ``data`` (fitted here when not given; with
        the same ``sample_weight`` when given).
    sample_weight : array-like, shape (n,), optional
        Survey weights of the rows of ``data``: every fit is weighted, the replicates' fits by
        the same weights attached to the drawn rows (module notes).

    Returns
    -------
    BLRTResult

    Raises
    ------
    ConfigError
        A model other than gmm / lca, ``k < 2``, ``replicates < 1``, ``n_jobs < 1``, or given
        fits that do not match ``model`` and ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((60, 2)), np.full((60, 2), 5.0)] + np.random.default_rng(0).normal(size=(120, 2))
    >>> res = blrt(X, "gmm", 2, replicates=9, random_seed=1, n_jobs=1, fit_options={"n_init": 2})
    >>> res.p_value
    0.1
    """
    from joblib import Parallel, delayed

    from latentseg.models import fit

    if model not in _EM_MODELS:
        raise ConfigError(f"The bootstrap LRT is for the EM engines ({', '.join(_EM_MODELS)}); got model {model!r}.")
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"k must be an integer >= 2 (the test compares k - 1 with k); got {k!r}.")
    if not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise ConfigError(f"replicates must be an integer >= 1; got {replicates!r}.")
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ConfigError(f"n_jobs must be an integer >= 1; got {n_jobs!r}.")
    opts = dict(fit_options or {})
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=float)
        if w.shape != (len(data),):
            raise ConfigError(f"sample_weight must have one weight per row of the data, shape ({len(data)},); got {w.shape}.")
        opts["sample_weight"] = w  # the observed fits and every replicate's
    t0 = time.perf_counter()
    ss = np.random.SeedSequence(random_seed)
    s_null, s_alt, s_boot = ss.spawn(3)
    if null is None:
        null = fit(data, model, k - 1, random_seed=int(s_null.generate_state(1)[0]), **opts)
    if alternative is None:
        alternative = fit(data, model, k, random_seed=int(s_alt.generate_state(1)[0]), **opts)
    for res, kk, what in ((null, k - 1, "null"), (alternative, k, "alternative")):
        if res.model != model or res.k != kk:
            raise ConfigError(f"The {what} fit must be a {model} model with k={kk}; got {res.model} with k={res.k}.")
    ll0 = float(null.criteria["loglik"])
    ll1 = float(alternative.criteria["loglik"])
    lr_obs = 2.0 * (ll1 - ll0)
    n = int(null.n)

    seeds = [int(c.generate_state(1)[0]) for c in s_boot.spawn(int(replicates))]
    spec = _SamplerSpec.of(null)
    tasks = (delayed(_run_replicate)(b, spec, n, model, k, seeds[b], opts) for b in range(int(replicates)))
    lrs: dict[int, float] = {}
    failures: dict[int, str] = {}
    done = 0
    runner = Parallel(n_jobs=int(n_jobs), return_as="generator_unordered")
    for b, lr, err in runner(tasks):
        done += 1
        if err is not None:
            failures[b] = err
        else:
            lrs[b] = float(lr)  # type: ignore[arg-type]
        if progress is not None:
            progress(done, int(replicates))
    boot = np.array([lrs[b] for b in sorted(lrs)], dtype=float)
    p = float((1 + np.sum(boot >= lr_obs)) / (boot.size + 1)) if boot.size else float("nan")
    return BLRTResult(
        model=model,
        k=int(k),
        lr=lr_obs,
        p_value=p,
        lr_boot=boot,
        replicates=int(replicates),
        n_failed=len(failures),
        failures=[f"replicate {b + 1}: {failures[b]}" for b in sorted(failures)],
        n_negative=int(np.sum(boot < 0)),
        loglik_null=ll0,
        loglik_alt=ll1,
        n_params_null=int(null.criteria.get("n_params", 0)),
        n_params_alt=int(alternative.criteria.get("n_params", 0)),
        seconds=time.perf_counter() - t0,
        weighted="sample_weight" in opts,
    )


@dataclass(frozen=True)
class _SamplerSpec:
    """What a worker needs to simulate from a fitted model (small and picklable)."""

    model: str
    k: int
    feature_names: tuple[str, ...]
    params: dict[str, np.ndarray]
    shared_params: dict[str, np.ndarray]
    extras: dict[str, Any]
    shares: np.ndarray

    @classmethod
    def of(cls, result: Any) -> _SamplerSpec:
        extras = {}
        cats = result.extras.get("categories") if result.extras else None
        if isinstance(cats, pd.DataFrame):
            extras["categories"] = cats
        points = result.extras.get("scale_points") if result.extras else None
        if isinstance(points, pd.DataFrame):  # a family fitted on ratings
            extras["scale_points"] = points
        return cls(
            model=result.model,
            k=int(result.k),
            feature_names=tuple(result.feature_names),
            params={k: np.asarray(v) for k, v in result.params.items()},
            shared_params={k: np.asarray(v) for k, v in result.shared_params.items()},
            extras=extras,
            shares=np.asarray(result.shares),
        )


# ---------------------------------------------------------------------------------- LMR
@dataclass(frozen=True)
class LMRResult:
    """The Lo-Mendell-Rubin adjusted likelihood-ratio test of ``k - 1`` against ``k``.

    Attributes
    ----------
    k : int
        Segments under the alternative.
    lr : float
        ``2 (log L_k - log L_{k-1})``.
    lr_adjusted : float
        ``lr / (1 + 1 / (df ln n))``.
    df : int
        ``p_k - p_{k-1}`` (difference in free parameters).
    p_value : float
        ``P(chi2_df >= lr_adjusted)`` — an approximation, see the module notes.
    n : int
    """

    k: int
    lr: float
    lr_adjusted: float
    df: int
    p_value: float
    n: int
    reference: str = "chi-square(df) approximation to the VLMR weighted chi-square mixture"

    def to_dict(self) -> dict[str, Any]:
        from latentseg.io.jsonsafe import json_safe

        return json_safe({"test": "LMR adjusted LRT", "k_null": self.k - 1, **self.__dict__})


def lmr_test(null: Any, alternative: Any) -> LMRResult:
    """Lo-Mendell-Rubin adjusted LRT from two fitted models (``k - 1`` and ``k`` segments).

    Parameters
    ----------
    null, alternative : SegmentationResult
        Fits of the same family to the same respondents, with ``loglik`` and ``n_params``.

    Returns
    -------
    LMRResult

    Raises
    ------
    ConfigError
        Fits of different families, sizes, or not ``k - 1`` against ``k`` segments.

    Examples
    --------
    >>> from latentseg.result import SegmentationResult
    >>> import numpy as np
    >>> def fake(k, ll, p):
    ...     z = np.full((100, k), 1 / k)
    ...     return SegmentationResult.from_memberships("gmm", z, centers=np.zeros((k, 1)), feature_names=("x",),
    ...                                                criteria={"loglik": ll, "n_params": p})
    >>> r = lmr_test(fake(1, -300.0, 2), fake(2, -280.0, 5))
    >>> round(r.lr, 1), r.df, round(r.lr_adjusted, 2), r.p_value < 0.001
    (40.0, 3, 37.3, True)
    """
    if null.model != alternative.model:
        raise ConfigError(f"LMR test needs two fits of one family; got {null.model} and {alternative.model}.")
    if alternative.k != null.k + 1:
        raise ConfigError(f"LMR test compares k - 1 with k segments; got k={null.k} and k={alternative.k}.")
    if null.n != alternative.n:
        raise ConfigError(f"LMR test needs fits to the same respondents; got n={null.n} and n={alternative.n}.")
    return _lmr(
        alternative.k,
        float(null.criteria["loglik"]),
        int(null.criteria["n_params"]),
        float(alternative.criteria["loglik"]),
        int(alternative.criteria["n_params"]),
        int(null.n),
    )


def _lmr(k: int, ll0: float, p0: int, ll1: float, p1: int, n: int) -> LMRResult:
    from scipy import stats

    lr = 2.0 * (ll1 - ll0)
    df = int(p1 - p0)
    if df < 1:
        raise ConfigError(f"LMR test needs more free parameters under the alternative; got {p0} and {p1}.")
    adj = lr / (1.0 + 1.0 / (df * math.log(n)))
    p = float(stats.chi2.sf(adj, df)) if math.isfinite(adj) else float("nan")
    return LMRResult(k=int(k), lr=lr, lr_adjusted=adj, df=df, p_value=p, n=int(n))


def lmr_table(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """LMR tests between consecutive k of each EM family in a selection table.

    Parameters
    ----------
    table : DataFrame
        :attr:`latentseg.choose.selection.Selection.table` (columns ``model, k, status, loglik, n_params``).
    n : int
        Number of respondents the fits used.

    Returns
    -------
    DataFrame
        ``model, k_null, k, lr, lr_adjusted, df, p_value`` for each pair ``(k - 1, k)`` present
        and fitted.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["gmm"] * 3, "k": [2, 3, 4], "status": ["ok"] * 3,
    ...                   "loglik": [-500.0, -450.0, -448.0], "n_params": [9, 14, 19]})
    >>> lmr_table(t, 300)[["k", "p_value"]].round(4).to_dict("records")
    [{'k': 3, 'p_value': 0.0}, {'k': 4, 'p_value': 0.5691}]
    """
    rows = []
    ok = table[(table["status"] == "ok") & table["model"].isin(_EM_MODELS)]
    for model, sub in ok.groupby("model", sort=False):
        by_k = sub.set_index("k")
        for kk in sorted(by_k.index):
            if kk - 1 not in by_k.index:
                continue
            a, b = by_k.loc[kk - 1], by_k.loc[kk]
            if not (np.isfinite(a["loglik"]) and np.isfinite(b["loglik"])):
                continue
            r = _lmr(int(kk), float(a["loglik"]), int(a["n_params"]), float(b["loglik"]), int(b["n_params"]), n)
            rows.append({"model": model, "k_null": int(kk) - 1, "k": int(kk), "lr": r.lr,
                         "lr_adjusted": r.lr_adjusted, "df": r.df, "p_value": r.p_value})
    return pd.DataFrame(rows, columns=["model", "k_null", "k", "lr", "lr_adjusted", "df", "p_value"])
