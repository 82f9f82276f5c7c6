"""The matplotlib Figure that :mod:`latentseg.deliver.plots` returns (imported only when a plot is drawn).

A plain :class:`matplotlib.figure.Figure` made without pyplot has no image representation: in a
notebook that has not run ``%matplotlib inline`` (or imported pyplot with the inline backend),
returning one shows ``<Figure size 660x440 with 1 Axes>``. :class:`NotebookFigure` is that Figure
with ``_repr_png_``, which IPython displays whatever the backend; with the inline backend active,
IPython's own Figure formatter gives the same PNG. It is an ordinary Figure otherwise (Agg canvas,
``savefig``, ``add_subplot``, pickling), and nothing of it touches pyplot's global state.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["NotebookFigure", "new_figure"]


class NotebookFigure(Figure):
    """A matplotlib Figure on the Agg canvas that shows itself as PNG in Jupyter."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


def new_figure(width: float, height: float) -> NotebookFigure:
    """A figure of ``width`` x ``height`` inches (110 dpi, constrained layout) on its own Agg canvas."""
    fig = NotebookFigure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig
