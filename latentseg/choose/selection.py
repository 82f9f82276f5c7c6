"""Choosing k: a sweep over model families and a range of k into one criteria table, and a
recommendation whose rule is written out in plain words.

:func:`select` fits every requested family at every k, collects one tidy row per fit
(log-likelihood, free parameters, BIC, AIC, ICL, SABIC, CAIC, relative entropy, WAIC and LOO
with standard errors, silhouette, inertia, smallest share, subsample stability, converged) and
recommends a k per family and overall:

- ``gmm``, ``lca``: the k with the lowest BIC among admissible fits.
- ``kmeans``: the elbow of the inertia curve (the point farthest below the chord joining the
  curve's ends, Satopää et al. 2011), among admissible fits; k-means fits also need a mean
  silhouette of at least ``silhouette_min``. The curve is extended by one k on each side of the
  range (k-means only, cheap) so that the elbow can fall on either end of the range.
- ``bayes-gmm``, ``bayes-lca``: LOO with parsimony: the smallest admissible k whose ``elpd_loo``
  is within ``loo_se_rule`` standard errors of the best one (LOO barely penalises superfluous,
  nearly empty segments, so the best elpd alone over-segments).

A fit is *admissible* when it succeeded, converged, its smallest segment holds at least
``min_share`` of respondents, and (where stability was measured) its mean subsample adjusted Rand
index reaches ``stability_min``. Every exclusion is named in the explanation, for example
``"k=5 rejected: smallest segment 4.8% < 10%"``.

The overall recommendation is the k recommended by the most families; a tie goes to the smaller
k (parsimony: the playbook asks for the fewest segments that are distinct and actionable).

Sampling is only spent where it can matter (unless ``all_k``): the Bayesian families are fitted
after the others, not at all when their recommendation cannot change the overall k
(:func:`vote_settled`), and not at a k whose EM twin's fit has an empty, too small, diffuse or
duplicated segment (:func:`hopeless_em_fit`) nor beyond a k where LOO has clearly peaked
(:func:`loo_peaked`); a fit that runs far past its family's others (:func:`fit_budget`) is
stopped. Each such fit stays in the table, with status ``skipped`` or ``stopped`` and the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg._stats import pair_overlap
from latentseg.config import DEFAULT_CONFIG
from latentseg.errors import ConfigError, LatentsegError, LatentsegWarning
from latentseg.models._em import single_threaded
from latentseg.models.families import FAMILIES, check_names, family
from latentseg.prepare.core import mean_impute
from latentseg.io.files import atomic_write_text

__all__ = [
    "select",
    "Selection",
    "CRITERIA_COLUMNS",
    "FAMILY_RULES",
    "elbow_index",
    "loo_parsimony",
    "vote_settled",
    "hopeless_em_fit",
    "loo_peaked",
    "fit_budget",
    "CHECKPOINT_VERSION",
]

#: Columns of the criteria table, in order, after ``model`` and ``k``.
CRITERIA_COLUMNS: tuple[str, ...] = (
    "loglik",
    "n_params",
    "bic",
    "aic",
    "icl",
    "sabic",
    "caic",
    "relative_entropy",
    "waic",
    "waic_se",
    "loo",
    "loo_se",
    "silhouette",
    "inertia",
    "smallest_share",
    "stability_mean",
    "stability_min",
    "converged",
)

#: The criterion each family's recommendation uses (from the family registry).
FAMILY_RULES: dict[str, str] = {name: fam.criterion for name, fam in FAMILIES.items()}

#: Families fitted on categorical indicators (the others take the numeric matrix).
CATEGORICAL_MODELS = frozenset(name for name, fam in FAMILIES.items() if fam.categorical)

#: Bump when the checkpoint layout changes; older checkpoints are then refitted, not misread.
#: 2: each checkpoint records the SHA-256 of its ``.nc``, the fit's own seed and a checksum of itself;
#: failed fits are not checkpointed (a rerun retries them).
CHECKPOINT_VERSION = 2

ProgressCallback = Callable[[int, int, str], None]


# ---------------------------------------------------------------------------------- rules
def elbow_index(x: Sequence[float], y: Sequence[float]) -> int | None:
    """Index of the elbow of a decreasing curve: the point farthest below the chord.

    Both axes are scaled to [0, 1] first (the "kneedle" construction of Satopää et al. 2011), so
    the answer does not depend on the units of ``y``.

    Parameters
    ----------
    x : sequence of float, length m
        Increasing (the k values).
    y : sequence of float, length m
        The curve (inertia), expected to decrease.

    Returns
    -------
    int or None
        Index into ``x`` of the elbow; ``None`` with fewer than three finite points or when no
        point lies below the chord (a straight or concave curve has no elbow).

    Examples
    --------
    >>> elbow_index([1, 2, 3, 4, 5, 6], [100, 60, 20, 17, 15, 13])
    2
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    ok = np.isfinite(ys)
    if ok.sum() < 3:
        return None
    idx = np.flatnonzero(ok)
    xs, ys = xs[ok], ys[ok]
    xn = (xs - xs[0]) / (xs[-1] - xs[0])
    span = ys.max() - ys.min()
    if span <= 0:
        return None
    yn = (ys - ys.min()) / span
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    gap = chord - yn
    best = int(np.argmax(gap))
    if gap[best] <= 1e-12:
        return None
    return int(idx[best])


def loo_parsimony(
    ks: Sequence[int],
    elpd: Sequence[float],
    se: Sequence[float],
    se_rule: float = 2.0,
    pointwise: Sequence[np.ndarray | None] | None = None,
) -> tuple[int | None, int | None]:
    """The smallest k whose elpd is within ``se_rule`` standard errors of the best.

    Parameters
    ----------
    ks : sequence of int, length m
    elpd : sequence of float, length m
        Expected log predictive density (``elpd_loo``, higher is better).
    se : sequence of float, length m
        Its standard error.
    se_rule : float, default 2.0
    pointwise : sequence of ndarray (n,) or None, length m, optional
        Per-respondent elpd of each fit. When given for the best fit and a candidate, the
        tolerance uses the standard error of their pointwise difference,
        ``sqrt(n Var(elpd_best,i - elpd_k,i))`` (as :func:`arviz.compare` does); otherwise the
        best fit's own SE, a common and more conservative stand-in.

    Returns
    -------
    (chosen k, best k)
        ``(None, None)`` when no finite elpd is given.

    Examples
    --------
    >>> loo_parsimony([3, 4, 5, 6], [-900.0, -850.0, -849.0, -848.5], [20.0, 20.0, 20.0, 20.0])
    (4, 6)
    """
    ks_a = np.asarray(ks, dtype=int)
    e = np.asarray(elpd, dtype=float)
    s = np.asarray(se, dtype=float)
    pw = list(pointwise) if pointwise is not None else [None] * len(ks_a)
    ok = np.isfinite(e)
    if not ok.any():
        return None, None
    idx = np.flatnonzero(ok)
    b = int(idx[np.argmax(e[idx])])
    tol = np.full(len(ks_a), se_rule * (s[b] if np.isfinite(s[b]) else 0.0))
    for i in idx:
        if pw[b] is not None and pw[i] is not None and np.size(pw[i]) == np.size(pw[b]):
            d = np.asarray(pw[b], dtype=float) - np.asarray(pw[i], dtype=float)
            tol[i] = se_rule * float(np.sqrt(d.size * np.var(d)))
    within = [int(ks_a[i]) for i in idx if e[i] >= e[b] - tol[i]]
    return min(within), int(ks_a[b])


# ---------------------------------------------------------------------------------- skip and stop rules
#: A segment whose share is below max(EMPTY_SHARE, EMPTY_COUNT / n) is empty (as the Bayesian engine says).
EMPTY_SHARE = 0.01
EMPTY_COUNT = 5
#: A segment that is the modal segment of fewer than this fraction of its expected count
#: (share x n) of respondents is diffuse: a catch-all overlapping the others.
DIFFUSE_FRACTION = 0.25
#: Two segments whose respondents' memberships overlap this much are duplicates (see hopeless_em_fit).
OVERLAP_MAX = 0.5
#: LOO has clearly peaked when this many successive k are each below the best elpd by more than
#: ``loo_se_rule`` standard errors.
LOO_PEAK_RUN = 2
#: A fit is stopped once it runs past max(STOP_FLOOR_S, STOP_FACTOR x the median time of its
#: family's other fits in the sweep).
STOP_FACTOR = 5.0
STOP_FLOOR_S = 30.0


def vote_settled(votes: Mapping[str, int | None], pending: int, ks: Sequence[int]) -> int | None:
    """The overall k when ``pending`` more families' recommendations cannot change it, else ``None``.

    The overall k is the one most families recommend, ties going to the smaller k. It is settled
    when no other k of the range could reach the leader's votes (or tie it from below) even if
    every pending family recommended that k.

    Parameters
    ----------
    votes : mapping of family to int or None
        Each finished family's recommended k (``None``: no recommendation).
    pending : int
        Families still to vote.
    ks : sequence of int
        The k range (any k of it may be voted for).

    Returns
    -------
    int or None

    Examples
    --------
    >>> vote_settled({"kmeans": 4, "gmm": 6, "lca": 4}, 1, range(3, 8))
    4
    >>> vote_settled({"kmeans": 4, "gmm": 6, "lca": 5}, 1, range(3, 8)) is None
    True
    """
    counts = Counter(int(v) for v in votes.values() if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    leader = min(k for k, c in counts.items() if c == top)
    for k in set(int(v) for v in ks) | set(counts):
        if k == leader:
            continue
        c = counts.get(k, 0) + int(pending)
        if c > top or (c == top and k < leader):
            return None
    return leader


def hopeless_em_fit(memberships: Any, min_share: float = 0.0, sample_weight: Any = None) -> str:
    """What makes an EM fit's k hopeless for the Bayesian fit it would start, or ``""``.

    The Bayesian engine starts its chains from the EM solution and applies these same rules to
    its posterior; a Bayesian fit at a k whose EM fit already fails one of them is not admissible
    (or is an overfitted k), so it is not sampled.

    - **empty**: a segment's share below ``max(EMPTY_SHARE, EMPTY_COUNT / n)``;
    - **too small**: a segment's share below ``min_share`` (the sweep would reject the fit);
    - **diffuse**: a segment that is the modal segment of fewer than ``DIFFUSE_FRACTION`` of its
      expected count (share x n) of respondents;
    - **duplicated**: a pair of segments whose respondents' memberships overlap by
      ``OVERLAP_MAX`` or more: the mean of ``2 min(z_a, z_b) / (z_a + z_b)`` over respondents whose
      modal segment is a or b (0: always told apart, 1: interchangeable).

    Parameters
    ----------
    memberships : array-like, shape (n, k)
        The EM fit's membership probabilities.
    min_share : float, default 0.0
    sample_weight : array-like, shape (n,), optional
        Survey weights (mean 1): shares and the diffuse rule's counts are then weighted.

    Returns
    -------
    str
        The first rule it fails, in words (``""`` when none).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.r_[np.tile([1.0, 0.0, 0.0], (60, 1)), np.tile([[0.0, 0.6, 0.4], [0.0, 0.4, 0.6]], (20, 1))]
    >>> hopeless_em_fit(z)
    'a duplicated segment pair (2, 3): membership overlap 0.80 >= 0.5'
    >>> hopeless_em_fit(np.c_[z[:, 0], z[:, 1] + z[:, 2]], min_share=0.1)
    ''
    >>> hopeless_em_fit(np.c_[z[:, 0], z[:, 1] + z[:, 2]], min_share=0.5)
    'a segment of 40.0% < 50%'
    """
    z = np.asarray(memberships, dtype=float)
    n, k = z.shape
    if n == 0 or k < 2:
        return ""
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float) * n / float(np.sum(sample_weight))
    shares = z.mean(axis=0) if w is None else np.average(z, axis=0, weights=w)
    cut = max(EMPTY_SHARE, EMPTY_COUNT / n)
    j = int(np.argmin(shares))
    if shares[j] < cut:
        return f"an empty segment ({_pct(shares[j])} < {_pct(cut)})"
    if shares[j] < min_share:
        return f"a segment of {_pct(shares[j])} < {_pct_threshold(min_share)}"
    modal = z.argmax(axis=1)
    counts = np.bincount(modal, minlength=k) if w is None else np.bincount(modal, weights=w, minlength=k)
    for j in range(k):
        if counts[j] < DIFFUSE_FRACTION * shares[j] * n:
            return (f"a diffuse segment ({j + 1}: the modal segment of {counts[j]:.0f} respondents against "
                    f"{shares[j] * n:.0f} expected)")
    for (a, b), overlap in pair_overlap(z).items():
        if overlap >= OVERLAP_MAX:
            return f"a duplicated segment pair ({a + 1}, {b + 1}): membership overlap {overlap:.2f} >= {OVERLAP_MAX:g}"
    return ""


