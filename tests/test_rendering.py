"""The report's figures rendered on two processes (latentseg.deliver.rendering, latentseg._fork):
the same bytes as on one, and a worker that fails or stalls leaves nothing missing."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import pytest

from latentseg.deliver import rendering
from latentseg.deliver.rendering import FigureJob, render_figures

pytestmark = [
    pytest.mark.xdist_group("report"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked on Linux only"),
]


def _figures(n: int = 4) -> list:
    """Small figures of the report's kinds (text, lines, an image), each drawn afresh."""
    import numpy as np

    from latentseg.deliver._figure import new_figure

    figs = []
    for i in range(n):
        fig = new_figure(3 + i % 2, 2.5)
        ax = fig.add_subplot()
        ax.imshow(np.arange(12.0).reshape(3, 4) * (i + 1), cmap="Blues")
        ax.plot([0, 3], [0, 2], "--")
        ax.set(title=f"figure {i}", xlabel="k (segments)")
        figs.append(fig)
    return figs


def _jobs(out: Path, cls: type = FigureJob) -> list[FigureJob]:
    out.mkdir(parents=True, exist_ok=True)
    return [cls(fig, (out / f"f{i}.png", out / f"f{i}.svg"), png_dpi=60 if i % 2 == 0 else None)
            for i, fig in enumerate(_figures())]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture
def forks(monkeypatch):
    """Counts the forks made (a test of the two-process path must not pass on the serial one)."""
    made: list[int] = []
    real = os.fork

    def counted():
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted)
    return made


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: every job rendered here, one after the other."""
    out = tmp_path_factory.mktemp("serial")
    jobs = _jobs(out)
    render_figures(jobs, workers=1)
    return _files(out), [j.png for j in jobs]


def test_two_processes_write_the_same_bytes_as_one(serial, tmp_path, forks):
    jobs = _jobs(tmp_path)
    render_figures(jobs, workers=2)
    assert len(forks) == 1
    files, pngs = serial
    assert _files(tmp_path) == files
    assert [j.png for j in jobs] == pngs
    assert pngs[0][:4] == b"\x89PNG" and pngs[1] is None  # the in-memory picture only where asked for


def test_figures_drawn_by_whichever_process_renders_them_give_the_same_bytes(serial, tmp_path, forks):
    """Jobs queued as a way to draw the figure (the report's) are drawn by the process that renders
    them: the same files as figures drawn beforehand and rendered on one process."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    parent = os.getpid()
    drawn_in: list[int] = []

    def drawer(i: int):
        def draw():
            drawn_in.append(os.getpid())  # only this process's draws are seen here
            return _figures()[i]
        return draw

    jobs = [FigureJob(None, (tmp_path / f"f{i}.png", tmp_path / f"f{i}.svg"), png_dpi=60 if i % 2 == 0 else None,
                      draw=drawer(i), weight=1.0) for i in range(4)]
    render_figures(jobs, workers=2)
    assert len(forks) == 1
    assert drawn_in == [parent, parent]  # half drawn here, the other half in the worker
    files, pngs = serial
    assert _files(tmp_path) == files
    assert [j.png for j in jobs] == pngs
    with pytest.raises(ValueError, match="needs a weight"):
        _ = FigureJob(None, (), draw=drawer(0)).cost


class _FailsInWorker(FigureJob):
    parent = os.getpid()

    def run(self) -> None:
        if os.getpid() != self.parent:
            raise RuntimeError("a worker that breaks")
        super().run()


class _StallsInWorker(FigureJob):
    parent = os.getpid()

    def run(self) -> None:
        if os.getpid() != self.parent:
            import time

            time.sleep(600)
        super().run()


@pytest.mark.parametrize("cls", [_FailsInWorker, _StallsInWorker], ids=["fails", "stalls"])
def test_a_worker_that_fails_or_stalls_leaves_its_figures_to_this_process(cls, serial, tmp_path, forks, monkeypatch):
    cls.parent = os.getpid()
    monkeypatch.setattr(rendering, "WORKER_GRACE_S", 1.0)  # a stalled worker is given up on after about 1 s
    jobs = _jobs(tmp_path, cls)
    render_figures(jobs, workers=2)
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):  # reaped: stopped (stalled) or ended (failed), no zombie left
        os.waitpid(forks[0], os.WNOHANG)
    files, pngs = serial
    assert _files(tmp_path) == files  # every file, whole: nothing half-written by the worker
    assert [j.png for j in jobs] == pngs



