"""Latent class EM: latentseg vs StepMix, side by side, at equal log-likelihood.

Simulated 2,000 respondents x 20 five-level nominal items (4 true classes), k = 2..6, 20 random
starts each, the same iteration cap (1000) and the same stopping rule (change in the average
log-likelihood per respondent below 1e-8: latentseg's ``tol`` and StepMix's ``abs_tol``).

Both libraries run from the *same* 20 starts: StepMix's random starts are uniform memberships
drawn from ``numpy.random.RandomState(seed)``, one (n, k) block per start; we draw the same blocks
and pass them to ``fit_lca(init=...)``. Two latentseg timings:

- ``plain``: ``accelerate=False``, plain EM. Each start follows the same EM path as in StepMix, so
  the per-start log-likelihoods agree and the times compare equal work at equal log-likelihood
  (the headline ratio).
- ``default``: SQUAREM-accelerated EM (the default), same starts; its best log-likelihood is
  reported next to StepMix's (a start may end in another local maximum than its plain-EM path).

Reports the times, ratios, best log-likelihoods per k and the largest per-start difference.

Run with one BLAS thread (both libraries are single-threaded numpy then):

    OMP_NUM_THREADS=1 python benchmarks/bench_lca.py [--repeats 3]

Writes ``benchmarks/results/lca.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

N, ITEMS, LEVELS, TRUE_K = 2000, 20, 5, 4
KS = range(2, 7)
N_INIT, MAX_ITER, TOL = 20, 1000, 1e-8
SEED = 100  # StepMix random_state; every repeat re-runs the same work (timing = min over repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per k and library (min is kept)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lca.json"))
    args = parser.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("warning: run with OMP_NUM_THREADS=1 for a fair single-thread comparison")

    import numpy as np
    import stepmix
    from stepmix.stepmix import StepMix

    import latentseg
    from latentseg.models.lca import fit_lca
    from latentseg.research.simulate import simulate_categorical

    data, truth, _ = simulate_categorical(
        N, TRUE_K, ITEMS, LEVELS, separation=0.5, random_seed=20261122
    )
    codes = data.to_numpy(dtype=float, na_value=np.nan).astype(int)

    def starts(k: int, seed: int) -> np.ndarray:
        rs = np.random.RandomState(seed)  # StepMix: check_random_state(seed).uniform(size=(n, k)) per start
        return np.stack([rs.uniform(size=(N, k)) for _ in range(N_INIT)])

    def ours(k: int, seed: int, accelerate: bool) -> tuple[float, float, int, np.ndarray]:
        init = starts(k, seed)
        t = time.perf_counter()
        res = fit_lca(data, k, n_init=N_INIT, max_iter=MAX_ITER, tol=TOL, init=init, accelerate=accelerate)
        elapsed = time.perf_counter() - t
        return elapsed, res.criteria["loglik"], res.diagnostics["n_best"], np.array(res.diagnostics["start_logliks"])

    def theirs(k: int, seed: int) -> tuple[float, float, np.ndarray]:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = StepMix(
                n_components=k, measurement="categorical", n_init=N_INIT, max_iter=MAX_ITER,
                abs_tol=TOL, rel_tol=0.0, random_state=seed, progress_bar=0, verbose=0,
            )
            m.fit(codes)
        elapsed = time.perf_counter() - t
        return elapsed, float(m.score(codes) * N), np.array(m.lower_bound_buffer_) * N

    rows = []
    for k in KS:
        t_plain, t_fast, t_sm = [], [], []
        for _ in range(args.repeats):
            t, ll_plain, n_best, starts_plain = ours(k, SEED, accelerate=False)
            t_plain.append(t)
            t, ll_fast, n_best_fast, _ = ours(k, SEED, accelerate=True)
            t_fast.append(t)
            t, ll_sm, starts_sm = theirs(k, SEED)
            t_sm.append(t)
            diff_starts = float(np.max(np.abs(starts_plain - starts_sm)))
        row = {
            "k": k,
            "stepmix_s": min(t_sm),
            "latentseg_plain_s": min(t_plain),
            "latentseg_default_s": min(t_fast),
            "ratio_plain": min(t_sm) / min(t_plain),
            "ratio_default": min(t_sm) / min(t_fast),
            "stepmix_loglik": ll_sm,
            "latentseg_plain_loglik": ll_plain,
            "latentseg_default_loglik": ll_fast,
            "loglik_diff_plain": ll_plain - ll_sm,
            "loglik_diff_default": ll_fast - ll_sm,
            "max_per_start_loglik_diff_plain": diff_starts,
            "latentseg_plain_n_best": n_best,
            "latentseg_default_n_best": n_best_fast,
        }
        rows.append(row)
        print(
            f"k={k}: StepMix {row['stepmix_s']:.3f} s | plain {row['latentseg_plain_s']:.3f} s "
            f"({row['ratio_plain']:.1f}x) | default {row['latentseg_default_s']:.3f} s ({row['ratio_default']:.1f}x) | "
            f"loglik StepMix {ll_sm:.4f}, diff plain {ll_plain - ll_sm:+.2e}, default {ll_fast - ll_sm:+.2e} "
            f"(largest per-start diff, plain {diff_starts:.2e})"
        )
    total_plain = sum(r["latentseg_plain_s"] for r in rows)
    total_fast = sum(r["latentseg_default_s"] for r in rows)
    total_sm = sum(r["stepmix_s"] for r in rows)
    out = {
        "benchmark": "latent class EM, simulated 2000 x 20 five-level items, k = 2..6 x 20 starts",
        "settings": {
            "n": N, "items": ITEMS, "levels": LEVELS, "true_k": TRUE_K, "n_init": N_INIT,
            "max_iter": MAX_ITER, "tol": TOL, "seed": SEED, "repeats": args.repeats, "timing": "min over repeats",
            "starts": "identical: StepMix's RandomState(seed) uniform memberships, passed to fit_lca(init=)",
        },
        "versions": {"latentseg": latentseg.__version__, "stepmix": getattr(stepmix, "__version__", "3.x"),
                     "numpy": np.__version__, "python": platform.python_version()},
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "per_k": rows,
        "stepmix_total_s": total_sm,
        "latentseg_plain_total_s": total_plain,
        "latentseg_default_total_s": total_fast,
        "ratio_plain_total": total_sm / total_plain,
        "ratio_default_total": total_sm / total_fast,
        "target_ratio": 5.0,
    }
    print(
        f"total: StepMix {total_sm:.2f} s, latentseg plain EM {total_plain:.2f} s ({total_sm / total_plain:.1f}x), "
        f"default {total_fast:.2f} s ({total_sm / total_fast:.1f}x)"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
