"""scikit-learn face of the engines: estimators that drop into a Pipeline.

- :class:`GaussianMixtureSegmenter` over :func:`latentseg.models.gmm.fit_gmm`;
- :class:`KMeansSegmenter` over :func:`latentseg.models.kmeans.fit_kmeans`;
- :class:`LatentClassSegmenter` over :func:`latentseg.models.lca.fit_lca`.

Conventions (scikit-learn's): hyperparameters are set in ``__init__`` and only stored there;
``fit`` validates them through the engine and puts learned state in attributes ending in ``_``,
``result_`` holding the full :class:`~latentseg.SegmentationResult`. ``predict`` returns
0-based cluster labels as scikit-learn clusterers do: label ``j`` is segment ``j + 1`` of
``result_`` (segments numbered largest first). The seed is scikit-learn's ``random_state``
(an int or None), passed to the engine as its ``random_seed``.

``score(X)`` is the mean log-likelihood per respondent for the likelihood models (as
``GaussianMixture.score``) and minus the inertia for k-means (as ``KMeans.score``); ``bic`` and
``aic`` (lower is better) exist for the likelihood models only: k-means has no likelihood, and
latentseg does not make one up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from latentseg.errors import ConfigError
from latentseg.result import SegmentationResult
from latentseg.models.families import GMM, KMEANS, LCA

__all__ = ["GaussianMixtureSegmenter", "KMeansSegmenter", "LatentClassSegmenter"]


def _seed(random_state: Any) -> int | None:
    if random_state is None or isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return None if random_state is None else int(random_state)
    raise ConfigError(f"random_state must be an int or None; got {random_state!r}.")


class _Segmenter(ClusterMixin, BaseEstimator):
    """Shared fit / predict plumbing. Subclasses set ``_model`` and ``_options()``."""

    _model = ""
    _allow_nan = False
    _keep_dtype = False  # True: categorical input is passed on as given (strings, categories)

    k: int
    random_state: int | None

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
        from latentseg.models import fit

        data = self._validate(X, reset=True)
        n = len(data)
        if isinstance(self.k, (int, np.integer)) and not isinstance(self.k, bool) and 1 <= self.k and n < self.k:
            raise ConfigError(
                f"k = {self.k} segments need at least {self.k} respondents; got n_samples = {n}."
            )
        result: SegmentationResult = fit(data, self._model, self.k, random_seed=_seed(self.random_state), **self._options())
        self.result_ = result
        self.labels_ = (result.assignment - 1).astype(np.int64)
        self.weights_ = np.asarray(result.shares, dtype=float)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.diagnostics.get("n_iter", 0))
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
        return self.fit(X).labels_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        return tags


class _LikelihoodSegmenter(_Segmenter):
    """score / bic / aic from the engine's per-respondent log-likelihood."""

    def _loglik(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood of each respondent, shape (n,)."""
        check_is_fitted(self, "result_")
        return self._loglik(self._validate(X, reset=False))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per respondent (higher is better)."""
        return float(np.mean(self.score_samples(X)))

    def bic(self, X: Any) -> float:
        """BIC = -2 log L + p ln n on ``X`` (lower is better)."""
        ll = self.score_samples(X)
        return float(-2 * ll.sum() + self.n_params_ * np.log(ll.size))

    def aic(self, X: Any) -> float:
        """AIC = -2 log L + 2 p on ``X`` (lower is better)."""
        return float(-2 * self.score_samples(X).sum() + 2 * self.n_params_)

    def _set_learned(self, result: SegmentationResult) -> None:
        self.n_params_ = int(result.criteria["n_params"])
        self.loglik_ = float(result.criteria["loglik"])


# ====================================================================================== GMM
class GaussianMixtureSegmenter(_LikelihoodSegmenter):
    """Gaussian mixture segmentation (latent profile model) as a scikit-learn estimator.

    Parameters
    ----------
    k : int, default 3
        Number of segments.
    covariance : str, default "VVI"
        mclust structure (``EII, VII, EEI, VVI, EEE, VVV``; ``spherical, diag, tied, full``).
    n_init : int, default 10
    init : {"both", "kmeans++", "random"}, default "both"
    max_iter : int, default 500
    tol : float, default 1e-6
    reg_covar : float, default 1e-6
    random_state : int, optional
        Seed (the engine's ``random_seed``).

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
        0-based training labels.
    weights_ : ndarray, shape (k,)
    means_ : ndarray, shape (k, d)
    covariances_ : ndarray, shape (k, d) or (d,) or (k, d, d) or (d, d)
        Variances (diagonal structures) or covariance matrices, per segment or shared.
    converged_, n_iter_, n_params_, loglik_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(5, 1, (20, 2))]
    >>> pipe = make_pipeline(StandardScaler(), GaussianMixtureSegmenter(k=2, random_state=0)).fit(X)
    >>> np.bincount(pipe.predict(X)).tolist()
    [40, 20]
    """

    _model = GMM
    _allow_nan = True

    def __init__(
        self,
        k: int = 3,
        *,
        covariance: str = "VVI",
        n_init: int = 10,
        init: str = "both",
        max_iter: int = 500,
        tol: float = 1e-6,
        reg_covar: float = 1e-6,
        random_state: int | None = None,
    ) -> None:
        self.k = k
        self.covariance = covariance
        self.n_init = n_init
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.random_state = random_state

    def _options(self) -> dict[str, Any]:
        return {
            "covariance": self.covariance,
            "n_init": self.n_init,
            "init": self.init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "reg_covar": self.reg_covar,
        }

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self.means_ = np.asarray(result.params["means"])
        for key in ("variances", "covariances"):
            if key in result.params:
                self.covariances_ = np.asarray(result.params[key])
        for key in ("variances", "covariance"):
            if key in result.shared_params:
                self.covariances_ = np.asarray(result.shared_params[key])

    def _loglik(self, data: Any) -> np.ndarray:
        from latentseg.models.gmm import log_likelihood

        return log_likelihood(self.result_, data)


# ====================================================================================== k-means
class KMeansSegmenter(_Segmenter):
    """k-means segmentation as a scikit-learn estimator.

    Parameters
    ----------
    k : int, default 3
    n_init : int, default 10
    bootstrap : int, default 0
        Bootstrap resamples for share intervals (0: Wilson intervals).
    standardize : bool, default False
    random_state : int, optional

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
    cluster_centers_ : ndarray, shape (k, d)
        Segment means in the units of ``X``.
    inertia_ : float
    weights_, converged_, n_iter_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> X = np.array([[0.0], [0.3], [9.0], [9.4], [9.1]])
    >>> KMeansSegmenter(k=2, random_state=0).fit(X).labels_.tolist()
    [1, 1, 0, 0, 0]
    """

    _model = KMEANS

    def __init__(
        self,
        k: int = 3,
        *,
        n_init: int = 10,
        bootstrap: int = 0,
        standardize: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.k = k
        self.n_init = n_init
        self.bootstrap = bootstrap
        self.standardize = standardize
        self.random_state = random_state

    def _options(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "bootstrap": self.bootstrap, "standardize": self.standardize}

    def _set_learned(self, result: SegmentationResult) -> None:
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
class LatentClassSegmenter(_LikelihoodSegmenter):
    """Latent class segmentation of categorical indicators as a scikit-learn estimator.

    A thin wrapper over :func:`latentseg.models.lca.fit_lca`; a DataFrame is passed on as it is
    (keeping ordered categories and respondent ids), other input as an array of category codes
    or labels.

    Parameters
    ----------
    k : int, default 3
    measurement : {"categorical", "binary", "ordinal"}, default "categorical"
    n_init : int, default 20
    max_iter : int, default 1000
    tol : float, default 1e-8
    prior : float, default 0.0
    init : {"partition", "dirichlet"}, default "partition"
    random_state : int, optional

    Attributes
    ----------
    result_ : SegmentationResult
    labels_ : ndarray, shape (n,)
    probs_ : ndarray, shape (k, J, Cmax)
        Item-response probabilities (NaN-padded).
    weights_, converged_, n_iter_, n_params_, loglik_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> df = pd.DataFrame({"q1": list("aabb" * 10), "q2": list("xxyy" * 10), "q3": list("uuvv" * 10)})
    >>> est = LatentClassSegmenter(k=2, n_init=3, random_state=0).fit(df)
    >>> est.probs_.shape
    (2, 3, 2)
    """

    _model = LCA
    _allow_nan = True
    _keep_dtype = True

    def __init__(
        self,
        k: int = 3,
        *,
        measurement: str = "categorical",
        n_init: int = 20,
        max_iter: int = 1000,
        tol: float = 1e-8,
        prior: float = 0.0,
        init: str = "partition",
        random_state: int | None = None,
    ) -> None:
        self.k = k
        self.measurement = measurement
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.prior = prior
        self.init = init
        self.random_state = random_state

    def _options(self) -> dict[str, Any]:
        return {
            "measurement": self.measurement,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "prior": self.prior,
            "init": self.init,
        }

    def _validate(self, X: Any, reset: bool) -> Any:
        data = super()._validate(X, reset)
        if isinstance(data, pd.DataFrame):
            return data
        names = getattr(self, "feature_names_in_", None)
        cols = [str(c) for c in names] if names is not None else [f"x{j + 1}" for j in range(data.shape[1])]
        return pd.DataFrame(data, columns=cols)

    def _set_learned(self, result: SegmentationResult) -> None:
        super()._set_learned(result)
        self.probs_ = np.asarray(result.params["probs"])

    def _loglik(self, data: Any) -> np.ndarray:
        from latentseg.models.lca import log_likelihood

        return np.asarray(log_likelihood(self.result_, data, per_respondent=True), dtype=float)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
