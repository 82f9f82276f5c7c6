"""Scoring new respondents against a saved model, in memory, streamed from files, or on Dask.

Three inputs are understood (``source=``):

``"ratings"``
    Survey ratings in the layout the model was fitted on (the same importance / satisfaction
    columns): missing codes, the scale mapping onto 0-10 and the opportunity scores are applied
    exactly as at fit time (and the reduction, when one was used), then the model's membership
    probabilities are computed.
``"features"``
    The model's own input columns (``result.feature_names``): a model fitted on any numeric or
    categorical table.
``"observables"``
    Profile variables alone (role, company size ...), through the finder model saved with the
    segmentation: the playbook's "finder profile" for prospects who never took the survey.

``"auto"`` picks ``"ratings"`` for a model fitted on a survey, ``"features"`` otherwise.

Every path goes through one function, :meth:`Scorer.score`, applied to one chunk (a DataFrame)
at a time, so the in-memory, streamed and Dask results are the same numbers. The one exception is
a file of a model's own numeric features: it is scored straight from Arrow, and a diagonal
Gaussian mixture's blocks by a compiled kernel (:mod:`latentseg.deliver._assign_kernels`), which
gives the same segments and the probabilities to rounding (about 1e-14). Files are read as
the survey reader reads them (format by content; encoding, delimiter, gzip and the Qualtrics
layout sniffed by :func:`latentseg.io.readers.sniff_file`) and stream in chunks (delimited text
through pyarrow's incremental reader, Parquet through ``ParquetFile.iter_batches``); the output
is written incrementally (CSV, TSV, either gzipped, or Parquet, by extension) to a temporary
file that replaces the target only when complete: memory stays bounded whatever the file size.

Output columns: the id (the model's id column when present in the input, else ``row``, numbered
from 1), ``segment`` (modal segment 1..k; empty where a row has nothing to score), ``segment_name``
and ``p_1 .. p_k`` (membership probabilities).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError, format_rows
from latentseg.io.files import AtomicFile, safe_csv_cell
from latentseg.models.families import GMM, family

__all__ = ["Scorer", "AssignSummary", "assign", "assign_file", "assign_dask", "SOURCES"]

SOURCES = ("auto", "ratings", "features", "observables")
#: Rows the model scores at a time (a chunk read from a file is scored in blocks of this size).
BLOCK_ROWS = 16_384
#: Strings read as missing in CSV input (as pandas does by default).
#: Strings read as missing in CSV input: pyarrow's defaults, as the survey reader reads the file at fit
#: time (so a category such as "None" that the model was fitted with stays a category).
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"]


def _as_model(model: Any) -> Any:
    from latentseg.deliver.artifacts import SavedModel, load_model

    if isinstance(model, SavedModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise ConfigError(f"Expected a saved model (directory or SavedModel); got {type(model).__name__}.")


@dataclass
class Scorer:
    """Turns chunks of new data into membership probabilities under one saved model.

    Parameters
    ----------
    model : SavedModel or path
        From :func:`latentseg.deliver.artifacts.load_model` (or its directory).
    source : {"auto", "ratings", "features", "observables"}
    id_column : str, optional
        Column holding respondent ids; defaults to the id column seen at fit time
        (``respondent_id`` when none was recorded). Without one, ids are row numbers (files)
        or the frame's index (DataFrames).

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile
    >>> from latentseg.models import fit
    >>> from latentseg.deliver.artifacts import save_model
    >>> X = pd.DataFrame({"a": np.r_[np.zeros(20), np.ones(20) * 6] + np.tile([0.1, -0.1], 20)})
    >>> saved = save_model(tempfile.mkdtemp(), fit(X, "gmm", 2, random_seed=0))
    >>> Scorer(saved).score(pd.DataFrame({"a": [0.0, 6.0]}))["segment"].tolist()
    [1, 2]
    """

    model: Any
    source: str = "auto"
    id_column: str | None = None
    columns: list[str] = field(init=False)
    data_spec: dict[str, Any] = field(init=False)
    #: (log w, A, B, C) of a diagonal Gaussian mixture, scored by the compiled kernel (False: not
    #: one; None: not looked at yet)
    _diag: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.model = _as_model(self.model)
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}; got {self.source!r}.")
        meta = self.model.meta
        self.data_spec = dict(meta.get("data") or {})
        kind = self.data_spec.get("kind") or self.data_spec.get("data_kind") or "features"
        if kind == "survey" and "imp_columns" not in self.data_spec:
            self.data_spec = self._survey_spec_from_file()
        if self.source == "auto":
            self.source = "ratings" if kind == "survey" else "features"
        if self.source == "ratings" and kind != "survey":
            raise ConfigError(
                f"Model '{self.model.name}' was fitted on a table of {len(self.result.feature_names)} columns, "
                "not on survey ratings; score it with source='features' (CLI: --from features)."
            )
        if self.source == "features" and family(self.result.model).on_ratings:
            raise ConfigError(
                f"Model '{self.model.name}' ({self.result.model}) was fitted on the raw importance and satisfaction "
                "ratings; score survey ratings with source='ratings' (CLI: --from ratings)."
            )
        if self.id_column is None:
            self.id_column = self.data_spec.get("id_column") or "respondent_id"
        if self.source == "ratings":
            self.columns = list(self.data_spec["imp_columns"]) + list(self.data_spec["sat_columns"])
        elif self.source == "features":
            self.columns = list(self.result.feature_names)
        else:
            self._finder = self._load_finder()
            self.columns = list(self._finder.columns)

    # ------------------------------------------------------------------ basics
    @property
    def result(self) -> Any:
        return self.model.result

    @property
    def k(self) -> int:
        return int(self.result.k)

    @property
    def names(self) -> list[str]:
        return list(self.result.segment_labels)

    @property
    def probability_columns(self) -> list[str]:
        return [f"p_{j + 1}" for j in range(self.k)]

    def check_columns(self, available: Sequence[str], where: str) -> None:
        """Raise SurveyError naming the columns seen at fit time that ``available`` lacks."""
        have = set(map(str, available))
        missing = [c for c in self.columns if c not in have]
        if missing:
            what = {
                "ratings": "rating columns",
                "features": "columns",
                "observables": "observable (finder) columns",
            }[self.source]
            raise SurveyError(
                f"{where} lacks {len(missing)} of the {len(self.columns)} {what} the model was fitted on: "
                f"{format_rows(missing)} (expected {format_rows(self.columns)})."
            )

    def _survey_spec_from_file(self) -> dict[str, Any]:
        """A model saved by ``latentseg fit --save`` records only the survey's path: re-read it
        (with the saved config) to learn the rating columns and scales used at fit time."""
        from latentseg.prepare.core import rating_spec
        from latentseg.prepare.provenance import training_file

        try:  # the survey's hash, when recorded, proves it is the one the model was fitted on
            path = training_file(self.model, option=None)
        except ConfigError:
            raise ConfigError(
                f"Model '{self.model.name}' was fitted on a survey but does not record its rating columns, and "
                f"the survey it names ({self.data_spec.get('path')!r}) is not there to re-read; refit with `latentseg run`."
            ) from None
        from latentseg.config import merge_config
        from latentseg.io import read_survey

        cfg = merge_config(self.model.config or None)
        survey = read_survey(path, config=cfg)
        spec = {**self.data_spec, **rating_spec(Path(path), survey, cfg)}
        if family(self.result.model).categorical:  # as prepare() takes levels for these families
            spec["transform"] = "opportunity_levels"
        if family(self.result.model).on_ratings:  # as prepare() takes the raw ratings for these families
            spec["transform"] = "ratings"
        return spec

    # ------------------------------------------------------------------ observables
    def _load_finder(self) -> Any:
        """The saved :class:`~latentseg.decide.finder.Finder` (rebuilt from its dict if needed)."""
        from latentseg.decide.finder import Finder  # here: it imports scipy

        spec = self.model.meta.get("finder")
        if not spec:
            raise ConfigError(
                f"Model '{self.model.name}' has no finder model, so it cannot score from observable variables "
                "alone; it was saved without profile columns. Score survey ratings instead (--from ratings)."
            )
        return spec if isinstance(spec, Finder) else Finder.from_dict(spec)

    # ------------------------------------------------------------------ features
    def _features(self, frame: pd.DataFrame, where: str) -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
        """The model's input for ``frame`` and a mask of rows with nothing to score."""
        if self.source == "features":
            X = frame[self.columns]
            if family(self.result.model).categorical:
                if self.data_spec.get("transform") == "opportunity_levels":  # levels of a score table
                    from latentseg.prepare.encoding import opportunity_levels

                    X = opportunity_levels(pd.DataFrame(_numeric_block(X, self.columns, where), index=X.index,
                                                        columns=self.columns))
                empty = X.isna().all(axis=1).to_numpy()
                return X, empty
            A = self._impute(_numeric_block(X, self.columns, where))
            return A, np.isnan(A).all(axis=1)
        if self.source == "ratings":
            return self._ratings_features(frame, where)
        X = frame[self.columns]
        return X, X.isna().all(axis=1).to_numpy()

    def _ratings_features(self, frame: pd.DataFrame, where: str) -> tuple[Any, np.ndarray]:
        from latentseg.io.survey import Scale, Survey

        spec = self.data_spec
        outcomes = [str(o) for o in spec["outcomes"]]
        imp_cols, sat_cols = list(spec["imp_columns"]), list(spec["sat_columns"])
        imp = _numeric_block(frame[imp_cols], imp_cols, where)
        sat = _numeric_block(frame[sat_cols], sat_cols, where)
        codes = [float(c) for c in spec.get("missing_codes") or []]
        if codes:
            imp = np.where(np.isin(imp, codes), np.nan, imp)
            sat = np.where(np.isin(sat, codes), np.nan, sat)
        imp_scale = Scale.parse(spec["imp_scale"])
        sat_scale = Scale.parse(spec["sat_scale"])
        ids = frame.index
        for block, cols, scale in ((imp, imp_cols, imp_scale), (sat, sat_cols, sat_scale)):
            bad = (block < scale.low) | (block > scale.high)
            if bad.any():
                j = int(np.argmax(bad.any(axis=0)))
                rows = ids[bad[:, j]]
                raise SurveyError(
                    f"{where}: column '{cols[j]}' has {int(bad[:, j].sum())} value(s) outside the scale {scale} "
                    f"the model was fitted with, at rows {format_rows(rows)}."
                )
        index = pd.RangeIndex(len(frame))
        survey = Survey(
            importance=pd.DataFrame(imp, index=index, columns=outcomes),
            satisfaction=pd.DataFrame(sat, index=index, columns=outcomes),
            outcomes=pd.DataFrame(
                {"statement": [str((spec.get("statements") or {}).get(o, o)) for o in outcomes], "job_step": ""},
                index=pd.Index(outcomes, name="outcome"),
            ),
            imp_scale=imp_scale,
            sat_scale=sat_scale,
            source=where,
        )
        if spec.get("transform") == "ratings":  # a family fitted on the raw ratings (rating-lca)
            from latentseg.prepare.ratings import rating_frame

            ratings = rating_frame(survey, list(self.result.feature_names))
            return ratings, ratings.isna().all(axis=1).to_numpy()
        from latentseg.prepare.scoring import opportunity_scores

        scores = opportunity_scores(survey)
        scores = getattr(scores, "scores", scores)
        scores = pd.DataFrame(scores)
        reduction = spec.get("reduction")
        if reduction:
            scores = _apply_reduction(reduction, scores)
        feats = scores[list(self.result.feature_names)]
        if spec.get("transform") == "opportunity_levels":  # latent class on opportunity levels
            from latentseg.prepare.encoding import opportunity_levels

            levels = opportunity_levels(feats)
            return levels, levels.isna().all(axis=1).to_numpy()
        A = feats.to_numpy(dtype=float)
        empty = np.isnan(A).all(axis=1)
        return self._impute(A), empty

    def _impute(self, A: np.ndarray) -> np.ndarray:
        """Missing values replaced by the fit's column means, for a family that needs complete data
        (k-means; the means are saved with the model, as prepare() filled its own input)."""
        means = self.data_spec.get("impute_means")
        if not means or not np.isnan(A).any():
            return A
        fill = np.array([float(means.get(str(c), np.nan)) for c in self.result.feature_names])
        return np.where(np.isnan(A), fill[None, :], A)

    # ------------------------------------------------------------------ scoring
    def ids_for(self, frame: pd.DataFrame, row_offset: int | None) -> tuple[str, Any]:
        """(name, values) of the id column of the output."""
        if self.id_column in frame.columns:
            ids = frame[self.id_column]
            blank = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
            if blank.any():
                first = np.flatnonzero(blank)[:5] + (row_offset or 0) + 2  # + header line, 1-based
                raise SurveyError(
                    f"column '{self.id_column}' has {int(blank.sum())} blank respondent id(s) (empty, or a missing-value "
                    f"word such as NA or null) at line(s) {first.tolist()} of the file; every row needs an id, or "
                    "leave --id-column out to number the rows."
                )
            return str(self.id_column), ids.to_numpy()
        if row_offset is not None:
            return "row", np.arange(row_offset + 1, row_offset + len(frame) + 1, dtype=np.int64)
        name = frame.index.name or "row"
        return str(name), frame.index.to_numpy()

    def probabilities(self, frame: pd.DataFrame, where: str = "new data") -> np.ndarray:
        """Membership probabilities, shape (len(frame), k); NaN rows where nothing can be scored."""
        self.check_columns(frame.columns, where)
        X, empty = self._features(frame, where)
        n = len(frame)
        P = np.full((n, self.k), np.nan)
        keep = ~empty
        if not keep.any():
            return P
        everyone = bool(keep.all())
        if everyone:
            Xk = X
        else:
            Xk = X[keep] if isinstance(X, np.ndarray) else X.loc[X.index[keep]]
        if self.source == "observables":
            Pk = np.asarray(self._finder.predict_proba(Xk), dtype=float)
        else:
            Pk = self._predict(Xk)
        if everyone:
            return np.asarray(Pk, dtype=float)
        P[keep] = Pk
        return P

    def _predict(self, X: Any) -> np.ndarray:
        """The model's membership probabilities, computed :data:`BLOCK_ROWS` rows at a time (each
        row's probabilities depend on that row alone; blocks keep the engine's work arrays in cache,
        which halves the time on a few hundred thousand rows)."""
        from latentseg.models import predict_proba

        n = len(X)
        if n <= BLOCK_ROWS:
            return np.asarray(predict_proba(self.result, X), dtype=float)
        P = np.empty((n, self.k))
        for start in range(0, n, BLOCK_ROWS):
            block = X[start : start + BLOCK_ROWS] if isinstance(X, np.ndarray) else X.iloc[start : start + BLOCK_ROWS]
            P[start : start + BLOCK_ROWS] = np.asarray(predict_proba(self.result, block), dtype=float)
        return P

    def _diagonal(self) -> Any:
        """(log w, A, B, C) when the model is a diagonal Gaussian mixture scored on its own features
        (:meth:`_score_matrix`), else None."""
        if self._diag is None:
            terms = None
            if self.source == "features" and self.result.model == GMM and not self.data_spec.get("impute_means"):
                from latentseg.models.gmm import diagonal_terms

                terms = diagonal_terms(self.result)
            self._diag = terms if terms is not None else False
        return self._diag or None

    def _score_matrix(self, X: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities, shape (k, n), and modal segment (0-based int8; -1 where a row has nothing
        observed, its probabilities NaN) of a diagonal Gaussian mixture, by the compiled kernel
        (:mod:`latentseg.deliver._assign_kernels`): the numbers of the engine's
        :func:`latentseg.models.gmm.predict_proba` to rounding. ``X``: shape (n, d), or its d
        columns. Infinite values are refused by the engine's own check, with its message."""
        from latentseg.deliver._assign_kernels import diag_log_joint, modal_segment
        from latentseg.models._em import normalize_log

        logw, A, B, C = self._diagonal()
        if isinstance(X, np.ndarray):
            X = [X[:, j] for j in range(X.shape[1])]
        n = len(X[0]) if len(X) else 0
        P = np.empty((self.k, n))
        nobs = np.empty(n, dtype=np.int32)
        seg = np.empty(n, dtype=np.int8)
        buf = np.empty((min(BLOCK_ROWS, n), len(X)), order="F")
        for start in range(0, n, BLOCK_ROWS):  # a block is copied, scored and normalised while in cache
            stop = min(start + BLOCK_ROWS, n)
            if stop - start < len(buf):
                buf = np.empty((stop - start, len(X)), order="F")
            for j, x in enumerate(X):
                buf[:, j] = x[start:stop]
            if diag_log_joint(buf, A, B, C, logw, P, nobs, start):
                self._predict(buf)  # raises the engine's message on infinite values
                raise AssertionError("infinite values were not refused")  # pragma: no cover
            block = P[:, start:stop]
            normalize_log(block, out=block, axis=0)
        modal_segment(P, nobs, seg)
        return P, seg

    # ------------------------------------------------------------------ Arrow (files)
    def arrow_ready(self, schema: Any) -> bool:
        """Whether chunks with this Arrow schema can be scored without pandas: the model's own
        numeric feature columns (``source="features"``, a family fitted on numbers), every one of
        them numeric in the file."""
        import pyarrow.types as pat

        if self.source != "features" or family(self.result.model).categorical:
            return False
        names = set(schema.names)
        if not all(c in names for c in self.columns):
            return False
        return all(pat.is_integer(schema.field(c).type) or pat.is_floating(schema.field(c).type) for c in self.columns)

    def score_arrow(self, batch: Any, *, row_offset: int, where: str) -> Any:
        """Score one Arrow record batch of a file (see :meth:`arrow_ready`) straight into an Arrow
        table with the columns and types :meth:`score` gives; the same numbers."""
        return self._score_arrow(batch, row_offset)[0]

    def _score_arrow(self, batch: Any, row_offset: int) -> tuple[Any, np.ndarray, np.ndarray]:
        """(table, modal segment with 0 where not scored, probabilities) of one batch."""
        import pyarrow as pa

        n = batch.num_rows
        names = batch.schema.names
        values = [batch.column(names.index(c)).to_numpy(zero_copy_only=False) for c in self.columns]
        if self._diagonal() is not None:  # compiled: rows with nothing observed come back as segment -1
            PT, seg = self._score_matrix(values)
            scored = seg >= 0
        else:
            X = np.empty((n, len(self.columns)), order="F")  # columns contiguous: the engine reads them so
            for j, col in enumerate(values):
                X[:, j] = col
            nan = np.isnan(X)
            empty = nan.all(axis=1) if nan.any() else np.zeros(n, dtype=bool)
            X = self._impute(X)
            if empty.any():
                P = np.full((n, self.k), np.nan)
                if not empty.all():
                    P[~empty] = self._predict(np.asfortranarray(X[~empty]))
            else:
                P = self._predict(X) if n else np.empty((0, self.k))
            scored = ~empty
            seg = np.argmax(np.where(scored[:, None], P, -1.0), axis=1) if self.k else np.zeros(n, dtype=np.int64)
            PT = np.ascontiguousarray(P.T)  # one contiguous row per output column
        if self.id_column in names:
            id_name, ids = str(self.id_column), self._arrow_ids(batch.column(names.index(self.id_column)), row_offset)
        else:
            id_name, ids = "row", pa.array(np.arange(row_offset + 1, row_offset + n + 1, dtype=np.int64))
        mask = None if scored.all() else ~scored
        columns = {
            id_name: ids,
            "segment": pa.array((seg + 1).astype(np.int16), mask=mask),
            "segment_name": pa.DictionaryArray.from_arrays(pa.array(seg.astype(np.int8), mask=mask),
                                                           pa.array(self.names, type=pa.string())),
        }
        for j, col in enumerate(self.probability_columns):
            columns[col] = pa.array(PT[j])
        return pa.table(columns), np.where(scored, seg + 1, 0), PT.T

    def _arrow_ids(self, ids: Any, row_offset: int) -> Any:
        """The id column of a batch, refused (naming the lines) where an id is blank."""
        import pyarrow as pa
        import pyarrow.compute as pc

        blank = ids.is_null()
        if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
            blank = pc.or_kleene(blank, pc.equal(pc.utf8_trim_whitespace(ids), "")).fill_null(True)
        blank_np = np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
        if blank_np.any():
            first = np.flatnonzero(blank_np)[:5] + row_offset + 2  # + header line, 1-based
            raise SurveyError(
                f"column '{self.id_column}' has {int(blank_np.sum())} blank respondent id(s) (empty, or a missing-value "
                f"word such as NA or null) at line(s) {first.tolist()} of the file; every row needs an id, or "
                "leave --id-column out to number the rows."
            )
        return ids

    def score(self, frame: pd.DataFrame, *, row_offset: int | None = None, where: str = "new data") -> pd.DataFrame:
        """Score one chunk.

        Parameters
        ----------
        frame : DataFrame, shape (n, ...)
            Must hold :attr:`columns`; other columns are ignored.
        row_offset : int, optional
            Rows already scored before this chunk (files: ids are row numbers when there is no
            id column). ``None`` uses the frame's index as id.
        where : str
            Named in messages (the file).

        Returns
        -------
        DataFrame, shape (n, 3 + k)
            id, ``segment`` (Int16, missing where nothing could be scored), ``segment_name``
            (categorical), ``p_1 .. p_k``.
        """
        P = self.probabilities(frame, where)
        id_name, ids = self.ids_for(frame, row_offset)
        return self._frame(id_name, ids, P)

    def _frame(self, id_name: str, ids: Any, P: np.ndarray) -> pd.DataFrame:
        scored = ~np.isnan(P).any(axis=1)
        seg = np.where(scored, np.argmax(np.nan_to_num(P, nan=-1.0), axis=1) + 1, 0)
        segment = pd.array(np.where(scored, seg, 0), dtype="Int16")
        segment[~scored] = pd.NA
        names = pd.Categorical.from_codes(np.where(scored, seg - 1, -1), categories=self.names)
        out = pd.DataFrame({id_name: ids, "segment": segment, "segment_name": names})
        for j, col in enumerate(self.probability_columns):
            out[col] = P[:, j]
        return out

    def empty_output(self, id_name: str = "respondent_id", id_dtype: Any = "str") -> pd.DataFrame:
        """A zero-row frame with the output's columns and dtypes (Dask's ``meta``)."""
        out = self._frame(id_name, np.array([], dtype=object), np.empty((0, self.k)))
        out[id_name] = out[id_name].astype(id_dtype)
        return out


def _numeric_block(frame: pd.DataFrame, columns: Sequence[str], where: str) -> np.ndarray:
    """float64 matrix of ``columns``, with a clear message naming a non-numeric column."""
    try:  # columns contiguous: the engines read them so (twice as fast as rows)
        return np.asfortranarray(frame.to_numpy(dtype=float, na_value=np.nan))
    except (TypeError, ValueError):
        for c in columns:
            col = frame[c]
            if col.dtype.kind in "biuf":
                continue
            num = pd.to_numeric(col, errors="coerce")
            bad = num.isna() & col.notna()
            if bad.any():
                rows = frame.index[bad.to_numpy()]
                examples = ", ".join(repr(v) for v in pd.unique(col[bad])[:3])
                raise SurveyError(
                    f"{where}: column '{c}' has non-numeric values ({examples}) at rows {format_rows(rows)}; "
                    "expected numbers."
                ) from None
        raise


def _apply_reduction(spec: Mapping[str, Any], scores: pd.DataFrame) -> pd.DataFrame:
    """Project opportunity scores with the saved reduction's linear map, exactly as
    :meth:`latentseg.prepare.reduce.Reduction.transform` does (``Reduction.transform_spec()`` saved with
    the model): standardise with the fit-time mean and scale, then a missing score counts as the
    outcome mean (PCA / FA) or drops out of its job step's average (job-step composites)."""
    cols = [str(c) for c in spec["columns"]]
    X = scores.rename(columns=str)[cols].to_numpy(dtype=float, na_value=np.nan)
    Z = (X - np.asarray(spec["mean"], dtype=float)) / np.asarray(spec["scale"], dtype=float)
    W = np.asarray(spec["weights"], dtype=float)  # (m, f)
    if spec.get("method") == "jobstep":
        member = (W > 0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (np.nan_to_num(Z) @ member) / ((~np.isnan(Z)).astype(float) @ member)
    else:
        out = np.nan_to_num(Z) @ W
    return pd.DataFrame(out, index=scores.index, columns=[str(c) for c in spec["labels"]])


# =============================================================================== in memory
def assign(
    model: Any,
    data: pd.DataFrame,
    *,
    source: str = "auto",
    id_column: str | None = None,
) -> pd.DataFrame:
    """Membership probabilities and modal segment for a DataFrame of new respondents.

    Parameters
    ----------
    model : SavedModel or path
    data : DataFrame, shape (n, ...)
        Ratings (same columns as at fit time), the model's feature columns, or observables.
    source : {"auto", "ratings", "features", "observables"}
    id_column : str, optional

    Returns
    -------
    DataFrame, shape (n, 3 + k) or (n, 2 + k)
        Indexed like ``data`` (the same index values and index name), with columns: the id
        column when ``data`` has one (``id_column``, by default the one seen at fit time),
        ``segment``, ``segment_name``, ``p_1 .. p_k``. Without an id column the index is the
        id, so it is not repeated as a column.

    Raises
    ------
    ConfigError
        ``data`` is not a DataFrame (score an array of the model's own features with
        :func:`latentseg.models.predict_proba`).
    SurveyError
        Columns seen at fit time are missing, or hold non-numeric / out-of-scale values.

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile
    >>> from latentseg.models import fit
    >>> from latentseg.deliver.artifacts import save_model
    >>> X = pd.DataFrame({"a": np.r_[np.zeros(20), np.ones(20) * 6] + np.tile([0.1, -0.1], 20)})
    >>> saved = save_model(tempfile.mkdtemp(), fit(X, "gmm", 2, random_seed=0))
    >>> new = pd.DataFrame({"a": [0.0, 6.0]}, index=pd.Index(["c1", "c2"], name="customer"))
    >>> out = assign(saved, new)
    >>> out.index.name, out.index.tolist(), out["segment"].tolist(), out.columns.tolist()
    ('customer', ['c1', 'c2'], [1, 2], ['segment', 'segment_name', 'p_1', 'p_2'])
    """
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(
            f"assign() needs a DataFrame with the model's columns; got {type(data).__name__}. "
            "Score an array of the model's own features with latentseg.models.predict_proba(model.result, X)."
        )
    scorer = model if isinstance(model, Scorer) else Scorer(model, source=source, id_column=id_column)
    out = scorer.score(data, where="new data")
    if scorer.id_column not in data.columns:
        out = out.iloc[:, 1:]  # the id came from the index, which the output keeps
    out.index = data.index.copy()
    return out


# =============================================================================== files
@dataclass(frozen=True)
class AssignSummary:
    """What :func:`assign_file` did."""

    input: str
    output: str
    format: str
    rows: int
    scored: int
    chunks: int
    seconds: float
    counts: dict[int, int]
    expected_shares: list[float]
    segment_names: list[str]
    #: an export's responses not scored because run sets them aside (Status / Finished): count per reason
    set_aside: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "format": self.format,
            "rows": self.rows,
            "scored": self.scored,
            "unscored": self.rows - self.scored,
            "set_aside": {"count": sum(self.set_aside.values()), "reasons": dict(self.set_aside)},
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds > 0 else None,
            "segments": [
                {
                    "id": j + 1,
                    "name": self.segment_names[j],
                    "modal_count": self.counts.get(j + 1, 0),
                    "modal_share": (self.counts.get(j + 1, 0) / self.scored) if self.scored else None,
                    "expected_share": self.expected_shares[j],
                }
                for j in range(len(self.segment_names))
            ],
        }


#: Output formats by extension: (format name, kind, delimiter, compression).
_OUTPUTS = {
    ".csv.gz": ("csv.gz", "csv", ",", "gzip"),
    ".tsv.gz": ("tsv.gz", "csv", "\t", "gzip"),
    ".csv": ("csv", "csv", ",", None),
    ".tsv": ("tsv", "csv", "\t", None),
    ".parquet": ("parquet", "parquet", None, None),
    ".pq": ("parquet", "parquet", None, None),
}


def _output_format(path: Path) -> tuple[str, str, str | None, str | None]:
    """(name, kind, delimiter, compression) of the output file, by its extension."""
    name = path.name.lower()
    for suffix, fmt in _OUTPUTS.items():  # longest suffixes first
        if name.endswith(suffix):
            return fmt
    raise ConfigError(
        f"Output file '{path}' has an unknown extension; use .csv, .csv.gz, .tsv, .tsv.gz or .parquet."
    )


def _bytes_per_row(path: Path) -> float:
    with open(path, "rb") as fh:
        sample = fh.read(1 << 20)
    lines = sample.count(b"\n")
    return len(sample) / max(lines, 1)


def _unreadable(path: Path, exc: BaseException, fmt: Any = None) -> SurveyError:
    """One message naming the file for a read that failed part-way (a damaged file)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if fmt is not None and fmt.compression and isinstance(exc, (OSError, EOFError)):
        return SurveyError(f"'{path}': cannot be decompressed as gzip ({first}).")
    if fmt is not None and isinstance(exc, UnicodeError):
        return SurveyError(f"'{path}': cannot be decoded as {fmt.encoding} ({first}).")
    what = "CSV" if fmt is not None else "Parquet"
    return SurveyError(f"'{path}': cannot be read as {what} ({first}).")


def _iter_csv(path: Path, scorer: Scorer, chunksize: int, fmt: Any) -> Iterator[Any]:
    """Stream delimited text in chunks with the layout the survey reader sniffed (``fmt``, a
    :class:`latentseg.io.readers.FileFormat`: encoding, delimiter, gzip, Qualtrics rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = list(fmt.header)
    scorer.check_columns(header, f"'{path}'")
    wanted = list(dict.fromkeys(scorer.columns + ([scorer.id_column] if scorer.id_column in header else [])))
    types: dict[str, Any] = {}
    if scorer.id_column in header:
        types[scorer.id_column] = pa.string()  # ids keep their text form: 007 stays 007
    if scorer.source in ("ratings", "features") and not family(scorer.result.model).categorical:
        for c in scorer.columns:
            types[c] = pa.float64()
    elif scorer.source == "observables":  # fixed types: a type inferred per block could change
        for c in scorer._finder.numeric:
            types[c] = pa.float64()
        for c in scorer._finder.categories:
            types[c] = pa.string()
    else:  # categorical indicators: read as text, as the latent class model keys its categories
        for c in scorer.columns:
            types[c] = pa.string()
    bpr = 0.0 if fmt.compression else _bytes_per_row(path)
    # Arrow's streaming reader holds ~35 blocks' worth while it parses: 8 MB blocks (~65,000 rows of
    # 20 numbers) keep reading 10M x 20 to ~300 MB at the CPU of 25 MB blocks, which held ~900 MB
    block = int(min(max(chunksize * (bpr or 200), 1 << 20), 1 << 23))
    source = None
    try:
        source = pa.input_stream(str(path), compression=fmt.compression)
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                block_size=block, use_threads=True, encoding=fmt.encoding, skip_rows_after_names=fmt.skip_rows
            ),
            parse_options=pacsv.ParseOptions(delimiter=fmt.delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types=types, null_values=NULL_VALUES, strings_can_be_null=True
            ),
        )
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            for start in range(0, batch.num_rows, chunksize):  # blocks are bytes; chunks are rows
                yield batch.slice(start, chunksize)  # Arrow: scored as is, or as pandas (assign_file)
    except pa.ArrowInvalid as exc:
        if fmt.compression and "zlib" in str(exc).lower():
            raise _unreadable(path, OSError(str(exc)), fmt) from None
        raise SurveyError(f"'{path}': {_arrow_message(exc, header)}") from None
    except (pa.ArrowException, OSError, EOFError, UnicodeError) as exc:
        raise _unreadable(path, exc, fmt) from None
    finally:
        if source is not None:
            source.close()


