"""Dimension reduction of the opportunity matrix (the playbook's step 3).

Three methods, one result type (:class:`Reduction`):

- ``"pca"``: principal components of the standardised opportunity scores; by default as many
  components as it takes to explain ``variance`` (70-80% in the playbook; 0.75 here) of the total
  variance. Scores are the component projections; loadings are the outcome-component
  correlations (eigenvector x sqrt(eigenvalue)).
- ``"fa"``: maximum-likelihood factor analysis (scikit-learn ``FactorAnalysis``) with varimax
  rotation on the standardised scores; the number of factors is ``n_factors`` or, by default,
  the PCA rule above. Factor scores are **Bartlett** scores (weighted least squares, unbiased
  for the factors), so a segment's mean factor score maps back to outcome space through the
  loadings exactly.
- ``"jobstep"``: the playbook's pragmatic alternative: one composite per job step, the mean
  opportunity score over that step's outcomes (from ``outcomes["job_step"]``).

Every reduction keeps the linear map from outcomes to factors (:meth:`Reduction.transform`,
:meth:`Reduction.transform_spec`) and the map back (:meth:`Reduction.to_outcomes`), so segments
found on factor scores are still profiled in outcome terms.

Missing values: PCA and FA replace a missing score by the outcome's mean (a standardised 0: it
pulls the respondent's factor scores towards the centre); the number of imputed cells is noted.
Job-step composites average the outcomes a respondent has (a composite is missing only when
every outcome of the step is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError

__all__ = ["Reduction", "reduce", "METHODS"]

#: The reduction methods :func:`reduce` knows.
METHODS = ("pca", "fa", "jobstep")

_LABEL_CHARS = 48  # characters kept of each statement in a factor label


@dataclass(frozen=True, eq=False)
class Reduction:
    """A fitted reduction of the opportunity matrix.

    Attributes
    ----------
    scores : DataFrame, shape (n, f)
        Factor scores (respondents x factors), columns named by :attr:`labels`.
    loadings : DataFrame, shape (m, f)
        Outcomes x factors: outcome-component correlations (PCA), rotated loadings on the
        standardised scores (FA), step membership 0/1 (job steps).
    explained_variance : ndarray, shape (f,)
        Share of the total variance each factor explains (standardised variance for PCA / FA,
        raw variance of the scores for job steps).
    labels : tuple of str, length f
        ``"F1: <top statement> / <second statement>"`` (PCA, FA) or the job step name.
    method : str
        ``"pca"``, ``"fa"`` or ``"jobstep"``.
    outcome_ids : tuple of str, length m
    mean, scale : ndarray, shape (m,)
        Centring and scaling of the outcomes before the map (0 / 1 for job steps).
    weights : ndarray, shape (m, f)
        Scoring weights: ``scores = ((X - mean) / scale) @ weights``.
    back : ndarray, shape (f, m)
        The map back: ``outcomes = mean + scale * (factors @ back)``.
    notes : tuple of str
        Imputation and other choices made.
    """

    scores: pd.DataFrame
    loadings: pd.DataFrame
    explained_variance: np.ndarray
    labels: tuple[str, ...]
    method: str
    outcome_ids: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    back: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_factors(self) -> int:
        """Number of factors f."""
        return len(self.labels)

    def transform(self, scores: pd.DataFrame) -> pd.DataFrame:
        """Factor scores of (new) respondents, with the fit-time mean imputation / step means.

        Parameters
        ----------
        scores : DataFrame, shape (n, >= m)
            Opportunity scores holding every fitted outcome column.

        Returns
        -------
        DataFrame, shape (n, f)
        """
        missing = [c for c in self.outcome_ids if c not in set(map(str, scores.columns))]
        if missing:
            raise ConfigError(f"The scores lack outcome column(s) {missing} the reduction was fitted on.")
        X = scores.rename(columns=str)[list(self.outcome_ids)].to_numpy(dtype=float, na_value=np.nan)
        Z = (X - self.mean) / self.scale
        if self.method == "jobstep":
            present = ~np.isnan(Z)
            member = (self.weights > 0).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = (np.nan_to_num(Z) @ member) / (present.astype(float) @ member)
        else:
            out = np.nan_to_num(Z) @ self.weights  # missing -> the outcome mean (standardised 0)
        return pd.DataFrame(out, index=scores.index, columns=list(self.labels))

    def to_outcomes(self, centers: Any) -> pd.DataFrame:
        """Map factor-space points (segment centers) back to opportunity scores per outcome.

        PCA: the inverse transform on the retained components; FA: the loadings
        (``mean + scale * Lambda f``); job steps: each outcome takes its step's value.

        Parameters
        ----------
        centers : ndarray, DataFrame (k, f) or SegmentationResult
            Points in factor space; a result's ``centers`` (fitted on :attr:`scores`) are used.

        Returns
        -------
        DataFrame, shape (k, m)
            Index ``1..k`` (segments), columns the outcome ids.
        """
        C = getattr(centers, "centers", centers)
        C = np.atleast_2d(np.asarray(C, dtype=float))
        if C.shape[1] != self.n_factors:
            raise ConfigError(f"Expected points with {self.n_factors} factor coordinates; got {C.shape[1]}.")
        out = self.mean + self.scale * (C @ self.back)
        return pd.DataFrame(out, index=pd.RangeIndex(1, C.shape[0] + 1, name="segment"), columns=list(self.outcome_ids))

    def transform_spec(self) -> dict[str, Any]:
        """The linear map as plain JSON-safe data (saved with a model, used by ``assign``).

        ``scores = ((X[columns] - mean) / scale) @ weights``; ``weights`` is (m, f).
        """
        return {
            "method": self.method,
            "columns": list(self.outcome_ids),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "labels": list(self.labels),
        }

    def to_dict(self) -> dict[str, Any]:
        """Method, labels, explained variance, loadings (outcome -> factor -> value) and notes."""
        return {
            "method": self.method,
            "n_factors": self.n_factors,
            "labels": list(self.labels),
            "explained_variance": [float(v) for v in self.explained_variance],
            "loadings": {
                str(o): {lab: float(v) for lab, v in zip(self.labels, row)}
                for o, row in zip(self.outcome_ids, self.loadings.to_numpy())
            },
            "notes": list(self.notes),
        }


# ================================================================================= fitting
def _check_scores(scores: Any) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        scores = pd.DataFrame(np.asarray(scores, dtype=float))
    df = scores.rename(columns=str)
    if df.shape[1] < 2:
        raise ConfigError(f"A reduction needs at least two outcome columns; got {df.shape[1]}.")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise SurveyError(f"A reduction needs numeric opportunity scores; column(s) {bad} are not numeric.")
    empty = [c for c in df.columns if df[c].notna().sum() == 0]
    if empty:
        raise SurveyError(f"Column(s) {empty} have no observed scores; drop them before reducing.")
    return df


def _statement_labels(
    loadings: np.ndarray, outcome_ids: list[str], statements: Mapping[str, str], top: int = 2
) -> tuple[str, ...]:
    """``F<j>: <top statement> / <second>`` by absolute loading; unique by construction."""
    labels = []
    for j in range(loadings.shape[1]):
        order = np.argsort(-np.abs(loadings[:, j]), kind="stable")[:top]
        parts = []
        for i in order:
            text = str(statements.get(outcome_ids[i], outcome_ids[i])).strip() or outcome_ids[i]
            parts.append(text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 3].rstrip() + "...")
        labels.append(f"F{j + 1}: " + " / ".join(parts))
    return tuple(labels)


def _n_for_variance(ratios: np.ndarray, variance: float) -> int:
    """Fewest leading components whose cumulative share reaches ``variance``."""
    cum = np.cumsum(ratios)
    return int(min(np.searchsorted(cum, variance - 1e-12) + 1, ratios.size))


def _standardise(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    X = df.to_numpy(dtype=float, na_value=np.nan)
    mean = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    flat = [c for c, s in zip(df.columns, scale) if not s > 0]
    if flat:
        raise SurveyError(f"Column(s) {flat} have zero variance; a PCA / factor analysis cannot standardise them.")
    n_missing = int(np.isnan(X).sum())
    Z = np.nan_to_num((X - mean) / scale)  # missing -> outcome mean
    return Z, mean, scale, n_missing


def _pca(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, of the correlation matrix) and eigenvectors (m, m) with a fixed sign."""
    n = Z.shape[0]
    _, s, Vt = np.linalg.svd(Z / np.sqrt(n), full_matrices=False)
    V = Vt.T
    # sign: the largest-|coefficient| outcome of each component is positive (deterministic output)
    flip = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    V = V * np.where(flip == 0, 1.0, flip)
    return s**2, V


