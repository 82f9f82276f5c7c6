"""Saved models: ``models/<name>/`` as netCDF plus JSON, never pickle.

A saved model is a directory holding

``result.nc``
    The :class:`~latentseg.result.SegmentationResult` as one netCDF-4 file (an xarray DataTree,
    engine h5netcdf): memberships, centers, shares and intervals at the root, the per-segment
    parameters in ``/params``, shared ones in ``/shared_params``, array extras in ``/extras`` and,
    for Bayesian fits, the relabelled posterior DataTree under ``/posterior``.
``model.json``
    Everything else, as JSON: the config, the seed, library versions, the data hash, column names,
    scales, the cleaning report, the finder model, segment names, the tables the report needs,
    the SHA-256 of ``result.nc`` and the **model id**, a hash of all of the above.

:func:`load_model` refuses (:class:`~latentseg.errors.ModelFileError`, one message) a model written
by another major.minor version of latentseg, or one whose id does not match its contents (edited,
damaged, or half-written). Saving is atomic per file (temporary file in the same directory,
``fsync``, ``os.replace``) and ``model.json`` is replaced last: a killed save leaves either the
previous model or a pair whose hashes disagree, which never loads.

Values that JSON cannot hold exactly (NaN, tuples, numpy arrays, DataFrames, latentseg objects with
``to_dict``/``from_dict``) are written with small type tags (``{"__tuple__": [...]}``) so that a
round trip gives back equal values.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg._version import __version__
from latentseg.errors import LatentsegError, ModelFileError
from latentseg.io.files import atomic_write, fsync_dir, fsync_file
from latentseg.result import SegmentationResult

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SavedModel",
    "save_model",
    "load_model",
    "save_result",
    "load_result",
    "result_to_datatree",
    "result_from_datatree",
    "versions",
    "model_lock",
    "check_replace",
]

#: Name written into every ``model.json``.
FORMAT = "latentseg-model"
#: Layout version of the saved-model directory; bump on any change a reader must know about.
FORMAT_VERSION = 1

RESULT_FILE = "result.nc"
META_FILE = "model.json"

#: Keys of ``model.json`` that latentseg writes itself (``meta`` may not override them).
_RESERVED = {
    "format",
    "format_version",
    "latentseg_version",
    "model_id",
    "created",
    "versions",
    "model",
    "k",
    "n",
    "random_seed",
    "data_hash",
    "feature_names",
    "segment_labels",
    "config",
    "files",
}

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
#: A saved model's name (its folder under models/): a letter or digit, then letters, digits, '.',
#: '_' or '-' (no separators, no control characters). ``run --name`` and ``fit --save`` check it.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")

#: The only classes an ``{"__object__": ...}`` entry of ``model.json`` may rebuild (``from_dict``).
REBUILDABLE = frozenset({"latentseg.decide.finder:Finder"})


# ---------------------------------------------------------------------------------------- JSON
def _to_json(value: Any, where: str = "value") -> Any:
    """Encode ``value`` as JSON-safe data, tagging what plain JSON would lose."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: _to_json(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {"__dict__": [[_to_json(k, where), _to_json(v, f"{where}[{k!r}]")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v, where) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, where) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUS":
            raise ModelFileError(f"Cannot save {where}: arrays of dtype {value.dtype} are not supported.")
        flat = value.ravel().tolist()
        return {
            "__array__": {
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                "data": [_to_json(v, where) for v in flat],
            }
        }
    if isinstance(value, pd.DataFrame):
        return {"__frame__": _frame_to_json(value, where)}
    if isinstance(value, pd.Series):
        frame = _frame_to_json(value.to_frame(name="__values__"), where)
        frame["series_name"] = _to_json(value.name, where)
        return {"__series__": frame}
    if isinstance(value, pd.Index):
        return {"__index__": _index_to_json(value, where)}
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date)):
        return {"__datetime__": value.isoformat()}
    cls = type(value)
    if (
        cls.__module__.startswith("latentseg.")
        and callable(getattr(value, "to_dict", None))
        and callable(getattr(cls, "from_dict", None))
    ):
        return {"__object__": f"{cls.__module__}:{cls.__qualname__}", "data": _to_json(value.to_dict(), where)}
    raise ModelFileError(
        f"Cannot save {where}: values of type {cls.__name__} have no JSON form "
        "(use numbers, strings, lists, dicts, arrays, DataFrames or a latentseg object with to_dict)."
    )


