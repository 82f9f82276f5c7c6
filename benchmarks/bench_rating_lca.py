"""rating-lca's k sweep against our lca on the 24 binned opportunity levels (issue 17, item 3).

Target: the EM family on the raw ratings sweeps k = 2..7 x 20 starts on 400 respondents x 24
outcomes (48 rating indicators) in at most 2x the time of ``lca`` on the 24 opportunity levels of
the same respondents.

Both sweeps fit the same respondents: ``lca`` their opportunity levels (below 10, 10-15, 15 and
above; 24 indicators of 3 levels), ``rating-lca`` their importance and satisfaction ratings
(48 indicators over every scale point), each k from its own seed, 20 starts, single-threaded.
``rating-lca`` runs as a sweep runs it: with its default delta-method interval on the segment
opportunity. Peer and latentseg are interleaved, best of ``--repeats``; CPU time
(``time.process_time``) is reported beside wall time (steadier on a shared machine).

Data sets: two simulated at the rating level (``simulate_ratings``, 4 segments, 1-5 scales;
separation 1.0 and a harder 0.5) and the bundled example survey (importance 1-5, satisfaction
1-10, 385 respondents after cleaning). The JSON also records the ordinal measurement model's
sweep, one bootstrap-interval fit, and the ARI of each family at the true k.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rating_lca.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rating_lca.json"
KS = range(2, 8)
N_INIT = 20


def _datasets() -> dict[str, dict]:
    from latentseg.prepare.core import prepare
    from latentseg.prepare.encoding import opportunity_levels
    from latentseg.prepare.scoring import opportunity_scores
    from latentseg.research.simulate import simulate_ratings

    out = {}
    for name, sep in (("simulated, separation 1.0", 1.0), ("simulated, separation 0.5", 0.5)):
        sim = simulate_ratings(400, k=4, n_outcomes=24, separation=sep, random_seed=17)
        out[name] = {
            "ratings": sim.data,
            "levels": opportunity_levels(opportunity_scores(sim.survey)),
            "truth": sim.segment.to_numpy(),
            "true_k": 4,
        }
    p = prepare(HERE.parent / "examples" / "project_survey.csv", HERE.parent / "examples" / "latentseg.toml",
                families=["lca", "rating-lca"])
    out["example survey (1-5 / 1-10)"] = {"ratings": p.ratings, "levels": p.levels, "truth": None, "true_k": None}
    return out


def _cpu_model() -> str:
    """The CPU's model name and core count (platform.processor() is empty on Linux)."""
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        flags = Path("/proc/cpuinfo").read_text()
        simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""
        return f"{names[0]} ({simd}, {os.cpu_count()} cores)" if names else platform.machine()
    except OSError:
        return platform.machine()


def _sweep(fit, data, **options) -> tuple[float, float, list]:
    t0, c0 = time.perf_counter(), time.process_time()
    fits = [fit(data, k, n_init=N_INIT, random_seed=1000 + k, **options) for k in KS]
    return time.perf_counter() - t0, time.process_time() - c0, fits


def main() -> None:
    from sklearn.metrics import adjusted_rand_score

    from latentseg.models._em import single_threaded
    from latentseg.models.lca import fit_lca
    from latentseg.models.rating_lca import fit_rating_lca

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    load_before = os.getloadavg()
    report: dict = {
        "what": "k = 2..7 x 20 starts: rating-lca on 48 rating indicators vs lca on 24 opportunity levels",
        "target": "rating-lca sweep time <= 2x lca's",
        "cpu": _cpu_model(),
        "load_average_before": load_before,
        "repeats": args.repeats,
        "datasets": {},
    }
    with single_threaded():
        fit_lca(_datasets()["simulated, separation 1.0"]["levels"], 2, n_init=2, random_seed=0)  # warm imports
        for name, d in _datasets().items():
            runs = {"lca": [], "rating-lca": [], "rating-lca ordinal": []}
            fits = {}
            for _ in range(args.repeats):  # interleaved
                w, c, fits["lca"] = _sweep(fit_lca, d["levels"])
                runs["lca"].append({"wall_s": w, "cpu_s": c})
                w, c, fits["rating-lca"] = _sweep(fit_rating_lca, d["ratings"])
                runs["rating-lca"].append({"wall_s": w, "cpu_s": c})
                w, c, fits["rating-lca ordinal"] = _sweep(fit_rating_lca, d["ratings"], measurement="ordinal")
                runs["rating-lca ordinal"].append({"wall_s": w, "cpu_s": c})
            best = {m: {key: min(r[key] for r in rs) for key in ("wall_s", "cpu_s")} for m, rs in runs.items()}
            t0 = time.perf_counter()
            fit_rating_lca(d["ratings"], 4, n_init=N_INIT, random_seed=4, interval="bootstrap", n_boot=100)
            boot_s = time.perf_counter() - t0
            entry = {
                "n": int(d["ratings"].shape[0]),
                "indicators": {"lca": int(d["levels"].shape[1]), "rating-lca": int(d["ratings"].shape[1])},
                "runs": runs,
                "best": best,
                "ratio_wall": {m: best[m]["wall_s"] / best["lca"]["wall_s"] for m in ("rating-lca", "rating-lca ordinal")},
                "ratio_cpu": {m: best[m]["cpu_s"] / best["lca"]["cpu_s"] for m in ("rating-lca", "rating-lca ordinal")},
                "bic_k": {m: int(KS[int(np.argmin([f.criteria["bic"] for f in fs]))]) for m, fs in fits.items()},
                "rating_lca_k4_bootstrap_100_s": boot_s,
            }
            if d["truth"] is not None:
                kk = list(KS).index(d["true_k"])
                entry["ari_at_true_k"] = {m: float(adjusted_rand_score(d["truth"], fs[kk].assignment)) for m, fs in fits.items()}
            report["datasets"][name] = entry
            print(f"{name}: lca {best['lca']['wall_s']:.2f} s, rating-lca {best['rating-lca']['wall_s']:.2f} s "
                  f"(x{entry['ratio_wall']['rating-lca']:.2f} wall, x{entry['ratio_cpu']['rating-lca']:.2f} cpu), ordinal "
                  f"x{entry['ratio_wall']['rating-lca ordinal']:.2f}; BIC k {entry['bic_k']}; "
                  f"ARI {entry.get('ari_at_true_k', {})}; bootstrap fit {boot_s:.2f} s")
    import numpy
    import sklearn

    import latentseg

    report["load_average_after"] = os.getloadavg()
    report["versions"] = {"latentseg": latentseg.__version__, "numpy": numpy.__version__, "sklearn": sklearn.__version__,
                          "python": platform.python_version()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
