"""Segmentation engines behind one dispatcher.

``fit(data, model, k, random_seed=..., **options)`` returns a :class:`~latentseg.SegmentationResult`
for any family; ``predict_proba(result, data)`` scores new respondents against it. Engines are
imported lazily (the Bayesian ones import PyMC), so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from latentseg.errors import ConfigError

__all__ = ["MODELS", "fit", "predict_proba", "engine"]

#: model name -> (module, fit function). Each module also defines ``predict_proba(result, data)``.
MODELS: dict[str, tuple[str, str]] = {
    "kmeans": ("latentseg.models.kmeans", "fit_kmeans"),
    "gmm": ("latentseg.models.gmm", "fit_gmm"),
    "lca": ("latentseg.models.lca", "fit_lca"),
    "bayes-gmm": ("latentseg.models.bayes.engine", "fit_bayes_gmm"),
    "bayes-lca": ("latentseg.models.bayes.engine", "fit_bayes_lca"),
}


def engine(model: str) -> Any:
    """The engine module for a model name (imported on first use)."""
    if model not in MODELS:
        raise ConfigError(f"Unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    return importlib.import_module(MODELS[model][0])


def fit(data: Any, model: str, k: int, *, random_seed: int | None = None, **options: Any) -> Any:
    """Fit one model family with ``k`` segments.

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        Numeric (``kmeans``, ``gmm``, ``bayes-gmm``) or categorical (``lca``, ``bayes-lca``).
    model : {"kmeans", "gmm", "lca", "bayes-gmm", "bayes-lca"}
    k : int
        Number of segments.
    random_seed : int, optional
        The one seed; same seed, same result.
    **options
        Passed to the engine (``covariance=``, ``n_init=``, ``draws=`` ...).

    Returns
    -------
    SegmentationResult

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 5] + np.random.default_rng(0).normal(size=(40, 2))
    >>> fit(X, "kmeans", 2, random_seed=0).k
    2
    """
    mod = engine(model)
    return getattr(mod, MODELS[model][1])(data, k, random_seed=random_seed, **options)


def predict_proba(result: Any, data: Any) -> np.ndarray:
    """Membership probabilities of new respondents under a fitted result, shape (n_new, k)."""
    return engine(result.model).predict_proba(result, data)
