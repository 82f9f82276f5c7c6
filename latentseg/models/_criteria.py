"""Information criteria shared by every likelihood-based engine.

Sign convention (lower is better everywhere): BIC = -2 log L + p ln n, AIC = -2 log L + 2p.
mclust reports the negative of BIC; we never do.
"""

from __future__ import annotations

import numpy as np

from latentseg._stats import classification_entropy, relative_entropy

__all__ = ["information_criteria"]


def information_criteria(
    loglik: float,
    n_params: int,
    n: int,
    memberships: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Every likelihood-based criterion latentseg reports, from one log-likelihood.

    Parameters
    ----------
    loglik : float
        Maximised log-likelihood (with survey weights: the pseudo-log-likelihood
        ``sum_i w_i log f(x_i)``).
    n_params : int
        Number of free parameters, counted explicitly by the engine.
    n : int
        Number of respondents (rows), also with survey weights (docs/methods.md, "Survey
        weights (EM)": the penalty counts the respondents interviewed, as StepMix and Latent
        GOLD do; the pipeline's weights have mean 1, so their sum is this n too).
    memberships : ndarray, shape (n, k), optional
        Posterior membership probabilities; needed for ICL and entropy.
    sample_weight : ndarray, shape (n,), optional
        Survey weights: the entropy (and so ICL and relative entropy) is weighted like the
        pseudo-log-likelihood.

    Returns
    -------
    dict
        ``loglik, n_params, bic, aic, sabic, caic`` and, with memberships,
        ``entropy`` (classification entropy E), ``icl`` (BIC + 2E) and ``relative_entropy``.

    Notes
    -----
    - BIC  = -2 log L + p ln n
    - AIC  = -2 log L + 2 p
    - SABIC (sample-size adjusted BIC, Sclove 1987) = -2 log L + p ln((n + 2) / 24)
    - CAIC = -2 log L + p (ln n + 1)
    - ICL  = BIC + 2 E with E = -sum z log z (Biernacki et al. 2000, the entropy form)

    Examples
    --------
    >>> c = information_criteria(-1130.264, 11, 272)
    >>> round(c["bic"], 2), round(c["aic"], 2)
    (2322.19, 2282.53)
    """
    p = int(n_params)
    out: dict[str, float] = {
        "loglik": float(loglik),
        "n_params": p,
        "bic": float(-2 * loglik + p * np.log(n)),
        "aic": float(-2 * loglik + 2 * p),
        "sabic": float(-2 * loglik + p * np.log((n + 2) / 24)),
        "caic": float(-2 * loglik + p * (np.log(n) + 1)),
    }
    if memberships is not None:
        e = classification_entropy(memberships, sample_weight)
        out["entropy"] = e
        out["icl"] = out["bic"] + 2 * e
        out["relative_entropy"] = relative_entropy(memberships, sample_weight)
    return out
