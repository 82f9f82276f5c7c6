"""Segment sizes, market counts and revenue with their intervals, and strategy flags (step 7).

Arithmetic (all intervals are 95% unless the result's share interval says otherwise)

- **Share**: the result's share and interval, with the interval's method named (Wilson for EM
  fits, bootstrap for k-means, posterior credible for Bayesian fits). With survey weights
  (``sample_weight``, default the result's own) the shares are the population's: the result's
  own when it was fitted with those weights (its interval is then design-based), else the
  weighted mean membership with a design-based interval
  (:func:`latentseg.decide.weights.design_shares`). Counts and revenue follow from them.
- **Count** ``= share × TAM``. With a fixed TAM the bounds are ``share bounds × TAM`` (exact: the
  TAM is a constant). With an uncertain TAM (``tam_interval=(low, high)``) the bounds are the
  *interval product* ``[share_lower × TAM_low, share_upper × TAM_high]``: if the two intervals
  are independent 95% intervals, both hold with probability at least 0.95² ≈ 0.90, and then the
  count is inside; since the two corners are jointly unlikely, the actual coverage is usually
  above 95%. The point count uses the point TAM.
- **ARPU**: a number (every segment), a mapping ``{segment: ARPU}`` (fixed, no interval), or a
  column (``arpu_column`` of ``data``, e.g. plan price): the membership-weighted mean of the
  column within each segment, ``sum_i p_ik x_i / sum_i p_ik``, with a 95% normal interval from
  the linearisation (sandwich) standard error; with survey weights ``sum_i w_i p_ik x_i /
  sum_i w_i p_ik`` and its design-based linearisation standard error.
- **Revenue** ``= count × ARPU``; bounds are the interval product of the count and ARPU intervals
  (the minimum and maximum of the four corner products, so signs are handled).

Flags (:class:`FlagRules`, defaults in brackets)

- **growth opportunity**: share >= ``growth_min_share`` [0.15] and at least
  ``growth_min_underserved`` [3] underserved outcomes (segment mean opportunity >= 10) and, when a
  product fit is given, fit < ``growth_max_fit`` [0.5]: a large, underserved segment the product
  does not yet serve well.
- **retention priority**: product fit >= ``retention_min_fit`` [0.7]: a segment the product
  already serves well (or made mostly of current customers), to be kept.

``product_fit`` is any number in [0, 1] per segment: the share of the segment that are current
customers, a fit score from interviews, the share not "very disappointed" ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from latentseg.decide.distal import align_to_result, weighted_means
from latentseg.errors import ConfigError

__all__ = ["FlagRules", "Sizing", "size_segments", "interval_product"]

_Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class FlagRules:
    """Thresholds of the growth-opportunity and retention-priority flags.

    Examples
    --------
    >>> FlagRules().describe()[:40]
    'growth opportunity: share >= 15% and >= '
    """

    growth_min_share: float = 0.15
    growth_min_underserved: int = 3
    growth_max_fit: float = 0.5
    retention_min_fit: float = 0.7

    def describe(self) -> str:
        """The rules in one sentence each."""
        return (
            f"growth opportunity: share >= {self.growth_min_share:.0%} and >= {self.growth_min_underserved} "
            f"underserved outcomes (segment mean opportunity >= 10) and, where product fit is given, fit < "
            f"{self.growth_max_fit:g}; retention priority: product fit >= {self.retention_min_fit:g}."
        )


def interval_product(*intervals: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Interval arithmetic for a product: the minimum and maximum over all corner products.

    Parameters
    ----------
    *intervals : (lower, upper) pairs of arrays (or scalars), broadcastable

    Returns
    -------
    lower, upper : ndarray

    Examples
    --------
    >>> lo, hi = interval_product((np.array([0.1]), np.array([0.2])), (40_000, 60_000))
    >>> lo.tolist(), hi.tolist()
    ([4000.0], [12000.0])
    """
    lo = np.asarray(intervals[0][0], dtype=float)
    hi = np.asarray(intervals[0][1], dtype=float)
    for a, b in intervals[1:]:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        corners = np.stack(np.broadcast_arrays(lo * a, lo * b, hi * a, hi * b))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
    return lo, hi


