"""``latentseg.toml``: one file with every setting, merged over :data:`DEFAULT_CONFIG`.

Every key is declared once, in :data:`KEYS`, with its type, default, allowed values and meaning;
:func:`load_config` checks a file against that table and refuses unknown keys and wrong types
with a :class:`~latentseg.errors.ConfigError` naming the file and the key. The CLI options
override the file; the file overrides the defaults. :func:`config_reference_markdown` renders
the same table for the documentation.

Sections and keys (default in brackets)
---------------------------------------
``[survey]`` how the survey file is read
    ``id_column`` [""]: respondent id column; empty = detect (``respondent_id``, ``id``,
    ``ResponseId`` ...), else number respondents 1..n. ``duration_column`` [""]: completion time
    (seconds); empty = detect (``duration``, ``Duration (in seconds)`` ...). ``weight_column``
    [""]: survey weight; empty = detect (``weight``); ``use_weights`` [true]: false ignores it. ``imp_pattern`` / ``sat_pattern`` [""]:
    regular expression with a group ``(?P<outcome>...)`` (or a template with ``{outcome}``)
    naming importance / satisfaction columns; empty = the conventions ``imp_<o>``,
    ``importance_<o>``, ``<o>_imp`` (and ``sat_`` / ``satisfaction_`` / ``_sat``).
    ``imp_scale`` / ``sat_scale`` [""]: e.g. ``"1-5"``; empty = infer from the data (with a
    warning). ``missing_codes`` [[]]: rating values that mean "no answer" (e.g. ``[99, -9]``).
    ``outcomes_file`` [""]: CSV with ``outcome, statement, job_step`` (relative paths are
    relative to the config file). ``profile_columns`` [[]]: profile columns to keep; empty = every
    column that is not a rating, the id, the duration or the weight.
``[survey.columns]`` explicit rating columns, ``<outcome> = {importance = "...", satisfaction = "..."}``
    (replaces the naming conventions).
``[survey.outcomes]`` outcome statements, ``<outcome> = {statement = "...", job_step = "..."}``.
``[cleaning]`` the playbook's step 1
    ``straightliners`` [true], ``speeder_fraction`` [0.3333], ``max_unrated`` [0.2],
    ``min_respondents`` [100].
``[reduce]`` ``method`` ["none"] (none | pca | fa | jobstep), ``variance`` [0.75],
    ``n_factors`` [0 = chosen by variance].
``[model]`` ``model`` ["gmm"], ``covariance`` ["VVI"], ``n_init`` [10], ``random_seed``
    [20261122], ``draws`` [1000], ``tune`` [1000], ``chains`` [2], ``sampler`` ["nutpie"].
``[select]`` ``models`` [["kmeans", "gmm", "lca", "bayes-gmm"]], ``k_min`` [3], ``k_max`` [7],
    ``min_share`` [0.10], ``silhouette_min`` [0.25], ``stability_subsamples`` [5],
    ``loo_se_rule`` [2.0], ``all_k`` [false], ``checkpoint_min_seconds`` [2.0].
``[profile]`` ``names`` [{}] (segment id -> name), ``overlay`` [[]], ``distal`` [[]],
    ``top_outcomes`` [5].
``[size]`` ``tam`` [0], ``arpu`` [0.0], ``arpu_column`` [""].
``[decide]`` the recommendation rule: ``target_ratio`` [0.8], ``max_targets`` [2],
    ``deprioritize_ratio`` [0.33], ``min_share`` [0.10], ``fit`` [{}] (segment id -> 0-1),
    ``recommend`` [{}] (segment id -> target | monitor | deprioritize).
``[report]`` ``output`` ["latentseg_output"], ``dimensions`` [[]] (two factor / job-step names
    for the 2x2), ``name`` [""].

Examples
--------
>>> cfg = load_config(None)          # no latentseg.toml here: the defaults
>>> cfg["cleaning"]["max_unrated"]
0.2
>>> merge_config({"model": {"n_init": 20}})["model"]["n_init"]
20
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentseg.errors import ConfigError
from latentseg.models.families import DEFAULT_FAMILY, DEFAULT_SWEEP
from latentseg.models.families import NAMES as MODEL_NAMES

__all__ = [
    "DEFAULT_CONFIG",
    "KEYS",
    "CONFIG_FILENAME",
    "load_config",
    "merge_config",
    "config_reference_markdown",
    "select_options",
    "SELECT_ARGUMENTS",
]

#: The file :func:`load_config` looks for in the current directory when given no path.
CONFIG_FILENAME = "latentseg.toml"



@dataclass(frozen=True)
class Key:
    """One setting: where it lives, its type, default, allowed values and meaning."""

    section: str
    name: str
    kind: str  # str | int | float | number | bool | list[str] | list[number] | table | outcome-table
    default: Any
    meaning: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    def describe_type(self) -> str:
        """The type as the messages and the reference table write it."""
        base = {
            "str": "string",
            "int": "integer",
            "float": "number",
            "number": "number",
            "bool": "boolean",
            "list[str]": "list of strings",
            "list[number]": "list of numbers",
            "table": "table of strings",
            "segment-numbers": "table of numbers in [0, 1]",
            "columns-table": "table of {importance, satisfaction}",
            "outcomes-table": "table of {statement, job_step}",
            "labels-table": "table of {importance, satisfaction} label lists",
        }[self.kind]
        if self.choices:
            return f"{base}, one of " + ", ".join(repr(c) for c in self.choices)
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else ("(" if self.low_open else "[") + _fmt(self.low)
            hi = "" if self.high is None else _fmt(self.high) + (")" if self.high_open else "]")
            if self.low is not None and self.high is not None:
                return f"{base} in {lo}, {hi}"
            if self.low is not None:
                return f"{base} {'>' if self.low_open else '>='} {_fmt(self.low)}"
            assert self.high is not None
            return f"{base} {'<' if self.high_open else '<='} {_fmt(self.high)}"
        return base


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


KEYS: tuple[Key, ...] = (
    # [survey]
    Key("survey", "id_column", "str", "", "Respondent id column; empty = detect `respondent_id`, `id`, `ResponseId` ..., else number respondents 1..n."),
    Key("survey", "duration_column", "str", "", "Completion time column (seconds); empty = detect `duration`, `Duration (in seconds)`, `duration_s` ..."),
    Key("survey", "weight_column", "str", "", "Survey weight column; empty = detect `weight`. Every fit, share and report figure is weighted by it (normalised to mean 1 over the respondents that reach the model)."),
    Key("survey", "use_weights", "bool", True, "Weight the fits and figures by the survey's weight column when it has one; false = ignore it (as `--no-weights`)."),
    Key("survey", "imp_pattern", "str", "", "Regular expression with a group `(?P<outcome>...)`, or a template with `{outcome}`, matching importance columns; empty = `imp_<o>`, `importance_<o>`, `<o>_imp`."),
    Key("survey", "sat_pattern", "str", "", "As `imp_pattern`, for satisfaction columns; empty = `sat_<o>`, `satisfaction_<o>`, `<o>_sat`."),
    Key("survey", "imp_scale", "str", "", "Importance scale, e.g. `\"1-5\"`; empty = inferred from the data (with a warning)."),
    Key("survey", "sat_scale", "str", "", "Satisfaction scale, e.g. `\"1-10\"`; empty = inferred from the data (with a warning)."),
    Key("survey", "missing_codes", "list[number]", [], "Rating values that mean \"no answer\" (e.g. `[99, -9]`); they become missing."),
    Key("survey", "outcomes_file", "str", "", "CSV of outcome statements with columns `outcome`, `statement`, `job_step`; relative to the config file."),
    Key("survey", "profile_columns", "list[str]", [], "Profile columns to keep; empty = every column that is not a rating, the id, the duration or the weight."),
    Key("survey", "columns", "columns-table", {}, "Explicit rating columns, `<outcome> = {importance = \"...\", satisfaction = \"...\"}`; replaces the naming conventions."),
    Key("survey", "outcomes", "outcomes-table", {}, "Outcome statements and job steps, `<outcome> = {statement = \"...\", job_step = \"...\"}`."),
    Key("survey", "labels", "labels-table", {}, "Answer labels of choice-text exports, low to high, `importance = [\"Not important\", ...]` and `satisfaction = [...]` (or a table `\"label\" = number`); empty = the standard 5- and 7-point importance and satisfaction labels."),
    # [cleaning]
    Key("cleaning", "straightliners", "bool", True, "Exclude respondents who gave the same rating to every outcome in the importance or the satisfaction block."),
    Key("cleaning", "speeder_fraction", "float", 0.3333, "Exclude respondents faster than this fraction of the median duration (0 = off).", low=0.0, high=1.0, high_open=True),
    Key("cleaning", "max_unrated", "float", 0.2, "Exclude respondents with more than this fraction of outcomes missing importance or satisfaction.", low=0.0, high=1.0),
    Key("cleaning", "min_respondents", "int", 100, "Warn below this many clean respondents (algorithmic clustering is unstable; use manual grouping).", low=0),
    # [reduce]
    Key("reduce", "method", "str", "none", "Dimension reduction before clustering.", choices=("none", "pca", "fa", "jobstep")),
    Key("reduce", "variance", "float", 0.75, "Share of variance the kept components must explain (pca / fa).", low=0.0, high=1.0, low_open=True),
    Key("reduce", "n_factors", "int", 0, "Number of components / factors; 0 = chosen by `variance`.", low=0),
    # [model]
    Key("model", "model", "str", DEFAULT_FAMILY, "Model family.", choices=MODEL_NAMES),
    Key("model", "covariance", "str", "VVI", "Covariance structure of Gaussian mixtures (mclust names, e.g. `EII`, `VVI`, `EEE`, `VVV`; `auto`: EEI or VVI by BIC)."),
    Key("model", "n_init", "int", 10, "Random starts for k-means and EM fits.", low=1),
    Key("model", "random_seed", "int", 20261122, "Seed for every random choice (starts, chains, subsamples).", low=0),
    Key("model", "draws", "int", 1000, "Posterior draws per chain (Bayesian models).", low=1),
    Key("model", "tune", "int", 1000, "Tuning steps per chain (Bayesian models).", low=0),
    Key("model", "chains", "int", 2, "MCMC chains (Bayesian models).", low=1),
    Key("model", "covariates", "list[str]", [], "Profile columns that predict segment membership (multinomial logit; text columns dummy-coded against their most frequent level); empty = none. See docs/methods.md, covariates on membership."),
    Key("model", "covariates_method", "str", "bch", "How covariate effects are estimated: `one-step` (in the fit itself: EM for gmm and lca, MCMC with priors on the coefficients for bayes-gmm and bayes-lca), or bias-adjusted three-step `bch` or `ml` from any fitted model.", choices=("one-step", "bch", "ml")),
    Key("model", "sampler", "str", "nutpie", "Sampler for Bayesian models: NUTS by nutpie (default), PyMC or NumPyro (JAX; GPUs), or ADVI (approximate).", choices=("nutpie", "pymc", "numpyro", "advi")),
    # [select]
    Key("select", "models", "list[str]", list(DEFAULT_SWEEP), "Model families compared by `latentseg select`.", choices=MODEL_NAMES),
    Key("select", "k_min", "int", 3, "Smallest number of segments tried.", low=1),
    Key("select", "k_max", "int", 7, "Largest number of segments tried.", low=1),
    Key("select", "min_share", "float", 0.10, "Smallest acceptable segment share.", low=0.0, high=1.0, high_open=True),
    Key("select", "silhouette_min", "float", 0.25, "Smallest acceptable silhouette (k-means).", low=-1.0, high=1.0),
    Key("select", "stability_subsamples", "int", 5, "Subsamples used to check that segments are stable (0 = off).", low=0),
    Key("select", "loo_se_rule", "float", 2.0, "A Bayesian model with more segments must beat a simpler one by this many PSIS-LOO standard errors.", low=0.0),
    Key("select", "all_k", "bool", False, "Fit every family at every k, each to the end: no hopeless Bayesian fit skipped, no fit stopped for time (docs/methods.md, skipped and stopped fits)."),
    Key("select", "checkpoint_min_seconds", "float", 2.0, "`latentseg run` checkpoints only fits that took at least this long (faster ones are refitted on a resume, same seed, same result; a family's first fit, which also pays its imports and compiling, only when it took 5 times this or the family's next fit took this long too); 0 = every fit.", low=0.0),
    # [profile]
    Key("profile", "names", "table", {}, "Segment names, `<segment id> = \"name\"` (e.g. `1 = \"Speed-starved executors\"`)."),
    Key("profile", "overlay", "list[str]", [], "Profile columns cross-tabulated against segments; empty = all."),
    Key("profile", "distal", "list[str]", [], "Outcomes of interest (e.g. plan price) compared across segments after the fit."),
    Key("profile", "top_outcomes", "int", 5, "Defining underserved outcomes listed per segment.", low=1),
    Key("profile", "current_solution", "str", "", "Profile column naming each respondent's current solution (segment map); empty = a column whose name contains current, incumbent or existing."),
    # [size]
    Key("size", "tam", "number", 0, "Total addressable market (customers); 0 = shares only.", low=0),
    Key("size", "arpu", "float", 0.0, "Average revenue per customer for market value; 0 = none.", low=0.0),
    Key("size", "arpu_column", "str", "", "Profile column with revenue per respondent (e.g. plan price), used instead of `arpu`."),
    # [decide] the recommendation rule (latentseg.decide.segmap.DefaultRule; docs/methods.md section 7)
    Key("decide", "target_ratio", "float", 0.8, "A target scores (size x unmet need x fit) at least this fraction of the best segment's score.", low=0.0, high=1.0, low_open=True),
    Key("decide", "max_targets", "int", 2, "At most this many segments, the best-ranked, are targets.", low=1),
    Key("decide", "deprioritize_ratio", "float", 0.33, "A segment scoring below this fraction of the best is deprioritized.", low=0.0, high=1.0, high_open=True),
    Key("decide", "min_share", "float", 0.10, "A segment smaller than this share is deprioritized whatever its score.", low=0.0, high=1.0, high_open=True),
    Key("decide", "fit", "segment-numbers", {}, "Each segment's fit with what the business can offer, `<segment id> = 0-1` (e.g. `3 = 0.5`); 1 where not given."),
    Key("decide", "recommend", "table", {}, "Recommendations set by hand, `<segment id> = \"target\"`, `\"monitor\"` or `\"deprioritize\"`; they win over the rule."),
    # [report]
    Key("report", "output", "str", "latentseg_output", "Folder the report is written to."),
    Key("report", "dimensions", "list[str]", [], "Two factor or job-step names spanning the segment 2x2; empty = chosen automatically."),
    Key("report", "name", "str", "", "Title of the report; empty = from the survey file name."),
)

_BY_SECTION: dict[str, dict[str, Key]] = {}
for _k in KEYS:
    _BY_SECTION.setdefault(_k.section, {})[_k.name] = _k


def _defaults() -> dict[str, dict[str, Any]]:
    return {sec: {name: copy.deepcopy(k.default) for name, k in keys.items()} for sec, keys in _BY_SECTION.items()}


#: Every setting at its default, ``{section: {key: value}}``. Do not mutate; :func:`load_config`
#: and :func:`merge_config` return deep copies.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = _defaults()


# ----------------------------------------------------------------------------- checking
def _typename(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(v), type(v).__name__
    )


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_value(key: Key, value: Any, where: str) -> Any:
    """Return ``value`` checked (ints accepted for floats) or raise ConfigError."""

    def bad(extra: str = "") -> ConfigError:
        return ConfigError(
            f"{where}: '{key.dotted}' must be a {key.describe_type()}; got {value!r} ({_typename(value)}){extra}."
        )

    def number_ok(v: Any, integer: bool) -> bool:
        if isinstance(v, bool):
            return False
        return isinstance(v, int) if integer else isinstance(v, (int, float))

    def in_range(v: float) -> bool:
        if key.low is not None and (v < key.low or (key.low_open and v == key.low)):
            return False
        if key.high is not None and (v > key.high or (key.high_open and v == key.high)):
            return False
        return True

    kind = key.kind
    if kind == "str":
        if not isinstance(value, str) or (key.choices and value not in key.choices):
            raise bad()
        if key.name in ("imp_scale", "sat_scale") and value:
            from latentseg.io.survey import Scale

            try:
                Scale.parse(value)
            except (ConfigError, ValueError):
                raise bad() from None
        if key.name in ("imp_pattern", "sat_pattern") and value:
            from latentseg.io.columns import compile_pattern

            compile_pattern(value, where=f"{where}: '{key.dotted}'")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind in ("int", "float", "number"):
        if not number_ok(value, integer=kind == "int") or not in_range(value):
            raise bad()
        return float(value) if kind == "float" else value
    if kind == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad()
        if key.choices and any(v not in key.choices for v in value):
            raise bad()
        if key.dotted == "report.dimensions" and len(value) not in (0, 2):
            raise bad(", which needs exactly two names or none")
        return list(value)
    if kind == "list[number]":
        if not isinstance(value, list) or not all(number_ok(v, integer=False) for v in value):
            raise bad()
        return [float(v) for v in value]
    if kind == "segment-numbers":  # [decide] fit: segment number -> number in [0, 1]
        if not isinstance(value, dict) or not all(number_ok(v, integer=False) and 0 <= v <= 1 for v in value.values()):
            raise bad()
    if kind in ("table", "segment-numbers") and key.section == "decide":
        wrong = [str(k) for k in value if not (str(k).isdigit() and int(str(k)) >= 1)]
        if wrong:
            raise ConfigError(f"{where}: '{key.dotted}' is keyed by segment number (1, 2, ...); got key {wrong[0]!r}.")
        if kind == "segment-numbers":
            return {str(k): float(v) for k, v in value.items()}
    if kind == "table":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad()
        if key.dotted == "decide.recommend" and any(v not in ("target", "monitor", "deprioritize") for v in value.values()):
            raise bad(", each one of 'target', 'monitor', 'deprioritize'")
        if key.dotted == "profile.names":
            wrong = [str(k) for k in value if not (str(k).isdigit() and int(str(k)) >= 1)]
            if wrong:
                raise ConfigError(
                    f"{where}: 'profile.names' is keyed by segment number (1, 2, ...); got key {wrong[0]!r}."
                )
        return {str(k): v for k, v in value.items()}
    if kind == "labels-table":
        if not isinstance(value, dict):
            raise bad()
        labels: dict[str, Any] = {}
        for block, spec in value.items():
            sub = f"{key.dotted}.{block}"
            if block not in ("importance", "satisfaction"):
                raise ConfigError(
                    f"{where}: unknown key '{sub}'{_suggest(str(block), ['importance', 'satisfaction'])}; expected importance and satisfaction."
                )
            if isinstance(spec, list) and len(spec) >= 2 and all(isinstance(v, str) and v.strip() for v in spec):
                folded = [" ".join(v.split()).casefold() for v in spec]
                if len(set(folded)) != len(folded):
                    raise ConfigError(f"{where}: '{sub}' lists a label twice; expected each label once, low to high.")
                labels[block] = list(spec)
            elif isinstance(spec, dict) and len(spec) >= 2 and all(number_ok(v, integer=False) for v in spec.values()):
                labels[block] = {str(k): float(v) for k, v in spec.items()}
            else:
                raise ConfigError(
                    f"{where}: '{sub}' must be a list of at least two labels, low to high (coded 1, 2, ...), or a table "
                    f"\"label\" = number; got {spec!r} ({_typename(spec)})."
                )
        return labels
    if kind in ("columns-table", "outcomes-table"):
        fields = ("importance", "satisfaction") if kind == "columns-table" else ("statement", "job_step")
        if not isinstance(value, dict):
            raise bad()
        out: dict[str, dict[str, str]] = {}
        for outcome, spec in value.items():
            sub = f"{key.dotted}.{outcome}"
            if not isinstance(spec, dict):
                raise ConfigError(
                    f"{where}: '{sub}' must be a table like {{{fields[0]} = \"...\", {fields[1]} = \"...\"}}; "
                    f"got {spec!r} ({_typename(spec)})."
                )
            for f, v in spec.items():
                if f not in fields:
                    raise ConfigError(
                        f"{where}: unknown key '{sub}.{f}'{_suggest(f, list(fields))}; expected {' and '.join(fields)}."
                    )
                if not isinstance(v, str):
                    raise ConfigError(f"{where}: '{sub}.{f}' must be a string; got {v!r} ({_typename(v)}).")
            if kind == "columns-table" and not all(f in spec for f in fields):
                missing = [f for f in fields if f not in spec][0]
                raise ConfigError(f"{where}: '{sub}' needs both importance and satisfaction columns; '{missing}' is missing.")
            out[str(outcome)] = dict(spec)
        return out
    raise AssertionError(kind)  # pragma: no cover


def merge_config(user: Mapping[str, Any] | None, source: str = "<config>") -> dict[str, dict[str, Any]]:
    """Check ``user`` (``{section: {key: value}}``, any subset) and merge it over the defaults.

    Parameters
    ----------
    user : mapping or None
        Settings to apply; ``None`` gives the defaults.
    source : str
        Named in messages (the file the settings came from).

    Returns
    -------
    dict
        A new, complete configuration (deep copy; ``user`` is not modified).

    Raises
    ------
    ConfigError
        An unknown section or key, a wrong type or a value out of range.

    Examples
    --------
    >>> merge_config({"select": {"k_max": 6}})["select"]["k_max"]
    6
    >>> merge_config({"select": {"k_mx": 6}})
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: <config>: unknown key 'select.k_mx' (did you mean 'k_max'?).
    """
    cfg = _defaults()
    if not user:
        return cfg
    for section, values in user.items():
        if section not in _BY_SECTION:
            raise ConfigError(
                f"{source}: unknown section '[{section}]'{_suggest(str(section), list(_BY_SECTION))}; "
                f"expected one of {', '.join(_BY_SECTION)}."
            )
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: '{section}' must be a table ([{section}]); got {values!r}.")
        keys = _BY_SECTION[section]
        for name, value in values.items():
            if name not in keys:
                raise ConfigError(f"{source}: unknown key '{section}.{name}'{_suggest(str(name), list(keys))}.")
            cfg[section][name] = _check_value(keys[name], copy.deepcopy(value), source)
    sel = cfg["select"]
    if sel["k_max"] < sel["k_min"]:
        raise ConfigError(f"{source}: 'select.k_max' ({sel['k_max']}) must be at least 'select.k_min' ({sel['k_min']}).")
    named = [int(k) for k in cfg["profile"]["names"]]
    if named and max(named) > sel["k_max"]:
        raise ConfigError(
            f"{source}: 'profile.names' names segment {max(named)}, but the k range ends at "
            f"'select.k_max' = {sel['k_max']}; name segments 1..{sel['k_max']} at most."
        )
    return cfg


#: the ``[select]`` keys that are :func:`latentseg.choose.selection.select` keyword arguments as they stand
SELECT_ARGUMENTS = ("min_share", "silhouette_min", "stability_subsamples", "loo_se_rule", "all_k", "checkpoint_min_seconds")


def select_options(cfg: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The keyword arguments of :func:`latentseg.choose.selection.select` that a merged config's
    ``[select]`` table sets (the CLI, the pipeline and the benchmarks all pass these).

    Parameters
    ----------
    cfg : mapping
        A merged config (:func:`load_config` / :func:`merge_config`).

    Returns
    -------
    dict
        ``min_share``, ``silhouette_min``, ``stability_subsamples``, ``loo_se_rule``, ``all_k``
        and ``checkpoint_min_seconds`` (:data:`SELECT_ARGUMENTS`); ``models`` and ``k_min``/``k_max`` become ``select()``'s
        ``models=`` and ``k=`` at the callers.

    Examples
    --------
    >>> select_options(load_config(None))["min_share"]
    0.1
    """
    return {key: cfg["select"][key] for key in SELECT_ARGUMENTS}


