"""Profiles and draft names of segments, always in outcome terms (playbook step 5).

For each segment ``j`` and outcome ``o``:

- ``segment mean``: the membership-weighted mean opportunity score
  ``m_jo = sum_i p_ij s_io / sum_i p_ij`` (respondents who did not rate ``o`` left out);
- ``overall mean``: the mean over all respondents;
- ``difference = m_jo - overall``, and the standardised ``effect = difference / pooled SD``, the
  pooled within-segment standard deviation ``sqrt(sum_j sum_i p_ij (s_io - m_jo)^2 / (N_o - k))``
  (Cohen's d against the average respondent);
- ``underserved`` when ``m_jo >= 10`` and ``extremely underserved`` when ``m_jo >= 15``
  (opportunity scores run 0-20).

The *defining outcomes* of a segment are its largest positive effects of at least
:data:`MIN_EFFECT`, underserved ones first (then by effect), ``top`` of them (3-5); a segment with
fewer such outcomes is filled up with its next-largest effects.

Draft names come from the dominant job step (the step with the largest sum of positive effects
among the defining outcomes) and the top outcome statement in it, e.g. ``"Underserved on
monitoring progress: minimize the time it takes to detect slipping tasks"``, with a 2-3 word
*handle* such as ``"Monitoring Speed Seekers"`` built from the step and the statement's metric
(time -> speed, likelihood -> risk, errors -> accuracy, cost, effort). A segment with no
underserved outcome is ``"Well-Served ..."``. Names and handles are unique across segments and
never ``"Segment 1"``; ``names={segment id: name}`` (the config's ``[profile] names``) overrides
them.

When the model was fitted on factors (``reduce``), pass the outcome-level scores here: profiles
are always in outcome terms.

With survey weights ``w_i`` (``sample_weight``, default the result's own) every mean is the
population's: ``m_jo = sum_i w_i p_ij s_io / sum_i w_i p_ij``, the overall mean
``sum_i w_i s_io / sum_i w_i``, the pooled SD from the weighted within-segment sums of squares
(``sum_j sum_i w_i p_ij (s_io - m_jo)^2 / sum_i w_i * N_o / (N_o - k)``), the shares those of
:func:`latentseg.decide.weights.design_shares` and ``expected_n`` the weighted segment size.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentseg.decide.distal import align_to_result
from latentseg.errors import ConfigError, SurveyError, format_rows

__all__ = [
    "UNDERSERVED",
    "EXTREMELY_UNDERSERVED",
    "MIN_EFFECT",
    "SegmentProfile",
    "Profiles",
    "profile",
]

#: Segment mean opportunity at or above which an outcome is underserved.
UNDERSERVED = 10.0
#: Segment mean opportunity at or above which an outcome is extremely underserved.
EXTREMELY_UNDERSERVED = 15.0
#: Smallest standardised effect for a defining outcome (Cohen's "small").
MIN_EFFECT = 0.2

# metric words in an outcome statement -> (theme, handle noun); the earliest match wins
_THEMES: tuple[tuple[str, str, str], ...] = (
    (r"\b(time|times|quick|quickly|fast|faster|speed|delays?|wait|waiting|slow|late)\b", "speed", "Speed Seekers"),
    (
        r"\b(likelihood|risks?|chance|probability|miss|missing|missed|overlook\w*|fail\w*|surprises?)\b",
        "risk",
        "Risk Reducers",
    ),
    (r"\b(errors?|accura\w+|inaccura\w+|mistakes?|wrong|incorrect)\b", "accuracy", "Accuracy Seekers"),
    (r"\b(costs?|money|expense\w*|spend\w*|price\w*|budget\w*)\b", "cost", "Cost Cutters"),
    (r"\b(effort|steps|hassle|manual\w*|rework|number of)\b", "effort", "Effort Savers"),
)
_DIRECTION = re.compile(r"^\s*(minimi[sz]e|maximi[sz]e|increase|reduce|decrease|lower|raise|improve|avoid|ensure)\s+", re.I)
_METRIC = re.compile(
    r"^(the\s+)?(time it takes to|amount of time (it takes )?to|likelihood (that|of)|chance (that|of)|"
    r"risk (that|of)|probability (that|of)|number of|amount of|cost of|effort (required|needed|it takes) to|"
    r"frequency of|accuracy of|speed of)\s+",
    re.I,
)
_STOP = {
    "the", "a", "an", "of", "to", "that", "it", "its", "is", "are", "be", "for", "in", "on", "with", "and",
    "or", "by", "from", "when", "while", "e.g.", "eg", "i.e.", "their", "your", "one", "ones", "takes", "take",
}


# ---------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SegmentProfile:
    """The profile of one segment.

    Attributes
    ----------
    id : int
        Segment number, 1..k.
    name, handle : str
        Draft (or configured) long name and 2-3 word handle.
    name_source : {"draft", "config"}
    share, share_lower, share_upper : float
    interval_method : str
    expected_n : float
        Sum of memberships (times the survey weights, when there are any).
    defining_outcomes : tuple of str
        Outcome ids, most defining first.
    top_underserved : tuple of str
        Underserved outcome ids (segment mean >= 10): defining ones first, then by segment mean.
    n_underserved, n_extremely_underserved : int
    dominant_job_step : str
        Empty when the survey has no job steps.
    paragraph : str
        The one-paragraph profile.
    """

    id: int
    name: str
    handle: str
    name_source: str
    share: float
    share_lower: float
    share_upper: float
    interval_method: str
    expected_n: float
    defining_outcomes: tuple[str, ...]
    top_underserved: tuple[str, ...]
    n_underserved: int
    n_extremely_underserved: int
    dominant_job_step: str
    paragraph: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "handle": self.handle,
            "name_source": self.name_source,
            "share": self.share,
            "share_lower": self.share_lower,
            "share_upper": self.share_upper,
            "interval": self.interval_method,
            "expected_n": self.expected_n,
            "defining_outcomes": list(self.defining_outcomes),
            "top_underserved": list(self.top_underserved),
            "n_underserved": self.n_underserved,
            "n_extremely_underserved": self.n_extremely_underserved,
            "dominant_job_step": self.dominant_job_step,
            "paragraph": self.paragraph,
        }


@dataclass(frozen=True)
class Profiles:
    """Segment profiles in outcome terms.

    Attributes
    ----------
    segments : tuple of SegmentProfile, length k
    means : DataFrame, shape (k, m)
        Segment mean opportunity, index segment 1..k, columns outcome ids.
    overall : Series, length m
        Overall mean opportunity per outcome.
    difference, effects : DataFrame, shape (k, m)
        ``means - overall`` and ``difference / pooled_sd``.
    pooled_sd : Series, length m
    outcomes : DataFrame, shape (m, 2)
        ``statement`` and ``job_step`` per outcome id.
    top : int
        Number of defining outcomes asked for.
    """

    segments: tuple[SegmentProfile, ...]
    means: pd.DataFrame
    overall: pd.Series
    difference: pd.DataFrame
    effects: pd.DataFrame
    pooled_sd: pd.Series
    outcomes: pd.DataFrame
    top: int

    @property
    def k(self) -> int:
        return len(self.segments)

    @property
    def names(self) -> tuple[str, ...]:
        """Long names, segment 1..k."""
        return tuple(s.name for s in self.segments)

    @property
    def handles(self) -> tuple[str, ...]:
        """Short handles, segment 1..k."""
        return tuple(s.handle for s in self.segments)

    def __getitem__(self, segment: int) -> SegmentProfile:
        return self.segments[int(segment) - 1]

    def statement(self, outcome: str) -> str:
        """The statement of an outcome id."""
        return str(self.outcomes.loc[outcome, "statement"])

    def apply(self, result: Any) -> Any:
        """``result.with_labels(handles)``: the result with these names as its segment labels."""
        return result.with_labels(self.handles)

    def to_frame(self) -> pd.DataFrame:
        """Long table, one row per segment × outcome: ``segment, outcome, statement, job_step,
        segment_mean, overall_mean, difference, effect, underserved, extremely_underserved,
        defining`` (rank among the defining outcomes, 0 when not defining)."""
        rows = []
        for seg in self.segments:
            rank = {o: i + 1 for i, o in enumerate(seg.defining_outcomes)}
            for o in self.means.columns:
                m = float(self.means.loc[seg.id, o])
                rows.append(
                    {
                        "segment": seg.id,
                        "outcome": o,
                        "statement": str(self.outcomes.loc[o, "statement"]),
                        "job_step": str(self.outcomes.loc[o, "job_step"]),
                        "segment_mean": m,
                        "overall_mean": float(self.overall[o]),
                        "difference": float(self.difference.loc[seg.id, o]),
                        "effect": float(self.effects.loc[seg.id, o]),
                        "underserved": bool(m >= UNDERSERVED),
                        "extremely_underserved": bool(m >= EXTREMELY_UNDERSERVED),
                        "defining": rank.get(o, 0),
                    }
                )
        return pd.DataFrame(rows)

    def summary_frame(self) -> pd.DataFrame:
        """One row per segment: name, handle, share and interval, counts, defining outcomes."""
        return pd.DataFrame(
            [
                {
                    "segment": s.id,
                    "name": s.name,
                    "handle": s.handle,
                    "share": s.share,
                    "share_lower": s.share_lower,
                    "share_upper": s.share_upper,
                    "interval": s.interval_method,
                    "n_underserved": s.n_underserved,
                    "n_extremely_underserved": s.n_extremely_underserved,
                    "defining_outcomes": "; ".join(s.defining_outcomes),
                }
                for s in self.segments
            ]
        ).set_index("segment")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``segments`` (list of dicts, each with its outcome rows) and thresholds."""
        from latentseg.io.jsonsafe import json_safe

        long = self.to_frame()
        segs = []
        for s in self.segments:
            d = s.to_dict()
            d["outcomes"] = long[long["segment"] == s.id].drop(columns="segment").to_dict(orient="records")
            segs.append(d)
        return json_safe(
            {
                "segments": segs,
                "thresholds": {
                    "underserved": UNDERSERVED,
                    "extremely_underserved": EXTREMELY_UNDERSERVED,
                    "min_effect": MIN_EFFECT,
                },
            }
        )


