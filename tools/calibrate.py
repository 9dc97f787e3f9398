"""Calibrates the interleaved verdicts on this machine: A/A trials and slowed trials.

Each trial is an independent interleaved comparison (fresh processes, no sample reused
across trials) of one cell between two git worktrees of HEAD:

* A/A: both sides run HEAD as it is;
* slowed: side B runs HEAD with a real code change, a sleep in the custom loop's step
  (inside the timed region) of ``factor - 1`` times the step's own duration.

Every trial is stored under ``results/<machine>/`` as an interleaved run with a
``calibration`` note (kind, factor, trial), and the tally is printed: how often A/A
trials were called slower or faster (false alarms), same, or undecided, and how often
slowed trials were caught. Re-tally stored trials with ``--tally``.

Usage: python tools/calibrate.py --aa 5 --slow 5 --factor 1.25 [--cell reuters_cnn-default-custom]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distbench.core.config import CellSpec  # noqa: E402
from distbench.session import interleave as ab  # noqa: E402
from distbench.storage.files import Storage, load, save_run  # noqa: E402

STEP_LINE = "                loss_sum += float(train_step(iterator))  # float() syncs the device\n"
SLOWED = ("                _t0 = __import__('time').perf_counter()\n"
          "                loss_sum += float(train_step(iterator))  # float() syncs the device\n"
          "                __import__('time').sleep({extra} * (__import__('time').perf_counter() - _t0))\n")


def slow_down(tree: str, factor: float) -> None:
    """Edits the custom loop in ``tree`` so that each timed step takes ``factor`` times as long."""
    path = os.path.join(tree, "bench", "loops", "custom.py")
    text = open(path).read()
    if STEP_LINE not in text:
        raise SystemExit(f"calibrate: the custom loop's step line is not in {path}; update STEP_LINE")
    with open(path, "w") as f:
        f.write(text.replace(STEP_LINE, SLOWED.format(extra=factor - 1)))


def trial(spec: CellSpec, kind: str, factor: float, k: int, args) -> ab.PairedCell:
    from distbench.session.suite import Suite

    suite = Suite()
    with ab.worktree("HEAD") as tree_a, ab.worktree("HEAD") as tree_b:
        if kind == "slow":
            slow_down(tree_b, factor)
        a = ab.Side("A", "HEAD", root=tree_a)
        b = ab.Side("B", "HEAD" if kind == "aa" else f"HEAD slowed {factor}x in the step", root=tree_b)
        engine = ab.Interleaved(a, b, lambda s, side: suite.run(s, side.env, side.root), args.threshold,
                                args.min_pairs, args.max_pairs)
        (cell,) = engine.run([spec], suite.skip_reason)
    extra = {"interleaved": ab.stored_document_part(a, b, [cell], {
        "threshold": args.threshold, "min_pairs": args.min_pairs, "max_pairs": args.max_pairs}),
        "calibration": {"kind": kind, "factor": factor if kind == "slow" else 1.0, "trial": k}}
    path = save_run(ab.records_by_side([cell]), args.results, extra=extra)
    print(f"{kind} trial {k}: {cell.verdict}, {len(cell.pairs)} pairs, B/A {cell.judgement.ratio:.3f} "
          f"{cell.judgement.interval}: {path}", flush=True)
    return cell


def tally(paths: list[str]) -> None:
    counts: dict[tuple, Counter] = {}
    pairs: dict[tuple, list[int]] = {}
    for path in paths:
        run = load(path)
        cal = run.data["distbench"].get("calibration")
        if not cal:
            continue
        (cell,) = run.interleaved["cells"].values()
        key = (cal["kind"], cal["factor"], run.interleaved.get("threshold"))
        counts.setdefault(key, Counter())[cell["verdict"]] += 1
        pairs.setdefault(key, []).append(cell["pairs"])
    for (kind, factor, threshold), c in sorted(counts.items()):
        n = sum(c.values())
        print(f"{kind} x{factor} (threshold {threshold}): {n} trials: " + ", ".join(f"{v} {k}" for k, v in c.items())
              + f"; pairs per trial {min(pairs[(kind, factor, threshold)])}-{max(pairs[(kind, factor, threshold)])}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--aa", type=int, default=5)
    p.add_argument("--slow", type=int, default=5)
    p.add_argument("--factor", type=float, default=1.25)
    p.add_argument("--cell", default="reuters_cnn-default-custom")
    p.add_argument("--threshold", type=float, default=ab.DEFAULT_THRESHOLD)
    p.add_argument("--min-pairs", type=int, default=ab.DEFAULT_MIN_PAIRS)
    p.add_argument("--max-pairs", type=int, default=ab.DEFAULT_MAX_PAIRS)
    p.add_argument("--results", default="results")
    p.add_argument("--tally", nargs="*", help="only tally these stored runs (default: run the trials)")
    args = p.parse_args()
    if args.tally is not None:
        tally(args.tally or [str(x) for x in Storage(args.results).runs()])
        return 0
    workload, strategy, loop = args.cell.split("-")
    spec = CellSpec.for_profile("quick", workload=workload, strategy=strategy, loop=loop, data="synthetic")
    started = time.monotonic()
    for k in range(max(args.aa, args.slow)):   # A/A and slowed trials alternate over the session
        for kind, n in (("aa", args.aa), ("slow", args.slow)):
            if k < n:
                trial(spec, kind, args.factor, k, args)
    print(f"{args.aa + args.slow} trials in {time.monotonic() - started:.0f} s")
    tally([str(x) for x in Storage(args.results).runs()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
