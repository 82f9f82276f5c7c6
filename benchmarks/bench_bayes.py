"""Bayesian mixture benchmark: the k = 2..7 sweep against the plain PyMC approach, side by side.

What is timed (each in a fresh Python process, imports and compilation included):

* **ours**: :func:`latentseg.models.bayes.engine.fit_sweep` over k = 2..7 (bayes-gmm, diagonal: VVI, the
  default), 2 chains x
  1000 tuning + 1000 draws as the first block, extended by the convergence rule until R-hat <= 1.01
  and bulk ESS >= 400 (budget 30 x draws; extensions adapt nutpie's low-rank mass matrix and grow at
  most 4x per round; a fit whose warm-up draws 151-300, or first quarter of draws, already
  show degenerate segments stops there; ``docs/priors.md``), EM starting values, nutpie on our
  numba log density (one compiled function for every k; on an empty cache compiled in a forked
  copy while the EM start's kernel compiles), with fit_sweep's default scheduling (fits sampling
  in nutpie's background threads, a chain per core and at least two fits at once, each fit's
  chains at once, smallest k first, summaries overlapping; the chains are started through
  nutpie's compiled extension; PSIS-LOO and the comparison without ArviZ), and the same
  sweep one fit after another (``n_jobs=1``, both chains of a fit in parallel); and the default
  scheduling with ``covariance="auto"`` (two EM fits per k, then EEI or VVI by BIC);
* **baseline**: the plain approach, one ``pm.sample`` per k with PyMC 6's defaults (nutpie through
  PyMC, the PyMC model compiled by PyTensor per k), the same model and EM starting values.

"Cold" runs start with empty compile caches (a fresh PyTensor ``base_compiledir``, which holds
PyTensor's numba cache too, and a fresh ``NUMBA_CACHE_DIR`` for our kernels); "warm" runs reuse
the caches of a previous run. Also: N = 10,000 x 20, k = 5 (ours, warm): time and peak memory.

Data: ``simulate_gaussian_mixture(400, k=4, d=8, separation=3.0, random_seed=2026)`` (true k = 4,
every pair of segment means 3 within-segment sds apart, default unequal shares).

Run it in an environment installed as the README's Quickstart installs (``pip install -e .``, no
extras): with the ``[jax]`` extra installed, ArviZ registers a lazy ``jax`` module that SciPy's
array-API checks load inside the first ``az.loo`` (1.3 s of CPU; the JSON records whether jax
was installed).

Also the convergence table: ours (warm, default scheduling, one process) over ``--seeds`` (default
1-8), every k's status, draws per chain, R-hat and bulk ESS.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_bayes.py [--no-baseline] [--no-large] [--repeats 3]
[--seeds 1,2,...] [--only-default]`` (``--only-default``: time the default scheduling only; the
other configurations' last results are kept, marked as carried over).
Writes ``benchmarks/results/bayes_sweep.json`` and prints a table. The machine is shared: each of
our runs is repeated (the median is reported, all are kept), and the load average before and
after each run and its CPU time are recorded next to its wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "bayes_sweep.json"
KS = list(range(2, 8))
SAMPLING = {"draws": 1000, "tune": 1000, "chains": 2}


# ------------------------------------------------------------------------------- workers
def _worker_ours(n_jobs: int, covariance: str = "diag") -> dict[str, Any]:
    t0 = time.perf_counter()
    import warnings

    from latentseg.models.bayes.engine import compare_k, fit_sweep
    from latentseg.research.simulate import simulate_gaussian_mixture

    t_import = time.perf_counter() - t0
    X, _ = simulate_gaussian_mixture(400, k=4, d=8, separation=3.0, random_seed=2026)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = fit_sweep(X, KS, n_jobs=n_jobs or None, random_seed=1, covariance=covariance, **SAMPLING)
        table = compare_k(fits)
    total = time.perf_counter() - t0
    return {
        "total_s": total,
        "import_s": t_import,
        "recommended_k": table.attrs["recommended_k"],
        "rule": table.attrs["rule"],
        "per_k": [_summary(f) for f in fits],
    }


def _worker_seeds(seeds: str) -> dict[str, Any]:
    """Convergence of every k over several seeds (ours, default scheduling, one process): the
    rule's outcome per k and seed, and each sweep's wall and CPU time."""
    import warnings

    from latentseg.models.bayes.engine import fit_sweep
    from latentseg.research.simulate import simulate_gaussian_mixture

    X, _ = simulate_gaussian_mixture(400, k=4, d=8, separation=3.0, random_seed=2026)
    out = []
    for seed in (int(x) for x in seeds.split(",")):
        t, c = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = fit_sweep(X, KS, random_seed=seed, covariance="diag", **SAMPLING)
        rows = [{key: val for key, val in _summary(f).items()
                 if key in ("k", "converged", "rhat_max", "ess_bulk_min", "convergence_status", "draws_per_chain",
                            "stopped_early", "divergences")} for f in fits]
        out.append({"seed": seed, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                    "load": os.getloadavg()[0], "per_k": rows})
    return {"seeds": out}


def _summary(f: Any) -> dict[str, Any]:
    d = f.diagnostics
    return {
        "k": f.k,
        "covariance": f.settings.get("covariance"),
        "converged": bool(d["converged"]),
        "rhat_max": d["rhat_max"],
        "ess_bulk_min": d["ess_bulk_min"],
        "convergence_status": d.get("convergence", {}).get("status"),
        "draws_per_chain": d.get("convergence", {}).get("draws_per_chain"),
        "convergence_rounds": d.get("convergence", {}).get("rounds"),
        "stopped_early": d.get("convergence", {}).get("stopped_early"),
        "engine": d.get("engine"),
        "divergences": d["divergences"],
        "tree_depth_mean": d.get("tree_depth_mean"),
        "modes": len(d["modes"]),
        "empty_segments": d["empty_segments"],
        "diffuse_segments": d.get("diffuse_segments", []),
        "duplicated_segments": d["duplicated_segments"],
        "elpd_loo": f.criteria["loo"],
        "loo_se": f.criteria["loo_se"],
        "elpd_waic": f.criteria["waic"],
        "bic_em": f.criteria["bic"],
        "pareto_k_bad": d["pareto_k_bad"],
        "shares": [round(float(x), 4) for x in f.shares],
    }


def _worker_baseline() -> dict[str, Any]:
    """One pm.sample per k with PyMC's defaults (nutpie through PyMC when installed), EM starts."""
    t0 = time.perf_counter()
    import warnings

    import arviz as az
    import numpy as np
    import pymc as pm

    from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
    from latentseg.research.simulate import simulate_gaussian_mixture

    t_import = time.perf_counter() - t0
    X, _ = simulate_gaussian_mixture(400, k=4, d=8, separation=3.0, random_seed=2026)
    per_k = []
    for k in KS:
        t = time.perf_counter()
        fam = GaussianFamily(X, k, "diag", GMMPriors())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            em = fam.em_start(1, 10)
            model = fam.pymc_model()
            idata = pm.sample(model=model, initvals=fam.pymc_initvals(fam.start_params(em)), random_seed=k,
                              progressbar=False, **SAMPLING)
            rhat = az.rhat(idata)
        rmax = max(float(np.nanmax(rhat[v].values)) for v in rhat.data_vars)
        div = int(idata["sample_stats"]["diverging"].values.sum())
        per_k.append({"k": k, "seconds": time.perf_counter() - t, "rhat_max_no_relabelling": rmax, "divergences": div})
    return {"total_s": time.perf_counter() - t0, "import_s": t_import, "per_k": per_k}