# ---------------------------------------------------------------------------------------- naming
def _gerund(word: str) -> str:
    w = word.strip()
    low = w.lower()
    if not w or low.endswith("ing") or not w.isalpha():
        return w
    if low.endswith("ie"):
        return w[:-2] + "ying"
    if low.endswith("e") and not low.endswith(("ee", "ye", "oe")):
        return w[:-1] + "ing"
    if len(low) <= 4 and re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", low):
        return w + w[-1] + "ing"
    return w + "ing"


def _step_phrase(step: str) -> str:
    """"Monitor progress" -> "monitoring progress"."""
    words = step.strip().split()
    if not words:
        return ""
    return " ".join([_gerund(words[0]).lower(), *[x.lower() for x in words[1:]]])


def _object_phrase(statement: str) -> str:
    s = _DIRECTION.sub("", statement.strip())
    s = _METRIC.sub("", s)
    return s.strip().rstrip(".")


def _content_words(text: str) -> list[str]:
    first_clause = re.split(r"[,;(]|\be\.g\.|\bwhen\b|\bwhile\b|\bfor\b", text, maxsplit=1)[0]
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9'_-]*", first_clause) if w.lower() not in _STOP]


def _theme(statement: str) -> tuple[str, str] | None:
    best: tuple[int, str, str] | None = None
    for pattern, theme, agent in _THEMES:
        m = re.search(pattern, statement, flags=re.I)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), theme, agent)
    return None if best is None else (best[1], best[2])


