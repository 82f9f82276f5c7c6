"""Demographic and behavioural overlays: segment × profile variable, tests, fingerprints.

The segments are defined by unmet needs; the overlay asks which observable traits (role, company
size, current solution, self-classification answers ...) go with them, so a team can find the
segments in the wild. Membership uncertainty is respected: by default each respondent counts in
every segment in proportion to their membership probability.

Weighting (``weighting=``)
    ``"proportional"`` (default): segment × category counts are ``sum_i p_ik [y_i = c]``.
    Association is attenuated toward zero when segments overlap, and the asymptotic chi-squared
    p-value is conservative (fractional counts vary less than whole ones).
    ``"bch"``: the memberships times ``D^{-1}``, ``D`` the proportional classification error
    matrix (Bolck, Croon & Hagenaars 2004; Vermunt 2010); estimates the table of the true
    segments, so Cramér's V is not attenuated. Cells that come out negative (sampling noise in a
    nearly empty cell) are set to 0.
    ``"modal"``: hard assignment to the most likely segment.

Tests and thresholds
    Categorical columns: Pearson's chi-squared on the weighted table and Cramér's V
    ``= sqrt(chi2 / (N (min(rows, cols) - 1)))``. The p-value is asymptotic chi-squared unless an
    expected count is below 5 or the weighting is BCH (negative weights: no chi-squared reference);
    then it is a Monte-Carlo permutation p-value: the column's values are shuffled across
    respondents ``n_mc`` times (which keeps both margins), the statistic recomputed with the same
    weights, and ``p = (1 + #{shuffled >= observed}) / (1 + n_mc)``.
    Numeric columns: per-segment weighted means with 95% intervals (linearisation standard errors)
    and a Kruskal-Wallis test on the modal assignment (a rank test needs hard groups), with effect
    size ``eta2_H = (H - k + 1) / (n - k)``.
    Strength: ``"strong"`` when V >= :data:`STRONG_V` (0.3) and p < :data:`STRONG_P` (0.01)
    (numeric: eta2_H >= :data:`STRONG_ETA2` = 0.09, the square of 0.3); ``"weak"`` when
    V >= :data:`WEAK_V` (0.1) and p < :data:`WEAK_P` (0.05) (numeric: eta2_H >= 0.01);
    otherwise ``"none"``.
    Fingerprints: among strong and weak columns, the categories whose share in the segment is at
    least :data:`FINGERPRINT_INDEX` (1.2) times the overall share (and at least 10% of the segment),
    and the numeric columns whose segment interval excludes the overall mean.
Survey weights (``sample_weight``, default the result's own)
    Each respondent counts ``w_i`` times: weighted counts ``sum_i w_i p_ik [y_i = c]``, weighted row
    and column percentages, weighted means with design-based (linearisation) intervals; BCH's
    classification error matrix is estimated on the weighted sample. Unequal weights make
    Pearson's test too liberal (the weighted table varies more than a simple random sample of the
    same size), so categorical columns are tested by the Rao-Scott second-order correction: with
    ``Delta`` the design-effect matrix of the table's interaction contrasts (their linearisation
    covariance over their simple-random-sampling covariance), ``F = X^2 / tr(Delta)`` on
    ``tr(Delta)^2 / tr(Delta^2)`` and ``(n - 1)`` times as many denominator degrees of freedom,
    as ``survey::svychisq(statistic = "F")`` computes for independent units with weights (it equals
    R's to 1e-6; tests/test_weights_decide.py). Respondents in several segments count fractionally
    in each. Numeric columns: the segments' weighted mean ranks (the population CDF at each
    value) compared by a design-based Wald test, referred to an F distribution, as
    ``survey::svyranktest(test = "KruskalWallis")`` does (equal to R's to 1e-6); effect the
    weighted eta^2 of the ranks. Weights that are all equal are a simple random sample: the unweighted
    tests, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from latentseg._stats import as_rng
from latentseg.decide.distal import align_to_result, segment_weights, wald_equal, weighted_means
from latentseg.decide.weights import is_weighted, linearised_cov, rao_scott, resolve_weights, weights_text
from latentseg.errors import ConfigError

__all__ = [
    "STRONG_V",
    "STRONG_P",
    "WEAK_V",
    "WEAK_P",
    "STRONG_ETA2",
    "WEAK_ETA2",
    "FINGERPRINT_INDEX",
    "FINGERPRINT_MIN_SHARE",
    "ColumnOverlay",
    "Overlays",
    "overlay",
    "cramers_v",
    "cramers_v_from_joint",
]

#: Cramér's V at or above which a significant association is "strong".
STRONG_V = 0.3
#: p-value below which a column can be "strong".
STRONG_P = 0.01
#: Cramér's V at or above which a significant association is "weak" (below: "none").
WEAK_V = 0.1
#: p-value below which a column can be "weak".
WEAK_P = 0.05
#: Kruskal-Wallis eta2_H for "strong" numeric columns (0.3 squared).
STRONG_ETA2 = 0.09
#: Kruskal-Wallis eta2_H for "weak" numeric columns (0.1 squared).
WEAK_ETA2 = 0.01
#: Over-representation index (segment share / overall share) for a fingerprint category.
FINGERPRINT_INDEX = 1.2
#: Minimum share of the segment a fingerprint category must hold.
FINGERPRINT_MIN_SHARE = 0.10
#: Numeric columns with at most this many distinct values are treated as categorical.
MAX_NUMERIC_LEVELS_AS_CATEGORY = 5
#: Categorical columns with more distinct values than this (ids, free text) are skipped.
MAX_CATEGORIES = 30

_WEIGHTINGS = ("proportional", "modal", "bch")
_Z95 = float(stats.norm.ppf(0.975))


# ---------------------------------------------------------------------------------------- effect sizes
def cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a (weighted) contingency table.

    Parameters
    ----------
    table : ndarray, shape (r, c)
        Counts (may be fractional); all-zero rows and columns are ignored.

    Returns
    -------
    float
        ``sqrt(chi2 / (N (min(r, c) - 1)))``, 0 for a table with one row or column.

    Examples
    --------
    >>> cramers_v(np.array([[10, 0], [0, 10]]))
    1.0
    """
    chi2, _, _ = _chi2(np.asarray(table, dtype=float))
    t = _trim(np.asarray(table, dtype=float))
    m = min(t.shape) - 1
    return 0.0 if m <= 0 else float(np.sqrt(chi2 / (t.sum() * m)))


