"""Realistic survey-platform exports with known answers, for tests/test_exports.py.

The ratings are the first respondents of the bundled example (examples/project_survey.csv, its
24 outcome statements from examples/project_outcomes.csv), importance on 1-5 and satisfaction
brought onto 1-5 (ceil(x / 2) of its 1-10), written as the platforms write them:

- ``qualtrics_values.csv``: Qualtrics "Export values": UTF-8 with BOM, CRLF line ends, three header
  rows (``Q3_1`` ids, the question text, ``{"ImportId": ...}``), the metadata and personal-data
  columns Qualtrics adds (Status, Finished, IPAddress, RecipientEmail, LocationLatitude ...),
  importance in ``Q3_*``, satisfaction in ``Q4_*``, a line break inside a question text;
- ``qualtrics_text.csv``: "Export choice text" (``"Extremely important"``, ``"Survey Preview"``, ``"True"``);
- ``qualtrics.tsv``: the values export as Qualtrics writes TSV (UTF-16 with BOM, tabs);
- ``qualtrics.xlsx``: the values export as an Excel workbook, same three header rows;
- ``surveymonkey.csv`` / ``surveymonkey.xlsx``: two header rows (question text above the first
  column of each matrix, the statements below), SurveyMonkey's metadata columns;
- ``qualtrics.sav``: the SPSS export: variable labels = question text, value labels on every rating.

The Qualtrics and SPSS files also hold survey previews (Status 1), a spam response (Status 8) and
unfinished responses (Finished 0), which the reader must set aside; SurveyMonkey holds the
kept respondents only. Personal data (:data:`PLANTED`) is planted for the personal-data test.

Run ``python tests/make_exports.py FOLDER`` to write them for a look.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

IMP_QUESTION = "When you manage a cross-functional project, how important is it to you to..."
SAT_QUESTION = "How satisfied are you with the way you do this today when you try to..."
ROLE_QUESTION = "What is your role?\nSelect the closest one."
SIZE_QUESTION = "How many people work at your company?"
IMP_LABELS = ("Not at all important", "Slightly important", "Moderately important", "Very important", "Extremely important")
SAT_LABELS = (
    "Extremely dissatisfied", "Somewhat dissatisfied", "Neither satisfied nor dissatisfied", "Somewhat satisfied",
    "Extremely satisfied",
)
#: Personal data planted in every respondent's row of the Qualtrics exports (the first respondent's
#: own values), that no output may contain.
PLANTED = {
    "email": "zelda.plantedmail@example.org",
    "ip": "203.0.113.77",
    "first_name": "Quorrafirst",
    "last_name": "Vantablacklast",
    "latitude": 47.123456,
    "longitude": -122.654321,
    "external": "EXTREF-93817",
}


@dataclass(frozen=True)
class Truth:
    """What every export holds.

    Attributes
    ----------
    ids : list of str
        The respondents kept (file order).
    set_aside : dict
        Respondent id -> reason word (``"survey preview"``, ``"spam"``, ``"unfinished"``) of the
        responses the Qualtrics and SPSS files add.
    outcomes : list of str
        ``"1"`` .. ``"24"``.
    statements : dict
        Outcome -> statement.
    importance, satisfaction : DataFrame, shape (n, 24)
        The ratings (1-5, NaN where unrated), index ids, columns outcomes.
    """

    ids: list[str]
    set_aside: dict[str, str]
    outcomes: list[str]
    statements: dict[str, str]
    importance: pd.DataFrame
    satisfaction: pd.DataFrame
    role: pd.Series
    size: pd.Series


def truth(n: int = 120) -> Truth:
    """The answers, from the bundled example's first ``n`` respondents."""
    src = pd.read_csv(EXAMPLES / "project_survey.csv", dtype={"respondent_id": str}).head(n)
    out = pd.read_csv(EXAMPLES / "project_outcomes.csv")
    codes = [str(o) for o in out["outcome"]]
    outcomes = [str(i) for i in range(1, len(codes) + 1)]
    ids = [f"R_{rid}x{i:03d}" for i, rid in enumerate(src["respondent_id"], start=1)]
    imp = pd.DataFrame(src[[f"imp_{c}" for c in codes]].to_numpy(float), index=ids, columns=outcomes)
    sat10 = src[[f"sat_{c}" for c in codes]].to_numpy(float)
    sat = pd.DataFrame(sat10, index=ids, columns=outcomes).map(lambda x: x if math.isnan(x) else float(math.ceil(x / 2)))
    statements = dict(zip(outcomes, out["statement"].astype(str), strict=True))
    set_aside = {"R_preview1": "survey preview", "R_preview2": "survey preview", "R_spam01": "spam",
                 "R_unfin01": "unfinished", "R_unfin02": "unfinished", "R_unfin03": "unfinished"}
    return Truth(ids, set_aside, outcomes, statements, imp, sat,
                 pd.Series(src["role"].to_numpy(), index=ids), pd.Series(src["company_size"].to_numpy(), index=ids))


