"""Calibration of the 95% credible intervals on the segment weights (not part of CI).

For each setting (sample size x separation) many data sets are simulated from a known 3-segment
Gaussian mixture whose population weights are (0.5, 0.3, 0.2); segment sizes are multinomial
draws (``exact_shares=False``), so the data vary as real samples do. Each data set is fitted with
``fit_bayes_gmm`` (k = 3, 2 chains x draws + draws, default 1000); the fitted segments are
matched to the true ones by the Hungarian algorithm on the distances between the fitted centers
and the true segments' means (matching on what a segment *is*; the earlier matching on the
table of modal assignments is recorded beside it: with strongly overlapping segments it can pair
a fitted segment with the wrong true one); we record whether each true weight lies inside its
95% equal-tailed interval.

The fits use ``fit_bayes_gmm``'s default covariance, ``"diag"`` (VVI, each segment its own sds);
``--covariance auto`` (EEI or VVI by the EM BIC) or ``EEI`` fit the other structures. The
segments' spreads are equal by default (the simulator's ``"diagonal"``, mclust EEI);
``--spread unequal`` simulates each segment with its own variances (``"diagonal-unequal"``, VVI,
volumes differing up to 4x). Results: ``calibration.json`` (VVI, equal spreads),
``calibration_auto.json``, ``calibration_unequal.json`` (VVI), ``calibration_unequal_auto.json``.

A calibrated interval covers the truth in about 95% of data sets. Each setting's summary gives
the Monte Carlo standard error of its coverage, computed over data sets (a data set's three
weights are correlated: when one interval misses, another often does), and the share of misses
above and below the truth. With 100 data sets per setting that standard error was 1.1-2 points;
with 300 it is 0.6-1.1.

The fits whose EM solution classifies respondents poorly (relative entropy below 0.6, which a fit
reports as ``diagnostics["weak_separation"]``) are summarised apart by ``--entropy``.

``--long SETS`` refits the first SETS data sets at n = 500, separation 2.5 with 4 chains x (2000 +
4000) to check that the intervals are the posterior's and not too short chains'. ``--prior JSON``
refits the first ``--sets`` of them with other priors (e.g. ``{"sd_scale": 1.0}``): how much of the
miss the priors explain.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_calibration.py [--reps 100] [--draws 1000] [--entropy]
[--long 60] [--prior JSON --sets 60] [--covariance auto|diag|EEI] [--spread equal|unequal]
[--sizes 200,500] [--out FILE] [--merge FILE ...]``.
Results are appended after every data set to ``benchmarks/results/calibration.json`` (or
``--out``; a rerun resumes where it stopped) and summarised per setting. ``--sizes`` runs some
sample sizes only (two processes, one per core, each with its own ``--out``); ``--merge`` joins
such files into the output.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "calibration.json"
SHARES = np.array([0.5, 0.3, 0.2])
SIZES = (200, 500, 1000)
SEPARATIONS = (2.5, 4.0)
K, D = 3, 4


def _match(X: np.ndarray, truth: np.ndarray, centers: np.ndarray, k: int) -> np.ndarray:
    """perm[t] = fitted segment (0-based) matched to true segment t (0-based): the Hungarian
    algorithm on the squared distances between the fitted centers and the true segments' means."""
    true_means = np.stack([X[truth == t + 1].mean(axis=0) for t in range(k)])
    cost = np.square(true_means[:, None, :] - centers[None, :, :]).sum(axis=-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(k, dtype=int)
    perm[rows] = cols
    return perm


def _match_by_assignment(truth: np.ndarray, assignment: np.ndarray, k: int) -> np.ndarray:
    """The earlier matching, kept for comparison: the table of modal assignments against the true
    labels. With strongly overlapping segments it can pair a fitted segment with the wrong true one
    (the modal assignments are ambiguous), which counts as a miss that is not the interval's."""
    table = np.zeros((k, k))
    np.add.at(table, (truth - 1, assignment - 1), 1)
    rows, cols = linear_sum_assignment(-table)
    perm = np.empty(k, dtype=int)
    perm[rows] = cols
    return perm


#: --spread -> the simulator's covariance structure
SPREADS = {"equal": "diagonal", "unequal": "diagonal-unequal"}


def _one(n: int, sep: float, rep: int, draws: int, covariance: str = "diag", spread: str = "equal") -> dict[str, Any]:
    from latentseg.models.bayes.engine import fit_bayes_gmm
    from latentseg.research.simulate import simulate_gaussian_mixture

    seed = int(1_000_000 * sep) + 1000 * n + rep
    X, z = simulate_gaussian_mixture(n, k=K, d=D, shares=SHARES, separation=sep, exact_shares=False,
                                     covariance=SPREADS[spread], random_seed=seed)  # type: ignore[arg-type]
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_bayes_gmm(X, K, draws=draws, tune=draws, chains=2, random_seed=seed, covariance=covariance)
    perm = _match(np.asarray(X, dtype=float), np.asarray(z), np.asarray(r.centers, dtype=float), K)
    alt = _match_by_assignment(z, r.assignment, K)
    lo, hi, mean = r.share_lower[perm], r.share_upper[perm], r.shares[perm]
    return {
        "n": n,
        "separation": sep,
        "rep": rep,
        "seed": seed,
        "seconds": time.perf_counter() - t,
        "covariance_fitted": r.settings["covariance"],
        "converged": bool(r.converged),
        "rhat_max": r.diagnostics["rhat_max"],
        "divergences": r.diagnostics["divergences"],
        "lower": lo.tolist(),
        "upper": hi.tolist(),
        "mean": mean.tolist(),
        "covered": ((lo <= SHARES) & (SHARES <= hi)).tolist(),
        "covered_matching_by_assignment": ((r.share_lower[alt] <= SHARES) & (SHARES <= r.share_upper[alt])).tolist(),
        "matchings_agree": bool(np.array_equal(perm, alt)),
        "realised_shares": (np.bincount(z, minlength=K + 1)[1:] / n).tolist(),
        "em_relative_entropy": r.diagnostics["em_relative_entropy"],
    }


def _em_relative_entropy(record: dict[str, Any], draws: int, covariance: str = "diag",
                         simulated: str = "diagonal") -> float:
    """The relative entropy of the EM solution that started a recorded fit (the quantity behind
    ``diagnostics["weak_separation"]``), recomputed for records made before fits reported it."""
    from latentseg.models.bayes.engine import _family_and_settings, prepare_start
    from latentseg.research.simulate import simulate_gaussian_mixture

    X, _ = simulate_gaussian_mixture(record["n"], k=K, d=D, shares=SHARES, separation=record["separation"],
                                     exact_shares=False, covariance=simulated, random_seed=record["seed"])  # type: ignore[arg-type]
    family, settings = _family_and_settings("bayes-gmm", X, K, record["seed"],
                                            {"draws": draws, "tune": draws, "chains": 2, "covariance": covariance})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = prepare_start(family, settings)[0]
    return float(em.criteria["relative_entropy"])


def _by_entropy(records: list[dict[str, Any]], cut: float) -> list[dict[str, Any]]:
    """Coverage of the fits whose EM solution classifies poorly (relative entropy below ``cut``,
    flagged ``weak_separation``) and of the others, per setting."""
    out = []
    for n in SIZES:
        for sep in SEPARATIONS:
            rows = [r for r in records if r["n"] == n and r["separation"] == sep and "em_relative_entropy" in r]
            for flagged in (True, False):
                part = [r for r in rows if (r["em_relative_entropy"] < cut) == flagged]
                if part:
                    cov = np.array([r["covered"] for r in part], dtype=float)
                    out.append({"n": n, "separation": sep, "weak_separation": flagged, "datasets": len(part),
                                "coverage_all_weights": float(cov.mean()),
                                "coverage_mc_se": float(cov.mean(axis=1).std(ddof=1) / np.sqrt(len(part)))
                                if len(part) > 1 else None})
    return out


def _refit_check(records: list[dict[str, Any]], n: int, sep: float, sets: int, options: dict[str, Any],
                 label: str, simulated: str = "diagonal") -> dict[str, Any]:
    """Refit the first ``sets`` data sets of one setting with other ``fit_bayes_gmm`` options and
    compare coverage, interval widths and bias with the default fits of the same data sets (a
    paired comparison: the same data sets, so the difference is the options')."""
    from latentseg.models.bayes.engine import fit_bayes_gmm
    from latentseg.research.simulate import simulate_gaussian_mixture

    base = {r["rep"]: r for r in records if r["n"] == n and r["separation"] == sep}
    if not base:
        raise SystemExit(f"no recorded fits at n = {n}, separation {sep}: run the study first")
    rows = []
    for rep in sorted(base)[:sets]:
        seed = base[rep]["seed"]
        X, z = simulate_gaussian_mixture(n, k=K, d=D, shares=SHARES, separation=sep, exact_shares=False,
                                         covariance=simulated, random_seed=seed)  # type: ignore[arg-type]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fit_bayes_gmm(X, K, random_seed=seed, **options)
        perm = _match(np.asarray(X, dtype=float), np.asarray(z), np.asarray(r.centers, dtype=float), K)
        lo, hi = r.share_lower[perm], r.share_upper[perm]
        rows.append({"rep": rep, "lower": lo.tolist(), "upper": hi.tolist(), "mean": r.shares[perm].tolist(),
                     "rhat_max": r.diagnostics["rhat_max"], "covered": ((lo <= SHARES) & (SHARES <= hi)).tolist()})
    default = [base[r["rep"]] for r in rows]

    def width(rs: list[dict[str, Any]]) -> list[float]:
        return np.mean([np.subtract(x["upper"], x["lower"]) for x in rs], axis=0).tolist()

    def bias(rs: list[dict[str, Any]]) -> list[float]:
        return (np.mean([x["mean"] for x in rs], axis=0) - SHARES).tolist()

    return {"check": label, "n": n, "separation": sep, "datasets": len(rows), "options": options,
            "coverage": float(np.mean([r["covered"] for r in rows])),
            "coverage_default_same_sets": float(np.mean([r["covered"] for r in default])),
            "mean_width": width(rows), "mean_width_default": width(default),
            "mean_bias": bias(rows), "mean_bias_default": bias(default),
            "share_rhat_over_1_01": float(np.mean([r["rhat_max"] > 1.01 for r in rows])),
            "records": rows}


def _summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n in SIZES:
        for sep in SEPARATIONS:
            rows = [r for r in records if r["n"] == n and r["separation"] == sep]
            if not rows:
                continue
            cov = np.array([r["covered"] for r in rows], dtype=float)
            per_set = cov.mean(axis=1)  # the data set is the unit: its weights' misses go together
            lower = np.array([r["lower"] for r in rows])
            cov_alt = np.array([r.get("covered_matching_by_assignment", r["covered"]) for r in rows], dtype=float)
            conv = np.array([r["converged"] for r in rows])
            width = np.array([np.subtract(r["upper"], r["lower"]) for r in rows])
            bias = np.array([np.subtract(r["mean"], SHARES) for r in rows])
            out.append(
                {
                    "n": n,
                    "separation": sep,
                    "datasets": len(rows),
                    "coverage_all_weights": float(cov.mean()),
                    "coverage_mc_se": float(per_set.std(ddof=1) / np.sqrt(len(rows))) if len(rows) > 1 else None,
                    "coverage_by_weight": [float(x) for x in cov.mean(axis=0)],
                    "miss_truth_below_interval": float((SHARES < lower).mean()),
                    "miss_truth_above_interval": float((SHARES > np.array([r["upper"] for r in rows])).mean()),
                    "coverage_matching_by_assignment": float(cov_alt.mean()),
                    "matchings_disagree": int(sum(not r.get("matchings_agree", True) for r in rows)),
                    "coverage_converged_only": float(cov[conv].mean()) if conv.any() else None,
                    "share_converged": float(conv.mean()),
                    "mean_interval_width": [float(x) for x in width.mean(axis=0)],
                    "mean_bias": [float(x) for x in bias.mean(axis=0)],
                    "covariance_fitted": {c: sum(r.get("covariance_fitted", "diag") == c for r in rows)
                                          for c in sorted({r.get("covariance_fitted", "diag") for r in rows})},
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--entropy", action="store_true",
                    help="add the EM solution's relative entropy to records made without it and summarise coverage by it")
    ap.add_argument("--long", type=int, default=0, metavar="SETS",
                    help="refit the first SETS data sets at n = 500, separation 2.5 with long chains")
    ap.add_argument("--prior", default="", metavar="JSON",
                    help='refit the first --sets data sets at n = 500, separation 2.5 with these prior options, '
                         'e.g. \'{"sd_scale": 1.0}\'')
    ap.add_argument("--sets", type=int, default=60)
    ap.add_argument("--covariance", default="diag", help="fit_bayes_gmm's covariance (default diag, its default)")
    ap.add_argument("--spread", default="equal", choices=sorted(SPREADS), help="the segments' spreads in the simulation")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="sample sizes to run, e.g. 200,500")
    ap.add_argument("--out", default="", help="results file (default: by --covariance and --spread)")
    ap.add_argument("--merge", nargs="+", default=[], metavar="FILE", help="join the records of these files into --out")
    args = ap.parse_args()
    name = "calibration" + ("_unequal" if args.spread == "unequal" else "") + (
        "" if args.covariance == "diag" else f"_{args.covariance.lower()}") + ".json"
    out = Path(args.out) if args.out else OUT.with_name(name)
    doc: dict[str, Any] = {"records": []}
    if out.exists():
        doc = json.loads(out.read_text())
    if args.merge:
        seen = {(r["n"], r["separation"], r["rep"]) for r in doc["records"]}
        for path in args.merge:
            part = json.loads(Path(path).read_text())
            doc.setdefault("design", part.get("design"))
            for r in part["records"]:
                if (r["n"], r["separation"], r["rep"]) not in seen:
                    doc["records"].append(r)
                    seen.add((r["n"], r["separation"], r["rep"]))
        doc["records"].sort(key=lambda r: (r["rep"], r["n"], r["separation"]))
        doc["design"]["sizes"] = sorted({r["n"] for r in doc["records"]})
        doc["summary"] = _summary(doc["records"])
        out.write_text(json.dumps(doc, indent=1))
        print(f"merged {len(doc['records'])} records -> {out}")
        return
    # the file's own design (its structure and simulated spreads) for checks on recorded fits
    design = doc.get("design") or {}
    covariance = design.get("covariance", args.covariance)
    simulated = design.get("spreads", SPREADS[args.spread])
    if args.long or args.prior:
        if args.long:
            check = _refit_check(doc["records"], 500, 2.5, args.long,
                                 {"draws": 4000, "tune": 2000, "chains": 4, "covariance": covariance},
                                 "long chains: 4 x (2000 tune + 4000 draws)", simulated)
            doc["long_chains_check"] = check
        else:
            options = {"covariance": covariance, **json.loads(args.prior)}
            check = _refit_check(doc["records"], 500, 2.5, args.sets, options, "prior sensitivity", simulated)
            doc.setdefault("prior_sensitivity", {})[json.dumps(json.loads(args.prior), sort_keys=True)] = check
        out.write_text(json.dumps(doc, indent=1))
        print({key: val for key, val in check.items() if key != "records"})
        return
    if args.entropy:
        from latentseg.models.bayes.engine import WEAK_SEPARATION_ENTROPY

        for rec in doc["records"]:
            if "em_relative_entropy" not in rec:
                rec["em_relative_entropy"] = _em_relative_entropy(rec, design.get("draws", args.draws), covariance,
                                                                  simulated)
        doc["coverage_by_weak_separation"] = {"relative_entropy_cut": WEAK_SEPARATION_ENTROPY,
                                              "settings": _by_entropy(doc["records"], WEAK_SEPARATION_ENTROPY)}
        out.write_text(json.dumps(doc, indent=1))
        print(f"{'n':>6s} {'sep':>5s} {'weak':>5s} {'sets':>5s} {'coverage':>9s} {'MC se':>6s}")
        for row in doc["coverage_by_weak_separation"]["settings"]:
            se = "" if row["coverage_mc_se"] is None else f"{row['coverage_mc_se']:6.3f}"
            print(f"{row['n']:6d} {row['separation']:5.1f} {row['weak_separation']!s:>5s} {row['datasets']:5d} "
                  f"{row['coverage_all_weights']:9.3f} {se:>6s}")
        return
    done = {(r["n"], r["separation"], r["rep"]) for r in doc["records"]}
    t0 = time.perf_counter()
    sizes = [int(x) for x in args.sizes.split(",")]
    for rep in range(args.reps):  # interleave settings so a partial run covers all of them
        for n in sizes:
            for sep in SEPARATIONS:
                if (n, sep, rep) in done:
                    continue
                doc["records"].append(_one(n, sep, rep, args.draws, args.covariance, args.spread))
                doc.update(
                    {
                        "design": {
                            "k": K,
                            "d": D,
                            "population_shares": SHARES.tolist(),
                            "sizes": sizes,
                            "covariance": args.covariance,
                            "spreads": SPREADS[args.spread],
                            "separations": list(SEPARATIONS),
                            "draws": args.draws,
                            "tune": args.draws,
                            "chains": 2,
                            "interval": "95% equal-tailed credible interval of each weight",
                        },
                        "summary": _summary(doc["records"]),
                        "elapsed_s_this_run": time.perf_counter() - t0,
                    }
                )
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(doc, indent=1))
    print(f"{'n':>6s} {'sep':>5s} {'sets':>5s} {'coverage':>9s} {'MC se':>6s} {'by weight':>22s} {'converged':>10s}")
    for s in doc["summary"]:
        by = " ".join(f"{x:.2f}" for x in s["coverage_by_weight"])
        se = "" if s["coverage_mc_se"] is None else f"{s['coverage_mc_se']:6.3f}"
        print(f"{s['n']:6d} {s['separation']:5.1f} {s['datasets']:5d} {s['coverage_all_weights']:9.3f} "
              f"{se:>6s} {by:>22s} "
              f"{s['share_converged']:10.2f}")


if __name__ == "__main__":
    main()
