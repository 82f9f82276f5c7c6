"""compare_k without ArviZ vs through ``arviz.compare`` (the previous implementation), on a k = 2..7 sweep.

```
OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compare_k.py [--repeats 5]
```

Each measurement runs in a fresh process holding six fitted-like Bayesian results (N = 400, as
``bench_bayes.py``'s sweep; pointwise elpd and Pareto k stored as fits store them). ``cold``: the
first ``compare_k`` call with the import of ``latentseg.models.bayes._loo`` and of everything the
comparison loads (what the sweep pays once). ``warm``: the median of 20 further calls. The peer is
the previous implementation, ``arviz.compare(method="stacking", round_to="none")`` on
``elpd_data()`` of each fit, patched in for the run; the two are run interleaved and their tables
checked equal. Writes ``benchmarks/results/compare_k.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, math, sys, time, warnings
import numpy as np, pandas as pd
from latentseg.result import SegmentationResult

mode = sys.argv[1]
rng = np.random.default_rng(2026)
n = 400
base = rng.normal(-9.0, 2.0, n)
fits = []
for k in range(2, 8):
    e = base - rng.uniform(0.0, 1.5 / k, n) + rng.normal(0.0, 0.02 * k, n)
    fits.append(SegmentationResult.from_memberships(
        "bayes-gmm", np.full((n, k), 1.0 / k), centers=np.zeros((k, 8)), feature_names=tuple("abcdefgh"),
        criteria={"loo": float(e.sum()), "loo_se": float(math.sqrt(n * e.var())), "p_loo": 9.0 * k,
                  "waic": float(e.sum()), "waic_se": 1.0, "p_waic": 9.0 * k, "n_params": 17 * k - 1},
        diagnostics={"converged": True, "pareto_k_bad": 0, "pareto_k_threshold": 0.7},
        provenance={"data_hash": "h"}, settings={"covariance": "diag", "draws": 1000, "chains": 2},
        extras={"elpd_loo_pointwise": e, "pareto_k": rng.uniform(-0.2, 0.6, n)}))

def old_arviz_compare(results, names):  # the implementation this replaces
    import arviz as az
    from latentseg.models.bayes._loo import elpd_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.compare({name: elpd_data(r) for name, r in zip(names, results)}, method="stacking", round_to="none")

t0 = time.perf_counter()
from latentseg.models.bayes import _loo
if mode == "arviz":
    _loo._arviz_compare = old_arviz_compare
table = _loo.compare_k(fits)
cold = time.perf_counter() - t0
warm = []
for _ in range(20):
    t = time.perf_counter()
    _loo.compare_k(fits)
    warm.append(time.perf_counter() - t)
heavy = [m for m in ("arviz", "arviz_stats", "arviz_base", "xarray", "scipy.stats", "scipy.optimize") if m in sys.modules]
cols = ["rank", "elpd_diff", "dse", "p_worse", "p", "elpd", "se", "weight"]
print(json.dumps({"cold_s": cold, "warm_s": sorted(warm)[len(warm) // 2], "loaded": heavy,
                  "index": table.index.tolist(), "table": table[cols].to_numpy(float).tolist()}))
"""


def run(mode: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare_k.json")
    args = ap.parse_args()
    import numpy as np

    load0 = [round(v, 2) for v in os.getloadavg()]
    runs: dict[str, list[dict]] = {"latentseg": [], "arviz": []}
    for _ in range(args.repeats):
        for mode in ("arviz", "latentseg"):  # interleaved: drift in load hits both alike
            runs[mode].append(run(mode))
    ours, peer = runs["latentseg"][0], runs["arviz"][0]
    same_index = all(r["index"] == peer["index"] for r in runs["latentseg"])
    diff = np.abs(np.array(ours["table"]) - np.array(peer["table"]))
    max_abs_diff = float(np.nanmax(diff))
    summary = {}
    for mode, rs in runs.items():
        summary[mode] = {
            "cold_s_best": round(min(r["cold_s"] for r in rs), 4),
            "cold_s_median": round(statistics.median(r["cold_s"] for r in rs), 4),
            "warm_s_median": round(statistics.median(r["warm_s"] for r in rs), 5),
            "loaded": rs[0]["loaded"],
        }
    ratios = {
        "cold_best_arviz_over_latentseg": round(summary["arviz"]["cold_s_best"] / summary["latentseg"]["cold_s_best"], 2),
        "cold_median_arviz_over_latentseg": round(summary["arviz"]["cold_s_median"] / summary["latentseg"]["cold_s_median"], 2),
        "warm_median_arviz_over_latentseg": round(summary["arviz"]["warm_s_median"] / summary["latentseg"]["warm_s_median"], 2),
    }
    import pandas as pd
    import scipy

    result = {
        "what": "compare_k on six fitted-like results (k = 2..7, N = 400): first call in a fresh process with imports, "
                "and warm; the peer is arviz.compare(method='stacking') on elpd_data() of each fit",
        "n": 400, "models": 6, "repeats": args.repeats,
        "summary": summary, "ratios": ratios,
        "same_table": {"same_index": same_index, "max_abs_diff": max_abs_diff},
        "runs": {m: [{"cold_s": round(r["cold_s"], 4), "warm_s": round(r["warm_s"], 5)} for r in rs] for m, rs in runs.items()},
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
        "load_average_at_start": load0, "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        import arviz

        result["arviz"] = arviz.__version__
    except ImportError:  # pragma: no cover
        pass
    print(json.dumps({k: result[k] for k in ("summary", "ratios", "same_table", "load_average_at_start", "load_average_at_end")},
                     indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