def _from_json(value: Any) -> Any:
    """Invert :func:`_to_json`."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, body), = value.items()
        if tag == "__float__":
            return float(body)
        if tag == "__tuple__":
            return tuple(_from_json(v) for v in body)
        if tag == "__dict__":
            return {_hashable(_from_json(k)): _from_json(v) for k, v in body}
        if tag == "__array__":
            data = [_from_json(v) for v in body["data"]]
            return np.array(data, dtype=np.dtype(body["dtype"])).reshape(body["shape"])
        if tag == "__frame__":
            return _frame_from_json(body)
        if tag == "__series__":
            frame = _frame_from_json(body)
            return frame["__values__"].rename(_from_json(body.get("series_name")))
        if tag == "__index__":
            return _index_from_json(body)
        if tag == "__datetime__":
            return pd.Timestamp(body)
    if set(value) == {"__object__", "data"}:
        module, _, qualname = str(value["__object__"]).partition(":")
        if str(value["__object__"]) not in REBUILDABLE:
            raise ModelFileError(
                f"Refusing to rebuild an object of class {value['__object__']!r}: a saved model may hold only "
                f"{', '.join(sorted(REBUILDABLE))}."
            )
        try:
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (ImportError, AttributeError):
            raise ModelFileError(
                f"The saved model refers to {value['__object__']!r}, which this latentseg does not have."
            ) from None
        return cls.from_dict(_from_json(value["data"]))
    return {k: _from_json(v) for k, v in value.items()}


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def _index_to_json(index: pd.Index, where: str) -> dict[str, Any]:
    if isinstance(index, pd.MultiIndex):
        return {
            "multi": True,
            "names": [_to_json(n, where) for n in index.names],
            "levels": [_index_to_json(index.get_level_values(i), where) for i in range(index.nlevels)],
        }
    dtype = str(index.dtype)
    values = index.to_numpy()
    if isinstance(index, pd.RangeIndex):
        return {"range": [index.start, index.stop, index.step], "name": _to_json(index.name, where)}
    return {
        "dtype": dtype,
        "name": _to_json(index.name, where),
        "values": [_to_json(_scalar(v), where) for v in values],
    }


def _index_from_json(body: Mapping[str, Any]) -> pd.Index:
    if body.get("multi"):
        levels = [_index_from_json(lv) for lv in body["levels"]]
        return pd.MultiIndex.from_arrays(levels, names=[_from_json(n) for n in body["names"]])
    if "range" in body:
        return pd.RangeIndex(*body["range"], name=_from_json(body.get("name")))
    values = [_from_json(v) for v in body["values"]]
    return pd.Index(_typed_array(values, body["dtype"]), name=_from_json(body.get("name")))


def _scalar(v: Any) -> Any:
    """numpy / pandas scalars -> Python scalars; missing values -> None (or NaN for floats)."""
    if isinstance(v, (np.generic,)):
        v = v.item()
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def _typed_array(values: list[Any], dtype: str) -> Any:
    if dtype == "category":
        return pd.Categorical(values)
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.array(values, dtype=object)


def _frame_to_json(frame: pd.DataFrame, where: str) -> dict[str, Any]:
    columns = []
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        dtype = str(col.dtype)
        entry: dict[str, Any] = {"dtype": dtype}
        if dtype == "category":
            entry["categories"] = [_to_json(_scalar(c), where) for c in col.cat.categories]
            entry["ordered"] = bool(col.cat.ordered)
            values = col.astype(object).to_numpy()
        else:
            values = col.to_numpy()
        entry["values"] = [_to_json(_scalar(v), where) for v in values]
        columns.append(entry)
    return {
        "columns": _index_to_json(frame.columns, where),
        "index": _index_to_json(frame.index, where),
        "data": columns,
    }


def _frame_from_json(body: Mapping[str, Any]) -> pd.DataFrame:
    index = _index_from_json(body["index"])
    columns = _index_from_json(body["columns"])
    data = {}
    for i, entry in enumerate(body["data"]):
        values = [_from_json(v) for v in entry["values"]]
        if entry["dtype"] == "category":
            arr: Any = pd.Categorical(
                values, categories=[_from_json(c) for c in entry["categories"]], ordered=entry["ordered"]
            )
        elif entry["dtype"].startswith("float"):
            arr = np.array([np.nan if v is None else v for v in values], dtype=entry["dtype"])
        else:
            arr = _typed_array(values, entry["dtype"])
        data[i] = arr
    frame = pd.DataFrame(data, index=index)
    frame.columns = columns
    return frame


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)


# ------------------------------------------------------------------------------- netCDF layout
def _netcdf_attr_ok(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (str, int, float, np.integer, np.floating)):
        return True
    return isinstance(v, np.ndarray) and v.dtype.kind in "iuf"


def _encode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes netCDF can hold pass through; others become JSON strings listed in ``_json_attrs``."""
    out: dict[str, Any] = {}
    as_json = []
    for key, val in attrs.items():
        if _netcdf_attr_ok(val):
            out[key] = val
        else:
            out[key] = json.dumps(_to_json(val, f"attribute {key!r}"), allow_nan=False)
            as_json.append(key)
    if as_json:
        out["_json_attrs"] = json.dumps(as_json)
    return out


def _decode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    keys = json.loads(out.pop("_json_attrs", "[]"))
    for key in keys:
        out[key] = _from_json(json.loads(out[key]))
    return out


def _array_var(key: str, arr: Any, first_dim: str | None) -> tuple[str, Any]:
    import xarray as xr

    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise ModelFileError(f"Cannot save parameter {key!r}: dtype {a.dtype} is not numeric.")
    attrs = {"key": key}
    if a.dtype.kind == "b":
        attrs["bool"] = 1
        a = a.astype(np.int8)
    dims = []
    for axis in range(a.ndim):
        dims.append(first_dim if (axis == 0 and first_dim) else f"{_safe(key)}_dim{axis}")
    return _safe(key), xr.Variable(dims, a, attrs=attrs)


