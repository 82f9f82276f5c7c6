"""The segment map (playbook step 9) as data: one row per segment with its name, size, top
underserved outcomes, demographic fingerprint, current solution and a recommendation.

Recommendation rule (:class:`DefaultRule`, every threshold overridable by ``[decide]`` in the
config)

Each segment gets a **score = size x unmet need x fit**:

- *size*: the segment's share of respondents (market counts are proportional to it);
- *unmet need*: the opportunity points above the underserved line, summed over outcomes,
  ``sum_o max(m_jo - 10, 0)`` with ``m_jo`` the segment's mean opportunity on outcome ``o``
  (0 when no outcome is underserved in the segment);
- *fit*: how well the segment fits what the business can offer (channels, capabilities,
  strategy), a number in [0, 1] the team supplies (``[decide] fit``); 1 where none is given.

Segments are ranked by score (ties: the lower segment number first). Then

- **deprioritize** if the share is below ``min_share`` [10%], no outcome is underserved, or the
  score is below ``deprioritize_ratio`` [0.33] of the best score;
- **target** if it ranks within the first ``max_targets`` [2] and its score is at least
  ``target_ratio`` [0.8] of the best score (so the best segment is always a target unless it is
  too small or has nothing underserved);
- otherwise **monitor**.

So at most ``max_targets`` segments are targets, and only those close to the best.

With survey weights (``sample_weight``, default the result's own) the size is the population
share (:func:`latentseg.decide.weights.design_shares`), the unmet need comes from the weighted
profile means (pass profiles built with the same weights) and the current solution is the
segment's most common value weighted by ``w_i p_ij``.

Users override it with ``rule=``: a mapping ``{segment id: "target" | "monitor" | "deprioritize"}``
(the named segments are overridden, the others follow the default rule; ``[decide] recommend``),
a :class:`DefaultRule` with other thresholds, or any callable taking a segment's facts (a dict
with ``id, share, share_lower, share_upper, n_underserved, n_extremely_underserved,
max_underserved, unmet_need, fit, score, rank, best_score, flags``) and returning a
recommendation or a ``(recommendation, reason)`` pair.

Exports: :meth:`SegmentMap.to_json`, :meth:`SegmentMap.to_csv` (every text cell passed through
:func:`latentseg.io.files.safe_csv_cell`, so a spreadsheet never runs a name as a formula) and
:meth:`SegmentMap.to_markdown`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.decide.distal import align_to_result
from latentseg.errors import ConfigError
from latentseg.io.files import markdown_cell, safe_csv_cell

__all__ = [
    "RECOMMENDATIONS",
    "DefaultRule",
    "SegmentMap",
    "segment_map",
    "unmet_need",
]

RECOMMENDATIONS = ("target", "monitor", "deprioritize")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DefaultRule:
    """The default recommendation rule: rank segments by size x unmet need x fit.

    Parameters
    ----------
    target_ratio : float in (0, 1], default 0.8
        A target's score is at least this fraction of the best segment's score.
    max_targets : int >= 1, default 2
        At most this many segments (the best-ranked) are targets.
    deprioritize_ratio : float in [0, 1), default 0.33
        A segment scoring below this fraction of the best is deprioritized.
    min_share : float in [0, 1), default 0.10
        A segment smaller than this is deprioritized whatever its score.

    Examples
    --------
    >>> facts = {"share": 0.3, "n_underserved": 4, "unmet_need": 9.0, "fit": 1.0, "score": 2.7,
    ...          "rank": 1, "best_score": 2.7}
    >>> DefaultRule()(facts)
    ('target', 'ranked 1: score 2.7 (share 30% x unmet need 9.0 x fit 1), the best')
    >>> DefaultRule()({**facts, "score": 1.5, "rank": 2, "best_score": 2.7})[0]  # 56% of the best
    'monitor'
    >>> DefaultRule()({**facts, "share": 0.08})[0]
    'deprioritize'
    """

    target_ratio: float = 0.8
    max_targets: int = 2
    deprioritize_ratio: float = 0.33
    min_share: float = 0.10

    def __post_init__(self) -> None:
        if not 0 < self.target_ratio <= 1:
            raise ConfigError(f"target_ratio must be in (0, 1]; got {self.target_ratio!r}.")
        if int(self.max_targets) < 1:
            raise ConfigError(f"max_targets must be at least 1; got {self.max_targets!r}.")
        if not 0 <= self.deprioritize_ratio < 1:
            raise ConfigError(f"deprioritize_ratio must be in [0, 1); got {self.deprioritize_ratio!r}.")
        if not 0 <= self.min_share < 1:
            raise ConfigError(f"min_share must be in [0, 1); got {self.min_share!r}.")

    def describe(self) -> str:
        return (
            "Each segment is scored size x unmet need x fit (share of respondents; opportunity points above "
            "the underserved line of 10, summed over outcomes, from the segment's mean opportunity; fit 0-1 as "
            f"given, else 1) and ranked. Target: among the best {self.max_targets} and scoring at least "
            f"{self.target_ratio:.0%} of the best; deprioritize: share below {self.min_share:.0%}, no underserved "
            f"outcome, or a score below {self.deprioritize_ratio:.0%} of the best; otherwise monitor."
        )

    def __call__(self, facts: Mapping[str, Any]) -> tuple[str, str]:
        share, nu = float(facts["share"]), int(facts["n_underserved"])
        score, best, rank = float(facts["score"]), float(facts["best_score"]), int(facts["rank"])
        what = (f"score {_sig(score)} (share {share:.0%} x unmet need {float(facts['unmet_need']):.1f} "
                f"x fit {float(facts['fit']):g})")
        if share < self.min_share:
            return "deprioritize", f"share {share:.0%} < {self.min_share:.0%}"
        if nu == 0 or score <= 0 or best <= 0:
            return "deprioritize", "no underserved outcome"
        rel = score / best
        if rank <= self.max_targets and rel >= self.target_ratio:
            return "target", f"ranked {rank}: {what}, " + ("the best" if rank == 1 else f"{rel:.0%} of the best")
        if rel < self.deprioritize_ratio:
            return "deprioritize", f"ranked {rank}: {what}, {rel:.0%} of the best (< {self.deprioritize_ratio:.0%})"
        why = (f"< {self.target_ratio:.0%}" if rel < self.target_ratio else f"beyond the best {self.max_targets}")
        return "monitor", f"ranked {rank}: {what}, {rel:.0%} of the best ({why})"


def _sig(x: float) -> str:
    """Two significant figures (scores are products of rough quantities)."""
    return f"{x:.2g}" if abs(x) < 100 else f"{x:,.0f}"


def unmet_need(means: pd.DataFrame) -> pd.Series:
    """Each segment's unmet need: opportunity points above the underserved line, summed over outcomes.

    Parameters
    ----------
    means : DataFrame (k, m)
        Segment mean opportunity per outcome (:attr:`Profiles.means`).

    Returns
    -------
    Series (k,)
        ``sum_o max(m_jo - 10, 0)``, indexed like ``means``; missing means count as 0.

    Examples
    --------
    >>> unmet_need(pd.DataFrame({"o1": [12.0, 8.0], "o2": [10.5, 16.0]}, index=[1, 2])).tolist()
    [2.5, 6.0]
    """
    from latentseg.decide.profiling import UNDERSERVED

    m = means.to_numpy(dtype=float)
    return pd.Series(np.nansum(np.clip(m - UNDERSERVED, 0.0, None), axis=1), index=means.index, name="unmet_need")


@dataclass(frozen=True, repr=False)
class SegmentMap:
    """The segment map.

    Attributes
    ----------
    segments : tuple of dict
        One per segment, in segment order: ``id, name, handle, share, share_lower, share_upper,
        interval``, ``count, count_lower, count_upper`` and ``revenue, revenue_lower,
        revenue_upper`` (None without a TAM / ARPU), ``flags`` (list), ``n_underserved,
        n_extremely_underserved``, ``top_underserved`` (list of ``{outcome, statement,
        segment_mean, overall_mean}``), ``fingerprint`` (list of text, None without overlays),
        ``current_solution`` and ``current_solution_pct`` (None without the column),
        ``unmet_need``, ``fit``, ``score`` and ``rank`` (the rule's terms), ``recommendation`` and
        ``reason``.
    rule : str
        The recommendation rule, written out.
    current_solution_column : str or None
    """

    segments: tuple[dict[str, Any], ...]
    rule: str
    current_solution_column: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, segment: int) -> dict[str, Any]:
        return self.segments[int(segment) - 1]

    @property
    def recommendations(self) -> dict[int, str]:
        """Segment id -> recommendation."""
        return {s["id"]: s["recommendation"] for s in self.segments}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary: ``schema_version, rule, current_solution_column, notes, segments``."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe(
            {
                "schema_version": SCHEMA_VERSION,
                "rule": self.rule,
                "current_solution_column": self.current_solution_column,
                "notes": list(self.notes),
                "segments": [dict(s) for s in self.segments],
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())`` (keyword arguments passed on, e.g. ``indent=2``)."""
        return json.dumps(self.to_dict(), **kwargs)

    def to_frame(self) -> pd.DataFrame:
        """One flat row per segment (lists joined with ``"; "``), indexed by segment id."""
        rows = []
        for s in self.segments:
            row = {k: v for k, v in s.items() if k not in ("top_underserved", "fingerprint", "fingerprint_text", "flags")}
            row["top_underserved"] = "; ".join(o["statement"] for o in s["top_underserved"])
            row["fingerprint"] = "" if s["fingerprint"] is None else s["fingerprint_text"]
            row["flags"] = "; ".join(s["flags"])
            rows.append(row)
        return pd.DataFrame(rows).set_index("id")

    def to_csv(self, path: str | Path | None = None) -> str:
        """The flat table as CSV with every text cell made safe (:func:`safe_csv_cell`).

        Parameters
        ----------
        path : path-like, optional
            Also write it there (UTF-8).

        Returns
        -------
        str
        """
        frame = self.to_frame().reset_index()
        frame.columns = [safe_csv_cell(str(c)) for c in frame.columns]
        safe = frame.astype(object).map(safe_csv_cell)
        buf = io.StringIO()
        safe.to_csv(buf, index=False, lineterminator="\n")
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        """``<SegmentMap 3 segments: 1 target, 1 monitor, 1 deprioritize>`` and one line per segment."""
        from latentseg._display import clip, finish_repr, share_text

        recs = [s["recommendation"] for s in self.segments]
        counts = ", ".join(f"{recs.count(r)} {r}" for r in RECOMMENDATIONS if r in recs)
        lines = [f"<SegmentMap {len(self.segments)} segments: {counts}>"]
        shown = self.segments if len(self.segments) <= 8 else self.segments[:7]
        for s in shown:
            flags = f" [{', '.join(s['flags'])}]" if s["flags"] else ""
            lines.append(
                f"  {s['id']} {clip(s['name'], 40)}: {share_text(s['share'], s['share_lower'], s['share_upper'])} "
                f"{s['recommendation']}; {s['n_underserved']} underserved{clip(flags, 60)}"
            )
        if len(shown) < len(self.segments):
            lines.append(f"  ... and {len(self.segments) - len(shown)} more segments")
        return finish_repr(lines)

    def _repr_html_(self) -> str:
        """The map's rows as a table for Jupyter (recommendation badges, flags highlighted), the
        rule below. All text is HTML-escaped."""
        from latentseg._display import Raw, badge, box, esc, estimate, share_text, table

        rows = []
        for s in self.segments:
            name = s["handle"] + (f": {s['name']}" if s["name"] != s["handle"] else "")
            size = f"{share_text(s['share'], s['share_lower'], s['share_upper'])} ({s['interval']})"
            if s.get("count") is not None:
                size += f"; ~{estimate(s['count'], s.get('count_lower'), s.get('count_upper'))} customers"
            outs = "; ".join(o["statement"] for o in s["top_underserved"]) or "none underserved"
            fp = "not analysed" if s["fingerprint"] is None else (s.get("fingerprint_text") or "")
            cur = "-" if s["current_solution"] is None else f"{s['current_solution']} ({s['current_solution_pct']:.0f}%)"
            rec = Raw(
                f"{badge(s['recommendation'], s['recommendation'])} {esc(s['reason'])}"
                + "".join(f" {badge(f, 'warn')}" for f in s["flags"])
            )
            rows.append([s["id"], name, size, outs, fp, cur, rec])
        head = ["", "Segment", "Size", "Top underserved outcomes", "Fingerprint", "Current solution", "Recommendation"]
        rule = Raw(f'<p style="margin:4px 0"><b>Rule.</b> {esc(self.rule)}</p>')
        notes = Raw("".join(f'<p style="margin:2px 0">{badge("note", "info")} {esc(n)}</p>' for n in self.notes)) if self.notes else None
        return box(f"Segment map: {len(self.segments)} segments", table(head, rows), rule, notes)

    def to_markdown(self) -> str:
        """A one-page Markdown table, the rule below it."""

        from latentseg._display import estimate

        def cell(v: Any) -> str:  # user text: HTML escaped, pipes escaped, one line
            return markdown_cell(v)

        head = ["Segment", "Size", "Top underserved outcomes", "Fingerprint", "Current solution", "Recommendation"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for s in self.segments:
            size = f"{s['share']:.0%} ({s['share_lower']:.0%}-{s['share_upper']:.0%}, {s['interval']})"
            if s.get("count") is not None:  # rounded to what the interval supports
                size += f"; ~{estimate(s['count'], s['count_lower'], s['count_upper'])} customers"
            if s.get("revenue") is not None:
                size += f"; revenue ~{estimate(s['revenue'], s['revenue_lower'], s['revenue_upper'])}"
            outs = "; ".join(o["statement"] for o in s["top_underserved"]) or "none underserved"
            fp = "not analysed" if s["fingerprint"] is None else s["fingerprint_text"]
            cur = "-" if s["current_solution"] is None else f"{s['current_solution']} ({s['current_solution_pct']:.0f}%)"
            rec = f"**{s['recommendation']}** ({s['reason']})"
            if s["flags"]:
                rec += "; " + ", ".join(s["flags"])
            name = f"**{s['handle']}**" + (f": {s['name']}" if s["name"] != s["handle"] else "")
            lines.append("| " + " | ".join(cell(x) for x in (name, size, outs, fp, cur, rec)) + " |")
        lines.append("")
        # a prose line, not a cell: "&" and "<" escaped (no tag can open); ">" mid-line is plain text
        lines.append("Rule: " + " ".join(str(self.rule).replace("&", "&amp;").replace("<", "&lt;").split()))
        return "\n".join(lines) + "\n"


def _current_solution(
    result: Any, profile_df: pd.DataFrame, column: str, sw: np.ndarray | None = None
) -> list[tuple[str | None, float]]:
    if column not in profile_df.columns:
        raise ConfigError(
            f"Current-solution column {column!r} is not in the profile table; it has "
            f"{[str(c) for c in profile_df.columns][:20]}."
        )
    s = align_to_result(result, profile_df[[column]], what="profile table")[column]
    ok = s.notna().to_numpy()
    values = s[ok].map(str).to_numpy()
    cats = sorted(set(values.tolist()))
    z = np.asarray(result.memberships, dtype=float)[ok]
    if sw is not None:
        z = z * sw[ok][:, None]
    out: list[tuple[str | None, float]] = []
    if not cats:
        return [(None, float("nan"))] * result.k
    onehot = (values[:, None] == np.array(cats, dtype=object)[None, :]).astype(float)
    table = z.T @ onehot
    for j in range(result.k):
        tot = table[j].sum()
        if tot <= 0:
            out.append((None, float("nan")))
            continue
        c = int(np.argmax(table[j]))
        out.append((cats[c], float(table[j, c] / tot * 100)))
    return out


def _check_overrides(rule: Mapping[Any, Any]) -> dict[int, str]:
    overrides: dict[int, str] = {}
    for key, val in rule.items():
        try:
            j = int(key)
        except (TypeError, ValueError):
            raise ConfigError(f"rule overrides must be keyed by segment number; got key {key!r}.") from None
        if val not in RECOMMENDATIONS:
            raise ConfigError(
                f"The recommendation for segment {j} must be one of {', '.join(RECOMMENDATIONS)}; got {val!r}."
            )
        overrides[j] = str(val)
    return overrides


def _resolve_rule(rule: Any) -> tuple[Callable[[Mapping[str, Any]], Any], dict[int, str], str]:
    if rule is None:
        d = DefaultRule()
        return d, {}, d.describe()
    if isinstance(rule, DefaultRule):
        return rule, {}, rule.describe()
    if isinstance(rule, Mapping):
        overrides = _check_overrides(rule)
        d = DefaultRule()
        return d, overrides, d.describe()
    if callable(rule):
        doc = (getattr(rule, "__doc__", None) or "").strip().splitlines()
        name = getattr(rule, "__name__", type(rule).__name__)
        return rule, {}, f"user rule {name}" + (f": {doc[0]}" if doc else "")
    raise ConfigError(f"rule must be a mapping, a DefaultRule or a callable; got {type(rule).__name__}.")


def _fit_values(fit: Any, k: int) -> np.ndarray:
    """Fit per segment as k numbers in [0, 1] (1 where none is given)."""
    out = np.ones(k)
    if fit is None:
        return out
    items = fit.items() if isinstance(fit, Mapping) else enumerate(fit, start=1)
    for key, val in items:
        try:
            j, v = int(key), float(val)
        except (TypeError, ValueError):
            raise ConfigError(f"fit must map segment numbers to numbers in [0, 1]; got {key!r} = {val!r}.") from None
        if not 1 <= j <= k:
            raise ConfigError(f"fit names segment {j}; the segments are 1..{k}.")
        if not 0 <= v <= 1:
            raise ConfigError(f"fit for segment {j} must be in [0, 1]; got {v:g}.")
        out[j - 1] = v
    return out


def segment_map(
    result: Any,
    *,
    profiles: Any,
    overlays: Any = None,
    sizing: Any = None,
    current_solution_column: str | None = None,
    profile_df: pd.DataFrame | None = None,
    rule: Any = None,
    top: int | None = None,
    fit: Mapping[int, float] | Sequence[float] | None = None,
    overrides: Mapping[int, str] | None = None,
    sample_weight: Any = None,
) -> SegmentMap:
    """Assemble the segment map.

    Parameters
    ----------
    result : SegmentationResult
    profiles : Profiles
        From :func:`latentseg.decide.profiling.profile` (names, underserved outcomes).
    overlays : Overlays, optional
        From :func:`latentseg.decide.overlay.overlay` (fingerprints).
    sizing : Sizing, optional
        From :func:`latentseg.decide.sizing.size_segments` (counts, revenue, flags).
    current_solution_column : str, optional
        Profile column naming the tool / solution respondents use now; the segment's most common
        value (membership-weighted) is reported with its share of the segment.
    profile_df : DataFrame, optional
        The table holding ``current_solution_column`` (e.g. ``survey.profile``).
    rule : mapping, DefaultRule or callable, optional
        The recommendation rule (see the module docstring).
    top : int, optional
        How many underserved outcomes to list (default: the profiles' ``top``).
    fit : mapping of int to float, or k floats in [0, 1], optional
        Each segment's fit with the business (the score's third term); 1 where not given.
    overrides : mapping of int to str, optional
        Recommendations set by the user for some segments, applied over whatever ``rule`` says.
    sample_weight : array-like (n,) or Series, optional
        Survey weights (default: the result's ``sample_weight``): population shares and a
        weighted current solution (see the module docstring).

    Returns
    -------
    SegmentMap

    Raises
    ------
    ConfigError
        Profiles of another segmentation, an unknown current-solution column, a bad rule or a
        rule returning something other than target / monitor / deprioritize.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> from latentseg.decide.profiling import profile
    >>> rng = np.random.default_rng(0)
    >>> s = pd.DataFrame(rng.normal(8, 1, (100, 4)), columns=["o1", "o2", "o3", "o4"])
    >>> s.iloc[:70, :3] += 5
    >>> r = SegmentationResult.from_memberships("gmm", np.repeat(np.eye(2), [70, 30], axis=0),
    ...                                         centers=np.zeros((2, 1)), feature_names=("f",),
    ...                                         respondent_ids=s.index)
    >>> m = segment_map(r, profiles=profile(r, s, top=3))
    >>> m.recommendations
    {1: 'target', 2: 'deprioritize'}
    """
    k = int(result.k)
    if len(profiles.segments) != k:
        raise ConfigError(f"The profiles have {len(profiles.segments)} segments; the result has {k}.")
    if current_solution_column is not None and profile_df is None:
        raise ConfigError(f"current_solution_column {current_solution_column!r} needs profile_df, the table holding it.")
    func, rule_overrides, rule_text = _resolve_rule(rule)
    overrides = {**rule_overrides, **_check_overrides(overrides or {})}
    if overrides:
        rule_text += f" Overridden by the user for segments {sorted(overrides)}."
    bad = [j for j in overrides if not 1 <= j <= k]
    if bad:
        raise ConfigError(f"rule overrides name segments {bad}; the segments are 1..{k}.")
    from latentseg.decide.weights import design_shares, resolve_weights

    sw = resolve_weights(result, sample_weight)
    shares, share_lo, share_hi, interval = design_shares(result, sw)
    current = (
        _current_solution(result, profile_df, current_solution_column, sw)
        if current_solution_column is not None and profile_df is not None
        else [(None, float("nan"))] * k
    )
    top = int(top or profiles.top)
    size_table = None if sizing is None else sizing.table
    max_under = max(s.n_underserved for s in profiles.segments)
    need = unmet_need(profiles.means).to_numpy(dtype=float)
    fits = _fit_values(fit, k)
    scores = shares * need * fits
    order = sorted(range(k), key=lambda j: (-scores[j], j))  # ties: the lower segment number first
    ranks = {j: r + 1 for r, j in enumerate(order)}
    best = float(scores[order[0]])
    notes: list[str] = []
    out = []
    for j in range(1, k + 1):
        p = profiles[j]
        facts: dict[str, Any] = {
            "id": j,
            "share": float(shares[j - 1]),
            "share_lower": float(share_lo[j - 1]),
            "share_upper": float(share_hi[j - 1]),
            "n_underserved": int(p.n_underserved),
            "n_extremely_underserved": int(p.n_extremely_underserved),
            "max_underserved": int(max_under),
            "unmet_need": float(need[j - 1]),
            "fit": float(fits[j - 1]),
            "score": float(scores[j - 1]),
            "rank": int(ranks[j - 1]),
            "best_score": best,
            "flags": [],
        }
        entry: dict[str, Any] = {
            "id": j,
            "name": p.name,
            "handle": p.handle,
            "share": facts["share"],
            "share_lower": facts["share_lower"],
            "share_upper": facts["share_upper"],
            "interval": interval,
            "count": None,
            "count_lower": None,
            "count_upper": None,
            "revenue": None,
            "revenue_lower": None,
            "revenue_upper": None,
        }
        if size_table is not None:
            row = size_table.loc[j]
            for key in ("count", "count_lower", "count_upper", "revenue", "revenue_lower", "revenue_upper"):
                if key in size_table.columns:
                    entry[key] = float(row[key])
            facts["flags"] = [f for f in str(row.get("flags", "")).split(", ") if f]
        entry["flags"] = list(facts["flags"])
        entry["n_underserved"] = facts["n_underserved"]
        entry["n_extremely_underserved"] = facts["n_extremely_underserved"]
        for key in ("unmet_need", "fit", "score", "rank"):
            entry[key] = facts[key]
        entry["top_underserved"] = [
            {
                "outcome": o,
                "statement": profiles.statement(o),
                "segment_mean": float(profiles.means.loc[j, o]),
                "overall_mean": float(profiles.overall[o]),
            }
            for o in p.top_underserved[:top]
        ]
        entry["fingerprint"] = None if overlays is None else [f["text"] for f in overlays.fingerprints.get(j, [])]
        entry["fingerprint_text"] = None if overlays is None else overlays.fingerprint_text(j)
        entry["current_solution"], entry["current_solution_pct"] = current[j - 1]
        if j in overrides:
            rec, reason = overrides[j], "set by the user"
        else:
            got = func(facts)
            rec, reason = (got if isinstance(got, tuple) else (got, "user rule"))
            if rec not in RECOMMENDATIONS:
                raise ConfigError(
                    f"The recommendation rule returned {rec!r} for segment {j}; expected one of {', '.join(RECOMMENDATIONS)}."
                )
        entry["recommendation"], entry["reason"] = str(rec), str(reason)
        out.append(entry)
    if overlays is None:
        notes.append("no overlays given: fingerprints not analysed.")
    return SegmentMap(
        segments=tuple(out), rule=rule_text, current_solution_column=current_solution_column, notes=tuple(notes)
    )


def find_current_solution_column(profile_df: pd.DataFrame, configured: str | None = None) -> str | None:
    """The profile column that names each respondent's current solution, for the segment map.

    ``configured`` (``[profile] current_solution``) wins; otherwise the first column whose name
    contains ``current``, ``incumbent`` or ``existing`` (``current_tool``, ``current_solution`` ...).

    Examples
    --------
    >>> find_current_solution_column(pd.DataFrame(columns=["role", "current_tool"]))
    'current_tool'
    """
    import re

    if configured:
        if configured not in profile_df.columns:
            raise ConfigError(
                f"The current-solution column {configured!r} is not a profile column; "
                f"profile columns are {list(map(str, profile_df.columns))}."
            )
        return configured
    return next(
        (str(c) for c in profile_df.columns if re.search(r"current|incumbent|existing", str(c), re.IGNORECASE)),
        None,
    )
