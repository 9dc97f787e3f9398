"""bisect's search on given verdicts: which commit it names, and that an undecided step stops
it with the range instead of a guess (the measuring is tests/test_user_verdicts.py's)."""

from distbench.session.bisect import Bisection, Step, _search


def _bisect(verdicts: list[str]) -> Bisection:
    commits = [f"c{k}" for k in range(1, len(verdicts) + 1)]
    found = Bisection("c0", commits[-1], commits)

    def step(i: int) -> Step:
        done = Step(commits[i], "", i + 1, verdicts[i], run=None)
        found.steps.append(done)
        return done

    return _search(found, step)


def test_it_names_the_first_slower_commit():
    found = _bisect(["same", "same", "slower", "slower", "slower", "slower"])
    assert found.first_slower == "c3" and found.exit_status == 0
    assert [s.commit for s in found.steps] == ["c6", "c3", "c1", "c2"]   # BAD first, then halvings


def test_an_undecided_step_stops_with_the_range_and_fails_closed():
    found = _bisect(["same", "undecided", "slower", "slower"])
    assert found.first_slower is None and found.between == ("c0", "c4") and found.exit_status == 3


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
    assert found.exit_status == 3 and found.between == ("c0", "c3")
    assert "  sent-default-custom, pair 1, side B: error: worker pid 7 exited: RuntimeError: mid boom" in lines
    assert not any("--max-pairs" in line for line in lines) and lines[-1] == "RESULT: failed (exit 3)"
