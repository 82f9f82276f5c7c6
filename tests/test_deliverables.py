"""The report's deliverables for leadership: report.xlsx (openpyxl) and report.pptx (python-pptx),
read back, and the deck rendered by headless LibreOffice to check that nothing runs off a slide."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from latentseg.deliver.artifacts import load_model
from latentseg.deliver.briefing import round_to_interval
from latentseg.deliver.deck import MARGIN, SLIDE_HEIGHT, SLIDE_WIDTH
from latentseg.deliver.report import write_report
from latentseg.pipeline import run_pipeline

pytestmark = pytest.mark.xdist_group("deliverables")

EVIL_NAME = '=HYPERLINK("http://evil") Overwhelmed coordinators of very large programmes'
#: Realistic outcome statements (80-100 characters): the layout has to fit them.
LONG = ["Minimize the time it takes to determine which tasks are blocking the critical path of the whole project",
        "Minimize the likelihood that a stakeholder learns about a schedule slip from someone outside the team",
        "Increase the ability to see, at a glance, how much of each team member's capacity is already committed"]
SHEETS = ["Segment map", "Sizes", "Opportunity", "Overlays", "Overlay tests", "Selection", "About"]
SLIDES = ["Segment map", "Segments on two dimensions", "Opportunity by segment and outcome", "Segment sizes", "Recommendation"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A five-segment model with long statements, a TAM, ARPU and a formula as a segment name,
    reported once (the report writes the workbook and the deck beside the HTML)."""
    from latentseg.research.simulate import simulate_survey

    root = tmp_path_factory.mktemp("deliverables")
    survey, _ = simulate_survey(n=300, n_outcomes=12, n_segments=5, job_steps=3, separation=1.8, random_seed=4)
    survey.to_frame().to_csv(root / "survey.csv", index=False)
    cfg = {
        "survey": {"imp_scale": "1-5", "sat_scale": "1-10",
                   "outcomes": {f"o{i:02d}": {"statement": f"{LONG[i % 3]} (variant {i})"} for i in range(1, 13)}},
        "select": {"models": ["gmm"], "k_min": 5, "k_max": 5, "stability_subsamples": 0},
        "model": {"n_init": 2, "covariance": "EEI", "random_seed": 3},
        "profile": {"names": {"1": EVIL_NAME}},
        "size": {"tam": 1234567, "arpu_column": "plan_price"},
        "cleaning": {"min_respondents": 50},
    }
    res = run_pipeline(root / "survey.csv", cfg, models_dir=root / "models", report=False)
    saved = load_model(res.model_dir)
    html = write_report(saved, root / "out" / "report.html")
    return saved, html


def _segments(saved):
    return sorted(saved.meta["segment_map"]["segments"], key=lambda s: s["id"])


def _sig_figs(x: float) -> int:
    """Significant figures written (trailing zeros of a whole number not counted: 400000 -> 1)."""
    digits = f"{abs(x):.15g}".replace(".", "").lstrip("0").rstrip("0")
    return max(len(digits), 1)


def _workbook(html):
    openpyxl = pytest.importorskip("openpyxl")
    return openpyxl.load_workbook(html.with_suffix(".xlsx"))


def _rows(ws):
    head = [c.value for c in ws[1]]
    return head, [dict(zip(head, row, strict=True)) for row in ws.iter_rows(min_row=2, values_only=True)]


# ------------------------------------------------------------------------------ rounding
def test_round_to_interval_keeps_two_to_three_significant_figures():
    # half-width 342 -> hundreds: 2 figures; half-width 5 -> the third figure; no interval: 3 figures
    assert round_to_interval(2275.0, 1937.4, 2621.1) == (2300.0, 1900.0, 2600.0)
    assert round_to_interval(1234567.0, 1230000.0, 1239000.0) == (1230000.0, 1230000.0, 1240000.0)
    assert round_to_interval(0.0123456)[0] == 0.0123
    assert round_to_interval(-4567.0, -5000.0, -4000.0) == (-4600.0, -5000.0, -4000.0)
    v, lo, hi = round_to_interval(float("nan"), 1.0, 2.0)
    assert math.isnan(v) and (lo, hi) == (1.0, 2.0)


