"""Wide-file benchmark: ``latentseg validate`` of a 100,000-column, ~24 MB CSV, ours against main.

    .venv/bin/python benchmarks/bench_wide.py [--base /path/to/older/checkout] [--repeats 2]

The issue "Nothing lost and nothing silently wrong" asks for ``validate`` of a 100,000-column,
24 MB CSV in at most 5 s and 500 MB (main at 82e2c74 took 54 s and 2.5 GB). The file is made once
under ``benchmarks/_data/`` (gitignored): 120 respondents, an id column, five outcomes rated 1-5
(importance) and 1-10 (satisfaction), and 99,989 other (profile) columns of small integers.

Each measurement is a fresh ``python -m latentseg validate FILE --json`` process, timed from the
outside (wall-clock, import included) and measured by its peak resident set size (``ru_maxrss``
of the child, read with ``os.wait4``). With ``--base DIR`` (a source checkout of another
latentseg, e.g. ``git worktree add /tmp/base 82e2c74``), the same command runs on that checkout
side by side and the ratios are reported. Results are printed and written to
``benchmarks/results/wide.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _base import base_tree  # benchmarks/_base.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "_data"
RESULTS = HERE / "results" / "wide.json"
N_ROWS, N_OUTCOMES, N_COLUMNS = 120, 5, 100_000


def make_file() -> Path:
    """The wide survey (cached)."""
    import numpy as np

    path = DATA / f"wide_{N_ROWS}x{N_COLUMNS}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261205)
    imp = rng.integers(1, 6, size=(N_ROWS, N_OUTCOMES))
    sat = rng.integers(1, 11, size=(N_ROWS, N_OUTCOMES))
    n_other = N_COLUMNS - 1 - 2 * N_OUTCOMES
    other = rng.integers(0, 10, size=(N_ROWS, n_other))
    header = ["respondent_id"] + [f"imp_o{j}" for j in range(N_OUTCOMES)] + [f"sat_o{j}" for j in range(N_OUTCOMES)]
    header += [f"q{j}" for j in range(n_other)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for i in range(N_ROWS):
            row = [f"R{i:04d}", *map(str, imp[i]), *map(str, sat[i]), *map(str, other[i])]
            f.write(",".join(row) + "\n")
    return path


def run_once(python_path: str | None, survey: Path) -> dict[str, float]:
    """One ``validate`` in a fresh process: wall seconds and peak RSS (MB)."""
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = python_path
    cmd = [sys.executable, "-m", "latentseg", "validate", str(survey), "--imp-scale", "1-5", "--sat-scale", "1-10",
           "--json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    return {"seconds": wall, "peak_mb": usage.ru_maxrss / 1024, "exit_code": code, "stderr_tail": err[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="Source checkout of the latentseg to compare with (e.g. main at 82e2c74).")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    survey = make_file()
    size_mb = survey.stat().st_size / 1e6
    sides = {"ours": None}
    if args.base is not None:
        sides["base"] = base_tree(args.base)
    result: dict[str, object] = {
        "file": {"rows": N_ROWS, "columns": N_COLUMNS, "megabytes": round(size_mb, 1)},
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "targets": {"seconds": 5.0, "peak_mb": 500.0},
    }
    for name, path in sides.items():
        runs = [run_once(path, survey) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["seconds"])
        result[name] = {"best": best, "runs": runs}
        print(f"{name:5s}: {best['seconds']:.2f} s, peak {best['peak_mb']:.0f} MB (exit {best['exit_code']})")
    if "base" in result:
        ours, base = result["ours"]["best"], result["base"]["best"]  # type: ignore[index]
        result["ratio_base_over_ours"] = {
            "seconds": base["seconds"] / ours["seconds"],
            "peak_mb": base["peak_mb"] / ours["peak_mb"],
        }
        print(f"base / ours: {result['ratio_base_over_ours']['seconds']:.1f}x time, "  # type: ignore[index]
              f"{result['ratio_base_over_ours']['peak_mb']:.1f}x memory")  # type: ignore[index]
    try:
        import cpuinfo  # type: ignore[import-not-found]

        result["cpu"] = cpuinfo.get_cpu_info().get("brand_raw", result["cpu"])
    except ImportError:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    result["cpu"] = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