def cramers_v_from_joint(joint: np.ndarray) -> float:
    """Population Cramér's V implied by a joint probability table (e.g. a simulator's truth).

    ``V^2 = phi^2 / (min(r, c) - 1)`` with ``phi^2 = sum (p_ij - p_i p_j)^2 / (p_i p_j)``.

    Parameters
    ----------
    joint : ndarray, shape (r, c)
        Joint probabilities (or any non-negative table; it is normalised).

    Examples
    --------
    >>> round(cramers_v_from_joint(np.array([[0.25, 0.25], [0.25, 0.25]])), 6)
    0.0
    """
    p = _trim(np.asarray(joint, dtype=float))
    p = p / p.sum()
    e = np.outer(p.sum(axis=1), p.sum(axis=0))
    phi2 = float(((p - e) ** 2 / e).sum())
    m = min(p.shape) - 1
    return 0.0 if m <= 0 else float(np.sqrt(phi2 / m))


def _trim(t: np.ndarray) -> np.ndarray:
    return t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]


def _chi2(t: np.ndarray) -> tuple[float, int, float]:
    """Pearson statistic, degrees of freedom and smallest expected count of a table."""
    t = _trim(t)
    if t.size == 0 or min(t.shape) < 2:
        return 0.0, 0, float("inf")
    e = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    return float(((t - e) ** 2 / e).sum()), (t.shape[0] - 1) * (t.shape[1] - 1), float(e.min())