def _keyword(statement: str) -> str:
    words = _content_words(_object_phrase(statement))
    return words[-1].lower() if words else ""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[:2].isupper() else text


def _handle_candidates(step: str, statements: list[str], well_served: bool) -> list[str]:
    step_word = _gerund(step.split()[0]).capitalize() if step.strip() else ""
    top = statements[0] if statements else ""
    if well_served:
        base = "Well-Served " + (step_word if step_word else "Users")
    else:
        th = _theme(top)
        if th is not None:
            agent = th[1]
        else:
            words = _content_words(_object_phrase(top))
            first = words[0] if words else "Need"
            agent = (first if any(ch.isdigit() for ch in first) else first.capitalize()) + " Seekers"
        base = f"{step_word} {agent}".strip()
    keys = [kw for kw in dict.fromkeys(_keyword(s) for s in statements) if kw and kw not in base.lower()]
    out = [base]
    if keys:
        out.append(f"{base} ({keys[0]})")
    if len(keys) > 1:
        out.append(f"{base} ({keys[0]}, {keys[1]})")
    return out


def _name_candidates(step: str, statements: list[str], well_served: bool) -> list[str]:
    phrase = _step_phrase(step)
    if not statements:
        return ["Well served on every outcome"]
    first = _lower_first(statements[0].strip().rstrip("."))
    if well_served:
        head = "Well served" + (f" (most need on {phrase})" if phrase else "")
    else:
        head = "Underserved" + (f" on {phrase}" if phrase else "")
    out = [f"{head}: {first}"]
    if len(statements) > 1:
        out.append(f"{head}: {first}; {_lower_first(statements[1].strip().rstrip('.'))}")
    return out