# ------------------------------------------------------------------------------ workbook
def test_report_writes_the_workbook_and_the_deck_beside_the_html(made):
    _, html = made
    assert html.with_suffix(".xlsx").is_file() and html.with_suffix(".pptx").is_file()
    assert "not written" not in html.read_text()  # no library was missing


def test_workbook_sheets_headers_and_frozen_panes(made):
    _, html = made
    wb = _workbook(html)
    assert wb.sheetnames == SHEETS
    for ws in wb.worksheets:
        head = [c.value for c in ws[1]]
        assert all(isinstance(h, str) and h for h in head), ws.title
        # headers in words, never raw field names such as share_lower
        assert not [h for h in head if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)], (ws.title, head)
        assert ws.freeze_panes in ("A2", "B2", "C2"), ws.title
        cells = [c for row in ws.iter_rows() for c in row]
        assert not any(c.data_type == "f" for c in cells), ws.title  # no formula anywhere
        # numbers are stored as numbers, never as text that looks like one
        assert not [c.value for c in cells if isinstance(c.value, str) and re.fullmatch(r"[-+]?\d[\d,]*(\.\d+)?%?", c.value)], ws.title
    assert wb["Segment map"].freeze_panes == "C2"  # segment number and name stay in view
    assert wb["About"].freeze_panes == "A2"


def test_workbook_segment_map_and_sizes_equal_the_decided_tables(made):
    saved, html = made
    wb = _workbook(html)
    segs = _segments(saved)
    head, rows = _rows(wb["Segment map"])
    assert [r["Segment"] for r in rows] == [s["id"] for s in segs]
    assert [r["Name"] for r in rows] == list(saved.result.segment_labels)
    assert [r["Recommendation"] for r in rows] == [s["recommendation"] for s in segs]
    ws = wb["Segment map"]
    col = {h: i + 1 for i, h in enumerate(head)}
    for i, (r, s) in enumerate(zip(rows, segs, strict=True), start=2):
        for h, key in (("Share", "share"), ("Share lower bound", "share_lower"), ("Share upper bound", "share_upper")):
            cell = ws.cell(row=i, column=col[h])
            assert cell.data_type == "n" and cell.number_format == "0%"
            assert abs(cell.value - s[key]) <= 0.005 + 1e-12  # whole percent
        for h, key in (("Customers", "count"), ("Customers lower bound", "count_lower"), ("Customers upper bound", "count_upper")):
            cell = ws.cell(row=i, column=col[h])
            assert cell.data_type == "n" and cell.number_format == "#,##0"
            assert _sig_figs(cell.value) <= 3, cell.value  # market counts to 2-3 significant figures
            unit = 10.0 ** (math.floor(math.log10(abs(s["count"]))) - 1)  # rounding at 2 figures at most
            assert abs(cell.value - s[key]) <= unit / 2 + 1e-9
        statements = [o["statement"] for o in s["top_underserved"]]
        assert r["Top underserved outcomes"].split("\n") == statements
    # the formula in a segment name is stored as text, with Excel's quote prefix
    evil = ws.cell(row=2, column=col["Name"])
    assert evil.value == EVIL_NAME and evil.data_type == "s" and evil.quotePrefix
    # sizes: revenue rounded within its interval, numbers stored as numbers
    head, rows = _rows(wb["Sizes"])
    sizing = saved.tables["sizing"]
    assert "Revenue lower bound" in head and "Interval" in head
    for r in rows:
        want = sizing.loc[r["Segment"]]
        for h, key in (("Revenue", "revenue"), ("Revenue per customer", "arpu"), ("Customers", "count")):
            assert isinstance(r[h], (int, float)) and _sig_figs(r[h]) <= 3
            assert abs(r[h] - want[key]) <= 10.0 ** (math.floor(math.log10(abs(want[key]))) - 1) / 2 + 1e-9
            assert want[f"{key}_lower"] - abs(want[key]) * 0.05 <= r[h] <= want[f"{key}_upper"] + abs(want[key]) * 0.05


