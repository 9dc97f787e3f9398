"""Measures how often `check` cries wolf, and how often it catches a real slow-down.

    python tools/noise.py --results /tmp/noise --aa 6 --slowed 3 -- \
        --workload reuters_cnn --strategy default --strategy virtual --loop fit --loop custom

1. Runs the same selection ``--aa`` times (A/A: same commit, same machine) and counts,
   over every pair of those runs, how often `check` would fail (false alarms).
2. Runs it ``--slowed`` more times with a CPU-burning process on every core (a real
   slow-down: a noisy neighbour halves the CPU each worker gets), and counts how often
   `check` against each A/A run fails (catches).

Reports both rates per threshold, per run (what `check` exits on) and per cell.
Everything it runs is saved under --results like any other run.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.compare import DEFAULT_ALPHA, compare_runs, regressions  # noqa: E402
from bench.storage import Storage, load  # noqa: E402

THRESHOLDS = (0.05, 0.10, 0.15, 0.25, 0.35)


def burn() -> None:
    while True:
        pass


def bench_run(results: str, extra: list[str], slowed: bool) -> str:
    hogs = []
    if slowed:
        hogs = [multiprocessing.Process(target=burn, daemon=True) for _ in range(os.cpu_count() or 1)]
        for h in hogs:
            h.start()
    try:
        before = set(Storage(results).runs())
        subprocess.run([sys.executable, "-m", "bench", "run", "--results", results, *extra],
                       check=False, stdout=subprocess.DEVNULL)
        (new,) = set(Storage(results).runs()) - before
        return str(new)
    finally:
        for h in hogs:
            h.kill()


def rates(pairs, threshold: float) -> tuple[int, int, int, int]:
    """(runs failing, runs, cells failing, cells) over (baseline, candidate) pairs."""
    runs_failed = cells_failed = cells = 0
    for base, cand in pairs:
        comparison = compare_runs(base, cand, threshold, DEFAULT_ALPHA)
        failed = regressions(comparison, accuracy_tolerance=1.0)   # speed only
        runs_failed += bool(failed)
        cells_failed += len(failed)
        cells += len(comparison.compared)
    return runs_failed, len(pairs), cells_failed, cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--aa", type=int, default=6)
    parser.add_argument("--slowed", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="analyse the runs already in --results")
    parser.add_argument("extra", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    extra = [a for a in args.extra if a != "--"]
    if args.reuse:
        files = [str(p) for p in Storage(args.results).runs()]
        aa_files, slow_files = files[: args.aa], files[args.aa : args.aa + args.slowed]
    else:
        aa_files = [bench_run(args.results, extra, slowed=False) for _ in range(args.aa)]
        slow_files = [bench_run(args.results, extra, slowed=True) for _ in range(args.slowed)]
    aa, slow = [load(f) for f in aa_files], [load(f) for f in slow_files]
    aa_pairs = list(itertools.combinations(aa, 2))
    slow_pairs = [(base, s) for s in slow for base in aa]
    print(f"A/A runs: {[r.number for r in aa]}; slowed runs: {[r.number for r in slow]}")
    print("threshold  false alarms (runs)  false alarms (cells)  caught (runs)  caught (cells)")
    for t in THRESHOLDS:
        fr, n, fc, nc = rates(aa_pairs, t)
        cr, m, cc, mc = rates(slow_pairs, t)
        print(f"{t:9.2f}  {fr:3d}/{n:<3d} = {fr / n:5.0%}    {fc:3d}/{nc:<3d} = {fc / nc:5.0%}"
              f"     {cr:3d}/{m:<3d} = {cr / m:4.0%}  {cc:3d}/{mc:<3d} = {cc / mc:4.0%}")


if __name__ == "__main__":
    main()
