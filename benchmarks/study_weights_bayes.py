"""Calibration of the Bayesian mixtures' share intervals under survey weights (issue 16).

Not a speed benchmark. Over ``--datasets`` unequal-probability samples from
:func:`latentseg.research.simulate.simulate_weighted_survey` (selection depends on the segment and
on a region; the population shares are known), each data set is fitted three ways by the same
model, k = the truth:

- **adjusted**: ``sample_weight`` given, the weighted pseudo-posterior with its draws adjusted to
  the design-based covariance (Williams & Savitsky 2021), what latentseg reports;
- **pseudo-posterior**: the same fit's draws before the adjustment (a plain weighted likelihood,
  ``diagnostics["survey_weights"]["pseudo_posterior_shares"]``);
- **unweighted**: no weights (the sample treated as a simple random sample).

and we count how often the 95% interval of each segment's share covers the **population** share.
Fitted segments are matched to the true ones by the table of modal assignments (Hungarian
algorithm). The Monte Carlo SE is computed over data sets (a data set's shares miss together).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/study_weights_bayes.py [--datasets 200]

Writes ``benchmarks/results/weights_bayes.json`` (rewritten every 10 data sets, so a partial run
leaves its numbers). Parts run side by side (``--first-seed 101 --datasets 100 --out part2.json``)
are joined by ``--merge part1.json part2.json`` (rows pooled, the summary recomputed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "weights_bayes.json"

#: the designs: model, data kind, k, columns / items, separation (the simulator's units)
DESIGNS = {
    "bayes-gmm": {"kind": "scores", "k": 3, "d": 5, "separation": 4.0},
    "bayes-lca": {"kind": "levels", "k": 3, "d": 6, "separation": 0.6},
}
N = 300
#: sampler settings: short chains, no extension (the cost of 1,200 fits on 2 shared cores)
FIT = {"chains": 2, "draws": 500, "tune": 500, "max_draws": 500, "n_init": 5, "cores": 1}


def _match(labels: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """The fitted segment matched to each true segment (0-based), by the modal-assignment table."""
    from scipy.optimize import linear_sum_assignment

    tab = np.zeros((k, k))
    np.add.at(tab, (labels, z.argmax(axis=1)), 1.0)
    _, cols = linear_sum_assignment(-tab)
    return cols


def _one(model: str, seed: int) -> dict:
    from latentseg.models.bayes.engine import fit_bayes_gmm, fit_bayes_lca
    from latentseg.research.simulate import simulate_weighted_survey

    des = DESIGNS[model]
    k = des["k"]
    s = simulate_weighted_survey(N, k=k, kind=des["kind"], d=des["d"], separation=des["separation"],
                                 random_seed=seed)
    X = s.data.drop(columns=["region"], errors="ignore")
    labels = np.asarray(s.labels) - 1
    pop = np.asarray(s.population_shares, dtype=float)
    fit = fit_bayes_gmm if model == "bayes-gmm" else fit_bayes_lca
    row: dict = {"seed": seed, "n": int(len(X)), "population": pop.round(4).tolist(),
                 "sample": np.asarray(s.sample_shares).round(4).tolist()}
    for label, w in (("weighted", s.weights), ("unweighted", None)):
        t0 = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fit(X, k, random_seed=seed, sample_weight=w, **FIT)
        cols = _match(labels, r.memberships, k)
        ints = {"adjusted" if w is not None else "unweighted": (r.shares, r.share_lower, r.share_upper)}
        if w is not None:
            pp = r.diagnostics["survey_weights"]["pseudo_posterior_shares"]
            ints["pseudo_posterior"] = tuple(np.asarray(pp[key]) for key in ("mean", "lower", "upper"))
            row["design_effect"] = r.diagnostics["survey_weights"]["design_effect"]
            row["effective_n"] = r.diagnostics["survey_weights"]["effective_n"]
        for name, (m, lo, hi) in ints.items():
            m, lo, hi = (np.asarray(a, dtype=float)[cols] for a in (m, lo, hi))
            row[name] = {"mean": m.round(4).tolist(), "lower": lo.round(4).tolist(), "upper": hi.round(4).tolist(),
                         "covered": ((pop >= lo) & (pop <= hi)).astype(int).tolist()}
        row[f"{label}_converged"] = bool(r.converged)
        row[f"{label}_rhat_max"] = float(r.diagnostics["rhat_max"])
        row[f"{label}_cpu_s"] = round(time.process_time() - t0, 3)
    return row


def _summary(rows: list[dict]) -> dict:
    out: dict = {}
    for name in ("adjusted", "pseudo_posterior", "unweighted"):
        cov = np.array([np.mean(r[name]["covered"]) for r in rows])
        width = np.array([np.subtract(r[name]["upper"], r[name]["lower"]) for r in rows])
        bias = np.array([np.subtract(r[name]["mean"], r["population"]) for r in rows])
        conv = [r["weighted_converged" if name != "unweighted" else "unweighted_converged"] for r in rows]
        cov_conv = cov[np.array(conv, dtype=bool)]
        out[name] = {
            "coverage": float(cov.mean()),
            "mc_se": float(cov.std(ddof=1) / np.sqrt(cov.size)) if cov.size > 1 else None,
            "coverage_by_segment": np.mean([r[name]["covered"] for r in rows], axis=0).round(4).tolist(),
            "mean_width_by_segment": width.mean(axis=0).round(4).tolist(),
            "bias_by_segment": bias.mean(axis=0).round(4).tolist(),
            "rmse_by_segment": np.sqrt((bias ** 2).mean(axis=0)).round(4).tolist(),
            "converged_share": float(np.mean(conv)),
            "coverage_converged_fits": float(cov_conv.mean()) if cov_conv.size else None,
        }
    out["datasets"] = len(rows)
    out["design_effect_median"] = float(np.median([r["design_effect"] for r in rows]))
    out["effective_n_median"] = float(np.median([r["effective_n"] for r in rows]))
    return out


def _write(rows: dict, args: argparse.Namespace, started: float, load_start: tuple, extra: dict | None = None) -> None:
    import latentseg

    res = {
        "what": "coverage of 95% share intervals of the population shares under an unequal-probability design",
        "designs": {m: {**d, "n": N} for m, d in DESIGNS.items()},
        "fit": FIT,
        "datasets_requested": args.datasets,
        "summary": {m: _summary(r) for m, r in rows.items() if r},
        "rows": rows,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_start": load_start, "load_now": os.getloadavg()},
        "wall_s": round(time.time() - started, 1),
        "cpu_s": round(time.process_time(), 1),
        "python": sys.version.split()[0],
        "latentseg": getattr(latentseg, "__version__", "dev"),
        **(extra or {}),
    }
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))


def _merge(args: argparse.Namespace) -> None:
    """Pool the rows of several runs (parts of one study run side by side) into ``args.out``."""
    parts = [json.loads(Path(p).read_text()) for p in args.merge]
    rows: dict = {}
    for part in parts:
        for m, r in part["rows"].items():
            rows.setdefault(m, []).extend(r)
    for m in rows:
        seeds = [r["seed"] for r in rows[m]]
        if len(set(seeds)) != len(seeds):
            raise SystemExit(f"the parts overlap (model {m}): each data set seed must appear once")
        rows[m].sort(key=lambda r: r["seed"])
    args.datasets = max(len(r) for r in rows.values())
    extra = {"parts": [{"file": str(p), "wall_s": q["wall_s"], "cpu_s": q["cpu_s"], "machine": q["machine"]}
                       for p, q in zip(args.merge, parts)],
             "cpu_s_total": round(sum(q["cpu_s"] for q in parts), 1)}
    _write(rows, args, time.time(), tuple(parts[0]["machine"]["load_start"]), extra)
    print(json.dumps({m: _summary(r) for m, r in rows.items()}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--models", default="bayes-gmm,bayes-lca")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--merge", nargs="+", help="join the JSON files of parts run side by side into --out")
    args = ap.parse_args()
    if args.merge:
        _merge(args)
        return
    started = time.time()
    load_start = os.getloadavg()
    models = args.models.split(",")
    rows: dict = {m: [] for m in models}
    for i in range(args.datasets):
        for m in models:
            rows[m].append(_one(m, args.first_seed + i))
        if (i + 1) % 10 == 0 or i + 1 == args.datasets:
            _write(rows, args, started, load_start)
            summ = {m: {key: round(v["coverage"], 3) for key, v in _summary(r).items() if isinstance(v, dict)}
                    for m, r in rows.items()}
            print(f"{i + 1} data sets, {time.time() - started:.0f} s: {summ}", flush=True)
    print(json.dumps({m: _summary(r) for m, r in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
