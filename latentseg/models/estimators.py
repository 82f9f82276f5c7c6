"""scikit-learn face of the engines: estimators that drop into a Pipeline.

- :class:`GaussianMixtureSegmenter` over :func:`latentseg.models.gmm.fit_gmm`;
- :class:`KMeansSegmenter` over :func:`latentseg.models.kmeans.fit_kmeans`;
- :class:`LatentClassSegmenter` over :func:`latentseg.models.lca.fit_lca`;
- :class:`BayesianGaussianMixtureSegmenter` over
  :func:`latentseg.models.bayes.engine.fit_bayes_gmm`;
- :class:`BayesianLatentClassSegmenter` over :func:`latentseg.models.bayes.engine.fit_bayes_lca`.

Conventions (scikit-learn's): hyperparameters are set in ``__init__`` and only stored there;
``fit`` validates them through the engine and puts learned state in attributes ending in ``_``,
``result_`` holding the full :class:`~latentseg.SegmentationResult`. ``predict`` returns
0-based cluster labels as scikit-learn clusterers do: label ``j`` is segment ``j + 1`` of
``result_`` (segments numbered largest first).

Names. The number of segments is ``n_components`` and the Gaussian mixtures' covariance structure
``covariance_type``, as in :class:`sklearn.mixture.GaussianMixture`; ``covariance_type`` takes
scikit-learn's spellings (``"full"``, ``"tied"``, ``"diag"``, ``"spherical"``) and mclust's
(``"VVV"``, ``"EEE"``, ``"VVI"``, ``"VII"``, ``"EEI"``, ``"EII"``). ``k`` and ``covariance`` (the
spellings of :func:`latentseg.fit` and the config) are aliases, default ``None`` (not given).
``fit`` resolves them: an alias that is given wins over its name's *default* value (so
``GaussianMixtureSegmenter(k=2)`` fits 2 segments); a name and its alias both given with
different values (``n_components=4, k=2``; ``"diag"`` and ``"VVI"`` are the same structure) is a
:class:`~latentseg.errors.ConfigError`. A name given explicitly at its default value cannot be
told from the default: there the alias wins.

Seeds. ``random_state`` follows scikit-learn: None, an int, a :class:`numpy.random.RandomState`
or a :class:`numpy.random.Generator`. ``fit`` turns it, once, into the engines' one integer
``random_seed`` and records it in ``random_seed_``: an int is passed on unchanged (same int, same
fit as :func:`latentseg.fit`); a RandomState or Generator gives one draw (so each fit with the same
instance differs, as in scikit-learn); None draws from numpy's global RandomState (seeded by
``np.random.seed``).

``score(X)`` is the mean log-likelihood per respondent for the EM likelihood models (as
``GaussianMixture.score``), the mean log posterior predictive density per respondent for the
Bayesian ones (``log mean_s p(x | theta_s)`` over posterior draws: the ``lppd`` of WAIC, per
respondent) and minus the inertia for k-means (as ``KMeans.score``); ``bic`` and ``aic`` (lower
is better) exist for the EM likelihood models only: k-means has no likelihood, and latentseg does
not make one up; the Bayesian fits compare by ``loo_`` / ``waic_`` (PSIS-LOO and WAIC, higher is
better).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from latentseg.errors import ConfigError
from latentseg.result import SegmentationResult
from latentseg.models.families import BAYES_GMM, BAYES_LCA, GMM, KMEANS, LCA

__all__ = [
    "GaussianMixtureSegmenter",
    "KMeansSegmenter",
    "LatentClassSegmenter",
    "BayesianGaussianMixtureSegmenter",
    "BayesianLatentClassSegmenter",
]

#: the default number of segments of every estimator (``n_components``)
DEFAULT_N_COMPONENTS = 3
#: seeds drawn from a RandomState / Generator / numpy's global state lie in [0, SEED_MAX)
SEED_MAX = int(np.iinfo(np.int32).max)


def _seed(random_state: Any) -> int:
    """The engines' one integer ``random_seed`` from scikit-learn's ``random_state``.

    Examples
    --------
    >>> _seed(7), _seed(np.int64(7))
    (7, 7)
    >>> _seed(np.random.RandomState(0)) == _seed(np.random.RandomState(0))
    True
    >>> 0 <= _seed(np.random.default_rng(0)) < SEED_MAX
    True
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, (bool, np.bool_)):
        return int(random_state)
    if random_state is None:
        random_state = np.random.mtrand._rand  # numpy's global RandomState, as check_random_state(None)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(SEED_MAX))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(SEED_MAX))
    raise ConfigError(
        f"random_state must be None, an int, a numpy RandomState or a numpy Generator; got {random_state!r}."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and other odd values are never equal here
        return False


def _same_structure(a: Any, b: Any, d: int) -> bool:
    """Two covariance spellings name the same structure (``"diag"`` and ``"VVI"`` do)."""
    from latentseg.models.gmm import resolve_covariance

    def norm(x: Any) -> str:
        s = str(x).strip()
        if s.lower() == "auto":
            return "auto"
        try:
            return resolve_covariance(s, d)
        except ConfigError:
            return s
    return norm(a) == norm(b)


class _Segmenter(ClusterMixin, BaseEstimator):
    """Shared fit / predict plumbing. Subclasses set ``_model`` and ``_options()``."""

    _model = ""
    _allow_nan = False
    _keep_dtype = False  # True: categorical input is passed on as given (strings, categories)

    n_components: int
    k: int | None
    random_state: Any

    # ------------------------------------------------------------------ helpers
    def _options(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _validate(self, X: Any, reset: bool) -> Any:
        Xv = validate_data(
            self,
            X,
            reset=reset,
            dtype=None if self._keep_dtype else "numeric",
            ensure_all_finite="allow-nan" if self._allow_nan else True,
        )
        if isinstance(X, pd.DataFrame):
            return X  # keeps the respondent ids (index) and categorical order
        if not self._keep_dtype:
            return np.asarray(Xv, dtype=float)
        return Xv

    def _engine(self) -> Any:
        from latentseg.models.families import family

        return family(self._model).engine()

    @staticmethod
    def _alias(name: str, value: Any, alias: str, alias_value: Any, default: Any, same: Any = None) -> Any:
        """The value of a parameter given by its name or its alias (see the module notes)."""
        if alias_value is None:
            return value
        equal = same(value, alias_value) if same is not None else _eq(value, alias_value)
        if value is default or _eq(value, default) or equal:
            return alias_value
        raise ConfigError(
            f"{name}={value!r} and its alias {alias}={alias_value!r} disagree; give one of them "
            f"(set {alias}=None to use {name})."
        )

    def _n_components(self) -> Any:
        return self._alias("n_components", self.n_components, "k", self.k, DEFAULT_N_COMPONENTS)

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any = None) -> _Segmenter:
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n, d)
        y : ignored

        Returns
        -------
        self
        """
        return self._fit(X, None)

    def _fit(self, X: Any, sample_weight: Any) -> _Segmenter:
        from latentseg.models import fit

        k = self._n_components()
        seed = _seed(self.random_state)
        data = self._validate(X, reset=True)
        n = len(data)
        if _is_int(k) and 1 <= k and n < k:
            raise ConfigError(f"k = {k} segments need at least {k} respondents; got n_samples = {n}.")
        if n < 2:
            raise ConfigError(f"A segmentation needs at least 2 respondents; got n_samples = {n}.")
        options = self._options()
        if sample_weight is not None:  # only when given: an engine without weights keeps working
            options["sample_weight"] = sample_weight
        result: SegmentationResult = fit(data, self._model, k, random_seed=seed, **options)
        self.result_ = result
        self.random_seed_ = seed
        self.labels_ = (result.assignment - 1).astype(np.int64)
        self.weights_ = np.asarray(result.shares, dtype=float)
        self.converged_ = bool(result.converged)
        self._set_learned(result)
        return self

    def _set_learned(self, result: SegmentationResult) -> None:
        """Model-specific learned attributes."""

    def predict_proba(self, X: Any) -> np.ndarray:
        """Membership probabilities, shape (n, k); column ``j`` is segment ``j + 1``."""
        check_is_fitted(self, "result_")
        data = self._validate(X, reset=False)
        return np.asarray(self._engine().predict_proba(self.result_, data), dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        """Most likely segment, as a 0-based label (segment number minus one), shape (n,)."""
        return np.argmax(self.predict_proba(X), axis=1).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit and return the training labels (0-based), shape (n,)."""
        return self.fit(X, **kwargs).labels_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        return tags


