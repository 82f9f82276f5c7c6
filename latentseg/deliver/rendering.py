"""Rendering the report's figures to files, on two processes where that is safe.

Drawing a figure (:mod:`latentseg.deliver.plots`) takes some time; rendering it takes more: each
PNG, SVG and slide picture lays the figure out and draws every glyph, about 0.1-0.4 s a file, and
the report writes some twenty. :func:`render_figures` renders a list of :class:`FigureJob` (a
figure, drawn already or a way to draw it, and the files it goes to) and, on Linux with two or
more CPUs available, hands part of them to a forked copy of the process
(:class:`latentseg._fork.Forked`), which draws (where not drawn yet) and renders them at the same
time. Every job is drawn and rendered the same way whichever process does it (its files in order,
the first settling the layout), so the files are the same bytes either way; a worker that fails
or stalls is stopped and its jobs are done again here, so nothing depends on it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FigureJob", "render_figures", "default_workers"]

#: Seconds a worker may take beyond what this process spent on its own share, at the least.
WORKER_GRACE_S = 60.0


@dataclass(eq=False)
class FigureJob:
    """One drawn figure and where it goes.

    Attributes
    ----------
    fig : matplotlib Figure or None
        None until drawn by ``draw``.
    files : tuple of Path
        Written in this order (``.png`` or ``.svg``, :func:`latentseg.deliver.plots.save_figure`).
        The first settles the figure's layout; the layout engine is then switched off, so the
        others show the same layout without solving it again.
    png_dpi : int, optional
        Also render a PNG at this resolution in memory, after the files (the slide deck's
        picture); it lands in ``png``.
    png : bytes or None
        That PNG, once rendered.
    draw : callable, optional
        Draws the figure (returns it) when ``fig`` is None: called by whichever process renders
        the job, so the drawing is shared out with the rendering.
    weight : float, optional
        The job's rough rendering cost relative to the others (only how jobs are shared out
        depends on it). Needed for a job not drawn yet; default: from the drawn figure's size.
    """

    fig: Any
    files: tuple[Path, ...] = ()
    png_dpi: int | None = None
    png: bytes | None = field(default=None, repr=False)
    draw: Callable[[], Any] | None = field(default=None, repr=False)
    weight: float | None = None

    @property
    def cost(self) -> float:
        """A rough relative rendering cost for sharing work out: ``weight`` (times 1.7 with the in-memory PNG,
        as measured for the deck's figures), else the figure's area times the pixels drawn."""
        if self.weight is not None:
            return float(self.weight) * (1.7 if self.png_dpi else 1.0)
        if self.fig is None:
            raise ValueError("a FigureJob not drawn yet needs a weight")
        w, h = self.fig.get_size_inches()
        dpi = float(self.fig.dpi)
        pixels = sum(dpi * dpi * (0.7 if p.suffix.lower() == ".svg" else 1.0) for p in self.files)
        if self.png_dpi:
            pixels += 0.5 * float(self.png_dpi) ** 2  # little of it is rasterising
        return float(w * h) * pixels

    def run(self) -> None:
        """Draw (where not drawn yet) and render this job here."""
        from latentseg.deliver.plots import save_figure

        if self.fig is None:
            if self.draw is None:
                raise ValueError("a FigureJob needs a figure or a way to draw it")
            self.fig = self.draw()

        for i, path in enumerate(self.files):
            if i == 1:
                self.fig.set_layout_engine("none")  # settled by the first file
            save_figure(self.fig, path)
        if self.png_dpi:
            buf = io.BytesIO()
            self.fig.savefig(buf, format="png", dpi=self.png_dpi)
            self.png = buf.getvalue()


def default_workers() -> int:
    """Processes :func:`render_figures` uses by default (:func:`latentseg._fork.fork_workers`: 2 on
    Linux with two or more CPUs available to this process, else 1)."""
    from latentseg._fork import fork_workers

    return fork_workers()


def render_figures(jobs: Sequence[FigureJob], *, workers: int | None = None,
                   meanwhile: Callable[[], None] | None = None) -> None:
    """Render every job (its files written, its in-memory PNG in ``job.png``).

    Parameters
    ----------
    jobs : sequence of FigureJob
    workers : int, optional
        1: render them all here, one after the other. 2: share them with a forked worker process
        (:class:`latentseg._fork.Forked`; Linux only: elsewhere, or where forking fails, as with
        1). Default :func:`default_workers`. The files are the same either way.
    meanwhile : callable, optional
        Other work for this process (it must not need the figures), done here once this
        process's own share is rendered, while the worker may still be rendering its share; on
        one process, after every job.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from latentseg.deliver._figure import new_figure
    >>> out = Path(tempfile.mkdtemp())
    >>> jobs = [FigureJob(new_figure(2, 2), (out / f"f{i}.png", out / f"f{i}.svg"), png_dpi=50) for i in range(3)]
    >>> render_figures(jobs, workers=2)
    >>> sorted(p.name for p in out.iterdir()), [j.png[:4] for j in jobs]
    (['f0.png', 'f0.svg', 'f1.png', 'f1.svg', 'f2.png', 'f2.svg'], [b'\\x89PNG', b'\\x89PNG', b'\\x89PNG'])
    """
    from latentseg._fork import Forked

    jobs = list(jobs)
    n = default_workers() if workers is None else int(workers)
    if n < 2 or len(jobs) < 2:
        for job in jobs:
            job.run()
        if meanwhile is not None:
            meanwhile()
        return
    import importlib

    importlib.import_module("latentseg.deliver._figure")  # matplotlib imported once, here, not in each process

    mine, theirs = _share(jobs)

    def work() -> list[bytes | None]:
        for job in theirs:
            job.run()
        return [job.png for job in theirs]

    worker = Forked(work)
    try:
        t0 = time.monotonic()
        for job in mine:
            job.run()
        if meanwhile is not None:
            meanwhile()
        ok, pngs = worker.result(timeout=WORKER_GRACE_S + 2.0 * (time.monotonic() - t0))
    finally:
        worker.stop()  # still running (this process was interrupted): stopped
    if ok:
        for job, png in zip(theirs, pngs, strict=True):
            job.png = png
    else:  # no worker, or it failed or stalled: its share is rendered here (atomic files: nothing half-written)
        for job in theirs:
            job.run()


def _share(jobs: list[FigureJob]) -> tuple[list[FigureJob], list[FigureJob]]:
    """(this process's jobs, the worker's): largest first onto the lighter pile, this process
    taking the lighter one (it also writes the tables, the workbook and the page). Which pile a
    job lands on changes only the time taken, never a file."""
    piles: tuple[list[FigureJob], list[FigureJob]] = ([], [])
    load = [0.0, 0.0]
    for job in sorted(jobs, key=lambda j: -j.cost):
        i = 0 if load[0] <= load[1] else 1
        piles[i].append(job)
        load[i] += job.cost
    heavy = 0 if load[0] > load[1] else 1
    order = {id(j): n for n, j in enumerate(jobs)}
    mine, theirs = (sorted(p, key=lambda j: order[id(j)]) for p in (piles[1 - heavy], piles[heavy]))
    return mine, theirs
