"""Ingest benchmark: read, validate, clean and score a 100,000 x 40 survey, against pandas.read_csv.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ingest.py [--n 100000] [--outcomes 40] [--repeats 3]

The survey CSV is simulated once (``latentseg.research.simulate.simulate_survey``, 1-5 importance, 1-10
satisfaction, 1,500 planted bad respondents, 2% random missing ratings) and cached under
``benchmarks/_data/`` (gitignored). Every measurement runs in a fresh Python process, so caches
and allocator state do not carry over, and the best of ``--repeats`` runs is kept:

* peer: ``pandas.read_csv(path)`` alone;
* ours: ``read_survey`` (sniffing, column detection, validation) + ``clean`` +
  ``opportunity_scores`` + ``opportunity_landscape``.

Time is wall-clock of that work only (imports excluded); CPU time (``time.process_time``) is
recorded beside it because it is steadier on a shared machine. ``OMP_NUM_THREADS=1`` is set for
the workers, which also limits Arrow's thread pool (the reader parses with pyarrow) to one thread,
so both sides parse single-threaded. Memory is the process's peak resident
set size (``VmHWM``) minus its resident size just before the work started, i.e. what the work
itself needed at its peak; it is compared with the size of the DataFrame ``pandas.read_csv``
returns (``memory_usage(deep=True)``), and also with pandas' own peak. Targets (issue 2): time at
most 2x ``pandas.read_csv``; peak memory at most 3x the raw DataFrame.

Results are printed and written to ``benchmarks/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data"
RESULTS = HERE / "results" / "ingest.json"
SEED = 20261122
TIME_TARGET = 2.0
MEMORY_TARGET = 3.0


def _rss_kib(field: str) -> int:
    """VmRSS / VmHWM of this process in KiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak measured is the work's own."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def make_data(n: int, m: int) -> Path:
    """Simulate the survey CSV once; reuse it while it exists."""
    path = DATA / f"survey_{n}x{m}_seed{SEED}.csv"
    if path.exists():
        return path
    import pandas as pd

    from latentseg.research.simulate import simulate_survey

    DATA.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    survey, _ = simulate_survey(
        n, n_outcomes=m, n_segments=4, job_steps=8, straightliners=500, speeders=500, too_many_missing=500,
        missing_rate=0.02, random_seed=SEED,
    )
    frame = survey.to_frame()
    whole = [c for c in frame.columns if c.startswith(("imp_", "sat_"))] + ["plan_price", "duration"]
    frame = frame.assign(**{c: frame[c].round().astype("Int64") for c in whole})
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    print(f"simulated {n} x {m} survey -> {path} ({path.stat().st_size / 1e6:.1f} MB, "
          f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    del pd
    return path


# ----------------------------------------------------------------------------- workers
def _worker(kind: str, path: str) -> dict:
    """Run one measurement in this (fresh) process and return its numbers."""
    if kind == "pandas":
        import pandas as pd

        _reset_peak()
        base = _rss_kib("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        df = pd.read_csv(path)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = _rss_kib("VmHWM")
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "peak_increment_bytes": (peak - base) * 1024,
            "frame_bytes": int(df.memory_usage(deep=True).sum()),
            "shape": list(df.shape),
        }

    import warnings

    from latentseg.prepare.cleaning import clean
    from latentseg.io import read_survey
    from latentseg.prepare.scoring import opportunity_landscape, opportunity_scores

    _reset_peak()
    base = _rss_kib("VmRSS")
    stages: dict[str, float] = {}
    stages_cpu: dict[str, float] = {}
    memory: dict[str, dict[str, int]] = {}
    clock = time.perf_counter()
    start = clock
    cpu_clock = time.process_time()
    cpu_total = 0.0

    def mark(stage: str) -> None:
        # wall time of the stage; resident size now and the peak so far, both above the base
        nonlocal clock, cpu_clock, cpu_total
        now, cpu_now = time.perf_counter(), time.process_time()
        stages[stage] = now - clock
        stages_cpu[stage] = cpu_now - cpu_clock
        cpu_total += cpu_now - cpu_clock
        memory[stage] = {
            "rss_after_bytes": (_rss_kib("VmRSS") - base) * 1024,
            "peak_so_far_bytes": (_rss_kib("VmHWM") - base) * 1024,
        }
        clock, cpu_clock = time.perf_counter(), time.process_time()  # bookkeeping not counted

    # the flow the CLI runs: each stage's input is dropped once the next one has it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        survey = read_survey(path, imp_scale="1-5", sat_scale="1-10")
        mark("read_survey")
        survey, report = clean(survey)
        mark("clean")
        scores = opportunity_scores(survey)
        mark("opportunity_scores")
        landscape = opportunity_landscape(survey)
        mark("opportunity_landscape")
    peak = _rss_kib("VmHWM")
    return {
        "seconds": sum(stages.values()),
        "cpu_seconds": cpu_total,
        "wall_seconds_incl_bookkeeping": time.perf_counter() - start,
        "stages": stages,
        "stages_cpu": stages_cpu,
        "stage_memory": memory,
        "peak_increment_bytes": (peak - base) * 1024,
        "n_in": report.n_in,
        "n_out": report.n_out,
        "scores_shape": list(scores.shape),
        "landscape_rows": len(landscape),
    }


def _run(kind: str, path: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(path)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--outcomes", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="print only; do not write results/ingest.json")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return {}

    path = make_data(args.n, args.outcomes)
    runs: dict[str, list[dict]] = {"pandas": [], "latentseg": []}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        runs["pandas"].append(_run("pandas", path))
        runs["latentseg"].append(_run("pipeline", path))

    def best(kind: str, key: str) -> float:
        return min(r[key] for r in runs[kind])

    t_pd, t_ls = best("pandas", "seconds"), best("latentseg", "seconds")
    c_pd, c_ls = best("pandas", "cpu_seconds"), best("latentseg", "cpu_seconds")
    mem_pd, mem_ls = best("pandas", "peak_increment_bytes"), best("latentseg", "peak_increment_bytes")
    frame_bytes = runs["pandas"][0]["frame_bytes"]
    fastest = min(runs["latentseg"], key=lambda r: r["seconds"])
    leanest = min(runs["latentseg"], key=lambda r: r["cpu_seconds"])
    import numpy
    import pandas

    result = {
        "benchmark": "ingest",
        "what": "read + validate + clean + opportunity scores + landscape vs pandas.read_csv alone",
        "data": {
            "file": path.name,
            "bytes": path.stat().st_size,
            "respondents": args.n,
            "outcomes": args.outcomes,
            "columns": runs["pandas"][0]["shape"][1],
            "kept_after_cleaning": fastest["n_out"],
        },
        "repeats": args.repeats,
        "time_seconds": {
            "pandas_read_csv": t_pd,
            "latentseg_pipeline": t_ls,
            "latentseg_stages_of_fastest_run": fastest["stages"],
            "latentseg_stage_memory_of_fastest_run": fastest["stage_memory"],
            "all_runs": {k: [r["seconds"] for r in v] for k, v in runs.items()},
        },
        "cpu_seconds": {
            "pandas_read_csv": c_pd,
            "latentseg_pipeline": c_ls,
            "latentseg_stages_of_leanest_run": leanest["stages_cpu"],
            "all_runs": {k: [r["cpu_seconds"] for r in v] for k, v in runs.items()},
        },
        "memory_bytes": {
            "raw_dataframe": frame_bytes,
            "pandas_read_csv_peak": mem_pd,
            "latentseg_pipeline_peak": mem_ls,
            "all_runs": {k: [r["peak_increment_bytes"] for r in v] for k, v in runs.items()},
        },
        "ratios": {
            "time_vs_pandas_read_csv": t_ls / t_pd,
            "cpu_time_vs_pandas_read_csv": c_ls / c_pd,
            "peak_memory_vs_raw_dataframe": mem_ls / frame_bytes,
            "peak_memory_vs_pandas_read_csv_peak": mem_ls / mem_pd,
            "pandas_read_csv_peak_vs_raw_dataframe": mem_pd / frame_bytes,
        },
        "targets": {
            "time_vs_pandas_read_csv": TIME_TARGET,
            "peak_memory_vs_raw_dataframe": MEMORY_TARGET,
        },
        "meets_targets": {
            "time": t_ls / t_pd <= TIME_TARGET,
            "memory": mem_ls / frame_bytes <= MEMORY_TARGET,
        },
        "environment": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "OMP_NUM_THREADS": "1",
        },
    }
    r = result["ratios"]
    print(f"data: {args.n} x {args.outcomes} survey, {path.stat().st_size / 1e6:.1f} MB CSV")
    print(f"time  pandas.read_csv {t_pd:.2f} s | latentseg {t_ls:.2f} s "
          f"-> {r['time_vs_pandas_read_csv']:.2f}x (target <= {TIME_TARGET:g}x)")
    print(f"      CPU time: pandas {c_pd:.2f} s | latentseg {c_ls:.2f} s -> {r['cpu_time_vs_pandas_read_csv']:.2f}x "
          "(steadier than wall time on a busy machine)")
    print("      CPU by stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in leanest["stages_cpu"].items()))
    print("      stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in fastest["stages"].items()))
    print("      peak so far after each stage: " + ", ".join(
        f"{k} {v['peak_so_far_bytes'] / 2**20:.0f} MiB" for k, v in fastest["stage_memory"].items()))
    print(f"memory raw DataFrame {frame_bytes / 2**20:.0f} MiB | pandas.read_csv peak {mem_pd / 2**20:.0f} MiB | "
          f"latentseg peak {mem_ls / 2**20:.0f} MiB -> {r['peak_memory_vs_raw_dataframe']:.2f}x the raw DataFrame "
          f"(target <= {MEMORY_TARGET:g}x), {r['peak_memory_vs_pandas_read_csv_peak']:.2f}x pandas' peak")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(HERE.parent)}")
    return result


if __name__ == "__main__":
    main()
