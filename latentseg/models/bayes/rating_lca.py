"""The Bayesian rating latent class model (``model="bayes-rating-lca"``).

Every outcome's importance rating and satisfaction rating are two categorical indicators,
independent given the segment; the segment is marginalised::

    w ~ Dirichlet(alpha, ..., alpha)
    categorical (default):  pi_ji ~ Dirichlet(beta, ..., beta)        one vector per segment j and item i
    ordinal:                P(y_i = m | j) ∝ exp(m b_ji - sum_{l < m} tau_il)   (adjacent-category logit)
    log p(y_n) = logsumexp_j [log w_j + sum_{i observed} log P(y_ni | j)]

The data are the rating families' contract (:mod:`latentseg.prepare.ratings`): items ``imp:<o>``
for every outcome, then ``sat:<o>``; each item's categories are **every point of its scale**
(1-5: 5, 0-10: 11), observed or not, never rescaled. A point no respondent gave keeps a proper
posterior (its Dirichlet prior), so new respondents who use it can be scored. A missing rating
drops out of its respondent's sum. The likelihood, priors, starting values, relabelling and
diagnostics are those of ``bayes-lca`` (:class:`latentseg.models.bayes.lca.LatentClassFamily`);
the categorical model samples on its own numba kernel
(:mod:`latentseg.models.bayes._rating_kernels`: the same density and gradient, laid out for the
many categories of rating scales), the ordinal one on ``bayes-lca``'s.

Parameters sampled (categorical): ``(k - 1) + k * J * ((C_imp - 1) + (C_sat - 1))`` for J
outcomes; ordinal: ``(k - 1) + 2 k J + J * ((C_imp - 2) + (C_sat - 2))``. The EM start and the
likelihood criteria at it (``bic``, ``aic`` ...) are those of ``rating-lca``
(:func:`latentseg.models.rating_lca.fit_rating_lca`), whose free-parameter count includes only
the points some respondent used.

The **segment opportunity** -- for segment j and outcome o,
``E[imp + max(imp - sat, 0) | j]`` on the 0-20 scale of the opportunity scores
(:func:`latentseg.prepare.ratings.segment_opportunity`) -- is computed for every posterior draw
after relabelling: ``centers`` (k, J) is its posterior mean and ``center_intervals`` its 95%
equal-tailed credible interval. Priors and reasons: ``docs/priors.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError
from latentseg.models.bayes.lca import LCAPriors, LatentClassFamily
from latentseg.models.families import BAYES_RATING_LCA
from latentseg.prepare.ratings import IMP, SAT

__all__ = [
    "fit_bayes_rating_lca",
    "fit_sweep",
    "predict_proba",
    "RatingClassFamily",
    "rating_data",
    "MEASUREMENTS",
]

MEASUREMENTS = ("categorical", "ordinal")


def rating_data(data: Any) -> Any:
    """The :class:`~latentseg.prepare.ratings.Ratings` of a rating frame (or of a survey, through
    :func:`~latentseg.prepare.ratings.rating_frame`), and the frame.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_response_styles
    >>> survey, _ = simulate_response_styles(50, n_outcomes=3, n_segments=2, sat_scale=(1, 10), random_seed=1)
    >>> r, frame = rating_data(survey)
    >>> list(frame.columns[:2]), str(r.imp_scale), str(r.sat_scale)
    (['imp:o01', 'imp:o02'], '1-5', '1-10')
    """
    from latentseg.io.survey import Survey
    from latentseg.prepare.ratings import Ratings, rating_frame

    frame = rating_frame(data) if isinstance(data, Survey) else data
    return Ratings.from_frame(frame, where=BAYES_RATING_LCA), frame


class RatingClassFamily(LatentClassFamily):
    """The latent class model on a survey's ratings (see the module notes).

    The items are the columns of the rating frame (``imp:<o>`` for every outcome, then
    ``sat:<o>``); each has every point of its scale as a category, observed or not.
    """

    model = BAYES_RATING_LCA

    def __init__(self, data: Any, k: int, measurement: str, priors: LCAPriors) -> None:
        from latentseg.models._em import check_k

        if measurement not in MEASUREMENTS:
            raise ConfigError(
                f"The 'measurement' parameter of {BAYES_RATING_LCA} must be one of {', '.join(MEASUREMENTS)}. "
                f"Got {measurement!r} instead."
            )
        ratings, frame = rating_data(data)
        codes = ratings.codes
        empty = ~(codes >= 0).any(axis=1)
        if empty.any():
            from latentseg.errors import SurveyError, format_rows

            raise SurveyError(
                f"{int(empty.sum())} respondent(s) rated nothing at rows {format_rows(frame.index[empty].tolist())}; "
                "drop them before fitting (they carry no information)."
            )
        k = check_k(k, np.where(codes >= 0, codes, np.nan).astype(float), BAYES_RATING_LCA)
        self.data = frame
        self._setup(ratings, k, measurement, priors)

    def _setup(self, ratings: Any, k: int, measurement: str, priors: LCAPriors) -> None:
        J = len(ratings.outcomes)
        self.ratings = ratings
        self.outcomes = tuple(ratings.outcomes)
        n_cat = np.array([ratings.imp_points.size] * J + [ratings.sat_points.size] * J, dtype=np.int64)
        items = tuple(f"imp:{o}" for o in self.outcomes) + tuple(f"sat:{o}" for o in self.outcomes)
        self._prepare(ratings.codes, n_cat, items, ratings.ids, k, measurement, priors)
        self.values = np.concatenate([ratings.imp_points] * J + [ratings.sat_points] * J).astype(float)

    @classmethod
    def for_scoring(cls, result: Any, data: Any) -> RatingClassFamily:
        """A family on new respondents' ratings (the same outcomes and scale points as the fit)."""
        ratings, _ = rating_data(data)
        missing = [o for o in result.feature_names if o not in ratings.outcomes]
        if missing:
            raise ConfigError(f"The new ratings lack outcome(s) {missing} the {BAYES_RATING_LCA} model was fitted on.")
        pts = result.extras["scale_points"]
        for kind, have in ((IMP, ratings.imp_points), (SAT, ratings.sat_points)):
            want = np.asarray(pts.loc[pts["kind"] == kind, "point"], dtype=float)
            if want.shape != have.shape or not np.array_equal(want, have):
                raise ConfigError(
                    f"The new {kind} ratings are on the scale {have[0]:g}-{have[-1]:g}; the model was fitted on "
                    f"{want[0]:g}-{want[-1]:g}."
                )
        pos = [ratings.outcomes.index(o) for o in result.feature_names]
        from latentseg.prepare.ratings import Ratings

        sub = Ratings(outcomes=tuple(result.feature_names), imp_codes=ratings.imp_codes[:, pos],
                      sat_codes=ratings.sat_codes[:, pos], imp_points=ratings.imp_points,
                      sat_points=ratings.sat_points, imp_scale=ratings.imp_scale, sat_scale=ratings.sat_scale,
                      ids=ratings.ids)
        st = result.settings
        priors = LCAPriors(st.get("concentration", 1.0), st.get("item_concentration", 1.0),
                           st.get("location_scale", 2.5), st.get("threshold_scale", 2.5))
        obj = cls.__new__(cls)
        obj.data = None
        obj._setup(sub, result.k, st.get("measurement", "categorical"), priors)
        return obj

    def em_start(self, seed: int, n_init: int) -> Any:
        """The ``rating-lca`` EM fit of the same model (:func:`latentseg.models.rating_lca.fit_rating_lca`;
        its probabilities are 0 at points no respondent used, which :meth:`start_params` moves off 0)."""
        from latentseg.models.bayes._survey import em_weight_kwargs
        from latentseg.models.rating_lca import fit_rating_lca

        return fit_rating_lca(self.data, self.k, measurement=self.measurement, n_init=n_init, random_seed=seed,
                              interval="none", **em_weight_kwargs(fit_rating_lca, self.sample_weight))

    def start_params(self, em: Any) -> dict[str, np.ndarray]:
        """The EM solution on every scale point (points at 0 moved to 1e-4, then renormalised)."""
        w = np.clip(np.asarray(em.params["weights"], float), 1e-6, None)
        w = w / w.sum()
        k = self.k
        flat = np.concatenate([np.asarray(em.params["imp_probs"], float).reshape(k, -1),
                               np.asarray(em.params["sat_probs"], float).reshape(k, -1)], axis=1)
        probs = self._normalise_blocks(np.clip(np.nan_to_num(flat, nan=0.0), 1e-4, None))
        if self.ordinal:
            b, tau = self._ordinal_from_probs(probs)
            return {"weights": w, "locations": b, "thresholds": tau, "probs": np.exp(self._ordinal_logprobs(b, tau))}
        return {"weights": w, "probs": probs}

    def kernel(self) -> Any:
        """``logp(theta, grad) -> float``: the categorical model's is
        :func:`latentseg.models.bayes._rating_kernels.rating_categorical_logp` (the same density
        as ``bayes-lca``'s kernel in a segment x respondent layout, faster on the many categories
        of rating scales); the ordinal model's is ``bayes-lca``'s."""
        if self.ordinal:
            return super().kernel()
        from latentseg.models.bayes._rating_kernels import rating_categorical_logp

        Y, off, nc, k = self.Y, self.offsets, self.ncat, self.k
        alpha, beta = float(self.priors.concentration), float(self.priors.item_concentration)
        wt = self.sample_weight

        def logp_cat(theta: np.ndarray, grad: np.ndarray) -> float:
            return rating_categorical_logp(theta, Y, off, nc, k, alpha, beta, grad)

        def logp_cat_weighted(theta: np.ndarray, grad: np.ndarray) -> float:
            return rating_categorical_logp(theta, Y, off, nc, k, alpha, beta, grad, wt)

        return logp_cat if wt is None else logp_cat_weighted

    @property
    def c_kernel_name(self) -> str:  # type: ignore[override]
        """The C callback of :meth:`kernel`: ``bayes-lca``'s for the ordinal measurement, else the
        C version of :func:`~latentseg.models.bayes._rating_kernels.rating_categorical_logp`, which
        reads ``bayes-lca``'s data buffer (:meth:`c_kernel`)."""
        if self.ordinal:
            return super().c_kernel_name
        from latentseg.models.bayes._rating_kernels import CFUNC_NAME

        return CFUNC_NAME

    def c_kernel(self) -> tuple[str, np.ndarray]:
        """Name (:attr:`c_kernel_name`) and data buffer (``bayes-lca``'s) of the C version of
        :meth:`kernel` (for nutpie)."""
        return self.c_kernel_name, super().c_kernel()[1]

    def n_params(self) -> int:
        """Free parameters as ``rating-lca`` counts them (for BIC at its EM solution): over the
        points some respondent used, items everyone rated alike left out."""
        used = np.array([np.unique(self.codes[:, i][self.codes[:, i] >= 0]).size for i in range(self.J)])
        used = used[used >= 2]
        k = self.k
        if self.ordinal:
            return (k - 1) + k * used.size + int(np.sum(used - 2))
        return (k - 1) + k * int(np.sum(used - 1))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "imp_scale": str(self.ratings.imp_scale), "sat_scale": str(self.ratings.sat_scale)}

    def split_probs(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Importance (..., J, C_imp) and satisfaction (..., J, C_sat) probabilities from the items'
        probabilities side by side (..., C)."""
        J = len(self.outcomes)
        ci, cs = self.ratings.imp_points.size, self.ratings.sat_points.size
        imp = probs[..., : J * ci].reshape(probs.shape[:-1] + (J, ci))
        sat = probs[..., J * ci :].reshape(probs.shape[:-1] + (J, cs))
        return imp, sat

    def centers(self, p: Mapping[str, np.ndarray]) -> np.ndarray:
        """The segment opportunity (..., k, J) of draws ``p``: ``E[imp + max(imp - sat, 0)]`` on the
        0-20 scale of the opportunity scores (:func:`latentseg.prepare.ratings.segment_opportunity`)."""
        from latentseg.prepare.ratings import segment_opportunity

        imp, sat = self.split_probs(p["probs"])
        return segment_opportunity(imp, sat, self.ratings.imp_0_10, self.ratings.sat_0_10)

    def extras(self, p: dict[str, np.ndarray], prob: float) -> dict[str, Any]:
        """``item_probs`` (tidy, posterior mean and interval, categories = the scale points) and
        ``scale_points`` (``kind``, ``point``: the importance and satisfaction scale points)."""
        out = super().extras(p, prob)
        items = out["item_probs"]
        items["category"] = [f"{v:g}" for v in np.tile(self.values, self.k)]
        pts = ([(IMP, m, float(v)) for m, v in enumerate(self.ratings.imp_points)]
               + [(SAT, m, float(v)) for m, v in enumerate(self.ratings.sat_points)])
        out["scale_points"] = pd.DataFrame(pts, columns=["kind", "code", "point"])
        return out


def _spec(data: Any, k: int, measurement: str, priors: Mapping[str, float], settings: Mapping[str, Any],
          sample_weight: Any = None) -> tuple[Any, Any]:
    from latentseg.models.bayes import engine
    from latentseg.models.bayes._survey import set_weights

    s = engine.sampler_settings(settings["draws"], settings["tune"], settings["chains"], settings["sampler"],
                         settings["target_accept"], settings["n_init"], settings["advi_iterations"],
                         settings["keep_log_likelihood"], settings["progressbar"], settings["random_seed"],
                         settings["cores"], settings["max_draws"])
    family = RatingClassFamily(data, k, measurement, LCAPriors(**priors))
    set_weights(family, sample_weight)
    return family, s


_PRIOR_KEYS = ("concentration", "item_concentration", "location_scale", "threshold_scale")
_SETTING_KEYS = ("draws", "tune", "chains", "sampler", "target_accept", "n_init", "advi_iterations",
                 "keep_log_likelihood", "progressbar", "random_seed", "cores", "max_draws")


def fit_bayes_rating_lca(
    data: Any,
    k: int,
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
    random_seed: int | None = None,
    sample_weight: Any = None,
) -> Any:
    """Fit the Bayesian rating latent class model with ``k`` segments.

    Parameters
    ----------
    data : DataFrame or Survey
        The ratings as :func:`latentseg.prepare.ratings.rating_frame` lays them out (``imp:<o>``
        then ``sat:<o>``, ordered Categoricals over every scale point), or a survey (converted by
        it). A missing rating drops out of its respondent's likelihood.
    k : int
    measurement : {"categorical", "ordinal"}, default "categorical"
        ``"categorical"``: an unrestricted response distribution per segment and item
        (``k * sum_i (C_i - 1)`` item parameters); ``"ordinal"``: the adjacent-category logit of
        ``bayes-lca`` (``k * J + sum_i (C_i - 2)``).
    draws, tune, chains, sampler, target_accept, n_init, advi_iterations, keep_log_likelihood, progressbar, cores, max_draws, random_seed
        As in :func:`latentseg.models.bayes.engine.fit_bayes_gmm` (chains are extended until they
        converge, within ``max_draws`` per chain; ``max_draws=draws`` never extends).
    sample_weight : array-like, shape (n,), optional
        Survey weights, aligned with the respondents (rows) of ``data``: the weighted
        pseudo-posterior with its design-based adjustment, as in
        :func:`latentseg.models.bayes.engine.fit_bayes_gmm`.
    concentration, item_concentration, location_scale, threshold_scale : float
        Priors, as in :func:`latentseg.models.bayes.engine.fit_bayes_lca` (``docs/priors.md``).

    Returns
    -------
    SegmentationResult
        ``model="bayes-rating-lca"``, in the rating families' contract: ``feature_names`` the
        outcomes; ``centers`` (k, J) the posterior mean segment opportunity (0-20) and
        ``center_intervals`` (k, J, 2) its 95% credible interval; ``params["imp_probs"]`` (k, J,
        C_imp) and ``params["sat_probs"]`` (k, J, C_sat) the posterior mean category
        probabilities; ``extras["scale_points"]`` the scale points; ``extras["opportunity"]``
        the tidy :func:`latentseg.prepare.ratings.segment_landscape` table (segment opportunity,
        its interval and the top-2-box landscape per segment and outcome). As ``bayes-lca`` otherwise
        (memberships, shares with 95% credible intervals, WAIC / LOO, diagnostics, the posterior
        tree with items ``imp:<o>`` / ``sat:<o>`` on its ``indicator`` dim, ``params["probs"]``,
        ``extras["item_probs"]``). ``settings`` records ``imp_scale`` and ``sat_scale``.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_response_styles
    >>> survey, truth = simulate_response_styles(300, n_outcomes=4, n_segments=2, separation=2.0,
    ...                                          top_share=0.0, sat_scale=(1, 10), random_seed=4)
    >>> r = fit_bayes_rating_lca(survey, 2, draws=500, tune=500, chains=2, random_seed=1)
    >>> r.model, r.centers.shape, r.center_intervals.shape, r.params["sat_probs"].shape
    ('bayes-rating-lca', (2, 4), (2, 4, 2), (2, 4, 10))
    >>> r.shares.round(1).tolist()
    [0.7, 0.3]
    """
    from latentseg.models.bayes import engine

    a = locals()
    family, s = _spec(data, k, measurement, {key: a[key] for key in _PRIOR_KEYS}, {key: a[key] for key in _SETTING_KEYS},
                      sample_weight)
    return _as_rating_result(family, engine.fit_family(family, s))


def fit_sweep(data: Any, ks: Any, *, n_jobs: int | None = None, random_seed: int | None = None, **options: Any) -> list[Any]:
    """Fit :func:`fit_bayes_rating_lca` for every k in ``ks``, as
    :func:`latentseg.models.bayes.engine.fit_sweep` does for the other Bayesian families (nutpie's
    background threads, smallest k first, summaries overlapping the sampling).

    Parameters
    ----------
    data : DataFrame or Survey
    ks : iterable of int
    n_jobs : int, optional
        Fits sampling at the same time (default: a chain per core, at least two fits).
    random_seed : int, optional
        The same seed for every k: ``fit_sweep(s, [2, 3], random_seed=1)[1]`` equals
        ``fit_bayes_rating_lca(s, 3, random_seed=1)``.
    **options
        Passed to :func:`fit_bayes_rating_lca`.

    Returns
    -------
    list of SegmentationResult, in the order of ``ks``
    """
    import inspect

    from latentseg._stats import check_int
    from latentseg.models.bayes import engine

    ks = [check_int(k, "k", low=1) for k in ks]
    if not ks or len(set(ks)) != len(ks):
        raise ConfigError(f"fit_sweep needs distinct values of k; got {ks}.")
    specs = {}
    for k in ks:
        bound = inspect.signature(fit_bayes_rating_lca).bind(data, k, random_seed=random_seed, **options)
        bound.apply_defaults()
        a = bound.arguments
        specs[k] = _spec(data, k, a["measurement"], {key: a[key] for key in _PRIOR_KEYS}, {key: a[key] for key in _SETTING_KEYS},
                         a["sample_weight"])
    families = {k: f for k, (f, _) in specs.items()}
    return [_as_rating_result(families[k], r) for k, r in zip(ks, engine.fit_specs(ks, specs, n_jobs), strict=True)]


def _as_rating_result(family: RatingClassFamily, result: Any) -> Any:
    """The engine's result in the rating families' contract (:mod:`latentseg.prepare.ratings`):
    ``feature_names`` = the outcomes, ``centers`` / ``center_intervals`` the segment opportunity
    and its 95% credible interval, ``params["imp_probs"]`` / ``params["sat_probs"]`` (k, J, C),
    ``extras["opportunity"]`` the tidy :func:`~latentseg.prepare.ratings.segment_landscape` table."""
    import dataclasses

    flat = np.concatenate([np.asarray(result.params["probs"], float)[:, i, : c] for i, c in enumerate(family.ncat)],
                          axis=-1)
    imp, sat = family.split_probs(flat)
    from latentseg.prepare.ratings import segment_landscape

    out = dataclasses.replace(result, feature_names=family.outcomes,
                              params={**result.params, "imp_probs": imp, "sat_probs": sat})
    return dataclasses.replace(out, extras={**out.extras, "opportunity": segment_landscape(out)})


def predict_proba(result: Any, data: Any, *, max_draws: int = 500) -> np.ndarray:
    """Membership probabilities (n_new, k) of new respondents' ratings under a fit: the posterior
    mean over up to ``max_draws`` draws of ``softmax_j(log w_j + log p(y | j))``.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_response_styles
    >>> survey, truth = simulate_response_styles(300, n_outcomes=4, n_segments=2, separation=2.0,
    ...                                          top_share=0.0, sat_scale=(1, 10), random_seed=4)
    >>> r = fit_bayes_rating_lca(survey, 2, draws=200, tune=200, chains=1, random_seed=1)
    >>> predict_proba(r, survey).shape
    (300, 2)
    """
    from latentseg.models.bayes import engine

    if result.model != BAYES_RATING_LCA:
        raise ConfigError(f"predict_proba of {__name__} needs a {BAYES_RATING_LCA} result; got {result.model!r}.")
    family = RatingClassFamily.for_scoring(result, data)
    return engine.mean_memberships(family, family.params_from_result(result, max_draws))

