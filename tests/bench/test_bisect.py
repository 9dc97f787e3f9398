"""bisect's search on given verdicts: which commit it names, and that an undecided step stops
it with the range instead of a guess (the measuring is tests/test_user_verdicts.py's)."""

from dataclasses import replace
from types import SimpleNamespace

from distbench.session.bisect import Bisection, Step, _search


def _bisect(verdicts: list[str]) -> Bisection:
    commits = [f"c{k}" for k in range(1, len(verdicts) + 1)]
    found = Bisection("c0", commits[-1], commits)

    def step(i: int) -> Step:
        done = Step(commits[i], "", i + 1, verdicts[i], run=SimpleNamespace(cells=[]))
        found.steps.append(done)
        return done

    return _search(found, step)


def test_it_names_the_first_regressed_commit():
    found = _bisect(["same", "same", "slower", "slower", "slower", "slower"])
    assert found.first_regressed == "c3" and found.exit_status == 0
    assert [s.commit for s in found.steps] == ["c6", "c3", "c1", "c2"]   # BAD first, then halvings


def test_an_undecided_step_stops_with_the_range_and_fails_closed():
    found = _bisect(["same", "undecided", "slower", "slower"])
    assert found.first_regressed is None and found.between == ("c0", "c4") and found.exit_status == 3


def test_bad_not_slower_is_nothing_to_find_and_failed_is_not_a_pass():
    assert _bisect(["same", "same"]).exit_status == 0
    assert _bisect(["same", "failed"]).exit_status == 3
    assert _bisect(["same", "skipped"]).exit_status == 3


def test_a_failed_step_names_each_failed_process_and_does_not_ask_for_more_pairs():
    from types import SimpleNamespace

    from distbench.render.bisect_lines import closing_lines

    crashed = {"status": "error", "reason": "worker pid 7 exited: RuntimeError: mid boom"}
    cell = SimpleNamespace(cell="sent-default-custom", pairs=[({"status": "ok"}, crashed)], verdict="failed")
    commits = ["c1", "c2", "c3"]
    found = Bisection("c0", "c3", commits)

    def step(i: int) -> Step:
        verdict = ["failed", "slower", "slower"][i]
        done = Step(commits[i], "", i + 1, verdict, run=SimpleNamespace(cells=[cell] if verdict == "failed" else []))
        found.steps.append(done)
        return done

    found = _search(found, step)
    lines = closing_lines(found)
    assert found.exit_status == 3 and found.between == ("c0", "c2")   # c2 regressed; c1, before it, failed
    assert "  sent-default-custom, pair 1, side B: error: worker pid 7 exited: RuntimeError: mid boom" in lines
    assert not any("--max-pairs" in line for line in lines) and lines[-1] == "RESULT: failed (exit 3)"


def _cell(verdict="same", metric=("accuracy", "higher"), worse=False, whole=True, unsure=False, other=False):
    from types import SimpleNamespace

    return SimpleNamespace(verdict=verdict, metric=metric, less_accurate=lambda tolerance: worse, whole=whole,
                           accuracy_undecided=lambda tolerance: unsure, accuracy_not_comparable=lambda tolerance: other)


def test_a_commit_that_learns_worse_is_a_regression_whatever_its_speed():
    from distbench.session.bisect import commit_verdict

    worse = [_cell("same", worse=True), _cell("faster")]
    assert commit_verdict(worse) == "less accurate"
    assert commit_verdict([_cell("undecided", worse=True)]) == "less accurate"   # decided by accuracy
    assert commit_verdict([_cell("slower", worse=True)]) == "slower and less accurate"
    assert commit_verdict([_cell("slower", worse=True)], "slower") == "slower"
    assert commit_verdict(worse, "slower") == "same"
    assert commit_verdict([_cell("undecided")]) == "undecided"
    # Looking for accuracy alone, speed is not read; without a test metric there is nothing to read.
    assert commit_verdict([_cell("undecided")], "less-accurate") == "same"
    assert commit_verdict([_cell("slower")], "less-accurate") == "same"
    assert commit_verdict([_cell("same", metric=None)], "less-accurate") == "no metric"
    assert commit_verdict([_cell("failed", worse=True)]) == "failed"               # a crash is never read
    # The budget spent before a cell had its pairs: an unmeasured cell beside a measured one
    # read "same", and bisect went past BAD's regression (exit 0).
    short = [_cell("same"), _cell("undecided", metric=None, whole=False)]
    assert commit_verdict(short, "less-accurate") == "undecided"
    assert commit_verdict([_cell("same"), _cell("same", metric=None)], "less-accurate") == "same"   # matmul: no metric
    # Pairs that cannot tell whether the commit learns worse (a process's accuracy varies more
    # than the tolerance) name it neither less accurate nor the same.
    assert commit_verdict([_cell("same", unsure=True)]) == "undecided"
    assert commit_verdict([_cell("same", unsure=True)], "less-accurate") == "undecided"
    assert commit_verdict([_cell("same", unsure=True)], "slower") == "same"   # accuracy not looked at
    # Sides that tested on other examples: B's metric says nothing against A's, never "same".
    assert commit_verdict([_cell("same", other=True)]) == "undecided"
    assert commit_verdict([_cell("same", other=True)], "less-accurate") == "undecided"
    assert commit_verdict([_cell("same", other=True)], "slower") == "same"