def _unique(cands: list[list[str]]) -> list[str]:
    """Pick one candidate per segment so that all are unique, making colliding ones more specific."""
    level = [0] * len(cands)
    for _ in range(10):
        chosen = [c[min(lv, len(c) - 1)] for c, lv in zip(cands, level)]
        seen: dict[str, list[int]] = {}
        for j, name in enumerate(chosen):
            seen.setdefault(name.lower(), []).append(j)
        dups = [js for js in seen.values() if len(js) > 1]
        if not dups:
            return chosen
        bumped = False
        for js in dups:
            for j in js:
                if level[j] < len(cands[j]) - 1:
                    level[j] += 1
                    bumped = True
        if not bumped:
            break
    # last resort: number the repeats with roman numerals ("... II"), never "Segment 2"
    romans = ["", " II", " III", " IV", " V", " VI", " VII", " VIII", " IX", " X"]
    chosen = [c[min(lv, len(c) - 1)] for c, lv in zip(cands, level)]
    count: dict[str, int] = {}
    out = []
    for name in chosen:
        i = count.get(name.lower(), 0)
        count[name.lower()] = i + 1
        out.append(name + (romans[i] if i < len(romans) else f" {i + 1}"))
    return out


# ---------------------------------------------------------------------------------------- profile
def _check_names(names: Mapping[Any, str] | None, k: int) -> dict[int, str]:
    if not names:
        return {}
    out: dict[int, str] = {}
    for key, value in names.items():
        try:
            j = int(key)
        except (TypeError, ValueError):
            raise ConfigError(f"Segment names must be keyed by segment number 1..{k}; got key {key!r}.") from None
        if not 1 <= j <= k:
            raise ConfigError(f"Segment names must be keyed by segment number 1..{k}; got {j}.")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"The name of segment {j} must be non-empty text; got {value!r}.")
        out[j] = value.strip()
    lowered = [v.lower() for v in out.values()]
    dup = sorted({v for v in out.values() if lowered.count(v.lower()) > 1})
    if dup:
        raise ConfigError(f"Segment names must be unique; {dup} is given to more than one segment.")
    return out