_META = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished", "RecordedDate",
         "ResponseId", "RecipientLastName", "RecipientFirstName", "RecipientEmail", "ExternalReference",
         "LocationLatitude", "LocationLongitude", "DistributionChannel", "UserLanguage"]
_META_TEXT = ["Start Date", "End Date", "Response Type", "IP Address", "Progress", "Duration (in seconds)", "Finished",
              "Recorded Date", "Response ID", "Recipient Last Name", "Recipient First Name", "Recipient Email",
              "External Data Reference", "Location Latitude", "Location Longitude", "Distribution Channel",
              "User Language"]
_META_IMPORT = ["startDate", "endDate", "status", "ipAddress", "progress", "duration", "finished", "recordedDate",
                "_recordId", "recipientLastName", "recipientFirstName", "recipientEmail", "externalDataReference",
                "locationLatitude", "locationLongitude", "distributionChannel", "userLanguage"]


def qualtrics_rows(t: Truth, *, text: bool) -> list[list[object]]:
    """The Qualtrics export as rows: three header rows, then one row per response."""
    m = len(t.outcomes)
    names = _META + [f"Q3_{o}" for o in t.outcomes] + [f"Q4_{o}" for o in t.outcomes] + ["Q5", "Q6"]
    questions = (_META_TEXT + [f"{IMP_QUESTION} - {t.statements[o]}" for o in t.outcomes]
                 + [f"{SAT_QUESTION} - {t.statements[o]}" for o in t.outcomes] + [ROLE_QUESTION, SIZE_QUESTION])
    imports = ([json.dumps({"ImportId": i}) for i in _META_IMPORT] + [json.dumps({"ImportId": f"QID3_{o}"}) for o in t.outcomes]
               + [json.dumps({"ImportId": f"QID4_{o}"}) for o in t.outcomes]
               + [json.dumps({"ImportId": "QID5"}), json.dumps({"ImportId": "QID6"})])
    rows: list[list[object]] = [names, questions, imports]

    def rating(x: float, labels: tuple[str, ...]) -> object:
        if math.isnan(x):
            return ""
        return labels[int(x) - 1] if text else int(x)

    def response(rid: str, status: int, finished: bool, imp: list[float], sat: list[float], role: str, size: str,
                 k: int) -> list[object]:
        status_out = {0: "IP Address", 1: "Survey Preview", 8: "Spam"}[status] if text else status
        fin = ("True" if finished else "False") if text else int(finished)
        personal = [PLANTED["last_name"], PLANTED["first_name"], PLANTED["email"], PLANTED["external"],
                    f"{PLANTED['latitude']:.6f}", f"{PLANTED['longitude']:.6f}"]
        return ([f"2026-03-02 10:{k % 60:02d}:00", f"2026-03-02 10:{k % 60:02d}:59", status_out,
                 PLANTED["ip"], 100 if finished else 40, 300 + 7 * (k % 13), fin, f"2026-03-02 11:{k % 60:02d}:00", rid]
                + personal + ["anonymous" if status == 0 else "preview", "EN"]
                + [rating(x, IMP_LABELS) for x in imp] + [rating(x, SAT_LABELS) for x in sat] + [role, size])

    k = 0
    first = t.ids[0]
    extra = list(t.set_aside.items())
    for i, rid in enumerate(t.ids):
        if i == 3:  # previews and spam among the real responses
            for xid, why in extra[:3]:
                status = 8 if why == "spam" else 1
                rows.append(response(xid, status, True, list(t.importance.loc[first]), list(t.satisfaction.loc[first]),
                                     "Executive", "1-49", k))
                k += 1
        rows.append(response(rid, 0, True, list(t.importance.loc[rid]), list(t.satisfaction.loc[rid]),
                             str(t.role[rid]), str(t.size[rid]), k))
        k += 1
    for xid, why in extra[3:]:  # unfinished: the first outcomes answered, the rest blank
        imp = [float(x) if j < 5 else math.nan for j, x in enumerate(t.importance.loc[first])]
        sat = [float(x) if j < 5 else math.nan for j, x in enumerate(t.satisfaction.loc[first])]
        rows.append(response(xid, 0, False, imp, sat, "", "", k))
        k += 1
    assert len(rows[0]) == len(rows[3]) == len(_META) + 2 * m + 2
    return rows


def _csv_text(rows: list[list[object]], delimiter: str = ",") -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerows(rows)
    return buf.getvalue()