def _safe(key: str) -> str:
    if _SAFE_NAME.match(key):
        return key
    return "v_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _vars_to_dict(ds: Any) -> dict[str, np.ndarray]:
    out = {}
    for name in ds.data_vars:
        var = ds[name]
        a = var.values
        if var.attrs.get("bool"):
            a = a.astype(bool)
        out[var.attrs.get("key", name)] = a
    return out


def result_to_datatree(result: SegmentationResult) -> Any:
    """Lay a result out as an xarray DataTree (what ``result.nc`` holds).

    Parameters
    ----------
    result : SegmentationResult

    Returns
    -------
    xarray.DataTree
        Group ``/result`` with dims ``respondent`` (n), ``segment`` (k), ``feature`` (d), ``bound`` (2)
        (the root holds only the JSON header); groups ``/params``, ``/shared_params``, ``/extras`` and ``/posterior`` (Bayesian fits).

    Examples
    --------
    >>> import numpy as np
    >>> r = SegmentationResult.from_memberships("gmm", np.array([[0.9, 0.1], [0.2, 0.8]]),
    ...                                         centers=np.zeros((2, 1)), feature_names=("x",))
    >>> tree = result_to_datatree(r)
    >>> tree["result"].ds.sizes["segment"], tree["result"].ds.sizes["respondent"]
    (2, 2)
    """
    import xarray as xr

    ids = result.respondent_ids
    id_kind, id_values = _encode_ids(ids)
    coords = {
        "respondent": id_values,
        "segment": np.arange(1, result.k + 1),
        "feature": np.array(list(result.feature_names), dtype=str),
    }
    data_vars: dict[str, Any] = {
        "memberships": (("respondent", "segment"), np.asarray(result.memberships, dtype=float)),
        "centers": (("segment", "feature"), np.asarray(result.centers, dtype=float)),
        "shares": (("segment",), np.asarray(result.shares, dtype=float)),
        "share_lower": (("segment",), np.asarray(result.share_lower, dtype=float)),
        "share_upper": (("segment",), np.asarray(result.share_upper, dtype=float)),
    }
    if result.center_intervals is not None:
        data_vars["center_intervals"] = (("segment", "feature", "bound"), np.asarray(result.center_intervals, float))
    if result.sample_weight is not None:
        data_vars["sample_weight"] = (("respondent",), np.asarray(result.sample_weight, dtype=float))
    if result.membership_intervals is not None:
        data_vars["membership_intervals"] = (
            ("respondent", "segment", "bound"),
            np.asarray(result.membership_intervals, float),
        )
    header = {
        "model": result.model,
        "k": result.k,
        "interval_method": result.interval_method,
        "labels": None if result.labels is None else list(result.labels),
        "respondent_id_kind": id_kind,
        "respondent_id_name": _to_json(ids.name, "respondent_ids.name"),
        "criteria": _to_json(dict(result.criteria), "criteria"),
        "diagnostics": _to_json(dict(result.diagnostics), "diagnostics"),
        "provenance": _to_json(dict(result.provenance), "provenance"),
        "settings": _to_json(dict(result.settings), "settings"),
        "latentseg_version": __version__,
    }
    # The arrays live in /result, not at the root: DataTree children inherit their ancestors'
    # coordinates, and the posterior's own ``segment`` coordinate must stay its own.
    root = xr.Dataset(attrs={"latentseg_result": json.dumps(header, allow_nan=False)})
    nodes: dict[str, Any] = {"/": root, "/result": xr.Dataset(data_vars, coords=coords)}

    params = dict(_array_var(k, v, "segment") for k, v in result.params.items())
    nodes["/params"] = xr.Dataset(params, coords={"segment": coords["segment"]})
    nodes["/shared_params"] = xr.Dataset(dict(_array_var(k, v, None) for k, v in result.shared_params.items()))

    arrays, others = {}, {}
    for key, val in result.extras.items():
        if isinstance(val, np.ndarray) and val.dtype.kind in "biuf":
            name, var = _array_var(key, val, None)
            arrays[name] = var
        else:
            others[key] = _to_json(val, f"extras[{key!r}]")
    nodes["/extras"] = xr.Dataset(arrays, attrs={"json": json.dumps(others, allow_nan=False)})

    post = result.posterior
    if post is not None:
        if isinstance(post, xr.Dataset):
            nodes["/posterior"] = post.copy().assign_attrs(_encode_attrs(post.attrs), _latentseg_kind="dataset")
        else:
            for node in post.subtree:
                rel = node.relative_to(post)
                path = "/posterior" if rel == "." else f"/posterior/{rel}"
                ds = node.to_dataset(inherit=False)
                ds = ds.copy()
                ds.attrs = _encode_attrs(ds.attrs)
                for name in ds.variables:
                    ds[name].attrs = _encode_attrs(ds[name].attrs)
                nodes[path] = ds
            nodes["/posterior"].attrs["_latentseg_kind"] = "datatree"
    return xr.DataTree.from_dict(nodes)