def _arrow_message(exc: Exception, header: Sequence[str]) -> str:
    """pyarrow's CSV error in our words: the column by name, the line, what was expected."""
    import re

    msg = str(exc).strip().splitlines()[0]
    m = re.search(r"CSV column #(\d+): Row #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", msg)
    if m:
        col = int(m.group(1))
        name = header[col] if col < len(header) else f"#{col}"
        return (
            f"column '{name}' has a non-numeric value '{m.group(4)}' at line {m.group(2)} of the file; "
            "expected numbers."
        )
    return msg


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:  # read as the batches are asked for: pre-buffering whole row groups (meant for remote
        # stores) held about 300 MB more at 10M x 20, for no speed on a local disk
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:  # ArrowInvalid / OSError for a damaged file
        raise _unreadable(path, exc) from None


def _iter_parquet(path: Path, scorer: Scorer, chunksize: int, pf: Any = None) -> Iterator[Any]:
    import pyarrow as pa

    pf = pf if pf is not None else _parquet_file(path)
    names = list(pf.schema_arrow.names)
    scorer.check_columns(names, f"'{path}'")
    wanted = list(dict.fromkeys(scorer.columns + ([scorer.id_column] if scorer.id_column in names else [])))
    try:
        for batch in pf.iter_batches(batch_size=chunksize, columns=wanted):
            yield batch
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None


