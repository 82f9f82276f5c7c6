"""Segment stability under subsampling (the playbook's best practice).

Refit the chosen model with the same k on B random subsamples of the respondents (default 5 of
80% each) and compare each subsample's assignment with the full-sample assignment on the
respondents the two share, by the adjusted Rand index (label-free: 1 = the same partition,
about 0 = no better than chance). A segmentation whose segments come back on every subsample is
stable; one whose mean or minimum index is low depends on who happened to answer.

Survey weights (``sample_weight=``): every refit is weighted, each subsample keeping its own
rows' weights as given (not renormalised: a weighted engine uses them as given, and the
subsample's weights keep their relative sizes). Subsamples are drawn with equal probability
and the adjusted Rand index counts respondents, not weights: the question is whether the same
respondents land together again, which is a property of the fit, not an estimate of the
population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, FitError, LatentsegError
from latentseg.models.families import family
from latentseg.result import SegmentationResult

__all__ = ["StabilityResult", "stability"]


@dataclass(frozen=True)
class StabilityResult:
    """Adjusted Rand index of each subsample refit against the full-sample assignment.

    Attributes
    ----------
    model : str
    k : int
    ari : ndarray, shape (B,)
        One index per subsample, in subsample order.
    mean, min : float
        Mean and minimum of ``ari``.
    fraction : float
        Share of respondents in each subsample.
    sizes : ndarray, shape (B,)
        Respondents in each subsample.
    random_seed : int or None
    """

    model: str
    k: int
    ari: np.ndarray
    mean: float
    min: float
    fraction: float
    sizes: np.ndarray
    random_seed: int | None

    @property
    def subsamples(self) -> int:
        """Number of subsamples B."""
        return int(self.ari.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: ``model, k, subsamples, fraction, mean, min, ari, sizes, random_seed``."""
        return {
            "model": self.model,
            "k": self.k,
            "subsamples": self.subsamples,
            "fraction": self.fraction,
            "mean": float(self.mean),
            "min": float(self.min),
            "ari": [float(a) for a in self.ari],
            "sizes": [int(s) for s in self.sizes],
            "random_seed": self.random_seed,
        }


def _take(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.iloc[idx]
    return np.asarray(data)[idx]


def _weighted(options: dict[str, Any], weights: np.ndarray | None) -> dict[str, Any]:
    """Engine options, with ``sample_weight`` only when weighted (an unweighted call is unchanged)."""
    return options if weights is None else {**options, "sample_weight": weights}


def stability(
    data: Any,
    model: str,
    k: int,
    *,
    subsamples: int = 5,
    fraction: float = 0.8,
    random_seed: int | None = None,
    reference: SegmentationResult | None = None,
    sample_weight: Any = None,
    **fit_options: Any,
) -> StabilityResult:
    """Refit ``model`` with ``k`` segments on random subsamples and compare with the full sample.

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        What the model is fitted on (scores, factor scores or categorical indicators).
    model : str
        Any model name :func:`latentseg.models.fit` knows (``"kmeans"``, ``"gmm"``, ``"lca"`` ...).
    k : int
        Number of segments.
    subsamples : int, default 5
        Number of subsamples B.
    fraction : float, default 0.8
        Share of respondents drawn (without replacement) into each subsample, in (0, 1).
    random_seed : int, optional
        The one seed: the subsamples and every refit's seed derive from it. Same seed, same result.
    reference : SegmentationResult, optional
        The full-sample fit to compare against (fitted on ``data``, same row order). When absent
        it is fitted here with ``fit_options``.
    sample_weight : array-like, shape (n,), optional
        Survey weights of the rows of ``data``: the full-sample fit and every subsample refit are
        weighted, each subsample by its own rows' weights.
    **fit_options
        Passed to every fit (``n_init=``, ``covariance=``, ``measurement=`` ...).

    Returns
    -------
    StabilityResult

    Raises
    ------
    ConfigError
        Bad ``subsamples`` / ``fraction``, a reference of another size, or a subsample too small
        for k segments.
    FitError
        A refit that failed (the message names the subsample).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(8, 1, (60, 2))]
    >>> st = stability(X, "kmeans", 2, subsamples=3, random_seed=1)
    >>> st.subsamples, round(st.min, 2)
    (3, 1.0)
    """
    from latentseg._stats import adjusted_rand_index
    from latentseg.models import fit

    if isinstance(subsamples, bool) or not isinstance(subsamples, (int, np.integer)) or subsamples < 1:
        raise ConfigError(f"The 'subsamples' parameter of stability must be an int >= 1. Got {subsamples!r} instead.")
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ConfigError(f"The 'fraction' parameter of stability must be a float in (0, 1). Got {fraction!r} instead.")
    n = len(data)
    size = int(round(fraction * n))
    if size < 2 or (isinstance(k, (int, np.integer)) and size < k):
        raise ConfigError(
            f"A {fraction:.0%} subsample of {n} respondents has {size}; too few for k = {k} segments."
        )
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if weights is not None and weights.shape != (n,):
        raise ConfigError(f"sample_weight must have one weight per row of the data, shape ({n},); got {weights.shape}.")
    rng = np.random.default_rng(random_seed)
    ref_rng, *sub_rngs = rng.spawn(int(subsamples) + 1)

    def seed_of(g: np.random.Generator) -> int:
        return int(g.integers(0, 2**31 - 1))

    if reference is None:
        reference = fit(data, model, k, random_seed=seed_of(ref_rng), **_weighted(fit_options, weights))
    elif reference.n != n:
        raise ConfigError(
            f"The reference segmentation has {reference.n} respondents but the data have {n}; pass the "
            "full-sample fit of these data."
        )
    full = reference.assignment
    ari = np.empty(int(subsamples))
    for b, g in enumerate(sub_rngs):
        idx = np.sort(g.choice(n, size=size, replace=False))
        try:
            sub_data = _take(data, idx)
            if family(model).categorical and isinstance(sub_data, pd.DataFrame):
                # a rare answer can vanish from a subsample; such a column is uninformative there
                from latentseg.prepare.encoding import drop_constant_columns

                sub_data = drop_constant_columns(sub_data)[0]
            sub = fit(sub_data, model, k, random_seed=seed_of(g),
                      **_weighted(fit_options, None if weights is None else weights[idx]))
        except LatentsegError as exc:
            raise FitError(f"Stability refit {b + 1} of {subsamples} ({model}, k = {k}) failed: {exc}") from exc
        ari[b] = adjusted_rand_index(full[idx], sub.assignment)  # scikit-learn's value, without its import
    return StabilityResult(
        model=str(model),
        k=int(k),
        ari=ari,
        mean=float(ari.mean()),
        min=float(ari.min()),
        fraction=float(fraction),
        sizes=np.full(int(subsamples), size),
        random_seed=random_seed,
    )