def _xlsx(rows: list[list[object]], path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet0"
    for r in rows:
        ws.append([None if v == "" else v for v in r])
    wb.save(path)


def surveymonkey_rows(t: Truth) -> list[list[object]]:
    """SurveyMonkey's CSV: question text over the first column of each question, the row text below."""
    meta = ["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address", "First Name",
            "Last Name", "Custom Data 1"]
    m = len(t.outcomes)
    row1 = (meta + [IMP_QUESTION.replace("...", "?")] + [""] * (m - 1) + [SAT_QUESTION.replace("...", "?")]
            + [""] * (m - 1) + [ROLE_QUESTION, SIZE_QUESTION])
    row2 = [""] * len(meta) + [t.statements[o] for o in t.outcomes] * 2 + ["Response", "Response"]
    rows: list[list[object]] = [row1, row2]
    for k, rid in enumerate(t.ids):
        vals = [rid, 431287465, "03/02/2026 10:00:00 AM", "03/02/2026 10:05:00 AM", PLANTED["ip"], PLANTED["email"],
                PLANTED["first_name"], PLANTED["last_name"], PLANTED["external"]]
        vals += ["" if math.isnan(x) else int(x) for x in t.importance.loc[rid]]
        vals += ["" if math.isnan(x) else int(x) for x in t.satisfaction.loc[rid]]
        rows.append(vals + [str(t.role[rid]), str(t.size[rid])])
    return rows


def _spss(t: Truth, path: Path) -> None:
    import pyreadstat

    rows = qualtrics_rows(t, text=False)
    names = [str(c) for c in rows[0]]
    frame = pd.DataFrame(rows[3:], columns=names).replace("", None)
    keep = ["ResponseId", "Status", "Finished", "IPAddress", "RecipientEmail", "RecipientFirstName", "LocationLatitude",
            "LocationLongitude", "Duration (in seconds)"]
    keep += [c for c in names if c.startswith(("Q3_", "Q4_"))] + ["Q5"]
    frame = frame[keep].rename(columns={"Duration (in seconds)": "Duration__in_seconds_"})
    for c in frame.columns:
        if c.startswith(("Q3_", "Q4_")) or c in ("Status", "Finished", "Duration__in_seconds_"):
            frame[c] = pd.to_numeric(frame[c])
        elif c in ("LocationLatitude", "LocationLongitude"):
            frame[c] = pd.to_numeric(frame[c])
        else:
            frame[c] = frame[c].astype(str)
    questions = dict(zip(names, rows[1], strict=True))
    labels = [questions.get(c, c) for c in frame.columns]
    labels[frame.columns.get_loc("Duration__in_seconds_")] = "Duration (in seconds)"
    value_labels = {c: {float(i): lab for i, lab in enumerate(IMP_LABELS, start=1)} for c in frame if c.startswith("Q3_")}
    value_labels |= {c: {float(i): lab for i, lab in enumerate(SAT_LABELS, start=1)} for c in frame if c.startswith("Q4_")}
    value_labels["Status"] = {0.0: "IP Address", 1.0: "Survey Preview", 8.0: "Spam"}
    pyreadstat.write_sav(frame, str(path), column_labels=labels, variable_value_labels=value_labels)


def write_exports(folder: Path, n: int = 120) -> tuple[Truth, dict[str, Path]]:
    """Write every export into ``folder``; return the truth and ``{name: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    t = truth(n)
    files = {
        "qualtrics_values": folder / "qualtrics_values.csv",
        "qualtrics_text": folder / "qualtrics_text.csv",
        "qualtrics_tsv": folder / "qualtrics.tsv",
        "qualtrics_xlsx": folder / "qualtrics.xlsx",
        "surveymonkey": folder / "surveymonkey.csv",
        "surveymonkey_xlsx": folder / "surveymonkey.xlsx",
        "spss": folder / "qualtrics.sav",
    }
    values = qualtrics_rows(t, text=False)
    files["qualtrics_values"].write_bytes(b"\xef\xbb\xbf" + _csv_text(values).encode("utf-8"))
    files["qualtrics_text"].write_bytes(b"\xef\xbb\xbf" + _csv_text(qualtrics_rows(t, text=True)).encode("utf-8"))
    files["qualtrics_tsv"].write_bytes(_csv_text(values, "\t").encode("utf-16"))
    _xlsx(values, files["qualtrics_xlsx"])
    sm = surveymonkey_rows(t)
    files["surveymonkey"].write_bytes(_csv_text(sm).encode("utf-8"))
    _xlsx(sm, files["surveymonkey_xlsx"])
    _spss(t, files["spss"])
    return t, files


if __name__ == "__main__":
    t, files = write_exports(Path(sys.argv[1] if len(sys.argv) > 1 else "exports"))
    for name, p in files.items():
        print(f"{name}: {p}")