def _stat_batch(tables: np.ndarray) -> np.ndarray:
    """Pearson statistic of each table in a batch, shape (B, r, c) -> (B,); zero margins ignored."""
    tot = tables.sum(axis=(1, 2))
    e = tables.sum(axis=2)[:, :, None] * tables.sum(axis=1)[:, None, :] / tot[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(e > 0, (tables - e) ** 2 / e, 0.0)
    return terms.sum(axis=(1, 2))


# ---------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ColumnOverlay:
    """The overlay of one profile column.

    Attributes
    ----------
    column : str
    kind : {"categorical", "numeric"}
    table : DataFrame
        Categorical: weighted counts, segments (1..k) × categories. Numeric: per segment
        ``mean, lower, upper, size`` (95% interval) and an ``overall`` row.
    row_pct, col_pct : DataFrame or None
        Categorical only: percentages within each segment (rows sum to 100) and within each
        category (columns sum to 100); ``row_pct`` has an ``overall`` row.
    test : str
        ``"chi-squared"`` or ``"Kruskal-Wallis (modal assignment)"``.
    statistic, df, p_value : float
        With survey weights, ``statistic`` is the Rao-Scott F (categorical) or the design-based
        Wald chi-squared of the weighted mean ranks (numeric), ``df`` its (numerator) degrees of
        freedom, which may be fractional.
    p_method : str
        How the p-value was obtained (asymptotic, the Monte-Carlo permutation and its size, or
        the Rao-Scott correction).
    effect : float
        Cramér's V (categorical) or eta2_H (numeric).
    strength : {"strong", "weak", "none"}
    min_expected : float
        Smallest expected count (categorical; NaN for numeric).
    n_missing : int
        Respondents without a value (left out of this column).
    ddf : float or None
        Denominator degrees of freedom of an F test (Rao-Scott), else None.
    weighted : bool
        Whether the counts, percentages, means and test use survey weights.
    """

    column: str
    kind: str
    table: pd.DataFrame
    row_pct: pd.DataFrame | None
    col_pct: pd.DataFrame | None
    test: str
    statistic: float
    df: float
    p_value: float
    p_method: str
    effect: float
    strength: str
    min_expected: float = float("nan")
    n_missing: int = 0
    ddf: float | None = None
    weighted: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.column,
            "kind": self.kind,
            "test": self.test,
            "statistic": self.statistic,
            "df": self.df,
            "ddf": self.ddf,
            "p_value": self.p_value,
            "p_method": self.p_method,
            "weighted": self.weighted,
            "effect": self.effect,
            "effect_name": "cramers_v" if self.kind == "categorical" else "eta2_H",
            "strength": self.strength,
            "n_missing": self.n_missing,
            "table": {str(i): {str(c): v for c, v in row.items()} for i, row in self.table.iterrows()},
        }
        if self.row_pct is not None:
            out["row_pct"] = {str(i): {str(c): v for c, v in row.items()} for i, row in self.row_pct.iterrows()}
        return out


