"""Bayesian Gaussian mixture at scale: NumPyro's NUTS on the JAX log density, on a GPU.

What is timed, phase by phase, in one process:

* **import**: numpy, JAX, NumPyro and the latentseg modules used;
* **simulate**: ``simulate_gaussian_mixture(n, k=5, d=20, separation=3.0, random_seed=SEED)``;
* **family**: ``GaussianFamily`` (centring, the ``[x^2, x]`` design ``F``);
* **em**: the EM start as ``fit_bayes_gmm`` does it (``family.em_start``, ``--n-init`` starts);
* **logp**: the JAX log density and gradient on the device, jitted: first call (compile) and
  the mean of later calls; beside it the numba kernel's time per call on the CPU, for scale;
* **sampling**: :func:`latentseg.models.bayes._jax_kernels.sample_numpyro`, 2 chains x (1000 warm-up
  + 1000 draws) by default. Its wall time is split into **compile** (the union of the
  intervals JAX reports through ``jax.monitoring`` for tracing, lowering and XLA compilation)
  and **run** (the rest).

Then, from the draws relabelled to the EM solution: rank-normalised split R-hat (max over the
weights, means and sds) and bulk ESS (min), computed here with numpy / scipy (Vehtari et al.
2021; no ArviZ needed), divergences, tree depth, leapfrog steps, step sizes; the posterior mean
weights against the true shares (components matched to the true segments by the Hungarian
algorithm on the means); peak device memory (``memory_stats()["peak_bytes_in_use"]`` where the
device reports it); device and library versions.

Needs only numpy, scipy, pandas, JAX and NumPyro (and numba for the CPU comparison): no PyMC,
PyTensor, ArviZ or nutpie, no network.

Usage (from the repository root)::

    python benchmarks/bench_bayes_gpu.py                         # N = 1,000,000 x 20, k = 5
    OMP_NUM_THREADS=1 python benchmarks/bench_bayes_gpu.py --n 20000 --draws 200 --tune 200

Writes ``benchmarks/results/bayes_gpu.json`` (or ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing latentseg
    sys.path.insert(0, str(ROOT))
OUT = HERE / "results" / "bayes_gpu.json"
SEED = 2026


# ------------------------------------------------------------------------ diagnostics (numpy)
def _rank_normal(x: Any) -> Any:
    """Normal scores of the ranks of all draws of x (chains, draws) pooled (Blom offsets)."""
    import numpy as np
    from scipy.special import ndtri
    from scipy.stats import rankdata

    r = rankdata(x.ravel(), method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25)).astype(np.float64)


def _split(x: Any) -> Any:
    """(chains, draws) -> (2 chains, draws // 2): first and second halves as separate chains."""
    import numpy as np

    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _rhat_plain(x: Any) -> float:
    import numpy as np

    m, n = x.shape
    w = x.var(axis=1, ddof=1).mean()
    b = n * x.mean(axis=1).var(ddof=1)
    if not np.isfinite(w) or w <= 0:
        return float("nan")
    return float(np.sqrt(((n - 1) / n * w + b / n) / w))


def rhat_rank(x: Any) -> float:
    """Rank-normalised split R-hat of draws (chains, draws): max of the bulk and folded values."""
    import numpy as np

    s = _split(x)
    bulk = _rhat_plain(_rank_normal(s))
    tail = _rhat_plain(_rank_normal(np.abs(s - np.median(s))))
    return max(bulk, tail)


def ess_bulk(x: Any) -> float:
    """Bulk ESS of draws (chains, draws): split, rank-normalised, Geyer's initial monotone sequence."""
    import numpy as np

    z = _rank_normal(_split(x))
    m, n = z.shape
    if n < 4:
        return float("nan")
    zc = z - z.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(zc, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n  # biased autocovariance
    w = (acov[:, 0] * n / (n - 1)).mean()
    b = n * z.mean(axis=1).var(ddof=1) if m > 1 else 0.0
    var_plus = (n - 1) / n * w + b / n
    if var_plus <= 0:
        return float("nan")
    rho = 1.0 - (w - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    npairs = n // 2
    pairs = rho[0 : 2 * npairs : 2] + rho[1 : 2 * npairs : 2]
    stop = np.flatnonzero(pairs <= 0)
    pairs = pairs[: stop[0]] if stop.size else pairs  # initial positive sequence
    pairs = np.minimum.accumulate(pairs)  # initial monotone sequence
    tau = max(-1.0 + 2.0 * float(pairs.sum()), 1.0 / np.log10(m * n))
    return float(m * n / tau)


def _diagnostics(params: dict[str, Any]) -> dict[str, Any]:
    rh: dict[str, float] = {}
    es: dict[str, float] = {}
    for name in ("weights", "means", "sds"):
        arr = params[name]
        flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
        vals_r = [rhat_rank(flat[:, :, i]) for i in range(flat.shape[2])]
        vals_e = [ess_bulk(flat[:, :, i]) for i in range(flat.shape[2])]
        rh[name] = max(vals_r)
        es[name] = min(vals_e)
    return {
        "rhat_max": max(rh.values()),
        "rhat_max_by_parameter": rh,
        "ess_bulk_min": min(es.values()),
        "ess_bulk_min_by_parameter": es,
    }


# ------------------------------------------------------------------------------- timing helpers
class CompileTimer:
    """Wall time JAX spends tracing, lowering and compiling, from ``jax.monitoring`` time spans
    (the union of the intervals, so nested events are not counted twice)."""

    EVENTS = ("/jax/core/compile/",)

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.available = False

    def _listener(self, event: str, start: float, end: float, **_: Any) -> None:
        if event.startswith(self.EVENTS):
            self.spans.append((start, end))

    def __enter__(self) -> CompileTimer:
        import jax.monitoring as mon

        try:
            mon.register_event_time_span_listener(self._listener)
            self.available = True
        except AttributeError:  # older JAX: no time spans
            self.available = False
        self.spans.clear()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.available:
            import jax.monitoring as mon

            try:
                mon.unregister_event_time_span_listener(self._listener)
            except (AttributeError, AssertionError, ValueError):
                pass

    def seconds(self) -> float | None:
        if not self.available:
            return None
        total, cur = 0.0, None
        for s, e in sorted(self.spans):
            if cur is None or s > cur[1]:
                if cur is not None:
                    total += cur[1] - cur[0]
                cur = [s, e]
            else:
                cur[1] = max(cur[1], e)
        if cur is not None:
            total += cur[1] - cur[0]
        return total


def _memory(device: Any) -> dict[str, Any]:
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory stats
        stats = None
    if not stats:
        return {"peak_bytes_in_use": None, "bytes_in_use": None, "bytes_limit": None}
    return {key: stats.get(key) for key in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")}


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "numpyro", "numpy", "scipy", "pandas", "numba", "jax-cuda12-plugin", "jax-cuda13-plugin"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        from latentseg._version import __version__

        out["latentseg"] = __version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _match_truth(X: Any, z: Any, post_means: Any, post_weights: Any, scale: Any) -> dict[str, Any]:
    """Posterior mean weights against the realised true shares, components matched to the true
    segments (Hungarian algorithm on the standardised means)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    Xv = np.asarray(X, dtype=float)
    segs = np.unique(z)
    true_means = np.stack([Xv[z == s].mean(axis=0) for s in segs])
    true_w = np.array([(z == s).mean() for s in segs])
    cost = np.square((post_means[:, None, :] - true_means[None, :, :]) / scale).sum(axis=-1)
    rows, cols = linear_sum_assignment(cost)
    order = rows[np.argsort(cols)]  # posterior component matched to true segment j
    est = post_weights[order]
    return {
        "true_shares": [float(v) for v in true_w],
        "posterior_mean_shares": [float(v) for v in est],
        "max_abs_share_error": float(np.max(np.abs(est - true_w))),
        "max_mean_error_in_sd": float(np.sqrt(cost[order, np.arange(len(segs))]).max()),
    }


# ------------------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    phases: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    import jax
    import numpy as np
    import numpyro

    from latentseg.models.bayes._jax_kernels import _family_args, gmm_diag_logp_jax, sample_numpyro
    from latentseg.models.bayes._relabel import relabel_draws
    from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
    from latentseg.research.simulate import simulate_gaussian_mixture

    phases["import_s"] = time.perf_counter() - t0
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pymc", "pytensor", "arviz", "nutpie"})

    device = jax.devices()[0]
    t0 = time.perf_counter()
    X, z = simulate_gaussian_mixture(args.n, k=args.k, d=args.d, separation=args.separation, random_seed=args.seed)
    phases["simulate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    family = GaussianFamily(X, args.k, "diag", GMMPriors())
    phases["family_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    em = family.em_start(args.seed + 1, args.n_init)
    start = family.start_params(em)
    phases["em_s"] = time.perf_counter() - t0

    # ---- the log density alone: compile, then time per call (device), numba for scale (CPU)
    static, (F, cst, m0, s0, l0) = _family_args(family)

    def logp(theta: Any) -> Any:
        return gmm_diag_logp_jax(theta, F, cst, static["k"], static["d"], static["alpha"], m0, s0, l0,
                                 static["logsd_scale"])

    vg = jax.jit(jax.value_and_grad(logp))
    theta0 = family.theta_from_params(start)
    t0 = time.perf_counter()
    jax.block_until_ready(vg(theta0))
    phases["logp_compile_s"] = time.perf_counter() - t0
    reps = args.logp_repeats
    t0 = time.perf_counter()
    for _ in range(reps):
        out = vg(theta0)
    jax.block_until_ready(out)
    logp_call_s = (time.perf_counter() - t0) / reps
    numba_call_s = logp_rel_diff = grad_rel_diff = None
    if not args.no_numba:
        try:
            kernel = family.kernel()
            grad = np.empty(theta0.size)
            kernel(theta0, grad)  # compile / load from cache
            t0 = time.perf_counter()
            nrep = max(1, min(reps, int(2e7 // max(1, args.n * args.d))))
            for _ in range(nrep):
                kernel(theta0, grad)
            numba_call_s = (time.perf_counter() - t0) / nrep
            lp_numba = kernel(theta0, grad)
            logp_rel_diff = abs(float(out[0]) - lp_numba) / abs(lp_numba)
            grad_rel_diff = float(np.abs(np.asarray(out[1]) - grad).max() / np.abs(grad).max())
        except ImportError:
            numba_call_s = None

    # ---- sampling
    timer = CompileTimer()
    t0 = time.perf_counter()
    with timer:
        res = sample_numpyro(family, start, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                             target_accept=args.target_accept, progressbar=args.progress,
                             chain_method=args.chain_method)
    sample_wall = time.perf_counter() - t0
    compile_s = timer.seconds()
    phases["sample_wall_s"] = sample_wall
    phases["sample_compile_s"] = compile_s if compile_s is not None else float("nan")
    phases["sample_run_s"] = sample_wall - compile_s if compile_s is not None else float("nan")
    mem = _memory(device)

    # ---- diagnostics after relabelling to the EM solution
    t0 = time.perf_counter()
    params, perms = relabel_draws(res["params"], start, family.relabel_cost, family.segment_keys)
    switched = float(np.mean(np.any(perms != np.arange(args.k), axis=-1)))
    diag = _diagnostics(params)
    w_mean = params["weights"].mean(axis=(0, 1))
    truth = _match_truth(X.to_numpy(), z, params["means"].mean(axis=(0, 1)), w_mean, family.scale)
    phases["diagnostics_s"] = time.perf_counter() - t0
    phases["total_s"] = time.perf_counter() - t_all

    steps = res["num_steps"]
    return {
        "benchmark": "bayes_gpu",
        "data": {"n": args.n, "d": args.d, "k": args.k, "separation": args.separation, "seed": args.seed,
                 "complete": bool(family.F.shape[1] == 2 * args.d)},
        "sampling": {"draws": args.draws, "tune": args.tune, "chains": args.chains,
                     "target_accept": args.target_accept, "chain_method": args.chain_method or "default",
                     "engine": res["info"]["engine"], "em_n_init": args.n_init},
        "device": {"platform": device.platform, "kind": getattr(device, "device_kind", str(device)),
                   "count": jax.device_count(), "x64": bool(jax.config.read("jax_enable_x64")),
                   "host": platform.node(), "cpu_count": os.cpu_count()},
        "versions": _versions(),
        "imported_heavy_modules": heavy,
        "phases_s": phases,
        "logp_grad_per_call_s": {"jax_device": logp_call_s, "numba_cpu": numba_call_s, "repeats": reps,
                                 "jax_vs_numba_logp_rel_diff": logp_rel_diff,
                                 "jax_vs_numba_grad_rel_diff": grad_rel_diff},
        "memory": mem,
        "diagnostics": {
            **diag,
            "divergences": int(res["diverging"].sum()),
            "tree_depth_mean": float(res["tree_depth"].mean()),
            "tree_depth_max": float(res["tree_depth"].max()),
            "leapfrog_steps_per_draw_mean": float(steps.mean()),
            "leapfrog_steps_draws_total": int(steps.sum()),
            "step_size": [float(v) for v in res["step_size"]],
            "label_switching_share": switched,
        },
        "weights": {"em": [float(v) for v in start["weights"]], "posterior_mean": [float(v) for v in w_mean], **truth},
    }


def _table(r: dict[str, Any]) -> str:
    p, d, g = r["phases_s"], r["diagnostics"], r["logp_grad_per_call_s"]

    def f(v: Any, fmt: str = "{:.2f}") -> str:
        return "n/a" if v is None or (isinstance(v, float) and v != v) else fmt.format(v)

    mem = r["memory"]["peak_bytes_in_use"]
    rows = [
        ("device", f"{r['device']['kind']} ({r['device']['platform']}), x64={r['device']['x64']}"),
        ("data", f"N={r['data']['n']:,} x d={r['data']['d']}, k={r['data']['k']}"),
        ("sampling", f"{r['sampling']['chains']} chains x ({r['sampling']['tune']} tune + {r['sampling']['draws']} draws), "
                     f"{r['sampling']['engine']}"),
        ("import", f(p["import_s"]) + " s"),
        ("simulate", f(p["simulate_s"]) + " s"),
        ("family (F)", f(p["family_s"]) + " s"),
        (f"EM ({r['sampling']['em_n_init']} starts)", f(p["em_s"]) + " s"),
        ("logp+grad compile", f(p["logp_compile_s"]) + " s"),
        ("logp+grad per call", f"{f(g['jax_device'], '{:.3e}')} s device; numba CPU {f(g['numba_cpu'], '{:.3e}')} s"),
        ("sampling: compile", f(p["sample_compile_s"]) + " s"),
        ("sampling: run", f(p["sample_run_s"]) + " s"),
        ("sampling: wall", f(p["sample_wall_s"]) + " s"),
        ("total", f(p["total_s"]) + " s"),
        ("peak device memory", "n/a" if mem is None else f"{mem / 2**30:.2f} GiB"),
        ("R-hat max (rank)", f(d["rhat_max"], "{:.4f}")),
        ("bulk ESS min", f(d["ess_bulk_min"], "{:.0f}")),
        ("divergences", str(d["divergences"])),
        ("tree depth mean / max", f"{d['tree_depth_mean']:.2f} / {d['tree_depth_max']:.0f}"),
        ("leapfrog steps / draw", f(d["leapfrog_steps_per_draw_mean"], "{:.1f}")),
        ("shares: posterior", " ".join(f"{v:.4f}" for v in r["weights"]["posterior_mean_shares"])),
        ("shares: truth", " ".join(f"{v:.4f}" for v in r["weights"]["true_shares"])),
        ("max |share error|", f(r["weights"]["max_abs_share_error"], "{:.4f}")),
    ]
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--separation", type=float, default=3.0)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--target-accept", type=float, default=0.8)
    ap.add_argument("--chain-method", choices=["vectorized", "parallel", "sequential"], default=None,
                    help="default: vectorized on GPU, parallel/sequential on CPU")
    ap.add_argument("--n-init", type=int, default=10, help="EM starts (fit_bayes_gmm's default: 10)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--logp-repeats", type=int, default=20)
    ap.add_argument("--no-numba", action="store_true", help="skip the numba CPU timing of the log density")
    ap.add_argument("--progress", action="store_true", help="NumPyro's progress bar")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
