"""Bayesian Gaussian mixtures and latent class models: fit, score, compare.

``fit_bayes_gmm`` / ``fit_bayes_lca`` fit a mixture with the segment marginalised (no discrete
sampling) and return the shared :class:`~latentseg.SegmentationResult`, with the relabelled
posterior attached as an :class:`xarray.DataTree`. The steps, the same for both families:

1. **EM start.** The EM engine (``fit_gmm`` / ``fit_lca``, several random starts) gives the
   maximum-likelihood solution. Every chain starts from it, jittered a little; it is also the
   reference labelling.
2. **Sampling.** ``sampler="nutpie"`` (default): nutpie's NUTS on our numba implementation of the
   log posterior (:mod:`latentseg.models.bayes._kernels`), which is the PyMC model's log density
   (tested) without PyTensor's compile step; one compiled function serves every k. ``"pymc"``:
   PyMC's own NUTS on the PyMC model; ``"numpyro"``: NumPyro's NUTS on our JAX version of the
   diagonal Gaussian mixture's log density (:mod:`latentseg.models.bayes._jax_kernels`; on a GPU the
   chains run vectorised, for large N), through PyMC's JAX backend for the other models (needs
   ``pip install 'latentseg[jax]'``); ``"advi"``: mean-field ADVI, a quick **approximate** fit,
   labelled as such everywhere. The full-covariance Gaussian mixture has no numba kernel: nutpie
   then compiles the PyMC model. nutpie's compiled route (a C callback through its private
   extension) runs only on the nutpie versions in ``_nutpie.TESTED_NUTPIE``, checked when this
   module is imported; otherwise nutpie's public ``sample``.
2b. **Convergence by design**: after each block the relabelled chains are checked (R-hat <= 1.01
   and bulk ESS >= 400 for every parameter, one mode); if not, they are continued from their last
   draws (chains in another mode restarted from the EM mode) to the length projected to meet
   the rule, within a budget of ``max_draws`` per chain; ``diagnostics["convergence"]`` records
   what was done (:func:`_extension`). A first block whose first quarter of draws already shows
   empty, diffuse or duplicated segments (k too large) keeps only those draws, and nutpie's
   chains stop there (:class:`_EarlyStop`).
3. **Relabelling** every draw to the reference with the Hungarian algorithm
   (:mod:`latentseg.models.bayes._relabel`) before anything is summarised.
4. **Diagnostics after relabelling**: rank-normalised split R-hat, bulk and tail ESS (ArviZ),
   divergences, E-BFMI; chains in different modes are detected and kept apart (the summaries
   use the mode with the highest log-likelihood, the others are reported). A fit with R-hat above
   1.01, any divergence, or chains in different modes is flagged not converged, with advice, in
   ``diagnostics`` and by a :class:`~latentseg.errors.ConvergenceWarning`.
5. **Summaries**: memberships are the posterior mean of ``softmax_j(log w_j + log p(x_n | j))``
   (Rao-Blackwellised) with a 95% interval; shares are the posterior of the weights (mean,
   95% equal-tailed interval; median and HDI in ``extras["share_summary"]``); centers with 95%
   intervals; WAIC and PSIS-LOO on the per-respondent marginal log-likelihood.

Segments are then put in the canonical order (largest posterior mean share first).
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib.util
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from latentseg._stats import check_int, pair_overlap
from latentseg.errors import ConfigError, ConvergenceWarning, FitError, LatentsegWarning
from latentseg.models._criteria import information_criteria
from latentseg.models.bayes._loo import compare_k, loo, waic
from latentseg.result import SegmentationResult
from latentseg.models.families import BAYES_GMM, BAYES_LCA

__all__ = [
    "fit_bayes_gmm",
    "fit_bayes_lca",
    "fit_sweep",
    "predict_proba",
    "prior_predictive_check",
    "compare_k",
    "waic",
    "SAMPLERS",
    "RHAT_MAX",
]

#: samplers ``fit_bayes_*`` accept; the first is the default
SAMPLERS = ("nutpie", "pymc", "numpyro", "advi")
#: a fit with a larger rank-normalised R-hat (any parameter) is not converged
RHAT_MAX = 1.01
#: threads summarising memberships over the draws (blocks of respondents at once, where there are
#: several blocks and CPUs; see _membership_threads): the same numbers with any count
MEMBERSHIP_THREADS = 2
#: nor one with a smaller bulk ESS (any parameter; Vehtari et al. 2021: 400 for R-hat to be reliable)
ESS_MIN = 400
#: the default budget of a fit's chains, in draws per chain: ``max_draws = EXTEND_BUDGET * draws``
EXTEND_BUDGET = 30
#: tuning steps of a chain continued from its last draw (it starts in the typical set already; its
#: step size and mass matrix, low-rank with EXTEND_LOW_RANK, are learnt afresh in them; 500 instead
#: gave the same draws per chain on the benchmark's k = 3, seeds 1-8, at more cost)
EXTEND_TUNE = 200
#: extensions adapt nutpie's low-rank mass matrix instead of the diagonal one: a fit that needs
#: them mixes slowly along directions that move several parameters together (e.g. a group of
#: respondents moving between two segments changes both segments' weights and means), which the
#: low-rank matrix follows; the first block keeps the diagonal one, cheaper to learn, which
#: suffices for most fits (docs/priors.md, "Why a k below the truth mixes slowly")
EXTEND_LOW_RANK = True
#: an extension aims this much beyond the draws its projection says are needed (ESS is noisy)
EXTEND_MARGIN = 1.25
#: and adds at least this fraction of the draws so far
EXTEND_MIN_FACTOR = 1.25
#: but goes at most this many times the draws so far in one extension, and checks again: a short
#: block of a slowly mixing fit has seen few of its slow moves, so its bulk ESS (hence the
#: projection) is noisy; on the benchmark's k = 3 (seeds 1-8) the first block's ESS per draw was
#: 0.46-2.2 times that of 2 x 4000 draws, and the uncapped projection went to 4513-19130 draws per
#: chain, ending at bulk ESS up to 1036, 2.6 times the need (docs/priors.md)
EXTEND_MAX_FACTOR = 4.0
#: at most this many extensions per fit
EXTEND_ROUNDS = 6
#: a fit's first block is judged on its first EARLY_FRACTION of draws (at least EARLY_MIN_DRAWS per
#: chain): when they already show empty, diffuse or duplicated segments (k too large; more draws
#: do not help) the fit keeps only those draws, and nutpie's chains on our kernels are stopped there
EARLY_FRACTION = 0.25
EARLY_MIN_DRAWS = 100
#: before that, the warm-up check: when every chain's warm-up draws WARMUP_WINDOW (fractions of the
#: tuning steps: 151-300 of 1000) already show degenerate segments, the chains are stopped there
#: and the fit keeps those warm-up draws (flagged: not a posterior sample; such a fit is never a
#: candidate). It runs only with at least WARMUP_MIN_TUNE tuning steps (a window of 75+ draws).
#: Measured on the benchmark's data (400 x 8, true k = 4) and a second data set (seed 7), seeds
#: 1-4, k = 2..7: the window never flagged a fit that the first 250 draws after tuning did not
#: flag (no fit at k <= 4 was flagged by either; k = 6 and 7 were flagged by both every time, k = 5
#: by both in 3 of 8 and by the later draws alone in the rest); on unequal shares (0.55, 0.25, 0.14,
#: 0.06; both data sets, seeds 1-3, k = 2..6) the two checks agreed on every fit. It saves the
#: overfitted fits' tuning: about 80% of their cost (their trees are the deepest).
WARMUP_WINDOW = (0.15, 0.30)
WARMUP_MIN_TUNE = 500
#: probability of every interval we report
PROB = 0.95
#: a segment whose posterior mean share is below max(EMPTY_SHARE, EMPTY_COUNT / n) is "empty"
EMPTY_SHARE = 0.01
EMPTY_COUNT = 5
#: the pointwise log-likelihood (draw x respondent) is kept whole, in float64, up to this many cells;
#: above it, draws are thinned evenly (to no fewer than LOGLIK_MIN_DRAWS) and stored in float32 when
#: still larger (docs/priors.md, "What the result holds")
KEEP_LOGLIK_CELLS = 5_000_000
#: the fewest draws (all chains together) a thinned log-likelihood keeps, for PSIS-LOO's tail fit
LOGLIK_MIN_DRAWS = 1000
#: two segments whose respondents' memberships overlap this much (see latentseg._stats.pair_overlap) are duplicates
OVERLAP_MAX = 0.5
#: a segment that is the modal segment of fewer than this fraction of its expected count
#: (share x n) of respondents is "diffuse" (a catch-all overlapping the others; overfitted k)
DIFFUSE_FRACTION = 0.25
#: E-BFMI below this suggests the sampler explored the energy distribution poorly (Betancourt)
EBFMI_MIN = 0.3
#: segments whose EM solution classifies respondents with a relative entropy below this overlap
#: strongly (the conventional "poor classification" line for latent class models)
WEAK_SEPARATION_ENTROPY = 0.6
#: how often the calibration study's 95% share intervals covered the true shares in such fits,
#: by the Gaussian mixture's structure (k = 3, segments with equal spreads; docs/priors.md),
#: quoted by the fit's advice and by the report
WEAK_SEPARATION_COVERAGE = {"diag": "88-91%", "EEI": "96-98%"}


@dataclasses.dataclass(frozen=True)
class _Settings:
    draws: int
    tune: int
    chains: int
    sampler: str
    target_accept: float
    n_init: int
    advi_iterations: int
    keep_log_likelihood: bool | None
    progressbar: bool
    random_seed: int | None
    cores: int | None = None
    max_draws: int = 0  # the chains' budget in draws per chain (0: draws * EXTEND_BUDGET)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["random_seed"], out["cores"]  # cores changes the speed, not the draws
        return out


@dataclasses.dataclass
class _Draws:
    params: dict[str, np.ndarray]  # (C, S, ...)
    diverging: np.ndarray | None = None  # (C, S)
    energy: np.ndarray | None = None  # (C, S)
    tree_depth: np.ndarray | None = None  # (C, S)
    step_size: np.ndarray | None = None  # (C,)
    approximate: bool = False
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    last_theta: np.ndarray | None = None  # (C, nd): each chain's last draw, unconstrained (nutpie kernels)
    checked: Any = None  # the convergence check's relabelled draws and diagnostics (_extension_plan)
    first_judged: tuple[int, str] | None = None  # (n, verdict) of _degenerate_start on the first n draws
    warmup: tuple[int, int, _Draws] | None = None  # (lo, hi, draws): each chain's warm-up draws lo..hi - 1
    warm_judged: tuple[tuple[int, int], str] | None = None  # ((lo, hi), verdict) of the warm-up check


# ============================================================================ public API
def fit_bayes_gmm(
    data: Any,
    k: int,
    *,
    covariance: str = "diag",
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
    random_seed: int | None = None,
    sample_weight: Any = None,
    covariates: pd.DataFrame | None = None,
) -> SegmentationResult:
    """Fit a Bayesian Gaussian mixture (latent profile model) with ``k`` segments.

    Parameters
    ----------
    data : DataFrame or array-like, shape (n, d)
        Numeric columns (opportunity scores, factor scores ...); NaN where missing (a missing
        value drops out of that respondent's likelihood; diagonal covariance only).
    k : int
        Number of segments.
    covariance : {"diag", "EEI", "auto", "full"}, default "diag"
        Segment covariance. ``"diag"``: diagonal, each segment its own sds (independent
        features within a segment, mclust VVI); ``"EEI"``: diagonal with sds shared by the
        segments (Mplus's default latent profile model); ``"auto"``: whichever of the two has the
        lower BIC at its EM fit (mclust's way of choosing a structure; recorded in
        ``settings["covariance"]`` and ``settings["covariance_bic"]``); ``"full"``: full (LKJ
        prior on each segment's correlation matrix, mclust VVV; slower, complete rows only).
        With strongly overlapping segments the choice matters (``docs/priors.md``, calibration):
        when the spreads are in fact equal, EEI's share intervals are half as wide and
        calibrated where VVI's under-cover a little; when they differ, EEI's under-cover badly,
        and BIC often picks EEI wrongly at such overlap. VVI is the default because its
        failure is the mild one.
    draws, tune : int, default 1000, 1000
        Draws per chain of the first block and its tuning (warm-up) iterations. When the chains
        have not converged after it (R-hat above 1.01 or bulk ESS below 400 for some parameter,
        or chains in different modes) they are extended, up to ``max_draws``
        (``diagnostics["convergence"]`` says what was done; ``docs/priors.md``).
    chains : int, default 4
        Independent chains (run in parallel on up to as many cores).
    sampler : {"nutpie", "pymc", "numpyro", "advi"}, default "nutpie"
        See the module notes; ``"advi"`` is approximate and labelled so everywhere.
    concentration : float, default 1.0
        Dirichlet concentration of the segment weights.
    mean_scale, sd_scale, sd_log_sigma, lkj_eta : float
        Prior hyperparameters (see :class:`~latentseg.models.bayes.gmm.GMMPriors` and
        ``docs/priors.md``).
    target_accept : float, default 0.8
        NUTS target acceptance rate; raise it (0.9-0.99) when there are divergences.
    n_init : int, default 10
        Random starts of the EM fit that provides the starting values and reference labels.
    advi_iterations : int, default 20000
        Maximum optimisation steps for ``sampler="advi"``.
    keep_log_likelihood : bool, optional
        The pointwise log-likelihood (chain, draw, respondent) and the observed data in the
        posterior tree (its ``log_likelihood`` and ``observed_data`` groups). Default: kept at
        any size, whole in float64 up to 5 million cells (``KEEP_LOGLIK_CELLS``), beyond that on
        evenly thinned draws (at least 1000) and in float32 if still larger;
        ``diagnostics["log_likelihood"]`` says which (the fit's own LOO and WAIC use the same
        values, so :func:`arviz.loo` on the tree agrees with them). ``True``: every draw in
        float64 whatever the size; ``False``: neither group (LOO and WAIC are still computed).
    progressbar : bool, default False
        Show the sampler's progress: inside a Jupyter kernel in the notebook (an HTML table
        updated in place), elsewhere the sampler's bar on stderr. The draws do not depend on it.
    cores : int, optional
        Chains run in parallel on up to this many cores (default: one per chain, at most the
        machine's). The draws do not depend on it.
    max_draws : int, optional
        The budget of the convergence rule, in draws per chain (all blocks together; default
        ``30 * draws``); ``max_draws=draws`` never extends. A fit that has not converged when
        it is spent is flagged not converged (``diagnostics["convergence"]["status"]``).
    random_seed : int, optional
        The one seed; same seed, same result.
    sample_weight : array-like, shape (n,), optional
        Survey weights (positive, finite, aligned with the rows of ``data``; used as given, so a
        weight of 2 counts a row twice; the pipeline passes them normalised to mean 1). The model
        is then the weighted pseudo-posterior (``prod_n p(x_n | theta) ** w_n`` times the prior),
        whose draws are adjusted after sampling to the design-based (sandwich) covariance
        (Williams & Savitsky 2021): shares, memberships, centers and all their intervals come
        from the adjusted draws, ``interval_method`` names the method,
        ``diagnostics["survey_weights"]`` records the design effect, and LOO / WAIC are the
        weighted sums of the respondents' terms (``docs/methods.md``, "Survey weights
        (Bayesian)"). Not for ``covariance="full"``. ``None``: the unweighted model.
    covariates : DataFrame, optional
        Covariates on membership (one-step latent profile regression): each respondent's segment
        probabilities are a multinomial logit on these columns (aligned with the rows; categorical
        columns dummy-coded against their most frequent level), sampled jointly with the mixture
        with Normal priors on the coefficients (:mod:`latentseg.models.bayes.covariates`,
        ``docs/priors.md``), the chains started at the EM one-step fit. ``extras["covariates"]``:
        the coefficients of segments 2..k against segment 1 (posterior mean, posterior sd as
        ``se``, 95% equal-tailed credible interval, odds ratios); ``settings["covariates_method"]``
        is ``"one-step"``. Diagonal / EEI covariance only, every covariate observed; not with
        ``sample_weight`` (use the three-step ``--covariates-method bch``).

    Returns
    -------
    SegmentationResult
        ``model="bayes-gmm"``, canonical order. ``memberships`` (n, k) posterior means and
        ``membership_intervals`` (n, k, 2); ``shares`` posterior mean weights with 95% credible
        ``share_lower/upper``; ``centers`` (k, d) posterior mean means with
        ``center_intervals`` (k, d, 2); ``params``: ``weights``, ``means``, ``variances``
        (posterior mean of sigma^2) and ``sds`` (diagonal) or ``covariances`` (full).
        ``criteria``: ``waic, waic_se, p_waic, loo, loo_se, p_loo`` (log scale, higher is
        better), and ``loglik, n_params, bic, aic, sabic, caic`` **at the EM maximum-likelihood
        solution** (the reference), ``entropy, icl`` with the posterior memberships.
        ``diagnostics``: ``converged, warnings, approximate, rhat_max, ess_bulk_min,
        ess_tail_min, divergences, ebfmi_min, modes, empty_segments, diffuse_segments, duplicated_segments,
        weak_separation, em_relative_entropy, pareto_k_bad`` and more. ``posterior`` (also
        ``idata``): an ArviZ-ready DataTree with groups ``posterior`` (``weights`` (chain, draw,
        segment), ``means`` and ``sds`` (chain, draw, segment, outcome)), ``sample_stats`` (not
        for ADVI) and, when kept (see ``keep_log_likelihood``), ``log_likelihood`` (``loglik``
        (chain, draw, respondent)) and ``observed_data`` (``x`` (respondent, outcome)):
        ``az.summary``, ``az.plot_trace``, ``az.loo`` and ``az.compare`` take it as it is.
        ``extras``: ``share_summary``
        (mean, median, sd, equal-tailed and HDI bounds, expected counts) and the pointwise
        ``elpd_loo_pointwise``, ``elpd_waic_pointwise``, ``pareto_k``.

    Raises
    ------
    ConfigError
        Bad data or settings; ``sampler="numpyro"`` without JAX / NumPyro installed.

    Warns
    -----
    ConvergenceWarning
        Not converged (R-hat > 1.01, divergences, chains in different modes) or empty /
        duplicated segments (k too large).
    LatentsegWarning
        Approximate fit (ADVI); unreliable LOO (Pareto k above the threshold) or WAIC.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    >>> r = fit_bayes_gmm(X, 2, draws=1000, tune=1000, chains=2, random_seed=1)
    >>> r.interval_method, r.shares.round(1).tolist()
    ('95% credible', [0.6, 0.4])
    """
    if covariates is not None:  # one-step covariates on membership: a PyMC model of their own
        from latentseg.models.bayes.covariates import fit_with_covariates

        return fit_with_covariates(*_spec(BAYES_GMM, {**locals(), "sample_weight": None}), data, covariates, sample_weight)
    return fit_family(*_spec(BAYES_GMM, locals()))


def fit_bayes_lca(
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
    covariates: pd.DataFrame | None = None,
) -> SegmentationResult:
    """Fit a Bayesian latent class model with ``k`` segments.

    Parameters
    ----------
    data : DataFrame or array-like, shape (n, J)
        Categorical indicators (strings, integers, booleans, pandas Categoricals); NaN / None /
        ``pd.NA`` where missing (missing indicators drop out of the respondent's likelihood).
        Categories are coded as in :func:`latentseg.models.lca.fit_lca`.
    k : int
    measurement : {"categorical", "ordinal"}, default "categorical"
        ``"categorical"``: nominal indicators, one probability vector per segment and item
        (Dirichlet(item_concentration) prior). ``"ordinal"``: the adjacent-category logit of the
        EM engine, ``P(y = m | j) ∝ exp(m b_ji - sum_{l<m} tau_il)`` with thresholds shared by the
        segments (summing to zero per item) and segment locations ``b``.
    draws, tune, chains, sampler, target_accept, n_init, advi_iterations, keep_log_likelihood, progressbar, cores, max_draws, random_seed, sample_weight, covariates
        As in :func:`fit_bayes_gmm`. ``covariates``: categorical measurement only.
    concentration : float, default 1.0
        Dirichlet concentration of the segment weights.
    item_concentration : float, default 1.0
        Dirichlet concentration of each item's response probabilities (categorical).
    location_scale, threshold_scale : float, default 2.5
        Prior sds (logit units) of the ordinal locations and thresholds.

    Returns
    -------
    SegmentationResult
        ``model="bayes-lca"``; as :func:`fit_bayes_gmm`, with ``params``: ``weights`` (k,),
        ``probs`` (k, J, Cmax) posterior mean item-response probabilities (NaN-padded), and for
        ordinal models ``locations`` (k, J) and ``shared_params["thresholds"]``; ``centers`` the
        expected category value per segment and item; ``extras``: ``item_probs`` (tidy, with
        95% intervals), ``categories`` and the LOO/WAIC pointwise values; the posterior tree's
        ``observed_data`` holds ``responses`` (respondent, indicator): 0-based category codes
        (the order of ``extras["categories"]``), -1 where missing.

    Examples
    --------
    >>> df = pd.DataFrame({"q1": list("aabbaabbab" * 6), "q2": list("xxyyxxyyxy" * 6),
    ...                    "q3": list("uuvvuuvvuv" * 6)})
    >>> r = fit_bayes_lca(df, 2, draws=1000, tune=1000, chains=2, random_seed=1)
    >>> r.model, r.k
    ('bayes-lca', 2)
    """
    if covariates is not None:  # one-step covariates on membership: a PyMC model of their own
        from latentseg.models.bayes.covariates import fit_with_covariates

        return fit_with_covariates(*_spec(BAYES_LCA, {**locals(), "sample_weight": None}), data, covariates, sample_weight)
    return fit_family(*_spec(BAYES_LCA, locals()))


def predict_proba(result: SegmentationResult, data: Any, *, max_draws: int = 500) -> np.ndarray:
    """Membership probabilities of new respondents under a Bayesian fit.

    The posterior mean over (up to ``max_draws``, evenly thinned) posterior draws of
    ``softmax_j(log w_j + log p(x | j))``; without a posterior, the plug-in value at the
    posterior means in ``result.params``.

    Parameters
    ----------
    result : SegmentationResult
        A ``bayes-gmm`` or ``bayes-lca`` fit.
    data : DataFrame or array-like, shape (n_new, d)
        The columns the model was fitted on (by name for a DataFrame).
    max_draws : int, default 500

    Returns
    -------
    ndarray, shape (n_new, k)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    >>> r = fit_bayes_gmm(X, 2, draws=1000, tune=1000, chains=2, random_seed=1)
    >>> predict_proba(r, np.array([[5.0, 5.0]])).round(2).tolist()
    [[0.0, 1.0]]
    """
    family = _scoring_family(result, data)
    return mean_memberships(family, family.params_from_result(result, max_draws))


def prior_predictive_check(
    data: Any,
    k: int,
    model: str = BAYES_GMM,
    *,
    draws: int = 200,
    random_seed: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Compare the data with data sets simulated from the prior (no fitting).

    Draws ``draws`` parameter sets from the priors (the same distributions as the model),
    simulates a data set of the observed size from each, and compares summary statistics:
    for ``bayes-gmm`` each column's mean, sd, minimum and maximum; for ``bayes-lca`` each
    category's share per item. A prior that puts the observed statistics far in a tail (the
    ``percentile`` column near 0 or 1) is too narrow or off-centre for these data.

    Parameters
    ----------
    data : DataFrame or array-like
    k : int
    model : {"bayes-gmm", "bayes-lca"}, default "bayes-gmm"
    draws : int, default 200
    random_seed : int, optional
    **options
        Prior options of the model (``concentration``, ``mean_scale`` ... for bayes-gmm;
        ``measurement``, ``item_concentration`` ... for bayes-lca; ``covariance``).

    Returns
    -------
    DataFrame
        Columns ``statistic, feature, observed, prior_lower, prior_median, prior_upper``
        (2.5%, 50%, 97.5% of the prior predictive distribution) and ``percentile`` (share of
        simulated data sets with a smaller value). ``attrs["smallest_share"]``: the prior
        predictive median of the smallest segment share.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    >>> t = prior_predictive_check(X, 2, draws=100, random_seed=1)
    >>> sorted(set(t["statistic"]))
    ['max', 'mean', 'min', 'sd']
    """
    draws = check_int(draws, "draws", low=1)
    rng = np.random.default_rng(random_seed)
    if model == BAYES_GMM:
        from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors

        cov = options.pop("covariance", "diag")
        family: Any = GaussianFamily(data, k, cov, GMMPriors(**options))
        if family.covariance == "auto":  # the structure a fit would use
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LatentsegWarning)
                family.em_start(int(rng.integers(2**31 - 1)), 10)
    elif model == BAYES_LCA:
        from latentseg.models.bayes.lca import LCAPriors, LatentClassFamily

        measurement = options.pop("measurement", "categorical")
        family = LatentClassFamily(data, k, measurement, LCAPriors(**options))
    else:
        raise ConfigError(f"prior_predictive_check supports '{BAYES_GMM}' and '{BAYES_LCA}'; got {model!r}.")
    prior = family.sample_prior(rng, draws)
    sims = family.simulate(prior, rng)
    table = family.predictive_statistics(family.observed_matrix(), sims)
    table.attrs["smallest_share"] = float(np.median(prior["weights"].min(axis=1)))
    return table


def fit_sweep(
    data: Any,
    ks: Any,
    model: str = BAYES_GMM,
    *,
    n_jobs: int | None = None,
    random_seed: int | None = None,
    **options: Any,
) -> list[SegmentationResult]:
    """Fit a Bayesian model for every k in ``ks`` (compare them with :func:`compare_k`).

    Every fit gets the same ``random_seed``, so ``fit_sweep(X, [2, 3], random_seed=1)[1]`` is
    ``fit_bayes_gmm(X, 3, random_seed=1)``, whatever ``n_jobs``. With nutpie on our numba kernels
    (the default sampler; diagonal Gaussian or latent class) the fits sample in nutpie's
    background threads of this process, up to ``n_jobs`` at once (default: enough fits for every
    core to run a chain, and at least 2, so that one fit samples while another is summarised),
    smallest k first (a k below the truth mixes slowly and is extended most; overfitted fits are
    mostly stopped in their warm-up), each fit's chains at once (so that a degenerate fit's
    chains all stop at the warm-up check), while this thread computes the next EM start and
    summarises the fits that are done: sampling and summaries overlap and nothing is pickled.
    (On the benchmark sweep, k = 2..7 on 2 cores, two fits at once used about 15% less CPU than
    all six, whose twelve chains oversubscribe the cores.) Other samplers run the
    k values one by one, or in ``n_jobs`` worker processes (chains on ``cores // n_jobs`` cores
    unless ``cores`` is given), whose warnings are raised again here. Every fit in flight holds
    its own copy of the data (about five times its size in float64): for surveys of millions of
    respondents pass a small ``n_jobs``.

    Parameters
    ----------
    data : DataFrame or array-like
    ks : iterable of int
    model : {"bayes-gmm", "bayes-lca"}, default "bayes-gmm"
    n_jobs : int, optional
        Fits sampling at the same time (see above); 1 fits them one by one.
    random_seed : int, optional
    **options
        Passed to :func:`fit_bayes_gmm` / :func:`fit_bayes_lca`.

    Returns
    -------
    list of SegmentationResult, in the order of ``ks``

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    >>> fits = fit_sweep(X, [1, 2], draws=1000, tune=1000, chains=2, random_seed=1)
    >>> compare_k(fits).attrs["recommended_k"]
    2
    """
    if model not in _SWEEP_MODELS:
        raise ConfigError(f"fit_sweep supports '{BAYES_GMM}' and '{BAYES_LCA}'; got {model!r}.")
    ks = [check_int(k, "k", low=1) for k in ks]
    if not ks or len(set(ks)) != len(ks):
        raise ConfigError(f"fit_sweep needs distinct values of k; got {ks}.")
    specs = {k: _family_and_settings(model, data, k, random_seed, options) for k in ks}
    n_jobs = None if n_jobs is None else check_int(n_jobs, "n_jobs", low=1)
    if _shares_a_process(specs) or len(ks) == 1 or n_jobs in (None, 1):  # (other samplers: one at a time by default)
        return fit_specs(ks, specs, n_jobs)
    del specs  # the worker processes build their own
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    opts = dict(options)
    opts.setdefault("cores", max(1, _cpus() // n_jobs))
    if opts.get("sampler") == "advi":  # the one sampler on this path that runs our numba kernel
        _warm_kernel(model, data, min(ks), opts)
    # fork is fast (nothing to import again) but unsafe once threads exist (e.g. after a sampler ran)
    method = "fork" if ("fork" in multiprocessing.get_all_start_methods() and _n_threads() == 1) else "spawn"
    results: dict[int, SegmentationResult] = {}
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(ks)), mp_context=multiprocessing.get_context(method)) as pool:
        with warnings.catch_warnings():
            # the workers fork on submit; fork is chosen only when no thread but jemalloc's (fork-safe)
            # runs, which Python counts anyway
            warnings.filterwarnings("ignore", message=r"This process .* is multi-threaded", category=DeprecationWarning)
            futures = {k: pool.submit(_sweep_worker, model, data, k, random_seed, opts) for k in sorted(ks, reverse=True)}
        for k in ks:
            res, caught = futures[k].result()
            for category, message in caught:
                warnings.warn(message, category, stacklevel=2)
            results[k] = res
    return [results[k] for k in ks]


def fits_in_flight(n_fits: int, chains: int) -> int:
    """Fits sampling at once by default in :func:`sweep_families`: one chain per core, at least
    two fits (one samples while this thread summarises another), at most ``n_fits``."""
    return max(1, min(n_fits, max(2, -(-_cpus() // max(1, chains)))))


def _shares_a_process(specs: Mapping[int, tuple[Any, _Settings]]) -> bool:
    """Whether every fit is one nutpie samples on our kernels (the same test as ``_sample``'s): such
    fits can share one process (:func:`sweep_families`)."""
    return all(s.sampler == "nutpie" and family.has_kernel for family, s in specs.values())


def fit_specs(ks: list[int], specs: dict[int, tuple[Any, _Settings]], n_jobs: int | None) -> list[SegmentationResult]:
    """The fits of ``specs`` (k to (family, settings)) in this process, in the order of ``ks``:
    :func:`sweep_families` where every fit can share the process and more than one is to run at
    once (``n_jobs``, default :func:`fits_in_flight`), else one after another (each family
    released once fitted). The engine's interface for family objects: see :func:`sweep_families`."""
    background = _shares_a_process(specs)
    if n_jobs is None:
        n_jobs = fits_in_flight(len(ks), max(s.chains for _, s in specs.values())) if background else 1
    else:
        n_jobs = check_int(n_jobs, "n_jobs", low=1)
    if not background or n_jobs == 1 or len(ks) == 1:
        return [fit_family(*specs.pop(k)) for k in ks]
    return sweep_families(ks, specs, n_jobs)


def sweep_families(ks: list[int], specs: dict[int, tuple[Any, _Settings]], n_jobs: int) -> list[SegmentationResult]:
    """The sweep with nutpie on our kernels, in one process: up to ``n_jobs`` fits sample at once
    in nutpie's background threads, each with its chains at once, smallest k first (the slowest
    to mix), while this thread starts the next EM solution and summarises the fits that are done.

    Part of the engine's interface for family objects (with :func:`fit_family`,
    :func:`sampler_settings` and :func:`mean_memberships`), through which a family defined in its
    own module (:mod:`latentseg.models.bayes.rating_lca`) is fitted as this module's are.

    Parameters
    ----------
    ks : list of int
    specs : dict of k to (family, settings)
        Each k's family object and :func:`sampler_settings` (see Notes).
    n_jobs : int
        Fits sampling at once (:func:`fits_in_flight` by default in the callers).

    Returns
    -------
    list of SegmentationResult, in the order of ``ks``
        Each exactly what :func:`fit_family` gives for its spec (``cores``, when given, only
        says how many of a fit's chains sample at once).

    Notes
    -----
    Only for families nutpie samples on our kernels: every sampler "nutpie" and every family's
    ``has_kernel`` (not a full-covariance Gaussian mixture), as :func:`fit_sweep` checks.
    """
    import time

    todo = sorted(ks)
    running: dict[int, tuple[Any, Any, tuple]] = {}
    finished: list[tuple[int, Any, tuple]] = []
    results: dict[int, SegmentationResult] = {}
    warmer = _KernelWarmer.start(*specs[todo[0]])
    try:
        while todo or running or finished:
            for k in [k for k, (sampler, _, _) in running.items() if _is_finished(sampler)]:
                _, finish, spec = running.pop(k)
                finished.append((k, finish, spec))
            # keep n_jobs fits sampling before summarising one: summaries run while they sample
            while todo and len(running) < n_jobs:
                k = todo.pop(0)
                family, s = specs[k]
                em, em_messages, start, sample_seed, _ = prepare_start(family, s)
                if warmer is not None:  # the sampler's kernels are compiled (or loaded) there
                    warmer.wait()
                    warmer = None
                sampler, finish = _nutpie_kernel(family, start, s, sample_seed, em)
                running[k] = (sampler, finish, (family, em, em_messages, s, start, sample_seed))
            if finished:
                k, finish, spec = finished.pop(0)
                family, em, em_messages, s, start, sample_seed = spec
                raw = finish()
                step = _extension(family, em, start, s, sample_seed, raw)
                if step is not None:  # not converged yet: the next block samples while others run
                    running[k] = (step[0], step[1], spec)
                    continue
                token = _SAMPLING_ELSEWHERE.set(bool(running))  # their chains have the cores
                try:
                    results[k] = _summarise(family, em, em_messages, raw, s)
                finally:
                    _SAMPLING_ELSEWHERE.reset(token)
            elif running:
                time.sleep(0.005)
    except BaseException:
        for sampler, _, _ in running.values():
            sampler.cancel()
        raise
    finally:
        if warmer is not None:
            warmer.stop()
    return [results[k] for k in ks]


class _KernelWarmer:
    """A forked copy of this process that compiles (or loads from numba's disk cache) the
    sampler's C log density and the summaries' kernel while this process compiles (or loads) the
    EM start's: on an empty cache, two compilations of several seconds each run side by side
    instead of one after the other. The copy only fills the cache: what this process then loads
    from it is what it would have compiled itself, so the results do not depend on the copy (one
    that fails, stalls or overruns ``DEADLINE_S`` is stopped, and this process compiles what is
    missing). Only where work may be shared (:func:`latentseg._fork.fork_workers`: Linux, two
    CPUs or more) and while those kernels are not compiled in this process yet (the first fit of
    a session). The copy takes no lock another thread may hold at the fork (an idle sampler's
    pool from an earlier sweep, OpenBLAS's workers): it only imports, compiles and writes numba's
    cache files."""

    #: seconds without CPU use after which the copy is taken for stuck (compiling keeps it busy)
    STALL_S = 5.0
    #: seconds after which the copy is stopped whatever it does (a cold compilation takes 5-10 s)
    DEADLINE_S = 120.0

    def __init__(self, forked: Any) -> None:
        self.forked = forked

    @classmethod
    def start(cls, family: Any, s: _Settings) -> _KernelWarmer | None:
        from latentseg._fork import Forked, fork_workers
        from latentseg.models.bayes._kernels import compiled_here

        if s.sampler != "nutpie" or not getattr(family, "has_kernel", False) or not hasattr(family, "c_kernel"):
            return None
        if not _compiled_route():
            return None
        if compiled_here(family.c_kernel_name):
            return None  # compiled here already: nothing to gain
        try:
            if fork_workers() < 2:
                return None
        except ConfigError:
            return None
        forked = Forked(lambda: _warm_kernels(family))
        return cls(forked) if forked.pid is not None else None

    def wait(self) -> None:
        """Wait for the copy (stopped if it stalls or overruns): its kernels are then in the cache."""
        import time

        deadline = time.monotonic() + self.DEADLINE_S
        delay = 0.002
        while not self.forked.done() and not self.forked.stalled(self.STALL_S) and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(2 * delay, 0.02)
        self.stop()

    def stop(self) -> None:
        self.forked.stop()


def _warm_kernels(family: Any) -> bool:
    """(In :class:`_KernelWarmer`'s copy.) Compile or load the family's C log density, nutpie's
    copy callback and the membership summary, with the types the fits call them with (the
    summary's arrays as :func:`_memberships` passes them: float64, C-contiguous)."""
    from latentseg.models.bayes._kernels import cfunc, membership_summary

    cfunc(family.c_kernel_name)
    cfunc("copy")
    T, B, k = 2, 3, 2
    membership_summary(np.zeros((T, B, k)), np.zeros((T, k)), 0.025, 0.975, np.empty((T, B)), np.empty((B, k)),
                       np.empty((B, k, 2)), True)
    return True


def _is_finished(sampler: Any) -> bool:
    """Whether a background nutpie sampler is done (nutpie 0.16 raises TimeoutError for "not yet")."""
    try:
        return bool(sampler.is_finished)
    except TimeoutError:
        return False


def _spec(model: str, args: Mapping[str, Any]) -> tuple[Any, _Settings]:
    """(family, settings) of ``fit_bayes_gmm`` / ``fit_bayes_lca`` from their arguments (``args``
    holds every parameter of the function, as its ``locals()`` do on entry)."""
    a = args
    settings = sampler_settings(a["draws"], a["tune"], a["chains"], a["sampler"], a["target_accept"], a["n_init"],
                         a["advi_iterations"], a["keep_log_likelihood"], a["progressbar"], a["random_seed"], a["cores"],
                         a["max_draws"])
    if model == BAYES_GMM:
        from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors

        priors: Any = GMMPriors(a["concentration"], a["mean_scale"], a["sd_scale"], a["sd_log_sigma"], a["lkj_eta"])
        family: Any = GaussianFamily(a["data"], a["k"], a["covariance"], priors)
    else:
        from latentseg.models.bayes.lca import LCAPriors, LatentClassFamily

        priors = LCAPriors(a["concentration"], a["item_concentration"], a["location_scale"], a["threshold_scale"])
        family = LatentClassFamily(a["data"], a["k"], a["measurement"], priors)
    if a.get("sample_weight") is not None:
        from latentseg.models.bayes._survey import set_weights

        set_weights(family, a["sample_weight"])
    return family, settings


def _family_and_settings(model: str, data: Any, k: int, random_seed: int | None, options: Mapping[str, Any]) -> tuple[Any, _Settings]:
    """The (family, settings) pair ``fit_bayes_*(data, k, random_seed=random_seed, **options)`` fits
    (unknown options raise the same TypeError the function would)."""
    import inspect

    fit_fn = fit_bayes_gmm if model == BAYES_GMM else fit_bayes_lca
    bound = inspect.signature(fit_fn).bind(data, k, random_seed=random_seed, **options)
    bound.apply_defaults()
    return _spec(model, bound.arguments)


_SWEEP_MODELS = (BAYES_GMM, BAYES_LCA)


def _n_threads() -> int:
    """Threads of this process (the OS's count where it can be read), not counting jemalloc's
    background thread (started by pyarrow when pandas is imported; it is fork-safe)."""
    import threading

    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return threading.active_count()
    count = 0
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/comm") as fh:
                if fh.read().strip() == "jemalloc_bg_thd":
                    continue
        except OSError:
            pass
        count += 1
    return count


def _sweep_worker(model: str, data: Any, k: int, seed: int | None, options: dict[str, Any]) -> tuple[Any, list]:
    fit_fn = fit_bayes_gmm if model == BAYES_GMM else fit_bayes_lca
    _SAMPLING_ELSEWHERE.set(True)  # (a worker process of its own) the other workers sample meanwhile
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_fn(data, k, random_seed=seed, **options)
    return res, [(w.category, str(w.message)) for w in caught]


def _warm_kernel(model: str, data: Any, k: int, options: Mapping[str, Any]) -> None:
    """Compile (or load) the numba log density in this process before forking workers."""
    if model == BAYES_GMM:
        from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors

        from latentseg.models.bayes.gmm import covariance_option

        if covariance_option(options.get("covariance", "diag")) == "full":
            return
        family: Any = GaussianFamily(data, k, "diag", GMMPriors())  # the same compiled kernel as EEI
    else:
        from latentseg.models.bayes.lca import LatentClassFamily, LCAPriors

        family = LatentClassFamily(data, k, options.get("measurement", "categorical"), LCAPriors())
    rng = np.random.default_rng(0)
    prior = family.sample_prior(rng, 1)
    theta = family.theta_from_params({key: val[0] for key, val in prior.items()})
    family.kernel()(theta, np.empty(theta.size))


# ============================================================================ fitting loop
def sampler_settings(
    draws: Any,
    tune: Any,
    chains: Any,
    sampler: Any,
    target_accept: Any,
    n_init: Any,
    advi_iterations: Any,
    keep_log_likelihood: Any,
    progressbar: Any,
    random_seed: Any,
    cores: Any = None,
    max_draws: Any = None,
) -> _Settings:
    """The sampling settings of a fit, each checked (one clear error for a bad value): the
    arguments of :func:`fit_bayes_gmm` of the same names (the engine's interface for family
    objects: see :func:`sweep_families`).

    Raises
    ------
    ConfigError
        A value out of range, an unknown sampler, or numpyro without its extra installed.
    """
    if sampler not in SAMPLERS:
        raise ConfigError(f"The 'sampler' parameter must be one of {', '.join(SAMPLERS)}. Got {sampler!r} instead.")
    if not (isinstance(target_accept, (int, float)) and 0 < target_accept < 1):
        raise ConfigError(f"The 'target_accept' parameter must be a number in (0, 1). Got {target_accept!r} instead.")
    if random_seed is not None and (isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer))):
        raise ConfigError(f"The 'random_seed' parameter must be an integer or None. Got {random_seed!r} instead.")
    if sampler == "numpyro" and (importlib.util.find_spec("numpyro") is None or importlib.util.find_spec("jax") is None):
        from latentseg.models.bayes._jax_kernels import MISSING_JAX

        raise ConfigError(MISSING_JAX)
    return _Settings(
        draws=check_int(draws, "draws", low=1),
        tune=check_int(tune, "tune", low=0),
        chains=check_int(chains, "chains", low=1),
        sampler=str(sampler),
        target_accept=float(target_accept),
        n_init=check_int(n_init, "n_init", low=1),
        advi_iterations=check_int(advi_iterations, "advi_iterations", low=100),
        keep_log_likelihood=None if keep_log_likelihood is None else bool(keep_log_likelihood),
        progressbar=bool(progressbar),
        random_seed=None if random_seed is None else int(random_seed),
        cores=None if cores is None else check_int(cores, "cores", low=1),
        max_draws=_budget(draws, max_draws),
    )


def _budget(draws: Any, max_draws: Any) -> int:
    """The chains' budget in draws per chain: ``max_draws``, at least ``draws`` (default
    ``EXTEND_BUDGET * draws``)."""
    draws = check_int(draws, "draws", low=1)
    if max_draws is None:
        return EXTEND_BUDGET * draws
    max_draws = check_int(max_draws, "max_draws", low=1)
    if max_draws < draws:
        raise ConfigError(f"The 'max_draws' parameter must be at least draws ({draws}). Got {max_draws} instead.")
    return max_draws


def prepare_start(family: Any, s: _Settings) -> tuple[SegmentationResult, list[str], dict[str, np.ndarray], int, np.random.Generator]:
    """The EM start of a fit: (EM result, its warnings, starting parameters, sampler seed, the
    generator of the chains' jitter), all derived from ``s.random_seed``."""
    rng = np.random.default_rng(s.random_seed)
    g_em, g_sample, g_init = rng.spawn(3)
    em_seed = int(g_em.integers(2**31 - 1))
    sample_seed = int(g_sample.integers(2**31 - 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatentsegWarning)
        em = family.em_start(em_seed, s.n_init)
    em_messages = []
    for w in caught:
        if issubclass(w.category, LatentsegWarning):
            em_messages.append(str(w.message))
        else:  # not ours to swallow
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return em, em_messages, _start(family, em), sample_seed, g_init


def _start(family: Any, em: SegmentationResult) -> dict[str, np.ndarray]:
    """The chains' start and reference labelling: the EM solution, for survey weights the
    pseudo-posterior's mode near it (:func:`latentseg.models.bayes._survey.weighted_start`)."""
    if getattr(family, "sample_weight", None) is None:
        return family.start_params(em)
    from latentseg.models.bayes._survey import weighted_start

    return weighted_start(family, em)


def fit_family(family: Any, s: _Settings) -> SegmentationResult:
    """One Bayesian fit of a family object: the EM start, the chains, their extensions by the
    convergence rule, and the summary (the engine's interface for family objects: see
    :func:`sweep_families`).

    Parameters
    ----------
    family : family object
        A model at one k on its data (:class:`latentseg.models.bayes.gmm.GaussianFamily` and the
        like: log density, EM start, relabelling, summaries).
    s : settings
        From :func:`sampler_settings`.

    Returns
    -------
    SegmentationResult
    """
    warmer = _KernelWarmer.start(family, s)  # the sampler's kernels, while the EM start runs here
    try:
        em, em_messages, start, sample_seed, g_init = prepare_start(family, s)
        if warmer is not None:
            warmer.wait()
    finally:
        if warmer is not None:
            warmer.stop()
    raw = _sample(family, start, s, sample_seed, g_init, em)
    while (step := _extension(family, em, start, s, sample_seed, raw)) is not None:
        raw = step[1]()
    return _summarise(family, em, em_messages, raw, s)


def _cpus() -> int:
    """CPUs this process may use (:func:`latentseg._fork.available_cpus`)."""
    from latentseg._fork import available_cpus

    return available_cpus()


def _cores(s: _Settings) -> int:
    limit = s.cores if s.cores is not None else _cpus()
    return max(1, min(s.chains, limit))


def _sample(family: Any, start: dict[str, np.ndarray], s: _Settings, seed: int, g_init: np.random.Generator,
            em: SegmentationResult | None = None) -> _Draws:
    """The first block of a fit's chains (``em``: the reference labelling, for nutpie's early stop
    of a degenerate fit, :class:`_EarlyStop`)."""
    if s.sampler == "advi":
        if family.has_kernel:
            return _advi_kernel(family, start, s, seed)
        return _advi_pymc(family, start, s, seed)
    if s.sampler == "nutpie" and family.has_kernel:
        import time

        sampler, finish = _nutpie_kernel(family, start, s, seed, em)
        if isinstance(sampler, _EarlyStop):  # poll, so that a degenerate fit stops early
            while not sampler.is_finished:
                time.sleep(0.01)
        return finish()
    if s.sampler == "numpyro" and family.model == BAYES_GMM and family.has_kernel and family.sample_weight is None:
        from latentseg.models.bayes._jax_kernels import sample_numpyro

        out = sample_numpyro(family, start, s.draws, s.tune, s.chains, seed, s.target_accept, s.progressbar)
        return _Draws(**{key: out[key] for key in ("params", "diverging", "energy", "tree_depth", "step_size", "info")})
    return _pymc_nuts(family, start, s, seed, g_init)


def _compiled_route() -> bool:
    """Whether nutpie's compiled extension may be used (the C callback): only on the nutpie
    versions this was tested with (``_nutpie.TESTED_NUTPIE``, checked against the version installed
    when the engine was imported) and unless ``USE_C_CALLBACK`` is switched off."""
    from latentseg.models.bayes._nutpie import is_tested

    return USE_C_CALLBACK and is_tested(NUTPIE_VERSION)


def _nutpie_run(family: Any, nd: int, initial_point: Any, s: _Settings, *, draws: int, tune: int, chains: int,
                cores: int, seed: int, low_rank: bool = False,
                window: tuple[int, int] | None = None) -> tuple[Any, Any, str]:
    """Start ``chains`` NUTS chains on the numba log density in nutpie's background threads:
    ``(sampler, finish, engine)``; ``finish()`` waits and returns the arrays ``theta`` (chains,
    draws, nd), ``diverging, energy, depth, step_size`` (chains, draws) of the kept draws.
    ``low_rank``: nutpie's low-rank mass-matrix adaptation instead of the diagonal one.
    ``window``: also return each chain's warm-up draws ``lo..hi - 1`` (the warm-up check's), as
    ``arrays["warmup"] = (lo, hi, arrays)``.

    On a tested nutpie (:func:`_compiled_route`) nutpie's threads call the C version of the log
    density, started through nutpie's compiled extension alone (:mod:`latentseg.models.bayes._nutpie`:
    the chains start before nutpie's Python package, ArviZ and SciPy are imported), and the draws
    are read from its Arrow trace. Otherwise nutpie's public route: ``nutpie.sample`` (not blocking)
    on ``from_pyfunc``, the Python-callable log density, and nutpie's DataTree (same draws, slower).
    """
    model = None
    if _compiled_route():
        from latentseg.models.bayes._nutpie import kernel_model

        model = kernel_model(family, nd, initial_point)
    if model is not None:
        from latentseg.models.bayes._nutpie import start_chains

        sampler = start_chains(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                               target_accept=s.target_accept, progressbar=s.progressbar, low_rank=low_rank)

        def read() -> dict[str, Any]:
            batches = sampler.wait().get_arrow_trace()
            arrays: dict[str, Any] | None = _batch_arrays(batches, chains, draws, nd)
            assert arrays is not None
            if window is not None:
                arrays["warmup"] = (*window, _window_arrays(batches, chains, *window, nd))
            return arrays

        engine = "nutpie (numba log density, C callback)"
    else:
        import nutpie

        sampler = nutpie.sample(_pyfunc_model(family, nd, initial_point), draws=draws, tune=tune, chains=chains,
                                cores=cores, seed=seed, progress_bar=s.progressbar, target_accept=s.target_accept,
                                save_warmup=window is not None, blocking=False,
                                **(_low_rank_option(nutpie) if low_rank else {}))

        def group(trace: Any, warm: bool, rows: slice) -> dict[str, np.ndarray]:
            post, ss = (trace["warmup_posterior"], trace["warmup_sample_stats"]) if warm else (
                trace["posterior"], trace["sample_stats"])
            out = {"theta": np.asarray(post["theta"].values)}
            out.update({key: np.asarray(ss[key].values) for key in _TRACE_STATS})
            return {key: val[:, rows] for key, val in out.items()}

        def read() -> dict[str, Any]:
            trace = sampler.wait()
            arrays: dict[str, Any] = group(trace, False, slice(None))
            if window is not None:
                arrays["warmup"] = (*window, group(trace, True, slice(*window)))
            return arrays

        engine = "nutpie (numba log density, Python callback)"

    def finish() -> dict[str, np.ndarray]:
        try:
            return read()
        except BaseException:
            sampler.cancel()
            raise

    return sampler, finish, engine


def _low_rank_option(nutpie: Any) -> dict[str, Any]:
    """``nutpie.sample``'s option for the low-rank mass matrix: ``adaptation="low_rank"`` where it
    exists, else the older ``low_rank_modified_mass_matrix=True`` (the same settings)."""
    import inspect

    if "adaptation" in inspect.signature(nutpie.sample).parameters:
        return {"adaptation": "low_rank"}
    return {"low_rank_modified_mass_matrix": True}


def _draws_from_arrays(family: Any, arrays: Mapping[str, Any], engine: str) -> _Draws:
    """The draws of :func:`_batch_arrays`'s arrays; ``arrays["warmup"]``, when there, is
    ``(lo, hi, arrays)`` of the warm-up window (:func:`_window_arrays`), kept as ``raw.warmup``."""
    theta = np.asarray(arrays["theta"], dtype=float)
    window = arrays.get("warmup")
    return _Draws(
        params=family.params_from_theta(theta),
        diverging=np.asarray(arrays["diverging"], dtype=bool),
        energy=np.asarray(arrays["energy"], dtype=float),
        tree_depth=np.asarray(arrays["depth"], dtype=float),
        step_size=np.asarray(arrays["step_size"], dtype=float)[:, -1],
        info={"engine": engine},
        last_theta=theta[:, -1].copy(),
        warmup=None if window is None else (window[0], window[1], _draws_from_arrays(family, window[2], engine)),
    )


def _warmup_window(s: _Settings) -> tuple[int, int] | None:
    """The warm-up draws (rows lo..hi - 1 of each chain) the warm-up check judges
    (:data:`WARMUP_WINDOW`), ``None`` with fewer than :data:`WARMUP_MIN_TUNE` tuning steps."""
    if s.tune < WARMUP_MIN_TUNE:
        return None
    return int(WARMUP_WINDOW[0] * s.tune), int(WARMUP_WINDOW[1] * s.tune)


def _nutpie_kernel(family: Any, start: dict[str, np.ndarray], s: _Settings, seed: int,
                  em: SegmentationResult | None = None) -> tuple[Any, Any]:
    """nutpie's NUTS on the numba log density (one compiled function for every k and data set),
    the first block of a fit's chains, from the EM start jittered per chain (:func:`_nutpie_run`).

    The chains run in nutpie's background threads; this returns a ``(sampler, finish)`` pair:
    ``_is_finished(sampler)`` says when they are done and ``finish()`` waits for them and returns
    the draws. The progress, if asked for, shows in the notebook inside a Jupyter kernel and as
    nutpie's terminal bar elsewhere (``_nutpie.progress_type``; nutpie's public route decides the
    same by itself). With ``em`` (the reference labelling) on the compiled route, the chains are
    watched and stopped after their first draws when these show a degenerate fit
    (:class:`_EarlyStop`).
    """
    from latentseg.models.bayes._nutpie import Chains

    theta0 = family.theta_from_params(start)

    def initial_point(chain_seed: int) -> np.ndarray:
        return family.jitter(theta0, np.random.default_rng(chain_seed))

    window = _warmup_window(s) if family.k > 1 else None
    sampler, read, engine = _nutpie_run(family, theta0.size, initial_point, s, draws=s.draws, tune=s.tune,
                                        chains=s.chains, cores=_cores(s), seed=seed, window=window)
    n_first = _early_draws(s)
    if em is not None and (n_first or window) and family.k > 1 and isinstance(sampler, Chains):
        watched = _EarlyStop(sampler, read, family, em, n_first, theta0.size, s.chains, engine, tune=s.tune,
                             window=window)
        return watched, watched.finish
    return sampler, lambda: _draws_from_arrays(family, read(), engine)


class _EarlyStop:
    """A fit's first block on nutpie's compiled route, watched (through nutpie's copy of the trace
    so far, looked at every ``POLL`` to ``MAX_POLL`` seconds), with two looks: once every chain has
    its warm-up draws ``window`` (the warm-up check, :data:`WARMUP_WINDOW`), and once every chain
    has its first ``n`` draws after tuning (the first-block rule, :data:`EARLY_FRACTION`). Each
    judges its draws by :func:`_degenerate_start`; a degenerate fit's chains are stopped there and
    ``finish()`` returns those draws. :func:`_extension` applies the same two rules to every first
    block, on the same draws, so the result does not depend on when (or whether) the chains were
    looked at: this only saves the draws the rules would drop."""

    POLL = 0.05
    MAX_POLL = 0.5

    def __init__(self, chains: Any, read: Any, family: Any, em: SegmentationResult, n: int, nd: int, C: int,
                 engine: str, tune: int = 0, window: tuple[int, int] | None = None) -> None:
        import time

        self.chains, self.read, self.family, self.em = chains, read, family, em
        self.n, self.nd, self.C, self.engine = n, nd, C, engine
        self.first: dict[str, Any] | None = None  # the judged draws of a degenerate fit
        self.window = window
        self.warm_judged = window is None
        self.warm_verdict = ""
        self.judged = not n  # no first-block rule (a block too short for it)
        self.verdict = ""
        self.tune = tune
        self._t0 = time.perf_counter()
        self._next = self._t0 + self.POLL

    @property
    def is_finished(self) -> bool:
        import time

        if self.first is not None or _is_finished(self.chains):
            return True
        now = time.perf_counter()
        if (self.judged and self.warm_judged) or now < self._next:
            return False
        batches = self.chains.inspect().get_arrow_trace()  # a copy of the trace so far: a few ms
        rows = [batch.num_rows for batch in batches[0]]
        if not self.warm_judged:
            assert self.window is not None
            lo, hi = self.window
            window = _window_arrays(batches, self.C, lo, hi, self.nd)
            if window is None:  # not every chain is there yet: look again when they should be
                self._next = now + self._wait(rows, now, hi)
                return False
            self.warm_judged = True
            self.warm_verdict = _degenerate_start(self.family, self.em,
                                                  _draws_from_arrays(self.family, window, self.engine), hi - lo)
            if self.warm_verdict:
                self.chains.cancel()
                self.first = {**window, "warmup": (lo, hi, window)}
                return True
        if self.judged:
            return False
        arrays = _batch_arrays(batches, self.C, self.n, self.nd, first=True)
        if arrays is None:
            self._next = now + self._wait(rows, now, self.tune + self.n)
            return False
        self.judged = True
        self.verdict = _degenerate_start(self.family, self.em, _draws_from_arrays(self.family, arrays, self.engine),
                                         self.n)
        if self.verdict:
            self.chains.cancel()
            if self.window is not None:
                lo, hi = self.window
                arrays["warmup"] = (lo, hi, _window_arrays(batches, self.C, lo, hi, self.nd))
            self.first = arrays
            return True
        return False

    def _wait(self, rows: list[int], now: float, target: int) -> float:
        """Seconds to the next look: half the time the chains should still need for ``target``
        rows each (``rows``: each chain's so far), at their pace so far, between ``POLL`` and
        ``MAX_POLL``. The trace is copied a dozen times per fit rather than every ``POLL``; the
        estimate is a lower bound (chains that share a core run one after the other and need more
        rows), so a ready chain waits at most ``MAX_POLL`` to be looked at."""
        have = sum(rows)
        if have <= 0 or len(rows) != self.C:
            return self.POLL
        rate = (now - self._t0) / have  # seconds per row, the chains together
        need = sum(max(0, target - r) for r in rows)
        return min(self.MAX_POLL, max(self.POLL, 0.5 * rate * need))

    def cancel(self) -> None:
        self.chains.cancel()

    def finish(self) -> _Draws:
        try:
            arrays = self.first if self.first is not None else self.read()
        except BaseException:
            self.chains.cancel()
            raise
        raw = _draws_from_arrays(self.family, arrays, self.engine)
        # the draws the rules judge: not judged twice
        if self.window is not None and self.warm_judged:
            raw.warm_judged = (self.window, self.warm_verdict)
        if self.n and self.judged:
            raw.first_judged = (self.n, self.verdict)
        return raw


def _early_draws(s: _Settings) -> int:
    """Draws per chain the first-block rule judges (:data:`EARLY_FRACTION`), 0 when the block is
    too short for it."""
    n = max(EARLY_MIN_DRAWS, int(math.ceil(EARLY_FRACTION * s.draws)))
    return n if n < s.draws else 0


def _first_draws(raw: _Draws, n: int) -> _Draws:
    """The first ``n`` draws of every chain (no state to continue from)."""
    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:, :n]

    return dataclasses.replace(raw, params={key: val[:, :n] for key, val in raw.params.items()},
                               diverging=cut(raw.diverging), energy=cut(raw.energy), tree_depth=cut(raw.tree_depth),
                               last_theta=None, checked=None)


def _degenerate_start(family: Any, em: SegmentationResult, raw: _Draws, n: int) -> str:
    """Empty, diffuse or duplicated segments (:func:`_degenerate_now`) on the first ``n`` draws of
    every chain, relabelled, in the kept mode: "" if none, else what was found."""
    first = _first_draws(raw, n)
    params, _ = _relabelled(family, em, first)
    _, keep, _ = _modes(family, params, first)
    return _degenerate_now(family, params, keep)


def _first_block_rule(family: Any, em: SegmentationResult, raw: _Draws, s: _Settings, record: dict[str, Any]) -> None:
    """The first-block rule: when the first :func:`_early_draws` draws of every chain already show
    degenerate segments (k too large: more draws do not help), the fit keeps only those draws
    (``raw`` is cut in place) and ``record["stopped_early"]`` says so."""
    if raw.warmup is not None and family.k > 1:  # the warm-up check, first
        lo, hi, window = raw.warmup
        judged_w = raw.warm_judged
        found = judged_w[1] if judged_w is not None and judged_w[0] == (lo, hi) else _degenerate_start(
            family, em, window, hi - lo)
        if found:  # the window's draws and statistics, whether or not the watcher stopped the chains there
            raw.params, raw.diverging, raw.energy = window.params, window.diverging, window.energy
            raw.tree_depth, raw.step_size, raw.last_theta = window.tree_depth, window.step_size, None
            record["stopped_early"] = (f"{found} in warm-up draws {lo + 1}-{hi} of {s.tune} per chain: the chains "
                                       "were stopped there, and the draws kept are those warm-up draws (not a "
                                       "posterior sample)")
            record["stopped_in_warmup"] = True
            return
    n = _early_draws(s)
    S = raw.params["weights"].shape[1]
    if not n or family.k < 2 or S < n:
        return
    judged = raw.first_judged
    found = judged[1] if judged is not None and judged[0] == n else _degenerate_start(family, em, raw, n)
    if not found:
        return
    if S > n:
        cut = _first_draws(raw, n)
        raw.params, raw.diverging, raw.energy, raw.tree_depth = cut.params, cut.diverging, cut.energy, cut.tree_depth
        raw.last_theta = None
    record["stopped_early"] = f"{found} in the first {n} draws per chain: the chains were stopped there"


# ============================================================================ convergence by design
class _Group:
    """Several samplers (one per chain) as one: finished when all are; cancelled together."""

    def __init__(self, samplers: list[Any]) -> None:
        self.samplers = samplers

    @property
    def is_finished(self) -> bool:
        return all(_is_finished(x) for x in self.samplers)

    def cancel(self) -> None:
        for x in self.samplers:
            x.cancel()


class _Done:
    """A sampler that has already finished (an extension run synchronously)."""

    is_finished = True

    def cancel(self) -> None:
        pass


def _extension(family: Any, em: SegmentationResult, start: dict[str, np.ndarray], s: _Settings, seed: int,
               raw: _Draws) -> tuple[Any, Any] | None:
    """The next block of a fit's chains, or ``None`` when the fit is done (converged, or extending
    cannot help, or the budget is spent). The decision and what was done are recorded in
    ``raw.info["convergence"]`` (``diagnostics["convergence"]`` of the result).

    The rule (``docs/priors.md``, "Convergence by design"): after each block, on the relabelled
    draws of every chain, the fit has converged when every parameter has R-hat <= ``RHAT_MAX``
    and bulk ESS >= ``ESS_MIN`` and all chains are in one mode. Otherwise, unless more draws
    cannot help (divergent transitions; degenerate segments, i.e. k too large) or the budget
    (``max_draws`` per chain) or ``EXTEND_ROUNDS`` are spent, every chain is continued from its
    last draw (``EXTEND_TUNE`` tuning steps, then the new draws appended) to the number of draws
    projected to meet the rule (ESS grows with the draws; ``EXTEND_MARGIN`` beyond it, at least
    ``EXTEND_MIN_FACTOR`` and at most ``EXTEND_MAX_FACTOR`` times the draws so far, at most the
    budget; nutpie's low-rank mass matrix with ``EXTEND_LOW_RANK``); chains in another mode than
    the best are restarted from the EM mode (full tuning) and replace their old draws. Returns a
    ``(sampler, finish)`` pair as :func:`_nutpie_kernel` does; ``finish()`` gives the draws of all
    blocks together.
    """
    record = raw.info.setdefault("convergence", {
        "rule": f"R-hat <= {RHAT_MAX} and bulk ESS >= {ESS_MIN} for every parameter, all chains in one mode",
        "budget_draws_per_chain": s.max_draws, "rounds": []})
    if raw.approximate or s.sampler == "advi":
        record.update(status="not applicable (ADVI)", extended=False)
        return None
    if not record["rounds"]:
        _first_block_rule(family, em, raw, s, record)
    plan = _extension_plan(family, em, raw, s, record)
    if plan is None:
        return None
    target, restart = plan
    C, S = raw.params["weights"].shape[:2]
    rnd = len(record["rounds"])
    seeds = np.random.SeedSequence([seed, rnd]).generate_state(C)
    if s.sampler == "nutpie" and family.has_kernel and raw.last_theta is not None:
        theta0 = family.theta_from_params(start)
        record["extension_mass_matrix"] = "low-rank" if EXTEND_LOW_RANK else "diagonal"
        samplers, readers = [], []
        engine = ""
        for c in range(C):
            if c in restart:
                point = family.jitter(theta0, np.random.default_rng(int(seeds[c])))
                draws, tune = target, s.tune
            else:
                point = raw.last_theta[c]
                draws, tune = target - S, min(s.tune, EXTEND_TUNE)
            sampler, read, engine = _nutpie_run(family, point.size, lambda _seed, p=point: p.copy(), s, draws=draws,
                                                tune=tune, chains=1, cores=1, seed=int(seeds[c]),
                                                low_rank=EXTEND_LOW_RANK)
            samplers.append(sampler)
            readers.append(read)
        group = _Group(samplers)

        def finish() -> _Draws:
            try:
                blocks = [_draws_from_arrays(family, read(), engine) for read in readers]
            except BaseException:
                group.cancel()
                raise
            return _merge_blocks(raw, blocks, restart)

        return group, finish
    # other samplers: longer chains from the start (their state cannot be continued)
    longer = dataclasses.replace(s, draws=target)
    g_init = np.random.default_rng(int(seeds[0]))
    new = _sample(family, start, longer, int(seeds[0]), g_init)
    new.info["convergence"] = record
    record["rounds"][-1]["action"] = f"restarted all chains from the EM mode with {target} draws"
    return _Done(), lambda: new


def _extension_plan(family: Any, em: SegmentationResult, raw: _Draws, s: _Settings,
                    record: dict[str, Any]) -> tuple[int, list[int]] | None:
    """Check the rule on ``raw`` and decide: ``None`` (done; ``record["status"]`` says why) or
    (draws per chain to reach, chains to restart from the EM mode)."""
    params, switched = _relabelled(family, em, raw)
    groups, keep, chain_ll = _modes(family, params, raw)
    C, S = params["weights"].shape[:2]
    d = _mcmc_diagnostics(_diagnostic_arrays(family, params), raw, C)
    raw.checked = (params, switched, groups, keep, chain_ll, d)  # _summarise reuses them
    rhat, ess = d["rhat_max"], d["ess_bulk_min"]
    row: dict[str, Any] = {"draws_per_chain": S, "rhat_max": rhat, "ess_bulk_min": ess, "modes": len(groups),
                           "divergences": d["divergences"]}
    record["rounds"].append(row)
    record["draws_per_chain"] = S
    record["extended"] = len(record["rounds"]) > 1
    rhat_ok = not (np.isfinite(rhat) and rhat > RHAT_MAX)
    ess_ok = not (np.isfinite(ess) and ess < ESS_MIN)
    if record.get("stopped_early"):  # judged degenerate on its first draws: never converged, whatever R-hat says
        # the draws kept are the ones the rule judged, so this finds what it found
        found = _degenerate_now(family, params, keep) or "degenerate segments"
        record["status"] = f"not extended: {found} (k is probably too large; more draws do not help)"
        return None
    if d["divergences"]:  # checked first: a fit with divergences is not converged, whatever R-hat says
        record["status"] = "not extended: divergent transitions (more draws do not remove them; raise target_accept)"
        return None
    if rhat_ok and ess_ok and len(groups) == 1:
        record["status"] = "converged"
        return None
    degenerate = _degenerate_now(family, params, keep)
    if degenerate:
        record["status"] = f"not extended: {degenerate} (k is probably too large; more draws do not help)"
        return None
    if len(record["rounds"]) > EXTEND_ROUNDS:
        record["status"] = f"not converged after {EXTEND_ROUNDS} extensions"
        return None
    factor = EXTEND_MIN_FACTOR
    if not ess_ok:
        factor = max(factor, EXTEND_MARGIN * ESS_MIN / max(ess, 1.0))
    if not rhat_ok:  # R-hat - 1 shrinks about as 1 / draws while the chains mix
        factor = max(factor, EXTEND_MARGIN * (rhat - 1.0) / (RHAT_MAX - 1.0))
    factor = min(factor, EXTEND_MAX_FACTOR)  # a short block's projection overshoots: check again on the way
    target = min(s.max_draws, int(math.ceil(S * factor)))
    if target <= S:
        record["status"] = f"budget spent ({s.max_draws} draws per chain): not converged"
        return None
    restart = [c for c in range(C) if c not in keep] if len(groups) > 1 else []
    why = [w for w, bad in ((f"R-hat {rhat:.4f}", not rhat_ok), (f"bulk ESS {ess:.0f}", not ess_ok),
                            (f"{len(groups)} modes", len(groups) > 1)) if bad]
    row["action"] = (f"{', '.join(why)}: chains continued to {target} draws"
                     + (f"; chain(s) {restart} restarted from the EM mode" if restart else ""))
    return target, restart


def _degenerate_now(family: Any, params: Mapping[str, np.ndarray], keep: list[int], per_chain: int = 100) -> str:
    """Empty, diffuse or duplicated segments (as the summary flags them) on up to ``per_chain``
    evenly spaced draws of the kept chains: "" if none, else what was found."""
    S = params["weights"].shape[1]
    idx = np.unique(np.linspace(0, S - 1, min(S, per_chain)).astype(int))
    sub = {key: val[:, idx] for key, val in params.items()}
    kept = _kept_in_canonical_order(family, sub, keep, means_only=True)
    empty, _, diffuse, dups = _degenerate_segments(family, kept, kept.flat["weights"].mean(axis=0), {})
    found = [f"{name} segments {val}" for name, val in (("empty", empty), ("diffuse", diffuse), ("duplicated", dups))
             if val]
    return "; ".join(found)


def _merge_blocks(raw: _Draws, blocks: list[_Draws], restart: list[int]) -> _Draws:
    """The draws of ``raw`` with each chain's new block appended (or, for the chains in
    ``restart``, replacing them)."""
    def join(old: np.ndarray | None, new: list[np.ndarray | None]) -> np.ndarray | None:
        if old is None or any(x is None for x in new):
            return None
        return np.stack([x[0] if c in restart else np.concatenate([old[c], x[0]]) for c, x in enumerate(new)])

    params = {key: join(val, [b.params[key] for b in blocks]) for key, val in raw.params.items()}
    return _Draws(
        params=params,  # type: ignore[arg-type]
        diverging=join(raw.diverging, [b.diverging for b in blocks]),
        energy=join(raw.energy, [b.energy for b in blocks]),
        tree_depth=join(raw.tree_depth, [b.tree_depth for b in blocks]),
        step_size=np.array([b.step_size[0] for b in blocks]) if all(b.step_size is not None for b in blocks) else None,
        info=raw.info,
        last_theta=np.stack([b.last_theta[0] for b in blocks]) if all(b.last_theta is not None for b in blocks) else None,
    )


#: the sample statistics read from nutpie's trace besides the draws
_TRACE_STATS = ("diverging", "energy", "depth", "step_size")


def _trace_rows(batches: tuple[Any, Any], chains: int, n_dim: int,
                rows: Callable[[np.ndarray], Any]) -> dict[str, np.ndarray] | None:
    """Draws ``theta`` (chains, m, n_dim) and the statistics we use (chains, m), straight from
    nutpie's Arrow trace (its (draw, statistics) record batches, one per chain; building its
    DataTree of every statistic cost about 0.2 s per fit), on the rows ``rows(tuning)`` picks in
    each chain from its tuning flags (a mask or a slice; ``None``: not there yet). ``None`` while
    a chain is missing or ``rows`` says so."""
    import pyarrow as pa

    draw_batches, stat_batches = batches
    if len(draw_batches) != chains:
        return None
    out: dict[str, list[np.ndarray]] = {key: [] for key in ("theta", *_TRACE_STATS)}
    for draw, stat in zip(draw_batches, stat_batches):
        keep = rows(np.asarray(pa.array(stat.column("tuning")).to_numpy(zero_copy_only=False), dtype=bool))
        if keep is None:
            return None
        theta = pa.array(draw.column("theta")).flatten().to_numpy(zero_copy_only=False).reshape(draw.num_rows, n_dim)
        out["theta"].append(theta[keep])
        for key in _TRACE_STATS:
            out[key].append(np.asarray(pa.array(stat.column(key)).to_numpy(zero_copy_only=False))[keep])
    return {key: np.stack(val) for key, val in out.items()}


def _batch_arrays(batches: tuple[Any, Any], chains: int, draws: int, n_dim: int,
                  first: bool = False) -> dict[str, np.ndarray] | None:
    """The kept draws (after tuning) of every chain (:func:`_trace_rows`). ``first``: the first
    ``draws`` of a trace still growing, ``None`` while a chain has fewer."""
    def rows(tuning: np.ndarray) -> np.ndarray | None:
        keep = ~tuning
        if first:
            if keep.sum() < draws:
                return None
            keep &= np.cumsum(keep) <= draws
        return keep

    arrays = _trace_rows(batches, chains, n_dim, rows)
    if arrays is None:
        if first:
            return None
        raise ValueError("unexpected number of chains in the trace")
    if arrays["theta"].shape != (chains, draws, n_dim):
        raise ValueError("unexpected shape of the draws in the trace")
    return arrays


def _window_arrays(batches: tuple[Any, Any], chains: int, lo: int, hi: int, n_dim: int) -> dict[str, np.ndarray] | None:
    """Each chain's warm-up rows ``lo..hi - 1`` (:func:`_trace_rows`); ``None`` while a chain has
    fewer than ``hi`` rows."""
    def rows(tuning: np.ndarray) -> slice | None:
        if tuning.size < hi:
            return None
        if not tuning[lo:hi].all():
            raise ValueError("the warm-up window reaches past the tuning steps")
        return slice(lo, hi)

    return _trace_rows(batches, chains, n_dim, rows)


def _pyfunc_model(family: Any, nd: int, initial_point: Any) -> Any:
    """nutpie model calling the numba log density through Python (nutpie's public ``from_pyfunc``)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    kernel = family.kernel()

    def make_logp_fn() -> Any:
        def logp(x: np.ndarray, **_: Any) -> tuple[float, np.ndarray]:
            grad = np.empty(nd)
            return kernel(x, grad), grad

        return logp

    def make_expand_fn(*_: Any) -> Any:
        def expand(x: np.ndarray, **_: Any) -> dict[str, np.ndarray]:
            return {"theta": np.array(x, dtype=np.float64, copy=True)}

        return expand

    return from_pyfunc(nd, make_logp_fn, make_expand_fn, [np.dtype("float64")], [(nd,)], ["theta"],
                       make_initial_point_fn=initial_point)


#: set to False to force the Python-callback path (tests compare the two)
USE_C_CALLBACK = True
#: the nutpie installed when the engine was imported (package metadata; nutpie itself is not
#: imported): the compiled route runs only if it is in ``_nutpie.TESTED_NUTPIE``
NUTPIE_VERSION: str | None = None


def _check_nutpie() -> str | None:
    from latentseg.models.bayes._nutpie import installed_version

    return installed_version()


NUTPIE_VERSION = _check_nutpie()


def _pymc_nuts(
    family: Any, start: dict[str, np.ndarray], s: _Settings, seed: int, g_init: np.random.Generator
) -> _Draws:
    """NUTS on the PyMC model: PyMC's own sampler, NumPyro's, or nutpie (compiling the model)."""
    import pymc as pm

    model = family.pymc_model()
    inits = [family.pymc_initvals(family.jitter_params(start, g)) for g in g_init.spawn(s.chains)]
    if s.sampler == "nutpie":  # only for models without a numba kernel (full covariance)
        import nutpie

        compiled = nutpie.compile_pymc_model(model, initial_points=inits[0], jitter_rvs=set())
        trace = nutpie.sample(
            compiled,
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            cores=_cores(s),
            seed=seed,
            progress_bar=s.progressbar,
            target_accept=s.target_accept,
            save_warmup=False,
        )
        ss = trace.sample_stats
        return _Draws(
            params=family.params_from_pymc(trace.posterior),
            diverging=np.asarray(ss["diverging"].values, dtype=bool),
            energy=np.asarray(ss["energy"].values, dtype=float),
            tree_depth=np.asarray(ss["depth"].values, dtype=float),
            info={"engine": "nutpie (PyMC model compiled by PyTensor)"},
        )
    kwargs: dict[str, Any] = {}
    if s.sampler == "pymc":
        kwargs["target_accept"] = s.target_accept
        initvals: Any = inits
        kwargs["init"] = "adapt_diag"
    else:
        kwargs["nuts_sampler_kwargs"] = {"target_accept": s.target_accept}
        initvals = inits[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        idata = pm.sample(
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            cores=_cores(s),
            random_seed=seed,
            progressbar=s.progressbar,
            nuts_sampler=s.sampler,
            initvals=initvals,
            model=model,
            compute_convergence_checks=False,
            **kwargs,
        )
    ss = idata["sample_stats"]
    names = set(ss.data_vars)
    return _Draws(
        params=family.params_from_pymc(idata["posterior"]),
        diverging=np.asarray(ss["diverging"].values, dtype=bool) if "diverging" in names else None,
        energy=np.asarray(ss["energy"].values, dtype=float) if "energy" in names else None,
        tree_depth=np.asarray(ss["tree_depth"].values, dtype=float) if "tree_depth" in names else None,
        info={"engine": f"{s.sampler} NUTS on the PyMC model"},
    )


def _advi_kernel(family: Any, start: dict[str, np.ndarray], s: _Settings, seed: int) -> _Draws:
    """Mean-field ADVI (Kucukelbir et al. 2017) on the numba log density.

    ``q(theta) = Normal(m, diag(exp(2 omega)))`` in the unconstrained space, started at the EM
    solution; the ELBO gradient by the reparameterisation trick (one draw per step) and Adam
    (step 0.01). Every 500 steps the averages of ``m`` and ``omega`` over the window are compared
    with the previous window's: converged when no mean moved by more than 5% of its approximate
    posterior sd and no ``omega`` by more than 0.05.
    """
    rng = np.random.default_rng(seed)
    kernel = family.kernel()
    m = family.theta_from_params(start).astype(float)
    nd = m.size
    omega = np.full(nd, math.log(0.05))
    params = np.concatenate([m, omega])
    m1 = np.zeros(2 * nd)
    m2 = np.zeros(2 * nd)
    b1, b2, lr, eps = 0.9, 0.999, 0.01, 1e-8
    grad = np.empty(nd)
    window = 500
    acc = np.zeros(2 * nd)
    prev: np.ndarray | None = None
    converged = False
    t = 0
    for t in range(1, s.advi_iterations + 1):
        m, omega = params[:nd], params[nd:]
        e = rng.standard_normal(nd)
        sd = np.exp(omega)
        lp = kernel(m + sd * e, grad)
        if not np.isfinite(lp):
            continue
        g = np.concatenate([grad, grad * e * sd + 1.0])
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        params = params + lr * (m1 / (1 - b1**t)) / (np.sqrt(m2 / (1 - b2**t)) + eps)
        acc += params
        if t % window == 0:
            avg = acc / window
            acc[:] = 0.0
            if prev is not None:
                sd_prev = np.exp(prev[nd:])
                moved = np.abs(avg[:nd] - prev[:nd]) / sd_prev
                if moved.max() < 0.05 and np.abs(avg[nd:] - prev[nd:]).max() < 0.05:
                    params = avg
                    converged = True
                    break
            prev = avg
    m, omega = params[:nd], params[nd:]
    theta = m + np.exp(omega) * rng.standard_normal((1, s.draws, nd))
    return _Draws(
        params=family.params_from_theta(theta),
        approximate=True,
        info={"engine": "mean-field ADVI (numba log density)", "advi_iterations": t, "advi_converged": converged},
    )


def _advi_pymc(family: Any, start: dict[str, np.ndarray], s: _Settings, seed: int) -> _Draws:
    """PyMC's mean-field ADVI (for models without a numba kernel).

    The convergence callback is ``pymc.variational.callbacks.CheckParametersConvergence`` (PyMC 6
    no longer has the ``pm.callbacks`` alias of PyMC 5)."""
    import pymc as pm
    from pymc.variational.callbacks import CheckParametersConvergence

    model = family.pymc_model()
    with model:
        approx = pm.fit(
            n=s.advi_iterations,
            method="advi",
            random_seed=seed,
            start=family.pymc_initvals(start),
            progressbar=s.progressbar,
            callbacks=[CheckParametersConvergence(tolerance=1e-3, diff="relative")],
        )
        idata = approx.sample(draws=s.draws, random_seed=seed)
    n_done = len(approx.hist)
    return _Draws(
        params=family.params_from_pymc(idata["posterior"]),
        approximate=True,
        info={
            "engine": "mean-field ADVI (PyMC)",
            "advi_iterations": n_done,
            "advi_converged": n_done < s.advi_iterations,
        },
    )


# ============================================================================ summaries
def _summarise(family: Any, em: SegmentationResult, em_messages: list[str], raw: _Draws, s: _Settings) -> SegmentationResult:
    """Everything a fit reports, from its raw draws, in these steps: relabel every draw to the EM
    solution; find the chains' modes and keep the best one; diagnose all chains; summarise the kept
    chains in the canonical segment order (memberships, WAIC / LOO, shares, centers); flag degenerate
    segments; judge convergence and write the advice (one warning); assemble the result."""
    n = family.n
    if raw.checked is not None:  # the last convergence check relabelled and diagnosed these draws
        params, switched, groups, keep, chain_ll, mcmc = raw.checked
    else:
        params, switched = _relabelled(family, em, raw)
        groups, keep, chain_ll = _modes(family, params, raw)
        mcmc = None
    diag = _sampling_diagnostics(family, params, raw, s, groups, keep, chain_ll, switched, mcmc)
    params, raw = _thinned(params, raw, s.draws, diag, family)
    wt = getattr(family, "sample_weight", None)
    unadjusted = None
    if wt is not None:  # the pseudo-posterior's draws, moved to the design-based covariance
        from latentseg.models.bayes._survey import design_adjust

        unadjusted = params["weights"][keep]
        params, diag["survey_weights"] = design_adjust(family, params, keep, wt)
    ll_plan = _loglik_plan(len(keep), params["weights"].shape[1], n, s.keep_log_likelihood)
    kept = _kept_in_canonical_order(family, params, keep, ll_plan)
    diag["log_likelihood"] = ll_plan.record()
    post_kept = _dataset(family.posterior_variables(kept.pk), family, keep, kept.S)
    w_res = waic(kept.loglik)
    l_res = loo(kept.loglik.reshape(len(keep), ll_plan.draws.size, n), post_kept)
    if wt is not None:
        from latentseg.models.bayes._survey import weighted_elpd

        w_res, l_res = weighted_elpd(w_res, l_res, wt)
    w_draws = kept.flat["weights"]
    shares, share_lo, share_hi, share_summary = _share_summary(w_draws, kept.z_mean, wt)
    if unadjusted is not None:  # the unadjusted pseudo-posterior's shares, for comparison (docs/methods.md)
        u = unadjusted.reshape(-1, family.k)[:, kept.order]
        lo_q, hi_q = (1 - PROB) / 2, 1 - (1 - PROB) / 2
        diag["survey_weights"]["pseudo_posterior_shares"] = {
            "mean": u.mean(axis=0).tolist(), "lower": np.quantile(u, lo_q, axis=0).tolist(),
            "upper": np.quantile(u, hi_q, axis=0).tolist()}
    centers, center_int = _center_summary(family.centers(kept.flat))
    empty, empty_cut, diffuse, dups = _degenerate_segments(family, kept, shares, diag)
    diag["reference_order"] = kept.order

    messages: list[str] = []
    converged = _verdict(diag, raw, groups, keep, messages, params["weights"].shape[0])
    _degenerate_advice(family.k, empty, empty_cut, diffuse, dups, messages)
    _weak_separation_advice(family, em, diag, messages)
    _loo_waic_advice(l_res, w_res, diag, messages)
    _final_diagnostics(diag, em_messages, l_res, w_res, n, converged, messages)
    if messages:
        degenerate = bool(empty or dups or diffuse)
        category = ConvergenceWarning if (not converged or degenerate) else LatentsegWarning
        prefix = "Not converged: " if not converged else ""
        warnings.warn(f"{family.model} k={family.k}: {prefix}" + " ".join(messages), category, stacklevel=3)

    return _result(family, em, raw, s, kept, post_kept, w_res, l_res, diag, shares, (share_lo, share_hi),
                   share_summary, centers, center_int)


def _thinned(params: dict[str, np.ndarray], raw: _Draws, draws: int,
             diag: dict[str, Any], family: Any = None) -> tuple[dict[str, np.ndarray], _Draws]:
    """Chains extended beyond ``draws`` per chain, thinned back to ``draws`` evenly spaced draws, or
    more where the rule needs them (below; first and last included; intervals of ``S / kept``
    rounded) for the summaries and the stored posterior. They were extended because their draws are autocorrelated (ESS well below the
    number of draws), so thinning by less than the autocorrelation time keeps nearly all of the
    information; R-hat, ESS and divergences in ``diag`` are those of the full chains.

    A fit that met the convergence rule meets it on the stored draws too: when the thinned draws
    of every chain (``family`` given) have an R-hat above ``RHAT_MAX`` or a bulk ESS below
    ``ESS_MIN`` for some parameter (R-hat estimated from fewer draws is noisier: the benchmark's
    k = 3 at seed 1 had 1.0076 on its 2 x 5834 draws, 1.0114 on 2 x 1000 of them), twice as many
    are kept, and so on, up to all of them. ``diag["convergence"]``
    records ``thinned_by`` (the mean interval; 1: not thinned) and, when thinned, the rule on the
    stored draws (``stored_rhat_max``, ``stored_ess_bulk_min``)."""
    S = params["weights"].shape[1]
    conv = diag.get("convergence")
    if S <= draws:
        if conv is not None:
            conv["thinned_by"] = 1
        return params, raw
    check = family is not None and conv is not None and conv.get("status") == "converged"
    n_keep = draws
    while True:
        idx = np.unique(np.linspace(0, S - 1, min(n_keep, S)).round().astype(int))
        if not check or idx.size >= S:
            break
        rhat, ess = _rule_on(family, {k: v[:, idx] for k, v in params.items()})
        conv["stored_rhat_max"], conv["stored_ess_bulk_min"] = rhat, ess
        if rhat <= RHAT_MAX and ess >= ESS_MIN:
            break
        n_keep *= 2
    if conv is not None:
        conv["thinned_by"] = round(S / idx.size, 2)
        if idx.size >= S:
            conv.pop("stored_rhat_max", None)
            conv.pop("stored_ess_bulk_min", None)
            return params, raw

    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:, idx]

    thin_raw = dataclasses.replace(raw, params={k: v[:, idx] for k, v in raw.params.items()},
                                   diverging=cut(raw.diverging), energy=cut(raw.energy), tree_depth=cut(raw.tree_depth))
    return {k: v[:, idx] for k, v in params.items()}, thin_raw


def _rule_on(family: Any, params: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """(largest R-hat, smallest bulk ESS) over every parameter of the relabelled draws ``params``
    of every chain, as the convergence rule computes them (ArviZ's definitions)."""
    res, _ = _rank_diagnostics(_diagnostic_arrays(family, params))
    rhat, ess = res["rhat"][np.isfinite(res["rhat"])], res["ess_bulk"][np.isfinite(res["ess_bulk"])]
    return (float(rhat.max()) if rhat.size else float("nan")), (float(ess.min()) if ess.size else float("nan"))


@dataclasses.dataclass(frozen=True)
class _LoglikPlan:
    """Which draws of each chain the pointwise log-likelihood keeps, and in which float type."""

    draws: np.ndarray  # indices into each chain's draws
    of: int  # draws per chain
    dtype: Any
    stored: bool  # in the posterior tree

    def record(self) -> dict[str, Any]:
        return {"stored": self.stored, "draws_per_chain": int(self.draws.size), "of_draws_per_chain": self.of,
                "thinned": bool(self.draws.size < self.of), "dtype": np.dtype(self.dtype).name}


def _loglik_plan(C: int, S: int, n: int, keep: bool | None) -> _LoglikPlan:
    """The memory rule of the pointwise log-likelihood (C chains x S draws x n respondents): every
    draw in float64 up to ``KEEP_LOGLIK_CELLS`` cells (or whatever the size, when ``keep`` is
    True); beyond that evenly thinned draws, as many as fit in ``KEEP_LOGLIK_CELLS`` cells but at
    least ``LOGLIK_MIN_DRAWS`` over all chains, in float32 when they still exceed it. The fit's
    LOO and WAIC use the same values, and they are stored in the posterior tree unless ``keep``
    is False.

    Examples
    --------
    >>> _loglik_plan(2, 1000, 400, None).record()["thinned"]
    False
    >>> r = _loglik_plan(2, 1000, 1_000_000, None).record()
    >>> r["draws_per_chain"], r["dtype"]
    (500, 'float32')
    """
    full = C * S * n <= KEEP_LOGLIK_CELLS or keep is True
    if full:
        return _LoglikPlan(np.arange(S), S, np.float64, keep is not False)
    per_chain = min(S, max(int(math.ceil(LOGLIK_MIN_DRAWS / C)), KEEP_LOGLIK_CELLS // (C * n)))
    idx = np.unique(np.linspace(0, S - 1, per_chain).round().astype(int))
    dtype = np.float64 if C * idx.size * n <= KEEP_LOGLIK_CELLS else np.float32
    return _LoglikPlan(idx, S, dtype, keep is not False)


@dataclasses.dataclass
class _Kept:
    """The draws of the chains a fit is summarised from (one mode), in the canonical segment order
    (largest posterior mean share first), and the memberships computed from them."""

    keep: list[int]  # the chains summarised
    S: int  # draws per chain
    params_all: dict[str, np.ndarray]  # every chain (C, S, ...), canonical order
    pk: dict[str, np.ndarray]  # the kept chains (Ck, S, ...)
    flat: dict[str, np.ndarray]  # the kept chains pooled (Ck * S, ...)
    loglik: np.ndarray  # pointwise log-likelihood (Ck * S', n) on the draws of _LoglikPlan, label-free
    ll_draws: np.ndarray  # the draws of each chain it is on (S',)
    z_mean: np.ndarray  # posterior mean memberships (n, k)
    z_int: np.ndarray  # their 95% intervals (n, k, 2)
    order: list[int]  # the reference (EM) segment of each canonical segment


def _relabelled(family: Any, em: SegmentationResult, raw: _Draws) -> tuple[dict[str, np.ndarray], float]:
    """The draws relabelled to the EM solution (the reference labelling) by the Hungarian
    algorithm, and the share of draws whose labels were switched; non-finite draws raise."""
    from latentseg.models.bayes._relabel import relabel_draws

    k = family.k
    params = raw.params
    if not np.isfinite(params["weights"]).all():
        raise FitError(f"The {family.model} sampler returned non-finite draws; try sampler='pymc' or a smaller k.")
    reference = _start(family, em)
    if k > 1:
        params, perms = relabel_draws(params, reference, family.relabel_cost, family.segment_keys)
        switched = float(np.mean(np.any(perms != np.arange(k), axis=-1)))
    else:
        switched = 0.0
    return params, switched


def _modes(family: Any, params: Mapping[str, np.ndarray], raw: _Draws) -> tuple[list[list[int]], list[int], np.ndarray | None]:
    """Chains that settled in different places after relabelling: the groups of chains (one per
    mode), the group kept (highest mean log-likelihood) and each chain's mean log-likelihood (only
    computed when there are several modes)."""
    from latentseg.models.bayes._relabel import chain_modes

    C = params["weights"].shape[0]
    groups = [list(range(C))]
    if C > 1 and family.k > 1 and not raw.approximate:
        groups = chain_modes(params["weights"], family.location_summary(params))
    chain_ll = None
    if len(groups) > 1:
        chain_ll = _chain_loglik(family, params)
        main = max(range(len(groups)), key=lambda g: float(np.mean(chain_ll[groups[g]])))
    else:
        main = 0
    return groups, groups[main], chain_ll


def _sampling_diagnostics(family: Any, params: Mapping[str, np.ndarray], raw: _Draws, s: _Settings,
                          groups: list[list[int]], keep: list[int], chain_ll: np.ndarray | None,
                          switched: float, mcmc: dict[str, Any] | None = None) -> dict[str, Any]:
    """The diagnostics of the sampler on all chains (after relabelling): R-hat, ESS, divergences,
    E-BFMI (MCMC only; ``mcmc`` if already computed), label switching, the modes and the chains used."""
    C, S = params["weights"].shape[:2]
    diag: dict[str, Any] = {"approximate": raw.approximate, "sampler": s.sampler, **raw.info}
    if not raw.approximate:
        if mcmc is None:
            mcmc = _mcmc_diagnostics(_diagnostic_arrays(family, params), raw, C)
        diag.update(mcmc)
    else:
        diag.update({"rhat_max": None, "ess_bulk_min": None, "ess_tail_min": None, "divergences": None})
    diag["label_switching_share"] = switched
    diag["n_chains"] = C
    diag["n_draws"] = S
    diag["modes"] = [
        {
            "chains": [int(c) for c in g],
            "mean_weights": [float(x) for x in params["weights"][g].mean(axis=(0, 1))],
            **({"mean_loglik": float(np.mean(chain_ll[g]))} if chain_ll is not None else {}),
        }
        for g in groups
    ]
    diag["chains_used"] = [int(c) for c in keep]
    return diag


def _kept_in_canonical_order(family: Any, params: Mapping[str, np.ndarray], keep: list[int],
                             ll_plan: _LoglikPlan | None = None, *, means_only: bool = False) -> _Kept:
    """The kept chains' draws, pooled, with their memberships, put in the canonical order: largest
    posterior mean share first (ties: first center), as :class:`~latentseg.SegmentationResult`;
    the pointwise log-likelihood on the draws ``ll_plan`` names (default: all, float64).
    ``means_only``: the mean memberships alone (``loglik`` and ``z_int`` left empty), for a check
    that reads nothing else."""
    S = params["weights"].shape[1]
    pk = {key: val[keep] for key, val in params.items()}
    Ck = len(keep)
    flat = {key: val.reshape((Ck * S,) + val.shape[2:]) for key, val in pk.items()}
    rows = None
    dtype: Any = np.float64
    if ll_plan is not None and ll_plan.draws.size < S:
        rows = (np.arange(Ck)[:, None] * S + ll_plan.draws[None, :]).ravel()
    if ll_plan is not None:
        dtype = ll_plan.dtype
    loglik, z_mean, z_int = _memberships(family, flat, loglik_rows=rows, loglik_dtype=dtype,
                                         keep_loglik=not means_only, intervals=not means_only)
    if means_only:
        loglik, z_int = np.empty((0, z_mean.shape[0])), np.full(z_mean.shape + (2,), np.nan)
    assert loglik is not None and z_int is not None

    w_draws = flat["weights"]
    centers_draws = family.centers(flat)
    order = np.lexsort((centers_draws.mean(axis=0)[:, 0], -w_draws.mean(axis=0)))
    seg = family.segment_keys
    return _Kept(
        keep=keep,
        S=S,
        params_all={key: (val[:, :, order] if key in seg else val) for key, val in params.items()},
        pk={key: (val[:, :, order] if key in seg else val) for key, val in pk.items()},
        flat={key: (val[:, order] if key in seg else val) for key, val in flat.items()},
        loglik=loglik,
        ll_draws=np.arange(S) if rows is None else ll_plan.draws,  # type: ignore[union-attr]
        z_mean=z_mean[:, order],
        z_int=z_int[:, order],
        order=[int(j) for j in order],
    )


def _share_summary(w_draws: np.ndarray, z_mean: np.ndarray,
                   sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Posterior mean shares, their 95% equal-tailed bounds, and the table of
    ``extras["share_summary"]`` (mean, median, sd, equal-tailed and HDI bounds, expected counts;
    with survey weights the counts are weighted: n is the weights' sum and ``membership_sum``
    the weighted sum of the memberships)."""
    n, k = z_mean.shape
    lo_q, hi_q = (1 - PROB) / 2, 1 - (1 - PROB) / 2
    shares = w_draws.mean(axis=0)
    share_lo, share_hi = np.quantile(w_draws, [lo_q, hi_q], axis=0)
    hdi = _hdi(w_draws)
    if sample_weight is None:
        counts = z_mean.sum(axis=0)
    else:
        counts = sample_weight @ z_mean
        n = float(sample_weight.sum())
    table = pd.DataFrame(
        {
            "segment": np.arange(1, k + 1),
            "mean": shares,
            "median": np.median(w_draws, axis=0),
            "sd": w_draws.std(axis=0, ddof=1) if w_draws.shape[0] > 1 else np.zeros(k),
            "eti_lower": share_lo,
            "eti_upper": share_hi,
            "hdi_lower": hdi[:, 0],
            "hdi_upper": hdi[:, 1],
            "expected_n": shares * n,
            "expected_n_lower": share_lo * n,
            "expected_n_upper": share_hi * n,
            "membership_sum": counts,
        }
    )
    return shares, share_lo, share_hi, table


def _center_summary(centers_draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean centers (k, d) and their 95% equal-tailed intervals (k, d, 2)."""
    lo_q, hi_q = (1 - PROB) / 2, 1 - (1 - PROB) / 2
    centers = centers_draws.mean(axis=0)
    center_int = np.moveaxis(np.quantile(centers_draws, [lo_q, hi_q], axis=0), 0, -1)
    return centers, center_int


def _degenerate_segments(family: Any, kept: _Kept, shares: np.ndarray,
                         diag: dict[str, Any]) -> tuple[list[int], float, list[int], list[list[int]]]:
    """Empty segments (share below the cut), diffuse ones (modal segment of few respondents) and
    duplicated pairs (close centers or overlapping memberships), 1-based, recorded in ``diag``;
    returns (empty, the empty cut, diffuse, duplicated pairs)."""
    k, n = family.k, family.n
    z_mean = kept.z_mean
    empty_cut = max(EMPTY_SHARE, EMPTY_COUNT / n)
    empty = [int(j + 1) for j in np.flatnonzero(shares < empty_cut)]
    mean_params = {key: val.mean(axis=0) for key, val in kept.flat.items()}
    overlap = pair_overlap(z_mean)
    close = set(family.duplicates(mean_params)) | {pair for pair, v in overlap.items() if v >= OVERLAP_MAX}
    dups = [[int(a + 1), int(b + 1)] for a, b in sorted(close)]
    diag["segment_overlap_max"] = max(overlap.values()) if overlap else 0.0
    modal_n = np.bincount(z_mean.argmax(axis=1), minlength=k)
    diffuse = [int(j + 1) for j in range(k) if (j + 1) not in empty and modal_n[j] < DIFFUSE_FRACTION * shares[j] * n]
    diag["empty_segments"] = empty
    diag["diffuse_segments"] = diffuse
    diag["duplicated_segments"] = dups
    return empty, empty_cut, diffuse, dups


def _degenerate_advice(k: int, empty: list[int], empty_cut: float, diffuse: list[int], dups: list[list[int]],
                       messages: list[str]) -> None:
    """The advice on empty, diffuse and duplicated segments (k is probably too large)."""
    if empty:
        messages.append(
            f"Segment(s) {empty} are nearly empty (posterior mean share below {empty_cut:.1%}): k = {k} is probably "
            "too many segments; compare k with compare_k (LOO with the parsimony rule)."
        )
    if diffuse:
        messages.append(
            f"Segment(s) {diffuse} hold weight but are the most likely segment of few respondents (under "
            f"{DIFFUSE_FRACTION:.0%} of their expected count): diffuse catch-all segments that overlap the others; "
            f"k = {k} is probably too many."
        )
    if dups:
        messages.append(
            f"Segment pair(s) {dups} are duplicated (centers too close for their spread to be distinct segments, "
            f"or respondents the fit cannot tell apart: membership overlap of {OVERLAP_MAX:g} or more): k = {k} is "
            "probably too many (a segment split in two)."
        )


def _weak_separation_advice(family: Any, em: SegmentationResult, diag: dict[str, Any], messages: list[str]) -> None:
    """Strongly overlapping segments (the EM solution's relative entropy below
    ``WEAK_SEPARATION_ENTROPY``): records ``em_relative_entropy``, ``weak_separation`` and
    ``share_intervals_approximate`` in ``diag`` and says how far the share intervals can be trusted."""
    em_rel = float(em.criteria.get("relative_entropy", float("nan")))  # 1.0 for k = 1
    diag["em_relative_entropy"] = em_rel
    diag["weak_separation"] = bool(em_rel < WEAK_SEPARATION_ENTROPY)
    # EEI's share intervals held their coverage at this overlap in the calibration study when the
    # spreads were equal, as an explicit covariance="EEI" asserts; chosen by "auto" (BIC) they are
    # not trusted: at this overlap BIC often picks EEI for unequal spreads. VVI's under-covered;
    # full covariance and latent class models were not studied.
    structure = getattr(family, "covariance", None) if family.model == BAYES_GMM else None
    chosen = getattr(family, "covariance_requested", None) == "auto"
    trusted = structure == "EEI" and not chosen
    diag["share_intervals_approximate"] = bool(diag["weak_separation"] and not trusted)
    if not diag["weak_separation"]:
        return
    head = (f"The segments overlap strongly (relative entropy of the EM solution {em_rel:.2f}, below "
            f"{WEAK_SEPARATION_ENTROPY:g}): respondents are poorly classified")
    study = " In the calibration study (docs/priors.md: Gaussian mixtures, k = 3, equal spreads) 95% intervals"
    approx = "; quote the share intervals as approximate."
    if trusted:
        messages.append(
            head + ", so read each respondent's segment as a probability, not a sure assignment. The share "
            f"intervals are not affected:{study} of EEI fits covered the true shares "
            f"{WEAK_SEPARATION_COVERAGE['EEI']} of the time at this overlap. They rest on EEI's assumption "
            "that the segments' spreads are equal: if they may differ, compare with covariance='diag'."
        )
    elif structure == "EEI":  # chosen by BIC
        messages.append(
            head + approx + " covariance='auto' chose EEI (spreads shared by the segments) by BIC, and at this "
            "overlap BIC often prefers EEI when the spreads in fact differ; EEI's intervals are then far too "
            "narrow (docs/priors.md, calibration). Fit covariance='EEI' only if you know the spreads are equal; "
            "otherwise use covariance='diag'."
        )
    elif structure == "diag":
        tip = "" if chosen else (f", those of EEI fits {WEAK_SEPARATION_COVERAGE['EEI']}: if the segments' spreads "
                                 "may be equal, fit covariance='EEI'")
        messages.append(
            head + approx + f"{study} of VVI fits (covariance='diag') covered the true shares "
            f"{WEAK_SEPARATION_COVERAGE['diag']} of the time at this overlap" + tip + "."
        )
    else:
        messages.append(head + approx)


def _loo_waic_advice(l_res: Mapping[str, Any], w_res: Mapping[str, Any], diag: dict[str, Any], messages: list[str]) -> None:
    """The advice on unreliable PSIS-LOO (Pareto k) and the note on unreliable WAIC."""
    if l_res["n_bad_k"]:
        messages.append(
            f"PSIS-LOO is unreliable for {l_res['n_bad_k']} respondent(s) (Pareto k above {l_res['k_threshold']:.2f}), "
            "typical of tiny segments or outliers; check them, or use K-fold cross-validation "
            "(arviz.loo_moment_match / arviz.reloo are the other remedies)."
        )
    if w_res["warning"]:
        diag.setdefault("notes", []).append(
            f"WAIC may be unreliable: {w_res['n_high_p']} respondent(s) have a p_waic term above 0.4 "
            "(common for mixtures with many parameters per segment); prefer LOO."
        )


def _final_diagnostics(diag: dict[str, Any], em_messages: list[str], l_res: Mapping[str, Any],
                       w_res: Mapping[str, Any], n: int, converged: bool, messages: list[str]) -> None:
    """The last entries of ``diag``: the EM start's warnings, Pareto k and WAIC counts, the verdict,
    the advice and where each likelihood criterion comes from."""
    if em_messages:
        diag["em_warnings"] = em_messages
    diag["pareto_k_bad"] = l_res["n_bad_k"]
    diag["pareto_k_threshold"] = l_res["k_threshold"]
    diag["pareto_k_max"] = float(np.max(l_res["pareto_k"])) if n else float("nan")
    diag["waic_high_p"] = w_res["n_high_p"]
    diag["converged"] = converged
    diag["warnings"] = messages
    diag["likelihood_criteria_source"] = (
        "loglik, n_params, bic, aic, sabic, caic: the EM maximum-likelihood solution (the reference); "
        "entropy, relative_entropy, icl: posterior mean memberships; waic, loo: the posterior"
    )


def _criteria(family: Any, em: SegmentationResult, z_mean: np.ndarray, w_res: Mapping[str, Any],
              l_res: Mapping[str, Any]) -> dict[str, Any]:
    """The likelihood criteria at the EM solution (entropy and ICL with the posterior memberships),
    with WAIC and PSIS-LOO of the posterior."""
    wt = getattr(family, "sample_weight", None)
    if wt is None:
        crit = information_criteria(float(em.criteria["loglik"]), family.n_params(), family.n, z_mean)
    else:  # the pseudo-log-likelihood at the EM solution (n in BIC: the respondents)
        import inspect

        from latentseg.models.bayes._survey import weighted_loglik

        ll = weighted_loglik(family, _start(family, em), wt)
        takes = "sample_weight" in inspect.signature(information_criteria).parameters
        crit = information_criteria(ll, family.n_params(), family.n, z_mean,
                                    **({"sample_weight": wt} if takes else {}))
    crit.update(
        {
            "waic": w_res["elpd_waic"],
            "waic_se": w_res["se"],
            "p_waic": w_res["p_waic"],
            "lppd": w_res["lppd"],
            "loo": l_res["elpd_loo"],
            "loo_se": l_res["se"],
            "p_loo": l_res["p_loo"],
        }
    )
    return crit


def _posterior_tree(family: Any, raw: _Draws, s: _Settings, kept: _Kept, post_kept: Any) -> Any:
    """The relabelled posterior in canonical order as an ArviZ-ready DataTree: ``posterior`` (the
    kept chains), ``sample_stats`` (NUTS's ``diverging, energy, tree_depth``; none for ADVI),
    ``log_likelihood`` and ``observed_data`` (both when the log-likelihood is kept: by default
    when it has at most ``KEEP_LOGLIK_CELLS`` cells, or as ``keep_log_likelihood`` says; the
    observed data is smaller than the log-likelihood, which has a row per draw) and
    ``posterior_other_modes`` (the other chains, if any). ``observed_data`` shares the
    log-likelihood's ``respondent`` dim and coordinate."""
    import xarray as xr

    keep, S, n = kept.keep, kept.S, family.n
    C = kept.params_all["weights"].shape[0]
    ll_draws = kept.ll_draws
    keep_ll = s.keep_log_likelihood is not False
    nodes: dict[str, Any] = {"posterior": post_kept}
    stats = _stats_dataset(raw, keep, S)
    if stats is not None:
        nodes["sample_stats"] = stats
    if keep_ll:
        respondent = _respondent_coord(family.respondent_ids)
        nodes["log_likelihood"] = xr.Dataset(
            {"loglik": (("chain", "draw", "respondent"), kept.loglik.reshape(len(keep), ll_draws.size, n))},
            coords={"chain": keep, "draw": ll_draws, "respondent": respondent},
        )
        nodes["observed_data"] = _observed_dataset(family, respondent)
    other = [c for c in range(C) if c not in keep]
    if other:
        oth = {key: val[other] for key, val in kept.params_all.items()}
        nodes["posterior_other_modes"] = _dataset(family.posterior_variables(oth), family, other, S)
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs.update(
        {
            "model": family.model,
            "sampler": s.sampler,
            "approximate": int(raw.approximate),
            "interval_probability": PROB,
        }
    )
    return tree


def _result(family: Any, em: SegmentationResult, raw: _Draws, s: _Settings, kept: _Kept, post_kept: Any,
            w_res: Mapping[str, Any], l_res: Mapping[str, Any], diag: dict[str, Any], shares: np.ndarray,
            share_interval: tuple[np.ndarray, np.ndarray], share_summary: pd.DataFrame, centers: np.ndarray,
            center_int: np.ndarray) -> SegmentationResult:
    """The :class:`~latentseg.SegmentationResult` of a fit from its summaries."""
    from latentseg.models._em import provenance

    crit = _criteria(family, em, kept.z_mean, w_res, l_res)
    tree = _posterior_tree(family, raw, s, kept, post_kept)
    interval = "95% approximate (ADVI)" if raw.approximate else "95% credible"
    wt = getattr(family, "sample_weight", None)
    weight_field: dict[str, Any] = {}
    if wt is not None:
        from latentseg.models.bayes._survey import METHOD, METHOD_ADVI

        interval = METHOD_ADVI if raw.approximate else METHOD
        if "sample_weight" in {f.name for f in dataclasses.fields(SegmentationResult)}:  # issue 16's field
            weight_field["sample_weight"] = wt
    mean_flat = {key: val.mean(axis=0) for key, val in kept.flat.items()}
    res_params, shared = family.result_params(mean_flat, kept.pk)
    extras: dict[str, Any] = {
        "share_summary": share_summary,
        "elpd_loo_pointwise": l_res["pointwise"],
        "elpd_waic_pointwise": w_res["pointwise"],
        "pareto_k": l_res["pareto_k"],
    }
    if wt is not None:
        extras["elpd_loo_pointwise_unweighted"] = l_res["pointwise_unweighted"]
        extras["elpd_waic_pointwise_unweighted"] = w_res["pointwise_unweighted"]
    extras.update(family.extras(kept.flat, PROB))
    settings = {**family.settings(), **s.as_dict()}
    # the weights are part of what was fitted: a weighted fit's data hash differs from the unweighted one's
    prov = provenance(s.random_seed, family.data_for_hash(), *([wt] if wt is not None else []),
                      config={"model": family.model, "k": family.k, **settings})
    return SegmentationResult.from_memberships(
        family.model,
        kept.z_mean,
        centers=centers,
        feature_names=family.feature_names,
        respondent_ids=family.respondent_ids,
        shares=shares,
        share_interval=share_interval,
        interval_method=interval,
        criteria=crit,
        diagnostics=diag,
        provenance=prov,
        settings=settings,
        params=res_params,
        shared_params=shared,
        center_intervals=center_int,
        membership_intervals=kept.z_int,
        posterior=tree,
        extras=extras,
        **weight_field,
    )


def mean_memberships(family: Any, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Posterior mean memberships (n, k) of ``family``'s respondents over the parameter draws
    ``params`` (T, ...): the mean over draws of ``softmax_j(log w_j + log p(x | j))`` (the
    engine's interface for family objects: see :func:`sweep_families`)."""
    return _memberships(family, params, keep_loglik=False, intervals=False)[1]


def _memberships(
    family: Any, flat: Mapping[str, np.ndarray], *, keep_loglik: bool = True, intervals: bool = True,
    loglik_rows: np.ndarray | None = None, loglik_dtype: Any = np.float64,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Pointwise log-likelihood (T, n), posterior mean memberships (n, k) and their 95%
    intervals (n, k, 2) over draws ``flat`` (T, ...), computed in blocks of respondents (all
    draws at once per block; ``family.block_size`` bounds a block's memory, and up to
    :func:`_membership_threads` blocks are in memory at once, on as many threads; the same
    blocks, so the same numbers, on any count); the log-likelihood and the intervals only when asked for (``None``
    otherwise: scoring millions of new respondents needs neither), the log-likelihood only on the
    draws ``loglik_rows`` (default all) and in ``loglik_dtype``."""
    from latentseg.models.bayes._kernels import membership_summary

    T = flat["weights"].shape[0]
    n, k = family.n, family.k
    logw = np.ascontiguousarray(np.log(np.clip(flat["weights"], 1e-300, None)), dtype=float)
    n_ll = T if loglik_rows is None else loglik_rows.size
    loglik = np.empty((n_ll, n), dtype=loglik_dtype) if keep_loglik else None
    z_mean = np.empty((n, k))
    z_int = np.empty((n, k, 2)) if intervals else np.empty((0, k, 2))
    lo_q, hi_q = (1 - PROB) / 2, 1 - (1 - PROB) / 2
    step = family.block_size(T)
    blocks = [slice(start, min(n, start + step)) for start in range(0, n, step)]

    def block(rows: slice) -> None:
        L = np.ascontiguousarray(family.log_component(flat, rows), dtype=float)
        ll = np.empty((T, L.shape[1]))
        membership_summary(L, logw, lo_q, hi_q, ll, z_mean[rows], z_int[rows] if intervals else z_int, intervals)
        if loglik is not None:
            loglik[:, rows] = ll if loglik_rows is None else ll[loglik_rows]

    threads = _membership_threads(len(blocks))
    if threads < 2:
        for rows in blocks:
            block(rows)
    else:  # blocks write disjoint rows; the kernel and numpy's products release the GIL
        from concurrent.futures import ThreadPoolExecutor

        here = contextvars.copy_context()  # numpy's error state, as the caller set it, in every task
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda rows: here.copy().run(block, rows), blocks):
                pass
    return loglik, z_mean, (z_int if intervals else None)


#: Set while other fits sample (:func:`sweep_families`): summaries then keep to one thread.
_SAMPLING_ELSEWHERE: contextvars.ContextVar[bool] = contextvars.ContextVar("latentseg_sampling_elsewhere", default=False)


def _membership_threads(n_blocks: int) -> int:
    """Threads :func:`_memberships` uses for ``n_blocks`` blocks: up to :data:`MEMBERSHIP_THREADS`,
    the CPUs this process may use and ``LATENTSEG_WORKERS``; one while other fits sample."""
    from latentseg._fork import workers_cap

    if _SAMPLING_ELSEWHERE.get():
        return 1
    return max(1, min(MEMBERSHIP_THREADS, _cpus(), workers_cap(), n_blocks))


def _chain_loglik(family: Any, params: Mapping[str, np.ndarray], per_chain: int = 100) -> np.ndarray:
    """Mean total log-likelihood of each chain over up to ``per_chain`` evenly spaced draws."""
    C, S = params["weights"].shape[:2]
    idx = np.unique(np.linspace(0, S - 1, min(S, per_chain)).astype(int))
    sub = {key: val[:, idx].reshape((C * idx.size,) + val.shape[2:]) for key, val in params.items()}
    ll, _, _ = _memberships(family, sub, intervals=False)
    assert ll is not None
    return ll.sum(axis=1).reshape(C, idx.size).mean(axis=1)


def _respondent_coord(ids: pd.Index) -> np.ndarray:
    if pd.api.types.is_integer_dtype(ids.dtype) or pd.api.types.is_float_dtype(ids.dtype):
        return np.asarray(ids)
    return np.asarray([str(v) for v in ids], dtype=str)


def _dataset(variables: Mapping[str, tuple[tuple[str, ...], np.ndarray]], family: Any, chains: list[int], S: int) -> Any:
    import xarray as xr

    coords: dict[str, Any] = {"chain": list(chains), "draw": np.arange(S), "segment": np.arange(1, family.k + 1)}
    coords.update(family.coords())
    data = {name: (("chain", "draw") + dims, np.asarray(val)) for name, (dims, val) in variables.items()}
    used = {d for dims, _ in variables.values() for d in dims} | {"chain", "draw"}
    return xr.Dataset(data, coords={key: val for key, val in coords.items() if key in used})


def _observed_dataset(family: Any, respondent: np.ndarray) -> Any:
    """The data the model was fitted on (``family.observed_variables()``: ``x`` for a Gaussian
    mixture, ``responses`` for a latent class model), by respondent as the log-likelihood."""
    import xarray as xr

    variables = family.observed_variables()
    coords: dict[str, Any] = {"respondent": respondent}
    coords.update({key: val for key, val in family.coords().items()
                   if any(key in dims for dims, _ in variables.values())})
    return xr.Dataset(dict(variables), coords=coords)


def _stats_dataset(raw: _Draws, keep: list[int], S: int) -> Any:
    import xarray as xr

    data = {}
    for name, arr in (("diverging", raw.diverging), ("energy", raw.energy), ("tree_depth", raw.tree_depth)):
        if arr is not None:
            data[name] = (("chain", "draw"), np.asarray(arr)[keep])
    if not data:
        return None
    return xr.Dataset(data, coords={"chain": list(keep), "draw": np.arange(S)})


def _diagnostic_arrays(family: Any, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The variables R-hat and ESS are computed on (``family.diagnostic_variables``), each
    (chains, draws, ...) as float, by name."""
    return {name: np.asarray(val, dtype=float) for name, (_, val) in family.diagnostic_variables(params).items()}


def _rank_diagnostics(variables: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rank-normalised R-hat, bulk and tail ESS of every scalar of ``variables`` (each (chains,
    draws, ...)), flattened in their order, and where each variable's scalars start and end."""
    from latentseg.models.bayes._diagnostics import summary_diagnostics

    arrs = list(variables.values())
    stacked = np.concatenate([a.reshape(a.shape[0], a.shape[1], -1) for a in arrs], axis=2)
    with np.errstate(all="ignore"):
        res = summary_diagnostics(stacked)
    return res, np.cumsum([0] + [a[0, 0].size for a in arrs])


def _mcmc_diagnostics(variables: Mapping[str, np.ndarray], raw: _Draws, C: int) -> dict[str, Any]:
    """R-hat (rank-normalised, split), bulk / tail ESS, divergences, E-BFMI, tree depth of the
    ``variables`` (:func:`_diagnostic_arrays`).

    R-hat and ESS are ArviZ's definitions (``az.rhat(method="rank")``, ``az.ess(method="bulk")``,
    ``az.ess(method="tail")``), computed for every parameter at once by
    :mod:`latentseg.models.bayes._diagnostics` (equal to ArviZ's to 1e-14, tested; about 10 times faster).
    """
    names = list(variables)
    res, edges = _rank_diagnostics(variables)
    per_var = {key: {v: val[edges[i] : edges[i + 1]] for i, v in enumerate(names)} for key, val in res.items()}
    out: dict[str, Any] = {}

    def worst(res: Mapping[str, np.ndarray], fn: Any) -> tuple[float, dict[str, float]]:
        vals = {}
        for name in names:
            arr = res[name]
            arr = arr[np.isfinite(arr)]
            if arr.size:
                vals[name] = float(fn(arr))
        return (float(fn(list(vals.values()))) if vals else float("nan")), vals

    rhat, ess_b, ess_t = per_var["rhat"], per_var["ess_bulk"], per_var["ess_tail"]
    out["rhat_max"], out["rhat_max_by_parameter"] = worst(rhat, np.max)
    out["ess_bulk_min"], _ = worst(ess_b, np.min)
    out["ess_tail_min"], _ = worst(ess_t, np.min)
    out["rhat_weights"] = [float(x) for x in rhat["weights"]]
    out["divergences"] = int(raw.diverging.sum()) if raw.diverging is not None else 0
    if raw.energy is not None:
        e = raw.energy
        num = np.square(np.diff(e, axis=1)).mean(axis=1)
        den = e.var(axis=1)
        ebfmi = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        out["ebfmi"] = [float(x) for x in ebfmi]
        out["ebfmi_min"] = float(np.nanmin(ebfmi)) if np.isfinite(ebfmi).any() else None
    else:
        out["ebfmi"], out["ebfmi_min"] = [], None
    if raw.tree_depth is not None:
        out["tree_depth_mean"] = float(np.mean(raw.tree_depth))
    if raw.step_size is not None:
        out["step_size"] = [float(x) for x in raw.step_size]
    return out


def _verdict(diag: dict[str, Any], raw: _Draws, groups: list[list[int]], keep: list[int], messages: list[str], C: int) -> bool:
    if raw.approximate:
        ok = bool(raw.info.get("advi_converged", False))
        messages.append(
            "Approximate fit (mean-field ADVI): intervals are too narrow as a rule and memberships approximate; "
            "use sampler='nutpie' for final numbers."
        )
        if not ok:
            messages.append(
                f"ADVI did not converge in {raw.info.get('advi_iterations')} steps; raise advi_iterations."
            )
        return ok
    conv = diag.get("convergence") or {}
    if conv.get("stopped_in_warmup"):  # warm-up draws: their R-hat, divergences and E-BFMI say nothing of a posterior
        messages.append(f"Stopped in the warm-up: {conv['stopped_early']}. k is probably too large; this fit is "
                        "not a candidate for k (its R-hat, divergences and intervals are those of warm-up draws).")
        return False
    ok = not conv.get("stopped_early")  # judged degenerate on its first draws: never converged
    rhat = diag.get("rhat_max")
    if rhat is not None and np.isfinite(rhat) and rhat > RHAT_MAX:
        ok = False
        worst = max(diag["rhat_max_by_parameter"].items(), key=lambda kv: kv[1])[0]
        messages.append(
            f"R-hat {rhat:.4f} > {RHAT_MAX} (worst: {worst}): the chains disagree. Run longer (more tune and draws), "
            "or reduce k if a segment is nearly empty or duplicated."
        )
    if diag.get("divergences"):
        ok = False
        messages.append(
            f"{diag['divergences']} divergent transition(s): the posterior has regions the sampler cannot explore "
            "reliably; raise target_accept (e.g. 0.95), or reduce k."
        )
    if len(groups) > 1:
        ok = False
        other = [c for g in groups for c in g if c not in keep]
        messages.append(
            f"Chains settled in {len(groups)} different modes; the summaries use chain(s) {keep} (highest "
            f"log-likelihood) and leave out chain(s) {other} (see diagnostics['modes']). The segmentation is not "
            "well identified at this k: try another k or more informative settings."
        )
    ebfmi = diag.get("ebfmi_min")
    if ebfmi is not None and ebfmi < EBFMI_MIN:
        messages.append(f"E-BFMI {ebfmi:.2f} < {EBFMI_MIN}: the sampler explored the energy distribution poorly.")
    ess = diag.get("ess_bulk_min")
    if ess is not None and np.isfinite(ess) and ess < ESS_MIN:
        ok = False
        messages.append(
            f"Bulk ESS {ess:.0f} < {ESS_MIN} for some parameter: too few effective draws for R-hat and the "
            "intervals to be reliable."
        )
    if not ok and conv:
        status = conv.get("status", "")
        messages.append(f"Convergence rule: {status} after {conv.get('draws_per_chain')} draws per chain"
                        + (" (extended)." if conv.get("extended") else ".")
                        + (" Raise max_draws to allow more." if status.startswith("budget") else ""))
    return ok


def _hdi(draws: np.ndarray, prob: float = PROB) -> np.ndarray:
    """Highest-density interval of each column of ``draws`` (T, k), shape (k, 2): the shortest
    interval holding ``m = ceil(prob * T)`` of the draws (the first such, on ties). This is
    :func:`arviz.hdi`'s method "nearest" asked for ``p = (m - 0.5) / T`` (ArviZ's interval holds
    ``floor(p * T) + 1`` draws, one more than ``m`` when ``prob * T`` is whole), computed for every
    column at once without importing ArviZ; equal to it (tested)."""
    x = np.sort(np.asarray(draws, dtype=float), axis=0)
    T = x.shape[0]
    inc = max(1, int(math.ceil(prob * T))) - 1  # the interval spans draws i .. i + inc
    width = x[inc:] - x[: T - inc]
    first = np.argmin(width, axis=0)
    cols = np.arange(x.shape[1])
    return np.stack([x[first, cols], x[first + inc, cols]], axis=1)


def _scoring_family(result: SegmentationResult, data: Any) -> Any:
    if result.model == BAYES_GMM:
        from latentseg.models.bayes.gmm import GaussianFamily

        return GaussianFamily.for_scoring(result, data)
    if result.model == BAYES_LCA:
        from latentseg.models.bayes.lca import LatentClassFamily

        return LatentClassFamily.for_scoring(result, data)
    raise ConfigError(f"predict_proba of latentseg.models.bayes.engine needs a bayes-gmm or bayes-lca result; got {result.model!r}.")