@dataclass(frozen=True)
class Overlays:
    """Every overlay of a segmentation against profile columns.

    Attributes
    ----------
    weighting : str
    columns : dict of str to ColumnOverlay
    fingerprints : dict of int to list of dict
        Per segment (1..k), the over-represented categories / shifted numeric columns among the
        strong and weak columns, most distinctive first. Each entry: ``column, value, strength``,
        and for categories ``segment_pct, overall_pct, index`` or for numbers ``segment_mean,
        overall_mean, direction``; plus ``text``, a readable phrase.
    thresholds : str
        The strength and fingerprint rules, written out.
    skipped : dict of str to str
        Columns not overlaid, with the reason (e.g. too many categories to cross-tabulate).
    survey_weights : str or None
        How survey weights entered (their Kish effective n), None for an unweighted survey.
    """

    weighting: str
    columns: dict[str, ColumnOverlay]
    fingerprints: dict[int, list[dict[str, Any]]]
    thresholds: str
    skipped: dict[str, str] = field(default_factory=dict)
    survey_weights: str | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per column: ``kind, test, statistic, df, p_value, p_method, effect, strength``."""
        rows = [
            {
                "column": c.column,
                "kind": c.kind,
                "test": c.test,
                "statistic": c.statistic,
                "df": c.df,
                "p_value": c.p_value,
                "p_method": c.p_method,
                "effect": c.effect,
                "strength": c.strength,
            }
            for c in self.columns.values()
        ]
        return pd.DataFrame(rows).set_index("column") if rows else pd.DataFrame()

    def fingerprint_text(self, segment: int) -> str:
        """A one-line fingerprint of a segment ("demographically diffuse" when it has none)."""
        items = self.fingerprints.get(int(segment), [])
        if not items:
            return "demographically diffuse (no over-represented trait among the overlay columns)"
        return "; ".join(item["text"] for item in items)

    def __getitem__(self, column: str) -> ColumnOverlay:
        return self.columns[column]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of everything."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe(
            {
                "weighting": self.weighting,
                "survey_weights": self.survey_weights,
                "thresholds": self.thresholds,
                "columns": {name: c.to_dict() for name, c in self.columns.items()},
                "fingerprints": {str(k): v for k, v in self.fingerprints.items()},
                "skipped": dict(self.skipped),
            }
        )


THRESHOLDS_TEXT = (
    f"strong: Cramér's V >= {STRONG_V} and p < {STRONG_P} (numeric: Kruskal-Wallis eta2_H >= "
    f"{STRONG_ETA2} and p < {STRONG_P}); weak: V >= {WEAK_V} and p < {WEAK_P} (numeric: eta2_H >= "
    f"{WEAK_ETA2} and p < {WEAK_P}); otherwise none. Fingerprint: a category's share in the segment "
    f">= {FINGERPRINT_INDEX} x its overall share and >= {FINGERPRINT_MIN_SHARE:.0%} of the segment, "
    "or a numeric mean whose 95% interval excludes the overall mean, among strong and weak columns."
)


def _strength(effect: float, p: float, strong_e: float, weak_e: float) -> str:
    if not np.isfinite(p):
        return "none"
    if effect >= strong_e and p < STRONG_P:
        return "strong"
    if effect >= weak_e and p < WEAK_P:
        return "weak"
    return "none"


def _is_numeric(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return False
    return s.dropna().nunique() > MAX_NUMERIC_LEVELS_AS_CATEGORY


def _category_labels(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes 0..C-1 for observed values (sorted by their text, numbers numerically)."""
    values = s.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        uniq = sorted(values.unique().tolist())
        labels = [_fmt_num(v) for v in uniq]
        lookup = {v: i for i, v in enumerate(uniq)}
        codes = values.map(lookup).to_numpy(dtype=int)
    else:
        text = values.map(str)
        labels = sorted(text.unique().tolist())
        lookup = {v: i for i, v in enumerate(labels)}
        codes = text.map(lookup).to_numpy(dtype=int)
    return codes, labels