def reduce(
    scores: pd.DataFrame,
    method: str = "pca",
    *,
    variance: float = 0.75,
    n_factors: int | None = None,
    outcomes: pd.DataFrame | None = None,
    random_seed: int | None = None,
) -> Reduction:
    """Reduce the opportunity matrix to a few factors (PCA, factor analysis or job-step composites).

    Parameters
    ----------
    scores : DataFrame, shape (n, m)
        Respondent opportunity scores (respondents x outcomes), NaN where missing.
    method : {"pca", "fa", "jobstep"}, default "pca"
    variance : float, default 0.75
        PCA / FA: share of the total (standardised) variance the retained components must reach
        (the playbook's 70-80%), used when ``n_factors`` is not given. In (0, 1].
    n_factors : int, optional
        PCA / FA: the number of factors, overriding ``variance`` (1 <= f <= m for PCA, f < m for FA).
    outcomes : DataFrame, optional
        Indexed by outcome id, with ``statement`` (used in factor labels) and, for ``"jobstep"``,
        ``job_step`` (required). ``Survey.outcomes`` has this layout.
    random_seed : int, optional
        Passed to the factor analysis (which is deterministic with the exact SVD used here);
        recorded for provenance.

    Returns
    -------
    Reduction

    Raises
    ------
    ConfigError
        Unknown method, a variance outside (0, 1], a bad ``n_factors``, job steps missing.
    SurveyError
        Non-numeric, empty or constant columns.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=(200, 2))
    >>> X = pd.DataFrame(np.repeat(f, 3, axis=1) + 0.3 * rng.normal(size=(200, 6)),
    ...                  columns=[f"o{i}" for i in range(6)])
    >>> red = reduce(X, "pca", variance=0.8)
    >>> red.n_factors, red.scores.shape
    (2, (200, 2))
    >>> red.labels[0].startswith("F1: ")
    True
    >>> red.to_outcomes(red.scores.mean().to_numpy()[None]).shape
    (1, 6)
    """
    if method not in METHODS:
        raise ConfigError(f"The 'method' parameter of reduce must be one of {', '.join(METHODS)}. Got {method!r} instead.")
    if not (isinstance(variance, (int, float)) and 0 < variance <= 1):
        raise ConfigError(f"The 'variance' parameter of reduce must be a float in (0, 1]. Got {variance!r} instead.")
    df = _check_scores(scores)
    ids = [str(c) for c in df.columns]
    m = len(ids)
    statements: dict[str, str] = {}
    if outcomes is not None and "statement" in outcomes.columns:
        statements = {str(k): str(v) for k, v in outcomes["statement"].items() if pd.notna(v)}
    if n_factors is not None:
        high = m if method == "pca" else m - 1
        if isinstance(n_factors, bool) or not isinstance(n_factors, (int, np.integer)) or not 1 <= n_factors <= high:
            raise ConfigError(
                f"The 'n_factors' parameter of reduce must be an int in the range [1, {high}] for method "
                f"{method!r} with {m} outcomes. Got {n_factors!r} instead."
            )
    if method == "jobstep":
        return _jobstep(df, ids, outcomes)

    Z, mean, scale, n_missing = _standardise(df)
    notes = []
    if n_missing:
        notes.append(
            f"{n_missing} missing score(s) replaced by the outcome mean before the {method.upper()} "
            "(they pull those respondents' factor scores towards the centre)."
        )
    eig, V = _pca(Z)
    ratios = eig / eig.sum()
    f = int(n_factors) if n_factors is not None else _n_for_variance(ratios, float(variance))
    if method == "pca":
        W = V[:, :f]  # scores = Z @ W; back = W.T (orthonormal)
        loadings = W * np.sqrt(eig[:f])
        explained = ratios[:f]
        back = W.T
        notes.insert(0, f"{f} principal component(s) explain {explained.sum():.1%} of the standardised variance.")
    else:
        f = min(f, m - 1)
        loadings, W = _factor_analysis(Z, f, random_seed)
        explained = (loadings**2).sum(axis=0) / m
        back = loadings.T
        notes.insert(
            0,
            f"{f} varimax-rotated factor(s) explain {explained.sum():.1%} of the standardised variance "
            "(common variance; Bartlett scores).",
        )
    labels = _statement_labels(loadings, ids, statements)
    out_scores = pd.DataFrame(Z @ W, index=df.index, columns=list(labels))
    return Reduction(
        scores=out_scores,
        loadings=pd.DataFrame(loadings, index=pd.Index(ids, name="outcome"), columns=list(labels)),
        explained_variance=np.asarray(explained, dtype=float),
        labels=labels,
        method=method,
        outcome_ids=tuple(ids),
        mean=mean,
        scale=scale,
        weights=W,
        back=back,
        notes=tuple(notes),
    )


