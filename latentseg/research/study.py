"""The methodologist's simulation study: when do k-means and latent class / Gaussian mixture
models disagree, and which one recovers the truth?

A study is a grid of *cells* (every combination of sample size ``n``, true number of segments
``k``, separation, share imbalance, covariance shape and pure-noise dimensions), each replicated
``replications`` times. For every replication a data set with known segments is simulated
(:func:`latentseg.research.simulate.simulate_gaussian_mixture`, segment sizes drawn multinomially so that
share intervals are honestly tested) and every method chooses k from ``k_candidates``:

``kmeans-silhouette``
    k-means; the k with the highest mean silhouette.
``kmeans-elbow``
    k-means; the elbow of the inertia curve (:func:`latentseg.choose.selection.elbow_index`, the curve
    extended by one k on each side so the elbow may fall on an end of the range).
``gmm-bic``
    Gaussian mixture by EM (``gmm_covariance``, default VVI); the lowest BIC.
``lca-bic``
    Latent class model by EM on **discretised** data: each column is cut into ``lca_levels``
    (default 3) equal-frequency levels (its empirical terciles), the usual way continuous
    ratings are turned into latent class indicators. Information is lost in the cut, which is
    part of what the study measures. The lowest BIC.
``bayes-loo``
    Bayesian Gaussian mixture (PyMC); LOO with the parsimony rule (the smallest k within
    ``loo_se_rule`` standard errors of the best elpd). Expensive: keep ``draws`` small, or leave
    the method out of ``methods``.

The study uses :func:`latentseg.choose.selection.select` with ``min_share`` from the config (default 0: the
study judges the criteria themselves, not the playbook's size rule), no silhouette threshold and
no stability check.

Metrics, per cell, replication and method (``replications.csv``), then averaged per cell and
method (``summary.csv``):

- ``k_chosen`` and ``correct_k`` (k chosen equals the truth);
- ``ari_true_k``: adjusted Rand index between the truth and the method's fit at the true k;
  ``ari_chosen``: the same at the chosen k;
- ``ari_vs_kmeans``: ARI between this method's and k-means's fits at the true k (how much the two
  disagree on the same data);
- shares at the true k, after matching fitted segments to true ones (Hungarian algorithm on the
  crosstab): ``share_bias`` = estimated minus true share of the *smallest* true segment (the one
  that gets absorbed), ``share_rmse`` over all segments, and ``coverage`` = fraction of segments
  whose true (population) share lies inside the method's 95% share interval (Wilson for k-means,
  the engine's interval otherwise).

Every finished replication is written at once to ``<out>/cells/<cell_id>-r<rep>.json``; a rerun
with the same config skips those, so an interrupted study resumes. Cell ids hash the cell and the
study-wide settings, so a changed config never reuses stale results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, LatentsegError, LatentsegWarning
from latentseg.io.files import atomic_write, atomic_write_text, safe_csv_frame
from latentseg.models.families import BAYES_GMM, BAYES_RATING_LCA, GMM, KMEANS, LCA, NAMES, RATING_LCA, family

__all__ = [
    "METHODS",
    "StudyConfig",
    "StudyResult",
    "load_study_config",
    "study_config_from_dict",
    "run_study",
    "summarize",
    "headline_tables",
    "disagreement_table",
    "imbalanced_shares",
]

#: study method -> (model family, how it picks k)
METHODS: dict[str, tuple[str, str]] = {
    "kmeans-silhouette": (KMEANS, "silhouette"),
    "kmeans-elbow": (KMEANS, "elbow"),
    "gmm-bic": (GMM, "bic"),
    "lca-bic": (LCA, "bic"),
    "bayes-loo": (BAYES_GMM, "loo"),
    "rating-lca-bic": (RATING_LCA, "bic"),
    "bayes-rating-lca-loo": (BAYES_RATING_LCA, "loo"),
}

#: the kinds of simulated data a study draws: Gaussian mixtures, or outcome surveys (ratings)
DATA_KINDS = ("gaussian", "ratings")
#: methods that need the ratings of a survey (``data = "ratings"`` only)
RATING_METHODS = ("rating-lca-bic", "bayes-rating-lca-loo")

GRID_FACTORS = ("n", "k", "separation", "imbalance", "covariance", "noise_dims")
#: the grid of a rating study (``data = "ratings"``)
RATING_FACTORS = ("design", "n", "k", "separation", "imbalance", "scale")
#: rating study designs: (a) segments defined by rating distributions, (b) segments Gaussian on the
#: opportunity-score scale mapped back to ratings, (c) (a) plus respondents who use only the top of
#: the scale
DESIGNS = ("ratings", "scores", "styles")
_COVARIANCES = ("spherical", "diagonal", "diagonal-unequal", "full", "unequal")

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class StudyConfig:
    """A validated study configuration (see the module notes and ``examples/study.toml``).

    Attributes
    ----------
    grid : dict of str to list
        ``n``, ``k``, ``separation``, ``imbalance`` (largest / smallest true share; 1 = equal),
        ``covariance`` (``spherical``, ``diagonal``, ``diagonal-unequal``, ``full``, ``unequal``),
        ``noise_dims``.
    replications : int
    methods : tuple of str
    seed : int
    k_candidates : tuple of int
        The ks every method chooses from; must include every true k of the grid.
    d : int
        Informative dimensions.
    min_share : float
    lca_levels : int
    gmm_covariance : str
    loo_se_rule : float
    bayes : dict
        Options for the Bayesian fits (``draws``, ``tune``, ``chains`` ...).
    fit_options : dict of str to dict
        Engine options per family, e.g. ``{"lca": {"n_init": 8}, "gmm": {"n_init": 5}}``
        (``[study.fit_options.lca]`` in TOML).
    data : {"gaussian", "ratings"}
        ``"gaussian"``: Gaussian mixtures (grid :data:`GRID_FACTORS`); ``"ratings"``: outcome
        surveys (grid :data:`RATING_FACTORS`, designs :data:`DESIGNS`), where ``d`` is the number
        of outcomes, the score families fit the opportunity scores, ``lca`` their opportunity
        levels and the rating families the raw ratings.
    top_share : float
        Design ``styles``: the share of respondents who use only the top half of the scales.
    """

    grid: dict[str, list[Any]]
    replications: int = 2
    methods: tuple[str, ...] = ("kmeans-silhouette", "kmeans-elbow", "gmm-bic", "lca-bic")
    seed: int = 20261122
    k_candidates: tuple[int, ...] = (2, 3, 4, 5, 6)
    d: int = 6
    min_share: float = 0.0
    lca_levels: int = 3
    gmm_covariance: str = "VVI"
    loo_se_rule: float = 2.0
    bayes: dict[str, Any] = field(default_factory=lambda: {"draws": 200, "tune": 200, "chains": 2})
    fit_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: str = "gaussian"
    top_share: float = 0.3

    @property
    def factors(self) -> tuple[str, ...]:
        """The grid factors of this kind of study (:data:`GRID_FACTORS` or :data:`RATING_FACTORS`)."""
        return RATING_FACTORS if self.data == "ratings" else GRID_FACTORS

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of the grid, in a fixed order."""
        keys = list(self.factors)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def settings_key(self) -> dict[str, Any]:
        """The study-wide settings that a cell's results depend on (hashed into cell ids)."""
        d = asdict(self)
        d.pop("grid")
        d.pop("replications")
        return d

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def study_config_from_dict(raw: Mapping[str, Any], source: str = "<config>") -> StudyConfig:
    """Validate a study configuration given as a dict (the ``[study]`` table of the TOML file).

    Parameters
    ----------
    raw : mapping
        Keys ``data, seed, replications, methods, k_candidates, d, min_share, lca_levels,
        gmm_covariance, loo_se_rule, top_share``, a ``grid`` table and optional ``bayes`` and
        ``fit_options`` tables.
    source : str
        Named in error messages.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        Unknown keys or methods, empty or out-of-range grid values, a true k outside
        ``k_candidates``.

    Examples
    --------
    >>> cfg = study_config_from_dict({"grid": {"n": [100], "k": [2], "separation": [3.0]}})
    >>> len(cfg.cells()), cfg.grid["covariance"]
    (1, ['diagonal'])
    """
    known = {f for f in StudyConfig.__dataclass_fields__}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} in [study]; known: {sorted(known)}.")
    if "grid" not in raw or not isinstance(raw["grid"], Mapping):
        raise ConfigError(f"{source}: [study.grid] is missing; it needs at least n, k and separation lists.")
    g = dict(raw["grid"])
    kind = raw.get("data", "gaussian")
    if kind not in DATA_KINDS:
        raise ConfigError(f"{source}: data must be one of {list(DATA_KINDS)}; got {kind!r}.")
    factors = RATING_FACTORS if kind == "ratings" else GRID_FACTORS
    bad = sorted(set(g) - set(factors))
    if bad:
        raise ConfigError(f"{source}: unknown grid factor(s) {bad} for data = {kind!r}; known: {list(factors)}.")
    defaults: dict[str, list[Any]] = (
        {"imbalance": [1.0], "design": list(DESIGNS), "scale": ["1-5"]} if kind == "ratings"
        else {"imbalance": [1.0], "covariance": ["diagonal"], "noise_dims": [0]}
    )
    grid: dict[str, list[Any]] = {}
    for key in factors:
        if key not in g and key not in defaults:
            raise ConfigError(f"{source}: grid.{key} is missing; give a list such as {key} = [...].")
        vals = _as_list(g.get(key, defaults.get(key)))
        if not vals:
            raise ConfigError(f"{source}: grid.{key} is empty; give at least one value.")
        grid[key] = vals

    def check(key: str, ok: Callable[[Any], bool], want: str) -> None:
        wrong = [v for v in grid[key] if not ok(v)]
        if wrong:
            raise ConfigError(f"{source}: grid.{key} must hold {want}; got {wrong}.")

    def is_int(v: Any, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    def is_num(v: Any, low: float) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= low

    check("n", lambda v: is_int(v, 20), "integers >= 20")
    check("k", lambda v: is_int(v, 1), "integers >= 1")
    check("separation", lambda v: is_num(v, 0.0), "numbers >= 0")
    check("imbalance", lambda v: is_num(v, 1.0), "numbers >= 1 (largest / smallest share)")
    if kind == "ratings":
        check("design", lambda v: v in DESIGNS, f"designs from {list(DESIGNS)}")
        check("scale", lambda v: isinstance(v, str) and _rating_scales(v) is not None,
              "scales such as '1-5' (both ratings) or '1-5/1-10' (importance / satisfaction)")
    else:
        check("covariance", lambda v: v in _COVARIANCES, f"names from {list(_COVARIANCES)}")
        check("noise_dims", lambda v: is_int(v, 0), "integers >= 0")

    cfg_kwargs: dict[str, Any] = {"grid": grid, "data": kind}
    if "methods" in raw:
        methods = tuple(_as_list(raw["methods"]))
        wrong = [m for m in methods if m not in METHODS]
        if wrong or not methods:
            raise ConfigError(f"{source}: unknown method(s) {wrong or '[]'}; choose from {list(METHODS)}.")
        if kind != "ratings" and any(m in RATING_METHODS for m in methods):
            raise ConfigError(f"{source}: method(s) {[m for m in methods if m in RATING_METHODS]} fit survey ratings; "
                              "they need data = \"ratings\".")
        if kind == "ratings" and "bayes-loo" in methods:
            raise ConfigError(f"{source}: bayes-loo is not a method of a rating study; use bayes-rating-lca-loo.")
        cfg_kwargs["methods"] = methods
    elif kind == "ratings":
        cfg_kwargs["methods"] = ("kmeans-silhouette", "gmm-bic", "lca-bic", "rating-lca-bic")
    if "top_share" in raw:
        v = raw["top_share"]
        if not (is_num(v, 0.0) and v < 1):
            raise ConfigError(f"{source}: top_share must be a number in [0, 1); got {v!r}.")
        cfg_kwargs["top_share"] = float(v)
    for key, low in (("replications", 1), ("seed", 0), ("d", 1), ("lca_levels", 2)):
        if key in raw:
            v = raw[key]
            if not is_int(v, low):
                raise ConfigError(f"{source}: {key} must be an integer >= {low}; got {v!r}.")
            cfg_kwargs[key] = v
    if "k_candidates" in raw:
        ks = _as_list(raw["k_candidates"])
        if not ks or not all(is_int(v, 1) for v in ks):
            raise ConfigError(f"{source}: k_candidates must be integers >= 1; got {ks}.")
        cfg_kwargs["k_candidates"] = tuple(sorted(set(ks)))
    for key, low, high in (("min_share", 0.0, 1.0), ("loo_se_rule", 0.0, float("inf"))):
        if key in raw:
            v = raw[key]
            if not (is_num(v, low) and v < high):
                raise ConfigError(f"{source}: {key} must be a number in [{low}, {high}); got {v!r}.")
            cfg_kwargs[key] = float(v)
    if "gmm_covariance" in raw:
        cfg_kwargs["gmm_covariance"] = str(raw["gmm_covariance"])
    if "bayes" in raw:
        if not isinstance(raw["bayes"], Mapping):
            raise ConfigError(f"{source}: [study.bayes] must be a table of options (draws, tune, chains ...).")
        cfg_kwargs["bayes"] = dict(raw["bayes"])
    if "fit_options" in raw:
        fo = raw["fit_options"]
        fams = {f for f, _ in METHODS.values()}
        if not isinstance(fo, Mapping) or not all(isinstance(v, Mapping) for v in fo.values()):
            raise ConfigError(f"{source}: [study.fit_options] must hold one table per family, e.g. [study.fit_options.lca].")
        wrong = sorted(set(fo) - fams)
        if wrong:
            raise ConfigError(f"{source}: unknown family(ies) {wrong} in [study.fit_options]; choose from {sorted(fams)}.")
        cfg_kwargs["fit_options"] = {f: dict(v) for f, v in fo.items()}
    cfg = StudyConfig(**cfg_kwargs)
    outside = sorted(set(grid["k"]) - set(cfg.k_candidates))
    if outside:
        raise ConfigError(
            f"{source}: k_candidates {list(cfg.k_candidates)} must include every true k of the grid; missing {outside}."
        )
    return cfg


def load_study_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a study TOML file (a ``[study]`` table with ``[study.grid]``).

    Raises
    ------
    ConfigError
        A missing or unparsable file, or an invalid configuration (the message names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Study config '{p}' not found.")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"Study config '{p}' is not valid TOML: {exc}.") from None
    if "study" not in doc:
        raise ConfigError(f"Study config '{p}' has no [study] table.")
    return study_config_from_dict(doc["study"], source=str(p))


# ---------------------------------------------------------------------------------- one replication
def imbalanced_shares(k: int, imbalance: float) -> np.ndarray:
    """Shares decreasing geometrically so that largest / smallest = ``imbalance``.

    Examples
    --------
    >>> imbalanced_shares(3, 4.0).round(3).tolist()
    [0.571, 0.286, 0.143]
    """
    if k == 1:
        return np.ones(1)
    w = float(imbalance) ** (-np.arange(k) / (k - 1))
    return w / w.sum()


def _cell_id(cell: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    blob = json.dumps({"cell": dict(cell), "settings": dict(settings)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _discretise(X: pd.DataFrame, levels: int) -> pd.DataFrame:
    """Each column cut into ``levels`` equal-frequency levels (codes 0..levels-1)."""
    out = {}
    for c in X.columns:
        ranks = X[c].rank(method="first").to_numpy()
        out[c] = np.minimum((ranks - 1) * levels // len(ranks), levels - 1).astype(int)
    return pd.DataFrame(out, index=X.index)


def _matched_shares(truth: np.ndarray, result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each true segment j (0-based): the matched fitted share, its interval bounds."""
    from scipy.optimize import linear_sum_assignment

    k_true = int(truth.max())
    ct = np.zeros((k_true, result.k))
    np.add.at(ct, (truth - 1, result.assignment - 1), 1)
    rows, cols = linear_sum_assignment(-ct)
    est = np.zeros(k_true)
    lo = np.zeros(k_true)
    hi = np.zeros(k_true)
    matched = np.zeros(k_true, dtype=bool)
    for r, c in zip(rows, cols):
        est[r], lo[r], hi[r], matched[r] = result.shares[c], result.share_lower[c], result.share_upper[c], True
    return est, lo, hi, matched


def _run_replication(
    cfg: StudyConfig, cell: Mapping[str, Any], rep: int, cell_id: str
) -> tuple[str, int, list[dict[str, Any]]]:
    """Simulate one data set and run every method; runs in a worker (a local process or a Dask
    worker), which returns the rows: the caller writes them, so workers need no shared disk."""
    if cfg.data == "ratings":
        return _run_rating_replication(cfg, cell, rep, cell_id)
    return _run_gaussian_replication(cfg, cell, rep, cell_id)


def _run_gaussian_replication(
    cfg: StudyConfig, cell: Mapping[str, Any], rep: int, cell_id: str
) -> tuple[str, int, list[dict[str, Any]]]:
    """One replication of a Gaussian-mixture study."""
    from sklearn.metrics import adjusted_rand_score

    from latentseg.choose.selection import select
    from latentseg.research.simulate import simulate_gaussian_mixture

    t0 = time.perf_counter()
    key = int(cell_id[:8], 16)
    ss = np.random.SeedSequence(cfg.seed, spawn_key=(key, rep))
    data_seed, sel_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
    k_true = int(cell["k"])
    shares = imbalanced_shares(k_true, float(cell["imbalance"]))
    base = {"cell_id": cell_id, **cell, "replication": rep}
    try:
        X, truth = simulate_gaussian_mixture(
            int(cell["n"]), k=k_true, d=cfg.d, shares=shares, separation=float(cell["separation"]),
            covariance=cell["covariance"], noise_dims=int(cell["noise_dims"]), exact_shares=False,
            random_seed=data_seed,
        )
    except LatentsegError as exc:
        rows = [{**base, "method": m, "error": f"simulation failed: {exc}"} for m in cfg.methods]
        return cell_id, rep, rows

    needed = {METHODS[m][0] for m in cfg.methods} | {KMEANS}  # k-means: the reference for ari_vs_kmeans
    families = [f for f in NAMES if f in needed]
    fit_options: dict[str, dict[str, Any]] = {f: dict(o) for f, o in cfg.fit_options.items() if f in families}
    fit_options[GMM] = {"covariance": cfg.gmm_covariance, **fit_options.get(GMM, {})}
    if BAYES_GMM in families:
        fit_options[BAYES_GMM] = {**cfg.bayes, **fit_options.get(BAYES_GMM, {})}
    categorical = _discretise(X, cfg.lca_levels) if LCA in families else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)
        sel = select(
            X, models=families, k=cfg.k_candidates, random_seed=sel_seed, min_share=cfg.min_share,
            silhouette_min=-1.0, stability_subsamples=0, loo_se_rule=cfg.loo_se_rule,
            fit_options=fit_options, categorical_data=categorical,
            all_k=True,  # the study scores each family's own choice and its fit at the true k: every fit, to the end
        )
    table = sel.table.set_index(["model", "k"])
    km_true = sel.result(KMEANS, k_true) if (KMEANS, k_true) in table.index else None
    rows: list[dict[str, Any]] = []
    for method in cfg.methods:
        family, how = METHODS[method]
        row: dict[str, Any] = {**base, "method": method}
        sub = sel.table[(sel.table["model"] == family)]
        if how == "silhouette":
            ok = sub[sub["admissible"] & np.isfinite(sub["silhouette"])]
            k_chosen = int(ok.loc[ok["silhouette"].idxmax(), "k"]) if len(ok) else None
        else:
            k_chosen = sel.per_family[family]["recommended_k"]
        row["k_chosen"] = k_chosen
        row["correct_k"] = float(k_chosen == k_true) if k_chosen is not None else 0.0
        res_true = sel.result(family, k_true)
        res_chosen = sel.result(family, k_chosen) if k_chosen is not None else None
        row["ari_true_k"] = float(adjusted_rand_score(truth, res_true.assignment)) if res_true is not None else np.nan
        row["ari_chosen"] = float(adjusted_rand_score(truth, res_chosen.assignment)) if res_chosen is not None else np.nan
        row["ari_vs_kmeans"] = (
            float(adjusted_rand_score(km_true.assignment, res_true.assignment))
            if res_true is not None and km_true is not None
            else np.nan
        )
        if res_true is not None:
            est, lo, hi, matched = _matched_shares(truth, res_true)
            j_small = int(np.argmin(shares))
            row["share_bias"] = float(est[j_small] - shares[j_small])
            row["share_sq_error"] = float(np.mean((est - shares) ** 2))
            row["share_rmse"] = float(np.sqrt(row["share_sq_error"]))
            row["coverage"] = float(np.mean((lo <= shares) & (shares <= hi) & matched))
        failures = sub[sub["status"] != "ok"]
        row["n_failed_fits"] = int(len(failures))
        if not failures.empty:
            row["error"] = "; ".join(f"k={r.k}: {r.error}" for r in failures.itertuples())
        rows.append(row)
    secs = time.perf_counter() - t0
    for row in rows:
        row["seconds"] = secs
    return cell_id, rep, rows


def _rating_scales(text: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """``"1-5"`` -> both ratings on 1-5; ``"1-5/1-10"`` -> importance 1-5, satisfaction 1-10."""
    parts = str(text).split("/")
    if len(parts) not in (1, 2):
        return None
    out = []
    for part in parts:
        try:
            lo, hi = (int(x) for x in part.strip().split("-", 1))
        except ValueError:
            return None
        if hi <= lo or hi - lo > 20:
            return None
        out.append((lo, hi))
    return (out[0], out[-1])


def simulate_design(design: str, n: int, k: int, *, shares: Any, separation: float, d: int, scale: str,
                    top_share: float, random_seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """The survey and truth of one rating-study replication (segment sizes multinomial).

    ``ratings`` (a): :func:`~latentseg.research.simulate.simulate_ratings`, segments defined by
    their rating distributions on every outcome; ``scores`` (b):
    :func:`~latentseg.research.simulate.simulate_score_segments`, segments Gaussian on the
    opportunity-score scale, mapped back to ratings; ``styles`` (c):
    :func:`~latentseg.research.simulate.simulate_response_styles`, segments on two outcomes each,
    plus a share ``top_share`` of respondents who use only the top half of the scales. Each
    simulator reads ``separation`` in its own units (see their docstrings).

    Returns
    -------
    survey : Survey
    segment : ndarray of int, shape (n,)
        True segments 1..k.
    opportunity : ndarray, shape (k, d)
        True segment opportunity (0-20).

    Examples
    --------
    >>> survey, segment, opp = simulate_design("scores", 100, 3, shares=None, separation=1.0, d=6,
    ...                                        scale="1-5/1-10", top_share=0.0, random_seed=1)
    >>> str(survey.sat_scale), segment.shape, opp.shape
    ('1-10', (100,), (3, 6))
    """
    from latentseg.research.simulate import simulate_ratings, simulate_response_styles, simulate_score_segments

    scales = _rating_scales(scale)
    if scales is None:
        raise ConfigError(f"A rating study's scale must look like '1-5' or '1-5/1-10'; got {scale!r}.")
    imp, sat = scales
    common = dict(shares=shares, separation=separation, imp_scale=imp, sat_scale=sat, exact_shares=False,
                  random_seed=random_seed)
    if design == "ratings":
        sim = simulate_ratings(n, k, d, **common)
        return sim.survey, sim.segment.to_numpy(), sim.opportunity.to_numpy(dtype=float)
    if design == "scores":
        survey, truth = simulate_score_segments(n, d, k, **common)
    elif design == "styles":
        survey, truth = simulate_response_styles(n, d, k, top_share=top_share, **common)
    else:
        raise ConfigError(f"Unknown rating-study design {design!r}; choose from {list(DESIGNS)}.")
    return survey, truth.segment.to_numpy(), truth.centers.to_numpy(dtype=float)


def _run_rating_replication(
    cfg: StudyConfig, cell: Mapping[str, Any], rep: int, cell_id: str
) -> tuple[str, int, list[dict[str, Any]]]:
    """One replication of a rating study: simulate a survey, fit the score families on its
    opportunity scores (``lca`` on their opportunity levels) through
    :func:`~latentseg.choose.selection.select`, the rating families on its raw ratings at every
    candidate k (k by BIC, or LOO with the parsimony rule), and score every method."""
    from sklearn.metrics import adjusted_rand_score

    from latentseg.choose.selection import select
    from latentseg.prepare.encoding import drop_constant_columns, opportunity_levels
    from latentseg.prepare.ratings import rating_frame
    from latentseg.prepare.scoring import opportunity_scores

    t0 = time.perf_counter()
    key = int(cell_id[:8], 16)
    ss = np.random.SeedSequence(cfg.seed, spawn_key=(key, rep))
    data_seed, sel_seed = (int(x.generate_state(1)[0]) for x in ss.spawn(2))
    k_true = int(cell["k"])
    shares = imbalanced_shares(k_true, float(cell["imbalance"]))
    base = {"cell_id": cell_id, **cell, "replication": rep}
    try:
        survey, segment, true_opp = simulate_design(
            str(cell["design"]), int(cell["n"]), k_true, shares=shares, separation=float(cell["separation"]), d=cfg.d,
            scale=str(cell["scale"]), top_share=cfg.top_share, random_seed=data_seed)
    except LatentsegError as exc:
        return cell_id, rep, [{**base, "method": m, "error": f"simulation failed: {exc}"} for m in cfg.methods]
    scores = opportunity_scores(survey)

    score_families = [f for f in NAMES if f in {METHODS[m][0] for m in cfg.methods} and not family(f).on_ratings]
    if KMEANS not in score_families:
        score_families.insert(0, KMEANS)  # the reference of ari_vs_kmeans
    fit_options: dict[str, dict[str, Any]] = {f: dict(o) for f, o in cfg.fit_options.items()}
    fit_options[GMM] = {"covariance": cfg.gmm_covariance, **fit_options.get(GMM, {})}
    levels = drop_constant_columns(opportunity_levels(scores))[0] if LCA in score_families else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentsegWarning)
        sel = select(
            scores, models=score_families, k=cfg.k_candidates, random_seed=sel_seed, min_share=cfg.min_share,
            silhouette_min=-1.0, stability_subsamples=0, loo_se_rule=cfg.loo_se_rule,
            fit_options={f: o for f, o in fit_options.items() if f in score_families}, categorical_data=levels,
        )
    km_true = sel.result(KMEANS, k_true)
    frame = rating_frame(survey)
    rows: list[dict[str, Any]] = []
    for method in cfg.methods:
        fam, how = METHODS[method]
        row: dict[str, Any] = {**base, "method": method}
        errors: list[str] = []
        if family(fam).on_ratings:
            fits = _rating_sweep(cfg, fam, frame, sel_seed, fit_options.get(fam, {}), errors)
            k_chosen = _rating_choice(fits, how, cfg.loo_se_rule)
            res_true, res_chosen = fits.get(k_true), fits.get(k_chosen) if k_chosen is not None else None
        else:
            sub = sel.table[sel.table["model"] == fam]
            if how == "silhouette":
                ok = sub[sub["admissible"] & np.isfinite(sub["silhouette"])]
                k_chosen = int(ok.loc[ok["silhouette"].idxmax(), "k"]) if len(ok) else None
            else:
                k_chosen = sel.per_family[fam]["recommended_k"]
            res_true = sel.result(fam, k_true)
            res_chosen = sel.result(fam, k_chosen) if k_chosen is not None else None
            errors += [f"k={r.k}: {r.error}" for r in sub[sub["status"] != "ok"].itertuples()]
        row["k_chosen"] = k_chosen
        row["correct_k"] = float(k_chosen == k_true) if k_chosen is not None else 0.0
        row["ari_true_k"] = float(adjusted_rand_score(segment, res_true.assignment)) if res_true is not None else np.nan
        row["ari_chosen"] = float(adjusted_rand_score(segment, res_chosen.assignment)) if res_chosen is not None else np.nan
        row["ari_vs_kmeans"] = (float(adjusted_rand_score(km_true.assignment, res_true.assignment))
                                if res_true is not None and km_true is not None else np.nan)
        if res_true is not None:
            est, lo, hi, matched, cols = _matched(segment, res_true)
            j_small = int(np.argmin(shares))
            row["share_bias"] = float(est[j_small] - shares[j_small])
            row["share_sq_error"] = float(np.mean((est - shares) ** 2))
            row["share_rmse"] = float(np.sqrt(row["share_sq_error"]))
            row["coverage"] = float(np.mean((lo <= shares) & (shares <= hi) & matched))
            if family(fam).data in ("scores", "ratings"):  # centers on the opportunity scale
                centers = np.asarray(res_true.centers, dtype=float)[cols]
                row["opp_rmse"] = float(np.sqrt(np.mean((centers - true_opp) ** 2)))
                ci = res_true.center_intervals
                if ci is not None and family(fam).on_ratings:
                    ci = np.asarray(ci, dtype=float)[cols]
                    inside = (ci[..., 0] <= true_opp) & (true_opp <= ci[..., 1]) & matched[:, None]
                    row["opp_coverage"] = float(np.mean(inside))
                    row["opp_interval_width"] = float(np.mean(ci[..., 1] - ci[..., 0]))
        row["n_failed_fits"] = len(errors)
        if errors:
            row["error"] = "; ".join(errors)
        rows.append(row)
    secs = time.perf_counter() - t0
    for row in rows:
        row["seconds"] = secs
    return cell_id, rep, rows


def _matched(truth: np.ndarray, result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_matched_shares`, plus the fitted segment (0-based) matched to each true one
    (every true segment gets one when ``result.k >= k_true``; unmatched ones point at segment 0)."""
    from scipy.optimize import linear_sum_assignment

    k_true = int(truth.max())
    ct = np.zeros((k_true, result.k))
    np.add.at(ct, (truth - 1, result.assignment - 1), 1)
    rows, cols = linear_sum_assignment(-ct)
    match = np.zeros(k_true, dtype=int)
    match[rows] = cols
    est, lo, hi, matched = _matched_shares(truth, result)
    return est, lo, hi, matched, match


def _rating_sweep(cfg: StudyConfig, fam: str, frame: Any, seed: int, options: Mapping[str, Any],
                  errors: list[str]) -> dict[int, Any]:
    """The rating family fitted at every candidate k (each k its own seed, as a sweep gives it)."""
    from latentseg.errors import FitError
    from latentseg.models import fit

    opts = dict(options)
    if family(fam).bayesian:
        opts = {**cfg.bayes, **opts}
    seq = np.random.SeedSequence(seed)
    fits: dict[int, Any] = {}
    for k in cfg.k_candidates:
        child = int(np.random.SeedSequence(seq.entropy, spawn_key=(family(fam).seed_code, int(k))).generate_state(1)[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LatentsegWarning)
                fits[k] = fit(frame, fam, k, random_seed=child, **opts)
        except (FitError, LatentsegError) as exc:
            errors.append(f"k={k}: {exc}")
    return fits


def _rating_choice(fits: Mapping[int, Any], how: str, se_rule: float) -> int | None:
    """The k a rating family's sweep chooses: lowest BIC, or LOO with the parsimony rule."""
    if not fits:
        return None
    if how == "loo":
        from latentseg.models.bayes._loo import compare_k

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LatentsegWarning)
            rec = compare_k([fits[k] for k in sorted(fits)], se_rule=se_rule).attrs.get("recommended_k")
        return None if rec is None else int(rec)
    bic = {k: float(r.criteria["bic"]) for k, r in fits.items() if np.isfinite(float(r.criteria.get("bic", np.nan)))}
    return min(bic, key=lambda k: (bic[k], k)) if bic else None


def _cell_path(out_dir: str | os.PathLike[str], cell_id: str, rep: int) -> Path:
    return Path(out_dir) / "cells" / f"{cell_id}-r{rep}.json"


def _write_cell(out_dir: str, cell_id: str, rep: int, rows: list[dict[str, Any]]) -> None:
    from latentseg.io.jsonsafe import json_safe

    path = _cell_path(out_dir, cell_id, rep)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(json_safe({"cell_id": cell_id, "replication": rep, "rows": rows})))


def _read_cell(out_dir: str | os.PathLike[str], cell_id: str, rep: int) -> list[dict[str, Any]] | None:
    path = _cell_path(out_dir, cell_id, rep)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return doc.get("rows") if doc.get("cell_id") == cell_id else None


# ---------------------------------------------------------------------------------- the study
@dataclass(frozen=True, eq=False)
class StudyResult:
    """What :func:`run_study` produced.

    Attributes
    ----------
    replications : DataFrame
        One row per cell, replication and method.
    summary : DataFrame
        One row per cell and method (:func:`summarize`).
    files : dict of str to Path
        ``replications``, ``summary``, ``config`` and the figures.
    resumed : int
        Replications loaded from an earlier run rather than computed.
    computed : int
    seconds : float
    """

    replications: pd.DataFrame
    summary: pd.DataFrame
    files: dict[str, Path]
    resumed: int
    computed: int
    seconds: float


def run_study(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: ProgressCallback | None = None,
    plots: bool = True,
) -> StudyResult:
    """Run (or resume) a simulation study and write its tables and figures.

    Parameters
    ----------
    config : StudyConfig, mapping or path
        A validated config, the ``[study]`` table as a dict, or a TOML file.
    out_dir : path
        Output directory: ``cells/`` (one JSON file per finished replication),
        ``replications.csv``, ``summary.csv``, ``disagreement.csv`` (k-means against the Gaussian
        mixture, :func:`disagreement_table`, when both are among the methods),
        ``study_config.json`` and the figures.
    n_jobs : int, default 1
        Worker processes on this machine (joblib).
    scheduler : str or dask.distributed.Client, optional
        Run the replications on a Dask cluster instead: the scheduler's address
        (``"tcp://host:8786"``) or a connected ``Client`` (needs ``pip install 'latentseg[dask]'``).
        Every replication is one task; the workers return their rows and this process writes
        them, so the workers need no shared disk. The tables are those of a local run: every
        replication's seed depends only on the study seed and its cell.
    progress : callable(done, total, description), optional
    plots : bool, default True

    Returns
    -------
    StudyResult

    Raises
    ------
    ConfigError
        An invalid config, ``n_jobs < 1``, or a scheduler without Dask installed.

    Examples
    --------
    >>> import tempfile
    >>> cfg = {"grid": {"n": [120], "k": [2], "separation": [4.0]}, "replications": 1,
    ...        "methods": ["kmeans-silhouette", "gmm-bic"], "k_candidates": [1, 2, 3], "d": 2}
    >>> res = run_study(cfg, tempfile.mkdtemp(), plots=False)
    >>> res.summary[["method", "correct_k"]].to_dict("records")
    [{'method': 'gmm-bic', 'correct_k': 1.0}, {'method': 'kmeans-silhouette', 'correct_k': 1.0}]
    """
    if isinstance(config, StudyConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = study_config_from_dict(config)
    else:
        cfg = load_study_config(config)
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"n_jobs must be an integer >= 1; got {n_jobs!r}.")
    t0 = time.perf_counter()
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    settings = cfg.settings_key()
    tasks = [(cell, rep, _cell_id(cell, settings)) for cell in cfg.cells() for rep in range(cfg.replications)]
    total = len(tasks)
    rows: list[dict[str, Any]] = []
    todo = []
    for cell, rep, cid in tasks:
        done_rows = _read_cell(out, cid, rep)
        if done_rows is not None:
            rows.extend(done_rows)
        else:
            todo.append((cell, rep, cid))
    resumed = total - len(todo)
    done = resumed
    if progress is not None and resumed:
        progress(done, total, f"{resumed} replication(s) loaded from {out / 'cells'}")
    if todo:
        runner = _dask_results(scheduler, cfg, todo) if scheduler is not None else _local_results(n_jobs, cfg, todo)
        for cid, rep, new_rows in runner:
            _write_cell(str(out), cid, rep, new_rows)
            rows.extend(new_rows)
            done += 1
            if progress is not None:
                c = new_rows[0] if new_rows else {}
                desc = ", ".join(f"{f}={c.get(f)}" for f in cfg.factors) + f", rep {rep + 1}"
                progress(done, total, desc)

    reps = pd.DataFrame(rows)
    order = [*cfg.factors, "cell_id", "replication", "method"]
    reps = reps.sort_values(order, kind="stable").reset_index(drop=True) if len(reps) else reps
    summary = summarize(reps)
    files = {
        "replications": _atomic_csv(reps, out / "replications.csv"),
        "summary": _atomic_csv(summary, out / "summary.csv"),
    }
    km = next((m for m in ("kmeans-elbow", "kmeans-silhouette") if m in cfg.methods), None)
    if km is not None and "gmm-bic" in cfg.methods and len(reps):
        if cfg.data == "ratings":
            dis = disagreement_table(reps, a=km, b="gmm-bic", by=[f for f in cfg.factors if f != "k"])
        else:
            dis = disagreement_table(reps, a=km, b="gmm-bic")
        files["disagreement"] = _atomic_csv(dis.rename_axis("group").reset_index(), out / "disagreement.csv")
    cfg_path = out / "study_config.json"
    cfg_path.write_text(json.dumps(cfg.to_dict(), indent=2), encoding="utf-8")
    files["config"] = cfg_path
    if plots and len(summary):
        from latentseg.deliver.plots import write_study_figures

        for p in write_study_figures(summary, out, factors=list(cfg.factors)):
            files[p.stem] = p
    return StudyResult(
        replications=reps, summary=summary, files=files, resumed=resumed, computed=len(todo),
        seconds=time.perf_counter() - t0,
    )


def _local_results(n_jobs: int, cfg: StudyConfig, todo: Sequence[tuple[Mapping[str, Any], int, str]]) -> Any:
    """The replications' results, as each finishes, from ``n_jobs`` local worker processes."""
    from joblib import Parallel, delayed

    runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    return runner(delayed(_run_replication)(cfg, cell, rep, cid) for cell, rep, cid in todo)


#: what to install for ``scheduler=``
MISSING_DASK = "Running a study on a Dask cluster needs dask.distributed: pip install 'latentseg[dask]'."


def _dask_results(scheduler: Any, cfg: StudyConfig, todo: Sequence[tuple[Mapping[str, Any], int, str]]) -> Any:
    """The replications' results, as each finishes, from a Dask cluster (one task each)."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ConfigError(MISSING_DASK) from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, set_as_default=False) if own else scheduler
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"Could not connect to the Dask scheduler {scheduler!r}: {exc}") from None
    try:
        futures = [client.submit(_run_replication, cfg, cell, rep, cid, pure=False) for cell, rep, cid in todo]
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
            fut.release()
    finally:
        if own:
            client.close()


def _atomic_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write(path, lambda tmp: safe_csv_frame(df, index=False).to_csv(tmp, index=False))


def summarize(replications: pd.DataFrame) -> pd.DataFrame:
    """Average the replication rows per cell and method.

    Parameters
    ----------
    replications : DataFrame
        ``replications.csv`` (one row per cell, replication and method).

    Returns
    -------
    DataFrame
        The design factors, ``method``, ``replications``, ``correct_k``, ``k_chosen`` (mean),
        ``ari_true_k``, ``ari_chosen``, ``ari_vs_kmeans``, ``share_bias`` (mean),
        ``share_rmse`` (root of the mean squared error over segments and replications),
        ``coverage``, ``failed_fits``; in a rating study also ``opp_rmse`` (root mean squared
        error of the segment opportunity, for methods whose centers are on the opportunity
        scale), ``opp_coverage`` and ``opp_interval_width`` (its intervals, rating families).
    """
    if replications.empty:
        return pd.DataFrame()
    df = replications.copy()
    for col in ("k_chosen", "correct_k", "ari_true_k", "ari_chosen", "ari_vs_kmeans", "share_bias",
                "share_sq_error", "coverage", "n_failed_fits"):
        if col not in df.columns:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce")
    factors = RATING_FACTORS if "design" in df.columns else GRID_FACTORS
    keys = [*factors, "cell_id", "method"]
    g = df.groupby(keys, sort=True, dropna=False)
    out = g.agg(
        replications=("replication", "count"),
        correct_k=("correct_k", "mean"),
        k_chosen=("k_chosen", "mean"),
        ari_true_k=("ari_true_k", "mean"),
        ari_chosen=("ari_chosen", "mean"),
        ari_vs_kmeans=("ari_vs_kmeans", "mean"),
        share_bias=("share_bias", "mean"),
        share_mse=("share_sq_error", "mean"),
        coverage=("coverage", "mean"),
        failed_fits=("n_failed_fits", "sum"),
        **{col: (col, "mean") for col in ("opp_rmse", "opp_coverage", "opp_interval_width") if col in df.columns},
    ).reset_index()
    out.insert(out.columns.get_loc("share_mse"), "share_rmse", np.sqrt(out.pop("share_mse")))
    return out


def headline_tables(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The methodologist's headline tables from a study summary.

    Returns
    -------
    dict of str to DataFrame
        ``overall``: per method, the mean over cells of every metric; ``by_separation``: the rate
        of choosing the true k per separation and method; ``by_factor``: ARI at the true k per
        method and value of every varying design factor; ``disagreement``: cells split by how
        much k-means and the Gaussian mixture disagree at the true k (ARI between them below /
        above the median), with each method's ARI against the truth.
    """
    metrics = ["correct_k", "k_chosen", "ari_true_k", "ari_chosen", "share_bias", "share_rmse", "coverage"]
    metrics += [m for m in ("opp_rmse", "opp_coverage", "opp_interval_width") if m in summary.columns]
    factors = RATING_FACTORS if "design" in summary.columns else GRID_FACTORS
    tables: dict[str, pd.DataFrame] = {}
    tables["overall"] = summary.groupby("method")[metrics].mean()
    if "design" in summary.columns:
        for m in ("correct_k", "ari_true_k", "share_bias", "coverage", "opp_rmse", "opp_coverage"):
            if m in summary.columns:
                tables[f"{m}_by_design"] = summary.pivot_table(index="design", columns="method", values=m, aggfunc="mean")
    tables["by_separation"] = summary.pivot_table(index="separation", columns="method", values="correct_k", aggfunc="mean")
    tables["k_chosen_by_true_k"] = summary.pivot_table(index="k", columns="method", values="k_chosen", aggfunc="mean")
    tables["coverage_by_separation"] = summary.pivot_table(index="separation", columns="method", values="coverage", aggfunc="mean")
    long = []
    for f in factors:
        if summary[f].nunique() > 1:
            t = summary.groupby([f, "method"])["ari_true_k"].mean().unstack("method")
            t.index = [f"{f}={v}" for v in t.index]
            long.append(t)
    if long:
        tables["by_factor"] = pd.concat(long)
    gmm = summary[summary["method"] == "gmm-bic"].set_index("cell_id")["ari_vs_kmeans"]
    if len(gmm) and gmm.notna().any():
        cut = float(gmm.median())
        label = pd.Series(np.where(gmm < cut, f"k-means vs GMM ARI < {cut:.2f}", f"k-means vs GMM ARI >= {cut:.2f}"), index=gmm.index)
        s = summary.assign(agreement=summary["cell_id"].map(label))
        tables["disagreement"] = s.pivot_table(index="agreement", columns="method", values="ari_true_k", aggfunc="mean")
    return tables


def disagreement_table(
    replications: pd.DataFrame,
    *,
    a: str = "kmeans-elbow",
    b: str = "gmm-bic",
    threshold: float = 0.8,
    margin: float = 0.05,
    by: Sequence[str] = ("separation", "imbalance", "covariance", "noise_dims", "n"),
) -> pd.DataFrame:
    """When two methods disagree at the true k, which one is closer to the truth?

    A replication counts as a *disagreement* when the ARI between method ``b``'s fit and
    k-means's fit at the true k (``ari_vs_kmeans`` of ``b``) is below ``threshold``. Among
    disagreements, ``b`` *wins* when its ARI against the truth exceeds ``a``'s by more than
    ``margin``, ``a`` wins in the opposite case, and the rest are ties.

    Parameters
    ----------
    replications : DataFrame
        ``replications.csv``.
    a, b : str
        Methods to compare; ``a`` must be a k-means method (its true-k fit is the reference of
        ``ari_vs_kmeans``).
    threshold, margin : float
    by : sequence of str
        Design factors to break the table down by (those that vary are used).

    Returns
    -------
    DataFrame
        Rows ``all`` and ``<factor>=<value>``; columns ``replications``, ``disagree``
        (share of replications), ``n_disagree``, ``<b> closer``, ``<a> closer``, ``tie``
        (shares of the disagreements), ``ARI <a>``, ``ARI <b>`` (mean ARI against the truth on
        the disagreements).
    """
    if not METHODS.get(a, ("",))[0] == KMEANS:
        raise ConfigError(f"disagreement_table: method a must be a k-means method; got {a!r}.")
    keys = ["cell_id", "replication"]
    wa = replications[replications["method"] == a].set_index(keys)
    wb = replications[replications["method"] == b].set_index(keys)
    both = wb.join(wa[["ari_true_k"]].rename(columns={"ari_true_k": "ari_true_k_a"}), how="inner")
    both = both.assign(
        disagree=both["ari_vs_kmeans"] < threshold,
        b_wins=both["ari_true_k"] > both["ari_true_k_a"] + margin,
        a_wins=both["ari_true_k_a"] > both["ari_true_k"] + margin,
    )

    def row(frame: pd.DataFrame) -> dict[str, float]:
        d = frame[frame["disagree"]]
        nd = len(d)
        return {
            "replications": len(frame),
            "disagree": float(frame["disagree"].mean()) if len(frame) else np.nan,
            "n_disagree": nd,
            f"{b} closer": float(d["b_wins"].mean()) if nd else np.nan,
            f"{a} closer": float(d["a_wins"].mean()) if nd else np.nan,
            "tie": float((~d["b_wins"] & ~d["a_wins"]).mean()) if nd else np.nan,
            f"ARI {a}": float(d["ari_true_k_a"].mean()) if nd else np.nan,
            f"ARI {b}": float(d["ari_true_k"].mean()) if nd else np.nan,
        }

    rows = {"all": row(both)}
    for f in by:
        if f in both.columns and both[f].nunique() > 1:
            for v, sub in both.groupby(f, sort=True):
                rows[f"{f}={v}"] = row(sub)
    return pd.DataFrame.from_dict(rows, orient="index")
