"""PSIS-LOO falls back to truncated importance sampling when PSIS cannot fit a tail."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from latentseg.models.bayes import _loo


def test_constant_draws_fall_back_to_truncated_importance_sampling():
    rng = np.random.default_rng(0)
    ll = rng.normal(-3.0, 0.3, size=(2, 200, 5))
    ll[:, :, 2] = -4.0  # a respondent whose log-likelihood never moves: PSIS has no tail to fit
    res = _loo.loo(ll)
    assert res["warning"] and "truncated importance sampling" in res["method"]
    # constant log-likelihood: the LOO predictive density is exactly that constant
    assert np.isclose(res["pointwise"][2], -4.0)
    # the estimate never exceeds the in-sample lppd
    lppd = logsumexp(ll.reshape(400, 5), axis=0) - np.log(400)
    assert np.all(res["pointwise"] <= lppd + 1e-12)
