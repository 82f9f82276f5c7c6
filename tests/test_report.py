"""The HTML report: self-contained, escaped, opened in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from latentseg.deliver.artifacts import load_model
from latentseg.pipeline import run_pipeline
from latentseg.deliver.report import write_report

pytestmark = pytest.mark.xdist_group("report")

EVIL_STATEMENT = "<script>document.title='PWNED'</script>Minimize the time & cost of <b>planning</b>"
EVIL_NAME = "=HYPERLINK(\"http://evil\") <img src=x onerror=\"document.title='PWNED2'\">"
EVIL_COLUMN = "region <u>of</u> \"HQ\""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from latentseg.research.simulate import simulate_survey

    root = tmp_path_factory.mktemp("report")
    survey, _ = simulate_survey(n=200, n_outcomes=9, n_segments=3, job_steps=3, separation=1.6, random_seed=8)
    survey.to_frame().rename(columns={"region": EVIL_COLUMN}).to_csv(root / "survey.csv", index=False)
    cfg = {
        "survey": {"imp_scale": "1-5", "sat_scale": "1-10", "outcomes": {"o01": {"statement": EVIL_STATEMENT}}},
        "select": {"models": ["kmeans", "gmm"], "k_min": 2, "k_max": 4, "stability_subsamples": 0},
        "model": {"n_init": 2, "covariance": "EEI", "random_seed": 3},
        "profile": {"names": {"1": EVIL_NAME}},
        "size": {"tam": 5000, "arpu_column": "plan_price"},
        "cleaning": {"min_respondents": 50},
    }
    res = run_pipeline(root / "survey.csv", cfg, models_dir=root / "models", report=False)
    html = write_report(load_model(res.model_dir), root / "out" / "report.html")
    return html, res


def test_report_files_are_written_beside_it(report):
    html, res = report
    out = html.parent
    figures = sorted(p.name for p in (out / "figures").iterdir())
    for name in ("segments_2x2.png", "segments_2x2.svg", "opportunity_heatmap.png", "opportunity_heatmap.svg",
                 "share_intervals.png", "selection_bic.png", "selection_elbow.png", "comparison.png",
                 "opportunity_landscape.png", "overlay_01.png"):
        assert name in figures, name
    tables = sorted(p.name for p in (out / "tables").iterdir())
    for name in ("segment_map.csv", "segment_map.json", "selection.csv", "sizing.csv", "profile_means.csv",
                 "cleaning_excluded.csv", "model_summary.json"):
        assert name in tables, name
    csv_text = (out / "tables" / "segment_map.csv").read_text()
    assert "'=HYPERLINK" in csv_text  # formula neutralised
    frame = pd.read_csv(out / "tables" / "segment_map.csv")
    assert all(not str(v).startswith(("=", "+", "@")) for v in frame.astype(str).to_numpy().ravel())


def test_report_is_self_contained_and_escaped(report):
    html, _ = report
    text = html.read_text()
    # offline: no resource is fetched from anywhere (figures are data: URIs, CSS inline)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "@import" not in text and "url(http" not in text
    assert "default-src 'none'" in text
    assert text.count('src="data:image/png;base64,') >= 10
    # user text is escaped, never markup
    assert "<script>document.title" not in text
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in text
    assert "<img src=x" not in text and "&lt;img src=x onerror=" in text
    assert "<u>of</u>" not in text
    assert text.count("<script") == 1  # only our own error probe


class _Dom(HTMLParser):
    """Collects what the checks need from Chromium's dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.body: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.rows = 0
        self.figures: list[str] = []
        self.images = 0
        self.text: list[str] = []
        self._in_title = False
        self._in_seg_table = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "body":
            self.body = a
        elif tag == "pre" and a.get("id") == "js-errors":
            self.errors = a
        elif tag == "table" and a.get("id") == "segment-table":
            self._in_seg_table = True
        elif tag == "tr" and self._in_seg_table and "data-segment" in a:
            self.rows += 1
        elif tag == "figure" and "data-figure" in a:
            self.figures.append(a["data-figure"])
        elif tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.images += 1
        elif tag == "img":
            raise AssertionError(f"unexpected <img> in the DOM: {a}")  # an injected image would land here

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "table":
            self._in_seg_table = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the report's browser test needs it")
    return exe


