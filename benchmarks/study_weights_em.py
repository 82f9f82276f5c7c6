"""Coverage of the weighted EM share intervals on unequal-probability samples (issue 16).

Not a speed benchmark. Over ``--sets`` data sets from
:func:`latentseg.research.simulate.simulate_weighted_survey` (selection depends on the segment and
on a ``region`` profile column; the finite population's shares are known), each fitted with the
true k by the Gaussian mixture (``kind="scores"``) and the latent class model (``kind="levels"``)
with the survey weights, it records how often each segment's 95% share interval covers the
population share, for:

- ``reported``: the interval the weighted fit reports: Wilson at the effective n of the
  design-based sandwich (:func:`latentseg.models.lca.design_share_interval`,
  :func:`latentseg.models.gmm.design_share_interval`);
- ``linearised``: Wilson at each share's Taylor-linearised effective n, the memberships taken as
  known (:meth:`SegmentationResult.from_memberships` with ``sample_weight``);
- ``kish``: Wilson at Kish's effective n (one for every segment);
- ``bootstrap``: percentile interval of the weighted mean memberships over 200 resamples of the
  respondents (the fitted memberships kept: no refit);
- ``unweighted``: the unweighted fit's shares and Wilson interval (what latentseg did before).

Segments of each fit are matched to the true ones by the Hungarian algorithm on the
confusion of modal assignment and true label.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/study_weights_em.py [--sets 200] [--n 300]

Writes benchmarks/results/weights_em.json. ``--timing`` adds the cost of the weights: a fit with
weights all 1 (the unweighted fit's path, through the weighting code) against the unweighted
one, and a weighted fit against StepMix 3.0.0's weighted fit of the same model
(Gaussian ``VVI`` = StepMix ``gaussian_diag``; nominal latent class = ``categorical``) on one
n = 3,000 sample, best of 3 runs interleaved, with both programs' pseudo-log-likelihoods.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from latentseg._stats import weighted_share_interval
from latentseg.models._em import _HC_CACHE
from latentseg.models.gmm import fit_gmm
from latentseg.models.lca import fit_lca
from latentseg.research.simulate import simulate_weighted_survey

METHODS = ("reported", "linearised", "kish", "bootstrap", "unweighted")


def match(labels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Column order of ``z`` that best matches the true labels 1..k (Hungarian on agreement)."""
    from scipy.optimize import linear_sum_assignment

    k = z.shape[1]
    agree = np.zeros((k, k))
    np.add.at(agree, (labels - 1, z.argmax(axis=1)), 1.0)
    _, cols = linear_sum_assignment(-agree)
    return cols


def one_set(kind: str, seed: int, n: int, k: int, d: int, separation: float, boot: int = 200) -> dict[str, np.ndarray]:
    """Per method, whether each true segment's population share is inside its interval (k,)."""
    s = simulate_weighted_survey(n, k, kind=kind, d=d, separation=separation, random_seed=seed)
    w, truth = s.weights, s.population_shares
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "scores":
            rw = fit_gmm(s.data, k, covariance="VVI", random_seed=seed, sample_weight=w)
            ru = fit_gmm(s.data, k, covariance="VVI", random_seed=seed)
        else:
            rw = fit_lca(s.data, k, random_seed=seed, n_init=5, sample_weight=w)
            ru = fit_lca(s.data, k, random_seed=seed, n_init=5)
    out: dict[str, np.ndarray] = {}
    cw = match(s.labels, rw.memberships)
    out["reported"] = (rw.share_lower[cw] <= truth) & (truth <= rw.share_upper[cw])
    z = rw.memberships[:, cw]
    for method in ("linearised", "kish"):
        _, lo, hi, _ = weighted_share_interval(z, w, rw.shares[cw], method=method)
        out[method] = (lo <= truth) & (truth <= hi)
    g = np.random.default_rng(seed)
    reps = np.empty((boot, k))
    for b in range(boot):
        idx = g.integers(len(w), size=len(w))
        reps[b] = w[idx] @ z[idx] / w[idx].sum()
    lo, hi = np.percentile(reps, [2.5, 97.5], axis=0)
    out["bootstrap"] = (lo <= truth) & (truth <= hi)
    cu = match(s.labels, ru.memberships)
    out["unweighted"] = (ru.share_lower[cu] <= truth) & (truth <= ru.share_upper[cu])
    out["bias_weighted"] = rw.shares[cw] - truth
    out["bias_unweighted"] = ru.shares[cu] - truth
    return out