def result_from_datatree(tree: Any) -> SegmentationResult:
    """Rebuild a :class:`SegmentationResult` from :func:`result_to_datatree`'s layout.

    Raises
    ------
    ModelFileError
        If the tree is not a latentseg result.
    """
    import xarray as xr

    try:
        header = json.loads(tree.attrs["latentseg_result"])
        root = tree["result"].to_dataset(inherit=False)
    except (KeyError, ValueError):
        raise ModelFileError("The netCDF file is not a latentseg result (no 'latentseg_result' header).") from None
    ids = _decode_ids(root["respondent"].values, header["respondent_id_kind"], _from_json(header["respondent_id_name"]))
    params = _vars_to_dict(tree["params"].to_dataset(inherit=False)) if "params" in tree.children else {}
    shared = _vars_to_dict(tree["shared_params"].to_dataset(inherit=False)) if "shared_params" in tree.children else {}
    extras: dict[str, Any] = {}
    if "extras" in tree.children:
        ex = tree["extras"].to_dataset(inherit=False)
        extras.update(_vars_to_dict(ex))
        extras.update({k: _from_json(v) for k, v in json.loads(ex.attrs.get("json", "{}")).items()})
    posterior = None
    if "posterior" in tree.children:
        post_node = tree["posterior"]
        kind = post_node.to_dataset(inherit=False).attrs.get("_latentseg_kind", "datatree")
        nodes = {}
        for node in post_node.subtree:
            rel = node.relative_to(post_node)
            ds = node.to_dataset(inherit=False).copy()
            ds.attrs = _decode_attrs({k: v for k, v in ds.attrs.items() if k != "_latentseg_kind"})
            for name in ds.variables:
                ds[name].attrs = _decode_attrs(ds[name].attrs)
            nodes["/" if rel == "." else f"/{rel}"] = ds
        posterior = nodes["/"] if kind == "dataset" else xr.DataTree.from_dict(nodes)
    labels = header.get("labels")
    return SegmentationResult(
        model=header["model"],
        k=int(header["k"]),
        respondent_ids=ids,
        feature_names=tuple(str(f) for f in root["feature"].values),
        memberships=root["memberships"].values,
        centers=root["centers"].values,
        shares=root["shares"].values,
        share_lower=root["share_lower"].values,
        share_upper=root["share_upper"].values,
        interval_method=header["interval_method"],
        criteria=_from_json(header["criteria"]),
        diagnostics=_from_json(header["diagnostics"]),
        provenance=_from_json(header["provenance"]),
        settings=_from_json(header["settings"]),
        params=params,
        shared_params=shared,
        center_intervals=root["center_intervals"].values if "center_intervals" in root else None,
        membership_intervals=root["membership_intervals"].values if "membership_intervals" in root else None,
        sample_weight=root["sample_weight"].values if "sample_weight" in root else None,
        labels=None if labels is None else tuple(labels),
        posterior=posterior,
        extras=extras,
    )


def _encode_ids(ids: pd.Index) -> tuple[str, np.ndarray]:
    values = ids.to_numpy()
    if ids.dtype.kind in "iu":
        return "int", values.astype(np.int64)
    if ids.dtype.kind == "f":
        return "float", values.astype(float)
    return "str", np.array([str(v) for v in values], dtype=str)


def _decode_ids(values: np.ndarray, kind: str, name: Any) -> pd.Index:
    if kind == "int":
        return pd.Index(values.astype(np.int64), name=name)
    if kind == "float":
        return pd.Index(values.astype(float), name=name)
    return pd.Index([str(v) for v in values], dtype="str", name=name)


# ------------------------------------------------------------------------------ file plumbing
def _replace(src: Path, dst: Path) -> None:
    """``os.replace`` (a separate function so tests can simulate a crash between the steps)."""
    os.replace(src, dst)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_tree(tree: Any, path: Path) -> None:
    try:
        tree.to_netcdf(path, engine="h5netcdf")
    except ImportError as exc:  # h5netcdf >= 1.8 installs without its h5py backend
        raise ModelFileError(f"Saving a model needs h5py (pip install h5py): {exc}") from None


def _read_tree(path: Path) -> Any:
    import xarray as xr

    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
    except ImportError as exc:  # h5netcdf without h5py
        raise ModelFileError(f"Reading a saved model needs h5py (pip install h5py): {exc}") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"Cannot read {path}: not a readable netCDF file ({exc}).") from None
    try:
        tree.load()
    finally:
        tree.close()
    return tree


