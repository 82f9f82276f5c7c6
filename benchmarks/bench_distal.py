"""Benchmark: step 3 of the three-step distal-outcome analysis, latentseg vs StepMix 3.0.

Both sides get the same step-1 memberships (StepMix's own Gaussian mixture fit) and the same
numeric distal outcome; we time only step 3: the BCH-weighted means (latentseg
``distal(method="bch")`` vs StepMix's ``compute_bch_matrix`` + ``m_step_structural``) and the ML
correction (latentseg ``distal(method="ml", ml_shares="fixed")``, StepMix's estimator, vs StepMix's
``em(..., freeze_measurement=True, log_emission_pm=...)``). latentseg's times include its standard
errors and Wald test; StepMix computes point estimates only. Each timing is the best of 3.
The estimates are checked to agree (BCH to 1e-8, ML to 1e-3) before anything is reported.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_distal.py            # n = 2,000 and 20,000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_distal.py --sizes 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "distal.json"


def _best(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(n: int, seed: int = 1) -> dict:
    from stepmix.corrections import compute_bch_matrix, compute_log_emission_pm
    from stepmix.stepmix import StepMix

    from latentseg.decide.distal import distal
    from latentseg.result import SegmentationResult
    from latentseg.research.simulate import simulate_gaussian_mixture

    x, seg = simulate_gaussian_mixture(n, k=3, d=2, separation=2.2, covariance="spherical", random_seed=seed)
    xa = x.to_numpy()
    y = (np.array([2.0, 6.0, 10.0])[seg - 1] + np.random.default_rng(seed).normal(scale=2.0, size=n))[:, None]
    def stepmix_model(structural: str, correction: str) -> StepMix:
        m = StepMix(n_components=3, n_steps=3, measurement="gaussian_diag", structural=structural,
                    correction=correction, random_state=seed, n_init=1, progress_bar=0, abs_tol=1e-12, max_iter=5000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(xa, y)
        return m

    # BCH weights can be negative: StepMix's per-class variance update then fails, so BCH uses
    # its unit-variance structural model (the means are the same); ML uses class variances, as we do
    sm_b = stepmix_model("gaussian_unit", "BCH")
    sm = stepmix_model("gaussian_diag", "ML")
    z = sm_b.predict_proba_class(xa)
    np.testing.assert_allclose(sm.predict_proba_class(xa), z)
    r = SegmentationResult.from_memberships("gmm", z, centers=np.zeros((3, 1)), feature_names=("f",))
    order = [int(np.argmin(np.abs(r.memberships[:, [j]] - z).sum(axis=0))) for j in range(3)]
    frame = pd.DataFrame({"y": y[:, 0]}, index=r.respondent_ids)

    def sm_bch() -> np.ndarray:
        _, d_inv = compute_bch_matrix(z, "modal")
        modal = np.eye(3)[np.argmax(z, axis=1)]
        sm_b.m_step_structural(modal @ d_inv, y)
        return sm_b.get_parameters()["structural"]["means"][:, 0].copy()

    def sm_ml() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sm.em(xa, y, freeze_measurement=True, log_emission_pm=compute_log_emission_pm(z, "modal"))
        return sm.get_parameters()["structural"]["means"][:, 0].copy()

    def ours(method: str) -> np.ndarray:
        kw = {"ml_shares": "fixed"} if method == "ml" else {}
        return distal(r, frame, ["y"], method=method, **kw).table.sort_values("segment")["estimate"].to_numpy()

    np.testing.assert_allclose(ours("bch"), sm_bch()[order], atol=1e-8)
    np.testing.assert_allclose(ours("ml"), sm_ml()[order], atol=1e-3)
    out = {"n": n}
    for name, theirs, mine in (("bch", sm_bch, lambda: ours("bch")), ("ml", sm_ml, lambda: ours("ml"))):
        t_sm, t_us = _best(theirs), _best(mine)
        out[name] = {"latentseg_s": t_us, "stepmix_s": t_sm, "ratio_latentseg_over_stepmix": t_us / t_sm}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import stepmix

    rows = []
    for n in args.sizes:
        row = run(n)
        rows.append(row)
        for m in ("bch", "ml"):
            r = row[m]
            print(f"n={n:>7} {m:>3}: latentseg {r['latentseg_s'] * 1e3:8.1f} ms  StepMix {r['stepmix_s'] * 1e3:8.1f} ms"
                  f"  ratio {r['ratio_latentseg_over_stepmix']:.2f}")
    doc = {
        "benchmark": "distal step 3 (BCH and ML corrections), latentseg vs StepMix",
        "peer": f"stepmix {getattr(stepmix, '__version__', '?')}",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "results": rows,
    }
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
