"""The one result type every model family returns: :class:`SegmentationResult`.

Segments are numbered 1..k. :meth:`SegmentationResult.canonical` puts them in the canonical order
(largest share first); every engine returns its result already in canonical order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.io.jsonsafe import json_safe

__all__ = ["SegmentationResult", "JSON_SCHEMA_VERSION"]

#: Version of the machine-readable JSON contract (``to_dict``); bump on any breaking change.
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True, eq=False, repr=False)
class SegmentationResult:
    """A fitted segmentation, the same for every model family.

    Attributes
    ----------
    model : str
        One of ``"kmeans"``, ``"gmm"``, ``"lca"``, ``"bayes-gmm"``, ``"bayes-lca"``.
    k : int
        Number of segments.
    respondent_ids : pandas.Index, length n
        Respondent ids, in the order of the rows of ``memberships``.
    feature_names : tuple of str, length d
        The columns the model was fitted on (outcomes, factors or indicators).
    memberships : ndarray, shape (n, k)
        Membership probabilities (posterior mean for Bayesian fits; 0/1 for k-means). Rows sum to 1.
    centers : ndarray, shape (k, d)
        Segment centers in the units of the fitted data (opportunity-score units for a survey;
        for latent class models the expected indicator level or category code).
    shares : ndarray, shape (k,)
        Segment shares (fractions in [0, 1], summing to 1).
    share_lower, share_upper : ndarray, shape (k,)
        Bounds of the share interval.
    interval_method : str
        What the interval is, e.g. ``"95% credible (equal-tailed)"``, ``"95% bootstrap"``,
        ``"95% Wilson"``.
    criteria : mapping
        Fit criteria: ``loglik, n_params, bic, aic, icl, sabic, caic, entropy, relative_entropy``
        for likelihood models; ``waic, waic_se, loo, loo_se`` for Bayesian ones;
        ``inertia, silhouette`` for k-means. Missing ones are absent (never made up).
    diagnostics : mapping
        ``converged`` (bool), ``warnings`` (list of str) and engine-specific entries: ``n_iter``,
        ``n_starts``, ``n_best`` (starts reaching the best log-likelihood), ``rhat_max``,
        ``ess_bulk_min``, ``divergences``, ``approximate`` ...
    provenance : mapping
        ``version``, ``random_seed``, ``data_hash``, ``created`` and the model ``config``.
    settings : mapping
        Model options as given (``covariance``, ``n_init`` ...).
    params : mapping of str to ndarray
        Per-segment parameters; axis 0 of every array is the segment axis (length k). Enough,
        with ``shared_params``, to score new respondents (see :func:`latentseg.models.predict_proba`).
    shared_params : mapping of str to ndarray
        Parameters not indexed by segment (a tied covariance, ordinal cut points, ...).
    center_intervals : ndarray, shape (k, d, 2), optional
        Interval on each center (Bayesian fits, bootstrap).
    membership_intervals : ndarray, shape (n, k, 2), optional
        Interval on each membership probability (Bayesian fits).
    labels : tuple of str, optional
        Segment names, length k (set by profiling / config).
    posterior : xarray.DataTree, optional
        The relabelled posterior (Bayesian fits), with dims ``chain, draw, segment`` and
        ``outcome`` / ``indicator`` / ``respondent`` where they apply: an ArviZ-ready tree with
        groups ``posterior``, ``sample_stats``, ``log_likelihood`` and ``observed_data`` (the
        log-likelihood thinned or in float32 beyond a size; see ``keep_log_likelihood`` in
        :func:`~latentseg.models.bayes.engine.fit_bayes_gmm`), also reachable as :attr:`idata`.
    extras : mapping
        Engine-specific tables (e.g. item-response probabilities, loadings map) kept as
        DataFrames / arrays; saved with the model.
    sample_weight : ndarray, shape (n,), optional
        The survey weights the model was fitted with (aligned with ``respondent_ids``; ``None``
        for an unweighted fit). Shares and their intervals are then weighted (design-based).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> z = np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0]])
    >>> r = SegmentationResult.from_memberships("gmm", z, centers=np.array([[1.0], [2.0]]),
    ...                                         feature_names=("x",))
    >>> r.assignment.tolist()
    [1, 2, 1]
    >>> r.relabel([2, 1]).assignment.tolist()
    [2, 1, 2]
    """

    model: str
    k: int
    respondent_ids: pd.Index
    feature_names: tuple[str, ...]
    memberships: np.ndarray
    centers: np.ndarray
    shares: np.ndarray
    share_lower: np.ndarray
    share_upper: np.ndarray
    interval_method: str
    criteria: Mapping[str, float] = field(default_factory=dict)
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, np.ndarray] = field(default_factory=dict)
    shared_params: Mapping[str, np.ndarray] = field(default_factory=dict)
    center_intervals: np.ndarray | None = None
    membership_intervals: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    posterior: Any = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    sample_weight: np.ndarray | None = None

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        z = np.asarray(self.memberships, dtype=float)
        if z.ndim != 2 or z.shape[1] != self.k:
            raise ValueError(f"memberships must have shape (n, {self.k}); got {z.shape}.")
        if len(self.respondent_ids) != z.shape[0]:
            raise ValueError("respondent_ids and memberships disagree on n.")
        if self.sample_weight is not None and np.shape(self.sample_weight) != (z.shape[0],):
            raise ValueError(f"sample_weight must have shape ({z.shape[0]},); got {np.shape(self.sample_weight)}.")
        if np.asarray(self.centers).shape[0] != self.k:
            raise ValueError("centers must have k rows.")
        for name, arr in self.params.items():
            if np.asarray(arr).shape[:1] != (self.k,):
                raise ValueError(f"params[{name!r}] must have the segment axis (length k) first.")

    @classmethod
    def from_memberships(
        cls,
        model: str,
        memberships: np.ndarray,
        *,
        centers: np.ndarray,
        feature_names: Sequence[str],
        respondent_ids: Sequence[Any] | pd.Index | None = None,
        shares: np.ndarray | None = None,
        share_interval: tuple[np.ndarray, np.ndarray] | None = None,
        interval_method: str | None = None,
        sample_weight: np.ndarray | None = None,
        **kwargs: Any,
    ) -> SegmentationResult:
        """Build a result from memberships, filling shares (mean membership) and a Wilson
        interval (on the expected counts) where not given, and return it in canonical order.

        With ``sample_weight`` the shares are the weighted mean memberships and the interval is
        design-based: Wilson's at the Taylor-linearised effective n of each share
        (:func:`latentseg._stats.weighted_share_interval`; docs/methods.md, "Survey weights (EM)").

        Parameters
        ----------
        model : str
        memberships : ndarray, shape (n, k)
        centers : ndarray, shape (k, d)
        feature_names : sequence of str, length d
        respondent_ids : sequence, length n, optional
            Defaults to ``1..n``.
        shares : ndarray, shape (k,), optional
            Defaults to the column means of ``memberships``.
        share_interval : (lower, upper), optional
            Defaults to a 95% Wilson interval.
        interval_method : str, optional
        sample_weight : ndarray, shape (n,), optional
            Survey weights (positive); kept in the result.
        **kwargs
            Any other field of :class:`SegmentationResult`.
        """
        from latentseg._stats import weighted_share_interval, wilson_interval

        z = np.asarray(memberships, dtype=float)
        n, k = z.shape
        ids = pd.Index(respondent_ids if respondent_ids is not None else np.arange(1, n + 1))
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w is not None and w.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},); got {w.shape}.")
        if w is not None:  # weighted shares, design-based interval
            sh, lo, hi, method = weighted_share_interval(z, w, shares)
        else:
            sh = np.asarray(shares, dtype=float) if shares is not None else z.mean(axis=0)
            lo, hi = wilson_interval(sh * n, n)
            method = "95% Wilson"
        if share_interval is None:
            method = interval_method or method
        else:
            lo, hi = (np.asarray(a, dtype=float) for a in share_interval)
            method = interval_method or "95% interval"
        res = cls(
            model=model,
            k=k,
            respondent_ids=ids,
            feature_names=tuple(str(f) for f in feature_names),
            memberships=z,
            centers=np.asarray(centers, dtype=float),
            shares=sh,
            share_lower=lo,
            share_upper=hi,
            interval_method=method,
            sample_weight=w,
            **kwargs,
        )
        return res.canonical()

    # ------------------------------------------------------------------ derived
    @property
    def n(self) -> int:
        """Number of respondents."""
        return int(self.memberships.shape[0])

    @property
    def assignment(self) -> np.ndarray:
        """Modal segment of each respondent, shape (n,), values 1..k."""
        return np.argmax(self.memberships, axis=1) + 1

    @property
    def converged(self) -> bool:
        """Whether the engine's diagnostics call the fit converged."""
        return bool(self.diagnostics.get("converged", True))

    @property
    def idata(self) -> Any:
        """The posterior as ArviZ reads it (Bayesian fits; ``None`` otherwise): the same
        :class:`xarray.DataTree` as :attr:`posterior`, with groups ``posterior``,
        ``sample_stats``, ``log_likelihood`` and ``observed_data``, for ``az.summary(r.idata)``,
        ``az.plot_trace(r.idata)``, ``az.loo(r.idata)`` and ``az.compare``."""
        return self.posterior

    @property
    def segment_labels(self) -> tuple[str, ...]:
        """Segment names, or ``"Segment 1".."Segment k"`` when none were given."""
        return self.labels or tuple(f"Segment {j + 1}" for j in range(self.k))

    # ------------------------------------------------------------------ relabelling
    def relabel(self, permutation: Sequence[int]) -> SegmentationResult:
        """Reorder segments: new segment ``j`` (1-based) is old segment ``permutation[j-1]``.

        Parameters
        ----------
        permutation : sequence of int, length k
            A permutation of ``1..k`` (1-based, as segments are numbered).

        Returns
        -------
        SegmentationResult
            A new result; every per-segment array (memberships, centers, shares, intervals,
            params, labels, the posterior's ``segment`` dim) is permuted consistently.
        """
        perm = np.asarray(permutation, dtype=int) - 1
        if sorted(perm.tolist()) != list(range(self.k)):
            raise ValueError(f"permutation must be a permutation of 1..{self.k}; got {list(permutation)}.")

        def take(a: np.ndarray | None, axis: int = 0) -> np.ndarray | None:
            return None if a is None else np.take(np.asarray(a), perm, axis=axis)

        posterior = self.posterior
        if posterior is not None:
            posterior = _permute_posterior(posterior, perm)
        extras = _permute_covariates(dict(self.extras), perm)
        extras = {key: val if key in _COVARIATE_KEYS else _permute_extra(val, perm) for key, val in extras.items()}
        return dataclasses.replace(
            self,
            memberships=take(self.memberships, 1),
            centers=take(self.centers),
            shares=take(self.shares),
            share_lower=take(self.share_lower),
            share_upper=take(self.share_upper),
            params={k: take(v) for k, v in self.params.items()},
            center_intervals=take(self.center_intervals),
            membership_intervals=take(self.membership_intervals, 1),
            labels=None if self.labels is None else tuple(self.labels[i] for i in perm),
            posterior=posterior,
            extras=extras,
        )

    def canonical(self) -> SegmentationResult:
        """The same result with segments ordered largest share first (ties: by first center)."""
        order = np.lexsort((np.asarray(self.centers)[:, 0] if self.centers.size else np.zeros(self.k), -self.shares))
        if np.array_equal(order, np.arange(self.k)):
            return self
        return self.relabel(order + 1)

    def with_labels(self, labels: Sequence[str]) -> SegmentationResult:
        """Return a copy with segment names set (length k)."""
        if len(labels) != self.k:
            raise ValueError(f"need {self.k} labels; got {len(labels)}.")
        return dataclasses.replace(self, labels=tuple(str(x) for x in labels))

    # ------------------------------------------------------------------ display
    def _key_criterion(self) -> str | None:
        from latentseg._display import number

        c = self.criteria
        for key, label in (("bic", "BIC"), ("loo", "elpd LOO"), ("waic", "elpd WAIC"), ("silhouette", "silhouette")):
            v = c.get(key)
            if v is not None and number(v) != "n/a":
                return f"{label} {number(v)}"
        return None

    def _warnings(self) -> list[str]:
        w = self.diagnostics.get("warnings") or []
        return [str(x) for x in ([w] if isinstance(w, str) else w)]

    def __repr__(self) -> str:
        """``<SegmentationResult gmm k=3 n=385: 38% [33-43], ... (95% Wilson); BIC 27,912.4; converged>``
        and a few lines (names, features, warnings); never the arrays."""
        from latentseg._display import clip, finish_repr, share_text

        shown = min(self.k, 8)
        shares = ", ".join(share_text(*v) for v in zip(self.shares[:shown], self.share_lower[:shown], self.share_upper[:shown]))
        if self.k > shown:
            shares += f", ... ({self.k - shown} more)"
        head = f"<SegmentationResult {self.model} k={self.k} n={self.n}: {shares} ({self.interval_method})"
        crit = self._key_criterion()
        head += (f"; {crit}" if crit else "") + ("; converged>" if self.converged else "; NOT CONVERGED>")
        lines = [head]
        if self.labels is not None:
            lines.append("  segments: " + clip(", ".join(clip(x, 30) for x in self.labels), 200))
        d = len(self.feature_names)
        lines.append(f"  fitted on {d} feature{'s' * (d != 1)}: " + clip(", ".join(self.feature_names), 120))
        warns = self._warnings()
        lines.extend(f"  warning: {clip(w, 160)}" for w in warns[:3])
        if len(warns) > 3:
            lines.append(f"  ... and {len(warns) - 3} more warnings (result.diagnostics['warnings'])")
        return finish_repr(lines)

    def _repr_html_(self) -> str:
        """A compact table for Jupyter: segments with share and interval, the key criteria,
        convergence and warnings highlighted. All text is HTML-escaped."""
        from latentseg._display import Raw, badge, box, esc, number, pct, table

        status = badge("converged", "ok") if self.converged else badge("not converged", "bad")
        warns = self._warnings()
        title = Raw(
            f"SegmentationResult: {esc(self.model)}, k={self.k}, n={self.n:,} {status}"
            + (f" {badge(f'{len(warns)} warning' + 's' * (len(warns) != 1), 'warn')}" if warns else "")
        )
        rows = [
            (j + 1, self.segment_labels[j], pct(self.shares[j], 1),
             f"{pct(self.share_lower[j], 1)} - {pct(self.share_upper[j], 1)}")
            for j in range(self.k)
        ]
        seg = table(["Segment", "Name", "Share", f"Interval ({self.interval_method})"], rows)
        keys = ("loglik", "n_params", "bic", "aic", "icl", "entropy", "relative_entropy", "waic", "loo",
                "silhouette", "inertia")
        crit = [(key, number(self.criteria[key])) for key in keys if key in self.criteria]
        crit_html = Raw(
            '<div style="margin-top:4px">'
            + "; ".join(f"{esc(key)} <b>{esc(val)}</b>" for key, val in crit)
            + "</div>"
        ) if crit else None
        warn_html = Raw(
            '<ul style="margin:4px 0">'
            + "".join(f"<li>{badge('warning', 'warn')} {esc(w)}</li>" for w in warns)
            + "</ul>"
        ) if warns else None
        return box(title, seg, crit_html, warn_html)

    # ------------------------------------------------------------------ export
    def to_frame(self) -> pd.DataFrame:
        """Respondent-level table: ``segment`` (modal, 1..k) and ``p_1..p_k``.

        Returns
        -------
        DataFrame, shape (n, k + 1), indexed by respondent id.
            The index keeps the name the respondent ids had at fit time (the input's index name);
            ids without a name are named ``respondent_id`` (as before).
        """
        name = self.respondent_ids.name
        index = pd.Index(self.respondent_ids).rename("respondent_id" if name is None else name)
        df = pd.DataFrame(self.memberships, index=index, columns=[f"p_{j + 1}" for j in range(self.k)])
        df.insert(0, "segment", self.assignment)
        return df

    def segments_frame(self) -> pd.DataFrame:
        """Segment-level table: label, share, interval, expected count, and the centers.

        Returns
        -------
        DataFrame, shape (k, 6 + d), indexed by segment id 1..k.
        """
        df = pd.DataFrame(
            {
                "label": list(self.segment_labels),
                "share": self.shares,
                "share_lower": self.share_lower,
                "share_upper": self.share_upper,
                "interval": self.interval_method,
                "expected_n": self.memberships.sum(axis=0),
            },
            index=pd.RangeIndex(1, self.k + 1, name="segment"),
        )
        centers = pd.DataFrame(self.centers, index=df.index, columns=list(self.feature_names))
        return pd.concat([df, centers], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable JSON contract (see shared/DESIGN.md), JSON-safe.

        Returns
        -------
        dict
            ``model, k, n, loglik, n_params, bic, aic, converged, segments, criteria,
            diagnostics`` (+ ``waic``, ``loo``, ``rhat_max``, ``divergences`` for Bayesian fits),
            ``schema_version``, ``weights`` (``None`` for an unweighted fit, else ``{"column":
            provenance["weight_column"], "effective_n": Kish's effective n}``). Each segment's
            ``"interval"`` names the method of its share interval. For the families fitted on
            ratings each segment also carries ``"opportunity"`` (:meth:`opportunity_records`).
        """
        c = dict(self.criteria)
        d = dict(self.diagnostics)
        out: dict[str, Any] = {
            "schema_version": JSON_SCHEMA_VERSION,
            "model": self.model,
            "k": self.k,
            "n": self.n,
            "loglik": c.get("loglik"),
            "n_params": c.get("n_params"),
            "bic": c.get("bic"),
            "aic": c.get("aic"),
            "converged": self.converged,
            "segments": [
                {
                    "id": j + 1,
                    "label": self.segment_labels[j],
                    "share": self.shares[j],
                    "share_lower": self.share_lower[j],
                    "share_upper": self.share_upper[j],
                    "interval": self.interval_method,
                    "center": dict(zip(self.feature_names, self.centers[j])),
                }
                for j in range(self.k)
            ],
            "criteria": c,
            "diagnostics": d,
        }
        for seg, opp in zip(out["segments"], self.opportunity_records()):
            seg["opportunity"] = opp
        if self.model.startswith("bayes"):
            for key in ("waic", "waic_se", "loo", "loo_se"):
                out[key] = c.get(key)
            for key in ("rhat_max", "divergences"):
                out[key] = d.get(key)
        sample_weight = getattr(self, "sample_weight", None)
        out["weights"] = None
        if sample_weight is not None:
            from latentseg._stats import effective_n

            out["weights"] = {"column": dict(self.provenance).get("weight_column"),
                              "effective_n": round(effective_n(sample_weight), 1)}
        out["settings"] = dict(self.settings)
        out["provenance"] = dict(self.provenance)
        return json_safe(out)

    def opportunity_records(self) -> list[list[dict[str, Any]]]:
        """Per segment, the segment opportunity of every outcome with its interval, for the families
        fitted on ratings (whose ``centers`` are the expected opportunity scores their rating
        distributions imply): ``[[{"outcome": "o01", "mean": 12.4, "lower": 11.6, "upper": 13.1}, ...], ...]``.
        Empty for every other family (their centers are in the units of their data).
        """
        from latentseg.models.families import FAMILIES

        fam = FAMILIES.get(self.model)
        if fam is None or not fam.on_ratings:
            return []
        ci = self.center_intervals
        ci = np.full(np.asarray(self.centers).shape + (2,), np.nan) if ci is None else np.asarray(ci, dtype=float)
        return [
            [
                {"outcome": o, "mean": float(self.centers[j, t]), "lower": float(ci[j, t, 0]), "upper": float(ci[j, t, 1])}
                for t, o in enumerate(self.feature_names)
            ]
            for j in range(self.k)
        ]

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())``."""
        return json.dumps(self.to_dict(), **kwargs)


#: The extras of a covariate model (:mod:`latentseg.decide.covariates`): coefficients against
#: segment 1, so a relabelling re-expresses them rather than renumbering them.
_COVARIATE_KEYS = ("covariates", "covariate_coef", "covariate_vcov", "covariate_draws")


def _permute_covariates(extras: dict[str, Any], perm: np.ndarray) -> dict[str, Any]:
    """Covariate coefficients (log-odds against segment 1) for the new segment order: re-expressed
    against the new segment 1 with their covariance (:func:`~latentseg.models._mnlogit.rereference`)
    and their table rebuilt; posterior draws (Bayesian one-step) only when segment 1 stays first.

    Raises
    ------
    ValueError
        The reference segment would change where the coefficients cannot be re-expressed (a
        table without its covariance, or posterior draws).
    """
    if not any(key in extras for key in _COVARIATE_KEYS):
        return extras
    coef, vcov, table = extras.get("covariate_coef"), extras.get("covariate_vcov"), extras.get("covariates")
    cols = perm[1:] - 1  # new free column j (segment j + 2) is old free column cols[j], when perm[0] == 0
    if perm[0] == 0:
        out = dict(extras)
        if coef is not None:
            m = np.asarray(coef).shape[0]
            out["covariate_coef"] = np.asarray(coef)[:, cols]
            if vcov is not None:
                idx = (cols[:, None] * m + np.arange(m)[None, :]).ravel()
                out["covariate_vcov"] = np.asarray(vcov)[np.ix_(idx, idx)]
        if extras.get("covariate_draws") is not None:
            out["covariate_draws"] = np.asarray(extras["covariate_draws"])[..., cols]
        if table is not None:
            out["covariates"] = _permute_extra(table, perm)
        return out
    if coef is None or vcov is None or table is None or extras.get("covariate_draws") is not None:
        raise ValueError(
            "This result carries covariate coefficients against segment 1 that cannot be re-expressed for a new "
            "segment 1; relabel before attaching the covariates (apply_covariates), or keep segment 1 first."
        )
    from latentseg.models._mnlogit import coefficient_table, rereference

    new_coef, new_vcov = rereference(np.asarray(coef, dtype=float), np.asarray(vcov, dtype=float), perm.tolist())
    terms = list(dict.fromkeys(str(t) for t in table["term"]))
    return {**extras, "covariate_coef": new_coef, "covariate_vcov": new_vcov,
            "covariates": coefficient_table(new_coef, new_vcov, terms)}


def _permute_extra(value: Any, perm: np.ndarray) -> Any:
    """Renumber a per-segment extra: objects with ``relabel``, or tables with a ``segment`` column
    (1-based ids: old segment ``perm[j] + 1`` becomes ``j + 1``)."""
    if hasattr(value, "relabel"):
        return value.relabel(perm)
    if isinstance(value, pd.DataFrame) and "segment" in value.columns:
        new_id = {int(old) + 1: new + 1 for new, old in enumerate(perm)}
        out = value.assign(segment=value["segment"].map(new_id).astype(value["segment"].dtype))
        return out.sort_values("segment", kind="stable").reset_index(drop=True)
    return value


def _permute_posterior(tree: Any, perm: np.ndarray) -> Any:
    """Permute the ``segment`` dimension of every dataset in a DataTree / Dataset."""

    def fix(ds: Any) -> Any:
        if "segment" not in ds.dims:
            return ds
        out = ds.isel(segment=perm)
        return out.assign_coords(segment=np.arange(1, len(perm) + 1))

    if hasattr(tree, "map_over_datasets"):
        return tree.map_over_datasets(fix)
    return fix(tree)
