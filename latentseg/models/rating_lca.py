"""Latent class model on the raw importance and satisfaction ratings (family ``rating-lca``), by EM.

Every other family sees opportunity scores ``imp + max(imp - sat, 0)`` or levels binned from
them; the max and the sum throw information away (an outcome rated 5 / 5 and one rated 3 / 3 on
a 1-5 scale score 10 and 0 alike of their gap). This family models the ratings themselves and
derives the segment opportunity from the fitted rating distributions afterwards.

The model
---------
Respondent ``i`` belongs to segment ``c`` with probability ``pi_c``. Given the segment, the 2J
ratings (importance and satisfaction of J outcomes) are independent categorical indicators over
the points of their scales (:mod:`latentseg.prepare.ratings`: a 1-5 scale has 5 categories, 0-10
has 11; nothing is rescaled). Two measurement models (``measurement=``):

- ``"categorical"`` (default): unrestricted probabilities per segment, rating item and scale
  point, ``P(x_ij = m | c) = theta_cjm``. Free parameters
  ``(k - 1) + k * sum_j (C_j - 1)`` over the 2J rating items, ``C_j`` the points of item ``j``
  that some respondent used (a point nobody used has probability 0 in every segment and is not a
  free parameter; an item everyone rated alike carries no information and is left out of the
  likelihood). On 24 outcomes rated on 1-5 (48 items of 5 points) that is
  ``(k - 1) + 192 k``.
- ``"ordinal"``: an adjacent-category logit per item with thresholds shared by the segments and
  one location per segment and item (:mod:`latentseg.models.lca`'s ordinal model);
  ``(k - 1) + k * 2J + sum_j (C_j - 2)`` free parameters (``(k - 1) + 48 k + 144`` on 24
  outcomes rated 1-5). Unused middle points are skipped, so the spacing is that of the used ones.

Which of the two describes outcome surveys better is left to the simulation study
(:mod:`latentseg.research.study`); ``categorical`` is the default because it assumes nothing
about the shape of a segment's rating distribution.

Missing ratings drop out of a respondent's likelihood. EM, its random starts, SQUAREM
acceleration and replication report are those of :func:`latentseg.models.lca.fit_lca`.

Segment opportunity
-------------------
``centers[c, j]`` is the expected opportunity score of segment ``c`` on outcome ``j``,
``E[imp + max(imp - sat, 0)]`` on the 0-10 base of the scores (0-20), from the segment's two
rating distributions under the model's within-segment independence
(:func:`latentseg.prepare.ratings.segment_opportunity`). ``center_intervals`` is a 95% interval,
the estimate +- 1.96 standard errors clipped to [0, 20], by one of two methods (``interval=``):

- ``"delta"`` (default, instant): the delta method on the observed information of each segment's
  rating probabilities. For segment ``c`` and item ``j`` with probabilities ``theta`` (the used
  points), Louis' missing-information correction for the unknown memberships turns the weighted
  counts ``sum_i z_ic`` of the complete-data information into ``sum_i z_ic^2``: the information is
  ``diag(A_m / theta_m^2) + A_C / theta_C^2 11'`` over the free probabilities (``C`` a reference
  point), ``A_m = sum_{i rated m} z_ic^2``. So a respondent whose segment is uncertain counts for
  less. The opportunity ``p' G q`` (``G`` the opportunity of each rating pair) has gradient ``G q``
  in the importance probabilities and ``G' p`` in the satisfaction ones; its variance sums the
  two. Blocks are treated as independent (the covariances between segments and items are left
  out); the coverage on simulated data with known truth is tested (tests/test_rating_lca.py).
  For ``measurement="ordinal"`` the same formula is applied to the fitted probabilities (as if
  unrestricted, which does not shrink the interval by the ordinal model's smaller parameter count).
- ``"bootstrap"``: ``n_boot`` nonparametric resamples of respondents (multinomial weights), each
  refitted by weighted EM started from the estimate and matched to its segments (Hungarian
  method); the standard error is the bootstrap standard deviation. It carries every covariance
  but costs ``n_boot`` refits (about 10-20 times a 20-start fit): use it for a kept model, not
  in a k sweep.

Examples
--------
>>> from latentseg.research.simulate import simulate_ratings
>>> sim = simulate_ratings(300, k=2, n_outcomes=6, random_seed=1)
>>> res = fit_rating_lca(sim.data, 2, n_init=4, random_seed=1)
>>> res.model, res.centers.shape, res.center_intervals.shape
('rating-lca', (2, 6), (2, 6, 2))
>>> from sklearn.metrics import adjusted_rand_score
>>> adjusted_rand_score(sim.segment, res.assignment) > 0.9
True
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from latentseg._stats import as_rng, check_int
from latentseg.errors import ConfigError, ConvergenceWarning
from latentseg.models._criteria import information_criteria
from latentseg.models._em import check_k, provenance
from latentseg.models.families import RATING_LCA
from latentseg.prepare.encoding import EncodedIndicators
from latentseg.prepare.ratings import IMP, SAT, Ratings, rating_column, segment_opportunity
from latentseg.result import SegmentationResult

__all__ = ["fit_rating_lca", "predict_proba", "log_likelihood", "MEASUREMENTS", "INTERVALS"]

#: The measurement models of :func:`fit_rating_lca`.
MEASUREMENTS = ("categorical", "ordinal")
#: How :func:`fit_rating_lca` makes the segment opportunity intervals.
INTERVALS = ("delta", "bootstrap", "none")
_Z95 = 1.959963984540054
_LOG_FLOOR = -700.0


# ====================================================================== encoding
def _encode(r: Ratings) -> tuple[EncodedIndicators, list[np.ndarray], np.ndarray]:
    """The informative rating items as latent class indicators over the points respondents used.

    Returns the encoded indicators (only items with >= 2 used points), the used points (codes on
    the full scale) of every one of the 2J items, and the mask of informative items (2J,).
    """
    codes = r.codes
    names = [rating_column(IMP, o) for o in r.outcomes] + [rating_column(SAT, o) for o in r.outcomes]
    points = [r.imp_points] * len(r.outcomes) + [r.sat_points] * len(r.outcomes)
    used: list[np.ndarray] = []
    informative = np.zeros(codes.shape[1], dtype=bool)
    cols, n_cat, keys, values, items = [], [], [], [], []
    for j in range(codes.shape[1]):
        u = np.unique(codes[:, j][codes[:, j] >= 0])
        used.append(u)
        if u.size == 0:
            raise ConfigError(f"The rating data have no rating in column '{names[j]}'; leave that outcome out.")
        if u.size < 2:
            continue
        informative[j] = True
        remap = np.full(int(u.max()) + 2, -1, dtype=np.int64)
        remap[u] = np.arange(u.size)
        cols.append(remap[codes[:, j]])  # -1 (missing) indexes the last slot, which is -1
        n_cat.append(u.size)
        pts = points[j][u]
        values.append(pts)
        keys.append(tuple(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in pts))
        items.append(names[j])
    if not informative.any():
        raise ConfigError("Every rating item has a single rating for everyone; the ratings cannot separate segments.")
    enc = EncodedIndicators(
        codes=np.stack(cols, axis=1),
        n_cat=np.array(n_cat, dtype=np.int64),
        items=tuple(items),
        keys=tuple(keys),
        values=tuple(values),
        ids=r.ids,
    )
    return enc, used, informative


def _full_probs(probs: np.ndarray, used: list[np.ndarray], informative: np.ndarray, r: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over the informative items' used points (..., J', Cmax) -> every scale point:
    importance (..., J, C_imp) and satisfaction (..., J, C_sat); an item with one used point puts
    probability 1 on it."""
    lead = probs.shape[:-2]
    J = len(r.outcomes)
    full = [np.zeros(lead + (r.imp_points.size,)) for _ in range(J)] + [np.zeros(lead + (r.sat_points.size,)) for _ in range(J)]
    t = 0
    for j, u in enumerate(used):
        if informative[j]:
            full[j][..., u] = np.nan_to_num(probs[..., t, : u.size])
            t += 1
        else:
            full[j][..., u[0]] = 1.0
    return np.stack(full[:J], axis=-2), np.stack(full[J:], axis=-2)