def _iter_frame(path: Path, frame: pd.DataFrame, scorer: Scorer, chunksize: int,
                aside: np.ndarray | None = None) -> Iterator[pd.DataFrame]:
    """An Excel / SPSS file, a survey export or a file with Status / Finished columns, read whole by the survey reader (they cannot be
    streamed), in chunks; each chunk's ``attrs["set_aside"]`` marks its rows that are not scored
    (:func:`_set_aside_rows`)."""
    scorer.check_columns([str(c) for c in frame.columns], f"'{path}'")
    for start in range(0, len(frame), chunksize):
        chunk = frame.iloc[start : start + chunksize].reset_index(drop=True)
        if aside is not None:
            chunk.attrs["set_aside"] = aside[start : start + chunksize]
        yield chunk


def _status_columns(names: Sequence[Any]) -> dict[str, Any]:
    """The ``Status`` / ``Finished`` columns among ``names`` (by their normalised name), first of each."""
    import re

    found: dict[str, Any] = {}
    for c in names:
        key = re.sub(r"[^a-z0-9]", "", str(c).lower())
        if key in ("status", "finished") and key not in found:
            found[key] = c
    return found


def _set_aside_rows(frame: pd.DataFrame) -> tuple[np.ndarray | None, dict[str, int]]:
    """The rows of an export that ``run`` sets aside by its ``Status`` / ``Finished`` columns
    (survey previews, tests, spam, unfinished), as the survey reader does: a mask (``None`` when
    there are none) and the count per reason. They stay in the output, unscored."""
    from latentseg.io.exports import status_exclusions

    found = _status_columns(frame.columns)
    if not found:
        return None, {}
    status = frame[found["status"]].rename(str(found["status"])) if "status" in found else None
    finished = frame[found["finished"]].rename(str(found["finished"])) if "finished" in found else None
    mask, reasons, _ = status_exclusions(status, finished)
    if not np.asarray(mask).any():
        return None, {}
    counts: dict[str, int] = {}
    for why in reasons:
        counts[why] = counts.get(why, 0) + 1
    return np.asarray(mask, dtype=bool), counts