def _factor_analysis(Z: np.ndarray, f: int, random_seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Varimax-rotated ML loadings (m, f) and Bartlett scoring weights (m, f)."""
    from sklearn.decomposition import FactorAnalysis

    fa = FactorAnalysis(n_components=f, rotation="varimax", svd_method="lapack", random_state=random_seed)
    fa.fit(Z)
    L = fa.components_.T.copy()  # (m, f)
    # sign: each factor's loadings sum positive; order: by explained (sum of squared loadings)
    L *= np.where(L.sum(axis=0) < 0, -1.0, 1.0)
    L = L[:, np.argsort(-(L**2).sum(axis=0), kind="stable")]
    psi = np.maximum(fa.noise_variance_, 1e-12)
    LtPi = L.T / psi  # (f, m)
    W = np.linalg.solve(LtPi @ L, LtPi).T  # Bartlett: (L' Psi^-1 L)^-1 L' Psi^-1, transposed (m, f)
    return L, W


def _jobstep(df: pd.DataFrame, ids: list[str], outcomes: pd.DataFrame | None) -> Reduction:
    if outcomes is None or "job_step" not in outcomes.columns:
        raise ConfigError("method='jobstep' needs outcomes with a 'job_step' column (e.g. Survey.outcomes).")
    steps_map = {str(k): ("" if pd.isna(v) else str(v).strip()) for k, v in outcomes["job_step"].items()}
    lacking = [o for o in ids if not steps_map.get(o)]
    if lacking:
        raise ConfigError(
            f"method='jobstep' needs a job step for every outcome; {len(lacking)} outcome(s) have none: "
            f"{lacking[:5]}{' ...' if len(lacking) > 5 else ''}."
        )
    steps: list[str] = []
    for o in ids:
        if steps_map[o] not in steps:
            steps.append(steps_map[o])
    member = np.array([[steps_map[o] == s for s in steps] for o in ids], dtype=float)  # (m, f)
    X = df.to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(X)
    with np.errstate(invalid="ignore", divide="ignore"):
        comp = (np.nan_to_num(X) @ member) / (present.astype(float) @ member)
    # explained share of the raw variance: replacing each outcome by its step composite
    var = np.nanvar(X, axis=0)
    resid = np.nanvar(X - comp @ member.T, axis=0)
    explained = np.array([(var[member[:, s] > 0] - resid[member[:, s] > 0]).sum() for s in range(len(steps))])
    explained = explained / var.sum() if var.sum() > 0 else np.zeros(len(steps))
    n_missing = int((~present).sum())
    notes = [f"{len(steps)} job-step composite(s): the mean opportunity score over each step's outcomes."]
    if n_missing:
        notes.append(f"{n_missing} missing score(s): composites average the outcomes each respondent has.")
    labels = tuple(steps)
    sizes = member.sum(axis=0)
    return Reduction(
        scores=pd.DataFrame(comp, index=df.index, columns=list(labels)),
        loadings=pd.DataFrame(member, index=pd.Index(ids, name="outcome"), columns=list(labels)),
        explained_variance=explained,
        labels=labels,
        method="jobstep",
        outcome_ids=tuple(ids),
        mean=np.zeros(len(ids)),
        scale=np.ones(len(ids)),
        weights=member / sizes,
        back=member.T,
        notes=tuple(notes),
    )
