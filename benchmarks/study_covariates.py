"""Covariates on membership: interval coverage against planted truth, and equality with StepMix.

Not a speed benchmark (the one timing is a ratio to StepMix, side by side). Two parts:

1. **Coverage** (``--datasets`` per setting, default 200): data from
   :func:`latentseg.research.simulate.simulate_covariate_mixture` with planted coefficients; the
   mixture fitted without covariates (``fit_gmm`` / ``fit_lca``), then one-step, BCH and ML
   (:func:`latentseg.decide.covariates.covariate_effects`); the share of 95% intervals holding
   the planted value (non-intercept terms pooled and per term), the share of data sets whose
   no-effect covariate's interval holds 0, mean bias and the ratio of the mean standard error to
   the standard deviation of the estimates. Settings: Gaussian mixtures (k = 2 and 3, means 3 SD
   apart; k = 2 at 2 SD: weaker separation), latent class data (k = 2, 6 items, separation 0.6),
   and a survey-weighted sample (selection depends on the segment; weighted vs unweighted).
2. **StepMix 3.0.0** on the same data: one-step log-likelihood (StepMix evaluated at our
   estimates, and its own fitted maximum), ML three-step log-likelihood and ML / BCH coefficients
   from StepMix's own step-1 memberships; gmm (VVI = StepMix gaussian_diag) and lca, 5 seeds each;
   the one-step fit time of both programs (CPU seconds, interleaved, ratio).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/study_covariates.py [--datasets 200]``;
writes ``benchmarks/results/covariates.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentseg.decide.covariates import covariate_effects
from latentseg.models._mnlogit import covariate_design
from latentseg.models.gmm import fit_gmm
from latentseg.models.lca import fit_lca
from latentseg.research.simulate import simulate_covariate_mixture
from latentseg.result import SegmentationResult

OUT = Path(__file__).parent / "results" / "covariates.json"
METHODS = ("one-step", "bch", "ml")


def _align(res: SegmentationResult, labels: np.ndarray) -> tuple[int, dict[int, int]]:
    """The fitted segment holding most of each true segment: (reference for true 1, true -> fitted)."""
    k = res.k
    conf = np.array([[np.sum((labels == t + 1) & (res.assignment == f + 1)) for f in range(k)] for t in range(k)])
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-conf)
    mapping = {int(t) + 1: int(f) + 1 for t, f in zip(rows, cols)}
    return mapping[1], mapping


def _one_dataset(setting: dict[str, Any], seed: int) -> dict[str, list[tuple[int, str, float, float, float, float, float]]]:
    kind, k, n = setting["kind"], setting["k"], setting["n"]
    weighted = setting.get("weighted", False)
    if weighted:  # a Poisson sample from a population 20x larger; segment k oversampled 3x
        pop = simulate_covariate_mixture(20 * n, k, kind=kind, d=setting["d"], separation=setting["separation"],
                                         random_seed=seed)
        size = 3.0 ** ((pop.labels - 1) / (k - 1))
        pi = np.minimum(1.0, n * size / size.sum())
        take = np.random.default_rng(10_000 + seed).random(pi.size) < pi
        idx = pd.RangeIndex(int(take.sum()))
        data = pop.data.loc[take].set_axis(idx)
        cov = pop.covariates.loc[take].set_axis(idx)
        labels = pop.labels[take]
        w = 1.0 / pi[take]
        w = w / w.mean()
        truth_tab = pop.coefficients
    else:
        sim = simulate_covariate_mixture(n, k, kind=kind, d=setting["d"], separation=setting["separation"],
                                         random_seed=seed)
        data, cov, labels, w, truth_tab = sim.data, sim.covariates, sim.labels, None, sim.coefficients
    if kind == "scores":
        res = fit_gmm(data, k, random_seed=seed, n_init=2)
    else:
        res = fit_lca(data, k, random_seed=seed, n_init=10)
    ref, mapping = _align(res, labels)
    back = {f: t for t, f in mapping.items()}
    truth = {(int(r.segment), r.term): float(r.value) for r in truth_tab.itertuples()}
    out: dict[str, list[Any]] = {}
    variants = [(m, w) for m in METHODS] + ([(m + " unweighted", None) for m in METHODS] if weighted else [])
    for name, weights in variants:
        method = name.split()[0]
        eff = covariate_effects(res, cov, method, data=data, reference_segment=ref, sample_weight=weights)
        rows = []
        for r in eff.coefficients.itertuples():
            t = back[int(r.segment)]
            rows.append((t, r.term, truth[(t, r.term)], float(r.estimate), float(r.se), float(r.lower), float(r.upper)))
        out[name] = rows
    return out


def coverage(settings: list[dict[str, Any]], n_sets: int) -> list[dict[str, Any]]:
    report = []
    for setting in settings:
        t0 = time.process_time()
        runs = []
        failed = 0
        for seed in range(n_sets):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    runs.append(_one_dataset(setting, seed))
            except Exception as exc:  # noqa: BLE001 - a failed data set is counted, not hidden
                failed += 1
                print(f"  seed {seed}: {type(exc).__name__}: {exc}")
        entry: dict[str, Any] = {**setting, "datasets": len(runs), "failed": failed,
                                 "cpu_seconds": round(time.process_time() - t0, 1), "methods": {}}
        for name in runs[0]:
            cells = [c for r in runs for c in r[name]]
            df = pd.DataFrame(cells, columns=["segment", "term", "truth", "estimate", "se", "lower", "upper"])
            df["cover"] = (df.lower <= df.truth) & (df.truth <= df.upper)
            slopes = df[df.term != "(intercept)"]
            per_term = {}
            for (seg, term), g in df.groupby(["segment", "term"]):
                per_term[f"{seg}:{term}"] = {
                    "coverage": round(float(g.cover.mean()), 4),
                    "bias": round(float((g.estimate - g.truth).mean()), 4),
                    "se_over_sd": round(float(g.se.mean() / g.estimate.std()), 3),
                }
            null = df[df.term == "noise"]
            entry["methods"][name] = {
                "coverage_slopes": round(float(slopes.cover.mean()), 4),
                "coverage_all": round(float(df.cover.mean()), 4),
                "null_contains_0": round(float(((null.lower <= 0) & (0 <= null.upper)).mean()), 4),
                "per_term": per_term,
            }
            print(f"{setting['name']:<28} {name:<22} slopes {entry['methods'][name]['coverage_slopes']:.3f}  "
                  f"all {entry['methods'][name]['coverage_all']:.3f}  null-0 {entry['methods'][name]['null_contains_0']:.3f}")
        report.append(entry)
    return report


def stepmix_checks(seeds: range) -> dict[str, Any]:
    from stepmix.stepmix import StepMix

    rows = []
    t_ours, t_theirs = [], []
    for kind in ("scores", "levels"):
        for seed in seeds:
            sim = simulate_covariate_mixture(400, 3, kind=kind, d=5, random_seed=seed)
            d = covariate_design(sim.covariates)
            Y, X = d.X[:, 1:], sim.data.to_numpy()
            meas = "gaussian_diag" if kind == "scores" else "categorical"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c0 = time.process_time()
                if kind == "scores":
                    res = fit_gmm(sim.data, 3, random_seed=seed, covariates=sim.covariates, n_init=5)
                else:
                    res = fit_lca(sim.data, 3, random_seed=seed, covariates=sim.covariates, n_init=5)
                c1 = time.process_time()
                sm = StepMix(n_components=3, measurement=meas, structural="covariate", n_steps=1, n_init=5,
                             max_iter=5000, abs_tol=1e-12, rel_tol=0, random_state=seed, progress_bar=0)
                sm.fit(X, Y)
                c2 = time.process_time()
            t_ours.append(c1 - c0)
            t_theirs.append(c2 - c1)
            fitted = sm.lower_bound_ * 400
            params = sm.get_parameters()
            if kind == "scores":
                params["measurement"]["means"] = res.params["means"]
                params["measurement"]["covariances"] = res.params["variances"]
                params["measurement"]["precisions_cholesky"] = 1.0 / np.sqrt(res.params["variances"])
            else:
                params["measurement"]["pis"] = res.params["probs"].reshape(3, -1)
            params["structural"]["beta"] = np.c_[np.zeros(d.m), res.extras["covariate_coef"]].T
            sm.set_parameters(params)
            at_ours = sm.score(X, Y) * 400
            # three-step from StepMix's own step-1 memberships
            three = {}
            for corr in ("ML", "BCH"):
                s3 = StepMix(n_components=3, measurement=meas, structural="covariate", n_steps=3, correction=corr,
                             n_init=3, max_iter=5000, abs_tol=1e-13, rel_tol=0, random_state=seed, progress_bar=0,
                             structural_params={"max_iter": 200, "tol": 1e-12})
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s3.fit(X, Y)
                three[corr] = (s3.lower_bound_ * 400, s3.get_parameters()["structural"]["beta"], s3.predict_proba_class(X))
            z = three["ML"][2]
            r = SegmentationResult(model="gmm", k=3, respondent_ids=pd.RangeIndex(400), feature_names=("f",),
                                   memberships=z, centers=np.zeros((3, 1)), shares=z.mean(0), share_lower=z.mean(0),
                                   share_upper=z.mean(0), interval_method="none")
            ml = covariate_effects(r, sim.covariates, "ml")
            bch = covariate_effects(r, sim.covariates, "bch")
            beta_ml, beta_bch = three["ML"][1], three["BCH"][1]
            rows.append({
                "model": "gmm VVI" if kind == "scores" else "lca",
                "seed": seed,
                "one_step_loglik": res.criteria["loglik"],
                "stepmix_at_our_estimates_minus_ours": at_ours - res.criteria["loglik"],
                "stepmix_fitted_minus_ours": fitted - res.criteria["loglik"],
                "ml_loglik_stepmix_minus_ours": three["ML"][0] - ml.loglik,
                "ml_coef_max_abs_diff": float(np.abs(ml.coef - (beta_ml[1:] - beta_ml[0]).T).max()),
                "bch_coef_max_abs_diff": float(np.abs(bch.coef - (beta_bch[1:] - beta_bch[0]).T).max()),
            })
            print({k_: (f"{v:.2e}" if isinstance(v, float) else v) for k_, v in rows[-1].items()})
    return {
        "rows": rows,
        "max_abs": {key: float(max(abs(r[key]) for r in rows)) for key in rows[0] if key not in ("model", "seed", "one_step_loglik")},
        "one_step_cpu_seconds": {"ours": round(sum(t_ours), 3), "stepmix": round(sum(t_theirs), 3),
                                 "stepmix_over_ours": round(sum(t_theirs) / sum(t_ours), 2)},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--no-stepmix", action="store_true")
    args = ap.parse_args()
    settings = [
        {"name": "gmm k=2 n=400 sep=3", "kind": "scores", "k": 2, "n": 400, "d": 4, "separation": 3.0},
        {"name": "gmm k=2 n=400 sep=2", "kind": "scores", "k": 2, "n": 400, "d": 4, "separation": 2.0},
        {"name": "gmm k=3 n=600 sep=3", "kind": "scores", "k": 3, "n": 600, "d": 4, "separation": 3.0},
        {"name": "lca k=2 n=600 6 items s=0.6", "kind": "levels", "k": 2, "n": 600, "d": 6, "separation": 0.6},
        {"name": "gmm k=2 n=500 weighted", "kind": "scores", "k": 2, "n": 500, "d": 4, "separation": 3.0,
         "weighted": True},
    ]
    load0 = os.getloadavg()
    t0 = time.time()
    out: dict[str, Any] = {"coverage": coverage(settings, args.datasets)}
    if not args.no_stepmix:
        import stepmix

        out["stepmix"] = {"version": stepmix.__version__ if hasattr(stepmix, "__version__") else "3.0.0",
                          **stepmix_checks(range(5))}
    out["machine"] = {"cpu": platform.processor() or platform.machine(), "load_average_start": load0,
                      "load_average_end": os.getloadavg(), "wall_seconds": round(time.time() - t0, 1),
                      "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