def versions() -> dict[str, str | None]:
    """Versions of latentseg and the libraries a saved model depends on (None where absent).

    Examples
    --------
    >>> versions()["latentseg"] == __version__
    True
    """
    out: dict[str, str | None] = {"latentseg": __version__}
    for dist in ("numpy", "pandas", "scipy", "scikit-learn", "xarray", "h5netcdf", "pymc", "arviz", "pytensor"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


def _model_id(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "model_id"}
    return hashlib.sha256(_dumps(body).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ public
@dataclass(frozen=True, eq=False)
class SavedModel:
    """A model loaded from disk.

    Attributes
    ----------
    path : Path or None
        Directory it was loaded from.
    result : SegmentationResult
        The fitted segmentation, giving identical predictions to the one saved.
    config : dict
        The configuration the model was fitted with (as saved).
    meta : dict
        Everything else in ``model.json``: ``model_id``, ``versions``, ``data_hash``,
        ``random_seed``, ``feature_names``, ``created`` and whatever the caller saved
        (``data``, ``cleaning``, ``finder``, ``profile``, ``tables`` ...).
    """

    path: Path | None
    result: SegmentationResult
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """The id stored with the model (a hash of its contents)."""
        return str(self.meta.get("model_id", ""))

    @property
    def name(self) -> str:
        """The model's name (the directory name unless one was saved)."""
        return str(self.meta.get("name") or (self.path.name if self.path else "model"))

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Tables saved with the model (segment map, selection table, profiles ...)."""
        return dict(self.meta.get("tables") or {})

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary: id, model, k, n, criteria, segments, versions, saved sections."""
        d = self.result.to_dict()
        return {
            "name": self.name,
            "path": None if self.path is None else str(self.path),
            "model_id": self.model_id,
            "latentseg_version": self.meta.get("latentseg_version"),
            "created": self.meta.get("created"),
            "data_hash": self.meta.get("data_hash"),
            "random_seed": self.meta.get("random_seed"),
            "model": d["model"],
            "k": d["k"],
            "n": d["n"],
            "converged": d["converged"],
            "bic": d["bic"],
            "segments": [
                {key: s[key] for key in ("id", "label", "share", "share_lower", "share_upper", "interval", "opportunity")
                 if key in s}
                for s in d["segments"]
            ],
            "features": list(self.result.feature_names),
            "sections": sorted(k for k in self.meta if k not in _RESERVED),
            "tables": sorted(self.tables),
            "versions": self.meta.get("versions", {}),
        }


def save_model(
    path: str | os.PathLike[str],
    result: SegmentationResult,
    *,
    config: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    name: str | None = None,
) -> SavedModel:
    """Save a fitted segmentation to a directory (``result.nc`` + ``model.json``), atomically.

    Parameters
    ----------
    path : path-like
        Directory (created if needed), typically ``models/<name>``. Other files in it
        (``checkpoints/``) are left alone; a previous model there is replaced.
    result : SegmentationResult
    config : mapping, optional
        The configuration used (JSON-able); stored under ``config``.
    meta : mapping, optional
        Further JSON-able sections (``data``, ``cleaning``, ``finder``, ``profile`` ...); any value
        :func:`load_model` must give back (NaN, tuples, arrays, DataFrames, latentseg objects with
        ``to_dict``/``from_dict``) is tagged so the round trip is exact.
    tables : mapping of str to DataFrame, optional
        Tables the report needs; stored in ``model.json`` under ``tables``.
    name : str, optional
        The model's name; defaults to the directory name.

    Returns
    -------
    SavedModel
        What :func:`load_model` would return, with ``meta["model_id"]`` set.

    Raises
    ------
    ModelFileError
        If a value has no JSON/netCDF form, or ``meta`` uses a reserved key.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> r = SegmentationResult.from_memberships("gmm", np.array([[0.9, 0.1], [0.2, 0.8]]),
    ...                                         centers=np.zeros((2, 1)), feature_names=("x",))
    >>> d = tempfile.mkdtemp()
    >>> saved = save_model(d, r, config={"model": {"k": 2}})
    >>> load_model(d).model_id == saved.model_id
    True
    """
    target = Path(path)
    meta = dict(meta or {})
    clash = sorted(set(meta) & _RESERVED)
    if clash:
        raise ModelFileError(f"meta may not set reserved key(s) {clash}; they are written by save_model.")
    tree = result_to_datatree(result)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "latentseg_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "model": result.model,
        "k": result.k,
        "n": result.n,
        "random_seed": _to_json(result.provenance.get("random_seed"), "random_seed"),
        "data_hash": result.provenance.get("data_hash"),
        "feature_names": list(result.feature_names),
        "segment_labels": list(result.segment_labels),
        "config": _to_json(dict(config or {}), "config"),
        "name": name or target.resolve().name,
    }
    for key, val in meta.items():
        doc[key] = _to_json(val, f"meta[{key!r}]")
    if tables:
        doc["tables"] = {k: _to_json(v, f"tables[{k!r}]") for k, v in tables.items()}

    target.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(target)
    # one staging folder per save, named after this process: cleanup never touches another's
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(), dir=target))
    replaced = False
    try:
        _write_tree(tree, staging / RESULT_FILE)
        fsync_file(staging / RESULT_FILE)
        doc["files"] = {
            RESULT_FILE: {"sha256": _sha256(staging / RESULT_FILE), "bytes": (staging / RESULT_FILE).stat().st_size}
        }
        doc["model_id"] = _model_id(doc)
        text = _dumps(doc)
        (staging / META_FILE).write_text(text, encoding="utf-8")
        fsync_file(staging / META_FILE)
        fsync_dir(staging)
        # model.json goes last: until it is replaced, the old model.json names the old result.nc's
        # hash, so a crash in between leaves a pair that refuses to load rather than a mixed model.
        _replace(staging / RESULT_FILE, target / RESULT_FILE)
        replaced = True
        _replace(staging / META_FILE, target / META_FILE)
        fsync_dir(target)
    except OSError as exc:
        if isinstance(exc, ModelFileError):
            raise
        from latentseg.io.files import os_error_message

        kept = "" if replaced else " Any model saved there before is unchanged."
        raise ModelFileError(f"Could not save the model to '{target}': {os_error_message(exc)}{kept}") from exc
    finally:
        _close_open_files(staging)  # a write that failed half way may leave an HDF5 handle open
        shutil.rmtree(staging, ignore_errors=True)
    full = _from_json(json.loads(text))
    config_out = full.pop("config", {})
    return SavedModel(path=target, result=result, config=config_out, meta=full)