def loo_peaked(ks: Sequence[int], elpd: Sequence[float], se: Sequence[float], se_rule: float = 2.0,
               pointwise: Sequence[Any] | None = None) -> str:
    """Why LOO has clearly peaked (larger k need not be sampled), or ``""``.

    LOO has clearly peaked when the last ``LOO_PEAK_RUN`` fitted k (successive in the sweep) each
    have an ``elpd_loo`` below the best one by more than ``se_rule`` standard errors: the SE of the
    paired pointwise difference where both fits have pointwise values, else the best fit's SE
    (as :func:`loo_parsimony`). A larger k would have to undo two significant losses in a row.

    Examples
    --------
    >>> loo_peaked([3, 4, 5, 6], [-900.0, -850.0, -900.0, -910.0], [10.0, 10.0, 10.0, 10.0])
    'LOO peaked at k=4: elpd at k=5, 6 is more than 2 SE below it'
    >>> loo_peaked([3, 4, 5], [-900.0, -850.0, -851.0], [10.0, 10.0, 10.0])
    ''
    """
    e = np.asarray(elpd, dtype=float)
    s = np.asarray(se, dtype=float)
    if len(e) <= LOO_PEAK_RUN or not np.isfinite(e).any():
        return ""
    pw = list(pointwise) if pointwise is not None else [None] * len(e)
    b = int(np.nanargmax(e))
    tail = range(len(e) - LOO_PEAK_RUN, len(e))
    if b in tail:
        return ""
    for i in tail:
        if not np.isfinite(e[i]):
            return ""
        if pw[b] is not None and pw[i] is not None and np.size(pw[b]) == np.size(pw[i]):
            d = np.asarray(pw[b], dtype=float) - np.asarray(pw[i], dtype=float)
            tol = se_rule * float(np.sqrt(d.size * np.var(d)))
        else:
            tol = se_rule * (float(s[b]) if np.isfinite(s[b]) else np.inf)
        if not e[i] < e[b] - tol:
            return ""
    late = ", ".join(str(int(ks[i])) for i in tail)
    return f"LOO peaked at k={int(ks[b])}: elpd at k={late} is more than {se_rule:g} SE below it"


def fit_budget(seconds: Sequence[float]) -> float | None:
    """The time a fit may take before it is stopped: ``max(STOP_FLOOR_S, STOP_FACTOR x median)``
    of the seconds its family's other fits took; ``None`` (no budget) before any has finished
    (the first fit of a family also pays for imports and compilation).

    Examples
    --------
    >>> fit_budget([]) is None, fit_budget([4.0, 9.0, 12.0]), fit_budget([1.0])
    (True, 45.0, 30.0)
    """
    if not seconds:
        return None
    return max(STOP_FLOOR_S, STOP_FACTOR * float(np.median(seconds)))


class _Stopped(BaseException):
    """Raised in the sweep's thread when a fit's time budget runs out (a BaseException, so that
    no engine's ``except Exception`` takes it for a failure of its own)."""