class _EMSegmenter(_Segmenter):
    """The EM engines report their iterations and take survey weights."""

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> _Segmenter:  # type: ignore[override]
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n, d)
        y : ignored
        sample_weight : array-like, shape (n,), optional
            Survey weights, passed to the engine as given: positive and finite (a weight of 2
            counts a respondent twice; zero weights are refused: drop those respondents, as a
            survey's cleaning report would). Shares and their intervals are then weighted.

        Returns
        -------
        self
        """
        return self._fit(X, sample_weight)

    def _set_learned(self, result: SegmentationResult) -> None:
        self.n_iter_ = int(result.diagnostics.get("n_iter", 0))


class _LikelihoodSegmenter(_EMSegmenter):
    """score / bic / aic from the engine's per-respondent log-likelihood."""

    def _loglik(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood of each respondent, shape (n,)."""
        check_is_fitted(self, "result_")
        return self._loglik(self._validate(X, reset=False))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood per respondent (higher is better); with ``sample_weight`` the
        weighted mean (as scikit-learn's and StepMix's ``score``)."""
        ll = self.score_samples(X)
        return float(np.mean(ll) if sample_weight is None else np.average(ll, weights=sample_weight))

    def _total(self, X: Any, sample_weight: Any) -> tuple[float, int]:
        ll = self.score_samples(X)
        return (float(ll.sum()) if sample_weight is None else float(ll @ np.asarray(sample_weight, float))), ll.size

    def bic(self, X: Any, sample_weight: Any = None) -> float:
        """BIC = -2 log L + p ln n on ``X`` (lower is better); with ``sample_weight`` log L is the
        pseudo-log-likelihood and n the number of rows (docs/methods.md, "Survey weights (EM)")."""
        total, n = self._total(X, sample_weight)
        return float(-2 * total + self.n_params_ * np.log(n))

    def aic(self, X: Any, sample_weight: Any = None) -> float:
        """AIC = -2 log L + 2 p on ``X`` (lower is better; pseudo-log-likelihood with weights)."""
        return float(-2 * self._total(X, sample_weight)[0] + 2 * self.n_params_)

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self.n_params_ = int(result.criteria["n_params"])
        self.loglik_ = float(result.criteria["loglik"])


class _GaussianMixin:
    """``covariance_type`` / ``covariance``, ``means_`` and ``covariances_`` of a Gaussian mixture."""

    covariance_type: str
    covariance: str | None
    _default_covariance = "diag"

    def _covariance(self) -> str:
        d = int(getattr(self, "n_features_in_", 2))
        return _Segmenter._alias(
            "covariance_type", self.covariance_type, "covariance", self.covariance, self._default_covariance,
            same=lambda a, b: _same_structure(a, b, d),
        )

    def _set_means(self, result: SegmentationResult) -> None:
        self.means_ = np.asarray(result.params["means"])
        for key in ("variances", "covariances"):
            if key in result.params:
                self.covariances_ = np.asarray(result.params[key])
        for key in ("variances", "covariance"):
            if key in result.shared_params:
                self.covariances_ = np.asarray(result.shared_params[key])


class _CategoricalMixin:
    """Categorical indicators: a DataFrame is passed on as it is, other input as a DataFrame of
    codes or labels named like the fitted columns."""

    _allow_nan = True
    _keep_dtype = True

    def _validate(self, X: Any, reset: bool) -> Any:
        data = super()._validate(X, reset)  # type: ignore[misc]
        if isinstance(data, pd.DataFrame):
            return data
        names = getattr(self, "feature_names_in_", None)
        cols = [str(c) for c in names] if names is not None else [f"x{j + 1}" for j in range(data.shape[1])]
        return pd.DataFrame(data, columns=cols)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


# ====================================================================================== GMM
class GaussianMixtureSegmenter(_GaussianMixin, _LikelihoodSegmenter):
    """Gaussian mixture segmentation (latent profile model) as a scikit-learn estimator.

    Parameters
    ----------
    n_components : int, default 3
        Number of segments.
    covariance_type : str, default "diag"
        The structure: scikit-learn's ``"spherical"``, ``"diag"``, ``"tied"``, ``"full"`` (mclust
        ``VII, VVI, EEE, VVV``) or mclust's ``EII, VII, EEI, VVI, EEE, VVV``, or ``"auto"`` (EEI or
        VVI, whichever has the lower BIC). ``"diag"`` is mclust's VVI: each segment its own
        variances.
    n_init : int, default 10
    init : {"both", "kmeans++", "random"}, default "both"
    max_iter : int, default 500
    tol : float, default 1e-6
    reg_covar : float, default 1e-6
    random_state : None, int, RandomState or Generator, default None
        Turned into the engine's ``random_seed`` (recorded in ``random_seed_``).
    k : int, optional
        Alias of ``n_components`` (wins over its default; both given and different: an error).
    covariance : str, optional
        Alias of ``covariance_type``, as ``k``.

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
        0-based training labels.
    weights_ : ndarray, shape (k,)
    means_ : ndarray, shape (k, d)
    covariances_ : ndarray, shape (k, d) or (d,) or (k, d, d) or (d, d)
        Variances (diagonal structures) or covariance matrices, per segment or shared.
    random_seed_ : int
        The seed the engine was given.
    converged_, n_iter_, n_params_, loglik_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(5, 1, (20, 2))]
    >>> pipe = make_pipeline(StandardScaler(), GaussianMixtureSegmenter(n_components=2, random_state=0)).fit(X)
    >>> np.bincount(pipe.predict(X)).tolist()
    [40, 20]
    >>> GaussianMixtureSegmenter(k=2, covariance="VVV", random_state=0).fit(X).covariances_.shape
    (2, 2, 2)
    """

    _model = GMM
    _allow_nan = True

    def __init__(
        self,
        n_components: int = DEFAULT_N_COMPONENTS,
        *,
        covariance_type: str = "diag",
        n_init: int = 10,
        init: str = "both",
        max_iter: int = 500,
        tol: float = 1e-6,
        reg_covar: float = 1e-6,
        random_state: Any = None,
        k: int | None = None,
        covariance: str | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.k = k
        self.covariance = covariance

    def _options(self) -> dict[str, Any]:
        return {
            "covariance": self._covariance(),
            "n_init": self.n_init,
            "init": self.init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "reg_covar": self.reg_covar,
        }

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self._set_means(result)

    def _loglik(self, data: Any) -> np.ndarray:
        from latentseg.models.gmm import log_likelihood

        return log_likelihood(self.result_, data)


# ====================================================================================== k-means
class KMeansSegmenter(_EMSegmenter):
    """k-means segmentation as a scikit-learn estimator.

    Parameters
    ----------
    n_components : int, default 3
        Number of segments.
    n_init : int, default 10
    bootstrap : int, default 0
        Bootstrap resamples for share intervals (0: Wilson intervals).
    standardize : bool, default False
    random_state : None, int, RandomState or Generator, default None
    k : int, optional
        Alias of ``n_components`` (wins over its default; both given and different: an error).

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
    cluster_centers_ : ndarray, shape (k, d)
        Segment means in the units of ``X``.
    inertia_ : float
    weights_, converged_, n_iter_, random_seed_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> X = np.array([[0.0], [0.3], [9.0], [9.4], [9.1]])
    >>> KMeansSegmenter(n_components=2, random_state=0).fit(X).labels_.tolist()
    [1, 1, 0, 0, 0]
    """

    _model = KMEANS

    def __init__(
        self,
        n_components: int = DEFAULT_N_COMPONENTS,
        *,
        n_init: int = 10,
        bootstrap: int = 0,
        standardize: bool = False,
        random_state: Any = None,
        k: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_init = n_init
        self.bootstrap = bootstrap
        self.standardize = standardize
        self.random_state = random_state
        self.k = k

    def _options(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "bootstrap": self.bootstrap, "standardize": self.standardize}

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self.cluster_centers_ = np.asarray(result.centers)
        self.inertia_ = float(result.criteria["inertia"])

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the sum of squared distances to the nearest center (as ``KMeans.score``)."""
        check_is_fitted(self, "result_")
        data = np.asarray(self._validate(X, reset=False), dtype=float)
        shared = self.result_.shared_params
        if "scale_mean" in shared:
            data = (data - shared["scale_mean"]) / shared["scale_sd"]
        C = np.asarray(self.result_.params["centers"])
        d2 = ((data[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
        return float(-d2.min(axis=1).sum())


# ====================================================================================== LCA
class LatentClassSegmenter(_CategoricalMixin, _LikelihoodSegmenter):
    """Latent class segmentation of categorical indicators as a scikit-learn estimator.

    A thin wrapper over :func:`latentseg.models.lca.fit_lca`; a DataFrame is passed on as it is
    (keeping ordered categories and respondent ids), other input as an array of category codes
    or labels.

    Parameters
    ----------
    n_components : int, default 3
        Number of segments.
    measurement : {"categorical", "binary", "ordinal"}, default "categorical"
    n_init : int, default 20
    max_iter : int, default 1000
    tol : float, default 1e-8
    prior : float, default 0.0
    init : {"partition", "dirichlet"}, default "partition"
    random_state : None, int, RandomState or Generator, default None
    k : int, optional
        Alias of ``n_components`` (wins over its default; both given and different: an error).

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
    probs_ : ndarray, shape (k, J, Cmax)
        Item-response probabilities (NaN-padded).
    weights_, converged_, n_iter_, n_params_, loglik_, random_seed_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> df = pd.DataFrame({"q1": list("aabb" * 10), "q2": list("xxyy" * 10), "q3": list("uuvv" * 10)})
    >>> est = LatentClassSegmenter(n_components=2, n_init=3, random_state=0).fit(df)
    >>> est.probs_.shape
    (2, 3, 2)
    """

    _model = LCA

    def __init__(
        self,
        n_components: int = DEFAULT_N_COMPONENTS,
        *,
        measurement: str = "categorical",
        n_init: int = 20,
        max_iter: int = 1000,
        tol: float = 1e-8,
        prior: float = 0.0,
        init: str = "partition",
        random_state: Any = None,
        k: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.measurement = measurement
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.prior = prior
        self.init = init
        self.random_state = random_state
        self.k = k

    def _options(self) -> dict[str, Any]:
        return {
            "measurement": self.measurement,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "prior": self.prior,
            "init": self.init,
        }

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self.probs_ = np.asarray(result.params["probs"])

    def _loglik(self, data: Any) -> np.ndarray:
        from latentseg.models.lca import log_likelihood

        return np.asarray(log_likelihood(self.result_, data, per_respondent=True), dtype=float)


# ====================================================================================== Bayesian
class _BayesianSegmenter(_Segmenter):
    """MCMC options, posterior attributes and the posterior predictive score."""

    draws: int
    tune: int
    chains: int
    sampler: str
    target_accept: float
    n_init: int
    advi_iterations: int
    keep_log_likelihood: bool | None
    progressbar: bool
    cores: int | None
    max_draws: int | None

    def _mcmc_options(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "sampler": self.sampler,
            "target_accept": self.target_accept,
            "n_init": self.n_init,
            "advi_iterations": self.advi_iterations,
            "keep_log_likelihood": self.keep_log_likelihood,
            "progressbar": self.progressbar,
            "cores": self.cores,
            "max_draws": self.max_draws,
        }

    def _set_learned(self, result: SegmentationResult) -> None:
        self.weights_interval_ = np.column_stack([result.share_lower, result.share_upper]).astype(float)
        self.loo_ = float(result.criteria.get("loo", np.nan))
        self.waic_ = float(result.criteria.get("waic", np.nan))

    def score_samples(self, X: Any) -> np.ndarray:
        """Log posterior predictive density of each respondent, ``log mean_s p(x | theta_s)``
        over (up to 500, evenly thinned) posterior draws, shape (n,)."""
        check_is_fitted(self, "result_")
        return _posterior_loglik(self.result_, self._validate(X, reset=False))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log posterior predictive density per respondent (higher is better)."""
        return float(np.mean(self.score_samples(X)))


def _posterior_loglik(result: SegmentationResult, data: Any, max_draws: int = 500) -> np.ndarray:
    """``log mean_s p(x_n | theta_s)`` per respondent over the posterior draws that
    :func:`latentseg.models.bayes.engine.predict_proba` uses (the fit's scoring family)."""
    from scipy.special import logsumexp

    if result.model == BAYES_GMM:
        from latentseg.models.bayes.gmm import GaussianFamily as Family
    else:
        from latentseg.models.bayes.lca import LatentClassFamily as Family  # type: ignore[assignment]
    fam = Family.for_scoring(result, data)
    p = fam.params_from_result(result, max_draws)
    logw = np.log(np.clip(np.asarray(p["weights"], dtype=float), 1e-300, None))  # (T, k)
    T, n = logw.shape[0], fam.n
    out = np.empty(n)
    step = fam.block_size(T)
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        ll = logsumexp(np.asarray(fam.log_component(p, rows), dtype=float) + logw[:, None, :], axis=2)  # (T, B)
        out[rows] = logsumexp(ll, axis=0) - np.log(T)
    return out


class BayesianGaussianMixtureSegmenter(_GaussianMixin, _BayesianSegmenter):
    """Bayesian Gaussian mixture segmentation (MCMC in PyMC / nutpie) as a scikit-learn estimator.

    A wrapper over :func:`latentseg.models.bayes.engine.fit_bayes_gmm`: ``predict_proba`` gives
    posterior membership probabilities (the posterior mean over draws), ``result_`` the whole
    fit (posterior, diagnostics, credible intervals). Every fit is an MCMC run: seconds, not
    milliseconds.

    Parameters
    ----------
    n_components : int, default 3
        Number of segments.
    covariance_type : str, default "diag"
        ``"diag"`` (mclust VVI), ``"EEI"`` (diagonal, shared), ``"full"`` (VVV) or ``"auto"``
        (EEI or VVI by BIC); mclust's spellings of these work too. No ``"tied"`` or
        ``"spherical"`` (a ConfigError at fit).
    draws, tune : int, default 1000, 1000
        Draws and warm-up iterations per chain of the first block; chains extended by the
        convergence rule are stored thinned to ``draws`` per chain, or to 2 or 4 times that where
        the rule needs it on the stored draws (``docs/priors.md``).
    chains : int, default 4
    sampler : {"nutpie", "pymc", "numpyro", "advi"}, default "nutpie"
    concentration, mean_scale, sd_scale, sd_log_sigma, lkj_eta : float
        Priors (``docs/priors.md``), defaults 1.0, 2.0, 0.5, 1.0, 2.0.
    target_accept : float, default 0.8
    n_init : int, default 10
        Random starts of the EM fit that starts the chains.
    advi_iterations : int, default 20000
    keep_log_likelihood : bool, optional
    progressbar : bool, default False
    cores : int, optional
    max_draws : int, optional
        The chains' budget in draws per chain: chains that have not converged (R-hat, bulk ESS)
        are extended up to it (default 30 x ``draws``; ``max_draws=draws`` never extends;
        ``docs/priors.md``).
    random_state : None, int, RandomState or Generator, default None
        Turned into the engine's ``random_seed`` (recorded in ``random_seed_``).
    k : int, optional
        Alias of ``n_components`` (wins over its default; both given and different: an error).
    covariance : str, optional
        Alias of ``covariance_type``, as ``k``.

    Attributes
    ----------
    result_ : SegmentationResult
        ``result_.posterior`` is the relabelled posterior (an ``xarray.DataTree``).
    labels_ : ndarray, shape (n,)
        0-based training labels (the largest posterior mean membership).
    weights_ : ndarray, shape (k,)
        Posterior mean shares; ``weights_interval_`` (k, 2) their 95% credible intervals.
    means_, covariances_ : ndarray
        Posterior means.
    loo_, waic_ : float
        PSIS-LOO and WAIC (elpd, log scale: higher is better).
    converged_ : bool
        R-hat, divergences and modes all fine (``result_.diagnostics`` says more).
    random_seed_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    >>> est = BayesianGaussianMixtureSegmenter(2, draws=200, tune=200, chains=2, random_state=1).fit(X)
    >>> est.weights_.round(1).tolist(), est.predict_proba([[5.0, 5.0]]).round(2).tolist()
    ([0.6, 0.4], [[0.0, 1.0]])
    """

    _model = BAYES_GMM
    _allow_nan = True

    def __init__(
        self,
        n_components: int = DEFAULT_N_COMPONENTS,
        *,
        covariance_type: str = "diag",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        sampler: str = "nutpie",
        concentration: float = 1.0,
        mean_scale: float = 2.0,
        sd_scale: float = 0.5,
        sd_log_sigma: float = 1.0,
        lkj_eta: float = 2.0,
        target_accept: float = 0.8,
        n_init: int = 10,
        advi_iterations: int = 20000,
        keep_log_likelihood: bool | None = None,
        progressbar: bool = False,
        cores: int | None = None,
        max_draws: int | None = None,
        random_state: Any = None,
        k: int | None = None,
        covariance: str | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.sampler = sampler
        self.concentration = concentration
        self.mean_scale = mean_scale
        self.sd_scale = sd_scale
        self.sd_log_sigma = sd_log_sigma
        self.lkj_eta = lkj_eta
        self.target_accept = target_accept
        self.n_init = n_init
        self.advi_iterations = advi_iterations
        self.keep_log_likelihood = keep_log_likelihood
        self.progressbar = progressbar
        self.cores = cores
        self.max_draws = max_draws
        self.random_state = random_state
        self.k = k
        self.covariance = covariance

    def _options(self) -> dict[str, Any]:
        return {
            "covariance": self._covariance(),
            "concentration": self.concentration,
            "mean_scale": self.mean_scale,
            "sd_scale": self.sd_scale,
            "sd_log_sigma": self.sd_log_sigma,
            "lkj_eta": self.lkj_eta,
            **self._mcmc_options(),
        }

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self._set_means(result)


class BayesianLatentClassSegmenter(_CategoricalMixin, _BayesianSegmenter):
    """Bayesian latent class segmentation (MCMC) of categorical indicators as a scikit-learn
    estimator.

    A wrapper over :func:`latentseg.models.bayes.engine.fit_bayes_lca`; input as for
    :class:`LatentClassSegmenter`, ``predict_proba`` the posterior membership probabilities.

    Parameters
    ----------
    n_components : int, default 3
        Number of segments.
    measurement : {"categorical", "ordinal"}, default "categorical"
    draws, tune, chains, sampler, target_accept, advi_iterations, keep_log_likelihood, progressbar, cores, max_draws
        As in :class:`BayesianGaussianMixtureSegmenter`.
    concentration, item_concentration : float, default 1.0
    location_scale, threshold_scale : float, default 2.5
        Priors (``docs/priors.md``).
    n_init : int, default 20
        Random starts of the EM fit that starts the chains.
    random_state : None, int, RandomState or Generator, default None
    k : int, optional
        Alias of ``n_components`` (wins over its default; both given and different: an error).

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
    probs_ : ndarray, shape (k, J, Cmax)
        Posterior mean item-response probabilities (NaN-padded).
    weights_, weights_interval_, loo_, waic_, converged_, random_seed_, n_features_in_, feature_names_in_
        As in :class:`BayesianGaussianMixtureSegmenter`.

    Examples
    --------
    >>> df = pd.DataFrame({"q1": list("aabbaabbab" * 6), "q2": list("xxyyxxyyxy" * 6),
    ...                    "q3": list("uuvvuuvvuv" * 6)})
    >>> est = BayesianLatentClassSegmenter(2, draws=200, tune=200, chains=2, random_state=1).fit(df)
    >>> est.probs_.shape, est.predict_proba(df.head(3)).shape
    ((2, 3, 2), (3, 2))
    """

    _model = BAYES_LCA

    def __init__(
        self,
        n_components: int = DEFAULT_N_COMPONENTS,
        *,
        measurement: str = "categorical",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        sampler: str = "nutpie",
        concentration: float = 1.0,
        item_concentration: float = 1.0,
        location_scale: float = 2.5,
        threshold_scale: float = 2.5,
        target_accept: float = 0.8,
        n_init: int = 20,
        advi_iterations: int = 20000,
        keep_log_likelihood: bool | None = None,
        progressbar: bool = False,
        cores: int | None = None,
        max_draws: int | None = None,
        random_state: Any = None,
        k: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.measurement = measurement
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.sampler = sampler
        self.concentration = concentration
        self.item_concentration = item_concentration
        self.location_scale = location_scale
        self.threshold_scale = threshold_scale
        self.target_accept = target_accept
        self.n_init = n_init
        self.advi_iterations = advi_iterations
        self.keep_log_likelihood = keep_log_likelihood
        self.progressbar = progressbar
        self.cores = cores
        self.max_draws = max_draws
        self.random_state = random_state
        self.k = k

    def _options(self) -> dict[str, Any]:
        return {
            "measurement": self.measurement,
            "concentration": self.concentration,
            "item_concentration": self.item_concentration,
            "location_scale": self.location_scale,
            "threshold_scale": self.threshold_scale,
            **self._mcmc_options(),
        }

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self.probs_ = np.asarray(result.params["probs"])