_STAGING = re.compile(r"^\.saving-(\d+)\.([A-Za-z0-9-]*)\.")


def _host() -> str:
    import socket

    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def _staging_prefix() -> str:
    """``.saving-<pid>.<host>.``: whose staging folder it is (``mkdtemp`` adds a unique suffix)."""
    return f".saving-{os.getpid()}.{_host()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's live process (or we cannot tell): leave its folder alone
    return True


def _remove_stale_staging(target: Path) -> None:
    """Remove staging folders left by saves that were killed: only those of a process on this host
    that no longer runs (another process's save in progress is never touched)."""
    host = _host()
    for p in target.glob(".saving-*"):
        m = _STAGING.match(p.name)
        if m is None or m.group(2) != host:
            continue  # an older layout or another machine's: not ours to judge
        pid = int(m.group(1))
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _close_open_files(folder: Path) -> None:
    """Close the HDF5 files still open under ``folder`` (a failed netCDF write can leave one open;
    removing it, then letting the handle be closed later, must not crash the process), through
    h5py's public ``File(file_id).close()``, which closes the file's objects and then the file."""
    import sys

    h5f = sys.modules.get("h5py.h5f")
    if h5f is None:  # h5py was never loaded: nothing can be open
        return
    import h5py

    top = os.path.realpath(folder) + os.sep
    try:
        ids = h5f.get_obj_ids(types=h5f.OBJ_FILE)
    except Exception:  # noqa: BLE001 - best effort; never mask the error being handled
        return
    for fid in ids:
        try:
            if fid.valid and os.path.realpath(os.fsdecode(fid.name)).startswith(top):
                h5py.File(fid).close()
        except Exception:  # noqa: BLE001,S112 - best effort
            continue


def model_lock(model_dir: str | os.PathLike[str], *, wait: bool = False, on_wait: Any = None,
               hint: str = "wait for it to finish, or save under another name") -> Any:
    """The OS lock a process holds while it writes the saved model ``model_dir`` (``run``,
    ``fit --save``): the file ``.<name>.lock`` beside the folder. A second process that wants
    the same model gets :class:`~latentseg.errors.BusyError` naming the model and the holder's
    pid (or waits, with ``wait``).

    Examples
    --------
    >>> import tempfile
    >>> with model_lock(os.path.join(tempfile.mkdtemp(), "m")) as lock:
    ...     lock.name
    '.m.lock'
    """
    from latentseg.io.files import exclusive_lock

    folder = Path(model_dir)
    return exclusive_lock(folder.parent / f".{folder.name}.lock", what=f"Model '{folder.name}' ('{folder}')",
                          wait=wait, on_wait=on_wait, hint=hint)


def check_replace(model_dir: str | os.PathLike[str], *, force: bool, survey: str | os.PathLike[str] | None = None,
                  keep: str = "--name NAME") -> None:
    """Refuse to replace a saved model (a ``model.json`` in ``model_dir``) unless ``force``.

    A folder with checkpoints but no ``model.json`` (an interrupted run) is not a saved model:
    a run there resumes. The message says where the saved model came from, and to pass
    ``keep`` (keep both) or ``--force`` (replace it).

    Raises
    ------
    ConfigError
    """
    from latentseg.errors import ConfigError

    folder = Path(model_dir)
    meta = folder / META_FILE
    if force or not meta.is_file():
        return
    saved_from, created = None, None
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
        saved_from = ((doc.get("run") or {}).get("survey") or (doc.get("data") or {}).get("path"))
        created = doc.get("created")
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        pass  # a damaged model.json: it is replaced only with --force all the same
    if not isinstance(saved_from, str) or "\x00" in saved_from:
        saved_from = None
    if not isinstance(created, str):
        created = None
    when = f" on {created}" if created else ""
    if saved_from and survey is not None and _same_file(saved_from, survey):
        what = f"was saved{when} from this same survey '{survey}'; running again would replace it"
    elif saved_from:
        what = f"was saved{when} from the survey '{saved_from}'; this would replace it"
    else:
        what = f"already exists{when}; this would replace it"
    raise ConfigError(
        f"Model '{folder.name}' at '{folder}' {what}. Pass {keep} to keep both, or --force to replace it."
    )


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return os.path.samefile(a, b)
    except (OSError, ValueError, TypeError):
        return False


