"""The finder profile: predict a respondent's segment from observable variables.

Segments are defined by unmet needs, which a sales rep cannot see. The finder is a small
classifier from what *can* be seen (role, company size, current tool, answers to self-
classification questions such as "Which of these matters most to you?") to the modal segment,
so new prospects can be placed without re-surveying them.

Methods
    ``"logistic"`` (default): multinomial logistic regression (L2, ``C=1``) in a scikit-learn
    Pipeline: numeric columns mean-imputed and standardised, categorical columns one-hot encoded
    (a missing value is its own category ``"<missing>"``; a category not seen in training encodes
    as all zeros).
    ``"tree"``: a shallow decision tree (``max_depth``, at least ``max(5, n/100)`` respondents per
    leaf) on mean-imputed numbers and one-hot categories; its rules are exported as text
    (:func:`sklearn.tree.export_text`) and as a list of dicts.

Validation
    Stratified K-fold cross-validation (the whole pipeline refitted in every fold) gives the
    accuracy and the confusion matrix of out-of-fold predictions; the baseline is always guessing
    the largest segment. ``beats_baseline`` is a one-sided exact binomial test of the number of
    correct out-of-fold predictions against the baseline accuracy (p < 0.05).

Survey weights (``sample_weight``, default the result's own)
    The classifier is fitted with scikit-learn's ``sample_weight`` (the population is what the
    finder will meet; imputation and scaling statistics stay unweighted), and the accuracy, the
    per-fold accuracies and the baseline are weighted: ``sum_i w_i [predicted_i = segment_i] /
    sum_i w_i``. The binomial test then runs at Kish's effective sample size
    (``P(Beta(a n_eff, (1 - a) n_eff + 1) <= baseline)`` for accuracy ``a``, the binomial tail
    continued to a fractional count). The confusion matrix stays in respondents.

Built on the covariate model (:func:`covariate_finder`, :class:`CovariateFinder`)
    When the segmentation carries covariate effects (``--covariates``: one-step, BCH or ML), the
    finder profile is also read off that multinomial logit: per segment, the traits ranked by
    their average marginal effect on its probability (numeric per SD, a level against the
    reference level) with odds ratios against the reference segment, and the rule ``argmax
    softmax(x' B)`` with its (weighted, in-sample) accuracy against the modal segment.
    :func:`latentseg.decide.core.decide` reports it next to the classifier.

The fitted finder is plain data (``to_dict`` / ``from_dict``: coefficients, categories, imputation
and scaling statistics, or the tree's arrays), so it is saved with a model as JSON, never pickled,
and predicts with numpy alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from latentseg._stats import as_rng
from latentseg.decide.distal import align_to_result
from latentseg.errors import ConfigError, FitError, LatentsegWarning, SurveyError, format_rows

__all__ = ["CovariateFinder", "Finder", "covariate_finder", "finder", "FINDER_METHODS", "MISSING_CATEGORY"]

FINDER_METHODS = ("logistic", "tree")
#: The category a missing categorical value is encoded as.
MISSING_CATEGORY = "<missing>"
#: Numeric columns with at most this many distinct values are treated as categorical.
MAX_NUMERIC_LEVELS_AS_CATEGORY = 5
_FORMAT = "latentseg.decide.finder"
_FORMAT_VERSION = 1


def _fmt_num(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _as_text(s: pd.Series) -> np.ndarray:
    """Categorical values as text: numbers without a trailing ``.0``, missing -> ``<missing>``."""
    out = np.empty(len(s), dtype=object)
    na = s.isna().to_numpy()
    num = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    vals = s.to_numpy(dtype=object)
    for i, v in enumerate(vals):
        out[i] = MISSING_CATEGORY if na[i] else (_fmt_num(v) if num else str(v))
    return out


def _is_numeric(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return False
    return s.dropna().nunique() > MAX_NUMERIC_LEVELS_AS_CATEGORY


# ---------------------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class Finder:
    """A fitted finder: observable variables -> segment.

    Attributes
    ----------
    method : {"logistic", "tree"}
    k : int
        Number of segments of the segmentation it was fitted to.
    classes : tuple of int
        Segments present among the modal assignments (the classes the model can predict).
    numeric : tuple of str
        Numeric predictor columns.
    categories : dict of str to tuple of str
        Categorical predictor columns and their categories (``"<missing>"`` included if seen).
    center, scale : dict of str to float
        Numeric columns: missing values become ``impute[col]``, then ``(x - center) / scale``.
    impute : dict of str to float
    feature_names : tuple of str
        Encoded features: the numeric columns, then ``"column = category"`` for each category.
    coef : ndarray, shape (len(classes), d) or None
        Logistic coefficients (one row per class; for two classes the binary model's single row
        is stored with its negative, so the rows are always softmax logits).
    intercept : ndarray, shape (len(classes),) or None
    tree : dict or None
        ``children_left, children_right, feature, threshold, proba (nodes × classes),
        n_samples``.
    cv_accuracy : float
        Mean accuracy of out-of-fold predictions.
    cv_accuracy_folds : tuple of float
    cv_folds : int
    baseline_accuracy : float
        Share of the largest modal segment.
    p_value : float
        One-sided exact binomial p-value of the out-of-fold correct count against the baseline.
    confusion : DataFrame, shape (k, k)
        Out-of-fold predictions: rows true (modal) segment, columns predicted segment
        (respondents, unweighted).
    rules_text : str
        The tree as text (empty for logistic).
    labels : tuple of str
        Segment names used in rules (from the result's labels).
    settings : dict
    """

    method: str
    k: int
    classes: tuple[int, ...]
    numeric: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    center: dict[str, float]
    scale: dict[str, float]
    impute: dict[str, float]
    feature_names: tuple[str, ...]
    coef: np.ndarray | None
    intercept: np.ndarray | None
    tree: dict[str, Any] | None
    cv_accuracy: float
    cv_accuracy_folds: tuple[float, ...]
    cv_folds: int
    baseline_accuracy: float
    p_value: float
    confusion: pd.DataFrame
    rules_text: str = ""
    labels: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived
    @property
    def beats_baseline(self) -> bool:
        """Whether out-of-fold accuracy beats always guessing the largest segment (p < 0.05)."""
        return bool(self.p_value < 0.05)

    @property
    def columns(self) -> tuple[str, ...]:
        """Predictor columns a new table must have."""
        return (*self.numeric, *self.categories)

    # ------------------------------------------------------------------ prediction
    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Encode observables as the model's features, shape (n, d).

        Raises
        ------
        SurveyError
            Missing predictor columns, or non-numeric values in a numeric column.
        """
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise SurveyError(
                f"The table to classify lacks the finder's predictor columns {missing}; it needs {list(self.columns)}."
            )
        parts = []
        for col in self.numeric:
            raw = df[col]
            vals = pd.to_numeric(raw, errors="coerce")
            bad = raw.notna() & vals.isna()
            if bad.any():
                raise SurveyError(
                    f"Column {col!r} must be numeric; rows {format_rows(df.index[bad.to_numpy()])} are not."
                )
            x = vals.to_numpy(dtype=float, na_value=np.nan)
            x = np.where(np.isnan(x), self.impute[col], x)
            parts.append(((x - self.center[col]) / self.scale[col])[:, None])
        unseen: dict[str, list[str]] = {}
        for col, cats in self.categories.items():
            text = _as_text(df[col])
            lookup = {c: i for i, c in enumerate(cats)}
            block = np.zeros((len(text), len(cats)))
            for i, v in enumerate(text):
                j = lookup.get(v)
                if j is None:
                    unseen.setdefault(col, []).append(v)
                else:
                    block[i, j] = 1.0
            parts.append(block)
        if unseen:
            desc = "; ".join(f"{c}: {sorted(set(v))[:5]}" for c, v in unseen.items())
            warnings.warn(
                f"Categories not seen when the finder was fitted are encoded as none of the known ones: {desc}.",
                LatentsegWarning,
                stacklevel=3,
            )
        return np.hstack(parts) if parts else np.zeros((len(df), 0))

    def _proba_classes(self, x: np.ndarray) -> np.ndarray:
        if self.method == "logistic":
            assert self.coef is not None and self.intercept is not None
            logits = x @ self.coef.T + self.intercept[None, :]
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            return p / p.sum(axis=1, keepdims=True)
        assert self.tree is not None
        left = np.asarray(self.tree["children_left"])
        right = np.asarray(self.tree["children_right"])
        feat = np.asarray(self.tree["feature"])
        thr = np.asarray(self.tree["threshold"], dtype=float)
        proba = np.asarray(self.tree["proba"], dtype=float)
        node = np.zeros(x.shape[0], dtype=int)
        for _ in range(len(left)):
            internal = left[node] >= 0
            if not internal.any():
                break
            rows = np.flatnonzero(internal)
            go_left = x[rows, feat[node[rows]]] <= thr[node[rows]]
            node[rows] = np.where(go_left, left[node[rows]], right[node[rows]])
        return proba[node]

    def predict_proba(self, df: pd.DataFrame) -> pd.DataFrame:
        """Probability of each segment for new observables.

        Parameters
        ----------
        df : DataFrame
            Holds the predictor columns (others are ignored); any index.

        Returns
        -------
        DataFrame, shape (n, k)
            Columns ``1..k`` (0 for segments the finder never saw as a modal segment).
        """
        pc = self._proba_classes(self.encode(df))
        out = np.zeros((len(df), self.k))
        out[:, np.asarray(self.classes) - 1] = pc
        return pd.DataFrame(out, index=df.index, columns=pd.Index(range(1, self.k + 1), name="segment"))

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """Most likely segment (1..k) for new observables, indexed like ``df``."""
        p = self.predict_proba(df)
        return pd.Series(np.argmax(p.to_numpy(), axis=1) + 1, index=df.index, name="segment")

    # ------------------------------------------------------------------ rules
    def rules(self) -> list[dict[str, Any]]:
        """The tree's leaves as rules (empty for logistic).

        Returns
        -------
        list of dict
            One per leaf, most populated first: ``conditions`` (list of ``{"column", "op",
            "value"}`` with ``op`` one of ``<=, >, ==, !=``), ``segment``, ``label``, ``probability``
            (of that segment in the leaf), ``probabilities`` ({segment: p}), ``n`` (training
            respondents in the leaf) and ``text``.
        """
        if self.method != "tree" or self.tree is None:
            return []
        left, right = self.tree["children_left"], self.tree["children_right"]
        feat, thr = self.tree["feature"], self.tree["threshold"]
        proba, nsamp = np.asarray(self.tree["proba"]), self.tree["n_samples"]
        n_num = len(self.numeric)
        cat_of: list[tuple[str, str]] = [(c, v) for c, cats in self.categories.items() for v in cats]
        out: list[dict[str, Any]] = []

        def walk(node: int, conds: list[dict[str, Any]]) -> None:
            if left[node] < 0:
                p = proba[node]
                j = int(np.argmax(p))
                seg = int(self.classes[j])
                label = self.labels[seg - 1] if len(self.labels) >= seg else f"segment {seg}"
                merged = _merge_conditions(conds)
                cond_text = " AND ".join(_cond_text(c) for c in merged) or "everyone"
                out.append(
                    {
                        "conditions": merged,
                        "segment": seg,
                        "label": label,
                        "probability": float(p[j]),
                        "probabilities": {int(c): float(q) for c, q in zip(self.classes, p)},
                        "n": int(nsamp[node]),
                        "text": f"IF {cond_text} THEN {label} (p = {p[j]:.2f}, n = {int(nsamp[node])})",
                    }
                )
                return
            f = int(feat[node])
            if f < n_num:
                col = self.numeric[f]
                t = float(thr[node]) * self.scale[col] + self.center[col]
                walk(int(left[node]), [*conds, {"column": col, "op": "<=", "value": t}])
                walk(int(right[node]), [*conds, {"column": col, "op": ">", "value": t}])
            else:
                col, cat = cat_of[f - n_num]
                walk(int(left[node]), [*conds, {"column": col, "op": "!=", "value": cat}])
                walk(int(right[node]), [*conds, {"column": col, "op": "==", "value": cat}])

        walk(0, [])
        out.sort(key=lambda r: -r["n"])
        return out

    def coefficients(self) -> pd.DataFrame:
        """Logistic coefficients, segments × encoded features (empty for a tree)."""
        if self.coef is None:
            return pd.DataFrame()
        return pd.DataFrame(self.coef, index=pd.Index(self.classes, name="segment"), columns=list(self.feature_names))

    def summary(self) -> dict[str, Any]:
        """Accuracy against the baseline, in a few numbers (JSON-safe)."""
        return {
            "method": self.method,
            "cv_accuracy": self.cv_accuracy,
            "cv_folds": self.cv_folds,
            "baseline_accuracy": self.baseline_accuracy,
            "p_value": self.p_value,
            "beats_baseline": self.beats_baseline,
            "predictors": list(self.columns),
        }

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to predict and report, as JSON-native data (no pickle)."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "method": self.method,
                "k": self.k,
                "classes": list(self.classes),
                "numeric": list(self.numeric),
                "categories": {c: list(v) for c, v in self.categories.items()},
                "category_order": list(self.categories),
                "center": self.center,
                "scale": self.scale,
                "impute": self.impute,
                "feature_names": list(self.feature_names),
                "coef": None if self.coef is None else self.coef.tolist(),
                "intercept": None if self.intercept is None else self.intercept.tolist(),
                "tree": None if self.tree is None else {k: np.asarray(v).tolist() for k, v in self.tree.items()},
                "cv_accuracy": self.cv_accuracy,
                "cv_accuracy_folds": list(self.cv_accuracy_folds),
                "cv_folds": self.cv_folds,
                "baseline_accuracy": self.baseline_accuracy,
                "p_value": self.p_value,
                "confusion": self.confusion.to_numpy().tolist(),
                "rules_text": self.rules_text,
                "labels": list(self.labels),
                "settings": dict(self.settings),
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finder:
        """Rebuild a finder written by :meth:`to_dict`.

        Raises
        ------
        ConfigError
            When ``d`` is not a finder of this format version.
        """
        if d.get("format") != _FORMAT or d.get("format_version") != _FORMAT_VERSION:
            raise ConfigError(
                f"Not a latentseg finder of format version {_FORMAT_VERSION}: got format "
                f"{d.get('format')!r}, version {d.get('format_version')!r}."
            )
        k = int(d["k"])
        order = d.get("category_order") or list(d["categories"])
        tree = d.get("tree")
        return cls(
            method=str(d["method"]),
            k=k,
            classes=tuple(int(c) for c in d["classes"]),
            numeric=tuple(d["numeric"]),
            categories={c: tuple(str(v) for v in d["categories"][c]) for c in order},
            center={c: float(v) for c, v in d["center"].items()},
            scale={c: float(v) for c, v in d["scale"].items()},
            impute={c: float(v) for c, v in d["impute"].items()},
            feature_names=tuple(d["feature_names"]),
            coef=None if d.get("coef") is None else np.asarray(d["coef"], dtype=float),
            intercept=None if d.get("intercept") is None else np.asarray(d["intercept"], dtype=float),
            tree=None
            if tree is None
            else {
                "children_left": np.asarray(tree["children_left"], dtype=int),
                "children_right": np.asarray(tree["children_right"], dtype=int),
                "feature": np.asarray(tree["feature"], dtype=int),
                "threshold": np.asarray(tree["threshold"], dtype=float),
                "proba": np.asarray(tree["proba"], dtype=float),
                "n_samples": np.asarray(tree["n_samples"], dtype=int),
            },
            cv_accuracy=float(d["cv_accuracy"]),
            cv_accuracy_folds=tuple(float(x) for x in d["cv_accuracy_folds"]),
            cv_folds=int(d["cv_folds"]),
            baseline_accuracy=float(d["baseline_accuracy"]),
            p_value=float(d["p_value"]),
            confusion=pd.DataFrame(
                np.asarray(d["confusion"], dtype=int),
                index=pd.Index(range(1, k + 1), name="true"),
                columns=pd.Index(range(1, k + 1), name="predicted"),
            ),
            rules_text=str(d.get("rules_text", "")),
            labels=tuple(d.get("labels", ())),
            settings=dict(d.get("settings", {})),
        )


def _merge_conditions(conds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tighten repeated numeric bounds; drop "!= a" when "== b" on the same column is present."""
    out: list[dict[str, Any]] = []
    for c in conds:
        if c["op"] in ("<=", ">"):
            prev = next((o for o in out if o["column"] == c["column"] and o["op"] == c["op"]), None)
            if prev is None:
                out.append(dict(c))
            elif c["op"] == "<=":
                prev["value"] = min(prev["value"], c["value"])
            else:
                prev["value"] = max(prev["value"], c["value"])
        else:
            out.append(dict(c))
    equal_cols = {c["column"] for c in out if c["op"] == "=="}
    return [c for c in out if not (c["op"] == "!=" and c["column"] in equal_cols)]


def _cond_text(c: dict[str, Any]) -> str:
    v = c["value"]
    shown = f"{v:.4g}" if isinstance(v, float) else str(v)
    return f"{c['column']} {c['op']} {shown}"


# ---------------------------------------------------------------------------------------- fitting
def _pipeline(method: str, numeric: list[str], categories: dict[str, tuple[str, ...]], max_depth: int,
              min_leaf: int, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    num_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="mean"))]
    if method == "logistic":
        num_steps.append(("scale", StandardScaler()))
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("num", Pipeline(num_steps), numeric))
    if categories:
        enc = OneHotEncoder(
            categories=[list(v) for v in categories.values()], handle_unknown="ignore", sparse_output=False
        )
        transformers.append(("cat", enc, list(categories)))
    prep = ColumnTransformer(transformers, remainder="drop")
    if method == "logistic":
        clf: Any = LogisticRegression(C=1.0, max_iter=5000)
    else:
        clf = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=seed)
    return Pipeline([("prep", prep), ("model", clf)])


def finder(
    result: Any,
    predictors: pd.DataFrame,
    *,
    method: str = "logistic",
    cv: int = 5,
    max_depth: int = 3,
    random_seed: int | None = None,
    columns: Sequence[str] | None = None,
    sample_weight: Any = None,
) -> Finder:
    """Fit a classifier from observable variables to the modal segment, with cross-validation.

    Parameters
    ----------
    result : SegmentationResult
    predictors : DataFrame
        Observable columns indexed by respondent id (profile variables, self-classification
        answers: any column); may hold more respondents than the result.
    method : {"logistic", "tree"}, default "logistic"
    cv : int, default 5
        Stratified folds (reduced, with a warning, to the size of the smallest segment).
    max_depth : int, default 3
        Depth of the tree (``method="tree"``).
    random_seed : int, optional
        Seed for the fold split and the tree; same seed, same finder.
    columns : sequence of str, optional
        Predictor columns to use (default: all of ``predictors``).
    sample_weight : array-like (n,) or Series, optional
        Survey weights (default: the result's ``sample_weight``): the classifier is fitted with
        them and its accuracy and baseline are weighted (see the module docstring).

    Returns
    -------
    Finder

    Raises
    ------
    ConfigError
        Unknown method, bad ``cv`` / ``max_depth``, unknown or empty columns.
    FitError
        Fewer than two segments among the modal assignments, or a segment with one respondent.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from latentseg.result import SegmentationResult
    >>> z = np.repeat(np.eye(2), [45, 35], axis=0)
    >>> r = SegmentationResult.from_memberships("gmm", z, centers=np.eye(2), feature_names=("a", "b"))
    >>> obs = pd.DataFrame({"role": ["ops"] * 40 + ["pm"] * 5 + ["pm"] * 31 + ["ops"] * 4},
    ...                    index=r.respondent_ids)
    >>> f = finder(r, obs, random_seed=0)
    >>> round(f.cv_accuracy, 3), f.baseline_accuracy, f.beats_baseline
    (0.887, 0.5625, True)
    >>> f.predict(pd.DataFrame({"role": ["pm", "ops"]})).tolist()
    [2, 1]
    """
    if method not in FINDER_METHODS:
        raise ConfigError(f"method must be one of {', '.join(FINDER_METHODS)}; got {method!r}.")
    if int(cv) < 2:
        raise ConfigError(f"cv must be at least 2 folds; got {cv}.")
    if int(max_depth) < 1:
        raise ConfigError(f"max_depth must be at least 1; got {max_depth}.")
    cols = [str(c) for c in (predictors.columns if columns is None else columns)]
    if not cols:
        raise ConfigError("The finder needs at least one predictor column.")
    unknown = [c for c in cols if c not in predictors.columns]
    if unknown:
        raise ConfigError(f"Predictor columns {unknown} are not in the table; it has {list(predictors.columns)[:20]}.")
    frame = align_to_result(result, predictors[cols], what="predictor table")
    empty = [c for c in cols if frame[c].notna().sum() == 0]
    if empty:
        raise ConfigError(f"Predictor columns {empty} have no values for the model's respondents.")
    y = np.asarray(result.assignment, dtype=int)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise FitError("The finder needs at least two segments among the modal assignments; there is one.")
    if counts.min() < 2:
        few = [int(c) for c, m in zip(classes, counts) if m < 2]
        raise FitError(f"Segments {few} are the modal segment of only one respondent; the finder cannot be validated.")
    folds = min(int(cv), int(counts.min()))
    if folds < int(cv):
        warnings.warn(
            f"cv reduced from {cv} to {folds} folds: the smallest segment has {int(counts.min())} respondents.",
            LatentsegWarning,
            stacklevel=2,
        )

    numeric = [c for c in cols if _is_numeric(frame[c])]
    cat_cols = [c for c in cols if c not in numeric]
    x = pd.DataFrame(index=frame.index)
    for c in numeric:
        x[c] = frame[c].to_numpy(dtype=float, na_value=np.nan)
    categories: dict[str, tuple[str, ...]] = {}
    for c in cat_cols:
        text = _as_text(frame[c])
        x[c] = pd.Series(text, index=frame.index, dtype=object)
        categories[c] = tuple(sorted(set(text.tolist())))
    from latentseg.decide.weights import is_weighted, resolve_weights, weights_text

    sw_given = resolve_weights(result, sample_weight)
    sw = sw_given if is_weighted(sw_given) else None  # equal weights: a simple random sample
    fit_kw = (lambda rows: {}) if sw is None else (lambda rows: {"model__sample_weight": sw[rows]})
    rng = as_rng(random_seed)
    cv_seed, model_seed = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
    min_leaf = max(5, result.n // 100)

    from sklearn.model_selection import StratifiedKFold

    from threadpoolctl import threadpool_limits

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cv_seed)
    oof = np.zeros_like(y)
    fold_acc = []
    # survey-sized problems: BLAS threads only add contention (8x slower on a busy 2-core machine)
    with threadpool_limits(limits=1):
        for train, test in splitter.split(np.zeros(len(y)), y):
            pipe = _pipeline(method, numeric, categories, int(max_depth), min_leaf, model_seed)
            pipe.fit(x.iloc[train], y[train], **fit_kw(train))
            oof[test] = pipe.predict(x.iloc[test])
            fold_acc.append(_accuracy(oof[test], y[test], None if sw is None else sw[test]))
        pipe = _pipeline(method, numeric, categories, int(max_depth), min_leaf, model_seed)
        pipe.fit(x, y, **fit_kw(np.arange(len(y))))

    if sw is None:
        correct = int((oof == y).sum())
        baseline = float(counts.max() / counts.sum())
        p_value = float(stats.binom.sf(correct - 1, len(y), baseline))
        accuracy = float(np.mean(oof == y))
    else:
        from latentseg._stats import effective_n

        accuracy = _accuracy(oof, y, sw)
        baseline = float(max(sw[y == c].sum() for c in classes) / sw.sum())
        n_eff = effective_n(sw)
        # binom.sf(x - 1, n, b) = P(Beta(x, n - x + 1) <= b), continued to a fractional x
        p_value = float(stats.beta.cdf(baseline, max(accuracy * n_eff, 1e-12), (1 - accuracy) * n_eff + 1))
    k = int(result.k)
    conf = np.zeros((k, k), dtype=int)
    np.add.at(conf, (y - 1, oof - 1), 1)
    confusion = pd.DataFrame(
        conf, index=pd.Index(range(1, k + 1), name="true"), columns=pd.Index(range(1, k + 1), name="predicted")
    )

    prep = pipe.named_steps["prep"]
    model = pipe.named_steps["model"]
    center: dict[str, float] = {}
    scale: dict[str, float] = {}
    impute: dict[str, float] = {}
    if numeric:
        num = prep.named_transformers_["num"]
        stats_ = num.named_steps["impute"].statistics_
        for i, c in enumerate(numeric):
            impute[c] = float(stats_[i])
            if method == "logistic":
                center[c] = float(num.named_steps["scale"].mean_[i])
                scale[c] = float(num.named_steps["scale"].scale_[i])
            else:
                center[c], scale[c] = 0.0, 1.0
    feature_names = (*numeric, *[f"{c} = {v}" for c, cats in categories.items() for v in cats])
    labels = tuple(result.labels) if result.labels else tuple(f"segment {j}" for j in range(1, k + 1))
    model_classes = tuple(int(c) for c in model.classes_)
    coef = intercept = None
    tree = None
    rules_text = ""
    if method == "logistic":
        coef = np.asarray(model.coef_, dtype=float)
        intercept = np.asarray(model.intercept_, dtype=float)
        if coef.shape[0] == 1:  # binary: sigmoid(b x) = softmax over logits (0, b x) -> store (-b/2, b/2)
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    else:
        from sklearn.tree import export_text

        t = model.tree_
        value = np.asarray(t.value[:, 0, :], dtype=float)
        proba = value / value.sum(axis=1, keepdims=True)
        tree = {
            "children_left": np.asarray(t.children_left, dtype=int),
            "children_right": np.asarray(t.children_right, dtype=int),
            "feature": np.asarray(t.feature, dtype=int),
            "threshold": np.asarray(t.threshold, dtype=float),
            "proba": proba,
            "n_samples": np.asarray(t.n_node_samples, dtype=int),
        }
        rules_text = export_text(
            model, feature_names=list(feature_names), class_names=[labels[c - 1] for c in model_classes]
        )
    return Finder(
        method=method,
        k=k,
        classes=model_classes,
        numeric=tuple(numeric),
        categories=categories,
        center=center,
        scale=scale,
        impute=impute,
        feature_names=tuple(feature_names),
        coef=coef,
        intercept=intercept,
        tree=tree,
        cv_accuracy=accuracy,
        cv_accuracy_folds=tuple(fold_acc),
        cv_folds=folds,
        baseline_accuracy=baseline,
        p_value=p_value,
        confusion=confusion,
        rules_text=rules_text,
        labels=labels,
        settings={"cv": int(cv), "max_depth": int(max_depth), "min_samples_leaf": min_leaf, "random_seed": random_seed,
                  "regularisation": "L2, C=1" if method == "logistic" else None,
                  **({} if sw is None else {"sample_weight": weights_text(sw)})},
    )


def _accuracy(pred: np.ndarray, true: np.ndarray, sw: np.ndarray | None) -> float:
    """Share of correct predictions, weighted by ``sw`` when given."""
    hit = pred == true
    return float(np.mean(hit)) if sw is None else float(sw[hit].sum() / sw.sum())


# ------------------------------------------------------------------ the finder built on covariates
@dataclass(frozen=True, eq=False)
class CovariateFinder:
    """The finder profile built on the multinomial-logit covariate model of a result.

    When a segmentation carries covariate effects (one-step, or three-step BCH / ML:
    :func:`latentseg.decide.covariates.apply_covariates`, ``--covariates``), how sales and
    marketing recognise a segment is read off that model rather than off a separate classifier:

    - **traits**: for each segment, the covariate terms that raise its probability most, ranked
      by the average marginal effect (AME) on that segment's probability -- per standard
      deviation for a numeric covariate, the change from the reference level for a level of a
      categorical one, so the two are comparable -- with the AME's 95% interval and the odds
      ratio against the reference segment (and its interval; none for the reference segment
      itself, whose odds are the denominator);
    - **rule**: predicted segment = ``argmax_c softmax(x' B)_c`` with the fitted coefficients,
      and its (survey-weighted) in-sample accuracy against the modal assignment, next to the
      baseline of always guessing the largest segment and the same one-sided test as
      :func:`finder` (at Kish's effective n when weighted).

    Attributes
    ----------
    method : str
        The covariate estimator: ``"one-step"``, ``"bch"`` or ``"ml"``.
    k : int
    reference_segment : int
    columns : tuple of str
        Covariate columns.
    terms : tuple of str
        Design terms, ``"(intercept)"`` first.
    levels : dict of str to tuple of str
        Categorical columns: their levels, the reference level first.
    coef : ndarray, shape (len(terms), k)
        Logits per segment (the reference segment's column is zero).
    traits : DataFrame
        ``segment, rank, term, change, ame, ame_lower, ame_upper, odds_ratio, or_lower,
        or_upper, significant``: per segment, the terms with a positive AME, largest first
        (``change`` says what the AME is per; ``significant``: the AME's interval lies above 0).
    accuracy : float
        (Weighted) share of respondents whose rule prediction is their modal segment.
    baseline_accuracy : float
    p_value : float
    n : int
        Respondents with every covariate (the others are not scored).
    confusion : DataFrame, shape (k, k)
        Rows modal segment, columns predicted (respondents, unweighted).
    labels : tuple of str
    weighted : bool
    """

    method: str
    k: int
    reference_segment: int
    columns: tuple[str, ...]
    terms: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]
    coef: np.ndarray
    traits: pd.DataFrame
    accuracy: float
    baseline_accuracy: float
    p_value: float
    n: int
    confusion: pd.DataFrame
    labels: tuple[str, ...] = ()
    weighted: bool = False

    @property
    def beats_baseline(self) -> bool:
        """Whether the rule beats always guessing the largest segment (p < 0.05)."""
        return bool(self.p_value < 0.05)

    def top_traits(self, segment: int, n: int = 3) -> pd.DataFrame:
        """The ``n`` terms that raise ``segment``'s probability most (rows of :attr:`traits`)."""
        t = self.traits
        return t[t["segment"] == int(segment)].head(int(n)).reset_index(drop=True)

    def predict_proba(self, df: pd.DataFrame) -> pd.DataFrame:
        """Segment probabilities ``softmax(x' B)`` for new respondents, shape (n, k); a row with a
        missing covariate is all NaN.

        Raises
        ------
        ConfigError
            A covariate column is absent, or a level was not seen when the model was fitted.
        """
        from latentseg.models._mnlogit import code_covariates

        X, _, _ = code_covariates(df.rename(columns=str), self.columns, self.levels)
        logits = X @ self.coef
        logits -= np.nanmax(logits, axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return pd.DataFrame(p, index=df.index, columns=pd.Index(range(1, self.k + 1), name="segment"))

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """Predicted segment (1..k; ``<NA>`` where a covariate is missing), indexed like ``df``."""
        p = self.predict_proba(df).to_numpy()
        ok = np.isfinite(p).all(axis=1)
        out = pd.Series(pd.array([pd.NA] * len(df), dtype="Int64"), index=df.index, name="segment")
        out[ok] = np.argmax(p[ok], axis=1) + 1
        return out

    def summary(self) -> dict[str, Any]:
        """Accuracy against the baseline and each segment's top three traits (JSON-safe)."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe({
            "method": self.method,
            "rule": "predicted segment = argmax of softmax(x' B), the fitted covariate model",
            "reference_segment": self.reference_segment,
            "accuracy": self.accuracy,
            "accuracy_kind": "in-sample, against the modal segment" + (", survey-weighted" if self.weighted else ""),
            "baseline_accuracy": self.baseline_accuracy,
            "p_value": self.p_value,
            "beats_baseline": self.beats_baseline,
            "n": self.n,
            "covariates": list(self.columns),
            "top_traits": {str(s): self.top_traits(s).drop(columns="segment").to_dict(orient="records")
                           for s in range(1, self.k + 1)},
        })

    def to_dict(self) -> dict[str, Any]:
        """:meth:`summary` plus the confusion matrix and every trait (JSON-safe)."""
        from latentseg.io.jsonsafe import json_safe

        return json_safe({**self.summary(), "confusion": self.confusion.to_numpy().tolist(),
                          "traits": self.traits.to_dict(orient="records")})


def covariate_finder(result: Any, covariates: pd.DataFrame, *, sample_weight: Any = None) -> CovariateFinder:
    """The finder profile built on the covariate model a result carries.

    Parameters
    ----------
    result : SegmentationResult
        With covariate effects (``extras["covariates"]`` and
        ``extras["covariate_marginal_effects"]``, as :func:`~latentseg.decide.covariates.apply_covariates`
        and ``--covariates`` leave them).
    covariates : DataFrame
        The covariate columns (e.g. the survey's profile), indexed by respondent id.
    sample_weight : array-like (n,), optional
        Survey weights (default: the result's own); the accuracy and baseline are weighted.

    Returns
    -------
    CovariateFinder

    Raises
    ------
    ConfigError
        The result has no covariate effects, or ``covariates`` lacks their columns or codes
        them differently.

    Examples
    --------
    >>> from latentseg.research.simulate import simulate_covariate_mixture
    >>> from latentseg.models.gmm import fit_gmm
    >>> from latentseg.decide.covariates import apply_covariates
    >>> sim = simulate_covariate_mixture(400, 2, random_seed=2)
    >>> res, _ = apply_covariates(fit_gmm(sim.data, 2, random_seed=1), sim.data, sim.covariates,
    ...                           ["age", "region", "noise"], "bch")
    >>> cf = covariate_finder(res, sim.covariates)
    >>> cf.top_traits(2)["term"].iloc[0], cf.accuracy > cf.baseline_accuracy
    ('age', True)
    """
    from latentseg.models._mnlogit import INTERCEPT, covariate_design

    table = result.extras.get("covariates")
    ame = result.extras.get("covariate_marginal_effects")
    method = result.settings.get("covariates_method")
    if method is None or not isinstance(table, pd.DataFrame) or not isinstance(ame, pd.DataFrame):
        raise ConfigError("This segmentation carries no covariate effects; fit it with covariates (--covariates).")
    k = int(result.k)
    ref = int(result.settings.get("covariates_info", {}).get("reference_segment", 1))
    terms = list(dict.fromkeys(str(t) for t in table["term"]))
    slopes = [t for t in terms if t != INTERCEPT]
    cols_have = [str(c) for c in covariates.columns]
    columns = [c for c in cols_have if any(t == c or t.startswith(f"{c}[") for t in slopes)]
    columns.sort(key=lambda c: next(i for i, t in enumerate(slopes) if t == c or t.startswith(f"{c}[")))
    if not columns:
        raise ConfigError(f"The covariates table has none of the model's covariate terms {slopes[:12]}.")
    design = covariate_design(covariates, columns, respondent_ids=result.respondent_ids)
    if list(design.terms) != [INTERCEPT, *slopes]:
        raise ConfigError(f"These covariates code as {list(design.terms)}, but the covariate model has terms "
                          f"{[INTERCEPT, *slopes]}; pass the covariates it was fitted with.")
    coef = np.zeros((len(design.terms), k))
    pos = {t: i for i, t in enumerate(design.terms)}
    for seg, term, est in zip(table["segment"], table["term"], table["estimate"]):
        coef[pos[str(term)], int(seg) - 1] = float(est)

    from latentseg.decide.weights import is_weighted, resolve_weights

    sw_given = resolve_weights(result, sample_weight)
    ok = design.complete
    X = design.X[ok]
    y = np.asarray(result.assignment, dtype=int)[ok]
    sw = None if sw_given is None or not is_weighted(sw_given) else np.asarray(sw_given, dtype=float)[ok]
    logits = X @ coef
    pred = np.argmax(logits, axis=1) + 1
    accuracy = _accuracy(pred, y, sw)
    w = np.ones(len(y)) if sw is None else sw
    baseline = float(max(w[y == c].sum() for c in range(1, k + 1)) / w.sum())
    if sw is None:
        p_value = float(stats.binom.sf(int((pred == y).sum()) - 1, len(y), baseline))
    else:
        from latentseg._stats import effective_n

        n_eff = effective_n(sw)
        p_value = float(stats.beta.cdf(baseline, max(accuracy * n_eff, 1e-12), (1 - accuracy) * n_eff + 1))
    conf = np.zeros((k, k), dtype=int)
    np.add.at(conf, (y - 1, pred - 1), 1)
    confusion = pd.DataFrame(conf, index=pd.Index(range(1, k + 1), name="true"),
                             columns=pd.Index(range(1, k + 1), name="predicted"))

    # a numeric covariate's AME per standard deviation (weighted), a level's from the reference level
    sd: dict[str, float] = {}
    for c in columns:
        if c not in design.levels:
            v = X[:, pos[c]]
            mu = float(np.average(v, weights=w))
            sd[c] = float(np.sqrt(np.average((v - mu) ** 2, weights=w)))
    odds = {(int(s), str(t)): (o, lo, hi) for s, t, o, lo, hi in
            zip(table["segment"], table["term"], table["odds_ratio"], table["or_lower"], table["or_upper"])}
    rows = []
    for s, t, e, lo, hi in zip(ame["segment"], ame["term"], ame["estimate"], ame["lower"], ame["upper"]):
        t = str(t)
        if t in sd:
            f, change = sd[t], f"+1 SD of {t} ({sd[t]:.3g})"
        else:
            col = next(c for c in design.levels if t.startswith(f"{c}["))
            f, change = 1.0, f"{col} = {t[len(col) + 1:-1]} instead of {design.levels[col][0]}"
        o, olo, ohi = odds.get((int(s), t), (np.nan, np.nan, np.nan))
        rows.append((int(s), t, change, e * f, lo * f, hi * f, o, olo, ohi))
    tr = pd.DataFrame(rows, columns=["segment", "term", "change", "ame", "ame_lower", "ame_upper",
                                     "odds_ratio", "or_lower", "or_upper"])
    tr = tr[tr["ame"] > 0].sort_values(["segment", "ame"], ascending=[True, False], kind="stable")
    tr.insert(1, "rank", tr.groupby("segment").cumcount() + 1)
    tr["significant"] = tr["ame_lower"] > 0
    labels = tuple(result.labels) if result.labels else tuple(f"segment {j}" for j in range(1, k + 1))
    return CovariateFinder(
        method=str(method), k=k, reference_segment=ref, columns=tuple(columns), terms=tuple(design.terms),
        levels={c: tuple(v) for c, v in design.levels.items()}, coef=coef, traits=tr.reset_index(drop=True),
        accuracy=accuracy, baseline_accuracy=baseline, p_value=p_value, n=int(ok.sum()), confusion=confusion,
        labels=labels, weighted=sw is not None,
    )
