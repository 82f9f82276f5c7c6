"""Finding the importance / satisfaction column pair of every outcome.

Three ways, tried in this order of precedence:

1. an explicit mapping (``[survey.columns]`` in ``latentseg.toml``):
   ``{outcome: {"importance": column, "satisfaction": column}}``; only those columns are ratings;
2. patterns (``imp_pattern`` / ``sat_pattern``): a regular expression with a group
   ``(?P<outcome>...)`` (or one unnamed group), or a template such as ``"Q5_{outcome}_imp"``;
   a pattern given for one block replaces that block's conventions only;
3. the naming conventions, case-insensitive, with ``_``, ``.``, ``-``, ``:`` or spaces as
   separators: ``imp_<o>`` / ``sat_<o>`` (the default), ``importance_<o>`` /
   ``satisfaction_<o>``, ``<o>_imp`` / ``<o>_sat``.

A column matched by the first convention that fits is taken by it. Outcomes are paired by id
(case-insensitive); the outcome id is taken from the importance column. Outcomes are listed in
the order of their importance columns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from latentseg.errors import ConfigError, SurveyError

__all__ = ["RatingColumns", "find_rating_columns", "compile_pattern", "CONVENTIONS"]

_SEP = r"[ _.:\-]+"
#: Every convention needs "imp" or "sat" in the name: a cheap first look at a wide header.
_MAYBE_CONVENTION = re.compile(r"imp|sat", re.IGNORECASE)

#: (name, importance regex, satisfaction regex, importance template, satisfaction template)
CONVENTIONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("imp_<outcome>", rf"imp{_SEP}(?P<outcome>.+)", rf"sat{_SEP}(?P<outcome>.+)", "imp_{o}", "sat_{o}"),
    (
        "importance_<outcome>",
        rf"importance{_SEP}(?P<outcome>.+)",
        rf"satisfaction{_SEP}(?P<outcome>.+)",
        "importance_{o}",
        "satisfaction_{o}",
    ),
    ("<outcome>_imp", rf"(?P<outcome>.+?){_SEP}imp", rf"(?P<outcome>.+?){_SEP}sat", "{o}_imp", "{o}_sat"),
)


@dataclass(frozen=True)
class RatingColumns:
    """The rating columns of a survey table.

    Attributes
    ----------
    outcomes : tuple of str, length m
        Outcome ids, in the order of their importance columns.
    importance, satisfaction : tuple of str, length m
        The column holding each outcome's importance / satisfaction ratings.
    how : str
        How they were found (for the survey's notes).
    """

    outcomes: tuple[str, ...]
    importance: tuple[str, ...]
    satisfaction: tuple[str, ...]
    how: str

    @property
    def columns(self) -> frozenset[str]:
        """Every rating column."""
        return frozenset(self.importance) | frozenset(self.satisfaction)


def compile_pattern(text: str, *, where: str = "pattern") -> re.Pattern[str]:
    """Compile a column pattern: a regex with a group, or a template with ``{outcome}``.

    Parameters
    ----------
    text : str
        ``"imp_(?P<outcome>.+)"``, ``"Q(\\d+)_imp"`` (first group = outcome) or
        ``"Q5_{outcome}_1"`` (everything but ``{outcome}`` taken literally).
    where : str
        Named in the error message (e.g. the config key).

    Returns
    -------
    re.Pattern
        Matched with ``fullmatch``, case-insensitive; the outcome is group ``outcome`` or group 1.

    Raises
    ------
    ConfigError
        Not a valid regular expression, or one without a group for the outcome.

    Examples
    --------
    >>> compile_pattern("Q5_{outcome}_1").fullmatch("Q5_speed_1").group(1)
    'speed'
    """
    if "{outcome}" in text and "(?P<outcome>" not in text:
        head, _, tail = text.partition("{outcome}")
        regex = re.escape(head) + "(?P<outcome>.+?)" + re.escape(tail)
    else:
        regex = text
    try:
        pat = re.compile(regex, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{where}: {text!r} is not a valid regular expression ({exc}).") from None
    if pat.groups < 1:
        raise ConfigError(
            f"{where}: {text!r} needs a group for the outcome id, e.g. 'imp_(?P<outcome>.+)' or 'imp_{{outcome}}'."
        )
    return pat


def _outcome_of(m: re.Match[str]) -> str:
    return m.group("outcome") if "outcome" in m.re.groupindex else m.group(1)


def _describe_expected(block: str, outcome: str, template: str | None, pattern: str | None) -> str:
    if template is not None:
        return f"a column named '{template.format(o=outcome)}'"
    return f"a {block} column matching {pattern!r} for outcome '{outcome}'"


def find_rating_columns(
    columns: Sequence[str],
    *,
    imp_pattern: str | None = None,
    sat_pattern: str | None = None,
    mapping: Mapping[str, Mapping[str, str]] | None = None,
    exclude: Sequence[str] = (),
    source: str = "<frame>",
) -> RatingColumns:
    """Find every outcome's importance and satisfaction columns.

    Parameters
    ----------
    columns : sequence of str
        The table's column names (already checked for duplicates).
    imp_pattern, sat_pattern : str, optional
        Patterns replacing the importance / satisfaction conventions (see :func:`compile_pattern`).
    mapping : mapping, optional
        ``{outcome: {"importance": column, "satisfaction": column}}``; replaces conventions and
        patterns.
    exclude : sequence of str
        Columns that are never ratings (the id, duration and weight columns).
    source : str
        The file, for messages.

    Returns
    -------
    RatingColumns

    Raises
    ------
    SurveyError
        A mapped column that is not in the table; an importance column without its satisfaction
        partner or the reverse; one outcome with two columns in a block; fewer than two outcomes.

    Examples
    --------
    >>> rc = find_rating_columns(["id", "imp_a", "sat_a", "b_imp", "b_sat", "age"])
    >>> rc.outcomes, rc.importance, rc.satisfaction
    (('a', 'b'), ('imp_a', 'b_imp'), ('sat_a', 'b_sat'))
    """
    names = [str(c) for c in columns]
    excluded = set(exclude)
    if mapping:
        return _from_mapping(names, mapping, source)

    imp_rules: list[tuple[re.Pattern[str], str | None, str]]
    sat_rules: list[tuple[re.Pattern[str], str | None, str]]
    if imp_pattern:
        imp_rules = [(compile_pattern(imp_pattern, where="imp_pattern"), None, imp_pattern)]
    else:
        imp_rules = [(re.compile(c[1], re.IGNORECASE), c[4], c[0]) for c in CONVENTIONS]
    if sat_pattern:
        sat_rules = [(compile_pattern(sat_pattern, where="sat_pattern"), None, sat_pattern)]
    else:
        sat_rules = [(re.compile(c[2], re.IGNORECASE), c[3], c[0].replace("imp", "sat")) for c in CONVENTIONS]

    # column -> (block, outcome, partner template, rule text); first rule that matches wins
    found: dict[str, dict[str, tuple[str, str | None]]] = {"importance": {}, "satisfaction": {}}
    ids: dict[str, str] = {}  # casefolded outcome -> outcome id as first seen
    used_rules: set[str] = set()
    quick = None if imp_pattern or sat_pattern else _MAYBE_CONVENTION.search
    for col in names:
        if col in excluded or (quick is not None and quick(col) is None):
            continue
        for block, rules in (("importance", imp_rules), ("satisfaction", sat_rules)):
            hit = None
            for pat, partner, text in rules:
                m = pat.fullmatch(col)
                if m:
                    hit = (_outcome_of(m), partner, text)
                    break
            if hit is None:
                continue
            outcome, partner, text = hit
            key = outcome.casefold()
            if key in found[block]:
                other = found[block][key][0]
                raise SurveyError(
                    f"{source}: outcome '{outcome}' has two {block} columns, '{other}' and '{col}'; "
                    "expected one per outcome (drop one, or map columns explicitly in [survey.columns])."
                )
            found[block][key] = (col, partner)
            ids.setdefault(key, outcome)
            used_rules.add(text)
            break  # a column is in one block only

    imp, sat = found["importance"], found["satisfaction"]
    lonely_imp = [k for k in imp if k not in sat]
    lonely_sat = [k for k in sat if k not in imp]
    for block, lonely, other_block, pattern in (
        ("importance", lonely_imp, "satisfaction", sat_pattern),
        ("satisfaction", lonely_sat, "importance", imp_pattern),
    ):
        if lonely:
            table = imp if block == "importance" else sat
            col, partner = table[lonely[0]]
            expected = _describe_expected(other_block, ids[lonely[0]], partner, pattern)
            more = ""
            if len(lonely) > 1:
                more = f" ({len(lonely) - 1} more {block} columns lack a partner: " + ", ".join(
                    f"'{table[k][0]}'" for k in lonely[1:6]
                ) + (" ..." if len(lonely) > 6 else "") + ")"
            raise SurveyError(
                f"{source}: column '{col}' ({block} of outcome '{ids[lonely[0]]}') has no {other_block} "
                f"partner; expected {expected}{more}. Rename the columns, or map them in [survey.columns]."
            )

    keys = list(imp)  # insertion order = column order of the importance block
    if len(keys) < 2:
        return _too_few(names, [ids[k] for k in keys], source)
    return RatingColumns(
        outcomes=tuple(ids[k] for k in keys),
        importance=tuple(imp[k][0] for k in keys),
        satisfaction=tuple(sat[k][0] for k in keys),
        how="rating columns found by the convention " + " and ".join(sorted(used_rules)),
    )


def _too_few(names: list[str], outcomes: list[str], source: str) -> RatingColumns:
    shown = ", ".join(f"'{c}'" for c in names[:8]) + (" ..." if len(names) > 8 else "")
    if outcomes:
        what = f"only 1 outcome ('{outcomes[0]}')"
    else:
        what = "no rating columns"
    raise SurveyError(
        f"{source}: found {what}; at least two outcomes are needed, each with an importance and a "
        "satisfaction column named like imp_<outcome> / sat_<outcome> (or importance_<outcome> / "
        "satisfaction_<outcome>, <outcome>_imp / <outcome>_sat), or set imp_pattern / sat_pattern "
        f"or [survey.columns] in latentseg.toml. Columns seen: {shown}."
    )


def _from_mapping(names: list[str], mapping: Mapping[str, Mapping[str, str]], source: str) -> RatingColumns:
    present = set(names)
    seen: dict[str, str] = {}
    outcomes, imp, sat = [], [], []
    for outcome, spec in mapping.items():
        cols = []
        for block in ("importance", "satisfaction"):
            col = spec.get(block) if isinstance(spec, Mapping) else None
            if not col:
                raise SurveyError(f"{source}: [survey.columns] outcome '{outcome}' needs an {block} column.")
            if col not in present:
                raise SurveyError(
                    f"{source}: column '{col}' ({block} of outcome '{outcome}' in [survey.columns]) is not in "
                    "the file; expected one of its columns."
                )
            if col in seen:
                raise SurveyError(
                    f"{source}: column '{col}' is mapped twice in [survey.columns] (outcomes '{seen[col]}' and "
                    f"'{outcome}'); expected one column per outcome and block."
                )
            seen[col] = str(outcome)
            cols.append(col)
        outcomes.append(str(outcome))
        imp.append(cols[0])
        sat.append(cols[1])
    if len(outcomes) < 2:
        return _too_few(names, outcomes, source)
    return RatingColumns(tuple(outcomes), tuple(imp), tuple(sat), how="rating columns from [survey.columns]")