@dataclass(frozen=True)
class Sizing:
    """Segment sizes, market counts, revenue and flags.

    Attributes
    ----------
    table : DataFrame, indexed by segment 1..k
        ``label, share, share_lower, share_upper, interval``; with a TAM ``count, count_lower,
        count_upper``; with an ARPU ``arpu, arpu_lower, arpu_upper, revenue, revenue_lower,
        revenue_upper``; ``n_underserved`` and ``product_fit`` where known; ``growth_opportunity``,
        ``retention_priority`` (bool, or None when the input to judge is missing) and ``flags``
        (text).
    tam : float or None
    tam_interval : (float, float) or None
    methods : dict of str to str
        How each interval was computed (``share``, ``count``, ``arpu``, ``revenue``).
    rules : FlagRules
    notes : tuple of str
    """

    table: pd.DataFrame
    tam: float | None
    tam_interval: tuple[float, float] | None
    methods: dict[str, str]
    rules: FlagRules
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        """The table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``tam, tam_interval, methods, rules, notes, segments`` (records)."""
        from latentseg.io.jsonsafe import json_safe

        seg = self.table.reset_index().to_dict(orient="records")
        return json_safe(
            {
                "tam": self.tam,
                "tam_interval": None if self.tam_interval is None else list(self.tam_interval),
                "methods": self.methods,
                "rules": {**asdict(self.rules), "text": self.rules.describe()},
                "notes": list(self.notes),
                "segments": seg,
            }
        )


