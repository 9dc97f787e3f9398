"""Verdicts: stored runs compared cell by cell, and interleaved pairs judged (the check
that reads a comparison as pass or fail: :mod:`distbench.analysis.check`).

Count what varies. Each kind of comparison has its own unit:

* **Interleaved pairs** (``distbench ab``, ``check --against``; :mod:`distbench.session.interleave`): a pair is one
  process of each side, run at once and taking turns step by step (lockstep); its
  log-ratio log(median_B / median_A) cancels the machine's drift (25-40% between
  processes here). The pairs are the units: a Student-t interval of their mean log-ratio,
  and an exact sign-flip p (smallest reachable: 2 / 2^n).
* **Stored runs of different times** (``compare``, ``check --baseline``): each run is one
  unit; its noise is the spread of the cell's run-level log median over the machine's
  other stored runs (:func:`history_noise`); without that history, undecided, saying why.

Both use one band rule with threshold t on the 95% interval of B/A: wholly above 1+t:
``slower``; wholly below 1/(1+t): ``faster``; wholly inside [1/(1+t), 1+t]: ``same``;
else ``undecided``. Per-step samples never decide a verdict (they are not independent
evidence about another process); ``undecided`` is never read as a pass.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from distbench.analysis.identity import differences
from distbench.core import stats
from distbench.core.errors import UserError
from distbench.storage.machine import machine_diff
from distbench.storage.results import CellResult
from distbench.storage.stored_run import StoredRun

# Stored runs of different times: a run-level estimate moved 25-40% between runs here
# (docs/measurements.md, "Noise, measured"), so smaller changes need interleaved pairs.
DEFAULT_THRESHOLD = 0.25
DEFAULT_ACCURACY_TOLERANCE = 0.05
CONFIDENCE = 0.95
MIN_HISTORY_RUNS = 3
UNDECIDED = "undecided"

# The check's exit statuses (bad input is 2, from the CLI's one error handler).
EXIT_PASS, EXIT_REGRESSION, EXIT_UNDECIDED = 0, 1, 3


def band_verdict(interval: tuple[float, float] | None, threshold: float) -> str:
    """The band rule on an interval of B/A (see the module's docstring)."""
    if interval is None:
        return UNDECIDED
    lo, hi = interval
    if lo > 1 + threshold:
        return "slower"
    if hi < 1 / (1 + threshold):
        return "faster"
    if lo >= 1 / (1 + threshold) and hi <= 1 + threshold:
        return "same"
    return UNDECIDED


@dataclass(frozen=True)
class PairedJudgement:
    """The verdict on a cell's interleaved pairs."""

    pairs: int
    ratio: float | None                    # exp(mean log-ratio): B/A, > 1 means B is slower
    interval: tuple[float, float] | None
    p_value: float | None                  # sign-flip test of "no difference"
    smallest_p: float                      # the smallest p this many pairs can reach
    verdict: str


def judge_pairs(log_ratios: list[float], threshold: float) -> PairedJudgement:
    """The band rule on the pairs' log-ratios (at least two pairs for an interval)."""
    n = len(log_ratios)
    if n == 0:
        return PairedJudgement(0, None, None, None, 1.0, UNDECIDED)
    ratio = math.exp(stats.mean(log_ratios))
    interval = None
    if n >= 2:
        lo, hi = stats.mean_interval(log_ratios, CONFIDENCE)
        interval = (math.exp(lo), math.exp(hi))
    return PairedJudgement(n, ratio, interval, stats.sign_flip_p(log_ratios), stats.smallest_sign_flip_p(n),
                           band_verdict(interval, threshold))


@dataclass(frozen=True)
class Noise:
    """The between-run spread of one cell's log run-level estimate on one machine."""

    sd: float
    runs: int


def history_noise(history: list[StoredRun], like: StoredRun | None = None,
                  leave_out: tuple[StoredRun, ...] = ()) -> dict[str, Noise]:
    """Each cell's between-run noise over a machine's stored runs, in run order (cells in
    at least 3 runs); with ``like``, only the runs that measured the cell as ``like`` did
    (:func:`differences` empty: the same configuration, data and workload code) over as
    many processes. Runs of another batch or profile under the same id have another spread
    (a longer profile's is smaller), and so has a median over other processes (pytest's one
    against ``run``'s three), which would narrow the interval of runs it did not come from;
    and runs of another software fingerprint (TensorFlow, Keras, Python, the environment:
    a run before an upgrade, in the same machine folder) are left out too, as ``check``
    refuses to compare such runs directly.

    ``leave_out`` are the runs compared (A and B), and copies of them: their differences are the step in
    question, and in a short history they would be most of the noise it is judged against
    (with 3 runs, one of two differences: any step, however large, undecided). So a
    comparison needs 3 runs besides them.

    The history holds real changes too (the regressions it is asked to judge), so the
    spread is estimated from successive differences of the log run-level medians,
    robustly: sd = 1.4826 x median|diff| / sqrt(2) (the MAD of a difference of two
    independent values; a level shift moves one difference, not the median), and never
    below :data:`MIN_NOISE_SD`.
    """
    values: dict[str, list[float]] = {}
    left_out = {(run.machine_id, run.number) for run in leave_out} | {run.measurements for run in leave_out}
    for run in history:
        if {(run.machine_id, run.number), run.measurements} & left_out:
            continue
        if like is not None and machine_diff(run.machine_info, like.machine_info):
            continue
        for cell, result in run.results.items():
            estimate = result.estimate if result.measured else None
            if estimate is None or not math.isfinite(estimate) or run.interrupted:
                continue
            reference = like.results.get(cell) if like is not None else None
            if like is not None and (reference is None or not reference.measured or differences(result, reference)
                                     or result.processes != reference.processes or not _same_code(result, reference)):
                continue
            values.setdefault(cell, []).append(math.log(estimate))
    return {c: Noise(max(robust_sd(v), MIN_NOISE_SD), len(v)) for c, v in values.items()
            if len(v) >= MIN_HISTORY_RUNS}


def _same_code(result: CellResult, reference: CellResult) -> bool:
    """Whether ``result`` ran ``reference``'s workload code: a run with no hash (older) is not
    known to have (f0d42a's pooled level shifts: [0.21, 4.19] between two runs)."""
    code, theirs = reference.workload_codes(result)
    return not code or theirs == code


def comparison_noise(history_a: list[StoredRun], history_b: list[StoredRun], a: StoredRun,
                     b: StoredRun) -> tuple[dict[str, Noise], dict[str, Noise]]:
    """The noise B is judged against A with, wherever it is judged (``compare``, ``check --baseline``,
    the report): each run's machine's runs that measured the cell as it did, A and B left out of
    both (B alone made ``compare A B`` slower, ``compare B A`` undecided across machines)."""
    return history_noise(history_a, like=a, leave_out=(a, b)), history_noise(history_b, like=b, leave_out=(a, b))


# The least between-run spread a history may claim (1% of a run-level median): copies of one
# run, or a few runs that happen to agree, would otherwise give an interval of no width.
# Successive runs here differ by 5-25% (docs/measurements.md).
MIN_NOISE_SD = 0.01


def robust_sd(series: list[float]) -> float:
    """The spread of a series' values from its successive differences (see history_noise)."""
    diffs = [abs(b - a) for a, b in zip(series, series[1:])]
    return 1.4826 * stats.percentile(diffs, 50) / math.sqrt(2)


@dataclass
class CellComparison:
    """One cell in both runs: the verdict and the numbers behind it (rendered by tables)."""

    cell: str
    presence: str                     # "both", "only in A" (or "skipped (...) in A, not in B"), ..., "not comparable: ..."
    a: CellResult | None = None
    b: CellResult | None = None
    ratio: float | None = None        # median B / median A: > 1 means B is slower
    ratio_ci: tuple[float, float] | None = None
    threshold: float = DEFAULT_THRESHOLD
    verdict: str = ""                 # "faster", "slower", "same", "undecided", or "" when not comparable
    noise_runs: int = 0               # stored runs of history behind the interval (0: none)
    noise_of: str = ""                # "A" or "B": only that side's machine had a history (it stands for both)
    p_value: float | None = None      # not used for stored runs: one unit a side
    differences: tuple[str, ...] = () # why two measured cells are not comparable (configuration, data, code)

    @property
    def median_a(self) -> float | None:
        """A's estimate: its median step (seconds), or its median time to target."""
        return self.a.estimate if self.verdict else None

    @property
    def median_b(self) -> float | None:
        return self.b.estimate if self.verdict else None

    @property
    def target(self) -> bool:
        """Time to target is compared (not step time)."""
        return bool(self.a and self.a.is_target)

    @property
    def fewer_reached(self) -> bool:
        """Time to target: B reached the target in a smaller share of its seeds than A. The
        median over seeds reads the seeds that reached it: 3 of 5 read as fast as 5 of 5."""
        if not (self.target and self.b and self.b.is_target):
            return False
        return self.b.reached * len(self.a.times_to_target) < self.a.reached * len(self.b.times_to_target)

    @property
    def throughput_ratio(self) -> float | None:
        return 1 / self.ratio if self.ratio and not self.target else None

    @property
    def one_process(self) -> bool:
        return bool(self.verdict) and min(self.a.processes, self.b.processes) < 2

    @property
    def accuracy_a(self) -> float | None:
        """The test metric the accuracy guard judges (accuracy, or AUC for multibranch)."""
        return self.a.guard_value if self.a else None

    @property
    def accuracy_b(self) -> float | None:
        return self.b.guard_value if self.b else None

    @property
    def metric(self) -> str:
        return (self.b or self.a).guard_metric

    @property
    def accuracy_delta(self) -> float | None:
        a, b = self.accuracy_a, self.accuracy_b
        return None if a is None or b is None else b - a

    @property
    def unchecked(self) -> bool:
        """Undecided: the check can neither pass nor fail this cell's speed."""
        return self.verdict == UNDECIDED

    def as_dict(self) -> dict:
        return {
            "cell": self.cell, "presence": self.presence, "verdict": self.verdict, "threshold": self.threshold,
            "median_a": self.median_a, "median_b": self.median_b, "ratio": self.ratio,
            "ratio_ci": list(self.ratio_ci) if self.ratio_ci else None, "noise_runs": self.noise_runs,
            "noise_of": self.noise_of or "both",
            "throughput_ratio": self.throughput_ratio, "processes_a": self.a.processes if self.a else 0,
            "processes_b": self.b.processes if self.b else 0, "metric": self.metric if self.a or self.b else None,
            "metric_a": self.accuracy_a, "metric_b": self.accuracy_b, "metric_delta": self.accuracy_delta,
            "guard_a": self.a.guard.get("status") if self.a else None,
            "guard_b": self.b.guard.get("status") if self.b else None,
            **({"seeds_reached_a": [self.a.reached, len(self.a.times_to_target)],
                "seeds_reached_b": [self.b.reached, len(self.b.times_to_target)]} if self.fewer_reached else {}),
        }


@dataclass
class Comparison:
    a: StoredRun
    b: StoredRun
    cells: list[CellComparison]
    machine_diff: list[tuple[str, object, object]]

    @property
    def compared(self) -> list[CellComparison]:
        return [c for c in self.cells if c.verdict]

    @property
    def builds_differ(self) -> str:
        """``differ`` when distbench's code hash (else commit, else version) differs between the
        runs; ``unmatched`` when one recorded only a commit, the other only a code hash (a wheel's)."""
        own_a, own_b = ((r.data.get("commit_info", {}).get("distbench") or {}) for r in (self.a, self.b))
        for key in ("code", "commit"):
            if own_a.get(key) and own_b.get(key):
                return "differ" if own_a[key] != own_b[key] else ""
        if any(own.get(k) for own in (own_a, own_b) for k in ("code", "commit")):
            return "unmatched"
        return "differ" if own_a.get("version") != own_b.get("version") else ""

    @property
    def loop_changed(self) -> list[CellComparison]:
        """Compared cells whose training loop's code differs between the runs (compared: a
        loop's code is what ``check`` checks; named, for comparisons of machines)."""
        return [c for c in self.compared if None not in (la := c.a.definition.get("loop"), lb := c.b.definition.get("loop"))
                and la != lb]


def compare_cell(a: CellResult, b: CellResult, threshold: float, noise_a: Noise | None = None,
                 noise_b: Noise | None = None) -> CellComparison:
    """The verdict on one cell present in two stored runs, each run one unit.

    The interval of B/A is the ratio of run-level medians times the between-run noise
    of each side's machine (one machine's noise stands for both when only one is known).
    """
    if not a.whole or not b.whole:
        # A cell with a crashed process is not judged on the processes that survived:
        # whatever crashed it may be what slowed it (fail closed); nor one an interrupted
        # run left short of its planned processes (its run-level median is of fewer).
        side, result = ("A", a) if not a.whole else ("B", b)
        what = (result.shortfall if result.measured
                else f"{result.status} ({result.reason})" if result.reason else result.status)
        return CellComparison(a.id, f"not comparable: {what} in {side}", a, b, threshold=threshold)
    differs = tuple(differences(a, b))
    if differs:
        return CellComparison(a.id, "not comparable: " + "; ".join(differs), a, b, threshold=threshold,
                              differences=differs)
    if a.is_target or b.is_target:
        reached = _censored_verdict(a, b, threshold)
        if reached:
            return reached
    ratio = b.estimate / a.estimate
    known = [n for n in (noise_a, noise_b) if n]
    if not known:
        return CellComparison(a.id, "both", a, b, ratio, None, threshold, UNDECIDED)
    ci = stored_interval(ratio, noise_a, noise_b)
    alone = "" if len(known) == 2 else "A" if noise_a else "B"
    found = CellComparison(a.id, "both", a, b, ratio, ci, threshold, band_verdict(ci, threshold),
                           min(n.runs for n in known), alone)
    if found.verdict in ("same", "faster") and found.fewer_reached:   # its seeds say less than its median
        return dataclasses.replace(found, verdict=UNDECIDED)
    return found


def stored_interval(ratio: float, noise_a: Noise | None, noise_b: Noise | None) -> tuple[float, float]:
    """The 95% interval of B/A between stored runs: ``ratio`` widened by each side's noise (one
    machine's for both when only one is known), with the t quantile of :func:`noise_df`."""
    known = [n for n in (noise_a, noise_b) if n]
    sd_a, sd_b = (noise_a or noise_b).sd, (noise_b or noise_a).sd
    half = stats.t_quantile(1 - (1 - CONFIDENCE) / 2, noise_df(min(n.runs for n in known))) * math.hypot(sd_a, sd_b)
    return ratio * math.exp(-half), ratio * math.exp(half)


def noise_df(runs: int) -> float:
    """The degrees of freedom :func:`robust_sd` over ``runs`` stored runs is worth: a median of
    successive differences knows the spread less surely than a standard deviation of as many
    values. With runs - 1, the interval of B/A, meant to hold 95%, held 92.6% to 94.5% at 4
    to 60 normal runs; with this, 95.0% to 96.8% (400,000 simulated histories each:
    docs/sims/interval_coverage.py; tests/bench/test_compare.py simulates fewer)."""
    return max(2.0, 0.47 * (runs - 1) + 0.6)


def _censored_verdict(a: CellResult, b: CellResult, threshold: float) -> CellComparison | None:
    """Time-to-target cells whose median was not reached on a side (half or more of its
    seeds never got there): not reached ranks slower than any time, as MLPerf ranks a run
    that does not converge; not reached on both sides is undecided. None: both reached."""
    a_inf, b_inf = not math.isfinite(a.estimate), not math.isfinite(b.estimate)
    if not (a_inf or b_inf):
        return None
    verdict = UNDECIDED if a_inf and b_inf else "slower" if b_inf else "faster"
    return CellComparison(a.id, "both", a, b, None, None, threshold, verdict)


def compare_runs(
    a: StoredRun, b: StoredRun, threshold: float = DEFAULT_THRESHOLD, overrides: dict[str, float] | None = None,
    noise_a: dict[str, Noise] | None = None, noise_b: dict[str, Noise] | None = None,
) -> Comparison:
    """Compares every cell of ``a`` and ``b`` (with each machine's history noise, when
    given); raises UserError when none is shared."""
    cells_a, cells_b = a.results, b.results
    shared = [c for c in cells_a if c in cells_b]
    if not shared:
        paired = [run.label for run in (a, b) if run.interleaved]
        why = (f" {' and '.join(paired)} {'is an interleaved run' if len(paired) == 1 else 'are interleaved runs'} "
               "(`check --against` or `ab`, cells <id>@A and <id>@B, judged when it ran); compare compares runs of "
               "`distbench run` or `pytest --benchmark-only`." if paired else " Compare runs of the same selection.")
        raise UserError(
            f"Runs {a.label} and {b.label} have no cells in common (A: {', '.join(cells_a) or 'none'}; "
            f"B: {', '.join(cells_b) or 'none'}).{why}"
        )
    overrides, noise_a, noise_b = overrides or {}, noise_a or {}, noise_b or {}
    rows = [compare_cell(cells_a[c], cells_b[c], overrides.get(c, threshold), noise_a.get(c), noise_b.get(c))
            for c in shared]
    rows += [CellComparison(c, _alone(cells_a[c], "A"), a=cells_a[c]) for c in cells_a if c not in cells_b]
    rows += [CellComparison(c, _alone(cells_b[c], "B"), b=cells_b[c]) for c in cells_b if c not in cells_a]
    return Comparison(a, b, rows, machine_diff(a.machine_info, b.machine_info))


def _alone(result: CellResult, side: str) -> str:
    """A cell of one run only: ``only in A``, or what became of it there (``skipped (no GPU
    found) in A``: the run did not measure it either)."""
    if result.measured:
        return f"only in {side}"
    return f"{result.status} ({result.reason}) in {side}, not in {'B' if side == 'A' else 'A'}"


def selected(comparison: Comparison, chosen: dict[str, list[str] | None]) -> Comparison:
    """Only the cells of the chosen workloads, strategies and loops (each None or empty: all);
    UserError when none is left."""
    def keep(c: CellComparison) -> bool:
        spec = (c.a or c.b).spec
        return all(not names or getattr(spec, field) in names for field, names in chosen.items())

    cells = [c for c in comparison.cells if keep(c)]
    if not cells:
        wanted = "; ".join(f"{k}: {', '.join(v)}" for k, v in chosen.items() if v)
        raise UserError(f"No cell of runs {comparison.a.label} and {comparison.b.label} matches {wanted}.")
    return Comparison(comparison.a, comparison.b, cells, comparison.machine_diff)