def test_workbook_opportunity_overlays_and_selection(made):
    saved, html = made
    wb = _workbook(html)
    means = saved.tables["profile_means"]
    head, rows = _rows(wb["Opportunity"])
    seg_heads = [h for h in head if re.match(r"\d+: ", str(h))]
    assert len(seg_heads) == saved.result.k and "All respondents" in head
    assert [r["Outcome"] for r in rows] == list(means.columns)
    got = np.array([[r[h] for h in seg_heads] for r in rows])
    np.testing.assert_allclose(got, means.to_numpy().T, atol=0.05 + 1e-9)  # one decimal
    ws = wb["Opportunity"]
    cell = ws.cell(row=2, column=head.index(seg_heads[0]) + 1)
    assert cell.number_format == "0.0"
    underserved = [c for row in ws.iter_rows(min_row=2) for c in row if isinstance(c.value, float) and c.value >= 10]
    assert underserved and all(c.font.b for c in underserved)  # shaded and bold, as in the report's heatmap
    # overlays: each profile column's values add up to 100% within a segment (each cell rounded to 1%)
    head, rows = _rows(wb["Overlays"])
    for column in {r["Profile column"] for r in rows}:
        part = [r for r in rows if r["Profile column"] == column]
        for h in head[2:]:
            assert abs(sum(r[h] for r in part) - 1) <= 0.005 * len(part) + 1e-9, (column, h)
    assert wb["Overlays"].cell(row=2, column=3).number_format == "0%"
    head, rows = _rows(wb["Overlay tests"])
    assert "p-value" in head and "Effect size" in head
    # selection: the criteria equal the saved table's, the chosen fit marked
    head, rows = _rows(wb["Selection"])
    sel = saved.tables["selection"]
    assert [r["BIC (lower is better)"] for r in rows] == pytest.approx(sel["bic"].round(1).tolist())
    assert [(r["Model"], r["Segments"]) for r in rows if r["Chosen"] == "yes"] == [("gmm", 5)]


# ------------------------------------------------------------------------------ deck
def _deck(html):
    pptx = pytest.importorskip("pptx")
    return pptx.Presentation(str(html.with_suffix(".pptx")))


def _title(slide) -> str:
    return slide.shapes[0].text_frame.text


def test_deck_slides_tables_and_editable_text(made):
    saved, html = made
    prs = _deck(html)
    titles = [_title(s) for s in prs.slides]
    assert titles[0] == saved.meta["report"]["title"]
    # five segments with long statements go over two segment-map slides; the rest in order
    assert [t for t in titles[1:] if t != "Segment map (continued)"] == SLIDES
    smap_slides = [s for s in prs.slides if _title(s).startswith("Segment map")]
    cells = []
    for slide in smap_slides:
        tables = [sh for sh in slide.shapes if sh.has_table]
        assert len(tables) == 1 and not any(sh.shape_type == 13 for sh in slide.shapes)  # a native table, no picture
        table = tables[0].table
        assert [table.cell(0, j).text for j in range(len(table.columns))][:2] == ["Segment", "Size"]
        cells += [[table.cell(i, j).text for j in range(len(table.columns))] for i in range(1, len(table.rows))]
    wb_head, wb_rows = _rows(_workbook(html)["Segment map"])
    segs = _segments(saved)
    assert [c[0].split("\n")[0] for c in cells] == list(saved.result.segment_labels)
    for c, r, s in zip(cells, wb_rows, segs, strict=True):
        # the deck shows the workbook's numbers (one source): share, its interval, the customers
        assert c[1].startswith(f"{r['Share']:.0%} ({r['Share lower bound']:.0%}–{r['Share upper bound']:.0%})")
        assert f"{r['Customers']:,.0f}" in c[1]
        assert c[2].split("\n")[0] == f"• {s['top_underserved'][0]['statement']}"
        assert c[-1].split("\n")[0] == s["recommendation"].capitalize()
    # text is editable text: every shape with words is a text frame or a table, never an image of text
    for slide in prs.slides:
        for sh in slide.shapes:
            assert sh.has_text_frame or sh.has_table or sh.shape_type == 13
    rec = next(s for s in prs.slides if _title(s) == "Recommendation")
    body = "\n".join(sh.text_frame.text for sh in rec.shapes if sh.has_text_frame)
    assert all(name in body for name in saved.result.segment_labels)


