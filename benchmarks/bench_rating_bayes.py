"""bayes-rating-lca's k sweep against bayes-lca's, side by side (issue 17: within 3x).

What is timed (each in a fresh Python process, imports included, compile caches warm):

* **bayes-rating-lca**: :func:`latentseg.models.bayes.rating_lca.fit_sweep` over k = 2..6 on the
  survey's raw ratings (16 items: importance and satisfaction of 8 outcomes, 1-5 scales, 5
  categories each: 80 categories);
* **bayes-lca**: :func:`latentseg.models.bayes.engine.fit_sweep` (``model="bayes-lca"``) over the
  same ks on the same survey's opportunity levels (8 items, 3 levels: 24 categories), as
  ``latentseg run --model bayes-lca`` fits them.

Both: 2 chains x 1000 tuning + 1000 draws, EM starting values, nutpie on the numba kernel of
:mod:`latentseg.models.bayes._kernels` (the same categorical kernel), every fit of a sweep
sampling at once (the engines' default scheduling).

Data: ``simulate_ratings(400, k=4, n_outcomes=8, separation=0.8, random_seed=2026)`` (true k = 4).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_rating_bayes.py [--repeats 3]``. Writes
``benchmarks/results/rating_bayes_sweep.json`` and prints a table. The machine is shared: the two
runs alternate, each is repeated (medians reported, all kept), and the load average before and
after each run and its CPU time are recorded next to its wall time; the ratio is taken on CPU
time and on wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "rating_bayes_sweep.json"
KS = list(range(2, 7))
SAMPLING = {"draws": 1000, "tune": 1000, "chains": 2}
DATA = {"n": 400, "k": 4, "n_outcomes": 8, "separation": 0.8, "random_seed": 2026}


def _worker(kind: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import warnings

    from sklearn.metrics import adjusted_rand_score

    from latentseg.models.bayes._loo import compare_k
    from latentseg.research.simulate import simulate_ratings

    d = dict(DATA)
    sim = simulate_ratings(d.pop("n"), d.pop("k"), d.pop("n_outcomes"), **d)
    t_fit = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "rating":
            from latentseg.models.bayes.rating_lca import fit_sweep

            fits = fit_sweep(sim.data, KS, random_seed=1, **SAMPLING)
        else:
            from latentseg.models.bayes.engine import fit_sweep
            from latentseg.prepare.encoding import drop_constant_columns, opportunity_levels
            from latentseg.prepare.scoring import opportunity_scores

            levels = drop_constant_columns(opportunity_levels(opportunity_scores(sim.survey)))[0]
            fits = fit_sweep(levels, KS, model="bayes-lca", random_seed=1, **SAMPLING)
        rec = compare_k(fits).attrs["recommended_k"]
    fit_s = time.perf_counter() - t_fit
    truth = sim.segment.to_numpy()
    return {
        "kind": kind,
        "fit_s": fit_s,
        "total_in_process_s": time.perf_counter() - t0,
        "recommended_k": rec,
        "ari_at_true_k": float(adjusted_rand_score(truth, fits[KS.index(4)].assignment)),
        "rhat_max": [float(f.diagnostics["rhat_max"]) for f in fits],
    }


def _cpu_model() -> str:
    """The CPU's model name and vector width (platform.processor() is empty on Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    names = [ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")]
    simd = "AVX-512" if "avx512f" in info else "AVX2" if "avx2" in info else "no AVX2"
    return f"{names[0]} ({simd})" if names else platform.machine()


def _run(kind: str) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", kind], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update({"wall_s": wall, "cpu_s": cpu, "load_before": load0, "load_after": os.getloadavg()[0]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["rating", "levels"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker)))
        return
    _run("rating")  # warm the compile caches (not recorded)
    runs: dict[str, list[dict[str, Any]]] = {"bayes-rating-lca": [], "bayes-lca": []}
    for _ in range(args.repeats):  # alternate, so both see the same load
        runs["bayes-rating-lca"].append(_run("rating"))
        runs["bayes-lca"].append(_run("levels"))
    med = {name: {key: median(r[key] for r in rs) for key in ("wall_s", "cpu_s", "fit_s")} for name, rs in runs.items()}
    doc = {
        "what": "k = 2..6 sweep, 2 chains x (1000 + 1000), fresh process each, compile caches warm",
        "data": DATA,
        "ks": KS,
        "sampling": SAMPLING,
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "median": med,
        "ratio_rating_over_lca": {key: med["bayes-rating-lca"][key] / med["bayes-lca"][key] for key in ("wall_s", "cpu_s")},
        "runs": runs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1))
    print(f"{'sweep':18s} {'wall s':>8s} {'cpu s':>8s}  runs (wall s / load before)")
    for name, rs in runs.items():
        every = ", ".join(f"{r['wall_s']:.0f}/{r['load_before']:.1f}" for r in rs)
        print(f"{name:18s} {med[name]['wall_s']:8.1f} {med[name]['cpu_s']:8.1f}  {every}")
    r = doc["ratio_rating_over_lca"]
    print(f"ratio bayes-rating-lca / bayes-lca: cpu {r['cpu_s']:.2f}x, wall {r['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
