"""The Bayesian Gaussian mixture (``model=BAYES_GMM``): priors, PyMC model, fast kernel, summaries.

The model, for respondents ``n = 1..N`` with values ``x_nd`` on ``d`` features (opportunity
scores, factor scores, any numeric columns), marginalised over the segment::

    w ~ Dirichlet(alpha, ..., alpha)
    mu_jd ~ Normal(mean_d, mean_scale * sd_d)
    diagonal:  sigma_jd ~ LogNormal(log(sd_scale * sd_d), sd_log_sigma)
    EEI:       sigma_d ~ LogNormal(log(sd_scale * sd_d), sd_log_sigma), shared by the segments
    full:      Sigma_j = diag(sigma_j) Omega_j diag(sigma_j), Omega_j ~ LKJ(lkj_eta),
               sigma_j as above (PyMC's LKJCholeskyCov)
    log p(x_n) = logsumexp_j [log w_j + sum_{d observed} log Normal(x_nd | mu_jd, sigma_jd)]

``mean_d`` and ``sd_d`` are the column's mean and standard deviation (missing values ignored): the
priors are on the data's own scale. Every choice and its reason is in ``docs/priors.md``.
Missing values drop out of a respondent's sum (diagonal model); the full-covariance model needs
complete rows.

This module is the family's description; the fitting loop (sampling, relabelling, diagnostics,
WAIC/LOO, the result) lives in :mod:`latentseg.models.bayes.engine`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, format_rows
from latentseg.models._em import check_k, numeric_matrix
from latentseg.models.gmm import resolve_covariance as em_structure
from latentseg.models.families import BAYES_GMM, GMM

__all__ = ["GMMPriors", "GaussianFamily", "COVARIANCES", "simplex_coords", "simplex_probs"]

_LOG_2PI = math.log(2.0 * math.pi)
#: covariance option -> mclust name of the EM structure used for the starting values
COVARIANCES = {"diag": "VVI", "EEI": "EEI", "full": "VVV"}
#: mclust name -> covariance option (the inverse of COVARIANCES)
OPTIONS = {name: option for option, name in COVARIANCES.items()}
_SUPPORTED = "'diag' (VVI), 'EEI' or 'full' (VVV), or 'auto'"


#: segments closer than this (Ashman's D on their own sds) are reported as duplicated
DUPLICATE_D = 1.5


@dataclass(frozen=True)
class GMMPriors:
    """Hyperparameters of the Bayesian Gaussian mixture (see ``docs/priors.md``).

    Attributes
    ----------
    concentration : float, default 1.0
        Dirichlet concentration ``alpha`` of the segment weights (1: uniform over the simplex).
    mean_scale : float, default 2.0
        Prior sd of a segment mean, in units of the column's sd (centred on the column mean).
    sd_scale : float, default 0.5
        Prior median of a segment's sd, in units of the column's sd.
    sd_log_sigma : float, default 1.0
        Sd of ``log sigma`` (the log-normal's shape): 95% of the prior between
        ``sd_scale * sd * exp(-1.96)`` and ``sd_scale * sd * exp(1.96)``.
    lkj_eta : float, default 2.0
        LKJ shape of each segment's correlation matrix (full covariance only).
    """

    concentration: float = 1.0
    mean_scale: float = 2.0
    sd_scale: float = 0.5
    sd_log_sigma: float = 1.0
    lkj_eta: float = 2.0

    def __post_init__(self) -> None:
        for name in ("concentration", "mean_scale", "sd_scale", "sd_log_sigma", "lkj_eta"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) or val <= 0:
                raise ConfigError(f"The '{name}' prior parameter of bayes-gmm must be a number > 0. Got {val!r} instead.")


def pymc_mixture_model(family: Any) -> Any:
    """The PyMC model of a mixture family (the Gaussian mixture's, the latent class model's):
    ``weights`` Dirichlet(``family.priors.concentration``) over the segments (none at k = 1), the
    segment marginalised by a hand-written log-sum-exp over ``family.pymc_components()`` (the
    (n, k) log densities, whose variables it creates) in a ``Potential``, each respondent's term
    times its survey weight where there are any (the pseudo-log-likelihood). Coordinates:
    ``segment`` and ``family.feature_dim``."""
    import pymc as pm
    import pytensor.tensor as pt

    k = family.k
    coords = {"segment": np.arange(1, k + 1), family.feature_dim: list(family.feature_names)}
    with pm.Model(coords=coords) as model:
        if k > 1:
            w = pm.Dirichlet("weights", a=np.full(k, family.priors.concentration, dtype=np.float64), dims="segment")
            logw = pt.log(w)
        else:
            logw = pt.zeros(1)
        ll = pt.logsumexp(family.pymc_components() + logw[None, :], axis=1)
        if family.sample_weight is not None:  # the pseudo-log-likelihood sum_n w_n log p(x_n)
            ll = ll * pt.as_tensor(np.asarray(family.sample_weight, dtype=np.float64))
        pm.Potential("loglik", pt.sum(ll))
    return model


def simplex_coords(p: np.ndarray) -> np.ndarray:
    """PyMC's simplex coordinates of probability vectors (..., m): the first m - 1 centred logs."""
    lp = np.log(p)
    return (lp - lp.mean(axis=-1, keepdims=True))[..., :-1]


def simplex_probs(y: np.ndarray) -> np.ndarray:
    """Probability vectors (..., m) from simplex coordinates (..., m - 1)."""
    u = np.concatenate([y, -y.sum(axis=-1, keepdims=True)], axis=-1)
    u = np.exp(u - u.max(axis=-1, keepdims=True))
    return u / u.sum(axis=-1, keepdims=True)


def covariance_option(covariance: str) -> str:
    """The covariance option, ``"diag"``, ``"EEI"``, ``"full"`` or ``"auto"``, of a structure
    spelled as the EM mixture takes it (:func:`latentseg.models.gmm.resolve_covariance`: mclust
    names, ``diag``, ``full``, ``diag-equal`` ...) or ``"auto"``.

    Raises
    ------
    ConfigError
        An unknown spelling, or a structure the Bayesian mixture does not have (EII, VII, EEE);
        the message names the ones it has.

    Examples
    --------
    >>> [covariance_option(c) for c in ("VVI", "diagonal", "diag-equal", "vvv", "Auto")]
    ['diag', 'diag', 'EEI', 'full', 'auto']
    >>> covariance_option("tied")
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: The 'covariance' parameter of bayes-gmm must be 'diag' (VVI), 'EEI' or 'full' (VVV), or 'auto'; it has no EEE structure (the EM mixture, model 'gmm', has). Got 'tied' instead.
    """
    if str(covariance).strip().lower() == "auto":
        return "auto"
    try:
        name = em_structure(covariance, 2)  # 2: E / V (one variable) are EM-only spellings
    except ConfigError:
        raise ConfigError(
            f"The 'covariance' parameter of bayes-gmm must be {_SUPPORTED}. Got {covariance!r} instead."
        ) from None
    if name not in OPTIONS:
        raise ConfigError(
            f"The 'covariance' parameter of bayes-gmm must be {_SUPPORTED}; it has no {name} structure "
            f"(the EM mixture, model '{GMM}', has). Got {covariance!r} instead."
        )
    return OPTIONS[name]


class GaussianFamily:
    """Everything the fitting loop needs to know about a Gaussian mixture on one data set.

    Parameters
    ----------
    data : DataFrame or array-like, shape (n, d)
    k : int
    covariance : {"auto", "diag", "EEI", "full"}
        Segment-specific diagonal (mclust VVI), diagonal shared by the segments (EEI) or
        segment-specific full covariance (VVV); ``"auto"``: EEI or VVI, whichever EM fit has the
        lower BIC, decided by :meth:`em_start` (until then ``covariance`` is ``"auto"``).
    priors : GMMPriors
    """

    model = BAYES_GMM
    #: the name of :meth:`c_kernel`'s compiled C log density (what the forked warmer compiles)
    c_kernel_name = "gaussian"
    feature_dim = "outcome"
    #: draws of these parameters carry a segment axis right after (chain, draw)
    segment_keys = ("weights", "means", "sds", "chols")
    #: survey weights (n,), used as given (the pseudo-likelihood), or None; set by the engine
    sample_weight: np.ndarray | None = None

    def __init__(self, data: Any, k: int, covariance: str, priors: GMMPriors) -> None:
        X, names, ids = numeric_matrix(data, allow_missing=True, model=BAYES_GMM)
        self._prepare(X, names, ids, check_k(k, X, BAYES_GMM), covariance_option(covariance), priors)

    @classmethod
    def for_scoring(cls, result: Any, data: Any) -> GaussianFamily:
        """A family on new data, for scoring against a fitted result (no k check, the fit's
        settings; columns matched by name when ``data`` is a DataFrame)."""
        names = list(result.feature_names)
        if isinstance(data, pd.DataFrame):
            missing = [c for c in names if c not in set(map(str, data.columns))]
            if missing:
                raise ConfigError(f"The new data lack the column(s) {format_rows(missing)} the bayes-gmm model was fitted on.")
            data = data.rename(columns=str)[names]
        X, _, ids = numeric_matrix(data, allow_missing=True, model=BAYES_GMM, check_constant=False)
        if X.shape[1] != len(names):
            raise ConfigError(f"The new data have {X.shape[1]} columns; the bayes-gmm model was fitted on {len(names)}.")
        st = result.settings
        priors = GMMPriors(
            **{f.name: st.get(f.name, f.default) for f in dataclasses.fields(GMMPriors)}  # type: ignore[arg-type]
        )
        obj = cls.__new__(cls)
        obj._prepare(X, tuple(names), ids, result.k, covariance_option(st.get("covariance", "diag")), priors)
        return obj

    def _prepare(self, X: np.ndarray, names: tuple[str, ...], ids: pd.Index, k: int, covariance: str, priors: GMMPriors) -> None:
        self.k = k
        self.covariance = covariance
        self.covariance_requested = covariance
        #: BIC of the EM fits ``covariance="auto"`` chose between (mclust name -> BIC)
        self.structure_bic: dict[str, float] = {}
        self.priors = priors
        self.X = X
        self.feature_names = names
        self.respondent_ids = ids
        self.n, self.d = X.shape
        self.obs = ~np.isnan(X)
        if self.covariance == "full" and not self.obs.all():
            rows = np.flatnonzero(~self.obs.all(axis=1))
            raise ConfigError(
                f"The full-covariance bayes-gmm needs complete rows; {rows.size} row(s) "
                f"{format_rows(ids[rows])} have missing values. Use covariance='diag' (missing values "
                "drop out of each respondent's likelihood) or impute them."
            )
        self.center = np.nanmean(X, axis=0)
        self.scale = np.nanstd(X, axis=0)
        self.scale = np.where(self.scale > 0, self.scale, 1.0)
        xc = np.where(self.obs, X - self.center, 0.0)
        o = self.obs.astype(float)
        # without missing values the observed-indicator block is all ones: the kernels skip it
        blocks = [xc * xc, xc, o] if not self.obs.all() else [xc * xc, xc]
        self.F = np.ascontiguousarray(np.concatenate(blocks, axis=1))
        self._Ft: np.ndarray | None = None
        self.F_full = np.concatenate([xc * xc, xc, o], axis=1) if self.obs.all() else self.F
        self.cst = -0.5 * _LOG_2PI * o.sum(axis=1)
        self.Xc = xc
        self._logsd_loc = np.log(priors.sd_scale * self.scale)
        self._mean_sd = priors.mean_scale * self.scale

    # ------------------------------------------------------------------ description
    @property
    def Ft(self) -> np.ndarray:
        """``F`` feature-major (m, N), for the numba kernel; built on first use (the JAX path
        does not need it)."""
        if self._Ft is None:
            self._Ft = np.ascontiguousarray(self.F.T)
        return self._Ft

    @property
    def has_kernel(self) -> bool:
        """Whether the numba kernel covers this model (the full-covariance one goes through PyMC)."""
        return self.covariance != "full"

    @property
    def n_free(self) -> int | None:
        """Length of the kernel's parameter vector ``theta`` (None for the full-covariance model)."""
        if not self.has_kernel:
            return None
        return self.k - 1 + self.k * self.d + self.sd_rows * self.d

    @property
    def sd_rows(self) -> int:
        """Rows of sds in the diagonal models: k (VVI) or 1 (EEI, shared by the segments)."""
        if self.covariance == "auto":
            raise RuntimeError("covariance='auto' is decided by em_start(); call it first.")
        return 1 if self.covariance == "EEI" else self.k

    def settings(self) -> dict[str, Any]:
        p = self.priors
        chosen = {"covariance_requested": "auto", "covariance_bic": dict(self.structure_bic)}
        return {
            "covariance": self.covariance,
            **(chosen if self.covariance_requested == "auto" else {}),
            "concentration": p.concentration,
            "mean_scale": p.mean_scale,
            "sd_scale": p.sd_scale,
            "sd_log_sigma": p.sd_log_sigma,
            **({"lkj_eta": p.lkj_eta} if self.covariance == "full" else {}),
        }

    def n_params(self) -> int:
        """Free parameters of the mixture, counted as for the EM engine (for BIC at the EM fit)."""
        k, d = self.k, self.d
        cov = self.sd_rows * d if self.has_kernel else k * d * (d + 1) // 2
        return (k - 1) + k * d + cov

    def data_for_hash(self) -> np.ndarray:
        return self.X

    # ------------------------------------------------------------------ starting values
    def em_start(self, seed: int, n_init: int) -> Any:
        """The EM fit (mclust VVI / EEI / VVV) whose solution starts the chains and labels the draws.

        With ``covariance="auto"`` the EM fit is ``fit_gmm(covariance="auto")`` (EEI and VVI from
        the same starts, the lower BIC kept, EEI on a tie) and its structure becomes this
        family's; the BICs are kept in ``structure_bic`` and in :meth:`settings`.
        """
        from latentseg.models.gmm import fit_gmm

        frame = pd.DataFrame(self.X, columns=list(self.feature_names))
        requested = "auto" if self.covariance == "auto" else COVARIANCES[self.covariance]
        from latentseg.models.bayes._survey import em_weight_kwargs

        em = fit_gmm(frame, self.k, covariance=requested, n_init=n_init, random_seed=seed,
                     **em_weight_kwargs(fit_gmm, self.sample_weight))
        if self.covariance == "auto":
            self.structure_bic = dict(em.settings["covariance_bic"])
            self.covariance = OPTIONS[em.settings["covariance"]]
        return em

    def start_params(self, em: Any) -> dict[str, np.ndarray]:
        """EM estimates as constrained parameters (segment order of the EM result)."""
        w = np.clip(np.asarray(em.params["weights"], float), 1e-6, None)
        w = w / w.sum()
        means = np.asarray(em.params["means"], float)
        floor = (1e-3 * self.scale) ** 2
        if self.has_kernel:
            var = em.params.get("variances")
            if var is None:  # EEI: one variance per feature, shared by the segments
                var = np.broadcast_to(np.asarray(em.shared_params["variances"], float), means.shape)
            sds = np.sqrt(np.maximum(np.asarray(var, float), floor))
            return {"weights": w, "means": means, "sds": sds}
        covs = np.asarray(em.params["covariances"], float)
        covs = covs + np.eye(self.d) * floor
        return {"weights": w, "means": means, "chols": np.linalg.cholesky(covs)}

    def theta_from_params(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Unconstrained kernel vector from constrained parameters (diagonal model)."""
        mu = (p["means"] - self.center).ravel()
        sds = np.asarray(p["sds"], float)
        ls = np.log(sds[:1] if self.sd_rows == 1 else sds).ravel()
        return np.concatenate([simplex_coords(p["weights"]), mu, ls])

    def jitter_params(self, p: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Constrained parameters moved a little (the chains' starts for the PyMC samplers)."""
        if self.has_kernel:
            theta = self.jitter(self.theta_from_params(p), rng)
            return {key: val for key, val in self.params_from_theta(theta).items()}
        w = p["weights"] * np.exp(0.05 * rng.standard_normal(self.k))
        means = p["means"] + 0.02 * self.scale * rng.standard_normal(p["means"].shape)
        return {"weights": w / w.sum(), "means": means, "chols": p["chols"]}

    def jitter(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A chain's start: the EM solution moved a little (0.05 on the log weights, 2% of a
        column's sd on the means, 0.02 on the log sds), so that chains do not start identical."""
        k, d = self.k, self.d
        step = np.concatenate([np.full(k - 1, 0.05), np.tile(0.02 * self.scale, k), np.full(self.sd_rows * d, 0.02)])
        return theta + step * rng.standard_normal(theta.size)

    # ------------------------------------------------------------------ log density
    def kernel(self) -> Any:
        """``logp(theta, grad) -> float``, the numba log posterior with the data bound."""
        from latentseg.models.bayes._kernels import gmm_diag_logp

        F, cst, k, d, ks = self.Ft, self.cst, self.k, self.d, self.sd_rows
        alpha, m0, s0, l0, t0 = self.kernel_priors()
        wt = self.sample_weight

        def logp(theta: np.ndarray, grad: np.ndarray) -> float:
            return gmm_diag_logp(theta, F, cst, k, d, alpha, m0, s0, l0, t0, grad, ks)

        def logp_weighted(theta: np.ndarray, grad: np.ndarray) -> float:
            return gmm_diag_logp(theta, F, cst, k, d, alpha, m0, s0, l0, t0, grad, ks, wt)

        return logp if wt is None else logp_weighted

    def c_kernel(self) -> tuple[str, np.ndarray]:
        """Name and data buffer of the C version of :meth:`kernel` (for nutpie)."""
        from latentseg.models.bayes._kernels import pack_gmm

        return self.c_kernel_name, pack_gmm(self.Ft, self.cst, self.k, *self.kernel_priors(), ks=self.sd_rows,
                                    wt=self.sample_weight)

    def kernel_priors(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
        """The priors as every kernel (numba, C, JAX) takes them, in their argument order:
        ``(alpha, mean_loc (d,), mean_scale (d,), logsd_loc (d,), logsd_scale)``, centred units."""
        return (float(self.priors.concentration), np.zeros(self.d), np.ascontiguousarray(self._mean_sd, dtype=float),
                np.ascontiguousarray(self._logsd_loc, dtype=float), float(self.priors.sd_log_sigma))

    def params_from_theta(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Constrained draws from kernel draws ``theta`` (..., n_free)."""
        k, d = self.k, self.d
        lead = theta.shape[:-1]
        a = k - 1
        w = simplex_probs(theta[..., :a])
        means = theta[..., a : a + k * d].reshape(*lead, k, d) + self.center
        sds = np.exp(theta[..., a + k * d :].reshape(*lead, self.sd_rows, d))
        return {"weights": w, "means": means, "sds": np.broadcast_to(sds, (*lead, k, d)).copy()}

    # ------------------------------------------------------------------ PyMC
    def pymc_model(self) -> Any:
        """The PyMC model (same priors and likelihood as the kernel; the segment marginalised by a
        hand-written log-sum-exp in a ``Potential``).

        Free variables: ``weights`` (k,), ``means`` (k, d) and ``sds`` (k, d) (diagonal) or (d,)
        (EEI), or
        ``chol_1..chol_k`` (packed Cholesky factors, LKJCholeskyCov) for the full model.
        """
        return pymc_mixture_model(self)

    def pymc_components(self) -> Any:
        """Inside an open PyMC model (coords ``segment`` and ``outcome``): the segments' free
        variables (``means``, and ``sds`` or ``chol_1..chol_k``, priors as the kernel's) and every
        respondent's log density in every segment, a tensor (n, k). :meth:`pymc_model` mixes it
        with ``weights``; the Bayesian one-step covariate model with its multinomial logit."""
        import pymc as pm
        import pytensor.tensor as pt

        k, d = self.k, self.d
        p = self.priors
        mu = pm.Normal("means", mu=self.center, sigma=self._mean_sd, dims=("segment", "outcome"))
        muc = mu - self.center
        if self.has_kernel:
            if self.covariance == "EEI":
                sd1 = pm.LogNormal("sds", mu=self._logsd_loc, sigma=np.float64(p.sd_log_sigma), dims="outcome")
                sd = pt.broadcast_to(sd1[None, :], (k, d))
            else:
                sd = pm.LogNormal("sds", mu=self._logsd_loc, sigma=np.float64(p.sd_log_sigma), dims=("segment", "outcome"))
            inv = 1.0 / pt.sqr(sd)
            P = pt.concatenate([(-0.5 * inv).T, (muc * inv).T, (-0.5 * pt.sqr(muc) * inv - pt.log(sd)).T], axis=0)
            return pt.dot(pt.as_tensor(self.F_full), P) + self.cst[:, None]
        cols = []
        for j in range(k):
            chol, _, _ = pm.LKJCholeskyCov(
                f"chol_{j + 1}",
                n=d,
                eta=np.float64(p.lkj_eta),
                sd_dist=pm.LogNormal.dist(mu=self._logsd_loc, sigma=np.float64(p.sd_log_sigma), shape=d),
                compute_corr=True,
                store_in_trace=False,
            )
            diff = pt.as_tensor(self.Xc) - muc[j]
            sol = pt.linalg.solve_triangular(chol, diff.T, lower=True)
            cols.append(-0.5 * pt.sum(pt.sqr(sol), axis=0) - pt.sum(pt.log(pt.diag(chol))) - 0.5 * d * _LOG_2PI)
        return pt.stack(cols, axis=1)

    def pymc_initvals(self, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Constrained starting values for the PyMC model from constrained parameters."""
        out = {"means": p["means"]}
        if self.k > 1:
            out["weights"] = p["weights"]
        if self.has_kernel:
            out["sds"] = p["sds"][0] if self.covariance == "EEI" else p["sds"]
        else:
            idx = np.tril_indices(self.d)
            for j in range(self.k):
                out[f"chol_{j + 1}"] = p["chols"][j][idx]
        return out

    def params_from_pymc(self, posterior: Any) -> dict[str, np.ndarray]:
        """Constrained draws (chain, draw, ...) from a PyMC / ArviZ posterior dataset."""
        means = np.asarray(posterior["means"].values, float)
        if self.k > 1:
            w = np.asarray(posterior["weights"].values, float)
        else:
            w = np.ones(means.shape[:-1])
        out = {"weights": w, "means": means}
        if self.has_kernel:
            sds = np.asarray(posterior["sds"].values, float)
            if self.covariance == "EEI":  # (chain, draw, d): the same sds for every segment
                sds = np.repeat(sds[..., None, :], self.k, axis=-2)
            out["sds"] = sds
        else:
            d = self.d
            idx = np.tril_indices(d)
            chols = []
            for j in range(self.k):
                packed = np.asarray(posterior[f"chol_{j + 1}"].values, float)
                L = np.zeros(packed.shape[:-1] + (d, d))
                L[..., idx[0], idx[1]] = packed
                chols.append(L)
            out["chols"] = np.stack(chols, axis=2)
        return out

    def pymc_point(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The PyMC model's unconstrained point equal to kernel vector ``theta``, keys in layout order (for tests)."""
        k, d = self.k, self.d
        a = k - 1
        out = {"weights_simplex__": theta[:a]} if k > 1 else {}
        out["means"] = theta[a : a + k * d].reshape(k, d) + self.center
        out["sds_log__"] = theta[a + k * d :] if self.covariance == "EEI" else theta[a + k * d :].reshape(k, d)
        return out

    # ------------------------------------------------------------------ summaries
    def log_component(self, p: dict[str, np.ndarray], rows: slice) -> np.ndarray:
        """``log p(x_n | segment j, theta_s)`` for draws (S, ...) and respondents ``rows``: (S, B, k)."""
        if self.has_kernel:
            muc = p["means"] - self.center  # (S, k, d)
            inv = 1.0 / np.square(p["sds"])
            P = np.concatenate([-0.5 * inv, muc * inv, -0.5 * muc * muc * inv - np.log(p["sds"])], axis=2)
            out = np.matmul(self.F_full[rows][None], np.swapaxes(P, 1, 2))
            out += self.cst[rows][None, :, None]
            return out
        chols = p["chols"]  # (S, k, d, d)
        d = self.d
        diff = self.Xc[rows][None, None, :, :] - (p["means"] - self.center)[:, :, None, :]  # (S, k, B, d)
        sol = np.linalg.solve(chols, np.swapaxes(diff, 2, 3))  # (S, k, d, B)
        logdet = np.log(np.diagonal(chols, axis1=2, axis2=3)).sum(axis=2)  # (S, k)
        out = -0.5 * np.square(sol).sum(axis=2) - logdet[:, :, None] - 0.5 * d * _LOG_2PI
        return np.swapaxes(out, 1, 2)

    def block_size(self, n_draws: int) -> int:
        """Respondents per block when computing memberships (bounded memory)."""
        per = n_draws * self.k * (self.d if self.covariance == "full" else 3) + 1
        return int(max(1, min(self.n, 4_000_000 // per)))

    def relabel_cost(self, p: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        """(S, k, k) cost of giving draw component ``i`` the reference label ``l``: squared
        distance of the means in column-sd units plus that of the log sds."""
        a = (p["means"] / self.scale)[:, :, None, :]
        b = (ref["means"] / self.scale)[None, None, :, :]
        cost = np.square(a - b).sum(axis=-1)
        ls, lr = np.log(self._sds(p)), np.log(self._sds(ref))
        cost += np.square(ls[:, :, None, :] - lr[None, None, :, :]).sum(axis=-1)
        return cost

    def _sds(self, p: dict[str, np.ndarray]) -> np.ndarray:
        if "sds" in p:
            return p["sds"]
        L = p["chols"]
        return np.sqrt(np.square(L).sum(axis=-1))

    def location_summary(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Per-segment features compared across chains to detect modes: standardised means."""
        return (p["means"] - self.center) / self.scale

    def centers(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Segment centers (..., k, d) in data units: the means."""
        return p["means"]

    def duplicates(self, mean_params: dict[str, np.ndarray]) -> list[tuple[int, int]]:
        """Pairs of segments (0-based) that are not distinct: means within 0.25 column sds (root
        mean square), or a separation ``D = sqrt(sum_d (mu_ad - mu_bd)^2 / ((s_ad^2 + s_bd^2) / 2))``
        (Ashman's D on the segments' own sds) below :data:`DUPLICATE_D`. Two equal-weight Gaussians
        form a bimodal mixture only when D > 2; the split halves of one segment (what an
        overfitted k produces) sit at about 1.4-1.6 in our simulations, distinct segments at 2 or
        more."""
        m = mean_params["means"] / self.scale
        var = np.square(self._sds(mean_params) / self.scale)
        out = []
        for a in range(self.k):
            for b in range(a + 1, self.k):
                diff2 = np.square(m[a] - m[b])
                sep = math.sqrt(float(np.sum(diff2 / np.maximum(0.5 * (var[a] + var[b]), 1e-300))))
                if math.sqrt(float(np.mean(diff2))) < 0.25 or sep < DUPLICATE_D:
                    out.append((a, b))
        return out

    def coords(self) -> dict[str, Any]:
        names = list(self.feature_names)
        return {"outcome": names, "outcome_bis": names}

    def diagnostic_variables(self, p: dict[str, np.ndarray]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Variables R-hat and ESS are computed on (after relabelling)."""
        out = {"weights": (("segment",), p["weights"]), "means": (("segment", "outcome"), p["means"])}
        out["sds"] = (("segment", "outcome"), self._sds(p))
        return out

    def params_from_result(self, result: Any, max_draws: int) -> dict[str, np.ndarray]:
        """Draws (T, ...) of the parameters from a fitted result's posterior (thinned to at most
        ``max_draws``), or its posterior means as a single draw when it has no posterior."""
        post = None if result.posterior is None else result.posterior["posterior"]
        if post is None:
            p = {"weights": np.asarray(result.params["weights"], float)[None], "means": np.asarray(result.params["means"], float)[None]}
            if "covariances" in result.params:
                p["chols"] = np.linalg.cholesky(np.asarray(result.params["covariances"], float))[None]
            else:
                p["sds"] = np.sqrt(np.asarray(result.params["variances"], float))[None]
            return p
        w = np.asarray(post["weights"].values, float)
        C, S = w.shape[:2]
        idx = np.unique(np.linspace(0, C * S - 1, min(C * S, max_draws)).astype(int))

        def take(name: str) -> np.ndarray:
            arr = np.asarray(post[name].values, float)
            return arr.reshape((C * S,) + arr.shape[2:])[idx]

        p = {"weights": take("weights"), "means": take("means")}
        if "covariances" in post:
            p["chols"] = np.linalg.cholesky(take("covariances"))
        else:
            p["sds"] = take("sds")
        return p

    def posterior_variables(self, p: dict[str, np.ndarray]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Variables of the posterior group: name -> (dims after chain/draw, values)."""
        out: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
            "weights": (("segment",), p["weights"]),
            "means": (("segment", "outcome"), p["means"]),
        }
        if self.has_kernel:
            out["sds"] = (("segment", "outcome"), p["sds"])
        else:
            L = p["chols"]
            out["covariances"] = (("segment", "outcome", "outcome_bis"), L @ np.swapaxes(L, -1, -2))
        return out

    def result_params(self, mean_params: dict[str, np.ndarray], p: dict[str, np.ndarray]) -> tuple[dict, dict]:
        """``params`` / ``shared_params`` of the result (posterior means), EM-compatible names."""
        params = {"weights": mean_params["weights"], "means": mean_params["means"]}
        if self.has_kernel:
            params["variances"] = np.square(p["sds"]).mean(axis=(0, 1))
            params["sds"] = mean_params["sds"]
        else:
            L = p["chols"]
            params["covariances"] = (L @ np.swapaxes(L, -1, -2)).mean(axis=(0, 1))
        return params, {}

    def extras(self, p: dict[str, np.ndarray], prob: float) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ prior predictive
    def sample_prior(self, rng: np.random.Generator, draws: int) -> dict[str, np.ndarray]:
        """Draws (draws, ...) of the parameters from the prior (numpy, the same distributions as
        the PyMC model)."""
        k, d = self.k, self.d
        pr = self.priors
        w = rng.dirichlet(np.full(k, pr.concentration), size=draws)
        means = self.center + self._mean_sd * rng.standard_normal((draws, k, d))
        sds = np.exp(self._logsd_loc + pr.sd_log_sigma * rng.standard_normal((draws, self.sd_rows, d)))
        sds = np.broadcast_to(sds, (draws, k, d)).copy()
        out = {"weights": w, "means": means, "sds": sds}
        if self.covariance == "full":
            corr = _lkj_draws(rng, draws * k, d, pr.lkj_eta).reshape(draws, k, d, d)
            cov = sds[..., :, None] * corr * sds[..., None, :]
            out["chols"] = np.linalg.cholesky(cov)
            del out["sds"]
        return out

    def simulate(self, p: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Data sets (draws, n, d) simulated from parameter draws (draws, ...)."""
        draws = p["weights"].shape[0]
        out = np.empty((draws, self.n, self.d))
        for s in range(draws):
            seg = rng.choice(self.k, size=self.n, p=p["weights"][s])
            eps = rng.standard_normal((self.n, self.d))
            if "chols" in p:
                eps = np.einsum("nde,ne->nd", p["chols"][s][seg], eps)
                out[s] = p["means"][s][seg] + eps
            else:
                out[s] = p["means"][s][seg] + p["sds"][s][seg] * eps
        return out

    def observed_matrix(self) -> np.ndarray:
        return self.X

    def observed_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """The data the model was fitted on, for the posterior tree's ``observed_data`` group:
        ``x`` (respondent, outcome), NaN where missing."""
        return {"x": (("respondent", "outcome"), np.array(self.X, dtype=float))}

    def predictive_statistics(self, observed: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
        """Observed column mean / sd / min / max against their prior predictive distribution."""
        funcs = {"mean": np.nanmean, "sd": np.nanstd, "min": np.nanmin, "max": np.nanmax}
        rows = []
        for stat, fn in funcs.items():
            obs = fn(observed, axis=0)
            sim = fn(sims, axis=1)  # (draws, d)
            lo, med, hi = np.quantile(sim, [0.025, 0.5, 0.975], axis=0)
            pct = (sim < obs[None, :]).mean(axis=0)
            for j, name in enumerate(self.feature_names):
                rows.append((stat, name, float(obs[j]), float(lo[j]), float(med[j]), float(hi[j]), float(pct[j])))
        return pd.DataFrame(
            rows, columns=["statistic", "feature", "observed", "prior_lower", "prior_median", "prior_upper", "percentile"]
        )


def _lkj_draws(rng: np.random.Generator, size: int, d: int, eta: float) -> np.ndarray:
    """Correlation matrices from LKJ(eta) by the onion method (Lewandowski, Kurowicka & Joe 2009)."""
    out = np.empty((size, d, d))
    for s in range(size):
        if d == 1:
            out[s] = 1.0
            continue
        beta = eta + (d - 2) / 2
        r12 = 2 * rng.beta(beta, beta) - 1
        L = np.zeros((d, d))
        L[0, 0] = 1.0
        L[1, 0] = r12
        L[1, 1] = math.sqrt(1 - r12 * r12)
        for m in range(2, d):
            beta -= 0.5
            y = rng.beta(m / 2, beta)
            u = rng.standard_normal(m)
            u /= np.linalg.norm(u)
            w = math.sqrt(y) * u
            L[m, :m] = w
            L[m, m] = math.sqrt(max(1 - y, 0.0))
        out[s] = L @ L.T
    return out