def _outcome_table(outcomes: pd.DataFrame | None, ids: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"statement": ids, "job_step": [""] * len(ids)}, index=pd.Index(ids, name="outcome"))
    if outcomes is None:
        return table
    o = outcomes.copy()
    o.index = o.index.map(str)
    for col in ("statement", "job_step"):
        if col in o.columns:
            vals = o[col].reindex(ids)
            keep = vals.notna() & (vals.astype(str).str.strip() != "")
            table.loc[keep[keep].index, col] = vals[keep].astype(str).str.strip()
    return table


def _weighted_profile(
    s: np.ndarray, z: np.ndarray, sw: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment means (k, m), overall means (m,), pooled within-segment SD (m,), NaN-aware; with
    survey weights ``sw`` (n,) the population's."""
    obs = ~np.isnan(s)
    s0 = np.where(obs, s, 0.0)
    if sw is not None:
        z = z * sw[:, None]
    wsum = z.T @ obs.astype(float)  # (k, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = (z.T @ s0) / wsum
        overall = s0.sum(axis=0) / obs.sum(axis=0) if sw is None else (sw @ s0) / (sw @ obs)
    k = z.shape[1]
    ss = np.zeros(s.shape[1])
    for j in range(k):
        dev = np.where(obs, s - np.nan_to_num(means[j])[None, :], 0.0)
        ss += (z[:, [j]] * dev**2).sum(axis=0)
    dof = np.maximum(obs.sum(axis=0) - k, 1)
    if sw is not None:  # weighted mean square, with the unweighted degrees-of-freedom correction
        ss = ss / (sw @ obs) * obs.sum(axis=0)
    return means, overall, np.sqrt(ss / dof)


def profile(
    result: Any,
    scores: pd.DataFrame,
    outcomes: pd.DataFrame | None = None,
    *,
    top: int = 5,
    names: Mapping[int, str] | None = None,
    sample_weight: Any = None,
) -> Profiles:
    """Profile each segment by its opportunity scores and give it a draft name.

    Parameters
    ----------
    result : SegmentationResult
    scores : DataFrame, shape (n, m)
        Outcome-level opportunity scores (0-20), indexed by respondent id, one column per outcome
        (:func:`latentseg.prepare.scoring.opportunity_scores`); may hold more respondents than the result.
    outcomes : DataFrame, optional
        Indexed by outcome id with ``statement`` and ``job_step`` (``survey.outcomes``); the id
        stands in for a missing statement.
    top : int, default 5
        How many defining outcomes per segment (the playbook's 3-5; any positive number).
    names : mapping of int to str, optional
        Names that replace the draft name and handle of the given segments (config
        ``[profile] names``).
    sample_weight : array-like (n,) or Series, optional
        Survey weights (default: the result's ``sample_weight``); see the module docstring.

    Returns
    -------
    Profiles

    Raises
    ------
    ConfigError
        ``top`` below 1; bad ``names``.
    SurveyError
        Scores missing respondents or non-numeric.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> rng = np.random.default_rng(0)
    >>> z = np.repeat(np.eye(2), 50, axis=0)
    >>> s = pd.DataFrame(rng.normal(8, 1, (100, 4)), columns=["o1", "o2", "o3", "o4"])
    >>> s.iloc[:50, 0] += 6
    >>> s.iloc[50:, 3] += 6
    >>> r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((2, 1)), feature_names=("f",),
    ...                                         respondent_ids=s.index)
    >>> outc = pd.DataFrame({"statement": ["Minimize the time it takes to plan a trip", "b", "c",
    ...                                    "Minimize the likelihood of missing a flight"],
    ...                      "job_step": ["Plan", "Plan", "Travel", "Travel"]}, index=s.columns)
    >>> p = profile(r, s, outc, top=3)
    >>> p.handles
    ('Planning Speed Seekers', 'Traveling Risk Reducers')
    >>> p[1].defining_outcomes[0], p[1].n_underserved
    ('o1', 1)
    """
    if int(top) < 1:
        raise ConfigError(f"top must be a positive number of defining outcomes (3-5 recommended); got {top}.")
    top = int(top)
    k = int(result.k)
    overrides = _check_names(names, k)
    frame = align_to_result(result, scores, what="opportunity-score table")
    nonnum = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if nonnum:
        raise SurveyError(f"Opportunity scores must be numeric; columns {nonnum[:5]} are not.")
    ids = [str(c) for c in frame.columns]
    s = frame.to_numpy(dtype=float, na_value=np.nan)
    z = np.asarray(result.memberships, dtype=float)
    unrated = [ids[j] for j in np.flatnonzero(np.isnan(s).all(axis=0))]
    if unrated:
        raise SurveyError(f"Outcomes {format_rows(unrated)} have no scores for the model's respondents.")
    from latentseg.decide.weights import design_shares, is_weighted, resolve_weights

    sw = resolve_weights(result, sample_weight)
    sh = design_shares(result, sw)
    means, overall, sd = _weighted_profile(s, z, sw if is_weighted(sw) else None)
    zn = z if sw is None else z * sw[:, None]
    diff = means - overall[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(sd[None, :] > 0, diff / sd[None, :], 0.0)
    eff = np.nan_to_num(eff)
    otab = _outcome_table(outcomes, ids)
    steps = otab["job_step"].to_numpy()
    stmts = otab["statement"].to_numpy()
    seg_idx = pd.RangeIndex(1, k + 1, name="segment")

    defining: list[list[int]] = []
    dominant: list[str] = []
    ordered_statements: list[list[str]] = []
    well_served: list[bool] = []
    for j in range(k):
        m_j, e_j = np.nan_to_num(means[j], nan=-np.inf), eff[j]
        under = m_j >= UNDERSERVED
        cand = [o for o in np.argsort(-e_j, kind="stable") if e_j[o] >= MIN_EFFECT]
        cand.sort(key=lambda o: (not under[o], -e_j[o]))
        rest = [o for o in np.argsort(-e_j, kind="stable") if o not in cand]
        # at least min(3, top) outcomes, filled up with the next-largest effects
        chosen = (cand + rest)[: max(min(3, top), min(top, len(cand)))]
        defining.append([int(o) for o in chosen])
        # dominant job step: largest sum of positive effects among the defining outcomes
        weight: dict[str, float] = {}
        for o in chosen:
            weight[steps[o]] = weight.get(steps[o], 0.0) + max(float(e_j[o]), 0.0)
        step = max(weight.items(), key=lambda kv: kv[1])[0] if weight else ""
        if weight and weight[step] == 0.0:
            step = steps[chosen[0]]
        dominant.append(step)
        in_step = [o for o in chosen if steps[o] == step] + [o for o in chosen if steps[o] != step]
        ordered_statements.append([str(stmts[o]) for o in in_step])
        well_served.append(not bool(under.any()))

    handle_c = [_handle_candidates(dominant[j], ordered_statements[j], well_served[j]) for j in range(k)]
    name_c = [_name_candidates(dominant[j], ordered_statements[j], well_served[j]) for j in range(k)]
    handles = _unique(handle_c)
    longs = _unique(name_c)
    for j, name in overrides.items():
        handles[j - 1] = name
        longs[j - 1] = name
    if len({h.lower() for h in handles}) < k:
        raise ConfigError(
            f"The configured segment names collide with the draft names {handles}; name every segment."
        )

    n_under = (np.nan_to_num(means, nan=-1) >= UNDERSERVED).sum(axis=1)
    n_ext = (np.nan_to_num(means, nan=-1) >= EXTREMELY_UNDERSERVED).sum(axis=1)
    segments = []
    for j in range(k):
        m_j = np.nan_to_num(means[j], nan=-np.inf)
        under_ids = [o for o in defining[j] if m_j[o] >= UNDERSERVED]
        under_ids += [o for o in np.argsort(-m_j, kind="stable") if m_j[o] >= UNDERSERVED and o not in under_ids]
        para = _paragraph(
            j, handles[j], result, means, overall, eff, defining[j], n_under, n_ext, dominant[j], stmts, ids, sh, zn, sw is not None
        )
        segments.append(
            SegmentProfile(
                id=j + 1,
                name=longs[j],
                handle=handles[j],
                name_source="config" if (j + 1) in overrides else "draft",
                share=float(sh[0][j]),
                share_lower=float(sh[1][j]),
                share_upper=float(sh[2][j]),
                interval_method=sh[3],
                expected_n=float(zn[:, j].sum()),
                defining_outcomes=tuple(ids[o] for o in defining[j]),
                top_underserved=tuple(ids[o] for o in under_ids[:top]),
                n_underserved=int(n_under[j]),
                n_extremely_underserved=int(n_ext[j]),
                dominant_job_step=str(dominant[j]),
                paragraph=para,
            )
        )
    return Profiles(
        segments=tuple(segments),
        means=pd.DataFrame(means, index=seg_idx, columns=ids),
        overall=pd.Series(overall, index=ids, name="overall_mean"),
        difference=pd.DataFrame(diff, index=seg_idx, columns=ids),
        effects=pd.DataFrame(eff, index=seg_idx, columns=ids),
        pooled_sd=pd.Series(sd, index=ids, name="pooled_sd"),
        outcomes=otab,
        top=top,
    )


def _paragraph(
    j: int,
    handle: str,
    result: Any,
    means: np.ndarray,
    overall: np.ndarray,
    eff: np.ndarray,
    defining: list[int],
    n_under: np.ndarray,
    n_ext: np.ndarray,
    step: str,
    stmts: np.ndarray,
    ids: list[str],
    sh: tuple[np.ndarray, np.ndarray, np.ndarray, str],
    zn: np.ndarray,
    weighted: bool,
) -> str:
    k, m = means.shape
    share, lo, hi = float(sh[0][j]), float(sh[1][j]), float(sh[2][j])
    n_j = float(zn[:, j].sum())
    of = f"{zn.sum():.0f} weighted" if weighted else f"{result.n}"
    parts = [
        f"{handle}: {share:.0%} of {'the population' if weighted else 'respondents'} ({sh[3]} {lo:.0%}-{hi:.0%}; "
        f"about {n_j:.0f} of {of})."
    ]
    under_def = [o for o in defining if means[j, o] >= UNDERSERVED]
    if under_def:
        listed = ", ".join(f'"{stmts[o]}" ({means[j, o]:.1f} vs {overall[o]:.1f} overall)' for o in under_def[:3])
        parts.append(f"Its defining underserved outcomes: {listed}.")
    else:
        listed = ", ".join(f'"{stmts[o]}" ({means[j, o]:.1f} vs {overall[o]:.1f} overall)' for o in defining[:3])
        parts.append(f"No defining outcome is underserved; it needs most, relative to others, {listed}.")
    others = [n_under[i] for i in range(k) if i != j]
    avg = float(np.mean(others)) if others else float("nan")
    parts.append(
        f"{int(n_under[j])} of {m} outcomes are underserved (opportunity >= {UNDERSERVED:g}) and "
        f"{int(n_ext[j])} extremely (>= {EXTREMELY_UNDERSERVED:g})"
        + (f", against {avg:.1f} underserved on average in the other segments." if others else ".")
    )
    hi_o, lo_o = int(np.argmax(eff[j])), int(np.argmin(eff[j]))
    where = f" (job step: {step})" if step else ""
    parts.append(
        f'It differs most from the others on "{stmts[hi_o]}"{where}, effect {eff[j, hi_o]:+.1f} SD, '
        f'and needs least, relative to them, "{stmts[lo_o]}" ({eff[j, lo_o]:+.1f} SD).'
    )
    if under_def and str(stmts[under_def[0]]) != ids[under_def[0]]:  # only with a real statement
        parts.append(
            f"A product experience that helps to {_lower_first(_object_phrase(str(stmts[under_def[0]])))} "
            "should resonate with it."
        )
    return " ".join(parts)
