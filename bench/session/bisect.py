"""Parent side: ``distbench bisect GOOD BAD``, the first commit whose cells regress from GOOD's:
slower, or less accurate (``--find``: either, as ``check --against`` fails; ``slower``;
``less-accurate``).

asv's ``find`` bisects on one measurement per commit, which on a machine whose speed
drifts 25-40% names a commit by chance. Here each step is the same judge as ``check
--against``: the candidate commit and GOOD, each from its own worktree of the project,
measured at once as lockstep pairs of processes until the verdict is decided or the pairs
run out (:mod:`distbench.session.paired_run`). A step that cannot decide stops the search
and says between which commits the regression lies; it is never guessed. A step whose
cells failed (a commit that does not build) is passed over, as ``git bisect skip``: the
nearest untried commit is measured instead, and when only failed commits are left before
the first regressed one, the search names them and stops. Each step is saved as an
interleaved run.

BAD is measured first: when it has not regressed from GOOD there is nothing to find. Then
the commits between them, BAD's first parents back to GOOD, are halved: a
candidate that regressed holds the regression at or before it, one the same as GOOD (or
better) after it. The search assumes one step down (a commit that made it slower or less
accurate and stayed so); a candidate that only partly regressed is judged as ``check``
would judge it. ``--find less-accurate`` runs only the first ``--min-pairs`` pairs at each
step (a training seed each, both sides alike): more pairs are for the speed's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from distbench.analysis import compare
from distbench.core.errors import UserError
from distbench.session.side import Side, validate_side
from distbench.session.paired_run import Pairs, PairedRun, at_version, measure, paired_session
from distbench.session.project import Project, git
from distbench.session.suite import Suite


@dataclass(frozen=True)
class Step:
    """One candidate commit measured against GOOD."""

    commit: str
    subject: str
    index: int          # among the commits after GOOD, 1 = the first
    verdict: str        # one of REGRESSED, same, undecided, failed, skipped, no metric or interrupted
    run: PairedRun
    refused: str = ""   # why the commit was not measured: its matrix file makes an impossible cell (failed)

    @property
    def pairs(self) -> int:
        return sum(len(c.pairs) for c in self.run.cells)


@dataclass
class Bisection:
    good: str
    bad: str
    commits: list[str]                    # after GOOD, up to and including BAD, oldest first
    steps: list[Step] = field(default_factory=list)
    find: str = "regression"              # what counts as a regression: a key of FIND
    tolerance: float = compare.DEFAULT_ACCURACY_TOLERANCE   # the test metric's loss that is a regression
    first_regressed: str | None = None    # the commit found
    between: tuple[str, str] | None = None   # undecided: the regression lies after the first, at or before the second
    reason: str = ""                      # why nothing was named
    passed_over: list[str] = field(default_factory=list)   # commits whose step failed, skipped as git bisect skips

    @property
    def pairs(self) -> int:
        return sum(s.pairs for s in self.steps)

    @property
    def exit_status(self) -> int:
        """0 when a commit is named, or BAD was found the same as GOOD; 3 when a step could
        not decide, a cell failed or nothing was measured (never a pass)."""
        if self.first_regressed:
            return 0
        if self.steps and self.steps[-1].verdict == "interrupted":
            return 130
        return 0 if self.steps and self.steps[-1].verdict == "same" and not self.between else 3


# What a step's regression may be, and what each ``--find`` looks for.
REGRESSED = ("slower", "less accurate", "slower and less accurate")
FIND = {"regression": "slower or less accurate", "slower": "slower", "less-accurate": "less accurate"}


def commit_verdict(cells, find: str = "regression",
                   tolerance: float = compare.DEFAULT_ACCURACY_TOLERANCE) -> str:
    """A commit's verdict from its cells': ``failed`` when any failed (or only one side could
    run it, or its matrix file sets another batch than GOOD's); a regression (one of REGRESSED) when any cell is slower or learned worse than
    GOOD beyond ``tolerance``, as far as ``find`` looks; ``same`` when every measured cell is
    the same or better (its accuracy decided, where ``find`` looks at it); else ``undecided`` (``no metric``: looking for accuracy alone, and no
    cell has a test metric; ``undecided`` too when a cell has fewer whole pairs than asked)."""
    measured = [c for c in cells if c.verdict != "skipped"]
    if not measured:
        return "skipped"
    # missing: one side could not run a cell; not comparable: the commit's matrix file sets another batch
    if any(c.verdict in ("failed", "missing", "not comparable") for c in measured):
        return "failed"
    slower = find != "less-accurate" and any(c.verdict == "slower" for c in measured)
    worse = find != "slower" and any(c.less_accurate(tolerance) for c in measured)
    if slower or worse:
        return "slower and less accurate" if slower and worse else "slower" if slower else "less accurate"
    unsure = find != "slower" and any(c.accuracy_undecided(tolerance) or c.accuracy_not_comparable(tolerance)
                                      for c in measured)   # other test examples: nothing to judge B's metric by
    if find == "less-accurate":   # a cell the budget left short of pairs has said nothing yet
        if unsure or not all(c.whole for c in measured):
            return "undecided"
        return "same" if any(c.metric for c in measured) else "no metric"
    return "same" if all(c.verdict in ("same", "faster") for c in measured) and not unsure else "undecided"


def bisect(values: dict, good: str, bad: str, settings: Pairs, matrix: str | None = None,
           given: dict | None = None, progress=None,
           on_step: Callable[[Step, int, int], None] | None = None, find: str = "regression") -> Bisection:
    """Finds the first commit after ``good`` up to ``bad`` whose cells regressed from ``good``'s
    (``find``: a key of FIND); ``on_step(step, its number, commits after GOOD)`` as each step
    is measured."""
    project = Project.find(matrix)
    good_sha, bad_sha = project.commit(good), project.commit(bad)
    if good_sha == bad_sha:
        raise UserError(f"GOOD {good} and BAD {bad} are the same commit ({good_sha[:8]}): give a later BAD (default "
                        f"HEAD) whose cells are {FIND[find]}.")
    # One line of history, BAD's first parents back to GOOD: halving assumes a line, and a
    # merged side branch would put commits in an order the regression does not follow.
    commits = git(project.root, "rev-list", "--first-parent", "--reverse", f"{good_sha}..{bad_sha}").split()
    first_parent = git(project.root, "rev-parse", f"{commits[0]}^").strip() if commits else ""
    if not commits or first_parent != good_sha:
        raise UserError(f"{good} ({good_sha[:8]}) is not on the first-parent line of {bad} ({bad_sha[:8]}) in "
                        f"{project.root}: give GOOD first, then a later BAD on the same branch (bisect follows "
                        "first parents).")
    tolerance = settings.accuracy_tolerance
    found = Bisection(good_sha, bad_sha, commits, find=find, tolerance=tolerance)
    if find == "less-accurate":   # the speed verdict is not looked at: pairs go on only while the accuracy is undecided
        settings = replace(settings, speed=False)
    session = paired_session(values, matrix)
    suite = Suite()
    with project.checkout(good_sha) as base:
        a = at_version(Side("A", f"good {good_sha[:8]}"), base, matrix, session.base, given)
        validate_side(a, session.plan)   # GOOD's own impossible cell: said once, before any step

        def step(i: int) -> Step:
            sha = commits[i]
            with project.checkout(sha) as version:
                b, refused = _candidate(Side("B", f"candidate {sha[:8]}"), version, matrix, session, given)
                run = PairedRun(a, b, [], None) if refused else measure(
                    session, suite, a, b, settings, progress, {"bisect": {"good": good_sha, "bad": bad_sha,
                                                                          "candidate": sha}})
            subject = git(project.root, "log", "-1", "--format=%s", sha).strip()
            verdict = ("failed" if refused else "interrupted" if run.interrupted else
                       commit_verdict(run.cells, find, tolerance))
            done = Step(sha, subject, i + 1, verdict, run, refused)
            found.steps.append(done)
            if on_step:
                on_step(done, len(found.steps), len(commits))
            return done

        return _search(found, step)


def _candidate(side: Side, version, matrix: str | None, session, given: dict | None) -> tuple[Side, str]:
    """A candidate commit's side, and why its own matrix file makes it impossible to measure
    (a file that does not parse, ``epochs = 0``, ``workers = 3`` beside a batch of 32), or
    ''. Such a step fails with the reason, and the search says where the regression lies,
    as for a step whose cells crashed (it had ended the command, exit 2)."""
    try:
        side = at_version(side, version, matrix, session.base, given)
        validate_side(side, session.plan)
    except UserError as exc:
        said = f"Side {side.name} ({side.label}): "
        return side, str(exc) if str(exc).startswith(said) else said + str(exc)
    return side, ""


def _search(found: Bisection, step: Callable[[int], Step]) -> Bisection:
    commits = found.commits
    last = step(len(commits) - 1)
    if last.verdict == "interrupted":
        found.reason = "interrupted (Ctrl-C) while measuring BAD"
        return found
    if last.verdict not in REGRESSED:
        found.reason = (f"BAD is not {FIND[found.find]} than GOOD (same): nothing to find" if last.verdict == "same" else
                        "every cell was skipped here: nothing was measured" if last.verdict == "skipped" else
                        "no cell here has a test metric: there is no accuracy to compare"
                        if last.verdict == "no metric" else
                        f"BAD against GOOD was {last.verdict}: the regression is not established")
        return found
    good, bad = -1, len(commits) - 1       # indices: good is same as GOOD (-1: GOOD itself), bad regressed
    failed: list[int] = []
    while untested := [i for i in range(good + 1, bad) if i not in failed]:
        mid = (good + bad) // 2
        here = step(min(untested, key=lambda i: (abs(i - mid), i)))   # the middle, else the nearest not failed
        if here.verdict in REGRESSED:
            bad = here.index - 1
        elif here.verdict == "same":
            good = here.index - 1
        elif here.verdict == "failed":   # a commit that does not build or run: passed over, as git bisect skip
            failed.append(here.index - 1)
        else:   # undecided or interrupted: say where the regression lies, do not guess
            found.between = (found.good if good < 0 else commits[good], commits[bad])
            found.reason = ("interrupted (Ctrl-C)" if here.verdict == "interrupted" else
                            f"{here.commit[:8]} against GOOD was {here.verdict}")
            return found
    found.passed_over = [commits[i] for i in sorted(failed)]
    inside = [commits[i] for i in sorted(failed) if good < i < bad]
    if inside:   # the first regressed is one of them or bad: not guessed
        found.between = (found.good if good < 0 else commits[good], commits[bad])
        found.reason = (f"{', '.join(c[:8] for c in inside)} could not be measured (their cells failed), and the "
                        f"first {FIND[found.find]} commit is {'one of them' if len(inside) > 1 else 'it'} or "
                        f"{commits[bad][:8]}")
        return found
    found.first_regressed = commits[bad]
    return found