def _per_segment(value: Any, k: int, name: str) -> np.ndarray | None:
    """A scalar, a mapping {segment: value} or a sequence of k values -> array (k,) (NaN = unknown)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        out = np.full(k, np.nan)
        for key, v in value.items():
            try:
                j = int(key)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be keyed by segment number 1..{k}; got key {key!r}.") from None
            if not 1 <= j <= k:
                raise ConfigError(f"{name} must be keyed by segment number 1..{k}; got {j}.")
            out[j - 1] = _number(v, name)
        return out
    if isinstance(value, (Sequence, np.ndarray, pd.Series)) and not isinstance(value, str):
        arr = [_number(v, name) for v in (value.to_numpy() if isinstance(value, pd.Series) else value)]
        if len(arr) != k:
            raise ConfigError(f"{name} needs one value per segment ({k}); got {len(arr)}.")
        return np.asarray(arr, dtype=float)
    return np.full(k, _number(value, name))


def _number(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {v!r}.") from None
    if not np.isfinite(f):
        raise ConfigError(f"{name} must be a finite number; got {v!r}.")
    return f


def _underserved_counts(profiles: Any, k: int) -> np.ndarray | None:
    if profiles is None:
        return None
    if hasattr(profiles, "segments"):
        return np.array([float(s.n_underserved) for s in profiles.segments])
    return _per_segment(profiles, k, "profiles (underserved counts)")


def size_segments(
    result: Any,
    *,
    tam: float | None = None,
    tam_interval: tuple[float, float] | None = None,
    arpu: float | Mapping[int, float] | Sequence[float] | None = None,
    arpu_column: str | None = None,
    data: pd.DataFrame | None = None,
    product_fit: Mapping[int, float] | Sequence[float] | None = None,
    profiles: Any = None,
    rules: FlagRules | None = None,
    sample_weight: Any = None,
) -> Sizing:
    """Size segments, extrapolate to a market and revenue with intervals, and flag them.

    Parameters
    ----------
    result : SegmentationResult
    tam : float, optional
        Total addressable market (number of potential customers).
    tam_interval : (float, float), optional
        Uncertainty of the TAM (low, high); must contain ``tam``.
    arpu : float, mapping of int to float, or sequence of k floats, optional
        Average revenue per customer (all segments, or per segment).
    arpu_column : str, optional
        Column of ``data`` with revenue per respondent; the ARPU of a segment is its
        membership-weighted mean (with an interval). Exclusive with ``arpu``.
    data : DataFrame, optional
        Indexed by respondent id, holding ``arpu_column`` (e.g. ``survey.profile``).
    product_fit : mapping of int to float, or sequence of k floats in [0, 1], optional
        How well the product serves each segment already (see the module docstring).
    profiles : Profiles or mapping of int to int, optional
        Underserved-outcome counts per segment (from :func:`latentseg.decide.profiling.profile`); needed
        for the growth-opportunity flag.
    rules : FlagRules, optional
    sample_weight : array-like (n,) or Series, optional
        Survey weights (default: the result's ``sample_weight``); see the module docstring.

    Returns
    -------
    Sizing

    Raises
    ------
    ConfigError
        Bad numbers, ``arpu`` and ``arpu_column`` together, revenue without a TAM, a TAM outside
        its interval, an unknown or non-numeric ARPU column, product fit outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.result import SegmentationResult
    >>> r = SegmentationResult.from_memberships("gmm", np.repeat(np.eye(2), [140, 60], axis=0),
    ...                                         centers=np.eye(2), feature_names=("a", "b"))
    >>> s = size_segments(r, tam=50_000, arpu=120.0)
    >>> s.table[["share", "count", "revenue"]].round(2).values.tolist()
    [[0.7, 35000.0, 4200000.0], [0.3, 15000.0, 1800000.0]]
    >>> bool(s.table.loc[2, "count_lower"] == r.share_lower[1] * 50_000)
    True
    """
    k = int(result.k)
    rules = rules or FlagRules()
    notes: list[str] = []
    if tam is not None:
        tam = _number(tam, "tam")
        if tam <= 0:
            raise ConfigError(f"tam must be a positive number of customers; got {tam:g}.")
    if tam_interval is not None:
        if tam is None:
            raise ConfigError("tam_interval needs a point tam as well.")
        try:
            t_lo, t_hi = (_number(v, "tam_interval") for v in tam_interval)
        except (TypeError, ValueError):
            raise ConfigError(f"tam_interval must be (low, high); got {tam_interval!r}.") from None
        if not 0 < t_lo <= tam <= t_hi:
            raise ConfigError(f"tam_interval ({t_lo:g}, {t_hi:g}) must be positive and contain tam = {tam:g}.")
        tam_interval = (t_lo, t_hi)
    if arpu is not None and arpu_column is not None:
        raise ConfigError("Give either arpu or arpu_column, not both.")
    if (arpu is not None or arpu_column is not None) and tam is None:
        raise ConfigError("Revenue is count × ARPU: an ARPU needs a tam (the market size) too.")

    from latentseg.decide.weights import design_shares, is_weighted, resolve_weights, weights_text

    sw = resolve_weights(result, sample_weight)
    share, s_lo, s_hi, interval = design_shares(result, sw)
    table = pd.DataFrame(
        {
            "label": list(result.segment_labels),
            "share": share,
            "share_lower": s_lo,
            "share_upper": s_hi,
            "interval": interval,
        },
        index=pd.RangeIndex(1, k + 1, name="segment"),
    )
    methods = {"share": interval}
    if sw is not None:
        methods["weights"] = str(weights_text(sw))
    if tam is not None:
        table["count"] = share * tam
        if tam_interval is None:
            c_lo, c_hi = s_lo * tam, s_hi * tam
            methods["count"] = f"share interval ({interval}) × fixed TAM {tam:g}"
        else:
            c_lo, c_hi = interval_product((s_lo, s_hi), tam_interval)
            methods["count"] = (
                f"interval product: share interval ({interval}) × TAM interval "
                f"[{tam_interval[0]:g}, {tam_interval[1]:g}] (coverage at least 0.95² if independent)"
            )
        table["count_lower"], table["count_upper"] = c_lo, c_hi

    if arpu is not None:
        a = _per_segment(arpu, k, "arpu")
        assert a is not None
        if np.any(np.isnan(a)):
            missing = [int(j) + 1 for j in np.flatnonzero(np.isnan(a))]
            raise ConfigError(f"arpu has no value for segments {missing}.")
        a_lo = a_hi = a
        methods["arpu"] = "fixed (given)"
    elif arpu_column is not None:
        if data is None:
            raise ConfigError(f"arpu_column {arpu_column!r} needs the data table that holds it.")
        if arpu_column not in data.columns:
            raise ConfigError(
                f"ARPU column {arpu_column!r} is not in the table; it has {[str(c) for c in data.columns][:20]}."
            )
        col = align_to_result(result, data[[arpu_column]], what="ARPU table")[arpu_column]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise ConfigError(f"ARPU column {arpu_column!r} must be numeric; it has dtype {col.dtype}.")
        y = col.to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(y).any():
            notes.append(f"{arpu_column}: {int(np.isnan(y).sum())} respondents without a value were left out of ARPU.")
        zw = np.asarray(result.memberships, dtype=float)
        if is_weighted(sw):
            assert sw is not None
            zw = zw * sw[:, None]
        means, cov, _ = weighted_means(y, zw)
        a = means[:, 0]
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        a_lo, a_hi = a - _Z95 * se, a + _Z95 * se
        methods["arpu"] = (
            f"membership-weighted mean of {arpu_column!r} per segment, 95% normal interval (sandwich SE)"
            if not is_weighted(sw)
            else f"survey- and membership-weighted mean of {arpu_column!r} per segment, 95% normal interval "
            "(design-based linearisation SE)"
        )
    else:
        a = None
    if a is not None:
        table["arpu"], table["arpu_lower"], table["arpu_upper"] = a, a_lo, a_hi
        table["revenue"] = table["count"].to_numpy() * a
        r_lo, r_hi = interval_product((table["count_lower"].to_numpy(), table["count_upper"].to_numpy()), (a_lo, a_hi))
        table["revenue_lower"], table["revenue_upper"] = r_lo, r_hi
        methods["revenue"] = (
            "count interval × fixed ARPU"
            if methods["arpu"].startswith("fixed")
            else "interval product: count interval × ARPU interval"
        )

    under = _underserved_counts(profiles, k)
    fit = _per_segment(product_fit, k, "product_fit")
    if fit is not None:
        bad = [j + 1 for j in range(k) if np.isfinite(fit[j]) and not 0 <= fit[j] <= 1]
        if bad:
            raise ConfigError(f"product_fit must be in [0, 1]; segments {bad} are not.")
        table["product_fit"] = fit
    if under is not None:
        table["n_underserved"] = under.astype(int)
    growth: list[bool | None] = []
    retain: list[bool | None] = []
    flags: list[str] = []
    for j in range(k):
        f = None if fit is None or not np.isfinite(fit[j]) else float(fit[j])
        if under is None:
            g = None
        else:
            g = bool(
                share[j] >= rules.growth_min_share
                and under[j] >= rules.growth_min_underserved
                and (f is None or f < rules.growth_max_fit)
            )
        rt = None if f is None else bool(f >= rules.retention_min_fit)
        growth.append(g)
        retain.append(rt)
        flags.append(", ".join(x for x, on in (("growth opportunity", g), ("retention priority", rt)) if on))
    if under is None:
        notes.append("growth opportunity not judged: no underserved counts (pass profiles=).")
    if fit is None:
        notes.append("retention priority not judged: no product_fit given.")
    table["growth_opportunity"] = pd.array(growth, dtype="boolean")
    table["retention_priority"] = pd.array(retain, dtype="boolean")
    table["flags"] = flags
    return Sizing(
        table=table,
        tam=tam,
        tam_interval=tam_interval,
        methods=methods,
        rules=rules,
        notes=tuple(notes),
    )