def load_model(path: str | os.PathLike[str]) -> SavedModel:
    """Load a model saved by :func:`save_model`, checking its version and id.

    Parameters
    ----------
    path : path-like
        The model directory (or its ``model.json``).

    Returns
    -------
    SavedModel

    Raises
    ------
    ModelFileError
        Missing or damaged files, a model written by another major.minor version of latentseg,
        or contents that do not match the stored id.

    Examples
    --------
    >>> load_model("no/such/dir")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ModelFileError: No saved model at 'no/such/dir' ...
    """
    target = Path(path)
    if target.name == META_FILE and target.is_file():
        target = target.parent
    meta_path = target / META_FILE
    if not meta_path.is_file():
        raise ModelFileError(
            f"No saved model at '{path}': {META_FILE} not found (save one with `latentseg run` or latentseg.save_model)."
        )
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise ModelFileError(f"Saved model '{path}' is damaged: {meta_path} is nested too deeply to be a model file.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"Saved model '{path}' is damaged: {META_FILE} is not valid JSON ({exc}).") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelFileError(f"'{meta_path}' is not a latentseg model file (no \"format\": \"{FORMAT}\").")
    written = str(raw.get("latentseg_version", "?"))
    if _major_minor(written) != _major_minor(__version__) or raw.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"Saved model '{path}' was written by latentseg {written} (format {raw.get('format_version')}); "
            f"this is latentseg {__version__} (format {FORMAT_VERSION}), which loads only models from "
            f"{'.'.join(_major_minor(__version__))}.x. Refit the model, or use latentseg {'.'.join(_major_minor(written))}."
        )
    try:
        same_id = raw.get("model_id") == _model_id(raw)
    except (RecursionError, ValueError, TypeError):
        same_id = False
    if not same_id:
        raise ModelFileError(
            f"Saved model '{path}' does not match its id {str(raw.get('model_id'))[:40]!r}: {META_FILE} was changed "
            "after it was saved. Refit the model or restore the original file."
        )
    _check_header(raw, meta_path)
    for fname, info in raw["files"].items():
        fpath = target / fname
        if not fpath.is_file() or _sha256(fpath) != info["sha256"] or fpath.stat().st_size != info["bytes"]:
            state = "is missing" if not fpath.is_file() else "has changed"
            raise ModelFileError(
                f"Saved model '{path}' does not match its id {raw.get('model_id')!r}: {fname} {state} since it "
                "was saved (edited, damaged, or an interrupted save). Refit the model or restore the directory."
            )
    try:
        result = result_from_datatree(_read_tree(target / RESULT_FILE))
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise ModelFileError(f"Saved model '{path}' is damaged: {target / RESULT_FILE} is not a readable result ({exc!r}).") from None
    _cross_check(raw, result, meta_path)
    try:
        full = _from_json(raw)
    except ModelFileError as exc:
        raise ModelFileError(f"Saved model '{path}' cannot be loaded from {meta_path}: {exc}") from None
    except (LatentsegError, KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise ModelFileError(
            f"Saved model '{path}' is damaged: {meta_path} holds a value that is not in latentseg's format ({exc!r})."
        ) from None
    _check_sections(full, meta_path)
    config = full.pop("config", {})
    return SavedModel(path=target, result=result, config=config, meta=full)


#: The sections latentseg saves, and what each must be when present (``None`` allowed).
_SECTION_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "created": (str,),
    "data": (dict,),
    "cleaning": (dict,),
    "selection": (dict,),
    "comparison": (dict,),
    "profile": (dict,),
    "overlay": (dict,),
    "finder_summary": (dict,),
    "distal": (dict,),
    "sizing": (dict,),
    "segment_map": (dict,),
    "report": (dict,),
    "run": (dict,),
    "reduction": (dict,),
    "tables": (dict,),
    "notes": (list,),
    "warnings": (list,),
    "survey_notes": (list,),
}
#: Keys of the ``data`` section (how the data was prepared) and their types.
_DATA_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "data_kind": (str,), "path": (str,), "abs_path": (str,), "source": (str,),
    "file_sha256": (str,), "input_sha256": (str,), "id_column": (str,), "transform": (str,),
    "imp_scale": (str,), "sat_scale": (str,), "outcomes": (list,), "imp_columns": (list,), "sat_columns": (list,),
    "columns": (list,), "selected_columns": (list,), "missing_codes": (list,), "statements": (dict,),
    "job_steps": (dict,), "profile_columns": (list,), "reduction": (dict,),
}


def _check_sections(meta: Mapping[str, Any], meta_path: Path) -> None:
    """The sections other commands read have the types they expect (a list where an object is
    expected would otherwise fail far from the file)."""

    def check(where: str, value: Any, types: tuple[type, ...]) -> None:
        if value is not None and not isinstance(value, types):
            raise ModelFileError(
                f"Saved model file '{meta_path}' is damaged: {where} must be "
                f"{' or '.join({dict: 'an object', list: 'a list', str: 'text'}.get(t, t.__name__) for t in types)}; "
                f"got {type(value).__name__}."
            )

    for key, types in _SECTION_TYPES.items():
        check(f'"{key}"', meta.get(key), types)
    for key, types in _DATA_TYPES.items():
        check(f'"data"."{key}"', (meta.get("data") or {}).get(key), types)
    finder = meta.get("finder")
    if finder is not None and not isinstance(finder, dict):
        from latentseg.decide.finder import Finder

        check('"finder"', finder, (Finder,))
    for name, table in (meta.get("tables") or {}).items():
        check(f'"tables"."{name}"', table, (pd.DataFrame,))