def load_config(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Read a ``latentseg.toml`` and merge it over :data:`DEFAULT_CONFIG`.

    Parameters
    ----------
    path : str or Path, optional
        The file. ``None`` reads ``./latentseg.toml`` if there is one, else gives the defaults.

    Returns
    -------
    dict
        ``{section: {key: value}}`` with every key of :data:`KEYS`. A relative
        ``survey.outcomes_file`` is made relative to the config file's folder.

    Raises
    ------
    ConfigError
        The file is missing or is not valid TOML, or holds an unknown key or a wrong type
        (the message names the file and the key).

    Examples
    --------
    >>> load_config(None)["model"]["random_seed"]
    20261122
    """
    if path is None:
        candidate = Path(CONFIG_FILENAME)
        if not candidate.is_file():
            return _defaults()
        path = candidate
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"Config file '{p}' does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"Config file '{p}' cannot be read: {exc.strerror or exc}.") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"Config file '{p}' is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file '{p}' is not valid TOML: {exc}.") from None
    except RecursionError:
        raise ConfigError(f"Config file '{p}' is nested too deeply to be a latentseg settings file.") from None
    cfg = merge_config(data, source=str(p))
    outcomes_file = cfg["survey"]["outcomes_file"]
    if outcomes_file and not Path(outcomes_file).is_absolute():
        # absolute, so a saved model's config finds it from any folder
        cfg["survey"]["outcomes_file"] = str((p.parent / outcomes_file).resolve())
    return cfg


def _default_text(key: Key) -> str:
    v = key.default
    if isinstance(v, bool):
        return "`true`" if v else "`false`"
    if isinstance(v, str):
        return f'`"{v}"`'
    if isinstance(v, list):
        return "`[" + ", ".join(f'"{x}"' if isinstance(x, str) else str(x) for x in v) + "]`"
    if isinstance(v, dict):
        return "`{}`"
    return f"`{v}`"


def config_reference_markdown() -> str:
    """Every key of ``latentseg.toml`` as one Markdown table (key, type, default, meaning).

    Examples
    --------
    >>> print(config_reference_markdown().splitlines()[0])
    | Key | Type | Default | Meaning |
    """
    lines = ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
    for key in KEYS:
        name = key.dotted
        if key.kind in ("columns-table", "outcomes-table"):
            name = f"{key.dotted}.<outcome>"
        elif key.kind in ("table", "segment-numbers"):
            name = f"{key.dotted}.<segment>"
        meaning = key.meaning.replace("|", "\\|")
        lines.append(f"| `{name}` | {key.describe_type()} | {_default_text(key)} | {meaning} |")
    return "\n".join(lines) + "\n"

