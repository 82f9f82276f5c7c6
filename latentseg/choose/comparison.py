"""Compare two segmentations of the same respondents (for example k-means and latent class at
the same k): agreement, the crosstab after matching segments, share differences with intervals,
the respondents on which they disagree, and a plain-language summary.

Segment matching. Segment numbers are arbitrary, so b's segments are matched to a's by the
Hungarian algorithm on the crosstab of modal assignments (the matching that puts the most
respondents on the diagonal). With different k, the extra segments of the larger solution stay
unmatched and are listed after the matched ones.

Share-difference intervals (normal approximation, paired). For matched segments ``i`` (in a) and
``j`` (in b), the difference of shares over the common respondents is the mean of the per-
respondent differences ``d_n = z^a_{ni} - z^b_{nj}`` of membership probabilities, so its standard
error is ``sd(d) / sqrt(n)`` and the 95% interval ``mean(d) +- 1.96 SE``. This is the large-sample
limit of a paired bootstrap over respondents (resampling respondents, keeping both memberships),
and it is deterministic. It treats both fitted models as fixed: it answers "do these two
segmentations size this segment differently on these respondents?", not "how much would the
difference move if both models were refitted on new samples".

Survey weights (``sample_weight``, by default the first result's own ``sample_weight``): the
shares and their difference are weighted means, ``mean_w(d) = sum w d / sum w``, with the
linearised standard error of a ratio mean, ``sqrt(sum w^2 (d - mean_w(d))^2) / sum w``
(Kish's effective n in place of n). Agreement, the crosstab and the adjusted Rand index count
respondents: they describe how the two fits treat the same people, not the population.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError

__all__ = ["compare", "Comparison", "match_segments"]


def match_segments(crosstab: np.ndarray) -> np.ndarray:
    """Match the columns of a crosstab to its rows, maximising the diagonal (Hungarian algorithm).

    Parameters
    ----------
    crosstab : ndarray, shape (k_a, k_b)
        Counts: rows are a's segments, columns b's.

    Returns
    -------
    ndarray of int, shape (k_b,)
        ``order[i]`` is the 0-based column of b to show in position ``i``: matched columns first
        (in the order of the rows they match), then unmatched ones (by size).

    Examples
    --------
    >>> match_segments(np.array([[1, 9], [8, 2]])).tolist()
    [1, 0]
    """
    from scipy.optimize import linear_sum_assignment

    ct = np.asarray(crosstab, dtype=float)
    rows, cols = linear_sum_assignment(-ct)
    matched = [int(c) for _, c in sorted(zip(rows, cols))]
    rest = [int(j) for j in np.argsort(-ct.sum(axis=0), kind="stable") if j not in matched]
    return np.array(matched + rest, dtype=int)


@dataclass(frozen=True, eq=False, repr=False)
class Comparison:
    """Two segmentations side by side.

    Attributes
    ----------
    name_a, name_b : str
        Display names (model and k, e.g. ``"kmeans (k=4)"``).
    n : int
        Respondents in common (the comparison uses only these).
    ari, nmi : float
        Adjusted Rand index and normalised mutual information of the modal assignments.
    agreement : float
        Share of respondents whose matched segments agree (b relabelled to a).
    crosstab : DataFrame, shape (k_a, k_b)
        Counts; rows are a's segments, columns b's segments in matched order
        (column ``j`` is labelled with b's original segment number).
    mapping : dict
        b's segment number -> a's segment number it is matched to (unmatched ones absent).
    shares : DataFrame
        Per matched pair: ``segment_a, segment_b, share_a, share_b, difference, lower, upper``
        (differences ``share_a - share_b``, with the interval described in the module notes).
    disagreements : DataFrame
        Respondents whose matched segments differ, indexed by respondent id: ``segment_a``,
        ``segment_b`` (b's own number), ``segment_b_as_a`` (a's number it matches, or NaN),
        ``p_a`` / ``p_b`` (each model's probability of its own assignment), then ``a_p_1..``
        and ``b_p_1..`` (the full membership probabilities of both).
    summary : str
        A short plain-language summary.
    notes : list of str
        Anything the reader should know (respondents not in common, different k).

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.result import SegmentationResult
    >>> z = np.eye(2)[[0, 0, 1, 1, 0]]
    >>> r = SegmentationResult.from_memberships("kmeans", z, centers=np.zeros((2, 1)), feature_names=("x",))
    >>> compare(r, r).ari
    1.0
    """

    name_a: str
    name_b: str
    n: int
    ari: float
    nmi: float
    agreement: float
    crosstab: pd.DataFrame
    mapping: dict[int, int]
    shares: pd.DataFrame
    disagreements: pd.DataFrame
    summary: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: names, n, ari, nmi, agreement, crosstab, mapping, shares,
        disagreements (records), summary, notes."""
        from latentseg.io.jsonsafe import json_safe

        dis = self.disagreements.reset_index()
        dis = dis.astype(object).where(dis.notna(), None)
        return json_safe(
            {
                "a": self.name_a,
                "b": self.name_b,
                "n": self.n,
                "ari": self.ari,
                "nmi": self.nmi,
                "agreement": self.agreement,
                "crosstab": {
                    "rows": [int(i) for i in self.crosstab.index],
                    "columns": [int(c) for c in self.crosstab.columns],
                    "counts": self.crosstab.to_numpy().tolist(),
                },
                "mapping": {str(k): v for k, v in self.mapping.items()},
                "shares": self.shares.to_dict(orient="records"),
                "disagreements": dis.to_dict(orient="records"),
                "summary": self.summary,
                "notes": self.notes,
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())``."""
        return json.dumps(self.to_dict(), **kwargs)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        """``<Comparison kmeans (k=3) vs gmm (k=3), n=400: agreement 91%, ARI 0.78, NMI 0.74>``,
        the summary and notes, clipped."""
        from latentseg._display import clip, finish_repr

        lines = [
            f"<Comparison {clip(self.name_a, 60)} vs {clip(self.name_b, 60)}, n={self.n}: agreement "
            f"{self.agreement:.0%}, ARI {self.ari:.2f}, NMI {self.nmi:.2f}; {len(self.disagreements)} disagree>"
        ]
        lines.append("  " + clip(self.summary, 400))
        lines.extend("  note: " + clip(n, 150) for n in self.notes[:3])
        return finish_repr(lines)

    def _repr_html_(self) -> str:
        """Agreement, ARI and NMI, the crosstab (b's segments in matched order, the matched
        diagonal highlighted), share differences, the summary. All text is HTML-escaped."""
        from latentseg._display import Raw, badge, box, esc, pct

        ct = self.crosstab
        cells = []
        for i, row_id in enumerate(ct.index):
            tds = []
            for j, col_id in enumerate(ct.columns):
                on = self.mapping.get(int(col_id)) == int(row_id)
                style = ' style="background:#e8f5e9;font-weight:bold"' if on else ""
                tds.append(f'<td{style}>{int(ct.iat[i, j]):,}</td>')
            cells.append(f"<tr><th>{esc(row_id)}</th>{''.join(tds)}</tr>")
        head = "".join(f"<th>{esc(c)}</th>" for c in ct.columns)
        crosstab = Raw(
            '<table class="latentseg-table" style="border-collapse:collapse;font-size:90%">'
            f'<caption style="text-align:left">rows: {esc(self.name_a)}; columns: {esc(self.name_b)} '
            "(matched order)</caption>"
            f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"
        )
        sh = self.shares
        diffs = None
        if len(sh):
            rows = "".join(
                f"<tr><td>{int(r.segment_a)}</td><td>{int(r.segment_b)}</td><td>{pct(r.share_a, 1)}</td>"
                f"<td>{pct(r.share_b, 1)}</td><td>{r.difference * 100:+.1f} pts "
                f"[{r.lower * 100:+.1f}, {r.upper * 100:+.1f}]</td></tr>"
                for r in sh.itertuples()
            )
            diffs = Raw(
                '<table class="latentseg-table" style="border-collapse:collapse;font-size:90%;margin-top:4px">'
                f'<caption style="text-align:left">share differences ({esc(sh.attrs.get("interval", "interval"))})'
                "</caption><thead><tr><th>segment (a)</th><th>segment (b)</th><th>share a</th><th>share b</th>"
                f"<th>a - b</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        kind = "ok" if self.agreement >= 0.8 else "warn"
        title = Raw(
            f"Comparison: {esc(self.name_a)} vs {esc(self.name_b)}, n={self.n:,} "
            f"{badge(f'agreement {self.agreement:.0%}', kind)} ARI {self.ari:.2f}, NMI {self.nmi:.2f}"
        )
        summary = Raw(f'<p style="margin:4px 0">{esc(self.summary)}</p>')
        notes = Raw("".join(f'<p style="margin:2px 0">{badge("note", "warn")} {esc(n)}</p>' for n in self.notes)) if self.notes else None
        return box(title, crosstab, diffs, summary, notes)


def _name(result: Any, other: Any, tag: str) -> str:
    base = f"{result.model} (k={result.k})"
    if result.model == other.model and result.k == other.k:
        return f"{base} {tag}"
    return base


def compare(a: Any, b: Any, *, level: float = 0.95, names: tuple[str, str] | None = None,
            sample_weight: Any = None) -> Comparison:
    """Compare two segmentations of the same respondents.

    Parameters
    ----------
    a, b : SegmentationResult
        Any two results (any families, any k) sharing respondent ids. Only respondents present
        in both are compared (and the count left out is noted).
    level : float, default 0.95
        Coverage of the share-difference intervals.
    names : (str, str), optional
        Display names; default ``"<model> (k=<k>)"``.
    sample_weight : array-like, shape (n_a,), optional
        Survey weights of ``a``'s respondents (in ``a``'s order); default ``a.sample_weight``
        (``None`` for an unweighted fit). The shares and their differences are then weighted
        (module notes).

    Returns
    -------
    Comparison

    Raises
    ------
    ConfigError
        When the two results have no respondent in common, or ``level`` is not in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.result import SegmentationResult
    >>> za = np.eye(2)[[0, 0, 0, 1, 1, 1]]
    >>> zb = np.eye(2)[[1, 1, 0, 0, 0, 0]]
    >>> ra = SegmentationResult.from_memberships("kmeans", za, centers=np.zeros((2, 1)), feature_names=("x",))
    >>> rb = SegmentationResult.from_memberships("lca", zb, centers=np.zeros((2, 1)), feature_names=("x",))
    >>> c = compare(ra, rb)
    >>> round(c.agreement, 3), c.mapping
    (0.833, {1: 2, 2: 1})
    """
    from scipy import stats
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    if not 0 < float(level) < 1:
        raise ConfigError(f"level must be in (0, 1); got {level}.")
    ids_a = pd.Index(a.respondent_ids)
    ids_b = pd.Index(b.respondent_ids)
    common = ids_a.intersection(ids_b, sort=False) if not ids_a.equals(ids_b) else ids_a
    if len(common) == 0:
        raise ConfigError(
            f"The two results share no respondent ids ({a.model} has {len(ids_a)}, {b.model} has "
            f"{len(ids_b)}); compare needs segmentations of the same respondents."
        )
    notes: list[str] = []
    if len(common) < max(len(ids_a), len(ids_b)):
        notes.append(
            f"Only the {len(common)} respondents in both results are compared "
            f"({len(ids_a) - len(common)} only in the first, {len(ids_b) - len(common)} only in the second)."
        )
    if a.k != b.k:
        notes.append(f"Different numbers of segments (k={a.k} and k={b.k}): the extra segments stay unmatched.")
    pos_a = ids_a.get_indexer(common)
    pos_b = ids_b.get_indexer(common)
    za = np.asarray(a.memberships, dtype=float)[pos_a]
    zb = np.asarray(b.memberships, dtype=float)[pos_b]
    la = np.argmax(za, axis=1)
    lb = np.argmax(zb, axis=1)
    n = len(common)
    na, nb = names if names is not None else (_name(a, b, "A"), _name(b, a, "B"))

    ct = np.zeros((a.k, b.k), dtype=int)
    np.add.at(ct, (la, lb), 1)
    order = match_segments(ct)
    n_matched = min(a.k, b.k)
    mapping = dict(sorted((int(order[i]) + 1, i + 1) for i in range(n_matched)))
    crosstab = pd.DataFrame(
        ct[:, order],
        index=pd.Index(np.arange(1, a.k + 1), name=na),
        columns=pd.Index(order + 1, name=nb),
    )
    lb_as_a = np.array([mapping.get(int(j) + 1, 0) - 1 for j in lb])  # -1 for unmatched
    agree = la == lb_as_a
    agreement = float(agree.mean())
    ari, nmi = float(adjusted_rand_score(la, lb)), float(normalized_mutual_info_score(la, lb))

    zcrit = float(stats.norm.ppf(0.5 + level / 2))
    if sample_weight is None:
        sample_weight = getattr(a, "sample_weight", None)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[pos_a]
    share_rows = []
    for i in range(n_matched):
        j = int(order[i])
        diff = za[:, i] - zb[:, j]
        if w is None:
            mean = float(diff.mean())
            se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
            share_a, share_b = float(za[:, i].mean()), float(zb[:, j].mean())
        else:  # the weighted (ratio) mean and its linearised standard error
            mean = float(np.average(diff, weights=w))
            se = float(np.sqrt(np.sum(w**2 * (diff - mean) ** 2)) / w.sum()) if n > 1 else float("nan")
            share_a, share_b = float(np.average(za[:, i], weights=w)), float(np.average(zb[:, j], weights=w))
        share_rows.append(
            {
                "segment_a": i + 1,
                "segment_b": j + 1,
                "share_a": share_a,
                "share_b": share_b,
                "difference": mean,
                "lower": mean - zcrit * se,
                "upper": mean + zcrit * se,
            }
        )
    shares = pd.DataFrame(share_rows)
    shares.attrs["interval"] = f"{level:.0%} normal approximation (paired, respondents" + (
        ", weighted: linearised)" if w is not None else ")")
    if w is not None:
        notes.append("Shares and their differences are weighted by the survey weights; agreement and the crosstab "
                     "count respondents.")

    dis_idx = np.flatnonzero(~agree)
    dis = pd.DataFrame(
        {
            "segment_a": la[dis_idx] + 1,
            "segment_b": lb[dis_idx] + 1,
            "segment_b_as_a": pd.array(
                [v + 1 if v >= 0 else pd.NA for v in lb_as_a[dis_idx]], dtype="Int64"
            ),
            "p_a": za[dis_idx, la[dis_idx]],
            "p_b": zb[dis_idx, lb[dis_idx]],
        },
        index=pd.Index(common[dis_idx], name="respondent_id"),
    )
    for j in range(a.k):
        dis[f"a_p_{j + 1}"] = za[dis_idx, j]
    for j in range(b.k):
        dis[f"b_p_{j + 1}"] = zb[dis_idx, j]

    summary = _summary(
        na, nb, n, agreement, ari, ct[:, order], order, za, zb, la, lb, agree, shares, n_matched, level
    )
    return Comparison(
        name_a=na,
        name_b=nb,
        n=n,
        ari=ari,
        nmi=nmi,
        agreement=agreement,
        crosstab=crosstab,
        mapping=mapping,
        shares=shares,
        disagreements=dis,
        summary=summary,
        notes=notes,
    )


def _summary(
    na: str,
    nb: str,
    n: int,
    agreement: float,
    ari: float,
    ct_matched: np.ndarray,
    order: np.ndarray,
    za: np.ndarray,
    zb: np.ndarray,
    la: np.ndarray,
    lb: np.ndarray,
    agree: np.ndarray,
    shares: pd.DataFrame,
    n_matched: int,
    level: float,
) -> str:
    parts = [f"{na} and {nb} agree on {agreement:.0%} of respondents (ARI {ari:.2f})."]
    n_dis = int((~agree).sum())
    if n_dis == 0:
        parts.append("They put every respondent in the same segment.")
        return " ".join(parts)
    off = ct_matched.astype(float).copy()
    for i in range(min(off.shape)):
        off[i, i] = 0
    top = np.dstack(np.unravel_index(np.argsort(-off, axis=None), off.shape))[0][:2]
    cells = []
    for i, jpos in top:
        cnt = int(off[i, jpos])
        if cnt == 0:
            continue
        jb = int(order[jpos]) + 1
        who = "respondent that" if cnt == 1 else "respondents that"
        cells.append(f"{cnt} {who} {na} puts in segment {i + 1} and {nb} in its segment {jb}")
    if cells:
        parts.append("They disagree mostly on " + " and on ".join(cells) + ".")
    # uncertainty: are the disagreements the respondents the models were unsure about?
    pa = za[np.arange(n), la]
    pb = zb[np.arange(n), lb]
    for name, p in ((na, pa), (nb, pb)):
        if np.all((p == 0) | (p == 1)) or not agree.any():
            continue  # hard assignments (k-means) carry no uncertainty to speak of
        on_dis, elsewhere = float(p[~agree].mean()), float(p[agree].mean())
        how = "less sure of" if on_dis < elsewhere - 0.05 else "about as sure of"
        parts.append(
            f"{name} is {how} the disagreeing respondents (mean probability of its own assignment "
            f"{on_dis:.2f}, against {elsewhere:.2f} elsewhere)."
        )
    sig = shares[(shares["lower"] > 0) | (shares["upper"] < 0)]
    if not sig.empty:
        r = sig.loc[sig["difference"].abs().idxmax()]
        bigger = na if r["difference"] > 0 else nb
        parts.append(
            f"Segment {int(r['segment_a'])} is {abs(r['difference']) * 100:.1f} points larger under {bigger} "
            f"({level:.0%} interval {abs(r['lower']) * 100 if r['difference'] > 0 else abs(r['upper']) * 100:.1f}"
            f" to {abs(r['upper']) * 100 if r['difference'] > 0 else abs(r['lower']) * 100:.1f})."
        )
    elif n_matched:
        parts.append("No matched segment differs in size beyond sampling noise.")
    return " ".join(p for p in parts if p)