def _run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(report, tmp_path):
    exe = _chromium()
    html, res = report
    url = html.resolve().as_uri()
    dumped = _run_chromium(exe, tmp_path / "p1", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
                           "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no console errors, no CSP violations
    dom = _Dom()
    dom.feed(dumped.stdout)
    assert dom.body.get("data-ready") == "1"  # our (CSP-hashed) script ran ...
    assert dom.errors.get("data-count") == "0"  # ... and recorded no JavaScript error
    assert "PWNED" not in dom.title  # the planted scripts did not run
    assert dom.rows == res.k  # the segment table, one row per segment
    for key in ("segments_2x2", "opportunity_heatmap", "share_intervals", "selection_bic", "comparison",
                "opportunity_landscape", "overlay_01"):
        assert key in dom.figures, key
    assert dom.images == len(dom.figures)  # every figure has its embedded image
    text = "".join(dom.text)
    assert EVIL_STATEMENT in text  # shown as text
    assert EVIL_NAME in text and EVIL_COLUMN in text

    shot = tmp_path / "shot.png"
    snap = _run_chromium(exe, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


#: Screenshots of the report at each width are kept here (gitignored) for people to look at.
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "report"


class _DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (the browser reads
    commands on fd 3 and writes replies on fd 4, each a JSON object ended by NUL). Headless
    Chromium will not open a window narrower than 500 px, so a phone's 390 px comes from
    ``Emulation.setDeviceMetricsOverride``, which needs the protocol."""

    def __init__(self, exe: str, profile: Path) -> None:
        import fcntl
        import os

        to_chrome, from_chrome = os.pipe(), os.pipe()
        theirs = (to_chrome[0], from_chrome[1])

        def fds_3_and_4() -> None:  # in the child, before exec: our pipe ends become fds 3 and 4
            a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in theirs)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=fds_3_and_4)
        for fd in theirs:
            os.close(fd)
        self._out, self._in = to_chrome[1], from_chrome[0]
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self, timeout: float = 90.0) -> dict:
        import json
        import os
        import select

        while b"\0" not in self._buf:
            if not select.select([self._in], [], [], timeout)[0]:  # a hung browser fails the test, never stalls it
                raise RuntimeError(f"Chromium sent nothing on the DevTools pipe for {timeout:.0f} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        import json
        import os

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        for i, m in enumerate(self.events):
            if m.get("method") == event:
                return self.events.pop(i)
        while True:
            m = self._read()
            if m.get("method") == event:
                return m
            self.events.append(m)

    def close(self) -> None:
        import os

        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)


def _open_at_width(exe: str, profile: Path, url: str, width: int) -> tuple[dict, bytes]:
    """The page at ``width`` CSS px: its laid-out widths (as the page's own script recorded them on
    load, and as measured now) and a full-page PNG screenshot."""
    import base64
    import json

    browser = _DevTools(exe, profile)
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        s = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.call("Emulation.setDeviceMetricsOverride", s, width=width, height=900, deviceScaleFactor=1,
                     mobile=width < 600)
        browser.call("Page.enable", s)
        browser.call("Page.navigate", s, url=url)
        browser.wait_for("Page.loadEventFired")
        expr = ("JSON.stringify({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
                " client: document.documentElement.clientWidth, height: document.documentElement.scrollHeight,"
                " recorded: [document.body.dataset.scrollWidth, document.body.dataset.innerWidth],"
                " errors: document.getElementById('js-errors').dataset.count,"
                " wider: Array.from(document.querySelectorAll('main *')).filter(function(e){"
                "   var r = e.getBoundingClientRect(); return r.right > document.documentElement.clientWidth + 1"
                "   && !e.closest('.scroll');}).slice(0, 5).map(function(e){return e.tagName + '.' + e.className;})})")
        info = json.loads(browser.call("Runtime.evaluate", s, expression=expr, returnByValue=True)["result"]["value"])
        shot = browser.call("Page.captureScreenshot", s, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": width, "height": min(info["height"], 16000), "scale": 1})
        return info, base64.b64decode(shot["data"])
    finally:
        browser.close()


@pytest.mark.parametrize("width", [1400, 390])
def test_report_has_no_horizontal_overflow_on_a_desktop_or_a_phone(report, tmp_path, width):
    """Opened in headless Chromium at 1,400 px and at a phone's 390 px: the page is no wider than the
    window (wide tables scroll inside their own box), no element of the page sticks out, no
    JavaScript error. The screenshots are kept in tests/artifacts/report/."""
    exe = _chromium()
    html, _ = report
    info, png = _open_at_width(exe, tmp_path / "profile", html.resolve().as_uri(), width)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"report_{width}px.png").write_bytes(png)
    assert info["inner"] == width and info["errors"] == "0"
    assert info["scroll"] <= info["client"], info  # no horizontal scrolling of the page
    assert info["recorded"] == [str(info["scroll"]), str(width)]  # the page's own probe saw the same
    assert info["wider"] == [], info["wider"]  # nothing sticks out of the page
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000


def test_report_names_both_meanings_of_underserved_and_rounds_counts(report):
    """The issue's contradictions: each "underserved" says which definition it uses, the landscape
    table names the segments in which each outcome is underserved, headers are words, counts are
    rounded to what their interval supports, no p-value in e-notation; at most two targets."""
    html, res = report
    dom = _Dom()
    dom.feed(html.read_text())
    text = " ".join(" ".join(dom.text).split())
    assert text.count("Underserved in a segment") == 2 and text.count("Underserved in the landscape") == 2
    assert "Top underserved outcomes (segment mean ≥ 10)" in text
    assert "Underserved in segments (segment mean ≥ 10)" in text and "Landscape class (all respondents)" in text
    for raw in ("share_lower", "count_upper", "p_value", "n_underserved", "start_logliks"):
        assert raw not in text, raw
    assert not re.search(r"\d\.\d+e[-+]\d", text)  # no 1.083e-90
    assert not re.search(r"-\d+\.\d{5,}", text)  # no log-likelihood to 12 digits
    # market counts: at most 3 significant figures, the interval rounded alike
    counts = re.findall(r"(\d[\d,]*) \((\d[\d,]*)–(\d[\d,]*)\)", text)
    assert counts
    for triple in counts:
        for c in triple:
            digits = c.replace(",", "").rstrip("0")
            assert len(digits) <= 3, triple
    recs = [s["recommendation"] for s in res.saved.meta["segment_map"]["segments"]]
    assert len(recs) == res.k and 1 <= recs.count("target") <= 2
    assert text.count("target") >= recs.count("target") and "Each segment is scored size x unmet need x fit" in text


def test_report_of_a_bare_model_says_what_is_missing(tmp_path):
    import numpy as np

    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit

    X = np.r_[np.zeros((30, 2)), np.full((30, 2), 5.0)] + np.random.default_rng(0).normal(size=(60, 2))
    save_model(tmp_path / "m", fit(X, "gmm", 2, random_seed=0, n_init=2))
    html = write_report(tmp_path / "m", tmp_path / "r" / "report.html")
    text = html.read_text()
    assert "Not in this report: segment map" in text
    assert "k-selection plots (no selection table saved)" in text
    assert 'id="fig-share_intervals"' in text and 'id="fig-opportunity_heatmap"' in text


def test_report_says_when_segment_sizes_are_approximate(tmp_path):
    """A fit flagged for strongly overlapping segments gets a callout beside the sizes; one
    without the flag does not."""
    import dataclasses

    import numpy as np

    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit

    X = np.r_[np.zeros((30, 2)), np.full((30, 2), 5.0)] + np.random.default_rng(0).normal(size=(60, 2))
    plain = fit(X, "gmm", 2, random_seed=0, n_init=2)
    flagged = dataclasses.replace(plain, diagnostics={**plain.diagnostics, "weak_separation": True,
                                                      "em_relative_entropy": 0.512})
    texts = []
    for name, result in (("plain", plain), ("flagged", flagged)):
        save_model(tmp_path / name, result)
        texts.append(write_report(tmp_path / name, tmp_path / name / "r" / "report.html").read_text())
    assert "overlap strongly" not in texts[0]
    assert "overlap strongly (relative entropy 0.51, below 0.6)" in texts[1] and "approximate" in texts[1]
    assert "in our calibration study" not in texts[1]  # the study was of Bayesian Gaussian mixtures


def test_report_quotes_the_calibration_study_by_the_fits_structure(tmp_path):
    """A flagged Bayesian Gaussian fit quotes the calibration study's coverage for its own
    structure: VVI's intervals under-covered (approximate), EEI's did not (memberships are the
    uncertain part)."""
    import dataclasses

    import numpy as np

    from latentseg.deliver.artifacts import save_model
    from latentseg.models import fit
    from latentseg.models.bayes import engine as bayes

    X = np.r_[np.zeros((30, 2)), np.full((30, 2), 5.0)] + np.random.default_rng(0).normal(size=(60, 2))
    plain = fit(X, "gmm", 2, random_seed=0, n_init=2)
    texts = {}
    for name, cov, approx in (("vvi", "diag", True), ("eei", "EEI", False), ("auto-eei", "EEI", True)):
        flagged = dataclasses.replace(
            plain, model="bayes-gmm", settings={**plain.settings, "covariance": cov},
            diagnostics={**plain.diagnostics, "weak_separation": True, "em_relative_entropy": 0.5,
                         "share_intervals_approximate": approx})
        save_model(tmp_path / name, flagged)
        texts[name] = write_report(tmp_path / name, tmp_path / name / "r" / "report.html").read_text()
    vvi, eei = bayes.WEAK_SEPARATION_COVERAGE["diag"], bayes.WEAK_SEPARATION_COVERAGE["EEI"]
    assert "as approximate" in texts["vvi"] and f"covered the true sizes {vvi} of the time rather than 95%" in texts["vvi"]
    assert "as approximate" not in texts["eei"] and "not affected" in texts["eei"]
    assert f"covered the true sizes {eei} of the time" in texts["eei"] and "spreads are equal" in texts["eei"]
    # EEI chosen by BIC at such overlap is not trusted: approximate, and no coverage figure quoted
    assert "as approximate" in texts["auto-eei"] and "in our calibration study" not in texts["auto-eei"]
