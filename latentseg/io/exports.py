"""The survey exports analysts receive: Qualtrics and SurveyMonkey layouts, choice text, metadata.

What a survey platform writes around the ratings, recognised so that an export reads with no
configuration:

layouts (:func:`detect_layout`)
    *Qualtrics* (CSV, TSV or .xlsx): three header rows, the column ids (``Q3_1``), the question
    text (``"How important is it to you to... - Minimize the time ..."``) and ``{"ImportId": ...}``.
    *SurveyMonkey* (CSV or .xlsx): two header rows, the question text (written once above the
    first column of each question) and the answer row or choice (``"Response"``, or the statement
    of a matrix row); its columns are named here ``Q<question>_<row>`` (or by the question text
    for a one-column question) and given ``"<question> - <row>"`` as their question text.
rating columns from the question text (:func:`question_rating_columns`)
    A matrix whose question mentions *importan...* holds importance ratings, one that mentions
    *satisf...* satisfaction ratings; their rows are paired by statement (else by the Qualtrics
    choice number, else by position), and the outcome id is the choice number (``Q3_1`` -> ``1``).
choice text (:func:`map_labels`)
    ``"Extremely important"`` -> 5 through the standard importance and satisfaction label sets
    (:data:`LABEL_SETS`, 5- and 7-point) or the ``[survey.labels]`` table.
respondents to set aside (:func:`status_exclusions`)
    Qualtrics ``Status`` (survey previews, tests, spam) and ``Finished`` (unfinished responses).
metadata and personal data (:func:`is_metadata`, :func:`personal_columns`)
    Platform bookkeeping (dates, progress, channel) and personal data (IP address, e-mail,
    names, latitude / longitude, recipient and external-reference columns) never become profile
    columns unless named in ``profile_columns``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError, SurveyError

__all__ = [
    "ExportLayout",
    "detect_layout",
    "question_rating_columns",
    "LABEL_SETS",
    "LabelSet",
    "choose_label_set",
    "map_labels",
    "known_label",
    "status_exclusions",
    "is_metadata",
    "personal_columns",
    "personal_by_name",
]

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _norm(name: str) -> str:
    """Lower case, letters and digits only (``"IP Address"`` -> ``"ipaddress"``)."""
    return _NOT_ALNUM.sub("", str(name).lower())


# ----------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class ExportLayout:
    """How a table's header rows are laid out.

    Attributes
    ----------
    kind : {"plain", "qualtrics", "surveymonkey"}
    names : tuple of str
        The column names to use (a SurveyMonkey export's are made here).
    skip : int
        Rows after the first that are header rows, not data (Qualtrics 2, SurveyMonkey 1).
    questions : dict
        Column -> question text (``"<question> - <statement>"`` for a matrix row).
    """

    kind: str
    names: tuple[str, ...]
    skip: int = 0
    questions: dict[str, str] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        """``"Qualtrics"`` / ``"SurveyMonkey"`` / ``""``, for messages."""
        return {"qualtrics": "Qualtrics", "surveymonkey": "SurveyMonkey"}.get(self.kind, "")


def _cell(x: Any) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


_SM_META = frozenset({
    "respondentid", "collectorid", "startdate", "enddate", "ipaddress", "emailaddress", "firstname", "lastname",
})
_SM_ANSWER_ROW = frozenset({"", "response", "openendedresponse"})


def detect_layout(rows: Sequence[Sequence[Any]]) -> ExportLayout:
    """The layout of a table from its first rows (the header row first, as text or cell values).

    Parameters
    ----------
    rows : sequence of sequences
        At least the header row; three rows tell Qualtrics, two SurveyMonkey.

    Returns
    -------
    ExportLayout

    Examples
    --------
    >>> rows = [["ResponseId", "Q1_1"], ["Response ID", "How important ... - Speed"],
    ...         ['{"ImportId":"_recordId"}', '{"ImportId":"QID1_1"}']]
    >>> lay = detect_layout(rows)
    >>> lay.kind, lay.skip, lay.questions["Q1_1"]
    ('qualtrics', 2, 'How important ... - Speed')
    >>> sm = detect_layout([["Respondent ID", "Collector ID", "How important is it to you?", ""],
    ...                     ["", "", "Speed", "Cost"]])
    >>> sm.kind, sm.names, sm.questions["Q1_2"]
    ('surveymonkey', ('Respondent ID', 'Collector ID', 'Q1_1', 'Q1_2'), 'How important is it to you? - Cost')
    """
    text = [[c if isinstance(c, str) else _cell(c) for c in r] for r in rows[:3]]
    if not text:
        return ExportLayout("plain", ())
    header = list(text[0])
    if len(text) >= 3 and text[2]:
        hits = sum(1 for c in text[2] if c.lstrip().startswith('{"ImportId"'))
        if hits >= max(1, len(text[2]) // 2):
            questions = {n: q.strip() for n, q in zip(header, text[1], strict=False) if q.strip()}
            return ExportLayout("qualtrics", tuple(header), 2, questions)
    if len(text) >= 2 and "collector" in ",".join(header).lower() and {"respondentid", "collectorid"} <= {
        _norm(c) for c in header
    }:
        return _surveymonkey(header, text[1] + [""] * (len(header) - len(text[1])))
    return ExportLayout("plain", tuple(header))


def _surveymonkey(row1: list[str], row2: list[str]) -> ExportLayout:
    groups: list[list[int]] = []
    for i, name in enumerate(row1):
        if name.strip() or not groups or _norm(row1[groups[-1][0]]) in _SM_META:
            groups.append([i])
        else:
            groups[-1].append(i)
    names: list[str] = [""] * len(row1)
    questions: dict[str, str] = {}
    used: set[str] = set()
    q = 0
    for g in groups:
        title = " ".join(row1[g[0]].split())
        if _norm(title) in _SM_META and len(g) == 1:
            names[g[0]] = title
            used.add(title)
            continue
        q += 1
        if len(g) == 1 and _norm(row2[g[0]]) in _SM_ANSWER_ROW:
            name = title or f"Q{q}"
            k = 2
            while name in used:  # two questions with the same text
                name, k = f"{title} ({k})", k + 1
            names[g[0]] = name
            used.add(name)
            if title:
                questions[name] = title
            continue
        for j, i in enumerate(g, start=1):
            name = f"Q{q}_{j}"
            names[i] = name
            used.add(name)
            sub = " ".join(row2[i].split())
            questions[name] = f"{title} - {sub}" if sub and title else (title or sub)
    return ExportLayout("surveymonkey", tuple(names), 1, questions)


# ----------------------------------------------------------------------------- question text
_IMPORTANCE = re.compile(r"\bimportan|\bunimportan", re.IGNORECASE)
_SATISFACTION = re.compile(r"\b(?:dis)?satisf", re.IGNORECASE)
_CHOICE = re.compile(r"^(?P<q>.*?)[_.](?P<choice>\d+)$")


def _split(text: str) -> tuple[str, str]:
    """(question, statement) of ``"<question> - <statement>"``; statement empty if no `` - ``."""
    if " - " in text:
        q, _, s = text.rpartition(" - ")
        return q.strip(), s.strip()
    return text.strip(), ""


def _block_of(text: str) -> str | None:
    question, statement = _split(text)
    if not statement:
        return None  # a matrix row always carries its statement
    imp, sat = bool(_IMPORTANCE.search(question)), bool(_SATISFACTION.search(question))
    if imp == sat:
        return None
    return "importance" if imp else "satisfaction"


def question_rating_columns(
    names: Sequence[str], questions: Mapping[str, str], exclude: Sequence[str] = ()
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str] | None:
    """Importance and satisfaction columns found through the question text.

    Parameters
    ----------
    names : sequence of str
        The table's columns, in order.
    questions : mapping
        Column -> question text (a Qualtrics export's second header row, SPSS variable labels,
        SurveyMonkey's question and row text).
    exclude : sequence of str
        Columns that are never ratings.

    Returns
    -------
    (outcomes, importance, satisfaction, how) or None
        None where fewer than two outcomes pair up.

    Examples
    --------
    >>> q = {"Q3_1": "How important is it to you to... - Save time", "Q3_2": "How important ... - Save money",
    ...      "Q4_1": "How satisfied are you with... - Save time", "Q4_2": "How satisfied ... - Save money"}
    >>> question_rating_columns(["Q3_1", "Q3_2", "Q4_1", "Q4_2"], q)[:3]
    (('1', '2'), ('Q3_1', 'Q3_2'), ('Q4_1', 'Q4_2'))
    """
    skip = set(exclude)
    blocks: dict[str, list[str]] = {"importance": [], "satisfaction": []}
    for c in names:
        text = questions.get(c)
        if c in skip or not text:
            continue
        block = _block_of(text)
        if block is not None:
            blocks[block].append(c)
    imp, sat = blocks["importance"], blocks["satisfaction"]
    if len(imp) < 2 or len(sat) < 2:
        return None
    statement = {c: _split(questions[c])[1].casefold() for c in imp + sat}
    pairs: list[tuple[str, str]] = []
    by_statement = {statement[c]: c for c in sat}
    if len(by_statement) == len(sat) and len({statement[c] for c in imp}) == len(imp):
        pairs = [(c, by_statement[statement[c]]) for c in imp if statement[c] in by_statement]
        how = "paired by statement"
    if len(pairs) < 2:
        choice = {m.group("choice"): c for c in sat if (m := _CHOICE.match(c))}
        pairs = [(c, choice[m.group("choice")]) for c in imp if (m := _CHOICE.match(c)) and m.group("choice") in choice]
        how = "paired by choice number"
    if len(pairs) < 2 and len(imp) == len(sat):
        pairs = list(zip(imp, sat, strict=True))
        how = "paired by position"
    if len(pairs) < 2:
        return None
    ids = [m.group("choice") if (m := _CHOICE.match(i)) else "" for i, _ in pairs]
    if "" in ids or len(set(ids)) != len(ids):
        ids = [str(j) for j in range(1, len(pairs) + 1)]
    return (
        tuple(ids), tuple(i for i, _ in pairs), tuple(s for _, s in pairs),
        f"rating columns found by their question text (how important / how satisfied), {how}",
    )


# ----------------------------------------------------------------------------- choice text
@dataclass(frozen=True)
class LabelSet:
    """An ordered set of answer labels: the first is 1, the last ``len(labels)``.

    Examples
    --------
    >>> LABEL_SETS[0].code("  extremely IMPORTANT ")
    5
    """

    name: str
    block: str
    labels: tuple[str, ...]

    @property
    def codes(self) -> dict[str, int]:
        return {_fold(lab): i for i, lab in enumerate(self.labels, start=1)}

    def code(self, label: str) -> int | None:
        return self.codes.get(_fold(label))

    def describe(self) -> str:
        return f"{self.name} ({', '.join(f'{i} = {lab}' for i, lab in enumerate(self.labels, start=1))})"


def _fold(label: Any) -> str:
    return " ".join(str(label).replace("\u2019", "'").split()).casefold().rstrip(".")


#: The standard label sets, low to high: Qualtrics' library scales and the usual 5- and 7-point wordings.
LABEL_SETS: tuple[LabelSet, ...] = (
    LabelSet("5-point importance", "importance", (
        "Not at all important", "Slightly important", "Moderately important", "Very important", "Extremely important")),
    LabelSet("5-point importance (unimportant-important)", "importance", (
        "Very unimportant", "Unimportant", "Neither important nor unimportant", "Important", "Very important")),
    LabelSet("7-point importance", "importance", (
        "Not at all important", "Low importance", "Slightly important", "Neutral", "Moderately important",
        "Very important", "Extremely important")),
    LabelSet("5-point satisfaction", "satisfaction", (
        "Extremely dissatisfied", "Somewhat dissatisfied", "Neither satisfied nor dissatisfied", "Somewhat satisfied",
        "Extremely satisfied")),
    LabelSet("5-point satisfaction (very)", "satisfaction", (
        "Very dissatisfied", "Dissatisfied", "Neither satisfied nor dissatisfied", "Satisfied", "Very satisfied")),
    LabelSet("5-point satisfaction (unipolar)", "satisfaction", (
        "Not at all satisfied", "Slightly satisfied", "Moderately satisfied", "Very satisfied", "Extremely satisfied")),
    LabelSet("7-point satisfaction", "satisfaction", (
        "Extremely dissatisfied", "Moderately dissatisfied", "Slightly dissatisfied",
        "Neither satisfied nor dissatisfied", "Slightly satisfied", "Moderately satisfied", "Extremely satisfied")),
    LabelSet("7-point satisfaction (very)", "satisfaction", (
        "Very dissatisfied", "Dissatisfied", "Somewhat dissatisfied", "Neither satisfied nor dissatisfied",
        "Somewhat satisfied", "Satisfied", "Very satisfied")),
)


def custom_label_set(block: str, spec: Any, where: str = "[survey.labels]") -> tuple[dict[str, float], str]:
    """A ``[survey.labels]`` entry: a list (low to high, coded 1..n) or a table ``{label = code}``.

    Returns
    -------
    (folded label -> code, description)
    """
    if isinstance(spec, (list, tuple)):
        codes = {_fold(lab): float(i) for i, lab in enumerate(spec, start=1)}
        return codes, f"{where} {block} labels (" + ", ".join(f"{i} = {lab}" for i, lab in enumerate(spec, start=1)) + ")"
    if isinstance(spec, Mapping):
        codes = {_fold(lab): float(v) for lab, v in spec.items()}
        return codes, f"{where} {block} labels (" + ", ".join(f"{_fmt(v)} = {lab}" for lab, v in spec.items()) + ")"
    raise ConfigError(f"{where}: '{block}' must be a list of labels (low to high) or a table label = number; got {spec!r}.")


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def choose_label_set(block: str, labels: Sequence[str], scale_points: int | None = None) -> tuple[LabelSet | None, bool]:
    """The standard label set of ``block`` that holds every label seen.

    The set leaving fewest of its labels unseen wins (five labels seen fit the 5-point set
    before the 7-point one); ``scale_points`` (from a declared scale 1-5 / 1-7) narrows the choice.

    Returns
    -------
    (LabelSet or None, sure)
        ``sure`` is False when another set of the same block also holds every label seen but
        codes them differently (then declaring the scale settles it).

    Examples
    --------
    >>> s, sure = choose_label_set("importance", ["Very important", "Low importance", "Neutral"])
    >>> s.name, sure
    ('7-point importance', True)
    """
    seen = {_fold(lab) for lab in labels}
    fits = [
        s for s in LABEL_SETS
        if s.block == block and seen <= set(s.codes) and (scale_points is None or len(s.labels) == scale_points)
    ]
    if not fits:
        return None, False
    fits.sort(key=lambda s: len(s.labels) - len(seen))
    best = fits[0]
    # sure: every set that fits codes the labels alike, or the best one's labels were all seen
    # and no other set's were (a 7-point scale whose respondents never used two of its points)
    whole = [s for s in fits if len(s.labels) == len(seen)]
    sure = all(all(other.codes[lab] == best.codes[lab] for lab in seen) for other in fits[1:]) or whole == [best]
    return best, sure


def map_labels(
    values: Mapping[str, pd.Series],
    block: str,
    source: str,
    rows: Any,
    *,
    custom: Any = None,
    scale_points: int | None = None,
    fixed: str | None = None,
) -> tuple[dict[str, np.ndarray], str, tuple[float, float], bool, str]:
    """Choice text of one block (importance or satisfaction) as numbers.

    Parameters
    ----------
    values : mapping
        Column -> its cells (text; blanks are missing).
    block : {"importance", "satisfaction"}
    source : str
        The file, for messages.
    rows : RowNamer
        Names rows in messages.
    custom : list or mapping, optional
        The block's ``[survey.labels]`` entry; replaces the standard sets.
    scale_points : int, optional
        The number of points of a declared scale (``1-7`` -> 7), to choose between standard sets.
    fixed : str, optional
        The name of the standard set to use (as chosen when a model was fitted).

    Returns
    -------
    (column -> float array, description of the labels used, (low, high) of the set, sure, key)
        ``key``: the standard set's name, or ``"[survey.labels]"``.

    Raises
    ------
    SurveyError
        A label no set (or the ``[survey.labels]`` table) knows: the message names the column,
        the label and the rows.

    Examples
    --------
    >>> from latentseg.io.validate import RowNamer
    >>> col = pd.Series(["Extremely important", None, "Slightly important"])
    >>> out, how, scale, sure, key = map_labels({"Q1_1": col}, "importance", "s.csv", RowNamer([2, 3, 4]))
    >>> out["Q1_1"].tolist(), scale
    ([5.0, nan, 2.0], (1.0, 5.0))
    """
    folded: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # column -> (distinct folded labels, row codes)
    seen: dict[str, str] = {}
    for c, s in values.items():
        folded[c] = _folded_codes(s)
        for lab in folded[c][0]:
            if lab:
                seen.setdefault(lab, c)
    sure = True
    key = "[survey.labels]"
    if custom is not None:
        codes, how = custom_label_set(block, custom)
    elif fixed is not None:
        chosen = next((s for s in LABEL_SETS if s.name == fixed), None)
        if chosen is None:
            raise ConfigError(f"{source}: unknown {block} label set {fixed!r}; expected one of {[s.name for s in LABEL_SETS]}.")
        codes = {k: float(v) for k, v in chosen.codes.items()}
        how, key = chosen.describe(), chosen.name
    else:
        best, sure = choose_label_set(block, list(seen), scale_points)
        if best is None:
            # the column and label no standard set holds, to name in the message
            for c, (labs, codes_of_rows) in folded.items():
                bad = [j for j, lab in enumerate(labs) if lab and not any(
                    lab in s.codes for s in LABEL_SETS if s.block == block)]
                if bad:
                    pos = np.flatnonzero(codes_of_rows == bad[0])
                    raise _unknown(source, c, block, values[c].iloc[pos[0]], rows, pos,
                                   "the standard importance and satisfaction label sets")
            raise SurveyError(
                f"{source}: the {block} columns ({', '.join(repr(k) for k in list(folded)[:3])} ...) mix labels of "
                f"different scales ({', '.join(repr(v) for v in list(seen)[:6])}); expected one label set: "
                "declare it in [survey.labels]."
            )
        codes = {k: float(v) for k, v in best.codes.items()}
        how, key = best.describe(), best.name
    out: dict[str, np.ndarray] = {}
    for c, (labs, codes_of_rows) in folded.items():
        number = np.array([codes.get(lab, np.nan) if lab else np.nan for lab in labs], dtype=np.float64)
        missing = [j for j, lab in enumerate(labs) if lab and lab not in codes]
        if missing:
            pos = np.flatnonzero(codes_of_rows == missing[0])  # the first unknown label, all its rows
            raise _unknown(source, c, block, values[c].iloc[pos[0]], rows, pos, how)
        out[c] = number[codes_of_rows]
    low, high = min(codes.values()), max(codes.values())
    return out, how, (low, high), sure, key


def known_label(value: Any, block: str) -> bool:
    """Whether ``value`` is a label of one of the standard sets of ``block``.

    Examples
    --------
    >>> known_label("Very satisfied", "satisfaction"), known_label("Very satisfied", "importance")
    (True, False)
    """
    f = _fold(value)
    return any(f in s.codes for s in LABEL_SETS if s.block == block)


def _unknown(source: str, column: str, block: str, label: Any, rows: Any, pos: np.ndarray, known: str) -> SurveyError:
    return SurveyError(
        f"{source}: column '{column}' ({block}) has the answer label {str(label).strip()!r}, which is not in "
        f"{known}, at {rows(pos)}; expected a known label: list the scale's labels, low to high, under "
        f"[survey.labels] {block} = [...], or export numeric values."
    )


# ----------------------------------------------------------------------------- status
#: Qualtrics ``Status`` values (numeric export, then choice text) of responses to set aside.
_STATUS_OUT = {
    1: "survey preview", 2: "survey test", 8: "spam", 9: "preview spam", 12: "imported spam", 17: "offline survey preview",
}
_STATUS_KEEP = {0: "ip address", 4: "imported", 16: "offline"}
_STATUS_TEXT = {v: k for k, v in {**_STATUS_OUT, **_STATUS_KEEP}.items()}
_TRUE = {"1", "true", "yes", "1.0"}
_FALSE = {"0", "false", "no", "0.0"}


def _folded_codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(distinct folded texts, code of each row into them): each distinct value folded once."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    folded = np.array([_fold(_cell(u)) for u in uniques] + [""], dtype=object)  # -1 (blank) -> ""
    return folded, codes


def _status_codes(s: pd.Series) -> np.ndarray | None:
    """Status codes of every row (-1 where blank); None where a value is not a Qualtrics status."""
    folded, rows = _folded_codes(s)
    known = _STATUS_OUT.keys() | _STATUS_KEEP.keys()
    per_value = np.full(len(folded), -1, dtype=np.int64)
    for j, t in enumerate(folded):
        if not t:
            continue
        if t in _STATUS_TEXT:
            per_value[j] = _STATUS_TEXT[t]
        elif t.isdigit() and int(t) in known:
            per_value[j] = int(t)
        else:
            return None
    return per_value[rows]


def status_exclusions(status: pd.Series | None, finished: pd.Series | None) -> tuple[np.ndarray, list[str], list[str]]:
    """Responses to set aside by Qualtrics' ``Status`` and ``Finished`` columns.

    Parameters
    ----------
    status, finished : Series or None
        The columns (numeric codes or choice text), where present. A column with a value that
        is not a Qualtrics status (or not 0/1, true/false) is not used.

    Returns
    -------
    (mask, reasons, used)
        ``mask`` (n,) True for rows to set aside; ``reasons`` the reason of each such row, in
        order; ``used`` the columns that were applied.

    Examples
    --------
    >>> m, why, used = status_exclusions(pd.Series([0, 1, 0], name="Status"), pd.Series([1, 1, 0], name="Finished"))
    >>> m.tolist(), why
    ([False, True, True], ['survey preview (Status)', 'unfinished (Finished = 0)'])
    """
    n = len(status) if status is not None else len(finished) if finished is not None else 0
    why_status = np.full(n, "", dtype=object)
    unfinished = np.zeros(n, dtype=bool)
    used: list[str] = []
    if status is not None:
        codes = _status_codes(status)
        if codes is not None:
            used.append(str(status.name))
            for code, word in _STATUS_OUT.items():
                why_status[codes == code] = f"{word} ({status.name})"
    if finished is not None:
        folded, rows = _folded_codes(finished)
        vals = set(folded) - {""}
        if vals and vals <= _TRUE | _FALSE:
            used.append(str(finished.name))
            unfinished = np.isin(folded, list(_FALSE))[rows]
    mask = (why_status != "") | unfinished
    reasons = [
        "; ".join(r for r in (why_status[i], f"unfinished ({finished.name} = 0)" if unfinished[i] else "") if r)
        for i in np.flatnonzero(mask)
    ]
    return mask, reasons, used


# ----------------------------------------------------------------------------- metadata, personal data
_METADATA = frozenset({
    "startdate", "enddate", "status", "progress", "finished", "recordeddate", "distributionchannel", "userlanguage",
    "collectorid", "responsetype",
})
_PERSONAL = frozenset({
    "ipaddress", "ip", "ipaddr", "email", "emailaddress", "mail", "firstname", "lastname", "fullname", "name",
    "respondentname", "contactname", "surname", "givenname", "phone", "phonenumber", "telephone", "mobile",
    "locationlatitude", "locationlongitude", "latitude", "longitude", "lat", "lon", "lng", "externalreference",
    "externaldatareference", "externalid", "streetaddress", "postaladdress",
})
_PERSONAL_PREFIX = ("recipient", "customdata")
#: Every name above starts with one of these (case-insensitive, after any punctuation).
_PERSONAL_HINT = re.compile(
    r"^[^a-z0-9]*(?:ip|e[^a-z0-9]*mail|mail|first|last|full|name|respondent|contact|sur|given|phone|tele|mobile|"
    r"location|lat|lon|lng|external|street|postal|recipient|custom)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_metadata(name: str) -> bool:
    """A survey platform's bookkeeping column (dates, status, progress, channel, ``Q_...`` scores).

    Examples
    --------
    >>> is_metadata("RecordedDate"), is_metadata("Q_RecaptchaScore"), is_metadata("role")
    (True, True, False)
    """
    return _norm(name) in _METADATA or str(name).startswith("Q_")


def personal_by_name(names: Sequence[str]) -> list[str]:
    """The columns :func:`personal_columns` recognises by name alone.

    Examples
    --------
    >>> personal_by_name(["ResponseId", "RecipientEmail", "LocationLatitude", "role"])
    ['RecipientEmail', 'LocationLatitude']
    """
    out = []
    for c in names:
        if _PERSONAL_HINT.search(str(c)) is None:  # a cheap first look at a wide header
            continue
        n = _norm(c)
        if n in _PERSONAL or n.startswith(_PERSONAL_PREFIX):
            out.append(str(c))
    return out


def personal_columns(frame: pd.DataFrame, sample: int = 50, max_content: int = 2000) -> list[str]:
    """Columns holding personal data: by name (IP address, e-mail, names, latitude / longitude,
    recipient and external-reference columns, phone, address), or text columns whose values
    mostly look like e-mail or IP addresses (looked at in the first ``max_content`` text
    columns: a very wide table is judged by name beyond them).

    Parameters
    ----------
    frame : DataFrame
        The candidate profile columns.
    sample : int
        Non-blank values of a text column looked at.

    Returns
    -------
    list of str, in column order

    Examples
    --------
    >>> df = pd.DataFrame({"IPAddress": ["1.2.3.4"], "role": ["PM"], "contact": ["a@b.com"]})
    >>> personal_columns(df)
    ['IPAddress', 'contact']
    """
    out: list[str] = []
    by_name = set(personal_by_name([str(c) for c in frame.columns]))
    text_columns = [
        j for j, dt in enumerate(frame.dtypes)
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))
    ] if len(frame.columns) else []
    text_set = set(text_columns[:max_content])  # a very wide table is judged by name beyond these
    for j, c in enumerate(frame.columns):
        if str(c) in by_name:
            out.append(str(c))
            continue
        if j not in text_set:
            continue
        vals = [v.strip() for v in frame.iloc[: 4 * sample, j].to_numpy() if isinstance(v, str) and v.strip()][:sample]
        hits = sum(1 for v in vals if _EMAIL.match(v) or _is_ip(v))
        if vals and hits > len(vals) / 2:
            out.append(str(c))
    return out
