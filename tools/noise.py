"""Measures how often `check` cries wolf, and how often it catches a real slow-down.

    python tools/noise.py --results /tmp/noise --aa 10 --slowed 5 --repeats 1,3,5 -- \
        --workload reuters_cnn --strategy default --strategy virtual --loop fit --loop custom

1. Runs the same selection ``--aa`` times (A/A: same commit, same machine) and counts,
   over pairs of those runs, how often `check` would fail on speed (false alarms).
2. Runs it ``--slowed`` more times with a CPU-burning process on every core (a real
   slow-down: a noisy neighbour takes CPU from each worker), and counts how often
   `check` fails against the A/A runs (catches).

Cells the check leaves unchecked (too noisy to rule out a slow-down beyond the
threshold) are counted separately: they neither pass nor fail.

``--repeats 1,3,5`` also evaluates what repeats buy: k stored runs of the same command
are k fresh processes per cell, exactly what ``run --repeats k`` makes, so disjoint
groups of k runs are compared as k-repeat runs. Rates are given per run (what `check`
exits on) and per cell. ``--aa-runs``/``--slow-runs`` analyse runs already stored.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distbench.analysis.compare import compare_cell, history_noise  # noqa: E402
from distbench.storage.files import Storage, load  # noqa: E402
from distbench.storage.results import CellResult  # noqa: E402

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


def merged(runs) -> dict[str, list[dict]]:
    """Several stored runs of the same command as one run whose repeats are their processes."""
    cells: dict[str, list[dict]] = {}
    for run in runs:
        for cell, repeats in run.cells().items():
            cells.setdefault(cell, []).extend(repeats)
    return cells


def rates(pairs, threshold: float, noise: dict) -> tuple[int, int, int, int, int]:
    """(runs failing, runs, cells failing, cells, cells check leaves unchecked) over (baseline, candidate) pairs."""
    runs_failed = cells_failed = cells = noisy = 0
    for base, cand in pairs:
        rows = [compare_cell(CellResult.of(c, base[c]), CellResult.of(c, cand[c]), threshold, noise.get(c), noise.get(c))
                for c in base]
        verdicts = [r.verdict for r in rows]
        runs_failed += "slower" in verdicts
        cells_failed += verdicts.count("slower")
        noisy += sum(r.unchecked for r in rows)
        cells += len(base)
    return runs_failed, len(pairs), cells_failed, cells, noisy


def grouped_pairs(aa, slow, k: int, limit: int, seed: int = 0):
    """Random (baseline, candidate) pairs of k-process pseudo-runs: disjoint A/A, and A vs slowed."""
    rng = random.Random(seed)
    aa_pairs, slow_pairs = [], []
    for _ in range(limit):
        picked = rng.sample(aa, 2 * k)
        aa_pairs.append((merged(picked[:k]), merged(picked[k:])))
        slow_pairs.append((merged(rng.sample(aa, k)), merged(rng.sample(slow, k))))
    return aa_pairs, slow_pairs


def parse_numbers(text: str) -> list[int]:
    numbers = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        numbers += range(int(lo), int(hi or lo) + 1)
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--aa", type=int, default=6, help="A/A runs to make")
    parser.add_argument("--slowed", type=int, default=3, help="slowed runs to make")
    parser.add_argument("--aa-runs", help="analyse these stored runs as A/A (e.g. 1-6,10-13) instead of running")
    parser.add_argument("--slow-runs", help="and these as slowed (e.g. 7-9,14-15)")
    parser.add_argument("--repeats", default="1,3", help="processes per pseudo-run to evaluate (default 1,3)")
    parser.add_argument("--pairs", type=int, default=60, help="random pairs per repeat count (k > 1)")
    parser.add_argument("extra", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    extra = [a for a in args.extra if a != "--"]
    if args.aa_runs:
        by_number = {load(p).number: load(p) for p in Storage(args.results).runs()}
        aa = [by_number[n] for n in parse_numbers(args.aa_runs)]
        slow = [by_number[n] for n in parse_numbers(args.slow_runs)]
    else:
        aa = [load(bench_run(args.results, extra, slowed=False)) for _ in range(args.aa)]
        slow = [load(bench_run(args.results, extra, slowed=True)) for _ in range(args.slowed)]
    print(f"A/A runs: {[r.number for r in aa]}; slowed runs: {[r.number for r in slow]}")
    noise = history_noise(aa)   # the A/A runs are this analysis's history of between-run noise
    print("repeats  threshold  false alarms (runs)  false alarms (cells)  caught (runs)  caught (cells)"
          "  not checked, too noisy (A/A cells)  (slowed cells)")
    for k in (int(x) for x in args.repeats.split(",")):
        if k == 1:   # every pair, exhaustively
            aa_pairs = [(merged([x]), merged([y])) for x, y in itertools.combinations(aa, 2)]
            slow_pairs = [(merged([x]), merged([s])) for s in slow for x in aa]
        else:
            aa_pairs, slow_pairs = grouped_pairs(aa, slow, k, args.pairs)
        for t in THRESHOLDS:
            fr, n, fc, nc, fn = rates(aa_pairs, t, noise)
            cr, m, cc, mc, sn = rates(slow_pairs, t, noise)
            print(f"{k:7d}  {t:9.2f}  {fr:3d}/{n:<3d} = {fr / n:4.0%}    {fc:3d}/{nc:<3d} = {fc / nc:4.0%}"
                  f"     {cr:3d}/{m:<3d} = {cr / m:4.0%}  {cc:3d}/{mc:<3d} = {cc / mc:4.0%}"
                  f"  {fn:3d}/{nc:<3d} = {fn / nc:4.0%}   {sn:3d}/{mc:<3d} = {sn / mc:4.0%}")


if __name__ == "__main__":
    main()