def test_the_environment_can_keep_everything_in_one_process(monkeypatch):
    from latentseg._fork import fork_workers
    from latentseg.errors import ConfigError

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("LATENTSEG_WORKERS", "1")
    assert fork_workers() == 1
    monkeypatch.setenv("LATENTSEG_WORKERS", "2")
    assert fork_workers() == (2 if len(os.sched_getaffinity(0)) >= 2 else 1)
    monkeypatch.setenv("LATENTSEG_WORKERS", "two")
    with pytest.raises(ConfigError, match="LATENTSEG_WORKERS must be a whole number"):
        fork_workers()
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("LATENTSEG_WORKERS")
    assert fork_workers() == 1


# ------------------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from latentseg.deliver.artifacts import load_model
    from latentseg.pipeline import run_pipeline
    from latentseg.research.simulate import simulate_survey

    root = tmp_path_factory.mktemp("rendering")
    survey, _ = simulate_survey(n=200, n_outcomes=9, n_segments=3, job_steps=3, separation=1.6, random_seed=8)
    survey.to_frame().to_csv(root / "survey.csv", index=False)
    cfg = {
        "survey": {"imp_scale": "1-5", "sat_scale": "1-10"},
        "select": {"models": ["kmeans", "gmm"], "k_min": 2, "k_max": 4, "stability_subsamples": 0},
        "model": {"n_init": 2, "covariance": "EEI", "random_seed": 3},
        "cleaning": {"min_respondents": 50},
    }
    res = run_pipeline(root / "survey.csv", cfg, models_dir=root / "models", report=False)
    return load_model(res.model_dir)


def _report_bytes(html: Path) -> dict[str, bytes]:
    """Every file the report wrote, the deck's pictures and the page (its time stamp left out)."""
    out = html.parent
    got = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
           if p.is_file() and p.suffix not in (".html", ".xlsx", ".pptx")}
    with zipfile.ZipFile(io.BytesIO(html.with_suffix(".pptx").read_bytes())) as z:
        got.update({n: z.read(n) for n in z.namelist() if n.startswith("ppt/media/")})
    got["report.html"] = b"\n".join(line for line in html.read_bytes().splitlines() if b" UTC" not in line)
    return got


def test_the_report_is_the_same_rendered_on_one_process_or_two(saved, tmp_path, monkeypatch, forks):
    from latentseg.deliver.report import write_report

    pytest.importorskip("pptx")
    monkeypatch.setattr(rendering, "default_workers", lambda: 1)
    one = _report_bytes(write_report(saved, tmp_path / "one" / "report.html"))
    assert not forks
    monkeypatch.setattr(rendering, "default_workers", lambda: 2)
    two = _report_bytes(write_report(saved, tmp_path / "two" / "report.html"))
    assert len(forks) == 1
    assert sorted(one) == sorted(two)
    assert sum(name.startswith("ppt/media/") for name in one) == 3  # the deck's three figures
    assert sum(name.startswith("figures/") for name in one) >= 10
    for name in one:
        assert one[name] == two[name], name


def test_a_forked_child_dies_with_its_parent(tmp_path):
    """A parent killed outright (SIGKILL: no finally runs) takes its forked child with it, so no
    orphan goes on working and holding the parent's files (a model's lock)."""
    import signal
    import subprocess
    import time

    script = (
        "import os, signal, sys, time\n"
        "from latentseg._fork import Forked\n"
        "child = Forked(lambda: time.sleep(60))\n"
        "print(child.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LATENTSEG_WORKERS": "2"})
    assert proc.returncode == -signal.SIGKILL
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10  # the kernel signals the child at once; 10 s of margin for a busy machine
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as fh:  # a zombie (reaped by init soon) counts as gone
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the child outlived its parent")