def test_the_first_less_accurate_commit_is_named_and_a_later_slow_down_is_pointed_to():
    from types import SimpleNamespace

    from distbench.render.bisect_lines import closing_lines

    verdicts = ["same", "less accurate", "less accurate", "slower and less accurate"]
    commits = [f"c{k}" for k in range(1, 5)]
    found = Bisection("c0", "c4", commits)

    def step(i: int) -> Step:
        done = Step(commits[i], "Learning rate 0", i + 1, verdicts[i], run=SimpleNamespace(cells=[]))
        found.steps.append(done)
        return done

    found = _search(found, step)
    lines = closing_lines(found)
    assert found.first_regressed == "c2" and found.exit_status == 0
    assert 'FIRST LESS ACCURATE COMMIT: c2 "Learning rate 0"' in lines
    assert any(line.startswith("BAD is also slower than GOOD") and "--find slower" in line for line in lines)
    assert lines[-1] == "RESULT: found (exit 0)"


def test_no_metric_to_compare_is_not_a_pass():
    found = _bisect(["same", "no metric"])
    assert found.first_regressed is None and found.exit_status == 3 and "no cell here has a test metric" in found.reason


def test_a_step_judged_by_one_kind_says_which():
    """``--find less-accurate``: a step 7.8x slower read ``against GOOD: SAME``; the search
    looked at accuracy alone, and the line says so."""
    from types import SimpleNamespace

    from distbench.render.bisect_lines import step_line

    step = Step("4806f1e4" + "0" * 32, "wider layers", 3, "same", run=SimpleNamespace(cells=[], saved=None))
    assert "against GOOD: ACCURACY SAME, 0 pairs" in step_line(2, step, 6, "less-accurate")
    assert "against GOOD: SPEED SAME," in step_line(2, step, 6, "slower")
    assert "against GOOD: SAME," in step_line(2, step, 6)


def test_a_commit_whose_cells_fail_is_passed_over_as_git_bisect_skips_it():
    """A syntax error fixed in the next commit: the search had stopped there, the slower
    commit after it never tried."""
    from distbench.render.bisect_lines import closing_lines

    found = _bisect(["same", "same", "failed", "same", "slower", "slower"])
    assert found.first_regressed == "c5" and found.exit_status == 0 and found.passed_over == ["c3"]
    assert [s.commit for s in found.steps] == ["c6", "c3", "c2", "c4", "c5"]   # c3 failed: its nearest instead
    broken = SimpleNamespace(cell="w-default-custom", verdict="failed", pairs=[
        ({"status": "ok"}, {"status": "error", "reason": "Loading model.py failed: RuntimeError: broken import"})])
    found.steps[1] = replace(found.steps[1], run=SimpleNamespace(cells=[broken]))
    lines = closing_lines(found)
    at = lines.index("Passed over, their cells failed (as git bisect skip): c3.")
    # Why: it was in the stored run alone.
    assert lines[at + 1] == ("  c3: w-default-custom, pair 1, side B: error: Loading model.py failed: RuntimeError: "
                             "broken import"), lines
    # Failed commits just before the first regressed one: it, or one of them; never guessed.
    found = _bisect(["same", "failed", "failed", "slower", "slower"])
    assert found.first_regressed is None and found.exit_status == 3 and found.between == ("c1", "c4")
    lines = closing_lines(found)
    assert lines[-1] == "RESULT: failed (exit 3)" and any(
        "c2, c3 could not be measured (their cells failed), and the first slower or less accurate commit is one "
        "of them or c4" in line for line in lines), lines