def _fmt_num(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _clip_table(t: np.ndarray, weighting: str) -> np.ndarray:
    return np.clip(t, 0.0, None) if weighting == "bch" else t


def _permutation_p(
    codes: np.ndarray, w: np.ndarray, n_cat: int, observed: float, n_mc: int, weighting: str, rng: np.random.Generator
) -> float:
    n, k = w.shape
    exceed = 0
    batch = max(1, min(n_mc, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_mc:
        b = min(batch, n_mc - done)
        perms = np.argsort(rng.random((b, n)), axis=1)
        flat = (np.arange(b)[:, None] * n_cat + codes[perms]).ravel()
        tables = np.empty((b, k, n_cat))
        for j in range(k):
            tables[:, j, :] = np.bincount(flat, weights=np.tile(w[:, j], b), minlength=b * n_cat).reshape(b, n_cat)
        tables = _clip_table(tables, weighting)
        exceed += int((_stat_batch(tables) >= observed - 1e-9 * max(abs(observed), 1.0)).sum())
        done += b
    return (1 + exceed) / (1 + n_mc)


def _categorical(
    col: str, s: pd.Series, w: np.ndarray, weighting: str, n_mc: int, rng: np.random.Generator,
    sw: np.ndarray | None = None,
) -> ColumnOverlay:
    ok = s.notna().to_numpy()
    codes, labels = _category_labels(s)
    wk = w[ok]
    n_cat = len(labels)
    k = w.shape[1]
    onehot = np.zeros((codes.shape[0], n_cat))
    onehot[np.arange(codes.shape[0]), codes] = 1.0
    if sw is not None:  # survey weights: each respondent counts w_i times (exact for w_i = 1)
        wk = wk * sw[ok][:, None]
    t = _clip_table(wk.T @ onehot, weighting)
    seg_index = pd.RangeIndex(1, k + 1, name="segment")
    table = pd.DataFrame(t, index=seg_index, columns=pd.Index(labels, name=col))
    with np.errstate(divide="ignore", invalid="ignore"):
        row = t / t.sum(axis=1, keepdims=True) * 100
        colp = t / t.sum(axis=0, keepdims=True) * 100
    overall = t.sum(axis=0) / t.sum() * 100
    row_pct = pd.DataFrame(np.vstack([row, overall]), index=[*range(1, k + 1), "overall"], columns=labels)
    col_pct = pd.DataFrame(colp, index=seg_index, columns=labels)
    chi2, df, min_e = _chi2(t)
    v = cramers_v(t)
    ddf = None
    test = "chi-squared"
    if df == 0:
        p, how = float("nan"), "not tested (one category or one segment)"
    elif is_weighted(sw):
        assert sw is not None
        cells = (w[ok][:, :, None] * onehot[:, None, :]).reshape(codes.shape[0], k * n_cat)
        rs = rao_scott(cells, sw[ok], (k, n_cat), n_design=s.shape[0])
        test = "Rao-Scott chi-squared (survey-weighted)"
        chi2, df, ddf, p = rs.statistic, rs.ndf, rs.ddf, rs.p_value
        how = (
            f"Rao-Scott second-order correction: F = X^2 / tr(Delta) = {rs.statistic:.4g} on {rs.ndf:.3g} and "
            f"{rs.ddf:.4g} df (mean design effect {rs.mean_deff:.3g}; independent units with survey weights, "
            "linearisation variance, as survey::svychisq(statistic = 'F'))"
        )
    elif min_e < 5 or weighting == "bch":
        why = "an expected count below 5" if min_e < 5 else "BCH weights"
        p = _permutation_p(codes, wk, n_cat, chi2, n_mc, weighting, rng)
        how = (
            f"Monte-Carlo permutation ({why}): the column shuffled across respondents {n_mc} times "
            f"with both margins kept; p = (1 + #shuffled >= observed) / (1 + {n_mc})"
        )
    else:
        p, how = float(stats.chi2.sf(chi2, df)), f"asymptotic chi-squared, {df} df"
    return ColumnOverlay(
        column=col,
        kind="categorical",
        table=table,
        row_pct=row_pct,
        col_pct=col_pct,
        test=test,
        statistic=chi2,
        df=df,
        p_value=p,
        p_method=how,
        effect=v,
        strength=_strength(v, p, STRONG_V, WEAK_V),
        min_expected=min_e,
        n_missing=int((~ok).sum()),
        ddf=ddf,
        weighted=sw is not None,
    )


def _numeric(col: str, s: pd.Series, w: np.ndarray, assignment: np.ndarray, sw: np.ndarray | None = None) -> ColumnOverlay:
    ok = s.notna().to_numpy()
    y = s.to_numpy(dtype=float, na_value=np.nan)
    k = w.shape[1]
    means, cov, size = weighted_means(y, w if sw is None else w * sw[:, None])
    if not is_weighted(sw):  # no weights, or equal ones: a simple random sample
        overall_mean = float(np.nanmean(y))
        overall_se = float(np.nanstd(y, ddof=1) / np.sqrt(ok.sum()))
    else:
        assert sw is not None
        om, ov = linearised_cov(y[ok][:, None], sw[ok], s.shape[0])
        overall_mean, overall_se = float(om[0]), float(np.sqrt(max(ov[0, 0], 0.0)))
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    m = means[:, 0]
    table = pd.DataFrame(
        {
            "mean": np.r_[m, overall_mean],
            "lower": np.r_[m - _Z95 * se, overall_mean - _Z95 * overall_se],
            "upper": np.r_[m + _Z95 * se, overall_mean + _Z95 * overall_se],
            "size": np.r_[size, ok.sum() if sw is None else sw[ok].sum()],
        },
        index=[*range(1, k + 1), "overall"],
    )
    n_ok = int(ok.sum())
    present = [j for j in range(1, k + 1) if (ok & (assignment == j)).any()]
    ddf = None
    if len(present) < 2 or np.ptp(y[ok]) == 0:
        h, p, eta2, df = float("nan"), float("nan"), 0.0, 0
        test, how = "Kruskal-Wallis (modal assignment)", "asymptotic chi-squared, 0 df"
    elif is_weighted(sw):
        assert sw is not None
        h, df, ddf, p, eta2 = _weighted_rank_test(y[ok], assignment[ok], sw[ok], present, n_ok)
        test = "design-based Kruskal-Wallis (survey-weighted ranks, modal assignment)"
        how = (
            f"Wald chi-squared {h:.4g} on the segments' weighted mean ranks (the population CDF), linearisation "
            f"covariance, as F({df:g}, {ddf:g}) = chi2 / {df:g} (survey::svyranktest(test = 'KruskalWallis')); "
            "effect: weighted eta^2 of the ranks"
        )
    else:
        groups = [y[ok & (assignment == j)] for j in present]
        h, p = (float(x) for x in stats.kruskal(*groups))
        df = len(groups) - 1
        eta2 = max(0.0, (h - len(groups) + 1) / (n_ok - len(groups))) if n_ok > len(groups) else 0.0
        test, how = "Kruskal-Wallis (modal assignment)", f"asymptotic chi-squared, {df} df"
    return ColumnOverlay(
        column=col,
        kind="numeric",
        table=table,
        row_pct=None,
        col_pct=None,
        test=test,
        statistic=h,
        df=df,
        p_value=p,
        p_method=how,
        effect=float(eta2),
        strength=_strength(eta2, p, STRONG_ETA2, WEAK_ETA2),
        n_missing=int((~ok).sum()),
        ddf=ddf,
        weighted=sw is not None,
    )


def _weighted_rank_test(
    y: np.ndarray, groups: np.ndarray, sw: np.ndarray, present: list[int], n_design: int
) -> tuple[float, float, float, float, float]:
    """Design-based Kruskal-Wallis, as ``survey::svyranktest(test = "KruskalWallis")`` computes it:
    each respondent's rank is the weighted population CDF at its value (``sum`` of the weights up
    to it less half its own, averaged over ties, over ``sum w``); the groups' weighted mean ranks are
    compared by a Wald test with the linearisation covariance, referred to
    ``F(chi2 / df, df, n - 1 - df)``; the effect is the weighted share of the ranks' variance
    between groups. Returns (chi2, df, ddf, p, eta2)."""
    order = np.argsort(y, kind="stable")
    ys, ws = y[order], sw[order]
    mid = np.cumsum(ws) - ws / 2
    _, start, counts = np.unique(ys, return_index=True, return_counts=True)
    tie_mean = np.add.reduceat(mid, start) / counts
    ranks = np.empty_like(y)
    ranks[order] = np.repeat(tie_mean, counts) / sw.sum()
    onehot = (groups[:, None] == np.asarray(present)[None, :]).astype(float)
    means, cov, size = weighted_means(ranks, onehot * sw[:, None])
    chi2, df, _ = wald_equal(means, cov, len(present))
    ddf = float(n_design - 1 - df)
    p = float(stats.f.sf(chi2 / df, df, ddf)) if df > 0 and ddf > 0 else float("nan")
    grand = float(sw @ ranks / sw.sum())
    total = float(sw @ (ranks - grand) ** 2)
    between = float(size @ (means[:, 0] - grand) ** 2)
    return chi2, float(df), ddf, p, (between / total if total > 0 else 0.0)


def _fingerprints(cols: dict[str, ColumnOverlay], k: int) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {j: [] for j in range(1, k + 1)}
    rank = {"strong": 0, "weak": 1}
    for c in cols.values():
        if c.strength not in rank:
            continue
        if c.kind == "categorical":
            assert c.row_pct is not None
            overall = c.row_pct.loc["overall"]
            for j in range(1, k + 1):
                seg = c.row_pct.loc[j]
                for cat in c.row_pct.columns:
                    sp, op = float(seg[cat]), float(overall[cat])
                    if op <= 0 or not np.isfinite(sp):
                        continue
                    index = sp / op
                    if index >= FINGERPRINT_INDEX and sp >= FINGERPRINT_MIN_SHARE * 100:
                        out[j].append(
                            {
                                "column": c.column,
                                "value": str(cat),
                                "strength": c.strength,
                                "segment_pct": sp,
                                "overall_pct": op,
                                "index": index * 100,
                                "text": f"{c.column} = {cat} ({sp:.0f}% vs {op:.0f}% overall; {c.strength})",
                                "_key": (rank[c.strength], -index),
                            }
                        )
        else:
            overall_mean = float(c.table.loc["overall", "mean"])
            for j in range(1, k + 1):
                lo, hi, mean = (float(c.table.loc[j, x]) for x in ("lower", "upper", "mean"))
                if not (lo > overall_mean or hi < overall_mean):
                    continue
                direction = "higher" if lo > overall_mean else "lower"
                ratio = abs(mean - overall_mean) / (abs(overall_mean) + 1e-12)
                out[j].append(
                    {
                        "column": c.column,
                        "value": direction,
                        "strength": c.strength,
                        "segment_mean": mean,
                        "overall_mean": overall_mean,
                        "direction": direction,
                        "text": f"{c.column} {direction} (mean {mean:.3g} vs {overall_mean:.3g} overall; {c.strength})",
                        "_key": (rank[c.strength], -ratio),
                    }
                )
    for j in out:
        out[j].sort(key=lambda d: d["_key"])
        for d in out[j]:
            del d["_key"]
    return out


def overlay(
    result: Any,
    profile_df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    weighting: str = "proportional",
    n_mc: int = 2000,
    random_seed: int | None = None,
    kinds: Mapping[str, str] | None = None,
    max_categories: int = MAX_CATEGORIES,
    sample_weight: Any = None,
) -> Overlays:
    """Cross-tabulate segments against profile columns, test association, flag fingerprints.

    Parameters
    ----------
    result : SegmentationResult
    profile_df : DataFrame
        Demographic / firmographic / behavioural columns, indexed by respondent id (for a survey,
        ``survey.profile``); may hold more respondents than the result.
    columns : sequence of str, optional
        Columns to overlay (default: all).
    weighting : {"proportional", "bch", "modal"}, default "proportional"
        How respondents count toward segments (see the module docstring).
    n_mc : int, default 2000
        Shuffles for the Monte-Carlo permutation p-value.
    random_seed : int, optional
        Seed for the permutations (one child generator per column); same seed, same p-values.
    kinds : mapping of str to {"categorical", "numeric"}, optional
        Force a column's kind. By default text, boolean and numeric columns with at most 5
        distinct values are categorical; other numeric columns are numeric.
    max_categories : int, default 30
        Categorical columns with more distinct values (ids, free text) are skipped and listed in
        ``Overlays.skipped``.
    sample_weight : array-like (n,) or Series, optional
        Survey weights (default: the result's ``sample_weight``; see
        :func:`latentseg.decide.weights.resolve_weights`). Counts, percentages and means are
        weighted; unequal weights test categorical columns by the Rao-Scott corrected chi-squared
        and numeric columns by a design-based rank test.

    Returns
    -------
    Overlays

    Raises
    ------
    ConfigError
        Unknown weighting, column or kind; ``n_mc`` < 1.
    SurveyError
        When ``profile_df`` lacks some of the result's respondents.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> z = np.repeat(np.eye(2), 30, axis=0)
    >>> r = SegmentationResult.from_memberships("gmm", z, centers=np.eye(2), feature_names=("a", "b"))
    >>> prof = pd.DataFrame({"role": ["ops"] * 30 + ["finance"] * 30}, index=r.respondent_ids)
    >>> ov = overlay(r, prof, random_seed=1)
    >>> ov["role"].strength, round(ov["role"].effect, 2)
    ('strong', 1.0)
    """
    if weighting not in _WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {', '.join(_WEIGHTINGS)}; got {weighting!r}.")
    if int(n_mc) < 1:
        raise ConfigError(f"n_mc must be a positive number of shuffles; got {n_mc}.")
    cols = [str(c) for c in (profile_df.columns if columns is None else columns)]
    unknown = [c for c in cols if c not in profile_df.columns]
    if unknown:
        raise ConfigError(
            f"Overlay columns {unknown} are not in the profile table; it has "
            f"{[str(c) for c in profile_df.columns][:20]}."
        )
    kinds = dict(kinds or {})
    bad = {c: v for c, v in kinds.items() if v not in ("categorical", "numeric")}
    if bad:
        raise ConfigError(f"kinds must be 'categorical' or 'numeric'; got {bad}.")
    frame = align_to_result(result, profile_df[cols], what="profile table")
    sw = resolve_weights(result, sample_weight)
    w = segment_weights(result, "bch-proportional" if weighting == "bch" else weighting, sw if is_weighted(sw) else None)
    assignment = result.assignment
    rngs = as_rng(random_seed).spawn(len(cols)) if cols else []
    out: dict[str, ColumnOverlay] = {}
    skipped: dict[str, str] = {}
    for col, rng in zip(cols, rngs):
        s = frame[col]
        kind = kinds.get(col) or ("numeric" if _is_numeric(s) else "categorical")
        if kind == "numeric" and not pd.api.types.is_numeric_dtype(s):
            raise ConfigError(f"Column {col!r} is not numeric; it cannot be overlaid as numeric.")
        if s.notna().sum() == 0:
            raise ConfigError(f"Overlay column {col!r} has no values for the model's respondents.")
        if kind == "numeric":
            out[col] = _numeric(col, s, w, assignment, sw)
            continue
        n_levels = int(s.dropna().nunique())
        if n_levels > max_categories:
            skipped[col] = f"{n_levels} distinct values (more than {max_categories}): an id or free text?"
            continue
        out[col] = _categorical(col, s, w, weighting, int(n_mc), rng, sw)
    return Overlays(
        weighting=weighting,
        columns=out,
        fingerprints=_fingerprints(out, result.k),
        thresholds=THRESHOLDS_TEXT,
        skipped=skipped,
        survey_weights=weights_text(sw),
    )