def _unscore(res: pd.DataFrame, aside: np.ndarray, scorer: Scorer) -> pd.DataFrame:
    """``res`` with the set-aside rows' segment and probabilities blanked."""
    res = res.copy()
    res.loc[aside, "segment"] = pd.NA
    res.loc[aside, "segment_name"] = np.nan
    res.loc[aside, list(scorer.probability_columns)] = np.nan
    return res


def _open_input(path: Path, scorer: Scorer, chunksize: int) -> tuple[list[str], float | None, Iterator[Any], dict[str, int]]:
    """(column names, rows expected or None, chunks) of the new data, read as the survey reader
    reads it: format by content, encoding / delimiter / gzip / Qualtrics layout sniffed; and the
    count per reason of an export's responses set aside (not scored) by Status / Finished."""
    from latentseg.io.readers import read_table, sniff_file

    fmt = sniff_file(path)
    if fmt.kind == "parquet":
        pf = _parquet_file(path)
        return [str(n) for n in pf.schema_arrow.names], float(pf.metadata.num_rows), _iter_parquet(path, scorer, chunksize, pf), {}
    ratings = scorer.data_spec if scorer.source == "ratings" else None
    if fmt.kind == "csv" and fmt.layout == "plain" and not (ratings or {}).get("labels") and not _status_columns(fmt.header):
        bpr = 0.0 if fmt.compression else _bytes_per_row(path)
        total = (path.stat().st_size / bpr) if bpr else None
        return list(fmt.header), total, _iter_csv(path, scorer, chunksize, fmt), {}
    # a Qualtrics / SurveyMonkey export or choice text: read whole by the survey reader, as at fit time
    frame = read_table(path, ratings=ratings).rename(columns=str)
    aside, reasons = _set_aside_rows(frame)
    return list(frame.columns), float(len(frame)), _iter_frame(path, frame, scorer, chunksize, aside), reasons


