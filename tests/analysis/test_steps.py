"""Step detection over a cell's history (distbench.analysis.steps): the rates its docstring quotes."""

import math
import random

from distbench.analysis.steps import segments


def _draws(n: int, step_at: int | None, ratio: float, sd: float, seed: int):
    rng = random.Random(seed)
    for _ in range(200):
        yield [rng.gauss(math.log(ratio) if step_at is not None and i >= step_at else 0.0, sd) for i in range(n)]


def test_a_flat_history_shows_a_step_in_few_draws():
    for n in (10, 40):
        false = sum(len(segments(ys, 0.05)) > 1 for ys in _draws(n, None, 1.0, 0.05, seed=n))
        assert false <= 20, (n, false)   # at most 10% of 200 draws (about 5% measured)


def test_a_20_percent_step_is_found_at_its_place_with_its_size():
    found = []
    for ys in _draws(40, 20, 1.2, 0.05, seed=7):
        fitted = segments(ys, 0.05)
        if len(fitted) == 2 and abs(fitted[1].start - 20) <= 1:
            found.append(math.exp(fitted[1].level - fitted[0].level))
    assert len(found) >= 180, len(found)          # 9 draws of 10 or more (19 of 20 measured)
    assert 1.15 < sorted(found)[len(found) // 2] < 1.25


def test_one_outlier_is_not_a_step_and_a_last_run_far_off_is():
    flat = [0.01, -0.02, 0.0, 0.02, -0.01, 0.01, -0.01, 0.0, 0.02, -0.02]
    with_outlier = flat[:5] + [math.log(1.3)] + flat[5:]
    assert len(segments(with_outlier, 0.05)) == 1     # the L1 fit: one point moves a median little
    fitted = segments(flat + [math.log(1.5)], 0.05)
    assert [s.start for s in fitted] == [0, 10]


def test_short_and_empty_histories():
    assert segments([], 0.05) == []
    assert [(s.start, s.stop) for s in segments([0.3], 0.05)] == [(0, 1)]
    # Two points pay a history of 10's penalty: 1.5 sd apart is noise, 5 sd apart a step.
    assert len(segments([0.0, 0.075], 0.05)) == 1
    assert [s.start for s in segments([0.0, 0.25], 0.05)] == [0, 1]