def _no_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON (latentseg writes them as ``{"__float__": ...}``)."""
    raise ValueError(f"{name} is not a JSON value")


def _check_header(raw: Mapping[str, Any], meta_path: Path) -> None:
    """The keys latentseg writes itself have their types; ``files`` names ``result.nc`` with its hash."""

    def bad(key: str, want: str) -> ModelFileError:
        got = raw.get(key)
        shown = type(got).__name__ if isinstance(got, (dict, list)) else repr(got)[:40]
        return ModelFileError(f"Saved model file '{meta_path}' is damaged: \"{key}\" must be {want}; got {shown}.")

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(raw.get("model"), str):
        raise bad("model", "a model family name")
    if not whole(raw.get("k")) or raw["k"] < 1:
        raise bad("k", "a whole number of segments (1 or more)")
    if not whole(raw.get("n")) or raw["n"] < 0:
        raise bad("n", "a whole number of respondents")
    for key in ("feature_names", "segment_labels"):
        if not isinstance(raw.get(key), list) or not all(isinstance(v, str) for v in raw[key]):
            raise bad(key, "a list of names")
    for key in ("config", "versions"):
        if not isinstance(raw.get(key, {}), dict):
            raise bad(key, "an object")
    if raw.get("data_hash") is not None and not isinstance(raw["data_hash"], str):
        raise bad("data_hash", "a hash (text) or null")
    files = raw.get("files")
    if not isinstance(files, dict) or RESULT_FILE not in files:
        raise ModelFileError(
            f"Saved model file '{meta_path}' is damaged: its \"files\" entry must give the SHA-256 of {RESULT_FILE}, "
            "which proves the two files belong together. Refit the model or restore the original file."
        )
    for fname, info in files.items():
        if fname in ("", ".", "..") or "/" in fname or "\\" in fname:
            raise ModelFileError(f"Saved model file '{meta_path}' is damaged: \"files\" names {fname!r}, not a file of the model folder.")
        if (not isinstance(info, dict) or not isinstance(info.get("sha256"), str)
                or not re.fullmatch(r"[0-9a-f]{64}", info["sha256"]) or not whole(info.get("bytes"))):
            raise ModelFileError(
                f"Saved model file '{meta_path}' is damaged: \"files\" gives no SHA-256 and size for {fname!r}."
            )


def _cross_check(raw: Mapping[str, Any], result: SegmentationResult, meta_path: Path) -> None:
    """What ``model.json`` repeats from ``result.nc`` must agree with it."""
    prov = dict(result.provenance)
    pairs = [
        ("model", raw["model"], result.model),
        ("k", raw["k"], int(result.k)),
        ("n", raw["n"], int(result.n)),
        ("feature_names", raw["feature_names"], [str(f) for f in result.feature_names]),
        ("segment_labels", raw["segment_labels"], [str(s) for s in result.segment_labels]),
        ("data_hash", raw.get("data_hash"), prov.get("data_hash")),
        ("random_seed", raw.get("random_seed"), _to_json(prov.get("random_seed"), "random_seed")),
    ]
    for key, said, held in pairs:
        if said != held:
            show = (lambda v: f"{len(v)} names starting {v[:3]}" if isinstance(v, list) and len(v) > 3 else repr(v))
            raise ModelFileError(
                f"Saved model '{meta_path.parent}' is inconsistent: {META_FILE} says {key} = {show(said)} but "
                f"{RESULT_FILE} holds {show(held)}; the two files do not belong together (edited, or {RESULT_FILE} "
                "copied from another model). Refit the model or restore the directory."
            )


def save_result(result: SegmentationResult, path: str | os.PathLike[str]) -> Path:
    """Write one result to a single netCDF file, atomically (used for sweep checkpoints).

    Parameters
    ----------
    result : SegmentationResult
    path : path-like
        The ``.nc`` file to write; its parent must exist.

    Returns
    -------
    Path

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> r = SegmentationResult.from_memberships("kmeans", np.eye(2), centers=np.eye(2),
    ...                                         feature_names=("a", "b"))
    >>> p = save_result(r, os.path.join(tempfile.mkdtemp(), "fit.nc"))
    >>> np.array_equal(load_result(p).memberships, r.memberships)
    True
    """
    tree = result_to_datatree(result)
    return atomic_write(path, lambda tmp: _write_tree(tree, tmp), replace=_replace, sync_dir=True)


def load_result(path: str | os.PathLike[str]) -> SegmentationResult:
    """Read a result written by :func:`save_result` (or a model's ``result.nc``).

    Raises
    ------
    ModelFileError
        If the file is missing, unreadable or not a latentseg result.
    """
    target = Path(path)
    if not target.is_file():
        raise ModelFileError(f"No result file at '{path}'.")
    try:
        return result_from_datatree(_read_tree(target))
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise ModelFileError(f"'{path}' is not a readable latentseg result ({exc!r}).") from None