def _worker_large() -> dict[str, Any]:
    import resource
    import warnings

    t0 = time.perf_counter()
    from latentseg.models.bayes.engine import fit_bayes_gmm
    from latentseg.research.simulate import simulate_gaussian_mixture

    X, _ = simulate_gaussian_mixture(10_000, k=5, d=20, separation=3.0, random_seed=2027)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit_bayes_gmm(X, 5, random_seed=1, **SAMPLING)
    fit_s = time.perf_counter() - t1
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "total_s": time.perf_counter() - t0,
        "fit_s": fit_s,
        "peak_rss_mb": peak_kb / 1024,
        "kept_log_likelihood": "log_likelihood" in f.posterior.children,
        **_summary(f),
    }


# ------------------------------------------------------------------------------- driver
def _run(kind: str, arg: str, cold: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    tmp = None
    if cold:
        tmp = tempfile.mkdtemp(prefix="latentseg_cold_")
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}/pytensor"
        env["NUMBA_CACHE_DIR"] = f"{tmp}/numba"
    import resource

    load0 = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--arg", arg], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update({"wall_s": wall, "cpu_s": cpu, "cold": cold, "load_before": load0, "load_after": os.getloadavg()[0]})
    if tmp is not None:
        subprocess.run(["rm", "-rf", tmp], check=False)
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    flags = open("/proc/cpuinfo").read()
                    simd = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")
                    return f"{line.split(':', 1)[1].strip()} ({simd})"
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--arg", default="")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-large", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", default="1,2,3,4,5,6,7,8",
                    help="seeds of the convergence table (ours, warm): every k's outcome per seed ('' skips it)")
    ap.add_argument("--only-default", action="store_true",
                    help="time only the default scheduling (diag), not one-by-one and covariance='auto'")
    args = ap.parse_args()
    if args.worker:
        if args.worker == "ours":
            n_jobs, _, cov = args.arg.partition(":")
            res = _worker_ours(int(n_jobs), cov or "diag")
        elif args.worker == "baseline":
            res = _worker_baseline()
        elif args.worker == "seeds":
            res = _worker_seeds(args.arg)
        else:
            res = _worker_large()
        print(json.dumps(res))
        return

    import numpy as np

    runs: dict[str, Any] = {}
    # ours is cheap: repeat and keep the median run (the machine is shared; see the load columns)
    # "0": fit_sweep's default (every fit in flight, nutpie's background threads); "1": one by one
    configs = (("ours_cold", "0", True), ("ours_warm", "0", False), ("ours_warm_one_by_one", "1", False),
               ("ours_warm_auto", "0:auto", False), ("ours_cold_auto", "0:auto", True))
    previous = json.loads(OUT.read_text()).get("runs", {}) if OUT.exists() else {}
    for name, arg, cold in configs:
        if args.only_default and arg != "0":
            if name in previous:  # not rerun: kept, marked as carried over
                runs[name] = {**previous[name], "carried_over_from_previous_run": True}
            continue
        if name == "ours_warm":
            _run("ours", "0", cold=False)  # fill the default caches
        reps = [_run("ours", arg, cold=cold) for _ in range(args.repeats)]
        for r in reps:
            r["covariance_option"] = arg.partition(":")[2] or "diag"
        reps.sort(key=lambda r: r["wall_s"])
        runs[name] = {**reps[len(reps) // 2], "all_wall_s": [r["wall_s"] for r in reps],
                      "all_cpu_s": [r["cpu_s"] for r in reps]}
    if not args.no_baseline:
        runs["baseline_cold"] = _run("baseline", "", cold=True)
        _run("baseline", "", cold=False)
        runs["baseline_warm"] = _run("baseline", "", cold=False)
    else:  # keep the last measured baseline (it does not depend on our code), marked as carried over
        for name in ("baseline_cold", "baseline_warm"):
            if name in previous:
                runs[name] = {**previous[name], "carried_over_from_previous_run": True}
    if not args.no_large:
        runs["large_n10000_d20_k5"] = _run("large", "", cold=False)
    elif "large_n10000_d20_k5" in previous:
        runs["large_n10000_d20_k5"] = {**previous["large_n10000_d20_k5"], "carried_over_from_previous_run": True}
    if args.seeds:
        runs["convergence_by_seed"] = _run("seeds", args.seeds, cold=False)
    ratios = {}
    if "baseline_cold" in runs:
        ratios["cold_baseline_over_ours"] = runs["baseline_cold"]["wall_s"] / runs["ours_cold"]["wall_s"]
        ratios["warm_baseline_over_ours"] = runs["baseline_warm"]["wall_s"] / runs["ours_warm"]["wall_s"]
        ratios["cold_baseline_over_ours_cpu"] = runs["baseline_cold"]["cpu_s"] / runs["ours_cold"]["cpu_s"]
        ratios["warm_baseline_over_ours_cpu"] = runs["baseline_warm"]["cpu_s"] / runs["ours_warm"]["cpu_s"]
        if "ours_cold_auto" in runs and not runs["ours_cold_auto"].get("carried_over_from_previous_run"):
            ratios["cold_baseline_over_ours_auto"] = runs["baseline_cold"]["wall_s"] / runs["ours_cold_auto"]["wall_s"]
            ratios["warm_baseline_over_ours_auto"] = runs["baseline_warm"]["wall_s"] / runs["ours_warm_auto"]["wall_s"]
    import arviz
    import numba
    import nutpie
    import pymc

    doc = {
        "benchmark": "bayes-gmm k-sweep 2..7, N=400 x 8 (true k=4), 2 chains x (1000 tune + 1000 draws)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "environment": {"jax_installed": importlib.util.find_spec("jax") is not None,
                        "numpyro_installed": importlib.util.find_spec("numpyro") is not None},
        "versions": {"pymc": pymc.__version__, "nutpie": nutpie.__version__, "arviz": arviz.__version__,
                     "numba": numba.__version__, "numpy": np.__version__},
        "targets": {"cold_s": 8, "warm_s": 3, "baseline_reported_cold_s": 73, "baseline_reported_warm_s": 38},
        "cpu_model": _cpu_model(),
        "runs": runs,
        "ratios": ratios,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1))
    print(f"{'run':28s} {'wall s':>8s} {'cpu s':>8s} {'load':>10s}  all runs (wall s)")
    for name, r in runs.items():
        every = " ".join(f"{w:.1f}" for w in r.get("all_wall_s", [r["wall_s"]]))
        print(f"{name:28s} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['load_before']:5.1f}/{r['load_after']:4.1f}  {every}")
    for name in ("ours_warm", "baseline_warm"):
        if name in runs:
            print(f"\n{name}: per k")
            for row in runs[name]["per_k"]:
                print("  ", {key: row[key] for key in row if key in ("k", "seconds", "converged", "rhat_max",
                                                                        "rhat_max_no_relabelling", "divergences",
                                                                        "empty_segments", "diffuse_segments",
                                                                        "duplicated_segments",
                                                                        "elpd_loo", "shares")})
    if "convergence_by_seed" in runs:
        print("\nconvergence by seed (ours, warm): k: status, draws per chain, R-hat")
        for row in runs["convergence_by_seed"]["seeds"]:
            cells = [f"k={r['k']}: {'ok' if r['converged'] else 'NOT'} {r['draws_per_chain']} {r['rhat_max']:.4f}"
                     for r in row["per_k"]]
            print(f"  seed {row['seed']} ({row['wall_s']:.1f} s, load {row['load']:.1f}): " + "; ".join(cells))
    print("\nratios:", ratios)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
