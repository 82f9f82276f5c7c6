"""latentseg: segment customers by unmet needs.

The public surface is small; everything is imported lazily so ``import latentseg`` is quick::

    import latentseg as ls
    survey = ls.read_survey("examples/project_survey.csv")
    clean, report = ls.clean(survey)
    scores = ls.opportunity_scores(clean)
    result = ls.fit(scores, "gmm", k=4, random_seed=1)

The stages, one folder each, in the order the data flows: ``io`` (read, validate), ``prepare``
(clean, score, reduce, encode: :func:`latentseg.prepare.core.prepare` gives every family its
input), ``models`` (the engines behind one family registry, :mod:`latentseg.models.families`),
``choose`` (select k, tests, stability, comparison), ``decide``
(:func:`latentseg.decide.core.decide`: profiles, overlays, finder, distal outcomes, sizes, the
segment map), ``deliver`` (saved models, :func:`assign`, the report) and
``research`` (simulators, the simulation study); :func:`run_pipeline` runs them all.
"""

from __future__ import annotations

import importlib
from typing import Any

from latentseg._version import __version__
from latentseg.errors import LatentsegError, LatentsegWarning

# public name -> module that defines it (imported on first access, so that `import latentseg`
# and `latentseg --help` do not pay for numpy / pandas / scikit-learn / PyMC)
_LAZY = {
    "SegmentationResult": "latentseg.result",
    "Scale": "latentseg.io.survey",
    "Survey": "latentseg.io.survey",
    "read_survey": "latentseg.io",
    "clean": "latentseg.prepare.cleaning",
    "CleaningReport": "latentseg.prepare.cleaning",
    "opportunity_scores": "latentseg.prepare.scoring",
    "opportunity_landscape": "latentseg.prepare.scoring",
    "simulate_survey": "latentseg.research.simulate",
    "fit": "latentseg.models",
    "predict_proba": "latentseg.models",
    "select": "latentseg.choose.selection",
    "compare": "latentseg.choose.comparison",
    "profile": "latentseg.decide.profiling",
    "segment_map": "latentseg.decide.segmap",
    "size_segments": "latentseg.decide.sizing",
    "save_model": "latentseg.deliver.artifacts",
    "load_model": "latentseg.deliver.artifacts",
    "write_report": "latentseg.deliver.report",
    "run_pipeline": "latentseg.pipeline",
    "assign": "latentseg.deliver.assign",
}

__all__ = [
    "__version__",
    "LatentsegError",
    "LatentsegWarning",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'latentseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
