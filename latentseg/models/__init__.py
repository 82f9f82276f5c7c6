"""Segmentation engines behind one family registry (:mod:`latentseg.models.families`).

``fit(data, model, k, random_seed=..., **options)`` returns a :class:`~latentseg.SegmentationResult`
for any family; ``predict_proba(result, data)`` scores new respondents against it. Engines are
imported lazily (the Bayesian ones import PyMC), so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from latentseg.models.families import FAMILIES, NAMES, Family, family

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["FAMILIES", "NAMES", "Family", "family", "fit", "predict_proba"]


def fit(data: Any, model: str, k: int, *, random_seed: int | None = None, **options: Any) -> Any:
    """Fit one model family with ``k`` segments.

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        Numeric for the families fitted on scores, categorical for those fitted on levels
        (:attr:`Family.data <latentseg.models.families.Family.data>`).
    model : str
        A family name (:data:`~latentseg.models.families.NAMES`).
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
    return family(model).fit_function()(data, k, random_seed=random_seed, **options)


def predict_proba(result: Any, data: Any) -> Any:
    """Membership probabilities of new respondents under a fitted result, shape (n_new, k).

    Parameters
    ----------
    result : SegmentationResult
    data : DataFrame or ndarray, shape (n_new, d)
        The model's input columns (matched by name for a DataFrame).

    Returns
    -------
    DataFrame or ndarray, shape (n_new, k)
        Given a DataFrame: a DataFrame indexed like ``data`` (the same index values and name), with
        columns ``p_1 .. p_k``. Given an array: an ndarray.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 5] + np.random.default_rng(0).normal(size=(40, 2))
    >>> r = fit(X, "gmm", 2, random_seed=0)
    >>> predict_proba(r, X[:3]).shape
    (3, 2)
    >>> new = pd.DataFrame(X[:2], columns=["x1", "x2"], index=pd.Index(["a", "b"], name="customer"))
    >>> p = predict_proba(r, new)
    >>> p.index.name, p.index.tolist(), p.columns.tolist()
    ('customer', ['a', 'b'], ['p_1', 'p_2'])
    """
    import numpy as np
    import pandas as pd

    P = family(result.model).engine().predict_proba(result, data)

    if isinstance(data, pd.DataFrame):
        return pd.DataFrame(
            np.asarray(P, dtype=float), index=data.index.copy(), columns=[f"p_{j + 1}" for j in range(int(result.k))]
        )
    return P