class _Background:
    """Runs ``work(item)`` for each item put, in order, in one background thread, so that writing
    a chunk overlaps the scoring of the next (pyarrow releases the GIL while it encodes and
    writes). At most ``depth`` items wait; an error in ``work`` is raised again by the next
    :meth:`put` or by :meth:`close`."""

    _END = object()

    def __init__(self, work: Any, depth: int = 2) -> None:
        import queue
        import threading

        self.work = work
        self.error: BaseException | None = None
        self.queue: Any = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, name="latentseg-assign-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if self.error is None:
                try:
                    self.work(item)
                except BaseException as exc:  # handed to the caller's thread
                    self.error = exc

    def put(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def close(self, quiet: bool = False) -> None:
        """Wait for every item; raise the first error (unless ``quiet``)."""
        self.queue.put(self._END)
        self.thread.join()
        if self.error is not None and not quiet:
            raise self.error


def _prefetch(chunks: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``chunks``, read ``depth`` ahead in a background thread (pyarrow releases the GIL while it
    reads and decodes), so the next chunk is read while this one is scored. An error while
    reading is raised here, at the chunk where it happened; leaving early stops the reader."""
    import queue
    import threading

    q: Any = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put((chunk, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            q.put((end, exc))
            return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the reader's own clean-up (file handles) in the thread that ran it
        q.put((end, None))

    thread = threading.Thread(target=produce, name="latentseg-assign-reader", daemon=True)
    thread.start()
    try:
        while True:
            chunk, exc = q.get()
            if chunk is end:
                if exc is not None:
                    raise exc
                return
            yield chunk
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting to put
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


class _Writer:
    """Incremental CSV / TSV (optionally gzipped) / Parquet writer into a temporary file that
    replaces the target at the end. In text output every text cell (ids, segment names) and the
    id column's name are made spreadsheet-safe (:func:`latentseg.io.files.safe_csv_cell`)."""

    def __init__(self, path: Path, fmt: tuple[str, str, str | None, str | None]) -> None:
        self.path = path
        self.name, self.kind, self.delimiter, self.compression = fmt
        self.fmt = self.kind
        self.file = AtomicFile(path, suffix=".part")
        self.tmp = self.file.tmp
        self.writer: Any = None
        self.sink: Any = None

    def _safe(self, frame: pd.DataFrame) -> pd.DataFrame:
        names = frame["segment_name"]
        frame = frame.assign(
            segment_name=names.cat.rename_categories([safe_csv_cell(c) for c in names.cat.categories])
        )
        id_name = frame.columns[0]
        ids = frame[id_name]
        if ids.dtype == object or pd.api.types.is_string_dtype(ids.dtype):
            frame[id_name] = ids.map(safe_csv_cell)
        return frame.rename(columns={id_name: safe_csv_cell(str(id_name))})

    def _safe_arrow(self, table: Any) -> Any:
        """:meth:`_safe` for an Arrow table (the names are few; ids are checked in bulk and only a
        chunk holding a risky id goes through pandas)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = table.column("segment_name").combine_chunks()
        safe_names = pa.DictionaryArray.from_arrays(
            names.indices, pa.array([safe_csv_cell(v) for v in names.dictionary.to_pylist()], type=pa.string()))
        table = table.set_column(table.schema.get_field_index("segment_name"), "segment_name", safe_names)
        id_name = table.schema.names[0]
        ids = table.column(0)
        if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
            from latentseg.io.files import _FORMULA_START

            if pc.any(_any_starts(ids, _FORMULA_START)).as_py():
                ids = pa.array([safe_csv_cell(v) for v in ids.to_pylist()], type=ids.type)
                table = table.set_column(0, id_name, ids)
        return table.rename_columns([safe_csv_cell(str(id_name)), *table.schema.names[1:]])

    def write(self, frame: Any) -> None:
        import pyarrow as pa

        if isinstance(frame, pd.DataFrame):
            if self.kind == "csv":
                frame = self._safe(frame)
            table = pa.Table.from_pandas(frame, preserve_index=False)
        else:  # an Arrow table from Scorer.score_arrow
            table = self._safe_arrow(frame) if self.kind == "csv" else frame
        if self.writer is None:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                self.writer = pq.ParquetWriter(self.tmp, table.schema, **_parquet_options(table.schema))
            else:
                import pyarrow.csv as pacsv

                if self.compression:  # Python's gzip at the usual level 6: Arrow's is 3x slower
                    import gzip

                    self.sink = gzip.open(self.tmp, "wb", compresslevel=6)
                self.writer = pacsv.CSVWriter(
                    self.sink if self.sink is not None else str(self.tmp), table.schema,
                    write_options=pacsv.WriteOptions(delimiter=self.delimiter),
                )
            self.schema = table.schema
        self.writer.write_table(table.cast(self.schema))

    def close(self, ok: bool) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
            if self.sink is not None:
                self.sink.close()  # the gzip trailer
        except BaseException:
            self.file.discard()
            raise
        if ok:
            self.file.commit()
        else:
            self.file.discard()


def _parquet_options(schema: Any) -> dict[str, Any]:
    """How the output's columns are encoded (10M x 20 at k = 5: 0.8 -> 0.6 s of CPU to write and
    a smaller file than pyarrow's defaults with dictionaries switched off).

    Dictionary encoding only where it pays (the names); trying it on the probabilities costs 5x
    the write time for nothing. No compression where it gains nothing (the probabilities) or
    little for its time; row numbers as deltas (a few bytes per page); text ids keep Snappy.
    Min / max statistics for the id and the segment (what a reader filters on), not for the
    probabilities.
    """
    import pyarrow.types as pat

    id_name = schema.names[0]
    integer_id = pat.is_integer(schema.field(id_name).type)
    compression = {name: "none" for name in schema.names}
    if not integer_id:
        compression[id_name] = "snappy"
    return {
        "use_dictionary": ["segment_name"],
        "compression": compression,
        "column_encoding": {id_name: "DELTA_BINARY_PACKED"} if integer_id else None,
        "write_statistics": list(schema.names[:2]),
    }


def assign_file(
    model: Any,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    chunksize: int = 200_000,
    source: str = "auto",
    id_column: str | None = None,
    progress: bool = False,
) -> AssignSummary:
    """Score a CSV or Parquet file in chunks, writing CSV, TSV or Parquet incrementally.

    Parameters
    ----------
    model : SavedModel or path
    src : path
        Read as the survey reader reads it (:func:`latentseg.io.readers.sniff_file`): delimited
        text in UTF-8, UTF-16 (with BOM), Windows-1252 or Latin-1, delimited by ``,`` ``;``
        tab or ``|``, optionally gzipped, streamed in chunks; Parquet, streamed by batches;
        Excel / SPSS, Qualtrics / SurveyMonkey exports, choice text and files with ``Status`` /
        ``Finished`` columns, read whole by the survey reader then scored in chunks. The format
        follows the content, not the extension. Responses ``run`` sets aside by ``Status`` /
        ``Finished`` (survey previews, tests, spam, unfinished) stay in the output unscored and
        are counted, per reason, in the summary's ``set_aside``.
    out : path
        By extension: ``.csv``, ``.csv.gz`` (gzipped), ``.tsv`` (tab-separated), ``.tsv.gz``
        or ``.parquet``; written to a temporary file first and moved into place when
        complete. In text output every text cell (ids, segment names) is spreadsheet-safe.
    chunksize : int, default 200000
        Rows per chunk (memory is about ``chunksize x columns x 8`` bytes, a few times over).
    source, id_column
        As :class:`Scorer`. An ``id_column`` given here must be in the file; ids keep their
        text form (``007`` stays ``007``).
    progress : bool
        Show a rich progress bar on stderr.

    Returns
    -------
    AssignSummary

    Raises
    ------
    SurveyError
        Missing columns (named, against those seen at fit time), a missing ``id_column``,
        non-numeric or out-of-scale values, an unreadable, damaged (a corrupt gzip) or
        mislabelled file (a ``.parquet`` that is not Parquet).
    ConfigError
        An unknown output extension or a bad ``chunksize``.
    """
    if not isinstance(chunksize, int) or chunksize < 1:
        raise ConfigError(f"chunksize must be a positive integer; got {chunksize!r}.")
    scorer = model if isinstance(model, Scorer) else Scorer(model, source=source, id_column=id_column)
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise SurveyError(f"New data file '{src}' does not exist.")
    out_fmt = _output_format(out)
    if out.resolve() == src.resolve():
        raise ConfigError(f"The output '{out}' would overwrite the input.")
    names, total, chunks, set_aside = _open_input(src, scorer, chunksize)
    if id_column is not None and id_column not in names:
        raise SurveyError(
            f"'{src}' has no id column '{id_column}' (--id-column); its columns are {format_rows(names, limit=12)}."
        )
    out.parent.mkdir(parents=True, exist_ok=True)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
        transient=True,
    )
    t0 = time.perf_counter()
    rows = scored = n_chunks = 0
    counts = np.zeros(scorer.k + 1, dtype=np.int64)
    psum = np.zeros(scorer.k)
    writer = _Writer(out, out_fmt)
    arrow: bool | None = None  # whether the file's chunks are scored straight from Arrow (decided on the first)
    ok = False
    try:
        with bar:
            task = bar.add_task("score", total=total)
            background = _Background(writer.write)
            try:
                for chunk in _prefetch(chunks):
                    where = f"'{src}'"
                    if not isinstance(chunk, pd.DataFrame) and arrow is None:
                        arrow = scorer.arrow_ready(chunk.schema)
                    if isinstance(chunk, pd.DataFrame) or not arrow:
                        frame = chunk if isinstance(chunk, pd.DataFrame) else chunk.to_pandas()
                        res: Any = scorer.score(frame, row_offset=rows, where=where)
                        aside = frame.attrs.get("set_aside")
                        if aside is not None and aside.any():
                            res = _unscore(res, aside, scorer)
                        seg = res["segment"].to_numpy(dtype=np.int64, na_value=0)
                        P = res[scorer.probability_columns].to_numpy()
                    else:
                        res, seg, P = scorer._score_arrow(chunk, rows)
                    background.put(res)
                    scored += _tally(seg, P, counts, psum)
                    rows += len(seg)
                    n_chunks += 1
                    bar.update(task, completed=min(rows, total) if total else rows)
            except BaseException:
                background.close(quiet=True)  # the error at hand is the one to report
                raise
            background.close()
        if writer.writer is None:  # no rows at all: still write a valid, empty file
            writer.write(scorer.empty_output(scorer.id_column if scorer.id_column else "row"))
        ok = True
    finally:
        writer.close(ok)
    seconds = time.perf_counter() - t0
    return AssignSummary(
        input=str(src),
        output=str(out),
        format=out_fmt[0],
        rows=rows,
        scored=scored,
        chunks=n_chunks,
        seconds=seconds,
        counts={j: int(counts[j]) for j in range(1, scorer.k + 1)},
        expected_shares=[float(v) for v in (psum / scored if scored else np.full(scorer.k, math.nan))],
        segment_names=scorer.names,
        set_aside=set_aside,
    )


def _any_starts(ids: Any, prefixes: Sequence[str]) -> Any:
    """Arrow boolean array: which strings of ``ids`` start with any of ``prefixes``."""
    import pyarrow.compute as pc

    out = pc.starts_with(ids, prefixes[0])
    for p in prefixes[1:]:
        out = pc.or_(out, pc.starts_with(ids, p))
    return out


def _tally(seg: np.ndarray, P: np.ndarray, counts: np.ndarray, psum: np.ndarray) -> int:
    """Add a chunk's modal segments (0 = not scored) and probabilities to the running totals;
    returns the rows scored."""
    counts += np.bincount(seg, minlength=len(counts))
    good = seg > 0
    n_good = int(np.count_nonzero(good))
    psum += (P.sum(axis=0) if n_good == len(seg) else P[good].sum(axis=0)) if n_good else 0.0
    return n_good


# =============================================================================== Dask
def assign_dask(model: Any, ddf: Any, *, source: str = "auto", id_column: str | None = None) -> Any:
    """Score a ``dask.dataframe`` partition by partition (lazy; call ``.compute()``).

    Parameters
    ----------
    model : SavedModel or path
    ddf : dask.dataframe.DataFrame
        Ratings, features or observables, as for :func:`assign`. Without an id column the
        partition index is used as id (give the frame a meaningful index).
    source, id_column
        As :class:`Scorer`.

    Returns
    -------
    dask.dataframe.DataFrame
        The same columns as :func:`assign`, partitioned like ``ddf``.

    Raises
    ------
    ConfigError
        When dask is not installed (``pip install "latentseg[dask]"``).

    Examples
    --------
    >>> import dask, dask.dataframe as dd  # doctest: +SKIP
    >>> assign_dask("models/demo", dd.read_parquet("new.parquet")).to_parquet("out/")  # doctest: +SKIP
    """
    try:
        import dask.dataframe  # noqa: F401
    except ImportError:
        raise ConfigError(
            'Scoring on Dask needs dask[dataframe]; install it with: pip install "latentseg[dask]".'
        ) from None
    scorer = model if isinstance(model, Scorer) else Scorer(model, source=source, id_column=id_column)
    scorer.check_columns(list(ddf.columns), "the Dask DataFrame")
    if scorer.id_column in ddf.columns:
        id_name, id_dtype = str(scorer.id_column), ddf[scorer.id_column].dtype
    else:
        id_name, id_dtype = str(ddf.index.name or "row"), ddf.index.dtype
    meta = scorer.empty_output(id_name, id_dtype)
    return ddf.map_partitions(_score_partition, scorer, meta=meta)


def _score_partition(part: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    return scorer.score(part, where="a Dask partition")
