"""Coverage of rating-lca's 95% segment opportunity intervals against the simulated truth (issue 17).

Not a speed benchmark: for each setting, ``--reps`` data sets from
:func:`latentseg.research.simulate.simulate_ratings` (300 respondents, 3 segments, 10 outcomes,
1-5 scales, 5% of ratings missing), each fitted at the true k; the fit's segments are matched to
the true ones on the crosstab (Hungarian), and every (segment, outcome) interval is checked
against the true segment opportunity. Two settings: well separated (``separation=1.0``) and
heavily overlapping (``separation=0.4``), for the delta method (default) and the bootstrap
(``--boot-reps`` data sets, 100 resamples). The JSON records coverage, mean width, the ARI of
each data set and the time of each method.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rating_lca_calibration.py [--reps 40] [--boot-reps 15]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "rating_lca_calibration.json"


def main() -> None:
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    from latentseg.models._em import single_threaded
    from latentseg.models.rating_lca import fit_rating_lca
    from latentseg.research.simulate import simulate_ratings

    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--boot-reps", type=int, default=15)
    args = ap.parse_args()
    out: dict = {"load_average_before": os.getloadavg(), "settings": {}}
    with single_threaded():
        for sep in (1.0, 0.4):
            for method, reps in (("delta", args.reps), ("bootstrap", args.boot_reps)):
                hits, widths, aris, secs = [], [], [], []
                for seed in range(1, reps + 1):
                    sim = simulate_ratings(300, k=3, n_outcomes=10, separation=sep, missing_rate=0.05, random_seed=seed)
                    t0 = time.process_time()
                    res = fit_rating_lca(sim.data, 3, n_init=10, interval=method, n_boot=100, random_seed=seed)
                    secs.append(time.process_time() - t0)
                    ct = pd.crosstab(res.assignment, sim.segment.to_numpy()).reindex(
                        index=range(1, 4), columns=range(1, 4), fill_value=0)
                    _, col = linear_sum_assignment(-ct.to_numpy())
                    truth = sim.opportunity.to_numpy()[col]
                    ci = res.center_intervals
                    hits.append(float(((ci[..., 0] <= truth) & (truth <= ci[..., 1])).mean()))
                    widths.append(float((ci[..., 1] - ci[..., 0]).mean()))
                    aris.append(float(adjusted_rand_score(sim.segment, res.assignment)))
                key = f"separation {sep}, {method}"
                out["settings"][key] = {
                    "data_sets": reps,
                    "intervals": reps * 30,
                    "coverage": float(np.mean(hits)),
                    "coverage_per_data_set": hits,
                    "mean_width": float(np.mean(widths)),
                    "ari_median": float(np.median(aris)),
                    "ari": aris,
                    "cpu_s_per_fit": float(np.mean(secs)),
                }
                print(f"{key}: coverage {np.mean(hits):.3f} over {reps * 30} intervals, mean width {np.mean(widths):.2f}, "
                      f"median ARI {np.median(aris):.3f}, {np.mean(secs):.2f} s CPU per fit")
    out["load_average_after"] = os.getloadavg()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