def test_every_shape_lies_inside_the_slide_margins(made):
    _, html = made
    prs = _deck(html)
    emu = 914400
    assert (prs.slide_width / emu, prs.slide_height / emu) == pytest.approx((SLIDE_WIDTH, SLIDE_HEIGHT), abs=1e-3)
    for n, slide in enumerate(prs.slides, start=1):
        for sh in slide.shapes:
            box = (sh.left / emu, sh.top / emu, (sh.left + sh.width) / emu, (sh.top + sh.height) / emu)
            assert box[0] >= MARGIN - 1e-3 and box[1] >= 0.25 - 1e-3, (n, sh.name, box)
            assert box[2] <= SLIDE_WIDTH - MARGIN + 1e-3 and box[3] <= SLIDE_HEIGHT - MARGIN + 1e-3, (n, sh.name, box)


def _pictures(path: Path) -> list[np.ndarray]:
    """Every picture of a deck, in slide order, as a grey-level array in 0..1."""
    import io

    from PIL import Image
    from pptx import Presentation

    return [np.asarray(Image.open(io.BytesIO(sh.image.blob)).convert("L"), dtype=float) / 255
            for slide in Presentation(str(path)).slides for sh in slide.shapes if sh.shape_type == 13]


def test_the_deck_places_the_reports_figures_instead_of_drawing_them_again(made, tmp_path, monkeypatch):
    pytest.importorskip("pptx")
    from latentseg.deliver import plots
    from latentseg.deliver.deck import write_deck

    saved, _ = made
    fresh = write_deck(saved, tmp_path / "fresh.pptx")  # no figures given: the deck draws its own
    calls: dict[str, int] = {}
    for name in ("plot_segment_map", "plot_opportunity_heatmap", "plot_shares"):
        def counted(*a, _f=getattr(plots, name), _name=name, **k):
            calls[_name] = calls.get(_name, 0) + 1
            return _f(*a, **k)
        monkeypatch.setattr(plots, name, counted)
    from latentseg.deliver import rendering

    monkeypatch.setattr(rendering, "default_workers", lambda: 1)  # every figure drawn here, where it is counted
    html = write_report(saved, tmp_path / "out" / "report.html")
    # each of the deck's three figures is drawn once, for the HTML, and placed in the deck too
    assert calls == {"plot_segment_map": 1, "plot_opportunity_heatmap": 1, "plot_shares": 1}
    reused, drawn = _pictures(html.with_suffix(".pptx")), _pictures(fresh)
    assert len(reused) == len(drawn) == 3
    for a, b in zip(reused, drawn, strict=True):
        # the same picture: the layout was solved at the report's 110 dpi instead of the deck's 200,
        # which moves an edge by a pixel or two. On 20 x 20 pixel blocks the mean grey-level
        # difference is 0.001 / 0.022 / 0.004 (2x2, heatmap, shares), against 0.043 / 0.151 /
        # 0.071 for the picture beside a copy of itself shifted by a tenth of its width (a picture
        # that shows something else): ratios 0.02 / 0.15 / 0.05, threshold 0.25
        assert a.shape == b.shape
        diff, control = _blocky(a, b), _blocky(a, np.roll(a, a.shape[1] // 10, axis=1))
        assert diff < control / 4


def _blocky(a: np.ndarray, b: np.ndarray, size: int = 20) -> float:
    """Mean absolute difference of two same-shape grey images averaged over ``size`` x ``size`` blocks."""
    h, w = (a.shape[0] // size) * size, (a.shape[1] // size) * size

    def blocks(x: np.ndarray) -> np.ndarray:
        return x[:h, :w].reshape(h // size, size, w // size, size).mean(axis=(1, 3))

    return float(np.abs(blocks(a) - blocks(b)).mean())


# ------------------------------------------------------------------------------ rendering
def _tools() -> tuple[str, str, str]:
    found = [shutil.which(x) for x in ("soffice", "pdftoppm", "pdftotext")]
    if not all(found):
        msg = "LibreOffice and poppler are not installed (Debian: apt-get install libreoffice-impress poppler-utils)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; .ci/run installs them")
        pytest.skip(msg)
    return found[0], found[1], found[2]  # type: ignore[return-value]


class _Words(HTMLParser):
    """Pages (width, height in points) and their words with boxes from ``pdftotext -bbox``."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[dict] = []
        self._word: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "page":
            self.pages.append({"size": (float(a["width"]), float(a["height"])), "words": []})
        elif tag == "word":
            self._word = {k: float(a[k]) for k in ("xmin", "ymin", "xmax", "ymax")}

    def handle_data(self, data):
        if self._word is not None:
            self._word["text"] = data
            self.pages[-1]["words"].append(self._word)
            self._word = None


def _overruns(pptx_path: Path, pdf: Path, pdftotext: str, pdftoppm: str) -> list[str]:
    """Everything rendered outside where the deck put it: a word outside the slide's margins or
    outside every shape's box, or ink in the blank band along a slide's edges."""
    from PIL import Image
    from pptx import Presentation

    prs = Presentation(str(pptx_path))
    parser = _Words()
    parser.feed(subprocess.run([pdftotext, "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout)
    problems = []
    if len(parser.pages) != len(prs.slides):
        problems.append(f"{len(parser.pages)} pages rendered for {len(prs.slides)} slides")
    prefix = pdf.with_suffix("")
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(prefix)], check=True, capture_output=True)
    pngs = sorted(pdf.parent.glob(f"{prefix.name}-*.png"))
    tol = 0.06  # inches: glyph boxes reach a little past the text frame's inner edge
    for n, (slide, page, png) in enumerate(zip(prs.slides, parser.pages, pngs, strict=False), start=1):
        w_pt, h_pt = page["size"]
        scale = SLIDE_WIDTH / w_pt  # inches per point
        boxes = [(s.left / 914400, s.top / 914400, (s.left + s.width) / 914400, (s.top + s.height) / 914400) for s in slide.shapes]
        for wd in page["words"]:
            x0, y0, x1, y1 = (wd[k] * scale for k in ("xmin", "ymin", "xmax", "ymax"))
            if x0 < MARGIN - tol or y0 < 0.25 - tol or x1 > SLIDE_WIDTH - MARGIN + tol or y1 > SLIDE_HEIGHT - MARGIN + tol:
                problems.append(f"slide {n}: {wd['text']!r} at ({x0:.2f}, {y0:.2f})-({x1:.2f}, {y1:.2f}) in is outside the margins")
            elif not any(b[0] - tol <= x0 and b[1] - tol <= y0 and x1 <= b[2] + tol and y1 <= b[3] + tol for b in boxes):
                problems.append(f"slide {n}: {wd['text']!r} at ({x0:.2f}, {y0:.2f}) in runs out of its box")
        with Image.open(png) as im:
            grey = np.asarray(im.convert("L"), dtype=float)
        band = max(int(round(grey.shape[0] * 0.2 / SLIDE_HEIGHT)), 1)  # 0.2 in along each edge
        edges = np.concatenate([grey[:band].ravel(), grey[-band:].ravel(), grey[:, :band].ravel(), grey[:, -band:].ravel()])
        if (edges < 200).any():
            problems.append(f"slide {n}: {int((edges < 200).sum())} dark pixels within 0.2 in of the edge")
    return problems


def _long_table_deck(path: Path) -> Path:
    """Thirty rows of long text: a table that needs continuation slides."""
    from pptx import Presentation

    from latentseg.deliver import deck

    prs = Presentation()
    prs.slide_width, prs.slide_height = deck._inches(SLIDE_WIDTH), deck._inches(SLIDE_HEIGHT)
    header = [[deck._Para(h, True)] for h in ("Segment", "Top underserved outcomes", "Recommendation")]
    rows = [[[deck._Para(f"Segment {i} with a rather long name", True)], [deck._Para(f"• {LONG[i % 3]}"), deck._Para(f"• {LONG[(i + 1) % 3]}")],
             [deck._Para("Deprioritize")]] for i in range(30)]
    slides = deck._table_slides(prs, "Segment map", header, rows, [0.25, 0.55, 0.2])
    assert len(slides) > 1 and len(prs.slides) == len(slides)
    prs.save(str(path))
    return path


def test_a_long_table_goes_on_over_continuation_slides_inside_the_margins(tmp_path):
    pptx = pytest.importorskip("pptx")
    prs = pptx.Presentation(str(_long_table_deck(tmp_path / "long.pptx")))
    titles = [_title(s) for s in prs.slides]
    assert titles[0] == "Segment map" and set(titles[1:]) == {"Segment map (continued)"}
    rows = 0
    for slide in prs.slides:
        table = next(sh for sh in slide.shapes if sh.has_table)
        assert (table.top + table.height) / 914400 <= SLIDE_HEIGHT - MARGIN + 1e-3
        rows += len(table.table.rows) - 1  # each slide repeats the header
    assert rows == 30


def test_a_row_taller_than_a_slide_is_cut_to_fit(tmp_path):
    pytest.importorskip("pptx")
    from pptx import Presentation

    from latentseg.deliver import deck

    prs = Presentation()
    header = [[deck._Para("Segment", True)], [deck._Para("Outcomes", True)]]
    rows = [[[deck._Para("A name " * 1500)], [deck._Para("short")]], [[deck._Para("B")], [deck._Para("short")]]]
    slides = deck._table_slides(prs, "Segment map", header, rows, [0.5, 0.5])
    assert len(slides) == 2
    for slide in slides:
        table = next(sh for sh in slide.shapes if sh.has_table)
        assert (table.top + table.height) / 914400 <= SLIDE_HEIGHT - MARGIN + 1e-3
    first = next(sh for sh in slides[0].shapes if sh.has_table).table.cell(1, 0).text
    assert first.endswith(" …") and len(first) < len("A name " * 1500)


def _overflowing_deck(path: Path) -> Path:
    """A negative control: a text box too small for its text, as a naive writer makes it."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(SLIDE_WIDTH), Inches(SLIDE_HEIGHT)
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    tf = slide.shapes.add_textbox(Inches(1), Inches(5.5), Inches(6), Inches(1)).text_frame
    tf.word_wrap = True
    for i in range(12):
        para = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
        para.text = f"{LONG[i % 3]} (line {i})"
        para.runs[0].font.size = Pt(16)
    prs.save(str(path))
    return path


@pytest.mark.slow
def test_the_deck_renders_in_libreoffice_with_nothing_off_a_slide(made, tmp_path):
    soffice, pdftoppm, pdftotext = _tools()
    _, html = made
    deck = shutil.copy(html.with_suffix(".pptx"), tmp_path / "deck.pptx")
    control = _overflowing_deck(tmp_path / "control.pptx")
    long = _long_table_deck(tmp_path / "long.pptx")
    # a private LibreOffice profile: parallel runs (xdist, other users) never share one
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(deck), str(control), str(long)], check=True, capture_output=True, timeout=180)
    assert _overruns(Path(deck), tmp_path / "deck.pdf", pdftotext, pdftoppm) == []
    assert _overruns(long, tmp_path / "long.pdf", pdftotext, pdftoppm) == []
    # every word of the segment-map tables was drawn (nothing cut off and lost)
    parser = _Words()
    parser.feed(subprocess.run([pdftotext, "-bbox", str(tmp_path / "deck.pdf"), "-"], capture_output=True, text=True).stdout)
    prs = _deck(html)
    pages = [i for i, slide in enumerate(prs.slides) if _title(slide).startswith("Segment map")]
    drawn = " ".join(w["text"] for i in pages for w in parser.pages[i]["words"])
    for i in pages:
        table = next(sh for sh in list(prs.slides)[i].shapes if sh.has_table).table
        for row in table.rows:
            for cell in row.cells:
                for word in cell.text.split():
                    assert word in drawn, word
    # the check is not blind: the control's overflowing text is caught
    caught = _overruns(control, tmp_path / "control.pdf", pdftotext, pdftoppm)
    assert any("outside the margins" in p for p in caught) and any("dark pixels" in p for p in caught), caught


# ------------------------------------------------------------------------------ a bare model, the CLI
@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A model saved by ``fit --save`` style: no segment map, no sizing, no selection."""
    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit

    root = tmp_path_factory.mktemp("bare")
    X = np.r_[np.zeros((30, 2)), np.full((30, 2), 5.0)] + np.random.default_rng(1).normal(size=(60, 2))
    save_model(root / "bare", fit(X, "gmm", 2, random_seed=0, n_init=2))
    return root


def test_a_bare_model_gets_what_it_has(bare, tmp_path):
    """`latentseg report` on a model with no decisions: the files it can make, listed in its JSON."""
    import json

    from typer.testing import CliRunner

    from latentseg.cli.app import app

    res = CliRunner().invoke(app, ["report", str(bare / "bare"), "-o", str(tmp_path / "r.html"), "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert {"r.xlsx", "r.pptx"} <= set(json.loads(res.stdout)["files"])
    assert _workbook(tmp_path / "r.html").sheetnames == ["About"]
    prs = _deck(tmp_path / "r.html")
    # no segment map, no dimensions: title, the heatmap of the centers, the sizes
    assert [_title(s) for s in prs.slides][1:] == ["Opportunity by segment and outcome", "Segment sizes"]


def test_report_command_refuses_a_workbook_over_its_input(bare, tmp_path):
    """The workbook and the deck are outputs of `latentseg report` like the HTML: one that would
    land on an input (here the model's survey) is refused before any work."""
    import json

    from typer.testing import CliRunner

    from latentseg.cli.app import app

    model = bare / "bare"
    survey = tmp_path / "rep" / "index.xlsx"
    survey.parent.mkdir()
    survey.write_bytes(b"the survey")
    doc = json.loads((model / "model.json").read_text())
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    doc["data"] = {"abs_path": str(survey)}
    (copy / "model.json").write_text(json.dumps(doc))  # load_model would refuse it; the path check runs first
    res = CliRunner().invoke(app, ["report", str(copy), "-o", str(tmp_path / "rep" / "index.html")])
    assert res.exit_code == 1, res.output
    assert "the report's workbook" in res.output and "index.xlsx" in res.output, res.output
    assert survey.read_bytes() == b"the survey"


def test_a_missing_library_skips_its_file_with_a_note(bare, tmp_path, monkeypatch):
    import sys

    from latentseg.deliver.briefing import write_deliverables

    monkeypatch.setitem(sys.modules, "pptx", None)  # python-pptx not installed
    written, notes = write_deliverables(bare / "bare", tmp_path / "r.html")
    assert [p.name for p in written] == ["r.xlsx"] and not (tmp_path / "r.pptx").exists()
    assert notes == ["report.pptx not written: python-pptx is not installed (pip install 'openpyxl>=3.1' 'python-pptx>=1.0.2')"]


def test_the_two_files_can_be_written_one_at_a_time(bare, tmp_path):
    """The HTML report writes the workbook while its figures render and the deck after: each call
    writes only the part it names; without ``parts`` both are written."""
    pytest.importorskip("pptx")
    from latentseg.deliver.briefing import write_deliverables

    written, notes = write_deliverables(bare / "bare", tmp_path / "one" / "r.html", parts=("workbook",))
    assert [p.name for p in written] == ["r.xlsx"] and not notes
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["r.xlsx"]
    written, _ = write_deliverables(bare / "bare", tmp_path / "one" / "r.html", parts=("deck",))
    assert [p.name for p in written] == ["r.pptx"]
    both, _ = write_deliverables(bare / "bare", tmp_path / "both" / "r.html")
    assert [p.name for p in both] == ["r.xlsx", "r.pptx"]
    with pytest.raises(ValueError, match="'workbook' and/or 'deck'"):
        write_deliverables(bare / "bare", tmp_path / "r.html", parts=("slides",))