# ====================================================================== bootstrap
def _bootstrap(
    enc: EncodedIndicators,
    logW: np.ndarray,
    logpi: np.ndarray,
    beta: np.ndarray | None,
    tau: np.ndarray | None,
    measurement: str,
    prior: float,
    n_boot: int,
    rng: np.random.Generator,
    max_iter: int = 200,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted EM on ``n_boot`` multinomial resamples, started from the estimate (at most
    ``max_iter`` plain EM steps: near the estimate the opportunity settles long before a flat
    likelihood of an over-extracted k does).

    Returns the replicates' log item probabilities (B, k, D) and log weights (B, k).
    """
    from latentseg.models.lca import (
        _nominal_m_step,
        _onehot,
        _ordinal_logp,
        _ordinal_newton,
        _ordinal_to_flat,
        _pad_counts,
        _safe_log,
    )

    X, offsets = _onehot(enc.codes, enc.n_cat)
    XT = np.ascontiguousarray(X.T)
    n, D = X.shape
    k = logpi.shape[0]
    n_cat = enc.n_cat
    J, cmax = len(n_cat), int(n_cat.max())
    valid = np.arange(cmax)[None, :] < n_cat[:, None]
    vpad = valid[:, None, :].astype(float)
    col_item = np.repeat(np.arange(J), n_cat)
    col_ncat = np.repeat(n_cat, n_cat).astype(float)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # (B, n), each sums to n
    lw = np.repeat(logW[None], n_boot, axis=0)
    lp = np.repeat(logpi[None], n_boot, axis=0)
    ordinal = measurement == "ordinal"
    if ordinal:
        assert beta is not None and tau is not None
        b = np.repeat(beta[None], n_boot, axis=0)  # (B, J, k)
        t = np.repeat(tau[None], n_boot, axis=0)
    prev = np.full(n_boot, -np.inf)
    for _ in range(max_iter):
        a = (lw.reshape(n_boot * k, D) @ XT).reshape(n_boot, k, n) + lp[:, :, None]
        m = a.max(axis=1, keepdims=True)
        np.exp(a - m, out=a)
        s = a.sum(axis=1, keepdims=True)
        a /= s
        ll = ((np.log(s[:, 0]) + m[:, 0]) * w).sum(axis=1)
        a *= w[:, None, :]  # weighted memberships
        lp = _safe_log(a.sum(axis=2) / n)
        if ordinal:
            N = _pad_counts((a.reshape(-1, n) @ X).reshape(n_boot, k, -1), n_cat, offsets) + prior * vpad
            b, t = _ordinal_newton(N, b, t, valid, steps=2)
            lw = _ordinal_to_flat(_ordinal_logp(b, t, valid), n_cat)
        else:
            lw, _ = _nominal_m_step(X, a, offsets, col_item, col_ncat, prior)
        if np.all(np.abs(ll - prev) / n < tol):
            break
        prev = ll
    return lw, lp


def _var_block(theta: np.ndarray, A: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Delta-method variance of ``grad . theta`` for multinomial probabilities ``theta`` with
    information ``diag(A_m / theta_m^2) + A_C / theta_C^2 11'`` over the free ones.

    theta, A, grad: (..., C) over the used points (NaN padding allowed). Points with probability
    (or information) ~0 are held fixed; the reference point ``C`` is the most probable one.
    Returns (...,)."""
    theta = np.nan_to_num(theta)
    A = np.nan_to_num(A)
    active = (theta > 1e-10) & (A > 1e-12)
    ref = np.argmax(np.where(active, theta, -1.0), axis=-1)[..., None]
    th_c = np.take_along_axis(theta, ref, -1)
    a_c = np.take_along_axis(A, ref, -1)
    g_c = np.take_along_axis(grad, ref, -1)
    free = active.copy()
    np.put_along_axis(free, ref, False, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_a = np.where(free, theta**2 / np.where(free, A, 1.0), 0.0)  # 1 / a_m
        b = np.where(th_c > 0, a_c / th_c**2, 0.0)[..., 0]
    d = np.where(free, grad - g_c, 0.0)
    s1 = (d * d * inv_a).sum(-1)
    s2 = (d * inv_a).sum(-1)
    s3 = inv_a.sum(-1)
    return np.maximum(s1 - b * s2**2 / (1.0 + b * s3), 0.0)


def _delta_se(probs: np.ndarray, A: np.ndarray, used: list[np.ndarray], informative: np.ndarray, r: Ratings) -> np.ndarray:
    """Delta-method standard errors of the segment opportunity, shape (k, J) (module notes)."""
    from latentseg.prepare.ratings import _gap_table

    imp_p, sat_p = _full_probs(probs, used, informative, r)
    G = _gap_table(r.imp_0_10, r.sat_0_10)  # (C_imp, C_sat)
    g_imp = np.einsum("ab,kjb->kja", G, sat_p)  # d o / d p_a
    g_sat = np.einsum("ab,kja->kjb", G, imp_p)  # d o / d q_b
    J = len(r.outcomes)
    var = np.zeros(imp_p.shape[:2])
    t = 0
    for j, u in enumerate(used):
        if not informative[j]:
            continue
        c = u.size
        grad = (g_imp[:, j] if j < J else g_sat[:, j - J])[:, u]  # (k, c) at the used points
        var[:, j % J] += _var_block(probs[:, t, :c], A[:, t, :c], grad)
        t += 1
    return np.sqrt(var)


def _match(reference: np.ndarray, replicates: np.ndarray) -> np.ndarray:
    """Each replicate's segments reordered to the reference's (Hungarian on squared distance).

    reference (k, J); replicates (B, k, J) -> permutation indices (B, k)."""
    from scipy.optimize import linear_sum_assignment

    perms = np.empty(replicates.shape[:2], dtype=np.int64)
    for b, rep in enumerate(replicates):
        cost = ((reference[:, None, :] - rep[None, :, :]) ** 2).sum(axis=2)
        _, cols = linear_sum_assignment(cost)
        perms[b] = cols
    return perms


# ====================================================================== public API
def fit_rating_lca(
    data: Any,
    k: int,
    *,
    measurement: str = "categorical",
    n_init: int = 20,
    max_iter: int = 1000,
    tol: float = 1e-8,
    random_seed: int | None = None,
    prior: float = 0.0,
    interval: str = "delta",
    n_boot: int = 100,
    init: str = "partition",
    accelerate: bool = True,
) -> SegmentationResult:
    """Fit a latent class model with ``k`` segments to raw importance and satisfaction ratings.

    Parameters
    ----------
    data : DataFrame, shape (n, 2J)
        The ratings as :func:`latentseg.prepare.ratings.rating_frame` lays them out (``imp:<o>``
        then ``sat:<o>`` columns, ordered Categoricals over the scale points; missing ratings
        missing). :func:`latentseg.prepare.core.prepare` hands it to this family.
    k : int
        Number of segments.
    measurement : {"categorical", "ordinal"}, default "categorical"
        The rating model (module notes; parameter counts there).
    n_init : int, default 20
        Random starts (one vectorised batch).
    max_iter, tol, prior, init, accelerate
        As :func:`latentseg.models.lca.fit_lca`.
    random_seed : int, optional
        The one seed (starts and bootstrap draw from child generators). Same seed, same result.
    interval : {"delta", "bootstrap", "none"}, default "delta"
        How the segment opportunity intervals are made (module notes); ``"none"``:
        ``center_intervals`` is ``None``.
    n_boot : int, default 100
        Bootstrap resamples (``interval="bootstrap"``).

    Returns
    -------
    SegmentationResult
        ``model="rating-lca"``, in canonical order; ``feature_names`` the outcomes; ``centers``
        (k, J) the segment opportunity (0-20), ``center_intervals`` (k, J, 2) its 95% bootstrap
        interval. ``params``: ``weights`` (k,), ``imp_probs`` (k, J, C_imp), ``sat_probs``
        (k, J, C_sat) over every scale point, ``probs`` (k, J', Cmax) over the used points of
        the informative items (as :func:`~latentseg.models.lca.fit_lca`), ``locations`` (k, J')
        for the ordinal model. ``extras``: ``scale_points`` (kind, code, point),
        ``used_points`` (item, code), ``opportunity`` (the tidy
        :func:`latentseg.prepare.ratings.segment_landscape` table).

    Raises
    ------
    ConfigError
        Bad settings, or data not laid out as the rating families take it.
    """
    from latentseg.models.lca import _diagnostics, _flat_to_padded, _n_params, _run_em

    if measurement not in MEASUREMENTS:
        raise ConfigError(
            f"The 'measurement' parameter of fit_rating_lca must be one of {', '.join(MEASUREMENTS)}. "
            f"Got {measurement!r} instead."
        )
    if init not in ("partition", "dirichlet"):
        raise ConfigError(f"The 'init' parameter of fit_rating_lca must be 'partition' or 'dirichlet'. Got {init!r} instead.")
    n_init = check_int(n_init, "n_init", low=1, where="fit_rating_lca")
    max_iter = check_int(max_iter, "max_iter", low=1, where="fit_rating_lca")
    if interval not in INTERVALS:
        raise ConfigError(
            f"The 'interval' parameter of fit_rating_lca must be one of {', '.join(INTERVALS)}. Got {interval!r} instead."
        )
    n_boot = check_int(n_boot, "n_boot", low=2, where="fit_rating_lca")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ConfigError(f"The 'tol' parameter of fit_rating_lca must be a float > 0. Got {tol!r} instead.")
    if not (isinstance(prior, (int, float)) and prior >= 0 and math.isfinite(prior)):
        raise ConfigError(f"The 'prior' parameter of fit_rating_lca must be a float >= 0. Got {prior!r} instead.")
    r = Ratings.from_frame(data, where="fit_rating_lca")
    enc, used, informative = _encode(r)
    n = enc.codes.shape[0]
    codes_f = np.where(r.codes >= 0, r.codes, np.nan).astype(float)
    k = check_k(k, codes_f, RATING_LCA)
    rng = as_rng(random_seed)
    em_rng, boot_rng = rng.spawn(2)
    fit = _run_em(enc, k, measurement, n_init, max_iter, float(tol), float(prior), init, em_rng, bool(accelerate))

    n_cat = enc.n_cat
    offsets = np.r_[0, np.cumsum(n_cat)[:-1]].astype(np.int64)
    probs = _flat_to_padded(np.exp(fit.logW), n_cat, offsets)  # (k, J', Cmax)
    probs = np.where(probs < 1e-300, 0.0, probs)
    imp_probs, sat_probs = _full_probs(probs, used, informative, r)
    opp = segment_opportunity(imp_probs, sat_probs, r.imp_0_10, r.sat_0_10)  # (k, J)
    weights = np.exp(fit.logpi)
    z = fit.z
    order = np.lexsort((opp[:, 0], -z.mean(axis=0)))  # canonical order before the tables
    z, probs, weights, opp = z[:, order], probs[order], weights[order], opp[order]
    imp_probs, sat_probs = imp_probs[order], sat_probs[order]
    params: dict[str, np.ndarray] = {"weights": weights, "probs": probs, "imp_probs": imp_probs, "sat_probs": sat_probs}
    shared: dict[str, np.ndarray] = {}
    if measurement == "ordinal":
        assert fit.beta is not None and fit.tau is not None
        params["locations"] = fit.beta.T[order]
        thr = fit.tau.copy()
        thr[~(np.arange(thr.shape[1])[None, :] < (n_cat - 1)[:, None])] = np.nan
        shared["thresholds"] = thr

    intervals = None
    if interval == "delta":
        from latentseg.models.lca import _onehot

        X, _ = _onehot(enc.codes, n_cat)
        A = (z**2).T @ X  # (k, D): sum of squared memberships per used point
        se = _delta_se(probs, _flat_to_padded(A, n_cat, offsets), used, informative, r)
        intervals = np.clip(np.stack([opp - _Z95 * se, opp + _Z95 * se], axis=-1), 0.0, 20.0)
    elif interval == "bootstrap":
        beta = None if fit.beta is None else fit.beta[:, order]
        lw_b, _ = _bootstrap(
            enc, fit.logW[order], fit.logpi[order], beta, fit.tau, measurement, float(prior), n_boot, boot_rng
        )
        pb = _flat_to_padded(np.exp(lw_b).reshape(-1, lw_b.shape[-1]), n_cat, offsets).reshape((n_boot, k) + probs.shape[1:])
        ib, sb = _full_probs(pb, used, informative, r)
        opp_b = segment_opportunity(ib, sb, r.imp_0_10, r.sat_0_10)  # (B, k, J)
        perms = _match(opp, opp_b)
        opp_b = np.take_along_axis(opp_b, perms[:, :, None], axis=1)
        sd = opp_b.std(axis=0, ddof=1)
        intervals = np.clip(np.stack([opp - _Z95 * sd, opp + _Z95 * sd], axis=-1), 0.0, 20.0)

    p = _n_params(k, n_cat, measurement)
    criteria = information_criteria(fit.loglik, p, n, z)
    diagnostics = _diagnostics(fit, probs, weights, enc, measurement, p, n_init, max_iter, tol, params, shared)
    diagnostics["n_missing"] = int((r.codes < 0).sum())
    diagnostics["uninformative_items"] = [
        n_ for n_, keep in zip([rating_column(IMP, o) for o in r.outcomes] + [rating_column(SAT, o) for o in r.outcomes], informative)
        if not keep
    ]
    if not diagnostics["converged"]:
        warnings.warn(diagnostics["warnings"][0], ConvergenceWarning, stacklevel=2)

    settings = {
        "measurement": measurement,
        "n_init": n_init,
        "init": init,
        "max_iter": max_iter,
        "tol": float(tol),
        "prior": float(prior),
        "interval": interval,
        "n_boot": n_boot,
        "accelerate": bool(accelerate),
        "opportunity_interval": {
            "delta": "95% delta method (observed information)",
            "bootstrap": f"95% bootstrap (normal, {n_boot} resamples)",
            "none": "none",
        }[interval],
    }
    scale_points = pd.DataFrame(
        [(IMP, m, float(v)) for m, v in enumerate(r.imp_points)] + [(SAT, m, float(v)) for m, v in enumerate(r.sat_points)],
        columns=["kind", "code", "point"],
    )
    items = [rating_column(IMP, o) for o in r.outcomes] + [rating_column(SAT, o) for o in r.outcomes]
    used_points = pd.DataFrame([(items[j], int(c)) for j, u in enumerate(used) for c in u], columns=["item", "code"])
    result = SegmentationResult.from_memberships(
        RATING_LCA,
        z,
        centers=opp,
        feature_names=r.outcomes,
        respondent_ids=r.ids,
        criteria=criteria,
        diagnostics=diagnostics,
        provenance=provenance(random_seed, codes_f, config={"model": RATING_LCA, "k": k, **settings}),
        settings=settings,
        params=params,
        shared_params=shared,
        center_intervals=intervals,
        extras={"scale_points": scale_points, "used_points": used_points},
    )
    from latentseg.prepare.ratings import segment_landscape

    return _with_landscape(result, segment_landscape)


def _with_landscape(result: SegmentationResult, landscape: Any) -> SegmentationResult:
    import dataclasses

    return dataclasses.replace(result, extras={**result.extras, "opportunity": landscape(result)})


# ====================================================================== scoring new data
def _log_terms(result: SegmentationResult, data: Any) -> np.ndarray:
    """log pi_c + sum_j log P(x_ij | c) of every respondent and segment, shape (n, k)."""
    if result.model != RATING_LCA or "imp_probs" not in result.params:
        raise ConfigError(f"Expected a {RATING_LCA} result; got model {result.model!r}.")
    r = Ratings.from_frame(data, where="the new ratings")
    pts = result.extras["scale_points"]
    ip = pts.loc[pts["kind"] == IMP, "point"].to_numpy(dtype=float)
    sp = pts.loc[pts["kind"] == SAT, "point"].to_numpy(dtype=float)
    if not (np.array_equal(ip, r.imp_points) and np.array_equal(sp, r.sat_points)):
        raise ConfigError(
            f"The new ratings are on other scales (importance {r.imp_scale}, satisfaction {r.sat_scale}) than the "
            f"model was fitted on ({ip[0]:g}-{ip[-1]:g}, {sp[0]:g}-{sp[-1]:g})."
        )
    missing = [o for o in result.feature_names if o not in r.outcomes]
    if missing:
        raise ConfigError(f"The new ratings lack the outcome(s) {missing} the model was fitted on.")
    pos = [r.outcomes.index(o) for o in result.feature_names]
    ic, sc = r.imp_codes[:, pos], r.sat_codes[:, pos]
    with np.errstate(divide="ignore"):
        li = np.maximum(np.log(np.asarray(result.params["imp_probs"], dtype=float)), _LOG_FLOOR)  # (k, J, C)
        ls = np.maximum(np.log(np.asarray(result.params["sat_probs"], dtype=float)), _LOG_FLOOR)
        out = np.repeat(np.maximum(np.log(np.asarray(result.params["weights"], dtype=float)), _LOG_FLOOR)[None], ic.shape[0], 0)
    J = ic.shape[1]
    for j in range(J):
        for codes, lg in ((ic[:, j], li[:, j]), (sc[:, j], ls[:, j])):
            seen = codes >= 0
            out[seen] += lg[:, codes[seen]].T
    return out


def predict_proba(result: SegmentationResult, data: Any) -> np.ndarray:
    """Membership probabilities of (new) respondents, shape (n_new, k).

    Parameters
    ----------
    result : SegmentationResult
        A fit of :func:`fit_rating_lca`.
    data : DataFrame, shape (n_new, 2J')
        Ratings laid out as :func:`latentseg.prepare.ratings.rating_frame` (matched by outcome;
        more outcomes may be present), on the scales of the fit. Missing ratings drop out.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_ratings
    >>> sim = simulate_ratings(200, k=2, n_outcomes=4, random_seed=2)
    >>> res = fit_rating_lca(sim.data, 2, n_init=3, interval="none", random_seed=0)
    >>> bool(np.allclose(predict_proba(res, sim.data), res.memberships))
    True
    """
    a = _log_terms(result, data)
    a -= a.max(axis=1, keepdims=True)
    np.exp(a, out=a)
    return a / a.sum(axis=1, keepdims=True)


def log_likelihood(result: SegmentationResult, data: Any, *, per_respondent: bool = False) -> Any:
    """Log-likelihood of ratings under a fitted ``rating-lca`` model (missing ratings drop out).

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_ratings
    >>> sim = simulate_ratings(200, k=2, n_outcomes=4, random_seed=2)
    >>> res = fit_rating_lca(sim.data, 2, n_init=3, interval="none", random_seed=0)
    >>> bool(abs(log_likelihood(res, sim.data) - res.criteria["loglik"]) < 1e-6)
    True
    """
    a = _log_terms(result, data)
    mx = a.max(axis=1, keepdims=True)
    ll = (mx + np.log(np.exp(a - mx).sum(axis=1, keepdims=True)))[:, 0]
    return ll if per_respondent else float(ll.sum())