def _fit_within(budget: float | None, work: Callable[[], FitRecord], model: str, k: int,
                others: Sequence[float]) -> FitRecord:
    """``work()``, stopped (a "stopped" record) once it runs past ``budget`` seconds. The alarm is
    the POSIX interval timer, so the stop applies in the main thread of a Unix process (the CLI,
    a script, a notebook); elsewhere, or when the timer is in use, the fit runs to the end."""
    import signal
    import threading

    usable = (budget is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))
    if not usable:
        return work()

    def alarm(signum: int, frame: Any) -> None:
        raise _Stopped()

    previous = signal.signal(signal.SIGALRM, alarm)
    t0 = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, float(budget))  # type: ignore[arg-type]
        try:
            return work()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
    except _Stopped:
        ran = time.perf_counter() - t0
        why = (f"ran {ran:.0f} s, past its budget of {budget:.0f} s ({STOP_FACTOR:g} x the median "
               f"{float(np.median(others)):.1f} s of its family's other fits, at least {STOP_FLOOR_S:g} s)")
        row = {"model": model, "k": k, "status": "stopped", "seconds": ran}
        return FitRecord(model=model, k=k, row=row, status="stopped", reason=why)
    finally:
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class FitRecord:
    """One fit of the sweep: its table row, its result (if kept) and its JSON contract."""

    model: str
    k: int
    row: Mapping[str, Any]
    result: Any = None
    result_dict: Mapping[str, Any] | None = None
    error: str | None = None
    from_checkpoint: bool = False
    #: ``"skipped"`` (a skip rule: never fitted) or ``"stopped"`` (past its time budget), else ``""``
    status: str = ""
    #: why it was skipped or stopped
    reason: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class Selection:
    """The outcome of a k sweep.

    Attributes
    ----------
    table : DataFrame, one row per model and k
        ``model, k, status`` then :data:`CRITERIA_COLUMNS`, then ``admissible`` (bool),
        ``excluded`` (why a fit is not admissible; empty when it is), ``seconds``, ``error``.
    records : tuple of FitRecord
        The fits, in table order (``record.result`` is the SegmentationResult, or ``None`` for a
        failed fit or one loaded from a checkpoint without a saved model).
    recommended_k : int or None
        The overall recommendation; ``None`` when no family has an admissible fit.
    rule : str
        The rule and how it applied, in plain words.
    per_family : dict
        For each family: ``recommended_k``, ``criterion``, ``rule`` (its sentence), ``excluded``
        (list of ``{"k", "reason"}``), ``best_k`` (the criterion's raw optimum, before
        parsimony and admissibility).
    settings : dict
        The sweep's settings (models, ks, thresholds, seed, data hash).
    notes : tuple of str
        What the sweep did to the data that the reader should know (e.g. imputation for k-means).

    Examples
    --------
    >>> import numpy as np
    >>> from latentseg.choose.selection import select
    >>> X = np.r_[np.zeros((30, 2)), np.full((30, 2), 6.0)] + np.random.default_rng(0).normal(size=(60, 2))
    >>> sel = select(X, models=("kmeans",), k=range(2, 5), random_seed=1, stability_subsamples=0)
    >>> sel.recommended_k
    2
    """

    table: pd.DataFrame
    records: tuple[FitRecord, ...]
    recommended_k: int | None
    rule: str
    per_family: dict[str, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def result(self, model: str, k: int) -> Any:
        """The fitted SegmentationResult for one model and k (``None`` if failed or not kept)."""
        for rec in self.records:
            if rec.model == model and rec.k == k:
                return rec.result
        raise KeyError(f"no fit for model {model!r} with k={k} in this selection")

    @property
    def results(self) -> dict[tuple[str, int], Any]:
        """``{(model, k): SegmentationResult}`` for every fit whose result is kept."""
        return {(r.model, r.k): r.result for r in self.records if r.result is not None}

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Fits that failed: ``[{"model", "k", "error"}]``."""
        return [{"model": r.model, "k": r.k, "error": r.error} for r in self.records if r.error]

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Fits a skip rule left out or the stop rule stopped: ``[{"model", "k", "status", "reason"}]``
        (``status`` is ``"skipped"`` or ``"stopped"``; see :func:`select`)."""
        return [{"model": r.model, "k": r.k, "status": r.status, "reason": r.reason} for r in self.records
                if r.status in ("skipped", "stopped")]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: ``{"fits", "recommended_k", "rule", "per_family", "table", ...}``.

        ``fits`` holds one :meth:`SegmentationResult.to_dict` per successful model and k (read
        back from the checkpoint for resumed fits); failed fits are listed under ``failed``, fits
        a skip rule left out or the stop rule stopped under ``skipped`` (with the reason).
        """
        from latentseg.io.jsonsafe import json_safe

        fits = [dict(r.result_dict) for r in self.records if r.result_dict is not None]
        table = self.table.astype(object).where(self.table.notna(), None)
        return json_safe(
            {
                "fits": fits,
                "recommended_k": self.recommended_k,
                "rule": self.rule,
                "per_family": self.per_family,
                "table": table.to_dict(orient="records"),
                "failed": self.failures,
                "skipped": self.skipped,
                "settings": self.settings,
                "notes": list(self.notes),
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())``."""
        return json.dumps(self.to_dict(), **kwargs)

    # ------------------------------------------------------------------ display
    def _not_converged(self) -> list[str]:
        t = self.table
        if "converged" not in t.columns or "status" not in t.columns:
            return []
        bad = t[(t["status"] == "ok") & (t["converged"].astype(object) == False)]  # noqa: E712 (NaN-safe)
        return [f"{m} k={int(k)}" for m, k in zip(bad["model"], bad["k"])]

    def __repr__(self) -> str:
        """``<Selection recommended k=3 (kmeans: 3, gmm: 3); 8 fits, 0 failed>`` and a few lines."""
        from latentseg._display import clip, finish_repr

        fams = ", ".join(f"{m}: {v.get('recommended_k')}" for m, v in self.per_family.items())
        rec = "none" if self.recommended_k is None else self.recommended_k
        lines = [f"<Selection recommended k={rec} ({clip(fams, 200)}); {len(self.records)} fits, {len(self.failures)} failed>"]
        lines.append("  rule: " + clip(self.rule, 300))
        nc = self._not_converged()
        if nc:
            lines.append("  NOT CONVERGED: " + clip(", ".join(nc), 150))
        for f in self.failures[:2]:
            lines.append(f"  failed: {f['model']} k={f['k']}: " + clip(f["error"], 120))
        lines.extend("  note: " + clip(n, 150) for n in self.notes[:2])
        return finish_repr(lines)

    def _repr_html_(self) -> str:
        """The criteria table for Jupyter, each family's recommended k highlighted, then the rule;
        failed and non-converged fits marked. All text is HTML-escaped."""
        from latentseg._display import Raw, badge, box, esc, number, pct, table

        t = self.table
        wanted = ("loglik", "n_params", "bic", "aic", "icl", "relative_entropy", "waic", "loo", "silhouette",
                  "inertia", "smallest_share", "stability_mean")
        cols = [c for c in wanted if c in t.columns and t[c].notna().any()]
        rec_by = {m: v.get("recommended_k") for m, v in self.per_family.items()}
        rows, marks = [], []

        def fmt(col: str, v: Any) -> str:
            if v is None or (isinstance(v, float) and v != v):
                return ""
            if col in ("smallest_share",):
                return pct(v, 1)
            return f"{int(v):,}" if col == "n_params" else number(v)

        for _, r in t.iterrows():
            status = r.get("status")
            st: Any = status if status == "ok" else badge(status, "bad")
            conv = r.get("converged")
            conv_cell: Any = "" if conv is None or (isinstance(conv, float) and conv != conv) else (
                "yes" if bool(conv) else badge("no", "bad"))
            vals = [fmt(c, r[c]) for c in cols]
            is_rec = r["k"] == rec_by.get(r["model"])
            mark = badge("recommended", "target") if is_rec else ""
            rows.append([r["model"], int(r["k"]), st, *vals, conv_cell, r.get("excluded") or "", mark])
            marks.append(bool(is_rec))
        head = ["model", "k", "status", *cols, "converged", "excluded", ""]
        rec = "none" if self.recommended_k is None else self.recommended_k
        extra = []
        if self.failures:
            extra.append(badge(f"{len(self.failures)} failed", "bad"))
        if self._not_converged():
            extra.append(badge(f"{len(self._not_converged())} not converged", "bad"))
        title = Raw(f"Selection: recommended k = {esc(rec)} " + " ".join(extra))
        rule = Raw(f'<p style="margin:4px 0"><b>Rule.</b> {esc(self.rule)}</p>')
        notes = Raw("".join(f'<p style="margin:2px 0">{badge("note", "info")} {esc(n)}</p>' for n in self.notes)) if self.notes else None
        fails = Raw("".join(
            f'<p style="margin:2px 0">{badge("failed", "bad")} {esc(f["model"])} k={esc(f["k"])}: {esc(f["error"])}</p>'
            for f in self.failures
        )) if self.failures else None
        return box(title, table(head, rows, marks), rule, notes, fails)


# ---------------------------------------------------------------------------------- sweep
def select(
    data: Any,
    *,
    models: Sequence[str] | None = None,
    k: Iterable[int] = range(3, 8),
    random_seed: int | None = None,
    min_share: float = 0.10,
    silhouette_min: float = 0.25,
    stability_subsamples: int = 5,
    stability_min: float = 0.6,
    loo_se_rule: float = 2.0,
    fit_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    categorical_data: Any = None,
    rating_data: Any = None,
    all_k: bool = False,
    checkpoint_min_seconds: float = 2.0,
    sample_weight: Any = None,
    while_waiting: Callable[[Callable[[], bool]], None] | None = None,
) -> Selection:
    """Fit every family at every k and recommend a k, with the rule written out.

    Parameters
    ----------
    data : DataFrame or ndarray, shape (n, d)
        Numeric matrix (opportunity scores, factor scores) for ``kmeans``, ``gmm``, ``bayes-gmm``.
    models : sequence of str
        Any family names (:data:`latentseg.models.families.NAMES`).
    k : iterable of int
        The k values to try (default 3..7).
    random_seed : int, optional
        The one seed. Each fit gets its own child seed derived from (seed, family, k), so a fit's
        result does not depend on which other families or ks are in the sweep.
    min_share : float, default 0.10
        Smallest acceptable segment share; fits below it are excluded (and named).
    silhouette_min : float, default 0.25
        Smallest acceptable mean silhouette for k-means fits.
    stability_subsamples : int, default 5
        Subsamples for the stability check (:func:`latentseg.choose.stability.stability`); 0 skips it.
        Not run for Bayesian families (each refit would be an MCMC run). Measured where the
        family's rule needs it: for the fit the rule would choose, then (while that one proves
        unstable) the next it would choose; the recommendation is the one measuring every fit
        gives, and the fits never reached have no stability value (their ``warnings`` say so).
    stability_min : float, default 0.6
        Smallest acceptable mean subsample adjusted Rand index.
    loo_se_rule : float, default 2.0
        LOO parsimony: the smallest k within this many standard errors of the best elpd.
    fit_options : mapping of model name to mapping, optional
        Extra options per family, e.g. ``{"gmm": {"covariance": "VVI"}, "bayes-gmm": {"draws": 300}}``.
    progress : callable(done, total, description), optional
        Called when a fit starts (``done`` fits finished so far, description ``"<model> k=<k>
        (running)"``) and after each fit, loaded checkpoint or skip (``done`` counting it,
        description ending ``(done)``, ``(loaded)``, ``(failed)``, ``(skipped: <why>)`` or
        ``(stopped: <why>)``). Where the sweep shares its families with a second process (see
        Notes), that process's fits are said when this one hears of them, between its own.
    checkpoint_dir : path, optional
        Each finished fit worth keeping (``checkpoint_min_seconds``) is written there, atomically, once
        it is judged (at once, or a family's first fit with its next): ``<model>-k<k>.json`` (its table row
        and JSON contract) and ``<model>-k<k>.nc`` (the full result, through
        :func:`latentseg.deliver.artifacts.save_result`). A later call with the same data and settings
        loads those fits instead of refitting, so an interrupted sweep resumes.
    categorical_data : DataFrame, shape (n, j), optional
        Indicators for ``lca`` / ``bayes-lca``. Default: the three opportunity levels of ``data``
        (:func:`latentseg.prepare.encoding.opportunity_levels`; below 10, 10-15, 15 and above), which
        assumes ``data`` holds opportunity scores.
    rating_data : DataFrame, shape (n, 2J), optional
        The raw ratings for the families fitted on ratings (``rating-lca``):
        :attr:`latentseg.prepare.core.Prepared.ratings`; needed when one of them is in ``models``.
    all_k : bool, default False
        Fit every family at every k, each to the end: no skip rule and no time budget. By default
        the Bayesian families (the registry's ``bayesian``) are fitted after the others and their
        hopeless fits are skipped, and a fit far past its family's time budget is stopped; both
        are reported (``status`` ``"skipped"`` / ``"stopped"`` with the reason in ``excluded``).
        The rules (docs/methods.md, "Skipped and stopped fits"): a Bayesian family whose
        recommendation cannot change the overall k is not fitted (:func:`vote_settled`); nor at
        a k whose EM twin's fit at that k or below has an empty, too small, diffuse or duplicated
        segment (:func:`hopeless_em_fit`); nor beyond a k where LOO has clearly peaked
        (:func:`loo_peaked`); a fit running past :func:`fit_budget` is stopped.
    checkpoint_min_seconds : float, default 2.0
        Only fits that took at least this long are checkpointed: a faster fit is refitted on a
        resume (same seed, same result) sooner than it is saved and read back. A family's first
        fit pays its imports and compiling too: unless it took :data:`FIRST_FIT_FACTOR` (5) times
        this, it is kept only when the family's next fit also took this long.
    sample_weight : array-like, shape (n,), optional
        Survey weights, one per row of ``data`` (and of ``categorical_data`` / ``rating_data``,
        which share its rows), positive; passed as given to every fit (``sample_weight=``), to
        the stability refits (each subsample keeps its rows' weights) and to the k-means elbow's
        extra fits. The pipeline passes weights normalised to mean 1
        (:attr:`latentseg.prepare.core.Prepared.weights`). Their hash is part of every
        checkpoint's key, so a checkpoint of an unweighted sweep is never reused for a weighted
        one (nor one of other weights). ``None``: unweighted, every fit exactly as without it.
    while_waiting : callable(still_waiting), optional
        Called at most once in this process, after its first family and before it takes another
        (or, having no other, while it waits), while the second process (see Notes) still fits:
        for work the caller needs later and would otherwise do after the sweep on one core
        (:func:`latentseg.run` imports the modules of its later steps there); the second
        process takes the families it gets to meanwhile.
        ``still_waiting()`` says whether the second process is still fitting (not done, and not
        stalled), and says that process's fits in the progress: do the work in short pieces and
        return once it says False, so the sweep does not wait for it. Not
        called without a second process. It must not touch the sweep's inputs; an exception it
        raises is not raised here (only the caller's later step depends on what it did, and
        does it again).

    Returns
    -------
    Selection

    Raises
    ------
    ConfigError
        An unknown model, an empty or invalid k range, thresholds out of range.

    Notes
    -----
    On Linux with two CPUs or more, the families that are not Bayesian are shared with a forked
    copy of this process: it starts with the Gaussian mixture while this one starts with k-means,
    then each takes the next family the other has not (:func:`sweep_worker_families`); the
    results are the same bit for bit. The environment variable ``LATENTSEG_WORKERS=1`` keeps the
    sweep in one process.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((40, 2)), np.full((40, 2), 6.0)] + np.random.default_rng(1).normal(size=(80, 2))
    >>> sel = select(X, models=("kmeans", "gmm"), k=[1, 2, 3, 4], random_seed=3, stability_subsamples=0)
    >>> sel.recommended_k, sel.per_family["gmm"]["recommended_k"]
    (2, 2)
    """
    models = check_names(DEFAULT_CONFIG["select"]["models"] if models is None else models)
    ks = _check_ks(k)
    _check_rules(min_share, silhouette_min, stability_min, stability_subsamples, loo_se_rule)
    if not float(checkpoint_min_seconds) >= 0:
        raise ConfigError(f"checkpoint_min_seconds must be 0 or more; got {checkpoint_min_seconds}.")
    fit_options = _check_fit_options(fit_options)
    if while_waiting is not None and not callable(while_waiting):
        raise TypeError(f"while_waiting must be a callable taking one argument; got {while_waiting!r}")
    inputs = _SweepInputs.build(data, models, categorical_data, rating_data, sample_weight)
    seed_seq = np.random.SeedSequence(random_seed)
    settings: dict[str, Any] = {
        "models": list(models),
        "k": ks,
        "random_seed": random_seed,
        "seed_entropy": str(seed_seq.entropy),
        "min_share": float(min_share),
        "silhouette_min": float(silhouette_min),
        "stability_subsamples": int(stability_subsamples),
        "stability_min": float(stability_min),
        "loo_se_rule": float(loo_se_rule),
        "fit_options": fit_options,
        "data_hash": inputs.hashes,
    }
    settings["all_k"] = bool(all_k)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
    rules = _Rules(float(min_share), float(silhouette_min), float(stability_min), float(loo_se_rule), bool(all_k))
    plan = _Plan(inputs, models, ks, seed_seq, random_seed, fit_options, int(stability_subsamples), ckpt, progress,
                 rules, float(checkpoint_min_seconds), while_waiting)
    records, aux_inertia = plan.run()
    table, per_family = _recommend(
        _build_table(records),
        models,
        min_share=float(min_share),
        silhouette_min=float(silhouette_min),
        stability_min=float(stability_min),
        loo_se_rule=float(loo_se_rule),
        aux_inertia=aux_inertia,
        pointwise=_pointwise(records),
    )
    overall, rule = _overall(
        per_family,
        min_share=float(min_share),
        silhouette_min=float(silhouette_min),
        stability_min=float(stability_min) if int(stability_subsamples) > 0 else None,
    )
    notes = list(inputs.notes)
    if notes:
        rule += " Note: " + " ".join(notes)
    return Selection(
        table=table,
        records=tuple(records),
        recommended_k=overall,
        rule=rule,
        per_family=per_family,
        settings=settings,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------- sweep steps
def _check_rules(min_share: float, silhouette_min: float, stability_min: float, stability_subsamples: int,
                 loo_se_rule: float) -> None:
    """Refuse a selection rule out of its range."""
    _check_fraction("min_share", min_share)
    if not -1.0 <= float(silhouette_min) <= 1.0:
        raise ConfigError(f"silhouette_min must be in [-1, 1]; got {silhouette_min}.")
    if not -1.0 <= float(stability_min) <= 1.0:
        raise ConfigError(f"stability_min must be in [-1, 1] (an adjusted Rand index); got {stability_min}.")
    if int(stability_subsamples) < 0:
        raise ConfigError(f"stability_subsamples must be 0 or more; got {stability_subsamples}.")
    if float(loo_se_rule) < 0:
        raise ConfigError(f"loo_se_rule must be 0 or more; got {loo_se_rule}.")


def _check_fit_options(fit_options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """A copy of the per-family engine options, keyed by known family names."""
    out = {m: dict(o) for m, o in (fit_options or {}).items()}
    unknown = set(out) - set(FAMILY_RULES)
    if unknown:
        raise ConfigError(
            f"fit_options has unknown model(s) {sorted(unknown)}; keys must be model names ({', '.join(FAMILIES)})."
        )
    return out


@dataclass(frozen=True)
class _SweepInputs:
    """The data each family of a sweep takes, their hashes (checkpoint keys) and notes."""

    numeric: Any
    complete: Any  # numeric, mean-imputed for families that need complete data
    categorical: Any
    hashes: dict[str, str | None]
    notes: tuple[str, ...]
    ratings: Any = None  # the raw ratings, for the families fitted on ratings
    weights: np.ndarray | None = None  # survey weights, one per row (None: unweighted)

    @classmethod
    def build(cls, data: Any, models: Sequence[str], categorical_data: Any, rating_data: Any = None,
              sample_weight: Any = None) -> _SweepInputs:
        from latentseg._stats import data_hash

        notes: list[str] = []
        complete_families = [m for m in models if family(m).complete_data]
        complete = data
        if complete_families:
            complete, n_imputed = mean_impute(data)
            if n_imputed:
                names = ", ".join(family(m).title for m in complete_families)
                notes.append(
                    f"{names} cannot use missing values: {n_imputed} missing value(s) were replaced by their "
                    f"column mean for the {names} fits only (the mixtures use each respondent's observed values)."
                )
        categorical = None
        if any(m in CATEGORICAL_MODELS for m in models):
            categorical = categorical_data if categorical_data is not None else _opportunity_levels(data)
        on_ratings = [m for m in models if family(m).on_ratings]
        if on_ratings and rating_data is None:
            raise ConfigError(
                f"--model {on_ratings[0]} fits a survey's raw ratings; pass rating_data (prepare(...).ratings) to select."
            )
        # one hash per kind of data, so adding a family to a sweep does not invalidate the others' checkpoints
        hashes = {
            "numeric": data_hash(data) if any(_data_key(m) == "numeric" for m in models) else None,
            "categorical": data_hash(_codes(categorical)) if categorical is not None else None,
            "ratings": data_hash(_codes(rating_data)) if on_ratings else None,
        }
        weights = _check_weights(sample_weight, len(data))
        if weights is not None:  # absent when unweighted: the checkpoints of unweighted sweeps keep their keys
            hashes["weights"] = data_hash(weights)
        return cls(data, complete, categorical, hashes, tuple(notes), rating_data if on_ratings else None, weights)

    def fit_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """A family's engine options with the weights (``sample_weight=``) when the sweep is weighted."""
        return dict(options) if self.weights is None else {**options, "sample_weight": self.weights}

    def for_family(self, model: str) -> Any:
        fam = family(model)
        if fam.on_ratings:
            return self.ratings
        return self.categorical if fam.categorical else (self.complete if fam.complete_data else self.numeric)


@dataclass(frozen=True)
class _Rules:
    """The admissibility thresholds, the LOO rule and whether the skip and stop rules apply."""

    min_share: float
    silhouette_min: float
    stability_min: float
    loo_se_rule: float
    all_k: bool


class _Plan:
    """The sweep's fits in order: the families that are not Bayesian first (cheap, and what the
    skip rules read), then the Bayesian ones, each k from the smallest up; finished fits loaded
    from checkpoints; the skip and stop rules applied unless ``all_k``."""

    def __init__(self, inputs: _SweepInputs, models: Sequence[str], ks: list[int], seed_seq: np.random.SeedSequence,
                 random_seed: int | None, fit_options: Mapping[str, Mapping[str, Any]], stability_subsamples: int,
                 ckpt: Path | None, progress: ProgressCallback | None, rules: _Rules,
                 checkpoint_min_seconds: float, while_waiting: Callable[[Callable[[], bool]], None] | None = None) -> None:
        self.inputs, self.models, self.ks, self.seed_seq = inputs, list(models), ks, seed_seq
        self.random_seed, self.fit_options, self.n_sub = random_seed, fit_options, stability_subsamples
        self.ckpt, self.progress, self.rules, self.ckpt_min = ckpt, progress, rules, checkpoint_min_seconds
        self.total = len(self.models) * len(ks)
        self.done: dict[tuple[str, int], FitRecord] = {}
        self.worker: _SweepWorker | None = None  # the second process sharing the families (in the parent)
        self.said = 0  # the highest count of finished fits said in the progress
        #: per family fitted in a sweep's first part, the warnings it raised: (message, category, file, line)
        self.family_warnings: dict[str, list[tuple[Any, type[Warning], str, int]]] = {}
        self.fitted: set[str] = set()  # families with a fit made (not loaded) in this process
        #: per family, its first fit's checkpoint waiting for the next fit's time: (record, key, seed)
        self.pending: dict[str, tuple[FitRecord, Mapping[str, Any], int]] = {}
        #: the caller's work for this process's idle time while the second process fits (``select``)
        self.while_waiting = while_waiting

    def _tick(self, text: str) -> None:
        # this process's news first (its own fit was added to `done` just now and counted), then the
        # second process's fits that finished meanwhile: each said with the count one higher
        if self.progress is not None:
            self.progress(self.finished(), self.total, text)
        if self.worker is not None:
            self.worker.collect()

    def finished(self) -> int:
        """Fits finished so far: this process's and those the second process has said it finished
        (never fewer than said before: a family the second process left unfinished and this one
        fits again does not count down)."""
        n = len(self.done) + (len(self.worker.remote - self.done.keys()) if self.worker is not None else 0)
        self.said = max(self.said, n)
        return self.said

    def run(self) -> tuple[list[FitRecord], dict[int, float]]:
        try:
            return self._run()
        finally:  # interrupted: a first fit held for its family's next fit is kept all the same
            for model in list(self.pending):
                try:
                    self._settle(model)
                except Exception:  # noqa: BLE001 - never hide the error on its way out
                    pass

    def _run(self) -> tuple[list[FitRecord], dict[int, float]]:
        cheap = [m for m in self.models if not family(m).bayesian]
        aux_of: dict[str, dict[int, float]] = {}
        # BLAS on one thread in both processes (the child inherits the limit when forked): the
        # second process already uses the other core, and OpenBLAS threads waiting for a core
        # they do not get spin (measured on 2 cores without OMP_NUM_THREADS=1: the default run's
        # select took 3x the time and twice the CPU). The k-means and Gaussian mixture engines
        # also set it themselves; this covers the others and what runs around them (stability,
        # final fits), with or without the worker.
        with single_threaded():
            worker = None
            try:
                worker = _SweepWorker.start(self, cheap)
                for model in cheap if worker is None else worker.order(here=True):
                    if worker is not None and aux_of:
                        # after this process's first family, the caller's work for later comes
                        # before taking more: done now while the child fits, it is not done
                        # later on one core (the child takes the families it gets to first)
                        worker.idle()
                    if worker is None or worker.claim(model):
                        aux_of[model] = self._family(model)
                if worker is not None:
                    aux_of.update(worker.finish(cheap, fitted_here=set(aux_of)))
            finally:
                if worker is not None:
                    worker.stop()
        self.done = {(m, kk): self.done[(m, kk)] for m in cheap for kk in self.ks}  # the serial order
        for model in cheap:  # each family's warnings, in the sweep's order whichever process fitted it
            for message, category, filename, lineno in self.family_warnings.pop(model, ()):
                warnings.warn_explicit(message, category, filename, lineno)
        aux: dict[int, float] = {}
        for model in cheap:  # the elbow family's extra inertias (the last one's, as one process would have it)
            if family(model).criterion == "elbow":
                aux = aux_of[model]
        bayesian = [m for m in self.models if family(m).bayesian]
        for i, model in enumerate(bayesian):
            why = "" if self.rules.all_k else self._settled(aux, pending=len(bayesian) - i)
            for kk in self.ks:
                if not why and not self.rules.all_k:
                    why = self._hopeless(model, kk)
                if why:
                    self._skip(model, kk, why)
                else:
                    self._one(model, kk)
            self._settle(model)
        return [self.done[(m, kk)] for m in self.models for kk in self.ks], aux

    def _family(self, model: str) -> dict[int, float]:
        """Fit a family that is not Bayesian at every k, then its extras (an elbow family's inertia
        beyond the range, stability where its rule needs it); returns the extra inertias. A
        family's outcome depends on its own fits only, so any process may do it. Its warnings are
        kept in ``family_warnings`` (:meth:`run` raises them again, in the sweep's order)."""
        with warnings.catch_warnings(record=True) as caught:
            aux = self._family_fits(model)
        self.family_warnings[model] = [(w.message, w.category, w.filename, w.lineno) for w in caught]
        return aux

    def _family_fits(self, model: str) -> dict[int, float]:
        for kk in self.ks:
            self._one(model, kk)
        self._settle(model)
        aux: dict[int, float] = {}
        # families chosen by an elbow: inertia one step beyond each end of the range, so the elbow can land on an end
        if family(model).criterion == "elbow":
            aux = _aux_inertia(model, self.inputs.complete, self.ks, self.seed_seq,
                               self.inputs.fit_options(self.fit_options.get(model, {})))
        if self.n_sub > 0 and family(model).stability:
            self._stability_lazily(model, aux)
        return aux

    # ------------------------------------------------------------------ one fit
    def _one(self, model: str, kk: int) -> None:
        opts = self.fit_options.get(model, {})
        n_sub = self.n_sub if family(model).stability else 0
        dhash = self.inputs.hashes[_data_key(model)]
        key = _checkpoint_key(model, kk, str(dhash), self.random_seed, opts, n_sub)
        if "weights" in self.inputs.hashes:
            key["weights_hash"] = self.inputs.hashes["weights"]
        opts = self.inputs.fit_options(opts)
        seed = _child_seed(self.seed_seq, model, kk)
        data = self.inputs.for_family(model)
        ckpt = self.ckpt
        rec = _load_checkpoint(ckpt, model, kk, key, n=len(data), fit_seed=seed) if ckpt is not None else None
        if rec is None:
            self._tick(f"{model} k={kk} (running)")
            budget = None if self.rules.all_k else fit_budget(self._seconds(model))
            # stability is measured afterwards, only where the family's rule needs it (_stability_lazily)
            rec = _fit_within(budget, lambda: _fit_one(data, model, kk, seed, opts, 0), model, kk,
                              self._seconds(model))
            if ckpt is not None and rec.status != "stopped":
                self._keep(ckpt, rec, key, seed)
        if self.worker is not None:
            self.worker.collect()  # the second process's fits finished before this one are said first
        self.done[(model, kk)] = rec
        status = rec.status or ("loaded" if rec.from_checkpoint else ("failed" if rec.error else "done"))
        self._tick(f"{model} k={kk} ({status}{': ' + rec.reason if rec.reason else ''})")

    def _keep(self, ckpt: Path, rec: FitRecord, key: Mapping[str, Any], seed: int) -> None:
        """Checkpoint a finished fit when refitting it on a resume would take at least
        ``checkpoint_min_seconds``; a failed fit clears the earlier checkpoint. A family's first fit
        in this process also paid one-off costs (imports, compiling), so unless it took
        :data:`FIRST_FIT_FACTOR` times that or more, it is judged by the family's next fit too
        (kept only when both took that long) and written then, or at the family's end."""
        model, kk = rec.model, rec.k
        if rec.error is not None:
            _save_checkpoint(ckpt, rec, key, fit_seed=seed)  # removes an earlier one
            return
        sec = float(rec.row.get("seconds", 0.0))
        first = model not in self.fitted
        self.fitted.add(model)
        if first and self.ckpt_min <= sec < FIRST_FIT_FACTOR * self.ckpt_min:
            self.pending[model] = (rec, key, seed)
            _drop_checkpoint(ckpt, model, kk)  # not this sweep's fit (it would have been loaded)
            return
        held = self.pending.pop(model, None)
        if held is not None and min(float(held[0].row.get("seconds", 0.0)), sec) >= self.ckpt_min:
            _save_checkpoint(ckpt, held[0], held[1], fit_seed=held[2])
        if sec >= self.ckpt_min:
            _save_checkpoint(ckpt, rec, key, fit_seed=seed)
        else:  # cheaper to refit on a resume than to save: an older checkpoint is not kept either
            _drop_checkpoint(ckpt, model, kk)

    def _settle(self, model: str) -> None:
        """At a family's end: write its first fit's checkpoint if no later fit came to judge it by."""
        held = self.pending.pop(model, None)
        if held is not None and self.ckpt is not None:
            _save_checkpoint(self.ckpt, held[0], held[1], fit_seed=held[2])

    def _stability_lazily(self, model: str, aux: Mapping[int, float]) -> None:
        """Subsample stability where the family's rule needs it: measure the fit the rule would
        choose (an unmeasured fit counts as stable), and while it proves unstable, the next one
        the rule then chooses. The recommendation is the one measuring every fit would give (a
        fit the rule prefers is measured before any it prefers less); the fits never reached
        keep no stability value, and say why."""
        r = self.rules
        opts = self.inputs.fit_options(self.fit_options.get(model, {}))
        data = self.inputs.for_family(model)
        while True:
            recs = [self.done[(model, kk)] for kk in self.ks]
            _, per_family = _recommend(_build_table(recs), [model], min_share=r.min_share,
                                       silhouette_min=r.silhouette_min, stability_min=r.stability_min,
                                       loo_se_rule=r.loo_se_rule, aux_inertia=aux)
            k = per_family[model]["recommended_k"]
            if k is None:
                break
            rec = self.done[(model, k)]
            if "stability_mean" in rec.row or "stability_note" in rec.row:
                break  # measured (here, or in the checkpointed fit): the rule's choice stands
            t0 = time.perf_counter()
            st = _stability(data, model, k, _child_seed(self.seed_seq, model, k), opts, self.n_sub, rec.result)
            row = dict(rec.row)
            if "stability_error" in st:
                msg = f"stability not measured: {st.pop('stability_error')}"
                row["warnings"] = f"{row['warnings']}; {msg}" if row.get("warnings") else msg
                row["stability_note"] = msg
            row.update(st)
            row["seconds"] = float(row.get("seconds", 0.0)) + time.perf_counter() - t0
            self.done[(model, k)] = dataclasses.replace(rec, row=row)
        for kk in self.ks:
            rec = self.done[(model, kk)]
            if rec.status == "" and rec.error is None and "stability_mean" not in rec.row:
                msg = "stability not measured: the family's rule chose another k without it"
                row = dict(rec.row)
                row["warnings"] = f"{row['warnings']}; {msg}" if row.get("warnings") else msg
                self.done[(model, kk)] = dataclasses.replace(rec, row=row)

    def _skip(self, model: str, kk: int, why: str) -> None:
        row = {"model": model, "k": kk, "status": "skipped"}
        self.done[(model, kk)] = FitRecord(model=model, k=kk, row=row, status="skipped", reason=why)
        self._tick(f"{model} k={kk} (skipped: {why})")

    def _seconds(self, model: str) -> list[float]:
        """Seconds of the family's fits finished in this run (checkpointed ones included)."""
        out = []
        for (m, _), rec in self.done.items():
            sec = rec.row.get("seconds")
            if m == model and rec.status == "" and rec.error is None and sec is not None and np.isfinite(sec):
                out.append(float(sec))
        return out

    # ------------------------------------------------------------------ skip rules
    def _settled(self, aux: Mapping[int, float], pending: int) -> str:
        """Why a Bayesian family need not be fitted at all (its vote cannot change the overall k), or ''."""
        finished = list(dict.fromkeys(m for (m, _) in self.done))
        if not finished:
            return ""
        recs = [self.done[(m, kk)] for m in finished for kk in self.ks if (m, kk) in self.done]
        r = self.rules
        _, per_family = _recommend(_build_table(recs), finished, min_share=r.min_share,
                                   silhouette_min=r.silhouette_min, stability_min=r.stability_min,
                                   loo_se_rule=r.loo_se_rule, aux_inertia=aux, pointwise=_pointwise(recs))
        votes = {m: v["recommended_k"] for m, v in per_family.items()}
        k = vote_settled(votes, pending, self.ks)
        if k is None:
            return ""
        said = ", ".join(f"{m} {v}" for m, v in votes.items() if v is not None)
        return (f"its recommendation cannot change the overall k = {k} ({said}; {pending} Bayesian "
                f"famil{'y' if pending == 1 else 'ies'} left to vote)")

    def _hopeless(self, model: str, kk: int) -> str:
        """Why the Bayesian ``model`` at ``kk`` is hopeless (its EM twin's fit at ``kk`` is degenerate,
        or LOO has clearly peaked below ``kk``), or ''."""
        twin = family(model).em_twin
        if twin is not None and (twin, kk) in self.done:
            rec = self.done[(twin, kk)]
            if rec.result is not None:
                why = hopeless_em_fit(rec.result.memberships, self.rules.min_share, self.inputs.weights)
                if why:
                    return f"the {twin} fit at k={kk} has {why}"
            elif rec.status == "" and rec.error is None:
                share = rec.row.get("smallest_share")
                if share is not None and np.isfinite(share) and share < self.rules.min_share:
                    return f"the {twin} fit at k={kk} has a segment of {_pct(share)} < {_pct_threshold(self.rules.min_share)}"
        fitted = [(k2, self.done[(model, k2)]) for k2 in self.ks if k2 < kk and (model, k2) in self.done]
        prev = [rec for _, rec in fitted if rec.status == "skipped"]
        if prev:  # a smaller k was hopeless: so is every larger one
            return prev[-1].reason
        ok = [(k2, rec) for k2, rec in fitted if rec.status == "" and rec.error is None]
        elpd = [float(rec.row.get("loo", np.nan)) for _, rec in ok]
        se = [float(rec.row.get("loo_se", np.nan)) for _, rec in ok]
        pw = [(rec.result.extras or {}).get("elpd_loo_pointwise") if rec.result is not None else None for _, rec in ok]
        return loo_peaked([k2 for k2, _ in ok], elpd, se, self.rules.loo_se_rule, pw)


#: A family's first fit in a process that took less than this many times ``checkpoint_min_seconds``
#: is checkpointed only if the family's next fit also took ``checkpoint_min_seconds``: the first
#: pays the family's one-off costs, imports and compiling (scikit-learn alone about 1-2 s), that
#: its other fits do not (see :meth:`_Plan._keep`).
FIRST_FIT_FACTOR = 5.0

#: Seconds a second process of the sweep may go without using the CPU before it counts as stuck
#: (stopped; this process fits its families instead). A fit keeps its process on the CPU.
STALL_S = 30.0


def sweep_worker_families(families: Sequence[str]) -> list[str]:
    """The families (not Bayesian, in sweep order) that a second process starts with while this
    one fits the others: the Gaussian mixture (its hierarchical start is the sweep's only compiled
    kernel, so numba's import, kernel loading and, on a first run, compilation happen there
    alongside the k-means fits' scikit-learn import here), else the second family; none with fewer
    than two. Then each process takes the next family neither has taken: this one from the
    front, the second from the back.

    Examples
    --------
    >>> sweep_worker_families(["kmeans", "gmm", "lca"]), sweep_worker_families(["kmeans", "lca"])
    (['gmm'], ['lca'])
    >>> sweep_worker_families(["gmm"])
    []
    """
    families = list(families)
    if len(families) < 2:
        return []
    return ["gmm"] if "gmm" in families else [families[1]]


class _SweepWorker:
    """Some of a sweep's families that are not Bayesian, fitted by a forked copy of this process
    (:class:`latentseg._fork.Forked`) while this one fits the rest.

    Every fit has its own seed and a family's outcome (its fits, elbow extras and stability)
    depends on its own fits only, so the records are the ones one process would make. The
    child sends each fit as it starts and ends (this process says them in its progress, and
    counts them) and each family when it is complete; the child writes its fits' checkpoints
    itself. Each process takes a family by creating its claim file (``O_EXCL``: one of the two
    wins), the child first its :func:`sweep_worker_families`, then whichever the other has not
    taken, from the back. A family the child took but has not completed, because it failed or
    stopped using the CPU (:data:`STALL_S`), is fitted here.
    """

    def __init__(self, plan: _Plan, families: list[str], cheap: Sequence[str]) -> None:
        import tempfile

        from latentseg._fork import Forked

        self.plan, self.families, self.cheap = plan, families, list(cheap)
        self.claims = tempfile.mkdtemp(prefix="latentseg-sweep-")
        self.remote: set[tuple[str, int]] = set()  # fits the child has said it finished
        self.completed: dict[str, dict[int, float]] = {}  # families the child completed: their extras
        self.running: tuple[str, int] | None = None  # the child's fit running, as last heard
        self.said: tuple[str, int] | None = None  # the child's running fit last said in the progress
        plan.worker = self
        try:
            self.forked = Forked(self._work, stream=True)
        except OSError:
            import shutil

            shutil.rmtree(self.claims, ignore_errors=True)
            raise

    @classmethod
    def start(cls, plan: _Plan, families: Sequence[str]) -> _SweepWorker | None:
        from latentseg._fork import fork_workers

        share = sweep_worker_families(families)
        if not share or fork_workers() < 2:
            return None
        try:
            worker = cls(plan, share, families)
        except OSError:  # no temporary folder for the claims or the child's values: one process
            plan.worker = None
            return None
        if worker.forked.pid is None:  # forking failed: one process
            worker.stop()
            return None
        return worker

    def _work(self, send: Callable[[Any], None]) -> bool:
        """(In the child.) Fit the families, saying each fit and each complete family."""
        plan = self.plan
        plan.worker = None

        def progress(done: int, total: int, text: str) -> None:
            model, _, rest = text.partition(" k=")
            kk, _, status = rest.partition(" ")
            send(("running" if status == "(running)" else "finished", model, int(kk), text))

        plan.progress = progress
        for model in self.order(here=False):
            if self.claim(model):
                aux = plan._family(model)
                send(("family", model, [plan.done[(model, kk)] for kk in plan.ks], aux, plan.family_warnings.pop(model, [])))
        return True

    def order(self, *, here: bool) -> list[str]:
        """The order in which this process (``here``) or the child tries to take the families."""
        rest = [m for m in self.cheap if m not in self.families]
        return rest + self.families if here else self.families + rest[::-1]

    def claim(self, model: str) -> bool:
        """Take ``model`` for the calling process: False when the other process has taken it."""
        try:
            os.close(os.open(os.path.join(self.claims, model), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        except OSError:  # the claims cannot be written: each process fits only its own share
            return model in self.families if self.plan.worker is None else model not in self.families
        return True

    def collect(self) -> None:
        """Take in what the child has sent; say its finished fits (and the one it runs, once)."""
        plan = self.plan
        for message in self.forked.received():
            kind, model = message[0], message[1]
            if kind == "family":
                for rec in message[2]:
                    plan.done[(rec.model, rec.k)] = rec
                self.completed[model] = message[3]
                plan.family_warnings[model] = message[4]
                continue
            key, text = (model, message[2]), message[3]
            if kind == "running":
                self.running = key
                continue
            self.remote.add(key)
            if self.running == key:
                self.running = None
            if plan.progress is not None:
                plan.progress(plan.finished(), plan.total, text)

    def finish(self, cheap: Sequence[str], fitted_here: set[str]) -> dict[str, dict[int, float]]:
        """Wait for the child's families (saying its fits meanwhile); a family it does not
        complete is fitted here. Returns the extra inertias of the families not ``fitted_here``."""
        plan = self.plan
        self.idle()
        delay = 0.005
        while self._still_fitting():
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        if self.forked.done():
            self.forked.result(timeout=5.0)  # reaps it; raises its warnings here
            self.collect()
        self.stop()
        out = dict(self.completed)
        for model in cheap:
            if model not in out and model not in fitted_here:  # the child failed or stalled: fitted here
                self.remote = {key for key in self.remote if key[0] != model}
                out[model] = plan._family(model)
        return out

    def idle(self) -> None:
        """The caller's work for this process's idle time (``select``'s ``while_waiting``), once,
        while the child is still fitting."""
        work, self.plan.while_waiting = self.plan.while_waiting, None
        if work is None or self.forked.done():
            return
        try:
            work(self._still_fitting)
        except Exception:  # noqa: BLE001 - the caller's own later step does it again and says what fails
            pass

    def _still_fitting(self) -> bool:
        """Whether the child is still fitting (not done, not stalled); says its news meanwhile:
        its finished fits, and the fit it runs, once."""
        self.collect()
        busy = not self.forked.done() and not self.forked.stalled(STALL_S)
        plan = self.plan
        if busy and self.running is not None and self.running != self.said and plan.progress is not None:
            self.said = self.running
            plan.progress(plan.finished(), plan.total, f"{self.running[0]} k={self.running[1]} (running)")
        return busy

    def stop(self) -> None:
        import shutil

        self.forked.stop()
        self.plan.worker = None
        shutil.rmtree(self.claims, ignore_errors=True)


def _pointwise(records: Sequence[FitRecord]) -> dict[str, dict[int, np.ndarray]]:
    """Per family and k, the pointwise elpd of the Bayesian fits (for the LOO rule's paired SEs)."""
    out: dict[str, dict[int, np.ndarray]] = {}
    for rec in records:
        pw = rec.result.extras.get("elpd_loo_pointwise") if rec.result is not None and rec.result.extras else None
        if pw is not None:
            out.setdefault(rec.model, {})[rec.k] = np.asarray(pw, dtype=float)
    return out


# ---------------------------------------------------------------------------------- helpers
def _check_ks(k: Iterable[int] | int) -> list[int]:
    if isinstance(k, (int, np.integer)):
        k = [int(k)]
    try:
        ks = sorted({int(v) for v in k})
    except (TypeError, ValueError):
        raise ConfigError(f"k must be whole numbers such as 3..7; got {k!r}.") from None
    if not ks:
        raise ConfigError("The k range is empty; give at least one k, e.g. 3..7.")
    if ks[0] < 1:
        raise ConfigError(f"Every k must be at least 1; got {ks[0]}.")
    return ks


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be a fraction in [0, 1); got {value}.")


def _check_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """The sweep's weights as a float array of shape (n,), or None; refused unless positive and finite."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=float)
    if w.shape != (n,):
        raise ConfigError(f"sample_weight must have one weight per respondent, shape ({n},); got shape {w.shape}.")
    bad = np.flatnonzero(~(np.isfinite(w) & (w > 0)))
    if bad.size:
        raise ConfigError(f"sample_weight must be positive and finite; rows {[int(i) for i in bad[:5]]} are not.")
    return w


def _child_seed(seed_seq: np.random.SeedSequence, model: str, k: int) -> int:
    """A fit's own seed from (sweep seed, family, k): independent of the rest of the sweep."""
    child = np.random.SeedSequence(seed_seq.entropy, spawn_key=(family(model).seed_code, int(k)))
    return int(child.generate_state(1)[0])


def child_seed(selection: Selection, model: str, k: int) -> int:
    """The seed the sweep of ``selection`` gave the fit of ``model`` at ``k`` (to refit exactly that fit).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(60, 2))
    >>> sel = select(X, models=["gmm"], k=[2], random_seed=7, stability_subsamples=0)
    >>> sel.result("gmm", 2).provenance["random_seed"] == child_seed(sel, "gmm", 2)
    True
    """
    return _child_seed(np.random.SeedSequence(int(selection.settings["seed_entropy"])), model, k)


def _data_key(model: str) -> str:
    """Which of a sweep's inputs (and data hashes) a family takes."""
    fam = family(model)
    return "ratings" if fam.on_ratings else ("categorical" if fam.categorical else "numeric")


def _opportunity_levels(data: Any) -> Any:
    from latentseg.prepare.encoding import opportunity_levels

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data, dtype=float))
    return opportunity_levels(frame)


def _codes(frame: Any) -> np.ndarray:
    """Categorical table as float codes (for hashing only)."""
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(np.asarray(frame))
    cols = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s):
            cols.append(s.to_numpy(dtype=float, na_value=np.nan))
        else:
            codes = pd.Categorical(s.astype("str").where(s.notna(), None)).codes.astype(float)
            codes[codes < 0] = np.nan
            cols.append(codes)
    return np.column_stack(cols) if cols else np.zeros((len(df), 0))


def _fit_one(data: Any, model: str, k: int, seed: int, opts: Mapping[str, Any], n_sub: int) -> FitRecord:
    """Fit one model and k (with ``n_sub`` subsample refits for stability); a FitError (or any
    engine failure) becomes a failed record."""
    from latentseg.models import fit

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fit(data, model, k, random_seed=seed, **opts)
    except LatentsegError as exc:
        return _failed(model, k, str(exc), time.perf_counter() - t0)
    except ImportError as exc:  # an engine whose dependencies are not installed
        return _failed(model, k, f"the {model} engine is not available ({exc})", time.perf_counter() - t0)
    except (ValueError, RuntimeError, np.linalg.LinAlgError, FloatingPointError) as exc:
        # an engine bug or numerical breakdown must not end a sweep; keep the reason
        msg = f"{type(exc).__name__}: {exc}"
        return _failed(model, k, msg, time.perf_counter() - t0, detail=traceback.format_exc(limit=3))
    messages = []
    for w in caught:
        if issubclass(w.category, LatentsegWarning):
            messages.append(str(w.message))  # kept in the table, not printed once per fit
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    row = _row_from_result(result)
    if messages:
        row["warnings"] = "; ".join(dict.fromkeys(messages))
    if n_sub > 0:
        st = _stability(data, model, k, seed, opts, n_sub, result)
        if "stability_error" in st:
            msg = f"stability not measured: {st.pop('stability_error')}"
            row["warnings"] = f"{row['warnings']}; {msg}" if row.get("warnings") else msg
        row.update(st)
    row["seconds"] = time.perf_counter() - t0
    return FitRecord(model=model, k=k, row=row, result=result, result_dict=result.to_dict())


def _failed(model: str, k: int, message: str, seconds: float, detail: str | None = None) -> FitRecord:
    row: dict[str, Any] = {"model": model, "k": k, "status": "failed", "seconds": seconds, "error": message}
    if detail:
        row["error_detail"] = detail
    return FitRecord(model=model, k=k, row=row, error=message)


def _row_from_result(result: Any) -> dict[str, Any]:
    c = dict(result.criteria)
    row: dict[str, Any] = {"model": result.model, "k": int(result.k), "status": "ok"}
    for col in CRITERIA_COLUMNS:
        if col in c:
            row[col] = _num(c[col])
    row["smallest_share"] = float(np.min(result.shares)) if result.k else float("nan")
    row["converged"] = bool(result.converged)
    d = dict(result.diagnostics)
    if d.get("rhat_max") is not None:
        row["rhat_max"] = _num(d["rhat_max"])
    row["near_singular"] = str(d.get("near_singular_reason") or "")  # the Gaussian mixture's flag
    return row


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _stability(
    data: Any, model: str, k: int, seed: int, opts: Mapping[str, Any], n_sub: int, reference: Any = None
) -> dict[str, Any]:
    from latentseg.choose.stability import stability

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LatentsegWarning)  # the refits' warnings are not news
            st = stability(data, model, k, subsamples=n_sub, random_seed=seed, reference=reference, **opts)
    except (LatentsegError, ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
        return {"stability_error": f"{type(exc).__name__}: {exc}"}
    return {
        "stability_mean": _num(st.mean),
        "stability_min": _num(st.min),
    }


def _aux_inertia(model: str, data: Any, ks: list[int], seed_seq: np.random.SeedSequence, opts: Mapping[str, Any]) -> dict[int, float]:
    """Inertia at ``min(ks) - 1`` and ``max(ks) + 1`` (k = 1 needs no fit: total sum of squares)."""
    out: dict[int, float] = {}
    X = np.asarray(data.to_numpy(dtype=float) if hasattr(data, "to_numpy") else data, dtype=float)
    n = X.shape[0]
    for kk in (ks[0] - 1, ks[-1] + 1):
        if kk < 1 or kk >= n:
            continue
        if kk == 1:
            Xc = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
            w = opts.get("sample_weight")
            if w is None:
                out[kk] = float(((Xc - Xc.mean(axis=0)) ** 2).sum())
            else:  # the weighted inertia weighted k-means reports: sum_i w_i |x_i - weighted mean|^2
                w = np.asarray(w, dtype=float)
                out[kk] = float((w[:, None] * (Xc - np.average(Xc, axis=0, weights=w)) ** 2).sum())
            continue
        rec = _fit_one(data, model, kk, _child_seed(seed_seq, model, kk), opts, 0)
        if rec.error is None and "inertia" in rec.row:
            out[kk] = float(rec.row["inertia"])
    return out


# ---------------------------------------------------------------------------------- checkpoints
def _checkpoint_key(model: str, k: int, dhash: str, seed: int | None, opts: Mapping[str, Any], n_sub: int) -> dict[str, Any]:
    return {
        "version": CHECKPOINT_VERSION,
        "model": model,
        "k": int(k),
        "data_hash": dhash,
        # with no seed, any earlier fit of the same data and settings is as good as a new one
        "random_seed": seed,
        "fit_options": json.loads(json.dumps(dict(opts), default=str)),
        "stability_subsamples": int(n_sub),
    }


def _ckpt_path(ckpt: Path, model: str, k: int) -> Path:
    return ckpt / f"{model}-k{k}.json"


def _result_path(ckpt: Path, model: str, k: int) -> Path:
    return ckpt / f"{model}-k{k}.nc"


def _checksum(body: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _save_checkpoint(ckpt: Path, rec: FitRecord, key: Mapping[str, Any], *, fit_seed: int | None = None) -> None:
    """Write a finished fit: ``<model>-k<k>.nc`` (the result) then ``<model>-k<k>.json`` (its key,
    table row, JSON contract, the SHA-256 of the ``.nc``, the fit's seed and a checksum of the JSON).

    A failed fit is not checkpointed (and an earlier checkpoint of that model and k is removed):
    its row stays in this sweep's table, and a rerun retries it.
    """
    from latentseg.deliver.artifacts import save_result
    from latentseg.io.jsonsafe import json_safe
    from latentseg.prepare.provenance import file_sha256

    path = _ckpt_path(ckpt, rec.model, rec.k)
    model_file = _result_path(ckpt, rec.model, rec.k)
    if rec.error is not None or rec.result is None:
        for stale in (path, model_file):
            try:
                stale.unlink(missing_ok=True)
            except OSError:
                pass
        return
    try:
        path.unlink(missing_ok=True)  # a crash before the new JSON is written leaves no stale pair
        save_result(rec.result, model_file)
        result_sha256 = file_sha256(model_file)
    except (LatentsegError, OSError, ValueError, TypeError):
        return  # not checkpointed: a rerun fits it again
    body = json_safe(
        {
            "key": dict(key),
            "row": {k: v for k, v in rec.row.items() if k != "error_detail"},
            "result": rec.result_dict,
            "error": None,
            "result_file": model_file.name,
            "result_sha256": result_sha256,
            "fit_seed": fit_seed,
        }
    )
    body = json.loads(json.dumps(body))  # the checksum is over what a reader gets back
    # the JSON goes last and atomically: a killed run never leaves a checkpoint naming a half-written .nc
    atomic_write_text(path, json.dumps({**body, "checksum": _checksum(body)}))


def _drop_checkpoint(ckpt: Path, model: str, k: int) -> None:
    """Remove a checkpoint of ``model`` at ``k`` (this run refits it rather than keep it)."""
    for stale in (_ckpt_path(ckpt, model, k), _result_path(ckpt, model, k)):
        try:
            stale.unlink(missing_ok=True)
        except OSError:
            pass


def _discard(path: Path, why: str) -> None:
    warnings.warn(f"Checkpoint '{path}' {why}; it was discarded and the fit is done again.", LatentsegWarning,
                  stacklevel=5)
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _load_checkpoint(ckpt: Path, model: str, k: int, key: Mapping[str, Any], *, n: int | None = None,
                     fit_seed: int | None = None) -> FitRecord | None:
    """The checkpointed fit of ``model`` at ``k`` when it is the fit this sweep would make, else
    ``None`` (refit). A checkpoint for other settings (seed, options) or of an older layout is
    replaced quietly; one that is damaged, edited, renamed from another fit, fitted on other data,
    or whose ``.nc`` does not match its recorded hash is discarded with a LatentsegWarning."""
    path = _ckpt_path(ckpt, model, k)
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return _discard(path, "is not readable JSON (damaged or half-written)")
    if not isinstance(payload, dict) or not isinstance(payload.get("key"), dict):
        return _discard(path, "is not a latentseg sweep checkpoint")
    stored = dict(payload["key"])
    if stored.get("version") != CHECKPOINT_VERSION:
        return None  # written by another layout: refitted (and overwritten)
    body = {name: v for name, v in payload.items() if name != "checksum"}
    try:
        intact = payload.get("checksum") == _checksum(body)
    except (ValueError, TypeError, RecursionError):
        intact = False
    if not intact:
        return _discard(path, "does not match its checksum (edited or damaged)")
    if stored.get("model") != model or stored.get("k") != int(k):
        return _discard(path, f"holds the fit of {stored.get('model')} with k = {stored.get('k')}, not {model} with "
                              f"k = {k} (renamed or copied from another fit)")
    want = json.loads(json.dumps(dict(key)))
    if stored.get("data_hash") != want["data_hash"]:
        return _discard(path, f"was fitted on other data (data hash {str(stored.get('data_hash'))[:16]}, this sweep's "
                              f"{want['data_hash'][:16]})")
    if want["random_seed"] is None:
        stored.pop("random_seed", None)
        want.pop("random_seed", None)
    if stored != want:
        return None  # other settings: refit (and overwrite)
    row = payload.get("row")
    if payload.get("error") is not None or not isinstance(row, dict) or row.get("status") != "ok":
        return None  # a failed fit is never replayed: retried
    if key["random_seed"] is not None and fit_seed is not None and payload.get("fit_seed") != fit_seed:
        return None  # seeds derived another way (another latentseg): refit
    result_file = _result_path(ckpt, model, k)
    if payload.get("result_file") != result_file.name:
        return _discard(path, f"names the result file {str(payload.get('result_file'))!r}, not {result_file.name!r}")
    if not result_file.is_file():
        return _discard(path, f"has no result file ({result_file.name} is missing)")
    from latentseg.deliver.artifacts import load_result
    from latentseg.prepare.provenance import file_sha256

    if file_sha256(result_file) != payload.get("result_sha256"):
        return _discard(path, f"does not match {result_file.name}, whose SHA-256 is not the one recorded (replaced, "
                              "renamed from another fit, or damaged)")
    try:
        result = load_result(result_file)
    except (LatentsegError, OSError, ValueError, KeyError):
        return _discard(path, f"has an unreadable result file {result_file.name}")
    seed_held = dict(result.provenance).get("random_seed")
    other_seed = fit_seed is not None and key["random_seed"] is not None and seed_held is not None and (
        str(seed_held) != str(fit_seed))
    if result.model != model or int(result.k) != int(k) or (n is not None and int(result.n) != int(n)) or other_seed:
        return _discard(path, f"has a result file holding {result.model} with k = {result.k} and n = {result.n} "
                              f"(seed {seed_held}), not this sweep's {model} with k = {k}" + (f" and n = {n}" if n else ""))
    row = {name: (float("nan") if v is None else v) for name, v in row.items()}
    row.pop("error", None)
    return FitRecord(
        model=model,
        k=int(k),
        row=row,
        result=result,
        result_dict=payload.get("result"),
        error=None,
        from_checkpoint=True,
    )


# ---------------------------------------------------------------------------------- recommendation
def _build_table(records: Sequence[FitRecord]) -> pd.DataFrame:
    rows = []
    for rec in records:
        row = {"model": rec.model, "k": rec.k, "status": rec.status or ("ok" if rec.error is None else "failed")}
        for col in CRITERIA_COLUMNS:
            row[col] = rec.row.get(col, np.nan)
        if rec.error is not None or rec.status:
            row["converged"] = False
        for extra in ("rhat_max", "seconds"):
            row[extra] = rec.row.get(extra, np.nan)
        row["error"] = rec.error if rec.error is not None else rec.reason
        w = rec.row.get("warnings")
        row["warnings"] = w if isinstance(w, str) else ""
        row["near_singular"] = str(rec.row.get("near_singular") or "")
        rows.append(row)
    cols = ["model", "k", "status", *CRITERIA_COLUMNS, "rhat_max", "seconds", "error", "warnings", "near_singular"]
    table = pd.DataFrame(rows, columns=cols)
    for col in cols:
        if col in ("model", "status", "error", "warnings", "near_singular"):
            continue
        if col == "converged":
            table[col] = table[col].astype(bool)
        elif col in ("k",):
            table[col] = table[col].astype(int)
        else:
            table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    return table


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pct_threshold(x: float) -> str:
    return f"{100 * x:g}%"


def _exclusion(row: Mapping[str, Any], *, min_share: float, silhouette_min: float, stability_min: float) -> str:
    """Why a fit is not admissible ('' when it is)."""
    k = int(row["k"])
    if row["status"] in ("skipped", "stopped"):
        return f"k={k} {row['status']}: {row['error']}"
    if row["status"] != "ok":
        return f"k={k} failed: {row['error']}"
    if not bool(row["converged"]):
        rh = row.get("rhat_max")
        extra = f" (R-hat {rh:.3f})" if rh is not None and np.isfinite(rh) else ""
        return f"k={k} excluded: not converged{extra}"
    if row.get("near_singular"):
        return f"k={k} excluded: {row['near_singular']}"
    share = row["smallest_share"]
    if np.isfinite(share) and share < min_share:
        return f"k={k} rejected: smallest segment {_pct(share)} < {_pct_threshold(min_share)}"
    if family(row["model"]).criterion == "elbow":
        sil = row["silhouette"]
        if np.isfinite(sil) and sil < silhouette_min:
            return f"k={k} rejected: silhouette {sil:.3f} < {silhouette_min:g}"
    stab = row["stability_mean"]
    if np.isfinite(stab) and stab < stability_min:
        return f"k={k} rejected: unstable across subsamples (mean ARI {stab:.2f} < {stability_min:g})"
    return ""


def loo_elpd(table: pd.DataFrame) -> pd.Series:
    """``elpd_loo`` (higher is better): the Bayesian engines report ``loo`` on the elpd scale."""
    return table["loo"].astype(float)


def loo_se_elpd(table: pd.DataFrame) -> pd.Series:
    """The standard error of ``elpd_loo``."""
    return table["loo_se"].astype(float)


def _recommend(
    table: pd.DataFrame,
    models: Sequence[str],
    *,
    min_share: float,
    silhouette_min: float,
    stability_min: float,
    loo_se_rule: float,
    aux_inertia: Mapping[int, float],
    pointwise: Mapping[str, Mapping[int, np.ndarray]] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    pointwise = pointwise or {}
    excluded = [
        _exclusion(row, min_share=min_share, silhouette_min=silhouette_min, stability_min=stability_min)
        for row in table.to_dict(orient="records")
    ]
    table = table.assign(admissible=[e == "" for e in excluded], excluded=excluded)
    # keep the documented column order: criteria, then admissible / excluded, then bookkeeping
    front = ["model", "k", "status", *CRITERIA_COLUMNS, "admissible", "excluded"]
    table = table[front + [c for c in table.columns if c not in front]]

    per_family: dict[str, dict[str, Any]] = {}
    for model in models:
        sub = table[table["model"] == model].sort_values("k")
        criterion = FAMILY_RULES[model]
        excl = [{"k": int(r.k), "reason": r.excluded} for r in sub.itertuples() if r.excluded]
        ok = sub[sub["admissible"]]
        if criterion == "bic":
            chosen, best, sentence = _rule_min(sub, ok, "bic", "BIC")
        elif criterion == "elbow":
            chosen, best, sentence = _rule_elbow(model, sub, ok, aux_inertia)
        else:
            chosen, best, sentence = _rule_loo(sub, ok, loo_se_rule, pointwise.get(model, {}))
        if len(sub) and (sub["status"] == "skipped").all():
            sentence = f"{model}: not fitted, {sub['error'].iloc[0]} (all_k / --all-k fits it)."
        elif excl:
            sentence += " " + "; ".join(e["reason"] for e in excl) + "."
        per_family[model] = {
            "recommended_k": chosen,
            "best_k": best,
            "criterion": criterion,
            "rule": sentence,
            "excluded": excl,
        }
    return table, per_family


def _rule_min(sub: pd.DataFrame, ok: pd.DataFrame, col: str, label: str) -> tuple[int | None, int | None, str]:
    fam = sub["model"].iloc[0] if len(sub) else "?"
    valid = sub[np.isfinite(sub[col])]
    best = int(valid.loc[valid[col].idxmin(), "k"]) if len(valid) else None
    okv = ok[np.isfinite(ok[col])]
    if okv.empty:
        return None, best, f"{fam}: no admissible fit, so no recommendation."
    row = okv.loc[okv[col].idxmin()]
    k = int(row["k"])
    s = f"{fam}: {label} is lowest at k={k} ({row[col]:.1f}) among admissible fits"
    if best is not None and best != k:
        s += f" (k={best} has the lowest {label} overall but is not admissible)"
    return k, best, s + "."


def _rule_elbow(fam: str, sub: pd.DataFrame, ok: pd.DataFrame, aux: Mapping[int, float]) -> tuple[int | None, int | None, str]:
    curve = {int(r.k): float(r.inertia) for r in sub.itertuples() if np.isfinite(r.inertia)}
    ext = {**{int(kk): float(v) for kk, v in aux.items()}, **curve}
    ks = sorted(ext)
    idx = elbow_index(ks, [ext[kk] for kk in ks])
    elbow = ks[idx] if idx is not None else None
    if elbow is not None and elbow not in curve:
        elbow = None  # the elbow fell on an auxiliary point outside the range
    admissible = set(int(v) for v in ok["k"])
    if elbow is not None and elbow in admissible:
        sil = float(sub.loc[sub["k"] == elbow, "silhouette"].iloc[0])
        sil_txt = f", silhouette {sil:.2f}" if np.isfinite(sil) else ""
        okv = ok[np.isfinite(ok["silhouette"])]
        if len(okv) and int(okv.loc[okv["silhouette"].idxmax(), "k"]) != elbow:
            best = okv.loc[okv["silhouette"].idxmax()]
            sil_txt += f" (the highest silhouette is at k={int(best['k'])}, {best['silhouette']:.2f})"
        return elbow, elbow, f"{fam}: the inertia curve bends (elbow) at k={elbow}{sil_txt}."
    okv = ok[np.isfinite(ok["silhouette"])]
    if okv.empty:
        why = "no admissible fit" if not admissible else "no silhouette for admissible fits"
        where = f"the elbow is at k={elbow} but it is not admissible; " if elbow is not None else ""
        return None, elbow, f"{fam}: {where}{why}, so no recommendation."
    row = okv.loc[okv["silhouette"].idxmax()]
    k = int(row["k"])
    if elbow is None:
        lead = "the inertia curve has no clear elbow in the range"
    else:
        lead = f"the inertia elbow is at k={elbow} but that fit is not admissible"
    return k, elbow, f"{fam}: {lead}; the admissible fit with the highest silhouette is k={k} ({row['silhouette']:.2f})."


def _rule_loo(
    sub: pd.DataFrame, ok: pd.DataFrame, se_rule: float, pointwise: Mapping[int, np.ndarray]
) -> tuple[int | None, int | None, str]:
    fam = sub["model"].iloc[0] if len(sub) else "?"
    elpd_all = loo_elpd(sub)
    best_all = int(sub.loc[elpd_all.idxmax(), "k"]) if elpd_all.notna().any() else None
    if ok.empty or not loo_elpd(ok).notna().any():
        return None, best_all, f"{fam}: no admissible fit with LOO, so no recommendation."
    ks = [int(v) for v in ok["k"]]
    pw = [pointwise.get(kk) for kk in ks]
    chosen, best = loo_parsimony(ks, loo_elpd(ok).tolist(), loo_se_elpd(ok).tolist(), se_rule, pw)
    e_best = float(loo_elpd(ok[ok["k"] == best]).iloc[0])
    se_best = float(loo_se_elpd(ok[ok["k"] == best]).iloc[0])
    paired = pointwise.get(best) is not None and (chosen == best or pointwise.get(chosen) is not None)
    which = " (SE of the paired pointwise difference)" if paired else ""
    s = f"{fam}: LOO (elpd) is best at k={best} ({e_best:.1f}, SE {se_best:.1f}) among admissible fits"
    if chosen != best:
        e_c = float(loo_elpd(ok[ok["k"] == chosen]).iloc[0])
        s += (
            f"; k={chosen} ({e_c:.1f}) is the smallest k within {se_rule:g} SE of the best{which}, so the "
            "simpler model is kept (LOO barely penalises extra segments)"
        )
    else:
        s += f"; no smaller k is within {se_rule:g} SE of it{which}"
    return chosen, best_all, s + "."


def _overall(
    per_family: Mapping[str, Mapping[str, Any]],
    *,
    min_share: float,
    silhouette_min: float | None = None,
    stability_min: float | None = None,
) -> tuple[int | None, str]:
    recs = {m: v["recommended_k"] for m, v in per_family.items() if v["recommended_k"] is not None}
    family_lines = " ".join(v["rule"] for v in per_family.values())
    if not recs:
        return None, (
            "No k can be recommended: no family has an admissible fit (each must have converged and "
            f"have a smallest segment of at least {_pct_threshold(min_share)}). " + family_lines
        )
    votes = Counter(recs.values())
    top = max(votes.values())
    tied = sorted(k for k, v in votes.items() if v == top)
    k = tied[0]
    agree = [m for m, v in recs.items() if v == k]
    others = [f"{m} says {v}" for m, v in recs.items() if v != k]
    if len(recs) == 1:
        head = f"Recommended k = {k} ({agree[0]}, the only family with a recommendation)."
    elif not others:
        head = f"Recommended k = {k}: every family agrees ({', '.join(agree)})."
    else:
        head = f"Recommended k = {k}: {len(agree)} of {len(recs)} families agree ({', '.join(agree)}); {', '.join(others)}."
        if len(tied) > 1:
            head += f" Tie between k = {', '.join(map(str, tied))}: the smaller k is kept (parsimony)."
    conditions = ["converged", f"smallest segment at least {_pct_threshold(min_share)}"]
    if stability_min is not None:
        conditions.append(f"mean subsample ARI at least {stability_min:g}")
    elbow = [family(m).title for m, v in per_family.items() if v["criterion"] == "elbow"]
    if silhouette_min is not None and elbow:
        conditions.append(f"{', '.join(elbow)} silhouette at least {silhouette_min:g}")
    criteria = {"bic": "lowest BIC", "elbow": "inertia elbow", "loo": "LOO with parsimony"}
    used = ", ".join(dict.fromkeys(criteria[v["criterion"]] for v in per_family.values()))
    basis = (
        f" Rule: each family recommends the k its criterion prefers ({used}) among admissible fits "
        f"({', '.join(conditions)}); the overall k is the one most families recommend, ties going "
        "to the smaller k."
    )
    return k, head + basis + " " + family_lines