def study(kind: str, sets: int, n: int, k: int, d: int, separation: float, first_seed: int = 1) -> dict[str, object]:
    rows = [one_set(kind, seed, n, k, d, separation) for seed in range(first_seed, first_seed + sets)]
    res: dict[str, object] = {"kind": kind, "sets": sets, "n": n, "k": k, "d": d, "separation": separation,
                              "intervals": sets * k}
    for m in METHODS:
        cov = np.array([r[m] for r in rows], dtype=float)  # (sets, k)
        p = float(cov.mean())
        res[m] = {
            "coverage": p,
            "coverage_per_segment": cov.mean(axis=0).round(4).tolist(),
            "mc_se": float(np.sqrt(p * (1 - p) / cov.size)),
        }
    for key in ("bias_weighted", "bias_unweighted"):
        res[key] = np.mean([r[key] for r in rows], axis=0).round(4).tolist()
    return res


def timing(repeats: int = 3) -> dict[str, object]:
    """Seconds (best of ``repeats``, interleaved) of weighted and unweighted fits and StepMix's
    weighted fit, on one sample per kind, with the pseudo-log-likelihoods each reached."""
    from stepmix.stepmix import StepMix

    out: dict[str, object] = {}
    for kind in ("scores", "levels"):
        s = simulate_weighted_survey(3000, 3, kind=kind, d=6, random_seed=11,
                                     separation=5.0 if kind == "scores" else 0.8)
        w = s.weights
        if kind == "scores":
            X = s.data.to_numpy(float)
            ours = lambda sw: fit_gmm(X, 3, covariance="VVI", random_seed=1, n_init=5, sample_weight=sw)  # noqa: E731
            peer = StepMix(n_components=3, measurement="gaussian_diag", n_init=5, random_state=1, verbose=0,
                           progress_bar=0, abs_tol=1e-6 * len(w))
            data = X
        else:
            codes = s.data.to_numpy(int)
            ours = lambda sw: fit_lca(s.data, 3, random_seed=1, n_init=5, sample_weight=sw)  # noqa: E731
            peer = StepMix(n_components=3, measurement="categorical", n_init=5, random_state=1, verbose=0,
                           progress_bar=0, abs_tol=1e-8)
            data = codes
        times: dict[str, list[float]] = {"weighted": [], "unit_weights": [], "unweighted": [], "stepmix_weighted": []}
        ll: dict[str, float] = {}
        for _ in range(repeats):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _HC_CACHE.clear()  # the hierarchical start's tree is cached per data: each fit builds its own
                t = time.perf_counter()
                rw = ours(w)
                times["weighted"].append(time.perf_counter() - t)
                _HC_CACHE.clear()
                t = time.perf_counter()
                ours(np.ones(len(w)))
                times["unit_weights"].append(time.perf_counter() - t)
                _HC_CACHE.clear()
                t = time.perf_counter()
                ours(None)
                times["unweighted"].append(time.perf_counter() - t)
                t = time.perf_counter()
                peer.fit(data, sample_weight=w)
                times["stepmix_weighted"].append(time.perf_counter() - t)
            ll = {"ours": rw.criteria["loglik"], "stepmix": float(peer.score(data, sample_weight=w) * w.sum())}
        best = {key: min(v) for key, v in times.items()}
        out[kind] = {
            "n": len(w), "seconds_best": best, "runs": times, "pseudo_loglik": ll,
            # the cost of the weighting code: weights all 1 follow the unweighted fit's path exactly
            "unit_weights_over_unweighted": best["unit_weights"] / best["unweighted"],
            "stepmix_over_ours_weighted": best["stepmix_weighted"] / best["weighted"],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=200)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--timing", action="store_true", help="also time weighted fits against unweighted and StepMix")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = {
        "what": "coverage of 95% share intervals of weighted EM fits (population shares), see docstring",
        "studies": [
            study("scores", args.sets, args.n, 3, 4, 5.0),
            study("scores", args.sets, args.n, 3, 4, 3.5),  # overlapping segments
            study("levels", args.sets, args.n, 3, 6, 0.8),
            study("levels", args.sets, args.n, 3, 6, 0.6),  # overlapping classes: finite-sample bias
        ],
        "seconds": round(time.perf_counter() - t0, 1),
        "load_average": os.getloadavg(),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.timing:
        out["timing"] = timing()
        for kind, t in out["timing"].items():
            print(kind, "unit weights / unweighted", round(t["unit_weights_over_unweighted"], 2),
                  "StepMix / ours (weighted)", round(t["stepmix_over_ours_weighted"], 2), t["pseudo_loglik"])
    for st in out["studies"]:
        print(st["kind"], st["separation"], {m: round(st[m]["coverage"], 4) for m in METHODS}, "MC SE", round(st["linearised"]["mc_se"], 4))
    path = Path(__file__).parent / "results" / "weights_em.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print("wrote", path, f"({out['seconds']} s)")


if __name__ == "__main__":
    main()
